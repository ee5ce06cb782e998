/**
 * PCR selections (Part 2 §10.6.2 TPMS_PCR_SELECTION): PCR n is bit (n mod 8)
 * of byte ⌊n/8⌋ of pcrSelect. Pure helpers shared by the client (reading all
 * banks in pages), the verifier (what a quote covers) and policy digests.
 */
import { readCapability } from './capability.js';
import { PCR_Read } from './commands/index.js';
import { TPM_CAP } from './constants.js';
import { ArgumentError, TransportError } from './errors.js';
import { LIMITS } from './limits.js';
import { runCommand, type RunResult } from './run.js';
import type { SendOptions, Transport } from './transport/transport.js';
import type { TPMS_PCR_SELECTION } from './types/index.js';

/** A selection of `indices` in bank `hash`; `sizeofSelect` 3 covers the PC Client's 24 PCRs. */
export function pcrSelection(hash: TPMS_PCR_SELECTION['hash'], indices: Iterable<number>, sizeofSelect = 3): TPMS_PCR_SELECTION {
  if (!Number.isInteger(sizeofSelect) || sizeofSelect < 0 || sizeofSelect > LIMITS.PCR_SELECT_MAX) {
    throw new ArgumentError(`sizeofSelect ${sizeofSelect} is outside 0..${LIMITS.PCR_SELECT_MAX}`);
  }
  const pcrSelect = new Uint8Array(sizeofSelect);
  for (const i of indices) {
    if (!Number.isInteger(i) || i < 0 || i >= sizeofSelect * 8) throw new ArgumentError(`PCR ${i} does not fit a ${sizeofSelect}-byte selection`);
    pcrSelect[i >> 3]! |= 1 << (i & 7);
  }
  return { hash, pcrSelect };
}

/** The PCR indices a selection names, ascending (the order a TPM returns and digests them). */
export function pcrIndices(selection: TPMS_PCR_SELECTION): number[] {
  const out: number[] = [];
  const select = selection.pcrSelect;
  for (let i = 0; i < select.length; i++) {
    const byte = select[i]!;
    if (byte !== 0) for (let bit = 0; bit < 8; bit++) if (byte & (1 << bit)) out.push(i * 8 + bit);
  }
  return out;
}

/**
 * What is left of `wanted` once `got` has been read: PCR_Read returns at most
 * eight digests (TPML_DIGEST) and says which in pcrSelectionOut (Part 3 §22.4),
 * so reading a whole bank takes several calls. Empty banks are dropped.
 */
export function subtractSelections(wanted: readonly TPMS_PCR_SELECTION[], got: readonly TPMS_PCR_SELECTION[]): TPMS_PCR_SELECTION[] {
  const out: TPMS_PCR_SELECTION[] = [];
  for (const w of wanted) {
    const rest = w.pcrSelect.slice();
    for (const g of got) {
      if (g.hash !== w.hash) continue;
      for (let i = 0; i < rest.length && i < g.pcrSelect.length; i++) rest[i]! &= ~g.pcrSelect[i]!;
    }
    if (rest.some((b) => b !== 0)) out.push({ hash: w.hash, pcrSelect: rest });
  }
  return out;
}

function countSelected(selections: readonly TPMS_PCR_SELECTION[]): number {
  let n = 0;
  for (const s of selections) {
    for (const byte of s.pcrSelect) {
      // Population count of one byte.
      let b = byte;
      while (b !== 0) {
        b &= b - 1;
        n++;
      }
    }
  }
  return n;
}

/**
 * Reads every PCR of `selections` (by default all banks the TPM allocates),
 * in as many PCR_Read calls as it takes. Returns bank → PCR index → value.
 * A TPM that returns nothing new for a call is an error rather than a loop.
 */
export async function readPcrs(
  transport: Transport,
  selections?: readonly TPMS_PCR_SELECTION[],
  options: SendOptions = {},
): Promise<Map<number, Map<number, Uint8Array>>> {
  let wanted = (selections ?? (await readCapability(transport, TPM_CAP.PCRS, undefined, options))).filter((s) => s.pcrSelect.some((b) => b !== 0));
  const values = new Map<number, Map<number, Uint8Array>>();
  while (wanted.length > 0) {
    const { params }: RunResult<typeof PCR_Read> = await runCommand(transport, PCR_Read, {}, { pcrSelectionIn: wanted }, options);
    const digests = params.pcrValues;
    let next = 0;
    for (const sel of params.pcrSelectionOut) {
      const bank = values.get(sel.hash) ?? new Map<number, Uint8Array>();
      values.set(sel.hash, bank);
      for (const i of pcrIndices(sel)) {
        const d = digests[next++];
        if (d === undefined) throw new TransportError('transport.protocol', 'PCR_Read returned fewer digests than its selection names');
        bank.set(i, d);
      }
    }
    if (next !== digests.length) throw new TransportError('transport.protocol', 'PCR_Read returned more digests than its selection names');
    if (next === 0) break; // nothing more the TPM will give (e.g. a PCR it does not implement)
    const rest = subtractSelections(wanted, params.pcrSelectionOut);
    // Each answer must name only PCRs still wanted, so every call shrinks the selection and the loop ends.
    if (countSelected(wanted) - countSelected(rest) !== next) {
      throw new TransportError('transport.protocol', 'PCR_Read returned PCRs that were not asked for');
    }
    wanted = rest;
  }
  return values;
}
