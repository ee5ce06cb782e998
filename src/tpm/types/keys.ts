/**
 * Algorithm parameters and keys (Part 2 §11) and key/object structures
 * (Part 2 §12): symmetric definitions, schemes, RSA and ECC parameters,
 * signatures, public and sensitive areas, and templates.
 *
 * "+" passed down: Part 3 lets some commands pass a NULL algorithm inside
 * these structures (TPMT_SYM_DEF+, a scheme's NULL, TPMT_PUBLIC's nameAlg for
 * LoadExternal). Each codec here accepts NULL wherever Part 2 allows it in
 * any context; the command handler rejects it where its context does not
 * (TPM_RC_SYMMETRIC, TPM_RC_SCHEME, TPM_RC_HASH), as the TPM does.
 */
import { TPM_ALG as A } from '../constants.js';
import {
  LIMITS,
  SIZEOF_PRIVATE,
  SIZEOF_TPMS_DERIVE,
  SIZEOF_TPMS_ID_OBJECT,
  SIZEOF_TPMT_PUBLIC,
  SIZEOF_TPMU_ENCRYPTED_SECRET,
  SIZEOF_TPMU_SENSITIVE_CREATE,
} from '../limits.js';
import { type Codec, decode, encode, type Infer, orNull, sized, sizedOf, struct, union } from '../wire/codec.js';
import { TPMA_OBJECT } from './attributes.js';
import { TPM2B_AUTH, TPM2B_DIGEST, TPMT_HA } from './base.js';
import {
  TPMI_AES_KEY_BITS,
  TPMI_ALG_ASYM_SCHEME,
  TPMI_ALG_ECC_SCHEME,
  TPMI_ALG_HASH,
  TPMI_ALG_KDF,
  TPMI_ALG_KEYEDHASH_SCHEME,
  TPMI_ALG_PUBLIC,
  TPMI_ALG_RSA_DECRYPT,
  TPMI_ALG_RSA_SCHEME,
  TPMI_ALG_SIG_SCHEME,
  TPMI_ALG_SYM,
  TPMI_ALG_SYM_MODE,
  TPMI_ALG_SYM_OBJECT,
  TPMI_CAMELLIA_KEY_BITS,
  TPMI_ECC_CURVE,
  TPMI_RSA_KEY_BITS,
  TPMI_SM4_KEY_BITS,
  TPMI_TDES_KEY_BITS,
} from './interfaces.js';
import { TPM_ECC_CURVE, UINT16, UINT32 } from './primitives.js';

// ---------------------------------------------------------------------------
// Part 2 §11.1: symmetric

const SYM_MODE = orNull(TPMI_ALG_SYM_MODE);

/** §11.1.6: TPMT_SYM_DEF, e.g. AES-128-CFB for a session; `keyBits`/`mode` absent for NULL, `mode` absent for XOR. */
export const TPMT_SYM_DEF = struct('TPMT_SYM_DEF', {
  algorithm: orNull(TPMI_ALG_SYM),
  keyBits: union('TPMU_SYM_KEY_BITS', 'algorithm', {
    [A.TDES]: TPMI_TDES_KEY_BITS,
    [A.AES]: TPMI_AES_KEY_BITS,
    [A.SM4]: TPMI_SM4_KEY_BITS,
    [A.CAMELLIA]: TPMI_CAMELLIA_KEY_BITS,
    [A.XOR]: TPMI_ALG_HASH,
    [A.NULL]: null,
  }),
  mode: union('TPMU_SYM_MODE', 'algorithm', {
    [A.TDES]: SYM_MODE,
    [A.AES]: SYM_MODE,
    [A.SM4]: SYM_MODE,
    [A.CAMELLIA]: SYM_MODE,
    [A.XOR]: null,
    [A.NULL]: null,
  }),
});
export type TPMT_SYM_DEF = Infer<typeof TPMT_SYM_DEF>;

const OBJECT_KEY_BITS = {
  [A.TDES]: TPMI_TDES_KEY_BITS,
  [A.AES]: TPMI_AES_KEY_BITS,
  [A.SM4]: TPMI_SM4_KEY_BITS,
  [A.CAMELLIA]: TPMI_CAMELLIA_KEY_BITS,
} as const;
const OBJECT_MODE = { [A.TDES]: SYM_MODE, [A.AES]: SYM_MODE, [A.SM4]: SYM_MODE, [A.CAMELLIA]: SYM_MODE } as const;

