/**
 * Declarative wire-format combinators for TPM 2.0 (Part 2 §"Structures").
 *
 * Every structure is declared once with these; its TypeScript type is
 * inferred (`Infer<typeof X>`), and encoding, decoding, Names, cpHash, the
 * property tests' arbitraries and the fuzzers all walk the same declaration
 * through `node`.
 */
import { Reader, Writer } from './io.js';

/** The shape of a codec, for code that derives things from the schema. */
export type Node =
  | { readonly kind: 'uint'; readonly size: 1 | 2 | 4 }
  | { readonly kind: 'int8' }
  | { readonly kind: 'int32' }
  | { readonly kind: 'u64' }
  | { readonly kind: 'values'; readonly size: 1 | 2 | 4; readonly values: readonly number[] }
  | { readonly kind: 'constant'; readonly size: 1 | 2 | 4; readonly value: number }
  | { readonly kind: 'bits'; readonly size: 1 | 2 | 4; readonly fields: readonly BitField[]; readonly reservedMask: number }
  | { readonly kind: 'handle'; readonly ranges: readonly (readonly [number, number])[]; readonly values: readonly number[] }
  | { readonly kind: 'fixed'; readonly length: number }
  | { readonly kind: 'sized'; readonly prefix: 1 | 2; readonly max: number; readonly min: number }
  | { readonly kind: 'sizedOf'; readonly inner: Codec<unknown>; readonly optional: boolean }
  | { readonly kind: 'list'; readonly item: Codec<unknown>; readonly max: number }
  | { readonly kind: 'struct'; readonly fields: readonly StructField[] };

export interface BitField {
  readonly name: string;
  readonly shift: number;
  readonly width: number;
}

export type StructField =
  | { readonly name: string; readonly kind: 'plain'; readonly codec: Codec<unknown> }
  | {
      readonly name: string;
      readonly kind: 'union';
      readonly selector: string;
      readonly variants: ReadonlyMap<number, Codec<unknown> | null>;
      readonly unionName: string;
    };

export interface Codec<T> {
  /** The spec's name for the type (`TPM2B_DIGEST`) or a primitive's (`UINT16`). */
  readonly name: string;
  readonly node: Node;
  write(w: Writer, value: T): void;
  read(r: Reader): T;
}

export type Infer<C> = C extends Codec<infer T> ? T : never;

function codec<T>(name: string, node: Node, write: (w: Writer, v: T) => void, read: (r: Reader) => T): Codec<T> {
  return { name, node, write, read };
}

// ---------------------------------------------------------------------------
// Integers

function uintCodec(name: string, size: 1 | 2 | 4): Codec<number> {
  const max = size === 4 ? 0xffffffff : size === 2 ? 0xffff : 0xff;
  return codec<number>(
    name,
    { kind: 'uint', size },
    (w, v) => {
      if (!Number.isInteger(v) || v < 0 || v > max) w.fail('encode.value', `${String(v)} is not a ${name}`);
      if (size === 1) w.u8(v);
      else if (size === 2) w.u16(v);
      else w.u32(v);
    },
    (r) => (size === 1 ? r.u8() : size === 2 ? r.u16() : r.u32()),
  );
}

export const u8: Codec<number> = uintCodec('UINT8', 1);
export const u16: Codec<number> = uintCodec('UINT16', 2);
export const u32: Codec<number> = uintCodec('UINT32', 4);

/** INT8 (TPM_CLOCK_ADJUST). */
export const i8: Codec<number> = codec<number>(
  'INT8',
  { kind: 'int8' },
  (w, v) => {
    if (!Number.isInteger(v) || v < -128 || v > 127) w.fail('encode.value', `${String(v)} is not an INT8`);
    w.i8(v);
  },
  (r) => r.i8(),
);

/** INT32 (PolicySigned/PolicySecret `expiration`), two's complement on the wire. */
export const i32: Codec<number> = codec<number>(
  'INT32',
  { kind: 'int32' },
  (w, v) => {
    if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) w.fail('encode.value', `${String(v)} is not an INT32`);
    w.u32(v >>> 0);
  },
  (r) => r.u32() | 0,
);

