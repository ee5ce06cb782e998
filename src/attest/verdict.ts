/**
 * Verdicts: what every verification in src/attest returns. A verdict is a
 * list of checks, each with a stable check id, an outcome and a stable
 * reason code that tests, the service and the CLI switch on, plus a short
 * human detail. Nothing here throws on evidence that reads but is wrong:
 * rejections are data.
 */

/**
 * pass: the check held. warn: it did not fully hold but policy tolerates it
 * (a power cut, an advisory expiry). fail: the evidence is rejected.
 * not-performed: the check could not be made with what was given (a PEM AK
 * carries no attributes) — never to be read as a pass.
 */
export type Outcome = 'pass' | 'warn' | 'fail' | 'not-performed';

export interface Check {
  /** What was checked, stable and dotted: `quote.signature`, `quote.nonce`, `ak.attributes`, `eventlog.replay`. */
  readonly check: string;
  readonly outcome: Outcome;
  /** Why, stable and dotted: `signature.valid`, `nonce.mismatch`, `pcr.outside-selection`, `clock.backwards`. */
  readonly reason: string;
  /** One line for people. */
  readonly detail: string;
}

export interface Verdict {
  /** True when no check failed (warnings and checks not performed do not reject). */
  readonly accepted: boolean;
  readonly checks: readonly Check[];
}

export function check(check: string, outcome: Outcome, reason: string, detail: string): Check {
  return { check, outcome, reason, detail };
}

export const pass = (name: string, reason: string, detail: string): Check => check(name, 'pass', reason, detail);
export const warn = (name: string, reason: string, detail: string): Check => check(name, 'warn', reason, detail);
export const fail = (name: string, reason: string, detail: string): Check => check(name, 'fail', reason, detail);
export const notPerformed = (name: string, reason: string, detail: string): Check => check(name, 'not-performed', reason, detail);

/** A verdict from its checks: accepted iff none failed. */
export function verdict(checks: readonly Check[]): Verdict {
  return { accepted: checks.every((c) => c.outcome !== 'fail'), checks: [...checks] };
}

/** Joins verdicts of parts of one piece of evidence (quote, event log, IMA list, EK chain). */
export function combine(...parts: readonly Verdict[]): Verdict {
  return verdict(parts.flatMap((p) => p.checks));
}

/** The failed checks' reasons, for tests and logs. */
export function failures(v: Verdict): string[] {
  return v.checks.filter((c) => c.outcome === 'fail').map((c) => `${c.check}:${c.reason}`);
}
