/**
 * EK templates of the TCG EK Credential Profile v2.4 r3 (L-1, L-2, H-1 … H-7)
 * and the AK templates: known answers written out here from independent
 * sources, and every template given to swtpm's CreatePrimary.
 *
 * Sources of the known answers:
 * - PolicyB digests and the high-range attributes (ATTRS_B = ATTRS_A |
 *   userWithAuth): tpm2-software/tpm2-tools `tools/tpm2_createek.c` @bc25f71
 *   ("Templates from TCG EK Credential Profile TPM 2.0, Version 2.4 Rev. 3");
 *   the same digests in tpm2-software/tpm2-pytss `src/tpm2_pytss/internal/templates.py`.
 * - High-range symmetric keys (AES-128 for H-1/H-2, AES-256 for H-3/H-4/H-6/H-7,
 *   SM4-128 for H-5), empty `unique`, and the certificate indices: tpm2-pytss
 *   `internal/templates.py`; tpm-spec-facts.md §8 for the indices.
 * - Layout: stefanberger/swtpm v0.7.1 `src/swtpm_setup/swtpm.c` reads the
 *   public key from CreatePrimary's response at fixed offsets (`off`): 76 for
 *   L-1, 92 for RSA-3072 (H-6), 90 for the P-384 EK (H-3). The response has
 *   20 bytes before TPMT_PUBLIC (header 10, handle 4, parameterSize 4,
 *   TPM2B size 2), so the bytes before `unique` are 56, 72 and 70 long.
 * The Names are nameAlg ‖ H(the bytes written out below), hashed with node:crypto.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreatePrimary, FlushContext, Startup } from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_RH, TPM_SU } from '../../src/tpm/constants.js';
import { objectName } from '../../src/tpm/names.js';
import { TpmError } from '../../src/tpm/rc.js';
import { runCommand } from '../../src/tpm/run.js';
import { publicKeyFromArea } from '../../src/tpm/secret.js';
import {
  AK_ATTRIBUTES,
  EK_TEMPLATE_IDS,
  EK_TEMPLATES,
  eccAkTemplate,
  eccEkTemplate,
  ekTemplate,
  ekTemplateByCertificateIndex,
  rsaAkTemplate,
  rsaEkTemplate,
  templateMismatches,
  type EkTemplateId,
} from '../../src/tpm/templates.js';
import { SwtpmTransport, type Transport } from '../../src/tpm/transport/index.js';
import { TPMA_OBJECT, TPMT_PUBLIC } from '../../src/tpm/types/index.js';
import { decode, encode } from '../../src/tpm/wire/codec.js';
import { describeWithSwtpm, startSwtpm, type SwtpmInstance } from '../support/swtpm.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

// tpm2_createek.c: policy_a_sha256, policy_b_sha256/384/512, policy_b_sm3_256.
const POLICY_A = '837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa';
const POLICY_B_SHA256 = 'ca3d0a99a2b93906f7a3342414efcfb3a385d44cd1fd459089d19b5071c0b7a0';
const POLICY_B_SHA384 = 'b26e7d28d11a50bc53d882bcf5fd3a1a074148bb35d3b4e4cb1c0ad9bde419cacb47ba09699646150f9fc000f3f80e12';
const POLICY_B_SHA512 =
  'b8221ca69e8550a4914de3faa6a18c072cc01208073a928d5d66d59ef79e49a429c41a6b269571d57edb25fbdb1838425608b413cd616a5f6db5b6071af99bea';
const POLICY_B_SM3 = '167860a35f2c5c3567f9c927ac56c032f3b3a6462f8d037998e7a10f77fa454a';

const ATTRS_A = '000300b2';
const ATTRS_B = '000300f2';

/** Every template's marshaled TPMT_PUBLIC, field by field, and where it came from. */
const EXPECTED: Record<EkTemplateId, { bytes: string; hash: string; certIndex: number }> = {
  // type RSA, SHA-256, ATTRS_A, PolicyA, AES-128-CFB, scheme NULL, 2048 bits, exponent 0, unique 256 zero bytes.
  'L-1': { bytes: `0001 000b ${ATTRS_A} 0020 ${POLICY_A} 0006 0080 0043 0010 0800 00000000 0100 ${'00'.repeat(256)}`, hash: 'sha256', certIndex: 0x01c00002 },
  // type ECC, SHA-256, ATTRS_A, PolicyA, AES-128-CFB, scheme NULL, NIST P-256, kdf NULL, x and y 32 zero bytes.
  'L-2': { bytes: `0023 000b ${ATTRS_A} 0020 ${POLICY_A} 0006 0080 0043 0010 0003 0010 0020 ${'00'.repeat(32)} 0020 ${'00'.repeat(32)}`, hash: 'sha256', certIndex: 0x01c0000a },
  'H-1': { bytes: `0001 000b ${ATTRS_B} 0020 ${POLICY_B_SHA256} 0006 0080 0043 0010 0800 00000000 0000`, hash: 'sha256', certIndex: 0x01c00012 },
  'H-2': { bytes: `0023 000b ${ATTRS_B} 0020 ${POLICY_B_SHA256} 0006 0080 0043 0010 0003 0010 0000 0000`, hash: 'sha256', certIndex: 0x01c00014 },
  'H-3': { bytes: `0023 000c ${ATTRS_B} 0030 ${POLICY_B_SHA384} 0006 0100 0043 0010 0004 0010 0000 0000`, hash: 'sha384', certIndex: 0x01c00016 },
  'H-4': { bytes: `0023 000d ${ATTRS_B} 0040 ${POLICY_B_SHA512} 0006 0100 0043 0010 0005 0010 0000 0000`, hash: 'sha512', certIndex: 0x01c00018 },
  // SM3_256 nameAlg (0x0012), SM4 (0x0013) 128-bit CFB, curve SM2_P256 (0x0020).
  'H-5': { bytes: `0023 0012 ${ATTRS_B} 0020 ${POLICY_B_SM3} 0013 0080 0043 0010 0020 0010 0000 0000`, hash: 'sm3', certIndex: 0x01c0001a },
  'H-6': { bytes: `0001 000c ${ATTRS_B} 0030 ${POLICY_B_SHA384} 0006 0100 0043 0010 0c00 00000000 0000`, hash: 'sha384', certIndex: 0x01c0001c },
  'H-7': { bytes: `0001 000c ${ATTRS_B} 0030 ${POLICY_B_SHA384} 0006 0100 0043 0010 1000 00000000 0000`, hash: 'sha384', certIndex: 0x01c0001e },
};

