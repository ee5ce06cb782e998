/** Byte-array helpers every layer shares. */
import { timingSafeEqual } from 'node:crypto';

/**
 * Whether `a` and `b` hold the same bytes. Runs in time independent of the
 * contents (node:crypto timingSafeEqual), so it is the one compare for
 * secrets, HMACs, nonces and digests alike; only the lengths are public.
 */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The unsigned big-endian integer in `b` (an empty array is 0): TPM2B_* numbers, ECC coordinates, RSA values. */
export function bigIntFromBytes(b: Uint8Array): bigint {
  return b.length === 0 ? 0n : BigInt('0x' + Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex'));
}

/**
 * `v` as exactly `size` big-endian bytes, zeros in front (a coordinate or
 * scalar of a curve's size, a value of the modulus size).
 * @throws RangeError when `v` is negative or does not fit in `size` bytes.
 */
export function bytesFromBigInt(v: bigint, size: number): Uint8Array {
  if (v < 0n || !Number.isSafeInteger(size) || size < 0) throw new RangeError(`bytesFromBigInt: ${v} in ${size} byte(s)`);
  if (v === 0n) return new Uint8Array(size);
  const hex = v.toString(16);
  if (hex.length > size * 2) throw new RangeError(`bytesFromBigInt: the value needs more than ${size} byte(s)`);
  return Uint8Array.from(Buffer.from(hex.padStart(size * 2, '0'), 'hex'));
}
