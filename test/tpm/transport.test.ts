/**
 * Transports: against a real swtpm (raw and MS framing on its command port,
 * locality through its control channel), and against small local servers that
 * misbehave on purpose (silence, late replies, bad framing, early close).
 */
import { createHash } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TransportError } from '../../src/tpm/errors.js';
import {
  MssimPlatform,
  MssimTransport,
  SWTPM_INIT_DELETE_VOLATILE,
  SwtpmTransport,
  TransportControlError,
  inProcessTransport,
  type Transport,
} from '../../src/tpm/transport/index.js';
import { CommandQueue } from '../../src/tpm/transport/channel.js';
import { TpmEngine } from '../../src/simulator/engine.js';
import { startMssimPlatform } from '../support/mssim-platform.js';
import { describeWithSwtpm, freePort, startSwtpm, type SwtpmInstance } from '../support/swtpm.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const u32 = (b: Uint8Array, off: number): number => Buffer.from(b).readUInt32BE(off);
const rcOf = (rsp: Uint8Array): number => u32(rsp, 6);

const STARTUP_CLEAR = hex('8001 0000000c 00000144 0000');
const GET_RANDOM_8 = hex('8001 0000000c 0000017b 0008');
/** PCR_Reset(PCR n) with an empty password session. swtpm resets PCR 20 at locality 2 only. */
const pcrReset = (pcr: number): Uint8Array =>
  hex(`8002 0000001b 0000013d ${pcr.toString(16).padStart(8, '0')} 00000009 40000009 0000 00 0000`);

const TPM_RC_INITIALIZE = 0x100;
const TPM_RC_LOCALITY = 0x907;

/** Check a GetRandom(8) response: header, size, digest length; return the 8 bytes. */
function randomBytesOf(rsp: Uint8Array): string {
  expect(rsp.length).toBe(20);
  expect(Buffer.from(rsp.subarray(0, 2)).toString('hex')).toBe('8001');
  expect(u32(rsp, 2)).toBe(20);
  expect(rcOf(rsp)).toBe(0);
  expect(Buffer.from(rsp).readUInt16BE(10)).toBe(8);
  return Buffer.from(rsp.subarray(12)).toString('hex');
}

async function expectCode(p: Promise<unknown>, code: string): Promise<TransportError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TransportError);
  expect((err as TransportError).code).toBe(code);
  return err as TransportError;
}

