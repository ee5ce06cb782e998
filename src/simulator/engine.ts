/**
 * TpmEngine: one software TPM. `execute` takes command bytes and always
 * returns response bytes, following Part 3 §5 "Command Processing": header
 * (§5.2), command code, handle area (§5.3), authorization area (§5.4),
 * parameters (§5.5), then the command's handler and the response (§5.6–5.7).
 * Everything lives on the instance: `state` (what survives a restart, see
 * state.ts) and `volatile` (what a power cycle loses).
 */
import { timingSafeEqual } from 'node:crypto';
import type { AnyCommand } from '../tpm/command.js';
import { TPM_HT, TPM_RH, TPM_RS_PW, TPM_ST } from '../tpm/constants.js';
import { digestSize } from '../tpm/crypto/hash.js';
import { ParseError, TrustrootError } from '../tpm/errors.js';
import { decodeHandles, decodeParams, encodeErrorResponse, encodeResponse, splitCommand, type AuthResponse } from '../tpm/frame.js';
import { TPM_RC, TpmError, rcForHandle, rcForParameter, rcForSession } from '../tpm/rc.js';
import { TPMA_SESSION, type TPMS_AUTH_COMMAND } from '../tpm/types/index.js';
import { IMPLEMENTED_HANDLERS } from './handlers/index.js';
import type { CommandHandler } from './handlers/handler.js';
import { PCR_COUNT, createSimulatorState, defaultRandomSource, type RandomSource, type SimulatorState } from './state.js';
import { startupValue } from './pcr-rules.js';
import { ObjectTable } from './objects.js';
import { SessionTable } from './sessions.js';

/** The package version; TPM_PT_FIRMWARE_VERSION_1/2 report it (design.md "Identity"). */
export const FIRMWARE_VERSION = { major: 0, minor: 1, patch: 0 } as const;

/** libtpms-like limits (TPM_PT_* values this engine reports and enforces). */
export const ENGINE_LIMITS = {
  maxCommandSize: 4096,
  maxResponseSize: 4096,
  loadedObjects: 3,
  loadedSessions: 3,
  activeSessions: 64,
  nvBufferMax: 1024,
  inputBuffer: 1024,
  persistentObjects: 7,
  nvIndexMax: 2048,
} as const;

export interface TpmEngineOptions {
  /** State to resume from (a store's load); a freshly manufactured TPM when omitted. */
  readonly state?: SimulatorState;
  /** Secret bytes for seeds and GetRandom; node:crypto when omitted. */
  readonly random?: RandomSource;
  /** Milliseconds, monotonic; drives Clock and Time (Part 1 §36). Defaults to performance.now(). */
  readonly now?: () => number;
  /**
   * Makes `state` durable (a store's save). Awaited before the response of a
   * command whose handler changed persistent state (HandlerContext.persistentChanged).
   */
  readonly persist?: (state: SimulatorState) => Promise<void>;
}

/** What a power cycle loses (_TPM_Init, Part 1 §36.4). */
export interface VolatileState {
  started: boolean;
  /** now() at _TPM_Init: Time counts from here. */
  initAt: number;
  /** now() when state.clock.clock was last brought up to date. */
  clockSyncedAt: number;
  /** Per allocated bank, 24 PCR values. */
  pcrs: Map<number, Uint8Array[]>;
  pcrUpdateCounter: number;
  phEnable: boolean;
  shEnable: boolean;
  ehEnable: boolean;
  /** Loaded transient objects (objects.ts). */
  objects: ObjectTable;
  /** Loaded authorization sessions (sessions.ts). */
  sessions: SessionTable;
}

const HEADER_SIZE = 10;

export class TpmEngine {
  /** Everything that survives a restart; a store serializes this object. */
  readonly state: SimulatorState;
  readonly volatile: VolatileState;
  readonly random: RandomSource;
  readonly now: () => number;
  private readonly persist: ((state: SimulatorState) => Promise<void>) | undefined;
  private readonly handlers: ReadonlyMap<number, CommandHandler>;

  constructor(options: TpmEngineOptions = {}) {
    this.random = options.random ?? defaultRandomSource;
    this.now = options.now ?? (() => performance.now());
    this.state = options.state ?? createSimulatorState(this.random);
    this.persist = options.persist;
    this.handlers = new Map(IMPLEMENTED_HANDLERS.map((h) => [h.command.code, h]));
    const t = this.now();
    this.volatile = { started: false, initAt: t, clockSyncedAt: t, pcrs: new Map(), pcrUpdateCounter: 0, phEnable: true, shEnable: true, ehEnable: true, objects: new ObjectTable(ENGINE_LIMITS.loadedObjects), sessions: new SessionTable(ENGINE_LIMITS.loadedSessions) };
  }

