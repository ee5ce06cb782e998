/**
 * Moving keys between parents (Part 1 §23.3.2.3 "Duplication"; Part 3 §13.1
 * Duplicate, §13.3 Import): import a key made outside any TPM (a node:crypto
 * KeyObject, wrapped in software by src/tpm/duplication.ts exactly as
 * tpm2_import does), import a blob another TPM duplicated, and duplicate a
 * key the TPM holds to a new parent: a storage key on this or another TPM,
 * an external public key (the holder of its private key unwraps the blob with
 * the core's unwrapDuplicate), or TPM_RH_NULL (no outer wrapper).
 *
 * Duplicate needs the object's DUP role, which only a policy session gives
 * (Part 1 §19.7.2): the object's authPolicy must contain
 * PolicyCommandCode(TPM_CC_Duplicate) or PolicyDuplicationSelect, and its
 * fixedTPM and fixedParent must be clear. {@link duplicationPolicy} computes
 * such a policy for a key about to be created.
 */
import { timingSafeEqual } from 'node:crypto';
import { Duplicate, Import, PolicyCommandCode, PolicyDuplicationSelect } from '../tpm/commands/index.js';
import { TPM_ALG, TPM_CC, TPM_RH } from '../tpm/constants.js';
import { ClientError } from '../tpm/errors.js';
import { wrapExternalKey, type DuplicateBlob, type ExternalKey, type ExternalObjectOptions, type WrapOptions } from '../tpm/duplication.js';
import { handleName, objectName } from '../tpm/names.js';
import { PolicyCalculator } from '../tpm/policy.js';
import { sendOptionsOf, type SendOptions } from '../tpm/transport/transport.js';
import type { TPMT_PUBLIC, TPMT_SYM_DEF_OBJECT } from '../tpm/types/index.js';
import type { AuthSession } from './session.js';
import type { Authorization, Entity, Handle, Tpm } from './tpm.js';

const EMPTY = new Uint8Array(0);

/** An object ready to be loaded under the parent it was imported to (Load's inPublic and inPrivate). */
export interface ImportedObject {
  readonly publicArea: TPMT_PUBLIC;
  /** TPM2B_PRIVATE content, now wrapped by the new parent's own protection. */
  readonly privateArea: Uint8Array;
  /** The object's Name, computed from publicArea. */
  readonly name: Uint8Array;
}

export interface ImportOptions extends SendOptions {
  /** The parent's authorization (USER role; default a password with `parent.authValue`). */
  readonly parentAuthorization?: Authorization;
}

export type ImportKeyOptions = ImportOptions & ExternalObjectOptions & WrapOptions;

/** How Duplicate's DUP role is proven. */
export type DuplicationPolicy =
  /** PolicyCommandCode(TPM_CC_Duplicate): any new parent. */
  | 'PolicyCommandCode'
  /** PolicyDuplicationSelect(object, new parent, includeObject): only the new parent named in the policy. */
  | 'PolicyDuplicationSelect'
  /** Satisfy the object's policy yourself, in the policy session given (hash: the object's nameAlg). */
  | ((session: AuthSession) => Promise<void>);

export interface DuplicateOptions extends SendOptions {
  /**
   * Add an inner wrapper (needed for objects with encryptedDuplication):
   * `true` lets the TPM pick an AES-128 key (returned as `encryptionKey`), or
   * give the key (16, 24 or 32 bytes). Default: none.
   */
  readonly innerWrap?: boolean | { readonly encryptionKey: Uint8Array };
  /**
   * How to satisfy the object's policy. Default: recognized from its
   * authPolicy, which must then be exactly one of the two digests
   * {@link duplicationPolicy} computes.
   */
  readonly policy?: DuplicationPolicy;
  /** PolicyDuplicationSelect's includeObject (default false: the policy names the new parent only). */
  readonly includeObject?: boolean;
}


function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

function checkPublic(handle: Handle, publicArea: TPMT_PUBLIC, what: string): Uint8Array {
  if (publicArea === null || typeof publicArea !== 'object') throw new ClientError('client.argument', `${what}Public: expected a TPMT_PUBLIC`);
  const name = objectName(publicArea);
  if (typeof handle !== 'number' && !sameBytes(handle.name, name)) throw new ClientError('client.name', `${what}Public: its Name is not the Name of ${what}`);
  return name;
}

