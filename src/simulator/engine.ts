/**
 * TpmEngine: one software TPM. `execute` takes command bytes and always
 * returns response bytes, following Part 3 §5 "Command Processing": header
 * (§5.2), command code, handle area (§5.3), authorization area (§5.4),
 * parameters (§5.5), then the command's handler and the response (§5.6–5.7).
 * Everything lives on the instance: `state` (what survives a restart, see
 * state.ts) and `volatile` (what a power cycle loses).
 */
import { timingSafeEqual } from 'node:crypto';
import type { AnyCommand, AuthRole } from '../tpm/command.js';
import { HANDLE_RANGE, TPM_ALG, TPM_CC, TPM_HT, TPM_RH, TPM_RS_PW, TPM_ST } from '../tpm/constants.js';
import { cpHash as computeCpHash, rpHash as computeRpHash } from '../tpm/cphash.js';
import { digestSize } from '../tpm/crypto/hash.js';
import { ParseError, TrustrootError } from '../tpm/errors.js';
import { decodeHandles, decodeParams, draftResponse, encodeErrorResponse, splitCommand, type AuthResponse, type ResponseDraft } from '../tpm/frame.js';
import { handleName, nvName } from '../tpm/names.js';
import { TPM_RC, TpmError, rcForHandle, rcForParameter, rcForSession, TPM_RC_S, TPM_RC_N_SHIFT } from '../tpm/rc.js';
import {
  commandHmac,
  decryptCommandParameter,
  encryptResponseParameter,
  extendAuditDigest,
  extraNonces,
  isBindEntity,
  responseHmac,
  sessionHmacKey,
  type SessionRole,
} from '../tpm/session-crypto.js';
import { equalBytes } from '../tpm/bytes.js';
import { TPMA_NV, TPMA_SESSION, TPML_PCR_SELECTION, TPMI_REFUSAL_RC, type TPMA_OBJECT, type TPMS_AUTH_COMMAND, type TPMS_PCR_SELECTION } from '../tpm/types/index.js';
import { IMPLEMENTED_HANDLERS } from './handlers/index.js';
import type { CommandHandler, HandlerContext, HandlerResult } from './handlers/handler.js';
import { countPinUse, nvAuthPolicyAvailable, nvAuthValueAvailable, nvPublicOf } from './handlers/nv.js';
import { findObject } from './handlers/object.js';
import { checkPolicySession } from './policy-check.js';
import { isImplementedHash, type SequenceObject } from './sequences.js';
import { PCR_COUNT, createSimulatorState, pcrAuthPolicyOf, pcrAuthValueGroup, pooledRandomSource, type NvIndexState, type RandomSource, type SimulatorState } from './state.js';
import { startupValue } from './pcr-rules.js';
import { ObjectTable } from './objects.js';
import { SessionTable, emptyPolicyAssertions, type SessionState } from './sessions.js';
import { provisionEkCertificates, type ManufactureOptions } from './manufacture.js';
import { FaultInjector, type FaultOptions } from './faults.js';
import { adjustTickRate, newTickTimer, readTickTimer, type TickTimer } from './timer.js';
import { profileParamsRc } from './algorithms.js';
import { profileForState, type TpmProfile, type TpmProfileName } from './profiles.js';

/** The package version; TPM_PT_FIRMWARE_VERSION_1/2 report it (design.md "Identity"). */
export const FIRMWARE_VERSION = { major: 0, minor: 1, patch: 0 } as const;

export interface TpmEngineOptions {
  /** State to resume from (a store's load); a freshly manufactured TPM when omitted. */
  readonly state?: SimulatorState;
  /**
   * Secret bytes for seeds, proofs, nonces, keys and GetRandom; node:crypto when omitted.
   * INSECURE when given a deterministic source: every secret of the TPM follows from it.
   * For tests and fleet simulations that must replay (fuzz/simulator.ts, test/simulator/fleet.test.ts), never otherwise.
   */
  readonly random?: RandomSource;
  /**
   * Milliseconds, monotonic; drives Clock, Time, dictionary-attack recovery and policy
   * expirations (Part 1 §36). Defaults to performance.now(). A test clock lets a test
   * move time at will — and so would let anyone expire or revive tickets: tests only.
   */
  readonly now?: () => number;
  /**
   * Makes `state` durable (a store's save). Awaited before the response of a
   * command whose handler changed persistent state (HandlerContext.persistentChanged).
   */
  readonly persist?: (state: SimulatorState) => Promise<void>;
  /**
   * The installation's EK certificate CA (manufacture.ts). A TPM not yet
   * provisioned gets its EK certificate indices when an engine with a CA
   * opens it (the caller saves the state afterwards); without one, none.
   */
  readonly manufacture?: ManufactureOptions;
  /**
   * TEST ONLY: injected faults (faults.ts) — RETRY/YIELDED, exhausted object or
   * session memory, failure mode, padded EK certificates — for tests of clients
   * and verifiers. Never set for a TPM anyone relies on.
   */
  readonly faults?: FaultOptions;
  /**
   * The limits and algorithm set (profiles.ts): a built-in profile's name or a
   * profile of one's own; `libtpms` when omitted. A new TPM records it in its
   * state; a stored TPM runs under the one it was manufactured with, and an
   * option naming another is a ProfileError (profile.mismatch).
   */
  readonly profile?: TpmProfileName | TpmProfile;
}

/** What a power cycle loses (_TPM_Init, Part 1 §36.4). */
export interface VolatileState {
  started: boolean;
  /** now() at _TPM_Init: Time counts from here. */
  initAt: number;
  /** The tick timer (timer.ts): TPM milliseconds since _TPM_Init at the rate ClockRateAdjust set. */
  timer: TickTimer;
  /** The timer's value when state.clock.clock was last brought up to date. */
  clockSyncedAt: number;
  /** Per allocated bank, 24 PCR values. */
  pcrs: Map<number, Uint8Array[]>;
  pcrUpdateCounter: number;
  phEnable: boolean;
  shEnable: boolean;
  ehEnable: boolean;
  /** Loaded transient objects (objects.ts). */
  objects: ObjectTable;
  /** Loaded and saved authorization sessions (sessions.ts). */
  sessions: SessionTable;
  /** The timer's value at the last dictionary-attack failure or self-healing step (the reference's s_selfHealTimer; negative for time carried over from before power-on). */
  daSelfHealAt: number;
  /** The timer's value at the last lockoutAuth failure (the reference's s_lockoutTimer). */
  daLockoutAt: number;
  /**
   * The exclusive audit session (Part 1 §19.6.14, the reference's g_exclusiveAuditSession):
   * the session whose audit began or was reset last, while no command ran outside it.
   */
  exclusiveAuditSession: number | undefined;
}

/**
 * What authorizes one entity (Part 1 §19.7): its Name, authValue, authPolicy
 * and the attributes that decide who may use which.
 */
export interface AuthEntity {
  readonly handle: number;
  readonly name: Uint8Array;
  readonly authValue: Uint8Array;
  /** Empty when the entity has no policy. */
  readonly authPolicy: Uint8Array;
  /** Exempt from dictionary-attack protection (the reference's IsDAExempted). */
  readonly daExempt: boolean;
  /** An object's attributes (userWithAuth, adminWithPolicy); undefined for other entities. */
  readonly objectAttributes: TPMA_OBJECT | undefined;
}

