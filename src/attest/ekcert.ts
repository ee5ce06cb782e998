/**
 * EK certificates: lenient X.509 parsing and the EK-specific checks (TCG EK
 * Credential Profile for TPM Family 2.0, §3.2 "EK Certificate"; RFC 5280).
 *
 * Real EK certificates are often not strict DER: SET OF members out of order
 * (Nuvoton), DEFAULT values encoded explicitly, RSAES-OAEP SubjectPublicKeyInfo
 * from TPM 1.2 days, NV padding after the certificate. They are read here
 * leniently and every deviation is reported as a quirk. Nothing is ever
 * re-encoded: the signature is checked (chain.ts) over the TBSCertificate
 * bytes exactly as they came.
 *
 * The outer structure, byte ranges, SubjectPublicKeyInfo, times and quirks
 * are read by a small bounded TLV reader of our own (it keeps the original
 * bytes); names and extension values are decoded with @peculiar/asn1-x509.
 * Every failure is an EvidenceError `evidence.certificate` with the offset.
 */
import { createHash } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  AuthorityKeyIdentifier,
  BasicConstraints,
  ExtendedKeyUsage,
  Name,
  SubjectDirectoryAttributes,
  SubjectKeyIdentifier,
} from '@peculiar/asn1-x509';
import { TPM_ALG, TPM_ECC } from '../tpm/constants.js';
import type { TpmDescription } from '../tpm/description.js';
import { EvidenceError } from '../tpm/errors.js';
import type { TPMT_PUBLIC } from '../tpm/types/index.js';
import { fail, notPerformed, pass, warn, type Check } from './verdict.js';
import { equalBytes } from '../tpm/bytes.js';

// ---------------------------------------------------------------------------
// Object identifiers

/** TCG OIDs (EK Credential Profile §3.2.8–3.2.11; TCG OID registry). */
export const TCG_OID = {
  tpmManufacturer: '2.23.133.2.1',
  tpmModel: '2.23.133.2.2',
  tpmVersion: '2.23.133.2.3',
  tpmSpecification: '2.23.133.2.16',
  ekCertificate: '2.23.133.8.1',
} as const;

const OID = {
  subjectDirectoryAttributes: '2.5.29.9',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  issuerAltName: '2.5.29.18',
  basicConstraints: '2.5.29.19',
  crlDistributionPoints: '2.5.29.31',
  certificatePolicies: '2.5.29.32',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  anyExtendedKeyUsage: '2.5.29.37.0',
  authorityInfoAccess: '1.3.6.1.5.5.7.1.1',
  rsaEncryption: '1.2.840.113549.1.1.1',
  rsaesOaep: '1.2.840.113549.1.1.7',
  rsassaPss: '1.2.840.113549.1.1.10',
  ecPublicKey: '1.2.840.10045.2.1',
} as const;

/**
 * Extensions this verifier understands (RFC 5280 §4.2). A critical extension
 * outside this list makes the certificate unusable (§4.2: "MUST reject").
 * Certificate policies are recognised but not enforced (no policy constraints
 * are processed, so the valid-policy tree never decides).
 */
const KNOWN_EXTENSIONS: ReadonlySet<string> = new Set([
  OID.subjectDirectoryAttributes,
  OID.subjectKeyIdentifier,
  OID.keyUsage,
  OID.subjectAltName,
  OID.issuerAltName,
  OID.basicConstraints,
  OID.crlDistributionPoints,
  OID.certificatePolicies,
  OID.authorityKeyIdentifier,
  OID.extKeyUsage,
  OID.authorityInfoAccess,
]);

const ATTRIBUTE_NAMES: Readonly<Record<string, string>> = {
  '2.5.4.3': 'CN',
  '2.5.4.5': 'serialNumber',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '0.9.2342.19200300.100.1.25': 'DC',
  '1.2.840.113549.1.9.1': 'emailAddress',
  [TCG_OID.tpmManufacturer]: 'tpmManufacturer',
  [TCG_OID.tpmModel]: 'tpmModel',
  [TCG_OID.tpmVersion]: 'tpmVersion',
};

/** Curves an EK may use, by their SEC 2 / RFC 5480 OIDs. */
const CURVE_BY_OID: Readonly<Record<string, { curveID: number; size: number; name: string }>> = {
  '1.2.840.10045.3.1.1': { curveID: TPM_ECC.NIST_P192, size: 24, name: 'P-192' },
  '1.3.132.0.33': { curveID: TPM_ECC.NIST_P224, size: 28, name: 'P-224' },
  '1.2.840.10045.3.1.7': { curveID: TPM_ECC.NIST_P256, size: 32, name: 'P-256' },
  '1.3.132.0.34': { curveID: TPM_ECC.NIST_P384, size: 48, name: 'P-384' },
  '1.3.132.0.35': { curveID: TPM_ECC.NIST_P521, size: 66, name: 'P-521' },
  '1.2.156.10197.1.301': { curveID: TPM_ECC.SM2_P256, size: 32, name: 'SM2' },
};

// ---------------------------------------------------------------------------
// Public types

/** A deviation from DER / RFC 5280 / the EK profile that was tolerated. */
export interface CertificateQuirk {
  /** Stable code, e.g. `der.set-order`, `der.trailing-data`, `x509.rsaes-oaep-key`. */
  readonly code: string;
  readonly detail: string;
  /** Offset in the certificate's bytes, when the quirk sits at one place. */
  readonly offset?: number;
}

export interface NameAttribute {
  /** The attribute type's OID. */
  readonly type: string;
  /** Short name (CN, O, C, tpmManufacturer, …) when known. */
  readonly name?: string;
  /** The value as text (strings decoded; other types as hex). */
  readonly value: string;
}

export interface DistinguishedName {
  /** The Name exactly as encoded in the certificate. */
  readonly der: Uint8Array;
  /** RDNs in encoded order; each RDN's attributes in encoded order. */
  readonly rdns: readonly (readonly NameAttribute[])[];
  /** One line for people, RFC 4514 style but in encoded order: `CN=swtpm-localca`. */
  readonly text: string;
}

export interface AlgorithmIdentifier {
  readonly oid: string;
  /** The parameters' DER (absent when the AlgorithmIdentifier has none; `0500` for NULL). */
  readonly parameters?: Uint8Array;
}

export type CertificatePublicKey =
  | {
      readonly kind: 'rsa';
      /** rsaEncryption, RSAES-OAEP (TPM 1.2 era EK certificates) or RSASSA-PSS. */
      readonly algorithm: string;
      /** The modulus, unsigned big-endian without leading zeros. */
      readonly modulus: Uint8Array;
      readonly exponent: bigint;
      readonly bits: number;
    }
  | {
      readonly kind: 'ecc';
      readonly algorithm: string;
      readonly curveOid: string;
      /** The TPM_ECC_CURVE, when the curve is one a TPM names. */
      readonly curveID?: number;
      /** The point as encoded (04 ‖ x ‖ y when uncompressed). */
      readonly point: Uint8Array;
      /** Coordinates of an uncompressed point on a known curve. */
      readonly x?: Uint8Array;
      readonly y?: Uint8Array;
    }
  | { readonly kind: 'other'; readonly algorithm: string };

export interface CertificateExtension {
  readonly oid: string;
  readonly critical: boolean;
  /** The extnValue's content (the extension's own DER). */
  readonly value: Uint8Array;
}

export type KeyUsageName =
  | 'digitalSignature'
  | 'nonRepudiation'
  | 'keyEncipherment'
  | 'dataEncipherment'
  | 'keyAgreement'
  | 'keyCertSign'
  | 'cRLSign'
  | 'encipherOnly'
  | 'decipherOnly';

const KEY_USAGE_BITS: readonly KeyUsageName[] = [
  'digitalSignature',
  'nonRepudiation',
  'keyEncipherment',
  'dataEncipherment',
  'keyAgreement',
  'keyCertSign',
  'cRLSign',
  'encipherOnly',
  'decipherOnly',
];

/** The TPM attributes of the SAN's directoryName (EK Credential Profile §3.2.9). */
export interface TpmAttributes {
  /** tpmManufacturer as written, e.g. `id:4E544300`. */
  readonly manufacturer?: string;
  /** Its value when it has the profile's `id:` + hex form (the TPM_PT_MANUFACTURER value). */
  readonly manufacturerId?: number;
  /** That value as the four-character vendor ID (`NTC`, `IFX`), when printable. */
  readonly vendorId?: string;
  readonly model?: string;
  /** tpmVersion as written, e.g. `id:00070002`. */
  readonly version?: string;
  /** Its value when it has the `id:` + hex form (FIRMWARE_VERSION_1 by convention). */
  readonly versionId?: number;
}

/** TPMSpecification from subjectDirectoryAttributes (§3.2.11). */
export interface TpmSpecification {
  readonly family: string;
  readonly level: number;
  readonly revision: number;
}

