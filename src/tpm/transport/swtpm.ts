/**
 * swtpm over TCP (tpm-peers.md §2.3): raw TPM commands on a persistent
 * command-port connection, and swtpm's control protocol on port+1.
 */
import { TransportError } from '../errors.js';
import { LIMITS } from '../limits.js';
import { SocketChannel, be32, getU32, putU32, type Deadline, type FramedSocket } from './channel.js';
import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_TIMEOUT_MS,
  TransportControlError,
  checkCommand,
  checkLocality,
  type SendOptions,
  type Transport,
} from './transport.js';

/** swtpm control-channel commands (tpm-peers.md §2.3 table). */
export const SWTPM_CTRL = {
  GET_CAPABILITY: 0x01,
  INIT: 0x02,
  SHUTDOWN: 0x03,
  GET_TPMESTABLISHED: 0x04,
  SET_LOCALITY: 0x05,
  HASH_START: 0x06,
  HASH_DATA: 0x07,
  HASH_END: 0x08,
  CANCEL_TPM_CMD: 0x09,
  STORE_VOLATILE: 0x0a,
  RESET_TPMESTABLISHED: 0x0b,
  STOP: 0x0e,
  GET_CONFIG: 0x0f,
  SET_BUFFERSIZE: 0x11,
  GET_INFO: 0x12,
} as const;

/** CMD_INIT flag: delete the volatile state (what tpm2-tss's Swtpm_Reset sends, §2.1). */
export const SWTPM_INIT_DELETE_VOLATILE = 1;
/** CMD_GET_INFO flags. */
export const SWTPM_INFO_SPEC = 1;
export const SWTPM_INFO_ATTRIBUTES = 2;

/** Largest control reply we accept (GET_INFO's JSON is a few hundred bytes). */
const MAX_CTRL_REPLY = 64 * 1024;

export interface SwtpmControlOptions {
  readonly host?: string;
  /** Control port (swtpm `--ctrl type=tcp,port=`). */
  readonly port: number;
  readonly connectTimeoutMs?: number;
  readonly timeoutMs?: number;
}

export interface SwtpmBufferSize {
  readonly size: number;
  readonly min: number;
  readonly max: number;
}

/**
 * swtpm's control channel on one persistent connection. Each method sends
 * `u32 cmd || payload` in one write (swtpm wants the whole request within
 * 500 ms, §2.3) and reads `u32 result || payload`; a non-zero result throws
 * TransportControlError.
 */
export class SwtpmControl {
  readonly #peer: string;
  readonly #channel: SocketChannel;
  #locality: number | undefined;

