/**
 * Part 3 §23 Enhanced Authorization (EA) Commands, and PolicyRestart (§11.2).
 *
 * Every policy command updates the session's policyDigest with the core's
 * pure update functions (src/tpm/policy.ts), the same ones the client's
 * PolicyCalculator uses, so a digest computed in software and one built on
 * this TPM agree by construction. A real policy session first checks the
 * command's condition (a signature, PCR values, NV contents, …) and records
 * what must still hold when the session authorizes a command (sessions.ts
 * PolicyAssertions, checked by ../policy-check.ts); a trial session only
 * updates the digest (Part 1 §19.7.4). Checks and response codes follow the
 * reference implementation's order.
 */
import {
  PolicyAuthValue,
  PolicyAuthorize,
  PolicyAuthorizeNV,
  PolicyCommandCode,
  PolicyCounterTimer,
  PolicyCpHash,
  PolicyDuplicationSelect,
  PolicyGetDigest,
  PolicyLocality,
  PolicyNameHash,
  PolicyNV,
  PolicyNvWritten,
  PolicyOR,
  PolicyPassword,
  PolicyPCR,
  PolicyPhysicalPresence,
  PolicyRestart,
  PolicySecret,
  PolicySigned,
  PolicyTemplate,
  PolicyTicket,
} from '../../tpm/commands/index.js';
import { TPM_ALG, TPM_CC, TPM_EO, TPM_HT, TPM_NT, TPM_RH, TPM_ST } from '../../tpm/constants.js';
import { digestSize, isHashAlg } from '../../tpm/crypto/hash.js';
import { equalBytes } from '../../tpm/bytes.js';
import { handleName, nvName } from '../../tpm/names.js';
import { pcrIndices } from '../../tpm/pcr.js';
import {
  nameHash as namesDigest,
  pcrDigest,
  policyAuthorizeDigest,
  policySignedDigest,
  updatePolicyAuthValue,
  updatePolicyAuthorize,
  updatePolicyAuthorizeNV,
  updatePolicyCommandCode,
  updatePolicyCounterTimer,
  updatePolicyCpHash,
  updatePolicyDuplicationSelect,
  updatePolicyLocality,
  updatePolicyNameHash,
  updatePolicyNV,
  updatePolicyNvWritten,
  updatePolicyOR,
  updatePolicyPassword,
  updatePolicyPCR,
  updatePolicyPhysicalPresence,
  updatePolicySecret,
  updatePolicySigned,
  updatePolicyTemplate,
  updatePolicyTicket,
  zeroPolicy,
} from '../../tpm/policy.js';
import { TPM_RC, TpmError, rcForHandle, rcForParameter } from '../../tpm/rc.js';
import {
  TPMA_LOCALITY,
  TPMA_NV,
  TPMS_TIME_INFO,
  TPMT_HA,
  type TPMS_PCR_SELECTION,
  type TPMT_SIGNATURE,
  type TPMT_TK_AUTH,
} from '../../tpm/types/index.js';
import { decode, encode } from '../../tpm/wire/codec.js';
import type { TpmEngine } from '../engine.js';
import type { LoadedObject } from '../objects.js';
import { emptyPolicyAssertions, type SessionState } from '../sessions.js';
import { verifySignature } from '../signing.js';
import type { NvIndexState } from '../state.js';
import { authTicketDigest, verifiedTicketDigest } from '../tickets.js';
import { findObject } from './object.js';
import { handler, ok, type CommandHandler } from './handler.js';
import { checkAccess, nvPublicOf } from './nv.js';

const EMPTY = new Uint8Array(0);

/**
 * The reference keeps "expires on TPM Reset" in the top bit of the 8-byte
 * timeout it returns (TPM-specific format, Part 3 §23.3.1); PolicyTicket
 * strips it before checking the ticket.
 */
const EXPIRATION_BIT = 1n << 63n;

// ---------------------------------------------------------------------------
// Helpers

/**
 * The policy or trial session at `h`, handle number `index` of the command.
 * The engine checked that the handle is loaded; an HMAC session here is
 * TPM_RC_HANDLE as in policySessionAt.
 */
function policySession(engine: TpmEngine, h: number, index: number): SessionState {
  const s = engine.volatile.sessions.get(h);
  if (s === undefined || s.kind === 'hmac') throw new TpmError(rcForHandle(TPM_RC.HANDLE, index));
  return s;
}

function isTrial(s: SessionState): boolean {
  return s.kind === 'trial';
}

function findNv(engine: TpmEngine, h: number, index: number): NvIndexState {
  const nv = engine.state.nvIndices.find((n) => n.nvIndex === h);
  if (nv === undefined) throw new TpmError(rcForHandle(TPM_RC.HANDLE, index));
  return nv;
}

