/**
 * Named profiles of the software TPM (src/simulator/profiles.ts, issue 7
 * "Profiles"): the default `libtpms` profile reports the limits swtpm
 * reports and the algorithm set the engine always had; `strict` leaves out
 * SHA-1, ECB and raw RSA encryption, refuses them with the codes libtpms
 * gives for a disabled algorithm, and still runs an everyday EK/AK/quote
 * flow; a profile of one's own sets limits and which hashes may sign.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSimTransport, parseSimTcti } from '../../src/cli/sim-tcti.js';
import { parseTcti } from '../../src/client/tcti.js';
import { verifyQuote } from '../../src/attest/quote.js';
import { Tpm, createAk, createEk, eccSigningTemplate, quote } from '../../src/client/index.js';
import { readCapability } from '../../src/tpm/capability.js';
import {
  Certify,
  Create,
  CreatePrimary,
  EncryptDecrypt,
  FlushContext,
  GetCapability,
  Hash,
  Import,
  Load,
  LoadExternal,
  NV_DefineSpace,
  PCR_Allocate,
  PCR_Extend,
  PCR_Read,
  Quote,
  RSA_Decrypt,
  RSA_Encrypt,
  Sign,
  StartAuthSession,
  Startup,
  TestParms,
  VerifySignature,
} from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_CAP, TPM_ECC, TPM_PT, TPM_RH, TPM_SE, TPM_ST, TPM_SU } from '../../src/tpm/constants.js';
import { ProfileError, TctiError } from '../../src/tpm/errors.js';
import { pcrSelection } from '../../src/tpm/pcr.js';
import { TPM_RC, rcForParameter } from '../../src/tpm/rc.js';
import { passwordAuth, runCommand } from '../../src/tpm/run.js';
import { eccSrkTemplate, rsaSrkTemplate } from '../../src/tpm/templates.js';
import { inProcessTransport, type Transport } from '../../src/tpm/transport/index.js';
import { TPMA_NV, TPMA_OBJECT, type TPMT_PUBLIC, type TPMT_PUBLIC_PARMS } from '../../src/tpm/types/index.js';
import {
  IMPLEMENTED_ALGORITHMS,
  IMPLEMENTED_CURVES,
  TPM_PROFILES,
  TpmEngine,
  createSimulatorState,
  openSimulatorStore,
  profileByName,
  resolveProfile,
  type TpmProfile,
} from '../../src/simulator/index.js';
import { describeWithSwtpm } from '../support/swtpm.js';
import { rcOf, tpmRejection } from '../support/probe.js';
import { startOurs, type Running } from '../support/tpm2-tools-targets.js';
import { fuzzSimulator } from '../../fuzz/simulator.js';
import { describeWithTpm2Tools } from '../support/tpm2-tools.js';
import { swtpmAndSimulator } from '../support/fixture.js';

const EMPTY = new Uint8Array(0);
const NO_SENSITIVE = { userAuth: EMPTY, data: EMPTY };
const NULL_SCHEME = { scheme: TPM_ALG.NULL, details: null };

async function started(profile?: TpmProfile | 'libtpms' | 'strict'): Promise<{ engine: TpmEngine; t: Transport }> {
  const engine = new TpmEngine(profile === undefined ? {} : { profile });
  const t = inProcessTransport(engine);
  await runCommand(t, Startup, {}, { startupType: TPM_SU.CLEAR });
  return { engine, t };
}

const LIMIT_PROPERTIES = [
  TPM_PT.INPUT_BUFFER,
  TPM_PT.HR_TRANSIENT_MIN,
  TPM_PT.HR_PERSISTENT_MIN,
  TPM_PT.HR_LOADED_MIN,
  TPM_PT.ACTIVE_SESSIONS_MAX,
  TPM_PT.NV_INDEX_MAX,
  TPM_PT.MAX_COMMAND_SIZE,
  TPM_PT.MAX_RESPONSE_SIZE,
  TPM_PT.NV_BUFFER_MAX,
];

async function properties(t: Transport, pts: readonly number[]): Promise<number[]> {
  const out: number[] = [];
  for (const pt of pts) {
    const r = await runCommand(t, GetCapability, {}, { capability: TPM_CAP.TPM_PROPERTIES, property: pt, propertyCount: 1 });
    const [p] = r.params.capabilityData.data as { property: number; value: number }[];
    out.push(p?.property === pt ? p.value : -1);
  }
  return out;
}

async function algorithms(t: Transport): Promise<number[]> {
  return ((await readCapability(t, TPM_CAP.ALGS)) as { alg: number }[]).map((a) => a.alg);
}

async function banks(t: Transport): Promise<number[]> {
  return ((await readCapability(t, TPM_CAP.PCRS)) as { hash: number }[]).map((s) => s.hash);
}

const testParms = (t: Transport, parameters: TPMT_PUBLIC_PARMS): Promise<number> => rcOf(runCommand(t, TestParms, {}, { parameters }));
const rsaParms = (keyBits: number, scheme: object = NULL_SCHEME): TPMT_PUBLIC_PARMS =>
  ({ type: TPM_ALG.RSA, parameters: { symmetric: { algorithm: TPM_ALG.NULL, keyBits: null, mode: null }, scheme, keyBits, exponent: 0 } }) as never;
const hmacParms = (hashAlg: number): TPMT_PUBLIC_PARMS => ({ type: TPM_ALG.KEYEDHASH, parameters: { scheme: { scheme: TPM_ALG.HMAC, details: { hashAlg } } } }) as never;
const aesParms = (mode: number): TPMT_PUBLIC_PARMS => ({ type: TPM_ALG.SYMCIPHER, parameters: { sym: { algorithm: TPM_ALG.AES, keyBits: 128, mode } } }) as never;

function primary(t: Transport, template: TPMT_PUBLIC, hierarchy: number = TPM_RH.OWNER) {
  return runCommand(t, CreatePrimary, { primaryHandle: hierarchy }, { inSensitive: NO_SENSITIVE, inPublic: template, outsideInfo: EMPTY, creationPCR: [] }, { sessions: [passwordAuth()] });
}

/** An unrestricted ECC P-256 signing key with the NULL scheme: each Sign names its own. */
const eccSigner = (): TPMT_PUBLIC => eccSigningTemplate({ scheme: NULL_SCHEME as never });

