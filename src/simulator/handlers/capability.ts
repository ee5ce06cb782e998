/**
 * Part 3 §30.2 GetCapability. Each capability is one sorted list keyed by
 * property/handle/code; a page holds the items from `property` on, at most
 * `propertyCount` and at most what fits MAX_CAP_DATA, and moreData says
 * whether any remain (Part 3 §30.2.1).
 */
import { PT_FIXED, TPM_ALG, TPM_CAP, TPM_CC, TPM_HT, TPM_NT, TPM_PS, TPM_PT, TPM_PT_PCR, TPM_RH, TPM_RS_PW } from '../../tpm/constants.js';
import { GetCapability, TestParms } from '../../tpm/commands/index.js';
import { CAP_LIMITS } from '../../tpm/limits.js';
import { pcrSelection } from '../../tpm/pcr.js';
import { TPM_RC, TpmError, rcForParameter } from '../../tpm/rc.js';
import { TPMA_ALGORITHM, TPMA_CC, TPMA_NV, TPMA_PERMANENT, TPMA_STARTUP_CLEAR, type TPMS_CAPABILITY_DATA } from '../../tpm/types/index.js';
import { profileAlgorithms, profileCurves, publicParmsRc } from '../algorithms.js';
import { FIRMWARE_VERSION, type TpmEngine } from '../engine.js';
import { isNoIncrement, isStateSaved, pcrsFor } from '../pcr-rules.js';
import { PCR_AUTH_VALUE_GROUPS, PCR_COUNT, PCR_POLICY_GROUPS } from '../state.js';
import { handler, ok } from './handler.js';

/** Four ASCII characters packed big-endian, NUL-padded (Part 2 §6.13). */
function text4(s: string): number {
  const b = [0, 1, 2, 3].map((i) => (i < s.length ? s.charCodeAt(i) : 0));
  return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
}

/** design.md "Identity": never passes for hardware. 16 bytes of vendor string hold "trustroot SW TPM". */
const VENDOR = 'trustroot SW TPM';

