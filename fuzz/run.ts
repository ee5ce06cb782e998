/**
 * Long fuzz run (`npm run fuzz`): every parser of outside input, with a random
 * seed that it prints so a failure can be replayed with
 * `npm run fuzz -- --seed N [--only NAME] [--scale F]`:
 *  - tpm: ≥ 10 million TPM commands and responses (issue 3);
 *  - attest-*: ≥ 1 million inputs each for TPMS_ATTEST/quotes, EK certificates,
 *    event logs, IMA lists, policies and the CLI's evidence files (issue 5);
 *  - simulator: ≥ 1 million mutated commands to one software TPM engine, seeded
 *    from a recording in which every implemented command succeeds, then
 *    GetRandom, and the state saved through the store and loaded by a fresh
 *    engine that answers (issues 6 and 7, fuzz/simulator.ts);
 *  - sim-state: 200,000 mutated state files to the state loader: a StateError
 *    or a working TPM (issue 7, fuzz/store.ts);
 *  - sim-crash: 1,000 SIGKILLs of `trustroot tpm serve` during persistent-state
 *    commands, nothing acknowledged lost (issue 6, test/support/sim-crash.ts).
 * Exits non-zero on any untyped exception (or an accepted mutant quote).
 */
import { randomInt } from 'node:crypto';
import { fuzzCliEvidence } from './attest-cli.js';
import { fuzzAttest } from './attest-attest.js';
import { fuzzEkCert } from './attest-ekcert.js';
import { fuzzEventLog } from './attest-eventlog.js';
import { fuzzIma } from './attest-ima.js';
import { fuzzPolicy } from './attest-policy.js';
import { fuzzParsers } from './parsers.js';
import { fuzzSimulator, recordClientSession, type RecordedSession } from './simulator.js';
import { fuzzStateFiles, stateFileSeeds } from './store.js';
import { TpmEngine } from '../src/simulator/engine.js';
import { commandByCode } from '../src/tpm/commands/index.js';
import { runSimulatorCrashTest } from '../test/support/sim-crash.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

interface Stats {
  inputs: number;
  untypedCount: number;
  untyped: readonly { input: string; error: string }[];
  codes: Map<string, number>;
  acceptedMutants?: number;
}

interface Target {
  readonly name: string;
  readonly inputs: number;
  /** Runs one chunk; chunks keep memory flat and print progress. */
  readonly run: (seed: number, n: number) => Stats | Promise<Stats>;
  readonly chunk: number;
}

const targets: Target[] = [
  { name: 'tpm', inputs: 10_000_000, chunk: 500_000, run: (seed, n) => fuzzParsers({ seed, iterations: n }) },
  { name: 'attest-quote', inputs: 1_000_000, chunk: 100_000, run: fuzzAttest },
  { name: 'attest-ekcert', inputs: 1_000_000, chunk: 100_000, run: fuzzEkCert },
  { name: 'attest-eventlog', inputs: 1_000_000, chunk: 100_000, run: (seed, n) => fuzzEventLog(seed, n) },
  { name: 'attest-ima', inputs: 1_000_000, chunk: 100_000, run: fuzzIma },
];
targets.push(
  { name: 'attest-policy', inputs: 1_000_000, chunk: 100_000, run: fuzzPolicy },
  { name: 'cli-evidence', inputs: 1_000_000, chunk: 100_000, run: fuzzCliEvidence },
);

