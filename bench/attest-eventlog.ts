/**
 * Event-log verification speed on one core: a 50 KB crypto-agile UEFI log
 * (a real Ubuntu 21.04 log, go-eventlog ubuntu-2104-no-secure-boot.bin,
 * 38 KB, grown to 50 KB with copies of its own grub PCR 8 records), through
 * parse, parse + replay of its three banks, and the whole verifyEventLog
 * (parse, replay, comparison with quoted values, decoding, data-to-digest
 * checks). Each row's name carries the time per log.
 */
import { readFileSync } from 'node:fs';
import { parseEventLog, replay, type PcrBanks } from '../src/attest/eventlog.js';
import { verifyEventLog } from '../src/attest/events.js';
import { pcrSelection } from '../src/tpm/pcr.js';
import { rate, type BenchRow } from './measure.js';

const TARGET = 50 * 1024;

/** The real log, grown to 50 KB with copies of its grub command records (PCR 8, EV_IPL), so it stays a valid log. */
export function fiftyKilobyteLog(): Uint8Array {
  const bytes = new Uint8Array(readFileSync(new URL('../test/fixtures/eventlog/ge-ubuntu-2104-no-secure-boot.bin', import.meta.url)));
  const log = parseEventLog(bytes);
  const grub = log.events.filter((e) => e.pcrIndex === 8).map((e) => bytes.subarray(e.offset, e.dataOffset + e.data.length));
  const parts: Uint8Array[] = [bytes];
  let size = bytes.length;
  for (let i = 0; size < TARGET; i++) {
    const r = grub[i % grub.length]!;
    parts.push(r);
    size += r.length;
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export async function benchEventLog(ms: number): Promise<BenchRow[]> {
  const bytes = fiftyKilobyteLog();
  const log = parseEventLog(bytes);
  const r = replay(log);
  // The replay's own values stand in for a quote of PCRs 0–9 in each bank (the comparison work is the same).
  const quoted: PcrBanks = r.values;
  const selection = log.banks.map((b) => pcrSelection(b as never, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]));
  if (!verifyEventLog(bytes, quoted, selection).accepted) throw new Error('bench log does not verify');
  const group = `event log ${Math.round(bytes.length / 1024)} KB, ${log.events.length} events, ${log.banks.length} banks`;
  const cases: [string, () => unknown][] = [
    ['parse', () => parseEventLog(bytes)],
    ['parse + replay', () => replay(parseEventLog(bytes))],
    ['verifyEventLog (parse, replay, compare, decode, checks)', () => verifyEventLog(bytes, quoted, selection)],
  ];
  const rows: BenchRow[] = [];
  for (const [name, fn] of cases) {
    const opsPerSec = await rate(fn, ms);
    rows.push({ group, name: `${name}: ${(1000 / opsPerSec).toFixed(2)} ms/log`, opsPerSec });
  }
  return rows;
}