function signWith(t: Transport, keyHandle: number, hashAlg: number, digest: Uint8Array) {
  return runCommand(t, Sign, { keyHandle }, { digest, inScheme: { scheme: TPM_ALG.ECDSA, details: { hashAlg } } as never, validation: { tag: TPM_ST.HASHCHECK, hierarchy: TPM_RH.NULL, digest: EMPTY } }, { sessions: [passwordAuth()] });
}

describe('profiles: names and checks', () => {
  it('profileByName knows libtpms and strict; an unknown name is a ProfileError naming the profiles there are', () => {
    expect(profileByName('libtpms')).toBe(TPM_PROFILES.libtpms);
    expect(profileByName('strict')).toBe(TPM_PROFILES.strict);
    const e = (() => {
      try {
        profileByName('lenient');
      } catch (err) {
        return err;
      }
      return undefined;
    })();
    expect(e).toBeInstanceOf(ProfileError);
    expect((e as ProfileError).code).toBe('profile.unknown');
    expect((e as ProfileError).message).toContain('libtpms, strict');
    expect(() => new TpmEngine({ profile: 'toString' as never })).toThrow(expect.objectContaining({ code: 'profile.unknown' }));
  });

  it('a profile of one\'s own must stay inside what the engine implements (profile.invalid)', () => {
    const base = TPM_PROFILES.libtpms;
    const invalid = (p: TpmProfile): string | undefined => {
      try {
        resolveProfile(p);
        return undefined;
      } catch (e) {
        return e instanceof ProfileError ? e.code : String(e);
      }
    };
    expect(invalid({ ...base, name: 'sm3', algorithms: { ...base.algorithms, hashes: [...base.algorithms.hashes, TPM_ALG.SM3_256] } })).toBe('profile.invalid');
    expect(invalid({ ...base, name: 'rsa4096', algorithms: { ...base.algorithms, rsaKeyBits: [2048, 4096] } })).toBe('profile.invalid');
    expect(invalid({ ...base, name: 'bn', algorithms: { ...base.algorithms, eccCurves: [TPM_ECC.BN_P256] } })).toBe('profile.invalid');
    expect(invalid({ ...base, name: 'no-cfb', algorithms: { ...base.algorithms, symmetricModes: [TPM_ALG.CBC] } })).toBe('profile.invalid');
    expect(invalid({ ...base, name: 'sign-sm3', algorithms: { ...base.algorithms, hashes: [TPM_ALG.SHA256], signingHashes: [TPM_ALG.SHA1] } })).toBe('profile.invalid');
    expect(invalid({ ...base, name: 'no-slots', limits: { ...base.limits, loadedObjects: 0 } })).toBe('profile.invalid');
    expect(invalid({ ...base, name: 'fine', algorithms: { ...base.algorithms, signingHashes: [TPM_ALG.SHA256] } })).toBeUndefined();
    for (const p of Object.values(TPM_PROFILES)) expect(invalid(p)).toBeUndefined();
    expect(invalid({ ...TPM_PROFILES.strict, algorithms: { ...TPM_PROFILES.strict.algorithms, hashes: [TPM_ALG.SHA1, ...TPM_PROFILES.strict.algorithms.hashes] } })).toBe('profile.invalid');
    expect(invalid({ ...TPM_PROFILES.strict })).toBeUndefined();
  });
});

