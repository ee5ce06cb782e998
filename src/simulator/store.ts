/**
 * Durable state of a software TPM: one state file per TPM folder, written
 * atomically and loaded with strict validation (issue 6, point 3).
 *
 * Folder layout:
 *   state.json   the state file (below)
 *   lock         O_EXCL lock file holding the PID of the process serving the folder
 *   state.json.tmp-<pid>-<n>   a write in progress (removed at open: the lock holder owns the folder)
 *   lock.<pid>.<random>.tmp    a PID file about to be published as `lock` with link(2)
 *
 * State file format (format version 1): one header line, then the payload.
 *   {"format":"trustroot-simulator-state","formatVersion":1,"stateVersion":V,"length":N,"sha256":"<hex>"}\n
 *   <N bytes of UTF-8 JSON: the state in tagged JSON>
 * `sha256` is the SHA-256 of exactly those N payload bytes, so truncation,
 * trailing bytes and bit flips are all detected before the payload is parsed.
 *
 * Tagged JSON: JSON has no bytes and no 64-bit integers, so
 *   Uint8Array → {"$bytes":"<lower-case hex>"}
 *   bigint     → {"$bigint":"<decimal>"}
 * Plain objects may not have keys starting with `$` (they would be
 * ambiguous with the tags); numbers must be finite; `undefined` properties
 * are left out, `undefined` array elements, functions, Maps and other class
 * instances are refused (state.value). A tag object with anything but its
 * one key is corrupt.
 *
 * Writing: temp file in the same folder (O_EXCL), write, fsync, close,
 * rename over state.json, fsync of the folder — only then does `save`
 * resolve, so an engine that awaits `save` before answering never
 * acknowledges a change a crash could lose.
 */
import { createHash, randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { link, mkdir, open, readFile, readdir, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { StateError } from '../tpm/errors.js';
import { equalBytes } from '../tpm/bytes.js';
import { TPM_ALG, TPM_HT, TPM_RH } from '../tpm/constants.js';
import { digestSize, isHashSupported } from '../tpm/crypto/hash.js';
import { keyFromSensitive } from '../tpm/duplication.js';
import { objectName } from '../tpm/names.js';
import { TPMA_NV, TPMT_PUBLIC, TPMT_SENSITIVE } from '../tpm/types/index.js';
import { decode } from '../tpm/wire/codec.js';
import {
  createSimulatorState,
  PCR_AUTH_VALUE_GROUPS,
  PCR_COUNT,
  PCR_POLICY_GROUPS,
  SIMULATOR_STATE_VERSION,
  STATE_MIGRATIONS,
  type ManufactureProfile,
  type RandomSource,
  type SimulatorState,
} from './state.js';

/** The envelope's own format version; a reader refuses any other. */
export const STATE_FILE_FORMAT_VERSION = 1 as const;
/** Magic string in the header line. */
export const STATE_FILE_FORMAT = 'trustroot-simulator-state' as const;
export const STATE_FILE_NAME = 'state.json';
export const LOCK_FILE_NAME = 'lock';
const TMP_PREFIX = `${STATE_FILE_NAME}.tmp-`;

/** The least a stored state is: an object with its layout version. */
export interface VersionedState {
  version: number;
}

// ---------------------------------------------------------------------------
// Tagged JSON

/** Plain data a state may contain. */
export type StateValue =
  | null
  | boolean
  | number
  | string
  | bigint
  | Uint8Array
  | readonly StateValue[]
  | { readonly [key: string]: StateValue | undefined };

function isPlainObject(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function toTagged(value: unknown, path: string, file: string): unknown {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return value;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new StateError('state.value', `${path}: ${value} is not a finite number`, file);
    return value;
  }
  if (typeof value === 'bigint') return { $bigint: value.toString(10) };
  if (value instanceof Uint8Array) return { $bytes: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex') };
  if (Array.isArray(value)) {
    return value.map((item: unknown, i) => {
      if (item === undefined) throw new StateError('state.value', `${path}[${i}]: undefined in an array`, file);
      return toTagged(item, `${path}[${i}]`, file);
    });
  }
  if (typeof value === 'object' && isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      if (key.startsWith('$')) throw new StateError('state.value', `${path}.${key}: keys starting with '$' are reserved for tags`, file);
      if (item === undefined) continue;
      out[key] = toTagged(item, `${path}.${key}`, file);
    }
    return out;
  }
  throw new StateError('state.value', `${path}: a ${typeof value === 'object' ? (value.constructor?.name ?? 'object') : typeof value} cannot be stored`, file);
}

const HEX = /^(?:[0-9a-f]{2})*$/;
const DECIMAL = /^-?(?:0|[1-9][0-9]*)$/;

/**
 * How deep a state file's JSON may nest: a state is a few levels deep; a file
 * nested deeper is damaged, and recursing into it would overflow the stack
 * (a RangeError, not a StateError: found by fuzz/store.ts).
 */
const MAX_NESTING = 32;

function fromTagged(value: unknown, path: string, file: string, depth = 0): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_NESTING) throw new StateError('state.corrupt', `${path}: nested more than ${MAX_NESTING} levels deep`, file);
  if (Array.isArray(value)) return value.map((item: unknown, i) => fromTagged(item, `${path}[${i}]`, file, depth + 1));
  const entries = Object.entries(value as Record<string, unknown>);
  const tagged = entries.filter(([key]) => key.startsWith('$'));
  if (tagged.length > 0) {
    const [key, text] = entries[0] ?? [];
    if (entries.length !== 1 || typeof text !== 'string') throw new StateError('state.corrupt', `${path}: malformed tag object`, file);
    if (key === '$bytes') {
      if (!HEX.test(text)) throw new StateError('state.corrupt', `${path}: $bytes is not lower-case hex of whole bytes`, file);
      return new Uint8Array(Buffer.from(text, 'hex'));
    }
    if (key === '$bigint') {
      if (!DECIMAL.test(text)) throw new StateError('state.corrupt', `${path}: $bigint is not a decimal integer`, file);
      return BigInt(text);
    }
    throw new StateError('state.corrupt', `${path}: unknown tag ${key}`, file);
  }
  const out: Record<string, unknown> = {};
  for (const [key, item] of entries) out[key] = fromTagged(item, `${path}.${key}`, file, depth + 1);
  return out;
}

