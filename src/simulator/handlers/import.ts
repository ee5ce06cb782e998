/**
 * Part 3 §12.9 CreateLoaded, §12.3 LoadExternal and §13.3 Import: objects
 * that enter the TPM other than by Create + Load. The wrapping math is the
 * core's (src/tpm/duplication.ts: unwrapDuplicate, produceOuterWrap,
 * keyFromSensitive; src/tpm/secret.ts: decryptSecret through unwrapDuplicate).
 * Also registers object.ts's Unseal and ObjectChangeAuth (Part 3 §12.7, §12.8).
 */
import { createSecretKey, type KeyObject } from 'node:crypto';
import { CreateLoaded, Import, LoadExternal } from '../../tpm/commands/index.js';
import { TPM_ALG, TPM_HT, TPM_RH } from '../../tpm/constants.js';
import { digestSize, isHashAlg } from '../../tpm/crypto/hash.js';
import { LIMITS } from '../../tpm/limits.js';
import { keyFromSensitive, produceOuterWrap, unwrapDuplicate } from '../../tpm/duplication.js';
import { CryptoError, ParseError, TrustrootError } from '../../tpm/errors.js';
import { objectName } from '../../tpm/names.js';
import { TPM_RC, TpmError, rcForHandle, rcForParameter } from '../../tpm/rc.js';
import { publicKeyFromArea } from '../../tpm/secret.js';
import { trimAuthValue } from '../../tpm/session-crypto.js';
import {
  TPM2B_SENSITIVE,
  decodeTemplate,
  type TPMS_SENSITIVE_CREATE,
  type TPMT_PUBLIC,
  type TPMT_PUBLIC_DERIVE,
  type TPMT_SENSITIVE,
} from '../../tpm/types/index.js';
import { encode } from '../../tpm/wire/codec.js';
import { unmarshalRc, type TpmEngine } from '../engine.js';
import { CURVE_ORDERS, deriveObject } from '../keygen.js';
import { bigIntFromBytes, bytesFromBigInt } from '../../tpm/bytes.js';
import type { LoadedObject } from '../objects.js';
import type { CommandHandler } from './handler.js';
import { handler } from './handler.js';
import {
  checkTemplate,
  checkUnderParent,
  childLoadedObject,
  createOrdinary,
  derivePrimary,
  findObject,
  isSequence,
  objectChangeAuthHandler,
  primaryLoadedObject,
  privateWrap,
  storageParent,
  unsealHandler,
} from './object.js';

function freeSlot(engine: TpmEngine): void {
  if (engine.volatile.objects.count >= engine.volatile.objects.capacity) throw new TpmError(TPM_RC.OBJECT_MEMORY);
}

/**
 * Part 3 §12.9: a primary object (parentHandle is a hierarchy), an ordinary
 * one (a storage parent), or a derived one (a derivation parent: see
 * createDerived), loaded at once. A primary's and a derived object's
 * outPrivate is empty (they are re-derived, never loaded).
 */
export const createLoadedHandler = handler(CreateLoaded, async ({ engine }, { parentHandle }, { inSensitive, inPublic }) => {
  if (parentHandle >>> 24 !== TPM_HT.PERMANENT) {
    const parent = isSequence(engine, parentHandle) ? undefined : findObject(engine, parentHandle);
    if (parent !== undefined && derivationKdfHash(parent) !== undefined) {
      const object = await createDerived(engine, parent, inSensitive, inPublic);
      const objectHandle = engine.volatile.objects.load(object);
      return { handles: { objectHandle }, params: { outPrivate: new Uint8Array(0), outPublic: object.publicArea, name: object.name } } as never;
    }
  }
  let template: TPMT_PUBLIC;
  try {
    template = decodeTemplate(inPublic);
  } catch (e) {
    throw new TpmError(rcForParameter(e instanceof ParseError ? unmarshalRc(e, TPM_RC.TYPE) : TPM_RC.VALUE, 2));
  }
  let object: LoadedObject;
  let outPrivate: Uint8Array = new Uint8Array(0);
  if (parentHandle >>> 24 === TPM_HT.PERMANENT) {
    checkTemplate(template, inSensitive.data, inSensitive.userAuth, 'primary');
    freeSlot(engine);
    object = primaryLoadedObject(parentHandle, await derivePrimary(engine, parentHandle, template, inSensitive));
  } else {
    const parent = storageParent(engine, parentHandle);
    freeSlot(engine);
    const created = await createOrdinary(engine, parent, template, inSensitive);
    outPrivate = created.outPrivate;
    object = childLoadedObject(parent, created.derived);
  }
  const objectHandle = engine.volatile.objects.load(object);
  return { handles: { objectHandle }, params: { outPrivate, outPublic: object.publicArea, name: object.name } } as never;
});

