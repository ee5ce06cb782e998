/**
 * Fuzzing the software TPM's state file loader (issue 7 "Bad input"): a
 * mutated state file is a typed StateError or a valid state, never another
 * exception or a hang; and a state the loader accepts is a working TPM.
 *
 * Seeds are real state files (store.ts serializeState) of engines with
 * persistent keys, NV indices, a saved Shutdown(STATE), a pending
 * PCR_Allocate, and the same files relabelled as older layouts so the
 * migrations (state.ts STATE_MIGRATIONS) see odd input too. Mutations:
 *  - raw bytes (fuzz/parsers.ts mutate): mostly header and checksum damage;
 *  - payload bytes with the header made to fit (length, SHA-256), so the
 *    JSON parser and the tagged-JSON decoder get them;
 *  - structure: a value anywhere in the decoded JSON replaced (other kinds,
 *    edge numbers, bad $bytes / $bigint tags, deep nesting), removed,
 *    duplicated or joined by an unknown key, then re-serialized with a
 *    fitting header, so validation (validateSimulatorState) is what decides;
 *  - header fields (versions, length) with the payload left whole.
 * Every input goes through decodeStateFile (what StateStore.open reads);
 * one in 500 also through openSimulatorStore on a temp folder, which must
 * agree. An accepted state is loaded into a TpmEngine that must answer a
 * short session (Startup, GetRandom, GetCapability, PCR_Read, ReadPublic of
 * each persistent object, NV_ReadPublic/NV_Read of each index,
 * CreatePrimary, Shutdown(STATE) and a Resume) without TPM_RC_FAILURE, and
 * whose state must still serialize and validate afterwards.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPrimary, eccSigningTemplate, nvDefine, nvIncrement, nvWrite, pcrAllocate, persist, Tpm } from '../src/client/index.js';
import { TpmEngine } from '../src/simulator/engine.js';
import { createSimulatorState, type SimulatorState } from '../src/simulator/state.js';
import { decodeStateFile, openSimulatorStore, serializeState, simulatorStateOptions, STATE_FILE_NAME, validateSimulatorState } from '../src/simulator/store.js';
import { CreatePrimary, GetCapability, GetRandom, NV_Read, NV_ReadPublic, PCR_Read, ReadPublic, Shutdown, Startup } from '../src/tpm/commands/index.js';
import { TPM_ALG, TPM_CAP, TPM_RH, TPM_SU } from '../src/tpm/constants.js';
import { StateError, TrustrootError } from '../src/tpm/errors.js';
import { encodeCommand } from '../src/tpm/frame.js';
import { pcrSelection } from '../src/tpm/pcr.js';
import { TPM_RC } from '../src/tpm/rc.js';
import { inProcessTransport } from '../src/tpm/transport/index.js';
import { eccSrkTemplate } from '../src/tpm/templates.js';
import { Prng, mutate, type FuzzStats } from './parsers.js';
import { deterministicRandom, steppingClock } from './simulator.js';

export interface StoreFuzzStats extends FuzzStats {
  /** Inputs the loader accepted (each then ran a session on an engine). */
  valid: number;
  /** Inputs also opened from a folder with openSimulatorStore. */
  onDisk: number;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** The bytes of a state file around `payload` (a header that fits it), as serializeState writes them. */
function fileAround(payload: Uint8Array, stateVersion: unknown, header: Record<string, unknown> = {}): Uint8Array {
  const h = { format: 'trustroot-simulator-state', formatVersion: 1, stateVersion, length: payload.length, sha256: createHash('sha256').update(payload).digest('hex'), ...header };
  return Buffer.concat([enc.encode(`${JSON.stringify(h)}\n`), payload]);
}

/** Splits a state file into its header object and payload bytes. */
function split(file: Uint8Array): { header: Record<string, unknown>; payload: Uint8Array } {
  const nl = file.indexOf(0x0a);
  return { header: JSON.parse(dec.decode(file.subarray(0, nl))) as Record<string, unknown>, payload: file.subarray(nl + 1) };
}

