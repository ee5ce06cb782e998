/**
 * Names (Part 1 §16 "Names"): how a TPM identifies an entity in cpHash,
 * policies and attestation. Computed from the same schema that marshals the
 * public areas, so a Name is the digest of exactly the bytes the TPM hashes.
 */
import { TPM_ALG, handleType, TPM_HT } from './constants.js';
import { digestSize, hash, isHashAlg } from './crypto/hash.js';
import { ArgumentError } from './errors.js';
import { TPMS_NV_PUBLIC, TPMT_PUBLIC } from './types/index.js';
import { encode } from './wire/codec.js';

/** nameAlg ‖ digest in one new array (a Name or a qualified Name). */
function algAndDigest(nameAlg: number, digest: Uint8Array): Uint8Array {
  const out = new Uint8Array(2 + digest.length);
  out[0] = nameAlg >>> 8;
  out[1] = nameAlg;
  out.set(digest, 2);
  return out;
}

/**
 * Name = nameAlg ‖ H_nameAlg(marshaled public area); empty when nameAlg is
 * TPM_ALG_NULL (Part 1 §16.3, the reference's ObjectComputeName).
 */
export function nameFromPublicBytes(nameAlg: number, marshaledPublic: Uint8Array): Uint8Array {
  if (nameAlg === TPM_ALG.NULL) return new Uint8Array(0);
  if (!isHashAlg(nameAlg)) throw new ArgumentError(`nameAlg 0x${nameAlg.toString(16)} is not a hash algorithm`);
  return algAndDigest(nameAlg, hash(nameAlg, marshaledPublic));
}

/** The Name of a loaded or persistent object from its TPMT_PUBLIC. */
export function objectName(pub: TPMT_PUBLIC): Uint8Array {
  return nameFromPublicBytes(pub.nameAlg, encode(TPMT_PUBLIC, pub));
}

/** The Name of an NV index from its TPMS_NV_PUBLIC (Part 1 §16.4; the reference's NvGetIndexName). */
export function nvName(pub: TPMS_NV_PUBLIC): Uint8Array {
  return nameFromPublicBytes(pub.nameAlg, encode(TPMS_NV_PUBLIC, pub));
}

/**
 * The Name of an entity that has no public area: PCRs, permanent handles
 * and sessions are named by their handle, big-endian (Part 1 §16.2).
 */
export function handleName(handle: number): Uint8Array {
  const ht = handleType(handle);
  if (ht === TPM_HT.TRANSIENT || ht === TPM_HT.PERSISTENT || ht === TPM_HT.NV_INDEX) {
    throw new ArgumentError(`handle 0x${(handle >>> 0).toString(16)} is named by its public area, not by its value`);
  }
  const out = new Uint8Array(4);
  out[0] = handle >>> 24;
  out[1] = handle >>> 16;
  out[2] = handle >>> 8;
  out[3] = handle;
  return out;
}

/**
 * Qualified Name (Part 1 §16.6): QN = nameAlg ‖ H(QN(parent) ‖ Name), where a
 * hierarchy's QN is its handle. TPMS_ATTEST.qualifiedSigner carries the signer's.
 */
export function qualifiedName(parentQualifiedName: Uint8Array, name: Uint8Array): Uint8Array {
  if (name.length < 2) throw new ArgumentError('a qualified name needs the Name of an object with a nameAlg');
  const nameAlg = (name[0]! << 8) | name[1]!;
  if (!isHashAlg(nameAlg) || name.length !== 2 + digestSize(nameAlg)) {
    throw new ArgumentError(`Name of ${name.length} byte(s) does not match its nameAlg 0x${nameAlg.toString(16)}`);
  }
  return algAndDigest(nameAlg, hash(nameAlg, parentQualifiedName, name));
}
