/**
 * Sealing: a small secret kept by the TPM as a keyedHash data object under a
 * storage key (Part 3 §12.1 Create with sensitive data, §12.7 Unseal), whose
 * authPolicy releases it only while the selected PCRs hold the values they
 * had (or were predicted to have) at sealing time: PolicyPCR (Part 3 §23.7),
 * optionally followed by PolicyAuthValue (§23.17, the password proven with an
 * HMAC) or PolicyPassword (§23.18, the password sent in clear).
 *
 * The policy digest is computed in software with the core's PolicyCalculator
 * (the same update functions the software TPM and the verifier use); unseal
 * replays the policy in a policy session. PolicyPCR is replayed with an empty
 * pcrDigest so that the TPM digests the PCRs' current values: when they
 * differ, the session digest differs from authPolicy and Unseal fails with
 * TPM_RC_POLICY_FAIL.
 */
import { timingSafeEqual } from 'node:crypto';
import { Create, Load, PolicyAuthValue, PolicyPassword, PolicyPCR, Unseal } from '../tpm/commands/index.js';
import { TPM_ALG } from '../tpm/constants.js';
import { digestSize, isHashAlg } from '../tpm/crypto/hash.js';
import { ClientError } from '../tpm/errors.js';
import { LIMITS } from '../tpm/limits.js';
import { objectName } from '../tpm/names.js';
import { pcrIndices, readPcrs } from '../tpm/pcr.js';
import { PolicyCalculator, pcrDigest } from '../tpm/policy.js';
import { sendOptionsOf, type SendOptions } from '../tpm/transport/transport.js';
import { TPMA_OBJECT, type TPMS_PCR_SELECTION, type TPMT_PUBLIC } from '../tpm/types/index.js';
import type { AuthSession } from './session.js';
import type { Authorization, Entity, Handle, Tpm } from './tpm.js';

const EMPTY = new Uint8Array(0);

/** How a password joins the PCR policy: not at all, proven with an HMAC (PolicyAuthValue), or sent in clear (PolicyPassword). */
export type SealPasswordPolicy = 'none' | 'PolicyAuthValue' | 'PolicyPassword';

/** A key to salt a session with, so that secrets cross the bus encrypted (Part 1 §19.6.13, §21 parameter encryption). */
export interface SaltKey {
  /** The loaded key (RSA or ECC decryption key, e.g. the SRK or the EK). */
  readonly key: Handle;
  /** Its public area, as the caller checked it. */
  readonly public: TPMT_PUBLIC;
}

export interface SealOptions extends SendOptions {
  /** The PCRs the secret is bound to; at least one PCR. */
  readonly pcrs: readonly TPMS_PCR_SELECTION[];
  /**
   * Their values to bind to, bank → index → value (e.g. predicted from an
   * event log); default: their current values, read from the TPM.
   */
  readonly pcrValues?: ReadonlyMap<number, ReadonlyMap<number, Uint8Array>>;
  /** A password that unseal must also present (the object's authValue). */
  readonly password?: Uint8Array;
  /** How the password is proven; default PolicyAuthValue when a password is given, 'none' otherwise. */
  readonly passwordPolicy?: SealPasswordPolicy;
  /** The object's nameAlg, also the policy's hash; default SHA-256. */
  readonly nameAlg?: number;
  /**
   * Exempt the object from dictionary-attack protection (TPMA_OBJECT noDA);
   * default false, so wrong passwords count towards the TPM's lockout.
   */
  readonly noDA?: boolean;
  /** The parent's authorization (default: a password with `parent.authValue`). */
  readonly parentAuthorization?: Authorization;
  /** Send the secret encrypted: an HMAC session salted with this key decrypts Create's inSensitive. */
  readonly salt?: SaltKey;
}

/** What unseal replays, kept with the sealed object. */
export interface SealPolicy {
  /** The policy session's hash (the object's nameAlg). */
  readonly hashAlg: number;
  readonly pcrs: readonly TPMS_PCR_SELECTION[];
  /** H_hashAlg of the PCR values the secret is bound to. */
  readonly pcrDigest: Uint8Array;
  readonly passwordPolicy: SealPasswordPolicy;
  /** The resulting policy digest: the object's authPolicy. */
  readonly digest: Uint8Array;
}

/** A sealed secret as stored outside the TPM: load it under the same parent to unseal. */
export interface SealedObject {
  /** The data object's public area (authPolicy = policy.digest). */
  readonly publicArea: TPMT_PUBLIC;
  /** TPM2B_PRIVATE content: the sensitive part, wrapped by the parent. */
  readonly privateArea: Uint8Array;
  /** Its Name, computed from publicArea. */
  readonly name: Uint8Array;
  readonly policy: SealPolicy;
}