/**
 * Real state files: a fresh TPM, one with persistent keys and NV indices
 * after Shutdown(STATE), the same with a pending PCR_Allocate, and older
 * layout numbers on the same content (migrations run on it).
 */
export async function stateFileSeeds(): Promise<Uint8Array[]> {
  const fresh = createSimulatorState(deterministicRandom('store-fuzz-fresh').random);
  // Deterministic (random source and clock), so a seed number names the same inputs on every run.
  const engine = new TpmEngine({ random: deterministicRandom('store-fuzz').random, now: steppingClock().now });
  const tpm = new Tpm(inProcessTransport(engine));
  await tpm.run(Startup, {}, { startupType: TPM_SU.CLEAR });
  const srk = await createPrimary(tpm, TPM_RH.OWNER, eccSrkTemplate());
  await persist(tpm, srk, 0x81000001);
  await tpm.flush(srk);
  const platform = await createPrimary(tpm, TPM_RH.PLATFORM, eccSigningTemplate());
  await persist(tpm, platform, 0x81800001, { auth: TPM_RH.PLATFORM });
  await tpm.flush(platform);
  const nv = await nvDefine(tpm, { index: 0x01500001, size: 16 });
  await nvWrite(tpm, nv, new Uint8Array(16).fill(0x5a));
  await nvIncrement(tpm, await nvDefine(tpm, { index: 0x01500002, type: 'counter' }));
  await nvDefine(tpm, { index: 0x01400001, size: 8 }, { auth: TPM_RH.PLATFORM });
  await tpm.run(Shutdown, {}, { shutdownType: TPM_SU.STATE });
  const saved = serializeState(engine.state);
  await pcrAllocate(tpm, [{ hashAlg: TPM_ALG.SHA256 }]);
  const pending = serializeState(engine.state);
  const seeds = [serializeState(fresh), saved, pending];
  // The same content labelled as each older layout: the migrations get a state they did not expect.
  for (let v = 1; v < fresh.version; v++) {
    const { payload } = split(saved);
    const json = JSON.parse(dec.decode(payload)) as Record<string, unknown>;
    json['version'] = v;
    seeds.push(fileAround(enc.encode(JSON.stringify(json)), v));
  }
  // Plain Uint8Array copies: a Buffer's slice() shares memory, and mutate() relies on slice() copying.
  return seeds.map((b) => new Uint8Array(b));
}

/**
 * A state file like `file` with its payload JSON (tagged, as stored) changed
 * by `edit` and a header that fits: reproducers of what the fuzz found.
 */
export function editStateFile(file: Uint8Array, edit: (json: Record<string, unknown>) => void): Uint8Array {
  const json = JSON.parse(dec.decode(split(file).payload)) as Record<string, unknown>;
  edit(json);
  return new Uint8Array(fileAround(enc.encode(stringify(json)), json['version']));
}

/** Values a mutation puts anywhere in the JSON: other kinds, edge numbers, bad tags. */
const ODD_VALUES: readonly unknown[] = [
  null,
  true,
  false,
  0,
  -1,
  1,
  0.5,
  255,
  256,
  65535,
  65536,
  0x7fffffff,
  0xffffffff,
  0x100000000,
  2 ** 53,
  -(2 ** 53),
  1e308,
  '',
  'x',
  'none',
  'state',
  [],
  [0],
  [null],
  {},
  { $bytes: '' },
  { $bytes: '0' },
  { $bytes: 'ZZ' },
  { $bytes: 'AB' },
  { $bytes: '00'.repeat(300) },
  { $bigint: '-1' },
  { $bigint: '0' },
  { $bigint: '18446744073709551616' },
  { $bigint: '01' },
  { $bigint: 1 },
  { $other: 'x' },
  { $bytes: '00', extra: 1 },
];

type Container = Record<string, unknown> | unknown[];

