/**
 * The client's `Tpm`: runs any command declared in the core with typed
 * handles, parameters and authorization sessions, and returns the typed
 * response or throws a typed error (design.md, "Client").
 *
 * Handles carry their Name (an `Entity`), computed from a public area the
 * caller has checked, so cpHash needs no extra ReadPublic and cannot be
 * steered by a lying TPM. Sessions are objects (session.ts); the math is the
 * core's (session-crypto.ts), shared with the software TPM.
 *
 * Every response authorization is verified (Part 1 §19.6.10); a response that
 * fails verification breaks the sessions of that command, which are then
 * flushed. A TPM error leaves sessions as the TPM leaves them: unchanged and
 * open (the reference's ExecuteCommand skips BuildResponseSession on error).
 *
 * A lost response (the transport fails after the command may have reached the
 * TPM: the connection closed, a timeout, an abort) is treated as "the TPM may
 * have run it": the sessions it used are broken, and the Tpm flushes them and
 * whatever the command may have created or left behind before its next
 * command (see `RecoveryOptions`).
 */
import { readCapability } from '../tpm/capability.js';
import type { AnyCommand, CommandHandles, CommandParams, ResponseHandles, ResponseParams } from '../tpm/command.js';
import {
  ChangeEPS,
  ChangePPS,
  Clear,
  ContextSave,
  EventSequenceComplete,
  FlushContext,
  HierarchyChangeAuth,
  HierarchyControl,
  NV_ChangeAuth,
  NV_UndefineSpaceSpecial,
  PolicyAuthValue,
  PolicyPassword,
  PolicyRestart,
  SequenceComplete,
  StartAuthSession,
  ALL_COMMANDS,
  Startup,
} from '../tpm/commands/index.js';
import { HANDLE_RANGE, TPM_ALG, TPM_CAP, TPM_HT, TPM_RH, TPM_RS_PW, TPM_SE, handleType } from '../tpm/constants.js';
import { cpHash as computeCpHash, rpHash as computeRpHash } from '../tpm/cphash.js';
import { digestSize, isHashSupported } from '../tpm/crypto/hash.js';
import { pooledRandomSource } from '../tpm/crypto/random.js';
import { ParseError, SessionError, TransportError } from '../tpm/errors.js';
import {
  decodeResponseParams,
  encodeCommand,
  encodeParams,
  frameCommand,
  decodeParams,
  splitCommand,
  splitResponse,
  type FrameCommandOptions,
  type SplitResponse,
} from '../tpm/frame.js';
import { handleName, objectName } from '../tpm/names.js';
import { TpmError } from '../tpm/rc.js';
import { runCommand } from '../tpm/run.js';
import {
  commandHmac,
  decryptResponseParameter,
  encryptCommandParameter,
  encryptSalt,
  extendAuditDigest,
  extraNonces,
  isBindEntity,
  responseHmac,
  sessionHmacKey,
  sessionKey as computeSessionKey,
  type SessionRole,
} from '../tpm/session-crypto.js';
import { abortError, closedError, getU32 } from '../tpm/transport/channel.js';
import { sendOptionsOf, type SendOptions, type Transport } from '../tpm/transport/transport.js';
import { TPMA_SESSION, type TPMS_AUTH_COMMAND, type TPMS_AUTH_RESPONSE, type TPMT_PUBLIC, type TPMT_SYM_DEF } from '../tpm/types/index.js';
import { RetryTransport, isSuccessResponse, withRetry, type RetryOptions } from './retry.js';
import { AuthSession, PasswordSession, sessionState, type SessionState, type SessionType, type SessionUse } from './session.js';
import { equalBytes } from '../tpm/bytes.js';


/**
 * An entity the client can name: its handle, its Name (nameAlg ‖ digest of a
 * public area the caller has checked; for PCRs, permanent handles and
 * sessions the 4-byte handle), and its authValue if the caller knows it.
 */
export interface Entity {
  readonly handle: number;
  readonly name: Uint8Array;
  readonly authValue?: Uint8Array;
}

/**
 * A handle argument: a number for entities named by their handle (PCRs,
 * permanent handles, sessions) or when no session needs the Name, otherwise
 * an Entity (an AuthSession is one too).
 */
export type Handle = number | Entity;

/** An authorization or an extra session for one command. */
export type Authorization = PasswordSession | AuthSession | SessionUse;

export type RunHandles<C extends AnyCommand> = { readonly [K in keyof CommandHandles<C>]: Handle };

export interface TpmRunOptions extends SendOptions {
  /**
   * One authorization per handle that needs one, in handle order (an
   * undefined entry, or a missing one, means a password with the entity's
   * authValue), then up to the third session, extra sessions that only
   * encrypt, decrypt or audit.
   */
  readonly sessions?: readonly (Authorization | undefined)[];
}

export interface TpmRunResult<C extends AnyCommand> {
  readonly handles: ResponseHandles<C>;
  readonly params: ResponseParams<C>;
}

export interface StartAuthSessionOptions extends SendOptions {
  /** Default 'hmac'. */
  readonly type?: SessionType;
  /** The session hash (authHash); default SHA-256. */
  readonly hashAlg?: number;
  /**
   * Bind entity: its authValue joins the session key (Part 1 §19.6.11). Give
   * an Entity with its authValue; a number stands for a permanent handle
   * with an empty authValue.
   */
  readonly bind?: Handle;
  /**
   * Salt the session with a key loaded on the TPM (Part 1 §19.6.13): `key` is
   * its handle and `public` the public area the caller trusts (the EK's, a
   * storage key's); the salt is encrypted to that public area. If `key` is an
   * Entity, its Name must match `public`.
   */
  readonly salt?: { readonly key: Handle; readonly public: TPMT_PUBLIC };
  /**
   * Parameter encryption algorithm; default AES-128-CFB. XOR is
   * `{ algorithm: TPM_ALG.XOR, keyBits: hashAlg }`; `{ algorithm: TPM_ALG.NULL }` disables encryption.
   */
  readonly symmetric?: TPMT_SYM_DEF;
  /** Size of the caller's nonces, 16 up to the session hash's digest size; default the digest size. */
  readonly nonceSize?: number;
}

/** Something `flush` can remove from the TPM: a transient object or session, by handle or as an object. */
export type Flushable = number | Entity | AuthSession;

/** Collects transient objects and sessions and flushes them all when the scope ends. */
export interface FlushScope {
  /** Registers `resource` for flushing at the end of the scope (last registered, first flushed) and returns it. */
  defer<T extends Flushable>(resource: T): T;
}


/**
 * What the Tpm does after a lost response: a transport failure after which
 * the command may have run on the TPM, so its result, the sessions' new nonces
 * and any handle it created never reached the client.
 *
 * The sessions the command used (or named, or flushed) are always broken and
 * flushed. With `flushUnknown` (the default) the Tpm also lists the transient
 * objects and loaded sessions (GetCapability TPM_CAP_HANDLES, Part 3 §30.2)
 * after a lost command that can create one (Load, CreatePrimary,
 * CreateLoaded, LoadExternal, ContextLoad, HashSequenceStart, HMAC_Start,
 * StartAuthSession) or remove one (FlushContext, SequenceComplete,
 * EventSequenceComplete), and flushes every handle it does not know to be
 * loaded through it. That is safe when this Tpm is the only user of what it
 * can see: behind a resource manager (/dev/tpmrm0, tpm2-abrmd) each
 * connection sees only its own handles, and a TCP simulator (swtpm, mssim)
 * serves one client at a time. Turn it off when other programs share the TPM
 * without a resource manager (/dev/tpm0 in turn with other users, a
 * simulator whose connection is handed around): their objects would look
 * unknown.
 */
