/**
 * The Linux kernel's TPM character device (`/dev/tpmrm0`, or `/dev/tpm0` only
 * when asked) as a Transport.
 *
 * Why each open of the device has a small thread of its own: in nonblocking
 * mode (Linux >= 4.20, drivers/char/tpm/tpm-dev-common.c) write() only queues
 * the command and returns, but read() and poll() both take the open file's
 * buffer mutex, which the kernel's worker holds for the whole time the TPM
 * executes the command. A read on the event loop would freeze it for as long
 * as the TPM works (seconds for key generation); a read in libuv's pool would
 * pin one of its four threads; and Node cannot put a character device into its
 * own epoll set. So a dedicated worker thread (not a pool thread) owns the file
 * descriptor: it writes each command in one write() and polls with
 * nonblocking reads (0 or EAGAIN: nothing yet), napping between polls on an
 * Atomics.wait that the main thread can cut short. (Kernels before 4.20 ignore
 * O_NONBLOCK and execute the command inside write(); that too happens on the
 * device's own thread.) Each thread costs about 8 MiB of memory.
 *
 * After a timeout, an abort or any failure the open is abandoned: its thread
 * closes the descriptor and exits (the kernel drops a late answer together
 * with that file's buffer, tpm_common_release), and the next command opens the
 * device afresh in a new thread. The event loop never waits on the device.
 */
import { constants as fsConstants } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { TransportError } from '../../tpm/errors.js';
import { LIMITS } from '../../tpm/limits.js';
import { CommandQueue, abortError, getU32, type Deadline } from '../../tpm/transport/channel.js';
import { DEFAULT_TIMEOUT_MS, checkCommand, checkLocality, type SendOptions, type Transport } from '../../tpm/transport/transport.js';

/** The kernel's resource-managed device (Linux >= 4.12): many openers, transient objects and sessions flushed per open. */
export const TPMRM_DEVICE = '/dev/tpmrm0';
/** The raw device: one opener at a time, no resource manager. */
export const TPM_DEVICE = '/dev/tpm0';

export interface DeviceTransportOptions {
  /** Character device to open (default `/dev/tpmrm0`). */
  readonly path?: string;
  /**
   * Open this device instead when `path` does not exist: `true` means
   * `/dev/tpm0` (for kernels without the resource manager). Off by default,
   * since the raw device lets objects and sessions pile up across processes.
   */
  readonly fallback?: boolean | string;
  /** Default deadline per command, opening included (default 120 s). */
  readonly timeoutMs?: number;
  /** Longest nap between two polls of the device (default 2 ms; polls start at 50 µs and back off). */
  readonly pollIntervalMs?: number;
  /** How long close() waits for a device thread to close its descriptor (default 1 s). */
  readonly closeGraceMs?: number;
}

/** Response tags a device may send: TPM 2.0 with and without sessions, and TPM 1.2's answer to a bad tag. */
const RESPONSE_TAGS = [0x8001, 0x8002, 0x00c4] as const;

/** The first nap between polls, in ms. */
const FIRST_POLL_MS = 0.05;

/**
 * The device thread, as source run with `eval: true` (a file next to this one
 * would not exist under the TypeScript runners). It uses only synchronous
 * system calls, on its own thread. Messages in: `{ t: 'send', cmd }`,
 * `{ t: 'quit' }`; out: `{ t: 'open', ... }` once, `{ t: 'done', ... }` per
 * command. `ctl[0] != 0` tells it to stop: it closes the descriptor and exits.
 */
