/**
 * Linux IMA measurement lists: parsing (binary_runtime_measurements and
 * ascii_runtime_measurements), template-hash checks, incremental replay to
 * the PCRs IMA extends (PCR 10 by default) under both kernel behaviours, and
 * allowlist/denylist findings per entry. Pure functions: no I/O, no clock.
 *
 * Formats (tpm-spec-facts.md §11; Linux security/integrity/ima/ima_fs.c,
 * ima_template.c, ima_template_lib.c, ima_crypto.c):
 *  - binary entry, little-endian: pcr u32 | templateHash[H] | nameLen u32 |
 *    name | templateDataLen u32 (absent for `ima`) | templateData. H is 20
 *    (SHA-1) for the classic file and the bank's size for the per-bank files
 *    `binary_runtime_measurements_<alg>` (kernel 6.10+).
 *  - non-`ima` template data is a list of fields, each `u32 len ‖ bytes`,
 *    and the template hash is H(templateData) exactly as listed.
 *  - `ima` (d|n): the binary form lists d[20] then `u32 len ‖ name` (no NUL),
 *    but the hash covers d[20] ‖ name zero-padded to 256 bytes
 *    (IMA_EVENT_NAME_LEN_MAX + 1).
 *  - ASCII: `%2d <templateHash hex> <template>` then ` <field>` per field,
 *    nothing between the spaces for an empty field (so ima-sig without a
 *    signature ends in a space).
 *
 * Replay (ima_queue.c, ima_init_digests): kernels since 5.8 extend each bank
 * with H_bank(templateData); older kernels extend every bank with the SHA-1
 * template hash zero-padded to the bank's size. A violation (ToMToU,
 * open-writers) lists an all-zero template hash and extends 0xFF: the bank's
 * size of 0xFF since 5.8, 20 bytes of 0xFF zero-padded before.
 */
import { createHash, hash as oneShotHash } from 'node:crypto';
import { TPM_ALG } from '../tpm/constants.js';
import { digestSize, isHashAlg, isHashSupported, nodeHashName } from '../tpm/crypto/hash.js';
import { EvidenceError } from '../tpm/errors.js';
import { fail, notPerformed, pass, verdict, warn, type Check, type Verdict } from './verdict.js';
import { equalBytes } from '../tpm/bytes.js';

// ---------------------------------------------------------------- types

export type ImaFormat = 'binary' | 'ascii';

/** A file (or buffer) digest as IMA records it. */
export interface ImaDigest {
  /**
   * The kernel's hash name ("sha256", "sha1", "sm3", "md5", …). For the legacy
   * `d` field, which carries no name, "sha1" for 20 bytes, "md5" for 16.
   */
  readonly algorithm: string;
  readonly digest: Uint8Array;
  /** `d-ngv2` only: the digest type ("ima" or "verity"). */
  readonly type?: string;
}

/** One template field. */
export interface ImaField {
  /** The field id from the template format (`d-ng`, `n-ng`, `sig`, …); undefined for an unknown template. */
  readonly id: string | undefined;
  /**
   * The field's bytes as the kernel hashes them (binary form, or rebuilt from
   * the ASCII text); undefined when an ASCII field of an unknown template cannot be rebuilt.
   */
  readonly data: Uint8Array | undefined;
  /** ASCII form only: the field's text as listed. */
  readonly text?: string;
}

export interface ImaEntry {
  /** Position in the kernel's list (0 = boot_aggregate), counted from `firstIndex`. */
  readonly index: number;
  readonly pcr: number;
  /** The template's name, or its format string for a custom template (`d-ng|n-ng|sig`). */
  readonly template: string;
  /** The template hash as listed. */
  readonly templateHash: Uint8Array;
  /** The hash the list shows (TPM_ALG_SHA1 for the classic files). */
  readonly templateHashAlg: number;
  /** The template data as hashed and extended; undefined when it cannot be rebuilt (ASCII form of an unknown template). */
  readonly templateData: Uint8Array | undefined;
  readonly fields: readonly ImaField[];
  /** An all-zero template hash: a ToMToU or open-writers violation, extended as 0xFF. */
  readonly violation: boolean;
  /** The measured file's (or buffer's) digest: d, d-ng, d-ngv2. */
  readonly fileDigest?: ImaDigest;
  /** The event name (n, n-ng): a path, `boot_aggregate`, or an ima-buf label such as `kexec-cmdline`; UTF-8, lossy. */
  readonly name?: string;
  /** ima-sig `sig` (empty when the file has none). */
  readonly signature?: Uint8Array;
  /** ima-buf `buf`. */
  readonly buffer?: Uint8Array;
  /** Byte offset of the entry in the kernel's file (`baseOffset` + position in the input). */
  readonly offset: number;
  /** Byte offset just after it: where the next entry starts. */
  readonly end: number;
}

export interface ImaList {
  readonly format: ImaFormat;
  readonly templateHashAlg: number;
  readonly entries: readonly ImaEntry[];
  /** `baseOffset` + the bytes read: where the next read of the kernel's file continues. */
  readonly end: number;
}

export interface ImaParseOptions {
  /**
   * The hash of the listed template hashes: TPM_ALG_SHA1 (default) for the
   * classic files, the bank's hash for `*_runtime_measurements_<alg>`.
   */
  readonly templateHashAlg?: number;
  /** The index of the first entry in the input (default 0): an agent sending the list from entry N gives N. */
  readonly firstIndex?: number;
  /** The byte offset of the input in the kernel's file (default 0). */
  readonly baseOffset?: number;
  /** Refuse lists with more entries (default 10,000,000). */
  readonly maxEntries?: number;
}

// ---------------------------------------------------------------- templates

/** Field kinds: how a field is rendered in ASCII and decoded. */
type FieldKind = 'digest' | 'name' | 'digest-ng' | 'digest-ngv2' | 'string' | 'hex' | 'u32' | 'u16' | 'opaque';

/** Template field ids (ima_template.c supported_fields) and how they show in ASCII (ima_template_lib.c). */
const FIELD_KINDS: ReadonlyMap<string, FieldKind> = new Map<string, FieldKind>([
  ['d', 'digest'],
  ['n', 'name'],
  ['d-ng', 'digest-ng'],
  ['d-ngv2', 'digest-ngv2'],
  ['n-ng', 'string'],
  ['sig', 'hex'],
  ['buf', 'hex'],
  ['d-modsig', 'digest-ng'],
  ['modsig', 'hex'],
  ['evmsig', 'hex'],
  ['iuid', 'u32'],
  ['igid', 'u32'],
  ['imode', 'u16'],
  // Shown with %s but not NUL-terminated in the data: the ASCII form cannot be turned back into bytes.
  ['xattrnames', 'opaque'],
  ['xattrlengths', 'hex'],
  ['xattrvalues', 'hex'],
]);

/** Built-in template names and their formats (ima_template.c builtin_templates). */
const TEMPLATES: ReadonlyMap<string, readonly string[]> = new Map<string, readonly string[]>([
  ['ima', ['d', 'n']],
  ['ima-ng', ['d-ng', 'n-ng']],
  ['ima-sig', ['d-ng', 'n-ng', 'sig']],
  ['ima-buf', ['d-ng', 'n-ng', 'buf']],
  ['ima-modsig', ['d-ng', 'n-ng', 'sig', 'd-modsig', 'modsig']],
  ['ima-ngv2', ['d-ngv2', 'n-ng']],
  ['ima-sigv2', ['d-ngv2', 'n-ng', 'sig']],
  ['evm-sig', ['d-ng', 'n-ng', 'evmsig', 'xattrnames', 'xattrlengths', 'xattrvalues', 'iuid', 'igid', 'imode']],
]);

/** IMA_TEMPLATE_NUM_FIELDS_MAX. */
const MAX_TEMPLATE_FIELDS = 15;
/** IMA_EVENT_NAME_LEN_MAX + 1: the `ima` template hashes its name padded to this. */
const IMA_NAME_FIELD = 256;
/** The legacy `d` field: a SHA-1 (or zero-padded MD5) digest, IMA_DIGEST_SIZE. */
const IMA_DIGEST_SIZE = 20;
/** Template names are short identifiers or format strings (MAX_TEMPLATE_NAME_LEN is under 80). */
const MAX_TEMPLATE_NAME = 255;
/** PCR indices a TPM can have. */
const MAX_PCR = 31;

/** The field ids of a template: a built-in name, or a custom format string whose ids are all known. */
function templateFormat(template: string): readonly string[] | undefined {
  const builtin = TEMPLATES.get(template);
  if (builtin !== undefined) return builtin;
  const ids = template.split('|');
  if (ids.length > MAX_TEMPLATE_FIELDS || ids.some((id) => !FIELD_KINDS.has(id))) return undefined;
  // 'd' and 'n' only exist with the `ima` template's special layout.
  if (ids.includes('d') || ids.includes('n')) return undefined;
  return ids;
}

// ---------------------------------------------------------------- small helpers

const EMPTY = new Uint8Array(0);
const utf8 = new TextDecoder('utf-8', { fatal: false });

function imaError(message: string, offset: number): EvidenceError {
  return new EvidenceError('evidence.ima', message, { offset });
}

function argError(message: string): EvidenceError {
  return new EvidenceError('evidence.argument', message);
}

function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

const HEX = /^[0-9a-fA-F]*$/;

/** Strict hex: even length, hex digits only; undefined otherwise. */
function fromHex(s: string): Uint8Array | undefined {
  if (s.length % 2 !== 0 || !HEX.test(s)) return undefined;
  return new Uint8Array(Buffer.from(s, 'hex'));
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function u32le(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, true);
  return b;
}

function latin1Bytes(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'latin1'));
}


