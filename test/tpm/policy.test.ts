/**
 * The policy calculator (src/tpm/policy.ts) against known answers, against
 * itself (the builder and the pure updates agree, fast-check) and against
 * swtpm: every Part 3 §23 policy command is run in a TPM session, the digest
 * read back with PolicyGetDigest and compared with the calculator's.
 */
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  FlushContext,
  LoadExternal,
  NV_DefineSpace,
  NV_ReadPublic,
  NV_UndefineSpace,
  NV_Write,
  PCR_Extend,
  PolicyAuthValue,
  PolicyAuthorize,
  PolicyAuthorizeNV,
  PolicyCommandCode,
  PolicyCounterTimer,
  PolicyCpHash,
  PolicyDuplicationSelect,
  PolicyGetDigest,
  PolicyLocality,
  PolicyNV,
  PolicyNameHash,
  PolicyNvWritten,
  PolicyOR,
  PolicyPCR,
  PolicyPassword,
  PolicyPhysicalPresence,
  PolicySecret,
  PolicySigned,
  PolicyTemplate,
  PolicyTicket,
  StartAuthSession,
  Startup,
  VerifySignature,
} from '../../src/tpm/commands/index.js';
import { readCapability } from '../../src/tpm/capability.js';
import { TPM_ALG, TPM_CAP, TPM_CC, TPM_ECC, TPM_EO, TPM_HT, TPM_RH, TPM_SE, TPM_ST, TPM_SU } from '../../src/tpm/constants.js';
import { cpHash } from '../../src/tpm/cphash.js';
import { digestSize } from '../../src/tpm/crypto/hash.js';
import { ArgumentError, PolicyError } from '../../src/tpm/errors.js';
import { encodeParams } from '../../src/tpm/frame.js';
import { handleName, nvName, objectName } from '../../src/tpm/names.js';
import { pcrSelection, readPcrs } from '../../src/tpm/pcr.js';
import {
  EK_POLICY_INDEX,
  ekPolicyA,
  ekPolicyB,
  ekPolicyC,
  ekPolicyIndexPublic,
  extendPolicy,
  nameHash,
  pcrDigest,
  PolicyCalculator,
  policyAuthorizeDigest,
  policySignedDigest,
  templateHash,
  updatePolicyAuthValue,
  updatePolicyAuthorize,
  updatePolicyAuthorizeNV,
  updatePolicyCommandCode,
  updatePolicyCounterTimer,
  updatePolicyCpHash,
  updatePolicyDuplicationSelect,
  updatePolicyLocality,
  updatePolicyNV,
  updatePolicyNameHash,
  updatePolicyNvWritten,
  updatePolicyOR,
  updatePolicyPCR,
  updatePolicyPassword,
  updatePolicyPhysicalPresence,
  updatePolicySecret,
  updatePolicySigned,
  updatePolicyTemplate,
  updatePolicyTicket,
  zeroPolicy,
} from '../../src/tpm/policy.js';
import { isRc, TPM_RC, TpmError } from '../../src/tpm/rc.js';
import { passwordAuth, runCommand } from '../../src/tpm/run.js';
import { rsaEkTemplate, rsaSrkTemplate, eccSrkTemplate } from '../../src/tpm/templates.js';
import { SwtpmTransport, type Transport } from '../../src/tpm/transport/index.js';
import {
  TPMA_LOCALITY,
  TPMA_NV,
  TPMA_OBJECT,
  TPMA_SESSION,
  TPMT_HA,
  type TPMS_AUTH_COMMAND,
  type TPMS_NV_PUBLIC,
  type TPMT_PUBLIC,
  type TPMT_SIGNATURE,
  type TPMT_TK_AUTH,
} from '../../src/tpm/types/index.js';
import { encode } from '../../src/tpm/wire/codec.js';
import { describeWithSwtpm, startSwtpm, type SwtpmInstance } from '../support/swtpm.js';

const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const EMPTY = new Uint8Array(0);
const { SHA1, SHA256, SHA384, SHA512 } = TPM_ALG;
const ALG_NAME: Record<number, string> = { [SHA1]: 'SHA-1', [SHA256]: 'SHA-256', [SHA384]: 'SHA-384', [SHA512]: 'SHA-512' };
const NODE_HASH: Record<number, string> = { [SHA1]: 'sha1', [SHA256]: 'sha256', [SHA384]: 'sha384', [SHA512]: 'sha512' };

function u32(n: number): Uint8Array {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}
function concat(...parts: Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts));
}
function policyError(fn: () => unknown, parameter?: string): PolicyError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(PolicyError);
  expect((caught as PolicyError).code).toBe('policy.argument');
  if (parameter !== undefined) expect((caught as PolicyError).parameter).toBe(parameter);
  return caught as PolicyError;
}

// ---------------------------------------------------------------------------
// Known answers

describe('known answers', () => {
  // tpm-spec-facts.md §5 "Worked values" (computed there from the formulas, independently of this code).
  it('tpm-spec-facts.md §5: EK Policy A, PolicyAuthValue and PolicyCommandCode(ActivateCredential) from zero (SHA-256)', () => {
    expect(toHex(ekPolicyA())).toBe('837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa');
    expect(toHex(new PolicyCalculator(SHA256).policySecret({ authName: handleName(TPM_RH.ENDORSEMENT) }).digest)).toBe(
      '837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa',
    );
    expect(toHex(new PolicyCalculator(SHA256).policyAuthValue().digest)).toBe('8fcd2169ab92694e0c633f1ab772842b8241bbc20288981fc7ac1eddc1fddb0e');
    // PolicyPassword extends with CC_PolicyAuthValue (Part 3 §23.18), so it gives the same digest.
    expect(toHex(new PolicyCalculator(SHA256).policyPassword().digest)).toBe('8fcd2169ab92694e0c633f1ab772842b8241bbc20288981fc7ac1eddc1fddb0e');
    expect(toHex(new PolicyCalculator(SHA256).policyCommandCode({ code: TPM_CC.ActivateCredential }).digest)).toBe(
      'e587c11ab50f9d8730f721e3fea42b46c0455b246f96aee85d18eb3be64d666a',
    );
    // The EK templates carry Policy A as their authPolicy (tpm-spec-facts.md §8).
    expect(toHex(rsaEkTemplate().authPolicy)).toBe(toHex(ekPolicyA()));
  });

  // TCG EK Credential Profile v2.7 values as checked in by google/go-tpm, tpm2/test/ek_test.go
  // ("Computing PolicyA", "Computing Policy Index Names", "Computing PolicyC", "Computing PolicyB").
  const EK_VECTORS: Record<number, { a: string; indexName: string; c: string; b: string }> = {
    [SHA256]: {
      a: '837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa',
      indexName: '000b0c9d717e9c3fe69fda41769450bb145957f8b3610e084dbf65591a5d11ecd83f',
      c: '3767e2edd43ff45a3a7e1eaefcef78643dca964632e7aad82c673a30d8633fde',
      b: 'ca3d0a99a2b93906f7a3342414efcfb3a385d44cd1fd459089d19b5071c0b7a0',
    },
    [SHA384]: {
      a: '8bbf2266537c171cb56e403c4dc1d4b64f432611dc386e6f532050c3278c930e143e8bb1133824ccb431053871c6db53',
      indexName: '000cdb62fca346612c976732ff4e8621fb4e858be82586486504f7d02e621f8d7d61ae32cfc60c4d120609ed6768afcf090c',
      c: 'd6032ce61f2fb3c240eb3cf6a33237ef2b6a16f4293c22b455e261cffd217ad5b4947c2d73e63005eed2dc2b3593d165',
      b: 'b26e7d28d11a50bc53d882bcf5fd3a1a074148bb35d3b4e4cb1c0ad9bde419cacb47ba09699646150f9fc000f3f80e12',
    },
    [SHA512]: {
      a: '1e3b76502c8a1425aa0b7b3fc646a1b0fae063b03b5368f9c4cddecaff0891dd682bac1a85d4d832b781ea451915de5fc5bf0dc4a1917cd42fa041e3f998e0ee',
      indexName:
        '000d1c47c0bbcbd3cf7d7cae6987d31937c171015dde3b7f0d3c869bca1f7e8a223b9acfadb49b7c9cf14d450f41e9327de34d9291eece2c58ab1dc10e9059cce560',
      c: '589ee1e146544716e8deafe6db247b01b81e9f9c7dd16b814aa159138749105fba5388dd1dea702f35240c184933121e2c61b8f50d3ef91393a49a38c3f73fc8',
      b: 'b8221ca69e8550a4914de3faa6a18c072cc01208073a928d5d66d59ef79e49a429c41a6b269571d57edb25fbdb1838425608b413cd616a5f6db5b6071af99bea',
    },
  };
  for (const alg of [SHA256, SHA384, SHA512]) {
    it(`EK Credential Profile ${ALG_NAME[alg]}: PolicyA, the Policy Index Name, PolicyC and PolicyB (go-tpm tpm2/test/ek_test.go)`, () => {
      const v = EK_VECTORS[alg]!;
      expect(toHex(ekPolicyA(alg))).toBe(v.a);
      const pub = ekPolicyIndexPublic(alg);
      expect(pub.nvIndex).toBe(EK_POLICY_INDEX[alg as typeof SHA256]);
      expect(TPMA_NV.toWord(pub.attributes)).toBe(0x220f1008);
      expect(toHex(nvName(pub))).toBe(v.indexName);
      expect(toHex(ekPolicyC(alg))).toBe(v.c);
      expect(toHex(ekPolicyB(alg))).toBe(v.b);
    });
  }

  it('PolicyAuthValue and PolicyCommandCode equal H(old ‖ CC ‖ args) built by hand with node:crypto', () => {
    for (const alg of [SHA1, SHA256, SHA384, SHA512]) {
      const zero = new Uint8Array(digestSize(alg));
      const byHand = createHash(NODE_HASH[alg]!).update(zero).update(u32(0x16b)).digest();
      expect(toHex(updatePolicyAuthValue(alg, zero))).toBe(byHand.toString('hex'));
      const cc = createHash(NODE_HASH[alg]!).update(byHand).update(u32(0x16c)).update(u32(TPM_CC.Unseal)).digest();
      expect(toHex(updatePolicyCommandCode(alg, byHand, { code: TPM_CC.Unseal }))).toBe(cc.toString('hex'));
      expect(toHex(extendPolicy(alg, zero, 0x16b))).toBe(byHand.toString('hex'));
    }
  });
});

