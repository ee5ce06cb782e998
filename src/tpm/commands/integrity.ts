/**
 * Part 3 §22 "Integrity Collection (PCR)".
 */
import { authHandle, command } from '../command.js';
import { TPM_CC } from '../constants.js';
import {
  TPM2B_DIGEST,
  TPM2B_EVENT,
  TPMI_ALG_HASH,
  TPMI_DH_PCR,
  TPMI_RH_PLATFORM,
  TPMI_YES_NO,
  TPML_DIGEST,
  TPML_DIGEST_VALUES,
  TPML_PCR_SELECTION,
} from '../types/index.js';
import { orNull, u32 } from '../wire/codec.js';

/** Extends tagged digests into a PCR. */
export const PCR_Extend = command({
  name: 'PCR_Extend',
  code: TPM_CC.PCR_Extend,
  spec: 'Part 3 §22.2',
  handles: { pcrHandle: authHandle(orNull(TPMI_DH_PCR), 'USER') },
  params: { digests: TPML_DIGEST_VALUES },
  responseHandles: {},
  response: {},
});

/** Hashes event data with every active bank and extends the PCR. */
export const PCR_Event = command({
  name: 'PCR_Event',
  code: TPM_CC.PCR_Event,
  spec: 'Part 3 §22.3',
  handles: { pcrHandle: authHandle(orNull(TPMI_DH_PCR), 'USER') },
  params: { eventData: TPM2B_EVENT },
  responseHandles: {},
  response: { digests: TPML_DIGEST_VALUES },
});

/** Reads the selected PCRs (as many as fit in one response). */
export const PCR_Read = command({
  name: 'PCR_Read',
  code: TPM_CC.PCR_Read,
  spec: 'Part 3 §22.4',
  handles: {},
  params: { pcrSelectionIn: TPML_PCR_SELECTION },
  responseHandles: {},
  response: { pcrUpdateCounter: u32, pcrSelectionOut: TPML_PCR_SELECTION, pcrValues: TPML_DIGEST },
});

/** Sets the PCR banks to allocate at the next Startup(CLEAR). */
export const PCR_Allocate = command({
  name: 'PCR_Allocate',
  code: TPM_CC.PCR_Allocate,
  spec: 'Part 3 §22.5',
  handles: { authHandle: authHandle(TPMI_RH_PLATFORM, 'USER') },
  params: { pcrAllocation: TPML_PCR_SELECTION },
  responseHandles: {},
  response: { allocationSuccess: TPMI_YES_NO, maxPCR: u32, sizeNeeded: u32, sizeAvailable: u32 },
});

/** Sets the authorization policy of a PCR group. */
export const PCR_SetAuthPolicy = command({
  name: 'PCR_SetAuthPolicy',
  code: TPM_CC.PCR_SetAuthPolicy,
  spec: 'Part 3 §22.6',
  handles: { authHandle: authHandle(TPMI_RH_PLATFORM, 'USER') },
  params: { authPolicy: TPM2B_DIGEST, hashAlg: orNull(TPMI_ALG_HASH), pcrNum: TPMI_DH_PCR },
  responseHandles: {},
  response: {},
});

/** Sets the authorization value of a PCR group. */
export const PCR_SetAuthValue = command({
  name: 'PCR_SetAuthValue',
  code: TPM_CC.PCR_SetAuthValue,
  spec: 'Part 3 §22.7',
  handles: { pcrHandle: authHandle(TPMI_DH_PCR, 'USER') },
  params: { auth: TPM2B_DIGEST },
  responseHandles: {},
  response: {},
});

/** Resets a resettable PCR to its default value. */
export const PCR_Reset = command({
  name: 'PCR_Reset',
  code: TPM_CC.PCR_Reset,
  spec: 'Part 3 §22.8',
  handles: { pcrHandle: authHandle(TPMI_DH_PCR, 'USER') },
  params: {},
  responseHandles: {},
  response: {},
});
