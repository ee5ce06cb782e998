/**
 * What a policy session must satisfy when it authorizes a command
 * (Part 1 §19.7, Part 3 §5.4; the reference's CheckPolicyAuthSession):
 * its policyDigest equals the entity's authPolicy, and every assertion the
 * policy commands recorded (sessions.ts PolicyAssertions) holds for this use.
 */
import { equalBytes } from '../tpm/bytes.js';
import { TPM_ALG, TPM_CC, TPM_HT, TPM_RH } from '../tpm/constants.js';
import { hash } from '../tpm/crypto/hash.js';
import { nameHash } from '../tpm/policy.js';
import { TPM_RC } from '../tpm/rc.js';
import { TPMA_NV } from '../tpm/types/index.js';
import type { TpmEngine } from './engine.js';
import { findObject } from './handlers/object.js';
import type { SessionState } from './sessions.js';
import { pcrAuthPolicyOf } from './state.js';

/** The command a policy session is asked to authorize, as the engine sees it. */
export interface PolicyUse {
  readonly commandCode: number;
  /** Locality of the command (0–4). */
  readonly locality: number;
  /** The entity's authPolicy (object, NV index or hierarchy). */
  readonly authPolicy: Uint8Array;
  /** The role the session authorizes in (Part 1 §19.7.3); ADMIN and DUP need PolicyCommandCode. Default USER. */
  readonly role?: 'USER' | 'ADMIN' | 'DUP';
  /**
   * The handle the session authorizes. With it, the entity's policy hash
   * (its nameAlg, a hierarchy's policyAlg) must be the session's hash
   * (Part 1 §19.7.1), and PolicyNvWritten checks an NV index's
   * TPMA_NV_WRITTEN; without it, neither can be satisfied or checked.
   */
  readonly entityHandle?: number;
  /**
   * The command's parameter area as received, for PolicyTemplate: the
   * inPublic of Create, CreatePrimary and CreateLoaded (the reference's
   * CompareTemplateHash). Without it a PolicyTemplate session fails.
   */
  readonly parameters?: Uint8Array;
  /** Names of all the command's handles, in order (PolicyNameHash). */
  readonly handleNames: readonly Uint8Array[];
  /** cpHash of the command under `hashAlg` (PolicyCpHash). */
  cpHash(hashAlg: number): Uint8Array;
  /** Whether physical presence is asserted (PolicyPhysicalPresence); default false. */
  readonly physicalPresence?: boolean;
}

/**
 * 0 when `session` (a policy session) authorizes `use`, otherwise the base
 * response code, in the reference's order: TPM_RC_MODE (PolicySecret
 * authorized by a policy without PolicyAuthValue/PolicyPassword),
 * TPM_RC_PCR_CHANGED, TPM_RC_POLICY_FAIL (digest or its hash), TPM_RC_EXPIRED,
 * TPM_RC_POLICY_CC (or TPM_RC_POLICY_FAIL for an ADMIN/DUP use without a
 * command code), TPM_RC_LOCALITY, TPM_RC_PP, TPM_RC_POLICY_FAIL (cpHash,
 * nameHash, templateHash, NV written state). The engine adds the session index.
 */
