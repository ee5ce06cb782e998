/**
 * Interface types (Part 2 §9): the TPMI_ value sets. Handle sets accept the
 * ranges and permanent handles Part 2 lists; algorithm sets the algorithms
 * Part 2 allows (every one the registry defines, not just those a given TPM
 * implements — "is it implemented" is a TPM's answer, not a parse error).
 *
 * None of these include their NULL: where Part 2 writes "+" (`TPMI_DH_OBJECT+`,
 * `+TPMI_ALG_HASH`) the user wraps the set in `orNull(…)`. The one exception
 * is TPMI_SH_AUTH_SESSION, whose "+" admits TPM_RS_PW rather than a NULL; see
 * TPMI_SH_AUTH_SESSION_OR_PW.
 */
import { HANDLE_RANGE as R, TPM_ALG as A, TPM_ECC, TPM_RH as RH, TPM_ST } from '../constants.js';
import { TPM_RC } from '../rc.js';
import { handleSet, type Infer, values } from '../wire/codec.js';

/** Part 2 §9.2 */
export const TPMI_YES_NO = values('TPMI_YES_NO', 1, [0, 1]);
export type TPMI_YES_NO = Infer<typeof TPMI_YES_NO>;

// ---------------------------------------------------------------------------
// Handles (Part 2 §9.3–§9.27)

const ACT: readonly [number, number] = [RH.ACT_0, RH.ACT_F];
const AUTH_RANGE: readonly [number, number] = [RH.AUTH_00, RH.AUTH_FF];

/** §9.3: a loaded object (transient or persistent). */
export const TPMI_DH_OBJECT = handleSet('TPMI_DH_OBJECT', [R.TRANSIENT, R.PERSISTENT]);
export type TPMI_DH_OBJECT = Infer<typeof TPMI_DH_OBJECT>;
/** §9.4: a parent: an object or a hierarchy. */
export const TPMI_DH_PARENT = handleSet('TPMI_DH_PARENT', [R.TRANSIENT, R.PERSISTENT], [RH.OWNER, RH.PLATFORM, RH.ENDORSEMENT]);
export type TPMI_DH_PARENT = Infer<typeof TPMI_DH_PARENT>;
/** §9.5 */
export const TPMI_DH_PERSISTENT = handleSet('TPMI_DH_PERSISTENT', [R.PERSISTENT]);
export type TPMI_DH_PERSISTENT = Infer<typeof TPMI_DH_PERSISTENT>;
/** §9.6: anything with an authorization value. */
export const TPMI_DH_ENTITY = handleSet(
  'TPMI_DH_ENTITY',
  [R.TRANSIENT, R.PERSISTENT, R.NV_INDEX, R.PCR, AUTH_RANGE],
  [RH.OWNER, RH.ENDORSEMENT, RH.PLATFORM, RH.LOCKOUT],
);
export type TPMI_DH_ENTITY = Infer<typeof TPMI_DH_ENTITY>;
/** §9.7 */
export const TPMI_DH_PCR = handleSet('TPMI_DH_PCR', [R.PCR]);
export type TPMI_DH_PCR = Infer<typeof TPMI_DH_PCR>;
/** §9.8: an HMAC or policy session. */
export const TPMI_SH_AUTH_SESSION = handleSet('TPMI_SH_AUTH_SESSION', [R.HMAC_SESSION, R.POLICY_SESSION]);
export type TPMI_SH_AUTH_SESSION = Infer<typeof TPMI_SH_AUTH_SESSION>;
/** §9.8 "TPMI_SH_AUTH_SESSION+": a session or the password pseudo-session TPM_RS_PW (TPMS_AUTH_COMMAND). */
export const TPMI_SH_AUTH_SESSION_OR_PW = handleSet('TPMI_SH_AUTH_SESSION+', [R.HMAC_SESSION, R.POLICY_SESSION], [RH.PW]);
export type TPMI_SH_AUTH_SESSION_OR_PW = Infer<typeof TPMI_SH_AUTH_SESSION_OR_PW>;
/** §9.9 */
export const TPMI_SH_HMAC = handleSet('TPMI_SH_HMAC', [R.HMAC_SESSION]);
export type TPMI_SH_HMAC = Infer<typeof TPMI_SH_HMAC>;
/** §9.10 */
export const TPMI_SH_POLICY = handleSet('TPMI_SH_POLICY', [R.POLICY_SESSION]);
export type TPMI_SH_POLICY = Infer<typeof TPMI_SH_POLICY>;
/** §9.11: what ContextSave/FlushContext take. */
export const TPMI_DH_CONTEXT = handleSet('TPMI_DH_CONTEXT', [R.HMAC_SESSION, R.POLICY_SESSION, R.TRANSIENT]);
export type TPMI_DH_CONTEXT = Infer<typeof TPMI_DH_CONTEXT>;
/**
 * §9.12: the handle in a saved context: a session, or one of the three
 * transient placeholders 0x80000000 (object), 0x80000001 (sequence), 0x80000002 (stClear object).
 */
