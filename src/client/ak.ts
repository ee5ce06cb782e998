/**
 * The attestation key (AK), created under the EK as `tpm2_createak` does
 * (Part 3 §12.1 Create, §12.2 Load; the EK authorizes both through its
 * policy, see withEkPolicy in ek.ts).
 *
 * Why under the EK: a TPM obfuscates resetCount, restartCount and
 * firmwareVersion in every TPMS_ATTEST signed by a key outside the
 * endorsement and platform hierarchies (Part 3 §18.1; the reference's
 * FillInAttestInfo), so only an AK in the endorsement hierarchy lets a
 * verifier see reboots and firmware in its quotes. A restricted signing key
 * (AK_ATTRIBUTES in templates.ts) signs only digests the TPM produced itself,
 * so its signature over a TPMS_ATTEST cannot be forged with Sign.
 */
import { Create, Load } from '../tpm/commands/index.js';
import { TPM_ALG, TPM_RH } from '../tpm/constants.js';
import { IdentityError } from '../tpm/errors.js';
import { handleName, objectName, qualifiedName } from '../tpm/names.js';
import { eccAkTemplate, rsaAkTemplate, templateMismatches } from '../tpm/templates.js';
import type { TPMT_PUBLIC } from '../tpm/types/index.js';
import { withEkPolicy, type EkPolicyOptions } from './ek.js';
import type { Authorization, Entity, Tpm } from './tpm.js';

const EMPTY = new Uint8Array(0);

/** The EK (or any endorsement-hierarchy storage key with the EK's policy) the AK lives under. */
export interface AkParent extends Entity {
  readonly handle: number;
  readonly name: Uint8Array;
  readonly publicArea: TPMT_PUBLIC;
}

/** A wrapped AK as Create returned it: keep both parts to load it again later (`loadAk`). */
export interface AkBlob {
  readonly publicArea: TPMT_PUBLIC;
  /** TPM2B_PRIVATE content, protected by the EK: useless on any other TPM. */
  readonly privateBlob: Uint8Array;
  /** The AK's authValue (default empty). */
  readonly authValue?: Uint8Array;
}

/**
 * A loaded AK: an Entity for `tpm.run` (flush it with `tpm.flush(ak)`), its
 * public area and wrapped private part, and its Names.
 */
export interface Ak extends Entity, AkBlob {
  readonly handle: number;
  /** nameAlg ‖ H(public area), computed here. */
  readonly name: Uint8Array;
  /**
   * QN = nameAlg ‖ H(QN(EK) ‖ Name), QN(EK) = nameAlg ‖ H(TPM_RH_ENDORSEMENT ‖
   * Name(EK)) (Part 1 §16.6): what TPMS_ATTEST.qualifiedSigner of its quotes carries.
   */
  readonly qualifiedName: Uint8Array;
}

export interface AkOptions extends EkPolicyOptions {
  /** RSA-2048 with RSASSA-SHA256 (default) or ECC P-256 with ECDSA-SHA256. */
  readonly alg?: 'rsa' | 'ecc';
  /** A template of one's own instead of `alg`; it must be a restricted signing key (checkAkTemplate). */
  readonly template?: TPMT_PUBLIC;
  /** The AK's authValue (default empty). */
  readonly authValue?: Uint8Array;
}

/**
 * Refuses a public area that is not an attestation key: RSA or ECC,
 * restricted | sign | fixedTPM | fixedParent | sensitiveDataOrigin set,
 * decrypt clear (the checks a verifier makes, verifier-pitfalls.md).
 * @throws IdentityError `identity.argument`.
 */
export function checkAkTemplate(template: TPMT_PUBLIC): void {
  if (template.type !== TPM_ALG.RSA && template.type !== TPM_ALG.ECC) {
    throw new IdentityError('identity.argument', 'an AK must be an RSA or ECC key');
  }
  const a = template.objectAttributes;
  const missing = (['restricted', 'sign', 'fixedTPM', 'fixedParent', 'sensitiveDataOrigin'] as const).filter((k) => !a[k]);
  if (missing.length > 0) throw new IdentityError('identity.argument', `an AK needs ${missing.join(', ')}`, { fields: ['objectAttributes'] });
  if (a.decrypt) throw new IdentityError('identity.argument', 'an AK must not decrypt (a restricted decryption key is a storage key)', { fields: ['objectAttributes'] });
}