// ---------------------------------------------------------------------------
// Argument errors

describe('argument errors', () => {
  const d32 = new Uint8Array(32);
  it('PolicyOR takes 2 to 8 branches: 0, 1 and 9 are PolicyErrors on pHashList (pure and builder)', () => {
    for (const n of [0, 1, 9]) {
      const branches = Array.from({ length: n }, (_, i) => new Uint8Array(32).fill(i));
      policyError(() => updatePolicyOR(SHA256, d32, { pHashList: branches }), 'pHashList');
      policyError(() => new PolicyCalculator(SHA256).policyOR({ pHashList: branches }), 'pHashList');
    }
    for (const n of [2, 8]) {
      expect(updatePolicyOR(SHA256, d32, { pHashList: Array.from({ length: n }, () => d32) }).length).toBe(32);
    }
  });

  it('digests of the wrong size: cpHashA, nameHash, templateHash, the running digest, and (builder only) OR branches and pcrDigest', () => {
    policyError(() => updatePolicyCpHash(SHA256, d32, { cpHashA: new Uint8Array(20) }), 'cpHashA');
    policyError(() => updatePolicyNameHash(SHA1, new Uint8Array(20), { nameHash: d32 }), 'nameHash');
    policyError(() => updatePolicyTemplate(SHA384, new Uint8Array(48), { templateHash: d32 }), 'templateHash');
    policyError(() => updatePolicyAuthValue(SHA256, new Uint8Array(20)), 'policyDigest');
    policyError(() => new PolicyCalculator(SHA256, new Uint8Array(31)), 'policyDigest');
    policyError(() => new PolicyCalculator(SHA256).policyCpHash({ cpHashA: new Uint8Array(48) }), 'cpHashA');
    // A TPM accepts a short branch or pcrDigest (a trial session just hashes it; see the swtpm suite),
    // so the pure updates do too; the builder refuses them because no session digest can ever match.
    policyError(() => new PolicyCalculator(SHA256).policyOR({ pHashList: [d32, new Uint8Array(20)] }), 'pHashList[1]');
    policyError(() => new PolicyCalculator(SHA256).policyOR({ pHashList: [d32, new PolicyCalculator(SHA1)] }), 'pHashList[1]');
    policyError(() => new PolicyCalculator(SHA256).policyPCR({ pcrs: [pcrSelection(SHA256, [0])], pcrDigest: new Uint8Array(20) }), 'pcrDigest');
    expect(updatePolicyOR(SHA256, d32, { pHashList: [d32, new Uint8Array(20)] }).length).toBe(32);
    expect(updatePolicyPCR(SHA256, d32, { pcrs: [pcrSelection(SHA256, [0])], pcrDigest: new Uint8Array(20) }).length).toBe(32);
    // Longer than the TPM2B can carry.
    policyError(() => updatePolicySecret(SHA256, d32, { authName: handleName(TPM_RH.OWNER), policyRef: new Uint8Array(65) }), 'policyRef');
    policyError(() => updatePolicyNV(SHA256, d32, { operandB: new Uint8Array(65), offset: 0, operation: TPM_EO.EQ, nvIndexName: u32(0x01500000) }), 'operandB');
  });

  it('values the TPM refuses even in a trial session', () => {
    policyError(() => updatePolicyPCR(SHA256, d32, { pcrs: [pcrSelection(SHA256, [0])], pcrDigest: EMPTY }), 'pcrDigest');
    policyError(() => updatePolicyLocality(SHA256, d32, { locality: 0 }), 'locality');
    policyError(() => updatePolicyLocality(SHA256, d32, { locality: TPMA_LOCALITY.of({}) }), 'locality');
    policyError(() => updatePolicyLocality(SHA256, d32, { locality: 256 }), 'locality');
    policyError(() => updatePolicyCounterTimer(SHA256, d32, { operandB: new Uint8Array(8), offset: 20, operation: TPM_EO.EQ }), 'operandB');
    policyError(() => updatePolicyCounterTimer(SHA256, d32, { operandB: EMPTY, offset: 26, operation: TPM_EO.EQ }), 'offset');
    policyError(() => updatePolicyCounterTimer(SHA256, d32, { operandB: EMPTY, offset: 0, operation: 0x0c }), 'operation');
    policyError(() => updatePolicyAuthorize(SHA256, d32, { keySign: new Uint8Array(1) }), 'keySign');
    policyError(() => updatePolicyAuthorize(SHA256, d32, { keySign: concat(u32(0x000b0000).subarray(0, 2), new Uint8Array(20)) }), 'keySign');
    policyError(() => updatePolicyAuthorize(SHA256, d32, { keySign: concat(Uint8Array.of(0x00, 0x01), new Uint8Array(32)) }), 'keySign');
    policyError(() => updatePolicyTicket(SHA256, d32, { authName: handleName(TPM_RH.OWNER), ticket: { tag: TPM_ST.VERIFIED } }), 'ticket');
    policyError(() => updatePolicyDuplicationSelect(SHA256, d32, { objectName: EMPTY, newParentName: EMPTY, includeObject: 2 as 1 }), 'includeObject');
    policyError(() => updatePolicyCommandCode(SHA256, d32, { code: -1 }), 'code');
    policyError(() => pcrDigest(SHA256, [pcrSelection(SHA256, [3])], new Map()), 'pcrs');
    policyError(() => policySignedDigest(SHA256, { expiration: 2 ** 31 }), 'expiration');
  });

  it('the builder refuses what is not a Name, and a refused step leaves the digest unchanged', () => {
    const c = new PolicyCalculator(SHA256).policyAuthValue();
    const before = c.digest;
    policyError(() => c.policySecret({ authName: new Uint8Array(32) }), 'authName');
    policyError(() => c.policyNV({ operandB: EMPTY, offset: 0, operation: TPM_EO.EQ, nvIndexName: concat(Uint8Array.of(0, 0x0b), new Uint8Array(20)) }), 'nvIndexName');
    policyError(() => c.policyOR({ pHashList: [before] }), 'pHashList');
    expect(c.digest).toEqual(before);
    // The pure update hashes any Name the TPM2B_NAME can carry, as a TPM does.
    expect(updatePolicySecret(SHA256, before, { authName: new Uint8Array(32) }).length).toBe(32);
  });

  it('a hash algorithm that is not one is an ArgumentError (crypto.argument)', () => {
    expect(() => new PolicyCalculator(TPM_ALG.RSA)).toThrow(ArgumentError);
    expect(() => updatePolicyAuthValue(TPM_ALG.NULL, EMPTY)).toThrow(ArgumentError);
    expect(() => ekPolicyA(TPM_ALG.AES)).toThrow(ArgumentError);
    policyError(() => ekPolicyIndexPublic(TPM_ALG.SHA3_256), 'nvIndex');
  });
});