describeWithSwtpm('transports against swtpm', () => {
  let sw: SwtpmInstance;
  beforeAll(async () => {
    sw = await startSwtpm(); // no startup-clear: the client's own Startup must work
  });
  afterAll(async () => {
    await sw?.stop();
  });

  it('raw framing: Startup(CLEAR), then GetRandom(8) twice gives different bytes', async () => {
    const t = new SwtpmTransport({ port: sw.port, ctrlPort: sw.ctrlPort });
    try {
      expect(rcOf(await t.send(STARTUP_CLEAR))).toBe(0);
      const a = randomBytesOf(await t.send(GET_RANDOM_8));
      const b = randomBytesOf(await t.send(GET_RANDOM_8));
      expect(a).not.toBe(b);
    } finally {
      await t.close();
    }
  });

  it('MS framing on the same command port (swtpm takes both, tpm-peers.md §2.3)', async () => {
    const t = new MssimTransport({ port: sw.port });
    try {
      const a = randomBytesOf(await t.send(GET_RANDOM_8));
      const b = randomBytesOf(await t.send(GET_RANDOM_8));
      expect(a).not.toBe(b);
    } finally {
      await t.close(); // SESSION_END on the command port only: the platform port was never used
    }
    expect(t.platform.connected).toBe(false);
  });

  it('locality through the control channel, set only when it changes', async () => {
    const t = new SwtpmTransport({ port: sw.port });
    const seen: number[] = [];
    const original = t.control.setLocality.bind(t.control);
    t.control.setLocality = (loc, deadline) => {
      seen.push(loc);
      return original(loc, deadline);
    };
    try {
      expect(rcOf(await t.send(pcrReset(20)))).toBe(TPM_RC_LOCALITY);
      expect(rcOf(await t.send(pcrReset(20), { locality: 2 }))).toBe(0);
      expect(rcOf(await t.send(pcrReset(20), { locality: 2 }))).toBe(0);
      expect(rcOf(await t.send(pcrReset(20), { locality: 0 }))).toBe(TPM_RC_LOCALITY);
      expect(seen).toEqual([0, 2, 0]);
      expect(t.control.locality).toBe(0);
      await expectCode(t.send(GET_RANDOM_8, { locality: 5 }), 'transport.protocol');
    } finally {
      await t.close();
    }
  });

  it('locality in the MS SEND_COMMAND prefix', async () => {
    const t = new MssimTransport({ port: sw.port });
    try {
      expect(rcOf(await t.send(pcrReset(20), { locality: 0 }))).toBe(TPM_RC_LOCALITY);
      expect(rcOf(await t.send(pcrReset(20), { locality: 2 }))).toBe(0);
    } finally {
      await t.close();
    }
  });

  it('control channel: capabilities, buffer size, info, INIT, typed errors', async () => {
    const t = new SwtpmTransport({ port: sw.port });
    try {
      expect(await t.control.getCapability()).toBeGreaterThan(0n);
      expect(JSON.parse(await t.control.getInfo(1))).toHaveProperty('TPMSpecification');
      // Changing the buffer size needs a stopped TPM: swtpm answers TPM_BAD_ORDINAL (10).
      const err = await expectCode(t.control.setBufferSize(1024), 'transport.control');
      expect(err).toBeInstanceOf(TransportControlError);
      expect((err as TransportControlError).result).toBe(10);
      expect((err as TransportControlError).command).toBe(0x11);
      expect((await t.control.setBufferSize(0)).size).toBeGreaterThanOrEqual(4096);
      // INIT restarts the TPM: commands answer TPM_RC_INITIALIZE until Startup.
      await t.control.init(SWTPM_INIT_DELETE_VOLATILE);
      expect(t.control.locality).toBeUndefined();
      expect(rcOf(await t.send(GET_RANDOM_8))).toBe(TPM_RC_INITIALIZE);
      expect(rcOf(await t.send(STARTUP_CLEAR))).toBe(0);
      randomBytesOf(await t.send(GET_RANDOM_8));
    } finally {
      await t.close();
    }
  });

  it('runs several swtpm instances in parallel', async () => {
    const many = await Promise.all([startSwtpm({ startupClear: true }), startSwtpm({ startupClear: true })]);
    try {
      expect(new Set([sw.port, ...many.map((m) => m.port)]).size).toBe(3);
      await Promise.all(
        many.map(async (m) => {
          const t = new SwtpmTransport({ port: m.port });
          try {
            randomBytesOf(await t.send(GET_RANDOM_8));
          } finally {
            await t.close();
          }
        }),
      );
    } finally {
      await Promise.all(many.map((m) => m.stop()));
    }
  });
});

// ---------------------------------------------------------------------------
// Local peers that misbehave on purpose.

type Framing = 'raw' | 'ms';

interface Request {
  /** Connection number, from 1. */
  readonly conn: number;
  readonly command: Buffer;
  readonly locality: number;
  readonly socket: Socket;
  /** Reply with a TPM response, framed for this peer. */
  respond(rsp: Uint8Array): void;
}

interface Peer {
  readonly port: number;
  /** The command port's counterpart: a fake swtpm control port (answers SET_LOCALITY). */
  readonly ctrlPort: number;
  readonly requests: Request[];
  /** Raw bytes received per connection. */
  readonly received: Buffer[];
  connections(): number;
  /** Most commands ever awaiting an answer at once. */
  maxOutstanding(): number;
  close(): Promise<void>;
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: 0, host: '127.0.0.1' }, () => resolve((server.address() as { port: number }).port));
  });
}

