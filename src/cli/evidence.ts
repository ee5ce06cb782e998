/**
 * Evidence files for `trustroot attest`: what people hold today, mostly made
 * by tpm2-tools, read into the shapes src/attest verifies. Pure functions over
 * bytes and text (the command reads the files); every one throws only typed
 * errors — ParseError for TPM structures (src/client/files.ts and the core's
 * codecs), EvidenceError for everything else (`evidence.file` for a file in
 * no format read here, `evidence.argument` for a command-line value) — and
 * bounds what it reads before it allocates.
 *
 * | option | accepted |
 * |---|---|
 * | `--ak` | TPM2B_PUBLIC or TPMT_PUBLIC (`tpm2_createak -u`), or a SubjectPublicKeyInfo PEM (`tpm2_readpublic -f pem`) |
 * | `--ek` | TPM2B_PUBLIC or TPMT_PUBLIC (`tpm2_createek -u`) |
 * | `--quote` | TPMS_ATTEST as signed (`tpm2_quote -m`), any magic: the verdict, not the reader, judges it |
 * | `--sig` | TPMT_SIGNATURE (`tpm2_quote -s`, `tpm2_sign -o`) |
 * | `--pcrs` | `tpm2_quote -o` (tpm2-tools' serialized layout), or JSON `{"sha256": {"0": "hex", …}}` |
 * | `--nonce` | hex, optionally `0x`-prefixed |
 * | `--previous` | JSON `{"clock": n, "resetCount": n, "restartCount": n, "safe": true|false}` |
 */
import type { KeyObject } from 'node:crypto';
import { decodeAkPublic } from '../attest/ak.js';
import { clockStateFromJson, type ClockState } from '../attest/clock.js';
import { decodeAttest, decodeSignature, type PcrValues, type SignedAttest } from '../attest/quote.js';
import { pcrReadings, readPcrValuesFile, readPemPublicKey } from '../client/files.js';
import { TPM_ALG } from '../tpm/constants.js';
import { digestSize, isHashAlg } from '../tpm/crypto/hash.js';
import { EvidenceError } from '../tpm/errors.js';
import { LIMITS } from '../tpm/limits.js';
import type { TPMS_PCR_SELECTION, TPMT_PUBLIC, TPMT_SIGNATURE } from '../tpm/types/index.js';

/** Larger than any JSON evidence file read here: 24 PCRs in 8 banks of SHA-512 are about 30 KiB. */
export const MAX_JSON_BYTES = 1 << 20;
/** The highest PCR index a PCR selection can name (PCR_SELECT_MAX bytes of bitmap). */
export const MAX_PCR_INDEX = LIMITS.PCR_SELECT_MAX * 8 - 1;

/** The AK as given: a public area (every AK check can be made) or a bare key (attribute checks not performed). */
export type AkFile = { readonly kind: 'public'; readonly publicArea: TPMT_PUBLIC } | { readonly kind: 'pem'; readonly key: KeyObject };

/** PCR values for verifyQuote, and the selection they came labelled with (a `tpm2_quote -o` file carries one; JSON does not). */
export interface PcrFile {
  readonly format: 'tpm2-tools' | 'json';
  readonly values: PcrValues;
  readonly labelled?: readonly TPMS_PCR_SELECTION[];
}

const BEGIN = new TextEncoder().encode('-----BEGIN ');

