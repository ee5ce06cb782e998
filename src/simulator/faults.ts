/**
 * Fault injection — a TEST-ONLY engine option (TpmEngineOptions.faults).
 *
 * Real TPMs answer "not now" (TPM_RC_RETRY, TPM_RC_YIELDED), run out of
 * object or session slots, lock out, fail their self-tests, and ship EK
 * certificates with NV padding. Clients and verifiers must cope with all of
 * that, so their tests need a TPM that does it on demand. None of this belongs
 * in a TPM anyone relies on: a production engine is made without `faults`.
 *
 * The engine makes one call per command (`FaultInjector.intercept`) right
 * after it knows the command code; everything else here acts on an engine's
 * state directly (`enterLockout`, `corruptNvIndex`) or is read where an EK
 * certificate is written (`padEkCertificate`, manufacture.ts).
 */
import { GetTestResult } from '../tpm/commands/index.js';
import { TPM_CC, TPM_HT } from '../tpm/constants.js';
import { encodeErrorResponse, encodeResponseParams, frameResponse } from '../tpm/frame.js';
import { TPM_RC, TpmError } from '../tpm/rc.js';
import type { SimulatorState } from './state.js';

/** A warning answered instead of running the command (Part 2 §6.6.3: the command did nothing, resend it). */
export interface RetryFault {
  /** TPM_RC_RETRY (default) or TPM_RC_YIELDED. */
  readonly rc?: typeof TPM_RC.RETRY | typeof TPM_RC.YIELDED;
  /** How many commands get the warning before commands run normally again. */
  readonly times: number;
  /** Only these command codes get it (and count); all commands when omitted. */
  readonly commands?: readonly number[];
}

/** The fault option of an engine (TEST ONLY, see the module comment). */
export interface FaultOptions {
  /** Answer TPM_RC_RETRY / TPM_RC_YIELDED a number of times before running commands. */
  readonly retry?: RetryFault;
  /** The next N commands that need an object slot answer TPM_RC_OBJECT_MEMORY (Part 2 §6.6.3). */
  readonly objectMemory?: number;
  /** The next N commands that need a session slot answer TPM_RC_SESSION_MEMORY. */
  readonly sessionMemory?: number;
  /** Start in failure mode with this reason (see FaultInjector.enterFailureMode). */
  readonly failureMode?: string;
  /**
   * Trailing zero bytes after the DER of each EK certificate this engine
   * writes into its NV index, as some real TPMs store them (the index is
   * larger than the certificate). At most 512.
   */
  readonly ekCertificatePadding?: number;
}

/** Largest padding the option allows (see the constructor). */
const MAX_EK_CERTIFICATE_PADDING = 512;

/** Commands that load an object into a slot (Part 3: each can answer TPM_RC_OBJECT_MEMORY). */
const OBJECT_SLOT_COMMANDS: ReadonlySet<number> = new Set([
  TPM_CC.CreatePrimary,
  TPM_CC.Load,
  TPM_CC.LoadExternal,
  TPM_CC.CreateLoaded,
  TPM_CC.HashSequenceStart,
  TPM_CC.HMAC_Start,
]);

/** Offset of TPMS_CONTEXT.savedHandle in a ContextLoad command: header (10) + sequence (UINT64). */
const CONTEXT_SAVED_HANDLE_OFFSET = 18;

/**
 * Whether a command needs a slot of the given kind. ContextLoad needs an
 * object or a session slot depending on the saved handle's type.
 */
function needsSlot(kind: 'object' | 'session', code: number, bytes: Uint8Array): boolean {
  if (code === TPM_CC.ContextLoad) {
    if (bytes.length < CONTEXT_SAVED_HANDLE_OFFSET + 1) return false;
    const type = bytes[CONTEXT_SAVED_HANDLE_OFFSET]!;
    const session = type === TPM_HT.HMAC_SESSION || type === TPM_HT.POLICY_SESSION;
    return kind === 'session' ? session : !session;
  }
  return kind === 'object' ? OBJECT_SLOT_COMMANDS.has(code) : code === TPM_CC.StartAuthSession;
}

/**
 * The mutable fault state of one engine. Tests change it between commands
 * (engine.faults.retry(...), enterFailureMode(...)) to inject faults on demand.
 */
export class FaultInjector {
  #retry: { rc: number; left: number; commands: ReadonlySet<number> | undefined } | undefined;
  #objectMemory: number;
  #sessionMemory: number;
  #failure: string | undefined;
  readonly ekCertificatePadding: number;

  constructor(options: FaultOptions = {}) {
    if (options.retry !== undefined) this.retry(options.retry);
    this.#objectMemory = count(options.objectMemory ?? 0, 'objectMemory');
    this.#sessionMemory = count(options.sessionMemory ?? 0, 'sessionMemory');
    this.#failure = options.failureMode;
    this.ekCertificatePadding = count(options.ekCertificatePadding ?? 0, 'ekCertificatePadding');
    // The index must stay within TPM_PT_NV_INDEX_MAX (2048) with an RSA-2048 EK certificate (about 1 KiB).
    if (this.ekCertificatePadding > MAX_EK_CERTIFICATE_PADDING) throw new RangeError(`faults.ekCertificatePadding must be at most ${MAX_EK_CERTIFICATE_PADDING}`);
  }

