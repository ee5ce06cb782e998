/**
 * clockInfo rules: what the TPM's clock and counters in a signed attestation
 * say about the device since its last accepted one.
 *
 * TPMS_CLOCK_INFO (Part 2 §10.11.1): `clock` counts milliseconds the TPM has
 * been powered, kept in NV; `resetCount` goes up on every TPM Reset
 * (Startup(CLEAR) after Shutdown(CLEAR) or after a power loss);
 * `restartCount` goes up on TPM Restart/Resume (Startup(STATE) after
 * Shutdown(STATE)) and returns to 0 on a Reset; `safe` is NO after a power
 * loss without an orderly Shutdown, when Clock was restored from an older NV
 * value, and stays NO until the TPM next writes Clock to NV (the reference's
 * TimeStartup and TimeClockUpdate: every 2^NV_CLOCK_UPDATE_INTERVAL ms, about
 * 70 minutes, or at TPM2_ClockSet).
 *
 * Rules (verifier-pitfalls.md; Keylime's check_quote_timing, made precise):
 * - resetCount never goes backwards; up means a reboot (restartCount may then
 *   drop and the clock may restart, so neither is compared).
 * - With the same resetCount and safe = 1: restartCount and clock never go
 *   backwards; restartCount up is a resume.
 * - safe = 0: the clock may legitimately repeat values, so clock and
 *   restartCount are not compared; the outcome is the policy's (default warn,
 *   so an honest power cut does not quarantine a device), and resetCount is
 *   still required not to go backwards. The fresh nonce keeps the quote fresh.
 *
 * The counters and firmwareVersion are obfuscated in attestations signed by
 * keys outside the endorsement and platform hierarchies (Part 3 §18.1): these
 * rules assume an AK under the EK, whose counters are plain.
 */
import { EvidenceError } from '../tpm/errors.js';
import type { TPMS_CLOCK_INFO } from '../tpm/types/index.js';
import { check, notPerformed, pass, fail, type Check } from './verdict.js';

/** What the verifier keeps of a device's last accepted attestation: plain data, JSON-friendly via clockStateToJson. */
export interface ClockState {
  readonly clock: bigint;
  readonly resetCount: number;
  readonly restartCount: number;
  readonly safe: boolean;
  /** TPMS_ATTEST.firmwareVersion, when known. */
  readonly firmwareVersion?: bigint;
}

/** An outcome a policy can give to a condition it tolerates or not. */
export type Severity = 'pass' | 'warn' | 'fail';

export interface ClockPolicy {
  /** Outcome of the `.clock` check when the attested clockInfo has safe = 0 (default 'warn'). */
  readonly unsafe?: Severity;
}

/**
 * What happened since the previous attestation: `first` (none known),
 * `same-boot`, `resume` (restartCount up), `reboot` (resetCount up), or
 * `backwards` (a counter or, while safe, the clock went back).
 */
export type ClockTransition = 'first' | 'same-boot' | 'resume' | 'reboot' | 'backwards';

export interface ClockResult {
  /** `<prefix>.reset-count`, `<prefix>.clock`, `<prefix>.firmware`. */
  readonly checks: readonly Check[];
  readonly transition: ClockTransition;
  /** The state to keep if the attestation is accepted. */
  readonly state: ClockState;
}

const SEVERITIES: readonly Severity[] = ['pass', 'warn', 'fail'];
const U64_END = 1n << 64n;

function hex64(v: bigint): string {
  return `0x${v.toString(16).padStart(16, '0')}`;
}

/** The state to keep from an attestation's clockInfo and firmwareVersion. */
export function clockStateOf(clockInfo: TPMS_CLOCK_INFO, firmwareVersion?: bigint): ClockState {
  return {
    clock: clockInfo.clock,
    resetCount: clockInfo.resetCount,
    restartCount: clockInfo.restartCount,
    safe: clockInfo.safe === 1,
    ...(firmwareVersion !== undefined ? { firmwareVersion } : {}),
  };
}

