/**
 * Everything a software TPM keeps across a restart, as one plain versioned
 * object. The engine owns one; `store.ts` serializes and validates it.
 *
 * Only plain data lives here: numbers, booleans, `bigint` for UINT64 values,
 * `Uint8Array` for bytes, arrays and nested plain objects — no classes, no
 * Maps, no functions — so that a store can write it field by field and check
 * every field on load. Structures that the core can marshal (TPMT_PUBLIC,
 * TPMT_SENSITIVE) are kept as their marshaled bytes for the same reason.
 */
import { randomBytes } from 'node:crypto';
import { pooledRandomSource, type RandomSource as CoreRandomSource } from '../tpm/crypto/random.js';
import { TPM_ALG, TPM_CC } from '../tpm/constants.js';

/**
 * The current layout. A store migrates older layouts (STATE_MIGRATIONS) and
 * refuses newer ones. History: 1 — first layout; 2 — nvCounterMax and
 * ekCertificates added; 3 — commandAudit.digest, counter and digestResetCount;
 * 4 — part 2 of the software TPM: pcrAuthPolicies and pcrAuthValues
 * (PCR_SetAuthPolicy/PCR_SetAuthValue), commitCounter and commitArray (Commit,
 * commit.ts), profile (profiles.ts), dictionaryAttack.daUsed, selfHealElapsed and
 * lockoutElapsed (DA across power cycles), savedState.sessions,
 * sessionSequence and pcrUpdateCounter (across TPM Restart and Resume). Layouts are
 * numbered by release, not by commit: a layout nobody could have stored gets no
 * migration of its own.
 */
export const SIMULATOR_STATE_VERSION = 4 as const;

/** Number of PCRs in every bank (PC Client platform profile). */
export const PCR_COUNT = 24;

/**
 * PCR authorization groups, as libtpms's PC Client configuration has them
 * (reference PCRBelongsPolicyGroup/PCRBelongsAuthGroup): one policy group and
 * one authValue group, each holding PCR 20–22.
 */
export const PCR_POLICY_GROUPS: readonly (readonly number[])[] = [[20, 21, 22]];
export const PCR_AUTH_VALUE_GROUPS: readonly (readonly number[])[] = [[20, 21, 22]];

/** The policy group holding PCR `pcr` (the reference's PCRBelongsPolicyGroup), or undefined. */
export function pcrPolicyGroup(pcr: number): number | undefined {
  const i = PCR_POLICY_GROUPS.findIndex((g) => g.includes(pcr));
  return i < 0 ? undefined : i;
}

/** The policy of the group holding PCR `pcr` (the reference's PCRGetAuthPolicy), or undefined outside every policy group. */
export function pcrAuthPolicyOf(state: SimulatorState, pcr: number): PcrAuthPolicy | undefined {
  const group = pcrPolicyGroup(pcr);
  return group === undefined ? undefined : state.pcrAuthPolicies[group];
}

/** The authValue group holding PCR `pcr` (the reference's PCRBelongsAuthGroup), or undefined. */
export function pcrAuthValueGroup(pcr: number): number | undefined {
  const i = PCR_AUTH_VALUE_GROUPS.findIndex((g) => g.includes(pcr));
  return i < 0 ? undefined : i;
}

/** Bytes of a primary seed and of a proof value (Part 1 §14.3, sized for SHA-512 keys). */
export const SEED_SIZE = 64;

/** Hash algorithms a bank may use: those the engine implements. */
export type PcrBankAlg = typeof TPM_ALG.SHA1 | typeof TPM_ALG.SHA256 | typeof TPM_ALG.SHA384 | typeof TPM_ALG.SHA512;

/** The hierarchies with a primary seed (Part 1 §14.3): platform, storage (owner), endorsement, null. */
export interface HierarchySeeds {
  platform: Uint8Array;
  owner: Uint8Array;
  endorsement: Uint8Array;
  /** Part 1 §14.3.5: the null seed changes on every TPM Reset; kept so a restored state answers the same until then. */
  null: Uint8Array;
}