/** An X.509 certificate as this verifier reads it. */
export interface ParsedCertificate {
  /** The certificate's bytes (without PEM armour or NV padding). */
  readonly der: Uint8Array;
  /** The TBSCertificate as encoded: what the issuer signed. */
  readonly tbs: Uint8Array;
  /** SHA-256 of `der`, hex. */
  readonly fingerprint: string;
  readonly version: number;
  /** The serial number's INTEGER content as encoded (two's complement), hex. */
  readonly serialNumber: string;
  /** The outer signatureAlgorithm. */
  readonly signatureAlgorithm: AlgorithmIdentifier;
  /** The TBSCertificate's own copy, which must equal the outer one (RFC 5280 §4.1.1.2). */
  readonly tbsSignatureAlgorithm: AlgorithmIdentifier;
  /** The signature BIT STRING's bits (without the unused-bits octet). */
  readonly signature: Uint8Array;
  readonly issuer: DistinguishedName;
  readonly subject: DistinguishedName;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** The SubjectPublicKeyInfo as encoded. */
  readonly spki: Uint8Array;
  readonly publicKey: CertificatePublicKey;
  readonly extensions: readonly CertificateExtension[];
  readonly basicConstraints?: { readonly ca: boolean; readonly pathLength?: number; readonly critical: boolean };
  readonly keyUsage?: readonly KeyUsageName[];
  readonly extendedKeyUsage?: readonly string[];
  readonly subjectKeyId?: Uint8Array;
  readonly authorityKeyId?: Uint8Array;
  /** SAN directoryNames (EK certificates carry the TPM attributes in one). */
  readonly subjectAltNames?: { readonly critical: boolean; readonly directoryNames: readonly DistinguishedName[]; readonly other: readonly string[] };
  readonly tpm?: TpmAttributes;
  readonly tpmSpecification?: TpmSpecification;
  /** Critical extensions not in the list this verifier understands. */
  readonly unknownCriticalExtensions: readonly string[];
  /** Subject and issuer are the same name. */
  readonly selfIssued: boolean;
  readonly quirks: readonly CertificateQuirk[];
}

// ---------------------------------------------------------------------------
// A bounded TLV reader

/** More than this is no certificate an NV Index or a CA bundle holds. */
const MAX_CERTIFICATE_BYTES = 64 * 1024;
/** PEM bundles: total characters and certificates. */
const MAX_BUNDLE_CHARS = 8 * 1024 * 1024;
const MAX_BUNDLE_CERTIFICATES = 1000;
/** X.509 nests about 10 deep; 32 leaves room and stops stack exhaustion. */
const MAX_DEPTH = 32;

interface Tlv {
  /** Identifier octet (class, constructed bit and a low tag number; 0x1f for high tag numbers). */
  readonly tag: number;
  readonly constructed: boolean;
  readonly start: number;
  readonly contentStart: number;
  /** End of the content (before the end-of-contents octets of an indefinite length). */
  readonly contentEnd: number;
  /** End of the whole element. */
  readonly end: number;
  readonly indefinite: boolean;
  /** The length was not in its shortest form (BER, not DER). */
  readonly longLength: boolean;
}

function certError(message: string, offset: number, cause?: unknown): EvidenceError {
  return new EvidenceError('evidence.certificate', message, cause === undefined ? { offset } : { offset, cause });
}

const TAG_NAMES: Readonly<Record<number, string>> = {
  0x01: 'BOOLEAN',
  0x02: 'INTEGER',
  0x03: 'BIT STRING',
  0x04: 'OCTET STRING',
  0x05: 'NULL',
  0x06: 'OBJECT IDENTIFIER',
  0x0c: 'UTF8String',
  0x13: 'PrintableString',
  0x16: 'IA5String',
  0x17: 'UTCTime',
  0x18: 'GeneralizedTime',
  0x30: 'SEQUENCE',
  0x31: 'SET',
};
function tagName(tag: number): string {
  return TAG_NAMES[tag] ?? `tag 0x${tag.toString(16).padStart(2, '0')}`;
}

/** Reads one element at `offset` that must end by `limit`. */
function readTlv(bytes: Uint8Array, offset: number, limit: number, depth: number): Tlv {
  if (depth > MAX_DEPTH) throw certError(`nesting deeper than ${MAX_DEPTH} levels`, offset);
  if (offset >= limit) throw certError('truncated: an element was expected', offset);
  const tag = bytes[offset]!;
  let p = offset + 1;
  if ((tag & 0x1f) === 0x1f) {
    // High tag number form: base-128 octets, the last without bit 8. X.509 never uses it; allow 4 octets.
    let n = 0;
    for (;;) {
      if (p >= limit) throw certError('truncated inside a tag number', p);
      const b = bytes[p++]!;
      if (++n > 4) throw certError('tag number longer than 4 octets', offset);
      if ((b & 0x80) === 0) break;
    }
  }
  if (p >= limit) throw certError(`truncated: ${tagName(tag)} has no length`, p);
  const first = bytes[p++]!;
  const constructed = (tag & 0x20) !== 0;
  if (first === 0x80) {
    // BER indefinite length: the content runs to an end-of-contents (00 00) at this level.
    if (!constructed) throw certError(`indefinite length on primitive ${tagName(tag)}`, offset);
    let q = p;
    for (;;) {
      if (q + 2 > limit) throw certError(`truncated: ${tagName(tag)} of indefinite length has no end-of-contents`, q);
      if (bytes[q] === 0 && bytes[q + 1] === 0) break;
      q = readTlv(bytes, q, limit, depth + 1).end;
    }
    return { tag, constructed, start: offset, contentStart: p, contentEnd: q, end: q + 2, indefinite: true, longLength: false };
  }
  let length: number;
  let longLength = false;
  if (first < 0x80) {
    length = first;
  } else {
    const n = first & 0x7f;
    if (n > 4) throw certError(`a ${n}-octet length field`, p - 1);
    if (p + n > limit) throw certError('truncated inside a length field', p);
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + bytes[p + i]!;
    // DER: the shortest form (X.690 §10.1); a leading zero octet or a long form under 128 is BER.
    longLength = length < 0x80 || bytes[p] === 0;
    p += n;
  }
  if (length > limit - p) throw certError(`truncated: ${tagName(tag)} declares ${length} byte(s), ${limit - p} remain`, offset);
  return { tag, constructed, start: offset, contentStart: p, contentEnd: p + length, end: p + length, indefinite: false, longLength };
}

/** The elements inside a constructed element. */
function childrenOf(bytes: Uint8Array, tlv: Tlv, depth: number): Tlv[] {
  if (!tlv.constructed) throw certError(`${tagName(tlv.tag)} is not constructed`, tlv.start);
  const out: Tlv[] = [];
  for (let p = tlv.contentStart; p < tlv.contentEnd; ) {
    const c = readTlv(bytes, p, tlv.contentEnd, depth + 1);
    out.push(c);
    p = c.end;
  }
  return out;
}

function expectTag(t: Tlv | undefined, tag: number, what: string, at: number): Tlv {
  if (t === undefined) throw certError(`${what} is missing`, at);
  if (t.tag !== tag) throw certError(`${what}: expected ${tagName(tag)}, found ${tagName(t.tag)}`, t.start);
  return t;
}

function content(bytes: Uint8Array, t: Tlv): Uint8Array {
  return bytes.subarray(t.contentStart, t.contentEnd);
}

/** OBJECT IDENTIFIER content to dotted text (X.690 §8.19); non-minimal arcs are refused. */
function oidText(c: Uint8Array, at: number): string {
  if (c.length === 0 || c.length > 128) throw certError(`OBJECT IDENTIFIER of ${c.length} byte(s)`, at);
  const arcs: bigint[] = [];
  let v = 0n;
  let started = false;
  for (let i = 0; i < c.length; i++) {
    const b = c[i]!;
    // A leading 0x80 would give the same arc two encodings: OIDs compared by text must not be ambiguous.
    if (!started && b === 0x80) throw certError('OBJECT IDENTIFIER arc with a leading 0x80 octet', at + i);
    started = true;
    v = (v << 7n) | BigInt(b & 0x7f);
    if ((b & 0x80) === 0) {
      arcs.push(v);
      v = 0n;
      started = false;
    }
  }
  if (started) throw certError('OBJECT IDENTIFIER ends inside an arc', at + c.length);
  const first = arcs[0]!;
  const head = first < 40n ? [0n, first] : first < 80n ? [1n, first - 40n] : [2n, first - 80n];
  return [...head, ...arcs.slice(1)].join('.');
}

function hexOf(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}


// ---------------------------------------------------------------------------
// Quirk scan: every element, once

interface QuirkSink {
  add(code: string, detail: string, offset?: number): void;
}

function newQuirks(): { sink: QuirkSink; list: CertificateQuirk[] } {
  const list: CertificateQuirk[] = [];
  const seen = new Set<string>();
  return {
    list,
    sink: {
      add(code, detail, offset) {
        // One entry per code and place is enough; a bundle of unsorted SETs would otherwise repeat itself.
        const key = `${code}@${offset ?? ''}`;
        if (seen.has(key) || list.length >= 64) return;
        seen.add(key);
        list.push(offset === undefined ? { code, detail } : { code, detail, offset });
      },
    },
  };
}

/** Universal string and time types, which DER encodes primitive only (X.690 §10.2). */
const STRING_TAGS: ReadonlySet<number> = new Set([0x03, 0x04, 0x0c, 0x12, 0x13, 0x14, 0x16, 0x17, 0x18, 0x1a, 0x1c, 0x1e]);

