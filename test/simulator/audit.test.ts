/**
 * Command audit and audit sessions in the simulator (Part 1 §32, Part 3
 * §18.5–18.6, §21.2): digests recomputed here with node:crypto, signatures
 * checked with node:crypto, state across restarts and layout migration, and
 * one scenario's codes and attested audit fields compared with swtpm.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Tpm, verifyWithNode, type Entity } from '../../src/client/index.js';
import { getCommandAuditDigest } from '../../src/client/attestation.js';
import { CreatePrimary, GetCommandAuditDigest, GetRandom, GetSessionAuditDigest, PCR_Read, SetCommandCodeAuditStatus, Startup, StartAuthSession } from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_CAP, TPM_CC, TPM_RH, TPM_SE, TPM_ST, TPM_SU } from '../../src/tpm/constants.js';
import { readCapability } from '../../src/tpm/capability.js';
import { objectName } from '../../src/tpm/names.js';
import { pcrSelection } from '../../src/tpm/pcr.js';
import { TpmError } from '../../src/tpm/rc.js';
import { runCommand } from '../../src/tpm/run.js';
import { inProcessTransport, type Transport } from '../../src/tpm/transport/index.js';
import { eccAkTemplate } from '../../src/tpm/templates.js';
import type { TPMS_ATTEST, TPMT_PUBLIC } from '../../src/tpm/types/index.js';
import { TpmEngine } from '../../src/simulator/index.js';
import { createSimulatorState, SIMULATOR_STATE_VERSION, STATE_MIGRATIONS } from '../../src/simulator/state.js';
import { validateSimulatorState } from '../../src/simulator/store.js';
import { describeWithSwtpm } from '../support/swtpm.js';
import { startedEngine, swtpmAndSimulator } from '../support/fixture.js';
import { sha256, u32 } from '../support/bytes.js';

const empty = new Uint8Array(0);
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');



async function akOf(tpm: Tpm): Promise<{ ak: Entity; pub: TPMT_PUBLIC }> {
  const r = await tpm.run(CreatePrimary, { primaryHandle: TPM_RH.ENDORSEMENT }, { inSensitive: { userAuth: empty, data: empty }, inPublic: eccAkTemplate(), outsideInfo: empty, creationPCR: [] });
  return { ak: { handle: r.handles.objectHandle, name: objectName(r.params.outPublic), authValue: empty }, pub: r.params.outPublic };
}

function codeOf(e: unknown): number {
  if (e instanceof TpmError) return e.rc;
  throw e;
}

describe('simulator audit', () => {
  // GetSessionAuditDigest over two audited calls is test/client/attestation.test.ts's, on both TPMs.
  it('GetCommandAuditDigest: commandDigest over the audited codes; a signed read clears the digest; the next is H(0 ‖ cpHash ‖ rpHash) and counts a new sequence', async () => {
    const { tpm } = await startedEngine();
    const { ak, pub } = await akOf(tpm);
    await tpm.run(SetCommandCodeAuditStatus, { auth: TPM_RH.OWNER }, { auditAlg: TPM_ALG.SHA256, setList: [], clearList: [] });
    await tpm.run(SetCommandCodeAuditStatus, { auth: TPM_RH.OWNER }, { auditAlg: TPM_ALG.NULL, setList: [GetRandom.code], clearList: [] });
    const first = await getCommandAuditDigest(tpm, ak, empty);
    expect(verifyWithNode(pub, first.attestBytes, first.signature)).toBe(true);
    expect(first.attest.attested.digestAlg).toBe(TPM_ALG.SHA256);
    expect(Buffer.from(first.attest.attested.commandDigest)).toEqual(sha256(u32(TPM_CC.SetCommandCodeAuditStatus), u32(TPM_CC.GetRandom)));
    // The second SetCommandCodeAuditStatus started the sequence (the first changed the hash: not recorded).
    const setCp = sha256(u32(TPM_CC.SetCommandCodeAuditStatus), u32(TPM_RH.OWNER), Buffer.from([0, 0x10, 0, 0, 0, 1]), u32(GetRandom.code), u32(0));
    const setRp = sha256(u32(0), u32(TPM_CC.SetCommandCodeAuditStatus));
    expect(hex(first.attest.attested.auditDigest)).toBe(hex(sha256(Buffer.alloc(32), setCp, setRp)));

    const r = await tpm.run(GetRandom, {}, { bytesRequested: 10 });
    const second = await getCommandAuditDigest(tpm, ak, new Uint8Array(randomBytes(16)));
    expect(verifyWithNode(pub, second.attestBytes, second.signature)).toBe(true);
    const cp = sha256(u32(TPM_CC.GetRandom), Buffer.from([0, 10]));
    const rp = sha256(u32(0), u32(TPM_CC.GetRandom), Buffer.from([0, 10]), r.params.randomBytes);
    expect(Buffer.from(second.attest.attested.auditDigest)).toEqual(sha256(Buffer.alloc(32), cp, rp));
    expect(second.attest.attested.auditCounter).toBe(first.attest.attested.auditCounter + 1n);
  });

  it('rules: hash and lists together are TPM_RC_VALUE on auditAlg; Shutdown and unknown codes are not set; SetCommandCodeAuditStatus cannot be cleared; a session that never audited is TPM_RC_TYPE', async () => {
    const { tpm, engine, t } = await startedEngine();
    const e = await tpm.run(SetCommandCodeAuditStatus, { auth: TPM_RH.OWNER }, { auditAlg: TPM_ALG.SHA384, setList: [GetRandom.code], clearList: [] }).catch((x: unknown) => x);
    expect(codeOf(e)).toBe(0x1c4); // TPM_RC_VALUE + RC_P + RC_1
    await tpm.run(SetCommandCodeAuditStatus, { auth: TPM_RH.PLATFORM }, { auditAlg: TPM_ALG.NULL, setList: [TPM_CC.Shutdown, 0x2000_0001, PCR_Read.code], clearList: [TPM_CC.SetCommandCodeAuditStatus] });
    expect(engine.state.commandAudit.commands).toEqual([TPM_CC.SetCommandCodeAuditStatus, PCR_Read.code]);
    expect(engine.isCommandAudited(TPM_CC.SetCommandCodeAuditStatus)).toBe(true);
    const s = await runCommand(t, StartAuthSession, { tpmKey: TPM_RH.NULL, bind: TPM_RH.NULL }, { nonceCaller: new Uint8Array(16), encryptedSalt: empty, sessionType: TPM_SE.HMAC, symmetric: { algorithm: TPM_ALG.NULL }, authHash: TPM_ALG.SHA256 });
    const e2 = await runCommand(t, GetSessionAuditDigest, { privacyAdminHandle: TPM_RH.ENDORSEMENT, signHandle: TPM_RH.NULL, sessionHandle: s.handles.sessionHandle }, { qualifyingData: empty, inScheme: { scheme: TPM_ALG.NULL } as never }).catch((x: unknown) => x);
    expect(codeOf(e2)).toBe(0x38a); // TPM_RC_TYPE + RC_H + RC_3
  });

  it('the digest and counter survive a restart (state), a TPM Reset clears the digest but not the counter', async () => {
    const { engine, tpm } = await startedEngine();
    await tpm.run(SetCommandCodeAuditStatus, { auth: TPM_RH.OWNER }, { auditAlg: TPM_ALG.NULL, setList: [PCR_Read.code], clearList: [] });
    await tpm.run(PCR_Read, {}, { pcrSelectionIn: [pcrSelection(TPM_ALG.SHA256, [0])] });
    const before = engine.commandAuditDigest();
    expect(before.length).toBe(64); // SHA-512 from manufacture, as libtpms
    const counter = engine.state.commandAudit.counter;
    expect(counter).toBe(1n);
    const copy = validateSimulatorState(structuredClone(engine.state));
    const again = new TpmEngine({ state: copy });
    expect(hex(again.commandAuditDigest())).toBe(hex(before));
    // _TPM_Init then Startup(CLEAR): a TPM Reset.
    engine.init();
    const t2 = inProcessTransport(engine);
    await runCommand(t2, Startup, {}, { startupType: TPM_SU.CLEAR });
    const r = await runCommand(t2, GetCommandAuditDigest, { privacyHandle: TPM_RH.ENDORSEMENT, signHandle: TPM_RH.NULL }, { qualifyingData: empty, inScheme: { scheme: TPM_ALG.NULL } as never });
    const info = (r.params.auditInfo as TPMS_ATTEST & { type: typeof TPM_ST.ATTEST_COMMAND_AUDIT }).attested;
    expect(info.auditDigest.length).toBe(0);
    expect(info.auditCounter).toBe(counter);
  });

  it('layout 2 → 3 migration: commandAudit gains an empty digest and counter 0, its NULL hash becomes SHA-512, and the result validates', () => {
    const current = createSimulatorState();
    const v2 = { ...current, version: 2, commandAudit: { hashAlg: TPM_ALG.NULL, commands: [PCR_Read.code] } };
    const v3 = STATE_MIGRATIONS[2]!(v2) as typeof current;
    expect(v3.version).toBe(3);
    expect(v3.commandAudit).toEqual({ hashAlg: TPM_ALG.SHA512, commands: [TPM_CC.SetCommandCodeAuditStatus, PCR_Read.code], digest: empty, counter: 0n, digestResetCount: 0 });
    // Later layouts' migrations keep commandAudit as it is.
    let latest: { version: number } = v3;
    while (latest.version < SIMULATOR_STATE_VERSION) latest = STATE_MIGRATIONS[latest.version]!(latest);
    const migrated = latest as typeof current;
    expect(validateSimulatorState(migrated).commandAudit.counter).toBe(0n);
    expect(() => validateSimulatorState({ ...migrated, commandAudit: { ...migrated.commandAudit, counter: -1n } } as never)).toThrow(/UINT64/);
  });
});

/**
 * One scenario; codes and attested audit fields logged (clock fields left out).
 * PCR_Read answers the TPM's pcrUpdateCounter (which depends on the power
 * cycles before), so its digests are logged as "equal to H(… ‖ cpHash ‖ rpHash)
 * recomputed here from that TPM's responses", and raw otherwise.
 */
