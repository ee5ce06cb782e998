import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { verifyEkCertificate } from '../../src/attest/chain.js';
import { trustBundle } from '../../src/attest/chain.js';
import { classifyTpm } from '../../src/attest/classify.js';
import { compareEkPublicKey, parseCertificate } from '../../src/attest/ekcert.js';
import { Tpm, createPrimary, describe as describeTpm, nvCertify, nvDefine, nvIncrement, nvReadCounter, nvReadPublic, nvUndefine, readEkCertificates } from '../../src/client/index.js';
import { readCapability } from '../../src/tpm/capability.js';
import { Clear, NV_ReadPublic, NV_Write, Startup } from '../../src/tpm/commands/index.js';
import { TPM_CAP, TPM_PT, TPM_RH, TPM_ST, TPM_SU } from '../../src/tpm/constants.js';
import { TPM_RC, isRc } from '../../src/tpm/rc.js';
import { passwordAuth, runCommand } from '../../src/tpm/run.js';
import { eccAkTemplate, eccEkTemplate, rsaEkTemplate } from '../../src/tpm/templates.js';
import { inProcessTransport } from '../../src/tpm/transport/index.js';
import { TPMA_NV } from '../../src/tpm/types/index.js';
import { TpmEngine } from '../../src/simulator/index.js';
import { derivePrimaryObject } from '../../src/simulator/keygen.js';
import { openEnginePlatform } from '../../src/cli/tpm.js';
import { describeWithSwtpm } from '../support/swtpm.js';
import {
  EK_CERTIFICATE_INDICES,
  createSoftwareTpmCa,
  defaultSoftwareTpmCaDir,
  loadOrCreateSoftwareTpmCa,
  type SoftwareTpmCa,
} from '../../src/simulator/manufacture.js';
import { parseStateFile, serializeState, validateSimulatorState } from '../../src/simulator/store.js';
import { SIMULATOR_STATE_VERSION, type SimulatorState } from '../../src/simulator/state.js';
import { startedEngine, swtpmAndSimulator } from '../support/fixture.js';

// The key derivations, counted: the module's own function wrapped, so a cache hit shows as no call.
vi.mock('../../src/simulator/keygen.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/simulator/keygen.js')>();
  return { ...real, derivePrimaryObject: vi.fn(real.derivePrimaryObject) };
});
const derivations = vi.mocked(derivePrimaryObject);

async function started0(platform: { execute(command: Uint8Array, locality: number): Promise<Uint8Array> }): Promise<Tpm> {
  const t = inProcessTransport({ execute: (c: Uint8Array, l?: number) => platform.execute(c, l ?? 0) } as never);
  await runCommand(t, Startup, {}, { startupType: TPM_SU.CLEAR });
  return new Tpm(t);
}

async function nvHandles(tpm: Tpm): Promise<number[]> {
  const data = await readCapability(tpm.channel, TPM_CAP.HANDLES, [0x01000000]);
  return (data as number[]).filter((h) => h >>> 24 === 0x01);
}

let ca: SoftwareTpmCa;
beforeAll(() => {
  ca = createSoftwareTpmCa();
});

