/**
 * The simulator's policy commands (Part 3 §23, PolicyRestart §11.2) and the
 * check of a policy session when it authorizes a command (policy-check.ts).
 *
 * Digests are checked three ways: against the core's PolicyCalculator (the
 * client's), against formulas hashed here with node:crypto, and against
 * swtpm (libtpms, the reference we imitate) replaying the same sequence in a
 * trial session. Signatures for PolicySigned are made by node:crypto and
 * verified by the simulator; tickets are recomputed with node:crypto HMACs
 * under the hierarchy proofs. Response codes of refused commands are
 * compared with swtpm's. End to end, policy sessions authorize Unseal through
 * the engine (PCR policies with the client's seal/unseal, PolicyAuthorize with
 * a VerifySignature ticket, PolicySigned and its ticket, a cpHashA).
 */
import { constants as cryptoConstants, createHash, createHmac, createSecretKey, generateKeyPairSync, randomBytes, sign as nodeSign, type KeyObject } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { Tpm, create, createPrimary, eccSigningTemplate, hmacKeyTemplate, load, loadExternal, rsaSigningTemplate, sign, verifySignature as verifySignatureOnTpm } from '../../src/client/index.js';
import { seal, unseal } from '../../src/client/seal.js';
import { eccSrkTemplate } from '../../src/tpm/templates.js';
import {
  NV_DefineSpace,
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
  PolicyNameHash,
  PolicyNV,
  PolicyNvWritten,
  PolicyOR,
  PolicyPassword,
  PolicyPCR,
  PolicyPhysicalPresence,
  PolicyRestart,
  PolicySecret,
  PolicySigned,
  PolicyTemplate,
  PolicyTicket,
  StartAuthSession,
  FlushContext,
  Unseal,
} from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_CC, TPM_ECC, TPM_EO, TPM_RH, TPM_SE, TPM_ST } from '../../src/tpm/constants.js';
import { handleName, nvName } from '../../src/tpm/names.js';
import { pcrSelection, readPcrs } from '../../src/tpm/pcr.js';
import { PolicyCalculator, ekPolicyA, pcrDigest, policySignedDigest, zeroPolicy } from '../../src/tpm/policy.js';
import { TPM_RC, isRc, rcForHandle, rcForParameter } from '../../src/tpm/rc.js';
import { runCommand } from '../../src/tpm/run.js';
import type { Transport } from '../../src/tpm/transport/index.js';
import { TPMA_NV, TPMA_OBJECT, TPMT_HA, TPMT_PUBLIC, type TPMS_NV_PUBLIC, type TPMT_SIGNATURE, type TPMT_TK_AUTH, type TPMT_TK_VERIFIED } from '../../src/tpm/types/index.js';
import { encode } from '../../src/tpm/wire/codec.js';
import { cpHash } from '../../src/tpm/cphash.js';
import { TpmEngine } from '../../src/simulator/index.js';
import { checkCondition } from '../../src/simulator/handlers/policy.js';
import { checkPolicySession, type PolicyUse } from '../../src/simulator/policy-check.js';
import type { SessionState } from '../../src/simulator/sessions.js';
import { verifySignature } from '../../src/simulator/signing.js';
import { describeWithSwtpm } from '../support/swtpm.js';
import { rejection } from '../support/probe.js';
import { rcOf } from '../support/probe.js';
import { startedEngine, swtpmAndSimulator } from '../support/fixture.js';

const EMPTY = new Uint8Array(0);
const SHA256 = TPM_ALG.SHA256;
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const u32 = (n: number): Uint8Array => Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
const sha256 = (...parts: Uint8Array[]): Uint8Array => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};


const rc = rcOf;

interface Env {
  readonly engine: TpmEngine;
  readonly t: Transport;
  readonly tpm: Tpm;
}


/** A policy or trial session started with StartAuthSession (unsalted, unbound, no parameter encryption). */
async function startSession(env: Env, kind: 'policy' | 'trial', authHash: number = SHA256): Promise<number> {
  const r = await runCommand(
    env.t,
    StartAuthSession,
    { tpmKey: TPM_RH.NULL, bind: TPM_RH.NULL },
    { nonceCaller: randomBytes(16), encryptedSalt: EMPTY, sessionType: kind === 'trial' ? TPM_SE.TRIAL : TPM_SE.POLICY, symmetric: { algorithm: TPM_ALG.NULL } as never, authHash: authHash as never },
  );
  return r.handles.sessionHandle;
}

function sessionAt(env: Env, h: number): SessionState {
  const s = env.engine.volatile.sessions.get(h);
  if (s === undefined) throw new Error(`no session at ${h.toString(16)}`);
  return s;
}

async function endSession(env: Env, h: number): Promise<void> {
  await runCommand(env.t, FlushContext, {}, { flushHandle: h });
}

async function digestOf(t: Transport, h: number): Promise<Uint8Array> {
  return (await runCommand(t, PolicyGetDigest, { policySession: h }, {})).params.policyDigest;
}

/** A use of a policy session with the given authPolicy and otherwise neutral facts. */
function use(authPolicy: Uint8Array, over: Partial<PolicyUse> = {}): PolicyUse {
  return { commandCode: TPM_CC.NV_Read, locality: 0, authPolicy, handleNames: [], cpHash: () => new Uint8Array(32), ...over };
}

function nvPublic(index: number, attrs: Partial<TPMA_NV>, dataSize: number): TPMS_NV_PUBLIC {
  return { nvIndex: index, nameAlg: SHA256, attributes: TPMA_NV.of({ OWNERWRITE: true, OWNERREAD: true, AUTHREAD: true, AUTHWRITE: true, NO_DA: true, ...attrs }), authPolicy: EMPTY, dataSize } as TPMS_NV_PUBLIC;
}

async function defineAndWrite(t: Transport, pub: TPMS_NV_PUBLIC, data?: Uint8Array): Promise<void> {
  await runCommand(t, NV_DefineSpace, { authHandle: TPM_RH.OWNER }, { auth: EMPTY, publicInfo: pub });
  if (data !== undefined) await runCommand(t, NV_Write, { authHandle: TPM_RH.OWNER, nvIndex: pub.nvIndex }, { data, offset: 0 });
}

/** A sealed-data object that only its policy can open (no userWithAuth; adminWithPolicy). */
function sealedTemplate(authPolicy: Uint8Array): TPMT_PUBLIC {
  return {
    type: TPM_ALG.KEYEDHASH,
    nameAlg: SHA256,
    objectAttributes: TPMA_OBJECT.of({ fixedTPM: true, fixedParent: true, adminWithPolicy: true, noDA: true }),
    authPolicy,
    parameters: { scheme: { scheme: TPM_ALG.NULL } },
    unique: EMPTY,
  } as TPMT_PUBLIC;
}

let rsaPairCache: ReturnType<typeof generateKeyPairSync> | undefined;
/** One RSA-2048 key pair for all tests (generating one costs about half a second). */
function rsaPair(): { publicKey: KeyObject; privateKey: KeyObject } {
  rsaPairCache ??= generateKeyPairSync('rsa', { modulusLength: 2048 });
  return rsaPairCache as { publicKey: KeyObject; privateKey: KeyObject };
}

/** A public-only signing key for LoadExternal, made from a node:crypto key pair. */
function externalPublic(kind: 'ecc256' | 'ecc384' | 'rsa', pub: KeyObject): TPMT_PUBLIC {
  const jwk = pub.export({ format: 'jwk' });
  const b = (s: string | undefined): Uint8Array => new Uint8Array(Buffer.from(s!, 'base64url'));
  const attributes = { fixedTPM: false, fixedParent: false, sensitiveDataOrigin: false, userWithAuth: true };
  if (kind === 'rsa') {
    const t = rsaSigningTemplate({ scheme: { scheme: TPM_ALG.NULL } as never, attributes });
    return { ...t, unique: b(jwk.n) } as TPMT_PUBLIC;
  }
  const t = eccSigningTemplate({ curveID: kind === 'ecc256' ? TPM_ECC.NIST_P256 : TPM_ECC.NIST_P384, scheme: { scheme: TPM_ALG.NULL } as never, attributes });
  return { ...t, unique: { x: b(jwk.x), y: b(jwk.y) } } as TPMT_PUBLIC;
}

// ---------------------------------------------------------------------------

