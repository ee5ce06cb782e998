/**
 * ContextSave / ContextLoad / FlushContext in the simulator (Part 3 §28,
 * Part 1 §30): transient objects, hash sequences and sessions saved and
 * loaded again (what tpm2-abrmd does around every command), sessions
 * loadable once and counted as active while saved, integrity protection
 * (any changed byte, sequence, handle or hierarchy → TPM_RC_INTEGRITY),
 * contexts that end with a power cycle or TPM Reset, and the flow through
 * tpm2-abrmd and tpm2-tools against `trustroot tpm serve`.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes, verify } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tpm, type Entity } from '../../src/client/index.js';
import {
  ContextLoad,
  ContextSave,
  Create,
  CreatePrimary,
  FlushContext,
  GetCapability,
  HashSequenceStart,
  Load,
  LoadExternal,
  ReadPublic,
  SequenceComplete,
  SequenceUpdate,
  Shutdown,
  Sign,
  Startup,
} from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_CAP, TPM_ECC, TPM_PT, TPM_RH, TPM_ST, TPM_SU } from '../../src/tpm/constants.js';
import { objectName } from '../../src/tpm/names.js';
import { isRc, TPM_RC, TpmError } from '../../src/tpm/rc.js';
import { publicKeyFromArea } from '../../src/tpm/secret.js';
import { eccSrkTemplate } from '../../src/tpm/templates.js';
import { TPMA_OBJECT, type TPMS_CONTEXT, type TPMT_PUBLIC, type TPMT_SIGNATURE } from '../../src/tpm/types/index.js';
import { TpmEngine } from '../../src/simulator/index.js';
import { startSimServer, type SimServerInstance } from '../support/sim-server.js';
import { describeWithSwtpm } from '../support/swtpm.js';
import { describeWithTpm2Tools, startTpm2Tools, type Tpm2Tools } from '../support/tpm2-tools.js';
import { tpmRejection } from '../support/probe.js';
import { startedEngine, swtpmAndSimulator } from '../support/fixture.js';

const NO_CREATION = { outsideInfo: new Uint8Array(0), creationPCR: [] };
const NULL_TICKET = { tag: TPM_ST.HASHCHECK, hierarchy: TPM_RH.NULL, digest: new Uint8Array(0) } as const;
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

const SIGNING: TPMT_PUBLIC = {
  type: TPM_ALG.ECC,
  nameAlg: TPM_ALG.SHA256,
  objectAttributes: TPMA_OBJECT.of({ fixedTPM: true, fixedParent: true, sensitiveDataOrigin: true, userWithAuth: true, noDA: true, sign: true }),
  authPolicy: new Uint8Array(0),
  parameters: { symmetric: { algorithm: TPM_ALG.NULL }, scheme: { scheme: TPM_ALG.ECDSA, details: { hashAlg: TPM_ALG.SHA256 } }, curveID: TPM_ECC.NIST_P256, kdf: { scheme: TPM_ALG.NULL } },
  unique: { x: new Uint8Array(0), y: new Uint8Array(0) },
};

function verifyEcdsa(pub: TPMT_PUBLIC, message: Uint8Array, sig: TPMT_SIGNATURE): boolean {
  if (sig.sigAlg !== TPM_ALG.ECDSA) return false;
  const pad = (b: Uint8Array): Buffer => Buffer.concat([Buffer.alloc(32 - b.length), Buffer.from(b)]);
  return verify('sha256', message, { key: publicKeyFromArea(pub), dsaEncoding: 'ieee-p1363' }, Buffer.concat([pad(sig.signature.signatureR), pad(sig.signature.signatureS)]));
}


interface Fixture {
  engine: TpmEngine;
  tpm: Tpm;
  srk: Entity;
  key: Entity;
  keyPublic: TPMT_PUBLIC;
}

async function setUp(): Promise<Fixture> {
  const { engine, tpm } = await startedEngine();
  const p = await tpm.run(CreatePrimary, { primaryHandle: TPM_RH.OWNER }, { inSensitive: { userAuth: new Uint8Array(0), data: new Uint8Array(0) }, inPublic: eccSrkTemplate(), ...NO_CREATION });
  const srk: Entity = { handle: p.handles.objectHandle, name: p.params.name };
  const authValue = utf8('key-auth');
  const c = await tpm.run(Create, { parentHandle: srk }, { inSensitive: { userAuth: authValue, data: new Uint8Array(0) }, inPublic: SIGNING, ...NO_CREATION });
  const l = await tpm.run(Load, { parentHandle: srk }, { inPrivate: c.params.outPrivate, inPublic: c.params.outPublic });
  return { engine, tpm, srk, key: { handle: l.handles.objectHandle, name: objectName(c.params.outPublic), authValue }, keyPublic: c.params.outPublic };
}

async function signOk(f: Fixture, key: Entity, sessions?: Parameters<Tpm['run']>[3], publicArea: TPMT_PUBLIC = f.keyPublic): Promise<void> {
  const message = randomBytes(20);
  const digest = new Uint8Array(createHash('sha256').update(message).digest());
  const r = await f.tpm.run(Sign, { keyHandle: key }, { digest, inScheme: { scheme: TPM_ALG.NULL }, validation: NULL_TICKET }, sessions);
  expect(verifyEcdsa(publicArea, message, r.params.signature)).toBe(true);
}

const save = async (f: Fixture, h: number): Promise<TPMS_CONTEXT> => (await f.tpm.run(ContextSave, { saveHandle: h }, {})).params.context;
const loadCtx = async (f: Fixture, context: TPMS_CONTEXT): Promise<number> => (await f.tpm.run(ContextLoad, {}, { context })).handles.loadedHandle;

async function capHandles(f: Fixture, first: number): Promise<number[]> {
  const r = await f.tpm.run(GetCapability, {}, { capability: TPM_CAP.HANDLES, property: first, propertyCount: 64 });
  const d = r.params.capabilityData;
  if (d.capability !== TPM_CAP.HANDLES) throw new Error('not a handle list');
  return [...d.data];
}

async function property(f: Fixture, pt: number): Promise<number> {
  const r = await f.tpm.run(GetCapability, {}, { capability: TPM_CAP.TPM_PROPERTIES, property: pt, propertyCount: 1 });
  const d = r.params.capabilityData;
  if (d.capability !== TPM_CAP.TPM_PROPERTIES || d.data[0]?.property !== pt) throw new Error('property missing');
  return d.data[0].value;
}

describe('simulator contexts: objects', () => {
  it('saves a loaded key, which stays loaded; flushed and loaded again it signs under a new handle with the same Name', async () => {
    const f = await setUp();
    const ctx = await save(f, f.key.handle);
    expect(ctx.savedHandle).toBe(0x80000000);
    expect(ctx.hierarchy).toBe(TPM_RH.OWNER);
    await signOk(f, f.key); // still loaded
    await f.tpm.flush(f.key.handle);
    await f.tpm.flush(f.srk.handle);
    const h = await loadCtx(f, ctx);
    expect(h >>> 24).toBe(0x80);
    const rp = await f.tpm.run(ReadPublic, { objectHandle: h }, {});
    expect(rp.params.name).toEqual(f.key.name);
    await signOk(f, { ...f.key, handle: h });
    // An object context loads as often as needed (only sessions are single-use).
    const h2 = await loadCtx(f, ctx);
    expect(h2).not.toBe(h);
    await signOk(f, { ...f.key, handle: h2 });
    // The third load finds no free slot? There are 3 slots: h, h2 and one more.
    const h3 = await loadCtx(f, ctx);
    const full = await tpmRejection(loadCtx(f, ctx));
    expect(isRc(full, TPM_RC.OBJECT_MEMORY)).toBe(true);
    for (const x of [h, h2, h3]) await f.tpm.flush(x);
  });

  it('object contexts survive a TPM Resume but not a TPM Reset (resetCount in the integrity, as the reference has it)', async () => {
    const f = await setUp();
    const ownerCtx = await save(f, f.srk.handle);
    const n = await f.tpm.run(CreatePrimary, { primaryHandle: TPM_RH.NULL }, { inSensitive: { userAuth: new Uint8Array(0), data: new Uint8Array(0) }, inPublic: SIGNING, ...NO_CREATION });
    const nullCtx = await save(f, n.handles.objectHandle);
    expect(nullCtx.hierarchy).toBe(TPM_RH.NULL);
    await f.tpm.run(Shutdown, {}, { shutdownType: TPM_SU.STATE });
    f.engine.init();
    await f.tpm.run(Startup, {}, { startupType: TPM_SU.STATE });
    // The power cycle dropped the engine's key cache: the keys are rebuilt from the context's areas.
    for (const c of [ownerCtx, nullCtx]) {
      const h = await loadCtx(f, c);
      await f.tpm.run(ReadPublic, { objectHandle: h }, {});
      if (c === nullCtx) await signOk(f, { handle: h, name: n.params.name }, undefined, n.params.outPublic);
      await f.tpm.flush(h);
    }
    f.engine.init();
    await f.tpm.run(Startup, {}, { startupType: TPM_SU.CLEAR });
    expect(isRc(await tpmRejection(loadCtx(f, ownerCtx)), TPM_RC.INTEGRITY)).toBe(true);
    expect(isRc(await tpmRejection(loadCtx(f, nullCtx)), TPM_RC.INTEGRITY)).toBe(true);
  });

  it('a public-only object (LoadExternal) keeps being public-only through a save and load', async () => {
    const f = await setUp();
    await f.tpm.flush(f.key.handle);
    const ext = await f.tpm.run(LoadExternal, {}, { inPrivate: null, inPublic: { ...f.keyPublic, objectAttributes: { ...f.keyPublic.objectAttributes, fixedTPM: false, fixedParent: false } }, hierarchy: TPM_RH.NULL });
    const ctx = await save(f, ext.handles.objectHandle);
    await f.tpm.flush(ext.handles.objectHandle);
    const h = await loadCtx(f, ctx);
    expect(f.engine.volatile.objects.get(h)!.publicOnly).toBe(true);
    expect(f.engine.volatile.objects.get(h)!.key.type).toBe('public');
    // Nothing can be signed with it (Part 3 §12.3).
    const e = await tpmRejection(f.tpm.run(Sign, { keyHandle: h }, { digest: new Uint8Array(32), inScheme: { scheme: TPM_ALG.NULL }, validation: NULL_TICKET }));
    expect(e).toBeInstanceOf(TpmError);
  });

  it('tampering: any changed blob byte, sequence, savedHandle or hierarchy → TPM_RC_INTEGRITY on parameter 1; a short blob → TPM_RC_SIZE', async () => {
    const f = await setUp();
    const ctx = await save(f, f.key.handle);
    const blob = ctx.contextBlob;
    for (const at of [0, 2, 10, 33, 34, 40, blob.length - 1]) {
      const b = blob.slice();
      b[at]! ^= 0x01;
      const e = await tpmRejection(loadCtx(f, { ...ctx, contextBlob: b }));
      expect(isRc(e, at < 2 ? TPM_RC.SIZE : TPM_RC.INTEGRITY), `byte ${at}`).toBe(true);
      if (at >= 2) expect(e.parameter).toBe(1);
    }
    expect(isRc(await tpmRejection(loadCtx(f, { ...ctx, sequence: ctx.sequence + 1n })), TPM_RC.INTEGRITY)).toBe(true);
    expect(isRc(await tpmRejection(loadCtx(f, { ...ctx, savedHandle: 0x80000002 })), TPM_RC.INTEGRITY)).toBe(true);
    expect(isRc(await tpmRejection(loadCtx(f, { ...ctx, hierarchy: TPM_RH.ENDORSEMENT })), TPM_RC.INTEGRITY)).toBe(true);
    expect(isRc(await tpmRejection(loadCtx(f, { ...ctx, contextBlob: blob.subarray(0, 50) })), TPM_RC.INTEGRITY)).toBe(true);
    // Shorter than the digest and the sequence: TPM_RC_SIZE (reference TPM2_ContextLoad).
    expect(isRc(await tpmRejection(loadCtx(f, { ...ctx, contextBlob: blob.subarray(0, 41) })), TPM_RC.SIZE)).toBe(true);
    // The key is not readable from the blob: its private scalar is encrypted.
    const engineKey = f.engine.volatile.objects.get(f.key.handle)!;
    expect(Buffer.from(blob).indexOf(Buffer.from(engineKey.sensitive.sensitive))).toBe(-1);
  });

  it('a hash sequence saved between updates completes with the digest node:crypto computes', async () => {
    const f = await setUp();
    await f.tpm.flush(f.key.handle);
    const seqAuth = utf8('seq');
    const s = await f.tpm.run(HashSequenceStart, {}, { auth: seqAuth, hashAlg: TPM_ALG.SHA256 });
    let h = s.handles.sequenceHandle;
    const parts = [randomBytes(100), randomBytes(200), randomBytes(50)];
    for (const part of parts.slice(0, 2)) {
      await f.tpm.run(SequenceUpdate, { sequenceHandle: { handle: h, name: new Uint8Array(0), authValue: seqAuth } }, { buffer: part });
      const ctx = await save(f, h);
      expect(ctx.savedHandle).toBe(0x80000001);
      await f.tpm.run(FlushContext, {}, { flushHandle: h });
      h = await loadCtx(f, ctx);
    }
    const done = await f.tpm.run(SequenceComplete, { sequenceHandle: { handle: h, name: new Uint8Array(0), authValue: seqAuth } }, { buffer: parts[2]!, hierarchy: TPM_RH.NULL });
    expect(Buffer.from(done.params.result).equals(createHash('sha256').update(Buffer.concat(parts)).digest())).toBe(true);
  });
});

describe('simulator contexts: sessions', () => {
  it('a saved HMAC session leaves TPM memory but stays active; loaded again (same handle) it authorizes with its nonces intact', async () => {
    const f = await setUp();
    const s = await f.tpm.startAuthSession({ bind: f.key, salt: { key: f.srk, public: (await f.tpm.run(ReadPublic, { objectHandle: f.srk.handle }, {})).params.outPublic } });
    await signOk(f, f.key, { sessions: [s] });
    const ctx = await save(f, s.handle);
    expect(ctx.savedHandle).toBe(s.handle);
    expect(ctx.hierarchy).toBe(TPM_RH.NULL);
    expect(await capHandles(f, 0x02000000)).toEqual([]);
    expect(await capHandles(f, 0x03000000)).toEqual([s.handle]);
    expect(await property(f, TPM_PT.HR_LOADED)).toBe(0);
    expect(await property(f, TPM_PT.HR_ACTIVE)).toBe(1);
    // A saved session cannot authorize (TPM_RC_REFERENCE_S0) until loaded.
    expect(isRc(await tpmRejection(signOk(f, f.key, { sessions: [s] })), TPM_RC.REFERENCE_S0)).toBe(true);
    expect(await loadCtx(f, ctx)).toBe(s.handle);
    await signOk(f, f.key, { sessions: [s] });
    await signOk(f, f.key, { sessions: [s.use({ decrypt: true })] });
    // A replayed context is refused: the session is loaded now (and after another save, the old context is stale).
    expect(isRc(await tpmRejection(loadCtx(f, ctx)), TPM_RC.HANDLE)).toBe(true);
    const ctx2 = await save(f, s.handle);
    expect(isRc(await tpmRejection(loadCtx(f, ctx)), TPM_RC.HANDLE)).toBe(true);
    expect(await loadCtx(f, ctx2)).toBe(s.handle);
    await s.flush();
    expect(isRc(await tpmRejection(loadCtx(f, ctx2)), TPM_RC.HANDLE)).toBe(true);
  });

  it('policy sessions keep their policy digest through a save; FlushContext ends a saved session; a tampered session context is INTEGRITY', async () => {
    const f = await setUp();
    const p = await f.tpm.startAuthSession({ type: 'policy' });
    f.engine.volatile.sessions.get(p.handle)!.policyDigest = new Uint8Array(32).fill(7);
    const ctx = await save(f, p.handle);
    const bad = ctx.contextBlob.slice();
    bad[bad.length - 3]! ^= 0x80;
    expect(isRc(await tpmRejection(loadCtx(f, { ...ctx, contextBlob: bad })), TPM_RC.INTEGRITY)).toBe(true);
    expect(await loadCtx(f, ctx)).toBe(p.handle);
    expect(f.engine.volatile.sessions.get(p.handle)!.policyDigest).toEqual(new Uint8Array(32).fill(7));
    await save(f, p.handle);
    await f.tpm.run(FlushContext, {}, { flushHandle: p.handle });
    expect(await capHandles(f, 0x03000000)).toEqual([]);
    expect(isRc(await tpmRejection(f.tpm.run(FlushContext, {}, { flushHandle: p.handle })), TPM_RC.HANDLE)).toBe(true);
  });

  it('saved sessions count toward the 64 active ones (SESSION_HANDLES), not toward the 3 loaded (SESSION_MEMORY); a power cycle ends them', async () => {
    const f = await setUp();
    const saved: TPMS_CONTEXT[] = [];
    for (let i = 0; i < 64; i++) {
      const s = await f.tpm.startAuthSession({ type: i % 2 === 0 ? 'hmac' : 'policy' });
      saved.push(await save(f, s.handle));
    }
    expect(await property(f, TPM_PT.HR_ACTIVE)).toBe(64);
    expect(await property(f, TPM_PT.HR_ACTIVE_AVAIL)).toBe(0);
    expect(isRc(await tpmRejection(f.tpm.startAuthSession({})), TPM_RC.SESSION_HANDLES)).toBe(true);
    for (const c of saved.slice(0, 3)) await loadCtx(f, c);
    expect(isRc(await tpmRejection(loadCtx(f, saved[3]!)), TPM_RC.SESSION_MEMORY)).toBe(true);
    // Paging through the saved list: 61 saved, listed by slot whatever their type.
    const list = await capHandles(f, 0x03000000);
    expect(list.length).toBe(61);
    expect(list[0]).toBe(saved[3]!.savedHandle);
    f.engine.init();
    await f.tpm.run(Startup, {}, { startupType: TPM_SU.CLEAR });
    expect(isRc(await tpmRejection(loadCtx(f, saved[10]!)), TPM_RC.INTEGRITY)).toBe(true); // resetCount moved on
    expect(await property(f, TPM_PT.HR_ACTIVE)).toBe(0);
  });
});

/** Response codes of context operations that swtpm and the simulator must agree on. */
async function contextCodes(tpm: Tpm): Promise<Record<string, string>> {
  const code = async (p: Promise<unknown>): Promise<string> => {
    try {
      await p;
      return 'ok';
    } catch (e) {
      if (e instanceof TpmError) return `0x${e.rc.toString(16)}`;
      throw e;
    }
  };
  const out: Record<string, string> = {};
  const f = { tpm } as Fixture;
  const p = await tpm.run(CreatePrimary, { primaryHandle: TPM_RH.OWNER }, { inSensitive: { userAuth: new Uint8Array(0), data: new Uint8Array(0) }, inPublic: eccSrkTemplate(), ...NO_CREATION });
  const obj = await save(f, p.handles.objectHandle);
  const flipped = obj.contextBlob.slice();
  flipped[flipped.length - 1]! ^= 1;
  out.tamperedObject = await code(loadCtx(f, { ...obj, contextBlob: flipped }));
  out.otherSequence = await code(loadCtx(f, { ...obj, sequence: obj.sequence + 5n }));
  out.otherHierarchy = await code(loadCtx(f, { ...obj, hierarchy: TPM_RH.ENDORSEMENT }));
  out.shortBlob = await code(loadCtx(f, { ...obj, contextBlob: obj.contextBlob.subarray(0, 10) }));
  await tpm.flush(p.handles.objectHandle);
  const s = await tpm.startAuthSession({});
  const sc = await save(f, s.handle);
  out.saveSavedSession = await code(tpm.run(ContextSave, { saveHandle: s.handle }, {}));
  out.loadSession = (await code(loadCtx(f, sc))) === 'ok' ? 'ok' : 'failed';
  out.replaySession = await code(loadCtx(f, sc));
  const sc2 = await save(f, s.handle);
  out.flushSaved = await code(tpm.run(FlushContext, {}, { flushHandle: s.handle }));
  out.loadFlushed = await code(loadCtx(f, sc2));
  // Three loaded sessions, a fourth saved one cannot come back.
  const three = [await tpm.startAuthSession({}), await tpm.startAuthSession({})];
  const fourth = await tpm.startAuthSession({ type: 'policy' });
  const fc = await save(f, fourth.handle);
  three.push(await tpm.startAuthSession({}));
  out.sessionMemory = await code(loadCtx(f, fc));
  out.startFourth = await code(tpm.startAuthSession({}));
  await tpm.run(FlushContext, {}, { flushHandle: fourth.handle });
  for (const x of three) await x.flush();
  return out;
}

