/**
 * IMA measurement lists (src/attest/ima.ts) without a TPM: real lists from
 * test/fixtures/ima (sources in its README) parse in both forms, re-encode to
 * the same bytes and their template hashes recompute; every template layout;
 * typed errors with offsets for bad input; incremental replay against values
 * recomputed here with node:crypto; allow/deny findings; the fixed-seed fuzz
 * run. test/attest/corpus-ima.test.ts checks replays against swtpm quotes.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { fuzzIma } from '../../fuzz/attest-ima.js';
import {
  checkImaReplayState,
  encodeImaAscii,
  encodeImaBinary,
  evaluateImaAllowlist,
  imaPathPattern,
  makeImaEntry,
  parseImaAscii,
  parseImaBinary,
  parseImaList,
  replayIma,
  type ImaEntry,
  type ImaReplayState,
} from '../../src/attest/ima.js';
import { failures } from '../../src/attest/verdict.js';
import { TPM_ALG } from '../../src/tpm/constants.js';
import { EvidenceError } from '../../src/tpm/errors.js';

const FIXTURES = new URL('../fixtures/ima/', import.meta.url);
const bytesOf = (name: string): Uint8Array => new Uint8Array(readFileSync(new URL(name, FIXTURES)));
const textOf = (name: string): string => readFileSync(new URL(name, FIXTURES), 'latin1');

const EMBRAVE_BIN = bytesOf('embrave-rpi-binary_runtime_measurements');
const EMBRAVE_ASCII = bytesOf('embrave-rpi-ascii_runtime_measurements');

const H = (alg: string, ...parts: Uint8Array[]): Uint8Array => {
  const h = createHash(alg);
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const u32 = (v: number): Uint8Array => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v, true);
  return b;
};
const cat = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));
const ascii = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'));
const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(Buffer.from(b));

/** PCR_new = H(PCR_old ‖ d) from zeros, for each digest: computed here, independently of the module. */
function chain(alg: string, size: number, digests: readonly Uint8Array[]): Uint8Array {
  let v: Uint8Array = new Uint8Array(size);
  for (const d of digests) v = H(alg, v, d);
  return v;
}

/** The extends each kernel behaviour implies for one bank (tpm-spec-facts.md §11), computed here. */
function extendsOf(entries: readonly ImaEntry[], alg: string, size: number, behaviour: 'bank-hash' | 'padded-sha1'): Uint8Array[] {
  return entries.map((e) => {
    if (behaviour === 'bank-hash') return e.violation ? new Uint8Array(size).fill(0xff) : H(alg, e.templateData!);
    const d = new Uint8Array(size);
    d.set(e.violation ? new Uint8Array(20).fill(0xff) : e.templateHash);
    return d;
  });
}

function thrown(fn: () => unknown): EvidenceError {
  try {
    fn();
  } catch (e) {
    if (e instanceof EvidenceError) return e;
    throw new Error(`expected an EvidenceError, got ${String(e)}`);
  }
  throw new Error('expected an EvidenceError, nothing was thrown');
}

function quotedOf(values: Record<number, Record<number, Uint8Array>>): Map<number, Map<number, Uint8Array>> {
  return new Map(Object.entries(values).map(([bank, pcrs]) => [Number(bank), new Map(Object.entries(pcrs).map(([p, v]) => [Number(p), v]))]));
}

