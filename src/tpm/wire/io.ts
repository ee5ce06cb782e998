/**
 * Byte reader and writer for the TPM wire format (big-endian, Part 1 §"Marshaling").
 * The reader tracks the structure path and offset for errors and never reads
 * past the end of its current window (a TPM2B body, or the whole input).
 */
import { EncodeError, type EncodeErrorCode, ParseError, type ParseErrorCode } from '../errors.js';

export class Reader {
  readonly bytes: Uint8Array;
  private readonly view: DataView;
  /** Current position in `bytes`. */
  offset: number;
  /** Exclusive end of the current window. */
  private end: number;
  private readonly path: string[] = [];

  constructor(bytes: Uint8Array, start = 0, end = bytes.length) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.offset = start;
    this.end = end;
  }

  get remaining(): number {
    return this.end - this.offset;
  }

  fail(code: ParseErrorCode, detail: string, at = this.offset): never {
    throw new ParseError(code, detail, this.path.join('.'), at);
  }

  /** Runs `fn` with `name` appended to the error path. */
  within<T>(name: string, fn: () => T): T {
    this.path.push(name);
    try {
      return fn();
    } finally {
      this.path.pop();
    }
  }

  private need(n: number): void {
    if (n > this.end - this.offset) {
      this.fail('parse.truncated', `need ${n} byte(s), ${this.end - this.offset} left`);
    }
  }

  u8(): number {
    this.need(1);
    return this.view.getUint8(this.offset++);
  }
  i8(): number {
    this.need(1);
    return this.view.getInt8(this.offset++);
  }
  u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.offset);
    this.offset += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.offset);
    this.offset += 4;
    return v;
  }
  u64(): bigint {
    this.need(8);
    const v = this.view.getBigUint64(this.offset);
    this.offset += 8;
    return v;
  }
  /** A copy of the next `n` bytes (copies, so decoded values never alias the input). */
  take(n: number): Uint8Array {
    this.need(n);
    const out = this.bytes.slice(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }

  /**
   * Reads exactly `size` bytes with `fn`, as the body of a TPM2B: the body may
   * not read past `size`, and must consume all of it.
   */
  window<T>(size: number, fn: () => T): T {
    this.need(size);
    const outerEnd = this.end;
    const start = this.offset;
    this.end = start + size;
    try {
      const v = fn();
      if (this.offset !== this.end) {
        this.fail('parse.size', `size field says ${size} byte(s), content used ${this.offset - start}`, start);
      }
      return v;
    } finally {
      this.end = outerEnd;
    }
  }

  /** Fails unless the whole input has been consumed. */
  finish(): void {
    if (this.offset !== this.end) this.fail('parse.trailing', `${this.end - this.offset} unread byte(s)`);
  }
}

export class Writer {
  private buf: Uint8Array;
  private view: DataView;
  length = 0;
  private readonly path: string[] = [];

  constructor(capacity = 256) {
    this.buf = new Uint8Array(Math.max(16, capacity));
    this.view = new DataView(this.buf.buffer);
  }

  fail(code: EncodeErrorCode, detail: string): never {
    throw new EncodeError(code, detail, this.path.join('.'));
  }

  within<T>(name: string, fn: () => T): T {
    this.path.push(name);
    try {
      return fn();
    } finally {
      this.path.pop();
    }
  }

  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.length + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): void {
    this.room(1);
    this.view.setUint8(this.length++, v);
  }
  i8(v: number): void {
    this.room(1);
    this.view.setInt8(this.length++, v);
  }
  u16(v: number): void {
    this.room(2);
    this.view.setUint16(this.length, v);
    this.length += 2;
  }
  u32(v: number): void {
    this.room(4);
    this.view.setUint32(this.length, v);
    this.length += 4;
  }
  u64(v: bigint): void {
    this.room(8);
    this.view.setBigUint64(this.length, v);
    this.length += 8;
  }
  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  /** Overwrites a u16 written earlier (the size of a TPM2B once its body is known). */
  patchU16(at: number, v: number): void {
    this.view.setUint16(at, v);
  }
  patchU32(at: number, v: number): void {
    this.view.setUint32(at, v);
  }
  /** The bytes written so far (a copy). */
  finish(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}