// ---------------------------------------------------------------------------
// File format

/** The bytes of a state file holding `state` (header line + tagged JSON payload). */
export function serializeState(state: VersionedState, file = STATE_FILE_NAME): Uint8Array {
  if (!Number.isSafeInteger(state.version)) throw new StateError('state.value', 'state.version is not an integer', file);
  const payload = Buffer.from(JSON.stringify(toTagged(state, 'state', file)), 'utf8');
  const header = {
    format: STATE_FILE_FORMAT,
    formatVersion: STATE_FILE_FORMAT_VERSION,
    stateVersion: state.version,
    length: payload.length,
    sha256: createHash('sha256').update(payload).digest('hex'),
  };
  return Buffer.concat([Buffer.from(`${JSON.stringify(header)}\n`, 'utf8'), payload]);
}

/**
 * Parses and checks a state file's bytes. Returns the decoded state (not yet
 * checked against any state layout beyond its `version`).
 * @throws StateError state.corrupt, state.checksum or state.version
 */
export function parseStateFile(bytes: Uint8Array, expectedVersion: number, file = STATE_FILE_NAME, oldestVersion = expectedVersion): VersionedState {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const nl = buf.indexOf(0x0a);
  if (nl < 0) throw new StateError('state.corrupt', 'no header line (empty or truncated file)', file);
  let header: unknown;
  try {
    header = JSON.parse(buf.subarray(0, nl).toString('utf8'));
  } catch (cause) {
    throw new StateError('state.corrupt', 'header line is not JSON', file, { cause });
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new StateError('state.corrupt', 'header is not an object', file);
  const h = header as Record<string, unknown>;
  if (h['format'] !== STATE_FILE_FORMAT) throw new StateError('state.corrupt', 'not a trustroot simulator state file', file);
  if (h['formatVersion'] !== STATE_FILE_FORMAT_VERSION) {
    throw new StateError('state.version', `file format version ${String(h['formatVersion'])} is not ${STATE_FILE_FORMAT_VERSION}`, file);
  }
  const { length, sha256, stateVersion } = h;
  if (typeof length !== 'number' || !Number.isSafeInteger(length) || length < 0) throw new StateError('state.corrupt', 'header length is not a size', file);
  if (typeof sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(sha256)) throw new StateError('state.corrupt', 'header sha256 is not 32 hex bytes', file);
  if (typeof stateVersion !== 'number' || !Number.isSafeInteger(stateVersion)) throw new StateError('state.corrupt', 'header stateVersion is not an integer', file);
  const payload = buf.subarray(nl + 1);
  if (payload.length !== length) {
    throw new StateError('state.corrupt', `payload is ${payload.length} bytes, header says ${length} (${payload.length < length ? 'truncated' : 'trailing bytes'})`, file);
  }
  const digest = createHash('sha256').update(payload).digest('hex');
  if (digest !== sha256) throw new StateError('state.checksum', 'payload SHA-256 does not match the header', file);
  // Checked after the checksum so that a flipped version byte reads as damage, not as a newer TPM.
  if (stateVersion < oldestVersion || stateVersion > expectedVersion) {
    const want = oldestVersion === expectedVersion ? `${expectedVersion}` : `${oldestVersion}–${expectedVersion}`;
    throw new StateError('state.version', `state version ${stateVersion} is not ${want}`, file);
  }
  let json: unknown;
  try {
    json = JSON.parse(payload.toString('utf8'));
  } catch (cause) {
    throw new StateError('state.corrupt', 'payload is not JSON', file, { cause });
  }
  const state = fromTagged(json, 'state', file);
  if (typeof state !== 'object' || state === null || Array.isArray(state)) throw new StateError('state.corrupt', 'payload is not an object', file);
  if ((state as Record<string, unknown>)['version'] !== stateVersion) throw new StateError('state.corrupt', 'payload version differs from the header', file);
  return state as VersionedState;
}

// ---------------------------------------------------------------------------
// Lock

function errno(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error ? String((error as { code: unknown }).code) : undefined;
}

function ioError(message: string, path: string, cause: unknown): StateError {
  return new StateError('state.io', `${message}: ${errno(cause) ?? String(cause)}`, path, { cause });
}

/** Whether a process with this PID exists (EPERM: it exists under another user). */
function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errno(error) === 'EPERM';
  }
}