describe('simulator policy: digests', () => {
  let env: Env;
  beforeAll(async () => {
    env = await startedEngine();
  });

  it('a trial session follows the core calculator command by command, and known vectors', async () => {
    const { t } = env;
    const h = await startSession(env, 'trial');
    const calc = new PolicyCalculator(SHA256);
    expect(await digestOf(t, h)).toEqual(calc.digest);

    const nonceBefore = sessionAt(env, h).nonceTPM.slice();
    await runCommand(t, PolicyAuthValue, { policySession: h }, {});
    // tpm-spec-facts.md §5: PolicyAuthValue from zero.
    expect(hex(await digestOf(t, h))).toBe('8fcd2169ab92694e0c633f1ab772842b8241bbc20288981fc7ac1eddc1fddb0e');
    await runCommand(t, PolicyRestart, { sessionHandle: h }, {});
    expect(await digestOf(t, h)).toEqual(zeroPolicy(SHA256));
    // Part 3 §11.2: the session and its nonces stay.
    expect(sessionAt(env, h).nonceTPM).toEqual(nonceBefore);

    await runCommand(t, PolicyCommandCode, { policySession: h }, { code: TPM_CC.ActivateCredential });
    expect(hex(await digestOf(t, h))).toBe('e587c11ab50f9d8730f721e3fea42b46c0455b246f96aee85d18eb3be64d666a');
    await runCommand(t, PolicyRestart, { sessionHandle: h }, {});

    await runCommand(t, PolicySecret, { authHandle: TPM_RH.ENDORSEMENT, policySession: h }, { nonceTPM: EMPTY, cpHashA: EMPTY, policyRef: EMPTY, expiration: 0 });
    expect(await digestOf(t, h)).toEqual(ekPolicyA(SHA256));
    await runCommand(t, PolicyRestart, { sessionHandle: h }, {});

    // A long sequence: every update equals the calculator's, and the first equals a node:crypto hash of the Part 3 formula.
    const sel = [pcrSelection(SHA256, [0, 7, 16])];
    const banks = await readPcrs(t, sel);
    const steps: [() => Promise<unknown>, () => void][] = [
      [() => runCommand(t, PolicyPCR, { policySession: h }, { pcrDigest: EMPTY, pcrs: sel }), () => calc.policyPCR({ pcrs: sel, values: banks })],
      [() => runCommand(t, PolicyPassword, { policySession: h }, {}), () => calc.policyPassword()],
      [() => runCommand(t, PolicyLocality, { policySession: h }, { locality: { TPM_LOC_ZERO: true, TPM_LOC_THREE: true } as never }), () => calc.policyLocality({ locality: 0b01001 })],
      [() => runCommand(t, PolicyCpHash, { policySession: h }, { cpHashA: sha256(Uint8Array.of(1)) }), () => calc.policyCpHash({ cpHashA: sha256(Uint8Array.of(1)) })],
      [() => runCommand(t, PolicyNvWritten, { policySession: h }, { writtenSet: 1 }), () => calc.policyNvWritten({ writtenSet: true })],
      [() => runCommand(t, PolicyCounterTimer, { policySession: h }, { operandB: u32(5), offset: 8, operation: TPM_EO.UNSIGNED_GE }), () => calc.policyCounterTimer({ operandB: u32(5), offset: 8, operation: TPM_EO.UNSIGNED_GE })],
      [() => runCommand(t, PolicyPhysicalPresence, { policySession: h }, {}), () => calc.policyPhysicalPresence()],
      [() => runCommand(t, PolicySecret, { authHandle: TPM_RH.OWNER, policySession: h }, { nonceTPM: EMPTY, cpHashA: EMPTY, policyRef: Uint8Array.of(9, 9), expiration: 0 }), () => calc.policySecret({ authName: handleName(TPM_RH.OWNER), policyRef: Uint8Array.of(9, 9) })],
    ];
    const before = calc.digest;
    for (const [run, apply] of steps) {
      await run();
      apply();
      expect(hex(await digestOf(t, h))).toBe(hex(calc.digest));
    }
    // PolicyPCR by hand (Part 3 §23.7): H(old ‖ CC_PolicyPCR ‖ TPML_PCR_SELECTION ‖ H(PCR0 ‖ PCR7 ‖ PCR16)).
    const values = [0, 7, 16].map((i) => banks.get(SHA256)!.get(i)!);
    const selection = Uint8Array.of(0, 0, 0, 1, 0x00, 0x0b, 3, 0x81, 0x00, 0x01);
    const byHand = sha256(before, u32(TPM_CC.PolicyPCR), selection, sha256(...values));
    const again = await startSession(env, 'trial');
    await runCommand(t, PolicyPCR, { policySession: again }, { pcrDigest: EMPTY, pcrs: sel });
    expect(hex(await digestOf(t, again))).toBe(hex(byHand));

    // PolicyOR, PolicyNameHash, PolicyTemplate, PolicyDuplicationSelect, PolicyAuthorize from a fresh digest.
    await runCommand(t, PolicyRestart, { sessionHandle: h }, {});
    calc.reset();
    const a = sha256(Uint8Array.of(0xa));
    const b = sha256(Uint8Array.of(0xb));
    await runCommand(t, PolicyOR, { policySession: h }, { pHashList: [a, b] });
    calc.policyOR({ pHashList: [a, b] });
    expect(await digestOf(t, h)).toEqual(calc.digest);
    // By hand: H(zeros ‖ CC_PolicyOR ‖ a ‖ b).
    expect(calc.digest).toEqual(sha256(new Uint8Array(32), u32(TPM_CC.PolicyOR), a, b));
    await runCommand(t, PolicyNameHash, { policySession: h }, { nameHash: b });
    calc.policyNameHash({ nameHash: b });
    expect(await digestOf(t, h)).toEqual(calc.digest);
    await runCommand(t, PolicyRestart, { sessionHandle: h }, {});
    calc.reset();
    await runCommand(t, PolicyTemplate, { policySession: h }, { templateHash: a });
    calc.policyTemplate({ templateHash: a });
    expect(await digestOf(t, h)).toEqual(calc.digest);
    await runCommand(t, PolicyRestart, { sessionHandle: h }, {});
    calc.reset();
    const objectName = Uint8Array.of(0, 0x0b, ...a);
    const parentName = Uint8Array.of(0, 0x0b, ...b);
    await runCommand(t, PolicyDuplicationSelect, { policySession: h }, { objectName, newParentName: parentName, includeObject: 0 });
    calc.policyDuplicationSelect({ objectName, newParentName: parentName, includeObject: false });
    expect(await digestOf(t, h)).toEqual(calc.digest);
    await runCommand(t, PolicyAuthorize, { policySession: h }, { approvedPolicy: EMPTY, policyRef: Uint8Array.of(1), keySign: parentName, checkTicket: { tag: TPM_ST.VERIFIED, hierarchy: TPM_RH.NULL, digest: EMPTY } as never });
    calc.policyAuthorize({ keySign: parentName, policyRef: Uint8Array.of(1) });
    expect(await digestOf(t, h)).toEqual(calc.digest);
    await endSession(env, h);
    await endSession(env, again);
  });

  it('SHA-384 and SHA-1 sessions digest with their own hash', async () => {
    for (const alg of [TPM_ALG.SHA384, TPM_ALG.SHA1]) {
      const { t } = env;
      const h = await startSession(env, 'trial', alg);
      await runCommand(t, PolicyCommandCode, { policySession: h }, { code: TPM_CC.Unseal });
      await runCommand(t, PolicyAuthValue, { policySession: h }, {});
      const calc = new PolicyCalculator(alg).policyCommandCode({ code: TPM_CC.Unseal }).policyAuthValue();
      expect(await digestOf(t, h)).toEqual(calc.digest);
      expect((await digestOf(t, h)).length).toBe(alg === TPM_ALG.SHA1 ? 20 : 48);
      await endSession(env, h);
    }
  });
});

// ---------------------------------------------------------------------------