/** The Name of a duplication target: the Entity's Name, or the handle of TPM_RH_NULL. */
function parentName(newParent: Handle): Uint8Array {
  if (typeof newParent !== 'number') return newParent.name;
  if (newParent === TPM_RH.NULL) return handleName(TPM_RH.NULL);
  throw new ClientError('client.argument', 'newParent: give an Entity (with the Name of its public area), or TPM_RH_NULL');
}

/**
 * The authPolicy of a key that may be duplicated (Part 3 §23.11, §23.15):
 * PolicyCommandCode(TPM_CC_Duplicate) to any parent, or, with
 * `newParentName`, PolicyDuplicationSelect(newParentName, includeObject = NO)
 * to that parent only.
 * @example const authPolicy = duplicationPolicy(TPM_ALG.SHA256, { newParentName: backupSrk.name });
 */
export function duplicationPolicy(hashAlg: number, options: { readonly newParentName?: Uint8Array } = {}): Uint8Array {
  const calc = new PolicyCalculator(hashAlg);
  if (options.newParentName === undefined) return calc.policyCommandCode({ code: TPM_CC.Duplicate }).digest;
  // includeObject NO: the digest leaves out the object's Name, which depends on this very digest (Part 3 §23.15).
  return calc.policyDuplicationSelect({ objectName: EMPTY, newParentName: options.newParentName, includeObject: false }).digest;
}

/**
 * Imports a duplication blob under `parent` (Part 3 §13.3): from
 * {@link duplicateKey} on this or another TPM, or wrapped in software. The
 * result is loaded with Load under the same parent.
 *
 * @param parentPublic the parent's public area (checked against `parent`'s Name when it is an Entity).
 * @throws ClientError `client.argument` (`client.name` when parentPublic is not `parent`'s); TpmError (TPM_RC_INTEGRITY for a blob wrapped for another parent or modified, TPM_RC_VALUE
 *   for a seed another RSA key encrypted, TPM_RC_ATTRIBUTES for fixedTPM/fixedParent objects); SessionError; TransportError.
 */
export async function importDuplicate(tpm: Tpm, parent: Handle, parentPublic: TPMT_PUBLIC, blob: DuplicateBlob, options: ImportOptions = {}): Promise<ImportedObject> {
  checkPublic(parent, parentPublic, 'parent');
  if (blob === null || typeof blob !== 'object') throw new ClientError('client.argument', 'blob: expected a DuplicateBlob');
  const symmetricAlg: TPMT_SYM_DEF_OBJECT = blob.symmetricAlg ?? { algorithm: TPM_ALG.NULL };
  const r = await tpm.run(
    Import,
    { parentHandle: parent },
    {
      encryptionKey: symmetricAlg.algorithm === TPM_ALG.NULL ? EMPTY : (blob.encryptionKey ?? EMPTY),
      objectPublic: blob.objectPublic,
      duplicate: blob.duplicate,
      inSymSeed: blob.inSymSeed,
      symmetricAlg,
    },
    { ...sendOptionsOf(options), sessions: [options.parentAuthorization] },
  );
  return { publicArea: blob.objectPublic, privateArea: r.params.outPrivate, name: objectName(blob.objectPublic) };
}

/**
 * Imports a key created outside the TPM (RSA, ECC, HMAC or AES) under
 * `parent`: its sensitive area is wrapped for the parent in software
 * (externalObject + wrapDuplicate of src/tpm/duplication.ts) and Import
 * re-wraps it with the parent's own protection (Part 3 §13.3).
 *
 * @param key the key, e.g. `{ type: 'ecc', privateKey }` from node:crypto.
 * @param options the object's attributes, authValue, authPolicy, nameAlg; an inner wrapper; the parent's authorization.
 * @throws ArgumentError / CryptoError (from the core's wrapping) for a key or options the TPM could not take; as {@link importDuplicate}.
 * @example const k = await importKey(tpm, srk, srkPublic, { type: 'rsa', privateKey }, { authValue });
 *   const { handles } = await tpm.run(Load, { parentHandle: srk }, { inPrivate: k.privateArea, inPublic: k.publicArea });
 */
export async function importKey(tpm: Tpm, parent: Handle, parentPublic: TPMT_PUBLIC, key: ExternalKey, options: ImportKeyOptions = {}): Promise<ImportedObject> {
  checkPublic(parent, parentPublic, 'parent');
  const blob = wrapExternalKey(parentPublic, key, options);
  return importDuplicate(tpm, parent, parentPublic, blob, options);
}

