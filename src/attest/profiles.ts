/**
 * Built-in attestation policies. Neither knows a device's golden values: a
 * deployment starts from one and adds its PCR values, boot chain and
 * allowlists with `withProfile`.
 *
 * - production: the identity must be established — a verified EK chain or a
 *   pre-registered EK (issue 5 point 6; classify.ts's PRODUCTION_PROFILE) —
 *   and the TPM must not be a software TPM (unknown types pass, as in
 *   classify.ts, because many real vendors' IDs do not settle the form);
 *   Secure Boot must be on, from digest-verified data in a quoted PCR 7;
 *   SHA-1 banks do not count; a clock with safe = 0 (a power cut) warns, so
 *   honest devices are not quarantined (verifier-pitfalls.md); any evidence
 *   a rule needs and that is missing fails.
 * - test: the same checks, but any TPM type, software TPMs (swtpm, trustroot's
 *   own) included, at any assurance; evidence that is not given is reported
 *   as not performed instead of failing, so partial evidence can be tried.
 */
import { EvidenceError } from '../tpm/errors.js';
import { parsePolicy, readPolicyText, type Policy, type PolicyDocument } from './policy.js';

export type PolicyProfileName = 'production' | 'test';

export const PRODUCTION_POLICY_DOCUMENT: PolicyDocument = {
  version: 1,
  name: 'production',
  description: 'Verified or pre-registered EK, no software TPM, Secure Boot on, SHA-1 refused, safe = 0 warns, missing evidence fails.',
  missing: 'fail',
  sha1: false,
  clock: { unsafe: 'warn' },
  eventLog: { secureBoot: 'enabled' },
  tpm: { minimumType: 'virtual', allowUnknownType: true, ekChain: 'pre-registered' },
};

export const TEST_POLICY_DOCUMENT: PolicyDocument = {
  version: 1,
  name: 'test',
  description: 'As production, but any TPM type (software TPMs included) at any assurance, and missing evidence is not performed.',
  missing: 'not-performed',
  sha1: false,
  clock: { unsafe: 'warn' },
  eventLog: { secureBoot: 'enabled' },
  tpm: { minimumType: 'software', allowUnknownType: true, ekChain: 'none' },
};

export const POLICY_PROFILES: Readonly<Record<PolicyProfileName, PolicyDocument>> = {
  production: PRODUCTION_POLICY_DOCUMENT,
  test: TEST_POLICY_DOCUMENT,
};

const parsed = new Map<PolicyProfileName, Policy>();

function documentOf(name: PolicyProfileName): PolicyDocument {
  if (name !== 'production' && name !== 'test') throw new EvidenceError('evidence.argument', `unknown policy profile ${JSON.stringify(String(name)).slice(0, 60)}`);
  return POLICY_PROFILES[name];
}

/** A built-in profile as a validated policy. */
export function policyProfile(name: PolicyProfileName): Policy {
  let p = parsed.get(name);
  if (p === undefined) parsed.set(name, (p = parsePolicy(documentOf(name))));
  return p;
}

function isPlainObject(v: unknown): v is Readonly<Record<string, unknown>> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** `over` laid on `base`: objects present in both are merged, anything else in `over` replaces. Depth is the profile's. */
function merge(base: Readonly<Record<string, unknown>>, over: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const keys = new Set([...Object.keys(base), ...Object.keys(over)]);
  return Object.fromEntries(
    [...keys].map((k) => {
      const b = Object.hasOwn(base, k) ? base[k] : undefined;
      const o = Object.hasOwn(over, k) ? over[k] : undefined;
      if (o === undefined) return [k, b];
      return [k, isPlainObject(b) && isPlainObject(o) ? merge(b, o) : o];
    }),
  );
}

/**
 * A profile with a deployment's rules added: sections present in both are
 * merged (e.g. `eventLog.bootChain` joins `eventLog.secureBoot`), other
 * values replace the profile's (e.g. `missing`). The result is validated as a
 * whole, so errors name the same JSON paths as in `additions`.
 *
 * @param additions a policy fragment (JSON text or value); `version` may be left out.
 * @throws PolicyError (`evidence.policy`) when the merged document does not validate.
 * @example withProfile('production', { pcrs: { sha256: { '0': goldenPcr0 } }, eventLog: { bootChain: { sha256: [shim, grub, kernel] } } })
 */
export function withProfile(name: PolicyProfileName, additions: unknown): Policy {
  const base = documentOf(name) as unknown as Readonly<Record<string, unknown>>;
  const over = typeof additions === 'string' || additions instanceof Uint8Array ? readPolicyText(additions) : additions;
  return parsePolicy(isPlainObject(over) ? merge(base, over) : over);
}
