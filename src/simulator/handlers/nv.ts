/**
 * Part 3 §31 "Non-volatile Storage": define, undefine, read the public area,
 * write, read, counters, bit fields, extend indices, the locks, and the
 * policy-authorized UndefineSpaceSpecial and ChangeAuth.
 *
 * An index lives in `engine.state.nvIndices` (state.ts NvIndexState); every
 * handler that changes it sets `ctx.persistentChanged` so the engine makes the
 * state durable before it answers. Authorization of the authorizing handle
 * (its password) is the engine's (Part 3 §5.4); whether that handle may read
 * or write this index is checked here (Part 3 §31.13/§31.7 access checks).
 */
import { TPM_CC, TPM_NT, TPM_RH } from '../../tpm/constants.js';
import {
  NV_ChangeAuth,
  NV_DefineSpace,
  NV_Extend,
  NV_GlobalWriteLock,
  NV_Increment,
  NV_Read,
  NV_ReadLock,
  NV_ReadPublic,
  NV_SetBits,
  NV_UndefineSpace,
  NV_UndefineSpaceSpecial,
  NV_Write,
  NV_WriteLock,
} from '../../tpm/commands/index.js';
import { digestSize, hash } from '../../tpm/crypto/hash.js';
import { nvName } from '../../tpm/names.js';
import { TPM_RC, TpmError, rcForHandle, rcForParameter } from '../../tpm/rc.js';
import { trimAuthValue } from '../../tpm/session-crypto.js';
import { TPMA_NV, TPMS_NV_PIN_COUNTER_PARAMETERS, type TPMS_NV_PUBLIC } from '../../tpm/types/index.js';
import { decode, encode } from '../../tpm/wire/codec.js';
import type { TpmEngine } from '../engine.js';
import type { NvIndexState, SimulatorState } from '../state.js';
import { ensureEkCertificate } from '../manufacture.js';
import { handler, ok, type CommandHandler, type HandlerContext } from './handler.js';

/** Bytes of a counter, bit field or PIN index (Part 2 §13.4). */
const EIGHT = 8;

/**
 * NV memory for indices, like libtpms's 128 KiB NV_MEMORY_SIZE: each index
 * costs its data plus a fixed share for its public area and authValue. It
 * bounds the state file a remote caller can grow (Part 3 §31.3 TPM_RC_NV_SPACE).
 */
export const NV_MEMORY = { bytes: 128 * 1024, perIndexOverhead: 128 } as const;

function nvBytesUsed(state: SimulatorState): number {
  let used = 0;
  for (const n of state.nvIndices) used += n.dataSize + NV_MEMORY.perIndexOverhead;
  return used;
}

function findIndex(engine: TpmEngine, handle: number): NvIndexState {
  const nv = engine.state.nvIndices.find((n) => n.nvIndex === handle);
  // The engine checked that the handle exists (Part 3 §5.3); this guards a handler bug.
  if (nv === undefined) throw new TpmError(TPM_RC.HANDLE);
  return nv;
}

function attrs(nv: NvIndexState): TPMA_NV {
  return TPMA_NV.fromWord(nv.attributes);
}

function setAttrs(nv: NvIndexState, set: Partial<TPMA_NV>): void {
  nv.attributes = TPMA_NV.toWord({ ...attrs(nv), ...set });
}

/** The index's public area as NV_ReadPublic reports it. */
export function nvPublicOf(nv: NvIndexState): TPMS_NV_PUBLIC {
  return { nvIndex: nv.nvIndex, nameAlg: nv.nameAlg as never, attributes: attrs(nv), authPolicy: nv.authPolicy.slice(), dataSize: nv.dataSize };
}

/**
 * Part 3 §31.7 and §31.13 (the reference's NvWriteAccessChecks /
 * NvReadAccessChecks): the lock first, then whether `authHandle` is one the
 * attributes allow. The index's own authorization was checked by the engine
 * (nvAuthValueAvailable, nvAuthPolicyAvailable: AUTHREAD/AUTHWRITE for an
 * authValue, POLICYREAD/POLICYWRITE for a policy, the PIN rules), so here the
 * index itself is always allowed.
 */
