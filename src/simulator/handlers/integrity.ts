/** Part 3 §22 "Integrity Collection (PCR)": Read, Extend, Event, Reset with PC Client locality rules. */
import { TPM_RH } from '../../tpm/constants.js';
import { PCR_Event, PCR_Extend, PCR_Read, PCR_Reset } from '../../tpm/commands/index.js';
import { hash } from '../../tpm/crypto/hash.js';
import { LIMITS } from '../../tpm/limits.js';
import { pcrIndices } from '../../tpm/pcr.js';
import { TPM_RC, TpmError } from '../../tpm/rc.js';
import type { TPMS_PCR_SELECTION, TPMT_HA } from '../../tpm/types/index.js';
import type { TpmEngine } from '../engine.js';
import { canExtend, canReset, isNoIncrement } from '../pcr-rules.js';
import { handler, ok } from './handler.js';

/** PCR[i] := H(PCR[i] ‖ digest) (Part 1 §17.5). */
function extendOne(engine: TpmEngine, index: number, hashAlg: number, digest: Uint8Array): void {
  const bank = engine.volatile.pcrs.get(hashAlg);
  if (bank === undefined) return; // Part 3 §22.2: digests for banks that are not allocated are ignored
  const old = bank[index]!;
  const data = new Uint8Array(old.length + digest.length);
  data.set(old);
  data.set(digest, old.length);
  bank[index] = hash(hashAlg as never, data);
}

function bump(engine: TpmEngine, index: number): void {
  if (!isNoIncrement(index)) engine.volatile.pcrUpdateCounter = (engine.volatile.pcrUpdateCounter + 1) >>> 0;
}

export const pcrExtendHandler = handler(PCR_Extend, ({ engine, locality }, { pcrHandle }, { digests }) => {
  if (pcrHandle === TPM_RH.NULL) return ok<typeof PCR_Extend>({});
  if (!canExtend(pcrHandle, locality)) throw new TpmError(TPM_RC.LOCALITY);
  for (const d of digests as TPMT_HA[]) if ('digest' in d) extendOne(engine, pcrHandle, d.hashAlg, d.digest);
  bump(engine, pcrHandle);
  return ok<typeof PCR_Extend>({});
});

/** Part 3 §22.3: the event is hashed with every implemented bank's algorithm; allocated banks are extended. */
export const pcrEventHandler = handler(PCR_Event, ({ engine, locality }, { pcrHandle }, { eventData }) => {
  if (pcrHandle !== TPM_RH.NULL && !canExtend(pcrHandle, locality)) throw new TpmError(TPM_RC.LOCALITY);
  const digests = engine.state.pcrAllocation.map((b) => ({ hashAlg: b.hashAlg, digest: hash(b.hashAlg, eventData) }));
  if (pcrHandle !== TPM_RH.NULL) {
    for (const d of digests) extendOne(engine, pcrHandle, d.hashAlg, d.digest);
    bump(engine, pcrHandle);
  }
  return ok<typeof PCR_Event>({ digests: digests as never });
});

/**
 * Part 3 §22.4: values in selection order, at most MAX_DIGEST_LIST (8) of
 * them; pcrSelectionOut names exactly those returned, so the caller asks
 * again for the rest. Unallocated banks and PCRs come back deselected.
 */
export const pcrReadHandler = handler(PCR_Read, ({ engine }, _h, { pcrSelectionIn }) => {
  const values: Uint8Array[] = [];
  const out: TPMS_PCR_SELECTION[] = [];
  for (const sel of pcrSelectionIn as TPMS_PCR_SELECTION[]) {
    const select = new Uint8Array(sel.pcrSelect.length);
    const bank = engine.volatile.pcrs.get(sel.hash);
    if (bank !== undefined) {
      for (const i of pcrIndices(sel)) {
        if (i >= bank.length || values.length === LIMITS.MAX_DIGEST_LIST) continue;
        values.push(bank[i]!.slice());
        select[i >> 3]! |= 1 << (i & 7);
      }
    }
    out.push({ hash: sel.hash, pcrSelect: select });
  }
  return ok<typeof PCR_Read>({ pcrUpdateCounter: engine.volatile.pcrUpdateCounter, pcrSelectionOut: out, pcrValues: values });
});

/** Part 3 §22.8: only PCRs the locality may reset; all banks go back to zero (a DRTM reset leaves 17–22 at zero too). */
export const pcrResetHandler = handler(PCR_Reset, ({ engine, locality }, { pcrHandle }) => {
  if (!canReset(pcrHandle, locality)) throw new TpmError(TPM_RC.LOCALITY);
  for (const bank of engine.volatile.pcrs.values()) bank[pcrHandle] = new Uint8Array(bank[pcrHandle]!.length);
  bump(engine, pcrHandle);
  return ok<typeof PCR_Reset>({});
});