function includes(bytes: Uint8Array, needle: Uint8Array, within: number): boolean {
  const end = Math.min(bytes.length, within) - needle.length;
  outer: for (let i = 0; i <= end; i++) {
    for (let j = 0; j < needle.length; j++) if (bytes[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

/** The first byte that is not JSON whitespace, or -1. */
function firstNonSpace(bytes: Uint8Array): number {
  for (const b of bytes) if (b !== 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d) return b;
  return -1;
}

/**
 * An AK (or any signing key) file: PEM text when it holds a `-----BEGIN `
 * line in its first 4 KiB, else a TPM2B_PUBLIC / TPMT_PUBLIC.
 * @throws ParseError for a public area that does not decode or a PEM that is not a SubjectPublicKeyInfo.
 */
export function readAkFile(bytes: Uint8Array): AkFile {
  if (includes(bytes, BEGIN, 4096)) return { kind: 'pem', key: readPemPublicKey(bytes) };
  return { kind: 'public', publicArea: decodeAkPublic(bytes) };
}

/**
 * An EK public area (TPM2B_PUBLIC or TPMT_PUBLIC), to compute the AK's
 * Qualified Name under it. A PEM EK has no Name, so it is refused.
 * @throws ParseError; EvidenceError `evidence.file` for a PEM.
 */
export function readEkFile(bytes: Uint8Array): TPMT_PUBLIC {
  if (includes(bytes, BEGIN, 4096)) {
    throw new EvidenceError('evidence.file', 'a PEM EK has no TPM Name: give the TPM2B_PUBLIC (tpm2_createek -u, tpm2_readpublic -o)');
  }
  return decodeAkPublic(bytes);
}

/**
 * The signed TPMS_ATTEST (`tpm2_quote -m`). Decoded only to know it is one —
 * with any magic, so that a forged magic reaches the verdict — and kept as
 * the bytes, which are what the signature covers.
 * @throws ParseError.
 */
export function readQuoteFile(bytes: Uint8Array): { readonly bytes: Uint8Array; readonly attest: SignedAttest } {
  return { bytes, attest: decodeAttest(bytes) };
}

/** A TPMT_SIGNATURE (`tpm2_quote -s`, `tpm2_sign -o`, tss format). @throws ParseError. */
export function readSignatureBytes(bytes: Uint8Array): TPMT_SIGNATURE {
  return decodeSignature(bytes);
}

/**
 * A nonce given as hex on the command line (what `tpm2_quote -q` takes).
 * @throws EvidenceError `evidence.argument` for anything but 1..64 bytes of hex.
 */
export function parseNonceHex(text: string): Uint8Array {
  const s = typeof text === 'string' ? text.trim().replace(/^0x/i, '') : '';
  // qualifyingData is a TPM2B_DATA: at most sizeof(TPMT_HA) = 66 bytes (Part 2 §10.4.3); 64 is a whole SHA-512.
  if (s.length === 0 || s.length > 128 || s.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(s)) {
    throw new EvidenceError('evidence.argument', `nonce: expected 1 to 64 bytes as hex digits (what tpm2_quote -q takes), got ${describeText(text)}`);
  }
  return new Uint8Array(Buffer.from(s, 'hex'));
}

function describeText(v: unknown): string {
  if (typeof v !== 'string') return typeof v;
  return v.length > 40 ? `"${v.slice(0, 40)}…" (${v.length} characters)` : `"${v}"`;
}

/** Bank names as tpm2-tools and the kernel write them. */
const BANKS: ReadonlyMap<string, number> = new Map<string, number>([
  ['sha1', TPM_ALG.SHA1],
  ['sha256', TPM_ALG.SHA256],
  ['sha384', TPM_ALG.SHA384],
  ['sha512', TPM_ALG.SHA512],
  ['sm3_256', TPM_ALG.SM3_256],
  ['sha3_256', TPM_ALG.SHA3_256],
  ['sha3_384', TPM_ALG.SHA3_384],
  ['sha3_512', TPM_ALG.SHA3_512],
]);

/**
 * A bank by name (`sha256`, `SHA-256`, `sm3_256`) or TPM_ALG_ID (`0x000b`, `11`).
 * @returns undefined for anything that names no hash algorithm.
 */
export function bankByName(name: string): number | undefined {
  if (typeof name !== 'string' || name.length > 16) return undefined;
  const n = name.trim().toLowerCase();
  const byName = BANKS.get(n) ?? BANKS.get(n.replace(/-/g, '').replace(/^sm3256$/, 'sm3_256').replace(/^sha3(\d{3})$/, 'sha3_$1'));
  if (byName !== undefined) return byName;
  if (!/^(0x[0-9a-f]{1,4}|[0-9]{1,5})$/.test(n)) return undefined;
  const id = Number(n);
  return isHashAlg(id) ? id : undefined;
}

function jsonError(message: string): EvidenceError {
  return new EvidenceError('evidence.file', message);
}

/** JSON text from a file: bounded, UTF-8, parsed. @throws EvidenceError `evidence.file`. */
export function parseJsonFile(bytes: Uint8Array | string, what: string): unknown {
  const size = typeof bytes === 'string' ? bytes.length : bytes.length;
  if (size > MAX_JSON_BYTES) throw jsonError(`${what}: ${size} bytes is larger than the ${MAX_JSON_BYTES} read here`);
  let text: string;
  if (typeof bytes === 'string') text = bytes;
  else {
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      throw jsonError(`${what}: not UTF-8 text`);
    }
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw jsonError(`${what}: not JSON (${e instanceof Error ? e.message : String(e)})`);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * PCR values as JSON: `{"sha256": {"0": "<hex>", "7": "<hex>"}, "sha1": {…}}`
 * (bank by name or TPM_ALG_ID; index in decimal without leading zeros, 0..31;
 * each value exactly its bank's digest size). JSON carries no selection of
 * its own: verifyQuote judges the indices against the signed one.
 * @throws EvidenceError `evidence.file`.
 */
export function parsePcrJson(bytes: Uint8Array | string): PcrValues {
  const doc = parseJsonFile(bytes, 'PCR values');
  if (!isObject(doc)) throw jsonError('PCR values: expected a JSON object {"sha256": {"0": "<hex>", …}, …}');
  const out = new Map<number, Map<number, Uint8Array>>();
  const banks = Object.entries(doc);
  if (banks.length === 0) throw jsonError('PCR values: no bank');
  if (banks.length > LIMITS.HASH_COUNT) throw jsonError(`PCR values: ${banks.length} banks, at most ${LIMITS.HASH_COUNT}`);
  for (const [name, pcrs] of banks) {
    const alg = bankByName(name);
    if (alg === undefined) throw jsonError(`PCR values: "${name.slice(0, 32)}" is not a PCR bank (sha1, sha256, sha384, sha512, …)`);
    if (out.has(alg)) throw jsonError(`PCR values: bank "${name.slice(0, 32)}" given twice`);
    if (!isObject(pcrs)) throw jsonError(`PCR values: bank "${name}" must map PCR indices to hex values`);
    const size = digestSize(alg);
    const bank = new Map<number, Uint8Array>();
    const entries = Object.entries(pcrs);
    if (entries.length > MAX_PCR_INDEX + 1) throw jsonError(`PCR values: bank "${name}" has ${entries.length} entries, at most ${MAX_PCR_INDEX + 1}`);
    for (const [key, value] of entries) {
      // One spelling per index: "07" and "7" must not both be PCR 7.
      if (!/^(0|[1-9][0-9]?)$/.test(key) || Number(key) > MAX_PCR_INDEX) throw jsonError(`PCR values: bank "${name}": "${key.slice(0, 16)}" is not a PCR index 0..${MAX_PCR_INDEX}`);
      if (typeof value !== 'string') throw jsonError(`PCR values: ${name} PCR ${key}: expected a hex string`);
      const hex = value.trim().replace(/^0x/i, '');
      if (hex.length !== 2 * size || !/^[0-9a-fA-F]*$/.test(hex)) {
        throw jsonError(`PCR values: ${name} PCR ${key}: expected ${size} bytes of hex (${2 * size} digits), got ${describeText(value)}`);
      }
      bank.set(Number(key), new Uint8Array(Buffer.from(hex, 'hex')));
    }
    out.set(alg, bank);
  }
  return out;
}

/**
 * A PCR values file: JSON when its first non-blank byte is `{`, else the
 * layout `tpm2_quote -o` writes (its selections become the values' labels,
 * which verifyQuote requires to be the signed selection: CVE-2024-29039).
 * @throws ParseError for a tpm2-tools file that does not read; EvidenceError `evidence.file` for bad JSON.
 */
export function readPcrFile(bytes: Uint8Array): PcrFile {
  if (firstNonSpace(bytes) === 0x7b) return { format: 'json', values: parsePcrJson(bytes) };
  const file = readPcrValuesFile(bytes);
  // The same PCR twice in one file would let a later value hide an earlier one: refuse it.
  const seen = new Set<string>();
  file.selections.forEach((sel, i) => {
    sel.pcrSelect.forEach((byte, at) => {
      for (let bit = 0; bit < 8; bit++) {
        if ((byte & (1 << bit)) === 0) continue;
        const key = `${sel.hash}:${at * 8 + bit}`;
        if (seen.has(key)) throw new EvidenceError('evidence.file', `PCR values: selection ${i} names PCR ${at * 8 + bit} of bank 0x${sel.hash.toString(16)} again`);
        seen.add(key);
      }
    });
  });
  return { format: 'tpm2-tools', values: pcrReadings(file), labelled: file.selections };
}

/**
 * The `--previous` clock state: the clockInfo of the device's last accepted
 * quote, as `{"clock": n, "resetCount": n, "restartCount": n, "safe": true|false}`
 * (what `verify-quote --json` prints as `clock`).
 * @throws EvidenceError `evidence.file`.
 */
export function readClockFile(bytes: Uint8Array | string): ClockState {
  return clockStateFromJson(parseJsonFile(bytes, 'clock state'));
}
