/**
 * The differential runner (issue 7): one command sequence sent to a fresh
 * swtpm (libtpms) and to a fresh simulator, logged per step with the
 * scenario log (test/support/scenario.ts) — the response code always, and
 * for steps marked deterministic the response parameter bytes exactly as
 * the TPM sent them — and the two logs compared. A difference is allowed
 * only when src/simulator/divergences.ts has the row for that command and
 * pair of codes; every other difference is reported.
 *
 * Each side talks through a WireProbe (test/support/probe.ts), which counts
 * the commands it received by code (for the "every command of ALL_COMMANDS"
 * check) and keeps the last exchange (for the response parameter bytes).
 */
import { commandByCode, Startup } from '../../src/tpm/commands/index.js';
import { TPM_ST, TPM_SU } from '../../src/tpm/constants.js';
import { TpmError } from '../../src/tpm/rc.js';
import { runCommand } from '../../src/tpm/run.js';
import { inProcessTransport, SwtpmTransport } from '../../src/tpm/transport/index.js';
import { Tpm } from '../../src/client/index.js';
import { TpmEngine } from '../../src/simulator/engine.js';
import { findDivergence, type DivergenceId } from '../../src/simulator/divergences.js';
import { WireProbe } from './probe.js';
import { scenarioLog, type ScenarioLog } from './scenario.js';
import { startSwtpm } from './swtpm.js';
import type { TpmKind } from './tpm-under-test.js';

