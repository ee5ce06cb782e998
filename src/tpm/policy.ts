/**
 * The policy-digest calculator (Part 1 §19.7 "Policy Authorization", Part 3
 * §23 "Enhanced Authorization (EA) Commands"): the digests a TPM computes in a
 * policy or trial session, computed in software.
 *
 * Two layers, so that the client, the software TPM and the verifier share one
 * definition of every update:
 * - pure update functions `updatePolicyX(hashAlg, policyDigest, args) → policyDigest`,
 *   one per policy command, whose `args` use the command's Part 3 parameter
 *   names (a TPM implementation passes its decoded parameters plus the Names
 *   of the handles). They refuse what a TPM refuses even in a trial session
 *   (and an empty pcrDigest, which only a TPM can fill in from its PCRs), so a
 *   software TPM built on them refuses what a hardware TPM refuses;
 * - `PolicyCalculator`, a small builder over them for users, which also
 *   refuses arguments that can only give an unsatisfiable policy (a PolicyOR
 *   branch or a pcrDigest of the wrong size, a Name that is not a Name).
 *
 * Most updates are policyDigest_new = H(policyDigest_old ‖ TPM_CC ‖ args);
 * PolicyOR, PolicyAuthorize and PolicyAuthorizeNV start again from zeros.
 * Integers are big-endian; a TPM2B contributes its bytes without the size.
 */
import { TPM_ALG, TPM_CC, TPM_EO, TPM_RH, TPM_ST } from './constants.js';
import { digestSize, hash, isHashAlg } from './crypto/hash.js';
import { EncodeError, PolicyError } from './errors.js';
import { LIMITS, SIZEOF_TPMU_NAME } from './limits.js';
import { nvName } from './names.js';
import { pcrIndices } from './pcr.js';
import {
  TPMA_LOCALITY,
  TPMA_NV,
  TPML_PCR_SELECTION,
  TPMT_PUBLIC,
  type TPMS_NV_PUBLIC,
  type TPMS_PCR_SELECTION,
  type TPMT_HA,
} from './types/index.js';
import { encode } from './wire/codec.js';

// ---------------------------------------------------------------------------
// Byte helpers and argument checks

function u8(n: number): Uint8Array {
  return Uint8Array.of(n & 0xff);
}
function u16be(n: number): Uint8Array {
  return Uint8Array.of((n >>> 8) & 0xff, n & 0xff);
}
function u32be(n: number): Uint8Array {
  return Uint8Array.of((n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
}

const EMPTY = new Uint8Array(0);
/** sizeof(TPMS_TIME_INFO) marshaled: time u64, clock u64, resetCount u32, restartCount u32, safe u8 (Part 2 §10.11.6). */
const TIME_INFO_SIZE = 25;
const EO_VALUES: ReadonlySet<number> = new Set(Object.values(TPM_EO));

function bytesArg(command: string, parameter: string, value: unknown, max: number): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new PolicyError(command, parameter, `expected a Uint8Array, got ${typeof value}`);
  if (value.length > max) throw new PolicyError(command, parameter, `${value.length} bytes is more than its TPM2B holds (${max})`);
  return value;
}

/** An optional TPM2B_NONCE (policyRef): absent means empty. */
function nonceArg(command: string, parameter: string, value: Uint8Array | undefined): Uint8Array {
  return value === undefined ? EMPTY : bytesArg(command, parameter, value, LIMITS.MAX_DIGEST);
}

function nameArg(command: string, parameter: string, value: unknown): Uint8Array {
  return bytesArg(command, parameter, value, SIZEOF_TPMU_NAME);
}

/** A digest that the TPM requires to be exactly the session hash's size (cpHashA, nameHash, templateHash). */
function exactDigestArg(command: string, parameter: string, hashAlg: number, value: unknown): Uint8Array {
  const v = bytesArg(command, parameter, value, LIMITS.MAX_DIGEST);
  const size = digestSize(hashAlg);
  if (v.length !== size) throw new PolicyError(command, parameter, `${v.length} bytes; the session hash needs ${size}`);
  return v;
}

function uintArg(command: string, parameter: string, value: unknown, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    throw new PolicyError(command, parameter, `${String(value)} is not an integer in 0..${max}`);
  }
  return value;
}

/** TPMI_YES_NO: a boolean, or 0/1 as the codec decodes it. */
function yesNoArg(command: string, parameter: string, value: unknown): boolean {
  if (value === true || value === 1) return true;
  if (value === false || value === 0) return false;
  throw new PolicyError(command, parameter, `${String(value)} is not YES or NO`);
}

/** The running policyDigest: exactly digestSize(hashAlg) bytes, as in a session. */
function policyDigestArg(command: string, hashAlg: number, digest: unknown): Uint8Array {
  const size = digestSize(hashAlg); // ArgumentError (crypto.argument) when hashAlg is not a hash
  if (!(digest instanceof Uint8Array)) throw new PolicyError(command, 'policyDigest', `expected a Uint8Array, got ${typeof digest}`);
  if (digest.length !== size) throw new PolicyError(command, 'policyDigest', `${digest.length} bytes; the session hash needs ${size}`);
  return digest;
}