/** A TPM stand-in with raw or MS framing; `onRequest` decides how (or whether) to answer. */
async function startPeer(framing: Framing, onRequest: (req: Request) => void): Promise<Peer> {
  const requests: Request[] = [];
  const received: Buffer[] = [];
  const sockets = new Set<Socket>();
  let connections = 0;
  let outstanding = 0;
  let maxOutstanding = 0;

  const server = createServer((socket) => {
    const conn = ++connections;
    const index = received.length;
    received.push(Buffer.alloc(0));
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let buf = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      received[index] = Buffer.concat([received[index]!, chunk]);
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        let command: Buffer;
        let locality = 0;
        if (framing === 'raw') {
          if (buf.length < 10) return;
          const size = buf.readUInt32BE(2);
          if (buf.length < size) return;
          command = buf.subarray(0, size);
          buf = buf.subarray(size);
        } else {
          if (buf.length >= 4 && buf.readUInt32BE(0) === 20) {
            buf = buf.subarray(4); // SESSION_END
            socket.end();
            return;
          }
          if (buf.length < 9) return;
          const n = buf.readUInt32BE(5);
          if (buf.length < 9 + n) return;
          locality = buf[4]!;
          command = buf.subarray(9, 9 + n);
          buf = buf.subarray(9 + n);
        }
        outstanding++;
        maxOutstanding = Math.max(maxOutstanding, outstanding);
        let answered = false;
        const req: Request = {
          conn,
          command,
          locality,
          socket,
          respond(rsp) {
            if (!answered) outstanding--;
            answered = true;
            if (socket.destroyed) return;
            if (framing === 'raw') socket.write(rsp);
            else socket.write(Buffer.concat([be(rsp.length), rsp, be(0)]));
          },
        };
        requests.push(req);
        onRequest(req);
      }
    });
  });
  const port = await listen(server);

  const ctrl = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.on('data', () => socket.write(be(0))); // SET_LOCALITY is 5 bytes, one write
  });
  const ctrlPort = await listen(ctrl);

  return {
    port,
    ctrlPort,
    requests,
    received,
    connections: () => connections,
    maxOutstanding: () => maxOutstanding,
    close: async () => {
      for (const s of sockets) s.destroy();
      await Promise.all([server, ctrl].map((s) => new Promise<void>((r) => s.close(() => r()))));
    },
  };
}

function be(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
}

/** A GetRandom-shaped response carrying `tag` as its 8 bytes, so responses can be told apart. */
function tagged(tag: number): Buffer {
  const b = Buffer.alloc(20);
  b.writeUInt16BE(0x8001, 0);
  b.writeUInt32BE(20, 2);
  b.writeUInt16BE(8, 10);
  b.writeUInt32BE(tag, 16);
  return b;
}
const tagOf = (rsp: Uint8Array): number => u32(rsp, 16);

function transportFor(framing: Framing, peer: Peer, timeoutMs = 5000): SwtpmTransport | MssimTransport {
  return framing === 'raw'
    ? new SwtpmTransport({ port: peer.port, ctrlPort: peer.ctrlPort, timeoutMs })
    : new MssimTransport({ port: peer.port, timeoutMs });
}

