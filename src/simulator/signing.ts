/**
 * Signing with a loaded key over a digest the caller (or the TPM) already
 * made: the primitive behind Sign, Quote, Certify, GetTime and the other
 * attestation commands (Part 3 §20.2, §18), and the scheme selection they
 * share (the reference's CryptSelectSignScheme).
 */
import { constants as cryptoConstants, createECDH, privateEncrypt, publicDecrypt, type ECDH } from 'node:crypto';
import { invert } from '@noble/curves/abstract/modular.js';
import { bigIntFromBytes, bytesFromBigInt, equalBytes } from '../tpm/bytes.js';
import { TPM_ALG } from '../tpm/constants.js';
import { digestSize, hash, hmac, isHashAlg } from '../tpm/crypto/hash.js';
import { TPM_RC, TpmError, rcForParameter } from '../tpm/rc.js';
import type { TPMT_PUBLIC, TPMT_SIG_SCHEME, TPMT_SIGNATURE } from '../tpm/types/index.js';
import type { TpmEngine } from './engine.js';
import { CURVE_ORDERS, curvePoint, type SimulatorCurve } from './keygen.js';
import type { LoadedObject } from './objects.js';
import { commitScalar, committedCount, endCommit } from './commit.js';

/** A scheme and its hash, as selectScheme resolves it. */
export interface SelectedScheme {
  readonly scheme: number;
  readonly hashAlg: number;
  /** ECDAA: the commit counter the signature uses (TPMS_SCHEME_ECDAA.count of inScheme). */
  readonly count?: number;
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
  const count = (inScheme as { details?: { count?: number } | null }).details?.count;
  const is = inScheme.scheme === TPM_ALG.NULL ? undefined : { scheme: inScheme.scheme, hashAlg: schemeHash(inScheme), ...(count === undefined ? {} : { count }) };
  if (ks === undefined) return is;
  // A split scheme (ECDAA) needs the caller's commit counter: the key's scheme alone will not do (reference CryptIsSplitSign).
  if (is === undefined) return ks.scheme === TPM_ALG.ECDAA ? undefined : ks;
  return ks.scheme === is.scheme && ks.hashAlg === is.hashAlg ? is : undefined;
}

/** The hash of a scheme (every signing scheme's details start with hashAlg); NULL when it has none (RSAES). */
function schemeHash(s: { scheme: number }): number {
  const d = (s as { details?: { hashAlg?: number } | null }).details;
  return d?.hashAlg ?? TPM_ALG.NULL;
}

/**
 * One ECDH object per curve, used only as OpenSSL's fixed-base multiplier
 * (setPrivateKey(k) then getPublicKey() is [k]G): a scratch tool that holds no
 * TPM state, each use setting its own scalar and reading the point at once
 * (synchronously, so two uses never interleave). Making one per signature
 * costs ~10 µs more.
 */
const BASE_MULTIPLIERS = new Map<string, ECDH>();

/** The affine x of [k]G on `curve`, by node:crypto (OpenSSL), some 30× faster than noble's base multiplication here. */
function baseX(curve: SimulatorCurve, k: bigint): bigint {
  let ecdh = BASE_MULTIPLIERS.get(curve.nodeName);
  if (ecdh === undefined) {
    ecdh = createECDH(curve.nodeName);
    BASE_MULTIPLIERS.set(curve.nodeName, ecdh);
  }
  ecdh.setPrivateKey(bytesFromBigInt(k, curve.size));
  // Uncompressed: 04 ‖ x ‖ y.
  return bigIntFromBytes(ecdh.getPublicKey().subarray(1, 1 + curve.size));
}

/** An ECC signing key's curve, order and private scalar (Load and CreatePrimary made sure of 1 ≤ d < n). */
function eccSigningKey(o: LoadedObject): { curve: SimulatorCurve; n: bigint; d: bigint } {
  const pub = o.publicArea;
  if (pub.type !== TPM_ALG.ECC) throw new TpmError(TPM_RC.KEY);
  const curve = CURVE_ORDERS.get(pub.parameters.curveID);
  if (curve === undefined) throw new TpmError(TPM_RC.CURVE);
  const d = bigIntFromBytes(o.sensitive.sensitive as Uint8Array);
  if (d === 0n || d >= curve.order) throw new TpmError(TPM_RC.KEY);
  return { curve, n: curve.order, d };
}

/**
 * ECDSA over a given digest (FIPS 186-4 §6.4; the reference's BnSignEcdsa),
 * since node:crypto hashes whatever it signs: [k]G by node:crypto (baseX),
 * the rest with bigint. k is drawn from the TPM's RNG with 64 extra bits
 * reduced into [1, n−1] (FIPS 186-4 B.5.1), so every signature has a fresh k
 * as a TPM's does. The digest is truncated to the order's bit length
 * (bits2int, §6.4). s is left as it comes (no low-s normalisation: TPMs do
 * not make one). Not constant-time: this TPM is for tests, never production.
 */