async function readLockPid(path: string): Promise<number | undefined> {
  const text = await readFile(path, 'utf8');
  const pid = /^([1-9][0-9]{0,9})\n?$/.exec(text)?.[1];
  return pid === undefined ? undefined : Number(pid);
}

/** An O_EXCL lock on a state folder; `release()` removes it if it is still ours. */
export class StateLock {
  readonly path: string;
  #held = true;
  private constructor(path: string) {
    this.path = path;
  }

  /**
   * Takes the folder's lock. A lock file whose PID is not a live process (a
   * crashed server) is broken: renamed aside atomically, checked to still be
   * the dead PID's, then deleted — so two processes breaking the same stale
   * lock never delete each other's fresh one.
   * @throws StateError state.locked when a live process holds it; state.io
   */
  static async acquire(dir: string): Promise<StateLock> {
    const path = join(dir, LOCK_FILE_NAME);
    // The PID is written to a private file first and published with link(2), which is atomic and fails
    // with EEXIST: a lock file therefore never exists without its PID, even if we die half-way.
    const mine = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      const fh = await open(mine, 'w', 0o600);
      try {
        await fh.writeFile(`${process.pid}\n`);
        await fh.sync();
      } finally {
        await fh.close();
      }
    } catch (error) {
      throw ioError('cannot write the lock file', mine, error);
    }
    try {
      return await StateLock.#publish(path, mine);
    } finally {
      await unlink(mine).catch(() => undefined);
    }
  }

  static async #publish(path: string, mine: string): Promise<StateLock> {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        await link(mine, path);
        return new StateLock(path);
      } catch (error) {
        if (errno(error) !== 'EEXIST') throw ioError('cannot create the lock file', path, error);
      }
      let pid: number | undefined;
      try {
        pid = await readLockPid(path);
      } catch (error) {
        if (errno(error) === 'ENOENT') continue; // released between our create and read
        throw ioError('cannot read the lock file', path, error);
      }
      // Locks are published whole, so a garbled one is outside damage: refuse rather than guess.
      if (pid === undefined) throw new StateError('state.locked', 'the lock file holds no PID; remove it by hand if no process serves this folder', path);
      if (pid === process.pid || pidAlive(pid)) throw new StateError('state.locked', `the state folder is served by process ${pid}`, path);
      const aside = `${path}.stale-${process.pid}-${attempt}`;
      try {
        await rename(path, aside);
      } catch (error) {
        if (errno(error) === 'ENOENT') continue; // someone else broke it first
        throw ioError('cannot break a stale lock', path, error);
      }
      const moved = await readLockPid(aside).catch(() => undefined);
      if (moved !== undefined && moved !== pid && pidAlive(moved)) {
        // We moved a live process's fresh lock: put it back unless a new one exists, and yield.
        await link(aside, path).catch(() => undefined);
        await unlink(aside).catch(() => undefined);
        throw new StateError('state.locked', `the state folder is served by process ${moved}`, path);
      }
      await unlink(aside).catch(() => undefined);
    }
    throw new StateError('state.locked', 'the lock changed hands repeatedly', path);
  }

  get held(): boolean {
    return this.#held;
  }

  /** Removes the lock file if it still names this process. Idempotent. */
  async release(): Promise<void> {
    if (!this.#held) return;
    this.#held = false;
    const pid = await readLockPid(this.path).catch(() => undefined);
    if (pid === process.pid) await unlink(this.path).catch(() => undefined);
  }
}

