/**
 * Signing with a loaded key over a digest the caller (or the TPM) already
 * made: the primitive behind Sign, Quote, Certify, GetTime and the other
 * attestation commands (Part 3 §20.2, §18), and the scheme selection they
 * share (the reference's CryptSelectSignScheme).
 */
import { constants as cryptoConstants, createECDH, privateEncrypt, publicDecrypt } from 'node:crypto';
import { equalBytes } from '../tpm/bytes.js';
import { TPM_ALG, TPM_ECC } from '../tpm/constants.js';
import { digestSize, hash, hmac, isHashAlg } from '../tpm/crypto/hash.js';
import { TPM_RC, TpmError, rcForParameter } from '../tpm/rc.js';
import type { TPMT_PUBLIC, TPMT_SIG_SCHEME, TPMT_SIGNATURE } from '../tpm/types/index.js';
import type { TpmEngine } from './engine.js';
import { CURVE_ORDERS } from './keygen.js';
import type { LoadedObject } from './objects.js';

/** A scheme and its hash, as selectScheme resolves it. */
export interface SelectedScheme {
  readonly scheme: number;
  readonly hashAlg: number;
}

/** The DER DigestInfo prefix of EMSA-PKCS1-v1_5 (RFC 8017 §9.2 note 1). */
const DIGEST_INFO: ReadonlyMap<number, Uint8Array> = new Map(
  (
    [
      [TPM_ALG.SHA1, '3021300906052b0e03021a05000414'],
      [TPM_ALG.SHA256, '3031300d060960864801650304020105000420'],
      [TPM_ALG.SHA384, '3041300d060960864801650304020205000430'],
      [TPM_ALG.SHA512, '3051300d060960864801650304020305000440'],
    ] as const
  ).map(([alg, hex]) => [alg, Uint8Array.from(Buffer.from(hex, 'hex'))]),
);

/**
 * The scheme a Sign uses (the reference's CryptSelectSignScheme): the key's
 * own scheme when inScheme is NULL; inScheme when the key has none; when
 * both are given they must agree. undefined: TPM_RC_SCHEME.
 */
export function selectScheme(pub: TPMT_PUBLIC, inScheme: TPMT_SIG_SCHEME): SelectedScheme | undefined {
  const keyScheme =
    pub.type === TPM_ALG.KEYEDHASH ? pub.parameters.scheme : pub.type === TPM_ALG.RSA || pub.type === TPM_ALG.ECC ? pub.parameters.scheme : undefined;
  if (keyScheme === undefined) return undefined;
  const ks = keyScheme.scheme === TPM_ALG.NULL ? undefined : { scheme: keyScheme.scheme, hashAlg: schemeHash(keyScheme) };
  const is = inScheme.scheme === TPM_ALG.NULL ? undefined : { scheme: inScheme.scheme, hashAlg: schemeHash(inScheme) };
  if (ks === undefined) return is;
  if (is === undefined) return ks;
  return ks.scheme === is.scheme && ks.hashAlg === is.hashAlg ? ks : undefined;
}

/** The hash of a scheme (every signing scheme's details start with hashAlg); NULL when it has none (RSAES). */
function schemeHash(s: { scheme: number }): number {
  const d = (s as { details?: { hashAlg?: number } | null }).details;
  return d?.hashAlg ?? TPM_ALG.NULL;
}

function bigOf(b: Uint8Array): bigint {
  return b.length === 0 ? 0n : BigInt('0x' + Buffer.from(b).toString('hex'));
}

function bytesOf(v: bigint, size: number): Uint8Array {
  return Uint8Array.from(Buffer.from(v.toString(16).padStart(size * 2, '0'), 'hex'));
}

function modPow(b: bigint, e: bigint, m: bigint): bigint {
  let r = 1n;
  b %= m;
  while (e > 0n) {
    if (e & 1n) r = (r * b) % m;
    b = (b * b) % m;
    e >>= 1n;
  }
  return r;
}

/**
 * ECDSA over a given digest (FIPS 186-4 §6.4; the reference's BnSignEcdsa):
 * node:crypto hashes whatever it signs, so the TPM's prehashed form is done
 * here with node:crypto's point multiplication for R = kG.
 */
