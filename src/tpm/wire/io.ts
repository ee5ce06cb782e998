/**
 * Byte reader and writer for the TPM wire format (big-endian, Part 1 §"Marshaling").
 * The reader tracks the structure path and offset for errors and never reads
 * past the end of its current window (a TPM2B body, or the whole input).
 */
import { EncodeError, type EncodeErrorCode, ParseError, type ParseErrorCode } from '../errors.js';

/** An error path as text: names joined by dots, list indices as `[i]` (`TPML_DIGEST.[1]`). */
function joinPath(path: readonly (string | number)[], depth: number): string {
  let out = '';
  for (let i = 0; i < depth; i++) {
    const p = path[i]!;
    if (i > 0) out += '.';
    out += typeof p === 'number' ? `[${p}]` : p;
  }
  return out;
}

/** The source of Reader.take's empty arrays (copied: each has a buffer of its own). */
const EMPTY = new Uint8Array(0);

export class Reader {
  readonly bytes: Uint8Array;
  /** Current position in `bytes`. */
  offset: number;
  /** Exclusive end of the current window. */
  private end: number;
  /**
   * The names of the structures being read (a number is a list index, shown
   * as `[i]`), a stack whose entries from `depth` on are stale: entering and
   * leaving are a store and a count, and the path is joined only when
   * failing. A failure may leave entries behind (the codecs pay for no
   * try/finally per field); within() and the codecs' error handlers set the
   * depth back (see unwindPath). Reader and Writer each keep their own
   * fields: a common base class made every construction slower. Eight slots
   * up front (deeper paths grow it): an empty array grows on the first entry.
   */
  private readonly path: (string | number)[] = new Array<string | number>(8);
  private depth = 0;

  // Integers are assembled from bytes rather than through a DataView: a
  // Reader lives for one small frame, and a DataView per frame costs more
  // than the reads it would serve.
  constructor(bytes: Uint8Array, start = 0, end = bytes.length) {
    // A Buffer (or other subclass) is read through a plain view: Buffer#slice is a view, and take() must copy.
    this.bytes = bytes.constructor === Uint8Array ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
    this.offset = start;
    this.end = end;
  }

  get remaining(): number {
    return this.end - this.offset;
  }

  fail(code: ParseErrorCode, detail: string, at = this.offset): never {
    throw new ParseError(code, detail, joinPath(this.path, this.depth), at);
  }

  /** The current depth of the error path, to give unwindPath when a read or write fails. */
  get pathDepth(): number {
    return this.depth;
  }
  /** Cuts the error path back to `depth` (a failed read left its entries behind). */
  unwindPath(depth: number): void {
    this.depth = depth;
  }

  /** Runs `fn` with `name` appended to the error path. */
  within<T>(name: string, fn: () => T): T {
    const depth = this.depth;
    this.path[depth] = name;
    this.depth = depth + 1;
    try {
      return fn();
    } finally {
      this.depth = depth;
    }
  }

  /**
   * Appends `name` (a list index as a number) to the error path until the
   * matching leave(): `within` without a closure, for the codecs' per-field
   * loops. A failure in between leaves the entry; callers that go on after
   * catching it pair them with try/finally (or unwindPath).
   */
  enter(name: string | number): void {
    this.path[this.depth++] = name;
  }
  leave(): void {
    this.depth--;
  }

  private need(n: number): void {
    if (n > this.end - this.offset) {
      this.fail('parse.truncated', `need ${n} byte(s), ${this.end - this.offset} left`);
    }
  }

  u8(): number {
    this.need(1);
    return this.bytes[this.offset++]!;
  }
  i8(): number {
    this.need(1);
    return (this.bytes[this.offset++]! << 24) >> 24;
  }
  u16(): number {
    this.need(2);
    const b = this.bytes;
    const o = this.offset;
    this.offset = o + 2;
    return (b[o]! << 8) | b[o + 1]!;
  }
  u32(): number {
    this.need(4);
    const b = this.bytes;
    const o = this.offset;
    this.offset = o + 4;
    return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
  }
  u64(): bigint {
    this.need(8);
    const hi = this.u32();
    const lo = this.u32();
    return (BigInt(hi) << 32n) | BigInt(lo);
  }
  /** A copy of the next `n` bytes (copies, so decoded values never alias the input). */
  take(n: number): Uint8Array {
    this.need(n);
    const o = this.offset;
    this.offset = o + n;
    // Empty TPM2Bs are common (password sessions), and in V8 a copy of an
    // empty array costs a quarter of `new Uint8Array(0)` or an empty slice.
    if (n === 0) return new Uint8Array(EMPTY);
    return this.bytes.slice(o, o + n);
  }

  /**
   * Reads exactly `size` bytes with `fn`, as the body of a TPM2B: the body may
   * not read past `size`, and must consume all of it.
   */
  window<T>(size: number, fn: () => T): T {
    const outerEnd = this.openWindow(size);
    try {
      const v = fn();
      this.closeWindow(outerEnd, size);
      return v;
    } finally {
      this.end = outerEnd;
    }
  }

