/**
 * Key wrapping in software: the outer wrapper that protects a sensitive area
 * or a credential under a seed, the inner wrapper of a duplication blob, and
 * the blobs TPM2_Import takes and TPM2_Duplicate produces (Part 1 §23.3
 * "Protected Storage Hierarchy", §23.3.2.3 "Duplication"; Part 3 §13.1 Duplicate,
 * §13.3 Import). Layouts follow the reference's Object_spt.c (ProduceOuterWrap,
 * UnwrapOuter, ComputeProtectionKeyParms, ComputeOuterIntegrity,
 * ComputeInnerIntegrity, SensitiveToDuplicate, DuplicateToSensitive).
 *
 * duplicate (TPM2B_PRIVATE content), with an outer and an inner wrapper:
 *
 *   u16 ‖ outerHMAC ‖ CFB_outerKey( u16 ‖ innerIntegrity ‖ CFB_innerKey( u16 ‖ TPMT_SENSITIVE ) )
 *
 * - outerKey   = KDFa(parent.nameAlg, seed, "STORAGE", Name, ∅, parent.symmetric.keyBits), IV zero
 * - outerHMAC  = HMAC_parent.nameAlg(KDFa(parent.nameAlg, seed, "INTEGRITY", ∅, ∅, digestBits), encrypted ‖ Name)
 * - innerIntegrity = H_object.nameAlg(u16 ‖ TPMT_SENSITIVE ‖ Name), inner IV zero
 * - seed       = encryptSecret(parent, "DUPLICATE") (secret.ts)
 */
import { createCipheriv, createDecipheriv, createECDH, createPrivateKey, createSecretKey, type KeyObject, randomBytes, timingSafeEqual } from 'node:crypto';
import { bigIntFromBytes, bytesFromBigInt } from './bytes.js';
import { TPM_ALG } from './constants.js';
import { digestSize, hash, hmac, isHashAlg } from './crypto/hash.js';
import { kdfa } from './crypto/kdf.js';
import { ArgumentError, CryptoError, ParseError, UnsupportedAlgorithmError } from './errors.js';
import { LIMITS } from './limits.js';
import { objectName } from './names.js';
import { decryptSecret, eccCurve, eccPointOf, encryptSecret, type EncryptSecretOptions } from './secret.js';
import { TPMA_OBJECT, TPMT_SENSITIVE, type TPMT_PUBLIC, type TPMT_SYM_DEF_OBJECT } from './types/index.js';
import { decode, encode } from './wire/codec.js';

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
function u16(n: number): Uint8Array {
  return new Uint8Array([(n >>> 8) & 0xff, n & 0xff]);
}
function sized2B(v: Uint8Array): Uint8Array {
  return concat(u16(v.length), v);
}
function hexAlg(alg: number): string {
  return `0x${(alg >>> 0).toString(16).padStart(4, '0')}`;
}
function checkBytes(v: unknown, what: string): asserts v is Uint8Array {
  if (!(v instanceof Uint8Array)) throw new ArgumentError(`${what}: expected a Uint8Array`);
}

// ---------------------------------------------------------------------------
// Symmetric protection: always CFB (Part 1 §23.3.2.1: "the mode is CFB"), whatever mode the parent names.

/** The block cipher of a protection key, as node:crypto names it, for TPM_ALG_AES / TPM_ALG_CAMELLIA. */
function cfbCipher(sym: TPMT_SYM_DEF_OBJECT, what: string): { name: string; keyBytes: number } {
  if (sym.algorithm === TPM_ALG.AES) return { name: `aes-${sym.keyBits}-cfb`, keyBytes: sym.keyBits / 8 };
  if (sym.algorithm === TPM_ALG.CAMELLIA) return { name: `camellia-${sym.keyBits}-cfb`, keyBytes: sym.keyBits / 8 };
  if (sym.algorithm === TPM_ALG.NULL) throw new CryptoError('crypto.key', `${what}: no symmetric algorithm (TPM_ALG_NULL) to protect with`);
  throw new UnsupportedAlgorithmError(sym.algorithm, `${what}: symmetric algorithm ${hexAlg(sym.algorithm)} is not supported here`);
}

const BLOCK = 16; // AES and Camellia

function cfb(encrypt: boolean, cipher: string, key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
  const c = encrypt ? createCipheriv(cipher, key, iv) : createDecipheriv(cipher, key, iv);
  return new Uint8Array(Buffer.concat([c.update(data), c.final()]));
}

/** What the outer wrapper is computed from (ComputeProtectionKeyParms / ComputeOuterIntegrity). */
export interface OuterWrapParams {
  /** The hash of the KDFs and the HMAC: the protector's nameAlg (parent, or EK for a credential). */
  readonly hashAlg: number;
  /** The protector's symmetric definition; only algorithm and keyBits matter (the mode is always CFB). */
  readonly symmetric: TPMT_SYM_DEF_OBJECT;
  /** The seed: from encryptSecret for a duplicate or a credential, the parent's seedValue for an ordinary private. */
  readonly seed: Uint8Array;
  /** The Name of the protected object (for a credential: the Name of the key it is bound to). */
  readonly name: Uint8Array;
}