/** One session of a command's authorization area, as the engine checked it. */
interface SessionUse {
  readonly index: number;
  readonly auth: TPMS_AUTH_COMMAND;
  /** undefined for a password (TPM_RS_PW). */
  readonly session: SessionState | undefined;
  /** The sessionAttributes word for the command HMAC; 0 for a password, which has none. */
  readonly attributes: number;
  /** The handle this session authorizes, or undefined for an extra (encrypt/decrypt/audit) session. */
  entity: number | undefined;
  role: AuthRole | undefined;
  /** The entity's authValue joins HMAC keys (the reference's includeAuth). */
  includeAuth: boolean;
  /** A password, or a policy session after PolicyPassword: the hmac field carries the authValue. */
  passwordNeeded: boolean;
}

/** The checked authorization area of a command. */
interface Authorization {
  readonly uses: readonly SessionUse[];
  readonly decryptIndex: number;
  readonly encryptIndex: number;
  readonly auditIndex: number;
  /** The parameter area after decryption. */
  readonly paramBytes: Uint8Array;
  /** cpHash of the command as received, per hash algorithm. */
  readonly cpHash: CpHashes;
}

const EMPTY = new Uint8Array(0);
const CONTINUE_ONLY = TPMA_SESSION.of({ continueSession: true });
/** Part 1 §19.8.4: a password's acknowledgement is empty, continueSession always SET (the same for every password). */
const PASSWORD_ACK: AuthResponse = Object.freeze({ nonce: EMPTY, sessionAttributes: CONTINUE_ONLY, hmac: EMPTY });
const NO_USES: readonly SessionUse[] = Object.freeze([]);
const NO_SESSION_COMMANDS: ReadonlySet<number> = new Set([TPM_CC.Startup, TPM_CC.ContextLoad, TPM_CC.ContextSave, TPM_CC.FlushContext]);

const HEADER_SIZE = 10;

export class TpmEngine {
  /** Everything that survives a restart; a store serializes this object. */
  readonly state: SimulatorState;
  readonly volatile: VolatileState;
  readonly random: RandomSource;
  readonly now: () => number;
  /** The manufacture option (the EK certificate CA), for certificates made on first read. */
  readonly manufacture: ManufactureOptions | undefined;
  /** Injected faults (TEST ONLY, faults.ts); inert unless the faults option or a test sets some. */
  readonly faults: FaultInjector;
  /** The limits this TPM reports and enforces and the algorithms it implements (profiles.ts). */
  readonly profile: TpmProfile;
  private readonly persist: ((state: SimulatorState) => Promise<void>) | undefined;
  private readonly handlers: ReadonlyMap<number, CommandHandler>;
  /** Set when an authorization failure, self-healing or a PIN index's count changed the state (persisted before answering). */
  private daChanged = false;
  /** splitCommand's lookup, made once (not a closure per command). */
  private readonly commandOf = (code: number): AnyCommand | undefined => this.handlers.get(code)?.command;

  constructor(options: TpmEngineOptions = {}) {
    this.random = options.random ?? pooledRandomSource();
    this.now = options.now ?? (() => performance.now());
    this.profile = profileForState(options.profile, options.state?.profile);
    this.state = options.state ?? createSimulatorState(this.random, this.profile);
    this.persist = options.persist;
    this.manufacture = options.manufacture;
    this.faults = new FaultInjector(options.faults);
    // tpmVersion of the EK certificates: TPM_PT_FIRMWARE_VERSION_1 (capability.ts).
    if (options.manufacture !== undefined) provisionEkCertificates(this.state, (FIRMWARE_VERSION.major << 16) | FIRMWARE_VERSION.minor);
    this.handlers = new Map(IMPLEMENTED_HANDLERS.map((h) => [h.command.code, h]));
    const t = this.now();
    this.volatile = { started: false, initAt: t, timer: newTickTimer(t), clockSyncedAt: 0, pcrs: new Map(), pcrUpdateCounter: 0, phEnable: true, shEnable: true, ehEnable: true, objects: new ObjectTable(this.profile.limits.loadedObjects), sessions: new SessionTable(this.profile.limits.loadedSessions, this.profile.limits.activeSessions), daSelfHealAt: 0, daLockoutAt: 0, exclusiveAuditSession: undefined };
  }