describe.each<Framing>(['raw', 'ms'])('%s framing against local peers', (framing) => {
  it('serializes concurrent sends: one command in flight, answers in order', async () => {
    let n = 0;
    const peer = await startPeer(framing, (req) => {
      const tag = ++n;
      setTimeout(() => req.respond(tagged(tag)), 5);
    });
    const t = transportFor(framing, peer);
    try {
      const rsps = await Promise.all([1, 2, 3, 4].map(() => t.send(GET_RANDOM_8)));
      expect(rsps.map(tagOf)).toEqual([1, 2, 3, 4]);
      expect(peer.maxOutstanding()).toBe(1);
      expect(peer.connections()).toBe(1);
    } finally {
      await t.close();
      await peer.close();
    }
  });

  it('timeout: transport.timeout, then a fresh connection; the late answer is never handed on', async () => {
    const peer = await startPeer(framing, (req) => {
      if (req.conn === 1) setTimeout(() => req.respond(tagged(0xdead)), 300); // too late
      else req.respond(tagged(req.conn));
    });
    const t = transportFor(framing, peer);
    try {
      await expectCode(t.send(GET_RANDOM_8, { timeoutMs: 100 }), 'transport.timeout');
      const rsp = await t.send(GET_RANDOM_8);
      expect(tagOf(rsp)).toBe(2);
      expect(peer.connections()).toBe(2);
      await new Promise((r) => setTimeout(r, 250)); // the late answer arrives nowhere
      expect(tagOf(await t.send(GET_RANDOM_8))).toBe(2);
    } finally {
      await t.close();
      await peer.close();
    }
  });

  it('abort: in flight, before sending, and while queued', async () => {
    const peer = await startPeer(framing, (req) => {
      if (req.conn > 1) req.respond(tagged(7)); // the first connection never answers
    });
    const t = transportFor(framing, peer);
    try {
      const ac = new AbortController();
      const queuedAc = new AbortController();
      const first = t.send(GET_RANDOM_8, { signal: ac.signal });
      const queued = t.send(GET_RANDOM_8, { signal: queuedAc.signal });
      const firstErr = expectCode(first, 'transport.aborted');
      const queuedErr = expectCode(queued, 'transport.aborted');
      queuedAc.abort(new Error('changed my mind'));
      await new Promise((r) => setTimeout(r, 50));
      ac.abort();
      await firstErr;
      expect((await queuedErr).cause).toBeInstanceOf(Error);
      await expectCode(t.send(GET_RANDOM_8, { signal: AbortSignal.abort() }), 'transport.aborted');
      expect(tagOf(await t.send(GET_RANDOM_8))).toBe(7);
      expect(peer.requests.length).toBe(2); // the queued and pre-aborted commands were never sent
    } finally {
      await t.close();
      await peer.close();
    }
  });

  it('close: pending and queued sends reject with transport.closed; close is idempotent', async () => {
    const peer = await startPeer(framing, () => undefined);
    const t = transportFor(framing, peer);
    const pending = expectCode(t.send(GET_RANDOM_8), 'transport.closed');
    const queued = expectCode(t.send(GET_RANDOM_8), 'transport.closed');
    await new Promise((r) => setTimeout(r, 50));
    await Promise.all([t.close(), t.close()]);
    await pending;
    await queued;
    await expectCode(t.send(GET_RANDOM_8), 'transport.closed');
    await t.close();
    await peer.close();
  });

  it('connect refused: transport.connect', async () => {
    const port = await freePort();
    const t =
      framing === 'raw' ? new SwtpmTransport({ port, ctrlPort: port }) : new MssimTransport({ port });
    await expectCode(t.send(GET_RANDOM_8), 'transport.connect');
    await t.close();
  });

  it('oversize, undersize and garbage response sizes: transport.protocol, then recovery', async () => {
    const bad = [Buffer.from('80010001000000000000', 'hex'), Buffer.from('80010000000500000000', 'hex')];
    const peer = await startPeer(framing, (req) => {
      const b = bad[req.conn - 1];
      if (b === undefined) req.respond(tagged(req.conn));
      else if (framing === 'raw') req.socket.write(b);
      else req.socket.write(Buffer.concat([be(b.readUInt32BE(2)), b])); // the MS length word is the lie
    });
    const t = transportFor(framing, peer);
    try {
      await expectCode(t.send(GET_RANDOM_8), 'transport.protocol');
      await expectCode(t.send(GET_RANDOM_8), 'transport.protocol');
      expect(tagOf(await t.send(GET_RANDOM_8))).toBe(3);
    } finally {
      await t.close();
      await peer.close();
    }
  });

  it('unsolicited bytes after a response: transport.protocol on the next command', async () => {
    const peer = await startPeer(framing, (req) => {
      req.respond(tagged(req.conn));
      if (req.conn === 1) req.socket.write(Buffer.from('junk'));
    });
    const t = transportFor(framing, peer);
    try {
      expect(tagOf(await t.send(GET_RANDOM_8))).toBe(1);
      await new Promise((r) => setTimeout(r, 30));
      await expectCode(t.send(GET_RANDOM_8), 'transport.protocol');
      expect(tagOf(await t.send(GET_RANDOM_8))).toBe(2);
    } finally {
      await t.close();
      await peer.close();
    }
  });

  it('a peer that answers and hangs up at once: the answer arrives, the next command reconnects', async () => {
    const peer = await startPeer(framing, (req) => {
      const rsp = tagged(req.conn);
      if (framing === 'ms') {
        req.respond(rsp);
        req.socket.end();
        return;
      }
      req.socket.write(rsp.subarray(0, 10)); // header, then body and FIN together
      setTimeout(() => req.socket.end(rsp.subarray(10)), 5);
    });
    const t = transportFor(framing, peer);
    try {
      expect(tagOf(await t.send(GET_RANDOM_8))).toBe(1);
      await new Promise((r) => setTimeout(r, 20));
      expect(tagOf(await t.send(GET_RANDOM_8))).toBe(2);
    } finally {
      await t.close();
      await peer.close();
    }
  });

  it('peer closing mid-response: transport.closed', async () => {
    const peer = await startPeer(framing, (req) => {
      req.socket.end(framing === 'raw' ? Buffer.from('8001000000', 'hex') : be(20));
    });
    const t = transportFor(framing, peer);
    try {
      await expectCode(t.send(GET_RANDOM_8), 'transport.closed');
    } finally {
      await t.close();
      await peer.close();
    }
  });

  it('rejects commands that cannot be framed', async () => {
    const t = framing === 'raw' ? new SwtpmTransport({ port: 1 }) : new MssimTransport({ port: 1 });
    await expectCode(t.send(new Uint8Array(9)), 'transport.protocol');
    await expectCode(t.send(new Uint8Array(8193)), 'transport.protocol');
    await t.close();
  });
});