export interface RecoveryOptions {
  /** List loaded handles after a lost command and flush those this Tpm does not know (default true). */
  readonly flushUnknown?: boolean;
  /**
   * Time for one clean-up attempt, all its commands together (default 2000
   * ms). A clean-up that cannot finish, because the TPM is still unreachable
   * or busy with the lost command, is tried again before the next command.
   */
  readonly timeoutMs?: number;
}

export interface TpmOptions {
  /** Retry TPM_RC_RETRY, YIELDED and TESTING with back-off (default on, RETRY_DEFAULTS); false leaves the transport as given. */
  readonly retry?: RetryOptions | false;
  readonly recovery?: RecoveryOptions;
}

/** Defaults of RecoveryOptions. */
export const RECOVERY_DEFAULTS = { flushUnknown: true, timeoutMs: 2000 } as const;

const AES_128_CFB: TPMT_SYM_DEF = { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB };
const EMPTY = new Uint8Array(0);
/** A password's attributes: continueSession, and nothing else (Part 1 §19.8.4). Shared, never changed. */
const PASSWORD_ATTRIBUTES = TPMA_SESSION.of({ continueSession: true });

type PasswordSlot = { readonly kind: 'password'; readonly index: number; readonly authValue: Uint8Array };
type SessionSlot = {
  readonly kind: 'session';
  readonly index: number;
  readonly session: AuthSession;
  readonly state: SessionState;
  readonly attributes: Required<SessionUse['attributes']>;
  /** The entity this session authorizes, or undefined for an extra session. */
  readonly entity: { readonly name: Uint8Array; readonly authValue: Uint8Array } | undefined;
  nonceCaller: Uint8Array;
};
type Slot = PasswordSlot | SessionSlot;

const NO_SLOTS: readonly Slot[] = Object.freeze([]);
const NO_SESSION_SLOTS: readonly SessionSlot[] = Object.freeze([]);
const NO_AUTHORIZATIONS: readonly (Authorization | undefined)[] = Object.freeze([]);
const NO_RUN_OPTIONS: TpmRunOptions = Object.freeze({});

/** What a command with HMAC or policy sessions sends besides its handles. */
interface SessionArea {
  /** The parameters as sent (the first one encrypted when a session decrypts). */
  readonly paramBytes: Uint8Array;
  readonly auths: readonly TPMS_AUTH_COMMAND[];
  /** cpHash per session hash, computed once each. */
  readonly cpHashFor: (alg: number) => Uint8Array;
}

/** The rpHash of a command with passwords only: never asked for (#verify needs it only for HMAC and policy sessions). */
const NO_RP_HASH = (): never => {
  throw new Error('no rpHash is computed for a command without HMAC or policy sessions');
};

/** `compute` at most once per hash algorithm (cpHash, rpHash). */
function memoPerHash(compute: (alg: number) => Uint8Array): (alg: number) => Uint8Array {
  const done = new Map<number, Uint8Array>();
  return (alg) => {
    let h = done.get(alg);
    if (h === undefined) done.set(alg, (h = compute(alg)));
    return h;
  };
}

/** The authorization area of a command with passwords only, or undefined for none. */
function passwordFrame(slots: readonly PasswordSlot[]): FrameCommandOptions | undefined {
  const count = slots.length;
  if (count === 0) return undefined;
  const auths = new Array<TPMS_AUTH_COMMAND>(count);
  for (let i = 0; i < count; i++) auths[i] = { sessionHandle: TPM_RS_PW, nonce: EMPTY, sessionAttributes: PASSWORD_ATTRIBUTES, hmac: slots[i]!.authValue };
  return { sessions: auths };
}

/**
 * Clean-up owed to the TPM after lost responses and responses that could not
 * be trusted; done before the next command, best effort.
 */
interface Recovery {
  /** Handles to flush, with the session object when it is one of ours. */
  readonly flush: Map<number, AuthSession | undefined>;
  /** List the loaded transient objects and sessions, forget known ones that are gone, flush unknown ones. */
  list: boolean;
}

/**
 * Transport failures that happen before a command leaves the client: nothing
 * reached the TPM. Every other failure may come after the TPM got the command.
 */
const NOT_SENT: ReadonlySet<string> = new Set(['transport.connect', 'transport.unsupported']);

function invalid(message: string, sessionIndex?: number): SessionError {
  return new SessionError('session.invalid', message, sessionIndex !== undefined ? { sessionIndex } : undefined);
}

function hex(n: number): string {
  return `0x${(n >>> 0).toString(16).padStart(8, '0')}`;
}

/** The handle value of a handle argument, or undefined when it is not one. */
function rawHandle(h: Handle): number | undefined {
  const v = typeof h === 'number' ? h : h?.handle;
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff ? v >>> 0 : undefined;
}

function handleValue(h: Handle, what: string): number {
  const v = rawHandle(h);
  if (v === undefined) throw invalid(`${what}: expected a handle number or an Entity`);
  return v;
}

/** A Name for a handle: the Entity's, or the handle itself for the types named by their handle (Part 1 §16.2). */
function nameOf(h: Handle, what: string): Uint8Array {
  if (typeof h !== 'number') {
    if (!(h.name instanceof Uint8Array)) throw invalid(`${what}: the Entity has no Name`);
    return h.name;
  }
  const ht = handleType(h);
  if (ht === TPM_HT.TRANSIENT || ht === TPM_HT.PERSISTENT || ht === TPM_HT.NV_INDEX) {
    throw invalid(`${what} ${hex(h)} is named by its public area: pass an Entity with its Name when an HMAC or policy session is used`);
  }
  return handleName(h);
}

function authValueOf(h: Handle): Uint8Array {
  return typeof h === 'number' ? EMPTY : (h.authValue ?? EMPTY);
}


function isSessionHandle(h: number): boolean {
  const ht = handleType(h);
  return ht === TPM_HT.HMAC_SESSION || ht === TPM_HT.POLICY_SESSION;
}

function isTransient(h: number): boolean {
  return h >= HANDLE_RANGE.TRANSIENT[0] && h <= HANDLE_RANGE.TRANSIENT[1];
}

/** Indices of a command's handles that need an authorization, computed once per command. */
const authIndexCache = new WeakMap<AnyCommand, readonly number[]>();
function authIndices(cmd: AnyCommand): readonly number[] {
  let a = authIndexCache.get(cmd);
  if (a === undefined) {
    const list: number[] = [];
    cmd.handleNames.forEach((n, i) => {
      if (cmd.handles[n]!.auth !== null) list.push(i);
    });
    authIndexCache.set(cmd, (a = list));
  }
  return a;
}

/**
 * Commands after which the client's list of loaded handles may be wrong
 * unless it looks: they flush transient objects of whole hierarchies (Part 3
 * §24.2 HierarchyControl, §24.4 ChangePPS, §24.5 ChangeEPS, §24.6 Clear).
 */
const FLUSHES_HIERARCHY: ReadonlySet<number> = new Set([HierarchyControl.code, ChangePPS.code, ChangeEPS.code, Clear.code]);

/**
 * A TPM behind a transport. Commands are serialized: each `run` waits for the
 * previous one, so session nonces stay in order.
 */
