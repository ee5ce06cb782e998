/** Part 3 §29 "Clocks and Timers". */
import { ClockRateAdjust, ClockSet, ReadClock } from '../../tpm/commands/index.js';
import { TPM_RC, TpmError, rcForParameter } from '../../tpm/rc.js';
import { handler, ok, type CommandHandler } from './handler.js';

export const readClockHandler = handler(ReadClock, ({ engine }) => {
  engine.syncClock();
  const c = engine.state.clock;
  return ok<typeof ReadClock>({
    currentTime: { time: engine.time(), clockInfo: { clock: c.clock, resetCount: c.resetCount, restartCount: c.restartCount, safe: c.safe ? 1 : 0 } },
  });
});

/** Part 3 §29.2: Clock never goes back, nor past 0xFFFF000000000000 (which would leave no room before it wraps). */
const CLOCK_SET_MAX = 0xffff_0000_0000_0000n;

/** Part 3 §29.2: owner or platform sets Clock forward (TPM_RC_VALUE on newTime for a value behind it). */
export const clockSetHandler = handler(ClockSet, (ctx, _h, { newTime }) => {
  const { engine } = ctx;
  engine.syncClock();
  if (newTime > CLOCK_SET_MAX || newTime < engine.state.clock.clock) throw new TpmError(rcForParameter(TPM_RC.VALUE, 1));
  engine.state.clock.clock = newTime;
  ctx.persistentChanged = true;
  return ok<typeof ClockSet>({});
});

/**
 * Part 3 §29.3: rateAdjust is a TPM_CLOCK_ADJUST, −3 (coarse slower) to 3
 * (coarse faster); anything else is TPM_RC_VALUE. The tick timer behind
 * Clock and Time runs 1 % (coarse), 0.1 % (medium) or one part in 30,000
 * (fine) slower or faster from now on, within ±16.7 % of nominal, until the
 * next power cycle (timer.ts, as libtpms's platform clock).
 */
export const clockRateAdjustHandler = handler(ClockRateAdjust, ({ engine }, _h, { rateAdjust }) => {
  if (rateAdjust < -3 || rateAdjust > 3) throw new TpmError(rcForParameter(TPM_RC.VALUE, 1));
  engine.adjustClockRate(rateAdjust);
  return ok<typeof ClockRateAdjust>({});
});

/** ClockSet and ClockRateAdjust (handlers/index.ts spreads them). */
export const CLOCK_HANDLERS: readonly CommandHandler[] = [clockSetHandler, clockRateAdjustHandler] as unknown as readonly CommandHandler[];
