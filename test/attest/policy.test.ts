/**
 * The attestation policy (src/attest/policy.ts, policy.schema.ts, profiles.ts).
 *
 * Reading: the schema itself (closed objects, resolvable refs, JSON form),
 * good documents (both profiles, one using every field, text/bytes/BOM,
 * profile merges), and each kind of bad document refused with its JSON path
 * and keyword; the fixed-seed fuzz run (fuzz/attest-policy.ts).
 *
 * Rules, on real evidence quoted by swtpm:
 *  - device A: a Container-Optimized OS 85 machine's UEFI log (go-eventlog,
 *    Secure Boot on, three EFI applications, grub's kernel command line) and
 *    an OpenPOWER machine's IMA list (keylime's test data) are extended into
 *    a fresh swtpm as their firmware and kernel (5.4: padded SHA-1 template
 *    hashes) did; an ECC AK under the EK quotes PCRs 0–10 of SHA-1 and
 *    SHA-256. Golden values are the PCRs go-eventlog publishes for that
 *    machine, the boot chain its published EFI application digests, the IMA
 *    allowlists keylime's own runtime policies (test/fixtures/policy).
 *  - device B: an Ubuntu 21.04 log with Secure Boot off, then a power cut
 *    (safe = 0) for the clock rule.
 *  - device C: a swtpm manufactured by swtpm_setup (EK certificates from
 *    swtpm_localca) with honest evidence from the measured-boot writer
 *    (src/attest/writer.ts via test/support/measured-boot.ts): the two
 *    profiles (software TPM refused by production, allowed by test), EK-chain
 *    and firmware rules, IMA violations and exclusions.
 * Each rule passes on the honest evidence and fails, with its reason, on
 * evidence that breaks it (including forged logs and lists that a replay
 * alone would let through).
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { examplePolicyDocument, fuzzPolicy } from '../../fuzz/attest-policy.js';
import { trustBundle, verifyEkCertificate, type EkCertificateVerification } from '../../src/attest/chain.js';
import { newChallenge, type Challenge } from '../../src/attest/challenge.js';
import { classifyTpm, PRODUCTION_PROFILE, TEST_PROFILE, type TpmClassification } from '../../src/attest/classify.js';
import { EV, parseEventLog, type EventLog } from '../../src/attest/eventlog.js';
import { decodeEvents, secureBootState } from '../../src/attest/events.js';
import { parseImaAscii, parseImaBinary, replayIma, type ImaEntry, type ImaReplayResult } from '../../src/attest/ima.js';
import {
  akPolicyOf,
  classificationProfileOf,
  clockPolicyOf,
  evaluatePolicy,
  eventLogEvidence,
  formatFirmwareVersion,
  globMatcher,
  MAX_POLICY_ISSUES,
  parsePolicy,
  PolicyError,
  readPolicyText,
  type Policy,
  type PolicyDocument,
  type PolicyEvidence,
} from '../../src/attest/policy.js';
import { POLICY_SCHEMA, policySchemaJson } from '../../src/attest/policy.schema.js';
import { POLICY_PROFILES, policyProfile, PRODUCTION_POLICY_DOCUMENT, withProfile } from '../../src/attest/profiles.js';
import { verifyQuote, type QuoteVerdict } from '../../src/attest/quote.js';
import { failures, type Verdict } from '../../src/attest/verdict.js';
import { createAk, createEk, describe as describeTpm, getEk, pcrBanks, pcrExtend, quote, readEkCertificate, Tpm, type Ak, type QuoteResult } from '../../src/client/index.js';
import { Startup } from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_SU } from '../../src/tpm/constants.js';
import { digestSize } from '../../src/tpm/crypto/hash.js';
import type { TpmDescription } from '../../src/tpm/description.js';
import { EvidenceError } from '../../src/tpm/errors.js';
import { pcrSelection } from '../../src/tpm/pcr.js';
import { SwtpmTransport } from '../../src/tpm/transport/index.js';
import type { TPMS_PCR_SELECTION, TPMT_HA } from '../../src/tpm/types/index.js';
import { applyMeasuredBoot, type AppliedMeasuredBoot } from '../support/measured-boot.js';
import { describeWithSwtpm, startSwtpm, type SwtpmInstance } from '../support/swtpm.js';
import { describeWithSwtpmSetup, startSwtpmWithCertificates, type SwtpmWithCertificates } from '../support/swtpm-setup.js';
import { tpmDescription } from './ekcert-builder.js';

const fixture = (dir: string, name: string): Uint8Array => new Uint8Array(readFileSync(new URL(`../fixtures/${dir}/${name}`, import.meta.url)));
const json = <T>(dir: string, name: string): T => JSON.parse(new TextDecoder().decode(fixture(dir, name))) as T;

interface Expected {
  readonly pcrs: Record<'sha1' | 'sha256', Record<string, string>>;
  readonly efiApps: Record<'sha1' | 'sha256' | 'sha384', string[]>;
  readonly kernelCmdline: string;
}
const EXPECTED = json<Record<string, Expected>>('eventlog', 'expected.json');
const COS = EXPECTED['COS85AmdSev']!;
const COS93 = EXPECTED['COS93AmdSev']!;

interface KeylimePolicy {
  readonly digests: Record<string, string[]>;
  readonly keyrings: Record<string, string[]>;
}
const KEYLIME = json<{ RUNTIME_POLICY_TEST: KeylimePolicy; RUNTIME_POLICY_WRONG: KeylimePolicy; EXCLUDES: string[] }>('policy', 'keylime-runtime-policies.json');
/** keylime's runtime policy as trustroot IMA rules: digests by path, and keyring buffers (ima-buf) by their event name. */
const imaRulesOf = (p: KeylimePolicy, exclude: readonly string[] = []): NonNullable<PolicyDocument['ima']> => ({ allow: { ...p.digests, ...p.keyrings }, ...(exclude.length > 0 ? { exclude: [...exclude] } : {}) });

const sha256 = (b: Uint8Array | string): string => createHash('sha256').update(b).digest('hex');
const outcomes = (v: Verdict, id?: string): string[] => v.checks.filter((c) => id === undefined || c.check === id).map((c) => `${c.check}:${c.outcome}:${c.reason}`);
const one = (v: Verdict, id: string): { outcome: string; reason: string; detail: string } => {
  const found = v.checks.filter((c) => c.check === id);
  expect(found, `${id} in ${outcomes(v).join(' ')}`).toHaveLength(1);
  return found[0]!;
};
const issuesOf = (f: () => unknown): PolicyError => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(PolicyError);
    return e as PolicyError;
  }
  throw new Error('expected a PolicyError');
};

// ---------------------------------------------------------------------------
// Reading policies

