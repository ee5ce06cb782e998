/**
 * Session math (session-crypto.ts). Known answers are recomputed here,
 * independently, from the Part 1 formulas with node:crypto only (an HMAC-based
 * KDFa written out below, createCipheriv for CFB), so the module and the test
 * cannot share a mistake in the helpers; round trips pair each client function
 * with its TPM-side inverse; malformed input gives typed errors. Agreement
 * with a real TPM is tested against swtpm in test/client/sessions.test.ts.
 */
import { createCipheriv, createHash, createHmac, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { TPM_ALG, TPM_ECC } from '../../src/tpm/constants.js';
import { ArgumentError, ParseError, UnsupportedAlgorithmError } from '../../src/tpm/errors.js';
import { eccPointOf } from '../../src/tpm/secret.js';
import {
  commandHmac,
  decryptCommandParameter,
  decryptResponseParameter,
  decryptSalt,
  encryptCommandParameter,
  encryptResponseParameter,
  encryptSalt,
  extendAuditDigest,
  extraNonces,
  isBindEntity,
  responseHmac,
  sessionHmacKey,
  sessionKey,
  trimAuthValue,
  type ParameterCipherInput,
  type SessionRole,
} from '../../src/tpm/session-crypto.js';
import { TPMA_OBJECT, type TPMT_PUBLIC, type TPMT_SYM_DEF } from '../../src/tpm/types/index.js';

const SHA256 = TPM_ALG.SHA256;
const u8 = (...b: number[]): Uint8Array => Uint8Array.from(b);
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const bytes = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);
const cat = (...p: Uint8Array[]): Uint8Array => Uint8Array.from(Buffer.concat(p));
const u32 = (n: number): Uint8Array => u8(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);

/** KDFa of Part 1 §11.4.10.2, written out for this test: HMAC(key, i ‖ label ‖ 00 ‖ u ‖ v ‖ bits), bits a multiple of 8 here. */
function refKdfa(alg: string, key: Uint8Array, label: string, u: Uint8Array, v: Uint8Array, bits: number): Uint8Array {
  const out: Buffer[] = [];
  let have = 0;
  for (let i = 1; have < bits / 8; i++) {
    const k = createHmac(alg, key).update(u32(i)).update(label).update(u8(0)).update(u).update(v).update(u32(bits)).digest();
    out.push(k);
    have += k.length;
  }
  return Uint8Array.from(Buffer.concat(out).subarray(0, bits / 8));
}

function errorOf(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  return undefined;
}

describe('authValue and session keys', () => {
  it('trimAuthValue removes trailing zeros only, without touching its input', () => {
    const a = u8(1, 0, 2, 0, 0);
    expect(trimAuthValue(a)).toEqual(u8(1, 0, 2));
    expect(a).toEqual(u8(1, 0, 2, 0, 0));
    expect(trimAuthValue(u8(0, 0))).toEqual(u8());
    expect(trimAuthValue(u8())).toEqual(u8());
    expect(errorOf(() => trimAuthValue('ab' as unknown as Uint8Array))).toBeInstanceOf(ArgumentError);
  });

  it('an unbound, unsalted session has an empty session key', () => {
    expect(sessionKey({ hashAlg: SHA256, nonceTPM: bytes(32, 1), nonceCaller: bytes(32, 2) })).toEqual(u8());
    expect(sessionKey({ hashAlg: SHA256, salt: u8(), nonceTPM: bytes(32, 1), nonceCaller: bytes(32, 2) })).toEqual(u8());
  });

  it('sessionKey = KDFa(authHash, bindAuth ‖ salt, "ATH", nonceTPM, nonceCaller, digestBits) (Part 1 §19.6.8)', () => {
    const nonceTPM = bytes(32, 3);
    const nonceCaller = bytes(32, 4);
    const auth = u8(0x61, 0x62, 0x63);
    const salt = bytes(32, 5);
    // Bound with an empty authValue: KDFa with an empty HMAC key, still a full-size key.
    const boundEmpty = sessionKey({ hashAlg: SHA256, bindAuthValue: u8(), nonceTPM, nonceCaller });
    expect(hex(boundEmpty)).toBe(hex(refKdfa('sha256', u8(), 'ATH', nonceTPM, nonceCaller, 256)));
    const both = sessionKey({ hashAlg: SHA256, bindAuthValue: cat(auth, u8(0, 0)), salt, nonceTPM, nonceCaller });
    expect(hex(both)).toBe(hex(refKdfa('sha256', cat(auth, salt), 'ATH', nonceTPM, nonceCaller, 256)));
    const saltOnly = sessionKey({ hashAlg: TPM_ALG.SHA384, salt, nonceTPM, nonceCaller });
    expect(hex(saltOnly)).toBe(hex(refKdfa('sha384', salt, 'ATH', nonceTPM, nonceCaller, 384)));
    // Swapping the nonces changes the key: nonceTPM is contextU.
    expect(hex(sessionKey({ hashAlg: SHA256, salt, nonceTPM: nonceCaller, nonceCaller: nonceTPM }))).not.toBe(
      hex(sessionKey({ hashAlg: SHA256, salt, nonceTPM, nonceCaller })),
    );
  });

  it('sessionHmacKey = sessionKey ‖ trimmed authValue, or the session key alone', () => {
    expect(sessionHmacKey(u8(1, 2), u8(3, 0))).toEqual(u8(1, 2, 3));
    expect(sessionHmacKey(u8(1, 2))).toEqual(u8(1, 2));
    expect(sessionHmacKey(u8(), u8(9))).toEqual(u8(9));
  });

  it('isBindEntity compares Name and trimmed authValue', () => {
    const name = cat(u8(0, 0x0b), bytes(32, 6));
    expect(isBindEntity({ name, authValue: u8(1, 0) }, { name: name.slice(), authValue: u8(1) })).toBe(true);
    expect(isBindEntity({ name, authValue: u8(1) }, { name, authValue: u8(2) })).toBe(false);
    expect(isBindEntity({ name, authValue: u8(1) }, { name: cat(u8(0, 0x0b), bytes(32, 7)), authValue: u8(1) })).toBe(false);
  });
});

