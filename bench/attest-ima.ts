/**
 * IMA measurement lists, in entries per second, on the real 922-entry
 * Raspberry Pi list (test/fixtures/ima): parsing both forms, and replay to
 * PCR 10 in SHA-1 and SHA-256 banks — with both kernel behaviours still open
 * (a device's first attestation), and with the behaviour settled and a quote
 * to match (every later one).
 */
import { readFileSync } from 'node:fs';
import { parseImaAscii, parseImaBinary, replayIma } from '../src/attest/ima.js';
import { TPM_ALG } from '../src/tpm/constants.js';
import { rate, type BenchRow } from './measure.js';

const FIXTURES = new URL('../test/fixtures/ima/', import.meta.url);

export async function benchIma(ms = 1000): Promise<BenchRow[]> {
  const binary = new Uint8Array(readFileSync(new URL('embrave-rpi-binary_runtime_measurements', FIXTURES)));
  const ascii = new Uint8Array(readFileSync(new URL('embrave-rpi-ascii_runtime_measurements', FIXTURES)));
  const entries = parseImaBinary(binary).entries;
  const n = entries.length;
  const banks = [TPM_ALG.SHA1, TPM_ALG.SHA256];
  const open = replayIma(entries, undefined, { banks });
  // A settled state: what the quote of a 5.8+ kernel decides on the first attestation.
  const settled = replayIma(entries, undefined, { quoted: open.pcrValues });
  const half = Math.floor(n / 2);
  const firstHalf = replayIma(entries.slice(0, half), undefined, { quoted: replayIma(entries.slice(0, half), undefined, { banks }).pcrValues });
  if (!settled.verdict.accepted || !firstHalf.verdict.accepted) throw new Error('bench: the IMA list does not replay to its own values');

  const group = `IMA list (${n} entries), entries/s`;
  const rows: BenchRow[] = [];
  const add = async (name: string, entriesPerOp: number, fn: () => unknown): Promise<void> => {
    rows.push({ group, name, opsPerSec: (await rate(fn, ms)) * entriesPerOp });
  };
  await add('parse binary', n, () => parseImaBinary(binary));
  await add('parse ASCII (template data rebuilt)', n, () => parseImaAscii(ascii));
  await add('replay, sha1+sha256, both behaviours open, no quote', n, () => replayIma(entries, undefined, { banks }));
  await add('replay, sha1+sha256, first attestation against a quote', n, () => replayIma(entries, undefined, { quoted: open.pcrValues }));
  await add('replay, settled behaviour, second half from a stored state', n - half, () => replayIma(entries.slice(half), firstHalf.state, { quoted: open.pcrValues }));
  return rows;
}
