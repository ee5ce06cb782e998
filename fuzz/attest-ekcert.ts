/**
 * Fuzzing of the EK certificate parser and of everything that consumes its
 * output (src/attest/ekcert.ts, chain.ts, classify.ts): random byte strings
 * and PEM text from fast-check, and mutations of real EK and CA certificates
 * (test/fixtures/ekcert) and of a generated root → intermediate → EK
 * hierarchy (bit flips, length octets made long, huge or off by one, elements
 * cut, duplicated or spliced, padding appended, PEM armour damaged) go through
 * parseCertificate and parseCertificates; whatever parses is checked as an EK
 * certificate, chained and classified. Every failure must be an
 * EvidenceError; anything else (TypeError, RangeError, a stack overflow, a
 * hang) is a bug.
 *
 * Used by test/attest/ekcert.test.ts (fixed seed, CI) and as a long run:
 * `npx tsx fuzz/attest-ekcert.ts --seed N --iterations M`.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { trustBundle, verifyEkChain, verifyEkCertificate } from '../src/attest/chain.js';
import { classifyTpm } from '../src/attest/classify.js';
import { checkEkCertificate, parseCertificate, parseCertificates, type ParsedCertificate } from '../src/attest/ekcert.js';
import { TPM_PT } from '../src/tpm/constants.js';
import { describeTpm, type TpmDescription } from '../src/tpm/description.js';
import { TrustrootError } from '../src/tpm/errors.js';
import { rsaEkTemplate } from '../src/tpm/templates.js';
import type { TPMT_PUBLIC } from '../src/tpm/types/index.js';
import { hierarchy, pem } from '../test/attest/ekcert-builder.js';
import { mutate, Prng, type FuzzStats, recordInput } from './parsers.js';
import { isMain, runStandalone } from './mutate.js';

const FIXTURES = fileURLToPath(new URL('../test/fixtures/ekcert/', import.meta.url));
const AT = new Date('2030-01-01T00:00:00Z');


interface Pool {
  readonly der: Uint8Array[];
  readonly roots: ParsedCertificate[];
  readonly intermediates: ParsedCertificate[];
}

let cached: Pool | undefined;

/** Real certificates from the fixtures and one generated hierarchy (made once per process). */
function pool(): Pool {
  if (cached) return cached;
  const der: Uint8Array[] = [];
  for (const f of readdirSync(FIXTURES).sort()) {
    if (!/\.(der|pem)$/.test(f)) continue;
    const c = parseCertificate(readFileSync(FIXTURES + f));
    der.push(c.der);
  }
  const h = hierarchy({ now: AT });
  der.push(h.root, h.intermediate, h.leaf);
  const roots = [h.root, ...der.filter((d) => parseCertificate(d).selfIssued)].map((d) => parseCertificate(d));
  cached = { der, roots, intermediates: [parseCertificate(h.intermediate)] };
  return cached;
}

const TEXT = new TextEncoder();

function description(manufacturer: string, vendor: string): TpmDescription {
  const word = (s: string): number => [0, 1, 2, 3].reduce((acc, i) => (acc << 8) | (s.charCodeAt(i) & 0xff || 0), 0) >>> 0;
  const v = vendor.padEnd(16, '\0');
  return describeTpm({
    properties: [
      { property: TPM_PT.MANUFACTURER, value: word(manufacturer.padEnd(4, '\0')) },
      { property: TPM_PT.VENDOR_STRING_1, value: word(v.slice(0, 4)) },
      { property: TPM_PT.VENDOR_STRING_2, value: word(v.slice(4, 8)) },
      { property: TPM_PT.FIRMWARE_VERSION_1, value: 0x00070002 },
    ],
    algorithms: [],
    commands: [],
    pcrs: [],
    eccCurves: [],
  });
}

/** DER-aware mutations on top of the generic ones: length octets, tags, whole elements. */
function mutateDer(input: Uint8Array, rng: Prng): Uint8Array {
  const b = input.slice();
  switch (rng.below(6)) {
    case 0: {
      // a length octet made long-form, indefinite, or huge
      const at = 1 + rng.below(Math.max(1, b.length - 1));
      b[at] = [0x80, 0x81, 0x84, 0xff, 0x00, 0x7f][rng.below(6)]!;
      return b;
    }
    case 1: {
      // a tag changed to another interesting one
      const at = rng.below(Math.max(1, b.length));
      b[at] = [0x30, 0x31, 0x02, 0x03, 0x04, 0x06, 0x0c, 0x13, 0x17, 0x18, 0xa0, 0xa3, 0x1f, 0x24][rng.below(14)]!;
      return b;
    }
    case 2: {
      // NV padding or junk after the certificate
      const pad = new Uint8Array(1 + rng.below(64)).fill(rng.below(2) === 0 ? 0 : 0xff);
      return Uint8Array.from([...b, ...pad]);
    }
    case 3: {
      // splice a random window of another certificate in
      const other = pool().der[rng.below(pool().der.length)]!;
      const from = rng.below(other.length);
      const len = Math.min(other.length - from, 1 + rng.below(64));
      const at = rng.below(b.length);
      return Uint8Array.from([...b.subarray(0, at), ...other.subarray(from, from + len), ...b.subarray(at)]);
    }
    case 4:
      // deep nesting: many SEQUENCE headers in front
      return Uint8Array.from([...Array.from({ length: 40 + rng.below(200) }, () => [0x30, 0x80]).flat(), ...b]);
    default:
      return mutate(b, rng);
  }
}

