/**
 * Structure definitions of Part 2 §10: hashes and digests, the common TPM2Bs,
 * names, PCR selections and tickets.
 */
import { TPM_ALG as A, TPM_ST } from '../constants.js';
import { LIMITS, SIZEOF_TPMT_HA, SIZEOF_TPMU_NAME } from '../limits.js';
import { digestSize } from '../crypto/hash.js';
import { fixed, type Infer, orNull, sized, struct, union, values } from '../wire/codec.js';
import { TPMA_ALGORITHM } from './attributes.js';
import { TPMI_ALG_HASH, TPMI_RH_HIERARCHY } from './interfaces.js';
import { TPM_ALG_ID } from './primitives.js';

/** Part 2 §10.1: a structure with no members (TPMS_ENC_SCHEME_RSAES and friends). */
export const TPMS_EMPTY = struct('TPMS_EMPTY', {});
export type TPMS_EMPTY = Infer<typeof TPMS_EMPTY>;

/** Part 2 §10.2 */
export const TPMS_ALGORITHM_DESCRIPTION = struct('TPMS_ALGORITHM_DESCRIPTION', {
  alg: TPM_ALG_ID,
  attributes: TPMA_ALGORITHM,
});
export type TPMS_ALGORITHM_DESCRIPTION = Infer<typeof TPMS_ALGORITHM_DESCRIPTION>;

// ---------------------------------------------------------------------------
// Part 2 §10.3: hash/digest structures

/** Part 2 §10.3.2: TPMU_HA, one fixed-size digest per hash; NULL has none. */
const TPMU_HA = union('TPMU_HA', 'hashAlg', {
  [A.SHA1]: fixed('TPMU_HA.sha1', digestSize(A.SHA1)),
  [A.SHA256]: fixed('TPMU_HA.sha256', digestSize(A.SHA256)),
  [A.SHA384]: fixed('TPMU_HA.sha384', digestSize(A.SHA384)),
  [A.SHA512]: fixed('TPMU_HA.sha512', digestSize(A.SHA512)),
  [A.SM3_256]: fixed('TPMU_HA.sm3_256', digestSize(A.SM3_256)),
  [A.SHA3_256]: fixed('TPMU_HA.sha3_256', digestSize(A.SHA3_256)),
  [A.SHA3_384]: fixed('TPMU_HA.sha3_384', digestSize(A.SHA3_384)),
  [A.SHA3_512]: fixed('TPMU_HA.sha3_512', digestSize(A.SHA3_512)),
  [A.NULL]: null,
});

/** Part 2 §10.3.2: a digest tagged with its algorithm ("+TPMI_ALG_HASH": NULL gives no digest). */
export const TPMT_HA = struct('TPMT_HA', {
  hashAlg: orNull(TPMI_ALG_HASH),
  digest: TPMU_HA,
});
export type TPMT_HA = Infer<typeof TPMT_HA>;

// Part 2 §10.4: sized buffers.
/** §10.4.2: buffer[sizeof(TPMU_HA)]. */
export const TPM2B_DIGEST = sized('TPM2B_DIGEST', LIMITS.MAX_DIGEST);
export type TPM2B_DIGEST = Infer<typeof TPM2B_DIGEST>;
/** §10.4.3: buffer[sizeof(TPMT_HA)]. */
export const TPM2B_DATA = sized('TPM2B_DATA', SIZEOF_TPMT_HA);
export type TPM2B_DATA = Infer<typeof TPM2B_DATA>;
/** §10.4.4: a TPM2B_DIGEST. */
export const TPM2B_NONCE = sized('TPM2B_NONCE', LIMITS.MAX_DIGEST);
export type TPM2B_NONCE = Infer<typeof TPM2B_NONCE>;
/** §10.4.5: a TPM2B_DIGEST (an authValue is at most the nameAlg's digest size). */
export const TPM2B_AUTH = sized('TPM2B_AUTH', LIMITS.MAX_DIGEST);
export type TPM2B_AUTH = Infer<typeof TPM2B_AUTH>;
/** §10.4.6: a TPM2B_DIGEST. */
export const TPM2B_OPERAND = sized('TPM2B_OPERAND', LIMITS.MAX_DIGEST);
export type TPM2B_OPERAND = Infer<typeof TPM2B_OPERAND>;
/** §10.4.7 */
export const TPM2B_EVENT = sized('TPM2B_EVENT', LIMITS.MAX_EVENT_DATA);
export type TPM2B_EVENT = Infer<typeof TPM2B_EVENT>;
/** §10.4.8 */
export const TPM2B_MAX_BUFFER = sized('TPM2B_MAX_BUFFER', LIMITS.MAX_DIGEST_BUFFER);
export type TPM2B_MAX_BUFFER = Infer<typeof TPM2B_MAX_BUFFER>;
/** §10.4.9 */
export const TPM2B_MAX_NV_BUFFER = sized('TPM2B_MAX_NV_BUFFER', LIMITS.MAX_NV_BUFFER_SIZE);
export type TPM2B_MAX_NV_BUFFER = Infer<typeof TPM2B_MAX_NV_BUFFER>;
/** §10.4.10: buffer[sizeof(UINT64)]. */
export const TPM2B_TIMEOUT = sized('TPM2B_TIMEOUT', LIMITS.MAX_TIMEOUT_BYTES);
export type TPM2B_TIMEOUT = Infer<typeof TPM2B_TIMEOUT>;
/** §10.4.11 */
export const TPM2B_IV = sized('TPM2B_IV', LIMITS.MAX_SYM_BLOCK_SIZE);
export type TPM2B_IV = Infer<typeof TPM2B_IV>;

