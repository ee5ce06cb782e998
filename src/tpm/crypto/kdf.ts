/**
 * The two TPM key derivation functions.
 *
 * - KDFa: SP 800-108 counter mode with HMAC as the PRF (Part 1, "Key
 *   Derivation Function", KDFa; go-tpm cites it as §11.4.9.2 of an earlier
 *   revision). Session keys, parameter-encryption keys, storage and integrity keys.
 * - KDFe: SP 800-56A concatenation KDF with the hash itself (Part 1, same
 *   clause, KDFe; §11.4.9.3 there). ECC salts, credential and duplication seeds.
 *
 * Byte layout follows the reference implementation (CryptHash.c CryptKDFa /
 * CryptKDFe), checked against 100 + 100 vectors in test/vectors/.
 */
import { ArgumentError } from '../errors.js';
import { digestSize, hash, hmac, nodeHashName } from './hash.js';

/**
 * Largest output either KDF produces here: 2^16 bytes. TPM uses need at most a
 * few hundred bytes (XOR obfuscation of a TPM2B_MAX_BUFFER is the largest),
 * so this only stops a runaway request.
 */
export const KDF_MAX_BITS = 65536 * 8;

const encoder = new TextEncoder();
const NUL = new Uint8Array([0]);

function u32be(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n >>> 0);
  return b;
}

function checkBytes(v: unknown, what: string): void {
  if (!(v instanceof Uint8Array)) throw new ArgumentError(`${what}: expected Uint8Array, got ${v === null ? 'null' : typeof v}`);
}

/**
 * The label goes on the wire as its bytes followed by exactly one 0x00 (the
 * reference stores "ATH\0" etc. and adds no second NUL), so a NUL inside the
 * string would change where the label ends: reject it.
 */
function labelBytes(label: unknown, fn: string): Uint8Array {
  if (typeof label !== 'string') throw new ArgumentError(`${fn} label: expected string, got ${typeof label}`);
  if (label.includes('\0')) throw new ArgumentError(`${fn} label: must not contain NUL (the terminator is added here; pass e.g. "STORAGE")`);
  return encoder.encode(label);
}

/**
 * 0 is allowed: the reference returns an empty result for it, one of go-tpm's
 * vectors uses it, and XOR obfuscation of an empty parameter asks for 0 bits.
 */
function checkBits(bits: unknown, fn: string): number {
  if (typeof bits !== 'number' || !Number.isSafeInteger(bits) || bits < 0 || bits > KDF_MAX_BITS) {
    throw new ArgumentError(`${fn} bits: expected an integer in 0..${KDF_MAX_BITS}, got ${String(bits)}`);
  }
  return bits;
}

/** Validates up front, so even a 0-bit request fails for an unusable hash. */
function blockSize(hashAlg: number): number {
  nodeHashName(hashAlg);
  return digestSize(hashAlg);
}

/**
 * Concatenate the blocks K(1) ‖ K(2) ‖ … until ⌈bits/8⌉ bytes, keep that many,
 * and when bits is not a multiple of 8 clear the surplus high bits of the
 * FIRST byte (the TPM treats the result as a big-endian number of `bits` bits).
 */
function expand(bits: number, blockSize: number, block: (counter: Uint8Array) => Uint8Array): Uint8Array {
  const bytes = Math.ceil(bits / 8);
  const out = new Uint8Array(bytes);
  for (let i = 1, off = 0; off < bytes; i++, off += blockSize) {
    const k = block(u32be(i));
    out.set(k.subarray(0, Math.min(blockSize, bytes - off)), off);
  }
  if (bits % 8 !== 0) out[0]! &= (1 << bits % 8) - 1;
  return out;
}

/**
 * KDFa(hashAlg, key, label, contextU, contextV, bits):
 * K(i) = HMAC_hashAlg(key, [i]₃₂ ‖ label ‖ 0x00 ‖ contextU ‖ contextV ‖ [bits]₃₂), i = 1, 2, …
 *
 * @param hashAlg TPM_ALG_ID of the hash (SHA1, SHA256, …).
 * @param key the HMAC key (may be empty).
 * @param label e.g. "ATH", "CFB", "XOR", "STORAGE", "INTEGRITY", without a terminator.
 * @param contextU first context (e.g. nonceNewer, a Name); empty when absent.
 * @param contextV second context (e.g. nonceOlder); empty when absent.
 * @param bits number of bits to produce, 0..{@link KDF_MAX_BITS}.
 * @returns ⌈bits/8⌉ bytes.
 * @throws ArgumentError (`crypto.argument`) for a non-hash algorithm, a bad label, bits out of range or a non-Uint8Array input;
 *   UnsupportedAlgorithmError (`crypto.unsupported`) when Node cannot compute the hash.
 * @example kdfa(TPM_ALG.SHA256, seed, 'STORAGE', name, new Uint8Array(), 128)
 */
