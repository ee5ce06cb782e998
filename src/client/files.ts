/**
 * tpm2-tools' file formats (tpm2-tools 5.4 on tpm2-tss 3.2.1, as Debian ships
 * them), so that keys, quotes, credentials and contexts move between the
 * tools and this client. Pure functions over bytes: reading and writing the
 * files themselves is the caller's business (design.md, "Pure cores, thin edges").
 *
 * | tools' option | format | here |
 * |---|---|---|
 * | `-u key.pub` | TPM2B_PUBLIC | readPublicFile / writePublicFile |
 * | `-r key.priv` | TPM2B_PRIVATE | readPrivateFile / writePrivateFile |
 * | `-n key.name` | the raw Name | readNameFile / writeNameFile |
 * | `tpm2_quote -m` | TPMS_ATTEST as signed | readAttestFile / writeAttestFile |
 * | `-s sig` | TPMT_SIGNATURE (`-f plain`: DER ECDSA, raw RSA, HMAC digest) | readSignatureFile / writeSignatureFile, plainSignature / signatureFromPlain |
 * | `-f pem` | SubjectPublicKeyInfo PEM | publicKeyPem / readPemPublicKey |
 * | `tpm2_quote -o`, `tpm2_checkquote -f` | little-endian C-struct dump of the PCR values | readPcrValuesFile / writePcrValuesFile |
 * | `tpm2_makecredential -o`, `tpm2_activatecredential -i` | header, TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET | readCredentialFile / writeCredentialFile |
 * | `-c key.ctx` | header, TPMS_CONTEXT fields, ESYS metadata inside the blob | readContextFile / writeContextFile |
 * | `-S session.ctx` | header v2, session type and hash, then a context file | readSessionFile |
 *
 * TPM structures are big-endian as on the wire (Part 1 §"Marshaling"); the
 * tools' own headers are `BADCC0DE` and a version, both big-endian u32
 * (tpm2-tools lib/files.c). Every reader throws only ParseError (with the
 * structure path and the offset) on bad input, never an untyped error.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { TPM_ALG } from '../tpm/constants.js';
import { digestSize, isHashAlg } from '../tpm/crypto/hash.js';
import { EncodeError, ParseError } from '../tpm/errors.js';
import { LIMITS, SIZEOF_TPMS_CONTEXT_DATA } from '../tpm/limits.js';
import { publicKeyFromArea } from '../tpm/secret.js';
import {
  TPM2B_CONTEXT_DATA,
  TPM2B_ENCRYPTED_SECRET,
  TPM2B_ID_OBJECT,
  TPM2B_NAME,
  TPM2B_NV_PUBLIC,
  TPM2B_PRIVATE,
  TPM2B_PUBLIC,
  TPMI_DH_SAVED,
  TPMI_RH_HIERARCHY,
  TPMS_ATTEST,
  TPMT_SIGNATURE,
  type TPMS_CONTEXT,
  type TPMS_NV_PUBLIC,
  type TPMS_PCR_SELECTION,
  type TPMT_PUBLIC,
} from '../tpm/types/index.js';
import { decode, encode, orNull } from '../tpm/wire/codec.js';
import { Reader, Writer } from '../tpm/wire/io.js';

/** The magic that starts tpm2-tools' own file formats (lib/files.c `MAGIC`). */
export const TPM2_TOOLS_MAGIC = 0xbadcc0de;

function bytesArg(b: unknown, what: string): Uint8Array {
  if (!(b instanceof Uint8Array)) throw new ParseError('parse.value', `expected a Uint8Array, got ${b === null ? 'null' : typeof b}`, what, 0);
  return b;
}

function encodeArg(what: string, detail: string): never {
  throw new EncodeError('encode.value', detail, what);
}

/** Runs `fn` with a reader over the whole of `bytes`, under `path`, and requires that it reads everything. */
function readAll<T>(bytes: Uint8Array, path: string, fn: (r: Reader) => T): T {
  const r = new Reader(bytesArg(bytes, path));
  return r.within(path, () => {
    const v = fn(r);
    r.finish();
    return v;
  });
}

/** The tools' header: magic, then a version (lib/files.c files_read_header). */
function readHeader(r: Reader, versions: readonly number[]): number {
  r.within('magic', () => {
    const at = r.offset;
    const magic = r.u32();
    if (magic !== TPM2_TOOLS_MAGIC) r.fail('parse.constant', `magic 0x${magic.toString(16)} is not tpm2-tools' 0xbadcc0de`, at);
  });
  return r.within('version', () => {
    const at = r.offset;
    const version = r.u32();
    if (!versions.includes(version)) r.fail('parse.value', `version ${version}, expected ${versions.join(' or ')}`, at);
    return version;
  });
}

function writeHeader(w: Writer, version: number): void {
  w.u32(TPM2_TOOLS_MAGIC);
  w.u32(version);
}

// ---------------------------------------------------------------------------
// TPM2B_PUBLIC, TPM2B_PRIVATE, Name

/** A `-u` file (`tpm2_create -u`, `tpm2_readpublic -o`, `tpm2_createek -u`): one TPM2B_PUBLIC (Part 2 §12.2.5). */
export function readPublicFile(bytes: Uint8Array): TPMT_PUBLIC {
  return decode(TPM2B_PUBLIC, bytesArg(bytes, 'TPM2B_PUBLIC'));
}

