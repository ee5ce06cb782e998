/**
 * TPM response codes (Part 2 §6.6 "TPM_RC", rev 1.59) and a total decoder for
 * any 32-bit value that can show up where a response code is expected: TPM
 * 2.0 format-0, format-1 and warning codes, TPM 1.2-style codes, and the
 * layered codes of TSS software stacks and resource managers.
 *
 * Values: tpm2-software/tpm2-tss include/tss2/tss2_tpm2_types.h and
 * tss2_common.h (cross-checked with ms-tpm-20-ref TpmTypes.h). Descriptions
 * are our own, written for the caller who has to react to the code.
 */
import { TPM_CC, constantName, type ValueOf } from './constants.js';
import { TrustrootError } from './errors.js';

// ---------------------------------------------------------------------------
// Bit layout (Part 2 §6.6.1, Table "Format-Zero/Format-One Response Codes")
// ---------------------------------------------------------------------------

/** Set in every TPM 2.0 format-0 code (bit 8, "V"); clear means a TPM 1.2 code. */
export const RC_VER1 = 0x100;
/** Set in every format-1 code (bit 7, "F"): the low 6 bits plus this are the error. */
export const RC_FMT1 = 0x080;
/** Warning base: VER1 with the severity bit 11 ("S") set. */
export const RC_WARN = 0x900;
/** Format-0 bit 10 ("T"): the code is vendor-defined, not TCG-defined. */
export const RC_VENDOR = 0x400;
/** Format-0 bit 11 ("S"): the code is a warning, not an error. */
export const RC_SEVERITY = 0x800;
/** Largest format-0 error number: VER1 + 0x7F. */
export const RC_MAX_FM0 = RC_VER1 + 0x07f;

/** Format-1: no P, no session bit — the N field names a handle (1..7; 0 = unspecified). */
export const TPM_RC_H = 0x000;
/** Format-1 bit 6 ("P"): the N field names a parameter (1..15). */
export const TPM_RC_P = 0x040;
/** Format-1 bit 11 when P is clear: the N field names a session (1..7). */
export const TPM_RC_S = 0x800;
/** Format-1 N field, bits 8..11. */
export const TPM_RC_N_MASK = 0xf00;
/** Shift of the N field. */
export const TPM_RC_N_SHIFT = 8;

// ---------------------------------------------------------------------------
// The codes
// ---------------------------------------------------------------------------

/**
 * TPM_RC values. Format-1 entries are the base codes (no handle, parameter or
 * session number); compare errors with {@link isRc}, never with `===` on the raw rc.
 */
