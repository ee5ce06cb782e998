/**
 * Tickets (Part 2 §10.7): HMACs under a hierarchy's proof value that let the
 * TPM recognize, later, something it checked before (a creation, a digest it
 * hashed itself, a signature it verified, a policy authorization).
 * One module so every command computes them the same way.
 */
import { TPM_ALG, TPM_RH, TPM_ST } from '../tpm/constants.js';
import { hmac } from '../tpm/crypto/hash.js';
import type { TpmEngine } from './engine.js';

/**
 * The HMAC of tickets: the reference's CONTEXT_INTEGRITY_HASH_ALG, SHA-512
 * in libtpms' profile (the proofs are 64 bytes, state.ts SEED_SIZE).
 */
export const TICKET_HASH_ALG = TPM_ALG.SHA512;

export type HierarchyName = 'owner' | 'endorsement' | 'platform' | 'null';

/** The state.seeds / state.proofs key of a hierarchy handle; anything else is the null hierarchy. */
export function hierarchyKey(h: number): HierarchyName {
  if (h === TPM_RH.OWNER) return 'owner';
  if (h === TPM_RH.ENDORSEMENT) return 'endorsement';
  if (h === TPM_RH.PLATFORM) return 'platform';
  return 'null';
}

function u16(v: number): Uint8Array {
  return Uint8Array.of(v >>> 8, v & 0xff);
}

/** The proof value that keys a hierarchy's tickets (Part 1 §14.3.6). */
export function proofOf(engine: TpmEngine, hierarchy: number): Uint8Array {
  return engine.state.proofs[hierarchyKey(hierarchy)];
}

/** Part 3 §24.1 / Part 2 §10.7.3: HMAC(proof, TPM_ST_CREATION ‖ Name ‖ creationHash) (the reference's TicketComputeCreation). */
export function creationTicketDigest(engine: TpmEngine, hierarchy: number, name: Uint8Array, creationHash: Uint8Array): Uint8Array {
  return hmac(TICKET_HASH_ALG, proofOf(engine, hierarchy), u16(TPM_ST.CREATION), name, creationHash);
}

/** Part 2 §10.7.2: HMAC(proof, TPM_ST_HASHCHECK ‖ hashAlg ‖ digest) (TicketComputeHashCheck). */
export function hashCheckDigest(engine: TpmEngine, hierarchy: number, hashAlg: number, digest: Uint8Array): Uint8Array {
  return hmac(TICKET_HASH_ALG, proofOf(engine, hierarchy), u16(TPM_ST.HASHCHECK), u16(hashAlg), digest);
}

/** Part 2 §10.7.5: HMAC(proof, TPM_ST_VERIFIED ‖ digest ‖ keyName) (TicketComputeVerified, VerifySignature's ticket). */
export function verifiedTicketDigest(engine: TpmEngine, hierarchy: number, digest: Uint8Array, keyName: Uint8Array): Uint8Array {
  return hmac(TICKET_HASH_ALG, proofOf(engine, hierarchy), u16(TPM_ST.VERIFIED), digest, keyName);
}

/** The parts of a TPMT_TK_AUTH (PolicySigned, PolicySecret, checked by PolicyTicket). */
export interface AuthTicketInput {
  /** TPM_ST_AUTH_SIGNED or TPM_ST_AUTH_SECRET. */
  readonly tag: number;
  readonly hierarchy: number;
  /** engine.time() in ms when the authorization expires (without the expires-on-reset flag); 0 = never. */
  readonly timeout: bigint;
  /** The authorization had no nonceTPM, so it is valid only until the next TPM Reset. */
  readonly expiresOnReset: boolean;
  readonly cpHashA: Uint8Array;
  readonly policyRef: Uint8Array;
  readonly authName: Uint8Array;
}

function u32(v: number): Uint8Array {
  return Uint8Array.of(v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
}

function u64(v: bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt.asUintN(64, v));
  return out;
}

/**
 * Part 2 §10.7.4: HMAC(proof, tag ‖ cpHashA ‖ policyRef ‖ authName ‖ timeout
 * [‖ epoch [‖ resetCount]]) (the reference's TicketComputeAuth). A timeout is
 * a value of Time, which restarts at every power-on, so a ticket with one is
 * bound to the power-on it was made in (the reference's g_timeEpoch; here
 * restartCount and the engine's _TPM_Init instant), and one made without a
 * nonce also to resetCount (it expires on TPM Reset).
 */
export function authTicketDigest(engine: TpmEngine, t: AuthTicketInput): Uint8Array {
  const parts = [u16(t.tag), t.cpHashA, t.policyRef, t.authName, u64(t.timeout)];
  if (t.timeout !== 0n) {
    const c = engine.state.clock;
    parts.push(u32(c.restartCount), u64(BigInt(Math.floor(engine.volatile.initAt * 1000))));
    if (t.expiresOnReset) parts.push(u32(c.resetCount));
  }
  return hmac(TICKET_HASH_ALG, proofOf(engine, t.hierarchy), ...parts);
}