function ecdsa(engine: TpmEngine, o: LoadedObject, digest: Uint8Array): { r: Uint8Array; s: Uint8Array } {
  const pub = o.publicArea;
  if (pub.type !== TPM_ALG.ECC) throw new TpmError(TPM_RC.KEY);
  const curve = CURVE_ORDERS.get(pub.parameters.curveID);
  if (curve === undefined) throw new TpmError(TPM_RC.CURVE);
  const n = curve.order;
  const nBits = n.toString(2).length;
  // The leftmost min(nBits, 8·len) bits of the digest.
  let e = bigOf(digest);
  if (digest.length * 8 > nBits) e >>= BigInt(digest.length * 8 - nBits);
  const d = bigOf(o.sensitive.sensitive as Uint8Array);
  for (;;) {
    const k = (bigOf(engine.random(curve.size + 8)) % (n - 1n)) + 1n;
    const ecdh = createECDH(curve.nodeName);
    ecdh.setPrivateKey(bytesOf(k, curve.size));
    const point = ecdh.getPublicKey(null, 'uncompressed');
    const r = bigOf(new Uint8Array(point.subarray(1, 1 + curve.size))) % n;
    if (r === 0n) continue;
    const s = (modPow(k, n - 2n, n) * ((e + r * d) % n)) % n;
    if (s === 0n) continue;
    return { r: bytesOf(r, curve.size), s: bytesOf(s, curve.size) };
  }
}

/** MGF1 (RFC 8017 §B.2.1). */
function mgf1(alg: number, seed: Uint8Array, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let counter = 0, at = 0; at < length; counter++) {
    const block = hash(alg, seed, Uint8Array.of(counter >>> 24, (counter >>> 16) & 0xff, (counter >>> 8) & 0xff, counter & 0xff));
    out.set(block.subarray(0, Math.min(block.length, length - at)), at);
    at += block.length;
  }
  return out;
}

/**
 * EMSA-PSS-ENCODE over a given digest (RFC 8017 §9.1.1 from step 4), padded to
 * the modulus length for a raw RSA operation. The salt is as long as the
 * digest, as the reference's RSAPSS does (Part 1 Annex B.7).
 */
function emsaPss(engine: TpmEngine, alg: number, mHash: Uint8Array, modBits: number): Uint8Array {
  const hLen = mHash.length;
  const emBits = modBits - 1;
  const emLen = Math.ceil(emBits / 8);
  if (emLen < 2 * hLen + 2) throw new TpmError(rcForParameter(TPM_RC.SCHEME, 2));
  const salt = engine.random(hLen);
  const h = hash(alg, new Uint8Array(8), mHash, salt);
  const db = new Uint8Array(emLen - hLen - 1);
  db[db.length - hLen - 1] = 0x01;
  db.set(salt, db.length - hLen);
  const mask = mgf1(alg, h, db.length);
  for (let i = 0; i < db.length; i++) db[i]! ^= mask[i]!;
  db[0]! &= 0xff >>> (8 * emLen - emBits);
  const em = new Uint8Array(modBits / 8);
  em.set(db, em.length - emLen);
  em.set(h, em.length - 1 - hLen);
  em[em.length - 1] = 0xbc;
  return em;
}

/**
 * Signs `digest` with `o` under `sel` (RSASSA, RSAPSS, ECDSA, HMAC).
 * @throws TpmError TPM_RC_SCHEME (parameter 2, inScheme) for a scheme the key cannot use.
 */
