/**
 * A stand-in TPM character device for the device transport's tests: a
 * pseudo-terminal in raw mode whose slave (/dev/pts/N) the transport opens,
 * while a small python3 relay (pty-relay.py) holds the master and forwards each
 * command to a private swtpm. The relay can hold, cut short, pad or replace an
 * answer, and reports when the slave is opened and closed.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const RELAY = join(import.meta.dirname, 'pty-relay.py');
export const PYTHON = process.env['TRUSTROOT_PYTHON'] ?? 'python3';

/** What the relay does with one command. */
export type RelayAction =
  | { readonly do: 'pass' }
  | { readonly do: 'hold' }
  | { readonly do: 'truncate'; readonly keep: number }
  | { readonly do: 'append'; readonly hex: string }
  | { readonly do: 'replace'; readonly hex: string }
  | { readonly do: 'delay'; readonly ms: number }
  | { readonly do: 'split'; readonly at: number; readonly ms: number };

export interface RelayEvent {
  readonly ev: 'ready' | 'opened' | 'closed' | 'queued' | 'synced' | 'command' | 'answered' | 'held' | 'released' | 'discarded' | 'truncated' | 'garbage';
  readonly path?: string;
  readonly cc?: number;
  readonly size?: number;
}

export interface PtyTpm {
  /** The slave side: open this as the TPM device. */
  readonly path: string;
  readonly pid: number;
  /**
   * Queue the relay's action for the next command it receives; resolves once the relay has it. Await it before
   * sending that command: the action travels on the relay's stdin and the command on the pty, and on a busy
   * machine the command could otherwise be served first (and the action wait for a later one).
   */
  next(action: RelayAction): Promise<void>;
  /** Write the held answer now. */
  release(): void;
  /**
   * The number of events so far, once the relay has caught up (events come on its stdout, behind the bytes it
   * writes to the pty: an exchange the test has seen answered may not have reported yet). Everything that
   * happened before the call is behind the mark; pass it to `waitFor` to wait for a later event.
   */
  mark(): Promise<number>;
  /** The first event of kind `ev` at or after index `since` (default: any time). */
  waitFor(ev: RelayEvent['ev'], since?: number, timeoutMs?: number): Promise<RelayEvent>;
  /** Events seen so far. */
  readonly events: readonly RelayEvent[];
  /** Stop the relay (closing its stdin, then SIGKILL by PID after a grace period). Idempotent. */
  stop(): Promise<void>;
}

export interface PtySupport {
  readonly available: boolean;
  readonly reason: string;
}

let support: PtySupport | undefined;

/** Whether python3 with the pty module can run the relay here. */
export function ptySupport(): PtySupport {
  if (support) return support;
  if (!existsSync('/dev/ptmx')) {
    support = { available: false, reason: 'no /dev/ptmx (pseudo-terminals unavailable)' };
    return support;
  }
  const r = spawnSync(PYTHON, ['-c', 'import pty, termios, tty; print("ok")'], { encoding: 'utf8', timeout: 10_000 });
  support =
    r.status === 0 && r.stdout.trim() === 'ok'
      ? { available: true, reason: '' }
      : { available: false, reason: `${PYTHON} with the pty module is needed for the stand-in device (${r.error?.message ?? r.stderr.trim()})` };
  return support;
}

/**
 * How the slave's read() says "nothing yet": `eagain` as a nonblocking
 * terminal does, or `zero` (VMIN = VTIME = 0) as a kernel TPM device does
 * before its answer is ready (tpm_common_read returns 0).
 */
export type PtyReadMode = 'eagain' | 'zero';

/** Start a relay in front of swtpm's raw command port on 127.0.0.1. */
export async function startPtyTpm(swtpmPort: number, mode: PtyReadMode = 'zero', host = '127.0.0.1'): Promise<PtyTpm> {
  const args = [RELAY, host, String(swtpmPort), ...(mode === 'zero' ? ['zero-reads'] : [])];
  const child: ChildProcessWithoutNullStreams = spawn(PYTHON, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const killOnExit = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  const events: RelayEvent[] = [];
  const waiters = new Set<() => void>();
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => {
    if (stderr.length < 8192) stderr += s;
  });
  createInterface({ input: child.stdout }).on('line', (line) => {
    try {
      events.push(JSON.parse(line) as RelayEvent);
    } catch {
      return;
    }
    for (const w of [...waiters]) w();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let dead = false;
  void exited.then(() => {
    dead = true;
    for (const w of [...waiters]) w();
  });

  const waitFor = (ev: RelayEvent['ev'], since = 0, timeoutMs = 10_000): Promise<RelayEvent> =>
    new Promise<RelayEvent>((resolve, reject) => {
      const check = (): void => {
        const found = events.slice(since).find((e) => e.ev === ev);
        if (found) {
          done();
          resolve(found);
        } else if (dead) {
          done();
          reject(new Error(`relay exited while waiting for "${ev}": ${stderr.trim()}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`relay: no "${ev}" event within ${timeoutMs} ms (events: ${JSON.stringify(events.slice(since))}) ${stderr.trim()}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });

  const ready = await waitFor('ready', 0, 15_000).catch(async (e: unknown) => {
    killOnExit();
    process.off('exit', killOnExit);
    throw e;
  });
  const send = (msg: object): void => {
    child.stdin.write(`${JSON.stringify(msg)}\n`);
  };

  let stopping: Promise<void> | undefined;
  return {
    path: ready.path!,
    pid: child.pid!,
    events,
    next: async (action) => {
      const since = events.length;
      send({ next: action });
      await waitFor('queued', since);
    },
    release: () => send({ release: true }),
    mark: async () => {
      const since = events.length;
      send({ sync: true });
      await waitFor('synced', since);
      return events.length;
    },
    waitFor,
    stop() {
      stopping ??= (async () => {
        child.stdin.end();
        const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 2000).unref());
        if ((await Promise.race([exited.then(() => 'exited' as const), timer])) === 'timeout' && child.pid !== undefined) {
          try {
            process.kill(child.pid, 'SIGKILL');
          } catch {
            // already gone
          }
          await exited;
        }
        process.off('exit', killOnExit);
      })();
      return stopping;
    },
  };
}
