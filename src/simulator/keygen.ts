/**
 * Deterministic primary-object derivation (Part 1 §27.3 "Primary Objects";
 * Part 3 §24.1 TPM2_CreatePrimary): the same template, sensitive data and
 * hierarchy seed always give the same key, and another seed another key.
 *
 * The random stream follows the reference implementation (ms-tpm-20-ref
 * `CreatePrimary.c` → `DRBG_InstantiateSeeded` in `CryptRand.c`): an
 * SP 800-90A CTR_DRBG with AES-256 and no prediction resistance, whose
 * instantiation "entropy" is the reference's derivation function over
 *   primarySeed ‖ "Primary Object Creation\0" ‖ Name(template) ‖ inSensitive.data.
 * The CTR_DRBG core is checked against the NIST vector the reference's own
 * self-test uses (test/simulator/keygen.test.ts). Then, as in `CryptCreateObject`:
 * the key material, (endorsement primaries only) a reseed with each proof,
 * and a seedValue of the nameAlg's digest size.
 *
 * Where this differs from the reference (so keys differ from libtpms', which
 * is not a goal): RSA candidates are tested with node:crypto `checkPrime`
 * after a small-prime sieve instead of the reference's Miller-Rabin whose
 * witnesses come from the same stream, and the signing-key self-test that
 * draws from the stream in `CryptRsaGenerateKey` is not run; ECC keys use the
 * reference's "extra random bits" method (FIPS 186-4 §B.4.1), as
 * `BnEccGetPrivate` does, and so do match it.
 *
 * Derived objects (Part 1 §27.4, CreateLoaded under a derivation parent) go
 * through the same creation with another stream: {@link DerivationKdf}, the
 * KDFa blocks keyed by the parent's key with the label and context. Their ECC,
 * keyedHash and symmetric keys match swtpm's byte for byte (test/simulator/derive.test.ts).
 */
