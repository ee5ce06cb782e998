/**
 * cpHash and rpHash (Part 1 §18.7 "Command Parameter Hash", §18.8 "Response
 * Parameter Hash"): what session HMACs, audit digests and PolicyCpHash bind to.
 */
import { hash } from './crypto/hash.js';

function u32be(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n >>> 0);
  return b;
}

/**
 * cpHash = H(commandCode ‖ Name(handle 1) ‖ … ‖ Name(handle n) ‖ parameters),
 * Names without their size, parameters exactly as sent (encrypted if they were).
 */
export function cpHash(hashAlg: number, commandCode: number, names: readonly Uint8Array[], paramBytes: Uint8Array): Uint8Array {
  return hash(hashAlg, u32be(commandCode), ...names, paramBytes);
}

/** rpHash = H(responseCode ‖ commandCode ‖ parameters); only successful responses carry one. */
export function rpHash(hashAlg: number, commandCode: number, paramBytes: Uint8Array, responseCode = 0): Uint8Array {
  return hash(hashAlg, u32be(responseCode), u32be(commandCode), paramBytes);
}
