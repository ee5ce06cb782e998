/**
 * What the swtpm, mssim and in-process transports share: a one-at-a-time
 * command queue with deadlines, abort and close; a TCP connect with a timeout;
 * a socket reader that hands out exact byte counts; and a persistent
 * connection that is dropped (and lazily re-made) whenever an exchange fails,
 * so a late reply can never reach the next command.
 */
import { Socket } from 'node:net';
import { TransportError } from '../errors.js';

/** Per-call limits: an absolute timeout (queueing included) and a caller's signal. */
export interface Deadline {
  readonly signal?: AbortSignal | undefined;
  readonly timeoutMs?: number | undefined;
}

/** A caller's abort reason, as the transport error it becomes. */
export function abortError(reason: unknown): TransportError {
  if (reason instanceof TransportError) return reason;
  return new TransportError('transport.aborted', 'the command was aborted', { cause: reason });
}

export function closedError(what: string): TransportError {
  return new TransportError('transport.closed', `${what} is closed`);
}

/**
 * One queued call. Without a caller's signal it has no AbortController of its
 * own (one, with its listener, costs more than an in-process command): it runs
 * with the queue's shared signal, which only ever reaches the running job.
 * Its listener on a caller's signal and its timer carry the job itself, and
 * its work settles through the queue's two shared callbacks, so queueing
 * makes no closures either.
 */
class Job {
  readonly #queue: CommandQueue;
  readonly #work: (signal: AbortSignal) => Promise<unknown>;
  readonly #resolve: (v: unknown) => void;
  readonly #reject: (e: unknown) => void;
  readonly #onAbortInFlight: ((reason: TransportError) => void) | undefined;
  readonly #callerSignal: AbortSignal | undefined;
  /** The job's own controller: only when the caller gave a signal. */
  readonly #ctl: AbortController | undefined;
  #timer: NodeJS.Timeout | undefined;
  running = false;
  settled = false;

  constructor(
    queue: CommandQueue,
    work: (signal: AbortSignal) => Promise<unknown>,
    resolve: (v: unknown) => void,
    reject: (e: unknown) => void,
    onAbortInFlight: ((reason: TransportError) => void) | undefined,
    callerSignal: AbortSignal | undefined,
    timeoutMs: number,
  ) {
    this.#queue = queue;
    this.#work = work;
    this.#resolve = resolve;
    this.#reject = reject;
    this.#onAbortInFlight = onAbortInFlight;
    this.#callerSignal = callerSignal;
    if (callerSignal !== undefined) {
      this.#ctl = new AbortController();
      callerSignal.addEventListener('abort', this, { once: true });
    }
    if (Number.isFinite(timeoutMs) && timeoutMs > 0) this.#timer = setTimeout(onJobTimeout, timeoutMs, this, queue.what, timeoutMs);
  }

