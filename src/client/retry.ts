/**
 * Resend a command when the TPM answers "not now": TPM_RC_RETRY (it could not
 * start the command), TPM_RC_YIELDED (it paused it) or TPM_RC_TESTING (it is
 * running self-tests). Part 3 §6.2 says any response code but SUCCESS means
 * the command did not complete and the TPM's state is unchanged (dictionary-
 * attack counters aside), and its Table 4 lists these three as
 * command-independent codes after which the same command may be retried. The
 * TPM made no new nonceTPM and consumed nothing, so the identical bytes —
 * authorization HMACs included — are still valid: the wrapper resends them
 * unchanged and never needs to know about sessions.
 *
 * Every other response, errors included, passes through untouched. When the
 * attempts or the time budget run out, the last warning response itself is
 * returned, so the caller's parser turns it into the TpmError it would have
 * seen without the wrapper.
 */
import { decodeResponseCode } from '../tpm/rc.js';
import { CommandQueue, abortError, closedError, getU32 } from '../tpm/transport/channel.js';
import type { SendOptions, Transport } from '../tpm/transport/transport.js';

export interface RetryOptions {
  /** Sends per command in all, the first included (default 10). */
  readonly maxAttempts?: number;
  /** The first back-off (default 20 ms). */
  readonly initialDelayMs?: number;
  /** Each back-off is this many times the one before (default 2). */
  readonly multiplier?: number;
  /** Cap on one back-off (default 2 s, or initialDelayMs if that is longer). */
  readonly maxDelayMs?: number;
  /**
   * Time budget for one command's retries, from when it was sent (default
   * 30 s): a back-off that would end later is not started, and the warning is
   * returned instead.
   */
  readonly maxElapsedMs?: number;
  /**
   * Share of each back-off left to chance, 0..1 (default 0.5): the wait is
   * drawn from [d × (1 − jitter), d], so devices that all hear TPM_RC_RETRY
   * at once do not all come back at once.
   */
  readonly jitter?: number;
  /** Random numbers in [0, 1) for the jitter (default Math.random). */
  readonly random?: () => number;
  /** Called before each back-off (for logs and metrics). */
  readonly onRetry?: (event: RetryEvent) => void;
}

export interface RetryEvent {
  /** The command code of the command being retried. */
  readonly commandCode: number;
  /** The attempt that was answered with a warning, from 1. */
  readonly attempt: number;
  /** The warning: TPM_RC_RETRY, TPM_RC_YIELDED or TPM_RC_TESTING. */
  readonly rc: number;
  readonly rcName: string;
  /** How long the wrapper waits before the next attempt. */
  readonly delayMs: number;
}

/** The defaults, for reference and for callers that scale them. */
export const RETRY_DEFAULTS = {
  maxAttempts: 10,
  initialDelayMs: 20,
  multiplier: 2,
  maxDelayMs: 2000,
  maxElapsedMs: 30_000,
  jitter: 0.5,
} as const;

interface Settings {
  readonly maxAttempts: number;
  readonly initialDelayMs: number;
  readonly multiplier: number;
  readonly maxDelayMs: number;
  readonly maxElapsedMs: number;
  readonly jitter: number;
  readonly random: () => number;
  readonly onRetry: ((event: RetryEvent) => void) | undefined;
}

function settings(o: RetryOptions): Settings {
  const s: Settings = {
    maxAttempts: o.maxAttempts ?? RETRY_DEFAULTS.maxAttempts,
    initialDelayMs: o.initialDelayMs ?? RETRY_DEFAULTS.initialDelayMs,
    multiplier: o.multiplier ?? RETRY_DEFAULTS.multiplier,
    maxDelayMs: o.maxDelayMs ?? Math.max(RETRY_DEFAULTS.maxDelayMs, o.initialDelayMs ?? 0),
    maxElapsedMs: o.maxElapsedMs ?? RETRY_DEFAULTS.maxElapsedMs,
    jitter: o.jitter ?? RETRY_DEFAULTS.jitter,
    random: o.random ?? Math.random,
    onRetry: o.onRetry,
  };
  if (!Number.isInteger(s.maxAttempts) || s.maxAttempts < 1) throw new RangeError(`maxAttempts must be an integer >= 1, got ${s.maxAttempts}`);
  if (!(s.initialDelayMs >= 0) || !Number.isFinite(s.initialDelayMs)) throw new RangeError(`initialDelayMs must be a finite number >= 0, got ${s.initialDelayMs}`);
  if (!(s.multiplier >= 1) || !Number.isFinite(s.multiplier)) throw new RangeError(`multiplier must be a finite number >= 1, got ${s.multiplier}`);
  if (!(s.maxDelayMs >= s.initialDelayMs) || !Number.isFinite(s.maxDelayMs)) throw new RangeError(`maxDelayMs must be finite and >= initialDelayMs, got ${s.maxDelayMs}`);
  if (!(s.maxElapsedMs >= 0)) throw new RangeError(`maxElapsedMs must be >= 0, got ${s.maxElapsedMs}`);
  if (!(s.jitter >= 0 && s.jitter <= 1)) throw new RangeError(`jitter must be in 0..1, got ${s.jitter}`);
  return s;
}

/**
 * The back-off before attempt `attempt + 1`, before jitter:
 * initialDelayMs × multiplier^(attempt − 1), capped at maxDelayMs.
 */
export function backoffDelay(attempt: number, options: RetryOptions = {}): number {
  const s = settings(options);
  return Math.min(s.maxDelayMs, s.initialDelayMs * s.multiplier ** (attempt - 1));
}