export const TPMI_DH_SAVED = handleSet('TPMI_DH_SAVED', [R.HMAC_SESSION, R.POLICY_SESSION], [0x80000000, 0x80000001, 0x80000002]);
export type TPMI_DH_SAVED = Infer<typeof TPMI_DH_SAVED>;
/** §9.13 */
export const TPMI_RH_HIERARCHY = handleSet('TPMI_RH_HIERARCHY', [], [RH.OWNER, RH.PLATFORM, RH.ENDORSEMENT]);
export type TPMI_RH_HIERARCHY = Infer<typeof TPMI_RH_HIERARCHY>;
/** §9.14: what HierarchyControl enables. */
export const TPMI_RH_ENABLES = handleSet('TPMI_RH_ENABLES', [], [RH.OWNER, RH.PLATFORM, RH.ENDORSEMENT, RH.PLATFORM_NV]);
export type TPMI_RH_ENABLES = Infer<typeof TPMI_RH_ENABLES>;
/** §9.15 */
export const TPMI_RH_HIERARCHY_AUTH = handleSet('TPMI_RH_HIERARCHY_AUTH', [], [RH.OWNER, RH.PLATFORM, RH.ENDORSEMENT, RH.LOCKOUT]);
export type TPMI_RH_HIERARCHY_AUTH = Infer<typeof TPMI_RH_HIERARCHY_AUTH>;
/** §9.16: SetPrimaryPolicy targets, ACT handles included. */
export const TPMI_RH_HIERARCHY_POLICY = handleSet('TPMI_RH_HIERARCHY_POLICY', [ACT], [RH.OWNER, RH.PLATFORM, RH.ENDORSEMENT, RH.LOCKOUT]);
export type TPMI_RH_HIERARCHY_POLICY = Infer<typeof TPMI_RH_HIERARCHY_POLICY>;
/** §9.17 */
export const TPMI_RH_PLATFORM = handleSet('TPMI_RH_PLATFORM', [], [RH.PLATFORM]);
export type TPMI_RH_PLATFORM = Infer<typeof TPMI_RH_PLATFORM>;
/** §9.18 */
export const TPMI_RH_OWNER = handleSet('TPMI_RH_OWNER', [], [RH.OWNER]);
export type TPMI_RH_OWNER = Infer<typeof TPMI_RH_OWNER>;
/** §9.19 */
export const TPMI_RH_ENDORSEMENT = handleSet('TPMI_RH_ENDORSEMENT', [], [RH.ENDORSEMENT]);
export type TPMI_RH_ENDORSEMENT = Infer<typeof TPMI_RH_ENDORSEMENT>;
/** §9.20 */
export const TPMI_RH_PROVISION = handleSet('TPMI_RH_PROVISION', [], [RH.OWNER, RH.PLATFORM]);
export type TPMI_RH_PROVISION = Infer<typeof TPMI_RH_PROVISION>;
/** §9.21 */
export const TPMI_RH_CLEAR = handleSet('TPMI_RH_CLEAR', [], [RH.LOCKOUT, RH.PLATFORM]);
export type TPMI_RH_CLEAR = Infer<typeof TPMI_RH_CLEAR>;
/** §9.22 */
export const TPMI_RH_NV_AUTH = handleSet('TPMI_RH_NV_AUTH', [R.NV_INDEX], [RH.PLATFORM, RH.OWNER]);
export type TPMI_RH_NV_AUTH = Infer<typeof TPMI_RH_NV_AUTH>;
/** §9.23 */
export const TPMI_RH_LOCKOUT = handleSet('TPMI_RH_LOCKOUT', [], [RH.LOCKOUT]);
export type TPMI_RH_LOCKOUT = Infer<typeof TPMI_RH_LOCKOUT>;
/** §9.24 */
export const TPMI_RH_NV_INDEX = handleSet('TPMI_RH_NV_INDEX', [R.NV_INDEX]);
export type TPMI_RH_NV_INDEX = Infer<typeof TPMI_RH_NV_INDEX>;
/** §9.25 */
export const TPMI_RH_AC = handleSet('TPMI_RH_AC', [R.AC]);
export type TPMI_RH_AC = Infer<typeof TPMI_RH_AC>;
/** §9.26 */
export const TPMI_RH_ACT = handleSet('TPMI_RH_ACT', [ACT]);
export type TPMI_RH_ACT = Infer<typeof TPMI_RH_ACT>;

