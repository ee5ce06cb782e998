/**
 * Test-data tools for the adversarial corpus: a minimal walker over TCG PC
 * Client crypto-agile event logs and Linux IMA binary lists (written here,
 * independently of src/attest's writer and parsers), and mutations that
 * return new byte arrays — a flipped digest, a retagged event, a truncation,
 * reordered IMA entries, an oversized or zero-length event, a Spec ID event
 * with a wrong digest size.
 *
 * Layouts: tpm-spec-facts.md §10 (event log, little-endian) and §11 (IMA).
 * The walker checks every length against the buffer and throws EvidenceError
 * on anything it cannot walk; it trusts nothing else (types, PCR indices).
 */
import { EvidenceError } from '../../src/tpm/errors.js';

/** One digest inside a record: its algorithm and where its bytes are. */
export interface WalkedDigest {
  readonly alg: number;
  readonly offset: number;
  readonly size: number;
}

/** One TCG_PCR_EVENT2 record. */
export interface WalkedEvent {
  readonly index: number;
  readonly offset: number;
  readonly end: number;
  readonly pcr: number;
  readonly type: number;
  readonly digests: readonly WalkedDigest[];
  /** Where the u32 eventSize is, and the event data after it. */
  readonly sizeOffset: number;
  readonly dataOffset: number;
  readonly dataSize: number;
}

export interface WalkedEventLog {
  /** The Spec ID event's algorithm table: where each {algorithmId u16, digestSize u16} pair is. */
  readonly algorithms: readonly { readonly alg: number; readonly size: number; readonly offset: number }[];
  /** Where the first TCG_PCR_EVENT2 starts. */
  readonly specIdEnd: number;
  readonly events: readonly WalkedEvent[];
}

function fail(message: string, offset: number): never {
  throw new EvidenceError('evidence.eventlog', message, { offset });
}

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/**
 * Walks a crypto-agile event log: the Spec ID event (a TCG_PCR_EVENT with
 * "Spec ID Event03"), then TCG_PCR_EVENT2 records sized by its algorithm table.
 *
 * @throws EvidenceError `evidence.eventlog` for a log it cannot walk.
 */
export function walkEventLog(log: Uint8Array): WalkedEventLog {
  const v = view(log);
  const need = (at: number, n: number, what: string): void => {
    if (at + n > log.length) fail(`${what}: ${n} bytes needed at ${at}, the log has ${log.length}`, at);
  };
  need(0, 32, 'Spec ID header');
  if (v.getUint32(4, true) !== 3) fail('the first record is not EV_NO_ACTION', 4);
  const specSize = v.getUint32(28, true);
  need(32, specSize, 'Spec ID event');
  if (specSize < 29 || Buffer.from(log.subarray(32, 48)).toString('latin1') !== 'Spec ID Event03\0') fail('no "Spec ID Event03" signature', 32);
  const count = v.getUint32(32 + 24, true);
  if (28 + count * 4 + 1 > specSize) fail(`${count} algorithms do not fit the Spec ID event`, 56);
  const algorithms: { alg: number; size: number; offset: number }[] = [];
  for (let i = 0; i < count; i++) {
    const at = 32 + 28 + 4 * i;
    algorithms.push({ alg: v.getUint16(at, true), size: v.getUint16(at + 2, true), offset: at });
  }
  const specIdEnd = 32 + specSize;
  const sizeOf = new Map(algorithms.map((a) => [a.alg, a.size]));

  const events: WalkedEvent[] = [];
  let at = specIdEnd;
  while (at < log.length) {
    const offset = at;
    need(at, 12, `event ${events.length} header`);
    const pcr = v.getUint32(at, true);
    const type = v.getUint32(at + 4, true);
    const n = v.getUint32(at + 8, true);
    at += 12;
    if (n > algorithms.length) fail(`event ${events.length}: ${n} digests, the Spec ID event lists ${algorithms.length} algorithms`, at - 4);
    const digests: WalkedDigest[] = [];
    for (let i = 0; i < n; i++) {
      need(at, 2, `event ${events.length} digest`);
      const alg = v.getUint16(at, true);
      const size = sizeOf.get(alg);
      if (size === undefined) fail(`event ${events.length}: algorithm 0x${alg.toString(16)} is not in the Spec ID event`, at);
      need(at + 2, size, `event ${events.length} digest`);
      digests.push({ alg, offset: at + 2, size });
      at += 2 + size;
    }
    need(at, 4, `event ${events.length} size`);
    const dataSize = v.getUint32(at, true);
    need(at + 4, dataSize, `event ${events.length} data`);
    events.push({ index: events.length, offset, end: at + 4 + dataSize, pcr, type, digests, sizeOffset: at, dataOffset: at + 4, dataSize });
    at += 4 + dataSize;
  }
  return { algorithms, specIdEnd, events };
}