describe('simulator policy: conditions in a real policy session', () => {
  it('PolicyPCR: the current values pass, a wrong pcrDigest is TPM_RC_VALUE, a PCR change afterwards is TPM_RC_PCR_CHANGED', async () => {
    const env = await startedEngine();
    const { t, engine } = env;
    // PCR 10 counts in pcrUpdateCounter (16 and 23 do not, PC Client).
    const sel = [pcrSelection(SHA256, [10])];
    const good = pcrDigest(SHA256, sel, (await readPcrs(t, sel)));
    const h = await startSession(env, 'policy');
    expect(await rc(runCommand(t, PolicyPCR, { policySession: h }, { pcrDigest: sha256(Uint8Array.of(1)), pcrs: sel }))).toBe(rcForParameter(TPM_RC.VALUE, 1));
    await runCommand(t, PolicyPCR, { policySession: h }, { pcrDigest: good, pcrs: sel });
    const s = sessionAt(env, h);
    const authPolicy = new PolicyCalculator(SHA256).policyPCR({ pcrs: sel, pcrDigest: good }).digest;
    expect(s.policyDigest).toEqual(authPolicy);
    expect(checkPolicySession(engine, s, use(authPolicy))).toBe(0);
    await runCommand(t, PCR_Extend, { pcrHandle: 10 }, { digests: [{ hashAlg: SHA256, digest: sha256(Uint8Array.of(7)) }] as never });
    expect(checkPolicySession(engine, s, use(authPolicy))).toBe(TPM_RC.PCR_CHANGED);
    expect(await rc(runCommand(t, PolicyPCR, { policySession: h }, { pcrDigest: EMPTY, pcrs: sel }))).toBe(TPM_RC.PCR_CHANGED);
    // PolicyRestart forgets the old check; an empty pcrDigest takes the new values.
    await runCommand(t, PolicyRestart, { sessionHandle: h }, {});
    await runCommand(t, PolicyPCR, { policySession: h }, { pcrDigest: EMPTY, pcrs: sel });
    const now = pcrDigest(SHA256, sel, (await readPcrs(t, sel)));
    expect(sessionAt(env, h).policyDigest).toEqual(new PolicyCalculator(SHA256).policyPCR({ pcrs: sel, pcrDigest: now }).digest);
    expect(checkPolicySession(engine, sessionAt(env, h), use(authPolicy))).toBe(TPM_RC.POLICY_FAIL);
  });

  it('PolicyOR: only a listed digest passes; fewer than two branches is TPM_RC_SIZE', async () => {
    const env = await startedEngine();
    const { t } = env;
    const h = await startSession(env, 'policy');
    const branchA = new PolicyCalculator(SHA256).policyAuthValue().digest;
    const branchB = new PolicyCalculator(SHA256).policyCommandCode({ code: TPM_CC.Unseal }).digest;
    expect(await rc(runCommand(t, PolicyOR, { policySession: h }, { pHashList: [branchA, branchB] }))).toBe(rcForParameter(TPM_RC.VALUE, 1));
    expect(await rc(runCommand(t, PolicyOR, { policySession: h }, { pHashList: [zeroPolicy(SHA256)] }))).toBe(rcForParameter(TPM_RC.SIZE, 1));
    await runCommand(t, PolicyCommandCode, { policySession: h }, { code: TPM_CC.Unseal });
    await runCommand(t, PolicyOR, { policySession: h }, { pHashList: [branchA, branchB] });
    expect(sessionAt(env, h).policyDigest).toEqual(new PolicyCalculator(SHA256).policyOR({ pHashList: [branchA, branchB] }).digest);
    // The command code recorded on the way stays (Part 1 §19.7.9).
    const authPolicy = sessionAt(env, h).policyDigest;
    expect(checkPolicySession(env.engine, sessionAt(env, h), use(authPolicy, { commandCode: TPM_CC.Unseal }))).toBe(0);
    expect(checkPolicySession(env.engine, sessionAt(env, h), use(authPolicy, { commandCode: TPM_CC.NV_Read }))).toBe(TPM_RC.POLICY_CC);
  });

  it('PolicySecret: nonce, cpHashA size, a ticket that PolicyTicket accepts, an expiration that runs out', async () => {
    let clock = 1_000;
    const env = await startedEngine(new TpmEngine({ now: () => clock }));
    const { t, engine } = env;
    const h = await startSession(env, 'policy');
    const s = sessionAt(env, h);
    const secret = (params: { nonceTPM?: Uint8Array; cpHashA?: Uint8Array; policyRef?: Uint8Array; expiration?: number }, session = h) =>
      runCommand(t, PolicySecret, { authHandle: TPM_RH.OWNER, policySession: session }, { nonceTPM: EMPTY, cpHashA: EMPTY, policyRef: EMPTY, expiration: 0, ...params });
    expect(await rc(secret({ nonceTPM: new Uint8Array(16).fill(1) }))).toBe(rcForParameter(TPM_RC.NONCE, 1));
    expect(await rc(secret({ cpHashA: new Uint8Array(20) }))).toBe(rcForParameter(TPM_RC.SIZE, 2));
    expect(s.policyDigest).toEqual(zeroPolicy(SHA256)); // refused commands change nothing

    // Bound to this session's nonce, 60 s, a ticket asked for with a negative expiration.
    const cpHashA = sha256(Uint8Array.of(0xcc));
    const policyRef = Uint8Array.of(1, 2, 3);
    const r = await secret({ nonceTPM: s.nonceTPM, cpHashA, policyRef, expiration: -60 });
    const timeout = new DataView(r.params.timeout.buffer, r.params.timeout.byteOffset, 8).getBigUint64(0);
    expect(timeout).toBe(s.startTime + 60_000n);
    expect(r.params.policyTicket.tag).toBe(TPM_ST.AUTH_SECRET);
    expect(r.params.policyTicket.hierarchy).toBe(TPM_RH.OWNER);
    expect(r.params.policyTicket.digest.length).toBe(64);
    const authPolicy = new PolicyCalculator(SHA256).policySecret({ authName: handleName(TPM_RH.OWNER), policyRef }).digest;
    expect(s.policyDigest).toEqual(authPolicy);
    expect(s.policy.cpHash).toEqual(cpHashA);
    expect(checkPolicySession(engine, s, use(authPolicy, { cpHash: () => cpHashA }))).toBe(0);
    expect(checkPolicySession(engine, s, use(authPolicy))).toBe(TPM_RC.POLICY_FAIL); // another command's cpHash
    // A different cpHashA in the same session is TPM_RC_CPHASH.
    expect(await rc(secret({ cpHashA: sha256(Uint8Array.of(0xdd)) }))).toBe(TPM_RC.CPHASH);

    // The ticket stands in for PolicySecret in another session, until the timeout.
    const h2 = await startSession(env, 'policy');
    const ticketParams = { timeout: r.params.timeout, cpHashA, policyRef, authName: handleName(TPM_RH.OWNER), ticket: r.params.policyTicket };
    const forged = { ...r.params.policyTicket, digest: r.params.policyTicket.digest.map((x, i) => (i === 0 ? x ^ 1 : x)) };
    expect(await rc(runCommand(t, PolicyTicket, { policySession: h2 }, { ...ticketParams, ticket: forged }))).toBe(rcForParameter(TPM_RC.TICKET, 5));
    expect(await rc(runCommand(t, PolicyTicket, { policySession: h2 }, { ...ticketParams, policyRef: Uint8Array.of(1, 2, 4) }))).toBe(rcForParameter(TPM_RC.TICKET, 5));
    await runCommand(t, PolicyTicket, { policySession: h2 }, ticketParams);
    expect(sessionAt(env, h2).policyDigest).toEqual(authPolicy);
    // A trial session refuses tickets.
    const trial = await startSession(env, 'trial');
    expect(await rc(runCommand(t, PolicyTicket, { policySession: trial }, ticketParams))).toBe(rcForHandle(TPM_RC.ATTRIBUTES, 1));

    // Time passes: the session's authorization expires, and so does the ticket.
    clock += 61_000;
    expect(checkPolicySession(engine, s, use(authPolicy, { cpHash: () => cpHashA }))).toBe(TPM_RC.EXPIRED);
    await runCommand(t, PolicyRestart, { sessionHandle: h2 }, {});
    expect(await rc(runCommand(t, PolicyTicket, { policySession: h2 }, ticketParams))).toBe(rcForParameter(TPM_RC.EXPIRED, 1));
    // An expiration already in the past (absolute, no nonce) is refused at once.
    expect(await rc(secret({ expiration: 1 }, h2))).toBe(rcForParameter(TPM_RC.EXPIRED, 4));
  });

  it('PolicySecret: the ticket is HMAC-SHA512 under the hierarchy proof, as recomputed with node:crypto', async () => {
    const clock = 5_000;
    const env = await startedEngine(new TpmEngine({ now: () => clock }));
    const h = await startSession(env, 'policy');
    const s = sessionAt(env, h);
    const r = await runCommand(env.t, PolicySecret, { authHandle: TPM_RH.ENDORSEMENT, policySession: h }, { nonceTPM: s.nonceTPM, cpHashA: EMPTY, policyRef: EMPTY, expiration: -10 });
    const timeout = s.startTime + 10_000n;
    const t8 = new Uint8Array(8);
    new DataView(t8.buffer).setBigUint64(0, timeout);
    expect(r.params.timeout).toEqual(t8); // bound to the nonce: the expires-on-reset bit is clear
    const c = env.engine.state.clock;
    const epoch = new Uint8Array(8);
    new DataView(epoch.buffer).setBigUint64(0, BigInt(Math.floor(env.engine.volatile.initAt * 1000)));
    const want = createHmac('sha512', env.engine.state.proofs.endorsement)
      .update(Uint8Array.of(0x80, 0x23))
      .update(handleName(TPM_RH.ENDORSEMENT))
      .update(t8)
      .update(u32(c.restartCount))
      .update(epoch)
      .digest();
    expect(hex(r.params.policyTicket.digest)).toBe(want.toString('hex'));
    expect(r.params.policyTicket.hierarchy).toBe(TPM_RH.ENDORSEMENT);
    // Without expiration: no ticket, a NULL one.
    const r0 = await runCommand(env.t, PolicySecret, { authHandle: TPM_RH.ENDORSEMENT, policySession: h }, { nonceTPM: EMPTY, cpHashA: EMPTY, policyRef: EMPTY, expiration: 0 });
    expect(r0.params.timeout.length).toBe(0);
    expect(r0.params.policyTicket).toMatchObject({ tag: TPM_ST.AUTH_SECRET, hierarchy: TPM_RH.NULL });
    expect(r0.params.policyTicket.digest.length).toBe(0);
  });

  it('PolicySigned: node:crypto signatures (ECDSA P-256/P-384, RSASSA, RSA-PSS) verify; altered ones are TPM_RC_SIGNATURE', async () => {
    const env = await startedEngine();
    const { t, tpm } = env;
    const keys = [
      { kind: 'ecc256' as const, pair: generateKeyPairSync('ec', { namedCurve: 'P-256' }), sigAlg: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256, node: 'sha256' },
      { kind: 'ecc384' as const, pair: generateKeyPairSync('ec', { namedCurve: 'P-384' }), sigAlg: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA384, node: 'sha384' },
      { kind: 'rsa' as const, pair: rsaPair(), sigAlg: TPM_ALG.RSASSA, hashAlg: TPM_ALG.SHA256, node: 'sha256' },
      { kind: 'rsa' as const, pair: rsaPair(), sigAlg: TPM_ALG.RSAPSS, hashAlg: TPM_ALG.SHA256, node: 'sha256' },
    ];
    for (const k of keys) {
      const key = await loadExternal(tpm, externalPublic(k.kind, k.pair.publicKey));
      const h = await startSession(env, 'policy');
      const s = sessionAt(env, h);
      const policyRef = Uint8Array.of(0x70);
      // What the key holder signs: nonceTPM ‖ expiration ‖ cpHashA ‖ policyRef, hashed by node:crypto.
      const message = Buffer.concat([s.nonceTPM, u32(0), policyRef]);
      expect(policySignedDigest(k.hashAlg, { nonceTPM: s.nonceTPM, policyRef })).toEqual(new Uint8Array(createHash(k.node).update(message).digest()));
      let auth: TPMT_SIGNATURE;
      if (k.sigAlg === TPM_ALG.ECDSA) {
        const raw = nodeSign(k.node, message, { key: k.pair.privateKey, dsaEncoding: 'ieee-p1363' });
        const n = raw.length / 2;
        auth = { sigAlg: TPM_ALG.ECDSA, signature: { hash: k.hashAlg, signatureR: new Uint8Array(raw.subarray(0, n)), signatureS: new Uint8Array(raw.subarray(n)) } } as TPMT_SIGNATURE;
      } else {
        const padding = k.sigAlg === TPM_ALG.RSAPSS ? { padding: cryptoConstants.RSA_PKCS1_PSS_PADDING, saltLength: 32 } : {};
        auth = { sigAlg: k.sigAlg, signature: { hash: k.hashAlg, sig: new Uint8Array(nodeSign(k.node, message, { key: k.pair.privateKey, ...padding })) } } as TPMT_SIGNATURE;
      }
      const params = { nonceTPM: s.nonceTPM, cpHashA: EMPTY, policyRef, expiration: 0, auth };
      const bad = structuredClone(auth) as { signature: { signatureS?: Uint8Array; sig?: Uint8Array } };
      const body = bad.signature.signatureS ?? bad.signature.sig!;
      body[body.length - 1]! ^= 1;
      expect(await rc(runCommand(t, PolicySigned, { authObject: key.handle, policySession: h }, { ...params, auth: bad as TPMT_SIGNATURE }))).toBe(rcForParameter(TPM_RC.SIGNATURE, 5));
      expect(await rc(runCommand(t, PolicySigned, { authObject: key.handle, policySession: h }, { ...params, policyRef: Uint8Array.of(0x71) }))).toBe(rcForParameter(TPM_RC.SIGNATURE, 5));
      await runCommand(t, PolicySigned, { authObject: key.handle, policySession: h }, params);
      expect(sessionAt(env, h).policyDigest).toEqual(new PolicyCalculator(SHA256).policySigned({ authName: key.name, policyRef }).digest);
      await tpm.flush(key);
      await endSession(env, h);
    }
  });

  it('PolicyNV: TPM_EO comparisons against the index, offset and size checks, and the read rules', async () => {
    const env = await startedEngine();
    const { t } = env;
    const index = 0x01500010;
    await defineAndWrite(t, nvPublic(index, {}, 8), Uint8Array.of(0, 0, 0, 0, 0, 0, 0x01, 0x00));
    const unwritten = 0x01500011;
    await defineAndWrite(t, nvPublic(unwritten, {}, 8));
    const h = await startSession(env, 'policy');
    const nv = (operandB: Uint8Array, offset: number, operation: number, authHandle: number = TPM_RH.OWNER, nvIndex = index) =>
      runCommand(t, PolicyNV, { authHandle, nvIndex, policySession: h }, { operandB, offset, operation: operation as never });
    expect(await rc(nv(Uint8Array.of(1, 0), 6, TPM_EO.EQ))).toBe(0);
    expect(await rc(nv(Uint8Array.of(0, 0xff), 6, TPM_EO.UNSIGNED_GT))).toBe(0);
    expect(await rc(nv(Uint8Array.of(1, 1), 6, TPM_EO.UNSIGNED_GT))).toBe(TPM_RC.POLICY);
    expect(await rc(nv(Uint8Array.of(0xff, 0xff), 6, TPM_EO.SIGNED_GT))).toBe(0); // 0x0100 > −1
    expect(await rc(nv(Uint8Array.of(0x01), 6, TPM_EO.BITSET))).toBe(0);
    expect(await rc(nv(Uint8Array.of(0x01), 7, TPM_EO.BITCLEAR))).toBe(0);
    expect(await rc(nv(Uint8Array.of(0x01), 7, TPM_EO.BITSET))).toBe(TPM_RC.POLICY);
    expect(await rc(nv(Uint8Array.of(1), 9, TPM_EO.EQ))).toBe(rcForParameter(TPM_RC.VALUE, 2));
    expect(await rc(nv(Uint8Array.of(1, 2, 3), 6, TPM_EO.EQ))).toBe(rcForParameter(TPM_RC.SIZE, 1));
    expect(await rc(nv(Uint8Array.of(1), 0, TPM_EO.EQ, unwritten, unwritten))).toBe(TPM_RC.NV_UNINITIALIZED);
    const pub = nvPublic(index, { WRITTEN: true }, 8);
    const calc = new PolicyCalculator(SHA256);
    for (const [b, off, op] of [
      [Uint8Array.of(1, 0), 6, TPM_EO.EQ],
      [Uint8Array.of(0, 0xff), 6, TPM_EO.UNSIGNED_GT],
      [Uint8Array.of(0xff, 0xff), 6, TPM_EO.SIGNED_GT],
      [Uint8Array.of(0x01), 6, TPM_EO.BITSET],
      [Uint8Array.of(0x01), 7, TPM_EO.BITCLEAR],
    ] as const) {
      calc.policyNV({ operandB: b, offset: off, operation: op, nvIndexName: nvName(pub) });
    }
    expect(sessionAt(env, h).policyDigest).toEqual(calc.digest);
  });

  it('TPM_EO comparisons on equal-length big-endian operands', () => {
    const cases: [(typeof TPM_EO)[keyof typeof TPM_EO], number[], number[], boolean][] = [
      [TPM_EO.EQ, [1, 2], [1, 2], true],
      [TPM_EO.NEQ, [1, 2], [1, 2], false],
      [TPM_EO.SIGNED_GT, [0x80], [0x7f], false],
      [TPM_EO.UNSIGNED_GT, [0x80], [0x7f], true],
      [TPM_EO.SIGNED_LT, [0xff, 0x00], [0x00, 0x01], true],
      [TPM_EO.UNSIGNED_LT, [0xff, 0x00], [0x00, 0x01], false],
      [TPM_EO.SIGNED_GE, [0xfe], [0xfe], true],
      [TPM_EO.UNSIGNED_GE, [0x01, 0x00], [0x00, 0xff], true],
      [TPM_EO.SIGNED_LE, [0x81], [0x80], false],
      [TPM_EO.UNSIGNED_LE, [0x00, 0x01], [0x00, 0x02], true],
      [TPM_EO.BITSET, [0b1011], [0b0011], true],
      [TPM_EO.BITCLEAR, [0b1011], [0b0100], true],
      [TPM_EO.BITCLEAR, [0b1011], [0b0001], false],
    ];
    for (const [op, a, b, want] of cases) expect([op, a, b, checkCondition(op, Uint8Array.from(a), Uint8Array.from(b))]).toEqual([op, a, b, want]);
  });

  it('PolicyAuthorize: a VerifySignature ticket (HMAC-SHA512 under the proof) for approvedPolicy ‖ policyRef by keySign', async () => {
    const env = await startedEngine();
    const { t, engine } = env;
    const keySign = Uint8Array.of(0, 0x0b, ...sha256(Uint8Array.of(0x55)));
    const policyRef = Uint8Array.of(0xab);
    const h = await startSession(env, 'policy');
    await runCommand(t, PolicyCommandCode, { policySession: h }, { code: TPM_CC.NV_Read });
    const approved = sessionAt(env, h).policyDigest;
    const aHash = sha256(approved, policyRef);
    const ticketFor = (hierarchy: number, proof: Uint8Array, digest = aHash) => ({
      tag: TPM_ST.VERIFIED,
      hierarchy,
      digest: new Uint8Array(createHmac('sha512', proof).update(Uint8Array.of(0x80, 0x22)).update(digest).update(keySign).digest()),
    });
    const good = ticketFor(TPM_RH.OWNER, engine.state.proofs.owner);
    const call = (p: Partial<{ approvedPolicy: Uint8Array; policyRef: Uint8Array; keySign: Uint8Array; checkTicket: ReturnType<typeof ticketFor> }>) =>
      runCommand(t, PolicyAuthorize, { policySession: h }, { approvedPolicy: approved, policyRef, keySign, checkTicket: good, ...p } as never);
    expect(await rc(call({ approvedPolicy: zeroPolicy(SHA256) }))).toBe(rcForParameter(TPM_RC.VALUE, 1));
    expect(await rc(call({ checkTicket: ticketFor(TPM_RH.ENDORSEMENT, engine.state.proofs.owner) }))).toBe(rcForParameter(TPM_RC.VALUE, 4));
    expect(await rc(call({ checkTicket: ticketFor(TPM_RH.OWNER, engine.state.proofs.owner, sha256(approved)) }))).toBe(rcForParameter(TPM_RC.VALUE, 4));
    expect(await rc(call({ keySign: Uint8Array.of(0, 0x0b, 1, 2) }))).toBe(rcForParameter(TPM_RC.SIZE, 3));
    expect(await rc(call({ keySign: Uint8Array.of(0x12, 0x34, ...new Uint8Array(32)) }))).toBe(rcForParameter(TPM_RC.HASH, 3));
    await call({});
    const authPolicy = new PolicyCalculator(SHA256).policyAuthorize({ keySign, policyRef }).digest;
    expect(sessionAt(env, h).policyDigest).toEqual(authPolicy);
    // The approved policy's command code still binds the session.
    expect(checkPolicySession(engine, sessionAt(env, h), use(authPolicy, { commandCode: TPM_CC.NV_Read }))).toBe(0);
    expect(checkPolicySession(engine, sessionAt(env, h), use(authPolicy, { commandCode: TPM_CC.NV_Write }))).toBe(TPM_RC.POLICY_CC);
  });

  it('PolicyAuthorizeNV: the digest must be the TPMT_HA the index holds', async () => {
    const env = await startedEngine();
    const { t } = env;
    const approved = new PolicyCalculator(SHA256).policyCommandCode({ code: TPM_CC.NV_Read });
    const index = 0x01500020;
    await defineAndWrite(t, nvPublic(index, {}, 34), encode(TPMT_HA, approved.toHa()));
    const h = await startSession(env, 'policy');
    const call = () => runCommand(t, PolicyAuthorizeNV, { authHandle: TPM_RH.OWNER, nvIndex: index, policySession: h }, {});
    expect(await rc(call())).toBe(TPM_RC.VALUE);
    await runCommand(t, PolicyCommandCode, { policySession: h }, { code: TPM_CC.NV_Read });
    await call();
    const pub = nvPublic(index, { WRITTEN: true }, 34);
    expect(sessionAt(env, h).policyDigest).toEqual(new PolicyCalculator(SHA256).policyAuthorizeNV({ nvIndexName: nvName(pub) }).digest);
    // A SHA-384 session cannot use a SHA-256 approval.
    const h384 = await startSession(env, 'policy', TPM_ALG.SHA384);
    expect(await rc(runCommand(t, PolicyAuthorizeNV, { authHandle: TPM_RH.OWNER, nvIndex: index, policySession: h384 }, {}))).toBe(TPM_RC.HASH);
  });

  it('PolicyCommandCode, PolicyLocality, PolicyCpHash/NameHash/Template exclusivity, PolicyNvWritten, PolicyPhysicalPresence', async () => {
    const env = await startedEngine();
    const { t, engine } = env;
    const h = await startSession(env, 'policy');
    await runCommand(t, PolicyCommandCode, { policySession: h }, { code: TPM_CC.NV_Read });
    expect(await rc(runCommand(t, PolicyCommandCode, { policySession: h }, { code: TPM_CC.NV_Write }))).toBe(rcForParameter(TPM_RC.VALUE, 1));
    const h2 = await startSession(env, 'policy');
    // 0x1ff is no command at all: a policy naming it could never be used.
    expect(await rc(runCommand(t, PolicyCommandCode, { policySession: h2 }, { code: 0x1ff }))).toBe(rcForParameter(TPM_RC.POLICY_CC, 1));

    // Localities intersect; nothing left is TPM_RC_RANGE; the use is checked against the command's locality.
    await runCommand(t, PolicyLocality, { policySession: h2 }, { locality: { TPM_LOC_ZERO: true, TPM_LOC_THREE: true } as never });
    expect(await rc(runCommand(t, PolicyLocality, { policySession: h2 }, { locality: { TPM_LOC_ONE: true } as never }))).toBe(rcForParameter(TPM_RC.RANGE, 1));
    await runCommand(t, PolicyLocality, { policySession: h2 }, { locality: { TPM_LOC_THREE: true, TPM_LOC_FOUR: true } as never });
    const s2 = sessionAt(env, h2);
    expect(s2.policy.commandLocality).toBe(0b01000);
    expect(checkPolicySession(engine, s2, use(s2.policyDigest, { locality: 3 }))).toBe(0);
    expect(checkPolicySession(engine, s2, use(s2.policyDigest, { locality: 0 }))).toBe(TPM_RC.LOCALITY);

    // cpHash, nameHash and templateHash exclude each other.
    const h3 = await startSession(env, 'policy');
    const x = sha256(Uint8Array.of(1));
    expect(await rc(runCommand(t, PolicyCpHash, { policySession: h3 }, { cpHashA: new Uint8Array(20) }))).toBe(rcForParameter(TPM_RC.SIZE, 1));
    await runCommand(t, PolicyNameHash, { policySession: h3 }, { nameHash: x });
    expect(await rc(runCommand(t, PolicyCpHash, { policySession: h3 }, { cpHashA: x }))).toBe(TPM_RC.CPHASH);
    expect(await rc(runCommand(t, PolicyNameHash, { policySession: h3 }, { nameHash: x }))).toBe(TPM_RC.CPHASH);
    expect(await rc(runCommand(t, PolicyTemplate, { policySession: h3 }, { templateHash: x }))).toBe(TPM_RC.CPHASH);
    const s3 = sessionAt(env, h3);
    const names = [Uint8Array.of(0x40, 0, 0, 1)];
    expect(checkPolicySession(engine, s3, use(s3.policyDigest, { handleNames: names }))).toBe(TPM_RC.POLICY_FAIL);
    await runCommand(t, PolicyRestart, { sessionHandle: h3 }, {});
    await runCommand(t, PolicyNameHash, { policySession: h3 }, { nameHash: sha256(...names) });
    expect(checkPolicySession(engine, s3, use(s3.policyDigest, { handleNames: names }))).toBe(0);
    await runCommand(t, PolicyRestart, { sessionHandle: h3 }, {});
    await runCommand(t, PolicyCpHash, { policySession: h3 }, { cpHashA: x });
    await runCommand(t, PolicyCpHash, { policySession: h3 }, { cpHashA: x }); // the same value again is fine
    expect(checkPolicySession(engine, s3, use(s3.policyDigest, { cpHash: () => x }))).toBe(0);
    await runCommand(t, PolicyRestart, { sessionHandle: h3 }, {});
    // PolicyTemplate: H(inPublic) of the creation command's parameters (inSensitive, inPublic, …), hashed here by node:crypto.
    const template = encode(TPMT_PUBLIC, eccSrkTemplate());
    await runCommand(t, PolicyTemplate, { policySession: h3 }, { templateHash: sha256(template) });
    const params = Uint8Array.of(0, 4, 0, 0, 0, 0, template.length >> 8, template.length & 0xff, ...template, 0, 0, 0, 0, 0, 0);
    const creation = (code: number, parameters: Uint8Array) => checkPolicySession(engine, s3, use(s3.policyDigest, { commandCode: code, parameters }));
    expect(creation(TPM_CC.CreatePrimary, params)).toBe(0);
    expect(creation(TPM_CC.Create, params)).toBe(0);
    expect(creation(TPM_CC.NV_Read, params)).toBe(TPM_RC.POLICY_FAIL); // not a creation command
    expect(creation(TPM_CC.Create, params.map((b, i) => (i === 20 ? b ^ 1 : b)))).toBe(TPM_RC.POLICY_FAIL); // another template
    expect(creation(TPM_CC.Create, params.subarray(0, 20))).toBe(TPM_RC.POLICY_FAIL); // cut short: never read past the end
    expect(checkPolicySession(engine, s3, use(s3.policyDigest, { commandCode: TPM_CC.Create }))).toBe(TPM_RC.POLICY_FAIL);

    // PolicyNvWritten: only for an NV index in that state; a conflicting second call is TPM_RC_VALUE.
    await runCommand(t, PolicyRestart, { sessionHandle: h3 }, {});
    await runCommand(t, PolicyNvWritten, { policySession: h3 }, { writtenSet: 0 });
    expect(await rc(runCommand(t, PolicyNvWritten, { policySession: h3 }, { writtenSet: 1 }))).toBe(rcForParameter(TPM_RC.VALUE, 1));
    const index = 0x01500040;
    await defineAndWrite(t, nvPublic(index, {}, 4));
    expect(checkPolicySession(engine, s3, use(s3.policyDigest, { entityHandle: index }))).toBe(0);
    await runCommand(t, NV_Write, { authHandle: TPM_RH.OWNER, nvIndex: index }, { data: Uint8Array.of(1), offset: 0 });
    expect(checkPolicySession(engine, s3, use(s3.policyDigest, { entityHandle: index }))).toBe(TPM_RC.POLICY_FAIL);
    expect(checkPolicySession(engine, s3, use(s3.policyDigest, { entityHandle: TPM_RH.OWNER }))).toBe(TPM_RC.POLICY_FAIL); // not an index
    expect(checkPolicySession(engine, s3, use(s3.policyDigest))).toBe(TPM_RC.POLICY_FAIL);

    // PolicyPhysicalPresence.
    await runCommand(t, PolicyRestart, { sessionHandle: h3 }, {});
    await runCommand(t, PolicyPhysicalPresence, { policySession: h3 }, {});
    expect(checkPolicySession(engine, s3, use(s3.policyDigest))).toBe(TPM_RC.PP);
    expect(checkPolicySession(engine, s3, use(s3.policyDigest, { physicalPresence: true }))).toBe(0);
  });

  it('checkPolicySession: digest and its hash, ADMIN role without a command code, PolicySecret through a policy without the authValue', async () => {
    const env = await startedEngine();
    const h = await startSession(env, 'policy');
    const s = sessionAt(env, h);
    const zero = zeroPolicy(SHA256);
    expect(checkPolicySession(env.engine, s, use(zero))).toBe(0);
    expect(checkPolicySession(env.engine, s, use(sha256(zero)))).toBe(TPM_RC.POLICY_FAIL);
    // The entity's nameAlg is the hash of its authPolicy: a SHA-384 index never takes a SHA-256 session's digest.
    const sha384Index = { ...nvPublic(0x01500041, {}, 4), nameAlg: TPM_ALG.SHA384 } as TPMS_NV_PUBLIC;
    await defineAndWrite(env.t, sha384Index);
    await defineAndWrite(env.t, nvPublic(0x01500042, {}, 4));
    expect(checkPolicySession(env.engine, s, use(zero, { entityHandle: 0x01500041 }))).toBe(TPM_RC.POLICY_FAIL);
    expect(checkPolicySession(env.engine, s, use(zero, { entityHandle: 0x01500042 }))).toBe(0);
    expect(checkPolicySession(env.engine, s, use(zero, { entityHandle: TPM_RH.OWNER }))).toBe(0); // no owner policy set: nothing to compare
    expect(checkPolicySession(env.engine, s, use(zero, { role: 'ADMIN' }))).toBe(TPM_RC.POLICY_FAIL);
    expect(checkPolicySession(env.engine, s, use(zero, { commandCode: TPM_CC.PolicySecret }))).toBe(TPM_RC.MODE);
    await runCommand(env.t, PolicyPassword, { policySession: h }, {});
    expect(s.policy.isPasswordNeeded).toBe(true);
    expect(checkPolicySession(env.engine, s, use(s.policyDigest, { commandCode: TPM_CC.PolicySecret }))).toBe(0);
    await runCommand(env.t, PolicyCommandCode, { policySession: h }, { code: TPM_CC.NV_Read });
    expect(checkPolicySession(env.engine, s, use(s.policyDigest, { role: 'ADMIN' }))).toBe(0);
  });

  it('PolicyCounterTimer: compares against Time; offsets past TPMS_TIME_INFO are refused even in a trial', async () => {
    let clock = 0;
    const env = await startedEngine(new TpmEngine({ now: () => clock }));
    const { t } = env;
    const h = await startSession(env, 'policy');
    clock = 5_000;
    const eight = (v: bigint) => {
      const b = new Uint8Array(8);
      new DataView(b.buffer).setBigUint64(0, v);
      return b;
    };
    // Time (offset 0) ≥ 4000 ms holds, ≥ 6000 ms does not.
    expect(await rc(runCommand(t, PolicyCounterTimer, { policySession: h }, { operandB: eight(4000n), offset: 0, operation: TPM_EO.UNSIGNED_GE }))).toBe(0);
    expect(await rc(runCommand(t, PolicyCounterTimer, { policySession: h }, { operandB: eight(6000n), offset: 0, operation: TPM_EO.UNSIGNED_GE }))).toBe(TPM_RC.POLICY);
    const trial = await startSession(env, 'trial');
    expect(await rc(runCommand(t, PolicyCounterTimer, { policySession: trial }, { operandB: Uint8Array.of(1), offset: 26, operation: TPM_EO.EQ }))).toBe(rcForParameter(TPM_RC.VALUE, 2));
    expect(await rc(runCommand(t, PolicyCounterTimer, { policySession: trial }, { operandB: Uint8Array.of(1, 2), offset: 24, operation: TPM_EO.EQ }))).toBe(TPM_RC.RANGE);
    expect(await rc(runCommand(t, PolicyCounterTimer, { policySession: trial }, { operandB: eight(1n << 60n), offset: 0, operation: TPM_EO.UNSIGNED_GE }))).toBe(0);
  });
});

