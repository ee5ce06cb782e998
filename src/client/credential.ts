/**
 * Credential activation on the TPM (Part 3 §12.5 ActivateCredential; Part 1
 * §24 "Credential Protection"). A verifier wraps a secret for an AK Name with
 * the EK's public key (`makeCredential` in src/tpm/credential.ts, done in
 * software); only the TPM that holds that EK and has an object of that Name
 * loaded gets the secret back, which proves the AK lives beside the EK.
 *
 * The EK of the TCG EK Credential Profile has no userWithAuth: its USER role
 * is proven by a policy session satisfying its authPolicy, PolicySecret
 * (TPM_RH_ENDORSEMENT) for the low-range templates ("PolicyA"), and
 * PolicyOR(PolicyA, PolicyC) for the high-range ones ("PolicyB"). The session
 * is started, satisfied, used once and flushed here, also when a step fails.
 */
import { timingSafeEqual } from 'node:crypto';
import { ActivateCredential, PolicySecret } from '../tpm/commands/index.js';
import { TPM_RH } from '../tpm/constants.js';
import { digestSize, isHashAlg } from '../tpm/crypto/hash.js';
import { ClientError, IdentityError } from '../tpm/errors.js';
import { objectName } from '../tpm/names.js';
import { EK_POLICY_INDEX, ekPolicyA, ekPolicyB } from '../tpm/policy.js';
import type { SendOptions } from '../tpm/transport/transport.js';
import type { TPMT_PUBLIC } from '../tpm/types/index.js';
import { satisfyEkPolicy } from './ek.js';
import { password, type AuthSession } from './session.js';
import type { Authorization, Entity, Handle, Tpm } from './tpm.js';

const EMPTY = new Uint8Array(0);

