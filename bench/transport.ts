/**
 * Round trips per second through the swtpm and mssim transports against a
 * private swtpm (one client at a time, tpm-peers.md §6.1: each transport is
 * closed before the next one connects). Fast swtpm ops sit near the client's
 * own floor (§6.10): compare rows from one run on one machine.
 */
import { MssimTransport, SwtpmTransport, type Transport } from '../src/tpm/transport/index.js';
import { startSwtpm } from '../test/support/swtpm.js';
import { rate } from './measure.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

/** TPM2_GetRandom(8). */
const GET_RANDOM_8 = hex('8001 0000000c 0000017b 0008');
/** TPM2_PCR_Read, one TPMS_PCR_SELECTION: sha256, 3-byte select, PCRs 0-7. */
const PCR_READ_SHA256_0_7 = hex('8001 00000014 0000017e 00000001 000b 03 ff 00 00');

const OPS = [
  { op: 'GetRandom(8)', command: GET_RANDOM_8 },
  { op: 'PCR_Read(sha256, 0-7)', command: PCR_READ_SHA256_0_7 },
] as const;

/** Sends `command` and insists on rc 0, so an error response never counts as a round trip. */
async function roundTrip(t: Transport, command: Uint8Array): Promise<void> {
  const rsp = await t.send(command);
  const rc = Buffer.from(rsp).readUInt32BE(6);
  if (rc !== 0) throw new Error(`TPM returned rc 0x${rc.toString(16)}`);
}

export async function benchTransports(ms = 1000): Promise<Array<{ name: string; opsPerSec: number }>> {
  const sw = await startSwtpm({ startupClear: true });
  const rows: Array<{ name: string; opsPerSec: number }> = [];
  try {
    const kinds: Array<[string, () => Transport]> = [
      ['swtpm', () => new SwtpmTransport({ port: sw.port, ctrlPort: sw.ctrlPort })],
      ['mssim', () => new MssimTransport({ port: sw.port })],
    ];
    for (const [kind, make] of kinds) {
      const t = make();
      try {
        for (const { op, command } of OPS) {
          rows.push({ name: `${kind} ${op}`, opsPerSec: await rate(() => roundTrip(t, command), ms) });
        }
      } finally {
        await t.close();
      }
    }
  } finally {
    await sw.stop();
  }
  return rows;
}

// `npx tsx bench/transport.ts` prints the rows on its own.
if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  for (const r of await benchTransports()) console.log(`${r.name.padEnd(32)} ${Math.round(r.opsPerSec).toLocaleString('en-US').padStart(8)} ops/s`);
}