describe('HMACs and audit', () => {
  const cp = bytes(32, 10);
  const nc = bytes(32, 11);
  const nt = bytes(32, 12);
  const key = bytes(40, 13);

  it('command HMAC over cpHash ‖ nonceCaller ‖ nonceTPM ‖ [decrypt] ‖ [encrypt] ‖ attributes (Part 1 §19.6.10)', () => {
    const plain = commandHmac({ hashAlg: SHA256, key, cpHash: cp, nonceCaller: nc, nonceTPM: nt, attributes: 0x21 });
    expect(hex(plain)).toBe(createHmac('sha256', key).update(cat(cp, nc, nt, u8(0x21))).digest('hex'));
    const dn = bytes(20, 14);
    const en = bytes(16, 15);
    const extra = commandHmac({ hashAlg: SHA256, key, cpHash: cp, nonceCaller: nc, nonceTPM: nt, decryptNonce: dn, encryptNonce: en, attributes: 1 });
    expect(hex(extra)).toBe(createHmac('sha256', key).update(cat(cp, nc, nt, dn, en, u8(1))).digest('hex'));
    const encOnly = commandHmac({ hashAlg: TPM_ALG.SHA1, key: u8(), cpHash: cp.subarray(0, 20), nonceCaller: nc, nonceTPM: nt, encryptNonce: en, attributes: 0x40 });
    expect(hex(encOnly)).toBe(createHmac('sha1', u8()).update(cat(cp.subarray(0, 20), nc, nt, en, u8(0x40))).digest('hex'));
  });

  it('response HMAC over rpHash ‖ nonceTPM ‖ nonceCaller ‖ attributes', () => {
    const r = responseHmac({ hashAlg: SHA256, key, rpHash: cp, nonceTPM: nt, nonceCaller: nc, attributes: 0x83 });
    expect(hex(r)).toBe(createHmac('sha256', key).update(cat(cp, nt, nc, u8(0x83))).digest('hex'));
  });

  it('rejects an attribute word that is not a byte and non-bytes inputs', () => {
    expect(errorOf(() => commandHmac({ hashAlg: SHA256, key, cpHash: cp, nonceCaller: nc, nonceTPM: nt, attributes: 256 }))).toBeInstanceOf(ArgumentError);
    expect(errorOf(() => responseHmac({ hashAlg: SHA256, key, rpHash: cp, nonceTPM: nt, nonceCaller: nc, attributes: -1 }))).toBeInstanceOf(ArgumentError);
    expect(errorOf(() => commandHmac({ hashAlg: SHA256, key: 'k' as unknown as Uint8Array, cpHash: cp, nonceCaller: nc, nonceTPM: nt, attributes: 1 }))).toBeInstanceOf(ArgumentError);
    expect(errorOf(() => commandHmac({ hashAlg: 0x9999, key, cpHash: cp, nonceCaller: nc, nonceTPM: nt, attributes: 1 }))).toBeInstanceOf(ArgumentError);
  });

  it('extra nonces: only for a first session that is an HMAC/policy authorization, each separate session once', () => {
    const role = (o: Partial<SessionRole>): SessionRole => ({ authorizes: false, password: false, decrypt: false, encrypt: false, nonceTPM: u8(), ...o });
    const a = role({ authorizes: true, nonceTPM: u8(1) });
    const d = role({ decrypt: true, nonceTPM: u8(2) });
    const e = role({ encrypt: true, nonceTPM: u8(3) });
    expect(extraNonces([a, d, e], 0)).toEqual({ decryptNonce: u8(2), encryptNonce: u8(3) });
    expect(extraNonces([a, d, e], 1)).toEqual({});
    expect(extraNonces([a, role({ decrypt: true, encrypt: true, nonceTPM: u8(4) })], 0)).toEqual({ decryptNonce: u8(4) });
    // The first session decrypts itself: nothing extra; a separate encrypt session still counts.
    expect(extraNonces([{ ...a, decrypt: true }, e], 0)).toEqual({ encryptNonce: u8(3) });
    expect(extraNonces([role({ authorizes: true, password: true }), d], 0)).toEqual({});
    expect(extraNonces([role({ decrypt: false, encrypt: false, authorizes: false }), d], 0)).toEqual({});
    expect(extraNonces([a], 0)).toEqual({});
  });

  it('audit digest = H(old ‖ cpHash ‖ rpHash)', () => {
    const old = new Uint8Array(32);
    const rp = bytes(32, 20);
    const d1 = extendAuditDigest(SHA256, old, cp, rp);
    expect(hex(d1)).toBe(createHash('sha256').update(cat(old, cp, rp)).digest('hex'));
    expect(hex(extendAuditDigest(SHA256, d1, cp, rp))).toBe(createHash('sha256').update(cat(d1, cp, rp)).digest('hex'));
  });
});

