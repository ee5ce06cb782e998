/**
 * PIN Pass and PIN Fail indices (Part 1 §37.2.3.5, Part 2 §13.4 TPM_NT and
 * §13.5 TPMS_NV_PIN_COUNTER_PARAMETERS) in the simulator: what NV_DefineSpace
 * allows, NV_Write of pinCount/pinLimit, the index's authValue as a PIN (a
 * PIN Pass index counts successes up to pinLimit, a PIN Fail index counts
 * failures and refuses at pinLimit, a success resetting it), their interplay
 * with dictionary-attack protection, NV_Read, PolicySecret and PolicyNV with
 * them — one scenario's codes and values compared with swtpm's.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { readCapability } from '../../src/tpm/capability.js';
import {
  DictionaryAttackLockReset,
  DictionaryAttackParameters,
  FlushContext,
  NV_DefineSpace,
  NV_Increment,
  NV_Read,
  NV_ReadPublic,
  NV_Write,
  PolicyGetDigest,
  PolicyNV,
  PolicySecret,
  StartAuthSession,
} from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_CAP, TPM_EO, TPM_NT, TPM_PT, TPM_RH, TPM_SE } from '../../src/tpm/constants.js';
import { TPM_RC } from '../../src/tpm/rc.js';
import { passwordAuth, runCommand } from '../../src/tpm/run.js';
import type { Transport } from '../../src/tpm/transport/index.js';
import { TPMA_NV, TPMS_NV_PIN_COUNTER_PARAMETERS } from '../../src/tpm/types/index.js';
import { decode, encode } from '../../src/tpm/wire/codec.js';
import { TpmEngine } from '../../src/simulator/index.js';
import { scenarioLog } from '../support/scenario.js';
import { tpmRejection } from '../support/probe.js';
import { describeWithSwtpm } from '../support/swtpm.js';
import { startedEngine, swtpmAndSimulator } from '../support/fixture.js';

const EMPTY = new Uint8Array(0);
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const PIN = Uint8Array.of(1, 2, 3, 4);
const WRONG = Uint8Array.of(4, 3, 2, 1);

const PASS = 0x01500201;
const FAIL = 0x01500202;
const PASS_DA = 0x01500203;
const PLAIN = 0x01500204;

function nvPublic(index: number, attrs: Partial<TPMA_NV>, dataSize = 8) {
  return { nvIndex: index, nameAlg: TPM_ALG.SHA256, attributes: TPMA_NV.of(attrs), authPolicy: EMPTY, dataSize } as never;
}

function define(t: Transport, index: number, attrs: Partial<TPMA_NV>, dataSize = 8) {
  return runCommand(t, NV_DefineSpace, { authHandle: TPM_RH.OWNER }, { auth: PIN, publicInfo: nvPublic(index, attrs, dataSize) });
}

function pinData(pinCount: number, pinLimit: number): Uint8Array {
  return encode(TPMS_NV_PIN_COUNTER_PARAMETERS, { pinCount, pinLimit });
}

function ownerWrite(t: Transport, index: number, data: Uint8Array) {
  return runCommand(t, NV_Write, { authHandle: TPM_RH.OWNER, nvIndex: index }, { data, offset: 0 });
}

function ownerRead(t: Transport, index: number) {
  return runCommand(t, NV_Read, { authHandle: TPM_RH.OWNER, nvIndex: index }, { size: 8, offset: 0 });
}

/** NV_Read authorized by the index itself with the PIN `pin` (a password). */
function pinRead(t: Transport, index: number, pin: Uint8Array) {
  return runCommand(t, NV_Read, { authHandle: index, nvIndex: index }, { size: 8, offset: 0 }, { sessions: [passwordAuth(pin)] });
}

const counts = (r: { params: { data: Uint8Array } }): string => {
  const p = decode(TPMS_NV_PIN_COUNTER_PARAMETERS, r.params.data);
  return `${p.pinCount}/${p.pinLimit}`;
};

async function policySession(t: Transport): Promise<number> {
  const r = await runCommand(
    t,
    StartAuthSession,
    { tpmKey: TPM_RH.NULL, bind: TPM_RH.NULL },
    { nonceCaller: randomBytes(16), encryptedSalt: EMPTY, sessionType: TPM_SE.POLICY, symmetric: { algorithm: TPM_ALG.NULL } as never, authHash: TPM_ALG.SHA256 },
  );
  return r.handles.sessionHandle;
}