function accessRc(nv: NvIndexState, authHandle: number, kind: 'read' | 'write'): number {
  const a = attrs(nv);
  if (kind === 'write' ? a.WRITELOCKED : a.READLOCKED) return TPM_RC.NV_LOCKED;
  let allowed: boolean;
  if (authHandle === TPM_RH.OWNER) allowed = kind === 'write' ? a.OWNERWRITE : a.OWNERREAD;
  else if (authHandle === TPM_RH.PLATFORM) allowed = kind === 'write' ? a.PPWRITE : a.PPREAD;
  else allowed = authHandle === nv.nvIndex;
  if (!allowed) return TPM_RC.NV_AUTHORIZATION;
  // Part 3 §31.13: reading an index that was never written is TPM_RC_NV_UNINITIALIZED.
  if (kind === 'read' && !a.WRITTEN) return TPM_RC.NV_UNINITIALIZED;
  return 0;
}

/**
 * Commands that write an index: their authorization by the index asks for
 * AUTHWRITE / POLICYWRITE, every other command's for the read side (the
 * reference's IsWriteOperation; NV_WriteLock counts as a write).
 */
const NV_WRITE_OPERATIONS: ReadonlySet<number> = new Set([TPM_CC.NV_Write, TPM_CC.NV_Increment, TPM_CC.NV_SetBits, TPM_CC.NV_Extend, TPM_CC.NV_WriteLock]);

function isPinIndex(a: TPMA_NV): boolean {
  return a.TPM_NT === TPM_NT.PIN_PASS || a.TPM_NT === TPM_NT.PIN_FAIL;
}

/** A PIN index's data (Part 2 §13.5 TPMS_NV_PIN_COUNTER_PARAMETERS). */
export function pinParameters(nv: NvIndexState): TPMS_NV_PIN_COUNTER_PARAMETERS {
  return decode(TPMS_NV_PIN_COUNTER_PARAMETERS, nv.data);
}

/**
 * Part 1 §19.7 (the reference's IsAuthValueAvailable for an index): a write
 * needs AUTHWRITE; a read (NV_Read, PolicySecret, PolicyNV, NV_Certify …)
 * needs AUTHREAD, except on a PIN index (Part 1 §37.2.3.5), whose authValue —
 * the PIN — is usable once the index is written and while pinCount < pinLimit.
 */
export function nvAuthValueAvailable(nv: NvIndexState, commandCode: number): boolean {
  const a = attrs(nv);
  if (NV_WRITE_OPERATIONS.has(commandCode)) return a.AUTHWRITE;
  if (isPinIndex(a)) {
    if (!a.WRITTEN) return false;
    const { pinCount, pinLimit } = pinParameters(nv);
    return pinCount < pinLimit;
  }
  return a.AUTHREAD;
}

/**
 * The reference's IsAuthPolicyAvailable for an index: it has a policy, and
 * the command needs one (the ADMIN role) or the attributes allow it for this
 * kind of access (POLICYWRITE, POLICYREAD).
 */
export function nvAuthPolicyAvailable(nv: NvIndexState, commandCode: number, policyRequired: boolean): boolean {
  if (nv.authPolicy.length === 0) return false;
  if (policyRequired) return true;
  const a = attrs(nv);
  return NV_WRITE_OPERATIONS.has(commandCode) ? a.POLICYWRITE : a.POLICYREAD;
}

/**
 * Part 1 §37.2.3.5 (the reference's CheckAuthSession, after the authValue was
 * used): a written PIN_FAIL index counts a failure (pinCount + 1) and forgets
 * its failures on a success (pinCount := 0); a written PIN_PASS index counts
 * each success. Returns whether the index changed (to be made durable before
 * the answer, like a dictionary-attack failure).
 */