  /** _TPM_Init (Part 1 §36.4): a power cycle. The next command must be Startup. */
  init(): void {
    this.syncClock();
    const t = this.now();
    Object.assign(this.volatile, { started: false, initAt: t, clockSyncedAt: t, pcrs: new Map(), pcrUpdateCounter: 0 });
    this.volatile.objects.clear();
    this.volatile.sessions.clear();
  }

  /** Command codes this engine implements, ascending. */
  implementedCommands(): number[] {
    return [...this.handlers.keys()].sort((a, b) => a - b);
  }

  /** The record of an implemented command. */
  commandRecord(code: number): AnyCommand | undefined {
    return this.handlers.get(code)?.command;
  }

  /** Brings state.clock.clock up to now (Part 1 §36.3: Clock advances while powered). */
  syncClock(): void {
    const t = this.now();
    const elapsed = Math.max(0, Math.floor(t - this.volatile.clockSyncedAt));
    this.state.clock.clock += BigInt(elapsed);
    this.volatile.clockSyncedAt += elapsed;
  }

  /** Milliseconds since _TPM_Init (Part 1 §36.2 Time). */
  time(): bigint {
    return BigInt(Math.max(0, Math.floor(this.now() - this.volatile.initAt)));
  }

  /** Fills every allocated bank with its startup values (Part 1 §36.7 TPM Reset). */
  resetPcrs(): void {
    this.volatile.pcrs = new Map(
      this.state.pcrAllocation.map((b) => [b.hashAlg, Array.from({ length: PCR_COUNT }, (_, i) => startupValue(i, digestSize(b.hashAlg)))]),
    );
    this.volatile.pcrUpdateCounter = 0;
  }

  /** Runs one command. Never throws: every input gets a response. */
  async execute(command: Uint8Array, locality = 0): Promise<Uint8Array> {
    try {
      return await this.process(command, locality);
    } catch (e) {
      if (e instanceof TpmError) return encodeErrorResponse(e.rc);
      if (e instanceof ParseError) return encodeErrorResponse(TPM_RC.FAILURE);
      // A bug in a handler: the TPM reports a failure rather than crashing its host.
      return encodeErrorResponse(TPM_RC.FAILURE);
    }
  }

  private async process(bytes: Uint8Array, locality: number): Promise<Uint8Array> {
    // Part 3 §5.2: the header.
    if (bytes.length < HEADER_SIZE) return encodeErrorResponse(bytes.length < 2 ? TPM_RC.INSUFFICIENT : checkTagOr(bytes, TPM_RC.INSUFFICIENT));
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const tag = view.getUint16(0);
    if (tag !== TPM_ST.NO_SESSIONS && tag !== TPM_ST.SESSIONS) return encodeErrorResponse(TPM_RC.BAD_TAG);
    const size = view.getUint32(2);
    if (size !== bytes.length || size > ENGINE_LIMITS.maxCommandSize) return encodeErrorResponse(TPM_RC.COMMAND_SIZE);
    const code = view.getUint32(6);
    const entry = this.handlers.get(code);
    if (entry === undefined) return encodeErrorResponse(TPM_RC.COMMAND_CODE);
    // Part 3 §5.2: only Startup before the TPM is started (Part 1 §36.5).
    if (!this.volatile.started && entry.command.name !== 'Startup') return encodeErrorResponse(TPM_RC.INITIALIZE);
    this.syncClock();

    const cmd = entry.command;
    let split;
    try {
      split = splitCommand(bytes, () => cmd);
    } catch (e) {
      return encodeErrorResponse(splitErrorRc(e, cmd));
    }
    // Part 3 §5.3: handles.
    let handles: Record<string, number>;
    try {
      handles = decodeHandles(cmd, split.handleValues) as Record<string, number>;
    } catch (e) {
      return encodeErrorResponse(handleParseRc(e, cmd));
    }
    for (let i = 0; i < cmd.handleNames.length; i++) {
      const rc = this.checkHandle(split.handleValues[i]!);
      if (rc !== 0) return encodeErrorResponse(rcForHandle(rc, i + 1));
    }
    // Part 3 §5.4: authorizations.
    const auth = this.authorize(cmd, tag, split.handleValues, split.sessions);
    if (typeof auth === 'number') return encodeErrorResponse(auth);
    // Part 3 §5.5: parameters.
    let params: unknown;
    try {
      params = decodeParams(cmd, split.paramBytes);
    } catch (e) {
      return encodeErrorResponse(paramParseRc(e, cmd));
    }
    const ctx = { engine: this, locality, persistentChanged: false };
    const result = await entry.run(ctx, handles as never, params as never);
    if (ctx.persistentChanged && this.persist !== undefined) {
      // Part 2 §6.6.3 TPM_RC_NV_UNAVAILABLE: the change could not be made durable, so it is not reported as done.
      try {
        await this.persist(this.state);
      } catch {
        return encodeErrorResponse(TPM_RC.NV_UNAVAILABLE);
      }
    }
    return encodeResponse(cmd, result.handles as never, result.params as never, { sessions: auth });
  }

