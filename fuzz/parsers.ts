/**
 * Fuzzing of the command and response parsers: random byte strings and
 * mutations of valid commands and responses (generated from the schema) go
 * through parseCommand and parseResponse. Every failure must be a typed
 * TrustrootError; anything else (TypeError, RangeError, a hang) is a bug.
 *
 * Used by test/tpm/fuzz.test.ts (fixed seed, CI) and fuzz/run.ts (long run,
 * random seed that it prints).
 */
import fc from 'fast-check';
import { ALL_COMMANDS } from '../src/tpm/commands/index.js';
import type { AnyCommand } from '../src/tpm/command.js';
import { TrustrootError } from '../src/tpm/errors.js';
import { encodeCommand, encodeResponse, parseCommand, parseResponse } from '../src/tpm/frame.js';
import { TPMS_AUTH_COMMAND, TPMS_AUTH_RESPONSE } from '../src/tpm/types/index.js';
import { arbitraryOf } from '../test/support/arbitrary.js';
import { appendRandom, duplicateRange, flipBit, overwriteByte, truncate } from './mutate.js';

/** xorshift128+: a small, fast, seedable generator; fuzzing needs repeatability, not secrecy. */
export class Prng {
  private s0: bigint;
  private s1: bigint;
  constructor(seed: number) {
    this.s0 = BigInt.asUintN(64, BigInt(seed) * 0x9e3779b97f4a7c15n + 1n);
    this.s1 = BigInt.asUintN(64, (BigInt(seed) ^ 0x5deece66dn) * 0xbf58476d1ce4e5b9n + 7n);
    for (let i = 0; i < 8; i++) this.next32();
  }
  next32(): number {
    let s1 = this.s0;
    const s0 = this.s1;
    this.s0 = s0;
    s1 ^= BigInt.asUintN(64, s1 << 23n);
    s1 ^= s1 >> 17n;
    s1 ^= s0 ^ (s0 >> 26n);
    this.s1 = s1;
    return Number(BigInt.asUintN(32, this.s0 + this.s1));
  }
  below(n: number): number {
    return this.next32() % n;
  }
}

interface Seed {
  readonly command: AnyCommand;
  readonly bytes: Uint8Array;
  readonly sessionCount: number;
  readonly direction: 'command' | 'response';
}

/** Valid commands and responses of every declared command, as mutation seeds. */
export function validSeeds(perCommand: number, seed: number): Seed[] {
  const out: Seed[] = [];
  const authCmd = arbitraryOf(TPMS_AUTH_COMMAND, { maxBytes: 8 });
  const authRsp = arbitraryOf(TPMS_AUTH_RESPONSE, { maxBytes: 8 });
  ALL_COMMANDS.forEach((cmd, i) => {
    const handles = fc.tuple(...cmd.handleNames.map((n) => arbitraryOf(cmd.handles[n]!.codec)));
    const rhandles = fc.tuple(...cmd.responseHandleNames.map((n) => arbitraryOf(cmd.responseHandles[n]!)));
    const cmdArb = fc.tuple(handles, arbitraryOf(cmd.paramsCodec, { maxBytes: 24, maxItems: 2 }), fc.array(authCmd, { maxLength: 3 }));
    const rspArb = fc.tuple(rhandles, arbitraryOf(cmd.responseCodec, { maxBytes: 24, maxItems: 2 }), fc.array(authRsp, { maxLength: 3 }));
    for (const [h, p, sessions] of fc.sample(cmdArb, { numRuns: perCommand, seed: seed + i })) {
      const hv: Record<string, number> = {};
      cmd.handleNames.forEach((n, k) => (hv[n] = h[k] as number));
      out.push({ command: cmd, bytes: encodeCommand(cmd, hv as never, p as never, { sessions }), sessionCount: sessions.length, direction: 'command' });
    }
    for (const [h, p, sessions] of fc.sample(rspArb, { numRuns: perCommand, seed: seed + 7919 + i })) {
      const hv: Record<string, number> = {};
      cmd.responseHandleNames.forEach((n, k) => (hv[n] = h[k] as number));
      out.push({ command: cmd, bytes: encodeResponse(cmd, hv as never, p as never, { sessions }), sessionCount: sessions.length, direction: 'response' });
    }
  });
  return out;
}

