/**
 * The largest sizes and counts trustroot accepts, in one place.
 *
 * Part 2 sizes many buffers by implementation constants (Part 2 §"Implementation
 * parameters", the reference's TpmProfile). We take the values of the largest
 * implementation we support (RSA-4096, P-521, SHA-512, 32 PCRs, a 1024-byte
 * capability buffer) so that every TPM we talk to fits, and so that no decoder
 * ever trusts a raw 32-bit size or count from the wire.
 */
export const LIMITS = {
  /** Largest command or response frame (libtpms and most TPMs use 4096). */
  MAX_COMMAND_SIZE: 8192,
  MAX_RESPONSE_SIZE: 8192,
  /** Authorizations per command (Part 1: at most three sessions). */
  MAX_SESSIONS: 3,
  /** Largest digest: SHA-512 / SHA3-512. */
  MAX_DIGEST: 64,
  /** Hash algorithms a TPM can implement (sizes TPML_PCR_SELECTION, TPML_DIGEST_VALUES). */
  HASH_COUNT: 8,
  /** PCR selection bitmap bytes: 32 PCRs (PC Client TPMs have 24, i.e. 3 bytes). */
  PCR_SELECT_MAX: 4,
  /** RSA-4096. */
  MAX_RSA_KEY_BYTES: 512,
  /** NIST P-521. */
  MAX_ECC_KEY_BYTES: 66,
  MAX_SYM_KEY_BYTES: 32,
  MAX_SYM_BLOCK_SIZE: 16,
  /** TPM2B_SENSITIVE_DATA, TPM2B_DATA of seal/derive (Part 2: 128 in the reference profile). */
  MAX_SYM_DATA: 128,
  /** TPM2B_MAX_BUFFER (Hash, SequenceUpdate, EncryptDecrypt). */
  MAX_DIGEST_BUFFER: 1024,
  /** TPM2B_MAX_NV_BUFFER and NV index data size. */
  MAX_NV_BUFFER_SIZE: 2048,
  MAX_NV_INDEX_SIZE: 2048,
  /** TPM2B_CONTEXT_DATA (libtpms saves contexts of about 2.7 KiB). */
  MAX_CONTEXT_SIZE: 5120,
  /** TPM2B_LABEL (Part 2 §10.4.13, LABEL_MAX_BUFFER). */
  LABEL_MAX_BUFFER: 32,
  /** MAX_CAP_BUFFER: the capability area of a GetCapability response. */
  MAX_CAP_BUFFER: 1024,
  /** TPML_DIGEST: PolicyOR takes at most 8 digests (Part 2 §10.9.3). */
  MAX_DIGEST_LIST: 8,
  /** TPML_ALG (Part 2: MAX_ALG_LIST_SIZE). */
  MAX_ALG_LIST_SIZE: 64,
} as const;

/** MAX_CAP_DATA = MAX_CAP_BUFFER − sizeof(TPM_CAP) − sizeof(UINT32) (Part 2 §"Capability data"). */
export const MAX_CAP_DATA = LIMITS.MAX_CAP_BUFFER - 4 - 4;
/** Per-capability list maxima: MAX_CAP_DATA / sizeof(element). */
export const CAP_LIMITS = {
  MAX_CAP_ALGS: Math.floor(MAX_CAP_DATA / 6), // TPMS_ALG_PROPERTY
  MAX_CAP_HANDLES: Math.floor(MAX_CAP_DATA / 4),
  MAX_CAP_CC: Math.floor(MAX_CAP_DATA / 4),
  MAX_TPM_PROPERTIES: Math.floor(MAX_CAP_DATA / 8), // TPMS_TAGGED_PROPERTY
  MAX_PCR_PROPERTIES: Math.floor(MAX_CAP_DATA / 5), // TPMS_TAGGED_PCR_SELECT with 3-byte select
  MAX_ECC_CURVES: Math.floor(MAX_CAP_DATA / 2),
  MAX_TAGGED_POLICIES: Math.floor(MAX_CAP_DATA / (4 + 2 + 64)), // TPMS_TAGGED_POLICY with SHA-512
  MAX_ACT_DATA: Math.floor(MAX_CAP_DATA / 12), // TPMS_ACT_DATA
} as const;
