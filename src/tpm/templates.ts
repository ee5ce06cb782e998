/**
 * Public-area templates every TPM user needs: the EK templates of the TCG EK
 * Credential Profile v2.4 r3 (Annex B.3: low range L-1, L-2; high range
 * H-1 … H-7), the SRK templates of the TCG TPM v2.0 Provisioning Guidance
 * (§7.5.1), and attestation-key (AK) templates as `tpm2_createak` makes them.
 *
 * A low-range template's `unique` holds zeros of the key's size (the EK nonce
 * fields); a high-range template's `unique` is empty. Either way the same
 * template on the same seed gives the same key (Part 1 §27.3, primary objects),
 * so a public area derived from a template identifies its certificate.
 *
 * The high-range values (attributes with userWithAuth SET, PolicyB of the
 * nameAlg, AES-128 for the 256-bit curves and RSA-2048, AES-256 above, SM4
 * for SM2) agree across tpm2-tools `tools/tpm2_createek.c` (which cites v2.4
 * r3), tpm2-pytss `internal/templates.py` and swtpm `swtpm_setup` (H-3);
 * test/tpm/templates.test.ts checks them against those sources and swtpm.
 */
import { TPM_ALG, TPM_ECC } from './constants.js';
import { encode } from './wire/codec.js';
import { ekPolicyB } from './policy.js';
import { TPMA_OBJECT, TPMT_PUBLIC_PARMS, type TPMT_PUBLIC, type TPMT_SYM_DEF_OBJECT } from './types/index.js';
import { equalBytes } from './bytes.js';

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

/**
 * The high range adds userWithAuth (0x000300F2): with an empty authValue the
 * EK is usable with a password or HMAC session, the policy stays for admin
 * (tpm2_createek "ATTRS_B"; swtpm_setup "userWithAuth (high range)").
 */