describe('simulator manufacture: the software TPM CA', () => {
  it('is a self-signed CA named CN=trustroot software TPM CA, O=trustroot', () => {
    const c = parseCertificate(ca.certificate);
    expect(c.subject.text).toBe('CN=trustroot software TPM CA, O=trustroot');
    expect(c.issuer.text).toBe(c.subject.text);
    expect(c.basicConstraints).toMatchObject({ ca: true, critical: true });
    expect(c.keyUsage).toEqual(expect.arrayContaining(['keyCertSign']));
    expect(c.quirks).toEqual([]);
  });

  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'trustroot-ca-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('is kept per installation: created once (also by racing callers), read back the same, refused when its files do not belong together', async () => {
    const where = join(dir, 'sw-tpm-ca');
    const [a, b] = await Promise.all([loadOrCreateSoftwareTpmCa(where), loadOrCreateSoftwareTpmCa(where)]);
    expect(Buffer.from(a.certificate).equals(Buffer.from(b.certificate))).toBe(true);
    const again = await loadOrCreateSoftwareTpmCa(where);
    expect(Buffer.from(again.certificate).equals(Buffer.from(a.certificate))).toBe(true);
    expect((await readFile(join(where, 'ca-key.pem'), 'utf8')).startsWith('-----BEGIN PRIVATE KEY-----')).toBe(true);
    await writeFile(join(where, 'ca-key.pem'), createSoftwareTpmCa().privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
    await expect(loadOrCreateSoftwareTpmCa(where)).rejects.toMatchObject({ code: 'state.corrupt' });
    expect(defaultSoftwareTpmCaDir('/srv/tpms/a', { TRUSTROOT_HOME: '/opt/tr' })).toBe('/opt/tr/sw-tpm-ca');
    expect(defaultSoftwareTpmCaDir('/srv/tpms/a', {})).toBe('/srv/tpms/sw-tpm-ca');
  });
});

