/** The shared byte helpers: constant-time compare and big-endian integers (checked against Buffer's own reads). */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { bigIntFromBytes, bytesFromBigInt, equalBytes } from '../../src/tpm/bytes.js';

describe('bytes', () => {
  it('equalBytes compares contents and lengths', () => {
    expect(equalBytes(Uint8Array.of(1, 2), Uint8Array.of(1, 2))).toBe(true);
    expect(equalBytes(Uint8Array.of(1, 2), Uint8Array.of(1, 3))).toBe(false);
    expect(equalBytes(Uint8Array.of(1, 2), Uint8Array.of(1, 2, 0))).toBe(false);
  });

  it('bigIntFromBytes reads big-endian like Buffer.readBigUInt64BE; bytesFromBigInt writes it back at any size', () => {
    for (let i = 0; i < 50; i++) {
      const b = new Uint8Array(randomBytes(8));
      const v = Buffer.from(b).readBigUInt64BE();
      expect(bigIntFromBytes(b)).toBe(v);
      expect(bytesFromBigInt(v, 8)).toEqual(b);
      // Zeros in front for a wider field; a subarray reads only its own bytes.
      expect(bytesFromBigInt(v, 11)).toEqual(Uint8Array.from([0, 0, 0, ...b]));
      const wide = Uint8Array.from([0xff, ...b, 0xee]);
      expect(bigIntFromBytes(wide.subarray(1, 9))).toBe(v);
    }
    expect(bigIntFromBytes(new Uint8Array(0))).toBe(0n);
    expect(bytesFromBigInt(0n, 0)).toEqual(new Uint8Array(0));
    expect(bytesFromBigInt(0n, 3)).toEqual(new Uint8Array(3));
    expect(bytesFromBigInt(0xabcn, 2)).toEqual(Uint8Array.of(0x0a, 0xbc));
  });

  it('bytesFromBigInt refuses values that do not fit and negative values', () => {
    expect(() => bytesFromBigInt(0x10000n, 2)).toThrow(RangeError);
    expect(() => bytesFromBigInt(1n, 0)).toThrow(RangeError);
    expect(() => bytesFromBigInt(-1n, 4)).toThrow(RangeError);
  });
});