// ---------------------------------------------------------------------------
// Properties: the builder and the pure updates agree

const HASHES = [SHA1, SHA256, SHA384, SHA512] as const;

interface Op {
  readonly label: string;
  pure(alg: number, d: Uint8Array): Uint8Array;
  build(c: PolicyCalculator): void;
}

function opsArbitrary(alg: number): fc.Arbitrary<Op> {
  const size = digestSize(alg);
  const digest = fc.uint8Array({ minLength: size, maxLength: size });
  const name = fc.oneof(
    fc.constantFrom(TPM_RH.OWNER, TPM_RH.ENDORSEMENT, TPM_RH.PLATFORM, TPM_RH.NULL).map((h) => handleName(h)),
    fc.constantFrom(...HASHES).chain((a) => fc.uint8Array({ minLength: digestSize(a), maxLength: digestSize(a) }).map((d) => concat(Uint8Array.of(a >> 8, a & 0xff), d))),
  );
  const ref = fc.uint8Array({ maxLength: 64 });
  const selection = fc
    .array(fc.record({ hash: fc.constantFrom(...HASHES), pcrs: fc.uniqueArray(fc.integer({ min: 0, max: 23 }), { maxLength: 6 }) }), { maxLength: 3 })
    .map((xs) => xs.map((x) => pcrSelection(x.hash, x.pcrs)));
  const eo = fc.constantFrom(...Object.values(TPM_EO));
  const yesNo = fc.constantFrom(true, false, 0 as const, 1 as const);
  const op = (label: string, pure: Op['pure'], build: Op['build']): Op => ({ label, pure, build });
  return fc.oneof(
    fc.record({ authName: name, policyRef: ref }).map((a) => op('PolicySigned', (g, d) => updatePolicySigned(g, d, a), (c) => void c.policySigned(a))),
    fc.record({ authName: name, policyRef: ref }).map((a) => op('PolicySecret', (g, d) => updatePolicySecret(g, d, a), (c) => void c.policySecret(a))),
    fc
      .record({ authName: name, policyRef: ref, ticket: fc.record({ tag: fc.constantFrom(TPM_ST.AUTH_SIGNED, TPM_ST.AUTH_SECRET) }) })
      .map((a) => op('PolicyTicket', (g, d) => updatePolicyTicket(g, d, a), (c) => void c.policyTicket(a))),
    fc.array(digest, { minLength: 2, maxLength: 8 }).map((pHashList) => op('PolicyOR', (g, d) => updatePolicyOR(g, d, { pHashList }), (c) => void c.policyOR({ pHashList }))),
    fc.record({ pcrs: selection, pcrDigest: digest }).map((a) => op('PolicyPCR', (g, d) => updatePolicyPCR(g, d, a), (c) => void c.policyPCR(a))),
    fc.integer({ min: 1, max: 255 }).map((locality) => op('PolicyLocality', (g, d) => updatePolicyLocality(g, d, { locality }), (c) => void c.policyLocality({ locality }))),
    fc
      .record({ operandB: fc.uint8Array({ maxLength: 64 }), offset: fc.integer({ min: 0, max: 0xffff }), operation: eo, nvIndexName: name })
      .map((a) => op('PolicyNV', (g, d) => updatePolicyNV(g, d, a), (c) => void c.policyNV(a))),
    fc
      .integer({ min: 0, max: 25 })
      .chain((offset) => fc.record({ operandB: fc.uint8Array({ maxLength: 25 - offset }), offset: fc.constant(offset), operation: eo }))
      .map((a) => op('PolicyCounterTimer', (g, d) => updatePolicyCounterTimer(g, d, a), (c) => void c.policyCounterTimer(a))),
    fc.constantFrom(...Object.values(TPM_CC)).map((code) => op('PolicyCommandCode', (g, d) => updatePolicyCommandCode(g, d, { code }), (c) => void c.policyCommandCode({ code }))),
    fc.constant(op('PolicyPhysicalPresence', (g, d) => updatePolicyPhysicalPresence(g, d), (c) => void c.policyPhysicalPresence())),
    digest.map((cpHashA) => op('PolicyCpHash', (g, d) => updatePolicyCpHash(g, d, { cpHashA }), (c) => void c.policyCpHash({ cpHashA }))),
    digest.map((h) => op('PolicyNameHash', (g, d) => updatePolicyNameHash(g, d, { nameHash: h }), (c) => void c.policyNameHash({ nameHash: h }))),
    fc
      .record({ objectName: name, newParentName: name, includeObject: yesNo })
      .map((a) => op('PolicyDuplicationSelect', (g, d) => updatePolicyDuplicationSelect(g, d, a), (c) => void c.policyDuplicationSelect(a))),
    fc
      .record({ keySign: name.filter((n) => n.length !== 4), policyRef: ref })
      .map((a) => op('PolicyAuthorize', (g, d) => updatePolicyAuthorize(g, d, a), (c) => void c.policyAuthorize(a))),
    fc.constant(op('PolicyAuthValue', (g, d) => updatePolicyAuthValue(g, d), (c) => void c.policyAuthValue())),
    fc.constant(op('PolicyPassword', (g, d) => updatePolicyPassword(g, d), (c) => void c.policyPassword())),
    yesNo.map((writtenSet) => op('PolicyNvWritten', (g, d) => updatePolicyNvWritten(g, d, { writtenSet }), (c) => void c.policyNvWritten({ writtenSet }))),
    digest.map((h) => op('PolicyTemplate', (g, d) => updatePolicyTemplate(g, d, { templateHash: h }), (c) => void c.policyTemplate({ templateHash: h }))),
    name.map((nvIndexName) => op('PolicyAuthorizeNV', (g, d) => updatePolicyAuthorizeNV(g, d, { nvIndexName }), (c) => void c.policyAuthorizeNV({ nvIndexName }))),
  );
}

