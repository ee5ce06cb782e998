/**
 * Authorization sessions as objects (Part 1 §19 "Authorizations and
 * Acknowledgments"): a password, or an HMAC / policy / trial session started
 * on a TPM. A session object tracks what the caller must remember between
 * commands (nonceTPM, the session key, whether it is still open, an audit
 * digest); the Tpm asks it for nonces and HMACs through the core's
 * session-crypto and updates it from every response it has verified.
 *
 * Per-use attributes (continueSession, decrypt, encrypt, audit) are given per
 * command with `session.use({ … })`; passing the session itself means
 * `continueSession` only.
 */
import { TPM_ALG } from '../tpm/constants.js';
import { SessionError } from '../tpm/errors.js';
import type { TPMT_SYM_DEF } from '../tpm/types/index.js';

/** StartAuthSession's sessionType (Part 2 §6.11 TPM_SE), by name. */
export type SessionType = 'hmac' | 'policy' | 'trial';

/** TPMA_SESSION bits a caller chooses per command (Part 2 §8.4). */
export interface SessionAttributes {
  /** Keep the session open after this command (default true). */
  readonly continueSession?: boolean;
  /** Encrypt the first command parameter (it must be a TPM2B). */
  readonly decrypt?: boolean;
  /** Have the TPM encrypt the first response parameter (it must be a TPM2B). */
  readonly encrypt?: boolean;
  /** Extend this session's audit digest with cpHash and rpHash. */
  readonly audit?: boolean;
  /** Ask the TPM to fail the command unless this audit session is exclusive. */
  readonly auditExclusive?: boolean;
  /** Restart the audit digest at zeros before this command. */
  readonly auditReset?: boolean;
}

/** One use of a session in one command. */
export interface SessionUse {
  readonly session: PasswordSession | AuthSession;
  readonly attributes: Required<SessionAttributes>;
}

function fullAttributes(a: SessionAttributes): Required<SessionAttributes> {
  for (const [k, v] of Object.entries(a)) {
    if (v !== undefined && typeof v !== 'boolean') throw new SessionError('session.invalid', `session attribute ${k} must be a boolean`);
  }
  return {
    continueSession: a.continueSession ?? true,
    decrypt: a.decrypt ?? false,
    encrypt: a.encrypt ?? false,
    audit: a.audit ?? false,
    auditExclusive: a.auditExclusive ?? false,
    auditReset: a.auditReset ?? false,
  };
}

/**
 * A password authorization (TPM_RS_PW, Part 1 §19.8.4): the authValue travels
 * in clear. Without an explicit authValue, the authValue of the entity being
 * authorized is used. A password can only authorize; `use()` exists so that a
 * caller can ask for encrypt/decrypt/audit and be refused clearly.
 */
export class PasswordSession {
  readonly kind = 'password' as const;
  /** The password, or undefined for "the entity's authValue". */
  readonly authValue: Uint8Array | undefined;
  constructor(authValue?: Uint8Array) {
    if (authValue !== undefined && !(authValue instanceof Uint8Array)) throw new SessionError('session.invalid', 'a password must be a Uint8Array');
    this.authValue = authValue?.slice();
  }
  use(attributes: SessionAttributes = {}): SessionUse {
    return { session: this, attributes: fullAttributes(attributes) };
  }
}

/** A password authorization; without an argument, the authorized entity's own authValue. */
export function password(authValue?: Uint8Array): PasswordSession {
  return new PasswordSession(authValue);
}

/** Internal state of a started session; only the Tpm that started it reads and updates it. */
export interface SessionState {
  /** Identifies the Tpm that owns the session. */
  readonly owner: object;
  nonceTPM: Uint8Array;
  /** The caller's nonce of the last command (or of StartAuthSession). */
  nonceCaller: Uint8Array;
  readonly sessionKey: Uint8Array;
  /** Name and authValue of the bind entity of a bound HMAC session; cleared when the session becomes an audit session (reference InitAuditSession). */
  bind: { readonly name: Uint8Array; readonly authValue: Uint8Array } | undefined;
  status: 'open' | 'closed' | 'broken';
  /** The audit digest once the session has been used for audit. */
  auditDigest: Uint8Array | undefined;
  /** Policy sessions: PolicyAuthValue was run (the authValue joins the HMAC key). */
  policyAuthValue: boolean;
  /** Policy sessions: PolicyPassword was run (the authValue is sent in clear). */
  policyPassword: boolean;
  readonly flush: () => Promise<void>;
}