describe('the schema', () => {
  it('is JSON Schema 2020-12, every $ref resolves, every object with properties is closed', () => {
    expect(POLICY_SCHEMA.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    const defs = POLICY_SCHEMA.$defs as Record<string, unknown>;
    const walk = (node: unknown, where: string): void => {
      if (Array.isArray(node)) return node.forEach((n, i) => walk(n, `${where}[${i}]`));
      if (node === null || typeof node !== 'object') return;
      const o = node as Record<string, unknown>;
      if (typeof o['$ref'] === 'string') expect(defs[(o['$ref'] as string).replace('#/$defs/', '')], `${where}: ${o['$ref'] as string}`).toBeDefined();
      if ('properties' in o) expect(o['additionalProperties'], `${where} is closed`).toBe(false);
      for (const [k, v] of Object.entries(o)) if (k !== 'const' && k !== 'enum') walk(v, `${where}.${k}`);
    };
    walk(POLICY_SCHEMA, '$');
  });

  it('policySchemaJson() is the same schema as JSON text', () => {
    expect(JSON.parse(policySchemaJson())).toEqual(JSON.parse(JSON.stringify(POLICY_SCHEMA)));
  });

  it('globMatcher: * any characters, ? one, everything else literal, whole string', () => {
    const cases: [string, string, boolean][] = [
      ['console=*', 'console=ttyS0', true],
      ['console=*', 'xconsole=ttyS0', false],
      ['ro', 'ro', true],
      ['ro', 'root=/dev/sda', false],
      ['*sig_enforce=?', 'module.sig_enforce=1', true],
      ['*sig_enforce=?', 'module.sig_enforce=10', false],
      ['a*b*c', 'aXbYbZc', true],
      ['a*b*c', 'acb', false],
      ['*', '', true],
      ['a?c*', 'abcdef', true],
      ['*?*', '', false],
    ];
    for (const [p, s, want] of cases) expect(globMatcher(p)(s), `${p} ~ ${s}`).toBe(want);
  });

  // Hang guard, and the test's timeout is the whole check: each segment is found once, left to right
  // (linear), where backtracking over 101 stars in 200,000 characters would never finish.
  it('globMatcher: a pathological pattern over a long text returns', () => {
    expect(globMatcher(`${'*a'.repeat(100)}*b`)('a'.repeat(200_000))).toBe(false);
  }, 15_000);
});

describe('good policies', () => {
  it('both profiles validate, and their classification profiles are classify.ts\'s', () => {
    for (const name of ['production', 'test'] as const) {
      const p = policyProfile(name);
      expect(p).toMatchObject({ kind: 'attestation-policy', version: 1, name });
      expect(p.document).toEqual(POLICY_PROFILES[name]);
      expect(p.document).not.toBe(POLICY_PROFILES[name]);
    }
    for (const [policy, profile] of [
      [policyProfile('production'), PRODUCTION_PROFILE],
      [policyProfile('test'), TEST_PROFILE],
    ] as const) {
      const derived = classificationProfileOf(policy);
      expect([...derived.allowedTypes].sort()).toEqual([...profile.allowedTypes].sort());
      expect([...derived.allowedAssurance].sort()).toEqual([...profile.allowedAssurance].sort());
    }
    expect(classificationProfileOf(parsePolicy({ version: 1, tpm: { allowUnknownType: false } })).allowedTypes).not.toContain('unknown');
    expect(classificationProfileOf(parsePolicy({ version: 1, tpm: { minimumType: 'firmware' } })).allowedTypes).toEqual(['discrete', 'integrated', 'firmware']);
    expect(clockPolicyOf(policyProfile('production'))).toEqual({ unsafe: 'warn' });
    expect(akPolicyOf(policyProfile('production'))).toEqual({ allowSha1: false });
  });

  it('a policy using every field validates; the document is a copy; text, bytes and a BOM read the same', () => {
    const doc = examplePolicyDocument();
    const p = parsePolicy(doc);
    expect(p.document).toEqual(doc);
    (doc.pcrs!.sha256 as Record<string, string>)['0'] = 'changed';
    expect((p.document.pcrs!.sha256 as Record<string, string>)['0']).not.toBe('changed');
    expect(Object.isFrozen(p.document.pcrs!.sha256)).toBe(true);
    const text = JSON.stringify(examplePolicyDocument());
    expect(parsePolicy(text).document).toEqual(examplePolicyDocument());
    expect(parsePolicy(new TextEncoder().encode(`\uFEFF${text}`)).document).toEqual(examplePolicyDocument());
    expect(readPolicyText('{"version": 1}')).toEqual({ version: 1 });
    // Keys whose value is undefined (TypeScript spreads) are absent, not errors.
    expect(parsePolicy({ version: 1, name: undefined, pcrs: undefined }).document).toEqual({ version: 1 });
    // A JSON key "__proto__" stays data.
    const proto = parsePolicy(`{"version":1,"ima":{"allow":{"__proto__":["sha256:${'ab'.repeat(32)}"]}}}`);
    expect(Object.keys(proto.document.ima!.allow!)).toEqual(['__proto__']);
  });

  it('withProfile merges sections and keeps the profile\'s rules; errors name the paths of the additions', () => {
    const p = withProfile('production', { pcrs: { sha256: { '7': 'ab'.repeat(32) } }, eventLog: { bootChain: { sha256: ['cd'.repeat(32)] } } });
    expect(p.document.eventLog).toEqual({ secureBoot: 'enabled', bootChain: { sha256: ['cd'.repeat(32)] } });
    expect(p.document.tpm).toEqual(PRODUCTION_POLICY_DOCUMENT.tpm);
    expect(withProfile('test', '{"missing": "fail"}').document.missing).toBe('fail');
    const e = issuesOf(() => withProfile('production', { eventLog: { secureboot: 'enabled' } }));
    expect(e.issues.map((i) => `${i.path}:${i.keyword}`)).toEqual(['$.eventLog.secureboot:additionalProperties']);
    expect(() => withProfile('staging' as 'test', {})).toThrow(EvidenceError);
  });
});

describe('bad policies: each refused with its JSON path', () => {
  const H32 = 'ab'.repeat(32);
  const cases: [string, unknown, string, string][] = [
    ['version missing', {}, '$.version', 'required'],
    ['version 2', { version: 2 }, '$.version', 'const'],
    ['version as a string', { version: '1' }, '$.version', 'const'],
    ['an unknown top-level field', { version: 1, pcr: {} }, '$.pcr', 'additionalProperties'],
    ['missing with an unknown outcome', { version: 1, missing: 'skip' }, '$.missing', 'enum'],
    ['sha1 as a string', { version: 1, sha1: 'no' }, '$.sha1', 'type'],
    ['clock.unsafe unknown', { version: 1, clock: { unsafe: 'ignore' } }, '$.clock.unsafe', 'enum'],
    ['an empty name', { version: 1, name: '' }, '$.name', 'minLength'],
    ['a name too long', { version: 1, name: 'n'.repeat(201) }, '$.name', 'maxLength'],
    ['an unknown bank', { version: 1, pcrs: { sha257: { '0': H32 } } }, '$.pcrs.sha257', 'additionalProperties'],
    ['PCR 24', { version: 1, pcrs: { sha256: { '24': H32 } } }, '$.pcrs.sha256["24"]', 'pattern'],
    ['PCR "07"', { version: 1, pcrs: { sha256: { '07': H32 } } }, '$.pcrs.sha256["07"]', 'pattern'],
    ['a short value', { version: 1, pcrs: { sha256: { '7': 'abcd' } } }, '$.pcrs.sha256["7"]', 'pattern'],
    ['a SHA-1-sized value in the SHA-256 bank', { version: 1, pcrs: { sha256: { '7': 'ab'.repeat(20) } } }, '$.pcrs.sha256["7"]', 'pattern'],
    ['a bad value in a list', { version: 1, pcrs: { sha256: { '7': [H32, 'zz'.repeat(32)] } } }, '$.pcrs.sha256["7"][1]', 'pattern'],
    ['an empty list of values', { version: 1, pcrs: { sha256: { '7': [] } } }, '$.pcrs.sha256["7"]', 'minItems'],
    ['a bank without PCRs', { version: 1, pcrs: { sha256: {} } }, '$.pcrs.sha256', 'minProperties'],
    ['SHA-1 values without "sha1": true', { version: 1, pcrs: { sha1: { '0': 'ab'.repeat(20) } } }, '$.pcrs.sha1', 'semantic'],
    ['SHA-1 boot chain without "sha1": true', { version: 1, eventLog: { bootChain: { sha1: ['ab'.repeat(20)] } } }, '$.eventLog.bootChain.sha1', 'semantic'],
    ['secureBoot "on"', { version: 1, eventLog: { secureBoot: 'on' } }, '$.eventLog.secureBoot', 'enum'],
    ['a boot-chain digest of the wrong size', { version: 1, eventLog: { bootChain: { sha256: ['ab'] } } }, '$.eventLog.bootChain.sha256[0]', 'pattern'],
    ['an event matcher with nothing to match', { version: 1, eventLog: { forbiddenEvents: [{ reason: 'x' }] } }, '$.eventLog.forbiddenEvents[0]', 'anyOf'],
    ['an unknown event type', { version: 1, eventLog: { forbiddenEvents: [{ type: 'EV_BOGUS' }] } }, '$.eventLog.forbiddenEvents[0].type', 'pattern'],
    ['a PCR index 24 in a matcher', { version: 1, eventLog: { forbiddenEvents: [{ pcr: 24 }] } }, '$.eventLog.forbiddenEvents[0].pcr', 'maximum'],
    ['a fractional PCR index', { version: 1, eventLog: { forbiddenEvents: [{ pcr: 4.5 }] } }, '$.eventLog.forbiddenEvents[0].pcr', 'type'],
    ['an unqualified matcher digest', { version: 1, eventLog: { forbiddenEvents: [{ digest: H32 }] } }, '$.eventLog.forbiddenEvents[0].digest', 'pattern'],
    ['a SHA-1 matcher digest without "sha1": true', { version: 1, eventLog: { forbiddenEvents: [{ digest: `sha1:${'ab'.repeat(20)}` }] } }, '$.eventLog.forbiddenEvents[0].digest', 'semantic'],
    ['a misspelt matcher field', { version: 1, eventLog: { forbiddenEvents: [{ pcr: 4, txt: 'x' }] } }, '$.eventLog.forbiddenEvents[0].txt', 'additionalProperties'],
    ['a kernel parameter with a space', { version: 1, eventLog: { kernelCommandLine: { forbidden: ['init =/bin/sh'] } } }, '$.eventLog.kernelCommandLine.forbidden[0]', 'pattern'],
    ['an empty kernel rule', { version: 1, eventLog: { kernelCommandLine: {} } }, '$.eventLog.kernelCommandLine', 'minProperties'],
    ['allowlist digests not a list', { version: 1, ima: { allow: { '/usr/bin/ls': `sha256:${H32}` } } }, '$.ima.allow["/usr/bin/ls"]', 'type'],
    ['an empty allowlist path', { version: 1, ima: { allow: { '': [H32] } } }, '$.ima.allow[""]', 'minLength'],
    ['a denylist entry that is not a digest', { version: 1, ima: { deny: ['xyz'] } }, '$.ima.deny[0]', 'pattern'],
    ['an empty exclusion', { version: 1, ima: { exclude: [''] } }, '$.ima.exclude[0]', 'minLength'],
    ['violations "ignore"', { version: 1, ima: { violations: 'ignore' } }, '$.ima.violations', 'enum'],
    ['minimumType "unknown"', { version: 1, tpm: { minimumType: 'unknown' } }, '$.tpm.minimumType', 'enum'],
    ['ekChain "chain"', { version: 1, tpm: { ekChain: 'chain' } }, '$.tpm.ekChain', 'enum'],
    ['a manufacturer of five characters', { version: 1, firmware: { minimum: { INTEL: '1.0' } } }, '$.firmware.minimum.INTEL', 'pattern'],
    ['a firmware part above 16 bits', { version: 1, firmware: { minimum: { IFX: '7.85.70000' } } }, '$.firmware.minimum.IFX', 'semantic'],
    ['two spellings of one manufacturer', { version: 1, firmware: { minimum: { IFX: '7.0', ifx: '7.1' } } }, '$.firmware.minimum.ifx', 'semantic'],
    ['a firmware version with letters', { version: 1, firmware: { minimum: { IFX: 'v7' } } }, '$.firmware.minimum.IFX', 'pattern'],
    ['a deny entry without a version', { version: 1, firmware: { deny: [{ reason: 'x' }] } }, '$.firmware.deny[0]', 'anyOf'],
    ['a deny entry with version and range', { version: 1, firmware: { deny: [{ version: '1.0', from: '0.1' }] } }, '$.firmware.deny[0]', 'semantic'],
    ['an empty deny range', { version: 1, firmware: { deny: [{ from: '2.0', to: '1.0' }] } }, '$.firmware.deny[0]', 'semantic'],
    ['a top-level array', [], '$', 'type'],
    ['null', null, '$', 'type'],
    ['a bigint', { version: 1n }, '$.version', 'const'],
    ['a Date where a string belongs', { version: 1, name: new Date(0) }, '$.name', 'type'],
    ['NaN', { version: 1, eventLog: { forbiddenEvents: [{ pcr: Number.NaN }] } }, '$.eventLog.forbiddenEvents[0].pcr', 'type'],
    ['JSON that does not parse', '{"version": 1,}', '$', 'json'],
    ['text that is not UTF-8', new Uint8Array([0x7b, 0xff, 0x7d]), '$', 'json'],
  ];
  it.each(cases)('%s → %s', (_, input, path, keyword) => {
    const e = issuesOf(() => parsePolicy(input));
    expect(e.code).toBe('evidence.policy');
    expect(e).toBeInstanceOf(EvidenceError);
    expect(e.issues[0]).toMatchObject({ path, keyword });
    expect(e.path).toBe(path);
    expect(e.message).toContain(path);
  });

  it('every issue is listed (up to a bound), with JSON Pointers', () => {
    const e = issuesOf(() => parsePolicy({ version: 1, eventLog: { secureBoot: 'on', forbiddenEvents: [{ type: 'EV_X' }, {}] }, tpm: { ekChain: 'x' } }));
    expect(e.issues.map((i) => [i.path, i.pointer, i.keyword])).toEqual([
      ['$.eventLog.secureBoot', '/eventLog/secureBoot', 'enum'],
      ['$.eventLog.forbiddenEvents[0].type', '/eventLog/forbiddenEvents/0/type', 'pattern'],
      ['$.eventLog.forbiddenEvents[1]', '/eventLog/forbiddenEvents/1', 'anyOf'],
      ['$.tpm.ekChain', '/tpm/ekChain', 'enum'],
    ]);
    expect(e.message).toMatch(/and 3 more issues/);
    const many = Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`field${i}`, i]));
    expect(issuesOf(() => parsePolicy({ version: 1, ...many })).issues).toHaveLength(MAX_POLICY_ISSUES);
    // Keys that are not identifiers are quoted; pointers escape ~ and /.
    const odd = issuesOf(() => parsePolicy({ version: 1, ima: { allow: { '/a~b': 'x' } } }));
    expect(odd.issues[0]).toMatchObject({ path: '$.ima.allow["/a~b"]', pointer: '/ima/allow/~1a~0b' });
  });

  it('policies over the size bounds are refused without being walked', () => {
    const e = issuesOf(() => parsePolicy({ version: 1, ima: { exclude: Array.from({ length: 10_001 }, () => '/tmp/') } }));
    expect(e.issues).toEqual([expect.objectContaining({ path: '$.ima.exclude', keyword: 'maxItems' })]);
    expect(issuesOf(() => parsePolicy({ version: 1, name: '\u{1f600}'.repeat(201) })).issues[0]!.keyword).toBe('maxLength');
    expect(parsePolicy({ version: 1, name: '\u{1f600}'.repeat(200) }).name).toHaveLength(400);
  });

  it('fuzz: random and mutated policies, as values and as text, give only PolicyErrors (fixed seed, ≥ 20,000 inputs)', () => {
    const stats = fuzzPolicy(20260807, 24_000, { timeLimitMs: 25_000 });
    for (const u of stats.untyped) console.log(u.input, u.error);
    expect(stats.untypedCount).toBe(0);
    expect(stats.inputs).toBeGreaterThanOrEqual(20_000);
    expect(stats.parsed).toBeGreaterThan(100);
    for (const k of ['json', 'type', 'additionalProperties', 'enum', 'required', 'pattern', 'const']) expect(stats.codes.get(`evidence.policy:${k}`) ?? 0, k).toBeGreaterThan(0);
  }, 40_000);
});