/** A transient or persistent object (findObject), or TPM_RC_HANDLE on handle `index`. */
function objectAt(engine: TpmEngine, h: number, index: number): LoadedObject {
  const o = findObject(engine, h);
  if (o === undefined) throw new TpmError(rcForHandle(TPM_RC.HANDLE, index));
  return o;
}

/** Name of an entity handle (the reference's EntityGetName): a key's or an index's Name, otherwise the handle itself (Part 1 §16). */
function entityName(engine: TpmEngine, h: number, index: number): Uint8Array {
  const type = h >>> 24;
  if (type === TPM_HT.TRANSIENT || type === TPM_HT.PERSISTENT) return objectAt(engine, h, index).name;
  if (type === TPM_HT.NV_INDEX) return nvName(nvPublicOf(findNv(engine, h, index)));
  return handleName(h);
}

/**
 * The hierarchy whose proof signs an entity's tickets (the reference's
 * EntityGetHierarchy): platform, endorsement and null for themselves, an
 * object's own hierarchy, PLATFORMCREATE indices the platform's, everything
 * else (owner, lockout, PCRs, other indices) the owner's.
 */
function entityHierarchy(engine: TpmEngine, h: number, index: number): number {
  const type = h >>> 24;
  if (type === TPM_HT.TRANSIENT || type === TPM_HT.PERSISTENT) return objectAt(engine, h, index).hierarchy;
  if (type === TPM_HT.NV_INDEX) return TPMA_NV.fromWord(findNv(engine, h, index).attributes).PLATFORMCREATE ? TPM_RH.PLATFORM : TPM_RH.OWNER;
  if (h === TPM_RH.PLATFORM || h === TPM_RH.ENDORSEMENT || h === TPM_RH.NULL) return h;
  return TPM_RH.OWNER;
}

function u64Bytes(v: bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt.asUintN(64, v));
  return out;
}

/**
 * Part 3 §23.3.1 expiration → the session's timeout in Time (ms), 0 for none
 * (the reference's ComputeAuthTimeout): relative to the session's start when
 * bound to its nonceTPM, otherwise an absolute Time in seconds.
 */
function authTimeout(engine: TpmEngine, s: SessionState, expiration: number, nonceTPM: Uint8Array): bigint {
  if (expiration === 0) return 0n;
  const seconds = BigInt(Math.abs(expiration));
  if (nonceTPM.length === 0) return seconds * 1000n + (engine.time() % 1000n);
  return s.startTime + seconds * 1000n;
}

/** Parameter numbers that PolicyParameterChecks blames. */
interface Blame {
  readonly nonce: number;
  readonly cpHash: number;
  readonly expiration: number;
}

/**
 * The checks PolicySigned, PolicySecret and PolicyTicket share (the
 * reference's PolicyParameterChecks): nonceTPM, when given, is the session's;
 * the authorization has not expired; cpHashA, when given, has the session
 * hash's size and agrees with a cpHash the session already holds.
 */
function parameterChecks(engine: TpmEngine, s: SessionState, timeout: bigint, cpHashA: Uint8Array, nonceTPM: Uint8Array | undefined, blame: Blame): void {
  if (nonceTPM !== undefined && nonceTPM.length !== 0 && !equalBytes(nonceTPM, s.nonceTPM)) throw new TpmError(rcForParameter(TPM_RC.NONCE, blame.nonce));
  if (timeout !== 0n && timeout < engine.time()) throw new TpmError(rcForParameter(TPM_RC.EXPIRED, blame.expiration));
  if (cpHashA.length !== 0) {
    if (cpHashA.length !== digestSize(s.authHash)) throw new TpmError(rcForParameter(TPM_RC.SIZE, blame.cpHash));
    if (cpHashUnionOccupied(s) && !(s.policy.cpHash !== undefined && equalBytes(cpHashA, s.policy.cpHash))) throw new TpmError(TPM_RC.CPHASH);
  }
}

/**
 * The rest of the reference's PolicyContextUpdate after the digest: remember
 * cpHashA when given, and keep the earliest timeout.
 */
function recordContext(s: SessionState, cpHashA: Uint8Array, timeout: bigint): void {
  if (cpHashA.length !== 0) s.policy.cpHash = cpHashA.slice();
  if (timeout !== 0n && (s.policy.timeout === undefined || s.policy.timeout > timeout)) s.policy.timeout = timeout;
}

/**
 * cpHash, nameHash and templateHash share one slot in the reference's
 * session (u1), so a session holds at most one of them (TPM_RC_CPHASH).
 */