/** UINT64 is a `bigint`, never a lossy `number`. */
export const u64: Codec<bigint> = codec<bigint>(
  'UINT64',
  { kind: 'u64' },
  (w, v) => {
    if (typeof v !== 'bigint' || v < 0n || v > 0xffffffffffffffffn) w.fail('encode.value', `${String(v)} is not a UINT64`);
    w.u64(v);
  },
  (r) => r.u64(),
);

/** A plain integer of `size` bytes whose type is narrowed to `T` (e.g. TPM_ALG_ID). */
export function uint<T extends number = number>(name: string, size: 1 | 2 | 4): Codec<T> {
  return uintCodec(name, size) as Codec<T>;
}

/**
 * A TPMI value set: only the listed values decode. Part 2 marks types whose
 * NULL value is allowed with "+"; pass NULL in `values` for those.
 */
export function values<const V extends number>(name: string, size: 1 | 2 | 4, allowed: readonly V[]): Codec<V> {
  const set = new Set<number>(allowed);
  const list = [...set];
  return codec<V>(
    name,
    { kind: 'values', size, values: list },
    (w, v) => {
      if (!set.has(v)) w.fail('encode.value', `0x${Number(v).toString(16)} is not a ${name}`);
      if (size === 1) w.u8(v);
      else if (size === 2) w.u16(v);
      else w.u32(v);
    },
    (r) => {
      const at = r.offset;
      const v = size === 1 ? r.u8() : size === 2 ? r.u16() : r.u32();
      if (!set.has(v)) r.fail('parse.value', `0x${v.toString(16)} is not a ${name}`, at);
      return v as V;
    },
  );
}

const nullVariants = new WeakMap<Codec<number>, Codec<number>>();

/**
 * The spec's "+" suffix (`TPMI_ALG_HASH+`, `TPMI_DH_OBJECT+`): the same value
 * set with its NULL allowed — TPM_ALG_NULL (0x0010) for algorithm sets,
 * TPM_RH_NULL (0x40000007) for handle sets. Memoized, so `orNull(X)` is one codec.
 */
export function orNull<V extends number>(c: Codec<V>): Codec<V | 0x0010 | 0x40000007> {
  const hit = nullVariants.get(c as Codec<number>);
  if (hit) return hit as Codec<V | 0x0010 | 0x40000007>;
  const n = c.node;
  let out: Codec<number>;
  if (n.kind === 'values') out = values(`${c.name}+`, n.size, [...n.values, 0x0010]);
  else if (n.kind === 'handle') out = handleSet(`${c.name}+`, n.ranges, [...n.values, 0x40000007]);
  else throw new Error(`schema: orNull(${c.name}): only TPMI value and handle sets have a NULL`);
  nullVariants.set(c as Codec<number>, out);
  return out as Codec<V | 0x0010 | 0x40000007>;
}

/** A magic value that must be present as given (TPM_GENERATED_VALUE). */
export function constant<const V extends number>(name: string, size: 1 | 2 | 4, value: V): Codec<V> {
  return codec<V>(
    name,
    { kind: 'constant', size, value },
    (w, v) => {
      if (v !== value) w.fail('encode.value', `expected 0x${value.toString(16)}`);
      if (size === 1) w.u8(value);
      else if (size === 2) w.u16(value);
      else w.u32(value);
    },
    (r) => {
      const at = r.offset;
      const v = size === 1 ? r.u8() : size === 2 ? r.u16() : r.u32();
      if (v !== value) r.fail('parse.constant', `0x${v.toString(16)} is not 0x${value.toString(16)}`, at);
      return value;
    },
  );
}

/**
 * A TPMI_DH_* / TPMI_RH_* handle set: handles in any of the inclusive
 * `ranges` (e.g. transient 0x80000000..0x80FFFFFF) or equal to one of `values`
 * (e.g. TPM_RH_OWNER, or TPM_RH_NULL where Part 2 writes "+").
 */
