/**
 * Property and capability structures (Part 2 §10.8–§10.10) and the attached
 * component capabilities (Part 2 §16). Every list's maximum comes from CAP_LIMITS.
 */
import { TPM_CAP as CAP } from '../constants.js';
import { CAP_LIMITS, LIMITS } from '../limits.js';
import { type Infer, list, sized, struct, union } from '../wire/codec.js';
import { TPMA_ACT, TPMA_ALGORITHM, TPMA_CC } from './attributes.js';
import { TPM2B_DIGEST, TPMS_PCR_SELECTION, TPMT_HA } from './base.js';
import { TPM_ALG_ID, TPM_AT, TPM_CAP, TPM_CC, TPM_ECC_CURVE, TPM_HANDLE, TPM_PT, TPM_PT_PCR, UINT32 } from './primitives.js';

// Part 2 §10.8: property structures.
/** §10.8.1 */
export const TPMS_ALG_PROPERTY = struct('TPMS_ALG_PROPERTY', {
  alg: TPM_ALG_ID,
  algProperties: TPMA_ALGORITHM,
});
export type TPMS_ALG_PROPERTY = Infer<typeof TPMS_ALG_PROPERTY>;
/** §10.8.2: `value` is a number or an attribute word, by `property` (decode TPMA_PERMANENT etc. with `fromWord`). */
export const TPMS_TAGGED_PROPERTY = struct('TPMS_TAGGED_PROPERTY', {
  property: TPM_PT,
  value: UINT32,
});
export type TPMS_TAGGED_PROPERTY = Infer<typeof TPMS_TAGGED_PROPERTY>;
/** §10.8.3 */
export const TPMS_TAGGED_PCR_SELECT = struct('TPMS_TAGGED_PCR_SELECT', {
  tag: TPM_PT_PCR,
  pcrSelect: sized('pcrSelect', LIMITS.PCR_SELECT_MAX, { prefix: 1 }),
});
export type TPMS_TAGGED_PCR_SELECT = Infer<typeof TPMS_TAGGED_PCR_SELECT>;
/** §10.8.4 */
export const TPMS_TAGGED_POLICY = struct('TPMS_TAGGED_POLICY', {
  handle: TPM_HANDLE,
  policyHash: TPMT_HA,
});
export type TPMS_TAGGED_POLICY = Infer<typeof TPMS_TAGGED_POLICY>;
/** §10.8.5 */
export const TPMS_ACT_DATA = struct('TPMS_ACT_DATA', {
  handle: TPM_HANDLE,
  timeout: UINT32,
  attributes: TPMA_ACT,
});
export type TPMS_ACT_DATA = Infer<typeof TPMS_ACT_DATA>;

