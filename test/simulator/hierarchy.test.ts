/**
 * EvictControl (Part 3 §28.5), HierarchyChangeAuth, Clear, ClearControl
 * (§24) and the dictionary-attack commands (§25) in the simulator: through
 * the client and raw commands, one scenario's codes compared with swtpm's.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { create, createPrimary, eccSigningTemplate, load, persist, readPublic, sign, unpersist, verifyWithNode } from '../../src/client/index.js';
import { readCapability } from '../../src/tpm/capability.js';
import {
  Clear,
  ClearControl,
  CreatePrimary,
  DictionaryAttackLockReset,
  DictionaryAttackParameters,
  EvictControl,
  FlushContext,
  HashSequenceStart,
  HierarchyChangeAuth,
  LoadExternal,
  NV_DefineSpace,
  ObjectChangeAuth,
  NV_ReadPublic,
  ReadClock,
  ReadPublic,
  Shutdown,
  Startup,
} from '../../src/tpm/commands/index.js';
import { HANDLE_RANGE, TPM_ALG, TPM_CAP, TPM_NT, TPM_PT, TPM_RH, TPM_SU } from '../../src/tpm/constants.js';
import { TPM_RC, TpmError, isRc } from '../../src/tpm/rc.js';
import { passwordAuth, runCommand } from '../../src/tpm/run.js';
import { eccEkTemplate, eccSrkTemplate, rsaEkTemplate } from '../../src/tpm/templates.js';
import type { Transport } from '../../src/tpm/transport/index.js';
import { TPMA_NV, type TPMT_PUBLIC } from '../../src/tpm/types/index.js';
import { handleName } from '../../src/tpm/names.js';
import { TpmEngine } from '../../src/simulator/index.js';
import { SIMULATOR_STATE_VERSION } from '../../src/simulator/state.js';
import { parseStateFile, serializeState, validateSimulatorState } from '../../src/simulator/store.js';
import { describeWithSwtpm } from '../support/swtpm.js';
import { scenarioLog } from '../support/scenario.js';
import { startedEngine, swtpmAndSimulator } from '../support/fixture.js';


const EMPTY = new Uint8Array(0);
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

function primary(t: Transport, hierarchy: number, inPublic: TPMT_PUBLIC, auth = EMPTY) {
  return runCommand(
    t,
    CreatePrimary,
    { primaryHandle: hierarchy as typeof TPM_RH.OWNER },
    { inSensitive: { userAuth: EMPTY, data: EMPTY }, inPublic, outsideInfo: EMPTY, creationPCR: [] },
    { sessions: [passwordAuth(auth)] },
  );
}

function evict(t: Transport, auth: number, objectHandle: number, persistentHandle: number) {
  return runCommand(t, EvictControl, { auth: auth as typeof TPM_RH.OWNER, objectHandle }, { persistentHandle });
}

async function property(t: Transport, pt: number): Promise<number | undefined> {
  const props = await readCapability(t, TPM_CAP.TPM_PROPERTIES, [pt]);
  return props.find((p) => p.property === pt)?.value;
}

function withAttrs(t: TPMT_PUBLIC, set: Partial<TPMT_PUBLIC['objectAttributes']>): TPMT_PUBLIC {
  return { ...t, objectAttributes: { ...t.objectAttributes, ...set } } as TPMT_PUBLIC;
}

function nvPublic(index: number, attrs: Partial<TPMA_NV>) {
  return {
    nvIndex: index,
    nameAlg: TPM_ALG.SHA256,
    attributes: TPMA_NV.of({ TPM_NT: TPM_NT.ORDINARY, AUTHREAD: true, AUTHWRITE: true, ...attrs }),
    authPolicy: EMPTY,
    dataSize: 8,
  } as never;
}

const OWNER_P = 0x81000101;
const OWNER_P2 = 0x81000102;
const PLATFORM_P = 0x81800101;
const PLATFORM_NV = 0x01500101;
const OWNER_NV = 0x01500102;

/**
 * One sequence of evict / hierarchy / DA commands; the log says, per step,
 * the response code (0 = success) and the values that must agree.
 */
