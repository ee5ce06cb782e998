/**
 * Part 3 §15 Symmetric Primitives (EncryptDecrypt, EncryptDecrypt2, Hash,
 * HMAC) and §17 Hash/HMAC/Event Sequences (HMAC_Start, HashSequenceStart,
 * SequenceUpdate, SequenceComplete, EventSequenceComplete). Sequence state is
 * in ../sequences.ts; a sequence takes an object slot (objects.ts).
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import {
  EncryptDecrypt,
  EncryptDecrypt2,
  EventSequenceComplete,
  Hash,
  HMAC,
  HMAC_Start,
  HashSequenceStart,
  SequenceComplete,
  SequenceUpdate,
} from '../../tpm/commands/index.js';
import { TPM_ALG, TPM_RH, TPM_ST } from '../../tpm/constants.js';
import { hash, hmac, isHashSupported } from '../../tpm/crypto/hash.js';
import { TPM_RC, TpmError, rcForHandle, rcForParameter } from '../../tpm/rc.js';
import type { TpmEngine } from '../engine.js';
import type { LoadedObject } from '../objects.js';
import { canExtend } from '../pcr-rules.js';
import { completeSequence, eventSequence, findSequence, hashSequence, hmacSequence, isImplementedHash, ticketIsSafe, updateSequence, type SequenceObject } from '../sequences.js';
import { hashCheckDigest } from '../tickets.js';
import { pcrExtendHandler } from './integrity.js';
import { findObject } from './object.js';
import { handler, ok, type HandlerContext } from './handler.js';

const AES_BLOCK = 16;
const EMPTY = new Uint8Array(0);

// ---------------------------------------------------------------------------
// EncryptDecrypt, EncryptDecrypt2

/** Parameter numbers of the two commands' fields (their orders differ, §15.2 vs §15.3). */
interface EncryptDecryptParams {
  readonly decrypt: number;
  readonly mode: number;
  readonly ivIn: number;
  readonly inData: number;
}
const ENCRYPT_DECRYPT_PARAMS: EncryptDecryptParams = { decrypt: 1, mode: 2, ivIn: 3, inData: 4 };
const ENCRYPT_DECRYPT2_PARAMS: EncryptDecryptParams = { inData: 1, decrypt: 2, mode: 3, ivIn: 4 };

function aesName(keyBits: number, mode: string): string {
  return `aes-${keyBits}-${mode}`;
}

/** One AES-ECB block operation (the cipher function E of SP 800-38A). */
function aesBlock(key: Uint8Array, keyBits: number, block: Uint8Array): Uint8Array {
  const c = createCipheriv(aesName(keyBits, 'ecb'), key, null);
  c.setAutoPadding(false);
  return new Uint8Array(c.update(block));
}

function applyCipher(name: string, key: Uint8Array, iv: Uint8Array | null, decrypt: boolean, data: Uint8Array): Uint8Array {
  const c = decrypt ? createDecipheriv(name, key, iv) : createCipheriv(name, key, iv);
  c.setAutoPadding(false);
  const out = new Uint8Array(data.length);
  out.set(c.update(data));
  out.set(c.final(), data.length);
  return out;
}

/** The counter block plus `n` (a 128-bit big-endian counter that wraps, as OpenSSL's CTR mode counts). */
function addCounter(iv: Uint8Array, n: number): Uint8Array {
  const out = iv.slice();
  let carry = n;
  for (let i = out.length - 1; i >= 0 && carry > 0; i--) {
    const v = out[i]! + (carry % 256);
    out[i] = v & 0xff;
    carry = Math.floor(carry / 256) + (v >> 8);
  }
  return out;
}

/**
 * SP 800-38A modes over whole and partial blocks, and the chaining value a
 * caller continues with (ivOut, Part 3 §15.2): CBC the last ciphertext block;
 * CFB the last ciphertext block, a partial one completed with the rest of its
 * keystream block (what libtpms' OpenSSL path reports); OFB the last
 * keystream block; CTR the next counter; ECB none.
 */