export interface UnsealOptions extends SendOptions {
  /** The password given at sealing time. */
  readonly password?: Uint8Array;
  /** The parent's authorization for Load (default: a password with `parent.authValue`). */
  readonly parentAuthorization?: Authorization;
  /** Salt the policy session with this key and have the TPM encrypt the secret in its response. */
  readonly salt?: SaltKey;
}


function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

function checkPcrs(pcrs: unknown): readonly TPMS_PCR_SELECTION[] {
  if (!Array.isArray(pcrs) || !pcrs.some((s: TPMS_PCR_SELECTION) => pcrIndices(s).length > 0)) {
    throw new ClientError('client.argument', 'pcrs: select at least one PCR (a secret sealed to no PCR needs no policy; use Create with an authValue)');
  }
  return pcrs as readonly TPMS_PCR_SELECTION[];
}

/**
 * The policy digest of a PCR seal: PolicyPCR(pcrs, H(values)) then, for a
 * password, PolicyAuthValue or PolicyPassword (which give the same digest,
 * Part 3 §23.18), computed with the core's PolicyCalculator.
 * @throws ClientError `client.argument` for an empty selection; PolicyError when a selected PCR has no value.
 */
export function sealPolicy(
  hashAlg: number,
  pcrs: readonly TPMS_PCR_SELECTION[],
  values: ReadonlyMap<number, ReadonlyMap<number, Uint8Array>>,
  passwordPolicy: SealPasswordPolicy = 'none',
): SealPolicy {
  checkPcrs(pcrs);
  const calc = new PolicyCalculator(hashAlg).policyPCR({ pcrs, values });
  if (passwordPolicy === 'PolicyAuthValue') calc.policyAuthValue();
  else if (passwordPolicy === 'PolicyPassword') calc.policyPassword();
  else if (passwordPolicy !== 'none') throw new ClientError('client.argument', `passwordPolicy ${String(passwordPolicy)}: expected 'none', 'PolicyAuthValue' or 'PolicyPassword'`);
  return { hashAlg, pcrs: pcrs.map((s) => ({ hash: s.hash, pcrSelect: s.pcrSelect.slice() })), pcrDigest: pcrDigest(hashAlg, pcrs, values), passwordPolicy, digest: calc.digest };
}

/** The public area of a sealed data object (Part 1 §27.2: a keyedHash object without a scheme holds data). */
function sealedTemplate(nameAlg: number, authPolicy: Uint8Array, noDA: boolean): TPMT_PUBLIC {
  return {
    type: TPM_ALG.KEYEDHASH,
    nameAlg,
    // No userWithAuth and adminWithPolicy: the policy alone authorizes both roles. sensitiveDataOrigin must be clear (the caller supplies the data).
    objectAttributes: TPMA_OBJECT.of({ fixedTPM: true, fixedParent: true, adminWithPolicy: true, noDA }),
    authPolicy,
    parameters: { scheme: { scheme: TPM_ALG.NULL } },
    unique: EMPTY,
  } as TPMT_PUBLIC;
}

/**
 * Seals `secret` under `parent` with a PCR policy (and optionally a password).
 * Nothing is left loaded: store the result and give it to {@link unseal}.
 *
 * @param parent a storage key (restricted decrypt), e.g. the SRK.
 * @param secret 1 to 128 bytes (MAX_SYM_DATA).
 * @throws ClientError `client.argument` for unusable arguments, `client.response` when the TPM returns a public
 *   area other than the one asked for; PolicyError when a selected PCR has no value; TpmError; SessionError; TransportError.
 * @example const sealed = await seal(tpm, srk, key, { pcrs: [pcrSelection(TPM_ALG.SHA256, [7])], password });
 */