function isZero(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/**
 * H(data), one shot: node:crypto's `hash` (Node ≥ 20.12) allocates far less
 * than a Hash object per call, and hashing is most of a replay's cost.
 * Returns a Buffer (a Uint8Array); values that leave the module go through `plain`.
 */
const digestOf: (node: string, data: Uint8Array) => Uint8Array =
  typeof oneShotHash === 'function' ? (node, data) => oneShotHash(node, data, 'buffer') : (node, data) => createHash(node).update(data).digest();

/** A plain Uint8Array (not a Buffer view of a shared pool) for values handed to callers. */
function plain(b: Uint8Array): Uint8Array {
  return b.constructor === Uint8Array ? b : new Uint8Array(b);
}

function checkCount(name: string, v: unknown, def: number, max = Number.MAX_SAFE_INTEGER): number {
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > max) throw argError(`${name}: expected an integer 0..${max}, got ${String(v)}`);
  return v;
}

function templateHashAlgOf(v: unknown): number {
  if (v === undefined) return TPM_ALG.SHA1;
  if (typeof v !== 'number' || !isHashAlg(v) || !isHashSupported(v)) throw argError(`templateHashAlg ${String(v)}: not a hash this runtime computes`);
  return v;
}

// ---------------------------------------------------------------- field decoding

interface Decoded {
  fileDigest?: ImaDigest;
  name?: string;
  signature?: Uint8Array;
  buffer?: Uint8Array;
}

/** Longest "<type>:<alg>:" prefix a d-ng/d-ngv2 field can have (DIGEST_TYPE_NAME_LEN_MAX + CRYPTO_MAX_ALG_NAME + 2). */
const MAX_DIGEST_PREFIX = 7 + 128 + 2;

/** `<alg>:\0digest` (d-ng) or `<type>:<alg>:\0digest` (d-ngv2). */
function decodeDigestNg(data: Uint8Array, v2: boolean): ImaDigest | undefined {
  const limit = Math.min(data.length, MAX_DIGEST_PREFIX);
  let nul = -1;
  for (let i = 0; i < limit; i++) {
    if (data[i] === 0) {
      nul = i;
      break;
    }
  }
  if (nul < 1 || data[nul - 1] !== 0x3a) return undefined;
  const prefix = Buffer.from(data.buffer, data.byteOffset, nul - 1).toString('latin1');
  const digest = data.slice(nul + 1);
  if (!v2) return prefix.includes(':') ? undefined : { algorithm: prefix, digest };
  const colon = prefix.indexOf(':');
  if (colon < 0 || prefix.indexOf(':', colon + 1) >= 0) return undefined;
  return { algorithm: prefix.slice(colon + 1), digest, type: prefix.slice(0, colon) };
}

function legacyAlgorithm(d: Uint8Array): string {
  return d.length === 20 ? 'sha1' : d.length === 16 ? 'md5' : '';
}

/** Bytes up to the first NUL (n-ng data ends in one), as UTF-8. */
function stringOf(data: Uint8Array): string {
  const nul = data.indexOf(0);
  return utf8.decode(nul < 0 ? data : data.subarray(0, nul));
}

/**
 * Decodes the known fields of an entry into its convenience properties.
 * @throws EvidenceError `evidence.ima` for a digest field without its `<alg>:\0` prefix.
 */
function decodeFields(fields: readonly ImaField[], at: number, where: string): Decoded {
  const out: Decoded = {};
  for (const f of fields) {
    const data = f.data;
    if (data === undefined || f.id === undefined) continue;
    switch (f.id) {
      case 'd':
        out.fileDigest = { algorithm: legacyAlgorithm(data), digest: data };
        break;
      case 'd-ng':
      case 'd-ngv2': {
        const d = decodeDigestNg(data, f.id === 'd-ngv2');
        if (d === undefined) throw imaError(`${where}: ${f.id} field is not "<alg>:\\0<digest>"`, at);
        out.fileDigest = d;
        break;
      }
      case 'n':
      case 'n-ng':
        out.name = stringOf(data);
        break;
      case 'sig':
        out.signature = data;
        break;
      case 'buf':
        out.buffer = data;
        break;
      default:
        break;
    }
  }
  return out;
}

function withDecoded(base: Omit<ImaEntry, 'fileDigest' | 'name' | 'signature' | 'buffer'>, d: Decoded): ImaEntry {
  return {
    ...base,
    ...(d.fileDigest !== undefined ? { fileDigest: d.fileDigest } : {}),
    ...(d.name !== undefined ? { name: d.name } : {}),
    ...(d.signature !== undefined ? { signature: d.signature } : {}),
    ...(d.buffer !== undefined ? { buffer: d.buffer } : {}),
  };
}

/** d[20] ‖ name zero-padded to 256: what the `ima` template hashes (ima_calc_field_array_hash_tfm). */
function imaTemplateData(d: Uint8Array, name: Uint8Array): Uint8Array {
  const out = new Uint8Array(d.length + IMA_NAME_FIELD);
  out.set(d);
  out.set(name, d.length);
  return out;
}

/** Template data from its fields: u32le(len) ‖ bytes for each. */
function joinFields(fields: readonly Uint8Array[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const f of fields) parts.push(u32le(f.length), f);
  return concat(parts);
}

function checkTemplateName(name: string, at: number, where: string): void {
  if (name.length === 0 || name.length > MAX_TEMPLATE_NAME) throw imaError(`${where}: template name of ${name.length} bytes`, at);
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f) throw imaError(`${where}: template name with byte 0x${c.toString(16)}`, at);
  }
}

function checkPcr(pcr: number, at: number, where: string): void {
  if (pcr > MAX_PCR) throw imaError(`${where}: PCR ${pcr} (at most ${MAX_PCR})`, at);
}

// ---------------------------------------------------------------- binary form

/**
 * Parses `binary_runtime_measurements` (or a per-bank `_<alg>` file):
 * little-endian, every length checked against what is left.
 *
 * @throws EvidenceError `evidence.ima` (offset = byte offset in the kernel's file) for an entry that runs past the
 *   end, a template name or PCR out of range, template data that does not split into its fields, or a known
 *   template with the wrong fields; `evidence.argument` for bad options.
 * @example const list = parseImaBinary(readFileSync('/sys/kernel/security/ima/binary_runtime_measurements'));
 */
export function parseImaBinary(bytes: Uint8Array, options: ImaParseOptions = {}): ImaList {
  if (!(bytes instanceof Uint8Array)) throw argError('parseImaBinary: expected a Uint8Array');
  const alg = templateHashAlgOf(options.templateHashAlg);
  const firstIndex = checkCount('firstIndex', options.firstIndex, 0);
  const base = checkCount('baseOffset', options.baseOffset, 0);
  const maxEntries = checkCount('maxEntries', options.maxEntries, 10_000_000);
  const hsize = digestSize(alg);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const entries: ImaEntry[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    const start = pos;
    const index = firstIndex + entries.length;
    const where = `entry ${index}`;
    if (entries.length >= maxEntries) throw imaError(`more than ${maxEntries} entries`, base + start);
    const need = (n: number, what: string): void => {
      if (n > bytes.length - pos) throw imaError(`${where}: ${what} needs ${n} bytes, ${bytes.length - pos} left`, base + pos);
    };
    need(4 + hsize + 4, 'header');
    const pcr = view.getUint32(pos, true);
    checkPcr(pcr, base + pos, where);
    pos += 4;
    const templateHash = bytes.slice(pos, pos + hsize);
    pos += hsize;
    const nameLen = view.getUint32(pos, true);
    if (nameLen === 0 || nameLen > MAX_TEMPLATE_NAME) throw imaError(`${where}: template name length ${nameLen}`, base + pos);
    pos += 4;
    need(nameLen, 'template name');
    const template = Buffer.from(bytes.buffer, bytes.byteOffset + pos, nameLen).toString('latin1');
    checkTemplateName(template, base + pos, where);
    pos += nameLen;

    let fields: ImaField[];
    let templateData: Uint8Array;
    if (template === 'ima') {
      // ima_measurements_show: d without a length, then n as u32 strlen ‖ chars.
      need(IMA_DIGEST_SIZE + 4, 'ima template fields');
      const d = bytes.slice(pos, pos + IMA_DIGEST_SIZE);
      pos += IMA_DIGEST_SIZE;
      const n = view.getUint32(pos, true);
      if (n >= IMA_NAME_FIELD) throw imaError(`${where}: ima template name of ${n} bytes (at most ${IMA_NAME_FIELD - 1})`, base + pos);
      pos += 4;
      need(n, 'ima template name');
      const name = bytes.slice(pos, pos + n);
      pos += n;
      fields = [
        { id: 'd', data: d },
        { id: 'n', data: name },
      ];
      templateData = imaTemplateData(d, name);
    } else {
      need(4, 'template data length');
      const len = view.getUint32(pos, true);
      pos += 4;
      need(len, 'template data');
      templateData = bytes.slice(pos, pos + len);
      const dataAt = base + pos;
      pos += len;
      const raw = splitFields(templateData, dataAt, where);
      const format = templateFormat(template);
      if (format !== undefined && format.length !== raw.length) {
        throw imaError(`${where}: template ${template} has ${format.length} fields, the data holds ${raw.length}`, dataAt);
      }
      fields = raw.map((data, i) => ({ id: format?.[i], data }));
    }
    const base0 = {
      index,
      pcr,
      template,
      templateHash,
      templateHashAlg: alg,
      templateData,
      fields,
      violation: isZero(templateHash),
      offset: base + start,
      end: base + pos,
    };
    entries.push(withDecoded(base0, decodeFields(fields, base + start, where)));
  }
  return { format: 'binary', templateHashAlg: alg, entries, end: base + pos };
}

/** u32le-prefixed fields filling `data` exactly (ima_parse_buf with ENFORCE_BUFEND). */
function splitFields(data: Uint8Array, at: number, where: string): Uint8Array[] {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const out: Uint8Array[] = [];
  let p = 0;
  while (p < data.length) {
    if (data.length - p < 4) throw imaError(`${where}: template data ends inside a field length`, at + p);
    const n = view.getUint32(p, true);
    p += 4;
    if (n > data.length - p) throw imaError(`${where}: field of ${n} bytes, ${data.length - p} left in the template data`, at + p - 4);
    out.push(data.subarray(p, p + n));
    p += n;
  }
  if (out.length === 0) throw imaError(`${where}: empty template data`, at);
  return out;
}

