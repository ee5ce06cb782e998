/**
 * The simulator's state store: tagged-JSON round trip of every field kind,
 * each kind of damage → its error code, versions, missing state, the lock
 * (contention, stale PID, live foreign PID) and coalesced saves.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { digestSize } from '../../src/tpm/crypto/hash.js';
import { StateError } from '../../src/tpm/errors.js';
import { createSimulatorState, SIMULATOR_STATE_VERSION } from '../../src/simulator/state.js';
import {
  LOCK_FILE_NAME,
  openSimulatorStore,
  parseStateFile,
  serializeState,
  STATE_FILE_NAME,
  StateLock,
  StateStore,
  type VersionedState,
} from '../../src/simulator/store.js';
import { applyUpdate, crashTestRandom, modelState } from '../support/state-crash-model.js';

const root = mkdtempSync(join(tmpdir(), 'trustroot-store-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let folders = 0;
const freshDir = (): string => join(root, `tpm${folders++}`);

/** What the expression throws, as a StateError code (fails the test on anything else). */
async function codeOf(fn: () => unknown): Promise<string> {
  try {
    await fn();
  } catch (error) {
    expect(error).toBeInstanceOf(StateError);
    return (error as StateError).code;
  }
  throw new Error('did not throw');
}

/** A file whose header is re-made around `payload`, so only the payload's content is wrong. */
function withPayload(payload: string, stateVersion = 1): Buffer {
  const body = Buffer.from(payload, 'utf8');
  const header = { format: 'trustroot-simulator-state', formatVersion: 1, stateVersion, length: body.length, sha256: createHash('sha256').update(body).digest('hex') };
  return Buffer.concat([Buffer.from(`${JSON.stringify(header)}\n`), body]);
}

interface Everything extends VersionedState {
  [key: string]: unknown;
}

const everything = (): Everything => {
  const backing = new Uint8Array([9, 8, 7, 6, 5, 4]);
  return {
    version: 3,
    nil: null,
    yes: true,
    no: false,
    int: 0x7fffffff,
    negative: -42,
    fraction: 0.125,
    text: 'trustroot ✓ "quoted" \\ \n',
    emptyText: '',
    zero: 0n,
    u64max: 0xffff_ffff_ffff_ffffn,
    bigNegative: -(1n << 100n),
    empty: new Uint8Array(0),
    bytes: new Uint8Array([0, 1, 0xfe, 0xff]),
    view: backing.subarray(2, 5), // a view at an offset: only its own bytes are stored
    nested: { list: [1n, new Uint8Array([1]), [[]], { deep: { deeper: 'x' } }], emptyObject: {} },
  };
};

describe('tagged JSON round trip', () => {
  it('every field kind comes back with its type and value', () => {
    const value = everything();
    const back = parseStateFile(serializeState(value), 3) as Everything;
    expect(back).toEqual({ ...value, view: new Uint8Array([7, 6, 5]) });
    expect(back['u64max']).toBe(0xffff_ffff_ffff_ffffn);
    expect(back['bytes']).toBeInstanceOf(Uint8Array);
    expect(Buffer.isBuffer(back['bytes'])).toBe(false);
  });

  it('undefined properties are left out', () => {
    const back = parseStateFile(serializeState({ version: 1, gone: undefined, kept: 1 } as VersionedState), 1);
    expect(back).toEqual({ version: 1, kept: 1 });
    expect('gone' in back).toBe(false);
  });

  it.each([
    ['NaN', { version: 1, x: Number.NaN }],
    ['Infinity', { version: 1, x: Number.POSITIVE_INFINITY }],
    ['a Map', { version: 1, x: new Map() }],
    ['a Date', { version: 1, x: new Date(0) }],
    ['a function', { version: 1, x: () => 1 }],
    ['undefined in an array', { version: 1, x: [1, undefined] }],
    ['a key starting with $', { version: 1, x: { $bytes: '00' } }],
    ['a fractional version', { version: 1.5 }],
  ])('refuses %s (state.value)', async (_name, value) => {
    expect(await codeOf(() => serializeState(value as VersionedState))).toBe('state.value');
  });

  it('a full SimulatorState survives the store (open with create, close, reopen)', async () => {
    const dir = freshDir();
    const first = await openSimulatorStore(dir, { create: true });
    expect(first.created).toBe(true);
    const state = first.state;
    for (let n = 1; n <= 36; n++) applyUpdate(state, n); // NV indices, persistent objects, auths, DA, clock
    state.savedState = {
      pcrs: [{ hashAlg: 0x000b, values: [new Uint8Array(32).fill(1), new Uint8Array(32)] }],
      shEnable: true,
      ehEnable: false,
      sessions: [{ handle: 0x02000001, sequence: 5n }],
      sessionSequence: 7n,
      pcrUpdateCounter: 31,
    };
    state.pendingPcrAllocation = [{ hashAlg: 0x000c, pcrs: [0, 1, 23] }];
    state.orderlyShutdown = 'state';
    await first.store.save(state);
    await first.store.close();
    const second = await openSimulatorStore(dir);
    expect(second.created).toBe(false);
    expect(second.state).toEqual(state);
    expect(second.state.nvIndices.length).toBeGreaterThan(0);
    expect(second.state.persistentObjects.length).toBeGreaterThan(0);
    await second.store.close();
  });
});