/** §11.1.7: the symmetric algorithm of a storage key or symmetric object (NULL for other keys). */
export const TPMT_SYM_DEF_OBJECT = struct('TPMT_SYM_DEF_OBJECT', {
  algorithm: orNull(TPMI_ALG_SYM_OBJECT),
  keyBits: union('TPMU_SYM_KEY_BITS', 'algorithm', { ...OBJECT_KEY_BITS, [A.NULL]: null }),
  mode: union('TPMU_SYM_MODE', 'algorithm', { ...OBJECT_MODE, [A.NULL]: null }),
});
export type TPMT_SYM_DEF_OBJECT = Infer<typeof TPMT_SYM_DEF_OBJECT>;

/** §11.1.8 */
export const TPM2B_SYM_KEY = sized('TPM2B_SYM_KEY', LIMITS.MAX_SYM_KEY_BYTES);
export type TPM2B_SYM_KEY = Infer<typeof TPM2B_SYM_KEY>;

/** §11.1.9: a symmetric object's cipher; unlike elsewhere its algorithm may not be NULL. */
export const TPMS_SYMCIPHER_PARMS = struct('TPMS_SYMCIPHER_PARMS', {
  sym: struct('TPMT_SYM_DEF_OBJECT', {
    algorithm: TPMI_ALG_SYM_OBJECT,
    keyBits: union('TPMU_SYM_KEY_BITS', 'algorithm', OBJECT_KEY_BITS),
    mode: union('TPMU_SYM_MODE', 'algorithm', OBJECT_MODE),
  }),
});
export type TPMS_SYMCIPHER_PARMS = Infer<typeof TPMS_SYMCIPHER_PARMS>;

/** §11.1.10 */
export const TPM2B_LABEL = sized('TPM2B_LABEL', LIMITS.LABEL_MAX_BUFFER);
export type TPM2B_LABEL = Infer<typeof TPM2B_LABEL>;
/** §11.1.11: label and context for a key derived by a derivation parent. */
export const TPMS_DERIVE = struct('TPMS_DERIVE', {
  label: TPM2B_LABEL,
  context: TPM2B_LABEL,
});
export type TPMS_DERIVE = Infer<typeof TPMS_DERIVE>;
/** §11.1.12: buffer[sizeof(TPMS_DERIVE)]. */
export const TPM2B_DERIVE = sized('TPM2B_DERIVE', SIZEOF_TPMS_DERIVE);
export type TPM2B_DERIVE = Infer<typeof TPM2B_DERIVE>;
/** §11.1.14: data to seal, or a keyedHash/symcipher key to import in a template. */
export const TPM2B_SENSITIVE_DATA = sized('TPM2B_SENSITIVE_DATA', SIZEOF_TPMU_SENSITIVE_CREATE);
export type TPM2B_SENSITIVE_DATA = Infer<typeof TPM2B_SENSITIVE_DATA>;
/** §11.1.15 */
export const TPMS_SENSITIVE_CREATE = struct('TPMS_SENSITIVE_CREATE', {
  userAuth: TPM2B_AUTH,
  data: TPM2B_SENSITIVE_DATA,
});
export type TPMS_SENSITIVE_CREATE = Infer<typeof TPMS_SENSITIVE_CREATE>;
/** §11.1.16: never empty (its minimum is the two size fields). */
export const TPM2B_SENSITIVE_CREATE = sizedOf('TPM2B_SENSITIVE_CREATE', TPMS_SENSITIVE_CREATE);
export type TPM2B_SENSITIVE_CREATE = Infer<typeof TPM2B_SENSITIVE_CREATE>;

// §11.1.17–§11.1.23: scheme details.
/** §11.1.17: the hash of a scheme. */
export const TPMS_SCHEME_HASH = struct('TPMS_SCHEME_HASH', { hashAlg: TPMI_ALG_HASH });
export type TPMS_SCHEME_HASH = Infer<typeof TPMS_SCHEME_HASH>;
/** §11.1.18 */
export const TPMS_SCHEME_ECDAA = struct('TPMS_SCHEME_ECDAA', { hashAlg: TPMI_ALG_HASH, count: UINT16 });
export type TPMS_SCHEME_ECDAA = Infer<typeof TPMS_SCHEME_ECDAA>;
/** §11.1.20 */
export const TPMS_SCHEME_HMAC = TPMS_SCHEME_HASH;
export type TPMS_SCHEME_HMAC = TPMS_SCHEME_HASH;
/** §11.1.21: XOR obfuscation: hash and KDF ("+TPMI_ALG_KDF"). */
export const TPMS_SCHEME_XOR = struct('TPMS_SCHEME_XOR', { hashAlg: TPMI_ALG_HASH, kdf: orNull(TPMI_ALG_KDF) });
export type TPMS_SCHEME_XOR = Infer<typeof TPMS_SCHEME_XOR>;