function symmetric(key: Uint8Array, keyBits: number, mode: number, decrypt: boolean, iv: Uint8Array, data: Uint8Array): { outData: Uint8Array; ivOut: Uint8Array } {
  if (data.length === 0) return { outData: EMPTY, ivOut: iv.slice() };
  const blocks = Math.ceil(data.length / AES_BLOCK);
  const partial = data.length % AES_BLOCK;
  switch (mode) {
    case TPM_ALG.ECB:
      return { outData: applyCipher(aesName(keyBits, 'ecb'), key, null, decrypt, data), ivOut: iv.slice() };
    case TPM_ALG.CBC: {
      const outData = applyCipher(aesName(keyBits, 'cbc'), key, iv, decrypt, data);
      const cipherText = decrypt ? data : outData;
      return { outData, ivOut: cipherText.slice(cipherText.length - AES_BLOCK) };
    }
    case TPM_ALG.CFB: {
      const outData = applyCipher(aesName(keyBits, 'cfb'), key, iv, decrypt, data);
      const cipherText = decrypt ? data : outData;
      if (partial === 0) return { outData, ivOut: cipherText.slice(cipherText.length - AES_BLOCK) };
      // The register of the last block: the previous ciphertext block, or the IV.
      const lastStart = (blocks - 1) * AES_BLOCK;
      const register = lastStart === 0 ? iv : cipherText.subarray(lastStart - AES_BLOCK, lastStart);
      const ivOut = aesBlock(key, keyBits, register);
      ivOut.set(cipherText.subarray(lastStart));
      return { outData, ivOut };
    }
    case TPM_ALG.OFB: {
      const outData = applyCipher(aesName(keyBits, 'ofb'), key, iv, decrypt, data);
      // The keystream alone: OFB of zeros.
      const stream = applyCipher(aesName(keyBits, 'ofb'), key, iv, false, new Uint8Array(blocks * AES_BLOCK));
      return { outData, ivOut: stream.slice(stream.length - AES_BLOCK) };
    }
    case TPM_ALG.CTR:
      return { outData: applyCipher(aesName(keyBits, 'ctr'), key, iv, decrypt, data), ivOut: addCounter(iv, blocks) };
    default:
      throw new TpmError(TPM_RC.MODE);
  }
}

/** The reference's EncryptDecryptShared: the checks of Part 3 §15.2 in its order, then the cipher. */
function encryptDecrypt(
  engine: TpmEngine,
  keyHandle: number,
  p: { decrypt: number; mode: number; ivIn: Uint8Array; inData: Uint8Array },
  n: EncryptDecryptParams,
): { outData: Uint8Array; ivOut: Uint8Array } {
  const o = findObject(engine, keyHandle);
  if (o === undefined) throw new TpmError(rcForHandle(TPM_RC.HANDLE, 1));
  const pub = o.publicArea;
  if (pub.type !== TPM_ALG.SYMCIPHER) throw new TpmError(rcForHandle(TPM_RC.KEY, 1));
  const a = pub.objectAttributes;
  // Decryption needs `decrypt`, encryption `sign` (Part 3 §15.2); a restricted key does neither.
  if (a.restricted || !(p.decrypt ? a.decrypt : a.sign)) throw new TpmError(rcForHandle(TPM_RC.ATTRIBUTES, 1));
  const sym = pub.parameters.sym;
  let mode: number = sym.mode;
  // A key for CMAC (SMAC) does no encryption.
  if (mode !== TPM_ALG.NULL && mode !== TPM_ALG.CFB && mode !== TPM_ALG.CBC && mode !== TPM_ALG.ECB && mode !== TPM_ALG.OFB && mode !== TPM_ALG.CTR) {
    throw new TpmError(rcForHandle(TPM_RC.MODE, 1));
  }
  // A key with a mode takes only that mode (or NULL); a key without one needs the caller's.
  if (mode !== TPM_ALG.NULL) {
    if (p.mode !== TPM_ALG.NULL && p.mode !== mode) throw new TpmError(rcForParameter(TPM_RC.MODE, n.mode));
  } else {
    if (p.mode === TPM_ALG.NULL) throw new TpmError(rcForParameter(TPM_RC.MODE, n.mode));
    mode = p.mode;
  }
  if (sym.algorithm !== TPM_ALG.AES) throw new TpmError(rcForHandle(TPM_RC.KEY, 1));
  const keyBits = sym.keyBits as number;
  // ECB takes no IV; every other mode exactly one block.
  if (mode === TPM_ALG.ECB ? p.ivIn.length !== 0 : p.ivIn.length !== AES_BLOCK) throw new TpmError(rcForParameter(TPM_RC.SIZE, n.ivIn));
  if ((mode === TPM_ALG.CBC || mode === TPM_ALG.ECB) && p.inData.length % AES_BLOCK !== 0) throw new TpmError(rcForParameter(TPM_RC.SIZE, n.inData));
  const key = o.sensitive.sensitive as Uint8Array;
  if (key.length * 8 !== keyBits) throw new TpmError(rcForHandle(TPM_RC.KEY, 1));
  return symmetric(key, keyBits, mode, p.decrypt !== 0, p.ivIn, p.inData);
}