  /** _TPM_Init (Part 1 §36.4): a power cycle. The next command must be Startup. */
  init(): void {
    this.syncClock();
    const t = this.now();
    // A power cycle resets the tick timer and its rate (libtpms _plat__TimerReset); Startup sets the DA timers (daStartup).
    Object.assign(this.volatile, { started: false, initAt: t, timer: newTickTimer(t), clockSyncedAt: 0, pcrs: new Map(), pcrUpdateCounter: 0, daSelfHealAt: 0, daLockoutAt: 0, exclusiveAuditSession: undefined });
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

  /** The tick timer now (timer.ts): TPM milliseconds since _TPM_Init, rate-adjusted. */
  tick(): number {
    return readTickTimer(this.volatile.timer, this.now());
  }

  /** Brings state.clock.clock up to now (Part 1 §36.3: Clock advances with the tick timer while powered). */
  syncClock(): void {
    this.syncClockTo(this.tick());
  }

  /** syncClock at tick `t`, already read. */
  private syncClockTo(t: number): void {
    const elapsed = t - this.volatile.clockSyncedAt;
    // BigInt arithmetic allocates: none when no millisecond has passed since the last command (the usual case under load).
    if (elapsed > 0) this.state.clock.clock += BigInt(elapsed);
    this.volatile.clockSyncedAt = t;
  }

  /**
   * Part 3 §29.3 ClockRateAdjust: Clock (and Time, and every timer the TPM
   * keeps) runs at the new rate from now on; a power cycle restores the nominal one.
   */
  adjustClockRate(rateAdjust: number): void {
    this.syncClock();
    adjustTickRate(this.volatile.timer, rateAdjust, this.now());
  }

  /** Milliseconds since _TPM_Init (Part 1 §36.2 Time). */
  time(): bigint {
    return BigInt(this.tick());
  }

  /** Fills every allocated bank with its startup values (Part 1 §36.7 TPM Reset). */
  resetPcrs(): void {
    this.volatile.pcrs = new Map(
      this.state.pcrAllocation.map((b) => [b.hashAlg, Array.from({ length: PCR_COUNT }, (_, i) => startupValue(i, digestSize(b.hashAlg)))]),
    );
    this.volatile.pcrUpdateCounter = 0;
  }

  /** Runs one command. Never throws: every input gets a response. */
  execute(command: Uint8Array, locality = 0): Promise<Uint8Array> {
    // Not an async function: a command whose handler and persistence are synchronous (most) settles one promise, with no await hops.
    try {
      const response = this.process(command, locality);
      return response instanceof Uint8Array ? Promise.resolve(response) : response.catch(failureResponse);
    } catch (e) {
      return Promise.resolve(failureResponse(e));
    }
  }

  /** The response, synchronously unless a handler or a persist must be awaited. */
  private process(bytes: Uint8Array, locality: number): Uint8Array | Promise<Uint8Array> {
    // Part 3 §5.2: the header.
    if (bytes.length < HEADER_SIZE) return encodeErrorResponse(bytes.length < 2 ? TPM_RC.INSUFFICIENT : checkTagOr(bytes, TPM_RC.INSUFFICIENT));
    // Big-endian fields read byte by byte: a DataView per command cost more than the reads.
    const tag = (bytes[0]! << 8) | bytes[1]!;
    if (tag !== TPM_ST.NO_SESSIONS && tag !== TPM_ST.SESSIONS) return encodeErrorResponse(TPM_RC.BAD_TAG);
    const size = readU32(bytes, 2);
    if (size !== bytes.length || size > this.profile.limits.maxCommandSize) return encodeErrorResponse(TPM_RC.COMMAND_SIZE);
    const code = readU32(bytes, 6);
    const entry = this.handlers.get(code);
    if (entry === undefined) return encodeErrorResponse(TPM_RC.COMMAND_CODE);
    // TEST ONLY (faults.ts): an injected fault answers instead of the command.
    const injected = this.faults.intercept(code, bytes);
    if (injected !== undefined) return injected;
    // Part 3 §5.2: only Startup before the TPM is started (Part 1 §36.5).
    if (!this.volatile.started && entry.command.name !== 'Startup') return encodeErrorResponse(TPM_RC.INITIALIZE);
    // …and Startup once started is TPM_RC_INITIALIZE before its parameter is read (Part 3 §5.2, as libtpms).
    if (this.volatile.started && entry.command.name === 'Startup') return encodeErrorResponse(TPM_RC.INITIALIZE);
    const t = this.tick();
    this.syncClockTo(t);
    // Every command brings dictionary-attack self-healing up to date (the reference's TimeUpdate → DASelfHeal).
    if (this.volatile.started) this.daSelfHeal(t);

    const cmd = entry.command;
    let split;
    try {
      split = splitCommand(bytes, this.commandOf);
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
      // TPM_RC_REFERENCE_Hn counts the handle itself (reference EntityGetLoadStatus); other codes take the handle number.
      if (rc === TPM_RC.REFERENCE_H0) return encodeErrorResponse(TPM_RC.REFERENCE_H0 + i);
      if (rc !== 0) return encodeErrorResponse(rcForHandle(rc, i + 1));
    }
    // Part 3 §5.4: authorizations.
    const auth = this.authorize(cmd, tag, split.handleValues, split.sessions, split.paramBytes, locality);
    if (typeof auth === 'number') {
      // A failed authorization may have counted against dictionary-attack protection: that must survive a crash.
      if (this.daChanged) {
        this.daChanged = false;
        if (this.persist !== undefined) return this.persistThenError(auth);
      }
      return encodeErrorResponse(auth);
    }
    // Part 3 §5.5: parameters.
    let params: unknown;
    try {
      params = decodeParams(cmd, auth.paramBytes);
    } catch (e) {
      return encodeErrorResponse(paramParseRc(e, cmd));
    }
    // An algorithm the profile leaves out fails as libtpms's unmarshaling fails a disabled one (algorithms.ts).
    const profileRc = profileParamsRc(this.profile, cmd, params as Record<string, unknown>);
    if (profileRc !== 0) return encodeErrorResponse(profileRc);
    const selectionRc = pcrSelectionParamsRc(cmd, params as Record<string, unknown>);
    if (selectionRc !== 0) return encodeErrorResponse(selectionRc);
    const ctx: HandlerContext = { engine: this, locality, persistentChanged: this.daChanged };
    this.daChanged = false;
    // Command audit (Part 1 §32.2): cpHash with the Names before the command runs, in the audit hash of now.
    // (auth.cpHash keeps it for the audit after the command.)
    const auditAlg = this.isCommandAudited(cmd.code) ? this.state.commandAudit.hashAlg : undefined;
    if (auditAlg !== undefined) auth.cpHash.get(auditAlg);
    const result = entry.run(ctx, handles as never, params as never);
    // An audited command is persisted once, after its audit digest is extended (answer).
    if (result instanceof Promise || (auditAlg === undefined && ctx.persistentChanged && this.persist !== undefined)) {
      return this.answerAfter(result, cmd, tag, auth, ctx, auditAlg);
    }
    return this.answer(result, cmd, tag, auth, ctx, auditAlg);
  }

  /** process's end when the handler is asynchronous or its change must be durable first. */
  private async answerAfter(pending: Promise<HandlerResult<AnyCommand>> | HandlerResult<AnyCommand>, cmd: AnyCommand, tag: number, auth: Authorization, ctx: HandlerContext, auditAlg: number | undefined): Promise<Uint8Array> {
    const result = await pending;
    if (auditAlg === undefined && ctx.persistentChanged && this.persist !== undefined) {
      // Part 2 §6.6.3 TPM_RC_NV_UNAVAILABLE: the change could not be made durable, so it is not reported as done.
      try {
        await this.persist(this.state);
      } catch {
        return encodeErrorResponse(TPM_RC.NV_UNAVAILABLE);
      }
    }
    return this.answer(result, cmd, tag, auth, ctx, auditAlg);
  }

  /** The response of a command its handler ran: authorizations, command audit, then the frame. */
  private answer(result: HandlerResult<AnyCommand>, cmd: AnyCommand, tag: number, auth: Authorization, ctx: HandlerContext, auditAlg: number | undefined): Uint8Array | Promise<Uint8Array> {
    // The response is marshaled once: parameters in place, then the authorizations (frame.ts draftResponse).
    const draft = draftResponse(cmd, result.handles as never, result.params as never, tag === TPM_ST.SESSIONS);
    const response = tag === TPM_ST.SESSIONS ? this.respond(cmd, auth, draft) : undefined;
    // A command that takes sessions but audits none ends the exclusive audit (reference UpdateAuditSessionStatus).
    if (auth.auditIndex < 0 && !NO_SESSION_COMMANDS.has(cmd.code)) this.volatile.exclusiveAuditSession = undefined;
    if (auditAlg !== undefined) {
      const counterBefore = this.state.commandAudit.counter;
      // rpHash over the response parameters as sent (encrypted when a session encrypts them).
      this.extendCommandAudit(auditAlg, auth.cpHash.get(auditAlg), computeRpHash(auditAlg, cmd.code, response?.paramBytes ?? draft.paramBytes));
      // Only the audit counter is NV here (reference CommandAudit: NV_SYNC_PERSISTENT(auditCounter) when a
      // digest starts). The digest is state-reset data (gr): a restart after a crash is a TPM Reset, which
      // clears it (CommandAuditStartup), and Shutdown saves it; so an extend alone is not written out.
      if ((ctx.persistentChanged || this.state.commandAudit.counter !== counterBefore) && this.persist !== undefined) {
        return this.persistThenFinish(draft, response);
      }
    }
    return draft.finish(response?.paramBytes, response?.sessions);
  }

  /** An authorization failure's response once the DA change is durable (TPM_RC_NV_UNAVAILABLE when it cannot be). */
  private async persistThenError(rc: number): Promise<Uint8Array> {
    try {
      await this.persist!(this.state);
    } catch {
      return encodeErrorResponse(TPM_RC.NV_UNAVAILABLE);
    }
    return encodeErrorResponse(rc);
  }

  /** An audited command's frame once the audit counter is durable (TPM_RC_NV_UNAVAILABLE when it cannot be). */
  private async persistThenFinish(draft: ResponseDraft, response: ResponseAuthorizations | undefined): Promise<Uint8Array> {
    try {
      await this.persist!(this.state);
    } catch {
      return encodeErrorResponse(TPM_RC.NV_UNAVAILABLE);
    }
    return draft.finish(response?.paramBytes, response?.sessions);
  }

  /** Whether a command is command-audited: listed, or SetCommandCodeAuditStatus, which always is (Part 3 §21.2). */
  isCommandAudited(code: number): boolean {
    return code === TPM_CC.SetCommandCodeAuditStatus || this.state.commandAudit.commands.includes(code);
  }

  /**
   * The command audit digest as it stands: empty when cleared, and cleared by
   * a TPM Reset since it was last extended (reference CommandAuditStartup).
   */
  commandAuditDigest(): Uint8Array {
    const a = this.state.commandAudit;
    return a.digestResetCount === this.state.clock.resetCount ? a.digest : EMPTY;
  }

  /**
   * Part 1 §32.2 (the reference's CommandAudit): digest := H(digest ‖ cpHash ‖ rpHash).
   * A cleared digest starts over at zeros and counts a new audit sequence
   * (auditCounter + 1). When the command changed the audit hash (SetCommandCodeAuditStatus),
   * the digest stays cleared and nothing is recorded.
   */
  private extendCommandAudit(alg: number, cp: Uint8Array, rp: Uint8Array): void {
    const a = this.state.commandAudit;
    if (a.hashAlg !== alg) return;
    let digest = this.commandAuditDigest();
    if (digest.length === 0) {
      digest = new Uint8Array(digestSize(alg));
      a.counter = (a.counter + 1n) & 0xffffffffffffffffn;
    }
    a.digest = extendAuditDigest(alg, digest, cp, rp);
    a.digestResetCount = this.state.clock.resetCount;
  }

  /**
   * Whether a hierarchy is enabled (Part 1 §13.5: shEnable, ehEnable, phEnable);
   * PLATFORM_NV counts as the platform's, anything else (NULL) is always enabled.
   */
  hierarchyEnabled(h: number): boolean {
    const v = this.volatile;
    if (h === TPM_RH.OWNER) return v.shEnable;
    if (h === TPM_RH.ENDORSEMENT) return v.ehEnable;
    if (h === TPM_RH.PLATFORM || h === TPM_RH.PLATFORM_NV) return v.phEnable;
    return true;
  }

  /** Whether a handle names something that exists now (Part 3 §5.3); 0 or the base code. */
  private checkHandle(h: number): number {
    const type = h >>> 24;
    if (type === TPM_HT.PCR) return h < PCR_COUNT ? 0 : TPM_RC.VALUE;
    if (type === TPM_HT.PERMANENT) {
      if (h === TPM_RH.OWNER || h === TPM_RH.ENDORSEMENT || h === TPM_RH.PLATFORM || h === TPM_RH.PLATFORM_NV) return this.hierarchyEnabled(h) ? 0 : TPM_RC.HIERARCHY;
      if (h === TPM_RH.LOCKOUT || h === TPM_RH.NULL || h === TPM_RS_PW) return 0;
      return TPM_RC.VALUE;
    }
    // An index or persistent object of a disabled hierarchy is not there (the reference's NvIndexIsAccessible, ObjectLoadEvict).
    if (type === TPM_HT.NV_INDEX) {
      const nv = this.state.nvIndices.find((n) => n.nvIndex === h);
      if (nv === undefined) return TPM_RC.HANDLE;
      return (TPMA_NV.fromWord(nv.attributes).PLATFORMCREATE ? this.state.phEnableNV : this.volatile.shEnable) ? 0 : TPM_RC.HANDLE;
    }
    if (type === TPM_HT.PERSISTENT) {
      const o = this.state.persistentObjects.find((p) => p.handle === h);
      return o !== undefined && this.hierarchyEnabled(o.hierarchy) ? 0 : TPM_RC.HANDLE;
    }
    if (type === TPM_HT.TRANSIENT) {
      // libtpms: TPMI_DH_OBJECT only spans the object slots (TPM_RC_VALUE beyond them); an empty slot is not loaded (REFERENCE_H0).
      if (h - HANDLE_RANGE.TRANSIENT[0] >= this.volatile.objects.capacity) return TPM_RC.VALUE;
      return this.volatile.objects.has(h) ? 0 : TPM_RC.REFERENCE_H0;
    }
    // Part 3 §5.3: a session handle names a loaded session (ContextSave's, policy commands' policySession); TPM_RC_REFERENCE_H0 otherwise, as libtpms.
    if (type === TPM_HT.HMAC_SESSION || type === TPM_HT.POLICY_SESSION) return this.volatile.sessions.get(h) !== undefined ? 0 : TPM_RC.REFERENCE_H0;
    return TPM_RC.HANDLE;
  }

  /**
   * The entity behind a handle, for authorization (Part 1 §19.7) and Names
   * (Part 1 §16): hierarchies, PCRs, loaded and persistent objects, NV
   * indices. Undefined for anything else (sessions, unknown handles).
   */
  entityOf(h: number): AuthEntity | undefined {
    const type = h >>> 24;
    if (type === TPM_HT.PERMANENT) {
      const a = this.state.auths;
      const auth =
        h === TPM_RH.OWNER ? a.owner : h === TPM_RH.ENDORSEMENT ? a.endorsement : h === TPM_RH.PLATFORM || h === TPM_RH.PLATFORM_NV ? a.platform : h === TPM_RH.LOCKOUT ? a.lockout : undefined;
      if (auth === undefined && h !== TPM_RH.NULL) return undefined;
      // Reference IsDAExempted: every permanent handle but TPM_RH_LOCKOUT is exempt.
      return new Entity(h, undefined, auth?.authValue ?? EMPTY, auth?.authPolicy ?? EMPTY, h !== TPM_RH.LOCKOUT, undefined);
    }
    if (type === TPM_HT.PCR) {
      // Part 3 §22.6–§22.7: a PCR of an authorization group has that group's authValue and policy; others neither.
      // PCRs are exempt from DA (reference IsDAExempted).
      const v = pcrAuthValueGroup(h);
      const authValue = v === undefined ? EMPTY : this.state.pcrAuthValues[v]!;
      return new Entity(h, undefined, authValue, pcrAuthPolicyOf(this.state, h)?.policy ?? EMPTY, true, undefined);
    }
    if (type === TPM_HT.NV_INDEX) {
      const nv = this.state.nvIndices.find((n) => n.nvIndex === h);
      if (nv === undefined) return undefined;
      return new Entity(h, undefined, nv.authValue, nv.authPolicy, TPMA_NV.fromWord(nv.attributes).NO_DA, undefined, nv);
    }
    if (type === TPM_HT.TRANSIENT || type === TPM_HT.PERSISTENT) {
      const seq = this.volatile.objects.getSequence(h) as SequenceObject | undefined;
      // A sequence has no Name and is exempt from DA; its auth is always available (reference AllocateSequenceSlot, EntityGetName).
      if (seq !== undefined) return new Entity(h, EMPTY, seq.authValue, EMPTY, true, undefined);
      // findObject answers for loaded and persistent objects alike.
      const o = findObject(this, h);
      if (o === undefined) return undefined;
      const attrs = o.publicArea.objectAttributes;
      return new Entity(h, o.name, o.sensitive.authValue, o.publicArea.authPolicy, attrs.noDA, attrs);
    }
    return undefined;
  }

  /**
   * Part 1 §19.8.6 self-healing (the reference's DASelfHeal), on the tick
   * timer: one failure is forgotten per recoveryTime seconds since the last
   * failure or step (recoveryTime 0: DA is off, every failure is forgotten at
   * once), and lockoutAuth is usable again lockoutRecovery seconds after its
   * last failure (lockoutRecovery 0: only at the next Startup). `t` is the tick timer now.
   */
  private daSelfHeal(t: number): void {
    const da = this.state.dictionaryAttack;
    const v = this.volatile;
    if (da.failedTries !== 0) {
      const steps = da.recoveryTime === 0 ? da.failedTries : Math.floor(Math.floor((t - v.daSelfHealAt) / 1000) / da.recoveryTime);
      if (steps > 0) {
        da.failedTries = Math.max(0, da.failedTries - steps);
        if (da.recoveryTime !== 0) v.daSelfHealAt += steps * da.recoveryTime * 1000;
        this.daChanged = true;
      }
    }
    if (da.lockoutAuthLocked && da.lockoutRecovery !== 0 && Math.floor((t - v.daLockoutAt) / 1000) >= da.lockoutRecovery) {
      da.lockoutAuthLocked = false;
      this.daChanged = true;
    }
  }

  /**
   * Part 1 §19.8.6 at Startup (the reference's DAStartup, with libtpms's
   * ACCUMULATE_SELF_HEAL_TIMER and USE_DA_USED). After an orderly shutdown the
   * self-healing and lockout timers go on where Shutdown left them (powered-off
   * time does not count); after a disorderly one they start at power-on, and
   * if a DA-protected authValue was checked since the last Startup or
   * Shutdown, that counts as one failure — the power loss may have been cut
   * to hide one — unless DA is off (recoveryTime 0) or the TPM is in lockout
   * already. With lockoutRecovery 0, lockoutAuth is usable again. `daUsed`
   * is what takeDaUsed took as the Startup began.
   */
  daStartup(daUsed: boolean): void {
    const da = this.state.dictionaryAttack;
    const v = this.volatile;
    const orderly = this.state.orderlyShutdown !== 'none';
    v.daSelfHealAt = orderly ? -da.selfHealElapsed : 0;
    v.daLockoutAt = orderly ? -da.lockoutElapsed : 0;
    if (da.lockoutRecovery === 0) da.lockoutAuthLocked = false;
    if (!orderly && daUsed && da.recoveryTime !== 0 && da.failedTries < da.maxTries) da.failedTries++;
    da.selfHealElapsed = 0;
    da.lockoutElapsed = 0;
  }

  /**
   * The DA-used mark (daUsed), cleared. TPM2_Startup takes it before any
   * check (libtpms), so a refused Startup(STATE) loses it for the Startup(CLEAR)
   * that follows; it stays cleared in memory until something is persisted.
   */
  takeDaUsed(): boolean {
    const da = this.state.dictionaryAttack;
    const used = da.daUsed;
    da.daUsed = false;
    return used;
  }

  /** At Shutdown (the reference's TPM2_Shutdown): how far the DA timers ran, for the next Startup; no DA use since. */
  daShutdown(): void {
    const da = this.state.dictionaryAttack;
    const t = this.tick();
    da.selfHealElapsed = Math.max(0, t - this.volatile.daSelfHealAt);
    da.lockoutElapsed = Math.max(0, t - this.volatile.daLockoutAt);
    da.daUsed = false;
  }

  /**
   * The reference's CheckLockedOut: TPM_RC_LOCKOUT or 0. The first
   * DA-protected use after a Startup or Shutdown is recorded (daUsed, durable
   * before the answer, and the shutdown no longer orderly) so that a power
   * loss from here counts as a failure at the next Startup (USE_DA_USED;
   * libtpms answers TPM_RC_RETRY while it records it, this TPM goes on).
   */
  private lockedOut(lockoutAuth: boolean): number {
    const da = this.state.dictionaryAttack;
    if (lockoutAuth) return da.lockoutAuthLocked ? TPM_RC.LOCKOUT : 0;
    if (da.failedTries >= da.maxTries) return TPM_RC.LOCKOUT;
    if (!da.daUsed) {
      da.daUsed = true;
      this.state.orderlyShutdown = 'none';
      this.daChanged = true;
    }
    return 0;
  }

  /**
   * After a failed password or HMAC (the reference's IncrementLockout):
   * TPM_RC_AUTH_FAIL when the failure counts against DA protection,
   * TPM_RC_BAD_AUTH when the entity (and the session's bind) is exempt.
   */
  private authFailure(use: SessionUse, entity: AuthEntity | undefined): number {
    // An extra session (no entity) counts only through its bind (reference: its handle is TPM_RH_UNASSIGNED, DA-exempt).
    let lockout = entity?.handle === TPM_RH.LOCKOUT;
    const exempt = entity?.daExempt ?? true;
    const s = use.session;
    if (s === undefined) {
      if (exempt) return TPM_RC.BAD_AUTH;
    } else {
      if (s.lockoutBound) lockout = true;
      if (!s.daBound && ((exempt && !lockout) || !use.includeAuth)) return TPM_RC.BAD_AUTH;
    }
    const da = this.state.dictionaryAttack;
    // Each failure restarts its timer (the reference's DARegisterFailure), so recovery counts from the last one.
    if (lockout) {
      da.lockoutAuthLocked = true;
      this.volatile.daLockoutAt = this.tick();
    } else {
      if (da.recoveryTime !== 0) da.failedTries++;
      this.volatile.daSelfHealAt = this.tick();
    }
    this.daChanged = true;
    return TPM_RC.AUTH_FAIL;
  }

  /**
   * Part 3 §5.4 and Part 1 §19 (the reference's ParseSessionBuffer): checks
   * each session of the authorization area — passwords, HMAC sessions and
   * policy sessions for the handles that need authorization, extra sessions
   * for parameter encryption and audit — then decrypts the first parameter.
   * Returns the checked area, or a response code.
   */
  private authorize(
    cmd: AnyCommand,
    tag: number,
    handleValues: readonly number[],
    sessions: readonly TPMS_AUTH_COMMAND[],
    paramBytes: Uint8Array,
    locality: number,
  ): Authorization | number {
    if (tag === TPM_ST.NO_SESSIONS) {
      if (cmd.authCount > 0) return TPM_RC.AUTH_MISSING;
      return { uses: NO_USES, decryptIndex: -1, encryptIndex: -1, auditIndex: -1, paramBytes, cpHash: new CpHashes(this, cmd.code, handleValues, paramBytes) };
    }
    // Commands that take no sessions at all (the reference's NO_SESSIONS command attribute).
    if (NO_SESSION_COMMANDS.has(cmd.code)) return TPM_RC.AUTH_CONTEXT;
    const cpHash = new CpHashes(this, cmd.code, handleValues, paramBytes);
    const table = this.volatile.sessions;
    const uses: SessionUse[] = [];
    let decryptIndex = -1;
    let encryptIndex = -1;
    let auditIndex = -1;
    // The reference's RetrieveSessionData: what each session is and may do.
    for (let i = 0; i < sessions.length; i++) {
      const s = sessions[i]!;
      const n = i + 1;
      const a = s.sessionAttributes;
      if (s.sessionHandle === TPM_RS_PW) {
        // Part 1 §19.8.4: a password only authorizes; its nonce is empty.
        if (a.encrypt || a.decrypt || a.audit || a.auditExclusive || a.auditReset) return rcForSession(TPM_RC.ATTRIBUTES, n);
        if (s.nonce.length !== 0) return rcForSession(TPM_RC.NONCE, n);
        uses.push({ index: i, auth: s, session: undefined, attributes: 0, entity: undefined, role: undefined, includeAuth: true, passwordNeeded: true });
        continue;
      }
      const session = table.get(s.sessionHandle);
      if (session === undefined) return TPM_RC.REFERENCE_S0 + i;
      if (uses.some((u) => u.auth.sessionHandle === s.sessionHandle)) return rcForSession(TPM_RC.HANDLE, n);
      if (a.decrypt) {
        if (!cmd.commandEncryptable || decryptIndex >= 0) return rcForSession(TPM_RC.ATTRIBUTES, n);
        if (session.symmetric.algorithm === TPM_ALG.NULL) return rcForSession(TPM_RC.SYMMETRIC, n);
        decryptIndex = i;
      }
      if (a.encrypt) {
        if (!cmd.responseEncryptable || encryptIndex >= 0) return rcForSession(TPM_RC.ATTRIBUTES, n);
        if (session.symmetric.algorithm === TPM_ALG.NULL) return rcForSession(TPM_RC.SYMMETRIC, n);
        encryptIndex = i;
      }
      if (a.audit) {
        // Only an HMAC session audits (Part 1 §19.6.14).
        if (auditIndex >= 0 || session.kind !== 'hmac') return rcForSession(TPM_RC.ATTRIBUTES, n);
        // Continuing an audit that claims exclusivity: it must still be exclusive (reference RetrieveSessionData).
        if (!a.auditReset && session.auditDigest !== undefined && a.auditExclusive && this.volatile.exclusiveAuditSession !== session.handle) return TPM_RC.EXCLUSIVE;
        auditIndex = i;
      }
      uses.push({ index: i, auth: s, session, attributes: TPMA_SESSION.toWord(a), entity: undefined, role: undefined, includeAuth: false, passwordNeeded: false });
    }
    // Associate sessions with the handles that need authorization, in order.
    let k = 0;
    for (let h = 0; h < cmd.handleNames.length; h++) {
      const role = cmd.handles[cmd.handleNames[h]!]!.auth;
      if (role === null) continue;
      const use = uses[k++];
      if (use === undefined) return TPM_RC.AUTH_MISSING;
      use.entity = handleValues[h]!;
      use.role = role;
    }
    // The reference's consistency checks, then each authorization.
    for (const use of uses) {
      const n = use.index + 1;
      const session = use.session;
      if (session === undefined) {
        if (use.entity === undefined) return rcForSession(TPM_RC.HANDLE, n);
      } else {
        // A trial session only computes a digest (Part 1 §19.7.9).
        if (session.kind === 'trial') return rcForSession(TPM_RC.ATTRIBUTES, n);
        if (session.daBound) {
          const rc = this.lockedOut(session.lockoutBound);
          if (rc !== 0) return rc;
        }
      }
      if (use.entity !== undefined) {
        const rc = this.checkAuthorization(cmd, use, locality, cpHash, uses, paramBytes);
        if (rc !== 0) return withSessionIndex(rc, n);
      } else {
        const a = use.auth.sessionAttributes;
        if (!a.audit && !a.encrypt && !a.decrypt) return rcForSession(TPM_RC.ATTRIBUTES, n);
        use.includeAuth = false;
        if (!this.hmacMatches(use, undefined, cpHash, uses)) return rcForSession(this.authFailure(use, undefined), n);
      }
    }
    // An audit digest takes cpHash with the Names before the command (NV_Write may change an index's Name).
    if (auditIndex >= 0) cpHash.get(uses[auditIndex]!.session!.authHash);
    // Decrypt the first parameter last (Part 1 §21): the HMACs cover it as sent.
    let params = paramBytes;
    if (decryptIndex >= 0) {
      const use = uses[decryptIndex]!;
      const session = use.session!;
      const authValue = use.entity === undefined ? undefined : this.entityOf(use.entity)?.authValue;
      try {
        params = decryptCommandParameter(
          { hashAlg: session.authHash, symmetric: session.symmetric, key: sessionHmacKey(session.sessionKey, authValue), nonceCaller: use.auth.nonce, nonceTPM: session.nonceTPM },
          paramBytes,
        );
      } catch {
        return rcForSession(TPM_RC.SIZE, decryptIndex + 1);
      }
    }
    return { uses, decryptIndex, encryptIndex, auditIndex, paramBytes: params, cpHash };
  }

  /** The reference's CheckAuthSession for one session and the handle it authorizes: 0 or a base code. */
  private checkAuthorization(
    cmd: AnyCommand,
    use: SessionUse,
    locality: number,
    cpHash: CpHashes,
    uses: readonly SessionUse[],
    paramBytes: Uint8Array,
  ): number {
    const entity = this.entityOf(use.entity!);
    // A public-only object (LoadExternal of a public area) has no authValue to prove: TPM_RC_AUTH_UNAVAILABLE, as libtpms.
    if (entity === undefined || (entity.objectAttributes !== undefined && findObject(this, entity.handle)?.publicOnly === true)) return TPM_RC.AUTH_UNAVAILABLE;
    const session = use.session;
    const policy = session !== undefined && session.kind !== 'hmac';
    if (session === undefined) use.includeAuth = true;
    else if (policy) use.includeAuth = session.policy.isAuthValueNeeded || session.policy.isPasswordNeeded;
    else use.includeAuth = !(session.bindName !== undefined && isBindEntity({ name: session.bindName, authValue: session.bindAuthValue ?? EMPTY }, entity));
    use.passwordNeeded = session === undefined || (policy && session.policy.isPasswordNeeded);
    // Part 1 §19.8.6: a DA-protected authValue cannot be tried while the TPM is in lockout.
    if (use.includeAuth && !entity.daExempt) {
      const rc = this.lockedOut(entity.handle === TPM_RH.LOCKOUT);
      if (rc !== 0) return rc;
    }
    const role = use.role!;
    const object = entity.objectAttributes;
    // An index's own authorization depends on the access and its attributes (and a PIN index's count).
    const nv = entity.handle >>> 24 === TPM_HT.NV_INDEX ? this.state.nvIndices.find((n) => n.nvIndex === entity.handle) : undefined;
    if (!policy) {
      // Part 1 §19.7.3 roles: DUP always needs a policy; ADMIN unless an object allows its authValue (adminWithPolicy clear).
      if (role === 'DUP' || (role === 'ADMIN' && (object === undefined || object.adminWithPolicy))) return TPM_RC.AUTH_TYPE;
      // A PCR whose group has a policy takes only a policy session (reference IsPolicySessionRequired).
      if (entity.handle >>> 24 === TPM_HT.PCR && (pcrAuthPolicyOf(this.state, entity.handle)?.hashAlg ?? TPM_ALG.NULL) !== TPM_ALG.NULL) return TPM_RC.AUTH_TYPE;
      // USER role with an authValue only when userWithAuth is SET (Part 2 §8.3.3.1).
      if (role === 'USER' && object !== undefined && !object.userWithAuth) return TPM_RC.AUTH_UNAVAILABLE;
      if (nv !== undefined && !nvAuthValueAvailable(nv, cmd.code)) return TPM_RC.AUTH_UNAVAILABLE;
    } else {
      // Reference IsAuthPolicyAvailable: always for an object (an empty policy then fails as POLICY_FAIL), for a PCR
      // of a policy group even before its policy is set; other entities only with a policy.
      const policyAvailable = entity.objectAttributes !== undefined || (entity.handle >>> 24 === TPM_HT.PCR ? pcrAuthPolicyOf(this.state, entity.handle) !== undefined : entity.authPolicy.length !== 0);
      if (!policyAvailable) return TPM_RC.AUTH_UNAVAILABLE;
      if (nv !== undefined && !nvAuthPolicyAvailable(nv, cmd.code, role === 'ADMIN' || role === 'DUP')) return TPM_RC.AUTH_UNAVAILABLE;
      // policy-check.ts holds every policy-session rule (PolicySecret's MODE, the ADMIN/DUP roles, the assertions).
      const rc = checkPolicySession(this, session!, { commandCode: cmd.code, locality, role, entityHandle: entity.handle, parameters: paramBytes, authPolicy: entity.authPolicy, handleNames: cpHash.handleNames(), cpHash: (alg) => cpHash.get(alg) });
      if (rc !== 0) return rc;
    }
    const good = use.passwordNeeded ? passwordMatches(use.auth.hmac, entity.authValue) : this.hmacMatches(use, entity.authValue, cpHash, uses);
    const rc = good ? 0 : this.authFailure(use, entity);
    // Part 1 §37.2.3.5: a PIN index counts each use of its authValue, good or bad; durable before the answer.
    if (nv !== undefined && use.includeAuth && countPinUse(nv, good)) this.daChanged = true;
    return rc;
  }

  /** Part 1 §19.6.10: the command HMAC of an HMAC or policy session (the reference's CheckSessionHMAC). */
  private hmacMatches(use: SessionUse, authValue: Uint8Array | undefined, cpHash: CpHashes, uses: readonly SessionUse[]): boolean {
    const session = use.session!;
    const key = sessionHmacKey(session.sessionKey, use.includeAuth ? authValue : undefined);
    const given = use.auth.hmac;
    // With no key, an empty HMAC is accepted (reference ComputeCommandHMAC).
    if (key.length === 0 && given.length === 0) return true;
    const input = { hashAlg: session.authHash, key, cpHash: cpHash.get(session.authHash), nonceCaller: use.auth.nonce, nonceTPM: session.nonceTPM, attributes: use.attributes };
    // Only the first of several sessions can take other sessions' nonces (extraNonces).
    const expected = use.index === 0 && uses.length > 1 ? commandHmac({ ...input, ...extraNonces(uses.map(sessionRole), 0) }) : commandHmac(input);
    return equalBytes(expected, given);
  }

  /** The authValue after the command: a changed one (HierarchyChangeAuth), none for a deleted entity. */
  private authAfter(use: SessionUse): Uint8Array | undefined {
    return use.entity === undefined ? undefined : (this.entityOf(use.entity)?.authValue ?? EMPTY);
  }

  /**
   * The response authorization area (the reference's BuildResponseSession):
   * new nonces, the first response parameter encrypted, response HMACs over
   * rpHash, policy sessions reset, sessions without continueSession flushed.
   * `paramBytes` is set only when a session encrypted the drafted parameters.
   */
  private respond(cmd: AnyCommand, auth: Authorization, draft: ResponseDraft): ResponseAuthorizations {
    const table = this.volatile.sessions;
    const uses = auth.uses;
    for (let i = 0; i < uses.length; i++) {
      const s = uses[i]!.session;
      if (s !== undefined) s.nonceTPM = this.random(s.nonceTPM.length);
    }
    let encrypted: Uint8Array | undefined;
    if (auth.encryptIndex >= 0) {
      const use = uses[auth.encryptIndex]!;
      const s = use.session!;
      encrypted = encryptResponseParameter(
        { hashAlg: s.authHash, symmetric: s.symmetric, key: sessionHmacKey(s.sessionKey, this.authAfter(use)), nonceCaller: use.auth.nonce, nonceTPM: s.nonceTPM },
        draft.paramBytes,
      );
    }
    // Made only if a session needs rpHash (a password needs none).
    let rpHash: RpHashes | undefined;
    const out: AuthResponse[] = new Array<AuthResponse>(uses.length);
    for (let i = 0; i < uses.length; i++) {
      const use = uses[i]!;
      const s = use.session;
      if (s === undefined) {
        out[i] = PASSWORD_ACK;
        continue;
      }
      let attributes = use.auth.sessionAttributes;
      if (use.index === auth.auditIndex) {
        const a = use.auth.sessionAttributes;
        // First audited use or auditReset: the digest starts at zeros and the session is no longer bound (reference InitAuditSession).
        if (s.auditDigest === undefined || a.auditReset) {
          s.auditDigest = new Uint8Array(digestSize(s.authHash));
          s.bindName = undefined;
          s.bindAuthValue = undefined;
          this.volatile.exclusiveAuditSession = s.handle;
        } else if (this.volatile.exclusiveAuditSession !== s.handle) {
          this.volatile.exclusiveAuditSession = undefined;
        }
        s.auditDigest = extendAuditDigest(s.authHash, s.auditDigest, auth.cpHash.get(s.authHash), (rpHash ??= new RpHashes(cmd.code, encrypted, draft)).get(s.authHash));
        // The response reports whether the audit is exclusive (reference UpdateAuditSessionStatus); its HMAC covers that.
        attributes = { ...attributes, auditExclusive: this.volatile.exclusiveAuditSession === s.handle };
      }
      let hmac: Uint8Array;
      if (s.kind !== 'hmac' && use.passwordNeeded && use.entity !== undefined) {
        hmac = EMPTY; // PolicyPassword: no response HMAC (reference BuildSingleResponseAuth)
      } else {
        const key = sessionHmacKey(s.sessionKey, use.includeAuth ? this.authAfter(use) : undefined);
        hmac =
          key.length === 0 && use.auth.hmac.length === 0
            ? EMPTY
            : responseHmac({ hashAlg: s.authHash, key, rpHash: (rpHash ??= new RpHashes(cmd.code, encrypted, draft)).get(s.authHash), nonceTPM: s.nonceTPM, nonceCaller: use.auth.nonce, attributes: TPMA_SESSION.toWord(attributes) });
      }
      const continues = use.auth.sessionAttributes.continueSession;
      if (!continues) table.remove(s.handle);
      else if (s.kind === 'policy') {
        // When the nonce rolls, a policy session starts over (reference UpdateInternalSession).
        s.policyDigest = new Uint8Array(digestSize(s.authHash));
        s.policy = emptyPolicyAssertions();
        s.startTime = this.time();
      }
      out[i] = { nonce: s.nonceTPM, sessionAttributes: attributes, hmac };
    }
    return { paramBytes: encrypted, sessions: out };
  }
}

/** respond's result: the response parameters when a session encrypted them (else the draft's stand), and the authorizations. */
interface ResponseAuthorizations {
  readonly paramBytes: Uint8Array | undefined;
  readonly sessions: AuthResponse[];
}

/**
 * A digest computed at most once per hash algorithm and only when first
 * asked for (cpHash, rpHash). Objects rather than closures: one allocation
 * per command, and under tsx (keepNames) each named closure also costs an
 * Object.defineProperty.
 */
abstract class DigestPerAlg {
  private alg0 = 0;
  private first: Uint8Array | undefined;
  private more: Map<number, Uint8Array> | undefined;