/** One IMA binary entry. */
export interface WalkedImaEntry {
  readonly index: number;
  readonly offset: number;
  readonly end: number;
  readonly pcr: number;
  readonly templateHash: Uint8Array;
  readonly template: string;
  /** The template data as IMA hashes it (for `ima`: digest ‖ name padded to 256 bytes). */
  readonly templateData: Uint8Array;
  /** The fields: for non-`ima` templates each u32-length-prefixed field; for `ima` [digest, name]. */
  readonly fields: readonly Uint8Array[];
}

/**
 * Walks an IMA binary list (`binary_runtime_measurements`, little-endian):
 * pcr u32, template hash (`hashSize` bytes: 20 for the classic file), name,
 * then template data (u32 length and fields; the `ima` template: digest[20],
 * u32 length, name).
 *
 * @throws EvidenceError `evidence.ima` for a list it cannot walk.
 */
export function walkImaBinary(list: Uint8Array, hashSize = 20): WalkedImaEntry[] {
  const v = view(list);
  const bad = (message: string, offset: number): never => {
    throw new EvidenceError('evidence.ima', message, { offset });
  };
  const need = (at: number, n: number, what: string): void => {
    if (at + n > list.length) bad(`${what}: ${n} bytes needed at ${at}, the list has ${list.length}`, at);
  };
  const out: WalkedImaEntry[] = [];
  let at = 0;
  while (at < list.length) {
    const offset = at;
    need(at, 4 + hashSize + 4, `entry ${out.length} header`);
    const pcr = v.getUint32(at, true);
    const templateHash = list.slice(at + 4, at + 4 + hashSize);
    at += 4 + hashSize;
    const nameLen = v.getUint32(at, true);
    if (nameLen > 255) bad(`entry ${out.length}: template name of ${nameLen} bytes`, at);
    need(at + 4, nameLen, `entry ${out.length} template name`);
    const template = Buffer.from(list.subarray(at + 4, at + 4 + nameLen)).toString('latin1');
    at += 4 + nameLen;
    let fields: Uint8Array[];
    let templateData: Uint8Array;
    if (template === 'ima') {
      need(at, 24, `entry ${out.length} ima fields`);
      const digest = list.slice(at, at + 20);
      const len = v.getUint32(at + 20, true);
      if (len > 255) bad(`entry ${out.length}: ima name of ${len} bytes`, at + 20);
      need(at + 24, len, `entry ${out.length} ima name`);
      const name = list.slice(at + 24, at + 24 + len);
      const padded = new Uint8Array(256);
      padded.set(name);
      fields = [digest, name];
      templateData = Buffer.concat([digest, padded]);
      at += 24 + len;
    } else {
      need(at, 4, `entry ${out.length} template data length`);
      const len = v.getUint32(at, true);
      need(at + 4, len, `entry ${out.length} template data`);
      templateData = list.slice(at + 4, at + 4 + len);
      fields = [];
      let f = 0;
      const dv = view(templateData);
      while (f < templateData.length) {
        if (f + 4 > templateData.length) bad(`entry ${out.length}: a field length past the template data`, at + 4 + f);
        const flen = dv.getUint32(f, true);
        if (f + 4 + flen > templateData.length) bad(`entry ${out.length}: a field past the template data`, at + 4 + f);
        fields.push(templateData.slice(f + 4, f + 4 + flen));
        f += 4 + flen;
      }
      at += 4 + len;
    }
    out.push({ index: out.length, offset, end: at, pcr, templateHash, template, templateData, fields });
  }
  return out;
}

function eventAt(log: Uint8Array, index: number): WalkedEvent {
  const e = walkEventLog(log).events[index];
  if (e === undefined) throw new RangeError(`the log has no event ${index}`);
  return e;
}

