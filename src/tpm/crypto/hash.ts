/**
 * TPM hash algorithms (TCG Algorithm Registry, "hash" type) mapped onto
 * node:crypto: digest sizes, one-shot hash and HMAC over several parts.
 *
 * Every TPM digest is H(part1 ‖ part2 ‖ …) (cpHash, policy updates, KDFs), so
 * the helpers take the parts instead of making callers concatenate.
 */
import * as nodeCrypto from 'node:crypto';
import { createHash, createHmac, getHashes } from 'node:crypto';
import { TPM_ALG } from '../constants.js';
import { ArgumentError, UnsupportedAlgorithmError } from '../errors.js';

/** The TPM_ALG_ID values that name a hash algorithm. */
export type TpmHashAlg =
  | typeof TPM_ALG.SHA1
  | typeof TPM_ALG.SHA256
  | typeof TPM_ALG.SHA384
  | typeof TPM_ALG.SHA512
  | typeof TPM_ALG.SM3_256
  | typeof TPM_ALG.SHA3_256
  | typeof TPM_ALG.SHA3_384
  | typeof TPM_ALG.SHA3_512;

interface HashInfo {
  /** Registry name without the TPM_ALG_ prefix, for messages. */
  readonly name: string;
  /** node:crypto / OpenSSL digest name. */
  readonly node: string;
  /** Digest size in bytes (Algorithm Registry). */
  readonly size: number;
}

const HASHES: ReadonlyMap<number, HashInfo> = new Map<TpmHashAlg, HashInfo>([
  [TPM_ALG.SHA1, { name: 'SHA1', node: 'sha1', size: 20 }],
  [TPM_ALG.SHA256, { name: 'SHA256', node: 'sha256', size: 32 }],
  [TPM_ALG.SHA384, { name: 'SHA384', node: 'sha384', size: 48 }],
  [TPM_ALG.SHA512, { name: 'SHA512', node: 'sha512', size: 64 }],
  // SM3 and SHA-3 depend on the OpenSSL that Node was built against.
  [TPM_ALG.SM3_256, { name: 'SM3_256', node: 'sm3', size: 32 }],
  [TPM_ALG.SHA3_256, { name: 'SHA3_256', node: 'sha3-256', size: 32 }],
  [TPM_ALG.SHA3_384, { name: 'SHA3_384', node: 'sha3-384', size: 48 }],
  [TPM_ALG.SHA3_512, { name: 'SHA3_512', node: 'sha3-512', size: 64 }],
]);

let available: ReadonlySet<string> | undefined;
function nodeHasHash(name: string): boolean {
  available ??= new Set(getHashes().map((h) => h.toLowerCase()));
  return available.has(name);
}

function hexAlg(alg: number): string {
  return `0x${(alg >>> 0).toString(16).padStart(4, '0')}`;
}

function info(alg: number): HashInfo {
  const i = typeof alg === 'number' ? HASHES.get(alg) : undefined;
  if (i === undefined) throw new ArgumentError(`hash algorithm ${typeof alg === 'number' ? hexAlg(alg) : String(alg)} is not a TPM hash algorithm`);
  return i;
}

/** Info for an algorithm that must also be computable here. */
function usable(alg: number): HashInfo {
  const i = info(alg);
  if (!nodeHasHash(i.node)) throw new UnsupportedAlgorithmError(alg, `TPM_ALG_${i.name} is not provided by this Node.js/OpenSSL build`);
  return i;
}

function checkParts(parts: readonly Uint8Array[]): void {
  for (let k = 0; k < parts.length; k++) {
    if (!(parts[k] instanceof Uint8Array)) throw new ArgumentError(`hash input part ${k} expected Uint8Array, got ${typeof parts[k]}`);
  }
}

/** True when `alg` is a TPM_ALG_ID of a hash algorithm in the registry (whether or not Node can compute it). */
export function isHashAlg(alg: number): alg is TpmHashAlg {
  return HASHES.has(alg);
}

