/**
 * Secrets encrypted to a TPM key: the "labeled KEM" behind salted sessions
 * (label "SECRET"), MakeCredential ("IDENTITY") and duplication / import
 * ("DUPLICATE"). One place, used by the client, the verifier and the software
 * TPM alike (Part 1 §24 "Protected Storage" / Annex B.10 and C.6 "Secret
 * Sharing"; the reference's CryptUtil.c CryptSecretEncrypt and CryptSecretDecrypt).
 *
 * - RSA: seed = digestSize(nameAlg) random bytes; encryptedSecret =
 *   RSA-OAEP(seed) with label ‖ 0x00 (Part 1 Annex B.10.3: the label's
 *   terminating NUL is part of L). The hash is the key's nameAlg, or the
 *   hash of the key's own OAEP scheme, which is what the TPM decrypts with.
 * - ECC: an ephemeral key pair on the key's curve; Z = x([d_e]Q_s);
 *   seed = KDFe(nameAlg, Z, label, x(Q_e), x(Q_s), digestBits);
 *   encryptedSecret = marshaled TPMS_ECC_POINT Q_e (Part 1 Annex C.6.4).
 */
import {
  createECDH,
  createPublicKey,
  constants as cryptoConstants,
  diffieHellman,
  type KeyObject,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
} from 'node:crypto';
import { TPM_ALG, TPM_ECC } from './constants.js';
import { digestSize, isHashAlg, nodeHashName } from './crypto/hash.js';
import { kdfe } from './crypto/kdf.js';
import { ArgumentError, CryptoError, UnsupportedAlgorithmError } from './errors.js';
import { TPMS_ECC_POINT, type TPMT_PUBLIC } from './types/index.js';
import { decode, encode } from './wire/codec.js';

/** An RSA public area (TPMT_PUBLIC with type TPM_ALG_RSA). */
export type RsaPublicArea = Extract<TPMT_PUBLIC, { type: typeof TPM_ALG.RSA }>;
/** An ECC public area (TPMT_PUBLIC with type TPM_ALG_ECC). */
export type EccPublicArea = Extract<TPMT_PUBLIC, { type: typeof TPM_ALG.ECC }>;

// ---------------------------------------------------------------------------
// Curves and node:crypto key objects

/** What node:crypto needs to know about a TPM curve. */
export interface EccCurveInfo {
  readonly curveID: number;
  /** OpenSSL / node:crypto curve name (`namedCurve`). */
  readonly nodeName: string;
  /** Bytes in a coordinate or a private scalar (the order's byte length; Part 1 §C.2). */
  readonly size: number;
  /** DER of the curve's OBJECT IDENTIFIER (SEC 2 / RFC 5480), for SubjectPublicKeyInfo. */
  readonly oid: Uint8Array;
}

const CURVES: ReadonlyMap<number, EccCurveInfo> = new Map(
  (
    [
      [TPM_ECC.NIST_P192, 'prime192v1', 24, '06082a8648ce3d030101'],
      [TPM_ECC.NIST_P224, 'secp224r1', 28, '06052b81040021'],
      [TPM_ECC.NIST_P256, 'prime256v1', 32, '06082a8648ce3d030107'],
      [TPM_ECC.NIST_P384, 'secp384r1', 48, '06052b81040022'],
      [TPM_ECC.NIST_P521, 'secp521r1', 66, '06052b81040023'],
    ] as const
  ).map(([curveID, nodeName, size, oid]) => [curveID, { curveID, nodeName, size, oid: Uint8Array.from(Buffer.from(oid, 'hex')) }]),
);

/**
 * The curve behind a TPM_ECC_CURVE. BN and SM2 curves are valid TPM curves
 * that OpenSSL's EC API does not offer as named curves here.
 * @throws UnsupportedAlgorithmError (`crypto.unsupported`, alg = TPM_ALG_ECC).
 */
export function eccCurve(curveID: number): EccCurveInfo {
  const c = CURVES.get(curveID);
  if (c === undefined) throw new UnsupportedAlgorithmError(TPM_ALG.ECC, `ECC curve 0x${curveID.toString(16).padStart(4, '0')} is not supported here`);
  return c;
}

/** The TPM curve whose node:crypto name is `namedCurve` (as in KeyObject.asymmetricKeyDetails), if any. */
export function eccCurveByNodeName(namedCurve: string): EccCurveInfo | undefined {
  for (const c of CURVES.values()) if (c.nodeName === namedCurve) return c;
  return undefined;
}