  protected abstract compute(alg: number): Uint8Array;

  get(alg: number): Uint8Array {
    if (this.first === undefined) {
      this.alg0 = alg;
      return (this.first = this.compute(alg));
    }
    if (alg === this.alg0) return this.first;
    this.more ??= new Map();
    let h = this.more.get(alg);
    if (h === undefined) this.more.set(alg, (h = this.compute(alg)));
    return h;
  }
}

/** cpHash of a command as received (Part 1 §18.7), with its handles' Names looked up once, only if needed. */
class CpHashes extends DigestPerAlg {
  private readonly engine: TpmEngine;
  private readonly code: number;
  private readonly handleValues: readonly number[];
  private readonly paramBytes: Uint8Array;
  private names: Uint8Array[] | undefined;

  constructor(engine: TpmEngine, code: number, handleValues: readonly number[], paramBytes: Uint8Array) {
    super();
    this.engine = engine;
    this.code = code;
    this.handleValues = handleValues;
    this.paramBytes = paramBytes;
  }

  /** The Names of the command's handles (Part 1 §16): an entity's, or the handle itself (sessions). */
  handleNames(): Uint8Array[] {
    if (this.names === undefined) {
      const names: Uint8Array[] = [];
      for (const h of this.handleValues) names.push(this.engine.entityOf(h)?.name ?? handleName(h));
      this.names = names;
    }
    return this.names;
  }