// Part 2 §10.9: lists. A TPML decodes to an array; its count is the array's length.
/** §10.9.1 */
export const TPML_CC = list('TPML_CC', TPM_CC, CAP_LIMITS.MAX_CAP_CC);
export type TPML_CC = Infer<typeof TPML_CC>;
/** §10.9.2 */
export const TPML_CCA = list('TPML_CCA', TPMA_CC, CAP_LIMITS.MAX_CAP_CC);
export type TPML_CCA = Infer<typeof TPML_CCA>;
/** §10.9.3 */
export const TPML_ALG = list('TPML_ALG', TPM_ALG_ID, LIMITS.MAX_ALG_LIST_SIZE);
export type TPML_ALG = Infer<typeof TPML_ALG>;
/** §10.9.4 */
export const TPML_HANDLE = list('TPML_HANDLE', TPM_HANDLE, CAP_LIMITS.MAX_CAP_HANDLES);
export type TPML_HANDLE = Infer<typeof TPML_HANDLE>;
/** §10.9.5: at most 8 (PolicyOR's branches, PCR_Read's values). */
export const TPML_DIGEST = list('TPML_DIGEST', TPM2B_DIGEST, LIMITS.MAX_DIGEST_LIST);
export type TPML_DIGEST = Infer<typeof TPML_DIGEST>;
/** §10.9.6: one digest per bank (PCR_Extend, PCR_Event). */
export const TPML_DIGEST_VALUES = list('TPML_DIGEST_VALUES', TPMT_HA, LIMITS.HASH_COUNT);
export type TPML_DIGEST_VALUES = Infer<typeof TPML_DIGEST_VALUES>;
/** §10.9.7 */
export const TPML_PCR_SELECTION = list('TPML_PCR_SELECTION', TPMS_PCR_SELECTION, LIMITS.HASH_COUNT);
export type TPML_PCR_SELECTION = Infer<typeof TPML_PCR_SELECTION>;
/** §10.9.8 */
export const TPML_ALG_PROPERTY = list('TPML_ALG_PROPERTY', TPMS_ALG_PROPERTY, CAP_LIMITS.MAX_CAP_ALGS);
export type TPML_ALG_PROPERTY = Infer<typeof TPML_ALG_PROPERTY>;
/** §10.9.9 */
export const TPML_TAGGED_TPM_PROPERTY = list('TPML_TAGGED_TPM_PROPERTY', TPMS_TAGGED_PROPERTY, CAP_LIMITS.MAX_TPM_PROPERTIES);
export type TPML_TAGGED_TPM_PROPERTY = Infer<typeof TPML_TAGGED_TPM_PROPERTY>;
/** §10.9.10 */
export const TPML_TAGGED_PCR_PROPERTY = list('TPML_TAGGED_PCR_PROPERTY', TPMS_TAGGED_PCR_SELECT, CAP_LIMITS.MAX_PCR_PROPERTIES);
export type TPML_TAGGED_PCR_PROPERTY = Infer<typeof TPML_TAGGED_PCR_PROPERTY>;
/** §10.9.11 */
export const TPML_ECC_CURVE = list('TPML_ECC_CURVE', TPM_ECC_CURVE, CAP_LIMITS.MAX_ECC_CURVES);
export type TPML_ECC_CURVE = Infer<typeof TPML_ECC_CURVE>;
/** §10.9.12 */
export const TPML_TAGGED_POLICY = list('TPML_TAGGED_POLICY', TPMS_TAGGED_POLICY, CAP_LIMITS.MAX_TAGGED_POLICIES);
export type TPML_TAGGED_POLICY = Infer<typeof TPML_TAGGED_POLICY>;
/** §10.9.13 */
export const TPML_ACT_DATA = list('TPML_ACT_DATA', TPMS_ACT_DATA, CAP_LIMITS.MAX_ACT_DATA);
export type TPML_ACT_DATA = Infer<typeof TPML_ACT_DATA>;
/**
 * TPM_CAP_VENDOR_PROPERTY data. Part 2 leaves it vendor-defined; this is the
 * layout tpm2-tss reads (Intel PTT's list of UINT32s), which is what TPMs answer in practice.
 */
export const TPML_INTEL_PTT_PROPERTY = list('TPML_INTEL_PTT_PROPERTY', UINT32, CAP_LIMITS.MAX_PTT_PROPERTIES);
export type TPML_INTEL_PTT_PROPERTY = Infer<typeof TPML_INTEL_PTT_PROPERTY>;

/** Part 2 §10.10.2: the answer to GetCapability, `data` chosen by `capability`. */
export const TPMS_CAPABILITY_DATA = struct('TPMS_CAPABILITY_DATA', {
  capability: TPM_CAP,
  data: union('TPMU_CAPABILITIES', 'capability', {
    [CAP.ALGS]: TPML_ALG_PROPERTY,
    [CAP.HANDLES]: TPML_HANDLE,
    [CAP.COMMANDS]: TPML_CCA,
    [CAP.PP_COMMANDS]: TPML_CC,
    [CAP.AUDIT_COMMANDS]: TPML_CC,
    [CAP.PCRS]: TPML_PCR_SELECTION,
    [CAP.TPM_PROPERTIES]: TPML_TAGGED_TPM_PROPERTY,
    [CAP.PCR_PROPERTIES]: TPML_TAGGED_PCR_PROPERTY,
    [CAP.ECC_CURVES]: TPML_ECC_CURVE,
    [CAP.AUTH_POLICIES]: TPML_TAGGED_POLICY,
    [CAP.ACT]: TPML_ACT_DATA,
    [CAP.VENDOR_PROPERTY]: TPML_INTEL_PTT_PROPERTY,
  }),
});
export type TPMS_CAPABILITY_DATA = Infer<typeof TPMS_CAPABILITY_DATA>;

// Part 2 §16: attached components (AC_GetCapability).
/** §16.3 */
export const TPMS_AC_OUTPUT = struct('TPMS_AC_OUTPUT', {
  tag: TPM_AT,
  data: UINT32,
});
export type TPMS_AC_OUTPUT = Infer<typeof TPMS_AC_OUTPUT>;
/** §16.4 */
export const TPML_AC_CAPABILITIES = list('TPML_AC_CAPABILITIES', TPMS_AC_OUTPUT, CAP_LIMITS.MAX_AC_CAPABILITIES);
export type TPML_AC_CAPABILITIES = Infer<typeof TPML_AC_CAPABILITIES>;