export const encryptDecryptHandler = handler(EncryptDecrypt, ({ engine }, { keyHandle }, params) =>
  ok<typeof EncryptDecrypt>(encryptDecrypt(engine, keyHandle, params, ENCRYPT_DECRYPT_PARAMS)),
);

export const encryptDecrypt2Handler = handler(EncryptDecrypt2, ({ engine }, { keyHandle }, params) =>
  ok<typeof EncryptDecrypt2>(encryptDecrypt(engine, keyHandle, params, ENCRYPT_DECRYPT2_PARAMS)),
);

// ---------------------------------------------------------------------------
// Hash, HMAC

/** A TPMT_TK_HASHCHECK: a real ticket, or the NULL ticket (Part 2 §10.7.2, hierarchy NULL and an empty digest). */
function hashCheckTicket(engine: TpmEngine, hierarchy: number, hashAlg: number, digest: Uint8Array, safe: boolean) {
  if (hierarchy === TPM_RH.NULL || !safe) return { tag: TPM_ST.HASHCHECK, hierarchy: TPM_RH.NULL, digest: EMPTY };
  return { tag: TPM_ST.HASHCHECK, hierarchy, digest: hashCheckDigest(engine, hierarchy, hashAlg, digest) };
}

function supportedHash(alg: number, p: number): number {
  if (!isImplementedHash(alg) || !isHashSupported(alg)) throw new TpmError(rcForParameter(TPM_RC.HASH, p));
  return alg;
}

/**
 * Part 3 §15.4: the digest and, unless the hierarchy is NULL or the data
 * could be a TPM-generated structure (at least four bytes starting with
 * TPM_GENERATED_VALUE), a hash-check ticket so a restricted key may sign it.
 */
export const hashHandler = handler(Hash, ({ engine }, _h, { data, hashAlg, hierarchy }) => {
  const outHash = hash(supportedHash(hashAlg, 2), data);
  // Shorter data cannot hold TPM_GENERATED_VALUE, so Hash (unlike a sequence) treats it as safe.
  const safe = data.length < 4 || ticketIsSafe(data);
  return ok<typeof Hash>({ outHash, validation: hashCheckTicket(engine, hierarchy, hashAlg, outHash, safe) } as never);
});

/**
 * The HMAC key checks HMAC and HMAC_Start share (Part 3 §15.5, §17.2): an
 * unrestricted keyedHash signing key; the key's scheme hash, or the caller's
 * when the key has none (TPM_RC_VALUE on hashAlg when they disagree or neither names one).
 */
function hmacKeyAndHash(engine: TpmEngine, h: number, hashAlg: number): { key: LoadedObject; hashAlg: number } {
  const o = findObject(engine, h);
  if (o === undefined) throw new TpmError(rcForHandle(TPM_RC.HANDLE, 1));
  const pub = o.publicArea;
  if (pub.type !== TPM_ALG.KEYEDHASH) throw new TpmError(rcForHandle(TPM_RC.TYPE, 1));
  if (pub.objectAttributes.restricted) throw new TpmError(rcForHandle(TPM_RC.ATTRIBUTES, 1));
  if (!pub.objectAttributes.sign) throw new TpmError(rcForHandle(TPM_RC.KEY, 1));
  const scheme = pub.parameters.scheme;
  let alg = hashAlg;
  if (scheme.scheme !== TPM_ALG.NULL) {
    const keyHash = (scheme.details as { hashAlg: number }).hashAlg;
    alg = hashAlg === TPM_ALG.NULL || hashAlg === keyHash ? keyHash : TPM_ALG.NULL;
  }
  if (alg === TPM_ALG.NULL) throw new TpmError(rcForParameter(TPM_RC.VALUE, 2));
  return { key: o, hashAlg: supportedHash(alg, 2) };
}

export const hmacHandler = handler(HMAC, ({ engine }, { handle }, { buffer, hashAlg }) => {
  const { key, hashAlg: alg } = hmacKeyAndHash(engine, handle, hashAlg);
  return ok<typeof HMAC>({ outHMAC: hmac(alg, key.sensitive.sensitive as Uint8Array, buffer) });
});

// ---------------------------------------------------------------------------
// Sequences (Part 3 §17)