async function scenario(t: Transport): Promise<string[]> {
  const log: string[] = [];
  const rc = async (label: string, f: () => Promise<unknown>): Promise<void> => {
    try {
      await f();
      log.push(`${label}: 0`);
    } catch (e) {
      log.push(`${label}: ${codeOf(e).toString(16)}`);
    }
  };
  const read = async (label: string, expected?: Uint8Array): Promise<void> => {
    const r = await runCommand(t, GetCommandAuditDigest, { privacyHandle: TPM_RH.ENDORSEMENT, signHandle: TPM_RH.NULL }, { qualifyingData: empty, inScheme: { scheme: TPM_ALG.NULL } as never });
    const a = (r.params.auditInfo as TPMS_ATTEST & { type: typeof TPM_ST.ATTEST_COMMAND_AUDIT }).attested;
    const digest = expected === undefined ? hex(a.auditDigest) : `recomputed ${hex(a.auditDigest) === hex(expected)}`;
    log.push(`${label}: counter ${a.auditCounter} alg ${a.digestAlg} digest ${digest} commands ${hex(a.commandDigest)}`);
  };
  const setParams = (auditAlg: number, setList: number[], clearList: number[]): Buffer =>
    Buffer.concat([Buffer.from([auditAlg >> 8, auditAlg & 0xff]), u32(setList.length), ...setList.map(u32), u32(clearList.length), ...clearList.map(u32)]);
  const setCp = (auditAlg: number, setList: number[], clearList: number[]): Buffer => sha256(u32(TPM_CC.SetCommandCodeAuditStatus), u32(TPM_RH.OWNER), setParams(auditAlg, setList, clearList));
  const setRp = sha256(u32(0), u32(TPM_CC.SetCommandCodeAuditStatus));
  const set = (auditAlg: number, setList: number[], clearList: number[]) => runCommand(t, SetCommandCodeAuditStatus, { auth: TPM_RH.OWNER }, { auditAlg, setList, clearList } as never);
  // TPML_PCR_SELECTION of SHA-256 PCRs 0, 1, 16.
  const selection = Buffer.from([0, 0, 0, 1, 0, 0x0b, 3, 0x03, 0x00, 0x01]);
  const pcrCp = sha256(u32(TPM_CC.PCR_Read), selection);
  let rp: Buffer = Buffer.alloc(0);
  const pcrRead = async () => {
    const r = await runCommand(t, PCR_Read, {}, { pcrSelectionIn: [pcrSelection(TPM_ALG.SHA256, [0, 1, 16])] });
    const values = Buffer.concat([u32(r.params.pcrValues.length), ...r.params.pcrValues.map((v) => Buffer.concat([Buffer.from([0, v.length]), v]))]);
    rp = sha256(u32(0), u32(TPM_CC.PCR_Read), u32(r.params.pcrUpdateCounter), selection, values);
  };
  let d: Buffer;
  log.push(`AUDIT_COMMANDS ${(await readCapability(t, TPM_CAP.AUDIT_COMMANDS)).map((c) => c.toString(16)).join(',')}`);
  await read('fresh');
  await rc('hash with a list', () => set(TPM_ALG.SHA256, [PCR_Read.code], []));
  await rc('hash sha256', () => set(TPM_ALG.SHA256, [], []));
  await read('after the hash change');
  await rc('set PCR_Read, Shutdown', () => set(TPM_ALG.NULL, [PCR_Read.code, TPM_CC.Shutdown], []));
  d = sha256(Buffer.alloc(32), setCp(TPM_ALG.NULL, [PCR_Read.code, TPM_CC.Shutdown], []), setRp);
  await rc('pcr read 1', pcrRead);
  d = sha256(d, pcrCp, rp);
  await rc('pcr read 2', pcrRead);
  d = sha256(d, pcrCp, rp);
  await read('two reads', d);
  await rc('same hash, clear PCR_Read and SetCommandCodeAuditStatus', () => set(TPM_ALG.SHA256, [], [PCR_Read.code, TPM_CC.SetCommandCodeAuditStatus]));
  d = sha256(d, setCp(TPM_ALG.SHA256, [], [PCR_Read.code, TPM_CC.SetCommandCodeAuditStatus]), setRp);
  await rc('pcr read 3 (not audited)', pcrRead);
  await read('after clear', d);
  await rc('hash sha384', () => set(TPM_ALG.SHA384, [], []));
  await rc('set GetCommandAuditDigest', () => set(TPM_ALG.NULL, [GetCommandAuditDigest.code], []));
  await read('audited read');
  log.push(`AUDIT_COMMANDS ${(await readCapability(t, TPM_CAP.AUDIT_COMMANDS)).map((c) => c.toString(16)).join(',')}`);
  const base = BigInt(/counter (\d+)/.exec(log[1]!)![1]!);
  return log.map((l) => l.replace(/counter (\d+)/, (_m, n: string) => `counter +${BigInt(n) - base}`));
}

