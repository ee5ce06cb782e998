/**
 * What a policy session must satisfy when it authorizes a command
 * (Part 1 §19.7, Part 3 §5.4; the reference's CheckPolicyAuthSession):
 * its policyDigest equals the entity's authPolicy, and every assertion the
 * policy commands recorded (sessions.ts PolicyAssertions) holds for this use.
 */
import type { TpmEngine } from './engine.js';
import type { SessionState } from './sessions.js';

/** The command a policy session is asked to authorize, as the engine sees it. */
export interface PolicyUse {
  readonly commandCode: number;
  /** Locality of the command (0–4). */
  readonly locality: number;
  /** The entity's authPolicy (object, NV index or hierarchy). */
  readonly authPolicy: Uint8Array;
  /** Names of all the command's handles, in order (PolicyNameHash). */
  readonly handleNames: readonly Uint8Array[];
  /** cpHash of the command under `hashAlg` (PolicyCpHash). */
  cpHash(hashAlg: number): Uint8Array;
}

/**
 * 0 when `session` (a policy session) authorizes `use`, otherwise the base
 * response code (TPM_RC_POLICY_FAIL, TPM_RC_PCR_CHANGED, TPM_RC_EXPIRED,
 * TPM_RC_POLICY_CC, TPM_RC_LOCALITY, …); the engine adds the session index.
 */
export function checkPolicySession(_engine: TpmEngine, session: SessionState, use: PolicyUse): number {
  // Placeholder until the policy commands land: only the digest comparison.
  const a = session.policyDigest;
  const b = use.authPolicy;
  return a.length === b.length && a.every((x, i) => x === b[i]) ? 0 : 0x099; // TPM_RC_POLICY_FAIL
}