/**
 * A state file's bytes as `StateStore.open` reads them: parsed and checked
 * (parseStateFile), migrated from an older layout, validated. A migrated
 * state is written back in the current layout by the next save.
 * @throws StateError state.corrupt, state.checksum or state.version
 */
export function decodeStateFile<S extends VersionedState>(
  bytes: Uint8Array,
  options: Pick<StateStoreOptions<S>, 'version' | 'validate' | 'migrations'>,
  file = STATE_FILE_NAME,
): S {
  const migrations = options.migrations ?? {};
  let oldest = options.version;
  while (migrations[oldest - 1] !== undefined) oldest--;
  let raw = parseStateFile(bytes, options.version, file, oldest);
  try {
    while (raw.version < options.version) raw = migrations[raw.version]!(raw);
    return options.validate ? options.validate(raw) : (raw as S);
  } catch (cause) {
    if (cause instanceof StateError) throw cause;
    throw new StateError('state.corrupt', `state does not fit its layout: ${cause instanceof Error ? cause.message : String(cause)}`, file, { cause });
  }
}

// ---------------------------------------------------------------------------
// Store

export interface StateStoreOptions<S extends VersionedState> {
  /** The state layout version this build reads and writes. */
  version: number;
  /** When there is no state file (or folder): manufacture one. Without it a missing state is state.missing. */
  create?: () => S | Promise<S>;
  /** Checks the decoded state's shape; throws (anything) when it does not fit; mapped to state.corrupt. */
  validate?: (value: VersionedState) => S;
  /** Upgrades from older layouts, keyed by the version each reads (it returns the next one); applied before `validate`. */
  migrations?: Readonly<Record<number, (old: VersionedState) => VersionedState>>;
}

export interface OpenedStore<S extends VersionedState> {
  store: StateStore<S>;
  state: S;
  /** true when the state was manufactured by `create` (and already saved). */
  created: boolean;
}

interface PendingWrite {
  bytes: Uint8Array;
  waiters: { resolve: () => void; reject: (error: unknown) => void }[];
}

/**
 * One TPM folder, locked for this store's lifetime. `save` is the only
 * writer; concurrent saves are coalesced: while one write runs, later calls
 * queue; the next write carries the newest snapshot (serialized at call time,
 * so it includes every queued caller's change) and releases all of them.
 */