/** The `-u` file the tools read for a public area. */
export function writePublicFile(publicArea: TPMT_PUBLIC): Uint8Array {
  return encode(TPM2B_PUBLIC, publicArea);
}

/**
 * A `-r` file (`tpm2_create -r`): one TPM2B_PRIVATE (Part 2 §12.3.7). The
 * content is the parent's wrapping of the sensitive area, opaque to anyone
 * but the parent, so it stays bytes: give it to TPM2_Load as `inPrivate`.
 */
export function readPrivateFile(bytes: Uint8Array): Uint8Array {
  return decode(TPM2B_PRIVATE, bytesArg(bytes, 'TPM2B_PRIVATE'));
}

/** The `-r` file for a Create/Duplicate/Import output. */
export function writePrivateFile(outPrivate: Uint8Array): Uint8Array {
  return encode(TPM2B_PRIVATE, outPrivate);
}

/**
 * A `-n` file (`tpm2_createak -n`, `tpm2_readpublic -n`): the Name itself,
 * with no size field. Accepted: nameAlg ‖ digest of that algorithm's size
 * (objects, NV indices; Part 1 §16), or a 4-byte handle (entities named by
 * their handle). The Name is only bytes here: compare it with
 * `objectName(publicArea)` before trusting it.
 */
export function readNameFile(bytes: Uint8Array): Uint8Array {
  const b = bytesArg(bytes, 'Name');
  checkName(b, 'Name');
  return b.slice();
}

/** The `-n` file for a Name (checked as readNameFile checks it). */
export function writeNameFile(name: Uint8Array): Uint8Array {
  if (!(name instanceof Uint8Array)) encodeArg('Name', 'expected a Uint8Array');
  try {
    checkName(name, 'Name');
  } catch (e) {
    if (e instanceof ParseError) encodeArg('Name', e.message);
    throw e;
  }
  return name.slice();
}

function checkName(b: Uint8Array, path: string): void {
  if (b.length === 4) return;
  if (b.length < 2) throw new ParseError('parse.truncated', `a Name of ${b.length} byte(s)`, path, 0);
  const alg = (b[0]! << 8) | b[1]!;
  if (!isHashAlg(alg)) throw new ParseError('parse.value', `0x${alg.toString(16)} is not a hash algorithm (a Name is nameAlg ‖ digest, or a handle)`, path, 0);
  const want = 2 + digestSize(alg);
  if (b.length !== want) throw new ParseError('parse.size', `a Name with nameAlg 0x${alg.toString(16)} has ${want} bytes, this one ${b.length}`, path, 0);
}

// ---------------------------------------------------------------------------
// Attestation structures and signatures

/**
 * A `-m` file (`tpm2_quote -m`, `tpm2_certify -o`): the TPMS_ATTEST bytes
 * exactly as signed (Part 2 §10.12.12), without the TPM2B size. Verify the
 * signature over the file's bytes, not over a re-encoding.
 */
export function readAttestFile(bytes: Uint8Array): TPMS_ATTEST {
  return decode(TPMS_ATTEST, bytesArg(bytes, 'TPMS_ATTEST'));
}

/**
 * The `-m` file for an attestation structure. The client decodes a Quote's
 * `quoted` strictly, so re-encoding it gives the signed bytes back.
 */
export function writeAttestFile(attest: TPMS_ATTEST): Uint8Array {
  return encode(TPMS_ATTEST, attest);
}

/** A `-s` file in the tools' default (tss) format: one TPMT_SIGNATURE (Part 2 §11.3.4). */
export function readSignatureFile(bytes: Uint8Array): TPMT_SIGNATURE {
  return decode(TPMT_SIGNATURE, bytesArg(bytes, 'TPMT_SIGNATURE'));
}

/** The `-s` file (tss format) the tools read (`tpm2_verifysignature -s`, `tpm2_checkquote -s`). */
export function writeSignatureFile(signature: TPMT_SIGNATURE): Uint8Array {
  return encode(TPMT_SIGNATURE, signature);
}

/**
 * What `-f plain` writes for a signature (tpm2-tools lib/tpm2_convert.c):
 * RSASSA/RSAPSS the raw signature, ECDSA/SM2 a DER `ECDSA-Sig-Value`
 * (RFC 5480 §2.2.3; what node:crypto verifies by default), HMAC the digest.
 * @throws EncodeError for a NULL signature or a scheme the tools cannot write plainly (ECDAA, EC-Schnorr).
 */
export function plainSignature(signature: TPMT_SIGNATURE): Uint8Array {
  const s = signature as { sigAlg: number; signature: unknown };
  switch (s.sigAlg) {
    case TPM_ALG.RSASSA:
    case TPM_ALG.RSAPSS:
      return (s.signature as { sig: Uint8Array }).sig.slice();
    case TPM_ALG.ECDSA:
    case TPM_ALG.SM2: {
      const e = s.signature as { signatureR: Uint8Array; signatureS: Uint8Array };
      return derEcdsa(e.signatureR, e.signatureS);
    }
    case TPM_ALG.HMAC:
      return (s.signature as { digest: Uint8Array }).digest.slice();
    default:
      return encodeArg('TPMT_SIGNATURE', `sigAlg 0x${Number(s.sigAlg).toString(16)} has no plain form in tpm2-tools`);
  }
}

