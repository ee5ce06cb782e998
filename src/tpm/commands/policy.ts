/**
 * Part 3 §23 "Enhanced Authorization (EA) Commands".
 */
import { authHandle, command, handle } from '../command.js';
import { TPM_CC } from '../constants.js';
import {
  INT32,
  TPM2B_DIGEST,
  TPM2B_NAME,
  TPM2B_NONCE,
  TPM2B_OPERAND,
  TPM2B_TIMEOUT,
  TPMA_LOCALITY,
  TPMI_DH_ENTITY,
  TPMI_DH_OBJECT,
  TPMI_RH_NV_AUTH,
  TPMI_RH_NV_INDEX,
  TPMI_SH_POLICY,
  TPMI_YES_NO,
  TPML_DIGEST,
  TPML_PCR_SELECTION,
  TPMT_SIGNATURE,
  TPMT_TK_AUTH,
  TPMT_TK_VERIFIED,
  TPM_CC as TPM_CC_CODEC,
  TPM_EO,
} from '../types/index.js';
import { u16 } from '../wire/codec.js';

/** Extends a policy with an authorization signed by the holder of a key. */
export const PolicySigned = command({
  name: 'PolicySigned',
  code: TPM_CC.PolicySigned,
  spec: 'Part 3 §23.3',
  handles: { authObject: handle(TPMI_DH_OBJECT), policySession: handle(TPMI_SH_POLICY) },
  params: {
    nonceTPM: TPM2B_NONCE,
    cpHashA: TPM2B_DIGEST,
    policyRef: TPM2B_NONCE,
    expiration: INT32,
    auth: TPMT_SIGNATURE,
  },
  responseHandles: {},
  response: { timeout: TPM2B_TIMEOUT, policyTicket: TPMT_TK_AUTH },
});

/** Extends a policy with proof of knowledge of an entity's authorization. */
export const PolicySecret = command({
  name: 'PolicySecret',
  code: TPM_CC.PolicySecret,
  spec: 'Part 3 §23.4',
  handles: { authHandle: authHandle(TPMI_DH_ENTITY, 'USER'), policySession: handle(TPMI_SH_POLICY) },
  params: { nonceTPM: TPM2B_NONCE, cpHashA: TPM2B_DIGEST, policyRef: TPM2B_NONCE, expiration: INT32 },
  responseHandles: {},
  response: { timeout: TPM2B_TIMEOUT, policyTicket: TPMT_TK_AUTH },
});

/** Extends a policy with a ticket from an earlier PolicySigned or PolicySecret. */
export const PolicyTicket = command({
  name: 'PolicyTicket',
  code: TPM_CC.PolicyTicket,
  spec: 'Part 3 §23.5',
  handles: { policySession: handle(TPMI_SH_POLICY) },
  params: {
    timeout: TPM2B_TIMEOUT,
    cpHashA: TPM2B_DIGEST,
    policyRef: TPM2B_NONCE,
    authName: TPM2B_NAME,
    ticket: TPMT_TK_AUTH,
  },
  responseHandles: {},
  response: {},
});

/** Replaces the policy digest by a digest of a list, one of which it matches. */
export const PolicyOR = command({
  name: 'PolicyOR',
  code: TPM_CC.PolicyOR,
  spec: 'Part 3 §23.6',
  handles: { policySession: handle(TPMI_SH_POLICY) },
  params: { pHashList: TPML_DIGEST },
  responseHandles: {},
  response: {},
});

/** Binds a policy to the values of the selected PCRs. */
export const PolicyPCR = command({
  name: 'PolicyPCR',
  code: TPM_CC.PolicyPCR,
  spec: 'Part 3 §23.7',
  handles: { policySession: handle(TPMI_SH_POLICY) },
  params: { pcrDigest: TPM2B_DIGEST, pcrs: TPML_PCR_SELECTION },
  responseHandles: {},
  response: {},
});

/** Limits a policy to the given localities. */
export const PolicyLocality = command({
  name: 'PolicyLocality',
  code: TPM_CC.PolicyLocality,
  spec: 'Part 3 §23.8',
  handles: { policySession: handle(TPMI_SH_POLICY) },
  params: { locality: TPMA_LOCALITY },
  responseHandles: {},
  response: {},
});

/** Binds a policy to a comparison with the contents of an NV Index. */
export const PolicyNV = command({
  name: 'PolicyNV',
  code: TPM_CC.PolicyNV,
  spec: 'Part 3 §23.9',
  handles: {
    authHandle: authHandle(TPMI_RH_NV_AUTH, 'USER'),
    nvIndex: handle(TPMI_RH_NV_INDEX),
    policySession: handle(TPMI_SH_POLICY),
  },
  params: { operandB: TPM2B_OPERAND, offset: u16, operation: TPM_EO },
  responseHandles: {},
  response: {},
});

/** Binds a policy to a comparison with the TPM's clock and counters. */
export const PolicyCounterTimer = command({
  name: 'PolicyCounterTimer',
  code: TPM_CC.PolicyCounterTimer,
  spec: 'Part 3 §23.10',
  handles: { policySession: handle(TPMI_SH_POLICY) },
  params: { operandB: TPM2B_OPERAND, offset: u16, operation: TPM_EO },
  responseHandles: {},
  response: {},
});