describe('profiles: the strict engine under fuzz', () => {
  it('answers 3,000 mutated commands (seeded from a client recording) with typed responses; its state round-trips the store', async () => {
    const stats = await fuzzSimulator({ seed: 7, iterations: 3_000, profile: 'strict' });
    expect(stats.untyped).toEqual([]);
    expect(stats.inputs).toBe(3_000);
    // Mutations reach the handlers through the profile check: many still succeed.
    expect(stats.successes).toBeGreaterThan(100);
  }, 90_000);
});

describe('profiles: the default (libtpms) is the engine as before', () => {
  it('an engine without the option has the libtpms profile, the full algorithm table, every curve and four banks', async () => {
    const { engine, t } = await started();
    expect(engine.profile).toBe(TPM_PROFILES.libtpms);
    expect(await algorithms(t)).toEqual(IMPLEMENTED_ALGORITHMS.map(([alg]) => alg));
    expect(await readCapability(t, TPM_CAP.ECC_CURVES)).toEqual([...IMPLEMENTED_CURVES]);
    expect(await banks(t)).toEqual([TPM_ALG.SHA1, TPM_ALG.SHA256, TPM_ALG.SHA384, TPM_ALG.SHA512]);
    expect(await properties(t, LIMIT_PROPERTIES)).toEqual([1024, 3, 7, 3, 64, 2048, 4096, 4096, 1024]);
  });
});

describeWithSwtpm('profiles: the libtpms profile against swtpm', () => {
  const tpms = swtpmAndSimulator();

  it('reports the limits swtpm reports (TPM_PT_* of objects, sessions, buffers, NV)', async () => {
    const { t } = await started('libtpms');
    expect(await properties(t, LIMIT_PROPERTIES)).toEqual(await properties(tpms.swtpm.probe, LIMIT_PROPERTIES));
  });

  it('every algorithm and curve the libtpms profile lists, swtpm lists too, with the same properties', async () => {
    const { t } = await started('libtpms');
    const theirs = new Map(((await readCapability(tpms.swtpm.probe, TPM_CAP.ALGS)) as { alg: number; algProperties: unknown }[]).map((a) => [a.alg, a.algProperties]));
    for (const a of (await readCapability(t, TPM_CAP.ALGS)) as { alg: number; algProperties: unknown }[]) expect([a.alg, theirs.get(a.alg)]).toEqual([a.alg, a.algProperties]);
    const curves = await readCapability(tpms.swtpm.probe, TPM_CAP.ECC_CURVES);
    for (const c of await readCapability(t, TPM_CAP.ECC_CURVES)) expect(curves).toContain(c);
  });
});

