/**
 * The registry of command records (Part 3): every declared command by name,
 * the list of all of them, and lookup by command code for the marshaler
 * (frame.ts) and the software TPM's dispatch. Each chapter file exports only
 * command records, so the list is built from the chapters' namespaces and the
 * names are written once, in the export lines below.
 */
import type { AnyCommand } from '../command.js';
import * as startup from './startup.js';
import * as testing from './testing.js';
import * as session from './session.js';
import * as object from './object.js';
import * as duplication from './duplication.js';
import * as asymmetric from './asymmetric.js';
import * as symmetric from './symmetric.js';
import * as random from './random.js';
import * as sequences from './sequences.js';
import * as attestation from './attestation.js';
import * as ephemeral from './ephemeral.js';
import * as signing from './signing.js';
import * as audit from './audit.js';
import * as integrity from './integrity.js';
import * as policy from './policy.js';
import * as hierarchy from './hierarchy.js';
import * as dictionary from './dictionary.js';
import * as context from './context.js';
import * as clock from './clock.js';
import * as capability from './capability.js';
import * as nv from './nv.js';

export { Startup, Shutdown } from './startup.js';
export { SelfTest, IncrementalSelfTest, GetTestResult } from './testing.js';
export { StartAuthSession, PolicyRestart } from './session.js';
export {
  Create,
  Load,
  LoadExternal,
  ReadPublic,
  ActivateCredential,
  MakeCredential,
  Unseal,
  ObjectChangeAuth,
  CreateLoaded,
} from './object.js';
export { Duplicate, Rewrap, Import } from './duplication.js';
export { RSA_Encrypt, RSA_Decrypt, ECDH_KeyGen, ECDH_ZGen, ECC_Parameters, ZGen_2Phase } from './asymmetric.js';
export { EncryptDecrypt, EncryptDecrypt2, Hash, HMAC } from './symmetric.js';
export { GetRandom, StirRandom } from './random.js';
export { HMAC_Start, HashSequenceStart, SequenceUpdate, SequenceComplete, EventSequenceComplete } from './sequences.js';
export {
  Certify,
  CertifyCreation,
  Quote,
  GetSessionAuditDigest,
  GetCommandAuditDigest,
  GetTime,
} from './attestation.js';
export { Commit, EC_Ephemeral } from './ephemeral.js';
export { VerifySignature, Sign } from './signing.js';
export { SetCommandCodeAuditStatus } from './audit.js';
export {
  PCR_Extend,
  PCR_Event,
  PCR_Read,
  PCR_Allocate,
  PCR_SetAuthPolicy,
  PCR_SetAuthValue,
  PCR_Reset,
} from './integrity.js';
export {
  PolicySigned,
  PolicySecret,
  PolicyTicket,
  PolicyOR,
  PolicyPCR,
  PolicyLocality,
  PolicyNV,
  PolicyCounterTimer,
  PolicyCommandCode,
  PolicyPhysicalPresence,
  PolicyCpHash,
  PolicyNameHash,
  PolicyDuplicationSelect,
  PolicyAuthorize,
  PolicyAuthValue,
  PolicyPassword,
  PolicyGetDigest,
  PolicyNvWritten,
  PolicyTemplate,
  PolicyAuthorizeNV,
} from './policy.js';
export {
  CreatePrimary,
  HierarchyControl,
  SetPrimaryPolicy,
  ChangePPS,
  ChangeEPS,
  Clear,
  ClearControl,
  HierarchyChangeAuth,
} from './hierarchy.js';
export { DictionaryAttackLockReset, DictionaryAttackParameters } from './dictionary.js';
export { ContextSave, ContextLoad, FlushContext, EvictControl } from './context.js';
export { ReadClock, ClockSet, ClockRateAdjust } from './clock.js';
export { GetCapability, TestParms } from './capability.js';
export {
  NV_DefineSpace,
  NV_UndefineSpace,
  NV_UndefineSpaceSpecial,
  NV_ReadPublic,
  NV_Write,
  NV_Increment,
  NV_Extend,
  NV_SetBits,
  NV_WriteLock,
  NV_GlobalWriteLock,
  NV_Read,
  NV_ReadLock,
  NV_ChangeAuth,
  NV_Certify,
} from './nv.js';

/** Every declared command, chapter by chapter in Part 3 order (alphabetical within a chapter). */
export const ALL_COMMANDS: readonly AnyCommand[] = [
  startup,
  testing,
  session,
  object,
  duplication,
  asymmetric,
  symmetric,
  random,
  sequences,
  attestation,
  ephemeral,
  signing,
  audit,
  integrity,
  policy,
  hierarchy,
  dictionary,
  context,
  clock,
  capability,
  nv,
].flatMap((chapter) => Object.values(chapter) as AnyCommand[]);

const BY_CODE: ReadonlyMap<number, AnyCommand> = new Map(ALL_COMMANDS.map((c) => [c.code, c]));

/** The record of the command with this TPM_CC, or undefined if trustroot does not declare it. */
export function commandByCode(code: number): AnyCommand | undefined {
  return BY_CODE.get(code);
}
