/**
 * Part 3 §30 "Capability Commands".
 */
import { command } from '../command.js';
import { TPM_CC } from '../constants.js';
import { TPMI_YES_NO, TPMS_CAPABILITY_DATA, TPMT_PUBLIC_PARMS, TPM_CAP } from '../types/index.js';
import { u32 } from '../wire/codec.js';

/** Returns one group of TPM properties, starting at a given property. */
export const GetCapability = command({
  name: 'GetCapability',
  code: TPM_CC.GetCapability,
  spec: 'Part 3 §30.2',
  handles: {},
  params: { capability: TPM_CAP, property: u32, propertyCount: u32 },
  responseHandles: {},
  response: { moreData: TPMI_YES_NO, capabilityData: TPMS_CAPABILITY_DATA },
});

/** Checks whether the TPM supports a set of algorithm parameters. */
export const TestParms = command({
  name: 'TestParms',
  code: TPM_CC.TestParms,
  spec: 'Part 3 §30.3',
  handles: {},
  params: { parameters: TPMT_PUBLIC_PARMS },
  responseHandles: {},
  response: {},
});