function checkState(s: ClockState, what: string): void {
  const bad = (m: string): never => {
    throw new EvidenceError('evidence.argument', `${what}: ${m}`);
  };
  if (s === null || typeof s !== 'object') bad('expected { clock, resetCount, restartCount, safe }');
  if (typeof s.clock !== 'bigint' || s.clock < 0n || s.clock >= U64_END) bad('clock must be a UINT64 bigint');
  for (const k of ['resetCount', 'restartCount'] as const) {
    if (!Number.isInteger(s[k]) || s[k] < 0 || s[k] > 0xffffffff) bad(`${k} must be a UINT32`);
  }
  if (typeof s.safe !== 'boolean') bad('safe must be a boolean');
  if (s.firmwareVersion !== undefined && (typeof s.firmwareVersion !== 'bigint' || s.firmwareVersion < 0n || s.firmwareVersion >= U64_END)) {
    bad('firmwareVersion must be a UINT64 bigint');
  }
}

/**
 * Applies the clockInfo rules to an attestation's clockInfo against the
 * device's previous accepted state (none for a first attestation).
 *
 * Checks (prefix e.g. `quote`):
 * - `<prefix>.reset-count`: `reset.same-boot` | `reset.reboot` (pass), `reset.backwards` (fail), `reset.no-previous` (not performed).
 * - `<prefix>.clock`: `clock.monotonic` | `clock.resume` | `clock.reboot` (pass), `clock.backwards` |
 *   `clock.restart-backwards` (fail), `clock.unsafe` (the policy's severity, default warn),
 *   `clock.no-previous` | `clock.not-compared` (not performed).
 * - `<prefix>.firmware`: `firmware.reported` | `firmware.changed` (pass; policy rules on versions elsewhere).
 *
 * @throws EvidenceError `evidence.argument` for a malformed previous state or policy.
 */
export function checkClock(
  prefix: string,
  clockInfo: TPMS_CLOCK_INFO,
  firmwareVersion: bigint,
  previous?: ClockState,
  policy: ClockPolicy = {},
): ClockResult {
  if (previous !== undefined) checkState(previous, 'previous clock state');
  const unsafeSeverity = policy.unsafe ?? 'warn';
  if (!SEVERITIES.includes(unsafeSeverity)) throw new EvidenceError('evidence.argument', `clock policy unsafe: expected pass, warn or fail`);
  const cur = clockStateOf(clockInfo, firmwareVersion);
  const checks: Check[] = [];
  const resetId = `${prefix}.reset-count`;
  const clockId = `${prefix}.clock`;

  // resetCount: compared whatever `safe` says.
  let transition: ClockTransition;
  if (previous === undefined) {
    transition = 'first';
    checks.push(notPerformed(resetId, 'reset.no-previous', `resetCount ${cur.resetCount}; no previous attestation to compare with`));
  } else if (cur.resetCount < previous.resetCount) {
    transition = 'backwards';
    checks.push(fail(resetId, 'reset.backwards', `resetCount ${cur.resetCount} is below the previous ${previous.resetCount}: an old attestation, or another TPM`));
  } else if (cur.resetCount > previous.resetCount) {
    transition = 'reboot';
    checks.push(pass(resetId, 'reset.reboot', `resetCount ${previous.resetCount} → ${cur.resetCount}: the TPM was reset (a reboot) since the previous attestation`));
  } else {
    transition = cur.restartCount > previous.restartCount ? 'resume' : cur.restartCount < previous.restartCount ? 'backwards' : 'same-boot';
    checks.push(pass(resetId, 'reset.same-boot', `resetCount ${cur.resetCount}, as before`));
  }

  if (!cur.safe) {
    // Part 2 §10.11.1: the clock may have been restored from an older NV value; do not compare it.
    let seen = '';
    if (previous !== undefined && cur.resetCount === previous.resetCount) {
      if (cur.clock < previous.clock) seen = `; clock ${cur.clock} is below the previous ${previous.clock}`;
      if (cur.restartCount < previous.restartCount) seen += `; restartCount ${cur.restartCount} is below the previous ${previous.restartCount}`;
    }
    checks.push(check(clockId, unsafeSeverity, 'clock.unsafe', `safe = 0: the TPM lost power without an orderly shutdown and its clock may repeat values; clock and restartCount not compared${seen}`));
  } else if (previous === undefined) {
    checks.push(notPerformed(clockId, 'clock.no-previous', `clock ${cur.clock}, restartCount ${cur.restartCount}; no previous attestation to compare with`));
  } else if (cur.resetCount < previous.resetCount) {
    checks.push(notPerformed(clockId, 'clock.not-compared', 'resetCount went backwards; the clock is not compared'));
  } else if (cur.resetCount > previous.resetCount) {
    checks.push(pass(clockId, 'clock.reboot', `after a TPM Reset the clock (${cur.clock}) and restartCount (${cur.restartCount}) start a new epoch; not compared`));
  } else if (cur.restartCount < previous.restartCount) {
    transition = 'backwards';
    checks.push(fail(clockId, 'clock.restart-backwards', `restartCount ${cur.restartCount} is below the previous ${previous.restartCount} with the same resetCount`));
  } else if (cur.clock < previous.clock) {
    transition = 'backwards';
    checks.push(fail(clockId, 'clock.backwards', `clock ${cur.clock} is below the previous ${previous.clock} with the same resetCount while safe = 1`));
  } else if (cur.restartCount > previous.restartCount) {
    checks.push(pass(clockId, 'clock.resume', `restartCount ${previous.restartCount} → ${cur.restartCount}: a resume; clock ${previous.clock} → ${cur.clock}`));
  } else {
    checks.push(pass(clockId, 'clock.monotonic', `clock ${previous.clock} → ${cur.clock} within one boot`));
  }

  const fwId = `${prefix}.firmware`;
  if (previous?.firmwareVersion !== undefined && previous.firmwareVersion !== firmwareVersion) {
    checks.push(pass(fwId, 'firmware.changed', `firmwareVersion ${hex64(previous.firmwareVersion)} → ${hex64(firmwareVersion)}`));
  } else {
    checks.push(pass(fwId, 'firmware.reported', `firmwareVersion ${hex64(firmwareVersion)}`));
  }
  return { checks, transition, state: cur };
}