// ---------------------------------------------------------------------------
// Algorithms (Part 2 §9.27–§9.37, §11)

const HASHES = [A.SHA1, A.SHA256, A.SHA384, A.SHA512, A.SM3_256, A.SHA3_256, A.SHA3_384, A.SHA3_512] as const;
const BLOCK_CIPHERS = [A.TDES, A.AES, A.SM4, A.CAMELLIA] as const;
const CIPHER_MODES = [A.CTR, A.OFB, A.CBC, A.CFB, A.ECB] as const;

/** §9.27 */
export const TPMI_ALG_HASH = values('TPMI_ALG_HASH', 2, HASHES);
export type TPMI_ALG_HASH = Infer<typeof TPMI_ALG_HASH>;
/** §9.28 */
export const TPMI_ALG_ASYM = values('TPMI_ALG_ASYM', 2, [A.RSA, A.ECC]);
export type TPMI_ALG_ASYM = Infer<typeof TPMI_ALG_ASYM>;
/** §9.29: block ciphers and XOR (parameter encryption). */
export const TPMI_ALG_SYM = values('TPMI_ALG_SYM', 2, [...BLOCK_CIPHERS, A.XOR]);
export type TPMI_ALG_SYM = Infer<typeof TPMI_ALG_SYM>;
/** §9.30: block ciphers for objects. */
export const TPMI_ALG_SYM_OBJECT = values('TPMI_ALG_SYM_OBJECT', 2, BLOCK_CIPHERS);
export type TPMI_ALG_SYM_OBJECT = Infer<typeof TPMI_ALG_SYM_OBJECT>;
/** §9.31: block cipher modes and CMAC. */
export const TPMI_ALG_SYM_MODE = values('TPMI_ALG_SYM_MODE', 2, [...CIPHER_MODES, A.CMAC]);
export type TPMI_ALG_SYM_MODE = Infer<typeof TPMI_ALG_SYM_MODE>;
/** §9.32 */
export const TPMI_ALG_KDF = values('TPMI_ALG_KDF', 2, [A.MGF1, A.KDF1_SP800_56A, A.KDF2, A.KDF1_SP800_108]);
export type TPMI_ALG_KDF = Infer<typeof TPMI_ALG_KDF>;
/** §9.33: signing schemes, HMAC included. */
export const TPMI_ALG_SIG_SCHEME = values('TPMI_ALG_SIG_SCHEME', 2, [A.ECDAA, A.RSASSA, A.RSAPSS, A.ECDSA, A.SM2, A.ECSCHNORR, A.HMAC]);
export type TPMI_ALG_SIG_SCHEME = Infer<typeof TPMI_ALG_SIG_SCHEME>;
/** §9.34 */
export const TPMI_ECC_KEY_EXCHANGE = values('TPMI_ECC_KEY_EXCHANGE', 2, [A.ECDH, A.ECMQV, A.SM2]);
export type TPMI_ECC_KEY_EXCHANGE = Infer<typeof TPMI_ECC_KEY_EXCHANGE>;
/** §9.35 */
export const TPMI_ST_COMMAND_TAG = values('TPMI_ST_COMMAND_TAG', 2, [TPM_ST.NO_SESSIONS, TPM_ST.SESSIONS]);
export type TPMI_ST_COMMAND_TAG = Infer<typeof TPMI_ST_COMMAND_TAG>;
/** §9.36: CMAC or a hash (HMAC). */
export const TPMI_ALG_MAC_SCHEME = values('TPMI_ALG_MAC_SCHEME', 2, [A.CMAC, ...HASHES]);
export type TPMI_ALG_MAC_SCHEME = Infer<typeof TPMI_ALG_MAC_SCHEME>;
/** §9.37 */
export const TPMI_ALG_CIPHER_MODE = values('TPMI_ALG_CIPHER_MODE', 2, CIPHER_MODES);
export type TPMI_ALG_CIPHER_MODE = Infer<typeof TPMI_ALG_CIPHER_MODE>;