  /** Whether a handle names something that exists now (Part 3 §5.3); 0 or the base code. */
  private checkHandle(h: number): number {
    const type = h >>> 24;
    if (type === TPM_HT.PCR) return h < PCR_COUNT ? 0 : TPM_RC.VALUE;
    if (type === TPM_HT.PERMANENT) {
      if (h === TPM_RH.OWNER) return this.volatile.shEnable ? 0 : TPM_RC.HIERARCHY;
      if (h === TPM_RH.ENDORSEMENT) return this.volatile.ehEnable ? 0 : TPM_RC.HIERARCHY;
      if (h === TPM_RH.PLATFORM || h === TPM_RH.PLATFORM_NV) return this.volatile.phEnable ? 0 : TPM_RC.HIERARCHY;
      if (h === TPM_RH.LOCKOUT || h === TPM_RH.NULL || h === TPM_RS_PW) return 0;
      return TPM_RC.VALUE;
    }
    if (type === TPM_HT.NV_INDEX) return this.state.nvIndices.some((n) => n.nvIndex === h) ? 0 : TPM_RC.HANDLE;
    if (type === TPM_HT.PERSISTENT) return this.state.persistentObjects.some((o) => o.handle === h) ? 0 : TPM_RC.HANDLE;
    if (type === TPM_HT.TRANSIENT) return this.volatile.objects.get(h) !== undefined ? 0 : TPM_RC.HANDLE;
    // No sessions are loaded yet in this slice.
    return TPM_RC.HANDLE;
  }

  /** The authValue a password session must present for `h` (Part 1 §19.8.4), or undefined when none can. */
  private authValueOf(h: number): Uint8Array | undefined {
    const a = this.state.auths;
    if (h === TPM_RH.OWNER) return a.owner.authValue;
    if (h === TPM_RH.ENDORSEMENT) return a.endorsement.authValue;
    if (h === TPM_RH.PLATFORM || h === TPM_RH.PLATFORM_NV) return a.platform.authValue;
    if (h === TPM_RH.LOCKOUT) return a.lockout.authValue;
    if (h >>> 24 === TPM_HT.PCR || h === TPM_RH.NULL) return new Uint8Array(0); // PCR authValues are empty until PCR_SetAuthValue
    const object = this.volatile.objects.get(h);
    // Part 1 §19.7.3: a password (USER role) only when userWithAuth is SET. TODO(next slice): ADMIN/DUP roles.
    if (object !== undefined) return object.publicArea.objectAttributes.userWithAuth ? object.sensitive.authValue : undefined;
    // An NV index authorizes with its own authValue (Part 1 §37.3); whether it may is the handler's check (Part 3 §31.7).
    if (h >>> 24 === TPM_HT.NV_INDEX) return this.state.nvIndices.find((n) => n.nvIndex === h)?.authValue;
    return undefined;
  }

  /**
   * Part 3 §5.4 and Part 1 §19.8.4: one session per handle that needs one,
   * password sessions checked here. Returns the response authorizations, or
   * a response code.
   */
  private authorize(cmd: AnyCommand, tag: number, handleValues: readonly number[], sessions: readonly TPMS_AUTH_COMMAND[]): AuthResponse[] | number {
    if (tag === TPM_ST.NO_SESSIONS) return cmd.authCount > 0 ? TPM_RC.AUTH_MISSING : [];
    if (sessions.length < cmd.authCount) return TPM_RC.AUTH_MISSING;
    const authHandles = cmd.handleNames.map((n, i) => ({ spec: cmd.handles[n]!, value: handleValues[i]! })).filter((h) => h.spec.auth !== null);
    const out: AuthResponse[] = [];
    for (let i = 0; i < sessions.length; i++) {
      const s = sessions[i]!;
      if (s.sessionHandle !== TPM_RS_PW) return TPM_RC.AUTH_UNAVAILABLE; // TODO(next slice): HMAC and policy sessions
      // A password may only authorize a handle; it cannot audit or encrypt (Part 1 §19.8.4).
      if (i >= authHandles.length) return rcForSession(TPM_RC.AUTH_CONTEXT, i + 1);
      if (s.nonce.length !== 0) return rcForSession(TPM_RC.NONCE, i + 1);
      const attrs = TPMA_SESSION.toWord(s.sessionAttributes);
      if ((attrs & ~TPMA_SESSION.toWord(TPMA_SESSION.of({ continueSession: true }))) !== 0) return rcForSession(TPM_RC.ATTRIBUTES, i + 1);
      const expected = this.authValueOf(authHandles[i]!.value);
      if (expected === undefined) return TPM_RC.AUTH_UNAVAILABLE;
      // TODO(next slice): dictionary-attack accounting for lockoutAuth failures (TPM_RC_AUTH_FAIL, lockout).
      if (!passwordMatches(s.hmac, expected)) return rcForSession(TPM_RC.BAD_AUTH, i + 1);
      out.push({ nonce: new Uint8Array(0), sessionAttributes: TPMA_SESSION.of({ continueSession: s.sessionAttributes.continueSession }), hmac: new Uint8Array(0) });
    }
    return out;
  }
}