export const TPM_RC = {
  SUCCESS: 0x000,
  /** Same value as TPM 1.2's TPM_BADTAG, so either family can answer an unknown tag. */
  BAD_TAG: 0x01e,

  // Format 0: RC_VER1 + n
  INITIALIZE: 0x100,
  FAILURE: 0x101,
  SEQUENCE: 0x103,
  PRIVATE: 0x10b,
  HMAC: 0x119,
  DISABLED: 0x120,
  EXCLUSIVE: 0x121,
  AUTH_TYPE: 0x124,
  AUTH_MISSING: 0x125,
  POLICY: 0x126,
  PCR: 0x127,
  PCR_CHANGED: 0x128,
  UPGRADE: 0x12d,
  TOO_MANY_CONTEXTS: 0x12e,
  AUTH_UNAVAILABLE: 0x12f,
  REBOOT: 0x130,
  UNBALANCED: 0x131,
  COMMAND_SIZE: 0x142,
  COMMAND_CODE: 0x143,
  AUTHSIZE: 0x144,
  AUTH_CONTEXT: 0x145,
  NV_RANGE: 0x146,
  NV_SIZE: 0x147,
  NV_LOCKED: 0x148,
  NV_AUTHORIZATION: 0x149,
  NV_UNINITIALIZED: 0x14a,
  NV_SPACE: 0x14b,
  NV_DEFINED: 0x14c,
  BAD_CONTEXT: 0x150,
  CPHASH: 0x151,
  PARENT: 0x152,
  NEEDS_TEST: 0x153,
  NO_RESULT: 0x154,
  SENSITIVE: 0x155,

  // Format 1: RC_FMT1 + n (base codes)
  ASYMMETRIC: 0x081,
  ATTRIBUTES: 0x082,
  HASH: 0x083,
  VALUE: 0x084,
  HIERARCHY: 0x085,
  KEY_SIZE: 0x087,
  MGF: 0x088,
  MODE: 0x089,
  TYPE: 0x08a,
  HANDLE: 0x08b,
  KDF: 0x08c,
  RANGE: 0x08d,
  AUTH_FAIL: 0x08e,
  NONCE: 0x08f,
  PP: 0x090,
  SCHEME: 0x092,
  SIZE: 0x095,
  SYMMETRIC: 0x096,
  TAG: 0x097,
  SELECTOR: 0x098,
  INSUFFICIENT: 0x09a,
  SIGNATURE: 0x09b,
  KEY: 0x09c,
  POLICY_FAIL: 0x09d,
  INTEGRITY: 0x09f,
  TICKET: 0x0a0,
  RESERVED_BITS: 0x0a1,
  BAD_AUTH: 0x0a2,
  EXPIRED: 0x0a3,
  POLICY_CC: 0x0a4,
  BINDING: 0x0a5,
  CURVE: 0x0a6,
  ECC_POINT: 0x0a7,
  /** Added after rev 1.59 (present in ms-tpm-20-ref and tpm2-tss). */
  FW_LIMITED: 0x0a8,
  /** Added after rev 1.59 (present in ms-tpm-20-ref and tpm2-tss). */
  SVN_LIMITED: 0x0a9,

  // Warnings: RC_WARN + n
  CONTEXT_GAP: 0x901,
  OBJECT_MEMORY: 0x902,
  SESSION_MEMORY: 0x903,
  MEMORY: 0x904,
  SESSION_HANDLES: 0x905,
  OBJECT_HANDLES: 0x906,
  LOCALITY: 0x907,
  YIELDED: 0x908,
  CANCELED: 0x909,
  TESTING: 0x90a,
  REFERENCE_H0: 0x910,
  REFERENCE_H1: 0x911,
  REFERENCE_H2: 0x912,
  REFERENCE_H3: 0x913,
  REFERENCE_H4: 0x914,
  REFERENCE_H5: 0x915,
  REFERENCE_H6: 0x916,
  REFERENCE_S0: 0x918,
  REFERENCE_S1: 0x919,
  REFERENCE_S2: 0x91a,
  REFERENCE_S3: 0x91b,
  REFERENCE_S4: 0x91c,
  REFERENCE_S5: 0x91d,
  REFERENCE_S6: 0x91e,
  NV_RATE: 0x920,
  LOCKOUT: 0x921,
  RETRY: 0x922,
  NV_UNAVAILABLE: 0x923,
  NOT_USED: 0x97f,
} as const;
export type TpmRcName = keyof typeof TPM_RC;
export type TPM_RC_VALUE = ValueOf<typeof TPM_RC>;