describe('profiles: strict', () => {
  it('reports the reduced set: no SHA-1, no ECB, SHA-2 banks only, libtpms limits; TestParms agrees', async () => {
    const { t } = await started('strict');
    const algs = await algorithms(t);
    expect(algs).toEqual(IMPLEMENTED_ALGORITHMS.map(([alg]) => alg).filter((a) => a !== TPM_ALG.SHA1 && a !== TPM_ALG.ECB));
    expect(await readCapability(t, TPM_CAP.ECC_CURVES)).toEqual([TPM_ECC.NIST_P256, TPM_ECC.NIST_P384]);
    expect(await banks(t)).toEqual([TPM_ALG.SHA256, TPM_ALG.SHA384, TPM_ALG.SHA512]);
    expect(await properties(t, LIMIT_PROPERTIES)).toEqual([1024, 3, 7, 3, 64, 2048, 4096, 4096, 1024]);
    const p1 = (rc: number): number => rcForParameter(rc, 1);
    expect(await testParms(t, hmacParms(TPM_ALG.SHA1))).toBe(p1(TPM_RC.HASH));
    expect(await testParms(t, rsaParms(2048, { scheme: TPM_ALG.RSASSA, details: { hashAlg: TPM_ALG.SHA1 } }))).toBe(p1(TPM_RC.HASH));
    expect(await testParms(t, aesParms(TPM_ALG.ECB))).toBe(p1(TPM_RC.MODE));
    expect(await testParms(t, rsaParms(1024))).toBe(p1(TPM_RC.VALUE));
    for (const ok of [hmacParms(TPM_ALG.SHA256), rsaParms(2048, { scheme: TPM_ALG.RSASSA, details: { hashAlg: TPM_ALG.SHA256 } }), rsaParms(3072), aesParms(TPM_ALG.CFB), aesParms(TPM_ALG.CTR)]) {
      expect(await testParms(t, ok)).toBe(0);
    }
    // The same parameters pass on the default profile: the refusals are the profile's.
    const { t: d } = await started();
    expect(await testParms(d, hmacParms(TPM_ALG.SHA1))).toBe(0);
    expect(await testParms(d, aesParms(TPM_ALG.ECB))).toBe(0);
  });

  it('refuses SHA-1 wherever a command names it: TPM_RC_HASH on that parameter, as libtpms with SHA-1 disabled', async () => {
    const { t } = await started('strict');
    const { t: d } = await started('libtpms');
    const cases: [string, (t: Transport) => Promise<unknown>, number][] = [
      ['CreatePrimary nameAlg SHA-1', (x) => primary(x, { ...eccSrkTemplate(), nameAlg: TPM_ALG.SHA1 }), rcForParameter(TPM_RC.HASH, 2)],
      ['CreatePrimary ECDSA-SHA1 scheme', (x) => primary(x, eccSigningTemplate({ scheme: { scheme: TPM_ALG.ECDSA, details: { hashAlg: TPM_ALG.SHA1 } } })), rcForParameter(TPM_RC.HASH, 2)],
      ['CreatePrimary creationPCR SHA-1', (x) => runCommand(x, CreatePrimary, { primaryHandle: TPM_RH.OWNER }, { inSensitive: NO_SENSITIVE, inPublic: eccSrkTemplate(), outsideInfo: EMPTY, creationPCR: [pcrSelection(TPM_ALG.SHA1, [0])] }, { sessions: [passwordAuth()] }), rcForParameter(TPM_RC.HASH, 4)],
      ['Hash SHA-1', (x) => runCommand(x, Hash, {}, { data: Uint8Array.of(1), hashAlg: TPM_ALG.SHA1, hierarchy: TPM_RH.NULL }), rcForParameter(TPM_RC.HASH, 2)],
      ['StartAuthSession authHash SHA-1', (x) => runCommand(x, StartAuthSession, { tpmKey: TPM_RH.NULL, bind: TPM_RH.NULL }, { nonceCaller: new Uint8Array(20), encryptedSalt: EMPTY, sessionType: TPM_SE.HMAC, symmetric: { algorithm: TPM_ALG.NULL } as never, authHash: TPM_ALG.SHA1 }), rcForParameter(TPM_RC.HASH, 5)],
      ['PCR_Read SHA-1 bank', (x) => runCommand(x, PCR_Read, {}, { pcrSelectionIn: [pcrSelection(TPM_ALG.SHA1, [0])] }), rcForParameter(TPM_RC.HASH, 1)],
      ['PCR_Extend SHA-1 digest', (x) => runCommand(x, PCR_Extend, { pcrHandle: 16 }, { digests: [{ hashAlg: TPM_ALG.SHA1, digest: new Uint8Array(20) }] as never }, { sessions: [passwordAuth()] }), rcForParameter(TPM_RC.HASH, 1)],
      ['PCR_Allocate SHA-1 bank', (x) => runCommand(x, PCR_Allocate, { authHandle: TPM_RH.PLATFORM }, { pcrAllocation: [pcrSelection(TPM_ALG.SHA1, [0, 17])] }, { sessions: [passwordAuth()] }), rcForParameter(TPM_RC.HASH, 1)],
      [
        'NV_DefineSpace nameAlg SHA-1',
        (x) =>
          runCommand(x, NV_DefineSpace, { authHandle: TPM_RH.OWNER }, { auth: EMPTY, publicInfo: { nvIndex: 0x01500001, nameAlg: TPM_ALG.SHA1, attributes: TPMA_NV.of({ OWNERWRITE: true, OWNERREAD: true, NO_DA: true }), authPolicy: EMPTY, dataSize: 8 } as never }, { sessions: [passwordAuth()] }),
        rcForParameter(TPM_RC.HASH, 2),
      ],
    ];
    for (const [what, run, rc] of cases) {
      expect([what, await rcOf(run(t))]).toEqual([what, rc]);
      // The default profile accepts each (PCR_Allocate's pending allocation is harmless here).
      expect([what, await rcOf(run(d))]).toEqual([what, 0]);
    }
  });

  it('every command kind that takes a template or a scheme refuses SHA-1 in it on that parameter: Create, Load, LoadExternal, Import, Quote, Certify', async () => {
    for (const profile of ['strict', 'libtpms'] as const) {
      const { t } = await started(profile);
      const srk = (await primary(t, eccSrkTemplate())).handles.objectHandle;
      const signer = (await primary(t, eccSigner())).handles.objectHandle;
      const sha1Key = { ...eccSigner(), nameAlg: TPM_ALG.SHA1 } as never;
      const sha1Scheme = { scheme: TPM_ALG.ECDSA, details: { hashAlg: TPM_ALG.SHA1 } } as never;
      const pw = { sessions: [passwordAuth()] };
      const got = [
        await rcOf(runCommand(t, Create, { parentHandle: srk }, { inSensitive: NO_SENSITIVE, inPublic: sha1Key, outsideInfo: EMPTY, creationPCR: [] }, pw)),
        await rcOf(runCommand(t, Load, { parentHandle: srk }, { inPrivate: new Uint8Array(48).fill(1), inPublic: sha1Key }, pw)),
        await rcOf(runCommand(t, LoadExternal, {}, { inPrivate: null, inPublic: { ...sha1Key as object, unique: { x: new Uint8Array(32).fill(1), y: new Uint8Array(32).fill(2) } } as never, hierarchy: TPM_RH.NULL })),
        await rcOf(runCommand(t, Import, { parentHandle: srk }, { encryptionKey: EMPTY, objectPublic: sha1Key, duplicate: new Uint8Array(48).fill(1), inSymSeed: EMPTY, symmetricAlg: { algorithm: TPM_ALG.NULL } as never }, pw)),
        await rcOf(runCommand(t, Quote, { signHandle: signer }, { qualifyingData: EMPTY, inScheme: sha1Scheme, PCRselect: [pcrSelection(TPM_ALG.SHA256, [0])] }, pw)),
        await rcOf(runCommand(t, Certify, { objectHandle: srk, signHandle: signer }, { qualifyingData: EMPTY, inScheme: sha1Scheme }, { sessions: [passwordAuth(), passwordAuth()] })),
      ];
      const hash2 = rcForParameter(TPM_RC.HASH, 2);
      if (profile === 'strict') expect(got).toEqual([hash2, hash2, hash2, hash2, hash2, hash2]);
      // On the default profile SHA-1 is no reason to refuse: the commands get as far as their own checks (or succeed).
      else expect(got.filter((rc) => rc === hash2)).toEqual([]);
    }
  });

  it('refuses SHA-1 signing schemes and signatures, ECB and raw RSA encryption; SHA-256 works', async () => {
    const { t } = await started('strict');
    const key = await primary(t, eccSigner());
    const h = key.handles.objectHandle;
    const digest = new Uint8Array(createHash('sha256').update('strict').digest());
    expect(await rcOf(signWith(t, h, TPM_ALG.SHA1, new Uint8Array(20)))).toBe(rcForParameter(TPM_RC.HASH, 2));
    const signed = await signWith(t, h, TPM_ALG.SHA256, digest);
    const verified = await runCommand(t, VerifySignature, { keyHandle: h }, { digest, signature: signed.params.signature });
    expect(verified.params.validation.tag).toBe(TPM_ST.VERIFIED);
    // A SHA-1 signature is refused while it is unmarshaled, before any check of its value.
    const ecdsa = signed.params.signature as { sigAlg: number; signature: object };
    const sha1Signature = { ...ecdsa, signature: { ...ecdsa.signature, hash: TPM_ALG.SHA1 } } as never;
    expect(await rcOf(runCommand(t, VerifySignature, { keyHandle: h }, { digest: new Uint8Array(20), signature: sha1Signature }))).toBe(rcForParameter(TPM_RC.HASH, 2));
    await runCommand(t, FlushContext, {}, { flushHandle: h });

    // ECB: TPM_RC_MODE on EncryptDecrypt's mode (parameter 2), whatever the key.
    const aes = await primary(t, { type: TPM_ALG.SYMCIPHER, nameAlg: TPM_ALG.SHA256, objectAttributes: TPMA_OBJECT.of({ fixedTPM: true, fixedParent: true, sensitiveDataOrigin: true, userWithAuth: true, decrypt: true, sign: true }), authPolicy: EMPTY, parameters: { sym: { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.NULL } }, unique: new Uint8Array(32) } as never);
    const encrypt = (mode: number) => runCommand(t, EncryptDecrypt, { keyHandle: aes.handles.objectHandle }, { decrypt: 0, mode: mode as never, ivIn: new Uint8Array(16), inData: new Uint8Array(16) }, { sessions: [passwordAuth()] });
    expect(await rcOf(encrypt(TPM_ALG.ECB))).toBe(rcForParameter(TPM_RC.MODE, 2));
    expect((await encrypt(TPM_ALG.CFB)).params.outData.length).toBe(16);
    await runCommand(t, FlushContext, {}, { flushHandle: aes.handles.objectHandle });

    // Raw RSA (a decrypt key with the NULL scheme, no inScheme): TPM_RC_SCHEME without a parameter (no-unpadded-encryption); OAEP works.
    const rsaTemplate = { ...rsaSrkTemplate(), objectAttributes: TPMA_OBJECT.of({ fixedTPM: true, fixedParent: true, sensitiveDataOrigin: true, userWithAuth: true, decrypt: true }), parameters: { ...rsaSrkTemplate().parameters, symmetric: { algorithm: TPM_ALG.NULL } } } as never;
    const rsa = await primary(t, rsaTemplate);
    const k = rsa.handles.objectHandle;
    const message = new Uint8Array(256);
    message[255] = 7;
    expect(await rcOf(runCommand(t, RSA_Encrypt, { keyHandle: k }, { message, inScheme: NULL_SCHEME as never, label: EMPTY }))).toBe(TPM_RC.SCHEME);
    expect(await rcOf(runCommand(t, RSA_Decrypt, { keyHandle: k }, { cipherText: new Uint8Array(256).fill(1), inScheme: NULL_SCHEME as never, label: EMPTY }, { sessions: [passwordAuth()] }))).toBe(TPM_RC.SCHEME);
    const oaep = { scheme: TPM_ALG.OAEP, details: { hashAlg: TPM_ALG.SHA256 } } as never;
    const c = await runCommand(t, RSA_Encrypt, { keyHandle: k }, { message: Uint8Array.of(1, 2, 3), inScheme: oaep, label: EMPTY });
    const m = await runCommand(t, RSA_Decrypt, { keyHandle: k }, { cipherText: c.params.outData, inScheme: oaep, label: EMPTY }, { sessions: [passwordAuth()] });
    expect([...m.params.message]).toEqual([1, 2, 3]);
  });

  it('RSA-1024 is no key here (TPM_RC_VALUE on inPublic, the profile leaves TPMI_RSA_KEY_BITS 1024 out), though the default profile makes one as libtpms; RSA-2048 and 3072 are', async () => {
    const { t } = await started('strict');
    const { t: d } = await started();
    const rsa1024 = { ...rsaSrkTemplate(), parameters: { ...rsaSrkTemplate().parameters, keyBits: 1024 } } as never;
    expect(await rcOf(primary(t, rsa1024))).toBe(rcForParameter(TPM_RC.VALUE, 2));
    const made1024 = await primary(d, rsa1024);
    expect((made1024.params.outPublic.unique as Uint8Array).length).toBe(128);
    const made = await primary(t, rsaSrkTemplate());
    expect(made.params.outPublic.type).toBe(TPM_ALG.RSA);
  });

  it('runs the everyday flow: RSA and ECC EKs, an AK under each (SHA-256 policy session), a SHA-256 quote verifyQuote accepts', async () => {
    const { t } = await started('strict');
    const tpm = new Tpm(t);
    for (const [template, alg] of [['L-1', 'rsa'], ['L-2', 'ecc']] as const) {
      const ek = await createEk(tpm, { template, persistentHandle: false });
      const ak = await createAk(tpm, ek, { alg });
      const nonce = new Uint8Array(randomBytes(32));
      const now = Date.now();
      const q = await quote(tpm, ak.handle, [pcrSelection(TPM_ALG.SHA256, [0, 7]), pcrSelection(TPM_ALG.SHA384, [0])], nonce);
      const v = verifyQuote({ attest: q.attestBytes, signature: q.signature, pcrValues: q.pcrValues }, { ak: ak.publicArea, challenge: { nonce, issuedAt: now, expiresAt: now + 60_000 }, now });
      expect(v.checks.filter((c) => c.outcome === 'fail')).toEqual([]);
      expect(v.accepted).toBe(true);
      await tpm.flush(ak.handle);
      await tpm.flush(ek.handle);
    }
  });
});