import { checkPrime, createCipheriv, createECDH, createSecretKey, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import type { ECDSA, WeierstrassPoint } from '@noble/curves/abstract/weierstrass.js';
import { p256, p384 } from '@noble/curves/nist.js';
import { bigIntFromBytes, bytesFromBigInt } from '../tpm/bytes.js';
import { TPM_ALG, TPM_ECC } from '../tpm/constants.js';
import { digestSize, hash, hmac } from '../tpm/crypto/hash.js';
import { kdfaBlock } from '../tpm/crypto/kdf.js';
import { keyFromSensitive } from '../tpm/duplication.js';
import { ArgumentError } from '../tpm/errors.js';
import { objectName } from '../tpm/names.js';
import { TPM_RC, TpmError } from '../tpm/rc.js';
import { eccCurve } from '../tpm/secret.js';
import { TPMA_OBJECT, type TPMS_ECC_POINT, type TPMS_SENSITIVE_CREATE, type TPMT_PUBLIC, type TPMT_SENSITIVE } from '../tpm/types/index.js';
import { hashBlockSize } from './sequences.js';

const checkPrimeAsync = promisify(checkPrime) as (candidate: bigint, options?: { checks?: number }) => Promise<boolean>;

/** The label of Part 1 §27.3; the reference's TPM2B_STRING keeps the terminating NUL (sizeof of a C string literal). */
export const PRIMARY_OBJECT_CREATION: Uint8Array = new TextEncoder().encode('Primary Object Creation\0');

const KEY_BYTES = 32; // AES-256: DRBG_KEY_SIZE_BITS = AES_MAX_KEY_SIZE_BITS in the reference profile
const BLOCK = 16;
const SEED_BYTES = KEY_BYTES + BLOCK; // DRBG_SEED: key ‖ V
const DF_COUNT = KEY_BYTES / BLOCK + 1; // output blocks of the derivation function (3)
/** CTR_DRBG_MAX_BYTES_PER_REQUEST of the reference. */
export const DRBG_MAX_REQUEST = 1 << 16;

function aesEcb(key: Uint8Array, data: Uint8Array): Uint8Array {
  const c = createCipheriv('aes-256-ecb', key, null);
  c.setAutoPadding(false);
  return new Uint8Array(c.update(data));
}

/** V + 1 as a 128-bit big-endian counter, in place. */
function increment(v: Uint8Array): void {
  for (let i = v.length - 1; i >= 0; i--) {
    v[i] = (v[i]! + 1) & 0xff;
    if (v[i] !== 0) return;
  }
}

/**
 * The reference's derivation function (`DfStart`/`DfUpdate`/`DfEnd`): three
 * 16-byte chains under the fixed key 00 01 … 1f, the first starting with
 * BE32(input length) ‖ BE32(48), input fed from offset 4 of the first block,
 * 0x80 padding. Each pass XORs the *unencrypted* running value of the
 * previous chains into the next one (`temp` is never reset inside
 * `DfCompute`), which is not SP 800-90A's Block_Cipher_df; this follows the
 * reference, not the standard.
 */
function derivationFunction(inputs: readonly Uint8Array[]): Uint8Array {
  const dfKey = Uint8Array.from({ length: KEY_BYTES }, (_, i) => i);
  const cipher = createCipheriv('aes-256-ecb', dfKey, null);
  cipher.setAutoPadding(false);
  const enc = (b: Uint8Array): Uint8Array<ArrayBuffer> => new Uint8Array(cipher.update(b));
  const iv = Array.from({ length: DF_COUNT }, (_, i) => {
    const b = new Uint8Array(BLOCK);
    b[3] = i;
    return b;
  });
  let buf = new Uint8Array(BLOCK);
  let contents = 0;
  const compute = (): void => {
    const temp = new Uint8Array(BLOCK);
    for (let k = 0; k < DF_COUNT; k++) {
      const chain = iv[k]!;
      for (let i = 0; i < BLOCK; i++) temp[i]! ^= chain[i]! ^ buf[i]!;
      iv[k] = enc(temp);
    }
    buf = new Uint8Array(BLOCK);
    contents = 0;
  };
  compute();
  const total = inputs.reduce((n, b) => n + b.length, 0);
  const head = new DataView(iv[0]!.buffer, iv[0]!.byteOffset, BLOCK);
  head.setUint32(0, total);
  head.setUint32(4, SEED_BYTES);
  contents = 4;
  for (const data of inputs) {
    for (const byte of data) {
      buf[contents++] = byte;
      if (contents === BLOCK) compute();
    }
  }
  buf[contents++] = 0x80;
  compute();
  const out = new Uint8Array(SEED_BYTES);
  for (let k = 0; k < DF_COUNT && k * BLOCK < SEED_BYTES; k++) out.set(iv[k]!.subarray(0, Math.min(BLOCK, SEED_BYTES - k * BLOCK)), k * BLOCK);
  return out;
}

/** A deterministic byte stream keys are made from: the primary CTR_DRBG or the derivation KDF. */
export interface KeyStream {
  /** The next `length` bytes of the stream. */
  generate(length: number): Uint8Array;
  /** `DRBG_AdditionalData` (primaries in the endorsement hierarchy only). */
  addData?(data: Uint8Array): void;
}

/**
 * A CTR_DRBG (SP 800-90A §10.2.1, AES-256, no derivation function in the
 * core, counter incremented before each block as the reference does).
 * One object per derivation; it holds no module-level state.
 */
export class PrimaryDrbg implements KeyStream {
  #key = new Uint8Array(KEY_BYTES);
  #v = new Uint8Array(BLOCK);

  private constructor() {}

  /**
   * The stream of `DRBG_InstantiateSeeded(seed, purpose, name, additional)`:
   * the derivation function over the four strings, used as instantiation entropy.
   */
  static seeded(seed: Uint8Array, purpose: Uint8Array, name: Uint8Array, additional: Uint8Array): PrimaryDrbg {
    const d = new PrimaryDrbg();
    d.#update(derivationFunction([seed, purpose, name, additional]));
    return d;
  }

  /** Instantiation from 48 bytes of full entropy, no personalization (`DRBG_Instantiate` as its self-test runs it). */
  static fromEntropy(entropy: Uint8Array): PrimaryDrbg {
    if (entropy.length !== SEED_BYTES) throw new ArgumentError(`CTR_DRBG entropy must be ${SEED_BYTES} bytes, got ${entropy.length}`);
    const d = new PrimaryDrbg();
    d.#update(entropy);
    return d;
  }

  /** Reseed with 48 bytes of entropy (`DRBG_Reseed` without additional data). */
  reseed(entropy: Uint8Array): void {
    if (entropy.length !== SEED_BYTES) throw new ArgumentError(`CTR_DRBG entropy must be ${SEED_BYTES} bytes, got ${entropy.length}`);
    this.#update(entropy);
  }

  /** `DRBG_AdditionalData`: the derivation function over `data`, used as reseed entropy. Empty data changes nothing. */
  addData(data: Uint8Array): void {
    if (data.length === 0) return;
    this.#update(derivationFunction([data]));
  }

  /** `length` bytes of the stream, then the state update of SP 800-90A §10.2.1.5.1 step 6. */
  generate(length: number): Uint8Array {
    if (!Number.isInteger(length) || length < 0 || length > DRBG_MAX_REQUEST) {
      throw new ArgumentError(`a CTR_DRBG request is 0…${DRBG_MAX_REQUEST} bytes, got ${length}`);
    }
    const blocks = Math.ceil(length / BLOCK);
    const counters = new Uint8Array(blocks * BLOCK);
    for (let b = 0; b < blocks; b++) {
      increment(this.#v);
      counters.set(this.#v, b * BLOCK);
    }
    const out = aesEcb(this.#key, counters).subarray(0, length);
    this.#update(null);
    return out;
  }

  /** CTR_DRBG_Update: (key ‖ V) ← E(V+1) ‖ E(V+2) ‖ E(V+3) ⊕ provided. */
  #update(provided: Uint8Array | null): void {
    const counters = new Uint8Array(SEED_BYTES);
    for (let b = 0; b < SEED_BYTES / BLOCK; b++) {
      increment(this.#v);
      counters.set(this.#v, b * BLOCK);
    }
    const temp = aesEcb(this.#key, counters);
    if (provided !== null) for (let i = 0; i < SEED_BYTES; i++) temp[i]! ^= provided[i]!;
    this.#key = temp.slice(0, KEY_BYTES);
    this.#v = temp.slice(KEY_BYTES);
  }
}

// ---------------------------------------------------------------------------
// Big integers

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

/** Odd primes below 2048, for the sieve in front of checkPrime. */
const SMALL_PRIMES: readonly bigint[] = (() => {
  const limit = 2048;
  const composite = new Uint8Array(limit);
  const out: bigint[] = [];
  for (let i = 3; i < limit; i += 2) {
    if (composite[i]) continue;
    out.push(BigInt(i));
    for (let j = i * i; j < limit; j += 2 * i) composite[j] = 1;
  }
  return out;
})();

function isSmallPrime(e: number): boolean {
  if (e < 2 || e % 2 === 0) return e === 2;
  for (let d = 3; d * d <= e; d += 2) if (e % d === 0) return false;
  return true;
}

// ---------------------------------------------------------------------------
// Key material

/** What a primary object derivation needs. */
export interface PrimaryDerivationInput {
  /** The hierarchy's primary seed (EPS, SPS, PPS or the null seed). */
  readonly seed: Uint8Array;
  /** TPM2_CreatePrimary's inPublic, as the caller sent it (its Name is part of the stream's input). */
  readonly template: TPMT_PUBLIC;
  /** TPM2_CreatePrimary's inSensitive: userAuth becomes the authValue, data is fed to the stream (and is the key of a keyedHash / symcipher when the TPM is not the data's origin). */
  readonly sensitive: TPMS_SENSITIVE_CREATE;
  /**
   * Values stirred into the stream before the seedValue is drawn: for a
   * primary in the endorsement hierarchy the reference stirs shProof, then
   * ehProof (`CryptCreateObject`), so that the seedValue of an EK depends on
   * more than the EPS. Empty for the other hierarchies.
   */
  readonly proofs?: readonly Uint8Array[];
}

/** A derived object: the public area as CreatePrimary returns it, its sensitive area and Name, and the node:crypto key. */
export interface DerivedObject {
  readonly publicArea: TPMT_PUBLIC;
  readonly sensitive: TPMT_SENSITIVE;
  readonly name: Uint8Array;
  /** An RSA or EC private key, or a secret key (HMAC key, symmetric key or sealed data). */
  readonly key: KeyObject;
}

/** A curve this TPM makes keys on: node:crypto's name and sizes (the core's eccCurve), its order, and @noble/curves for what node:crypto lacks. */
export interface SimulatorCurve {
  readonly curveID: number;
  readonly nodeName: string;
  /** Bytes in a coordinate or a private scalar. */
  readonly size: number;
  /** The order n of the base point (FIPS 186-4 D.1.2). */
  readonly order: bigint;
  /**
   * What node:crypto lacks: ECDSA verification over a digest the caller
   * made (node:crypto hashes whatever it verifies) and whole-point
   * arithmetic ([k]P with x and y, sums, on-curve checks: ECDH_ZGen, Commit,
   * ZGen_2Phase, EC-Schnorr), since node:crypto's ECDH gives x only.
   * Signing does not use it: k·G comes from node:crypto's ECDH (signing.ts).
   */
  readonly noble: ECDSA;
}

function simulatorCurve(curveID: number, noble: ECDSA): [number, SimulatorCurve] {
  const { nodeName, size } = eccCurve(curveID);
  return [curveID, { curveID, nodeName, size, order: noble.Point.CURVE().n, noble }];
}

/** The curves primaries (and every ECC operation of this TPM) may use, by TPM_ECC id: the one curve table of the simulator. */
export const CURVE_ORDERS: ReadonlyMap<number, SimulatorCurve> = new Map([simulatorCurve(TPM_ECC.NIST_P256, p256), simulatorCurve(TPM_ECC.NIST_P384, p384)]);

/**
 * `P` as a point of `curve`, or undefined when it is none (the reference's
 * TPM_RC_ECC_POINT cases). The coordinates are numbers, as the reference
 * reads them (BnPointFrom2B: any length, leading zeros and all; an empty one
 * is 0) and tests them (BnIsOnCurve: y² ≡ x³ + ax + b mod p, so a coordinate
 * past p stands for its residue): (x mod p, y mod p) must be on the curve
 * and not the point at infinity.
 */
export function curvePoint(curve: SimulatorCurve, P: TPMS_ECC_POINT): WeierstrassPoint<bigint> | undefined {
  const { Point } = curve.noble;
  const field = Point.CURVE().p;
  try {
    const point = Point.fromAffine({ x: bigIntFromBytes(P.x) % field, y: bigIntFromBytes(P.y) % field });
    point.assertValidity(); // on the curve, and not the point at infinity
    return point;
  } catch {
    return undefined;
  }
}

/**
 * RSA modulus sizes keys may have here: libtpms's (1024 too; the strict
 * profile leaves it out, SP 800-131A having disallowed it since 2013).
 */
export const RSA_KEY_BITS: readonly number[] = [1024, 2048, 3072];
/** ECC curves primaries may use here. */
export const ECC_CURVES: readonly number[] = [...CURVE_ORDERS.keys()];

/** Candidates tried for one prime before giving up (expected ≈ 0.35 × bits / 2 odd candidates, about 60 after the sieve). */
const MAX_PRIME_CANDIDATES = 20_000;

/**
 * A prime of `bits` bits for RSA (`BnGeneratePrimeForRSA`): a candidate of
 * `bits` from the stream whose top 32 bits are mapped into
 * [0xB5050000, 0xFFFFFFFF] (`RsaAdjustPrimeCandidate`, so p·q ≥ 2^(2·bits−1)),
 * made odd, sieved with the odd primes below 2048, with gcd(e, p−1) = 1, and
 * accepted by OpenSSL's probabilistic test.
 */
async function rsaPrime(drbg: KeyStream, bits: number, e: bigint): Promise<bigint> {
  const bytes = bits / 8;
  const shift = BigInt(bits - 32);
  const low = (1n << shift) - 1n;
  for (let attempt = 0; attempt < MAX_PRIME_CANDIDATES; attempt++) {
    let c = bigIntFromBytes(drbg.generate(bytes));
    const msw = Number(c >> shift);
    const adjusted = ((msw >>> 16) * 0x4afb + (((msw & 0xffff) * 0x4afb) >>> 16) + 0xb5050000) >>> 0;
    c = (BigInt(adjusted) << shift) | (c & low) | 1n;
    if (SMALL_PRIMES.some((p) => c % p === 0n)) continue;
    if (gcd(e, c - 1n) !== 1n) continue;
    if (await checkPrimeAsync(c)) return c;
  }
  throw new TpmError(TPM_RC.NO_RESULT);
}

async function deriveRsa(template: Extract<TPMT_PUBLIC, { type: typeof TPM_ALG.RSA }>, drbg: KeyStream): Promise<{ unique: Uint8Array; prime: Uint8Array }> {
  const bits = template.parameters.keyBits;
  if (!RSA_KEY_BITS.includes(bits)) throw new TpmError(TPM_RC.KEY_SIZE);
  const exponent = template.parameters.exponent === 0 ? 65537 : template.parameters.exponent;
  // CryptRsaGenerateKey: a given exponent must be an odd prime above 2 (TPM_RC_RANGE otherwise).
  if (exponent < 3 || !isSmallPrime(exponent)) throw new TpmError(TPM_RC.RANGE);
  const e = BigInt(exponent);
  const half = bits / 2;
  let first: bigint | undefined;
  // The reference's loop: up to 99 primes; the first becomes Q, each later one is a P tried against it.
  for (let i = 1; i < 100; i++) {
    const p = await rsaPrime(drbg, half, e);
    if (first === undefined) {
      first = p;
      continue;
    }
    const diff = p > first ? p - first : first - p;
    // |p − q| must exceed 2^100 (FIPS 186-4 §B.3.3 step 5.4 asks 2^(bits/2 − 100); the reference checks BnMsb(d) ≥ 100).
    if (diff.toString(2).length - 1 < 100) continue;
    const n = p * first;
    return { unique: bytesFromBigInt(n, bits / 8), prime: bytesFromBigInt(p, half / 8) };
  }
  throw new TpmError(TPM_RC.NO_RESULT);
}

function deriveEcc(template: Extract<TPMT_PUBLIC, { type: typeof TPM_ALG.ECC }>, drbg: KeyStream): { x: Uint8Array; y: Uint8Array; d: Uint8Array } {
  const curve = CURVE_ORDERS.get(template.parameters.curveID);
  if (curve === undefined) throw new TpmError(TPM_RC.CURVE);
  // BnEccGetPrivate: orderBytes·8 + 64 bits, reduced mod (n − 1), plus 1: 1 ≤ d < n (FIPS 186-4 §B.4.1).
  const extra = bigIntFromBytes(drbg.generate(curve.size + 8));
  const d = bytesFromBigInt((extra % (curve.order - 1n)) + 1n, curve.size);
  const ecdh = createECDH(curve.nodeName);
  ecdh.setPrivateKey(d);
  const point = new Uint8Array(ecdh.getPublicKey(null, 'uncompressed'));
  return { x: point.slice(1, 1 + curve.size), y: point.slice(1 + curve.size), d };
}

/**
 * Derives the object TPM2_CreatePrimary creates for `template` in the
 * hierarchy of `seed`. Asynchronous so that RSA prime search yields the event loop.
 *
 * @throws TpmError with the response code a TPM gives (the caller adds the
 *   parameter number): TPM_RC_HASH for a NULL or unknown nameAlg,
 *   TPM_RC_KEY_SIZE for an RSA size other than 2048/3072 or a symmetric key of
 *   the wrong length, TPM_RC_CURVE for a curve other than P-256/P-384,
 *   TPM_RC_RANGE for an RSA exponent that is not an odd prime, TPM_RC_SIZE for an
 *   HMAC/XOR key longer than the hash's block, TPM_RC_SYMMETRIC for TDES (no
 *   parity-adjusted key generation here), TPM_RC_NO_RESULT if no prime is found.
 */
export async function derivePrimaryObject(input: PrimaryDerivationInput): Promise<DerivedObject> {
  const { template, sensitive: create } = input;
  if (template.nameAlg === TPM_ALG.NULL) throw new TpmError(TPM_RC.HASH);
  let nameDigestSize: number;
  try {
    nameDigestSize = digestSize(template.nameAlg);
  } catch {
    throw new TpmError(TPM_RC.HASH);
  }
  // Context = Name of the template as received (PublicMarshalAndComputeName in CreatePrimary.c).
  const drbg = PrimaryDrbg.seeded(input.seed, PRIMARY_OBJECT_CREATION, objectName(template), create.data);
  return createFromStream(drbg, template, create, nameDigestSize, input.proofs ?? []);
}

/**
 * The object creation common to primaries, ordinary and derived objects
 * (the reference's CryptCreateObject): key material from `drbg`, then
 * (endorsement primaries) the proofs stirred in, then a seedValue of the
 * nameAlg's digest size; a symmetric object's unique from seedValue and key.
 */
async function createFromStream(
  drbg: KeyStream,
  template: TPMT_PUBLIC,
  create: TPMS_SENSITIVE_CREATE,
  nameDigestSize: number,
  proofs: readonly Uint8Array[],
): Promise<DerivedObject> {
  const attrs = TPMA_OBJECT.fromWord(TPMA_OBJECT.toWord(template.objectAttributes));
  // CryptCreateObject: data the TPM generates itself replaces anything the caller sent.
  const data = attrs.sensitiveDataOrigin ? new Uint8Array(0) : create.data;

  let publicArea: TPMT_PUBLIC;
  let composite: Uint8Array;
  switch (template.type) {
    case TPM_ALG.RSA: {
      const r = await deriveRsa(template, drbg);
      publicArea = { ...template, unique: r.unique };
      composite = r.prime;
      break;
    }
    case TPM_ALG.ECC: {
      const k = deriveEcc(template, drbg);
      publicArea = { ...template, unique: { x: k.x, y: k.y } };
      composite = k.d;
      break;
    }
    case TPM_ALG.KEYEDHASH: {
      const scheme = template.parameters.scheme;
      const alg = scheme.scheme === TPM_ALG.NULL ? template.nameAlg : scheme.details.hashAlg;
      if (data.length > 0) {
        // A caller's HMAC key longer than the hash's block is TPM_RC_SIZE (64 bytes for a hash not implemented here).
        if ((attrs.sign || attrs.decrypt) && data.length > (hashBlockSize(alg) ?? 64)) throw new TpmError(TPM_RC.SIZE);
        composite = data.slice();
      } else {
        composite = drbg.generate(digestSize(alg));
      }
      publicArea = template;
      break;
    }
    case TPM_ALG.SYMCIPHER: {
      const sym = template.parameters.sym;
      if (sym.algorithm === TPM_ALG.TDES) throw new TpmError(TPM_RC.SYMMETRIC);
      const keyBytes = sym.keyBits / 8;
      if (data.length > 0) {
        if (data.length !== keyBytes) throw new TpmError(TPM_RC.KEY_SIZE);
        composite = data.slice();
      } else {
        composite = drbg.generate(keyBytes);
      }
      publicArea = template;
      break;
    }
  }
  for (const proof of proofs) drbg.addData?.(proof);
  let seedValue = drbg.generate(nameDigestSize);
  if (publicArea.type === TPM_ALG.KEYEDHASH || publicArea.type === TPM_ALG.SYMCIPHER) {
    // CryptComputeSymmetricUnique: a parent's unique is an HMAC keyed with seedValue, any other object's a hash.
    const unique =
      attrs.restricted && attrs.decrypt ? hmac(template.nameAlg, seedValue, composite) : hash(template.nameAlg, seedValue, composite);
    publicArea = { ...publicArea, unique };
  } else if (attrs.sign || !attrs.restricted) {
    seedValue = new Uint8Array(0); // only a storage parent keeps a seed for its children's protection
  }
  const sensitive = {
    sensitiveType: publicArea.type,
    authValue: create.userAuth,
    seedValue,
    sensitive: composite,
  } as TPMT_SENSITIVE;
  const key = publicArea.type === TPM_ALG.RSA || publicArea.type === TPM_ALG.ECC ? keyFromSensitive(publicArea, sensitive) : createSecretKey(composite);
  return { publicArea, sensitive, name: objectName(publicArea), key };
}

// ---------------------------------------------------------------------------
// Derived objects (Part 1 §27.4 "Derived Objects", Part 3 §12.9 CreateLoaded)

/** TPM_MAX_DERIVATION_BITS of the reference: the L of every KDFa block and the stream's length limit. */
export const MAX_DERIVATION_BITS = 8192;

/**
 * The stream a derivation parent draws keys from (the reference's
 * `DRBG_InstantiateSeededKdf` state and `DRBG_Generate` in KDF mode): the
 * KDFa blocks K(1) ‖ K(2) ‖ … of SP 800-108 counter mode, keyed by the
 * parent's key, with the derivation's label and context and
 * L = {@link MAX_DERIVATION_BITS}. Requests continue where the previous one
 * stopped (a partly used block is kept); a request that would pass the
 * limit (counted in whole blocks) is TPM_RC_NO_RESULT, as the reference's
 * DRBG_Generate answering 0 becomes.
 */
export class DerivationKdf implements KeyStream {
  readonly #hashAlg: number;
  readonly #key: Uint8Array;
  readonly #label: Uint8Array;
  readonly #context: Uint8Array;
  readonly #digestSize: number;
  #counter = 0;
  #residual: Uint8Array = new Uint8Array(0);

  /**
   * @param hashAlg the parent's KDF hash (its XOR scheme's hashAlg).
   * @param key the parent's keyedHash key (its sensitive data, not its seedValue: libtpms and the current reference key the KDF with `sensitive.bits`).
   */
  constructor(hashAlg: number, key: Uint8Array, label: Uint8Array, context: Uint8Array) {
    this.#hashAlg = hashAlg;
    this.#digestSize = digestSize(hashAlg);
    this.#key = key.slice();
    this.#label = label.slice();
    this.#context = context.slice();
  }

  generate(length: number): Uint8Array {
    if (!Number.isInteger(length) || length < 0) throw new ArgumentError(`a derivation request is a byte count, got ${length}`);
    if ((this.#counter * this.#digestSize + length) * 8 > MAX_DERIVATION_BITS) throw new TpmError(TPM_RC.NO_RESULT);
    const out = new Uint8Array(length);
    let filled = 0;
    while (filled < length) {
      if (this.#residual.length === 0) {
        this.#counter += 1;
        this.#residual = kdfaBlock(this.#hashAlg, this.#key, this.#label, this.#context, new Uint8Array(0), MAX_DERIVATION_BITS, this.#counter);
      }
      const take = Math.min(this.#residual.length, length - filled);
      out.set(this.#residual.subarray(0, take), filled);
      this.#residual = this.#residual.subarray(take);
      filled += take;
    }
    return out;
  }
}

/** What a derived object needs: the derivation parent's KDF and key, the label and context, and the child's template. */
export interface DerivedObjectInput {
  /** The parent's KDF hash (scheme XOR's hashAlg; the KDF is KDF1_SP800_108). */
  readonly kdfHashAlg: number;
  /** The parent's keyedHash key (sensitive.sensitive). */
  readonly parentKey: Uint8Array;
  readonly label: Uint8Array;
  readonly context: Uint8Array;
  /** The child's template; its unique is ignored (replaced by the derived key's). Not RSA. */
  readonly template: TPMT_PUBLIC;
  /** The child's authValue. */
  readonly userAuth: Uint8Array;
}

/** An empty unique of the template's type: a derivation template carries TPMS_DERIVE there, never a key. */
function withoutUnique(t: TPMT_PUBLIC): TPMT_PUBLIC {
  switch (t.type) {
    case TPM_ALG.ECC:
      return { ...t, unique: { x: new Uint8Array(0), y: new Uint8Array(0) } };
    case TPM_ALG.RSA:
    case TPM_ALG.KEYEDHASH:
    case TPM_ALG.SYMCIPHER:
      return { ...t, unique: new Uint8Array(0) } as TPMT_PUBLIC;
  }
}

/**
 * The object a derivation parent derives for (label, context) and a
 * template (Part 1 §27.4): the same creation as a primary's
 * (CryptCreateObject: key material, then a seedValue) but drawn from
 * {@link DerivationKdf}; the caller's sensitive data plays no part. The same
 * parent key, label, context and template always give the same object.
 *
 * @throws TpmError without parameter number: TPM_RC_TYPE for RSA (the
 *   reference derives no RSA keys), TPM_RC_HASH for a NULL/unknown nameAlg,
 *   TPM_RC_CURVE / TPM_RC_KEY_SIZE / TPM_RC_SYMMETRIC as for primaries,
 *   TPM_RC_NO_RESULT past the derivation limit.
 */
export async function deriveObject(input: DerivedObjectInput): Promise<DerivedObject> {
  const template = withoutUnique(input.template);
  if (template.type === TPM_ALG.RSA) throw new TpmError(TPM_RC.TYPE);
  let nameDigestSize: number;
  try {
    if (template.nameAlg === TPM_ALG.NULL) throw new TpmError(TPM_RC.HASH);
    nameDigestSize = digestSize(template.nameAlg);
  } catch {
    throw new TpmError(TPM_RC.HASH);
  }
  const kdf = new DerivationKdf(input.kdfHashAlg, input.parentKey, input.label, input.context);
  return createFromStream(kdf, template, { userAuth: input.userAuth, data: new Uint8Array(0) }, nameDigestSize, []);
}