/** The scheme a plain signature was made with: the tools take it from `-g` and the key. */
export interface PlainSignatureScheme {
  /** TPM_ALG_RSASSA, RSAPSS, ECDSA, SM2 or HMAC. */
  readonly sigAlg: number;
  /** The hash of the scheme, e.g. TPM_ALG_SHA256. */
  readonly hashAlg: number;
  /**
   * ECDSA/SM2: pad r and s with leading zeros to this many bytes (the
   * curve's size). Without it they keep the DER's minimal length, as the
   * tools load them (lib/tpm2_convert.c pop_ecdsa).
   */
  readonly size?: number;
}

/**
 * Reads a `-f plain` signature into a TPMT_SIGNATURE, as the tools do when
 * `tpm2_verifysignature -f` is given with a scheme.
 * @throws ParseError for a DER that is not one SEQUENCE of two positive INTEGERs, a
 *   plain HMAC of the wrong size, or a scheme with no plain form.
 */
export function signatureFromPlain(plain: Uint8Array, scheme: PlainSignatureScheme): TPMT_SIGNATURE {
  const b = bytesArg(plain, 'plain signature');
  const { sigAlg, hashAlg } = scheme;
  if (!isHashAlg(hashAlg)) throw new ParseError('parse.value', `hashAlg 0x${Number(hashAlg).toString(16)} is not a hash algorithm`, 'plain signature', 0);
  switch (sigAlg) {
    case TPM_ALG.RSASSA:
    case TPM_ALG.RSAPSS:
      if (b.length === 0 || b.length > LIMITS.MAX_RSA_KEY_BYTES) {
        throw new ParseError('parse.size', `an RSA signature of ${b.length} byte(s)`, 'plain signature', 0);
      }
      return { sigAlg, signature: { hash: hashAlg, sig: b.slice() } } as TPMT_SIGNATURE;
    case TPM_ALG.ECDSA:
    case TPM_ALG.SM2: {
      const { r, s } = parseDerEcdsa(b);
      const size = scheme.size;
      if (size !== undefined && (!Number.isInteger(size) || size < 1 || size > LIMITS.MAX_ECC_KEY_BYTES)) {
        throw new ParseError('parse.value', `size ${String(size)} is not a curve size (1..${LIMITS.MAX_ECC_KEY_BYTES})`, 'plain signature', 0);
      }
      return { sigAlg, signature: { hash: hashAlg, signatureR: padTo(r, size, 'r'), signatureS: padTo(s, size, 's') } } as TPMT_SIGNATURE;
    }
    case TPM_ALG.HMAC:
      if (b.length !== digestSize(hashAlg)) {
        throw new ParseError('parse.size', `an HMAC of ${b.length} byte(s) for a ${digestSize(hashAlg)}-byte hash`, 'plain signature', 0);
      }
      return { sigAlg, signature: { hashAlg, digest: b.slice() } } as TPMT_SIGNATURE;
    default:
      throw new ParseError('parse.selector', `sigAlg 0x${Number(sigAlg).toString(16)} has no plain form in tpm2-tools`, 'plain signature', 0);
  }
}

function padTo(v: Uint8Array, size: number | undefined, what: string): Uint8Array {
  if (v.length > LIMITS.MAX_ECC_KEY_BYTES) throw new ParseError('parse.size', `${what} of ${v.length} bytes is longer than any curve`, `ECDSA-Sig-Value.${what}`, 0);
  if (size === undefined || v.length === size) return v;
  if (v.length > size) throw new ParseError('parse.size', `${what} of ${v.length} bytes does not fit ${size}`, `ECDSA-Sig-Value.${what}`, 0);
  const out = new Uint8Array(size);
  out.set(v, size - v.length);
  return out;
}

/** DER of a non-negative INTEGER from big-endian magnitude bytes (X.690 §8.3: minimal, a 0x00 before a set top bit). */
function derInteger(magnitude: Uint8Array): Uint8Array {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  let body = magnitude.subarray(i);
  if (body.length === 0) body = Uint8Array.of(0);
  const pad = body[0]! & 0x80 ? 1 : 0;
  return Uint8Array.from([0x02, ...derLength(body.length + pad), ...(pad ? [0] : []), ...body]);
}

function derLength(n: number): number[] {
  if (n < 0x80) return [n];
  if (n < 0x100) return [0x81, n];
  return [0x82, n >> 8, n & 0xff];
}

function derEcdsa(r: Uint8Array, s: Uint8Array): Uint8Array {
  const ri = derInteger(r);
  const si = derInteger(s);
  return Uint8Array.from([0x30, ...derLength(ri.length + si.length), ...ri, ...si]);
}

