/** Clock/time and attestation structures (Part 2 §10.11, §10.12). */
import { TPM_ST as ST } from '../constants.js';
import { type Infer, sizedOf, struct, union } from '../wire/codec.js';
import { TPM2B_DATA, TPM2B_DIGEST, TPM2B_MAX_NV_BUFFER, TPM2B_NAME } from './base.js';
import { TPML_PCR_SELECTION } from './capabilities.js';
import { TPMI_ST_ATTEST, TPMI_YES_NO } from './interfaces.js';
import { TPM_ALG_ID, TPM_GENERATED, UINT16, UINT32, UINT64 } from './primitives.js';

// Part 2 §10.11: clock and time.
/** §10.11.1: `safe` is 1 when Clock has not gone backwards since last reported. */
export const TPMS_CLOCK_INFO = struct('TPMS_CLOCK_INFO', {
  clock: UINT64,
  resetCount: UINT32,
  restartCount: UINT32,
  safe: TPMI_YES_NO,
});
export type TPMS_CLOCK_INFO = Infer<typeof TPMS_CLOCK_INFO>;
/** §10.11.6 */
export const TPMS_TIME_INFO = struct('TPMS_TIME_INFO', {
  time: UINT64,
  clockInfo: TPMS_CLOCK_INFO,
});
export type TPMS_TIME_INFO = Infer<typeof TPMS_TIME_INFO>;

// Part 2 §10.12: attestation.
/** §10.12.2 */
export const TPMS_TIME_ATTEST_INFO = struct('TPMS_TIME_ATTEST_INFO', {
  time: TPMS_TIME_INFO,
  firmwareVersion: UINT64,
});
export type TPMS_TIME_ATTEST_INFO = Infer<typeof TPMS_TIME_ATTEST_INFO>;
/** §10.12.3 */
export const TPMS_CERTIFY_INFO = struct('TPMS_CERTIFY_INFO', {
  name: TPM2B_NAME,
  qualifiedName: TPM2B_NAME,
});
export type TPMS_CERTIFY_INFO = Infer<typeof TPMS_CERTIFY_INFO>;
/** §10.12.4: pcrDigest is the hash of the selected PCRs' values, in selection order. */
export const TPMS_QUOTE_INFO = struct('TPMS_QUOTE_INFO', {
  pcrSelect: TPML_PCR_SELECTION,
  pcrDigest: TPM2B_DIGEST,
});
export type TPMS_QUOTE_INFO = Infer<typeof TPMS_QUOTE_INFO>;
/** §10.12.5 */
export const TPMS_COMMAND_AUDIT_INFO = struct('TPMS_COMMAND_AUDIT_INFO', {
  auditCounter: UINT64,
  digestAlg: TPM_ALG_ID,
  auditDigest: TPM2B_DIGEST,
  commandDigest: TPM2B_DIGEST,
});
export type TPMS_COMMAND_AUDIT_INFO = Infer<typeof TPMS_COMMAND_AUDIT_INFO>;
/** §10.12.6 */
export const TPMS_SESSION_AUDIT_INFO = struct('TPMS_SESSION_AUDIT_INFO', {
  exclusiveSession: TPMI_YES_NO,
  sessionDigest: TPM2B_DIGEST,
});
export type TPMS_SESSION_AUDIT_INFO = Infer<typeof TPMS_SESSION_AUDIT_INFO>;
/** §10.12.7 */
export const TPMS_CREATION_INFO = struct('TPMS_CREATION_INFO', {
  objectName: TPM2B_NAME,
  creationHash: TPM2B_DIGEST,
});
export type TPMS_CREATION_INFO = Infer<typeof TPMS_CREATION_INFO>;
/** §10.12.8 */
export const TPMS_NV_CERTIFY_INFO = struct('TPMS_NV_CERTIFY_INFO', {
  indexName: TPM2B_NAME,
  offset: UINT16,
  nvContents: TPM2B_MAX_NV_BUFFER,
});
export type TPMS_NV_CERTIFY_INFO = Infer<typeof TPMS_NV_CERTIFY_INFO>;
/** §10.12.9 */
export const TPMS_NV_DIGEST_CERTIFY_INFO = struct('TPMS_NV_DIGEST_CERTIFY_INFO', {
  indexName: TPM2B_NAME,
  nvDigest: TPM2B_DIGEST,
});
export type TPMS_NV_DIGEST_CERTIFY_INFO = Infer<typeof TPMS_NV_DIGEST_CERTIFY_INFO>;

/**
 * §10.12.12: what the TPM signs. `magic` must be TPM_GENERATED_VALUE;
 * `attested` (TPMU_ATTEST) is chosen by `type`.
 */
export const TPMS_ATTEST = struct('TPMS_ATTEST', {
  magic: TPM_GENERATED,
  type: TPMI_ST_ATTEST,
  qualifiedSigner: TPM2B_NAME,
  extraData: TPM2B_DATA,
  clockInfo: TPMS_CLOCK_INFO,
  firmwareVersion: UINT64,
  attested: union('TPMU_ATTEST', 'type', {
    [ST.ATTEST_CERTIFY]: TPMS_CERTIFY_INFO,
    [ST.ATTEST_CREATION]: TPMS_CREATION_INFO,
    [ST.ATTEST_QUOTE]: TPMS_QUOTE_INFO,
    [ST.ATTEST_COMMAND_AUDIT]: TPMS_COMMAND_AUDIT_INFO,
    [ST.ATTEST_SESSION_AUDIT]: TPMS_SESSION_AUDIT_INFO,
    [ST.ATTEST_TIME]: TPMS_TIME_ATTEST_INFO,
    [ST.ATTEST_NV]: TPMS_NV_CERTIFY_INFO,
    [ST.ATTEST_NV_DIGEST]: TPMS_NV_DIGEST_CERTIFY_INFO,
  }),
});
export type TPMS_ATTEST = Infer<typeof TPMS_ATTEST>;

/**
 * §10.12.13: the signed bytes, as a sized TPMS_ATTEST. Decoding is strict
 * (no reserved bits, no unknown selectors), so `encode(TPMS_ATTEST, x)` gives
 * back exactly the bytes that were signed.
 */
export const TPM2B_ATTEST = sizedOf('TPM2B_ATTEST', TPMS_ATTEST);
export type TPM2B_ATTEST = Infer<typeof TPM2B_ATTEST>;
