/**
 * Fuzzing of the IMA measurement-list parsers and of what consumes their
 * output (src/attest/ima.ts): random byte strings (fast-check), structured
 * lists built from random entries, and mutations of real lists (the fixtures
 * in test/fixtures/ima) go through parseImaBinary, parseImaAscii and
 * parseImaList; whatever parses is replayed (fresh and from a state),
 * re-encoded and judged against allow/deny lists. Random JSON goes through
 * checkImaReplayState. Every failure must be a typed TrustrootError; a binary
 * list that parses must re-encode to the same bytes.
 *
 * Used by test/attest/ima.test.ts (fixed seed, CI) and as a long run:
 * `npx tsx fuzz/attest-ima.ts --seed N --iterations M`.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import {
  checkImaReplayState,
  encodeImaAscii,
  encodeImaBinary,
  evaluateImaAllowlist,
  makeImaEntry,
  parseImaAscii,
  parseImaBinary,
  parseImaList,
  replayIma,
  type ImaEntry,
  type ImaEntrySpec,
} from '../src/attest/ima.js';
import { TPM_ALG } from '../src/tpm/constants.js';
import { TrustrootError } from '../src/tpm/errors.js';
import { Prng, type FuzzStats, recordInput } from './parsers.js';
import { appendRandom, duplicateRange, flipBit, isMain, overwriteByte, runStandalone, truncate } from './mutate.js';

const FIXTURES = fileURLToPath(new URL('../test/fixtures/ima/', import.meta.url));

function fixture(name: string): Uint8Array {
  return new Uint8Array(readFileSync(FIXTURES + name));
}

/** The first `n` entries of a binary list, cut at an entry boundary (small seeds keep mutation fast). */
function binaryPrefix(bytes: Uint8Array, n: number): Uint8Array {
  const list = parseImaBinary(bytes);
  const e = list.entries[Math.min(n, list.entries.length) - 1];
  return bytes.slice(0, e === undefined ? 0 : e.end);
}

function asciiPrefix(bytes: Uint8Array, lines: number): Uint8Array {
  let at = 0;
  for (let i = 0; i < lines && at < bytes.length; i++) {
    const nl = bytes.indexOf(0x0a, at);
    at = nl < 0 ? bytes.length : nl + 1;
  }
  return bytes.slice(0, at);
}

const entrySpec: fc.Arbitrary<ImaEntrySpec> = fc.record({
  template: fc.constantFrom('ima', 'ima-ng', 'ima-sig', 'ima-buf', 'ima-ngv2', 'ima-modsig', 'd-ng|n-ng|buf'),
  pcr: fc.constantFrom(10, 10, 10, 11, 0, 31),
  fileDigest: fc.oneof(
    fc.record({ algorithm: fc.constant('sha256'), digest: fc.uint8Array({ minLength: 32, maxLength: 32 }) }),
    fc.record({ algorithm: fc.constant('sha1'), digest: fc.uint8Array({ minLength: 20, maxLength: 20 }) }),
    fc.record({ algorithm: fc.constantFrom('sha512', 'md5', 'x'), digest: fc.uint8Array({ maxLength: 64 }) }),
  ),
  name: fc.oneof(fc.constantFrom('boot_aggregate', '/usr/bin/dd', '/a b/c', 'kexec-cmdline'), fc.string({ maxLength: 40 }).map((s) => `/${s.replace(/[\0\n]/g, '')}`)),
  signature: fc.uint8Array({ maxLength: 40 }),
  buffer: fc.uint8Array({ maxLength: 40 }),
  violation: fc.boolean(),
});

/** Entries the ima template can hold (20-byte digest, short name); others as generated. */
function build(spec: ImaEntrySpec, index: number, perBank: boolean): ImaEntry {
  const s: ImaEntrySpec =
    spec.template === 'ima' ? { ...spec, fileDigest: { algorithm: 'sha1', digest: new Uint8Array(20).fill(index & 0xff) } } : spec;
  return makeImaEntry({ ...s, index, ...(perBank ? { templateHashAlg: TPM_ALG.SHA256 } : {}) });
}

