/**
 * End-to-end crash test of the software TPM (issue 6 acceptance): a child
 * process runs the real CLI, `trustroot tpm serve --state DIR --protocol
 * swtpm`, and this process streams persistent-state commands to it over TCP
 * (NV_Increment, NV_Extend, NV_SetBits, NV_Write on indices without
 * TPMA_NV_ORDERLY, NV_DefineSpace/NV_UndefineSpace, EvictControl,
 * HierarchyChangeAuth, DictionaryAttackParameters) until it kills the child
 * with SIGKILL at a random moment (seeded); one round in four dies while
 * starting or loading instead.
 *
 * The model is the command stream itself, computed here with node:crypto
 * (not the engine's code): after k acknowledged commands every value is
 * model(k). After each kill the state folder must load (the store opens it,
 * and the next child serves it) and hold model(ack) or, when a command was
 * in flight, model(ack + 1) — nothing acknowledged is ever lost. The next
 * child's TPM is checked against the same model through TPM commands
 * (NV_Read, NV_ReadPublic, GetCapability) before the stream goes on. What
 * Startup(CLEAR) resets (PCRs, sessions, transient objects) is not checked.
 *
 * The child is the CLI bundled once with esbuild (tsx's, in node_modules):
 * it starts in a fraction of the time tsx needs to compile the CLI on each
 * start; without esbuild it runs through tsx.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openSimulatorStore } from '../../src/simulator/store.js';
import type { SimulatorState } from '../../src/simulator/state.js';
import { readCapability } from '../../src/tpm/capability.js';
import {
  CreatePrimary,
  DictionaryAttackParameters,
  EvictControl,
  HierarchyChangeAuth,
  NV_DefineSpace,
  NV_Extend,
  NV_Increment,
  NV_Read,
  NV_ReadPublic,
  NV_SetBits,
  NV_UndefineSpace,
  NV_Write,
  Startup,
} from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_CAP, TPM_NT, TPM_PT, TPM_RH, TPM_SU } from '../../src/tpm/constants.js';
import { isRc, TPM_RC, TpmError } from '../../src/tpm/rc.js';
import { trimAuthValue } from '../../src/tpm/session-crypto.js';
import { passwordAuth, runCommand } from '../../src/tpm/run.js';
import { eccSrkTemplate } from '../../src/tpm/templates.js';
import { SwtpmTransport, type Transport } from '../../src/tpm/transport/index.js';
import { TPMA_NV, type TPMS_NV_PUBLIC } from '../../src/tpm/types/index.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = join(ROOT, 'src', 'cli', 'main.ts');
const ESBUILD = join(ROOT, 'node_modules', '.bin', 'esbuild');

/** NV indices of the stream (owner range, none ORDERLY). */
export const CRASH_INDEX = {
  counter: 0x01500100,
  extend: 0x01500101,
  bits: 0x01500102,
  data: 0x01500103,
  /** Defined and undefined in turn. */
  toggled: 0x01500104,
} as const;
/** Where EvictControl makes the round's primary persistent, and evicts it again. */
export const CRASH_PERSISTENT = 0x81000100;
const DATA_SIZE = 64;
const EMPTY = new Uint8Array(0);
const OPS = 8;

function sha256(...parts: (string | Uint8Array)[]): Uint8Array {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const u64 = (b: Uint8Array): bigint => (b.length === 8 ? new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0) : -1n);

/** Everything the stream changes, as the TPM must report it. */
export interface CrashModel {
  counter: bigint;
  extend: string;
  bits: bigint;
  data: string;
  toggled: boolean;
  persistent: boolean;
  ownerAuth: string;
  maxTries: number;
  recoveryTime: number;
  lockoutRecovery: number;
}

/** What command k (k ≥ 1) sends; the model's next state follows from it alone. */
function extendData(k: number): Uint8Array {
  return sha256('extend', String(k)).subarray(0, 1 + (k % 32));
}
function writeData(k: number): Uint8Array {
  const d = new Uint8Array(DATA_SIZE);
  d.set(sha256('write', String(k)), 0);
  d.set(sha256('write2', String(k)), 32);
  return d;
}
function ownerAuthOf(k: number): Uint8Array {
  return sha256('owner', String(k)).subarray(0, 1 + (k % 20));
}
/** Bit k mod 64 plus a second one, so most SetBits change the value. */
function bitsOf(k: number): bigint {
  return (1n << BigInt(k % 64)) | (1n << BigInt((k * 7 + 3) % 64));
}
function opName(k: number): string {
  return ['NV_Increment', 'NV_Extend', 'NV_SetBits', 'NV_Write', 'NV_DefineSpace/NV_UndefineSpace', 'EvictControl', 'HierarchyChangeAuth', 'DictionaryAttackParameters'][k % OPS]!;
}