async function lockoutCounter(t: Transport): Promise<number | undefined> {
  return (await readCapability(t, TPM_CAP.TPM_PROPERTIES, [TPM_PT.LOCKOUT_COUNTER])).find((p) => p.property === TPM_PT.LOCKOUT_COUNTER)?.value;
}

/** The PIN scenario; per step 0 or the response code, and the values both TPMs must agree on. */
async function scenario(t: Transport): Promise<Record<string, unknown>> {
  const { log, step } = scenarioLog();
  const readWrite = { OWNERWRITE: true, OWNERREAD: true };
  // NV_DefineSpace: the rules of PIN indices (Part 2 §13.4).
  await step('PIN Fail without NO_DA', () => define(t, FAIL, { TPM_NT: TPM_NT.PIN_FAIL, ...readWrite }));
  await step('PIN Fail with AUTHWRITE', () => define(t, FAIL, { TPM_NT: TPM_NT.PIN_FAIL, NO_DA: true, AUTHWRITE: true, OWNERREAD: true }));
  await step('PIN Pass with AUTHWRITE', () => define(t, PASS, { TPM_NT: TPM_NT.PIN_PASS, AUTHWRITE: true, OWNERREAD: true }));
  await step('PIN Pass with GLOBALLOCK', () => define(t, PASS, { TPM_NT: TPM_NT.PIN_PASS, GLOBALLOCK: true, ...readWrite }));
  await step('PIN Pass with WRITEDEFINE', () => define(t, PASS, { TPM_NT: TPM_NT.PIN_PASS, WRITEDEFINE: true, ...readWrite }));
  await step('PIN Pass of 4 bytes', () => define(t, PASS, { TPM_NT: TPM_NT.PIN_PASS, ...readWrite }, 4));
  await step('ordinary with CLEAR_STCLEAR and WRITEDEFINE', () => define(t, PLAIN, { CLEAR_STCLEAR: true, WRITEDEFINE: true, AUTHREAD: true, AUTHWRITE: true }));
  await step('ordinary WRITEALL beyond the NV buffer', () => define(t, PLAIN, { WRITEALL: true, AUTHREAD: true, AUTHWRITE: true }, 1100));
  await step('define PIN Pass', () => define(t, PASS, { TPM_NT: TPM_NT.PIN_PASS, NO_DA: true, ...readWrite }));
  await step('define PIN Fail', () => define(t, FAIL, { TPM_NT: TPM_NT.PIN_FAIL, NO_DA: true, ...readWrite }));
  await step('define PIN Pass, DA-protected', () => define(t, PASS_DA, { TPM_NT: TPM_NT.PIN_PASS, ...readWrite }));
  await step('define ordinary, owner-only', () => define(t, PLAIN, readWrite));

  // An index's authValue where the attributes do not offer it: TPM_RC_AUTH_UNAVAILABLE (reference IsAuthValueAvailable).
  await step('owner writes the ordinary index', () => ownerWrite(t, PLAIN, pinData(1, 2)));
  await step('ordinary read with its authValue, no AUTHREAD', () => pinRead(t, PLAIN, PIN));
  await step('ordinary write with its authValue, no AUTHWRITE', () =>
    runCommand(t, NV_Write, { authHandle: PLAIN, nvIndex: PLAIN }, { data: PIN, offset: 0 }, { sessions: [passwordAuth(PIN)] }),
  );

  // PIN Pass: unwritten, the PIN is unusable; then each good use counts up to pinLimit.
  await step('PIN Pass unwritten', () => pinRead(t, PASS, PIN));
  await step('PIN Pass NV_Increment', () => runCommand(t, NV_Increment, { authHandle: TPM_RH.OWNER, nvIndex: PASS }, {}));
  await step('PIN Pass partial write', () => runCommand(t, NV_Write, { authHandle: TPM_RH.OWNER, nvIndex: PASS }, { data: Uint8Array.of(0, 0, 0, 2), offset: 4 }));
  await step('PIN Pass after a partial write', () => ownerRead(t, PASS), counts);
  await step('PIN Pass write 0/2', () => ownerWrite(t, PASS, pinData(0, 2)));
  await step('PIN Pass Name', () => runCommand(t, NV_ReadPublic, { nvIndex: PASS }, {}), (r) => hex(r.params.nvName));
  await step('PIN Pass good 1', () => pinRead(t, PASS, PIN), counts);
  await step('PIN Pass wrong (NO_DA)', () => pinRead(t, PASS, WRONG));
  await step('PIN Pass after a wrong PIN', () => ownerRead(t, PASS), counts);
  await step('PIN Pass good 2', () => pinRead(t, PASS, PIN), counts);
  await step('PIN Pass at its limit', () => pinRead(t, PASS, PIN));
  await step('PIN Pass wrong at its limit', () => pinRead(t, PASS, WRONG));
  await step('PIN Pass owner read at the limit', () => ownerRead(t, PASS), counts);
  // PolicySecret with a PIN Pass index counts as a use; its ticket would not, so there is none.
  await step('PIN Pass raised to 0/3', () => ownerWrite(t, PASS, pinData(0, 3)));
  const s = await policySession(t);
  await step('PolicySecret PIN Pass', () =>
    runCommand(t, PolicySecret, { authHandle: PASS, policySession: s }, { nonceTPM: EMPTY, cpHashA: EMPTY, policyRef: EMPTY, expiration: -100 }, { sessions: [passwordAuth(PIN)] }),
  (r) => ({ timeout: r.params.timeout.length, ticket: r.params.policyTicket.tag }));
  await step('PolicySecret PIN Pass: digest', () => runCommand(t, PolicyGetDigest, { policySession: s }, {}), (r) => hex(r.params.policyDigest));
  await step('PIN Pass after PolicySecret', () => ownerRead(t, PASS), counts);
  // PolicyNV authorized by the PIN itself (no AUTHREAD needed for a PIN index) counts too.
  await step('PolicyNV by the PIN Pass index', () =>
    runCommand(t, PolicyNV, { authHandle: PASS, nvIndex: PASS, policySession: s }, { operandB: Uint8Array.of(0, 0, 0, 1), offset: 0, operation: TPM_EO.UNSIGNED_GT }, { sessions: [passwordAuth(PIN)] }),
  );
  await step('PolicyNV by the owner: limit 3', () =>
    runCommand(t, PolicyNV, { authHandle: TPM_RH.OWNER, nvIndex: PASS, policySession: s }, { operandB: Uint8Array.of(0, 0, 0, 3), offset: 4, operation: TPM_EO.EQ }),
  );
  await step('PolicyNV: digest', () => runCommand(t, PolicyGetDigest, { policySession: s }, {}), (r) => hex(r.params.policyDigest));
  await step('PIN Pass after PolicyNV', () => ownerRead(t, PASS), counts);

  // PIN Fail: failures count (BAD_AUTH: NO_DA), a success forgets them, pinLimit failures lock the PIN.
  await step('PIN Fail unwritten', () => pinRead(t, FAIL, PIN));
  await step('PIN Fail write 0/2', () => ownerWrite(t, FAIL, pinData(0, 2)));
  await step('PIN Fail wrong 1', () => pinRead(t, FAIL, WRONG));
  await step('PIN Fail after one failure', () => ownerRead(t, FAIL), counts);
  await step('PIN Fail good', () => pinRead(t, FAIL, PIN), counts);
  await step('PIN Fail wrong 1 again', () => pinRead(t, FAIL, WRONG));
  await step('PolicySecret PIN Fail wrong', () =>
    runCommand(t, PolicySecret, { authHandle: FAIL, policySession: s }, { nonceTPM: EMPTY, cpHashA: EMPTY, policyRef: EMPTY, expiration: 0 }, { sessions: [passwordAuth(WRONG)] }),
  );
  await step('PIN Fail at its limit', () => ownerRead(t, FAIL), counts);
  await step('PIN Fail good PIN at its limit', () => pinRead(t, FAIL, PIN));
  await step('PolicySecret PIN Fail at its limit', () =>
    runCommand(t, PolicySecret, { authHandle: FAIL, policySession: s }, { nonceTPM: EMPTY, cpHashA: EMPTY, policyRef: EMPTY, expiration: 0 }, { sessions: [passwordAuth(PIN)] }),
  );
  await step('PIN Fail owner resets 0/2', () => ownerWrite(t, FAIL, pinData(0, 2)));
  await step('PIN Fail good after the reset', () => pinRead(t, FAIL, PIN), counts);
  await step('PolicySecret PIN Fail good', () =>
    runCommand(t, PolicySecret, { authHandle: FAIL, policySession: s }, { nonceTPM: EMPTY, cpHashA: EMPTY, policyRef: EMPTY, expiration: -100 }, { sessions: [passwordAuth(PIN)] }),
  (r) => ({ timeout: r.params.timeout.length, ticket: r.params.policyTicket.tag }));
  await runCommand(t, FlushContext, {}, { flushHandle: s });

  // A DA-protected PIN Pass index: a wrong PIN is a DA failure (and no use); in lockout the PIN is refused, a NO_DA PIN Fail index is not.
  await step('DA maxTries 2', () => runCommand(t, DictionaryAttackParameters, { lockHandle: TPM_RH.LOCKOUT }, { newMaxTries: 2, newRecoveryTime: 1000, lockoutRecovery: 1000 }));
  await step('DA PIN Pass write 0/5', () => ownerWrite(t, PASS_DA, pinData(0, 5)));
  await step('DA PIN Pass good', () => pinRead(t, PASS_DA, PIN), counts);
  await step('DA PIN Pass wrong 1', () => pinRead(t, PASS_DA, WRONG));
  log['LOCKOUT_COUNTER after a wrong PIN'] = await lockoutCounter(t);
  await step('DA PIN Pass wrong 2', () => pinRead(t, PASS_DA, WRONG));
  await step('DA PIN Pass good in lockout', () => pinRead(t, PASS_DA, PIN));
  await step('DA PIN Pass count after lockout', () => ownerRead(t, PASS_DA), counts);
  await step('PIN Fail good in lockout', () => pinRead(t, FAIL, PIN), counts);
  await step('DA lock reset', () => runCommand(t, DictionaryAttackLockReset, { lockHandle: TPM_RH.LOCKOUT }, {}));
  await step('DA PIN Pass good after the reset', () => pinRead(t, PASS_DA, PIN), counts);
  log['LOCKOUT_COUNTER at the end'] = await lockoutCounter(t);
  return log;
}

