/**
 * The main job until the device trust service exists (`npm start`): a short
 * demonstration of the TPM core against a private swtpm that it starts and
 * stops itself. It prints the TPM's identity and limits, its PCR banks, and
 * creates the TCG low-range EKs, checking that the Name the TPM reports is
 * the Name computed here from the public area it returned.
 */
import { readCapability } from '../tpm/capability.js';
import { CreatePrimary, FlushContext, ReadPublic, Startup } from '../tpm/commands/index.js';
import { constantName, TPM_ALG, TPM_CAP, TPM_RH, TPM_SU } from '../tpm/constants.js';
import { describeTpm } from '../tpm/description.js';
import { objectName } from '../tpm/names.js';
import { readPcrs } from '../tpm/pcr.js';
import { runCommand } from '../tpm/run.js';
import { eccEkTemplate, rsaEkTemplate } from '../tpm/templates.js';
import { SwtpmTransport, type Transport } from '../tpm/transport/index.js';
import type { TPMT_PUBLIC } from '../tpm/types/index.js';
import { startSwtpm } from './swtpm-process.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

async function describeAndPrint(t: Transport, out: (line: string) => void): Promise<void> {
  const d = describeTpm({
    properties: await readCapability(t, TPM_CAP.TPM_PROPERTIES),
    algorithms: await readCapability(t, TPM_CAP.ALGS),
    commands: await readCapability(t, TPM_CAP.COMMANDS),
    pcrs: await readCapability(t, TPM_CAP.PCRS),
    eccCurves: await readCapability(t, TPM_CAP.ECC_CURVES),
  });
  out('TPM properties');
  out(`  family          ${d.spec.family}, level ${d.spec.level}, revision ${(d.spec.revision / 100).toFixed(2)} (${d.spec.year} day ${d.spec.dayOfYear})`);
  out(`  manufacturer    ${d.manufacturer}`);
  out(`  vendor          ${d.vendorString}`);
  out(`  firmware        0x${d.firmwareVersion.toString(16).padStart(16, '0')}`);
  out(`  limits          ${d.limits.pcrCount} PCRs, commands ≤ ${d.limits.maxCommandSize} B, NV buffer ${d.limits.nvBufferMax} B, ${d.limits.loadedObjects} loaded objects, ${d.limits.loadedSessions} loaded sessions`);
  out(`  implements      ${d.commands.length} commands, ${d.algorithms.length} algorithms, ${d.eccCurves.length} ECC curves`);

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
    await describeAndPrint(t, out);
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
