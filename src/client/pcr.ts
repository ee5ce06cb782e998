/**
 * Platform Configuration Registers (Part 3 §22 "Integrity Collection (PCR)"):
 * read every bank, extend, record an event, reset, and change the allocation
 * of banks, as typed async functions over a `Tpm`.
 *
 * PCRs are named by their handle (0..23 on a PC Client TPM) and authorized by
 * their authValue, which is empty unless PCR_SetAuthValue gave one.
 */
import { readCapability } from '../tpm/capability.js';
import { PCR_Allocate, PCR_Event, PCR_Extend, PCR_Reset } from '../tpm/commands/index.js';
import { HANDLE_RANGE, TPM_CAP, TPM_RH } from '../tpm/constants.js';
import { digestSize, hash as softwareHash, isHashSupported } from '../tpm/crypto/hash.js';
import { ClientError } from '../tpm/errors.js';
import { handleName } from '../tpm/names.js';
import { pcrSelection, readPcrs } from '../tpm/pcr.js';
import { sendOptionsOf, type SendOptions } from '../tpm/transport/transport.js';
import type { TPMI_ALG_HASH, TPMS_PCR_SELECTION, TPMT_HA } from '../tpm/types/index.js';
import type { Entity, Handle, Tpm, TpmRunOptions } from './tpm.js';

const EMPTY = new Uint8Array(0);

/** PCR values by bank (TPM_ALG_ID) and PCR index. */
export type PcrValues = Map<number, Map<number, Uint8Array>>;

export interface PcrOptions extends TpmRunOptions {
  /** The PCR's authValue; empty by default (PC Client PCRs have none). */
  readonly pcrAuth?: Uint8Array;
}

function checkPcr(operation: string, pcr: number): void {
  if (!Number.isInteger(pcr) || pcr < HANDLE_RANGE.PCR[0] || pcr > HANDLE_RANGE.PCR[1]) {
    throw new ClientError('client.argument', `${operation}: PCR ${String(pcr)} is outside 0..${HANDLE_RANGE.PCR[1]}`);
  }
}



/** A PCR as an Entity: named by its handle (Part 1 §16.2), authorized by its authValue. */
function pcrEntity(pcr: number, authValue: Uint8Array | undefined): Entity {
  return { handle: pcr, name: handleName(pcr), authValue: authValue ?? EMPTY };
}

/** TPM_CAP_PCRS: every bank the TPM implements, with the PCRs allocated in it (none for an unallocated bank). */
async function implementedBanks(tpm: Tpm, options: SendOptions): Promise<TPMS_PCR_SELECTION[]> {
  return readCapability(tpm.channel, TPM_CAP.PCRS, undefined, sendOptionsOf(options));
}

/**
 * The allocated PCR banks and the PCRs each has (GetCapability(TPM_CAP_PCRS),
 * Part 3 §30.2), empty banks left out.
 *
 * @throws TpmError; TransportError.
 */
export async function pcrBanks(tpm: Tpm, options: SendOptions = {}): Promise<TPMS_PCR_SELECTION[]> {
  return (await implementedBanks(tpm, options)).filter((s) => s.pcrSelect.some((b) => b !== 0));
}

/**
 * Reads PCR values (PCR_Read, Part 3 §22.4): every PCR of every allocated
 * bank by default, or the given selections, paging as the core's readPcrs
 * does. Commands go through the Tpm's queue, in order with the caller's other
 * commands (an extend queued before stays before).
 *
 * @throws TransportError `transport.protocol` for an answer whose digests do not fit its selection or that names
 *   PCRs not asked for; TpmError; TransportError.
 */