/**
 * H(policyDigest ‖ commandCode ‖ parts…): the common shape of every policy
 * update (Part 3 §23.1). Exported for policy commands not covered here.
 * @throws PolicyError when `policyDigest` is not digestSize(hashAlg) bytes; ArgumentError for a non-hash `hashAlg`.
 */
export function extendPolicy(hashAlg: number, policyDigest: Uint8Array, commandCode: number, ...parts: Uint8Array[]): Uint8Array {
  policyDigestArg('extendPolicy', hashAlg, policyDigest);
  return hash(hashAlg, policyDigest, u32be(commandCode), ...parts);
}

/** The policyDigest of a fresh session: digestSize(hashAlg) zero bytes (StartAuthSession, Part 3 §11.1; PolicyRestart, §11.2). */
export function zeroPolicy(hashAlg: number): Uint8Array {
  return new Uint8Array(digestSize(hashAlg));
}

/**
 * PolicyContextUpdate (Part 3 §23.2.3, shared by PolicySigned, PolicySecret,
 * PolicyTicket and PolicyAuthorize): d = H(old ‖ CC ‖ name), then H(d ‖ policyRef).
 * The second hash is done even for an empty policyRef (tpm-spec-facts.md §5).
 */
function contextUpdate(hashAlg: number, policyDigest: Uint8Array, commandCode: number, name: Uint8Array, policyRef: Uint8Array): Uint8Array {
  const d1 = hash(hashAlg, policyDigest, u32be(commandCode), name);
  return hash(hashAlg, d1, policyRef);
}

// ---------------------------------------------------------------------------
// Argument shapes (Part 3 parameter names; Names of handles as `…Name`)

/** PolicySigned / PolicySecret: the Name of authObject / authHandle and the policyRef (empty by default). */
export interface PolicyAuthArgs {
  /** Name of the entity whose authorization is proven (a key's Name, or the 4-byte handle of a hierarchy). */
  readonly authName: Uint8Array;
  readonly policyRef?: Uint8Array;
}

/** PolicyTicket: the ticket's tag says which command it stands for. */
export interface PolicyTicketArgs extends PolicyAuthArgs {
  readonly ticket: { readonly tag: number };
}

export interface PolicyORArgs {
  /** The 2 to 8 branch digests, in the order the policy will list them. */
  readonly pHashList: readonly Uint8Array[];
}

export interface PolicyPCRArgs {
  /** The PCRs, in TPML_PCR_SELECTION order; their values are digested in this order, ascending index within a bank. */
  readonly pcrs: readonly TPMS_PCR_SELECTION[];
  /** H_sessionHash(selected PCR values); see {@link pcrDigest}. */
  readonly pcrDigest: Uint8Array;
}

export interface PolicyLocalityArgs {
  /** A TPMA_LOCALITY value, or its marshaled byte (1..31 localities 0–4 as bits, 32..255 an extended locality). */
  readonly locality: TPMA_LOCALITY | number;
}

export interface PolicyOperandArgs {
  readonly operandB: Uint8Array;
  readonly offset: number;
  /** A TPM_EO comparison. */
  readonly operation: number;
}

export interface PolicyNVArgs extends PolicyOperandArgs {
  /** The Name of the NV Index as it will be when the policy is used (TPMA_NV_WRITTEN changes it). */
  readonly nvIndexName: Uint8Array;
}

export interface PolicyCommandCodeArgs {
  readonly code: number;
}

export interface PolicyCpHashArgs {
  /** cpHash of the command the policy is limited to; see cpHash() in ./cphash.ts. */
  readonly cpHashA: Uint8Array;
}

export interface PolicyNameHashArgs {
  /** H(Name of handle 1 ‖ …); see {@link nameHash}. */
  readonly nameHash: Uint8Array;
}

export interface PolicyDuplicationSelectArgs {
  readonly objectName: Uint8Array;
  readonly newParentName: Uint8Array;
  /** Whether the policy names the object too, or only the new parent. */
  readonly includeObject: boolean | 0 | 1;
}

export interface PolicyAuthorizeArgs {
  /** Name of the key that signs approved policies. */
  readonly keySign: Uint8Array;
  readonly policyRef?: Uint8Array;
}

export interface PolicyNvWrittenArgs {
  readonly writtenSet: boolean | 0 | 1;
}

export interface PolicyTemplateArgs {
  /** H(marshaled TPMT_PUBLIC template); see {@link templateHash}. */
  readonly templateHash: Uint8Array;
}

export interface PolicyAuthorizeNVArgs {
  /** The Name of the NV Index that holds the approved policy (a TPMT_HA). */
  readonly nvIndexName: Uint8Array;
}

// ---------------------------------------------------------------------------
// Pure updates, one per Part 3 §23 command

/** PolicySigned (Part 3 §23.3): PolicyContextUpdate(CC_PolicySigned, Name(authObject), policyRef). */
export function updatePolicySigned(hashAlg: number, policyDigest: Uint8Array, args: PolicyAuthArgs): Uint8Array {
  const c = 'PolicySigned';
  policyDigestArg(c, hashAlg, policyDigest);
  return contextUpdate(hashAlg, policyDigest, TPM_CC.PolicySigned, nameArg(c, 'authName', args.authName), nonceArg(c, 'policyRef', args.policyRef));
}

