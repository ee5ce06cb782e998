/**
 * What a policy session must satisfy when it authorizes a command
 * (Part 1 §19.7, Part 3 §5.4; the reference's CheckPolicyAuthSession):
 * its policyDigest equals the entity's authPolicy, and every assertion the
 * policy commands recorded (sessions.ts PolicyAssertions) holds for this use.
 */
import { equalBytes } from '../tpm/bytes.js';
import { TPM_CC } from '../tpm/constants.js';
import { nameHash } from '../tpm/policy.js';
import { TPM_RC } from '../tpm/rc.js';
import type { TpmEngine } from './engine.js';
import type { SessionState } from './sessions.js';

/** The command a policy session is asked to authorize, as the engine sees it. */
export interface PolicyUse {
  readonly commandCode: number;
  /** Locality of the command (0–4). */
  readonly locality: number;
  /** The entity's authPolicy (object, NV index or hierarchy). */
  readonly authPolicy: Uint8Array;
  /**
   * The hash of authPolicy: the object's or index's nameAlg, a hierarchy's
   * policy hash. A policy computed with another hash never matches, even
   * with equal bytes (Part 1 §19.7.1). Not compared when omitted.
   */
  readonly authPolicyAlg?: number;
  /** The role the session authorizes in (Part 1 §19.7.3); ADMIN and DUP need PolicyCommandCode. Default USER. */
  readonly role?: 'USER' | 'ADMIN' | 'DUP';
  /** Names of all the command's handles, in order (PolicyNameHash). */
  readonly handleNames: readonly Uint8Array[];
  /** cpHash of the command under `hashAlg` (PolicyCpHash). */
  cpHash(hashAlg: number): Uint8Array;
  /**
   * H_hashAlg of the creation command's marshaled template (inPublic without
   * its size; Create, CreatePrimary, CreateLoaded), for PolicyTemplate;
   * undefined for other commands (the policy then fails).
   */
  templateHash?(hashAlg: number): Uint8Array | undefined;
  /** When the entity is an NV index: its TPMA_NV_WRITTEN (PolicyNvWritten). Undefined for other entities. */
  readonly nvWritten?: boolean;
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
  if (use.authPolicyAlg !== undefined && use.authPolicyAlg !== session.authHash) return TPM_RC.POLICY_FAIL;
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
    const t = use.templateHash?.(session.authHash);
    if (t === undefined || !equalBytes(a.templateHash, t)) return TPM_RC.POLICY_FAIL;
  }
  if (a.nvWrittenState !== undefined) {
    // PolicyNvWritten makes sense only for an NV index.
    if (use.nvWritten === undefined || use.nvWritten !== a.nvWrittenState) return TPM_RC.POLICY_FAIL;
  }
  return 0;
}