/** Parses `SEQUENCE { r INTEGER, s INTEGER }` (DER; lengths in short or one/two-byte long form). */
function parseDerEcdsa(b: Uint8Array): { r: Uint8Array; s: Uint8Array } {
  const path = 'ECDSA-Sig-Value';
  let at = 0;
  const fail = (code: 'parse.truncated' | 'parse.value' | 'parse.size' | 'parse.trailing', detail: string, where = at): never => {
    throw new ParseError(code, detail, path, where);
  };
  const byte = (): number => {
    if (at >= b.length) fail('parse.truncated', 'DER ends early');
    return b[at++]!;
  };
  const length = (): number => {
    const start = at;
    const first = byte();
    if (first < 0x80) return first;
    const n = first & 0x7f;
    if (n === 0 || n > 2) fail('parse.value', `DER length form 0x${first.toString(16)} is not supported here`, start);
    let len = 0;
    for (let k = 0; k < n; k++) len = (len << 8) | byte();
    if (len < 0x80 || (n === 2 && len < 0x100)) fail('parse.value', 'DER length is not minimal', start);
    return len;
  };
  const integer = (name: string): Uint8Array => {
    const start = at;
    if (byte() !== 0x02) fail('parse.value', `${name}: expected an INTEGER (tag 0x02)`, start);
    const len = length();
    if (len === 0) fail('parse.size', `${name}: an empty INTEGER`, start);
    if (len > b.length - at) fail('parse.truncated', `${name}: INTEGER of ${len} byte(s), ${b.length - at} left`, start);
    const body = b.subarray(at, at + len);
    if (body[0]! & 0x80) fail('parse.value', `${name}: a negative INTEGER`, at);
    if (len > 1 && body[0] === 0 && !(body[1]! & 0x80)) fail('parse.value', `${name}: INTEGER is not minimal`, at);
    at += len;
    let i = 0;
    while (i < body.length - 1 && body[i] === 0) i++;
    return body.slice(i);
  };
  if (byte() !== 0x30) fail('parse.value', 'expected a SEQUENCE (tag 0x30)', 0);
  const len = length();
  if (len !== b.length - at) fail(len > b.length - at ? 'parse.truncated' : 'parse.trailing', `SEQUENCE of ${len} byte(s), ${b.length - at} follow`);
  const r = integer('r');
  const s = integer('s');
  if (at !== b.length) fail('parse.trailing', `${b.length - at} byte(s) after s`);
  return { r, s };
}

// ---------------------------------------------------------------------------
// PEM public keys

/**
 * The `-f pem` public key the tools write and read (`tpm2_readpublic -f pem`,
 * `tpm2_checkquote -u`): a SubjectPublicKeyInfo PEM of an RSA or ECC public area.
 * @throws CryptoError (`crypto.key`) for a keyedHash/symcipher object or an unusable key;
 *   UnsupportedAlgorithmError for a curve node:crypto lacks.
 */
export function publicKeyPem(publicArea: TPMT_PUBLIC): string {
  return String(publicKeyFromArea(publicArea).export({ type: 'spki', format: 'pem' }));
}

/**
 * Reads a `-----BEGIN PUBLIC KEY-----` (SubjectPublicKeyInfo) PEM into a
 * node:crypto public key. Private-key PEMs are refused, so a file meant to
 * be public never silently carries a secret.
 */
export function readPemPublicKey(pem: string | Uint8Array): KeyObject {
  const path = 'PEM';
  let text: string;
  if (typeof pem === 'string') text = pem;
  else if (pem instanceof Uint8Array) text = new TextDecoder('utf-8', { fatal: false }).decode(pem);
  else throw new ParseError('parse.value', 'expected a string or a Uint8Array', path, 0);
  const begin = text.indexOf('-----BEGIN ');
  if (begin < 0) throw new ParseError('parse.value', 'no PEM "-----BEGIN" line', path, 0);
  const label = /^-----BEGIN ([A-Z0-9 ]+)-----/.exec(text.slice(begin))?.[1];
  if (label !== 'PUBLIC KEY') throw new ParseError('parse.value', `PEM label "${label ?? '?'}", expected "PUBLIC KEY" (SubjectPublicKeyInfo)`, path, begin);
  try {
    return createPublicKey({ key: text, format: 'pem', type: 'spki' });
  } catch (cause) {
    const e = new ParseError('parse.value', `SubjectPublicKeyInfo rejected by node:crypto (${cause instanceof Error ? cause.message : String(cause)})`, path, begin);
    (e as { cause?: unknown }).cause = cause;
    throw e;
  }
}

// ---------------------------------------------------------------------------
// PCR values (tpm2_quote -o, tpm2_checkquote -f)

/**
 * PCR values for a quote: the selections (banks and PCRs, in the quote's
 * PCRselect order) and one digest per selected PCR, bank by bank, ascending
 * PCR index within a bank — the order in which a TPM digests them into
 * pcrDigest (Part 3 §18.4).
 */
export interface PcrValues {
  readonly selections: readonly TPMS_PCR_SELECTION[];
  readonly digests: readonly Uint8Array[];
}

/*
 * The C layout (tss2 types, x86-64 and every little-endian ABI tools run on):
 *   TPML_PCR_SELECTION: u32 count; 16 × TPMS_PCR_SELECTION { u16 hash; u8 sizeofSelect;
 *     u8 pcrSelect[4]; 1 pad byte } = 4 + 16 × 8 = 132 bytes
 *   u32 number of TPML_DIGESTs (tpm2_pcrs.count, written as u32)
 *   n × TPML_DIGEST: u32 count; 8 × TPM2B_DIGEST { u16 size; u8 buffer[64] } = 4 + 8 × 66 = 532 bytes
 * Integers little-endian (lib/pcr.c pcr_fwrite_serialized: htole16/htole32). Slots
 * beyond the counts are ignored, as tpm2_checkquote ignores them.
 */