/** Every (container, key) in the JSON tree, the root's children first. */
function slots(root: Container): { parent: Container; key: string | number }[] {
  const out: { parent: Container; key: string | number }[] = [];
  const walk = (node: Container): void => {
    const keys = Array.isArray(node) ? node.map((_, i) => i) : Object.keys(node);
    for (const key of keys) {
      out.push({ parent: node, key });
      const child = (node as Record<string | number, unknown>)[key];
      if (child !== null && typeof child === 'object') walk(child as Container);
    }
  };
  walk(root);
  return out;
}

/** A placeholder for nesting too deep for JSON.stringify (`${DEEP}${levels}`), written out by `stringify`. */
export const DEEP = '\u0000deep:';

/** JSON text, with each DEEP placeholder written as arrays nested that many levels. */
function stringify(json: unknown): string {
  return JSON.stringify(json).replace(/"\\u0000deep:(\d+)"/g, (_, n: string) => '['.repeat(Number(n)) + ']'.repeat(Number(n)));
}

/** One structural change at a random place. */
function mutateTree(root: Container, rng: Prng): void {
  const all = slots(root);
  if (all.length === 0) return;
  const { parent, key } = all[rng.below(all.length)]!;
  const p = parent as Record<string | number, unknown>;
  const value = p[key];
  switch (rng.below(8)) {
    case 0:
    case 1:
      p[key] = structuredClone(ODD_VALUES[rng.below(ODD_VALUES.length)]);
      break;
    case 2: // remove
      if (Array.isArray(parent)) parent.splice(key as number, 1);
      else delete p[key];
      break;
    case 3: // an unknown key, or one more array element
      if (Array.isArray(parent)) parent.push(structuredClone(value));
      else p[`extra${rng.below(4)}`] = structuredClone(ODD_VALUES[rng.below(ODD_VALUES.length)]);
      break;
    case 4: // a number nudged
      if (typeof value === 'number') p[key] = [value + 1, value - 1, -value, value * 2 ** 32, value + 0.25][rng.below(5)];
      else p[key] = rng.below(0x10000);
      break;
    case 5: // a tag's text changed
      if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
        const tag = value as Record<string, unknown>;
        if (typeof tag['$bytes'] === 'string') tag['$bytes'] = [tag['$bytes'] + '00', (tag['$bytes'] as string).slice(2), (tag['$bytes'] as string).slice(1), '00'.repeat(rng.below(200))][rng.below(4)];
        else if (typeof tag['$bigint'] === 'string') tag['$bigint'] = ['-1', '18446744073709551615', '18446744073709551616', '1e3', `${tag['$bigint']}0`][rng.below(5)];
        else p[key] = { $bytes: '00'.repeat(rng.below(80)) };
      } else p[key] = { $bigint: String(rng.below(1000)) };
      break;
    case 6: // an array swapped for a longer or shorter one
      if (Array.isArray(value)) p[key] = rng.below(2) === 0 ? value.slice(0, rng.below(value.length + 1)) : [...value, ...value];
      else p[key] = [structuredClone(value)];
      break;
    default: // deep nesting, now and then far beyond any state
      p[key] = `${DEEP}${rng.below(8) === 0 ? 100_000 : 1 + rng.below(40)}`;
  }
}

/** One mutated state file from a seed. */
export function mutateStateFile(seed: Uint8Array, rng: Prng): Uint8Array {
  const kind = rng.below(10);
  if (kind < 2) return mutate(seed, rng);
  const { header, payload } = split(seed);
  if (kind < 4) return fileAround(mutate(payload, rng), header['stateVersion']);
  if (kind === 4) {
    const h = { ...header };
    const field = ['formatVersion', 'stateVersion', 'length', 'format', 'sha256'][rng.below(5)]!;
    h[field] = structuredClone(ODD_VALUES[rng.below(ODD_VALUES.length)]);
    return Buffer.concat([enc.encode(`${JSON.stringify(h)}\n`), payload]);
  }
  const json = JSON.parse(dec.decode(payload)) as Container;
  const rounds = 1 + rng.below(3);
  for (let r = 0; r < rounds; r++) mutateTree(json, rng);
  const version = Array.isArray(json) ? undefined : json['version'];
  // Mostly a header that agrees with the payload's version, so validation decides.
  return fileAround(enc.encode(stringify(json)), rng.below(8) === 0 ? rng.below(6) : version);
}

