/**
 * TPM hash algorithm ids ↔ node:crypto: sizes, hash/HMAC over parts, typed errors.
 * Known answers: FIPS 180 "abc" digests, RFC 4231 HMAC-SHA-256 test case 2,
 * GB/T 32905 SM3("abc") where the runtime has SM3.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { TPM_ALG } from '../../src/tpm/constants.js';
import { ArgumentError, UnsupportedAlgorithmError } from '../../src/tpm/errors.js';
import { digestSize, hash, hmac, isHashAlg, isHashSupported, nodeHashName } from '../../src/tpm/crypto/hash.js';

const te = new TextEncoder();
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('hash algorithm table', () => {
  it('digest sizes follow the Algorithm Registry', () => {
    expect(digestSize(TPM_ALG.SHA1)).toBe(20);
    expect(digestSize(TPM_ALG.SHA256)).toBe(32);
    expect(digestSize(TPM_ALG.SHA384)).toBe(48);
    expect(digestSize(TPM_ALG.SHA512)).toBe(64);
    expect(digestSize(TPM_ALG.SM3_256)).toBe(32);
    expect(digestSize(TPM_ALG.SHA3_256)).toBe(32);
    expect(digestSize(TPM_ALG.SHA3_384)).toBe(48);
    expect(digestSize(TPM_ALG.SHA3_512)).toBe(64);
  });

  it('isHashAlg accepts only hash ids', () => {
    for (const a of [TPM_ALG.SHA1, TPM_ALG.SHA256, TPM_ALG.SHA384, TPM_ALG.SHA512, TPM_ALG.SM3_256, TPM_ALG.SHA3_256]) expect(isHashAlg(a)).toBe(true);
    for (const a of [TPM_ALG.NULL, TPM_ALG.ERROR, TPM_ALG.HMAC, TPM_ALG.AES, TPM_ALG.RSA, TPM_ALG.KEYEDHASH, 0xffff]) expect(isHashAlg(a)).toBe(false);
  });

  it('every supported algorithm produces a digest of its size', () => {
    for (const a of [TPM_ALG.SHA1, TPM_ALG.SHA256, TPM_ALG.SHA384, TPM_ALG.SHA512, TPM_ALG.SM3_256, TPM_ALG.SHA3_256, TPM_ALG.SHA3_384, TPM_ALG.SHA3_512]) {
      if (!isHashSupported(a)) continue;
      expect(hash(a).length).toBe(digestSize(a));
      expect(hmac(a, new Uint8Array()).length).toBe(digestSize(a));
    }
    expect(nodeHashName(TPM_ALG.SHA256)).toBe('sha256');
  });
});

describe('hash and hmac', () => {
  it('FIPS 180 "abc" digests', () => {
    expect(toHex(hash(TPM_ALG.SHA1, te.encode('abc')))).toBe('a9993e364706816aba3e25717850c26c9cd0d89d');
    expect(toHex(hash(TPM_ALG.SHA256, te.encode('abc')))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('parts are concatenated', () => {
    expect(hash(TPM_ALG.SHA256, te.encode('a'), new Uint8Array(), te.encode('bc'))).toEqual(hash(TPM_ALG.SHA256, te.encode('abc')));
  });

  it('returns a plain Uint8Array', () => {
    expect(Object.getPrototypeOf(hash(TPM_ALG.SHA256))).toBe(Uint8Array.prototype);
  });

  it('parts of any size, views with an offset, and results with a buffer of their own that later calls leave alone', () => {
    const data = new Uint8Array(40000).map((_, i) => (i * 7) & 0xff);
    // Totals around the joined buffer's sizes (1 KiB, its growth, and the 16 KiB above which parts are streamed).
    for (const total of [0, 1, 63, 64, 65, 1023, 1024, 1025, 3000, 16383, 16384, 16385, 40000]) {
      const parts = [data.subarray(0, total >> 2), data.subarray(total >> 2, total >> 1), data.subarray(total >> 1, total)];
      const expected = new Uint8Array(createHash('sha256').update(data.subarray(0, total)).digest());
      const d = hash(TPM_ALG.SHA256, ...parts);
      expect(d).toEqual(expected);
      expect(d.byteOffset === 0 && d.buffer.byteLength === d.length).toBe(true);
      hash(TPM_ALG.SHA256, data.subarray(1, 200), data.subarray(5, 900));
      expect(d).toEqual(expected);
      expect(hash(TPM_ALG.SHA256, data.subarray(0, total))).toEqual(expected);
    }
  });

  it('RFC 4231 test case 2 (HMAC-SHA-256, key "Jefe")', () => {
    const mac = hmac(TPM_ALG.SHA256, te.encode('Jefe'), te.encode('what do ya want '), te.encode('for nothing?'));
    expect(toHex(mac)).toBe('5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
  });

  it.runIf(isHashSupported(TPM_ALG.SM3_256))('SM3("abc") (GB/T 32905 example 1)', () => {
    expect(toHex(hash(TPM_ALG.SM3_256, te.encode('abc')))).toBe('66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0');
  });

  it.skipIf(isHashSupported(TPM_ALG.SM3_256))('SM3 without runtime support → crypto.unsupported', () => {
    expect(() => hash(TPM_ALG.SM3_256)).toThrow(UnsupportedAlgorithmError);
  });
});

describe('typed errors', () => {
  it('non-hash algorithm → crypto.argument', () => {
    for (const f of [() => digestSize(TPM_ALG.AES), () => hash(TPM_ALG.NULL), () => hmac(0x1234, new Uint8Array()), () => nodeHashName(TPM_ALG.RSA)]) {
      expect(f).toThrow(ArgumentError);
      try {
        f();
      } catch (e) {
        expect((e as ArgumentError).code).toBe('crypto.argument');
      }
    }
  });

  it('non-Uint8Array parts and keys → crypto.argument', () => {
    expect(() => hash(TPM_ALG.SHA256, 'abc' as unknown as Uint8Array)).toThrow(ArgumentError);
    expect(() => hmac(TPM_ALG.SHA256, 'key' as unknown as Uint8Array)).toThrow(ArgumentError);
  });
});