export class StateStore<S extends VersionedState> {
  readonly dir: string;
  readonly file: string;
  readonly #lock: StateLock;
  #tmpCounter = 0;
  #writing: Promise<void> | undefined;
  #pending: PendingWrite | undefined;
  #closed = false;

  private constructor(dir: string, lock: StateLock) {
    this.dir = dir;
    this.file = join(dir, STATE_FILE_NAME);
    this.#lock = lock;
  }

  /**
   * Locks the folder and loads its state, or manufactures one when asked.
   * @throws StateError state.missing, state.corrupt, state.checksum, state.version, state.locked, state.io
   */
  static async open<S extends VersionedState>(dir: string, options: StateStoreOptions<S>): Promise<OpenedStore<S>> {
    const file = join(dir, STATE_FILE_NAME);
    try {
      const info = await stat(dir);
      if (!info.isDirectory()) throw new StateError('state.io', 'not a folder', dir);
    } catch (error) {
      if (error instanceof StateError) throw error;
      if (errno(error) !== 'ENOENT') throw ioError('cannot read the state folder', dir, error);
      if (options.create === undefined) throw new StateError('state.missing', 'no state folder', dir);
      try {
        await mkdir(dir, { recursive: true, mode: 0o700 });
      } catch (cause) {
        throw ioError('cannot create the state folder', dir, cause);
      }
    }
    const lock = await StateLock.acquire(dir);
    try {
      const store = new StateStore<S>(dir, lock);
      await store.#removeTempFiles();
      let bytes: Uint8Array | undefined;
      try {
        bytes = await readFile(file);
      } catch (error) {
        if (errno(error) !== 'ENOENT') throw ioError('cannot read the state file', file, error);
      }
      if (bytes === undefined) {
        if (options.create === undefined) throw new StateError('state.missing', 'no state file', file);
        const state = await options.create();
        await store.save(state);
        return { store, state, created: true };
      }
      return { store, state: decodeStateFile(bytes, options, file), created: false };
    } catch (error) {
      await lock.release();
      throw error;
    }
  }