/** Reports BER encodings and DER violations under `t` (X.690 §10–11). */
function scanEncoding(bytes: Uint8Array, t: Tlv, depth: number, q: QuirkSink): void {
  if (t.longLength) q.add('ber.long-length', `${tagName(t.tag)} length not in its shortest form (X.690 §10.1)`, t.start);
  if (t.indefinite) q.add('ber.indefinite-length', `${tagName(t.tag)} with an indefinite length (X.690 §10.1)`, t.start);
  if (t.constructed) {
    const kids = childrenOf(bytes, t, depth);
    if ((t.tag & 0xc0) === 0 && STRING_TAGS.has(t.tag & 0x1f)) {
      q.add('ber.constructed-string', `constructed ${tagName(t.tag & 0xdf)} (X.690 §10.2)`, t.start);
    }
    if (t.tag === 0x31) {
      // SET OF: DER sorts the members' encodings as octet strings (X.690 §11.6).
      for (let i = 1; i < kids.length; i++) {
        const prev = bytes.subarray(kids[i - 1]!.start, kids[i - 1]!.end);
        const cur = bytes.subarray(kids[i]!.start, kids[i]!.end);
        if (compareBytes(prev, cur) > 0) {
          q.add('der.set-order', 'SET OF members not in ascending order of their encodings (X.690 §11.6)', t.start);
          break;
        }
      }
    }
    for (const k of kids) scanEncoding(bytes, k, depth + 1, q);
    return;
  }
  const c = content(bytes, t);
  if (t.tag === 0x01 && (c.length !== 1 || (c[0] !== 0 && c[0] !== 0xff))) {
    q.add('der.boolean', 'BOOLEAN TRUE not encoded as 0xFF (X.690 §11.1)', t.start);
  }
  if (t.tag === 0x02 && c.length > 1 && ((c[0] === 0 && c[1]! < 0x80) || (c[0] === 0xff && c[1]! >= 0x80))) {
    q.add('der.integer-padding', 'INTEGER with a redundant leading octet (X.690 §8.3.2)', t.start);
  }
  if (t.tag === 0x03 && c.length > 0 && c[0]! > 0 && c[0]! < 8 && c.length > 1 && (c[c.length - 1]! & ((1 << c[0]!) - 1)) !== 0) {
    q.add('der.bitstring-padding', 'BIT STRING unused bits not zero (X.690 §11.2.1)', t.start);
  }
}

// ---------------------------------------------------------------------------
// PEM

/** Text when `input` is a string or bytes that look like PEM; undefined for binary. */
function asPemText(input: Uint8Array | string): string | undefined {
  if (typeof input === 'string') return input;
  // DER starts with a SEQUENCE (0x30); PEM with text, possibly explanatory lines before the armour.
  if (input.length === 0 || input[0] === 0x30) return undefined;
  const head = Buffer.from(input.buffer, input.byteOffset, Math.min(input.byteLength, 4096)).toString('latin1');
  return head.includes('-----BEGIN ') ? Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('latin1') : undefined;
}

const CERTIFICATE_LABELS: ReadonlySet<string> = new Set(['CERTIFICATE', 'X509 CERTIFICATE', 'TRUSTED CERTIFICATE']);

/**
 * The CERTIFICATE blocks of PEM text (RFC 7468 §2, §5), other labels skipped.
 * One pass with indexOf, so text with many BEGIN lines costs linear time.
 */
