/**
 * PCR authorization groups (Part 3 §22.6 PCR_SetAuthPolicy, §22.7
 * PCR_SetAuthValue) on the simulator and on swtpm, one scenario logged on
 * both with scenarioLog and compared whole: which PCRs are in the groups
 * (libtpms: 20–22 in each), how a group's authValue and policy then
 * authorize PCR_Extend / PCR_Event / PCR_Reset (password, HMAC and policy
 * sessions), the refusals (a PCR outside the group, a digest of the wrong
 * size, an unimplemented hash, a PCR that does not exist), and what
 * survives which reset: the policy every one, the authValue only a
 * Shutdown(STATE) + Startup(STATE); Clear empties the authValue.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { password, type Entity } from '../../src/client/index.js';
import {
  Clear,
  GetCapability,
  PCR_Event,
  PCR_Extend,
  PCR_Read,
  PCR_Reset,
  PCR_SetAuthPolicy,
  PCR_SetAuthValue,
  PolicyCommandCode,
  Shutdown,
  Startup,
} from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_CAP, TPM_CC, TPM_PT_PCR, TPM_RH, TPM_SU } from '../../src/tpm/constants.js';
import { handleName } from '../../src/tpm/names.js';
import { pcrIndices, pcrSelection } from '../../src/tpm/pcr.js';
import { PolicyCalculator } from '../../src/tpm/policy.js';
import { TPM_RC, rcForParameter } from '../../src/tpm/rc.js';
import { runCommand } from '../../src/tpm/run.js';
import { TpmEngine } from '../../src/simulator/index.js';
import { openSimulatorStore } from '../../src/simulator/store.js';
import { scenarioLog, type ScenarioLog } from '../support/scenario.js';
import { describeWithSwtpm } from '../support/swtpm.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DiffSide } from '../support/differential.js';
import { startedEngine, swtpmAndSimulator } from '../support/fixture.js';

const SHA256 = TPM_ALG.SHA256;
const EMPTY = new Uint8Array(0);
const bytes = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'utf8'));
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
/** PCR 20–22 extend at locality 2 on both TPMs (PC Client: 20 at 1–3, 21–22 at 2). */
const LOC = { locality: 2 };

/** One TPM of the pair (a differential side): a client, and _TPM_Init (power cycle) without a Startup. */
type Side = Pick<DiffSide, 'tpm' | 'init' | 'stop'>;

/** `engine` after Startup(CLEAR), as a side (the tests of the simulator alone pass engines of their own). */
async function simulatorSide(engine = new TpmEngine()): Promise<Side> {
  const { t, tpm } = await startedEngine(engine);
  return { tpm, init: async () => engine.init(), stop: () => t.close() };
}

/** A PCR handle with the authValue the client should use for it (HMAC sessions, passwords by default). */
const pcr = (index: number, authValue: Uint8Array = EMPTY): Entity => ({ handle: index, name: handleName(index), authValue });

const digestOf = (data: string): Uint8Array => new Uint8Array(createHash('sha256').update(data).digest());
const extendDigests = (data: string) => [{ hashAlg: SHA256, digest: digestOf(data) }] as never;

/** PolicyCommandCode(code) under SHA-256: the policy the scenario sets on the group. */
const commandCodePolicy = (code: number, hashAlg: number = SHA256): Uint8Array => new PolicyCalculator(hashAlg).policyCommandCode({ code }).digest;

