/**
 * cpHash and rpHash (Part 1 §18.7 "Command Parameter Hash", §18.8 "Response
 * Parameter Hash"): what session HMACs, audit digests and PolicyCpHash bind to.
 */
import { hash } from './crypto/hash.js';

/**
 * The codes that open cpHash (commandCode) and rpHash (responseCode ‖
 * commandCode), big-endian. Reused by every call: hash() reads them before it
 * returns and keeps nothing.
 */
const cpCode = new Uint8Array(4);
const rpCodes = new Uint8Array(8);
function putU32(b: Uint8Array, at: number, n: number): void {
  b[at] = n >>> 24;
  b[at + 1] = n >>> 16;
  b[at + 2] = n >>> 8;
  b[at + 3] = n;
}

/**
 * cpHash = H(commandCode ‖ Name(handle 1) ‖ … ‖ Name(handle n) ‖ parameters),
 * Names without their size, parameters exactly as sent (encrypted if they were).
 */
export function cpHash(hashAlg: number, commandCode: number, names: readonly Uint8Array[], paramBytes: Uint8Array): Uint8Array {
  putU32(cpCode, 0, commandCode);
  return hash(hashAlg, cpCode, ...names, paramBytes);
}

/** rpHash = H(responseCode ‖ commandCode ‖ parameters); only successful responses carry one. */
export function rpHash(hashAlg: number, commandCode: number, paramBytes: Uint8Array, responseCode = 0): Uint8Array {
  putU32(rpCodes, 0, responseCode);
  putU32(rpCodes, 4, commandCode);
  return hash(hashAlg, rpCodes, paramBytes);
}
