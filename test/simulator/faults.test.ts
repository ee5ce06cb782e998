import { beforeAll, describe, expect, it } from 'vitest';
import { compareEkPublicKey, parseCertificate } from '../../src/attest/ekcert.js';
import { Tpm, createPrimary, getRandom, nvDefine, nvRead, nvReadPublic, nvWrite, readEkCertificates, type RetryEvent } from '../../src/client/index.js';
import { DictionaryAttackLockReset, GetCapability, GetRandom, GetTestResult, Startup } from '../../src/tpm/commands/index.js';
import { TPM_CAP, TPM_CC, TPM_PT, TPM_RH, TPM_SU } from '../../src/tpm/constants.js';
import { TPM_RC, TpmError } from '../../src/tpm/rc.js';
import { passwordAuth, runCommand } from '../../src/tpm/run.js';
import { eccEkTemplate } from '../../src/tpm/templates.js';
import { inProcessTransport } from '../../src/tpm/transport/index.js';
import { TpmEngine } from '../../src/simulator/index.js';
import { corruptNvIndex, enterLockout } from '../../src/simulator/faults.js';
import { EK_CERTIFICATE_INDICES, createSoftwareTpmCa, type SoftwareTpmCa } from '../../src/simulator/manufacture.js';
import { rcOf } from '../support/probe.js';
import { startedEngine } from '../support/fixture.js';

const FAST_RETRY = { initialDelayMs: 1, maxDelayMs: 2, jitter: 0 } as const;

/** startedEngine's engine under a client with the retry options under test. */
async function started(engine: TpmEngine, retry: ConstructorParameters<typeof Tpm>[1] = {}): Promise<Tpm> {
  return new Tpm((await startedEngine(engine)).t, retry);
}


describe('simulator faults: RETRY / YIELDED', () => {
  it('the client retries through TPM_RC_RETRY answered 3 times and gets the command done', async () => {
    const engine = new TpmEngine();
    const events: RetryEvent[] = [];
    const tpm = await started(engine, { retry: { ...FAST_RETRY, onRetry: (e) => events.push(e) } });
    engine.faults.retry({ times: 3 });
    const bytes = await getRandom(tpm, 16);
    expect(bytes.length).toBe(16);
    expect(events.map((e) => e.rc)).toEqual([TPM_RC.RETRY, TPM_RC.RETRY, TPM_RC.RETRY]);
    expect(engine.faults.retriesLeft).toBe(0);
  });

  it('YIELDED only for the listed command: other commands run at once, the listed one recovers', async () => {
    const engine = new TpmEngine();
    const events: RetryEvent[] = [];
    const tpm = await started(engine, { retry: { ...FAST_RETRY, onRetry: (e) => events.push(e) } });
    engine.faults.retry({ rc: TPM_RC.YIELDED, times: 2, commands: [TPM_CC.CreatePrimary] });
    await getRandom(tpm, 8);
    expect(events).toEqual([]);
    const key = await createPrimary(tpm, TPM_RH.OWNER, eccEkTemplate());
    expect(events.map((e) => [e.commandCode, e.rc])).toEqual([
      [TPM_CC.CreatePrimary, TPM_RC.YIELDED],
      [TPM_CC.CreatePrimary, TPM_RC.YIELDED],
    ]);
    await tpm.flush(key);
  });

  it('without retries, or when the warnings outlast the attempts, the warning reaches the caller', async () => {
    const engine = new TpmEngine({ faults: { retry: { times: 1 } } });
    const t = inProcessTransport(engine);
    // The fault answers before the INITIALIZE check: even Startup gets it once.
    expect(await rcOf(runCommand(t, Startup, {}, { startupType: TPM_SU.CLEAR }))).toBe(TPM_RC.RETRY);
    await runCommand(t, Startup, {}, { startupType: TPM_SU.CLEAR });
    const bare = new Tpm(t, { retry: false });
    engine.faults.retry({ times: 1 });
    expect(await rcOf(bare.run(GetRandom, {}, { bytesRequested: 4 }))).toBe(TPM_RC.RETRY);
    const retrying = new Tpm(t, { retry: { ...FAST_RETRY, maxAttempts: 3 } });
    engine.faults.retry({ times: 5 });
    expect(await rcOf(retrying.run(GetRandom, {}, { bytesRequested: 4 }))).toBe(TPM_RC.RETRY);
    expect(engine.faults.retriesLeft).toBe(2);
  });

  it('refuses nonsense options', () => {
    expect(() => new TpmEngine({ faults: { retry: { times: -1 } } })).toThrow(RangeError);
    expect(() => new TpmEngine({ faults: { retry: { rc: TPM_RC.FAILURE as never, times: 1 } } })).toThrow(RangeError);
    expect(() => new TpmEngine({ faults: { objectMemory: 1.5 } })).toThrow(RangeError);
    expect(() => new TpmEngine({ faults: { ekCertificatePadding: 513 } })).toThrow(RangeError);
  });
});

