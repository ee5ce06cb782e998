/**
 * Authorization sessions of one TpmEngine (Part 1 §19, §17): HMAC, policy
 * and trial sessions started by StartAuthSession (Part 3 §11.1), their
 * nonces and keys, and the policy state the policy commands (Part 3 §23)
 * build up and the engine checks when the session authorizes a command.
 *
 * Policy handlers (handlers/policy.ts) read and update a SessionState through
 * `policySessionAt`; the engine (engine.ts, authorize) checks a policy
 * session's state against the entity's authPolicy and the command.
 */
import type { KeyObject } from 'node:crypto';
import { HANDLE_RANGE, TPM_HT } from '../tpm/constants.js';
import { TPM_RC, TpmError, rcForHandle, rcForParameter } from '../tpm/rc.js';
import type { TPMT_SYM_DEF } from '../tpm/types/index.js';
import type { SavedSessionSlot } from './state.js';

export type SessionKind = 'hmac' | 'policy' | 'trial';

/**
 * The assertions a policy session has collected besides its digest
 * (Part 1 §19.7; the reference's SESSION attributes and u1/u2 fields).
 * Each is checked when the session authorizes a command (engine.ts).
 */
export interface PolicyAssertions {
  /** PolicyAuthValue: the command's HMAC uses the entity's authValue. */
  isAuthValueNeeded: boolean;
  /** PolicyPassword: the session's hmac field carries the authValue in the clear. */
  isPasswordNeeded: boolean;
  /** PolicyCommandCode: the only command this session may authorize; undefined when not set. */
  commandCode: number | undefined;
  /** PolicyCpHash (or PolicySigned/Secret with cpHashA): the command's cpHash must equal this. */
  cpHash: Uint8Array | undefined;
  /** PolicyNameHash: H(Names of the command's handles) must equal this. */
  nameHash: Uint8Array | undefined;
  /** PolicyTemplate: the hash of the template the creation command must use. */
  templateHash: Uint8Array | undefined;
  /** PolicyPCR: engine.volatile.pcrUpdateCounter when the PCRs were checked; a later change fails the use (TPM_RC_PCR_CHANGED). */
  pcrUpdateCounter: number | undefined;
  /** PolicyLocality: TPMA_LOCALITY word of allowed localities; undefined when not set. */
  commandLocality: number | undefined;
  /** PolicySigned/PolicySecret with an expiration: engine.time() in ms after which the session is expired; undefined = none. */
  timeout: bigint | undefined;
  /** PolicyPhysicalPresence. */
  isPPRequired: boolean;
  /** PolicyNvWritten: the required TPMA_NV_WRITTEN state; undefined when not set. */
  nvWrittenState: boolean | undefined;
}

export interface SessionState {
  readonly handle: number;
  readonly kind: SessionKind;
  /** TPMI_ALG_HASH of the session (HMACs, nonces, policyDigest). */
  readonly authHash: number;
  /** Part 1 §19.6.8: KDFa(sessionAlg, bind.authValue ‖ salt, "ATH", nonceTPM, nonceCaller, bits); empty when unbound and unsalted. */
  readonly sessionKey: Uint8Array;
  /** Parameter encryption algorithm (AES-CFB, XOR or NULL). */
  readonly symmetric: TPMT_SYM_DEF;
  /**
   * The Name of the bind entity of an HMAC session (Part 1 §19.6.11), or
   * undefined: unbound, or a policy session (whose bind only feeds the
   * session key; reference SessionCreate sets isBound for HMAC sessions only).
   */
  bindName: Uint8Array | undefined;
  /** The bind entity's authValue when the session started (with bindName: the reference's boundEntity). */
  bindAuthValue: Uint8Array | undefined;
  /** Bound to a DA-protected entity (reference isDaBound): lockout applies at every use, and a failure counts. */
  readonly daBound: boolean;
  /** Bound to TPM_RH_LOCKOUT (reference isLockoutBound). */
  readonly lockoutBound: boolean;
  /** The latest nonceTPM (Part 1 §19.6.3: renewed on every use); as long as the caller's first nonce. */
  nonceTPM: Uint8Array;
  /** Policy and trial sessions: the running policyDigest (Part 1 §19.7.2). */
  policyDigest: Uint8Array;
  /** Policy sessions only; reset by PolicyRestart. */
  policy: PolicyAssertions;
  /** engine.time() when the session started: the base of PolicySigned/PolicySecret expirations. */
  startTime: bigint;
  /** HMAC sessions used for audit: H(old ‖ cpHash ‖ rpHash) per audited command (Part 1 §19.6.14); undefined before the first. */
  auditDigest: Uint8Array | undefined;
}

/** A fresh set of policy assertions (after StartAuthSession and PolicyRestart, Part 3 §23.17). */
export function emptyPolicyAssertions(): PolicyAssertions {
  return {
    isAuthValueNeeded: false,
    isPasswordNeeded: false,
    commandCode: undefined,
    cpHash: undefined,
    nameHash: undefined,
    templateHash: undefined,
    pcrUpdateCounter: undefined,
    commandLocality: undefined,
    timeout: undefined,
    isPPRequired: false,
    nvWrittenState: undefined,
  };
}

