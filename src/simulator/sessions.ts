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
import { HANDLE_RANGE, TPM_HT } from '../tpm/constants.js';
import { TPM_RC, TpmError, rcForHandle } from '../tpm/rc.js';
import type { TPMT_SYM_DEF } from '../tpm/types/index.js';

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
  /** The Name of the bind entity (Part 1 §19.6.10), or undefined for an unbound session. */
  readonly bindName: Uint8Array | undefined;
  /** The latest nonceTPM (Part 1 §19.6.3: renewed on every use). */
  nonceTPM: Uint8Array;
  /** Policy and trial sessions: the running policyDigest (Part 1 §19.7.2). */
  policyDigest: Uint8Array;
  /** Policy sessions only; reset by PolicyRestart. */
  policy: PolicyAssertions;
  /** engine.time() when the session started: the base of PolicySigned/PolicySecret expirations. */
  startTime: bigint;
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

/**
 * The loaded sessions of one engine. A policy handler finds its session
 * with `policySessionAt`; StartAuthSession, FlushContext and the context
 * commands add and remove entries.
 */
export class SessionTable {
  private readonly loaded = new Map<number, SessionState>();
  readonly capacity: number;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  get(handle: number): SessionState | undefined {
    return this.loaded.get(handle);
  }

  /** @throws TpmError TPM_RC_SESSION_MEMORY when `capacity` sessions are loaded (Part 3 §11.1). */
  add(session: SessionState): void {
    if (this.loaded.size >= this.capacity) throw new TpmError(TPM_RC.SESSION_MEMORY);
    this.loaded.set(session.handle, session);
  }

  remove(handle: number): boolean {
    return this.loaded.delete(handle);
  }

  /** Loaded handles, ascending (TPM_CAP_HANDLES). */
  handles(): number[] {
    return [...this.loaded.keys()].sort((a, b) => a - b);
  }

  get count(): number {
    return this.loaded.size;
  }

  clear(): void {
    this.loaded.clear();
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