function cpHashUnionOccupied(s: SessionState): boolean {
  return s.policy.cpHash !== undefined || s.policy.nameHash !== undefined || s.policy.templateHash !== undefined;
}

/** The timeout buffer and ticket PolicySigned / PolicySecret return (Part 3 §23.3.1, §23.4.1). */
function authOutput(
  engine: TpmEngine,
  s: SessionState,
  tag: number,
  args: { expiration: number; nonceTPM: Uint8Array; cpHashA: Uint8Array; policyRef: Uint8Array; authName: Uint8Array; hierarchy: number; timeout: bigint },
): { timeout: Uint8Array; policyTicket: TPMT_TK_AUTH } {
  // A ticket only for a negative expiration of a real session (Part 3 §23.3.1).
  if (args.expiration >= 0 || isTrial(s)) return { timeout: EMPTY, policyTicket: { tag, hierarchy: TPM_RH.NULL, digest: EMPTY } as TPMT_TK_AUTH };
  const expiresOnReset = args.nonceTPM.length === 0;
  const digest = authTicketDigest(engine, {
    tag,
    hierarchy: args.hierarchy,
    timeout: args.timeout,
    expiresOnReset,
    cpHashA: args.cpHashA,
    policyRef: args.policyRef,
    authName: args.authName,
  });
  return {
    timeout: u64Bytes(expiresOnReset ? args.timeout | EXPIRATION_BIT : args.timeout),
    policyTicket: { tag, hierarchy: args.hierarchy, digest } as TPMT_TK_AUTH,
  };
}

/**
 * A TPM_EO comparison (Part 2 §6.8) of two big-endian operands of equal
 * length, as PolicyNV and PolicyCounterTimer apply it (Part 3 §23.9, §23.10;
 * the reference's PolicySptCheckCondition): A is the TPM's data, B operandB.
 */
export function checkCondition(operation: number, a: Uint8Array, b: Uint8Array): boolean {
  const unsigned = (): number => {
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
    return 0;
  };
  const signed = (): number => {
    if (a.length === 0) return 0;
    const na = a[0]! >= 0x80;
    const nb = b[0]! >= 0x80;
    if (na !== nb) return na ? -1 : 1;
    return unsigned();
  };
  switch (operation) {
    case TPM_EO.EQ:
      return unsigned() === 0;
    case TPM_EO.NEQ:
      return unsigned() !== 0;
    case TPM_EO.SIGNED_GT:
      return signed() > 0;
    case TPM_EO.UNSIGNED_GT:
      return unsigned() > 0;
    case TPM_EO.SIGNED_LT:
      return signed() < 0;
    case TPM_EO.UNSIGNED_LT:
      return unsigned() < 0;
    case TPM_EO.SIGNED_GE:
      return signed() >= 0;
    case TPM_EO.UNSIGNED_GE:
      return unsigned() >= 0;
    case TPM_EO.SIGNED_LE:
      return signed() <= 0;
    case TPM_EO.UNSIGNED_LE:
      return unsigned() <= 0;
    case TPM_EO.BITSET:
      return a.every((x, i) => (x & b[i]!) === b[i]);
    case TPM_EO.BITCLEAR:
      return a.every((x, i) => (x & b[i]!) === 0);
    default:
      return false;
  }
}

/** The marshaled TPMS_TIME_INFO PolicyCounterTimer compares against (Part 3 §23.10). */
function timeInfoBytes(engine: TpmEngine): Uint8Array {
  engine.syncClock();
  const c = engine.state.clock;
  return encode(TPMS_TIME_INFO, { time: engine.time(), clockInfo: { clock: c.clock, resetCount: c.resetCount, restartCount: c.restartCount, safe: c.safe ? 1 : 0 } });
}

/** Size of a marshaled TPMS_TIME_INFO (Part 2 §10.11.6). */
const TIME_INFO_SIZE = 25;

/**
 * The selection with only PCRs this TPM has (the reference's FilterPcr):
 * bits of unallocated banks and of PCRs past the last are cleared. The
 * filtered selection is what enters the policy digest.
 */
function filterSelection(engine: TpmEngine, pcrs: readonly TPMS_PCR_SELECTION[]): TPMS_PCR_SELECTION[] {
  return pcrs.map((sel) => {
    const bank = engine.volatile.pcrs.get(sel.hash);
    const pcrSelect = new Uint8Array(sel.pcrSelect.length);
    if (bank !== undefined) for (const i of pcrIndices(sel)) if (i < bank.length) pcrSelect[i >> 3]! |= 1 << (i & 7);
    return { hash: sel.hash, pcrSelect };
  });
}

