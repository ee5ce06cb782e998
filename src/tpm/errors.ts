/**
 * Typed errors for every layer. One base class, a stable string `code` per
 * kind of error, details as typed fields (never only in the message).
 */

/** Every error code that trustroot's TPM core can raise. */
export type ErrorCode =
  | ParseErrorCode
  | EncodeErrorCode
  | 'tpm.rc'
  | TransportErrorCode
  | TctiErrorCode
  | 'crypto.argument'
  | 'crypto.unsupported'
  | CryptoErrorCode
  | IdentityErrorCode
  | PolicyErrorCode
  | SessionErrorCode
  | ClientErrorCode
  | EvidenceErrorCode
  | StateErrorCode
  | ProfileErrorCode;

/** Base class: `err.code` is stable and safe to switch on. */
export class TrustrootError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

export type ParseErrorCode =
  | 'parse.truncated' // input ended inside a field
  | 'parse.trailing' // bytes left over after a complete structure
  | 'parse.size' // a size field disagrees with the content it frames, or exceeds its maximum
  | 'parse.count' // a list count beyond its maximum
  | 'parse.selector' // a union selector with no variant
  | 'parse.value' // a value outside its TPMI set or range
  | 'parse.reserved' // a reserved attribute bit is set
  | 'parse.constant' // a magic value is wrong
  | 'parse.tag' // an unknown command/response tag
  | 'parse.command' // an unknown command code
  | 'parse.handle'; // a handle outside the allowed range

/** Bytes that do not decode: names the structure path and the byte offset. */
export class ParseError extends TrustrootError {
  declare readonly code: ParseErrorCode;
  /** Dotted structure path, e.g. `TPMT_PUBLIC.parameters.symmetric.keyBits`. */
  readonly path: string;
  /** Offset in the input where the failing field starts. */
  readonly offset: number;
  constructor(code: ParseErrorCode, detail: string, path: string, offset: number) {
    super(code, `${detail} at ${path || '<root>'} (offset ${offset})`);
    this.path = path;
    this.offset = offset;
  }
}

export type EncodeErrorCode = 'encode.value' | 'encode.size' | 'encode.selector';

/** A value that cannot be marshaled (out of range, too long, unknown selector). */
export class EncodeError extends TrustrootError {
  declare readonly code: EncodeErrorCode;
  readonly path: string;
  constructor(code: EncodeErrorCode, detail: string, path: string) {
    super(code, `${detail} at ${path || '<root>'}`);
    this.path = path;
  }
}

export type TransportErrorCode =
  | 'transport.timeout'
  | 'transport.aborted'
  | 'transport.closed'
  | 'transport.connect'
  | 'transport.protocol'
  | 'transport.busy'
  | 'transport.control' // a control/platform channel answered a command with a non-zero result
  | 'transport.unsupported'; // the transport cannot carry what was asked (e.g. locality 1..4 over the kernel device)

