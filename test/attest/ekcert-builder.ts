/**
 * Test helper: X.509 certificates built by hand (a few DER helpers and
 * node:crypto signatures), so tests can make CA hierarchies with expired
 * intermediates, wrong CA flags, unknown critical extensions, mismatched
 * signature algorithms, PSS signatures and deliberately non-DER encodings —
 * things no CA tool writes on request. Independent of src/attest: it shares
 * no code with the parser it feeds.
 */
import { createHash, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { TPM_ALG, TPM_PT } from '../../src/tpm/constants.js';
import { describeTpm, type TpmDescription } from '../../src/tpm/description.js';
import { eccEkTemplate, ekTemplate, rsaEkTemplate } from '../../src/tpm/templates.js';
import type { TPMT_PUBLIC } from '../../src/tpm/types/index.js';

// ---------------------------------------------------------------------------
// DER

function lengthOctets(n: number): number[] {
  if (n < 0x80) return [n];
  const out: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) out.unshift(v & 0xff);
  return [0x80 | out.length, ...out];
}

export function tlv(tag: number, ...parts: Uint8Array[]): Uint8Array {
  const body = Buffer.concat(parts);
  return Uint8Array.from([tag, ...lengthOctets(body.length), ...body]);
}
export const seq = (...p: Uint8Array[]): Uint8Array => tlv(0x30, ...p);
export const set = (...p: Uint8Array[]): Uint8Array => tlv(0x31, ...p);
export const ctx = (n: number, ...p: Uint8Array[]): Uint8Array => tlv(0xa0 | n, ...p);
export const octets = (b: Uint8Array): Uint8Array => tlv(0x04, b);
export const bits = (b: Uint8Array, unused = 0): Uint8Array => tlv(0x03, Uint8Array.of(unused), b);
export const utf8 = (s: string): Uint8Array => tlv(0x0c, Buffer.from(s, 'utf8'));
export const printable = (s: string): Uint8Array => tlv(0x13, Buffer.from(s, 'latin1'));
export const bool = (v: boolean): Uint8Array => tlv(0x01, Uint8Array.of(v ? 0xff : 0));
export const NULL = Uint8Array.of(0x05, 0x00);

export function oid(text: string): Uint8Array {
  const arcs = text.split('.').map((a) => BigInt(a));
  const out: number[] = [];
  const push = (v: bigint): void => {
    const b: number[] = [Number(v & 0x7fn)];
    for (let x = v >> 7n; x > 0n; x >>= 7n) b.unshift(Number(x & 0x7fn) | 0x80);
    out.push(...b);
  };
  push(arcs[0]! * 40n + arcs[1]!);
  arcs.slice(2).forEach(push);
  return tlv(0x06, Uint8Array.from(out));
}

export function int(v: number | bigint | Uint8Array): Uint8Array {
  if (v instanceof Uint8Array) return tlv(0x02, v);
  let x = BigInt(v);
  const out: number[] = [];
  do {
    out.unshift(Number(x & 0xffn));
    x >>= 8n;
  } while (x > 0n);
  if (out[0]! & 0x80) out.unshift(0);
  return tlv(0x02, Uint8Array.from(out));
}