describe('mssim specifics', () => {
  it('bad trailer after the response: transport.protocol', async () => {
    const peer = await startPeer('ms', (req) => {
      const rsp = tagged(1);
      req.socket.write(Buffer.concat([be(rsp.length), rsp, be(5)]));
    });
    const t = new MssimTransport({ port: peer.port });
    try {
      await expectCode(t.send(GET_RANDOM_8), 'transport.protocol');
    } finally {
      await t.close();
      await peer.close();
    }
  });

  it('close sends SESSION_END on the command and platform connections', async () => {
    const platform = await startMssimPlatform();
    const peer = await startPeer('ms', (req) => req.respond(tagged(req.locality)));
    const t = new MssimTransport({ port: peer.port, platformPort: platform.port });
    expect(tagOf(await t.send(GET_RANDOM_8, { locality: 3 }))).toBe(3);
    await t.platform.powerOn();
    await t.close();
    await new Promise((r) => setTimeout(r, 20));
    expect(peer.received[0]!.subarray(-4).toString('hex')).toBe('00000014');
    expect(platform.signals).toEqual([1, 20]);
    await peer.close();
    await platform.close();
  });

  it('MssimPlatform: signals in order, non-zero reply is a typed error, sessionEnd', async () => {
    const stand = await startMssimPlatform({ replies: { 2: 7 } });
    const p = new MssimPlatform({ port: stand.port });
    try {
      await p.powerOn();
      await p.nvOn();
      await p.physicalPresenceOn();
      await p.physicalPresenceOff();
      await p.cancelOn();
      await p.cancelOff();
      await p.reset();
      await p.restart();
      await p.nvOff();
      const err = await expectCode(p.powerOff(), 'transport.control');
      expect(err).toBeInstanceOf(TransportControlError);
      expect((err as TransportControlError).command).toBe(2);
      expect((err as TransportControlError).result).toBe(7);
      await p.powerOn(); // reconnects after the error
      await p.sessionEnd();
      expect(p.connected).toBe(false);
      await p.powerOn(); // and after SESSION_END
      expect(stand.signals).toEqual([1, 11, 3, 4, 9, 10, 17, 18, 12, 2, 1, 20, 1]);
      expect(stand.connections()).toBe(3);
    } finally {
      await p.close();
      await stand.close();
    }
    expect(stand.signals.at(-1)).toBe(20);
  });
});

describe('in-process adapter', () => {
  /** An engine that echoes its command with the locality in the rc field, slowly. */
  function engine(delayMs: number) {
    let running = 0;
    let maxRunning = 0;
    const seen: number[] = [];
    return {
      seen,
      maxRunning: () => maxRunning,
      async execute(command: Uint8Array, locality: number): Promise<Uint8Array> {
        running++;
        maxRunning = Math.max(maxRunning, running);
        seen.push(command[command.length - 1]!);
        await new Promise((r) => setTimeout(r, delayMs));
        running--;
        const rsp = tagged(command[command.length - 1]!);
        rsp.writeUInt32BE(locality, 6);
        return rsp;
      },
    };
  }
  const cmd = (n: number): Uint8Array => hex(`80010000000c0000017b00${n.toString(16).padStart(2, '0')}`);

  it('round trip with locality, serialized', async () => {
    const e = engine(5);
    const t: Transport = inProcessTransport(e);
    const rsps = await Promise.all([1, 2, 3].map((n) => t.send(cmd(n), { locality: n })));
    expect(rsps.map(tagOf)).toEqual([1, 2, 3]);
    expect(rsps.map(rcOf)).toEqual([1, 2, 3]);
    expect(e.maxRunning()).toBe(1);
    await expectCode(t.send(cmd(1), { locality: 9 }), 'transport.protocol');
    await t.close();
  });

  it('timeout and abort reject at once; the engine never runs two commands; close rejects', async () => {
    const e = engine(100);
    const t = inProcessTransport(e, { timeoutMs: 1000 });
    await expectCode(t.send(cmd(1), { timeoutMs: 20 }), 'transport.timeout');
    const ac = new AbortController();
    const aborted = expectCode(t.send(cmd(2), { signal: ac.signal }), 'transport.aborted');
    ac.abort();
    await aborted;
    expect(tagOf(await t.send(cmd(3)))).toBe(3);
    expect(e.seen).toEqual([1, 3]); // 2 was aborted while queued behind 1
    expect(e.maxRunning()).toBe(1);
    const pending = expectCode(t.send(cmd(4)), 'transport.closed');
    await t.close();
    await pending;
    await expectCode(t.send(cmd(5)), 'transport.closed');
  });
  it('a caller may reuse its buffer once send returns: a waiting command is copied, a started one already read', async () => {
    const e = engine(20);
    const t = inProcessTransport(e);
    const first = cmd(1);
    const running = t.send(first);
    first.fill(0); // started at once: the engine has read it
    const second = cmd(2);
    const queued = t.send(second);
    second.fill(0); // waits behind the first: the transport holds a copy
    await Promise.all([running, queued]);
    expect(e.seen).toEqual([1, 2]); // what execute read when called
    await t.close();
  });

  it('TpmEngine keeps the InProcessTpm contract: it reads the whole command before execute returns', async () => {
    const t = inProcessTransport(new TpmEngine());
    expect(rcOf(await t.send(STARTUP_CLEAR))).toBe(0);
    const digest = createHash('sha256').update('reused buffer').digest();
    // PCR_Extend(PCR 16, SHA-256) with an empty password, overwritten as soon as send returns.
    const extend = hex(`8002 00000041 00000182 00000010 00000009 40000009 0000 01 0000 00000001 000b ${digest.toString('hex')}`);
    const sent = t.send(extend);
    extend.fill(0);
    expect(rcOf(await sent)).toBe(0);
    const read = await t.send(hex('8001 00000014 0000017e 00000001 000b 03 000001'));
    expect(rcOf(read)).toBe(0);
    const expected = createHash('sha256').update(new Uint8Array(32)).update(digest).digest();
    expect(Buffer.from(read.subarray(read.length - 32)).toString('hex')).toBe(expected.toString('hex'));
    await t.close();
  });
});

