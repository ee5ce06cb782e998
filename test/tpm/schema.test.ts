/**
 * The Part 2 schema (src/tpm/types): known-answer encodings, a round-trip
 * property for every exported codec, schema invariants, and decoding failures
 * with their exact code, path and offset.
 */
import { eccEkTemplate, rsaEkTemplate } from '../../src/tpm/templates.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TPM_ALG, TPM_GENERATED_VALUE, TPM_RH, TPM_ST } from '../../src/tpm/constants.js';
import { ParseError } from '../../src/tpm/errors.js';
import { type Codec, decode, encode, struct, u16, u8, union } from '../../src/tpm/wire/codec.js';
import { Reader, Writer } from '../../src/tpm/wire/io.js';
import * as types from '../../src/tpm/types/index.js';
import {
  decodeTemplate,
  TPM2B_ATTEST,
  TPM2B_DIGEST,
  TPM2B_ECC_POINT_OPTIONAL,
  TPM2B_PUBLIC,
  TPM2B_PUBLIC_OPTIONAL,
  TPM2B_TEMPLATE,
  TPMA_OBJECT,
  TPML_DIGEST,
  TPMS_ATTEST,
  TPMS_AUTH_COMMAND,
  TPMT_PUBLIC,
  TPMT_PUBLIC_DERIVE,
  TPMT_TK_CREATION,
  templateFromPublic,
} from '../../src/tpm/types/index.js';
import { arbitraryOf } from '../support/arbitrary.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

// tpm-spec-facts.md §8: the low-range EK templates (EK Credential Profile, templates L-1 and L-2).
const EK_POLICY = unhex('837197674484B3F81A90CC8D46A5D724FD52D76E06520B64F2A1DA1B331469AA');
// The templates under test come from src/tpm/templates.ts; the expected bytes below are written out independently.
const RSA_EK: TPMT_PUBLIC = rsaEkTemplate();
const ECC_EK: TPMT_PUBLIC = eccEkTemplate();

/** The modulus of an RSA public area: the union narrows on `type`. */
function modulusOf(p: TPMT_PUBLIC): Uint8Array | undefined {
  return p.type === TPM_ALG.RSA ? p.unique : undefined;
}

const QUOTE: TPMS_ATTEST = {
  magic: TPM_GENERATED_VALUE,
  type: TPM_ST.ATTEST_QUOTE,
  qualifiedSigner: unhex('000b' + '11'.repeat(32)),
  extraData: unhex('cafe'),
  clockInfo: { clock: 123456789n, resetCount: 3, restartCount: 0, safe: 1 },
  firmwareVersion: 0x0001000200030004n,
  attested: {
    pcrSelect: [{ hash: TPM_ALG.SHA256, pcrSelect: unhex('ff0000') }],
    pcrDigest: new Uint8Array(32).fill(7),
  },
};

describe('known answers: EK templates (tpm-spec-facts §8)', () => {
  it('objectAttributes of the EK is 0x000300B2', () => {
    expect(TPMA_OBJECT.toWord(RSA_EK.objectAttributes)).toBe(0x000300b2);
    expect(TPMA_OBJECT.toWord(ECC_EK.objectAttributes)).toBe(0x000300b2);
  });

  it('RSA-2048 EK template marshals to 314 bytes with the documented prefix and decodes back', () => {
    const bytes = encode(TPMT_PUBLIC, RSA_EK);
    expect(bytes.length).toBe(314);
    expect(hex(bytes.subarray(0, 42))).toBe('0001000b000300b20020' + hex(EK_POLICY));
    expect(hex(bytes.subarray(42, 60))).toBe('00060080004300100800000000000100' + '0000');
    expect(decode(TPMT_PUBLIC, bytes)).toEqual(RSA_EK);
    expect(modulusOf(decode(TPMT_PUBLIC, bytes))).toEqual(new Uint8Array(256));
    const sized = encode(TPM2B_PUBLIC, RSA_EK);
    expect(hex(sized.subarray(0, 2))).toBe('013a');
    expect(decode(TPM2B_PUBLIC, sized)).toEqual(RSA_EK);
  });

  it('ECC P-256 EK template marshals to 122 bytes with the documented prefix and decodes back', () => {
    const bytes = encode(TPMT_PUBLIC, ECC_EK);
    expect(bytes.length).toBe(122);
    expect(hex(bytes.subarray(0, 42))).toBe('0023000b000300b20020' + hex(EK_POLICY));
    expect(hex(bytes.subarray(42, 56))).toBe('0006008000430010000300100020');
    expect(decode(TPMT_PUBLIC, bytes)).toEqual(ECC_EK);
    expect(modulusOf(ECC_EK)).toBeUndefined();
  });

  it('a quote re-encodes to exactly the bytes that were signed', () => {
    const bytes = encode(TPM2B_ATTEST, QUOTE);
    expect(hex(bytes.subarray(2, 8))).toBe('ff5443478018');
    expect(encode(TPM2B_ATTEST, decode(TPM2B_ATTEST, bytes))).toEqual(bytes);
  });
});

