/**
 * Part 3 §24 Hierarchy Commands (HierarchyControl, SetPrimaryPolicy,
 * ChangePPS, ChangeEPS, HierarchyChangeAuth, Clear, ClearControl), §25
 * Dictionary Attack Functions (DictionaryAttackLockReset,
 * DictionaryAttackParameters) and §28.5 EvictControl. Each that changes what
 * survives a restart sets `ctx.persistentChanged` (HierarchyControl only for
 * phEnableNV: the other enables are volatile).
 *
 * Authorization (the hierarchy's password, lockout and DA accounting) is the
 * engine's (Part 3 §5.4); the checks here are the commands' own.
 */
import {
  ChangeEPS,
  ChangePPS,
  Clear,
  ClearControl,
  DictionaryAttackLockReset,
  DictionaryAttackParameters,
  EvictControl,
  HierarchyChangeAuth,
  HierarchyControl,
  SetPrimaryPolicy,
} from '../../tpm/commands/index.js';
import { HANDLE_RANGE, TPM_ALG, TPM_HT, TPM_RH } from '../../tpm/constants.js';
import { digestSize } from '../../tpm/crypto/hash.js';
import { TPM_RC, TpmError, rcForHandle, rcForParameter } from '../../tpm/rc.js';
import { trimAuthValue } from '../../tpm/session-crypto.js';
import { TPMA_NV, TPMT_PUBLIC, TPMT_SENSITIVE } from '../../tpm/types/index.js';
import { encode } from '../../tpm/wire/codec.js';
import type { TpmEngine } from '../engine.js';
import { SEED_SIZE, type HierarchyAuth } from '../state.js';
import { TICKET_HASH_ALG } from '../tickets.js';
import type { CommandHandler } from './handler.js';
import { handler, ok } from './handler.js';
import { clearPcrAuthValues, isImplementedHash } from './integrity.js';
import { deleteNvIndices } from './nv.js';
import { findObject, isSequence } from './object.js';

function inRange(h: number, range: readonly [number, number]): boolean {
  return h >= range[0] && h <= range[1];
}

/**
 * Part 3 §28.5. A transient object becomes persistent at `persistentHandle`
 * (owner: the owner range and an owner or endorsement object; platform: the
 * platform range and a platform object); a persistent object (objectHandle ==
 * persistentHandle) is removed (the owner may not remove platform objects).
 */
export const evictControlHandler = handler(EvictControl, (ctx, { auth, objectHandle }, { persistentHandle }) => {
  const { engine } = ctx;
  // A sequence is a temporary object: it cannot be made persistent.
  if (isSequence(engine, objectHandle)) throw new TpmError(rcForHandle(TPM_RC.ATTRIBUTES, 2));
  const object = findObject(engine, objectHandle);
  if (object === undefined) throw new TpmError(rcForHandle(TPM_RC.HANDLE, 2));
  const persistent = objectHandle >>> 24 === TPM_HT.PERSISTENT;
  const a = object.publicArea.objectAttributes;
  // An stClear, public-only or null-hierarchy object cannot outlive the power cycle (the null seed changes at every
  // reset, Part 1 §14.3.5); libtpms answers TPM_RC_ATTRIBUTES for all three.
  if (!persistent && (a.stClear || object.publicOnly === true || object.hierarchy === TPM_RH.NULL)) throw new TpmError(rcForHandle(TPM_RC.ATTRIBUTES, 2));
  // A persistent object is only ever evicted from its own handle, never moved to another.
  if (persistent && objectHandle !== persistentHandle) throw new TpmError(rcForHandle(TPM_RC.HANDLE, 2));
  const platformObject = object.hierarchy === TPM_RH.PLATFORM;
  if (auth === TPM_RH.PLATFORM) {
    if (!persistent) {
      if (!platformObject) throw new TpmError(rcForHandle(TPM_RC.HIERARCHY, 2));
      if (!inRange(persistentHandle, HANDLE_RANGE.PLATFORM_PERSISTENT)) throw new TpmError(rcForParameter(TPM_RC.RANGE, 1));
    }
    // The platform may remove any persistent object.
  } else {
    if (platformObject) throw new TpmError(rcForHandle(TPM_RC.HIERARCHY, 2));
    if (!persistent && !inRange(persistentHandle, HANDLE_RANGE.OWNER_PERSISTENT)) throw new TpmError(rcForParameter(TPM_RC.RANGE, 1));
  }
  const state = engine.state;
  if (persistent) {
    state.persistentObjects = state.persistentObjects.filter((p) => p.handle !== objectHandle);
  } else {
    if (state.persistentObjects.some((p) => p.handle === persistentHandle)) throw new TpmError(TPM_RC.NV_DEFINED);
    if (state.persistentObjects.length >= engine.profile.limits.persistentObjects) throw new TpmError(TPM_RC.NV_SPACE);
    state.persistentObjects.push({
      handle: persistentHandle,
      hierarchy: object.hierarchy,
      public: encode(TPMT_PUBLIC, object.publicArea),
      sensitive: encode(TPMT_SENSITIVE, object.sensitive),
      name: object.name.slice(),
      qualifiedName: object.qualifiedName.slice(),
    });
    state.persistentObjects.sort((x, y) => x.handle - y.handle);
  }
  ctx.persistentChanged = true;
  return ok<typeof EvictControl>({});
});