/** H_sessionHash of the selected current PCR values (the reference's PCRComputeCurrentDigest), through the core's pcrDigest. */
function currentPcrDigest(engine: TpmEngine, hashAlg: number, pcrs: readonly TPMS_PCR_SELECTION[]): Uint8Array {
  const banks = new Map<number, Map<number, Uint8Array>>();
  for (const [alg, values] of engine.volatile.pcrs) banks.set(alg, new Map(values.map((v, i) => [i, v])));
  return pcrDigest(hashAlg, pcrs, banks);
}

// ---------------------------------------------------------------------------
// Handlers

/** Part 3 §23.3: an authorization signed by the holder of authObject. */
export const policySignedHandler = handler(PolicySigned, ({ engine }, { authObject, policySession: h }, p) => {
  const s = policySession(engine, h, 2);
  const key = objectAt(engine, authObject, 1);
  let timeout = 0n;
  if (!isTrial(s)) {
    timeout = authTimeout(engine, s, p.expiration, p.nonceTPM);
    parameterChecks(engine, s, timeout, p.cpHashA, p.nonceTPM, { nonce: 1, cpHash: 2, expiration: 4 });
    const sig = p.auth as TPMT_SIGNATURE;
    const sigHash = signatureHash(sig);
    if (sigHash === undefined) throw new TpmError(rcForParameter(TPM_RC.SCHEME, 5));
    // aHash = H_sigHash(nonceTPM ‖ expiration ‖ cpHashA ‖ policyRef) (Part 3 §23.3.1).
    const aHash = policySignedDigest(sigHash, { nonceTPM: p.nonceTPM, expiration: p.expiration, cpHashA: p.cpHashA, policyRef: p.policyRef });
    const rc = verifySignature(key, aHash, sig, engine.profile.algorithms.signingHashes);
    if (rc !== 0) throw new TpmError(rcForParameter(rc, 5));
  }
  s.policyDigest = updatePolicySigned(s.authHash, s.policyDigest, { authName: key.name, policyRef: p.policyRef });
  recordContext(s, p.cpHashA, timeout);
  return ok<typeof PolicySigned>(
    authOutput(engine, s, TPM_ST.AUTH_SIGNED, { ...p, authName: key.name, hierarchy: key.hierarchy, timeout }),
  );
});

/** The hash of a signature's scheme (the reference's CryptGetSignHashAlg), undefined for NULL or an unknown hash. */
function signatureHash(sig: TPMT_SIGNATURE): number | undefined {
  if (sig.sigAlg === TPM_ALG.NULL) return undefined;
  const body = sig.signature as { hash?: number; hashAlg?: number };
  const alg = sig.sigAlg === TPM_ALG.HMAC ? body.hashAlg : body.hash;
  return alg !== undefined && isHashAlg(alg) ? alg : undefined;
}

/** Part 3 §23.4: proof of knowledge of authHandle's authorization (checked by the engine, USER role). */
export const policySecretHandler = handler(PolicySecret, ({ engine }, { authHandle, policySession: h }, p) => {
  const s = policySession(engine, h, 2);
  let timeout = 0n;
  if (!isTrial(s)) {
    timeout = authTimeout(engine, s, p.expiration, p.nonceTPM);
    parameterChecks(engine, s, timeout, p.cpHashA, p.nonceTPM, { nonce: 1, cpHash: 2, expiration: 4 });
  }
  const authName = entityName(engine, authHandle, 1);
  s.policyDigest = updatePolicySecret(s.authHash, s.policyDigest, { authName, policyRef: p.policyRef });
  recordContext(s, p.cpHashA, timeout);
  // A PIN Pass index counts each use; a ticket would let its secret be used without counting (Part 3 §23.4.1).
  const pinPass = authHandle >>> 24 === TPM_HT.NV_INDEX && TPMA_NV.fromWord(findNv(engine, authHandle, 1).attributes).TPM_NT === TPM_NT.PIN_PASS;
  const expiration = pinPass ? 0 : p.expiration;
  return ok<typeof PolicySecret>(
    authOutput(engine, s, TPM_ST.AUTH_SECRET, { ...p, expiration, authName, hierarchy: entityHierarchy(engine, authHandle, 1), timeout }),
  );
});

