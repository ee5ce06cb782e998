/**
 * Part 3 §25 "Dictionary Attack Functions".
 */
import { authHandle, command } from '../command.js';
import { TPM_CC } from '../constants.js';
import { TPMI_RH_LOCKOUT } from '../types/index.js';
import { u32 } from '../wire/codec.js';

/** Resets the failed-authorization counter and leaves lockout. */
export const DictionaryAttackLockReset = command({
  name: 'DictionaryAttackLockReset',
  code: TPM_CC.DictionaryAttackLockReset,
  spec: 'Part 3 §25.2',
  handles: { lockHandle: authHandle(TPMI_RH_LOCKOUT, 'USER') },
  params: {},
  responseHandles: {},
  response: {},
});

/** Sets the dictionary-attack lockout parameters. */
export const DictionaryAttackParameters = command({
  name: 'DictionaryAttackParameters',
  code: TPM_CC.DictionaryAttackParameters,
  spec: 'Part 3 §25.3',
  handles: { lockHandle: authHandle(TPMI_RH_LOCKOUT, 'USER') },
  params: { newMaxTries: u32, newRecoveryTime: u32, lockoutRecovery: u32 },
  responseHandles: {},
  response: {},
});