/** One mutation of `input`: bit flips, byte overwrites, truncation, extension, size-field edits, splices. */
export function mutate(input: Uint8Array, rng: Prng): Uint8Array {
  let b = input.slice();
  const rounds = 1 + rng.below(4);
  for (let r = 0; r < rounds; r++) {
    switch (rng.below(8)) {
      case 0: // flip a bit
        flipBit(b, rng);
        break;
      case 1: // overwrite a byte with an interesting value
        overwriteByte(b, rng, [0x00, 0xff, 0x7f, 0x80, 0x01]);
        break;
      case 2:
        b = truncate(b, rng);
        break;
      case 3:
        b = appendRandom(b, rng, 16);
        break;
      case 4: // a u16 size field somewhere made huge or off by one
        if (b.length > 2) {
          const at = rng.below(b.length - 1);
          const v = ((b[at]! << 8) | b[at + 1]!) + [1, -1, 0x100, 0x7fff][rng.below(4)]!;
          b[at] = (v >> 8) & 0xff;
          b[at + 1] = v & 0xff;
        }
        break;
      case 5: // a u32 count made huge
        if (b.length > 4) {
          const at = rng.below(b.length - 3);
          b.set([0xff, 0xff, 0xff, rng.below(256)], at);
        }
        break;
      case 6:
        b = duplicateRange(b, rng, 32);
        break;
      default: {
        // keep the header's size consistent with the new length, so parsing goes deeper
        if (b.length >= 6) {
          const n = b.length;
          b.set([(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff], 2);
        }
      }
    }
  }
  return b;
}

function randomBytes(rng: Prng): Uint8Array {
  const b = new Uint8Array(rng.below(4) === 0 ? rng.below(12) : rng.below(160));
  for (let i = 0; i < b.length; i++) b[i] = rng.below(256);
  // Half of them start like a real frame so the parsers get past the header.
  if (b.length >= 10 && rng.below(2) === 0) {
    b.set([0x80, 1 + rng.below(2)], 0);
    b.set([0, 0, (b.length >>> 8) & 0xff, b.length & 0xff], 2);
    if (rng.below(2) === 0) {
      const cc = ALL_COMMANDS[rng.below(ALL_COMMANDS.length)]!.code;
      b.set([0, 0, (cc >>> 8) & 0xff, cc & 0xff], 6);
    }
  }
  return b;
}

export interface FuzzStats {
  inputs: number;
  parsed: number;
  typedErrors: number;
  /** Inputs that made a parser throw something other than a TrustrootError. */
  untypedCount: number;
  /** The first of them (input hex and stack). */
  untyped: { input: string; error: string }[];
  /** Error codes seen, with counts: shows the fuzzer reaches deep checks. */
  codes: Map<string, number>;
}

/**
 * Runs one parser on one input: a TrustrootError counts as typed (by code),
 * anything else is a bug and the first 20 are kept (input shown as hex, or
 * quoted text, at most 400 units) for the report. Shared by every fuzzer.
 */
export function recordInput(stats: FuzzStats, input: Uint8Array | string, fn: () => unknown): void {
  stats.inputs++;
  try {
    fn();
    stats.parsed++;
  } catch (e) {
    if (e instanceof TrustrootError) {
      stats.typedErrors++;
      stats.codes.set(e.code, (stats.codes.get(e.code) ?? 0) + 1);
    } else {
      stats.untypedCount++;
      const shown = typeof input === 'string' ? JSON.stringify(input.slice(0, 400)) : Buffer.from(input.subarray(0, 400)).toString('hex');
      if (stats.untyped.length < 20) stats.untyped.push({ input: shown, error: String(e instanceof Error ? e.stack : e) });
    }
  }
}

/** Feeds `iterations` inputs, each to both parsers' entry points. */
export function fuzzParsers(options: { seed: number; iterations: number; seedsPerCommand?: number }): FuzzStats {
  const rng = new Prng(options.seed);
  const seeds = validSeeds(options.seedsPerCommand ?? 3, options.seed);
  const stats: FuzzStats = { inputs: 0, parsed: 0, typedErrors: 0, untypedCount: 0, untyped: [], codes: new Map() };
  // The seeds themselves must parse: a fuzzer over inputs that never get past the header proves little.
  for (const s of seeds) {
    if (s.direction === 'command') recordInput(stats, s.bytes, () => parseCommand(s.bytes));
    else recordInput(stats, s.bytes, () => parseResponse(s.command, s.bytes, s.sessionCount));
  }
  while (stats.inputs < options.iterations) {
    const useSeed = rng.below(4) !== 0;
    const s = seeds[rng.below(seeds.length)]!;
    const input = useSeed ? mutate(s.bytes, rng) : randomBytes(rng);
    if (!useSeed || s.direction === 'command') recordInput(stats, input, () => parseCommand(input));
    if (!useSeed || s.direction === 'response') {
      const cmd = useSeed ? s.command : ALL_COMMANDS[rng.below(ALL_COMMANDS.length)]!;
      const sessions = useSeed ? s.sessionCount : rng.below(4);
      recordInput(stats, input, () => parseResponse(cmd, input, sessions));
    }
  }
  return stats;
}
