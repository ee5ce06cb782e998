/**
 * The simulator's TCP servers (src/simulator/server.ts) with a small fake
 * engine: the core's transports (MssimTransport/MssimPlatform,
 * SwtpmTransport/SwtpmControl), tpm2-tools through both TCTIs, raw sockets
 * for framing, garbage, disconnects and queued clients.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { GetCapability, GetRandom, Startup } from '../../src/tpm/commands/index.js';
import { TPM_CAP } from '../../src/tpm/constants.js';
import { decodeParams, encodeCommand, encodeErrorResponse, encodeResponse, splitCommand } from '../../src/tpm/frame.js';
import { TPM_RC } from '../../src/tpm/rc.js';
import { MssimPlatform, MssimTransport, SwtpmControl, SwtpmTransport, TransportControlError } from '../../src/tpm/transport/index.js';
import { TpmEngine } from '../../src/simulator/engine.js';
import { startTpmServer, SWTPM_CAPABILITIES, type SimulatorPlatform, type TpmServer } from '../../src/simulator/server.js';

const TPM_PT_MANUFACTURER = 0x105;
const TPM_PT_MAX_DIGEST = 0x120;

/**
 * A fake TPM: Startup (TPM_RC_INITIALIZE when repeated), GetRandom (counting
 * bytes 0,1,2… so answers are predictable), GetCapability(TPM_PROPERTIES)
 * with two properties; TPM_RC_INITIALIZE before Startup and after every
 * power cycle or reset. Records every call.
 */
class FakeEngine implements SimulatorPlatform {
  started = false;
  calls: string[] = [];
  localities: number[] = [];
  executed = 0;
  delayMs = 0;
  established = false;

  async execute(command: Uint8Array, locality: number): Promise<Uint8Array> {
    this.localities.push(locality);
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    this.executed++;
    let split;
    try {
      split = splitCommand(command);
    } catch {
      return encodeErrorResponse(TPM_RC.COMMAND_CODE);
    }
    if (split.code === Startup.code) {
      if (this.started) return encodeErrorResponse(TPM_RC.INITIALIZE);
      this.started = true;
      return encodeResponse(Startup, {}, {});
    }
    if (split.code === GetCapability.code) {
      const p = decodeParams(GetCapability, split.paramBytes);
      if (p.capability !== TPM_CAP.TPM_PROPERTIES) return encodeErrorResponse(TPM_RC.VALUE);
      const props = [
        { property: TPM_PT_MANUFACTURER, value: 0x54525354 }, // 'TRST'
        { property: TPM_PT_MAX_DIGEST, value: 32 },
      ].filter((x) => x.property >= p.property);
      return encodeResponse(GetCapability, {}, { moreData: 0, capabilityData: { capability: TPM_CAP.TPM_PROPERTIES, data: props } });
    }
    if (!this.started) return encodeErrorResponse(TPM_RC.INITIALIZE);
    if (split.code === GetRandom.code) {
      const { bytesRequested } = decodeParams(GetRandom, split.paramBytes);
      const n = Math.min(bytesRequested, 32);
      return encodeResponse(GetRandom, {}, { randomBytes: Uint8Array.from({ length: n }, (_, i) => i) });
    }
    return encodeErrorResponse(TPM_RC.COMMAND_CODE);
  }
  powerOn(): void {
    this.calls.push('powerOn');
    this.started = false;
  }
  powerOff(): void {
    this.calls.push('powerOff');
    this.started = false;
  }
  reset(): void {
    this.calls.push('reset');
    this.started = false;
  }
  nvOn(): void {
    this.calls.push('nvOn');
  }
  cancel(on: boolean): void {
    this.calls.push(`cancel:${on}`);
  }
  hashStart(): void {
    this.calls.push('hashStart');
  }
  hashData(data: Uint8Array): void {
    this.calls.push(`hashData:${Buffer.from(data).toString('hex')}`);
  }
  hashEnd(): void {
    this.calls.push('hashEnd');
    this.established = true;
  }
  tpmEstablished(): boolean {
    return this.established;
  }
}

