/**
 * TCP servers for a software TPM: the Microsoft simulator protocol and
 * swtpm's protocol (tpm-peers.md §2.2–§2.4), both driving any object that
 * executes whole commands (`SimulatorPlatform`).
 *
 * One server owns two ports: the command port N and, on N+1, either the MS
 * platform port (`protocol: 'mssim'`) or swtpm's control channel
 * (`protocol: 'swtpm'`) — the two collide on codes 1, 2, 9, 10, 11 (§2.4),
 * so one instance speaks one of them. The command port accepts raw commands
 * (what the `swtpm` TCTI sends) and the MS `TPM_SEND_COMMAND` prefix (what
 * the `mssim` TCTI and swtpm's own port accept) in both modes; the other MS
 * command-port signals only in `mssim` mode.
 *
 * Like both peers, each port serves one client at a time and queues the
 * others (§2.3, pitfall 1). Unlike swtpm, commands are framed by their size
 * fields, not by read() boundaries (pitfall 2). Everything that reaches the
 * TPM — commands and platform signals, from either port — runs one at a time
 * through one queue; a client that disconnects mid-command does not cancel
 * it: the TPM finishes and the answer is dropped.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { ArgumentError, TransportError } from '../tpm/errors.js';
import { encodeErrorResponse } from '../tpm/frame.js';
import { LIMITS } from '../tpm/limits.js';
import { TPM_RC } from '../tpm/rc.js';
import { MSSIM_SIGNAL } from '../tpm/transport/mssim.js';
import { SWTPM_CTRL } from '../tpm/transport/swtpm.js';

/** What a server drives: a TPM engine plus its platform signals. */
export interface SimulatorPlatform {
  /**
   * Execute one whole command at `locality` (0..4) and return the whole
   * response. Must not throw for a bad command (answer an error response);
   * a throw is answered with TPM_RC_FAILURE.
   */
  execute(command: Uint8Array, locality: number): Promise<Uint8Array>;
  /** _TPM_Init after power-on: the TPM then needs TPM2_Startup. A new engine is powered on. */
  powerOn(): void | Promise<void>;
  /** Power removed: volatile state is lost. */
  powerOff(): void | Promise<void>;
  /** A platform reset while powered (MS SIGNAL_RESET, swtpm CMD_INIT): _TPM_Init, Startup needed. */
  reset(): void | Promise<void>;
  /** MS SIGNAL_RESTART (_TPM_Init for a TPM Restart/Resume); default: reset(). */
  restart?(): void | Promise<void>;
  /** NV available (MS NV_ON) / unavailable (NV_OFF, commands touching NV then answer TPM_RC_NV_UNAVAILABLE). */
  nvOn?(): void | Promise<void>;
  nvOff?(): void | Promise<void>;
  /** Cancel line (MS CANCEL_ON/OFF, swtpm CANCEL_TPM_CMD sets it for the running command). */
  cancel?(on: boolean): void | Promise<void>;
  /** Physical presence (MS PHYS_PRES_ON/OFF). */
  physicalPresence?(on: boolean): void | Promise<void>;
  /** _TPM_Hash_Start / _TPM_Hash_Data / _TPM_Hash_End (Part 1 §34.4, the D-RTM sequence at locality 4). */
  hashStart?(): void | Promise<void>;
  hashData?(data: Uint8Array): void | Promise<void>;
  hashEnd?(): void | Promise<void>;
  /** The TPM-established flag (set by a D-RTM sequence; swtpm GET_TPMESTABLISHED). */
  tpmEstablished?(): boolean;
  resetTpmEstablished?(locality: number): void | Promise<void>;
  /** Enter failure mode (MS TEST_FAILURE_MODE). */
  failureMode?(): void | Promise<void>;
}

export type ServerProtocol = 'mssim' | 'swtpm';

export interface TpmServerOptions {
  readonly platform: SimulatorPlatform;
  /** Which protocol port+1 speaks. */
  readonly protocol: ServerProtocol;
  /** Command port; 0 picks a free N with N+1 also free. */
  readonly port: number;
  /** Default 127.0.0.1; anything else exposes the TPM's platform hierarchy to the network. */
  readonly host?: string;
  /** Platform/control port, default port+1. */
  readonly platformPort?: number;
  /**
   * Whether MS STOP (21) and swtpm SHUTDOWN (3) close the server, as they end
   * the peers' processes (default true). `closed` resolves either way.
   */
  readonly remoteStop?: boolean;
  /** Clients waiting per port beyond the one served; more are refused (closed at once). Default 16. */
  readonly maxQueued?: number;
  /** Once a frame has started, the rest must arrive within this time (default 10 s; swtpm control: 500 ms, §2.3). */
  readonly frameTimeoutMs?: number;
  /** Called with anything the server absorbed instead of crashing (an engine throw, a socket error). */
  readonly onError?: (error: unknown) => void;
}