/** PolicySecret (Part 3 §23.4): PolicyContextUpdate(CC_PolicySecret, Name(authHandle), policyRef). */
export function updatePolicySecret(hashAlg: number, policyDigest: Uint8Array, args: PolicyAuthArgs): Uint8Array {
  const c = 'PolicySecret';
  policyDigestArg(c, hashAlg, policyDigest);
  return contextUpdate(hashAlg, policyDigest, TPM_CC.PolicySecret, nameArg(c, 'authName', args.authName), nonceArg(c, 'policyRef', args.policyRef));
}

/**
 * PolicyTicket (Part 3 §23.5): the same update as the command the ticket came
 * from, PolicySigned for TPM_ST_AUTH_SIGNED and PolicySecret for TPM_ST_AUTH_SECRET.
 */
export function updatePolicyTicket(hashAlg: number, policyDigest: Uint8Array, args: PolicyTicketArgs): Uint8Array {
  const c = 'PolicyTicket';
  policyDigestArg(c, hashAlg, policyDigest);
  const tag = args.ticket?.tag;
  const code = tag === TPM_ST.AUTH_SIGNED ? TPM_CC.PolicySigned : tag === TPM_ST.AUTH_SECRET ? TPM_CC.PolicySecret : undefined;
  if (code === undefined) throw new PolicyError(c, 'ticket', `tag ${typeof tag === 'number' ? `0x${tag.toString(16)}` : String(tag)} is neither TPM_ST_AUTH_SIGNED nor TPM_ST_AUTH_SECRET`);
  return contextUpdate(hashAlg, policyDigest, code, nameArg(c, 'authName', args.authName), nonceArg(c, 'policyRef', args.policyRef));
}

/**
 * PolicyOR (Part 3 §23.6): H(zeros ‖ CC_PolicyOR ‖ digest_1 ‖ … ‖ digest_n), 2 ≤ n ≤ 8.
 * The old digest does not enter; a TPM in a real session first checks that it
 * is one of the branches (a trial session does not).
 */
export function updatePolicyOR(hashAlg: number, policyDigest: Uint8Array, args: PolicyORArgs): Uint8Array {
  const c = 'PolicyOR';
  policyDigestArg(c, hashAlg, policyDigest);
  const list: unknown = args.pHashList;
  if (!Array.isArray(list)) throw new PolicyError(c, 'pHashList', 'expected an array of digests');
  // TPML_DIGEST in PolicyOR holds at least two digests (Part 3 §23.6.1) and at most eight (Part 2 §10.9.2).
  if (list.length < 2 || list.length > LIMITS.MAX_DIGEST_LIST) {
    throw new PolicyError(c, 'pHashList', `${list.length} branch(es); PolicyOR takes 2 to ${LIMITS.MAX_DIGEST_LIST}`);
  }
  const branches = list.map((d: unknown, i: number) => bytesArg(c, `pHashList[${i}]`, d, LIMITS.MAX_DIGEST));
  return hash(hashAlg, zeroPolicy(hashAlg), u32be(TPM_CC.PolicyOR), ...branches);
}

/** The marshaled TPML_PCR_SELECTION, with codec errors reported as PolicyErrors of `command`. */
function marshalSelection(command: string, pcrs: readonly TPMS_PCR_SELECTION[]): Uint8Array {
  try {
    return encode(TPML_PCR_SELECTION, [...pcrs]);
  } catch (e) {
    if (e instanceof EncodeError) throw new PolicyError(command, 'pcrs', e.message, { cause: e });
    throw e;
  }
}

/**
 * PolicyPCR (Part 3 §23.7): H(old ‖ CC_PolicyPCR ‖ marshaled TPML_PCR_SELECTION ‖ pcrDigest).
 * A TPM computes pcrDigest from its current PCRs when the caller sends none;
 * here it must be given (see {@link pcrDigest}).
 */
export function updatePolicyPCR(hashAlg: number, policyDigest: Uint8Array, args: PolicyPCRArgs): Uint8Array {
  const c = 'PolicyPCR';
  policyDigestArg(c, hashAlg, policyDigest);
  if (!Array.isArray(args.pcrs)) throw new PolicyError(c, 'pcrs', 'expected an array of TPMS_PCR_SELECTION');
  const selection = marshalSelection(c, args.pcrs);
  const d = bytesArg(c, 'pcrDigest', args.pcrDigest, LIMITS.MAX_DIGEST);
  if (d.length === 0) throw new PolicyError(c, 'pcrDigest', 'empty: compute it from the PCR values with pcrDigest()');
  return hash(hashAlg, policyDigest, u32be(TPM_CC.PolicyPCR), selection, d);
}

function localityByte(command: string, locality: unknown): number {
  const b = typeof locality === 'number' ? uintArg(command, 'locality', locality, 0xff) : localityWord(command, locality);
  // A zero locality is TPM_RC_RANGE (Part 3 §23.8.1): it would allow no locality at all.
  if (b === 0) throw new PolicyError(command, 'locality', 'no locality selected');
  return b;
}
function localityWord(command: string, locality: unknown): number {
  try {
    return TPMA_LOCALITY.toWord(locality as TPMA_LOCALITY);
  } catch (e) {
    throw new PolicyError(command, 'locality', e instanceof Error ? e.message : String(e), { cause: e });
  }
}