/** Limits a policy to one command. */
export const PolicyCommandCode = command({
  name: 'PolicyCommandCode',
  code: TPM_CC.PolicyCommandCode,
  spec: 'Part 3 §23.11',
  handles: { policySession: handle(TPMI_SH_POLICY) },
  params: { code: TPM_CC_CODEC },
  responseHandles: {},
  response: {},
});

/** Requires physical presence when the policy is used. */
export const PolicyPhysicalPresence = command({
  name: 'PolicyPhysicalPresence',
  code: TPM_CC.PolicyPhysicalPresence,
  spec: 'Part 3 §23.12',
  handles: { policySession: handle(TPMI_SH_POLICY) },
  params: {},
  responseHandles: {},
  response: {},
});

/** Limits a policy to one set of command parameters. */
export const PolicyCpHash = command({
  name: 'PolicyCpHash',
  code: TPM_CC.PolicyCpHash,
  spec: 'Part 3 §23.13',
  handles: { policySession: handle(TPMI_SH_POLICY) },
  params: { cpHashA: TPM2B_DIGEST },
  responseHandles: {},
  response: {},
});

/** Limits a policy to one set of handles (by a digest of their Names). */
export const PolicyNameHash = command({
  name: 'PolicyNameHash',
  code: TPM_CC.PolicyNameHash,
  spec: 'Part 3 §23.14',
  handles: { policySession: handle(TPMI_SH_POLICY) },
  params: { nameHash: TPM2B_DIGEST },
  responseHandles: {},
  response: {},
});

/** Limits duplication to one new parent (and optionally one object). */
export const PolicyDuplicationSelect = command({
  name: 'PolicyDuplicationSelect',
  code: TPM_CC.PolicyDuplicationSelect,
  spec: 'Part 3 §23.15',
  handles: { policySession: handle(TPMI_SH_POLICY) },
  params: { objectName: TPM2B_NAME, newParentName: TPM2B_NAME, includeObject: TPMI_YES_NO },
  responseHandles: {},
  response: {},
});

/** Replaces the policy digest by a signed-off policy, checked with a verification ticket. */
export const PolicyAuthorize = command({
  name: 'PolicyAuthorize',
  code: TPM_CC.PolicyAuthorize,
  spec: 'Part 3 §23.16',
  handles: { policySession: handle(TPMI_SH_POLICY) },
  params: {
    approvedPolicy: TPM2B_DIGEST,
    policyRef: TPM2B_NONCE,
    keySign: TPM2B_NAME,
    checkTicket: TPMT_TK_VERIFIED,
  },
  responseHandles: {},
  response: {},
});

/** Requires the authorization value in an HMAC of the policy session. */
export const PolicyAuthValue = command({
  name: 'PolicyAuthValue',
  code: TPM_CC.PolicyAuthValue,
  spec: 'Part 3 §23.17',
  handles: { policySession: handle(TPMI_SH_POLICY) },
  params: {},
  responseHandles: {},
  response: {},
});

/** Requires the authorization value in clear in the policy session's HMAC field. */
export const PolicyPassword = command({
  name: 'PolicyPassword',
  code: TPM_CC.PolicyPassword,
  spec: 'Part 3 §23.18',
  handles: { policySession: handle(TPMI_SH_POLICY) },
  params: {},
  responseHandles: {},
  response: {},
});

/** Returns the current policy digest of a session. */
export const PolicyGetDigest = command({
  name: 'PolicyGetDigest',
  code: TPM_CC.PolicyGetDigest,
  spec: 'Part 3 §23.19',
  handles: { policySession: handle(TPMI_SH_POLICY) },
  params: {},
  responseHandles: {},
  response: { policyDigest: TPM2B_DIGEST },
});

/** Binds a policy to whether an NV Index has been written. */
export const PolicyNvWritten = command({
  name: 'PolicyNvWritten',
  code: TPM_CC.PolicyNvWritten,
  spec: 'Part 3 §23.20',
  handles: { policySession: handle(TPMI_SH_POLICY) },
  params: { writtenSet: TPMI_YES_NO },
  responseHandles: {},
  response: {},
});

/** Limits object creation to one public template (by its digest). */
export const PolicyTemplate = command({
  name: 'PolicyTemplate',
  code: TPM_CC.PolicyTemplate,
  spec: 'Part 3 §23.21',
  handles: { policySession: handle(TPMI_SH_POLICY) },
  params: { templateHash: TPM2B_DIGEST },
  responseHandles: {},
  response: {},
});

/** Replaces the policy digest by a policy read from an NV Index. */
export const PolicyAuthorizeNV = command({
  name: 'PolicyAuthorizeNV',
  code: TPM_CC.PolicyAuthorizeNV,
  spec: 'Part 3 §23.22',
  handles: {
    authHandle: authHandle(TPMI_RH_NV_AUTH, 'USER'),
    nvIndex: handle(TPMI_RH_NV_INDEX),
    policySession: handle(TPMI_SH_POLICY),
  },
  params: {},
  responseHandles: {},
  response: {},
});