/** Part 3 §23.5: a ticket from an earlier PolicySigned or PolicySecret stands in for it. */
export const policyTicketHandler = handler(PolicyTicket, ({ engine }, { policySession: h }, p) => {
  const s = policySession(engine, h, 1);
  // A trial session has no use for a ticket: it would take the authorization itself (reference PolicyTicket).
  if (isTrial(s)) throw new TpmError(rcForHandle(TPM_RC.ATTRIBUTES, 1));
  if (p.timeout.length !== 8) throw new TpmError(rcForParameter(TPM_RC.SIZE, 1));
  const raw = new DataView(p.timeout.buffer, p.timeout.byteOffset, 8).getBigUint64(0);
  const expiresOnReset = (raw & EXPIRATION_BIT) !== 0n;
  const timeout = raw & ~EXPIRATION_BIT;
  parameterChecks(engine, s, timeout, p.cpHashA, undefined, { nonce: 0, cpHash: 2, expiration: 1 });
  const ticket = p.ticket as TPMT_TK_AUTH;
  const expected = authTicketDigest(engine, {
    tag: ticket.tag,
    hierarchy: ticket.hierarchy,
    timeout,
    expiresOnReset,
    cpHashA: p.cpHashA,
    policyRef: p.policyRef,
    authName: p.authName,
  });
  if (!equalBytes(ticket.digest, expected)) throw new TpmError(rcForParameter(TPM_RC.TICKET, 5));
  s.policyDigest = updatePolicyTicket(s.authHash, s.policyDigest, { ticket, authName: p.authName, policyRef: p.policyRef });
  recordContext(s, p.cpHashA, timeout);
  return ok<typeof PolicyTicket>({});
});

/** Part 3 §23.6: the digest becomes H(zeros ‖ CC ‖ branches) when it is one of the branches. */
export const policyORHandler = handler(PolicyOR, ({ engine }, { policySession: h }, { pHashList }) => {
  const s = policySession(engine, h, 1);
  const list = pHashList as Uint8Array[];
  // TPML_DIGEST of PolicyOR holds at least two digests (the reference's unmarshaler: TPM_RC_SIZE).
  if (list.length < 2) throw new TpmError(rcForParameter(TPM_RC.SIZE, 1));
  if (!isTrial(s) && !list.some((d) => equalBytes(d, s.policyDigest))) throw new TpmError(rcForParameter(TPM_RC.VALUE, 1));
  s.policyDigest = updatePolicyOR(s.authHash, s.policyDigest, { pHashList: list });
  return ok<typeof PolicyOR>({});
});

/** Part 3 §23.7: the selected PCRs must hold the values pcrDigest says (empty: whatever they hold now). */
export const policyPCRHandler = handler(PolicyPCR, ({ engine }, { policySession: h }, p) => {
  const s = policySession(engine, h, 1);
  const pcrs = filterSelection(engine, p.pcrs as TPMS_PCR_SELECTION[]);
  let digest = currentPcrDigest(engine, s.authHash, pcrs);
  if (!isTrial(s)) {
    // A PCR change since an earlier PolicyPCR of this session invalidates it (TPM_RC_PCR_CHANGED).
    if (s.policy.pcrUpdateCounter !== undefined && s.policy.pcrUpdateCounter !== engine.volatile.pcrUpdateCounter) throw new TpmError(TPM_RC.PCR_CHANGED);
    if (p.pcrDigest.length !== 0 && !equalBytes(p.pcrDigest, digest)) throw new TpmError(rcForParameter(TPM_RC.VALUE, 1));
  } else if (p.pcrDigest.length !== 0) {
    digest = p.pcrDigest; // a trial session takes the caller's digest as it is
  }
  s.policyDigest = updatePolicyPCR(s.authHash, s.policyDigest, { pcrs, pcrDigest: digest });
  if (!isTrial(s)) s.policy.pcrUpdateCounter = engine.volatile.pcrUpdateCounter;
  return ok<typeof PolicyPCR>({});
});

/** Part 3 §23.8: the localities the session may be used at (intersected with earlier PolicyLocality). */
export const policyLocalityHandler = handler(PolicyLocality, ({ engine }, { policySession: h }, { locality }) => {
  const s = policySession(engine, h, 1);
  const requested = TPMA_LOCALITY.toWord(locality as TPMA_LOCALITY);
  if (requested === 0) throw new TpmError(rcForParameter(TPM_RC.RANGE, 1));
  const previous = s.policy.commandLocality ?? 0;
  // Normal (bits 0–4) and extended (32–255) localities do not mix.
  if (previous !== 0 && previous < 32 !== requested < 32) throw new TpmError(rcForParameter(TPM_RC.RANGE, 1));
  let next: number;
  if (requested < 32) {
    next = (previous === 0 ? 0x1f : previous) & requested;
    if (next === 0) throw new TpmError(rcForParameter(TPM_RC.RANGE, 1));
  } else {
    if (previous !== 0 && previous !== requested) throw new TpmError(rcForParameter(TPM_RC.RANGE, 1));
    next = requested;
  }
  s.policyDigest = updatePolicyLocality(s.authHash, s.policyDigest, { locality: requested });
  s.policy.commandLocality = next;
  return ok<typeof PolicyLocality>({});
});