export function signDigest(engine: TpmEngine, o: LoadedObject, sel: SelectedScheme, digest: Uint8Array): TPMT_SIGNATURE {
  const pub = o.publicArea;
  if (sel.scheme === TPM_ALG.RSASSA && pub.type === TPM_ALG.RSA) {
    const prefix = DIGEST_INFO.get(sel.hashAlg)!;
    const t = new Uint8Array(prefix.length + digest.length);
    t.set(prefix);
    t.set(digest, prefix.length);
    const sig = new Uint8Array(privateEncrypt({ key: o.key, padding: cryptoConstants.RSA_PKCS1_PADDING }, t));
    return { sigAlg: TPM_ALG.RSASSA, signature: { hash: sel.hashAlg, sig } } as TPMT_SIGNATURE;
  } else if (sel.scheme === TPM_ALG.RSAPSS && pub.type === TPM_ALG.RSA) {
    const em = emsaPss(engine, sel.hashAlg, digest, pub.parameters.keyBits);
    const sig = new Uint8Array(privateEncrypt({ key: o.key, padding: cryptoConstants.RSA_NO_PADDING }, em));
    return { sigAlg: TPM_ALG.RSAPSS, signature: { hash: sel.hashAlg, sig } } as TPMT_SIGNATURE;
  } else if (sel.scheme === TPM_ALG.ECDSA && pub.type === TPM_ALG.ECC) {
    const { r, s } = ecdsa(engine, o, digest);
    return { sigAlg: TPM_ALG.ECDSA, signature: { hash: sel.hashAlg, signatureR: r, signatureS: s } } as TPMT_SIGNATURE;
  } else if (sel.scheme === TPM_ALG.HMAC && pub.type === TPM_ALG.KEYEDHASH) {
    const mac = hmac(sel.hashAlg, o.sensitive.sensitive as Uint8Array, digest);
    return { sigAlg: TPM_ALG.HMAC, signature: { hashAlg: sel.hashAlg, digest: mac } } as TPMT_SIGNATURE;
  } else {
    // TODO(next slice): ECDAA, SM2, EC-Schnorr.
    throw new TpmError(rcForParameter(TPM_RC.SCHEME, 2));
  }
}

// ---------------------------------------------------------------------------
// Verification (Part 3 §20.1 VerifySignature, §23.3 PolicySigned; the
// reference's CryptValidateSignature)

/** The field primes of the curves in CURVE_ORDERS (FIPS 186-4 D.1.2.3 and D.1.2.4); both curves have a = −3. */
export const CURVE_PRIMES: ReadonlyMap<number, bigint> = new Map([
  [TPM_ECC.NIST_P256, 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn],
  [TPM_ECC.NIST_P384, 0xfffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffffn],
]);

/** A point in Jacobian coordinates (X/Z², Y/Z³); Z = 0 is the point at infinity. */
interface Jacobian {
  readonly x: bigint;
  readonly y: bigint;
  readonly z: bigint;
}

const INFINITY: Jacobian = { x: 1n, y: 1n, z: 0n };

function mod(a: bigint, m: bigint): bigint {
  const r = a % m;
  return r < 0n ? r + m : r;
}

/** Doubling for a = −3 ("dbl-2001-b", Bernstein–Lange Explicit-Formulas Database). */
function jDouble(P: Jacobian, p: bigint): Jacobian {
  if (P.z === 0n || P.y === 0n) return INFINITY;
  const delta = mod(P.z * P.z, p);
  const gamma = mod(P.y * P.y, p);
  const beta = mod(P.x * gamma, p);
  const alpha = mod(3n * (P.x - delta) * (P.x + delta), p);
  const x = mod(alpha * alpha - 8n * beta, p);
  const z = mod((P.y + P.z) * (P.y + P.z) - gamma - delta, p);
  const y = mod(alpha * (4n * beta - x) - 8n * gamma * gamma, p);
  return { x, y, z };
}

/** General addition ("add-2007-bl" without the 2× scaling). */
function jAdd(P: Jacobian, Q: Jacobian, p: bigint): Jacobian {
  if (P.z === 0n) return Q;
  if (Q.z === 0n) return P;
  const z1z1 = mod(P.z * P.z, p);
  const z2z2 = mod(Q.z * Q.z, p);
  const u1 = mod(P.x * z2z2, p);
  const u2 = mod(Q.x * z1z1, p);
  const s1 = mod(P.y * Q.z * z2z2, p);
  const s2 = mod(Q.y * P.z * z1z1, p);
  if (u1 === u2) return s1 === s2 ? jDouble(P, p) : INFINITY;
  const h = mod(u2 - u1, p);
  const r = mod(s2 - s1, p);
  const hh = mod(h * h, p);
  const hhh = mod(h * hh, p);
  const v = mod(u1 * hh, p);
  const x = mod(r * r - hhh - 2n * v, p);
  const y = mod(r * (v - x) - s1 * hhh, p);
  const z = mod(P.z * Q.z * h, p);
  return { x, y, z };
}

