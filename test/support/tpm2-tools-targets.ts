/**
 * The TPMs that tpm2-tools suites run against (issues 6 and 7): OUR software
 * TPM served by the real CLI (`trustroot tpm serve`, a child process,
 * test/support/sim-server.ts) over the swtpm or the mssim protocol, and
 * Debian's swtpm (libtpms) as the control, each behind a private tpm2-abrmd
 * (test/support/tpm2-tools.ts). Plus the small helpers the suites share: run
 * a program, the TPM response code a failing tool printed, a field of the
 * tools' YAML-ish output, openssl's verdict on a signature.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';
import { canonicalRc } from '../../src/tpm/rc.js';
import { MssimPlatform, SwtpmControl } from '../../src/tpm/transport/index.js';
import { startSimServer, type SimServerInstance } from './sim-server.js';
import { startSwtpm } from './swtpm.js';
import { startTpm2Tools, tpm2ToolsSupport, type Tpm2Tools, type ToolRunOptions } from './tpm2-tools.js';

export type TargetKind = 'ours' | 'swtpm';

export interface Running {
  /** The tools' side (replaced by restart()). */
  readonly tools: Tpm2Tools;
  readonly dir: string;
  /** Command port of the TPM. */
  readonly port: number;
  readonly ctrlPort: number;
  /** Ours: stop abrmd and the server (SIGTERM), serve the same state folder again, restart abrmd. */
  restart?(): Promise<void>;
  /**
   * A TPM Reset with the server kept running (issue 7's pcrallocate flow): stop abrmd, which holds the
   * only platform/control connection, send _TPM_Init (Part 1 §36.4) through the platform (swtpm
   * protocol: control channel CMD_INIT; mssim: platform port POWER_OFF then POWER_ON), TPM2_Startup(CLEAR),
   * start abrmd again. Files in `dir` stay; loaded objects and sessions are gone.
   */
  powerCycle(): Promise<void>;
  stop(): Promise<void>;
}


export function sh(file: string, args: readonly string[], input?: Uint8Array): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(file, [...args], { timeout: 20_000, encoding: 'utf8', maxBuffer: 4 << 20 }, (err, stdout, stderr) =>
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr }),
    );
    child.stdin?.end(input === undefined ? undefined : Buffer.from(input));
  });
}

/** `openssl dgst -sha256 -verify pem -signature sig msg`: true when openssl says "Verified OK". */
export async function opensslVerifies(pem: string, sig: string, msg: string): Promise<boolean> {
  const r = await sh('openssl', ['dgst', '-sha256', '-verify', pem, '-signature', sig, msg]);
  return r.code === 0 && /Verified OK/.test(r.stdout);
}

/** The TPM response code a failing tool printed (`Esys_Unseal(0x99D)` → 0x99d), or undefined. */
export function rcIn(stderr: string): number | undefined {
  const all = [...stderr.matchAll(/\((0x[0-9A-Fa-f]+)\)/g)];
  const m = all.at(-1);
  if (m === undefined) return undefined;
  return Number(m[1]) & 0xffff; // drop the TSS layer byte
}

/** A YAML-ish `key: value` from the tools' output. */
export function field(out: string, key: string): string {
  const m = new RegExp(`^\\s*${key}:\\s*(.*)$`, 'm').exec(out);
  if (m === null) throw new Error(`no "${key}:" in:\n${out}`);
  return m[1]!.trim();
}

/** Through tpm2-abrmd as the issue asks; required in CI, otherwise the harness's choice (abrmd when installed, else direct). */
export function toolsMode(): 'abrmd' | undefined {
  return tpm2ToolsSupport().required ? 'abrmd' : undefined;
}

/** TPM2_Startup(CLEAR) before any tool runs (abrmd sends one itself; the tools without it do not). */
export async function startupClear(tcti: string): Promise<void> {
  const r = await sh('tpm2_startup', ['-T', tcti, '-c']);
  if (r.code !== 0) throw new Error(`tpm2_startup -T ${tcti} -c: ${r.stderr}`);
}

/** _TPM_Init through port+1: swtpm's control channel (CMD_INIT) or the MS platform port (power off, on). */
async function tpmInit(protocol: 'swtpm' | 'mssim', ctrlPort: number): Promise<void> {
  if (protocol === 'swtpm') {
    const ctl = new SwtpmControl({ port: ctrlPort });
    try {
      await ctl.init(0);
    } finally {
      await ctl.close();
    }
  } else {
    const platform = new MssimPlatform({ port: ctrlPort });
    try {
      await platform.powerOff();
      await platform.powerOn();
    } finally {
      await platform.close();
    }
  }
}