describe('CommandQueue signals (channel.ts)', () => {
  /** A job that never answers by itself; it settles when its signal fires, as a socket exchange would. */
  const hang = (seen: AbortSignal[]) => (signal: AbortSignal) =>
    new Promise<string>((resolve) => {
      seen.push(signal);
      signal.addEventListener('abort', () => resolve('late'), { once: true });
    });

  it('a call without a signal of its own still sees its timeout and close through its signal; the next call runs unaborted', async () => {
    const q = new CommandQueue('test queue', Infinity);
    const seen: AbortSignal[] = [];
    await expectCode(q.run(hang(seen), { timeoutMs: 20 }), 'transport.timeout');
    expect(seen[0]!.aborted).toBe(true);
    expect((seen[0]!.reason as TransportError).code).toBe('transport.timeout');
    expect(await q.run(async (signal) => (seen.push(signal), signal.aborted))).toBe(false);
    expect(await q.run(async (signal) => (seen.push(signal), signal.aborted))).toBe(false);
    // One call times out while the next waits: only the first call's signal fires.
    const first = q.run(hang(seen), { timeoutMs: 20 });
    const second = q.run(async (signal) => (seen.push(signal), signal.aborted));
    await expectCode(first, 'transport.timeout');
    expect(await second).toBe(false);
    const running = q.run(hang(seen));
    const queued = q.run(hang(seen));
    q.close();
    await expectCode(running, 'transport.closed');
    await expectCode(queued, 'transport.closed');
    expect((seen.at(-1)!.reason as TransportError).code).toBe('transport.closed');
    expect(seen.length).toBe(6); // the queued call never ran
  });

  it('a caller\'s signal aborts its own call only, running or queued, with onAbortInFlight for the running one', async () => {
    const q = new CommandQueue('test queue', Infinity);
    const seen: AbortSignal[] = [];
    const inFlight: string[] = [];
    const a = new AbortController();
    const b = new AbortController();
    const running = q.run(hang(seen), { signal: a.signal }, (r) => inFlight.push(r.code));
    const queued = q.run(hang(seen), { signal: b.signal }, (r) => inFlight.push(r.code));
    const after = q.run(async (signal) => (seen.push(signal), signal.aborted));
    b.abort();
    await expectCode(queued, 'transport.aborted');
    a.abort(new Error('caller gave up'));
    await expectCode(running, 'transport.aborted');
    expect(await after).toBe(false);
    expect(inFlight).toEqual(['transport.aborted']);
    expect(seen.length).toBe(2);
    expect(seen[0]!.aborted).toBe(true);
  });
});