/** u1·G + u2·Q by joint double-and-add (Shamir's trick). Public values only: no constant-time needed. */
function jointMultiply(u1: bigint, G: Jacobian, u2: bigint, Q: Jacobian, p: bigint): Jacobian {
  const GQ = jAdd(G, Q, p);
  let R = INFINITY;
  const bits = Math.max(u1.toString(2).length, u2.toString(2).length);
  for (let i = bits - 1; i >= 0; i--) {
    R = jDouble(R, p);
    const b1 = (u1 >> BigInt(i)) & 1n;
    const b2 = (u2 >> BigInt(i)) & 1n;
    if (b1 === 1n && b2 === 1n) R = jAdd(R, GQ, p);
    else if (b1 === 1n) R = jAdd(R, G, p);
    else if (b2 === 1n) R = jAdd(R, Q, p);
  }
  return R;
}

const generators = new Map<number, Jacobian>();

/** The base point, as node:crypto reports the public key of the private scalar 1. */
function generatorOf(curveID: number): Jacobian {
  let G = generators.get(curveID);
  if (G === undefined) {
    const curve = CURVE_ORDERS.get(curveID)!;
    const ecdh = createECDH(curve.nodeName);
    ecdh.setPrivateKey(bytesOf(1n, curve.size));
    const pt = ecdh.getPublicKey(null, 'uncompressed');
    G = { x: bigOf(new Uint8Array(pt.subarray(1, 1 + curve.size))), y: bigOf(new Uint8Array(pt.subarray(1 + curve.size))), z: 1n };
    generators.set(curveID, G);
  }
  return G;
}

/**
 * ECDSA verification over a given digest (FIPS 186-4 §6.4.2; node:crypto
 * only verifies over a message it hashes itself). Q is the key's public
 * point, which Load/CreatePrimary already checked is on the curve.
 */
function ecdsaVerify(pub: TPMT_PUBLIC, digest: Uint8Array, rBytes: Uint8Array, sBytes: Uint8Array): boolean {
  if (pub.type !== TPM_ALG.ECC) return false;
  const curve = CURVE_ORDERS.get(pub.parameters.curveID);
  const p = CURVE_PRIMES.get(pub.parameters.curveID);
  if (curve === undefined || p === undefined) return false;
  const n = curve.order;
  const r = bigOf(rBytes);
  const s = bigOf(sBytes);
  if (r <= 0n || r >= n || s <= 0n || s >= n) return false;
  const nBits = n.toString(2).length;
  let e = bigOf(digest);
  if (digest.length * 8 > nBits) e >>= BigInt(digest.length * 8 - nBits);
  const w = modPow(s, n - 2n, n);
  const Q: Jacobian = { x: bigOf(pub.unique.x), y: bigOf(pub.unique.y), z: 1n };
  if (Q.x >= p || Q.y >= p) return false;
  const X = jointMultiply(mod(e * w, n), generatorOf(pub.parameters.curveID), mod(r * w, n), Q, p);
  if (X.z === 0n) return false;
  const zInv = modPow(X.z, p - 2n, p);
  const x = mod(X.x * zInv * zInv, p);
  return mod(x, n) === r;
}

/** EMSA-PSS-VERIFY (RFC 8017 §9.1.2) over a given digest; any salt length, as the reference's PssDecode accepts. */
function emsaPssVerify(alg: number, mHash: Uint8Array, em0: Uint8Array, modBits: number): boolean {
  const hLen = mHash.length;
  const emBits = modBits - 1;
  const emLen = Math.ceil(emBits / 8);
  // The raw RSA result is modBits/8 bytes; with emBits = modBits − 1 a whole leading zero byte precedes EM when modBits ≡ 1 mod 8 only.
  if (em0.length < emLen) return false;
  for (let i = 0; i < em0.length - emLen; i++) if (em0[i] !== 0) return false;
  const em = em0.subarray(em0.length - emLen);
  if (emLen < hLen + 2 || em[emLen - 1] !== 0xbc) return false;
  const maskedDb = em.subarray(0, emLen - hLen - 1);
  const h = em.subarray(emLen - hLen - 1, emLen - 1);
  const topMask = 0xff >>> (8 * emLen - emBits);
  if ((maskedDb[0]! & ~topMask) !== 0) return false;
  const mask = mgf1(alg, h, maskedDb.length);
  const db = new Uint8Array(maskedDb.length);
  for (let i = 0; i < db.length; i++) db[i] = maskedDb[i]! ^ mask[i]!;
  db[0]! &= topMask;
  let i = 0;
  while (i < db.length && db[i] === 0) i++;
  if (i >= db.length || db[i] !== 0x01) return false;
  const salt = db.subarray(i + 1);
  const h2 = hash(alg, new Uint8Array(8), mHash, salt);
  return equalBytes(h, h2);
}

