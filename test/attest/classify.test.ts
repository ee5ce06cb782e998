/**
 * TPM-type classification (src/attest/classify.ts).
 *
 * - swtpm, described with the client (TPM_PT_MANUFACTURER "IBM", vendor
 *   strings "SW TPM"), is `software`: claimed from its own report, verified
 *   once its swtpm_localca EK chain verifies to a configured root; the
 *   production profile refuses it either way, the test profile accepts it.
 * - Descriptions of real vendors' TPMs (built from the GetCapability
 *   properties they report) are classified with the evidence that decided;
 *   what a TPM says is only claimed until a real vendor EK chain (the
 *   Nuvoton fixtures) verifies and certifies its EK, or the EK was
 *   pre-registered.
 * - trustroot's own software TPM identity (manufacturer TRST, vendor strings,
 *   its EK CA name) is `software`, also when the TPM claims to be a chip.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trustBundle, verifyEkCertificate, type EkCertificateVerification } from '../../src/attest/chain.js';
import { classifyTpm, PRODUCTION_PROFILE, TEST_PROFILE, type TpmClassification } from '../../src/attest/classify.js';
import { parseCertificate } from '../../src/attest/ekcert.js';
import { failures } from '../../src/attest/verdict.js';
import { describe as describeTpmOf, getEk, readEkCertificate, Tpm } from '../../src/client/index.js';
import { Startup } from '../../src/tpm/commands/index.js';
import { TPM_SU } from '../../src/tpm/constants.js';
import type { TpmDescription } from '../../src/tpm/description.js';
import { rsaEkTemplate } from '../../src/tpm/templates.js';
import { SwtpmTransport } from '../../src/tpm/transport/index.js';
import type { TPMT_PUBLIC } from '../../src/tpm/types/index.js';
import { describeWithSwtpmSetup, startSwtpmWithCertificates, type SwtpmWithCertificates } from '../support/swtpm-setup.js';
import { basicConstraints, cn, ecKey, ekPublicFor, eku, keyUsage, makeCert, OIDS, rsaKey, seq, tpmDescription, tpmSan } from './ekcert-builder.js';

const FIXTURES = new URL('../fixtures/ekcert/', import.meta.url);
const fixture = (f: string): Buffer => readFileSync(new URL(f, FIXTURES));
const codes = (c: TpmClassification): string[] => c.reasons.map((r) => r.code);

describe('vendors from what the TPM reports (claimed)', () => {
  const cases: [string, string, string, TpmClassification['type']][] = [
    ['IFX', 'SLB9670', 'Infineon', 'discrete'],
    ['STM ', 'ST33HTPHAHD4', 'STMicroelectronics', 'discrete'],
    ['NTC', 'NPCT75x', 'Nuvoton', 'discrete'],
    ['NTZ', 'Z32H330', 'Nationz', 'discrete'],
    ['ATML', 'AT97SC3205T', 'Atmel (Microchip)', 'discrete'],
    ['INTC', 'Intel', 'Intel', 'firmware'],
    ['AMD', 'AMD', 'AMD', 'firmware'],
    ['QCOM', 'QCOM', 'Qualcomm', 'firmware'],
    ['MSFT', 'Microsoft', 'Microsoft', 'virtual'],
    ['GOOG', 'vTPM', 'Google', 'virtual'],
  ];
  it.each(cases)('%s (%s) → %s, %s', (manufacturer, vendor, name, type) => {
    const d = tpmDescription({ manufacturer, vendor });
    const c = classifyTpm(d, undefined, { profile: 'test' });
    expect(c).toMatchObject({ type, assurance: 'claimed', claimed: true, vendor: { id: manufacturer.trim(), name } });
    expect(codes(c)).toEqual(['vendor.known']);
    expect(c.reasons[0]!.detail).toContain(name);
  });

  it('Microsoft Pluton (named in the vendor string) is integrated, not virtual', () => {
    const c = classifyTpm(tpmDescription({ manufacturer: 'MSFT', vendor: 'Pluton 1.0' }));
    expect(c.type).toBe('integrated');
    expect(c.reasons[0]!.detail).toMatch(/Pluton/);
  });

  it('a vendor ID nobody registered, or a known vendor of no settled form, is unknown — with the reason', () => {
    const odd = classifyTpm(tpmDescription({ manufacturer: 'ZZZZ', vendor: 'mystery' }));
    expect(odd).toMatchObject({ type: 'unknown', claimed: true });
    expect(odd.vendor).toBeUndefined();
    expect(codes(odd)).toEqual(['vendor.unknown']);
    expect(odd.reasons[0]!.detail).toContain('0x5a5a5a5a');
    const hpe = classifyTpm(tpmDescription({ manufacturer: 'HPE', vendor: 'iLO' }));
    expect(hpe).toMatchObject({ type: 'unknown', vendor: { id: 'HPE' } });
  });

  it('trustroot\'s software TPM (TRST, "trustroot" / "software TPM") and IBM + "SW TPM" are software', () => {
    const ours = classifyTpm(tpmDescription({ manufacturer: 'TRST', vendor: 'trustrootsoftware TPM' }), undefined, { profile: 'test' });
    expect(ours).toMatchObject({ type: 'software', vendor: { id: 'TRST', name: 'trustroot' } });
    expect(codes(ours)).toEqual(['software.trustroot']);
    // Vendor strings alone are enough: a TPM calling itself trustroot is ours whatever ID it reports.
    expect(classifyTpm(tpmDescription({ manufacturer: 'IFX', vendor: 'trustroot' })).type).toBe('software');
    expect(classifyTpm(tpmDescription({ manufacturer: 'IBM', vendor: 'SW  TPM' })).type).toBe('software');
    // IBM without the software vendor string is not assumed to be swtpm.
    expect(classifyTpm(tpmDescription({ manufacturer: 'IBM', vendor: 'vTPM' })).type).toBe('unknown');
  });
});

describe('claimed vs verified vs pre-registered, and the profiles', () => {
  const at = new Date('2025-06-01T00:00:00Z');
  const nuvotonRoot = trustBundle(fixture('nuvoton-tpm-root-ca-2111.pem'));
  const npct75x = parseCertificate(fixture('nuvoton-npct75x-ek.der'));
  if (npct75x.publicKey.kind !== 'rsa') throw new Error('rsa');
  const ekPublic = { ...rsaEkTemplate(), unique: npct75x.publicKey.modulus } as TPMT_PUBLIC;
  const nuvoton = tpmDescription({ manufacturer: 'NTC', vendor: 'NPCT75x', firmware1: 0x00070002 });

  it('a claim alone is refused by the production profile and accepted (with a warning) by the test profile', () => {
    const prod = classifyTpm(nuvoton);
    expect(prod).toMatchObject({ type: 'discrete', assurance: 'claimed', claimed: true, accepted: false });
    expect(failures(prod.verdict)).toEqual(['tpm.identity:identity.claimed']);
    const test = classifyTpm(nuvoton, undefined, { profile: 'test' });
    expect(test.accepted).toBe(true);
    expect(test.verdict.checks.map((c) => `${c.check}:${c.outcome}:${c.reason}`)).toEqual(['tpm.identity:warn:identity.claimed', 'tpm.type:pass:type.allowed']);
  });

  it('a real Nuvoton EK chain verified to the configured root, certifying this EK, makes it verified', () => {
    const v = verifyEkCertificate({ certificate: npct75x, roots: nuvotonRoot, at, ekPublic, description: nuvoton });
    expect(v.verdict.accepted).toBe(true);
    const c = classifyTpm(nuvoton, v);
    expect(c).toMatchObject({ type: 'discrete', assurance: 'verified', claimed: false, accepted: true, vendor: { id: 'NTC', name: 'Nuvoton' } });
    expect(codes(c)).toEqual(['chain.verified', 'vendor.known', 'vendor.certified']);
    // A bare chain result is taken as this TPM's (the caller compared the key).
    expect(classifyTpm(nuvoton, v.chain!).assurance).toBe('verified');
  });

  it('a verified chain for another key proves nothing about this TPM: claimed, with key.mismatch', () => {
    const other = { ...ekPublic, unique: new Uint8Array(256).fill(0x5a) } as TPMT_PUBLIC;
    const v = verifyEkCertificate({ certificate: npct75x, roots: nuvotonRoot, at, ekPublic: other, description: nuvoton });
    expect(v.chain?.status).toBe('verified');
    const c = classifyTpm(nuvoton, v);
    expect(c).toMatchObject({ assurance: 'claimed', accepted: false });
    expect(codes(c)).toContain('key.mismatch');
  });

  it('an incomplete chain leaves it claimed; a pre-registered EK is accepted in production', () => {
    const ifx = tpmDescription({ manufacturer: 'IFX', vendor: 'SLB9665', firmware1: 0x053f });
    const v = verifyEkCertificate({ certificate: fixture('infineon-slb9665-ek.pem'), roots: nuvotonRoot, at, description: ifx, requireVerifiedChain: false });
    const claimed = classifyTpm(ifx, v);
    expect(claimed).toMatchObject({ type: 'discrete', assurance: 'claimed', accepted: false });
    expect(codes(claimed)).toEqual(['chain.incomplete', 'vendor.known', 'vendor.certified']);
    const registered = classifyTpm(ifx, v, { preRegistered: true });
    expect(registered).toMatchObject({ type: 'discrete', assurance: 'pre-registered', claimed: false, accepted: true });
    expect(registered.verdict.checks.map((c) => `${c.outcome}:${c.reason}`)).toEqual(['pass:identity.pre-registered', 'pass:type.allowed']);
  });

  it('a TPM that claims another vendor than its verified certificate: the certificate decides, the conflict is reported', () => {
    const liar = tpmDescription({ manufacturer: 'INTC', vendor: 'Intel', firmware1: 0x00070002 });
    const v = verifyEkCertificate({ certificate: npct75x, roots: nuvotonRoot, at, ekPublic, description: liar });
    expect(failures(v.verdict)).toEqual(['ekcert.manufacturer:manufacturer.mismatch']);
    const c = classifyTpm(liar, v);
    expect(c).toMatchObject({ type: 'discrete', assurance: 'verified', vendor: { id: 'NTC' } });
    expect(codes(c)).toContain('vendor.conflict');
    // Unverified, the same conflict settles nothing.
    const unverified = classifyTpm(liar, verifyEkCertificate({ certificate: npct75x, at, ekPublic, description: liar }));
    expect(unverified).toMatchObject({ type: 'unknown', assurance: 'claimed' });
    expect(codes(unverified)).toContain('vendor.conflict');
  });

  it('a custom profile: only discrete TPMs, verified', () => {
    const strict = { name: 'discrete-only', allowedTypes: ['discrete'], allowedAssurance: ['verified'] } as const;
    const v = verifyEkCertificate({ certificate: npct75x, roots: nuvotonRoot, at, ekPublic, description: nuvoton });
    expect(classifyTpm(nuvoton, v, { profile: strict }).accepted).toBe(true);
    const intel = classifyTpm(tpmDescription({ manufacturer: 'INTC', vendor: 'Intel' }), undefined, { profile: strict, preRegistered: true });
    expect(failures(intel.verdict)).toEqual(['tpm.identity:identity.pre-registered', 'tpm.type:type.not-allowed']);
    expect(PRODUCTION_PROFILE.allowedTypes).not.toContain('software');
    expect(TEST_PROFILE.allowedTypes).toContain('software');
  });

  it("trustroot's software TPM CA: a verified chain from CN=trustroot software TPM CA, O=trustroot is software, whatever the TPM claims", () => {
    const now = new Date('2030-01-01T00:00:00Z');
    const year = 365 * 24 * 3600 * 1000;
    const window = { notBefore: new Date(now.getTime() - year), notAfter: new Date(now.getTime() + year) };
    const ca = ecKey();
    const ek = rsaKey();
    const caName = cn('trustroot software TPM CA', 'trustroot');
    const root = makeCert({ subject: caName, issuer: caName, key: ca.publicKey, signer: ca.privateKey, ...window, extensions: [basicConstraints(true), keyUsage('keyCertSign')] });
    const leaf = makeCert({
      subject: seq(),
      issuer: caName,
      key: ek.publicKey,
      signer: ca.privateKey,
      ...window,
      extensions: [tpmSan('id:54525354', 'trustroot', 'id:00000001'), basicConstraints(false), keyUsage('keyEncipherment'), eku(OIDS.ekCertificate)],
    });
    const claimsInfineon = tpmDescription({ manufacturer: 'IFX', vendor: 'SLB9670' });
    const v = verifyEkCertificate({ certificate: leaf, roots: trustBundle(root), at: now, ekPublic: ekPublicFor(ek.publicKey), description: claimsInfineon });
    expect(v.chain?.status).toBe('verified');
    const c = classifyTpm(claimsInfineon, v, { profile: 'test' });
    expect(c).toMatchObject({ type: 'software', assurance: 'verified', accepted: true });
    expect(codes(c)).toEqual(['chain.verified', 'software.trustroot']);
    expect(failures(classifyTpm(claimsInfineon, v).verdict)).toEqual(['tpm.type:type.software-refused']);
  });
});

describeWithSwtpmSetup('swtpm is classified software', () => {
  let sw: SwtpmWithCertificates;
  let tpm: Tpm;
  let description: TpmDescription;
  let verification: EkCertificateVerification;

  beforeAll(async () => {
    sw = await startSwtpmWithCertificates();
    tpm = new Tpm(new SwtpmTransport({ port: sw.port, ctrlPort: sw.ctrlPort }));
    await tpm.run(Startup, {}, { startupType: TPM_SU.CLEAR });
    description = await describeTpmOf(tpm);
    const cert = await readEkCertificate(tpm, 'H-3');
    if (cert === undefined) throw new Error('no H-3 EK certificate');
    const ek = await getEk(tpm, { template: 'H-3' });
    verification = verifyEkCertificate({
      certificate: cert,
      intermediates: [sw.issuerCertificatePem],
      roots: trustBundle(sw.rootCertificatePem),
      at: new Date(),
      ekPublic: ek.publicArea,
      description,
    });
  }, 90_000);
  afterAll(async () => {
    await tpm?.close();
    await sw?.stop();
  });

  it('from its own report (IBM, "SW TPM"): software, claimed; production refuses it twice over, the test profile accepts', () => {
    expect(description.manufacturer).toBe('IBM');
    expect(description.vendorString.replace(/\s+/g, ' ')).toBe('SW TPM');
    const prod = classifyTpm(description);
    expect(prod).toMatchObject({ type: 'software', assurance: 'claimed', claimed: true, accepted: false, vendor: { id: 'IBM' } });
    expect(codes(prod)).toEqual(['software.swtpm']);
    expect(failures(prod.verdict)).toEqual(['tpm.identity:identity.claimed', 'tpm.type:type.software-refused']);
    expect(classifyTpm(description, undefined, { profile: 'test' }).accepted).toBe(true);
  });

  it('with its swtpm_localca chain verified to a configured root: software, verified; production still refuses software', () => {
    expect(verification.verdict.accepted).toBe(true);
    const prod = classifyTpm(description, verification);
    expect(prod).toMatchObject({ type: 'software', assurance: 'verified', claimed: false, accepted: false });
    expect(codes(prod)).toEqual(['chain.verified', 'software.swtpm']);
    expect(prod.reasons[1]!.detail).toContain('swtpm-localca');
    expect(failures(prod.verdict)).toEqual(['tpm.type:type.software-refused']);
    const test = classifyTpm(description, verification, { profile: 'test' });
    expect(test).toMatchObject({ accepted: true, type: 'software' });
    // Even a doctored description cannot pass the swtpm chain off as a chip.
    expect(classifyTpm(tpmDescription({ manufacturer: 'STM ', vendor: 'ST33' }), verification).type).toBe('software');
  });
});