function authOf(engine: TpmEngine, h: number): HierarchyAuth {
  const a = engine.state.auths;
  if (h === TPM_RH.OWNER) return a.owner;
  if (h === TPM_RH.ENDORSEMENT) return a.endorsement;
  if (h === TPM_RH.PLATFORM) return a.platform;
  return a.lockout;
}

/**
 * Part 3 §24.8: a new authValue for a hierarchy or lockout. It is kept
 * without trailing zeros (Part 1 §19.8.4) and may be at most as long as a
 * digest of the context-integrity hash (SHA-512 here, as in libtpms).
 */
export const hierarchyChangeAuthHandler = handler(HierarchyChangeAuth, (ctx, { authHandle }, { newAuth }) => {
  const authValue = trimAuthValue(newAuth);
  if (authValue.length > digestSize(TICKET_HASH_ALG)) throw new TpmError(rcForParameter(TPM_RC.SIZE, 1));
  authOf(ctx.engine, authHandle).authValue = authValue;
  ctx.persistentChanged = true;
  return ok<typeof HierarchyChangeAuth>({});
});

/**
 * Flushes the loaded objects of the hierarchies `flushed` selects (the
 * reference's ObjectFlushHierarchy). get() is undefined for a sequence slot:
 * sequences belong to no hierarchy and stay.
 */
function flushLoadedObjects(engine: TpmEngine, flushed: (hierarchy: number) => boolean): void {
  const objects = engine.volatile.objects;
  for (const h of objects.handles()) {
    const o = objects.get(h);
    if (o !== undefined && flushed(o.hierarchy)) objects.flush(h);
  }
}

/** The DA parameters of a freshly manufactured TPM (state.ts; libtpms' defaults), which Clear restores. */
const DA_DEFAULTS = { maxTries: 3, recoveryTime: 1000, lockoutRecovery: 1000 } as const;

/**
 * Part 3 §24.6 (Part 1 §14.3.3, §13.8): a new storage primary seed and new
 * shProof / ehProof; empty owner, endorsement and lockout authValues and
 * policies; the storage and endorsement hierarchies enabled; their loaded
 * and persistent objects and the owner's NV indices gone (platform-created
 * indices, such as the EK certificates, stay); DA state, Clock and the reset
 * counters back to their initial values. The EPS is kept (only
 * ChangeEPS replaces it), so the EK public key survives a Clear.
 */