/** §11.1.23: a keyedHash object's scheme. */
export const TPMT_KEYEDHASH_SCHEME = struct('TPMT_KEYEDHASH_SCHEME', {
  scheme: orNull(TPMI_ALG_KEYEDHASH_SCHEME),
  details: union('TPMU_SCHEME_KEYEDHASH', 'scheme', {
    [A.HMAC]: TPMS_SCHEME_HMAC,
    [A.XOR]: TPMS_SCHEME_XOR,
    [A.NULL]: null,
  }),
});
export type TPMT_KEYEDHASH_SCHEME = Infer<typeof TPMT_KEYEDHASH_SCHEME>;

// §11.2.1: the typedefs of TPMS_SCHEME_HASH / TPMS_SCHEME_ECDAA / TPMS_EMPTY Part 2 names per scheme.
export const TPMS_SIG_SCHEME_RSASSA = TPMS_SCHEME_HASH;
export type TPMS_SIG_SCHEME_RSASSA = TPMS_SCHEME_HASH;
export const TPMS_SIG_SCHEME_RSAPSS = TPMS_SCHEME_HASH;
export type TPMS_SIG_SCHEME_RSAPSS = TPMS_SCHEME_HASH;
export const TPMS_SIG_SCHEME_ECDSA = TPMS_SCHEME_HASH;
export type TPMS_SIG_SCHEME_ECDSA = TPMS_SCHEME_HASH;
export const TPMS_SIG_SCHEME_SM2 = TPMS_SCHEME_HASH;
export type TPMS_SIG_SCHEME_SM2 = TPMS_SCHEME_HASH;
export const TPMS_SIG_SCHEME_ECSCHNORR = TPMS_SCHEME_HASH;
export type TPMS_SIG_SCHEME_ECSCHNORR = TPMS_SCHEME_HASH;
export const TPMS_SIG_SCHEME_ECDAA = TPMS_SCHEME_ECDAA;
export type TPMS_SIG_SCHEME_ECDAA = TPMS_SCHEME_ECDAA;
export const TPMS_ENC_SCHEME_OAEP = TPMS_SCHEME_HASH;
export type TPMS_ENC_SCHEME_OAEP = TPMS_SCHEME_HASH;
export const TPMS_KEY_SCHEME_ECDH = TPMS_SCHEME_HASH;
export type TPMS_KEY_SCHEME_ECDH = TPMS_SCHEME_HASH;
export const TPMS_KEY_SCHEME_ECMQV = TPMS_SCHEME_HASH;
export type TPMS_KEY_SCHEME_ECMQV = TPMS_SCHEME_HASH;
export const TPMS_KDF_SCHEME_MGF1 = TPMS_SCHEME_HASH;
export type TPMS_KDF_SCHEME_MGF1 = TPMS_SCHEME_HASH;
export const TPMS_KDF_SCHEME_KDF1_SP800_56A = TPMS_SCHEME_HASH;
export type TPMS_KDF_SCHEME_KDF1_SP800_56A = TPMS_SCHEME_HASH;
export const TPMS_KDF_SCHEME_KDF2 = TPMS_SCHEME_HASH;
export type TPMS_KDF_SCHEME_KDF2 = TPMS_SCHEME_HASH;
export const TPMS_KDF_SCHEME_KDF1_SP800_108 = TPMS_SCHEME_HASH;
export type TPMS_KDF_SCHEME_KDF1_SP800_108 = TPMS_SCHEME_HASH;