const states = new WeakMap<AuthSession, SessionState>();

/** @internal The state behind a session object (for the Tpm that started it). */
export function sessionState(s: AuthSession): SessionState {
  const st = states.get(s);
  if (st === undefined) throw new SessionError('session.invalid', 'not a session started by a Tpm');
  return st;
}

export interface AuthSessionInit {
  readonly handle: number;
  readonly type: SessionType;
  readonly hashAlg: number;
  readonly symmetric: TPMT_SYM_DEF;
  readonly salted: boolean;
  readonly bound: boolean;
}

/**
 * An HMAC, policy or trial session on a TPM (Part 1 §19.6). Created by
 * `Tpm.startAuthSession`; closed by `flush()`, by a command sent with
 * `continueSession: false`, or (as broken) by a response that did not verify.
 */
export class AuthSession {
  readonly kind = 'session' as const;
  readonly handle: number;
  /** A session's Name is its handle (Part 1 §16.2). */
  readonly name: Uint8Array;
  readonly type: SessionType;
  readonly hashAlg: number;
  readonly symmetric: TPMT_SYM_DEF;
  readonly salted: boolean;
  /** Started with a bind entity. */
  readonly bound: boolean;

  /** @internal Use Tpm.startAuthSession. */
  constructor(init: AuthSessionInit, state: SessionState) {
    this.handle = init.handle;
    this.name = new Uint8Array([init.handle >>> 24, (init.handle >>> 16) & 0xff, (init.handle >>> 8) & 0xff, init.handle & 0xff]);
    this.type = init.type;
    this.hashAlg = init.hashAlg;
    this.symmetric = init.symmetric;
    this.salted = init.salted;
    this.bound = init.bound;
    states.set(this, state);
  }

  /** This session with per-command attributes, e.g. `s.use({ decrypt: true })`. */
  use(attributes: SessionAttributes = {}): SessionUse {
    return { session: this, attributes: fullAttributes(attributes) };
  }

  /** True until flushed, ended by continueSession = false, or broken. */
  get isOpen(): boolean {
    return sessionState(this).status === 'open';
  }

  /** 'broken' after a response that did not verify: its nonces can no longer be trusted. */
  get status(): 'open' | 'closed' | 'broken' {
    return sessionState(this).status;
  }

  /** The caller's nonce of the last command that used the session, or of StartAuthSession (a copy). */
  get nonceCaller(): Uint8Array {
    return sessionState(this).nonceCaller.slice();
  }

  /** The TPM's latest nonce (a copy). */
  get nonceTPM(): Uint8Array {
    return sessionState(this).nonceTPM.slice();
  }

  /** Whether the session can encrypt parameters (its symmetric algorithm is not NULL). */
  get canEncrypt(): boolean {
    return this.symmetric.algorithm !== TPM_ALG.NULL;
  }

  /**
   * The audit digest this client computed, H(old ‖ cpHash ‖ rpHash) per
   * audited command (Part 1 §19.6.14), or undefined before the first audited
   * command. Compare with GetSessionAuditDigest's TPMS_SESSION_AUDIT_INFO.sessionDigest.
   */
  get auditDigest(): Uint8Array | undefined {
    return sessionState(this).auditDigest?.slice();
  }

  /** Flushes the session from the TPM (no-op when already closed). */
  flush(): Promise<void> {
    return sessionState(this).flush();
  }

  /** `await using s = await tpm.startAuthSession(…)` flushes the session at the end of the block. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.flush();
  }
}
