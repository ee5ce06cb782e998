import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Tpm, describe as describeClient } from '../../src/client/index.js';
import { ALL_COMMANDS, GetRandom, PCR_Event, PCR_Extend, PCR_Read, PCR_Reset, ReadClock, Shutdown, Startup, commandByCode } from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_CAP, TPM_CC, TPM_PT, TPM_RH, TPM_SU } from '../../src/tpm/constants.js';
import { encodeCommand, parseResponse } from '../../src/tpm/frame.js';
import { readCapability } from '../../src/tpm/capability.js';
import { pcrSelection, readPcrs } from '../../src/tpm/pcr.js';
import { TPM_RC, TpmError, isRc } from '../../src/tpm/rc.js';
import { runCommand } from '../../src/tpm/run.js';
import { inProcessTransport } from '../../src/tpm/transport/index.js';
import { TpmEngine } from '../../src/simulator/index.js';
import { fuzzSimulator, recordClientSession } from '../../fuzz/simulator.js';
import { startedEngine } from '../support/fixture.js';

const ALGS = { [TPM_ALG.SHA1]: 'sha1', [TPM_ALG.SHA256]: 'sha256', [TPM_ALG.SHA384]: 'sha384', [TPM_ALG.SHA512]: 'sha512' } as const;
type Bank = keyof typeof ALGS;
const h = (alg: Bank, ...parts: Uint8Array[]): Uint8Array => {
  const c = createHash(ALGS[alg]);
  for (const p of parts) c.update(p);
  return new Uint8Array(c.digest());
};

function rcOf(bytes: Uint8Array): number {
  return new DataView(bytes.buffer, bytes.byteOffset).getUint32(6);
}