function ecdsa(engine: TpmEngine, o: LoadedObject, digest: Uint8Array): { r: Uint8Array; s: Uint8Array } {
  const { curve, n, d } = eccSigningKey(o);
  const orderBits = n.toString(2).length;
  let e = bigIntFromBytes(digest);
  if (digest.length * 8 > orderBits) e >>= BigInt(digest.length * 8 - orderBits);
  for (;;) {
    const k = (bigIntFromBytes(engine.random(curve.size + 8)) % (n - 1n)) + 1n;
    const r = baseX(curve, k) % n;
    if (r === 0n) continue; // §6.4: a new k
    const s = (invert(k, n) * ((e + r * d) % n)) % n;
    if (s === 0n) continue;
    return { r: bytesFromBigInt(r, curve.size), s: bytesFromBigInt(s, curve.size) };
  }
}

/**
 * ECDAA's second phase over a given digest (Part 1 §C.4; the reference's
 * BnSignEcdaa): r is the scalar committed under `sel.count` for this key
 * (commit.ts; TPM_RC_VALUE when that commitment is not outstanding), k a
 * fresh nonce in [1, n−1], T = H_hashAlg(k ‖ digest) with k in its minimal
 * big-endian bytes, s = r + T·d mod n. The signature is (k, s), k as hashed;
 * the commitment is used up. A verifier who knows E = [r]P1 from Commit
 * checks [s]P1 = E + [T]([d]P1).
 */
function ecdaa(engine: TpmEngine, o: LoadedObject, sel: SelectedScheme, digest: Uint8Array): { r: Uint8Array; s: Uint8Array } {
  const { curve, n, d } = eccSigningKey(o);
  const count = sel.count === undefined ? undefined : committedCount(engine.state, sel.count);
  if (sel.count === undefined || count === undefined) throw new TpmError(TPM_RC.VALUE);
  const r = commitScalar(engine.state, curve, o.name, count);
  for (;;) {
    const k = (bigIntFromBytes(engine.random(curve.size + 8)) % (n - 1n)) + 1n;
    const kBytes = bytesFromBigInt(k, Math.ceil(k.toString(16).length / 2));
    const t = bigIntFromBytes(hash(sel.hashAlg, kBytes, digest)) % n;
    const s = (r + t * d) % n;
    // The reference's BnSchnorrSign: T ≡ 0 or s = 0 is no result, and a new k is drawn.
    if (t === 0n || s === 0n) continue;
    endCommit(engine.state, sel.count);
    return { r: kBytes, s: bytesFromBigInt(s, curve.size) };
  }
}

/**
 * EC-Schnorr over a given digest (Part 1 §C.5; the reference's
 * BnSignEcSchnorr): a fresh k, R = [k]G, r = the leading order-size bytes of
 * H_hashAlg(R.x ‖ digest) (R.x in order-size bytes), s = k + r·d mod n.
 */
function ecSchnorr(engine: TpmEngine, o: LoadedObject, hashAlg: number, digest: Uint8Array): { r: Uint8Array; s: Uint8Array } {
  const { curve, n, d } = eccSigningKey(o);
  const size = orderBytes(n);
  for (;;) {
    const k = (bigIntFromBytes(engine.random(curve.size + 8)) % (n - 1n)) + 1n;
    const e = schnorrChallenge(hashAlg, baseX(curve, k), size, digest);
    const s = (k + (e % n) * d) % n;
    // The reference's BnSchnorrSign: r ≡ 0 or s = 0 is no result, and a new k is drawn.
    if (e % n === 0n || s === 0n) continue;
    return { r: bytesFromBigInt(e, size), s: bytesFromBigInt(s, size) };
  }
}

function orderBytes(n: bigint): number {
  return Math.ceil(n.toString(2).length / 8);
}

/** H_hashAlg(x ‖ digest) cut to its leading `size` bytes (the reference's SchnorrReduce), as a number. */
function schnorrChallenge(hashAlg: number, x: bigint, size: number, digest: Uint8Array): bigint {
  return bigIntFromBytes(hash(hashAlg, bytesFromBigInt(x, size), digest).subarray(0, size));
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
  // A profile may keep a hash but not for RSA/ECC signatures (libtpms's no-sha1-signing: CryptSign's TPM_RC_HASH, no parameter).
  if ((pub.type === TPM_ALG.RSA || pub.type === TPM_ALG.ECC) && !engine.profile.algorithms.signingHashes.includes(sel.hashAlg)) throw new TpmError(TPM_RC.HASH);
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
  } else if (sel.scheme === TPM_ALG.ECDAA && pub.type === TPM_ALG.ECC) {
    const { r, s } = ecdaa(engine, o, sel, digest);
    return { sigAlg: TPM_ALG.ECDAA, signature: { hash: sel.hashAlg, signatureR: r, signatureS: s } } as TPMT_SIGNATURE;
  } else if (sel.scheme === TPM_ALG.ECSCHNORR && pub.type === TPM_ALG.ECC) {
    const { r, s } = ecSchnorr(engine, o, sel.hashAlg, digest);
    return { sigAlg: TPM_ALG.ECSCHNORR, signature: { hash: sel.hashAlg, signatureR: r, signatureS: s } } as TPMT_SIGNATURE;
  } else if (sel.scheme === TPM_ALG.HMAC && pub.type === TPM_ALG.KEYEDHASH) {
    const mac = hmac(sel.hashAlg, o.sensitive.sensitive as Uint8Array, digest);
    return { sigAlg: TPM_ALG.HMAC, signature: { hashAlg: sel.hashAlg, digest: mac } } as TPMT_SIGNATURE;
  } else {
    // SM2: not implemented (TestParms says so).
    throw new TpmError(rcForParameter(TPM_RC.SCHEME, 2));
  }
}

