/**
 * The two fixtures the simulator tests share, so no test file writes them again:
 *
 * - `startedEngine(engine?)`: an in-process simulator after Startup(CLEAR), with its
 *   transport and a client, for tests of the simulator alone.
 * - `swtpmAndSimulator()`: called inside a describeWithSwtpm body, one swtpm for the
 *   describe's tests (started, after Startup(CLEAR), before them; stopped after them)
 *   and fresh simulators on demand (stopped after the tests too). Both sides are the
 *   differential runner's (test/support/differential.ts `startSide`), so a scenario
 *   takes a side's `probe` (a Transport) or `tpm`, and its power cycle is `side.init()`
 *   (_TPM_Init alone) or `side.reset()` (_TPM_Init then Startup(CLEAR)) on either TPM.
 */
import { afterAll, beforeAll } from 'vitest';
import { Startup } from '../../src/tpm/commands/index.js';
import { TPM_SU } from '../../src/tpm/constants.js';
import { runCommand } from '../../src/tpm/run.js';
import { inProcessTransport, type Transport } from '../../src/tpm/transport/index.js';
import { Tpm } from '../../src/client/index.js';
import { TpmEngine } from '../../src/simulator/engine.js';
import { startSide, type DiffSide } from './differential.js';

/** An in-process simulator after Startup(CLEAR). */
export interface StartedEngine {
  readonly engine: TpmEngine;
  readonly t: Transport;
  readonly tpm: Tpm;
}

/** `engine` (a fresh default one unless given) behind an in-process transport, after Startup(CLEAR). */
export async function startedEngine(engine: TpmEngine = new TpmEngine()): Promise<StartedEngine> {
  const t = inProcessTransport(engine);
  await runCommand(t, Startup, {}, { startupType: TPM_SU.CLEAR });
  return { engine, t, tpm: new Tpm(t) };
}

/** A simulator side: its engine is always there. */
export type SimulatorSide = DiffSide & { readonly engine: TpmEngine };

export interface SwtpmAndSimulator {
  /** The describe's swtpm (shared by its tests, in the order they run); only inside a test or hook. */
  readonly swtpm: DiffSide;
  /** A fresh simulator after Startup(CLEAR). */
  simulator(): Promise<SimulatorSide>;
  /** `scenario` on the describe's swtpm, then on a fresh simulator: what each gave. */
  both<T>(scenario: (side: DiffSide) => Promise<T>): Promise<{ readonly theirs: T; readonly ours: T }>;
}

/** Registers the beforeAll/afterAll of one swtpm and the simulators a describe's tests start (see the file comment). */
export function swtpmAndSimulator(): SwtpmAndSimulator {
  let swtpm: DiffSide | undefined;
  const simulators: DiffSide[] = [];
  beforeAll(async () => {
    swtpm = await startSide('swtpm');
  });
  afterAll(async () => {
    for (const side of simulators.splice(0)) await side.stop();
    await swtpm?.stop();
  });
  const pair: SwtpmAndSimulator = {
    get swtpm(): DiffSide {
      if (swtpm === undefined) throw new Error('swtpmAndSimulator: swtpm is started in beforeAll; use it inside a test');
      return swtpm;
    },
    async simulator(): Promise<SimulatorSide> {
      const side = await startSide('simulator');
      simulators.push(side);
      const { engine } = side;
      if (engine === undefined) throw new Error('startSide(simulator) gave no engine');
      return { ...side, engine };
    },
    async both<T>(scenario: (side: DiffSide) => Promise<T>): Promise<{ readonly theirs: T; readonly ours: T }> {
      const theirs = await scenario(pair.swtpm);
      const ours = await scenario(await pair.simulator());
      return { theirs, ours };
    },
  };
  return pair;
}