/**
 * Part 1 §19.8.4: trailing zeros of both values are ignored; the comparison
 * runs in constant time over the longer length so the result says nothing
 * about where the values differ.
 */
function passwordMatches(given: Uint8Array, expected: Uint8Array): boolean {
  const a = trimZeros(given);
  const b = trimZeros(expected);
  const n = Math.max(a.length, b.length, 1);
  const pa = new Uint8Array(n);
  const pb = new Uint8Array(n);
  pa.set(a);
  pb.set(b);
  return timingSafeEqual(pa, pb) && a.length === b.length;
}

function trimZeros(b: Uint8Array): Uint8Array {
  let n = b.length;
  while (n > 0 && b[n - 1] === 0) n--;
  return b.subarray(0, n);
}

function checkTagOr(bytes: Uint8Array, rc: number): number {
  const tag = (bytes[0]! << 8) | bytes[1]!;
  return tag === TPM_ST.NO_SESSIONS || tag === TPM_ST.SESSIONS ? rc : TPM_RC.BAD_TAG;
}

/** Base code for a ParseError code (the reference unmarshalers' choices). */
function baseCodeOf(e: ParseError): number {
  switch (e.code) {
    case 'parse.truncated':
      return TPM_RC.INSUFFICIENT;
    case 'parse.size':
    case 'parse.trailing':
    case 'parse.count':
      return TPM_RC.SIZE;
    case 'parse.selector':
      return TPM_RC.SELECTOR;
    case 'parse.reserved':
      return TPM_RC.RESERVED_BITS;
    case 'parse.tag':
      return TPM_RC.TAG;
    case 'parse.handle':
    case 'parse.value':
    case 'parse.constant':
    case 'parse.command':
      return TPM_RC.VALUE;
  }
}

/** Errors of the authorization area (the only thing splitCommand reads beyond our own header checks). */
function splitErrorRc(e: unknown, cmd: AnyCommand): number {
  if (!(e instanceof ParseError)) return TPM_RC.FAILURE;
  const path = e.path;
  // Part 3 §5.4: a bad authorizationSize is TPM_RC_AUTHSIZE.
  if (path.includes('authorizationSize') || (e.code === 'parse.size' && !path.includes('authorizations.'))) return TPM_RC.AUTHSIZE;
  const m = /authorizations\.\[(\d+)\]/.exec(path);
  if (m !== null) {
    const index = Number(m[1]) + 1;
    return index <= 7 ? rcForSession(baseCodeOf(e), index) : TPM_RC.AUTHSIZE;
  }
  if (path.includes('.handles')) return e.code === 'parse.truncated' ? TPM_RC.INSUFFICIENT : handleParseRc(e, cmd);
  return e.code === 'parse.truncated' ? TPM_RC.INSUFFICIENT : TPM_RC.COMMAND_SIZE;
}

function handleParseRc(e: unknown, cmd: AnyCommand): number {
  if (!(e instanceof ParseError)) return TPM_RC.FAILURE;
  const i = cmd.handleNames.findIndex((n) => e.path.split('.').includes(n));
  return rcForHandle(TPM_RC.VALUE, i >= 0 ? i + 1 : 1);
}

function paramParseRc(e: unknown, cmd: AnyCommand): number {
  if (!(e instanceof ParseError)) return e instanceof TrustrootError ? TPM_RC.VALUE : TPM_RC.FAILURE;
  const names = Object.keys(cmd.params);
  const parts = e.path.split('.');
  const at = parts.indexOf('params');
  const field = at >= 0 ? parts[at + 1] : undefined;
  const i = field === undefined ? -1 : names.indexOf(field);
  // Trailing bytes after the last parameter: Part 3 §5.5 calls that TPM_RC_SIZE without a parameter number.
  if (i < 0) return e.code === 'parse.truncated' ? TPM_RC.INSUFFICIENT : TPM_RC.SIZE;
  return rcForParameter(baseCodeOf(e), Math.min(i + 1, 15));
}
