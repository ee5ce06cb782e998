/**
 * TCG PC Client event logs (the UEFI "measured boot" log): parsing, replay to
 * PCR values, and the comparison of a replay with quoted PCRs.
 *
 * Two formats (TCG PC Client Platform Firmware Profile, PFP r1.05 §10; the
 * layouts in tpm-spec-facts.md §10), every integer little-endian:
 *  - SHA-1 ("legacy", TCG_PCR_EVENT): `pcrIndex u32 | eventType u32 |
 *    digest[20] | eventSize u32 | event`, for every record;
 *  - crypto-agile: the first record is a TCG_PCR_EVENT whose body is the
 *    Spec ID event (TCG_EfiSpecIDEvent, "Spec ID Event03"), which lists each
 *    hash algorithm with its digest size; every later record is a
 *    TCG_PCR_EVENT2: `pcrIndex u32 | eventType u32 | count u32 |
 *    {algId u16, digest[size from the table]} × count | eventSize u32 | event`.
 *
 * Only pcrIndex and the digests are protected by a quote: the replay proves
 * that the digests are what the TPM extended, nothing more. The event type
 * and the event data are the log writer's claims (see events.ts for which
 * data can be checked against its digest, and why decisions must not rest
 * on the type alone).
 *
 * Parsing is bounded: sizes are checked against what is left of the log
 * before anything is read or allocated, event sizes against
 * MAX_EVENT_SIZE, the record count against MAX_EVENT_COUNT. Every failure is
 * an EventLogError (`evidence.eventlog`) with the byte offset and a stable
 * `reason`. Nothing here does I/O or reads the clock.
 */
import { TPM_ALG } from '../tpm/constants.js';
import { digestSize, hash, isHashAlg, isHashSupported } from '../tpm/crypto/hash.js';
import { EvidenceError } from '../tpm/errors.js';
import { pcrIndices } from '../tpm/pcr.js';
import type { TPMS_PCR_SELECTION } from '../tpm/types/index.js';
import { fail, notPerformed, pass, verdict, warn, type Check, type Verdict } from './verdict.js';
import { equalBytes } from '../tpm/bytes.js';

/**
 * Event types (PFP r1.05 §10.4.1 Table 9 and the EV_EFI_* range; values as
 * in tpm2-tools lib/efi_event.h and go-eventlog tcg/events.go).
 */
export const EV = {
  PREBOOT_CERT: 0x0,
  POST_CODE: 0x1,
  UNUSED: 0x2,
  NO_ACTION: 0x3,
  SEPARATOR: 0x4,
  ACTION: 0x5,
  EVENT_TAG: 0x6,
  S_CRTM_CONTENTS: 0x7,
  S_CRTM_VERSION: 0x8,
  CPU_MICROCODE: 0x9,
  PLATFORM_CONFIG_FLAGS: 0xa,
  TABLE_OF_DEVICES: 0xb,
  COMPACT_HASH: 0xc,
  IPL: 0xd,
  IPL_PARTITION_DATA: 0xe,
  NONHOST_CODE: 0xf,
  NONHOST_CONFIG: 0x10,
  NONHOST_INFO: 0x11,
  OMIT_BOOT_DEVICE_EVENTS: 0x12,
  EFI_EVENT_BASE: 0x80000000,
  EFI_VARIABLE_DRIVER_CONFIG: 0x80000001,
  EFI_VARIABLE_BOOT: 0x80000002,
  EFI_BOOT_SERVICES_APPLICATION: 0x80000003,
  EFI_BOOT_SERVICES_DRIVER: 0x80000004,
  EFI_RUNTIME_SERVICES_DRIVER: 0x80000005,
  EFI_GPT_EVENT: 0x80000006,
  EFI_ACTION: 0x80000007,
  EFI_PLATFORM_FIRMWARE_BLOB: 0x80000008,
  EFI_HANDOFF_TABLES: 0x80000009,
  EFI_PLATFORM_FIRMWARE_BLOB2: 0x8000000a,
  EFI_HANDOFF_TABLES2: 0x8000000b,
  EFI_VARIABLE_BOOT2: 0x8000000c,
  EFI_HCRTM_EVENT: 0x80000010,
  EFI_VARIABLE_AUTHORITY: 0x800000e0,
} as const;

