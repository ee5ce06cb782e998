/**
 * Dictionary-attack protection (Part 1 §19.8.6; Part 3 §25) in the
 * simulator over power cycles and time: failures counted and forgotten one
 * per recoveryTime after the last failure (self-healing on the TPM's own tick
 * timer), lockout, lockoutAuth and lockoutRecovery (0: usable again only
 * after a Startup), recoveryTime 0 (DA off), a disorderly power loss after a
 * DA-protected use counting as one failure (libtpms's USE_DA_USED), the
 * timers carried across an orderly shutdown (ACCUMULATE_SELF_HEAL_TIMER), all
 * of it persisted. The power-cycle scenario is compared with swtpm's.
 */
import { describe, expect, it } from 'vitest';
import { readCapability } from '../../src/tpm/capability.js';
import {
  DictionaryAttackLockReset,
  DictionaryAttackParameters,
  HierarchyChangeAuth,
  NV_DefineSpace,
  NV_Read,
  NV_Write,
  Shutdown,
  Startup,
} from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_CAP, TPM_PT, TPM_RH, TPM_SU } from '../../src/tpm/constants.js';
import { TPM_RC } from '../../src/tpm/rc.js';
import { passwordAuth, runCommand } from '../../src/tpm/run.js';
import { inProcessTransport, type Transport } from '../../src/tpm/transport/index.js';
import { TPMA_NV } from '../../src/tpm/types/index.js';
import { TpmEngine } from '../../src/simulator/index.js';
import { createSimulatorState } from '../../src/simulator/state.js';
import { parseStateFile, serializeState, validateSimulatorState } from '../../src/simulator/store.js';
import { tpmRejection } from '../support/probe.js';
import { scenarioLog } from '../support/scenario.js';
import { describeWithSwtpm } from '../support/swtpm.js';
import { startedEngine, swtpmAndSimulator } from '../support/fixture.js';

const EMPTY = new Uint8Array(0);
const PIN = Uint8Array.of(7, 7);
const WRONG = Uint8Array.of(6, 6);
const LOCKOUT_AUTH = Uint8Array.of(5);
/** A DA-protected index (NO_DA clear) whose authValue is PIN. */
const INDEX = 0x01500301;