/** A transport failed to deliver a command or its response. */
export class TransportError extends TrustrootError {
  declare readonly code: TransportErrorCode;
  constructor(code: TransportErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

export type TctiErrorCode =
  | 'tcti.invalid' // a connection string or its configuration is malformed
  | 'tcti.scheme'; // no transport is registered under the scheme, or a registration is refused

/** A TCTI connection string (`swtpm:host=…,port=…`) that cannot be used. */
export class TctiError extends TrustrootError {
  declare readonly code: TctiErrorCode;
  /** The connection string as given (cut at 256 characters). */
  readonly tcti: string;
  constructor(code: TctiErrorCode, message: string, tcti: string) {
    super(code, message);
    this.tcti = tcti.length > 256 ? `${tcti.slice(0, 256)}…` : tcti;
  }
}

/** A caller passed an argument a crypto helper cannot use (e.g. a KDF length of 0). */
export class ArgumentError extends TrustrootError {
  declare readonly code: 'crypto.argument';
  constructor(message: string) {
    super('crypto.argument', message);
  }
}

/** A TPM algorithm that is valid but that this runtime cannot compute (e.g. SM3 when OpenSSL lacks it). */
export class UnsupportedAlgorithmError extends TrustrootError {
  declare readonly code: 'crypto.unsupported';
  /** The TPM_ALG_ID that was asked for. */
  readonly alg: number;
  constructor(alg: number, message: string) {
    super('crypto.unsupported', message);
    this.alg = alg;
  }
}

export type CryptoErrorCode =
  | 'crypto.key' // a key unusable for the operation: wrong type, attributes, scheme or curve, or a private key that does not match its public area
  | 'crypto.decrypt' // a secret that does not decrypt: OAEP failure, a point off the curve, a wrong size (a TPM answers TPM_RC_VALUE / TPM_RC_ECC_POINT)
  | 'crypto.integrity'; // an integrity HMAC that does not match (a TPM answers TPM_RC_INTEGRITY)

/** A key, secret or wrapped blob rejected by the protection math (secret.ts, credential.ts, duplication.ts). */
export class CryptoError extends TrustrootError {
  declare readonly code: CryptoErrorCode;
  constructor(code: CryptoErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

export type PolicyErrorCode = 'policy.argument'; // a policy command's argument that the TPM (or a sane policy) refuses

/**
 * A policy-digest update given an argument the TPM would refuse (PolicyOR with
 * 1 or 9 branches, a cpHashA of the wrong size) or that makes the policy
 * unsatisfiable. Names the policy command and its Part 3 parameter.
 */
export class PolicyError extends TrustrootError {
  declare readonly code: PolicyErrorCode;
  /** The policy command, e.g. `PolicyOR`. */
  readonly command: string;
  /** The argument, by its Part 3 parameter name (e.g. `pHashList`), or `policyDigest` for the running digest. */
  readonly parameter: string;
  constructor(command: string, parameter: string, message: string, options?: { cause?: unknown }) {
    super('policy.argument', `${command}: ${parameter}: ${message}`, options);
    this.command = command;
    this.parameter = parameter;
  }
}

export type SessionErrorCode =
  | 'session.invalid' // a session use the TPM would refuse, or a handle without the Name a session needs; refused before sending
  | 'session.closed' // the session was flushed, ended by continueSession = false, or broken by a bad response
  | 'session.hmac'; // a response authorization does not verify (HMAC, nonce or password-session fields)

/**
 * An authorization session problem found by the caller's side (a TPM's own
 * refusals are TpmErrors). `sessionIndex` is the position in the command's
 * authorization area (0-based) when one session is at fault.
 */
export class SessionError extends TrustrootError {
  declare readonly code: SessionErrorCode;
  readonly sessionIndex?: number;
  constructor(code: SessionErrorCode, message: string, options?: { sessionIndex?: number; cause?: unknown }) {
    super(code, message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    if (options?.sessionIndex !== undefined) this.sessionIndex = options.sessionIndex;
  }
}

export type ClientErrorCode =
  | 'client.pcrs-changed' // PCRs changed between a quote and the read of their values, on every attempt
  | 'client.argument' // an argument a high-level operation refuses before sending (wrong key kind, oversize data, a label without its NUL)
  | 'client.name' // a Name the TPM returned differs from the Name computed from the public area the client checked
  | 'client.response'; // a TPM answer that decodes but does not fit the request (a public area unlike the template, no progress in a loop)

/**
 * A high-level client operation (src/client) refused an argument, found the
 * TPM's answer inconsistent with what was asked or with itself, or found the
 * TPM's state moving under it (another process extending PCRs between a
 * Quote and the PCR_Read that should match it).
 */
export class ClientError extends TrustrootError {
  declare readonly code: ClientErrorCode;
  constructor(code: ClientErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

export type IdentityErrorCode =
  | 'identity.argument' // a template or option the EK/AK operations refuse before sending (an AK that is not a restricted signing key)
  | 'identity.mismatch' // a public area the TPM holds or returned differs from the template it must follow, or its Name from the one computed
  | 'identity.policy' // an EK authPolicy that is none of the EK Credential Profile's policies, so no session can satisfy it here
  | 'identity.certificate'; // an EK certificate NV Index that cannot be read or holds no complete DER certificate

/**
 * The endorsement and attestation keys (src/client/ek.ts, ak.ts): an EK or
 * AK that does not match its template, an EK policy this client cannot
 * satisfy, an EK certificate index without a certificate. `handle` names the
 * persistent handle, transient object or NV Index concerned, `fields` the
 * template fields that differ.
 */
export class IdentityError extends TrustrootError {
  declare readonly code: IdentityErrorCode;
  readonly handle?: number;
  readonly fields?: readonly string[];
  constructor(code: IdentityErrorCode, message: string, options?: { handle?: number; fields?: readonly string[]; cause?: unknown }) {
    super(code, message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    if (options?.handle !== undefined) this.handle = options.handle;
    if (options?.fields !== undefined) this.fields = [...options.fields];
  }
}

export type EvidenceErrorCode =
  | 'evidence.eventlog' // a TCG PC Client event log that does not parse (truncated, sizes beyond the log, bad Spec ID event, unknown algorithm)
  | 'evidence.ima' // an IMA measurement list (binary or ASCII) that does not parse
  | 'evidence.certificate' // an EK or CA certificate that does not parse, even leniently
  | 'evidence.policy' // an attestation policy document that does not validate against its schema
  | 'evidence.file' // an evidence file (PCR values JSON, clockInfo JSON, a bundle) in no format we read
  | 'evidence.argument'; // an argument a verifier function refuses (an empty challenge, a key of the wrong kind)

/**
 * Evidence a verifier (src/attest) cannot read: the parsers of event logs,
 * IMA lists, certificates and policies throw this, never an untyped error.
 * `offset` is the byte (or line, for text forms) where reading failed, when known.
 * A verification that reads its input but rejects it returns a Verdict instead.
 */
export class EvidenceError extends TrustrootError {
  declare readonly code: EvidenceErrorCode;
  readonly offset?: number;
  constructor(code: EvidenceErrorCode, message: string, options?: { offset?: number; cause?: unknown }) {
    super(code, message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    if (options?.offset !== undefined) this.offset = options.offset;
  }
}

export type StateErrorCode =
  | 'state.missing' // no state file (or folder) and the caller did not ask to manufacture a new TPM
  | 'state.corrupt' // a state file that does not parse: bad header, bad JSON, a tag that does not decode, a truncated payload
  | 'state.checksum' // the payload's SHA-256 differs from the one recorded in the file
  | 'state.version' // a file format or state version this build does not know
  | 'state.value' // a state value the file format cannot hold (a function, NaN, a class instance, a key starting with `$`)
  | 'state.locked' // another live process (or another store in this one) holds the state folder's lock
  | 'state.io'; // the file system refused a read, write, fsync or rename

/**
 * The software TPM's durable state (src/simulator/store.ts) cannot be loaded,
 * saved or locked. A damaged file is always an error, never a fresh TPM.
 * `path` is the file or folder concerned.
 */
export class StateError extends TrustrootError {
  declare readonly code: StateErrorCode;
  readonly path: string;
  constructor(code: StateErrorCode, message: string, path: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.path = path;
  }
}

export type ProfileErrorCode =
  | 'profile.unknown' // no software TPM profile has that name
  | 'profile.invalid' // a profile asks for what the software TPM cannot do (an algorithm, size or curve it lacks, a limit out of range)
  | 'profile.mismatch'; // a state manufactured under one profile opened with another (a TPM's algorithm set never changes)

/** A software TPM profile (src/simulator/profiles.ts) that cannot be used; `profile` is the name concerned. */
export class ProfileError extends TrustrootError {
  declare readonly code: ProfileErrorCode;
  readonly profile: string;
  constructor(code: ProfileErrorCode, message: string, profile: string) {
    super(code, message);
    this.profile = profile;
  }
}