const P_IN_SENSITIVE = 1;
const P_IN_PUBLIC = 2;

/**
 * The KDF hash of a derivation parent (Part 1 §27.4: a restricted decrypt
 * keyedHash whose scheme is XOR with KDF1_SP800_108, the reference's
 * `attributes.derivation`), or undefined for any other object.
 */
function derivationKdfHash(parent: LoadedObject): number | undefined {
  const p = parent.publicArea;
  const a = p.objectAttributes;
  if (p.type !== TPM_ALG.KEYEDHASH || !a.restricted || !a.decrypt || a.sign || parent.publicOnly === true) return undefined;
  const scheme = p.parameters.scheme;
  if (scheme.scheme !== TPM_ALG.XOR || scheme.details.kdf !== TPM_ALG.KDF1_SP800_108) return undefined;
  return scheme.details.hashAlg;
}

/**
 * TPMS_DERIVE at the start of inSensitive.data (SetLabelAndContext): bytes
 * after it are ignored, as the reference's unmarshal leaves them. A
 * truncated or oversized label is the unmarshal code without a parameter
 * number, as the reference returns it.
 */
function sensitiveDerive(data: Uint8Array): { label: Uint8Array; context: Uint8Array } {
  let at = 0;
  const label = (): Uint8Array => {
    if (data.length - at < 2) throw new TpmError(TPM_RC.INSUFFICIENT);
    const size = (data[at]! << 8) | data[at + 1]!;
    at += 2;
    if (size > LIMITS.LABEL_MAX_BUFFER) throw new TpmError(TPM_RC.SIZE);
    if (data.length - at < size) throw new TpmError(TPM_RC.INSUFFICIENT);
    const out = data.slice(at, at + size);
    at += size;
    return out;
  };
  return { label: label(), context: label() };
}

/**
 * Part 3 §12.9 under a derivation parent: the template's unique is a
 * TPMS_DERIVE (label, context), completed by one in inSensitive.data where
 * the template's is empty; the key is derived from the parent's key, label
 * and context (keygen.ts deriveObject), never from the RNG. In the
 * reference's order: a free slot, the template, the authValue size, no RSA
 * (TPM_RC_TYPE on inPublic), sensitiveDataOrigin CLEAR (TPM_RC_ATTRIBUTES,
 * no parameter number), the attribute rules of a loaded object, then the
 * label and context.
 */
