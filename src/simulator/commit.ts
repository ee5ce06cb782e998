/**
 * Commit counters and the ephemeral scalars they name (Part 3 §19.2 Commit,
 * §19.3 EC_Ephemeral, §14.7 ZGen_2Phase, §20.2 Sign with ECDAA; the
 * reference's CryptCommit, CryptGenerateR and CryptEndCommit).
 *
 * A scalar is never stored: r = KDFa(SHA-512, nullProof, "ECDAA Commit",
 * Name, count) reduced into [1, n−1], where count is the UINT64 commit counter
 * when the commitment was made and Name the key's (empty for EC_Ephemeral and
 * ZGen_2Phase). The null hierarchy's proof is the secret (the reference keeps
 * a commitNonce for it): it is new at every TPM Reset and kept across Restart
 * and Resume, exactly the life of a commitment. So two fields of the state
 * carry every outstanding commitment: commitCounter and the commitArray of
 * COMMIT_ARRAY_BITS bits (bit count mod 128 set while the commitment is
 * unused). As libtpms keeps them (state-reset data, gr), they survive TPM
 * Restart and Resume and start over at every TPM Reset (counter 0, no bit set). They are saved with the rest of the state; a commitment needs
 * no write of its own, since only an orderly Shutdown(STATE) — which saves
 * the state — keeps commitments across a power cycle.
 */
import { bigIntFromBytes } from '../tpm/bytes.js';
import { TPM_ALG } from '../tpm/constants.js';
import { kdfa } from '../tpm/crypto/kdf.js';
import type { SimulatorCurve } from './keygen.js';
import type { SimulatorState } from './state.js';

/** Bits of commitArray (the reference's 128-bit array): how many commitments can be outstanding. */
export const COMMIT_ARRAY_BITS = 128;
const INDEX_MASK = COMMIT_ARRAY_BITS - 1;

/** The KDF label (the reference's COMMIT_STRING, which also keeps these bytes apart from the null proof's other uses) and hash (libtpms's CONTEXT_INTEGRITY_HASH_ALG, SHA-512). */
const COMMIT_LABEL = 'ECDAA Commit';
const COMMIT_KDF_HASH = TPM_ALG.SHA512;

function u64(v: bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt.asUintN(64, v));
  return out;
}

function bit(state: SimulatorState, i: number): boolean {
  return (state.commitArray[i >> 3]! & (1 << (i & 7))) !== 0;
}

function setBit(state: SimulatorState, i: number, on: boolean): void {
  const next = state.commitArray.slice();
  if (on) next[i >> 3]! |= 1 << (i & 7);
  else next[i >> 3]! &= ~(1 << (i & 7));
  state.commitArray = next;
}

/** A TPM Reset (the reference's CryptStartup for SU_RESET): counter 0, nothing outstanding (and a new null proof). */
export function resetCommits(state: SimulatorState): void {
  state.commitCounter = 0n;
  state.commitArray = new Uint8Array(COMMIT_ARRAY_BITS / 8);
}

/**
 * The scalar committed under `count` for the key Name `name` (empty for
 * EC_Ephemeral/ZGen_2Phase): KDFa output 8 bytes longer than n reduced into
 * [1, n−1] (FIPS 186-4 §B.4.1), so it is uniform and never 0.
 */
export function commitScalar(state: SimulatorState, curve: SimulatorCurve, name: Uint8Array, count: bigint): bigint {
  const bytes = kdfa(COMMIT_KDF_HASH, state.proofs.null, COMMIT_LABEL, name, u64(count), (curve.size + 8) * 8);
  return (bigIntFromBytes(bytes) % (curve.order - 1n)) + 1n;
}

/**
 * Records a commitment under the current count (the reference's CryptCommit):
 * returns that count (for commitScalar) and its low 16 bits, the counter the caller gets.
 */
export function newCommit(state: SimulatorState): { count: bigint; counter: number } {
  const count = state.commitCounter;
  state.commitCounter = BigInt.asUintN(64, count + 1n);
  const counter = Number(count & 0xffffn);
  setBit(state, counter & INDEX_MASK, true);
  return { count, counter };
}

/**
 * The full count behind a 16-bit `counter` given back to the TPM (the
 * reference's CryptGenerateR check): its bit must be set and its upper bits
 * must fit the current window, else undefined (TPM_RC_VALUE to the caller).
 */
export function committedCount(state: SimulatorState, counter: number): bigint | undefined {
  if (counter < 0 || counter > 0xffff || !bit(state, counter & INDEX_MASK)) return undefined;
  let current = state.commitCounter;
  // A counter whose low bits are not behind the current ones was made in the previous round of the array.
  if ((counter & INDEX_MASK) >= Number(current & BigInt(INDEX_MASK))) current = BigInt.asUintN(64, current - BigInt(COMMIT_ARRAY_BITS));
  if ((Number(current & 0xffffn) & ~INDEX_MASK) !== (counter & ~INDEX_MASK)) return undefined;
  return (current & ~0xffffn) | BigInt(counter);
}

/** The commitment `counter` is used up (the reference's CryptEndCommit). */
export function endCommit(state: SimulatorState, counter: number): void {
  setBit(state, counter & INDEX_MASK, false);
}
