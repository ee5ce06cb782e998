/**
 * Part 3 §22 "Integrity Collection (PCR)": Read, Extend, Event, Reset with PC
 * Client locality rules, Allocate (effective at the next TPM Reset), and the
 * PCR authorization groups' SetAuthPolicy and SetAuthValue (state.ts
 * PCR_POLICY_GROUPS / PCR_AUTH_VALUE_GROUPS; the engine authorizes a PCR
 * handle with its group's authValue and policy).
 */
import { TPM_ALG, TPM_RH } from '../../tpm/constants.js';
import { PCR_Allocate, PCR_Event, PCR_Extend, PCR_Read, PCR_Reset, PCR_SetAuthPolicy, PCR_SetAuthValue } from '../../tpm/commands/index.js';
import { digestSize, hash } from '../../tpm/crypto/hash.js';
import { LIMITS } from '../../tpm/limits.js';
import { pcrIndices } from '../../tpm/pcr.js';
import { TPM_RC, TpmError, rcForParameter } from '../../tpm/rc.js';
import { trimAuthValue } from '../../tpm/session-crypto.js';
import type { TPMS_PCR_SELECTION, TPMT_HA } from '../../tpm/types/index.js';
import type { TpmEngine } from '../engine.js';
import { PCR_COUNT, pcrAuthValueGroup, pcrPolicyGroup, type PcrBankAlg, type PcrBankAllocation, type SimulatorState } from '../state.js';
import { canExtend, canReset, isNoIncrement } from '../pcr-rules.js';
import { handler, ok, type CommandHandler } from './handler.js';

/** The PCRs of the `hashAlg` bank allocated now (PCR_Allocate may leave a bank empty or partial), bit i for PCR i. */
function allocatedMask(engine: TpmEngine, hashAlg: number): number {
  let mask = 0;
  for (const b of engine.state.pcrAllocation) if (b.hashAlg === hashAlg) for (const i of b.pcrs) if (i < PCR_COUNT) mask |= 1 << i;
  return mask;
}

/** Whether PCR `index` of the `hashAlg` bank is allocated now (one PCR: a search with an early exit beats the mask). */
function isAllocated(engine: TpmEngine, hashAlg: number, index: number): boolean {
  for (const b of engine.state.pcrAllocation) if (b.hashAlg === hashAlg && b.pcrs.includes(index)) return true;
  return false;
}

/** PCR[i] := H(PCR[i] ‖ digest) (Part 1 §17.5). */
function extendOne(engine: TpmEngine, index: number, hashAlg: number, digest: Uint8Array): void {
  const bank = engine.volatile.pcrs.get(hashAlg);
  // Part 3 §22.2: digests for banks (and PCRs of a bank) that are not allocated are ignored.
  if (bank === undefined || !isAllocated(engine, hashAlg, index)) return;
  // A new array, never an update in place: PCR_Read and the saved state hand out the values themselves.
  bank[index] = hash(hashAlg, bank[index]!, digest);
}

function bump(engine: TpmEngine, index: number): void {
  if (!isNoIncrement(index)) engine.volatile.pcrUpdateCounter = (engine.volatile.pcrUpdateCounter + 1) >>> 0;
}

export const pcrExtendHandler = handler(PCR_Extend, ({ engine, locality }, { pcrHandle }, { digests }) => {
  if (pcrHandle === TPM_RH.NULL) return ok<typeof PCR_Extend>({});
  if (!canExtend(pcrHandle, locality)) throw new TpmError(TPM_RC.LOCALITY);
  for (const d of digests as TPMT_HA[]) if ('digest' in d) extendOne(engine, pcrHandle, d.hashAlg, d.digest);
  bump(engine, pcrHandle);
  return ok<typeof PCR_Extend>({});
});

/** Part 3 §22.3: the event is hashed with every implemented bank's algorithm; allocated banks are extended. */
export const pcrEventHandler = handler(PCR_Event, ({ engine, locality }, { pcrHandle }, { eventData }) => {
  if (pcrHandle !== TPM_RH.NULL && !canExtend(pcrHandle, locality)) throw new TpmError(TPM_RC.LOCALITY);
  const digests = engine.state.pcrAllocation.map((b) => ({ hashAlg: b.hashAlg, digest: hash(b.hashAlg, eventData) }));
  if (pcrHandle !== TPM_RH.NULL) {
    for (const d of digests) extendOne(engine, pcrHandle, d.hashAlg, d.digest);
    bump(engine, pcrHandle);
  }
  return ok<typeof PCR_Event>({ digests: digests as never });
});