describe('TpmEngine', () => {
  it('answers only Startup before it is started, and Startup only once', async () => {
    const engine = new TpmEngine();
    const t = inProcessTransport(engine);
    await expect(runCommand(t, GetRandom, {}, { bytesRequested: 8 })).rejects.toSatisfy((e) => isRc(e, TPM_RC.INITIALIZE));
    await runCommand(t, Startup, {}, { startupType: TPM_SU.CLEAR });
    await expect(runCommand(t, Startup, {}, { startupType: TPM_SU.CLEAR })).rejects.toSatisfy((e) => isRc(e, TPM_RC.INITIALIZE));
    // Startup(STATE) with no Shutdown(STATE) before it is refused.
    engine.init();
    await expect(runCommand(t, Startup, {}, { startupType: TPM_SU.STATE })).rejects.toSatisfy((e) => e instanceof TpmError && e.is(TPM_RC.VALUE) && e.parameter === 1);
  });

  it('GetRandom returns at most a SHA-512 digest of fresh bytes', async () => {
    const { t } = await startedEngine();
    const a = (await runCommand(t, GetRandom, {}, { bytesRequested: 32 })).params.randomBytes;
    const b = (await runCommand(t, GetRandom, {}, { bytesRequested: 32 })).params.randomBytes;
    expect(a.length).toBe(32);
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(false);
    expect((await runCommand(t, GetRandom, {}, { bytesRequested: 1000 })).params.randomBytes.length).toBe(64);
  });

  it('describes itself through GetCapability as trustroot\'s software TPM', async () => {
    const { engine, t } = await startedEngine();
    const d = await describeClient(new Tpm(t));
    expect(d.manufacturer).toBe('TRST');
    expect(d.vendorString).toMatch(/trustroot/);
    expect(d.firmwareVersion).toBe((0n << 48n) | (1n << 32n) | 0n);
    expect(d.limits).toMatchObject({ loadedObjects: 3, loadedSessions: 3, nvBufferMax: 1024, maxCommandSize: 4096, pcrCount: 24 });
    expect([...d.commands].sort((a, b) => a - b)).toEqual(engine.implementedCommands());
    expect(d.commands).toContain(TPM_CC.PCR_Extend);
    expect(d.commands).not.toContain(TPM_CC.FieldUpgradeStart); // not in the core's command set
    expect(d.pcrBanks.map((b) => [b.hashAlg, b.pcrs.length])).toEqual([TPM_ALG.SHA1, TPM_ALG.SHA256, TPM_ALG.SHA384, TPM_ALG.SHA512].map((a) => [a, 24]));
    expect(d.eccCurves.length).toBeGreaterThan(0);
    // Paging: one property at a time gives the same list as whole pages.
    const whole = await readCapability(t, TPM_CAP.TPM_PROPERTIES);
    const one: number[] = [];
    for (const start of [TPM_PT.FAMILY_INDICATOR, TPM_PT.PERMANENT]) {
    let next: number | undefined = start;
    while (next !== undefined) {
      const { params } = await runCommand(t, commandByCode(TPM_CC.GetCapability)!, {}, { capability: TPM_CAP.TPM_PROPERTIES, property: next, propertyCount: 1 } as never);
      const data = (params as { moreData: number; capabilityData: { data: { property: number }[] } });
      one.push(...data.capabilityData.data.map((p) => p.property));
      next = data.moreData === 1 ? data.capabilityData.data[0]!.property + 1 : undefined;
    }
    }
    expect(one).toEqual(whole.map((p) => p.property));
    const handles = await readCapability(t, TPM_CAP.HANDLES, [TPM_RH.OWNER & 0xff000000]);
    expect(handles).toEqual(expect.arrayContaining([TPM_RH.OWNER, TPM_RH.ENDORSEMENT, TPM_RH.PLATFORM, TPM_RH.LOCKOUT, TPM_RH.NULL]));
    const pcrProps = await readCapability(t, TPM_CAP.PCR_PROPERTIES);
    expect(pcrProps.length).toBeGreaterThan(10);
  });

  it('PCR_Extend, PCR_Event and PCR_Read agree with hashes computed here', async () => {
    const { t } = await startedEngine();
    const before = await readPcrs(t);
    expect(before.get(TPM_ALG.SHA256)!.get(0)).toEqual(new Uint8Array(32));
    expect(before.get(TPM_ALG.SHA256)!.get(17)).toEqual(new Uint8Array(32).fill(0xff));
    const d256 = h(TPM_ALG.SHA256, new TextEncoder().encode('measurement'));
    const d1 = h(TPM_ALG.SHA1, new TextEncoder().encode('measurement'));
    await runCommand(t, PCR_Extend, { pcrHandle: 7 }, { digests: [{ hashAlg: TPM_ALG.SHA256, digest: d256 }, { hashAlg: TPM_ALG.SHA1, digest: d1 }] });
    const event = new TextEncoder().encode('an event');
    const ev = await runCommand(t, PCR_Event, { pcrHandle: 8 }, { eventData: event });
    expect(ev.params.digests.map((d) => d.hashAlg)).toEqual([TPM_ALG.SHA1, TPM_ALG.SHA256, TPM_ALG.SHA384, TPM_ALG.SHA512]);
    const after = await readPcrs(t);
    for (const alg of [TPM_ALG.SHA1, TPM_ALG.SHA256, TPM_ALG.SHA384, TPM_ALG.SHA512] as Bank[]) {
      const zero = new Uint8Array(h(alg).length);
      const expected7 = alg === TPM_ALG.SHA256 ? h(alg, zero, d256) : alg === TPM_ALG.SHA1 ? h(alg, zero, d1) : zero;
      expect(after.get(alg)!.get(7)).toEqual(expected7);
      expect(after.get(alg)!.get(8)).toEqual(h(alg, zero, h(alg, event)));
    }
    // PCR_Read returns at most 8 values and names exactly those it returned.
    const r = await runCommand(t, PCR_Read, {}, { pcrSelectionIn: [pcrSelection(TPM_ALG.SHA256, Array.from({ length: 24 }, (_, i) => i))] });
    expect(r.params.pcrValues.length).toBe(8);
    expect(Array.from(r.params.pcrSelectionOut[0]!.pcrSelect)).toEqual([0xff, 0, 0]);
    // Startup counted the 20 PCRs it reset (all but 16 and 21–23, as libtpms), then the two changes above.
    expect(r.params.pcrUpdateCounter).toBe(20 + 2);
  });

  it('PCR_Reset and PCR_Extend follow the PC Client locality rules', async () => {
    const { t } = await startedEngine();
    const dig = [{ hashAlg: TPM_ALG.SHA256, digest: new Uint8Array(32).fill(1) }];
    for (const pcr of [16, 23]) {
      await runCommand(t, PCR_Extend, { pcrHandle: pcr }, { digests: dig });
      await runCommand(t, PCR_Reset, { pcrHandle: pcr }, {}, { locality: 3 });
      expect((await readPcrs(t, [pcrSelection(TPM_ALG.SHA256, [pcr])])).get(TPM_ALG.SHA256)!.get(pcr)).toEqual(new Uint8Array(32));
    }
    await expect(runCommand(t, PCR_Reset, { pcrHandle: 0 }, {})).rejects.toSatisfy((e) => isRc(e, TPM_RC.LOCALITY));
    await expect(runCommand(t, PCR_Reset, { pcrHandle: 17 }, {}, { locality: 3 })).rejects.toSatisfy((e) => isRc(e, TPM_RC.LOCALITY));
    await expect(runCommand(t, PCR_Extend, { pcrHandle: 17 }, { digests: dig })).rejects.toSatisfy((e) => isRc(e, TPM_RC.LOCALITY));
    await runCommand(t, PCR_Extend, { pcrHandle: 17 }, { digests: dig }, { locality: 2 });
    // Locality 4 resets the DRTM PCRs only through the DRTM sequence, never with PCR_Reset (reference PCRIsResetAllowed).
    await expect(runCommand(t, PCR_Reset, { pcrHandle: 17 }, {}, { locality: 4 })).rejects.toSatisfy((e) => isRc(e, TPM_RC.LOCALITY));
    await runCommand(t, PCR_Reset, { pcrHandle: 20 }, {}, { locality: 2 });
    await expect(runCommand(t, PCR_Reset, { pcrHandle: 20 }, {}, { locality: 1 })).rejects.toSatisfy((e) => isRc(e, TPM_RC.LOCALITY));
    const v = await readPcrs(t, [pcrSelection(TPM_ALG.SHA256, [17, 18, 20])]);
    const ones = new Uint8Array(32).fill(0xff);
    expect(v.get(TPM_ALG.SHA256)!.get(17)).toEqual(new Uint8Array(createHash('sha256').update(ones).update(dig[0]!.digest).digest()));
    expect(v.get(TPM_ALG.SHA256)!.get(18)).toEqual(ones);
    expect(v.get(TPM_ALG.SHA256)!.get(20)).toEqual(new Uint8Array(32));
  });

  it('ReadClock follows the clock option and counts resets and restarts', async () => {
    let ms = 1000;
    const { engine, t } = await startedEngine(new TpmEngine({ now: () => ms }));
    ms += 2500;
    const c1 = (await runCommand(t, ReadClock, {}, {})).params.currentTime;
    expect(c1.time).toBe(2500n);
    expect(c1.clockInfo).toMatchObject({ clock: 2500n, resetCount: 1, restartCount: 0, safe: 1 });
    // Shutdown(STATE) + Startup(STATE): TPM Resume, PCR 0–15 kept, restartCount + 1.
    await runCommand(t, PCR_Extend, { pcrHandle: 0 }, { digests: [{ hashAlg: TPM_ALG.SHA256, digest: new Uint8Array(32).fill(2) }] });
    const pcr0 = (await readPcrs(t, [pcrSelection(TPM_ALG.SHA256, [0])])).get(TPM_ALG.SHA256)!.get(0);
    await runCommand(t, Shutdown, {}, { shutdownType: TPM_SU.STATE });
    engine.init();
    ms += 100;
    await runCommand(t, Startup, {}, { startupType: TPM_SU.STATE });
    const c2 = (await runCommand(t, ReadClock, {}, {})).params.currentTime;
    expect(c2.time).toBe(100n); // Time restarts at _TPM_Init
    expect(c2.clockInfo).toMatchObject({ clock: 2600n, resetCount: 1, restartCount: 1, safe: 1 });
    expect((await readPcrs(t, [pcrSelection(TPM_ALG.SHA256, [0])])).get(TPM_ALG.SHA256)!.get(0)).toEqual(pcr0);
    // Power loss without Shutdown: TPM Reset with safe = NO.
    engine.init();
    await runCommand(t, Startup, {}, { startupType: TPM_SU.CLEAR });
    const c3 = (await runCommand(t, ReadClock, {}, {})).params.currentTime;
    expect(c3.clockInfo).toMatchObject({ resetCount: 2, restartCount: 0, safe: 0 });
    expect((await readPcrs(t, [pcrSelection(TPM_ALG.SHA256, [0])])).get(TPM_ALG.SHA256)!.get(0)).toEqual(new Uint8Array(32));
  });

  it('answers framing errors with the right response codes', async () => {
    const { engine } = await startedEngine();
    const good = encodeCommand(GetRandom, {}, { bytesRequested: 8 });
    expect(rcOf(await engine.execute(new Uint8Array(3)))).toBe(TPM_RC.BAD_TAG);
    const badSize = good.slice();
    badSize[5] = 99;
    expect(rcOf(await engine.execute(badSize))).toBe(TPM_RC.COMMAND_SIZE);
    const badCode = good.slice();
    badCode[9] = 0x01; // 0x00000101: no such command
    expect(rcOf(await engine.execute(badCode))).toBe(TPM_RC.COMMAND_CODE);
    // A command of the core's set that the engine does not implement (yet): the code is refused before its handles or parameters are read.
    const missing = ALL_COMMANDS.map((c) => c.code).find((c) => !engine.implementedCommands().includes(c));
    if (missing !== undefined) {
      const unimpl = good.slice();
      new DataView(unimpl.buffer, unimpl.byteOffset).setUint32(6, missing);
      expect(rcOf(await engine.execute(unimpl))).toBe(TPM_RC.COMMAND_CODE);
    }
    // A handle that needs authorization but no session: AUTH_MISSING.
    const noAuth = encodeCommand(PCR_Reset, { pcrHandle: 16 }, {}, { sessions: [] });
    expect(rcOf(await engine.execute(noAuth))).toBe(TPM_RC.AUTH_MISSING);
    // A wrong password on PCR 16 (whose authValue is empty).
    const wrong = encodeCommand(PCR_Reset, { pcrHandle: 16 }, {}, { sessions: [{ sessionHandle: TPM_RH.PW, nonce: new Uint8Array(0), sessionAttributes: { continueSession: true } as never, hmac: new Uint8Array([1]) }] });
    const rc = rcOf(await engine.execute(wrong));
    expect(new TpmError(rc).is(TPM_RC.BAD_AUTH)).toBe(true);
    expect(new TpmError(rc).session).toBe(1);
    // Extra bytes after the parameters.
    const trailing = new Uint8Array([...good, 0]);
    new DataView(trailing.buffer).setUint32(2, trailing.length);
    expect(rcOf(await engine.execute(trailing))).toBe(TPM_RC.SIZE);
    // A response is still well formed after all of this.
    expect(parseResponse(GetRandom, await engine.execute(good)).params.randomBytes.length).toBe(8);
  });

  it('survives 20,000 fuzzed commands seeded from a recording in which every implemented command succeeds; still answers GetRandom; each segment\'s state round-trips the store, and the final one, saved through the store, loads into a fresh engine that answers', async () => {
    // fuzz/simulator.ts: the same fuzz as `npm run fuzz -- --only simulator`, scaled down, fixed seed.
    const session = await recordClientSession();
    // A step may fail only on a command this build does not implement yet.
    expect(session.failedSteps.filter((f) => !f.includes('TPM_RC_COMMAND_CODE'))).toEqual([]);
    // Every implemented command succeeds in the recording, and again when the fuzz engine replays it: a command
    // without a seed that reaches its handler fails here.
    const implemented = new TpmEngine().implementedCommands();
    const name = (c: number): string => commandByCode(c)?.name ?? `0x${c.toString(16)}`;
    const sorted = (codes: Iterable<number>): string[] => [...codes].sort((a, b) => a - b).map(name);
    expect(sorted(session.succeeded)).toEqual(sorted(implemented));
    const stats = await fuzzSimulator({ seed: 42, iterations: 20_000, session });
    expect(stats.untyped).toEqual([]);
    expect(stats.inputs).toBe(20_000);
    expect(sorted(stats.seedCodes)).toEqual(sorted(implemented));
    // Replays on the restored state are the recording again (the fourth segment's, on the fuzzed state, are not).
    expect(stats.replays).toBe(10);
    expect(stats.replaySuccesses / stats.replayedCommands).toBeGreaterThan(0.9);
    // Mutations reach the handlers: some succeed, and many distinct response codes come back.
    expect(stats.successes).toBeGreaterThan(200);
    expect(stats.codes.size).toBeGreaterThan(60);
    expect(stats.stateChecks).toBe(10);
    expect(stats.reloaded).toBe(true);
  }, 90_000);
});
