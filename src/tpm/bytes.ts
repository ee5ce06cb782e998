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