/**
 * Duplicates `object` to `newParent` (Part 3 §13.1) after satisfying the
 * object's duplication policy in a policy session that is flushed afterwards,
 * also on errors. The object stays loaded (it is the caller's).
 *
 * @param object the object to duplicate, with the Name of `objectPublic`.
 * @param newParent a loaded storage key (an Entity with its Name, e.g. a public key loaded with
 *   LoadExternal) or TPM_RH_NULL for a blob with no outer wrapper.
 * @returns the blob for Import under the new parent (importDuplicate), or for unwrapDuplicate in software.
 * @throws ClientError `client.argument` when the policy cannot be recognized, `client.name` when objectPublic is
 *   not `object`'s; TpmError (TPM_RC_POLICY_FAIL when the policy is not satisfied, e.g. PolicyDuplicationSelect
 *   naming another parent; TPM_RC_SYMMETRIC for encryptedDuplication without an inner wrapper; TPM_RC_HIERARCHY
 *   for TPM_RH_NULL with encryptedDuplication; TPM_RC_ATTRIBUTES for a fixedParent object); SessionError;
 *   TransportError.
 */
export async function duplicateKey(
  tpm: Tpm,
  object: Entity,
  objectPublic: TPMT_PUBLIC,
  newParent: Handle,
  options: DuplicateOptions = {},
): Promise<DuplicateBlob> {
  if (object === null || typeof object !== 'object') throw new ClientError('client.argument', 'object: expected an Entity');
  const name = checkPublic(object, objectPublic, 'object');
  const newName = parentName(newParent);
  const includeObject = options.includeObject ?? false;
  const hashAlg = objectPublic.nameAlg;

  let policy = options.policy;
  if (policy === undefined) {
    if (sameBytes(objectPublic.authPolicy, duplicationPolicy(hashAlg))) policy = 'PolicyCommandCode';
    else if (sameBytes(objectPublic.authPolicy, duplicationPolicy(hashAlg, { newParentName: newName }))) policy = 'PolicyDuplicationSelect';
    else throw new ClientError('client.argument', 'the object\'s authPolicy is neither PolicyCommandCode(Duplicate) nor PolicyDuplicationSelect to this parent: pass options.policy');
  }

  let symmetricAlg: TPMT_SYM_DEF_OBJECT = { algorithm: TPM_ALG.NULL };
  let encryptionKeyIn: Uint8Array = EMPTY;
  const inner = options.innerWrap;
  if (inner === true) {
    symmetricAlg = { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB };
  } else if (inner !== undefined && inner !== false) {
    encryptionKeyIn = inner.encryptionKey;
    if (!(encryptionKeyIn instanceof Uint8Array) || ![16, 24, 32].includes(encryptionKeyIn.length)) {
      throw new ClientError('client.argument', 'innerWrap.encryptionKey: expected an AES key of 16, 24 or 32 bytes');
    }
    symmetricAlg = { algorithm: TPM_ALG.AES, keyBits: (encryptionKeyIn.length * 8) as 128 | 192 | 256, mode: TPM_ALG.CFB };
  }

  const send = sendOptionsOf(options);
  return tpm.withSession({ type: 'policy', hashAlg, ...send }, async (session) => {
    if (policy === 'PolicyCommandCode') {
      await tpm.run(PolicyCommandCode, { policySession: session }, { code: TPM_CC.Duplicate }, send);
    } else if (policy === 'PolicyDuplicationSelect') {
      // The TPM checks at Duplicate that H(objectName ‖ newParentName) matches, whatever includeObject says.
      await tpm.run(PolicyDuplicationSelect, { policySession: session }, { objectName: name, newParentName: newName, includeObject: includeObject ? 1 : 0 }, send);
    } else if (typeof policy === 'function') {
      await policy(session);
    } else {
      throw new ClientError('client.argument', `options.policy ${String(policy)}: expected 'PolicyCommandCode', 'PolicyDuplicationSelect' or a function`);
    }
    const r = await tpm.run(
      Duplicate,
      { objectHandle: object, newParentHandle: newParent },
      { encryptionKeyIn, symmetricAlg },
      { ...send, sessions: [session.use({ continueSession: false })] },
    );
    const encryptionKey = r.params.encryptionKeyOut.length > 0 ? r.params.encryptionKeyOut : encryptionKeyIn;
    return { objectPublic, duplicate: r.params.duplicate, inSymSeed: r.params.outSymSeed, symmetricAlg, encryptionKey };
  });
}