export type EventTypeName = keyof typeof EV;

const EV_NAMES: ReadonlyMap<number, EventTypeName> = new Map(Object.entries(EV).map(([k, v]) => [v, k as EventTypeName]));

/** `EV_SEPARATOR`, `EV_EFI_ACTION`, … or `EV_0x…` for a type outside the table. */
export function eventTypeName(eventType: number): string {
  const n = EV_NAMES.get(eventType);
  return n !== undefined ? `EV_${n}` : `EV_0x${(eventType >>> 0).toString(16).padStart(8, '0')}`;
}

/** The largest event body accepted (1 MiB): real bodies stay below 64 KiB (a full dbx is about 25 KiB). */
export const MAX_EVENT_SIZE = 1 << 20;
/** The most records accepted in one log; a UEFI log with grub's per-command events has a few thousand. */
export const MAX_EVENT_COUNT = 65_536;
/** The most algorithms a Spec ID event may list (the TCG registry has fewer than ten hash algorithms). */
export const MAX_SPEC_ID_ALGORITHMS = 16;
/** The largest digest a Spec ID event may declare (sizeof(TPMU_HA), Part 2 §10.3.1: SHA-512). */
export const MAX_DIGEST_SIZE = 64;
/** PC Client TPMs have PCRs 0..23 (PC Client Platform TPM Profile §4.6); extends elsewhere are refused. */
export const MAX_PCR_INDEX = 23;

/** Why a log did not parse; stable, for tests and verdicts (`eventlog.parse`). */
export type EventLogErrorReason =
  | 'log.input' // not a Uint8Array, or empty
  | 'record.truncated' // the log ends inside a record header or digest
  | 'event.size-zero' // an event with no body (PFP: every event carries data)
  | 'event.size-oversized' // an event body larger than MAX_EVENT_SIZE
  | 'event.size-beyond-log' // an event body larger than what is left of the log
  | 'event.count' // more records than MAX_EVENT_COUNT
  | 'event.pcr-index' // an extended event names a PCR outside 0..MAX_PCR_INDEX
  | 'digest.count' // a TCG_PCR_EVENT2 with no digests, or more than the Spec ID event lists
  | 'digest.algorithm-unknown' // a digest whose algorithm the Spec ID event does not list (its size cannot be known)
  | 'digest.algorithm-duplicate' // two digests of one algorithm in one event
  | 'specid.header' // a Spec ID event outside the first record's required header (PCR 0, EV_NO_ACTION)
  | 'specid.truncated' // the Spec ID event ends early
  | 'specid.version' // a Spec ID event other than version 2.0
  | 'specid.uintn-size' // uintnSize other than 1 (UINT32) or 2 (UINT64)
  | 'specid.algorithm-count' // no algorithm, or more than MAX_SPEC_ID_ALGORITHMS
  | 'specid.algorithm-duplicate' // an algorithm listed twice
  | 'specid.digest-size' // a digest size that is not the algorithm's (or 0, or over MAX_DIGEST_SIZE)
  | 'specid.vendor-info' // vendorInfoSize disagrees with the bytes left in the event
  | 'body.truncated' // an event body ends inside a field (events.ts)
  | 'body.size' // a size field inside an event body disagrees with the body (events.ts)
  | 'body.value'; // a field inside an event body holds a value its type forbids (events.ts)

/** A TCG event log, or an event body in it, that does not parse. `offset` is the byte in the log. */
export class EventLogError extends EvidenceError {
  readonly reason: EventLogErrorReason;
  constructor(reason: EventLogErrorReason, message: string, offset: number) {
    super('evidence.eventlog', `${message} (offset ${offset})`, { offset });
    this.reason = reason;
  }
}

/**
 * A bounded little-endian reader over one byte range; every read checks what
 * is left and throws an EventLogError naming the absolute offset in the log.
 * Shared with events.ts; not part of the package's API.
 */
export class LeReader {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  readonly #base: number;
  readonly #truncated: EventLogErrorReason;
  #pos = 0;