// ---------------------------------------------------------------------------

describe('simulator policy sessions authorize commands (seal/unseal with a PCR policy)', () => {
  it('a PCR-sealed secret unseals until the PCR changes; PolicyAuthValue and PolicyPassword need the password', async () => {
    const env = await startedEngine();
    const { tpm, t } = env;
    const srk = await createPrimary(tpm, TPM_RH.OWNER, eccSrkTemplate());
    const sel = [pcrSelection(SHA256, [10])];
    const secret = Uint8Array.of(1, 2, 3, 4, 5);
    const plain = await seal(tpm, srk, secret, { pcrs: sel });
    expect(plain.publicArea.authPolicy).toEqual(new PolicyCalculator(SHA256).policyPCR({ pcrs: sel, values: await readPcrs(t, sel) }).digest);
    expect(await unseal(tpm, srk, plain)).toEqual(secret);
    const password = Uint8Array.of(0x70, 0x77);
    const withHmac = await seal(tpm, srk, secret, { pcrs: sel, password, passwordPolicy: 'PolicyAuthValue' });
    const withPassword = await seal(tpm, srk, secret, { pcrs: sel, password, passwordPolicy: 'PolicyPassword' });
    expect(await unseal(tpm, srk, withHmac, { password })).toEqual(secret);
    expect(await unseal(tpm, srk, withPassword, { password })).toEqual(secret);
    expect(isRc(await rejection(unseal(tpm, srk, withPassword, { password: Uint8Array.of(1) })), TPM_RC.AUTH_FAIL)).toBe(true);

    await runCommand(t, PCR_Extend, { pcrHandle: 10 }, { digests: [{ hashAlg: SHA256, digest: sha256(Uint8Array.of(7)) }] as never });
    for (const sealed of [plain, withHmac]) {
      expect(isRc(await rejection(unseal(tpm, srk, sealed, { password })), TPM_RC.POLICY_FAIL)).toBe(true);
    }
    // Nothing is left loaded after the failures.
    expect(env.engine.volatile.sessions.count).toBe(0);
  });

  it('a PCR change between PolicyPCR and the command is TPM_RC_PCR_CHANGED; replayed afresh, the policy unseals', async () => {
    const env = await startedEngine();
    const { tpm, t } = env;
    const srk = await createPrimary(tpm, TPM_RH.OWNER, eccSrkTemplate());
    const sel = [pcrSelection(SHA256, [10])];
    const sealed = await seal(tpm, srk, Uint8Array.of(9), { pcrs: sel });
    const item = await load(tpm, srk, { privateBlob: sealed.privateArea, publicArea: sealed.publicArea });
    const session = await tpm.startAuthSession({ type: 'policy', symmetric: { algorithm: TPM_ALG.NULL } as never });
    await tpm.run(PolicyPCR, { policySession: session.handle }, { pcrDigest: EMPTY, pcrs: sel });
    await runCommand(t, PCR_Extend, { pcrHandle: 10 }, { digests: [{ hashAlg: SHA256, digest: sha256(Uint8Array.of(7)) }] as never });
    expect(isRc(await rejection(tpm.run(Unseal, { itemHandle: item }, {}, { sessions: [session] })), TPM_RC.PCR_CHANGED)).toBe(true);
    await tpm.flush(session).catch(() => undefined);

    const sealed2 = await seal(tpm, srk, Uint8Array.of(8), { pcrs: sel });
    const calc = new PolicyCalculator(SHA256).policyPCR({ pcrs: sel, values: await readPcrs(t, sel) });
    expect(sealed2.publicArea.authPolicy).toEqual(calc.digest);
    const item2 = await load(tpm, srk, { privateBlob: sealed2.privateArea, publicArea: sealed2.publicArea });
    const s2 = await tpm.startAuthSession({ type: 'policy', symmetric: { algorithm: TPM_ALG.NULL } as never });
    await tpm.run(PolicyPCR, { policySession: s2.handle }, { pcrDigest: EMPTY, pcrs: sel });
    const r = await tpm.run(Unseal, { itemHandle: item2 }, {}, { sessions: [s2] });
    expect(r.params.outData).toEqual(Uint8Array.of(8));
  });

  it('PolicyAuthorize with a VerifySignature ticket: a secret sealed to an authority unseals under each PCR policy it signs', async () => {
    const env = await startedEngine();
    const { tpm, t } = env;
    const srk = await createPrimary(tpm, TPM_RH.OWNER, eccSrkTemplate());
    const authority = await createPrimary(tpm, TPM_RH.OWNER, eccSigningTemplate());
    const policyRef = new TextEncoder().encode('release');
    const secret = Uint8Array.of(0x5e, 0xc7);
    const authPolicy = new PolicyCalculator(SHA256).policyAuthorize({ keySign: authority.name, policyRef }).digest;
    const item = await load(tpm, srk, await create(tpm, srk, sealedTemplate(authPolicy), { sensitiveData: secret }));
    const sel = [pcrSelection(SHA256, [10])];
    const approve = async () => {
      const approvedPolicy = new PolicyCalculator(SHA256).policyPCR({ pcrs: sel, values: await readPcrs(t, sel) }).digest;
      const aHash = sha256(approvedPolicy, policyRef);
      const checkTicket = await verifySignatureOnTpm(tpm, authority, aHash, await sign(tpm, authority, aHash));
      expect(checkTicket.hierarchy).toBe(TPM_RH.OWNER);
      return { approvedPolicy, checkTicket };
    };
    const unsealWith = (a: { approvedPolicy: Uint8Array; checkTicket: TPMT_TK_VERIFIED }) =>
      tpm.withSession({ type: 'policy', symmetric: { algorithm: TPM_ALG.NULL } as never }, async (s) => {
        await tpm.run(PolicyPCR, { policySession: s.handle }, { pcrDigest: EMPTY, pcrs: sel });
        await tpm.run(PolicyAuthorize, { policySession: s.handle }, { ...a, policyRef, keySign: authority.name });
        return (await tpm.run(Unseal, { itemHandle: item }, {}, { sessions: [s] })).params.outData;
      });
    const first = await approve();
    expect(await unsealWith(first)).toEqual(secret);
    await runCommand(t, PCR_Extend, { pcrHandle: 10 }, { digests: [{ hashAlg: SHA256, digest: sha256(Uint8Array.of(7)) }] as never });
    // The old approval no longer matches the PCRs; a new one from the same authority does.
    expect(isRc(await rejection(unsealWith(first)), TPM_RC.VALUE)).toBe(true);
    expect(await unsealWith(await approve())).toEqual(secret);
    expect(env.engine.volatile.sessions.count).toBe(0);
  });

  it('cpHashA of PolicySecret binds the session to one command: Unseal of the named object only', async () => {
    const env = await startedEngine();
    const { tpm } = env;
    const srk = await createPrimary(tpm, TPM_RH.OWNER, eccSrkTemplate());
    // cpHashA does not enter the digest (Part 3 §23.4): both objects have the same policy.
    const authPolicy = new PolicyCalculator(SHA256).policySecret({ authName: handleName(TPM_RH.OWNER) }).digest;
    const a = await load(tpm, srk, await create(tpm, srk, sealedTemplate(authPolicy), { sensitiveData: Uint8Array.of(0xa) }));
    const b = await load(tpm, srk, await create(tpm, srk, sealedTemplate(authPolicy), { sensitiveData: Uint8Array.of(0xb) }));
    // The cpHash of Unseal(a): H(CC_Unseal ‖ Name(a)), no parameters (Part 1 §18.7), by the core and by hand.
    const cp = cpHash(SHA256, TPM_CC.Unseal, [a.name], EMPTY);
    expect(cp).toEqual(sha256(u32(TPM_CC.Unseal), a.name));
    const unsealWith = (item: typeof a) =>
      tpm.withSession({ type: 'policy', symmetric: { algorithm: TPM_ALG.NULL } as never }, async (s) => {
        await tpm.run(PolicySecret, { authHandle: TPM_RH.OWNER, policySession: s.handle }, { nonceTPM: s.nonceTPM, cpHashA: cp, policyRef: EMPTY, expiration: 0 });
        return (await tpm.run(Unseal, { itemHandle: item }, {}, { sessions: [s] })).params.outData;
      });
    expect(await unsealWith(a)).toEqual(Uint8Array.of(0xa));
    expect(isRc(await rejection(unsealWith(b)), TPM_RC.POLICY_FAIL)).toBe(true);
  });

  it('PolicySigned (a node:crypto key) with PolicyCommandCode authorizes Unseal; its ticket does so again in a new session until it expires', async () => {
    let clock = 0;
    const env = await startedEngine(new TpmEngine({ now: () => clock }));
    const { tpm } = env;
    const srk = await createPrimary(tpm, TPM_RH.OWNER, eccSrkTemplate());
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const signer = await loadExternal(tpm, externalPublic('ecc256', pair.publicKey));
    const secret = Uint8Array.of(0x51);
    const authPolicy = new PolicyCalculator(SHA256).policySigned({ authName: signer.name }).policyCommandCode({ code: TPM_CC.Unseal }).digest;
    const item = await load(tpm, srk, await create(tpm, srk, sealedTemplate(authPolicy), { sensitiveData: secret }));
    const open = { type: 'policy', symmetric: { algorithm: TPM_ALG.NULL } } as const;

    const ticket = await tpm.withSession(open as never, async (s) => {
      // Not bound to this session's nonce, valid 30 s, with a ticket (negative expiration).
      const message = Buffer.concat([u32(-30 >>> 0)]);
      const raw = nodeSign('sha256', message, { key: pair.privateKey, dsaEncoding: 'ieee-p1363' });
      const auth = { sigAlg: TPM_ALG.ECDSA, signature: { hash: SHA256, signatureR: new Uint8Array(raw.subarray(0, 32)), signatureS: new Uint8Array(raw.subarray(32)) } } as TPMT_SIGNATURE;
      const r = await tpm.run(PolicySigned, { authObject: signer, policySession: s.handle }, { nonceTPM: EMPTY, cpHashA: EMPTY, policyRef: EMPTY, expiration: -30, auth });
      await tpm.run(PolicyCommandCode, { policySession: s.handle }, { code: TPM_CC.Unseal });
      expect((await tpm.run(Unseal, { itemHandle: item }, {}, { sessions: [s] })).params.outData).toEqual(secret);
      // Without a nonce the timeout is absolute Time and the ticket expires on TPM Reset (the top bit).
      expect(r.params.timeout[0]! & 0x80).toBe(0x80);
      return r.params;
    });
    const withTicket = () =>
      tpm.withSession(open as never, async (s) => {
        await tpm.run(PolicyTicket, { policySession: s.handle }, { timeout: ticket.timeout, cpHashA: EMPTY, policyRef: EMPTY, authName: signer.name, ticket: ticket.policyTicket });
        await tpm.run(PolicyCommandCode, { policySession: s.handle }, { code: TPM_CC.Unseal });
        return (await tpm.run(Unseal, { itemHandle: item }, {}, { sessions: [s] })).params.outData;
      });
    expect(await withTicket()).toEqual(secret);
    clock += 31_000;
    expect(isRc(await rejection(withTicket()), TPM_RC.EXPIRED)).toBe(true);
  });
});