function pemCertificates(text: string): Uint8Array[] {
  if (text.length > MAX_BUNDLE_CHARS) throw certError(`PEM text of ${text.length} characters is too large`, 0);
  const out: Uint8Array[] = [];
  for (let p = text.indexOf('-----BEGIN '); p >= 0; p = text.indexOf('-----BEGIN ', p)) {
    const labelEnd = text.indexOf('-----', p + 11);
    if (labelEnd < 0 || labelEnd - (p + 11) > 64) throw certError('PEM BEGIN line without its closing dashes', p);
    const label = text.slice(p + 11, labelEnd);
    const endLine = `-----END ${label}-----`;
    const end = text.indexOf(endLine, labelEnd + 5);
    if (end < 0) throw certError(`PEM block "${label.slice(0, 32)}" has no END line`, p);
    const body = text.slice(labelEnd + 5, end);
    p = end + endLine.length;
    if (!CERTIFICATE_LABELS.has(label)) continue;
    // RFC 7468 §3: base64 with optional whitespace; anything else (headers, stray characters) is refused.
    const b64 = body.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) throw certError(`PEM block ${out.length + 1} is not base64`, labelEnd + 5);
    out.push(new Uint8Array(Buffer.from(b64, 'base64')));
    if (out.length > MAX_BUNDLE_CERTIFICATES) throw certError(`more than ${MAX_BUNDLE_CERTIFICATES} certificates`, p);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Parsing

/**
 * Parses one X.509 certificate, DER or PEM (one CERTIFICATE block), leniently:
 * bytes after the certificate's outer SEQUENCE (NV padding) are dropped and
 * reported, BER and non-DER encodings are accepted and reported as quirks.
 *
 * @throws EvidenceError `evidence.certificate` (with `offset`) when the input
 *   is no certificate even read leniently, or a PEM input holds not exactly one.
 */
export function parseCertificate(input: Uint8Array | string): ParsedCertificate {
  const text = asPemText(input);
  if (text !== undefined) {
    const blocks = pemCertificates(text);
    if (blocks.length !== 1) throw certError(`PEM input holds ${blocks.length} certificates, expected one (use parseCertificates for bundles)`, 0);
    return parseDer(blocks[0]!, false);
  }
  if (!(input instanceof Uint8Array)) throw new EvidenceError('evidence.argument', 'a certificate must be given as bytes (DER or PEM) or PEM text');
  return parseDer(input, true);
}

/**
 * Parses every certificate of a PEM bundle, or of DER certificates written
 * one after another (as `cat a.der b.der` makes).
 * @throws EvidenceError `evidence.certificate` on the first that does not parse.
 */
export function parseCertificates(input: Uint8Array | string): ParsedCertificate[] {
  const text = asPemText(input);
  if (text !== undefined) return pemCertificates(text).map((der) => parseDer(der, false));
  if (!(input instanceof Uint8Array)) throw new EvidenceError('evidence.argument', 'certificates must be given as bytes (DER or PEM) or PEM text');
  const out: ParsedCertificate[] = [];
  for (let p = 0; p < input.length; ) {
    const t = readTlv(input, p, input.length, 0);
    if (t.tag !== 0x30) throw certError(`certificate ${out.length + 1}: expected a SEQUENCE, found ${tagName(t.tag)}`, p);
    try {
      out.push(parseDer(input.subarray(p, t.end), false));
    } catch (e) {
      if (e instanceof EvidenceError && e.offset !== undefined) throw certError(`certificate ${out.length + 1}: ${e.message}`, p + e.offset, e);
      throw e;
    }
    p = t.end;
    if (out.length > MAX_BUNDLE_CERTIFICATES) throw certError(`more than ${MAX_BUNDLE_CERTIFICATES} certificates`, p);
  }
  return out;
}

function parseDer(input: Uint8Array, allowTrailing: boolean): ParsedCertificate {
  if (input.length > MAX_CERTIFICATE_BYTES + 64 * 1024) throw certError(`${input.length} bytes is larger than any certificate read here`, 0);
  const { sink: q, list: quirks } = newQuirks();
  const outer = readTlv(input, 0, input.length, 0);
  if (outer.tag !== 0x30) throw certError(`expected a SEQUENCE, found ${tagName(outer.tag)}`, 0);
  if (outer.end - outer.start > MAX_CERTIFICATE_BYTES) throw certError(`a certificate of ${outer.end} bytes is too large`, 0);
  if (outer.end < input.length) {
    const rest = input.subarray(outer.end);
    if (!allowTrailing) throw certError(`${rest.length} byte(s) after the certificate`, outer.end);
    const padding = rest.every((b) => b === 0) || rest.every((b) => b === 0xff);
    q.add('der.trailing-data', `${rest.length} byte(s) after the certificate ${padding ? '(NV padding)' : '(not padding)'} were dropped`, outer.end);
  }
  // A copy: the parsed certificate must not change when the caller reuses its buffer (Buffer#slice shares memory).
  const bytes = new Uint8Array(outer.end);
  bytes.set(input.subarray(0, outer.end));
  scanEncoding(bytes, outer, 0, q);

  const top = childrenOf(bytes, outer, 0);
  if (top.length !== 3) throw certError(`a Certificate has 3 elements, this one ${top.length}`, outer.contentStart);
  const tbsT = expectTag(top[0], 0x30, 'tbsCertificate', outer.contentStart);
  const sigAlgT = expectTag(top[1], 0x30, 'signatureAlgorithm', tbsT.end);
  const sigT = expectTag(top[2], 0x03, 'signatureValue', sigAlgT.end);
  const sigC = content(bytes, sigT);
  if (sigC.length < 1 || sigC[0] !== 0) throw certError('signatureValue: a BIT STRING with unused bits', sigT.start);

  const f = childrenOf(bytes, tbsT, 1);
  let i = 0;
  let version = 1;
  if (f[i]?.tag === 0xa0) {
    const v = childrenOf(bytes, f[i]!, 2);
    const vi = expectTag(v[0], 0x02, 'version', f[i]!.contentStart);
    const vc = content(bytes, vi);
    if (v.length !== 1 || vc.length !== 1 || vc[0]! > 2) throw certError('version: expected v1, v2 or v3', vi.start);
    version = vc[0]! + 1;
    if (version === 1) q.add('der.default-encoded', 'version v1 encoded although it is the DEFAULT (X.690 §11.5)', f[i]!.start);
    i++;
  }
  const serialT = expectTag(f[i++], 0x02, 'serialNumber', tbsT.contentStart);
  const serial = content(bytes, serialT);
  if (serial.length === 0) throw certError('serialNumber: empty INTEGER', serialT.start);
  // RFC 5280 §4.1.2.2: positive, at most 20 octets; real EK certificates break both now and then.
  if ((serial[0]! & 0x80) !== 0 || serial.every((b) => b === 0)) q.add('x509.serial-not-positive', 'serialNumber is not a positive integer (RFC 5280 §4.1.2.2)', serialT.start);
  if (serial.length > 20) q.add('x509.serial-too-long', `serialNumber of ${serial.length} octets, more than 20 (RFC 5280 §4.1.2.2)`, serialT.start);
  const tbsSigAlg = algorithmIdentifier(bytes, expectTag(f[i++], 0x30, 'signature', serialT.end));
  const issuerT = expectTag(f[i++], 0x30, 'issuer', serialT.end);
  const validityT = expectTag(f[i++], 0x30, 'validity', issuerT.end);
  const subjectT = expectTag(f[i++], 0x30, 'subject', validityT.end);
  const spkiT = expectTag(f[i++], 0x30, 'subjectPublicKeyInfo', subjectT.end);
  let extensionsT: Tlv | undefined;
  for (; i < f.length; i++) {
    const t = f[i]!;
    // [1] issuerUniqueID and [2] subjectUniqueID (v2+), then [3] extensions (v3).
    if (t.tag === 0x81 || t.tag === 0x82 || t.tag === 0xa1 || t.tag === 0xa2) continue;
    if (t.tag === 0xa3 && extensionsT === undefined) {
      extensionsT = t;
      continue;
    }
    throw certError(`unexpected ${tagName(t.tag)} in tbsCertificate`, t.start);
  }
  if (extensionsT !== undefined && version !== 3) q.add('x509.version', `a v${version} certificate with extensions (RFC 5280 §4.1.2.1)`, extensionsT.start);

  const validity = childrenOf(bytes, validityT, 2);
  if (validity.length !== 2) throw certError('validity: expected notBefore and notAfter', validityT.start);
  const notBefore = parseTime(bytes, validity[0]!, q, 'notBefore');
  const notAfter = parseTime(bytes, validity[1]!, q, 'notAfter');

  const issuer = parseName(bytes.subarray(issuerT.start, issuerT.end), issuerT.start);
  const subject = parseName(bytes.subarray(subjectT.start, subjectT.end), subjectT.start);
  const spki = bytes.slice(spkiT.start, spkiT.end);
  const publicKey = parsePublicKey(bytes, spkiT, q);

  const extensions = extensionsT === undefined ? [] : parseExtensions(bytes, extensionsT, q);
  const base = {
    der: bytes,
    tbs: bytes.slice(tbsT.start, tbsT.end),
    fingerprint: createHash('sha256').update(bytes).digest('hex'),
    version,
    serialNumber: hexOf(serial),
    signatureAlgorithm: algorithmIdentifier(bytes, sigAlgT),
    tbsSignatureAlgorithm: tbsSigAlg,
    signature: sigC.slice(1),
    issuer,
    subject,
    notBefore,
    notAfter,
    spki,
    publicKey,
    extensions,
    selfIssued: namesMatch(issuer, subject),
  };
  const decoded = decodeExtensions(extensions, extensionsT?.start ?? 0, q, subject, publicKey);
  return { ...base, ...decoded, quirks };
}

function algorithmIdentifier(bytes: Uint8Array, t: Tlv): AlgorithmIdentifier {
  const k = childrenOf(bytes, t, 2);
  const oidT = expectTag(k[0], 0x06, 'AlgorithmIdentifier.algorithm', t.contentStart);
  if (k.length > 2) throw certError('AlgorithmIdentifier with more than two elements', t.start);
  const oid = oidText(content(bytes, oidT), oidT.contentStart);
  const p = k[1];
  return p === undefined ? { oid } : { oid, parameters: bytes.slice(p.start, p.end) };
}

/** UTCTime / GeneralizedTime (RFC 5280 §4.1.2.5), read leniently: missing seconds and fractions are quirks. */
function parseTime(bytes: Uint8Array, t: Tlv, q: QuirkSink, what: string): Date {
  if (t.tag !== 0x17 && t.tag !== 0x18) throw certError(`${what}: expected UTCTime or GeneralizedTime, found ${tagName(t.tag)}`, t.start);
  const s = Buffer.from(content(bytes, t)).toString('latin1');
  const utc = t.tag === 0x17;
  const m = (utc ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})?(\.\d+)?(Z|[+-]\d{4})$/ : /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})?(\.\d+)?(Z|[+-]\d{4})$/).exec(s);
  if (m === null) throw certError(`${what}: "${s.slice(0, 32)}" is not a ${utc ? 'UTCTime' : 'GeneralizedTime'}`, t.start);
  let year = Number(m[1]);
  // RFC 5280 §4.1.2.5.1: UTCTime years 50–99 are 19xx, 00–49 are 20xx.
  if (utc) year += year >= 50 ? 1900 : 2000;
  const [month, day, hour, minute] = [Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5])];
  const second = m[6] === undefined ? 0 : Number(m[6]);
  if (m[6] === undefined) q.add('x509.time-format', `${what} without seconds (RFC 5280 §4.1.2.5)`, t.start);
  if (m[7] !== undefined) q.add('x509.time-format', `${what} with fractional seconds (RFC 5280 §4.1.2.5.2)`, t.start);
  let offsetMinutes = 0;
  if (m[8] !== 'Z') {
    q.add('x509.time-format', `${what} with a time-zone offset instead of Z (RFC 5280 §4.1.2.5)`, t.start);
    const z = m[8]!;
    offsetMinutes = (z[0] === '-' ? -1 : 1) * (Number(z.slice(1, 3)) * 60 + Number(z.slice(3, 5)));
  }
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
    throw certError(`${what}: "${s}" is not a valid date`, t.start);
  }
  // setUTCFullYear, not Date.UTC: the latter maps years 0–99 to 1900–1999.
  const local = new Date(0);
  local.setUTCFullYear(year, month - 1, day);
  local.setUTCHours(hour, minute, Math.min(second, 59), 0);
  if (local.getUTCDate() !== day) throw certError(`${what}: "${s}" is not a valid date`, t.start);
  return new Date(local.getTime() - offsetMinutes * 60_000);
}

/** A Name decoded with @peculiar/asn1-x509; its bytes stay as encoded. */
function parseName(der: Uint8Array, at: number): DistinguishedName {
  let name: Name;
  try {
    name = AsnConvert.parse(der, Name);
  } catch (cause) {
    throw certError(`Name does not decode: ${cause instanceof Error ? cause.message : String(cause)}`, at, cause);
  }
  return nameFrom(name, der);
}

function nameFrom(name: Name, der: Uint8Array): DistinguishedName {
  const rdns = Array.from(name, (rdn) =>
    Array.from(rdn, (atv): NameAttribute => {
      const short = ATTRIBUTE_NAMES[atv.type];
      const value = atv.value.toString();
      return short === undefined ? { type: atv.type, value } : { type: atv.type, name: short, value };
    }),
  );
  const text = rdns.map((rdn) => rdn.map((a) => `${a.name ?? a.type}=${a.value}`).join('+')).join(', ');
  return { der: der.slice(), rdns, text };
}

/** RFC 5280 §7.1 (RFC 4518 simplified): case-folded, whitespace-collapsed values; RDN attributes as sets. */
function canonicalName(n: DistinguishedName): string {
  return JSON.stringify(
    n.rdns.map((rdn) =>
      rdn
        .map((a) => `${a.type}=${a.value.normalize('NFKC').trim().replace(/\s+/g, ' ').toLowerCase()}`)
        .sort(),
    ),
  );
}

/**
 * Whether two names are the same for chaining (RFC 5280 §7.1): equal bytes, or
 * equal after the comparison rules (case and inner whitespace folded, the
 * attributes of an RDN compared as a set — Nuvoton's multi-valued RDNs are not
 * in DER order).
 */
export function namesMatch(a: DistinguishedName, b: DistinguishedName): boolean {
  return equalBytes(a.der, b.der) || canonicalName(a) === canonicalName(b);
}