export const clearHandler = handler(Clear, (ctx) => {
  const { engine } = ctx;
  const state = engine.state;
  if (state.disableClear) throw new TpmError(TPM_RC.DISABLED);
  state.seeds.owner = engine.random(SEED_SIZE);
  state.proofs.owner = engine.random(SEED_SIZE);
  state.proofs.endorsement = engine.random(SEED_SIZE);
  for (const key of ['owner', 'endorsement', 'lockout'] as const) {
    state.auths[key] = { authValue: new Uint8Array(0), authPolicy: new Uint8Array(0), policyAlg: TPM_ALG.NULL };
  }
  engine.volatile.shEnable = true;
  engine.volatile.ehEnable = true;
  const cleared = (h: number): boolean => h === TPM_RH.OWNER || h === TPM_RH.ENDORSEMENT;
  flushLoadedObjects(engine, cleared);
  state.persistentObjects = state.persistentObjects.filter((p) => !cleared(p.hierarchy));
  // The owner's indices go through deleteNvIndices so a cleared counter still raises the floor (Part 1 §37.2.3.4).
  deleteNvIndices(state, (n) => !TPMA_NV.fromWord(n.attributes).PLATFORMCREATE);
  // DAPreInstall_Init: defaults again, no failures, lockoutAuth usable; what the power cycles record stays.
  state.dictionaryAttack = { ...state.dictionaryAttack, failedTries: 0, ...DA_DEFAULTS, lockoutAuthLocked: false };
  // The reference's TPM2_Clear resets the PCR authValues too (PCR_ClearAuth), not their policies.
  clearPcrAuthValues(state);
  engine.syncClock();
  state.clock = { ...state.clock, clock: 0n, safe: true, resetCount: 0, restartCount: 0 };
  ctx.persistentChanged = true;
  return ok<typeof Clear>({});
});

/**
 * Part 3 §24.7: lockout may disable Clear, only the platform may enable it
 * again (lockout asking for that is TPM_RC_AUTH_FAIL).
 */
export const clearControlHandler = handler(ClearControl, (ctx, { auth }, { disable }) => {
  const yes = Boolean(disable);
  if (auth === TPM_RH.LOCKOUT && !yes) throw new TpmError(TPM_RC.AUTH_FAIL);
  ctx.engine.state.disableClear = yes;
  ctx.persistentChanged = true;
  return ok<typeof ClearControl>({});
});

/** Part 3 §25.2: forgets every counted authorization failure (leaves lockout). */
export const dictionaryAttackLockResetHandler = handler(DictionaryAttackLockReset, (ctx) => {
  ctx.engine.state.dictionaryAttack.failedTries = 0;
  ctx.persistentChanged = true;
  return ok<typeof DictionaryAttackLockReset>({});
});

/**
 * Part 3 §25.3: maxTries, recoveryTime (seconds per forgotten failure, 0 =
 * no lockout) and lockoutRecovery. The failure count is left as it is (an
 * erratum removed its reset; libtpms keeps it even above the new maximum, so
 * the TPM is in lockout until DictionaryAttackLockReset or recovery).
 */
export const dictionaryAttackParametersHandler = handler(DictionaryAttackParameters, (ctx, _h, { newMaxTries, newRecoveryTime, lockoutRecovery }) => {
  const da = ctx.engine.state.dictionaryAttack;
  da.maxTries = newMaxTries;
  da.recoveryTime = newRecoveryTime;
  da.lockoutRecovery = lockoutRecovery;
  ctx.persistentChanged = true;
  return ok<typeof DictionaryAttackParameters>({});
});

/**
 * Part 3 §24.2: only the platform may change phEnable or phEnableNV; the
 * owner (endorsement) may disable its own hierarchy, but once disabled only
 * the platform enables it again (TPM_RC_AUTH_TYPE otherwise). Disabling a
 * hierarchy flushes its loaded objects; phEnable is volatile (every Startup
 * sets it), shEnable/ehEnable last until the next Startup(CLEAR), phEnableNV
 * is kept in the state (Part 1 §13.5).
 */
export const hierarchyControlHandler = handler(HierarchyControl, (ctx, { authHandle }, { enable, state: yes }) => {
  const { engine } = ctx;
  const v = engine.volatile;
  const platform = authHandle === TPM_RH.PLATFORM;
  const on = Boolean(yes);
  if (enable === TPM_RH.PLATFORM || enable === TPM_RH.PLATFORM_NV) {
    if (!platform) throw new TpmError(TPM_RC.AUTH_TYPE);
  } else if (enable === TPM_RH.OWNER) {
    if (!platform && authHandle !== TPM_RH.OWNER) throw new TpmError(TPM_RC.AUTH_TYPE);
    if (!v.shEnable && on && !platform) throw new TpmError(TPM_RC.AUTH_TYPE);
  } else if (enable === TPM_RH.ENDORSEMENT) {
    if (!platform && authHandle !== TPM_RH.ENDORSEMENT) throw new TpmError(TPM_RC.AUTH_TYPE);
    if (!v.ehEnable && on && !platform) throw new TpmError(TPM_RC.AUTH_TYPE);
  }
  if (enable === TPM_RH.PLATFORM_NV) {
    if (engine.state.phEnableNV !== on) {
      engine.state.phEnableNV = on;
      ctx.persistentChanged = true;
    }
    return ok<typeof HierarchyControl>({});
  }
  const key = enable === TPM_RH.OWNER ? 'shEnable' : enable === TPM_RH.ENDORSEMENT ? 'ehEnable' : 'phEnable';
  if (v[key] !== on) {
    v[key] = on;
    if (!on) flushLoadedObjects(engine, (h) => h === enable);
  }
  return ok<typeof HierarchyControl>({});
});