// ---------------------------------------------------------------------------

describe('simulator verifySignature', () => {
  const digest = sha256(Uint8Array.of(1, 2, 3));
  it('HMAC signatures: the right key verifies, another key or hash does not', () => {
    const secret = new Uint8Array(randomBytes(32));
    const pub = hmacKeyTemplate();
    const mac = new Uint8Array(createHmac('sha256', secret).update(digest).digest());
    const sig = { sigAlg: TPM_ALG.HMAC, signature: { hashAlg: SHA256, digest: mac } } as TPMT_SIGNATURE;
    expect(verifySignature({ publicArea: pub, key: createSecretKey(secret) }, digest, sig)).toBe(0);
    expect(verifySignature({ publicArea: pub, key: createSecretKey(new Uint8Array(32)) }, digest, sig)).toBe(TPM_RC.SIGNATURE);
    // A key loaded without its private part cannot check an HMAC (else the empty key would verify).
    expect(verifySignature({ publicArea: pub, key: createSecretKey(secret), publicOnly: true }, digest, sig)).toBe(TPM_RC.HANDLE);
    // A key without a scheme takes any hash; one with HMAC-SHA256 refuses an HMAC-SHA384 even when it is right.
    const mac384 = new Uint8Array(createHmac('sha384', secret).update(digest).digest());
    const sig384 = { sigAlg: TPM_ALG.HMAC, signature: { hashAlg: TPM_ALG.SHA384, digest: mac384 } } as TPMT_SIGNATURE;
    const anyScheme = { ...pub, parameters: { scheme: { scheme: TPM_ALG.NULL } } } as TPMT_PUBLIC;
    expect(verifySignature({ publicArea: anyScheme, key: createSecretKey(secret) }, digest, sig384)).toBe(0);
    expect(verifySignature({ publicArea: pub, key: createSecretKey(secret) }, digest, sig384)).toBe(TPM_RC.SIGNATURE);
    expect(verifySignature({ publicArea: pub, key: createSecretKey(secret) }, digest, { sigAlg: TPM_ALG.HMAC, signature: { hashAlg: TPM_ALG.SHA384, digest: mac } } as TPMT_SIGNATURE)).toBe(TPM_RC.SIGNATURE);
    expect(verifySignature({ publicArea: pub, key: createSecretKey(secret) }, digest, { sigAlg: TPM_ALG.ECDSA, signature: { hash: SHA256, signatureR: mac, signatureS: mac } } as TPMT_SIGNATURE)).toBe(TPM_RC.SCHEME);
  });

  it('RSA-PSS with any salt length node:crypto chooses; RSASSA; wrong key type schemes are TPM_RC_SCHEME', () => {
    const pair = rsaPair();
    const pub = externalPublic('rsa', pair.publicKey);
    const msg = Uint8Array.of(1, 2, 3);
    for (const saltLength of [0, 20, 32, 222]) {
      const sig = new Uint8Array(nodeSign('sha256', msg, { key: pair.privateKey, padding: cryptoConstants.RSA_PKCS1_PSS_PADDING, saltLength }));
      expect([saltLength, verifySignature({ publicArea: pub, key: pair.publicKey }, digest, { sigAlg: TPM_ALG.RSAPSS, signature: { hash: SHA256, sig } } as TPMT_SIGNATURE)]).toEqual([saltLength, 0]);
      expect(verifySignature({ publicArea: pub, key: pair.publicKey }, sha256(digest), { sigAlg: TPM_ALG.RSAPSS, signature: { hash: SHA256, sig } } as TPMT_SIGNATURE)).toBe(TPM_RC.SIGNATURE);
    }
    const ssa = new Uint8Array(nodeSign('sha256', msg, pair.privateKey));
    expect(verifySignature({ publicArea: pub, key: pair.publicKey }, digest, { sigAlg: TPM_ALG.RSASSA, signature: { hash: SHA256, sig: ssa } } as TPMT_SIGNATURE)).toBe(0);
    // The same bytes as PSS do not verify; a short signature is not genuine; ECDSA on an RSA key is a scheme error.
    expect(verifySignature({ publicArea: pub, key: pair.publicKey }, digest, { sigAlg: TPM_ALG.RSAPSS, signature: { hash: SHA256, sig: ssa } } as TPMT_SIGNATURE)).toBe(TPM_RC.SIGNATURE);
    expect(verifySignature({ publicArea: pub, key: pair.publicKey }, digest, { sigAlg: TPM_ALG.RSASSA, signature: { hash: SHA256, sig: ssa.subarray(1) } } as TPMT_SIGNATURE)).toBe(TPM_RC.SIGNATURE);
    expect(verifySignature({ publicArea: pub, key: pair.publicKey }, digest, { sigAlg: TPM_ALG.ECDSA, signature: { hash: SHA256, signatureR: digest, signatureS: digest } } as TPMT_SIGNATURE)).toBe(TPM_RC.SCHEME);
  });

  it('ECDSA: node:crypto signatures verify over the digest; r or s out of range, or another digest, do not', () => {
    // Digests longer than the order are truncated to its bits (SHA-512 on P-256), shorter ones used whole (SHA-256 on P-384).
    for (const [curve, node, size] of [['P-256', 'sha256', 32], ['P-384', 'sha384', 48], ['P-256', 'sha512', 32], ['P-384', 'sha256', 48]] as const) {
      const pair = generateKeyPairSync('ec', { namedCurve: curve });
      const pub = externalPublic(curve === 'P-256' ? 'ecc256' : 'ecc384', pair.publicKey);
      for (let i = 0; i < 5; i++) {
        const msg = randomBytes(40);
        const d = new Uint8Array(createHash(node).update(msg).digest());
        const raw = nodeSign(node, msg, { key: pair.privateKey, dsaEncoding: 'ieee-p1363' });
        const sig = (r: Uint8Array, s: Uint8Array) => ({ sigAlg: TPM_ALG.ECDSA, signature: { hash: TPM_ALG.SHA256, signatureR: r, signatureS: s } }) as TPMT_SIGNATURE;
        const r = new Uint8Array(raw.subarray(0, size));
        const s = new Uint8Array(raw.subarray(size));
        expect(verifySignature({ publicArea: pub, key: pair.publicKey }, d, sig(r, s))).toBe(0);
        expect(verifySignature({ publicArea: pub, key: pair.publicKey }, sha256(d), sig(r, s))).toBe(TPM_RC.SIGNATURE);
        expect(verifySignature({ publicArea: pub, key: pair.publicKey }, d, sig(s, r))).toBe(TPM_RC.SIGNATURE);
        expect(verifySignature({ publicArea: pub, key: pair.publicKey }, d, sig(new Uint8Array(size), s))).toBe(TPM_RC.SIGNATURE);
        expect(verifySignature({ publicArea: pub, key: pair.publicKey }, d, sig(r, new Uint8Array(size).fill(0xff)))).toBe(TPM_RC.SIGNATURE);
      }
    }
  });
});

