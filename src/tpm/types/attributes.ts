/**
 * Attribute structures (Part 2 §8): TPMA_* words with named bits. Field names
 * are Part 2's; multi-bit fields are numbers. Reserved bits are rejected on decode.
 */
import { bits, type Infer } from '../wire/codec.js';

/** Part 2 §8.2 */
export const TPMA_ALGORITHM = bits('TPMA_ALGORITHM', 4, {
  asymmetric: 0,
  symmetric: 1,
  hash: 2,
  object: 3,
  signing: 8,
  encrypting: 9,
  method: 10,
});
export type TPMA_ALGORITHM = Infer<typeof TPMA_ALGORITHM>;

/** Part 2 §8.3: bit 18 is `sign` (sign/encrypt in rev 1.59). */
export const TPMA_OBJECT = bits('TPMA_OBJECT', 4, {
  fixedTPM: 1,
  stClear: 2,
  fixedParent: 4,
  sensitiveDataOrigin: 5,
  userWithAuth: 6,
  adminWithPolicy: 7,
  noDA: 10,
  encryptedDuplication: 11,
  restricted: 16,
  decrypt: 17,
  sign: 18,
  x509sign: 19,
});
export type TPMA_OBJECT = Infer<typeof TPMA_OBJECT>;

/** Part 2 §8.4 */
export const TPMA_SESSION = bits('TPMA_SESSION', 1, {
  continueSession: 0,
  auditExclusive: 1,
  auditReset: 2,
  decrypt: 5,
  encrypt: 6,
  audit: 7,
});
export type TPMA_SESSION = Infer<typeof TPMA_SESSION>;

/**
 * Part 2 §8.5: localities 0–4 as bits, or (when `Extended` is non-zero) an
 * extended locality 32–255 given by the whole byte.
 */
export const TPMA_LOCALITY = bits('TPMA_LOCALITY', 1, {
  TPM_LOC_ZERO: 0,
  TPM_LOC_ONE: 1,
  TPM_LOC_TWO: 2,
  TPM_LOC_THREE: 3,
  TPM_LOC_FOUR: 4,
  Extended: [5, 3],
});
export type TPMA_LOCALITY = Infer<typeof TPMA_LOCALITY>;

/** Part 2 §8.6: TPM_PT_PERMANENT. */
export const TPMA_PERMANENT = bits('TPMA_PERMANENT', 4, {
  ownerAuthSet: 0,
  endorsementAuthSet: 1,
  lockoutAuthSet: 2,
  disableClear: 8,
  inLockout: 9,
  tpmGeneratedEPS: 10,
});
export type TPMA_PERMANENT = Infer<typeof TPMA_PERMANENT>;

/** Part 2 §8.7: TPM_PT_STARTUP_CLEAR. */
export const TPMA_STARTUP_CLEAR = bits('TPMA_STARTUP_CLEAR', 4, {
  phEnable: 0,
  shEnable: 1,
  ehEnable: 2,
  phEnableNV: 3,
  orderly: 31,
});
export type TPMA_STARTUP_CLEAR = Infer<typeof TPMA_STARTUP_CLEAR>;

/** Part 2 §8.8: TPM_PT_MEMORY. */
export const TPMA_MEMORY = bits('TPMA_MEMORY', 4, {
  sharedRAM: 0,
  sharedNV: 1,
  objectCopiedToRam: 2,
});
export type TPMA_MEMORY = Infer<typeof TPMA_MEMORY>;

/** Part 2 §8.9: command attributes (TPM_CAP_COMMANDS); `V` marks a vendor command. */
export const TPMA_CC = bits('TPMA_CC', 4, {
  commandIndex: [0, 16],
  nv: 22,
  extensive: 23,
  flushed: 24,
  cHandles: [25, 3],
  rHandle: 28,
  V: 29,
});
export type TPMA_CC = Infer<typeof TPMA_CC>;

/** Part 2 §8.10: TPM_PT_MODES. */
export const TPMA_MODES = bits('TPMA_MODES', 4, {
  FIPS_140_2: 0,
});
export type TPMA_MODES = Infer<typeof TPMA_MODES>;

/** Part 2 §8.12: the key usage CertifyX509 puts in a certificate. */
export const TPMA_X509_KEY_USAGE = bits('TPMA_X509_KEY_USAGE', 4, {
  decipherOnly: 23,
  encipherOnly: 24,
  cRLSign: 25,
  keyCertSign: 26,
  keyAgreement: 27,
  dataEncipherment: 28,
  keyEncipherment: 29,
  nonrepudiation: 30,
  digitalSignature: 31,
});
export type TPMA_X509_KEY_USAGE = Infer<typeof TPMA_X509_KEY_USAGE>;

/** Part 2 §8.13 */
export const TPMA_ACT = bits('TPMA_ACT', 4, {
  signaled: 0,
  preserveSignaled: 1,
});
export type TPMA_ACT = Infer<typeof TPMA_ACT>;

/**
 * Part 2 §13.4: NV index attributes. `TPM_NT` (bits 4..7) is the index type,
 * a TPM_NT value from ../constants.ts.
 */
export const TPMA_NV = bits('TPMA_NV', 4, {
  PPWRITE: 0,
  OWNERWRITE: 1,
  AUTHWRITE: 2,
  POLICYWRITE: 3,
  TPM_NT: [4, 4],
  POLICY_DELETE: 10,
  WRITELOCKED: 11,
  WRITEALL: 12,
  WRITEDEFINE: 13,
  WRITE_STCLEAR: 14,
  GLOBALLOCK: 15,
  PPREAD: 16,
  OWNERREAD: 17,
  AUTHREAD: 18,
  POLICYREAD: 19,
  NO_DA: 25,
  ORDERLY: 26,
  CLEAR_STCLEAR: 27,
  READLOCKED: 28,
  WRITTEN: 29,
  PLATFORMCREATE: 30,
  READ_STCLEAR: 31,
});
export type TPMA_NV = Infer<typeof TPMA_NV>;