function tpmProperties(engine: TpmEngine): [number, number][] {
  const s = engine.state;
  const v = engine.volatile;
  // The profile's limits (profiles.ts): what the engine enforces is what it reports.
  const limits = engine.profile.limits;
  const fw1 = ((FIRMWARE_VERSION.major << 16) | FIRMWARE_VERSION.minor) >>> 0;
  return [
    // Fixed properties (Part 2 §6.13, PT_FIXED group). Spec revision 1.59 (2019, day 312).
    [TPM_PT.FAMILY_INDICATOR, text4('2.0')],
    [TPM_PT.LEVEL, 0],
    [TPM_PT.REVISION, 159],
    [TPM_PT.DAY_OF_YEAR, 312],
    [TPM_PT.YEAR, 2019],
    [TPM_PT.MANUFACTURER, text4('TRST')],
    [TPM_PT.VENDOR_STRING_1, text4(VENDOR.slice(0, 4))],
    [TPM_PT.VENDOR_STRING_2, text4(VENDOR.slice(4, 8))],
    [TPM_PT.VENDOR_STRING_3, text4(VENDOR.slice(8, 12))],
    [TPM_PT.VENDOR_STRING_4, text4(VENDOR.slice(12, 16))],
    [TPM_PT.VENDOR_TPM_TYPE, 1],
    [TPM_PT.FIRMWARE_VERSION_1, fw1],
    [TPM_PT.FIRMWARE_VERSION_2, FIRMWARE_VERSION.patch << 16],
    [TPM_PT.INPUT_BUFFER, limits.inputBuffer],
    [TPM_PT.HR_TRANSIENT_MIN, limits.loadedObjects],
    [TPM_PT.HR_PERSISTENT_MIN, limits.persistentObjects],
    [TPM_PT.HR_LOADED_MIN, limits.loadedSessions],
    [TPM_PT.ACTIVE_SESSIONS_MAX, limits.activeSessions],
    [TPM_PT.PCR_COUNT, PCR_COUNT],
    [TPM_PT.PCR_SELECT_MIN, 3],
    [TPM_PT.CONTEXT_GAP_MAX, 0xffff],
    [TPM_PT.NV_COUNTERS_MAX, 0],
    [TPM_PT.NV_INDEX_MAX, limits.nvIndexMax],
    [TPM_PT.MEMORY, 0],
    [TPM_PT.CLOCK_UPDATE, 0x16], // log2 of the Clock persistence interval in ms, as the reference code
    [TPM_PT.CONTEXT_HASH, TPM_ALG.SHA512],
    [TPM_PT.CONTEXT_SYM, TPM_ALG.AES],
    [TPM_PT.CONTEXT_SYM_SIZE, 256],
    [TPM_PT.ORDERLY_COUNT, 255],
    [TPM_PT.MAX_COMMAND_SIZE, limits.maxCommandSize],
    [TPM_PT.MAX_RESPONSE_SIZE, limits.maxResponseSize],
    [TPM_PT.MAX_DIGEST, 64],
    [TPM_PT.MAX_OBJECT_CONTEXT, 0],
    [TPM_PT.MAX_SESSION_CONTEXT, 0],
    [TPM_PT.PS_FAMILY_INDICATOR, TPM_PS.PC],
    [TPM_PT.PS_LEVEL, 0],
    [TPM_PT.PS_REVISION, 0x105],
    [TPM_PT.PS_DAY_OF_YEAR, 0],
    [TPM_PT.PS_YEAR, 0],
    [TPM_PT.SPLIT_MAX, 0],
    [TPM_PT.TOTAL_COMMANDS, engine.implementedCommands().length],
    [TPM_PT.LIBRARY_COMMANDS, engine.implementedCommands().length],
    [TPM_PT.VENDOR_COMMANDS, 0],
    [TPM_PT.NV_BUFFER_MAX, limits.nvBufferMax],
    [TPM_PT.MODES, 0],
    [TPM_PT.MAX_CAP_BUFFER, 1024],
    // Variable properties (PT_VAR group).
    [
      TPM_PT.PERMANENT,
      TPMA_PERMANENT.toWord(
        TPMA_PERMANENT.of({
          ownerAuthSet: s.auths.owner.authValue.length > 0,
          endorsementAuthSet: s.auths.endorsement.authValue.length > 0,
          lockoutAuthSet: s.auths.lockout.authValue.length > 0,
          disableClear: s.disableClear,
          inLockout: s.dictionaryAttack.maxTries > 0 && s.dictionaryAttack.failedTries >= s.dictionaryAttack.maxTries,
        }),
      ),
    ],
    [
      TPM_PT.STARTUP_CLEAR,
      TPMA_STARTUP_CLEAR.toWord(TPMA_STARTUP_CLEAR.of({ phEnable: v.phEnable, shEnable: v.shEnable, ehEnable: v.ehEnable, phEnableNV: s.phEnableNV, orderly: s.orderlyShutdown !== 'none' })),
    ],
    [TPM_PT.HR_NV_INDEX, s.nvIndices.length],
    [TPM_PT.HR_LOADED, v.sessions.count],
    [TPM_PT.HR_LOADED_AVAIL, limits.loadedSessions - v.sessions.count],
    [TPM_PT.HR_ACTIVE, v.sessions.activeCount],
    [TPM_PT.HR_ACTIVE_AVAIL, limits.activeSessions - v.sessions.activeCount],
    [TPM_PT.HR_TRANSIENT_AVAIL, limits.loadedObjects - v.objects.count],
    [TPM_PT.HR_PERSISTENT, s.persistentObjects.length],
    [TPM_PT.HR_PERSISTENT_AVAIL, limits.persistentObjects - s.persistentObjects.length],
    // Part 2 §6.13: the defined indices of type TPM_NT_COUNTER.
    [TPM_PT.NV_COUNTERS, s.nvIndices.filter((n) => TPMA_NV.fromWord(n.attributes).TPM_NT === TPM_NT.COUNTER).length],
    [TPM_PT.NV_COUNTERS_AVAIL, 0],
    [TPM_PT.ALGORITHM_SET, 0],
    [TPM_PT.LOADED_CURVES, engine.profile.algorithms.eccCurves.length],
    [TPM_PT.LOCKOUT_COUNTER, s.dictionaryAttack.failedTries],
    [TPM_PT.MAX_AUTH_FAIL, s.dictionaryAttack.maxTries],
    [TPM_PT.LOCKOUT_INTERVAL, s.dictionaryAttack.recoveryTime],
    [TPM_PT.LOCKOUT_RECOVERY, s.dictionaryAttack.lockoutRecovery],
    [TPM_PT.NV_WRITE_RECOVERY, 0],
    [TPM_PT.AUDIT_COUNTER_0, 0],
    [TPM_PT.AUDIT_COUNTER_1, 0],
  ];
}

