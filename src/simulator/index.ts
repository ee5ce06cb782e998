/** trustroot/simulator — a software TPM 2.0 engine (design.md "Software TPM"). */
export { FIRMWARE_VERSION, TpmEngine, type TpmEngineOptions, type VolatileState } from './engine.js';
export {
  PCR_COUNT,
  SEED_SIZE,
  SIMULATOR_STATE_VERSION,
  createSimulatorState,
  defaultPcrAllocation,
  defaultRandomSource,
  pooledRandomSource,
  STATE_MIGRATIONS,
  type ClockState,
  type CommandAuditState,
  type DictionaryAttackState,
  type EkCertificatesState,
  type HierarchyAuth,
  type HierarchyAuths,
  type HierarchyProofs,
  type HierarchySeeds,
  type NvIndexState,
  type PcrBankAlg,
  type PcrBankAllocation,
  type PersistentObjectState,
  type RandomSource,
  type SavedState,
  type SimulatorState,
} from './state.js';
export type { CommandHandler, HandlerContext, HandlerResult } from './handlers/handler.js';

// Durable state: atomic, checksummed, versioned, locked
export {
  LOCK_FILE_NAME,
  openSimulatorStore,
  parseStateFile,
  serializeState,
  STATE_FILE_FORMAT,
  STATE_FILE_FORMAT_VERSION,
  STATE_FILE_NAME,
  StateLock,
  StateStore,
  validateSimulatorState,
  type OpenedStore,
  type StateStoreOptions,
  type StateValue,
  type VersionedState,
} from './store.js';

// mssim and swtpm protocol servers
export {
  startTpmServer,
  SWTPM_CAPABILITIES,
  SWTPM_RESULT,
  type ServerProtocol,
  type SimulatorPlatform,
  type TpmServer,
  type TpmServerOptions,
} from './server.js';

// Deterministic primary-key derivation (Part 1 primary object creation)
export {
  derivePrimaryObject,
  DRBG_MAX_REQUEST,
  ECC_CURVES,
  PRIMARY_OBJECT_CREATION,
  PrimaryDrbg,
  RSA_KEY_BITS,
  type DerivedObject,
  type PrimaryDerivationInput,
} from './keygen.js';

// Manufacture: the installation's EK certificate CA and the EK certificate indices
export {
  createSoftwareTpmCa,
  defaultSoftwareTpmCaDir,
  EK_CERTIFICATE_INDICES,
  EK_CERTIFICATE_NV_ATTRIBUTES,
  issueEkCertificate,
  loadOrCreateSoftwareTpmCa,
  SOFTWARE_TPM_CA_SUBJECT,
  SOFTWARE_TPM_MODEL,
  TPM_SPECIFICATION,
  type ManufactureOptions,
  type SoftwareTpmCa,
  type TpmIdentity,
} from './manufacture.js';

// The algorithms GetCapability reports and TestParms checks
export { IMPLEMENTED_ALGORITHMS, IMPLEMENTED_CURVES, profileAlgorithms, profileCurves, profileParamsRc, publicParmsRc } from './algorithms.js';

// Named profiles: the limits and algorithm set of a TPM (engine option `profile`)
export {
  checkProfile,
  DEFAULT_PROFILE,
  isProfileName,
  profileByName,
  profileForState,
  resolveProfile,
  TPM_PROFILES,
  type TpmProfile,
  type TpmProfileAlgorithms,
  type TpmProfileLimits,
  type TpmProfileName,
} from './profiles.js';

// TEST ONLY: fault injection for tests of clients and verifiers (engine option `faults`)
export { corruptNvIndex, enterLockout, FaultInjector, type FaultOptions, type RetryFault } from './faults.js';

// Where this TPM knowingly answers otherwise than libtpms (swtpm), each with why; the differential suite reads it
export { divergence, DIVERGENCES, findDivergence, type CommandName, type Divergence, type DivergenceId, type DivergenceRow } from './divergences.js';