const NUM_PCR_BANKS = 16; // TPM2_NUM_PCR_BANKS
const SELECTION_SLOT = 8;
const SELECTIONS_SIZE = 4 + NUM_PCR_BANKS * SELECTION_SLOT;
const DIGESTS_PER_LIST = 8; // TPML_DIGEST.digests[8]
const DIGEST_SLOT = 2 + 64; // TPM2B_DIGEST { size; buffer[sizeof(TPMU_HA)] }
const DIGEST_LIST_SIZE = 4 + DIGESTS_PER_LIST * DIGEST_SLOT;
const MAX_DIGEST_LISTS = 32; // tpm2_pcrs.pcr_values[TPM2_MAX_PCRS]

function indicesOf(sel: TPMS_PCR_SELECTION): number[] {
  const out: number[] = [];
  sel.pcrSelect.forEach((byte, i) => {
    for (let bit = 0; bit < 8; bit++) if (byte & (1 << bit)) out.push(i * 8 + bit);
  });
  return out;
}

/**
 * Reads a PCR-values file in the tools' "serialized" format (`tpm2_quote -o`,
 * the default `-F serialized`; `tpm2_checkquote -f`).
 * @throws ParseError: `parse.truncated`/`parse.trailing` when the length is not
 *   136 + 532 × lists, `parse.count` for counts beyond the C arrays or digests that
 *   do not match the selections, `parse.value` for an unknown bank, `parse.size`
 *   for a digest whose size is not its bank's.
 */
export function readPcrValuesFile(bytes: Uint8Array): PcrValues {
  const b = bytesArg(bytes, 'PcrValuesFile');
  const path = 'PcrValuesFile';
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const need = (end: number, what: string, at: number): void => {
    if (b.length < end) throw new ParseError('parse.truncated', `${what}: the file has ${b.length} byte(s), needs ${end}`, path, at);
  };
  need(SELECTIONS_SIZE + 4, 'selections and list count', 0);
  const count = view.getUint32(0, true);
  if (count > NUM_PCR_BANKS) throw new ParseError('parse.count', `${count} selections, at most ${NUM_PCR_BANKS}`, `${path}.pcrSelections`, 0);
  const selections: TPMS_PCR_SELECTION[] = [];
  for (let i = 0; i < count; i++) {
    const at = 4 + i * SELECTION_SLOT;
    const hash = view.getUint16(at, true);
    if (!isHashAlg(hash)) throw new ParseError('parse.value', `0x${hash.toString(16)} is not a hash algorithm`, `${path}.pcrSelections[${i}].hash`, at);
    const sizeofSelect = b[at + 2]!;
    if (sizeofSelect > LIMITS.PCR_SELECT_MAX) {
      throw new ParseError('parse.size', `sizeofSelect ${sizeofSelect}, at most ${LIMITS.PCR_SELECT_MAX}`, `${path}.pcrSelections[${i}].sizeofSelect`, at + 2);
    }
    selections.push({ hash: hash as TPMS_PCR_SELECTION['hash'], pcrSelect: b.slice(at + 3, at + 3 + sizeofSelect) });
  }
  const lists = view.getUint32(SELECTIONS_SIZE, true);
  if (lists > MAX_DIGEST_LISTS) throw new ParseError('parse.count', `${lists} digest lists, at most ${MAX_DIGEST_LISTS}`, `${path}.pcrs.count`, SELECTIONS_SIZE);
  const total = SELECTIONS_SIZE + 4 + lists * DIGEST_LIST_SIZE;
  need(total, `${lists} digest list(s)`, SELECTIONS_SIZE + 4);
  if (b.length > total) throw new ParseError('parse.trailing', `${b.length - total} byte(s) after ${lists} digest list(s)`, path, total);

  const digests: { value: Uint8Array; at: number }[] = [];
  for (let j = 0; j < lists; j++) {
    const at = SELECTIONS_SIZE + 4 + j * DIGEST_LIST_SIZE;
    const n = view.getUint32(at, true);
    if (n > DIGESTS_PER_LIST) throw new ParseError('parse.count', `${n} digests in one TPML_DIGEST, at most ${DIGESTS_PER_LIST}`, `${path}.pcrs[${j}].count`, at);
    for (let k = 0; k < n; k++) {
      const d = at + 4 + k * DIGEST_SLOT;
      const size = view.getUint16(d, true);
      if (size > 64) throw new ParseError('parse.size', `a digest of ${size} bytes, at most 64`, `${path}.pcrs[${j}].digests[${k}].size`, d);
      digests.push({ value: b.slice(d + 2, d + 2 + size), at: d });
    }
  }

  // tpm2_checkquote walks the digests in selection order across the lists; so does this.
  let next = 0;
  selections.forEach((sel, i) => {
    const want = digestSize(sel.hash);
    for (const pcr of indicesOf(sel)) {
      const d = digests[next++];
      if (d === undefined) throw new ParseError('parse.count', `the selections name more PCRs than the file has digests (${digests.length})`, `${path}.pcrs`, SELECTIONS_SIZE);
      if (d.value.length !== want) {
        throw new ParseError('parse.size', `PCR ${pcr} of selection ${i}: a ${d.value.length}-byte digest in a ${want}-byte bank`, `${path}.pcrs`, d.at);
      }
    }
  });
  if (next !== digests.length) throw new ParseError('parse.count', `${digests.length} digests for ${next} selected PCRs`, `${path}.pcrs`, SELECTIONS_SIZE);
  return { selections, digests: digests.map((d) => d.value) };
}

