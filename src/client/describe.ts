/**
 * What a TPM says about itself, as one typed record (issue 4 point 6): its
 * properties (manufacturer, vendor strings, firmware, spec family, level and
 * revision, limits), the algorithms and commands it implements, its PCR banks
 * and ECC curves, read with GetCapability (Part 3 §30.2) and shaped by the
 * core's describeTpm, so that the verifier can classify a TPM from the same
 * TpmDescription without importing the client.
 */
import { readCapability } from '../tpm/capability.js';
import { TPM_CAP } from '../tpm/constants.js';
import { describeTpm, type TpmDescription } from '../tpm/description.js';
import type { SendOptions } from '../tpm/transport/transport.js';
import type { Tpm } from './tpm.js';

/**
 * Reads every TPM property, algorithm, command, PCR bank and ECC curve
 * (GetCapability, paged until moreData is NO) and describes the TPM.
 * Needs no authorization and loads nothing.
 *
 * @throws TpmError; ParseError; TransportError (`transport.protocol` for a TPM whose pages do not add up).
 * @example const d = await describe(tpm); console.log(d.manufacturer, d.firmwareVersion.toString(16));
 */
export async function describe(tpm: Tpm, options: SendOptions = {}): Promise<TpmDescription> {
  const t = tpm.channel; // through the Tpm's queue, in order with other commands
  // One listing after another: GetCapability needs no session, and the transport keeps commands in order.
  const properties = await readCapability(t, TPM_CAP.TPM_PROPERTIES, undefined, options);
  const algorithms = await readCapability(t, TPM_CAP.ALGS, undefined, options);
  const commands = await readCapability(t, TPM_CAP.COMMANDS, undefined, options);
  const pcrs = await readCapability(t, TPM_CAP.PCRS, undefined, options);
  const eccCurves = await readCapability(t, TPM_CAP.ECC_CURVES, undefined, options);
  return describeTpm({ properties, algorithms, commands, pcrs, eccCurves });
}