const DEVICE_THREAD = String.raw`
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const ctl = new Int32Array(workerData.ctl);
const { candidates, flags, maxResponse, firstPollMs, maxPollMs, tags } = workerData;
const TAGS = new Set(tags);
const NOTHING_YET = new Set(['EAGAIN', 'EWOULDBLOCK', 'EINTR']);
const BUSY = new Set(['EBUSY', 'EAGAIN', 'EWOULDBLOCK', 'EINTR']);
const buf = Buffer.alloc(maxResponse + 1);
let fd = -1;

const stopped = () => Atomics.load(ctl, 0) !== 0;
const nap = (ms) => { Atomics.wait(ctl, 0, 0, ms); };
const finish = () => {
  if (fd >= 0) { try { fs.closeSync(fd); } catch {} fd = -1; }
  process.exit(0);
};
const ioError = (what, e) => ({ t: 'done', ok: false, kind: 'io', errno: String(e && e.code || ''), message: what + ': ' + (e && e.message || String(e)) });
const protocol = (message) => ({ t: 'done', ok: false, kind: 'protocol', message });

/** Bytes read (0: nothing there yet); throws on a real error. */
function readSome(off, len) {
  try {
    return fs.readSync(fd, buf, off, len, null);
  } catch (e) {
    if (NOTHING_YET.has(e.code)) return 0;
    throw e;
  }
}

function open() {
  let delay = 1;
  for (;;) {
    let busy = false;
    for (let i = 0; i < candidates.length; i++) {
      try {
        fd = fs.openSync(candidates[i], flags);
      } catch (e) {
        // Fall back only when the device is missing; /dev/tpm0 is exclusive (EBUSY while another opener holds it).
        if (e.code === 'ENOENT' && i + 1 < candidates.length) continue;
        if (BUSY.has(e.code)) { busy = true; break; }
        return { t: 'open', ok: false, errno: String(e.code || ''), message: e.message, path: candidates[i] };
      }
      let isChar = false;
      try { isChar = fs.fstatSync(fd).isCharacterDevice(); } catch {}
      if (!isChar) {
        try { fs.closeSync(fd); } catch {}
        fd = -1;
        return { t: 'open', ok: false, errno: 'ENOTCHR', message: candidates[i] + ' is not a character device', path: candidates[i] };
      }
      return { t: 'open', ok: true, path: candidates[i] };
    }
    if (!busy || stopped()) return { t: 'open', ok: false, errno: 'ESTOPPED', message: 'stopped while opening', path: candidates[0] };
    nap(delay);
    delay = Math.min(delay * 2, 50);
  }
}

function exchange(cmd) {
  let n;
  try { n = readSome(0, buf.length); } catch (e) { return ioError('read', e); }
  if (n > 0) return protocol(n + ' unexpected bytes were waiting before the command');

  let delay = firstPollMs;
  for (;;) {
    try {
      const w = fs.writeSync(fd, cmd, 0, cmd.length, null);
      if (w !== cmd.length) return protocol('the device took ' + w + ' of ' + cmd.length + ' command bytes');
      break;
    } catch (e) {
      if (!BUSY.has(e.code)) return ioError('write', e);
      if (stopped()) return null;
      nap(delay);
      delay = Math.min(delay * 2, maxPollMs);
    }
  }

  let got = 0;
  let size = -1;
  delay = firstPollMs;
  for (;;) {
    if (stopped()) return null;
    // Ask for one byte more than the frame needs, so a device that says too much is caught.
    const want = size < 0 ? buf.length - got : size + 1 - got;
    try { n = readSome(got, want); } catch (e) { return ioError('read', e); }
    if (n === 0) {
      nap(delay);
      delay = Math.min(delay * 2, maxPollMs);
      continue;
    }
    got += n;
    delay = firstPollMs;
    if (size < 0 && got >= 10) {
      const tag = buf.readUInt16BE(0);
      size = buf.readUInt32BE(2);
      if (!TAGS.has(tag)) return protocol('response tag 0x' + tag.toString(16).padStart(4, '0') + ' is not a TPM response tag');
      if (size < 10 || size > maxResponse) return protocol('response size ' + size + ' outside 10..' + maxResponse);
    }
    if (size >= 0 && got > size) return protocol((got - size) + ' bytes beyond the response size ' + size);
    if (size >= 0 && got === size) {
      try { n = readSome(got, 1); } catch (e) { return ioError('read', e); }
      if (n > 0) return protocol('bytes beyond the response size ' + size);
      const rsp = new Uint8Array(size);
      rsp.set(buf.subarray(0, size));
      return { t: 'done', ok: true, rsp };
    }
  }
}

const opened = open();
parentPort.postMessage(opened);
if (!opened.ok) finish();
parentPort.on('message', (m) => {
  if (m.t === 'quit' || stopped()) return finish();
  const r = exchange(m.cmd);
  if (r === null) return finish();
  if (r.ok) parentPort.postMessage(r, [r.rsp.buffer]);
  else { parentPort.postMessage(r); finish(); }
});
`;

type ThreadMessage =
  | { readonly t: 'open'; readonly ok: true; readonly path: string }
  | { readonly t: 'open'; readonly ok: false; readonly errno: string; readonly message: string; readonly path: string }
  | { readonly t: 'done'; readonly ok: true; readonly rsp: Uint8Array }
  | { readonly t: 'done'; readonly ok: false; readonly kind: 'io' | 'protocol'; readonly errno?: string; readonly message: string };

interface Pending {
  readonly resolve: (v: Uint8Array) => void;
  readonly reject: (e: TransportError) => void;
}

/** An Error carrying the device's errno, kept as `cause` of the TransportError. */
function errnoError(errno: string, message: string): Error {
  return Object.assign(new Error(message), { code: errno });
}