/** Part 3 §23.9: operandB compared with the index's contents at offset (read authorization by the engine). */
export const policyNVHandler = handler(PolicyNV, ({ engine }, { authHandle, nvIndex, policySession: h }, p) => {
  const s = policySession(engine, h, 3);
  const nv = findNv(engine, nvIndex, 2);
  if (!isTrial(s)) {
    // NV_Read's checks (the reference's NvReadAccessChecks); the index's own AUTHREAD/POLICYREAD/PIN rules were the engine's.
    checkAccess(nv, authHandle, 'read');
    if (p.offset > nv.dataSize) throw new TpmError(rcForParameter(TPM_RC.VALUE, 2));
    if (nv.dataSize - p.offset < p.operandB.length) throw new TpmError(rcForParameter(TPM_RC.SIZE, 1));
    const a = nv.data.subarray(p.offset, p.offset + p.operandB.length);
    if (!checkCondition(p.operation, a, p.operandB)) throw new TpmError(TPM_RC.POLICY);
  }
  s.policyDigest = updatePolicyNV(s.authHash, s.policyDigest, {
    operandB: p.operandB,
    offset: p.offset,
    operation: p.operation,
    nvIndexName: nvName(nvPublicOf(nv)),
  });
  return ok<typeof PolicyNV>({});
});

/** Part 3 §23.10: operandB compared with the TPMS_TIME_INFO (Time, Clock, resetCount, restartCount, safe) at offset. */
export const policyCounterTimerHandler = handler(PolicyCounterTimer, ({ engine }, { policySession: h }, p) => {
  // The bounds are checked even for a trial session: a policy past the structure could never be met.
  if (p.offset > TIME_INFO_SIZE) throw new TpmError(rcForParameter(TPM_RC.VALUE, 2));
  if (p.offset + p.operandB.length > TIME_INFO_SIZE) throw new TpmError(TPM_RC.RANGE);
  const s = policySession(engine, h, 1);
  if (!isTrial(s)) {
    const info = timeInfoBytes(engine);
    if (!checkCondition(p.operation, info.subarray(p.offset, p.offset + p.operandB.length), p.operandB)) throw new TpmError(TPM_RC.POLICY);
  }
  s.policyDigest = updatePolicyCounterTimer(s.authHash, s.policyDigest, { operandB: p.operandB, offset: p.offset, operation: p.operation });
  return ok<typeof PolicyCounterTimer>({});
});

/** Part 3 §23.11: the only command the session may authorize. */
export const policyCommandCodeHandler = handler(PolicyCommandCode, ({ engine }, { policySession: h }, { code }) => {
  const s = policySession(engine, h, 1);
  if (s.policy.commandCode !== undefined && s.policy.commandCode !== code) throw new TpmError(rcForParameter(TPM_RC.VALUE, 1));
  // A command this TPM does not implement could never be authorized (reference: TPM_RC_POLICY_CC).
  if (engine.commandRecord(code) === undefined) throw new TpmError(rcForParameter(TPM_RC.POLICY_CC, 1));
  s.policyDigest = updatePolicyCommandCode(s.authHash, s.policyDigest, { code });
  s.policy.commandCode = code;
  return ok<typeof PolicyCommandCode>({});
});

/** Part 3 §23.12: physical presence must be asserted when the session is used. */
export const policyPhysicalPresenceHandler = handler(PolicyPhysicalPresence, ({ engine }, { policySession: h }) => {
  const s = policySession(engine, h, 1);
  s.policyDigest = updatePolicyPhysicalPresence(s.authHash, s.policyDigest);
  s.policy.isPPRequired = true;
  return ok<typeof PolicyPhysicalPresence>({});
});

/** Part 3 §23.13: the session authorizes only the command with this cpHash. */
export const policyCpHashHandler = handler(PolicyCpHash, ({ engine }, { policySession: h }, { cpHashA }) => {
  const s = policySession(engine, h, 1);
  if (cpHashA.length !== digestSize(s.authHash)) throw new TpmError(rcForParameter(TPM_RC.SIZE, 1));
  if (cpHashUnionOccupied(s) && !(s.policy.cpHash !== undefined && equalBytes(cpHashA, s.policy.cpHash))) throw new TpmError(TPM_RC.CPHASH);
  s.policyDigest = updatePolicyCpHash(s.authHash, s.policyDigest, { cpHashA });
  s.policy.cpHash = cpHashA.slice();
  return ok<typeof PolicyCpHash>({});
});