/** Why a state the loader accepted is not a working TPM, or undefined. */
async function exercise(state: SimulatorState): Promise<string | undefined> {
  let engine: TpmEngine;
  try {
    engine = new TpmEngine({ state, random: deterministicRandom('store-fuzz-engine').random, now: steppingClock().now });
  } catch (e) {
    // An engine may refuse a state with a typed error (a profile it does not know): not a crash.
    if (e instanceof TrustrootError) return undefined;
    return `new TpmEngine threw ${String(e)}`;
  }
  const problems: string[] = [];
  const send = async (label: string, bytes: Uint8Array | (() => Uint8Array)): Promise<number> => {
    let out: Uint8Array;
    try {
      out = await engine.execute(typeof bytes === 'function' ? bytes() : bytes);
    } catch (e) {
      problems.push(`${label} threw ${String(e)}`);
      return -1;
    }
    const v = new DataView(out.buffer, out.byteOffset, out.byteLength);
    if (out.length < 10 || v.getUint32(2) !== out.length) {
      problems.push(`${label}: a malformed answer`);
      return -1;
    }
    const rc = v.getUint32(6);
    if (rc === TPM_RC.FAILURE) problems.push(`${label}: TPM_RC_FAILURE`);
    return rc;
  };
  await send('Startup(CLEAR)', encodeCommand(Startup, {}, { startupType: TPM_SU.CLEAR }));
  await send('GetRandom', encodeCommand(GetRandom, {}, { bytesRequested: 16 }));
  await send('GetCapability(HANDLES persistent)', encodeCommand(GetCapability, {}, { capability: TPM_CAP.HANDLES, property: 0x81000000, propertyCount: 64 }));
  await send('GetCapability(HANDLES NV)', encodeCommand(GetCapability, {}, { capability: TPM_CAP.HANDLES, property: 0x01000000, propertyCount: 64 }));
  await send('GetCapability(PCRS)', encodeCommand(GetCapability, {}, { capability: TPM_CAP.PCRS, property: 0, propertyCount: 1 }));
  await send('PCR_Read', encodeCommand(PCR_Read, {}, { pcrSelectionIn: [pcrSelection(TPM_ALG.SHA256, [0, 16, 23])] }));
  const persistent = Array.isArray(state.persistentObjects) ? state.persistentObjects.slice(0, 8) : [];
  for (const o of persistent) await send(`ReadPublic 0x${(o.handle >>> 0).toString(16)}`, () => encodeCommand(ReadPublic, { objectHandle: o.handle >>> 0 }, {}));
  const indices = Array.isArray(state.nvIndices) ? state.nvIndices.slice(0, 8) : [];
  for (const nv of indices) {
    const index = nv.nvIndex >>> 0;
    await send(`NV_ReadPublic 0x${index.toString(16)}`, () => encodeCommand(NV_ReadPublic, { nvIndex: index }, {}));
    const size = Math.max(0, Math.min(64, Number.isSafeInteger(nv.dataSize) ? nv.dataSize : 0));
    await send(`NV_Read 0x${index.toString(16)}`, () => encodeCommand(NV_Read, { authHandle: index, nvIndex: index }, { size, offset: 0 }, { sessions: [{ sessionHandle: TPM_RH.PW, nonce: new Uint8Array(0), sessionAttributes: { continueSession: true } as never, hmac: new Uint8Array(0) }] }));
  }
  const pw = { sessions: [{ sessionHandle: TPM_RH.PW, nonce: new Uint8Array(0), sessionAttributes: { continueSession: true } as never, hmac: new Uint8Array(0) }] };
  await send(
    'CreatePrimary(OWNER)',
    encodeCommand(CreatePrimary, { primaryHandle: TPM_RH.OWNER }, { inSensitive: { userAuth: new Uint8Array(0), data: new Uint8Array(0) }, inPublic: eccSigningTemplate(), outsideInfo: new Uint8Array(0), creationPCR: [] }, pw),
  );
  await send('Shutdown(STATE)', encodeCommand(Shutdown, {}, { shutdownType: TPM_SU.STATE }));
  engine.init();
  await send('Startup(STATE)', encodeCommand(Startup, {}, { startupType: TPM_SU.STATE }));
  if (!engine.volatile.started) await send('Startup(CLEAR) after a refused Resume', encodeCommand(Startup, {}, { startupType: TPM_SU.CLEAR }));
  await send('GetRandom after the Resume', encodeCommand(GetRandom, {}, { bytesRequested: 8 }));
  try {
    engine.syncClock();
    validateSimulatorState(decodeStateFile(serializeState(engine.state), simulatorStateOptions()));
  } catch (e) {
    problems.push(`its state after the session does not load again: ${String(e)}`);
  }
  return problems.length === 0 ? undefined : problems.slice(0, 3).join('; ');
}