export class Tpm {
  readonly transport: Transport;
  /**
   * The transport seen through this Tpm's queue: raw commands sent here wait
   * their turn behind earlier run() calls, so the core's password-only helpers
   * (readPcrs, readCapability) can be used without overtaking queued commands.
   * Handles created or flushed through it are tracked as for run().
   */
  readonly channel: Transport;
  /** A serialized job (a run(), a flush, a clean-up…) is running. */
  #busy = false;
  /** Jobs waiting for the running one, started in order by #release. */
  readonly #waiting: (() => void)[] = [];
  /** The running job has settled: start the next. */
  readonly #release = (): void => {
    const next = this.#waiting.shift();
    if (next === undefined) this.#busy = false;
    else next();
  };
  /** Sessions this Tpm started and that are not known to be closed. */
  readonly #sessions = new Map<number, AuthSession>();
  /** Nonces (nonceCaller) from node:crypto a block at a time: a randomBytes call per command cost ~2 µs. */
  readonly #random = pooledRandomSource();
  /** `transport` when it retries: the Tpm's own commands take its path for serialized callers. */
  readonly #retry: RetryTransport | undefined;
  readonly #flushUnknown: boolean;
  readonly #recoveryMs: number;
  /**
   * Transient objects and loaded sessions known to be on the TPM through this
   * Tpm: added from the response handles of successful commands, removed when
   * a command flushes them (FlushContext §28.4; SequenceComplete §17.6 and
   * EventSequenceComplete §17.7 flush their sequence; ContextSave §28.2
   * unloads a session but not an object; a session ends with
   * continueSession clear; Startup §9.3 follows _TPM_Init, which flushed
   * everything). Only read after a lost response, to tell our handles from
   * ones nobody knows.
   */
  readonly #loaded = new Set<number>();
  /** Broken sessions already flushed: their handle may now be another session's, so flush() must not send it again. */
  readonly #gone = new WeakSet<AuthSession>();
  #pending: Recovery | undefined;
  #recoveryQueued = false;
  #closing = false;

  /**
   * `transport` is wrapped in retry with back-off (src/client/retry.ts) unless
   * it already retries or `options.retry` is false: TPMs answer TPM_RC_RETRY,
   * YIELDED and TESTING in normal work (libtpms on the first use of a new RSA
   * key), and such a command has not run, so resending it is always right.
   * `options.recovery`: see RecoveryOptions.
   */
  constructor(transport: Transport, options: TpmOptions = {}) {
    this.transport = options.retry === false || transport instanceof RetryTransport ? transport : withRetry(transport, options.retry);
    this.#retry = this.transport instanceof RetryTransport ? this.transport : undefined;
    const recovery = options.recovery ?? {};
    this.#flushUnknown = recovery.flushUnknown ?? RECOVERY_DEFAULTS.flushUnknown;
    this.#recoveryMs = recovery.timeoutMs ?? RECOVERY_DEFAULTS.timeoutMs;
    if (!(this.#recoveryMs > 0)) throw new RangeError(`recovery.timeoutMs must be > 0, got ${String(this.#recoveryMs)}`);
    this.channel = {
      send: (command, sendOptions) => this.#serialize(() => this.#channelSend(command, sendOptions ?? NO_RUN_OPTIONS)),
      close: () => this.close(),
    };
  }

  /** Closes the transport (sessions and objects on the TPM are left as they are, and owed clean-up is dropped). */
  close(): Promise<void> {
    this.#closing = true;
    this.#pending = undefined;
    return this.transport.close();
  }

  /**
   * Runs `cmd` with `handles` and `params` and returns its decoded response.
   *
   * @throws SessionError `session.invalid` before sending for a session use
   *   the TPM would refuse (decrypt on a command whose first parameter is not a
   *   TPM2B, encrypt when the response has none, audit/encrypt/decrypt on a
   *   password, more than one decrypt/encrypt/audit session, more than three
   *   sessions, a trial session, a handle without the Name a session needs),
   *   `session.closed` for a closed or broken session, `session.hmac` when a
   *   response authorization does not verify;
   *   TpmError when the TPM answers with an error code; ParseError when the
   *   response does not decode; EncodeError for parameters that cannot be
   *   marshaled; TransportError from the transport (the sessions the command
   *   used are then broken: the TPM may have run it).
   */
  run<C extends AnyCommand>(cmd: C, handles: RunHandles<C>, params: CommandParams<C>, options: TpmRunOptions = NO_RUN_OPTIONS): Promise<TpmRunResult<C>> {
    if (this.#busy || this.#pending !== undefined) return this.#serialize(() => this.#run(cmd, handles, params, options));
    // Nothing queued, running or owed: start now, and let the command release the queue itself (no closure, no extra promise).
    this.#busy = true;
    try {
      return this.#start(cmd, handles, params, options, this.#release);
    } catch (e) {
      this.#release();
      return Promise.reject(e);
    }
  }

  /** Runs `fn` after every job before it has settled, and the next job after `fn`'s promise has settled. */
  #serialize<T>(fn: () => Promise<T>): Promise<T> {
    if (!this.#busy) {
      // Nothing queued or running: start now rather than a microtask later.
      this.#busy = true;
      return this.#job(fn);
    }
    return new Promise<T>((resolve, reject) => {
      this.#waiting.push(() => this.#job(fn).then(resolve, reject));
    });
  }

  #job<T>(fn: () => Promise<T>): Promise<T> {
    let p: Promise<T>;
    try {
      p = fn();
    } catch (e) {
      p = Promise.reject(e);
    }
    p.then(this.#release, this.#release);
    return p;
  }

  /**
   * Plans and sends one command. Not async itself: the checks before sending
   * throw synchronously (a rejection for callers behind #serialize), and the
   * common path returns the sending step's promise without another wrap.
   */
  #run<C extends AnyCommand>(cmd: C, handles: RunHandles<C>, params: CommandParams<C>, options: TpmRunOptions): Promise<TpmRunResult<C>> {
    if (this.#pending !== undefined) return this.#settle(options).then((o) => this.#start(cmd, handles, params, o));
    return this.#start(cmd, handles, params, options);
  }

  /** `release`, when given, is called once the command has settled (run()'s direct path). */
  #start<C extends AnyCommand>(cmd: C, handles: RunHandles<C>, params: CommandParams<C>, options: TpmRunOptions, release?: () => void): Promise<TpmRunResult<C>> {
    const handleNames = cmd.handleNames;
    const n = handleNames.length;
    const handleArgs = new Array<Handle>(n);
    const handleValues: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      const name = handleNames[i]!;
      const h = (handles as Record<string, Handle>)[name]!;
      const v = rawHandle(h);
      if (v === undefined) throw invalid(`handle ${name}: expected a handle number or an Entity`);
      handleArgs[i] = h;
      handleValues[name] = v;
    }
    const slots = this.#plan(cmd, handleArgs, options.sessions ?? NO_AUTHORIZATIONS);
    let sessionSlots: SessionSlot[] | undefined;
    for (const s of slots) if (s.kind === 'session') (sessionSlots ??= []).push(s);
    return this.#runPlanned(cmd, handleArgs, handleValues, params, slots, sessionSlots, options, release);
  }

  /**
   * Sends a planned command and checks its response. A command without HMAC
   * or policy sessions (`sessionSlots` undefined) has no nonces, cpHash or
   * response HMACs: it is encoded in one pass, and only the passwords' empty
   * acknowledgements are checked. `release`, when given, is called once the
   * command has settled in every way (the clean-up it queued, if any, comes next).
   */
  async #runPlanned<C extends AnyCommand>(
    cmd: C,
    handleArgs: readonly Handle[],
    handleValues: Record<string, number>,
    params: CommandParams<C>,
    slots: readonly Slot[],
    sessionSlots: readonly SessionSlot[] | undefined,
    options: SendOptions,
    release: (() => void) | undefined,
  ): Promise<TpmRunResult<C>> {
    try {
      let area: SessionArea | undefined;
      let bytes: Uint8Array;
      if (sessionSlots === undefined) {
        bytes = encodeCommand(cmd, handleValues as CommandHandles<C>, params, passwordFrame(slots as readonly PasswordSlot[]));
      } else {
        area = this.#sessionArea(cmd, handleArgs, params, slots, sessionSlots);
        bytes = frameCommand(cmd, handleValues as CommandHandles<C>, area.paramBytes, { sessions: area.auths });
      }
      notAborted(options);
      const sentAt = performance.now();
      let response: Uint8Array;
      try {
        response = await this.#send(bytes, options);
      } catch (e) {
        this.#lost(e, bytes);
        throw e;
      }
      if (!isSuccessResponse(response)) response = await this.#retried(bytes, options, sentAt, response);

      let split: SplitResponse;
      try {
        split = splitResponse(cmd, response, slots.length);
      } catch (e) {
        // A TPM error: nothing changed on the TPM's side for the sessions (no new nonce, no flush).
        if (e instanceof TpmError) throw e;
        // An unreadable response: the TPM may have rolled the nonces or created an object.
        await this.#abandon(sessionSlots ?? NO_SESSION_SLOTS, cmd, response);
        throw e;
      }

      // rpHash once per hash: the response HMACs and an audit session's digest both use it.
      const rpHashFor = area === undefined ? NO_RP_HASH : memoPerHash((alg) => computeRpHash(alg, cmd.code, split.paramBytes));
      try {
        this.#verify(cmd, slots, split, params, rpHashFor);
      } catch (e) {
        await this.#abandon(sessionSlots ?? NO_SESSION_SLOTS, cmd, response);
        throw e;
      }

      // The response verified: adopt the new nonces and session state.
      if (sessionSlots !== undefined) this.#adopt(sessionSlots, split, area!.cpHashFor, rpHashFor);

      let decoded: ResponseParams<C>;
      try {
        let responseParams = split.paramBytes;
        const enc = sessionSlots?.find((s) => s.attributes.encrypt);
        if (enc !== undefined) {
          responseParams = decryptResponseParameter(
            {
              hashAlg: enc.session.hashAlg,
              symmetric: enc.session.symmetric,
              key: sessionHmacKey(enc.state.sessionKey, enc.entity === undefined ? undefined : this.#responseAuthValue(cmd, enc, params)),
              nonceCaller: enc.nonceCaller,
              nonceTPM: enc.state.nonceTPM,
            },
            responseParams,
          );
        }
        decoded = decodeResponseParams(cmd, responseParams);
      } catch (e) {
        // The TPM did its work (and the sessions verified), but the caller cannot use the result: drop what it created.
        await this.#flushQuietly(createdHandles(split.handleValues));
        throw e;
      }
      this.#afterSuccess(cmd, handleValues, params, split.handleValues);
      return { handles: responseHandles(cmd, split.handleValues) as ResponseHandles<C>, params: decoded };
    } finally {
      release?.();
    }
  }

  /**
   * The parameters as sent and the authorization area of a command with HMAC
   * or policy sessions: fresh nonceCallers, the first parameter encrypted,
   * command HMACs over cpHash.
   */
  #sessionArea(cmd: AnyCommand, handleArgs: readonly Handle[], params: unknown, slots: readonly Slot[], sessionSlots: readonly SessionSlot[]): SessionArea {
    let paramBytes = encodeParams(cmd, params as never);

    // Names enter cpHash only, which only HMAC and policy sessions need.
    const names = cmd.handleNames.map((n, i) => nameOf(handleArgs[i]!, `handle ${n}`));

    for (const s of sessionSlots) s.nonceCaller = this.#random(s.state.nonceTPM.length);

    // Parameter encryption happens before cpHash: cpHash covers the parameters as sent (Part 1 §18.7).
    const dec = sessionSlots.find((s) => s.attributes.decrypt);
    if (dec !== undefined) {
      paramBytes = encryptCommandParameter(
        {
          hashAlg: dec.session.hashAlg,
          symmetric: dec.session.symmetric,
          key: sessionHmacKey(dec.state.sessionKey, dec.entity?.authValue),
          nonceCaller: dec.nonceCaller,
          nonceTPM: dec.state.nonceTPM,
        },
        paramBytes,
      );
    }
    const sentParams = paramBytes;
    const cpHashFor = memoPerHash((alg) => computeCpHash(alg, cmd.code, names, sentParams));

    const roles: SessionRole[] = slots.map((s) =>
      s.kind === 'password'
        ? { authorizes: true, password: true, decrypt: false, encrypt: false, nonceTPM: EMPTY }
        : { authorizes: s.entity !== undefined, password: false, decrypt: s.attributes.decrypt, encrypt: s.attributes.encrypt, nonceTPM: s.state.nonceTPM },
    );

    const auths: TPMS_AUTH_COMMAND[] = slots.map((s, i) => {
      if (s.kind === 'password') {
        return { sessionHandle: TPM_RS_PW, nonce: EMPTY, sessionAttributes: PASSWORD_ATTRIBUTES, hmac: s.authValue };
      }
      const attributes = TPMA_SESSION.of(s.attributes);
      if (s.entity !== undefined && s.session.type === 'policy' && s.state.policyPassword) {
        // PolicyPassword: the authValue goes in clear in the HMAC field (Part 3 §23.18).
        return { sessionHandle: s.session.handle, nonce: s.nonceCaller, sessionAttributes: attributes, hmac: s.entity.authValue };
      }
      const hmac = commandHmac({
        hashAlg: s.session.hashAlg,
        key: sessionHmacKey(s.state.sessionKey, this.#includedAuth(s)),
        cpHash: cpHashFor(s.session.hashAlg),
        nonceCaller: s.nonceCaller,
        nonceTPM: s.state.nonceTPM,
        ...extraNonces(roles, i),
        attributes: TPMA_SESSION.toWord(attributes),
      });
      return { sessionHandle: s.session.handle, nonce: s.nonceCaller, sessionAttributes: attributes, hmac };
    });
    return { paramBytes, auths, cpHashFor };
  }

  /** After a verified response: the sessions' new nonces, audit digests, and closed or reset sessions. */
  #adopt(sessionSlots: readonly SessionSlot[], split: SplitResponse, cpHashFor: (alg: number) => Uint8Array, rpHashFor: (alg: number) => Uint8Array): void {
    for (const s of sessionSlots) {
      const r = split.sessions[s.index]!;
      s.state.nonceTPM = r.nonce.slice();
      s.state.nonceCaller = s.nonceCaller;
      if (s.attributes.audit) {
        // First audited use or auditReset starts the digest at zeros and unbinds the session (reference InitAuditSession).
        if (s.state.auditDigest === undefined || s.attributes.auditReset) {
          s.state.auditDigest = new Uint8Array(digestSize(s.session.hashAlg));
          s.state.bind = undefined;
        }
        s.state.auditDigest = extendAuditDigest(s.session.hashAlg, s.state.auditDigest, cpHashFor(s.session.hashAlg), rpHashFor(s.session.hashAlg));
      }
      if (!s.attributes.continueSession) this.#closed(s.session, 'closed');
      // A policy session's data resets when its nonce rolls (reference UpdateInternalSession).
      else if (s.session.type === 'policy') s.state.policyAuthValue = s.state.policyPassword = false;
    }
  }

  /**
   * Sends one command, the first attempt only: a response that is not a
   * success goes on to #retryWarning. A failure of the transport after the
   * command may have left the client is a lost response: callers hand it to #lost.
   */
  #send(bytes: Uint8Array, options: SendOptions): Promise<Uint8Array> {
    const r = this.#retry;
    if (r === undefined) return this.transport.send(bytes, options);
    // The Tpm sends one command at a time, so a retrying transport needs no queue of its own for it
    // (RetryTransport.sendSerialized, in two halves: no promise of its own around a command that succeeds).
    if (r.closed) return Promise.reject(closedError('retrying transport'));
    return r.inner.send(bytes, options);
  }

  /**
   * A first response other than success, sent at `sentAt`: a warning is
   * retried when the transport retries (a failure then is a lost response too).
   */
  async #retried(bytes: Uint8Array, options: SendOptions, sentAt: number, first: Uint8Array): Promise<Uint8Array> {
    const r = this.#retry;
    if (r === undefined) return first;
    try {
      return await r.retryWarning(bytes, options, sentAt, first);
    } catch (e) {
      this.#lost(e, bytes);
      throw e;
    }
  }

  /** A raw command through `channel`: sent in turn, with the same lost-response handling and handle tracking as run(). */
  async #channelSend(command: Uint8Array, options: SendOptions): Promise<Uint8Array> {
    if (this.#pending !== undefined) options = await this.#settle(options);
    const code = command.length >= 10 ? getU32(command, 6) : 0;
    notAborted(options);
    const sentAt = performance.now();
    let response: Uint8Array;
    try {
      response = await this.#send(command, options);
    } catch (e) {
      this.#lost(e, command);
      throw e;
    }
    if (!isSuccessResponse(response)) response = await this.#retried(command, options, sentAt, response);
    if (response.length >= 10 && getU32(response, 6) === 0 && tracksHandles(code)) this.#trackRaw(command, response);
    return response;
  }

  /** Resolves and checks the authorization area before anything is sent. */
  #plan(cmd: AnyCommand, handleArgs: readonly Handle[], given: readonly (Authorization | undefined)[]): readonly Slot[] {
    if (!Array.isArray(given)) throw invalid('options.sessions must be an array');
    const count = Math.max(cmd.authCount, given.length);
    if (count === 0) return NO_SLOTS;
    if (count > 3) throw invalid(`${count} sessions; a command carries at most 3 (Part 1 §18.6)`);
    const authIdx = authIndices(cmd);
    const slots: Slot[] = [];
    let seen: Set<AuthSession> | undefined;
    let decrypts = 0;
    let encrypts = 0;
    let audits = 0;
    for (let i = 0; i < count; i++) {
      const a = given[i];
      const authorizes = i < authIdx.length;
      const target = authorizes ? handleArgs[authIdx[i]!]! : undefined;
      // A session or password given as itself means its default use (continueSession only), as `x.use()` would give.
      let session: PasswordSession | AuthSession | undefined;
      let at: Required<SessionUse['attributes']> | undefined;
      if (a === undefined) {
        session = undefined;
      } else if (a instanceof PasswordSession) {
        session = a;
      } else if (a instanceof AuthSession) {
        session = a;
        at = DEFAULT_USE;
      } else if (typeof a === 'object' && a !== null && (a.session instanceof PasswordSession || a.session instanceof AuthSession)) {
        session = a.session;
        at = a.attributes;
      } else {
        throw invalid(`sessions[${i}] is not a password, a session or session.use(…)`, i);
      }
      if (session === undefined || session instanceof PasswordSession) {
        if (!authorizes) throw invalid(`sessions[${i}]: ${cmd.name} has ${cmd.authCount} authorization(s); an extra session must be an HMAC session that decrypts, encrypts or audits`, i);
        if (at && (at.decrypt || at.encrypt || at.audit || at.auditExclusive || at.auditReset)) {
          throw invalid(`sessions[${i}]: a password session cannot decrypt, encrypt or audit (Part 1 §19.8.4)`, i);
        }
        if (at && !at.continueSession) throw invalid(`sessions[${i}]: a password session always continues`, i);
        slots.push({ kind: 'password', index: i, authValue: session?.authValue ?? authValueOf(target!) });
        continue;
      }
      at ??= DEFAULT_USE;
      const state = sessionState(session);
      if (state.owner !== this) throw invalid(`sessions[${i}]: session ${hex(session.handle)} belongs to another Tpm`, i);
      if (state.status !== 'open') throw new SessionError('session.closed', `sessions[${i}]: session ${hex(session.handle)} is ${state.status}`, { sessionIndex: i });
      seen ??= new Set<AuthSession>();
      if (seen.has(session)) throw invalid(`sessions[${i}]: session ${hex(session.handle)} appears twice`, i);
      seen.add(session);
      if (session.type === 'trial') throw invalid(`sessions[${i}]: a trial session only computes a policy digest; it cannot authorize, encrypt or audit`, i);
      if (!authorizes && !at.decrypt && !at.encrypt && !at.audit) throw invalid(`sessions[${i}]: an extra session must decrypt, encrypt or audit`, i);
      if (at.decrypt) {
        if (!cmd.commandEncryptable) throw invalid(`sessions[${i}]: decrypt, but the first parameter of ${cmd.name} is not a TPM2B`, i);
        if (++decrypts > 1) throw invalid(`sessions[${i}]: only one session may decrypt`, i);
        if (!session.canEncrypt) throw invalid(`sessions[${i}]: decrypt, but the session was started without a symmetric algorithm`, i);
      }
      if (at.encrypt) {
        if (!cmd.responseEncryptable) throw invalid(`sessions[${i}]: encrypt, but the response of ${cmd.name} has no TPM2B first parameter`, i);
        if (++encrypts > 1) throw invalid(`sessions[${i}]: only one session may encrypt`, i);
        if (!session.canEncrypt) throw invalid(`sessions[${i}]: encrypt, but the session was started without a symmetric algorithm`, i);
      }
      if (at.audit) {
        if (session.type !== 'hmac') throw invalid(`sessions[${i}]: only an HMAC session can audit`, i);
        if (++audits > 1) throw invalid(`sessions[${i}]: only one session may audit`, i);
      }
      const entity = target === undefined ? undefined : { name: nameOf(target, `handle ${cmd.handleNames[authIdx[i]!]!}`), authValue: authValueOf(target) };
      slots.push({ kind: 'session', index: i, session, state, attributes: at, entity, nonceCaller: EMPTY });
    }
    return slots;
  }

  /** The authValue in a session's HMAC key, or undefined when it stays out (Part 1 §19.6.10–11; reference CheckAuthSession). */
  #includedAuth(s: Extract<Slot, { kind: 'session' }>, authValue = s.entity?.authValue): Uint8Array | undefined {
    if (s.entity === undefined || authValue === undefined) return undefined;
    if (s.session.type === 'policy') return s.state.policyAuthValue || s.state.policyPassword ? authValue : undefined;
    if (s.state.bind !== undefined && isBindEntity(s.state.bind, s.entity)) return undefined;
    return authValue;
  }

  /**
   * The authValue of the authorized entity when the TPM builds the response:
   * the new one after HierarchyChangeAuth and NV_ChangeAuth, none after
   * NV_UndefineSpaceSpecial deleted the index (reference ComputeResponseHMAC).
   */
  #responseAuthValue(cmd: AnyCommand, s: Extract<Slot, { kind: 'session' }>, params: unknown): Uint8Array | undefined {
    if (s.entity === undefined) return undefined;
    if (s.index === 0 && (cmd.code === HierarchyChangeAuth.code || cmd.code === NV_ChangeAuth.code)) return (params as { newAuth: Uint8Array }).newAuth;
    if (s.index === 0 && cmd.code === NV_UndefineSpaceSpecial.code) return EMPTY;
    return s.entity.authValue;
  }

  /** Checks every response authorization; throws SessionError `session.hmac` on the first that fails. */
  #verify(cmd: AnyCommand, slots: readonly Slot[], split: SplitResponse, params: unknown, rpHashFor: (alg: number) => Uint8Array): void {
    for (let i = 0; i < slots.length; i++) {
      const s = slots[i]!;
      const r: TPMS_AUTH_RESPONSE = split.sessions[i]!;
      if (s.kind === 'password') {
        // Part 1 §19.8.4: a password's response carries no nonce and no HMAC.
        if (r.nonce.length !== 0 || r.hmac.length !== 0 || !r.sessionAttributes.continueSession) {
          throw new SessionError('session.hmac', `session ${i}: the password authorization's response is not empty`, { sessionIndex: i });
        }
        continue;
      }
      if (r.nonce.length !== s.state.nonceTPM.length) {
        throw new SessionError('session.hmac', `session ${i}: nonceTPM of ${r.nonce.length} bytes, expected ${s.state.nonceTPM.length}`, { sessionIndex: i });
      }
      const sent = s.attributes;
      const got = r.sessionAttributes;
      // The TPM echoes the attributes, except auditExclusive, which it reports (reference UpdateAuditSessionStatus).
      if (got.continueSession !== sent.continueSession || got.decrypt !== sent.decrypt || got.encrypt !== sent.encrypt || got.audit !== sent.audit) {
        throw new SessionError('session.hmac', `session ${i}: the response's session attributes differ from the command's`, { sessionIndex: i });
      }
      let expected: Uint8Array;
      if (s.entity !== undefined && s.session.type === 'policy' && s.state.policyPassword) {
        expected = EMPTY; // reference BuildSingleResponseAuth: no HMAC for a PolicyPassword session
      } else {
        const alg = s.session.hashAlg;
        expected = responseHmac({
          hashAlg: alg,
          key: sessionHmacKey(s.state.sessionKey, this.#includedAuth(s, this.#responseAuthValue(cmd, s, params))),
          rpHash: rpHashFor(alg),
          nonceTPM: r.nonce,
          nonceCaller: s.nonceCaller,
          attributes: TPMA_SESSION.toWord(got),
        });
      }
      if (!equalBytes(r.hmac, expected)) {
        throw new SessionError('session.hmac', `session ${i} (${hex(s.session.handle)}): the response HMAC does not verify`, { sessionIndex: i });
      }
    }
  }


  /**
   * After a response that cannot be trusted: the sessions' nonces are unknown,
   * so they are broken and flushed; anything the command created is flushed.
   */
  async #abandon(sessionSlots: readonly SessionSlot[], cmd: AnyCommand, response: Uint8Array): Promise<void> {
    const owed = this.#owed();
    for (const s of sessionSlots) {
      this.#closed(s.session, 'broken');
      owed.flush.set(s.session.handle, s.session);
    }
    // Handles read from an unverified response: never one this Tpm already holds (a lying TPM must not get the caller's key flushed).
    for (const h of createdHandlesFromRaw(cmd, response)) if (!this.#loaded.has(h) && !owed.flush.has(h)) owed.flush.set(h, undefined);
    await this.#recover(undefined);
  }

  /** Flushes handles best effort (errors swallowed; what the TPM cannot be reached for stays owed). */
  async #flushQuietly(handles: readonly number[]): Promise<void> {
    if (handles.length === 0) return;
    const owed = this.#owed();
    for (const h of handles) if (!owed.flush.has(h)) owed.flush.set(h, undefined);
    await this.#recover(undefined);
  }

  #closed(session: AuthSession, status: 'closed' | 'broken'): void {
    sessionState(session).status = status;
    // The handle may already be another session's, once a broken session was flushed.
    if (this.#sessions.get(session.handle) === session) {
      this.#sessions.delete(session.handle);
      this.#loaded.delete(session.handle);
    }
  }

  /** Bookkeeping after a successful command: sessions changed outside the authorization area, and loaded handles. */
  #afterSuccess(cmd: AnyCommand, handleValues: Readonly<Record<string, number>>, params: unknown, created: readonly number[]): void {
    this.#track(cmd.code, handleValues, params, created);
    if (cmd.code === FlushContext.code) {
      const h = (params as { flushHandle: number }).flushHandle;
      const s = this.#sessions.get(h);
      if (s !== undefined) this.#closed(s, 'closed');
      return;
    }
    const policy = handleValues['policySession'];
    if (policy === undefined) return;
    const s = this.#sessions.get(policy);
    if (s === undefined || s.type !== 'policy') return;
    const st = sessionState(s);
    if (cmd.code === PolicyAuthValue.code) st.policyAuthValue = true;
    else if (cmd.code === PolicyPassword.code) st.policyPassword = true;
    else if (cmd.code === PolicyRestart.code) st.policyAuthValue = st.policyPassword = false;
  }

  /** Keeps #loaded in step with a successful command (see #loaded for the Part 3 sections). */
  #track(code: number, handles: Readonly<Record<string, number>>, params: unknown, created: readonly number[]): void {
    for (const h of created) if (isTransient(h) || isSessionHandle(h)) this.#loaded.add(h);
    switch (code) {
      case FlushContext.code:
        this.#loaded.delete((params as { flushHandle: number }).flushHandle);
        break;
      case SequenceComplete.code:
      case EventSequenceComplete.code:
        this.#loaded.delete(handles['sequenceHandle']!);
        break;
      case ContextSave.code: {
        // A saved session is no longer loaded; a saved object still is (Part 3 §28.2).
        const h = handles['saveHandle']!;
        if (isSessionHandle(h)) this.#loaded.delete(h);
        break;
      }
      case Startup.code:
        this.#loaded.clear();
        break;
      default:
        // Objects of whole hierarchies went: look which of ours are left before the next command.
        if (FLUSHES_HIERARCHY.has(code) && this.#flushUnknown) this.#owed().list = true;
    }
  }

  /** #track for a raw command sent through `channel` (only for the commands #track cares about). */
  #trackRaw(command: Uint8Array, response: Uint8Array): void {
    const c = readCommand(command);
    if (c === undefined) return; // not a command the core can read: nothing to learn from it
    const n = c.cmd.responseHandleNames.length;
    const created: number[] = [];
    // The response handle area follows the 10-byte header (Part 1 §18.8).
    for (let i = 0; i < n && response.length >= 14 + 4 * i; i++) created.push(getU32(response, 10 + 4 * i));
    this.#track(c.cmd.code, c.handles, c.flushHandle === undefined ? undefined : { flushHandle: c.flushHandle }, created);
  }

  #owed(): Recovery {
    return (this.#pending ??= { flush: new Map(), list: false });
  }

  /**
   * A lost response: the transport failed after `command` may have reached the
   * TPM, which may then have run it. Every session the command used or named is
   * broken (its nonceTPM may have rolled) and owed a flush, as is whatever the
   * command flushes (it may still be there); a command that creates a handle
   * (or flushes hierarchies) makes the Tpm look at what is loaded. The
   * clean-up is queued behind this command, so it runs before any later one.
   */
  #lost(e: unknown, command: Uint8Array): void {
    if (this.#closing) return;
    if (e instanceof TransportError && NOT_SENT.has(e.code)) return;
    const before = this.#pending;
    const owed = this.#owed();
    const broken = (s: AuthSession): void => {
      this.#closed(s, 'broken');
      owed.flush.set(s.handle, s);
    };
    const c = readCommand(command);
    if (c === undefined) {
      owed.list = this.#flushUnknown; // a command the core cannot read (sent through channel): assume the worst
    } else {
      for (const h of Object.values(c.handles)) {
        const s = this.#sessions.get(h);
        if (s !== undefined) broken(s);
      }
      for (const h of c.sessions) {
        const s = this.#sessions.get(h);
        if (s !== undefined) broken(s);
      }
      const code = c.cmd.code;
      const gone = code === SequenceComplete.code || code === EventSequenceComplete.code ? c.handles['sequenceHandle'] : c.flushHandle;
      if (gone !== undefined) {
        const s = this.#sessions.get(gone);
        if (s !== undefined) broken(s);
        else {
          this.#loaded.delete(gone);
          if (!owed.flush.has(gone)) owed.flush.set(gone, undefined);
        }
      }
      if (c.cmd.responseHandleNames.length > 0 || FLUSHES_HIERARCHY.has(code)) owed.list = this.#flushUnknown;
    }
    if (owed.flush.size === 0 && !owed.list) {
      // Nothing this command can have left behind (a lost GetRandom, say).
      if (before === undefined) this.#pending = undefined;
      return;
    }
    if (!this.#recoveryQueued) {
      this.#recoveryQueued = true;
      this.#serialize(async () => {
        this.#recoveryQueued = false;
        await this.#recover(undefined);
      }).catch(() => undefined);
    }
  }

  /** Does the clean-up owed before a command, within the caller's timeout (what it takes is taken off the command's). */
  async #settle<O extends SendOptions>(options: O): Promise<O> {
    const start = performance.now();
    await this.#recover(options);
    const t = options.timeoutMs;
    return t === undefined || !Number.isFinite(t) ? options : { ...options, timeoutMs: Math.max(1, t - (performance.now() - start)) };
  }

  /**
   * The clean-up owed, best effort, within recovery.timeoutMs (and the
   * caller's timeout and signal): flush the handles owed; then, if asked and
   * flushUnknown is on, list the transient objects and loaded sessions
   * (TPM_CAP_HANDLES from TRANSIENT_FIRST and from LOADED_SESSION_FIRST,
   * which lists HMAC and policy sessions), forget known handles that are gone,
   * and flush the ones this Tpm does not know. Never throws: while the TPM
   * cannot be reached the work stays owed for the next command; an answer
   * that is not useful (a TPM error, a listing that does not parse) ends it.
   */
  async #recover(options: SendOptions | undefined): Promise<void> {
    const owed = this.#pending;
    if (owed === undefined || this.#closing) return;
    const end = performance.now() + Math.min(this.#recoveryMs, options?.timeoutMs ?? Infinity);
    const signal = options?.signal;
    const step = (): SendOptions => ({ timeoutMs: Math.max(1, end - performance.now()), ...(signal !== undefined ? { signal } : {}) });
    for (const [h, s] of [...owed.flush]) {
      if (!(await this.#flushHandle(h, step()))) return;
      owed.flush.delete(h);
      if (s !== undefined) this.#gone.add(s);
    }
    if (owed.list && this.#flushUnknown) {
      let listed: number[];
      try {
        listed = [
          ...(await readCapability(this.transport, TPM_CAP.HANDLES, [HANDLE_RANGE.TRANSIENT[0]], step())),
          ...(await readCapability(this.transport, TPM_CAP.HANDLES, [HANDLE_RANGE.HMAC_SESSION[0]], step())),
        ];
      } catch (e) {
        if (e instanceof TransportError) return;
        listed = [];
      }
      const present = new Set(listed);
      for (const h of this.#loaded) if (!present.has(h)) this.#loaded.delete(h);
      for (const h of listed) {
        if (this.#loaded.has(h) || !(isTransient(h) || isSessionHandle(h))) continue;
        if (!(await this.#flushHandle(h, step()))) return;
      }
    }
    owed.list = false;
    if (this.#pending === owed && owed.flush.size === 0) this.#pending = undefined;
  }

  /**
   * FlushContext (Part 3 §28.4) outside run(), for the clean-up. True when the
   * handle is gone: flushed, or the TPM answered with an error (it has no such
   * handle any more; nothing better to try). False when the TPM could not be reached.
   */
  async #flushHandle(h: number, options: SendOptions): Promise<boolean> {
    try {
      await runCommand(this.transport, FlushContext, {}, { flushHandle: h }, options);
    } catch (e) {
      if (e instanceof TransportError) return false;
    }
    this.#loaded.delete(h);
    return true;
  }

  /** Runs a command with no sessions, inside the serialized section. */
  async #exec<C extends AnyCommand>(cmd: C, handles: RunHandles<C>, params: CommandParams<C>, options: SendOptions = {}): Promise<TpmRunResult<C>> {
    return this.#run(cmd, handles, params, options);
  }

  /**
   * Starts an HMAC, policy or trial session (Part 3 §11.1). The session key
   * is computed here from the bind entity's authValue and the salt; neither
   * travels in clear.
   * @throws SessionError `session.invalid` for unusable options (before sending); TpmError; ParseError; TransportError.
   */
  startAuthSession(options: StartAuthSessionOptions = {}): Promise<AuthSession> {
    return this.#serialize(() => this.#startAuthSession(options));
  }

  async #startAuthSession(options: StartAuthSessionOptions): Promise<AuthSession> {
    const type = options.type ?? 'hmac';
    const sessionType = type === 'hmac' ? TPM_SE.HMAC : type === 'policy' ? TPM_SE.POLICY : type === 'trial' ? TPM_SE.TRIAL : undefined;
    if (sessionType === undefined) throw invalid(`session type ${String(type)}: expected 'hmac', 'policy' or 'trial'`);
    const hashAlg = options.hashAlg ?? TPM_ALG.SHA256;
    if (!isHashSupported(hashAlg)) throw invalid(`session hash 0x${Number(hashAlg).toString(16)} is not a hash this client can compute`);
    const size = digestSize(hashAlg);
    const nonceSize = options.nonceSize ?? size;
    // Part 3 §11.1: nonceCaller is 16 bytes up to the digest size (TPM_RC_SIZE otherwise).
    if (!Number.isInteger(nonceSize) || nonceSize < 16 || nonceSize > size) throw invalid(`nonceSize ${String(nonceSize)}: expected 16..${size}`);
    const symmetric = options.symmetric ?? AES_128_CFB;
    if (symmetric.algorithm !== TPM_ALG.NULL && symmetric.algorithm !== TPM_ALG.XOR && (!('mode' in symmetric) || symmetric.mode !== TPM_ALG.CFB)) {
      throw invalid('a session cipher must use CFB mode (Part 3 §11.1, TPM_RC_MODE)');
    }

    let bind: { name: Uint8Array; authValue: Uint8Array } | undefined;
    if (options.bind !== undefined) bind = { name: nameOf(options.bind, 'bind'), authValue: authValueOf(options.bind) };

    let salt: Uint8Array = EMPTY;
    let encryptedSalt: Uint8Array = EMPTY;
    let tpmKey: number = TPM_RH.NULL;
    if (options.salt !== undefined) {
      tpmKey = handleValue(options.salt.key, 'salt.key');
      const { key, public: pub } = options.salt;
      if (typeof key !== 'number') {
        const expected = objectName(pub);
        if (!equalBytes(expected, key.name)) throw invalid('salt: the key\'s Name does not match the public area given');
      }
      let secret: { seed: Uint8Array; encryptedSecret: Uint8Array };
      try {
        secret = encryptSalt(pub);
      } catch (e) {
        throw new SessionError('session.invalid', `salt: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      }
      salt = secret.seed;
      encryptedSalt = secret.encryptedSecret;
    }

    const nonceCaller = this.#random(nonceSize);
    const bindHandle = options.bind === undefined ? TPM_RH.NULL : handleValue(options.bind, 'bind');
    const r = await this.#run(
      StartAuthSession,
      { tpmKey, bind: bindHandle },
      { nonceCaller, encryptedSalt, sessionType, symmetric, authHash: hashAlg },
      sendOptionsOf(options),
    );
    const handle = r.handles.sessionHandle;
    const nonceTPM = r.params.nonceTPM;
    if (!isSessionHandle(handle) || nonceTPM.length !== nonceSize) {
      await this.#flushQuietly([handle]);
      throw new ParseError('parse.value', `StartAuthSession returned handle ${hex(handle)} with a ${nonceTPM.length}-byte nonce (sent ${nonceSize})`, 'StartAuthSession.response', 0);
    }
    const key = computeSessionKey({ hashAlg, bindAuthValue: bind?.authValue, salt, nonceTPM, nonceCaller });
    let session!: AuthSession;
    const state: SessionState = {
      owner: this,
      nonceTPM: nonceTPM.slice(),
      nonceCaller,
      sessionKey: key,
      // Only an HMAC session counts as bound for the HMAC key; a policy session's bind only feeds the session key (reference SessionCreate).
      bind: type === 'hmac' ? bind : undefined,
      status: 'open',
      auditDigest: undefined,
      policyAuthValue: false,
      policyPassword: false,
      flush: () => this.flush(session),
    };
    session = new AuthSession({ handle, type, hashAlg, symmetric, salted: options.salt !== undefined, bound: bind !== undefined }, state);
    this.#sessions.set(handle, session);
    return session;
  }


  /**
   * Flushes a transient object or a session (FlushContext, Part 3 §28.4). A
   * session already closed, or broken and already flushed by the Tpm, is not
   * sent again; a session the TPM no longer has counts as flushed.
   */
  flush(resource: Flushable): Promise<void> {
    return this.#serialize(async () => {
      if (this.#pending !== undefined) await this.#recover(undefined);
      if (resource instanceof AuthSession) {
        const st = sessionState(resource);
        if (st.owner !== this) throw invalid(`session ${hex(resource.handle)} belongs to another Tpm`);
        if (st.status === 'closed') return;
        if (this.#gone.has(resource)) {
          // Flushed by the clean-up: its handle may belong to a newer session now.
          st.status = 'closed';
          return;
        }
        try {
          await this.#exec(FlushContext, {}, { flushHandle: resource.handle });
        } catch (e) {
          // A broken session may already be gone.
          if (!(st.status === 'broken' && e instanceof TpmError)) throw e;
        }
        this.#closed(resource, 'closed');
        return;
      }
      const h = handleValue(resource, 'flush');
      if (!isTransient(h) && !isSessionHandle(h)) {
        throw invalid(`flush: ${hex(h)} is not a transient object or a session (persistent objects are removed with EvictControl)`);
      }
      await this.#exec(FlushContext, {}, { flushHandle: h });
    });
  }

  /**
   * Runs `fn` with a resource and flushes it afterwards, also when `fn`
   * throws: `await tpm.using(load(…), (key) => sign(key))`. When `resource` is a
   * promise that rejects, there is nothing to flush and the rejection passes through.
   */
  async using<T extends Flushable, R>(resource: T | Promise<T>, fn: (resource: T) => Promise<R> | R): Promise<R> {
    const r = await resource;
    try {
      return await fn(r);
    } finally {
      await this.#flushAfterUse(r);
    }
  }

  /**
   * Wraps a transient object or session for `await using`:
   * `await using key = tpm.disposable(handle)` flushes it when the block ends, also on errors.
   */
  disposable<T extends Flushable>(resource: T): { readonly resource: T; [Symbol.asyncDispose](): Promise<void> } {
    return { resource, [Symbol.asyncDispose]: () => this.#flushAfterUse(resource) };
  }

  /** Starts a session, runs `fn` with it, and flushes it afterwards (unless `fn` closed it). */
  withSession<R>(options: StartAuthSessionOptions, fn: (session: AuthSession) => Promise<R> | R): Promise<R> {
    return this.using(this.startAuthSession(options), fn);
  }

  /**
   * Runs `fn` with a scope that collects transient objects and sessions; all
   * of them are flushed when `fn` settles, last registered first.
   */
  async scope<R>(fn: (scope: FlushScope) => Promise<R> | R): Promise<R> {
    const held: Flushable[] = [];
    const scope: FlushScope = {
      defer: (resource) => {
        held.push(resource);
        return resource;
      },
    };
    try {
      return await fn(scope);
    } finally {
      const errors: unknown[] = [];
      for (const r of held.reverse()) {
        try {
          await this.#flushAfterUse(r);
        } catch (e) {
          errors.push(e);
        }
      }
      // A failure of fn takes precedence (the finally block rethrows it); otherwise report the first flush failure.
      if (errors.length > 0) throw errors[0];
    }
  }

  async #flushAfterUse(r: Flushable): Promise<void> {
    if (r instanceof AuthSession && sessionState(r).status === 'closed') return;
    await this.flush(r);
  }
}



/** Transient objects and sessions a successful command created, from its response handles. */
function createdHandles(values: readonly number[]): number[] {
  return values.filter((h) => (h >= HANDLE_RANGE.TRANSIENT[0] && h <= HANDLE_RANGE.TRANSIENT[1]) || isSessionHandle(h));
}

/** The same from a response that failed to parse: read the handle area directly when the header says success. */
function createdHandlesFromRaw(cmd: AnyCommand, response: Uint8Array): number[] {
  const n = cmd.responseHandleNames.length;
  if (n === 0 || response.length < 10 + 4 * n) return [];
  const view = new DataView(response.buffer, response.byteOffset, response.byteLength);
  if (view.getUint32(6) !== 0) return [];
  const values: number[] = [];
  for (let i = 0; i < n; i++) values.push(view.getUint32(10 + 4 * i));
  return createdHandles(values);
}

/** The default use of a session passed as itself: continueSession only (as `session.use()`). Shared, never changed. */
const DEFAULT_USE: Required<SessionUse['attributes']> = Object.freeze({
  continueSession: true,
  decrypt: false,
  encrypt: false,
  audit: false,
  auditExclusive: false,
  auditReset: false,
});

/**
 * What the bookkeeping needs from a raw command: its handles by name, the
 * sessions in its authorization area, and for FlushContext the handle it
 * flushes. Only the frame is read, never the other parameters, which a
 * decrypt session may have encrypted. Undefined when the core cannot read it.
 */
function readCommand(command: Uint8Array): { cmd: AnyCommand; handles: Record<string, number>; sessions: number[]; flushHandle: number | undefined } | undefined {
  try {
    const split = splitCommand(command);
    const cmd = split.command;
    const handles: Record<string, number> = {};
    cmd.handleNames.forEach((n, i) => (handles[n] = split.handleValues[i]!));
    const flushHandle = cmd.code === FlushContext.code ? decodeParams(FlushContext, split.paramBytes).flushHandle : undefined;
    return { cmd, handles, sessions: split.sessions.map((a) => a.sessionHandle), flushHandle };
  } catch {
    return undefined;
  }
}

/** Refuses a command whose caller has given up already: here rather than in the transport, so it is known that nothing was sent. */
function notAborted(options: SendOptions): void {
  const signal = options.signal;
  if (signal !== undefined && signal.aborted) throw abortError(signal.reason);
}

/** Response handles by name. */
function responseHandles(cmd: AnyCommand, values: readonly number[]): Record<string, number> {
  const out: Record<string, number> = {};
  const names = cmd.responseHandleNames;
  for (let i = 0; i < names.length; i++) out[names[i]!] = values[i]!;
  return out;
}

/** Commands whose success changes what is loaded: every command with a response handle, and those #track handles. */
const TRACKED: ReadonlySet<number> = new Set([
  ...ALL_COMMANDS.filter((c) => c.responseHandleNames.length > 0).map((c) => c.code),
  FlushContext.code,
  SequenceComplete.code,
  EventSequenceComplete.code,
  ContextSave.code,
  Startup.code,
  ...FLUSHES_HIERARCHY,
]);

function tracksHandles(code: number): boolean {
  return TRACKED.has(code);
}
