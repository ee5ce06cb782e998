/**
 * `trustroot tpm serve`: option checks through main(), serving an injected
 * platform, and serving the real engine over a state folder.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT, main, type CliIo } from '../../src/cli/main.js';
import { addTpmCommands, type TpmCommandHooks } from '../../src/cli/tpm.js';
import type { CliContext } from '../../src/cli/attest.js';
import type { SimulatorPlatform, TpmServer } from '../../src/simulator/server.js';
import { GetRandom, Hash, Startup } from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_RH } from '../../src/tpm/constants.js';
import { encodeCommand, encodeResponse } from '../../src/tpm/frame.js';
import { MssimTransport, SwtpmTransport } from '../../src/tpm/transport/index.js';

function capture(): CliIo & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, stdout: (t) => void out.push(t), stderr: (t) => void err.push(t) };
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'trustroot-cli-tpm-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('trustroot tpm serve', () => {
  it.each([
    [['--port', '65535'], /--port 65535/],
    [['--port', 'x'], /--port x/],
    [['--port', '0', '--protocol', 'tcp'], /--protocol tcp/],
    [['--port', '0', '--profile', 'weak'], /--profile weak: expected libtpms or strict/],
  ])('%j exits 2 with a reason', async (args, reason) => {
    const io = capture();
    expect(await main(['tpm', 'serve', '--state', dir, ...args], io)).toBe(EXIT.UNUSABLE);
    expect(io.err.join('')).toMatch(reason);
  });

  it.each(['mssim', 'swtpm'] as const)('serves an injected platform over %s until aborted', async (protocol) => {
    const seen: { dir: string; locality: number }[] = [];
    let stateDir = '';
    const platform: SimulatorPlatform = {
      execute: (cmd, locality) => {
        seen.push({ dir: stateDir, locality });
        return Promise.resolve(encodeResponse(GetRandom, {}, { randomBytes: Uint8Array.of(cmd.length) }));
      },
      powerOn: () => undefined,
      powerOff: () => undefined,
      reset: () => undefined,
    };
    const io = capture();
    const ctx: CliContext = { io: { ...io, cwd: dir }, exitCode: EXIT.INTERNAL };
    const abort = new AbortController();
    let listening!: (s: TpmServer) => void;
    const up = new Promise<TpmServer>((r) => (listening = r));
    const p = new Command('trustroot').exitOverride();
    addTpmCommands(p, ctx, {
      createPlatform: (d) => {
        stateDir = d;
        return Promise.resolve({ platform, close: () => Promise.resolve() });
      },
      signal: abort.signal,
      onListening: listening,
    });
    const done = p.parseAsync(['tpm', 'serve', '--state', 'tpm-state', '--port', '0', '--protocol', protocol], { from: 'user' });
    const server = await up;
    expect(server.host).toBe('127.0.0.1');
    const t = protocol === 'mssim' ? new MssimTransport({ port: server.port }) : new SwtpmTransport({ port: server.port });
    const rsp = await t.send(encodeCommand(GetRandom, {}, { bytesRequested: 1 }), { locality: 1 });
    await t.close();
    expect(rsp.at(-1)).toBe(12); // the engine saw the whole 12-byte command
    expect(seen).toEqual([{ dir: join(dir, 'tpm-state'), locality: 1 }]);
    abort.abort();
    await done;
    expect(ctx.exitCode).toBe(EXIT.ACCEPT);
    expect(io.out.join('')).toContain(`TPM2TOOLS_TCTI=${protocol}:host=127.0.0.1,port=${server.port}`);
  });
});

/** Runs `tpm serve` in-process; resolves once listening, with a stop that aborts and waits. */
async function serveInProcess(args: string[], hooks: Omit<TpmCommandHooks, 'signal' | 'onListening'> = {}) {
  const io = capture();
  const ctx: CliContext = { io: { ...io, cwd: dir }, exitCode: EXIT.INTERNAL };
  const abort = new AbortController();
  let listening!: (s: TpmServer | undefined) => void;
  const up = new Promise<TpmServer | undefined>((r) => (listening = r));
  const p = new Command('trustroot').exitOverride();
  addTpmCommands(p, ctx, { ...hooks, signal: abort.signal, onListening: listening });
  const done = p.parseAsync(['tpm', 'serve', ...args], { from: 'user' }).then(() => listening(undefined));
  const server = await up;
  return {
    server,
    io,
    ctx,
    async stop() {
      abort.abort();
      await done;
    },
  };
}

describe('trustroot tpm serve with the engine', () => {
  it('manufactures the state folder, serves it, locks it against a second server, keeps it after stopping', async () => {
    const first = await serveInProcess(['--state', 'engine-state', '--port', '0']);
    expect(first.server).toBeDefined();
    const t = new MssimTransport({ port: first.server!.port });
    const startup = await t.send(encodeCommand(Startup, {}, { startupType: 0 }));
    expect(Buffer.from(startup).readUInt32BE(6)).toBe(0);
    const rnd = await t.send(encodeCommand(GetRandom, {}, { bytesRequested: 16 }));
    expect(Buffer.from(rnd).readUInt32BE(6)).toBe(0);
    expect(Buffer.from(rnd).readUInt16BE(10)).toBe(16);
    await t.close();

    const second = await serveInProcess(['--state', 'engine-state', '--port', '0']);
    expect(second.server).toBeUndefined();
    expect(second.ctx.exitCode).toBe(EXIT.UNUSABLE);
    expect(second.io.err.join('')).toMatch(/state\.locked/);

    await first.stop();
    expect(first.ctx.exitCode).toBe(EXIT.ACCEPT);
    expect(await readdir(join(dir, 'engine-state'))).toContain('state.json');
    // The lock went with the first server: the folder can be served again.
    const third = await serveInProcess(['--state', 'engine-state', '--port', '0', '--protocol', 'swtpm']);
    expect(third.server).toBeDefined();
    await third.stop();
    expect(third.ctx.exitCode).toBe(EXIT.ACCEPT);
  });

  it('--profile strict manufactures a strict TPM; the folder keeps it, and another --profile is refused (profile.mismatch)', async () => {
    const first = await serveInProcess(['--state', 'strict-state', '--port', '0', '--profile', 'strict']);
    expect(first.server).toBeDefined();
    expect(first.io.out.join('')).toContain('profile strict');
    const t = new MssimTransport({ port: first.server!.port });
    await t.send(encodeCommand(Startup, {}, { startupType: 0 }));
    // Hash with SHA-1: TPM_RC_HASH on parameter 2 (0x2c3).
    const sha1 = await t.send(encodeCommand(Hash, {}, { data: Uint8Array.of(1), hashAlg: TPM_ALG.SHA1, hierarchy: TPM_RH.NULL }));
    expect(Buffer.from(sha1).readUInt32BE(6)).toBe(0x2c3);
    await t.close();
    await first.stop();

    const again = await serveInProcess(['--state', 'strict-state', '--port', '0']);
    expect(again.io.out.join('')).toContain('profile strict');
    await again.stop();
    const other = await serveInProcess(['--state', 'strict-state', '--port', '0', '--profile', 'libtpms']);
    expect(other.server).toBeUndefined();
    expect(other.ctx.exitCode).toBe(EXIT.UNUSABLE);
    expect(other.io.err.join('')).toMatch(/manufactured with the profile "strict".*\[profile\.mismatch\]/);
    // The refused open released the folder's lock.
    const last = await serveInProcess(['--state', 'strict-state', '--port', '0', '--profile', 'strict']);
    expect(last.server).toBeDefined();
    await last.stop();
  });
});