function checkOuter(p: OuterWrapParams): { cipher: string; keyBytes: number } {
  if (p === null || typeof p !== 'object') throw new ArgumentError('outer wrap parameters: expected an object');
  if (!isHashAlg(p.hashAlg)) throw new ArgumentError(`outer wrap hashAlg ${hexAlg(Number(p.hashAlg))} is not a hash algorithm`);
  checkBytes(p.seed, 'outer wrap seed');
  checkBytes(p.name, 'outer wrap name');
  const c = cfbCipher(p.symmetric, 'outer wrap');
  return { cipher: c.name, keyBytes: c.keyBytes };
}

/** HMAC_hashAlg(KDFa(hashAlg, seed, "INTEGRITY", ∅, ∅, digestBits), covered ‖ Name) (Part 1 §23.3.2.2 eq. 38–39). */
function outerIntegrity(p: OuterWrapParams, covered: Uint8Array): Uint8Array {
  const key = kdfa(p.hashAlg, p.seed, 'INTEGRITY', new Uint8Array(0), new Uint8Array(0), digestSize(p.hashAlg) * 8);
  return hmac(p.hashAlg, key, covered, p.name);
}

/** KDFa(hashAlg, seed, "STORAGE", Name, ∅, keyBits) (Part 1 §23.3.2.1 eq. 37). */
function storageKey(p: OuterWrapParams, keyBytes: number): Uint8Array {
  return kdfa(p.hashAlg, p.seed, 'STORAGE', p.name, new Uint8Array(0), keyBytes * 8);
}

/**
 * Applies an outer wrapper: CFB-encrypts `plaintext` under the storage key,
 * prefixes the integrity HMAC (as a TPM2B). With `iv`, the IV travels as a
 * TPM2B between the HMAC and the ciphertext and is covered by the HMAC (an
 * ordinary TPM2B_PRIVATE); without it the IV is zero (duplicates, credentials).
 *
 * @returns u16 ‖ HMAC ‖ [u16 ‖ iv] ‖ ciphertext.
 * @throws ArgumentError for malformed parameters; CryptoError (`crypto.key`) for a NULL symmetric algorithm;
 *   UnsupportedAlgorithmError for a cipher other than AES/Camellia.
 */
export function produceOuterWrap(params: OuterWrapParams, plaintext: Uint8Array, options: { iv?: Uint8Array } = {}): Uint8Array {
  const { cipher, keyBytes } = checkOuter(params);
  checkBytes(plaintext, 'outer wrap plaintext');
  const key = storageKey(params, keyBytes);
  let ivPart: Uint8Array = new Uint8Array(0);
  let iv: Uint8Array = new Uint8Array(BLOCK);
  if (options.iv !== undefined) {
    checkBytes(options.iv, 'outer wrap iv');
    if (options.iv.length !== BLOCK) throw new ArgumentError(`outer wrap iv: expected ${BLOCK} bytes (the cipher's block)`);
    iv = options.iv;
    ivPart = sized2B(iv);
  }
  const covered = concat(ivPart, cfb(true, cipher, key, iv, plaintext));
  return concat(sized2B(outerIntegrity(params, covered)), covered);
}

/**
 * Checks and removes an outer wrapper (UnwrapOuter): the HMAC is compared in
 * constant time before anything is decrypted.
 *
 * @param useIV whether an IV (TPM2B) sits between the HMAC and the ciphertext (ordinary privates), or the IV is zero.
 * @returns the decrypted inner bytes.
 * @throws ParseError when the blob is too short for its size fields; CryptoError (`crypto.integrity`) when the HMAC
 *   does not match (wrong seed, Name, or a modified blob; a TPM answers TPM_RC_INTEGRITY); `crypto.decrypt` for an
 *   IV of the wrong size (TPM_RC_VALUE).
 */
export function unwrapOuter(params: OuterWrapParams, blob: Uint8Array, options: { useIV?: boolean } = {}): Uint8Array {
  const { cipher, keyBytes } = checkOuter(params);
  checkBytes(blob, 'outer wrapped blob');
  if (blob.length < 2) throw new ParseError('parse.truncated', 'no integrity size', 'TPM2B_PRIVATE.integrityOuter', 0);
  const size = (blob[0]! << 8) | blob[1]!;
  if (blob.length < 2 + size) throw new ParseError('parse.truncated', `integrity of ${size} byte(s) runs past the end`, 'TPM2B_PRIVATE.integrityOuter', 0);
  const got = blob.subarray(2, 2 + size);
  const covered = blob.subarray(2 + size);
  const want = outerIntegrity(params, covered);
  if (got.length !== want.length || !timingSafeEqual(got, want)) throw new CryptoError('crypto.integrity', 'outer integrity HMAC does not match');
  let iv = new Uint8Array(BLOCK);
  let ct = covered;
  if (options.useIV === true) {
    if (covered.length < 2) throw new ParseError('parse.truncated', 'no IV size', 'TPM2B_PRIVATE.iv', 2 + size);
    const ivSize = (covered[0]! << 8) | covered[1]!;
    if (ivSize !== BLOCK || covered.length < 2 + ivSize) throw new CryptoError('crypto.decrypt', `IV of ${ivSize} byte(s), the cipher's block is ${BLOCK}`);
    iv = covered.slice(2, 2 + ivSize);
    ct = covered.subarray(2 + ivSize);
  }
  return cfb(false, cipher, storageKey(params, keyBytes), iv, ct);
}

