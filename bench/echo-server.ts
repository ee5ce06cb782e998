/**
 * The bench's reference server (bench/simulator.ts "Node echo server TCP"):
 * swtpm's TCP protocol on 127.0.0.1 (raw TPM frames on the command port,
 * 4-byte zero answers on port + 1), answering each command code with a canned
 * response: the first command of a code goes to a TpmEngine, and every later
 * one gets that same answer back without being looked at. It is what any Node
 * server costs on this machine with our client — the ceiling for `tpm serve`.
 * Prints "serving 127.0.0.1:PORT" once listening. Run: node --import tsx bench/echo-server.ts
 */
import { createServer, type Socket } from 'node:net';
import { TpmEngine } from '../src/simulator/engine.js';

const engine = new TpmEngine();
const canned = new Map<number, Uint8Array>();

async function answer(frame: Uint8Array): Promise<Uint8Array> {
  const code = ((frame[6]! << 24) | (frame[7]! << 16) | (frame[8]! << 8) | frame[9]!) >>> 0;
  let r = canned.get(code);
  if (r === undefined) {
    r = await engine.execute(frame, 0);
    canned.set(code, r);
  }
  return r;
}

function serveCommands(sock: Socket): void {
  sock.setNoDelay(true);
  let pending: Buffer = Buffer.alloc(0);
  sock.on('data', (d: Buffer) => {
    pending = pending.length === 0 ? d : Buffer.concat([pending, d]);
    void (async () => {
      // One frame at a time, as a TPM: its size is the header's UINT32 at offset 2.
      while (pending.length >= 10) {
        const size = pending.readUInt32BE(2);
        if (size < 10 || pending.length < size) return;
        const frame = pending.subarray(0, size);
        pending = pending.subarray(size);
        sock.write(await answer(frame));
      }
    })();
  });
  sock.on('error', () => undefined);
}

const commands = createServer({ noDelay: true }, serveCommands);
const control = createServer({ noDelay: true }, (sock) => {
  sock.on('data', () => sock.write(new Uint8Array(4)));
  sock.on('error', () => undefined);
});
commands.listen(0, '127.0.0.1', () => {
  const address = commands.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  control.listen(port + 1, '127.0.0.1', () => console.log(`serving 127.0.0.1:${port}`));
});
