/**
 * The client's CPU per call, without a TPM: getRandom and pcrRead through a
 * Tpm over inProcessTransport to a fake TPM that answers with canned
 * responses, next to the same transport fed pre-marshaled bytes. The
 * difference is what the client adds to each round trip (bench/client.ts
 * measures the same against swtpm, where one round trip is ~23 µs).
 *
 *   npx tsx bench/client-cpu.ts            (CALLS=200000 by default)
 */
import { getRandom } from '../src/client/crypto.js';
import { pcrRead } from '../src/client/pcr.js';
import { Tpm } from '../src/client/tpm.js';
import { GetCapability, GetRandom, PCR_Read } from '../src/tpm/commands/index.js';
import { TPM_ALG, TPM_CAP, TPM_PT } from '../src/tpm/constants.js';
import { encodeCommand, encodeResponse } from '../src/tpm/frame.js';
import { pcrSelection } from '../src/tpm/pcr.js';
import { inProcessTransport } from '../src/tpm/transport/index.js';

const SELECTION = pcrSelection(TPM_ALG.SHA256, [0, 1, 2, 3, 4, 5, 6, 7]);

const RESPONSES = new Map<number, Uint8Array>([
  [GetRandom.code, encodeResponse(GetRandom, {}, { randomBytes: new Uint8Array(8).fill(7) })],
  [
    PCR_Read.code,
    encodeResponse(PCR_Read, {}, {
      pcrUpdateCounter: 1,
      pcrSelectionOut: [SELECTION],
      pcrValues: Array.from({ length: 8 }, (_, i) => new Uint8Array(32).fill(i)),
    }),
  ],
  [
    GetCapability.code,
    encodeResponse(GetCapability, {}, {
      moreData: 0,
      capabilityData: { capability: TPM_CAP.TPM_PROPERTIES, data: [{ property: TPM_PT.MAX_DIGEST, value: 64 }] },
    }),
  ],
]);

const transport = inProcessTransport({
  execute(command: Uint8Array): Promise<Uint8Array> {
    const code = ((command[6]! << 24) | (command[7]! << 16) | (command[8]! << 8) | command[9]!) >>> 0;
    const rsp = RESPONSES.get(code);
    if (rsp === undefined) throw new Error(`no canned response for 0x${code.toString(16)}`);
    return Promise.resolve(rsp);
  },
});
const tpm = new Tpm(transport);

async function perCall(fn: () => Promise<unknown>, n: number): Promise<number> {
  for (let i = 0; i < Math.min(n, 20000); i++) await fn(); // warm-up
  let best = Infinity;
  for (let round = 0; round < 3; round++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await fn();
    best = Math.min(best, Number(process.hrtime.bigint() - start) / 1000 / n);
  }
  return best;
}

const n = Number(process.env['CALLS'] ?? 200000);
const rawRandom = encodeCommand(GetRandom, {}, { bytesRequested: 8 });
const rawPcr = encodeCommand(PCR_Read, {}, { pcrSelectionIn: [SELECTION] });
const rows: [string, number][] = [
  ['raw GetRandom (transport only)', await perCall(() => transport.send(rawRandom), n)],
  ['getRandom(tpm, 8)', await perCall(() => getRandom(tpm, 8), n)],
  ['raw PCR_Read (transport only)', await perCall(() => transport.send(rawPcr), n)],
  ['pcrRead(tpm, [sha256 0-7])', await perCall(() => pcrRead(tpm, [SELECTION]), n)],
];
for (const [name, us] of rows) console.log(`${name.padEnd(34)} ${us.toFixed(3).padStart(7)} µs/call`);
console.log(`client over raw: getRandom ${(rows[1]![1] - rows[0]![1]).toFixed(3)} µs, pcrRead ${(rows[3]![1] - rows[2]![1]).toFixed(3)} µs`);
await tpm.close();