function parsePublicKey(bytes: Uint8Array, spkiT: Tlv, q: QuirkSink): CertificatePublicKey {
  const k = childrenOf(bytes, spkiT, 2);
  if (k.length !== 2) throw certError('subjectPublicKeyInfo: expected algorithm and subjectPublicKey', spkiT.start);
  const alg = algorithmIdentifier(bytes, expectTag(k[0], 0x30, 'subjectPublicKeyInfo.algorithm', spkiT.contentStart));
  const bitsT = expectTag(k[1], 0x03, 'subjectPublicKey', k[0]!.end);
  const bits = content(bytes, bitsT);
  if (bits.length < 1 || bits[0] !== 0) throw certError('subjectPublicKey: a BIT STRING with unused bits', bitsT.start);
  const key = bits.subarray(1);
  const keyAt = bitsT.contentStart + 1;
  if (alg.oid === OID.rsaEncryption || alg.oid === OID.rsaesOaep || alg.oid === OID.rsassaPss) {
    if (alg.oid === OID.rsaesOaep) {
      q.add('x509.rsaes-oaep-key', 'RSAES-OAEP SubjectPublicKeyInfo (TPM 1.2 era EK certificate; RFC 4055 §4.1)', spkiT.start);
    }
    // RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER } (RFC 8017 §A.1.1)
    const seq = readTlv(key, 0, key.length, 3);
    if (seq.tag !== 0x30 || seq.end !== key.length) throw certError('RSAPublicKey: expected one SEQUENCE', keyAt);
    const sub = newQuirks();
    scanEncoding(key, seq, 3, sub.sink);
    for (const x of sub.list) q.add(x.code, `in the RSA public key: ${x.detail}`, keyAt + (x.offset ?? 0));
    const [nT, eT, extra] = childrenOf(key, seq, 3);
    if (nT?.tag !== 0x02 || eT?.tag !== 0x02 || extra !== undefined) throw certError('RSAPublicKey: expected modulus and publicExponent', keyAt);
    const n = content(key, nT);
    const e = content(key, eT);
    if (n.length === 0 || (n[0]! & 0x80) !== 0 || e.length === 0 || (e[0]! & 0x80) !== 0 || e.length > 8) {
      throw certError('RSAPublicKey: modulus and exponent must be positive (exponent at most 64 bits)', keyAt);
    }
    const modulus = stripLeadingZeros(n);
    let exponent = 0n;
    for (const b of e) exponent = (exponent << 8n) | BigInt(b);
    if (modulus.length === 0 || (modulus.length === 1 && modulus[0] === 0)) throw certError('RSAPublicKey: zero modulus', keyAt);
    return { kind: 'rsa', algorithm: alg.oid, modulus: modulus.slice(), exponent, bits: bitLength(modulus) };
  }
  if (alg.oid === OID.ecPublicKey) {
    // ECParameters: a namedCurve OID (RFC 5480 §2.1.1); implicit or specified curves are not EK material.
    const p = alg.parameters;
    if (p === undefined) throw certError('id-ecPublicKey without parameters', spkiT.start);
    const pt = readTlv(p, 0, p.length, 3);
    if (pt.tag !== 0x06 || pt.end !== p.length) {
      return { kind: 'ecc', algorithm: alg.oid, curveOid: '', point: key.slice() };
    }
    const curveOid = oidText(content(p, pt), 0);
    const curve = CURVE_BY_OID[curveOid];
    const point = key.slice();
    if (curve !== undefined && point.length === 1 + 2 * curve.size && point[0] === 4) {
      return { kind: 'ecc', algorithm: alg.oid, curveOid, curveID: curve.curveID, point, x: point.slice(1, 1 + curve.size), y: point.slice(1 + curve.size) };
    }
    return curve === undefined ? { kind: 'ecc', algorithm: alg.oid, curveOid, point } : { kind: 'ecc', algorithm: alg.oid, curveOid, curveID: curve.curveID, point };
  }
  return { kind: 'other', algorithm: alg.oid };
}

function stripLeadingZeros(b: Uint8Array): Uint8Array {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
}

function bitLength(b: Uint8Array): number {
  if (b.length === 0) return 0;
  return (b.length - 1) * 8 + (32 - Math.clz32(b[0]!));
}

function parseExtensions(bytes: Uint8Array, t: Tlv, q: QuirkSink): CertificateExtension[] {
  const [seq, extra] = childrenOf(bytes, t, 2);
  if (seq?.tag !== 0x30 || extra !== undefined) throw certError('extensions: expected one SEQUENCE', t.start);
  const out: CertificateExtension[] = [];
  const seen = new Set<string>();
  for (const e of childrenOf(bytes, seq, 3)) {
    if (e.tag !== 0x30) throw certError(`extension: expected a SEQUENCE, found ${tagName(e.tag)}`, e.start);
    const k = childrenOf(bytes, e, 4);
    const oidT = expectTag(k[0], 0x06, 'extnID', e.contentStart);
    const oid = oidText(content(bytes, oidT), oidT.contentStart);
    let critical = false;
    let vi = 1;
    if (k[1]?.tag === 0x01) {
      const b = content(bytes, k[1]);
      if (b.length !== 1) throw certError(`extension ${oid}: critical is not a BOOLEAN`, k[1].start);
      critical = b[0] !== 0;
      if (!critical) q.add('der.default-encoded', `extension ${oid}: critical FALSE encoded although it is the DEFAULT (X.690 §11.5)`, k[1].start);
      vi = 2;
    }
    const valueT = expectTag(k[vi], 0x04, `extension ${oid}: extnValue`, e.contentStart);
    if (k.length !== vi + 1) throw certError(`extension ${oid}: unexpected elements`, e.start);
    // RFC 5280 §4.2: at most one instance of an extension; two SANs would let two readers see two identities.
    if (seen.has(oid)) throw certError(`extension ${oid} appears twice (RFC 5280 §4.2)`, e.start);
    seen.add(oid);
    const value = content(bytes, valueT);
    if (value.length > 0) {
      // The value is DER of its own; its encoding quirks count as the certificate's.
      const inner = readTlv(value, 0, value.length, 4);
      if (inner.end !== value.length) throw certError(`extension ${oid}: bytes after the value`, valueT.contentStart + inner.end);
      const sub = newQuirks();
      scanEncoding(value, inner, 4, sub.sink);
      for (const x of sub.list) q.add(x.code, `in extension ${oid}: ${x.detail}`, valueT.contentStart + (x.offset ?? 0));
    }
    out.push({ oid, critical, value: value.slice() });
  }
  return out;
}

type DecodedExtensions = Pick<
  ParsedCertificate,
  'basicConstraints' | 'keyUsage' | 'extendedKeyUsage' | 'subjectKeyId' | 'authorityKeyId' | 'subjectAltNames' | 'tpm' | 'tpmSpecification' | 'unknownCriticalExtensions'
>;

function decodeWith<T>(value: Uint8Array, type: new () => T, oid: string, at: number): T {
  try {
    return AsnConvert.parse(value, type);
  } catch (cause) {
    throw certError(`extension ${oid} does not decode: ${cause instanceof Error ? cause.message : String(cause)}`, at, cause);
  }
}

function decodeExtensions(
  extensions: readonly CertificateExtension[],
  at: number,
  q: QuirkSink,
  subject: DistinguishedName,
  publicKey: CertificatePublicKey,
): DecodedExtensions {
  const out: {
    -readonly [K in keyof DecodedExtensions]: DecodedExtensions[K];
  } = { unknownCriticalExtensions: [] };
  const unknownCritical: string[] = [];
  for (const ext of extensions) {
    const v = ext.value;
    switch (ext.oid) {
      case OID.basicConstraints: {
        const bc = decodeWith(v, BasicConstraints, ext.oid, at);
        // cA DEFAULT FALSE: an encoded FALSE is BER (the SEQUENCE then starts with BOOLEAN 00).
        const seq = readTlv(v, 0, v.length, 4);
        const first = seq.constructed ? childrenOf(v, seq, 4)[0] : undefined;
        if (first?.tag === 0x01 && content(v, first)[0] === 0) q.add('der.default-encoded', 'basicConstraints cA FALSE encoded although it is the DEFAULT (X.690 §11.5)');
        out.basicConstraints = bc.pathLenConstraint === undefined ? { ca: bc.cA, critical: ext.critical } : { ca: bc.cA, pathLength: bc.pathLenConstraint, critical: ext.critical };
        break;
      }
      case OID.keyUsage:
        out.keyUsage = keyUsageBits(v, at);
        break;
      case OID.extKeyUsage:
        out.extendedKeyUsage = Array.from(decodeWith(v, ExtendedKeyUsage, ext.oid, at));
        break;
      case OID.subjectKeyIdentifier:
        out.subjectKeyId = new Uint8Array(decodeWith(v, SubjectKeyIdentifier, ext.oid, at).buffer);
        break;
      case OID.authorityKeyIdentifier: {
        const aki = decodeWith(v, AuthorityKeyIdentifier, ext.oid, at);
        if (aki.keyIdentifier !== undefined) out.authorityKeyId = new Uint8Array(aki.keyIdentifier.buffer);
        break;
      }
      case OID.subjectAltName: {
        const san = subjectAltNames(v, at);
        out.subjectAltNames = { critical: ext.critical, ...san };
        const tpm = tpmAttributes(san.directoryNames, q);
        if (tpm !== undefined) out.tpm = tpm;
        // RFC 5280 §4.2.1.6: with an empty subject, the SAN must be critical.
        if (subject.rdns.length === 0 && !ext.critical) q.add('x509.san-not-critical', 'empty subject with a non-critical subjectAltName (RFC 5280 §4.2.1.6)');
        break;
      }
      case OID.subjectDirectoryAttributes: {
        const sda = decodeWith(v, SubjectDirectoryAttributes, ext.oid, at);
        for (const a of sda) {
          if (a.type !== TCG_OID.tpmSpecification || a.values[0] === undefined) continue;
          const spec = tpmSpecification(new Uint8Array(a.values[0]));
          if (spec !== undefined) out.tpmSpecification = spec;
        }
        break;
      }
      default:
        if (KNOWN_EXTENSIONS.has(ext.oid)) break;
        if (ext.critical) unknownCritical.push(ext.oid);
        else q.add('x509.unknown-extension', `non-critical extension ${ext.oid} not understood, ignored (RFC 5280 §4.2)`);
    }
  }
  out.unknownCriticalExtensions = unknownCritical;
  if (publicKey.kind === 'other') q.add('x509.unknown-key', `public key algorithm ${publicKey.algorithm} is not RSA or ECC`);
  return out;
}

