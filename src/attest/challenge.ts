/**
 * Challenges: the verifier's fresh nonce for one attestation, with the times
 * between which an answer to it is accepted.
 *
 * A quote answers a challenge when its extraData (Part 2 §10.12.12
 * TPMS_ATTEST.extraData, the caller's qualifyingData copied by the TPM, Part 3
 * §18.1) equals the challenge's nonce. The nonce is what makes a quote fresh:
 * without it an old quote, signed honestly when the device was still healthy,
 * could be replayed forever. So it is random, at least 128 bits
 * (verifier-pitfalls.md: Keylime test_nonce.py), compared in constant time
 * (go-tpm-tools quote.go), and it expires.
 *
 * Pure: the current time is always an argument; crypto.randomBytes is the
 * only source of randomness and it is used only to make a new challenge.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { EvidenceError } from '../tpm/errors.js';
import { fail, pass, type Check } from './verdict.js';

/** An instant: milliseconds since the Unix epoch, or a Date. */
export type Instant = number | Date;

/**
 * What the verifier sent and keeps until the answer arrives. Plain data
 * (times in milliseconds since the epoch), so any verifier process can store
 * it and another one check the answer.
 */
export interface Challenge {
  /** The nonce the device must pass to Quote/Certify/GetTime as qualifyingData. */
  readonly nonce: Uint8Array;
  /** When it was issued (ms since the epoch). */
  readonly issuedAt: number;
  /** After this instant (ms since the epoch) no answer is accepted. */
  readonly expiresAt: number;
}

/** 128 bits: the least a nonce may carry (verifier-pitfalls.md). */
export const NONCE_MIN_BYTES = 16;
/** What newChallenge makes by default: 256 bits. */
export const NONCE_DEFAULT_BYTES = 32;
/**
 * The longest nonce newChallenge makes: qualifyingData is a TPM2B_DATA of at
 * most sizeof(TPMT_HA) = 66 bytes (Part 2 §10.4.3), and 64 is a whole SHA-512.
 */
export const NONCE_MAX_BYTES = 64;

/** Milliseconds since the epoch of an Instant; refuses NaN, infinities and non-numbers. */
export function instantMs(value: Instant, what = 'instant'): number {
  const ms = value instanceof Date ? value.getTime() : value;
  if (typeof ms !== 'number' || !Number.isFinite(ms)) {
    throw new EvidenceError('evidence.argument', `${what}: expected a finite number of milliseconds or a valid Date`);
  }
  return ms;
}

export interface NewChallengeOptions {
  /** Nonce length in bytes, 16..64 (default 32). */
  readonly nonceBytes?: number;
}

/**
 * A new challenge, valid from `now` for `ttlMs` milliseconds.
 * @throws EvidenceError `evidence.argument` for a non-positive or non-finite ttl, or a nonce length outside 16..64.
 * @example const c = newChallenge(Date.now(), 60_000); // send c.nonce, keep c
 */
export function newChallenge(now: Instant, ttlMs: number, options: NewChallengeOptions = {}): Challenge {
  const issuedAt = instantMs(now, 'now');
  if (typeof ttlMs !== 'number' || !Number.isFinite(ttlMs) || ttlMs <= 0) {
    throw new EvidenceError('evidence.argument', `ttlMs ${String(ttlMs)}: expected a positive number of milliseconds`);
  }
  const n = options.nonceBytes ?? NONCE_DEFAULT_BYTES;
  if (!Number.isInteger(n) || n < NONCE_MIN_BYTES || n > NONCE_MAX_BYTES) {
    throw new EvidenceError('evidence.argument', `nonceBytes ${String(n)}: expected ${NONCE_MIN_BYTES}..${NONCE_MAX_BYTES}`);
  }
  return { nonce: new Uint8Array(randomBytes(n)), issuedAt, expiresAt: issuedAt + ttlMs };
}

/**
 * Checks the shape of a challenge handed to a verifier (it comes from storage, so it is outside input too).
 * @throws EvidenceError `evidence.argument`.
 */
export function checkChallengeShape(challenge: Challenge): void {
  if (challenge === null || typeof challenge !== 'object') throw new EvidenceError('evidence.argument', 'challenge: expected { nonce, issuedAt, expiresAt }');
  if (!(challenge.nonce instanceof Uint8Array)) throw new EvidenceError('evidence.argument', 'challenge.nonce: expected a Uint8Array');
  instantMs(challenge.issuedAt, 'challenge.issuedAt');
  instantMs(challenge.expiresAt, 'challenge.expiresAt');
}

/** Byte equality in constant time for equal lengths (the length of a nonce is not secret). */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * `<prefix>.nonce`: extraData equals the challenge's nonce (constant time),
 * and the nonce has at least 128 bits. A short nonce fails even when it
 * matches: a guessable nonce lets quotes be made ahead of time.
 * Reasons: `nonce.match`, `nonce.mismatch`, `nonce.too-short`.
 */
export function checkNonce(prefix: string, challenge: Challenge, extraData: Uint8Array): Check {
  const id = `${prefix}.nonce`;
  const matches = sameBytes(extraData, challenge.nonce);
  if (challenge.nonce.length < NONCE_MIN_BYTES) {
    return fail(id, 'nonce.too-short', `the challenge nonce has ${challenge.nonce.length} byte(s); at least ${NONCE_MIN_BYTES} are required${matches ? '' : ' (and extraData does not match it)'}`);
  }
  if (!matches) return fail(id, 'nonce.mismatch', `extraData (${extraData.length} byte(s)) is not the challenge nonce: a replayed or foreign attestation`);
  return pass(id, 'nonce.match', `extraData is the ${challenge.nonce.length}-byte challenge nonce`);
}

/**
 * `<prefix>.challenge`: `now` lies within [issuedAt, expiresAt].
 * Reasons: `challenge.fresh`, `challenge.expired`, `challenge.before-issue`.
 */
export function checkChallengeTime(prefix: string, challenge: Challenge, now: Instant): Check {
  const id = `${prefix}.challenge`;
  const t = instantMs(now, 'now');
  if (t > challenge.expiresAt) {
    return fail(id, 'challenge.expired', `the challenge expired ${t - challenge.expiresAt} ms before this answer was checked`);
  }
  if (t < challenge.issuedAt) {
    // The verifier's own clock went backwards, or the challenge record was tampered with.
    return fail(id, 'challenge.before-issue', `the answer is checked ${challenge.issuedAt - t} ms before the challenge was issued`);
  }
  return pass(id, 'challenge.fresh', `answered within the challenge's lifetime (${challenge.expiresAt - t} ms left)`);
}