async function scenario(t: Transport): Promise<Record<string, unknown>> {
  const { log, step } = scenarioLog();
  const srk = (await primary(t, TPM_RH.OWNER, eccSrkTemplate())).handles.objectHandle;
  const srkName = (await runCommand(t, ReadPublic, { objectHandle: srk }, {})).params.name;
  await step('evict to owner range', () => evict(t, TPM_RH.OWNER, srk, OWNER_P));
  await step('evict to a taken handle', () => evict(t, TPM_RH.OWNER, srk, OWNER_P));
  await step('owner evicts to the platform range', () => evict(t, TPM_RH.OWNER, srk, PLATFORM_P));
  await step('platform evicts an owner object', () => evict(t, TPM_RH.PLATFORM, srk, PLATFORM_P));
  await step('persistent to another handle', () => evict(t, TPM_RH.OWNER, OWNER_P, OWNER_P2));
  await step('persistent Name', () => runCommand(t, ReadPublic, { objectHandle: OWNER_P }, {}), (r) => hex(r.params.name) === hex(srkName));
  await runCommand(t, FlushContext, {}, { flushHandle: srk });

  const nullKey = (await primary(t, TPM_RH.NULL, eccSigningTemplate())).handles.objectHandle;
  await step('null-hierarchy object', () => evict(t, TPM_RH.OWNER, nullKey, OWNER_P2));
  await runCommand(t, FlushContext, {}, { flushHandle: nullKey });
  const stClear = (await primary(t, TPM_RH.OWNER, withAttrs(eccSigningTemplate(), { stClear: true }))).handles.objectHandle;
  await step('stClear object', () => evict(t, TPM_RH.OWNER, stClear, OWNER_P2));
  await runCommand(t, FlushContext, {}, { flushHandle: stClear });
  const srkPublic = (await runCommand(t, ReadPublic, { objectHandle: OWNER_P }, {})).params.outPublic;
  const ext = await step('load external public', () => runCommand(t, LoadExternal, {}, { inPrivate: null, inPublic: srkPublic, hierarchy: TPM_RH.OWNER }));
  if (ext !== undefined) {
    await step('public-only object', () => evict(t, TPM_RH.OWNER, ext.handles.objectHandle, OWNER_P2));
    await runCommand(t, FlushContext, {}, { flushHandle: ext.handles.objectHandle });
  }
  const pKey = (await primary(t, TPM_RH.PLATFORM, eccSigningTemplate())).handles.objectHandle;
  await step('owner evicts a platform object', () => evict(t, TPM_RH.OWNER, pKey, OWNER_P2));
  await step('platform evicts to the owner range', () => evict(t, TPM_RH.PLATFORM, pKey, OWNER_P2));
  await step('platform evicts its object', () => evict(t, TPM_RH.PLATFORM, pKey, PLATFORM_P));
  await runCommand(t, FlushContext, {}, { flushHandle: pKey });
  await step('owner removes a platform persistent', () => evict(t, TPM_RH.OWNER, PLATFORM_P, PLATFORM_P));

  // HierarchyChangeAuth: up to a SHA-512 digest long (TPM2B_AUTH's size); trailing zeros do not count.
  const padded = new Uint8Array(64).fill(7);
  padded.fill(0, 60);
  await step('owner auth of 60 bytes and zeros', () => runCommand(t, HierarchyChangeAuth, { authHandle: TPM_RH.OWNER }, { newAuth: padded }));
  await step('owner with the old auth', () => primary(t, TPM_RH.OWNER, eccSrkTemplate()));
  const withNew = await step('owner with the new auth, no zeros', () => primary(t, TPM_RH.OWNER, eccSrkTemplate(), padded.subarray(0, 60)));
  if (withNew !== undefined) await runCommand(t, FlushContext, {}, { flushHandle: withNew.handles.objectHandle });
  await step('owner auth of 64 bytes', () =>
    runCommand(t, HierarchyChangeAuth, { authHandle: TPM_RH.OWNER }, { newAuth: new Uint8Array(64).fill(1) }, { sessions: [passwordAuth(padded)] }),
  );
  await step('owner auth back to empty', () =>
    runCommand(t, HierarchyChangeAuth, { authHandle: TPM_RH.OWNER }, { newAuth: EMPTY }, { sessions: [passwordAuth(new Uint8Array(64).fill(1))] }),
  );

  // Dictionary-attack parameters, read back through GetCapability.
  await step('DA parameters', () => runCommand(t, DictionaryAttackParameters, { lockHandle: TPM_RH.LOCKOUT }, { newMaxTries: 5, newRecoveryTime: 100, lockoutRecovery: 200 }));
  log['MAX_AUTH_FAIL'] = await property(t, TPM_PT.MAX_AUTH_FAIL);
  log['LOCKOUT_INTERVAL'] = await property(t, TPM_PT.LOCKOUT_INTERVAL);
  log['LOCKOUT_RECOVERY'] = await property(t, TPM_PT.LOCKOUT_RECOVERY);
  // Two failed authorizations of a DA-protected key, then a maxTries below the count: the count stays (the reference
  // no longer resets it, per errata) and the TPM is in lockout until DictionaryAttackLockReset.
  const daKey = (await runCommand(t, CreatePrimary, { primaryHandle: TPM_RH.NULL }, { inSensitive: { userAuth: Uint8Array.of(1), data: EMPTY }, inPublic: eccSigningTemplate(), outsideInfo: EMPTY, creationPCR: [] })).handles.objectHandle;
  for (const i of [1, 2]) {
    await step(`wrong password ${i}`, () => runCommand(t, ObjectChangeAuth, { objectHandle: daKey, parentHandle: daKey }, { newAuth: EMPTY }, { sessions: [passwordAuth(Uint8Array.of(9))] }));
  }
  log['LOCKOUT_COUNTER after failures'] = await property(t, TPM_PT.LOCKOUT_COUNTER);
  await step('DA parameters below the count', () => runCommand(t, DictionaryAttackParameters, { lockHandle: TPM_RH.LOCKOUT }, { newMaxTries: 1, newRecoveryTime: 100, lockoutRecovery: 200 }));
  log['LOCKOUT_COUNTER after lowering maxTries'] = await property(t, TPM_PT.LOCKOUT_COUNTER);
  await step('in lockout', () => runCommand(t, ObjectChangeAuth, { objectHandle: daKey, parentHandle: daKey }, { newAuth: EMPTY }, { sessions: [passwordAuth(Uint8Array.of(1))] }));
  await runCommand(t, FlushContext, {}, { flushHandle: daKey });
  await step('DA lock reset', () => runCommand(t, DictionaryAttackLockReset, { lockHandle: TPM_RH.LOCKOUT }, {}));
  log['LOCKOUT_COUNTER'] = await property(t, TPM_PT.LOCKOUT_COUNTER);

  // ClearControl: lockout may only disable.
  await step('lockout enables Clear', () => runCommand(t, ClearControl, { auth: TPM_RH.LOCKOUT }, { disable: 0 }));
  await step('lockout disables Clear', () => runCommand(t, ClearControl, { auth: TPM_RH.LOCKOUT }, { disable: 1 }));
  await step('Clear while disabled', () => runCommand(t, Clear, { authHandle: TPM_RH.LOCKOUT }, {}));
  await step('platform Clear while disabled', () => runCommand(t, Clear, { authHandle: TPM_RH.PLATFORM }, {}));
  await step('platform enables Clear', () => runCommand(t, ClearControl, { auth: TPM_RH.PLATFORM }, { disable: 0 }));

  // What Clear keeps and what it removes.
  await step('platform NV', () => runCommand(t, NV_DefineSpace, { authHandle: TPM_RH.PLATFORM }, { auth: EMPTY, publicInfo: nvPublic(PLATFORM_NV, { PLATFORMCREATE: true }) }));
  await step('owner NV', () => runCommand(t, NV_DefineSpace, { authHandle: TPM_RH.OWNER }, { auth: EMPTY, publicInfo: nvPublic(OWNER_NV, {}) }));
  const pKey2 = (await primary(t, TPM_RH.PLATFORM, eccSigningTemplate())).handles.objectHandle;
  await step('platform persistent', () => evict(t, TPM_RH.PLATFORM, pKey2, PLATFORM_P));
  await runCommand(t, FlushContext, {}, { flushHandle: pKey2 });
  const loadedSrk = (await primary(t, TPM_RH.OWNER, eccSrkTemplate())).handles.objectHandle;
  const ek = (await primary(t, TPM_RH.ENDORSEMENT, eccSrkTemplate())).handles.objectHandle;
  const ekPublicBefore = (await runCommand(t, ReadPublic, { objectHandle: ek }, {})).params.outPublic;
  await runCommand(t, HierarchyChangeAuth, { authHandle: TPM_RH.ENDORSEMENT }, { newAuth: Uint8Array.of(9) });
  await step('Clear', () => runCommand(t, Clear, { authHandle: TPM_RH.LOCKOUT }, {}));
  await step('owner persistent after Clear', () => runCommand(t, ReadPublic, { objectHandle: OWNER_P }, {}));
  await step('platform persistent after Clear', () => runCommand(t, ReadPublic, { objectHandle: PLATFORM_P }, {}));
  // Flushed by Clear: a transient handle with nothing loaded is TPM_RC_REFERENCE_H0 on both TPMs.
  const gone = (e: unknown): boolean => e instanceof TpmError && e.rc === TPM_RC.REFERENCE_H0;
  log['loaded SRK after Clear'] = await runCommand(t, ReadPublic, { objectHandle: loadedSrk }, {}).then(() => 'loaded', (e) => (gone(e) ? 'gone' : String(e)));
  log['loaded EK after Clear'] = await runCommand(t, ReadPublic, { objectHandle: ek }, {}).then(() => 'loaded', (e) => (gone(e) ? 'gone' : String(e)));
  await step('platform NV after Clear', () => runCommand(t, NV_ReadPublic, { nvIndex: PLATFORM_NV }, {}));
  await step('owner NV after Clear', () => runCommand(t, NV_ReadPublic, { nvIndex: OWNER_NV }, {}));
  log['MAX_AUTH_FAIL after Clear'] = await property(t, TPM_PT.MAX_AUTH_FAIL);
  log['LOCKOUT_INTERVAL after Clear'] = await property(t, TPM_PT.LOCKOUT_INTERVAL);
  await step('clock after Clear', () => runCommand(t, ReadClock, {}, {}), (r) => ({ resetCount: r.params.currentTime.clockInfo.resetCount, restartCount: r.params.currentTime.clockInfo.restartCount }));
  await step('endorsement auth emptied', async () => {
    const again = await primary(t, TPM_RH.ENDORSEMENT, eccSrkTemplate());
    const pub = again.params.outPublic;
    await runCommand(t, FlushContext, {}, { flushHandle: again.handles.objectHandle });
    // The EPS is not changed by Clear: the same endorsement key.
    return JSON.stringify(pub.unique, (_k, v) => (v instanceof Uint8Array ? hex(v) : v)) === JSON.stringify(ekPublicBefore.unique, (_k, v) => (v instanceof Uint8Array ? hex(v) : v));
  }, (same) => same);
  await step('new SRK after Clear', async () => {
    const again = await primary(t, TPM_RH.OWNER, eccSrkTemplate());
    await runCommand(t, FlushContext, {}, { flushHandle: again.handles.objectHandle });
    return hex(again.params.name) !== hex(srkName);
  }, (differs) => differs);
  // Leave the TPM as found (swtpm instance may be reused by later tests).
  await step('remove platform persistent', () => evict(t, TPM_RH.PLATFORM, PLATFORM_P, PLATFORM_P));
  return log;
}