export function countPinUse(nv: NvIndexState, success: boolean): boolean {
  const a = attrs(nv);
  if (!a.WRITTEN || !isPinIndex(a)) return false;
  const pin = pinParameters(nv);
  let pinCount: number;
  if (a.TPM_NT === TPM_NT.PIN_FAIL) pinCount = success ? 0 : pin.pinCount + 1;
  else if (success) pinCount = pin.pinCount + 1;
  else return false;
  // UINT32 arithmetic, as the reference's counter (a count at 2^32 - 1 wraps; pinLimit stops it long before).
  pinCount >>>= 0;
  if (pinCount === pin.pinCount) return false;
  nv.data = encode(TPMS_NV_PIN_COUNTER_PARAMETERS, { pinCount, pinLimit: pin.pinLimit });
  return true;
}

/** The read or write access checks (TPM_RC_NV_LOCKED, _AUTHORIZATION, _UNINITIALIZED); NV_Certify shares the read ones. */
export function checkAccess(nv: NvIndexState, authHandle: number, kind: 'read' | 'write'): void {
  const rc = accessRc(nv, authHandle, kind);
  if (rc !== 0) throw new TpmError(rc);
}

function ntOf(nv: NvIndexState): number {
  return attrs(nv).TPM_NT;
}

function u64(b: Uint8Array): bigint {
  return new DataView(b.buffer, b.byteOffset, EIGHT).getBigUint64(0);
}

function u64Bytes(v: bigint): Uint8Array {
  const out = new Uint8Array(EIGHT);
  new DataView(out.buffer).setBigUint64(0, v & 0xffffffffffffffffn);
  return out;
}

function changed(ctx: HandlerContext): void {
  ctx.persistentChanged = true;
}

/**
 * Part 3 §31.3. The checks follow the reference's order (TPM2_NV_DefineSpace):
 * policy and auth sizes, phEnableNV, the size each TPM_NT demands, the rules
 * of counters and PIN indices, attributes the TPM alone may set, at least one
 * way to read and one to write, CLEAR_STCLEAR without WRITEDEFINE,
 * PLATFORMCREATE iff the platform defines it, POLICY_DELETE, WRITEALL within
 * the NV buffer, then TPM_RC_NV_DEFINED.
 */