/** One line per code: what it means for the caller. The Record type makes a missing entry a compile error. */
export const TPM_RC_DESCRIPTIONS: Readonly<Record<TpmRcName, string>> = {
  SUCCESS: 'the command completed',
  BAD_TAG: 'the command tag is not one the TPM knows (a TPM 1.2 answers every TPM 2.0 command this way)',

  INITIALIZE: 'the TPM has not been started with TPM2_Startup, or Startup was sent a second time',
  FAILURE: 'an internal operation failed; usually the TPM is in failure mode and only answers GetTestResult and GetCapability (libtpms also answers it for some bad secrets without entering failure mode)',
  SEQUENCE: 'a hash/HMAC/event sequence handle was used with the wrong command',
  PRIVATE: 'reserved code that current TPMs do not return',
  HMAC: 'reserved code that current TPMs do not return',
  DISABLED: 'the command is disabled on this TPM',
  EXCLUSIVE: 'the exclusive audit session was broken by another command in between',
  AUTH_TYPE: 'this kind of authorization handle is not allowed for the command',
  AUTH_MISSING: 'a handle that needs authorization was sent without a session for it',
  POLICY: 'a policy computation failed or the authPolicy value is malformed',
  PCR: 'the current PCR values do not match what the policy session recorded',
  PCR_CHANGED: 'PCRs changed after the policy session checked them; restart the policy',
  UPGRADE: 'the TPM is in field-upgrade mode (or, for FieldUpgradeData, is not)',
  TOO_MANY_CONTEXTS: 'the context-save counter is exhausted; the TPM must be reset',
  AUTH_UNAVAILABLE: "the entity's authValue or authPolicy cannot be used in this role",
  REBOOT: 'the TPM needs _TPM_Init and Startup(CLEAR) before it accepts anything else',
  UNBALANCED: 'the name/hash algorithm is weaker than the symmetric key it should protect',
  COMMAND_SIZE: 'commandSize disagrees with the bytes received or is too small for a header',
  COMMAND_CODE: 'the TPM does not implement this command',
  AUTHSIZE: 'authorizationSize is out of range or does not match the sessions it frames',
  AUTH_CONTEXT: 'a session was attached to a command that takes no authorization',
  NV_RANGE: 'offset plus size runs past the end of the NV index',
  NV_SIZE: 'the requested NV index size is larger than this TPM allows',
  NV_LOCKED: 'the NV index is locked for this kind of access',
  NV_AUTHORIZATION: 'the NV access authorization failed (this does not count toward lockout)',
  NV_UNINITIALIZED: 'the NV index has never been written, or saved state could not be restored',
  NV_SPACE: 'not enough NV memory to define the index or persist the object',
  NV_DEFINED: 'the NV index or persistent handle is already in use',
  BAD_CONTEXT: 'the saved context given to ContextLoad is not valid for this TPM and boot',
  CPHASH: 'the policy session already holds a different cpHash, or it does not match this command',
  PARENT: 'the handle given as parent cannot act as a parent',
  NEEDS_TEST: 'an algorithm the command needs has not been self-tested yet; run SelfTest',
  NO_RESULT: 'an internal function produced no result, usually from inputs that passed unmarshaling but make no sense',
  SENSITIVE: 'the decrypted sensitive area is malformed (kept vague on purpose so nothing leaks)',

  ASYMMETRIC: 'the asymmetric algorithm is not supported or not right for this use',
  ATTRIBUTES: 'the object or session attributes are inconsistent',
  HASH: 'the hash algorithm is not supported or not allowed here',
  VALUE: 'a value is out of range or wrong for its context',
  HIERARCHY: 'the hierarchy is disabled or not valid for this use',
  KEY_SIZE: 'the key size is not supported',
  MGF: 'the mask generation function is not supported',
  MODE: 'the symmetric mode is not supported',
  TYPE: 'the object or value type is wrong for this use',
  HANDLE: 'the handle is not valid for this use',
  KDF: 'the key derivation function is not supported or not right for this use',
  RANGE: 'a value is outside its allowed range',
  AUTH_FAIL: 'the authorization HMAC check failed and the dictionary-attack counter went up',
  NONCE: 'the nonce has the wrong size or does not match',
  PP: 'this authorization needs physical presence to be asserted',
  SCHEME: 'the scheme is not supported or does not fit the key',
  SIZE: 'a size field or structure has the wrong size',
  SYMMETRIC: 'the symmetric algorithm or key size is not supported or not right here',
  TAG: 'a structure tag is wrong',
  SELECTOR: 'a union selector has no matching variant',
  INSUFFICIENT: 'the input ended before a value could be read (too few bytes)',
  SIGNATURE: 'the signature does not verify',
  KEY: 'the key fields do not fit the requested use',
  POLICY_FAIL: "the policy session's digest does not match the entity's authPolicy",
  INTEGRITY: 'an integrity check failed (HMAC over a private area, context or blob)',
  TICKET: 'the ticket is not valid',
  RESERVED_BITS: 'reserved bits are set that must be zero',
  BAD_AUTH: 'the authorization failed, without dictionary-attack consequences',
  EXPIRED: 'the policy or ticket has expired',
  POLICY_CC: 'the command code in the policy does not match this command, or names an unimplemented one',
  BINDING: 'the public and sensitive areas do not belong together',
  CURVE: 'the ECC curve is not supported',
  ECC_POINT: 'the point is not on the curve',
  FW_LIMITED: 'the command needs the firmware-bound secret, which is not available',
  SVN_LIMITED: 'the command needs the firmware-SVN-bound secret, which is not available',

  CONTEXT_GAP: 'the oldest saved session is too far behind; load or flush it before saving more',
  OBJECT_MEMORY: 'no room for another loaded object; flush or context-save one',
  SESSION_MEMORY: 'no room for another loaded session; flush or context-save one',
  MEMORY: 'the TPM is out of object/session memory or internal working space',
  SESSION_HANDLES: 'no free session handles; flush a session first',
  OBJECT_HANDLES: 'the object handle space is used up; a reboot is needed',
  LOCALITY: 'the command is not allowed at this locality',
  YIELDED: 'the TPM paused the command after making progress; send it again',
  CANCELED: 'the command was cancelled',
  TESTING: 'the TPM is running self-tests; send the command again later',
  REFERENCE_H0: 'handle 1 refers to a transient object or session that is not loaded',
  REFERENCE_H1: 'handle 2 refers to a transient object or session that is not loaded',
  REFERENCE_H2: 'handle 3 refers to a transient object or session that is not loaded',
  REFERENCE_H3: 'handle 4 refers to a transient object or session that is not loaded',
  REFERENCE_H4: 'handle 5 refers to a transient object or session that is not loaded',
  REFERENCE_H5: 'handle 6 refers to a transient object or session that is not loaded',
  REFERENCE_H6: 'handle 7 refers to a transient object or session that is not loaded',
  REFERENCE_S0: 'session 1 is not loaded',
  REFERENCE_S1: 'session 2 is not loaded',
  REFERENCE_S2: 'session 3 is not loaded',
  REFERENCE_S3: 'session 4 is not loaded',
  REFERENCE_S4: 'session 5 is not loaded',
  REFERENCE_S5: 'session 6 is not loaded',
  REFERENCE_S6: 'session 7 is not loaded',
  NV_RATE: 'the TPM is throttling NV writes to limit wear; wait before writing again',
  LOCKOUT: 'the TPM is in dictionary-attack lockout and refuses DA-protected authorizations',
  RETRY: 'the TPM could not start the command; send it again',
  NV_UNAVAILABLE: 'NV memory is not accessible right now and the command may need it',
  NOT_USED: 'reserved value that a TPM must never return',
};