function startSequence(engine: TpmEngine, seq: SequenceObject): { handles: { sequenceHandle: number }; params: Record<string, never> } {
  // TPM_RC_OBJECT_MEMORY when every slot is taken.
  const sequenceHandle = engine.volatile.objects.loadSequence(seq);
  return { handles: { sequenceHandle }, params: {} };
}

export const hmacStartHandler = handler(HMAC_Start, ({ engine }, { handle }, { auth, hashAlg }) => {
  const { key, hashAlg: alg } = hmacKeyAndHash(engine, handle, hashAlg);
  return startSequence(engine, hmacSequence(alg, key.sensitive.sensitive as Uint8Array, auth)) as never;
});

/** Part 3 §17.4: a hash sequence, or with TPM_ALG_NULL an event sequence. */
export const hashSequenceStartHandler = handler(HashSequenceStart, ({ engine }, _h, { auth, hashAlg }) => {
  const seq = hashAlg === TPM_ALG.NULL ? eventSequence(auth) : hashSequence(supportedHash(hashAlg, 2), auth);
  return startSequence(engine, seq) as never;
});

/** The sequence at handle `n`; an object that is no sequence is TPM_RC_MODE (the reference's ObjectIsSequence check). */
function sequenceAt(engine: TpmEngine, h: number, n: number): SequenceObject {
  const seq = findSequence(engine, h);
  if (seq !== undefined) return seq;
  throw new TpmError(rcForHandle(findObject(engine, h) !== undefined ? TPM_RC.MODE : TPM_RC.HANDLE, n));
}

export const sequenceUpdateHandler = handler(SequenceUpdate, ({ engine }, { sequenceHandle }, { buffer }) => {
  updateSequence(sequenceAt(engine, sequenceHandle, 1), buffer);
  return ok<typeof SequenceUpdate>({});
});

/**
 * Part 3 §17.6: the digest (ticket as Hash gives, when the sequence's first
 * data was safe) or the HMAC (never a ticket); the sequence is flushed.
 */
export const sequenceCompleteHandler = handler(SequenceComplete, ({ engine }, { sequenceHandle }, { buffer, hierarchy }) => {
  const seq = sequenceAt(engine, sequenceHandle, 1);
  if (seq.kind === 'event') throw new TpmError(rcForHandle(TPM_RC.MODE, 1));
  const [{ hashAlg, digest }] = completeSequence(seq, buffer) as [{ hashAlg: number; digest: Uint8Array }];
  engine.volatile.objects.flush(sequenceHandle);
  const validation =
    seq.kind === 'hash'
      ? // An explicit NULL hierarchy keeps the tag and NULL; an unsafe first block gives the NULL ticket.
        hashCheckTicket(engine, hierarchy, hashAlg, digest, seq.ticketSafe)
      : { tag: TPM_ST.HASHCHECK, hierarchy: TPM_RH.NULL, digest: EMPTY };
  return ok<typeof SequenceComplete>({ result: digest, validation } as never);
});

/**
 * Part 3 §17.7: the digests of every implemented hash; with a PCR, each
 * allocated bank of it is extended (through PCR_Extend's own handler, so the
 * extend, its locality rules and pcrUpdateCounter are written once).
 */
export const eventSequenceCompleteHandler = handler(EventSequenceComplete, (ctx: HandlerContext, { pcrHandle, sequenceHandle }, { buffer }) => {
  const { engine, locality } = ctx;
  const seq = sequenceAt(engine, sequenceHandle, 2);
  if (seq.kind !== 'event') throw new TpmError(rcForHandle(TPM_RC.MODE, 2));
  if (pcrHandle !== TPM_RH.NULL && !canExtend(pcrHandle, locality)) throw new TpmError(TPM_RC.LOCALITY);
  const results = completeSequence(seq, buffer);
  engine.volatile.objects.flush(sequenceHandle);
  if (pcrHandle !== TPM_RH.NULL) pcrExtendHandler.run(ctx, { pcrHandle } as never, { digests: results } as never);
  return ok<typeof EventSequenceComplete>({ results } as never);
});

export const SYMMETRIC_HANDLERS = [
  encryptDecryptHandler, // §15.2
  encryptDecrypt2Handler, // §15.3
  hashHandler, // §15.4
  hmacHandler, // §15.5
  hmacStartHandler, // §17.2
  hashSequenceStartHandler, // §17.4
  sequenceUpdateHandler, // §17.5
  sequenceCompleteHandler, // §17.6
  eventSequenceCompleteHandler, // §17.7
] as const;