describe('simulator EvictControl', () => {
  it('persists a key that then signs, is a parent, survives a restart and a flush; unpersist removes it', async () => {
    const { engine, tpm, t } = await startedEngine();
    const srk = await createPrimary(tpm, TPM_RH.OWNER, eccSrkTemplate());
    const p = await persist(tpm, srk, 0x81000001);
    expect(engine.state.persistentObjects.map((o) => o.handle)).toEqual([0x81000001]);
    await tpm.flush(srk);
    // A persistent parent: Create and Load under it.
    const blob = await create(tpm, p, eccSigningTemplate());
    const child = await load(tpm, p, blob);
    const message = Buffer.from('signed by a child of a persistent parent');
    const sig = await sign(tpm, child, new Uint8Array(createHash('sha256').update(message).digest()));
    expect(verifyWithNode(child.publicArea, message, sig)).toBe(true);
    // The QN of the child names the persistent parent's chain.
    expect((await readPublic(tpm, child.handle)).name).toEqual(child.name);
    await tpm.flush(child);
    // Another engine on the same state (a restart): the persistent key is there and is the same parent.
    const again = await startedEngine(new TpmEngine({ state: engine.state }));
    const pub = await readPublic(again.tpm, 0x81000001);
    expect(pub.name).toEqual(srk.name);
    const reloaded = await load(again.tpm, { handle: 0x81000001, name: pub.name }, blob);
    expect(reloaded.name).toEqual(child.name);
    // GetCapability lists it; unpersist removes it.
    expect(await readCapability(t, TPM_CAP.HANDLES, [HANDLE_RANGE.PERSISTENT[0]])).toEqual([0x81000001]);
    await unpersist(tpm, 0x81000001);
    expect(engine.state.persistentObjects).toEqual([]);
    await expect(readPublic(tpm, 0x81000001)).rejects.toSatisfy((e) => isRc(e, TPM_RC.HANDLE));
  });

  it('the owner persists an endorsement key (the EK at 0x81010002, as tpm2_createek does); ReadPublic answers with its QN', async () => {
    const { tpm } = await startedEngine();
    const ek = await createPrimary(tpm, TPM_RH.ENDORSEMENT, eccEkTemplate());
    const before = await readPublic(tpm, ek.handle);
    await persist(tpm, ek, 0x81010002);
    await tpm.flush(ek);
    const after = await readPublic(tpm, 0x81010002);
    expect(after.name).toEqual(before.name);
    expect(after.qualifiedName).toEqual(before.qualifiedName);
    expect(after.publicArea).toEqual(before.publicArea);
  });

  it('holds seven persistent objects: the eighth is TPM_RC_NV_SPACE; each change is persisted before the answer', async () => {
    let saves = 0;
    const { engine, t } = await startedEngine(new TpmEngine({ persist: async () => void saves++ }));
    const key = (await primary(t, TPM_RH.OWNER, eccSigningTemplate())).handles.objectHandle;
    saves = 0;
    for (let i = 0; i < 7; i++) await evict(t, TPM_RH.OWNER, key, 0x81000010 + i);
    expect(saves).toBe(7);
    await expect(evict(t, TPM_RH.OWNER, key, 0x81000020)).rejects.toSatisfy((e) => isRc(e, TPM_RC.NV_SPACE));
    expect(await property(t, TPM_PT.HR_PERSISTENT_AVAIL)).toBe(0);
    await evict(t, TPM_RH.OWNER, 0x81000013, 0x81000013);
    expect(saves).toBe(8);
    await evict(t, TPM_RH.OWNER, key, 0x81000020);
    expect(engine.state.persistentObjects.map((o) => o.handle)).toEqual([0x81000010, 0x81000011, 0x81000012, 0x81000014, 0x81000015, 0x81000016, 0x81000020]);
  });
});