describe('damaged files', () => {
  const good = Buffer.from(serializeState(modelState(30)));
  const newline = good.indexOf(0x0a);

  it('every truncation of a valid file is state.corrupt', async () => {
    // Every cut in the header and a spread of cuts in the payload (every 7th byte) plus the last one.
    const cuts = [...Array.from({ length: newline + 2 }, (_, i) => i), ...Array.from({ length: Math.ceil((good.length - newline) / 7) }, (_, i) => newline + 2 + i * 7), good.length - 1];
    for (const cut of new Set(cuts)) {
      if (cut >= good.length) continue;
      expect(await codeOf(() => parseStateFile(good.subarray(0, cut), 1)), `cut at ${cut}`).toBe('state.corrupt');
    }
  });

  it('trailing bytes are state.corrupt', async () => {
    expect(await codeOf(() => parseStateFile(Buffer.concat([good, Buffer.from('\n')]), 1))).toBe('state.corrupt');
  });

  it('a flipped payload bit is state.checksum, wherever it is', async () => {
    for (let i = newline + 1; i < good.length; i += 97) {
      const bad = Buffer.from(good);
      bad[i] = (bad[i] ?? 0) ^ 0x04;
      expect(await codeOf(() => parseStateFile(bad, 1)), `byte ${i}`).toBe('state.checksum');
    }
  });

  it('a wrong checksum in the header is state.checksum', async () => {
    const text = good.toString('utf8').replace(/"sha256":"[0-9a-f]/, (m) => m.slice(0, -1) + (m.endsWith('0') ? '1' : '0'));
    expect(await codeOf(() => parseStateFile(Buffer.from(text), 1))).toBe('state.checksum');
  });

  it.each([
    ['an empty file', Buffer.alloc(0)],
    ['a header that is not JSON', Buffer.from('{"format":\n{}')],
    ['a header that is an array', Buffer.from('[]\n{}')],
    ['another format', Buffer.from(good.toString('utf8').replace('trustroot-simulator-state', 'something-else'))],
    ['a header without sha256', Buffer.from('{"format":"trustroot-simulator-state","formatVersion":1,"stateVersion":1,"length":2}\n{}')],
    ['a negative length', Buffer.from('{"format":"trustroot-simulator-state","formatVersion":1,"stateVersion":1,"length":-1,"sha256":"' + '0'.repeat(64) + '"}\n')],
    ['a payload that is not JSON (checksum matching)', withPayload('{"version":1,')],
    ['a payload that is not an object', withPayload('[1]')],
    ['an unknown tag', withPayload('{"version":1,"x":{"$date":"0"}}')],
    ['a tag with a second key', withPayload('{"version":1,"x":{"$bytes":"00","y":1}}')],
    ['odd-length hex', withPayload('{"version":1,"x":{"$bytes":"abc"}}')],
    ['upper-case hex', withPayload('{"version":1,"x":{"$bytes":"AB"}}')],
    ['a $bigint that is not decimal', withPayload('{"version":1,"x":{"$bigint":"0x10"}}')],
    ['a payload version unlike the header', withPayload('{"version":2}')],
  ])('%s is state.corrupt', async (_name, bytes) => {
    expect(await codeOf(() => parseStateFile(bytes, 1))).toBe('state.corrupt');
  });

  it('an unknown file format version is state.version', async () => {
    const text = good.toString('utf8').replace('"formatVersion":1', '"formatVersion":2');
    expect(await codeOf(() => parseStateFile(Buffer.from(text), 1))).toBe('state.version');
  });

  it('a state layout version this build does not know is state.version', async () => {
    expect(await codeOf(() => parseStateFile(serializeState({ version: 2 }), 1))).toBe('state.version');
    const dir = freshDir();
    mkdirSync(dir);
    writeFileSync(join(dir, STATE_FILE_NAME), serializeState({ ...createSimulatorState(), version: SIMULATOR_STATE_VERSION + 1 } as VersionedState));
    expect(await codeOf(() => openSimulatorStore(dir, { create: true }))).toBe('state.version');
    expect(existsSync(join(dir, LOCK_FILE_NAME))).toBe(false); // a failed open leaves no lock
  });

  it('a version-1 state (before nvCounterMax and ekCertificates) is migrated on open, keeps its content, and is written back as the current version', async () => {
    const dir = freshDir();
    mkdirSync(dir);
    const current = createSimulatorState();
    current.auths.owner.authValue = Uint8Array.of(9, 9);
    const { nvCounterMax: _n, ekCertificates: _e, ...v1 } = { ...current, version: 1 };
    writeFileSync(join(dir, STATE_FILE_NAME), serializeState(v1 as VersionedState));
    const opened = await openSimulatorStore(dir);
    try {
      expect(opened.state.version).toBe(SIMULATOR_STATE_VERSION);
      expect(opened.state.nvCounterMax).toBe(0n);
      expect(opened.state.ekCertificates.provisioned).toBe(false);
      expect(opened.state.auths.owner.authValue).toEqual(Uint8Array.of(9, 9));
      expect(opened.state.seeds.owner).toEqual(current.seeds.owner);
      await opened.store.save(opened.state);
    } finally {
      await opened.store.close();
    }
    const reread = parseStateFile(readFileSync(join(dir, STATE_FILE_NAME)), SIMULATOR_STATE_VERSION);
    expect(reread.version).toBe(SIMULATOR_STATE_VERSION);
    // Version 0 never existed: below the oldest migration is state.version, not a guess.
    writeFileSync(join(dir, STATE_FILE_NAME), serializeState({ ...v1, version: 0 } as VersionedState));
    expect(await codeOf(() => openSimulatorStore(dir))).toBe('state.version');
  });

  it('a version-3 state (before part 2) is migrated on open: no PCR policy, empty PCR authValues, no commitment, the libtpms profile, no DA use, no saved session; the rest kept', async () => {
    const dir = freshDir();
    mkdirSync(dir);
    const current = createSimulatorState();
    current.auths.owner.authValue = Uint8Array.of(7, 7);
    // A layout-3 TPM shut down with Shutdown(STATE): PCRs and enables saved, no session.
    const savedPcrs = current.pcrAllocation.map((b) => ({ hashAlg: b.hashAlg, values: b.pcrs.map(() => new Uint8Array(digestSize(b.hashAlg))) }));
    current.savedState = { pcrs: savedPcrs, shEnable: true, ehEnable: false } as never;
    const { pcrAuthPolicies: _p, pcrAuthValues: _v, commitCounter: _c, commitArray: _a, profile: _f, ...rest } = { ...current, version: 3 };
    const { daUsed: _u, selfHealElapsed: _s, lockoutElapsed: _l, ...da3 } = current.dictionaryAttack;
    const v3 = { ...rest, dictionaryAttack: da3 };
    writeFileSync(join(dir, STATE_FILE_NAME), serializeState(v3 as VersionedState));
    const opened = await openSimulatorStore(dir);
    try {
      expect(opened.state.version).toBe(SIMULATOR_STATE_VERSION);
      expect(opened.state.pcrAuthPolicies).toEqual([{ hashAlg: 0x0010, policy: new Uint8Array(0) }]);
      expect(opened.state.pcrAuthValues).toEqual([new Uint8Array(0)]);
      expect(opened.state.commitCounter).toBe(0n);
      expect(opened.state.commitArray).toEqual(new Uint8Array(16));
      expect(opened.state.profile).toBe('libtpms');
      expect(opened.state.savedState).toEqual({ pcrs: savedPcrs, shEnable: true, ehEnable: false, sessions: [], sessionSequence: 0n, pcrUpdateCounter: 0 });
      expect(opened.state.dictionaryAttack).toEqual({ ...current.dictionaryAttack, daUsed: false, selfHealElapsed: 0, lockoutElapsed: 0 });
      expect(opened.state.auths.owner.authValue).toEqual(Uint8Array.of(7, 7));
      expect(opened.state.seeds).toEqual(current.seeds);
      await opened.store.save(opened.state);
    } finally {
      await opened.store.close();
    }
    expect(parseStateFile(readFileSync(join(dir, STATE_FILE_NAME)), SIMULATOR_STATE_VERSION).version).toBe(SIMULATOR_STATE_VERSION);
  });

  it.each([
    ['a missing field', (s: Record<string, unknown>) => delete s['disableClear']],
    ['a negative commitCounter', (s: Record<string, unknown>) => (s['commitCounter'] = -1n)],
    ['a commitCounter above UINT64', (s: Record<string, unknown>) => (s['commitCounter'] = 1n << 64n)],
    ['no PCR policy group', (s: Record<string, unknown>) => (s['pcrAuthPolicies'] = [])],
    ['two PCR authValue groups', (s: Record<string, unknown>) => (s['pcrAuthValues'] = [new Uint8Array(0), new Uint8Array(0)])],
    ['a PCR policy with TPM_ALG_NULL and a digest', (s: Record<string, unknown>) => (s['pcrAuthPolicies'] = [{ hashAlg: 0x0010, policy: new Uint8Array(32) }])],
    ['a PCR authValue longer than any digest', (s: Record<string, unknown>) => (s['pcrAuthValues'] = [new Uint8Array(65)])],
    ['an unknown field', (s: Record<string, unknown>) => (s['extra'] = 1)],
    ['bytes where a number belongs', (s: Record<string, unknown>) => ((s['clock'] as Record<string, unknown>)['resetCount'] = new Uint8Array(1))],
    ['a number where a bigint belongs', (s: Record<string, unknown>) => ((s['clock'] as Record<string, unknown>)['clock'] = 5)],
    ['an NV index without data', (s: Record<string, unknown>) => delete (s['nvIndices'] as Record<string, unknown>[])[0]?.['data']],
    ['a PCR index that is a string', (s: Record<string, unknown>) => ((s['pcrAllocation'] as { pcrs: unknown[] }[])[0]!.pcrs[0] = '0')],
    ['an unknown orderlyShutdown', (s: Record<string, unknown>) => (s['orderlyShutdown'] = 'maybe')],
  ])('a SimulatorState with %s is state.corrupt on open, never a fresh TPM', async (_name, damage) => {
    const dir = freshDir();
    mkdirSync(dir);
    const state = modelState(10) as unknown as Record<string, unknown>;
    damage(state);
    const bytes = serializeState(state as unknown as VersionedState);
    writeFileSync(join(dir, STATE_FILE_NAME), bytes);
    expect(await codeOf(() => openSimulatorStore(dir, { create: true }))).toBe('state.corrupt');
    expect(readFileSync(join(dir, STATE_FILE_NAME))).toEqual(Buffer.from(bytes)); // untouched
  });

  it('a damaged file on disk is an error even when creation is allowed', async () => {
    const dir = freshDir();
    mkdirSync(dir);
    writeFileSync(join(dir, STATE_FILE_NAME), good.subarray(0, good.length - 10));
    expect(await codeOf(() => openSimulatorStore(dir, { create: true }))).toBe('state.corrupt');
    writeFileSync(join(dir, STATE_FILE_NAME), '');
    expect(await codeOf(() => openSimulatorStore(dir, { create: true }))).toBe('state.corrupt');
  });
});

describe('missing state', () => {
  it('no folder or no file is state.missing unless creation is asked for', async () => {
    const dir = freshDir();
    expect(await codeOf(() => openSimulatorStore(dir))).toBe('state.missing');
    expect(existsSync(dir)).toBe(false);
    mkdirSync(dir);
    expect(await codeOf(() => openSimulatorStore(dir))).toBe('state.missing');
    expect(readdirSync(dir)).toEqual([]); // neither a lock nor a file left behind
    const opened = await openSimulatorStore(dir, { create: true, random: crashTestRandom() });
    expect(opened.created).toBe(true);
    expect(opened.state).toEqual(modelState(0));
    await opened.store.close();
    // Manufactured and saved before open resolved.
    expect(parseStateFile(readFileSync(join(dir, STATE_FILE_NAME)), SIMULATOR_STATE_VERSION)).toEqual(modelState(0));
  });

  it('a temp file left by a crash is removed at open and does not count as state', async () => {
    const dir = freshDir();
    mkdirSync(dir);
    writeFileSync(join(dir, `${STATE_FILE_NAME}.tmp-99999-0`), serializeState(modelState(5)));
    expect(await codeOf(() => openSimulatorStore(dir))).toBe('state.missing');
    const opened = await openSimulatorStore(dir, { create: true, random: crashTestRandom() });
    expect(opened.state).toEqual(modelState(0));
    expect(readdirSync(dir).sort()).toEqual([LOCK_FILE_NAME, STATE_FILE_NAME]);
    await opened.store.close();
    expect(readdirSync(dir)).toEqual([STATE_FILE_NAME]);
  });
});

describe('lock', () => {
  it('a second open of a served folder is state.locked until the first closes', async () => {
    const dir = freshDir();
    const first = await openSimulatorStore(dir, { create: true });
    expect(readFileSync(join(dir, LOCK_FILE_NAME), 'utf8')).toBe(`${process.pid}\n`);
    expect(await codeOf(() => openSimulatorStore(dir, { create: true }))).toBe('state.locked');
    expect(await codeOf(() => StateLock.acquire(dir))).toBe('state.locked');
    await first.store.close();
    expect(await codeOf(() => first.store.save(first.state))).toBe('state.locked');
    const second = await openSimulatorStore(dir);
    await second.store.close();
  });

  it('a lock whose PID is dead is stale and broken', async () => {
    const dir = freshDir();
    await (await openSimulatorStore(dir, { create: true })).store.close();
    const dead = spawnSync('true').pid;
    expect(dead).toBeGreaterThan(0);
    writeFileSync(join(dir, LOCK_FILE_NAME), `${dead}\n`);
    const opened = await openSimulatorStore(dir);
    expect(readFileSync(join(dir, LOCK_FILE_NAME), 'utf8')).toBe(`${process.pid}\n`);
    await opened.store.close();
    expect(existsSync(join(dir, LOCK_FILE_NAME))).toBe(false);
  });

  it('ten racing opens of one folder: exactly one wins, the rest are state.locked', async () => {
    const dir = freshDir();
    await (await openSimulatorStore(dir, { create: true })).store.close();
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => openSimulatorStore(dir)));
    const won = results.filter((r) => r.status === 'fulfilled');
    expect(won).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect((r.reason as StateError).code).toBe('state.locked');
    await (won[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof openSimulatorStore>>>).value.store.close();
    expect(readdirSync(dir)).toEqual([STATE_FILE_NAME]);
  });

  it('leftovers of a process killed while locking (unpublished PID file, stale lock moved aside) are cleaned up', async () => {
    const dir = freshDir();
    await (await openSimulatorStore(dir, { create: true })).store.close();
    const dead = spawnSync('true').pid;
    writeFileSync(join(dir, `${LOCK_FILE_NAME}.${dead}.0badc0de.tmp`), `${dead}\n`);
    writeFileSync(join(dir, `${LOCK_FILE_NAME}.stale-${dead}-0`), `${dead}\n`);
    const opened = await openSimulatorStore(dir);
    expect(readdirSync(dir).sort()).toEqual([LOCK_FILE_NAME, STATE_FILE_NAME]);
    await opened.store.close();
  });

  it('a lock held by another live process is respected, and an unreadable one too', async () => {
    const dir = freshDir();
    await (await openSimulatorStore(dir, { create: true })).store.close();
    const sleeper = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      writeFileSync(join(dir, LOCK_FILE_NAME), `${sleeper.pid}\n`);
      const error = await StateStore.open(dir, { version: 1 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StateError);
      expect((error as StateError).code).toBe('state.locked');
      expect((error as StateError).message).toContain(String(sleeper.pid));
      expect(readFileSync(join(dir, LOCK_FILE_NAME), 'utf8')).toBe(`${sleeper.pid}\n`); // not broken
    } finally {
      sleeper.kill('SIGKILL');
    }
    writeFileSync(join(dir, LOCK_FILE_NAME), '');
    expect(await codeOf(() => openSimulatorStore(dir))).toBe('state.locked');
  });
});

