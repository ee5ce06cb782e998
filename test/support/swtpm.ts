/**
 * Test harness: a private Debian swtpm per caller (src/cli/swtpm-process.ts),
 * and a `describe` that fails rather than skips when CI requires swtpm.
 */
import { spawnSync } from 'node:child_process';
import { describe, it } from 'vitest';
import { SWTPM_BINARY } from '../../src/cli/swtpm-process.js';

export { freePort, freePortPair, startSwtpm, type SwtpmInstance, type SwtpmOptions } from '../../src/cli/swtpm-process.js';

export interface SwtpmSupport {
  readonly available: boolean;
  /** CI=1 or TRUSTROOT_REQUIRE_SWTPM=1: a missing swtpm is a failure, not a skip. */
  readonly required: boolean;
  /** Why swtpm cannot be used ('' when available). */
  readonly reason: string;
}

let support: SwtpmSupport | undefined;

/** Whether swtpm is installed (checked once, by running `swtpm --version`). */
export function swtpmSupport(): SwtpmSupport {
  if (support) return support;
  const required = process.env['CI'] === '1' || process.env['CI'] === 'true' || process.env['TRUSTROOT_REQUIRE_SWTPM'] === '1';
  const r = spawnSync(SWTPM_BINARY, ['--version'], { encoding: 'utf8', timeout: 5000 });
  const available = r.error === undefined && r.status === 0 && /TPM emulator/i.test(r.stdout);
  const reason = available
    ? ''
    : `swtpm not found (${r.error?.message ?? `exit ${r.status}`}); install Debian's swtpm and swtpm-tools`;
  support = { available, required, reason };
  return support;
}

/**
 * `describe` for suites that need swtpm: skipped with the reason in its name
 * when swtpm is missing, or a failing test instead when swtpm is required.
 */
export function describeWithSwtpm(name: string, body: () => void): void {
  const s = swtpmSupport();
  if (s.available) {
    describe(name, body);
  } else if (s.required) {
    // A real failing test, not a skip: CI must notice a missing swtpm.
    describe(name, () => {
      it('swtpm is installed', () => {
        throw new Error(`${s.reason} (required because CI=1 or TRUSTROOT_REQUIRE_SWTPM=1)`);
      });
    });
  } else {
    describe.skip(`${name} [skipped: ${s.reason}]`, body);
  }
}

