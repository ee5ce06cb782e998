/**
 * GetCapability paging (Part 3 §30.2): a TPM returns as much as fits and sets
 * moreData; the next call starts at the property after the last one returned.
 * What "the property" of an item is depends on the capability.
 */
import { PT_FIXED, PT_VAR, TPM_CAP, TPM_HT, TPM_RH } from './constants.js';
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
  const next = (v: number | undefined): number | undefined => (v === undefined ? undefined : (v + 1) >>> 0);
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