/** PolicyLocality (Part 3 §23.8): H(old ‖ CC_PolicyLocality ‖ locality byte). */
export function updatePolicyLocality(hashAlg: number, policyDigest: Uint8Array, args: PolicyLocalityArgs): Uint8Array {
  const c = 'PolicyLocality';
  policyDigestArg(c, hashAlg, policyDigest);
  return hash(hashAlg, policyDigest, u32be(TPM_CC.PolicyLocality), u8(localityByte(c, args.locality)));
}

/** args = H(operandB ‖ offset u16 ‖ operation u16), shared by PolicyNV and PolicyCounterTimer. */
function operandArgs(command: string, hashAlg: number, args: PolicyOperandArgs): Uint8Array {
  const operandB = bytesArg(command, 'operandB', args.operandB, LIMITS.MAX_DIGEST);
  const offset = uintArg(command, 'offset', args.offset, 0xffff);
  const operation = uintArg(command, 'operation', args.operation, 0xffff);
  if (!EO_VALUES.has(operation)) throw new PolicyError(command, 'operation', `0x${operation.toString(16)} is not a TPM_EO`);
  return hash(hashAlg, operandB, u16be(offset), u16be(operation));
}

/** PolicyNV (Part 3 §23.9): H(old ‖ CC_PolicyNV ‖ H(operandB ‖ offset ‖ operation) ‖ Name(nvIndex)). */
export function updatePolicyNV(hashAlg: number, policyDigest: Uint8Array, args: PolicyNVArgs): Uint8Array {
  const c = 'PolicyNV';
  policyDigestArg(c, hashAlg, policyDigest);
  const argHash = operandArgs(c, hashAlg, args);
  return hash(hashAlg, policyDigest, u32be(TPM_CC.PolicyNV), argHash, nameArg(c, 'nvIndexName', args.nvIndexName));
}

/**
 * PolicyCounterTimer (Part 3 §23.10): H(old ‖ CC_PolicyCounterTimer ‖ H(operandB ‖ offset ‖ operation)).
 * The operand must lie inside the 25-byte TPMS_TIME_INFO; the TPM checks that even in a trial session.
 */
export function updatePolicyCounterTimer(hashAlg: number, policyDigest: Uint8Array, args: PolicyOperandArgs): Uint8Array {
  const c = 'PolicyCounterTimer';
  policyDigestArg(c, hashAlg, policyDigest);
  const argHash = operandArgs(c, hashAlg, args);
  if (args.offset > TIME_INFO_SIZE) throw new PolicyError(c, 'offset', `${args.offset} is past the ${TIME_INFO_SIZE}-byte TPMS_TIME_INFO`);
  if (args.offset + args.operandB.length > TIME_INFO_SIZE) {
    throw new PolicyError(c, 'operandB', `${args.operandB.length} bytes at offset ${args.offset} run past the ${TIME_INFO_SIZE}-byte TPMS_TIME_INFO`);
  }
  return hash(hashAlg, policyDigest, u32be(TPM_CC.PolicyCounterTimer), argHash);
}

/** PolicyCommandCode (Part 3 §23.11): H(old ‖ CC_PolicyCommandCode ‖ code). */
export function updatePolicyCommandCode(hashAlg: number, policyDigest: Uint8Array, args: PolicyCommandCodeArgs): Uint8Array {
  const c = 'PolicyCommandCode';
  policyDigestArg(c, hashAlg, policyDigest);
  return hash(hashAlg, policyDigest, u32be(TPM_CC.PolicyCommandCode), u32be(uintArg(c, 'code', args.code, 0xffffffff)));
}

/** PolicyPhysicalPresence (Part 3 §23.12): H(old ‖ CC_PolicyPhysicalPresence). */
export function updatePolicyPhysicalPresence(hashAlg: number, policyDigest: Uint8Array): Uint8Array {
  policyDigestArg('PolicyPhysicalPresence', hashAlg, policyDigest);
  return hash(hashAlg, policyDigest, u32be(TPM_CC.PolicyPhysicalPresence));
}

/** PolicyCpHash (Part 3 §23.13): H(old ‖ CC_PolicyCpHash ‖ cpHashA); cpHashA is digestSize(hashAlg) bytes. */
export function updatePolicyCpHash(hashAlg: number, policyDigest: Uint8Array, args: PolicyCpHashArgs): Uint8Array {
  const c = 'PolicyCpHash';
  policyDigestArg(c, hashAlg, policyDigest);
  return hash(hashAlg, policyDigest, u32be(TPM_CC.PolicyCpHash), exactDigestArg(c, 'cpHashA', hashAlg, args.cpHashA));
}

/** PolicyNameHash (Part 3 §23.14): H(old ‖ CC_PolicyNameHash ‖ nameHash); nameHash is digestSize(hashAlg) bytes. */
export function updatePolicyNameHash(hashAlg: number, policyDigest: Uint8Array, args: PolicyNameHashArgs): Uint8Array {
  const c = 'PolicyNameHash';
  policyDigestArg(c, hashAlg, policyDigest);
  return hash(hashAlg, policyDigest, u32be(TPM_CC.PolicyNameHash), exactDigestArg(c, 'nameHash', hashAlg, args.nameHash));
}

/**
 * PolicyDuplicationSelect (Part 3 §23.15):
 * H(old ‖ CC_PolicyDuplicationSelect ‖ [objectName] ‖ newParentName ‖ includeObject),
 * objectName only when includeObject is YES.
 */
