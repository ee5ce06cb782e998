/**
 * The largest sizes and counts trustroot accepts, in one place.
 *
 * Part 2 sizes many buffers by implementation constants (Part 2 §"Implementation
 * parameters", the reference's TpmProfile). We take the values of the largest
 * implementation we support (RSA-4096, BN P-638, SHA-512, 32 PCRs, a 1024-byte
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
  /**
   * BN P-638: 80 bytes, libtpms's value (TpmProfile_Common.h builds ECC_BN_P638
   * in; TpmAlgorithmDefines.h then sets MAX_ECC_KEY_BITS = BN_P638_KEY_SIZE = 638,
   * MAX_ECC_KEY_BYTES = (638 + 7) / 8), so its ECC_Parameters(BN_P638) fits.
   */
  MAX_ECC_KEY_BYTES: 80,
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
  /** TPM2B_EVENT: PCR_Event data (Part 2 §10.4.7 fixes it at 1024). */
  MAX_EVENT_DATA: 1024,
  /** TPM2B_TIMEOUT: sizeof(UINT64) (Part 2 §10.4.10). */
  MAX_TIMEOUT_BYTES: 8,
  /**
   * TPM2B_PRIVATE_KEY_RSA: RSA_PRIVATE_SIZE = 5 half-modulus values (Part 2 §11.2.4.7,
   * rev 1.59 lets a TPM keep CRT values); a TPMT_SENSITIVE from elsewhere has one prime.
   */
  RSA_PRIVATE_SIZE: 5 * 256,
} as const;

// Part 2 sizes many buffers as "sizeof" another structure. These are the
// largest *marshaled* sizes under the limits above (the TPM's C sizeof adds
// padding, so a marshaled value never exceeds it).

/** sizeof(TPMT_HA): hashAlg + the largest digest; TPM2B_DATA (Part 2 §10.4.3). */
export const SIZEOF_TPMT_HA = 2 + LIMITS.MAX_DIGEST;
/** sizeof(TPMU_NAME) = max(TPMT_HA, TPM_HANDLE); TPM2B_NAME (Part 2 §10.5.3). */
export const SIZEOF_TPMU_NAME = Math.max(SIZEOF_TPMT_HA, 4);
/** sizeof(TPMS_DERIVE): two TPM2B_LABELs; TPM2B_DERIVE (Part 2 §11.1.12). */
export const SIZEOF_TPMS_DERIVE = 2 * (2 + LIMITS.LABEL_MAX_BUFFER);
/** sizeof(TPMU_SENSITIVE_CREATE) = max(MAX_SYM_DATA, TPMS_DERIVE); TPM2B_SENSITIVE_DATA (Part 2 §11.1.14). */
export const SIZEOF_TPMU_SENSITIVE_CREATE = Math.max(LIMITS.MAX_SYM_DATA, SIZEOF_TPMS_DERIVE);
/** sizeof(TPMS_ECC_POINT): two TPM2B_ECC_PARAMETERs (Part 2 §11.2.5.2). */
export const SIZEOF_TPMS_ECC_POINT = 2 * (2 + LIMITS.MAX_ECC_KEY_BYTES);
/** sizeof(TPMU_ENCRYPTED_SECRET) = max(ECC point, RSA modulus, TPM2B_DIGEST); TPM2B_ENCRYPTED_SECRET (Part 2 §11.4.33). */
export const SIZEOF_TPMU_ENCRYPTED_SECRET = Math.max(SIZEOF_TPMS_ECC_POINT, LIMITS.MAX_RSA_KEY_BYTES, 2 + LIMITS.MAX_DIGEST);
/**
 * sizeof(TPMT_PUBLIC), marshaled: type, nameAlg, objectAttributes, authPolicy,
 * the largest parameters (18 bytes: RSA or ECC with a symmetric definition and
 * an ECDAA scheme) and the largest unique (an RSA modulus); TPM2B_TEMPLATE (Part 2 §12.2.6).
 */