// ---------------------------------------------------------------------------
// Verification (Part 3 §20.1 VerifySignature, §23.3 PolicySigned; the
// reference's CryptValidateSignature)

/**
 * ECDSA verification over a given digest (FIPS 186-4 §6.4.2) with
 * @noble/curves, since node:crypto only verifies over a message it hashes
 * itself. High s is accepted (a TPM's signatures are not normalised); r and s
 * must be in [1, n−1] and Q a point of the curve.
 */
function ecdsaVerify(pub: TPMT_PUBLIC, digest: Uint8Array, rBytes: Uint8Array, sBytes: Uint8Array): boolean {
  if (pub.type !== TPM_ALG.ECC) return false;
  const curve = CURVE_ORDERS.get(pub.parameters.curveID);
  if (curve === undefined) return false;
  const n = curve.order;
  const r = bigIntFromBytes(rBytes);
  const s = bigIntFromBytes(sBytes);
  if (r <= 0n || r >= n || s <= 0n || s >= n) return false;
  const Q = curvePoint(curve, pub.unique);
  if (Q === undefined) return false;
  const signature = new Uint8Array(2 * curve.size);
  signature.set(bytesFromBigInt(r, curve.size));
  signature.set(bytesFromBigInt(s, curve.size), curve.size);
  try {
    return curve.noble.verify(signature, digest, Q.toBytes(false), { prehash: false, lowS: false });
  } catch {
    return false; // a digest noble refuses (longer than it takes) is no valid signature
  }
}

/**
 * EC-Schnorr verification (the reference's BnValidateSignatureEcSchnorr):
 * E = [s]G − [r mod n]Q, then H(E.x ‖ digest) cut to order size must equal
 * r mod n. Like the reference, an r the signer left at or above n (a hash cut
 * to the order's bytes can exceed it) does not verify.
 */
function ecSchnorrVerify(pub: TPMT_PUBLIC, hashAlg: number, digest: Uint8Array, rBytes: Uint8Array, sBytes: Uint8Array): boolean {
  if (pub.type !== TPM_ALG.ECC) return false;
  const curve = CURVE_ORDERS.get(pub.parameters.curveID);
  if (curve === undefined) return false;
  const n = curve.order;
  const r = bigIntFromBytes(rBytes) % n;
  const s = bigIntFromBytes(sBytes);
  if (r === 0n || s <= 0n || s >= n) return false;
  const Q = curvePoint(curve, pub.unique);
  if (Q === undefined) return false;
  const E = curve.noble.Point.BASE.multiply(s).add(Q.multiply(n - r));
  if (E.is0()) return false;
  return schnorrChallenge(hashAlg, E.toAffine().x, orderBytes(n), digest) === r;
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
 * without its private part), TPM_RC_HASH (an RSA or ECC signature with a hash
 * outside the profile's `signingHashes`, libtpms's no-sha1-verification).
 */
export function verifySignature(o: Pick<LoadedObject, 'publicArea' | 'key' | 'publicOnly'>, digest: Uint8Array, signature: TPMT_SIGNATURE, signingHashes?: readonly number[]): number {
  const { publicArea, key } = o;
  const sigAlg = signature.sigAlg;
  if (sigAlg === TPM_ALG.NULL) return TPM_RC.SIGNATURE;
  if (publicArea.type === TPM_ALG.RSA) {
    if (sigAlg !== TPM_ALG.RSASSA && sigAlg !== TPM_ALG.RSAPSS) return TPM_RC.SCHEME;
    const { hash: hashAlg, sig } = signature.signature as { hash: number; sig: Uint8Array };
    if (!isHashAlg(hashAlg)) return TPM_RC.SCHEME;
    if (signingHashes !== undefined && !signingHashes.includes(hashAlg)) return TPM_RC.HASH;
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
    // ECDAA has no verification in the TPM (the reference's CryptValidateSignature); SM2 is not implemented.
    if (sigAlg !== TPM_ALG.ECDSA && sigAlg !== TPM_ALG.ECSCHNORR) return TPM_RC.SCHEME;
    const { hash: hashAlg, signatureR, signatureS } = signature.signature as { hash: number; signatureR: Uint8Array; signatureS: Uint8Array };
    if (!isHashAlg(hashAlg)) return TPM_RC.SCHEME;
    if (signingHashes !== undefined && !signingHashes.includes(hashAlg)) return TPM_RC.HASH;
    const good = sigAlg === TPM_ALG.ECDSA ? ecdsaVerify(publicArea, digest, signatureR, signatureS) : ecSchnorrVerify(publicArea, hashAlg, digest, signatureR, signatureS);
    return good ? 0 : TPM_RC.SIGNATURE;
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