function time(d: Date): Uint8Array {
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  const y = d.getUTCFullYear();
  const body = `${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
  // RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
  return y < 2050 && y >= 1950 ? tlv(0x17, Buffer.from(`${p(y % 100)}${body}`)) : tlv(0x18, Buffer.from(`${p(y, 4)}${body}`));
}

// ---------------------------------------------------------------------------
// Names, keys, extensions

export const OIDS = {
  cn: '2.5.4.3',
  o: '2.5.4.10',
  c: '2.5.4.6',
  tpmManufacturer: '2.23.133.2.1',
  tpmModel: '2.23.133.2.2',
  tpmVersion: '2.23.133.2.3',
  ekCertificate: '2.23.133.8.1',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  nameConstraints: '2.5.29.30',
} as const;

/** A Name from RDNs, each a list of [type OID, value]; PrintableString values. */
export function name(...rdns: (readonly [string, string])[][]): Uint8Array {
  return seq(...rdns.map((rdn) => set(...rdn.map(([t, v]) => seq(oid(t), printable(v))))));
}
export const cn = (v: string, org?: string): Uint8Array => name([[OIDS.cn, v]], ...(org === undefined ? [] : [[[OIDS.o, org] as const]]));

export function spkiOf(key: KeyObject): Uint8Array {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return new Uint8Array(pub.export({ type: 'spki', format: 'der' }));
}

export function keyId(key: KeyObject): Uint8Array {
  // RFC 5280 §4.2.1.2 leaves the method open; SHA-1 of the whole SPKI is unique enough for tests.
  return new Uint8Array(createHash('sha1').update(spkiOf(key)).digest());
}

export interface Ext {
  readonly oid: string;
  readonly critical?: boolean;
  /** Encode `critical FALSE` explicitly (BER, the DEFAULT encoded). */
  readonly explicitFalse?: boolean;
  readonly value: Uint8Array;
}

export function ext(e: Ext): Uint8Array {
  return seq(oid(e.oid), ...(e.critical ? [bool(true)] : e.explicitFalse ? [bool(false)] : []), octets(e.value));
}

const KU = ['digitalSignature', 'nonRepudiation', 'keyEncipherment', 'dataEncipherment', 'keyAgreement', 'keyCertSign', 'cRLSign'] as const;
export function keyUsage(...names: (typeof KU)[number][]): Ext {
  let v = 0;
  for (const n of names) v |= 0x80 >> KU.indexOf(n);
  // Trailing zero bits are unused (DER named-bit rule, X.690 §11.2.2).
  let unused = 0;
  while (unused < 7 && v !== 0 && (v & (1 << unused)) === 0) unused++;
  return { oid: OIDS.keyUsage, critical: true, value: tlv(0x03, Uint8Array.of(v === 0 ? 0 : unused), ...(v === 0 ? [] : [Uint8Array.of(v)])) };
}
export function basicConstraints(ca: boolean, pathLength?: number): Ext {
  return { oid: OIDS.basicConstraints, critical: true, value: seq(...(ca ? [bool(true)] : []), ...(pathLength === undefined ? [] : [int(pathLength)])) };
}
export function eku(...oids: string[]): Ext {
  return { oid: OIDS.extKeyUsage, value: seq(...oids.map(oid)) };
}
/** SAN with a directoryName of TPM attributes (EK Credential Profile §3.2.9), one RDN each. */
export function tpmSan(manufacturer: string, model: string, version: string, critical = true): Ext {
  const dn = name([[OIDS.tpmManufacturer, manufacturer]], [[OIDS.tpmModel, model]], [[OIDS.tpmVersion, version]]);
  return { oid: OIDS.subjectAltName, critical, value: seq(ctx(4, dn)) };
}

// ---------------------------------------------------------------------------
// Certificates

export type SignatureChoice = 'auto' | 'sha1' | 'pss';

export interface CertSpec {
  readonly subject: Uint8Array;
  readonly issuer: Uint8Array;
  /** The certified key (public or private). */
  readonly key: KeyObject;
  /** The issuer's private key. */
  readonly signer: KeyObject;
  /** The issuer's key, for the authorityKeyIdentifier (default: from signer). */
  readonly issuerKey?: KeyObject;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly serial?: number | Uint8Array;
  readonly extensions?: readonly Ext[];
  /** Add subject/authority key identifiers (default true). */
  readonly keyIds?: boolean;
  readonly signature?: SignatureChoice;
  /** Put another algorithm in the outer signatureAlgorithm than in the TBS. */
  readonly outerAlgorithm?: Uint8Array;
  /** Rewrite the TBS before it is signed (to make non-DER encodings the issuer really signed). */
  readonly mutateTbs?: (tbs: Uint8Array) => Uint8Array;
  /** Override the SPKI (e.g. an RSAES-OAEP one). */
  readonly spki?: Uint8Array;
  /** Rewrite the signature value after signing (e.g. a non-DER ECDSA-Sig-Value). */
  readonly mutateSignature?: (signature: Uint8Array) => Uint8Array;
}

function signatureAlgorithm(signer: KeyObject, choice: SignatureChoice): { alg: Uint8Array; hash: string; pss: boolean } {
  if (signer.asymmetricKeyType === 'rsa') {
    if (choice === 'pss') {
      const sha256 = seq(oid('2.16.840.1.101.3.4.2.1'), NULL);
      const params = seq(ctx(0, sha256), ctx(1, seq(oid('1.2.840.113549.1.1.8'), sha256)), ctx(2, int(32)));
      return { alg: seq(oid('1.2.840.113549.1.1.10'), params), hash: 'sha256', pss: true };
    }
    return choice === 'sha1'
      ? { alg: seq(oid('1.2.840.113549.1.1.5'), NULL), hash: 'sha1', pss: false }
      : { alg: seq(oid('1.2.840.113549.1.1.11'), NULL), hash: 'sha256', pss: false };
  }
  const curve = signer.asymmetricKeyDetails?.namedCurve;
  if (curve === 'secp384r1') return { alg: seq(oid('1.2.840.10045.4.3.3')), hash: 'sha384', pss: false };
  return { alg: seq(oid('1.2.840.10045.4.3.2')), hash: 'sha256', pss: false };
}

export function makeCert(spec: CertSpec): Uint8Array {
  const sa = signatureAlgorithm(spec.signer, spec.signature ?? 'auto');
  const spki = spec.spki ?? spkiOf(spec.key);
  const ids = spec.keyIds ?? true;
  const exts: Uint8Array[] = (spec.extensions ?? []).map(ext);
  if (ids) {
    exts.push(ext({ oid: OIDS.subjectKeyIdentifier, value: octets(keyId(spec.key)) }));
    exts.push(ext({ oid: OIDS.authorityKeyIdentifier, value: seq(tlv(0x80, keyId(spec.issuerKey ?? spec.signer))) }));
  }
  let tbs = seq(
    ctx(0, int(2)),
    int(spec.serial ?? 1),
    sa.alg,
    spec.issuer,
    seq(time(spec.notBefore), time(spec.notAfter)),
    spec.subject,
    spki,
    ...(exts.length > 0 ? [ctx(3, seq(...exts))] : []),
  );
  if (spec.mutateTbs) tbs = spec.mutateTbs(tbs);
  const signature = sign(sa.hash, tbs, sa.pss ? { key: spec.signer, padding: 6 /* RSA_PKCS1_PSS_PADDING */, saltLength: 32 } : spec.signer);
  const value = spec.mutateSignature ? spec.mutateSignature(new Uint8Array(signature)) : new Uint8Array(signature);
  return seq(tbs, spec.outerAlgorithm ?? sa.alg, bits(value));
}

export interface Pair {
  readonly publicKey: KeyObject;
  readonly privateKey: KeyObject;
}
export function ecKey(curve: 'P-256' | 'P-384' = 'P-256'): Pair {
  return generateKeyPairSync('ec', { namedCurve: curve === 'P-256' ? 'prime256v1' : 'secp384r1' });
}
export function rsaKey(bits = 2048): Pair {
  return generateKeyPairSync('rsa', { modulusLength: bits });
}

export interface Hierarchy {
  readonly root: Uint8Array;
  readonly intermediate: Uint8Array;
  readonly leaf: Uint8Array;
  readonly keys: { readonly root: Pair; readonly intermediate: Pair; readonly leaf: Pair };
}

export interface HierarchyOptions {
  readonly now: Date;
  readonly rootName?: string;
  readonly intermediate?: Partial<Pick<CertSpec, 'notBefore' | 'notAfter' | 'extensions' | 'signature'>>;
  readonly leaf?: Partial<Pick<CertSpec, 'notBefore' | 'notAfter' | 'extensions' | 'signature' | 'mutateTbs' | 'outerAlgorithm' | 'spki' | 'mutateSignature'>>;
  readonly leafKey?: Pair;
  readonly keys?: { readonly root?: Pair; readonly intermediate?: Pair };
}

const YEAR = 365 * 24 * 3600 * 1000;

/** A test root → intermediate → EK leaf, all valid at `now` unless overridden. */
export function hierarchy(o: HierarchyOptions): Hierarchy {
  const keys = { root: o.keys?.root ?? ecKey('P-384'), intermediate: o.keys?.intermediate ?? ecKey('P-256'), leaf: o.leafKey ?? rsaKey() };
  const rootName = cn(o.rootName ?? 'trustroot test EK root', 'trustroot tests');
  const interName = cn('trustroot test EK intermediate', 'trustroot tests');
  const before = new Date(o.now.getTime() - YEAR);
  const after = new Date(o.now.getTime() + 10 * YEAR);
  const root = makeCert({
    subject: rootName,
    issuer: rootName,
    key: keys.root.publicKey,
    signer: keys.root.privateKey,
    notBefore: before,
    notAfter: after,
    extensions: [basicConstraints(true), keyUsage('keyCertSign', 'cRLSign')],
  });
  const intermediate = makeCert({
    subject: interName,
    issuer: rootName,
    key: keys.intermediate.publicKey,
    signer: keys.root.privateKey,
    notBefore: o.intermediate?.notBefore ?? before,
    notAfter: o.intermediate?.notAfter ?? after,
    serial: 2,
    extensions: o.intermediate?.extensions ?? [basicConstraints(true, 0), keyUsage('keyCertSign')],
    ...(o.intermediate?.signature !== undefined ? { signature: o.intermediate.signature } : {}),
  });
  const leafUsage = keys.leaf.publicKey.asymmetricKeyType === 'rsa' ? keyUsage('keyEncipherment') : keyUsage('keyAgreement');
  const leaf = makeCert({
    subject: seq(),
    issuer: interName,
    key: keys.leaf.publicKey,
    signer: keys.intermediate.privateKey,
    issuerKey: keys.intermediate.publicKey,
    notBefore: o.leaf?.notBefore ?? before,
    notAfter: o.leaf?.notAfter ?? after,
    serial: 3,
    extensions: o.leaf?.extensions ?? [tpmSan('id:49465800', 'SLB9670', 'id:00070055'), basicConstraints(false), leafUsage, eku(OIDS.ekCertificate)],
    ...(o.leaf?.signature !== undefined ? { signature: o.leaf.signature } : {}),
    ...(o.leaf?.mutateTbs !== undefined ? { mutateTbs: o.leaf.mutateTbs } : {}),
    ...(o.leaf?.outerAlgorithm !== undefined ? { outerAlgorithm: o.leaf.outerAlgorithm } : {}),
    ...(o.leaf?.spki !== undefined ? { spki: o.leaf.spki } : {}),
    ...(o.leaf?.mutateSignature !== undefined ? { mutateSignature: o.leaf.mutateSignature } : {}),
  });
  return { root, intermediate, leaf, keys };
}

export function pem(der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN CERTIFICATE-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END CERTIFICATE-----\n`;
}

