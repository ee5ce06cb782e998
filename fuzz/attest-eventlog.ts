/**
 * Fuzzing of the TCG event-log parser and of everything that consumes its
 * output (src/attest/eventlog.ts, events.ts): random byte strings and
 * structured logs from fast-check, and mutations of the real logs in
 * test/fixtures/eventlog (bit flips, size and count fields set to edge
 * values, records cut, duplicated or retyped), go through parseEventLog;
 * whatever parses is replayed, decoded, checked and summarised. Every failure
 * must be an EventLogError (`evidence.eventlog`); anything else (TypeError,
 * RangeError, a hang, a huge allocation) is a bug.
 *
 * Used by test/attest/eventlog.test.ts (fixed seed, CI) and as a long run:
 * `npx tsx fuzz/attest-eventlog.ts --seed N --iterations M`.
 *
 * Also exports the small log encoder the tests use to build logs record by
 * record (it shares no code with the parser).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { EV, EventLogError, MAX_EVENT_SIZE, parseEventLog, replay, compareWithQuote } from '../src/attest/eventlog.js';
import { bootChain, checkEvents, decodeEvents, kernelCommandLines, secureBootState } from '../src/attest/events.js';
import { TPM_ALG } from '../src/tpm/constants.js';
import { TrustrootError } from '../src/tpm/errors.js';
import { pcrSelection } from '../src/tpm/pcr.js';
import { Prng, type FuzzStats } from './parsers.js';
import { appendRandom, duplicateRange, flipBit, isMain, overwriteByte, runStandalone, truncate } from './mutate.js';

// ---------------------------------------------------------------------------
// A record-by-record encoder (little-endian, PFP §10), for tests and structured fuzzing

export interface RawRecord {
  readonly pcrIndex: number;
  readonly eventType: number;
  /** One entry per bank; a SHA-1 log uses only the SHA-1 one. */
  readonly digests: readonly { readonly hashAlg: number; readonly digest: Uint8Array }[];
  readonly data: Uint8Array;
  /** Writes this eventSize instead of data.length (for malformed logs). */
  readonly sizeOverride?: number;
}

function u16(v: number): number[] {
  return [v & 0xff, (v >>> 8) & 0xff];
}

function u32(v: number): number[] {
  return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
}

/** TCG_PCR_EVENT: pcrIndex, eventType, the SHA-1 digest (zeros if absent), eventSize, data. */
export function encodeLegacyRecord(r: RawRecord): Uint8Array {
  const sha1 = r.digests.find((d) => d.hashAlg === TPM_ALG.SHA1)?.digest ?? new Uint8Array(20);
  return Uint8Array.from([...u32(r.pcrIndex), ...u32(r.eventType), ...sha1, ...u32(r.sizeOverride ?? r.data.length), ...r.data]);
}

/** TCG_PCR_EVENT2: pcrIndex, eventType, count, {algId, digest}×count, eventSize, data. */
export function encodeAgileRecord(r: RawRecord): Uint8Array {
  const digests = r.digests.flatMap((d) => [...u16(d.hashAlg), ...d.digest]);
  return Uint8Array.from([...u32(r.pcrIndex), ...u32(r.eventType), ...u32(r.digests.length), ...digests, ...u32(r.sizeOverride ?? r.data.length), ...r.data]);
}

/** The body of a Spec ID event (TCG_EfiSpecIDEvent) for these algorithms and sizes. */
export function specIdData(algorithms: readonly { readonly algorithmId: number; readonly digestSize: number }[], options: { versionMajor?: number; versionMinor?: number; uintnSize?: number; vendorInfo?: Uint8Array; vendorInfoSize?: number } = {}): Uint8Array {
  const vendor = options.vendorInfo ?? new Uint8Array(0);
  return Uint8Array.from([
    ...new TextEncoder().encode('Spec ID Event03\0'),
    ...u32(0),
    options.versionMinor ?? 0,
    options.versionMajor ?? 2,
    0,
    options.uintnSize ?? 2,
    ...u32(algorithms.length),
    ...algorithms.flatMap((a) => [...u16(a.algorithmId), ...u16(a.digestSize)]),
    options.vendorInfoSize ?? vendor.length,
    ...vendor,
  ]);
}