function derLength(n: number): number[] {
  if (n < 0x80) return [n];
  if (n < 0x100) return [0x81, n];
  return [0x82, n >>> 8, n & 0xff];
}
function der(tag: number, ...content: Uint8Array[]): Uint8Array {
  const body = Buffer.concat(content);
  return Uint8Array.from([tag, ...derLength(body.length), ...body]);
}
const EC_PUBLIC_KEY_OID = Uint8Array.from(Buffer.from('06072a8648ce3d0201', 'hex')); // id-ecPublicKey, RFC 5480

/** Left-pads a coordinate to the curve size; a TPM may strip leading zeros. */
function padCoordinate(v: Uint8Array, size: number, what: string, fail: (m: string) => never): Uint8Array {
  if (v.length > size) fail(`${what}: ${v.length} byte(s), the curve has ${size}`);
  const out = new Uint8Array(size);
  out.set(v, size - v.length);
  return out;
}

/** The uncompressed SEC 1 encoding 04 ‖ x ‖ y of a TPM point. */
function uncompressed(curve: EccCurveInfo, point: TPMS_ECC_POINT, fail: (m: string) => never): Uint8Array {
  return Uint8Array.from([4, ...padCoordinate(point.x, curve.size, 'x', fail), ...padCoordinate(point.y, curve.size, 'y', fail)]);
}

/**
 * A node:crypto public key for a point; OpenSSL checks that the point is on the curve.
 * @throws CryptoError with `code` (`crypto.key` or `crypto.decrypt`, chosen by the caller's context).
 */
function eccPointKey(curve: EccCurveInfo, point: TPMS_ECC_POINT, code: 'crypto.key' | 'crypto.decrypt'): KeyObject {
  const fail = (m: string): never => {
    throw new CryptoError(code, `ECC point: ${m}`);
  };
  const spki = der(0x30, der(0x30, EC_PUBLIC_KEY_OID, curve.oid), der(0x03, new Uint8Array([0]), uncompressed(curve, point, fail)));
  try {
    return createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  } catch (cause) {
    throw new CryptoError(code, `ECC point is not on curve ${curve.nodeName}`, { cause });
  }
}

/** The point of an EC KeyObject (public or private), with coordinates of the curve's size. */
export function eccPointOf(key: KeyObject): { curve: EccCurveInfo; point: TPMS_ECC_POINT } {
  if (key.asymmetricKeyType !== 'ec') throw new CryptoError('crypto.key', `expected an EC key, got ${String(key.asymmetricKeyType)}`);
  const named = key.asymmetricKeyDetails?.namedCurve;
  const curve = named === undefined ? undefined : eccCurveByNodeName(named);
  if (curve === undefined) throw new UnsupportedAlgorithmError(TPM_ALG.ECC, `EC curve ${String(named)} has no TPM curve supported here`);
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  // An uncompressed SubjectPublicKeyInfo ends with its BIT STRING content 04 ‖ x ‖ y.
  const spki = new Uint8Array(pub.export({ format: 'der', type: 'spki' }));
  const pt = spki.subarray(spki.length - (1 + 2 * curve.size));
  if (pt[0] !== 4) throw new CryptoError('crypto.key', 'EC public key is not in uncompressed form');
  return { curve, point: { x: pt.slice(1, 1 + curve.size), y: pt.slice(1 + curve.size) } };
}

function b64url(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64url');
}
function stripZeros(b: Uint8Array): Uint8Array {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
}
function exponentBytes(exponent: number): Uint8Array {
  const e = exponent === 0 ? 65537 : exponent; // Part 2 §12.2.3.5: 0 means 2^16 + 1
  return stripZeros(Uint8Array.from([e >>> 24, (e >>> 16) & 0xff, (e >>> 8) & 0xff, e & 0xff]));
}

/**
 * A node:crypto public key for an RSA or ECC public area (to encrypt to it,
 * or to verify its signatures).
 * @throws CryptoError (`crypto.key`) for another type or an unusable key (empty modulus, point off the curve);
 *   UnsupportedAlgorithmError for a curve that node:crypto lacks.
 */
