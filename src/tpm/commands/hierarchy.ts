/**
 * Part 3 §24 "Hierarchy Commands".
 */
import { authHandle, command } from '../command.js';
import { TPM_CC } from '../constants.js';
import {
  TPM2B_AUTH,
  TPM2B_CREATION_DATA,
  TPM2B_DATA,
  TPM2B_DIGEST,
  TPM2B_NAME,
  TPM2B_PUBLIC,
  TPM2B_SENSITIVE_CREATE,
  TPMI_ALG_HASH,
  TPMI_RH_CLEAR,
  TPMI_RH_ENABLES,
  TPMI_RH_HIERARCHY,
  TPMI_RH_HIERARCHY_AUTH,
  TPMI_RH_HIERARCHY_POLICY,
  TPMI_RH_PLATFORM,
  TPMI_YES_NO,
  TPML_PCR_SELECTION,
  TPMT_TK_CREATION,
  TPM_HANDLE,
} from '../types/index.js';
import { orNull } from '../wire/codec.js';

/** Creates a primary object from a hierarchy's seed and loads it. */
export const CreatePrimary = command({
  name: 'CreatePrimary',
  code: TPM_CC.CreatePrimary,
  spec: 'Part 3 §24.1',
  handles: { primaryHandle: authHandle(orNull(TPMI_RH_HIERARCHY), 'USER') },
  params: {
    inSensitive: TPM2B_SENSITIVE_CREATE,
    inPublic: TPM2B_PUBLIC,
    outsideInfo: TPM2B_DATA,
    creationPCR: TPML_PCR_SELECTION,
  },
  responseHandles: { objectHandle: TPM_HANDLE },
  response: {
    outPublic: TPM2B_PUBLIC,
    creationData: TPM2B_CREATION_DATA,
    creationHash: TPM2B_DIGEST,
    creationTicket: TPMT_TK_CREATION,
    name: TPM2B_NAME,
  },
});

/** Enables or disables a hierarchy or platform NV. */
export const HierarchyControl = command({
  name: 'HierarchyControl',
  code: TPM_CC.HierarchyControl,
  spec: 'Part 3 §24.2',
  handles: { authHandle: authHandle(TPMI_RH_HIERARCHY, 'USER') },
  params: { enable: TPMI_RH_ENABLES, state: TPMI_YES_NO },
  responseHandles: {},
  response: {},
});

/** Sets the authorization policy of a hierarchy (or ACT). */
export const SetPrimaryPolicy = command({
  name: 'SetPrimaryPolicy',
  code: TPM_CC.SetPrimaryPolicy,
  spec: 'Part 3 §24.3',
  handles: { authHandle: authHandle(TPMI_RH_HIERARCHY_POLICY, 'USER') },
  params: { authPolicy: TPM2B_DIGEST, hashAlg: orNull(TPMI_ALG_HASH) },
  responseHandles: {},
  response: {},
});

/** Replaces the platform primary seed and flushes its objects. */
export const ChangePPS = command({
  name: 'ChangePPS',
  code: TPM_CC.ChangePPS,
  spec: 'Part 3 §24.4',
  handles: { authHandle: authHandle(TPMI_RH_PLATFORM, 'USER') },
  params: {},
  responseHandles: {},
  response: {},
});

/** Replaces the endorsement primary seed and flushes its objects. */
export const ChangeEPS = command({
  name: 'ChangeEPS',
  code: TPM_CC.ChangeEPS,
  spec: 'Part 3 §24.5',
  handles: { authHandle: authHandle(TPMI_RH_PLATFORM, 'USER') },
  params: {},
  responseHandles: {},
  response: {},
});

/** Clears the storage and endorsement hierarchies' data and authorizations. */
export const Clear = command({
  name: 'Clear',
  code: TPM_CC.Clear,
  spec: 'Part 3 §24.6',
  handles: { authHandle: authHandle(TPMI_RH_CLEAR, 'USER') },
  params: {},
  responseHandles: {},
  response: {},
});

/** Disables or re-enables Clear by the lockout authority. */
export const ClearControl = command({
  name: 'ClearControl',
  code: TPM_CC.ClearControl,
  spec: 'Part 3 §24.7',
  handles: { auth: authHandle(TPMI_RH_CLEAR, 'USER') },
  params: { disable: TPMI_YES_NO },
  responseHandles: {},
  response: {},
});

/** Changes the authorization value of a hierarchy or of lockout. */
export const HierarchyChangeAuth = command({
  name: 'HierarchyChangeAuth',
  code: TPM_CC.HierarchyChangeAuth,
  spec: 'Part 3 §24.8',
  handles: { authHandle: authHandle(TPMI_RH_HIERARCHY_AUTH, 'USER') },
  params: { newAuth: TPM2B_AUTH },
  responseHandles: {},
  response: {},
});