/** model(k) from model(k − 1): Part 3's effect of command k, computed here. */
export function applyCommand(m: CrashModel, k: number): CrashModel {
  switch (k % OPS) {
    case 0:
      return { ...m, counter: m.counter + 1n };
    case 1:
      // Part 3 §31.10 NV_Extend: H_nameAlg(old ‖ data).
      return { ...m, extend: hex(sha256(Buffer.from(m.extend, 'hex'), extendData(k))) };
    case 2:
      return { ...m, bits: m.bits | bitsOf(k) };
    case 3:
      return { ...m, data: hex(writeData(k)) };
    case 4:
      return { ...m, toggled: !m.toggled };
    case 5:
      return { ...m, persistent: !m.persistent };
    case 6:
      // Part 1 §19.8.4: the TPM keeps an authValue without its trailing zeros.
      return { ...m, ownerAuth: hex(trimAuthValue(ownerAuthOf(k))) };
    default:
      return { ...m, maxTries: 3 + (k % 50), recoveryTime: k % 1000, lockoutRecovery: k % 500 };
  }
}

function nvPublic(nvIndex: number, nt: number, dataSize: number): TPMS_NV_PUBLIC {
  return {
    nvIndex,
    nameAlg: TPM_ALG.SHA256,
    attributes: TPMA_NV.of({ TPM_NT: nt as never, AUTHREAD: true, AUTHWRITE: true, OWNERREAD: true, NO_DA: true }),
    authPolicy: EMPTY,
    dataSize,
  };
}

/** Sends command k of the stream. */
async function sendCommand(t: Transport, m: CrashModel, k: number, primary: number): Promise<void> {
  const owner = [passwordAuth(Buffer.from(m.ownerAuth, 'hex'))];
  const empty = [passwordAuth()];
  switch (k % OPS) {
    case 0:
      await runCommand(t, NV_Increment, { authHandle: CRASH_INDEX.counter, nvIndex: CRASH_INDEX.counter }, {}, { sessions: empty });
      return;
    case 1:
      await runCommand(t, NV_Extend, { authHandle: CRASH_INDEX.extend, nvIndex: CRASH_INDEX.extend }, { data: extendData(k) }, { sessions: empty });
      return;
    case 2:
      await runCommand(t, NV_SetBits, { authHandle: CRASH_INDEX.bits, nvIndex: CRASH_INDEX.bits }, { bits: bitsOf(k) }, { sessions: empty });
      return;
    case 3:
      await runCommand(t, NV_Write, { authHandle: CRASH_INDEX.data, nvIndex: CRASH_INDEX.data }, { data: writeData(k), offset: 0 }, { sessions: empty });
      return;
    case 4:
      if (m.toggled) {
        await runCommand(t, NV_UndefineSpace, { authHandle: TPM_RH.OWNER, nvIndex: CRASH_INDEX.toggled }, {}, { sessions: owner });
      } else {
        await runCommand(t, NV_DefineSpace, { authHandle: TPM_RH.OWNER }, { auth: EMPTY, publicInfo: nvPublic(CRASH_INDEX.toggled, TPM_NT.ORDINARY, 16) }, { sessions: owner });
      }
      return;
    case 5:
      await runCommand(
        t,
        EvictControl,
        { auth: TPM_RH.OWNER, objectHandle: m.persistent ? CRASH_PERSISTENT : primary },
        { persistentHandle: CRASH_PERSISTENT },
        { sessions: owner },
      );
      return;
    case 6:
      await runCommand(t, HierarchyChangeAuth, { authHandle: TPM_RH.OWNER }, { newAuth: ownerAuthOf(k) }, { sessions: owner });
      return;
    default: {
      const n = applyCommand(m, k);
      await runCommand(t, DictionaryAttackParameters, { lockHandle: TPM_RH.LOCKOUT }, { newMaxTries: n.maxTries, newRecoveryTime: n.recoveryTime, lockoutRecovery: n.lockoutRecovery }, { sessions: empty });
    }
  }
}