describe('real IMA lists', () => {
  const bin = parseImaBinary(EMBRAVE_BIN);
  const txt = parseImaAscii(EMBRAVE_ASCII);

  it('the Raspberry Pi list (embrave) reads the same in its binary and ASCII forms, and every template hash is SHA-1 of the template data', () => {
    const lines = textOf('embrave-rpi-ascii_runtime_measurements').split('\n').filter((l) => l.length > 0);
    expect(bin.format).toBe('binary');
    expect(txt.format).toBe('ascii');
    expect(bin.entries.length).toBe(lines.length);
    expect(txt.entries.length).toBe(lines.length);
    bin.entries.forEach((e, i) => {
      const t = txt.entries[i]!;
      expect([e.index, e.pcr, e.template, e.name, e.fileDigest?.algorithm]).toEqual([i, t.pcr, t.template, t.name, t.fileDigest?.algorithm]);
      expect(same(e.templateHash, t.templateHash)).toBe(true);
      expect(same(e.templateData!, t.templateData!)).toBe(true);
      expect(same(e.fileDigest!.digest, t.fileDigest!.digest)).toBe(true);
      // The line's own fields: "<pcr> <template hash> <template> <alg>:<digest> <path>".
      const [pcr, th, template, digest, ...path] = lines[i]!.split(' ');
      expect([String(e.pcr), hex(e.templateHash), e.template, `${e.fileDigest!.algorithm}:${hex(e.fileDigest!.digest)}`, e.name]).toEqual([pcr, th, template, digest, path.join(' ')]);
      expect(hex(H('sha1', e.templateData!))).toBe(th);
    });
    expect(bin.entries[0]!.name).toBe('boot_aggregate');
    // Offsets chain: each entry starts where the previous one ended.
    bin.entries.forEach((e, i) => expect(e.offset).toBe(i === 0 ? 0 : bin.entries[i - 1]!.end));
    expect(bin.end).toBe(EMBRAVE_BIN.length);
    expect(txt.end).toBe(EMBRAVE_ASCII.length);
  });

  it('re-encodes both forms to the very bytes of the kernel files, also across forms', () => {
    expect(same(encodeImaBinary(bin.entries), EMBRAVE_BIN)).toBe(true);
    expect(same(encodeImaAscii(txt.entries), EMBRAVE_ASCII)).toBe(true);
    expect(same(encodeImaBinary(txt.entries), EMBRAVE_BIN)).toBe(true);
    expect(same(encodeImaAscii(bin.entries), EMBRAVE_ASCII)).toBe(true);
  });

  it('parseImaList tells the forms apart, from bytes and from a string', () => {
    expect(parseImaList(EMBRAVE_BIN).format).toBe('binary');
    expect(parseImaList(EMBRAVE_ASCII).format).toBe('ascii');
    expect(parseImaList(textOf('keylime-ima-log-sha256')).format).toBe('ascii');
    expect(parseImaList(new Uint8Array(0)).entries).toEqual([]);
  });

  it.each(['sha1', 'sha256', 'sha384', 'sha512'])('keylime ima-log-%s: digests in the named hash, template hashes recompute, zero template hashes are violations', (alg) => {
    const text = textOf(`keylime-ima-log-${alg}`);
    const list = parseImaAscii(text);
    const lines = text.split('\n').filter((l) => l.length > 0);
    expect(list.entries.length).toBe(lines.length);
    for (const [i, e] of list.entries.entries()) {
      expect(e.fileDigest!.algorithm).toBe(alg);
      expect(e.violation).toBe(/^10 0{40} /.test(lines[i]!));
      if (!e.violation) expect(same(H('sha1', e.templateData!), e.templateHash)).toBe(true);
    }
    const r = replayIma(list.entries);
    expect(r.verdict.checks.find((c) => c.check === 'ima.template-hash')!.reason).toBe('template-hash.valid');
  });

  it('keylime ima-sig and ima-buf lines: empty and real signatures, a keyring certificate, template hashes recompute', () => {
    const raw = bytesOf('keylime-ima-sig-buf');
    const list = parseImaAscii(raw);
    const lines = Buffer.from(raw).toString('latin1').split('\n').filter((l) => l.length > 0);
    for (const [i, e] of list.entries.entries()) {
      expect(same(H('sha1', e.templateData!), e.templateHash)).toBe(true);
      if (e.template === 'ima-sig') {
        // ima-sig with no signature ends in a space: the empty third field.
        expect(e.signature!.length === 0).toBe(lines[i]!.endsWith(' '));
        if (e.signature!.length > 0) expect(e.signature![0]).toBe(0x03); // signature_v2_hdr type EVM_IMA_XATTR_DIGSIG
      }
    }
    const buf = list.entries.find((e) => e.template === 'ima-buf')!;
    expect(buf.name).toBe('.ima');
    // The measured buffer is the DER certificate loaded onto the .ima keyring, and its digest is the buffer's SHA-256.
    expect(() => new X509Certificate(Buffer.from(buf.buffer!))).not.toThrow();
    expect(same(buf.fileDigest!.digest, H('sha256', buf.buffer!))).toBe(true);
    expect(same(encodeImaAscii(list.entries), raw)).toBe(true);
  });
});