/** Whether a handle is in the HMAC or policy session ranges (Part 2 §7.2). */
export function isSessionHandle(h: number): boolean {
  const t = h >>> 24;
  return t === TPM_HT.HMAC_SESSION || t === TPM_HT.POLICY_SESSION;
}

/** First handle of each session range. */
export const SESSION_HANDLE_BASE = { hmac: HANDLE_RANGE.HMAC_SESSION[0], policy: HANDLE_RANGE.POLICY_SESSION[0] } as const;

/** One of the 64 active-session slots (Part 1 §30.5): a session in TPM memory, or one whose context was saved. */
type ActiveSlot = { readonly loaded: SessionState; readonly sequence?: undefined } | { readonly loaded?: undefined; readonly sequence: bigint; readonly handle: number };

/**
 * The sessions of one engine (Part 1 §30.5, the reference's contextArray):
 * up to `active` sessions exist at once, each loaded in TPM memory (at most
 * `capacity`) or saved by ContextSave. A session's handle is its slot index
 * plus the range base of its kind, so a freed index is reused. A saved
 * session remembers the sequence of its one valid context, so that context
 * loads once (a replay finds the session loaded, or gone).
 *
 * A policy handler finds its session with `policySessionAt`; StartAuthSession,
 * FlushContext and the context commands add and remove entries.
 */
export class SessionTable {
  private readonly slots: (ActiveSlot | undefined)[];
  private loadedCount = 0;
  private sessionSequence = 0n;
  private objectSequence = 0n;
  /**
   * Saved contexts of hash/HMAC/event sequences by sequence number: node:crypto
   * cannot export a running hash, so the state stays here and the context
   * blob names it. Oldest first; at most `active` are kept.
   */
  private readonly savedSequenceObjects = new Map<bigint, unknown>();
  /** node:crypto keys of saved object contexts by sequence, so ContextLoad need not rebuild them; at most `active`. */
  private readonly savedObjectKeys = new Map<bigint, KeyObject>();
  readonly capacity: number;

  constructor(capacity: number, active = 64) {
    this.capacity = capacity;
    this.slots = Array.from({ length: active }, () => undefined);
  }

  private slotOf(handle: number): number {
    if (!isSessionHandle(handle)) return -1;
    const i = handle & 0xffffff;
    return i < this.slots.length ? i : -1;
  }

  /** The loaded session at `handle`, or undefined (saved sessions are not loaded). */
  get(handle: number): SessionState | undefined {
    const i = this.slotOf(handle);
    const s = i < 0 ? undefined : this.slots[i]?.loaded;
    return s !== undefined && s.handle === handle ? s : undefined;
  }

  /** Whether `handle` names a session whose context is saved (not loaded). */
  isSaved(handle: number): boolean {
    const i = this.slotOf(handle);
    const slot = i < 0 ? undefined : this.slots[i];
    return slot !== undefined && slot.loaded === undefined && slot.handle === handle;
  }

  /**
   * The handle a new session of `kind` gets (Part 3 §11.1).
   * @throws TpmError TPM_RC_SESSION_MEMORY when `capacity` sessions are loaded,
   * TPM_RC_SESSION_HANDLES when every active slot is taken (reference SessionCreate order).
   */
  nextHandle(kind: SessionKind): number {
    if (this.loadedCount >= this.capacity) throw new TpmError(TPM_RC.SESSION_MEMORY);
    const i = this.slots.indexOf(undefined);
    if (i < 0) throw new TpmError(TPM_RC.SESSION_HANDLES);
    return (kind === 'hmac' ? SESSION_HANDLE_BASE.hmac : SESSION_HANDLE_BASE.policy) + i;
  }

  /** Loads a new session at its handle (from nextHandle). @throws TpmError as nextHandle. */
  add(session: SessionState): void {
    if (this.loadedCount >= this.capacity) throw new TpmError(TPM_RC.SESSION_MEMORY);
    const i = this.slotOf(session.handle);
    if (i < 0 || this.slots[i] !== undefined) throw new TpmError(TPM_RC.SESSION_HANDLES);
    this.slots[i] = { loaded: session };
    this.loadedCount++;
  }

  /**
   * ContextSave of a loaded session (Part 3 §28.2): it leaves TPM memory but
   * keeps its slot; returns the sequence its context must carry.
   */
  save(handle: number): bigint {
    const i = this.slotOf(handle);
    if (i < 0 || this.get(handle) === undefined) throw new TpmError(TPM_RC.HANDLE);
    const sequence = ++this.sessionSequence;
    this.slots[i] = { sequence, handle };
    this.loadedCount--;
    return sequence;
  }

  /**
   * ContextLoad of a saved session (Part 3 §28.3): only the context saved
   * last for this handle, and only once.
   * @throws TpmError TPM_RC_HANDLE (parameter 1) for a context that is not the
   * session's current one; TPM_RC_SESSION_MEMORY when `capacity` sessions are loaded.
   */
  restore(session: SessionState, sequence: bigint): void {
    const i = this.slotOf(session.handle);
    const slot = i < 0 ? undefined : this.slots[i];
    if (slot === undefined || slot.loaded !== undefined || slot.handle !== session.handle || slot.sequence !== sequence) {
      throw new TpmError(rcForParameter(TPM_RC.HANDLE, 1));
    }
    if (this.loadedCount >= this.capacity) throw new TpmError(TPM_RC.SESSION_MEMORY);
    this.slots[i] = { loaded: session };
    this.loadedCount++;
  }