describe('simulator hierarchy commands', () => {
  it('HierarchyChangeAuth: the new owner, endorsement, platform and lockout values authorize, the old ones do not', async () => {
    const { engine, t } = await startedEngine();
    const cases = [
      [TPM_RH.OWNER, () => primary(t, TPM_RH.OWNER, eccSrkTemplate(), newAuth)],
      [TPM_RH.ENDORSEMENT, () => primary(t, TPM_RH.ENDORSEMENT, eccSrkTemplate(), newAuth)],
      [TPM_RH.PLATFORM, () => primary(t, TPM_RH.PLATFORM, eccSrkTemplate(), newAuth)],
    ] as const;
    const newAuth = Uint8Array.of(1, 2, 3);
    for (const [h, use] of cases) {
      await runCommand(t, HierarchyChangeAuth, { authHandle: h }, { newAuth });
      const r = await use();
      await runCommand(t, FlushContext, {}, { flushHandle: r.handles.objectHandle });
      await expect(primary(t, h, eccSrkTemplate())).rejects.toSatisfy((e) => e instanceof TpmError && (e.is(TPM_RC.BAD_AUTH) || e.is(TPM_RC.AUTH_FAIL)));
    }
    await runCommand(t, HierarchyChangeAuth, { authHandle: TPM_RH.LOCKOUT }, { newAuth });
    expect(engine.state.auths.lockout.authValue).toEqual(newAuth);
    await runCommand(t, DictionaryAttackLockReset, { lockHandle: TPM_RH.LOCKOUT }, {}, { sessions: [passwordAuth(newAuth)] });
    // The state a store writes carries the new values.
    expect(engine.state.auths.owner.authValue).toEqual(newAuth);
    expect(engine.state.auths.platform.authValue).toEqual(newAuth);
  });

  it('every Startup empties platformAuth (Part 1 §13.2: firmware sets it anew each boot); ownerAuth survives', async () => {
    const { engine, t } = await startedEngine();
    const newAuth = Uint8Array.of(7, 7, 7);
    await runCommand(t, HierarchyChangeAuth, { authHandle: TPM_RH.PLATFORM }, { newAuth });
    await runCommand(t, HierarchyChangeAuth, { authHandle: TPM_RH.OWNER }, { newAuth });
    for (const [shutdownType, startupType] of [[TPM_SU.CLEAR, TPM_SU.CLEAR], [TPM_SU.STATE, TPM_SU.STATE]] as const) {
      await runCommand(t, HierarchyChangeAuth, { authHandle: TPM_RH.PLATFORM }, { newAuth }, { sessions: [passwordAuth(engine.state.auths.platform.authValue)] });
      await runCommand(t, Shutdown, {}, { shutdownType });
      engine.init();
      await runCommand(t, Startup, {}, { startupType });
      const p = await primary(t, TPM_RH.PLATFORM, eccSrkTemplate());
      await runCommand(t, FlushContext, {}, { flushHandle: p.handles.objectHandle });
      await expect(primary(t, TPM_RH.OWNER, eccSrkTemplate())).rejects.toSatisfy((e) => e instanceof TpmError && (e.is(TPM_RC.BAD_AUTH) || e.is(TPM_RC.AUTH_FAIL)));
      const o = await primary(t, TPM_RH.OWNER, eccSrkTemplate(), newAuth);
      await runCommand(t, FlushContext, {}, { flushHandle: o.handles.objectHandle });
    }
  });

  it('HierarchyChangeAuth under an HMAC session: the response HMAC is keyed with the new authValue, which the client checks', async () => {
    const { tpm } = await startedEngine();
    const owner = { handle: TPM_RH.OWNER, name: handleName(TPM_RH.OWNER), authValue: EMPTY };
    const session = await tpm.startAuthSession({ type: 'hmac' });
    await tpm.run(HierarchyChangeAuth, { authHandle: owner }, { newAuth: Uint8Array.of(4, 2) }, { sessions: [session] });
    const newOwner = { ...owner, authValue: Uint8Array.of(4, 2) };
    await tpm.run(HierarchyChangeAuth, { authHandle: newOwner }, { newAuth: EMPTY }, { sessions: [session] });
    await tpm.flush(session);
  });

  it('Clear: new SRK, owner persistent objects and NV gone, the PLATFORMCREATE index (EK certificate) and the EK kept', async () => {
    const { engine, tpm, t } = await startedEngine();
    const ekBefore = await createPrimary(tpm, TPM_RH.ENDORSEMENT, rsaEkTemplate());
    await tpm.flush(ekBefore);
    const srk = await createPrimary(tpm, TPM_RH.OWNER, eccSrkTemplate());
    await persist(tpm, srk, 0x81000001);
    // A platform-created index like the EK certificates (manufacture may already hold those at 0x01c00002/0x01c0000a).
    await runCommand(t, NV_DefineSpace, { authHandle: TPM_RH.PLATFORM }, { auth: EMPTY, publicInfo: nvPublic(0x01c00100, { PLATFORMCREATE: true }) });
    const platformIndices = engine.state.nvIndices.filter((n) => TPMA_NV.fromWord(n.attributes).PLATFORMCREATE).map((n) => n.nvIndex);
    await runCommand(t, NV_DefineSpace, { authHandle: TPM_RH.OWNER }, { auth: EMPTY, publicInfo: nvPublic(0x01000001, {}) });
    await runCommand(t, HierarchyChangeAuth, { authHandle: TPM_RH.OWNER }, { newAuth: Uint8Array.of(5) });
    await runCommand(t, DictionaryAttackParameters, { lockHandle: TPM_RH.LOCKOUT }, { newMaxTries: 9, newRecoveryTime: 1, lockoutRecovery: 2 });
    const sequence = (await runCommand(t, HashSequenceStart, {}, { auth: EMPTY, hashAlg: TPM_ALG.SHA256 })).handles.sequenceHandle;
    const seedBefore = engine.state.seeds.owner;
    const ehSeedBefore = engine.state.seeds.endorsement;
    await runCommand(t, Clear, { authHandle: TPM_RH.LOCKOUT }, {});
    expect(engine.state.seeds.owner).not.toEqual(seedBefore);
    expect(engine.state.seeds.endorsement).toBe(ehSeedBefore);
    expect(engine.state.auths.owner.authValue).toEqual(EMPTY);
    expect(engine.state.persistentObjects).toEqual([]);
    expect(engine.state.nvIndices.map((n) => n.nvIndex)).toEqual(platformIndices);
    expect(platformIndices).toContain(0x01c00100);
    expect(engine.state.nvIndices.map((n) => n.nvIndex)).not.toContain(0x01000001);
    // A hash sequence in an object slot belongs to no hierarchy: Clear leaves it (and does not trip over it).
    expect(engine.volatile.objects.getSequence(sequence)).toBeDefined();
    // The loaded SRK was flushed with its hierarchy; a new SRK is another key.
    await expect(readPublic(tpm, srk.handle)).rejects.toSatisfy((e) => e instanceof TpmError && e.rc === TPM_RC.REFERENCE_H0);
    const srk2 = await createPrimary(tpm, TPM_RH.OWNER, eccSrkTemplate());
    expect(srk2.name).not.toEqual(srk.name);
    // The EK is derived from the EPS alone: the same public key, so its certificate stays valid.
    const ekAfter = await createPrimary(tpm, TPM_RH.ENDORSEMENT, rsaEkTemplate());
    expect(ekAfter.publicArea.unique).toEqual(ekBefore.publicArea.unique);
    expect(await property(t, TPM_PT.MAX_AUTH_FAIL)).toBe(3);
  });

  it('DictionaryAttackParameters are read back by GetCapability and survive a restart; LockReset clears the counter', async () => {
    const { engine, t } = await startedEngine();
    await runCommand(t, DictionaryAttackParameters, { lockHandle: TPM_RH.LOCKOUT }, { newMaxTries: 7, newRecoveryTime: 60, lockoutRecovery: 600 });
    const again = await startedEngine(new TpmEngine({ state: engine.state }));
    expect(await property(again.t, TPM_PT.MAX_AUTH_FAIL)).toBe(7);
    expect(await property(again.t, TPM_PT.LOCKOUT_INTERVAL)).toBe(60);
    expect(await property(again.t, TPM_PT.LOCKOUT_RECOVERY)).toBe(600);
    engine.state.dictionaryAttack.failedTries = 6;
    expect(await property(t, TPM_PT.LOCKOUT_COUNTER)).toBe(6);
    // Lowering maxTries below the count leaves the count (as libtpms, scenario below): the TPM is in lockout.
    await runCommand(t, DictionaryAttackParameters, { lockHandle: TPM_RH.LOCKOUT }, { newMaxTries: 4, newRecoveryTime: 60, lockoutRecovery: 600 });
    expect(await property(t, TPM_PT.LOCKOUT_COUNTER)).toBe(6);
    await runCommand(t, DictionaryAttackLockReset, { lockHandle: TPM_RH.LOCKOUT }, {});
    expect(await property(t, TPM_PT.LOCKOUT_COUNTER)).toBe(0);
  });
});