/**
 * Writes PCR values in the layout `tpm2_checkquote -f` reads: eight digests
 * per TPML_DIGEST, unused slots and padding zero.
 * @throws EncodeError for more than 16 selections, a sizeofSelect over 4, an
 *   unknown bank, or digests that do not match the selections in number or size.
 */
export function writePcrValuesFile(values: PcrValues): Uint8Array {
  const path = 'PcrValuesFile';
  const { selections, digests } = values;
  if (!Array.isArray(selections) || !Array.isArray(digests)) encodeArg(path, 'expected { selections, digests } arrays');
  if (selections.length > NUM_PCR_BANKS) encodeArg(path, `${selections.length} selections, at most ${NUM_PCR_BANKS}`);
  let expected = 0;
  selections.forEach((sel, i) => {
    if (!isHashAlg(sel.hash)) encodeArg(`${path}.selections[${i}]`, `0x${Number(sel.hash).toString(16)} is not a hash algorithm`);
    if (!(sel.pcrSelect instanceof Uint8Array) || sel.pcrSelect.length > LIMITS.PCR_SELECT_MAX) {
      encodeArg(`${path}.selections[${i}]`, `pcrSelect must be at most ${LIMITS.PCR_SELECT_MAX} bytes`);
    }
    const size = digestSize(sel.hash);
    for (const pcr of indicesOf(sel)) {
      const d = digests[expected++];
      if (!(d instanceof Uint8Array)) encodeArg(`${path}.digests`, `no digest for PCR ${pcr} of selection ${i}`);
      if (d.length !== size) encodeArg(`${path}.digests[${expected - 1}]`, `PCR ${pcr}: ${d.length} bytes in a ${size}-byte bank`);
    }
  });
  if (expected !== digests.length) encodeArg(`${path}.digests`, `${digests.length} digests for ${expected} selected PCRs`);
  const lists = Math.ceil(digests.length / DIGESTS_PER_LIST);
  if (lists > MAX_DIGEST_LISTS) encodeArg(`${path}.digests`, `${digests.length} digests need more than ${MAX_DIGEST_LISTS} lists`);

  const out = new Uint8Array(SELECTIONS_SIZE + 4 + lists * DIGEST_LIST_SIZE);
  const view = new DataView(out.buffer);
  view.setUint32(0, selections.length, true);
  selections.forEach((sel, i) => {
    const at = 4 + i * SELECTION_SLOT;
    view.setUint16(at, sel.hash, true);
    out[at + 2] = sel.pcrSelect.length;
    out.set(sel.pcrSelect, at + 3);
  });
  view.setUint32(SELECTIONS_SIZE, lists, true);
  digests.forEach((d, n) => {
    const list = SELECTIONS_SIZE + 4 + Math.floor(n / DIGESTS_PER_LIST) * DIGEST_LIST_SIZE;
    const k = n % DIGESTS_PER_LIST;
    view.setUint32(list, Math.min(DIGESTS_PER_LIST, digests.length - (n - k)), true);
    view.setUint16(list + 4 + k * DIGEST_SLOT, d.length, true);
    out.set(d, list + 4 + k * DIGEST_SLOT + 2);
  });
  return out;
}

/**
 * PcrValues for `selections` from readings keyed bank → PCR → value (what
 * the core's `readPcrs` returns).
 * @throws EncodeError when a selected PCR has no reading.
 */
export function pcrValuesFromReadings(selections: readonly TPMS_PCR_SELECTION[], readings: ReadonlyMap<number, ReadonlyMap<number, Uint8Array>>): PcrValues {
  const digests: Uint8Array[] = [];
  selections.forEach((sel, i) => {
    for (const pcr of indicesOf(sel)) {
      const v = readings.get(sel.hash)?.get(pcr);
      if (v === undefined) encodeArg(`selections[${i}]`, `no value for PCR ${pcr} of bank 0x${Number(sel.hash).toString(16)}`);
      digests.push(v);
    }
  });
  return { selections: selections.map((s) => ({ hash: s.hash, pcrSelect: s.pcrSelect.slice() })), digests };
}