describeWithSwtpm('simulator contexts match swtpm', () => {
  const tpms = swtpmAndSimulator();

  it('tampered, replayed, flushed and over-limit contexts get the same codes', async () => {
    const theirs = await contextCodes(tpms.swtpm.tpm);
    const ours = await contextCodes((await setUp()).tpm);
    expect(ours).toEqual(theirs);
    expect(ours.tamperedObject).toBe('0x1df'); // TPM_RC_INTEGRITY, parameter 1
    expect(ours.replaySession).toBe('0x1cb'); // TPM_RC_HANDLE, parameter 1
    expect(ours.saveSavedSession).toBe('0x910'); // TPM_RC_REFERENCE_H0: not loaded
    expect(ours.shortBlob).toBe('0x9a'); // TPM_RC_INSUFFICIENT, no parameter number
  });
});

describeWithTpm2Tools('simulator contexts: tpm2-abrmd and tpm2-tools against trustroot tpm serve', () => {
  let server: SimServerInstance;
  let tools: Tpm2Tools;
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'trustroot-ctx-'));
    server = await startSimServer({ protocol: 'swtpm' });
    // TPM2_Startup before abrmd connects (the tools' own TCTI, then nothing stays connected).
    execFileSync('tpm2_startup', ['-T', server.tcti, '-c'], { timeout: 20_000, stdio: 'ignore' });
    tools = await startTpm2Tools(server, { cwd: dir });
  }, 60_000);
  afterAll(async () => {
    await tools?.stop();
    await server?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('HMAC and policy sessions through abrmd (ContextSave/ContextLoad around every command): salted+bound, sessionconfig, -P session:', async () => {
    await tools.run('createprimary', ['-C', 'o', '-c', 'prim.ctx']);
    // -c: the primary is both the salt key and the bind entity (tpm2_startauthsession).
    await tools.run('startauthsession', ['--hmac-session', '-S', 'hmac.session', '-c', 'prim.ctx']);
    await tools.run('sessionconfig', ['hmac.session', '--enable-encrypt', '--enable-decrypt']);
    const random = await tools.run('getrandom', ['8', '--hex', '-S', 'hmac.session']);
    expect(random.stdout.trim()).toMatch(/^[0-9a-f]{16}$/);
    // The bind entity itself (authValue in the session key only), then another entity (owner).
    await tools.run('create', ['-C', 'prim.ctx', '-P', 'session:hmac.session', '-u', 'k.pub', '-r', 'k.priv', '-p', 'kpw', '-G', 'ecc']);
    await tools.run('createprimary', ['-C', 'o', '-P', 'session:hmac.session', '-c', 'prim2.ctx']);
    await tools.run('load', ['-C', 'prim.ctx', '-P', 'session:hmac.session', '-u', 'k.pub', '-r', 'k.priv', '-c', 'k.ctx']);
    await tools.run('sign', ['-c', 'k.ctx', '-p', 'kpw', '-g', 'sha256', '-o', 'sig', 'k.pub']);
    await tools.run('flushcontext', ['hmac.session']);
    await tools.run('startauthsession', ['--policy-session', '-S', 'pol.session']);
    await tools.run('policycommandcode', ['-S', 'pol.session', 'TPM2_CC_Unseal']);
    await tools.run('flushcontext', ['pol.session']);
    const left = await tools.run('getcap', ['handles-saved-session']);
    expect(left.stdout.trim()).toBe('');
  }, 60_000);
});