/** §11.2.1.5: a signing scheme (Sign, Quote, Certify's inScheme). */
export const TPMT_SIG_SCHEME = struct('TPMT_SIG_SCHEME', {
  scheme: orNull(TPMI_ALG_SIG_SCHEME),
  details: union('TPMU_SIG_SCHEME', 'scheme', {
    [A.ECDAA]: TPMS_SCHEME_ECDAA,
    [A.RSASSA]: TPMS_SCHEME_HASH,
    [A.RSAPSS]: TPMS_SCHEME_HASH,
    [A.ECDSA]: TPMS_SCHEME_HASH,
    [A.SM2]: TPMS_SCHEME_HASH,
    [A.ECSCHNORR]: TPMS_SCHEME_HASH,
    [A.HMAC]: TPMS_SCHEME_HMAC,
    [A.NULL]: null,
  }),
});
export type TPMT_SIG_SCHEME = Infer<typeof TPMT_SIG_SCHEME>;

/** §11.2.3.3: a key derivation function. */
export const TPMT_KDF_SCHEME = struct('TPMT_KDF_SCHEME', {
  scheme: orNull(TPMI_ALG_KDF),
  details: union('TPMU_KDF_SCHEME', 'scheme', {
    [A.MGF1]: TPMS_SCHEME_HASH,
    [A.KDF1_SP800_56A]: TPMS_SCHEME_HASH,
    [A.KDF2]: TPMS_SCHEME_HASH,
    [A.KDF1_SP800_108]: TPMS_SCHEME_HASH,
    [A.NULL]: null,
  }),
});
export type TPMT_KDF_SCHEME = Infer<typeof TPMT_KDF_SCHEME>;

/** §11.2.3.6: any asymmetric scheme (TPMS_ASYM_PARMS). */
export const TPMT_ASYM_SCHEME = struct('TPMT_ASYM_SCHEME', {
  scheme: orNull(TPMI_ALG_ASYM_SCHEME),
  details: union('TPMU_ASYM_SCHEME', 'scheme', {
    [A.ECDH]: TPMS_SCHEME_HASH,
    [A.ECMQV]: TPMS_SCHEME_HASH,
    [A.ECDAA]: TPMS_SCHEME_ECDAA,
    [A.RSASSA]: TPMS_SCHEME_HASH,
    [A.RSAPSS]: TPMS_SCHEME_HASH,
    [A.ECDSA]: TPMS_SCHEME_HASH,
    [A.SM2]: TPMS_SCHEME_HASH,
    [A.ECSCHNORR]: TPMS_SCHEME_HASH,
    [A.RSAES]: null,
    [A.OAEP]: TPMS_SCHEME_HASH,
    [A.NULL]: null,
  }),
});
export type TPMT_ASYM_SCHEME = Infer<typeof TPMT_ASYM_SCHEME>;

// ---------------------------------------------------------------------------
// Part 2 §11.2.4: RSA

/** §11.2.4.2: an RSA key's scheme. */
export const TPMT_RSA_SCHEME = struct('TPMT_RSA_SCHEME', {
  scheme: orNull(TPMI_ALG_RSA_SCHEME),
  details: union('TPMU_ASYM_SCHEME', 'scheme', {
    [A.RSAES]: null,
    [A.OAEP]: TPMS_SCHEME_HASH,
    [A.RSASSA]: TPMS_SCHEME_HASH,
    [A.RSAPSS]: TPMS_SCHEME_HASH,
    [A.NULL]: null,
  }),
});
export type TPMT_RSA_SCHEME = Infer<typeof TPMT_RSA_SCHEME>;
/** §11.2.4.4: RSA_Encrypt/RSA_Decrypt's padding. */
export const TPMT_RSA_DECRYPT = struct('TPMT_RSA_DECRYPT', {
  scheme: orNull(TPMI_ALG_RSA_DECRYPT),
  details: union('TPMU_ASYM_SCHEME', 'scheme', {
    [A.RSAES]: null,
    [A.OAEP]: TPMS_SCHEME_HASH,
    [A.NULL]: null,
  }),
});
export type TPMT_RSA_DECRYPT = Infer<typeof TPMT_RSA_DECRYPT>;
/** §11.2.4.5: a modulus, or an RSA ciphertext/signature. */
export const TPM2B_PUBLIC_KEY_RSA = sized('TPM2B_PUBLIC_KEY_RSA', LIMITS.MAX_RSA_KEY_BYTES);
export type TPM2B_PUBLIC_KEY_RSA = Infer<typeof TPM2B_PUBLIC_KEY_RSA>;
/** §11.2.4.7: a prime (or, in the TPM's own sensitive area, CRT values). */
export const TPM2B_PRIVATE_KEY_RSA = sized('TPM2B_PRIVATE_KEY_RSA', LIMITS.RSA_PRIVATE_SIZE);
export type TPM2B_PRIVATE_KEY_RSA = Infer<typeof TPM2B_PRIVATE_KEY_RSA>;

