/**
 * Part 3 §28 "Context Management".
 */
import { authHandle, command, handle } from '../command.js';
import { TPM_CC } from '../constants.js';
import { TPMI_DH_CONTEXT, TPMI_DH_OBJECT, TPMI_DH_PERSISTENT, TPMI_RH_PROVISION, TPMS_CONTEXT } from '../types/index.js';

/** Saves the context of a loaded object, sequence or session. */
export const ContextSave = command({
  name: 'ContextSave',
  code: TPM_CC.ContextSave,
  spec: 'Part 3 §28.2',
  handles: { saveHandle: handle(TPMI_DH_CONTEXT) },
  params: {},
  responseHandles: {},
  response: { context: TPMS_CONTEXT },
});

/** Reloads a saved context and returns its new handle. */
export const ContextLoad = command({
  name: 'ContextLoad',
  code: TPM_CC.ContextLoad,
  spec: 'Part 3 §28.3',
  handles: {},
  params: { context: TPMS_CONTEXT },
  responseHandles: { loadedHandle: TPMI_DH_CONTEXT },
  response: {},
});

/** Removes a loaded object, sequence or session (the handle is a parameter). */
export const FlushContext = command({
  name: 'FlushContext',
  code: TPM_CC.FlushContext,
  spec: 'Part 3 §28.4',
  handles: {},
  params: { flushHandle: TPMI_DH_CONTEXT },
  responseHandles: {},
  response: {},
});

/** Makes a transient object persistent, or removes a persistent one. */
export const EvictControl = command({
  name: 'EvictControl',
  code: TPM_CC.EvictControl,
  spec: 'Part 3 §28.5',
  handles: { auth: authHandle(TPMI_RH_PROVISION, 'USER'), objectHandle: handle(TPMI_DH_OBJECT) },
  params: { persistentHandle: TPMI_DH_PERSISTENT },
  responseHandles: {},
  response: {},
});