/** One TPM with its power switch: _TPM_Init, the rest is commands. */
interface Target {
  readonly t: Transport;
  powerCycle(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function counter(t: Transport): Promise<number | undefined> {
  return (await readCapability(t, TPM_CAP.TPM_PROPERTIES, [TPM_PT.LOCKOUT_COUNTER])).find((p) => p.property === TPM_PT.LOCKOUT_COUNTER)?.value;
}

function use(t: Transport, auth: Uint8Array) {
  return runCommand(t, NV_Read, { authHandle: INDEX, nvIndex: INDEX }, { size: 1, offset: 0 }, { sessions: [passwordAuth(auth)] });
}

function params(t: Transport, maxTries: number, recoveryTime: number, lockoutRecovery: number, auth = EMPTY) {
  return runCommand(t, DictionaryAttackParameters, { lockHandle: TPM_RH.LOCKOUT }, { newMaxTries: maxTries, newRecoveryTime: recoveryTime, lockoutRecovery }, { sessions: [passwordAuth(auth)] });
}

function lockReset(t: Transport, auth: Uint8Array) {
  return runCommand(t, DictionaryAttackLockReset, { lockHandle: TPM_RH.LOCKOUT }, {}, { sessions: [passwordAuth(auth)] });
}

async function defineIndex(t: Transport): Promise<void> {
  const publicInfo = { nvIndex: INDEX, nameAlg: TPM_ALG.SHA256, attributes: TPMA_NV.of({ AUTHREAD: true, AUTHWRITE: true }), authPolicy: EMPTY, dataSize: 4 } as never;
  await runCommand(t, NV_DefineSpace, { authHandle: TPM_RH.OWNER }, { auth: PIN, publicInfo });
}

/** Power cycles with and without Shutdown, lockoutAuth, recoveryTime 0 and a short real-time recovery. */
async function scenario({ t, powerCycle }: Target): Promise<Record<string, unknown>> {
  const { log, step } = scenarioLog();
  const startup = (label: string, type: number = TPM_SU.CLEAR) => step(label, () => runCommand(t, Startup, {}, { startupType: type as never }));
  await defineIndex(t);
  await step('write the index', () => runCommand(t, NV_Write, { authHandle: INDEX, nvIndex: INDEX }, { data: Uint8Array.of(1, 2, 3, 4), offset: 0 }, { sessions: [passwordAuth(PIN)] }));
  await step('parameters 4/1000/1000', () => params(t, 4, 1000, 1000));
  log['counter at start'] = await counter(t);

  // A DA-protected use, then a power loss: one failure at the next Startup.
  await step('good use', () => use(t, PIN));
  await powerCycle();
  await startup('startup after a power loss');
  log['counter after a power loss after a use'] = await counter(t);
  // An orderly Shutdown: nothing counted.
  await step('good use 2', () => use(t, PIN));
  await step('shutdown clear', () => runCommand(t, Shutdown, {}, { shutdownType: TPM_SU.CLEAR }));
  await powerCycle();
  await startup('startup after Shutdown(CLEAR)');
  log['counter after an orderly shutdown'] = await counter(t);
  // A use after Shutdown(STATE) makes that shutdown disorderly: no Resume, and it counts.
  await step('shutdown state', () => runCommand(t, Shutdown, {}, { shutdownType: TPM_SU.STATE }));
  await step('good use after Shutdown', () => use(t, PIN));
  await powerCycle();
  await startup('resume after a use after Shutdown', TPM_SU.STATE);
  await startup('startup clear instead');
  log['counter after a use after Shutdown'] = await counter(t);
  // A power loss with no DA use since Startup: nothing counted.
  await powerCycle();
  await startup('startup after a power loss without use');
  log['counter after a power loss without use'] = await counter(t);
  // Failures up to maxTries: lockout; a power loss then adds nothing.
  await step('wrong 1', () => use(t, WRONG));
  await step('wrong 2', () => use(t, WRONG));
  await step('good use in lockout', () => use(t, PIN));
  await powerCycle();
  await startup('startup in lockout');
  log['counter in lockout after a power loss'] = await counter(t);
  await step('lock reset', () => lockReset(t, EMPTY));
  log['counter after the reset'] = await counter(t);

  // recoveryTime 0: DA off; failures already counted are forgotten, new ones not counted.
  await step('wrong before DA off', () => use(t, WRONG));
  await step('parameters 4/0/1000', () => params(t, 4, 0, 1000));
  log['counter with DA off'] = await counter(t);
  await step('wrong with DA off', () => use(t, WRONG));
  log['counter after a failure with DA off'] = await counter(t);
  await step('good use with DA off', () => use(t, PIN));
  await powerCycle();
  await startup('startup with DA off');
  log['counter after a power loss with DA off'] = await counter(t);

  // Self-healing on the TPM's timer, counted from the last failure: recoveryTime 2 s. Each read sits ≥ 1 s from
  // the heal it must not see (a late timer on a busy machine only delays a read, never advances it).
  await step('parameters 4/2/1000', () => params(t, 4, 2, 1000));
  await step('timed wrong 1', () => use(t, WRONG));
  await sleep(700);
  await step('timed wrong 2', () => use(t, WRONG));
  await sleep(1000);
  log['counter 1 s after the second failure'] = await counter(t);
  await sleep(1600);
  log['counter 2.6 s after the second failure'] = await counter(t);
  await step('lock reset before lockoutAuth', () => lockReset(t, EMPTY));

  // lockoutAuth: one failure locks it; lockoutRecovery 0 frees it at the next Startup, 1000 s does not.
  await step('lockout auth set', () => runCommand(t, HierarchyChangeAuth, { authHandle: TPM_RH.LOCKOUT }, { newAuth: LOCKOUT_AUTH }));
  await step('parameters 4/1000/0', () => params(t, 4, 1000, 0, LOCKOUT_AUTH));
  await step('wrong lockoutAuth', () => lockReset(t, WRONG));
  await step('right lockoutAuth while locked', () => lockReset(t, LOCKOUT_AUTH));
  await powerCycle();
  await startup('startup with lockoutRecovery 0');
  await step('lockoutAuth after a Startup, lockoutRecovery 0', () => lockReset(t, LOCKOUT_AUTH));
  await step('parameters 4/1000/1000 again', () => params(t, 4, 1000, 1000, LOCKOUT_AUTH));
  await step('wrong lockoutAuth 2', () => lockReset(t, WRONG));
  await powerCycle();
  await startup('startup with lockoutRecovery 1000');
  await step('lockoutAuth after a Startup, lockoutRecovery 1000', () => lockReset(t, LOCKOUT_AUTH));
  return log;
}

/** An engine on a test clock, started; `advance` moves the clock. */
async function onTestClock(engine?: (now: () => number) => TpmEngine) {
  let now = 0;
  const clock = (): number => now;
  const e = engine?.(clock) ?? new TpmEngine({ now: clock });
  const t = inProcessTransport(e);
  await runCommand(t, Startup, {}, { startupType: TPM_SU.CLEAR });
  await defineIndex(t);
  await runCommand(t, NV_Write, { authHandle: INDEX, nvIndex: INDEX }, { data: Uint8Array.of(1), offset: 0 }, { sessions: [passwordAuth(PIN)] });
  return { engine: e, t, advance: (ms: number) => void (now += ms) };
}

describe('simulator dictionary-attack protection over time and power cycles', () => {
  it('forgets one failure per recoveryTime after the last failure, on the test clock', async () => {
    const { engine, t, advance } = await onTestClock();
    await params(t, 3, 100, 100);
    for (let i = 0; i < 2; i++) {
      expect((await tpmRejection(use(t, WRONG))).is(TPM_RC.AUTH_FAIL)).toBe(true);
      advance(60_000);
    }
    // 120 s after the first failure, 60 s after the second: nothing forgotten yet (the timer restarted at the second).
    expect(await counter(t)).toBe(2);
    advance(40_000);
    expect(await counter(t)).toBe(1);
    advance(99_999);
    expect(await counter(t)).toBe(1);
    advance(1);
    expect(await counter(t)).toBe(0);
    // maxTries failures: lockout, for the good authValue too, until one recoveryTime passes.
    for (let i = 0; i < 3; i++) await tpmRejection(use(t, WRONG));
    expect((await tpmRejection(use(t, PIN))).is(TPM_RC.LOCKOUT)).toBe(true);
    advance(100_000);
    await use(t, PIN);
    expect(engine.state.dictionaryAttack.failedTries).toBe(2);
  });

  it('carries the timers across an orderly shutdown, not across a power loss, and never counts powered-off time', async () => {
    const { engine, t, advance } = await onTestClock();
    await params(t, 5, 100, 100);
    await tpmRejection(use(t, WRONG));
    advance(60_000);
    await runCommand(t, Shutdown, {}, { shutdownType: TPM_SU.CLEAR });
    advance(1_000_000); // powered off
    engine.init();
    await runCommand(t, Startup, {}, { startupType: TPM_SU.CLEAR });
    advance(39_999);
    expect(await counter(t)).toBe(1);
    advance(1);
    expect(await counter(t)).toBe(0);
    // A power loss: the self-healing timer starts again at power-on (and the use before it counts as a failure).
    await tpmRejection(use(t, WRONG));
    advance(60_000);
    advance(1_000_000); // power lost, then off
    engine.init();
    await runCommand(t, Startup, {}, { startupType: TPM_SU.CLEAR });
    expect(await counter(t)).toBe(2);
    advance(99_999);
    expect(await counter(t)).toBe(2);
    advance(1);
    expect(await counter(t)).toBe(1);
  });

  it('keeps the DA state in the state file: a restarted TPM is still locked out, lockoutAuth still locked', async () => {
    const { engine, t } = await onTestClock();
    await runCommand(t, HierarchyChangeAuth, { authHandle: TPM_RH.LOCKOUT }, { newAuth: LOCKOUT_AUTH });
    for (let i = 0; i < 3; i++) await tpmRejection(use(t, WRONG));
    await tpmRejection(lockReset(t, WRONG));
    // Through the file format and its validation, as a store would reload it.
    const reloaded = validateSimulatorState(parseStateFile(serializeState(engine.state), engine.state.version));
    const { t: again } = await startedEngine(new TpmEngine({ state: reloaded, now: () => 0 }));
    expect((await tpmRejection(use(again, PIN))).is(TPM_RC.LOCKOUT)).toBe(true);
    expect((await tpmRejection(lockReset(again, LOCKOUT_AUTH))).is(TPM_RC.LOCKOUT)).toBe(true);
    // The power loss after DA use did not add a failure beyond maxTries.
    expect(reloaded.dictionaryAttack.failedTries).toBe(3);
  });

  it('the first DA-protected use after Startup is durable before the answer; later ones write nothing', async () => {
    let saves = 0;
    const { engine, t } = await onTestClock((now) => new TpmEngine({ now, persist: async () => void saves++, state: createSimulatorState() }));
    await runCommand(t, Shutdown, {}, { shutdownType: TPM_SU.CLEAR });
    engine.init();
    await runCommand(t, Startup, {}, { startupType: TPM_SU.CLEAR });
    saves = 0;
    await use(t, PIN);
    expect(saves).toBe(1);
    await use(t, PIN);
    expect(saves).toBe(1);
  });
});

describeWithSwtpm('simulator dictionary-attack protection agrees with swtpm', () => {
  const tpms = swtpmAndSimulator();

  it('the same power cycles, failures and recoveries give the same codes and counts', async () => {
    const { theirs, ours } = await tpms.both((side) => scenario({ t: side.probe, powerCycle: () => side.init() }));
    // Not vacuous: libtpms healed one of the two timed failures between the two reads.
    expect([theirs['counter 1 s after the second failure'], theirs['counter 2.6 s after the second failure']]).toEqual([2, 1]);
    expect(ours).toEqual(theirs);
  }, 60_000);
});