const EK_HIGH_ATTRIBUTES = TPMA_OBJECT.of({
  fixedTPM: true,
  fixedParent: true,
  sensitiveDataOrigin: true,
  userWithAuth: true,
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

/**
 * An attestation key: fixedTPM | fixedParent | sensitiveDataOrigin |
 * userWithAuth | restricted | sign = 0x00050072. Restricted, so it signs only
 * digests the TPM computed itself (quotes, certifications) and never an
 * outside digest that could pass for a TPMS_ATTEST (Part 1 §25.2.4).
 */
export const AK_ATTRIBUTES = TPMA_OBJECT.of({
  fixedTPM: true,
  fixedParent: true,
  sensitiveDataOrigin: true,
  userWithAuth: true,
  restricted: true,
  sign: true,
});

const AES_128_CFB = { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB } as const;
const AES_256_CFB = { algorithm: TPM_ALG.AES, keyBits: 256, mode: TPM_ALG.CFB } as const;
const SM4_128_CFB = { algorithm: TPM_ALG.SM4, keyBits: 128, mode: TPM_ALG.CFB } as const;

type RsaBits = 2048 | 3072 | 4096;
type EccCurve = typeof TPM_ECC.NIST_P256 | typeof TPM_ECC.NIST_P384 | typeof TPM_ECC.NIST_P521 | typeof TPM_ECC.SM2_P256;

function rsaStorage(
  nameAlg: TPMT_PUBLIC['nameAlg'],
  attributes: TPMA_OBJECT,
  authPolicy: Uint8Array,
  symmetric: TPMT_SYM_DEF_OBJECT,
  keyBits: RsaBits,
  unique: Uint8Array,
): TPMT_PUBLIC {
  return {
    type: TPM_ALG.RSA,
    nameAlg,
    objectAttributes: attributes,
    authPolicy,
    parameters: { symmetric, scheme: { scheme: TPM_ALG.NULL }, keyBits, exponent: 0 },
    unique,
  };
}

function eccStorage(
  nameAlg: TPMT_PUBLIC['nameAlg'],
  attributes: TPMA_OBJECT,
  authPolicy: Uint8Array,
  symmetric: TPMT_SYM_DEF_OBJECT,
  curveID: EccCurve,
  coordinateBytes: number,
): TPMT_PUBLIC {
  return {
    type: TPM_ALG.ECC,
    nameAlg,
    objectAttributes: attributes,
    authPolicy,
    parameters: { symmetric, scheme: { scheme: TPM_ALG.NULL }, curveID, kdf: { scheme: TPM_ALG.NULL } },
    unique: { x: new Uint8Array(coordinateBytes), y: new Uint8Array(coordinateBytes) },
  };
}

/** EK Credential Profile template L-1: RSA-2048 EK (certificate at NV 0x01C00002). A fresh copy each call. */
export function rsaEkTemplate(): TPMT_PUBLIC {
  return rsaStorage(TPM_ALG.SHA256, EK_ATTRIBUTES, EK_POLICY_A_SHA256.slice(), AES_128_CFB, 2048, new Uint8Array(256));
}

/** EK Credential Profile template L-2: ECC NIST P-256 EK (certificate at NV 0x01C0000A). */
export function eccEkTemplate(): TPMT_PUBLIC {
  return eccStorage(TPM_ALG.SHA256, EK_ATTRIBUTES, EK_POLICY_A_SHA256.slice(), AES_128_CFB, TPM_ECC.NIST_P256, 32);
}

/** Provisioning Guidance SRK template: RSA-2048 storage key, empty auth, no policy. */
export function rsaSrkTemplate(): TPMT_PUBLIC {
  return rsaStorage(TPM_ALG.SHA256, SRK_ATTRIBUTES, new Uint8Array(0), AES_128_CFB, 2048, new Uint8Array(256));
}

/** Provisioning Guidance SRK template: ECC P-256 storage key. */
export function eccSrkTemplate(): TPMT_PUBLIC {
  return eccStorage(TPM_ALG.SHA256, SRK_ATTRIBUTES, new Uint8Array(0), AES_128_CFB, TPM_ECC.NIST_P256, 32);
}

// ---------------------------------------------------------------------------
// The EK Credential Profile's templates, by name

/** The profile's names for its EK templates (Annex B.3). */
export type EkTemplateId = 'L-1' | 'L-2' | 'H-1' | 'H-2' | 'H-3' | 'H-4' | 'H-5' | 'H-6' | 'H-7';

export const EK_TEMPLATE_IDS: readonly EkTemplateId[] = ['L-1', 'L-2', 'H-1', 'H-2', 'H-3', 'H-4', 'H-5', 'H-6', 'H-7'];

/** Where a TPM keeps the EK of one template, and how to build it. */
export interface EkTemplateInfo {
  readonly id: EkTemplateId;
  readonly range: 'low' | 'high';
  /** e.g. "RSA 2048", "ECC NIST P384". */
  readonly description: string;
  /** NV Index of the EK certificate (EK Credential Profile §2.2.1.4 low range, §2.2.1.5 high range). */
  readonly certificateIndex: number;
  /** NV Index that may hold a replacement template (the certificate index + 1 in the high range, + 2 in the low range). */
  readonly templateIndex: number;
  /** NV Index of the EK nonce (low range only; the high range never populates one). */
  readonly nonceIndex: number | undefined;
  /**
   * The persistent handle an EK of this template is conventionally kept at:
   * 0x81010001 / 0x81010002 for L-1 / L-2 (TCG TPM v2.0 Provisioning
   * Guidance), and for the high range swtpm_setup's 0x81010000 + the low
   * byte of the certificate index (H-3 at 0x81010016), which no TCG
   * document assigns.
   */
  readonly persistentHandle: number;
  /** The template, a fresh copy each call. */
  template(): TPMT_PUBLIC;
}

function high(
  id: EkTemplateId,
  description: string,
  certificateIndex: number,
  build: () => TPMT_PUBLIC,
): EkTemplateInfo {
  return {
    id,
    range: 'high',
    description,
    certificateIndex,
    templateIndex: certificateIndex + 1,
    nonceIndex: undefined,
    persistentHandle: (0x81010000 | (certificateIndex & 0xff)) >>> 0,
    template: build,
  };
}

/**
 * Every EK template of the profile. The high-range templates carry PolicyB
 * of their nameAlg (ekPolicyB in policy.ts: PolicyOR of PolicySecret(endorsement)
 * and PolicyAuthorizeNV of the profile's Policy Index) and an empty `unique`.
 */
export const EK_TEMPLATES: Readonly<Record<EkTemplateId, EkTemplateInfo>> = {
  'L-1': {
    id: 'L-1',
    range: 'low',
    description: 'RSA 2048',
    certificateIndex: 0x01c00002,
    nonceIndex: 0x01c00003,
    templateIndex: 0x01c00004,
    persistentHandle: 0x81010001,
    template: rsaEkTemplate,
  },
  'L-2': {
    id: 'L-2',
    range: 'low',
    description: 'ECC NIST P256',
    certificateIndex: 0x01c0000a,
    nonceIndex: 0x01c0000b,
    templateIndex: 0x01c0000c,
    persistentHandle: 0x81010002,
    template: eccEkTemplate,
  },
  'H-1': high('H-1', 'RSA 2048', 0x01c00012, () =>
    rsaStorage(TPM_ALG.SHA256, EK_HIGH_ATTRIBUTES, ekPolicyB(TPM_ALG.SHA256), AES_128_CFB, 2048, new Uint8Array(0)),
  ),
  'H-2': high('H-2', 'ECC NIST P256', 0x01c00014, () =>
    eccStorage(TPM_ALG.SHA256, EK_HIGH_ATTRIBUTES, ekPolicyB(TPM_ALG.SHA256), AES_128_CFB, TPM_ECC.NIST_P256, 0),
  ),
  'H-3': high('H-3', 'ECC NIST P384', 0x01c00016, () =>
    eccStorage(TPM_ALG.SHA384, EK_HIGH_ATTRIBUTES, ekPolicyB(TPM_ALG.SHA384), AES_256_CFB, TPM_ECC.NIST_P384, 0),
  ),
  'H-4': high('H-4', 'ECC NIST P521', 0x01c00018, () =>
    eccStorage(TPM_ALG.SHA512, EK_HIGH_ATTRIBUTES, ekPolicyB(TPM_ALG.SHA512), AES_256_CFB, TPM_ECC.NIST_P521, 0),
  ),
  'H-5': high('H-5', 'ECC SM2 P256', 0x01c0001a, () =>
    eccStorage(TPM_ALG.SM3_256, EK_HIGH_ATTRIBUTES, ekPolicyB(TPM_ALG.SM3_256), SM4_128_CFB, TPM_ECC.SM2_P256, 0),
  ),
  'H-6': high('H-6', 'RSA 3072', 0x01c0001c, () =>
    rsaStorage(TPM_ALG.SHA384, EK_HIGH_ATTRIBUTES, ekPolicyB(TPM_ALG.SHA384), AES_256_CFB, 3072, new Uint8Array(0)),
  ),
  'H-7': high('H-7', 'RSA 4096', 0x01c0001e, () =>
    rsaStorage(TPM_ALG.SHA384, EK_HIGH_ATTRIBUTES, ekPolicyB(TPM_ALG.SHA384), AES_256_CFB, 4096, new Uint8Array(0)),
  ),
};

/**
 * The EK template `id` of the EK Credential Profile, a fresh copy.
 * @throws RangeError for an unknown id.
 */
export function ekTemplate(id: EkTemplateId): TPMT_PUBLIC {
  const info = (EK_TEMPLATES as Readonly<Record<string, EkTemplateInfo>>)[id];
  if (info === undefined) throw new RangeError(`unknown EK template ${String(id)}: expected one of ${EK_TEMPLATE_IDS.join(', ')}`);
  return info.template();
}

/** The profile template whose certificate lives at `index`, if any. */
export function ekTemplateByCertificateIndex(index: number): EkTemplateInfo | undefined {
  return EK_TEMPLATE_IDS.map((id) => EK_TEMPLATES[id]).find((t) => t.certificateIndex === index);
}

// ---------------------------------------------------------------------------
// Attestation keys

/** An RSA-2048 AK signing with RSASSA-PKCS1-v1_5 over SHA-256 (`tpm2_createak -G rsa -s rsassa`). */
export function rsaAkTemplate(): TPMT_PUBLIC {
  return {
    type: TPM_ALG.RSA,
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: AK_ATTRIBUTES,
    authPolicy: new Uint8Array(0),
    parameters: {
      symmetric: { algorithm: TPM_ALG.NULL },
      scheme: { scheme: TPM_ALG.RSASSA, details: { hashAlg: TPM_ALG.SHA256 } },
      keyBits: 2048,
      exponent: 0,
    },
    unique: new Uint8Array(0),
  };
}

/** An ECC NIST P-256 AK signing with ECDSA over SHA-256 (`tpm2_createak -G ecc -s ecdsa`). */
export function eccAkTemplate(): TPMT_PUBLIC {
  return {
    type: TPM_ALG.ECC,
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: AK_ATTRIBUTES,
    authPolicy: new Uint8Array(0),
    parameters: {
      symmetric: { algorithm: TPM_ALG.NULL },
      scheme: { scheme: TPM_ALG.ECDSA, details: { hashAlg: TPM_ALG.SHA256 } },
      curveID: TPM_ECC.NIST_P256,
      kdf: { scheme: TPM_ALG.NULL },
    },
    unique: { x: new Uint8Array(0), y: new Uint8Array(0) },
  };
}

// ---------------------------------------------------------------------------
// Comparing a public area with its template

/** The TPMT_PUBLIC fields a template fixes; `unique` is the key itself and is not compared. */
export type TemplateField = 'type' | 'nameAlg' | 'objectAttributes' | 'authPolicy' | 'parameters';


/**
 * The fields in which `publicArea` differs from `template`, in TPMT_PUBLIC
 * order; empty when the public area could have come from the template (a
 * persistent EK, or what CreatePrimary/Create returned). `unique` is ignored:
 * it holds the key. Parameters are compared as marshaled bytes, so a
 * difference anywhere (symmetric, scheme, key size, curve, exponent, KDF) counts.
 */
export function templateMismatches(template: TPMT_PUBLIC, publicArea: TPMT_PUBLIC): TemplateField[] {
  const out: TemplateField[] = [];
  if (publicArea.type !== template.type) return ['type'];
  if (publicArea.nameAlg !== template.nameAlg) out.push('nameAlg');
  if (TPMA_OBJECT.toWord(publicArea.objectAttributes) !== TPMA_OBJECT.toWord(template.objectAttributes)) out.push('objectAttributes');
  if (!equalBytes(publicArea.authPolicy, template.authPolicy)) out.push('authPolicy');
  const parms = (p: TPMT_PUBLIC): Uint8Array => encode(TPMT_PUBLIC_PARMS, { type: p.type, parameters: p.parameters } as TPMT_PUBLIC_PARMS);
  if (!equalBytes(parms(publicArea), parms(template))) out.push('parameters');
  return out;
}