const STARTUP_CLEAR = encodeCommand(Startup, {}, { startupType: 0 });
const GET_RANDOM_8 = encodeCommand(GetRandom, {}, { bytesRequested: 8 });
const rcOf = (rsp: Uint8Array): number => Buffer.from(rsp).readUInt32BE(6);
const be32 = (v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v);
  return b;
};
const msFrame = (cmd: Uint8Array, locality = 0): Buffer => Buffer.concat([be32(8), Buffer.of(locality), be32(cmd.length), cmd]);

/** A raw client socket that collects everything it receives. */
async function rawClient(port: number): Promise<{ socket: Socket; received: () => Buffer; closed: Promise<void>; waitFor: (n: number) => Promise<Buffer> }> {
  const socket = connect({ host: '127.0.0.1', port, noDelay: true });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  let buf = Buffer.alloc(0);
  const waiters: (() => void)[] = [];
  socket.on('data', (c: Buffer) => {
    buf = Buffer.concat([buf, c]);
    waiters.splice(0).forEach((w) => w());
  });
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) =>
    socket.once('close', () => {
      resolve();
      waiters.splice(0).forEach((w) => w());
    }),
  );
  return {
    socket,
    received: () => buf,
    closed,
    // No deadline of its own (a slow machine is no failure): bytes that never come end in the test's timeout.
    async waitFor(n) {
      while (buf.length < n) {
        if (socket.destroyed) throw new Error(`got ${buf.length} of ${n} bytes`);
        await new Promise<void>((r) => waiters.push(r));
      }
      return buf;
    },
  };
}

const servers: TpmServer[] = [];
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((c) => c().catch(() => undefined)));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function serve(protocol: 'mssim' | 'swtpm', engine = new FakeEngine()): Promise<{ server: TpmServer; engine: FakeEngine }> {
  const server = await startTpmServer({ platform: engine, protocol, port: 0 });
  servers.push(server);
  return { server, engine };
}

describe('mssim server', () => {
  it('serves MssimTransport and MssimPlatform: localities, power cycle, reset, NV_ON', async () => {
    const { server, engine } = await serve('mssim');
    expect(server.platformPort).toBe(server.port + 1);
    const t = new MssimTransport({ port: server.port });
    closers.push(() => t.close());
    expect(rcOf(await t.send(GET_RANDOM_8))).toBe(TPM_RC.INITIALIZE);
    expect(rcOf(await t.send(STARTUP_CLEAR))).toBe(0);
    const rsp = await t.send(GET_RANDOM_8, { locality: 3 });
    expect(Buffer.from(rsp).toString('hex')).toBe('80010000001400000000' + '0008' + '0001020304050607');
    expect(engine.localities.at(-1)).toBe(3);

    await t.platform.nvOn();
    await t.platform.powerOn(); // already on: a no-op
    expect(engine.calls).toEqual(['nvOn']);
    await t.platform.powerOff();
    expect(rcOf(await t.send(GET_RANDOM_8))).toBe(TPM_RC.FAILURE); // no power, no TPM
    await t.platform.powerOn();
    expect(rcOf(await t.send(GET_RANDOM_8))).toBe(TPM_RC.INITIALIZE);
    expect(rcOf(await t.send(STARTUP_CLEAR))).toBe(0);
    await t.platform.reset();
    expect(rcOf(await t.send(GET_RANDOM_8))).toBe(TPM_RC.INITIALIZE);
    await t.platform.cancelOn();
    await t.platform.cancelOff();
    expect(engine.calls).toEqual(['nvOn', 'powerOff', 'powerOn', 'reset', 'cancel:true', 'cancel:false']);
  });

  it('answers the platform port byte for byte: unknown signal gets 1 and a close; SESSION_END closes; a new client follows', async () => {
    const { server, engine } = await serve('mssim');
    const a = await rawClient(server.platformPort);
    a.socket.write(Buffer.concat([be32(11), be32(13), be32(25)]));
    // NV_ON → 0, KEY_CACHE_ON → 0, GET_COMMAND_RESPONSE_SIZES → {8, 0, 0} + 0
    expect((await a.waitFor(24)).toString('hex')).toBe('00000000' + '00000000' + '00000008' + '00000000' + '00000000' + '00000000');
    a.socket.write(be32(0x77));
    await a.closed;
    expect(a.received().subarray(24).toString('hex')).toBe('00000001');
    const b = await rawClient(server.platformPort);
    b.socket.write(be32(20));
    await b.closed;
    expect(b.received().length).toBe(0);
    const c = await new MssimPlatform({ port: server.platformPort });
    await c.nvOn();
    await c.close();
    expect(engine.calls).toEqual(['nvOn', 'nvOn']);
  });

  it('command port: HASH_* reach the platform, REMOTE_HANDSHAKE, sizes after a command, unknown signal closes', async () => {
    const { server, engine } = await serve('mssim');
    const a = await rawClient(server.port);
    a.socket.write(Buffer.concat([be32(15), be32(1), be32(5), be32(6), be32(3), Buffer.from('abc'), be32(7)]));
    await a.waitFor(24);
    expect(a.received().toString('hex')).toBe('00000001' + '00000009' + '00000000' + '00000000' + '00000000' + '00000000');
    expect(engine.calls).toEqual(['hashStart', 'hashData:616263', 'hashEnd']);
    a.socket.write(msFrame(STARTUP_CLEAR));
    await a.waitFor(24 + 18);
    a.socket.write(be32(99));
    await a.closed;
    const p = await rawClient(server.platformPort);
    p.socket.write(be32(25));
    expect((await p.waitFor(16)).toString('hex')).toBe('00000008' + '0000000c' + '0000000a' + '00000000');
  });

  it('STOP on the platform port closes the server', async () => {
    const { server } = await serve('mssim');
    const a = await rawClient(server.platformPort);
    a.socket.write(be32(21));
    await server.closed;
    await expect(rawClient(server.port)).rejects.toThrow();
  });
});