export function handleSet(
  name: string,
  ranges: readonly (readonly [number, number])[],
  allowed: readonly number[] = [],
): Codec<number> {
  const set = new Set(allowed);
  // The ranges as flat bounds: no callback or destructuring per check.
  const lows = ranges.map((r) => r[0]);
  const highs = ranges.map((r) => r[1]);
  const ok = (h: number): boolean => {
    if (set.has(h)) return true;
    for (let i = 0; i < lows.length; i++) if (h >= lows[i]! && h <= highs[i]!) return true;
    return false;
  };
  return codec<number>(
    name,
    { kind: 'handle', ranges, values: [...set] },
    (w, v) => {
      if (!Number.isInteger(v) || !ok(v)) w.fail('encode.value', `handle 0x${Number(v).toString(16)} is not a ${name}`);
      w.u32(v);
    },
    (r) => {
      const at = r.offset;
      const h = r.u32();
      if (!ok(h)) r.fail('parse.handle', `handle 0x${h.toString(16)} is not a ${name}`, at);
      return h;
    },
  );
}

// ---------------------------------------------------------------------------
// Attribute words (TPMA_*)

/** A bit field definition: a bit number (one-bit flag) or `[shift, width]` (a small number). */
export type BitSpec = number | readonly [shift: number, width: number];
export type BitsValue<D extends Record<string, BitSpec>> = {
  -readonly [K in keyof D]: D[K] extends number ? boolean : number;
};

export interface BitsCodec<D extends Record<string, BitSpec>> extends Codec<BitsValue<D>> {
  /** A value with the given fields set and every other field false/0. */
  of(fields: Partial<BitsValue<D>>): BitsValue<D>;
  /** The attribute word as an integer. */
  toWord(value: BitsValue<D>): number;
  /** Reads an attribute word; throws a ParseError if a reserved bit is set. */
  fromWord(word: number): BitsValue<D>;
}

/** Fails on `w`, or without one (public toWord/of) with an EncodeError whose path is empty. */
function failValue(w: Writer | null, detail: string): never {
  return (w ?? new Writer(0)).fail('encode.value', detail);
}

/** A TPMA_* attribute word; set reserved bits are rejected on decode. */
export function bits<const D extends Record<string, BitSpec>>(name: string, size: 1 | 2 | 4, def: D): BitsCodec<D> {
  const fields: BitField[] = Object.entries(def).map(([n, s]) =>
    typeof s === 'number' ? { name: n, shift: s, width: 1 } : { name: n, shift: s[0], width: s[1] },
  );
  let used = 0;
  for (const f of fields) used |= ((2 ** f.width - 1) * 2 ** f.shift) >>> 0;
  const all = size === 4 ? 0xffffffff : size === 2 ? 0xffff : 0xff;
  const reservedMask = (all & ~used) >>> 0;
  type V = BitsValue<D>;

  // The fields as arrays, read per call. Fields that lie apart within 32 bits
  // (all of Part 2's) are packed with bit operations; anything else keeps the
  // arithmetic, whose results are the same there.
  const count = fields.length;
  const names = fields.map((f) => f.name);
  const shifts = fields.map((f) => f.shift);
  const flags = fields.map((f) => f.width === 1);
  /** Field masks after shifting down; -1 (all 32 bits) for a 32-bit field, read back with `>>> 0`. */
  const masks = fields.map((f) => (f.width >= 32 ? -1 : 2 ** f.width - 1));
  const limits = fields.map((f) => 2 ** f.width);
  let arithmetic = false;
  for (let i = 0, seen = 0; i < count; i++) {
    const f = fields[i]!;
    const m = (masks[i]! << f.shift) >>> 0;
    if (f.shift + f.width > 32 || (seen & m) !== 0) arithmetic = true;
    seen |= m;
  }

  /** The word for `v`, or fails on `w` (a detached Writer for the public toWord/of: an EncodeError with an empty path). */
  const toWord = (v: V, w: Writer | null): number => {
    const rec = v as Record<string, boolean | number | undefined>;
    let word = 0;
    for (let i = 0; i < count; i++) {
      const x = rec[names[i]!];
      if (flags[i]) {
        if (x === true) word = arithmetic ? word + 2 ** shifts[i]! : word | (1 << shifts[i]!);
        else if (x !== false && x !== undefined) failValue(w, `${names[i]!} must be a boolean`);
      } else {
        const n = x ?? 0;
        if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n >= limits[i]!) {
          failValue(w, `${names[i]!} out of range`);
        }
        word = arithmetic ? word + n * 2 ** shifts[i]! : word | (n << shifts[i]!);
      }
    }
    return word >>> 0;
  };
  /** The value of a word whose reserved bits are clear; one object shape (the fields in declaration order). */
  const fromWord = (word: number): V => {
    const out: Record<string, boolean | number> = {};
    for (let i = 0; i < count; i++) {
      const x = arithmetic ? Math.floor(word / 2 ** shifts[i]!) % limits[i]! : ((word >>> shifts[i]!) & masks[i]!) >>> 0;
      out[names[i]!] = flags[i] ? x === 1 : x;
    }
    return out as V;
  };
  const base = codec<V>(
    name,
    { kind: 'bits', size, fields, reservedMask },
    size === 1
      ? (w, v) => w.u8(toWord(v, w))
      : size === 2
        ? (w, v) => w.u16(toWord(v, w))
        : (w, v) => w.u32(toWord(v, w)),
    (r) => {
      const at = r.offset;
      const word = size === 1 ? r.u8() : size === 2 ? r.u16() : r.u32();
      if ((word & reservedMask) >>> 0 !== 0) {
        r.fail('parse.reserved', `reserved bits 0x${((word & reservedMask) >>> 0).toString(16)} set in ${name}`, at);
      }
      return fromWord(word);
    },
  );
  return {
    ...base,
    of: (partial) => fromWord(toWord(partial as V, null)),
    toWord: (v) => toWord(v, null),
    fromWord: (word) => {
      const r = new Reader(new Uint8Array(0));
      if ((word & reservedMask) >>> 0 !== 0) r.fail('parse.reserved', `reserved bits set in ${name}`);
      return fromWord(word >>> 0);
    },
  };
}