export const nvDefineSpaceHandler = handler(NV_DefineSpace, (ctx, { authHandle }, { auth, publicInfo }) => {
  const { state } = ctx.engine;
  const pub = publicInfo;
  const a = pub.attributes;
  const badPublic = (rc: number): TpmError => new TpmError(rcForParameter(rc, 2));
  const dsize = digestSize(pub.nameAlg);
  if (pub.authPolicy.length !== 0 && pub.authPolicy.length !== dsize) throw badPublic(TPM_RC.SIZE);
  // Part 1 §19.8.4: trailing zeros of an authValue do not count; it may be at most a nameAlg digest long.
  const authValue = trimAuthValue(auth);
  if (authValue.length > dsize) throw new TpmError(rcForParameter(TPM_RC.SIZE, 1));
  const byPlatform = authHandle === TPM_RH.PLATFORM;
  // Part 1 §13.5: the platform cannot create indices while phEnableNV is CLEAR (on authHandle, as libtpms).
  if (byPlatform && !state.phEnableNV) throw new TpmError(rcForHandle(TPM_RC.HIERARCHY, 1));
  switch (a.TPM_NT) {
    case TPM_NT.ORDINARY:
      if (pub.dataSize > ctx.engine.profile.limits.nvIndexMax) throw badPublic(TPM_RC.SIZE);
      break;
    case TPM_NT.EXTEND:
      if (pub.dataSize !== dsize) throw badPublic(TPM_RC.SIZE);
      break;
    case TPM_NT.COUNTER:
    case TPM_NT.BITS:
    case TPM_NT.PIN_FAIL:
    case TPM_NT.PIN_PASS:
      if (pub.dataSize !== EIGHT) throw badPublic(TPM_RC.SIZE);
      break;
    default:
      throw badPublic(TPM_RC.ATTRIBUTES);
  }
  // Part 2 §13.4: CLEAR_STCLEAR would let a counter go back; not allowed for counters.
  if (a.TPM_NT === TPM_NT.COUNTER && a.CLEAR_STCLEAR) throw badPublic(TPM_RC.ATTRIBUTES);
  // Part 2 §13.4: a PIN-fail index is its own lockout, so it must be NO_DA.
  if (a.TPM_NT === TPM_NT.PIN_FAIL && !a.NO_DA) throw badPublic(TPM_RC.ATTRIBUTES);
  // Part 2 §13.4: the authValue of a PIN index is the PIN it counts, usable only once written, so it cannot
  // be the way to write the index (AUTHWRITE); nor may the index be locked for good (GLOBALLOCK, WRITEDEFINE).
  if ((a.TPM_NT === TPM_NT.PIN_FAIL || a.TPM_NT === TPM_NT.PIN_PASS) && (a.AUTHWRITE || a.GLOBALLOCK || a.WRITEDEFINE)) throw badPublic(TPM_RC.ATTRIBUTES);
  // Part 2 §13.4: WRITTEN and the lock bits are the TPM's to set.
  if (a.WRITTEN || a.WRITELOCKED || a.READLOCKED) throw badPublic(TPM_RC.ATTRIBUTES);
  if (!(a.PPREAD || a.OWNERREAD || a.AUTHREAD || a.POLICYREAD) || !(a.PPWRITE || a.OWNERWRITE || a.AUTHWRITE || a.POLICYWRITE)) {
    throw badPublic(TPM_RC.ATTRIBUTES);
  }
  // Part 2 §13.4: an index cleared at every TPM Restart cannot be locked until it is defined again.
  if (a.CLEAR_STCLEAR && a.WRITEDEFINE) throw badPublic(TPM_RC.ATTRIBUTES);
  // libtpms (and the reference) blame the authorizing handle for this mismatch, not publicInfo.
  if (byPlatform !== a.PLATFORMCREATE) throw new TpmError(rcForHandle(TPM_RC.ATTRIBUTES, 1));
  // Part 3 §31.3: POLICY_DELETE only on a platform index (deleted through its policy by UndefineSpaceSpecial).
  if (a.POLICY_DELETE && !byPlatform) throw badPublic(TPM_RC.ATTRIBUTES);
  // Part 3 §31.3: WRITEALL must be possible in one NV_Write.
  if (a.WRITEALL && pub.dataSize > ctx.engine.profile.limits.nvBufferMax) throw badPublic(TPM_RC.SIZE);
  if (state.nvIndices.some((n) => n.nvIndex === pub.nvIndex)) throw new TpmError(TPM_RC.NV_DEFINED);
  if (nvBytesUsed(state) + pub.dataSize + NV_MEMORY.perIndexOverhead > NV_MEMORY.bytes) throw new TpmError(TPM_RC.NV_SPACE);
  state.nvIndices.push({
    nvIndex: pub.nvIndex,
    nameAlg: pub.nameAlg,
    attributes: TPMA_NV.toWord(a),
    authPolicy: pub.authPolicy.slice(),
    authValue,
    dataSize: pub.dataSize,
    // The reference fills a new index with 0xFF; nothing is readable before the first write anyway.
    data: new Uint8Array(pub.dataSize).fill(0xff),
  });
  changed(ctx);
  return ok<typeof NV_DefineSpace>({});
});

/** Part 3 §31.4: owner or platform; the owner may not remove a platform index; POLICY_DELETE needs UndefineSpaceSpecial. */
export const nvUndefineSpaceHandler = handler(NV_UndefineSpace, (ctx, { authHandle, nvIndex }) => {
  const { state } = ctx.engine;
  const nv = findIndex(ctx.engine, nvIndex);
  const a = attrs(nv);
  if (a.POLICY_DELETE) throw new TpmError(rcForHandle(TPM_RC.ATTRIBUTES, 2));
  if (authHandle === TPM_RH.OWNER && a.PLATFORMCREATE) throw new TpmError(TPM_RC.NV_AUTHORIZATION);
  deleteNvIndices(state, (n) => n === nv);
  changed(ctx);
  return ok<typeof NV_UndefineSpace>({});
});

