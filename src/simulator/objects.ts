/**
 * The transient-object table of one TpmEngine (Part 1 §30.2 "transient
 * objects"): a fixed number of slots, as in the reference's `s_objects`
 * array. Slot i is handle TRANSIENT_FIRST + i, as the reference numbers them
 * (`ObjectIndexToTransientHandle`), so a freed slot's handle is reused.
 * A power cycle empties the table (_TPM_Init, Part 1 §36.4).
 */
import type { KeyObject } from 'node:crypto';
import { HANDLE_RANGE, TPM_HT } from '../tpm/constants.js';
import { TPM_RC, TpmError } from '../tpm/rc.js';
import type { TPMT_PUBLIC, TPMT_SENSITIVE } from '../tpm/types/index.js';

/** A loaded object: its areas, Names, the hierarchy it belongs to and its node:crypto key. */
export interface LoadedObject {
  readonly publicArea: TPMT_PUBLIC;
  readonly sensitive: TPMT_SENSITIVE;
  readonly name: Uint8Array;
  /** Part 1 §16.6; for a primary, H(hierarchy handle ‖ Name). */
  readonly qualifiedName: Uint8Array;
  /** TPM_RH.OWNER, ENDORSEMENT, PLATFORM or NULL: whose proof signs its tickets. */
  readonly hierarchy: number;
  /** Created by CreatePrimary (a primary's parent is its hierarchy). */
  readonly primary: boolean;
  /** An RSA or EC private key, or a secret key. */
  readonly key: KeyObject;
}

const FIRST = HANDLE_RANGE.TRANSIENT[0];

export class ObjectTable {
  private readonly slots: (LoadedObject | undefined)[];
  readonly capacity: number;

  constructor(capacity: number) {
    this.capacity = capacity;
    this.slots = Array.from({ length: capacity }, () => undefined);
  }

  /**
   * Puts `object` in the first free slot and returns its handle.
   * @throws TpmError TPM_RC_OBJECT_MEMORY when every slot is taken (Part 3 §24.1, §12.2).
   */
  load(object: LoadedObject): number {
    const i = this.slots.indexOf(undefined);
    if (i < 0) throw new TpmError(TPM_RC.OBJECT_MEMORY);
    this.slots[i] = object;
    return FIRST + i;
  }

  /** The object at a transient handle, or undefined. */
  get(handle: number): LoadedObject | undefined {
    if (handle >>> 24 !== TPM_HT.TRANSIENT) return undefined;
    const i = handle - FIRST;
    return i >= 0 && i < this.capacity ? this.slots[i] : undefined;
  }

  /** Frees a slot; false when nothing was loaded there. */
  flush(handle: number): boolean {
    if (this.get(handle) === undefined) return false;
    this.slots[handle - FIRST] = undefined;
    return true;
  }

  /** Loaded handles, ascending (TPM_CAP_HANDLES). */
  handles(): number[] {
    const out: number[] = [];
    this.slots.forEach((o, i) => {
      if (o !== undefined) out.push(FIRST + i);
    });
    return out;
  }

  get count(): number {
    return this.slots.filter((o) => o !== undefined).length;
  }

  /** Empties every slot (_TPM_Init; Startup(CLEAR) flushes transient objects too, Part 1 §36.7). */
  clear(): void {
    this.slots.fill(undefined);
  }
}
