/**
 * trustroot/attest — the verifier's brain: pure functions over TPM evidence
 * (quotes, attestation structures, AKs, EK certificates, event logs, IMA
 * lists, policies), each returning a Verdict of checks with stable reasons.
 */
export { check, combine, fail, failures, notPerformed, pass, verdict, warn, type Check, type Outcome, type Verdict } from './verdict.js';