/** Why an open failed, as the transport error a caller can act on. */
function openError(what: string, m: { errno: string; message: string; path: string }): TransportError {
  const cause = errnoError(m.errno, m.message);
  const hint =
    m.errno === 'ENOENT'
      ? ' (no TPM device: is the kernel driver loaded?)'
      : m.errno === 'EACCES' || m.errno === 'EPERM'
        ? ' (permission denied: run as a member of the device group, usually "tss")'
        : '';
  return new TransportError('transport.connect', `${what}: cannot open ${m.path}: ${m.message}${hint}`, { cause });
}

/** One open of the device, owned by one thread. */
class DeviceHandle {
  /** Resolves with the path opened; rejects if the open fails or is abandoned. */
  readonly opened: Promise<string>;
  /** Resolves when the thread has exited (its descriptor is then closed). */
  readonly exited: Promise<void>;
  readonly #what: string;
  readonly #worker: Worker;
  readonly #ctl: Int32Array;
  #openSettle: ((err: TransportError | undefined, path?: string) => void) | undefined;
  #pending: Pending | undefined;
  #gone: TransportError | undefined;

  constructor(what: string, candidates: readonly string[], maxPollMs: number) {
    this.#what = what;
    const shared = new SharedArrayBuffer(4);
    this.#ctl = new Int32Array(shared);
    this.opened = new Promise<string>((resolve, reject) => {
      this.#openSettle = (err, path) => {
        this.#openSettle = undefined;
        if (err) reject(err);
        else resolve(path ?? '');
      };
    });
    // Nobody may be waiting on `opened` when the thread dies; never leave it unhandled.
    this.opened.catch(() => undefined);

