/**
 * The PC Client PCR attributes (pcr-rules.ts) against swtpm: PCR_Extend and
 * PCR_Reset of every PCR at every locality, whether each change moved
 * pcrUpdateCounter, and GetCapability(PCR_PROPERTIES) whole — one
 * scenarioLog per TPM, compared.
 */
import { expect, it } from 'vitest';
import { PCR_Extend, PCR_Read, PCR_Reset } from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_CAP } from '../../src/tpm/constants.js';
import { readCapability } from '../../src/tpm/capability.js';
import { pcrIndices, pcrSelection } from '../../src/tpm/pcr.js';
import type { DiffSide } from '../support/differential.js';
import { scenarioLog, type ScenarioLog } from '../support/scenario.js';
import { describeWithSwtpm } from '../support/swtpm.js';
import { swtpmAndSimulator } from '../support/fixture.js';

const SHA256 = TPM_ALG.SHA256;

async function scenario(side: DiffSide): Promise<ScenarioLog> {
  const { tpm } = side;
  const log = scenarioLog();
  // The counter's value depends on the power cycles before: only its moves are logged.
  const counter = async (): Promise<number> => (await tpm.run(PCR_Read, {}, { pcrSelectionIn: [pcrSelection(SHA256, [0])] })).params.pcrUpdateCounter;
  const moved = async (label: string, f: () => Promise<unknown>): Promise<void> => {
    const before = await counter();
    const done = await log.step(label, async () => {
      await f();
      return true;
    });
    if (done === true) log.log[`${label}: counter moved`] = (await counter()) !== before;
  };
  for (let pcr = 0; pcr < 24; pcr++) {
    for (let locality = 0; locality <= 4; locality++) {
      await moved(`PCR_Extend ${pcr} at locality ${locality}`, () =>
        tpm.run(PCR_Extend, { pcrHandle: pcr }, { digests: [{ hashAlg: SHA256, digest: new Uint8Array(32).fill(pcr) }] as never }, { locality }),
      );
      await moved(`PCR_Reset ${pcr} at locality ${locality}`, () => tpm.run(PCR_Reset, { pcrHandle: pcr }, {}, { locality }));
    }
  }
  const properties = await readCapability(side.probe, TPM_CAP.PCR_PROPERTIES);
  log.log['PCR_PROPERTIES'] = properties.map((p) => [p.tag, pcrIndices({ hash: SHA256, pcrSelect: p.pcrSelect })]);
  return log;
}

describeWithSwtpm('simulator PCR localities agree with swtpm', () => {
  const tpms = swtpmAndSimulator();

  it('every PCR at every locality: the same codes for PCR_Extend and PCR_Reset, the same counter moves, the same PCR_PROPERTIES', async () => {
    const { theirs: expected, ours: got } = await tpms.both(scenario);
    expect(got.log).toEqual(expected.log);
    // Not vacuous: some of each kind succeed and some are refused.
    const codes = Object.values(got.codes);
    expect(codes.filter((c) => c === 0).length).toBeGreaterThan(100);
    expect(codes.filter((c) => c !== 0).length).toBeGreaterThan(100);
  });
});