/**
 * TPMA_CC's nv, extensive and flushed bits (Part 2 §8.9), per command as
 * Part 3's command tables give them (libtpms's CommandAttributeData): nv —
 * the command may write NV, so it may be refused while NV is rate-limited;
 * extensive — it may flush many objects; flushed — it flushes its first
 * handle's object (a sequence) when it completes.
 */
const NV_COMMANDS: ReadonlySet<number> = new Set([
  TPM_CC.NV_UndefineSpaceSpecial,
  TPM_CC.EvictControl,
  TPM_CC.HierarchyControl,
  TPM_CC.NV_UndefineSpace,
  TPM_CC.ChangeEPS,
  TPM_CC.ChangePPS,
  TPM_CC.Clear,
  TPM_CC.ClearControl,
  TPM_CC.ClockSet,
  TPM_CC.HierarchyChangeAuth,
  TPM_CC.NV_DefineSpace,
  TPM_CC.PCR_Allocate,
  TPM_CC.PCR_SetAuthPolicy,
  TPM_CC.SetPrimaryPolicy,
  TPM_CC.NV_GlobalWriteLock,
  TPM_CC.GetCommandAuditDigest,
  TPM_CC.NV_Increment,
  TPM_CC.NV_SetBits,
  TPM_CC.NV_Extend,
  TPM_CC.NV_Write,
  TPM_CC.NV_WriteLock,
  TPM_CC.DictionaryAttackLockReset,
  TPM_CC.DictionaryAttackParameters,
  TPM_CC.NV_ChangeAuth,
  TPM_CC.PCR_Event,
  TPM_CC.PCR_Reset,
  TPM_CC.SetCommandCodeAuditStatus,
  TPM_CC.IncrementalSelfTest,
  TPM_CC.SelfTest,
  TPM_CC.Startup,
  TPM_CC.Shutdown,
  TPM_CC.StirRandom,
  TPM_CC.NV_ReadLock,
  TPM_CC.PCR_Extend,
  TPM_CC.EventSequenceComplete,
]);
const EXTENSIVE_COMMANDS: ReadonlySet<number> = new Set([TPM_CC.HierarchyControl, TPM_CC.ChangeEPS, TPM_CC.ChangePPS, TPM_CC.Clear]);
const FLUSHED_COMMANDS: ReadonlySet<number> = new Set([TPM_CC.SequenceComplete, TPM_CC.EventSequenceComplete]);

/** The TPMA_CC of an implemented command (TPM_CAP_COMMANDS). */
export function commandAttributes(engine: TpmEngine, code: number): TPMA_CC {
  const cmd = engine.commandRecord(code)!;
  return TPMA_CC.of({
    commandIndex: code & 0xffff,
    nv: NV_COMMANDS.has(code),
    extensive: EXTENSIVE_COMMANDS.has(code),
    flushed: FLUSHED_COMMANDS.has(code),
    cHandles: cmd.handleNames.length,
    rHandle: cmd.responseHandleNames.length > 0,
  });
}