// ---------------------------------------------------------------------------
// External keys as TPM objects

/** A key made outside a TPM, to be imported. */
export type ExternalKey =
  | {
      readonly type: 'rsa';
      /** A node:crypto RSA private key. */
      readonly privateKey: KeyObject;
      /** The key's scheme in its public area; NULL (any scheme at use) by default. */
      readonly scheme?: Extract<TPMT_PUBLIC, { type: typeof TPM_ALG.RSA }>['parameters']['scheme'];
    }
  | {
      readonly type: 'ecc';
      /** A node:crypto EC private key on P-256, P-384 or P-521 (the curves node:crypto exports as JWK). */
      readonly privateKey: KeyObject;
      readonly scheme?: Extract<TPMT_PUBLIC, { type: typeof TPM_ALG.ECC }>['parameters']['scheme'];
    }
  | {
      readonly type: 'hmac';
      /** The HMAC key: at most the block size of `hashAlg` (the TPM checks it at load). */
      readonly key: Uint8Array | KeyObject;
      /** The HMAC scheme's hash; SHA-256 by default. */
      readonly hashAlg?: number;
    }
  | {
      readonly type: 'symcipher';
      /** An AES key of 16, 24 or 32 bytes. */
      readonly key: Uint8Array | KeyObject;
      /** The object's default mode (EncryptDecrypt may name another); CFB by default. */
      readonly mode?: number;
    };

export interface ExternalObjectOptions {
  /** The object's nameAlg; SHA-256 by default. */
  readonly nameAlg?: number;
  /**
   * The object's attributes. By default: sign | decrypt | userWithAuth for RSA, ECC and AES keys,
   * sign | userWithAuth for HMAC keys. fixedTPM and fixedParent must be clear (Import refuses them).
   */
  readonly objectAttributes?: TPMA_OBJECT;
  /** The authValue the imported object will have; empty by default. */
  readonly authValue?: Uint8Array;
  /** The object's authPolicy; empty by default. */
  readonly authPolicy?: Uint8Array;
  /**
   * keyedHash / symcipher only: the obfuscation value hashed into `unique`
   * (unique = H_nameAlg(seedValue ‖ key), CryptComputeSymmetricUnique); random by default.
   */
  readonly seedValue?: Uint8Array;
}

/** An object to import: its public area and its sensitive area in the clear. */
export interface ExternalObject {
  readonly publicArea: TPMT_PUBLIC;
  readonly sensitive: TPMT_SENSITIVE;
}

function bytesFromJwk(v: unknown, what: string): Uint8Array {
  if (typeof v !== 'string') throw new CryptoError('crypto.key', `private key has no ${what}`);
  return new Uint8Array(Buffer.from(v, 'base64url'));
}

function secretBytes(key: Uint8Array | KeyObject, what: string): Uint8Array {
  if (key instanceof Uint8Array) return key.slice();
  if (key !== null && typeof key === 'object' && (key as KeyObject).type === 'secret') return new Uint8Array((key as KeyObject).export());
  throw new ArgumentError(`${what}: expected a Uint8Array or a secret KeyObject`);
}

/**
 * Builds the public and sensitive areas of an external key, as tpm2_import
 * does before wrapping: RSA sensitive = the prime p, ECC = the scalar d
 * (padded to the curve size), keyedHash / symcipher = the key, with
 * unique = H_nameAlg(seedValue ‖ key).
 *
 * @throws ArgumentError for unusable options; CryptoError (`crypto.key`) for a key of the wrong kind or size;
 *   UnsupportedAlgorithmError for a curve node:crypto cannot export.
 */