describe('simulator manufacture: EK certificates', () => {
  it('a fresh TPM lists both certificate indices with the EK profile attributes; an engine without a CA has none', async () => {
    const tpm = (await startedEngine(new TpmEngine({ manufacture: { ca } }))).tpm;
    expect(await nvHandles(tpm)).toEqual([EK_CERTIFICATE_INDICES.rsa2048, EK_CERTIFICATE_INDICES.eccP256]);
    const pub = await nvReadPublic(tpm, EK_CERTIFICATE_INDICES.eccP256);
    const a = pub.attributes;
    expect({ ...a }).toMatchObject({ PLATFORMCREATE: true, PPWRITE: true, WRITEDEFINE: true, WRITELOCKED: true, WRITTEN: true, AUTHREAD: true, OWNERREAD: true, PPREAD: true, NO_DA: true, OWNERWRITE: false, AUTHWRITE: false });
    expect(pub.size).toBeGreaterThan(300);
    // Locked for good: even the platform cannot overwrite it.
    await expect(tpm.run(NV_Write, { authHandle: TPM_RH.PLATFORM, nvIndex: pub }, { data: Uint8Array.of(1), offset: 0 })).rejects.toSatisfy((e: unknown) => isRc(e, TPM_RC.NV_LOCKED));
    expect(await nvHandles((await startedEngine(new TpmEngine())).tpm)).toEqual([]);
  });

  it('certifies the EKs CreatePrimary derives from the L-1 and L-2 templates; the chain verifies to the installation CA; classified as a software TPM', async () => {
    const tpm = (await startedEngine(new TpmEngine({ manufacture: { ca } }))).tpm;
    const certs = await readEkCertificates(tpm);
    expect(certs.map((c) => c.template).sort()).toEqual(['L-1', 'L-2']);
    const description = await describeTpm(tpm);
    const roots = trustBundle(ca.certificate);
    for (const [template, id] of [[rsaEkTemplate(), 'L-1'], [eccEkTemplate(), 'L-2']] as const) {
      const ek = await createPrimary(tpm, TPM_RH.ENDORSEMENT, template);
      const der = certs.find((c) => c.template === id)!.der;
      const parsed = parseCertificate(der);
      expect(parsed.quirks).toEqual([]);
      expect(parsed.issuer.text).toBe('CN=trustroot software TPM CA, O=trustroot');
      expect(parsed.tpm).toMatchObject({ vendorId: 'TRST', model: 'trustroot SW TPM' });
      expect(parsed.tpmSpecification).toEqual({ family: description.spec.family, level: description.spec.level, revision: description.spec.revision });
      expect(compareEkPublicKey(parsed, ek.publicArea).outcome).toBe('pass');
      const v = verifyEkCertificate({ certificate: der, roots, at: new Date(), ekPublic: ek.publicArea, description });
      expect(v.verdict.checks.filter((c) => c.outcome === 'fail' || c.outcome === 'warn').map((c) => `${c.check}: ${c.detail}`)).toEqual([]);
      expect(v.chain?.status).toBe('verified');
      const cls = classifyTpm(description, v, { profile: 'test' });
      expect(cls.type).toBe('software');
      expect(cls.assurance).toBe('verified');
      // The production profile refuses it: never mistaken for hardware.
      expect(classifyTpm(description, v).accepted).toBe(false);
      await tpm.flush(ek);
    }
    // NV_Certify of a certificate index: the AK signs the certificate's bytes.
    const ak = await createPrimary(tpm, TPM_RH.ENDORSEMENT, eccAkTemplate());
    const rsaIndex = await nvReadPublic(tpm, EK_CERTIFICATE_INDICES.rsa2048);
    const signed = await nvCertify(tpm, ak, rsaIndex, { offset: 0, size: 64 });
    expect(signed.attest.type === TPM_ST.ATTEST_NV && Buffer.from(signed.attest.attested.nvContents).equals(Buffer.from(certs.find((c) => c.template === 'L-1')!.der.subarray(0, 64)))).toBe(true);
    await tpm.flush(ak);
    // Not by another installation's CA.
    const other = verifyEkCertificate({ certificate: certs[0]!.der, roots: trustBundle(createSoftwareTpmCa().certificate), at: new Date() });
    expect(other.chain?.status).not.toBe('verified');
  }, 30_000);

  it('makes a certificate on first read, saves it before answering, and keeps it across restarts and TPM2_Clear', async () => {
    const saved: SimulatorState[] = [];
    const engine = new TpmEngine({ manufacture: { ca }, persist: async (s) => void saved.push(structuredClone(s)) });
    expect(engine.state.ekCertificates.pending.sort()).toEqual([EK_CERTIFICATE_INDICES.rsa2048, EK_CERTIFICATE_INDICES.eccP256].sort());
    const tpm = (await startedEngine(engine)).tpm;
    saved.length = 0;
    const first = await tpm.run(NV_ReadPublic, { nvIndex: EK_CERTIFICATE_INDICES.eccP256 }, {});
    expect(first.params.nvPublic.dataSize).toBeGreaterThan(0);
    expect(saved.at(-1)!.ekCertificates.pending).toEqual([EK_CERTIFICATE_INDICES.rsa2048]);
    const before = (await readEkCertificates(tpm)).map((c) => Buffer.from(c.der).toString('hex'));
    // The state file holds the certificates and the pending list; a restarted engine answers the same bytes.
    const file = parseStateFile(serializeState(engine.state), SIMULATOR_STATE_VERSION);
    const restarted = (await startedEngine(new TpmEngine({ state: validateSimulatorState(file), manufacture: { ca } }))).tpm;
    expect((await readEkCertificates(restarted)).map((c) => Buffer.from(c.der).toString('hex'))).toEqual(before);
    await tpm.run(Clear, { authHandle: TPM_RH.LOCKOUT }, {});
    const afterClear = await readEkCertificates(tpm);
    expect(afterClear.map((c) => Buffer.from(c.der).toString('hex'))).toEqual(before);
    const ek = await createPrimary(tpm, TPM_RH.ENDORSEMENT, eccEkTemplate());
    expect(compareEkPublicKey(parseCertificate(afterClear.find((c) => c.template === 'L-2')!.der), ek.publicArea).outcome).toBe('pass');
  }, 30_000);

  it('a pending certificate without a CA to issue it answers TPM_RC_NV_UNAVAILABLE; an engine given a CA later provisions once', async () => {
    const engine = new TpmEngine({ manufacture: { ca } });
    const noCa = (await startedEngine(new TpmEngine({ state: engine.state }))).tpm;
    await expect(noCa.run(NV_ReadPublic, { nvIndex: EK_CERTIFICATE_INDICES.eccP256 }, {})).rejects.toSatisfy((e: unknown) => isRc(e, TPM_RC.NV_UNAVAILABLE));
    const plain = new TpmEngine();
    expect(plain.state.ekCertificates.provisioned).toBe(false);
    const later = new TpmEngine({ state: plain.state, manufacture: { ca } });
    expect(later.state.ekCertificates.provisioned).toBe(true);
    expect(later.state.nvIndices.length).toBe(2);
    new TpmEngine({ state: later.state, manufacture: { ca } });
    expect(later.state.nvIndices.length).toBe(2);
  });

  it('a thousand manufactured engines cost no key derivation until a certificate is read', async () => {
    const before = derivations.mock.calls.length;
    const engines = Array.from({ length: 1000 }, () => new TpmEngine({ manufacture: { ca } }));
    expect(derivations.mock.calls.length).toBe(before);
    // Both indices are defined, their certificates still to be made.
    for (const e of engines) expect([...e.state.ekCertificates.pending].sort()).toEqual([EK_CERTIFICATE_INDICES.rsa2048, EK_CERTIFICATE_INDICES.eccP256].sort());
    // The count is live: reading one engine's certificates derives its EKs, and only then.
    const tpm = (await startedEngine(engines[0])).tpm;
    expect(derivations.mock.calls.length).toBe(before);
    expect(await readEkCertificates(tpm)).toHaveLength(2);
    expect(derivations.mock.calls.length - before).toBe(2);
    expect(engines[0]!.state.ekCertificates.pending).toEqual([]);
    expect(engines[1]!.state.ekCertificates.pending).toHaveLength(2);
  }, 30_000);
});