/** A whole log: a SHA-1 log of legacy records, or a crypto-agile log (Spec ID record first, then TCG_PCR_EVENT2 records). */
export function encodeLog(records: readonly RawRecord[], format: 'sha1' | 'crypto-agile', specId?: Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [];
  if (format === 'crypto-agile') {
    const algs = [...new Set(records.flatMap((r) => r.digests.map((d) => d.hashAlg)))].map((a) => ({ algorithmId: a, digestSize: records.flatMap((r) => r.digests).find((d) => d.hashAlg === a)!.digest.length }));
    parts.push(encodeLegacyRecord({ pcrIndex: 0, eventType: EV.NO_ACTION, digests: [], data: specId ?? specIdData(algs) }));
    for (const r of records) parts.push(encodeAgileRecord(r));
  } else {
    for (const r of records) parts.push(encodeLegacyRecord(r));
  }
  return concat(parts);
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// ---------------------------------------------------------------------------
// Seeds and mutations

const FIXTURES = fileURLToPath(new URL('../test/fixtures/eventlog/', import.meta.url));

/** Real logs used as mutation seeds: whole small ones, and prefixes of larger ones cut at record boundaries (small seeds keep each input fast). */
export function realSeeds(): Uint8Array[] {
  const seeds: Uint8Array[] = [];
  for (const name of ['ge-glinux-alex.bin', 'ge-arch-linux-workstation.bin', 'ga-crypto_agile_eventlog', 'ge-debian-10.bin', 'ga-sb_cert_eventlog', 'ge-cos-101-amd-sev.bin', 'ga-short_no_action_eventlog']) {
    const bytes = new Uint8Array(readFileSync(FIXTURES + name));
    const log = parseEventLog(bytes);
    for (const n of [4, 12, log.events.length]) {
      const e = log.events[Math.min(n, log.events.length) - 1]!;
      seeds.push(bytes.slice(0, e.dataOffset + e.data.length));
    }
  }
  return seeds;
}

/** Offsets of every record's fields in a log that parses, so mutations can hit size and count fields. */
function fieldOffsets(bytes: Uint8Array): number[] {
  try {
    const log = parseEventLog(bytes);
    return log.events.flatMap((e) => [e.offset, e.offset + 4, e.offset + 8, e.dataOffset - 4]);
  } catch {
    return [];
  }
}

const EDGE_U32 = [0, 1, 0xffffffff, 0x7fffffff, MAX_EVENT_SIZE, MAX_EVENT_SIZE + 1, 0x10000, 24, 23, 3, 4] as const;
const TYPES = [EV.NO_ACTION, EV.SEPARATOR, EV.EFI_ACTION, EV.EFI_VARIABLE_DRIVER_CONFIG, EV.EFI_VARIABLE_AUTHORITY, EV.EFI_BOOT_SERVICES_APPLICATION, EV.IPL, EV.EFI_GPT_EVENT, EV.EFI_HANDOFF_TABLES2, EV.EFI_PLATFORM_FIRMWARE_BLOB2, EV.POST_CODE, EV.S_CRTM_VERSION, EV.UNUSED] as const;

/** One mutation of a log: 1–4 rounds of bit flips, edge values in record fields, retyping, cuts, duplication, appends. */
export function mutateEventLog(input: Uint8Array, rng: Prng, fields: readonly number[] = fieldOffsets(input)): Uint8Array {
  let b: Uint8Array = input.slice();
  const rounds = 1 + rng.below(4);
  const put32 = (at: number, v: number): void => {
    if (at >= 0 && at + 4 <= b.length) b.set(u32(v >>> 0), at);
  };
  for (let r = 0; r < rounds; r++) {
    switch (rng.below(9)) {
      case 0:
        flipBit(b, rng);
        break;
      case 1: // a record field (pcrIndex, eventType, count or first digest bytes, eventSize) set to an edge value
        if (fields.length > 0) put32(fields[rng.below(fields.length)]!, EDGE_U32[rng.below(EDGE_U32.length)]!);
        break;
      case 2: // eventSize off by a little
        if (fields.length > 0) {
          const at = fields[rng.below(fields.length / 4) * 4 + 3]!;
          if (at + 4 <= b.length) put32(at, (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) + [1, -1, 2, -4][rng.below(4)]!);
        }
        break;
      case 3: // retype a record
        if (fields.length > 0) put32(fields[rng.below(fields.length / 4) * 4 + 1]!, TYPES[rng.below(TYPES.length)]!);
        break;
      case 4: // cut
        b = truncate(b, rng);
        break;
      case 5:
        b = duplicateRange(b, rng, 64);
        break;
      case 6:
        b = appendRandom(b, rng, 40);
        break;
      case 7: // overwrite a byte inside an event body with an interesting value
        overwriteByte(b, rng, [0x00, 0xff, 0x7f, 0x80, 0x30]);
        break;
      default: // a u64 length inside a body (variables, image loads, GPT) made huge
        if (b.length > 8) {
          const at = rng.below(b.length - 7);
          b.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, rng.below(256)], at);
        }
    }
  }
  return b;
}

// ---------------------------------------------------------------------------
// The run

/** Everything downstream of a parse, as a verifier would run it; returns the reasons of bodies that did not decode. */
function consume(bytes: Uint8Array): string[] {
  const log = parseEventLog(bytes);
  const r = replay(log);
  const decoded = decodeEvents(log);
  checkEvents(decoded);
  secureBootState(decoded);
  kernelCommandLines(decoded);
  for (const bank of log.banks) bootChain(decoded, bank);
  compareWithQuote(r, r.values, [pcrSelection(TPM_ALG.SHA256, [0, 1, 2, 3, 4, 5, 6, 7])]);
  return decoded.flatMap((d) => (d.body.kind === 'malformed' ? [d.body.error.reason] : []));
}