/** The model's values in a state file (read with the store, as the next server would). */
export function observeState(s: SimulatorState): CrashModel {
  const nv = (i: number) => s.nvIndices.find((e) => e.nvIndex === i);
  return {
    counter: u64(nv(CRASH_INDEX.counter)?.data ?? EMPTY),
    extend: hex(nv(CRASH_INDEX.extend)?.data ?? EMPTY),
    bits: u64(nv(CRASH_INDEX.bits)?.data ?? EMPTY),
    data: hex(nv(CRASH_INDEX.data)?.data ?? EMPTY),
    toggled: nv(CRASH_INDEX.toggled) !== undefined,
    persistent: s.persistentObjects.some((o) => o.handle === CRASH_PERSISTENT),
    ownerAuth: hex(s.auths.owner.authValue),
    maxTries: s.dictionaryAttack.maxTries,
    recoveryTime: s.dictionaryAttack.recoveryTime,
    lockoutRecovery: s.dictionaryAttack.lockoutRecovery,
  };
}

/** The model's values read through TPM commands (NV_Read, NV_ReadPublic, GetCapability). */
export async function observeTpm(t: Transport, ownerAuth: string): Promise<CrashModel> {
  const read = async (i: number, size: number): Promise<Uint8Array> =>
    (await runCommand(t, NV_Read, { authHandle: TPM_RH.OWNER, nvIndex: i }, { size, offset: 0 }, { sessions: [passwordAuth(Buffer.from(ownerAuth, 'hex'))] })).params.data;
  const toggled = await runCommand(t, NV_ReadPublic, { nvIndex: CRASH_INDEX.toggled }, {}).then(
    () => true,
    (e: unknown) => {
      if (isRc(e, TPM_RC.HANDLE)) return false;
      throw e;
    },
  );
  const persistent = (await readCapability(t, TPM_CAP.HANDLES, [CRASH_PERSISTENT])).includes(CRASH_PERSISTENT);
  const props = await readCapability(t, TPM_CAP.TPM_PROPERTIES, [TPM_PT.MAX_AUTH_FAIL]);
  const prop = (p: number): number => props.find((x) => x.property === p)?.value ?? -1;
  return {
    counter: u64(await read(CRASH_INDEX.counter, 8)),
    extend: hex(await read(CRASH_INDEX.extend, 32)),
    bits: u64(await read(CRASH_INDEX.bits, 8)),
    data: hex(await read(CRASH_INDEX.data, DATA_SIZE)),
    toggled,
    persistent,
    ownerAuth, // proven by the owner-authorized reads above
    maxTries: prop(TPM_PT.MAX_AUTH_FAIL),
    recoveryTime: prop(TPM_PT.LOCKOUT_INTERVAL),
    lockoutRecovery: prop(TPM_PT.LOCKOUT_RECOVERY),
  };
}

/** Defines the indices and writes each once; returns model(0) read back from the TPM. */
async function setUp(t: Transport): Promise<CrashModel> {
  const owner = [passwordAuth()];
  const empty = [passwordAuth()];
  const defs: [number, number, number][] = [
    [CRASH_INDEX.counter, TPM_NT.COUNTER, 8],
    [CRASH_INDEX.extend, TPM_NT.EXTEND, 32],
    [CRASH_INDEX.bits, TPM_NT.BITS, 8],
    [CRASH_INDEX.data, TPM_NT.ORDINARY, DATA_SIZE],
  ];
  for (const [i, nt, size] of defs) {
    await runCommand(t, NV_DefineSpace, { authHandle: TPM_RH.OWNER }, { auth: EMPTY, publicInfo: nvPublic(i, nt, size) }, { sessions: owner });
  }
  // Written once each, so every one reads back (a counter starts wherever the TPM says: read, not assumed).
  await runCommand(t, NV_Increment, { authHandle: CRASH_INDEX.counter, nvIndex: CRASH_INDEX.counter }, {}, { sessions: empty });
  await runCommand(t, NV_Extend, { authHandle: CRASH_INDEX.extend, nvIndex: CRASH_INDEX.extend }, { data: EMPTY }, { sessions: empty });
  await runCommand(t, NV_SetBits, { authHandle: CRASH_INDEX.bits, nvIndex: CRASH_INDEX.bits }, { bits: 0n }, { sessions: empty });
  await runCommand(t, NV_Write, { authHandle: CRASH_INDEX.data, nvIndex: CRASH_INDEX.data }, { data: new Uint8Array(DATA_SIZE), offset: 0 }, { sessions: empty });
  const base = await observeTpm(t, '');
  // The values this set-up must give, computed here.
  const expected = { extend: hex(sha256(new Uint8Array(32))), bits: 0n, data: hex(new Uint8Array(DATA_SIZE)), toggled: false, persistent: false };
  for (const [k, v] of Object.entries(expected)) {
    if (base[k as keyof CrashModel] !== v) throw new Error(`set-up: ${k} reads ${String(base[k as keyof CrashModel])}, expected ${String(v)}`);
  }
  return base;
}