describe('templates', () => {
  const digest20 = new Uint8Array(20).map((_, i) => i + 1);
  const digest32 = H('sha256', ascii('file'));

  it('ima: the binary form lists the digest without a length and the name without padding; the hash covers the name padded to 256', () => {
    const e = makeImaEntry({ template: 'ima', fileDigest: { algorithm: 'sha1', digest: digest20 }, name: '/sbin/init' });
    const name = ascii('/sbin/init');
    const padded = new Uint8Array(256);
    padded.set(name);
    expect(hex(e.templateHash)).toBe(hex(H('sha1', digest20, padded)));
    const bin = encodeImaBinary([e]);
    expect(hex(bin)).toBe(hex(cat(u32(10), e.templateHash, u32(3), ascii('ima'), digest20, u32(name.length), name)));
    const back = parseImaBinary(bin).entries[0]!;
    expect([back.template, back.name, back.fileDigest?.algorithm]).toEqual(['ima', '/sbin/init', 'sha1']);
    expect(same(back.templateData!, cat(digest20, padded))).toBe(true);
    const line = `10 ${hex(e.templateHash)} ima ${hex(digest20)} /sbin/init\n`;
    expect(Buffer.from(encodeImaAscii([e])).toString('latin1')).toBe(line);
    expect(same(parseImaAscii(line).entries[0]!.templateData!, back.templateData!)).toBe(true);
  });

  it('ima-ng: d-ng is "<alg>:\\0<digest>", n-ng ends in NUL; paths with spaces (older kernels) read from the ASCII form', () => {
    const path = '/opt/my app/run me';
    const dng = cat(ascii('sha256:'), new Uint8Array(1), digest32);
    const nng = cat(ascii(path), new Uint8Array(1));
    const data = cat(u32(dng.length), dng, u32(nng.length), nng);
    const line = `10 ${hex(H('sha1', data))} ima-ng sha256:${hex(digest32)} ${path}`;
    const e = parseImaAscii(line).entries[0]!;
    expect(e.name).toBe(path);
    expect(same(e.templateData!, data)).toBe(true);
    expect(failures(replayIma([e]).verdict)).toEqual([]);
    expect(same(makeImaEntry({ fileDigest: { algorithm: 'sha256', digest: digest32 }, name: path }).templateData!, data)).toBe(true);
  });

  it('ima-sig: an empty signature leaves a trailing space; a signature is hex; both survive paths with spaces', () => {
    const sig = new Uint8Array([3, 2, 4, 0xaa, 0xbb]);
    for (const signature of [new Uint8Array(0), sig]) {
      const e = makeImaEntry({ template: 'ima-sig', fileDigest: { algorithm: 'sha256', digest: digest32 }, name: '/a b', signature });
      const text = Buffer.from(encodeImaAscii([e])).toString('latin1');
      expect(text.endsWith(signature.length === 0 ? '/a b \n' : `/a b ${hex(sig)}\n`)).toBe(true);
      const back = parseImaAscii(text).entries[0]!;
      expect([back.name, hex(back.signature!)]).toEqual(['/a b', hex(signature)]);
      expect(same(back.templateHash, e.templateHash)).toBe(true);
    }
  });

  it('ima-buf, ima-ngv2 and custom format strings as template names', () => {
    const buf = makeImaEntry({ template: 'ima-buf', fileDigest: { algorithm: 'sha256', digest: H('sha256', ascii('root=/dev/sda')) }, name: 'kexec-cmdline', buffer: ascii('root=/dev/sda') });
    const v2 = makeImaEntry({ template: 'ima-ngv2', fileDigest: { algorithm: 'sha256', digest: digest32, type: 'verity' }, name: '/usr/bin/x' });
    const custom = makeImaEntry({ template: 'd-ng|n-ng|buf', fileDigest: { algorithm: 'sha512', digest: H('sha512', ascii('b')) }, name: 'label', buffer: ascii('b') });
    for (const list of [parseImaBinary(encodeImaBinary([buf, v2, custom])), parseImaAscii(encodeImaAscii([buf, v2, custom]))]) {
      const [a, b, c] = list.entries;
      expect(Buffer.from(a!.buffer!).toString()).toBe('root=/dev/sda');
      expect(b!.fileDigest).toMatchObject({ algorithm: 'sha256', type: 'verity' });
      expect(hex(b!.fields[0]!.data!.subarray(0, 12))).toBe(hex(cat(ascii('verity:sha25'))));
      expect([c!.template, c!.fields.map((f) => f.id), c!.fileDigest!.algorithm]).toEqual(['d-ng|n-ng|buf', ['d-ng', 'n-ng', 'buf'], 'sha512']);
      expect(failures(replayIma(list.entries).verdict)).toEqual([]);
    }
  });

  it('unknown templates keep their raw fields: binary ones still check their template hash; ASCII ones cannot and say so', () => {
    const e = makeImaEntry({ template: 'ima-dep-cgn', rawFields: [ascii('swapper/0\0'), ascii('/'), new Uint8Array([9, 9])] });
    const bin = parseImaBinary(encodeImaBinary([e])).entries[0]!;
    expect(bin.fields.map((f) => [f.id, hex(f.data!)])).toEqual([
      [undefined, hex(ascii('swapper/0\0'))],
      [undefined, hex(ascii('/'))],
      [undefined, '0909'],
    ]);
    expect(bin.fileDigest).toBeUndefined();
    expect(failures(replayIma([bin]).verdict)).toEqual([]);
    const line = `10 ${hex(e.templateHash)} ima-dep-cgn swapper/0:swapper/0 / 0909`;
    const txt = parseImaAscii(line).entries[0]!;
    expect(txt.templateData).toBeUndefined();
    expect(txt.fields.map((f) => f.text)).toEqual(['swapper/0:swapper/0', '/', '0909']);
    const r = replayIma([txt], undefined, { banks: [TPM_ALG.SHA1, TPM_ALG.SHA256] });
    expect(r.verdict.checks.find((c) => c.check === 'ima.template-hash')!.reason).toBe('template-hash.not-computable');
    // SHA-1 still replays from the listed hash (both behaviours); SHA-256 only as padded SHA-1.
    expect(hex(r.pcrValues.get(TPM_ALG.SHA1)!.get(10)!)).toBe(hex(chain('sha1', 20, [e.templateHash])));
    expect(hex(r.pcrValues.get(TPM_ALG.SHA256)!.get(10)!)).toBe(hex(chain('sha256', 32, extendsOf([e], 'sha256', 32, 'padded-sha1'))));
    expect(Buffer.from(encodeImaAscii([txt])).toString('latin1')).toBe(`${line}\n`);
  });

  it('per-bank lists (binary_runtime_measurements_sha256) carry bank-sized template hashes', () => {
    const entries = [0, 1, 2].map((i) => makeImaEntry({ index: i, fileDigest: { algorithm: 'sha256', digest: H('sha256', u32(i)) }, name: `/f${i}`, templateHashAlg: TPM_ALG.SHA256 }));
    const bin = encodeImaBinary(entries);
    const list = parseImaBinary(bin, { templateHashAlg: TPM_ALG.SHA256 });
    expect(list.entries.map((e) => hex(e.templateHash))).toEqual(entries.map((e) => hex(H('sha256', e.templateData!))));
    expect(thrown(() => parseImaBinary(bin)).code).toBe('evidence.ima');
    const txt = parseImaAscii(encodeImaAscii(entries), { templateHashAlg: TPM_ALG.SHA256 });
    expect(failures(replayIma(txt.entries).verdict)).toEqual([]);
    // The padded-SHA-1 behaviour needs SHA-1 template hashes: computed from the template data.
    const r = replayIma(list.entries, undefined, { banks: [TPM_ALG.SHA256], behaviour: 'padded-sha1' });
    const sha1s = entries.map((e) => H('sha1', e.templateData!));
    expect(hex(r.pcrValues.get(TPM_ALG.SHA256)!.get(10)!)).toBe(hex(chain('sha256', 32, sha1s.map((d) => cat(d, new Uint8Array(12))))));
  });
});