// ---------------------------------------------------------------------------
// Part 2 §11.2.5: ECC

/** §11.2.5.1: a coordinate or scalar. */
export const TPM2B_ECC_PARAMETER = sized('TPM2B_ECC_PARAMETER', LIMITS.MAX_ECC_KEY_BYTES);
export type TPM2B_ECC_PARAMETER = Infer<typeof TPM2B_ECC_PARAMETER>;
/** §11.2.5.2 */
export const TPMS_ECC_POINT = struct('TPMS_ECC_POINT', {
  x: TPM2B_ECC_PARAMETER,
  y: TPM2B_ECC_PARAMETER,
});
export type TPMS_ECC_POINT = Infer<typeof TPMS_ECC_POINT>;
/** §11.2.5.3: a point; never empty. */
export const TPM2B_ECC_POINT = sizedOf('TPM2B_ECC_POINT', TPMS_ECC_POINT);
export type TPM2B_ECC_POINT = Infer<typeof TPM2B_ECC_POINT>;
/** §11.2.5.3 where Part 3 allows an empty point (Commit's P1, K and L): size 0 is `null`. */
export const TPM2B_ECC_POINT_OPTIONAL = sizedOf('TPM2B_ECC_POINT', TPMS_ECC_POINT, { optional: true });
export type TPM2B_ECC_POINT_OPTIONAL = Infer<typeof TPM2B_ECC_POINT_OPTIONAL>;

/** §11.2.5.6: an ECC key's scheme. */
export const TPMT_ECC_SCHEME = struct('TPMT_ECC_SCHEME', {
  scheme: orNull(TPMI_ALG_ECC_SCHEME),
  details: union('TPMU_ASYM_SCHEME', 'scheme', {
    [A.ECDAA]: TPMS_SCHEME_ECDAA,
    [A.ECDSA]: TPMS_SCHEME_HASH,
    [A.SM2]: TPMS_SCHEME_HASH,
    [A.ECSCHNORR]: TPMS_SCHEME_HASH,
    [A.ECDH]: TPMS_SCHEME_HASH,
    [A.ECMQV]: TPMS_SCHEME_HASH,
    [A.NULL]: null,
  }),
});
export type TPMT_ECC_SCHEME = Infer<typeof TPMT_ECC_SCHEME>;
/** §11.2.5.7: ECC_Parameters' answer. */
export const TPMS_ALGORITHM_DETAIL_ECC = struct('TPMS_ALGORITHM_DETAIL_ECC', {
  curveID: TPM_ECC_CURVE,
  keySize: UINT16,
  kdf: TPMT_KDF_SCHEME,
  sign: TPMT_ECC_SCHEME,
  p: TPM2B_ECC_PARAMETER,
  a: TPM2B_ECC_PARAMETER,
  b: TPM2B_ECC_PARAMETER,
  gX: TPM2B_ECC_PARAMETER,
  gY: TPM2B_ECC_PARAMETER,
  n: TPM2B_ECC_PARAMETER,
  h: TPM2B_ECC_PARAMETER,
});
export type TPMS_ALGORITHM_DETAIL_ECC = Infer<typeof TPMS_ALGORITHM_DETAIL_ECC>;

// ---------------------------------------------------------------------------
// Part 2 §11.3: signatures