describe('simulator PIN indices', () => {
  it('a PIN Fail index refuses its PIN at pinLimit failures and its count survives a restart', async () => {
    const { engine, t } = await startedEngine();
    await define(t, FAIL, { TPM_NT: TPM_NT.PIN_FAIL, NO_DA: true, OWNERWRITE: true, OWNERREAD: true });
    await ownerWrite(t, FAIL, pinData(0, 3));
    for (let i = 0; i < 3; i++) expect((await tpmRejection(pinRead(t, FAIL, WRONG))).is(TPM_RC.BAD_AUTH)).toBe(true);
    expect((await tpmRejection(pinRead(t, FAIL, PIN))).is(TPM_RC.AUTH_UNAVAILABLE)).toBe(true);
    // The count lives in the index, so another engine on the same state (a restart) still refuses.
    const { t: again } = await startedEngine(new TpmEngine({ state: engine.state }));
    expect(counts(await ownerRead(again, FAIL))).toBe('3/3');
    expect((await tpmRejection(pinRead(again, FAIL, PIN))).is(TPM_RC.AUTH_UNAVAILABLE)).toBe(true);
  });

  it('a failed PIN is made durable before the answer', async () => {
    let saves = 0;
    const { t } = await startedEngine(new TpmEngine({ persist: async () => void saves++ }));
    await define(t, FAIL, { TPM_NT: TPM_NT.PIN_FAIL, NO_DA: true, OWNERWRITE: true, OWNERREAD: true });
    await ownerWrite(t, FAIL, pinData(0, 3));
    saves = 0;
    await tpmRejection(pinRead(t, FAIL, WRONG));
    expect(saves).toBe(1);
  });
});

describeWithSwtpm('simulator PIN indices agree with swtpm', () => {
  const tpms = swtpmAndSimulator();

  it('the same PIN scenario gives the same codes, counts and digests', async () => {
    const { theirs, ours } = await tpms.both((side) => scenario(side.probe));
    expect(ours).toEqual(theirs);
  }, 60_000);
});