/** One started TPM of the pair. */
export interface DiffSide {
  readonly kind: TpmKind;
  /** Everything sent to this TPM goes through here (counts by code, last exchange). */
  readonly probe: WireProbe;
  /** A client over the probe (retrying TPM_RC_RETRY as clients do). */
  readonly tpm: Tpm;
  /** The simulator's engine; undefined for swtpm. */
  readonly engine: TpmEngine | undefined;
  /** _TPM_Init then Startup(CLEAR): a TPM Reset. */
  reset(): Promise<void>;
  /** _TPM_Init alone: the next command must be Startup. */
  init(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts a fresh TPM of `kind` (plain swtpm with a fresh state folder, or a new engine in process) after Startup(CLEAR). */
export async function startSide(kind: TpmKind): Promise<DiffSide> {
  let side: DiffSide;
  if (kind === 'swtpm') {
    const sw = await startSwtpm();
    const t = new SwtpmTransport({ port: sw.port, ctrlPort: sw.ctrlPort });
    const probe = new WireProbe(t);
    side = {
      kind,
      probe,
      tpm: new Tpm(probe),
      engine: undefined,
      reset: async () => {
        await t.control.init();
        await runCommand(probe, Startup, {}, { startupType: TPM_SU.CLEAR });
      },
      init: () => t.control.init(),
      stop: async () => {
        await t.close();
        await sw.stop();
      },
    };
  } else {
    const engine = new TpmEngine();
    const probe = new WireProbe(inProcessTransport(engine));
    side = {
      kind,
      probe,
      tpm: new Tpm(probe),
      engine,
      reset: async () => {
        engine.init();
        await runCommand(probe, Startup, {}, { startupType: TPM_SU.CLEAR });
      },
      init: async () => engine.init(),
      stop: () => probe.close(),
    };
  }
  await runCommand(side.probe, Startup, {}, { startupType: TPM_SU.CLEAR });
  return side;
}

/** The scenario log of one side, with the steps the differential runner adds. */
export interface DiffLog extends ScenarioLog {
  readonly side: DiffSide;
  /** Per label: the code of the step's last command (to look a difference up in the table). */
  readonly commands: Record<string, number>;
  /**
   * A deterministic step: on success its value is the response parameter
   * area of the step's last command, in hex, as received (both TPMs must
   * send the same bytes).
   */
  bytes<T>(label: string, f: () => Promise<T>): Promise<T | undefined>;
  /** Raw command bytes: the response code, and with `deterministic` the response parameter bytes. Returns the response. */
  raw(label: string, command: Uint8Array, deterministic?: boolean): Promise<Uint8Array>;
}

export function diffLog(side: DiffSide): DiffLog {
  const base = scenarioLog();
  const commands: Record<string, number> = {};
  const lastCode = (): number | undefined => {
    const c = side.probe.last?.command;
    return c === undefined || c.length < 10 ? undefined : new DataView(c.buffer, c.byteOffset, c.byteLength).getUint32(6);
  };
  const step = async <T>(label: string, f: () => Promise<T>, value?: (r: T) => unknown): Promise<T | undefined> => {
    if (label in base.log) throw new Error(`step "${label}" logged twice`);
    side.probe.last = undefined;
    // The command a step is known by: the one that failed (a helper may send more after it), else the last one sent.
    let failed: number | undefined;
    const r = await base.step(label, () => f().catch((e: unknown) => {
      if (e instanceof TpmError && e.commandCode !== undefined) failed ??= e.commandCode;
      throw e;
    }), value);
    const cc = failed ?? lastCode();
    if (cc !== undefined) commands[label] = cc;
    return r;
  };
  return {
    ...base,
    side,
    commands,
    step,
    bytes: <T>(label: string, f: () => Promise<T>) => step(label, f, () => responseParams(side.probe.last)),
    async raw(label: string, command: Uint8Array, deterministic = false): Promise<Uint8Array> {
      let response: Uint8Array = new Uint8Array(0);
      await step(
        label,
        async () => {
          response = await side.probe.send(command);
          const rc = response.length >= 10 ? new DataView(response.buffer, response.byteOffset).getUint32(6) : -1;
          if (rc < 0) throw new Error(`${label}: a response of ${response.length} bytes`);
          if (rc !== 0) throw new TpmError(rc, { commandCode: new DataView(command.buffer, command.byteOffset, command.byteLength).getUint32(6) });
        },
        deterministic ? () => responseParams({ command, response }) : undefined,
      );
      return response;
    },
  };
}

/**
 * The response parameter area of a success response to `command`, in hex:
 * after the response handles (as many as the command's record declares)
 * and, with sessions, the parameterSize; without the authorization area
 * (it holds the TPM's nonces).
 */
export function responseParams(exchange: { readonly command: Uint8Array; readonly response: Uint8Array } | undefined): string {
  if (exchange === undefined) return '<no response>';
  const { command, response } = exchange;
  if (command.length < 10 || response.length < 10) return '<short>';
  const cc = new DataView(command.buffer, command.byteOffset, command.byteLength).getUint32(6);
  const view = new DataView(response.buffer, response.byteOffset, response.byteLength);
  const handles = commandByCode(cc)?.responseHandleNames.length ?? 0;
  let at = 10 + 4 * handles;
  let end = response.length;
  if (view.getUint16(0) === TPM_ST.SESSIONS && at + 4 <= response.length) {
    end = Math.min(response.length, at + 4 + view.getUint32(at));
    at += 4;
  }
  return Buffer.from(response.subarray(Math.min(at, end), end)).toString('hex');
}

/** What comparing two logs found. */
export interface DiffReport {
  /** Steps whose outcome differs and no row of the table explains: must be empty. */
  readonly differences: readonly string[];
  /** Rows of the table seen (the step and its two codes matched the row). */
  readonly divergences: readonly DivergenceId[];
}

/** Compares the swtpm log with the simulator's, step by step. */
export function compareLogs(swtpm: DiffLog, simulator: DiffLog): DiffReport {
  const differences: string[] = [];
  const divergences = new Set<DivergenceId>();
  const labels = [...new Set([...Object.keys(swtpm.log), ...Object.keys(simulator.log)])];
  for (const label of labels) {
    const a = swtpm.log[label];
    const b = simulator.log[label];
    if (JSON.stringify(a) === JSON.stringify(b)) continue;
    // A failed step is known by its response code, a successful one by its logged value.
    const answer = (l: DiffLog): number | string | undefined => {
      const c = l.codes[label];
      if (c === undefined) return undefined;
      if (c !== 0) return c;
      const v = l.log[label];
      return typeof v === 'string' ? v : typeof v === 'number' ? v : JSON.stringify(v);
    };
    const ca = answer(swtpm);
    const cb = answer(simulator);
    const cc = swtpm.commands[label] ?? simulator.commands[label];
    const row = ca !== undefined && cb !== undefined && cc !== undefined ? findDivergence(cc, ca, cb) : undefined;
    if (row !== undefined) {
      divergences.add(row.id);
      continue;
    }
    const name = cc === undefined ? '?' : (commandByCode(cc)?.name ?? `0x${cc.toString(16)}`);
    differences.push(`${label} [${name}]: swtpm ${JSON.stringify(a)}, simulator ${JSON.stringify(b)}`);
  }
  return { differences, divergences: [...divergences] };
}

/** A command sequence, run once per side with the same inputs. */
export type Sequence = (log: DiffLog, side: DiffSide) => Promise<void>;

/** Runs `sequence` on both sides and compares the logs. */
export async function runDifferential(sequence: Sequence, sides: { readonly swtpm: DiffSide; readonly simulator: DiffSide }): Promise<DiffReport & { readonly logs: { readonly swtpm: DiffLog; readonly simulator: DiffLog } }> {
  const swtpm = diffLog(sides.swtpm);
  await sequence(swtpm, sides.swtpm);
  const simulator = diffLog(sides.simulator);
  await sequence(simulator, sides.simulator);
  return { ...compareLogs(swtpm, simulator), logs: { swtpm, simulator } };
}