/** The scenario both TPMs run; every step's code, and the SHA-256 values of PCR 20–22 (deterministic on both). */
async function scenario(side: Side): Promise<ScenarioLog> {
  const { tpm } = side;
  const log = scenarioLog();
  const read = (label: string) =>
    log.step(label, () => tpm.run(PCR_Read, {}, { pcrSelectionIn: [pcrSelection(SHA256, [20, 21, 22])] }), (r) => r.params.pcrValues.map(hex));
  const extend = (label: string, index: number, auth: Uint8Array) =>
    log.step(label, () => tpm.run(PCR_Extend, { pcrHandle: pcr(index, auth) }, { digests: extendDigests(label) }, LOC));
  const setValue = (label: string, index: number, value: Uint8Array, auth: Uint8Array = EMPTY) =>
    log.step(label, () => tpm.run(PCR_SetAuthValue, { pcrHandle: pcr(index, auth) }, { auth: value }));
  const setPolicy = (label: string, pcrNum: number, hashAlg: number, authPolicy: Uint8Array) =>
    log.step(label, () => tpm.run(PCR_SetAuthPolicy, { authHandle: TPM_RH.PLATFORM }, { authPolicy, hashAlg: hashAlg as never, pcrNum }));
  /** PCR_Extend authorized by a policy session (hash `hashAlg`) that ran PolicyCommandCode(code). */
  const extendByPolicy = (label: string, index: number, code: number, hashAlg: number = SHA256) =>
    log.step(label, () =>
      tpm.withSession({ type: 'policy', hashAlg }, async (s) => {
        await tpm.run(PolicyCommandCode, { policySession: s }, { code });
        return tpm.run(PCR_Extend, { pcrHandle: index }, { digests: extendDigests(label) }, { ...LOC, sessions: [s.use({ continueSession: false })] });
      }),
    );

  await log.step(
    'GetCapability(PCR_PROPERTIES) POLICY, AUTH',
    () => tpm.run(GetCapability, {}, { capability: TPM_CAP.PCR_PROPERTIES, property: TPM_PT_PCR.POLICY, propertyCount: 2 }),
    (r) => (r.params.capabilityData.data as { tag: number; pcrSelect: Uint8Array }[]).map((p) => [p.tag, pcrIndices({ hash: SHA256, pcrSelect: p.pcrSelect })]),
  );
  await read('PCR 20–22 at start');

  // PCR_SetAuthValue: the group's authValue, authorized by the current one (empty).
  await setValue('SetAuthValue PCR 0 (no group)', 0, bytes('x'));
  await setValue('SetAuthValue PCR 16 (no group)', 16, bytes('x'));
  await setValue('SetAuthValue PCR 23 (no group)', 23, bytes('x'));
  await setValue('SetAuthValue PCR 20', 20, bytes('secret'));
  await extend('Extend PCR 20, empty password', 20, EMPTY);
  await extend('Extend PCR 20, the authValue', 20, bytes('secret'));
  await extend('Extend PCR 21 (same group), the authValue', 21, bytes('secret'));
  await extend('Extend PCR 22 (same group), a wrong password', 22, bytes('wrong'));
  await log.step('Extend PCR 16 (no group), empty password', () => tpm.run(PCR_Extend, { pcrHandle: 16 }, { digests: extendDigests('16') }));
  await log.step('Extend PCR 20 in an HMAC session with the authValue', () =>
    tpm.withSession({ type: 'hmac' }, (s) => tpm.run(PCR_Extend, { pcrHandle: pcr(20, bytes('secret')) }, { digests: extendDigests('hmac') }, { ...LOC, sessions: [s.use({ continueSession: false })] })),
  );
  await log.step('Extend PCR 20 in an HMAC session with a wrong authValue', () =>
    tpm.withSession({ type: 'hmac' }, (s) => tpm.run(PCR_Extend, { pcrHandle: pcr(20, bytes('nope')) }, { digests: extendDigests('hmac2') }, { ...LOC, sessions: [s.use({ continueSession: false })] })),
  );
  await log.step('Event PCR 21, the authValue', () => tpm.run(PCR_Event, { pcrHandle: pcr(21, bytes('secret')) }, { eventData: bytes('event') }, LOC), (r) => r.params.digests.length);
  await log.step('Reset PCR 20, a wrong password', () => tpm.run(PCR_Reset, { pcrHandle: pcr(20, bytes('wrong')) }, {}, LOC));
  await read('PCR 20–22 after the extends');
  await log.step('Reset PCR 20, the authValue', () => tpm.run(PCR_Reset, { pcrHandle: pcr(20, bytes('secret')) }, {}, LOC));
  await setValue('SetAuthValue PCR 21 without the old authValue', 21, bytes('other'));
  await setValue('SetAuthValue PCR 21 with trailing zeros', 21, bytes('ab\0\0'), bytes('secret'));
  await extend('Extend PCR 22, the authValue without its zeros', 22, bytes('ab'));
  await read('PCR 20–22 after a reset');

  // PCR_SetAuthPolicy (platform): checks in libtpms's order, then the policy in use.
  await setPolicy('SetAuthPolicy PCR 0 (no group)', 0, SHA256, commandCodePolicy(TPM_CC.PCR_Extend));
  await setPolicy('SetAuthPolicy PCR 23 (no group)', 23, SHA256, commandCodePolicy(TPM_CC.PCR_Extend));
  await setPolicy('SetAuthPolicy digest of the wrong size', 20, SHA256, new Uint8Array(20));
  await setPolicy('SetAuthPolicy NULL with a digest', 20, TPM_ALG.NULL, new Uint8Array(32));
  await setPolicy('SetAuthPolicy unimplemented hash (SM3)', 20, TPM_ALG.SM3_256, new Uint8Array(32));
  await setPolicy('SetAuthPolicy PCR 24 (not a PCR)', 24, SHA256, commandCodePolicy(TPM_CC.PCR_Extend));
  await setPolicy('SetAuthPolicy wrong size and no group', 5, SHA256, new Uint8Array(3));
  await log.step('SetAuthPolicy with a wrong platform password', () =>
    tpm.run(PCR_SetAuthPolicy, { authHandle: TPM_RH.PLATFORM }, { authPolicy: EMPTY, hashAlg: TPM_ALG.NULL as never, pcrNum: 20 }, { sessions: [password(bytes('no'))] }),
  );
  await extendByPolicy('Extend PCR 20 by policy before any is set', 20, TPM_CC.PCR_Extend);
  await extendByPolicy('Extend PCR 16 by policy (no group)', 16, TPM_CC.PCR_Extend);
  await setPolicy('SetAuthPolicy PCR 20: PolicyCommandCode(PCR_Extend)', 20, SHA256, commandCodePolicy(TPM_CC.PCR_Extend));
  await extendByPolicy('Extend PCR 21 by the policy', 21, TPM_CC.PCR_Extend);
  await extendByPolicy('Extend PCR 22 by a policy for another command', 22, TPM_CC.PCR_Reset);
  await extendByPolicy('Extend PCR 22 by a SHA-1 session', 22, TPM_CC.PCR_Extend, TPM_ALG.SHA1);
  // With a policy set, the group's PCRs take only policy sessions.
  await extend('Extend PCR 22 by password while a policy is set', 22, bytes('ab'));
  await setValue('SetAuthValue PCR 22 by password while a policy is set', 22, bytes('z'), bytes('ab'));
  await read('PCR 20–22 after the policies');

  // The policy survives a TPM Restart and a TPM Resume.
  await log.step('Shutdown(CLEAR)', () => tpm.run(Shutdown, {}, { shutdownType: TPM_SU.CLEAR }));
  await side.init();
  await log.step('Startup(CLEAR)', () => runCommand(side.tpm.channel, Startup, {}, { startupType: TPM_SU.CLEAR }));
  await extendByPolicy('after Startup(CLEAR): Extend PCR 21 by the policy', 21, TPM_CC.PCR_Extend);
  await log.step('Shutdown(STATE)', () => tpm.run(Shutdown, {}, { shutdownType: TPM_SU.STATE }));
  await side.init();
  await log.step('Startup(STATE)', () => runCommand(side.tpm.channel, Startup, {}, { startupType: TPM_SU.STATE }));
  await extendByPolicy('after Startup(STATE): Extend PCR 21 by the policy', 21, TPM_CC.PCR_Extend);
  await setPolicy('SetAuthPolicy PCR 22: none (NULL)', 22, TPM_ALG.NULL, EMPTY);
  await extendByPolicy('Extend PCR 21 by policy after it was removed', 21, TPM_CC.PCR_Extend);

  // The authValue: a TPM Restart empties it, a TPM Resume keeps it.
  await setValue('SetAuthValue PCR 20 before Shutdown(CLEAR)', 20, bytes('kept?'));
  await log.step('Shutdown(CLEAR) 2', () => tpm.run(Shutdown, {}, { shutdownType: TPM_SU.CLEAR }));
  await side.init();
  await log.step('Startup(CLEAR) 2', () => runCommand(side.tpm.channel, Startup, {}, { startupType: TPM_SU.CLEAR }));
  await extend('after Startup(CLEAR): Extend PCR 20, the old authValue', 20, bytes('kept?'));
  await extend('after Startup(CLEAR): Extend PCR 20, empty password', 20, EMPTY);
  await setValue('SetAuthValue PCR 20 before Shutdown(STATE)', 20, bytes('resumed'));
  await log.step('Shutdown(STATE) 2', () => tpm.run(Shutdown, {}, { shutdownType: TPM_SU.STATE }));
  await side.init();
  await log.step('Startup(STATE) 2', () => runCommand(side.tpm.channel, Startup, {}, { startupType: TPM_SU.STATE }));
  await extend('after Startup(STATE): Extend PCR 20, the authValue', 20, bytes('resumed'));

  // PCR_SetAuthValue after Shutdown(STATE) changes state-clear data: no Resume then.
  await log.step('Shutdown(STATE) 3', () => tpm.run(Shutdown, {}, { shutdownType: TPM_SU.STATE }));
  await setValue('SetAuthValue PCR 20 after Shutdown(STATE)', 20, bytes('late'), bytes('resumed'));
  await side.init();
  await log.step('Startup(STATE) after the change', () => runCommand(side.tpm.channel, Startup, {}, { startupType: TPM_SU.STATE }));
  await log.step('Startup(CLEAR) instead', () => runCommand(side.tpm.channel, Startup, {}, { startupType: TPM_SU.CLEAR }));

  // Clear empties the authValue and keeps the policy.
  await setValue('SetAuthValue PCR 20 before Clear', 20, bytes('cleared?'));
  await setPolicy('SetAuthPolicy PCR 20 before Clear', 20, SHA256, commandCodePolicy(TPM_CC.PCR_Extend));
  await log.step('Clear', () => tpm.run(Clear, { authHandle: TPM_RH.PLATFORM }, {}));
  await extendByPolicy('after Clear: Extend PCR 22 by the policy', 22, TPM_CC.PCR_Extend);
  await setPolicy('SetAuthPolicy PCR 20: none, after Clear', 20, TPM_ALG.NULL, EMPTY);
  await extend('after Clear: Extend PCR 20, empty password', 20, EMPTY);
  await read('PCR 20–22 at the end');
  return log;
}