describe('bad input: typed errors with where it failed', () => {
  const three = EMBRAVE_BIN.subarray(0, parseImaBinary(EMBRAVE_BIN).entries[2]!.end);
  const ends = parseImaBinary(three).entries.map((e) => e.end);

  it('a binary list cut anywhere parses up to an entry boundary, or fails inside the entry that was cut', () => {
    for (let cut = 1; cut < three.length; cut++) {
      const part = three.subarray(0, cut);
      if (ends.includes(cut)) {
        expect(parseImaBinary(part).entries.length).toBe(ends.indexOf(cut) + 1);
        continue;
      }
      const err = thrown(() => parseImaBinary(part));
      const start = [0, ...ends].filter((s) => s < cut).pop()!;
      expect(err.code).toBe('evidence.ima');
      expect(err.offset).toBeGreaterThanOrEqual(start);
      expect(err.offset).toBeLessThanOrEqual(cut);
    }
  });

  it('offsets count from baseOffset, indices from firstIndex', () => {
    const list = parseImaBinary(three, { firstIndex: 40, baseOffset: 1000 });
    expect(list.entries.map((e) => [e.index, e.offset])).toEqual([
      [40, 1000],
      [41, 1000 + ends[0]!],
      [42, 1000 + ends[1]!],
    ]);
    expect(thrown(() => parseImaBinary(three.subarray(0, ends[1]! + 10), { baseOffset: 1000 })).offset).toBeGreaterThanOrEqual(1000 + ends[1]!);
  });

  it('refuses out-of-range headers and template data that does not split into its fields', () => {
    const e = makeImaEntry({ fileDigest: { algorithm: 'sha256', digest: new Uint8Array(32) }, name: '/x' });
    const good = encodeImaBinary([e]);
    const edit = (at: number, v: number): Uint8Array => {
      const b = good.slice();
      new DataView(b.buffer).setUint32(at, v, true);
      return b;
    };
    const nameLenAt = 4 + 20;
    const dataLenAt = nameLenAt + 4 + 'ima-ng'.length;
    const cases: [Uint8Array, number][] = [
      [edit(0, 32), 0], // PCR beyond any TPM
      [edit(nameLenAt, 0), nameLenAt], // empty template name
      [edit(nameLenAt, 4096), nameLenAt], // template name length beyond the limit
      [edit(dataLenAt, 0xffffffff), dataLenAt + 4], // template data beyond the list
      [edit(dataLenAt + 4, 0xfffffff0), dataLenAt + 4], // first field beyond the template data
      [edit(dataLenAt, 0), dataLenAt + 4], // empty template data
    ];
    for (const [bytes, offset] of cases) {
      const err = thrown(() => parseImaBinary(bytes));
      expect([err.code, err.offset]).toEqual(['evidence.ima', offset]);
    }
    // A known template with the wrong number of fields.
    const oneField = cat(u32(10), new Uint8Array(20), u32(6), ascii('ima-ng'), u32(8), u32(4), ascii('abcd'));
    expect(thrown(() => parseImaBinary(oneField)).message).toMatch(/ima-ng has 2 fields, the data holds 1/);
    // A d-ng field without its "<alg>:\0" prefix.
    const noPrefix = cat(u32(10), new Uint8Array(20), u32(6), ascii('ima-ng'), u32(16), u32(4), ascii('abcd'), u32(4), ascii('/x\0\0'));
    expect(thrown(() => parseImaBinary(noPrefix)).message).toMatch(/d-ng field/);
  });

  it('ASCII errors carry the line number', () => {
    const good = `10 ${'a'.repeat(40)} ima-ng sha256:${'b'.repeat(64)} /x`;
    const cases: [string, RegExp][] = [
      [`${good}\n10 ${'a'.repeat(39)}z ima-ng sha256:00 /x`, /template hash/],
      [`${good}\nten ${'a'.repeat(40)} ima-ng sha256:00 /x`, /PCR index/],
      [`${good}\n32 ${'a'.repeat(40)} ima-ng sha256:00 /x`, /PCR 32/],
      [`${good}\n10 ${'a'.repeat(40)} ima-ng`, /no template fields/],
      [`${good}\n10 ${'a'.repeat(40)} ima-ng sha256:0`, /needs 2 fields|does not read/],
      [`${good}\n10 ${'a'.repeat(40)} ima-ng sha256:0g /x`, /d-ng/],
      [`${good}\n10 ${'a'.repeat(40)} ima-ng 00 /x`, /d-ng/],
      [`${good}\n10 ${'a'.repeat(40)} ima-sig sha256:00 /x 0`, /sig/],
      [`${good}\n10 ${'a'.repeat(40)} ima-ng sha256:00 /x\0y`, /NUL/],
      [`${good}\n\n${good}`, /PCR index/],
    ];
    for (const [text, message] of cases) {
      const err = thrown(() => parseImaAscii(text));
      expect([err.code, err.offset]).toEqual(['evidence.ima', 2]);
      expect(err.message).toMatch(message);
    }
  });

  it('bad arguments are evidence.argument', () => {
    expect(thrown(() => parseImaBinary(EMBRAVE_BIN, { templateHashAlg: 0x9999 })).code).toBe('evidence.argument');
    expect(thrown(() => parseImaBinary(EMBRAVE_BIN, { firstIndex: -1 })).code).toBe('evidence.argument');
    expect(thrown(() => parseImaBinary('x' as unknown as Uint8Array)).code).toBe('evidence.argument');
    expect(thrown(() => replayIma({} as unknown as ImaEntry[])).code).toBe('evidence.argument');
    expect(thrown(() => replayIma([], undefined, { quoted: new Map([[TPM_ALG.SHA256, new Map([[10, new Uint8Array(20)]])]]) })).code).toBe('evidence.argument');
  });
});