export function pcrRead(tpm: Tpm, selections?: readonly TPMS_PCR_SELECTION[], options: SendOptions = {}): Promise<PcrValues> {
  // Not async: with selections given, the core's promise is returned as it is, without another wrap.
  try {
    if (selections !== undefined) return readPcrs(tpm.channel, selections, sendOptionsOf(options));
    return pcrBanks(tpm, options).then((banks) => readPcrs(tpm.channel, banks, sendOptionsOf(options)));
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * Extends `pcr` with the given digests, one per bank to extend (PCR_Extend,
 * Part 3 §22.2): PCR_new = H_bank(PCR_old ‖ digest). Banks not named are left alone.
 *
 * @throws ClientError `client.argument` for a PCR outside 0..31 or a digest of the wrong size; TpmError
 *   (TPM_RC_LOCALITY when the PCR cannot be extended from this locality); SessionError; TransportError.
 */
export async function pcrExtend(tpm: Tpm, pcr: number, digests: readonly TPMT_HA[], options: PcrOptions = {}): Promise<void> {
  checkPcr('pcrExtend', pcr);
  for (const d of digests) {
    if (!('digest' in d) || !(d.digest instanceof Uint8Array) || d.digest.length !== digestSize(d.hashAlg)) {
      throw new ClientError('client.argument', `pcrExtend: the digest for hash 0x${Number(d.hashAlg).toString(16)} is missing or of the wrong size`);
    }
  }
  await tpm.run(PCR_Extend, { pcrHandle: pcrEntity(pcr, options.pcrAuth) }, { digests: [...digests] }, options);
}

export interface ExtendDataOptions extends PcrOptions {
  /** The banks to extend; every allocated bank by default. */
  readonly banks?: readonly TPMI_ALG_HASH[];
}

/**
 * Measures `data` into `pcr`: hashes it here (node:crypto) with each bank's
 * hash and extends the banks with the digests, in one PCR_Extend. Returns
 * the digests extended. Unlike PCR_Event, the data never goes to the TPM.
 *
 * @throws ClientError `client.argument` for a bank node:crypto cannot hash; as pcrExtend.
 */
export async function pcrExtendData(tpm: Tpm, pcr: number, data: Uint8Array, options: ExtendDataOptions = {}): Promise<TPMT_HA[]> {
  checkPcr('pcrExtendData', pcr);
  if (!(data instanceof Uint8Array)) throw new ClientError('client.argument', 'pcrExtendData: data must be a Uint8Array');
  const banks = options.banks ?? (await pcrBanks(tpm, options)).map((s) => s.hash);
  const digests = banks.map((hashAlg) => {
    if (!isHashSupported(hashAlg)) throw new ClientError('client.argument', `pcrExtendData: bank 0x${Number(hashAlg).toString(16)} cannot be computed here`);
    return { hashAlg, digest: softwareHash(hashAlg, data) } as TPMT_HA;
  });
  await pcrExtend(tpm, pcr, digests, options);
  return digests;
}

/**
 * Records an event (PCR_Event, Part 3 §22.3): the TPM hashes `eventData`
 * (at most 1024 bytes) with every hash it implements, extends each allocated
 * bank of `pcr` with its digest, and returns the digests, one per hash.
 * TPM_RH_NULL as `pcr` only computes the digests.
 *
 * @throws ClientError `client.argument` for a bad PCR; TpmError; SessionError; TransportError.
 */
export async function pcrEvent(tpm: Tpm, pcr: number, eventData: Uint8Array, options: PcrOptions = {}): Promise<TPMT_HA[]> {
  if (pcr !== TPM_RH.NULL) checkPcr('pcrEvent', pcr);
  const handle: Handle = pcr === TPM_RH.NULL ? pcr : pcrEntity(pcr, options.pcrAuth);
  const r = await tpm.run(PCR_Event, { pcrHandle: handle }, { eventData }, options);
  return r.params.digests;
}

/**
 * Resets a resettable PCR to its default value (PCR_Reset, Part 3 §22.8),
 * every bank at once. Which PCRs may be reset, and from which locality, is
 * the platform's choice (PC Client: 16 and 23 from any locality, 17–22 from
 * 2–4); give `options.locality` to send from another locality.
 *
 * @throws ClientError `client.argument`; TpmError (TPM_RC_LOCALITY); SessionError; TransportError.
 */
export async function pcrReset(tpm: Tpm, pcr: number, options: PcrOptions = {}): Promise<void> {
  checkPcr('pcrReset', pcr);
  await tpm.run(PCR_Reset, { pcrHandle: pcrEntity(pcr, options.pcrAuth) }, {}, options);
}

/** PCR_Allocate's answer (Part 3 §22.5). */
export interface PcrAllocation {
  /** Whether the TPM accepted the allocation; it takes effect at the next Startup(CLEAR). */
  readonly success: boolean;
  /** The most PCRs a bank may have. */
  readonly maxPCR: number;
  /** Bytes the requested allocation needs, and bytes available for it. */
  readonly sizeNeeded: number;
  readonly sizeAvailable: number;
}

export interface PcrAllocateOptions extends TpmRunOptions {
  /** TPM_RH_PLATFORM (the default) as an Entity when the platform authValue is set. */
  readonly auth?: Handle;
  /**
   * Deallocate every implemented bank not in `banks`, so `banks` becomes the
   * whole allocation (default false: PCR_Allocate leaves unnamed banks as they are).
   */
  readonly exclusive?: boolean;
}

/**
 * Changes which PCR banks are allocated (PCR_Allocate, Part 3 §22.5), with
 * platform authorization. `banks` lists the banks to set, each with its PCRs
 * (`[0..23]` by default; `[]` deallocates the bank). Banks not listed keep
 * their allocation, unless `options.exclusive` deallocates them. Takes effect
 * after the next _TPM_Init and Startup(CLEAR).
 *
 * @throws ClientError `client.argument` for a PCR index outside the selection; TpmError (TPM_RC_PCR when no bank
 *   would remain, TPM_RC_HASH for a bank the TPM lacks); SessionError; TransportError.
 */
export async function pcrAllocate(
  tpm: Tpm,
  banks: readonly { readonly hashAlg: TPMI_ALG_HASH; readonly pcrs?: readonly number[] }[],
  options: PcrAllocateOptions = {},
): Promise<PcrAllocation> {
  const pcrAllocation = banks.map((b) => {
    const pcrs = b.pcrs ?? Array.from({ length: 24 }, (_, i) => i);
    try {
      return pcrSelection(b.hashAlg, pcrs);
    } catch (cause) {
      throw new ClientError('client.argument', `pcrAllocate: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    }
  });
  if (options.exclusive === true) {
    // Every bank the TPM implements is listed by TPM_CAP_PCRS, allocated or not (Part 3 §30.2).
    for (const implemented of await implementedBanks(tpm, options)) {
      if (!pcrAllocation.some((s) => s.hash === implemented.hash)) pcrAllocation.push(pcrSelection(implemented.hash, []));
    }
  }
  const r = await tpm.run(PCR_Allocate, { authHandle: options.auth ?? TPM_RH.PLATFORM }, { pcrAllocation }, options);
  return {
    success: r.params.allocationSuccess === 1,
    maxPCR: r.params.maxPCR,
    sizeNeeded: r.params.sizeNeeded,
    sizeAvailable: r.params.sizeAvailable,
  };
}

/**
 * The value a PCR would have after extending `from` with each digest in turn,
 * computed here: PCR = H(PCR ‖ digest) (Part 1 §17.5.1 "PCR Extend"). The
 * start value is zeros of the hash size by default (a PCR after reset).
 *
 * @throws ClientError `client.argument` for a hash node:crypto lacks or digests of the wrong size.
 */
export function expectedPcr(hashAlg: TPMI_ALG_HASH, digests: readonly Uint8Array[], from?: Uint8Array): Uint8Array {
  if (!isHashSupported(hashAlg)) throw new ClientError('client.argument', `expectedPcr: hash 0x${Number(hashAlg).toString(16)} cannot be computed here`);
  const size = digestSize(hashAlg);
  let v = from ?? new Uint8Array(size);
  if (v.length !== size) throw new ClientError('client.argument', `expectedPcr: start value of ${v.length} bytes, the bank has ${size}`);
  for (const d of digests) {
    if (d.length !== size) throw new ClientError('client.argument', `expectedPcr: a ${d.length}-byte digest in a ${size}-byte bank`);
    v = softwareHash(hashAlg, v, d);
  }
  return v;
}
