/**
 * The main job until the device trust service exists (`npm start`): a short
 * demonstration of the TPM core against a private swtpm that it starts and
 * stops itself. It prints the TPM's identity and limits, its PCR banks, and
 * creates the TCG low-range EKs, checking that the Name the TPM reports is
 * the Name computed here from the public area it returned.
 */
import { readCapability } from '../tpm/capability.js';
import { CreatePrimary, FlushContext, ReadPublic, Startup } from '../tpm/commands/index.js';
import { constantName, TPM_ALG, TPM_CAP, TPM_PT, TPM_RH, TPM_SU } from '../tpm/constants.js';
import { objectName } from '../tpm/names.js';
import { readPcrs } from '../tpm/pcr.js';
import { runCommand } from '../tpm/run.js';
import { eccEkTemplate, rsaEkTemplate } from '../tpm/templates.js';
import { SwtpmTransport, type Transport } from '../tpm/transport/index.js';
import type { TPMT_PUBLIC } from '../tpm/types/index.js';
import { startSwtpm } from './swtpm-process.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** A TPM_PT value that holds four ASCII characters (manufacturer, vendor strings). */
function ascii4(v: number | undefined): string {
  if (v === undefined) return '';
  return Buffer.from([v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff])
    .toString('latin1')
    .replace(/\0+$/, '');
}

async function describeTpm(t: Transport, out: (line: string) => void): Promise<void> {
  const props = new Map((await readCapability(t, TPM_CAP.TPM_PROPERTIES)).map((p) => [p.property, p.value]));
  const get = (pt: number): number | undefined => props.get(pt);
  const fw1 = get(TPM_PT.FIRMWARE_VERSION_1) ?? 0;
  const fw2 = get(TPM_PT.FIRMWARE_VERSION_2) ?? 0;
  out('TPM properties');
  out(`  family          ${ascii4(get(TPM_PT.FAMILY_INDICATOR))}, level ${get(TPM_PT.LEVEL)}, revision ${((get(TPM_PT.REVISION) ?? 0) / 100).toFixed(2)} (${get(TPM_PT.YEAR)} day ${get(TPM_PT.DAY_OF_YEAR)})`);
  out(`  manufacturer    ${ascii4(get(TPM_PT.MANUFACTURER))}`);
  out(`  vendor          ${[TPM_PT.VENDOR_STRING_1, TPM_PT.VENDOR_STRING_2, TPM_PT.VENDOR_STRING_3, TPM_PT.VENDOR_STRING_4].map((p) => ascii4(get(p))).join('')}`);
  out(`  firmware        0x${fw1.toString(16).padStart(8, '0')} 0x${fw2.toString(16).padStart(8, '0')}`);
  out(`  limits          ${get(TPM_PT.PCR_COUNT)} PCRs, commands ≤ ${get(TPM_PT.MAX_COMMAND_SIZE)} B, NV buffer ${get(TPM_PT.NV_BUFFER_MAX)} B, ${get(TPM_PT.HR_TRANSIENT_MIN)} loaded objects, ${get(TPM_PT.HR_LOADED_MIN)} loaded sessions`);

  out('PCR banks');
  const banks = await readPcrs(t);
  for (const [alg, bank] of banks) {
    // After Startup(CLEAR) PCRs hold zeros, the DRTM ones (17–22) all ones (PC Client PTP).
    const zero = [...bank.values()].filter((v) => v.every((b) => b === 0)).length;
    const ones = [...bank.values()].filter((v) => v.every((b) => b === 0xff)).length;
    out(`  ${(constantName(TPM_ALG, alg) ?? `0x${alg.toString(16)}`).padEnd(8)} ${bank.size} PCRs: ${zero} all-zero, ${ones} all-ones, ${bank.size - zero - ones} extended`);
  }
}

async function createEk(t: Transport, label: string, template: TPMT_PUBLIC, out: (line: string) => void): Promise<boolean> {
  const created = await runCommand(t, CreatePrimary, { primaryHandle: TPM_RH.ENDORSEMENT }, {
    inSensitive: { userAuth: new Uint8Array(0), data: new Uint8Array(0) },
    inPublic: template,
    outsideInfo: new Uint8Array(0),
    creationPCR: [],
  });
  const handle = created.handles.objectHandle;
  try {
    const computed = objectName(created.params.outPublic);
    const read = await runCommand(t, ReadPublic, { objectHandle: handle }, {});
    const ok = hex(computed) === hex(created.params.name) && hex(computed) === hex(read.params.name);
    out(`  ${label.padEnd(18)} handle 0x${handle.toString(16)}  Name ${hex(computed)}  ${ok ? 'matches the TPM' : 'DIFFERS from the TPM'}`);
    return ok;
  } finally {
    await runCommand(t, FlushContext, {}, { flushHandle: handle });
  }
}

export async function demo(out: (line: string) => void = console.log): Promise<boolean> {
  const sw = await startSwtpm();
  out(`swtpm started (pid ${sw.pid}, 127.0.0.1:${sw.port}, control ${sw.ctrlPort}, state ${sw.stateDir})`);
  const t = new SwtpmTransport({ port: sw.port, ctrlPort: sw.ctrlPort });
  try {
    await runCommand(t, Startup, {}, { startupType: TPM_SU.CLEAR });
    await describeTpm(t, out);
    out('Endorsement keys (TCG EK Credential Profile, low range)');
    const rsa = await createEk(t, 'RSA-2048 (L-1)', rsaEkTemplate(), out);
    const ecc = await createEk(t, 'ECC P-256 (L-2)', eccEkTemplate(), out);
    return rsa && ecc;
  } finally {
    await t.close();
    await sw.stop();
    out('swtpm stopped');
  }
}

// `npm start` runs this file directly.
if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  demo()
    .then((ok) => process.exit(ok ? 0 : 1))
    .catch((e: unknown) => {
      console.error(e instanceof Error ? `${e.name}: ${e.message}` : String(e));
      process.exit(1);
    });
}