/** Permanent handles a TPM lists under TPM_CAP_HANDLES (Part 2 §7.4). */
const PERMANENT_HANDLES = [TPM_RH.OWNER, TPM_RH.NULL, TPM_RS_PW, TPM_RH.LOCKOUT, TPM_RH.ENDORSEMENT, TPM_RH.PLATFORM, TPM_RH.PLATFORM_NV];

/** One page: items with key ≥ start, at most `count` and at most `max`. */
function page<T>(items: readonly [number, T][], start: number, count: number, max: number): { moreData: 0 | 1; data: T[] } {
  const from = items.filter(([k]) => k >= start >>> 0).sort((a, b) => a[0] - b[0]);
  const n = Math.min(count, max);
  return { moreData: from.length > n ? 1 : 0, data: from.slice(0, n).map(([, v]) => v) };
}

function pcrProperties(): [number, ReturnType<typeof pcrSelection>['pcrSelect']][] {
  const all = Array.from({ length: PCR_COUNT }, (_, i) => i);
  const sel = (pcrs: number[]): Uint8Array => pcrSelection(TPM_ALG.SHA256, pcrs).pcrSelect;
  const out: [number, Uint8Array][] = [[TPM_PT_PCR.SAVE, sel(all.filter(isStateSaved))]];
  for (let l = 0; l <= 4; l++) {
    out.push([TPM_PT_PCR.EXTEND_L0 + 2 * l, sel(pcrsFor('extend', l, PCR_COUNT))]);
    out.push([TPM_PT_PCR.RESET_L0 + 2 * l, sel(pcrsFor('reset', l, PCR_COUNT))]);
  }
  out.push([TPM_PT_PCR.NO_INCREMENT, sel(all.filter(isNoIncrement))]);
  out.push([TPM_PT_PCR.DRTM_RESET, sel([17, 18, 19, 20, 21, 22])]);
  // The PCRs of the authorization groups (PCR_SetAuthPolicy, PCR_SetAuthValue).
  out.push([TPM_PT_PCR.POLICY, sel(PCR_POLICY_GROUPS.flat())]);
  out.push([TPM_PT_PCR.AUTH, sel(PCR_AUTH_VALUE_GROUPS.flat())]);
  return out;
}