describe('parameter encryption', () => {
  const AES128: TPMT_SYM_DEF = { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB };
  const AES256: TPMT_SYM_DEF = { algorithm: TPM_ALG.AES, keyBits: 256, mode: TPM_ALG.CFB };
  const XOR: TPMT_SYM_DEF = { algorithm: TPM_ALG.XOR, keyBits: SHA256 };
  const secret = bytes(37, 30);
  // A TPM2B of 37 bytes followed by a u16 that must stay in clear.
  const params = cat(u8(0, 37), secret, u8(0xbe, 0xef));
  const input = (symmetric: TPMT_SYM_DEF): ParameterCipherInput => ({
    hashAlg: SHA256,
    symmetric,
    key: cat(bytes(32, 31), u8(0x61)),
    nonceCaller: bytes(32, 32),
    nonceTPM: bytes(32, 33),
  });

  it('AES-CFB: key ‖ iv = KDFa(hash, key, "CFB", nonceNewer, nonceOlder, keyBits + 128); size and later parameters stay in clear', () => {
    for (const [sym, bits] of [
      [AES128, 128],
      [AES256, 256],
    ] as const) {
      const c = input(sym);
      const enc = encryptCommandParameter(c, params);
      const kiv = refKdfa('sha256', c.key, 'CFB', c.nonceCaller, c.nonceTPM, bits + 128);
      const k = kiv.subarray(0, bits / 8);
      const iv = kiv.subarray(bits / 8);
      const expected = createCipheriv(`aes-${bits}-cfb`, k, iv).update(secret);
      expect(hex(enc.subarray(2, 39))).toBe(hex(expected));
      expect(hex(enc.subarray(0, 2))).toBe('0025');
      expect(hex(enc.subarray(39))).toBe('beef');
      expect(hex(enc)).not.toBe(hex(params));
      expect(decryptCommandParameter(c, enc)).toEqual(params);
      // The response direction swaps the nonces (Part 1 §21.3).
      const renc = encryptResponseParameter(c, params);
      const rkiv = refKdfa('sha256', c.key, 'CFB', c.nonceTPM, c.nonceCaller, bits + 128);
      expect(hex(renc.subarray(2, 39))).toBe(hex(createCipheriv(`aes-${bits}-cfb`, rkiv.subarray(0, bits / 8), rkiv.subarray(bits / 8)).update(secret)));
      expect(decryptResponseParameter(c, renc)).toEqual(params);
    }
  });

  it('XOR: mask = KDFa(sessionHash, key, "XOR", nonceNewer, nonceOlder, 8·size), its own inverse', () => {
    const c = input(XOR);
    const enc = encryptCommandParameter(c, params);
    const mask = refKdfa('sha256', c.key, 'XOR', c.nonceCaller, c.nonceTPM, 37 * 8);
    expect(hex(enc.subarray(2, 39))).toBe(hex(secret.map((b, i) => b ^ mask[i]!)));
    expect(hex(enc.subarray(39))).toBe('beef');
    expect(decryptCommandParameter(c, enc)).toEqual(params);
    const renc = encryptResponseParameter(c, params);
    const rmask = refKdfa('sha256', c.key, 'XOR', c.nonceTPM, c.nonceCaller, 37 * 8);
    expect(hex(renc.subarray(2, 39))).toBe(hex(secret.map((b, i) => b ^ rmask[i]!)));
    expect(decryptResponseParameter(c, renc)).toEqual(params);
  });

  it('an empty first parameter and random parameters round-trip', () => {
    const empty = u8(0, 0, 7);
    expect(encryptCommandParameter(input(AES128), empty)).toEqual(empty);
    for (let i = 0; i < 20; i++) {
      const data = new Uint8Array(randomBytes(i * 13));
      const p = cat(u8(data.length >> 8, data.length & 0xff), data);
      for (const sym of [AES128, AES256, XOR]) {
        const c = { ...input(sym), nonceCaller: new Uint8Array(randomBytes(16)) };
        expect(decryptCommandParameter(c, encryptCommandParameter(c, p))).toEqual(p);
        expect(decryptResponseParameter(c, encryptResponseParameter(c, p))).toEqual(p);
      }
    }
  });

  it('malformed parameter areas are ParseErrors; unusable ciphers are argument or unsupported errors', () => {
    const c = input(AES128);
    const short = errorOf(() => decryptCommandParameter(c, u8(0)));
    expect(short).toBeInstanceOf(ParseError);
    expect((short as ParseError).code).toBe('parse.truncated');
    const big = errorOf(() => decryptResponseParameter(c, u8(0, 5, 1, 2)));
    expect(big).toBeInstanceOf(ParseError);
    expect((big as ParseError).code).toBe('parse.size');
    expect(errorOf(() => encryptCommandParameter(input({ algorithm: TPM_ALG.NULL }), params))).toBeInstanceOf(ArgumentError);
    expect(errorOf(() => encryptCommandParameter(input({ algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CBC }), params))).toBeInstanceOf(ArgumentError);
    expect(errorOf(() => encryptCommandParameter(input({ algorithm: TPM_ALG.TDES, keyBits: 128, mode: TPM_ALG.CFB } as TPMT_SYM_DEF), params))).toBeInstanceOf(UnsupportedAlgorithmError);
    expect(errorOf(() => encryptCommandParameter(c, [0, 0] as unknown as Uint8Array))).toBeInstanceOf(ArgumentError);
  });
});

