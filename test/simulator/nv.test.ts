/**
 * The software TPM's NV indices (Part 3 §31) through the client over
 * inProcessTransport: values, Names, error codes, chunked reads, locks, and
 * durability through a StateStore before the answer.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  NvIndex,
  Tpm,
  nvDefine,
  nvExtend,
  nvIncrement,
  nvRead,
  nvReadCounter,
  nvReadLock,
  nvReadPublic,
  nvSetBits,
  nvUndefine,
  nvWrite,
  nvWriteLock,
} from '../../src/client/index.js';
import { NV_DefineSpace, NV_GlobalWriteLock, NV_Read, NV_Write, Shutdown, Startup } from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_NT, TPM_RH, TPM_SU } from '../../src/tpm/constants.js';
import { nvName } from '../../src/tpm/names.js';
import { TPM_RC, TpmError, isRc } from '../../src/tpm/rc.js';
import { runCommand } from '../../src/tpm/run.js';
import { inProcessTransport } from '../../src/tpm/transport/index.js';
import { TPMA_NV } from '../../src/tpm/types/index.js';
import { TpmEngine } from '../../src/simulator/index.js';
import { NV_MEMORY } from '../../src/simulator/handlers/nv.js';
import { SIMULATOR_STATE_VERSION } from '../../src/simulator/state.js';
import { STATE_FILE_NAME, openSimulatorStore, parseStateFile, validateSimulatorState } from '../../src/simulator/store.js';
import { openEnginePlatform } from '../../src/cli/tpm.js';
import { describeWithSwtpm } from '../support/swtpm.js';
import { startedEngine, swtpmAndSimulator } from '../support/fixture.js';

const BASE = 0x01500000;
const root = mkdtempSync(join(tmpdir(), 'trustroot-nv-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const rc = (code: number) => (e: unknown) => isRc(e, code);
const bytes = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

describe('simulator NV indices', () => {
  it('defines an ordinary index, writes and reads it back; Names match the client\'s nvName', async () => {
    const { tpm } = await startedEngine();
    const authValue = new TextEncoder().encode('nv-secret');
    const nv = await nvDefine(tpm, { index: BASE, size: 32, authValue });
    const nameBefore = nvName(nv.publicArea);
    await expect(nvRead(tpm, nv)).rejects.toSatisfy(rc(TPM_RC.NV_UNINITIALIZED));
    const data = bytes(32, 7);
    await nvWrite(tpm, nv, data);
    expect(Buffer.from(await nvRead(tpm, nv)).equals(Buffer.from(data))).toBe(true);
    // WRITTEN changes the Name; the TPM's Name (checked inside nvReadPublic) follows it.
    const again = await nvReadPublic(tpm, BASE);
    expect(again.attributes.WRITTEN).toBe(true);
    expect(Buffer.from(again.name).equals(Buffer.from(nameBefore))).toBe(false);
    expect(Buffer.from(again.name).equals(Buffer.from(nv.name))).toBe(true);
    // A partial write at an offset changes only those bytes.
    await nvWrite(tpm, nv, Uint8Array.of(1, 2, 3), { offset: 29 });
    const after = await nvRead(tpm, nv);
    expect([...after.subarray(0, 29)]).toEqual([...data.subarray(0, 29)]);
    expect([...after.subarray(29)]).toEqual([1, 2, 3]);
  });

  it('authorizes by the index authValue (AUTHREAD/AUTHWRITE) or the owner (OWNERREAD/OWNERWRITE)', async () => {
    const { tpm } = await startedEngine();
    const nv = await nvDefine(tpm, { index: BASE + 1, size: 4, authValue: Uint8Array.of(9, 9) });
    const wrong = new NvIndex(nv.publicArea, Uint8Array.of(9, 8));
    // The index lacks NO_DA, so a wrong authValue counts against dictionary attacks (Part 1 §19.8.6): AUTH_FAIL, not BAD_AUTH.
    await expect(nvWrite(tpm, wrong, Uint8Array.of(1, 2, 3, 4))).rejects.toSatisfy((e) => e instanceof TpmError && e.is(TPM_RC.AUTH_FAIL) && e.session === 1);
    // Owner may not write an index without OWNERWRITE.
    await expect(nvWrite(tpm, nv, Uint8Array.of(1, 2, 3, 4), { auth: TPM_RH.OWNER })).rejects.toSatisfy(rc(TPM_RC.NV_AUTHORIZATION));
    await nvWrite(tpm, nv, Uint8Array.of(1, 2, 3, 4));

    const owned = await nvDefine(tpm, { index: BASE + 2, size: 4, attributes: { AUTHWRITE: false, AUTHREAD: false, OWNERWRITE: true, OWNERREAD: true } });
    await nvWrite(tpm, owned, Uint8Array.of(5, 6, 7, 8));
    expect([...(await nvRead(tpm, owned))]).toEqual([5, 6, 7, 8]);
    // Without AUTHREAD the index's authValue is not available at all (reference IsAuthValueAvailable; nv-pin.test compares with swtpm).
    await expect(nvRead(tpm, owned, { auth: owned })).rejects.toSatisfy(rc(TPM_RC.AUTH_UNAVAILABLE));
  });

  it('checks definitions: TPM_NT sizes, PLATFORMCREATE iff platform, max size, NV_DEFINED', async () => {
    const { tpm } = await startedEngine();
    const define = (attributes: Record<string, unknown>, dataSize: number, auth: number = TPM_RH.OWNER, nvIndex = BASE + 10) =>
      tpm.run(NV_DefineSpace, { authHandle: auth }, {
        auth: new Uint8Array(0),
        publicInfo: { nvIndex, nameAlg: TPM_ALG.SHA256, attributes: TPMA_NV.of({ AUTHREAD: true, AUTHWRITE: true, ...attributes }), authPolicy: new Uint8Array(0), dataSize },
      });
    const paramRc = (code: number, n: number) => (e: unknown) => e instanceof TpmError && e.is(code) && e.parameter === n;
    await expect(define({ TPM_NT: TPM_NT.COUNTER }, 4)).rejects.toSatisfy(paramRc(TPM_RC.SIZE, 2));
    await expect(define({ TPM_NT: TPM_NT.BITS }, 16)).rejects.toSatisfy(paramRc(TPM_RC.SIZE, 2));
    await expect(define({ TPM_NT: TPM_NT.EXTEND }, 20)).rejects.toSatisfy(paramRc(TPM_RC.SIZE, 2));
    await expect(define({ TPM_NT: 3 }, 8)).rejects.toSatisfy(paramRc(TPM_RC.ATTRIBUTES, 2));
    await expect(define({}, 2049)).rejects.toSatisfy(paramRc(TPM_RC.SIZE, 2));
    const handleRc = (code: number, n: number) => (e: unknown) => e instanceof TpmError && e.is(code) && e.handle === n;
    await expect(define({ PLATFORMCREATE: true }, 8)).rejects.toSatisfy(handleRc(TPM_RC.ATTRIBUTES, 1));
    await expect(define({}, 8, TPM_RH.PLATFORM)).rejects.toSatisfy(handleRc(TPM_RC.ATTRIBUTES, 1));
    await expect(define({ WRITTEN: true }, 8)).rejects.toSatisfy(paramRc(TPM_RC.ATTRIBUTES, 2));
    await expect(define({ AUTHREAD: false }, 8)).rejects.toSatisfy(paramRc(TPM_RC.ATTRIBUTES, 2));
    await define({}, 2048);
    await expect(define({}, 8)).rejects.toSatisfy(rc(TPM_RC.NV_DEFINED));
    // Platform indices: defined with PLATFORMCREATE, the owner cannot remove them.
    const p = await nvDefine(tpm, { index: BASE + 11, size: 8 }, { auth: TPM_RH.PLATFORM });
    expect(p.attributes.PLATFORMCREATE).toBe(true);
    await expect(nvUndefine(tpm, p, { auth: TPM_RH.OWNER })).rejects.toSatisfy(rc(TPM_RC.NV_AUTHORIZATION));
    await nvUndefine(tpm, p);
    await expect(nvReadPublic(tpm, BASE + 11)).rejects.toSatisfy((e) => e instanceof TpmError && e.is(TPM_RC.HANDLE) && e.handle === 1);
  });

  it('refuses ranges past the end (NV_RANGE) and reads a 2048-byte index in 1024-byte chunks', async () => {
    const { tpm } = await startedEngine();
    const nv = await nvDefine(tpm, { index: BASE + 20, size: 2048 });
    const data = bytes(2048, 3);
    await nvWrite(tpm, nv, data);
    expect(Buffer.from(await nvRead(tpm, nv)).equals(Buffer.from(data))).toBe(true);
    expect([...(await nvRead(tpm, nv, { offset: 1000, size: 100 }))]).toEqual([...data.subarray(1000, 1100)]);
    // Raw commands, since the client refuses these before sending.
    await expect(tpm.run(NV_Read, { authHandle: nv, nvIndex: nv }, { size: 1025, offset: 0 })).rejects.toSatisfy(
      (e) => e instanceof TpmError && e.is(TPM_RC.VALUE) && e.parameter === 1,
    );
    await expect(tpm.run(NV_Read, { authHandle: nv, nvIndex: nv }, { size: 100, offset: 2000 })).rejects.toSatisfy(rc(TPM_RC.NV_RANGE));
    const small = await nvDefine(tpm, { index: BASE + 21, size: 4, attributes: { WRITEALL: true } });
    await expect(tpm.run(NV_Write, { authHandle: small, nvIndex: small }, { data: Uint8Array.of(1, 2, 3), offset: 2 })).rejects.toSatisfy(rc(TPM_RC.NV_RANGE));
    await expect(tpm.run(NV_Write, { authHandle: small, nvIndex: small }, { data: Uint8Array.of(1, 2), offset: 0 })).rejects.toSatisfy(rc(TPM_RC.NV_RANGE));
  });

  it('counters, bit fields and extend indices hold what the spec formulas say', async () => {
    const { tpm } = await startedEngine();
    const counter = await nvDefine(tpm, { index: BASE + 30, type: 'counter' });
    await expect(nvWrite(tpm, counter, new Uint8Array(8))).rejects.toSatisfy(rc(TPM_RC.ATTRIBUTES));
    await nvIncrement(tpm, counter);
    await nvIncrement(tpm, counter);
    expect(await nvReadCounter(tpm, counter)).toBe(2n);
    // A new counter starts at the highest value of a deleted counter (Part 1 §37.2.3.4; libtpms' maxCount), not of
    // those that still exist (manufacture.test.ts compares the floor with swtpm).
    const second = await nvDefine(tpm, { index: BASE + 31, type: 'counter' });
    await nvIncrement(tpm, second);
    expect(await nvReadCounter(tpm, second)).toBe(1n);

    const bitsIndex = await nvDefine(tpm, { index: BASE + 32, type: 'bits' });
    await nvSetBits(tpm, bitsIndex, 0x11n);
    await nvSetBits(tpm, bitsIndex, 0x8000000000000100n);
    expect(await nvReadCounter(tpm, bitsIndex)).toBe(0x8000000000000111n);
    await expect(nvIncrement(tpm, bitsIndex)).rejects.toSatisfy(rc(TPM_RC.ATTRIBUTES));

    const ext = await nvDefine(tpm, { index: BASE + 33, type: 'extend', nameAlg: TPM_ALG.SHA384 });
    expect(ext.size).toBe(48);
    const e1 = new TextEncoder().encode('first');
    const e2 = new TextEncoder().encode('second');
    await nvExtend(tpm, ext, e1);
    await nvExtend(tpm, ext, e2);
    const sha384 = (...p: Uint8Array[]) => {
      const h = createHash('sha384');
      for (const x of p) h.update(x);
      return h.digest();
    };
    const expected = sha384(sha384(new Uint8Array(48), e1), e2);
    expect(Buffer.from(await nvRead(tpm, ext)).equals(expected)).toBe(true);
  });

  it('write and read locks: WRITE_STCLEAR/READ_STCLEAR clear at Startup(CLEAR), WRITEDEFINE stays', async () => {
    const { engine, t } = await startedEngine();
    const tpm = new Tpm(t);
    const st = await nvDefine(tpm, { index: BASE + 40, size: 4, attributes: { WRITE_STCLEAR: true, READ_STCLEAR: true } });
    const def = await nvDefine(tpm, { index: BASE + 41, size: 4, attributes: { WRITEDEFINE: true } });
    const none = await nvDefine(tpm, { index: BASE + 42, size: 4 });
    await nvWrite(tpm, st, Uint8Array.of(1, 1, 1, 1));
    await nvWrite(tpm, def, Uint8Array.of(2, 2, 2, 2));
    await expect(nvWriteLock(tpm, none)).rejects.toSatisfy((e) => e instanceof TpmError && e.is(TPM_RC.ATTRIBUTES) && e.handle === 2);
    await expect(nvReadLock(tpm, none)).rejects.toSatisfy(rc(TPM_RC.ATTRIBUTES));
    await nvWriteLock(tpm, st);
    await nvWriteLock(tpm, st); // already locked: success
    await nvWriteLock(tpm, def);
    await nvReadLock(tpm, st);
    await expect(nvWrite(tpm, st, Uint8Array.of(3, 3, 3, 3))).rejects.toSatisfy(rc(TPM_RC.NV_LOCKED));
    await expect(nvWrite(tpm, def, Uint8Array.of(3, 3, 3, 3))).rejects.toSatisfy(rc(TPM_RC.NV_LOCKED));
    await expect(nvRead(tpm, st)).rejects.toSatisfy(rc(TPM_RC.NV_LOCKED));
    expect([...(await nvRead(tpm, def))]).toEqual([2, 2, 2, 2]);
    // A power cycle and Startup(CLEAR).
    await runCommand(t, Shutdown, {}, { shutdownType: TPM_SU.CLEAR });
    engine.init();
    await runCommand(t, Startup, {}, { startupType: TPM_SU.CLEAR });
    const st2 = await nvReadPublic(tpm, BASE + 40);
    const def2 = await nvReadPublic(tpm, BASE + 41);
    expect([st2.attributes.WRITELOCKED, st2.attributes.READLOCKED, def2.attributes.WRITELOCKED]).toEqual([false, false, true]);
    expect([...(await nvRead(tpm, st2))]).toEqual([1, 1, 1, 1]);
    await nvWrite(tpm, st2, Uint8Array.of(4, 4, 4, 4));
    await expect(nvWrite(tpm, def2, Uint8Array.of(4, 4, 4, 4))).rejects.toSatisfy(rc(TPM_RC.NV_LOCKED));
  });

  it('persists NV before answering: a new engine from the same store reads the value back', async () => {
    const dir = join(root, 'persist');
    const first = await openSimulatorStore(dir, { create: true });
    let saves = 0;
    const { tpm } = await startedEngine(new TpmEngine({
      state: first.state,
      persist: async (s) => {
        saves++;
        await first.store.save(s);
      },
    }));
    const nv = await nvDefine(tpm, { index: BASE + 50, size: 16, authValue: Uint8Array.of(7) });
    const before = saves;
    const data = bytes(16, 42);
    await nvWrite(tpm, nv, data);
    expect(saves).toBe(before + 1);
    // Reads change nothing durable.
    await nvRead(tpm, nv);
    await nvReadPublic(tpm, BASE + 50);
    expect(saves).toBe(before + 1);
    // No Shutdown, no close-time save: only what was persisted before each answer survives.
    await first.store.close();

    const second = await openSimulatorStore(dir);
    try {
      const { tpm: tpm2 } = await startedEngine(new TpmEngine({ state: second.state }));
      const back = await nvReadPublic(tpm2, BASE + 50, { authValue: Uint8Array.of(7) });
      expect(Buffer.from(back.name).equals(Buffer.from(nv.name))).toBe(true);
      expect(Buffer.from(await nvRead(tpm2, back)).equals(Buffer.from(data))).toBe(true);
    } finally {
      await second.store.close();
    }
  });

  it('trustroot tpm serve\'s platform has NV on disk when NV_Write answers, and nothing new after a read', async () => {
    const dir = join(root, 'serve');
    const opened = await openEnginePlatform(dir);
    try {
      const t = inProcessTransport(opened.platform);
      await runCommand(t, Startup, {}, { startupType: TPM_SU.CLEAR });
      const tpm = new Tpm(t);
      const onDisk = () => validateSimulatorState(parseStateFile(readFileSync(join(dir, STATE_FILE_NAME)), SIMULATOR_STATE_VERSION));
      const nv = await nvDefine(tpm, { index: BASE + 70, size: 8 });
      const data = bytes(8, 99);
      await nvWrite(tpm, nv, data);
      const saved = onDisk().nvIndices.find((n) => n.nvIndex === BASE + 70);
      expect(saved !== undefined && Buffer.from(saved.data).equals(Buffer.from(data))).toBe(true);
      expect(TPMA_NV.fromWord(saved!.attributes).WRITTEN).toBe(true);
      const file = readFileSync(join(dir, STATE_FILE_NAME));
      await nvRead(tpm, nv);
      expect(readFileSync(join(dir, STATE_FILE_NAME)).equals(file)).toBe(true);
    } finally {
      await opened.close();
    }
  });

  it('CLEAR_STCLEAR indices read as unwritten after Startup(CLEAR), others keep their data', async () => {
    const { engine, t } = await startedEngine();
    const tpm = new Tpm(t);
    const volatileIndex = await nvDefine(tpm, { index: BASE + 80, size: 2, attributes: { CLEAR_STCLEAR: true } });
    const kept = await nvDefine(tpm, { index: BASE + 81, size: 2 });
    await nvWrite(tpm, volatileIndex, Uint8Array.of(1, 2));
    await nvWrite(tpm, kept, Uint8Array.of(3, 4));
    await runCommand(t, Shutdown, {}, { shutdownType: TPM_SU.STATE });
    engine.init();
    // A TPM Resume keeps it written (Part 2 §13.4: only Startup(CLEAR) clears it).
    await runCommand(t, Startup, {}, { startupType: TPM_SU.STATE });
    expect([...(await nvRead(tpm, await nvReadPublic(tpm, BASE + 80)))]).toEqual([1, 2]);
    engine.init();
    await runCommand(t, Startup, {}, { startupType: TPM_SU.CLEAR });
    await expect(nvRead(tpm, await nvReadPublic(tpm, BASE + 80))).rejects.toSatisfy(rc(TPM_RC.NV_UNINITIALIZED));
    expect([...(await nvRead(tpm, await nvReadPublic(tpm, BASE + 81)))]).toEqual([3, 4]);
  });

  it('runs out of NV memory with TPM_RC_NV_SPACE and gets it back on undefine', async () => {
    const { tpm } = await startedEngine();
    const perIndex = 2048 + NV_MEMORY.perIndexOverhead;
    const fit = Math.floor(NV_MEMORY.bytes / perIndex);
    for (let i = 0; i < fit; i++) await nvDefine(tpm, { index: BASE + 0x1000 + i, size: 2048 });
    await expect(nvDefine(tpm, { index: BASE + 0x1000 + fit, size: 2048 })).rejects.toSatisfy(rc(TPM_RC.NV_SPACE));
    await nvUndefine(tpm, BASE + 0x1000);
    await nvDefine(tpm, { index: BASE + 0x1000 + fit, size: 2048 });
  });

  it('answers TPM_RC_NV_UNAVAILABLE when persisting fails', async () => {
    let broken = false;
    const { tpm } = await startedEngine(new TpmEngine({ persist: () => (broken ? Promise.reject(new Error('disk gone')) : Promise.resolve()) }));
    broken = true;
    await expect(nvDefine(tpm, { index: BASE + 60, size: 4 })).rejects.toSatisfy(rc(TPM_RC.NV_UNAVAILABLE));
  });
});

/**
 * One sequence of NV commands, logged as outcomes (response code or returned
 * bytes and Names), run against swtpm (libtpms) and against the engine: the
 * logs must agree, so every code and value above is libtpms's as well.
 */
