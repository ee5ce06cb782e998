/**
 * Hash, HMAC and event sequence objects (Part 3 §17, Part 1 §32.4.4): the
 * running digest state of a sequence that takes an object slot and a
 * transient handle until SequenceComplete / EventSequenceComplete or
 * FlushContext frees it. It has no public area and an empty Name; its
 * authValue is the `auth` given at the start (USER role, password or HMAC).
 */
import { createHash, type Hash } from 'node:crypto';
import { TPM_ALG, TPM_GENERATED_VALUE } from '../tpm/constants.js';
import { hash, nodeHashName } from '../tpm/crypto/hash.js';
import type { TpmEngine } from './engine.js';
import type { SequenceSlot } from './objects.js';

export type SequenceKind = 'hash' | 'hmac' | 'event';

/**
 * The hashes this TPM implements (capability.ts lists the same four, as
 * libtpms has them): an event sequence computes each (Part 3 §17.7), and
 * Hash, HMAC and the sequences take no other (TPM_RC_HASH, as the
 * reference's TPMI_ALG_HASH unmarshaling answers).
 */
export const EVENT_SEQUENCE_HASHES: readonly number[] = [TPM_ALG.SHA1, TPM_ALG.SHA256, TPM_ALG.SHA384, TPM_ALG.SHA512];

/** Whether `alg` is one of the hashes this TPM implements. */
export function isImplementedHash(alg: number): boolean {
  return EVENT_SEQUENCE_HASHES.includes(alg);
}

/** Input block sizes of the implemented hashes (FIPS 180-4 §1): the HMAC key block. */
const HASH_BLOCK_BYTES: ReadonlyMap<number, number> = new Map([
  [TPM_ALG.SHA1, 64],
  [TPM_ALG.SHA256, 64],
  [TPM_ALG.SHA384, 128],
  [TPM_ALG.SHA512, 128],
]);

/** The input block size of an implemented hash (the HMAC key block, RFC 2104); undefined for any other algorithm. */
export function hashBlockSize(alg: number): number | undefined {
  return HASH_BLOCK_BYTES.get(alg);
}

/**
 * HMAC (RFC 2104) as its running inner hash and the outer key block, so that
 * an HMAC sequence can be copied like a hash sequence (ContextLoad of a saved
 * sequence gives an independent one); node:crypto's Hmac cannot be copied.
 */
export class HmacState {
  readonly #inner: Hash;
  readonly #outerKey: Uint8Array;
  readonly #hashName: string;

  private constructor(inner: Hash, outerKey: Uint8Array, hashName: string) {
    this.#inner = inner;
    this.#outerKey = outerKey;
    this.#hashName = hashName;
  }

  /** K0 = H(K) when longer than a block, zero-padded; inner = H(K0 ⊕ ipad ‖ …), outer = H(K0 ⊕ opad ‖ inner). */
  static start(hashAlg: number, key: Uint8Array): HmacState {
    const block = hashBlockSize(hashAlg);
    if (block === undefined) throw new TypeError(`HmacState: 0x${hashAlg.toString(16)} is not an implemented hash`);
    const k0 = new Uint8Array(block);
    k0.set(key.length > block ? hash(hashAlg, key) : key);
    const name = nodeHashName(hashAlg);
    const inner = createHash(name).update(k0.map((b) => b ^ 0x36));
    return new HmacState(inner, k0.map((b) => b ^ 0x5c), name);
  }

  update(data: Uint8Array): this {
    this.#inner.update(data);
    return this;
  }

