/**
 * KDFa (SP 800-108 counter mode, HMAC) and KDFe (SP 800-56A concatenation KDF)
 * against go-tpm's 100 + 100 vectors (validated against the TCG reference
 * implementation; provenance in test/vectors/README.md), plus argument checks.
 */
import { createHash, createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TPM_ALG } from '../../src/tpm/constants.js';
import { ArgumentError, TrustrootError, UnsupportedAlgorithmError } from '../../src/tpm/errors.js';
import { isHashSupported } from '../../src/tpm/crypto/hash.js';
import { KDF_MAX_BITS, kdfa, kdfe } from '../../src/tpm/crypto/kdf.js';

interface KdfaVector {
  Name: string;
  HashAlg: number;
  Key: string;
  Label: string;
  ContextU: string;
  ContextV: string;
  Bits: number;
  Result: string;
}
interface KdfeVector extends Omit<KdfaVector, 'Key'> {
  Z: string;
}

const VECTORS = join(import.meta.dirname, '..', 'vectors');
const load = <T>(file: string): T[] => JSON.parse(readFileSync(join(VECTORS, file), 'utf8')) as T[];
const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const EMPTY = new Uint8Array();

const kdfaVectors = load<KdfaVector>('kdfa.json');
const kdfeVectors = load<KdfeVector>('kdfe.json');

describe('KDFa vectors (go-tpm tpm2/test/testvectors/kdfa.json)', () => {
  it('has all 100 cases', () => expect(kdfaVectors).toHaveLength(100));
  it.each(kdfaVectors.map((v) => [v.Name, v] as const))('%s', (_name, v) => {
    const out = kdfa(v.HashAlg, hex(v.Key), v.Label, hex(v.ContextU), hex(v.ContextV), v.Bits);
    expect(out).toBeInstanceOf(Uint8Array);
    expect(out.length).toBe(Math.ceil(v.Bits / 8));
    expect(toHex(out)).toBe(v.Result);
  });
});

describe('KDFe vectors (go-tpm tpm2/test/testvectors/kdfe.json)', () => {
  it('has all 100 cases', () => expect(kdfeVectors).toHaveLength(100));
  it.each(kdfeVectors.map((v) => [v.Name, v] as const))('%s', (_name, v) => {
    const out = kdfe(v.HashAlg, hex(v.Z), v.Label, hex(v.ContextU), hex(v.ContextV), v.Bits);
    expect(out.length).toBe(Math.ceil(v.Bits / 8));
    expect(toHex(out)).toBe(v.Result);
  });
});

describe('KDF byte layout', () => {
  const key = hex('0102030405');
  const u = hex('aa'.repeat(20));
  const v = hex('bb'.repeat(20));

  it('KDFa block 1 = HMAC(key, 00000001 ‖ label ‖ 00 ‖ U ‖ V ‖ bits32)', () => {
    const expected = createHmac('sha256', key).update(Buffer.concat([hex('00000001'), Buffer.from('ATH'), hex('00'), u, v, hex('00000100')])).digest('hex');
    expect(toHex(kdfa(TPM_ALG.SHA256, key, 'ATH', u, v, 256))).toBe(expected);
  });

  it('KDFe block 1 = H(00000001 ‖ Z ‖ label ‖ 00 ‖ U ‖ V), no length field', () => {
    const expected = createHash('sha256').update(Buffer.concat([hex('00000001'), key, Buffer.from('SECRET'), hex('00'), u, v])).digest('hex');
    expect(toHex(kdfe(TPM_ALG.SHA256, key, 'SECRET', u, v, 256))).toBe(expected);
  });

  it('spans several blocks with a counter, truncates and masks the first byte', () => {
    const full = kdfa(TPM_ALG.SHA1, key, 'XOR', u, v, 8 * 45); // 3 SHA-1 blocks
    const block2 = createHmac('sha1', key).update(Buffer.concat([hex('00000002'), Buffer.from('XOR'), hex('00'), u, v, hex('00000168')])).digest();
    expect(toHex(full.subarray(20, 40))).toBe(block2.toString('hex'));
    const odd = kdfe(TPM_ALG.SHA256, key, 'CFB', u, v, 13); // 2 bytes, top 3 bits cleared
    expect(odd.length).toBe(2);
    expect(odd[0]! & 0xe0).toBe(0);
  });

  it('0 bits gives an empty result (reference behaviour; XOR of an empty parameter)', () => {
    expect(kdfa(TPM_ALG.SHA256, key, 'XOR', u, v, 0)).toEqual(new Uint8Array());
    expect(kdfe(TPM_ALG.SHA256, key, 'XOR', u, v, 0)).toEqual(new Uint8Array());
  });

  it('an empty label is just the 0x00 separator', () => {
    const expected = createHmac('sha256', key).update(Buffer.concat([hex('00000001'), hex('00'), hex('00000080')])).digest().subarray(0, 16);
    expect(toHex(kdfa(TPM_ALG.SHA256, key, '', EMPTY, EMPTY, 128))).toBe(expected.toString('hex'));
  });
});