  constructor(opts: SwtpmControlOptions) {
    const host = opts.host ?? '127.0.0.1';
    this.#peer = `swtpm control ${host}:${opts.port}`;
    this.#channel = new SocketChannel({
      what: this.#peer,
      host,
      port: opts.port,
      connectTimeoutMs: opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      maxBuffered: MAX_CTRL_REPLY,
    });
  }

  /**
   * The locality last set through this object, or undefined when unknown
   * (swtpm keeps it across clients, and INIT/STOP may change it).
   */
  get locality(): number | undefined {
    return this.#locality;
  }

  /** The capability bitmap. The only reply without a result word (§2.3). */
  getCapability(deadline?: Deadline): Promise<bigint> {
    return this.#channel.exchange(async (io) => {
      io.write(be32(SWTPM_CTRL.GET_CAPABILITY));
      const b = await io.read(8);
      return (BigInt(getU32(b, 0)) << 32n) | BigInt(getU32(b, 4));
    }, deadline);
  }

  /** Restart the TPM (it then needs TPM2_Startup). */
  async init(flags = 0, deadline?: Deadline): Promise<void> {
    this.#locality = undefined;
    await this.#simple(SWTPM_CTRL.INIT, be32(flags), deadline);
  }

  /** Shut swtpm down: the process exits. */
  async shutdown(deadline?: Deadline): Promise<void> {
    this.#locality = undefined;
    await this.#simple(SWTPM_CTRL.SHUTDOWN, undefined, deadline);
  }

  /** Stop the TPM; the process stays (INIT starts it again). */
  async stop(deadline?: Deadline): Promise<void> {
    this.#locality = undefined;
    await this.#simple(SWTPM_CTRL.STOP, undefined, deadline);
  }

  async setLocality(locality: number, deadline?: Deadline): Promise<void> {
    checkLocality(locality);
    this.#locality = undefined;
    await this.#simple(SWTPM_CTRL.SET_LOCALITY, Uint8Array.of(locality), deadline);
    this.#locality = locality;
  }

  /** The TPM-established flag: u32 result, u8 bit, 3 pad bytes. */
  getTpmEstablished(deadline?: Deadline): Promise<boolean> {
    return this.#simple(SWTPM_CTRL.GET_TPMESTABLISHED, undefined, deadline, 4).then((p) => (p[0]! & 1) === 1);
  }

  async resetTpmEstablished(locality: number, deadline?: Deadline): Promise<void> {
    checkLocality(locality);
    await this.#simple(SWTPM_CTRL.RESET_TPMESTABLISHED, Uint8Array.of(locality), deadline);
  }

  async hashStart(deadline?: Deadline): Promise<void> {
    await this.#simple(SWTPM_CTRL.HASH_START, undefined, deadline);
  }

  async hashData(data: Uint8Array, deadline?: Deadline): Promise<void> {
    const payload = new Uint8Array(4 + data.length);
    putU32(payload, 0, data.length);
    payload.set(data, 4);
    await this.#simple(SWTPM_CTRL.HASH_DATA, payload, deadline);
  }

  async hashEnd(deadline?: Deadline): Promise<void> {
    await this.#simple(SWTPM_CTRL.HASH_END, undefined, deadline);
  }

  async cancelCommand(deadline?: Deadline): Promise<void> {
    await this.#simple(SWTPM_CTRL.CANCEL_TPM_CMD, undefined, deadline);
  }

  async storeVolatile(deadline?: Deadline): Promise<void> {
    await this.#simple(SWTPM_CTRL.STORE_VOLATILE, undefined, deadline);
  }

  /** Configuration flags (1 = state file key, 2 = migration key). */
  async getConfig(deadline?: Deadline): Promise<number> {
    return getU32(await this.#simple(SWTPM_CTRL.GET_CONFIG, undefined, deadline, 4), 0);
  }

  /** Set (or with 0, query) the TPM I/O buffer size. */
  async setBufferSize(size = 0, deadline?: Deadline): Promise<SwtpmBufferSize> {
    const p = await this.#simple(SWTPM_CTRL.SET_BUFFERSIZE, be32(size), deadline, 12);
    return { size: getU32(p, 0), min: getU32(p, 4), max: getU32(p, 8) };
  }

  /** swtpm's JSON info (flags: SWTPM_INFO_SPEC | SWTPM_INFO_ATTRIBUTES), read in pieces by offset. */
  getInfo(flags: number, deadline?: Deadline): Promise<string> {
    return this.#channel.exchange(async (io) => {
      const parts: Uint8Array[] = [];
      let got = 0;
      for (;;) {
        const req = new Uint8Array(20);
        putU32(req, 0, SWTPM_CTRL.GET_INFO);
        putU32(req, 4, Math.floor(flags / 2 ** 32));
        putU32(req, 8, flags >>> 0);
        putU32(req, 12, got);
        io.write(req);
        await this.#result(io, SWTPM_CTRL.GET_INFO);
        const head = await io.read(8);
        const total = getU32(head, 0);
        const length = getU32(head, 4);
        if (total > MAX_CTRL_REPLY || length > total - got) {
          throw new TransportError('transport.protocol', `${this.#peer}: GET_INFO lengths ${total}/${length} out of range`);
        }
        parts.push(await io.read(length));
        got += length;
        if (got >= total || length === 0) break;
      }
      const text = new TextDecoder().decode(concat(parts));
      return text.replace(/\0+$/, '');
    }, deadline);
  }

  /** Close the control connection. Idempotent. */
  close(): Promise<void> {
    return this.#channel.close();
  }

  /** Send `cmd || payload`, check the result word, return `payloadSize` reply bytes. */
  #simple(cmd: number, payload: Uint8Array | undefined, deadline: Deadline | undefined, replySize = 0): Promise<Uint8Array> {
    const req = new Uint8Array(4 + (payload?.length ?? 0));
    putU32(req, 0, cmd);
    if (payload) req.set(payload, 4);
    return this.#channel.exchange(async (io) => {
      io.write(req);
      await this.#result(io, cmd);
      return replySize > 0 ? io.read(replySize) : new Uint8Array(0);
    }, deadline);
  }

  async #result(io: FramedSocket, cmd: number): Promise<void> {
    const result = await io.readU32();
    // On error swtpm sends the result word only; the channel drops the connection anyway.
    if (result !== 0) throw new TransportControlError(this.#peer, cmd, result);
  }
}