export function externalObject(key: ExternalKey, options: ExternalObjectOptions = {}): ExternalObject {
  if (key === null || typeof key !== 'object') throw new ArgumentError('key: expected an ExternalKey');
  const nameAlg = options.nameAlg ?? TPM_ALG.SHA256;
  if (!isHashAlg(nameAlg)) throw new ArgumentError(`nameAlg ${hexAlg(Number(nameAlg))} is not a hash algorithm`);
  const authValue = options.authValue ?? new Uint8Array(0);
  checkBytes(authValue, 'authValue');
  // Part 1 §19.6.5 / AdjustAuthSize: an authValue longer than the nameAlg digest (trailing zeros aside) is refused.
  if (authValue.length > digestSize(nameAlg)) throw new ArgumentError(`authValue of ${authValue.length} byte(s) is longer than the nameAlg digest`);
  const authPolicy = options.authPolicy ?? new Uint8Array(0);
  checkBytes(authPolicy, 'authPolicy');
  if (authPolicy.length !== 0 && authPolicy.length !== digestSize(nameAlg)) throw new ArgumentError('authPolicy: expected empty or a nameAlg digest');
  const attrs =
    options.objectAttributes ??
    TPMA_OBJECT.of(key.type === 'hmac' ? { sign: true, userWithAuth: true } : { sign: true, decrypt: true, userWithAuth: true });
  if (attrs.fixedTPM || attrs.fixedParent) throw new ArgumentError('an imported object must have fixedTPM and fixedParent clear (Part 3 §13.3)');
  const noSym = { algorithm: TPM_ALG.NULL } as const;
  const common = { nameAlg, objectAttributes: attrs, authPolicy } as const;

  if (key.type === 'rsa' || key.type === 'ecc') {
    const pk = key.privateKey;
    if (pk === null || typeof pk !== 'object' || pk.type !== 'private') throw new ArgumentError('privateKey: expected a private KeyObject');
    if (key.type === 'rsa') {
      if (pk.asymmetricKeyType !== 'rsa') throw new CryptoError('crypto.key', `expected an RSA key, got ${String(pk.asymmetricKeyType)}`);
      const jwk = pk.export({ format: 'jwk' });
      const n = bytesFromJwk(jwk.n, 'modulus');
      const e = bigIntFromBytes(bytesFromJwk(jwk.e, 'exponent'));
      if (e > 0xffffffffn) throw new CryptoError('crypto.key', 'RSA exponent does not fit the TPM\'s 32-bit field');
      const keyBits = n.length * 8;
      if (keyBits !== 1024 && keyBits !== 2048 && keyBits !== 3072 && keyBits !== 4096) throw new CryptoError('crypto.key', `RSA-${keyBits} is not a TPM key size`);
      return {
        publicArea: {
          type: TPM_ALG.RSA,
          ...common,
          parameters: { symmetric: noSym, scheme: key.scheme ?? { scheme: TPM_ALG.NULL }, keyBits, exponent: e === 65537n ? 0 : Number(e) },
          unique: n,
        },
        sensitive: { sensitiveType: TPM_ALG.RSA, authValue, seedValue: new Uint8Array(0), sensitive: bytesFromJwk(jwk.p, 'prime p') },
      };
    }
    const { curve, point } = eccPointOf(pk);
    let jwk: ReturnType<KeyObject['export']> & { d?: string };
    try {
      jwk = pk.export({ format: 'jwk' });
    } catch (cause) {
      throw new UnsupportedAlgorithmError(TPM_ALG.ECC, `cannot read the scalar of a ${curve.nodeName} key here: ${String(cause)}`);
    }
    const d = bytesFromJwk(jwk.d, 'scalar d');
    const padded = new Uint8Array(curve.size);
    padded.set(d, curve.size - d.length);
    return {
      publicArea: {
        type: TPM_ALG.ECC,
        ...common,
        parameters: { symmetric: noSym, scheme: key.scheme ?? { scheme: TPM_ALG.NULL }, curveID: curve.curveID, kdf: { scheme: TPM_ALG.NULL } },
        unique: point,
      } as TPMT_PUBLIC,
      sensitive: { sensitiveType: TPM_ALG.ECC, authValue, seedValue: new Uint8Array(0), sensitive: padded },
    };
  }

  const bits = secretBytes(key.key, 'key');
  const seedValue = options.seedValue ?? new Uint8Array(randomBytes(digestSize(nameAlg)));
  checkBytes(seedValue, 'seedValue');
  // BINDING check at load (CryptUtil.c): seedValue is exactly a nameAlg digest long.
  if (seedValue.length !== digestSize(nameAlg)) throw new ArgumentError(`seedValue: expected ${digestSize(nameAlg)} bytes`);
  // A restricted decrypt object would be a parent: unique = HMAC(seedValue, key) then; external parents are not offered here.
  if (attrs.restricted && attrs.decrypt) throw new ArgumentError('importing a symmetric parent (restricted decrypt) is not supported');
  const unique = hash(nameAlg, seedValue, bits);
  if (key.type === 'hmac') {
    const hashAlg = key.hashAlg ?? TPM_ALG.SHA256;
    if (!isHashAlg(hashAlg)) throw new ArgumentError(`hashAlg ${hexAlg(Number(hashAlg))} is not a hash algorithm`);
    // ObjectLoad (CryptUtil.c): an HMAC key is at most the block size of the scheme's hash (TPM_RC_KEY_SIZE).
    const blocks: Record<number, number> = { [TPM_ALG.SHA384]: 128, [TPM_ALG.SHA512]: 128, [TPM_ALG.SHA3_256]: 136, [TPM_ALG.SHA3_384]: 104, [TPM_ALG.SHA3_512]: 72 };
    const block = Math.min(blocks[hashAlg] ?? 64, 128); // 128: TPM2B_SENSITIVE_DATA's room for a key
    if (bits.length === 0 || bits.length > block) throw new CryptoError('crypto.key', `HMAC key of ${bits.length} byte(s); 1..${block} for this hash`);
    return {
      publicArea: { type: TPM_ALG.KEYEDHASH, ...common, parameters: { scheme: { scheme: TPM_ALG.HMAC, details: { hashAlg } } }, unique } as TPMT_PUBLIC,
      sensitive: { sensitiveType: TPM_ALG.KEYEDHASH, authValue, seedValue, sensitive: bits },
    };
  }
  if (key.type === 'symcipher') {
    if (bits.length !== 16 && bits.length !== 24 && bits.length !== 32) throw new CryptoError('crypto.key', `AES key of ${bits.length} byte(s)`);
    const mode = key.mode ?? TPM_ALG.CFB;
    return {
      publicArea: {
        type: TPM_ALG.SYMCIPHER,
        ...common,
        parameters: { sym: { algorithm: TPM_ALG.AES, keyBits: (bits.length * 8) as 128 | 192 | 256, mode } },
        unique,
      } as TPMT_PUBLIC,
      sensitive: { sensitiveType: TPM_ALG.SYMCIPHER, authValue, seedValue, sensitive: bits },
    };
  }
  throw new ArgumentError(`key.type: expected rsa, ecc, hmac or symcipher`);
}