// ---------------------------------------------------------------------------
// Byte fields

/** Exactly `length` bytes (TPMU_HA members, fixed arrays). */
export function fixed(name: string, length: number): Codec<Uint8Array> {
  return codec<Uint8Array>(
    name,
    { kind: 'fixed', length },
    (w, v) => {
      if (!(v instanceof Uint8Array) || v.length !== length) w.fail('encode.size', `expected ${length} byte(s)`);
      w.bytes(v);
    },
    (r) => r.take(length),
  );
}

/**
 * A TPM2B holding bytes: u16 size (u8 with `prefix: 1`, as TPMS_PCR_SELECT's
 * sizeofSelect) followed by at most `max` bytes. Empty is allowed unless `min` says otherwise.
 */
export function sized(name: string, max: number, opts: { prefix?: 1 | 2; min?: number } = {}): Codec<Uint8Array> {
  const prefix = opts.prefix ?? 2;
  const min = opts.min ?? 0;
  return codec<Uint8Array>(
    name,
    { kind: 'sized', prefix, max, min },
    (w, v) => {
      if (!(v instanceof Uint8Array)) w.fail('encode.value', 'expected a Uint8Array');
      if (v.length > max || v.length < min) w.fail('encode.size', `${v.length} byte(s), allowed ${min}..${max}`);
      if (prefix === 1) w.u8(v.length);
      else w.u16(v.length);
      w.bytes(v);
    },
    (r) => {
      const at = r.offset;
      const n = prefix === 1 ? r.u8() : r.u16();
      if (n > max || n < min) r.fail('parse.size', `size ${n}, allowed ${min}..${max}`, at);
      return r.take(n);
    },
  );
}

/**
 * A TPM2B holding a structure: u16 size, then the marshaled structure, which
 * must fill the size exactly. With `optional`, size 0 decodes to `null`
 * (Part 2 marks such uses "+" or explains that an empty buffer is allowed).
 */
export function sizedOf<T>(name: string, inner: Codec<T>): Codec<T>;
export function sizedOf<T>(name: string, inner: Codec<T>, opts: { optional: true }): Codec<T | null>;
export function sizedOf<T>(name: string, inner: Codec<T>, opts: { optional?: boolean } = {}): Codec<T | null> {
  const optional = opts.optional ?? false;
  return codec<T | null>(
    name,
    { kind: 'sizedOf', inner: inner as Codec<unknown>, optional },
    (w, v) => {
      const at = w.length;
      w.u16(0);
      if (v === null) {
        if (!optional) w.fail('encode.value', `${name} may not be empty`);
        return;
      }
      inner.write(w, v);
      const n = w.length - at - 2;
      if (n > 0xffff) w.fail('encode.size', `${n} bytes do not fit a TPM2B`);
      w.patchU16(at, n);
    },
    (r) => {
      const at = r.offset;
      const n = r.u16();
      if (n === 0) {
        if (optional) return null;
        r.fail('parse.size', `${name} may not be empty`, at);
      }
      const outerEnd = r.openWindow(n);
      let v: T;
      try {
        v = inner.read(r);
        r.closeWindow(outerEnd, n);
      } catch (e) {
        r.restoreEnd(outerEnd);
        throw e;
      }
      return v;
    },
  );
}