  digest(): Buffer {
    return createHash(this.#hashName).update(this.#outerKey).update(this.#inner.digest()).digest();
  }

  copy(): HmacState {
    return new HmacState(this.#inner.copy(), this.#outerKey, this.#hashName);
  }
}

export interface SequenceObject extends SequenceSlot {
  readonly kind: SequenceKind;
  /** The `auth` of HMAC_Start / HashSequenceStart (Part 3 §17.2, §17.4). */
  readonly authValue: Uint8Array;
  /** One running state per hash: one for hash and HMAC sequences, EVENT_SEQUENCE_HASHES for an event sequence. */
  readonly states: readonly { readonly hashAlg: number; readonly state: Hash | HmacState }[];
  /**
   * Hash sequences only: whether data has been added yet, and whether its first
   * block could not be a TPM-generated structure (the reference's firstBlock /
   * ticketSafe attributes): only then does SequenceComplete give a ticket.
   */
  firstBlock: boolean;
  ticketSafe: boolean;
}

/**
 * The reference's TicketIsSafe (Part 3 §15.4, §17.6): data that starts with
 * TPM_GENERATED_VALUE, or is too short to tell, could be a forged attestation
 * structure, so the TPM gives no hash-check ticket for it.
 */
export function ticketIsSafe(data: Uint8Array): boolean {
  if (data.length < 4) return false;
  const v = ((data[0]! << 24) | (data[1]! << 16) | (data[2]! << 8) | data[3]!) >>> 0;
  return v !== TPM_GENERATED_VALUE;
}

function newSequence(kind: SequenceKind, authValue: Uint8Array, states: SequenceObject['states']): SequenceObject {
  return { sequence: true, kind, authValue: authValue.slice(), states, firstBlock: false, ticketSafe: false };
}

/** A hash sequence (Part 3 §17.4 with a hash algorithm). */
export function hashSequence(hashAlg: number, authValue: Uint8Array): SequenceObject {
  return newSequence('hash', authValue, [{ hashAlg, state: createHash(nodeHashName(hashAlg)) }]);
}

/** An HMAC sequence keyed with a keyedHash object's secret (Part 3 §17.2). */
export function hmacSequence(hashAlg: number, key: Uint8Array, authValue: Uint8Array): SequenceObject {
  return newSequence('hmac', authValue, [{ hashAlg, state: HmacState.start(hashAlg, key) }]);
}

/** An event sequence (Part 3 §17.4 with TPM_ALG_NULL): every implemented hash at once. */
export function eventSequence(authValue: Uint8Array): SequenceObject {
  return newSequence(
    'event',
    authValue,
    EVENT_SEQUENCE_HASHES.map((hashAlg) => ({ hashAlg, state: createHash(nodeHashName(hashAlg)) })),
  );
}

/** SequenceUpdate (Part 3 §17.5): adds data; a hash sequence's first block decides whether a ticket is safe. */
export function updateSequence(seq: SequenceObject, data: Uint8Array): void {
  if (seq.kind === 'hash' && !seq.firstBlock) {
    seq.firstBlock = true;
    seq.ticketSafe = ticketIsSafe(data);
  }
  for (const s of seq.states) s.state.update(data);
}

/**
 * Adds the last data and ends the sequence (SequenceComplete, Part 3 §17.6;
 * EventSequenceComplete, §17.7): one digest per hash. The state cannot be used again.
 */
export function completeSequence(seq: SequenceObject, data: Uint8Array): { hashAlg: number; digest: Uint8Array }[] {
  if (seq.kind === 'hash' && !seq.firstBlock) {
    seq.firstBlock = true;
    seq.ticketSafe = ticketIsSafe(data);
  }
  return seq.states.map((s) => {
    s.state.update(data);
    return { hashAlg: s.hashAlg, digest: new Uint8Array(s.state.digest()) };
  });
}

/** The sequence loaded at `handle`, or undefined. */
export function findSequence(engine: TpmEngine, handle: number): SequenceObject | undefined {
  return engine.volatile.objects.getSequence(handle) as SequenceObject | undefined;
}

/**
 * The authValue that authorizes a sequence handle (USER role; Part 1 §32.4.4:
 * a sequence is authorized with its auth like an object with userWithAuth),
 * or undefined when no sequence is loaded there. For the engine's authorization step.
 */
export function sequenceAuthValue(engine: TpmEngine, handle: number): Uint8Array | undefined {
  return findSequence(engine, handle)?.authValue;
}
