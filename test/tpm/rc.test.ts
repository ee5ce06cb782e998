/**
 * Response-code table and decoder (Part 2 §6.6): known decodings, the
 * format-1 handle/parameter/session rules, layered TSS codes, TpmError and
 * isRc, and a property test that decoding is total and self-consistent.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TPM_CC } from '../../src/tpm/constants.js';
import { TrustrootError } from '../../src/tpm/errors.js';
import {
  RC_FMT1,
  RC_VER1,
  RC_WARN,
  TPM_RC,
  TPM_RC_DESCRIPTIONS,
  TPM_RC_N_MASK,
  TPM_RC_P,
  TPM_RC_S,
  TpmError,
  canonicalRc,
  decodeResponseCode,
  isRc,
  rcForHandle,
  rcForParameter,
  rcForSession,
  type DecodedRc,
} from '../../src/tpm/rc.js';

describe('known decodings', () => {
  const cases: [number, Partial<DecodedRc>][] = [
    [0x000, { format: 'success', name: 'TPM_RC_SUCCESS', code: 0, retryable: false, warning: false }],
    [0x9a2, { format: 1, name: 'TPM_RC_BAD_AUTH', code: 0x0a2, subject: 'session', session: 1, retryable: false }],
    [0x1c4, { format: 1, name: 'TPM_RC_VALUE', code: 0x084, subject: 'parameter', parameter: 1 }],
    [0x98e, { format: 1, name: 'TPM_RC_AUTH_FAIL', code: 0x08e, subject: 'session', session: 1 }],
    [0x18b, { format: 1, name: 'TPM_RC_HANDLE', code: 0x08b, subject: 'handle', handle: 1 }],
    [0x2d5, { format: 1, name: 'TPM_RC_SIZE', code: 0x095, parameter: 2 }],
    [0xfd5, { format: 1, name: 'TPM_RC_SIZE', code: 0x095, parameter: 15 }], // parameter 15 uses bit 11 too
    [0xa9d, { format: 1, name: 'TPM_RC_POLICY_FAIL', code: 0x09d, session: 2 }],
    [0x08e, { format: 1, name: 'TPM_RC_AUTH_FAIL', code: 0x08e }], // no index given
    [0x922, { format: 'warning', name: 'TPM_RC_RETRY', code: 0x922, retryable: true, warning: true }],
    [0x908, { format: 'warning', name: 'TPM_RC_YIELDED', retryable: true, warning: true }],
    [0x90a, { format: 'warning', name: 'TPM_RC_TESTING', retryable: true, warning: true }],
    [0x902, { format: 'warning', name: 'TPM_RC_OBJECT_MEMORY', retryable: false, warning: true }],
    [0x921, { format: 'warning', name: 'TPM_RC_LOCKOUT', retryable: false, warning: true }],
    [0x920, { format: 'warning', name: 'TPM_RC_NV_RATE', retryable: false }],
    [0x910, { format: 'warning', name: 'TPM_RC_REFERENCE_H0' }],
    [0x100, { format: 0, name: 'TPM_RC_INITIALIZE', code: 0x100, warning: false, vendor: false }],
    [0x101, { format: 0, name: 'TPM_RC_FAILURE' }],
    [0x143, { format: 0, name: 'TPM_RC_COMMAND_CODE', code: 0x143 }],
    [0x14c, { format: 0, name: 'TPM_RC_NV_DEFINED' }],
    [0x01e, { format: 'tpm12', name: 'TPM_RC_BAD_TAG', code: 0x01e }],
    [0x030, { format: 'tpm12', name: 'TPM_RC_BAD_TAG', code: 0x01e }], // old value some TPMs send
    [0x00a, { format: 'tpm12', name: 'TPM12_RC', code: 0x00a }],
    [0x500, { format: 0, name: 'TPM_RC_VENDOR', vendor: true, warning: false }],
    [0xd01, { format: 'warning', name: 'TPM_RC_VENDOR', vendor: true, warning: true }],
    [0x17f, { format: 0, name: 'TPM_RC_UNKNOWN' }],
    [0x000a000a, { format: 'layer', layer: 10, name: 'TSS2_TCTI_RC_IO_ERROR', code: 0x000a000a }],
    [0x000b0001, { format: 'layer', layer: 11, name: 'TSS2_RESMGR_RC_GENERAL_FAILURE' }],
    [0x00070009, { format: 'layer', layer: 7, name: 'TSS2_ESYS_RC_TRY_AGAIN', retryable: false }],
    [0x000c0902, { format: 'layer', layer: 12, name: 'TPM_RC_OBJECT_MEMORY', code: 0x000c0902, warning: true }],
    [0x000c0922, { format: 'layer', layer: 12, name: 'TPM_RC_RETRY', retryable: true }],
    [0x000c098e, { format: 'layer', layer: 12, name: 'TPM_RC_AUTH_FAIL', code: 0x000c008e, session: 1 }],
    [0x0042ffff, { format: 'layer', layer: 0x42, name: 'TSS2_LAYER66_RC_UNKNOWN', vendor: true }],
    [0x00001000, { format: 'unknown', name: 'UNKNOWN_RC' }],
    [0x80280400, { format: 'unknown', name: 'UNKNOWN_RC' }],
    [0xffffffff, { format: 'unknown' }],
  ];
  it.each(cases.map(([rc, want]) => [rc.toString(16), rc, want] as const))('0x%s', (_hex, rc, want) => {
    const d = decodeResponseCode(rc);
    expect(d).toMatchObject({ rc, ...want });
    expect(d.description.length).toBeGreaterThan(0);
  });

  it('the constants have the values of Part 2 / tss2_tpm2_types.h', () => {
    expect(TPM_RC.TESTING).toBe(0x90a);
    expect(TPM_RC.YIELDED).toBe(0x908);
    expect(TPM_RC.BAD_AUTH).toBe(0x0a2);
    expect(TPM_RC.SENSITIVE).toBe(0x155);
    expect(TPM_RC.ECC_POINT).toBe(0x0a7);
    expect(TPM_RC.NOT_USED).toBe(0x97f);
    expect(TPM_RC.REFERENCE_S6).toBe(0x91e);
  });

  it('negative int32 inputs read as their u32 bits; non-integers never read as success', () => {
    expect(decodeResponseCode(-1).rc).toBe(0xffffffff);
    for (const bad of [Number.NaN, 0.5, Infinity]) {
      const d = decodeResponseCode(bad);
      expect(d.format).toBe('unknown');
      expect(d.name).not.toBe('TPM_RC_SUCCESS');
    }
  });
});

describe('TPM_RC table', () => {
  const entries = Object.entries(TPM_RC) as [keyof typeof TPM_RC, number][];

  it('names and values are unique and every entry has a description', () => {
    expect(new Set(entries.map(([, v]) => v)).size).toBe(entries.length);
    expect(new Set(entries.map(([k]) => k)).size).toBe(entries.length);
    for (const [k] of entries) expect(TPM_RC_DESCRIPTIONS[k], k).toMatch(/\S/);
    expect(Object.keys(TPM_RC_DESCRIPTIONS).sort()).toEqual(entries.map(([k]) => k).sort());
  });

  it('every entry decodes back to its own name and code', () => {
    for (const [k, v] of entries) {
      const d = decodeResponseCode(v);
      expect(d.name, k).toBe(`TPM_RC_${k}`);
      expect(d.code, k).toBe(v);
      expect(d.description).toBe(TPM_RC_DESCRIPTIONS[k]);
    }
  });

  it('each entry sits in its group', () => {
    for (const [k, v] of entries) {
      if (k === 'SUCCESS' || k === 'BAD_TAG') continue;
      if (v & RC_FMT1) expect(v & ~0xff, k).toBe(0);
      else if (v >= RC_WARN) expect(v & ~0x7f, k).toBe(RC_WARN);
      else expect(v & ~0x7f, k).toBe(RC_VER1);
    }
  });
});

describe('composing format-1 codes', () => {
  it('rcFor* build what the TPM sends and decode back', () => {
    expect(rcForSession(TPM_RC.BAD_AUTH, 1)).toBe(0x9a2);
    expect(rcForParameter(TPM_RC.VALUE, 1)).toBe(0x1c4);
    expect(rcForHandle(TPM_RC.HANDLE, 1)).toBe(0x18b);
    expect(decodeResponseCode(rcForParameter(TPM_RC.SIZE, 12))).toMatchObject({ parameter: 12, code: TPM_RC.SIZE });
  });
  it('reject non-format-1 codes and out-of-range indices', () => {
    expect(() => rcForSession(TPM_RC.RETRY, 1)).toThrow(RangeError);
    expect(() => rcForHandle(TPM_RC.HANDLE, 8)).toThrow(RangeError);
    expect(() => rcForParameter(TPM_RC.VALUE, 0)).toThrow(RangeError);
    expect(() => rcForSession(0x9a2, 1)).toThrow(RangeError); // already numbered
  });
});

describe('TpmError and isRc', () => {
  it('carries the decoding and a readable message', () => {
    const e = new TpmError(0x98e, { commandCode: TPM_CC.PolicySecret });
    expect(e).toBeInstanceOf(TrustrootError);
    expect(e.code).toBe('tpm.rc');
    expect(e.name).toBe('TpmError');
    expect(e.rc).toBe(0x98e);
    expect(e.baseCode).toBe(TPM_RC.AUTH_FAIL);
    expect(e.rcName).toBe('TPM_RC_AUTH_FAIL');
    expect(e.session).toBe(1);
    expect(e.handle).toBeUndefined();
    expect(e.retryable).toBe(false);
    expect(e.commandCode).toBe(0x151);
    expect(e.decoded.format).toBe(1);
    expect(e.message).toBe(`TPM_RC_AUTH_FAIL (0x98e) on session 1 of PolicySecret: ${TPM_RC_DESCRIPTIONS.AUTH_FAIL}`);
  });

  it('messages without a subject or a known command', () => {
    expect(new TpmError(0x100, { commandCode: TPM_CC.Startup }).message).toMatch(/^TPM_RC_INITIALIZE \(0x100\) from Startup: /);
    expect(new TpmError(0x1c4, { commandCode: 0x20000123 }).message).toMatch(/^TPM_RC_VALUE \(0x1c4\) on parameter 1 of command 0x20000123: /);
    expect(new TpmError(0x922).message).toMatch(/^TPM_RC_RETRY \(0x922\): /);
    expect(new TpmError(0x922).retryable).toBe(true);
  });

  it('isRc compares canonical codes', () => {
    for (const rc of [0x08e, 0x98e, 0xa8e, 0xf8e, 0x18e, 0x1ce, 0x7ce]) {
      expect(isRc(new TpmError(rc), TPM_RC.AUTH_FAIL)).toBe(true);
      expect(new TpmError(rc).is(TPM_RC.AUTH_FAIL)).toBe(true);
    }
    expect(isRc(new TpmError(0x9a2), TPM_RC.AUTH_FAIL)).toBe(false);
    expect(isRc(new TpmError(0x9a2), 0xaa2)).toBe(true); // both BAD_AUTH
    expect(isRc(0x1c4, TPM_RC.VALUE)).toBe(true);
    expect(isRc(new TpmError(0x000c0922), TPM_RC.RETRY)).toBe(false); // layer kept
    expect(isRc(new Error('TPM_RC_AUTH_FAIL'), TPM_RC.AUTH_FAIL)).toBe(false);
    expect(isRc(undefined, TPM_RC.SUCCESS)).toBe(false);
  });
});

describe('decodeResponseCode properties', () => {
  const u32 = fc.integer({ min: 0, max: 0xffffffff });
  const low12 = fc.integer({ min: 0, max: 0xfff });
  const RETRYABLE = new Set<number>([TPM_RC.RETRY, TPM_RC.YIELDED, TPM_RC.TESTING]);

  function consistent(rc: number): void {
    const d = decodeResponseCode(rc);
    expect(d.rc).toBe(rc);
    expect(typeof d.name).toBe('string');
    expect(d.name.length).toBeGreaterThan(0);
    expect(d.description.length).toBeGreaterThan(0);
    if (d.handle !== undefined) expect(d.handle >= 1 && d.handle <= 7 && d.subject === 'handle').toBe(true);
    if (d.session !== undefined) expect(d.session >= 1 && d.session <= 7 && d.subject === 'session').toBe(true);
    if (d.parameter !== undefined) expect(d.parameter >= 1 && d.parameter <= 15 && d.subject === 'parameter').toBe(true);
    expect([d.handle, d.session, d.parameter].filter((x) => x !== undefined).length).toBeLessThanOrEqual(1);
    const tpmPart = d.layer === undefined ? d.code : d.code & 0xfff;
    expect(d.retryable).toBe(RETRYABLE.has(tpmPart) && (d.format === 'warning' || d.layer === 12));
    if (d.format === 1) {
      // The base code re-composes with the index bits into the rc.
      let bits = 0;
      if (d.subject === 'parameter') bits = TPM_RC_P | ((d.parameter ?? 0) << 8);
      else if (d.subject === 'session') bits = TPM_RC_S | ((d.session ?? 0) << 8);
      else bits = (d.handle ?? 0) << 8;
      expect(d.code | bits).toBe(rc);
      expect(d.code & (TPM_RC_N_MASK | TPM_RC_P)).toBe(0);
      expect(d.code & RC_FMT1).toBe(RC_FMT1);
      expect(canonicalRc(d.code)).toBe(d.code);
    }
    if (d.format === 0 || d.format === 'warning') expect(d.code).toBe(rc);
    if (d.format === 'layer') expect(d.layer! >= 1 && d.layer! <= 255).toBe(true);
  }

  it('never throws on any u32 and is self-consistent', () => {
    fc.assert(fc.property(u32, (rc) => consistent(rc)), { numRuns: 20_000 });
  });

  it('covers every TPM-range value exhaustively', () => {
    for (let rc = 0; rc <= 0xfff; rc++) consistent(rc);
    for (let rc = 0; rc <= 0xfff; rc++) consistent(0x000c0000 | rc);
  });

  it('isRc(rc, base) holds for every numbering of a format-1 code', () => {
    fc.assert(
      fc.property(low12, (rc) => {
        const d = decodeResponseCode(rc | RC_FMT1);
        expect(isRc(rc | RC_FMT1, d.code)).toBe(true);
      }),
    );
  });
});