// ---------------------------------------------------------------------------
// Duplication blobs

/** What TPM2_Import takes (field names are Import's parameter names). */
export interface ImportBlob {
  /** The inner wrapper's key (TPM2B_DATA content); empty without an inner wrapper. */
  readonly encryptionKey: Uint8Array;
  readonly objectPublic: TPMT_PUBLIC;
  /** TPM2B_PRIVATE content. */
  readonly duplicate: Uint8Array;
  /** TPM2B_ENCRYPTED_SECRET content: the outer seed encrypted to the new parent with "DUPLICATE". */
  readonly inSymSeed: Uint8Array;
  /** The inner wrapper's algorithm (AES-128-CFB), or NULL without one. */
  readonly symmetricAlg: TPMT_SYM_DEF_OBJECT;
}

export interface WrapOptions extends EncryptSecretOptions {
  /**
   * Add an inner wrapper (required for objects with encryptedDuplication).
   * `true` makes a random AES-128 key; or give the key (16, 24 or 32 bytes).
   */
  readonly innerWrap?: boolean | { readonly encryptionKey: Uint8Array };
}

function checkParent(parent: TPMT_PUBLIC, what: string): Extract<TPMT_PUBLIC, { type: typeof TPM_ALG.RSA | typeof TPM_ALG.ECC }> {
  if (parent === null || typeof parent !== 'object') throw new ArgumentError(`${what}: expected a TPMT_PUBLIC`);
  if (parent.type !== TPM_ALG.RSA && parent.type !== TPM_ALG.ECC) throw new CryptoError('crypto.key', `${what}: an outer wrapper needs an RSA or ECC parent`);
  // Import: ObjectIsParent (restricted decrypt); the outer wrapper uses the parent's symmetric key size.
  if (!parent.objectAttributes.restricted || !parent.objectAttributes.decrypt) throw new CryptoError('crypto.key', `${what}: not a storage parent (restricted | decrypt)`);
  if (parent.parameters.symmetric.algorithm === TPM_ALG.NULL) throw new CryptoError('crypto.key', `${what}: a storage parent has a symmetric algorithm`);
  return parent;
}

function innerSym(key: Uint8Array): TPMT_SYM_DEF_OBJECT {
  if (key.length !== 16 && key.length !== 24 && key.length !== 32) throw new ArgumentError(`inner encryptionKey of ${key.length} byte(s): expected 16, 24 or 32 (AES)`);
  return { algorithm: TPM_ALG.AES, keyBits: (key.length * 8) as 128 | 192 | 256, mode: TPM_ALG.CFB };
}

/** u16 ‖ TPMT_SENSITIVE (the reference's MarshalSensitive, without padding the authValue). */
function marshalSensitive(s: TPMT_SENSITIVE): Uint8Array {
  return sized2B(encode(TPMT_SENSITIVE, s));
}

/**
 * Wraps an object's sensitive area for `newParent` (SensitiveToDuplicate):
 * optional inner wrapper, then the outer wrapper under a fresh seed encrypted
 * to the parent with label "DUPLICATE". With `newParent` null (a duplicate
 * to TPM_RH_NULL), no outer wrapper: `duplicate` is the (inner-wrapped or
 * plain) u16 ‖ TPMT_SENSITIVE and `inSymSeed` is empty.
 *
 * @throws CryptoError (`crypto.key`) for a parent that cannot receive the blob; ArgumentError for a sensitive area
 *   whose type differs from the public area, or bad options; as encryptSecret for the seed.
 */