// ---------------------------------------------------------------- ASCII form

/**
 * Parses `ascii_runtime_measurements` (or a per-bank `_<alg>` file). Lines
 * are split on the first three spaces only (`pcr`, template hash, template);
 * the rest is split per the template's fields, the name field taking what is
 * left between the fields around it (paths from older kernels may hold
 * spaces). Known templates get their template data rebuilt byte for byte, so
 * the template hash can be checked; unknown templates keep their text fields.
 *
 * @throws EvidenceError `evidence.ima` (offset = line number, 1-based in the input) for a line that does not
 *   read; `evidence.argument` for bad options.
 */
export function parseImaAscii(input: string | Uint8Array, options: ImaParseOptions = {}): ImaList {
  if (typeof input !== 'string' && !(input instanceof Uint8Array)) throw argError('parseImaAscii: expected a string or Uint8Array');
  const bytes = typeof input === 'string' ? new TextEncoder().encode(input) : input;
  const alg = templateHashAlgOf(options.templateHashAlg);
  const firstIndex = checkCount('firstIndex', options.firstIndex, 0);
  const base = checkCount('baseOffset', options.baseOffset, 0);
  const maxEntries = checkCount('maxEntries', options.maxEntries, 10_000_000);
  const hexLen = 2 * digestSize(alg);
  const entries: ImaEntry[] = [];
  let pos = 0;
  let lineNo = 0;
  while (pos < bytes.length) {
    lineNo++;
    const nl = bytes.indexOf(0x0a, pos);
    const stop = nl < 0 ? bytes.length : nl;
    const next = nl < 0 ? bytes.length : nl + 1;
    const index = firstIndex + entries.length;
    if (entries.length >= maxEntries) throw imaError(`line ${lineNo}: more than ${maxEntries} entries`, lineNo);
    const line = Buffer.from(bytes.buffer, bytes.byteOffset + pos, stop - pos).toString('latin1');
    entries.push(parseLine(line, lineNo, index, alg, hexLen, base + pos, base + next));
    pos = next;
  }
  return { format: 'ascii', templateHashAlg: alg, entries, end: base + pos };
}

const PCR_TEXT = /^ ?([0-9]{1,3}) /;

function parseLine(line: string, lineNo: number, index: number, alg: number, hexLen: number, offset: number, end: number): ImaEntry {
  const where = `line ${lineNo}`;
  if (line.includes('\0')) throw imaError(`${where}: NUL byte in an ASCII list`, lineNo);
  const m = PCR_TEXT.exec(line);
  if (m === null) throw imaError(`${where}: does not start with a PCR index`, lineNo);
  const pcr = Number(m[1]);
  checkPcr(pcr, lineNo, where);
  let p = m[0].length;
  const hashText = line.slice(p, p + hexLen);
  const templateHash = hashText.length === hexLen ? fromHex(hashText) : undefined;
  if (templateHash === undefined || line.charCodeAt(p + hexLen) !== 0x20) {
    throw imaError(`${where}: template hash is not ${hexLen} hex digits followed by a space`, lineNo);
  }
  p += hexLen + 1;
  const sp = line.indexOf(' ', p);
  // Every template has at least one field, and each field is preceded by a space.
  if (sp < 0) throw imaError(`${where}: no template fields`, lineNo);
  const template = line.slice(p, sp);
  checkTemplateName(template, lineNo, where);
  const rest = line.slice(sp + 1);
  const format = templateFormat(template);
  let fields: ImaField[];
  let templateData: Uint8Array | undefined;
  if (format === undefined) {
    fields = rest.split(' ').map((text) => ({ id: undefined, data: undefined, text }));
    templateData = undefined;
  } else {
    const texts = splitText(rest, format);
    if (texts === undefined) throw imaError(`${where}: template ${template} needs ${format.length} fields`, lineNo);
    fields = texts.map((text, i) => {
      const id = format[i]!;
      const data = fieldFromText(FIELD_KINDS.get(id)!, text);
      if (data === null) throw imaError(`${where}: field ${id} "${text.slice(0, 40)}" does not read`, lineNo);
      return { id, data, text };
    });
    if (template === 'ima') {
      const d = fields[0]!.data!;
      const name = fields[1]!.data!;
      if (d.length !== IMA_DIGEST_SIZE) throw imaError(`${where}: ima template digest of ${d.length} bytes`, lineNo);
      if (name.length >= IMA_NAME_FIELD) throw imaError(`${where}: ima template name of ${name.length} bytes (at most ${IMA_NAME_FIELD - 1})`, lineNo);
      templateData = imaTemplateData(d, name);
    } else {
      templateData = fields.every((f) => f.data !== undefined) ? joinFields(fields.map((f) => f.data!)) : undefined;
    }
  }
  const base0 = { index, pcr, template, templateHash, templateHashAlg: alg, templateData, fields, violation: isZero(templateHash), offset, end };
  return withDecoded(base0, decodeFields(fields, lineNo, where));
}

/**
 * Splits the text after the template name into the format's fields: fields
 * before the (at most one) name field from the left, fields after it from
 * the right; no other field kind contains a space.
 */
function splitText(rest: string, format: readonly string[]): string[] | undefined {
  const nameAt = format.findIndex((id) => {
    const k = FIELD_KINDS.get(id);
    return k === 'string' || k === 'name';
  });
  if (nameAt < 0) {
    const parts = rest.split(' ');
    return parts.length === format.length ? parts : undefined;
  }
  const out: string[] = new Array<string>(format.length);
  let from = 0;
  for (let i = 0; i < nameAt; i++) {
    const sp = rest.indexOf(' ', from);
    if (sp < 0) return undefined;
    out[i] = rest.slice(from, sp);
    from = sp + 1;
  }
  let to = rest.length;
  for (let i = format.length - 1; i > nameAt; i--) {
    const sp = rest.lastIndexOf(' ', to - 1);
    if (sp < from) return undefined;
    out[i] = rest.slice(sp + 1, to);
    to = sp;
  }
  if (to < from) return undefined;
  out[nameAt] = rest.slice(from, to);
  return out;
}

/** A field's bytes from its ASCII text; undefined when the text cannot be turned back; null when it is malformed. */
function fieldFromText(kind: FieldKind, text: string): Uint8Array | undefined | null {
  switch (kind) {
    case 'digest':
    case 'hex':
      return fromHex(text) ?? null;
    case 'name':
      return latin1Bytes(text);
    case 'string':
      // n-ng data is the string plus its NUL (DATA_FMT_STRING).
      return concat([latin1Bytes(text), new Uint8Array(1)]);
    case 'digest-ng':
    case 'digest-ngv2': {
      if (text.length === 0) return EMPTY; // an absent d-modsig
      const colon = text.lastIndexOf(':');
      if (colon < 0) return null;
      const prefix = text.slice(0, colon + 1);
      const colons = prefix.split(':').length - 1;
      if (colons !== (kind === 'digest-ngv2' ? 2 : 1) || prefix.length > MAX_DIGEST_PREFIX) return null;
      const digest = fromHex(text.slice(colon + 1));
      if (digest === undefined) return null;
      return concat([latin1Bytes(prefix), new Uint8Array(1), digest]);
    }
    case 'u32':
    case 'u16': {
      if (text.length === 0) return EMPTY;
      if (!/^[0-9]{1,10}$/.test(text)) return null;
      const v = Number(text);
      const width = kind === 'u32' ? 4 : 2;
      if (v >= 2 ** (8 * width)) return null;
      const b = new Uint8Array(width);
      const dv = new DataView(b.buffer);
      if (width === 4) dv.setUint32(0, v, true);
      else dv.setUint16(0, v, true);
      return b;
    }
    case 'opaque':
      return undefined;
  }
}

/**
 * Parses either form: a string is ASCII; bytes are binary when bytes 1–3 are
 * zero (a little-endian PCR index below 256), which ASCII never has.
 * @throws as parseImaBinary / parseImaAscii.
 */
export function parseImaList(input: string | Uint8Array, options: ImaParseOptions = {}): ImaList {
  if (typeof input === 'string') return parseImaAscii(input, options);
  if (!(input instanceof Uint8Array)) throw argError('parseImaList: expected a string or Uint8Array');
  const binary = input.length === 0 || (input.length >= 4 && input[1] === 0 && input[2] === 0 && input[3] === 0);
  return binary ? parseImaBinary(input, options) : parseImaAscii(input, options);
}

// ---------------------------------------------------------------- building and writing lists

/** What an entry holds, for writing lists (tests, the measured-boot writer, benchmarks). */
export interface ImaEntrySpec {
  /** `ima`, `ima-ng` (default), `ima-sig`, `ima-buf`, another built-in, a format string, or any name with `rawFields`. */
  readonly template?: string;
  /** Default 10. */
  readonly pcr?: number;
  /** Default 0. */
  readonly index?: number;
  /** The measured file's digest (for a violation, zeros of its size, as the kernel records). */
  readonly fileDigest?: ImaDigest;
  readonly name?: string | Uint8Array;
  readonly signature?: Uint8Array;
  readonly buffer?: Uint8Array;
  /** Each field's bytes, for templates outside the known ones (or to override). */
  readonly rawFields?: readonly Uint8Array[];
  /** A violation: template hash all zero. */
  readonly violation?: boolean;
  /** The listed template hash's algorithm (default SHA-1). */
  readonly templateHashAlg?: number;
}

