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
import { exclusionOf, matchExclusion, PART2_ONLY, SIMULATOR_PENDING, startTpm, type TpmUnderTest } from '../support/tpm-under-test.js';

describe('tpm-under-test exclusion lists', () => {
  const list = {
    'suite > one test': 'reason one',
    'suite > nested': 'reason two',
    'suite > matrix > cell × *': 'reason three',
  };

  it('an exact test, every test of a listed describe, every test under a "*" prefix; nothing else', () => {
    expect(matchExclusion(list, 'suite > one test')).toBe('reason one');
    expect(matchExclusion(list, 'suite > nested > any test in it')).toBe('reason two');
    expect(matchExclusion(list, 'suite > matrix > cell × Sign: runs')).toBe('reason three');
    // A name that merely starts like an entry is not that entry.
    expect(matchExclusion(list, 'suite > one test again')).toBeUndefined();
    expect(matchExclusion(list, 'suite > nestedness > a test')).toBeUndefined();
    expect(matchExclusion(list, 'suite > matrix > other × Sign: runs')).toBeUndefined();
  });

  it('never excludes anything on swtpm; on the simulator each list labels its reason', () => {
    for (const e of [...Object.keys(PART2_ONLY), ...Object.keys(SIMULATOR_PENDING)]) {
      const path = e.replace(/\*$/, 'x');
      expect(exclusionOf('swtpm', path)).toBeUndefined();
      expect(exclusionOf('simulator', path)).toMatch(/^(part 2|simulator pending): ./);
    }
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