describe('properties', () => {
  const sequence = fc.constantFrom(...HASHES).chain((alg) => fc.record({ alg: fc.constant(alg), ops: fc.array(opsArbitrary(alg), { maxLength: 12 }) }));

  it('a builder chain equals the fold of the pure updates, and clone() forks without sharing state', () => {
    fc.assert(
      fc.property(sequence, ({ alg, ops }) => {
        const c = new PolicyCalculator(alg);
        let d = zeroPolicy(alg);
        for (const op of ops) {
          op.build(c);
          d = op.pure(alg, d);
          expect(c.digest).toEqual(d);
        }
        const fork = c.clone().policyAuthValue();
        expect(c.digest).toEqual(d);
        expect(fork.digest).toEqual(updatePolicyAuthValue(alg, d));
        expect(c.toHa()).toEqual({ hashAlg: alg, digest: d });
        expect(c.reset().digest).toEqual(zeroPolicy(alg));
      }),
      { numRuns: 150 },
    );
  });

  it('PolicyPassword ≡ PolicyAuthValue; PolicyTicket ≡ the command its ticket stands for; OR, Authorize and AuthorizeNV forget the old digest', () => {
    const anyDigest = fc.constantFrom(...HASHES).chain((alg) => fc.record({ alg: fc.constant(alg), d: fc.uint8Array({ minLength: digestSize(alg), maxLength: digestSize(alg) }) }));
    fc.assert(
      fc.property(anyDigest, anyDigest, fc.uint8Array({ maxLength: 64 }), ({ alg, d }, other, policyRef) => {
        const zero = zeroPolicy(alg);
        const d2 = other.alg === alg ? other.d : zero;
        expect(updatePolicyPassword(alg, d)).toEqual(updatePolicyAuthValue(alg, d));
        const authName = handleName(TPM_RH.OWNER);
        expect(updatePolicyTicket(alg, d, { authName, policyRef, ticket: { tag: TPM_ST.AUTH_SIGNED } })).toEqual(updatePolicySigned(alg, d, { authName, policyRef }));
        expect(updatePolicyTicket(alg, d, { authName, policyRef, ticket: { tag: TPM_ST.AUTH_SECRET } })).toEqual(updatePolicySecret(alg, d, { authName, policyRef }));
        const pHashList = [d, d2];
        expect(updatePolicyOR(alg, d, { pHashList })).toEqual(updatePolicyOR(alg, zero, { pHashList }));
        const keySign = concat(Uint8Array.of(0, 0x0b), new Uint8Array(32).fill(7));
        expect(updatePolicyAuthorize(alg, d, { keySign, policyRef })).toEqual(updatePolicyAuthorize(alg, d2, { keySign, policyRef }));
        expect(updatePolicyAuthorizeNV(alg, d, { nvIndexName: keySign })).toEqual(updatePolicyAuthorizeNV(alg, d2, { nvIndexName: keySign }));
        // Inputs are never written to.
        const copy = d.slice();
        updatePolicyCpHash(alg, d, { cpHashA: d });
        expect(d).toEqual(copy);
      }),
      { numRuns: 150 },
    );
  });
});

// ---------------------------------------------------------------------------
// Against swtpm

interface Session {
  readonly handle: number;
  readonly nonceTPM: Uint8Array;
}

interface Step {
  readonly label: string;
  run(s: Session): Promise<unknown>;
  calc(c: PolicyCalculator): unknown;
}

