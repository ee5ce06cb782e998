/**
 * The byte mutations the fuzzers share (parsers, attest-ima, attest-eventlog),
 * and the stand-alone runner of an attest fuzzer (`npx tsx fuzz/<name>.ts
 * --seed N --iterations M`). Each mutation draws from the Prng in a fixed
 * order, so a seed replays the same inputs whichever fuzzer calls it.
 */
import { pathToFileURL } from 'node:url';
import type { Prng } from './parsers.js';

/** Flips one bit (in place); nothing on an empty input. */
export function flipBit(b: Uint8Array, rng: Prng): void {
  if (b.length > 0) b[rng.below(b.length)]! ^= 1 << rng.below(8);
}

/** Overwrites one byte with one of `values` (in place); nothing on an empty input. */
export function overwriteByte(b: Uint8Array, rng: Prng, values: readonly number[]): void {
  if (b.length > 0) b[rng.below(b.length)] = values[rng.below(values.length)]!;
}

/** A prefix of `b`, from empty to whole. */
export function truncate(b: Uint8Array, rng: Prng): Uint8Array<ArrayBuffer> {
  return b.slice(0, rng.below(b.length + 1));
}

/** `b` with 1 to `most` random bytes after it. */
export function appendRandom(b: Uint8Array, rng: Prng, most: number): Uint8Array<ArrayBuffer> {
  const extra = new Uint8Array(1 + rng.below(most));
  for (let i = 0; i < extra.length; i++) extra[i] = rng.below(256);
  const n = new Uint8Array(b.length + extra.length);
  n.set(b);
  n.set(extra, b.length);
  return n;
}

/** `b` with a slice of 1 to `most` bytes repeated in place (repeats a structure); `b` itself when shorter than 3 bytes. */
export function duplicateRange<B extends Uint8Array>(b: B, rng: Prng, most: number): B | Uint8Array<ArrayBuffer> {
  if (b.length <= 2) return b;
  const from = rng.below(b.length);
  const len = 1 + rng.below(Math.min(most, b.length - from));
  const n = new Uint8Array(b.length + len);
  n.set(b.subarray(0, from + len));
  n.set(b.subarray(from, from + len), from + len);
  n.set(b.subarray(from + len), from + 2 * len);
  return n;
}

/** What the stand-alone runner reads of a chunk's statistics. */
export interface ChunkStats {
  readonly inputs: number;
  readonly parsed: number;
  readonly untypedCount: number;
  readonly untyped: readonly { readonly input: string; readonly error: string }[];
  readonly codes: ReadonlyMap<string, number>;
}

/** `--name value` from the command line. */
export function cliArg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** Whether the module at `moduleUrl` is the one node was started with (not imported by run.ts or a test). */
export function isMain(moduleUrl: string): boolean {
  return process.argv[1] !== undefined && moduleUrl === pathToFileURL(process.argv[1]).href;
}

/**
 * A long run of one fuzzer on its own: `--seed` (random unless given) and
 * `--iterations` (1,000,000), in chunks of `chunk` inputs, chunk k from seed
 * + k; prints the untyped exceptions and a line per chunk, and exits 1 when
 * there were any.
 */
export function runStandalone(name: string, fuzz: (seed: number, iterations: number) => ChunkStats, chunk: number): never {
  const seed = Number(cliArg('seed') ?? Math.floor(Math.random() * 2 ** 31));
  const total = Number(cliArg('iterations') ?? 1_000_000);
  console.log(`fuzz ${name}: seed ${seed}, ${total} inputs (replay: npx tsx fuzz/${name}.ts --seed ${seed} --iterations ${total})`);
  let done = 0;
  let failures = 0;
  const started = Date.now();
  for (let round = 0; done < total; round++) {
    const stats = fuzz(seed + round, Math.min(chunk, total - done));
    done += stats.inputs;
    failures += stats.untypedCount;
    for (const u of stats.untyped) console.log(`UNTYPED (seed ${seed + round}): ${u.input}\n${u.error}`);
    const rate = Math.round(done / ((Date.now() - started) / 1000));
    console.log(`  ${done} inputs, ${stats.parsed} parsed in last chunk, ${rate}/s, codes: ${[...stats.codes].map(([k, v]) => `${k}=${v}`).join(' ')}`);
    // A chunk that ran nothing (a time-boxed fuzzer) would loop for ever.
    if (stats.inputs === 0) break;
  }
  console.log(failures === 0 ? `fuzz ${name}: ${done} inputs, 0 untyped exceptions` : `fuzz ${name}: ${failures} untyped exception(s)`);
  process.exit(failures === 0 ? 0 : 1);
}
