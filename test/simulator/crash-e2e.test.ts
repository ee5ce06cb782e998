/**
 * Issue 6 acceptance, crash test end to end: `trustroot tpm serve` killed with
 * SIGKILL 20 times at random moments (fixed seed) during a stream of
 * persistent-state commands; after every kill the state loads and holds every
 * acknowledged command, plus at most the one in flight
 * (test/support/sim-crash.ts; 1,000 kills: `npm run fuzz -- --only sim-crash`).
 */
import { describe, expect, it } from 'vitest';
import { runSimulatorCrashTest } from '../support/sim-crash.js';

const ROUNDS = 20;
const SEED = 0x5eed_0606;

describe('software TPM server: SIGKILL at random moments', () => {
  it(`${ROUNDS} kills of trustroot tpm serve: the state always loads and loses nothing acknowledged`, async () => {
    const summary = await runSimulatorCrashTest({ rounds: ROUNDS, seed: SEED });
    // Kills must land in the stream, not only during start-up, and the stream must make progress.
    expect(summary.midStream).toBeGreaterThanOrEqual(ROUNDS / 2);
    // (Loose bounds: a slow machine answers fewer commands before each kill.)
    expect(summary.acknowledged).toBeGreaterThan(ROUNDS);
    expect(summary.inFlightKinds.size).toBeGreaterThanOrEqual(2);
    console.log(
      `sim crash test: ${ROUNDS} kills, ${summary.midStream} mid-stream, ${summary.inFlightKept} kept the command in flight, ${summary.acknowledged} commands; in flight at kills: ${[...summary.inFlightKinds].map(([k, n]) => `${k} ${n}`).join(', ')}`,
    );
  }, 120_000);
});