describeWithSwtpm('policy digests against swtpm (PolicyGetDigest)', () => {
  let sw: SwtpmInstance;
  let t: Transport;
  let signKey: KeyObject;
  let signPub: TPMT_PUBLIC;
  let keyHandle = 0;
  let keyName: Uint8Array;
  let pcrBanks: Map<number, Map<number, Uint8Array>>;

  // Two ordinary NV indices: U is never written, W is (its Name changes when TPMA_NV_WRITTEN sets).
  const nvU = 0x01500020;
  const nvW = 0x01500021;
  const nvPublic = (nvIndex: number, written: boolean): TPMS_NV_PUBLIC => ({
    nvIndex,
    nameAlg: SHA256,
    attributes: TPMA_NV.of({ AUTHWRITE: true, AUTHREAD: true, OWNERWRITE: true, OWNERREAD: true, NO_DA: true, WRITTEN: written }),
    authPolicy: EMPTY,
    dataSize: 8,
  });
  const nvWData = Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8);
  const currentPcrs = [pcrSelection(SHA1, [16, 23]), pcrSelection(SHA256, [0, 7, 16])];

  async function startSession(type: number, alg: number): Promise<Session> {
    const r = await runCommand(
      t,
      StartAuthSession,
      { tpmKey: TPM_RH.NULL, bind: TPM_RH.NULL },
      { nonceCaller: randomBytes(16), encryptedSalt: EMPTY, sessionType: type as typeof TPM_SE.TRIAL, symmetric: { algorithm: TPM_ALG.NULL }, authHash: alg as typeof SHA256 },
    );
    return { handle: r.handles.sessionHandle, nonceTPM: r.params.nonceTPM };
  }
  async function getDigest(s: Session): Promise<Uint8Array> {
    return (await runCommand(t, PolicyGetDigest, { policySession: s.handle }, {})).params.policyDigest;
  }
  /** Runs `body` in a fresh session, reads its digest, and always flushes the session. */
  async function inSession<T>(type: number, alg: number, body: (s: Session) => Promise<T>): Promise<{ digest: Uint8Array; value: T }> {
    const s = await startSession(type, alg);
    try {
      const value = await body(s);
      return { digest: await getDigest(s), value };
    } finally {
      await runCommand(t, FlushContext, {}, { flushHandle: s.handle });
    }
  }
  const trial = async (alg: number, body: (s: Session) => Promise<unknown>): Promise<Uint8Array> => (await inSession(TPM_SE.TRIAL, alg, body)).digest;
  /** A policy session used as an authorization: no HMAC key (no PolicyAuthValue, unbound, unsalted), so an empty HMAC is accepted (the reference's ComputeCommandHMAC: no key, no HMAC). */
  const policyAuth = (s: Session): TPMS_AUTH_COMMAND => ({ sessionHandle: s.handle, nonce: randomBytes(16), sessionAttributes: TPMA_SESSION.of({ continueSession: true }), hmac: EMPTY });
  const ecdsa = (message: Uint8Array): TPMT_SIGNATURE => {
    const sig = sign('sha256', message, { key: signKey, dsaEncoding: 'ieee-p1363' });
    return { sigAlg: TPM_ALG.ECDSA, signature: { hash: SHA256, signatureR: sig.subarray(0, 32), signatureS: sig.subarray(32) } };
  };

  beforeAll(async () => {
    sw = await startSwtpm();
    t = new SwtpmTransport({ port: sw.port, ctrlPort: sw.ctrlPort });
    await runCommand(t, Startup, {}, { startupType: TPM_SU.CLEAR });

    // An ECDSA P-256 key made by node:crypto, its public part loaded in the owner hierarchy (so VerifySignature gives real tickets).
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    signKey = pair.privateKey;
    const jwk = pair.publicKey.export({ format: 'jwk' });
    signPub = {
      type: TPM_ALG.ECC,
      nameAlg: SHA256,
      objectAttributes: TPMA_OBJECT.of({ sign: true, userWithAuth: true, noDA: true }),
      authPolicy: EMPTY,
      parameters: {
        symmetric: { algorithm: TPM_ALG.NULL },
        scheme: { scheme: TPM_ALG.ECDSA, details: { hashAlg: SHA256 } },
        curveID: TPM_ECC.NIST_P256,
        kdf: { scheme: TPM_ALG.NULL },
      },
      unique: { x: Buffer.from(jwk.x!, 'base64url'), y: Buffer.from(jwk.y!, 'base64url') },
    } as TPMT_PUBLIC;
    const loaded = await runCommand(t, LoadExternal, {}, { inPrivate: null, inPublic: signPub, hierarchy: TPM_RH.OWNER });
    keyHandle = loaded.handles.objectHandle;
    keyName = objectName(signPub);
    expect(toHex(loaded.params.name)).toBe(toHex(keyName));

    for (const nvIndex of [nvU, nvW]) {
      await runCommand(t, NV_DefineSpace, { authHandle: TPM_RH.OWNER }, { auth: EMPTY, publicInfo: nvPublic(nvIndex, false) });
    }
    await runCommand(t, NV_Write, { authHandle: nvW, nvIndex: nvW }, { data: nvWData, offset: 0 });

    // Make PCR 16 and 23 non-zero in two banks, then read what PolicyPCR will digest.
    for (const pcr of [16, 23]) {
      const digests = [SHA1, SHA256].map((alg) => ({ hashAlg: alg, digest: createHash(NODE_HASH[alg]!).update(`trustroot policy ${pcr}`).digest() }));
      await runCommand(t, PCR_Extend, { pcrHandle: pcr }, { digests: digests as never });
    }
    pcrBanks = await readPcrs(t, currentPcrs);
  });

  afterAll(async () => {
    if (t !== undefined) {
      if (keyHandle !== 0) await runCommand(t, FlushContext, {}, { flushHandle: keyHandle }).catch(() => undefined);
      for (const nvIndex of [nvU, nvW]) await runCommand(t, NV_UndefineSpace, { authHandle: TPM_RH.OWNER, nvIndex }, {}).catch(() => undefined);
      await t.close();
    }
    await sw?.stop();
  });

  /** One step per policy command and variant, for a session hash `alg`. */
  function stepsFor(alg: number): Record<string, Step> {
    const size = digestSize(alg);
    const ref = utf8('trustroot policyRef');
    const secret = (label: string, authHandle: number, policyRef: Uint8Array, extra: { cpHashA?: Uint8Array; expiration?: number } = {}): Step => ({
      label,
      run: (s) =>
        runCommand(t, PolicySecret, { authHandle, policySession: s.handle }, { nonceTPM: s.nonceTPM, cpHashA: extra.cpHashA ?? EMPTY, policyRef, expiration: extra.expiration ?? 0 }),
      calc: (c) => c.policySecret({ authName: handleName(authHandle), policyRef }),
    });
    const branches = (n: number): PolicyCalculator[] => Array.from({ length: n }, (_, i) => new PolicyCalculator(alg).policyCommandCode({ code: [TPM_CC.Unseal, TPM_CC.NV_Read, TPM_CC.Sign, TPM_CC.Quote, TPM_CC.Certify, TPM_CC.Duplicate, TPM_CC.Create, TPM_CC.PolicyNV][i]! }));
    const or = (n: number): Step => ({
      label: `PolicyOR of ${n} branches`,
      run: (s) => runCommand(t, PolicyOR, { policySession: s.handle }, { pHashList: branches(n).map((b) => b.digest) }),
      calc: (c) => c.policyOR({ pHashList: branches(n) }),
    });
    const explicitPcrs = [pcrSelection(SHA256, [0, 16])];
    const explicitDigest = new Uint8Array(size).fill(0x5a);
    const locality = (label: string, value: TPMA_LOCALITY): Step => ({
      label,
      run: (s) => runCommand(t, PolicyLocality, { policySession: s.handle }, { locality: value }),
      calc: (c) => c.policyLocality({ locality: value }),
    });
    const policyNv = (label: string, nvIndex: number, written: boolean, operandB: Uint8Array, offset: number, operation: number): Step => ({
      label,
      run: (s) => runCommand(t, PolicyNV, { authHandle: nvIndex, nvIndex, policySession: s.handle }, { operandB, offset, operation: operation as typeof TPM_EO.EQ }),
      calc: (c) => c.policyNV({ operandB, offset, operation, nvIndexName: nvName(nvPublic(nvIndex, written)) }),
    });
    const counterTimer = { operandB: Uint8Array.from(Buffer.from('0000ffffffffffff', 'hex')), offset: 0, operation: TPM_EO.UNSIGNED_LT };
    const code = TPM_CC.NV_Read;
    // cpHash of NV_Write(W, W, data, 0), from the core's cpHash over the marshaled parameters and the handles' Names.
    const wName = nvName(nvPublic(nvW, true));
    const cp = cpHash(alg, TPM_CC.NV_Write, [wName, wName], encodeParams(NV_Write, { data: nvWData, offset: 0 }));
    // nameHash for Duplicate(object = our key, newParent = an SRK's Name).
    const srkName = objectName(rsaSrkTemplate());
    const nh = (): Uint8Array => nameHash(alg, [keyName, srkName]); // keyName exists once beforeAll has run
    const dup = (includeObject: boolean): Step => ({
      label: `PolicyDuplicationSelect, includeObject ${includeObject ? 'YES' : 'NO'}`,
      run: (s) => runCommand(t, PolicyDuplicationSelect, { policySession: s.handle }, { objectName: keyName, newParentName: srkName, includeObject: includeObject ? 1 : 0 }),
      calc: (c) => c.policyDuplicationSelect({ objectName: keyName, newParentName: srkName, includeObject }),
    });
    const approved = new PolicyCalculator(alg).policyCommandCode({ code: TPM_CC.Sign }).digest;
    const written = (writtenSet: boolean): Step => ({
      label: `PolicyNvWritten ${writtenSet ? 'YES' : 'NO'}`,
      run: (s) => runCommand(t, PolicyNvWritten, { policySession: s.handle }, { writtenSet: writtenSet ? 1 : 0 }),
      calc: (c) => c.policyNvWritten({ writtenSet }),
    });
    const template = templateHash(alg, eccSrkTemplate());
    return {
      secretOwner: secret('PolicySecret(TPM_RH_OWNER), no policyRef', TPM_RH.OWNER, EMPTY),
      secretEndorsementRef: secret('PolicySecret(TPM_RH_ENDORSEMENT) with a policyRef', TPM_RH.ENDORSEMENT, ref),
      secretPlatformCpHash: secret('PolicySecret(TPM_RH_PLATFORM) with cpHashA and expiration (neither enters the digest)', TPM_RH.PLATFORM, EMPTY, {
        cpHashA: new Uint8Array(size).fill(0xcc),
        expiration: 100,
      }),
      signedTrial: {
        label: 'PolicySigned with a policyRef (a trial session does not check the signature, Part 3 §23.3)',
        run: (s) =>
          runCommand(t, PolicySigned, { authObject: keyHandle, policySession: s.handle }, {
            nonceTPM: EMPTY,
            cpHashA: EMPTY,
            policyRef: ref,
            expiration: 0,
            auth: { sigAlg: TPM_ALG.ECDSA, signature: { hash: SHA256, signatureR: Uint8Array.of(1), signatureS: Uint8Array.of(1) } },
          }),
        calc: (c) => c.policySigned({ authName: keyName, policyRef: ref }),
      },
      or2: or(2),
      or3: or(3),
      or8: or(8),
      pcrExplicit: {
        label: 'PolicyPCR with an explicit pcrDigest',
        run: (s) => runCommand(t, PolicyPCR, { policySession: s.handle }, { pcrDigest: explicitDigest, pcrs: explicitPcrs }),
        calc: (c) => c.policyPCR({ pcrs: explicitPcrs, pcrDigest: explicitDigest }),
      },
      pcrCurrent: {
        label: "PolicyPCR with the TPM's current values (SHA-1 PCRs 16, 23 then SHA-256 PCRs 0, 7, 16)",
        run: (s) => runCommand(t, PolicyPCR, { policySession: s.handle }, { pcrDigest: EMPTY, pcrs: currentPcrs }),
        calc: (c) => c.policyPCR({ pcrs: currentPcrs, values: pcrBanks }),
      },
      localityBits: locality('PolicyLocality(localities 0 and 3)', TPMA_LOCALITY.of({ TPM_LOC_ZERO: true, TPM_LOC_THREE: true })),
      localityExtended: locality('PolicyLocality(extended locality 64)', TPMA_LOCALITY.fromWord(64)),
      nvUnwritten: policyNv('PolicyNV on an index never written (Name without TPMA_NV_WRITTEN)', nvU, false, Uint8Array.of(9, 9), 2, TPM_EO.NEQ),
      nvWritten: policyNv('PolicyNV on a written index, UNSIGNED_GE at offset 4', nvW, true, Uint8Array.of(5, 6), 4, TPM_EO.UNSIGNED_GE),
      counterTimer: {
        label: 'PolicyCounterTimer(time < 2^48 ms)',
        run: (s) => runCommand(t, PolicyCounterTimer, { policySession: s.handle }, { ...counterTimer }),
        calc: (c) => c.policyCounterTimer(counterTimer),
      },
      commandCode: {
        label: 'PolicyCommandCode(NV_Read)',
        run: (s) => runCommand(t, PolicyCommandCode, { policySession: s.handle }, { code }),
        calc: (c) => c.policyCommandCode({ code }),
      },
      physicalPresence: {
        label: 'PolicyPhysicalPresence',
        run: (s) => runCommand(t, PolicyPhysicalPresence, { policySession: s.handle }, {}),
        calc: (c) => c.policyPhysicalPresence(),
      },
      cpHash: {
        label: 'PolicyCpHash(cpHash of NV_Write from the core)',
        run: (s) => runCommand(t, PolicyCpHash, { policySession: s.handle }, { cpHashA: cp }),
        calc: (c) => c.policyCpHash({ cpHashA: cp }),
      },
      nameHash: {
        label: 'PolicyNameHash(H(Name(key) ‖ Name(SRK)))',
        run: (s) => runCommand(t, PolicyNameHash, { policySession: s.handle }, { nameHash: nh() }),
        calc: (c) => c.policyNameHash({ nameHash: nh() }),
      },
      dupYes: dup(true),
      dupNo: dup(false),
      authorizeNullTicket: {
        label: 'PolicyAuthorize with a NULL ticket (a trial session does not check it, Part 3 §23.16)',
        run: (s) =>
          runCommand(t, PolicyAuthorize, { policySession: s.handle }, {
            approvedPolicy: approved,
            policyRef: ref,
            keySign: keyName,
            checkTicket: { tag: TPM_ST.VERIFIED, hierarchy: TPM_RH.NULL, digest: EMPTY },
          }),
        calc: (c) => c.policyAuthorize({ keySign: keyName, policyRef: ref }),
      },
      authValue: { label: 'PolicyAuthValue', run: (s) => runCommand(t, PolicyAuthValue, { policySession: s.handle }, {}), calc: (c) => c.policyAuthValue() },
      password: { label: 'PolicyPassword', run: (s) => runCommand(t, PolicyPassword, { policySession: s.handle }, {}), calc: (c) => c.policyPassword() },
      writtenYes: written(true),
      writtenNo: written(false),
      template: {
        label: 'PolicyTemplate(H(ECC SRK template))',
        run: (s) => runCommand(t, PolicyTemplate, { policySession: s.handle }, { templateHash: template }),
        calc: (c) => c.policyTemplate({ templateHash: template }),
      },
      authorizeNV: {
        label: 'PolicyAuthorizeNV on a written index',
        run: (s) => runCommand(t, PolicyAuthorizeNV, { authHandle: nvW, nvIndex: nvW, policySession: s.handle }, {}),
        calc: (c) => c.policyAuthorizeNV({ nvIndexName: wName }),
      },
    };
  }

  // Chains whose commands a TPM accepts together (PolicyCpHash, PolicyNameHash, PolicyTemplate and
  // PolicyDuplicationSelect share one slot of session state, Part 3 §23.13–§23.15, §23.21).
  const CHAINS: readonly (readonly string[])[] = [
    ['secretOwner', 'commandCode', 'pcrExplicit', 'localityBits', 'authValue', 'writtenYes', 'counterTimer', 'physicalPresence', 'cpHash'],
    ['template', 'or3', 'password', 'authorizeNullTicket', 'commandCode', 'signedTrial'],
    ['dupNo', 'authorizeNV', 'nvWritten', 'secretEndorsementRef', 'pcrCurrent', 'writtenNo'],
    ['nameHash', 'nvUnwritten', 'or8', 'localityExtended', 'secretPlatformCpHash', 'authValue', 'password'],
  ];

  for (const alg of [SHA256, SHA1, SHA384]) {
    describe(`trial sessions, ${ALG_NAME[alg]}`, () => {
      for (const [key, { label }] of Object.entries(stepsFor(alg))) {
        it(label, async () => {
          const step = stepsFor(alg)[key]!;
          const digest = await trial(alg, (s) => step.run(s));
          const c = new PolicyCalculator(alg);
          step.calc(c);
          expect(toHex(digest)).toBe(toHex(c.digest));
          expect(toHex(digest)).not.toBe(toHex(zeroPolicy(alg)));
        });
      }
      CHAINS.forEach((chain, i) => {
        it(`chain ${i + 1}: ${chain.join(' → ')}`, async () => {
          const steps = stepsFor(alg);
          const c = new PolicyCalculator(alg);
          const digest = await trial(alg, async (s) => {
            for (const key of chain) {
              await steps[key]!.run(s);
              steps[key]!.calc(c);
              // After each command, not only at the end.
              expect(toHex(await getDigest(s))).toBe(toHex(c.digest));
            }
          });
          expect(toHex(digest)).toBe(toHex(c.digest));
        });
      });
    });
  }

  // ---- Real policy sessions: the TPM checks the arguments, and the digest is still the calculator's.

  for (const alg of [SHA256, SHA384]) {
    it(`PolicySigned with a node:crypto ECDSA signature in a real session, then PolicyTicket from its ticket (${ALG_NAME[alg]})`, async () => {
      const cpHashA = new Uint8Array(digestSize(alg)).fill(0x42);
      const policyRef = utf8('signed ref');
      const signed = await inSession(TPM_SE.POLICY, alg, async (s) => {
        const message = concat(s.nonceTPM, u32(-60), cpHashA, policyRef);
        // The helper is the digest of exactly these bytes (Part 3 §23.3.1).
        expect(toHex(policySignedDigest(SHA256, { nonceTPM: s.nonceTPM, expiration: -60, cpHashA, policyRef }))).toBe(createHash('sha256').update(message).digest('hex'));
        const bad = await runCommand(t, PolicySigned, { authObject: keyHandle, policySession: s.handle }, { nonceTPM: s.nonceTPM, cpHashA, policyRef, expiration: -60, auth: ecdsa(utf8('something else')) }).catch((e: unknown) => e);
        expect(isRc(bad, TPM_RC.SIGNATURE)).toBe(true);
        const r = await runCommand(t, PolicySigned, { authObject: keyHandle, policySession: s.handle }, { nonceTPM: s.nonceTPM, cpHashA, policyRef, expiration: -60, auth: ecdsa(message) });
        return r.params;
      });
      const expected = new PolicyCalculator(alg).policySigned({ authName: keyName, policyRef }).digest;
      expect(toHex(signed.digest)).toBe(toHex(expected));
      const ticket: TPMT_TK_AUTH = signed.value.policyTicket;
      expect(ticket.tag).toBe(TPM_ST.AUTH_SIGNED);
      expect(signed.value.timeout.length).toBe(8);
      const viaTicket = await inSession(TPM_SE.POLICY, alg, (s) =>
        runCommand(t, PolicyTicket, { policySession: s.handle }, { timeout: signed.value.timeout, cpHashA, policyRef, authName: keyName, ticket }),
      );
      expect(toHex(viaTicket.digest)).toBe(toHex(new PolicyCalculator(alg).policyTicket({ authName: keyName, policyRef, ticket }).digest));
      expect(toHex(viaTicket.digest)).toBe(toHex(expected));
    });

    it(`PolicySecret(TPM_RH_ENDORSEMENT) in a real session gives a ticket; PolicyTicket replays it (${ALG_NAME[alg]})`, async () => {
      const policyRef = utf8('secret ref');
      const secret = await inSession(TPM_SE.POLICY, alg, async (s) =>
        (await runCommand(t, PolicySecret, { authHandle: TPM_RH.ENDORSEMENT, policySession: s.handle }, { nonceTPM: s.nonceTPM, cpHashA: EMPTY, policyRef, expiration: -60 })).params,
      );
      const expected = new PolicyCalculator(alg).policySecret({ authName: handleName(TPM_RH.ENDORSEMENT), policyRef }).digest;
      expect(toHex(secret.digest)).toBe(toHex(expected));
      expect(secret.value.policyTicket.tag).toBe(TPM_ST.AUTH_SECRET);
      const viaTicket = await inSession(TPM_SE.POLICY, alg, (s) =>
        runCommand(t, PolicyTicket, { policySession: s.handle }, {
          timeout: secret.value.timeout,
          cpHashA: EMPTY,
          policyRef,
          authName: handleName(TPM_RH.ENDORSEMENT),
          ticket: secret.value.policyTicket,
        }),
      );
      expect(toHex(viaTicket.digest)).toBe(toHex(expected));
      // A trial session refuses PolicyTicket (TPM_RC_ATTRIBUTES on the session, Part 3 §23.5.1).
      const refused = await trial(alg, (s) =>
        runCommand(t, PolicyTicket, { policySession: s.handle }, { timeout: secret.value.timeout, cpHashA: EMPTY, policyRef, authName: handleName(TPM_RH.ENDORSEMENT), ticket: secret.value.policyTicket }),
      ).catch((e: unknown) => e);
      expect(isRc(refused, TPM_RC.ATTRIBUTES)).toBe(true);
    });

    it(`PolicyAuthorize in a real session with a VerifySignature ticket over aHash (${ALG_NAME[alg]})`, async () => {
      const approved = new PolicyCalculator(alg).policyCommandCode({ code: TPM_CC.NV_Read }).policyAuthValue();
      const policyRef = utf8('release 7');
      // aHash uses the signing key's nameAlg (SHA-256), whatever the session hash (Part 3 §23.16.1).
      const aHash = policyAuthorizeDigest(SHA256, approved.digest, policyRef);
      expect(toHex(aHash)).toBe(createHash('sha256').update(approved.digest).update(policyRef).digest('hex'));
      const verified = await runCommand(t, VerifySignature, { keyHandle }, { digest: aHash, signature: ecdsa(concat(approved.digest, policyRef)) });
      expect(verified.params.validation.hierarchy).toBe(TPM_RH.OWNER);
      const { digest } = await inSession(TPM_SE.POLICY, alg, async (s) => {
        await runCommand(t, PolicyCommandCode, { policySession: s.handle }, { code: TPM_CC.NV_Read });
        await runCommand(t, PolicyAuthValue, { policySession: s.handle }, {});
        expect(toHex(await getDigest(s))).toBe(toHex(approved.digest));
        // A ticket for another policyRef does not pass.
        const wrong = await runCommand(t, PolicyAuthorize, { policySession: s.handle }, { approvedPolicy: approved.digest, policyRef: utf8('release 8'), keySign: keyName, checkTicket: verified.params.validation }).catch(
          (e: unknown) => e,
        );
        expect(isRc(wrong, TPM_RC.VALUE)).toBe(true);
        await runCommand(t, PolicyAuthorize, { policySession: s.handle }, { approvedPolicy: approved.digest, policyRef, keySign: keyName, checkTicket: verified.params.validation });
      });
      expect(toHex(digest)).toBe(toHex(approved.clone().policyAuthorize({ keySign: keyName, policyRef }).digest));
      expect(toHex(digest)).toBe(toHex(new PolicyCalculator(alg).policyAuthorize({ keySign: keyName, policyRef }).digest));
    });
  }

  it('PolicyOR in a real session: the current digest must be a branch; then the digest is the calculator\'s', async () => {
    const a = new PolicyCalculator(SHA256).policyCommandCode({ code: TPM_CC.Unseal });
    const b = new PolicyCalculator(SHA256).policyAuthValue().policyCommandCode({ code: TPM_CC.Sign });
    const { digest } = await inSession(TPM_SE.POLICY, SHA256, async (s) => {
      await runCommand(t, PolicyAuthValue, { policySession: s.handle }, {});
      await runCommand(t, PolicyCommandCode, { policySession: s.handle }, { code: TPM_CC.Sign });
      const notABranch = await runCommand(t, PolicyOR, { policySession: s.handle }, { pHashList: [a.digest, a.clone().policyAuthValue().digest] }).catch((e: unknown) => e);
      expect(isRc(notABranch, TPM_RC.VALUE)).toBe(true);
      await runCommand(t, PolicyOR, { policySession: s.handle }, { pHashList: [a.digest, b.digest] });
    });
    expect(toHex(digest)).toBe(toHex(new PolicyCalculator(SHA256).policyOR({ pHashList: [a, b] }).digest));
  });

  it('PolicyPCR in a real session: an empty pcrDigest and the right explicit one agree with the calculator; a wrong one is TPM_RC_VALUE', async () => {
    const fresh = await readPcrs(t, currentPcrs);
    const expected = new PolicyCalculator(SHA256).policyPCR({ pcrs: currentPcrs, values: fresh }).digest;
    const implicit = await inSession(TPM_SE.POLICY, SHA256, (s) => runCommand(t, PolicyPCR, { policySession: s.handle }, { pcrDigest: EMPTY, pcrs: currentPcrs }));
    expect(toHex(implicit.digest)).toBe(toHex(expected));
    const explicit = await inSession(TPM_SE.POLICY, SHA256, (s) =>
      runCommand(t, PolicyPCR, { policySession: s.handle }, { pcrDigest: pcrDigest(SHA256, currentPcrs, fresh), pcrs: currentPcrs }),
    );
    expect(toHex(explicit.digest)).toBe(toHex(expected));
    const wrong = await inSession(TPM_SE.POLICY, SHA256, (s) => runCommand(t, PolicyPCR, { policySession: s.handle }, { pcrDigest: new Uint8Array(32).fill(1), pcrs: currentPcrs })).catch(
      (e: unknown) => e,
    );
    expect(isRc(wrong, TPM_RC.VALUE)).toBe(true);
  });

  it('PolicyNV and PolicyCounterTimer in a real session: the comparison holds and the digest is the calculator\'s; a failing comparison is TPM_RC_POLICY', async () => {
    const nv = { operandB: Uint8Array.of(7, 8), offset: 6, operation: TPM_EO.EQ };
    const clock = { operandB: new Uint8Array(8), offset: 8, operation: TPM_EO.UNSIGNED_GE }; // TPMS_TIME_INFO.clockInfo.clock ≥ 0
    const { digest } = await inSession(TPM_SE.POLICY, SHA256, async (s) => {
      await runCommand(t, PolicyNV, { authHandle: nvW, nvIndex: nvW, policySession: s.handle }, nv);
      await runCommand(t, PolicyCounterTimer, { policySession: s.handle }, clock);
      const fails = await runCommand(t, PolicyNV, { authHandle: nvW, nvIndex: nvW, policySession: s.handle }, { ...nv, operation: TPM_EO.NEQ }).catch((e: unknown) => e);
      expect(isRc(fails, TPM_RC.POLICY)).toBe(true);
    });
    const read = await runCommand(t, NV_ReadPublic, { nvIndex: nvW }, {});
    expect(toHex(read.params.nvName)).toBe(toHex(nvName(nvPublic(nvW, true))));
    expect(toHex(digest)).toBe(toHex(new PolicyCalculator(SHA256).policyNV({ ...nv, nvIndexName: read.params.nvName }).policyCounterTimer(clock).digest));
  });

  it('the pure updates follow the TPM where the builder is stricter: a 20-byte OR branch and pcrDigest in a SHA-256 trial session', async () => {
    const short = new Uint8Array(20).fill(3);
    const full = new Uint8Array(32).fill(4);
    const pcrs = [pcrSelection(SHA256, [1])];
    const digest = await trial(SHA256, async (s) => {
      await runCommand(t, PolicyPCR, { policySession: s.handle }, { pcrDigest: short, pcrs });
      await runCommand(t, PolicyOR, { policySession: s.handle }, { pHashList: [full, short] });
    });
    const pure = updatePolicyOR(SHA256, updatePolicyPCR(SHA256, zeroPolicy(SHA256), { pcrs, pcrDigest: short }), { pHashList: [full, short] });
    expect(toHex(digest)).toBe(toHex(pure));
  });

  it('what the calculator refuses, swtpm refuses in a trial session too', async () => {
    const refused = async (body: (s: Session) => Promise<unknown>): Promise<TpmError> => {
      const e = await trial(SHA256, body).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(TpmError);
      return e as TpmError;
    };
    const d = zeroPolicy(SHA256);
    policyError(() => updatePolicyCpHash(SHA256, d, { cpHashA: new Uint8Array(20) }), 'cpHashA');
    expect(isRc(await refused((s) => runCommand(t, PolicyCpHash, { policySession: s.handle }, { cpHashA: new Uint8Array(20) })), TPM_RC.SIZE)).toBe(true);
    policyError(() => updatePolicyOR(SHA256, d, { pHashList: [d] }), 'pHashList');
    expect(isRc(await refused((s) => runCommand(t, PolicyOR, { policySession: s.handle }, { pHashList: [d] })), TPM_RC.SIZE)).toBe(true);
    policyError(() => updatePolicyLocality(SHA256, d, { locality: 0 }), 'locality');
    expect(isRc(await refused((s) => runCommand(t, PolicyLocality, { policySession: s.handle }, { locality: TPMA_LOCALITY.of({}) })), TPM_RC.RANGE)).toBe(true);
    const badKey = concat(Uint8Array.of(0x00, 0x0b), new Uint8Array(20));
    policyError(() => updatePolicyAuthorize(SHA256, d, { keySign: badKey }), 'keySign');
    expect(
      isRc(
        await refused((s) =>
          runCommand(t, PolicyAuthorize, { policySession: s.handle }, { approvedPolicy: d, policyRef: EMPTY, keySign: badKey, checkTicket: { tag: TPM_ST.VERIFIED, hierarchy: TPM_RH.NULL, digest: EMPTY } }),
        ),
        TPM_RC.SIZE,
      ),
    ).toBe(true);
    const late = { operandB: new Uint8Array(8), offset: 20, operation: TPM_EO.EQ };
    policyError(() => updatePolicyCounterTimer(SHA256, d, late), 'operandB');
    expect(isRc(await refused((s) => runCommand(t, PolicyCounterTimer, { policySession: s.handle }, late)), TPM_RC.RANGE)).toBe(true);
    policyError(() => updatePolicyTemplate(SHA256, d, { templateHash: new Uint8Array(48) }), 'templateHash');
    expect(isRc(await refused((s) => runCommand(t, PolicyTemplate, { policySession: s.handle }, { templateHash: new Uint8Array(48) })), TPM_RC.SIZE)).toBe(true);
  });

  for (const alg of [SHA256, SHA384]) {
    it(`EK PolicyB (${ALG_NAME[alg]}): the profile's Policy Index, written through PolicyA; PolicyAuthorizeNV gives PolicyC, PolicyOR gives PolicyB`, async () => {
      const pub = ekPolicyIndexPublic(alg);
      // TPMA_NV_WRITTEN cannot be set by NV_DefineSpace; the first write sets it, and the Name becomes the profile's.
      const defined = { ...pub, attributes: TPMA_NV.of({ ...pub.attributes, WRITTEN: false }) };
      await runCommand(t, NV_DefineSpace, { authHandle: TPM_RH.OWNER }, { auth: EMPTY, publicInfo: defined });
      try {
        const approved = new PolicyCalculator(alg).policyCommandCode({ code: TPM_CC.ActivateCredential });
        // The index has policyWrite only: write it in a real session that satisfies PolicyA.
        await inSession(TPM_SE.POLICY, alg, async (s) => {
          await runCommand(t, PolicySecret, { authHandle: TPM_RH.ENDORSEMENT, policySession: s.handle }, { nonceTPM: s.nonceTPM, cpHashA: EMPTY, policyRef: EMPTY, expiration: 0 });
          expect(toHex(await getDigest(s))).toBe(toHex(ekPolicyA(alg)));
          await runCommand(t, NV_Write, { authHandle: pub.nvIndex, nvIndex: pub.nvIndex }, { data: encode(TPMT_HA, approved.toHa()), offset: 0 }, { sessions: [policyAuth(s)] });
        });
        const read = await runCommand(t, NV_ReadPublic, { nvIndex: pub.nvIndex }, {});
        expect(toHex(read.params.nvName)).toBe(toHex(nvName(pub)));

        const { digest } = await inSession(TPM_SE.POLICY, alg, async (s) => {
          await runCommand(t, PolicyCommandCode, { policySession: s.handle }, { code: TPM_CC.ActivateCredential });
          await runCommand(t, PolicyAuthorizeNV, { authHandle: TPM_RH.OWNER, nvIndex: pub.nvIndex, policySession: s.handle }, {}, { sessions: [passwordAuth()] });
          expect(toHex(await getDigest(s))).toBe(toHex(ekPolicyC(alg)));
          await runCommand(t, PolicyOR, { policySession: s.handle }, { pHashList: [ekPolicyA(alg), ekPolicyC(alg)] });
        });
        expect(toHex(digest)).toBe(toHex(ekPolicyB(alg)));

        // The other way into PolicyB: PolicySecret(endorsement), then the same PolicyOR.
        const viaA = await inSession(TPM_SE.POLICY, alg, async (s) => {
          await runCommand(t, PolicySecret, { authHandle: TPM_RH.ENDORSEMENT, policySession: s.handle }, { nonceTPM: s.nonceTPM, cpHashA: EMPTY, policyRef: EMPTY, expiration: 0 });
          await runCommand(t, PolicyOR, { policySession: s.handle }, { pHashList: [ekPolicyA(alg), ekPolicyC(alg)] });
        });
        expect(toHex(viaA.digest)).toBe(toHex(ekPolicyB(alg)));
      } finally {
        await runCommand(t, NV_UndefineSpace, { authHandle: TPM_RH.OWNER, nvIndex: pub.nvIndex }, {});
      }
    });
  }

  it('nothing is left behind: no loaded or saved session, only our key among transient objects', async () => {
    expect(await readCapability(t, TPM_CAP.HANDLES, [(TPM_HT.LOADED_SESSION << 24) >>> 0])).toEqual([]);
    expect(await readCapability(t, TPM_CAP.HANDLES, [(TPM_HT.SAVED_SESSION << 24) >>> 0])).toEqual([]);
    expect(await readCapability(t, TPM_CAP.HANDLES, [(TPM_HT.TRANSIENT << 24) >>> 0])).toEqual([keyHandle]);
  });
});