/** Only these say the TPM did not run the command and the same bytes may simply be sent again; other warnings need the caller to act first (flush, wait for NV, leave lockout). */
const RETRYABLE: ReadonlySet<number> = new Set([TPM_RC.RETRY, TPM_RC.YIELDED, TPM_RC.TESTING]);

/** Some early TPMs return 0x030 for BAD_TAG (Part 2 notes the old, mistaken value). */
const LEGACY_BAD_TAG = 0x030;

const NAME_BY_VALUE: ReadonlyMap<number, TpmRcName> = new Map(
  (Object.entries(TPM_RC) as [TpmRcName, number][]).map(([k, v]) => [v, k] as const),
);

// ---------------------------------------------------------------------------
// TSS software layers (TCG TSS 2.0 "Overview and Common Structures"; tss2_common.h)
// ---------------------------------------------------------------------------

/** Bits 16..23 of a TSS2_RC name the software layer; layer 0 is the TPM itself. */
export const TSS2_RC_LAYER_SHIFT = 16;
export const TSS2_RC_LAYER_MASK = 0xff << TSS2_RC_LAYER_SHIFT;

/** TSS2 layer numbers. */
export const TSS2_RC_LAYER = {
  TPM: 0,
  FEATURE: 6, // FAPI
  ESAPI: 7,
  SYS: 8,
  MU: 9,
  TCTI: 10,
  RESMGR: 11,
  /** The resource manager answered for the TPM; the low bits are a TPM_RC. */
  RESMGR_TPM: 12,
  DRIVER: 13,
} as const;