function fieldBytes(id: string, spec: ImaEntrySpec): Uint8Array {
  const name = typeof spec.name === 'string' ? new TextEncoder().encode(spec.name) : (spec.name ?? EMPTY);
  const digest = spec.fileDigest;
  switch (id) {
    case 'd':
      return digest?.digest ?? new Uint8Array(IMA_DIGEST_SIZE);
    case 'n':
      return name;
    case 'n-ng':
      return concat([name, new Uint8Array(1)]);
    case 'd-ng':
    case 'd-modsig':
      if (digest === undefined) return EMPTY;
      return concat([latin1Bytes(`${digest.algorithm}:`), new Uint8Array(1), digest.digest]);
    case 'd-ngv2':
      if (digest === undefined) return EMPTY;
      return concat([latin1Bytes(`${digest.type ?? 'ima'}:${digest.algorithm}:`), new Uint8Array(1), digest.digest]);
    case 'sig':
      return spec.signature ?? EMPTY;
    case 'buf':
      return spec.buffer ?? EMPTY;
    default:
      return EMPTY;
  }
}

/**
 * Builds an entry, its template data and its template hash, as the kernel would.
 * @throws EvidenceError `evidence.argument` for an unknown template without rawFields, or an `ima` name of 256 bytes or more.
 */
export function makeImaEntry(spec: ImaEntrySpec): ImaEntry {
  const template = spec.template ?? 'ima-ng';
  if (typeof template !== 'string' || !/^[\x21-\x7e]{1,255}$/.test(template)) throw argError(`makeImaEntry: template name "${String(template).slice(0, 80)}"`);
  const alg = templateHashAlgOf(spec.templateHashAlg);
  const pcr = checkCount('pcr', spec.pcr, 10, MAX_PCR);
  const index = checkCount('index', spec.index, 0);
  const format = templateFormat(template);
  let fields: ImaField[];
  let templateData: Uint8Array;
  if (spec.rawFields !== undefined) {
    if (template === 'ima') throw argError('makeImaEntry: the ima template takes fileDigest and name, not rawFields');
    if (format !== undefined && format.length !== spec.rawFields.length) throw argError(`makeImaEntry: ${template} has ${format.length} fields`);
    fields = spec.rawFields.map((data, i) => ({ id: format?.[i], data }));
    templateData = joinFields(spec.rawFields);
  } else {
    if (format === undefined) throw argError(`makeImaEntry: template ${template} is not known; give rawFields`);
    fields = format.map((id) => ({ id, data: fieldBytes(id, spec) }));
    if (template === 'ima') {
      const d = fields[0]!.data!;
      const n = fields[1]!.data!;
      if (d.length !== IMA_DIGEST_SIZE) throw argError('makeImaEntry: the ima template needs a 20-byte digest');
      if (n.length >= IMA_NAME_FIELD) throw argError(`makeImaEntry: ima template names are at most ${IMA_NAME_FIELD - 1} bytes`);
      templateData = imaTemplateData(d, n);
    } else {
      templateData = joinFields(fields.map((f) => f.data!));
    }
  }
  const violation = spec.violation === true;
  const templateHash = violation ? new Uint8Array(digestSize(alg)) : plain(digestOf(nodeHashName(alg), templateData));
  const base0 = { index, pcr, template, templateHash, templateHashAlg: alg, templateData, fields, violation, offset: 0, end: 0 };
  return withDecoded(base0, decodeFields(fields, 0, 'makeImaEntry'));
}

/**
 * Writes entries in the binary form (`binary_runtime_measurements`).
 * @throws EvidenceError `evidence.argument` for an entry without template data or fields.
 */
export function encodeImaBinary(entries: readonly ImaEntry[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const e of entries) {
    const name = latin1Bytes(e.template);
    parts.push(u32le(e.pcr), e.templateHash, u32le(name.length), name);
    if (e.template === 'ima') {
      const d = e.fields[0]?.data;
      const n = e.fields[1]?.data;
      if (d === undefined || n === undefined) throw argError(`encodeImaBinary: entry ${e.index} lacks its ima fields`);
      parts.push(d, u32le(n.length), n);
    } else {
      if (e.templateData === undefined) throw argError(`encodeImaBinary: entry ${e.index} has no template data`);
      parts.push(u32le(e.templateData.length), e.templateData);
    }
  }
  return concat(parts);
}

/** A field as ascii_runtime_measurements shows it (ima_show_template_data_ascii). */
function fieldText(id: string | undefined, f: ImaField): Uint8Array | undefined {
  const data = f.data;
  if (id === undefined || data === undefined) return f.text !== undefined ? latin1Bytes(f.text) : undefined;
  if (data.length === 0) return EMPTY;
  const kind = FIELD_KINDS.get(id);
  switch (kind) {
    case 'digest':
    case 'hex':
      return latin1Bytes(toHex(data));
    case 'name':
      return data;
    case 'string':
    case 'opaque': {
      // %s: up to the first NUL.
      const nul = data.indexOf(0);
      return nul < 0 ? data : data.subarray(0, nul);
    }
    case 'digest-ng':
    case 'digest-ngv2': {
      const nul = data.indexOf(0);
      if (nul < 0) return undefined;
      return concat([data.subarray(0, nul), latin1Bytes(toHex(data.subarray(nul + 1)))]);
    }
    case 'u32':
    case 'u16': {
      const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
      if (data.length === 4) return latin1Bytes(String(dv.getUint32(0, true)));
      if (data.length === 2) return latin1Bytes(String(dv.getUint16(0, true)));
      return undefined;
    }
    default:
      return undefined;
  }
}

/**
 * Writes entries in the ASCII form (`ascii_runtime_measurements`), as bytes
 * (paths are bytes, not necessarily UTF-8).
 * @throws EvidenceError `evidence.argument` for a field that has no ASCII form (unknown template without text).
 */
export function encodeImaAscii(entries: readonly ImaEntry[]): Uint8Array {
  const parts: Uint8Array[] = [];
  const space = latin1Bytes(' ');
  for (const e of entries) {
    parts.push(latin1Bytes(`${String(e.pcr).padStart(2)} ${toHex(e.templateHash)} ${e.template}`));
    for (const f of e.fields) {
      const t = fieldText(f.id, f);
      if (t === undefined) throw argError(`encodeImaAscii: entry ${e.index} field ${f.id ?? '?'} has no ASCII form`);
      parts.push(space, t);
    }
    parts.push(latin1Bytes('\n'));
  }
  return concat(parts);
}

// ---------------------------------------------------------------- replay

/**
 * How the kernel extends: `bank-hash` (Linux ≥ 5.8: each bank with
 * H_bank(templateData)) or `padded-sha1` (older: the SHA-1 template hash,
 * zero-padded, in every bank).
 */
export type ImaKernelBehaviour = 'bank-hash' | 'padded-sha1';

const BEHAVIOURS: readonly ImaKernelBehaviour[] = ['bank-hash', 'padded-sha1'];

/** A bank's running value under each behaviour still possible (hex). */
export interface ImaBankValues {
  readonly 'bank-hash'?: string;
  readonly 'padded-sha1'?: string;
}

/**
 * What a verifier keeps per device between IMA replays: plain JSON, so any
 * verifier process can continue where another stopped.
 */
export interface ImaReplayState {
  readonly version: 1;
  /** Entries accepted so far: the index of the next entry expected. */
  readonly entryIndex: number;
  /** Where entry `entryIndex` starts in the kernel's file, when the entries came with offsets. */
  readonly byteOffset?: number;
  /** Banks tracked, by name (`sha1`, `sha256`, …). */
  readonly banks: readonly string[];
  /** Running values after `entryIndex` entries: PCR index → bank → behaviour → hex. PCRs never extended are absent (zeros). */
  readonly pcrs: Readonly<Record<string, Readonly<Record<string, ImaBankValues>>>>;
  /** The behaviour each bank was found to follow, once a quote decided it. */
  readonly behaviour: Readonly<Record<string, ImaKernelBehaviour>>;
  /** Listed template hashes (hex) of the last accepted entries, oldest first, to check resent entries. */
  readonly recent: readonly string[];
}

export interface ImaReplayOptions {
  /**
   * PCR values of a verified quote: bank (TPM_ALG_*) → PCR index → value,
   * the shape of the client's QuoteResult.pcrValues. Without it the entries are
   * replayed and accepted as they come (the verdict says the quote check was not performed).
   */
  readonly quoted?: ReadonlyMap<number, ReadonlyMap<number, Uint8Array>>;
  /** Banks to track when starting without a state (default: the quoted banks, else SHA-1 and SHA-256). */
  readonly banks?: readonly number[];
  /** PCRs that belong to IMA and are checked when quoted even if no entry names them (default [10]). */
  readonly imaPcrs?: readonly number[];
  /** How many recent template hashes the state keeps to check resends (default 128). */
  readonly window?: number;
  /** Only consider this behaviour instead of detecting it. */
  readonly behaviour?: ImaKernelBehaviour;
}

export interface ImaReplayResult {
  /**
   * Checks: `ima.sequence` (log.gap, log.truncated, log.rewritten, log.reordered, resend.skipped,
   * resend.unverified, sequence.ok), `ima.template-hash`, `ima.replay` (replay.match, replay.prefix,
   * replay.mismatch, replay.no-quote, replay.pcr-not-quoted, replay.bank-not-tracked, replay.not-computable),
   * `ima.kernel`, `ima.violations`.
   */
  readonly verdict: Verdict;
  /** The state to keep: after the covered entries, or the previous state unchanged when nothing was accepted. */
  readonly state: ImaReplayState;
  /** New entries accepted (covered by the quote): the ones to evaluate against policy. */
  readonly covered: readonly ImaEntry[];
  /** New entries after the quoted prefix: not accepted yet, expected again next time. */
  readonly pending: readonly ImaEntry[];
  /** Resent entries (index below the state's entryIndex) recognised and skipped. */
  readonly skipped: number;
  /** Per bank (by name): the behaviour that matched the quote, or `either` while both do (SHA-1, or nothing extended yet). */
  readonly behaviour: Readonly<Record<string, ImaKernelBehaviour | 'either'>>;
  /** From the banks' behaviours: `5.8+`, `pre-5.8`, `mixed` (a 5.8+ kernel pads for banks its crypto lacks) or `undetermined`. */
  readonly kernel: '5.8+' | 'pre-5.8' | 'mixed' | 'undetermined';
  /** Running values after the covered entries (the matched behaviour; bank-hash while undetermined): bank → PCR → value. */
  readonly pcrValues: Map<number, Map<number, Uint8Array>>;
  /** Violations among the covered entries. */
  readonly violations: number;
}