describe('tpm serve: the platform over a state folder gets its EK certificates from the installation CA', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'trustroot-serve-ca-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('provisions once, saves before serving, and serves the same certificates after a re-open; two TPMs share the CA beside their folders', async () => {
    const open = async (name: string): Promise<{ tpm: Tpm; close: () => Promise<void> }> => {
      const opened = await openEnginePlatform(join(dir, name));
      opened.platform.powerOn();
      const tpm = await started0(opened.platform);
      return { tpm, close: () => opened.close() };
    };
    const a = await open('a');
    const first = await readEkCertificates(a.tpm);
    expect(first.length).toBe(2);
    await a.close();
    // Provisioned before serving: the ECC certificate made, the RSA one pending until read.
    const fresh = await openEnginePlatform(join(dir, 'c'));
    await fresh.close();
    const manufactured = validateSimulatorState(parseStateFile(await readFile(join(dir, 'c', 'state.json')), SIMULATOR_STATE_VERSION));
    expect(manufactured.ekCertificates).toMatchObject({ provisioned: true, pending: [EK_CERTIFICATE_INDICES.rsa2048] });
    expect(manufactured.nvIndices.find((n) => n.nvIndex === EK_CERTIFICATE_INDICES.eccP256)!.dataSize).toBeGreaterThan(300);
    const saved = validateSimulatorState(parseStateFile(await readFile(join(dir, 'a', 'state.json')), SIMULATOR_STATE_VERSION));
    expect(saved.ekCertificates).toMatchObject({ provisioned: true, pending: [] });
    const again = await open('a');
    expect((await readEkCertificates(again.tpm)).map((c) => Buffer.from(c.der).toString('hex'))).toEqual(first.map((c) => Buffer.from(c.der).toString('hex')));
    await again.close();
    const b = await open('b');
    const caCert = await loadOrCreateSoftwareTpmCa(join(dir, 'sw-tpm-ca'));
    for (const c of await readEkCertificates(b.tpm)) expect(verifyEkCertificate({ certificate: c.der, roots: trustBundle(caCert.certificate), at: new Date() }).chain?.status).toBe('verified');
    await b.close();
  }, 30_000);
});