/** Name prefix each layer uses in tpm2-tss (FEATURE is FAPI, ESAPI is ESYS). */
const LAYER_PREFIX: Readonly<Record<number, string>> = {
  6: 'FAPI',
  7: 'ESYS',
  8: 'SYS',
  9: 'MU',
  10: 'TCTI',
  11: 'RESMGR',
  12: 'RESMGR_TPM',
  13: 'DRIVER',
};

/** TSS2 base codes (low 16 bits of a software-layer code), with our descriptions. */
const TSS2_BASE: ReadonlyMap<number, readonly [string, string]> = new Map([
  [1, ['GENERAL_FAILURE', 'an error the layer does not classify further']],
  [2, ['NOT_IMPLEMENTED', 'the requested function is not implemented']],
  [3, ['BAD_CONTEXT', 'the context structure passed in is invalid']],
  [4, ['ABI_MISMATCH', 'the caller and the library disagree on the ABI version']],
  [5, ['BAD_REFERENCE', 'a required pointer was null']],
  [6, ['INSUFFICIENT_BUFFER', 'a buffer is too small']],
  [7, ['BAD_SEQUENCE', 'functions were called in the wrong order']],
  [8, ['NO_CONNECTION', 'the layer below could not be reached']],
  [9, ['TRY_AGAIN', 'the operation timed out and must be called again']],
  [10, ['IO_ERROR', 'input/output failed']],
  [11, ['BAD_VALUE', 'an argument has a bad value']],
  [12, ['NOT_PERMITTED', 'the operation is not permitted']],
  [13, ['INVALID_SESSIONS', 'sessions were supplied that the command does not use, or the wrong number']],
  [14, ['NO_DECRYPT_PARAM', 'a decrypt session was given for a command without an encryptable first parameter']],
  [15, ['NO_ENCRYPT_PARAM', 'an encrypt session was given for a command without an encryptable first response parameter']],
  [16, ['BAD_SIZE', 'a parameter has the wrong size']],
  [17, ['MALFORMED_RESPONSE', 'the response is malformed']],
  [18, ['INSUFFICIENT_CONTEXT', 'the context is too small']],
  [19, ['INSUFFICIENT_RESPONSE', 'the response is too short']],
  [20, ['INCOMPATIBLE_TCTI', 'the TCTI version is unknown or unusable']],
  [21, ['NOT_SUPPORTED', 'the functionality is not supported']],
  [22, ['BAD_TCTI_STRUCTURE', 'the TCTI context is invalid']],
  [23, ['MEMORY', 'memory allocation failed']],
  [24, ['BAD_TR', 'an ESYS_TR handle is invalid']],
  [25, ['MULTIPLE_DECRYPT_SESSIONS', 'more than one session has the decrypt attribute']],
  [26, ['MULTIPLE_ENCRYPT_SESSIONS', 'more than one session has the encrypt attribute']],
  [27, ['RSP_AUTH_FAILED', "the TPM's response HMAC did not verify"]],
]);

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

/**
 * Which family a code belongs to:
 * - `0`: TPM 2.0 format-0 error (VER1 set, severity clear);
 * - `1`: TPM 2.0 format-1 error (carries a handle, parameter or session number);
 * - `'warning'`: TPM 2.0 format-0 warning (VER1 and severity set);
 * - `'success'`: 0;
 * - `'tpm12'`: VER1 and FMT1 clear, i.e. a TPM 1.2-style code (tag 0x00C4 responses, BAD_TAG);
 * - `'layer'`: a TSS software-layer code (bits 16..23 non-zero);
 * - `'unknown'`: bits that no defined family uses (bits 12..15 or 24..31 set).
 */