/** Secret proof values (Part 1 §14.3, "proof"): bind tickets and contexts to a hierarchy. */
export interface HierarchyProofs {
  platform: Uint8Array;
  owner: Uint8Array;
  endorsement: Uint8Array;
  null: Uint8Array;
}

/** The authValue and authPolicy of one permanent handle (Part 1 §13.8). */
export interface HierarchyAuth {
  authValue: Uint8Array;
  /** Empty when no policy is set. */
  authPolicy: Uint8Array;
  /** TPM_ALG of authPolicy; TPM_ALG.NULL when none is set. */
  policyAlg: number;
}

export interface HierarchyAuths {
  owner: HierarchyAuth;
  endorsement: HierarchyAuth;
  platform: HierarchyAuth;
  lockout: HierarchyAuth;
}

/** The authPolicy of one PCR policy group (Part 3 §22.7, the reference's gp.pcrPolicies). */
export interface PcrAuthPolicy {
  /** TPM_ALG of policy; TPM_ALG.NULL when none is set (then the PCRs take no policy session). */
  hashAlg: number;
  policy: Uint8Array;
}

/** One allocated PCR bank (Part 3 §22.5, PCR_Allocate takes effect on the next reset). */
export interface PcrBankAllocation {
  hashAlg: PcrBankAlg;
  /** The PCR indices allocated in this bank, ascending. */
  pcrs: number[];
}

/**
 * Clock and reset counters (Part 1 §36.3–§36.6). `clock` is milliseconds the
 * TPM has been powered, persisted so it never goes backwards; `safe` is false
 * when the last stored clock may be behind the real one (a disorderly shutdown).
 */
export interface ClockState {
  clock: bigint;
  resetCount: number;
  restartCount: number;
  safe: boolean;
}

/** Dictionary-attack protection (Part 1 §19.8.6; TPM_PT_MAX_AUTH_FAIL, LOCKOUT_*). */
export interface DictionaryAttackState {
  failedTries: number;
  maxTries: number;
  /** Seconds per failure to forget; 0 disables the lockout. */
  recoveryTime: number;
  /** Seconds before lockoutAuth may be tried again after a failure. */
  lockoutRecovery: number;
  /** true while lockoutAuth is locked out (until lockoutRecovery elapses). */
  lockoutAuthLocked: boolean;
  /**
   * A DA-protected authValue was checked since the last Startup or Shutdown
   * (libtpms's g_daUsed / SU_DA_USED): a disorderly power loss now counts as
   * one failure at the next Startup (Part 1 §19.8.6).
   */
  daUsed: boolean;
  /** Milliseconds the self-healing timer had run at the last orderly Shutdown (carried into the next power-on). */
  selfHealElapsed: number;
  /** Milliseconds the lockoutAuth recovery timer had run at the last orderly Shutdown. */
  lockoutElapsed: number;
}

/** One NV index (Part 1 §37; Part 2 §13.5 TPMS_NV_PUBLIC plus the data and authValue). */
export interface NvIndexState {
  nvIndex: number;
  nameAlg: number;
  /** TPMA_NV as its UINT32 word (TPMA_NV.toWord). */
  attributes: number;
  authPolicy: Uint8Array;
  authValue: Uint8Array;
  dataSize: number;
  /** Written contents; for counters/bit fields the 8-byte big-endian value. */
  data: Uint8Array;
}

/** One object made persistent with EvictControl (Part 3 §28.5). */
export interface PersistentObjectState {
  handle: number;
  /** The hierarchy the object belongs to (TPM_RH.OWNER, ENDORSEMENT or PLATFORM). */
  hierarchy: number;
  /** Marshaled TPMT_PUBLIC. */
  public: Uint8Array;
  /** Marshaled TPMT_SENSITIVE. */
  sensitive: Uint8Array;
  /** Object Name (nameAlg ‖ H(public)), kept to avoid rehashing on load. */
  name: Uint8Array;
  /** Qualified name of the object's parent chain (Part 1 §16). */
  qualifiedName: Uint8Array;
}