const BANK_NAMES: ReadonlyMap<number, string> = new Map<number, string>([
  [TPM_ALG.SHA1, 'sha1'],
  [TPM_ALG.SHA256, 'sha256'],
  [TPM_ALG.SHA384, 'sha384'],
  [TPM_ALG.SHA512, 'sha512'],
  [TPM_ALG.SM3_256, 'sm3_256'],
  [TPM_ALG.SHA3_256, 'sha3_256'],
  [TPM_ALG.SHA3_384, 'sha3_384'],
  [TPM_ALG.SHA3_512, 'sha3_512'],
]);
const BANK_ALGS: ReadonlyMap<string, number> = new Map([...BANK_NAMES].map(([k, v]) => [v, k]));

interface Bank {
  readonly alg: number;
  readonly name: string;
  readonly node: string;
  readonly size: number;
}

function bankOf(alg: number): Bank {
  const name = BANK_NAMES.get(alg);
  if (name === undefined || !isHashSupported(alg)) throw argError(`bank 0x${alg.toString(16)}: not a hash bank this runtime computes`);
  return { alg, name, node: nodeHashName(alg), size: digestSize(alg) };
}

/** Running values: PCR → bank name → behaviour → value (absent: no longer computable). */
type Running = Map<number, Map<string, Partial<Record<ImaKernelBehaviour, Uint8Array>>>>;

const DEFAULT_WINDOW = 128;

/** What a pre-5.8 kernel extends for a violation: 20 bytes of 0xFF (zero-padded per bank). */
const VIOLATION_SHA1 = new Uint8Array(20).fill(0xff);

/**
 * Validates a state read back from storage (it is plain JSON).
 * @throws EvidenceError `evidence.argument` naming what is wrong.
 */
export function checkImaReplayState(value: unknown): ImaReplayState {
  function bad(why: string): never {
    throw argError(`IMA replay state: ${why}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) bad('not an object');
  const v = value as Record<string, unknown>;
  if (v['version'] !== 1) bad('version is not 1');
  const entryIndex = v['entryIndex'];
  if (typeof entryIndex !== 'number' || !Number.isSafeInteger(entryIndex) || entryIndex < 0) bad('entryIndex is not a non-negative integer');
  const byteOffset = v['byteOffset'];
  if (byteOffset !== undefined && (typeof byteOffset !== 'number' || !Number.isSafeInteger(byteOffset) || byteOffset < 0)) bad('byteOffset is not a non-negative integer');
  const banks = v['banks'];
  if (!Array.isArray(banks) || banks.length === 0 || banks.length > BANK_NAMES.size) bad('banks is not a non-empty list of bank names');
  const bankList = banks as unknown[];
  const sizes = new Map<string, number>();
  for (const b of bankList) {
    const alg = typeof b === 'string' ? BANK_ALGS.get(b) : undefined;
    if (alg === undefined || !isHashSupported(alg)) bad(`unknown bank ${String(b)}`);
    if (sizes.has(b as string)) bad(`bank ${String(b)} listed twice`);
    sizes.set(b as string, digestSize(alg!));
  }
  const behaviour = v['behaviour'];
  if (typeof behaviour !== 'object' || behaviour === null || Array.isArray(behaviour)) bad('behaviour is not an object');
  for (const [k, b] of Object.entries(behaviour as object)) {
    if (!sizes.has(k)) bad(`behaviour for untracked bank ${k}`);
    if (!BEHAVIOURS.includes(b as ImaKernelBehaviour)) bad(`behaviour ${String(b)} for ${k}`);
  }
  const pcrs = v['pcrs'];
  if (typeof pcrs !== 'object' || pcrs === null || Array.isArray(pcrs)) bad('pcrs is not an object');
  for (const [p, perBank] of Object.entries(pcrs as object)) {
    if (!/^[0-9]{1,2}$/.test(p) || Number(p) > MAX_PCR) bad(`PCR ${p}`);
    if (typeof perBank !== 'object' || perBank === null || Array.isArray(perBank)) bad(`PCR ${p} is not an object`);
    for (const [b, vals] of Object.entries(perBank as object)) {
      const size = sizes.get(b);
      if (size === undefined) bad(`PCR ${p}: untracked bank ${b}`);
      if (typeof vals !== 'object' || vals === null || Array.isArray(vals)) bad(`PCR ${p} ${b} is not an object`);
      for (const [beh, hex] of Object.entries(vals as object)) {
        if (!BEHAVIOURS.includes(beh as ImaKernelBehaviour)) bad(`PCR ${p} ${b}: behaviour ${beh}`);
        if (typeof hex !== 'string' || hex.length !== 2 * size! || !HEX.test(hex)) bad(`PCR ${p} ${b} ${beh}: not ${size} bytes of hex`);
      }
    }
  }
  const recent = v['recent'];
  if (!Array.isArray(recent) || recent.length > (entryIndex as number)) bad('recent is not a list no longer than entryIndex');
  for (const h of recent as unknown[]) {
    if (typeof h !== 'string' || h.length === 0 || h.length > 128 || h.length % 2 !== 0 || !HEX.test(h)) bad('recent holds a value that is not a template hash');
  }
  return value as ImaReplayState;
}

function freshState(banks: readonly Bank[]): ImaReplayState {
  return { version: 1, entryIndex: 0, banks: banks.map((b) => b.name), pcrs: {}, behaviour: {}, recent: [] };
}

function runningFromState(state: ImaReplayState): Running {
  const r: Running = new Map();
  for (const [p, perBank] of Object.entries(state.pcrs)) {
    const m = new Map<string, Partial<Record<ImaKernelBehaviour, Uint8Array>>>();
    for (const [b, vals] of Object.entries(perBank)) {
      const o: Partial<Record<ImaKernelBehaviour, Uint8Array>> = {};
      for (const beh of BEHAVIOURS) {
        const hex = vals[beh];
        if (hex !== undefined) o[beh] = new Uint8Array(Buffer.from(hex, 'hex'));
      }
      m.set(b, o);
    }
    r.set(Number(p), m);
  }
  return r;
}

function cloneRunning(r: Running): Running {
  const out: Running = new Map();
  for (const [p, m] of r) {
    const n = new Map<string, Partial<Record<ImaKernelBehaviour, Uint8Array>>>();
    for (const [b, o] of m) n.set(b, { ...o });
    out.set(p, n);
  }
  return out;
}

function runningToJson(r: Running): Record<string, Record<string, ImaBankValues>> {
  const out: Record<string, Record<string, ImaBankValues>> = {};
  for (const [p, m] of [...r].sort((a, b) => a[0] - b[0])) {
    const perBank: Record<string, ImaBankValues> = {};
    for (const [b, o] of m) {
      const vals: { -readonly [K in ImaKernelBehaviour]?: string } = {};
      for (const beh of BEHAVIOURS) {
        const v = o[beh];
        if (v !== undefined) vals[beh] = toHex(v);
      }
      perBank[b] = vals;
    }
    out[String(p)] = perBank;
  }
  return out;
}

/**
 * Extends running values with entries, per bank and behaviour. A behaviour
 * that cannot be computed for an entry (no template data in a bank whose hash
 * differs from the listed one) is dropped for that bank from there on.
 */
class Replayer {
  readonly running: Running;
  private readonly banks: readonly Bank[];
  private readonly allowed: Map<string, readonly ImaKernelBehaviour[]>;
  /** H_listAlg(templateData) of entries whose template hash was checked: reused, not recomputed. */
  private readonly known: ReadonlyMap<ImaEntry, Uint8Array>;
  /** PCR ‖ digest, per bank: one buffer per bank instead of one per extend. */
  private readonly scratch = new Map<number, Uint8Array>();
  /** The zero-padded SHA-1 digest, per bank. */
  private readonly padded = new Map<number, Uint8Array>();
  constructor(banks: readonly Bank[], start: Running, allowed: Map<string, readonly ImaKernelBehaviour[]>, known: ReadonlyMap<ImaEntry, Uint8Array> = new Map()) {
    this.banks = banks;
    this.running = cloneRunning(start);
    this.allowed = allowed;
    this.known = known;
  }

  /** PCR_new = H(PCR_old ‖ digest) (Part 1 §17.5.1 "PCR Extend"). */
  private extendOne(bank: Bank, old: Uint8Array, digest: Uint8Array): Uint8Array {
    let buf = this.scratch.get(bank.alg);
    if (buf === undefined) {
      buf = new Uint8Array(2 * bank.size);
      this.scratch.set(bank.alg, buf);
    }
    buf.set(old, 0);
    buf.set(digest, bank.size);
    return digestOf(bank.node, buf);
  }

  /** H_bank(templateData), from the template check when it used the same hash. */
  private dataDigest(e: ImaEntry, bank: Bank): Uint8Array {
    const k = bank.alg === e.templateHashAlg ? this.known.get(e) : undefined;
    return k ?? digestOf(bank.node, e.templateData!);
  }

  /** The start value of a PCR never extended: zeros (PCRs 0–16, where IMA lives). */
  private values(pcr: number, bank: Bank): Partial<Record<ImaKernelBehaviour, Uint8Array>> {
    let m = this.running.get(pcr);
    if (m === undefined) {
      m = new Map();
      this.running.set(pcr, m);
    }
    let o = m.get(bank.name);
    if (o === undefined) {
      o = {};
      for (const beh of this.allowed.get(bank.name) ?? BEHAVIOURS) o[beh] = new Uint8Array(bank.size);
      m.set(bank.name, o);
    }
    return o;
  }

  extend(e: ImaEntry): void {
    // One SHA-1 of the template data serves the padded digest of every bank (per-bank lists only).
    let sha1: Uint8Array | undefined | null = null;
    const sha1Hash = (): Uint8Array | undefined => {
      if (sha1 === null) {
        if (e.templateHashAlg === TPM_ALG.SHA1) sha1 = e.templateHash;
        else sha1 = e.templateData !== undefined ? digestOf('sha1', e.templateData) : undefined;
      }
      return sha1;
    };
    for (const bank of this.banks) {
      const o = this.values(e.pcr, bank);
      const bh = o['bank-hash'];
      const ps = o['padded-sha1'];
      let bhDigest: Uint8Array | undefined;
      if (bh !== undefined) {
        if (e.violation) bhDigest = new Uint8Array(bank.size).fill(0xff);
        else if (e.templateData !== undefined) bhDigest = this.dataDigest(e, bank);
        else if (e.templateHashAlg === bank.alg) bhDigest = e.templateHash;
        if (bhDigest === undefined) delete o['bank-hash'];
        else o['bank-hash'] = this.extendOne(bank, bh, bhDigest);
      }
      if (ps !== undefined) {
        let psDigest: Uint8Array | undefined;
        if (bank.size >= 20) {
          const d = e.violation ? VIOLATION_SHA1 : sha1Hash();
          if (d !== undefined) {
            psDigest = this.padded.get(bank.alg);
            if (psDigest === undefined) {
              psDigest = new Uint8Array(bank.size);
              this.padded.set(bank.alg, psDigest);
            }
            // Bytes 20.. stay zero: only the first 20 are ever written.
            psDigest.set(d);
          }
        }
        if (psDigest === undefined) delete o['padded-sha1'];
        else if (bh !== undefined && bhDigest !== undefined && equalBytes(bh, ps) && equalBytes(bhDigest, psDigest)) o['padded-sha1'] = o['bank-hash'];
        else o['padded-sha1'] = this.extendOne(bank, ps, psDigest);
      }
    }
  }

  /** The value of a PCR in a bank under a behaviour; zeros for a PCR never extended. */
  value(pcr: number, bank: Bank, beh: ImaKernelBehaviour): Uint8Array | undefined {
    const o = this.running.get(pcr)?.get(bank.name);
    if (o === undefined) return (this.allowed.get(bank.name) ?? BEHAVIOURS).includes(beh) ? new Uint8Array(bank.size) : undefined;
    return o[beh];
  }
}

function checkEntries(entries: unknown): readonly ImaEntry[] {
  if (!Array.isArray(entries)) throw argError('replayIma: entries must be an array');
  for (const e of entries as unknown[]) {
    const x = e as Partial<ImaEntry> | null;
    if (
      typeof x !== 'object' ||
      x === null ||
      typeof x.index !== 'number' ||
      !Number.isSafeInteger(x.index) ||
      x.index < 0 ||
      typeof x.pcr !== 'number' ||
      !Number.isInteger(x.pcr) ||
      x.pcr < 0 ||
      x.pcr > MAX_PCR ||
      !(x.templateHash instanceof Uint8Array) ||
      typeof x.templateHashAlg !== 'number' ||
      !isHashAlg(x.templateHashAlg) ||
      !isHashSupported(x.templateHashAlg) ||
      x.templateHash.length !== digestSize(x.templateHashAlg) ||
      (x.templateData !== undefined && !(x.templateData instanceof Uint8Array))
    ) {
      throw argError('replayIma: an entry is not an ImaEntry (parse it with parseImaList)');
    }
  }
  return entries as readonly ImaEntry[];
}

function checkQuoted(quoted: unknown): ReadonlyMap<number, ReadonlyMap<number, Uint8Array>> | undefined {
  if (quoted === undefined) return undefined;
  if (!(quoted instanceof Map)) throw argError('replayIma: quoted must be a Map of bank → Map of PCR → value');
  for (const [bank, m] of quoted as Map<unknown, unknown>) {
    if (typeof bank !== 'number' || !isHashAlg(bank)) throw argError(`replayIma: quoted bank ${String(bank)} is not a hash algorithm`);
    if (!(m instanceof Map)) throw argError('replayIma: quoted must be a Map of bank → Map of PCR → value');
    for (const [pcr, value] of m as Map<unknown, unknown>) {
      if (typeof pcr !== 'number' || !Number.isInteger(pcr) || pcr < 0 || pcr > MAX_PCR) throw argError(`replayIma: quoted PCR ${String(pcr)}`);
      if (!(value instanceof Uint8Array) || value.length !== digestSize(bank)) throw argError(`replayIma: quoted PCR ${pcr} of bank 0x${bank.toString(16)} is not a digest of the bank's size`);
    }
  }
  return quoted as ReadonlyMap<number, ReadonlyMap<number, Uint8Array>>;
}