describe('simulator evict and hierarchy state through the state file', () => {
  it('a persistent key, hierarchy auths, DA parameters and disableClear survive serialize → parse → validate', async () => {
    const { engine, tpm, t } = await startedEngine();
    const key = await createPrimary(tpm, TPM_RH.OWNER, eccSigningTemplate());
    await persist(tpm, key, 0x81000005);
    await runCommand(t, HierarchyChangeAuth, { authHandle: TPM_RH.OWNER }, { newAuth: Uint8Array.of(8, 8) });
    await runCommand(t, DictionaryAttackParameters, { lockHandle: TPM_RH.LOCKOUT }, { newMaxTries: 11, newRecoveryTime: 12, lockoutRecovery: 13 });
    await runCommand(t, ClearControl, { auth: TPM_RH.LOCKOUT }, { disable: 1 });
    const reloaded = validateSimulatorState(parseStateFile(serializeState(engine.state), SIMULATOR_STATE_VERSION));
    const again = await startedEngine(new TpmEngine({ state: reloaded }));
    const message = Buffer.from('from the state file');
    const sig = await sign(again.tpm, { handle: 0x81000005, name: key.name }, new Uint8Array(createHash('sha256').update(message).digest()));
    expect(verifyWithNode(key.publicArea, message, sig)).toBe(true);
    await expect(primary(again.t, TPM_RH.OWNER, eccSrkTemplate())).rejects.toSatisfy((e) => e instanceof TpmError);
    const srk = await primary(again.t, TPM_RH.OWNER, eccSrkTemplate(), Uint8Array.of(8, 8));
    await runCommand(again.t, FlushContext, {}, { flushHandle: srk.handles.objectHandle });
    expect(await property(again.t, TPM_PT.MAX_AUTH_FAIL)).toBe(11);
    expect(await property(again.t, TPM_PT.LOCKOUT_INTERVAL)).toBe(12);
    expect(await property(again.t, TPM_PT.LOCKOUT_RECOVERY)).toBe(13);
    await expect(runCommand(again.t, Clear, { authHandle: TPM_RH.PLATFORM }, {})).rejects.toSatisfy((e) => isRc(e, TPM_RC.DISABLED));
  });
});

describeWithSwtpm('simulator evict and hierarchy commands agree with swtpm', () => {
  const tpms = swtpmAndSimulator();

  it('the same sequence gives the same codes and values', async () => {
    const { theirs, ours } = await tpms.both((side) => scenario(side.probe));
    expect(ours).toEqual(theirs);
  });
});