/**
 * What TPM2_Shutdown(STATE) saved for the next TPM Resume (Part 1 §36.8):
 * PCR values of the PCRs that are preserved across a resume.
 */
export interface SavedState {
  /** Per bank, per PCR index, the saved value. */
  pcrs: { hashAlg: PcrBankAlg; values: Uint8Array[] }[];
  /** Hierarchy enables at shutdown (Part 1 §13.5; restored on Resume). */
  shEnable: boolean;
  ehEnable: boolean;
  /**
   * Sessions whose context was saved when Shutdown(STATE) came (Part 1 §30.5,
   * the reference's gr.contextArray): their contexts load again after the
   * Resume or Restart; loaded sessions are lost.
   */
  sessions: SavedSessionSlot[];
  /** The session context counter then (the reference's gr.contextCounter), so no context sequence repeats. */
  sessionSequence: bigint;
  /** pcrUpdateCounter then (the reference keeps it in gr): a Resume or Restart goes on counting from it. */
  pcrUpdateCounter: number;
}

/** A session saved by ContextSave: its handle and the sequence of its one valid context. */
export interface SavedSessionSlot {
  handle: number;
  sequence: bigint;
}

/** Command audit (Part 1 §32, Part 3 §21.2 SetCommandCodeAuditStatus). */
export interface CommandAuditState {
  /** The audit digest's hash; SHA-512 (the context integrity hash, as libtpms) from manufacture. */
  hashAlg: number;
  /** Command codes being audited, ascending; SetCommandCodeAuditStatus always among them (Part 3 §21.2). */
  commands: number[];
  /** The running command audit digest; empty when cleared (the next audited command starts a new one and counts it). */
  digest: Uint8Array;
  /** auditCounter (Part 1 §32.3): audit sequences started, UINT64. */
  counter: bigint;
  /** clock.resetCount when `digest` was last extended: a TPM Reset clears the digest (reference CommandAuditStartup). */
  digestResetCount: number;
}

export interface SimulatorState {
  version: typeof SIMULATOR_STATE_VERSION;
  seeds: HierarchySeeds;
  proofs: HierarchyProofs;
  auths: HierarchyAuths;
  /** Part 1 §13.5: phEnableNV survives; shEnable/ehEnable are restored only on Resume. */
  phEnableNV: boolean;
  /** Part 3 §24.7 ClearControl. */
  disableClear: boolean;
  /** Banks in effect now. */
  pcrAllocation: PcrBankAllocation[];
  /** Allocation PCR_Allocate asked for, applied at the next TPM Reset; null when none pending. */
  pendingPcrAllocation: PcrBankAllocation[] | null;
  clock: ClockState;
  dictionaryAttack: DictionaryAttackState;
  commandAudit: CommandAuditState;
  nvIndices: NvIndexState[];
  persistentObjects: PersistentObjectState[];
  /** Set by Shutdown(STATE), consumed by the next Startup; null otherwise. */
  savedState: SavedState | null;
  /**
   * Whether the last power-off followed a Shutdown (Part 1 §36.8, "orderly").
   * Startup(CLEAR) after a disorderly power-off counts as a reset with safe = false.
   */
  orderlyShutdown: 'none' | 'clear' | 'state';
  /**
   * Part 1 §37.2.3.4: the highest value of any written NV counter deleted so
   * far (UndefineSpace, Clear); a new counter starts there, so no counter
   * value repeats (the reference's maxCount).
   */
  nvCounterMax: bigint;
  /** EK certificates of manufacture (manufacture.ts). */
  ekCertificates: EkCertificatesState;
  /** Part 3 §22.7: one per PCR_POLICY_GROUPS entry; set by PCR_SetAuthPolicy, kept across every reset. */
  pcrAuthPolicies: PcrAuthPolicy[];
  /**
   * Part 3 §22.8: one authValue per PCR_AUTH_VALUE_GROUPS entry. State-clear
   * data (the reference's gc.pcrAuthValues): emptied by every Startup(CLEAR)
   * and by Clear, kept only across Shutdown(STATE) + Startup(STATE); stored
   * here because that path must survive the power-off in between.
   */
  pcrAuthValues: Uint8Array[];
  /** Part 3 §19.2: Commit's counter (the reference's gr.commitCounter, UINT64; Commit answers its low 16 bits). */
  commitCounter: bigint;
  /** One bit per outstanding commitment, by counter mod 128 (the reference's gr.commitArray, 16 bytes). */
  commitArray: Uint8Array;
  /**
   * The profile this TPM was manufactured with (profiles.ts): a TPM's algorithm
   * set and limits never change, so an engine opens the state only under it.
   */
  profile: string;
}

