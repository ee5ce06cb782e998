/**
 * Test harness: our software TPM served by the real CLI, `trustroot tpm serve
 * --state DIR --port 0 --protocol swtpm|mssim` (src/cli/tpm.ts), as a child
 * process on a free port pair chosen by the server itself (port 0; the ports
 * are read from its first line of output), with a fresh state folder and its
 * own EK certificate CA folder beside it (`--ca`, so nothing lands in
 * $TRUSTROOT_HOME or a shared folder). Stopped by its PID (SIGTERM, SIGKILL
 * after a grace period), never by name.
 *
 * The returned object has the shape of SwtpmInstance (port, ctrlPort, pid,
 * stateDir, stop), so test/support/tpm2-tools.ts can drive it like swtpm.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export type SimServerProtocol = 'swtpm' | 'mssim';

export interface SimServerOptions {
  /** Port+1 speaks swtpm's control protocol or the MS simulator's platform protocol (default swtpm). */
  readonly protocol?: SimServerProtocol;
  /** Serve this existing state folder instead of a fresh one; stop() removes it only when `keepState` is false. */
  readonly stateDir?: string;
  /** The software TPM CA folder (`--ca`); default `sw-tpm-ca` beside the state folder. */
  readonly caDir?: string;
  /** Leave the state folder on stop() (default: keep a given stateDir, remove a fresh one). */
  readonly keepState?: boolean;
  /** `--profile` (src/simulator/profiles.ts); the server's default when omitted. */
  readonly profile?: string;
  /** How long to wait for the "serving" line (default 20 s: tsx compiles the CLI on first start). */
  readonly startTimeoutMs?: number;
}

export interface SimServerInstance {
  readonly protocol: SimServerProtocol;
  /** Command port. */
  readonly port: number;
  /** Control (swtpm) or platform (mssim) port, port + 1. */
  readonly ctrlPort: number;
  readonly pid: number;
  readonly stateDir: string;
  /** The TCTI string for tpm2-tss: `swtpm:host=127.0.0.1,port=N` or `mssim:…`. */
  readonly tcti: string;
  /** Everything the server wrote to stderr so far (capped at 64 KiB). */
  stderr(): string;
  /** SIGTERM, SIGKILL after a grace period, then remove a fresh state folder. Idempotent. */
  stop(): Promise<void>;
}

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = join(ROOT, 'src', 'cli', 'main.ts');

/** `trustroot tpm serve` on a free port pair, as a child process running the TypeScript sources through tsx. */
export async function startSimServer(opts: SimServerOptions = {}): Promise<SimServerInstance> {
  const protocol = opts.protocol ?? 'swtpm';
  const fresh = opts.stateDir === undefined;
  // A fresh server gets a private folder holding its state and its CA, removed as a whole.
  const root = fresh ? await mkdtemp(join(tmpdir(), 'trustroot-sim-')) : undefined;
  const stateDir = opts.stateDir ?? join(root!, 'state');
  const caDir = opts.caDir ?? join(dirname(stateDir), 'sw-tpm-ca');
  const keepState = opts.keepState ?? !fresh;
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', CLI, 'tpm', 'serve', '--state', stateDir, '--ca', caDir, '--port', '0', '--protocol', protocol, ...(opts.profile === undefined ? [] : ['--profile', opts.profile])],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    if (stderr.length < 65536) stderr += d;
  });
  const exited = new Promise<string>((res) => {
    child.once('exit', (code, sig) => res(`trustroot tpm serve exited (${sig ?? code}): ${stderr.trim()}`));
    child.once('error', (e) => res(`trustroot tpm serve failed to start: ${e.message}`));
  });
  const killOnExit = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        process.kill(child.pid, 'SIGTERM');
        const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 3000).unref());
        if ((await Promise.race([exited, timer])) === 'timeout') {
          try {
            process.kill(child.pid, 'SIGKILL');
          } catch {
            // already gone
          }
          await exited;
        }
      }
      process.off('exit', killOnExit);
      if (!keepState) await rm(root ?? stateDir, { recursive: true, force: true });
    })());

  // First line: "serving a software TPM (swtpm) on 127.0.0.1:PORT, control port N+1, state DIR".
  let port: number;
  try {
    port = await new Promise<number>((res, rej) => {
      let out = '';
      const timer = setTimeout(() => rej(new Error(`trustroot tpm serve printed no "serving" line in time: ${out}${stderr}`)), opts.startTimeoutMs ?? 20_000);
      child.stdout?.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        const m = /serving a software TPM \((?:swtpm|mssim)\) on [^\s]+:(\d+),/.exec(out);
        if (m !== null) {
          clearTimeout(timer);
          res(Number(m[1]));
        }
      });
      void exited.then((why) => {
        clearTimeout(timer);
        rej(new Error(why));
      });
    });
  } catch (e) {
    await stop();
    throw e;
  }
  // Keep draining stdout so the child never blocks on a full pipe.
  child.stdout?.on('data', () => undefined);
  return {
    protocol,
    port,
    ctrlPort: port + 1,
    pid: child.pid!,
    stateDir,
    tcti: `${protocol}:host=127.0.0.1,port=${port}`,
    stderr: () => stderr,
    stop,
  };
}