/** Part 3 §23.14: the session authorizes only commands on the handles with these Names. */
export const policyNameHashHandler = handler(PolicyNameHash, ({ engine }, { policySession: h }, { nameHash }) => {
  const s = policySession(engine, h, 1);
  if (nameHash.length !== digestSize(s.authHash)) throw new TpmError(rcForParameter(TPM_RC.SIZE, 1));
  if (cpHashUnionOccupied(s)) throw new TpmError(TPM_RC.CPHASH);
  s.policyDigest = updatePolicyNameHash(s.authHash, s.policyDigest, { nameHash });
  s.policy.nameHash = nameHash.slice();
  return ok<typeof PolicyNameHash>({});
});

/** Part 3 §23.15: Duplicate only to newParent (and of objectName): a nameHash and the command code Duplicate. */
export const policyDuplicationSelectHandler = handler(PolicyDuplicationSelect, ({ engine }, { policySession: h }, p) => {
  const s = policySession(engine, h, 1);
  if (cpHashUnionOccupied(s)) throw new TpmError(TPM_RC.CPHASH);
  if (s.policy.commandCode !== undefined) throw new TpmError(TPM_RC.COMMAND_CODE);
  s.policyDigest = updatePolicyDuplicationSelect(s.authHash, s.policyDigest, {
    objectName: p.objectName,
    newParentName: p.newParentName,
    includeObject: p.includeObject === 1,
  });
  // Duplicate's handles are objectHandle, newParentHandle: their Names' hash is the nameHash checked at use.
  s.policy.nameHash = namesDigest(s.authHash, [p.objectName, p.newParentName]);
  s.policy.commandCode = TPM_CC.Duplicate;
  return ok<typeof PolicyDuplicationSelect>({});
});

/** Part 3 §23.16: the current digest was approved by keySign (a VerifySignature ticket); the digest restarts from keySign's Name. */
export const policyAuthorizeHandler = handler(PolicyAuthorize, ({ engine }, { policySession: h }, p) => {
  const s = policySession(engine, h, 1);
  // keySign is checked even in a trial session: the digest depends on it (Part 3 §23.16.1).
  if (p.keySign.length < 2) throw new TpmError(rcForParameter(TPM_RC.SIZE, 3));
  const keyNameAlg = (p.keySign[0]! << 8) | p.keySign[1]!;
  if (!isHashAlg(keyNameAlg)) throw new TpmError(rcForParameter(TPM_RC.HASH, 3));
  if (p.keySign.length - 2 !== digestSize(keyNameAlg)) throw new TpmError(rcForParameter(TPM_RC.SIZE, 3));
  if (!isTrial(s)) {
    if (!equalBytes(s.policyDigest, p.approvedPolicy)) throw new TpmError(rcForParameter(TPM_RC.VALUE, 1));
    const ticket = p.checkTicket;
    // aHash = H_keyNameAlg(approvedPolicy ‖ policyRef), what VerifySignature checked the signature over.
    const aHash = policyAuthorizeDigest(keyNameAlg, p.approvedPolicy, p.policyRef);
    // A NULL-hierarchy ticket is never valid here: VerifySignature gives one for keys it cannot vouch for.
    const valid = ticket.hierarchy !== TPM_RH.NULL && equalBytes(ticket.digest, verifiedTicketDigest(engine, ticket.hierarchy, aHash, p.keySign));
    if (!valid) throw new TpmError(rcForParameter(TPM_RC.VALUE, 4));
  }
  s.policyDigest = updatePolicyAuthorize(s.authHash, s.policyDigest, { keySign: p.keySign, policyRef: p.policyRef });
  return ok<typeof PolicyAuthorize>({});
});

/** Part 3 §23.17: the authorized command's HMAC must use the entity's authValue. */
export const policyAuthValueHandler = handler(PolicyAuthValue, ({ engine }, { policySession: h }) => {
  const s = policySession(engine, h, 1);
  s.policyDigest = updatePolicyAuthValue(s.authHash, s.policyDigest);
  s.policy.isAuthValueNeeded = true;
  s.policy.isPasswordNeeded = false;
  return ok<typeof PolicyAuthValue>({});
});

/** Part 3 §23.18: the authorized command's session carries the authValue in clear (same digest as PolicyAuthValue). */
export const policyPasswordHandler = handler(PolicyPassword, ({ engine }, { policySession: h }) => {
  const s = policySession(engine, h, 1);
  s.policyDigest = updatePolicyPassword(s.authHash, s.policyDigest);
  s.policy.isPasswordNeeded = true;
  s.policy.isAuthValueNeeded = false;
  return ok<typeof PolicyPassword>({});
});

/** Part 3 §23.19. */
export const policyGetDigestHandler = handler(PolicyGetDigest, ({ engine }, { policySession: h }) => {
  const s = policySession(engine, h, 1);
  return ok<typeof PolicyGetDigest>({ policyDigest: s.policyDigest.slice() });
});