export function wrapDuplicate(newParent: TPMT_PUBLIC | null, objectPublic: TPMT_PUBLIC, sensitive: TPMT_SENSITIVE, options: WrapOptions = {}): ImportBlob {
  // null: TPM2_Duplicate to TPM_RH_NULL (Part 3 §13.1), no outer wrapper and no seed.
  const parent = newParent === null ? null : checkParent(newParent, 'newParent');
  if (objectPublic === null || typeof objectPublic !== 'object' || sensitive === null || typeof sensitive !== 'object') {
    throw new ArgumentError('objectPublic and sensitive: expected TPMT_PUBLIC and TPMT_SENSITIVE');
  }
  if (sensitive.sensitiveType !== objectPublic.type) throw new ArgumentError('sensitive.sensitiveType differs from objectPublic.type');
  const name = objectName(objectPublic);
  if (name.length === 0) throw new ArgumentError('objectPublic.nameAlg is NULL: an object without a Name cannot be duplicated');

  let data = marshalSensitive(sensitive);
  let encryptionKey = new Uint8Array(0);
  let symmetricAlg: TPMT_SYM_DEF_OBJECT = { algorithm: TPM_ALG.NULL };
  const inner = options.innerWrap;
  if (inner !== undefined && inner !== false) {
    encryptionKey = inner === true ? new Uint8Array(randomBytes(16)) : inner.encryptionKey.slice();
    checkBytes(encryptionKey, 'innerWrap.encryptionKey');
    symmetricAlg = innerSym(encryptionKey);
    // ProduceInnerIntegrity: H_nameAlg(u16 ‖ TPMT_SENSITIVE ‖ Name), then CFB with a zero IV over integrity and data.
    const integrity = hash(objectPublic.nameAlg, data, name);
    data = cfb(true, cfbCipher(symmetricAlg, 'inner wrap').name, encryptionKey, new Uint8Array(BLOCK), concat(sized2B(integrity), data));
  } else if (objectPublic.objectAttributes.encryptedDuplication) {
    throw new ArgumentError('an object with encryptedDuplication needs an inner wrapper (Import: TPM_RC_ATTRIBUTES)');
  }

  if (parent === null) return { encryptionKey, objectPublic, duplicate: data, inSymSeed: new Uint8Array(0), symmetricAlg };
  const { seed, encryptedSecret } = encryptSecret(parent, 'DUPLICATE', options);
  const duplicate = produceOuterWrap({ hashAlg: parent.nameAlg, symmetric: parent.parameters.symmetric, seed, name }, data);
  return { encryptionKey, objectPublic, duplicate, inSymSeed: encryptedSecret, symmetricAlg };
}

/**
 * An external key wrapped for TPM2_Import under `newParent`, as tpm2_import
 * makes it: externalObject + wrapDuplicate.
 * @example const blob = wrapExternalKey(srkPublic, { type: 'ecc', privateKey }, { innerWrap: true });
 *   await runCommand(t, Import, { parentHandle: srk }, blob);
 */
export function wrapExternalKey(newParent: TPMT_PUBLIC, key: ExternalKey, options: ExternalObjectOptions & WrapOptions = {}): ImportBlob {
  const { publicArea, sensitive } = externalObject(key, options);
  return wrapDuplicate(newParent, publicArea, sensitive, options);
}

/** A duplication blob as TPM2_Duplicate returns it (or as wrapDuplicate makes it). */
export interface DuplicateBlob {
  readonly objectPublic: TPMT_PUBLIC;
  /** TPM2B_PRIVATE content. */
  readonly duplicate: Uint8Array;
  /** Duplicate's outSymSeed / Import's inSymSeed; empty when the blob has no outer wrapper. */
  readonly inSymSeed: Uint8Array;
  /** The inner wrapper's algorithm; NULL or absent without one. */
  readonly symmetricAlg?: TPMT_SYM_DEF_OBJECT;
  /** The inner wrapper's key (Duplicate's encryptionKeyOut, or the one given as encryptionKeyIn). */
  readonly encryptionKey?: Uint8Array;
}

/**
 * The inverse of wrapDuplicate (DuplicateToSensitive): checks the outer HMAC,
 * decrypts, checks the inner integrity, and decodes the TPMT_SENSITIVE. Used
 * by a software TPM's Import and to open keys that a TPM duplicated to an
 * external parent with TPM2_Duplicate.
 *
 * @param parentPrivate the new parent's private key; may be null when `inSymSeed` is empty (no outer wrapper).
 * @param parentPublic the new parent's public area (nameAlg, symmetric, and the KEM's parameters).
 * @throws CryptoError `crypto.integrity` when the outer HMAC or the inner integrity digest does not match,
 *   `crypto.decrypt` when the seed does not decrypt, `crypto.key` for an unusable parent or private key;
 *   ParseError when the inner integrity's size or the decrypted sensitive area does not decode (a TPM answers
 *   TPM_RC_SIZE / INSUFFICIENT).
 */