/** Bytes before `unique`, from swtpm_setup's response offsets minus the 20-byte response prefix. */
const BEFORE_UNIQUE: Partial<Record<EkTemplateId, number>> = { 'L-1': 76 - 20, 'H-6': 92 - 20, 'H-3': 90 - 20 };

describe('EK templates: known answers', () => {
  for (const id of EK_TEMPLATE_IDS) {
    it(`${id} (${EK_TEMPLATES[id].description}) marshals to the profile's bytes; Name and certificate index`, () => {
      const want = EXPECTED[id];
      const t = ekTemplate(id);
      const bytes = encode(TPMT_PUBLIC, t);
      expect(hex(bytes)).toBe(want.bytes.replace(/\s+/g, ''));
      expect(decode(TPMT_PUBLIC, bytes)).toEqual(t);
      const nameAlg = hex(bytes.subarray(2, 4));
      expect(hex(objectName(t))).toBe(nameAlg + createHash(want.hash).update(bytes).digest('hex'));
      expect(EK_TEMPLATES[id].certificateIndex).toBe(want.certIndex);
      expect(ekTemplateByCertificateIndex(want.certIndex)?.id).toBe(id);
      const before = BEFORE_UNIQUE[id];
      if (before !== undefined) {
        // The unique field starts at swtpm_setup's offset: its size (0 or the modulus/x size) sits there.
        expect(hex(bytes.subarray(before, before + 2))).toBe(id === 'L-1' ? '0100' : '0000');
      }
    });
  }

  it('ranges: low templates have ATTRS_A and a nonce index, high ones ATTRS_B, an empty unique and none', () => {
    for (const id of EK_TEMPLATE_IDS) {
      const info = EK_TEMPLATES[id];
      const word = TPMA_OBJECT.toWord(info.template().objectAttributes);
      if (info.range === 'low') {
        expect(word).toBe(0x000300b2);
        expect(info.nonceIndex).toBe(info.certificateIndex + 1);
        expect(info.templateIndex).toBe(info.certificateIndex + 2);
      } else {
        expect(word).toBe(0x000300f2);
        expect(info.nonceIndex).toBeUndefined();
        expect(info.templateIndex).toBe(info.certificateIndex + 1);
      }
    }
    // Provisioning Guidance handles for the low range; swtpm_setup's for H-3 (0x81010016).
    expect(EK_TEMPLATES['L-1'].persistentHandle).toBe(0x81010001);
    expect(EK_TEMPLATES['L-2'].persistentHandle).toBe(0x81010002);
    expect(EK_TEMPLATES['H-3'].persistentHandle).toBe(0x81010016);
  });

  it('the named templates equal the long-standing L-1 / L-2 functions and come as fresh copies', () => {
    expect(ekTemplate('L-1')).toEqual(rsaEkTemplate());
    expect(ekTemplate('L-2')).toEqual(eccEkTemplate());
    const a = ekTemplate('H-3');
    a.authPolicy.fill(0);
    expect(hex(ekTemplate('H-3').authPolicy)).toBe(POLICY_B_SHA384);
    expect(() => ekTemplate('H-9' as EkTemplateId)).toThrow(RangeError);
  });

  it('AK templates: restricted signing keys with SHA-256 schemes, bytes written out', () => {
    expect(TPMA_OBJECT.toWord(AK_ATTRIBUTES)).toBe(0x00050072);
    // RSA, SHA-256, 0x00050072, no policy, symmetric NULL, RSASSA-SHA256, 2048, exponent 0, empty unique.
    expect(hex(encode(TPMT_PUBLIC, rsaAkTemplate()))).toBe('0001000b000500720000' + '0010' + '0014000b' + '0800' + '00000000' + '0000');
    // ECC, SHA-256, 0x00050072, no policy, symmetric NULL, ECDSA-SHA256, P-256, kdf NULL, empty x and y.
    expect(hex(encode(TPMT_PUBLIC, eccAkTemplate()))).toBe('0023000b000500720000' + '0010' + '0018000b' + '0003' + '0010' + '00000000');
  });
});

