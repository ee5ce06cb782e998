/**
 * Part 3 §13.1 Duplicate and §13.2 Rewrap.
 *
 * Duplicate: a loaded object's sensitive area wrapped for a new
 * parent (or for TPM_RH_NULL: no outer wrapper). The DUP role is the
 * engine's (a policy session with PolicyCommandCode(Duplicate) or
 * PolicyDuplicationSelect, policy-check.ts); the wrapping is the core's
 * wrapDuplicate (inner wrapper, seed from encryptSecret "DUPLICATE", outer
 * wrapper), never computed here. Checks in the reference's order.
 */
import { Duplicate, Rewrap } from '../../tpm/commands/index.js';
import { TPM_ALG, TPM_RH } from '../../tpm/constants.js';
import { digestSize } from '../../tpm/crypto/hash.js';
import { produceOuterWrap, unwrapOuter, wrapDuplicate, type OuterWrapParams } from '../../tpm/duplication.js';
import { CryptoError, ParseError } from '../../tpm/errors.js';
import { LIMITS } from '../../tpm/limits.js';
import { decryptSecret, encryptSecret } from '../../tpm/secret.js';
import { TPM_RC, TpmError, rcForHandle, rcForParameter } from '../../tpm/rc.js';
import type { TPMT_PUBLIC } from '../../tpm/types/index.js';
import type { LoadedObject } from '../objects.js';
import type { CommandHandler } from './handler.js';
import { handler } from './handler.js';
import { findObject, isSequence } from './object.js';

const H_OBJECT = 1;
const H_NEW_PARENT = 2;
const P_ENCRYPTION_KEY_IN = 1;
const P_SYMMETRIC_ALG = 2;

/**
 * A parent that can receive a seed (the reference's ObjectIsStorage):
 * restricted decrypt, not sign, RSA or ECC. A public-only key will do: the
 * duplicate is for whoever holds its private part.
 */
function newStorageParent(object: LoadedObject | undefined): StorageParentPublic | undefined {
  if (object === undefined) return undefined;
  const p = object.publicArea;
  const a = p.objectAttributes;
  if (!a.restricted || !a.decrypt || a.sign || (p.type !== TPM_ALG.RSA && p.type !== TPM_ALG.ECC)) return undefined;
  return p;
}

type StorageParentPublic = Extract<TPMT_PUBLIC, { type: typeof TPM_ALG.RSA | typeof TPM_ALG.ECC }>;

export const duplicateHandler = handler(Duplicate, ({ engine }, { objectHandle, newParentHandle }, { encryptionKeyIn, symmetricAlg }) => {
  const object = isSequence(engine, objectHandle) ? undefined : findObject(engine, objectHandle);
  if (object === undefined) throw new TpmError(rcForHandle(TPM_RC.HANDLE, H_OBJECT));
  const a = object.publicArea.objectAttributes;
  // Part 1 §23.3.2.3: a fixedParent object never leaves its parent.
  if (a.fixedParent) throw new TpmError(rcForHandle(TPM_RC.ATTRIBUTES, H_OBJECT));
  // No Name, nothing to bind the wrappers to.
  if (object.publicArea.nameAlg === TPM_ALG.NULL) throw new TpmError(rcForHandle(TPM_RC.TYPE, H_OBJECT));
  let parent: TPMT_PUBLIC | null = null;
  if (newParentHandle !== TPM_RH.NULL) {
    const p = isSequence(engine, newParentHandle) ? undefined : newStorageParent(findObject(engine, newParentHandle));
    if (p === undefined) throw new TpmError(rcForHandle(TPM_RC.TYPE, H_NEW_PARENT));
    parent = p;
  }
  const inner = symmetricAlg.algorithm !== TPM_ALG.NULL;
  // Part 3 §13.1: encryptedDuplication needs both wrappers.
  if (a.encryptedDuplication) {
    if (!inner) throw new TpmError(rcForParameter(TPM_RC.SYMMETRIC, P_SYMMETRIC_ALG));
    if (parent === null) throw new TpmError(rcForHandle(TPM_RC.HIERARCHY, H_NEW_PARENT));
  }
  let innerKey: Uint8Array | undefined;
  if (!inner) {
    if (encryptionKeyIn.length !== 0) throw new TpmError(rcForParameter(TPM_RC.SIZE, P_ENCRYPTION_KEY_IN));
  } else {
    const keyBytes = ((symmetricAlg.keyBits ?? 0) + 7) >> 3;
    if (encryptionKeyIn.length !== 0 && encryptionKeyIn.length !== keyBytes) throw new TpmError(rcForParameter(TPM_RC.SIZE, P_ENCRYPTION_KEY_IN));
    // The core's inner wrapper is AES-CFB (the only block cipher this TPM implements).
    if (symmetricAlg.algorithm !== TPM_ALG.AES) throw new TpmError(rcForParameter(TPM_RC.SYMMETRIC, P_SYMMETRIC_ALG));
    innerKey = encryptionKeyIn.length !== 0 ? encryptionKeyIn : engine.random(keyBytes);
  }
  // The reference marshals the sensitive area with its authValue zero-padded to the nameAlg digest (MarshalSensitive).
  const authValue = new Uint8Array(Math.max(digestSize(object.publicArea.nameAlg), object.sensitive.authValue.length));
  authValue.set(object.sensitive.authValue);
  let blob;
  try {
    blob = wrapDuplicate(parent, object.publicArea, { ...object.sensitive, authValue }, {
      innerWrap: innerKey === undefined ? false : { encryptionKey: innerKey },
      // RSA: the seed from the TPM's RNG (an ECC parent's ephemeral key is made by the core).
      ...(parent !== null && parent.type === TPM_ALG.RSA ? { seed: engine.random(digestSize(parent.nameAlg)) } : {}),
    });
  } catch {
    // CryptSecretEncrypt could not use the new parent (its scheme, hash or point): TPM_RC_KEY as the reference.
    throw new TpmError(rcForHandle(TPM_RC.KEY, H_NEW_PARENT));
  }
  // encryptionKeyOut: only a key the TPM made (Part 3 §13.1; swtpm answers so); a given key stays the caller's.
  const encryptionKeyOut = innerKey !== undefined && encryptionKeyIn.length === 0 ? innerKey : new Uint8Array(0);
  return { handles: {}, params: { encryptionKeyOut, duplicate: blob.duplicate, outSymSeed: blob.inSymSeed } } as never;
});