/** Resolve after `ms`, or reject at once when `signal` fires. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal.aborted) {
      reject(abortError(signal.reason));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortError(signal.reason));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * A Transport that retries TPM_RC_RETRY, YIELDED and TESTING with exponential
 * back-off and jitter. Commands run one at a time here too, retries included,
 * so they reach the TPM in the order they were sent. The caller's timeout
 * covers every attempt and back-off; the caller's signal (or close()) ends a
 * back-off at once.
 */
export class RetryTransport implements Transport {
  readonly inner: Transport;
  readonly #settings: Settings;
  readonly #queue = new CommandQueue('retrying transport', Infinity);
  #closing: Promise<void> | undefined;

  constructor(inner: Transport, options: RetryOptions = {}) {
    this.inner = inner;
    this.#settings = settings(options);
  }

  send(command: Uint8Array, options: SendOptions = {}): Promise<Uint8Array> {
    const sentAt = performance.now();
    // A copy: every attempt must send the same bytes, whatever the caller does with its buffer.
    const bytes = command.slice();
    return this.#queue.run((signal) => this.#attempts(bytes, options, sentAt, signal, undefined), options);
  }

  /**
   * The same retries for a caller that already sends one command at a time
   * and leaves `command` alone until the promise settles (the client's Tpm,
   * whose own queue orders its commands). The first attempt goes straight to
   * the inner transport, without this transport's queue, copy and per-command
   * AbortController, so a command the TPM runs at once costs one inner send;
   * only a warning enters the queue, for the back-offs and further attempts,
   * under the same budgets as send(). A command sent through send() meanwhile
   * may reach the TPM before a retry of this one.
   */
  async sendSerialized(command: Uint8Array, options: SendOptions = {}): Promise<Uint8Array> {
    if (this.#queue.closed) throw closedError('retrying transport');
    const sentAt = performance.now();
    const first = await this.inner.send(command, options);
    return isSuccessResponse(first) ? first : this.retryWarning(command, options, sentAt, first);
  }

  /** Whether close() has been called (sendSerialized then rejects with `transport.closed`). */
  get closed(): boolean {
    return this.#queue.closed;
  }

  /**
   * The second half of sendSerialized, for a serialized caller that made the
   * first attempt itself through `inner` (checking `closed` first, as
   * sendSerialized does) at `sentAt`, and got `first`: a warning is retried
   * under the same budgets, any other response is returned as it is.
   */
  retryWarning(command: Uint8Array, options: SendOptions, sentAt: number, first: Uint8Array): Promise<Uint8Array> {
    if (!isRetryableResponse(first)) return Promise.resolve(first);
    const left = options.timeoutMs !== undefined && Number.isFinite(options.timeoutMs) ? { ...options, timeoutMs: Math.max(1, sentAt + options.timeoutMs - performance.now()) } : options;
    return this.#queue.run((signal) => this.#attempts(command.slice(), options, sentAt, signal, first), left);
  }

  /** Sends `bytes` until the answer is not a warning or a budget runs out; `first` is an answer to a first attempt already made. */
  async #attempts(bytes: Uint8Array, options: SendOptions, sentAt: number, signal: AbortSignal, first: Uint8Array | undefined): Promise<Uint8Array> {
    const s = this.#settings;
    const deadline = options.timeoutMs !== undefined && Number.isFinite(options.timeoutMs) ? sentAt + options.timeoutMs : Infinity;
    const budgetEnd = Math.min(deadline, sentAt + s.maxElapsedMs);
    const commandCode = bytes.length >= 10 ? getU32(bytes, 6) : 0;
    let response = first;
    for (let attempt = 1; ; attempt++) {
      if (response === undefined) {
        const inner: SendOptions = {
          signal,
          ...(options.locality !== undefined ? { locality: options.locality } : {}),
          ...(Number.isFinite(deadline) ? { timeoutMs: Math.max(1, deadline - performance.now()) } : {}),
        };
        response = await this.inner.send(bytes, inner);
      }
      if (response.length < 10) return response; // not ours to judge: the caller's parser reports it
      const rc = decodeResponseCode(getU32(response, 6));
      if (!rc.retryable || attempt >= s.maxAttempts) return response;
      const nominal = Math.min(s.maxDelayMs, s.initialDelayMs * s.multiplier ** (attempt - 1));
      const delayMs = nominal * (1 - s.jitter * s.random());
      // No back-off that would outlast the caller's deadline or the retry budget: answer now.
      if (performance.now() + delayMs > budgetEnd) return response;
      s.onRetry?.({ commandCode, attempt, rc: rc.rc, rcName: rc.name, delayMs });
      await sleep(delayMs, signal);
      response = undefined;
    }
  }

  /** Reject queued sends and back-offs with `transport.closed`, then close the inner transport. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#queue.close();
      await this.inner.close();
    })();
    return this.#closing;
  }
}

/** Wrap `transport` so that TPM_RC_RETRY, YIELDED and TESTING are retried (see {@link RetryTransport}). */
export function withRetry(transport: Transport, options: RetryOptions = {}): RetryTransport {
  return new RetryTransport(transport, options);
}

/** TPM_RC_SUCCESS, the common answer: no need to decode the code to know it is not a warning. */
export function isSuccessResponse(response: Uint8Array): boolean {
  return response.length >= 10 && getU32(response, 6) === 0;
}

/** Whether a response's code asks for the same command again (bytes 6..9 of a response of at least 10 bytes). */
export function isRetryableResponse(response: Uint8Array): boolean {
  return response.length >= 10 && decodeResponseCode(getU32(response, 6)).retryable;
}