/**
 * Part 3 §22.4: values in selection order, at most MAX_DIGEST_LIST (8) of
 * them; pcrSelectionOut names exactly those returned, so the caller asks
 * again for the rest. Unallocated banks and PCRs come back deselected.
 */
export const pcrReadHandler = handler(PCR_Read, ({ engine }, _h, { pcrSelectionIn }) => {
  const values: Uint8Array[] = [];
  const out: TPMS_PCR_SELECTION[] = [];
  for (const sel of pcrSelectionIn as TPMS_PCR_SELECTION[]) {
    const select = new Uint8Array(sel.pcrSelect.length);
    const bank = engine.volatile.pcrs.get(sel.hash);
    if (bank !== undefined) {
      const allocated = allocatedMask(engine, sel.hash);
      for (const i of pcrIndices(sel)) {
        if (i >= bank.length || (allocated & (1 << i)) === 0 || values.length === LIMITS.MAX_DIGEST_LIST) continue;
        // No copy: a PCR's value is replaced on every change, never written in place (extendOne, PCR_Reset).
        values.push(bank[i]!);
        select[i >> 3]! |= 1 << (i & 7);
      }
    }
    out.push({ hash: sel.hash, pcrSelect: select });
  }
  return ok<typeof PCR_Read>({ pcrUpdateCounter: engine.volatile.pcrUpdateCounter, pcrSelectionOut: out, pcrValues: values });
});

/** Part 3 §22.8: only PCRs the locality may reset; all banks go back to zero (a DRTM reset leaves 17–22 at zero too). */
export const pcrResetHandler = handler(PCR_Reset, ({ engine, locality }, { pcrHandle }) => {
  if (!canReset(pcrHandle, locality)) throw new TpmError(TPM_RC.LOCALITY);
  for (const bank of engine.volatile.pcrs.values()) bank[pcrHandle] = new Uint8Array(bank[pcrHandle]!.length);
  bump(engine, pcrHandle);
  return ok<typeof PCR_Reset>({});
});

/** The hashes this TPM implements (TPM_CAP_ALGS, PCR banks): SHA-1 and SHA-2 256/384/512 like libtpms; no SM3 or SHA-3. */
const IMPLEMENTED_HASHES: ReadonlySet<number> = new Set([TPM_ALG.SHA1, TPM_ALG.SHA256, TPM_ALG.SHA384, TPM_ALG.SHA512]);

export function isImplementedHash(alg: number): alg is PcrBankAlg {
  return IMPLEMENTED_HASHES.has(alg);
}

/** Part 1 §17 (PC Client): an allocation must keep the H-CRTM PCR 0 and the D-CRTM PCR 17 in some bank (the reference's HCRTM_PCR, DRTM_PCR). */
const HCRTM_PCR = 0;
const PCR_SELECT_BYTES = PCR_COUNT / 8;
const DRTM_PCR = 17;

/**
 * Bytes the PCRs may take, as libtpms reports sizeAvailable (sizeof its PCR
 * array): every PCR with a value for each implemented bank.
 */
const PCR_BYTES_AVAILABLE = PCR_COUNT * [...IMPLEMENTED_HASHES].reduce((n, alg) => n + digestSize(alg), 0);

/**
 * Part 3 §22.5: the allocation for the next TPM Reset (startup.ts applies
 * state.pendingPcrAllocation). A bank named replaces its current (or already
 * pending) allocation, the last naming wins, banks not named keep theirs
 * (the reference's PCRAllocate). Without PCR 0 and PCR 17 in some bank it is
 * TPM_RC_PCR. maxPCR, sizeNeeded and sizeAvailable are libtpms's: 24, the
 * digest bytes the new allocation needs, and the bytes of every PCR in every
 * implemented bank, so allocationSuccess is always YES here.
 */