/** Part 3 §31.6: the public area and its Name (Part 1 §16.4, the core's nvName); needs no authorization. */
export const nvReadPublicHandler = handler(NV_ReadPublic, async (ctx, { nvIndex }) => {
  const { engine } = ctx;
  // An EK certificate made on first use (manufacture.ts) gets its size here.
  if (await ensureEkCertificate(engine, nvIndex)) changed(ctx);
  const pub = nvPublicOf(findIndex(engine, nvIndex));
  return ok<typeof NV_ReadPublic>({ nvPublic: pub, nvName: nvName(pub) });
});

/** Part 3 §31.7: ordinary (and PIN) indices only; the range must fit, WRITEALL takes the whole index. */
export const nvWriteHandler = handler(NV_Write, (ctx, { authHandle, nvIndex }, { data, offset }) => {
  const nv = findIndex(ctx.engine, nvIndex);
  checkAccess(nv, authHandle, 'write');
  const nt = ntOf(nv);
  if (nt === TPM_NT.COUNTER || nt === TPM_NT.BITS || nt === TPM_NT.EXTEND) throw new TpmError(TPM_RC.ATTRIBUTES);
  if (offset > nv.dataSize) throw new TpmError(rcForParameter(TPM_RC.VALUE, 2));
  if (data.length > nv.dataSize - offset) throw new TpmError(TPM_RC.NV_RANGE);
  if (attrs(nv).WRITEALL && data.length < nv.dataSize) throw new TpmError(TPM_RC.NV_RANGE);
  // A first partial write: libtpms erases an ordinary index (to 0xFF, its fill) and leaves a PIN index as its
  // NV memory was, which a fresh TPM has zeroed (as swtpm answers).
  const next = attrs(nv).WRITTEN || nt === TPM_NT.ORDINARY ? nv.data.slice() : new Uint8Array(nv.dataSize);
  next.set(data, offset);
  nv.data = next;
  setAttrs(nv, { WRITTEN: true });
  changed(ctx);
  return ok<typeof NV_Write>({});
});

/** Part 3 §31.13: at most the NV buffer per command, within the index, after the first write. */
export const nvReadHandler = handler(NV_Read, async (ctx, { authHandle, nvIndex }, { size, offset }) => {
  const { engine } = ctx;
  if (await ensureEkCertificate(engine, nvIndex)) changed(ctx);
  const nv = findIndex(engine, nvIndex);
  checkAccess(nv, authHandle, 'read');
  if (size > engine.profile.limits.nvBufferMax) throw new TpmError(rcForParameter(TPM_RC.VALUE, 1));
  if (offset > nv.dataSize) throw new TpmError(rcForParameter(TPM_RC.VALUE, 2));
  if (size > nv.dataSize - offset) throw new TpmError(TPM_RC.NV_RANGE);
  return ok<typeof NV_Read>({ data: nv.data.slice(offset, offset + size) });
});

/**
 * Removes the indices `doomed` selects (UndefineSpace, Clear). A written
 * counter leaves its value in state.nvCounterMax (Part 1 §37.2.3.4; the
 * reference's NvDeleteIndex → NvUpdateMaxCount), the floor of new counters.
 */
export function deleteNvIndices(state: SimulatorState, doomed: (nv: NvIndexState) => boolean): void {
  for (const n of state.nvIndices) {
    if (!doomed(n)) continue;
    const a = TPMA_NV.fromWord(n.attributes);
    if (a.TPM_NT === TPM_NT.COUNTER && a.WRITTEN && u64(n.data) > state.nvCounterMax) state.nvCounterMax = u64(n.data);
  }
  state.nvIndices = state.nvIndices.filter((n) => !doomed(n));
}