// ---------------------------------------------------------------------------
// Devices

const QUOTED_PCRS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];

interface Quoted {
  readonly result: QuoteResult;
  readonly challenge: Challenge;
  /** The AK that signed it (a device's AK changes after a power cut). */
  readonly ak: Ak;
}

interface Device {
  readonly sw: SwtpmInstance;
  readonly transport: SwtpmTransport;
  readonly tpm: Tpm;
  ak: Ak;
  readonly banks: readonly number[];
  readonly description: TpmDescription;
}

async function quoteOf(d: Device, banks: readonly number[] = d.banks, pcrs: readonly number[] = QUOTED_PCRS): Promise<Quoted> {
  const challenge = newChallenge(Date.now(), 120_000);
  const result = await quote(d.tpm, d.ak, banks.map((b) => pcrSelection(b as TPMS_PCR_SELECTION['hash'], pcrs)), challenge.nonce);
  return { result, challenge, ak: d.ak };
}

function verified(q: Quoted, policy?: Policy, challenge: Challenge = q.challenge): QuoteVerdict {
  return verifyQuote(
    { attest: q.result.attestBytes, signature: q.result.signature, pcrValues: q.result.pcrValues },
    { ak: q.ak.publicArea, akQualifiedName: q.ak.qualifiedName, challenge, now: Date.now(), ...(policy !== undefined ? { akPolicy: akPolicyOf(policy), clockPolicy: clockPolicyOf(policy) } : {}) },
  );
}

/** What an old (pre-5.8) kernel extends for an IMA entry: its SHA-1 template hash, zero-padded to each bank. */
function paddedSha1(e: ImaEntry, banks: readonly number[]): TPMT_HA[] {
  return banks.map((hashAlg) => {
    const digest = new Uint8Array(digestSize(hashAlg));
    digest.set(e.templateHash);
    return { hashAlg, digest } as TPMT_HA;
  });
}

/** A fresh swtpm with a real log's extends of PCRs 0–9 (and IMA entries), an ECC AK under the EK. */
async function bootReal(log: EventLog, ima: readonly ImaEntry[] = []): Promise<Device> {
  const sw = await startSwtpm();
  const transport = new SwtpmTransport({ port: sw.port, ctrlPort: sw.ctrlPort });
  const tpm = new Tpm(transport);
  try {
    const locality = eventLogEvidence(log).replay.startupLocality ?? 0;
    await tpm.run(Startup, {}, { startupType: TPM_SU.CLEAR }, { locality });
    const allocated = (await pcrBanks(tpm)).map((s) => s.hash as number);
    const banks = log.banks.filter((b) => allocated.includes(b));
    for (const e of log.events) {
      if (e.eventType === EV.NO_ACTION || e.pcrIndex > 9) continue;
      await pcrExtend(tpm, e.pcrIndex, e.digests.filter((x) => banks.includes(x.hashAlg)).map((x) => ({ hashAlg: x.hashAlg, digest: x.digest }) as TPMT_HA));
    }
    for (const e of ima) await pcrExtend(tpm, e.pcr, paddedSha1(e, banks));
    const ak = await newAk(tpm);
    return { sw, transport, tpm, ak, banks, description: await describeTpm(tpm) };
  } catch (e) {
    await tpm.close();
    await sw.stop();
    throw e;
  }
}