/**
 * What a parsed certificate goes through: the EK checks and, when `chain` is
 * set (signature checks dominate the cost, so not for every input), the
 * chain and the classifier.
 */
function consume(cert: ParsedCertificate, p: Pool, ekPublic: TPMT_PUBLIC | undefined, d: TpmDescription, chain: boolean): void {
  checkEkCertificate(cert, { at: AT, description: d, ...(ekPublic !== undefined ? { ekPublic } : {}) });
  if (!chain) return;
  const result = verifyEkChain(cert, { at: AT, roots: p.roots, intermediates: p.intermediates });
  classifyTpm(d, result, { profile: 'test' });
}

/**
 * Feeds `iterations` inputs through the parsers and their consumers.
 * @returns counts; `untypedCount` must be 0.
 */
export function fuzzEkCert(seed: number, iterations: number): FuzzStats {
  const rng = new Prng(seed);
  const stats: FuzzStats = { inputs: 0, parsed: 0, typedErrors: 0, untypedCount: 0, untyped: [], codes: new Map() };
  const p = pool();
  const ek: TPMT_PUBLIC = { ...rsaEkTemplate(), unique: new Uint8Array(256).fill(7) } as TPMT_PUBLIC;
  const bundle = trustBundle(p.roots);
  const descriptions = [description('NTC', 'NPCT75x'), description('IBM', 'SW  TPM'), description('TRST', 'trustroot')];
  // The seeds themselves must parse.
  for (const der of p.der) recordInput(stats, der, () => consume(parseCertificate(der), p, ek, descriptions[0]!, true));
  const randomBytes = fc.sample(fc.uint8Array({ maxLength: 300 }), { seed, numRuns: Math.max(1, Math.floor(iterations / 8)) });
  const randomText = fc.sample(fc.string({ maxLength: 200 }), { seed: seed + 1, numRuns: Math.max(1, Math.floor(iterations / 16)) });
  let rb = 0;
  let rt = 0;
  while (stats.inputs < iterations) {
    const pick = rng.below(16);
    let input: Uint8Array;
    if (pick === 0 && rb < randomBytes.length) input = randomBytes[rb++]!;
    else if (pick === 1 && rt < randomText.length) input = TEXT.encode(`-----BEGIN CERTIFICATE-----\n${randomText[rt++]!}\n-----END CERTIFICATE-----\n`);
    else if (pick === 2) {
      // PEM armour around a mutated certificate, sometimes with damaged base64
      const text = pem(mutateDer(p.der[rng.below(p.der.length)]!, rng));
      const chars = [...text];
      if (rng.below(2) === 0) chars[rng.below(chars.length)] = ['!', '=', '-', '\n', 'A'][rng.below(5)]!;
      input = TEXT.encode(chars.join(''));
    } else input = mutateDer(p.der[rng.below(p.der.length)]!, rng);
    const d = descriptions[rng.below(descriptions.length)]!;
    recordInput(stats, input, () => {
      let parsed: ParsedCertificate | undefined;
      try {
        parsed = parseCertificate(input);
      } catch (e) {
        if (!(e instanceof TrustrootError)) throw e;
      }
      if (parsed !== undefined) consume(parsed, p, rng.below(2) === 0 ? ek : undefined, d, rng.below(4) === 0);
      // Now and then the bundle reader and the all-in-one verification see the same bytes.
      if (rng.below(8) === 0) {
        try {
          for (const c of parseCertificates(input)) consume(c, p, undefined, d, false);
        } catch (e) {
          if (!(e instanceof TrustrootError)) throw e;
        }
        const v = verifyEkCertificate({ certificate: input, roots: bundle, intermediates: [input], at: AT, description: d });
        if (v.verdict.checks.length === 0) throw new Error('a verification without checks');
      }
      if (parsed === undefined) parseCertificate(input);
    });
  }
  return stats;
}

// A long run on its own: npx tsx fuzz/attest-ekcert.ts --seed N --iterations M
if (isMain(import.meta.url)) runStandalone('attest-ekcert', fuzzEkCert, 50_000);