function plural(n: number, what: 'entry' | 'new entry' | 'resent entry' | 'violation'): string {
  return `${n} ${n === 1 ? what : what.endsWith('entry') ? `${what.slice(0, -1)}ies` : `${what}s`}`;
}

function listIndices(xs: readonly number[]): string {
  return xs.length <= 5 ? xs.join(', ') : `${xs.slice(0, 5).join(', ')} and ${xs.length - 5} more`;
}

/**
 * Replays IMA entries to the PCRs they extend, incrementally, and checks the
 * result against a quote's PCR values.
 *
 * - Sequence: entries must be consecutive by index. Entries below the state's
 *   `entryIndex` are a resend: each one in the state's recent window must have
 *   the template hash accepted before (else `log.reordered` / `log.rewritten`);
 *   a resend from entry 0 is replayed and must reach the stored values; they
 *   are then skipped, never extended twice (rust-keylime#1077). A log that ends
 *   before `entryIndex` is `log.truncated`; one that starts after it, `log.gap`.
 * - Template hashes of new entries are recomputed from their template data.
 * - Replay of new entries per tracked bank under both kernel behaviours; with
 *   `quoted`, the prefix of new entries (possibly none, possibly all) whose
 *   values equal the quoted IMA PCRs is accepted; the entries after it are
 *   returned as `pending`. A quote that matches no prefix fails `replay.mismatch`.
 *
 * The state is advanced only when no check fails.
 *
 * @throws EvidenceError `evidence.argument` for a malformed state, entries that are not ImaEntry values, or quoted
 *   values of the wrong size.
 * @example
 *   const { verdict, state: next, covered } = replayIma(parseImaList(bytes, { firstIndex: prev.entryIndex }).entries, prev, { quoted: q.pcrValues });
 */
