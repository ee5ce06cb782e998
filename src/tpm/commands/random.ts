/**
 * Part 3 §16 "Random Number Generator".
 */
import { command } from '../command.js';
import { TPM_CC } from '../constants.js';
import { TPM2B_DIGEST, TPM2B_SENSITIVE_DATA } from '../types/index.js';
import { u16 } from '../wire/codec.js';

/** Returns up to a digest's worth of bytes from the TPM's RNG. */
export const GetRandom = command({
  name: 'GetRandom',
  code: TPM_CC.GetRandom,
  spec: 'Part 3 §16.1',
  handles: {},
  params: { bytesRequested: u16 },
  responseHandles: {},
  response: { randomBytes: TPM2B_DIGEST },
});

/** Adds caller data to the state of the TPM's RNG. */
export const StirRandom = command({
  name: 'StirRandom',
  code: TPM_CC.StirRandom,
  spec: 'Part 3 §16.2',
  handles: {},
  params: { inData: TPM2B_SENSITIVE_DATA },
  responseHandles: {},
  response: {},
});