export function kdfa(hashAlg: number, key: Uint8Array, label: string, contextU: Uint8Array, contextV: Uint8Array, bits: number): Uint8Array {
  const size = blockSize(hashAlg);
  checkBytes(key, 'kdfa key');
  const l = labelBytes(label, 'kdfa');
  checkBytes(contextU, 'kdfa contextU');
  checkBytes(contextV, 'kdfa contextV');
  const n = checkBits(bits, 'kdfa');
  const bitsBE = u32be(n);
  return expand(n, size, (counter) => hmac(hashAlg, key, counter, l, NUL, contextU, contextV, bitsBE));
}

/**
 * KDFe(hashAlg, Z, label, partyUInfo, partyVInfo, bits):
 * K(i) = H_hashAlg([i]₃₂ ‖ Z ‖ label ‖ 0x00 ‖ partyUInfo ‖ partyVInfo), i = 1, 2, …
 * (no length field, unlike KDFa).
 *
 * @param hashAlg TPM_ALG_ID of the hash.
 * @param z the shared secret: x-coordinate of the ECDH point.
 * @param label e.g. "SECRET", "IDENTITY", "DUPLICATE", without a terminator.
 * @param partyUInfo x-coordinate of the ephemeral public key.
 * @param partyVInfo x-coordinate of the static public key.
 * @param bits number of bits to produce, 0..{@link KDF_MAX_BITS}.
 * @returns ⌈bits/8⌉ bytes.
 * @throws as {@link kdfa}.
 */
export function kdfe(hashAlg: number, z: Uint8Array, label: string, partyUInfo: Uint8Array, partyVInfo: Uint8Array, bits: number): Uint8Array {
  const size = blockSize(hashAlg);
  checkBytes(z, 'kdfe z');
  const l = labelBytes(label, 'kdfe');
  checkBytes(partyUInfo, 'kdfe partyUInfo');
  checkBytes(partyVInfo, 'kdfe partyVInfo');
  const n = checkBits(bits, 'kdfe');
  return expand(n, size, (counter) => hash(hashAlg, counter, z, l, NUL, partyUInfo, partyVInfo));
}

/**
 * One block of KDFa with a byte-string label: K(counter) =
 * HMAC_hashAlg(key, [counter]₃₂ ‖ label ‖ 0x00? ‖ contextU ‖ contextV ‖ [bits]₃₂).
 * The 0x00 follows the reference's CryptKDFa rule for labels that are data
 * (a derivation's TPMS_DERIVE label): it is added unless the label already
 * ends in 0x00, and always for an empty label. For a label without NUL this
 * is {@link kdfa}'s block `counter`. Streams longer than one call (the
 * derivation "DRBG" of Part 1 §27.4 / CreateLoaded) ask block by block.
 *
 * @param counter the block index, 1 for the first block.
 * @param bits the length field L hashed into every block (not the output size).
 * @returns one digest of hashAlg.
 * @throws ArgumentError as {@link kdfa}, or for a counter outside 1..2^32−1.
 */
export function kdfaBlock(hashAlg: number, key: Uint8Array, label: Uint8Array, contextU: Uint8Array, contextV: Uint8Array, bits: number, counter: number): Uint8Array {
  blockSize(hashAlg);
  checkBytes(key, 'kdfaBlock key');
  checkBytes(label, 'kdfaBlock label');
  checkBytes(contextU, 'kdfaBlock contextU');
  checkBytes(contextV, 'kdfaBlock contextV');
  const n = checkBits(bits, 'kdfaBlock');
  if (!Number.isInteger(counter) || counter < 1 || counter > 0xffffffff) throw new ArgumentError(`kdfaBlock counter: expected 1..2^32-1, got ${String(counter)}`);
  const nul = label.length === 0 || label[label.length - 1] !== 0 ? NUL : new Uint8Array(0);
  return hmac(hashAlg, key, u32be(counter), label, nul, contextU, contextV, u32be(n));
}