describe('replay', () => {
  const entries = parseImaBinary(EMBRAVE_BIN).entries;
  const sha1Values = chain('sha1', 20, entries.map((e) => e.templateHash));
  const bankHash256 = chain('sha256', 32, extendsOf(entries, 'sha256', 32, 'bank-hash'));
  const padded256 = chain('sha256', 32, extendsOf(entries, 'sha256', 32, 'padded-sha1'));

  it('without a quote: replays every entry, reports the values, and says the quote check was not performed', () => {
    const r = replayIma(entries);
    expect(r.verdict.accepted).toBe(true);
    expect(r.verdict.checks.find((c) => c.check === 'ima.replay')).toMatchObject({ outcome: 'not-performed', reason: 'replay.no-quote' });
    expect(hex(r.pcrValues.get(TPM_ALG.SHA1)!.get(10)!)).toBe(hex(sha1Values));
    expect(hex(r.pcrValues.get(TPM_ALG.SHA256)!.get(10)!)).toBe(hex(bankHash256));
    expect(r.state.pcrs['10']!['sha256']).toEqual({ 'bank-hash': hex(bankHash256), 'padded-sha1': hex(padded256) });
    expect([r.state.entryIndex, r.state.byteOffset, r.covered.length, r.kernel]).toEqual([entries.length, EMBRAVE_BIN.length, entries.length, 'undetermined']);
  });

  it.each([
    ['bank-hash', '5.8+', 'kernel.since-5.8'],
    ['padded-sha1', 'pre-5.8', 'kernel.before-5.8'],
  ] as const)('a quote of %s values decides the kernel (%s) and the state keeps only that behaviour', (behaviour, kernel, reason) => {
    const quoted = quotedOf({ [TPM_ALG.SHA1]: { 10: sha1Values }, [TPM_ALG.SHA256]: { 10: behaviour === 'bank-hash' ? bankHash256 : padded256 } });
    const r = replayIma(entries, undefined, { quoted });
    expect(failures(r.verdict)).toEqual([]);
    expect(r.verdict.checks.map((c) => c.reason)).toEqual(['sequence.ok', 'template-hash.valid', 'replay.match', 'violations.none', reason]);
    expect([r.kernel, r.behaviour]).toEqual([kernel, { sha1: 'either', sha256: behaviour }]);
    expect(Object.keys(r.state.pcrs['10']!['sha256']!)).toEqual([behaviour]);
    expect(r.state.behaviour).toEqual({ sha256: behaviour });
  });

  it('continues from a state that went through JSON, batch by batch, to the same result as one pass', () => {
    const quotedAll = quotedOf({ [TPM_ALG.SHA1]: { 10: sha1Values }, [TPM_ALG.SHA256]: { 10: bankHash256 } });
    const once = replayIma(entries, undefined, { quoted: quotedAll });
    let state: ImaReplayState | undefined;
    for (const [from, to] of [
      [0, 100],
      [100, 500],
      [500, entries.length],
    ] as const) {
      const batch = parseImaBinary(EMBRAVE_BIN.subarray(entries[from]!.offset), { firstIndex: from, baseOffset: entries[from]!.offset }).entries.slice(0, to - from);
      const q = quotedOf({
        [TPM_ALG.SHA1]: { 10: chain('sha1', 20, entries.slice(0, to).map((e) => e.templateHash)) },
        [TPM_ALG.SHA256]: { 10: chain('sha256', 32, extendsOf(entries.slice(0, to), 'sha256', 32, 'bank-hash')) },
      });
      const r = replayIma(batch, state === undefined ? undefined : checkImaReplayState(JSON.parse(JSON.stringify(state))), { quoted: q });
      expect(failures(r.verdict)).toEqual([]);
      expect(r.covered.map((e) => e.index)).toEqual(batch.map((e) => e.index));
      expect(r.state.byteOffset).toBe(entries[to - 1]!.end);
      state = r.state;
    }
    expect(state).toEqual(once.state);
  });

  it('violations extend 0xFF of the bank size (5.8+) or 20 bytes of 0xFF zero-padded (before 5.8)', () => {
    const list = [
      makeImaEntry({ index: 0, fileDigest: { algorithm: 'sha256', digest: H('sha256', ascii('a')) }, name: '/a' }),
      makeImaEntry({ index: 1, violation: true, fileDigest: { algorithm: 'sha256', digest: new Uint8Array(32) }, name: '/var/log/open-writers' }),
    ];
    for (const behaviour of ['bank-hash', 'padded-sha1'] as const) {
      const v = chain('sha256', 32, extendsOf(list, 'sha256', 32, behaviour));
      const r = replayIma(list, undefined, { quoted: quotedOf({ [TPM_ALG.SHA256]: { 10: v } }) });
      expect(failures(r.verdict)).toEqual([]);
      expect(r.behaviour).toEqual({ sha256: behaviour });
      expect(r.verdict.checks.find((c) => c.check === 'ima.violations')).toMatchObject({ outcome: 'warn', reason: 'violations.present' });
      expect(r.violations).toBe(1);
    }
  });

  it('entries for other PCRs are replayed per PCR; a PCR the quote leaves out is a warning', () => {
    const list = [10, 11, 10].map((pcr, i) => makeImaEntry({ index: i, pcr, fileDigest: { algorithm: 'sha256', digest: H('sha256', u32(i)) }, name: `/p${i}` }));
    const v10 = chain('sha1', 20, [list[0]!.templateHash, list[2]!.templateHash]);
    const v11 = chain('sha1', 20, [list[1]!.templateHash]);
    const both = replayIma(list, undefined, { quoted: quotedOf({ [TPM_ALG.SHA1]: { 10: v10, 11: v11 } }) });
    expect(failures(both.verdict)).toEqual([]);
    expect(both.verdict.checks.map((c) => c.reason)).toContain('replay.match');
    const only10 = replayIma(list, undefined, { quoted: quotedOf({ [TPM_ALG.SHA1]: { 10: v10 } }) });
    expect(only10.verdict.checks.filter((c) => c.outcome === 'warn').map((c) => c.reason)).toEqual(['replay.pcr-not-quoted']);
  });

  it('a quoted bank the state does not track is not performed, never passed', () => {
    const first = replayIma(entries.slice(0, 5), undefined, { banks: [TPM_ALG.SHA1] });
    const r = replayIma(entries.slice(5, 10), first.state, { quoted: quotedOf({ [TPM_ALG.SHA256]: { 10: bankHash256 } }) });
    expect(r.verdict.checks.filter((c) => c.check === 'ima.replay').map((c) => [c.outcome, c.reason])).toEqual([
      ['not-performed', 'replay.bank-not-tracked'],
      ['not-performed', 'replay.pcr-not-quoted'],
    ]);
    expect(r.state).toBe(first.state);
    expect(r.covered).toEqual([]);
  });

  it('a resend older than the remembered window is skipped with a warning, never extended twice', () => {
    const a = replayIma(entries.slice(0, 50), undefined, { window: 8 });
    expect(a.state.recent.length).toBe(8);
    const r = replayIma(entries.slice(20, 60), a.state, { window: 8, quoted: quotedOf({ [TPM_ALG.SHA1]: { 10: chain('sha1', 20, entries.slice(0, 60).map((e) => e.templateHash)) } }) });
    expect(r.verdict.checks.find((c) => c.check === 'ima.sequence')).toMatchObject({ outcome: 'warn', reason: 'resend.unverified' });
    expect([r.skipped, r.covered.length, r.state.entryIndex]).toEqual([30, 10, 60]);
  });

  it('refuses stored states that are not what it wrote', () => {
    const good = JSON.parse(JSON.stringify(replayIma(entries.slice(0, 3)).state)) as Record<string, unknown>;
    expect(checkImaReplayState(good)).toEqual(good);
    const bad: unknown[] = [
      null,
      [],
      { ...good, version: 2 },
      { ...good, entryIndex: -1 },
      { ...good, entryIndex: 1.5 },
      { ...good, banks: ['md5'] },
      { ...good, banks: [] },
      { ...good, behaviour: { sha256: 'guess' } },
      { ...good, pcrs: { 10: { sha256: { 'bank-hash': 'ab' } } } },
      { ...good, pcrs: { 99: {} } },
      { ...good, pcrs: { 10: { sha384: {} } } },
      { ...good, recent: ['zz'] },
      { ...good, recent: ['00', '00', '00', '00'] },
      { ...good, byteOffset: 'x' },
    ];
    for (const b of bad) expect(thrown(() => checkImaReplayState(b)).code).toBe('evidence.argument');
  });
});