/** The values of a PcrValues keyed bank → PCR → value (a later selection of the same PCR wins). */
export function pcrReadings(values: PcrValues): Map<number, Map<number, Uint8Array>> {
  const out = new Map<number, Map<number, Uint8Array>>();
  let next = 0;
  for (const sel of values.selections) {
    const bank = out.get(sel.hash) ?? new Map<number, Uint8Array>();
    out.set(sel.hash, bank);
    for (const pcr of indicesOf(sel)) {
      const d = values.digests[next++];
      if (d !== undefined) bank.set(pcr, d);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Credential blobs (tpm2_makecredential -o, tpm2_activatecredential -i)

/** MakeCredential's output as the tools store it. */
export interface CredentialFile {
  /** TPM2B_ID_OBJECT content (Part 2 §12.4.3): integrity HMAC and encrypted credential. */
  readonly credentialBlob: Uint8Array;
  /** TPM2B_ENCRYPTED_SECRET content (Part 2 §11.4.33): the seed encrypted to the EK. */
  readonly secret: Uint8Array;
}

/** Reads a credential file: header version 1, TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET (tools/tpm2_makecredential.c). */
export function readCredentialFile(bytes: Uint8Array): CredentialFile {
  return readAll(bytes, 'CredentialFile', (r) => {
    readHeader(r, [1]);
    const credentialBlob = r.within('credentialBlob', () => TPM2B_ID_OBJECT.read(r));
    const secret = r.within('secret', () => TPM2B_ENCRYPTED_SECRET.read(r));
    return { credentialBlob, secret };
  });
}

/** Writes the file `tpm2_activatecredential -i` reads. */
export function writeCredentialFile(file: CredentialFile): Uint8Array {
  const w = new Writer(512);
  return w.within('CredentialFile', () => {
    writeHeader(w, 1);
    w.within('credentialBlob', () => TPM2B_ID_OBJECT.write(w, file.credentialBlob));
    w.within('secret', () => TPM2B_ENCRYPTED_SECRET.write(w, file.secret));
    return w.finish();
  });
}

// ---------------------------------------------------------------------------
// Context files (-c key.ctx) and session files (-S session.ctx)

/**
 * What ESAPI (tpm2-tss src/tss2-esys/esys_types.h IESYS_RESOURCE) keeps
 * about a saved object so it can be used again without asking the TPM: the
 * handle it had, its Name, and, by type, its public area.
 */
export type EsysResource =
  | { readonly type: 'key'; readonly public: TPMT_PUBLIC }
  | { readonly type: 'nv'; readonly public: TPMS_NV_PUBLIC }
  /** An IESYS_SESSION (it holds the session key): kept as the bytes ESAPI wrote. */
  | { readonly type: 'session'; readonly data: Uint8Array }
  | { readonly type: 'none' };

export interface EsysMetadata {
  /** The TPM handle the object had when it was saved. */
  readonly handle: number;
  /** The Name ESAPI recorded; not checked here: compare with objectName(public) before trusting it. */
  readonly name: Uint8Array;
  readonly resource: EsysResource;
}

/** A context file: the TPMS_CONTEXT to give ContextLoad, and ESAPI's metadata when the file has it. */
export interface ContextFile {
  /** `contextBlob` is the TPM's own blob, unwrapped from ESAPI's IESYS_CONTEXT_DATA. */
  readonly context: TPMS_CONTEXT;
  /** Present in files written through ESAPI (tpm2-tools 4.0 and later); absent for a bare TPM blob. */
  readonly metadata: EsysMetadata | undefined;
}

// IESYSC_RESOURCE_TYPE (esys_types.h).
const RSRC = { none: 0, key: 1, nv: 2, session: 3 } as const;
const HIERARCHY = orNull(TPMI_RH_HIERARCHY);

/*
 * ESAPI stores its metadata inside contextBlob (Esys_ContextSave): IESYS_CONTEXT_DATA
 *   { u32 reserved = 0; TPM2B_CONTEXT_DATA tpmContext; IESYS_METADATA { u16 size (ESAPI writes 0);
 *     IESYS_RESOURCE { u32 handle; TPM2B_NAME name; u32 rsrcType; misc by rsrcType } } }
 * A TPM's own blob starts with the TPM2B size of its integrity digest, never with four zero bytes.
 */
function readContextBody(r: Reader): ContextFile {
  const hierarchy = r.within('hierarchy', () => HIERARCHY.read(r));
  const savedHandle = r.within('savedHandle', () => TPMI_DH_SAVED.read(r));
  const sequence = r.within('sequence', () => r.u64());
  const context = (contextBlob: Uint8Array): TPMS_CONTEXT => ({ sequence, savedHandle, hierarchy, contextBlob });
  // Read in place, so errors inside ESAPI's part carry the file's path and offsets.
  return r.within('contextBlob', () => {
    const at = r.offset;
    const size = r.u16();
    if (size > SIZEOF_TPMS_CONTEXT_DATA) r.fail('parse.size', `size ${size} exceeds ${SIZEOF_TPMS_CONTEXT_DATA}`, at);
    return r.window(size, (): ContextFile => {
      const o = r.offset;
      const b = r.bytes;
      if (size < 4 || b[o] !== 0 || b[o + 1] !== 0 || b[o + 2] !== 0 || b[o + 3] !== 0) return { context: context(r.take(size)), metadata: undefined };
      return r.within('IESYS_CONTEXT_DATA', () => {
        r.within('reserved', () => r.u32());
        const tpmContext = r.within('tpmContext', () => TPM2B_CONTEXT_DATA.read(r));
        r.within('esysMetadata.size', () => r.u16());
        const handle = r.within('handle', () => r.u32());
        const name = r.within('name', () => TPM2B_NAME.read(r));
        const typeAt = r.offset;
        const rsrcType = r.within('rsrcType', () => r.u32());
        let resource: EsysResource;
        if (rsrcType === RSRC.key) resource = { type: 'key', public: r.within('misc', () => TPM2B_PUBLIC.read(r)) };
        else if (rsrcType === RSRC.nv) resource = { type: 'nv', public: r.within('misc', () => TPM2B_NV_PUBLIC.read(r)) };
        else if (rsrcType === RSRC.session) resource = { type: 'session', data: r.take(r.remaining) };
        else if (rsrcType === RSRC.none) resource = { type: 'none' };
        else resource = r.fail('parse.selector', `rsrcType ${rsrcType} is not an IESYSC_RESOURCE_TYPE`, typeAt);
        if (r.remaining > 0) r.fail('parse.trailing', `${r.remaining} byte(s) after ESAPI's metadata`);
        return { context: context(tpmContext), metadata: { handle, name, resource } };
      });
    });
  });
}

/**
 * Reads a `-c` context file (tpm2-tools lib/files.c files_load_tpm_context):
 * header version 1, hierarchy, savedHandle, sequence, contextBlob; inside the
 * blob, ESAPI's metadata when present. Errors inside the blob name
 * `ContextFile.contextBlob.IESYS_CONTEXT_DATA…`, with offsets in the file.
 */
export function readContextFile(bytes: Uint8Array): ContextFile {
  return readAll(bytes, 'ContextFile', (r) => {
    readHeader(r, [1]);
    return readContextBody(r);
  });
}

/**
 * Writes a `-c` context file that tpm2-tools can use (ESAPI's ContextLoad
 * requires the metadata). For a key, pass `{ handle, name: objectName(public),
 * resource: { type: 'key', public } }`: ESAPI uses the Name for its sessions.
 */
export function writeContextFile(file: { readonly context: TPMS_CONTEXT; readonly metadata: EsysMetadata }): Uint8Array {
  const { context, metadata } = file;
  const w = new Writer(1024);
  return w.within('ContextFile', () => {
    writeHeader(w, 1);
    w.within('hierarchy', () => HIERARCHY.write(w, context.hierarchy));
    w.within('savedHandle', () => TPMI_DH_SAVED.write(w, context.savedHandle));
    w.within('sequence', () => {
      if (typeof context.sequence !== 'bigint' || context.sequence < 0n || context.sequence > 0xffffffffffffffffn) w.fail('encode.value', 'sequence must be a UINT64 bigint');
      w.u64(context.sequence);
    });
    const inner = new Writer(1024);
    inner.within('IESYS_CONTEXT_DATA', () => {
      inner.u32(0);
      inner.within('tpmContext', () => TPM2B_CONTEXT_DATA.write(inner, context.contextBlob));
      inner.u16(0); // IESYS_METADATA.size: ESAPI writes 0 and never reads it
      inner.within('handle', () => {
        if (!Number.isInteger(metadata.handle) || metadata.handle < 0 || metadata.handle > 0xffffffff) inner.fail('encode.value', 'handle must be a UINT32');
        inner.u32(metadata.handle);
      });
      inner.within('name', () => TPM2B_NAME.write(inner, metadata.name));
      const res = metadata.resource;
      switch (res.type) {
        case 'key':
          inner.u32(RSRC.key);
          inner.within('misc', () => TPM2B_PUBLIC.write(inner, res.public));
          break;
        case 'nv':
          inner.u32(RSRC.nv);
          inner.within('misc', () => TPM2B_NV_PUBLIC.write(inner, res.public));
          break;
        case 'session':
          inner.u32(RSRC.session);
          if (!(res.data instanceof Uint8Array)) inner.fail('encode.value', 'session data must be a Uint8Array');
          inner.bytes(res.data);
          break;
        case 'none':
          inner.u32(RSRC.none);
          break;
        default:
          inner.fail('encode.selector', `resource type ${String((res as { type: unknown }).type)}`);
      }
    });
    w.within('contextBlob', () => TPM2B_CONTEXT_DATA.write(w, inner.finish()));
    return w.finish();
  });
}

/** A `-S` session file of tpm2_startauthsession (lib/tpm2_session.c, SESSION_VERSION 2). */
export interface SessionFile {
  /** TPM_SE: 0x00 HMAC, 0x01 policy, 0x03 trial. */
  readonly sessionType: number;
  /** The session's authHash. */
  readonly authHash: number;
  /** The saved session; its metadata is ESAPI's session state, kept as bytes. */
  readonly context: ContextFile;
}

/** Reads a session file: header version 2, u8 session type, u16 authHash, then a complete context file. */
export function readSessionFile(bytes: Uint8Array): SessionFile {
  return readAll(bytes, 'SessionFile', (r) => {
    readHeader(r, [2]);
    const sessionType = r.within('sessionType', () => {
      const at = r.offset;
      const t = r.u8();
      if (t !== 0x00 && t !== 0x01 && t !== 0x03) r.fail('parse.value', `session type 0x${t.toString(16)} is not a TPM_SE`, at);
      return t;
    });
    const authHash = r.within('authHash', () => {
      const at = r.offset;
      const h = r.u16();
      if (!isHashAlg(h)) r.fail('parse.value', `authHash 0x${h.toString(16)} is not a hash algorithm`, at);
      return h;
    });
    const context = r.within('context', () => {
      readHeader(r, [1]);
      return readContextBody(r);
    });
    return { sessionType, authHash, context };
  });
}
