/**
 * ECC parameter sizes: TPM2B_ECC_PARAMETER holds MAX_ECC_KEY_BYTES = 80 bytes
 * (BN P-638, libtpms's largest curve), so a libtpms ECC_Parameters(BN_P638)
 * answer decodes, and 81 bytes is refused with the structure's path and offset.
 */
import { describe, expect, it } from 'vitest';
import { TPM_ALG, TPM_ECC } from '../../src/tpm/constants.js';
import { ParseError } from '../../src/tpm/errors.js';
import { LIMITS, SIZEOF_TPMS_ECC_POINT, SIZEOF_TPMU_ENCRYPTED_SECRET } from '../../src/tpm/limits.js';
import { decode, encode } from '../../src/tpm/wire/codec.js';
import { TPM2B_ECC_PARAMETER, TPM2B_ECC_POINT, TPMS_ALGORITHM_DETAIL_ECC } from '../../src/tpm/types/index.js';

const u16 = (n: number): number[] => [n >> 8, n & 0xff];
const tpm2b = (b: Uint8Array): number[] => [...u16(b.length), ...b];
const bytes = (n: number, fill: number): Uint8Array => new Uint8Array(n).fill(fill);

/** A TPMS_ALGORITHM_DETAIL_ECC as libtpms sends it for BN P-638 (kdf and sign NULL, a = 0, h = 1), with a p of `pLength` bytes. */
function bnP638Detail(pLength: number): Uint8Array {
  return Uint8Array.from([
    ...u16(TPM_ECC.BN_P638), ...u16(638), ...u16(TPM_ALG.NULL), ...u16(TPM_ALG.NULL),
    ...tpm2b(bytes(pLength, 0xfe)), ...tpm2b(Uint8Array.of(0)), ...tpm2b(bytes(80, 0x01)),
    ...tpm2b(bytes(80, 0x02)), ...tpm2b(bytes(80, 0x03)), ...tpm2b(bytes(80, 0xfd)), ...tpm2b(Uint8Array.of(1)),
  ]);
}

function parseFailure(f: () => unknown): { code: string; path: string; offset: number } {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ParseError);
    const p = e as ParseError;
    return { code: p.code, path: p.path, offset: p.offset };
  }
  throw new Error('no ParseError');
}

describe('ECC parameter sizes (BN P-638: 80 bytes)', () => {
  it('the limit and the sizes derived from it', () => {
    expect(LIMITS.MAX_ECC_KEY_BYTES).toBe(Math.ceil(638 / 8));
    expect(SIZEOF_TPMS_ECC_POINT).toBe(2 * (2 + 80));
    // An RSA-4096 secret stays the largest TPMU_ENCRYPTED_SECRET.
    expect(SIZEOF_TPMU_ENCRYPTED_SECRET).toBe(LIMITS.MAX_RSA_KEY_BYTES);
  });

  it('decodes a TPMS_ALGORITHM_DETAIL_ECC with 80-byte parameters and encodes it back', () => {
    const wire = bnP638Detail(80);
    const d = decode(TPMS_ALGORITHM_DETAIL_ECC, wire);
    expect(d.curveID).toBe(TPM_ECC.BN_P638);
    expect(d.keySize).toBe(638);
    for (const v of [d.p, d.b, d.gX, d.gY, d.n]) expect(v).toHaveLength(80);
    expect(d.p.every((x) => x === 0xfe)).toBe(true);
    expect(encode(TPMS_ALGORITHM_DETAIL_ECC, d)).toEqual(wire);
  });

  it('refuses a parameter of 81 bytes, at its size field', () => {
    // curveID, keySize, kdf.scheme, sign.scheme: p's size is at offset 8.
    expect(parseFailure(() => decode(TPMS_ALGORITHM_DETAIL_ECC, bnP638Detail(81)))).toEqual({ code: 'parse.size', path: 'TPMS_ALGORITHM_DETAIL_ECC.p', offset: 8 });
    expect(parseFailure(() => decode(TPM2B_ECC_PARAMETER, Uint8Array.from(tpm2b(bytes(81, 1)))))).toEqual({ code: 'parse.size', path: 'TPM2B_ECC_PARAMETER', offset: 0 });
    expect(() => encode(TPM2B_ECC_PARAMETER, bytes(81, 1))).toThrow();
    expect(decode(TPM2B_ECC_PARAMETER, Uint8Array.from(tpm2b(bytes(80, 1))))).toHaveLength(80);
  });

  it('a TPM2B_ECC_POINT of two 80-byte coordinates decodes; one of 81 bytes is refused', () => {
    const point = (x: number, y: number): Uint8Array => {
      const inner = [...tpm2b(bytes(x, 4)), ...tpm2b(bytes(y, 5))];
      return Uint8Array.from([...u16(inner.length), ...inner]);
    };
    const p = decode(TPM2B_ECC_POINT, point(80, 80));
    expect([p.x.length, p.y.length]).toEqual([80, 80]);
    expect(parseFailure(() => decode(TPM2B_ECC_POINT, point(80, 81)))).toMatchObject({ code: 'parse.size', offset: 84 });
  });
});
