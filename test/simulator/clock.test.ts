/**
 * ClockRateAdjust (Part 3 §29.3, Part 1 §36.3) in the simulator: the tick
 * timer behind Clock and Time (timer.ts) runs 1 % / 0.1 % / one part in
 * 30,000 slower or faster per coarse / medium / fine step, within ±16.7 %,
 * until the next power cycle; ReadClock and the dictionary-attack timers
 * follow it. Exact on a test clock; against swtpm, the measured rate of a
 * slowed Clock over real time.
 */
import { describe, expect, it } from 'vitest';
import { readCapability } from '../../src/tpm/capability.js';
import { ClockRateAdjust, DictionaryAttackParameters, NV_DefineSpace, NV_Read, ReadClock, Startup } from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_CAP, TPM_PT, TPM_RH, TPM_SU } from '../../src/tpm/constants.js';
import { passwordAuth, runCommand } from '../../src/tpm/run.js';
import type { Transport } from '../../src/tpm/transport/index.js';
import { TPMA_NV } from '../../src/tpm/types/index.js';
import { TpmEngine } from '../../src/simulator/index.js';
import { CLOCK_RATE, adjustTickRate, newTickTimer, readTickTimer } from '../../src/simulator/timer.js';
import { tpmRejection } from '../support/probe.js';
import { describeWithSwtpm } from '../support/swtpm.js';
import { startedEngine, swtpmAndSimulator } from '../support/fixture.js';

const COARSE_SLOWER = -3;
const MEDIUM_SLOWER = -2;
const FINE_FASTER = 1;
const COARSE_FASTER = 3;

async function readClock(t: Transport): Promise<{ clock: bigint; time: bigint }> {
  const c = (await runCommand(t, ReadClock, {}, {})).params.currentTime;
  return { clock: c.clockInfo.clock, time: c.time };
}

function adjust(t: Transport, rateAdjust: number) {
  return runCommand(t, ClockRateAdjust, { auth: TPM_RH.OWNER }, { rateAdjust: rateAdjust as never });
}

async function onTestClock() {
  let now = 0;
  const { engine, t } = await startedEngine(new TpmEngine({ now: () => now }));
  /** How far Clock and Time move while the host's clock moves `ms`. */
  const advance = async (ms: number): Promise<{ clock: bigint; time: bigint }> => {
    const before = await readClock(t);
    now += ms;
    const after = await readClock(t);
    return { clock: after.clock - before.clock, time: after.time - before.time };
  };
  return { engine, t, advance, tick: (ms: number) => void (now += ms) };
}

describe('simulator ClockRateAdjust', () => {
  it('each step changes the rate of Clock and Time by its amount, in ticks per millisecond', async () => {
    const { t, advance } = await onTestClock();
    expect(await advance(10_000)).toEqual({ clock: 10_000n, time: 10_000n });
    // Coarse slower: 30,300 ticks per ms, so 101,000 host ms are 100,000 TPM ms.
    await adjust(t, COARSE_SLOWER);
    expect(await advance(101_000)).toEqual({ clock: 100_000n, time: 100_000n });
    // Two coarse faster: 29,700.
    await adjust(t, COARSE_FASTER);
    await adjust(t, COARSE_FASTER);
    expect(await advance(99_000)).toEqual({ clock: 100_000n, time: 100_000n });
    // One medium slower and one fine faster: 29,729.
    await adjust(t, MEDIUM_SLOWER);
    await adjust(t, FINE_FASTER);
    expect((await advance(29_729)).clock).toBe(30_000n);
    // 0 changes nothing.
    await adjust(t, 0);
    expect((await advance(29_729)).clock).toBe(30_000n);
  });

  it('stays within ±16.7 % (libtpms CLOCK_ADJUST_LIMIT) and is nominal again after a power cycle', async () => {
    const { engine, t, advance } = await onTestClock();
    for (let i = 0; i < 20; i++) await adjust(t, COARSE_SLOWER);
    expect((await advance(35_000)).clock).toBe(30_000n);
    for (let i = 0; i < 40; i++) await adjust(t, COARSE_FASTER);
    expect((await advance(25_000)).clock).toBe(30_000n);
    engine.init();
    await runCommand(t, Startup, {}, { startupType: TPM_SU.CLEAR });
    expect((await advance(30_000)).clock).toBe(30_000n);
  });

  it('reading the timer often loses no time to rounding', () => {
    const timer = newTickTimer(0);
    adjustTickRate(timer, COARSE_SLOWER, 0);
    let last = 0;
    for (let ms = 7; ms <= 70_000; ms += 7) {
      const v = readTickTimer(timer, ms);
      expect(v).toBeGreaterThanOrEqual(last);
      last = v;
    }
    expect(last).toBe(Math.floor((70_000 * CLOCK_RATE.nominal) / (CLOCK_RATE.nominal + CLOCK_RATE.coarse)));
  });

  it('dictionary-attack recovery runs on the adjusted timer', async () => {
    const { t, tick } = await onTestClock();
    const index = 0x01500401;
    const publicInfo = { nvIndex: index, nameAlg: TPM_ALG.SHA256, attributes: TPMA_NV.of({ AUTHREAD: true, AUTHWRITE: true }), authPolicy: new Uint8Array(0), dataSize: 1 } as never;
    await runCommand(t, NV_DefineSpace, { authHandle: TPM_RH.OWNER }, { auth: Uint8Array.of(1), publicInfo });
    await runCommand(t, DictionaryAttackParameters, { lockHandle: TPM_RH.LOCKOUT }, { newMaxTries: 3, newRecoveryTime: 6, lockoutRecovery: 6 });
    for (let i = 0; i < 20; i++) await adjust(t, COARSE_SLOWER);
    await tpmRejection(runCommand(t, NV_Read, { authHandle: index, nvIndex: index }, { size: 1, offset: 0 }, { sessions: [passwordAuth(Uint8Array.of(2))] }));
    const count = async (): Promise<number | undefined> => (await readCapability(t, TPM_CAP.TPM_PROPERTIES, [TPM_PT.LOCKOUT_COUNTER]))[0]?.value;
    // 6 TPM seconds take 7 host seconds at 35,000 ticks per ms.
    tick(6_999);
    expect(await count()).toBe(1);
    tick(1);
    expect(await count()).toBe(0);
  });
});

describeWithSwtpm('simulator ClockRateAdjust agrees with swtpm', () => {
  const tpms = swtpmAndSimulator();

  /** Clock's rate over host time across a 1.2 s wait, at the slowest rate the TPM allows. */
  async function slowestRate(tt: Transport): Promise<number> {
    for (let i = 0; i < 20; i++) await adjust(tt, COARSE_SLOWER);
    const h0 = performance.now();
    const c0 = (await readClock(tt)).clock;
    await new Promise((r) => setTimeout(r, 1200));
    const c1 = (await readClock(tt)).clock;
    const h1 = performance.now();
    return Number(c1 - c0) / (h1 - h0);
  }

  it('twenty coarse steps slow Clock to the same limit on both TPMs (30,000 / 35,000 of host time)', async () => {
    const sim = await tpms.simulator();
    const want = CLOCK_RATE.nominal / (CLOCK_RATE.nominal + CLOCK_RATE.limit);
    for (const rate of [await slowestRate(tpms.swtpm.probe), await slowestRate(sim.probe)]) {
      // The host-side window includes two round trips, so Clock's share is at most a few per cent below the rate.
      expect(rate).toBeGreaterThan(want - 0.04);
      expect(rate).toBeLessThan(want + 0.02);
    }
  }, 30_000);
});