async function newAk(tpm: Tpm): Promise<Ak> {
  const ek = await createEk(tpm, { template: 'L-2', persistentHandle: false });
  try {
    return await createAk(tpm, ek, { alg: 'ecc' });
  } finally {
    await tpm.flush(ek);
  }
}

/** The log with record `index`'s type, or bytes of its data, rewritten (digests kept: the replay still matches). */
function rewrite(bytes: Uint8Array, log: EventLog, index: number, change: { eventType?: number; data?: (data: Uint8Array) => void }): Uint8Array {
  const out = bytes.slice();
  const e = log.events[index]!;
  if (change.eventType !== undefined) new DataView(out.buffer).setUint32(e.offset + 4, change.eventType, true);
  if (change.data !== undefined) change.data(out.subarray(e.dataOffset, e.dataOffset + e.data.length));
  return out;
}

function drop(bytes: Uint8Array, log: EventLog, index: number): Uint8Array {
  const e = log.events[index]!;
  return new Uint8Array(Buffer.concat([bytes.subarray(0, e.offset), bytes.subarray(e.dataOffset + e.data.length)]));
}

describeWithSwtpm('policy rules on real evidence quoted by swtpm', () => {
  const cosBytes = fixture('eventlog', 'ge-cos-85-amd-sev.bin');
  const cosLog = parseEventLog(cosBytes);
  const ubuntuBytes = fixture('eventlog', 'ge-ubuntu-2104-no-secure-boot.bin');
  const ubuntuLog = parseEventLog(ubuntuBytes);
  const imaEntries = parseImaAscii(fixture('ima', 'keylime-ima-sig-buf')).entries;
  let A: Device;
  let B: Device;
  let qA: Quoted;
  let qB: Quoted;
  let qCut: Quoted;
  let imaA: ImaReplayResult;
  let classA: TpmClassification;

  beforeAll(async () => {
    [A, B] = await Promise.all([bootReal(cosLog, imaEntries), bootReal(ubuntuLog)]);
    qA = await quoteOf(A);
    imaA = replayIma(imaEntries, undefined, { quoted: qA.result.pcrValues });
    classA = classifyTpm(A.description, undefined, { profile: 'test' });
    qB = await quoteOf(B);
    // A power cut on B: the TPM stops without Shutdown; Startup(CLEAR) then reports safe = 0.
    await B.transport.control.stop();
    await B.transport.control.init();
    await B.tpm.run(Startup, {}, { startupType: TPM_SU.CLEAR });
    B.ak = await newAk(B.tpm);
    qCut = await quoteOf(B);
  }, 60_000);

  afterAll(async () => {
    for (const d of [A, B]) {
      await d?.tpm.close();
      await d?.sw.stop();
    }
  });

  /** COS 85's published golden values, boot chain and command-line rules, keylime's IMA policy. */
  const cosDocument = (): PolicyDocument => ({
    version: 1,
    name: 'cos-85',
    pcrs: { sha256: COS.pcrs.sha256 },
    eventLog: {
      secureBoot: 'enabled',
      bootChain: { sha256: COS.efiApps.sha256 },
      forbiddenEvents: [
        { type: 'EV_EFI_ACTION', text: 'Entering ROM Based Setup', reason: 'firmware setup was entered' },
        { text: 'Exit Boot Services Returned with Failure' },
        { pcr: 4, text: '*\\EFI\\Microsoft\\*' },
      ],
      kernelCommandLine: { forbidden: ['init=/bin/sh', 'module.sig_enforce=0'], required: ['ro', 'module.sig_enforce=1', 'console=*'] },
    },
    ima: imaRulesOf(KEYLIME.RUNTIME_POLICY_TEST),
  });
  const evidenceA = (over: Partial<PolicyEvidence> = {}, policy?: Policy): PolicyEvidence => ({
    quote: verified(qA, policy),
    pcrValues: qA.result.pcrValues,
    eventLog: eventLogEvidence(cosLog),
    ima: imaA,
    tpm: classA,
    ...over,
  });

  describe('honest evidence passes every rule', () => {
    it('COS 85 on swtpm: the published PCRs, Secure Boot, boot chain, forbidden events, command line, keylime\'s IMA allowlist', () => {
      const policy = parsePolicy(cosDocument());
      const v = evaluatePolicy(policy, evidenceA({}, policy));
      expect(failures(v)).toEqual([]);
      expect(v.accepted).toBe(true);
      expect(outcomes(v)).toEqual([
        'policy.quote:pass:quote.accepted',
        'policy.sha1:warn:sha1.ignored',
        'policy.clock:pass:clock.safe',
        ...Object.keys(COS.pcrs.sha256).map(() => 'policy.pcr:pass:pcr.match'),
        'policy.secure-boot:pass:secure-boot.enabled',
        'policy.boot-chain:pass:boot-chain.allowed',
        'policy.forbidden-event:pass:event.absent',
        'policy.forbidden-event:pass:event.absent',
        'policy.forbidden-event:pass:event.absent',
        'policy.kernel-cmdline:pass:cmdline.allowed',
        'policy.ima.replay:pass:ima.verified',
        'policy.ima.allow:pass:ima.allowed',
        'policy.ima.violations:pass:ima.no-violations',
      ]);
      expect(one(v, 'policy.boot-chain').detail).toMatch(/all 3 PCR 4 measurement/);
      expect(one(v, 'policy.ima.replay').detail).toMatch(/6 new entries replay to the quoted PCR 10/);
      expect(v.checks.every((c) => c.detail.startsWith('$'))).toBe(true);
    });

    it('with "sha1": true, the published SHA-1 PCRs count too', () => {
      const policy = parsePolicy({ ...cosDocument(), sha1: true, pcrs: { sha1: COS.pcrs.sha1, sha256: COS.pcrs.sha256 } });
      const v = evaluatePolicy(policy, evidenceA({}, policy));
      expect(failures(v)).toEqual([]);
      expect(one(v, 'policy.sha1').reason).toBe('sha1.allowed');
      expect(outcomes(v, 'policy.pcr').filter((o) => o.endsWith('pcr.match'))).toHaveLength(20);
    });
  });

  describe('PCR values', () => {
    it('another machine\'s values (COS 93: same firmware, other boot chain) fail as pcr.mismatch; a PCR outside the quote as pcr.not-quoted', () => {
      const v = evaluatePolicy(
        { version: 1, pcrs: { sha256: { '0': COS93.pcrs.sha256['0']!, '4': COS93.pcrs.sha256['4']!, '8': [COS93.pcrs.sha256['8']!, COS.pcrs.sha256['8']!], '14': COS.pcrs.sha256['0']! } } },
        evidenceA(),
      );
      // PCR 0 (firmware) is the same on both GCE images; PCR 4 (boot chain) differs; PCR 8 is one of two allowed values.
      expect(outcomes(v, 'policy.pcr')).toEqual(['policy.pcr:pass:pcr.match', 'policy.pcr:fail:pcr.mismatch', 'policy.pcr:pass:pcr.match', 'policy.pcr:fail:pcr.not-quoted']);
      expect(v.checks.find((c) => c.reason === 'pcr.mismatch')!.detail).toContain(COS.pcrs.sha256['4']!);
      expect(v.checks.find((c) => c.reason === 'pcr.not-quoted')!.detail).toContain('$.pcrs.sha256["14"]');
    });

    it('values that are not the quoted ones are never used (pcr.values-not-quoted), whatever the verdict says', () => {
      // Another value for PCR 0, and a policy that wants exactly that value.
      const forged = new Map([...qA.result.pcrValues].map(([b, m]) => [b, new Map(m)]));
      const other = qA.result.pcrValues.get(TPM_ALG.SHA256)!.get(0)!.slice();
      other[0]! ^= 1;
      forged.get(TPM_ALG.SHA256)!.set(0, other);
      const v = evaluatePolicy({ version: 1, pcrs: { sha256: { '0': Buffer.from(other).toString('hex') } } }, evidenceA({ pcrValues: forged }));
      expect(outcomes(v, 'policy.pcr')).toEqual(['policy.pcr:fail:pcr.values-not-quoted']);
    });

    it('a rejected quote (another challenge) leaves nothing to judge: quote.rejected everywhere it matters', () => {
      const other = newChallenge(Date.now(), 60_000);
      const v = evaluatePolicy(parsePolicy(cosDocument()), evidenceA({ quote: verified(qA, undefined, other) }));
      expect(one(v, 'policy.quote')).toMatchObject({ outcome: 'fail', reason: 'quote.rejected' });
      expect(one(v, 'policy.quote').detail).toContain('quote.nonce:nonce.mismatch');
      for (const id of ['policy.pcr', 'policy.secure-boot', 'policy.boot-chain', 'policy.kernel-cmdline', 'policy.ima.replay']) {
        expect(new Set(outcomes(v, id)), id).toEqual(new Set([`${id}:fail:quote.rejected`]));
      }
    });

    it('a quote of the SHA-1 bank only: refused without "sha1": true, and no SHA-256 rule or log rule can pass', async () => {
      const q = await quoteOf(A, [TPM_ALG.SHA1]);
      const ev = evidenceA({ quote: verified(q), pcrValues: q.result.pcrValues, ima: replayIma(imaEntries, undefined, { quoted: q.result.pcrValues }) });
      const v = evaluatePolicy(parsePolicy(cosDocument()), ev);
      expect(one(v, 'policy.sha1')).toMatchObject({ outcome: 'fail', reason: 'sha1.only' });
      expect(new Set(outcomes(v, 'policy.pcr'))).toEqual(new Set(['policy.pcr:fail:pcr.not-quoted']));
      expect(one(v, 'policy.secure-boot')).toMatchObject({ outcome: 'fail', reason: 'secure-boot.unverified' });
      expect(one(v, 'policy.ima.replay')).toMatchObject({ outcome: 'fail', reason: 'ima.unverified' });
      // The same quote under a policy that allows SHA-1 and holds SHA-1 golden values.
      const sha1Policy = parsePolicy({ version: 1, sha1: true, pcrs: { sha1: COS.pcrs.sha1 }, eventLog: { secureBoot: 'enabled' } });
      const w = evaluatePolicy(sha1Policy, ev);
      expect(failures(w)).toEqual([]);
      expect(one(w, 'policy.secure-boot').reason).toBe('secure-boot.enabled');
    });
  });

  describe('Secure Boot', () => {
    it('Ubuntu 21.04 with Secure Boot off fails as secure-boot.disabled; its command line passes other rules', () => {
      const v = evaluatePolicy(
        { version: 1, eventLog: { secureBoot: 'enabled', kernelCommandLine: { required: ['ro', 'console=ttyS0'] } } },
        { quote: verified(qB), pcrValues: qB.result.pcrValues, eventLog: eventLogEvidence(ubuntuLog) },
      );
      expect(one(v, 'policy.secure-boot')).toMatchObject({ outcome: 'fail', reason: 'secure-boot.disabled' });
      expect(one(v, 'policy.kernel-cmdline')).toMatchObject({ outcome: 'pass', reason: 'cmdline.allowed' });
      const forbid = evaluatePolicy({ version: 1, eventLog: { kernelCommandLine: { forbidden: ['panic=*'] } } }, { quote: verified(qB), pcrValues: qB.result.pcrValues, eventLog: eventLogEvidence(ubuntuLog) });
      expect(one(forbid, 'policy.kernel-cmdline')).toMatchObject({ outcome: 'fail', reason: 'cmdline.forbidden' });
      expect(one(forbid, 'policy.kernel-cmdline').detail).toContain('"panic=-1"');
    });

    it('the SecureBoot variable relabelled (type not covered by the quote): secure-boot.unknown, not enabled', () => {
      const decoded = decodeEvents(cosLog);
      const at = secureBootState(decoded).eventIndex!;
      const relabelled = parseEventLog(rewrite(cosBytes, cosLog, at, { eventType: EV.EFI_VARIABLE_BOOT }));
      const v = evaluatePolicy({ version: 1, eventLog: { secureBoot: 'enabled' } }, evidenceA({ eventLog: eventLogEvidence(relabelled) }));
      expect(one(v, 'policy.secure-boot')).toMatchObject({ outcome: 'fail', reason: 'secure-boot.unknown' });
      expect(one(v, 'policy.secure-boot').detail).toContain('variable.type');
    });

    it('the variable\'s value rewritten (data no longer what was measured): secure-boot.unknown', () => {
      const at = secureBootState(decodeEvents(cosLog)).eventIndex!;
      const flipped = parseEventLog(rewrite(cosBytes, cosLog, at, { data: (d) => (d[d.length - 1] = 0) }));
      const v = evaluatePolicy({ version: 1, eventLog: { secureBoot: 'enabled' } }, evidenceA({ eventLog: eventLogEvidence(flipped) }));
      expect(one(v, 'policy.secure-boot')).toMatchObject({ outcome: 'fail', reason: 'secure-boot.unknown' });
      expect(one(v, 'policy.secure-boot').detail).toContain('variable.digest-mismatch');
    });

    it('a PCR 7 the quote does not cover proves nothing: secure-boot.unverified', async () => {
      const q = await quoteOf(A, A.banks, [0, 1, 2, 3, 4, 5, 6, 8, 9, 10]);
      const v = evaluatePolicy({ version: 1, eventLog: { secureBoot: 'enabled' } }, evidenceA({ quote: verified(q), pcrValues: q.result.pcrValues }));
      expect(one(v, 'policy.secure-boot')).toMatchObject({ outcome: 'fail', reason: 'secure-boot.unverified' });
      expect(one(v, 'policy.secure-boot').detail).toContain('pcr.not-quoted');
    });
  });

  describe('boot chain, forbidden events, kernel command line', () => {
    const kernelDigest = COS.efiApps.sha256[2]!;

    it('an application outside the allowlist fails, named; relabelling it does not hide it', () => {
      const policy = { version: 1, eventLog: { bootChain: { sha256: COS.efiApps.sha256.slice(0, 2) } } } as const;
      const v = evaluatePolicy(policy, evidenceA());
      expect(one(v, 'policy.boot-chain')).toMatchObject({ outcome: 'fail', reason: 'boot-chain.not-allowed' });
      expect(one(v, 'policy.boot-chain').detail).toContain(kernelDigest);
      const app = cosLog.events.filter((e) => e.pcrIndex === 4 && e.eventType === EV.EFI_BOOT_SERVICES_APPLICATION).at(-1)!;
      const relabelled = parseEventLog(rewrite(cosBytes, cosLog, app.index, { eventType: EV.SEPARATOR }));
      const w = evaluatePolicy(policy, evidenceA({ eventLog: eventLogEvidence(relabelled) }));
      expect(one(w, 'policy.boot-chain')).toMatchObject({ outcome: 'fail', reason: 'boot-chain.not-allowed' });
      expect(one(w, 'policy.boot-chain').detail).toContain(kernelDigest);
    });

    it('a log with an application removed no longer replays PCR 4: boot-chain.unverified (Secure Boot still proven)', () => {
      const app = cosLog.events.filter((e) => e.pcrIndex === 4 && e.eventType === EV.EFI_BOOT_SERVICES_APPLICATION).at(-1)!;
      const shorter = parseEventLog(drop(cosBytes, cosLog, app.index));
      const v = evaluatePolicy({ version: 1, eventLog: { secureBoot: 'enabled', bootChain: { sha256: COS.efiApps.sha256 } } }, evidenceA({ eventLog: eventLogEvidence(shorter) }));
      expect(one(v, 'policy.boot-chain')).toMatchObject({ outcome: 'fail', reason: 'boot-chain.unverified' });
      expect(one(v, 'policy.boot-chain').detail).toContain('pcr.mismatch');
      expect(one(v, 'policy.secure-boot').reason).toBe('secure-boot.enabled');
    });

    it('forbidden events: by action text, by digest, and unprovable absence', () => {
      const v = evaluatePolicy(
        {
          version: 1,
          eventLog: {
            forbiddenEvents: [
              { text: 'Exit Boot Services Invocation' },
              { pcr: 4, digest: `sha256:${kernelDigest}` },
              { digest: `sha384:${COS.efiApps.sha384[0]!}` },
              { pcr: 14, text: '*' },
              { type: 'EV_EFI_ACTION', text: 'Entering ROM Based Setup' },
            ],
          },
        },
        evidenceA(),
      );
      expect(outcomes(v, 'policy.forbidden-event')).toEqual([
        'policy.forbidden-event:fail:event.forbidden',
        'policy.forbidden-event:fail:event.forbidden',
        // The log's SHA-384 digests are evidence only when the quote covers a SHA-384 bank.
        A.banks.includes(TPM_ALG.SHA384) ? 'policy.forbidden-event:fail:event.forbidden' : 'policy.forbidden-event:fail:event.unverified',
        'policy.forbidden-event:fail:event.unverified',
        'policy.forbidden-event:pass:event.absent',
      ]);
      expect(v.checks.filter((c) => c.check === 'policy.forbidden-event')[0]!.detail).toMatch(/EV_EFI_ACTION, PCR 5/);
    });

    it('an action string rewritten to slip past a text rule: event.unverified, not absent', () => {
      const exit = cosLog.events.find((e) => e.eventType === EV.EFI_ACTION && new TextDecoder().decode(e.data) === 'Exit Boot Services Invocation')!;
      const disguised = parseEventLog(rewrite(cosBytes, cosLog, exit.index, { data: (d) => d.set(new TextEncoder().encode('Exit Boot Services Invoc4tion')) }));
      const v = evaluatePolicy({ version: 1, eventLog: { forbiddenEvents: [{ text: 'Exit Boot Services Invocation' }] } }, evidenceA({ eventLog: eventLogEvidence(disguised) }));
      expect(one(v, 'policy.forbidden-event')).toMatchObject({ outcome: 'fail', reason: 'event.unverified' });
    });

    it('kernel command line: forbidden and required parameters, and a line edited after measurement', () => {
      const rule = (k: { forbidden?: string[]; required?: string[] }, log = cosLog) =>
        one(evaluatePolicy({ version: 1, eventLog: { kernelCommandLine: k } }, evidenceA({ eventLog: eventLogEvidence(log) })), 'policy.kernel-cmdline');
      expect(rule({ forbidden: ['loglevel=7'] })).toMatchObject({ outcome: 'fail', reason: 'cmdline.forbidden' });
      expect(rule({ required: ['lockdown=*'] })).toMatchObject({ outcome: 'fail', reason: 'cmdline.required-missing' });
      expect(rule({ required: ['root=/dev/dm-0', 'dm_verity.error_behavior=?'] })).toMatchObject({ outcome: 'pass', reason: 'cmdline.allowed' });
      const ev = cosLog.events.find((e) => e.pcrIndex === 8 && new TextDecoder().decode(e.data).startsWith('kernel_cmdline:'))!;
      const edited = rewrite(cosBytes, cosLog, ev.index, {
        data: (d) => {
          const at = Buffer.from(d).indexOf('loglevel=7');
          d[at + 9] = 0x31; // loglevel=1
        },
      });
      expect(rule({ forbidden: ['loglevel=7'] }, parseEventLog(edited))).toMatchObject({ outcome: 'fail', reason: 'cmdline.unverified' });
      expect(rule({ forbidden: ['loglevel=7'] }, parseEventLog(edited)).detail).toMatch(/not what its digest measured/);
    });
  });

  describe('IMA (keylime\'s list and runtime policies)', () => {
    const imaOnly = (rules: PolicyDocument['ima'], ima: ImaReplayResult = imaA): Verdict => evaluatePolicy({ version: 1, ima: rules }, evidenceA({ ima }));

    it('keylime\'s known answers: TEST allows all, an empty policy fails all, WRONG with EXCLUDES passes', () => {
      expect(outcomes(imaOnly(imaRulesOf(KEYLIME.RUNTIME_POLICY_TEST)), 'policy.ima.allow')).toEqual(['policy.ima.allow:pass:ima.allowed']);
      const empty = one(imaOnly({ allow: {} }), 'policy.ima.allow');
      expect(empty).toMatchObject({ outcome: 'fail', reason: 'ima.not-allowed' });
      expect(empty.detail).toMatch(/^\$\.ima\.allow: 6 entries not allowed/);
      expect(one(imaOnly(imaRulesOf(KEYLIME.RUNTIME_POLICY_WRONG, [...KEYLIME.EXCLUDES, '.ima'])), 'policy.ima.allow').outcome).toBe('pass');
      // Without signature verification (not done here), WRONG's digests for dd and zmore are simply wrong.
      const wrong = one(imaOnly({ allow: { ...KEYLIME.RUNTIME_POLICY_TEST.digests, ...KEYLIME.RUNTIME_POLICY_WRONG.digests, ...KEYLIME.RUNTIME_POLICY_TEST.keyrings } }), 'policy.ima.allow');
      expect(wrong.outcome).toBe('fail');
      expect(wrong.detail.match(/digest\.not-allowed/g)).toHaveLength(2);
      expect(wrong.detail).toContain('/usr/bin/dd');
      expect(wrong.detail).toContain('/usr/bin/zmore');
    });

    it('a denied digest fails even on an excluded path; exclusions by glob', () => {
      const dd = KEYLIME.RUNTIME_POLICY_TEST.digests['/usr/bin/dd']![0]!;
      const v = imaOnly({ ...imaRulesOf(KEYLIME.RUNTIME_POLICY_TEST, ['/usr/bin/*']), deny: [`sha256:${dd}`] });
      expect(one(v, 'policy.ima.deny')).toMatchObject({ outcome: 'fail', reason: 'ima.denied' });
      expect(one(v, 'policy.ima.deny').detail).toContain('/usr/bin/dd');
      const glob = imaOnly({ allow: { boot_aggregate: KEYLIME.RUNTIME_POLICY_TEST.digests['boot_aggregate']! }, exclude: ['/lib/modules/**', '/usr/bin/*', '.ima'] });
      expect(one(glob, 'policy.ima.allow').outcome).toBe('pass');
    });

    it('a list rewritten consistently (template hash recomputed) replays alone, but not to the quote: ima.unverified', () => {
      const text = new TextDecoder().decode(fixture('ima', 'keylime-ima-sig-buf'));
      const dd = KEYLIME.RUNTIME_POLICY_TEST.digests['/usr/bin/dd']![0]!;
      // Swap zmore's digest for dd's and recompute the line's template hash: the list is self-consistent.
      const lines = text.split('\n');
      const i = lines.findIndex((l) => l.includes('/usr/bin/zmore'));
      const parts = lines[i]!.split(' ');
      parts[3] = `sha256:${dd}`;
      const entry = parseImaAscii(`${parts.join(' ')}\n`).entries[0]!;
      parts[1] = createHash('sha1').update(entry.templateData!).digest('hex');
      lines[i] = parts.join(' ');
      const forged = parseImaAscii(lines.join('\n')).entries;
      const alone = replayIma(forged, undefined, { banks: [TPM_ALG.SHA1, TPM_ALG.SHA256] });
      expect(alone.verdict.accepted).toBe(true);
      const v = imaOnly({ allow: { ...KEYLIME.RUNTIME_POLICY_TEST.digests, ...KEYLIME.RUNTIME_POLICY_TEST.keyrings, '/usr/bin/zmore': [dd] } }, alone);
      expect(one(v, 'policy.ima.replay')).toMatchObject({ outcome: 'fail', reason: 'ima.unverified' });
      expect(one(v, 'policy.ima.allow').outcome).toBe('pass'); // the lists alone would have let it through
      // The same forged list given to replayIma with the quote is rejected there already.
      expect(one(imaOnly(imaRulesOf(KEYLIME.RUNTIME_POLICY_TEST), replayIma(forged, undefined, { quoted: qA.result.pcrValues })), 'policy.ima.replay').reason).toBe('ima.rejected');
      // The honest list replayed without a quote is proven here, against the quote.
      expect(one(imaOnly(imaRulesOf(KEYLIME.RUNTIME_POLICY_TEST), replayIma(imaEntries, undefined, { banks: [TPM_ALG.SHA1, TPM_ALG.SHA256] })), 'policy.ima.replay').reason).toBe('ima.verified');
    });
  });

  describe('clock, firmware, TPM type and EK identity', () => {
    it('safe = 0 after a power cut: warn by default, the policy\'s severity otherwise; verifyQuote agrees through clockPolicyOf', () => {
      const cut = (unsafe?: 'pass' | 'warn' | 'fail') => {
        const policy = parsePolicy({ version: 1, ...(unsafe !== undefined ? { clock: { unsafe } } : {}) });
        return { policy, v: evaluatePolicy(policy, { quote: verified(qCut), pcrValues: qCut.result.pcrValues }) };
      };
      expect(qCut.result.attest.clockInfo.safe).toBe(0);
      expect(qCut.result.attest.clockInfo.resetCount).toBeGreaterThan(qB.result.attest.clockInfo.resetCount);
      expect(one(cut().v, 'policy.clock')).toMatchObject({ outcome: 'warn', reason: 'clock.unsafe' });
      expect(one(cut('pass').v, 'policy.clock').outcome).toBe('pass');
      const strict = cut('fail');
      expect(one(strict.v, 'policy.clock')).toMatchObject({ outcome: 'fail', reason: 'clock.unsafe' });
      // Verified with the policy's clock rules, the quote itself is rejected for the same reason.
      const q = verified(qCut, strict.policy);
      expect(failures(q)).toEqual(['quote.clock:clock.unsafe']);
      expect(one(evaluatePolicy(strict.policy, { quote: q, pcrValues: qCut.result.pcrValues }), 'policy.quote').reason).toBe('quote.rejected');
      expect(one(evaluatePolicy(strict.policy, { quote: verified(qB), pcrValues: qB.result.pcrValues }), 'policy.clock').reason).toBe('clock.safe');
    });

    it('firmware: the signed version against minimums and deny ranges', () => {
      const fw = qA.result.attest.firmwareVersion;
      expect(fw).toBe(A.description.firmwareVersion); // the AK is under the EK: not obfuscated
      const hexv = (v: bigint) => `0x${v.toString(16)}`;
      const rule = (firmware: PolicyDocument['firmware'], over: Partial<PolicyEvidence> = {}) => evaluatePolicy({ version: 1, firmware }, evidenceA(over));
      expect(one(rule({ minimum: { IBM: hexv(fw) } }), 'policy.firmware.minimum')).toMatchObject({ outcome: 'pass', reason: 'firmware.at-least' });
      const below = one(rule({ minimum: { IBM: hexv(fw + 1n) } }), 'policy.firmware.minimum');
      expect(below).toMatchObject({ outcome: 'fail', reason: 'firmware.below-minimum' });
      expect(below.detail).toContain(formatFirmwareVersion(fw));
      expect(one(rule({ minimum: { '*': hexv(fw + 1n), IFX: '1.0' } }), 'policy.firmware.minimum').reason).toBe('firmware.below-minimum');
      expect(one(rule({ minimum: { IFX: hexv(fw + 1n) } }), 'policy.firmware.minimum').reason).toBe('firmware.no-minimum');
      const denied = one(rule({ deny: [{ manufacturer: 'IBM', from: hexv(fw - 1n), to: hexv(fw), reason: 'test advisory' }] }), 'policy.firmware.deny');
      expect(denied).toMatchObject({ outcome: 'fail', reason: 'firmware.denied' });
      expect(denied.detail).toContain('test advisory');
      expect(one(rule({ deny: [{ manufacturer: 'IFX', version: hexv(fw) }, { to: hexv(fw - 1n) }] }), 'policy.firmware.deny').reason).toBe('firmware.not-denied');
      // Without a quote or a given version: the missing outcome.
      expect(one(rule({ missing: 'not-performed', deny: [{ version: '1.0' }] }, { quote: undefined }), 'policy.firmware.deny')).toMatchObject({ outcome: 'not-performed', reason: 'firmware.missing' });
      expect(one(rule({ deny: [{ version: '1.0' }] }, { quote: undefined, firmwareVersion: 0x0001000000000000n }), 'policy.firmware.deny').reason).toBe('firmware.denied');
    });

    it('swtpm with no EK certificate: production refuses the software type and the claimed identity; test accepts', () => {
      expect(classA).toMatchObject({ type: 'software', assurance: 'claimed' });
      const rules = { pcrs: { sha256: COS.pcrs.sha256 }, eventLog: { bootChain: { sha256: COS.efiApps.sha256 } } };
      const prod = evaluatePolicy(withProfile('production', rules), evidenceA());
      expect(failures(prod)).toEqual(['policy.tpm.type:type.software-refused', 'policy.tpm.ek-chain:ek.claimed']);
      const test = evaluatePolicy(withProfile('test', rules), evidenceA());
      expect(failures(test)).toEqual([]);
      expect(one(test, 'policy.tpm.type').reason).toBe('type.allowed');
      // Pre-registered, production accepts the identity but still not the type.
      expect(failures(evaluatePolicy(withProfile('production', rules), evidenceA({ ekPreRegistered: true })))).toEqual(['policy.tpm.type:type.software-refused']);
    });

    it('type ranks and unknown types (classifications of real vendors\' reports)', () => {
      const cls = (manufacturer: string, vendor: string) => classifyTpm(tpmDescription({ manufacturer, vendor }), undefined, { profile: 'test' });
      const type = (minimumType: 'discrete' | 'firmware' | 'virtual', allowUnknownType: boolean, tpm: TpmClassification) =>
        one(evaluatePolicy({ version: 1, tpm: { minimumType, allowUnknownType } }, { tpm }), 'policy.tpm.type').reason;
      expect(type('discrete', false, cls('INTC', 'Intel'))).toBe('type.below-minimum');
      expect(type('firmware', false, cls('INTC', 'Intel'))).toBe('type.allowed');
      expect(type('discrete', false, cls('IFX', 'SLB9670'))).toBe('type.allowed');
      expect(type('virtual', false, cls('XYZ', 'unknown'))).toBe('type.unknown-refused');
      expect(type('virtual', true, cls('XYZ', 'unknown'))).toBe('type.allowed');
      expect(type('virtual', true, classA)).toBe('type.software-refused');
    });
  });

  describe('missing evidence', () => {
    it('production fails every rule it cannot judge; test reports them not performed and accepts', () => {
      const prod = evaluatePolicy(policyProfile('production'), {});
      expect(outcomes(prod)).toEqual([
        'policy.quote:fail:quote.missing',
        'policy.sha1:fail:quote.missing',
        'policy.clock:fail:quote.missing',
        'policy.secure-boot:fail:eventlog.missing',
        'policy.tpm.type:fail:tpm.missing',
        'policy.tpm.ek-chain:fail:ek.missing',
      ]);
      const test = evaluatePolicy(policyProfile('test'), {});
      expect(test.accepted).toBe(true);
      expect(outcomes(test)).toEqual([
        'policy.quote:not-performed:quote.missing',
        'policy.sha1:not-performed:quote.missing',
        'policy.clock:not-performed:quote.missing',
        'policy.secure-boot:not-performed:eventlog.missing',
        'policy.tpm.type:not-performed:tpm.missing',
        'policy.tpm.ek-chain:pass:ek.not-required',
      ]);
      // A quote without its PCR values: the PCR rules cannot run.
      const noValues = evaluatePolicy({ version: 1, missing: 'not-performed', pcrs: { sha256: { '0': COS.pcrs.sha256['0']! } } }, { quote: verified(qA) });
      expect(outcomes(noValues, 'policy.pcr')).toEqual(['policy.pcr:not-performed:pcr.values-missing']);
      // A section's own `missing` wins over the document's.
      const section = evaluatePolicy({ version: 1, missing: 'not-performed', ima: { missing: 'fail', allow: {} } }, {});
      expect(failures(section)).toEqual(['policy.ima.replay:ima.missing', 'policy.ima.allow:ima.missing', 'policy.ima.violations:ima.missing']);
    });

    it('evidence of the wrong shape is an EvidenceError, an invalid document a PolicyError', () => {
      expect(() => evaluatePolicy(policyProfile('test'), null as unknown as PolicyEvidence)).toThrow(EvidenceError);
      expect(() => evaluatePolicy(policyProfile('test'), { pcrValues: {} as unknown as Map<number, Map<number, Uint8Array>> })).toThrow(/pcrValues/);
      expect(() => evaluatePolicy(policyProfile('test'), { firmwareVersion: 1 as unknown as bigint })).toThrow(/firmwareVersion/);
      expect(() => evaluatePolicy({ version: 2 } as unknown as PolicyDocument, {})).toThrow(PolicyError);
    });
  });
});