/** §10.12.7: the attestation structure types. */
export const TPMI_ST_ATTEST = values('TPMI_ST_ATTEST', 2, [
  TPM_ST.ATTEST_CERTIFY,
  TPM_ST.ATTEST_QUOTE,
  TPM_ST.ATTEST_SESSION_AUDIT,
  TPM_ST.ATTEST_COMMAND_AUDIT,
  TPM_ST.ATTEST_TIME,
  TPM_ST.ATTEST_CREATION,
  TPM_ST.ATTEST_NV,
  TPM_ST.ATTEST_NV_DIGEST,
]);
export type TPMI_ST_ATTEST = Infer<typeof TPMI_ST_ATTEST>;

/** §11.1.3: key sizes per block cipher. */
export const TPMI_TDES_KEY_BITS = values('TPMI_TDES_KEY_BITS', 2, [128, 192]);
export type TPMI_TDES_KEY_BITS = Infer<typeof TPMI_TDES_KEY_BITS>;
export const TPMI_AES_KEY_BITS = values('TPMI_AES_KEY_BITS', 2, [128, 192, 256]);
export type TPMI_AES_KEY_BITS = Infer<typeof TPMI_AES_KEY_BITS>;
export const TPMI_SM4_KEY_BITS = values('TPMI_SM4_KEY_BITS', 2, [128]);
export type TPMI_SM4_KEY_BITS = Infer<typeof TPMI_SM4_KEY_BITS>;
export const TPMI_CAMELLIA_KEY_BITS = values('TPMI_CAMELLIA_KEY_BITS', 2, [128, 192, 256]);
export type TPMI_CAMELLIA_KEY_BITS = Infer<typeof TPMI_CAMELLIA_KEY_BITS>;

