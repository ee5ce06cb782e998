/**
 * trustroot/attest — the verifier's brain: pure functions over TPM evidence
 * (quotes, attestation structures, AKs, EK certificates, event logs, IMA
 * lists, policies), each returning a Verdict of checks with stable reasons.
 */
export { check, combine, fail, failures, notPerformed, pass, verdict, warn, type Check, type Outcome, type Verdict } from './verdict.js';

// Quote, Certify, CertifyCreation and GetTime verification
export {
  checkSignature,
  decodeAttest,
  decodeSignature,
  verifyCertify,
  verifyCertifyCreation,
  verifyQuote,
  verifyTime,
  type AttestEvidence,
  type AttestVerdict,
  type CertifyCreationExpectations,
  type CertifyExpectations,
  type PcrValues,
  type Qualification,
  type QuoteEvidence,
  type QuoteExpectations,
  type QuoteVerdict,
  type RequiredAttributes,
  type SignatureResult,
  type SignedAttest,
  type SignedAttestOf,
  type SignerExpectations,
  type TimeExpectations,
  type TimeVerdict,
} from './quote.js';

// Attestation keys and the verifier side of credential activation
export {
  AK_REQUIRED_ATTRIBUTES,
  akName,
  akQualifiedName,
  checkActivation,
  checkAk,
  decodeAkPublic,
  makeAkCredential,
  prepareAk,
  type AkCredential,
  type AkCredentialOptions,
  type AkInput,
  type AkPolicy,
  type AkScheme,
  type PreparedAk,
} from './ak.js';

// Challenges (nonces with expiry)
export {
  checkChallengeShape,
  checkChallengeTime,
  checkNonce,
  instantMs,
  newChallenge,
  NONCE_DEFAULT_BYTES,
  NONCE_MAX_BYTES,
  NONCE_MIN_BYTES,
  sameBytes,
  type Challenge,
  type Instant,
  type NewChallengeOptions,
} from './challenge.js';

// clockInfo rules (reboots, resumes, power cuts)
export {
  checkClock,
  clockStateFromJson,
  clockStateOf,
  clockStateToJson,
  type ClockPolicy,
  type ClockResult,
  type ClockState,
  type ClockStateJson,
  type ClockTransition,
  type Severity,
} from './clock.js';

// EK certificates (lenient parsing, TCG fields)
export {
  checkEkCertificate,
  compareEkPublicKey,
  ecdsaSignatureParts,
  namesMatch,
  parseCertificate,
  parseCertificates,
  sameAlgorithm,
  signatureScheme,
  TCG_OID,
  vendorText,
  type AlgorithmIdentifier,
  type CertificateExtension,
  type CertificatePublicKey,
  type CertificateQuirk,
  type DistinguishedName,
  type EkCertificateCheckOptions,
  type KeyUsageName,
  type NameAttribute,
  type ParsedCertificate,
  type SignatureHash,
  type SignatureScheme,
  type TpmAttributes,
  type TpmSpecification,
} from './ekcert.js';

// Certificate chains to configured roots
export {
  DEFAULT_TRUST_BUNDLE,
  trustBundle,
  verifyCertificateSignature,
  verifyEkCertificate,
  verifyEkChain,
  type ChainOptions,
  type ChainResult,
  type ChainStatus,
  type SignatureOutcome,
  type EkCertificateInput,
  type EkCertificateVerification,
  type TrustBundle,
} from './chain.js';

// TPM-type classification
export {
  classifyTpm,
  PRODUCTION_PROFILE,
  TEST_PROFILE,
  type ClassificationProfile,
  type ClassificationReason,
  type ClassifyOptions,
  type TpmAssurance,
  type TpmClassification,
  type TpmType,
} from './classify.js';

// TCG PC Client event logs: parsing and replay
export {
  bankName,
  compareWithQuote,
  EV,
  eventDigest,
  EventLogError,
  eventTypeName,
  initialPcrValue,
  MAX_DIGEST_SIZE,
  MAX_EVENT_COUNT,
  MAX_EVENT_SIZE,
  MAX_PCR_INDEX,
  MAX_SPEC_ID_ALGORITHMS,
  parseEventLog,
  parseSpecIdEvent,
  replay,
  REPLAY_CHECK,
  startupLocalityOf,
  type EventDigest,
  type EventLog,
  type EventLogErrorReason,
  type EventTypeName,
  type PcrBanks,
  type Replay,
  type ReplayAnomaly,
  type ReplayOptions,
  type SpecIdEvent,
  type TcgEvent,
} from './eventlog.js';