describe('simulator faults: failure mode', () => {
  it('GetTestResult reports TPM_RC_FAILURE with the reason; GetCapability still answers; everything else fails', async () => {
    const engine = new TpmEngine();
    const tpm = await started(engine);
    const before = await tpm.run(GetTestResult, {}, {});
    expect(before.params.testResult).toBe(TPM_RC.SUCCESS);
    engine.faults.enterFailureMode('injected: RSA self-test failed');
    const r = await tpm.run(GetTestResult, {}, {});
    expect(r.params.testResult).toBe(TPM_RC.FAILURE);
    expect(new TextDecoder().decode(r.params.outData)).toBe('injected: RSA self-test failed');
    const cap = await tpm.run(GetCapability, {}, { capability: TPM_CAP.TPM_PROPERTIES, property: TPM_PT.MANUFACTURER, propertyCount: 1 });
    expect(cap.params.capabilityData.capability).toBe(TPM_CAP.TPM_PROPERTIES);
    expect(await rcOf(getRandom(tpm, 4))).toBe(TPM_RC.FAILURE);
    expect(await rcOf(createPrimary(tpm, TPM_RH.OWNER, eccEkTemplate()))).toBe(TPM_RC.FAILURE);
    expect(engine.faults.failureMode).toBe('injected: RSA self-test failed');
  });

  it('an engine made in failure mode answers FAILURE even to Startup', async () => {
    const engine = new TpmEngine({ faults: { failureMode: 'boot' } });
    expect(await rcOf(runCommand(inProcessTransport(engine), Startup, {}, { startupType: TPM_SU.CLEAR }))).toBe(TPM_RC.FAILURE);
  });
});

describe('simulator faults: exhausted memory', () => {
  it('the next N commands that need an object slot answer TPM_RC_OBJECT_MEMORY; others are not affected', async () => {
    const engine = new TpmEngine({ faults: { objectMemory: 2 } });
    const tpm = await started(engine, { retry: false });
    await getRandom(tpm, 4);
    expect(await rcOf(createPrimary(tpm, TPM_RH.OWNER, eccEkTemplate()))).toBe(TPM_RC.OBJECT_MEMORY);
    expect(await rcOf(createPrimary(tpm, TPM_RH.OWNER, eccEkTemplate()))).toBe(TPM_RC.OBJECT_MEMORY);
    const key = await createPrimary(tpm, TPM_RH.OWNER, eccEkTemplate());
    expect(engine.volatile.objects.has(key.handle)).toBe(true);
  });

  it('the next N commands that need a session slot answer TPM_RC_SESSION_MEMORY', async () => {
    const engine = new TpmEngine();
    const tpm = await started(engine, { retry: false });
    engine.faults.exhaustSessionMemory(1);
    // An object slot is not a session slot.
    const key = await createPrimary(tpm, TPM_RH.OWNER, eccEkTemplate());
    await tpm.flush(key);
    expect(await rcOf(tpm.startAuthSession())).toBe(TPM_RC.SESSION_MEMORY);
    const session = await tpm.startAuthSession();
    expect(engine.volatile.sessions.get(session.handle)).toBeDefined();
  });
});