/** How the child is started: the bundled CLI, or tsx on the sources. */
export interface CliLauncher {
  readonly argv: readonly string[];
  cleanup(): Promise<void>;
}

/** Bundles src/cli/main.ts once (esbuild) into a temporary folder; tsx when esbuild is missing. */
export async function bundleCli(): Promise<CliLauncher> {
  if (!existsSync(ESBUILD)) return { argv: ['--import', 'tsx', CLI], cleanup: () => Promise.resolve() };
  const dir = await mkdtemp(join(tmpdir(), 'trustroot-cli-bundle-'));
  const out = join(dir, 'trustroot.mjs');
  const r = spawnSync(
    ESBUILD,
    [CLI, '--bundle', '--platform=node', '--format=esm', `--outfile=${out}`, '--log-level=error', "--banner:js=import { createRequire as __trustrootRequire } from 'node:module'; const require = __trustrootRequire(import.meta.url);"],
    { encoding: 'utf8', timeout: 60_000 },
  );
  if (r.status !== 0) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`esbuild failed: ${r.error?.message ?? r.stderr}`);
  }
  return { argv: [out], cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** mulberry32: a small seeded PRNG, so a failing schedule replays. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface CrashTestOptions {
  readonly rounds: number;
  readonly seed: number;
  /** Progress lines (default: none). */
  readonly log?: (line: string) => void;
}

export interface CrashTestSummary {
  readonly rounds: number;
  /** Kills while the stream ran (the others hit start-up or load). */
  readonly midStream: number;
  /** Kills after which the command in flight was found done. */
  readonly inFlightKept: number;
  /** Commands acknowledged over all rounds. */
  readonly acknowledged: number;
  /** Kinds of command that were in flight at a kill, by name. */
  readonly inFlightKinds: ReadonlyMap<string, number>;
}

const same = (a: CrashModel, b: CrashModel): boolean => Object.keys(a).every((k) => a[k as keyof CrashModel] === b[k as keyof CrashModel]);
function diff(a: CrashModel, b: CrashModel): string {
  return Object.keys(a)
    .filter((k) => a[k as keyof CrashModel] !== b[k as keyof CrashModel])
    .map((k) => `${k}: ${String(a[k as keyof CrashModel])} vs ${String(b[k as keyof CrashModel])}`)
    .join('; ');
}

interface ChildRun {
  port: number | undefined;
  exited: Promise<string>;
  kill(): void;
}

function startChild(launcher: CliLauncher, dir: string): ChildRun & { serving: Promise<number> } {
  const child = spawn(process.execPath, [...launcher.argv, 'tpm', 'serve', '--state', dir, '--port', '0', '--protocol', 'swtpm'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    if (stderr.length < 16_384) stderr += d;
  });
  const exited = new Promise<string>((res) => {
    child.once('exit', (code, sig) => res(sig === 'SIGKILL' ? '' : `exited by itself (${sig ?? code}): ${stderr.trim()}`));
    child.once('error', (e) => res(`could not start: ${e.message}`));
  });
  const run: ChildRun & { serving: Promise<number> } = {
    port: undefined,
    exited,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
    serving: new Promise<number>((res, rej) => {
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        const m = /serving a software TPM \(swtpm\) on [^\s]+:(\d+),/.exec(out);
        if (m !== null && run.port === undefined) {
          run.port = Number(m[1]);
          res(run.port);
        }
      });
      void exited.then((why) => rej(new Error(why === '' ? 'killed before serving' : why)));
    }),
  };
  run.serving.catch(() => undefined);
  return run;
}

/**
 * Runs `rounds` kill rounds on a fresh state folder. Throws with the round,
 * the seed and the differing values when the state does not load or lost an
 * acknowledged command.
 */