/** §11.1.17 */
export const TPMI_ALG_KEYEDHASH_SCHEME = values('TPMI_ALG_KEYEDHASH_SCHEME', 2, [A.HMAC, A.XOR]);
export type TPMI_ALG_KEYEDHASH_SCHEME = Infer<typeof TPMI_ALG_KEYEDHASH_SCHEME>;
/** §11.2.3.4: every asymmetric scheme (signing, encryption, key exchange). */
export const TPMI_ALG_ASYM_SCHEME = values('TPMI_ALG_ASYM_SCHEME', 2, [
  A.ECDH,
  A.ECMQV,
  A.ECDAA,
  A.RSASSA,
  A.RSAPSS,
  A.ECDSA,
  A.SM2,
  A.ECSCHNORR,
  A.RSAES,
  A.OAEP,
]);
export type TPMI_ALG_ASYM_SCHEME = Infer<typeof TPMI_ALG_ASYM_SCHEME>;
/** §11.2.4.1 */
export const TPMI_ALG_RSA_SCHEME = values('TPMI_ALG_RSA_SCHEME', 2, [A.RSAES, A.OAEP, A.RSASSA, A.RSAPSS]);
export type TPMI_ALG_RSA_SCHEME = Infer<typeof TPMI_ALG_RSA_SCHEME>;
/** §11.2.4.3 */
export const TPMI_ALG_RSA_DECRYPT = values('TPMI_ALG_RSA_DECRYPT', 2, [A.RSAES, A.OAEP]);
export type TPMI_ALG_RSA_DECRYPT = Infer<typeof TPMI_ALG_RSA_DECRYPT>;
/** §11.2.4.6: the RSA sizes a TPM may implement (up to MAX_RSA_KEY_BYTES). */
export const TPMI_RSA_KEY_BITS = values('TPMI_RSA_KEY_BITS', 2, [1024, 2048, 3072, 4096]);
export type TPMI_RSA_KEY_BITS = Infer<typeof TPMI_RSA_KEY_BITS>;
/** §11.2.5.4 */
export const TPMI_ALG_ECC_SCHEME = values('TPMI_ALG_ECC_SCHEME', 2, [A.ECDAA, A.ECDSA, A.SM2, A.ECSCHNORR, A.ECDH, A.ECMQV]);
export type TPMI_ALG_ECC_SCHEME = Infer<typeof TPMI_ALG_ECC_SCHEME>;
/** §11.2.5.5: the registry's curves (TPM_ECC_NONE is not one). */
export const TPMI_ECC_CURVE = values('TPMI_ECC_CURVE', 2, [
  TPM_ECC.NIST_P192,
  TPM_ECC.NIST_P224,
  TPM_ECC.NIST_P256,
  TPM_ECC.NIST_P384,
  TPM_ECC.NIST_P521,
  TPM_ECC.BN_P256,
  TPM_ECC.BN_P638,
  TPM_ECC.SM2_P256,
]);
export type TPMI_ECC_CURVE = Infer<typeof TPMI_ECC_CURVE>;
/** §12.2.2: object types. */
export const TPMI_ALG_PUBLIC = values('TPMI_ALG_PUBLIC', 2, [A.RSA, A.KEYEDHASH, A.ECC, A.SYMCIPHER]);
export type TPMI_ALG_PUBLIC = Infer<typeof TPMI_ALG_PUBLIC>;

/**
 * The response code for a value an interface type refuses, where its Part 2
 * table names one other than TPM_RC_VALUE ("#TPM_RC_…"; the reference's
 * *_Unmarshal, as libtpms answers). Keyed by the codec's name without the
 * "+" of orNull. Handle sets, TPMI_YES_NO, TPM_SE, TPM_SU, and the RSA,
 * keyed-hash and asymmetric scheme sets refuse with TPM_RC_VALUE.
 */
export const TPMI_REFUSAL_RC: Readonly<Record<string, number>> = {
  TPMI_ALG_HASH: TPM_RC.HASH, // §9.27
  TPMI_ALG_ASYM: TPM_RC.ASYMMETRIC, // §9.28
  TPMI_ALG_SYM: TPM_RC.SYMMETRIC, // §9.29
  TPMI_ALG_SYM_OBJECT: TPM_RC.SYMMETRIC, // §9.30
  TPMI_ALG_SYM_MODE: TPM_RC.MODE, // §9.31
  TPMI_ALG_KDF: TPM_RC.KDF, // §9.32
  TPMI_ALG_SIG_SCHEME: TPM_RC.SCHEME, // §9.33
  TPMI_ECC_KEY_EXCHANGE: TPM_RC.SCHEME, // §9.34
  TPMI_ST_COMMAND_TAG: TPM_RC.BAD_TAG, // §9.35
  TPMI_ALG_MAC_SCHEME: TPM_RC.SYMMETRIC, // §9.36
  TPMI_ALG_CIPHER_MODE: TPM_RC.MODE, // §9.37
  TPMI_ST_ATTEST: TPM_RC.SELECTOR, // §10.12.7
  TPMI_ALG_ECC_SCHEME: TPM_RC.SCHEME, // §11.2.5.4
  TPMI_ECC_CURVE: TPM_RC.CURVE, // §11.2.5.5
  TPMI_ALG_PUBLIC: TPM_RC.TYPE, // §12.2.2
};