  /** `base`: the offset of `bytes[0]` in the log, for error offsets. */
  constructor(bytes: Uint8Array, base: number, truncated: EventLogErrorReason = 'body.truncated') {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#base = base;
    this.#truncated = truncated;
  }

  /** Absolute offset (in the log) of the next byte. */
  get offset(): number {
    return this.#base + this.#pos;
  }

  get remaining(): number {
    return this.#bytes.length - this.#pos;
  }

  #need(n: number, what: string): void {
    if (n > this.remaining) throw new EventLogError(this.#truncated, `${what}: ${n} bytes needed, ${this.remaining} left`, this.offset);
  }

  u8(what: string): number {
    this.#need(1, what);
    return this.#view.getUint8(this.#pos++);
  }

  u16(what: string): number {
    this.#need(2, what);
    const v = this.#view.getUint16(this.#pos, true);
    this.#pos += 2;
    return v;
  }

  u32(what: string): number {
    this.#need(4, what);
    const v = this.#view.getUint32(this.#pos, true);
    this.#pos += 4;
    return v;
  }

  u64(what: string): bigint {
    this.#need(8, what);
    const v = this.#view.getBigUint64(this.#pos, true);
    this.#pos += 8;
    return v;
  }

  /** `n` bytes as a view into the log (no copy). */
  bytes(n: number, what: string): Uint8Array {
    this.#need(n, what);
    const v = this.#bytes.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    return v;
  }

  /** Everything left. */
  rest(): Uint8Array {
    const v = this.#bytes.subarray(this.#pos);
    this.#pos = this.#bytes.length;
    return v;
  }

  /**
   * A u64 length that must fit in what is left (times `unit` bytes each);
   * returned as a number only once it is known to be small.
   */
  length64(what: string, unit = 1): number {
    const at = this.offset;
    const n = this.u64(what);
    if (n > BigInt(Math.floor(this.remaining / unit))) {
      throw new EventLogError('body.size', `${what} ${n} × ${unit} bytes exceeds the ${this.remaining} bytes left`, at);
    }
    return Number(n);
  }
}

/** One digest of an event, in one bank. */
export interface EventDigest {
  readonly hashAlg: number;
  readonly digest: Uint8Array;
}

/** One record of the log, as written (nothing in it is trusted until replayed and checked). */
export interface TcgEvent {
  /** Position in the log: 0 is the first record (the Spec ID event of a crypto-agile log). */
  readonly index: number;
  /** Byte offset of the record in the log. */
  readonly offset: number;
  /** Byte offset of the event body in the log. */
  readonly dataOffset: number;
  readonly pcrIndex: number;
  /** The claimed event type: not covered by any digest. */
  readonly eventType: number;
  /** The digests in log order: one SHA-1 digest in the legacy format, one per listed algorithm (usually) in the crypto-agile one. */
  readonly digests: readonly EventDigest[];
  /** The event body (a view into the log's private copy). */
  readonly data: Uint8Array;
}

/** TCG_EfiSpecIDEvent (PFP r1.05 §10.4.5.1). */
export interface SpecIdEvent {
  /** 0 client, 1 server. */
  readonly platformClass: number;
  readonly specVersionMinor: number;
  readonly specVersionMajor: number;
  readonly specErrata: number;
  /** 1: UINTN is UINT32; 2: UINT64. */
  readonly uintnSize: number;
  /** Every algorithm with its digest size, in table order. */
  readonly algorithms: readonly { readonly algorithmId: number; readonly digestSize: number }[];
  readonly vendorInfo: Uint8Array;
}

export interface EventLog {
  readonly format: 'sha1' | 'crypto-agile';
  /** The Spec ID event (crypto-agile logs only). */
  readonly specId: SpecIdEvent | undefined;
  /** The hash algorithms whose digests the log carries (SHA-1 alone for the legacy format). */
  readonly banks: readonly number[];
  /** Every record, the Spec ID record included (as events[0]). */
  readonly events: readonly TcgEvent[];
  /** Bytes parsed. */
  readonly size: number;
}

const SPEC_ID_SIGNATURE = new TextEncoder().encode('Spec ID Event03\0');
const STARTUP_LOCALITY_SIGNATURE = new TextEncoder().encode('StartupLocality\0');
const LEGACY_HEADER = 32;

