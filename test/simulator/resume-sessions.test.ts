/**
 * Saved sessions across a power cycle (Part 1 §30.5 and §36.8–§36.9; the
 * reference's SessionStartup): a session whose context was saved before
 * Shutdown(STATE) loads again after the TPM Resume or Restart, once; a
 * session still loaded then is gone; after a TPM Reset (or a power loss) no
 * context loads. Compared with swtpm.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { readCapability } from '../../src/tpm/capability.js';
import { ContextLoad, ContextSave, FlushContext, PolicyGetDigest, Shutdown, StartAuthSession, Startup } from '../../src/tpm/commands/index.js';
import { HANDLE_RANGE, TPM_ALG, TPM_CAP, TPM_RH, TPM_SE, TPM_SU } from '../../src/tpm/constants.js';
import { runCommand } from '../../src/tpm/run.js';
import { inProcessTransport, type Transport } from '../../src/tpm/transport/index.js';
import type { TPMS_CONTEXT } from '../../src/tpm/types/index.js';
import { TpmEngine } from '../../src/simulator/index.js';
import { parseStateFile, serializeState, validateSimulatorState } from '../../src/simulator/store.js';
import { scenarioLog } from '../support/scenario.js';
import { describeWithSwtpm } from '../support/swtpm.js';
import { startedEngine, swtpmAndSimulator } from '../support/fixture.js';

const EMPTY = new Uint8Array(0);

async function startSession(t: Transport, type: number): Promise<number> {
  const r = await runCommand(
    t,
    StartAuthSession,
    { tpmKey: TPM_RH.NULL, bind: TPM_RH.NULL },
    { nonceCaller: randomBytes(16), encryptedSalt: EMPTY, sessionType: type as never, symmetric: { algorithm: TPM_ALG.NULL } as never, authHash: TPM_ALG.SHA256 },
  );
  return r.handles.sessionHandle;
}

async function save(t: Transport, h: number): Promise<TPMS_CONTEXT> {
  return (await runCommand(t, ContextSave, { saveHandle: h }, {})).params.context;
}

/** Handles TPM_CAP_HANDLES lists from `first` (saved sessions 0x02…, loaded policy sessions 0x03…), relative to it. */
async function listed(t: Transport, first: number): Promise<number[]> {
  const handles = (await readCapability(t, TPM_CAP.HANDLES, [first])) as number[];
  return handles.filter((h) => h >>> 24 === first >>> 24).map((h) => h - first);
}

async function scenario(t: Transport, powerCycle: () => Promise<void>): Promise<Record<string, unknown>> {
  const { log, step } = scenarioLog();
  const cycle = async (label: string, shutdown: number | undefined, startup: number): Promise<void> => {
    if (shutdown !== undefined) await step(`${label}: shutdown`, () => runCommand(t, Shutdown, {}, { shutdownType: shutdown as never }));
    await powerCycle();
    await step(`${label}: startup`, () => runCommand(t, Startup, {}, { startupType: startup as never }));
  };
  const load = (label: string, c: TPMS_CONTEXT, h: number) => step(label, () => runCommand(t, ContextLoad, {}, { context: c }), (r) => r.handles.loadedHandle === h);

  // Resume: the saved HMAC session comes back, the loaded policy session does not.
  const hmac = await startSession(t, TPM_SE.HMAC);
  const policy = await startSession(t, TPM_SE.POLICY);
  const c1 = await save(t, hmac);
  await cycle('resume', TPM_SU.STATE, TPM_SU.STATE);
  log['resume: saved sessions'] = await listed(t, HANDLE_RANGE.HMAC_SESSION[0]);
  log['resume: loaded policy sessions'] = await listed(t, HANDLE_RANGE.POLICY_SESSION[0]);
  await load('resume: load the saved session', c1, hmac);
  await step('resume: the loaded policy session', () => runCommand(t, PolicyGetDigest, { policySession: policy }, {}));
  await load('resume: load the same context again', c1, hmac);
  const c2 = await save(t, hmac);

  // Restart: kept too.
  await cycle('restart', TPM_SU.STATE, TPM_SU.CLEAR);
  await load('restart: load the saved session', c2, hmac);
  await step('restart: flush it', () => runCommand(t, FlushContext, {}, { flushHandle: hmac }));
  await load('restart: load a flushed session', c2, hmac);

  // Reset: gone.
  const again = await startSession(t, TPM_SE.HMAC);
  const c3 = await save(t, again);
  await cycle('reset', TPM_SU.CLEAR, TPM_SU.CLEAR);
  log['reset: saved sessions'] = await listed(t, HANDLE_RANGE.HMAC_SESSION[0]);
  await load('reset: load', c3, again);

  // A power loss after Shutdown(STATE) was never sent: a Reset as well.
  const lost = await startSession(t, TPM_SE.HMAC);
  const c4 = await save(t, lost);
  await cycle('power loss', undefined, TPM_SU.CLEAR);
  await load('power loss: load', c4, lost);
  return log;
}

describe('simulator saved sessions across Shutdown(STATE)', () => {
  it('a saved session loads after a Resume of a TPM reloaded from its state file', async () => {
    const { engine, t } = await startedEngine();
    const h = await startSession(t, TPM_SE.POLICY);
    const c = await save(t, h);
    await runCommand(t, Shutdown, {}, { shutdownType: TPM_SU.STATE });
    const state = validateSimulatorState(parseStateFile(serializeState(engine.state), engine.state.version));
    const again = inProcessTransport(new TpmEngine({ state }));
    await runCommand(again, Startup, {}, { startupType: TPM_SU.STATE });
    expect((await runCommand(again, ContextLoad, {}, { context: c })).handles.loadedHandle).toBe(h);
    expect((await runCommand(again, PolicyGetDigest, { policySession: h }, {})).params.policyDigest).toEqual(new Uint8Array(32));
    // A session started now takes another handle than the restored one.
    expect(await startSession(again, TPM_SE.POLICY)).not.toBe(h);
  });
});

describeWithSwtpm('simulator saved sessions across Shutdown(STATE) agree with swtpm', () => {
  const tpms = swtpmAndSimulator();

  it('Resume and Restart keep saved sessions, Reset and power loss do not: the same codes and handles', async () => {
    const { theirs: expected, ours } = await tpms.both((side) => scenario(side.probe, () => side.init()));
    expect(ours).toEqual(expected);
    expect(expected['resume: load the saved session']).toBe(true);
  }, 60_000);
});
