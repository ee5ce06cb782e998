/**
 * Issue 7 acceptance: every command of the core's command set is
 * implemented, and GetCapability(COMMANDS) lists exactly those, each with
 * TPMA_CC as libtpms has it (handle count, rHandle, nv, extensive, flushed):
 * compared word for word with swtpm for every command both implement.
 * PP_COMMANDS and AUDIT_COMMANDS agree with swtpm on the commands we have.
 */
import { describe, expect, it } from 'vitest';
import { ALL_COMMANDS, commandByCode } from '../../src/tpm/commands/index.js';
import { TPM_CAP } from '../../src/tpm/constants.js';
import { readCapability } from '../../src/tpm/capability.js';
import type { Transport } from '../../src/tpm/transport/index.js';
import { TPMA_CC } from '../../src/tpm/types/index.js';
import { TpmEngine } from '../../src/simulator/index.js';
import { describeWithSwtpm } from '../support/swtpm.js';
import { startedEngine, swtpmAndSimulator } from '../support/fixture.js';

const hex = (n: number): string => `0x${(n >>> 0).toString(16)}`;
const nameOf = (code: number): string => commandByCode(code)?.name ?? hex(code);


/** GetCapability(COMMANDS), every page: command code → TPMA_CC word. */
async function commandWords(t: Transport): Promise<Map<number, number>> {
  const items = await readCapability(t, TPM_CAP.COMMANDS);
  return new Map(items.map((a) => [TPMA_CC.toWord(a) & 0xffff, TPMA_CC.toWord(a) >>> 0]));
}

const codeList = async (t: Transport, cap: typeof TPM_CAP.PP_COMMANDS | typeof TPM_CAP.AUDIT_COMMANDS): Promise<number[]> =>
  (await readCapability(t, cap)).map((c) => Number(c));

describe('simulator command set', () => {
  it('implements every command of the core (ALL_COMMANDS), and nothing else', () => {
    const implemented = new TpmEngine().implementedCommands();
    const missing = ALL_COMMANDS.filter((c) => !implemented.includes(c.code)).map((c) => c.name);
    expect(missing).toEqual([]);
    expect(implemented).toEqual(ALL_COMMANDS.map((c) => c.code).sort((a, b) => a - b));
  });

  it('GetCapability(COMMANDS) lists exactly implementedCommands(), each with its handle counts', async () => {
    const { engine, t } = await startedEngine();
    try {
      const words = await commandWords(t);
      expect([...words.keys()].map(nameOf)).toEqual(engine.implementedCommands().map((c) => nameOf(c & 0xffff)));
      for (const cmd of ALL_COMMANDS) {
        const a = TPMA_CC.fromWord(words.get(cmd.code & 0xffff)!);
        expect([cmd.name, a.cHandles, a.rHandle, a.V]).toEqual([cmd.name, cmd.handleNames.length, cmd.responseHandleNames.length > 0, false]);
      }
      // TPM_PT_TOTAL_COMMANDS and LIBRARY_COMMANDS count the same list.
      expect(words.size).toBe(ALL_COMMANDS.length);
    } finally {
      await t.close();
    }
  });
});

describeWithSwtpm('simulator GetCapability(COMMANDS, PP_COMMANDS, AUDIT_COMMANDS) agrees with swtpm', () => {
  const tpms = swtpmAndSimulator();

  it('the same TPMA_CC word for every command both implement; swtpm has no core command we lack', async () => {
    const sw = tpms.swtpm;
    const sim = await tpms.simulator();
    const theirs = await commandWords(sw.probe);
    const ours = await commandWords(sim.probe);
    const both = [...ours.keys()].filter((c) => theirs.has(c));
    // Every core command is a library command libtpms implements too.
    expect(ALL_COMMANDS.filter((c) => !theirs.has(c.code & 0xffff)).map((c) => c.name)).toEqual([]);
    expect(both.length).toBe(ours.size);
    const differ = both.filter((c) => theirs.get(c) !== ours.get(c)).map((c) => `${nameOf(c)}: swtpm ${hex(theirs.get(c)!)}, ours ${hex(ours.get(c)!)}`);
    expect(differ).toEqual([]);
    // What libtpms has beyond the core: library commands the core has no record of (none vendor-specific).
    for (const c of [...theirs.keys()].filter((c) => !ours.has(c))) expect(TPMA_CC.fromWord(theirs.get(c)!).V).toBe(false);

    // PP_COMMANDS: libtpms lists only PP_Commands (not in the core); restricted to what we implement, both empty.
    const ppTheirs = (await codeList(sw.probe, TPM_CAP.PP_COMMANDS)).filter((c) => ours.has(c & 0xffff));
    expect(await codeList(sim.probe, TPM_CAP.PP_COMMANDS)).toEqual(ppTheirs);
    expect(await codeList(sim.probe, TPM_CAP.AUDIT_COMMANDS)).toEqual(await codeList(sw.probe, TPM_CAP.AUDIT_COMMANDS));
  });
});