export type RcFormat = 0 | 1 | 'warning' | 'success' | 'tpm12' | 'layer' | 'unknown';

/** What a format-1 code's N field refers to. */
export type RcSubject = 'handle' | 'parameter' | 'session';

/** A response code taken apart. Every u32 decodes to one of these. */
export interface DecodedRc {
  /** The value decoded, as an unsigned 32-bit number. */
  readonly rc: number;
  readonly format: RcFormat;
  /**
   * Canonical code: the rc without the handle/parameter/session number (format 1),
   * e.g. 0x08E for AUTH_FAIL on any session. Layer codes keep their layer bits.
   */
  readonly code: number;
  /** e.g. "TPM_RC_AUTH_FAIL", "TSS2_TCTI_RC_IO_ERROR"; a generic name for codes without one. */
  readonly name: string;
  /** One line for a human. */
  readonly description: string;
  /** Format 1: what the N field refers to (absent when the TPM did not say). */
  readonly subject?: RcSubject;
  /** Format 1: the handle in error, 1..7. */
  readonly handle?: number;
  /** Format 1: the parameter in error, 1..15. */
  readonly parameter?: number;
  /** Format 1: the session in error, 1..7. */
  readonly session?: number;
  /** True only for RETRY, YIELDED and TESTING: the same command may be sent again unchanged. */
  readonly retryable: boolean;
  /** Format-0 severity bit: a warning means the command was not executed and the TPM state is unchanged. */
  readonly warning: boolean;
  /** Format-0 "T" bit (or TPM 1.2 vendor bit): the meaning is vendor-defined. */
  readonly vendor: boolean;
  /** TSS2 software layer (1..255) for `'layer'` codes. */
  readonly layer?: number;
}

function hex(n: number, width = 3): string {
  return `0x${n.toString(16).padStart(width, '0')}`;
}

function known(rc: number, format: RcFormat, code: number, extra: Partial<DecodedRc> = {}): DecodedRc {
  const key = NAME_BY_VALUE.get(code);
  return {
    rc,
    format,
    code,
    name: key !== undefined ? `TPM_RC_${key}` : 'TPM_RC_UNKNOWN',
    description: key !== undefined ? TPM_RC_DESCRIPTIONS[key] : `response code ${hex(code)} is not defined by the TPM 2.0 specification`,
    retryable: RETRYABLE.has(code),
    warning: false,
    vendor: false,
    ...extra,
  };
}

/** Decode a value that fits in the TPM's 12 defined bits (layer 0). */
function decodeTpm(rc: number): DecodedRc {
  if (rc === 0) return known(0, 'success', 0);

  if (rc & RC_FMT1) {
    // Format 1 (Part 2 §6.6.1): P first, then the session bit, else a handle.
    const code = rc & (RC_FMT1 | 0x3f);
    const n = (rc & TPM_RC_N_MASK) >>> TPM_RC_N_SHIFT;
    if (rc & TPM_RC_P) return known(rc, 1, code, n !== 0 ? { subject: 'parameter', parameter: n } : { subject: 'parameter' });
    if (rc & TPM_RC_S) return known(rc, 1, code, (n & 7) !== 0 ? { subject: 'session', session: n & 7 } : { subject: 'session' });
    return known(rc, 1, code, n !== 0 ? { subject: 'handle', handle: n } : {});
  }

  if (!(rc & RC_VER1)) {
    // TPM 1.2 numbering (also what a 1.2 TPM sends with tag 0x00C4).
    const vendor = (rc & RC_VENDOR) !== 0;
    if (rc === TPM_RC.BAD_TAG || rc === LEGACY_BAD_TAG) {
      return known(rc, 'tpm12', TPM_RC.BAD_TAG, rc === LEGACY_BAD_TAG ? { description: `${TPM_RC_DESCRIPTIONS.BAD_TAG} (old value 0x030 from early TPMs)` } : {});
    }
    return {
      rc,
      format: 'tpm12',
      code: rc,
      name: 'TPM12_RC',
      description: `TPM 1.2-style response code ${hex(rc)}${vendor ? ' (vendor-specific)' : ''}; the device may not be a TPM 2.0`,
      retryable: false,
      warning: false,
      vendor,
    };
  }

  // Format 0: no number field, the whole 12 bits are the code.
  const warning = (rc & RC_SEVERITY) !== 0;
  const format: RcFormat = warning ? 'warning' : 0;
  if (rc & RC_VENDOR) {
    return {
      rc,
      format,
      code: rc,
      name: 'TPM_RC_VENDOR',
      description: `vendor-defined ${warning ? 'warning' : 'error'} ${hex(rc)}; see the TPM manufacturer's documentation`,
      retryable: false,
      warning,
      vendor: true,
    };
  }
  return known(rc, format, rc, { warning });
}