async function nvScenario(tpm: Tpm): Promise<string[]> {
  const log: string[] = [];
  const step = async (label: string, f: () => Promise<unknown>): Promise<void> => {
    try {
      const v = await f();
      log.push(`${label}: ${v instanceof Uint8Array ? Buffer.from(v).toString('hex') : typeof v === 'bigint' ? v.toString(16) : 'ok'}`);
    } catch (e) {
      log.push(`${label}: ${e instanceof TpmError ? `rc 0x${e.rc.toString(16)}` : String(e)}`);
    }
  };
  const B = 0x01600000;
  const raw = (attributes: Record<string, unknown>, dataSize: number, auth: number = TPM_RH.OWNER) =>
    tpm.run(NV_DefineSpace, { authHandle: auth }, {
      auth: new Uint8Array(0),
      publicInfo: { nvIndex: B + 99, nameAlg: TPM_ALG.SHA256, attributes: TPMA_NV.of({ AUTHREAD: true, AUTHWRITE: true, ...attributes }), authPolicy: new Uint8Array(0), dataSize },
    });
  const nv = await nvDefine(tpm, { index: B, size: 32, authValue: Uint8Array.of(1, 2, 3), attributes: { NO_DA: true } });
  await step('read before write', () => nvRead(tpm, nv));
  await step('partial write', () => nvWrite(tpm, nv, Uint8Array.of(7, 8, 9), { offset: 29 }));
  await step('read after partial write', () => nvRead(tpm, nv));
  await step('name after write', async () => (await nvReadPublic(tpm, B)).name);
  await step('write past end', () => tpm.run(NV_Write, { authHandle: nv, nvIndex: nv }, { data: Uint8Array.of(1, 2), offset: 31 }));
  await step('write offset past end', () => tpm.run(NV_Write, { authHandle: nv, nvIndex: nv }, { data: Uint8Array.of(1), offset: 33 }));
  await step('read past end', () => tpm.run(NV_Read, { authHandle: nv, nvIndex: nv }, { size: 8, offset: 30 }));
  await step('read offset past end', () => tpm.run(NV_Read, { authHandle: nv, nvIndex: nv }, { size: 0, offset: 40 }));
  await step('wrong password (NO_DA)', () => nvRead(tpm, new NvIndex(nv.publicArea, Uint8Array.of(1, 2, 4))));
  await step('owner write without OWNERWRITE', () => nvWrite(tpm, nv, Uint8Array.of(1), { auth: TPM_RH.OWNER }));
  await step('define again', () => nvDefine(tpm, { index: B, size: 32 }));
  await step('counter size 4', () => raw({ TPM_NT: TPM_NT.COUNTER }, 4));
  await step('extend size 20 (SHA-256)', () => raw({ TPM_NT: TPM_NT.EXTEND }, 20));
  await step('unknown TPM_NT', () => raw({ TPM_NT: 3 }, 8));
  await step('ordinary 2049', () => raw({}, 2049));
  await step('PLATFORMCREATE by owner', () => raw({ PLATFORMCREATE: true }, 8));
  await step('platform without PLATFORMCREATE', () => raw({}, 8, TPM_RH.PLATFORM));
  await step('WRITTEN at define', () => raw({ WRITTEN: true }, 8));
  await step('no read authorization', () => raw({ AUTHREAD: false }, 8));
  const big = await nvDefine(tpm, { index: B + 1, size: 2048 });
  await step('write 2048', () => nvWrite(tpm, big, bytes(2048, 5)));
  await step('read 2048', () => nvRead(tpm, big));
  const counter = await nvDefine(tpm, { index: B + 2, type: 'counter' });
  await step('write a counter', () => nvWrite(tpm, counter, new Uint8Array(8)));
  await step('read counter before increment', () => nvReadCounter(tpm, counter));
  await step('increment', () => nvIncrement(tpm, counter));
  await step('increment', () => nvIncrement(tpm, counter));
  await step('read counter', () => nvReadCounter(tpm, counter));
  const bitsIndex = await nvDefine(tpm, { index: B + 3, type: 'bits' });
  await step('set bits', () => nvSetBits(tpm, bitsIndex, 0x1001n));
  await step('set bits', () => nvSetBits(tpm, bitsIndex, 0x8000000000000010n));
  await step('read bits', () => nvReadCounter(tpm, bitsIndex));
  await step('increment bits', () => nvIncrement(tpm, bitsIndex));
  const ext = await nvDefine(tpm, { index: B + 4, type: 'extend' });
  await step('extend', () => nvExtend(tpm, ext, new TextEncoder().encode('a')));
  await step('extend', () => nvExtend(tpm, ext, new TextEncoder().encode('bc')));
  await step('read extend', () => nvRead(tpm, ext));
  await step('extend an ordinary index', () => nvExtend(tpm, nv, Uint8Array.of(1)));
  const st = await nvDefine(tpm, { index: B + 5, size: 4, attributes: { WRITE_STCLEAR: true, READ_STCLEAR: true } });
  await step('write lock without attribute', () => nvWriteLock(tpm, nv));
  await step('read lock without attribute', () => nvReadLock(tpm, nv));
  await step('read lock unwritten', () => nvReadLock(tpm, st));
  await step('read locked', () => nvRead(tpm, st));
  await step('write lock', () => nvWriteLock(tpm, st));
  await step('write lock again', () => nvWriteLock(tpm, st));
  await step('write locked', () => nvWrite(tpm, st, Uint8Array.of(1, 2, 3, 4)));
  await step('locked public', async () => (await nvReadPublic(tpm, B + 5)).name);
  const p = await nvDefine(tpm, { index: B + 6, size: 8 }, { auth: TPM_RH.PLATFORM });
  await step('owner undefines a platform index', () => nvUndefine(tpm, p, { auth: TPM_RH.OWNER }));
  await step('platform undefines it', () => nvUndefine(tpm, p));
  await step('read public of undefined', () => nvReadPublic(tpm, B + 6));
  const g = await nvDefine(tpm, { index: B + 7, size: 4, attributes: { GLOBALLOCK: true } });
  await step('write a GLOBALLOCK index', () => nvWrite(tpm, g, Uint8Array.of(1, 2, 3, 4)));
  await step('global write lock', () => tpm.run(NV_GlobalWriteLock, { authHandle: TPM_RH.OWNER }, {}));
  await step('write after the global lock', () => nvWrite(tpm, g, Uint8Array.of(5, 6, 7, 8)));
  await step('write an index without GLOBALLOCK', () => nvWrite(tpm, big, Uint8Array.of(1)));
  await step('globally locked public', async () => (await nvReadPublic(tpm, B + 7)).name);
  await step('global write lock again', () => tpm.run(NV_GlobalWriteLock, { authHandle: TPM_RH.OWNER }, {}));
  for (const i of [B, B + 1, B + 2, B + 3, B + 4, B + 5, B + 7]) await nvUndefine(tpm, i);
  return log;
}

describeWithSwtpm('simulator NV indices agree with swtpm', () => {
  const tpms = swtpmAndSimulator();

  it('the same NV command sequence gives the same codes, values and Names', async () => {
    const { theirs, ours } = await tpms.both((side) => nvScenario(side.tpm));
    expect(ours).toEqual(theirs);
  });
});
