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
  /** An RSA or EC private key, or a secret key; for a publicOnly RSA/ECC object its public key. */
  readonly key: KeyObject;
  /**
   * Loaded with LoadExternal without a sensitive area (the reference's
   * `publicOnly` attribute): `sensitive` is empty, nothing may be signed,
   * decrypted or unsealed with it, and EvictControl refuses it (Part 3 §28.5).
   */
  readonly publicOnly?: boolean;
}

/**
 * A hash, HMAC or event sequence (Part 3 §17): it takes an object slot and a
 * transient handle like an object, but it is no object to any other command.
 * The state lives in ../sequences.ts; the table only needs to tell the kinds apart.
 */
export interface SequenceSlot {
  readonly sequence: true;
}

const FIRST = HANDLE_RANGE.TRANSIENT[0];

function isSequence(o: LoadedObject | SequenceSlot | undefined): o is SequenceSlot {
  return o !== undefined && 'sequence' in o && o.sequence === true;
}

export class ObjectTable {
  private readonly slots: (LoadedObject | SequenceSlot | undefined)[];
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

  /**
   * Puts a sequence in the first free slot and returns its handle.
   * @throws TpmError TPM_RC_OBJECT_MEMORY when every slot is taken (Part 3 §17.2, §17.4).
   */
  loadSequence<S extends SequenceSlot>(sequence: S): number {
    const i = this.slots.indexOf(undefined);
    if (i < 0) throw new TpmError(TPM_RC.OBJECT_MEMORY);
    this.slots[i] = sequence;
    return FIRST + i;
  }

  private slot(handle: number): LoadedObject | SequenceSlot | undefined {
    if (handle >>> 24 !== TPM_HT.TRANSIENT) return undefined;
    const i = handle - FIRST;
    return i >= 0 && i < this.capacity ? this.slots[i] : undefined;
  }

  /** The object at a transient handle, or undefined (also for a sequence: it is no object). */
  get(handle: number): LoadedObject | undefined {
    const o = this.slot(handle);
    return isSequence(o) ? undefined : o;
  }

  /** The sequence at a transient handle, or undefined. */
  getSequence(handle: number): SequenceSlot | undefined {
    const o = this.slot(handle);
    return isSequence(o) ? o : undefined;
  }

  /** Whether an object or a sequence occupies the handle's slot (Part 3 §5.3: the handle exists). */
  has(handle: number): boolean {
    return this.slot(handle) !== undefined;
  }

  /** Frees a slot (object or sequence); false when nothing was loaded there. */
  flush(handle: number): boolean {
    if (this.slot(handle) === undefined) return false;
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
