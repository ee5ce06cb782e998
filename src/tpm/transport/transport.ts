/**
 * The one interface every TPM connection implements (design.md, "Core /
 * transport"): bytes of a whole command in, bytes of a whole response out.
 * Locality travels with each command (PCR_Reset, PolicyLocality); the signal
 * and timeout let a caller give up on a TPM that never answers.
 */
import { TransportError } from '../errors.js';
import { LIMITS } from '../limits.js';
import { CommandQueue, abortError } from './channel.js';

export interface SendOptions {
  /** Locality 0..4 for this command (default 0). */
  readonly locality?: number;
  /** Give up when this fires: the send rejects with `transport.aborted`. */
  readonly signal?: AbortSignal;
  /** Give up after this long, queueing included: `transport.timeout`. */
  readonly timeoutMs?: number;
}

export interface Transport {
  /** Send one complete command; resolve with the complete response. Commands are serialized. */
  send(command: Uint8Array, options?: SendOptions): Promise<Uint8Array>;
  /** Reject pending sends with `transport.closed` and release the connection. Idempotent. */
  close(): Promise<void>;
}

/** Default per-command deadline: generous, as RSA key generation on hardware takes many seconds. */
export const DEFAULT_TIMEOUT_MS = 120_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;

/**
 * A control or platform command (swtpm control channel, MS simulator platform
 * port) answered with a non-zero result.
 */
export class TransportControlError extends TransportError {
  declare readonly code: 'transport.control';
  /** The control command or platform signal sent. */
  readonly command: number;
  /** The non-zero result the peer returned. */
  readonly result: number;
  constructor(peer: string, command: number, result: number) {
    super('transport.control', `${peer}: command ${command} failed with result ${result} (0x${result.toString(16)})`);
    this.command = command;
    this.result = result;
  }
}

/** Check a locality argument (TPM localities are 0..4). */
export function checkLocality(locality: number): number {
  if (!Number.isInteger(locality) || locality < 0 || locality > 4) {
    throw new TransportError('transport.protocol', `locality ${locality} is not an integer in 0..4`);
  }
  return locality;
}

/** Bounds every transport applies to an outgoing command. */
export function checkCommand(command: Uint8Array): void {
  if (command.length < 10 || command.length > LIMITS.MAX_COMMAND_SIZE) {
    throw new TransportError(
      'transport.protocol',
      `a command of ${command.length} bytes cannot be framed (10..${LIMITS.MAX_COMMAND_SIZE})`,
    );
  }
}

const NO_SEND_OPTIONS: SendOptions = Object.freeze({});

/**
 * Anything that executes whole commands in-process, such as a software TPM
 * engine. Contract: `execute` has read, or copied, all it needs of `command`
 * by the time it returns its promise (TpmEngine: everything it keeps from the
 * frame is decoded into copies before its first await), so the caller may
 * reuse the buffer as soon as execute returns.
 */
export interface InProcessTpm {
  execute(command: Uint8Array, locality: number): Promise<Uint8Array>;
}

export interface InProcessOptions {
  /** Default deadline per command (default: none). */
  readonly timeoutMs?: number;
}

/**
 * Plug an in-process TPM in as a transport. Commands run one at a time, as on
 * a wire; an aborted or timed-out command rejects at once, but the engine
 * receives the next command only after the abandoned one has finished.
 */
export function inProcessTransport(tpm: InProcessTpm, options: InProcessOptions = {}): Transport {
  const queue = new CommandQueue('in-process transport', options.timeoutMs ?? Infinity);
  return {
    send(command: Uint8Array, opts: SendOptions = NO_SEND_OPTIONS): Promise<Uint8Array> {
      let locality: number;
      try {
        locality = checkLocality(opts.locality ?? 0);
      } catch (e) {
        return Promise.reject(e);
      }
      // A command that waits is copied, so a caller reusing its buffer cannot change it; one that
      // starts at once is handed over before send returns, and execute reads it before it returns.
      const bytes = queue.idle ? command : command.slice();
      // Not async: one promise fewer per command (an aborted job is never started, so the check is a safeguard).
      return queue.run((signal) => (signal.aborted ? Promise.reject(abortError(signal.reason)) : tpm.execute(bytes, locality)), opts);
    },
    close(): Promise<void> {
      queue.close();
      return Promise.resolve();
    },
  };
}

/**
 * The transport's own options (locality, signal, timeoutMs) out of a larger
 * options object, without undefined members; callers on hot paths get one
 * shared empty object when none is set.
 */
export function sendOptionsOf(o: SendOptions): SendOptions {
  if (o.locality === undefined && o.signal === undefined && o.timeoutMs === undefined) return NO_SEND_OPTIONS;
  return {
    ...(o.locality !== undefined ? { locality: o.locality } : {}),
    ...(o.signal !== undefined ? { signal: o.signal } : {}),
    ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
  };
}