describe('TPM2B_TEMPLATE', () => {
  it('holds a TPMT_PUBLIC, or under a derivation parent a TPMT_PUBLIC_DERIVE', () => {
    const plain = templateFromPublic(ECC_EK);
    expect(decode(TPM2B_TEMPLATE, encode(TPM2B_TEMPLATE, plain))).toEqual(plain);
    expect(decodeTemplate(plain)).toEqual(ECC_EK);

    const derived: TPMT_PUBLIC_DERIVE = { ...ECC_EK, unique: { label: unhex('6c6162656c00'), context: unhex('01020304') } };
    const bytes = templateFromPublic(derived, { derivation: true });
    expect(bytes).toEqual(encode(TPMT_PUBLIC_DERIVE, derived));
    expect(decodeTemplate(bytes, { derivation: true })).toEqual(derived);
    // Nothing in the bytes tells the two apart: for ECC both `unique`s are two TPM2Bs, so
    // only the parent can say whether x is a coordinate or a label.
    expect(decodeTemplate(bytes)).toEqual({ ...ECC_EK, unique: { x: derived.unique.label, y: derived.unique.context } });
    const rsaDerived: TPMT_PUBLIC_DERIVE = { ...RSA_EK, unique: derived.unique };
    expectParseError(() => decodeTemplate(templateFromPublic(rsaDerived, { derivation: true })), 'parse.trailing', 'TPMT_PUBLIC', 64);
  });
});

// ---------------------------------------------------------------------------

function isCodec(v: unknown): v is Codec<unknown> {
  return typeof v === 'object' && v !== null && 'node' in v && 'read' in v && 'write' in v && typeof (v as Codec<unknown>).name === 'string';
}

/** Every distinct codec exported by types/index.ts, under its first export name. */
const CODECS: [string, Codec<unknown>][] = (() => {
  const seen = new Set<Codec<unknown>>();
  const out: [string, Codec<unknown>][] = [];
  for (const [name, value] of Object.entries(types)) {
    if (!isCodec(value) || seen.has(value)) continue;
    seen.add(value);
    out.push([name, value]);
  }
  return out;
})();