  /**
   * `window` without a closure: limits reading to the next `size` bytes and
   * returns the end to give back to closeWindow (or, when the body failed, to
   * restoreEnd).
   */
  openWindow(size: number): number {
    this.need(size);
    const outerEnd = this.end;
    this.end = this.offset + size;
    return outerEnd;
  }
  /** Ends a window opened with `size`: the body must have used all of it. */
  closeWindow(outerEnd: number, size: number): void {
    if (this.offset !== this.end) {
      const start = this.end - size;
      this.fail('parse.size', `size field says ${size} byte(s), content used ${this.offset - start}`, start);
    }
    this.end = outerEnd;
  }
  /** Puts back the end that openWindow returned, after a failure inside the window. */
  restoreEnd(outerEnd: number): void {
    this.end = outerEnd;
  }

  /** Fails unless the whole input has been consumed. */
  finish(): void {
    if (this.offset !== this.end) this.fail('parse.trailing', `${this.end - this.offset} unread byte(s)`);
  }
}

/**
 * A spare buffer for the next Writer: most writers marshal one small command
 * or structure and are done, so they take this one instead of allocating
 * (an allocation over 64 bytes gets an off-heap backing store, which costs
 * more than marshaling a small command). A finished Writer hands its buffer
 * back; one that never finishes (it threw) keeps it, and the next finished
 * writer's buffer takes its place.
 */
let spare: Uint8Array | null = null;
/** Buffers larger than this are not kept as the spare. */
const SPARE_MAX = 16384;

export class Writer {
  private buf: Uint8Array;
  length = 0;
  /** As Reader's. */
  private readonly path: (string | number)[] = new Array<string | number>(8);
  private depth = 0;
  /** `buf` is the array finish() returned: patch* must copy before writing into it. */
  private shared = false;

  constructor(capacity = 256) {
    const want = Math.max(16, capacity);
    if (spare !== null && spare.length >= want) {
      this.buf = spare;
      spare = null;
    } else {
      this.buf = new Uint8Array(want);
    }
  }

  fail(code: EncodeErrorCode, detail: string): never {
    throw new EncodeError(code, detail, joinPath(this.path, this.depth));
  }

  /** As Reader's. */
  get pathDepth(): number {
    return this.depth;
  }
  unwindPath(depth: number): void {
    this.depth = depth;
  }
  within<T>(name: string, fn: () => T): T {
    const depth = this.depth;
    this.path[depth] = name;
    this.depth = depth + 1;
    try {
      return fn();
    } finally {
      this.depth = depth;
    }
  }
  enter(name: string | number): void {
    this.path[this.depth++] = name;
  }
  leave(): void {
    this.depth--;
  }

  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let cap = Math.max(16, this.buf.length * 2);
    while (cap < this.length + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.shared = false;
  }

  u8(v: number): void {
    this.room(1);
    this.buf[this.length++] = v;
  }
  i8(v: number): void {
    this.room(1);
    this.buf[this.length++] = v & 0xff;
  }
  u16(v: number): void {
    this.room(2);
    const b = this.buf;
    const o = this.length;
    b[o] = v >>> 8;
    b[o + 1] = v;
    this.length = o + 2;
  }
  u32(v: number): void {
    this.room(4);
    const b = this.buf;
    const o = this.length;
    b[o] = v >>> 24;
    b[o + 1] = v >>> 16;
    b[o + 2] = v >>> 8;
    b[o + 3] = v;
    this.length = o + 4;
  }
  u64(v: bigint): void {
    this.u32(Number((v >> 32n) & 0xffffffffn));
    this.u32(Number(v & 0xffffffffn));
  }
  bytes(b: Uint8Array): void {
    const n = b.length;
    if (n === 0) return;
    this.room(n);
    this.buf.set(b, this.length);
    this.length += n;
  }
  /** Overwrites a u16 written earlier (the size of a TPM2B once its body is known). */
  patchU16(at: number, v: number): void {
    this.unshare();
    this.buf[at] = v >>> 8;
    this.buf[at + 1] = v;
  }
  patchU32(at: number, v: number): void {
    this.unshare();
    const b = this.buf;
    b[at] = v >>> 24;
    b[at + 1] = v >>> 16;
    b[at + 2] = v >>> 8;
    b[at + 3] = v;
  }
  /** Overwrites bytes written earlier at `at` (a parameter area encrypted after it was marshaled). */
  patchBytes(at: number, b: Uint8Array): void {
    if (at < 0 || at + b.length > this.length) this.fail('encode.size', `patch of ${b.length} byte(s) at ${at} is outside the ${this.length} written`);
    this.unshare();
    this.buf.set(b, at);
  }
  /**
   * The bytes written at [start, end), not copied: valid to read until the
   * next write or finish() (after which the buffer may be another writer's).
   */
  view(start: number, end: number): Uint8Array {
    return this.buf.subarray(start, end);
  }
  private unshare(): void {
    if (this.shared) {
      this.buf = this.buf.slice();
      this.shared = false;
    }
  }
  /** The bytes written so far (a copy with a buffer of its own). */
  finish(): Uint8Array {
    const out = this.buf.slice(0, this.length);
    if (!this.shared) {
      // The working buffer becomes the next writer's spare; this writer keeps
      // `out`, which any later write outgrows (room) or copies first (patch*).
      // The larger buffer stays the spare: a small one kept (a 16-byte error
      // response's) would never fit the next writer and would block the
      // reuse for good.
      if (this.buf.length <= SPARE_MAX && (spare === null || spare.length < this.buf.length)) spare = this.buf;
      this.buf = out;
      this.shared = true;
    }
    return out;
  }
}