// One engine for the whole simulator run (issue 6: ≥ 1 million commands to one engine): chunks continue on it.
let simulatorSession: RecordedSession | undefined;
let stateSeeds: Uint8Array[] | undefined;
targets.push(
  {
    name: 'simulator',
    inputs: 1_000_000,
    chunk: 1_000_000,
    run: async (seed, n) => {
      simulatorSession ??= await recordClientSession();
      let last = Date.now();
      const stats = await fuzzSimulator({
        seed,
        iterations: n,
        session: simulatorSession,
        onProgress: (done) => {
          if (Date.now() - last > 30_000) {
            last = Date.now();
            console.log(`    simulator: ${done.toLocaleString('en-US')} commands`);
          }
        },
      });
      // Issue 7: which commands' seeds reached their handler, and what the run ended with.
      const implemented = new TpmEngine().implementedCommands();
      const missing = implemented.filter((c) => !stats.seedCodes.has(c)).map((c) => commandByCode(c)?.name ?? `0x${c.toString(16)}`);
      console.log(`    simulator: seeds of ${implemented.length - missing.length} of ${implemented.length} implemented commands succeed in the recording${missing.length > 0 ? ` (not: ${missing.join(', ')})` : ''}`);
      console.log(`    simulator: ${stats.replays} replays (${stats.replaySuccesses.toLocaleString('en-US')} of ${stats.replayedCommands.toLocaleString('en-US')} commands succeeded), ${stats.successes.toLocaleString('en-US')} fuzzed commands succeeded, ${stats.codes.size} distinct response codes`);
      console.log(`    simulator: ${stats.stateChecks} states round-tripped the store; saved through the store and reloaded by a fresh engine: ${stats.reloaded ? 'yes' : 'NO'}`);
      return { ...stats, codes: stats.codes };
    },
  },
  {
    name: 'sim-state',
    inputs: 200_000,
    chunk: 50_000,
    run: async (seed, n) => {
      stateSeeds ??= await stateFileSeeds();
      const stats = await fuzzStateFiles({ seed, iterations: n, seeds: stateSeeds });
      console.log(`    sim-state: ${stats.valid.toLocaleString('en-US')} accepted (each ran a session), ${stats.onDisk} through the folder loader; ${[...stats.codes].map(([c, k]) => `${c} ${k}`).join(', ')}`);
      return stats;
    },
  },
  {
    name: 'sim-crash',
    inputs: 1_000,
    chunk: 1_000,
    run: async (seed, n) => {
      // Each kill is one input; a lost acknowledgement or a state that does not load is a failure.
      try {
        const s = await runSimulatorCrashTest({ rounds: n, seed, log: (line) => (/^round \d*00:/.test(line) ? console.log(`    ${line}`) : undefined) });
        console.log(`    sim-crash: ${s.rounds} kills, ${s.midStream} mid-stream, ${s.inFlightKept} kept the command in flight, ${s.acknowledged} commands`);
        return { inputs: n, untypedCount: 0, untyped: [], codes: new Map() };
      } catch (e) {
        return { inputs: n, untypedCount: 1, untyped: [{ input: `sim-crash seed ${seed}`, error: e instanceof Error ? e.message : String(e) }], codes: new Map() };
      }
    },
  },
);

const seed = Number(arg('seed') ?? randomInt(0, 2 ** 31));
const only = arg('only');
const scale = Number(arg('scale') ?? 1);
const chosen = targets.filter((t) => only === undefined || t.name === only);
console.log(`fuzz: seed ${seed} (replay: npm run fuzz -- --seed ${seed}${only ? ` --only ${only}` : ''}${scale !== 1 ? ` --scale ${scale}` : ''})`);

let failures = 0;
for (const t of chosen) {
  const total = Math.max(1, Math.round(t.inputs * scale));
  const started = Date.now();
  let done = 0;
  for (let round = 0; done < total; round++) {
    const stats = await t.run(seed + round, Math.min(t.chunk, total - done));
    if (stats.inputs === 0) break;
    done += stats.inputs;
    failures += stats.untypedCount + (stats.acceptedMutants ?? 0);
    for (const u of stats.untyped) console.log(`UNTYPED in ${t.name} (seed ${seed + round}): ${u.input.slice(0, 400)}\n${u.error}`);
    if (stats.acceptedMutants) console.log(`ACCEPTED MUTANT QUOTE in ${t.name} (seed ${seed + round}): ${stats.acceptedMutants}`);
  }
  const secs = (Date.now() - started) / 1000;
  console.log(`  ${t.name.padEnd(16)} ${done.toLocaleString('en-US').padStart(12)} inputs in ${secs.toFixed(0)} s (${Math.round(done / secs).toLocaleString('en-US')}/s)`);
}
console.log(failures === 0 ? 'fuzz: 0 untyped exceptions' : `fuzz: ${failures} failure(s)`);
process.exit(failures === 0 ? 0 : 1);