export interface SwtpmTransportOptions {
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Command port (swtpm `--server type=tcp,port=`). */
  readonly port: number;
  /** Control port, default port+1. */
  readonly ctrlPort?: number;
  readonly connectTimeoutMs?: number;
  /** Default deadline per command (default 120 s). */
  readonly timeoutMs?: number;
}

/**
 * Raw TPM commands on swtpm's command port. swtpm frames a command by its
 * first read() of >= 10 bytes (§2.3, §6.2): each command goes out in one write,
 * the next only after the previous response. Locality goes through the
 * control channel, and only when it changes.
 */
export class SwtpmTransport implements Transport {
  readonly control: SwtpmControl;
  readonly #peer: string;
  readonly #channel: SocketChannel;
  #closing: Promise<void> | undefined;

  constructor(opts: SwtpmTransportOptions) {
    const host = opts.host ?? '127.0.0.1';
    const connectTimeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#peer = `swtpm ${host}:${opts.port}`;
    this.#channel = new SocketChannel({
      what: this.#peer,
      host,
      port: opts.port,
      connectTimeoutMs,
      timeoutMs,
      maxBuffered: LIMITS.MAX_RESPONSE_SIZE,
    });
    this.control = new SwtpmControl({ host, port: opts.ctrlPort ?? opts.port + 1, connectTimeoutMs, timeoutMs });
  }

  send(command: Uint8Array, options: SendOptions = {}): Promise<Uint8Array> {
    let locality: number;
    try {
      locality = checkLocality(options.locality ?? 0);
      checkCommand(command);
      // swtpm would read a command starting with u32 8 as an MS SEND_COMMAND prefix (§2.3).
      if (getU32(command, 0) === 8) {
        throw new TransportError('transport.protocol', 'a raw command cannot start with 00000008 on swtpm');
      }
    } catch (e) {
      return Promise.reject(e);
    }
    const bytes = command.slice();
    return this.#channel.exchange(async (io, signal) => {
      if (this.control.locality !== locality) {
        await this.control.setLocality(locality, { signal });
      }
      io.write(bytes);
      return readRawResponse(io, this.#peer);
    }, options);
  }

  close(): Promise<void> {
    this.#closing ??= Promise.all([this.#channel.close(), this.control.close()]).then(() => undefined);
    return this.#closing;
  }
}

/** Read a raw TPM response: the 10-byte header, then exactly `size - 10` more bytes. */
async function readRawResponse(io: FramedSocket, peer: string): Promise<Uint8Array> {
  const header = await io.read(10);
  const size = getU32(header, 2);
  if (size < 10 || size > LIMITS.MAX_RESPONSE_SIZE) {
    throw new TransportError('transport.protocol', `${peer}: response size ${size} outside 10..${LIMITS.MAX_RESPONSE_SIZE}`);
  }
  const out = new Uint8Array(size);
  out.set(header, 0);
  if (size > 10) out.set(await io.read(size - 10), 10);
  return out;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
