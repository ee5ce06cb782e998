/**
 * GetCapability paging (Part 3 §30.2): a TPM returns as much as fits and sets
 * moreData; the next call starts at the property after the last one returned.
 * What "the property" of an item is depends on the capability. The pure rules
 * come first; readCapability applies them over a transport.
 */
import { GetCapability } from './commands/index.js';
import { PT_FIXED, PT_VAR, TPM_CAP, type TPM_CAP_VALUE, TPM_HT, TPM_RH } from './constants.js';
import { TransportError } from './errors.js';
import { runCommand, type RunResult } from './run.js';
import type { SendOptions, Transport } from './transport/transport.js';
import { TPMA_CC, type TPMS_CAPABILITY_DATA } from './types/index.js';

/**
 * Where each part of a full listing of `capability` starts. A TPM pages only
 * within one group (moreData says NO at the end of the fixed properties, or
 * of one handle type), so a full listing is one paged run per start
 * (Part 2 §6.12 Table 24, §6.13 PT_FIXED/PT_VAR, §7.2 handle types).
 */
export function listingStarts(capability: number): number[] {
  switch (capability) {
    case TPM_CAP.TPM_PROPERTIES:
      return [PT_FIXED, PT_VAR];
    case TPM_CAP.HANDLES:
      return [TPM_HT.PCR, TPM_HT.NV_INDEX, TPM_HT.HMAC_SESSION, TPM_HT.POLICY_SESSION, TPM_HT.PERMANENT, TPM_HT.TRANSIENT, TPM_HT.PERSISTENT].map(
        (ht) => (ht << 24) >>> 0,
      );
    case TPM_CAP.AUTH_POLICIES:
      return [TPM_RH.SRK]; // TPM_RH_FIRST: policies belong to permanent handles
    case TPM_CAP.ACT:
      return [TPM_RH.ACT_0];
    default:
      return [0];
  }
}

/**
 * The `property` for the call after `data`, or undefined when `data` is empty
 * (nothing after it). Callers stop when moreData is NO.
 */
export function nextProperty(data: TPMS_CAPABILITY_DATA): number | undefined {
  // Nothing follows the last value of the 32-bit space (wrapping to 0 would restart the listing).
  const next = (v: number | undefined): number | undefined => (v === undefined || v >= 0xffffffff ? undefined : v + 1);
  switch (data.capability) {
    case TPM_CAP.ALGS:
      return next(data.data.at(-1)?.alg);
    case TPM_CAP.HANDLES:
    case TPM_CAP.PP_COMMANDS:
    case TPM_CAP.AUDIT_COMMANDS:
    case TPM_CAP.ECC_CURVES:
      return next(data.data.at(-1));
    case TPM_CAP.COMMANDS: {
      const last = data.data.at(-1);
      // The command code is commandIndex with the vendor bit (V) at bit 29.
      return last === undefined ? undefined : next(TPMA_CC.toWord(last) & 0x2000ffff);
    }
    case TPM_CAP.PCRS:
      return undefined; // one answer holds every bank
    case TPM_CAP.TPM_PROPERTIES:
      return next(data.data.at(-1)?.property);
    case TPM_CAP.PCR_PROPERTIES:
      return next(data.data.at(-1)?.tag);
    case TPM_CAP.AUTH_POLICIES:
    case TPM_CAP.ACT:
      return next(data.data.at(-1)?.handle);
    case TPM_CAP.VENDOR_PROPERTY:
      return next(data.data.at(-1));
  }
}

/** The items of a capability's pages, typed by the capability (TPMS_CAPABILITY_DATA narrows on `capability`). */
export type CapabilityItem<C extends TPM_CAP_VALUE> = Extract<TPMS_CAPABILITY_DATA, { capability: C }>['data'][number];

/**
 * Every item of `capability`, from each start of `listingStarts` (or the
 * given ones), following moreData page by page. The number of pages is
 * bounded, so a TPM that always says "more" cannot keep the caller forever.
 */
export async function readCapability<C extends TPM_CAP_VALUE>(
  transport: Transport,
  capability: C,
  starts: readonly number[] = listingStarts(capability),
  options: SendOptions = {},
): Promise<CapabilityItem<C>[]> {
  const items: CapabilityItem<C>[] = [];
  for (const start of starts) {
    let property: number | undefined = start;
    for (let page = 0; property !== undefined; page++) {
      if (page === MAX_CAPABILITY_PAGES) throw new TransportError('transport.protocol', `GetCapability(0x${capability.toString(16)}) still had more data after ${page} pages`);
      const { params }: RunResult<typeof GetCapability> = await runCommand(transport, GetCapability, {}, { capability, property, propertyCount: MAX_PROPERTY_COUNT }, options);
      const data = params.capabilityData;
      if (data.capability !== capability) throw new TransportError('transport.protocol', `asked for capability 0x${capability.toString(16)}, got 0x${data.capability.toString(16)}`);
      items.push(...(data.data as CapabilityItem<C>[]));
      if (params.moreData === 1 && data.data.length === 0) {
        throw new TransportError('transport.protocol', `GetCapability(0x${capability.toString(16)}) said moreData with an empty page`);
      }
      property = params.moreData === 1 ? nextProperty(data) : undefined;
    }
  }
  return items;
}

/** The largest propertyCount worth asking for: the TPM caps it to what fits its buffer. */
const MAX_PROPERTY_COUNT = 0xffff;
/** More pages than any TPM's handle space or property list needs (Part 2 MAX_CAP_BUFFER pages). */
const MAX_CAPABILITY_PAGES = 4096;