/** §11.3.1: RSASSA/RSAPSS. */
export const TPMS_SIGNATURE_RSA = struct('TPMS_SIGNATURE_RSA', {
  hash: TPMI_ALG_HASH,
  sig: TPM2B_PUBLIC_KEY_RSA,
});
export type TPMS_SIGNATURE_RSA = Infer<typeof TPMS_SIGNATURE_RSA>;
export const TPMS_SIGNATURE_RSASSA = TPMS_SIGNATURE_RSA;
export type TPMS_SIGNATURE_RSASSA = TPMS_SIGNATURE_RSA;
export const TPMS_SIGNATURE_RSAPSS = TPMS_SIGNATURE_RSA;
export type TPMS_SIGNATURE_RSAPSS = TPMS_SIGNATURE_RSA;
/** §11.3.2: ECDSA, ECDAA, SM2, EC-Schnorr. */
export const TPMS_SIGNATURE_ECC = struct('TPMS_SIGNATURE_ECC', {
  hash: TPMI_ALG_HASH,
  signatureR: TPM2B_ECC_PARAMETER,
  signatureS: TPM2B_ECC_PARAMETER,
});
export type TPMS_SIGNATURE_ECC = Infer<typeof TPMS_SIGNATURE_ECC>;
export const TPMS_SIGNATURE_ECDSA = TPMS_SIGNATURE_ECC;
export type TPMS_SIGNATURE_ECDSA = TPMS_SIGNATURE_ECC;
export const TPMS_SIGNATURE_ECDAA = TPMS_SIGNATURE_ECC;
export type TPMS_SIGNATURE_ECDAA = TPMS_SIGNATURE_ECC;
export const TPMS_SIGNATURE_SM2 = TPMS_SIGNATURE_ECC;
export type TPMS_SIGNATURE_SM2 = TPMS_SIGNATURE_ECC;
export const TPMS_SIGNATURE_ECSCHNORR = TPMS_SIGNATURE_ECC;
export type TPMS_SIGNATURE_ECSCHNORR = TPMS_SIGNATURE_ECC;

/** §11.3.4: a signature; NULL (no signing key) carries none, HMAC a TPMT_HA. */
export const TPMT_SIGNATURE = struct('TPMT_SIGNATURE', {
  sigAlg: orNull(TPMI_ALG_SIG_SCHEME),
  signature: union('TPMU_SIGNATURE', 'sigAlg', {
    [A.RSASSA]: TPMS_SIGNATURE_RSA,
    [A.RSAPSS]: TPMS_SIGNATURE_RSA,
    [A.ECDSA]: TPMS_SIGNATURE_ECC,
    [A.ECDAA]: TPMS_SIGNATURE_ECC,
    [A.SM2]: TPMS_SIGNATURE_ECC,
    [A.ECSCHNORR]: TPMS_SIGNATURE_ECC,
    [A.HMAC]: TPMT_HA,
    [A.NULL]: null,
  }),
});
export type TPMT_SIGNATURE = Infer<typeof TPMT_SIGNATURE>;

/**
 * §11.4.33: a secret encrypted to a key: an RSA-OAEP ciphertext, a marshaled
 * TPMS_ECC_POINT, or a TPM2B_DIGEST; kept as bytes (buffer[sizeof(TPMU_ENCRYPTED_SECRET)]).
 */
export const TPM2B_ENCRYPTED_SECRET = sized('TPM2B_ENCRYPTED_SECRET', SIZEOF_TPMU_ENCRYPTED_SECRET);
export type TPM2B_ENCRYPTED_SECRET = Infer<typeof TPM2B_ENCRYPTED_SECRET>;

// ---------------------------------------------------------------------------
// Part 2 §12.2: public area

/** §12.2.3.2 */
export const TPMS_KEYEDHASH_PARMS = struct('TPMS_KEYEDHASH_PARMS', { scheme: TPMT_KEYEDHASH_SCHEME });
export type TPMS_KEYEDHASH_PARMS = Infer<typeof TPMS_KEYEDHASH_PARMS>;
/** §12.2.3.3 */
export const TPMS_ASYM_PARMS = struct('TPMS_ASYM_PARMS', { symmetric: TPMT_SYM_DEF_OBJECT, scheme: TPMT_ASYM_SCHEME });
export type TPMS_ASYM_PARMS = Infer<typeof TPMS_ASYM_PARMS>;
/** §12.2.3.5: `exponent` 0 means 65537. */
export const TPMS_RSA_PARMS = struct('TPMS_RSA_PARMS', {
  symmetric: TPMT_SYM_DEF_OBJECT,
  scheme: TPMT_RSA_SCHEME,
  keyBits: TPMI_RSA_KEY_BITS,
  exponent: UINT32,
});
export type TPMS_RSA_PARMS = Infer<typeof TPMS_RSA_PARMS>;
/** §12.2.3.6 */
export const TPMS_ECC_PARMS = struct('TPMS_ECC_PARMS', {
  symmetric: TPMT_SYM_DEF_OBJECT,
  scheme: TPMT_ECC_SCHEME,
  curveID: TPMI_ECC_CURVE,
  kdf: TPMT_KDF_SCHEME,
});
export type TPMS_ECC_PARMS = Infer<typeof TPMS_ECC_PARMS>;