export function updatePolicyDuplicationSelect(hashAlg: number, policyDigest: Uint8Array, args: PolicyDuplicationSelectArgs): Uint8Array {
  const c = 'PolicyDuplicationSelect';
  policyDigestArg(c, hashAlg, policyDigest);
  const objectName = nameArg(c, 'objectName', args.objectName);
  const newParentName = nameArg(c, 'newParentName', args.newParentName);
  const include = yesNoArg(c, 'includeObject', args.includeObject);
  return include
    ? hash(hashAlg, policyDigest, u32be(TPM_CC.PolicyDuplicationSelect), objectName, newParentName, u8(1))
    : hash(hashAlg, policyDigest, u32be(TPM_CC.PolicyDuplicationSelect), newParentName, u8(0));
}

/** keySign must be a Name with a hash algorithm the size matches (Part 3 §23.16.1: TPM_RC_SIZE / TPM_RC_HASH even in a trial session). */
function keySignArg(command: string, keySign: unknown): Uint8Array {
  const k = nameArg(command, 'keySign', keySign);
  if (k.length < 2) throw new PolicyError(command, 'keySign', 'a key Name starts with its nameAlg');
  const alg = (k[0]! << 8) | k[1]!;
  if (!isHashAlg(alg)) throw new PolicyError(command, 'keySign', `nameAlg 0x${alg.toString(16)} is not a hash algorithm`);
  if (k.length !== 2 + digestSize(alg)) throw new PolicyError(command, 'keySign', `${k.length} bytes do not match its nameAlg 0x${alg.toString(16)}`);
  return k;
}

/**
 * PolicyAuthorize (Part 3 §23.16): the digest is reset to zeros, then
 * PolicyContextUpdate(CC_PolicyAuthorize, keySign, policyRef). The approved
 * policy does not enter the digest: that is what lets the authority approve
 * new policies later. See {@link policyAuthorizeDigest} for what the authority signs.
 */
export function updatePolicyAuthorize(hashAlg: number, policyDigest: Uint8Array, args: PolicyAuthorizeArgs): Uint8Array {
  const c = 'PolicyAuthorize';
  policyDigestArg(c, hashAlg, policyDigest);
  return contextUpdate(hashAlg, zeroPolicy(hashAlg), TPM_CC.PolicyAuthorize, keySignArg(c, args.keySign), nonceArg(c, 'policyRef', args.policyRef));
}

/** PolicyAuthValue (Part 3 §23.17): H(old ‖ CC_PolicyAuthValue). */
export function updatePolicyAuthValue(hashAlg: number, policyDigest: Uint8Array): Uint8Array {
  policyDigestArg('PolicyAuthValue', hashAlg, policyDigest);
  return hash(hashAlg, policyDigest, u32be(TPM_CC.PolicyAuthValue));
}

/**
 * PolicyPassword (Part 3 §23.18): the same digest as PolicyAuthValue, with
 * CC_PolicyAuthValue, so that one policy admits either way of giving the authValue.
 */
export function updatePolicyPassword(hashAlg: number, policyDigest: Uint8Array): Uint8Array {
  policyDigestArg('PolicyPassword', hashAlg, policyDigest);
  return hash(hashAlg, policyDigest, u32be(TPM_CC.PolicyAuthValue));
}

/** PolicyNvWritten (Part 3 §23.20): H(old ‖ CC_PolicyNvWritten ‖ writtenSet byte). */
export function updatePolicyNvWritten(hashAlg: number, policyDigest: Uint8Array, args: PolicyNvWrittenArgs): Uint8Array {
  const c = 'PolicyNvWritten';
  policyDigestArg(c, hashAlg, policyDigest);
  return hash(hashAlg, policyDigest, u32be(TPM_CC.PolicyNvWritten), u8(yesNoArg(c, 'writtenSet', args.writtenSet) ? 1 : 0));
}

/** PolicyTemplate (Part 3 §23.21): H(old ‖ CC_PolicyTemplate ‖ templateHash); templateHash is digestSize(hashAlg) bytes. */
export function updatePolicyTemplate(hashAlg: number, policyDigest: Uint8Array, args: PolicyTemplateArgs): Uint8Array {
  const c = 'PolicyTemplate';
  policyDigestArg(c, hashAlg, policyDigest);
  return hash(hashAlg, policyDigest, u32be(TPM_CC.PolicyTemplate), exactDigestArg(c, 'templateHash', hashAlg, args.templateHash));
}

/**
 * PolicyAuthorizeNV (Part 3 §23.22): the digest is reset to zeros, then
 * H(zeros ‖ CC_PolicyAuthorizeNV ‖ Name(nvIndex)), with no policyRef step.
 */
export function updatePolicyAuthorizeNV(hashAlg: number, policyDigest: Uint8Array, args: PolicyAuthorizeNVArgs): Uint8Array {
  const c = 'PolicyAuthorizeNV';
  policyDigestArg(c, hashAlg, policyDigest);
  return hash(hashAlg, zeroPolicy(hashAlg), u32be(TPM_CC.PolicyAuthorizeNV), nameArg(c, 'nvIndexName', args.nvIndexName));
}

