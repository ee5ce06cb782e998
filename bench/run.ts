/**
 * `npm run bench`: one table, side by side in one run.
 *  - marshal and unmarshal per second for TPMT_PUBLIC, TPMS_ATTEST and a whole Quote response;
 *  - round trips per second to a private swtpm for GetRandom and PCR_Read, over both transports;
 *  - the client's overhead: GetRandom, PCR_Read, Sign and Quote through the client next to raw bytes (bench/client.ts);
 *  - quote verifications per second, verifyQuote next to bare crypto.verify, ECDSA P-256 and RSA-2048 AKs, 8 and 24 PCRs (bench/attest-quote.ts);
 *  - event-log verification time for a 50 KB UEFI log (bench/attest-eventlog.ts);
 *  - IMA list parsing and replay, entries per second (bench/attest-ima.ts);
 *  - the software TPM's primary-key derivation, keys per second (bench/simulator-keygen.ts);
 *  - the software TPM next to swtpm, same commands, same client: over TCP (our `tpm serve` vs swtpm) and in process,
 *    with the CPU time per command beside (server main thread; steadier than wall time on a shared machine),
 *    and a fleet of 1,000 engines in one process: time and heap per engine (bench/simulator.ts).
 */
import { benchEventLog } from './attest-eventlog.js';
import { benchQuoteVerify } from './attest-quote.js';
import { benchIma } from './attest-ima.js';
import { benchClient } from './client.js';
import { benchMarshal } from './marshal.js';
import { printTable, type BenchRow } from './measure.js';
import { benchKeygen } from './simulator-keygen.js';
import { benchFleet, benchSimulatorVsSwtpm, fleetRows, fleetSummary } from './simulator.js';
import { benchTransports } from './transport.js';

const ms = Number(process.env['BENCH_MS'] ?? 1000);
const rows: BenchRow[] = [...(await benchMarshal(ms))];
try {
  for (const r of await benchTransports(ms)) rows.push({ group: 'swtpm round trip', name: r.name, opsPerSec: r.opsPerSec });
} catch (e) {
  console.error(`swtpm round trips skipped: ${e instanceof Error ? e.message : String(e)}`);
}
rows.push(...(await benchClient(ms).catch((e: unknown) => (console.error(`client overhead skipped: ${String(e)}`), []))));
rows.push(...(await benchQuoteVerify(ms).catch((e: unknown) => (console.error(`quote verification skipped: ${String(e)}`), []))));
rows.push(...(await benchEventLog(ms)));
rows.push(...(await benchIma(ms)));
rows.push(...(await benchKeygen(ms)));
const simulator = await benchSimulatorVsSwtpm(ms).catch((e: unknown) => (console.error(`simulator vs swtpm skipped: ${String(e)}`), undefined));
if (simulator !== undefined) rows.push(...simulator.rows);
const fleet = await benchFleet(1000).catch((e: unknown) => (console.error(`simulator fleet skipped: ${String(e)}`), undefined));
if (fleet !== undefined) rows.push(...fleetRows(fleet));
printTable(rows);
if (simulator !== undefined) console.log(`\n${simulator.cpu}`);
if (fleet !== undefined) console.log(`\n${fleetSummary(fleet)}`);