/** §12.2.3.7: TPMU_PUBLIC_PARMS, chosen by the object type. */
const PUBLIC_PARMS = {
  [A.KEYEDHASH]: TPMS_KEYEDHASH_PARMS,
  [A.SYMCIPHER]: TPMS_SYMCIPHER_PARMS,
  [A.RSA]: TPMS_RSA_PARMS,
  [A.ECC]: TPMS_ECC_PARMS,
} as const;

/** §12.2.3.8: TestParms' argument. */
export const TPMT_PUBLIC_PARMS = struct('TPMT_PUBLIC_PARMS', {
  type: TPMI_ALG_PUBLIC,
  parameters: union('TPMU_PUBLIC_PARMS', 'type', PUBLIC_PARMS),
});
export type TPMT_PUBLIC_PARMS = Infer<typeof TPMT_PUBLIC_PARMS>;

/** TPMT_PUBLIC's layout with a given TPMU_PUBLIC_ID (the real one, or TPMS_DERIVE in a derivation template). */
function publicArea<const U extends Record<(typeof PUBLIC_TYPES)[number], Codec<unknown>>>(unique: U) {
  return struct('TPMT_PUBLIC', {
    type: TPMI_ALG_PUBLIC,
    nameAlg: orNull(TPMI_ALG_HASH),
    objectAttributes: TPMA_OBJECT,
    authPolicy: TPM2B_DIGEST,
    parameters: union('TPMU_PUBLIC_PARMS', 'type', PUBLIC_PARMS),
    unique: union('TPMU_PUBLIC_ID', 'type', unique),
  });
}
const PUBLIC_TYPES = [A.KEYEDHASH, A.SYMCIPHER, A.RSA, A.ECC] as const;

/**
 * §12.2.4: the public area of an object. `unique` is TPMU_PUBLIC_ID: the
 * modulus (RSA), the point (ECC) or a digest (keyedHash, symcipher).
 * nameAlg admits NULL (LoadExternal's "+"); Create/CreatePrimary reject it.
 */
export const TPMT_PUBLIC = publicArea({
  [A.KEYEDHASH]: TPM2B_DIGEST,
  [A.SYMCIPHER]: TPM2B_DIGEST,
  [A.RSA]: TPM2B_PUBLIC_KEY_RSA,
  [A.ECC]: TPMS_ECC_POINT,
});
export type TPMT_PUBLIC = Infer<typeof TPMT_PUBLIC>;

/** §12.2.5: never empty. */
export const TPM2B_PUBLIC = sizedOf('TPM2B_PUBLIC', TPMT_PUBLIC);
export type TPM2B_PUBLIC = Infer<typeof TPM2B_PUBLIC>;
/** §12.2.5 where an empty public area is allowed: size 0 is `null`. */
export const TPM2B_PUBLIC_OPTIONAL = sizedOf('TPM2B_PUBLIC', TPMT_PUBLIC, { optional: true });
export type TPM2B_PUBLIC_OPTIONAL = Infer<typeof TPM2B_PUBLIC_OPTIONAL>;

/**
 * §12.2.6 / Part 3 CreateLoaded: the template for an object under a
 * derivation parent. Same layout as TPMT_PUBLIC except that `unique` is the
 * TPMS_DERIVE (label, context) the key is derived from, whatever the type.
 */
export const TPMT_PUBLIC_DERIVE = publicArea({
  [A.KEYEDHASH]: TPMS_DERIVE,
  [A.SYMCIPHER]: TPMS_DERIVE,
  [A.RSA]: TPMS_DERIVE,
  [A.ECC]: TPMS_DERIVE,
});
export type TPMT_PUBLIC_DERIVE = Infer<typeof TPMT_PUBLIC_DERIVE>;

/**
 * §12.2.6: CreateLoaded's inPublic, buffer[sizeof(TPMT_PUBLIC)]. On the wire
 * it is one sized field, kept as bytes, because its content depends on the
 * parent: a marshaled TPMT_PUBLIC, or under a derivation parent a
 * TPMT_PUBLIC_DERIVE. Build and read it with `templateFromPublic` and
 * `decodeTemplate`, which pick the layout from `{ derivation }`.
 */