/** KeyUsage BIT STRING (RFC 5280 §4.2.1.3): bit 0 is the first bit of the first octet. */
function keyUsageBits(v: Uint8Array, at: number): KeyUsageName[] {
  const t = readTlv(v, 0, v.length, 4);
  if (t.tag !== 0x03) throw certError('keyUsage: expected a BIT STRING', at);
  const c = content(v, t);
  if (c.length < 1 || c[0]! > 7) throw certError('keyUsage: malformed BIT STRING', at);
  const out: KeyUsageName[] = [];
  for (let bit = 0; bit < KEY_USAGE_BITS.length; bit++) {
    const octet = c[1 + (bit >> 3)];
    if (octet !== undefined && (octet & (0x80 >> (bit & 7))) !== 0) out.push(KEY_USAGE_BITS[bit]!);
  }
  return out;
}

/**
 * GeneralNames (RFC 5280 §4.2.1.6) read from the extension's own bytes, so a
 * directoryName keeps its encoding; each Name is decoded like the subject's.
 */
function subjectAltNames(v: Uint8Array, at: number): { directoryNames: DistinguishedName[]; other: string[] } {
  const seq = readTlv(v, 0, v.length, 4);
  if (seq.tag !== 0x30) throw certError('subjectAltName: expected a SEQUENCE', at);
  const directoryNames: DistinguishedName[] = [];
  const other: string[] = [];
  const text = (t: Tlv): string => Buffer.from(content(v, t)).toString('latin1');
  for (const g of childrenOf(v, seq, 4)) {
    switch (g.tag) {
      case 0xa4: {
        // [4] EXPLICIT Name
        const [n, extra] = childrenOf(v, g, 5);
        if (n?.tag !== 0x30 || extra !== undefined) throw certError('subjectAltName: directoryName is not one Name', at + g.start);
        directoryNames.push(parseName(v.subarray(n.start, n.end), at + n.start));
        break;
      }
      case 0x86:
        other.push(`URI:${text(g)}`);
        break;
      case 0x82:
        other.push(`DNS:${text(g)}`);
        break;
      case 0x81:
        other.push(`email:${text(g)}`);
        break;
      case 0xa0: {
        const id = childrenOf(v, g, 5)[0];
        other.push(id?.tag === 0x06 ? `otherName:${oidText(content(v, id), at + id.contentStart)}` : 'otherName');
        break;
      }
      default:
        other.push(`[${g.tag & 0x1f}]`);
    }
  }
  return { directoryNames, other };
}

/** tpmManufacturer / tpmModel / tpmVersion from the SAN's directoryName(s) (EK Credential Profile §3.2.9). */
function tpmAttributes(names: readonly DistinguishedName[], q: QuirkSink): TpmAttributes | undefined {
  const found: { manufacturer?: string; model?: string; version?: string } = {};
  const keys: Readonly<Record<string, 'manufacturer' | 'model' | 'version'>> = {
    [TCG_OID.tpmManufacturer]: 'manufacturer',
    [TCG_OID.tpmModel]: 'model',
    [TCG_OID.tpmVersion]: 'version',
  };
  for (const n of names) {
    for (const rdn of n.rdns) {
      for (const a of rdn) {
        const key = keys[a.type];
        if (key === undefined) continue;
        // The first value counts; a repeated attribute is reported rather than silently preferred.
        if (found[key] === undefined) found[key] = a.value;
        else q.add('tcg.attribute-repeated', `TPM attribute ${a.type} appears more than once in the subjectAltName; the first is used`);
      }
    }
  }
  if (found.manufacturer === undefined && found.model === undefined && found.version === undefined) return undefined;
  const out: { -readonly [K in keyof TpmAttributes]: TpmAttributes[K] } = {};
  if (found.manufacturer !== undefined) {
    out.manufacturer = found.manufacturer;
    const id = tcgId(found.manufacturer);
    if (id === undefined) {
      q.add('tcg.manufacturer-format', `tpmManufacturer "${found.manufacturer.slice(0, 40)}" is not "id:" and 8 hex digits (EK Credential Profile §3.2.9)`);
    } else {
      out.manufacturerId = id;
      const text = vendorText(id);
      if (text !== undefined) out.vendorId = text;
    }
  }
  if (found.model !== undefined) out.model = found.model;
  if (found.version !== undefined) {
    out.version = found.version;
    const id = tcgId(found.version);
    if (id !== undefined) out.versionId = id;
  }
  return out;
}

/** `id:` followed by up to 8 hex digits (the profile writes the 32-bit property value in hex). */
function tcgId(s: string): number | undefined {
  const m = /^id:([0-9A-Fa-f]{1,8})$/.exec(s.trim());
  return m === null ? undefined : Number.parseInt(m[1]!, 16) >>> 0;
}

/** A TPM_PT_MANUFACTURER value as its vendor ID text (Part 2 §6.13: packed ASCII, unused bytes zero). */
export function vendorText(id: number): string | undefined {
  const b = [id >>> 24, (id >>> 16) & 0xff, (id >>> 8) & 0xff, id & 0xff];
  const trimmed = b.slice(0, b.findLastIndex((x) => x !== 0) + 1);
  if (trimmed.length === 0 || trimmed.some((x) => x < 0x20 || x > 0x7e)) return undefined;
  return String.fromCharCode(...trimmed).trim();
}

/** TPMSpecification ::= SEQUENCE { family UTF8String, level INTEGER, revision INTEGER } (§3.2.11). */
function tpmSpecification(v: Uint8Array): TpmSpecification | undefined {
  try {
    const seq = readTlv(v, 0, v.length, 5);
    const [f, l, r] = seq.tag === 0x30 ? childrenOf(v, seq, 5) : [];
    if (f === undefined || l?.tag !== 0x02 || r?.tag !== 0x02) return undefined;
    const int = (t: Tlv): number => {
      const c = content(v, t);
      if (c.length === 0 || c.length > 4 || (c[0]! & 0x80) !== 0) return -1;
      return c.reduce((acc, b) => acc * 256 + b, 0);
    };
    const family = Buffer.from(content(v, f)).toString('utf8');
    const level = int(l);
    const revision = int(r);
    return level < 0 || revision < 0 ? undefined : { family, level, revision };
  } catch {
    // A malformed optional attribute only loses the information, not the certificate.
    return undefined;
  }
}

// ---------------------------------------------------------------------------
// Signature algorithms

export type SignatureHash = 'sha1' | 'sha224' | 'sha256' | 'sha384' | 'sha512';

/** How to check a signature made with an AlgorithmIdentifier (RFC 4055, RFC 5758, RFC 8410). */
export interface SignatureScheme {
  /** For people: `sha256WithRSAEncryption`, `ecdsa-with-SHA384`, `RSASSA-PSS(sha256)`. */
  readonly name: string;
  readonly kind: 'rsa-pkcs1' | 'rsa-pss' | 'ecdsa' | 'eddsa';
  /** The digest (absent for EdDSA, which hashes internally). */
  readonly hash?: SignatureHash;
  /** RSASSA-PSS salt length in bytes. */
  readonly saltLength?: number;
}