/** Mutations for the corpus. Each returns a new array (or string) and leaves its input alone. */
export const mutate = {
  /**
   * Flips one bit of one digest of event `index` (0 = the first record after
   * the Spec ID event): the bank `bank` (default the first), bit `bit` of the digest (default 0).
   */
  flipDigest(log: Uint8Array, index: number, options: { readonly bank?: number; readonly bit?: number } = {}): Uint8Array {
    const e = eventAt(log, index);
    const d = options.bank === undefined ? e.digests[0] : e.digests.find((x) => x.alg === options.bank);
    if (d === undefined) throw new RangeError(`event ${index} has no digest for bank 0x${(options.bank ?? 0).toString(16)}`);
    const bit = options.bit ?? 0;
    if (!Number.isInteger(bit) || bit < 0 || bit >= d.size * 8) throw new RangeError(`bit ${bit} is outside the ${d.size}-byte digest`);
    const out = log.slice();
    out[d.offset + (bit >> 3)]! ^= 1 << (bit & 7);
    return out;
  },

  /** Changes event `index`'s type (the go-attestation disclosure attack: same digests, another meaning). */
  retagEvent(log: Uint8Array, index: number, type: number): Uint8Array {
    const e = eventAt(log, index);
    const out = log.slice();
    view(out).setUint32(e.offset + 4, type >>> 0, true);
    return out;
  },

  /** The first `length` bytes (a negative length counts from the end). */
  truncate(bytes: Uint8Array, length: number): Uint8Array {
    return bytes.slice(0, length < 0 ? Math.max(0, bytes.length + length) : length);
  },

  /** Keeps only the event log's first `count` events after the Spec ID event. */
  truncateEvents(log: Uint8Array, count: number): Uint8Array {
    const w = walkEventLog(log);
    const end = count <= 0 ? w.specIdEnd : (w.events[Math.min(count, w.events.length) - 1]?.end ?? w.specIdEnd);
    return log.slice(0, end);
  },

  /**
   * Sets event `index`'s eventSize past the end of the log (by `beyond` bytes,
   * default 1), leaving the bytes as they are: a parser must refuse, not over-read.
   */
  oversizeEvent(log: Uint8Array, index: number, beyond = 1): Uint8Array {
    const e = eventAt(log, index);
    const out = log.slice();
    view(out).setUint32(e.sizeOffset, log.length - e.dataOffset + beyond, true);
    return out;
  },

  /** Event `index` with eventSize 0 and its data removed (the rest of the log stays walkable). */
  zeroLengthEvent(log: Uint8Array, index: number): Uint8Array {
    const e = eventAt(log, index);
    const head = log.slice(0, e.dataOffset);
    view(head).setUint32(e.sizeOffset, 0, true);
    return Buffer.concat([head, log.subarray(e.dataOffset + e.dataSize)]);
  },

  /** The Spec ID event claims `size` bytes for `bank`'s digests (default: one byte more than the truth). */
  badSpecIdDigestSize(log: Uint8Array, bank: number, size?: number): Uint8Array {
    const a = walkEventLog(log).algorithms.find((x) => x.alg === bank);
    if (a === undefined) throw new RangeError(`the Spec ID event has no bank 0x${bank.toString(16)}`);
    const out = log.slice();
    view(out).setUint16(a.offset + 2, size ?? a.size + 1, true);
    return out;
  },

  /**
   * Swaps IMA entries `i` and `j`, in a binary list (walked with a 20-byte
   * template hash unless `hashSize` says otherwise) or an ASCII list (lines).
   */
  reorderIma<T extends Uint8Array | string>(list: T, i: number, j: number, hashSize = 20): T {
    if (typeof list === 'string') {
      const lines = list.split('\n');
      const trailing = lines[lines.length - 1] === '' ? lines.pop() : undefined;
      if (lines[i] === undefined || lines[j] === undefined) throw new RangeError(`the list has ${lines.length} lines`);
      [lines[i], lines[j]] = [lines[j]!, lines[i]!];
      return (lines.join('\n') + (trailing !== undefined ? '\n' : '')) as T;
    }
    const bytes = list as Uint8Array;
    const entries = walkImaBinary(bytes, hashSize);
    if (entries[i] === undefined || entries[j] === undefined) throw new RangeError(`the list has ${entries.length} entries`);
    const parts = entries.map((e) => bytes.subarray(e.offset, e.end));
    [parts[i], parts[j]] = [parts[j]!, parts[i]!];
    return new Uint8Array(Buffer.concat(parts)) as T;
  },

  /** Keeps the first `count` IMA entries of a binary or ASCII list. */
  truncateIma<T extends Uint8Array | string>(list: T, count: number, hashSize = 20): T {
    if (typeof list === 'string') {
      const lines = list.split('\n').filter((l) => l !== '');
      return lines.slice(0, count).map((l) => `${l}\n`).join('') as T;
    }
    const entries = walkImaBinary(list as Uint8Array, hashSize);
    const end = count <= 0 ? 0 : (entries[Math.min(count, entries.length) - 1]?.end ?? 0);
    return (list as Uint8Array).slice(0, end) as T;
  },
} as const;
