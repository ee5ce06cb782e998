/**
 * A stand-in for the MS simulator's platform port (tpm-peers.md §2.2) on a
 * free 127.0.0.1 port: answers u32 0 to known signals, u32 1 (then closes) to
 * unknown ones, closes on SESSION_END/STOP, and records every signal.
 */
import { createServer, type Socket } from 'node:net';

const KNOWN = new Set([1, 2, 3, 4, 9, 10, 11, 12, 13, 14, 17, 18, 25, 30]);
const SESSION_END = 20;
const STOP = 21;
const GET_COMMAND_RESPONSE_SIZES = 25;

export interface MssimPlatformStandIn {
  readonly port: number;
  /** Every signal received, in order, across connections. */
  readonly signals: number[];
  /** Connections accepted so far. */
  readonly connections: () => number;
  close(): Promise<void>;
}

export interface MssimPlatformStandInOptions {
  /** Reply with this value instead of 0 to the given known signals. */
  readonly replies?: Readonly<Record<number, number>>;
}

export async function startMssimPlatform(opts: MssimPlatformStandInOptions = {}): Promise<MssimPlatformStandIn> {
  const signals: number[] = [];
  const sockets = new Set<Socket>();
  let connections = 0;

  const server = createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let buf = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 4 && !socket.destroyed) {
        const sig = buf.readUInt32BE(0);
        buf = buf.subarray(4);
        signals.push(sig);
        if (sig === SESSION_END || sig === STOP) {
          socket.end(); // no reply (§2.2)
          return;
        }
        if (!KNOWN.has(sig)) {
          socket.end(u32(1)); // unknown: u32 1, then close
          return;
        }
        if (sig === GET_COMMAND_RESPONSE_SIZES) socket.write(Buffer.concat([u32(8), u32(4096), u32(4096)]));
        socket.write(u32(opts.replies?.[sig] ?? 0));
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: 0, host: '127.0.0.1' }, () => resolve());
  });
  const port = (server.address() as { port: number }).port;

  return {
    port,
    signals,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
}
