/**
 * Retry with back-off, against an in-process fake TPM that answers a scripted
 * list of warnings before it executes the command.
 */
import { describe, expect, it, vi } from 'vitest';
import { RETRY_DEFAULTS, backoffDelay, isRetryableResponse, withRetry, type RetryEvent, type RetryOptions } from '../../src/client/retry.js';
import { GetRandom } from '../../src/tpm/commands/index.js';
import { TransportError } from '../../src/tpm/errors.js';
import { encodeCommand, encodeErrorResponse, encodeResponse } from '../../src/tpm/frame.js';
import { TPM_RC, TpmError, isRc } from '../../src/tpm/rc.js';
import { runCommand } from '../../src/tpm/run.js';
import { inProcessTransport } from '../../src/tpm/transport/index.js';

interface Fake {
  readonly seen: Uint8Array[];
  readonly localities: number[];
  readonly times: number[];
}

/**
 * A TPM that answers each code of `script` in turn (a number is a 10-byte
 * error response, a Uint8Array is sent as is), then executes GetRandom.
 * `forever` answers it for every command instead.
 */
function fakeTpm(script: (number | Uint8Array)[], opts: { forever?: number; workMs?: number } = {}) {
  const fake: Fake = { seen: [], localities: [], times: [] };
  let n = 0;
  const transport = inProcessTransport({
    async execute(command, locality) {
      fake.seen.push(command.slice());
      fake.localities.push(locality);
      fake.times.push(performance.now());
      if (opts.workMs) await new Promise((r) => setTimeout(r, opts.workMs));
      if (opts.forever !== undefined) return encodeErrorResponse(opts.forever);
      const next = script[n++];
      if (next !== undefined) return typeof next === 'number' ? encodeErrorResponse(next) : next;
      const asked = command[command.length - 1]!;
      return encodeResponse(GetRandom, {}, { randomBytes: new Uint8Array(asked).fill(0xa5) });
    },
  });
  return { fake, transport };
}

const command = (n = 8): Uint8Array => encodeCommand(GetRandom, {}, { bytesRequested: n });

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
}