  /** Answer a warning `times` more times (replaces any retry fault still pending). */
  retry(fault: RetryFault): void {
    const rc = fault.rc ?? TPM_RC.RETRY;
    if (rc !== TPM_RC.RETRY && rc !== TPM_RC.YIELDED) throw new RangeError('faults.retry.rc must be TPM_RC_RETRY or TPM_RC_YIELDED');
    this.#retry = { rc, left: count(fault.times, 'retry.times'), commands: fault.commands === undefined ? undefined : new Set(fault.commands) };
  }

  /** The next `n` commands that need an object slot answer TPM_RC_OBJECT_MEMORY. */
  exhaustObjectMemory(n: number): void {
    this.#objectMemory = count(n, 'objectMemory');
  }

  /** The next `n` commands that need a session slot answer TPM_RC_SESSION_MEMORY. */
  exhaustSessionMemory(n: number): void {
    this.#sessionMemory = count(n, 'sessionMemory');
  }

  /**
   * Failure mode (Part 1 §12.3, Part 3 §10.4): every command but GetTestResult
   * and GetCapability answers TPM_RC_FAILURE; GetTestResult answers
   * testResult TPM_RC_FAILURE with the reason as outData. Lasts until the
   * engine is made again (a real TPM leaves it only through a reset).
   */
  enterFailureMode(reason: string): void {
    this.#failure = reason;
  }

  /** The failure-mode reason, or undefined when the engine is not in failure mode. */
  get failureMode(): string | undefined {
    return this.#failure;
  }

  /** Warnings still to answer. */
  get retriesLeft(): number {
    return this.#retry?.left ?? 0;
  }

  /**
   * The engine's one call per command, after the header and command code
   * are checked: the response to send instead of running the command, or
   * undefined to run it normally.
   */
  intercept(code: number, bytes: Uint8Array): Uint8Array | undefined {
    if (this.#failure !== undefined) {
      if (code === TPM_CC.GetCapability) return undefined;
      if (code === TPM_CC.GetTestResult) {
        const params = encodeResponseParams(GetTestResult, { outData: new TextEncoder().encode(this.#failure), testResult: TPM_RC.FAILURE });
        return frameResponse(GetTestResult, {} as never, params);
      }
      return encodeErrorResponse(TPM_RC.FAILURE);
    }
    const r = this.#retry;
    if (r !== undefined && r.left > 0 && (r.commands === undefined || r.commands.has(code))) {
      r.left--;
      return encodeErrorResponse(r.rc);
    }
    if (this.#objectMemory > 0 && needsSlot('object', code, bytes)) {
      this.#objectMemory--;
      return encodeErrorResponse(TPM_RC.OBJECT_MEMORY);
    }
    if (this.#sessionMemory > 0 && needsSlot('session', code, bytes)) {
      this.#sessionMemory--;
      return encodeErrorResponse(TPM_RC.SESSION_MEMORY);
    }
    return undefined;
  }
}

function count(n: number, what: string): number {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`faults.${what} must be a non-negative integer, got ${n}`);
  return n;
}

/**
 * Puts the TPM into dictionary-attack lockout now (Part 1 §19.8.6):
 * failedTries reaches maxTries, and with `lockoutAuth` lockoutAuth is locked
 * too. The state changes in memory; a caller with a store saves it.
 */
export function enterLockout(state: SimulatorState, options: { lockoutAuth?: boolean } = {}): void {
  const da = state.dictionaryAttack;
  da.failedTries = Math.max(da.failedTries, da.maxTries);
  if (options.lockoutAuth === true) da.lockoutAuthLocked = true;
}

/**
 * Corrupts the data of a defined NV index in place: XORs the byte at each
 * offset (default: the first) with `mask` (default 0xff), as a failing NV
 * cell would. Written data only; the index's public area stays as it was.
 * @throws TpmError TPM_RC_HANDLE when the index is not defined, TPM_RC_NV_RANGE when an offset is outside its data.
 */
export function corruptNvIndex(state: SimulatorState, nvIndex: number, options: { offsets?: readonly number[]; mask?: number } = {}): void {
  const nv = state.nvIndices.find((n) => n.nvIndex === nvIndex);
  if (nv === undefined) throw new TpmError(TPM_RC.HANDLE);
  const mask = options.mask ?? 0xff;
  if (!Number.isInteger(mask) || mask < 1 || mask > 0xff) throw new RangeError(`corruptNvIndex mask must be 1..255, got ${mask}`);
  const offsets = options.offsets ?? [0];
  for (const o of offsets) if (!Number.isInteger(o) || o < 0 || o >= nv.data.length) throw new TpmError(TPM_RC.NV_RANGE);
  // A copy: the data may be shared with a saved snapshot of the state.
  const data = new Uint8Array(nv.data);
  for (const o of offsets) data[o] = data[o]! ^ mask;
  nv.data = data;
}

/** The EK certificate as an index stores it: the DER, then `padding` zero bytes. */
export function padEkCertificate(der: Uint8Array, padding: number): Uint8Array {
  if (padding === 0) return der;
  const out = new Uint8Array(der.length + padding);
  out.set(der);
  return out;
}