async function createDerived(engine: TpmEngine, parent: LoadedObject, inSensitive: TPMS_SENSITIVE_CREATE, inPublic: Uint8Array): Promise<LoadedObject> {
  freeSlot(engine);
  let template: TPMT_PUBLIC_DERIVE;
  try {
    template = decodeTemplate(inPublic, { derivation: true });
  } catch (e) {
    throw new TpmError(rcForParameter(e instanceof ParseError ? unmarshalRc(e, TPM_RC.TYPE) : TPM_RC.VALUE, P_IN_PUBLIC));
  }
  const { unique: derive, ...rest } = template;
  const area = { ...rest, unique: new Uint8Array(0) } as TPMT_PUBLIC;
  if (area.nameAlg === TPM_ALG.NULL || !isHashAlg(area.nameAlg)) throw new TpmError(rcForParameter(TPM_RC.HASH, P_IN_PUBLIC));
  if (inSensitive.userAuth.length > digestSize(area.nameAlg)) throw new TpmError(rcForParameter(TPM_RC.SIZE, P_IN_SENSITIVE));
  // Part 1 §27.4: the reference derives no RSA keys (a prime search from a KDF stream).
  if (area.type === TPM_ALG.RSA) throw new TpmError(rcForParameter(TPM_RC.TYPE, P_IN_PUBLIC));
  if (area.objectAttributes.sensitiveDataOrigin) throw new TpmError(TPM_RC.ATTRIBUTES);
  // PublicAttributesValidation: the rules a loaded object obeys (a derived asymmetric key is not of TPM origin).
  checkTemplate(area, new Uint8Array(0), inSensitive.userAuth, false);
  checkUnderParent(parent, area, P_IN_PUBLIC);
  const a = area.objectAttributes;
  const pa = parent.publicArea.objectAttributes;
  // Part 1 §23.3.2.3: under a parent that is not fixedTPM, encryptedDuplication is inherited.
  if (!pa.fixedTPM && a.encryptedDuplication !== pa.encryptedDuplication) throw new TpmError(rcForParameter(TPM_RC.ATTRIBUTES, P_IN_PUBLIC));
  // Part 1 §27.4: a derived object has its parent's fixedTPM and is fixedParent (it exists only under this parent).
  if (a.fixedTPM !== pa.fixedTPM || !a.fixedParent) throw new TpmError(rcForParameter(TPM_RC.ATTRIBUTES, P_IN_PUBLIC));
  const fromSensitive = inSensitive.data.length === 0 ? undefined : sensitiveDerive(inSensitive.data);
  const label = derive.label.length !== 0 || fromSensitive === undefined ? derive.label : fromSensitive.label;
  const context = derive.context.length !== 0 || fromSensitive === undefined ? derive.context : fromSensitive.context;
  let d;
  try {
    d = await deriveObject({
      kdfHashAlg: derivationKdfHash(parent)!,
      parentKey: parent.sensitive.sensitive as Uint8Array,
      label,
      context,
      template: area,
      userAuth: inSensitive.userAuth,
    });
  } catch (e) {
    if (e instanceof TpmError && e.parameter === undefined && e.handle === undefined && e.baseCode !== TPM_RC.NO_RESULT) {
      throw new TpmError(rcForParameter(e.baseCode, P_IN_PUBLIC));
    }
    throw e;
  }
  return childLoadedObject(parent, d);
}

const P_PRIVATE = 1;
const P_PUBLIC = 2;
const P_HIERARCHY = 3;

/** The node:crypto key of a public-only object: RSA/ECC public key, or an empty secret for symmetric types. */
function publicOnlyKey(publicArea: TPMT_PUBLIC): KeyObject {
  if (publicArea.type === TPM_ALG.ECC) {
    // CryptValidateKeys: a public ECC key has coordinates of exactly the curve's size (leading zeros count here).
    const size = CURVE_ORDERS.get(publicArea.parameters.curveID)?.size;
    const { x, y } = publicArea.unique;
    if (size !== undefined && (x.length !== size || y.length !== size)) throw new TpmError(rcForParameter(TPM_RC.KEY, P_PUBLIC));
  }
  if (publicArea.type === TPM_ALG.RSA || publicArea.type === TPM_ALG.ECC) {
    try {
      return publicKeyFromArea(publicArea);
    } catch {
      // An unusable modulus or a point off the curve (the reference's CryptValidateKeys).
      throw new TpmError(rcForParameter(publicArea.type === TPM_ALG.ECC ? TPM_RC.ECC_POINT : TPM_RC.KEY, P_PUBLIC));
    }
  }
  return createSecretKey(new Uint8Array(0));
}

/** The key of an RSA or symmetric object loaded with its sensitive area, which must belong to the public area. */
function boundKey(publicArea: TPMT_PUBLIC, sensitive: TPMT_SENSITIVE): KeyObject {
  try {
    return keyFromSensitive(publicArea, sensitive);
  } catch {
    // The sensitive area does not belong to the public area (CryptValidateKeys); libtpms names no parameter.
    throw new TpmError(TPM_RC.BINDING);
  }
}

/**
 * The key of an ECC object loaded with its private scalar, checked as the
 * reference's CryptValidateKeys does, on numbers (BnFrom2B, AdjustNumberB):
 * leading zeros do not count, in d or in the point. 0 < d < n, else
 * TPM_RC_KEY_SIZE naming no parameter (as libtpms); with a nameAlg, the
 * public point must be [d]G, else TPM_RC_BINDING. Without one the point is
 * not looked at (the object has no Name to bind): the key is d's.
 */
