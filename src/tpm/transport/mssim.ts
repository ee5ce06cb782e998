/**
 * The Microsoft TPM simulator's TCP protocol (tpm-peers.md §2.2): framed
 * commands on a persistent command-port connection, platform signals on
 * port+1. swtpm's command port accepts the same command framing (§2.3), but
 * its port+1 speaks a different protocol: use MssimPlatform only against an
 * MS-style platform port.
 */
import { TransportError } from '../errors.js';
import { LIMITS } from '../limits.js';
import { SocketChannel, be32, getU32, putU32, type Deadline } from './channel.js';
import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_TIMEOUT_MS,
  TransportControlError,
  checkCommand,
  checkLocality,
  type SendOptions,
  type Transport,
} from './transport.js';

/** MS simulator signal codes (TpmTcpProtocol.h, tpm-peers.md §2.2). */
export const MSSIM_SIGNAL = {
  POWER_ON: 1,
  POWER_OFF: 2,
  PHYS_PRES_ON: 3,
  PHYS_PRES_OFF: 4,
  HASH_START: 5,
  HASH_DATA: 6,
  HASH_END: 7,
  SEND_COMMAND: 8,
  CANCEL_ON: 9,
  CANCEL_OFF: 10,
  NV_ON: 11,
  NV_OFF: 12,
  KEY_CACHE_ON: 13,
  KEY_CACHE_OFF: 14,
  REMOTE_HANDSHAKE: 15,
  SET_ALTERNATIVE_RESULT: 16,
  RESET: 17,
  RESTART: 18,
  SESSION_END: 20,
  STOP: 21,
  GET_COMMAND_RESPONSE_SIZES: 25,
  TEST_FAILURE_MODE: 30,
} as const;

const SESSION_END = be32(MSSIM_SIGNAL.SESSION_END);

export interface MssimPlatformOptions {
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Platform port. */
  readonly port: number;
  readonly connectTimeoutMs?: number;
  readonly timeoutMs?: number;
}

/**
 * The platform port: each signal is a u32, answered by a u32 that must be 0
 * (otherwise TransportControlError with `command` = signal, `result` = reply).
 */
export class MssimPlatform {
  readonly #peer: string;
  readonly #channel: SocketChannel;

  constructor(opts: MssimPlatformOptions) {
    const host = opts.host ?? '127.0.0.1';
    this.#peer = `mssim platform ${host}:${opts.port}`;
    this.#channel = new SocketChannel({
      what: this.#peer,
      host,
      port: opts.port,
      connectTimeoutMs: opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      maxBuffered: 64,
    });
  }

  /** Whether the platform connection is open (it is made on first use). */
  get connected(): boolean {
    return this.#channel.connected;
  }

  powerOn(deadline?: Deadline): Promise<void> {
    return this.#signal(MSSIM_SIGNAL.POWER_ON, deadline);
  }
  powerOff(deadline?: Deadline): Promise<void> {
    return this.#signal(MSSIM_SIGNAL.POWER_OFF, deadline);
  }
  physicalPresenceOn(deadline?: Deadline): Promise<void> {
    return this.#signal(MSSIM_SIGNAL.PHYS_PRES_ON, deadline);
  }
  physicalPresenceOff(deadline?: Deadline): Promise<void> {
    return this.#signal(MSSIM_SIGNAL.PHYS_PRES_OFF, deadline);
  }
  cancelOn(deadline?: Deadline): Promise<void> {
    return this.#signal(MSSIM_SIGNAL.CANCEL_ON, deadline);
  }
  cancelOff(deadline?: Deadline): Promise<void> {
    return this.#signal(MSSIM_SIGNAL.CANCEL_OFF, deadline);
  }
  nvOn(deadline?: Deadline): Promise<void> {
    return this.#signal(MSSIM_SIGNAL.NV_ON, deadline);
  }
  nvOff(deadline?: Deadline): Promise<void> {
    return this.#signal(MSSIM_SIGNAL.NV_OFF, deadline);
  }
  reset(deadline?: Deadline): Promise<void> {
    return this.#signal(MSSIM_SIGNAL.RESET, deadline);
  }
  restart(deadline?: Deadline): Promise<void> {
    return this.#signal(MSSIM_SIGNAL.RESTART, deadline);
  }

  /**
   * End the session: SESSION_END has no reply and the server closes the
   * connection (§2.2), so drop ours; a later signal reconnects.
   */
  sessionEnd(deadline?: Deadline): Promise<void> {
    return this.#channel.exchange(async (io) => {
      io.write(SESSION_END);
      await io.end(1000);
    }, deadline);
  }

  /** Send SESSION_END if connected, then close. Pending signals reject with `transport.closed`. Idempotent. */
  close(): Promise<void> {
    return this.#channel.close(SESSION_END);
  }

  #signal(code: number, deadline: Deadline | undefined): Promise<void> {
    return this.#channel.exchange(async (io) => {
      io.write(be32(code));
      const result = await io.readU32();
      if (result !== 0) throw new TransportControlError(this.#peer, code, result);
    }, deadline);
  }
}