  /** Leftovers of a write a crash interrupted: never renamed, so never acknowledged. */
  async #removeTempFiles(): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (error) {
      throw ioError('cannot list the state folder', this.dir, error);
    }
    for (const name of names) {
      // Lock leftovers: a PID file a dead process never published, a stale lock moved aside but not deleted.
      const lockTmp = /^lock\.([1-9][0-9]*)\.[0-9a-f]{8}\.tmp$/.exec(name);
      const leftover = name.startsWith(TMP_PREFIX) || name.startsWith(`${LOCK_FILE_NAME}.stale-`) || (lockTmp !== null && !pidAlive(Number(lockTmp[1])));
      if (leftover) await unlink(join(this.dir, name)).catch(() => undefined);
    }
  }

  /**
   * Writes `state` durably; resolves once the new file and its folder entry
   * are on disk. Serializes at call time (later mutations are not included).
   * @throws StateError state.value (nothing written), state.io, state.locked after close
   */
  save(state: S): Promise<void> {
    if (this.#closed) return Promise.reject(new StateError('state.locked', 'the store is closed', this.dir));
    let bytes: Uint8Array;
    try {
      bytes = serializeState(state, this.file);
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise<void>((resolve, reject) => {
      if (this.#pending) {
        this.#pending.bytes = bytes;
        this.#pending.waiters.push({ resolve, reject });
      } else {
        this.#pending = { bytes, waiters: [{ resolve, reject }] };
      }
      if (this.#writing === undefined) this.#writing = this.#drain();
    });
  }

  async #drain(): Promise<void> {
    while (this.#pending) {
      const job = this.#pending;
      this.#pending = undefined;
      try {
        await this.#writeAtomically(job.bytes);
        for (const w of job.waiters) w.resolve();
      } catch (error) {
        for (const w of job.waiters) w.reject(error);
      }
    }
    this.#writing = undefined;
  }

  async #writeAtomically(bytes: Uint8Array): Promise<void> {
    const tmp = join(this.dir, `${TMP_PREFIX}${process.pid}-${this.#tmpCounter++}`);
    try {
      const fh = await open(tmp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600);
      try {
        await fh.writeFile(bytes);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, this.file);
    } catch (error) {
      await unlink(tmp).catch(() => undefined);
      throw ioError('cannot write the state file', this.file, error);
    }
    // The rename is durable only once the folder entry is (POSIX: fsync of the directory).
    try {
      const dh = await open(this.dir, fsConstants.O_RDONLY);
      try {
        await dh.sync();
      } finally {
        await dh.close();
      }
    } catch (error) {
      throw ioError('cannot fsync the state folder', this.dir, error);
    }
  }

  /** Waits for writes in flight, then releases the lock. Later saves are refused. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    while (this.#writing) await this.#writing.catch(() => undefined);
    await this.#lock.release();
  }
}

// ---------------------------------------------------------------------------
// The simulator's state

function kindOf(value: unknown): string {
  if (value instanceof Uint8Array) return 'bytes';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

/**
 * Checks `value` against the shape of `template` (same keys, same kinds,
 * recursively); arrays are checked element-wise against `elements[path]`
 * when given, and `nullable` paths may be null.
 */
function checkShape(
  value: unknown,
  template: unknown,
  path: string,
  rules: { elements: Record<string, unknown>; nullable: ReadonlySet<string> },
): void {
  if (value === null && rules.nullable.has(path)) return;
  const want = kindOf(template);
  const got = kindOf(value);
  if (want !== got) throw new Error(`${path} is ${got}, expected ${want}`);
  if (want === 'array') {
    const element = rules.elements[path];
    (value as unknown[]).forEach((item, i) => {
      if (element !== undefined) checkShape(item, element, `${path}[]`, rules);
      else if (kindOf(item) !== 'number') throw new Error(`${path}[${i}] is ${kindOf(item)}, expected number`);
    });
    return;
  }
  if (want !== 'object') return;
  const t = template as Record<string, unknown>;
  const v = value as Record<string, unknown>;
  for (const key of Object.keys(v)) if (!(key in t)) throw new Error(`${path}.${key} is not a known field`);
  for (const key of Object.keys(t)) {
    if (!(key in v)) throw new Error(`${path}.${key} is missing`);
    checkShape(v[key], t[key], `${path}.${key}`, rules);
  }
}

const byte0 = new Uint8Array(0);
const bankTemplate = { hashAlg: 0, pcrs: [] as number[] };
const SIMULATOR_SHAPE_RULES = {
  elements: {
    'state.pcrAllocation': bankTemplate,
    'state.pendingPcrAllocation': bankTemplate,
    'state.nvIndices': { nvIndex: 0, nameAlg: 0, attributes: 0, authPolicy: byte0, authValue: byte0, dataSize: 0, data: byte0 },
    'state.persistentObjects': { handle: 0, hierarchy: 0, public: byte0, sensitive: byte0, name: byte0, qualifiedName: byte0 },
    'state.savedState.pcrs': { hashAlg: 0, values: [byte0] },
    'state.savedState.pcrs[].values': byte0,
    'state.savedState.sessions': { handle: 0, sequence: 0n },
    'state.pcrAuthPolicies': { hashAlg: 0, policy: byte0 },
    'state.pcrAuthValues': byte0,
  } as Record<string, unknown>,
  nullable: new Set(['state.pendingPcrAllocation', 'state.savedState']),
};
const SAVED_STATE_TEMPLATE = { pcrs: [], shEnable: false, ehEnable: false, sessions: [], sessionSequence: 0n, pcrUpdateCounter: 0 };

/** A whole number from 0 to max, or throws naming `what`. */
function checkWhole(n: number, max: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0 || n > max) throw new Error(`${what} is ${n}, not a whole number from 0 to ${max}`);
}

function checkHash(alg: number, what: string): void {
  checkWhole(alg, 0xffff, what);
  if (!isHashSupported(alg)) throw new Error(`${what} 0x${alg.toString(16)} is not a hash algorithm`);
}

const PERSISTENT_HIERARCHIES: ReadonlySet<number> = new Set([TPM_RH.OWNER, TPM_RH.ENDORSEMENT, TPM_RH.PLATFORM]);

