/**
 * A private Debian swtpm (libtpms) for demonstrations, benchmarks and tests:
 * a free port pair on 127.0.0.1, a fresh state folder, stopped by PID (never
 * by name), so several can run side by side (tpm-peers.md §6.1, §6.9).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, Socket, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SwtpmOptions {
  /** `--flags startup-clear`: swtpm sends TPM2_Startup(CLEAR) itself (default false). */
  readonly startupClear?: boolean;
  /** `--flags not-need-init`: usable without CMD_INIT (default true). */
  readonly notNeedInit?: boolean;
  /** How long to wait for the command port (default 10 s). */
  readonly startTimeoutMs?: number;
  /**
   * Run on this existing state folder (e.g. one `swtpm_setup` prepared)
   * instead of a fresh one; stop() removes it all the same.
   */
  readonly stateDir?: string;
}

export interface SwtpmInstance {
  readonly port: number;
  readonly ctrlPort: number;
  readonly pid: number;
  readonly stateDir: string;
  /** SIGTERM, SIGKILL after a grace period, then remove the state folder. Idempotent. */
  stop(): Promise<void>;
}

/** The swtpm binary: TRUSTROOT_SWTPM or `swtpm` on the PATH. */
export const SWTPM_BINARY = process.env['TRUSTROOT_SWTPM'] ?? 'swtpm';

/** Start swtpm on a free port pair; retries if another process takes the ports first. */
export async function startSwtpm(opts: SwtpmOptions = {}): Promise<SwtpmInstance> {
  const stateDir = opts.stateDir ?? (await mkdtemp(join(tmpdir(), 'trustroot-swtpm-')));
  let lastError: unknown;
  for (let attempt = 0; attempt < 8; attempt++) {
    const port = await freePortPair();
    try {
      return await launch(port, stateDir, opts);
    } catch (e) {
      lastError = e;
    }
  }
  await rm(stateDir, { recursive: true, force: true });
  throw new Error(`could not start swtpm: ${String(lastError)}`);
}

async function launch(port: number, stateDir: string, opts: SwtpmOptions): Promise<SwtpmInstance> {
  const flags: string[] = [];
  if (opts.notNeedInit ?? true) flags.push('not-need-init');
  if (opts.startupClear) flags.push('startup-clear');
  const args = [
    'socket',
    '--tpm2',
    '--server', `type=tcp,port=${port},bindaddr=127.0.0.1`,
    '--ctrl', `type=tcp,port=${port + 1},bindaddr=127.0.0.1`,
    '--tpmstate', `dir=${stateDir}`,
    ...(flags.length > 0 ? ['--flags', flags.join(',')] : []),
  ];
  const child = spawn(SWTPM_BINARY, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (s: string) => {
    if (stderr.length < 4096) stderr += s;
  });
  const exited = new Promise<string>((resolve) => {
    child.once('exit', (code, sig) => resolve(`swtpm exited (${sig ?? code}): ${stderr.trim()}`));
    child.once('error', (e) => resolve(`swtpm failed to start: ${e.message}`));
  });
  // Never leave an swtpm behind if the test process exits without stopping it.
  const killOnExit = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  const deadline = Date.now() + (opts.startTimeoutMs ?? 10_000);
  let dead: string | undefined;
  void exited.then((m) => (dead = m));
  for (;;) {
    if (dead !== undefined) {
      process.off('exit', killOnExit);
      throw new Error(dead);
    }
    if (await accepts(port)) break;
    if (Date.now() > deadline) {
      process.off('exit', killOnExit);
      await stopChild(child, exited);
      throw new Error(`swtpm did not accept on port ${port} in time: ${stderr.trim()}`);
    }
    await sleep(20);
  }

  let stopping: Promise<void> | undefined;
  return {
    port,
    ctrlPort: port + 1,
    pid: child.pid!,
    stateDir,
    stop() {
      stopping ??= (async () => {
        await stopChild(child, exited);
        process.off('exit', killOnExit);
        await rm(stateDir, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
}

async function stopChild(child: ChildProcess, exited: Promise<string>, graceMs = 2000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  process.kill(child.pid, 'SIGTERM');
  const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), graceMs).unref());
  if ((await Promise.race([exited, timer])) === 'timeout') {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    await exited;
  }
}

/** A port p on 127.0.0.1 such that p and p+1 are both free right now. */
export async function freePortPair(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const a = await listen(0);
    const p = (a.address() as { port: number }).port;
    let b: Server | undefined;
    if (p < 65535) b = await listen(p + 1).catch(() => undefined);
    await close(a);
    if (b) {
      await close(b);
      return p;
    }
  }
  throw new Error('no free port pair found');
}

/** A port on 127.0.0.1 that is free right now (nothing listens there). */
export async function freePort(): Promise<number> {
  const s = await listen(0);
  const p = (s.address() as { port: number }).port;
  await close(s);
  return p;
}

function listen(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen({ port, host: '127.0.0.1', exclusive: true }, () => resolve(s));
  });
}

function close(s: Server): Promise<void> {
  return new Promise((resolve) => s.close(() => resolve()));
}

/** Whether a TCP connect to 127.0.0.1:port succeeds (the probe closes at once). */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    const done = (ok: boolean): void => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(500, () => done(false));
    s.once('error', () => done(false));
    s.connect(port, '127.0.0.1', () => done(true));
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