export function publicKeyFromArea(publicArea: TPMT_PUBLIC): KeyObject {
  if (publicArea.type === TPM_ALG.RSA) {
    const n = publicArea.unique;
    if (n.length === 0 || n.length * 8 !== publicArea.parameters.keyBits) {
      throw new CryptoError('crypto.key', `RSA modulus of ${n.length} byte(s) does not match keyBits ${publicArea.parameters.keyBits}`);
    }
    try {
      return createPublicKey({ key: { kty: 'RSA', n: b64url(n), e: b64url(exponentBytes(publicArea.parameters.exponent)) }, format: 'jwk' });
    } catch (cause) {
      throw new CryptoError('crypto.key', 'RSA public key rejected by node:crypto', { cause });
    }
  }
  if (publicArea.type === TPM_ALG.ECC) {
    return eccPointKey(eccCurve(publicArea.parameters.curveID), publicArea.unique, 'crypto.key');
  }
  throw new CryptoError('crypto.key', `a ${publicArea.type === TPM_ALG.KEYEDHASH ? 'keyedHash' : 'symcipher'} object has no public key`);
}

// ---------------------------------------------------------------------------
// The labeled KEM

/** The result of encrypting a fresh seed to a key. */
export interface EncryptedSecret {
  /** The seed, digestSize(nameAlg) bytes: keep it, derive keys from it. */
  readonly seed: Uint8Array;
  /** What goes to the TPM as the content of a TPM2B_ENCRYPTED_SECRET. */
  readonly encryptedSecret: Uint8Array;
}

export interface EncryptSecretOptions {
  /** RSA only: this seed instead of a random one (tests); digestSize(nameAlg) bytes. */
  readonly seed?: Uint8Array;
  /** ECC only: this ephemeral private scalar instead of a fresh one (known-answer tests). */
  readonly ephemeralPrivateKey?: Uint8Array;
}

const encoder = new TextEncoder();

/** OAEP's L: the label's bytes and its terminating NUL (Part 1 Annex B.10.3; the reference stores "IDENTITY\0" etc.). */
function oaepLabel(label: string): Buffer {
  if (typeof label !== 'string' || label.length === 0) throw new ArgumentError('secret label: expected a non-empty string such as "SECRET"');
  if (label.includes('\0')) throw new ArgumentError('secret label: must not contain NUL (the terminator is added here)');
  return Buffer.concat([encoder.encode(label), new Uint8Array([0])]);
}

function nameAlgOf(publicArea: TPMT_PUBLIC): number {
  const alg = publicArea.nameAlg;
  if (!isHashAlg(alg)) throw new CryptoError('crypto.key', `a key with nameAlg 0x${alg.toString(16)} cannot receive a secret (the seed is sized by nameAlg)`);
  nodeHashName(alg); // UnsupportedAlgorithmError now rather than halfway through
  return alg;
}

/**
 * The OAEP hash the TPM decrypts with: the key's own OAEP scheme hash, or
 * nameAlg when the scheme is NULL; any other scheme cannot receive a secret
 * (CryptSecretDecrypt answers TPM_RC_SCHEME).
 */
function oaepHash(publicArea: RsaPublicArea): number {
  const scheme = publicArea.parameters.scheme;
  if (scheme.scheme === TPM_ALG.NULL) return publicArea.nameAlg;
  if (scheme.scheme === TPM_ALG.OAEP) return scheme.details.hashAlg;
  throw new CryptoError('crypto.key', `an RSA key with scheme 0x${scheme.scheme.toString(16)} cannot receive a secret (OAEP or NULL only)`);
}

function checkDecryptKey(publicArea: TPMT_PUBLIC): asserts publicArea is RsaPublicArea | EccPublicArea {
  if (publicArea === null || typeof publicArea !== 'object') throw new ArgumentError('publicArea: expected a TPMT_PUBLIC');
  if (publicArea.type !== TPM_ALG.RSA && publicArea.type !== TPM_ALG.ECC) {
    throw new CryptoError('crypto.key', `a secret is encrypted to an RSA or ECC key, not type 0x${Number(publicArea.type).toString(16)}`);
  }
  // CryptSecretEncrypt: TPM_RC_ATTRIBUTES without decrypt.
  if (!publicArea.objectAttributes.decrypt) throw new CryptoError('crypto.key', 'the key is not a decryption key (TPMA_OBJECT.decrypt clear)');
}

/**
 * Makes a fresh seed and encrypts it to `publicArea` with `label`
 * ("SECRET" for a salted session, "IDENTITY" for MakeCredential, "DUPLICATE" for import).
 *
 * @param publicArea an RSA or ECC public area with `decrypt` set.
 * @param label the use, without its terminating NUL.
 * @returns the seed (digestSize(nameAlg) bytes) and the TPM2B_ENCRYPTED_SECRET content.
 * @throws CryptoError (`crypto.key`) for a key that cannot receive a secret (type, attributes, scheme, point off the curve);
 *   ArgumentError for a bad label or option; UnsupportedAlgorithmError for a hash or curve node:crypto lacks.
 * @example const { seed, encryptedSecret } = encryptSecret(srkPublic, 'SECRET');
 */
