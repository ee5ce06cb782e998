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