// ---------------------------------------------------------------------------
// Digests that go into policy arguments

/**
 * pcrDigest for PolicyPCR: H_hashAlg of the selected PCR values concatenated
 * in selection order, ascending index within each selection (Part 3 §23.7;
 * the reference's PCRComputeCurrentDigest). `banks` maps bank → PCR index →
 * value, as readPcrs() returns it.
 * @throws PolicyError when a selected PCR has no value in `banks`.
 */
export function pcrDigest(
  hashAlg: number,
  pcrs: readonly TPMS_PCR_SELECTION[],
  banks: ReadonlyMap<number, ReadonlyMap<number, Uint8Array>>,
): Uint8Array {
  digestSize(hashAlg);
  const values: Uint8Array[] = [];
  for (const sel of pcrs) {
    for (const i of pcrIndices(sel)) {
      const v = banks.get(sel.hash)?.get(i);
      if (!(v instanceof Uint8Array)) throw new PolicyError('PolicyPCR', 'pcrs', `no value for PCR ${i} of bank 0x${sel.hash.toString(16)}`);
      values.push(v);
    }
  }
  return hash(hashAlg, ...values);
}

/** nameHash for PolicyNameHash: H(Name(handle 1) ‖ … ‖ Name(handle n)) in the command's handle order (Part 3 §23.14). */
export function nameHash(hashAlg: number, names: readonly Uint8Array[]): Uint8Array {
  return hash(hashAlg, ...names.map((n, i) => nameArg('PolicyNameHash', `names[${i}]`, n)));
}

/**
 * templateHash for PolicyTemplate: H(marshaled TPMT_PUBLIC), the digest of the
 * inPublic parameter of Create, CreatePrimary or CreateLoaded without its size
 * (Part 3 §23.21; the reference's CompareTemplateHash).
 */
export function templateHash(hashAlg: number, template: TPMT_PUBLIC): Uint8Array {
  return hash(hashAlg, encode(TPMT_PUBLIC, template));
}

/**
 * aHash = H_keyNameAlg(approvedPolicy ‖ policyRef), what a policy authority
 * signs (Part 3 §23.16.1). The TPM recomputes it with the hash of keySign's
 * nameAlg when it checks the VerifySignature ticket, so `hashAlg` is the
 * signing key's nameAlg (and the signature scheme's hash must agree).
 */
export function policyAuthorizeDigest(hashAlg: number, approvedPolicy: Uint8Array, policyRef: Uint8Array = EMPTY): Uint8Array {
  const c = 'PolicyAuthorize';
  return hash(hashAlg, bytesArg(c, 'approvedPolicy', approvedPolicy, LIMITS.MAX_DIGEST), nonceArg(c, 'policyRef', policyRef));
}

/** The values a PolicySigned authorization covers (Part 3 §23.3.1). */
export interface PolicySignedAuthArgs {
  /** The session's nonceTPM, or empty for an authorization not bound to one session. */
  readonly nonceTPM?: Uint8Array;
  /** INT32 seconds; negative asks for a ticket. */
  readonly expiration?: number;
  readonly cpHashA?: Uint8Array;
  readonly policyRef?: Uint8Array;
}

/**
 * aHash = H_sigHash(nonceTPM ‖ expiration INT32 ‖ cpHashA ‖ policyRef), the
 * digest the holder of a key signs for PolicySigned (Part 3 §23.3.1). The
 * hash is the signature scheme's.
 */
export function policySignedDigest(hashAlg: number, args: PolicySignedAuthArgs = {}): Uint8Array {
  const c = 'PolicySigned';
  const expiration = args.expiration ?? 0;
  if (!Number.isInteger(expiration) || expiration < -0x80000000 || expiration > 0x7fffffff) {
    throw new PolicyError(c, 'expiration', `${String(expiration)} is not an INT32`);
  }
  return hash(
    hashAlg,
    nonceArg(c, 'nonceTPM', args.nonceTPM),
    u32be(expiration >>> 0),
    args.cpHashA === undefined ? EMPTY : bytesArg(c, 'cpHashA', args.cpHashA, LIMITS.MAX_DIGEST),
    nonceArg(c, 'policyRef', args.policyRef),
  );
}

// ---------------------------------------------------------------------------
// The builder

/** A Name as a TPM forms one: empty (nameAlg NULL), a 4-byte handle, or nameAlg ‖ digest. */
function checkNameShape(command: string, parameter: string, name: Uint8Array): void {
  nameArg(command, parameter, name);
  if (name.length === 0 || name.length === 4) return;
  const alg = name.length >= 2 ? (name[0]! << 8) | name[1]! : -1;
  if (!isHashAlg(alg) || name.length !== 2 + digestSize(alg)) {
    throw new PolicyError(command, parameter, `${name.length} bytes is not a Name (a 4-byte handle, or nameAlg ‖ digest)`);
  }
}

export type PolicyPCRBuilderArgs =
  | PolicyPCRArgs
  | {
      readonly pcrs: readonly TPMS_PCR_SELECTION[];
      /** PCR values by bank and index (as readPcrs() returns them); pcrDigest is computed from them. */
      readonly values: ReadonlyMap<number, ReadonlyMap<number, Uint8Array>>;
    };