describe('swtpm server', () => {
  it('serves SwtpmTransport and SwtpmControl: raw commands at the control locality, INIT, STOP, buffer size', async () => {
    const { server, engine } = await serve('swtpm');
    const t = new SwtpmTransport({ port: server.port });
    closers.push(() => t.close());
    expect(rcOf(await t.send(STARTUP_CLEAR))).toBe(0);
    expect(rcOf(await t.send(GET_RANDOM_8, { locality: 2 }))).toBe(0);
    expect(engine.localities).toEqual([0, 2]);
    const c = t.control;
    expect(await c.getCapability()).toBe(SWTPM_CAPABILITIES);
    expect(await c.getTpmEstablished()).toBe(false);
    expect(await c.getConfig()).toBe(0);
    expect(await c.setBufferSize(0)).toEqual({ size: 4096, min: 2808, max: 8192 });
    await expect(c.setBufferSize(3000)).rejects.toBeInstanceOf(TransportControlError); // only while stopped
    await c.init();
    expect(rcOf(await t.send(GET_RANDOM_8))).toBe(TPM_RC.INITIALIZE);
    expect(engine.localities.at(-1)).toBe(0); // INIT puts the locality back to 0
    await c.stop();
    expect(rcOf(await t.send(GET_RANDOM_8))).toBe(TPM_RC.FAILURE);
    expect(await c.setBufferSize(3000)).toEqual({ size: 3000, min: 2808, max: 8192 });
    await c.init();
    expect(rcOf(await t.send(STARTUP_CLEAR))).toBe(0);
    await c.hashStart();
    await c.hashData(Uint8Array.of(1, 2));
    await c.hashEnd();
    expect(await c.getTpmEstablished()).toBe(true);
    expect(engine.calls).toEqual(['reset', 'powerOff', 'powerOn', 'hashStart', 'hashData:0102', 'hashEnd']);
  });

  it('the command port also takes the MS prefix (its locality applies) and a connection per command', async () => {
    const { server, engine } = await serve('swtpm');
    const t = new MssimTransport({ port: server.port });
    closers.push(() => t.close());
    expect(rcOf(await t.send(STARTUP_CLEAR, { locality: 4 }))).toBe(0);
    expect(engine.localities).toEqual([4]);
    await t.close();
    for (let i = 0; i < 3; i++) {
      const a = await rawClient(server.port);
      a.socket.write(GET_RANDOM_8);
      expect((await a.waitFor(20)).subarray(12).toString('hex')).toBe('0001020304050607');
      a.socket.end();
      await a.closed;
    }
  });

  it('SET_LOCALITY 5 is refused; an unknown control command gets BAD_ORDINAL and a close; SHUTDOWN closes the server', async () => {
    const { server } = await serve('swtpm');
    const a = await rawClient(server.platformPort);
    a.socket.write(Buffer.concat([be32(5), Buffer.of(5), be32(0x0c)]));
    await a.closed;
    expect(a.received().toString('hex')).toBe('00000003' + '0000000a');
    const c = new SwtpmControl({ port: server.platformPort });
    await c.shutdown();
    await server.closed;
    await c.close();
  });
});

