/**
 * trustroot/client — a typed TPM 2.0 client over the core: `Tpm` runs any
 * declared command with typed handles, parameters and authorization sessions
 * (password, HMAC, policy, trial; bound, salted, parameter encryption, audit).
 */
export {
  RECOVERY_DEFAULTS,
  Tpm,
  type RecoveryOptions,
  type TpmOptions,
  type Authorization,
  type Entity,
  type Flushable,
  type FlushScope,
  type Handle,
  type RunHandles,
  type StartAuthSessionOptions,
  type TpmRunOptions,
  type TpmRunResult,
} from './tpm.js';
export { AuthSession, password, PasswordSession, type SessionAttributes, type SessionType, type SessionUse } from './session.js';

// Keys: create, load, persist, contexts (Part 3 §12, §24, §28)
export {
  aesKeyTemplate,
  contextLoad,
  contextSave,
  create,
  createLoaded,
  createPrimary,
  eccEcdhTemplate,
  eccSigningTemplate,
  eccStorageTemplate,
  flush,
  hmacKeyTemplate,
  load,
  loadExternal,
  objectChangeAuth,
  persist,
  readPublic,
  rsaDecryptTemplate,
  rsaSigningTemplate,
  rsaStorageTemplate,
  unpersist,
  type CreatedKey,
  type CreatedLoadedKey,
  type CreateLoadedOptions,
  type CreateOptions,
  type CreationInfo,
  type EccTemplateOptions,
  type EvictOptions,
  type KeyBlob,
  type LoadedKey,
  type LoadExternalOptions,
  type LoadOptions,
  type ObjectAttributes,
  type ObjectPublic,
  type PrimaryKey,
  type RsaTemplateOptions,
  type SavedKey,
  type TemplateOptions,
} from './keys.js';

// Signing, encryption, hashing, random (Part 3 §14–§17, §20)
export {
  ecdhKeyGen,
  ecdhZGen,
  ecdsaSignatureFromDer,
  ecdsaSignatureToDer,
  encryptDecrypt,
  eventSequence,
  getRandom,
  hash,
  hmac,
  inputBufferSize,
  rsaDecrypt,
  rsaEncrypt,
  sign,
  signatureFromNode,
  signatureToNode,
  stirRandom,
  symmetricDecrypt,
  symmetricEncrypt,
  tpmProperty,
  verifySignature,
  verifyWithNode,
  type EventSequenceOptions,
  type HashOptions,
  type HashResult,
  type HmacOptions,
  type NodeSignature,
  type RsaCryptOptions,
  type SignOptions,
  type SymmetricOptions,
  type SymmetricResult,
} from './crypto.js';

// PCRs (Part 3 §22)
export {
  expectedPcr,
  pcrAllocate,
  pcrBanks,
  pcrEvent,
  pcrExtend,
  pcrExtendData,
  pcrRead,
  pcrReset,
  type ExtendDataOptions,
  type PcrAllocateOptions,
  type PcrAllocation,
  type PcrOptions,
  type PcrValues,
} from './pcr.js';

// NV indices (Part 3 §31)
export {
  nvBufferSize,
  nvCertify,
  nvDefine,
  nvExtend,
  nvGlobalWriteLock,
  nvIncrement,
  NvIndex,
  nvRead,
  nvReadCounter,
  nvReadLock,
  nvReadPublic,
  nvSetBits,
  nvUndefine,
  nvWrite,
  nvWriteLock,
  type NvAttributes,
  type NvAuthOptions,
  type NvCertification,
  type NvCertifyOptions,
  type NvDefinition,
  type NvProvisionOptions,
  type NvReadOptions,
  type NvType,
  type NvWriteOptions,
} from './nv.js';

// Attestation (Part 3 §18)
export {
  certify,
  certifyCreation,
  getCommandAuditDigest,
  getSessionAuditDigest,
  getTime,
  quote,
  signatureHashAlg,
  type Attestation,
  type AttestationOf,
  type AttestOptions,
  type CreationEvidence,
  type PrivacyAttestOptions,
  type QuoteOptions,
  type QuoteResult,
} from './attestation.js';

// Credential activation (Part 3 §12.5)
export {
  activateCredential,
  type ActivateCredentialOptions,
} from './credential.js';

// Sealing to a PCR policy
export {
  seal,
  sealPolicy,
  unseal,
  type SaltKey,
  type SealedObject,
  type SealOptions,
  type SealPasswordPolicy,
  type SealPolicy,
  type UnsealOptions,
} from './seal.js';

// Import and duplication (Part 3 §13)
export {
  duplicateKey,
  duplicationPolicy,
  importDuplicate,
  importKey,
  type DuplicateOptions,
  type DuplicationPolicy,
  type ImportedObject,
  type ImportKeyOptions,
  type ImportOptions,
} from './duplication.js';

// describe() → TpmDescription
export {
  describe,
} from './describe.js';

// Endorsement keys and their certificates (TCG EK Credential Profile)
export {
  checkTemplateSupported,
  createEk,
  getEk,
  readEkCertificate,
  readEkCertificates,
  satisfyEkPolicy,
  trimDerCertificate,
  withEk,
  withEkPolicy,
  type Ek,
  type EkCertificate,
  type EkOptions,
  type EkPolicyOptions,
  type ReadEkCertificateOptions,
} from './ek.js';

// Attestation keys under the EK
export {
  checkAkTemplate,
  createAk,
  isAkPublic,
  loadAk,
  type Ak,
  type AkBlob,
  type AkOptions,
  type AkParent,
} from './ak.js';

// tpm2-tools file formats
export {
  pcrReadings,
  pcrValuesFromReadings,
  plainSignature,
  publicKeyPem,
  readAttestFile,
  readContextFile,
  readCredentialFile,
  readNameFile,
  readPcrValuesFile,
  readPemPublicKey,
  readPrivateFile,
  readPublicFile,
  readSessionFile,
  readSignatureFile,
  signatureFromPlain,
  TPM2_TOOLS_MAGIC,
  writeAttestFile,
  writeContextFile,
  writeCredentialFile,
  writeNameFile,
  writePcrValuesFile,
  writePrivateFile,
  writePublicFile,
  writeSignatureFile,
  type ContextFile,
  type CredentialFile,
  type EsysMetadata,
  type EsysResource,
  type PcrValues as ToolsPcrValues,
  type PlainSignatureScheme,
  type SessionFile,
} from './files.js';

// Connection strings (tpm2-tss TCTI form)
export {
  formatTcti,
  openTransport,
  parseTcti,
  parseTctiKeyValues,
  registerTcti,
  resolveTcti,
  splitTcti,
  TCTI_DEFAULT,
  TCTI_DEFAULT_HOST,
  TCTI_DEFAULT_PORT,
  TCTI_ENV,
  tctiSchemes,
  unregisterTcti,
  type CustomTctiConfig,
  type DeviceTctiConfig,
  type OpenTransportOptions,
  type ResolvedTcti,
  type TcpTctiConfig,
  type TctiConfig,
  type TctiFactory,
  type TctiFactoryOptions,
} from './tcti.js';

// Retry on TPM_RC_RETRY / YIELDED / TESTING
export {
  backoffDelay,
  isRetryableResponse,
  RETRY_DEFAULTS,
  RetryTransport,
  withRetry,
  type RetryEvent,
  type RetryOptions,
} from './retry.js';

// Linux kernel TPM device
export {
  DeviceTransport,
  TPM_DEVICE,
  TPMRM_DEVICE,
  type DeviceTransportOptions,
} from './transport/device.js';
