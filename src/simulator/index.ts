/** trustroot/simulator — a software TPM 2.0 engine (design.md "Software TPM"). */
export { ENGINE_LIMITS, FIRMWARE_VERSION, TpmEngine, type TpmEngineOptions, type VolatileState } from './engine.js';
export {
  PCR_COUNT,
  SEED_SIZE,
  SIMULATOR_STATE_VERSION,
  createSimulatorState,
  defaultPcrAllocation,
  defaultRandomSource,
  type ClockState,
  type CommandAuditState,
  type DictionaryAttackState,
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