export async function runSimulatorCrashTest(options: CrashTestOptions): Promise<CrashTestSummary> {
  const random = prng(options.seed);
  const launcher = await bundleCli();
  const root = await mkdtemp(join(tmpdir(), 'trustroot-sim-crash-'));
  const dir = join(root, 'tpm');
  const fail = (round: number, why: string): Error => new Error(`sim crash test (seed ${options.seed}) round ${round}: ${why}`);
  let model: CrashModel | undefined;
  let acked = 0;
  let midStream = 0;
  let inFlightKept = 0;
  const inFlightKinds = new Map<string, number>();
  try {
    for (let round = 0; round < options.rounds; round++) {
      // One round in four dies during start-up or load (never the first: the TPM must exist).
      const early = round > 0 && random() < 0.25;
      const child = startChild(launcher, dir);
      let inFlight: number | undefined;
      if (early) {
        setTimeout(() => child.kill(), Math.floor(random() * 500)).unref();
      } else {
        const delay = 5 + Math.floor(random() * 120);
        let port: number;
        try {
          port = await child.serving;
        } catch (e) {
          child.kill();
          throw fail(round, `the server did not start: ${(e as Error).message}`);
        }
        const t = new SwtpmTransport({ port, ctrlPort: port + 1 });
        try {
          await runCommand(t, Startup, {}, { startupType: TPM_SU.CLEAR });
          if (model === undefined) {
            model = await setUp(t);
          } else {
            // The loaded TPM, through its own commands: the model where the last round left it.
            const seen = await observeTpm(t, model.ownerAuth);
            if (!same(seen, model)) throw fail(round, `after restart the TPM reports ${diff(seen, model)} (TPM vs model ${acked})`);
          }
          const primary = await runCommand(
            t,
            CreatePrimary,
            { primaryHandle: TPM_RH.OWNER },
            { inSensitive: { userAuth: EMPTY, data: EMPTY }, inPublic: eccSrkTemplate(), outsideInfo: EMPTY, creationPCR: [] },
            { sessions: [passwordAuth(Buffer.from(model.ownerAuth, 'hex'))] },
          );
          setTimeout(() => child.kill(), delay).unref();
          for (;;) {
            const k = acked + 1;
            inFlight = k;
            try {
              await sendCommand(t, model, k, primary.handles.objectHandle);
            } catch (e) {
              if (e instanceof TpmError) throw fail(round, `${opName(k)} (command ${k}) answered ${(e as Error).message}`);
              break; // the connection died with the child
            }
            model = applyCommand(model, k);
            acked = k;
            inFlight = undefined;
          }
        } catch (e) {
          child.kill();
          if ((e as Error).message.startsWith('sim crash test')) throw e;
          // The kill may land during the round's first commands (Startup, the reads, CreatePrimary): nothing in flight that changes state.
        } finally {
          await t.close();
        }
      }
      const why = await child.exited;
      if (why !== '') throw fail(round, `the server ${why}`);
      if (model === undefined) continue;
      if (!early) midStream++;

      // The state folder loads (a stale lock of the killed server is cleared) and holds model(acked) or model(acked + 1).
      let held: CrashModel;
      try {
        const { store, state } = await openSimulatorStore(dir);
        held = observeState(state);
        await store.close();
      } catch (e) {
        throw fail(round, `the state does not load after SIGKILL: ${(e as Error).message}`);
      }
      if (same(held, model)) {
        // Nothing in flight, or the command in flight was not done: either is allowed.
      } else if (inFlight !== undefined && same(held, applyCommand(model, inFlight))) {
        model = applyCommand(model, inFlight);
        acked = inFlight;
        inFlightKept++;
      } else {
        const what = inFlight === undefined ? 'nothing in flight' : `${opName(inFlight)} (command ${inFlight}) in flight`;
        throw fail(round, `acknowledged ${acked}, ${what}; the state holds ${diff(held, model)} (state vs model)`);
      }
      if (inFlight !== undefined) inFlightKinds.set(opName(inFlight), (inFlightKinds.get(opName(inFlight)) ?? 0) + 1);
      options.log?.(`round ${round}: ${early ? 'killed at start-up' : `killed after ${acked} commands`}${inFlight !== undefined ? `, ${opName(inFlight)} in flight` : ''}`);
    }
  } finally {
    await launcher.cleanup();
    await rm(root, { recursive: true, force: true });
  }
  return { rounds: options.rounds, midStream, inFlightKept, acknowledged: acked, inFlightKinds };
}
