/**
 * PC Client PCR attributes (PC Client Platform TPM Profile, "PCR
 * attributes"), as libtpms has them (the reference's s_initAttributes and
 * PCRIsResetAllowed, checked against swtpm): which localities may extend and
 * reset each PCR, which PCRs a Shutdown(STATE) saves, which changes leave
 * pcrUpdateCounter alone, and their reset values.
 */

/** Localities as a bit mask: bit n = locality n. */
interface PcrRule {
  readonly stateSave: boolean;
  readonly extend: number;
  readonly reset: number;
}

function rule(index: number): PcrRule {
  if (index <= 15) return { stateSave: true, extend: 0x1f, reset: 0 }; // SRTM: reset only by TPM Reset
  if (index === 16 || index === 23) return { stateSave: false, extend: 0x1f, reset: 0x0f }; // debug and application
  if (index <= 18) return { stateSave: false, extend: 0x1c, reset: 0x10 }; // DRTM 17–18: extend 2–4
  if (index === 19) return { stateSave: false, extend: 0x0c, reset: 0x10 }; // extend 2–3
  if (index === 20) return { stateSave: false, extend: 0x0e, reset: 0x14 }; // extend 1–3, reset 2 (and 4 by DRTM)
  return { stateSave: false, extend: 0x04, reset: 0x14 }; // 21–22: extend 2, reset 2 (and 4 by DRTM)
}

export function canExtend(index: number, locality: number): boolean {
  return locality <= 4 && (rule(index).extend & (1 << locality)) !== 0;
}

/**
 * PCR_Reset's rule. Locality 4 never resets with PCR_Reset on a TPM that
 * does DRTM (the reference's PCRIsResetAllowed): PCRs whose attributes name
 * locality 4 are reset by the DRTM sequence (_TPM_Hash_Start) instead.
 */
export function canReset(index: number, locality: number): boolean {
  return locality <= 3 && (rule(index).reset & (1 << locality)) !== 0;
}

/** Saved by Shutdown(STATE), restored by the next Startup(STATE) (Part 1 §36.8 TPM Resume). */
export function isStateSaved(index: number): boolean {
  return rule(index).stateSave;
}

/**
 * PCRs whose changes do not bump pcrUpdateCounter (TPM_PT_PCR_NO_INCREMENT):
 * debug, application and the dynamic OS's 21–22, as libtpms counts (and
 * reports) them.
 */
export function isNoIncrement(index: number): boolean {
  return index === 16 || index === 21 || index === 22 || index === 23;
}

/**
 * How much a Startup moves pcrUpdateCounter: each PCR it resets counts as a
 * change, as in the reference's PCRStartup (PCRChanged per PCR index, once
 * for all banks), except the PCRs that never bump it (isNoIncrement) and, on a
 * TPM Resume, the PCRs whose values it restores. libtpms: 20 after a TPM Reset
 * or Restart, 4 (PCRs 17–20) after a Resume.
 */
export function startupPcrChanges(count: number, resume: boolean): number {
  let n = 0;
  for (let i = 0; i < count; i++) if (!isNoIncrement(i) && !(resume && isStateSaved(i))) n++;
  return n;
}

/**
 * Value after Startup: the DRTM PCRs 17–22 start at all ones so that a
 * quote proves whether a dynamic launch (which resets them to zero) happened.
 */
export function startupValue(index: number, size: number): Uint8Array {
  return new Uint8Array(size).fill(index >= 17 && index <= 22 ? 0xff : 0);
}

/**
 * The PCRs of a TPM_PT_PCR_EXTEND_Ln / RESET_Ln property: from the attributes
 * (the reference's PCRGetProperty), so RESET_L4 lists the DRTM PCRs though
 * PCR_Reset never resets at locality 4.
 */
export function pcrsFor(kind: 'extend' | 'reset', locality: number, count: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < count; i++) if ((kind === 'extend' ? rule(i).extend : rule(i).reset) & (1 << locality)) out.push(i);
  return out;
}