const rc = (code: number): string => `0x${code.toString(16)}`;

describe('simulator PCR_SetAuthPolicy / PCR_SetAuthValue', () => {
  it('the scenario on the simulator alone: the groups, the authorizations and the resets behave as Part 3 §22.6–§22.7', async () => {
    const side = await simulatorSide();
    try {
      const { log } = await scenario(side);
      expect(log['GetCapability(PCR_PROPERTIES) POLICY, AUTH']).toEqual([
        [TPM_PT_PCR.POLICY, [20, 21, 22]],
        [TPM_PT_PCR.AUTH, [20, 21, 22]],
      ]);
      expect(log['SetAuthValue PCR 0 (no group)']).toBe(rc(TPM_RC.VALUE));
      expect(log['SetAuthValue PCR 20']).toBe(0);
      expect(log['Extend PCR 20, empty password']).not.toBe(0);
      expect(log['Extend PCR 20, the authValue']).toBe(0);
      expect(log['Extend PCR 21 (same group), the authValue']).toBe(0);
      expect(log['Extend PCR 20 in an HMAC session with the authValue']).toBe(0);
      expect(log['Extend PCR 22, the authValue without its zeros']).toBe(0);
      expect(log['SetAuthPolicy PCR 0 (no group)']).toBe(rc(rcForParameter(TPM_RC.VALUE, 3)));
      expect(log['SetAuthPolicy digest of the wrong size']).toBe(rc(rcForParameter(TPM_RC.SIZE, 1)));
      expect(log['Extend PCR 16 by policy (no group)']).toBe(rc(TPM_RC.AUTH_UNAVAILABLE));
      expect(log['Extend PCR 21 by the policy']).toBe(0);
      expect(log['Extend PCR 22 by password while a policy is set']).toBe(rc(TPM_RC.AUTH_TYPE));
      expect(log['after Startup(CLEAR): Extend PCR 21 by the policy']).toBe(0);
      expect(log['after Startup(STATE): Extend PCR 21 by the policy']).toBe(0);
      expect(log['after Startup(CLEAR): Extend PCR 20, the old authValue']).not.toBe(0);
      expect(log['after Startup(CLEAR): Extend PCR 20, empty password']).toBe(0);
      expect(log['after Startup(STATE): Extend PCR 20, the authValue']).toBe(0);
      expect(log['Startup(STATE) after the change']).not.toBe(0);
      expect(log['after Clear: Extend PCR 20, empty password']).toBe(0);
      expect(log['after Clear: Extend PCR 22 by the policy']).toBe(0);
    } finally {
      await side.stop();
    }
  });

  it('the policy is in the state file (survives a restart of the process); the authValue goes with the next Startup(CLEAR)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'trustroot-pcr-auth-'));
    try {
      const first = await openSimulatorStore(dir, { create: true });
      const engine = new TpmEngine({ state: first.state, persist: (s) => first.store.save(s) });
      const side = await simulatorSide(engine);
      const policy = commandCodePolicy(TPM_CC.PCR_Extend);
      // The authValue first: once the group has a policy, only a policy session may change it.
      await side.tpm.run(PCR_SetAuthValue, { pcrHandle: 22 }, { auth: bytes('v') });
      await side.tpm.run(PCR_SetAuthPolicy, { authHandle: TPM_RH.PLATFORM }, { authPolicy: policy, hashAlg: SHA256 as never, pcrNum: 21 });
      await side.stop();
      await first.store.close();
      const second = await openSimulatorStore(dir);
      try {
        expect(second.state.pcrAuthPolicies).toEqual([{ hashAlg: SHA256, policy }]);
        expect(second.state.pcrAuthValues).toEqual([bytes('v')]);
        // simulatorSide sends Startup(CLEAR): a TPM Reset after the restart.
        const again = await simulatorSide(new TpmEngine({ state: second.state }));
        expect(second.state.pcrAuthValues).toEqual([EMPTY]);
        expect(second.state.pcrAuthPolicies[0]!.policy).toEqual(policy);
        await again.stop();
      } finally {
        await second.store.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describeWithSwtpm('simulator PCR authorization agrees with swtpm', () => {
  const tpms = swtpmAndSimulator();

  it('the same codes at every step and the same PCR values', async () => {
    const { theirs: expected, ours: got } = await tpms.both(scenario);
    expect(got.log).toEqual(expected.log);
  });
});