/**
 * Part 3 §31.8 and Part 1 §37.2.3.4: a counter that was never written starts
 * from the highest value a deleted counter had (state.nvCounterMax), so no
 * counter value repeats after an index is undefined and defined again. Like
 * the reference (NvReadMaxCount), counters that still exist do not raise it.
 */
export const nvIncrementHandler = handler(NV_Increment, (ctx, { authHandle, nvIndex }) => {
  const { state } = ctx.engine;
  const nv = findIndex(ctx.engine, nvIndex);
  checkAccess(nv, authHandle, 'write');
  if (ntOf(nv) !== TPM_NT.COUNTER) throw new TpmError(rcForHandle(TPM_RC.ATTRIBUTES, 2));
  let value: bigint;
  if (attrs(nv).WRITTEN) value = u64(nv.data);
  else value = state.nvCounterMax;
  if (value === 0xffffffffffffffffn) throw new TpmError(TPM_RC.NV_RANGE);
  nv.data = u64Bytes(value + 1n);
  setAttrs(nv, { WRITTEN: true });
  changed(ctx);
  return ok<typeof NV_Increment>({});
});

/** Part 3 §31.9: value := H_nameAlg(value ‖ data), starting from zeros before the first extend. */
export const nvExtendHandler = handler(NV_Extend, (ctx, { authHandle, nvIndex }, { data }) => {
  const nv = findIndex(ctx.engine, nvIndex);
  checkAccess(nv, authHandle, 'write');
  if (ntOf(nv) !== TPM_NT.EXTEND) throw new TpmError(rcForHandle(TPM_RC.ATTRIBUTES, 2));
  const old = attrs(nv).WRITTEN ? nv.data : new Uint8Array(nv.dataSize);
  const input = new Uint8Array(old.length + data.length);
  input.set(old);
  input.set(data, old.length);
  nv.data = hash(nv.nameAlg as never, input);
  setAttrs(nv, { WRITTEN: true });
  changed(ctx);
  return ok<typeof NV_Extend>({});
});

/** Part 3 §31.10: value := value OR bits, starting from zero before the first write. */
export const nvSetBitsHandler = handler(NV_SetBits, (ctx, { authHandle, nvIndex }, { bits }) => {
  const nv = findIndex(ctx.engine, nvIndex);
  checkAccess(nv, authHandle, 'write');
  if (ntOf(nv) !== TPM_NT.BITS) throw new TpmError(rcForHandle(TPM_RC.ATTRIBUTES, 2));
  const old = attrs(nv).WRITTEN ? u64(nv.data) : 0n;
  nv.data = u64Bytes(old | bits);
  setAttrs(nv, { WRITTEN: true });
  changed(ctx);
  return ok<typeof NV_SetBits>({});
});

/**
 * Part 3 §31.11: WRITEDEFINE or WRITE_STCLEAR required; an index already
 * locked answers success (the reference's choice), a wrong authorizer does not.
 */
export const nvWriteLockHandler = handler(NV_WriteLock, (ctx, { authHandle, nvIndex }) => {
  const nv = findIndex(ctx.engine, nvIndex);
  const rc = accessRc(nv, authHandle, 'write');
  if (rc === TPM_RC.NV_AUTHORIZATION) throw new TpmError(rc);
  if (rc !== 0) return ok<typeof NV_WriteLock>({});
  const a = attrs(nv);
  if (!a.WRITEDEFINE && !a.WRITE_STCLEAR) throw new TpmError(rcForHandle(TPM_RC.ATTRIBUTES, 2));
  setAttrs(nv, { WRITELOCKED: true });
  changed(ctx);
  return ok<typeof NV_WriteLock>({});
});

/**
 * Part 3 §31.12: every index with TPMA_NV_GLOBALLOCK becomes write-locked
 * until the next TPM Reset or Restart (clearNvOnStartup); owner or platform
 * authorization (the engine checked it).
 */
export const nvGlobalWriteLockHandler = handler(NV_GlobalWriteLock, (ctx) => {
  for (const nv of ctx.engine.state.nvIndices) {
    if (attrs(nv).GLOBALLOCK && !attrs(nv).WRITELOCKED) {
      setAttrs(nv, { WRITELOCKED: true });
      changed(ctx);
    }
  }
  return ok<typeof NV_GlobalWriteLock>({});
});