/** Seeds: real lists and lists built from random entries, in both forms. */
function seeds(seed: number): { bytes: Uint8Array; perBank: boolean }[] {
  const out: { bytes: Uint8Array; perBank: boolean }[] = [];
  try {
    out.push({ bytes: binaryPrefix(fixture('embrave-rpi-binary_runtime_measurements'), 6), perBank: false });
    out.push({ bytes: asciiPrefix(fixture('embrave-rpi-ascii_runtime_measurements'), 6), perBank: false });
    for (const f of ['keylime-ima-log-sha1', 'keylime-ima-log-sha256', 'keylime-ima-sig-buf']) out.push({ bytes: fixture(f), perBank: false });
  } catch {
    // Fixtures are optional for the long run; built lists remain.
  }
  const lists = fc.sample(fc.tuple(fc.array(entrySpec, { minLength: 1, maxLength: 5 }), fc.boolean()), { seed, numRuns: 40 });
  for (const [specs, perBank] of lists) {
    const entries = specs.map((s, i) => build(s, i, perBank));
    out.push({ bytes: encodeImaBinary(entries), perBank });
    try {
      out.push({ bytes: encodeImaAscii(entries), perBank });
    } catch (e) {
      if (!(e instanceof TrustrootError)) throw e;
    }
  }
  // An unknown template, in both forms.
  const unknown = makeImaEntry({ template: 'my-template', rawFields: [new Uint8Array([1, 2, 3]), new Uint8Array(0)] });
  out.push({ bytes: encodeImaBinary([unknown]), perBank: false });
  out.push({ bytes: new TextEncoder().encode(`10 ${'ab'.repeat(20)} my-template 010203 x\n`), perBank: false });
  return out;
}

const TEXT_BYTES = [0x20, 0x3a, 0x0a, 0x30, 0x67, 0x7c, 0x00, 0x2f, 0x46];

/** One mutation: bit flips, interesting bytes, LE u32 length edits, truncation, splices, text edits. */
export function mutateIma(input: Uint8Array, rng: Prng): Uint8Array {
  let b = input.slice();
  const rounds = 1 + rng.below(3);
  for (let r = 0; r < rounds; r++) {
    switch (rng.below(9)) {
      case 0:
        flipBit(b, rng);
        break;
      case 1:
        overwriteByte(b, rng, [0x00, 0xff, 0x7f, 0x80, 0x01, 0x0a]);
        break;
      case 2:
        b = truncate(b, rng);
        break;
      case 3: {
        // A little-endian u32 (a length or PCR) made huge, zero, or off by a little.
        if (b.length > 4) {
          const at = rng.below(b.length - 3);
          const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
          const v = dv.getUint32(at, true);
          dv.setUint32(at, [0xffffffff, 0, v + 1, v - 1, 0x7fffffff, v + 0x100][rng.below(6)]! >>> 0, true);
        }
        break;
      }
      case 4:
        // Text: a byte that matters to the ASCII form.
        overwriteByte(b, rng, TEXT_BYTES);
        break;
      case 5: {
        // Delete a range.
        if (b.length > 1) {
          const from = rng.below(b.length);
          const len = 1 + rng.below(Math.min(24, b.length - from));
          const n = new Uint8Array(b.length - len);
          n.set(b.subarray(0, from));
          n.set(b.subarray(from + len), from);
          b = n;
        }
        break;
      }
      case 6:
        b = duplicateRange(b, rng, 64);
        break;
      case 7:
        b = appendRandom(b, rng, 24);
        break;
      default: {
        // Swap two ranges (reorders entries or lines when they fall on boundaries).
        if (b.length > 8) {
          const len = 1 + rng.below(Math.min(48, b.length >> 1));
          const a = rng.below(b.length - 2 * len + 1);
          const c = a + len + rng.below(b.length - a - 2 * len + 1);
          const tmp = b.slice(a, a + len);
          b.copyWithin(a, c, c + len);
          b.set(tmp, c);
        }
      }
    }
  }
  return b;
}