  protected compute(alg: number): Uint8Array {
    return computeCpHash(alg, this.code, this.handleNames(), this.paramBytes);
  }
}

/** rpHash of a response (Part 1 §18.8) over its parameters as sent: encrypted, or as drafted. */
class RpHashes extends DigestPerAlg {
  private readonly code: number;
  private readonly encrypted: Uint8Array | undefined;
  private readonly draft: ResponseDraft;

  constructor(code: number, encrypted: Uint8Array | undefined, draft: ResponseDraft) {
    super();
    this.code = code;
    this.encrypted = encrypted;
    this.draft = draft;
  }

  protected compute(alg: number): Uint8Array {
    return computeRpHash(alg, this.code, this.encrypted ?? this.draft.paramBytes);
  }
}

/**
 * An entity for authorization (AuthEntity) whose Name is computed when
 * first read: a password (Part 1 §19.8.4) and most sessions never need it,
 * and an NV index's Name is a hash of its public area.
 */
class Entity implements AuthEntity {
  readonly handle: number;
  readonly authValue: Uint8Array;
  readonly authPolicy: Uint8Array;
  readonly daExempt: boolean;
  readonly objectAttributes: TPMA_OBJECT | undefined;
  private known: Uint8Array | undefined;
  private readonly nv: NvIndexState | undefined;