/** What manufacture.ts keeps about the EK certificate indices it provisioned. */
export interface EkCertificatesState {
  /** Whether the indices were provisioned (once, by the first engine given a CA). */
  provisioned: boolean;
  /** Certificate indices defined but whose certificate is made when first read. */
  pending: number[];
  /** TPM_PT_FIRMWARE_VERSION_1 at manufacture: the certificates' tpmVersion. */
  firmwareVersion1: number;
}

/** The PC Client default: four banks (SHA-1, SHA-256, SHA-384, SHA-512) of 24 PCRs each. */
export function defaultPcrAllocation(): PcrBankAllocation[] {
  const all = Array.from({ length: PCR_COUNT }, (_, i) => i);
  return [TPM_ALG.SHA1, TPM_ALG.SHA256, TPM_ALG.SHA384, TPM_ALG.SHA512].map((hashAlg) => ({ hashAlg, pcrs: [...all] }));
}

function emptyAuth(): HierarchyAuth {
  return { authValue: new Uint8Array(0), authPolicy: new Uint8Array(0), policyAlg: TPM_ALG.NULL };
}

/** A source of secret bytes; node:crypto's randomBytes unless a test gives a deterministic one. */
export type RandomSource = CoreRandomSource;

export const defaultRandomSource: RandomSource = (size) => new Uint8Array(randomBytes(size));

/** The engine's default source: node:crypto drawn a block at a time (src/tpm/crypto/random.ts). */
export { pooledRandomSource };

/** What manufacture reads of a profile (profiles.ts TpmProfile): its name and the banks it allocates. */
export interface ManufactureProfile {
  readonly name: string;
  readonly algorithms: { readonly pcrBanks: readonly number[] };
}

/**
 * The state of a TPM fresh from manufacturing: new seeds and proofs, empty
 * auths, the profile's PCR banks (the libtpms profile's four by default), clock 0
 * (Part 1 §36.3), no NV indices.
 */
export function createSimulatorState(random: RandomSource = defaultRandomSource, profile?: ManufactureProfile): SimulatorState {
  const banks = profile?.algorithms.pcrBanks;
  return {
    version: SIMULATOR_STATE_VERSION,
    seeds: { platform: random(SEED_SIZE), owner: random(SEED_SIZE), endorsement: random(SEED_SIZE), null: random(SEED_SIZE) },
    proofs: { platform: random(SEED_SIZE), owner: random(SEED_SIZE), endorsement: random(SEED_SIZE), null: random(SEED_SIZE) },
    auths: { owner: emptyAuth(), endorsement: emptyAuth(), platform: emptyAuth(), lockout: emptyAuth() },
    phEnableNV: true,
    disableClear: false,
    pcrAllocation: banks === undefined ? defaultPcrAllocation() : defaultPcrAllocation().filter((b) => banks.includes(b.hashAlg)),
    pendingPcrAllocation: null,
    clock: { clock: 0n, resetCount: 0, restartCount: 0, safe: true },
    // libtpms defaults (TPM_PT_MAX_AUTH_FAIL 3, LOCKOUT_INTERVAL 1000 s, LOCKOUT_RECOVERY 1000 s).
    dictionaryAttack: { failedTries: 0, maxTries: 3, recoveryTime: 1000, lockoutRecovery: 1000, lockoutAuthLocked: false, daUsed: false, selfHealElapsed: 0, lockoutElapsed: 0 },
    // Reference CommandAuditPreInstall: SetCommandCodeAuditStatus audited, the context integrity hash (the tickets' SHA-512), counter 0.
    commandAudit: { hashAlg: TPM_ALG.SHA512, commands: [TPM_CC.SetCommandCodeAuditStatus], digest: new Uint8Array(0), counter: 0n, digestResetCount: 0 },
    nvIndices: [],
    persistentObjects: [],
    savedState: null,
    // Manufacturing ends orderly: the first Startup(CLEAR) is a TPM Reset with safe = YES (as swtpm reports).
    orderlyShutdown: 'clear',
    nvCounterMax: 0n,
    ekCertificates: { provisioned: false, pending: [], firmwareVersion1: 0 },
    ...noPcrAuthorization(),
    commitCounter: 0n,
    commitArray: new Uint8Array(16),
    profile: profile?.name ?? 'libtpms',
  };
}