// Event bodies, Secure Boot state, boot chain, kernel command lines
export {
  bootChain,
  checkEvents,
  dataBinding,
  decodeBody,
  decodeEvent,
  decodeEvents,
  EFI_GUID,
  formatGuid,
  kernelCommandLines,
  parseDevicePath,
  parseSignatureLists,
  secureBootState,
  verifyEventLog,
  type BindingRule,
  type BootChainEntry,
  type DataBinding,
  type DecodedEvent,
  type DevicePathNode,
  type EfiSignatureData,
  type EfiSignatureList,
  type EventBody,
  type GptHeader,
  type GptPartition,
  type GrubString,
  type HandoffTable,
  type KernelCommandLine,
  type SecureBootState,
  type SignatureDatabase,
  type UefiVariable,
} from './events.js';

// Linux IMA measurement lists, incremental replay
export {
  checkImaReplayState,
  encodeImaAscii,
  encodeImaBinary,
  evaluateImaAllowlist,
  imaPathPattern,
  makeImaEntry,
  parseImaAscii,
  parseImaBinary,
  parseImaList,
  replayIma,
  type ImaBankValues,
  type ImaDigest,
  type ImaEntry,
  type ImaEntrySpec,
  type ImaField,
  type ImaFinding,
  type ImaFindingReason,
  type ImaFormat,
  type ImaKernelBehaviour,
  type ImaList,
  type ImaParseOptions,
  type ImaPolicyLists,
  type ImaReplayOptions,
  type ImaReplayResult,
  type ImaReplayState,
} from './ima.js';

// Honest evidence: a measured-boot event log and IMA list writer
export {
  pcrStartValue,
  replayExtends,
  testCertificate,
  writeEventLog,
  writeImaList,
  writeMeasuredBoot,
  type BankDigests,
  type BootChainConfig,
  type BootImage,
  type DiskConfig,
  type FirmwareBlob,
  type GptPartitionConfig,
  type ImaBufferConfig,
  type ImaConfig,
  type ImaEntryConfig,
  type ImaFileConfig,
  type ImaKernel,
  type ImaTemplate,
  type ImaViolationConfig,
  type MeasuredBoot,
  type MeasuredBootConfig,
  type MeasuredFile,
  type PcrBankValues,
  type PcrExtend,
  type PlatformConfig,
  type SecureBootConfig,
  type SignatureDatabaseConfig,
  type SignatureListConfig,
  type WrittenEvent,
  type WrittenEventLog,
  type WrittenImaEntry,
  type WrittenImaList,
} from './writer.js';

// Attestation policy: versioned JSON, schema, evaluation
export {
  akPolicyOf,
  classificationProfileOf,
  clockPolicyOf,
  evaluatePolicy,
  eventLogEvidence,
  formatFirmwareVersion,
  globMatcher,
  MAX_POLICY_ISSUES,
  MAX_POLICY_TEXT,
  parsePolicy,
  PolicyError,
  readPolicyText,
  ruleOutcome,
  type EkChainRequirement,
  type EventLogEvidence,
  type EventMatcher,
  type FirmwareDenyRule,
  type MinimumTpmType,
  type MissingEvidence,
  type PcrRule,
  type Policy,
  type PolicyDocument,
  type PolicyEvidence,
  type PolicyIssue,
} from './policy.js';

// The policy schema (JSON Schema 2020-12)
export {
  POLICY_BANKS,
  POLICY_SCHEMA,
  policySchemaJson,
  type PolicyBankName,
} from './policy.schema.js';

// Built-in policy profiles: production and test
export {
  POLICY_PROFILES,
  policyProfile,
  PRODUCTION_POLICY_DOCUMENT,
  TEST_POLICY_DOCUMENT,
  withProfile,
  type PolicyProfileName,
} from './profiles.js';