function eccPrivateKey(publicArea: TPMT_PUBLIC, sensitive: TPMT_SENSITIVE): KeyObject {
  if (publicArea.type !== TPM_ALG.ECC || sensitive.sensitiveType !== TPM_ALG.ECC) throw new TpmError(rcForParameter(TPM_RC.TYPE, P_PRIVATE));
  const curve = CURVE_ORDERS.get(publicArea.parameters.curveID);
  if (curve === undefined) throw new TpmError(rcForParameter(TPM_RC.CURVE, P_PUBLIC));
  const d = bigIntFromBytes(sensitive.sensitive);
  if (d === 0n || d >= curve.order) throw new TpmError(TPM_RC.KEY_SIZE);
  const Q = curve.noble.Point.BASE.multiply(d).toAffine();
  const { x, y } = publicArea.unique;
  if (publicArea.nameAlg !== TPM_ALG.NULL && (bigIntFromBytes(x) !== Q.x || bigIntFromBytes(y) !== Q.y)) throw new TpmError(TPM_RC.BINDING);
  // node:crypto takes values of the curve's size.
  const unique = { x: bytesFromBigInt(Q.x, curve.size), y: bytesFromBigInt(Q.y, curve.size) };
  return keyFromSensitive({ ...publicArea, unique }, { ...sensitive, sensitive: bytesFromBigInt(d, curve.size) });
}

/**
 * Part 3 §12.3: a public key (any hierarchy), or a public and sensitive area
 * in the clear, which only the NULL hierarchy takes and which must not look
 * like a key this TPM protects (fixedTPM, fixedParent and restricted CLEAR).
 */
export const loadExternalHandler = handler(LoadExternal, ({ engine }, _h, { inPrivate, inPublic, hierarchy }) => {
  if (inPrivate !== null && hierarchy !== TPM_RH.NULL) throw new TpmError(rcForParameter(TPM_RC.HIERARCHY, P_HIERARCHY));
  if (!engine.hierarchyEnabled(hierarchy)) throw new TpmError(rcForParameter(TPM_RC.HIERARCHY, P_HIERARCHY));
  const a = inPublic.objectAttributes;
  // A key in the clear must not pass for one this TPM protects: not fixedTPM / fixedParent, and not restricted (a
  // restricted signer would sign attestation structures, a restricted decrypter would be a parent; libtpms agrees).
  if (inPrivate !== null && (a.fixedTPM || a.fixedParent || a.restricted)) throw new TpmError(rcForParameter(TPM_RC.ATTRIBUTES, P_PUBLIC));
  // Part 3 §12.3 admits nameAlg TPM_ALG_NULL here: an object without a Name (empty, as libtpms answers), usable
  // only through its handle, with an empty authValue and authPolicy.
  checkTemplate(inPublic, new Uint8Array(0), trimAuthValue(inPrivate?.authValue ?? new Uint8Array(0)), false, true);
  freeSlot(engine);
  const name = objectName(inPublic);
  let sensitive: TPMT_SENSITIVE;
  let key: KeyObject;
  if (inPrivate !== null) {
    if (inPrivate.sensitiveType !== inPublic.type) throw new TpmError(rcForParameter(TPM_RC.TYPE, P_PRIVATE));
    sensitive = { ...inPrivate, authValue: trimAuthValue(inPrivate.authValue) };
    key = inPublic.type === TPM_ALG.ECC ? eccPrivateKey(inPublic, sensitive) : boundKey(inPublic, sensitive);
  } else {
    sensitive = { sensitiveType: inPublic.type, authValue: new Uint8Array(0), seedValue: new Uint8Array(0), sensitive: new Uint8Array(0) } as TPMT_SENSITIVE;
    key = publicOnlyKey(inPublic);
  }
  const objectHandle = engine.volatile.objects.load({
    publicArea: inPublic,
    sensitive,
    name,
    // An external object has no parent chain in this TPM: its QN is its Name (as libtpms answers ReadPublic).
    qualifiedName: name,
    hierarchy,
    primary: false,
    key,
    publicOnly: inPrivate === null,
  });
  return { handles: { objectHandle }, params: { name } } as never;
});

const P_ENCRYPTION_KEY = 1;
const P_OBJECT_PUBLIC = 2;
const P_DUPLICATE = 3;
const P_SYM_SEED = 4;

/**
 * Part 3 §13.3: the duplication blob tpm2_import and Duplicate produce —
 * optional outer wrapper (seed = decryptSecret(parent, "DUPLICATE",
 * inSymSeed)) and optional inner wrapper (encryptionKey, AES-CFB, inner
 * integrity) — opened with the core's unwrapDuplicate, checked like a Load
 * would, and wrapped again as an ordinary private under the new parent.
 */
