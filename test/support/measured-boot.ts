/**
 * Test helper: makes a TPM hold the PCR values of a measured boot. It writes
 * the evidence with src/attest/writer.ts and applies its extends through the
 * client (one PCR_Extend per event or IMA entry, every bank of the log at
 * once), so tests, benchmarks and the fleet simulator get an event log and an
 * IMA list that replay to what the TPM quotes.
 *
 * The TPM must be fresh from TPM2_Startup(CLEAR): every PCR the evidence
 * touches at its start value. PCR 0 tells the startup locality (0…03 after a
 * Startup from locality 3, PC Client PTP); the log then carries the matching
 * StartupLocality event, and none when the TPM started at locality 0.
 */
import { pcrBanks, pcrExtend, pcrRead, type PcrValues, type Tpm } from '../../src/client/index.js';
import { writeMeasuredBoot, pcrStartValue, type MeasuredBoot, type MeasuredBootConfig, type PcrExtend } from '../../src/attest/writer.js';
import { Startup } from '../../src/tpm/commands/index.js';
import { TPM_SU } from '../../src/tpm/constants.js';
import { isHashSupported, type TpmHashAlg } from '../../src/tpm/crypto/hash.js';
import { pcrSelection } from '../../src/tpm/pcr.js';
import type { SwtpmTransport } from '../../src/tpm/transport/index.js';
import type { TPMT_HA } from '../../src/tpm/types/index.js';

export interface AppliedMeasuredBoot {
  /** Everything the writer produced. */
  readonly evidence: MeasuredBoot;
  readonly eventLog: Uint8Array;
  readonly imaList: { readonly binary: Uint8Array; readonly ascii: string } | undefined;
  readonly extends: readonly PcrExtend[];
  /** The values the evidence implies for every PCR it touches: bank → PCR → value (the client's PcrValues shape). */
  readonly expected: PcrValues;
  /** The locality the TPM started at, as read from PCR 0 (undefined: locality 0, no StartupLocality event). */
  readonly startupLocality: number | undefined;
}

const hex = (b: Uint8Array | undefined): string => Buffer.from(b ?? new Uint8Array(0)).toString('hex');

/**
 * Writes evidence for `config` and extends the TPM's PCRs with it. Banks
 * default to every bank the TPM has allocated (and node:crypto can hash).
 *
 * @throws Error when a PCR the evidence touches is not at its start-up value,
 *   or when `config.startupLocality` contradicts PCR 0; the client's errors.
 */
export async function applyMeasuredBoot(tpm: Tpm, config: MeasuredBootConfig = {}): Promise<AppliedMeasuredBoot> {
  const banks = config.banks ?? ((await pcrBanks(tpm)).map((s) => s.hash).filter((h) => isHashSupported(h)) as TpmHashAlg[]);
  const selections = banks.map((b) => pcrSelection(b, Array.from({ length: 16 }, (_, i) => i)));
  const before = await pcrRead(tpm, selections);

  // The startup locality, from PCR 0 of the first bank: zeros but for the last byte.
  const pcr0 = before.get(banks[0]!)?.get(0);
  if (pcr0 === undefined) throw new Error(`the TPM did not return PCR 0 of bank 0x${banks[0]!.toString(16)}`);
  const locality = pcr0[pcr0.length - 1]!;
  if (pcr0.subarray(0, -1).some((b) => b !== 0) || (locality !== 0 && locality !== 3 && locality !== 4)) {
    throw new Error(`PCR 0 is ${hex(pcr0)}: the TPM has measured something since Startup; restart it first`);
  }
  const tpmLocality = locality === 0 ? undefined : locality;
  if (tpmLocality === 4) throw new Error('PCR 0 ends in 04: an H-CRTM sequence ran, which the writer does not model');
  if (config.startupLocality !== undefined && config.startupLocality !== locality) {
    throw new Error(`config.startupLocality is ${config.startupLocality} but the TPM started at locality ${locality}`);
  }
  const startupLocality = config.startupLocality ?? (tpmLocality as 3 | undefined);
  const evidence = writeMeasuredBoot({ ...config, banks, ...(startupLocality !== undefined ? { startupLocality } : {}) });

  // Every PCR the evidence extends must hold its start value, or the expected values would be wrong.
  for (const [bank, values] of evidence.pcrs) {
    for (const pcr of values.keys()) {
      const now = before.get(bank)?.get(pcr);
      const start = pcrStartValue(bank as TpmHashAlg, pcr, startupLocality);
      if (now === undefined || hex(now) !== hex(start)) {
        throw new Error(`PCR ${pcr} of bank 0x${bank.toString(16)} is ${hex(now)}, not its start value ${hex(start)}: restart the TPM first`);
      }
    }
  }

  // One PCR_Extend per event: consecutive extends of one PCR, each bank once.
  let group: PcrExtend[] = [];
  const flush = async (): Promise<void> => {
    if (group.length === 0) return;
    await pcrExtend(tpm, group[0]!.pcr, group.map((e) => ({ hashAlg: e.bank, digest: e.digest }) as TPMT_HA));
    group = [];
  };
  for (const e of evidence.extends) {
    if (group.length > 0 && (group[0]!.pcr !== e.pcr || group.some((g) => g.bank === e.bank))) await flush();
    group.push(e);
  }
  await flush();

  const expected: PcrValues = new Map();
  for (const [bank, values] of evidence.pcrs) expected.set(bank, new Map(values));
  return {
    evidence,
    eventLog: evidence.eventLog,
    imaList: evidence.ima !== undefined ? { binary: evidence.ima.binary, ascii: evidence.ima.ascii } : undefined,
    extends: evidence.extends,
    expected,
    startupLocality,
  };
}

/**
 * Reboots an swtpm (control channel INIT) and sends TPM2_Startup(CLEAR) from
 * `locality` (0 or 3): PCRs back to their start values, PCR 0 = 0…0L for L = 3.
 */
export async function rebootSwtpm(transport: SwtpmTransport, tpm: Tpm, locality: 0 | 3 = 0): Promise<void> {
  await transport.control.init();
  await tpm.run(Startup, {}, { startupType: TPM_SU.CLEAR }, { locality });
}