export const pcrAllocateHandler = handler(PCR_Allocate, (ctx, _h, { pcrAllocation }) => {
  const state = ctx.engine.state;
  const next: PcrBankAllocation[] = state.pcrAllocation.map((b) => ({ hashAlg: b.hashAlg, pcrs: [...b.pcrs] }));
  for (const sel of pcrAllocation as TPMS_PCR_SELECTION[]) {
    // libtpms takes only selections of exactly its PCR_SELECT_MIN = PCR_SELECT_MAX = 3 bytes (TPM_RC_VALUE when unmarshaling).
    if (sel.pcrSelect.length !== PCR_SELECT_BYTES) throw new TpmError(rcForParameter(TPM_RC.VALUE, 1));
    // A bank of a hash the TPM lacks (SM3, SHA-3) fails unmarshaling in libtpms (TPM_RC_HASH); it could never be filled.
    if (!isImplementedHash(sel.hash)) throw new TpmError(rcForParameter(TPM_RC.HASH, 1));
    const pcrs = pcrIndices(sel).filter((i) => i < PCR_COUNT);
    const bank = next.find((b) => b.hashAlg === sel.hash);
    if (bank !== undefined) bank.pcrs = pcrs;
    else next.push({ hashAlg: sel.hash, pcrs });
  }
  let sizeNeeded = 0;
  for (const b of next) sizeNeeded += digestSize(b.hashAlg) * b.pcrs.length;
  if (!next.some((b) => b.pcrs.includes(HCRTM_PCR)) || !next.some((b) => b.pcrs.includes(DRTM_PCR))) throw new TpmError(TPM_RC.PCR);
  state.pendingPcrAllocation = next;
  ctx.persistentChanged = true;
  return ok<typeof PCR_Allocate>({ allocationSuccess: 1, maxPCR: PCR_COUNT, sizeNeeded, sizeAvailable: PCR_BYTES_AVAILABLE });
});

const P_AUTH_POLICY = 1;
const P_HASH_ALG = 2;
const P_PCR_NUM = 3;

/**
 * Part 3 §22.6: the platform sets the authPolicy (and its hash) of the
 * policy group holding pcrNum; kept across every reset (the reference's
 * gp.pcrPolicies). hashAlg TPM_ALG_NULL with an empty digest removes it.
 * In libtpms's order: pcrNum's range as TPMI_DH_PCR unmarshals it, the
 * digest size, then the group.
 */
export const pcrSetAuthPolicyHandler = handler(PCR_SetAuthPolicy, (ctx, _h, { authPolicy, hashAlg, pcrNum }) => {
  // TPMI_ALG_HASH+ and TPMI_DH_PCR unmarshaling: a hash this TPM lacks, a PCR it does not have.
  if (hashAlg !== TPM_ALG.NULL && !isImplementedHash(hashAlg)) throw new TpmError(rcForParameter(TPM_RC.HASH, P_HASH_ALG));
  if (pcrNum >>> 0 >= PCR_COUNT) throw new TpmError(rcForParameter(TPM_RC.VALUE, P_PCR_NUM));
  if (authPolicy.length !== (hashAlg === TPM_ALG.NULL ? 0 : digestSize(hashAlg))) throw new TpmError(rcForParameter(TPM_RC.SIZE, P_AUTH_POLICY));
  const group = pcrPolicyGroup(pcrNum);
  if (group === undefined) throw new TpmError(rcForParameter(TPM_RC.VALUE, P_PCR_NUM));
  ctx.engine.state.pcrAuthPolicies[group] = { hashAlg, policy: authPolicy.slice() };
  ctx.persistentChanged = true;
  return ok<typeof PCR_SetAuthPolicy>({});
});

/**
 * Part 3 §22.7: the authValue of pcrHandle's authValue group, until the next
 * Startup(CLEAR) or Clear (clearPcrAuthValues). A PCR outside every group is
 * TPM_RC_VALUE without a parameter number, as the reference answers. The
 * change is state-clear data, so a Shutdown(STATE) before it no longer
 * allows a Resume (the reference's RETURN_IF_ORDERLY).
 */
export const pcrSetAuthValueHandler = handler(PCR_SetAuthValue, (ctx, { pcrHandle }, { auth }) => {
  const group = pcrAuthValueGroup(pcrHandle);
  if (group === undefined) throw new TpmError(TPM_RC.VALUE);
  const state = ctx.engine.state;
  if (state.orderlyShutdown !== 'none') state.orderlyShutdown = 'none';
  // Kept without trailing zeros, as every authValue (Part 1 §19.6.5).
  state.pcrAuthValues[group] = trimAuthValue(auth);
  ctx.persistentChanged = true;
  return ok<typeof PCR_SetAuthValue>({});
});

/** The reference's PCR_ClearAuth: every Startup but a Resume, and Clear, empty the PCR authValues. */
export function clearPcrAuthValues(state: SimulatorState): void {
  state.pcrAuthValues = state.pcrAuthValues.map(() => new Uint8Array(0));
}

/** The PCR administration commands of part 2 (handlers/index.ts spreads them). */
export const PCR_ADMIN_HANDLERS: readonly CommandHandler[] = [pcrAllocateHandler, pcrSetAuthPolicyHandler, pcrSetAuthValueHandler] as unknown as readonly CommandHandler[];
