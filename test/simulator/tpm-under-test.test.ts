/**
 * The harness that runs the client suite on both TPMs
 * (test/support/tpm-under-test.ts): how exclusion entries match test paths,
 * and the simulator's freeze/thaw (what SIGSTOP/SIGCONT do to swtpm).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { GetRandom, Startup } from '../../src/tpm/commands/index.js';
import { TPM_SU } from '../../src/tpm/constants.js';
import { runCommand } from '../../src/tpm/run.js';
import { SwtpmTransport } from '../../src/tpm/transport/index.js';
import { exclusionOf, PART2_ONLY, SIMULATOR_PENDING, startTpm, type TpmUnderTest } from '../support/tpm-under-test.js';

describe('tpm-under-test exclusion lists', () => {
  const part2 = Object.keys(PART2_ONLY);
  const exact = part2.find((e) => e.startsWith('client PCRs > '))!;
  const star = part2.find((e) => e.endsWith('*'))!;
  const whole = part2.find((e) => e.endsWith('> audit sessions'))!;

  it('never excludes anything on swtpm', () => {
    for (const e of [...part2, ...Object.keys(SIMULATOR_PENDING)]) expect(exclusionOf('swtpm', e.replace(/\*$/, 'x'))).toBeUndefined();
  });

  it('on the simulator: an exact test, every test of a listed describe, every test under a "*" prefix; nothing else', () => {
    expect(exclusionOf('simulator', exact)).toMatch(/^part 2: PCR_Allocate/);
    expect(exclusionOf('simulator', `${whole} > any test in it`)).toMatch(/^part 2: /);
    expect(exclusionOf('simulator', `${star.slice(0, -1)}Sign: runs`)).toMatch(/^part 2: /);
    // A name that merely starts like an entry is not that entry.
    expect(exclusionOf('simulator', `${exact} again`)).toBeUndefined();
    expect(exclusionOf('simulator', `${whole}s > a test`)).toBeUndefined();
    expect(exclusionOf('simulator', 'client PCRs > reads all 24 PCRs')).toBeUndefined();
  });

  it('every entry says why', () => {
    for (const reason of [...Object.values(PART2_ONLY), ...Object.values(SIMULATOR_PENDING)]) expect(reason.length).toBeGreaterThan(10);
  });
});

describe('tpm-under-test: the simulator', () => {
  let sim: TpmUnderTest | undefined;
  afterEach(async () => {
    await sim?.stop();
  });

  it('frozen, it receives a command and answers it only after thaw()', async () => {
    sim = await startTpm('simulator');
    const t = new SwtpmTransport({ port: sim.port, ctrlPort: sim.ctrlPort });
    try {
      await runCommand(t, Startup, {}, { startupType: TPM_SU.CLEAR });
      sim.freeze();
      let answered = false;
      const pending = runCommand(t, GetRandom, {}, { bytesRequested: 8 }).then((r) => {
        answered = true;
        return r;
      });
      await new Promise((r) => setTimeout(r, 150));
      expect(answered).toBe(false);
      sim.thaw();
      expect((await pending).params.randomBytes.length).toBe(8);
    } finally {
      await t.close();
    }
  });
});
