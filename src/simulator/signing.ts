/**
 * Signing with a loaded key over a digest the caller (or the TPM) already
 * made: the primitive behind Sign, Quote, Certify, GetTime and the other
 * attestation commands (Part 3 §20.2, §18), and the scheme selection they
 * share (the reference's CryptSelectSignScheme).
 */
import { constants as cryptoConstants, createECDH, privateEncrypt } from 'node:crypto';
import { TPM_ALG } from '../tpm/constants.js';
import { hash, hmac } from '../tpm/crypto/hash.js';
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
