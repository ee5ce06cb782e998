/**
 * Public-area templates every TPM user needs: the EK templates of the TCG EK
 * Credential Profile (v2.4 r3, §B.3.3 "Template L-1", §B.3.4 "Template L-2")
 * and the SRK templates of the TCG TPM v2.0 Provisioning Guidance (§7.5.1).
 * A template is a TPMT_PUBLIC whose `unique` holds zeros of the key's size:
 * the same template on the same seed gives the same key (Part 1 §27.3, primary objects).
 */
import { TPM_ALG, TPM_ECC } from './constants.js';
import { TPMA_OBJECT, type TPMT_PUBLIC } from './types/index.js';

/** PolicySecret(TPM_RH_ENDORSEMENT) with SHA-256: the EK's authPolicy (EK Credential Profile §B.3.2, "Policy A"). */
export const EK_POLICY_A_SHA256 = Uint8Array.from(
  Buffer.from('837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa', 'hex'),
);

/** fixedTPM | fixedParent | sensitiveDataOrigin | adminWithPolicy | restricted | decrypt = 0x000300B2. */
const EK_ATTRIBUTES = TPMA_OBJECT.of({
  fixedTPM: true,
  fixedParent: true,
  sensitiveDataOrigin: true,
  adminWithPolicy: true,
  restricted: true,
  decrypt: true,
});

/** fixedTPM | fixedParent | sensitiveDataOrigin | userWithAuth | noDA | restricted | decrypt = 0x00030472. */
const SRK_ATTRIBUTES = TPMA_OBJECT.of({
  fixedTPM: true,
  fixedParent: true,
  sensitiveDataOrigin: true,
  userWithAuth: true,
  noDA: true,
  restricted: true,
  decrypt: true,
});

const AES_128_CFB = { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB } as const;

function rsaStorage(attributes: typeof EK_ATTRIBUTES, authPolicy: Uint8Array): TPMT_PUBLIC {
  return {
    type: TPM_ALG.RSA,
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: attributes,
    authPolicy,
    parameters: { symmetric: AES_128_CFB, scheme: { scheme: TPM_ALG.NULL }, keyBits: 2048, exponent: 0 },
    unique: new Uint8Array(256),
  };
}

function eccP256Storage(attributes: typeof EK_ATTRIBUTES, authPolicy: Uint8Array): TPMT_PUBLIC {
  return {
    type: TPM_ALG.ECC,
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: attributes,
    authPolicy,
    parameters: {
      symmetric: AES_128_CFB,
      scheme: { scheme: TPM_ALG.NULL },
      curveID: TPM_ECC.NIST_P256,
      kdf: { scheme: TPM_ALG.NULL },
    },
    unique: { x: new Uint8Array(32), y: new Uint8Array(32) },
  };
}

/** EK Credential Profile template L-1: RSA-2048 EK (certificate at NV 0x01C00002). A fresh copy each call. */
export function rsaEkTemplate(): TPMT_PUBLIC {
  return rsaStorage(EK_ATTRIBUTES, EK_POLICY_A_SHA256.slice());
}

/** EK Credential Profile template L-2: ECC NIST P-256 EK (certificate at NV 0x01C0000A). */
export function eccEkTemplate(): TPMT_PUBLIC {
  return eccP256Storage(EK_ATTRIBUTES, EK_POLICY_A_SHA256.slice());
}

/** Provisioning Guidance SRK template: RSA-2048 storage key, empty auth, no policy. */
export function rsaSrkTemplate(): TPMT_PUBLIC {
  return rsaStorage(SRK_ATTRIBUTES, new Uint8Array(0));
}

/** Provisioning Guidance SRK template: ECC P-256 storage key. */
export function eccSrkTemplate(): TPMT_PUBLIC {
  return eccP256Storage(SRK_ATTRIBUTES, new Uint8Array(0));
}