export interface TpmServer {
  readonly host: string;
  readonly port: number;
  readonly platformPort: number;
  readonly protocol: ServerProtocol;
  /** Resolves when the server has closed (close(), or a remote STOP/SHUTDOWN). */
  readonly closed: Promise<void>;
  /** Stop listening, drop every client, wait for a running command to finish. Idempotent. */
  close(): Promise<void>;
}


/** swtpm control results (TPM 1.2 return codes, as swtpm uses them). */
export const SWTPM_RESULT = {
  SUCCESS: 0,
  BAD_PARAMETER: 3,
  FAIL: 9,
  BAD_ORDINAL: 10,
} as const;

/**
 * PTM_CAP_* bits of the control commands this server implements (swtpm
 * tpm_ioctl.h): INIT 0, SHUTDOWN 1, GET_TPMESTABLISHED 2, SET_LOCALITY 3,
 * HASHING 4, CANCEL_TPM_CMD 5, STORE_VOLATILE 6, RESET_TPMESTABLISHED 7,
 * STOP 10, GET_CONFIG 11, SET_BUFFERSIZE 13, SEND_COMMAND_HEADER 15. Not the
 * state blobs (8, 9), SET_DATAFD (12) or GET_INFO (14).
 */
export const SWTPM_CAPABILITIES = 0b1010_1100_1111_1111n;

/** REMOTE_HANDSHAKE reply flags (TpmTcpProtocol.h): platform available, supports physical presence. */
const MS_SERVER_VERSION = 1;
const MS_FLAGS = 1 | 8;

/** The TPM I/O buffer this server accepts (SET_BUFFERSIZE range; swtpm's minimum 2808 is libtpms's). */
const BUFFER_MIN = 2808;
const BUFFER_MAX = LIMITS.MAX_COMMAND_SIZE;
const BUFFER_DEFAULT = 4096;

const TPM_ST_NO_SESSIONS = 0x8001;
const TPM_ST_SESSIONS = 0x8002;

/** Start a server; resolves once both ports listen. */
export async function startTpmServer(options: TpmServerOptions): Promise<TpmServer> {
  const host = options.host ?? '127.0.0.1';
  if (options.protocol !== 'mssim' && options.protocol !== 'swtpm') {
    throw new ArgumentError(`protocol must be mssim or swtpm, not ${String(options.protocol)}`);
  }
  checkPort(options.port, 'port');
  if (options.platformPort !== undefined) checkPort(options.platformPort, 'platformPort');
  const state = new ServerState(options);
  const { command, platform } = await listenPair(host, options.port, options.platformPort, (socket) => state.acceptCommand(socket), (socket) => state.acceptPlatform(socket));
  state.attach(command, platform);
  return {
    host,
    port: (command.address() as { port: number }).port,
    platformPort: (platform.address() as { port: number }).port,
    protocol: options.protocol,
    closed: state.closed,
    close: () => state.close(),
  };
}

function checkPort(port: number, what: string): void {
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ArgumentError(`${what} must be an integer in 0..65535, got ${port}`);
}

async function listenPair(
  host: string,
  port: number,
  platformPort: number | undefined,
  onCommand: (s: Socket) => void,
  onPlatform: (s: Socket) => void,
): Promise<{ command: Server; platform: Server }> {
  // With port 0 the platform port must still be N+1 (every client assumes it): retry a few free N.
  for (let attempt = 0; ; attempt++) {
    const command = await listen(host, port, onCommand);
    const n = (command.address() as { port: number }).port;
    const wanted = platformPort ?? n + 1;
    try {
      if (wanted > 65535) throw new TransportError('transport.connect', `no port after ${n}`);
      const platform = await listen(host, wanted, onPlatform);
      return { command, platform };
    } catch (e) {
      await new Promise<void>((resolve) => command.close(() => resolve()));
      if (port !== 0 || platformPort !== undefined || attempt >= 20) throw e;
    }
  }
}

