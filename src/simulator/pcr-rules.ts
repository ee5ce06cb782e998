/**
 * PC Client PCR attributes (PC Client Platform TPM Profile, "PCR
 * attributes"; the reference implementation's PC Client table): which
 * localities may extend and reset each PCR, which PCRs a Shutdown(STATE)
 * saves, and their reset values.
 */

/** Localities as a bit mask: bit n = locality n. */
interface PcrRule {
  readonly stateSave: boolean;
  readonly extend: number;
  readonly reset: number;
}

function rule(index: number): PcrRule {
  if (index <= 15) return { stateSave: true, extend: 0x1f, reset: 0 }; // SRTM: reset only by TPM Reset
  if (index === 16 || index === 23) return { stateSave: false, extend: 0x1f, reset: 0x1f }; // debug and application: anyone
  if (index <= 19) return { stateSave: false, extend: 0x1c, reset: 0x10 }; // DRTM 17–19: extend 2–4, reset 4
  return { stateSave: false, extend: 0x1c, reset: 0x14 }; // 20–22: extend 2–4, reset 2 and 4
}

export function canExtend(index: number, locality: number): boolean {
  return locality <= 4 && (rule(index).extend & (1 << locality)) !== 0;
}

export function canReset(index: number, locality: number): boolean {
  return locality <= 4 && (rule(index).reset & (1 << locality)) !== 0;
}

/** Saved by Shutdown(STATE), restored by the next Startup(STATE) (Part 1 §36.8 TPM Resume). */
export function isStateSaved(index: number): boolean {
  return rule(index).stateSave;
}

/** PCRs whose changes do not bump pcrUpdateCounter (TPM_PT_PCR_NO_INCREMENT): debug and application PCRs. */
export function isNoIncrement(index: number): boolean {
  return index === 16 || index === 23;
}

/**
 * Value after Startup: the DRTM PCRs 17–22 start at all ones so that a
 * quote proves whether a dynamic launch (which resets them to zero) happened.
 */
export function startupValue(index: number, size: number): Uint8Array {
  return new Uint8Array(size).fill(index >= 17 && index <= 22 ? 0xff : 0);
}

/** The localities mask of a TPM_PT_PCR property: which PCRs a locality may extend/reset. */
export function pcrsFor(kind: 'extend' | 'reset', locality: number, count: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < count; i++) if ((kind === 'extend' ? canExtend(i, locality) : canReset(i, locality))) out.push(i);
  return out;
}
