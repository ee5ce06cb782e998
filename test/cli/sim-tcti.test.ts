/**
 * The `sim:` TCTI (src/cli/sim-tcti.ts): registered by the CLI's program(),
 * it opens our software TPM in process, ephemeral or kept in a state folder.
 * What the TPM keeps is checked through the store's file and a second open.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTransport, tctiSchemes } from '../../src/client/tcti.js';
import { EXIT } from '../../src/cli/attest.js';
import { program } from '../../src/cli/main.js';
import { parseSimTcti, registerSimTcti, SIM_TCTI_SCHEME } from '../../src/cli/sim-tcti.js';
import { STATE_FILE_NAME } from '../../src/simulator/store.js';
import { readCapability } from '../../src/tpm/capability.js';
import { GetRandom, NV_DefineSpace, NV_Read, NV_Write, Shutdown, Startup } from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_CAP, TPM_PT, TPM_RH, TPM_SU } from '../../src/tpm/constants.js';
import { StateError, TctiError } from '../../src/tpm/errors.js';
import { isRc, TPM_RC } from '../../src/tpm/rc.js';
import { runCommand } from '../../src/tpm/run.js';
import type { Transport } from '../../src/tpm/transport/index.js';
import { TPMA_NV } from '../../src/tpm/types/index.js';

const NV_INDEX = 0x01500020;
const EMPTY = new Uint8Array(0);
/** 'TRST' (design.md "Identity"). */
const TRST = 0x54525354;

async function manufacturer(t: Transport): Promise<number | undefined> {
  const props = await readCapability(t, TPM_CAP.TPM_PROPERTIES, [TPM_PT.MANUFACTURER]);
  return props.find((p) => p.property === TPM_PT.MANUFACTURER)?.value;
}

async function defineAndWrite(t: Transport, data: Uint8Array): Promise<void> {
  await runCommand(t, NV_DefineSpace, { authHandle: TPM_RH.OWNER }, {
    auth: EMPTY,
    publicInfo: { nvIndex: NV_INDEX, nameAlg: TPM_ALG.SHA256, attributes: TPMA_NV.of({ OWNERREAD: true, OWNERWRITE: true, NO_DA: true }), authPolicy: EMPTY, dataSize: data.length },
  });
  await runCommand(t, NV_Write, { authHandle: TPM_RH.OWNER, nvIndex: NV_INDEX }, { data, offset: 0 });
}

const nvRead = async (t: Transport, size: number): Promise<Uint8Array> =>
  (await runCommand(t, NV_Read, { authHandle: TPM_RH.OWNER, nvIndex: NV_INDEX }, { size, offset: 0 })).params.data;

describe('sim: TCTI strings', () => {
  it('parses "" (ephemeral) and state=DIR (resolved against the working folder); refuses other keys', () => {
    expect(parseSimTcti('')).toEqual({ stateDir: undefined });
    expect(parseSimTcti('state=/var/tpm')).toEqual({ stateDir: '/var/tpm' });
    expect(parseSimTcti('state=tpm', '/home/me')).toEqual({ stateDir: '/home/me/tpm' });
    for (const bad of ['path=/x', 'state=', 'state=a,state=b', 'state']) {
      const e = (() => {
        try {
          parseSimTcti(bad);
        } catch (x) {
          return x;
        }
        return undefined;
      })();
      expect(e, bad).toBeInstanceOf(TctiError);
      expect((e as TctiError).code).toBe('tcti.invalid');
    }
  });

  it("the CLI's program() registers sim (once, however often it is built)", () => {
    const io = { stdout: () => undefined, stderr: () => undefined };
    program({ io, exitCode: EXIT.ACCEPT });
    program({ io, exitCode: EXIT.ACCEPT });
    expect(tctiSchemes()).toContain(SIM_TCTI_SCHEME);
    registerSimTcti(); // a no-op now, not a duplicate-scheme error
  });
});

describe('sim: opens our software TPM in process', () => {
  let dir: string;
  beforeAll(async () => {
    registerSimTcti();
    dir = await mkdtemp(join(tmpdir(), 'trustroot-sim-tcti-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('sim: is an ephemeral, freshly reset TPM that says it is ours (TRST); two opens are two TPMs', async () => {
    const a = await openTransport('sim:', { retry: false });
    const b = await openTransport('sim:', { retry: false });
    try {
      // Like a TPM after _TPM_Init: Startup first.
      expect(isRc(await runCommand(a, GetRandom, {}, { bytesRequested: 8 }).catch((e: unknown) => e), TPM_RC.INITIALIZE)).toBe(true);
      for (const t of [a, b]) await runCommand(t, Startup, {}, { startupType: TPM_SU.CLEAR });
      expect(await manufacturer(a)).toBe(TRST);
      await defineAndWrite(a, Uint8Array.of(1, 2, 3, 4));
      expect([...(await nvRead(a, 4))]).toEqual([1, 2, 3, 4]);
      // b is another TPM: the index is not there.
      expect(isRc(await nvRead(b, 4).catch((e: unknown) => e), TPM_RC.HANDLE)).toBe(true);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('sim:state=DIR keeps the TPM in DIR: written before the answer, locked while open, there again after close', async () => {
    const stateDir = join(dir, 'kept');
    const tcti = `sim:state=${stateDir}`;
    const data = Uint8Array.of(9, 8, 7, 6, 5);
    const first = await openTransport(tcti, { retry: false });
    try {
      await runCommand(first, Startup, {}, { startupType: TPM_SU.CLEAR });
      await defineAndWrite(first, data);
      // Answered, so on disk already (the store's file names the index), before any close.
      expect(await readFile(join(stateDir, STATE_FILE_NAME), 'utf8')).toContain(String(NV_INDEX));
      // The folder is locked while this transport holds it.
      const second = await openTransport(tcti, { retry: false }).catch((e: unknown) => e);
      expect(second).toBeInstanceOf(StateError);
      await runCommand(first, Shutdown, {}, { shutdownType: TPM_SU.CLEAR });
    } finally {
      await first.close();
    }
    const again = await openTransport(tcti, { retry: false });
    try {
      await runCommand(again, Startup, {}, { startupType: TPM_SU.CLEAR });
      expect([...(await nvRead(again, data.length))]).toEqual([...data]);
    } finally {
      await again.close();
    }
  });

  it('a corrupt state file is an error, never a silently fresh TPM', async () => {
    const stateDir = join(dir, 'corrupt');
    const t = await openTransport(`sim:state=${stateDir}`, { retry: false });
    await t.close();
    await writeFile(join(stateDir, STATE_FILE_NAME), '{"format":"trustroot-simulator-state","version":1,"state":');
    const e = await openTransport(`sim:state=${stateDir}`, { retry: false }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(StateError);
  });

  it('TRUSTROOT_TPM=sim: works through the retry wrapper', async () => {
    const t = await openTransport(undefined, { env: { TRUSTROOT_TPM: 'sim:' } });
    try {
      await runCommand(t, Startup, {}, { startupType: TPM_SU.CLEAR });
      expect((await runCommand(t, GetRandom, {}, { bytesRequested: 16 })).params.randomBytes.length).toBe(16);
    } finally {
      await t.close();
    }
  });
});