/**
 * Take any response code apart. Pure and total: never throws, every u32
 * yields a record. Negative integers are read as their 32-bit two's complement
 * (`>>> 0`); a non-integer decodes as 'unknown', never as success.
 *
 * @example decodeResponseCode(0x9a2) // BAD_AUTH, format 1, session 1, code 0x0a2
 */
export function decodeResponseCode(rc: number): DecodedRc {
  if (typeof rc !== 'number' || !Number.isInteger(rc)) {
    // Never let NaN or 1.5 pass as 0 (success) or 1.
    return { rc: 0xffffffff, format: 'unknown', code: 0xffffffff, name: 'UNKNOWN_RC', description: `${String(rc)} is not an integer response code`, retryable: false, warning: false, vendor: false };
  }
  const v = rc >>> 0;
  if (v <= 0xfff) return decodeTpm(v);

  if (v >>> 24 === 0 && (v & 0xf000) === 0 && v >>> 16 === TSS2_RC_LAYER.RESMGR_TPM) {
    // The resource manager speaking for the TPM: decode the TPM part, keep the layer.
    const inner = decodeTpm(v & 0xfff);
    const layerBits = v & TSS2_RC_LAYER_MASK;
    return {
      ...inner,
      rc: v,
      format: 'layer',
      code: layerBits | inner.code,
      description: `${inner.description} (reported by the resource manager on behalf of the TPM)`,
      layer: TSS2_RC_LAYER.RESMGR_TPM,
    };
  }

  if (v >>> 24 === 0 && v >>> 16 !== 0) {
    const layer = v >>> 16;
    const base = v & 0xffff;
    const prefix = LAYER_PREFIX[layer] ?? `LAYER${layer}`;
    const entry = TSS2_BASE.get(base);
    const implSpecific = base >= 0xf800;
    return {
      rc: v,
      format: 'layer',
      code: v,
      name: entry !== undefined ? `TSS2_${prefix}_RC_${entry[0]}` : `TSS2_${prefix}_RC_UNKNOWN`,
      description:
        entry !== undefined
          ? `${entry[1]} (TSS layer ${layer}, ${prefix})`
          : `${implSpecific ? 'implementation-specific' : 'unknown'} code ${hex(base, 4)} from TSS layer ${layer} (${prefix})`,
      retryable: false,
      warning: false,
      vendor: implSpecific,
      layer,
    };
  }

  return {
    rc: v,
    format: 'unknown',
    code: v,
    name: 'UNKNOWN_RC',
    description: `${hex(v, 8)} is not a TPM 2.0, TPM 1.2 or TSS response code`,
    retryable: false,
    warning: false,
    vendor: false,
  };
}

/** The canonical code of `rc` (strips the format-1 handle/parameter/session number). */
export function canonicalRc(rc: number): number {
  return decodeResponseCode(rc).code;
}

/** Build a format-1 code about handle `index` (1..7), as a TPM would return it. */
export function rcForHandle(code: number, index: number): number {
  return fmt1With(code, 'handle', index, 7) | (index << TPM_RC_N_SHIFT);
}

