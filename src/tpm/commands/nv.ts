/**
 * Part 3 §31 "Non-volatile Storage".
 */
import { authHandle, command, handle } from '../command.js';
import { TPM_CC } from '../constants.js';
import {
  TPM2B_ATTEST,
  TPM2B_AUTH,
  TPM2B_DATA,
  TPM2B_MAX_NV_BUFFER,
  TPM2B_NAME,
  TPM2B_NV_PUBLIC,
  TPMI_DH_OBJECT,
  TPMI_RH_NV_AUTH,
  TPMI_RH_NV_INDEX,
  TPMI_RH_PLATFORM,
  TPMI_RH_PROVISION,
  TPMT_SIGNATURE,
  TPMT_SIG_SCHEME,
} from '../types/index.js';
import { orNull, u16, u64 } from '../wire/codec.js';

/** Defines an NV Index. */
export const NV_DefineSpace = command({
  name: 'NV_DefineSpace',
  code: TPM_CC.NV_DefineSpace,
  spec: 'Part 3 §31.3',
  handles: { authHandle: authHandle(TPMI_RH_PROVISION, 'USER') },
  params: { auth: TPM2B_AUTH, publicInfo: TPM2B_NV_PUBLIC },
  responseHandles: {},
  response: {},
});

/** Removes an NV Index with owner or platform authorization. */
export const NV_UndefineSpace = command({
  name: 'NV_UndefineSpace',
  code: TPM_CC.NV_UndefineSpace,
  spec: 'Part 3 §31.4',
  handles: { authHandle: authHandle(TPMI_RH_PROVISION, 'USER'), nvIndex: handle(TPMI_RH_NV_INDEX) },
  params: {},
  responseHandles: {},
  response: {},
});

/** Removes a platform NV Index that needs its own policy to be deleted. */
export const NV_UndefineSpaceSpecial = command({
  name: 'NV_UndefineSpaceSpecial',
  code: TPM_CC.NV_UndefineSpaceSpecial,
  spec: 'Part 3 §31.5',
  handles: {
    nvIndex: authHandle(TPMI_RH_NV_INDEX, 'ADMIN'),
    platform: authHandle(TPMI_RH_PLATFORM, 'USER'),
  },
  params: {},
  responseHandles: {},
  response: {},
});

/** Returns the public area and Name of an NV Index. */
export const NV_ReadPublic = command({
  name: 'NV_ReadPublic',
  code: TPM_CC.NV_ReadPublic,
  spec: 'Part 3 §31.6',
  handles: { nvIndex: handle(TPMI_RH_NV_INDEX) },
  params: {},
  responseHandles: {},
  response: { nvPublic: TPM2B_NV_PUBLIC, nvName: TPM2B_NAME },
});

/** Writes data to an ordinary NV Index at an offset. */
export const NV_Write = command({
  name: 'NV_Write',
  code: TPM_CC.NV_Write,
  spec: 'Part 3 §31.7',
  handles: { authHandle: authHandle(TPMI_RH_NV_AUTH, 'USER'), nvIndex: handle(TPMI_RH_NV_INDEX) },
  params: { data: TPM2B_MAX_NV_BUFFER, offset: u16 },
  responseHandles: {},
  response: {},
});

/** Increments an NV counter. */
export const NV_Increment = command({
  name: 'NV_Increment',
  code: TPM_CC.NV_Increment,
  spec: 'Part 3 §31.8',
  handles: { authHandle: authHandle(TPMI_RH_NV_AUTH, 'USER'), nvIndex: handle(TPMI_RH_NV_INDEX) },
  params: {},
  responseHandles: {},
  response: {},
});

/** Extends data into an NV extend Index. */
export const NV_Extend = command({
  name: 'NV_Extend',
  code: TPM_CC.NV_Extend,
  spec: 'Part 3 §31.9',
  handles: { authHandle: authHandle(TPMI_RH_NV_AUTH, 'USER'), nvIndex: handle(TPMI_RH_NV_INDEX) },
  params: { data: TPM2B_MAX_NV_BUFFER },
  responseHandles: {},
  response: {},
});

/** ORs bits into an NV bit-field Index. */
export const NV_SetBits = command({
  name: 'NV_SetBits',
  code: TPM_CC.NV_SetBits,
  spec: 'Part 3 §31.10',
  handles: { authHandle: authHandle(TPMI_RH_NV_AUTH, 'USER'), nvIndex: handle(TPMI_RH_NV_INDEX) },
  params: { bits: u64 },
  responseHandles: {},
  response: {},
});

/** Locks an NV Index against writes (until the next Startup, or for ever). */
export const NV_WriteLock = command({
  name: 'NV_WriteLock',
  code: TPM_CC.NV_WriteLock,
  spec: 'Part 3 §31.11',
  handles: { authHandle: authHandle(TPMI_RH_NV_AUTH, 'USER'), nvIndex: handle(TPMI_RH_NV_INDEX) },
  params: {},
  responseHandles: {},
  response: {},
});

/** Write-locks every NV Index that has TPMA_NV_GLOBALLOCK. */
export const NV_GlobalWriteLock = command({
  name: 'NV_GlobalWriteLock',
  code: TPM_CC.NV_GlobalWriteLock,
  spec: 'Part 3 §31.12',
  handles: { authHandle: authHandle(TPMI_RH_PROVISION, 'USER') },
  params: {},
  responseHandles: {},
  response: {},
});

/** Reads data from an NV Index at an offset. */
export const NV_Read = command({
  name: 'NV_Read',
  code: TPM_CC.NV_Read,
  spec: 'Part 3 §31.13',
  handles: { authHandle: authHandle(TPMI_RH_NV_AUTH, 'USER'), nvIndex: handle(TPMI_RH_NV_INDEX) },
  params: { size: u16, offset: u16 },
  responseHandles: {},
  response: { data: TPM2B_MAX_NV_BUFFER },
});

/** Locks an NV Index against reads until the next Startup. */
export const NV_ReadLock = command({
  name: 'NV_ReadLock',
  code: TPM_CC.NV_ReadLock,
  spec: 'Part 3 §31.14',
  handles: { authHandle: authHandle(TPMI_RH_NV_AUTH, 'USER'), nvIndex: handle(TPMI_RH_NV_INDEX) },
  params: {},
  responseHandles: {},
  response: {},
});

/** Changes the authorization value of an NV Index (needs a policy session). */
export const NV_ChangeAuth = command({
  name: 'NV_ChangeAuth',
  code: TPM_CC.NV_ChangeAuth,
  spec: 'Part 3 §31.15',
  handles: { nvIndex: authHandle(TPMI_RH_NV_INDEX, 'ADMIN') },
  params: { newAuth: TPM2B_AUTH },
  responseHandles: {},
  response: {},
});

/** Signs an attestation of the contents of an NV Index. */
export const NV_Certify = command({
  name: 'NV_Certify',
  code: TPM_CC.NV_Certify,
  spec: 'Part 3 §31.16',
  handles: {
    signHandle: authHandle(orNull(TPMI_DH_OBJECT), 'USER'),
    authHandle: authHandle(TPMI_RH_NV_AUTH, 'USER'),
    nvIndex: handle(TPMI_RH_NV_INDEX),
  },
  params: {
    qualifyingData: TPM2B_DATA,
    inScheme: TPMT_SIG_SCHEME, // TPMT_SIG_SCHEME+: the structure admits TPM_ALG_NULL here
    size: u16,
    offset: u16,
  },
  responseHandles: {},
  response: { certifyInfo: TPM2B_ATTEST, signature: TPMT_SIGNATURE },
});