// ---------------------------------------------------------------------------
// JSON form: {"clock": n, "resetCount": n, "restartCount": n, "safe": true|false[, "firmwareVersion": n]}

/** The JSON form of a clock state; 64-bit values as numbers when exact, else as decimal strings. */
export interface ClockStateJson {
  clock: number | string;
  resetCount: number;
  restartCount: number;
  safe: boolean;
  firmwareVersion?: number | string;
}

function u64Json(v: bigint): number | string {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
}

export function clockStateToJson(state: ClockState): ClockStateJson {
  checkState(state, 'clock state');
  return {
    clock: u64Json(state.clock),
    resetCount: state.resetCount,
    restartCount: state.restartCount,
    safe: state.safe,
    ...(state.firmwareVersion !== undefined ? { firmwareVersion: u64Json(state.firmwareVersion) } : {}),
  };
}

function u64From(v: unknown, what: string): bigint {
  const bad = (): never => {
    throw new EvidenceError('evidence.file', `clock state: ${what} must be a UINT64 (a non-negative integer, or a decimal or 0x-hex string)`);
  };
  let n: bigint;
  if (typeof v === 'bigint') n = v;
  else if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) bad();
    n = BigInt(v);
  } else if (typeof v === 'string' && v.length <= 20 && /^(0x[0-9a-fA-F]{1,16}|[0-9]{1,20})$/.test(v)) n = BigInt(v);
  else return bad();
  if (n < 0n || n >= U64_END) bad();
  return n;
}

function u32From(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) {
    throw new EvidenceError('evidence.file', `clock state: ${what} must be a UINT32`);
  }
  return v;
}

/**
 * Reads a clock state from its JSON form (already parsed), e.g. the
 * CLOCKINFO file of `trustroot attest verify-quote --previous`. `safe` may be
 * a boolean or 0/1; 64-bit fields numbers or strings.
 * @throws EvidenceError `evidence.file` for anything else.
 */
export function clockStateFromJson(value: unknown): ClockState {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new EvidenceError('evidence.file', 'clock state: expected a JSON object {"clock", "resetCount", "restartCount", "safe"}');
  }
  const o = value as Record<string, unknown>;
  const safe = o['safe'];
  if (safe !== true && safe !== false && safe !== 0 && safe !== 1) throw new EvidenceError('evidence.file', 'clock state: safe must be true, false, 0 or 1');
  return {
    clock: u64From(o['clock'], 'clock'),
    resetCount: u32From(o['resetCount'], 'resetCount'),
    restartCount: u32From(o['restartCount'], 'restartCount'),
    safe: safe === true || safe === 1,
    ...(o['firmwareVersion'] !== undefined ? { firmwareVersion: u64From(o['firmwareVersion'], 'firmwareVersion') } : {}),
  };
}