describe('simulator NV counters: Part 1 §37.2.3.4 floor', () => {
  it('a new counter starts above the highest value of a counter since undefined (libtpms maxCount); TPM_PT_NV_COUNTERS counts them', async () => {
    const engine = new TpmEngine();
    const tpm = (await startedEngine(engine)).tpm;
    const a = await nvDefine(tpm, { index: 0x01500100, type: 'counter' });
    for (let i = 0; i < 5; i++) await nvIncrement(tpm, a);
    expect(await nvReadCounter(tpm, a)).toBe(5n);
    const counters = async (): Promise<number> => {
      const props = (await readCapability(tpm.channel, TPM_CAP.TPM_PROPERTIES, [TPM_PT.NV_COUNTERS])) as { property: number; value: number }[];
      return props.find((p) => p.property === TPM_PT.NV_COUNTERS)!.value;
    };
    expect(await counters()).toBe(1);
    await nvUndefine(tpm, a);
    expect(await counters()).toBe(0);
    const b = await nvDefine(tpm, { index: 0x01500101, type: 'counter' });
    await nvIncrement(tpm, b);
    expect(await nvReadCounter(tpm, b)).toBe(6n);
    expect(engine.state.nvCounterMax).toBe(5n);
    // The floor survives a restart through the state file.
    const restored = validateSimulatorState(parseStateFile(serializeState(engine.state), SIMULATOR_STATE_VERSION));
    expect(restored.nvCounterMax).toBe(5n);
    expect(TPMA_NV.fromWord(engine.state.nvIndices[0]!.attributes).WRITTEN).toBe(true);
    const broken = { ...restored, nvCounterMax: -1n };
    expect(() => validateSimulatorState(broken)).toThrow(/nvCounterMax/);
  });
});

describe('simulator NV counters: the floor across TPM2_Clear', () => {
  it('a counter removed by Clear raises the floor like one undefined (the reference deletes both through NvDeleteIndex)', async () => {
    const engine = new TpmEngine();
    const tpm = (await startedEngine(engine)).tpm;
    const a = await nvDefine(tpm, { index: 0x01500102, type: 'counter' });
    for (let i = 0; i < 3; i++) await nvIncrement(tpm, a);
    await runCommand(tpm.channel, Clear, { authHandle: TPM_RH.LOCKOUT }, {}, { sessions: [passwordAuth()] });
    expect(engine.state.nvCounterMax).toBe(3n);
    const b = await nvDefine(tpm, { index: 0x01500102, type: 'counter' });
    await nvIncrement(tpm, b);
    expect(await nvReadCounter(tpm, b)).toBe(4n);
  });
});

/** Counters defined, incremented, undefined and defined again: the values a TPM gives (libtpms keeps the floor too). */
async function counterScenario(tpm: Tpm): Promise<string[]> {
  const log: string[] = [];
  const a = await nvDefine(tpm, { index: 0x01500200, type: 'counter' });
  for (let i = 0; i < 3; i++) await nvIncrement(tpm, a);
  const b = await nvDefine(tpm, { index: 0x01500201, type: 'counter' });
  await nvIncrement(tpm, b);
  log.push(`second counter beside the first: ${await nvReadCounter(tpm, b)}`);
  await nvIncrement(tpm, a);
  await nvUndefine(tpm, a);
  await nvUndefine(tpm, b);
  const c = await nvDefine(tpm, { index: 0x01500202, type: 'counter' });
  await nvIncrement(tpm, c);
  log.push(`counter after both were undefined: ${await nvReadCounter(tpm, c)}`);
  await nvUndefine(tpm, c);
  return log;
}

describeWithSwtpm('simulator NV counter floor agrees with swtpm', () => {
  const tpms = swtpmAndSimulator();

  it('gives the same counter values', async () => {
    const { theirs, ours } = await tpms.both((side) => counterScenario(side.tpm));
    expect(ours).toEqual(theirs);
  });
});