/** What decodeStateFile says of `bytes`: 'valid', a StateError code, or an untyped exception (thrown on). */
function verdict(bytes: Uint8Array): { state?: SimulatorState; code: string } {
  try {
    return { state: decodeStateFile(bytes, simulatorStateOptions()), code: 'valid' };
  } catch (e) {
    if (e instanceof StateError) return { code: e.code };
    throw e;
  }
}

/**
 * Feeds `iterations` mutated state files to the loader. Untyped exceptions,
 * disagreements between the in-memory and the on-disk loader, and accepted
 * states that are not a working TPM are counted in untypedCount.
 */
export async function fuzzStateFiles(options: {
  seed: number;
  iterations: number;
  seeds?: readonly Uint8Array[];
  diskEvery?: number;
  /** Called with the whole input of every failure (for a reproducer). */
  onFailure?: (input: Uint8Array, error: string) => void;
}): Promise<StoreFuzzStats> {
  const rng = new Prng(options.seed);
  const seeds = options.seeds ?? (await stateFileSeeds());
  const diskEvery = options.diskEvery ?? 500;
  const stats: StoreFuzzStats = { inputs: 0, parsed: 0, typedErrors: 0, untypedCount: 0, untyped: [], codes: new Map(), valid: 0, onDisk: 0 };
  const fail = (input: Uint8Array, error: string): void => {
    stats.untypedCount++;
    if (stats.untyped.length < 20) stats.untyped.push({ input: hexOf(input.subarray(0, 400)), error });
    options.onFailure?.(input, error);
  };
  const dir = await mkdtemp(join(tmpdir(), 'trustroot-store-fuzz-'));
  try {
    for (let i = 0; i < options.iterations; i++) {
      const input = mutateStateFile(seeds[rng.below(seeds.length)]!, rng);
      stats.inputs++;
      let v: { state?: SimulatorState; code: string };
      try {
        v = verdict(input);
      } catch (e) {
        fail(input, `the loader threw ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
        continue;
      }
      stats.codes.set(v.code, (stats.codes.get(v.code) ?? 0) + 1);
      if (v.state === undefined) stats.typedErrors++;
      else stats.parsed++;
      if (i % diskEvery === 0) {
        // The same bytes through the real store: the same verdict.
        stats.onDisk++;
        await writeFile(join(dir, STATE_FILE_NAME), input);
        let onDisk: string;
        try {
          const opened = await openSimulatorStore(dir);
          await opened.store.close();
          onDisk = 'valid';
        } catch (e) {
          onDisk = e instanceof StateError ? e.code : `untyped ${String(e)}`;
        }
        if (onDisk !== v.code) fail(input, `openSimulatorStore says ${onDisk}, decodeStateFile ${v.code}`);
      }
      if (v.state !== undefined) {
        stats.valid++;
        const problem = await exercise(v.state);
        if (problem !== undefined) fail(input, `an accepted state is not a working TPM: ${problem}`);
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return stats;
}