const SIGNATURE_SCHEMES: Readonly<Record<string, SignatureScheme>> = {
  '1.2.840.113549.1.1.5': { name: 'sha1WithRSAEncryption', kind: 'rsa-pkcs1', hash: 'sha1' },
  '1.2.840.113549.1.1.14': { name: 'sha224WithRSAEncryption', kind: 'rsa-pkcs1', hash: 'sha224' },
  '1.2.840.113549.1.1.11': { name: 'sha256WithRSAEncryption', kind: 'rsa-pkcs1', hash: 'sha256' },
  '1.2.840.113549.1.1.12': { name: 'sha384WithRSAEncryption', kind: 'rsa-pkcs1', hash: 'sha384' },
  '1.2.840.113549.1.1.13': { name: 'sha512WithRSAEncryption', kind: 'rsa-pkcs1', hash: 'sha512' },
  '1.2.840.10045.4.1': { name: 'ecdsa-with-SHA1', kind: 'ecdsa', hash: 'sha1' },
  '1.2.840.10045.4.3.1': { name: 'ecdsa-with-SHA224', kind: 'ecdsa', hash: 'sha224' },
  '1.2.840.10045.4.3.2': { name: 'ecdsa-with-SHA256', kind: 'ecdsa', hash: 'sha256' },
  '1.2.840.10045.4.3.3': { name: 'ecdsa-with-SHA384', kind: 'ecdsa', hash: 'sha384' },
  '1.2.840.10045.4.3.4': { name: 'ecdsa-with-SHA512', kind: 'ecdsa', hash: 'sha512' },
  '1.3.101.112': { name: 'Ed25519', kind: 'eddsa' },
  '1.3.101.113': { name: 'Ed448', kind: 'eddsa' },
};

const HASH_BY_OID: Readonly<Record<string, SignatureHash>> = {
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.4': 'sha224',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};

/**
 * The scheme of a signature AlgorithmIdentifier, or undefined for one this
 * verifier does not check (then the signature counts as unverifiable).
 * RSASSA-PSS parameters (RFC 4055 §3.1) are read: node:crypto uses the same
 * hash for MGF1, so other MGF1 hashes and trailer fields are unsupported.
 */
export function signatureScheme(alg: AlgorithmIdentifier): SignatureScheme | undefined {
  const known = SIGNATURE_SCHEMES[alg.oid];
  if (known !== undefined) return known;
  if (alg.oid !== OID.rsassaPss) return undefined;
  try {
    return pssScheme(alg.parameters);
  } catch {
    return undefined;
  }
}

function pssScheme(params: Uint8Array | undefined): SignatureScheme | undefined {
  // RSASSA-PSS-params ::= SEQUENCE { [0] hashAlgorithm DEFAULT sha1, [1] maskGenAlgorithm DEFAULT mgf1SHA1,
  //   [2] saltLength DEFAULT 20, [3] trailerField DEFAULT 1 }
  let hash: SignatureHash = 'sha1';
  let mgfHash: SignatureHash = 'sha1';
  let saltLength = 20;
  if (params !== undefined && !(params.length === 2 && params[0] === 0x05 && params[1] === 0)) {
    const seq = readTlv(params, 0, params.length, 3);
    if (seq.tag !== 0x30 || seq.end !== params.length) return undefined;
    const hashOf = (t: Tlv): SignatureHash | undefined => {
      const [algT] = childrenOf(params, t, 4);
      const [oidT] = algT?.tag === 0x30 ? childrenOf(params, algT, 5) : [];
      return oidT?.tag === 0x06 ? HASH_BY_OID[oidText(content(params, oidT), oidT.contentStart)] : undefined;
    };
    for (const f of childrenOf(params, seq, 3)) {
      if (f.tag === 0xa0) {
        const h = hashOf(f);
        if (h === undefined) return undefined;
        hash = h;
      } else if (f.tag === 0xa1) {
        const [algT] = childrenOf(params, f, 4);
        const [mgfOid, mgfParams] = algT?.tag === 0x30 ? childrenOf(params, algT, 5) : [];
        if (mgfOid?.tag !== 0x06 || oidText(content(params, mgfOid), mgfOid.contentStart) !== '1.2.840.113549.1.1.8' || mgfParams?.tag !== 0x30) return undefined;
        const [hOid] = childrenOf(params, mgfParams, 6);
        const h = hOid?.tag === 0x06 ? HASH_BY_OID[oidText(content(params, hOid), hOid.contentStart)] : undefined;
        if (h === undefined) return undefined;
        mgfHash = h;
      } else if (f.tag === 0xa2) {
        const [n] = childrenOf(params, f, 4);
        const c = n?.tag === 0x02 ? content(params, n) : undefined;
        if (c === undefined || c.length === 0 || c.length > 2 || (c[0]! & 0x80) !== 0) return undefined;
        saltLength = c.reduce((a, b) => a * 256 + b, 0);
      } else if (f.tag === 0xa3) {
        const [n] = childrenOf(params, f, 4);
        const c = n?.tag === 0x02 ? content(params, n) : undefined;
        if (c === undefined || c.length !== 1 || c[0] !== 1) return undefined;
      } else {
        return undefined;
      }
    }
  }
  if (mgfHash !== hash) return undefined;
  return { name: `RSASSA-PSS(${hash}, salt ${saltLength})`, kind: 'rsa-pss', hash, saltLength };
}

/**
 * r and s of an ECDSA-Sig-Value (RFC 5758 §3.2) read leniently (BER lengths,
 * redundant leading zero octets), for CAs whose signatures are not strict DER.
 */
export function ecdsaSignatureParts(sig: Uint8Array): { readonly r: Uint8Array; readonly s: Uint8Array } | undefined {
  try {
    const seq = readTlv(sig, 0, sig.length, 0);
    if (seq.tag !== 0x30 || seq.end !== sig.length) return undefined;
    const [r, s, extra] = childrenOf(sig, seq, 0);
    if (r?.tag !== 0x02 || s?.tag !== 0x02 || extra !== undefined) return undefined;
    const rc = content(sig, r);
    const sc = content(sig, s);
    if (rc.length === 0 || sc.length === 0 || (rc[0]! & 0x80) !== 0 || (sc[0]! & 0x80) !== 0) return undefined;
    return { r: stripLeadingZeros(rc).slice(), s: stripLeadingZeros(sc).slice() };
  } catch {
    return undefined;
  }
}

/** Two AlgorithmIdentifiers name the same algorithm and parameters (an absent parameter and NULL count as equal). */
export function sameAlgorithm(a: AlgorithmIdentifier, b: AlgorithmIdentifier): boolean {
  const norm = (p: Uint8Array | undefined): Uint8Array => (p === undefined ? Uint8Array.of(0x05, 0x00) : p);
  return a.oid === b.oid && equalBytes(norm(a.parameters), norm(b.parameters));
}

// ---------------------------------------------------------------------------
// EK checks

/** swtpm's libtpms reports TPMAttributes manufacturer `id:00001014` (libtpms TPM2_GetInfo), which swtpm_setup passes to swtpm_localca, while TPM_PT_MANUFACTURER reads "IBM". */
const SWTPM_SAN_MANUFACTURER = 0x00001014;
const IBM_MANUFACTURER = 0x49424d00;

function normalizeModel(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]/g, '');
}

export interface EkCertificateCheckOptions {
  /** The verification time (never read from a clock here). */
  readonly at: Date;
  /** The EK's public area as the TPM holds it: the certificate's key must be this key. */
  readonly ekPublic?: TPMT_PUBLIC;
  /** What the TPM says about itself: manufacturer, vendor strings and firmware are cross-checked with the SAN. */
  readonly description?: TpmDescription;
}

/**
 * Compares the certificate's public key with an EK public area (TPMT_PUBLIC,
 * Part 2 §12.2.4): RSA modulus and exponent (0 meaning 65537, Part 2
 * §12.2.3.5), or the ECC curve and point.
 */
export function compareEkPublicKey(cert: ParsedCertificate, ekPublic: TPMT_PUBLIC): Check {
  const name = 'ekcert.public-key';
  const k = cert.publicKey;
  if (ekPublic.type === TPM_ALG.RSA) {
    if (k.kind !== 'rsa') return fail(name, 'key.type-mismatch', `the certificate holds a ${k.kind} key, the EK is RSA`);
    const exponent = BigInt(ekPublic.parameters.exponent === 0 ? 65537 : ekPublic.parameters.exponent);
    const modulus = stripLeadingZeros(ekPublic.unique);
    if (!equalBytes(modulus, k.modulus)) return fail(name, 'key.mismatch', `the certificate's RSA modulus (${k.bits} bits) is not the EK's`);
    if (exponent !== k.exponent) return fail(name, 'key.mismatch', `the certificate's RSA exponent ${k.exponent} is not the EK's ${exponent}`);
    return pass(name, 'key.match', `RSA-${k.bits} modulus and exponent equal the EK's`);
  }
  if (ekPublic.type === TPM_ALG.ECC) {
    if (k.kind !== 'ecc') return fail(name, 'key.type-mismatch', `the certificate holds a ${k.kind} key, the EK is ECC`);
    const curveID = ekPublic.parameters.curveID;
    if (k.curveID !== curveID) return fail(name, 'key.mismatch', `the certificate's curve ${k.curveOid || 'unnamed'} is not the EK's curve 0x${curveID.toString(16)}`);
    if (k.x === undefined || k.y === undefined) return fail(name, 'key.unsupported-encoding', 'the certificate\'s EC point is not uncompressed');
    const size = k.x.length;
    const pad = (v: Uint8Array): Uint8Array | undefined => {
      if (v.length > size) return undefined;
      const o = new Uint8Array(size);
      o.set(v, size - v.length);
      return o;
    };
    const x = pad(ekPublic.unique.x);
    const y = pad(ekPublic.unique.y);
    if (x === undefined || y === undefined || !equalBytes(x, k.x) || !equalBytes(y, k.y)) return fail(name, 'key.mismatch', "the certificate's EC point is not the EK's");
    return pass(name, 'key.match', `EC point on ${CURVE_BY_OID[k.curveOid]?.name ?? k.curveOid} equals the EK's`);
  }
  return fail(name, 'key.type-mismatch', `an EK of type 0x${ekPublic.type.toString(16)} cannot have a certificate key`);
}