// ---------------------------------------------------------------------------
// Lists

/** A TPML: u32 count, then that many items; `max` is the spec's maximum count. */
export function list<T>(name: string, item: Codec<T>, max: number): Codec<T[]> {
  return codec<T[]>(
    name,
    { kind: 'list', item: item as Codec<unknown>, max },
    (w, v) => {
      if (!Array.isArray(v)) w.fail('encode.value', 'expected an array');
      if (v.length > max) w.fail('encode.size', `${v.length} item(s), at most ${max}`);
      w.u32(v.length);
      // The error path is kept without a try/finally per item: a failure
      // leaves its entries, and the catch cuts them back once.
      const depth = w.pathDepth;
      try {
        for (let i = 0; i < v.length; i++) {
          w.enter(i);
          item.write(w, v[i]!);
          w.leave();
        }
      } catch (e) {
        w.unwindPath(depth);
        throw e;
      }
    },
    (r) => {
      const at = r.offset;
      const n = r.u32();
      // Checked before any allocation: a hostile count never sizes an array.
      if (n > max) r.fail('parse.count', `count ${n}, at most ${max}`, at);
      const out: T[] = [];
      const depth = r.pathDepth;
      try {
        for (let i = 0; i < n; i++) {
          r.enter(i);
          out.push(item.read(r));
          r.leave();
        }
      } catch (e) {
        r.unwindPath(depth);
        throw e;
      }
      return out;
    },
  );
}

// ---------------------------------------------------------------------------
// Structures and unions

/** A TPMU member of a structure, chosen by the value of an earlier field (`selector`). */
export interface UnionField<S extends string, M extends VariantMap> {
  readonly kind: 'union';
  readonly name: string;
  readonly selector: S;
  readonly variants: M;
}
/** Selector value → codec of that member, or `null` for a member with no data (e.g. TPM_ALG_NULL). */
export type VariantMap = { readonly [selector: number]: Codec<any> | null };

/**
 * Declares a TPMU: `union('TPMU_PUBLIC_ID', 'type', { [TPM_ALG.RSA]: TPM2B_PUBLIC_KEY_RSA, ... })`.
 * A selector value absent from the map is an error (TPM_RC_SELECTOR).
 */
export function union<const S extends string, const M extends VariantMap>(name: string, selector: S, variants: M): UnionField<S, M> {
  return { kind: 'union', name, selector, variants };
}

type FieldDef = Codec<any> | UnionField<string, VariantMap>;
type Fields = Record<string, FieldDef>;

type Simplify<T> = { [K in keyof T]: T[K] } & {};
type PlainKeys<F extends Fields> = { [K in keyof F]: F[K] extends UnionField<string, VariantMap> ? never : K }[keyof F];
type UnionKeys<F extends Fields> = Exclude<keyof F, PlainKeys<F>>;
type PlainPart<F extends Fields> = { [K in PlainKeys<F>]: Infer<F[K]> };
type SelectorOf<F extends Fields> = { [K in UnionKeys<F>]: F[K] extends UnionField<infer S, VariantMap> ? S : never }[UnionKeys<F>];
type SelectorValues<F extends Fields> = {
  [K in UnionKeys<F>]: F[K] extends UnionField<string, infer M> ? keyof M & number : never;
}[UnionKeys<F>];
type VariantPart<F extends Fields, V extends number> = {
  [K in UnionKeys<F> as F[K] extends UnionField<string, infer M>
    ? V extends keyof M
      ? M[V] extends null
        ? never
        : K
      : never
    : never]: F[K] extends UnionField<string, infer M> ? (V extends keyof M ? Infer<M[V]> : never) : never;
};

/**
 * The type of a structure. With TPMU members it is a discriminated union on
 * the selector field: `if (pub.type === TPM_ALG.RSA) pub.unique` is the modulus.
 */