describe('allowlist and denylist findings', () => {
  const entries = parseImaBinary(EMBRAVE_BIN).entries.slice(0, 40);
  const key = (e: ImaEntry): string => `${e.fileDigest!.algorithm}:${hex(e.fileDigest!.digest)}`;

  it('judges each entry: allowed, not allowed, not listed, excluded, denied (even when excluded), violation', () => {
    const byName = (name: string): ImaEntry => entries.find((e) => e.name === name)!;
    const boot = byName('boot_aggregate');
    const systemd = byName('/usr/lib/systemd/systemd');
    const ld = byName('/usr/lib/arm-linux-gnueabihf/ld-2.31.so');
    const preload = byName('/etc/ld.so.preload');
    const violation = makeImaEntry({ index: 99, violation: true, fileDigest: { algorithm: 'sha256', digest: new Uint8Array(32) }, name: '/etc/x' });
    const deniedButExcluded = makeImaEntry({ index: 100, fileDigest: systemd.fileDigest!, name: '/etc/evil' });
    const unlisted = entries.find((e) => e.name!.startsWith('/usr/') && e !== systemd && e !== ld)!;
    const findings = evaluateImaAllowlist([boot, systemd, ld, preload, deniedButExcluded, unlisted, violation], {
      allow: {
        boot_aggregate: [key(boot)],
        [systemd.name!]: [key(systemd)],
        [ld.name!]: [`sha256:${'00'.repeat(32)}`, hex(ld.fileDigest!.digest).slice(2).padStart(64, '0')],
      },
      exclude: ['/etc/'],
      deny: [hex(systemd.fileDigest!.digest).toUpperCase()], // bare hex, any case: wins over the allowlist and the exclusion
    });
    expect(findings.map((f) => [f.index, f.reason, f.ok])).toEqual([
      [boot.index, 'digest.allowed', true],
      [systemd.index, 'digest.denied', false],
      [ld.index, 'digest.not-allowed', false],
      [preload.index, 'path.excluded', true],
      [100, 'digest.denied', false],
      [unlisted.index, 'path.not-listed', false],
      [99, 'entry.violation', false],
    ]);
    expect(findings[0]).toMatchObject({ name: 'boot_aggregate', digest: key(boot) });
    // Without an allowlist only the denylist speaks; digests match with or without their algorithm.
    expect(evaluateImaAllowlist([boot, ld], { deny: [key(ld)] }).map((f) => f.reason)).toEqual(['digest.not-denied', 'digest.denied']);
    expect(evaluateImaAllowlist([ld], { deny: [`sha1:${hex(ld.fileDigest!.digest)}`] }).map((f) => f.reason)).toEqual(['digest.not-denied']);
  });

  it('globs: * within a segment, ** across, ? one character; plain patterns are prefixes', () => {
    const cases: [string, string, boolean][] = [
      ['/usr/lib/*.so', '/usr/lib/libc.so', true],
      ['/usr/lib/*.so', '/usr/lib/x/libc.so', false],
      ['/usr/**/*.so', '/usr/lib/arm-linux-gnueabihf/libc.so', true],
      ['/usr/**', '/usr/bin/dd', true],
      ['/usr/bin/d?', '/usr/bin/dd', true],
      ['/usr/bin/d?', '/usr/bin/d/', false],
      ['/etc/', '/etc/ld.so.preload', true],
      ['/etc/', '/etcetera', false],
      ['**', '/anything/at/all', true],
    ];
    for (const [pattern, path, expected] of cases) expect([pattern, path, imaPathPattern(pattern)(path)]).toEqual([pattern, path, expected]);
  });

  // Hang guard, and the test's timeout is the whole check: the state-set matcher is linear in the path
  // (times the pattern), a backtracking one would take 4000^10 steps here.
  it('no backtracking blow-up on a hostile glob', () => {
    expect(imaPathPattern('*a*a*a*a*a*a*a*a*a*a*b')('a'.repeat(4000))).toBe(false);
  }, 15_000);

  it('refuses malformed lists with evidence.argument', () => {
    expect(thrown(() => evaluateImaAllowlist(entries, { deny: ['sha256:xyz'] })).code).toBe('evidence.argument');
    expect(thrown(() => evaluateImaAllowlist(entries, { exclude: [''] })).code).toBe('evidence.argument');
    expect(thrown(() => evaluateImaAllowlist(entries, { allow: { '/x': 'ab' as unknown as string[] } })).code).toBe('evidence.argument');
  });
});

describe('fuzzing (fixed seed)', () => {
  it('20,000 random, built and mutated real lists: only typed errors, binary lists re-encode exactly', () => {
    const stats = fuzzIma(20261129, 20_000);
    expect(stats.untyped).toEqual([]);
    expect(stats.inputs).toBeGreaterThanOrEqual(20_000);
    // The fuzzer reaches past the header: many inputs parse, many fail deep inside.
    expect(stats.parsed).toBeGreaterThan(1000);
    expect(stats.codes.get('evidence.ima') ?? 0).toBeGreaterThan(1000);
  });
});
