/**
 * EK certificates and their chains (src/attest/ekcert.ts, chain.ts).
 *
 * - Real EK certificates from hardware TPMs published as test data
 *   (test/fixtures/ekcert/README.md): a Nuvoton NPCT75x (non-DER: SET OF
 *   members out of order) and a Nuvoton NPCT42x/50x with an RSAES-OAEP key,
 *   each verified against its vendor's real root; an Infineon SLB 9665 whose
 *   issuing CA is not here (incomplete).
 * - Chains from an issuer we did not write: swtpm_setup --create-ek-cert with
 *   Debian's swtpm_localca (root → intermediate → EK, RSA-2048 and P-384),
 *   read from a private swtpm's NV with the client, and their mutations: an EK
 *   certificate that is not the EK's, an unknown root, a corrupted signature,
 *   truncated DER.
 * - A CA hierarchy generated here (test/attest/ekcert-builder.ts) for what no
 *   CA tool writes on request: expired intermediates, wrong CA flags, unknown
 *   critical extensions, mismatched signature algorithms, PSS, non-DER
 *   encodings the CA really signed.
 * - The fixed-seed fuzz run of fuzz/attest-ekcert.ts (≥ 20,000 inputs).
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fuzzEkCert } from '../../fuzz/attest-ekcert.js';
import { DEFAULT_TRUST_BUNDLE, trustBundle, verifyEkCertificate, verifyEkChain, type EkCertificateVerification } from '../../src/attest/chain.js';
import { compareEkPublicKey, namesMatch, parseCertificate, parseCertificates, type ParsedCertificate } from '../../src/attest/ekcert.js';
import { failures, type Check } from '../../src/attest/verdict.js';
import { describe as describeTpmOf, getEk, readEkCertificate, Tpm } from '../../src/client/index.js';
import { Startup } from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_SU } from '../../src/tpm/constants.js';
import type { TpmDescription } from '../../src/tpm/description.js';
import { EvidenceError } from '../../src/tpm/errors.js';
import { rsaEkTemplate } from '../../src/tpm/templates.js';
import { SwtpmTransport } from '../../src/tpm/transport/index.js';
import type { TPMT_PUBLIC } from '../../src/tpm/types/index.js';
import { describeWithSwtpmSetup, startSwtpmWithCertificates, type SwtpmWithCertificates } from '../support/swtpm-setup.js';
import {
  basicConstraints,
  cn,
  ctx,
  ecKey,
  ekPublicFor,
  eku,
  hierarchy,
  keyUsage,
  makeCert,
  name,
  NULL,
  oid,
  OIDS,
  pem,
  rsaKey,
  seq,
  tpmDescription,
  tpmSan,
  type Ext,
  type Pair,
} from './ekcert-builder.js';

const FIXTURES = new URL('../fixtures/ekcert/', import.meta.url);
const fixture = (f: string): Buffer => readFileSync(new URL(f, FIXTURES));

function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error('expected a throw');
}

/** The check with this id (the first, for per-link ids). */
function check(v: { readonly checks: readonly Check[] } | EkCertificateVerification, id: string): Check {
  const checks = 'verdict' in v ? v.verdict.checks : v.checks;
  const c = checks.find((x) => x.check === id);
  if (c === undefined) throw new Error(`no check ${id} in ${checks.map((x) => x.check).join(', ')}`);
  return c;
}
const outcome = (v: EkCertificateVerification, id: string): string => `${check(v, id).outcome}:${check(v, id).reason}`;

function flip(b: Uint8Array, at: number): Uint8Array {
  const c = b.slice();
  c[at]! ^= 0x01;
  return c;
}

// ---------------------------------------------------------------------------
// Real EK certificates from hardware TPMs