/** Part 3 §23.20: the authorized NV index must (not) have been written. */
export const policyNvWrittenHandler = handler(PolicyNvWritten, ({ engine }, { policySession: h }, { writtenSet }) => {
  const s = policySession(engine, h, 1);
  const want = writtenSet === 1;
  if (s.policy.nvWrittenState !== undefined && s.policy.nvWrittenState !== want) throw new TpmError(rcForParameter(TPM_RC.VALUE, 1));
  s.policyDigest = updatePolicyNvWritten(s.authHash, s.policyDigest, { writtenSet: want });
  s.policy.nvWrittenState = want;
  return ok<typeof PolicyNvWritten>({});
});

/** Part 3 §23.21: the creation command must use the template with this hash. */
export const policyTemplateHandler = handler(PolicyTemplate, ({ engine }, { policySession: h }, { templateHash }) => {
  const s = policySession(engine, h, 1);
  // Part 3 §23.21: another templateHash than the one set is TPM_RC_VALUE (as libtpms); a cpHash or nameHash set is TPM_RC_CPHASH.
  if (s.policy.templateHash !== undefined) {
    if (!equalBytes(templateHash, s.policy.templateHash)) throw new TpmError(rcForParameter(TPM_RC.VALUE, 1));
  } else if (cpHashUnionOccupied(s)) throw new TpmError(TPM_RC.CPHASH);
  if (templateHash.length !== digestSize(s.authHash)) throw new TpmError(rcForParameter(TPM_RC.SIZE, 1));
  s.policyDigest = updatePolicyTemplate(s.authHash, s.policyDigest, { templateHash });
  s.policy.templateHash = templateHash.slice();
  return ok<typeof PolicyTemplate>({});
});

/** Part 3 §23.22: the current digest must be the TPMT_HA the index holds; the digest restarts from the index's Name. */
export const policyAuthorizeNVHandler = handler(PolicyAuthorizeNV, ({ engine }, { authHandle, nvIndex, policySession: h }) => {
  const s = policySession(engine, h, 3);
  const nv = findNv(engine, nvIndex, 2);
  if (!isTrial(s)) {
    // NV_Read's checks (the reference's NvReadAccessChecks); the index's own AUTHREAD/POLICYREAD/PIN rules were the engine's.
    checkAccess(nv, authHandle, 'read');
    // The index holds a marshaled TPMT_HA (the reference unmarshals it and returns its errors as they are).
    const bytes = nv.data.subarray(0, nv.dataSize);
    if (bytes.length < 2) throw new TpmError(TPM_RC.INSUFFICIENT);
    const alg = (bytes[0]! << 8) | bytes[1]!;
    if (!isHashAlg(alg)) throw new TpmError(TPM_RC.HASH);
    if (bytes.length < 2 + digestSize(alg)) throw new TpmError(TPM_RC.INSUFFICIENT);
    const approved = decode(TPMT_HA, bytes.subarray(0, 2 + digestSize(alg)));
    if (approved.hashAlg !== s.authHash) throw new TpmError(TPM_RC.HASH);
    if (!('digest' in approved) || !equalBytes(approved.digest, s.policyDigest)) throw new TpmError(TPM_RC.VALUE);
  }
  s.policyDigest = updatePolicyAuthorizeNV(s.authHash, s.policyDigest, { nvIndexName: nvName(nvPublicOf(nv)) });
  return ok<typeof PolicyAuthorizeNV>({});
});

/** Part 3 §11.2: back to a fresh session's policy state; the nonces and the session itself stay. */
export const policyRestartHandler = handler(PolicyRestart, ({ engine }, { sessionHandle }) => {
  const s = policySession(engine, sessionHandle, 1);
  s.policyDigest = zeroPolicy(s.authHash);
  s.policy = emptyPolicyAssertions();
  return ok<typeof PolicyRestart>({});
});

export const POLICY_HANDLERS = [
  policySignedHandler,
  policySecretHandler,
  policyTicketHandler,
  policyORHandler,
  policyPCRHandler,
  policyLocalityHandler,
  policyNVHandler,
  policyCounterTimerHandler,
  policyCommandCodeHandler,
  policyPhysicalPresenceHandler,
  policyCpHashHandler,
  policyNameHashHandler,
  policyDuplicationSelectHandler,
  policyAuthorizeHandler,
  policyAuthValueHandler,
  policyPasswordHandler,
  policyGetDigestHandler,
  policyNvWrittenHandler,
  policyTemplateHandler,
  policyAuthorizeNVHandler,
  policyRestartHandler,
] as unknown as readonly CommandHandler[];
