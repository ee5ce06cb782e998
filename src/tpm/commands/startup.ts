/**
 * Part 3 §9 "Start-up".
 */
import { command } from '../command.js';
import { TPM_CC } from '../constants.js';
import { TPM_SU } from '../types/index.js';

/** Initializes the TPM after _TPM_Init: a reset (CLEAR) or a resume (STATE). */
export const Startup = command({
  name: 'Startup',
  code: TPM_CC.Startup,
  spec: 'Part 3 §9.3',
  handles: {},
  params: { startupType: TPM_SU },
  responseHandles: {},
  response: {},
});

/** Prepares the TPM for power loss, saving state for a later Startup(STATE) when asked. */
export const Shutdown = command({
  name: 'Shutdown',
  code: TPM_CC.Shutdown,
  spec: 'Part 3 §9.4',
  handles: {},
  params: { shutdownType: TPM_SU },
  responseHandles: {},
  response: {},
});