export function checkPolicySession(engine: TpmEngine, session: SessionState, use: PolicyUse): number {
  const a = session.policy;
  // Part 3 §23.4: a policy that authorizes PolicySecret must prove the authValue itself, or the secret would prove nothing.
  if (use.commandCode === TPM_CC.PolicySecret && !a.isPasswordNeeded && !a.isAuthValueNeeded) return TPM_RC.MODE;
  // Part 3 §23.7: PolicyPCR holds only while no PCR has changed since.
  if (a.pcrUpdateCounter !== undefined && a.pcrUpdateCounter !== engine.volatile.pcrUpdateCounter) return TPM_RC.PCR_CHANGED;
  if (!equalBytes(session.policyDigest, use.authPolicy)) return TPM_RC.POLICY_FAIL;
  const entity = use.entityHandle === undefined ? undefined : entityFacts(engine, use.entityHandle);
  // A digest computed with another hash never satisfies the policy, even with the same bytes.
  if (entity?.policyAlg !== undefined && entity.policyAlg !== session.authHash) return TPM_RC.POLICY_FAIL;
  // PolicySigned/PolicySecret/PolicyTicket with an expiration (Part 3 §23.3.1).
  if (a.timeout !== undefined && a.timeout < engine.time()) return TPM_RC.EXPIRED;
  if (a.commandCode !== undefined) {
    if (a.commandCode !== use.commandCode) return TPM_RC.POLICY_CC;
  } else if (use.role === 'ADMIN' || use.role === 'DUP') {
    // Part 1 §19.7.3: an ADMIN or DUP role needs a policy that names the command.
    return TPM_RC.POLICY_FAIL;
  }
  if (a.commandLocality !== undefined && a.commandLocality !== 0) {
    const allowed = a.commandLocality;
    if (use.locality < 5) {
      if (allowed > 31 || (allowed & (1 << use.locality)) === 0) return TPM_RC.LOCALITY;
    } else if (use.locality > 31) {
      if (allowed !== use.locality) return TPM_RC.LOCALITY;
    } else {
      return TPM_RC.LOCALITY;
    }
  }
  if (a.isPPRequired && use.physicalPresence !== true) return TPM_RC.PP;
  // At most one of cpHash, nameHash, templateHash is set (they share one slot in the reference).
  if (a.cpHash !== undefined) {
    if (!equalBytes(a.cpHash, use.cpHash(session.authHash))) return TPM_RC.POLICY_FAIL;
  } else if (a.nameHash !== undefined) {
    if (!equalBytes(a.nameHash, nameHash(session.authHash, use.handleNames))) return TPM_RC.POLICY_FAIL;
  } else if (a.templateHash !== undefined) {
    const t = use.parameters === undefined ? undefined : templateHashOf(use.commandCode, use.parameters, session.authHash);
    if (t === undefined || !equalBytes(a.templateHash, t)) return TPM_RC.POLICY_FAIL;
  }
  if (a.nvWrittenState !== undefined) {
    // PolicyNvWritten makes sense only for an NV index.
    if (entity?.nvWritten === undefined || entity.nvWritten !== a.nvWrittenState) return TPM_RC.POLICY_FAIL;
  }
  return 0;
}

/** What the policy check needs to know about the authorized entity. */
interface EntityFacts {
  /** The hash of its authPolicy; undefined when it has none to compare (PCRs outside a policy group, TPM_RH_NULL). */
  readonly policyAlg: number | undefined;
  /** An NV index's TPMA_NV_WRITTEN; undefined for other entities. */
  readonly nvWritten: boolean | undefined;
}

function entityFacts(engine: TpmEngine, h: number): EntityFacts {
  const type = h >>> 24;
  if (type === TPM_HT.NV_INDEX) {
    const nv = engine.state.nvIndices.find((n) => n.nvIndex === h);
    return { policyAlg: nv?.nameAlg, nvWritten: nv === undefined ? undefined : TPMA_NV.fromWord(nv.attributes).WRITTEN };
  }
  if (type === TPM_HT.TRANSIENT || type === TPM_HT.PERSISTENT) return { policyAlg: findObject(engine, h)?.publicArea.nameAlg, nvWritten: undefined };
  if (type === TPM_HT.PCR) {
    // A PCR's policy hash is its group's (TPM_ALG_NULL until PCR_SetAuthPolicy: then no session matches).
    return { policyAlg: pcrAuthPolicyOf(engine.state, h)?.hashAlg, nvWritten: undefined };
  }
  const a = engine.state.auths;
  const auth = h === TPM_RH.OWNER ? a.owner : h === TPM_RH.ENDORSEMENT ? a.endorsement : h === TPM_RH.PLATFORM ? a.platform : h === TPM_RH.LOCKOUT ? a.lockout : undefined;
  return { policyAlg: auth === undefined || auth.policyAlg === TPM_ALG.NULL ? undefined : auth.policyAlg, nvWritten: undefined };
}

/**
 * H_hashAlg of the template a creation command carries (the reference's
 * CompareTemplateHash): its parameters start with inSensitive (a TPM2B) and
 * then inPublic (a TPM2B), whose contents are hashed without the size.
 * undefined for other commands or a parameter area too short to hold them.
 */
export function templateHashOf(commandCode: number, parameters: Uint8Array, hashAlg: number): Uint8Array | undefined {
  if (commandCode !== TPM_CC.Create && commandCode !== TPM_CC.CreatePrimary && commandCode !== TPM_CC.CreateLoaded) return undefined;
  if (parameters.length < 2) return undefined;
  const at = 2 + ((parameters[0]! << 8) | parameters[1]!);
  if (parameters.length < at + 2) return undefined;
  const size = (parameters[at]! << 8) | parameters[at + 1]!;
  if (parameters.length < at + 2 + size) return undefined;
  return hash(hashAlg, parameters.subarray(at + 2, at + 2 + size));
}