describe('profiles: one of one\'s own', () => {
  it('limits come from the profile: one object slot, reported and enforced', async () => {
    const base = TPM_PROFILES.libtpms;
    const { t } = await started({ ...base, name: 'one-slot', limits: { ...base.limits, loadedObjects: 1, inputBuffer: 512 } });
    expect(await properties(t, [TPM_PT.HR_TRANSIENT_MIN, TPM_PT.INPUT_BUFFER])).toEqual([1, 512]);
    await primary(t, eccSrkTemplate());
    expect(await rcOf(primary(t, eccSrkTemplate()))).toBe(TPM_RC.OBJECT_MEMORY);
  });

  it('SHA-1 kept as a hash but not for signatures (libtpms fips-host): Sign and VerifySignature answer TPM_RC_HASH, Hash SHA-1 still works', async () => {
    const base = TPM_PROFILES.libtpms;
    const fips: TpmProfile = { ...base, name: 'fips-host', algorithms: { ...base.algorithms, signingHashes: [TPM_ALG.SHA256, TPM_ALG.SHA384, TPM_ALG.SHA512] } };
    const { t } = await started(fips);
    const { t: d } = await started();
    expect((await runCommand(t, Hash, {}, { data: Uint8Array.of(1), hashAlg: TPM_ALG.SHA1, hierarchy: TPM_RH.NULL })).params.outHash.length).toBe(20);
    expect(await algorithms(t)).toContain(TPM_ALG.SHA1);
    const digest = new Uint8Array(20).fill(3);
    const key = await primary(t, eccSigner());
    const other = await primary(d, eccSigner());
    // libtpms's CryptSign: TPM_RC_HASH without a parameter number.
    expect(await rcOf(signWith(t, key.handles.objectHandle, TPM_ALG.SHA1, digest))).toBe(TPM_RC.HASH);
    // A SHA-1 signature (made by the default engine's key) is refused before it is checked: TPM_RC_HASH on signature.
    const sig = await signWith(d, other.handles.objectHandle, TPM_ALG.SHA1, digest);
    expect((await tpmRejection(runCommand(t, VerifySignature, { keyHandle: key.handles.objectHandle }, { digest, signature: sig.params.signature }))).rc).toBe(rcForParameter(TPM_RC.HASH, 2));
    // The default profile signs with SHA-1 and verifies it.
    const ok = await runCommand(d, VerifySignature, { keyHandle: other.handles.objectHandle }, { digest, signature: sig.params.signature });
    expect(ok.params.validation.tag).toBe(TPM_ST.VERIFIED);
    // SHA-256 still signs.
    expect((await signWith(t, key.handles.objectHandle, TPM_ALG.SHA256, new Uint8Array(32))).params.signature.sigAlg as number).toBe(TPM_ALG.ECDSA);
  });
});