describe('save', () => {
  it('concurrent saves all resolve and the file holds the newest; each snapshot is taken at call time', async () => {
    const dir = freshDir();
    const { store, state } = await openSimulatorStore(dir, { create: true, random: crashTestRandom() });
    const saves: Promise<void>[] = [];
    for (let n = 1; n <= 25; n++) {
      applyUpdate(state, n);
      saves.push(store.save(state));
    }
    await Promise.all(saves);
    applyUpdate(state, 26); // after the last save: not on disk
    expect(parseStateFile(readFileSync(join(dir, STATE_FILE_NAME)), SIMULATOR_STATE_VERSION)).toEqual(modelState(25));
    await store.close();
  });

  it('a save that cannot be serialized rejects alone and writes nothing', async () => {
    const dir = freshDir();
    const { store, state } = await openSimulatorStore(dir, { create: true, random: crashTestRandom() });
    const before = readFileSync(join(dir, STATE_FILE_NAME));
    const broken = { ...state, clock: { ...state.clock, resetCount: Number.NaN } };
    expect(await codeOf(() => store.save(broken))).toBe('state.value');
    expect(readFileSync(join(dir, STATE_FILE_NAME))).toEqual(before);
    applyUpdate(state, 1);
    await store.save(state);
    expect(parseStateFile(readFileSync(join(dir, STATE_FILE_NAME)), SIMULATOR_STATE_VERSION)).toEqual(modelState(1));
    await store.close();
  });
});