  /** The caller's signal fired (EventListener object: no closure per job). */
  handleEvent(): void {
    this.abort(abortError(this.#callerSignal?.reason));
  }

  /** Timeout, caller's abort or close: reject now; a running job also sees its signal fire. */
  abort(reason: TransportError): void {
    if (this.settled) return;
    if (this.running) this.#onAbortInFlight?.(reason);
    this.#settle(false, reason);
    if (this.running) {
      if (this.#ctl !== undefined) this.#ctl.abort(reason);
      else this.#queue.abortShared(reason);
    }
  }

  start(shared: AbortSignal): Promise<unknown> {
    this.running = true;
    try {
      return this.#work(this.#ctl?.signal ?? shared);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Its work has settled (after an abort the caller already has its reason; the outcome is dropped). */
  finish(ok: boolean, result: unknown): void {
    this.#settle(ok, result);
    this.#queue.done();
  }

  #settle(ok: boolean, result: unknown): void {
    if (this.settled) return;
    this.settled = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#callerSignal?.removeEventListener('abort', this);
    if (ok) this.#resolve(result);
    else this.#reject(result);
  }
}

function onJobTimeout(job: Job, what: string, timeoutMs: number): void {
  job.abort(new TransportError('transport.timeout', `${what}: no response within ${timeoutMs} ms`));
}

/**
 * Runs jobs one at a time, in order. Each job gets a signal that fires (with
 * a TransportError as reason) on timeout, on the caller's abort or on close;
 * the caller is rejected at once, but the next job starts only after the
 * aborted one has settled (the peer or engine is never handed two commands at
 * once). A call without a signal of its own runs with the queue's shared
 * signal (no AbortController per command): it is replaced once fired, so it
 * fires for the running job that was aborted and never for a later one. A
 * job must not act on its signal after its promise has settled (an earlier
 * job's shared signal may fire for a later job).
 */
export class CommandQueue {
  readonly #what: string;
  readonly #defaultTimeoutMs: number;
  /** Jobs behind the running one, in order (a cancelled one stays until its turn and is skipped). */
  readonly #waiting: Job[] = [];
  /** The job whose work is running (perhaps already aborted): the only one whose work can settle. */
  #running: Job | undefined;
  #shared = new AbortController();
  #closed = false;
  /** new Promise(#capture) hands its resolvers over here: no executor closure per call. */
  #resolve: ((v: unknown) => void) | undefined;
  #reject: ((e: unknown) => void) | undefined;
  readonly #capture = (resolve: (v: unknown) => void, reject: (e: unknown) => void): void => {
    this.#resolve = resolve;
    this.#reject = reject;
  };
  // One pair of settle callbacks for every job: only the running job's work can settle.
  readonly #workDone = (v: unknown): void => this.#running!.finish(true, v);
  readonly #workFailed = (e: unknown): void => this.#running!.finish(false, e);

  constructor(what: string, defaultTimeoutMs: number) {
    this.#what = what;
    this.#defaultTimeoutMs = defaultTimeoutMs;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Jobs queued behind the running one. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /**
   * Nothing is running: a job given to run() now starts before run()
   * returns (unless the queue is closed or its signal has fired).
   */
  get idle(): boolean {
    return this.#running === undefined;
  }

  /**
   * Queue `job`. `onAbortInFlight` runs if the job is cancelled while running
   * (a socket transport destroys its connection there).
   */
  run<T>(
    job: (signal: AbortSignal) => Promise<T>,
    deadline: Deadline = {},
    onAbortInFlight?: (reason: TransportError) => void,
  ): Promise<T> {
    if (this.#closed) return Promise.reject(closedError(this.#what));
    const { signal } = deadline;
    if (signal?.aborted) return Promise.reject(abortError(signal.reason));
    const timeoutMs = deadline.timeoutMs ?? this.#defaultTimeoutMs;
    const promise = new Promise<unknown>(this.#capture) as Promise<T>;
    const j = new Job(this, job, this.#resolve!, this.#reject!, onAbortInFlight, signal, timeoutMs);
    this.#resolve = this.#reject = undefined;
    if (this.#running === undefined) this.#start(j);
    else this.#waiting.push(j);
    return promise;
  }

  /** Reject everything queued or running with `transport.closed`; later runs reject too. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const err = closedError(this.#what);
    this.#running?.abort(err);
    const waiting = this.#waiting.splice(0);
    for (const j of waiting) j.abort(err);
  }

  /** @internal The name timeouts report. */
  get what(): string {
    return this.#what;
  }

  /** @internal Fire the shared signal (its holder, the running job, was aborted) and start a fresh one. */
  abortShared(reason: TransportError): void {
    const fired = this.#shared;
    this.#shared = new AbortController();
    fired.abort(reason);
  }

  /** @internal The running job's work has finished: start the next. */
  done(): void {
    this.#running = undefined;
    let next: Job | undefined;
    while ((next = this.#waiting.shift()) !== undefined) {
      if (next.settled) continue; // cancelled while queued: never sent
      this.#start(next);
      return;
    }
  }

  #start(job: Job): void {
    this.#running = job;
    job.start(this.#shared.signal).then(this.#workDone, this.#workFailed);
  }
}

/** Open a TCP connection with Nagle off (tpm-peers.md §6.5). Failures are `transport.connect`. */
export function connectTcp(host: string, port: number, timeoutMs: number, signal: AbortSignal): Promise<Socket> {
  return new Promise<Socket>((resolve, reject) => {
    const socket = new Socket();
    let timer: NodeJS.Timeout | undefined;
    const fail = (err: TransportError): void => {
      cleanup();
      socket.destroy();
      reject(err);
    };
    const onError = (e: Error): void =>
      fail(new TransportError('transport.connect', `cannot connect to ${host}:${port}: ${e.message}`, { cause: e }));
    const onAbort = (): void => fail(abortError(signal.reason));
    const cleanup = (): void => {
      if (timer !== undefined) clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      socket.off('error', onError);
    };
    if (signal.aborted) {
      reject(abortError(signal.reason));
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    socket.on('error', onError);
    if (Number.isFinite(timeoutMs) && timeoutMs > 0) {
      timer = setTimeout(
        () => fail(new TransportError('transport.connect', `cannot connect to ${host}:${port}: timed out after ${timeoutMs} ms`)),
        timeoutMs,
      );
    }
    socket.connect({ host, port, noDelay: true }, () => {
      cleanup();
      socket.setNoDelay(true);
      resolve(socket);
    });
  });
}

/**
 * A connected socket read as a byte stream: `read(n)` resolves with exactly n
 * bytes. Every socket event has a listener, so nothing is ever emitted
 * unhandled. Bytes that arrived before the peer closed stay readable (a peer
 * may answer and hang up at once); a local failure discards them.
 */
export class FramedSocket {
  readonly socket: Socket;
  readonly #what: string;
  readonly #maxBuffered: number;
  #chunks: Buffer[] = [];
  #buffered = 0;
  #waiter: { n: number; resolve: (b: Uint8Array) => void; reject: (e: TransportError) => void } | undefined;
  /** Set once the connection is unusable: reads beyond the buffered bytes reject with it. */
  #failure: TransportError | undefined;

  constructor(socket: Socket, what: string, maxBuffered: number) {
    this.socket = socket;
    this.#what = what;
    this.#maxBuffered = maxBuffered;
    socket.on('data', (chunk: Buffer) => {
      if (this.#failure) return;
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
      if (this.#buffered > this.#maxBuffered) {
        this.fail(new TransportError('transport.protocol', `${what}: peer sent more than ${this.#maxBuffered} bytes unasked`));
        return;
      }
      this.#deliver();
    });
    socket.on('end', () => this.#peerGone(new TransportError('transport.closed', `${what}: peer closed the connection`)));
    socket.on('close', () => this.#peerGone(new TransportError('transport.closed', `${what}: connection closed`)));
    socket.on('error', (e: Error) =>
      this.#peerGone(new TransportError('transport.closed', `${what}: connection failed: ${e.message}`, { cause: e })),
    );
  }

  /** Whether the connection can no longer carry a new command. */
  get failed(): boolean {
    return this.#failure !== undefined;
  }

  /** Bytes received and not yet read. Non-zero between exchanges means the peer is out of step. */
  get buffered(): number {
    return this.#buffered;
  }

  /** One write per frame: swtpm frames by its first read() (tpm-peers.md §2.3, §6.2). */
  write(bytes: Uint8Array): void {
    if (this.#failure) throw this.#failure;
    this.socket.write(bytes);
  }

  read(n: number): Promise<Uint8Array> {
    if (this.#waiter) return Promise.reject(new TransportError('transport.busy', `${this.#what}: a read is already pending`));
    if (this.#buffered >= n) return Promise.resolve(this.#take(n));
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise<Uint8Array>((resolve, reject) => {
      this.#waiter = { n, resolve, reject };
    });
  }

  async readU32(): Promise<number> {
    return getU32(await this.read(4), 0);
  }

  /** A local decision (timeout, abort, bad framing): discard everything and destroy. Idempotent. */
  fail(err: TransportError): void {
    this.#chunks = [];
    this.#buffered = 0;
    this.#peerGone(err);
    this.socket.destroy();
  }

  #peerGone(err: TransportError): void {
    if (this.#failure) return;
    this.#failure = err;
    const w = this.#waiter;
    if (w && this.#buffered < w.n) {
      this.#waiter = undefined;
      w.reject(err);
    }
  }

  /** Half-close and wait (bounded) for the peer to close too. */
  end(graceMs: number): Promise<void> {
    if (this.#failure || this.socket.destroyed) {
      this.socket.destroy();
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.fail(closedError('connection')), graceMs);
      this.socket.once('close', () => {
        clearTimeout(timer);
        this.fail(closedError('connection'));
        resolve();
      });
      this.socket.end();
    });
  }

  #deliver(): void {
    const w = this.#waiter;
    if (!w || this.#buffered < w.n) return;
    this.#waiter = undefined;
    w.resolve(this.#take(w.n));
  }

  #take(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let off = 0;
    while (off < n) {
      const head = this.#chunks[0]!;
      const k = Math.min(head.length, n - off);
      out.set(head.subarray(0, k), off);
      off += k;
      if (k === head.length) this.#chunks.shift();
      else this.#chunks[0] = head.subarray(k);
    }
    this.#buffered -= n;
    return out;
  }
}

export interface ChannelOptions {
  /** Names the peer in error messages, e.g. `swtpm 127.0.0.1:2321`. */
  readonly what: string;
  readonly host: string;
  readonly port: number;
  readonly connectTimeoutMs: number;
  readonly timeoutMs: number;
  /** Bound on bytes buffered from the peer (a response plus its framing). */
  readonly maxBuffered: number;
}

/**
 * One persistent TCP connection, one exchange at a time. The connection is
 * made on first use; any failed, timed-out or aborted exchange destroys it,
 * and the next exchange reconnects.
 */
export class SocketChannel {
  readonly #opts: ChannelOptions;
  readonly #queue: CommandQueue;
  #io: FramedSocket | undefined;
  #connecting: AbortController | undefined;
  #closing: Promise<void> | undefined;

  constructor(opts: ChannelOptions) {
    this.#opts = opts;
    this.#queue = new CommandQueue(opts.what, opts.timeoutMs);
  }

  get closed(): boolean {
    return this.#queue.closed;
  }

  /** Whether a connection is currently open (it may still be re-made later). */
  get connected(): boolean {
    return this.#io !== undefined && !this.#io.failed;
  }

  /** Run `exchange` on the connection, after every earlier exchange has finished. */
  exchange<T>(exchange: (io: FramedSocket, signal: AbortSignal) => Promise<T>, deadline?: Deadline): Promise<T> {
    return this.#queue.run(
      async (signal) => {
        const io = await this.#connect(signal);
        io.socket.ref();
        try {
          // Cancelled while connecting: do not send a command nobody waits for.
          if (signal.aborted) throw abortError(signal.reason);
          if (io.buffered > 0) {
            throw new TransportError('transport.protocol', `${this.#opts.what}: ${io.buffered} unexpected bytes before the command`);
          }
          return await exchange(io, signal);
        } catch (e) {
          // The stream's position is unknown after any failure: start afresh next time.
          this.#drop(e instanceof TransportError ? e : new TransportError('transport.protocol', String(e), { cause: e }));
          throw e;
        } finally {
          // An idle connection must not keep the process alive.
          if (this.#queue.waiting === 0 && !io.failed) io.socket.unref();
        }
      },
      deadline,
      (reason) => this.#drop(reason),
    );
  }

  /**
   * Reject pending exchanges with `transport.closed`, write `goodbye` (if any)
   * on a live connection, and close it. Idempotent.
   */
  close(goodbye?: Uint8Array): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#queue.close();
    const io = this.#io;
    this.#closing = (async () => {
      if (!io || io.failed) return;
      if (goodbye) {
        try {
          io.write(goodbye);
        } catch {
          return;
        }
      }
      await io.end(1000);
    })();
    return this.#closing;
  }

  async #connect(signal: AbortSignal): Promise<FramedSocket> {
    if (this.#io && !this.#io.failed) return this.#io;
    this.#io?.fail(new TransportError('transport.closed', `${this.#opts.what}: replaced by a new connection`));
    this.#io = undefined;
    const ctl = new AbortController();
    const onAbort = (): void => ctl.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    this.#connecting = ctl;
    try {
      const socket = await connectTcp(this.#opts.host, this.#opts.port, this.#opts.connectTimeoutMs, ctl.signal);
      this.#io = new FramedSocket(socket, this.#opts.what, this.#opts.maxBuffered);
      return this.#io;
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.#connecting = undefined;
    }
  }

  #drop(reason: TransportError): void {
    this.#connecting?.abort(reason);
    const io = this.#io;
    this.#io = undefined;
    io?.fail(reason);
  }
}

/** Big-endian u32 at `off`. */
export function getU32(b: Uint8Array, off: number): number {
  return ((b[off]! << 24) | (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!) >>> 0;
}

/** Big-endian u32 into `b` at `off`. */
export function putU32(b: Uint8Array, off: number, v: number): void {
  b[off] = (v >>> 24) & 0xff;
  b[off + 1] = (v >>> 16) & 0xff;
  b[off + 2] = (v >>> 8) & 0xff;
  b[off + 3] = v & 0xff;
}

/** A big-endian u32 as 4 bytes. */
export function be32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  putU32(b, 0, v);
  return b;
}
