/**
 * The TPM's tick timer (Part 1 §36.2; libtpms's platform timer,
 * _plat__TimerRead): milliseconds since power-on, at a rate that
 * ClockRateAdjust trims (Part 3 §29.3). Time, the advance of Clock, the
 * dictionary-attack timers and policy timeouts all read it.
 *
 * The rate is kept as libtpms keeps it: hardware ticks per TPM millisecond,
 * nominally CLOCK_RATE.nominal; a coarse step is 1 %, a medium one 0.1 %,
 * a fine one a single tick (≈ 0.003 %), and the rate never leaves nominal ±
 * CLOCK_RATE.limit (±16.7 %: the spec's ±15 % tolerance and a guard band).
 * A power cycle restores the nominal rate (_plat__TimerReset).
 */

/** libtpms's PlatformClock.h constants (ticks per ms and the adjustment steps). */
export const CLOCK_RATE = { nominal: 30000, coarse: 300, medium: 30, fine: 1, limit: 5000 } as const;

export interface TickTimer {
  /** TPM milliseconds at the start of the current rate (power-on or the last adjustment). */
  base: number;
  /** The host time (the engine's `now`, whole ms) at which the current rate began. */
  since: number;
  /** Hardware ticks per TPM millisecond (CLOCK_RATE.nominal ± limit). */
  rate: number;
}

/** A timer at power-on: zero, nominal rate, counting from host time `now`. */
export function newTickTimer(now: number): TickTimer {
  return { base: 0, since: Math.floor(now), rate: CLOCK_RATE.nominal };
}

/**
 * The timer's value at host time `now`: TPM milliseconds since power-on.
 * Computed from the start of the current rate, so however often it is read
 * no time is lost to rounding (libtpms's incremental reading loses a
 * fraction of a millisecond per read, which frequent reads add up).
 */
export function readTickTimer(timer: TickTimer, now: number): number {
  const elapsed = Math.max(0, Math.floor(now) - timer.since);
  return timer.base + Math.floor((elapsed * CLOCK_RATE.nominal) / timer.rate);
}

/**
 * Part 3 §29.3 TPM_CLOCK_ADJUST (Part 2 §6.6): −3/−2/−1 slow Clock down by a
 * coarse/medium/fine step, 1/2/3 speed it up, 0 leaves it; the rate stays
 * within the limit. The new rate applies from host time `now` on (less than
 * a millisecond is lost per adjustment).
 */
export function adjustTickRate(timer: TickTimer, rateAdjust: number, now: number): void {
  timer.base = readTickTimer(timer, now);
  timer.since = Math.max(timer.since, Math.floor(now));
  const step = [CLOCK_RATE.fine, CLOCK_RATE.medium, CLOCK_RATE.coarse][Math.abs(rateAdjust) - 1] ?? 0;
  // Slower means more hardware ticks per TPM millisecond.
  const next = rateAdjust < 0 ? timer.rate + step : timer.rate - step;
  timer.rate = Math.min(CLOCK_RATE.nominal + CLOCK_RATE.limit, Math.max(CLOCK_RATE.nominal - CLOCK_RATE.limit, next));
}