export function unwrapDuplicate(parentPrivate: KeyObject | null, parentPublic: TPMT_PUBLIC, blob: DuplicateBlob): TPMT_SENSITIVE {
  if (blob === null || typeof blob !== 'object') throw new ArgumentError('blob: expected a DuplicateBlob');
  checkBytes(blob.duplicate, 'duplicate');
  checkBytes(blob.inSymSeed, 'inSymSeed');
  const name = objectName(blob.objectPublic);
  if (name.length === 0) throw new ArgumentError('objectPublic.nameAlg is NULL');
  let data: Uint8Array = blob.duplicate;
  if (blob.inSymSeed.length !== 0) {
    const parent = checkParent(parentPublic, 'parentPublic');
    if (parentPrivate === null) throw new ArgumentError('parentPrivate: needed to open an outer wrapper');
    const seed = decryptSecret(parentPrivate, parent, 'DUPLICATE', blob.inSymSeed);
    data = unwrapOuter({ hashAlg: parent.nameAlg, symmetric: parent.parameters.symmetric, seed, name }, data);
  } else if (blob.objectPublic.objectAttributes.encryptedDuplication) {
    throw new CryptoError('crypto.integrity', 'an object with encryptedDuplication must have an outer wrapper');
  }
  const sym = blob.symmetricAlg ?? { algorithm: TPM_ALG.NULL };
  if (sym.algorithm !== TPM_ALG.NULL) {
    const key = blob.encryptionKey ?? new Uint8Array(0);
    checkBytes(key, 'encryptionKey');
    const { name: cipher, keyBytes } = cfbCipher(sym, 'inner wrap');
    if (key.length !== keyBytes) throw new ArgumentError(`encryptionKey of ${key.length} byte(s), the inner algorithm needs ${keyBytes}`);
    const plain = cfb(false, cipher, key, new Uint8Array(BLOCK), data);
    const nameAlg = blob.objectPublic.nameAlg;
    const dsize = digestSize(nameAlg);
    // CheckInnerIntegrity: the TPM2B_DIGEST unmarshals first (as the reference and libtpms do: a size over
    // sizeof(TPMU_HA) is TPM_RC_SIZE, too few bytes TPM_RC_INSUFFICIENT), then it is compared with H(rest ‖ Name).
    if (plain.length < 2) throw new ParseError('parse.truncated', 'no inner integrity size', 'innerIntegrity', 0);
    const isize = (plain[0]! << 8) | plain[1]!;
    if (isize > LIMITS.MAX_DIGEST) throw new ParseError('parse.size', `inner integrity size ${isize}, allowed 0..${LIMITS.MAX_DIGEST}`, 'innerIntegrity', 0);
    if (plain.length < 2 + isize) throw new ParseError('parse.truncated', `inner integrity of ${isize} byte(s) but ${plain.length - 2} follow`, 'innerIntegrity', 0);
    if (isize !== dsize) throw new CryptoError('crypto.integrity', 'inner integrity of the wrong size');
    const want = hash(nameAlg, plain.subarray(2 + dsize), name);
    if (!timingSafeEqual(plain.subarray(2, 2 + dsize), want)) throw new CryptoError('crypto.integrity', 'inner integrity digest does not match');
    data = plain.subarray(2 + dsize);
  } else if (blob.objectPublic.objectAttributes.encryptedDuplication) {
    throw new CryptoError('crypto.integrity', 'an object with encryptedDuplication must have an inner wrapper');
  }
  if (data.length < 2) throw new ParseError('parse.truncated', 'no sensitive size', 'TPM2B_SENSITIVE', 0);
  const size = (data[0]! << 8) | data[1]!;
  if (size + 2 !== data.length) throw new ParseError('parse.size', `size ${size} but ${data.length - 2} byte(s) follow`, 'TPM2B_SENSITIVE', 0);
  const sensitive = decode(TPMT_SENSITIVE, data.subarray(2));
  if (sensitive.sensitiveType !== blob.objectPublic.type) throw new CryptoError('crypto.key', 'the sensitive area is of another type than objectPublic');
  return sensitive;
}

// ---------------------------------------------------------------------------
// Sensitive areas back to node:crypto keys

/** A JWK integer (RFC 7518 §6.3): big-endian in as few bytes as it needs. */
function bigTo64(n: bigint): string {
  return Buffer.from(bytesFromBigInt(n, Math.ceil(n.toString(16).length / 2))).toString('base64url');
}
function modInverse(a: bigint, m: bigint): bigint {
  let [oldR, r] = [((a % m) + m) % m, m];
  let [oldS, s] = [1n, 0n];
  while (r !== 0n) {
    const q = oldR / r;
    [oldR, r] = [r, oldR - q * r];
    [oldS, s] = [s, oldS - q * s];
  }
  if (oldR !== 1n) throw new CryptoError('crypto.key', 'RSA exponent has no inverse for these primes');
  return ((oldS % m) + m) % m;
}