  /** `name` undefined: the handle's own (permanent handles, PCRs), or the Name of `nv`'s public area. */
  constructor(handle: number, name: Uint8Array | undefined, authValue: Uint8Array, authPolicy: Uint8Array, daExempt: boolean, objectAttributes: TPMA_OBJECT | undefined, nv?: NvIndexState) {
    this.handle = handle;
    this.known = name;
    this.authValue = authValue;
    this.authPolicy = authPolicy;
    this.daExempt = daExempt;
    this.objectAttributes = objectAttributes;
    this.nv = nv;
  }

  get name(): Uint8Array {
    return (this.known ??= this.nv === undefined ? handleName(this.handle) : nvName(nvPublicOf(this.nv)));
  }
}

/** What extraNonces needs to know of one session of the command. */
function sessionRole(u: SessionUse): SessionRole {
  return {
    authorizes: u.entity !== undefined,
    password: u.session === undefined,
    decrypt: u.auth.sessionAttributes.decrypt,
    encrypt: u.auth.sessionAttributes.encrypt,
    nonceTPM: u.session?.nonceTPM ?? EMPTY,
  };
}

/** A response for what `execute` caught: a TpmError's code, else TPM_RC_FAILURE (a bug in a handler must not crash the host). */
function failureResponse(e: unknown): Uint8Array {
  return encodeErrorResponse(e instanceof TpmError ? e.rc : TPM_RC.FAILURE);
}

/** The length of an authValue without its trailing zeros (the core's trimAuthValue, without the copy). */
function trimmedLength(authValue: Uint8Array): number {
  let end = authValue.length;
  while (end > 0 && authValue[end - 1] === 0) end--;
  return end;
}

/**
 * Part 1 §19.8.4: trailing zeros of both values are ignored (the core's
 * trimAuthValue); the comparison runs in constant time over the longer length
 * so the result says nothing about where the values differ.
 */
function passwordMatches(given: Uint8Array, expected: Uint8Array): boolean {
  const la = trimmedLength(given);
  const lb = trimmedLength(expected);
  // Both empty (the usual authValue of PCRs and hierarchies): equal, and the answer itself says as much.
  if (la === 0 && lb === 0) return true;
  const n = Math.max(la, lb, 1);
  const pa = new Uint8Array(n);
  const pb = new Uint8Array(n);
  pa.set(given.subarray(0, la));
  pb.set(expected.subarray(0, lb));
  return timingSafeEqual(pa, pb) && la === lb;
}

/** Adds the session number to a format-1 code; other codes stay as they are (the reference's RcSafeAddToResult). */
function withSessionIndex(rc: number, index: number): number {
  return (rc & 0x080) !== 0 && (rc & 0xf00) === 0 ? rc | TPM_RC_S | (index << TPM_RC_N_SHIFT) : rc;
}

/** The big-endian UINT32 at bytes[at]. */
function readU32(bytes: Uint8Array, at: number): number {
  return ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
}

function checkTagOr(bytes: Uint8Array, rc: number): number {
  const tag = (bytes[0]! << 8) | bytes[1]!;
  return tag === TPM_ST.NO_SESSIONS || tag === TPM_ST.SESSIONS ? rc : TPM_RC.BAD_TAG;
}

/**
 * The base response code the reference's unmarshalers give for what a
 * ParseError says. A wrong union selector is TPM_RC_SELECTOR unless the
 * selector is a typed interface with its own code (TPMI_ALG_PUBLIC: TPM_RC_TYPE).
 */
export function unmarshalRc(e: ParseError, selectorRc: number = TPM_RC.SELECTOR): number {
  switch (e.code) {
    case 'parse.truncated':
      return TPM_RC.INSUFFICIENT;
    case 'parse.size':
    case 'parse.trailing':
    case 'parse.count':
      return TPM_RC.SIZE;
    case 'parse.selector':
      return selectorRc;
    case 'parse.reserved':
      return TPM_RC.RESERVED_BITS;
    case 'parse.tag':
      return TPM_RC.TAG;
    case 'parse.value': {
      // A Part 2 interface type with a response code of its own ("#TPM_RC_…"), as libtpms unmarshals it.
      const type = /is not a (TPMI_\w+)/.exec(e.message)?.[1];
      return (type === undefined ? undefined : TPMI_REFUSAL_RC[type]) ?? TPM_RC.VALUE;
    }
    case 'parse.handle':
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
    return index <= 7 ? rcForSession(unmarshalRc(e), index) : TPM_RC.AUTHSIZE;
  }
  if (path.includes('.handles')) return e.code === 'parse.truncated' ? TPM_RC.INSUFFICIENT : handleParseRc(e, cmd);
  return e.code === 'parse.truncated' ? TPM_RC.INSUFFICIENT : TPM_RC.COMMAND_SIZE;
}

function handleParseRc(e: unknown, cmd: AnyCommand): number {
  if (!(e instanceof ParseError)) return TPM_RC.FAILURE;
  const i = cmd.handleNames.findIndex((n) => e.path.split('.').includes(n));
  return rcForHandle(TPM_RC.VALUE, i >= 0 ? i + 1 : 1);
}

/**
 * What this TPM's unmarshaling of a TPMS_PCR_SELECTION refuses beyond the
 * core's schema (which serves any TPM): a bank whose hash it does not
 * implement (TPM_RC_HASH) and a sizeofSelect other than its 24 PCRs' 3 bytes
 * (TPM_RC_VALUE: the reference's PCR_SELECT_MIN..PCR_SELECT_MAX), on the
 * parameter that holds it — as libtpms answers for every such parameter.
 */
function pcrSelectionParamsRc(cmd: AnyCommand, params: Record<string, unknown>): number {
  const selections = selectionParamsOf(cmd);
  for (let k = 0; k < selections.length; k++) {
    const { name, number } = selections[k]!;
    for (const sel of params[name] as readonly TPMS_PCR_SELECTION[]) {
      if (!isImplementedHash(sel.hash)) return rcForParameter(TPM_RC.HASH, number);
      if (sel.pcrSelect.length !== PCR_COUNT / 8) return rcForParameter(TPM_RC.VALUE, number);
    }
  }
  return 0;
}

const selectionParams = new Map<AnyCommand, readonly { readonly name: string; readonly number: number }[]>();

/** A command's TPML_PCR_SELECTION parameters and their numbers, found once per command (most have none). */
function selectionParamsOf(cmd: AnyCommand): readonly { readonly name: string; readonly number: number }[] {
  let found = selectionParams.get(cmd);
  if (found === undefined) {
    found = Object.keys(cmd.params).flatMap((name, i) => (cmd.params[name] === TPML_PCR_SELECTION ? [{ name, number: i + 1 }] : []));
    selectionParams.set(cmd, found);
  }
  return found;
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
  return rcForParameter(unmarshalRc(e), Math.min(i + 1, 15));
}
