/**
 * The simulator's authorization sessions (Part 1 §19, Part 3 §5.4, §11.1)
 * through our client: HMAC sessions on password-protected keys, bound and
 * salted sessions (RSA and ECC salt keys), parameter encryption both ways
 * (AES-CFB and XOR) with the secret absent from the wire, dictionary-attack
 * accounting (AUTH_FAIL / BAD_AUTH / LOCKOUT, persisted before the answer,
 * self-healing on the engine's clock), session limits, continueSession and
 * roles. Response codes of hand-framed bad sessions are compared with swtpm
 * (libtpms, the reference this simulator imitates).
 */
import { createHash, randomBytes, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Tpm, type AuthSession, type Authorization, type Entity } from '../../src/client/index.js';
import {
  Create,
  CreatePrimary,
  DictionaryAttackParameters,
  FlushContext,
  GetCapability,
  Load,
  ObjectChangeAuth,
  PolicyAuthValue,
  PolicyCommandCode,
  PolicyRestart,
  PolicySecret,
  Sign,
  StartAuthSession,
  Startup,
  Unseal,
} from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_CAP, TPM_ECC, TPM_PT, TPM_RH, TPM_RS_PW, TPM_SE, TPM_ST, TPM_SU } from '../../src/tpm/constants.js';
import { encodeParams, frameCommand } from '../../src/tpm/frame.js';
import { objectName } from '../../src/tpm/names.js';
import { updatePolicyAuthValue, updatePolicyCommandCode, zeroPolicy } from '../../src/tpm/policy.js';
import { isRc, TPM_RC, TpmError } from '../../src/tpm/rc.js';
import { runCommand } from '../../src/tpm/run.js';
import { publicKeyFromArea } from '../../src/tpm/secret.js';
import { eccSrkTemplate, rsaSrkTemplate } from '../../src/tpm/templates.js';
import { inProcessTransport, type SendOptions, type Transport } from '../../src/tpm/transport/index.js';
import { TPMA_OBJECT, TPMA_SESSION, type TPMT_PUBLIC, type TPMT_SIGNATURE, type TPMT_SYM_DEF } from '../../src/tpm/types/index.js';
import { TpmEngine } from '../../src/simulator/index.js';
import type { SimulatorState } from '../../src/simulator/state.js';
import { describeWithSwtpm } from '../support/swtpm.js';
import { tpmRejection } from '../support/probe.js';
import { swtpmAndSimulator } from '../support/fixture.js';