/**
 * The EK-specific checks of a parsed leaf certificate (everything but the
 * chain): encoding quirks, validity at `at` (advisory: expiry is a warning,
 * policy decides), basicConstraints, keyUsage, EKU, the TCG TPM attributes,
 * unknown critical extensions, and — when given — the public key against the
 * EK and the SAN's manufacturer/model/version against what the TPM reports.
 */
export function checkEkCertificate(cert: ParsedCertificate, options: EkCertificateCheckOptions): Check[] {
  const checks: Check[] = [];
  const at = options.at;
  if (!(at instanceof Date) || Number.isNaN(at.getTime())) throw new EvidenceError('evidence.argument', 'checkEkCertificate: `at` must be a valid Date');

  checks.push(
    cert.quirks.length === 0
      ? pass('ekcert.encoding', 'encoding.der', 'strict DER, no quirks')
      : warn('ekcert.encoding', 'encoding.quirks', `tolerated: ${[...new Set(cert.quirks.map((x) => x.code))].join(', ')}`),
  );

  if (at.getTime() > cert.notAfter.getTime()) {
    checks.push(warn('ekcert.validity', 'leaf.expired', `notAfter ${cert.notAfter.toISOString()} is before ${at.toISOString()} (advisory: EK certificates outlive their dates)`));
  } else if (at.getTime() < cert.notBefore.getTime()) {
    checks.push(warn('ekcert.validity', 'leaf.not-yet-valid', `notBefore ${cert.notBefore.toISOString()} is after ${at.toISOString()}`));
  } else {
    checks.push(pass('ekcert.validity', 'validity.current', `valid from ${cert.notBefore.toISOString()} to ${cert.notAfter.toISOString()}`));
  }

  const bc = cert.basicConstraints;
  if (bc === undefined) checks.push(warn('ekcert.basic-constraints', 'basic-constraints.absent', 'no basicConstraints (the profile asks for CA:FALSE)'));
  else if (bc.ca) checks.push(fail('ekcert.basic-constraints', 'leaf.is-ca', 'the EK certificate claims to be a CA'));
  else checks.push(pass('ekcert.basic-constraints', 'ca.false', 'basicConstraints CA:FALSE'));

  // EK Credential Profile §3.2.7: keyEncipherment for RSA EKs, keyAgreement for ECC EKs.
  const wantUsage: KeyUsageName | undefined = cert.publicKey.kind === 'rsa' ? 'keyEncipherment' : cert.publicKey.kind === 'ecc' ? 'keyAgreement' : undefined;
  if (cert.keyUsage === undefined) checks.push(warn('ekcert.key-usage', 'key-usage.absent', 'no keyUsage extension'));
  else if (wantUsage !== undefined && !cert.keyUsage.includes(wantUsage)) {
    checks.push(fail('ekcert.key-usage', 'key-usage.wrong', `keyUsage ${cert.keyUsage.join(',') || '(none)'} lacks ${wantUsage}`));
  } else checks.push(pass('ekcert.key-usage', 'key-usage.ok', `keyUsage ${cert.keyUsage.join(',')}`));

  const eku = cert.extendedKeyUsage;
  if (eku === undefined) checks.push(warn('ekcert.eku', 'eku.absent', `no extendedKeyUsage (tcg-kp-EKCertificate ${TCG_OID.ekCertificate} expected)`));
  else if (eku.includes(TCG_OID.ekCertificate)) checks.push(pass('ekcert.eku', 'eku.ek-certificate', `extendedKeyUsage holds ${TCG_OID.ekCertificate}`));
  else if (eku.includes(OID.anyExtendedKeyUsage)) checks.push(warn('ekcert.eku', 'eku.any', 'extendedKeyUsage anyExtendedKeyUsage instead of tcg-kp-EKCertificate'));
  else checks.push(fail('ekcert.eku', 'eku.not-ek', `extendedKeyUsage ${eku.join(',')} does not include tcg-kp-EKCertificate`));

  const tpm = cert.tpm;
  if (tpm === undefined) checks.push(warn('ekcert.tpm-attributes', 'tpm-attributes.absent', 'no TPM manufacturer/model/version in the subjectAltName'));
  else if (tpm.manufacturer === undefined || tpm.model === undefined || tpm.version === undefined) {
    checks.push(warn('ekcert.tpm-attributes', 'tpm-attributes.incomplete', `subjectAltName lacks ${['manufacturer', 'model', 'version'].filter((k) => tpm[k as 'model'] === undefined).join(', ')}`));
  } else {
    checks.push(pass('ekcert.tpm-attributes', 'tpm-attributes.present', `manufacturer ${tpm.manufacturer}, model ${tpm.model}, version ${tpm.version}`));
  }

  checks.push(
    cert.unknownCriticalExtensions.length === 0
      ? pass('ekcert.extensions', 'extensions.understood', 'no critical extension this verifier does not understand')
      : fail('ekcert.extensions', 'extension.unknown-critical', `critical extension(s) not understood: ${cert.unknownCriticalExtensions.join(', ')} (RFC 5280 §4.2)`),
  );

  checks.push(options.ekPublic === undefined ? notPerformed('ekcert.public-key', 'key.not-given', 'no EK public area to compare with') : compareEkPublicKey(cert, options.ekPublic));
  checks.push(...crossCheckDescription(cert, options.description));
  return checks;
}

/** The SAN's TPM attributes against the TPM's own report (TPM_PT_MANUFACTURER, vendor strings, firmware version). */
function crossCheckDescription(cert: ParsedCertificate, d: TpmDescription | undefined): Check[] {
  const tpm = cert.tpm;
  if (d === undefined) {
    return ['ekcert.manufacturer', 'ekcert.model', 'ekcert.version'].map((c) => notPerformed(c, 'description.not-given', 'no TPM description to compare with'));
  }
  const out: Check[] = [];
  const claimed = `${d.manufacturer} (0x${(d.manufacturerId >>> 0).toString(16).padStart(8, '0')})`;
  if (tpm?.manufacturerId === undefined) {
    out.push(notPerformed('ekcert.manufacturer', 'manufacturer.not-in-certificate', 'the certificate names no tpmManufacturer in id: form'));
  } else if (tpm.manufacturerId === d.manufacturerId >>> 0) {
    out.push(pass('ekcert.manufacturer', 'manufacturer.match', `certificate and TPM both say ${claimed}`));
  } else if (tpm.manufacturerId === SWTPM_SAN_MANUFACTURER && d.manufacturerId >>> 0 === IBM_MANUFACTURER) {
    out.push(pass('ekcert.manufacturer', 'manufacturer.swtpm-quirk', 'swtpm: the certificate says id:00001014 (libtpms TPMAttributes), the TPM says IBM'));
  } else {
    out.push(fail('ekcert.manufacturer', 'manufacturer.mismatch', `certificate says ${tpm.manufacturer}, the TPM says ${claimed}`));
  }

  if (tpm?.model === undefined) {
    out.push(notPerformed('ekcert.model', 'model.not-in-certificate', 'the certificate names no tpmModel'));
  } else {
    const vendor = normalizeModel(d.vendorString);
    // Vendors write the model differently in the certificate and the vendor strings ("SLB 9665" vs "SLB9665…", "NPCT42x/NPCT50x").
    const alternatives = tpm.model.split('/').map(normalizeModel).filter((s) => s.length > 0);
    const match = vendor.length > 0 && alternatives.some((m) => vendor.includes(m) || m.includes(vendor));
    out.push(
      match
        ? pass('ekcert.model', 'model.match', `tpmModel "${tpm.model}" agrees with the vendor string "${d.vendorString}"`)
        : warn('ekcert.model', 'model.mismatch', `tpmModel "${tpm.model}" does not appear in the vendor string "${d.vendorString}"`),
    );
  }

  if (tpm?.versionId === undefined) {
    out.push(notPerformed('ekcert.version', 'version.not-in-certificate', 'the certificate names no tpmVersion in id: form'));
  } else {
    // tpmVersion is the firmware at manufacturing, compared with FIRMWARE_VERSION_1: Nuvoton writes that word as is
    // (id:00070002), Infineon a shorter major/minor form (id:053f for 5.63), so only a lower value counts as odd;
    // a firmware update raises it legitimately.
    const current = Number(d.firmwareVersion >> 32n) >>> 0;
    const certified = tpm.versionId;
    const show = (v: number): string => `0x${v.toString(16).padStart(8, '0')}`;
    if (current === certified) out.push(pass('ekcert.version', 'version.match', `firmware ${show(current)} as certified`));
    else if (current > certified) out.push(pass('ekcert.version', 'version.newer', `firmware ${show(current)} is newer than the certified ${show(certified)}`));
    else out.push(warn('ekcert.version', 'version.older', `firmware ${show(current)} is older than the certified ${show(certified)}`));
  }
  return out;
}