function akQualifiedName(parent: AkParent, name: Uint8Array): Uint8Array {
  return qualifiedName(qualifiedName(handleName(TPM_RH.ENDORSEMENT), parent.name), name);
}

/**
 * Creates an AK under the EK and loads it. Both Create and Load are
 * authorized by a policy session satisfying the EK's PolicyA or PolicyB
 * (PolicySecret with the endorsement hierarchy's authValue), which is
 * flushed before returning; the caller flushes the AK.
 *
 * @throws IdentityError `identity.argument` for a template that is not an AK,
 *   `identity.mismatch` when the TPM's public area is not the template or its
 *   Name disagrees (nothing stays loaded), `identity.policy` for an EK whose
 *   policy is not the profile's; TpmError; SessionError; TransportError.
 */
export async function createAk(tpm: Tpm, ek: AkParent, options: AkOptions = {}): Promise<Ak> {
  const template = options.template ?? (options.alg === 'ecc' ? eccAkTemplate() : rsaAkTemplate());
  checkAkTemplate(template);
  const authValue = options.authValue ?? EMPTY;
  return withEkPolicy(tpm, ek, options, async (authorize) => {
    const r = await tpm.run(
      Create,
      { parentHandle: ek },
      { inSensitive: { userAuth: authValue, data: EMPTY }, inPublic: template, outsideInfo: EMPTY, creationPCR: [] },
      { sessions: [await authorize()] },
    );
    const fields = templateMismatches(template, r.params.outPublic);
    if (fields.length > 0) {
      throw new IdentityError('identity.mismatch', `Create returned a public area unlike the AK template: ${fields.join(', ')} differ`, { fields });
    }
    return loadUnder(tpm, ek, { publicArea: r.params.outPublic, privateBlob: r.params.outPrivate, authValue }, await authorize());
  });
}

/**
 * Loads an AK made earlier by createAk under the same EK (Part 3 §12.2).
 * @throws IdentityError `identity.argument` for a public area that is not an
 *   AK, `identity.mismatch` when the TPM's Name disagrees (the object is
 *   flushed); TpmError (TPM_RC_INTEGRITY for a blob of another EK or TPM); SessionError; TransportError.
 */
export async function loadAk(tpm: Tpm, ek: AkParent, blob: AkBlob, options: EkPolicyOptions = {}): Promise<Ak> {
  checkAkTemplate(blob.publicArea);
  return withEkPolicy(tpm, ek, options, async (authorize) => loadUnder(tpm, ek, blob, await authorize()));
}

async function loadUnder(tpm: Tpm, ek: AkParent, blob: AkBlob, authorization: Authorization): Promise<Ak> {
  const r = await tpm.run(Load, { parentHandle: ek }, { inPrivate: blob.privateBlob, inPublic: blob.publicArea }, { sessions: [authorization] });
  const handle = r.handles.objectHandle;
  const name = objectName(blob.publicArea);
  if (r.params.name.length !== name.length || !r.params.name.every((v, i) => v === name[i])) {
    await tpm.flush(handle).catch(() => undefined);
    throw new IdentityError('identity.mismatch', "Load returned a Name that is not the Name of the AK's public area", { handle, fields: ['name'] });
  }
  return {
    handle,
    name,
    authValue: blob.authValue ?? EMPTY,
    publicArea: blob.publicArea,
    privateBlob: blob.privateBlob,
    qualifiedName: akQualifiedName(ek, name),
  };
}

/** Whether a public area has the AK attributes (restricted signing, fixed to this TPM, generated inside it). */
export function isAkPublic(publicArea: TPMT_PUBLIC): boolean {
  try {
    checkAkTemplate(publicArea);
    return true;
  } catch {
    return false;
  }
}

