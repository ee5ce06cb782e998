/**
 * EKs and EK certificates against an swtpm manufactured by Debian's
 * swtpm_setup (test/support/swtpm-setup.ts): an RSA-2048 EK (L-1) at
 * 0x81010001 and an ECC P-384 EK (H-3) at 0x81010016, each with a
 * certificate from swtpm_localca in NV (0x01C00002, 0x01C00016).
 *
 * The checks are independent of the code under test: swtpm_setup built its
 * EKs from its own templates, so getting the same key again from our
 * template with CreatePrimary shows the templates are byte for byte the same;
 * node:crypto's X509Certificate reads the certificates (their public key must
 * be the EK's, their signature the local CA's); PolicyGetDigest shows what the
 * TPM computed for the EK policy session; padded, truncated and non-DER
 * certificates are written into NV indices defined here.
 *
 * The fixture differs by TPM, so the simulator has its own describe at the
 * end: our software TPM as it manufactures itself (L-1 and L-2 certificates
 * from its own CA, no persisted EKs).
 */
import { randomBytes, X509Certificate } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  checkTemplateSupported,
  createEk,
  getEk,
  readEkCertificate,
  readEkCertificates,
  satisfyEkPolicy,
  trimDerCertificate,
  withEk,
  withEkPolicy,
} from '../../src/client/ek.js';
import { Tpm } from '../../src/client/index.js';
import { readCapability } from '../../src/tpm/capability.js';
import { CreatePrimary, GetCapability, NV_DefineSpace, NV_ReadPublic, NV_UndefineSpace, NV_Write, PolicyGetDigest, ReadPublic, Startup } from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_CAP, TPM_PT, TPM_RH, TPM_SU } from '../../src/tpm/constants.js';
import { IdentityError, UnsupportedAlgorithmError } from '../../src/tpm/errors.js';
import { objectName } from '../../src/tpm/names.js';
import { publicKeyFromArea } from '../../src/tpm/secret.js';
import { EK_TEMPLATES, ekTemplate } from '../../src/tpm/templates.js';
import { SwtpmTransport } from '../../src/tpm/transport/index.js';
import { TPMA_NV, TPMT_PUBLIC, type TPMS_NV_PUBLIC } from '../../src/tpm/types/index.js';
import { encode } from '../../src/tpm/wire/codec.js';
import { describeWithSwtpmSetup, startSwtpmWithCertificates, type SwtpmWithCertificates } from '../support/swtpm-setup.js';
import { describeOn, startTpm, type TpmUnderTest } from '../support/tpm-under-test.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const spki = (pub: TPMT_PUBLIC): string => hex(publicKeyFromArea(pub).export({ type: 'spki', format: 'der' }));

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error('expected a throw');
}

describe('trimDerCertificate', () => {
  const seq = (content: number[]): number[] => {
    const n = content.length;
    const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
    return [0x30, ...len, ...content];
  };

  it('keeps exactly the outer SEQUENCE, short and long length forms, whatever follows', () => {
    for (const size of [0, 5, 0x7f, 0x80, 0xff, 0x100, 1500]) {
      const cert = seq(Array.from({ length: size }, (_, i) => i & 0xff));
      for (const pad of [[], [0, 0, 0], new Array<number>(300).fill(0xff)]) {
        const got = trimDerCertificate(Uint8Array.from([...cert, ...pad]));
        expect(hex(got)).toBe(hex(Uint8Array.from(cert)));
      }
    }
  });

  it('refuses what is not a complete DER SEQUENCE, with identity.certificate', () => {
    const bad: Array<[string, number[]]> = [
      ['empty', []],
      ['one byte', [0x30]],
      ['not a SEQUENCE', [0x04, 0x02, 1, 2]],
      ['indefinite length', [0x30, 0x80, 0x02, 0x01, 0x00, 0x00, 0x00]],
      ['five length bytes', [0x30, 0x85, 0, 0, 0, 0, 1, 0]],
      ['length bytes missing', [0x30, 0x82, 0x01]],
      ['declares more than present', [0x30, 0x82, 0x01, 0x00, ...new Array<number>(200).fill(0)]],
      ['short form, one byte short', [0x30, 0x03, 1, 2]],
    ];
    for (const [what, bytes] of bad) {
      const e = thrown(() => trimDerCertificate(Uint8Array.from(bytes), 0x01c00002));
      expect(e, what).toBeInstanceOf(IdentityError);
      expect((e as IdentityError).code, what).toBe('identity.certificate');
      expect((e as IdentityError).handle, what).toBe(0x01c00002);
    }
  });
});

