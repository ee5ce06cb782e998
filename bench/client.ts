/**
 * The client's own overhead: commands per second to a private swtpm through
 * the client (typed parameters marshaled, response parsed and checked, a
 * password session framed, each call) next to the same commands sent as raw
 * bytes marshaled once, through the same transport and connection. Each group
 * puts raw first, so the table's ratio column is client / raw (goal ≥ 0.9).
 *
 * One swtpm, one connection at a time (tpm-peers.md §6.1). Raw and client
 * alternate in batches of 16 over the same span and each side's median batch
 * counts, so noise on the shared two vCPUs lands on both sides alike (§6.10).
 */
import { getRandom, sign } from '../src/client/crypto.js';
import { createPrimary, eccSigningTemplate, type LoadedKey } from '../src/client/keys.js';
import { pcrRead } from '../src/client/pcr.js';
import { Tpm } from '../src/client/tpm.js';
import { GetRandom, PCR_Read, Quote, Sign } from '../src/tpm/commands/index.js';
import { TPM_ALG, TPM_RH, TPM_ST } from '../src/tpm/constants.js';
import { encodeCommand } from '../src/tpm/frame.js';
import { pcrSelection } from '../src/tpm/pcr.js';
import { passwordAuth } from '../src/tpm/run.js';
import { SwtpmTransport, type Transport } from '../src/tpm/transport/index.js';
import { startSwtpm } from '../test/support/swtpm.js';
import type { BenchRow } from './measure.js';

const DIGEST = new Uint8Array(32).fill(0xa5);
const NONCE = new Uint8Array(16).fill(0x5a);
const PCRS_0_7 = [pcrSelection(TPM_ALG.SHA256, [0, 1, 2, 3, 4, 5, 6, 7])];
const NULL_TICKET = { tag: TPM_ST.HASHCHECK, hierarchy: TPM_RH.NULL, digest: new Uint8Array(0) } as const;

interface Case {
  readonly op: string;
  readonly raw: Uint8Array;
  readonly client: () => Promise<unknown>;
}

/** Sends pre-marshaled bytes and insists on rc 0, so an error response never counts as a command. */
async function sendRaw(t: Transport, command: Uint8Array): Promise<void> {
  const rsp = await t.send(command);
  const rc = (rsp[6]! << 24) | (rsp[7]! << 16) | (rsp[8]! << 8) | rsp[9]!;
  if (rc !== 0) throw new Error(`TPM returned rc 0x${(rc >>> 0).toString(16)}`);
}

/**
 * Rates of two operations measured in alternating batches over the same
 * wall-clock span, each side's rate taken from its median batch time: drift
 * in the machine's speed falls on both sides alike, and a burst of work from
 * another process spoils a few batches rather than the ratio.
 */
async function paired(a: () => Promise<unknown>, b: () => Promise<unknown>, ms: number): Promise<{ raw: number; client: number }> {
  const batch = 16;
  const time = async (fn: () => Promise<unknown>): Promise<number> => {
    const start = performance.now();
    for (let i = 0; i < batch; i++) await fn();
    return performance.now() - start;
  };
  await time(a);
  await time(b); // warm-up
  const ta: number[] = [];
  const tb: number[] = [];
  const end = performance.now() + ms;
  while (performance.now() < end || ta.length < 5) {
    ta.push(await time(a));
    tb.push(await time(b));
  }
  const median = (xs: number[]): number => {
    const s = [...xs].sort((x, y) => x - y);
    return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  };
  return { raw: batch / (median(ta) / 1000), client: batch / (median(tb) / 1000) };
}

function cases(tpm: Tpm, key: LoadedKey): Case[] {
  const pw = { sessions: [passwordAuth()] };
  return [
    { op: 'GetRandom(8)', raw: encodeCommand(GetRandom, {}, { bytesRequested: 8 }), client: () => getRandom(tpm, 8) },
    { op: 'PCR_Read(sha256, 0-7)', raw: encodeCommand(PCR_Read, {}, { pcrSelectionIn: PCRS_0_7 }), client: () => pcrRead(tpm, PCRS_0_7) },
    {
      op: 'Sign(ECDSA P-256)',
      raw: encodeCommand(Sign, { keyHandle: key.handle }, { digest: DIGEST, inScheme: { scheme: TPM_ALG.NULL }, validation: NULL_TICKET }, pw),
      client: () => sign(tpm, key, DIGEST),
    },
    {
      op: 'Quote(ECC P-256, sha256 0-7)',
      raw: encodeCommand(Quote, { signHandle: key.handle }, { qualifyingData: NONCE, inScheme: { scheme: TPM_ALG.NULL }, PCRselect: PCRS_0_7 }, pw),
      client: () => tpm.run(Quote, { signHandle: key }, { qualifyingData: NONCE, inScheme: { scheme: TPM_ALG.NULL }, PCRselect: PCRS_0_7 }),
    },
  ];
}

/**
 * Rows for `npm run bench`: per command, raw pre-marshaled bytes, then the
 * client, against one private swtpm.
 */
export async function benchClient(ms = 1000): Promise<BenchRow[]> {
  const sw = await startSwtpm({ startupClear: true });
  const transport = new SwtpmTransport({ port: sw.port, ctrlPort: sw.ctrlPort });
  const tpm = new Tpm(transport);
  const rows: BenchRow[] = [];
  try {
    const key = await createPrimary(tpm, TPM_RH.OWNER, eccSigningTemplate({ attributes: { noDA: true } }));
    try {
      for (const c of cases(tpm, key)) {
        await c.client(); // warms caches (fixed properties) and checks the case works before timing
        const { raw, client } = await paired(() => sendRaw(transport, c.raw), c.client, ms);
        const group = `client overhead: ${c.op}`;
        rows.push({ group, name: 'raw bytes, same transport', opsPerSec: raw });
        rows.push({ group, name: 'client', opsPerSec: client });
      }
    } finally {
      await tpm.flush(key);
    }
  } finally {
    await tpm.close();
    await sw.stop();
  }
  return rows;
}

// `npx tsx bench/client.ts` prints the rows on its own.
if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  for (const r of await benchClient(Number(process.env['BENCH_MS'] ?? 1000))) {
    console.log(`${r.group.padEnd(48)} ${r.name.padEnd(28)} ${Math.round(r.opsPerSec).toLocaleString('en-US').padStart(8)} ops/s`);
  }
}