/**
 * Builds a policy digest command by command, in the spirit of go-tpm's
 * PolicyCalculator: `new PolicyCalculator(TPM_ALG.SHA256).policySecret({ authName }).digest`.
 * Each method applies the pure update of the same name and returns `this`;
 * a refused argument throws a PolicyError and leaves the digest unchanged.
 */
export class PolicyCalculator {
  /** The session hash algorithm (authHash of StartAuthSession). */
  readonly hashAlg: number;
  #digest: Uint8Array;

  /**
   * @param hashAlg the policy session's hash algorithm.
   * @param initial a digest to continue from (default: zeros, as a fresh session).
   */
  constructor(hashAlg: number, initial?: Uint8Array) {
    const size = digestSize(hashAlg);
    if (initial !== undefined && (!(initial instanceof Uint8Array) || initial.length !== size)) {
      throw new PolicyError('PolicyCalculator', 'policyDigest', `an initial digest must be ${size} bytes`);
    }
    this.hashAlg = hashAlg;
    this.#digest = initial === undefined ? new Uint8Array(size) : initial.slice();
  }

  /** The current policy digest (a copy). */
  get digest(): Uint8Array {
    return this.#digest.slice();
  }

  /** The digest as a TPMT_HA, the form PolicyAuthorizeNV reads from an NV Index. */
  toHa(): TPMT_HA {
    return { hashAlg: this.hashAlg as TPMT_HA['hashAlg'], digest: this.#digest.slice() } as TPMT_HA;
  }

  /** An independent copy, e.g. to build PolicyOR branches from a common prefix. */
  clone(): PolicyCalculator {
    return new PolicyCalculator(this.hashAlg, this.#digest);
  }

  /** Back to zeros (PolicyRestart, Part 3 §11.2). */
  reset(): this {
    this.#digest = zeroPolicy(this.hashAlg);
    return this;
  }

  #apply(next: Uint8Array): this {
    this.#digest = next;
    return this;
  }

  policySigned(args: PolicyAuthArgs): this {
    checkNameShape('PolicySigned', 'authName', args.authName);
    return this.#apply(updatePolicySigned(this.hashAlg, this.#digest, args));
  }

  policySecret(args: PolicyAuthArgs): this {
    checkNameShape('PolicySecret', 'authName', args.authName);
    return this.#apply(updatePolicySecret(this.hashAlg, this.#digest, args));
  }

  policyTicket(args: PolicyTicketArgs): this {
    checkNameShape('PolicyTicket', 'authName', args.authName);
    return this.#apply(updatePolicyTicket(this.hashAlg, this.#digest, args));
  }

  /** Branches may be digests or calculators of the same hash algorithm; each must be a full digest. */
  policyOR(args: { readonly pHashList: readonly (Uint8Array | PolicyCalculator)[] }): this {
    const size = digestSize(this.hashAlg);
    const list: unknown = args.pHashList;
    if (!Array.isArray(list)) throw new PolicyError('PolicyOR', 'pHashList', 'expected an array of digests');
    const pHashList = list.map((b: unknown, i: number) => {
      if (b instanceof PolicyCalculator) {
        if (b.hashAlg !== this.hashAlg) throw new PolicyError('PolicyOR', `pHashList[${i}]`, 'a branch computed with another hash algorithm');
        return b.digest;
      }
      // A session digest always has the session hash's size, so a shorter or longer branch can never be taken.
      if (b instanceof Uint8Array && b.length !== size) {
        throw new PolicyError('PolicyOR', `pHashList[${i}]`, `${b.length} bytes; the session hash needs ${size}`);
      }
      return b as Uint8Array;
    });
    return this.#apply(updatePolicyOR(this.hashAlg, this.#digest, { pHashList }));
  }

  /** PCRs with either the pcrDigest or the PCR values it is computed from. */
  policyPCR(args: PolicyPCRBuilderArgs): this {
    const d = 'values' in args ? pcrDigest(this.hashAlg, args.pcrs, args.values) : args.pcrDigest;
    const size = digestSize(this.hashAlg);
    if (d instanceof Uint8Array && d.length !== size) {
      throw new PolicyError('PolicyPCR', 'pcrDigest', `${d.length} bytes; a real session computes ${size}`);
    }
    return this.#apply(updatePolicyPCR(this.hashAlg, this.#digest, { pcrs: args.pcrs, pcrDigest: d }));
  }

  policyLocality(args: PolicyLocalityArgs): this {
    return this.#apply(updatePolicyLocality(this.hashAlg, this.#digest, args));
  }

  policyNV(args: PolicyNVArgs): this {
    checkNameShape('PolicyNV', 'nvIndexName', args.nvIndexName);
    return this.#apply(updatePolicyNV(this.hashAlg, this.#digest, args));
  }

  policyCounterTimer(args: PolicyOperandArgs): this {
    return this.#apply(updatePolicyCounterTimer(this.hashAlg, this.#digest, args));
  }

  policyCommandCode(args: PolicyCommandCodeArgs): this {
    return this.#apply(updatePolicyCommandCode(this.hashAlg, this.#digest, args));
  }

  policyPhysicalPresence(): this {
    return this.#apply(updatePolicyPhysicalPresence(this.hashAlg, this.#digest));
  }

  policyCpHash(args: PolicyCpHashArgs): this {
    return this.#apply(updatePolicyCpHash(this.hashAlg, this.#digest, args));
  }

  policyNameHash(args: PolicyNameHashArgs): this {
    return this.#apply(updatePolicyNameHash(this.hashAlg, this.#digest, args));
  }

  policyDuplicationSelect(args: PolicyDuplicationSelectArgs): this {
    checkNameShape('PolicyDuplicationSelect', 'objectName', args.objectName);
    checkNameShape('PolicyDuplicationSelect', 'newParentName', args.newParentName);
    return this.#apply(updatePolicyDuplicationSelect(this.hashAlg, this.#digest, args));
  }

  policyAuthorize(args: PolicyAuthorizeArgs): this {
    return this.#apply(updatePolicyAuthorize(this.hashAlg, this.#digest, args));
  }

  policyAuthValue(): this {
    return this.#apply(updatePolicyAuthValue(this.hashAlg, this.#digest));
  }

  policyPassword(): this {
    return this.#apply(updatePolicyPassword(this.hashAlg, this.#digest));
  }

  policyNvWritten(args: PolicyNvWrittenArgs): this {
    return this.#apply(updatePolicyNvWritten(this.hashAlg, this.#digest, args));
  }

  policyTemplate(args: PolicyTemplateArgs): this {
    return this.#apply(updatePolicyTemplate(this.hashAlg, this.#digest, args));
  }

  policyAuthorizeNV(args: PolicyAuthorizeNVArgs): this {
    checkNameShape('PolicyAuthorizeNV', 'nvIndexName', args.nvIndexName);
    return this.#apply(updatePolicyAuthorizeNV(this.hashAlg, this.#digest, args));
  }
}

// ---------------------------------------------------------------------------
// EK Credential Profile policies (TCG EK Credential Profile for TPM Family 2.0,
// Level 0, v2.5 and later, "Computing PolicyA/PolicyB/PolicyC" and the Policy
// Index handles I-1..I-4)

/** The Policy NV Index the profile assigns to each policy hash (I-1 … I-4). */
export const EK_POLICY_INDEX = {
  [TPM_ALG.SHA256]: 0x01c07f01,
  [TPM_ALG.SHA384]: 0x01c07f02,
  [TPM_ALG.SHA512]: 0x01c07f03,
  [TPM_ALG.SM3_256]: 0x01c07f04,
} as const;

function ekPolicyIndexHandle(hashAlg: number): number {
  const handle = (EK_POLICY_INDEX as Readonly<Record<number, number>>)[hashAlg];
  if (handle === undefined) throw new PolicyError('PolicyAuthorizeNV', 'nvIndex', `the EK Credential Profile has no Policy Index for hash 0x${hashAlg.toString(16)}`);
  return handle;
}

/**
 * PolicyA = PolicySecret(TPM_RH_ENDORSEMENT) with an empty policyRef: the
 * authPolicy of the low-range EK templates (SHA-256: 837197…69aa). Satisfied
 * by proving knowledge of the endorsement hierarchy's authorization.
 */
export function ekPolicyA(hashAlg: number = TPM_ALG.SHA256): Uint8Array {
  return updatePolicySecret(hashAlg, zeroPolicy(hashAlg), { authName: u32be(TPM_RH.ENDORSEMENT) });
}

/**
 * The public area of the profile's Policy Index for `hashAlg` as it is once
 * written: policyWrite | writeAll | ppRead | ownerRead | authRead | policyRead |
 * noDA | written, authPolicy = PolicyA, dataSize = a marshaled TPMT_HA.
 */
export function ekPolicyIndexPublic(hashAlg: number): TPMS_NV_PUBLIC {
  const nvIndex = ekPolicyIndexHandle(hashAlg);
  return {
    nvIndex,
    nameAlg: hashAlg as TPMS_NV_PUBLIC['nameAlg'],
    attributes: TPMA_NV.of({
      POLICYWRITE: true,
      WRITEALL: true,
      PPREAD: true,
      OWNERREAD: true,
      AUTHREAD: true,
      POLICYREAD: true,
      NO_DA: true,
      WRITTEN: true,
    }),
    authPolicy: ekPolicyA(hashAlg),
    dataSize: 2 + digestSize(hashAlg),
  };
}

/**
 * PolicyC = PolicyAuthorizeNV(Policy Index for `hashAlg`): lets the TPM owner
 * approve another policy for the EK by writing it (a TPMT_HA) to the index.
 */
export function ekPolicyC(hashAlg: number = TPM_ALG.SHA256): Uint8Array {
  return updatePolicyAuthorizeNV(hashAlg, zeroPolicy(hashAlg), { nvIndexName: nvName(ekPolicyIndexPublic(hashAlg)) });
}

/**
 * PolicyB = PolicyOR(PolicyA, PolicyC): the authPolicy of the high-range EK
 * templates (H-1 … H-7; SHA-256: ca3d0a…b7a0). Satisfied by PolicySecret(endorsement)
 * or PolicyAuthorizeNV, each followed by PolicyOR over {PolicyA, PolicyC}.
 */
export function ekPolicyB(hashAlg: number = TPM_ALG.SHA256): Uint8Array {
  return updatePolicyOR(hashAlg, zeroPolicy(hashAlg), { pHashList: [ekPolicyA(hashAlg), ekPolicyC(hashAlg)] });
}