// ---------------------------------------------------------------------------
// A manufactured swtpm with honest writer evidence: the profiles and the EK chain

describeWithSwtpmSetup('profiles on a manufactured swtpm with measured-boot writer evidence', () => {
  const SHIM = new TextEncoder().encode('shim 15.8 image for policy tests');
  const GRUB = new TextEncoder().encode('grub 2.12 image for policy tests');
  const KERNEL = new TextEncoder().encode('linux 6.1 EFI stub image for policy tests');
  const AGENT = new TextEncoder().encode('#!/bin/sh\nexec trustroot-agent\n');
  const SCRATCH = new TextEncoder().encode('echo scratch\n');
  let sw: SwtpmWithCertificates;
  let d: Device;
  let applied: AppliedMeasuredBoot;
  let q: Quoted;
  let ekVerification: EkCertificateVerification;
  let ekPublicRsa: Awaited<ReturnType<typeof getEk>>['publicArea'];
  let ekPublicEcc: Awaited<ReturnType<typeof getEk>>['publicArea'];
  let ima: ImaReplayResult;
  let log: EventLog;

  beforeAll(async () => {
    sw = await startSwtpmWithCertificates();
    const transport = new SwtpmTransport({ port: sw.port, ctrlPort: sw.ctrlPort });
    const tpm = new Tpm(transport);
    await tpm.run(Startup, {}, { startupType: TPM_SU.CLEAR });
    applied = await applyMeasuredBoot(tpm, {
      bootChain: { shim: { path: '\\EFI\\BOOT\\BOOTX64.EFI', image: SHIM }, grub: { path: '\\EFI\\BOOT\\grubx64.efi', image: GRUB }, kernel: { path: '\\vmlinuz-6.1', image: KERNEL } },
      cmdline: 'root=/dev/sda2 ro quiet lockdown=integrity module.sig_enforce=1',
      ima: { entries: [{ path: '/usr/bin/trustroot-agent', content: AGENT }, { path: '/tmp/scratch.sh', content: SCRATCH }, { kind: 'violation', path: '/var/log/syslog' }] },
    });
    const ek = await getEk(tpm, { template: 'H-3' });
    ekPublicEcc = ek.publicArea;
    ekPublicRsa = (await getEk(tpm, { template: 'L-1' })).publicArea;
    const ak = await createAk(tpm, ek, { alg: 'ecc' });
    const description = await describeTpm(tpm);
    d = { sw, transport, tpm, ak, banks: applied.evidence.banks, description };
    q = await quoteOf(d);
    const certificate = await readEkCertificate(tpm, 'H-3');
    if (certificate === undefined) throw new Error('swtpm_setup wrote no H-3 EK certificate');
    ekVerification = verifyEkCertificate({ certificate, intermediates: [sw.issuerCertificatePem], roots: trustBundle(sw.rootCertificatePem), at: new Date(), ekPublic: ek.publicArea, description });
    log = parseEventLog(applied.eventLog);
    ima = replayIma(parseImaBinary(applied.imaList!.binary).entries, undefined, { quoted: q.result.pcrValues });
  }, 60_000);

  afterAll(async () => {
    await d?.tpm.close();
    await sw?.stop();
  });

  /** This device's rules, written from what was installed (digests computed here, not by the writer). */
  const deviceRules = (): Omit<PolicyDocument, 'version'> => {
    const agg = applied.imaList === undefined ? undefined : applied.evidence.ima!.bootAggregate!;
    const aggDigest = createHash('sha256')
      .update(Buffer.concat(agg!.pcrs.map((i) => q.result.pcrValues.get(TPM_ALG.SHA256)!.get(i)!)))
      .digest('hex');
    return {
      eventLog: {
        bootChain: { sha256: [sha256(SHIM), sha256(GRUB), sha256(KERNEL)] },
        kernelCommandLine: { required: ['ro', 'lockdown=*', 'module.sig_enforce=1'], forbidden: ['init=*'] },
        forbiddenEvents: [{ type: 'EV_EFI_ACTION', text: 'Entering ROM Based Setup' }],
      },
      ima: { allow: { boot_aggregate: [`sha256:${aggDigest}`], '/usr/bin/trustroot-agent': [`sha256:${sha256(AGENT)}`] }, exclude: ['/tmp/'] },
    };
  };
  const evidence = (over: Partial<PolicyEvidence> = {}, policy?: Policy): PolicyEvidence => ({
    quote: verified(q, policy),
    pcrValues: q.result.pcrValues,
    eventLog: eventLogEvidence(log),
    ima,
    tpm: classifyTpm(d.description, ekVerification, { profile: 'test' }),
    ekChain: ekVerification,
    ...over,
  });

  it('the EK chain verifies to swtpm-localca\'s root, and the TPM is software', () => {
    expect(ekVerification.chain?.status).toBe('verified');
    expect(ekVerification.keyMatches).toBe(true);
    expect(classifyTpm(d.description, ekVerification)).toMatchObject({ type: 'software', assurance: 'verified' });
  });

  it('test profile: the whole honest evidence is accepted (the IMA violation warns)', () => {
    const policy = withProfile('test', deviceRules());
    const v = evaluatePolicy(policy, evidence({}, policy));
    expect(failures(v)).toEqual([]);
    expect(v.checks.filter((c) => c.outcome === 'warn').map((c) => `${c.check}:${c.reason}`)).toEqual(['policy.ima.violations:ima.violations']);
    expect(v.checks.filter((c) => c.outcome === 'not-performed')).toEqual([]);
    expect(one(v, 'policy.ima.violations').detail).toContain('/var/log/syslog');
  });

  it('production profile: the same evidence is refused only for the software TPM (the EK chain passes)', () => {
    const policy = withProfile('production', deviceRules());
    const v = evaluatePolicy(policy, evidence({}, policy));
    expect(failures(v)).toEqual(['policy.tpm.type:type.software-refused']);
    expect(one(v, 'policy.tpm.ek-chain')).toMatchObject({ outcome: 'pass', reason: 'ek.verified' });
    expect(one(v, 'policy.secure-boot').reason).toBe('secure-boot.enabled');
  });

  it('IMA rules on the writer\'s list: violations at the policy\'s severity, an excluded path, an unlisted one', () => {
    const rules = deviceRules();
    const v = evaluatePolicy({ version: 1, ima: { ...rules.ima, violations: 'fail' } }, evidence());
    expect(failures(v)).toEqual(['policy.ima.violations:ima.violations']);
    const noExclude = evaluatePolicy({ version: 1, ima: { allow: rules.ima!.allow! } }, evidence());
    expect(one(noExclude, 'policy.ima.allow')).toMatchObject({ outcome: 'fail', reason: 'ima.not-allowed' });
    expect(one(noExclude, 'policy.ima.allow').detail).toContain('/tmp/scratch.sh');
    expect(one(noExclude, 'policy.ima.allow').detail).toContain('path.not-listed');
  });

  it('EK chain requirement: verified, bare chain, unchecked key, wrong key, incomplete chain, pre-registered', () => {
    const ek = (req: 'verified' | 'pre-registered', over: Partial<PolicyEvidence>) => one(evaluatePolicy({ version: 1, tpm: { ekChain: req } }, evidence(over)), 'policy.tpm.ek-chain');
    expect(ek('verified', {})).toMatchObject({ outcome: 'pass', reason: 'ek.verified' });
    expect(ek('verified', { ekChain: ekVerification.chain! })).toMatchObject({ outcome: 'pass', reason: 'ek.verified' });
    const base = { certificate: ekVerification.certificate!, intermediates: [sw.issuerCertificatePem], at: new Date() };
    const unchecked = verifyEkCertificate({ ...base, roots: trustBundle(sw.rootCertificatePem) });
    expect(ek('verified', { ekChain: unchecked, tpm: undefined })).toMatchObject({ outcome: 'fail', reason: 'ek.key-unchecked' });
    const wrongKey = verifyEkCertificate({ ...base, roots: trustBundle(sw.rootCertificatePem), ekPublic: ekPublicRsa });
    expect(ek('verified', { ekChain: wrongKey, tpm: undefined })).toMatchObject({ outcome: 'fail', reason: 'ek.key-mismatch' });
    // No configured root: the chain stops at swtpm-localca's intermediate.
    const incomplete = verifyEkCertificate({ ...base, ekPublic: ekPublicEcc, requireVerifiedChain: false });
    expect(incomplete.chain?.status).toBe('incomplete');
    const inc = { ekChain: incomplete.chain!, tpm: undefined };
    expect(ek('verified', inc)).toMatchObject({ outcome: 'fail', reason: 'ek.not-verified' });
    expect(ek('pre-registered', inc)).toMatchObject({ outcome: 'fail', reason: 'ek.not-verified' });
    expect(ek('pre-registered', { ...inc, ekPreRegistered: true })).toMatchObject({ outcome: 'pass', reason: 'ek.pre-registered' });
    expect(ek('verified', { ...inc, ekPreRegistered: true })).toMatchObject({ outcome: 'fail', reason: 'ek.not-verified' });
  });

  it('the writer\'s Secure Boot, boot chain and command line pass; a kernel swapped for another fails', () => {
    const rules = deviceRules();
    const v = evaluatePolicy({ version: 1, eventLog: { ...rules.eventLog, secureBoot: 'enabled' } }, evidence());
    expect(failures(v)).toEqual([]);
    expect(one(v, 'policy.boot-chain').detail).toMatch(/all 3 PCR 4/);
    const other = evaluatePolicy({ version: 1, eventLog: { bootChain: { sha256: [sha256(SHIM), sha256(GRUB), sha256(randomBytes(16))] } } }, evidence());
    expect(one(other, 'policy.boot-chain')).toMatchObject({ outcome: 'fail', reason: 'boot-chain.not-allowed' });
    expect(one(other, 'policy.boot-chain').detail).toContain(sha256(KERNEL));
  });
});