/**
 * Part 3 §24.3: a hierarchy's (or lockout's) authPolicy and its hash; the
 * policy must be a digest of hashAlg, or empty with TPM_ALG_NULL
 * (TPM_RC_SIZE on authPolicy otherwise). The platform's lasts until the next
 * Startup (startup.ts empties it).
 */
export const setPrimaryPolicyHandler = handler(SetPrimaryPolicy, (ctx, { authHandle }, { authPolicy, hashAlg }) => {
  // A hash the TPM does not implement fails unmarshaling in libtpms: TPM_RC_HASH on hashAlg.
  if (hashAlg !== TPM_ALG.NULL && !isImplementedHash(hashAlg)) throw new TpmError(rcForParameter(TPM_RC.HASH, 2));
  const size = hashAlg === TPM_ALG.NULL ? 0 : digestSize(hashAlg);
  if (authPolicy.length !== size) throw new TpmError(rcForParameter(TPM_RC.SIZE, 1));
  const auth = authOf(ctx.engine, authHandle);
  auth.authPolicy = authPolicy.slice();
  auth.policyAlg = hashAlg;
  ctx.persistentChanged = true;
  return ok<typeof SetPrimaryPolicy>({});
});

/**
 * Part 3 §24.4: a new platform primary seed and phProof (so saved platform
 * contexts no longer load), the platform policy emptied (its authValue stays),
 * the platform's loaded and persistent objects gone. NV indices stay: the
 * reference's NvFlushHierarchy deletes no index for the platform.
 */
export const changePpsHandler = handler(ChangePPS, (ctx) => {
  const { engine } = ctx;
  const state = engine.state;
  state.seeds.platform = engine.random(SEED_SIZE);
  state.proofs.platform = engine.random(SEED_SIZE);
  state.auths.platform = { ...state.auths.platform, authPolicy: new Uint8Array(0), policyAlg: TPM_ALG.NULL };
  flushLoadedObjects(engine, (h) => h === TPM_RH.PLATFORM);
  state.persistentObjects = state.persistentObjects.filter((p) => p.hierarchy !== TPM_RH.PLATFORM);
  ctx.persistentChanged = true;
  return ok<typeof ChangePPS>({});
});

/**
 * Part 3 §24.5: a new endorsement primary seed (a new EK) and ehProof, the
 * endorsement authValue and policy emptied, the hierarchy enabled again, its
 * loaded and persistent objects gone.
 */
export const changeEpsHandler = handler(ChangeEPS, (ctx) => {
  const { engine } = ctx;
  const state = engine.state;
  state.seeds.endorsement = engine.random(SEED_SIZE);
  state.proofs.endorsement = engine.random(SEED_SIZE);
  state.auths.endorsement = { authValue: new Uint8Array(0), authPolicy: new Uint8Array(0), policyAlg: TPM_ALG.NULL };
  engine.volatile.ehEnable = true;
  flushLoadedObjects(engine, (h) => h === TPM_RH.ENDORSEMENT);
  state.persistentObjects = state.persistentObjects.filter((p) => p.hierarchy !== TPM_RH.ENDORSEMENT);
  ctx.persistentChanged = true;
  return ok<typeof ChangeEPS>({});
});

export const HIERARCHY_HANDLERS: readonly CommandHandler[] = [
  hierarchyChangeAuthHandler,
  clearHandler,
  clearControlHandler,
  dictionaryAttackLockResetHandler,
  dictionaryAttackParametersHandler,
  evictControlHandler,
  hierarchyControlHandler,
  setPrimaryPolicyHandler,
  changePpsHandler,
  changeEpsHandler,
] as unknown as readonly CommandHandler[];