export function replayIma(entries: readonly ImaEntry[], state?: ImaReplayState, options: ImaReplayOptions = {}): ImaReplayResult {
  const list = checkEntries(entries);
  const quoted = checkQuoted(options.quoted);
  const window = checkCount('window', options.window, DEFAULT_WINDOW, 10_000_000);
  if (options.behaviour !== undefined && !BEHAVIOURS.includes(options.behaviour)) throw argError(`replayIma: behaviour ${String(options.behaviour)}`);
  const imaPcrs = options.imaPcrs ?? [10];
  if (!Array.isArray(imaPcrs) || imaPcrs.some((p) => typeof p !== 'number' || !Number.isInteger(p) || p < 0 || p > MAX_PCR)) throw argError('replayIma: imaPcrs must list PCR indices');

  let prev: ImaReplayState;
  if (state !== undefined) {
    prev = checkImaReplayState(state);
  } else {
    const algs = options.banks ?? (quoted !== undefined && quoted.size > 0 ? [...quoted.keys()].filter((a) => BANK_NAMES.has(a) && isHashSupported(a)) : [TPM_ALG.SHA1, TPM_ALG.SHA256]);
    if (!Array.isArray(algs) || algs.length === 0) throw argError('replayIma: no bank to track');
    prev = freshState([...new Set(algs)].map(bankOf));
  }
  const banks = prev.banks.map((n) => bankOf(BANK_ALGS.get(n)!));
  const allowed = new Map<string, readonly ImaKernelBehaviour[]>();
  for (const b of banks) {
    const decided = prev.behaviour[b.name];
    const forced = options.behaviour;
    allowed.set(b.name, decided !== undefined ? [decided] : forced !== undefined ? [forced] : BEHAVIOURS);
  }
  const prevRunning = runningFromState(prev);

  const checks: Check[] = [];
  const unchanged = (extra: Partial<ImaReplayResult> = {}): ImaReplayResult => ({
    verdict: verdict(checks),
    state: prev,
    covered: [],
    pending: [],
    skipped: 0,
    behaviour: behaviourReport(banks, prev.behaviour, new Map()),
    kernel: kernelOf(prev.behaviour, banks),
    pcrValues: pcrValuesOf(prevRunning, banks, prev.behaviour),
    violations: 0,
    ...extra,
  });

  // ---- sequence: consecutive indices, no gap before the state, no truncation below it.
  const first = list.length > 0 ? list[0]!.index : prev.entryIndex;
  for (let j = 1; j < list.length; j++) {
    if (list[j]!.index !== first + j) {
      checks.push(fail('ima.sequence', 'log.gap', `entry ${list[j]!.index} follows entry ${list[j - 1]!.index}: the entries are not consecutive`));
      return unchanged();
    }
  }
  if (first > prev.entryIndex) {
    checks.push(fail('ima.sequence', 'log.gap', `the entries start at ${first} but ${prev.entryIndex} were accepted so far: entries ${prev.entryIndex}..${first - 1} are missing`));
    return unchanged();
  }
  const endIndex = first + list.length;
  if (list.length > 0 && endIndex < prev.entryIndex) {
    checks.push(fail('ima.sequence', 'log.truncated', `the log ends at entry ${endIndex - 1} but ${prev.entryIndex} entries were accepted before: the list lost entries`));
    return unchanged();
  }

  // ---- resent entries: recognise and skip, never extend twice.
  const resent = list.filter((e) => e.index < prev.entryIndex);
  if (resent.length > 0) {
    const windowStart = prev.entryIndex - prev.recent.length;
    const inWindow = resent.filter((e) => e.index >= windowStart);
    for (const e of inWindow) {
      const listed = toHex(e.templateHash);
      const expected = prev.recent[e.index - windowStart]!;
      if (listed !== expected) {
        const elsewhere = prev.recent.includes(listed);
        checks.push(
          elsewhere
            ? fail('ima.sequence', 'log.reordered', `resent entry ${e.index} (${e.name ?? e.template}) has the template hash accepted at another position: the log was reordered`)
            : fail('ima.sequence', 'log.rewritten', `resent entry ${e.index} (${e.name ?? e.template}) differs from the entry accepted before: the log was rewritten`),
        );
        return unchanged();
      }
    }
    const before = resent.length - inWindow.length;
    if (before > 0 && first === 0) {
      // The whole prefix again: its replay must reach the values stored for entryIndex.
      const r = new Replayer(banks, new Map(), allowed);
      for (const e of resent) r.extend(e);
      const differs = banks.some((b) =>
        [...new Set([...prevRunning.keys(), ...r.running.keys()])].some((p) =>
          allowed.get(b.name)!.some((beh) => {
            const want = prevRunning.get(p)?.get(b.name)?.[beh] ?? (prevRunning.get(p)?.get(b.name) === undefined ? new Uint8Array(b.size) : undefined);
            const got = r.value(p, b, beh);
            return want !== undefined && got !== undefined && !equalBytes(want, got);
          }),
        ),
      );
      if (differs) {
        checks.push(fail('ima.sequence', 'log.rewritten', `the resent entries 0..${prev.entryIndex - 1} do not replay to the values accepted before: the log was rewritten or reordered`));
        return unchanged();
      }
      checks.push(pass('ima.sequence', 'resend.skipped', `${plural(resent.length, 'resent entry')} (from 0) replay to the accepted values and were skipped`));
    } else if (before > 0) {
      checks.push(
        warn('ima.sequence', 'resend.unverified', `${plural(resent.length, 'resent entry')} skipped; ${before} of them are older than the ${prev.recent.length} remembered and could not be compared`),
      );
    } else {
      checks.push(pass('ima.sequence', 'resend.skipped', `${plural(resent.length, 'resent entry')} match the entries accepted before and were skipped`));
    }
  } else {
    checks.push(pass('ima.sequence', 'sequence.ok', `entries ${list.length > 0 ? `${first}..${endIndex - 1}` : '(none)'} follow the ${prev.entryIndex} accepted`));
  }
  const fresh = list.slice(resent.length);

  // ---- template hashes of the new entries.
  const mismatched: number[] = [];
  let notComputable = 0;
  const known = new Map<ImaEntry, Uint8Array>();
  for (const e of fresh) {
    if (e.violation) continue;
    if (e.templateData === undefined) {
      notComputable++;
      continue;
    }
    const d = digestOf(nodeHashName(e.templateHashAlg), e.templateData);
    known.set(e, d);
    if (!equalBytes(d, e.templateHash)) mismatched.push(e.index);
  }
  if (mismatched.length > 0) {
    checks.push(fail('ima.template-hash', 'template-hash.mismatch', `the template hash of ${plural(mismatched.length, 'entry')} (${listIndices(mismatched)}) is not the hash of its template data`));
  } else if (notComputable > 0) {
    checks.push(notPerformed('ima.template-hash', 'template-hash.not-computable', `${plural(notComputable, 'entry')} of unknown templates in ASCII form: template data cannot be rebuilt`));
  } else {
    checks.push(pass('ima.template-hash', 'template-hash.valid', `${plural(fresh.length, 'new entry')}: template hashes recompute`));
  }

  // ---- replay and the quote.
  const replayer = new Replayer(banks, prevRunning, allowed, known);
  let k = fresh.length;
  let matchedBy = new Map<string, readonly ImaKernelBehaviour[]>();
  let advance = true;
  if (quoted === undefined) {
    for (const e of fresh) replayer.extend(e);
    checks.push(notPerformed('ima.replay', 'replay.no-quote', `${plural(fresh.length, 'entry')} replayed without a quote to compare with`));
  } else {
    const touched = new Set<number>([...imaPcrs, ...prevRunning.keys(), ...fresh.map((e) => e.pcr)]);
    const usable: Bank[] = [];
    const targets = new Map<string, [number, Uint8Array][]>();
    for (const [alg, m] of quoted) {
      const pcrs = [...m].filter(([p]) => touched.has(p));
      if (pcrs.length === 0) continue;
      const bank = banks.find((b) => b.alg === alg);
      if (bank === undefined) {
        checks.push(notPerformed('ima.replay', 'replay.bank-not-tracked', `bank ${BANK_NAMES.get(alg) ?? `0x${alg.toString(16)}`} is quoted but this device's IMA state does not track it`));
        continue;
      }
      usable.push(bank);
      targets.set(bank.name, pcrs);
    }
    const quotedPcrs = new Set([...targets.values()].flatMap((t) => t.map(([p]) => p)));
    const unquoted = [...new Set([...fresh.map((e) => e.pcr), ...imaPcrs])].filter((p) => !quotedPcrs.has(p));
    if (usable.length === 0) {
      checks.push(notPerformed('ima.replay', 'replay.pcr-not-quoted', `the quote covers none of the PCRs IMA extends (${[...new Set([...imaPcrs, ...fresh.map((e) => e.pcr)])].join(', ')}) in a tracked bank`));
      advance = false;
      k = 0;
    } else {
      if (unquoted.length > 0 && fresh.some((e) => unquoted.includes(e.pcr))) {
        checks.push(warn('ima.replay', 'replay.pcr-not-quoted', `entries extend PCR ${unquoted.join(', ')}, which the quote does not cover: those are not verified`));
      }
      const plan = usable.map((bank) => ({ bank, behaviours: allowed.get(bank.name)!, targets: targets.get(bank.name)! }));
      const holds = (bank: Bank, beh: ImaKernelBehaviour, want: readonly [number, Uint8Array][]): boolean => {
        for (const [p, value] of want) {
          const got = replayer.value(p, bank, beh);
          if (got === undefined || !equalBytes(got, value)) return false;
        }
        return true;
      };
      // Checked after every entry: allocates nothing until every bank matches.
      const matchAt = (): Map<string, readonly ImaKernelBehaviour[]> | undefined => {
        for (const { bank, behaviours, targets: want } of plan) {
          let any = false;
          for (const beh of behaviours) if ((any = holds(bank, beh, want))) break;
          if (!any) return undefined;
        }
        return new Map(plan.map(({ bank, behaviours, targets: want }) => [bank.name, behaviours.filter((beh) => holds(bank, beh, want))]));
      };
      // The quote may have been taken while entries were appended: try every prefix, shortest first.
      let found = matchAt();
      let at = 0;
      while (found === undefined && at < fresh.length) {
        replayer.extend(fresh[at++]!);
        found = matchAt();
      }
      const computable = usable.every((b) => allowed.get(b.name)!.some((beh) => targets.get(b.name)!.every(([p]) => replayer.value(p, b, beh) !== undefined)));
      if (found === undefined) {
        advance = false;
        k = 0;
        if (!computable) {
          checks.push(notPerformed('ima.replay', 'replay.not-computable', 'the quoted banks cannot be replayed from these entries (unknown templates in ASCII form)'));
        } else {
          checks.push(
            fail(
              'ima.replay',
              'replay.mismatch',
              `no prefix of the ${plural(fresh.length, 'new entry')} replays to the quoted ${usable.map((b) => `${b.name}:PCR${targets.get(b.name)!.map(([p]) => p).join('/')}`).join(', ')}`,
            ),
          );
        }
      } else {
        k = at;
        matchedBy = found;
        checks.push(
          k === fresh.length
            ? pass('ima.replay', 'replay.match', `the quoted PCRs equal the replay of all ${plural(fresh.length, 'new entry')}`)
            : pass('ima.replay', 'replay.prefix', `the quote covers the first ${k} of ${plural(fresh.length, 'new entry')}; ${fresh.length - k} were appended after it and stay pending`),
        );
      }
    }
  }

  const covered = advance ? fresh.slice(0, k) : [];
  const pending = advance ? fresh.slice(k) : fresh;
  const violations = covered.filter((e) => e.violation).length;
  checks.push(violations > 0 ? warn('ima.violations', 'violations.present', `${plural(violations, 'violation')} (ToMToU or open-writers) among the accepted entries`) : pass('ima.violations', 'violations.none', 'no violations'));

  // Behaviour: a bank is decided when exactly one behaviour matched the quote and the other could be computed.
  const newBehaviour: Record<string, ImaKernelBehaviour> = { ...prev.behaviour };
  for (const [name, ok] of matchedBy) {
    if (ok.length === 1 && newBehaviour[name] === undefined) {
      const bank = banks.find((b) => b.name === name)!;
      const other = BEHAVIOURS.find((b) => b !== ok[0])!;
      const otherComputable = [...replayer.running.keys()].some((p) => replayer.value(p, bank, other) !== undefined);
      if (otherComputable || options.behaviour !== undefined) newBehaviour[name] = ok[0]!;
    }
  }
  const kernel = kernelOf(newBehaviour, banks);
  if (kernel === '5.8+') checks.push(pass('ima.kernel', 'kernel.since-5.8', 'the quote matched per-bank template hashes (Linux 5.8 or later)'));
  if (kernel === 'pre-5.8') checks.push(pass('ima.kernel', 'kernel.before-5.8', 'the quote matched zero-padded SHA-1 template hashes (Linux before 5.8)'));
  if (kernel === 'mixed') checks.push(pass('ima.kernel', 'kernel.mixed', 'some banks matched per-bank template hashes, others padded SHA-1 (a 5.8+ kernel without the hash of a bank)'));

  const v = verdict(checks);
  if (!v.accepted || !advance) {
    return { ...unchanged(), verdict: v, pending: fresh, skipped: resent.length };
  }
  // Running values after the accepted entries, restricted to the decided behaviours.
  for (const m of replayer.running.values()) {
    for (const [name, o] of m) {
      const decided = newBehaviour[name];
      if (decided !== undefined) for (const beh of BEHAVIOURS) if (beh !== decided) delete o[beh];
    }
  }
  const accepted = prev.entryIndex + covered.length;
  const recent = [...prev.recent, ...covered.map((e) => toHex(e.templateHash))].slice(-window);
  // Parsed entries carry their place in the kernel's file (end > offset); built ones do not.
  const last = accepted > first ? list[accepted - 1 - first] : undefined;
  const byteOffset = last !== undefined && last.end > last.offset ? last.end : prev.byteOffset;
  const next: ImaReplayState = {
    version: 1,
    entryIndex: accepted,
    ...(byteOffset !== undefined ? { byteOffset } : {}),
    banks: prev.banks,
    pcrs: runningToJson(replayer.running),
    behaviour: newBehaviour,
    recent,
  };
  return {
    verdict: v,
    state: next,
    covered,
    pending,
    skipped: resent.length,
    behaviour: behaviourReport(banks, newBehaviour, matchedBy),
    kernel,
    pcrValues: pcrValuesOf(replayer.running, banks, newBehaviour),
    violations,
  };
}