// ---------------------------------------------------------------------------
// TPM-side stand-ins

/** Four characters as a TPM property word (Part 2 §6.13: packed ASCII, unused bytes zero). */
export function word(s: string): number {
  const b = Buffer.from(s.padEnd(4, '\0').slice(0, 4), 'latin1');
  return b.readUInt32BE(0);
}

/** A TpmDescription as describe() would make it from these GetCapability properties. */
export function tpmDescription(o: { readonly manufacturer: string; readonly vendor?: string; readonly firmware1?: number; readonly firmware2?: number }): TpmDescription {
  const v = (o.vendor ?? '').padEnd(16, '\0');
  return describeTpm({
    properties: [
      { property: TPM_PT.MANUFACTURER, value: word(o.manufacturer) },
      { property: TPM_PT.VENDOR_STRING_1, value: word(v.slice(0, 4)) },
      { property: TPM_PT.VENDOR_STRING_2, value: word(v.slice(4, 8)) },
      { property: TPM_PT.VENDOR_STRING_3, value: word(v.slice(8, 12)) },
      { property: TPM_PT.VENDOR_STRING_4, value: word(v.slice(12, 16)) },
      { property: TPM_PT.FIRMWARE_VERSION_1, value: o.firmware1 ?? 0 },
      { property: TPM_PT.FIRMWARE_VERSION_2, value: o.firmware2 ?? 0 },
    ],
    algorithms: [],
    commands: [],
    pcrs: [],
    eccCurves: [],
  });
}

/** The EK public area a TPM would hold for this key (L-1 for RSA-2048, H-2/H-3 style for P-256/P-384). */
export function ekPublicFor(key: KeyObject): TPMT_PUBLIC {
  const jwk = (key.type === 'private' ? createPublicKey(key) : key).export({ format: 'jwk' });
  if (jwk.kty === 'RSA') {
    const e = Buffer.from(jwk.e!, 'base64url');
    const exponent = e.readUIntBE(0, e.length);
    const t = rsaEkTemplate() as TPMT_PUBLIC & { type: typeof TPM_ALG.RSA };
    return { ...t, parameters: { ...t.parameters, exponent: exponent === 65537 ? 0 : exponent }, unique: new Uint8Array(Buffer.from(jwk.n!, 'base64url')) };
  }
  const t = (jwk.crv === 'P-384' ? ekTemplate('H-3') : eccEkTemplate()) as TPMT_PUBLIC & { type: typeof TPM_ALG.ECC };
  return { ...t, unique: { x: new Uint8Array(Buffer.from(jwk.x!, 'base64url')), y: new Uint8Array(Buffer.from(jwk.y!, 'base64url')) } };
}