describe('profiles: fixed at manufacture (the state records the profile)', () => {
  it('a new TPM records its profile; the stored TPM reopens under it, and another profile is a ProfileError (profile.mismatch)', async () => {
    const made = new TpmEngine({ profile: 'strict' });
    expect(made.state.profile).toBe('strict');
    expect(made.state.pcrAllocation.map((b) => b.hashAlg)).toEqual([TPM_ALG.SHA256, TPM_ALG.SHA384, TPM_ALG.SHA512]);
    expect(new TpmEngine({ state: made.state }).profile).toBe(TPM_PROFILES.strict);
    expect(new TpmEngine({ state: made.state, profile: 'strict' }).profile).toBe(TPM_PROFILES.strict);
    expect(() => new TpmEngine({ state: made.state, profile: 'libtpms' })).toThrow(expect.objectContaining({ code: 'profile.mismatch', profile: 'libtpms' }));
    expect(() => new TpmEngine({ state: createSimulatorState(), profile: 'strict' })).toThrow(expect.objectContaining({ code: 'profile.mismatch' }));
    // A profile of one's own is recorded by name; reopening needs it again.
    const own: TpmProfile = { ...TPM_PROFILES.libtpms, name: 'own', algorithms: { ...TPM_PROFILES.libtpms.algorithms, pcrBanks: [TPM_ALG.SHA256] } };
    const ownState = new TpmEngine({ profile: own }).state;
    expect([ownState.profile, ownState.pcrAllocation.map((b) => b.hashAlg)]).toEqual(['own', [TPM_ALG.SHA256]]);
    expect(() => new TpmEngine({ state: ownState })).toThrow(expect.objectContaining({ code: 'profile.unknown' }));
    expect(new TpmEngine({ state: ownState, profile: own }).profile).toBe(own);
  });

  it('the store manufactures under the profile, and keeps it across a reopen (a layout-3 file migrates to the libtpms profile: store.test.ts)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'trustroot-profile-'));
    try {
      const first = await openSimulatorStore(join(dir, 'strict'), { create: true, profile: TPM_PROFILES.strict });
      expect(first.state.profile).toBe('strict');
      await first.store.save(first.state);
      await first.store.close();
      const again = await openSimulatorStore(join(dir, 'strict'), { create: true, profile: TPM_PROFILES.libtpms });
      // An existing state is never remade: the profile given for manufacture does not apply.
      expect(again.state.profile).toBe('strict');
      expect(() => new TpmEngine({ state: again.state, profile: 'libtpms' })).toThrow(ProfileError);
      await again.store.close();

    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('sim:profile=strict opens a strict TPM (ephemeral or in a folder); an unknown profile is a TctiError; a folder keeps its profile', async () => {
    expect(parseSimTcti('profile=strict').profile).toBe('strict');
    expect(parseSimTcti('').profile).toBeUndefined();
    expect(() => parseSimTcti('profile=weak')).toThrow(TctiError);
    const dir = await mkdtemp(join(tmpdir(), 'trustroot-profile-'));
    try {
      for (const conf of ['profile=strict', `state=${join(dir, 'tpm')},profile=strict`]) {
        const t = await openSimTransport(parseTcti(`sim:${conf}`));
        try {
          await runCommand(t, Startup, {}, { startupType: TPM_SU.CLEAR });
          expect(await algorithms(t)).not.toContain(TPM_ALG.SHA1);
          expect(await banks(t)).toEqual([TPM_ALG.SHA256, TPM_ALG.SHA384, TPM_ALG.SHA512]);
        } finally {
          await t.close();
        }
      }
      // The folder's TPM is strict: reopened without a profile it still is; with another it does not open.
      const t = await openSimTransport(parseTcti(`sim:state=${join(dir, 'tpm')}`));
      try {
        await runCommand(t, Startup, {}, { startupType: TPM_SU.CLEAR });
        expect(await algorithms(t)).not.toContain(TPM_ALG.SHA1);
      } finally {
        await t.close();
      }
      await expect(openSimTransport(parseTcti(`sim:state=${join(dir, 'tpm')},profile=libtpms`))).rejects.toThrow(expect.objectContaining({ code: 'profile.mismatch' }));
      // The refused open released the folder: it opens again.
      const reopened = await openSimTransport(parseTcti(`sim:state=${join(dir, 'tpm')}`));
      await reopened.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describeWithTpm2Tools('profiles: tpm2-tools against `trustroot tpm serve --profile strict`', () => {
  let ours: Running;
  beforeAll(async () => {
    ours = await startOurs('swtpm', { profile: 'strict' });
  }, 120_000);
  afterAll(async () => {
    await ours?.stop();
  });
  const tool = async (name: string, args: readonly string[]): Promise<string> => (await ours.tools.run(name, args)).stdout;
  const fails = async (name: string, args: readonly string[]): Promise<string> => {
    const r = await ours.tools.run(name, args, { allowFailure: true });
    expect(r.code).not.toBe(0);
    return r.stderr;
  };
  const f = (name: string): string => join(ours.dir, name);

  it('getcap algorithms and pcrread show no SHA-1 and no ECB; testparms refuses SHA-1 schemes and ECB', async () => {
    const algs = await tool('getcap', ['algorithms']);
    expect(algs).toMatch(/^sha256:/m);
    expect(algs).not.toMatch(/^sha1:/m);
    expect(algs).not.toMatch(/^ecb:/m);
    const pcrs = await tool('pcrread', []);
    expect(pcrs).toMatch(/^\s*sha256:/m);
    expect(pcrs).not.toMatch(/^\s*sha1:/m);
    for (const ok of ['rsa2048', 'ecc256', 'aes128cfb', 'hmac']) await tool('testparms', [ok]);
    // The TPM's answer: TPM_RC_MODE on parameter 1 (0x1c9).
    expect(await fails('testparms', ['aes128ecb'])).toContain('0x000001c9');
    // tpm2-tools refuses these itself, from getcap's algorithm list ("Specified hash is unsupported").
    for (const sha1 of ['rsa2048:rsassa-sha1', 'ecc256:ecdsa-sha1', 'hmac:sha1']) expect(await fails('testparms', [sha1])).toMatch(/hash is unsupported/i);
  });

  it('createek, createak (SHA-256) and a SHA-256 quote work; a SHA-1 quote is refused', async () => {
    await tool('createek', ['-c', f('ek.ctx'), '-G', 'rsa', '-u', f('ek.pub')]);
    await tool('createak', ['-C', f('ek.ctx'), '-c', f('ak.ctx'), '-G', 'ecc', '-g', 'sha256', '-s', 'ecdsa', '-u', f('ak.pub'), '-n', f('ak.name')]);
    const nonce = randomBytes(16).toString('hex');
    await tool('quote', ['-c', f('ak.ctx'), '-l', 'sha256:0,7', '-q', nonce, '-m', f('q.msg'), '-s', f('q.sig'), '-o', f('q.pcrs'), '-g', 'sha256']);
    await tool('checkquote', ['-u', f('ak.pub'), '-m', f('q.msg'), '-s', f('q.sig'), '-f', f('q.pcrs'), '-g', 'sha256', '-q', nonce]);
    await fails('quote', ['-c', f('ak.ctx'), '-l', 'sha1:0', '-q', nonce, '-m', f('q1.msg'), '-s', f('q1.sig'), '-g', 'sha256']);
  });
});