export type StructValue<F extends Fields> = [UnionKeys<F>] extends [never]
  ? Simplify<PlainPart<F>>
  : {
      [V in SelectorValues<F>]: Simplify<
        Omit<PlainPart<F>, SelectorOf<F>> & { [S in SelectorOf<F>]: V } & VariantPart<F, V>
      >;
    }[SelectorValues<F>];

export interface StructCodec<F extends Fields> extends Codec<StructValue<F>> {
  readonly fields: F;
}

/** A TPMS/TPMT: fields marshaled in declaration order. */
export function struct<const F extends Fields>(name: string, fields: F): StructCodec<F> {
  const list: StructField[] = [];
  const seen = new Set<string>();
  for (const [fname, def] of Object.entries(fields)) {
    if ('kind' in def && def.kind === 'union') {
      if (!seen.has(def.selector)) throw new Error(`schema: ${name}.${fname} selects on ${def.selector}, not an earlier field`);
      const variants = new Map<number, Codec<unknown> | null>();
      for (const [k, c] of Object.entries(def.variants)) variants.set(Number(k), c);
      list.push({ name: fname, kind: 'union', selector: def.selector, variants, unionName: def.name });
    } else {
      list.push({ name: fname, kind: 'plain', codec: def as Codec<unknown> });
    }
    seen.add(fname);
  }
  type V = StructValue<F>;
  // The fields as arrays, read per call (the declaration's objects are kept for `node`).
  const count = list.length;
  const names = list.map((f) => f.name);
  /** The codec of each plain field; null for a union. */
  const plain = list.map((f) => (f.kind === 'plain' ? f.codec : null));
  const unions = list.map((f) => (f.kind === 'union' ? f : null));
  const base = codec<V>(
    name,
    { kind: 'struct', fields: list },
    (w, v) => {
      if (typeof v !== 'object' || v === null) w.fail('encode.value', `${name} must be an object`);
      const rec = v as Record<string, unknown>;
      // As list(): one catch per structure, not a try/finally per field.
      const depth = w.pathDepth;
      try {
        for (let i = 0; i < count; i++) {
          const fname = names[i]!;
          w.enter(fname);
          const c = plain[i];
          if (c !== null) {
            c!.write(w, rec[fname]);
          } else {
            const f = unions[i]!;
            const sel = rec[f.selector] as number;
            const member = f.variants.get(sel);
            if (member === undefined) return w.fail('encode.selector', `${f.unionName} has no member for 0x${Number(sel).toString(16)}`);
            if (member !== null) member.write(w, rec[fname]);
          }
          w.leave();
        }
      } catch (e) {
        w.unwindPath(depth);
        throw e;
      }
    },
    (r) => {
      // Fields are added in declaration order, so every value of a structure
      // (with the same union members) has one object shape.
      const out: Record<string, unknown> = {};
      const depth = r.pathDepth;
      try {
        for (let i = 0; i < count; i++) {
          const fname = names[i]!;
          r.enter(fname);
          const c = plain[i];
          if (c !== null) {
            out[fname] = c!.read(r);
          } else {
            const f = unions[i]!;
            const sel = out[f.selector] as number;
            const member = f.variants.get(sel);
            if (member === undefined) return r.fail('parse.selector', `${f.unionName} has no member for 0x${sel.toString(16)}`);
            if (member !== null) out[fname] = member.read(r);
          }
          r.leave();
        }
      } catch (e) {
        r.unwindPath(depth);
        throw e;
      }
      return out as V;
    },
  );
  return { ...base, fields };
}

// ---------------------------------------------------------------------------
// Whole-buffer helpers

/** Marshals a value. Throws EncodeError for values the schema does not allow. */
export function encode<T>(c: Codec<T>, value: T): Uint8Array {
  const w = new Writer();
  // No try/finally: a writer that failed is dropped with its path.
  w.enter(c.name);
  c.write(w, value);
  w.leave();
  return w.finish();
}

/** Unmarshals exactly one value; trailing bytes are an error. */
export function decode<T>(c: Codec<T>, bytes: Uint8Array): T {
  const r = new Reader(bytes);
  // As encode: a reader that failed is dropped with its path.
  r.enter(c.name);
  const v = c.read(r);
  r.finish();
  return v;
}