export function encryptSecret(publicArea: TPMT_PUBLIC, label: string, options: EncryptSecretOptions = {}): EncryptedSecret {
  checkDecryptKey(publicArea);
  const nameAlg = nameAlgOf(publicArea);
  const seedSize = digestSize(nameAlg);
  if (publicArea.type === TPM_ALG.RSA) {
    const l = oaepLabel(label);
    const oaep = oaepHash(publicArea);
    // CryptSecretDecrypt refuses (TPM_RC_VALUE) a seed longer than the OAEP hash's digest.
    if (seedSize > digestSize(oaep)) {
      throw new CryptoError('crypto.key', `the key's OAEP hash (0x${oaep.toString(16)}) is shorter than its nameAlg digest: the TPM would refuse the seed`);
    }
    if (options.ephemeralPrivateKey !== undefined) throw new ArgumentError('ephemeralPrivateKey applies to ECC keys only');
    let seed: Uint8Array;
    if (options.seed !== undefined) {
      if (!(options.seed instanceof Uint8Array) || options.seed.length !== seedSize) throw new ArgumentError(`seed: expected ${seedSize} bytes`);
      seed = options.seed.slice();
    } else {
      seed = new Uint8Array(randomBytes(seedSize));
    }
    const key = publicKeyFromArea(publicArea);
    let encryptedSecret: Uint8Array;
    try {
      encryptedSecret = new Uint8Array(
        publicEncrypt({ key, padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING, oaepHash: nodeHashName(oaep), oaepLabel: l }, seed),
      );
    } catch (cause) {
      // OAEP needs 2·hLen + 2 bytes of room: a 1024-bit key with SHA-512 has none.
      throw new CryptoError('crypto.key', `RSA-OAEP with this key and hash failed`, { cause });
    }
    return { seed, encryptedSecret };
  }
  // ECC
  const curve = eccCurve(publicArea.parameters.curveID);
  if (options.seed !== undefined) throw new ArgumentError('seed applies to RSA keys only (an ECC seed comes out of KDFe)');
  const fail = (m: string): never => {
    throw new CryptoError('crypto.key', `ECC public key: ${m}`);
  };
  const staticPoint = uncompressed(curve, publicArea.unique, fail);
  const ecdh = createECDH(curve.nodeName);
  if (options.ephemeralPrivateKey !== undefined) {
    const d = options.ephemeralPrivateKey;
    if (!(d instanceof Uint8Array) || d.length === 0 || d.length > curve.size) throw new ArgumentError(`ephemeralPrivateKey: expected 1..${curve.size} bytes`);
    try {
      ecdh.setPrivateKey(d);
    } catch (cause) {
      throw new ArgumentError(`ephemeralPrivateKey is not a valid scalar for ${curve.nodeName}: ${String(cause)}`);
    }
  } else {
    ecdh.generateKeys();
  }
  let z: Uint8Array;
  try {
    // computeSecret rejects a point that is not on the curve (CryptSecretEncrypt: TPM_RC_KEY).
    z = new Uint8Array(ecdh.computeSecret(staticPoint));
  } catch (cause) {
    throw new CryptoError('crypto.key', `ECC public key is not a point on ${curve.nodeName}`, { cause });
  }
  const eph = new Uint8Array(ecdh.getPublicKey(null, 'uncompressed'));
  const ephemeral = { x: eph.slice(1, 1 + curve.size), y: eph.slice(1 + curve.size) };
  const seed = kdfe(nameAlg, z, label, ephemeral.x, publicArea.unique.x, seedSize * 8);
  return { seed, encryptedSecret: encode(TPMS_ECC_POINT, ephemeral) };
}

/**
 * Checks that `privateKey` is the private half of `publicArea` (type, curve,
 * modulus or point), so a secret is never "decrypted" with the wrong key.
 */