describe('templateMismatches', () => {
  const base = (): TPMT_PUBLIC => ekTemplate('H-3');

  it('ignores unique and reports every other field that differs', () => {
    const t = base();
    if (t.type !== TPM_ALG.ECC) throw new Error('H-3 is ECC');
    expect(templateMismatches(t, { ...t, unique: { x: new Uint8Array(48).fill(1), y: new Uint8Array(48).fill(2) } })).toEqual([]);
    expect(templateMismatches(t, { ...t, nameAlg: TPM_ALG.SHA256 })).toEqual(['nameAlg']);
    expect(templateMismatches(t, { ...t, objectAttributes: TPMA_OBJECT.of({ ...t.objectAttributes, userWithAuth: false }) })).toEqual(['objectAttributes']);
    expect(templateMismatches(t, { ...t, authPolicy: unhex(POLICY_A) })).toEqual(['authPolicy']);
    const p256 = { ...t, parameters: { ...t.parameters, curveID: 0x0003 } } as TPMT_PUBLIC;
    expect(templateMismatches(t, p256)).toEqual(['parameters']);
    const aes128 = { ...t, parameters: { ...t.parameters, symmetric: { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB } } } as TPMT_PUBLIC;
    expect(templateMismatches(t, aes128)).toEqual(['parameters']);
    expect(templateMismatches(t, { ...aes128, nameAlg: TPM_ALG.SHA256, authPolicy: new Uint8Array(0) })).toEqual(['nameAlg', 'authPolicy', 'parameters']);
    expect(templateMismatches(t, ekTemplate('H-1'))).toEqual(['type']);
  });

  it('tells the low-range RSA EK from the high-range one (attributes, policy, unique aside)', () => {
    expect(templateMismatches(ekTemplate('L-1'), ekTemplate('H-1'))).toEqual(['objectAttributes', 'authPolicy']);
    expect(templateMismatches(ekTemplate('L-2'), ekTemplate('H-2'))).toEqual(['objectAttributes', 'authPolicy']);
  });
});

