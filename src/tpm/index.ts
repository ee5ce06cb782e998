/**
 * trustroot/tpm — the TPM 2.0 core: constants, the schema (Part 2 structures
 * as `structures`, Part 3 command records as `commands`), the marshaler in
 * both directions, Names, cpHash/rpHash, KDFs, response codes, transports.
 *
 * Structures and commands are exported as two namespaces because Part 2 and
 * the constants share names (TPM_CC is both the table of command codes and
 * the codec of a command code): `TPM_CC.Quote` is a number,
 * `structures.TPMT_PUBLIC` a codec and its type, `commands.Quote` a record.
 */
import * as commands from './commands/index.js';
import * as structures from './types/index.js';

export { commands, structures };

export {
  constantName,
  handleType,
  HANDLE_RANGE,
  PT_FIXED,
  PT_VAR,
  TPM_ALG,
  TPM_AT,
  TPM_CAP,
  TPM_CC,
  TPM_CLOCK_ADJUST,
  TPM_ECC,
  TPM_EO,
  TPM_GENERATED_VALUE,
  TPM_HT,
  TPM_NT,
  TPM_PS,
  TPM_PT,
  TPM_PT_PCR,
  TPM_RH,
  TPM_RS_PW,
  TPM_SE,
  TPM_SPEC,
  TPM_ST,
  TPM_SU,
  type TPM_ALG_ID,
  type TPM_CAP_VALUE,
  type TPM_CC_VALUE,
  type TPM_CLOCK_ADJUST_VALUE,
  type TPM_ECC_CURVE,
  type TPM_EO_VALUE,
  type TPM_HT_VALUE,
  type TPM_NT_VALUE,
  type TPM_PT_PCR_VALUE,
  type TPM_PT_VALUE,
  type TPM_RH_VALUE,
  type TPM_SE_VALUE,
  type TPM_ST_VALUE,
  type TPM_SU_VALUE,
  type ValueOf,
} from './constants.js';
export { CAP_LIMITS, LIMITS } from './limits.js';
export {
  ArgumentError,
  EncodeError,
  ParseError,
  SessionError,
  TransportError,
  TrustrootError,
  UnsupportedAlgorithmError,
  type EncodeErrorCode,
  type ErrorCode,
  type ParseErrorCode,
  type SessionErrorCode,
  type TransportErrorCode,
} from './errors.js';
export {
  canonicalRc,
  decodeResponseCode,
  isRc,
  rcForHandle,
  rcForParameter,
  rcForSession,
  TPM_RC,
  TPM_RC_DESCRIPTIONS,
  TpmError,
  TSS2_RC_LAYER,
  type DecodedRc,
  type RcFormat,
  type RcSubject,
  type TpmRcName,
  type TPM_RC_VALUE,
} from './rc.js';
export { decode, encode, type Codec, type Infer } from './wire/codec.js';
export {
  command,
  type AnyCommand,
  type AuthRole,
  type CommandDef,
  type CommandHandles,
  type CommandParams,
  type ResponseHandles,
  type ResponseParams,
} from './command.js';
export {
  decodeHandles,
  decodeParams,
  decodeResponseParams,
  encodeCommand,
  encodeErrorResponse,
  encodeParams,
  encodeResponse,
  encodeResponseParams,
  frameCommand,
  frameResponse,
  parseCommand,
  parseResponse,
  splitCommand,
  splitResponse,
  type FrameCommandOptions,
  type FrameResponseOptions,
  type ParsedCommand,
  type ParsedResponse,
  type SplitCommand,
  type SplitResponse,
} from './frame.js';
export { cpHash, rpHash } from './cphash.js';
export {
  commandHmac,
  decryptCommandParameter,
  decryptResponseParameter,
  decryptSalt,
  encryptCommandParameter,
  encryptResponseParameter,
  encryptSalt,
  extendAuditDigest,
  extraNonces,
  isBindEntity,
  responseHmac,
  sessionHmacKey,
  sessionKey,
  trimAuthValue,
  type CommandHmacInput,
  type ParameterCipherInput,
  type ResponseHmacInput,
  type SessionKeyInput,
  type SessionRole,
} from './session-crypto.js';
export { handleName, nameFromPublicBytes, nvName, objectName, qualifiedName } from './names.js';
export { digestSize, hash, hmac, isHashAlg, isHashSupported, type TpmHashAlg } from './crypto/hash.js';
export { kdfa, kdfe, KDF_MAX_BITS } from './crypto/kdf.js';
export { pcrIndices, pcrSelection, readPcrs, subtractSelections } from './pcr.js';
export { listingStarts, nextProperty, readCapability, type CapabilityItem } from './capability.js';
export { describeTpm, propertyText, type CapabilityListings, type TpmDescription } from './description.js';
export { passwordAuth, runCommand, type RunOptions, type RunResult } from './run.js';
export { EK_POLICY_A_SHA256, eccEkTemplate, eccSrkTemplate, rsaEkTemplate, rsaSrkTemplate } from './templates.js';
export {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_TIMEOUT_MS,
  inProcessTransport,
  MSSIM_SIGNAL,
  MssimPlatform,
  MssimTransport,
  SWTPM_CTRL,
  SwtpmControl,
  SwtpmTransport,
  TransportControlError,
  type InProcessTpm,
  type MssimPlatformOptions,
  type MssimTransportOptions,
  type SendOptions,
  type SwtpmControlOptions,
  type SwtpmTransportOptions,
  type Transport,
} from './transport/index.js';