export async function startOurs(protocol: 'swtpm' | 'mssim', options: { readonly profile?: string } = {}): Promise<Running> {
  const dir = await mkdtemp(join(tmpdir(), 'trustroot-tools-'));
  const stateDir = join(dir, 'tpm-state');
  let server: SimServerInstance | undefined;
  let tools: Tpm2Tools | undefined;
  const up = async (): Promise<void> => {
    server = await startSimServer({ protocol, stateDir, ...(options.profile === undefined ? {} : { profile: options.profile }) });
    try {
      await startupClear(server.tcti);
      tools = await startTpm2Tools(server, { cwd: dir, backend: protocol, mode: toolsMode() });
    } catch (e) {
      throw new Error(`${String(e)}\nserver stderr: ${server.stderr()}`);
    }
  };
  const down = async (): Promise<void> => {
    await tools?.stop();
    await server?.stop();
  };
  try {
    await up();
  } catch (e) {
    await down();
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    get tools() {
      return tools!;
    },
    dir,
    get port() {
      return server!.port;
    },
    get ctrlPort() {
      return server!.ctrlPort;
    },
    async restart() {
      await down();
      await up();
    },
    async powerCycle() {
      await tools?.stop();
      await tpmInit(protocol, server!.ctrlPort);
      await startupClear(server!.tcti);
      tools = await startTpm2Tools(server!, { cwd: dir, backend: protocol, mode: toolsMode() });
    },
    async stop() {
      await down();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function startControl(): Promise<Running> {
  const sw = await startSwtpm();
  const dir = await mkdtemp(join(tmpdir(), 'trustroot-tools-'));
  try {
    await startupClear(`swtpm:host=127.0.0.1,port=${sw.port}`);
    let tools = await startTpm2Tools(sw, { cwd: dir, mode: toolsMode() });
    const tcti = `swtpm:host=127.0.0.1,port=${sw.port}`;
    return {
      get tools() {
        return tools;
      },
      dir,
      port: sw.port,
      ctrlPort: sw.ctrlPort,
      async powerCycle() {
        await tools.stop();
        await tpmInit('swtpm', sw.ctrlPort);
        await startupClear(tcti);
        tools = await startTpm2Tools(sw, { cwd: dir, mode: toolsMode() });
      },
      async stop() {
        await tools.stop();
        await sw.stop();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await sw.stop();
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}


/** What a suite's flows use of the target started for them (useTarget). */
export interface TargetFixture {
  /** The running target; throws (with the start error) when it did not start. */
  env(): Running;
  /** A file in the target's working folder. */
  f(name: string): string;
  read(name: string): Promise<Buffer>;
  write(name: string, data: Uint8Array | string): Promise<void>;
  /** Runs `tpm2_<name> args…`, rejecting on failure; its stdout. */
  tool(name: string, args: readonly string[], options?: ToolRunOptions): Promise<string>;
  /** Runs a tool that must fail; the TPM response code it printed, canonical (no handle/parameter/session number). */
  toolFails(name: string, args: readonly string[], options?: ToolRunOptions): Promise<number | undefined>;
}

/**
 * Inside a `describe`: starts the target in beforeAll (a start error fails each flow, naming `label`)
 * and stops it in afterAll.
 */
export function useTarget(label: string, start: () => Promise<Running>): TargetFixture {
  let r: Running | undefined;
  let startError: unknown;
  beforeAll(async () => {
    try {
      r = await start();
    } catch (e) {
      startError = e;
    }
  }, 60_000);
  afterAll(async () => {
    await r?.stop();
  }, 30_000);
  const env = (): Running => {
    if (r === undefined) throw new Error(`${label} did not start: ${String(startError)}`);
    return r;
  };
  const f = (name: string): string => join(env().dir, name);
  return {
    env,
    f,
    read: (name) => readFile(f(name)),
    write: (name, data) => writeFile(f(name), data),
    tool: async (name, args, options) => (await env().tools.run(name, args, options)).stdout,
    async toolFails(name, args, options) {
      const res = await env().tools.run(name, args, { ...options, allowFailure: true });
      expect(res.code, `tpm2_${name} ${args.join(' ')} should fail:\n${res.stdout}`).not.toBe(0);
      const rc = rcIn(res.stderr);
      return rc === undefined ? undefined : canonicalRc(rc);
    },
  };
}