export const TPM2B_TEMPLATE = sized('TPM2B_TEMPLATE', SIZEOF_TPMT_PUBLIC);
export type TPM2B_TEMPLATE = Infer<typeof TPM2B_TEMPLATE>;

/** The content of a TPM2B_TEMPLATE for `area` (a TPMT_PUBLIC, or with `derivation` a TPMT_PUBLIC_DERIVE). */
export function templateFromPublic(area: TPMT_PUBLIC, opts?: { derivation?: false }): Uint8Array;
export function templateFromPublic(area: TPMT_PUBLIC_DERIVE, opts: { derivation: true }): Uint8Array;
export function templateFromPublic(area: TPMT_PUBLIC | TPMT_PUBLIC_DERIVE, opts: { derivation?: boolean } = {}): Uint8Array {
  return opts.derivation === true
    ? encode(TPMT_PUBLIC_DERIVE, area as TPMT_PUBLIC_DERIVE)
    : encode(TPMT_PUBLIC, area as TPMT_PUBLIC);
}

/** Reads a TPM2B_TEMPLATE's content; `derivation` says whether the parent is a derivation parent. */
export function decodeTemplate(bytes: Uint8Array, opts?: { derivation?: false }): TPMT_PUBLIC;
export function decodeTemplate(bytes: Uint8Array, opts: { derivation: true }): TPMT_PUBLIC_DERIVE;
export function decodeTemplate(bytes: Uint8Array, opts: { derivation?: boolean } = {}): TPMT_PUBLIC | TPMT_PUBLIC_DERIVE {
  const c: Codec<TPMT_PUBLIC | TPMT_PUBLIC_DERIVE> = opts.derivation === true ? TPMT_PUBLIC_DERIVE : TPMT_PUBLIC;
  return decode(c, bytes);
}

// ---------------------------------------------------------------------------
// Part 2 §12.3: private area

/** §12.3.2.4: the private part of an object, chosen by `sensitiveType`. */
export const TPMT_SENSITIVE = struct('TPMT_SENSITIVE', {
  sensitiveType: TPMI_ALG_PUBLIC,
  authValue: TPM2B_AUTH,
  seedValue: TPM2B_DIGEST,
  sensitive: union('TPMU_SENSITIVE_COMPOSITE', 'sensitiveType', {
    [A.RSA]: TPM2B_PRIVATE_KEY_RSA,
    [A.ECC]: TPM2B_ECC_PARAMETER,
    [A.KEYEDHASH]: TPM2B_SENSITIVE_DATA,
    [A.SYMCIPHER]: TPM2B_SYM_KEY,
  }),
});
export type TPMT_SENSITIVE = Infer<typeof TPMT_SENSITIVE>;
/** §12.3.3: never empty. */
export const TPM2B_SENSITIVE = sizedOf('TPM2B_SENSITIVE', TPMT_SENSITIVE);
export type TPM2B_SENSITIVE = Infer<typeof TPM2B_SENSITIVE>;
/** §12.3.3 where Part 3 allows an empty one (LoadExternal's inPrivate for a public key): size 0 is `null`. */
export const TPM2B_SENSITIVE_OPTIONAL = sizedOf('TPM2B_SENSITIVE', TPMT_SENSITIVE, { optional: true });
export type TPM2B_SENSITIVE_OPTIONAL = Infer<typeof TPM2B_SENSITIVE_OPTIONAL>;

/**
 * §12.3.7: an encrypted _PRIVATE (outer HMAC, then the sensitive area
 * encrypted under the parent), opaque to everyone but the TPM that made it.
 */
export const TPM2B_PRIVATE = sized('TPM2B_PRIVATE', SIZEOF_PRIVATE);
export type TPM2B_PRIVATE = Infer<typeof TPM2B_PRIVATE>;

/**
 * §12.4.3: MakeCredential's credentialBlob: u16 ‖ integrityHMAC ‖ encIdentity,
 * where encIdentity is an encrypted TPM2B (size field included), so it is
 * bytes rather than a TPMS_ID_OBJECT structure; credential.ts builds it.
 */
export const TPM2B_ID_OBJECT = sized('TPM2B_ID_OBJECT', SIZEOF_TPMS_ID_OBJECT);
export type TPM2B_ID_OBJECT = Infer<typeof TPM2B_ID_OBJECT>;
