/**
 * Part 3 §18 "Attestation Commands".
 */
import { authHandle, command, handle } from '../command.js';
import { TPM_CC } from '../constants.js';
import {
  TPM2B_ATTEST,
  TPM2B_DATA,
  TPM2B_DIGEST,
  TPMI_DH_OBJECT,
  TPMI_RH_ENDORSEMENT,
  TPMI_SH_HMAC,
  TPML_PCR_SELECTION,
  TPMT_SIGNATURE,
  TPMT_SIG_SCHEME,
  TPMT_TK_CREATION,
} from '../types/index.js';
import { orNull } from '../wire/codec.js';

/** Signs an attestation that an object is loaded in the TPM. */
export const Certify = command({
  name: 'Certify',
  code: TPM_CC.Certify,
  spec: 'Part 3 §18.2',
  handles: {
    objectHandle: authHandle(TPMI_DH_OBJECT, 'ADMIN'),
    signHandle: authHandle(orNull(TPMI_DH_OBJECT), 'USER'),
  },
  params: {
    qualifyingData: TPM2B_DATA,
    inScheme: TPMT_SIG_SCHEME, // TPMT_SIG_SCHEME+: the structure admits TPM_ALG_NULL here
  },
  responseHandles: {},
  response: { certifyInfo: TPM2B_ATTEST, signature: TPMT_SIGNATURE },
});

/** Signs an attestation of the creation data of an object. */
export const CertifyCreation = command({
  name: 'CertifyCreation',
  code: TPM_CC.CertifyCreation,
  spec: 'Part 3 §18.3',
  handles: { signHandle: authHandle(orNull(TPMI_DH_OBJECT), 'USER'), objectHandle: handle(TPMI_DH_OBJECT) },
  params: {
    qualifyingData: TPM2B_DATA,
    creationHash: TPM2B_DIGEST,
    inScheme: TPMT_SIG_SCHEME, // TPMT_SIG_SCHEME+: the structure admits TPM_ALG_NULL here
    creationTicket: TPMT_TK_CREATION,
  },
  responseHandles: {},
  response: { certifyInfo: TPM2B_ATTEST, signature: TPMT_SIGNATURE },
});

/** Signs a digest of the selected PCRs. */
export const Quote = command({
  name: 'Quote',
  code: TPM_CC.Quote,
  spec: 'Part 3 §18.4',
  handles: { signHandle: authHandle(orNull(TPMI_DH_OBJECT), 'USER') },
  params: {
    qualifyingData: TPM2B_DATA,
    inScheme: TPMT_SIG_SCHEME, // TPMT_SIG_SCHEME+: the structure admits TPM_ALG_NULL here
    PCRselect: TPML_PCR_SELECTION,
  },
  responseHandles: {},
  response: { quoted: TPM2B_ATTEST, signature: TPMT_SIGNATURE },
});

/** Signs the audit digest of an audit session. */
export const GetSessionAuditDigest = command({
  name: 'GetSessionAuditDigest',
  code: TPM_CC.GetSessionAuditDigest,
  spec: 'Part 3 §18.5',
  handles: {
    privacyAdminHandle: authHandle(TPMI_RH_ENDORSEMENT, 'USER'),
    signHandle: authHandle(orNull(TPMI_DH_OBJECT), 'USER'),
    sessionHandle: handle(TPMI_SH_HMAC),
  },
  params: {
    qualifyingData: TPM2B_DATA,
    inScheme: TPMT_SIG_SCHEME, // TPMT_SIG_SCHEME+: the structure admits TPM_ALG_NULL here
  },
  responseHandles: {},
  response: { auditInfo: TPM2B_ATTEST, signature: TPMT_SIGNATURE },
});

/** Signs the command audit digest and the list of audited commands. */
export const GetCommandAuditDigest = command({
  name: 'GetCommandAuditDigest',
  code: TPM_CC.GetCommandAuditDigest,
  spec: 'Part 3 §18.6',
  handles: {
    privacyHandle: authHandle(TPMI_RH_ENDORSEMENT, 'USER'),
    signHandle: authHandle(orNull(TPMI_DH_OBJECT), 'USER'),
  },
  params: {
    qualifyingData: TPM2B_DATA,
    inScheme: TPMT_SIG_SCHEME, // TPMT_SIG_SCHEME+: the structure admits TPM_ALG_NULL here
  },
  responseHandles: {},
  response: { auditInfo: TPM2B_ATTEST, signature: TPMT_SIGNATURE },
});

/** Signs the current time and clock values. */
export const GetTime = command({
  name: 'GetTime',
  code: TPM_CC.GetTime,
  spec: 'Part 3 §18.7',
  handles: {
    privacyAdminHandle: authHandle(TPMI_RH_ENDORSEMENT, 'USER'),
    signHandle: authHandle(orNull(TPMI_DH_OBJECT), 'USER'),
  },
  params: {
    qualifyingData: TPM2B_DATA,
    inScheme: TPMT_SIG_SCHEME, // TPMT_SIG_SCHEME+: the structure admits TPM_ALG_NULL here
  },
  responseHandles: {},
  response: { timeInfo: TPM2B_ATTEST, signature: TPMT_SIGNATURE },
});