const H_OLD_PARENT = 1;
const H_NEW_PARENT_REWRAP = 2;
const P_IN_DUPLICATE = 1;
const P_IN_SYM_SEED = 3;

/**
 * Part 3 §13.2 Rewrap: the outer wrapper of a duplication blob moved from
 * oldParent to newParent (either may be TPM_RH_NULL: no outer wrapper on
 * that side); the inner wrapper and what it holds are never opened. The
 * pieces are the core's: decryptSecret/unwrapOuter for the old wrapper,
 * encryptSecret/produceOuterWrap for the new (Part 1 §23.3.2.3). Checks and
 * codes in the reference's order (TPM2_Rewrap).
 */
export const rewrapHandler = handler(Rewrap, ({ engine }, { oldParent, newParent }, { inDuplicate, name, inSymSeed }) => {
  // A seed exactly when there is an old parent to decrypt it.
  if ((inSymSeed.length === 0) !== (oldParent === TPM_RH.NULL)) throw new TpmError(rcForHandle(TPM_RC.HANDLE, H_OLD_PARENT));
  let inner = inDuplicate;
  if (oldParent !== TPM_RH.NULL) {
    const loaded = isSequence(engine, oldParent) ? undefined : findObject(engine, oldParent);
    const parent = newStorageParent(loaded);
    if (loaded === undefined || parent === undefined) throw new TpmError(rcForHandle(TPM_RC.TYPE, H_OLD_PARENT));
    let seed: Uint8Array;
    try {
      // A public-only parent has no private key: the seed cannot decrypt, as in the reference.
      if (loaded.publicOnly === true) throw new Error('public-only parent');
      seed = decryptSecret(loaded.key, parent, 'DUPLICATE', inSymSeed);
    } catch {
      // CryptSecretDecrypt's every failure is TPM_RC_VALUE on inSymSeed.
      throw new TpmError(rcForParameter(TPM_RC.VALUE, P_IN_SYM_SEED));
    }
    inner = openOuter({ hashAlg: parent.nameAlg, symmetric: parent.parameters.symmetric, seed, name }, inDuplicate);
  }
  if (newParent === TPM_RH.NULL) return { handles: {}, params: { outDuplicate: inner, outSymSeed: new Uint8Array(0) } } as never;
  const parent = isSequence(engine, newParent) ? undefined : newStorageParent(findObject(engine, newParent));
  if (parent === undefined) throw new TpmError(rcForHandle(TPM_RC.TYPE, H_NEW_PARENT_REWRAP));
  let secret;
  try {
    // RSA: the seed from the TPM's RNG, as Duplicate (an ECC parent's ephemeral key is made by the core).
    secret = encryptSecret(parent, 'DUPLICATE', parent.type === TPM_ALG.RSA ? { seed: engine.random(digestSize(parent.nameAlg)) } : {});
  } catch {
    // CryptSecretEncrypt's code is returned as it is (TPM_RC_KEY for a point it cannot use).
    throw new TpmError(TPM_RC.KEY);
  }
  // The new integrity (u16 ‖ digest) must still fit this TPM's TPM2B_PRIVATE (a blob that had no outer wrapper may not).
  if (inner.length + 2 + digestSize(parent.nameAlg) > engine.profile.limits.privateSize) throw new TpmError(rcForParameter(TPM_RC.VALUE, P_IN_DUPLICATE));
  const outDuplicate = produceOuterWrap({ hashAlg: parent.nameAlg, symmetric: parent.parameters.symmetric, seed: secret.seed, name }, inner);
  return { handles: {}, params: { outDuplicate, outSymSeed: secret.encryptedSecret } } as never;
});

/** UnwrapOuter's codes on inDuplicate: a short blob TPM_RC_INSUFFICIENT, an oversized integrity TPM_RC_SIZE, a wrong HMAC TPM_RC_INTEGRITY. */
function openOuter(params: OuterWrapParams, blob: Uint8Array): Uint8Array {
  // TPM2B_DIGEST unmarshaling of the integrity: a size over the largest digest is TPM_RC_SIZE before any bytes are read.
  if (blob.length >= 2 && ((blob[0]! << 8) | blob[1]!) > LIMITS.MAX_DIGEST) throw new TpmError(rcForParameter(TPM_RC.SIZE, P_IN_DUPLICATE));
  try {
    return unwrapOuter(params, blob);
  } catch (e) {
    if (e instanceof ParseError) throw new TpmError(rcForParameter(TPM_RC.INSUFFICIENT, P_IN_DUPLICATE));
    if (e instanceof CryptoError && e.code === 'crypto.integrity') throw new TpmError(rcForParameter(TPM_RC.INTEGRITY, P_IN_DUPLICATE));
    throw e;
  }
}

export const DUPLICATION_HANDLERS: readonly CommandHandler[] = [duplicateHandler, rewrapHandler] as unknown as readonly CommandHandler[];
