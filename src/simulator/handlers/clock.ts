/** Part 3 §29 "Clocks and Timers". */
import { ReadClock } from '../../tpm/commands/index.js';
import { handler, ok } from './handler.js';

export const readClockHandler = handler(ReadClock, ({ engine }) => {
  engine.syncClock();
  const c = engine.state.clock;
  return ok<typeof ReadClock>({
    currentTime: { time: engine.time(), clockInfo: { clock: c.clock, resetCount: c.resetCount, restartCount: c.restartCount, safe: c.safe ? 1 : 0 } },
  });
});