/**
 * Whether `signature` is a valid signature over `digest` by the loaded
 * object `o` (its public area; its node:crypto key, public or private; for a
 * KEYEDHASH key the secret). RSASSA, RSAPSS, ECDSA and HMAC, the schemes
 * signDigest makes.
 * @returns 0 when genuine, otherwise the base response code the reference's
 * CryptValidateSignature gives: TPM_RC_SIGNATURE (not genuine, or an HMAC
 * scheme other than the key's), TPM_RC_SCHEME (a scheme this key type cannot
 * verify, or a hash it does not know), TPM_RC_HANDLE (an HMAC key loaded
 * without its private part).
 */
export function verifySignature(o: Pick<LoadedObject, 'publicArea' | 'key' | 'publicOnly'>, digest: Uint8Array, signature: TPMT_SIGNATURE): number {
  const { publicArea, key } = o;
  const sigAlg = signature.sigAlg;
  if (sigAlg === TPM_ALG.NULL) return TPM_RC.SIGNATURE;
  if (publicArea.type === TPM_ALG.RSA) {
    if (sigAlg !== TPM_ALG.RSASSA && sigAlg !== TPM_ALG.RSAPSS) return TPM_RC.SCHEME;
    const { hash: hashAlg, sig } = signature.signature as { hash: number; sig: Uint8Array };
    if (!isHashAlg(hashAlg)) return TPM_RC.SCHEME;
    const modBytes = publicArea.unique.length;
    if (sig.length !== modBytes || digest.length !== digestSize(hashAlg)) return TPM_RC.SIGNATURE;
    let decoded: Uint8Array;
    try {
      decoded = new Uint8Array(publicDecrypt({ key, padding: sigAlg === TPM_ALG.RSASSA ? cryptoConstants.RSA_PKCS1_PADDING : cryptoConstants.RSA_NO_PADDING }, sig));
    } catch {
      return TPM_RC.SIGNATURE; // bad padding, or the value is not below the modulus
    }
    if (sigAlg === TPM_ALG.RSAPSS) return emsaPssVerify(hashAlg, digest, decoded, publicArea.parameters.keyBits) ? 0 : TPM_RC.SIGNATURE;
    const prefix = DIGEST_INFO.get(hashAlg);
    if (prefix === undefined) return TPM_RC.SCHEME;
    const expected = new Uint8Array(prefix.length + digest.length);
    expected.set(prefix);
    expected.set(digest, prefix.length);
    return equalBytes(decoded, expected) ? 0 : TPM_RC.SIGNATURE;
  }
  if (publicArea.type === TPM_ALG.ECC) {
    if (sigAlg !== TPM_ALG.ECDSA) return TPM_RC.SCHEME; // TODO(part 2): ECDAA has no verification; SM2, EC-Schnorr
    const { hash: hashAlg, signatureR, signatureS } = signature.signature as { hash: number; signatureR: Uint8Array; signatureS: Uint8Array };
    if (!isHashAlg(hashAlg)) return TPM_RC.SCHEME;
    return ecdsaVerify(publicArea, digest, signatureR, signatureS) ? 0 : TPM_RC.SIGNATURE;
  }
  if (publicArea.type === TPM_ALG.KEYEDHASH) {
    // Without its private part there is no key to check an HMAC with.
    if (o.publicOnly === true) return TPM_RC.HANDLE;
    if (sigAlg !== TPM_ALG.HMAC) return TPM_RC.SCHEME;
    const { hashAlg, digest: mac } = signature.signature as { hashAlg: number; digest: Uint8Array };
    if (!isHashAlg(hashAlg)) return TPM_RC.SCHEME;
    // A key with a scheme verifies only its own scheme and hash (no weaker hash than the key allows).
    const keyScheme = publicArea.parameters.scheme;
    if (keyScheme.scheme !== TPM_ALG.NULL && (keyScheme.scheme !== TPM_ALG.HMAC || schemeHash(keyScheme) !== hashAlg)) return TPM_RC.SIGNATURE;
    // Part 1 §11.4.4: the HMAC key is the object's sensitive data; the key object holds it as a secret key.
    const expected = hmac(hashAlg, new Uint8Array(key.export()), digest);
    return equalBytes(mac, expected) ? 0 : TPM_RC.SIGNATURE;
  }
  return TPM_RC.SCHEME;
}