export const getCapabilityHandler = handler(GetCapability, ({ engine }, _h, { capability, property, propertyCount }) => {
  let result: { moreData: 0 | 1; capabilityData: TPMS_CAPABILITY_DATA };
  switch (capability) {
    case TPM_CAP.ALGS: {
      const p = page([...profileAlgorithms(engine.profile)].map(([alg, algProperties]) => [alg, { alg, algProperties }] as [number, { alg: number; algProperties: TPMA_ALGORITHM }]), property, propertyCount, CAP_LIMITS.MAX_CAP_ALGS);
      result = { moreData: p.moreData, capabilityData: { capability, data: p.data } as TPMS_CAPABILITY_DATA };
      break;
    }
    case TPM_CAP.HANDLES: {
      const s = engine.state;
      const handles = [
        ...Array.from({ length: PCR_COUNT }, (_, i) => i),
        ...s.nvIndices.map((n) => n.nvIndex),
        ...PERMANENT_HANDLES,
        ...s.persistentObjects.map((o) => o.handle),
        ...engine.volatile.objects.handles(),
      ];
      // Part 3 §30.2: only handles of the type named by property's top byte.
      const type = property >>> 24;
      // Part 2 §7.2: TPM_HT_LOADED_SESSION (0x02) lists loaded sessions and TPM_HT_SAVED_SESSION (0x03) saved ones, each by its own handle, in slot order.
      const sessions = type === TPM_HT.LOADED_SESSION ? engine.volatile.sessions.handles() : type === TPM_HT.SAVED_SESSION ? engine.volatile.sessions.savedHandles() : undefined;
      const items = sessions !== undefined ? sessions.map((h) => [((type << 24) | (h & 0xffffff)) >>> 0, h] as [number, number]) : handles.filter((h) => h >>> 24 === type).map((h) => [h, h] as [number, number]);
      const p = page(items, property, propertyCount, CAP_LIMITS.MAX_CAP_HANDLES);
      result = { moreData: p.moreData, capabilityData: { capability, data: p.data } as TPMS_CAPABILITY_DATA };
      break;
    }
    case TPM_CAP.COMMANDS: {
      const items = engine.implementedCommands().map((code) => [code, commandAttributes(engine, code)] as [number, TPMA_CC]);
      const p = page(items, property, propertyCount, CAP_LIMITS.MAX_CAP_CC);
      result = { moreData: p.moreData, capabilityData: { capability, data: p.data } as TPMS_CAPABILITY_DATA };
      break;
    }
    case TPM_CAP.PP_COMMANDS:
    case TPM_CAP.AUDIT_COMMANDS: {
      const codes = capability === TPM_CAP.AUDIT_COMMANDS ? engine.state.commandAudit.commands : [];
      const p = page(codes.map((c) => [c, c] as [number, number]), property, propertyCount, CAP_LIMITS.MAX_CAP_CC);
      result = { moreData: p.moreData, capabilityData: { capability, data: p.data } as TPMS_CAPABILITY_DATA };
      break;
    }
    case TPM_CAP.PCRS: {
      // Part 3 §30.2: the whole allocation in one answer; property is ignored.
      const data = engine.state.pcrAllocation.map((b) => pcrSelection(b.hashAlg, b.pcrs));
      result = { moreData: 0, capabilityData: { capability, data } as TPMS_CAPABILITY_DATA };
      break;
    }
    case TPM_CAP.TPM_PROPERTIES: {
      // Part 2 §6.13: paging stays inside the group (PT_FIXED or PT_VAR) that `property` falls in.
      const group = Math.max(property >>> 0, PT_FIXED) & 0xffffff00;
      const items = tpmProperties(engine)
        .filter(([pt]) => (pt & 0xffffff00) === group)
        .map(([pt, value]) => [pt, { property: pt, value }] as [number, { property: number; value: number }]);
      const p = page(items, property, propertyCount, CAP_LIMITS.MAX_TPM_PROPERTIES);
      result = { moreData: p.moreData, capabilityData: { capability, data: p.data } as TPMS_CAPABILITY_DATA };
      break;
    }
    case TPM_CAP.PCR_PROPERTIES: {
      const items = pcrProperties().map(([tag, pcrSelect]) => [tag, { tag, pcrSelect }] as [number, { tag: number; pcrSelect: Uint8Array }]);
      const p = page(items, property, propertyCount, CAP_LIMITS.MAX_PCR_PROPERTIES);
      result = { moreData: p.moreData, capabilityData: { capability, data: p.data } as TPMS_CAPABILITY_DATA };
      break;
    }
    case TPM_CAP.ECC_CURVES: {
      const p = page(profileCurves(engine.profile).map((c) => [c, c] as [number, number]), property, propertyCount, CAP_LIMITS.MAX_ECC_CURVES);
      result = { moreData: p.moreData, capabilityData: { capability, data: p.data } as TPMS_CAPABILITY_DATA };
      break;
    }
    case TPM_CAP.AUTH_POLICIES:
    case TPM_CAP.ACT:
      result = { moreData: 0, capabilityData: { capability, data: [] } as unknown as TPMS_CAPABILITY_DATA };
      break;
    default:
      // Part 3 §30.2: TPM_RC_VALUE for a capability the TPM does not know.
      throw new TpmError(rcForParameter(TPM_RC.VALUE, 1));
  }
  return ok<typeof GetCapability>(result);
});

/** Part 3 §30.3: whether the TPM supports a set of object parameters (algorithms.ts holds the one list it checks, narrowed by the profile). */
export const testParmsHandler = handler(TestParms, ({ engine }, _h, { parameters }) => {
  const rc = publicParmsRc(parameters, engine.profile);
  if (rc !== 0) throw new TpmError(rcForParameter(rc, 1));
  return ok<typeof TestParms>({});
});