describe('real EK certificates (fixtures from published test data)', () => {
  const npct75x = fixture('nuvoton-npct75x-ek.der');
  const nuvotonRoot = trustBundle(fixture('nuvoton-tpm-root-ca-2111.pem').toString('latin1'));
  const npct42x = fixture('nuvoton-npct42x-rsaes-oaep-ek.der');
  const ntcRoot = trustBundle(fixture('ntc-tpm-ek-root-ca-02.pem').toString('latin1'));
  const at = new Date('2025-06-01T00:00:00Z');

  it('Nuvoton NPCT75x: non-DER (SET OF out of order) tolerated and reported; the TCG attributes read', () => {
    const c = parseCertificate(npct75x);
    expect(c.quirks.map((q) => q.code)).toEqual(['der.set-order', 'der.set-order']);
    // The issuer's multi-valued RDN (offset 40) and the SAN's directoryName are both unsorted.
    expect(c.quirks[0]!.offset).toBe(40);
    expect(c.issuer.text).toBe('CN=Nuvoton TPM Root CA 2111+O=Nuvoton Technology Corporation+C=TW');
    expect(c.subject.rdns).toEqual([]);
    expect(c.tpm).toEqual({ manufacturer: 'id:4E544300', manufacturerId: 0x4e544300, vendorId: 'NTC', model: 'NPCT75x', version: 'id:00070002', versionId: 0x00070002 });
    expect(c.tpmSpecification).toEqual({ family: '2.0', level: 0, revision: 138 });
    expect(c.extendedKeyUsage).toEqual(['2.23.133.8.1']);
    expect(c.keyUsage).toEqual(['keyEncipherment']);
    expect(c.subjectAltNames?.critical).toBe(true);
    expect(c.publicKey).toMatchObject({ kind: 'rsa', bits: 2048, exponent: 65537n });
    expect(c.notAfter.toISOString()).toBe('2039-07-19T17:15:13.000Z');
  });

  it('Nuvoton NPCT75x: the signature verifies over the original TBS bytes with the real Nuvoton root, never over a re-encoding', () => {
    const v = verifyEkCertificate({ certificate: npct75x, roots: nuvotonRoot, at });
    expect(v.chain?.status).toBe('verified');
    expect(v.chain?.path.map((c) => c.subject.text)).toEqual(['', 'CN=Nuvoton TPM Root CA 2111+O=Nuvoton Technology Corporation+C=TW']);
    expect(outcome(v, 'ekcert.encoding')).toBe('warn:encoding.quirks');
    expect(v.verdict.accepted).toBe(true);
    // DER would sort the issuer RDN's members (C < CN < O by encoding). Same length, same signature:
    // a verifier that re-encoded before checking would accept this; ours sees the bytes changed.
    const tbsIssuerSet = 40;
    const rdn = npct75x.subarray(tbsIssuerSet + 2, tbsIssuerSet + 2 + 0x53);
    const cnAttr = rdn.subarray(0, 33);
    const oAttr = rdn.subarray(33, 33 + 39);
    const cAttr = rdn.subarray(72, 83);
    const sorted = Buffer.concat([cAttr, cnAttr, oAttr]);
    expect(sorted.length).toBe(rdn.length);
    const reencoded = Buffer.from(npct75x);
    sorted.copy(reencoded, tbsIssuerSet + 2);
    const r = parseCertificate(reencoded);
    expect(r.quirks.filter((q) => q.offset === 40)).toEqual([]);
    expect(namesMatch(r.issuer, parseCertificate(npct75x).issuer)).toBe(true); // RFC 5280 §7.1: the same name
    const rv = verifyEkCertificate({ certificate: reencoded, roots: nuvotonRoot, at });
    expect(rv.chain).toMatchObject({ status: 'invalid', reason: 'signature.invalid' });
  });

  it('Nuvoton NPCT42x/50x: an RSAES-OAEP key from TPM 1.2 days, SHA-1 signature, verified with the real NTC root', () => {
    const c = parseCertificate(npct42x);
    expect(c.quirks.map((q) => q.code)).toEqual(['der.set-order', 'x509.rsaes-oaep-key', 'der.set-order']);
    expect(c.publicKey).toMatchObject({ kind: 'rsa', algorithm: '1.2.840.113549.1.1.7', bits: 2048 });
    expect(c.tpm).toMatchObject({ vendorId: 'WEC', model: 'NPCT42x/NPCT50x', version: 'id:0391' });
    const v = verifyEkCertificate({ certificate: npct42x, roots: ntcRoot, at });
    expect(v.chain?.status).toBe('verified');
    expect(outcome(v, 'ekcert.chain.algorithm')).toBe('warn:hash.sha1');
    expect(outcome(v, 'ekcert.key-usage')).toBe('warn:key-usage.absent');
    expect(v.verdict.accepted).toBe(true);
    // The OAEP-wrapped modulus is still the EK's modulus.
    if (c.publicKey.kind !== 'rsa') throw new Error('rsa');
    const ek = { ...rsaEkTemplate(), unique: c.publicKey.modulus } as TPMT_PUBLIC;
    expect(compareEkPublicKey(c, ek)).toMatchObject({ outcome: 'pass', reason: 'key.match' });
    expect(compareEkPublicKey(c, { ...ek, unique: flip(c.publicKey.modulus, 100) } as TPMT_PUBLIC)).toMatchObject({ outcome: 'fail', reason: 'key.mismatch' });
    // The TPM 1.2 model string names two parts; the vendor string of either matches.
    const d = tpmDescription({ manufacturer: 'WEC', vendor: 'NPCT50x', firmware1: 0x0391 });
    const x = verifyEkCertificate({ certificate: npct42x, roots: ntcRoot, at, ekPublic: ek, description: d });
    expect([outcome(x, 'ekcert.manufacturer'), outcome(x, 'ekcert.model'), outcome(x, 'ekcert.version')]).toEqual([
      'pass:manufacturer.match',
      'pass:model.match',
      'pass:version.match',
    ]);
  });

  it('the SAN is cross-checked with what the TPM reports; a TPM claiming another vendor fails', () => {
    const honest = tpmDescription({ manufacturer: 'NTC', vendor: 'NPCT75x', firmware1: 0x00070002 });
    const v = verifyEkCertificate({ certificate: npct75x, roots: nuvotonRoot, at, description: honest });
    expect([outcome(v, 'ekcert.manufacturer'), outcome(v, 'ekcert.model'), outcome(v, 'ekcert.version')]).toEqual(['pass:manufacturer.match', 'pass:model.match', 'pass:version.match']);
    const updated = verifyEkCertificate({ certificate: npct75x, roots: nuvotonRoot, at, description: tpmDescription({ manufacturer: 'NTC', vendor: 'NPCT75x', firmware1: 0x00070004 }) });
    expect(outcome(updated, 'ekcert.version')).toBe('pass:version.newer');
    const downgraded = verifyEkCertificate({ certificate: npct75x, roots: nuvotonRoot, at, description: tpmDescription({ manufacturer: 'NTC', vendor: 'NPCT75x', firmware1: 0x00060000 }) });
    expect(outcome(downgraded, 'ekcert.version')).toBe('warn:version.older');
    const liar = verifyEkCertificate({ certificate: npct75x, roots: nuvotonRoot, at, description: tpmDescription({ manufacturer: 'IFX', vendor: 'SLB9670', firmware1: 0x00070002 }) });
    expect(failures(liar.verdict)).toEqual(['ekcert.manufacturer:manufacturer.mismatch']);
    expect(outcome(liar, 'ekcert.model')).toBe('warn:model.mismatch');
  });

  it('Infineon SLB 9665 (strict DER, UTF8String attributes): its issuing CA is not here, so the chain is incomplete', () => {
    const c = parseCertificate(fixture('infineon-slb9665-ek.pem'));
    expect(c.quirks).toEqual([]);
    expect(c.tpm).toMatchObject({ vendorId: 'IFX', model: 'SLB 9665', version: 'id:053f', versionId: 0x053f });
    expect(c.issuer.text).toBe('C=DE, O=Infineon Technologies AG, OU=OPTIGA(TM) TPM2.0, CN=Infineon OPTIGA(TM) RSA Manufacturing CA 036');
    const v = verifyEkCertificate({ certificate: c, roots: trustBundle(nuvotonRoot.roots, ntcRoot.roots), at });
    expect(v.chain).toMatchObject({ status: 'incomplete', reason: 'issuer.missing' });
    expect(failures(v.verdict)).toEqual(['ekcert.chain:issuer.missing']);
    // A pre-registered EK does not need the chain: the caller says so and it becomes a warning.
    const lenient = verifyEkCertificate({ certificate: c, roots: nuvotonRoot, at, requireVerifiedChain: false });
    expect(outcome(lenient, 'ekcert.chain')).toBe('warn:issuer.missing');
    expect(lenient.verdict.accepted).toBe(true);
    // The default bundle is empty: nothing is trusted until the operator configures roots.
    expect(DEFAULT_TRUST_BUNDLE.roots).toEqual([]);
    expect(verifyEkCertificate({ certificate: npct75x, at }).chain).toMatchObject({ status: 'incomplete', reason: 'issuer.missing' });
  });

  it('the leaf notAfter is advisory (a warning); an expired root is the operator\'s call (a warning)', () => {
    const later = new Date('2038-01-01T00:00:00Z'); // after the root (2037), before the leaf (2039)
    const v = verifyEkCertificate({ certificate: npct75x, roots: nuvotonRoot, at: later });
    expect(outcome(v, 'ekcert.chain.validity')).toBe('warn:root.expired');
    expect(v.chain?.status).toBe('verified');
    const much = verifyEkCertificate({ certificate: npct75x, roots: nuvotonRoot, at: new Date('2040-01-01T00:00:00Z') });
    expect(outcome(much, 'ekcert.validity')).toBe('warn:leaf.expired');
    expect(much.verdict.accepted).toBe(true);
    const early = verifyEkCertificate({ certificate: npct75x, roots: nuvotonRoot, at: new Date('2019-01-01T00:00:00Z') });
    expect(outcome(early, 'ekcert.validity')).toBe('warn:leaf.not-yet-valid');
  });

  it('DER with NV padding, PEM, bundles; what is not one certificate is an EvidenceError with an offset', () => {
    const padded = Buffer.concat([npct75x, Buffer.alloc(300, 0xff)]);
    const p = parseCertificate(padded);
    expect(p.der).toEqual(new Uint8Array(npct75x));
    expect(p.quirks[0]).toMatchObject({ code: 'der.trailing-data', offset: npct75x.length });
    expect(parseCertificate(pem(npct75x)).fingerprint).toBe(p.fingerprint);
    const bundle = `intro text\n${pem(npct75x)}${pem(npct42x)}`;
    expect(parseCertificates(bundle).map((c) => c.tpm?.model)).toEqual(['NPCT75x', 'NPCT42x/NPCT50x']);
    expect(parseCertificates(Buffer.concat([npct75x, npct42x]))).toHaveLength(2);
    const two = thrown(() => parseCertificate(bundle));
    expect(two).toBeInstanceOf(EvidenceError);
    expect((two as EvidenceError).code).toBe('evidence.certificate');
    const badPem = thrown(() => parseCertificate(pem(npct75x).replace('MII', 'M!I')));
    expect(badPem).toMatchObject({ code: 'evidence.certificate' });
    // A PEM block with padding inside is no certificate: trailing bytes are only tolerated in raw NV data.
    expect(thrown(() => parseCertificate(pem(padded)))).toMatchObject({ code: 'evidence.certificate', offset: npct75x.length });
  });

  // Hang guard, and the test's timeout is the whole check: one pass over 5.8 MB takes milliseconds,
  // one pass per BEGIN line (quadratic) would take minutes.
  it('many BEGIN lines without an END cost one pass, not one pass each', () => {
    expect(thrown(() => parseCertificates('-----BEGIN CERTIFICATE-----\n'.repeat(200_000)))).toMatchObject({ code: 'evidence.certificate', offset: 0 });
  }, 15_000);

  it('every truncation of a real certificate is an EvidenceError (never a crash), and the verification says ekcert.parse', () => {
    for (let n = 0; n < npct75x.length; n++) {
      const e = thrown(() => parseCertificate(npct75x.subarray(0, n)));
      expect(e, `prefix of ${n} bytes`).toBeInstanceOf(EvidenceError);
      expect((e as EvidenceError).code).toBe('evidence.certificate');
      expect((e as EvidenceError).offset).toBeGreaterThanOrEqual(0);
    }
    const v = verifyEkCertificate({ certificate: npct75x.subarray(0, 500), roots: nuvotonRoot, at });
    expect(failures(v.verdict)).toEqual(['ekcert.parse:certificate.malformed']);
    expect(v.certificate).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------
// A CA hierarchy made here

describe('chains of a generated CA hierarchy', () => {
  const now = new Date('2030-01-01T00:00:00Z');
  const DAY = 24 * 3600 * 1000;
  let keys: { root: Pair; intermediate: Pair; leaf: Pair };
  let base: ReturnType<typeof hierarchy>;
  const bundle = (...ders: Uint8Array[]) => trustBundle(...ders.map((d) => parseCertificate(d)));
  const verify = (h: { root: Uint8Array; intermediate: Uint8Array; leaf: Uint8Array }, extra: Partial<Parameters<typeof verifyEkCertificate>[0]> = {}) =>
    verifyEkCertificate({ certificate: h.leaf, intermediates: [h.intermediate], roots: bundle(h.root), at: now, ...extra });

  beforeAll(() => {
    keys = { root: ecKey('P-384'), intermediate: ecKey('P-256'), leaf: rsaKey() };
    base = hierarchy({ now, keys, leafKey: keys.leaf });
  });

  it('root (P-384) → intermediate (P-256) → RSA EK: verified, every EK check passes', () => {
    const v = verify(base, { ekPublic: ekPublicFor(keys.leaf.publicKey) });
    expect(failures(v.verdict)).toEqual([]);
    expect(v.chain?.status).toBe('verified');
    expect(v.chain?.path).toHaveLength(3);
    expect(v.chain?.anchor?.der).toEqual(base.root);
    expect(v.keyMatches).toBe(true);
    expect(v.verdict.checks.filter((c) => c.outcome === 'warn')).toEqual([]);
    expect(v.verdict.checks.filter((c) => c.check === 'ekcert.chain.signature').map((c) => c.reason)).toEqual(['signature.valid', 'signature.valid']);
  });

  it('an expired intermediate makes the chain invalid; so does one not yet valid', () => {
    const expired = hierarchy({ now, keys, leafKey: keys.leaf, intermediate: { notAfter: new Date(now.getTime() - DAY) } });
    const v = verify(expired);
    expect(v.chain).toMatchObject({ status: 'invalid', reason: 'intermediate.expired' });
    expect(failures(v.verdict)).toEqual(['ekcert.chain:intermediate.expired', 'ekcert.chain.validity:intermediate.expired']);
    // The same chain a day before expiry verifies: the time is an argument, never the clock.
    expect(verify(expired, { at: new Date(now.getTime() - 2 * DAY) }).chain?.status).toBe('verified');
    const early = hierarchy({ now, keys, leafKey: keys.leaf, intermediate: { notBefore: new Date(now.getTime() + DAY) } });
    expect(verify(early).chain).toMatchObject({ status: 'invalid', reason: 'intermediate.not-yet-valid' });
  });

  it('a chain to an unknown root is incomplete: issuing CA missing, or a root nobody configured', () => {
    const other = hierarchy({ now, rootName: 'some other root' });
    const missing = verify(base, { roots: bundle(other.root) });
    expect(missing.chain).toMatchObject({ status: 'incomplete', reason: 'issuer.missing' });
    expect(missing.chain?.path).toHaveLength(2);
    const untrusted = verifyEkCertificate({ certificate: base.leaf, intermediates: [base.intermediate, pem(base.root)], roots: bundle(other.root), at: now });
    expect(untrusted.chain).toMatchObject({ status: 'incomplete', reason: 'root.untrusted' });
    expect(untrusted.chain?.path.map((c) => c.subject.text)).toEqual(['', 'CN=trustroot test EK intermediate, O=trustroot tests', 'CN=trustroot test EK root, O=trustroot tests']);
    expect(failures(untrusted.verdict)).toEqual(['ekcert.chain:root.untrusted']);
  });

  it('a corrupted signature, or a changed TBS byte, is invalid (signature.invalid)', () => {
    const sig = verify({ ...base, leaf: flip(base.leaf, base.leaf.length - 10) });
    expect(sig.chain).toMatchObject({ status: 'invalid', reason: 'signature.invalid' });
    const at = Buffer.from(base.leaf).indexOf(Buffer.from('SLB9670'));
    const tbs = verify({ ...base, leaf: flip(base.leaf, at) });
    expect(parseCertificate(flip(base.leaf, at)).tpm?.model).toBe('RLB9670');
    expect(failures(tbs.verdict)).toEqual(['ekcert.chain:signature.invalid', 'ekcert.chain.signature:signature.invalid']);
    // A corrupted intermediate breaks the link above it.
    const inter = verify({ ...base, intermediate: flip(base.intermediate, base.intermediate.length - 3) });
    expect(inter.chain).toMatchObject({ status: 'invalid', reason: 'signature.invalid' });
  });

  it('wrong CA flags: an intermediate that is no CA, lacks keyCertSign, or exceeds a path length', () => {
    const notCa = hierarchy({ now, keys, leafKey: keys.leaf, intermediate: { extensions: [basicConstraints(false), keyUsage('keyCertSign')] } });
    expect(verify(notCa).chain).toMatchObject({ status: 'invalid', reason: 'ca.not-ca' });
    const noBc = hierarchy({ now, keys, leafKey: keys.leaf, intermediate: { extensions: [keyUsage('keyCertSign')] } });
    expect(verify(noBc).chain).toMatchObject({ status: 'invalid', reason: 'ca.not-ca' });
    const noSign = hierarchy({ now, keys, leafKey: keys.leaf, intermediate: { extensions: [basicConstraints(true), keyUsage('digitalSignature')] } });
    expect(verify(noSign).chain).toMatchObject({ status: 'invalid', reason: 'ca.key-usage' });
    // root → A (pathLen 0) → B → leaf: A allows no CA below it.
    const a = ecKey();
    const b = ecKey();
    const rootName = cn('trustroot test EK root', 'trustroot tests');
    const year = 365 * DAY;
    const window = { notBefore: new Date(now.getTime() - year), notAfter: new Date(now.getTime() + year) };
    const caA = makeCert({ subject: cn('CA A'), issuer: rootName, key: a.publicKey, signer: keys.root.privateKey, issuerKey: keys.root.publicKey, ...window, extensions: [basicConstraints(true, 0), keyUsage('keyCertSign')] });
    const caB = makeCert({ subject: cn('CA B'), issuer: cn('CA A'), key: b.publicKey, signer: a.privateKey, ...window, extensions: [basicConstraints(true), keyUsage('keyCertSign')] });
    const leaf = makeCert({ subject: seq(), issuer: cn('CA B'), key: keys.leaf.publicKey, signer: b.privateKey, ...window, extensions: [tpmSan('id:49465800', 'SLB9670', 'id:1'), basicConstraints(false), keyUsage('keyEncipherment'), eku(OIDS.ekCertificate)] });
    const v = verifyEkCertificate({ certificate: leaf, intermediates: [caB, caA], roots: bundle(base.root), at: now });
    expect(v.chain).toMatchObject({ status: 'invalid', reason: 'ca.path-length' });
    expect(v.chain?.path).toHaveLength(3);
  });

  it('unknown critical extensions: in the EK certificate a failed check, in a CA an invalid chain; unknown non-critical ones are quirks', () => {
    const critical: Ext = { oid: '1.3.6.1.4.1.99999.1', critical: true, value: NULL };
    const nonCritical: Ext = { oid: '1.3.6.1.4.1.99999.2', value: NULL };
    const leafExts = [tpmSan('id:49465800', 'SLB9670', 'id:1'), basicConstraints(false), keyUsage('keyEncipherment'), eku(OIDS.ekCertificate)];
    const h = hierarchy({ now, keys, leafKey: keys.leaf, leaf: { extensions: [...leafExts, critical, nonCritical] } });
    const v = verify(h);
    expect(failures(v.verdict)).toEqual(['ekcert.extensions:extension.unknown-critical']);
    expect(v.certificate?.quirks.map((q) => q.code)).toEqual(['x509.unknown-extension']);
    // Name constraints are not processed here, so a CA that sets them critically cannot be used.
    const nc: Ext = { oid: OIDS.nameConstraints, critical: true, value: seq(ctx(0, seq(ctx(4, cn('x'))))) };
    const ca = hierarchy({ now, keys, leafKey: keys.leaf, intermediate: { extensions: [basicConstraints(true), keyUsage('keyCertSign'), nc] } });
    expect(verify(ca).chain).toMatchObject({ status: 'invalid', reason: 'extension.unknown-critical' });
  });

  it('signature algorithms: outer ≠ TBS is refused; RSASSA-PSS and SHA-1 verify (SHA-1 with a warning)', () => {
    const mismatch = hierarchy({ now, keys, leafKey: keys.leaf, leaf: { outerAlgorithm: seq(oid('1.2.840.10045.4.3.3')) } });
    expect(verify(mismatch).chain).toMatchObject({ status: 'invalid', reason: 'signature.algorithm-mismatch' });
    const rsaRoot = rsaKey();
    const pss = hierarchy({ now, keys: { root: rsaRoot, intermediate: keys.intermediate }, leafKey: keys.leaf, intermediate: { signature: 'pss' } });
    const pv = verify(pss);
    expect(pv.chain?.status).toBe('verified');
    expect(pv.verdict.checks.filter((c) => c.check === 'ekcert.chain.signature').map((c) => c.detail).join(' ')).toContain('RSASSA-PSS(sha256, salt 32)');
    const sha1 = hierarchy({ now, keys: { root: rsaRoot, intermediate: keys.intermediate }, leafKey: keys.leaf, intermediate: { signature: 'sha1' } });
    const sv = verify(sha1);
    expect(sv.chain?.status).toBe('verified');
    expect(outcome(sv, 'ekcert.chain.algorithm')).toBe('warn:hash.sha1');
  });

  it('non-DER encodings that the CA really signed (long lengths, encoded DEFAULTs, unsorted SETs) verify, with quirks', () => {
    const leafExts: Ext[] = [
      { ...tpmSan('id:49465800', 'SLB9670', 'id:1'), critical: true },
      basicConstraints(false),
      keyUsage('keyEncipherment'),
      { ...eku(OIDS.ekCertificate), explicitFalse: true },
    ];
    const longSerial = (tbs: Uint8Array): Uint8Array => {
      // tbs = 30 82 LL LL | a0 03 02 01 02 | 02 01 03 …: the serial's length in long form (BER) and the TBS one byte longer.
      const b = Buffer.from(tbs);
      expect([...b.subarray(0, 2), ...b.subarray(4, 12)]).toEqual([0x30, 0x82, 0xa0, 0x03, 0x02, 0x01, 0x02, 0x02, 0x01, 0x03]);
      const out = Buffer.concat([b.subarray(0, 10), Buffer.from([0x81]), b.subarray(10)]);
      out.writeUInt16BE(b.readUInt16BE(2) + 1, 2);
      return out;
    };
    const h = hierarchy({ now, keys, leafKey: keys.leaf, leaf: { extensions: leafExts, mutateTbs: longSerial } });
    const v = verify(h);
    expect(v.chain?.status).toBe('verified');
    expect(new Set(v.certificate?.quirks.map((q) => q.code))).toEqual(new Set(['ber.long-length', 'der.default-encoded']));
    expect(outcome(v, 'ekcert.encoding')).toBe('warn:encoding.quirks');
    // An unsorted multi-valued RDN in a CA's subject (Nuvoton style) still names the issuer of its certificates.
    const odd = name([[OIDS.o, 'trustroot tests'], [OIDS.cn, 'unsorted CA'], [OIDS.c, 'XX']]);
    const year = 365 * DAY;
    const window = { notBefore: new Date(now.getTime() - year), notAfter: new Date(now.getTime() + year) };
    const ca = makeCert({ subject: odd, issuer: odd, key: keys.intermediate.publicKey, signer: keys.intermediate.privateKey, ...window, extensions: [basicConstraints(true), keyUsage('keyCertSign')] });
    const sortedIssuer = name([[OIDS.c, 'XX'], [OIDS.cn, 'unsorted CA'], [OIDS.o, 'trustroot tests']]);
    const leaf = makeCert({ subject: seq(), issuer: sortedIssuer, key: keys.leaf.publicKey, signer: keys.intermediate.privateKey, issuerKey: keys.intermediate.publicKey, ...window, extensions: leafExts });
    expect(parseCertificate(ca).quirks.map((q) => q.code)).toContain('der.set-order');
    expect(verifyEkCertificate({ certificate: leaf, roots: bundle(ca), at: now }).chain?.status).toBe('verified');
  });

  it('an ECDSA signature value that is not DER (r with a redundant zero octet) is tolerated by value, with a warning', () => {
    const padR = (sig: Uint8Array): Uint8Array => {
      // 30 L 02 rl r… 02 sl s…: r gets one more leading 0x00 (BER, not DER: X.690 §8.3.2).
      expect(sig[0]).toBe(0x30);
      const rl = sig[3]!;
      const r = sig.subarray(4, 4 + rl);
      const rest = sig.subarray(4 + rl);
      return seq(Uint8Array.of(0x02, rl + 1, 0x00, ...r), rest);
    };
    const h = hierarchy({ now, keys, leafKey: keys.leaf, leaf: { mutateSignature: padR } });
    const v = verify(h);
    expect(v.chain?.status).toBe('verified');
    expect(outcome(v, 'ekcert.chain.encoding')).toBe('warn:signature.not-der');
    // The same padding around a wrong value still fails.
    const wrong = hierarchy({ now, keys, leafKey: keys.leaf, leaf: { mutateSignature: (sig) => padR(flip(sig, sig.length - 1)) } });
    expect(verify(wrong).chain).toMatchObject({ status: 'invalid', reason: 'signature.invalid' });
  });

  it('same-named CAs: key identifiers pick the right one; without them the wrong one fails and the right one verifies', () => {
    const impostor = ecKey();
    const year = 365 * DAY;
    const window = { notBefore: new Date(now.getTime() - year), notAfter: new Date(now.getTime() + year) };
    const rootName = cn('trustroot test EK root', 'trustroot tests');
    const interName = cn('trustroot test EK intermediate', 'trustroot tests');
    const fake = makeCert({ subject: interName, issuer: rootName, key: impostor.publicKey, signer: keys.root.privateKey, issuerKey: keys.root.publicKey, ...window, serial: 9, extensions: [basicConstraints(true), keyUsage('keyCertSign')] });
    const both = verifyEkCertificate({ certificate: base.leaf, intermediates: [fake, base.intermediate], roots: bundle(base.root), at: now });
    expect(both.chain?.status).toBe('verified');
    // With the AKI, the same-named CA of another key is not even a candidate: the issuer is missing.
    expect(verifyEkCertificate({ certificate: base.leaf, intermediates: [fake], roots: bundle(base.root), at: now }).chain).toMatchObject({ status: 'incomplete', reason: 'issuer.missing' });
    // Without key identifiers it is a candidate whose signature does not verify.
    const leafNoIds = makeCert({ subject: seq(), issuer: interName, key: keys.leaf.publicKey, signer: keys.intermediate.privateKey, ...window, keyIds: false, extensions: [basicConstraints(false), keyUsage('keyEncipherment')] });
    expect(verifyEkCertificate({ certificate: leafNoIds, intermediates: [fake], roots: bundle(base.root), at: now }).chain).toMatchObject({ status: 'invalid', reason: 'signature.invalid' });
    expect(verifyEkCertificate({ certificate: leafNoIds, intermediates: [fake, base.intermediate], roots: bundle(base.root), at: now }).chain?.status).toBe('verified');
  });

  it('an EK certificate configured as trusted itself verifies directly (leaf.trusted)', () => {
    const r = verifyEkChain(parseCertificate(base.leaf), { at: now, roots: bundle(base.leaf) });
    expect(r).toMatchObject({ status: 'verified', reason: 'leaf.trusted' });
  });

  it('EK profile checks: CA:TRUE, wrong keyUsage, a non-EK EKU, no TPM attributes; ECC EKs need keyAgreement', () => {
    const h = (extensions: Ext[], leafKey: Pair = keys.leaf) => verify(hierarchy({ now, keys, leafKey, leaf: { extensions } }));
    expect(failures(h([tpmSan('id:1', 'm', 'id:1'), basicConstraints(true), keyUsage('keyEncipherment'), eku(OIDS.ekCertificate)]).verdict)).toEqual(['ekcert.basic-constraints:leaf.is-ca']);
    expect(failures(h([tpmSan('id:1', 'm', 'id:1'), basicConstraints(false), keyUsage('digitalSignature'), eku(OIDS.ekCertificate)]).verdict)).toEqual(['ekcert.key-usage:key-usage.wrong']);
    expect(failures(h([tpmSan('id:1', 'm', 'id:1'), basicConstraints(false), keyUsage('keyEncipherment'), eku('1.3.6.1.5.5.7.3.1')]).verdict)).toEqual(['ekcert.eku:eku.not-ek']);
    const bare = h([basicConstraints(false), keyUsage('keyEncipherment')]);
    expect([outcome(bare, 'ekcert.tpm-attributes'), outcome(bare, 'ekcert.eku')]).toEqual(['warn:tpm-attributes.absent', 'warn:eku.absent']);
    const ecc = ecKey('P-384');
    expect(failures(h([tpmSan('id:1', 'm', 'id:1'), basicConstraints(false), keyUsage('keyEncipherment')], ecc).verdict)).toEqual(['ekcert.key-usage:key-usage.wrong']);
    const good = h([tpmSan('id:1', 'm', 'id:1'), basicConstraints(false), keyUsage('keyAgreement'), eku(OIDS.ekCertificate)], ecc);
    expect(failures(good.verdict)).toEqual([]);
    // The certificate's ECC key against ECC and RSA EK public areas.
    const cert = good.certificate!;
    expect(compareEkPublicKey(cert, ekPublicFor(ecc.publicKey))).toMatchObject({ outcome: 'pass', reason: 'key.match' });
    expect(compareEkPublicKey(cert, ekPublicFor(ecKey('P-384').publicKey))).toMatchObject({ outcome: 'fail', reason: 'key.mismatch' });
    expect(compareEkPublicKey(cert, ekPublicFor(ecKey('P-256').publicKey))).toMatchObject({ outcome: 'fail', reason: 'key.mismatch' });
    expect(compareEkPublicKey(cert, ekPublicFor(keys.leaf.publicKey))).toMatchObject({ outcome: 'fail', reason: 'key.type-mismatch' });
  });
});

// ---------------------------------------------------------------------------
// swtpm_setup + swtpm_localca: an issuer we did not write

describeWithSwtpmSetup('EK certificates made by swtpm_setup/swtpm_localca, read from a swtpm', () => {
  let sw: SwtpmWithCertificates;
  let tpm: Tpm;
  let at: Date;
  const ek: Record<'L-1' | 'H-3', { cert: Uint8Array; pub: TPMT_PUBLIC }> = {} as never;
  let description: TpmDescription;
  let roots: ReturnType<typeof trustBundle>;
  let intermediates: string[];

  beforeAll(async () => {
    sw = await startSwtpmWithCertificates();
    tpm = new Tpm(new SwtpmTransport({ port: sw.port, ctrlPort: sw.ctrlPort }));
    await tpm.run(Startup, {}, { startupType: TPM_SU.CLEAR });
    for (const id of ['L-1', 'H-3'] as const) {
      const cert = await readEkCertificate(tpm, id);
      if (cert === undefined) throw new Error(`swtpm_setup wrote no ${id} certificate`);
      // swtpm_setup persisted both EKs: nothing transient to flush.
      ek[id] = { cert, pub: (await getEk(tpm, { template: id })).publicArea };
    }
    description = await describeTpmOf(tpm);
    roots = trustBundle(sw.rootCertificatePem);
    intermediates = [sw.issuerCertificatePem];
    at = new Date(); // the certificates were issued seconds ago
  }, 90_000);
  afterAll(async () => {
    await tpm?.close();
    await sw?.stop();
  });

  it.each(['L-1', 'H-3'] as const)('%s: root → intermediate → EK verifies, the key is the EK, the SAN matches the TPM (swtpm quirk tolerated)', (id) => {
    const v = verifyEkCertificate({ certificate: ek[id].cert, intermediates, roots, at, ekPublic: ek[id].pub, description });
    expect(failures(v.verdict)).toEqual([]);
    expect(v.chain?.status).toBe('verified');
    expect(v.chain?.path.map((c) => c.subject.text)).toEqual(['CN=unknown', 'CN=swtpm-localca', 'CN=swtpm-localca-rootca']);
    expect(v.keyMatches).toBe(true);
    expect(v.certificate?.publicKey.kind).toBe(id === 'L-1' ? 'rsa' : 'ecc');
    if (id === 'H-3') expect(v.certificate?.publicKey).toMatchObject({ curveOid: '1.3.132.0.34' });
    // libtpms' TPMAttributes say id:00001014 while TPM_PT_MANUFACTURER says IBM.
    expect(description.manufacturer).toBe('IBM');
    expect(v.certificate?.tpm).toMatchObject({ manufacturer: 'id:00001014', model: 'swtpm' });
    expect([outcome(v, 'ekcert.manufacturer'), outcome(v, 'ekcert.model'), outcome(v, 'ekcert.version')]).toEqual([
      'pass:manufacturer.swtpm-quirk',
      'pass:model.match',
      'pass:version.match',
    ]);
    expect(v.certificate?.quirks).toEqual([]);
  });

  it('an EK certificate that is not the EK: the other EK, or a changed modulus', () => {
    const swapped = verifyEkCertificate({ certificate: ek['L-1'].cert, intermediates, roots, at, ekPublic: ek['H-3'].pub });
    expect(failures(swapped.verdict)).toEqual(['ekcert.public-key:key.type-mismatch']);
    expect(swapped.keyMatches).toBe(false);
    const pub = ek['L-1'].pub;
    if (pub.type !== TPM_ALG.RSA) throw new Error('RSA EK expected');
    const other = verifyEkCertificate({ certificate: ek['L-1'].cert, intermediates, roots, at, ekPublic: { ...pub, unique: flip(pub.unique, 7) } });
    expect(failures(other.verdict)).toEqual(['ekcert.public-key:key.mismatch']);
  });

  it('a chain to an unknown root: incomplete (issuer missing, or swtpm-localca-rootca not configured)', () => {
    const foreign = trustBundle(fixture('nuvoton-tpm-root-ca-2111.pem'));
    expect(verifyEkCertificate({ certificate: ek['H-3'].cert, intermediates, roots: foreign, at }).chain).toMatchObject({ status: 'incomplete', reason: 'issuer.missing' });
    const untrusted = verifyEkCertificate({ certificate: ek['H-3'].cert, intermediates: [...intermediates, sw.rootCertificatePem], roots: foreign, at });
    expect(untrusted.chain).toMatchObject({ status: 'incomplete', reason: 'root.untrusted' });
    expect(failures(untrusted.verdict)).toEqual(['ekcert.chain:root.untrusted']);
  });

  it('a corrupted signature or TBS byte is invalid; truncated DER does not parse', () => {
    const cert = ek['L-1'].cert;
    const bad = verifyEkCertificate({ certificate: flip(cert, cert.length - 20), intermediates, roots, at });
    expect(failures(bad.verdict)).toEqual(['ekcert.chain:signature.invalid', 'ekcert.chain.signature:signature.invalid']);
    // tpmModel "swtpm" in the SAN (a 5-character string), not the issuer's "swtpm-localca".
    const model = Buffer.from(cert).indexOf(Buffer.from([0x05, ...Buffer.from('swtpm')])) + 1;
    expect(model).toBeGreaterThan(1);
    expect(verifyEkCertificate({ certificate: flip(cert, model), intermediates, roots, at }).chain?.reason).toBe('signature.invalid');
    const truncated = verifyEkCertificate({ certificate: cert.subarray(0, cert.length - 1), intermediates, roots, at });
    expect(failures(truncated.verdict)).toEqual(['ekcert.parse:certificate.malformed']);
    expect(check(truncated, 'ekcert.parse').detail).toMatch(/truncated/);
  });

  it('the swtpm intermediate is a CA that swtpm_localca marks CA:TRUE with keyCertSign, and it is what signed both EK certificates', () => {
    const issuer = parseCertificate(sw.issuerCertificatePem);
    expect(issuer.basicConstraints?.ca).toBe(true);
    expect(issuer.keyUsage).toContain('keyCertSign');
    const leaves: ParsedCertificate[] = [parseCertificate(ek['L-1'].cert), parseCertificate(ek['H-3'].cert)];
    for (const l of leaves) expect(Buffer.from(l.authorityKeyId!).equals(Buffer.from(issuer.subjectKeyId!))).toBe(true);
  });
});

// ---------------------------------------------------------------------------

describe('fuzzing (fixed seed; fuzz/attest-ekcert.ts for long runs)', () => {
  it('20,000 random and mutated certificates: only EvidenceErrors, and many reach the EK checks', () => {
    const stats = fuzzEkCert(20261129, 20_000);
    expect(stats.untyped).toEqual([]);
    expect(stats.untypedCount).toBe(0);
    expect(stats.inputs).toBeGreaterThanOrEqual(20_000);
    expect(stats.parsed).toBeGreaterThan(2_000);
    expect([...stats.codes.keys()]).toEqual(['evidence.certificate']);
  }, 60_000);
});