export async function seal(tpm: Tpm, parent: Handle, secret: Uint8Array, options: SealOptions): Promise<SealedObject> {
  if (!(secret instanceof Uint8Array) || secret.length === 0 || secret.length > LIMITS.MAX_SYM_DATA) {
    throw new ClientError('client.argument', `secret: expected 1..${LIMITS.MAX_SYM_DATA} bytes`);
  }
  const pcrs = checkPcrs(options?.pcrs);
  const nameAlg = options.nameAlg ?? TPM_ALG.SHA256;
  if (!isHashAlg(nameAlg)) throw new ClientError('client.argument', `nameAlg 0x${Number(nameAlg).toString(16)} is not a hash algorithm`);
  const password = options.password ?? EMPTY;
  if (!(password instanceof Uint8Array)) throw new ClientError('client.argument', 'password: expected a Uint8Array');
  // Part 1 §19.6.5 (Create: TPM_RC_SIZE): an authValue is at most the nameAlg's digest.
  if (password.length > digestSize(nameAlg)) throw new ClientError('client.argument', `password of ${password.length} bytes: at most ${digestSize(nameAlg)} for this nameAlg`);
  const passwordPolicy = options.passwordPolicy ?? (options.password !== undefined ? 'PolicyAuthValue' : 'none');
  if (passwordPolicy === 'none' && password.length > 0) throw new ClientError('client.argument', 'a password with passwordPolicy \'none\' could never be checked');
  const send = sendOptionsOf(options);

  const values = options.pcrValues ?? (await readPcrs(tpm.transport, pcrs, send));
  const policy = sealPolicy(nameAlg, pcrs, values, passwordPolicy);
  const template = sealedTemplate(nameAlg, policy.digest, options.noDA ?? false);

  const create = async (salted: AuthSession | undefined) => {
    const sessions: (Authorization | undefined)[] = [options.parentAuthorization];
    if (salted !== undefined) {
      // The salted session authorizes the parent itself unless the caller gave that authorization; then it only encrypts.
      const use = salted.use({ decrypt: true, continueSession: false });
      if (options.parentAuthorization === undefined) sessions[0] = use;
      else sessions.push(use);
    }
    return tpm.run(
      Create,
      { parentHandle: parent },
      { inSensitive: { userAuth: password, data: secret }, inPublic: template, outsideInfo: EMPTY, creationPCR: [] },
      { ...send, sessions },
    );
  };
  const r = options.salt === undefined ? await create(undefined) : await tpm.withSession({ type: 'hmac', salt: options.salt, ...send }, create);

  const out = r.params.outPublic;
  // The TPM fills in unique only; anything else changed would protect the secret differently than asked.
  if (
    out.type !== TPM_ALG.KEYEDHASH ||
    out.nameAlg !== nameAlg ||
    TPMA_OBJECT.toWord(out.objectAttributes) !== TPMA_OBJECT.toWord(template.objectAttributes) ||
    !sameBytes(out.authPolicy, policy.digest)
  ) {
    throw new ClientError('client.response', 'Create returned a public area other than the template sent');
  }
  return { publicArea: out, privateArea: r.params.outPrivate, name: objectName(out), policy };
}

/**
 * Unseals a secret from {@link seal}: loads it under `parent`, replays its
 * policy in a policy session (PolicyPCR over the PCRs' current values, then
 * PolicyAuthValue or PolicyPassword), and runs Unseal (Part 3 §12.7). The
 * object and the session are flushed afterwards, also on errors.
 *
 * @throws TpmError TPM_RC_POLICY_FAIL when the PCRs no longer hold the sealed values, TPM_RC_AUTH_FAIL (or
 *   TPM_RC_BAD_AUTH for a noDA object) for a wrong password, TPM_RC_INTEGRITY for another parent;
 *   ClientError `client.name` when Load reports another Name, `client.argument`; SessionError; TransportError.
 */
export async function unseal(tpm: Tpm, parent: Handle, sealed: SealedObject, options: UnsealOptions = {}): Promise<Uint8Array> {
  if (sealed === null || typeof sealed !== 'object' || sealed.policy === undefined) throw new ClientError('client.argument', 'sealed: expected a SealedObject');
  const password = options.password ?? EMPTY;
  if (!(password instanceof Uint8Array)) throw new ClientError('client.argument', 'password: expected a Uint8Array');
  const pcrs = checkPcrs(sealed.policy.pcrs);
  const name = objectName(sealed.publicArea);
  const send = sendOptionsOf(options);

  return tpm.scope(async (scope) => {
    const l = await tpm.run(Load, { parentHandle: parent }, { inPrivate: sealed.privateArea, inPublic: sealed.publicArea }, { ...send, sessions: [options.parentAuthorization] });
    const handle = scope.defer(l.handles.objectHandle);
    if (!sameBytes(l.params.name, name)) throw new ClientError('client.name', 'Load returned a Name other than the sealed public area\'s');
    const item: Entity = { handle, name, authValue: password };

    const session = scope.defer(
      await tpm.startAuthSession({ type: 'policy', hashAlg: sealed.policy.hashAlg, ...(options.salt !== undefined ? { salt: options.salt } : {}), ...send }),
    );
    // An empty pcrDigest: the TPM digests the current values (Part 3 §23.7), and a mismatch shows as POLICY_FAIL at Unseal.
    await tpm.run(PolicyPCR, { policySession: session }, { pcrDigest: EMPTY, pcrs: [...pcrs] }, send);
    if (sealed.policy.passwordPolicy === 'PolicyAuthValue') await tpm.run(PolicyAuthValue, { policySession: session }, {}, send);
    else if (sealed.policy.passwordPolicy === 'PolicyPassword') await tpm.run(PolicyPassword, { policySession: session }, {}, send);
    const r = await tpm.run(Unseal, { itemHandle: item }, {}, { ...send, sessions: [session.use({ continueSession: false, encrypt: options.salt !== undefined })] });
    return r.params.outData;
  });
}