describe('framing and clients', () => {
  it('frames by size: a command in single bytes, two pipelined commands in one write', async () => {
    const { server } = await serve('swtpm');
    const a = await rawClient(server.port);
    for (const byte of STARTUP_CLEAR) {
      a.socket.write(Buffer.of(byte));
      await new Promise((r) => setTimeout(r, 2));
    }
    await a.waitFor(10);
    expect(rcOf(a.received())).toBe(0);
    a.socket.write(Buffer.concat([GET_RANDOM_8, msFrame(GET_RANDOM_8, 1)]));
    const all = await a.waitFor(10 + 20 + 28);
    expect(all.subarray(10, 30).subarray(12).toString('hex')).toBe('0001020304050607');
    expect(all.readUInt32BE(30)).toBe(20);
    expect(all.readUInt32BE(54)).toBe(0);
  });

  it('garbage on every port ends that connection only; the server goes on serving', async () => {
    for (const protocol of ['mssim', 'swtpm'] as const) {
      const { server } = await serve(protocol);
      for (const port of [server.port, server.platformPort]) {
        const g = await rawClient(port);
        g.socket.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
        await g.closed;
      }
      // A raw header claiming more than the limit: TPM_RC_COMMAND_SIZE, then the connection ends.
      const big = await rawClient(server.port);
      big.socket.write(Buffer.from('80010001000000000144', 'hex'));
      await big.closed;
      expect(rcOf(big.received())).toBe(TPM_RC.COMMAND_SIZE);
      // A header cut short: the frame timeout is not waited on here, the client just goes.
      const short = await rawClient(server.port);
      short.socket.end(Buffer.from('8001000000', 'hex'));
      await short.closed;
      const t = new MssimTransport({ port: server.port });
      expect(rcOf(await t.send(STARTUP_CLEAR))).toBe(0);
      await t.close();
    }
  });

  it('a frame left unfinished is cut off after frameTimeoutMs, and the next client is served', async () => {
    const server = await startTpmServer({ platform: new FakeEngine(), protocol: 'swtpm', port: 0, frameTimeoutMs: 100 });
    servers.push(server);
    // The server's frame timer runs in this process: with its clock faked (sockets stay real), the cut is
    // checked in virtual time, exactly at frameTimeoutMs, whatever the machine's load.
    const turns = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
    };
    for (const [port, partial] of [
      [server.port, Buffer.from('80010000000c0000', 'hex')],
      [server.platformPort, be32(5)], // SET_LOCALITY without its byte
    ] as const) {
      const a = await rawClient(port);
      let closed = false;
      void a.closed.then(() => (closed = true));
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
      try {
        a.socket.write(partial);
        // The timer is armed once the server has the partial bytes.
        while (vi.getTimerCount() === 0) await turns(1);
        await vi.advanceTimersByTimeAsync(99);
        await turns(20);
        expect(closed).toBe(false);
        await vi.advanceTimersByTimeAsync(1);
        await a.closed;
      } finally {
        vi.useRealTimers();
      }
      expect(a.received().length).toBe(0);
    }
    const t = new SwtpmTransport({ port: server.port });
    expect(rcOf(await t.send(STARTUP_CLEAR, { locality: 1 }))).toBe(0);
    await t.close();
  });

  it('a client that disconnects mid-command harms nothing: the engine finishes, the next client is answered', async () => {
    const engine = new FakeEngine();
    const { server } = await serve('mssim', engine);
    engine.delayMs = 150;
    const a = await rawClient(server.port);
    a.socket.write(msFrame(STARTUP_CLEAR));
    await new Promise((r) => setTimeout(r, 30));
    a.socket.destroy();
    const t = new MssimTransport({ port: server.port });
    closers.push(() => t.close());
    // Startup ran (and finished) for the vanished client: a second one is refused.
    expect(rcOf(await t.send(STARTUP_CLEAR))).toBe(TPM_RC.INITIALIZE);
    expect(engine.executed).toBe(2);
  });

  it('a second client waits until the first disconnects', async () => {
    const { server } = await serve('mssim');
    const first = new MssimTransport({ port: server.port });
    expect(rcOf(await first.send(STARTUP_CLEAR))).toBe(0);
    const second = await rawClient(server.port);
    second.socket.write(msFrame(GET_RANDOM_8));
    await new Promise((r) => setTimeout(r, 150));
    expect(second.received().length).toBe(0);
    expect(rcOf(await first.send(GET_RANDOM_8))).toBe(0); // the first is still served
    await first.close();
    expect((await second.waitFor(28)).readUInt32BE(0)).toBe(20);
    second.socket.destroy();
  });
});

