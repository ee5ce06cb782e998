/**
 * Part 3 §29 "Clocks and Timers".
 */
import { authHandle, command } from '../command.js';
import { TPM_CC } from '../constants.js';
import { TPMI_RH_PROVISION, TPMS_TIME_INFO, TPM_CLOCK_ADJUST } from '../types/index.js';
import { u64 } from '../wire/codec.js';

/** Returns the current time and clock values. */
export const ReadClock = command({
  name: 'ReadClock',
  code: TPM_CC.ReadClock,
  spec: 'Part 3 §29.1',
  handles: {},
  params: {},
  responseHandles: {},
  response: { currentTime: TPMS_TIME_INFO },
});

/** Advances the TPM's Clock. */
export const ClockSet = command({
  name: 'ClockSet',
  code: TPM_CC.ClockSet,
  spec: 'Part 3 §29.2',
  handles: { auth: authHandle(TPMI_RH_PROVISION, 'USER') },
  params: { newTime: u64 },
  responseHandles: {},
  response: {},
});

/** Adjusts the rate at which Clock advances. */
export const ClockRateAdjust = command({
  name: 'ClockRateAdjust',
  code: TPM_CC.ClockRateAdjust,
  spec: 'Part 3 §29.3',
  handles: { auth: authHandle(TPMI_RH_PROVISION, 'USER') },
  params: { rateAdjust: TPM_CLOCK_ADJUST },
  responseHandles: {},
  response: {},
});