function startsWith(data: Uint8Array, prefix: Uint8Array): boolean {
  if (data.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (data[i] !== prefix[i]) return false;
  return true;
}

function checkEventSize(size: number, remaining: number, at: number): void {
  // Checked before any allocation or read: zero, then the absolute bound, then what the log still holds.
  if (size === 0) throw new EventLogError('event.size-zero', 'an event with an empty body', at);
  if (size > MAX_EVENT_SIZE) throw new EventLogError('event.size-oversized', `an event body of ${size} bytes exceeds MAX_EVENT_SIZE (${MAX_EVENT_SIZE})`, at);
  if (size > remaining) throw new EventLogError('event.size-beyond-log', `an event body of ${size} bytes runs past the end of the log (${remaining} bytes left)`, at);
}

function checkPcrIndex(pcrIndex: number, eventType: number, at: number): void {
  // EV_NO_ACTION records are never extended and may name any index (Windows writes 0xFFFFFFFF for its trailer).
  if (eventType !== EV.NO_ACTION && pcrIndex > MAX_PCR_INDEX) {
    throw new EventLogError('event.pcr-index', `${eventTypeName(eventType)} extends PCR ${pcrIndex}, outside 0..${MAX_PCR_INDEX}`, at);
  }
}

function readLegacy(r: LeReader, index: number): TcgEvent {
  const offset = r.offset;
  if (r.remaining < LEGACY_HEADER) throw new EventLogError('record.truncated', `a TCG_PCR_EVENT header needs ${LEGACY_HEADER} bytes, ${r.remaining} left`, offset);
  const pcrIndex = r.u32('pcrIndex');
  const eventType = r.u32('eventType');
  const digest = r.bytes(20, 'digest');
  const sizeAt = r.offset;
  const size = r.u32('eventSize');
  checkEventSize(size, r.remaining, sizeAt);
  checkPcrIndex(pcrIndex, eventType, offset);
  const dataOffset = r.offset;
  const data = r.bytes(size, 'event');
  return { index, offset, dataOffset, pcrIndex, eventType, digests: [{ hashAlg: TPM_ALG.SHA1, digest }], data };
}

function readAgile(r: LeReader, index: number, sizes: ReadonlyMap<number, number>): TcgEvent {
  const offset = r.offset;
  const pcrIndex = r.u32('pcrIndex');
  const eventType = r.u32('eventType');
  const countAt = r.offset;
  const count = r.u32('digests.count');
  if (count === 0 || count > sizes.size) {
    throw new EventLogError('digest.count', `${count} digests; the Spec ID event lists ${sizes.size} algorithm(s)`, countAt);
  }
  const digests: EventDigest[] = [];
  for (let i = 0; i < count; i++) {
    const algAt = r.offset;
    const hashAlg = r.u16('digests.hashAlg');
    const size = sizes.get(hashAlg);
    // An algorithm the Spec ID event does not list has no known size: nothing after it can be read.
    if (size === undefined) throw new EventLogError('digest.algorithm-unknown', `digest algorithm 0x${hashAlg.toString(16).padStart(4, '0')} is not in the Spec ID event`, algAt);
    if (digests.some((d) => d.hashAlg === hashAlg)) throw new EventLogError('digest.algorithm-duplicate', `two digests for algorithm 0x${hashAlg.toString(16).padStart(4, '0')}`, algAt);
    digests.push({ hashAlg, digest: r.bytes(size, 'digests.digest') });
  }
  const sizeAt = r.offset;
  const size = r.u32('eventSize');
  checkEventSize(size, r.remaining, sizeAt);
  checkPcrIndex(pcrIndex, eventType, offset);
  const dataOffset = r.offset;
  const data = r.bytes(size, 'event');
  return { index, offset, dataOffset, pcrIndex, eventType, digests, data };
}

/**
 * TCG_EfiSpecIDEvent (PFP r1.05 §10.4.5.1). Every listed digest size must be
 * the algorithm's own for a known hash, and 1..MAX_DIGEST_SIZE otherwise:
 * event digests are read with these sizes, so a wrong one would misalign
 * every record after it.
 */
export function parseSpecIdEvent(data: Uint8Array, dataOffset = 0): SpecIdEvent {
  const r = new LeReader(data, dataOffset, 'specid.truncated');
  const sig = r.bytes(16, 'signature');
  if (!startsWith(sig, SPEC_ID_SIGNATURE)) throw new EventLogError('specid.header', 'the signature is not "Spec ID Event03"', dataOffset);
  const platformClass = r.u32('platformClass');
  const versionAt = r.offset;
  const specVersionMinor = r.u8('specVersionMinor');
  const specVersionMajor = r.u8('specVersionMajor');
  const specErrata = r.u8('specErrata');
  if (specVersionMajor !== 2 || specVersionMinor !== 0) {
    throw new EventLogError('specid.version', `Spec ID version ${specVersionMajor}.${specVersionMinor}; the crypto-agile log is version 2.0`, versionAt);
  }
  const uintnAt = r.offset;
  const uintnSize = r.u8('uintnSize');
  if (uintnSize !== 1 && uintnSize !== 2) throw new EventLogError('specid.uintn-size', `uintnSize ${uintnSize}, expected 1 or 2`, uintnAt);
  const countAt = r.offset;
  const count = r.u32('numberOfAlgorithms');
  if (count === 0 || count > MAX_SPEC_ID_ALGORITHMS) {
    throw new EventLogError('specid.algorithm-count', `numberOfAlgorithms ${count}, expected 1..${MAX_SPEC_ID_ALGORITHMS}`, countAt);
  }
  const algorithms: { algorithmId: number; digestSize: number }[] = [];
  for (let i = 0; i < count; i++) {
    const at = r.offset;
    const algorithmId = r.u16('digestSizes.algorithmId');
    const size = r.u16('digestSizes.digestSize');
    if (algorithms.some((a) => a.algorithmId === algorithmId)) {
      throw new EventLogError('specid.algorithm-duplicate', `algorithm 0x${algorithmId.toString(16).padStart(4, '0')} is listed twice`, at);
    }
    const expected = isHashAlg(algorithmId) ? digestSize(algorithmId) : undefined;
    if (size === 0 || size > MAX_DIGEST_SIZE || (expected !== undefined && size !== expected)) {
      throw new EventLogError(
        'specid.digest-size',
        `algorithm 0x${algorithmId.toString(16).padStart(4, '0')} with a ${size}-byte digest${expected !== undefined ? `; its digests have ${expected}` : ''}`,
        at,
      );
    }
    algorithms.push({ algorithmId, digestSize: size });
  }
  const vendorAt = r.offset;
  const vendorInfoSize = r.u8('vendorInfoSize');
  if (vendorInfoSize !== r.remaining) {
    throw new EventLogError('specid.vendor-info', `vendorInfoSize ${vendorInfoSize}, but ${r.remaining} bytes follow`, vendorAt);
  }
  return { platformClass, specVersionMinor, specVersionMajor, specErrata, uintnSize, algorithms, vendorInfo: r.rest().slice() };
}

/**
 * Parses a TCG PC Client event log, SHA-1 or crypto-agile (the format is
 * chosen by the first record: a crypto-agile log starts with a Spec ID event
 * in PCR 0, type EV_NO_ACTION). The log is copied, so later changes to
 * `bytes` do not reach the events.
 *
 * @throws EventLogError (`evidence.eventlog`, with `offset` and `reason`) on any malformed record.
 */
export function parseEventLog(bytes: Uint8Array): EventLog {
  if (!(bytes instanceof Uint8Array)) throw new EventLogError('log.input', 'an event log must be a Uint8Array', 0);
  if (bytes.length === 0) throw new EventLogError('log.input', 'an empty event log', 0);
  const copy = bytes.slice();
  const r = new LeReader(copy, 0, 'record.truncated');
  const first = readLegacy(r, 0);
  const events: TcgEvent[] = [first];
  let specId: SpecIdEvent | undefined;
  if (startsWith(first.data, SPEC_ID_SIGNATURE)) {
    // PFP §10.4.5.1: the Spec ID event is the first record, PCR 0, EV_NO_ACTION.
    if (first.pcrIndex !== 0 || first.eventType !== EV.NO_ACTION) {
      throw new EventLogError('specid.header', `a Spec ID event in PCR ${first.pcrIndex} as ${eventTypeName(first.eventType)}; it must be PCR 0, EV_NO_ACTION`, first.offset);
    }
    specId = parseSpecIdEvent(first.data, first.dataOffset);
  }
  const sizes = new Map((specId?.algorithms ?? []).map((a) => [a.algorithmId, a.digestSize] as const));
  while (r.remaining > 0) {
    if (events.length >= MAX_EVENT_COUNT) throw new EventLogError('event.count', `more than MAX_EVENT_COUNT (${MAX_EVENT_COUNT}) records`, r.offset);
    events.push(specId !== undefined ? readAgile(r, events.length, sizes) : readLegacy(r, events.length));
  }
  return {
    format: specId !== undefined ? 'crypto-agile' : 'sha1',
    specId,
    banks: specId !== undefined ? specId.algorithms.map((a) => a.algorithmId) : [TPM_ALG.SHA1],
    events,
    size: copy.length,
  };
}

/** The digest of `event` in bank `hashAlg`, if the event carries one. */
export function eventDigest(event: TcgEvent, hashAlg: number): Uint8Array | undefined {
  for (const d of event.digests) if (d.hashAlg === hashAlg) return d.digest;
  return undefined;
}

/** The PCRs 17–22 that a dynamic root of trust resets; until it does they hold all-ones (PC Client PTP §4.6.3 Table 3). */
const DRTM_PCRS: readonly number[] = [17, 18, 19, 20, 21, 22];

/**
 * A PCR's value after TPM2_Startup(CLEAR): zeros, except PCRs 17–22 (all
 * 0xFF until a DRTM event) and PCR 0, whose last byte is the locality
 * TPM2_Startup came from (Part 1 §17.7 "PCR Initialization"; the reference
 * code's PCRStartup sets pcrData[size-1] = locality for the H-CRTM PCR).
 */
export function initialPcrValue(hashAlg: number, pcr: number, startupLocality = 0): Uint8Array {
  const v = new Uint8Array(digestSize(hashAlg));
  if (DRTM_PCRS.includes(pcr)) v.fill(0xff);
  else if (pcr === 0) v[v.length - 1] = startupLocality & 0xff;
  return v;
}

/** Something in the log the replay had to decide about; reported by compareWithQuote as a warning. */
export interface ReplayAnomaly {
  readonly reason: 'startup-locality.late' | 'startup-locality.duplicate' | 'startup-locality.value';
  readonly eventIndex: number;
  readonly detail: string;
}

/** PCR values by bank (TPM_ALG_ID) and index; the shape of the client's PcrValues and QuoteResult.pcrValues. */
export type PcrBanks = ReadonlyMap<number, ReadonlyMap<number, Uint8Array>>;

export interface Replay {
  /** The banks replayed: those of the log that this runtime can hash. */
  readonly banks: readonly number[];
  /** Banks the log carries that node:crypto cannot compute here (nothing replayed for them). */
  readonly unsupportedBanks: readonly number[];
  /** bank → PCR (0..23) → value after the log's extends; PCRs without events hold their initial value. */
  readonly values: PcrBanks;
  /** PCR → number of events extended into it (any bank). */
  readonly extendCounts: ReadonlyMap<number, number>;
  /** bank → PCRs with at least one event lacking that bank's digest: their value in that bank is unknown. */
  readonly incomplete: ReadonlyMap<number, ReadonlySet<number>>;
  /** The locality of TPM2_Startup from a StartupLocality event, when the log has one (PFP §10.4.5.3). */
  readonly startupLocality: number | undefined;
  readonly anomalies: readonly ReplayAnomaly[];
}

/**
 * The StartupLocality event: EV_NO_ACTION in PCR 0 whose body is
 * "StartupLocality\0" and one byte, the locality (PFP r1.05 §10.4.5.3).
 */
export function startupLocalityOf(event: TcgEvent): number | undefined {
  if (event.eventType !== EV.NO_ACTION || event.pcrIndex !== 0) return undefined;
  if (event.data.length !== STARTUP_LOCALITY_SIGNATURE.length + 1 || !startsWith(event.data, STARTUP_LOCALITY_SIGNATURE)) return undefined;
  return event.data[STARTUP_LOCALITY_SIGNATURE.length];
}

export interface ReplayOptions {
  /** Banks to replay; default every bank of the log that can be hashed here. */
  readonly banks?: readonly number[];
}

/**
 * Replays the log: for every bank, PCR_new = H_bank(PCR_old ‖ digest_bank)
 * for each extended event in order (Part 1 §17.5.1 "PCR Extend"), from the
 * values after Startup (initialPcrValue, with PCR 0 set by a StartupLocality
 * event). EV_NO_ACTION records are never extended (PFP §10.4.5). An event
 * without a digest for a bank leaves that PCR unknown in that bank
 * (`incomplete`).
 */
export function replay(log: EventLog, options: ReplayOptions = {}): Replay {
  const wanted = options.banks ?? log.banks;
  const banks = wanted.filter((b) => log.banks.includes(b) && isHashSupported(b));
  const unsupportedBanks = wanted.filter((b) => log.banks.includes(b) && !isHashSupported(b));
  const anomalies: ReplayAnomaly[] = [];
  const extendCounts = new Map<number, number>();
  let startupLocality: number | undefined;
  let pcr0Extended = false;
  for (const e of log.events) {
    if (e.pcrIndex === 0 && e.eventType !== EV.NO_ACTION) pcr0Extended = true;
    const locality = startupLocalityOf(e);
    if (locality === undefined) continue;
    if (startupLocality !== undefined) {
      anomalies.push({ reason: 'startup-locality.duplicate', eventIndex: e.index, detail: `a second StartupLocality event (event ${e.index}) is ignored` });
    } else if (pcr0Extended) {
      // The locality only sets PCR 0's start value: once PCR 0 has been extended it can no longer apply.
      anomalies.push({ reason: 'startup-locality.late', eventIndex: e.index, detail: `StartupLocality (event ${e.index}) follows an extend of PCR 0 and is ignored` });
    } else if (locality > 4) {
      anomalies.push({ reason: 'startup-locality.value', eventIndex: e.index, detail: `StartupLocality ${locality} is not a TPM locality (0..4) and is ignored` });
    } else {
      startupLocality = locality;
    }
  }
  const values = new Map<number, Map<number, Uint8Array>>();
  const incomplete = new Map<number, Set<number>>();
  for (const bank of banks) {
    const pcrs = new Map<number, Uint8Array>();
    for (let p = 0; p <= MAX_PCR_INDEX; p++) pcrs.set(p, initialPcrValue(bank, p, startupLocality));
    values.set(bank, pcrs);
    incomplete.set(bank, new Set());
  }
  for (const e of log.events) {
    if (e.eventType === EV.NO_ACTION) continue;
    extendCounts.set(e.pcrIndex, (extendCounts.get(e.pcrIndex) ?? 0) + 1);
    for (const bank of banks) {
      const d = eventDigest(e, bank);
      if (d === undefined) {
        incomplete.get(bank)!.add(e.pcrIndex);
        continue;
      }
      const pcrs = values.get(bank)!;
      pcrs.set(e.pcrIndex, hash(bank, pcrs.get(e.pcrIndex)!, d));
    }
  }
  return { banks, unsupportedBanks, values, extendCounts, incomplete, startupLocality, anomalies };
}

const BANK_NAMES: ReadonlyMap<number, string> = new Map([
  [TPM_ALG.SHA1, 'sha1'],
  [TPM_ALG.SHA256, 'sha256'],
  [TPM_ALG.SHA384, 'sha384'],
  [TPM_ALG.SHA512, 'sha512'],
  [TPM_ALG.SM3_256, 'sm3_256'],
  [TPM_ALG.SHA3_256, 'sha3_256'],
  [TPM_ALG.SHA3_384, 'sha3_384'],
  [TPM_ALG.SHA3_512, 'sha3_512'],
]);

/** `sha256`, `sha1`, … or `alg 0x…` for a bank without a name. */
export function bankName(hashAlg: number): string {
  return BANK_NAMES.get(hashAlg) ?? `alg 0x${hashAlg.toString(16).padStart(4, '0')}`;
}


const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
const short = (b: Uint8Array): string => `${hex(b).slice(0, 16)}…`;

/** The check id of every replay comparison. */
export const REPLAY_CHECK = 'eventlog.replay';

/**
 * Compares a replay with quoted PCR values, for exactly the PCRs of the
 * signed selection (`selection`, the quote's pcrSelect): values outside it
 * are never read. One check `eventlog.replay` per bank and PCR:
 *  - pass `pcr.match`: the replay equals the quoted value;
 *  - pass `pcr.initial`: no events, and the PCR holds its start value;
 *  - fail `pcr.mismatch`: the PCR has events and the replay differs;
 *  - fail `pcr.unlogged`: the PCR has a value other than its start value but no events;
 *  - fail `pcr.value-missing`: the selection names the PCR but no value was given;
 *  - fail `bank.not-in-log`: the log has no digests for the quoted bank;
 *  - fail `bank.incomplete`: an event of this PCR lacks the bank's digest;
 *  - not-performed `bank.unsupported`: the bank's hash is not available here;
 * plus not-performed `pcr.not-quoted` for each PCR the log extends that no
 * quoted bank covers (its events are not evidence of anything), warn for each
 * replay anomaly, and not-performed `selection.empty` for an empty selection.
 */
export function compareWithQuote(replayed: Replay, quotedValues: PcrBanks, selection: readonly TPMS_PCR_SELECTION[]): Verdict {
  const checks: Check[] = [];
  const covered = new Set<number>();
  for (const sel of selection) {
    const bank = sel.hash;
    const name = bankName(bank);
    const indices = pcrIndices(sel);
    const logged = replayed.values.get(bank);
    for (const pcr of indices) {
      covered.add(pcr);
      const where = `${name} PCR ${pcr}`;
      const quoted = quotedValues.get(bank)?.get(pcr);
      const events = replayed.extendCounts.get(pcr) ?? 0;
      if (quoted === undefined) {
        checks.push(fail(REPLAY_CHECK, 'pcr.value-missing', `${where}: in the signed selection, but no value was supplied`));
      } else if (replayed.unsupportedBanks.includes(bank)) {
        checks.push(notPerformed(REPLAY_CHECK, 'bank.unsupported', `${where}: the ${name} hash is not available in this runtime`));
      } else if (logged === undefined) {
        checks.push(fail(REPLAY_CHECK, 'bank.not-in-log', `${where}: the event log carries no ${name} digests`));
      } else if (replayed.incomplete.get(bank)?.has(pcr) === true) {
        checks.push(fail(REPLAY_CHECK, 'bank.incomplete', `${where}: an event extended into it has no ${name} digest`));
      } else {
        const value = logged.get(pcr) ?? initialPcrValue(bank, pcr, replayed.startupLocality);
        if (equalBytes(value, quoted)) {
          checks.push(pass(REPLAY_CHECK, events > 0 ? 'pcr.match' : 'pcr.initial', events > 0 ? `${where}: ${events} event(s) replay to the quoted ${short(quoted)}` : `${where}: no events, start value quoted`));
        } else if (events === 0) {
          checks.push(fail(REPLAY_CHECK, 'pcr.unlogged', `${where}: quoted ${short(quoted)} but the log has no events for it`));
        } else {
          checks.push(fail(REPLAY_CHECK, 'pcr.mismatch', `${where}: ${events} event(s) replay to ${short(value)}, the quote holds ${short(quoted)}`));
        }
      }
    }
  }
  if (covered.size === 0) checks.push(notPerformed(REPLAY_CHECK, 'selection.empty', 'the quote selects no PCR: nothing in the log is verified'));
  for (const [pcr, n] of [...replayed.extendCounts].sort((a, b) => a[0] - b[0])) {
    if (!covered.has(pcr)) checks.push(notPerformed(REPLAY_CHECK, 'pcr.not-quoted', `PCR ${pcr}: ${n} event(s) in the log, but the quote does not cover it`));
  }
  for (const a of replayed.anomalies) checks.push(warn(REPLAY_CHECK, a.reason, a.detail));
  return verdict(checks);
}