export const SIZEOF_TPMT_PUBLIC = 2 + 2 + 4 + (2 + LIMITS.MAX_DIGEST) + 18 + (2 + LIMITS.MAX_RSA_KEY_BYTES);
/** sizeof(TPMT_SENSITIVE): sensitiveType, authValue, seedValue, the largest TPMU_SENSITIVE_COMPOSITE (Part 2 §12.3.2.4). */
export const SIZEOF_TPMT_SENSITIVE = 2 + (2 + LIMITS.MAX_DIGEST) + (2 + LIMITS.MAX_DIGEST) + (2 + LIMITS.RSA_PRIVATE_SIZE);
/** sizeof(_PRIVATE): two integrity digests and a TPM2B_SENSITIVE; TPM2B_PRIVATE (Part 2 §12.3.7). */
export const SIZEOF_PRIVATE = 2 * (2 + LIMITS.MAX_DIGEST) + 2 + SIZEOF_TPMT_SENSITIVE;
/** sizeof(TPMS_ID_OBJECT): integrityHMAC and encIdentity; TPM2B_ID_OBJECT (Part 2 §12.4.3). */
export const SIZEOF_TPMS_ID_OBJECT = 2 * (2 + LIMITS.MAX_DIGEST);
/** sizeof(TPMS_CONTEXT_DATA): integrity digest and the encrypted context; TPM2B_CONTEXT_DATA (Part 2 §14.4). */
export const SIZEOF_TPMS_CONTEXT_DATA = 2 + LIMITS.MAX_DIGEST + 2 + LIMITS.MAX_CONTEXT_SIZE;

/** MAX_CAP_DATA = MAX_CAP_BUFFER − sizeof(TPM_CAP) − sizeof(UINT32) (Part 2 §"Capability data"). */
export const MAX_CAP_DATA = LIMITS.MAX_CAP_BUFFER - 4 - 4;
/**
 * Per-capability list maxima: MAX_CAP_DATA / (smallest marshaled element).
 * Part 2 divides by the C sizeof; dividing by the smallest wire size instead
 * gives a bound that every TPM's full capability buffer fits (a SHA-256-only
 * TPM returns more TPMS_TAGGED_POLICY entries than a SHA-512 sizeof allows).
 */
export const CAP_LIMITS = {
  MAX_CAP_ALGS: Math.floor(MAX_CAP_DATA / 6), // TPMS_ALG_PROPERTY: alg u16 + attributes u32
  MAX_CAP_HANDLES: Math.floor(MAX_CAP_DATA / 4), // TPM_HANDLE
  MAX_CAP_CC: Math.floor(MAX_CAP_DATA / 4), // TPM_CC / TPMA_CC
  MAX_TPM_PROPERTIES: Math.floor(MAX_CAP_DATA / 8), // TPMS_TAGGED_PROPERTY
  MAX_PCR_PROPERTIES: Math.floor(MAX_CAP_DATA / 5), // TPMS_TAGGED_PCR_SELECT: tag u32 + sizeofSelect u8, empty select
  MAX_ECC_CURVES: Math.floor(MAX_CAP_DATA / 2), // TPM_ECC_CURVE
  MAX_TAGGED_POLICIES: Math.floor(MAX_CAP_DATA / 6), // TPMS_TAGGED_POLICY: handle + TPMT_HA with a NULL hash
  MAX_ACT_DATA: Math.floor(MAX_CAP_DATA / 12), // TPMS_ACT_DATA
  MAX_PTT_PROPERTIES: Math.floor(MAX_CAP_DATA / 4), // TPML_INTEL_PTT_PROPERTY (TPM_CAP_VENDOR_PROPERTY): UINT32
  MAX_AC_CAPABILITIES: Math.floor(MAX_CAP_DATA / 8), // TPMS_AC_OUTPUT: tag u32 + data u32
} as const;
