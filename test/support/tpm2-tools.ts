/**
 * Test harness: Debian's tpm2-tools against a private swtpm.
 *
 * Preferred ("abrmd"): a private tpm2-abrmd (`--session --allow-root
 * --flush-all`, swtpm TCTI) on its own D-Bus session bus from
 * `dbus-run-session`, and the tools on `tabrmd:bus_type=session`, so that
 * objects the tools load are flushed when each tool exits (tpm-peers.md §6.8).
 * Fallback ("direct"), when the tabrmd TCTI or abrmd is missing: the tools on
 * the swtpm TCTI, with `tpm2_flushcontext -t` after every call.
 * TRUSTROOT_TPM2TOOLS_MODE=abrmd|direct forces one.
 *
 * swtpm serves one client at a time and abrmd's swtpm TCTI connects once per
 * command, so a test alternates: it closes its own transport before the tools
 * run and the tools have exited before it reconnects. Every process here is
 * stopped by its PID, never by name.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, it } from 'vitest';
import type { SwtpmInstance } from './swtpm.js';

export type Tpm2ToolsMode = 'abrmd' | 'direct';

export interface Tpm2ToolsSupport {
  /** tpm2-tools are installed. */
  readonly available: boolean;
  /** tpm2-abrmd, dbus-run-session and the tabrmd TCTI are installed. */
  readonly abrmd: boolean;
  /** CI=1 or TRUSTROOT_REQUIRE_SWTPM=1: missing tools are a failure, not a skip. */
  readonly required: boolean;
  /** Why the tools cannot be used ('' when available). */
  readonly reason: string;
}

export interface ToolResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface ToolRunOptions {
  /** Bytes for the tool's standard input. */
  readonly input?: Uint8Array;
  /** Default 30 s; the tool is killed (SIGKILL) after it. */
  readonly timeoutMs?: number;
  /** Resolve with a non-zero exit code instead of rejecting. */
  readonly allowFailure?: boolean;
  /** Another TCTI for this call, given as `-T`; 'none' for the tools' software-only modes (`-T none`). */
  readonly tcti?: string;
}

export interface Tpm2Tools {
  readonly mode: Tpm2ToolsMode;
  /** The TCTI the tools use (TPM2TOOLS_TCTI). */
  readonly tcti: string;
  /** Working directory of every tool call: relative file names land here. */
  readonly cwd: string;
  /**
   * Runs `tpm2_<tool> args…`. Rejects with the tool's stderr on a non-zero
   * exit (unless `allowFailure`), on a timeout, or when it cannot start.
   */
  run(tool: string, args: readonly string[], options?: ToolRunOptions): Promise<ToolResult>;
  /** Stops abrmd and its bus (by PID). Idempotent. */
  stop(): Promise<void>;
}

const ENV_DROP = ['TPM2TOOLS_TCTI', 'TCTI', 'TPM2TOOLS_ENABLE_ERRATA', 'DBUS_SESSION_BUS_ADDRESS', 'TSS2_LOG'];

function has(cmd: string, args: string[]): boolean {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 5000 });
  return r.error === undefined && r.status === 0;
}

/** The tabrmd TCTI library, where ESAPI's loader looks for it (ld.so cache or a standard library folder). */
function hasTabrmdTcti(): boolean {
  const r = spawnSync('/sbin/ldconfig', ['-p'], { encoding: 'utf8', timeout: 5000 });
  if (r.status === 0 && /libtss2-tcti-tabrmd\.so\.0\b/.test(r.stdout)) return true;
  return ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/usr/local/lib'].some((d) =>
    existsSync(`${d}/libtss2-tcti-tabrmd.so.0`),
  );
}

let support: Tpm2ToolsSupport | undefined;

/** Whether tpm2-tools (and abrmd) are installed; checked once. */
export function tpm2ToolsSupport(): Tpm2ToolsSupport {
  if (support) return support;
  const required = process.env['CI'] === '1' || process.env['CI'] === 'true' || process.env['TRUSTROOT_REQUIRE_SWTPM'] === '1';
  const available = has('tpm2_getrandom', ['--version']);
  const abrmd = available && has('tpm2-abrmd', ['--version']) && has('dbus-run-session', ['--version']) && hasTabrmdTcti();
  support = { available, abrmd, required, reason: available ? '' : 'tpm2-tools not found; install Debian\'s tpm2-tools (scripts/setup.sh)' };
  return support;
}

/** `describe` for suites that need tpm2-tools (and swtpm): skipped when missing, a failing test when required. */
export function describeWithTpm2Tools(name: string, body: () => void): void {
  const s = tpm2ToolsSupport();
  if (s.available) {
    describe(name, body);
  } else if (s.required) {
    describe(name, () => {
      it('tpm2-tools are installed', () => {
        throw new Error(`${s.reason} (required because CI=1 or TRUSTROOT_REQUIRE_SWTPM=1)`);
      });
    });
  } else {
    describe.skip(`${name} [skipped: ${s.reason}]`, body);
  }
}

function toolEnv(tcti: string, bus: string | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of ENV_DROP) delete env[k];
  env['TPM2TOOLS_TCTI'] = tcti;
  if (bus !== undefined) env['DBUS_SESSION_BUS_ADDRESS'] = bus;
  return env;
}

/** `-T` on the command line: the tools take `none` only there, not from TPM2TOOLS_TCTI. */
function withTcti(args: readonly string[], options: ToolRunOptions): readonly string[] {
  return options.tcti === undefined ? args : ['-T', options.tcti, ...args];
}