describe('simulator faults: lockout and NV corruption', () => {
  it('enterLockout: a DA-protected authValue answers TPM_RC_LOCKOUT; with lockoutAuth, lockoutAuth too', async () => {
    const engine = new TpmEngine();
    const tpm = await started(engine, { retry: false });
    const authValue = new Uint8Array([1, 2, 3]);
    const nv = await nvDefine(tpm, { index: 0x01500020, size: 8, authValue });
    await nvWrite(tpm, nv, new Uint8Array(8).fill(7));
    expect(await nvRead(tpm, nv)).toEqual(new Uint8Array(8).fill(7));
    expect(await rcOf(runCommand(tpm.channel, DictionaryAttackLockReset, { lockHandle: TPM_RH.LOCKOUT }, {}, { sessions: [passwordAuth()] }))).toBe(TPM_RC.SUCCESS);
    enterLockout(engine.state, { lockoutAuth: true });
    expect(await rcOf(nvRead(tpm, nv))).toBe(TPM_RC.LOCKOUT);
    expect(await rcOf(runCommand(tpm.channel, DictionaryAttackLockReset, { lockHandle: TPM_RH.LOCKOUT }, {}, { sessions: [passwordAuth()] }))).toBe(TPM_RC.LOCKOUT);
  });

  it('corruptNvIndex flips bytes of the written data; NV_Read returns the corrupted bytes', async () => {
    const engine = new TpmEngine();
    const tpm = await started(engine, { retry: false });
    const nv = await nvDefine(tpm, { index: 0x01500021, size: 4 });
    await nvWrite(tpm, nv, new Uint8Array([0x10, 0x20, 0x30, 0x40]));
    corruptNvIndex(engine.state, 0x01500021, { offsets: [1, 3] });
    expect(await nvRead(tpm, nv)).toEqual(new Uint8Array([0x10, 0xdf, 0x30, 0xbf]));
    corruptNvIndex(engine.state, 0x01500021, { mask: 0x01 });
    expect(await nvRead(tpm, nv)).toEqual(new Uint8Array([0x11, 0xdf, 0x30, 0xbf]));
    expect(() => corruptNvIndex(engine.state, 0x01500021, { offsets: [4] })).toThrow(TpmError);
    expect(() => corruptNvIndex(engine.state, 0x01500099)).toThrow(TpmError);
  });
});

describe('simulator faults: padded EK certificates', () => {
  let ca: SoftwareTpmCa;
  beforeAll(() => {
    ca = createSoftwareTpmCa();
  });

  it('the index holds the DER and 48 zero bytes; the attest parser drops them and reports the quirk; the key still matches', async () => {
    const tpm = await started(new TpmEngine({ manufacture: { ca }, faults: { ekCertificatePadding: 48 } }));
    const plain = await started(new TpmEngine({ manufacture: { ca } }));
    const index = await nvReadPublic(tpm, EK_CERTIFICATE_INDICES.eccP256);
    const stored = await nvRead(tpm, index);
    const unpadded = (await readEkCertificates(plain)).find((c) => c.template === 'L-2')!.der;
    const parsed = parseCertificate(stored);
    expect(stored.length).toBe(parsed.der.length + 48);
    expect(stored.subarray(parsed.der.length)).toEqual(new Uint8Array(48));
    // Without padding the same engine setup stores exactly the DER.
    expect(parseCertificate(unpadded).der.length).toBe(unpadded.length);
    expect(parsed.quirks.map((q) => q.code)).toEqual(['der.trailing-data']);
    expect(parsed.quirks[0]!.detail).toContain('NV padding');
    const ek = await createPrimary(tpm, TPM_RH.ENDORSEMENT, eccEkTemplate());
    expect(compareEkPublicKey(parsed, ek.publicArea).outcome).toBe('pass');
    // The client's reader drops the padding itself.
    const certs = await readEkCertificates(tpm);
    expect(certs.find((c) => c.template === 'L-2')!.der).toEqual(parsed.der);
  });
});