/**
 * What the shape does not say and the engine relies on (each found by
 * fuzz/store.ts as a state that loaded and then failed a command with
 * TPM_RC_FAILURE): PCR banks of real hashes and PCR numbers, NV indices and
 * persistent objects with handles of their range and whole sizes, and
 * persistent objects whose areas unmarshal and whose Name is their public area's.
 */
function checkEntities(s: SimulatorState): void {
  const banks = [...s.pcrAllocation, ...(s.pendingPcrAllocation ?? [])];
  banks.forEach((b, i) => {
    checkHash(b.hashAlg, `state.pcrAllocation[${i}].hashAlg`);
    for (const pcr of b.pcrs) checkWhole(pcr, PCR_COUNT - 1, `a PCR of bank 0x${b.hashAlg.toString(16)}`);
  });
  s.savedState?.pcrs.forEach((b, i) => {
    checkHash(b.hashAlg, `state.savedState.pcrs[${i}].hashAlg`);
    if (b.values.some((v) => v.length !== digestSize(b.hashAlg))) throw new Error(`state.savedState.pcrs[${i}]: a value that is not a digest of its bank`);
  });
  // An authValue or authPolicy is at most the largest digest (Part 1 §19.6.5).
  for (const [h, a] of Object.entries(s.auths)) {
    if (a.authValue.length > 64 || a.authPolicy.length > 64) throw new Error(`state.auths.${h}: an authValue or authPolicy longer than any digest`);
  }
  s.nvIndices.forEach((nv, i) => {
    checkWhole(nv.nvIndex, 0xffffffff, `state.nvIndices[${i}].nvIndex`);
    if (nv.nvIndex >>> 24 !== TPM_HT.NV_INDEX) throw new Error(`state.nvIndices[${i}].nvIndex 0x${nv.nvIndex.toString(16)} is not an NV index handle`);
    checkHash(nv.nameAlg, `state.nvIndices[${i}].nameAlg`);
    checkWhole(nv.attributes, 0xffffffff, `state.nvIndices[${i}].attributes`);
    try {
      // Reserved bits refused as TPMA_NV unmarshals them, every time the engine reads the attributes.
      TPMA_NV.fromWord(nv.attributes);
    } catch (e) {
      throw new Error(`state.nvIndices[${i}].attributes: ${e instanceof Error ? e.message : String(e)}`);
    }
    checkWhole(nv.dataSize, 0xffff, `state.nvIndices[${i}].dataSize`);
    if (nv.data.length > nv.dataSize || nv.authValue.length > 64 || nv.authPolicy.length > 64) throw new Error(`state.nvIndices[${i}]: data longer than dataSize, or an authValue or authPolicy longer than any digest`);
  });
  s.persistentObjects.forEach((o, i) => {
    const at = `state.persistentObjects[${i}]`;
    checkWhole(o.handle, 0xffffffff, `${at}.handle`);
    if (o.handle >>> 24 !== TPM_HT.PERSISTENT) throw new Error(`${at}.handle 0x${o.handle.toString(16)} is not a persistent handle`);
    if (!PERSISTENT_HIERARCHIES.has(o.hierarchy)) throw new Error(`${at}.hierarchy 0x${o.hierarchy.toString(16)} is not a hierarchy`);
    let name: Uint8Array;
    try {
      const publicArea = decode(TPMT_PUBLIC, o.public);
      name = objectName(publicArea);
      // The key the engine makes of the two areas when the object is used (object.ts persistentLoadedObject).
      keyFromSensitive(publicArea, decode(TPMT_SENSITIVE, o.sensitive));
    } catch (e) {
      throw new Error(`${at}: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (!equalBytes(name, o.name)) throw new Error(`${at}.name is not the Name of its public area`);
    // A qualified Name is a Name too: nameAlg ‖ digest (Part 1 §16), which ReadPublic answers in a TPM2B_NAME.
    const qn = o.qualifiedName;
    const qnAlg = qn.length >= 2 ? (qn[0]! << 8) | qn[1]! : -1;
    if (!isHashSupported(qnAlg) || qn.length !== 2 + digestSize(qnAlg)) throw new Error(`${at}.qualifiedName is not a Name`);
  });
}

/**
 * Checks a decoded state against the current SimulatorState field by field (names,
 * kinds, nested arrays) and returns it typed.
 * @throws StateError state.corrupt naming the first field that does not fit
 */
export function validateSimulatorState(value: VersionedState, file = STATE_FILE_NAME): SimulatorState {
  const template: Record<string, unknown> = { ...createSimulatorState(() => byte0), savedState: SAVED_STATE_TEMPLATE, pendingPcrAllocation: [] };
  try {
    checkShape(value, template, 'state', SIMULATOR_SHAPE_RULES);
    const orderly = (value as { orderlyShutdown?: unknown }).orderlyShutdown;
    if (orderly !== 'none' && orderly !== 'clear' && orderly !== 'state') throw new Error(`state.orderlyShutdown is ${String(orderly)}`);
    const counterMax = (value as unknown as { nvCounterMax: bigint }).nvCounterMax;
    if (counterMax < 0n || counterMax > 0xffffffffffffffffn) throw new Error(`state.nvCounterMax ${counterMax} is not a UINT64`);
    const auditCounter = (value as unknown as { commandAudit: { counter: bigint } }).commandAudit.counter;
    if (auditCounter < 0n || auditCounter > 0xffffffffffffffffn) throw new Error(`state.commandAudit.counter ${auditCounter} is not a UINT64`);
    const { commitCounter, pcrAuthPolicies, pcrAuthValues } = value as unknown as SimulatorState;
    if (commitCounter < 0n || commitCounter > 0xffffffffffffffffn) throw new Error(`state.commitCounter ${commitCounter} is not a UINT64`);
    // One entry per group of this build's PCR configuration (a different count is another TPM's state).
    if (pcrAuthPolicies.length !== PCR_POLICY_GROUPS.length) throw new Error(`state.pcrAuthPolicies has ${pcrAuthPolicies.length} groups, expected ${PCR_POLICY_GROUPS.length}`);
    if (pcrAuthValues.length !== PCR_AUTH_VALUE_GROUPS.length) throw new Error(`state.pcrAuthValues has ${pcrAuthValues.length} groups, expected ${PCR_AUTH_VALUE_GROUPS.length}`);
    for (const p of pcrAuthPolicies) {
      // Part 3 §22.7: a policy is a digest of its hashAlg (SHA-512 at most), or empty with TPM_ALG_NULL.
      if (p.hashAlg === TPM_ALG.NULL ? p.policy.length !== 0 : p.policy.length > 64) throw new Error(`state.pcrAuthPolicies: a ${p.policy.length}-byte policy with hashAlg 0x${p.hashAlg.toString(16)}`);
    }
    for (const v of pcrAuthValues) if (v.length > 64) throw new Error(`state.pcrAuthValues: a ${v.length}-byte authValue`);
    checkEntities(value as unknown as SimulatorState);
  } catch (cause) {
    throw new StateError('state.corrupt', `state does not fit SimulatorState v${SIMULATOR_STATE_VERSION}: ${(cause as Error).message}`, file, { cause });
  }
  return value as SimulatorState;
}

/** How a software TPM's state file is read (for `decodeStateFile`, `StateStore.open`): layout version, migrations, validation. */
export function simulatorStateOptions(file = STATE_FILE_NAME): StateStoreOptions<SimulatorState> {
  return { version: SIMULATOR_STATE_VERSION, migrations: STATE_MIGRATIONS, validate: (value) => validateSimulatorState(value, file) };
}

/**
 * Opens a software TPM's folder: loads and validates its SimulatorState, or,
 * when `create` is true and there is none, manufactures a fresh one under
 * `profile` (profiles.ts; libtpms when omitted), saved before this resolves.
 */
export function openSimulatorStore(
  dir: string,
  options: { create?: boolean; random?: RandomSource; profile?: ManufactureProfile } = {},
): Promise<OpenedStore<SimulatorState>> {
  const storeOptions = simulatorStateOptions(join(dir, STATE_FILE_NAME));
  if (options.create) storeOptions.create = () => createSimulatorState(options.random, options.profile);
  return StateStore.open(dir, storeOptions);
}