function checkPrivateKey(privateKey: KeyObject, publicArea: TPMT_PUBLIC): void {
  if (privateKey === null || typeof privateKey !== 'object' || privateKey.type !== 'private') {
    throw new ArgumentError('privateKey: expected a private node:crypto KeyObject');
  }
  if (publicArea.type === TPM_ALG.RSA) {
    if (privateKey.asymmetricKeyType !== 'rsa') throw new CryptoError('crypto.key', `private key is ${String(privateKey.asymmetricKeyType)}, the public area is RSA`);
    const jwk = privateKey.export({ format: 'jwk' });
    const n = Buffer.from(String(jwk.n), 'base64url');
    const e = Buffer.from(String(jwk.e), 'base64url');
    if (!Buffer.from(stripZeros(n)).equals(Buffer.from(stripZeros(publicArea.unique))) || !e.equals(Buffer.from(exponentBytes(publicArea.parameters.exponent)))) {
      throw new CryptoError('crypto.key', 'private key does not match the RSA public area');
    }
    return;
  }
  if (publicArea.type === TPM_ALG.ECC) {
    const curve = eccCurve(publicArea.parameters.curveID);
    const mine = eccPointOf(privateKey);
    const fail = (m: string): never => {
      throw new CryptoError('crypto.key', `ECC public area: ${m}`);
    };
    if (mine.curve.curveID !== curve.curveID || !Buffer.from(uncompressed(curve, mine.point, fail)).equals(Buffer.from(uncompressed(curve, publicArea.unique, fail)))) {
      throw new CryptoError('crypto.key', 'private key does not match the ECC public area');
    }
  }
}

/**
 * The TPM side: recovers the seed from a TPM2B_ENCRYPTED_SECRET's content with
 * the key's private half, as CryptSecretDecrypt does.
 *
 * @param privateKey node:crypto private key of `publicArea`.
 * @param publicArea the key's public area (nameAlg, scheme, curve, and x(Q_s) for KDFe).
 * @param label the same label the sender used.
 * @param encryptedSecret the TPM2B_ENCRYPTED_SECRET content.
 * @returns the seed: digestSize(nameAlg) bytes for ECC; for RSA whatever OAEP recovers, at most the OAEP hash's size.
 * @throws CryptoError `crypto.decrypt` when the secret does not decrypt (OAEP failure, oversize seed, point off the curve
 *   or malformed), `crypto.key` when the key cannot receive a secret or does not match `publicArea`; ArgumentError for a bad label.
 */
export function decryptSecret(privateKey: KeyObject, publicArea: TPMT_PUBLIC, label: string, encryptedSecret: Uint8Array): Uint8Array {
  checkDecryptKey(publicArea);
  const nameAlg = nameAlgOf(publicArea);
  if (!(encryptedSecret instanceof Uint8Array)) throw new ArgumentError('encryptedSecret: expected a Uint8Array');
  checkPrivateKey(privateKey, publicArea);
  if (publicArea.type === TPM_ALG.RSA) {
    const l = oaepLabel(label);
    const oaep = oaepHash(publicArea);
    let seed: Uint8Array;
    try {
      seed = new Uint8Array(
        privateDecrypt({ key: privateKey, padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING, oaepHash: nodeHashName(oaep), oaepLabel: l }, encryptedSecret),
      );
    } catch (cause) {
      throw new CryptoError('crypto.decrypt', 'encrypted secret does not decrypt with this key and label (RSA-OAEP)', { cause });
    }
    // CryptSecretDecrypt: TPM_RC_VALUE when the seed is longer than the OAEP digest.
    if (seed.length > digestSize(oaep)) throw new CryptoError('crypto.decrypt', `decrypted seed of ${seed.length} byte(s) is longer than the digest`);
    return seed;
  }
  oaepLabel(label); // same label checks for both key types
  const curve = eccCurve(publicArea.parameters.curveID);
  let point: TPMS_ECC_POINT;
  try {
    point = decode(TPMS_ECC_POINT, encryptedSecret);
  } catch (cause) {
    throw new CryptoError('crypto.decrypt', 'encrypted secret is not a marshaled TPMS_ECC_POINT', { cause });
  }
  const ephemeral = eccPointKey(curve, point, 'crypto.decrypt');
  let z: Uint8Array;
  try {
    z = new Uint8Array(diffieHellman({ privateKey, publicKey: ephemeral }));
  } catch (cause) {
    throw new CryptoError('crypto.decrypt', 'ECDH with the ephemeral point failed', { cause });
  }
  // partyUInfo is x(Q_e) exactly as sent, partyVInfo x(Q_s) as in the public area (CryptSecretDecrypt).
  return kdfe(nameAlg, z, label, point.x, publicArea.unique.x, digestSize(nameAlg) * 8);
}