function listen(host: string, port: number, onConnection: (s: Socket) => void): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer({ noDelay: true, pauseOnConnect: true }, onConnection);
    server.once('error', reject);
    server.listen({ host, port, exclusive: true }, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

/** Thrown inside a connection handler to end the connection quietly. */
class EndConnection extends Error {}

/**
 * The platform and control ports' reader (few, small requests; the command
 * port parses in place, CommandConnection below).
 * Reads exact byte counts from a paused socket; the socket stays paused
 * while more than a frame's worth is buffered, so a client cannot make the
 * server buffer without bound.
 */
class SocketReader {
  readonly #socket: Socket;
  #chunks: Buffer[] = [];
  #buffered = 0;
  #ended = false;
  #wake: (() => void) | undefined;

  constructor(socket: Socket) {
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
      if (this.#buffered > 2 * LIMITS.MAX_COMMAND_SIZE + 64) socket.pause();
      this.#notify();
    });
    socket.on('end', () => this.#finish());
    socket.on('close', () => this.#finish());
    socket.on('error', () => this.#finish());
    socket.resume();
  }

  #finish(): void {
    this.#ended = true;
    this.#notify();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /**
   * Exactly n bytes. EndConnection on end of stream or after `timeoutMs`
   * (undefined: wait as long as the client likes, as between frames).
   */
  async read(n: number, timeoutMs?: number): Promise<Uint8Array> {
    const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    while (this.#buffered < n) {
      if (this.#ended) throw new EndConnection();
      if (this.#socket.isPaused()) this.#socket.resume();
      const left = deadline === undefined ? undefined : deadline - Date.now();
      if (left !== undefined && left <= 0) throw new EndConnection();
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        if (left !== undefined) {
          const t = setTimeout(resolve, left);
          this.#wake = () => {
            clearTimeout(t);
            resolve();
          };
        }
      });
    }
    const all = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks);
    const out = new Uint8Array(all.subarray(0, n));
    const rest = all.subarray(n);
    this.#chunks = rest.length > 0 ? [rest] : [];
    this.#buffered = rest.length;
    return out;
  }

  async u32(timeoutMs?: number): Promise<number> {
    const b = await this.read(4, timeoutMs);
    return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
  }
}

/** One port's clients: one served, the rest waiting (paused) in arrival order. */
class Port {
  readonly #serve: (socket: Socket) => Promise<void>;
  readonly #maxQueued: number;
  readonly #onError: (e: unknown) => void;
  readonly #waiting: Socket[] = [];
  #active: Socket | undefined;
  #closed = false;

  constructor(serve: (socket: Socket) => Promise<void>, maxQueued: number, onError: (e: unknown) => void) {
    this.#serve = serve;
    this.#maxQueued = maxQueued;
    this.#onError = onError;
  }

  accept(socket: Socket): void {
    socket.on('error', () => socket.destroy());
    if (this.#closed || this.#waiting.length >= this.#maxQueued) {
      socket.destroy();
      return;
    }
    this.#waiting.push(socket);
    socket.once('close', () => {
      const i = this.#waiting.indexOf(socket);
      if (i >= 0) this.#waiting.splice(i, 1);
    });
    this.#next();
  }

  #next(): void {
    if (this.#active !== undefined || this.#closed) return;
    const socket = this.#waiting.shift();
    if (socket === undefined) return;
    this.#active = socket;
    socket.setNoDelay(true);
    this.#serve(socket)
      .catch((e: unknown) => {
        if (!(e instanceof EndConnection)) this.#onError(e);
      })
      .finally(() => {
        // FIN after the last reply; a client that never closes its side is cut off soon after.
        socket.end();
        setTimeout(() => socket.destroy(), 1000).unref();
        this.#active = undefined;
        this.#next();
      });
  }

  close(): void {
    this.#closed = true;
    for (const s of this.#waiting.splice(0)) s.destroy();
    this.#active?.destroy();
  }
}

function be32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0);
  return b;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Write a whole reply in one write, unless the client has gone (then the answer is dropped). */
function send(socket: Socket, bytes: Uint8Array): void {
  if (!socket.destroyed && socket.writable) socket.write(bytes);
}

/** Bytes a command-port client may have buffered before its socket is paused: two frames' worth. */
const MAX_BUFFERED = 2 * LIMITS.MAX_COMMAND_SIZE + 64;

/** What CommandConnection's step did with the buffered bytes. */
const Step = {
  /** A frame was answered at once: look for the next. */
  Again: 0,
  /** A frame went to the TPM (or a hook): parsing waits for its answer. */
  Busy: 1,
  /** The next frame is not complete yet. */
  More: 2,
  /** The connection is over (SESSION_END, STOP, a frame that cannot be served). */
  End: 3,
} as const;
type Step = (typeof Step)[keyof typeof Step];

/**
 * One client of the command port (both protocols). Frames are parsed from
 * the 'data' events as they arrive and a complete command goes to the TPM at
 * once (commands are framed by their size fields, pitfall 2), its answer
 * written in one write: no promise per read. Bytes that arrive while the TPM
 * works wait in the buffer (the socket paused beyond two frames' worth, so a
 * client cannot make the server buffer without bound). A frame begun must be
 * complete within frameTimeoutMs. `served` resolves when the connection is
 * over, never while a command of its is running.
 */
class CommandConnection {
  readonly served: Promise<void>;
  readonly #socket: Socket;
  readonly #state: ServerState;
  #chunks: Buffer[] = [];
  #buffered = 0;
  #busy = false;
  #draining = false;
  /** No more bytes will come (end, close or error). */
  #ended = false;
  #done = false;
  #timer: NodeJS.Timeout | undefined;
  #resolveServed!: () => void;
  /** Answer callbacks made once per connection, not per command. */
  readonly #rawDone = (rsp: Uint8Array): void => {
    send(this.#socket, rsp);
    this.#answered();
  };
  readonly #msDone = (rsp: Uint8Array): void => {
    send(this.#socket, msResponse(rsp));
    this.#answered();
  };
  readonly #hookDone = (rc: number): void => {
    send(this.#socket, be32(rc));
    this.#answered();
  };

  constructor(socket: Socket, state: ServerState) {
    this.#socket = socket;
    this.#state = state;
    this.served = new Promise((resolve) => (this.#resolveServed = resolve));
    socket.on('data', (chunk: Buffer) => {
      if (this.#done) return;
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
      if (this.#buffered > MAX_BUFFERED) socket.pause();
      if (!this.#busy) this.#drain();
    });
    const ended = (): void => {
      this.#ended = true;
      if (!this.#busy) this.#drain();
    };
    socket.on('end', ended);
    socket.on('close', ended);
    socket.on('error', ended);
    socket.resume();
  }

  #drain(): void {
    if (this.#done || this.#draining) return;
    this.#draining = true;
    try {
      for (;;) {
        const step = this.#step();
        if (step === Step.Again) continue;
        if (step === Step.Busy) {
          if (this.#busy) return;
          continue; // answered synchronously
        }
        if (step === Step.End || this.#ended) {
          this.#finish();
          return;
        }
        // Step.More: wait for bytes, within the frame timeout once a frame has begun.
        if (this.#socket.isPaused()) this.#socket.resume();
        if (this.#buffered > 0) this.#timer ??= setTimeout(() => this.#finish(), this.#state.frameTimeoutMs);
        return;
      }
    } finally {
      this.#draining = false;
    }
  }

  #answered(): void {
    this.#busy = false;
    this.#drain();
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    this.#clearTimer();
    this.#chunks = [];
    this.#buffered = 0;
    this.#resolveServed();
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }

  /** The buffer's head chunk holding at least the next n bytes (chunks joined when a frame spans them), or undefined. */
  #peek(n: number): Buffer | undefined {
    if (this.#buffered < n) return undefined;
    const head = this.#chunks[0]!;
    if (head.length >= n) return head;
    // Joined into an ArrayBuffer of its own (Buffer.concat may take a slice of Node's shared pool): see #take.
    const all = Buffer.allocUnsafeSlow(this.#buffered);
    let at = 0;
    for (const c of this.#chunks) {
      all.set(c, at);
      at += c.length;
    }
    this.#chunks = [all];
    return all;
  }

  /** Drop the next n bytes (#peek(n) made them one chunk's). */
  #skip(n: number): void {
    const head = this.#chunks[0]!;
    if (head.length === n) this.#chunks.shift();
    else this.#chunks[0] = head.subarray(n);
    this.#buffered -= n;
  }

  /**
   * The next n bytes as a plain Uint8Array, after #peek(n): a view, not a copy. Node gives every read its own
   * ArrayBuffer and #peek joins spanning frames into a new one, so nothing else ever writes these bytes (the
   * engine may keep parts of a command), and a copy would be a second off-heap allocation per command.
   */
  #take(n: number): Uint8Array {
    const head = this.#chunks[0]!;
    const out = new Uint8Array(head.buffer, head.byteOffset, n);
    this.#skip(n);
    return out;
  }

  /** A whole frame is taken: no frame timeout until the next one begins. */
  #command(command: Uint8Array, locality: number, ms: boolean): Step {
    this.#clearTimer();
    this.#busy = true;
    this.#state.runCommand(command, locality, ms ? this.#msDone : this.#rawDone);
    return Step.Busy;
  }

  #hook(fn: (() => void | Promise<void>) | undefined): Step {
    this.#clearTimer();
    this.#busy = true;
    void this.#state.hook(fn).then(this.#hookDone);
    return Step.Busy;
  }

  #reply(bytes: Uint8Array): Step {
    this.#clearTimer();
    send(this.#socket, bytes);
    return Step.Again;
  }

  #step(): Step {
    const h4 = this.#peek(4);
    if (h4 === undefined) return Step.More;
    const first = h4.readUInt32BE(0);
    const tag = first >>> 16;
    const max = this.#state.maxCommand();
    if (tag === TPM_ST_NO_SESSIONS || tag === TPM_ST_SESSIONS) {
      // Raw command (swtpm TCTI): tag u16, size u32, code u32 — framed by the size (Part 3 §5.2).
      const h = this.#peek(10);
      if (h === undefined) return Step.More;
      const size = h.readUInt32BE(2);
      if (size < 10 || size > max) {
        // The frame cannot be found again: answer like a TPM and hang up.
        send(this.#socket, encodeErrorResponse(TPM_RC.COMMAND_SIZE));
        return Step.End;
      }
      if (this.#peek(size) === undefined) return Step.More;
      return this.#command(this.#take(size), this.#state.locality, false);
    }
    switch (first) {
      case MSSIM_SIGNAL.SEND_COMMAND: {
        // u32 SEND_COMMAND, u8 locality, u32 size, the command (§2.2).
        const h = this.#peek(9);
        if (h === undefined) return Step.More;
        const locality = h[4]!;
        const size = h.readUInt32BE(5);
        if (size < 10 || size > max || locality > 4) {
          send(this.#socket, msResponse(encodeErrorResponse(size < 10 || size > max ? TPM_RC.COMMAND_SIZE : TPM_RC.LOCALITY)));
          return Step.End;
        }
        if (this.#peek(9 + size) === undefined) return Step.More;
        this.#skip(9);
        return this.#command(this.#take(size), locality, true);
      }
      case MSSIM_SIGNAL.SESSION_END:
        return Step.End;
      case MSSIM_SIGNAL.STOP:
        if (this.#state.protocol === 'mssim') this.#state.remoteClose();
        return Step.End;
    }
    if (this.#state.protocol !== 'mssim') return Step.End; // swtpm understands no other MS signal here (§2.3)
    const p = this.#state.platform;
    switch (first) {
      case MSSIM_SIGNAL.HASH_START:
        this.#skip(4);
        return this.#hook(p.hashStart?.bind(p));
      case MSSIM_SIGNAL.HASH_DATA: {
        const h = this.#peek(8);
        if (h === undefined) return Step.More;
        const n = h.readUInt32BE(4);
        if (n > LIMITS.MAX_COMMAND_SIZE) return Step.End;
        if (this.#peek(8 + n) === undefined) return Step.More;
        this.#skip(8);
        const data = this.#take(n);
        return this.#hook(p.hashData && (() => p.hashData!(data)));
      }
      case MSSIM_SIGNAL.HASH_END:
        this.#skip(4);
        return this.#hook(p.hashEnd?.bind(p));
      case MSSIM_SIGNAL.REMOTE_HANDSHAKE:
        // The client's version follows: any is served.
        if (this.#peek(8) === undefined) return Step.More;
        this.#skip(8);
        return this.#reply(concat(be32(MS_SERVER_VERSION), be32(MS_FLAGS), be32(0)));
      case MSSIM_SIGNAL.SET_ALTERNATIVE_RESULT:
        if (this.#peek(8) === undefined) return Step.More;
        this.#skip(8);
        return this.#reply(be32(0));
      default:
        return Step.End; // unknown: the MS simulator closes without a reply (§2.2)
    }
  }
}

/** An MS SEND_COMMAND answer: u32 size, the response, u32 0 — one array, one write. */
function msResponse(rsp: Uint8Array): Uint8Array {
  const out = new Uint8Array(rsp.length + 8);
  out[0] = rsp.length >>> 24;
  out[1] = (rsp.length >>> 16) & 0xff;
  out[2] = (rsp.length >>> 8) & 0xff;
  out[3] = rsp.length & 0xff;
  out.set(rsp, 4);
  return out;
}

class ServerState {
  readonly #platform: SimulatorPlatform;
  readonly #protocol: ServerProtocol;
  readonly #remoteStop: boolean;
  readonly #frameTimeoutMs: number;
  readonly #onError: (e: unknown) => void;
  readonly #commandPort: Port;
  readonly #platformPort: Port;
  #servers: Server[] = [];
  /** Everything that reaches the TPM runs one at a time, in order: the one running, and those waiting. */
  #busy = false;
  readonly #queue: (() => void)[] = [];
  /** Called when the queue is next empty (close() waits for a running command). */
  #idleWaiters: (() => void)[] = [];
  #closing: Promise<void> | undefined;
  #resolveClosed!: () => void;
  readonly closed: Promise<void>;
  /** swtpm: locality for raw commands (CMD_SET_LOCALITY; it outlives clients, as in swtpm). */
  #locality = 0;
  /** swtpm: CMD_STOP/SHUTDOWN stop the TPM until CMD_INIT; MS POWER_OFF until POWER_ON. */
  #running = true;
  #bufferSize = BUFFER_DEFAULT;
  /** Sizes of the last command and response (MS GET_COMMAND_RESPONSE_SIZES). */
  #lastSizes: [number, number] = [0, 0];

  constructor(options: TpmServerOptions) {
    this.#platform = options.platform;
    this.#protocol = options.protocol;
    this.#remoteStop = options.remoteStop ?? true;
    this.#frameTimeoutMs = options.frameTimeoutMs ?? 10_000;
    this.#onError = options.onError ?? (() => undefined);
    const maxQueued = options.maxQueued ?? 16;
    this.#commandPort = new Port((s) => this.#serveCommand(s), maxQueued, this.#onError);
    this.#platformPort = new Port(
      (s) => (this.#protocol === 'mssim' ? this.#serveMsPlatform(s) : this.#serveSwtpmControl(s)),
      maxQueued,
      this.#onError,
    );
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
  }

  attach(command: Server, platform: Server): void {
    this.#servers = [command, platform];
  }

  acceptCommand(socket: Socket): void {
    this.#commandPort.accept(socket);
  }

  acceptPlatform(socket: Socket): void {
    this.#platformPort.accept(socket);
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#commandPort.close();
      this.#platformPort.close();
      await Promise.all(this.#servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
      if (this.#busy) await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
      this.#resolveClosed();
    })();
    return this.#closing;
  }

  #remoteClose(): void {
    if (this.#remoteStop) void this.close();
  }

  /**
   * Run `task` once everything queued before it is done (at once when the
   * TPM is idle); `task` calls #release() when it is done.
   */
  #submit(task: () => void): void {
    if (this.#busy) {
      this.#queue.push(task);
      return;
    }
    this.#busy = true;
    task();
  }

  #release(): void {
    const next = this.#queue.shift();
    if (next !== undefined) {
      next();
      return;
    }
    this.#busy = false;
    if (this.#idleWaiters.length > 0) for (const w of this.#idleWaiters.splice(0)) w();
  }

  /** Run `fn` after everything queued before it; its failure does not poison the queue. */
  #serial<T>(fn: () => T | Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#submit(() => {
        let p: Promise<T>;
        try {
          p = Promise.resolve(fn());
        } catch (e) {
          p = Promise.reject(e);
        }
        p.then(resolve, reject).finally(() => this.#release());
      });
    });
  }

  /**
   * Execute one command through the queue and hand its response to `done`
   * (callbacks, not a promise chain: this is every command's path). Powered
   * off or stopped there is no TPM to answer: swtpm answers a fatal error
   * the same way (§2.3). An engine that throws is answered TPM_RC_FAILURE.
   */
  runCommand(command: Uint8Array, locality: number, done: (response: Uint8Array) => void): void {
    this.#submit(() => {
      if (!this.#running) {
        this.#release();
        done(encodeErrorResponse(TPM_RC.FAILURE));
        return;
      }
      let p: Promise<Uint8Array>;
      try {
        p = this.#platform.execute(command, locality);
      } catch (e) {
        p = Promise.reject(e);
      }
      p.then(
        (rsp) => this.#answer(command, rsp, done),
        (e: unknown) => {
          this.#onError(e);
          this.#answer(command, encodeErrorResponse(TPM_RC.FAILURE), done);
        },
      );
    });
  }

  #answer(command: Uint8Array, rsp: Uint8Array, done: (response: Uint8Array) => void): void {
    this.#lastSizes = [command.length, rsp.length];
    this.#release();
    done(rsp);
  }

  /** A platform hook through the queue; true when it ran without throwing. */
  async #signal(fn: () => void | Promise<void>): Promise<boolean> {
    try {
      await this.#serial(fn);
      return true;
    } catch (e) {
      this.#onError(e);
      return false;
    }
  }

  // -------------------------------------------------------------------------
  // Command port

  #serveCommand(socket: Socket): Promise<void> {
    return new CommandConnection(socket, this).served;
  }

  /** @internal For CommandConnection: which protocol port+1 speaks. */
  get protocol(): ServerProtocol {
    return this.#protocol;
  }

  /** @internal swtpm: the locality raw commands run at. */
  get locality(): number {
    return this.#locality;
  }

  /** @internal */
  get frameTimeoutMs(): number {
    return this.#frameTimeoutMs;
  }

  /** @internal */
  get platform(): SimulatorPlatform {
    return this.#platform;
  }

  /** @internal MS STOP on the command port. */
  remoteClose(): void {
    this.#remoteClose();
  }

  /** @internal A hook through the queue: 0 when it ran (or there is none to run), 1 when it threw. */
  hook(fn: (() => void | Promise<void>) | undefined): Promise<number> {
    return this.#hook(fn);
  }

  /** @internal The largest command the command port takes. */
  maxCommand(): number {
    return this.#maxCommand();
  }

  #maxCommand(): number {
    return this.#protocol === 'swtpm' ? this.#bufferSize : LIMITS.MAX_COMMAND_SIZE;
  }

  /** 0 when the hook ran (or there is none to run), 1 when it threw. */
  async #hook(fn: (() => void | Promise<void>) | undefined): Promise<number> {
    if (fn === undefined) return 0;
    return (await this.#signal(fn)) ? 0 : 1;
  }

  // -------------------------------------------------------------------------
  // MS platform port (§2.2)

  async #serveMsPlatform(socket: Socket): Promise<void> {
    const r = new SocketReader(socket);
    const p = this.#platform;
    for (;;) {
      const code = await r.u32();
      let result: number;
      switch (code) {
        case MSSIM_SIGNAL.POWER_ON:
          // Already on: a no-op, as in the MS simulator (§2.2).
          result = this.#running ? 0 : await this.#hook(async () => {
            await p.powerOn();
            this.#running = true;
          });
          break;
        case MSSIM_SIGNAL.POWER_OFF:
          result = !this.#running ? 0 : await this.#hook(async () => {
            this.#running = false;
            await p.powerOff();
          });
          break;
        case MSSIM_SIGNAL.PHYS_PRES_ON:
        case MSSIM_SIGNAL.PHYS_PRES_OFF:
          result = await this.#hook(p.physicalPresence && (() => p.physicalPresence!(code === MSSIM_SIGNAL.PHYS_PRES_ON)));
          break;
        case MSSIM_SIGNAL.CANCEL_ON:
        case MSSIM_SIGNAL.CANCEL_OFF:
          // Not queued: cancel must reach the engine while a command runs.
          result = await this.#direct(p.cancel && (() => p.cancel!(code === MSSIM_SIGNAL.CANCEL_ON)));
          break;
        case MSSIM_SIGNAL.NV_ON:
          result = await this.#hook(p.nvOn?.bind(p));
          break;
        case MSSIM_SIGNAL.NV_OFF:
          result = await this.#hook(p.nvOff?.bind(p));
          break;
        case MSSIM_SIGNAL.KEY_CACHE_ON:
        case MSSIM_SIGNAL.KEY_CACHE_OFF:
          result = 0; // the MS simulator's RSA key cache is a test speed-up; nothing to switch here
          break;
        case MSSIM_SIGNAL.RESET:
          result = await this.#hook(() => p.reset());
          break;
        case MSSIM_SIGNAL.RESTART:
          result = await this.#hook(() => (p.restart ? p.restart() : p.reset()));
          break;
        case MSSIM_SIGNAL.TEST_FAILURE_MODE:
          result = await this.#hook(p.failureMode?.bind(p));
          break;
        case MSSIM_SIGNAL.GET_COMMAND_RESPONSE_SIZES: {
          // The MS simulator sends its last command/response sizes as a byte string and clears them.
          const [c, rs] = this.#lastSizes;
          this.#lastSizes = [0, 0];
          send(socket, concat(be32(8), be32(c), be32(rs)));
          result = 0;
          break;
        }
        case MSSIM_SIGNAL.SESSION_END:
          return;
        case MSSIM_SIGNAL.STOP:
          this.#remoteClose();
          return;
        default:
          send(socket, be32(1));
          return;
      }
      send(socket, be32(result));
    }
  }

  /** A hook that bypasses the queue (cancel). */
  async #direct(fn: (() => void | Promise<void>) | undefined): Promise<number> {
    if (fn === undefined) return 0;
    try {
      await fn();
      return 0;
    } catch (e) {
      this.#onError(e);
      return 1;
    }
  }

  // -------------------------------------------------------------------------
  // swtpm control channel (§2.3)

  async #serveSwtpmControl(socket: Socket): Promise<void> {
    const r = new SocketReader(socket);
    const p = this.#platform;
    // swtpm gives a client 500 ms to deliver the rest of a request (§2.3).
    const t = Math.min(500, this.#frameTimeoutMs);
    const ok = be32(SWTPM_RESULT.SUCCESS);
    for (;;) {
      const cmd = await r.u32();
      switch (cmd) {
        case SWTPM_CTRL.GET_CAPABILITY: {
          const b = new Uint8Array(8);
          new DataView(b.buffer).setBigUint64(0, SWTPM_CAPABILITIES);
          send(socket, b); // the one reply without a result word
          break;
        }
        case SWTPM_CTRL.INIT: {
          await r.u32(t); // flags: volatile state is never kept across INIT here, so DELETE_VOLATILE changes nothing
          const res = await this.#hook(async () => {
            if (this.#running) await p.reset();
            else await p.powerOn();
            this.#running = true;
            this.#locality = 0;
          });
          send(socket, be32(res === 0 ? SWTPM_RESULT.SUCCESS : SWTPM_RESULT.FAIL));
          break;
        }
        case SWTPM_CTRL.SHUTDOWN:
        case SWTPM_CTRL.STOP: {
          const res = await this.#hook(async () => {
            if (this.#running) await p.powerOff();
            this.#running = false;
          });
          send(socket, be32(res === 0 ? SWTPM_RESULT.SUCCESS : SWTPM_RESULT.FAIL));
          if (cmd === SWTPM_CTRL.SHUTDOWN) {
            this.#remoteClose();
            return;
          }
          break;
        }
        case SWTPM_CTRL.GET_TPMESTABLISHED: {
          const bit = p.tpmEstablished?.() === true ? 1 : 0;
          send(socket, concat(ok, Uint8Array.of(bit, 0, 0, 0)));
          break;
        }
        case SWTPM_CTRL.SET_LOCALITY: {
          const loc = (await r.read(1, t))[0]!;
          if (loc > 4) {
            send(socket, be32(SWTPM_RESULT.BAD_PARAMETER));
          } else {
            this.#locality = loc;
            send(socket, ok);
          }
          break;
        }
        case SWTPM_CTRL.HASH_START:
          send(socket, be32(await this.#hook(p.hashStart?.bind(p)) === 0 ? 0 : SWTPM_RESULT.FAIL));
          break;
        case SWTPM_CTRL.HASH_DATA: {
          const n = await r.u32(t);
          if (n > LIMITS.MAX_COMMAND_SIZE) {
            send(socket, be32(SWTPM_RESULT.BAD_PARAMETER));
            return; // the rest of the request cannot be skipped safely
          }
          const data = await r.read(n, t);
          send(socket, be32(await this.#hook(p.hashData && (() => p.hashData!(data))) === 0 ? 0 : SWTPM_RESULT.FAIL));
          break;
        }
        case SWTPM_CTRL.HASH_END:
          send(socket, be32(await this.#hook(p.hashEnd?.bind(p)) === 0 ? 0 : SWTPM_RESULT.FAIL));
          break;
        case SWTPM_CTRL.CANCEL_TPM_CMD:
          send(socket, be32(await this.#direct(p.cancel && (() => p.cancel!(true))) === 0 ? 0 : SWTPM_RESULT.FAIL));
          break;
        case SWTPM_CTRL.STORE_VOLATILE:
          send(socket, ok); // state is written by the engine as it changes
          break;
        case SWTPM_CTRL.RESET_TPMESTABLISHED: {
          const loc = (await r.read(1, t))[0]!;
          if (loc > 4) {
            send(socket, be32(SWTPM_RESULT.BAD_PARAMETER));
            break;
          }
          send(socket, be32(await this.#hook(p.resetTpmEstablished && (() => p.resetTpmEstablished!(loc))) === 0 ? 0 : SWTPM_RESULT.FAIL));
          break;
        }
        case SWTPM_CTRL.GET_CONFIG:
          send(socket, concat(ok, be32(0))); // no state-file key, no migration key
          break;
        case SWTPM_CTRL.SET_BUFFERSIZE: {
          const wanted = await r.u32(t);
          if (wanted !== 0) {
            // swtpm changes the buffer size only while the TPM is stopped.
            if (this.#running) {
              send(socket, be32(SWTPM_RESULT.BAD_ORDINAL));
              break;
            }
            this.#bufferSize = Math.min(BUFFER_MAX, Math.max(BUFFER_MIN, wanted));
          }
          send(socket, concat(ok, be32(this.#bufferSize), be32(BUFFER_MIN), be32(BUFFER_MAX)));
          break;
        }
        default:
          // Unknown or unimplemented (state blobs, GET_INFO): its payload length is unknown, so answer and hang up.
          send(socket, be32(SWTPM_RESULT.BAD_ORDINAL));
          return;
      }
    }
  }
}