describe('round trip: decode(encode(x)) equals x for every exported codec', () => {
  it('exports the structures the command set needs', () => {
    expect(CODECS.length).toBeGreaterThan(150);
  });

  it.each(CODECS)('%s', (_name, codec) => {
    fc.assert(
      fc.property(arbitraryOf(codec), (x) => {
        const bytes = encode(codec, x);
        expect(decode(codec, bytes)).toEqual(x);
        expect(encode(codec, decode(codec, bytes))).toEqual(bytes);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('schema invariants', () => {
  it('each codec is exported under its spec name (aliases and variants documented)', () => {
    const variants: Record<string, string> = {
      TPMI_SH_AUTH_SESSION_OR_PW: 'TPMI_SH_AUTH_SESSION+',
      TPMT_PUBLIC_DERIVE: 'TPMT_PUBLIC',
      UINT8: 'UINT8',
      BYTE: 'UINT8',
    };
    for (const [name, codec] of Object.entries(types)) {
      if (!isCodec(codec)) continue;
      const expected = variants[name] ?? name.replace(/_OPTIONAL$/, '');
      // Typedef aliases (TPMS_SIG_SCHEME_RSASSA = TPMS_SCHEME_HASH) share the codec of their base type.
      const alias = Object.entries(types).some(([other, v]) => v === codec && other === codec.name);
      expect(codec.name === expected || alias, `${name} is named ${codec.name}`).toBe(true);
    }
  });

  it('every union selector accepts exactly the values its union has members for', () => {
    const visit = (c: Codec<unknown>, seen: Set<Codec<unknown>>): void => {
      if (seen.has(c)) return;
      seen.add(c);
      const n = c.node;
      if (n.kind === 'sizedOf') visit(n.inner, seen);
      if (n.kind === 'list') visit(n.item, seen);
      if (n.kind !== 'struct') return;
      for (const f of n.fields) {
        if (f.kind === 'plain') {
          visit(f.codec, seen);
          continue;
        }
        const sel = n.fields.find((g) => g.name === f.selector);
        expect(sel?.kind).toBe('plain');
        const selNode = sel!.kind === 'plain' ? sel!.codec.node : undefined;
        expect(selNode?.kind, `${c.name}.${f.selector}`).toBe('values');
        if (selNode?.kind === 'values') {
          expect([...f.variants.keys()].sort(), `${c.name}.${f.name}`).toEqual([...selNode.values].sort());
        }
        for (const m of f.variants.values()) if (m) visit(m, seen);
      }
    };
    const seen = new Set<Codec<unknown>>();
    for (const [, c] of CODECS) visit(c, seen);
  });

  it('every sized buffer and list has a maximum below the raw 16/32-bit range', () => {
    for (const [name, c] of CODECS) {
      const n = c.node;
      if (n.kind === 'sized') expect(n.max, name).toBeLessThan(n.prefix === 1 ? 0xff : 0x2000);
      if (n.kind === 'list') expect(n.max, name).toBeLessThan(0x1000);
    }
  });
});

// ---------------------------------------------------------------------------

function failure(fn: () => unknown): ParseError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ParseError);
    return e as ParseError;
  }
  throw new Error('expected a ParseError');
}

function expectParseError(fn: () => unknown, code: ParseError['code'], path: string, offset: number): void {
  const e = failure(fn);
  expect({ code: e.code, path: e.path, offset: e.offset }).toEqual({ code, path, offset });
}

describe('decoding failures name the code, the structure path and the offset', () => {
  const rsa = encode(TPMT_PUBLIC, RSA_EK);
  const patched = (bytes: Uint8Array, at: number, ...values: number[]): Uint8Array => {
    const copy = bytes.slice();
    copy.set(values, at);
    return copy;
  };

  it('truncated input', () => {
    // The modulus' size field is at 56; its 256 bytes start at 58.
    expectParseError(() => decode(TPMT_PUBLIC, rsa.subarray(0, 300)), 'parse.truncated', 'TPMT_PUBLIC.unique', 58);
    expectParseError(() => decode(TPMT_PUBLIC, rsa.subarray(0, 45)), 'parse.truncated', 'TPMT_PUBLIC.parameters.symmetric.keyBits', 44);
  });

  it('a TPM2B size beyond its maximum', () => {
    expectParseError(() => decode(TPMT_PUBLIC, patched(rsa, 8, 0x00, 0x41)), 'parse.size', 'TPMT_PUBLIC.authPolicy', 8);
    expectParseError(() => decode(TPM2B_DIGEST, unhex('0041' + '00'.repeat(65))), 'parse.size', 'TPM2B_DIGEST', 0);
  });

  it('a sized structure whose size disagrees with its content, or is empty', () => {
    const sized = encode(TPM2B_PUBLIC, RSA_EK);
    expectParseError(() => decode(TPM2B_PUBLIC, patched(sized, 0, 0x01, 0x39)), 'parse.truncated', 'TPM2B_PUBLIC.unique', 60);
    expectParseError(() => decode(TPM2B_PUBLIC, unhex('0000')), 'parse.size', 'TPM2B_PUBLIC', 0);
    expect(decode(TPM2B_PUBLIC_OPTIONAL, unhex('0000'))).toBeNull();
    expect(decode(TPM2B_ECC_POINT_OPTIONAL, unhex('0000'))).toBeNull();
  });

  it('an unknown union selector', () => {
    // Every declared selector is a TPMI set equal to its union's members (see the invariant
    // above), so an unknown value fails as parse.value first; the combinator itself:
    const T = struct('T', { sel: u16, body: union('TPMU_T', 'sel', { 1: u8, 2: null }) });
    expectParseError(() => decode(T, unhex('0003ff')), 'parse.selector', 'T.body', 2);
    expectParseError(() => decode(TPMT_PUBLIC, patched(rsa, 0, 0x00, 0x25 + 1)), 'parse.value', 'TPMT_PUBLIC.type', 0);
  });

  it('trailing bytes', () => {
    const extra = new Uint8Array(rsa.length + 1);
    extra.set(rsa);
    expectParseError(() => decode(TPMT_PUBLIC, extra), 'parse.trailing', 'TPMT_PUBLIC', 314);
  });

  it('a list count beyond its maximum', () => {
    expectParseError(() => decode(TPML_DIGEST, unhex('00000009')), 'parse.count', 'TPML_DIGEST', 0);
    const attest = encode(TPMS_ATTEST, QUOTE);
    // magic 4, type 2, qualifiedSigner 2+34, extraData 2+2, clockInfo 17, firmwareVersion 8: the count is at 71.
    expect(hex(attest.subarray(71, 75))).toBe('00000001');
    expectParseError(() => decode(TPMS_ATTEST, patched(attest, 74, 0x09)), 'parse.count', 'TPMS_ATTEST.attested.pcrSelect', 71);
  });

  it('a reserved bit in TPMA_OBJECT', () => {
    expectParseError(() => decode(TPMT_PUBLIC, patched(rsa, 4, 0x00, 0x03, 0x00, 0xb3)), 'parse.reserved', 'TPMT_PUBLIC.objectAttributes', 4);
    expect(() => TPMA_OBJECT.fromWord(0x80000000)).toThrow(ParseError);
  });

  it('a bad magic in TPMS_ATTEST', () => {
    const attest = encode(TPM2B_ATTEST, QUOTE);
    expectParseError(() => decode(TPM2B_ATTEST, patched(attest, 2, 0xfe)), 'parse.constant', 'TPM2B_ATTEST.magic', 2);
  });

  it('a value outside a TPMI set', () => {
    expectParseError(() => decode(TPMT_PUBLIC, patched(rsa, 2, 0x00, 0x99)), 'parse.value', 'TPMT_PUBLIC.nameAlg', 2);
    // keyBits 2047 is no TPMI_RSA_KEY_BITS.
    expectParseError(() => decode(TPMT_PUBLIC, patched(rsa, 50, 0x07, 0xff)), 'parse.value', 'TPMT_PUBLIC.parameters.keyBits', 50);
  });

  it('a handle outside its range', () => {
    const auth = encode(TPMS_AUTH_COMMAND, {
      sessionHandle: TPM_RH.PW,
      nonce: new Uint8Array(0),
      sessionAttributes: { continueSession: true, auditExclusive: false, auditReset: false, decrypt: false, encrypt: false, audit: false },
      hmac: new Uint8Array(0),
    });
    expect(hex(auth)).toBe('40000009000001' + '0000');
    expectParseError(() => decode(TPMS_AUTH_COMMAND, patched(auth, 0, 0x80)), 'parse.handle', 'TPMS_AUTH_COMMAND.sessionHandle', 0);
    const ticket = encode(TPMT_TK_CREATION, { tag: TPM_ST.CREATION, hierarchy: TPM_RH.NULL, digest: new Uint8Array(0) });
    expectParseError(() => decode(TPMT_TK_CREATION, patched(ticket, 2, 0x40, 0x00, 0x00, 0x0a)), 'parse.handle', 'TPMT_TK_CREATION.hierarchy', 2);
  });
});

describe('Writer and Reader buffers', () => {
  it('each encode returns bytes with a buffer of its own, untouched by later encodes', () => {
    const a = encode(TPM2B_DIGEST, new Uint8Array(32).fill(1));
    const b = encode(TPM2B_DIGEST, new Uint8Array(32).fill(2));
    expect(a.buffer).not.toBe(b.buffer);
    expect([a.byteOffset, a.buffer.byteLength, b.byteOffset, b.buffer.byteLength]).toEqual([0, 34, 0, 34]);
    expect(hex(a)).toBe(`0020${'01'.repeat(32)}`);
    expect(hex(b)).toBe(`0020${'02'.repeat(32)}`);
  });

  it('a Writer used after finish() never changes the bytes it returned', () => {
    const w = new Writer();
    w.u16(0);
    w.u32(0x01020304);
    const first = w.finish();
    w.patchU16(0, 0xabcd);
    w.u8(5);
    expect(hex(first)).toBe('000001020304');
    expect(hex(w.finish())).toBe('abcd0102030405');
    expect(hex(new Writer().finish())).toBe('');
  });

  it('an encode that fails halfway leaves later encodes intact', () => {
    expect(() => encode(TPML_DIGEST, [new Uint8Array(3), 'x' as unknown as Uint8Array])).toThrow();
    expect(hex(encode(TPML_DIGEST, [new Uint8Array([9])]))).toBe('00000001000109');
  });

  it('integers of every width are big-endian, and decode back (INT8, UINT64 extremes)', () => {
    const w = new Writer(0);
    w.i8(-2);
    w.u16(0xfffe);
    w.u32(0xfffffffd);
    w.u64(0xfedcba9876543210n);
    const bytes = w.finish();
    expect(hex(bytes)).toBe('fefffefffffffdfedcba9876543210');
    const r = new Reader(bytes);
    expect([r.i8(), r.u16(), r.u32(), r.u64()]).toEqual([-2, 0xfffe, 0xfffffffd, 0xfedcba9876543210n]);
    r.finish();
  });
});

describe('decoded values and error paths after a failure', () => {
  const PW_AUTH = unhex('40000009 0000 01 0000');

  it('every decode returns fresh arrays with buffers of their own, empty TPM2Bs included', () => {
    const input = new Uint8Array([0, ...PW_AUTH]).subarray(1);
    const a = decode(TPMS_AUTH_COMMAND, input);
    const b = decode(TPMS_AUTH_COMMAND, input);
    for (const x of [a.nonce, a.hmac, b.nonce, b.hmac]) {
      expect([x.length, x.byteOffset, x.buffer.byteLength]).toEqual([0, 0, 0]);
    }
    expect(new Set([a.nonce, a.hmac, b.nonce, b.hmac]).size).toBe(4);
    expect(a.sessionAttributes).not.toBe(b.sessionAttributes);
    const digests = [new Uint8Array(32).fill(1), new Uint8Array([2])];
    const list = new Uint8Array([0, ...encode(TPML_DIGEST, digests)]).subarray(1);
    const d = decode(TPML_DIGEST, list);
    expect(d).toEqual(digests);
    for (const x of d) expect([x.byteOffset, x.buffer.byteLength, x.buffer === list.buffer]).toEqual([0, x.length, false]);
    // From a Node Buffer too (its slice would be a view): a later change to the input leaves the values alone.
    const buf = Buffer.from(encode(TPML_DIGEST, digests));
    const fromBuffer = decode(TPML_DIGEST, buf);
    buf.fill(0xee);
    expect(fromBuffer).toEqual(digests);
    for (const x of fromBuffer) expect([x.constructor, x.buffer === buf.buffer]).toEqual([Uint8Array, false]);
  });

  it('a Reader or Writer that caught a failure inside a codec goes on with the path it had', () => {
    const r = new Reader(unhex('00000002 0001 aa 0041'));
    r.enter('outer');
    expect(() => TPML_DIGEST.read(r)).toThrow(ParseError);
    r.offset = 0;
    r.u8();
    expectParseError(() => r.within('inner', () => r.take(9)), 'parse.truncated', 'outer.inner', 1);
    r.leave();
    expectParseError(() => r.finish(), 'parse.trailing', '', 1);

    const w = new Writer();
    w.enter('outer');
    expect(() => TPMS_AUTH_COMMAND.write(w, { ...decode(TPMS_AUTH_COMMAND, PW_AUTH), hmac: 'x' as unknown as Uint8Array })).toThrow();
    expect(() => w.within('inner', () => w.fail('encode.value', 'x'))).toThrow(expect.objectContaining({ path: 'outer.inner' }));
  });

  it('attribute words with flags up to bit 31 and multi-bit fields pack as the spec lays them out', () => {
    for (const word of [0, 1, 0x80000000, 0xffff0000, 0x12345672, 0xfffffffe]) {
      const used = word & ~(types.TPMA_NV.node as { readonly reservedMask: number }).reservedMask;
      const v = types.TPMA_NV.fromWord(used >>> 0);
      expect(types.TPMA_NV.toWord(v)).toBe(used >>> 0);
      expect(decode(types.TPMA_NV, encode(types.TPMA_NV, v))).toEqual(v);
    }
    expect(() => types.TPMA_NV.toWord({ ...types.TPMA_NV.of({}), TPM_NT: 16 })).toThrow(/TPM_NT out of range/);
  });
});