/** Build a format-1 code about parameter `index` (1..15). */
export function rcForParameter(code: number, index: number): number {
  return fmt1With(code, 'parameter', index, 15) | TPM_RC_P | (index << TPM_RC_N_SHIFT);
}

/** Build a format-1 code about session `index` (1..7). */
export function rcForSession(code: number, index: number): number {
  return fmt1With(code, 'session', index, 7) | TPM_RC_S | (index << TPM_RC_N_SHIFT);
}

function fmt1With(code: number, what: RcSubject, index: number, max: number): number {
  const d = decodeResponseCode(code);
  if (d.format !== 1 || d.code !== code) throw new RangeError(`${hex(code)} is not a format-1 base code`);
  if (!Number.isInteger(index) || index < 1 || index > max) throw new RangeError(`${what} index must be 1..${max}, got ${index}`);
  return code;
}

// ---------------------------------------------------------------------------
// The error
// ---------------------------------------------------------------------------

/**
 * The TPM (or something speaking for it) answered with a non-success code.
 * Details are typed fields; the message is for humans, e.g.
 * "TPM_RC_AUTH_FAIL (0x98e) on session 1 of PolicySecret: the authorization HMAC check failed …".
 */
export class TpmError extends TrustrootError {
  declare readonly code: 'tpm.rc';
  /** The raw response code as received. */
  readonly rc: number;
  /** The full decoding. */
  readonly decoded: DecodedRc;
  /** Canonical code (see {@link DecodedRc.code}); compare with {@link isRc}. */
  readonly baseCode: number;
  /** e.g. "TPM_RC_AUTH_FAIL". */
  readonly rcName: string;
  readonly handle?: number;
  readonly parameter?: number;
  readonly session?: number;
  /** The same command may be sent again (RETRY, YIELDED, TESTING). */
  readonly retryable: boolean;
  /** The TPM_CC of the command that failed, when known. */
  readonly commandCode?: number;

  constructor(rc: number, details: { commandCode?: number } = {}) {
    const d = decodeResponseCode(rc);
    super('tpm.rc', describe(d, details.commandCode));
    this.rc = d.rc;
    this.decoded = d;
    this.baseCode = d.code;
    this.rcName = d.name;
    if (d.handle !== undefined) this.handle = d.handle;
    if (d.parameter !== undefined) this.parameter = d.parameter;
    if (d.session !== undefined) this.session = d.session;
    this.retryable = d.retryable;
    if (details.commandCode !== undefined) this.commandCode = details.commandCode >>> 0;
  }

  /** Same canonical code as `code` (whatever handle/parameter/session index either carries). */
  is(code: number): boolean {
    return this.baseCode === canonicalRc(code);
  }
}

function describe(d: DecodedRc, commandCode: number | undefined): string {
  let where = '';
  if (d.handle !== undefined) where = ` on handle ${d.handle}`;
  else if (d.parameter !== undefined) where = ` on parameter ${d.parameter}`;
  else if (d.session !== undefined) where = ` on session ${d.session}`;
  else if (d.subject !== undefined) where = ` on a ${d.subject}`;
  let cmd = '';
  if (commandCode !== undefined) {
    const name = constantName(TPM_CC, commandCode >>> 0) ?? `command ${hex(commandCode >>> 0, 8)}`;
    cmd = where ? ` of ${name}` : ` from ${name}`;
  }
  return `${d.name} (${hex(d.rc)})${where}${cmd}: ${d.description}`;
}

/**
 * True when `err` is a TpmError (or a raw response code) whose canonical code
 * equals that of `code`: `isRc(e, TPM_RC.AUTH_FAIL)` holds for 0x98E, 0x99E, 0x08E ….
 */
export function isRc(err: unknown, code: number): boolean {
  const want = canonicalRc(code);
  if (err instanceof TpmError) return err.baseCode === want;
  if (typeof err === 'number') return canonicalRc(err) === want;
  return false;
}