describe('retry with back-off', () => {
  for (const [name, rc] of [
    ['TPM_RC_RETRY', TPM_RC.RETRY],
    ['TPM_RC_YIELDED', TPM_RC.YIELDED],
    ['TPM_RC_TESTING', TPM_RC.TESTING],
  ] as const) {
    it(`resends the identical bytes after ${name} until the command runs`, async () => {
      const { fake, transport } = fakeTpm([rc, rc, rc]);
      const events: RetryEvent[] = [];
      const t = withRetry(transport, { initialDelayMs: 1, onRetry: (e) => events.push(e) });
      const cmd = command(12);
      const r = await runCommand(t, GetRandom, {}, { bytesRequested: 12 });
      expect(r.params.randomBytes).toEqual(new Uint8Array(12).fill(0xa5));
      expect(fake.seen).toHaveLength(4);
      for (const sent of fake.seen) expect(Buffer.from(sent)).toEqual(Buffer.from(cmd));
      expect(events.map((e) => [e.attempt, e.rc, e.rcName, e.commandCode])).toEqual([
        [1, rc, name, GetRandom.code],
        [2, rc, name, GetRandom.code],
        [3, rc, name, GetRandom.code],
      ]);
    });
  }

  it('backs off exponentially up to the cap, each wait really taken', async () => {
    const { fake, transport } = fakeTpm(Array(6).fill(TPM_RC.RETRY));
    const events: RetryEvent[] = [];
    // random() = 0: no jitter taken off, so the waits are the nominal ones.
    const t = withRetry(transport, { initialDelayMs: 8, multiplier: 2, maxDelayMs: 40, jitter: 0.5, random: () => 0, onRetry: (e) => events.push(e) });
    await t.send(command());
    const delays = events.map((e) => e.delayMs);
    expect(delays).toEqual([8, 16, 32, 40, 40, 40]);
    expect(delays).toEqual([1, 2, 3, 4, 5, 6].map((a) => backoffDelay(a, { initialDelayMs: 8, multiplier: 2, maxDelayMs: 40 })));
    // The gap between two sends is at least the wait announced before it (timers never fire early by more than rounding).
    for (let i = 0; i < delays.length; i++) expect(fake.times[i + 1]! - fake.times[i]!).toBeGreaterThanOrEqual(delays[i]! - 1);
  });

  it('jitter shortens each wait by at most its share, and varies', async () => {
    const { transport } = fakeTpm(Array(8).fill(TPM_RC.RETRY));
    const events: RetryEvent[] = [];
    const t = withRetry(transport, { initialDelayMs: 2, multiplier: 1.5, maxDelayMs: 20, jitter: 0.5, onRetry: (e) => events.push(e) });
    await t.send(command());
    expect(events).toHaveLength(8);
    events.forEach((e, i) => {
      const nominal = backoffDelay(i + 1, { initialDelayMs: 2, multiplier: 1.5, maxDelayMs: 20 });
      expect(e.delayMs).toBeLessThanOrEqual(nominal);
      expect(e.delayMs).toBeGreaterThanOrEqual(nominal * 0.5);
    });
    expect(new Set(events.map((e, i) => e.delayMs / backoffDelay(i + 1, { initialDelayMs: 2, multiplier: 1.5, maxDelayMs: 20 }))).size).toBeGreaterThan(1);
  });

  it('gives up after maxAttempts and returns the warning itself, which the core turns into its TpmError', async () => {
    const { fake, transport } = fakeTpm([], { forever: TPM_RC.RETRY });
    const t = withRetry(transport, { maxAttempts: 4, initialDelayMs: 1 });
    const raw = await t.send(command());
    expect(Buffer.from(raw)).toEqual(Buffer.from(encodeErrorResponse(TPM_RC.RETRY)));
    expect(isRetryableResponse(raw)).toBe(true);
    expect(fake.seen).toHaveLength(4);

    const err = await rejection(runCommand(t, GetRandom, {}, { bytesRequested: 8 }));
    expect(err).toBeInstanceOf(TpmError);
    expect((err as TpmError).retryable).toBe(true);
    expect(isRc(err, TPM_RC.RETRY)).toBe(true);
    expect(fake.seen).toHaveLength(8);
  });

  // Virtual time (vitest's fake timers also fake performance.now, which the wrapper reads), so each budget is checked exactly.
  it('stops when the next back-off would outlast the retry budget or the caller’s deadline', async () => {
    vi.useFakeTimers();
    try {
      // Budget 50 ms, waits 20 then 40: the second would end at 60, past the budget, so it is never started.
      for (const [budget, sends] of [
        [50, 2],
        [59, 2],
        [60, 3], // ends exactly at the budget: taken
      ] as const) {
        const a = fakeTpm([], { forever: TPM_RC.YIELDED });
        const waits: number[] = [];
        const t1 = withRetry(a.transport, { initialDelayMs: 20, maxAttempts: 3, random: () => 0, maxElapsedMs: budget, onRetry: (e) => waits.push(e.delayMs) });
        const start1 = performance.now();
        let r1: Uint8Array | undefined;
        void t1.send(command()).then((r) => (r1 = r));
        await vi.advanceTimersByTimeAsync(19);
        expect(a.fake.seen).toHaveLength(1);
        await vi.advanceTimersByTimeAsync(1);
        expect(a.fake.seen).toHaveLength(2);
        await vi.runAllTimersAsync();
        expect(r1 !== undefined && isRetryableResponse(r1), `budget ${budget}`).toBe(true);
        expect(a.fake.seen, `budget ${budget}`).toHaveLength(sends);
        expect(waits, `budget ${budget}`).toEqual([20, 40].slice(0, sends - 1));
        // The warning came back when the last attempt was answered, not after a wait that was not taken.
        expect(a.fake.times.map((x) => x - start1)).toEqual([0, 20, 60].slice(0, sends));
        expect(performance.now() - start1).toBe(sends === 2 ? 20 : 60);
      }

      // A 30 ms deadline and a first wait of 100 ms: the warning comes back at once, with no timer left behind.
      const b = fakeTpm([], { forever: TPM_RC.TESTING });
      const t2 = withRetry(b.transport, { initialDelayMs: 100, random: () => 0 });
      const start2 = performance.now();
      const r2 = await t2.send(command(), { timeoutMs: 30 });
      expect(isRetryableResponse(r2)).toBe(true);
      expect(b.fake.seen).toHaveLength(1);
      expect(performance.now() - start2).toBe(0);
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('the caller’s timeout covers all attempts: a slow TPM that keeps asking for retries times out', async () => {
    vi.useFakeTimers();
    try {
      // Each answer takes 60 ms: the second attempt (sent at 61) is still running when the 100 ms are up.
      const { fake, transport } = fakeTpm([], { forever: TPM_RC.RETRY, workMs: 60 });
      const t = withRetry(transport, { initialDelayMs: 1, random: () => 0 });
      const start = performance.now();
      let err: unknown;
      void rejection(t.send(command(), { timeoutMs: 100 })).then((e) => (err = e));
      await vi.advanceTimersByTimeAsync(99);
      expect(err).toBeUndefined();
      expect(fake.times.map((x) => x - start)).toEqual([0, 61]);
      await vi.advanceTimersByTimeAsync(1);
      expect(err).toBeInstanceOf(TransportError);
      expect((err as TransportError).code).toBe('transport.timeout');
      expect(performance.now() - start).toBe(100);
      await vi.runAllTimersAsync();
      expect(fake.seen).toHaveLength(2);
    } finally {
      vi.useRealTimers();
    }
  });

  it('passes every other response through untouched, after a single send', async () => {
    const cases: Uint8Array[] = [
      encodeResponse(GetRandom, {}, { randomBytes: Uint8Array.of(1, 2, 3) }),
      encodeErrorResponse(TPM_RC.LOCKOUT), // a warning, but waiting will not help
      encodeErrorResponse(0x98e), // AUTH_FAIL on session 1
      encodeErrorResponse(TPM_RC.INITIALIZE),
      encodeErrorResponse(0x400 | 0x922), // vendor-defined warning that looks like RETRY
      Uint8Array.of(0x00, 0xc4, 0, 0, 0, 10, 0, 0, 0, 0x1e), // TPM 1.2's answer to a bad tag
      Uint8Array.of(0x80, 0x01, 0, 0, 0), // too short to carry a code
    ];
    for (const response of cases) {
      const { fake, transport } = fakeTpm([response]);
      const t = withRetry(transport, { initialDelayMs: 1 });
      const got = await t.send(command());
      expect(Buffer.from(got)).toEqual(Buffer.from(response));
      expect(fake.seen).toHaveLength(1);
    }
  });

  it('an abort during a back-off ends it at once, and nothing more is sent', async () => {
    vi.useFakeTimers();
    try {
      const { fake, transport } = fakeTpm([], { forever: TPM_RC.RETRY });
      let retried: () => void = () => undefined;
      const firstRetry = new Promise<void>((r) => (retried = r));
      const t = withRetry(transport, { initialDelayMs: 5000, onRetry: () => retried() });
      const ctl = new AbortController();
      const p = rejection(t.send(command(), { signal: ctl.signal }));
      await firstRetry;
      const reason = new Error('operator cancelled');
      let err: unknown;
      void p.then((e) => (err = e));
      const abortedAt = performance.now();
      ctl.abort(reason);
      // "At once": settled with no virtual time passing, not when the 5 s back-off's timer fires.
      await vi.advanceTimersByTimeAsync(0);
      expect(performance.now()).toBe(abortedAt);
      expect(err).toBeInstanceOf(TransportError);
      expect((err as TransportError).code).toBe('transport.aborted');
      expect((err as TransportError).cause).toBe(reason);
      // Well past the back-off the wrapper would have taken: no second send.
      await vi.advanceTimersByTimeAsync(60_000);
      expect(fake.seen).toHaveLength(1);
      // The transport still works for the next command.
      const ok = fakeTpm([]);
      expect((await withRetry(ok.transport).send(command(3))).length).toBe(10 + 2 + 3);
    } finally {
      vi.useRealTimers();
    }
  });

  it('close() during a back-off rejects with transport.closed and closes the inner transport', async () => {
    const { fake, transport } = fakeTpm([], { forever: TPM_RC.RETRY });
    let retried: () => void = () => undefined;
    const firstRetry = new Promise<void>((r) => (retried = r));
    const t = withRetry(transport, { initialDelayMs: 5000, onRetry: () => retried() });
    const p = rejection(t.send(command()));
    await firstRetry;
    await t.close();
    const err = await p;
    expect((err as TransportError).code).toBe('transport.closed');
    expect(((await rejection(transport.send(command()))) as TransportError).code).toBe('transport.closed');
    expect(((await rejection(t.send(command()))) as TransportError).code).toBe('transport.closed');
    expect(t.close()).toBe(t.close());
    expect(fake.seen).toHaveLength(1);
  });

  it('keeps commands in order: one sent later waits until the earlier one has finished its retries', async () => {
    const { fake, transport } = fakeTpm([TPM_RC.RETRY, TPM_RC.RETRY]);
    const t = withRetry(transport, { initialDelayMs: 5 });
    const [a, b] = await Promise.all([t.send(command(5)), t.send(command(6))]);
    expect(a.length).toBe(10 + 2 + 5);
    expect(b.length).toBe(10 + 2 + 6);
    expect(fake.seen.map((c) => c[c.length - 1])).toEqual([5, 5, 5, 6]);
  });

  it('forwards the locality on every attempt', async () => {
    const { fake, transport } = fakeTpm([TPM_RC.RETRY]);
    await withRetry(transport, { initialDelayMs: 1 }).send(command(), { locality: 3 });
    expect(fake.localities).toEqual([3, 3]);
  });

  it('refuses options that make no sense', () => {
    const { transport } = fakeTpm([]);
    const bad: RetryOptions[] = [
      { maxAttempts: 0 },
      { maxAttempts: 1.5 },
      { initialDelayMs: -1 },
      { multiplier: 0.5 },
      { maxDelayMs: 1, initialDelayMs: 10 },
      { jitter: 2 },
      { maxElapsedMs: -5 },
    ];
    for (const o of bad) expect(() => withRetry(transport, o), JSON.stringify(o)).toThrow(RangeError);
    expect(RETRY_DEFAULTS.maxAttempts).toBeGreaterThan(1);
    expect(backoffDelay(1)).toBe(RETRY_DEFAULTS.initialDelayMs);
    expect(backoffDelay(100)).toBe(RETRY_DEFAULTS.maxDelayMs);
  });
});
