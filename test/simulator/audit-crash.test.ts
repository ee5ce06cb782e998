/**
 * Command audit across a crash: `trustroot tpm serve` killed with SIGKILL right
 * after an audited command answered. What must survive (reference
 * CommandAudit/TPM2_SetCommandCodeAuditStatus, NV_SYNC_PERSISTENT): the
 * audit counter, the audit hash and the list of audited commands. The digest is
 * state-reset data: the restart after a crash is a TPM Reset, which clears it
 * (Part 1 §32.2, reference CommandAuditStartup). The engine writes the state
 * after an audited command only when the counter moved (or the command changed
 * durable state), which the in-process check below counts.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GetCommandAuditDigest, GetRandom, SetCommandCodeAuditStatus, Startup } from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_CAP, TPM_CC, TPM_RH, TPM_ST, TPM_SU } from '../../src/tpm/constants.js';
import { readCapability } from '../../src/tpm/capability.js';
import { runCommand } from '../../src/tpm/run.js';
import { inProcessTransport, SwtpmTransport, type Transport } from '../../src/tpm/transport/index.js';
import type { TPMS_ATTEST } from '../../src/tpm/types/index.js';
import { TpmEngine } from '../../src/simulator/index.js';
import { startSimServer, type SimServerInstance } from '../support/sim-server.js';

const empty = new Uint8Array(0);

/** The unsigned command audit digest (signHandle TPM_RH_NULL does not clear it). */
async function auditInfo(t: Transport): Promise<{ auditCounter: bigint; digestAlg: number; auditDigest: Uint8Array }> {
  const r = await runCommand(t, GetCommandAuditDigest, { privacyHandle: TPM_RH.ENDORSEMENT, signHandle: TPM_RH.NULL }, { qualifyingData: empty, inScheme: { scheme: TPM_ALG.NULL } as never });
  return (r.params.auditInfo as TPMS_ATTEST & { type: typeof TPM_ST.ATTEST_COMMAND_AUDIT }).attested;
}

const getRandom = (t: Transport): Promise<unknown> => runCommand(t, GetRandom, {}, { bytesRequested: 8 });

describe('command audit across SIGKILL of trustroot tpm serve', () => {
  let root: string | undefined;
  const servers: SimServerInstance[] = [];
  const transports: SwtpmTransport[] = [];
  afterAll(async () => {
    for (const t of transports) await t.close().catch(() => undefined);
    for (const s of servers) await s.stop();
    if (root !== undefined) await rm(root, { recursive: true, force: true });
  });

  /** A server on the shared state folder, its transport, after Startup(CLEAR). */
  async function boot(): Promise<{ server: SimServerInstance; t: SwtpmTransport }> {
    root ??= await mkdtemp(join(tmpdir(), 'trustroot-audit-crash-'));
    const server = await startSimServer({ stateDir: join(root, 'state'), caDir: join(root, 'ca'), keepState: true });
    servers.push(server);
    const t = new SwtpmTransport({ port: server.port });
    transports.push(t);
    await runCommand(t, Startup, {}, { startupType: TPM_SU.CLEAR });
    return { server, t };
  }

  async function kill(server: SimServerInstance, t: SwtpmTransport): Promise<void> {
    process.kill(server.pid, 'SIGKILL');
    await server.stop();
    await t.close().catch(() => undefined);
  }

  it('the counter, hash and list survive; the digest is cleared by the TPM Reset; a counter step just before the kill is kept', async () => {
    const a = await boot();
    // A new audit hash (lists empty), then GetRandom audited: that command starts a digest (counter + 1).
    await runCommand(a.t, SetCommandCodeAuditStatus, { auth: TPM_RH.OWNER }, { auditAlg: TPM_ALG.SHA256, setList: [], clearList: [] });
    await runCommand(a.t, SetCommandCodeAuditStatus, { auth: TPM_RH.OWNER }, { auditAlg: TPM_ALG.NULL, setList: [GetRandom.code], clearList: [] });
    for (let i = 0; i < 3; i++) await getRandom(a.t);
    const before = await auditInfo(a.t);
    expect(before.digestAlg).toBe(TPM_ALG.SHA256);
    expect(before.auditDigest.length).toBe(32);
    await getRandom(a.t); // the last answer before the kill: an extend only
    await kill(a.server, a.t);

    const b = await boot();
    expect(await readCapability(b.t, TPM_CAP.AUDIT_COMMANDS)).toEqual([TPM_CC.GetRandom, TPM_CC.SetCommandCodeAuditStatus].sort((x, y) => x - y));
    const afterReset = await auditInfo(b.t);
    expect(afterReset.auditCounter).toBe(before.auditCounter);
    expect(afterReset.digestAlg).toBe(TPM_ALG.SHA256);
    expect(afterReset.auditDigest.length).toBe(0);
    // This GetRandom starts a new digest: the counter step must be durable before the answer.
    await getRandom(b.t);
    await kill(b.server, b.t);

    const c = await boot();
    const last = await auditInfo(c.t);
    expect(last.auditCounter).toBe(before.auditCounter + 1n);
    expect(last.auditDigest.length).toBe(0);
  }, 120_000);

  it('in process: an audited command writes the state when it starts a digest (counter step), not when it only extends', async () => {
    let writes = 0;
    const engine = new TpmEngine({ persist: () => ((writes += 1), Promise.resolve()) });
    const t = inProcessTransport(engine);
    await runCommand(t, Startup, {}, { startupType: TPM_SU.CLEAR });
    await runCommand(t, SetCommandCodeAuditStatus, { auth: TPM_RH.OWNER }, { auditAlg: TPM_ALG.NULL, setList: [GetRandom.code], clearList: [] });
    const afterSet = writes;
    expect(afterSet).toBeGreaterThan(0);
    const counter = engine.state.commandAudit.counter;
    for (let i = 0; i < 5; i++) await getRandom(t);
    expect(engine.state.commandAudit.counter).toBe(counter);
    expect(writes).toBe(afterSet);
  });
});