const TOOLS = existsSync('/usr/bin/tpm2_getrandom');

function runTool(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('tpm2_getrandom', args, { timeout: 20_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

describe.skipIf(!TOOLS && process.env['CI'] === undefined)('tpm2-tools against the servers', () => {
  it.each(['swtpm', 'mssim'] as const)('tpm2_getrandom 8 through the %s TCTI', async (protocol) => {
    const { server, engine } = await serve(protocol);
    engine.started = true;
    const r = await runTool(['-T', `${protocol}:host=127.0.0.1,port=${server.port}`, '8', '--hex']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('0001020304050607');
  });
});

/** The real engine behind the servers: a platform adapter as the CLI builds it. */
function enginePlatform(engine: TpmEngine): SimulatorPlatform {
  return {
    execute: (c, l) => engine.execute(c, l),
    powerOn: () => engine.init(),
    powerOff: () => engine.syncClock(),
    reset: () => engine.init(),
  };
}

describe('the real engine behind the servers', () => {
  it('mssim: Startup, GetRandom, power cycle back to TPM_RC_INITIALIZE', async () => {
    const server = await startTpmServer({ platform: enginePlatform(new TpmEngine()), protocol: 'mssim', port: 0 });
    servers.push(server);
    const t = new MssimTransport({ port: server.port });
    closers.push(() => t.close());
    expect(rcOf(await t.send(GET_RANDOM_8))).toBe(TPM_RC.INITIALIZE);
    expect(rcOf(await t.send(STARTUP_CLEAR))).toBe(0);
    const a = await t.send(GET_RANDOM_8);
    const b = await t.send(GET_RANDOM_8);
    expect(rcOf(a)).toBe(0);
    expect(a.length).toBe(20);
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(false);
    await t.platform.powerOff();
    await t.platform.powerOn();
    expect(rcOf(await t.send(GET_RANDOM_8))).toBe(TPM_RC.INITIALIZE);
  });

  it.skipIf(!TOOLS && process.env['CI'] === undefined).each(['swtpm', 'mssim'] as const)('tpm2_getrandom 8 through the %s TCTI', async (protocol) => {
    const server = await startTpmServer({ platform: enginePlatform(new TpmEngine()), protocol, port: 0 });
    servers.push(server);
    // The tools send no Startup; our transport does, then lets go of the port (one client at a time).
    const t = protocol === 'swtpm' ? new SwtpmTransport({ port: server.port }) : new MssimTransport({ port: server.port });
    expect(rcOf(await t.send(STARTUP_CLEAR))).toBe(0);
    await t.close();
    const r = await runTool(['-T', `${protocol}:host=127.0.0.1,port=${server.port}`, '8', '--hex']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^[0-9a-f]{16}$/);
  });
});