describeWithSwtpm('EK templates on swtpm (libtpms)', () => {
  let sw: SwtpmInstance;
  let t: Transport;

  beforeAll(async () => {
    sw = await startSwtpm();
    t = new SwtpmTransport({ port: sw.port, ctrlPort: sw.ctrlPort });
    await runCommand(t, Startup, {}, { startupType: TPM_SU.CLEAR });
  });
  afterAll(async () => {
    await t?.close();
    await sw?.stop();
  });

  async function createPrimary(template: TPMT_PUBLIC): Promise<{ handle: number; outPublic: TPMT_PUBLIC; name: Uint8Array }> {
    const r = await runCommand(
      t,
      CreatePrimary,
      { primaryHandle: TPM_RH.ENDORSEMENT },
      { inSensitive: { userAuth: new Uint8Array(0), data: new Uint8Array(0) }, inPublic: template, outsideInfo: new Uint8Array(0), creationPCR: [] },
    );
    return { handle: r.handles.objectHandle, outPublic: r.params.outPublic, name: r.params.name };
  }

  // libtpms 0.9.2 (Debian bookworm) has neither SM3/SM4 nor RSA-4096.
  const SUPPORTED: EkTemplateId[] = ['L-1', 'L-2', 'H-1', 'H-2', 'H-3', 'H-4', 'H-6'];

  for (const id of SUPPORTED) {
    it(`${id}: CreatePrimary returns the template with a key of its size, twice the same key, and the Name of that public area`, async () => {
      const template = ekTemplate(id);
      const first = await createPrimary(template);
      const second = await createPrimary(template);
      try {
        expect(templateMismatches(template, first.outPublic)).toEqual([]);
        expect(hex(first.name)).toBe(hex(objectName(first.outPublic)));
        // Primary keys come from the seed and the template only (Part 1 §27.3): the same key again.
        expect(hex(encode(TPMT_PUBLIC, second.outPublic))).toBe(hex(encode(TPMT_PUBLIC, first.outPublic)));
        const key = publicKeyFromArea(first.outPublic);
        if (first.outPublic.type === TPM_ALG.RSA) {
          expect(key.asymmetricKeyDetails?.modulusLength).toBe(first.outPublic.parameters.keyBits);
        } else {
          const curve = { 'H-3': 'secp384r1', 'H-4': 'secp521r1' }[id as string] ?? 'prime256v1';
          expect(key.asymmetricKeyDetails?.namedCurve).toBe(curve);
        }
      } finally {
        await runCommand(t, FlushContext, {}, { flushHandle: first.handle });
        await runCommand(t, FlushContext, {}, { flushHandle: second.handle });
      }
    });
  }

  for (const id of ['H-5', 'H-7'] as const) {
    it(`${id}: libtpms refuses the template (no SM3/SM4, no RSA-4096) with a TPM error`, async () => {
      const err = await createPrimary(ekTemplate(id)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TpmError);
    });
  }
});