function behaviourReport(banks: readonly Bank[], decided: Readonly<Record<string, ImaKernelBehaviour>>, matched: Map<string, readonly ImaKernelBehaviour[]>): Record<string, ImaKernelBehaviour | 'either'> {
  const out: Record<string, ImaKernelBehaviour | 'either'> = {};
  for (const b of banks) {
    const d = decided[b.name];
    const m = matched.get(b.name);
    out[b.name] = d ?? (m !== undefined && m.length === 1 ? m[0]! : 'either');
  }
  return out;
}

function kernelOf(decided: Readonly<Record<string, ImaKernelBehaviour>>, banks: readonly Bank[]): ImaReplayResult['kernel'] {
  // SHA-1 banks never tell the behaviours apart.
  const seen = new Set(banks.filter((b) => b.alg !== TPM_ALG.SHA1).flatMap((b) => (decided[b.name] !== undefined ? [decided[b.name]!] : [])));
  if (seen.size === 2) return 'mixed';
  if (seen.has('bank-hash')) return '5.8+';
  if (seen.has('padded-sha1')) return 'pre-5.8';
  return 'undetermined';
}

function pcrValuesOf(r: Running, banks: readonly Bank[], decided: Readonly<Record<string, ImaKernelBehaviour>>): Map<number, Map<number, Uint8Array>> {
  const out = new Map<number, Map<number, Uint8Array>>();
  for (const b of banks) {
    // One behaviour per bank, as a kernel has: the decided one, else the first computable at every PCR.
    const objs = [...r].flatMap(([p, perBank]) => {
      const o = perBank.get(b.name);
      return o === undefined ? [] : [[p, o] as const];
    });
    const decidedBeh = decided[b.name];
    const beh = decidedBeh ?? BEHAVIOURS.find((x) => objs.every(([, o]) => o[x] !== undefined));
    const m = new Map<number, Uint8Array>();
    if (beh !== undefined) {
      for (const [p, o] of objs) {
        const v = o[beh];
        if (v !== undefined) m.set(p, plain(v));
      }
    }
    out.set(b.alg, m);
  }
  return out;
}

// ---------------------------------------------------------------- allowlist / denylist

/** Lists an IMA policy refers to (the policy module decides what the findings mean). */
export interface ImaPolicyLists {
  /** Allowed digests by path: path → digests, each `<alg>:<hex>` or bare hex. Absent: no allowlist. */
  readonly allow?: Readonly<Record<string, readonly string[]>>;
  /**
   * Paths not held to the allowlist: a pattern without wildcards is a prefix
   * (`/tmp/`); `*` matches within one path segment, `**` across segments, `?` one character.
   */
  readonly exclude?: readonly string[];
  /** Digests refused wherever they appear, even on excluded paths: `<alg>:<hex>` or bare hex. */
  readonly deny?: readonly string[];
}

export type ImaFindingReason =
  | 'digest.allowed' // the path is listed with this digest
  | 'digest.not-denied' // no allowlist given, and the digest is not denied
  | 'path.excluded' // the path matches an exclusion
  | 'digest.denied' // the digest is on the denylist
  | 'digest.not-allowed' // the path is listed, with other digests
  | 'path.not-listed' // the allowlist does not name the path
  | 'entry.violation' // a violation entry: no digest to judge
  | 'entry.no-digest'; // an entry without a name or file digest (unknown template)

export interface ImaFinding {
  readonly index: number;
  readonly name: string | undefined;
  /** `<alg>:<hex>`. */
  readonly digest: string | undefined;
  readonly reason: ImaFindingReason;
  /** True for digest.allowed, digest.not-denied and path.excluded. */
  readonly ok: boolean;
}

interface DigestSet {
  readonly qualified: Set<string>;
  readonly bare: Set<string>;
}

function digestSet(list: readonly string[], what: string): DigestSet {
  const qualified = new Set<string>();
  const bare = new Set<string>();
  for (const raw of list) {
    if (typeof raw !== 'string') throw argError(`${what}: digests must be strings`);
    const s = raw.toLowerCase();
    const colon = s.lastIndexOf(':');
    const hex = colon < 0 ? s : s.slice(colon + 1);
    if (hex.length === 0 || hex.length % 2 !== 0 || !HEX.test(hex)) throw argError(`${what}: "${raw.slice(0, 80)}" is not <alg>:<hex> or hex`);
    if (colon < 0) bare.add(hex);
    else qualified.add(s);
  }
  return { qualified, bare };
}

function inSet(set: DigestSet, alg: string, hex: string): boolean {
  return set.bare.has(hex) || set.qualified.has(`${alg}:${hex}`);
}

type PathPattern = (path: string) => boolean;

/**
 * A path pattern: `*` (within a segment), `**` (across segments), `?` (one
 * character but `/`); without wildcards, a prefix. Matching simulates the
 * pattern as an automaton, O(pattern × path): no backtracking blow-up.
 * @throws EvidenceError `evidence.argument` for an empty pattern.
 */
export function imaPathPattern(pattern: string): (path: string) => boolean {
  if (typeof pattern !== 'string' || pattern.length === 0) throw argError('exclude: empty path pattern');
  if (!/[*?]/.test(pattern)) return (path) => path.startsWith(pattern);
  type Tok = { kind: 'char'; c: string } | { kind: 'any1' } | { kind: 'star' } | { kind: 'globstar' };
  const toks: Tok[] = [];
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        while (pattern[i + 1] === '*') i++;
        toks.push({ kind: 'globstar' });
      } else toks.push({ kind: 'star' });
    } else if (c === '?') toks.push({ kind: 'any1' });
    else toks.push({ kind: 'char', c });
  }
  const n = toks.length;
  // States 0..n: state s means toks[0..s) matched. Stars may match nothing (epsilon to s+1).
  const closure = (set: Uint8Array): void => {
    for (let s = 0; s < n; s++) if (set[s] && (toks[s]!.kind === 'star' || toks[s]!.kind === 'globstar')) set[s + 1] = 1;
  };
  return (path: string): boolean => {
    let cur = new Uint8Array(n + 1);
    cur[0] = 1;
    closure(cur);
    for (let i = 0; i < path.length; i++) {
      const ch = path[i]!;
      const next = new Uint8Array(n + 1);
      let any = false;
      for (let s = 0; s < n; s++) {
        if (!cur[s]) continue;
        const t = toks[s]!;
        if (t.kind === 'char' ? t.c === ch : t.kind === 'any1' ? ch !== '/' : false) {
          next[s + 1] = 1;
          any = true;
        } else if (t.kind === 'star' ? ch !== '/' : t.kind === 'globstar') {
          next[s] = 1;
          any = true;
        }
      }
      if (!any) return false;
      closure(next);
      cur = next;
    }
    return cur[n] === 1;
  };
}

/**
 * Judges each entry against an allowlist by path (with exclusions) and a
 * denylist by digest. Denied digests win over exclusions; violations and
 * entries without a digest are reported as such. Findings only, no verdict.
 *
 * @throws EvidenceError `evidence.argument` for malformed lists.
 */
export function evaluateImaAllowlist(entries: readonly ImaEntry[], lists: ImaPolicyLists): ImaFinding[] {
  if (!Array.isArray(entries)) throw argError('evaluateImaAllowlist: entries must be an array');
  if (typeof lists !== 'object' || lists === null) throw argError('evaluateImaAllowlist: lists must be an object');
  const deny = digestSet(lists.deny ?? [], 'deny');
  const exclusions: PathPattern[] = (lists.exclude ?? []).map(imaPathPattern);
  let allow: Map<string, DigestSet> | undefined;
  if (lists.allow !== undefined) {
    if (typeof lists.allow !== 'object' || lists.allow === null) throw argError('allow must map paths to digests');
    allow = new Map();
    for (const [path, digests] of Object.entries(lists.allow)) {
      if (!Array.isArray(digests)) throw argError(`allow["${path.slice(0, 80)}"] must be a list of digests`);
      allow.set(path, digestSet(digests, `allow["${path.slice(0, 80)}"]`));
    }
  }
  return entries.map((e): ImaFinding => {
    const name = e.name;
    const fd = e.fileDigest;
    const hex = fd !== undefined ? toHex(fd.digest) : undefined;
    const alg = fd?.algorithm.toLowerCase() ?? '';
    const digest = hex !== undefined ? `${alg}:${hex}` : undefined;
    const finding = (reason: ImaFindingReason, ok: boolean): ImaFinding => ({ index: e.index, name, digest, reason, ok });
    if (e.violation) return finding('entry.violation', false);
    if (name === undefined || hex === undefined) return finding('entry.no-digest', false);
    if (inSet(deny, alg, hex)) return finding('digest.denied', false);
    if (exclusions.some((m) => m(name))) return finding('path.excluded', true);
    if (allow === undefined) return finding('digest.not-denied', true);
    const listed = allow.get(name);
    if (listed === undefined) return finding('path.not-listed', false);
    return inSet(listed, alg, hex) ? finding('digest.allowed', true) : finding('digest.not-allowed', false);
  });
}