    this.#worker = new Worker(DEVICE_THREAD, {
      eval: true,
      workerData: {
        ctl: shared,
        candidates,
        // O_NOCTTY: opening a terminal-like device must never make it our controlling terminal.
        flags: fsConstants.O_RDWR | fsConstants.O_NONBLOCK | fsConstants.O_NOCTTY,
        maxResponse: LIMITS.MAX_RESPONSE_SIZE,
        firstPollMs: Math.min(FIRST_POLL_MS, maxPollMs),
        maxPollMs,
        tags: RESPONSE_TAGS,
      },
    });
    this.exited = new Promise<void>((resolve) => this.#worker.once('exit', () => resolve()));

    this.#worker.on('message', (m: ThreadMessage) => {
      if (m.t === 'open') {
        // An idle device must not keep the process alive.
        if (!this.#pending) this.#worker.unref();
        if (m.ok) this.#openSettle?.(undefined, m.path);
        else this.#fail(openError(this.#what, m));
        return;
      }
      const p = this.#pending;
      this.#pending = undefined;
      if (m.ok) {
        p?.resolve(m.rsp);
        return;
      }
      const err =
        m.kind === 'protocol'
          ? new TransportError('transport.protocol', `${this.#what}: ${m.message}`)
          : new TransportError(
              m.errno === 'ETIME' || m.errno === 'ETIMEDOUT' ? 'transport.timeout' : 'transport.closed',
              `${this.#what}: ${m.message}`,
              { cause: errnoError(m.errno ?? '', m.message) },
            );
      p?.reject(err);
      this.#fail(err);
    });
    this.#worker.on('error', (e: Error) =>
      this.#fail(new TransportError('transport.closed', `${what}: device thread failed: ${e.message}`, { cause: e })),
    );
    this.#worker.on('exit', () => this.#fail(new TransportError('transport.closed', `${what}: device closed`)));
    // Adding a 'message' listener refs a worker, so the thread keeps the process alive from
    // here until the open settles; after that only while a command is out (exchange()).
  }

  /** Whether this open can carry another command. */
  get usable(): boolean {
    return this.#gone === undefined;
  }

  /** Send one command and resolve with its whole response. One at a time (the queue sees to it). */
  exchange(cmd: Uint8Array): Promise<Uint8Array> {
    if (this.#gone) return Promise.reject(this.#gone);
    if (this.#pending) return Promise.reject(new TransportError('transport.busy', `${this.#what}: a command is already in flight`));
    return new Promise<Uint8Array>((resolve, reject) => {
      this.#pending = { resolve, reject };
      this.#worker.ref();
      this.#worker.postMessage({ t: 'send', cmd });
    }).finally(() => this.#worker.unref());
  }

  /**
   * Give up on this open now: a pending open or command rejects with
   * `reason`, and the thread closes the descriptor and exits as soon as its
   * current system call returns.
   */
  abandon(reason: TransportError): void {
    Atomics.store(this.#ctl, 0, 1);
    Atomics.notify(this.#ctl, 0);
    this.#worker.postMessage({ t: 'quit' });
    this.#worker.unref();
    this.#fail(reason);
  }

  /** Resolves once the thread has exited, or after `graceMs`. */
  async exitedWithin(graceMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, graceMs);
      timer.unref();
    });
    await Promise.race([this.exited, grace]);
    clearTimeout(timer);
  }

  /** Mark the open unusable; settle whatever waits on it with the first reason. */
  #fail(err: TransportError): void {
    this.#gone ??= err;
    this.#openSettle?.(this.#gone);
    const p = this.#pending;
    this.#pending = undefined;
    p?.reject(this.#gone);
  }
}

/**
 * A TPM behind the Linux kernel. Commands run one at a time; each call's
 * deadline covers queueing, opening and the exchange. The kernel interface has
 * no locality: only locality 0 is accepted.
 */
export class DeviceTransport implements Transport {
  /** The device asked for. */
  readonly path: string;
  /** The device opened when `path` is missing, if asked for. */
  readonly fallback: string | undefined;
  readonly #what: string;
  readonly #queue: CommandQueue;
  readonly #maxPollMs: number;
  readonly #closeGraceMs: number;
  /** Every thread not yet known to have exited, so close() can wait for their descriptors. */
  readonly #handles = new Set<DeviceHandle>();
  #io: DeviceHandle | undefined;
  #openedPath: string | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: DeviceTransportOptions = {}) {
    this.path = options.path ?? TPMRM_DEVICE;
    this.fallback = options.fallback === true ? TPM_DEVICE : typeof options.fallback === 'string' ? options.fallback : undefined;
    const poll = options.pollIntervalMs ?? 2;
    if (!(poll > 0) || !Number.isFinite(poll)) throw new RangeError(`pollIntervalMs must be a positive number, got ${poll}`);
    this.#maxPollMs = poll;
    this.#closeGraceMs = options.closeGraceMs ?? 1000;
    this.#what = `device ${this.path}`;
    this.#queue = new CommandQueue(this.#what, options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  }

  /** The device actually opened (`path` or the fallback), once an open has succeeded. */
  get openedPath(): string | undefined {
    return this.#openedPath;
  }

  /** Open the device now rather than on the first command, so a missing device or a permission problem shows early. */
  open(deadline: Deadline = {}): Promise<void> {
    return this.#queue.run(
      async (signal) => {
        await this.#connect(signal);
      },
      deadline,
      (reason) => this.#drop(reason),
    );
  }

  send(command: Uint8Array, options: SendOptions = {}): Promise<Uint8Array> {
    try {
      if (checkLocality(options.locality ?? 0) !== 0) {
        throw new TransportError(
          'transport.unsupported',
          `${this.#what}: the kernel's TPM interface has no locality; only locality 0 can be used, not ${options.locality}`,
        );
      }
      checkCommand(command);
      // The kernel refuses a write shorter than the header's size (EINVAL), and a longer one would be read as the next command.
      const size = getU32(command, 2);
      if (size !== command.length) {
        throw new TransportError('transport.protocol', `${this.#what}: the command's size field says ${size} but it has ${command.length} bytes`);
      }
    } catch (e) {
      return Promise.reject(e);
    }
    // A copy: a caller reusing its buffer must not change a queued command.
    const bytes = command.slice();
    return this.#queue.run(
      async (signal) => {
        const io = await this.#connect(signal);
        try {
          return await io.exchange(bytes);
        } catch (e) {
          // After any failure the descriptor's state is unknown: never reuse it.
          this.#drop(e instanceof TransportError ? e : new TransportError('transport.protocol', String(e), { cause: e }));
          throw e;
        }
      },
      options,
      (reason) => this.#drop(reason),
    );
  }

  /**
   * Reject queued and running commands with `transport.closed`, and close the
   * device (waiting up to `closeGraceMs` for each thread to close its
   * descriptor). Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#queue.close();
      const io = this.#io;
      this.#io = undefined;
      io?.abandon(new TransportError('transport.closed', `${this.#what} is closed`));
      await Promise.all([...this.#handles].map((h) => h.exitedWithin(this.#closeGraceMs)));
    })();
    return this.#closing;
  }

  async #connect(signal: AbortSignal): Promise<DeviceHandle> {
    if (this.#io?.usable) {
      await this.#io.opened;
      return this.#io;
    }
    const candidates = this.fallback !== undefined && this.fallback !== this.path ? [this.path, this.fallback] : [this.path];
    const io = new DeviceHandle(this.#what, candidates, this.#maxPollMs);
    this.#io = io;
    this.#handles.add(io);
    void io.exited.then(() => this.#handles.delete(io));
    try {
      this.#openedPath = await io.opened;
    } catch (e) {
      if (this.#io === io) this.#io = undefined;
      throw e;
    }
    // Cancelled while opening: do not send a command nobody waits for.
    if (signal.aborted) throw abortError(signal.reason);
    return io;
  }

  #drop(reason: TransportError): void {
    const io = this.#io;
    this.#io = undefined;
    io?.abandon(reason);
  }
}