/** Reference PCRSimStart: no PCR policy (TPM_ALG_NULL) and empty authValues in every group. */
function noPcrAuthorization(): Pick<SimulatorState, 'pcrAuthPolicies' | 'pcrAuthValues'> {
  return {
    pcrAuthPolicies: PCR_POLICY_GROUPS.map(() => ({ hashAlg: TPM_ALG.NULL, policy: new Uint8Array(0) })),
    pcrAuthValues: PCR_AUTH_VALUE_GROUPS.map(() => new Uint8Array(0)),
  };
}

/**
 * Upgrades of stored layouts, keyed by the version they read: each returns
 * the next version's layout, so a store applies them in turn. Each fills new
 * fields with what an older TPM implied (no counter ever deleted, no EK
 * certificates provisioned); the store validates the result as usual.
 */
export const STATE_MIGRATIONS: Readonly<Record<number, (old: { version: number }) => { version: number }>> = {
  1: (old) => ({ ...old, version: 2, nvCounterMax: 0n, ekCertificates: { provisioned: false, pending: [], firmwareVersion1: 0 } }),
  // Layout 2 had no command audit: its hashAlg was never set (NULL) and its list was empty, so both take the manufacture default; no digest yet.
  2: (old) => {
    const audit = (old as { commandAudit?: { hashAlg?: unknown; commands?: unknown } }).commandAudit;
    const hashAlg = audit?.hashAlg === TPM_ALG.NULL ? TPM_ALG.SHA512 : audit?.hashAlg;
    const listed = Array.isArray(audit?.commands) ? (audit.commands as unknown[]) : [];
    const commands = listed.includes(TPM_CC.SetCommandCodeAuditStatus) ? listed : [...listed, TPM_CC.SetCommandCodeAuditStatus].sort((a, b) => Number(a) - Number(b));
    return { ...old, version: 3, commandAudit: { ...audit, hashAlg, commands, digest: new Uint8Array(0), counter: 0n, digestResetCount: 0 } };
  },
  // Layout 3 is the TPM before part 2: no PCR authorization (no policy, empty authValues, as manufactured), Commit's
  // counter in memory only (none outstanding), the libtpms profile (the only one), no DA use recorded nor DA timer
  // carried over a power cycle, no saved session kept across Shutdown(STATE).
  3: (old) => {
    const { dictionaryAttack, savedState } = old as { dictionaryAttack?: object; savedState?: object | null };
    return {
      ...old,
      version: 4,
      ...noPcrAuthorization(),
      commitCounter: 0n,
      commitArray: new Uint8Array(16),
      profile: 'libtpms',
      dictionaryAttack: { ...dictionaryAttack, daUsed: false, selfHealElapsed: 0, lockoutElapsed: 0 },
      savedState: savedState === null || savedState === undefined ? savedState : { ...savedState, sessions: [], sessionSequence: 0n, pcrUpdateCounter: 0 },
    };
  },
};