export const importHandler = handler(Import, ({ engine }, { parentHandle }, params) => {
  const { encryptionKey, objectPublic, duplicate, inSymSeed, symmetricAlg } = params;
  const parent = storageParent(engine, parentHandle);
  const a = objectPublic.objectAttributes;
  if (symmetricAlg.algorithm === TPM_ALG.NULL) {
    if (encryptionKey.length !== 0) throw new TpmError(rcForParameter(TPM_RC.SIZE, P_ENCRYPTION_KEY));
    // Part 1 §23.3.2.3: encryptedDuplication demands both wrappers.
    if (a.encryptedDuplication) throw new TpmError(rcForParameter(TPM_RC.ATTRIBUTES, P_ENCRYPTION_KEY));
  } else if (encryptionKey.length * 8 !== (symmetricAlg.keyBits ?? 0)) {
    throw new TpmError(rcForParameter(TPM_RC.SIZE, P_ENCRYPTION_KEY));
  }
  if (inSymSeed.length !== 0) {
    // Only an asymmetric parent can receive an encrypted seed.
    if (parent.publicArea.type === TPM_ALG.SYMCIPHER) throw new TpmError(rcForHandle(TPM_RC.TYPE, 1));
  } else if (a.encryptedDuplication) {
    throw new TpmError(rcForParameter(TPM_RC.ATTRIBUTES, P_SYM_SEED));
  }
  // An imported object was not made by this TPM and may move again (Part 3 §13.3).
  if (a.fixedTPM || a.fixedParent) throw new TpmError(rcForParameter(TPM_RC.ATTRIBUTES, P_OBJECT_PUBLIC));
  if (objectPublic.nameAlg === TPM_ALG.NULL) throw new TpmError(rcForParameter(TPM_RC.HASH, P_OBJECT_PUBLIC));
  let sensitive: TPMT_SENSITIVE;
  try {
    sensitive = unwrapDuplicate(parent.key, parent.publicArea, { objectPublic, duplicate, inSymSeed, symmetricAlg, encryptionKey });
  } catch (e) {
    throw new TpmError(importErrorRc(e));
  }
  // Checked now as a Load would (ObjectLoad): attributes, authValue size, and that the key belongs to the public area.
  checkTemplate(objectPublic, new Uint8Array(0), new Uint8Array(0), false);
  if (trimAuthValue(sensitive.authValue).length > digestSize(objectPublic.nameAlg)) throw new TpmError(rcForParameter(TPM_RC.SIZE, P_DUPLICATE));
  try {
    keyFromSensitive(objectPublic, sensitive);
  } catch {
    // Not bound to objectPublic (ObjectLoad → CryptValidateKeys): libtpms names no parameter, as for LoadExternal.
    throw new TpmError(TPM_RC.BINDING);
  }
  const name = objectName(objectPublic);
  const outPrivate = produceOuterWrap(privateWrap(parent, name), encode(TPM2B_SENSITIVE, sensitive), { iv: engine.random(16) });
  return { handles: {}, params: { outPrivate } } as never;
});

/** Where unwrapDuplicate failed, as the reference's Import reports it. */
function importErrorRc(e: unknown): number {
  if (e instanceof ParseError) return rcForParameter(unmarshalRc(e, TPM_RC.TYPE), P_DUPLICATE);
  if (e instanceof CryptoError) {
    // The seed did not decrypt with the parent's key: inSymSeed (CryptSecretDecrypt's TPM_RC_VALUE).
    if (e.code === 'crypto.decrypt') return rcForParameter(TPM_RC.VALUE, P_SYM_SEED);
    // Outer HMAC or inner integrity: a changed blob, another parent, or another public area.
    if (e.code === 'crypto.integrity') return rcForParameter(TPM_RC.INTEGRITY, P_DUPLICATE);
    // The decrypted sensitive area is of another type than objectPublic.
    if (e.code === 'crypto.key') return rcForParameter(TPM_RC.TYPE, P_OBJECT_PUBLIC);
  }
  if (e instanceof TrustrootError) return rcForParameter(TPM_RC.VALUE, P_DUPLICATE);
  return TPM_RC.FAILURE;
}

export const IMPORT_HANDLERS: readonly CommandHandler[] = [
  createLoadedHandler,
  loadExternalHandler,
  importHandler,
  unsealHandler,
  objectChangeAuthHandler,
] as unknown as readonly CommandHandler[];