function runTool(file: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv, options: ToolRunOptions): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      [...args],
      { cwd, env, timeout: options.timeoutMs ?? 30_000, killSignal: 'SIGKILL', maxBuffer: 8 << 20, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (error === null) return resolve({ code: 0, stdout, stderr });
        const e = error as NodeJS.ErrnoException & { code?: number | string; killed?: boolean; signal?: string | null };
        if (typeof e.code !== 'number') {
          const why = e.killed ? `killed after ${options.timeoutMs ?? 30_000} ms` : (e.signal ?? e.message);
          return reject(new Error(`${file} ${args.join(' ')}: ${why}\n${stderr}`));
        }
        if (options.allowFailure) return resolve({ code: e.code, stdout, stderr });
        reject(new Error(`${file} ${args.join(' ')} exited ${e.code}:\n${stderr}${stdout}`));
      },
    );
    if (options.input !== undefined) child.stdin?.end(Buffer.from(options.input));
    else child.stdin?.end();
  });
}

/**
 * Starts the tools' side for `swtpm` (whose TPM must have had TPM2_Startup;
 * no other client may be connected meanwhile: abrmd talks to the TPM while it
 * starts). Files are read and written in `cwd`.
 */
export async function startTpm2Tools(
  sw: Pick<SwtpmInstance, 'port'>,
  // backend: the TCTI to the TPM (abrmd's, or the tools' own in direct mode): `swtpm` (default) or `mssim` for a server with the MS platform port.
  opts: { readonly cwd: string; readonly mode?: Tpm2ToolsMode; readonly backend?: 'swtpm' | 'mssim' },
): Promise<Tpm2Tools> {
  const s = tpm2ToolsSupport();
  if (!s.available) throw new Error(s.reason);
  const forced = process.env['TRUSTROOT_TPM2TOOLS_MODE'];
  const mode = opts.mode ?? (forced === 'abrmd' || forced === 'direct' ? forced : s.abrmd ? 'abrmd' : 'direct');
  const swtpmTcti = `${opts.backend ?? 'swtpm'}:host=127.0.0.1,port=${sw.port}`;
  if (mode === 'direct') {
    const env = toolEnv(swtpmTcti, undefined);
    return {
      mode,
      tcti: swtpmTcti,
      cwd: opts.cwd,
      async run(tool, args, options = {}) {
        const tcti = options.tcti ?? swtpmTcti;
        try {
          return await runTool(`tpm2_${tool}`, withTcti(args, options), opts.cwd, env, options);
        } finally {
          // Without a resource manager, whatever the tool loaded stays loaded (tpm-peers.md §6.8): objects, and
          // sessions a failed command left loaded (sessions the tools keep in files are saved, not loaded).
          if (tcti === swtpmTcti) {
            for (const what of ['-t', '-l']) await runTool('tpm2_flushcontext', [what], opts.cwd, env, { allowFailure: true, timeoutMs: 10_000 }).catch(() => undefined);
          }
        }
      },
      stop: () => Promise.resolve(),
    };
  }
  if (!s.abrmd) throw new Error('tpm2-abrmd, dbus-run-session or the tabrmd TCTI (libtss2-tcti-tabrmd0) is missing');
  return startAbrmd(swtpmTcti, opts.cwd);
}

async function startAbrmd(swtpmTcti: string, cwd: string): Promise<Tpm2Tools> {
  // The shell prints its PID (which exec hands to abrmd) and the private bus address, then becomes abrmd.
  const child: ChildProcess = spawn(
    'dbus-run-session',
    ['--', 'sh', '-c', 'echo "$$ $DBUS_SESSION_BUS_ADDRESS"; exec tpm2-abrmd --session --allow-root --flush-all --tcti="$1"', 'sh', swtpmTcti],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    if (stderr.length < 8192) stderr += d;
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let abrmdPid: number | undefined;
  const killOnExit = (): void => {
    if (abrmdPid !== undefined) {
      try {
        process.kill(abrmdPid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  const first = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`dbus-run-session printed no bus address: ${stderr}`)), 10_000);
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      output += d;
      const nl = output.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        resolve(output.slice(0, nl));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`dbus-run-session exited (${code}): ${stderr}`));
    });
  });
  // abrmd logs to stdout; keep draining it so it never blocks on a full pipe.
  child.stdout?.on('data', () => undefined);
  const m = /^(\d+) (\S+)$/.exec(first.trim());
  if (m === null) {
    killOnExit();
    throw new Error(`unexpected first line from dbus-run-session: ${first}`);
  }
  abrmdPid = Number(m[1]);
  const bus = m[2]!;
  const tcti = 'tabrmd:bus_type=session';
  const env = toolEnv(tcti, bus);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      try {
        process.kill(abrmdPid!, 'SIGTERM');
      } catch {
        // already gone
      }
      // dbus-run-session ends its bus and exits once abrmd has exited.
      const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 3000).unref());
      if ((await Promise.race([exited.then(() => 'done' as const), timeout])) === 'timeout') {
        killOnExit();
        await exited;
      }
      process.off('exit', killOnExit);
    })());

  // abrmd owns its D-Bus name only once it has initialised the TPM; poll until a tool gets through.
  const deadline = Date.now() + 15_000;
  for (;;) {
    const r = await runTool('tpm2_getrandom', ['4', '--hex'], cwd, env, { allowFailure: true, timeoutMs: 10_000 }).catch((e: unknown) => ({ code: -1, stdout: '', stderr: String(e) }));
    if (r.code === 0) break;
    if (Date.now() > deadline || child.exitCode !== null) {
      await stop();
      throw new Error(`tpm2-abrmd did not come up: ${r.stderr} ${stderr}`);
    }
    await new Promise((res) => setTimeout(res, 50));
  }

  return {
    mode: 'abrmd',
    tcti,
    cwd,
    run(tool, args, options = {}) {
      return runTool(`tpm2_${tool}`, withTcti(args, options), cwd, env, options);
    },
    stop,
  };
}