/** Records every exchange, so a test can look for a secret on the wire. */
class Probe implements Transport {
  readonly commands: Uint8Array[] = [];
  readonly responses: Uint8Array[] = [];
  readonly inner: Transport;
  constructor(inner: Transport) {
    this.inner = inner;
  }
  async send(command: Uint8Array, options?: SendOptions): Promise<Uint8Array> {
    this.commands.push(command.slice());
    const r = await this.inner.send(command, options);
    this.responses.push(r.slice());
    return r;
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const fresh = (n: number): Uint8Array => new Uint8Array(randomBytes(n));
const contains = (hay: Uint8Array, needle: Uint8Array): boolean => Buffer.from(hay).indexOf(Buffer.from(needle)) >= 0;
const NO_CREATION = { outsideInfo: new Uint8Array(0), creationPCR: [] };
const NULL_TICKET = { tag: TPM_ST.HASHCHECK, hierarchy: TPM_RH.NULL, digest: new Uint8Array(0) } as const;
const AES_128_CFB: TPMT_SYM_DEF = { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB };
const XOR_SHA256: TPMT_SYM_DEF = { algorithm: TPM_ALG.XOR, keyBits: TPM_ALG.SHA256 } as TPMT_SYM_DEF;

function ecdsaTemplate(attrs: Partial<Parameters<typeof TPMA_OBJECT.of>[0]> = {}): TPMT_PUBLIC {
  return {
    type: TPM_ALG.ECC,
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: TPMA_OBJECT.of({ fixedTPM: true, fixedParent: true, sensitiveDataOrigin: true, userWithAuth: true, sign: true, ...attrs }),
    authPolicy: new Uint8Array(0),
    parameters: { symmetric: { algorithm: TPM_ALG.NULL }, scheme: { scheme: TPM_ALG.ECDSA, details: { hashAlg: TPM_ALG.SHA256 } }, curveID: TPM_ECC.NIST_P256, kdf: { scheme: TPM_ALG.NULL } },
    unique: { x: new Uint8Array(0), y: new Uint8Array(0) },
  };
}

function sealedTemplate(): TPMT_PUBLIC {
  return {
    type: TPM_ALG.KEYEDHASH,
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: TPMA_OBJECT.of({ fixedTPM: true, fixedParent: true, userWithAuth: true, noDA: true }),
    authPolicy: new Uint8Array(0),
    parameters: { scheme: { scheme: TPM_ALG.NULL } },
    unique: new Uint8Array(0),
  };
}

function verifyEcdsa(pub: TPMT_PUBLIC, message: Uint8Array, sig: TPMT_SIGNATURE): boolean {
  if (sig.sigAlg !== TPM_ALG.ECDSA) return false;
  const pad = (b: Uint8Array): Buffer => Buffer.concat([Buffer.alloc(32 - b.length), Buffer.from(b)]);
  const der = Buffer.concat([pad(sig.signature.signatureR), pad(sig.signature.signatureS)]);
  return verify('sha256', message, { key: publicKeyFromArea(pub), dsaEncoding: 'ieee-p1363' }, der);
}


interface Fixture {
  engine: TpmEngine;
  tpm: Tpm;
  probe: Probe;
  srk: Entity;
  srkPublic: TPMT_PUBLIC;
  persisted: { count: number };
}

/** A started engine with an ECC storage primary; `clock` drives the engine's time. */
async function setUp(clock = { ms: 0 }): Promise<Fixture> {
  const persisted = { count: 0 };
  const engine = new TpmEngine({
    now: () => clock.ms,
    persist: async (_s: SimulatorState) => {
      persisted.count++;
    },
  });
  const probe = new Probe(inProcessTransport(engine));
  await runCommand(probe, Startup, {}, { startupType: TPM_SU.CLEAR });
  const tpm = new Tpm(probe);
  const p = await tpm.run(CreatePrimary, { primaryHandle: TPM_RH.OWNER }, { inSensitive: { userAuth: new Uint8Array(0), data: new Uint8Array(0) }, inPublic: eccSrkTemplate(), ...NO_CREATION });
  const srk: Entity = { handle: p.handles.objectHandle, name: p.params.name };
  return { engine, tpm, probe, srk, srkPublic: p.params.outPublic, persisted };
}

/** A signing key under the SRK with an authValue; DA-protected unless noDA. */
async function signingKey(f: Fixture, authValue: Uint8Array, attrs: Partial<Parameters<typeof TPMA_OBJECT.of>[0]> = {}): Promise<{ key: Entity; publicArea: TPMT_PUBLIC }> {
  const template = ecdsaTemplate(attrs);
  const c = await f.tpm.run(Create, { parentHandle: f.srk }, { inSensitive: { userAuth: authValue, data: new Uint8Array(0) }, inPublic: template, ...NO_CREATION });
  const l = await f.tpm.run(Load, { parentHandle: f.srk }, { inPrivate: c.params.outPrivate, inPublic: c.params.outPublic });
  return { key: { handle: l.handles.objectHandle, name: objectName(c.params.outPublic), authValue }, publicArea: c.params.outPublic };
}

async function signWith(f: Fixture, key: Entity, publicArea: TPMT_PUBLIC, sessions: readonly (Authorization | undefined)[]): Promise<void> {
  const message = fresh(16);
  const digest = new Uint8Array(createHash('sha256').update(message).digest());
  const r = await f.tpm.run(Sign, { keyHandle: key }, { digest, inScheme: { scheme: TPM_ALG.NULL }, validation: NULL_TICKET }, { sessions });
  expect(verifyEcdsa(publicArea, message, r.params.signature)).toBe(true);
}

async function sessionHandles(tpm: Tpm, first: number): Promise<number[]> {
  const r = await tpm.run(GetCapability, {}, { capability: TPM_CAP.HANDLES, property: first, propertyCount: 64 });
  const d = r.params.capabilityData;
  if (d.capability !== TPM_CAP.HANDLES) throw new Error('not a handle list');
  return [...d.data];
}

async function property(tpm: Tpm, pt: number): Promise<number> {
  const r = await tpm.run(GetCapability, {}, { capability: TPM_CAP.TPM_PROPERTIES, property: pt, propertyCount: 1 });
  const d = r.params.capabilityData;
  if (d.capability !== TPM_CAP.TPM_PROPERTIES || d.data[0]?.property !== pt) throw new Error('property missing');
  return d.data[0].value;
}

describe('simulator sessions: HMAC, bound, salted', () => {
  it('authorizes a password-protected key with an HMAC session; the nonces roll and nonceTPM is as long as nonceCaller', async () => {
    const f = await setUp();
    const { key, publicArea } = await signingKey(f, utf8('key-auth'), { noDA: true });
    const s = await f.tpm.startAuthSession({ nonceSize: 16 });
    expect(s.handle).toBe(0x02000000);
    expect(s.nonceTPM.length).toBe(16);
    const before = s.nonceTPM;
    await signWith(f, key, publicArea, [s]);
    expect(s.nonceTPM).not.toEqual(before);
    await signWith(f, key, publicArea, [s]);
    // Policy and trial sessions take handles from the policy range, in the same slot numbering.
    const p = await f.tpm.startAuthSession({ type: 'policy' });
    expect(p.handle).toBe(0x03000001);
    await p.flush();
    await s.flush();
    expect(await sessionHandles(f.tpm, 0x02000000)).toEqual([]);
  });

  it('sessions with SHA-1, SHA-384 and SHA-512 hashes: HMACs, session keys and parameter encryption follow the session hash', async () => {
    const f = await setUp();
    const { key, publicArea } = await signingKey(f, utf8('key-auth'), { noDA: true });
    for (const hashAlg of [TPM_ALG.SHA1, TPM_ALG.SHA384, TPM_ALG.SHA512]) {
      const s = await f.tpm.startAuthSession({ hashAlg, bind: key, salt: { key: f.srk, public: f.srkPublic } });
      expect(s.nonceTPM.length).toBe(hashAlg === TPM_ALG.SHA1 ? 20 : hashAlg === TPM_ALG.SHA384 ? 48 : 64);
      await signWith(f, key, publicArea, [s.use({ decrypt: true })]);
      await s.flush();
    }
  });

  for (const [saltName, template] of [
    ['RSA', rsaSrkTemplate()],
    ['ECC', eccSrkTemplate()],
  ] as const) {
    it(`bound and salted with an ${saltName} storage key: sign works; the session key is secret (a client with another salt fails)`, async () => {
      const f = await setUp();
      const saltKey = await f.tpm.run(CreatePrimary, { primaryHandle: TPM_RH.OWNER }, { inSensitive: { userAuth: new Uint8Array(0), data: new Uint8Array(0) }, inPublic: template, ...NO_CREATION });
      const salt = { key: { handle: saltKey.handles.objectHandle, name: saltKey.params.name }, public: saltKey.params.outPublic };
      await f.tpm.flush(f.srk.handle).catch(() => undefined);
      const f2: Fixture = { ...f, srk: salt.key };
      const { key, publicArea } = await signingKey(f2, utf8('bound-key'), { noDA: true });
      for (const options of [{ salt }, { salt, bind: key }, { bind: key }, { salt, bind: TPM_RH.OWNER }]) {
        const s = await f.tpm.startAuthSession(options);
        await signWith(f, key, publicArea, [s]);
        await signWith(f, key, publicArea, [s.use({ decrypt: true })]);
        await s.flush();
      }
      // A salt the TPM cannot decrypt: TPM_RC_VALUE on encryptedSalt (parameter 2).
      const bad = frameCommand(
        StartAuthSession,
        { tpmKey: salt.key.handle, bind: TPM_RH.NULL },
        encodeParams(StartAuthSession, { nonceCaller: fresh(32), encryptedSalt: fresh(saltName === 'RSA' ? 256 : 68), sessionType: TPM_SE.HMAC, symmetric: AES_128_CFB, authHash: TPM_ALG.SHA256 }),
      );
      const rc = new DataView((await f.engine.execute(bad)).buffer).getUint32(6);
      expect(rc).toBe(TPM_RC.VALUE | 0x040 | (2 << 8));
    });
  }

  it('a bound session used on its bind entity leaves the authValue out of the HMAC key, and on another entity puts it in', async () => {
    const f = await setUp();
    const a = await signingKey(f, utf8('auth-a'), { noDA: true });
    const b = await signingKey(f, utf8('auth-b'), { noDA: true });
    const s = await f.tpm.startAuthSession({ bind: a.key });
    await signWith(f, a.key, a.publicArea, [s]);
    await signWith(f, b.key, b.publicArea, [s]);
    // Wrong auth for the other entity fails; for the bind entity the session key alone proves it.
    const e = await tpmRejection(signWith(f, { ...b.key, authValue: utf8('nope') }, b.publicArea, [s]));
    expect(isRc(e, TPM_RC.BAD_AUTH)).toBe(true);
    expect(e.session).toBe(1);
    await s.flush();
  });
});

describe('simulator sessions: parameter encryption', () => {
  for (const [cipherName, symmetric] of [
    ['AES-128-CFB', AES_128_CFB],
    ['AES-256-CFB', { algorithm: TPM_ALG.AES, keyBits: 256, mode: TPM_ALG.CFB } as TPMT_SYM_DEF],
    ['XOR', XOR_SHA256],
  ] as const) {
    it(`${cipherName}: sealed data goes in encrypted (Create) and comes out encrypted (Unseal), never in clear on the wire`, async () => {
      const f = await setUp();
      const secret = fresh(24);
      const auth = utf8('seal-auth');
      const s = await f.tpm.startAuthSession({ symmetric, salt: { key: f.srk, public: f.srkPublic } });
      const c = await f.tpm.run(Create, { parentHandle: f.srk }, { inSensitive: { userAuth: auth, data: secret }, inPublic: sealedTemplate(), ...NO_CREATION }, { sessions: [s.use({ decrypt: true })] });
      expect(contains(f.probe.commands.at(-1)!, secret)).toBe(false);
      const l = await f.tpm.run(Load, { parentHandle: f.srk }, { inPrivate: c.params.outPrivate, inPublic: c.params.outPublic });
      const item: Entity = { handle: l.handles.objectHandle, name: objectName(c.params.outPublic), authValue: auth };
      const u = await f.tpm.run(Unseal, { itemHandle: item }, {}, { sessions: [s.use({ encrypt: true })] });
      expect(u.params.outData).toEqual(secret);
      expect(contains(f.probe.responses.at(-1)!, secret)).toBe(false);
      // Without encryption the secret is on the wire: the probe can see it.
      const plain = await f.tpm.run(Unseal, { itemHandle: item }, {}, { sessions: [s] });
      expect(plain.params.outData).toEqual(secret);
      expect(contains(f.probe.responses.at(-1)!, secret)).toBe(true);
      // A separate encrypt session next to a password authorization (its nonce is not in any HMAC of a password).
      const enc = await f.tpm.startAuthSession({ symmetric });
      const u2 = await f.tpm.run(Unseal, { itemHandle: item }, {}, { sessions: [undefined, enc.use({ encrypt: true })] });
      expect(u2.params.outData).toEqual(secret);
      expect(contains(f.probe.responses.at(-1)!, secret)).toBe(false);
      await enc.flush();
      await s.flush();
    });
  }
});

describe('simulator sessions: dictionary-attack protection', () => {
  it('wrong HMAC: AUTH_FAIL for a DA-protected key (failedTries persisted before the answer), BAD_AUTH for noDA; lockout after maxTries', async () => {
    const clock = { ms: 0 };
    const f = await setUp(clock);
    const da = f.engine.state.dictionaryAttack;
    expect(da.maxTries).toBe(3);
    const protectedKey = await signingKey(f, utf8('right'));
    const noDaKey = await signingKey(f, utf8('right'), { noDA: true });
    const s = await f.tpm.startAuthSession({});
    const e1 = await tpmRejection(signWith(f, { ...noDaKey.key, authValue: utf8('wrong') }, noDaKey.publicArea, [s]));
    expect(isRc(e1, TPM_RC.BAD_AUTH)).toBe(true);
    expect(da.failedTries).toBe(0);
    for (let i = 1; i <= 3; i++) {
      const saves = f.persisted.count;
      const e = await tpmRejection(signWith(f, { ...protectedKey.key, authValue: utf8('wrong') }, protectedKey.publicArea, [s]));
      expect(isRc(e, TPM_RC.AUTH_FAIL)).toBe(true);
      expect(e.session).toBe(1);
      expect(da.failedTries).toBe(i);
      expect(f.persisted.count).toBe(saves + 1);
    }
    expect(await property(f.tpm, TPM_PT.LOCKOUT_COUNTER)).toBe(3);
    // In lockout even the right authValue of a DA-protected entity is refused; noDA entities still work.
    const locked = await tpmRejection(signWith(f, protectedKey.key, protectedKey.publicArea, [s]));
    expect(isRc(locked, TPM_RC.LOCKOUT)).toBe(true);
    const pwLocked = await tpmRejection(signWith(f, protectedKey.key, protectedKey.publicArea, []));
    expect(isRc(pwLocked, TPM_RC.LOCKOUT)).toBe(true);
    await signWith(f, noDaKey.key, noDaKey.publicArea, [s]);
    // Self-healing: one failure forgotten per recoveryTime (1000 s) of TPM time.
    clock.ms += 1000 * 1000;
    await signWith(f, protectedKey.key, protectedKey.publicArea, [s]);
    expect(da.failedTries).toBe(2);
    await s.flush();
  });

  it('lockoutAuth: one wrong try disables it (TPM_RC_LOCKOUT with the right one) until lockoutRecovery has passed', async () => {
    const clock = { ms: 0 };
    const f = await setUp(clock);
    const params = { newMaxTries: 5, newRecoveryTime: 10, lockoutRecovery: 20 };
    const wrong = await tpmRejection(f.tpm.run(DictionaryAttackParameters, { lockHandle: { handle: TPM_RH.LOCKOUT, name: new Uint8Array(0), authValue: utf8('x') } }, params));
    expect(isRc(wrong, TPM_RC.AUTH_FAIL)).toBe(true);
    expect(f.engine.state.dictionaryAttack.lockoutAuthLocked).toBe(true);
    const locked = await tpmRejection(f.tpm.run(DictionaryAttackParameters, { lockHandle: TPM_RH.LOCKOUT }, params));
    expect(isRc(locked, TPM_RC.LOCKOUT)).toBe(true);
    clock.ms += 1000 * 1000; // the default lockoutRecovery is 1000 s
    await f.tpm.run(DictionaryAttackParameters, { lockHandle: TPM_RH.LOCKOUT }, params);
    expect(f.engine.state.dictionaryAttack.maxTries).toBe(5);
  });

  it('a wrong owner password is BAD_AUTH and counts nothing (every hierarchy but lockout is DA-exempt)', async () => {
    const f = await setUp();
    const e = await tpmRejection(
      f.tpm.run(CreatePrimary, { primaryHandle: { handle: TPM_RH.OWNER, name: new Uint8Array(0), authValue: utf8('x') } }, { inSensitive: { userAuth: new Uint8Array(0), data: new Uint8Array(0) }, inPublic: eccSrkTemplate(), ...NO_CREATION }),
    );
    expect(isRc(e, TPM_RC.BAD_AUTH)).toBe(true);
    expect(f.engine.state.dictionaryAttack.failedTries).toBe(0);
  });
});

describe('simulator sessions: limits, lifetimes, roles', () => {
  it('3 loaded sessions (SESSION_MEMORY), continueSession clear flushes after the command, HR_LOADED counts', async () => {
    const f = await setUp();
    const { key, publicArea } = await signingKey(f, utf8('k'), { noDA: true });
    const s: AuthSession[] = [];
    for (let i = 0; i < 3; i++) s.push(await f.tpm.startAuthSession({}));
    expect(await property(f.tpm, TPM_PT.HR_LOADED)).toBe(3);
    expect(await property(f.tpm, TPM_PT.HR_LOADED_AVAIL)).toBe(0);
    const full = await tpmRejection(f.tpm.startAuthSession({}));
    expect(isRc(full, TPM_RC.SESSION_MEMORY)).toBe(true);
    await signWith(f, key, publicArea, [s[1]!.use({ continueSession: false })]);
    expect(s[1]!.isOpen).toBe(false);
    expect(await sessionHandles(f.tpm, 0x02000000)).toEqual([s[0]!.handle, s[2]!.handle]);
    // The freed slot's handle is reused.
    const again = await f.tpm.startAuthSession({});
    expect(again.handle).toBe(s[1]!.handle);
    for (const x of [s[0]!, s[2]!, again]) await x.flush();
    expect(await property(f.tpm, TPM_PT.HR_ACTIVE)).toBe(0);
  });

  it('refuses bad session areas like libtpms: unloaded handle, same session twice, trial session, nonce sizes, no-cipher encryption', async () => {
    const f = await setUp();
    const { key } = await signingKey(f, utf8('k'), { noDA: true });
    const codes = await badSessionCodes((bytes) => f.engine.execute(bytes), key, f);
    expect(codes).toEqual(EXPECTED_BAD_SESSION_CODES);
  });

  it('roles: ADMIN by password is refused for an adminWithPolicy object (AUTH_TYPE), allowed without it; USER needs userWithAuth', async () => {
    const f = await setUp();
    const admin = await signingKey(f, utf8('a'), { noDA: true, adminWithPolicy: true });
    const e = await tpmRejection(f.tpm.run(ObjectChangeAuth, { objectHandle: admin.key, parentHandle: f.srk }, { newAuth: utf8('n') }));
    expect(isRc(e, TPM_RC.AUTH_TYPE)).toBe(true);
    const plain = await signingKey(f, utf8('b'), { noDA: true, userWithAuth: false });
    await f.tpm.flush(admin.key.handle);
    const s = await f.tpm.startAuthSession({});
    const changed = await f.tpm.run(ObjectChangeAuth, { objectHandle: plain.key, parentHandle: f.srk }, { newAuth: utf8('n') }, { sessions: [s] });
    expect(changed.params.outPrivate.length).toBeGreaterThan(0);
    const user = await tpmRejection(signWith(f, plain.key, plain.publicArea, [s]));
    expect(isRc(user, TPM_RC.AUTH_UNAVAILABLE)).toBe(true);
    await s.flush();
  });
});

describe('simulator sessions: policy sessions and roles', () => {
  it('a policy session satisfies USER role by digest alone; ADMIN role also needs PolicyCommandCode (POLICY_FAIL without)', async () => {
    const f = await setUp();
    // authPolicy = PolicyAuthValue: a policy session proves knowledge of the authValue through its HMAC.
    const authPolicy = updatePolicyAuthValue(TPM_ALG.SHA256, zeroPolicy(TPM_ALG.SHA256));
    const template = { ...ecdsaTemplate({ noDA: true, adminWithPolicy: true }), authPolicy };
    const auth = utf8('policy-key');
    const c = await f.tpm.run(Create, { parentHandle: f.srk }, { inSensitive: { userAuth: auth, data: new Uint8Array(0) }, inPublic: template, ...NO_CREATION });
    const l = await f.tpm.run(Load, { parentHandle: f.srk }, { inPrivate: c.params.outPrivate, inPublic: c.params.outPublic });
    const key: Entity = { handle: l.handles.objectHandle, name: objectName(c.params.outPublic), authValue: auth };
    const policy = await f.tpm.startAuthSession({ type: 'policy' });
    await f.tpm.run(PolicyAuthValue, { policySession: policy }, {});
    await signWith(f, key, c.params.outPublic, [policy]);
    // The session starts over after each use; without PolicyAuthValue its digest no longer matches.
    expect(isRc(await tpmRejection(signWith(f, key, c.params.outPublic, [policy])), TPM_RC.POLICY_FAIL)).toBe(true);
    await f.tpm.run(PolicyAuthValue, { policySession: policy }, {});
    // ObjectChangeAuth is an ADMIN-role command: the same digest is not enough without PolicyCommandCode.
    const admin = await tpmRejection(f.tpm.run(ObjectChangeAuth, { objectHandle: key, parentHandle: f.srk }, { newAuth: utf8('n') }, { sessions: [policy] }));
    expect(isRc(admin, TPM_RC.POLICY_FAIL)).toBe(true);
    expect(admin.session).toBe(1);
    // A wrong authValue in a PolicyAuthValue session is an HMAC failure (BAD_AUTH: the key is noDA).
    await f.tpm.run(PolicyRestart, { sessionHandle: policy }, {});
    await f.tpm.run(PolicyAuthValue, { policySession: policy }, {});
    const wrong = await tpmRejection(signWith(f, { ...key, authValue: utf8('nope') }, c.params.outPublic, [policy]));
    expect(isRc(wrong, TPM_RC.BAD_AUTH)).toBe(true);
    await policy.flush();
  });

  it('PolicySecret authorized by a policy session without PolicyAuthValue/PolicyPassword: TPM_RC_MODE', async () => {
    const f = await setUp();
    const e = await policySecretWithoutAuthValue(f.tpm, f.srk);
    expect(isRc(e, TPM_RC.MODE)).toBe(true);
    expect(e.session).toBe(1);
  });
});

/**
 * PolicySecret authorized by a policy session that holds no authValue
 * (neither PolicyAuthValue nor PolicyPassword): TPM_RC_MODE on session 1.
 */
async function policySecretWithoutAuthValue(tpm: Tpm, srk: Entity): Promise<TpmError> {
  const authPolicy = updatePolicyCommandCode(TPM_ALG.SHA256, zeroPolicy(TPM_ALG.SHA256), { code: PolicySecret.code });
  const template = { ...ecdsaTemplate({ noDA: true }), authPolicy };
  const c = await tpm.run(Create, { parentHandle: srk }, { inSensitive: { userAuth: utf8('x'), data: new Uint8Array(0) }, inPublic: template, ...NO_CREATION });
  const l = await tpm.run(Load, { parentHandle: srk }, { inPrivate: c.params.outPrivate, inPublic: c.params.outPublic });
  const key: Entity = { handle: l.handles.objectHandle, name: objectName(c.params.outPublic), authValue: utf8('x') };
  const p1 = await tpm.startAuthSession({ type: 'policy' });
  const p2 = await tpm.startAuthSession({ type: 'policy' });
  try {
    await tpm.run(PolicyCommandCode, { policySession: p1 }, { code: PolicySecret.code });
    return await tpmRejection(tpm.run(PolicySecret, { authHandle: key, policySession: p2 }, { nonceTPM: p2.nonceTPM, cpHashA: new Uint8Array(0), policyRef: new Uint8Array(0), expiration: 0 }, { sessions: [p1] }));
  } finally {
    await p1.flush();
    await p2.flush();
    await tpm.flush(key.handle);
  }
}

/** Wrong passwords and HMACs for a DA-protected key until lockout, then the right one; the codes and TPM_PT_LOCKOUT_COUNTER after each. */
async function daSequence(tpm: Tpm, srk: Entity): Promise<string[]> {
  const f = { tpm, srk } as Fixture;
  const { key, publicArea } = await signingKey(f, utf8('right'));
  const out: string[] = [];
  const attempt = async (authValue: Uint8Array, hmac: boolean): Promise<void> => {
    const s = hmac ? await tpm.startAuthSession({}) : undefined;
    try {
      await signWith(f, { ...key, authValue }, publicArea, s === undefined ? [] : [s]);
      out.push('ok');
    } catch (e) {
      out.push(e instanceof TpmError ? `0x${e.rc.toString(16)}` : String(e));
    } finally {
      await s?.flush();
    }
    out.push(`counter ${await property(tpm, TPM_PT.LOCKOUT_COUNTER)}`);
  };
  await attempt(utf8('wrong'), false);
  await attempt(utf8('wrong'), true);
  await attempt(utf8('right'), true);
  await attempt(utf8('wrong'), true);
  await attempt(utf8('right'), false);
  await tpm.flush(key.handle);
  return out;
}

/** Hand-framed commands with bad authorization areas, and the code each gets. */
async function badSessionCodes(send: (bytes: Uint8Array) => Promise<Uint8Array>, key: Entity, f: { tpm: Tpm }): Promise<Record<string, string>> {
  const rcOf = async (bytes: Uint8Array): Promise<string> => {
    const r = await send(bytes);
    return `0x${new DataView(r.buffer, r.byteOffset).getUint32(6).toString(16)}`;
  };
  const start = async (type: 0 | 1 | 3, symmetric: TPMT_SYM_DEF = AES_128_CFB, nonce = fresh(32)): Promise<{ handle: number; rc: string }> => {
    const bytes = frameCommand(StartAuthSession, { tpmKey: TPM_RH.NULL, bind: TPM_RH.NULL }, encodeParams(StartAuthSession, { nonceCaller: nonce, encryptedSalt: new Uint8Array(0), sessionType: type, symmetric, authHash: TPM_ALG.SHA256 }));
    const r = await send(bytes);
    const rc = new DataView(r.buffer, r.byteOffset).getUint32(6);
    return { handle: rc === 0 ? new DataView(r.buffer, r.byteOffset).getUint32(10) : 0, rc: `0x${rc.toString(16)}` };
  };
  // A password carries the key's authValue, so that a later session's fault is the one reported.
  const auth = (sessionHandle: number, attrs: Parameters<typeof TPMA_SESSION.of>[0], nonce = fresh(32)) => ({
    sessionHandle,
    nonce,
    sessionAttributes: TPMA_SESSION.of(attrs),
    hmac: sessionHandle === TPM_RS_PW ? key.authValue! : new Uint8Array(32),
  });
  const sign = (sessions: ReturnType<typeof auth>[]) =>
    frameCommand(Sign, { keyHandle: key.handle }, encodeParams(Sign, { digest: new Uint8Array(32), inScheme: { scheme: TPM_ALG.NULL }, validation: NULL_TICKET }), { sessions });
  const out: Record<string, string> = {};
  out.shortNonce = (await start(TPM_SE.HMAC, AES_128_CFB, fresh(15))).rc;
  out.longNonce = (await start(TPM_SE.HMAC, AES_128_CFB, fresh(33))).rc;
  out.cbcMode = (await start(TPM_SE.HMAC, { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CBC })).rc;
  const hmacS = await start(TPM_SE.HMAC);
  const nullS = await start(TPM_SE.HMAC, { algorithm: TPM_ALG.NULL });
  const trial = await start(TPM_SE.TRIAL);
  out.notLoaded = await rcOf(sign([auth(0x0200003f, { continueSession: true })]));
  out.twice = await rcOf(sign([auth(TPM_RS_PW, { continueSession: true }, new Uint8Array(0)), auth(hmacS.handle, { continueSession: true, decrypt: true }), auth(hmacS.handle, { continueSession: true, encrypt: true })]));
  out.trial = await rcOf(sign([auth(trial.handle, { continueSession: true })]));
  out.noCipher = await rcOf(sign([auth(nullS.handle, { continueSession: true, decrypt: true })]));
  out.encryptSign = await rcOf(sign([auth(hmacS.handle, { continueSession: true, encrypt: true })]));
  out.passwordNonce = await rcOf(sign([auth(TPM_RS_PW, { continueSession: true }, fresh(4))]));
  out.passwordDecrypt = await rcOf(sign([auth(TPM_RS_PW, { continueSession: true, decrypt: true }, new Uint8Array(0))]));
  out.extraDoingNothing = await rcOf(sign([auth(TPM_RS_PW, { continueSession: true }, new Uint8Array(0)), auth(hmacS.handle, { continueSession: true })]));
  out.extraPassword = await rcOf(sign([auth(TPM_RS_PW, { continueSession: true }, new Uint8Array(0)), auth(TPM_RS_PW, { continueSession: true }, new Uint8Array(0))]));
  for (const h of [hmacS.handle, nullS.handle, trial.handle]) await f.tpm.run(FlushContext, {}, { flushHandle: h });
  out.flushAgain = await rcOf(frameCommand(FlushContext, {}, encodeParams(FlushContext, { flushHandle: hmacS.handle })));
  // FlushContext takes no sessions at all.
  out.flushWithSession = await rcOf(frameCommand(FlushContext, {}, encodeParams(FlushContext, { flushHandle: hmacS.handle }), { sessions: [auth(TPM_RS_PW, { continueSession: true }, new Uint8Array(0))] }));
  return out;
}

const EXPECTED_BAD_SESSION_CODES = {
  shortNonce: '0x1d5', // TPM_RC_SIZE, parameter 1
  longNonce: '0x1d5',
  cbcMode: '0x4c9', // TPM_RC_MODE, parameter 4
  notLoaded: '0x918', // TPM_RC_REFERENCE_S0
  twice: '0xb8b', // TPM_RC_HANDLE, session 3
  trial: '0x982', // TPM_RC_ATTRIBUTES, session 1
  noCipher: '0x996', // TPM_RC_SYMMETRIC, session 1
  encryptSign: '0x982', // Sign's response has no TPM2B first parameter
  passwordNonce: '0x98f', // TPM_RC_NONCE, session 1
  passwordDecrypt: '0x982',
  extraDoingNothing: '0xa82', // TPM_RC_ATTRIBUTES, session 2
  extraPassword: '0xa8b', // TPM_RC_HANDLE, session 2
  flushAgain: '0x1cb', // TPM_RC_HANDLE, parameter 1
  flushWithSession: '0x145', // TPM_RC_AUTH_CONTEXT
};

describeWithSwtpm('simulator sessions match swtpm', () => {
  const tpms = swtpmAndSimulator();

  it('the same bad session areas get the same codes from swtpm', async () => {
    const { probe: t, tpm } = tpms.swtpm;
    const p = await tpm.run(CreatePrimary, { primaryHandle: TPM_RH.OWNER }, { inSensitive: { userAuth: new Uint8Array(0), data: new Uint8Array(0) }, inPublic: eccSrkTemplate(), ...NO_CREATION });
    const srk: Entity = { handle: p.handles.objectHandle, name: p.params.name };
    const { key } = await signingKey({ tpm, srk } as Fixture, utf8('k'), { noDA: true });
    await tpm.flush(srk.handle);
    const sim = await setUp();
    const simKey = await signingKey(sim, utf8('k'), { noDA: true });
    await sim.tpm.flush(sim.srk.handle);
    const theirs = await badSessionCodes((b) => t.send(b), key, { tpm });
    const ours = await badSessionCodes((b) => sim.engine.execute(b), simKey.key, sim);
    expect(ours).toEqual(theirs);
    const srk2 = await tpm.run(CreatePrimary, { primaryHandle: TPM_RH.OWNER }, { inSensitive: { userAuth: new Uint8Array(0), data: new Uint8Array(0) }, inPublic: eccSrkTemplate(), ...NO_CREATION });
    const theirMode = await policySecretWithoutAuthValue(tpm, { handle: srk2.handles.objectHandle, name: srk2.params.name });
    await tpm.flush(srk2.handles.objectHandle);
    const sim2 = await setUp();
    expect((await policySecretWithoutAuthValue(sim2.tpm, sim2.srk)).rc).toBe(theirMode.rc);
    // Dictionary-attack accounting, step by step (this locks the swtpm instance out: last in the test).
    const srk3 = await tpm.run(CreatePrimary, { primaryHandle: TPM_RH.OWNER }, { inSensitive: { userAuth: new Uint8Array(0), data: new Uint8Array(0) }, inPublic: eccSrkTemplate(), ...NO_CREATION });
    const theirDa = await daSequence(tpm, { handle: srk3.handles.objectHandle, name: srk3.params.name });
    const sim3 = await setUp();
    const ourDa = await daSequence(sim3.tpm, sim3.srk);
    expect(ourDa).toEqual(theirDa);
    expect(ourDa).toEqual(['0x98e', 'counter 1', '0x98e', 'counter 2', 'ok', 'counter 2', '0x98e', 'counter 3', '0x921', 'counter 3']);
    await tpm.flush(key.handle);
  });
});