describeWithSwtpmSetup('EK and EK certificates on an swtpm manufactured by swtpm_setup', () => {
  let sw: SwtpmWithCertificates;
  let tpm: Tpm;
  let nvBufferMax = 0;

  beforeAll(async () => {
    sw = await startSwtpmWithCertificates();
    tpm = new Tpm(new SwtpmTransport({ port: sw.port, ctrlPort: sw.ctrlPort }));
    await tpm.run(Startup, {}, { startupType: TPM_SU.CLEAR });
    const r = await tpm.run(GetCapability, {}, { capability: TPM_CAP.TPM_PROPERTIES, property: TPM_PT.NV_BUFFER_MAX, propertyCount: 1 });
    const d = r.params.capabilityData;
    if (d.capability === TPM_CAP.TPM_PROPERTIES) nvBufferMax = d.data[0]!.value;
  }, 90_000);
  afterAll(async () => {
    await tpm?.close();
    await sw?.stop();
  });

  /** Nothing transient may stay behind: no objects, no sessions. */
  afterEach(async () => {
    expect(await readCapability(tpm.transport, TPM_CAP.HANDLES, [0x80000000])).toEqual([]);
    expect(await readCapability(tpm.transport, TPM_CAP.HANDLES, [0x02000000, 0x03000000])).toEqual([]);
  });

  it("finds swtpm_setup's persisted L-1 and H-3 EKs, and the same keys come from our templates", async () => {
    const rsa = await getEk(tpm, { template: 'L-1' });
    expect(rsa).toMatchObject({ handle: 0x81010001, persistent: true, template: 'L-1' });
    const ecc = await getEk(tpm, { template: 'H-3' });
    expect(ecc).toMatchObject({ handle: 0x81010016, persistent: true, template: 'H-3' });
    for (const ek of [rsa, ecc]) {
      // The Name is computed from the public area, and the TPM agrees.
      const rp = await tpm.run(ReadPublic, { objectHandle: ek.handle }, {});
      expect(hex(ek.name)).toBe(hex(rp.params.name));
      expect(hex(ek.name)).toBe(hex(objectName(ek.publicArea)));
      // A primary key depends on the exact template bytes (unique included), so CreatePrimary
      // from our template gives swtpm_setup's key only if both templates are identical.
      const fresh = await createEk(tpm, { template: ek.template });
      try {
        expect(fresh.persistent).toBe(false);
        expect(fresh.handle >>> 24).toBe(0x80);
        expect(hex(encode(TPMT_PUBLIC, fresh.publicArea))).toBe(hex(encode(TPMT_PUBLIC, ek.publicArea)));
      } finally {
        await tpm.flush(fresh);
      }
    }
    expect(ecc.publicArea.type === TPM_ALG.ECC && ecc.publicArea.unique.x.length).toBe(48);
  });

  it('reads the RSA and ECC EK certificates: their public keys are the EKs, signed by the local CA', async () => {
    const issuer = new X509Certificate(sw.issuerCertificatePem);
    const root = new X509Certificate(sw.rootCertificatePem);
    expect(issuer.verify(root.publicKey)).toBe(true);
    for (const id of ['L-1', 'H-3'] as const) {
      const der = await readEkCertificate(tpm, id);
      expect(der).toBeDefined();
      const cert = new X509Certificate(Buffer.from(der!));
      // The EK the TPM derives from the template (not the persisted handle) owns the certificate.
      const ek = await createEk(tpm, { template: id });
      try {
        expect(hex(cert.publicKey.export({ type: 'spki', format: 'der' }))).toBe(spki(ek.publicArea));
      } finally {
        await tpm.flush(ek);
      }
      expect(cert.verify(issuer.publicKey)).toBe(true);
      expect(cert.raw.length).toBe(der!.length);
      // The owner may read it too; same bytes.
      expect(hex((await readEkCertificate(tpm, EK_TEMPLATES[id].certificateIndex, { authorization: 'owner' }))!)).toBe(hex(der!));
    }
  });

  it('readEkCertificates lists exactly the profile indices present (not the platform certificate)', async () => {
    const all = await readEkCertificates(tpm);
    expect(all.map((c) => [c.index, c.template])).toEqual([
      [0x01c00002, 'L-1'],
      [0x01c00016, 'H-3'],
    ]);
    const platform = await tpm.run(NV_ReadPublic, { nvIndex: 0x01c08000 }, {});
    expect(platform.params.nvPublic.dataSize).toBeGreaterThan(0);
  });

  it('an index that is not there, or never written, has no certificate', async () => {
    expect(await readEkCertificate(tpm, 'H-2')).toBeUndefined();
    await withIndex(0x01c00014, 64, async () => {
      expect(await readEkCertificate(tpm, 'H-2')).toBeUndefined();
    });
  });

  /** Defines an owner index readable with its own (empty) auth, runs fn, undefines it. */
  async function withIndex(nvIndex: number, dataSize: number, fn: () => Promise<void>): Promise<void> {
    const publicInfo: TPMS_NV_PUBLIC = {
      nvIndex,
      nameAlg: TPM_ALG.SHA256,
      attributes: TPMA_NV.of({ OWNERWRITE: true, OWNERREAD: true, AUTHREAD: true, NO_DA: true }),
      authPolicy: new Uint8Array(0),
      dataSize,
    };
    await tpm.run(NV_DefineSpace, { authHandle: TPM_RH.OWNER }, { auth: new Uint8Array(0), publicInfo });
    try {
      await fn();
    } finally {
      await tpm.run(NV_UndefineSpace, { authHandle: TPM_RH.OWNER, nvIndex }, {});
    }
  }

  async function write(nvIndex: number, data: Uint8Array): Promise<void> {
    for (let offset = 0; offset < data.length; offset += nvBufferMax) {
      await tpm.run(NV_Write, { authHandle: TPM_RH.OWNER, nvIndex }, { data: data.subarray(offset, offset + nvBufferMax), offset });
    }
  }

  it('a certificate padded with zeros or 0xFF in a larger index (read in several chunks) comes back exact', async () => {
    const cert = (await readEkCertificate(tpm, 'L-1'))!;
    const size = 2000;
    expect(size).toBeGreaterThan(nvBufferMax); // more than one NV_Read
    for (const fill of [0x00, 0xff]) {
      // At the H-1 certificate index, so readEkCertificates reports it as H-1.
      await withIndex(0x01c00012, size, async () => {
        const padded = new Uint8Array(size).fill(fill);
        padded.set(cert);
        await write(0x01c00012, padded);
        expect(hex((await readEkCertificate(tpm, 'H-1'))!)).toBe(hex(cert));
        const listed = await readEkCertificates(tpm);
        expect(listed.map((c) => c.template)).toEqual(['L-1', 'H-1', 'H-3']);
        expect(hex(listed[1]!.der)).toBe(hex(cert));
      });
    }
  });

  it('a truncated certificate, or bytes that are no certificate, give identity.certificate', async () => {
    const cert = (await readEkCertificate(tpm, 'L-1'))!;
    const cases: Array<[string, Uint8Array]> = [
      ['first half of a certificate', cert.subarray(0, Math.floor(cert.length / 2))],
      ['random bytes', Uint8Array.from([0x04, ...randomBytes(100)])],
      ['all zeros', new Uint8Array(100)],
    ];
    for (const [what, data] of cases) {
      await withIndex(0x01c00012, data.length, async () => {
        await write(0x01c00012, data);
        const e = await rejection(readEkCertificate(tpm, 'H-1'));
        expect(e, what).toBeInstanceOf(IdentityError);
        expect((e as IdentityError).code, what).toBe('identity.certificate');
        expect((e as IdentityError).handle, what).toBe(0x01c00012);
      });
    }
  });

  it('H-5 (SM3/SM4) and H-7 (RSA-4096) are refused as unsupported algorithms before anything is created', async () => {
    const h5 = await rejection(getEk(tpm, { template: 'H-5' }));
    expect(h5).toBeInstanceOf(UnsupportedAlgorithmError);
    expect((h5 as UnsupportedAlgorithmError).alg).toBe(TPM_ALG.SM3_256);
    const h7 = await rejection(createEk(tpm, { template: 'H-7' }));
    expect(h7).toBeInstanceOf(UnsupportedAlgorithmError);
    expect((h7 as UnsupportedAlgorithmError).alg).toBe(TPM_ALG.RSA);
    // The parameters alone: SM4 is what TestParms refuses when the nameAlg is set aside.
    const sm4 = await rejection(checkTemplateSupported(tpm, { ...ekTemplate('H-5'), nameAlg: TPM_ALG.SHA256 } as TPMT_PUBLIC));
    expect((sm4 as UnsupportedAlgorithmError).alg).toBe(TPM_ALG.SM4);
    await checkTemplateSupported(tpm, ekTemplate('H-4'));
  });

  it('a persistent object that is not the template EK is refused with the fields that differ', async () => {
    // The H-3 key where an L-2 (P-256) EK is looked for: same type, other parameters, policy, attributes, nameAlg.
    const e = await rejection(getEk(tpm, { template: 'L-2', persistentHandle: 0x81010016 }));
    expect(e).toBeInstanceOf(IdentityError);
    expect((e as IdentityError).code).toBe('identity.mismatch');
    expect((e as IdentityError).handle).toBe(0x81010016);
    expect((e as IdentityError).fields).toEqual(['nameAlg', 'objectAttributes', 'authPolicy', 'parameters']);
    const e2 = await rejection(getEk(tpm, { template: 'L-1', persistentHandle: 0x81010016 }));
    expect((e2 as IdentityError).fields).toEqual(['type']);
    const e3 = await rejection(getEk(tpm, { persistentHandle: 0x01c00002 }));
    expect((e3 as IdentityError).code).toBe('identity.argument');
  });

  it('no persisted EK: getEk makes a transient one; persistentHandle false skips the lookup; withEk flushes only transients', async () => {
    // Nothing is persisted at L-2's handle 0x81010002 on this TPM.
    const l2 = await getEk(tpm, { template: 'L-2' });
    expect(l2.persistent).toBe(false);
    await tpm.flush(l2);
    const transient = await withEk(tpm, { template: 'L-1', persistentHandle: false }, (ek) => {
      expect(ek.persistent).toBe(false);
      return ek.handle;
    });
    expect(transient >>> 24).toBe(0x80);
    // A persisted EK survives withEk (readable afterwards); a throwing body still flushes a transient.
    await withEk(tpm, { template: 'H-3' }, (ek) => expect(ek.persistent).toBe(true));
    await tpm.run(ReadPublic, { objectHandle: 0x81010016 }, {});
    await expect(withEk(tpm, { template: 'H-2' }, () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
  });

  it('the EK policy session reaches the EK authPolicy: PolicyA (L-1, SHA-256) and PolicyB (H-3, SHA-384)', async () => {
    for (const id of ['L-1', 'H-3'] as const) {
      const ek = await getEk(tpm, { template: id });
      await withEkPolicy(tpm, ek, {}, async (authorize) => {
        const session = await authorize();
        const handle = (session as { handle: number }).handle;
        const d = await tpm.run(PolicyGetDigest, { policySession: handle }, {});
        expect(hex(d.params.policyDigest)).toBe(hex(ek.publicArea.authPolicy));
      });
    }
  });

  it('an EK whose authPolicy is not the profile\'s gets identity.policy before any policy command', async () => {
    const ek = await getEk(tpm, { template: 'L-1' });
    const odd = { ...ek.publicArea, authPolicy: new Uint8Array(32).fill(1) } as TPMT_PUBLIC;
    await tpm.withSession({ type: 'policy', hashAlg: TPM_ALG.SHA256 }, async (session) => {
      const e = await rejection(satisfyEkPolicy(tpm, session, odd));
      expect((e as IdentityError).code).toBe('identity.policy');
      const d = await tpm.run(PolicyGetDigest, { policySession: session.handle }, {});
      expect(hex(d.params.policyDigest)).toBe('00'.repeat(32));
    });
    // A SHA-256 session cannot satisfy the SHA-384 PolicyB of H-3.
    const h3 = await getEk(tpm, { template: 'H-3' });
    await tpm.withSession({ type: 'policy', hashAlg: TPM_ALG.SHA256 }, async (session) => {
      expect(((await rejection(satisfyEkPolicy(tpm, session, h3.publicArea))) as IdentityError).code).toBe('identity.policy');
    });
  });
});

/**
 * The same client functions on our simulator, manufactured its own way
 * (design.md "Identity", issue 6 item 2): no persisted EKs, certificates for
 * the low-range templates L-1 (RSA-2048) and L-2 (ECC P-256) in
 * platform-created indices, issued by the TPM's "trustroot software TPM CA".
 * Checked independently: node:crypto verifies each certificate with the CA's
 * key, and its public key is the one CreatePrimary derives from the template.
 */
describeOn('simulator', 'EK and EK certificates on a manufactured TPM', () => {
  let sim: TpmUnderTest;
  let tpm: Tpm;

  beforeAll(async () => {
    sim = await startTpm('simulator');
    tpm = new Tpm(new SwtpmTransport({ port: sim.port, ctrlPort: sim.ctrlPort }));
    await tpm.run(Startup, {}, { startupType: TPM_SU.CLEAR });
  });
  afterAll(async () => {
    await tpm?.close();
    await sim?.stop();
  });
  afterEach(async () => {
    expect(await readCapability(tpm.transport, TPM_CAP.HANDLES, [0x80000000])).toEqual([]);
    expect(await readCapability(tpm.transport, TPM_CAP.HANDLES, [0x02000000, 0x03000000])).toEqual([]);
  });

  it('readEkCertificates lists L-1 and L-2, in platform-created indices that survive TPM2_Clear', async () => {
    const all = await readEkCertificates(tpm);
    expect(all.map((c) => [c.index, c.template])).toEqual([
      [0x01c00002, 'L-1'],
      [0x01c0000a, 'L-2'],
    ]);
    for (const c of all) {
      const p = await tpm.run(NV_ReadPublic, { nvIndex: c.index }, {});
      expect(p.params.nvPublic.attributes.PLATFORMCREATE).toBe(true);
    }
  });

  it('each certificate holds the public key CreatePrimary derives from its template, issued by the software TPM CA', async () => {
    const ca = new X509Certificate(Buffer.from(sim.caCertificate!));
    expect(ca.subject).toContain('CN=trustroot software TPM CA');
    for (const id of ['L-1', 'L-2'] as const) {
      const der = await readEkCertificate(tpm, id);
      expect(der).toBeDefined();
      const cert = new X509Certificate(Buffer.from(der!));
      expect(cert.verify(ca.publicKey)).toBe(true);
      expect(cert.issuer).toBe(ca.subject);
      const r = await tpm.run(CreatePrimary, { primaryHandle: TPM_RH.ENDORSEMENT }, { inSensitive: { userAuth: new Uint8Array(0), data: new Uint8Array(0) }, inPublic: ekTemplate(id), outsideInfo: new Uint8Array(0), creationPCR: [] });
      try {
        expect(hex(cert.publicKey.export({ type: 'spki', format: 'der' }))).toBe(spki(r.params.outPublic));
      } finally {
        await tpm.flush(r.handles.objectHandle);
      }
      // The owner may read it too; same bytes.
      expect(hex((await readEkCertificate(tpm, EK_TEMPLATES[id].certificateIndex, { authorization: 'owner' }))!)).toBe(hex(der!));
    }
  });

  it('no persisted EK: getEk makes a transient one whose key is the certificate\'s', async () => {
    const ek = await getEk(tpm, { template: 'L-2' });
    try {
      expect(ek.persistent).toBe(false);
      const cert = new X509Certificate(Buffer.from((await readEkCertificate(tpm, 'L-2'))!));
      expect(hex(cert.publicKey.export({ type: 'spki', format: 'der' }))).toBe(spki(ek.publicArea));
    } finally {
      await tpm.flush(ek);
    }
  });

  it('an index that is not there has no certificate', async () => {
    expect(await readEkCertificate(tpm, 'H-2')).toBeUndefined();
  });
});