/** True when `alg` is a hash algorithm that `hash`/`hmac` can compute on this runtime. */
export function isHashSupported(alg: number): alg is TpmHashAlg {
  const i = HASHES.get(alg);
  return i !== undefined && nodeHasHash(i.node);
}

/**
 * Digest size in bytes of a TPM hash algorithm.
 * @throws ArgumentError (`crypto.argument`) when `alg` is not a hash algorithm.
 */
export function digestSize(alg: number): number {
  return info(alg).size;
}

/**
 * The node:crypto name of a TPM hash algorithm (e.g. 0x000B → "sha256").
 * @throws ArgumentError when `alg` is not a hash algorithm; UnsupportedAlgorithmError when Node lacks it.
 */
export function nodeHashName(alg: number): string {
  return usable(alg).node;
}

/**
 * node:crypto's one-shot digest (Node ≥ 20.12, 21.7): no Hash object per call,
 * which costs about a quarter of a small digest and is garbage afterwards.
 */
const oneShot = (nodeCrypto as { hash?: unknown }).hash as ((algorithm: string, data: Uint8Array, outputEncoding: 'buffer') => Buffer) | undefined;

/**
 * Where several parts are joined for the one-shot digest: copying a few
 * hundred bytes costs far less than a Hash object. Never returned, and only
 * used within one synchronous call. Larger inputs are streamed instead.
 */
let joined = new Uint8Array(1024);
const JOINED_MAX = 16384;

/** Copies `parts` into `joined`; their total length, or -1 when it would pass JOINED_MAX. */
function join(parts: readonly Uint8Array[]): number {
  let at = 0;
  let end = 0;
  for (let k = 0; k < parts.length; k++) end += parts[k]!.length;
  if (end > JOINED_MAX) return -1;
  if (end > joined.length) joined = new Uint8Array(Math.min(JOINED_MAX, Math.max(end, 2 * joined.length)));
  for (let k = 0; k < parts.length; k++) {
    const p = parts[k]!;
    joined.set(p, at);
    at += p.length;
  }
  return end;
}

/** H(parts[0] ‖ …) as a plain Uint8Array with an ArrayBuffer of its own. */
function digestOf(node: string, parts: readonly Uint8Array[]): Uint8Array {
  if (oneShot !== undefined) {
    if (parts.length === 1) return new Uint8Array(oneShot(node, parts[0]!, 'buffer'));
    const n = join(parts);
    if (n >= 0) return new Uint8Array(oneShot(node, joined.subarray(0, n), 'buffer'));
  }
  const h = createHash(node);
  for (let k = 0; k < parts.length; k++) h.update(parts[k]!);
  return new Uint8Array(h.digest());
}

/**
 * H(parts[0] ‖ parts[1] ‖ …).
 * @throws ArgumentError (`crypto.argument`) for a non-hash `alg` or a part that is not a Uint8Array;
 *   UnsupportedAlgorithmError (`crypto.unsupported`) when Node cannot compute `alg` (e.g. SM3 without OpenSSL support).
 */
export function hash(alg: number, ...parts: Uint8Array[]): Uint8Array {
  const i = usable(alg);
  checkParts(parts);
  return digestOf(i.node, parts);
}

/**
 * HMAC_H(key, parts[0] ‖ parts[1] ‖ …) (RFC 2104; Part 1 "HMAC Algorithm"). An empty key is allowed:
 * sessions without a sessionKey or authValue use one.
 * @throws as {@link hash}, and ArgumentError when `key` is not a Uint8Array.
 */
export function hmac(alg: number, key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  const i = usable(alg);
  if (!(key instanceof Uint8Array)) throw new ArgumentError(`hmac key expected Uint8Array, got ${typeof key}`);
  checkParts(parts);
  const h = createHmac(i.node, key);
  for (let k = 0; k < parts.length; k++) h.update(parts[k]!);
  return new Uint8Array(h.digest());
}
