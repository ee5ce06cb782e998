/**
 * The outcome log of a command scenario run on two TPMs (swtpm and the
 * simulator) and compared whole: per label, 0 (or `value(result)`) on
 * success and the response code in hex on a TPM error; `codes` keeps the
 * response code itself (0 on success) for the differential runner
 * (test/support/differential.ts), which builds on this log. libtpms answers
 * TPM_RC_RETRY to some first attempts; a step sends the command again then,
 * as a client must. Anything but a TpmError is a bug in the test and throws.
 */
import { TPM_RC, TpmError } from '../../src/tpm/rc.js';

export interface ScenarioLog {
  readonly log: Record<string, unknown>;
  /** Per label: the response code (0 on success). */
  readonly codes: Record<string, number>;
  step<T>(label: string, f: () => Promise<T>, value?: (r: T) => unknown): Promise<T | undefined>;
}

export function scenarioLog(): ScenarioLog {
  const log: Record<string, unknown> = {};
  const codes: Record<string, number> = {};
  return {
    log,
    codes,
    async step<T>(label: string, f: () => Promise<T>, value?: (r: T) => unknown): Promise<T | undefined> {
      for (let attempt = 0; ; attempt++) {
        try {
          const r = await f();
          log[label] = value === undefined ? 0 : value(r);
          codes[label] = 0;
          return r;
        } catch (e) {
          if (!(e instanceof TpmError)) throw e;
          if (e.rc === TPM_RC.RETRY && attempt < 3) continue;
          log[label] = `0x${e.rc.toString(16)}`;
          codes[label] = e.rc;
          return undefined;
        }
      }
    },
  };
}