/**
 * §10.5.3: a Name: empty, a 4-byte handle, or nameAlg ‖ digest. Kept as bytes:
 * which of the three it is follows from its length.
 */
export const TPM2B_NAME = sized('TPM2B_NAME', SIZEOF_TPMU_NAME);
export type TPM2B_NAME = Infer<typeof TPM2B_NAME>;

// Part 2 §10.6: PCR selections. `pcrSelect` carries sizeofSelect as its u8 length prefix.
/** §10.6.1 */
export const TPMS_PCR_SELECT = struct('TPMS_PCR_SELECT', {
  pcrSelect: sized('pcrSelect', LIMITS.PCR_SELECT_MAX, { prefix: 1 }),
});
export type TPMS_PCR_SELECT = Infer<typeof TPMS_PCR_SELECT>;
/** §10.6.2: bit n of pcrSelect[n / 8] selects PCR n of bank `hash`. */
export const TPMS_PCR_SELECTION = struct('TPMS_PCR_SELECTION', {
  hash: TPMI_ALG_HASH,
  pcrSelect: sized('pcrSelect', LIMITS.PCR_SELECT_MAX, { prefix: 1 }),
});
export type TPMS_PCR_SELECTION = Infer<typeof TPMS_PCR_SELECTION>;

// Part 2 §10.7: tickets. A NULL ticket is {tag, TPM_RH_NULL, empty digest}.
/** §10.7.3 */
export const TPMT_TK_CREATION = struct('TPMT_TK_CREATION', {
  tag: values('TPM_ST', 2, [TPM_ST.CREATION]),
  hierarchy: orNull(TPMI_RH_HIERARCHY),
  digest: TPM2B_DIGEST,
});
export type TPMT_TK_CREATION = Infer<typeof TPMT_TK_CREATION>;
/** §10.7.4 */
export const TPMT_TK_VERIFIED = struct('TPMT_TK_VERIFIED', {
  tag: values('TPM_ST', 2, [TPM_ST.VERIFIED]),
  hierarchy: orNull(TPMI_RH_HIERARCHY),
  digest: TPM2B_DIGEST,
});
export type TPMT_TK_VERIFIED = Infer<typeof TPMT_TK_VERIFIED>;
/** §10.7.5: from PolicySigned (AUTH_SIGNED) or PolicySecret (AUTH_SECRET). */
export const TPMT_TK_AUTH = struct('TPMT_TK_AUTH', {
  tag: values('TPM_ST', 2, [TPM_ST.AUTH_SIGNED, TPM_ST.AUTH_SECRET]),
  hierarchy: orNull(TPMI_RH_HIERARCHY),
  digest: TPM2B_DIGEST,
});
export type TPMT_TK_AUTH = Infer<typeof TPMT_TK_AUTH>;
/** §10.7.6 */
export const TPMT_TK_HASHCHECK = struct('TPMT_TK_HASHCHECK', {
  tag: values('TPM_ST', 2, [TPM_ST.HASHCHECK]),
  hierarchy: orNull(TPMI_RH_HIERARCHY),
  digest: TPM2B_DIGEST,
});
export type TPMT_TK_HASHCHECK = Infer<typeof TPMT_TK_HASHCHECK>;