/** Part 3 §31.14: READ_STCLEAR required; an unwritten index may be locked; already locked is success. */
export const nvReadLockHandler = handler(NV_ReadLock, (ctx, { authHandle, nvIndex }) => {
  const nv = findIndex(ctx.engine, nvIndex);
  const rc = accessRc(nv, authHandle, 'read');
  if (rc === TPM_RC.NV_AUTHORIZATION) throw new TpmError(rc);
  if (rc === TPM_RC.NV_LOCKED) return ok<typeof NV_ReadLock>({});
  if (!attrs(nv).READ_STCLEAR) throw new TpmError(rcForHandle(TPM_RC.ATTRIBUTES, 2));
  setAttrs(nv, { READLOCKED: true });
  changed(ctx);
  return ok<typeof NV_ReadLock>({});
});

/**
 * What Startup(CLEAR) does to NV indices (Part 2 §13.4; the reference's
 * NvEntityStartup): READLOCKED goes; WRITELOCKED goes unless WRITEDEFINE
 * locked the index for good once written (so WRITE_STCLEAR and GLOBALLOCK
 * locks end here); CLEAR_STCLEAR indices become unwritten. Returns whether anything changed.
 */
export function clearNvOnStartup(state: SimulatorState): boolean {
  let any = false;
  for (const nv of state.nvIndices) {
    const a = attrs(nv);
    const next = {
      ...a,
      READLOCKED: false,
      WRITELOCKED: a.WRITELOCKED && a.WRITEDEFINE && a.WRITTEN,
      WRITTEN: a.WRITTEN && !a.CLEAR_STCLEAR,
    };
    const word = TPMA_NV.toWord(next);
    if (word !== nv.attributes) {
      nv.attributes = word;
      any = true;
    }
  }
  return any;
}

/**
 * Part 3 §31.5: removes an index that only its own policy may delete
 * (POLICY_DELETE, set only on platform-created indices). The ADMIN role of
 * nvIndex needs a policy session (the engine's role check, Part 1 §19.7.3);
 * the platform authorizes too. An index without POLICY_DELETE is
 * TPM_RC_ATTRIBUTES on nvIndex.
 */
export const nvUndefineSpaceSpecialHandler = handler(NV_UndefineSpaceSpecial, (ctx, { nvIndex }) => {
  const { state } = ctx.engine;
  const nv = findIndex(ctx.engine, nvIndex);
  if (!attrs(nv).POLICY_DELETE) throw new TpmError(rcForHandle(TPM_RC.ATTRIBUTES, 1));
  deleteNvIndices(state, (n) => n === nv);
  changed(ctx);
  return ok<typeof NV_UndefineSpaceSpecial>({});
});

/**
 * Part 3 §31.15: a new authValue for an index (ADMIN role, so a policy
 * session, typically with PolicyCommandCode(NV_ChangeAuth)). Trailing zeros
 * go (Part 1 §19.8.4); what remains may be at most a digest of the index's
 * nameAlg (TPM_RC_SIZE on newAuth). The response HMAC uses the new value.
 */
export const nvChangeAuthHandler = handler(NV_ChangeAuth, (ctx, { nvIndex }, { newAuth }) => {
  const nv = findIndex(ctx.engine, nvIndex);
  const authValue = trimAuthValue(newAuth);
  if (authValue.length > digestSize(nv.nameAlg)) throw new TpmError(rcForParameter(TPM_RC.SIZE, 1));
  nv.authValue = authValue;
  changed(ctx);
  return ok<typeof NV_ChangeAuth>({});
});

/** The NV administration commands of part 2 (handlers/index.ts spreads them). */
export const NV_ADMIN_HANDLERS: readonly CommandHandler[] = [nvUndefineSpaceSpecialHandler, nvChangeAuthHandler] as unknown as readonly CommandHandler[];