/** Exclusive audit (Part 1 §19.6.14): which uses keep, take and lose exclusivity, as GetSessionAuditDigest and the codes report it. */
async function exclusiveScenario(t: Transport): Promise<string[]> {
  const tpm = new Tpm(t);
  const log: string[] = [];
  const s = await tpm.startAuthSession({ type: 'hmac' });
  const random = async (label: string, attrs: { auditReset?: boolean; auditExclusive?: boolean }): Promise<void> => {
    try {
      await tpm.run(GetRandom, {}, { bytesRequested: 4 }, { sessions: [s.use({ audit: true, ...attrs })] });
      log.push(`${label}: 0`);
    } catch (e) {
      log.push(`${label}: ${codeOf(e).toString(16)}`);
    }
  };
  const read = async (label: string): Promise<void> => {
    const r = await runCommand(t, GetSessionAuditDigest, { privacyAdminHandle: TPM_RH.ENDORSEMENT, signHandle: TPM_RH.NULL, sessionHandle: s.handle }, { qualifyingData: empty, inScheme: { scheme: TPM_ALG.NULL } as never });
    const a = (r.params.auditInfo as TPMS_ATTEST & { type: typeof TPM_ST.ATTEST_SESSION_AUDIT }).attested;
    log.push(`${label}: exclusive ${a.exclusiveSession} matches ${hex(a.sessionDigest) === hex(s.auditDigest!)}`);
  };
  await random('first audit', {});
  await read('after the first audit');
  // That read ran outside the session: exclusivity is gone.
  await random('continued', {});
  await read('after a read outside');
  await random('claims exclusive', { auditExclusive: true });
  await random('reset', { auditReset: true });
  await random('continued, claims exclusive', { auditExclusive: true });
  await read('after reset');
  await s.flush();
  return log;
}

describeWithSwtpm('simulator audit agrees with swtpm', () => {
  const tpms = swtpmAndSimulator();

  it('codes, hashes, audit digests, command digests and counter steps of one scenario', async () => {
    const ours = await scenario((await tpms.simulator()).probe);
    const theirs = await scenario(tpms.swtpm.probe);
    expect(ours).toEqual(theirs);
    expect(ours.filter((l) => l.includes('digest recomputed true'))).toHaveLength(2);
  });

  it('exclusive audit: taken by a first or reset audit, lost to a command outside the session, TPM_RC_EXCLUSIVE when claimed after', async () => {
    const ours = await exclusiveScenario((await tpms.simulator()).probe);
    const theirs = await exclusiveScenario(tpms.swtpm.probe);
    expect(ours).toEqual(theirs);
    expect(ours).toContain('after reset: exclusive 1 matches true');
    expect(ours).toContain('claims exclusive: 121'); // TPM_RC_EXCLUSIVE
  });
});
