/**
 * Part 3 §9 "Start-up": Startup and Shutdown, and the three ways a TPM comes
 * up (Part 1 §36.7–§36.9): TPM Reset, TPM Restart and TPM Resume.
 */
import { TPM_ALG, TPM_SU } from '../../tpm/constants.js';
import { Shutdown, Startup } from '../../tpm/commands/index.js';
import { TPM_RC, TpmError, rcForParameter } from '../../tpm/rc.js';
import { isStateSaved, startupPcrChanges } from '../pcr-rules.js';
import { PCR_COUNT, SEED_SIZE } from '../state.js';
import { handler, ok } from './handler.js';
import { clearPcrAuthValues } from './integrity.js';
import { clearNvOnStartup } from './nv.js';
import { resetCommits } from '../commit.js';

export const startupHandler = handler(Startup, (ctx, _h, { startupType }) => {
  const { engine } = ctx;
  const { state, volatile } = engine;
  // Part 3 §9.3: TPM_RC_INITIALIZE when already started is checked here since the engine lets Startup through.
  if (volatile.started) throw new TpmError(TPM_RC.INITIALIZE);
  // libtpms takes the DA-used mark as a Startup begins, so a Resume refused below loses it (engine.daStartup).
  const daUsed = engine.takeDaUsed();
  const saved = state.savedState;
  if (startupType === TPM_SU.STATE) {
    // Part 3 §9.3: STATE needs a preceding Shutdown(STATE).
    if (state.orderlyShutdown !== 'state' || saved === null) throw new TpmError(rcForParameter(TPM_RC.VALUE, 1));
    // TPM Resume (Part 1 §36.9): saved PCRs come back, the others start fresh.
    engine.resetPcrs();
    for (const bank of saved.pcrs) {
      const live = volatile.pcrs.get(bank.hashAlg);
      if (live === undefined) continue;
      bank.values.forEach((v, i) => {
        if (isStateSaved(i) && v.length === live[i]!.length) live[i] = v.slice();
      });
    }
    volatile.shEnable = saved.shEnable;
    volatile.ehEnable = saved.ehEnable;
    volatile.sessions.restoreSavedContexts(saved);
    state.clock.restartCount++;
  } else if (state.orderlyShutdown === 'state') {
    // TPM Restart (Part 1 §36.8): Startup(CLEAR) after Shutdown(STATE); saved sessions stay (reference SessionStartup).
    engine.resetPcrs();
    if (saved !== null) volatile.sessions.restoreSavedContexts(saved);
    volatile.shEnable = true;
    volatile.ehEnable = true;
    state.clock.restartCount++;
    clearNvOnStartup(state);
  } else {
    // TPM Reset (Part 1 §36.7): new null seed and proof, counters, PCRs; a pending PCR_Allocate takes effect.
    if (state.pendingPcrAllocation !== null) {
      state.pcrAllocation = state.pendingPcrAllocation;
      state.pendingPcrAllocation = null;
    }
    engine.resetPcrs();
    volatile.shEnable = true;
    volatile.ehEnable = true;
    state.seeds.null = engine.random(SEED_SIZE);
    state.proofs.null = engine.random(SEED_SIZE);
    state.clock.resetCount++;
    state.clock.restartCount = 0;
    // Outstanding commitments end with the null proof they were derived from (commit.ts; reference CryptStartup).
    resetCommits(state);
    clearNvOnStartup(state);
  }
  // The PCRs this Startup reset are changes (the reference's PCRStartup → PCRChanged): 20 after a TPM Reset, on top
  // of the saved counter after a Resume or Restart (resetPcrs() began from 0).
  if (startupType === TPM_SU.STATE || state.orderlyShutdown === 'state') volatile.pcrUpdateCounter = saved?.pcrUpdateCounter ?? 0;
  volatile.pcrUpdateCounter += startupPcrChanges(PCR_COUNT, startupType === TPM_SU.STATE);
  // Dictionary-attack timers and a disorderly power loss (engine.daStartup, the reference's DAStartup).
  engine.daStartup(daUsed);
  // Part 1 §13.2 (the reference's HierarchyStartup): every Startup empties platformAuth and
  // platformPolicy — the platform firmware sets its own again on each boot — and all but a
  // Resume enable the platform's NV.
  state.auths.platform = { authValue: new Uint8Array(0), authPolicy: new Uint8Array(0), policyAlg: TPM_ALG.NULL };
  if (startupType !== TPM_SU.STATE) {
    state.phEnableNV = true;
    clearPcrAuthValues(state);
  }
  // Part 1 §36.6: after a power loss without Shutdown the stored Clock may lag, so safe is cleared.
  if (state.orderlyShutdown === 'none') state.clock.safe = false;
  volatile.phEnable = true;
  volatile.started = true;
  state.orderlyShutdown = 'none';
  state.savedState = null;
  // Counters, orderliness and NV locks changed: durable before the answer.
  ctx.persistentChanged = true;
  return ok<typeof Startup>({});
});

export const shutdownHandler = handler(Shutdown, (ctx, _h, { shutdownType }) => {
  const { engine } = ctx;
  const { state, volatile } = engine;
  if (shutdownType !== TPM_SU.CLEAR && shutdownType !== TPM_SU.STATE) throw new TpmError(rcForParameter(TPM_RC.VALUE, 1));
  // Part 3 §9.4: a pending PCR_Allocate takes effect only at a TPM Reset, so the state may not be saved for a Resume.
  if (shutdownType === TPM_SU.STATE && state.pendingPcrAllocation !== null) throw new TpmError(rcForParameter(TPM_RC.TYPE, 1));
  engine.syncClock();
  // The clock is now stored as current: the next Startup may trust it (Part 1 §36.6).
  state.clock.safe = true;
  // How far the DA timers ran, carried into the next power-on (engine.daShutdown).
  engine.daShutdown();
  if (shutdownType === TPM_SU.STATE) {
    state.savedState = {
      pcrs: [...volatile.pcrs].map(([hashAlg, values]) => ({
        hashAlg: hashAlg as never,
        values: values.map((v) => v.slice()),
      })),
      shEnable: volatile.shEnable,
      ehEnable: volatile.ehEnable,
      // Saved session contexts stay loadable after the Resume or Restart (the reference's gr.contextArray).
      ...volatile.sessions.savedContexts(),
      pcrUpdateCounter: volatile.pcrUpdateCounter,
    };
    state.orderlyShutdown = 'state';
  } else {
    state.savedState = null;
    state.orderlyShutdown = 'clear';
  }
  // Part 1 §36.8: the saved state must survive the power-off that follows.
  ctx.persistentChanged = true;
  return ok<typeof Shutdown>({});
});