describe('salts', () => {
  const DECRYPT = TPMA_OBJECT.of({ decrypt: true, restricted: true, userWithAuth: true, fixedTPM: true, fixedParent: true, sensitiveDataOrigin: true });
  const AES = { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB } as const;

  function rsaArea(key: KeyObject): TPMT_PUBLIC {
    const n = new Uint8Array(Buffer.from(String(key.export({ format: 'jwk' }).n), 'base64url'));
    return {
      type: TPM_ALG.RSA,
      nameAlg: SHA256,
      objectAttributes: DECRYPT,
      authPolicy: u8(),
      parameters: { symmetric: AES, scheme: { scheme: TPM_ALG.NULL }, keyBits: 2048, exponent: 0 },
      unique: n,
    };
  }
  function eccArea(key: KeyObject): TPMT_PUBLIC {
    return {
      type: TPM_ALG.ECC,
      nameAlg: SHA256,
      objectAttributes: DECRYPT,
      authPolicy: u8(),
      parameters: { symmetric: AES, scheme: { scheme: TPM_ALG.NULL }, curveID: TPM_ECC.NIST_P256, kdf: { scheme: TPM_ALG.NULL } },
      unique: eccPointOf(key).point,
    };
  }

  it('a salt encrypted to an RSA or ECC key decrypts with its private key to the same seed (label "SECRET")', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const ecc = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    for (const [priv, area] of [
      [rsa.privateKey, rsaArea(rsa.publicKey)],
      [ecc.privateKey, eccArea(ecc.publicKey)],
    ] as const) {
      const s = encryptSalt(area);
      expect(s.seed.length).toBe(32);
      expect(decryptSalt(priv, area, s.encryptedSecret)).toEqual(s.seed);
      // Fresh per call.
      expect(hex(encryptSalt(area).seed)).not.toBe(hex(s.seed));
    }
  });
});