// ---------------------------------------------------------------------------

describeWithSwtpm('simulator policy digests agree with swtpm', () => {
  const tpms = swtpmAndSimulator();
  let swt: Transport;
  let swTpm: Tpm;
  let env: Env;
  beforeAll(async () => {
    ({ probe: swt, tpm: swTpm } = tpms.swtpm);
    env = await startedEngine();
  });

  it('the same trial sequence gives the same digest after every command, in SHA-256 and SHA-384', async () => {
    const index = 0x01500030;
    const pub = nvPublic(index, {}, 8);
    await defineAndWrite(swt, pub, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8));
    await defineAndWrite(env.t, pub, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8));
    const authIndex = 0x01500031;
    const authPub = nvPublic(authIndex, {}, 34);
    const approved = new PolicyCalculator(SHA256).policyCommandCode({ code: TPM_CC.NV_Read });
    await defineAndWrite(swt, authPub, encode(TPMT_HA, approved.toHa()));
    await defineAndWrite(env.t, authPub, encode(TPMT_HA, approved.toHa()));
    const ecc = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const swKey = await loadExternal(swTpm, externalPublic('ecc256', ecc.publicKey));
    const simKey = await loadExternal(env.tpm, externalPublic('ecc256', ecc.publicKey));
    expect(swKey.name).toEqual(simKey.name);
    const sel = [pcrSelection(SHA256, [0, 1, 2, 23]), pcrSelection(TPM_ALG.SHA1, [4])];
    const x = sha256(Uint8Array.of(0x42));

    for (const alg of [SHA256, TPM_ALG.SHA384]) {
      const swSession = await swTpm.startAuthSession({ type: 'trial', hashAlg: alg, symmetric: { algorithm: TPM_ALG.NULL } as never });
      const simH = await startSession(env, 'trial', alg);
      const size = alg === SHA256 ? 32 : 48;
      const d = new Uint8Array(size).fill(7);
      type Step = [string, (t: Transport, h: number, key: number) => Promise<unknown>];
      const steps: Step[] = [
        ['PolicyPCR empty digest', (t, h) => runCommand(t, PolicyPCR, { policySession: h }, { pcrDigest: EMPTY, pcrs: sel })],
        ['PolicyPCR given digest', (t, h) => runCommand(t, PolicyPCR, { policySession: h }, { pcrDigest: d, pcrs: [pcrSelection(SHA256, [16])] })],
        ['PolicyCommandCode', (t, h) => runCommand(t, PolicyCommandCode, { policySession: h }, { code: TPM_CC.NV_Read })],
        ['PolicyAuthValue', (t, h) => runCommand(t, PolicyAuthValue, { policySession: h }, {})],
        ['PolicyPassword', (t, h) => runCommand(t, PolicyPassword, { policySession: h }, {})],
        ['PolicySecret owner', (t, h) => runCommand(t, PolicySecret, { authHandle: TPM_RH.OWNER, policySession: h }, { nonceTPM: EMPTY, cpHashA: EMPTY, policyRef: Uint8Array.of(5), expiration: 0 })],
        ['PolicySecret NV index', (t, h) => runCommand(t, PolicySecret, { authHandle: index, policySession: h }, { nonceTPM: EMPTY, cpHashA: EMPTY, policyRef: EMPTY, expiration: 0 })],
        ['PolicySigned', (t, h, key) => runCommand(t, PolicySigned, { authObject: key, policySession: h }, { nonceTPM: EMPTY, cpHashA: EMPTY, policyRef: Uint8Array.of(1), expiration: 0, auth: { sigAlg: TPM_ALG.ECDSA, signature: { hash: SHA256, signatureR: new Uint8Array(32), signatureS: new Uint8Array(32) } } as never })],
        ['PolicyLocality', (t, h) => runCommand(t, PolicyLocality, { policySession: h }, { locality: { TPM_LOC_ONE: true, TPM_LOC_TWO: true } as never })],
        ['PolicyNV', (t, h) => runCommand(t, PolicyNV, { authHandle: TPM_RH.OWNER, nvIndex: index, policySession: h }, { operandB: Uint8Array.of(3, 4), offset: 2, operation: TPM_EO.SIGNED_LE })],
        ['PolicyCounterTimer', (t, h) => runCommand(t, PolicyCounterTimer, { policySession: h }, { operandB: u32(1), offset: 16, operation: TPM_EO.UNSIGNED_GT })],
        ['PolicyNvWritten', (t, h) => runCommand(t, PolicyNvWritten, { policySession: h }, { writtenSet: 0 })],
        ['PolicyPhysicalPresence', (t, h) => runCommand(t, PolicyPhysicalPresence, { policySession: h }, {})],
        ['PolicyCpHash', (t, h) => runCommand(t, PolicyCpHash, { policySession: h }, { cpHashA: d })],
        ['PolicyOR', (t, h) => runCommand(t, PolicyOR, { policySession: h }, { pHashList: [d, x, x] })],
        ['PolicyRestart', (t, h) => runCommand(t, PolicyRestart, { sessionHandle: h }, {})],
        ['PolicyNameHash', (t, h) => runCommand(t, PolicyNameHash, { policySession: h }, { nameHash: d })],
        ['PolicyRestart', (t, h) => runCommand(t, PolicyRestart, { sessionHandle: h }, {})],
        ['PolicyTemplate', (t, h) => runCommand(t, PolicyTemplate, { policySession: h }, { templateHash: d })],
        ['PolicyRestart', (t, h) => runCommand(t, PolicyRestart, { sessionHandle: h }, {})],
        ['PolicyDuplicationSelect', (t, h) => runCommand(t, PolicyDuplicationSelect, { policySession: h }, { objectName: Uint8Array.of(0, 0x0b, ...x), newParentName: Uint8Array.of(0, 0x0b, ...x), includeObject: 1 })],
        ['PolicyAuthorize', (t, h) => runCommand(t, PolicyAuthorize, { policySession: h }, { approvedPolicy: d, policyRef: Uint8Array.of(2), keySign: Uint8Array.of(0, 0x0c, ...new Uint8Array(48)), checkTicket: { tag: TPM_ST.VERIFIED, hierarchy: TPM_RH.NULL, digest: EMPTY } as never })],
        ['PolicyAuthorizeNV', (t, h) => runCommand(t, PolicyAuthorizeNV, { authHandle: TPM_RH.OWNER, nvIndex: authIndex, policySession: h }, {})],
      ];
      for (const [name, step] of steps) {
        const a = await rc(step(swt, swSession.handle, swKey.handle));
        const b = await rc(step(env.t, simH, simKey.handle));
        expect([alg, name, b.toString(16)]).toEqual([alg, name, a.toString(16)]);
        const swDigest = await digestOf(swt, swSession.handle);
        const simDigest = await digestOf(env.t, simH);
        expect([alg, name, hex(simDigest)]).toEqual([alg, name, hex(swDigest)]);
      }
      await swTpm.flush(swSession);
      await endSession(env, simH);
    }
  }, 60_000);

  it('response codes of refused policy commands in real sessions agree with swtpm', async () => {
    const swSession = await swTpm.startAuthSession({ type: 'policy', symmetric: { algorithm: TPM_ALG.NULL } as never });
    const simH = await startSession(env, 'policy');
    const x = sha256(Uint8Array.of(0x42));
    const noOwnerRead = nvPublic(0x01500032, { OWNERREAD: false }, 4);
    const unwritten = nvPublic(0x01500033, {}, 4);
    for (const t of [swt, env.t]) {
      await defineAndWrite(t, noOwnerRead, Uint8Array.of(1, 2, 3, 4));
      await defineAndWrite(t, unwritten);
    }
    const policyNV = (t: Transport, h: number, authHandle: number, nvIndex: number, operandB: Uint8Array, offset: number, operation: number) =>
      runCommand(t, PolicyNV, { authHandle, nvIndex, policySession: h }, { operandB, offset, operation: operation as never });
    type Step = [string, (t: Transport, h: number) => Promise<unknown>];
    const steps: Step[] = [
      ['PolicyOR not listed', (t, h) => runCommand(t, PolicyOR, { policySession: h }, { pHashList: [x, x] })],
      ['PolicyOR one branch', (t, h) => runCommand(t, PolicyOR, { policySession: h }, { pHashList: [x] })],
      ['PolicyPCR wrong digest', (t, h) => runCommand(t, PolicyPCR, { policySession: h }, { pcrDigest: x, pcrs: [pcrSelection(SHA256, [1])] })],
      ['PolicyCpHash short', (t, h) => runCommand(t, PolicyCpHash, { policySession: h }, { cpHashA: x.subarray(0, 20) })],
      ['PolicySecret wrong nonce', (t, h) => runCommand(t, PolicySecret, { authHandle: TPM_RH.OWNER, policySession: h }, { nonceTPM: x, cpHashA: EMPTY, policyRef: EMPTY, expiration: 0 })],
      ['PolicyLocality zero', (t, h) => runCommand(t, PolicyLocality, { policySession: h }, { locality: {} as never })],
      ['PolicyLocality extended 64', (t, h) => runCommand(t, PolicyLocality, { policySession: h }, { locality: { Extended: 2 } as never })],
      ['PolicyLocality extended 96 after 64', (t, h) => runCommand(t, PolicyLocality, { policySession: h }, { locality: { Extended: 3 } as never })],
      ['PolicyLocality normal after extended', (t, h) => runCommand(t, PolicyLocality, { policySession: h }, { locality: { TPM_LOC_ZERO: true } as never })],
      ['PolicyLocality extended 64 again', (t, h) => runCommand(t, PolicyLocality, { policySession: h }, { locality: { Extended: 2 } as never })],
      ['PolicyCounterTimer range', (t, h) => runCommand(t, PolicyCounterTimer, { policySession: h }, { operandB: Uint8Array.of(1, 2), offset: 24, operation: TPM_EO.EQ })],
      ['PolicyNV owner without OWNERREAD', (t, h) => policyNV(t, h, TPM_RH.OWNER, 0x01500032, Uint8Array.of(1), 0, TPM_EO.EQ)],
      ['PolicyNV unwritten', (t, h) => policyNV(t, h, 0x01500033, 0x01500033, Uint8Array.of(1), 0, TPM_EO.EQ)],
      ['PolicyNV offset past the end', (t, h) => policyNV(t, h, 0x01500032, 0x01500032, Uint8Array.of(1), 5, TPM_EO.EQ)],
      ['PolicyNV operand past the end', (t, h) => policyNV(t, h, 0x01500032, 0x01500032, Uint8Array.of(3, 4, 5), 2, TPM_EO.EQ)],
      ['PolicyNV condition false', (t, h) => policyNV(t, h, 0x01500032, 0x01500032, Uint8Array.of(3, 4), 2, TPM_EO.UNSIGNED_LT)],
      ['PolicyNV condition true', (t, h) => policyNV(t, h, 0x01500032, 0x01500032, Uint8Array.of(3, 4), 2, TPM_EO.UNSIGNED_LE)],
      ['PolicyCommandCode', (t, h) => runCommand(t, PolicyCommandCode, { policySession: h }, { code: TPM_CC.NV_Read })],
      ['PolicyCommandCode conflict', (t, h) => runCommand(t, PolicyCommandCode, { policySession: h }, { code: TPM_CC.NV_Write })],
      ['PolicyNvWritten', (t, h) => runCommand(t, PolicyNvWritten, { policySession: h }, { writtenSet: 1 })],
      ['PolicyNvWritten conflict', (t, h) => runCommand(t, PolicyNvWritten, { policySession: h }, { writtenSet: 0 })],
      ['PolicyAuthorize wrong approved', (t, h) => runCommand(t, PolicyAuthorize, { policySession: h }, { approvedPolicy: x, policyRef: EMPTY, keySign: Uint8Array.of(0, 0x0b, ...x), checkTicket: { tag: TPM_ST.VERIFIED, hierarchy: TPM_RH.OWNER, digest: x } as never })],
      ['PolicyTicket bad timeout size', (t, h) => runCommand(t, PolicyTicket, { policySession: h }, { timeout: Uint8Array.of(1), cpHashA: EMPTY, policyRef: EMPTY, authName: handleName(TPM_RH.OWNER), ticket: { tag: TPM_ST.AUTH_SECRET, hierarchy: TPM_RH.OWNER, digest: x } as never })],
    ];
    for (const [name, step] of steps) {
      const a = await rc(step(swt, swSession.handle));
      const b = await rc(step(env.t, simH));
      expect([name, b.toString(16)]).toEqual([name, a.toString(16)]);
      expect([name, hex(await digestOf(env.t, simH))]).toEqual([name, hex(await digestOf(swt, swSession.handle))]);
    }
    await swTpm.flush(swSession);
    await endSession(env, simH);
    // An HMAC session is no policy session.
    const swHmac = await swTpm.startAuthSession({ type: 'hmac', symmetric: { algorithm: TPM_ALG.NULL } as never });
    const simHmac = await env.tpm.startAuthSession({ type: 'hmac', symmetric: { algorithm: TPM_ALG.NULL } as never });
    // Hand-made frames: the client's encoder refuses an HMAC handle where a TPMI_SH_POLICY goes.
    const raw = async (t: Transport, code: number, h: number): Promise<number> => {
      const r = await t.send(Uint8Array.of(0x80, 0x01, 0, 0, 0, 14, ...u32(code), ...u32(h)));
      return new DataView(r.buffer, r.byteOffset, r.byteLength).getUint32(6);
    };
    const cases: [string, number, number, number][] = [
      ['PolicyGetDigest on an HMAC session', TPM_CC.PolicyGetDigest, swHmac.handle, simHmac.handle],
      ['PolicyRestart on an HMAC session', TPM_CC.PolicyRestart, swHmac.handle, simHmac.handle],
    ];
    for (const [name, code, swHandle, simHandle] of cases) {
      const a = await raw(swt, code, swHandle);
      const b = await raw(env.t, code, simHandle);
      expect([name, b.toString(16)]).toEqual([name, a.toString(16)]);
      expect(b).not.toBe(0);
    }
    await swTpm.flush(swHmac);
    await env.tpm.flush(simHmac);
  }, 60_000);

  it('PolicySigned and PolicyTicket: accepted and refused alike by swtpm, with equal digests', async () => {
    const ecc = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const swKey = await loadExternal(swTpm, externalPublic('ecc256', ecc.publicKey));
    const simKey = await loadExternal(env.tpm, externalPublic('ecc256', ecc.publicKey));
    const swS = await swTpm.startAuthSession({ type: 'policy', symmetric: { algorithm: TPM_ALG.NULL } as never });
    const simS = await env.tpm.startAuthSession({ type: 'policy', symmetric: { algorithm: TPM_ALG.NULL } as never });
    const swTrial = await swTpm.startAuthSession({ type: 'trial', symmetric: { algorithm: TPM_ALG.NULL } as never });
    const simTrial = await env.tpm.startAuthSession({ type: 'trial', symmetric: { algorithm: TPM_ALG.NULL } as never });
    const policyRef = Uint8Array.of(0x33);
    const signed = (nonceTPM: Uint8Array, expiration: number, cpHashA: Uint8Array = EMPTY): TPMT_SIGNATURE => {
      const raw = nodeSign('sha256', Buffer.concat([nonceTPM, u32(expiration >>> 0), cpHashA, policyRef]), { key: ecc.privateKey, dsaEncoding: 'ieee-p1363' });
      return { sigAlg: TPM_ALG.ECDSA, signature: { hash: SHA256, signatureR: new Uint8Array(raw.subarray(0, 32)), signatureS: new Uint8Array(raw.subarray(32)) } } as TPMT_SIGNATURE;
    };
    const run = (t: Transport, key: number, h: number, p: { nonceTPM: Uint8Array; expiration: number; cpHashA?: Uint8Array; auth: TPMT_SIGNATURE }) =>
      runCommand(t, PolicySigned, { authObject: key, policySession: h }, { nonceTPM: p.nonceTPM, cpHashA: p.cpHashA ?? EMPTY, policyRef, expiration: p.expiration, auth: p.auth });
    type Case = [string, (nonce: Uint8Array) => { nonceTPM: Uint8Array; expiration: number; cpHashA?: Uint8Array; auth: TPMT_SIGNATURE }];
    const rsaSig = { sigAlg: TPM_ALG.RSASSA, signature: { hash: SHA256, sig: new Uint8Array(256) } } as TPMT_SIGNATURE;
    const cases: Case[] = [
      ['signature over another nonce', (n) => ({ nonceTPM: n, expiration: 0, auth: signed(new Uint8Array(n.length), 0) })],
      ['a nonce not the session\'s', (n) => ({ nonceTPM: n.map((b) => b ^ 1), expiration: 0, auth: signed(n, 0) })],
      ['cpHashA of the wrong size', (n) => ({ nonceTPM: n, expiration: 0, cpHashA: new Uint8Array(20), auth: signed(n, 0, new Uint8Array(20)) })],
      ['an RSA signature from an ECC key', (n) => ({ nonceTPM: n, expiration: 0, auth: rsaSig })],
      ['genuine, with a ticket', (n) => ({ nonceTPM: n, expiration: -100, auth: signed(n, -100) })],
    ];
    const tickets: { timeout: Uint8Array; policyTicket: TPMT_TK_AUTH }[] = [];
    for (const [name, make] of cases) {
      let swOut: unknown;
      let simOut: unknown;
      const a = await rc(run(swt, swKey.handle, swS.handle, make(swS.nonceTPM)).then((r) => (swOut = r.params)));
      const b = await rc(run(env.t, simKey.handle, simS.handle, make(simS.nonceTPM)).then((r) => (simOut = r.params)));
      expect([name, b.toString(16)]).toEqual([name, a.toString(16)]);
      expect([name, hex(await digestOf(env.t, simS.handle))]).toEqual([name, hex(await digestOf(swt, swS.handle))]);
      if (swOut !== undefined) tickets.push(swOut as never, simOut as never);
    }
    // Both give an 8-byte timeout and an AUTH_SIGNED ticket in the key's hierarchy (NULL for LoadExternal).
    expect(tickets.length).toBe(2);
    for (const tk of tickets) {
      expect(tk.timeout.length).toBe(8);
      expect(tk.policyTicket).toMatchObject({ tag: TPM_ST.AUTH_SIGNED, hierarchy: TPM_RH.NULL });
    }
    // PolicyTicket: refused in a trial session, a forged ticket refused, the genuine one accepted by its own TPM.
    const ticketParams = (tk: (typeof tickets)[number]) => ({ timeout: tk.timeout, cpHashA: EMPTY, policyRef, authName: swKey.name, ticket: tk.policyTicket });
    const forge = (tk: (typeof tickets)[number]) => ({ ...ticketParams(tk), ticket: { ...tk.policyTicket, digest: tk.policyTicket.digest.map((x) => x ^ 0x80) } });
    const pairs: [string, (t: Transport, h: number, tk: (typeof tickets)[number]) => Promise<unknown>, number, number][] = [
      ['PolicyTicket in a trial session', (t, h, tk) => runCommand(t, PolicyTicket, { policySession: h }, ticketParams(tk)), swTrial.handle, simTrial.handle],
      ['PolicyTicket forged', (t, h, tk) => runCommand(t, PolicyTicket, { policySession: h }, forge(tk)), swS.handle, simS.handle],
      ['PolicyTicket genuine', (t, h, tk) => runCommand(t, PolicyTicket, { policySession: h }, ticketParams(tk)), swS.handle, simS.handle],
    ];
    for (const [name, step, swH, simH] of pairs) {
      const a = await rc(step(swt, swH, tickets[0]!));
      const b = await rc(step(env.t, simH, tickets[1]!));
      expect([name, b.toString(16)]).toEqual([name, a.toString(16)]);
      expect([name, hex(await digestOf(env.t, simS.handle))]).toEqual([name, hex(await digestOf(swt, swS.handle))]);
    }
    for (const x of [swS, swTrial]) await swTpm.flush(x);
    for (const x of [simS, simTrial]) await env.tpm.flush(x);
    await swTpm.flush(swKey);
    await env.tpm.flush(simKey);
  }, 60_000);
});