function record(stats: FuzzStats, input: Uint8Array, fn: () => string[]): void {
  stats.inputs++;
  try {
    for (const reason of fn()) stats.codes.set(`event body: ${reason}`, (stats.codes.get(`event body: ${reason}`) ?? 0) + 1);
    stats.parsed++;
  } catch (e) {
    if (e instanceof EventLogError) {
      stats.typedErrors++;
      stats.codes.set(e.reason, (stats.codes.get(e.reason) ?? 0) + 1);
    } else if (e instanceof TrustrootError) {
      // A typed error, but not the parser's own: count it as untyped, so the run shows it.
      stats.untypedCount++;
      if (stats.untyped.length < 20) stats.untyped.push({ input: Buffer.from(input).toString('hex').slice(0, 4096), error: `${e.code}: ${e.message}` });
    } else {
      stats.untypedCount++;
      if (stats.untyped.length < 20) stats.untyped.push({ input: Buffer.from(input).toString('hex').slice(0, 4096), error: String(e instanceof Error ? e.stack : e) });
    }
  }
}

const DIGEST_ALGS = [
  { algorithmId: TPM_ALG.SHA1, digestSize: 20 },
  { algorithmId: TPM_ALG.SHA256, digestSize: 32 },
  { algorithmId: TPM_ALG.SHA384, digestSize: 48 },
] as const;

/** Structured logs: a valid Spec ID event (or none), then records whose fields fast-check picks, sizes sometimes wrong. */
const structuredLog: fc.Arbitrary<Uint8Array> = fc
  .record({
    agile: fc.boolean(),
    algs: fc.subarray([...DIGEST_ALGS], { minLength: 1 }),
    records: fc.array(
      fc.record({
        pcrIndex: fc.oneof(fc.integer({ min: 0, max: 23 }), fc.constantFrom(24, 0xffffffff)),
        eventType: fc.oneof(fc.constantFrom(...TYPES), fc.integer({ min: 0, max: 0xffffffff })),
        data: fc.uint8Array({ minLength: 0, maxLength: 96 }),
        sizeDelta: fc.oneof(fc.constant(0), fc.constant(0), fc.constant(0), fc.integer({ min: -4, max: 4 })),
        dropDigest: fc.boolean(),
      }),
      { maxLength: 8 },
    ),
  })
  .map(({ agile, algs, records }) => {
    const raw: RawRecord[] = records.map((r) => ({
      pcrIndex: r.pcrIndex,
      eventType: r.eventType,
      digests: (r.dropDigest && algs.length > 1 ? algs.slice(1) : algs).map((a) => ({ hashAlg: a.algorithmId, digest: new Uint8Array(a.digestSize).fill(r.data.length & 0xff) })),
      data: r.data,
      sizeOverride: Math.max(0, r.data.length + r.sizeDelta),
    }));
    return agile ? encodeLog(raw, 'crypto-agile', specIdData(algs)) : encodeLog(raw, 'sha1');
  });

/**
 * Feeds `iterations` inputs (fast-check random bytes and structured logs, and
 * mutations of real logs, mixed) through the parser and its consumers;
 * returns the counts and the first untyped failures. `timeLimitMs` stops early.
 */
export function fuzzEventLog(seed: number, iterations: number, options: { timeLimitMs?: number } = {}): FuzzStats {
  const stats: FuzzStats = { inputs: 0, parsed: 0, typedErrors: 0, untypedCount: 0, untyped: [], codes: new Map() };
  const deadline = options.timeLimitMs !== undefined ? Date.now() + options.timeLimitMs : Number.POSITIVE_INFINITY;
  const seeds = realSeeds();
  const seedFields = seeds.map(fieldOffsets);
  // The seeds must parse: mutations of inputs that never get past the first record prove little.
  for (const s of seeds) record(stats, s, () => consume(s));
  const rng = new Prng(seed);
  const generated = Math.max(1, Math.floor(iterations / 4));
  const randomInputs = fc.sample(fc.oneof(fc.uint8Array({ maxLength: 200 }), structuredLog, structuredLog), { seed, numRuns: generated });
  let g = 0;
  while (stats.inputs < iterations && Date.now() < deadline) {
    let input: Uint8Array;
    if (rng.below(4) === 0 && g < randomInputs.length) {
      input = randomInputs[g++]!;
    } else {
      const k = rng.below(seeds.length);
      input = mutateEventLog(seeds[k]!, rng, seedFields[k]);
    }
    record(stats, input, () => consume(input));
  }
  return stats;
}

// A long run on its own: npx tsx fuzz/attest-eventlog.ts --seed N --iterations M (one chunk: the whole run is one seed's)
if (isMain(import.meta.url)) runStandalone('attest-eventlog', fuzzEventLog, Infinity);