  /** The sequence of the next saved object context (Part 1 §30.3; the reference's objectContextID). */
  nextObjectSequence(): bigint {
    return ++this.objectSequence;
  }

  /** Keeps the key of a saved object context (ContextSave of an object). */
  keepObjectKey(sequence: bigint, key: KeyObject): void {
    this.savedObjectKeys.set(sequence, key);
    if (this.savedObjectKeys.size > this.slots.length) this.savedObjectKeys.delete(this.savedObjectKeys.keys().next().value!);
  }

  /** The key kept for a saved object context, or undefined (then the context's areas rebuild it). */
  objectKey(sequence: bigint): KeyObject | undefined {
    return this.savedObjectKeys.get(sequence);
  }

  /** Keeps the state of a saved sequence context (ContextSave of a sequence). */
  keepSequenceState(sequence: bigint, state: unknown): void {
    this.savedSequenceObjects.set(sequence, state);
    if (this.savedSequenceObjects.size > this.slots.length) this.savedSequenceObjects.delete(this.savedSequenceObjects.keys().next().value!);
  }

  /** The state kept for a saved sequence context, or undefined when it is gone (power cycle, or too old). */
  sequenceState(sequence: bigint): unknown {
    return this.savedSequenceObjects.get(sequence);
  }

  /** Ends a loaded or saved session (FlushContext, continueSession clear); false when there is none at `handle`. */
  remove(handle: number): boolean {
    const i = this.slotOf(handle);
    const slot = i < 0 ? undefined : this.slots[i];
    if (slot === undefined) return false;
    const h = slot.loaded !== undefined ? slot.loaded.handle : slot.handle;
    if (h !== handle) return false;
    if (slot.loaded !== undefined) this.loadedCount--;
    this.slots[i] = undefined;
    return true;
  }

  /** Loaded handles, ascending (TPM_CAP_HANDLES with TPM_HT_LOADED_SESSION). */
  handles(): number[] {
    return this.slots.flatMap((s) => (s?.loaded !== undefined ? [s.loaded.handle] : [])).sort((a, b) => a - b);
  }

  /** Saved handles, ascending (TPM_CAP_HANDLES with TPM_HT_SAVED_SESSION). */
  savedHandles(): number[] {
    return this.slots.flatMap((s) => (s !== undefined && s.loaded === undefined ? [s.handle] : [])).sort((a, b) => a - b);
  }

  /** Loaded sessions (TPM_PT_HR_LOADED). */
  get count(): number {
    return this.loadedCount;
  }

  /** Loaded and saved sessions (TPM_PT_HR_ACTIVE). */
  get activeCount(): number {
    return this.slots.filter((s) => s !== undefined).length;
  }

  /** Active-session slots (TPM_PT_ACTIVE_SESSIONS_MAX). */
  get activeCapacity(): number {
    return this.slots.length;
  }

  /** The saved sessions and the context counter, for Shutdown(STATE) (state.ts SavedState). */
  savedContexts(): { sessions: SavedSessionSlot[]; sessionSequence: bigint } {
    const sessions = this.slots.flatMap((s) => (s !== undefined && s.loaded === undefined ? [{ handle: s.handle, sequence: s.sequence }] : []));
    return { sessions, sessionSequence: this.sessionSequence };
  }

  /**
   * After a TPM Resume or Restart (Part 1 §30.5; the reference's
   * SessionStartup): the sessions saved at Shutdown(STATE) are active again,
   * their contexts loadable once; sessions that were loaded then are gone.
   */
  restoreSavedContexts(saved: { sessions: readonly SavedSessionSlot[]; sessionSequence: bigint }): void {
    for (const { handle, sequence } of saved.sessions) {
      const i = this.slotOf(handle);
      if (i >= 0 && this.slots[i] === undefined) this.slots[i] = { sequence, handle };
    }
    if (saved.sessionSequence > this.sessionSequence) this.sessionSequence = saved.sessionSequence;
  }

  /** Forgets every session, loaded or saved (_TPM_Init; a Resume or Restart brings the saved ones back, restoreSavedContexts). */
  clear(): void {
    this.slots.fill(undefined);
    this.loadedCount = 0;
    this.savedSequenceObjects.clear();
    this.savedObjectKeys.clear();
  }
}

/**
 * The loaded policy or trial session at `handle`, for a policy command's
 * policySession handle (Part 3 §23: handle 1, no authorization).
 * @throws TpmError TPM_RC_HANDLE (handle 1) when none is loaded there.
 */
export function policySessionAt(table: SessionTable, handle: number): SessionState {
  const s = table.get(handle);
  if (s === undefined || s.kind === 'hmac') throw new TpmError(rcForHandle(TPM_RC.HANDLE, 1));
  return s;
}