export interface ActivateCredentialOptions extends SendOptions {
  /**
   * The EK's public area (as the caller checked it, e.g. against the EK
   * certificate): checked against `ek.name`, and its authPolicy picks how the
   * policy is satisfied (PolicyA or PolicyB). Default: `ek.publicArea` (an
   * `Ek` from getEk carries it); without either, PolicyA is assumed.
   */
  readonly ekPublic?: TPMT_PUBLIC;
  /** The endorsement hierarchy's authValue, for PolicySecret (default empty). */
  readonly endorsementAuth?: Uint8Array;
  /**
   * The AK's authorization: ActivateCredential needs its ADMIN role, so a
   * password (the default, with `ak.authValue`) works only while the AK's
   * adminWithPolicy is clear; give a policy session otherwise.
   */
  readonly akAuthorization?: Authorization;
  /**
   * Satisfies an EK policy other than the profile's: called with a fresh
   * policy session whose hash is the EK's nameAlg; the session is used for
   * ActivateCredential and flushed afterwards.
   */
  readonly satisfyEkPolicy?: (session: AuthSession) => Promise<void>;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The nameAlg of an object Name (its first two bytes), which is also the hash of its authPolicy. */
function nameAlgOf(name: Uint8Array, what: string): number {
  const alg = name instanceof Uint8Array && name.length >= 2 ? (name[0]! << 8) | name[1]! : -1;
  if (!isHashAlg(alg) || name.length !== 2 + digestSize(alg)) throw new ClientError('client.argument', `${what}: not an object Name (nameAlg ‖ digest)`);
  return alg;
}

/** Whether `ekPublic.authPolicy` is PolicyA or PolicyB of the EK Credential Profile (policy.ts computes them). */
function isProfilePolicy(ekPublic: TPMT_PUBLIC, hashAlg: number): boolean {
  const policy = ekPublic.authPolicy;
  return sameBytes(policy, ekPolicyA(hashAlg)) || (hashAlg in EK_POLICY_INDEX && sameBytes(policy, ekPolicyB(hashAlg)));
}

/**
 * Recovers the credential that `makeCredential(ekPublic, ak.name, credential)`
 * wrapped (Part 3 §12.5): the TPM checks the blob's HMAC against the Name of
 * `ak` and decrypts it with the seed only `ek` can recover.
 *
 * @param ak the object the credential is bound to (activateHandle, ADMIN role), usually the AK.
 * @param ek the EK (keyHandle, USER role through its policy), with the Name of its checked public area, e.g. an
 *   `Ek` from getEk (ek.ts).
 * @param credentialBlob TPM2B_ID_OBJECT content from makeCredential.
 * @param secret TPM2B_ENCRYPTED_SECRET content from makeCredential.
 * @returns the credential (certInfo).
 * @throws ClientError `client.name` when `ekPublic` does not match `ek.name`; IdentityError `identity.policy`
 *   when its policy is not the profile's and no `satisfyEkPolicy` is given; TpmError (TPM_RC_INTEGRITY for a
 *   blob made for another Name or another EK, TPM_RC_POLICY_FAIL when the policy is not satisfied, TPM_RC_AUTH_FAIL/BAD_AUTH for a wrong endorsement or
 *   AK authValue); SessionError; TransportError. Nothing stays loaded on the TPM.
 * @example const nonce = await activateCredential(tpm, ak, ek, blob.credentialBlob, blob.secret);
 */
export async function activateCredential(
  tpm: Tpm,
  ak: Handle,
  ek: Entity & { readonly publicArea?: TPMT_PUBLIC },
  credentialBlob: Uint8Array,
  secret: Uint8Array,
  options: ActivateCredentialOptions = {},
): Promise<Uint8Array> {
  if (!(credentialBlob instanceof Uint8Array) || !(secret instanceof Uint8Array)) throw new ClientError('client.argument', 'credentialBlob and secret: expected Uint8Arrays');
  if (ek === null || typeof ek !== 'object') throw new ClientError('client.argument', 'ek: expected an Entity with the EK\'s Name');
  const hashAlg = nameAlgOf(ek.name, 'ek.name');
  const ekPublic = options.ekPublic ?? ek.publicArea;
  if (ekPublic !== undefined && !sameBytes(objectName(ekPublic), ek.name)) throw new ClientError('client.name', 'ekPublic: its Name is not ek.name');
  const custom = options.satisfyEkPolicy;
  // Refused before anything is sent: no session could satisfy an unknown policy.
  if (custom === undefined && ekPublic !== undefined && !isProfilePolicy(ekPublic, hashAlg)) {
    throw new IdentityError('identity.policy', 'the EK\'s authPolicy is neither PolicyA nor PolicyB of the EK Credential Profile: pass satisfyEkPolicy');
  }
  const send: SendOptions = {
    ...(options.locality !== undefined ? { locality: options.locality } : {}),
    ...(options.signal !== undefined ? { signal: options.signal } : {}),
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
  };

  // The policy session's hash must be the EK's nameAlg: the TPM compares its digest with authPolicy (Part 1 §19.7.1).
  return tpm.withSession({ type: 'policy', hashAlg, ...send }, async (session) => {
    if (custom !== undefined) {
      await custom(session);
    } else if (ekPublic !== undefined) {
      // PolicyA or PolicyB, as ek.ts satisfies them for every use of the EK.
      await satisfyEkPolicy(tpm, session, ekPublic, { ...send, ...(options.endorsementAuth !== undefined ? { endorsementAuth: options.endorsementAuth } : {}) });
    } else {
      // PolicyA without a public area to look at: PolicySecret with the endorsement hierarchy's auth (Part 3 §23.4);
      // no expiration, so no nonceTPM binding is needed.
      await tpm.run(
        PolicySecret,
        { authHandle: TPM_RH.ENDORSEMENT, policySession: session },
        { nonceTPM: EMPTY, cpHashA: EMPTY, policyRef: EMPTY, expiration: 0 },
        { ...send, sessions: [password(options.endorsementAuth ?? EMPTY)] },
      );
    }
    const r = await tpm.run(
      ActivateCredential,
      { activateHandle: ak, keyHandle: ek },
      { credentialBlob, secret },
      { ...send, sessions: [options.akAuthorization, session.use({ continueSession: false })] },
    );
    return r.params.certInfo;
  });
}