class RoundTripError extends Error {}

/** What a parsed list goes through: replay (fresh and continued from a prefix), re-encoding, allowlist. */
function consume(entries: readonly ImaEntry[], input: Uint8Array, binary: boolean): void {
  if (binary && !Buffer.from(encodeImaBinary(entries)).equals(input)) throw new RoundTripError('binary list does not re-encode to its bytes');
  const r = replayIma(entries);
  const half = Math.floor(entries.length / 2);
  const first = replayIma(entries.slice(0, half));
  const resumed = replayIma(entries, checkImaReplayState(JSON.parse(JSON.stringify(first.state))), { quoted: r.pcrValues });
  if (r.verdict.accepted && first.verdict.accepted && !resumed.verdict.accepted && !resumed.verdict.checks.some((c) => c.reason === 'replay.not-computable')) {
    throw new RoundTripError(`a resumed replay of an accepted list fails: ${resumed.verdict.checks.filter((c) => c.outcome === 'fail').map((c) => c.reason).join(', ')}`);
  }
  evaluateImaAllowlist(entries, { allow: { '/usr/bin/dd': ['sha256:00'] }, exclude: ['/tmp/', '/a*/**'], deny: ['00'] });
  try {
    encodeImaAscii(entries);
  } catch (e) {
    if (!(e instanceof TrustrootError)) throw e;
  }
}

/**
 * Feeds `iterations` inputs through the IMA parsers with a seeded generator.
 * Round-trip failures count as untyped (they are bugs too).
 */
export function fuzzIma(seed: number, iterations: number): FuzzStats {
  const rng = new Prng(seed);
  const stats: FuzzStats = { inputs: 0, parsed: 0, typedErrors: 0, untypedCount: 0, untyped: [], codes: new Map() };
  const pool = seeds(seed);
  // The seeds themselves must parse and replay.
  for (const s of pool) {
    const opts = s.perBank ? { templateHashAlg: TPM_ALG.SHA256 } : {};
    recordInput(stats, s.bytes, () => {
      const l = parseImaList(s.bytes, opts);
      consume(l.entries, s.bytes, l.format === 'binary');
    });
  }
  const randomInputs = fc.sample(fc.uint8Array({ maxLength: 200 }), { seed, numRuns: Math.max(1, Math.floor(iterations / 4)) });
  let r = 0;
  while (stats.inputs < iterations) {
    const pick = rng.below(8);
    let input: Uint8Array;
    let perBank = false;
    if (pick === 0 && r < randomInputs.length) {
      input = randomInputs[r++]!;
    } else {
      const s = pool[rng.below(pool.length)]!;
      input = mutateIma(s.bytes, rng);
      perBank = s.perBank;
    }
    const opts = perBank ? { templateHashAlg: TPM_ALG.SHA256 } : {};
    recordInput(stats, input, () => {
      let list;
      try {
        list = parseImaBinary(input, opts);
      } catch (e) {
        if (!(e instanceof TrustrootError)) throw e;
      }
      if (list !== undefined) consume(list.entries, input, true);
      let text;
      try {
        text = parseImaAscii(input, opts);
      } catch (e) {
        if (!(e instanceof TrustrootError)) throw e;
      }
      if (text !== undefined) consume(text.entries, input, false);
      parseImaList(input, opts);
    });
    // Stored states come back from a database: random and damaged ones must be refused with a typed error.
    if (rng.below(16) === 0) {
      const junk = fc.sample(fc.jsonValue(), { seed: seed + stats.inputs, numRuns: 1 })[0];
      recordInput(stats, new TextEncoder().encode(JSON.stringify(junk) ?? ''), () => checkImaReplayState(junk));
    }
  }
  return stats;
}

// A long run on its own: npx tsx fuzz/attest-ima.ts --seed N --iterations M
if (isMain(import.meta.url)) runStandalone('attest-ima', fuzzIma, 100_000);