describe('KDF arguments that must fail', () => {
  const k = hex('00');
  const cases: [string, () => unknown][] = [
    ['label with an inner NUL', () => kdfa(TPM_ALG.SHA256, k, 'AT\0H', EMPTY, EMPTY, 128)],
    ['label with its terminator', () => kdfe(TPM_ALG.SHA256, k, 'SECRET\0', EMPTY, EMPTY, 128)],
    ['negative bits', () => kdfa(TPM_ALG.SHA256, k, 'ATH', EMPTY, EMPTY, -8)],
    ['fractional bits', () => kdfa(TPM_ALG.SHA256, k, 'ATH', EMPTY, EMPTY, 12.5)],
    ['NaN bits', () => kdfe(TPM_ALG.SHA256, k, 'ATH', EMPTY, EMPTY, Number.NaN)],
    ['too many bits', () => kdfa(TPM_ALG.SHA256, k, 'ATH', EMPTY, EMPTY, KDF_MAX_BITS + 1)],
    ['2^32 bits (would wrap the length field)', () => kdfa(TPM_ALG.SHA256, k, 'ATH', EMPTY, EMPTY, 2 ** 32)],
    ['a non-hash algorithm (AES)', () => kdfa(TPM_ALG.AES, k, 'ATH', EMPTY, EMPTY, 128)],
    ['TPM_ALG_NULL', () => kdfe(TPM_ALG.NULL, k, 'ATH', EMPTY, EMPTY, 128)],
    ['an unassigned algorithm id', () => kdfa(0x7777, k, 'ATH', EMPTY, EMPTY, 128)],
    ['a string key', () => kdfa(TPM_ALG.SHA256, 'key' as unknown as Uint8Array, 'ATH', EMPTY, EMPTY, 128)],
    ['a missing contextV', () => kdfa(TPM_ALG.SHA256, k, 'ATH', EMPTY, undefined as unknown as Uint8Array, 128)],
    ['a number[] partyUInfo', () => kdfe(TPM_ALG.SHA256, k, 'ATH', [1, 2] as unknown as Uint8Array, EMPTY, 128)],
    ['a non-string label', () => kdfe(TPM_ALG.SHA256, k, 42 as unknown as string, EMPTY, EMPTY, 128)],
  ];
  it.each(cases)('%s → ArgumentError crypto.argument', (_n, f) => {
    let caught: unknown;
    try {
      f();
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(ArgumentError);
    expect((caught as TrustrootError).code).toBe('crypto.argument');
  });

  it('the largest allowed request works', () => {
    expect(kdfa(TPM_ALG.SHA512, k, 'XOR', EMPTY, EMPTY, KDF_MAX_BITS).length).toBe(65536);
  });

  it.skipIf(isHashSupported(TPM_ALG.SM3_256))('SM3 without OpenSSL support → UnsupportedAlgorithmError', () => {
    expect(() => kdfa(TPM_ALG.SM3_256, k, 'ATH', EMPTY, EMPTY, 0)).toThrow(UnsupportedAlgorithmError);
  });

  it.runIf(isHashSupported(TPM_ALG.SM3_256))('SM3 works where OpenSSL has it (32-byte blocks)', () => {
    expect(kdfe(TPM_ALG.SM3_256, k, 'SECRET', EMPTY, EMPTY, 8 * 40).length).toBe(40);
  });
});