export interface MssimTransportOptions {
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Command port. */
  readonly port: number;
  /** Platform port, default port+1. Connected only when `platform` is used. */
  readonly platformPort?: number;
  readonly connectTimeoutMs?: number;
  /** Default deadline per command (default 120 s). */
  readonly timeoutMs?: number;
}

/**
 * Commands as `u32 8 | u8 locality | u32 len | command`, written in one piece
 * with TCP_NODELAY (a split write stalls ~40 ms on delayed ACK, §6.5);
 * responses as `u32 len | rsp | u32 0`.
 */
export class MssimTransport implements Transport {
  readonly platform: MssimPlatform;
  readonly #peer: string;
  readonly #channel: SocketChannel;
  #closing: Promise<void> | undefined;

  constructor(opts: MssimTransportOptions) {
    const host = opts.host ?? '127.0.0.1';
    const connectTimeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#peer = `mssim ${host}:${opts.port}`;
    this.#channel = new SocketChannel({
      what: this.#peer,
      host,
      port: opts.port,
      connectTimeoutMs,
      timeoutMs,
      maxBuffered: LIMITS.MAX_RESPONSE_SIZE + 8,
    });
    this.platform = new MssimPlatform({ host, port: opts.platformPort ?? opts.port + 1, connectTimeoutMs, timeoutMs });
  }

  send(command: Uint8Array, options: SendOptions = {}): Promise<Uint8Array> {
    let frame: Uint8Array;
    try {
      const locality = checkLocality(options.locality ?? 0);
      checkCommand(command);
      frame = new Uint8Array(9 + command.length);
      putU32(frame, 0, MSSIM_SIGNAL.SEND_COMMAND);
      frame[4] = locality;
      putU32(frame, 5, command.length);
      frame.set(command, 9);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#channel.exchange(async (io) => {
      io.write(frame);
      const size = await io.readU32();
      if (size < 10 || size > LIMITS.MAX_RESPONSE_SIZE) {
        throw new TransportError('transport.protocol', `${this.#peer}: response size ${size} outside 10..${LIMITS.MAX_RESPONSE_SIZE}`);
      }
      const rsp = await io.read(size);
      const rspSize = getU32(rsp, 2);
      if (rspSize !== size) {
        throw new TransportError('transport.protocol', `${this.#peer}: response header says ${rspSize} bytes, frame says ${size}`);
      }
      const trailer = await io.readU32();
      if (trailer !== 0) {
        throw new TransportError('transport.protocol', `${this.#peer}: response trailer is ${trailer}, expected 0`);
      }
      return rsp;
    }, options);
  }

  /** SESSION_END on both connections (where open), then close (§2.2). Idempotent. */
  close(): Promise<void> {
    this.#closing ??= Promise.all([this.#channel.close(SESSION_END), this.platform.close()]).then(() => undefined);
    return this.#closing;
  }
}