/**
 * The node:crypto key of an unwrapped object: an RSA (from n, e and the
 * prime p) or EC private key, or a secret key for keyedHash / symcipher.
 * The private key is checked against the public area.
 * @throws CryptoError (`crypto.key`) when the sensitive area does not belong to the public area.
 */
export function keyFromSensitive(publicArea: TPMT_PUBLIC, sensitive: TPMT_SENSITIVE): KeyObject {
  if (sensitive.sensitiveType !== publicArea.type) throw new CryptoError('crypto.key', 'sensitive and public areas are of different types');
  if (publicArea.type === TPM_ALG.RSA && sensitive.sensitiveType === TPM_ALG.RSA) {
    const n = bigIntFromBytes(publicArea.unique);
    const e = BigInt(publicArea.parameters.exponent === 0 ? 65537 : publicArea.parameters.exponent);
    // The TPM's own sensitive holds p only when exported (MarshalSensitive truncates the CRT values to the prime).
    const p = bigIntFromBytes(sensitive.sensitive.subarray(0, publicArea.parameters.keyBits / 16));
    if (p < 2n || n % p !== 0n) throw new CryptoError('crypto.key', 'the prime does not divide the modulus');
    const q = n / p;
    // d = e⁻¹ mod λ(n), λ = lcm(p−1, q−1), the exponent OpenSSL itself derives (so keys compare equal).
    const gcd = (a: bigint, b: bigint): bigint => (b === 0n ? a : gcd(b, a % b));
    const lambda = ((p - 1n) * (q - 1n)) / gcd(p - 1n, q - 1n);
    const d = modInverse(e, lambda);
    try {
      return createPrivateKey({
        key: {
          kty: 'RSA',
          n: bigTo64(n),
          e: bigTo64(e),
          d: bigTo64(d),
          p: bigTo64(p),
          q: bigTo64(q),
          dp: bigTo64(d % (p - 1n)),
          dq: bigTo64(d % (q - 1n)),
          qi: bigTo64(modInverse(q, p)),
        },
        format: 'jwk',
      });
    } catch (cause) {
      throw new CryptoError('crypto.key', 'RSA key rejected by node:crypto', { cause });
    }
  }
  if (publicArea.type === TPM_ALG.ECC && sensitive.sensitiveType === TPM_ALG.ECC) {
    const curve = eccCurve(publicArea.parameters.curveID);
    const jwkCrv = { 32: 'P-256', 48: 'P-384', 66: 'P-521' }[curve.size as 32 | 48 | 66];
    if (jwkCrv === undefined) throw new UnsupportedAlgorithmError(TPM_ALG.ECC, `${curve.nodeName} keys cannot be imported into node:crypto here`);
    const pad = (v: Uint8Array): string => {
      if (v.length > curve.size) throw new CryptoError('crypto.key', 'ECC value longer than the curve');
      const out = new Uint8Array(curve.size);
      out.set(v, curve.size - v.length);
      return Buffer.from(out).toString('base64url');
    };
    let key: KeyObject;
    try {
      key = createPrivateKey({
        key: { kty: 'EC', crv: jwkCrv, x: pad(publicArea.unique.x), y: pad(publicArea.unique.y), d: pad(sensitive.sensitive) },
        format: 'jwk',
      });
    } catch (cause) {
      throw new CryptoError('crypto.key', 'ECC private key rejected by node:crypto', { cause });
    }
    // A JWK import keeps the given (x, y) without checking d·G: derive the point from d (ObjectLoad's TPM_RC_BINDING).
    const ecdh = createECDH(curve.nodeName);
    ecdh.setPrivateKey(Buffer.from(pad(sensitive.sensitive), 'base64url'));
    const derived = ecdh.getPublicKey(null, 'uncompressed');
    const toB64 = (b: Uint8Array): string => Buffer.from(b).toString('base64url');
    if (toB64(derived.subarray(1, 1 + curve.size)) !== pad(publicArea.unique.x) || toB64(derived.subarray(1 + curve.size)) !== pad(publicArea.unique.y)) {
      throw new CryptoError('crypto.key', 'ECC private scalar does not match the public point');
    }
    return key;
  }
  if (
    (publicArea.type === TPM_ALG.KEYEDHASH && sensitive.sensitiveType === TPM_ALG.KEYEDHASH) ||
    (publicArea.type === TPM_ALG.SYMCIPHER && sensitive.sensitiveType === TPM_ALG.SYMCIPHER)
  ) {
    // The binding the TPM checks at load: unique = H_nameAlg(seedValue ‖ key) for a non-parent.
    if (publicArea.nameAlg !== TPM_ALG.NULL) {
      const want = hash(publicArea.nameAlg, sensitive.seedValue, sensitive.sensitive);
      if (!Buffer.from(want).equals(Buffer.from(publicArea.unique))) throw new CryptoError('crypto.key', 'unique is not H(seedValue ‖ key): the key does not belong to this public area');
    }
    return createSecretKey(sensitive.sensitive);
  }
  throw new CryptoError('crypto.key', 'unsupported object type');
}
