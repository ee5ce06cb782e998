/**
 * Manufacture of a software TPM: EK certificates for the low-range EK
 * templates (TCG EK Credential Profile 2.x, "Template L-1" RSA-2048 and
 * "Template L-2" ECC P-256; src/tpm/templates.ts), issued by a CA of this
 * installation and stored where real TPMs keep them (PC Client PTP: NV
 * indices 0x01C00002 and 0x01C0000A, platform-created so that TPM2_Clear
 * keeps them).
 *
 * The CA (design.md "Identity") has the subject
 * `CN=trustroot software TPM CA, O=trustroot`, so a verifier that trusts it
 * can tell this software TPM by its chain (src/attest/classify.ts). Each
 * installation makes its own: `loadOrCreateSoftwareTpmCa(dir)` keeps the pair
 * as PEM files in a folder created atomically; `defaultSoftwareTpmCaDir()`
 * says which (`$TRUSTROOT_HOME/sw-tpm-ca`, else `sw-tpm-ca` beside the state
 * folder). An engine made without a CA gets no EK certificates.
 *
 * Manufacture defines both indices; each certificate is made when its index
 * is first read (NV_ReadPublic, NV_Read and NV_Certify call
 * `ensureEkCertificate`, and save the state before they answer). The RSA EK
 * needs an RSA-2048 derivation (a prime search), so a thousand engines do not
 * pay a thousand of them up front; in an engine the ECC one is made the same
 * way because a constructor cannot wait for a key derivation (`tpm serve`
 * makes it before it serves, src/cli/tpm.ts). The indices
 * exist from the start (GetCapability lists them), with a size of 0 until
 * their certificate is made.
 */
import { createHash, createPublicKey, generateKeyPairSync, randomBytes, sign as nodeSign, type KeyObject, createPrivateKey } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import {
  AlgorithmIdentifier,
  AttributeTypeAndValue,
  AttributeValue,
  Attribute,
  AuthorityKeyIdentifier,
  BasicConstraints,
  Certificate,
  ExtendedKeyUsage,
  Extension,
  Extensions,
  GeneralName,
  KeyIdentifier,
  KeyUsage,
  KeyUsageFlags,
  Name,
  RelativeDistinguishedName,
  SubjectAlternativeName,
  SubjectDirectoryAttributes,
  SubjectKeyIdentifier,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Validity,
  Version,
} from '@peculiar/asn1-x509';
import { TPM_ALG, TPM_NT, TPM_RH } from '../tpm/constants.js';
import { StateError } from '../tpm/errors.js';
import { TPM_RC, TpmError } from '../tpm/rc.js';
import { publicKeyFromArea } from '../tpm/secret.js';
import { eccEkTemplate, rsaEkTemplate } from '../tpm/templates.js';
import { TPMA_NV, type TPMT_PUBLIC } from '../tpm/types/index.js';
import type { TpmEngine } from './engine.js';
import { padEkCertificate } from './faults.js';
import { derivePrimary } from './handlers/object.js';
import type { NvIndexState, SimulatorState } from './state.js';

/** A CA that issues this installation's EK certificates. */
export interface SoftwareTpmCa {
  /** The CA certificate, DER. */
  readonly certificate: Uint8Array;
  /** Its private key (EC P-256). */
  readonly privateKey: KeyObject;
}

/** TpmEngineOptions.manufacture: what a fresh TPM is provisioned with. */
export interface ManufactureOptions {
  readonly ca: SoftwareTpmCa;
}

/** design.md "Identity": the issuer a verifier recognizes as trustroot's software TPM. */
export const SOFTWARE_TPM_CA_SUBJECT = { commonName: 'trustroot software TPM CA', organization: 'trustroot' } as const;

/** TCG OIDs of an EK certificate (EK Credential Profile §3.2; tpm-spec-facts.md §8). */
const OID = {
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  tpmManufacturer: '2.23.133.2.1',
  tpmModel: '2.23.133.2.2',
  tpmVersion: '2.23.133.2.3',
  ekCertificate: '2.23.133.8.1',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  subjectDirectoryAttributes: '2.5.29.9',
  tpmSpecification: '2.23.133.2.16',
} as const;

/**
 * The TPM specification the certificates name (TPM_PT_FAMILY_INDICATOR,
 * TPM_PT_LEVEL and TPM_PT_REVISION as capability.ts reports them).
 */
export const TPM_SPECIFICATION = { family: '2.0', level: 0, revision: 159 } as const;

/** What the SAN says about this TPM: TPM_PT_MANUFACTURER "TRST", the vendor string, FIRMWARE_VERSION_1. */
export interface TpmIdentity {
  readonly manufacturer: string;
  readonly model: string;
  readonly firmwareVersion1: number;
}

/** The EK certificate indices this TPM is manufactured with (PC Client PTP; tpm-spec-facts.md §8). */
export const EK_CERTIFICATE_INDICES = { rsa2048: 0x01c00002, eccP256: 0x01c0000a } as const;

const EK_TEMPLATES: ReadonlyMap<number, () => TPMT_PUBLIC> = new Map([
  [EK_CERTIFICATE_INDICES.rsa2048, rsaEkTemplate],
  [EK_CERTIFICATE_INDICES.eccP256, eccEkTemplate],
]);

/**
 * The attributes of an EK certificate index as TPMs ship them: defined by
 * the platform (PLATFORMCREATE, so TPM2_Clear keeps it), written once by the
 * platform and locked for good (PPWRITE, WRITEDEFINE, WRITELOCKED), readable
 * by the platform, the owner and with the index's empty authValue (PPREAD,
 * OWNERREAD, AUTHREAD), exempt from dictionary-attack lockout (NO_DA).
 */
export const EK_CERTIFICATE_NV_ATTRIBUTES = TPMA_NV.of({
  PPWRITE: true,
  WRITEDEFINE: true,
  WRITELOCKED: true,
  PPREAD: true,
  OWNERREAD: true,
  AUTHREAD: true,
  NO_DA: true,
  WRITTEN: true,
  PLATFORMCREATE: true,
  TPM_NT: TPM_NT.ORDINARY,
});

// ---------------------------------------------------------------------------
// X.509

function rdn(type: string, value: string): RelativeDistinguishedName {
  return new RelativeDistinguishedName([new AttributeTypeAndValue({ type, value: new AttributeValue({ utf8String: value }) })]);
}

function caName(): Name {
  return new Name([rdn(OID.commonName, SOFTWARE_TPM_CA_SUBJECT.commonName), rdn(OID.organization, SOFTWARE_TPM_CA_SUBJECT.organization)]);
}

function extension(extnID: string, critical: boolean, value: unknown): Extension {
  return new Extension({ extnID, critical, extnValue: new OctetString(AsnConvert.serialize(value)) });
}

function keyUsage(flags: number): KeyUsage {
  return new KeyUsage(flags);
}

function spkiOf(key: KeyObject): SubjectPublicKeyInfo {
  return AsnConvert.parse(key.export({ type: 'spki', format: 'der' }), SubjectPublicKeyInfo);
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING's bits. */
function keyIdentifier(spki: SubjectPublicKeyInfo): Uint8Array {
  return new Uint8Array(createHash('sha1').update(new Uint8Array(spki.subjectPublicKey)).digest());
}

/** A positive 16-byte serial number (RFC 5280 §4.1.2.2: at most 20 octets, positive). */
function serialNumber(random: (n: number) => Uint8Array): ArrayBuffer {
  const s = Uint8Array.from(random(16));
  s[0] = (s[0]! & 0x7f) | 0x40;
  return s.buffer;
}

function arrayBuffer(b: Uint8Array): ArrayBuffer {
  return Uint8Array.from(b).buffer;
}

/** Signs a TBSCertificate with the CA key (ECDSA P-256 SHA-256, RFC 5758 §3.2) and returns the certificate's DER. */
function signCertificate(tbs: TBSCertificate, caKey: KeyObject): Uint8Array {
  const tbsDer = new Uint8Array(AsnConvert.serialize(tbs));
  const signature = nodeSign('sha256', tbsDer, caKey);
  const cert = new Certificate({ tbsCertificate: tbs, signatureAlgorithm: new AlgorithmIdentifier({ algorithm: OID.ecdsaWithSha256 }), signatureValue: arrayBuffer(signature) });
  return new Uint8Array(AsnConvert.serialize(cert));
}

/** RFC 5280 §4.1.2.5: 99991231235959Z for "no well-defined expiration date" (EK certificates outlive any date). */
const NO_EXPIRY = new Date(Date.UTC(9999, 11, 31, 23, 59, 59));

/**
 * A new CA for this installation: an EC P-256 key and a self-signed
 * certificate `CN=trustroot software TPM CA, O=trustroot` (CA:TRUE,
 * keyCertSign/cRLSign, no expiry).
 */
export function createSoftwareTpmCa(options: { now?: Date } = {}): SoftwareTpmCa {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = spkiOf(publicKey);
  const id = keyIdentifier(spki);
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: serialNumber((n) => new Uint8Array(randomBytes(n))),
    signature: new AlgorithmIdentifier({ algorithm: OID.ecdsaWithSha256 }),
    issuer: caName(),
    validity: new Validity({ notBefore: options.now ?? new Date(), notAfter: NO_EXPIRY }),
    subject: caName(),
    subjectPublicKeyInfo: spki,
    extensions: new Extensions([
      extension(OID.basicConstraints, true, new BasicConstraints({ cA: true })),
      extension(OID.keyUsage, true, keyUsage(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign)),
      extension(OID.subjectKeyIdentifier, false, new SubjectKeyIdentifier(arrayBuffer(id))),
    ]),
  });
  return { certificate: signCertificate(tbs, privateKey), privateKey };
}

/**
 * An EK certificate (EK Credential Profile §3.2): empty subject, the TPM's
 * manufacturer, model and version in a critical subjectAltName directoryName,
 * the TPM specification in subjectDirectoryAttributes,
 * CA:FALSE, keyEncipherment (RSA) or keyAgreement (ECC), EKU
 * tcg-kp-EKCertificate, issued by `ca` with no expiry.
 */
export function issueEkCertificate(
  ca: SoftwareTpmCa,
  ekPublic: TPMT_PUBLIC,
  identity: TpmIdentity,
  options: { random?: (n: number) => Uint8Array; now?: Date } = {},
): Uint8Array {
  const caCert = AsnConvert.parse(ca.certificate, Certificate);
  const caKeyId = keyIdentifier(caCert.tbsCertificate.subjectPublicKeyInfo);
  const spki = spkiOf(publicKeyFromArea(ekPublic));
  const san = new SubjectAlternativeName([
    new GeneralName({
      directoryName: new Name([
        rdn(OID.tpmManufacturer, `id:${hex32(identity.manufacturer.padEnd(4, '\0').split('').reduce((v, c) => (v << 8) | c.charCodeAt(0), 0))}`),
        rdn(OID.tpmModel, identity.model),
        rdn(OID.tpmVersion, `id:${hex32(identity.firmwareVersion1)}`),
      ]),
    }),
  ]);
  const usage = ekPublic.type === TPM_ALG.RSA ? KeyUsageFlags.keyEncipherment : KeyUsageFlags.keyAgreement;
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: serialNumber(options.random ?? ((n) => new Uint8Array(randomBytes(n)))),
    signature: new AlgorithmIdentifier({ algorithm: OID.ecdsaWithSha256 }),
    issuer: caCert.tbsCertificate.subject,
    validity: new Validity({ notBefore: options.now ?? new Date(), notAfter: NO_EXPIRY }),
    subject: new Name([]),
    subjectPublicKeyInfo: spki,
    extensions: new Extensions([
      extension(OID.basicConstraints, true, new BasicConstraints({ cA: false })),
      extension(OID.keyUsage, true, keyUsage(usage)),
      extension(OID.extKeyUsage, false, new ExtendedKeyUsage([OID.ekCertificate])),
      // RFC 5280 §4.2.1.6: with an empty subject the SAN is critical.
      extension(OID.subjectAltName, true, san),
      extension(OID.authorityKeyIdentifier, false, new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(arrayBuffer(caKeyId)) })),
      extension(OID.subjectDirectoryAttributes, false, new SubjectDirectoryAttributes([new Attribute({ type: OID.tpmSpecification, values: [tpmSpecificationDer()] })])),
    ]),
  });
  return signCertificate(tbs, ca.privateKey);
}

/** DER of a small non-negative INTEGER (X.690 §8.3: two's complement, minimal, a leading 0 for the sign). */
function derSmallInteger(v: number): number[] {
  const bytes: number[] = [];
  for (let x = v; bytes.length === 0 || x > 0; x >>>= 8) bytes.unshift(x & 0xff);
  if (bytes[0]! & 0x80) bytes.unshift(0);
  return [0x02, bytes.length, ...bytes];
}

/** TPMSpecification ::= SEQUENCE { family UTF8String, level INTEGER, revision INTEGER } (EK Credential Profile §3.2.11). */
function tpmSpecificationDer(): ArrayBuffer {
  const family = [...Buffer.from(TPM_SPECIFICATION.family, 'utf8')];
  const body = [0x0c, family.length, ...family, ...derSmallInteger(TPM_SPECIFICATION.level), ...derSmallInteger(TPM_SPECIFICATION.revision)];
  return Uint8Array.from([0x30, body.length, ...body]).buffer;
}

function hex32(v: number): string {
  return (v >>> 0).toString(16).toUpperCase().padStart(8, '0');
}

// ---------------------------------------------------------------------------
// The CA on disk

const CA_CERT_FILE = 'ca-cert.pem';
const CA_KEY_FILE = 'ca-key.pem';

/**
 * Where an installation keeps its software TPM CA: `$TRUSTROOT_HOME/sw-tpm-ca`
 * when TRUSTROOT_HOME is set, else `sw-tpm-ca` in the folder that holds the
 * state folder (so the TPMs served from sibling folders share one CA), else
 * `~/.trustroot/sw-tpm-ca`.
 */
export function defaultSoftwareTpmCaDir(stateDir?: string, env: NodeJS.ProcessEnv = process.env): string {
  const home = env['TRUSTROOT_HOME'];
  if (home !== undefined && home !== '') return join(home, 'sw-tpm-ca');
  if (stateDir !== undefined) return join(dirname(stateDir), 'sw-tpm-ca');
  return join(homedir(), '.trustroot', 'sw-tpm-ca');
}

function pem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

function unpem(text: string, label: string, file: string): Uint8Array {
  const m = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]+)-----END ${label}-----`).exec(text);
  if (m === null) throw new StateError('state.corrupt', `no ${label} PEM block`, file);
  return new Uint8Array(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
}

async function readCa(dir: string): Promise<SoftwareTpmCa> {
  const certFile = join(dir, CA_CERT_FILE);
  const keyFile = join(dir, CA_KEY_FILE);
  const certificate = unpem(await readFile(certFile, 'utf8'), 'CERTIFICATE', certFile);
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: await readFile(keyFile, 'utf8'), format: 'pem' });
  } catch (cause) {
    throw new StateError('state.corrupt', 'not a PEM private key', keyFile, { cause });
  }
  // The pair must belong together: a CA that signs with another key than its certificate's makes unverifiable chains.
  const certKey = AsnConvert.parse(certificate, Certificate).tbsCertificate.subjectPublicKeyInfo;
  const mine = new Uint8Array(createPublicKey(privateKey).export({ type: 'spki', format: 'der' }));
  if (!Buffer.from(AsnConvert.serialize(certKey)).equals(mine)) throw new StateError('state.corrupt', 'the CA key does not match the CA certificate', dir);
  return { certificate, privateKey };
}

/**
 * The installation's CA in `dir` (ca-cert.pem, ca-key.pem with mode 0600),
 * made when the folder does not exist. The folder is written under a
 * temporary name and renamed into place, so a reader sees both files or
 * none, and of two processes creating it at once one wins and both use it.
 * @throws StateError `state.corrupt` for a folder whose files do not parse or do not belong together; fs errors.
 */
export async function loadOrCreateSoftwareTpmCa(dir: string): Promise<SoftwareTpmCa> {
  try {
    return await readCa(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  await mkdir(dirname(dir), { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const ca = createSoftwareTpmCa();
  await mkdir(tmp, { mode: 0o700 });
  try {
    await writeFile(join(tmp, CA_CERT_FILE), pem('CERTIFICATE', ca.certificate), { mode: 0o644, flush: true });
    await writeFile(join(tmp, CA_KEY_FILE), ca.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600, flush: true });
    await rename(tmp, dir);
    // The rename is durable once the parent folder's entry is (POSIX: fsync of the directory), before any TPM uses the CA.
    const parent = await open(dirname(dir), 'r');
    try {
      await parent.sync();
    } finally {
      await parent.close();
    }
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    const code = (e as NodeJS.ErrnoException).code;
    // Another process renamed its folder first: use that one.
    if (code === 'ENOTEMPTY' || code === 'EEXIST') return readCa(dir);
    throw e;
  }
  return ca;
}

// ---------------------------------------------------------------------------
// Provisioning the engine

/** tpmModel of the certificates: the vendor string the TPM reports (TPM_PT_VENDOR_STRING_1–4, capability.ts). */
export const SOFTWARE_TPM_MODEL = 'trustroot SW TPM';

function certificateIndex(nvIndex: number): NvIndexState {
  return {
    nvIndex,
    nameAlg: TPM_ALG.SHA256,
    attributes: TPMA_NV.toWord(EK_CERTIFICATE_NV_ATTRIBUTES),
    authPolicy: new Uint8Array(0),
    authValue: new Uint8Array(0),
    dataSize: 0,
    data: new Uint8Array(0),
  };
}

/**
 * Provisions a TPM that has no EK certificates yet (ekCertificates.provisioned
 * false): defines the two certificate indices, their certificates pending
 * until first read (ensureEkCertificate). An index the platform already
 * defined at one of those handles is left alone. Synchronous, so an engine's
 * constructor can do it; returns whether the state changed.
 * @param firmwareVersion1 TPM_PT_FIRMWARE_VERSION_1 at manufacture, the certificates' tpmVersion.
 */
export function provisionEkCertificates(state: SimulatorState, firmwareVersion1: number): boolean {
  const ek = state.ekCertificates;
  if (ek.provisioned) return false;
  for (const h of [EK_CERTIFICATE_INDICES.eccP256, EK_CERTIFICATE_INDICES.rsa2048]) {
    if (state.nvIndices.some((n) => n.nvIndex === h)) continue;
    state.nvIndices.push(certificateIndex(h));
    ek.pending.push(h);
  }
  ek.provisioned = true;
  ek.firmwareVersion1 = firmwareVersion1 >>> 0;
  return true;
}

/**
 * Makes the certificate of a pending EK certificate index (see the module
 * comment); call before anything reads the index's size or data.
 * Returns whether the state changed (the caller persists it).
 * @throws TpmError TPM_RC_NV_UNAVAILABLE when the certificate is pending and the engine has no CA to issue it.
 */
export async function ensureEkCertificate(engine: TpmEngine, nvIndex: number): Promise<boolean> {
  const ek = engine.state.ekCertificates;
  if (!ek.pending.includes(nvIndex)) return false;
  const drop = (): void => {
    ek.pending = ek.pending.filter((h) => h !== nvIndex);
  };
  const nv = engine.state.nvIndices.find((n) => n.nvIndex === nvIndex);
  const template = EK_TEMPLATES.get(nvIndex);
  // Undefined by the platform since, or redefined as something else: nothing to fill in.
  if (nv === undefined || template === undefined || nv.dataSize !== 0 || nv.attributes !== TPMA_NV.toWord(EK_CERTIFICATE_NV_ATTRIBUTES)) {
    drop();
    return true;
  }
  const ca = engine.manufacture?.ca;
  if (ca === undefined) throw new TpmError(TPM_RC.NV_UNAVAILABLE);
  // The EK exactly as CreatePrimary derives it, through the engine's primary cache: a CreatePrimary of the
  // same template (tpm2_createek after reading the certificate) then costs no second RSA derivation.
  const derived = await derivePrimary(engine, TPM_RH.ENDORSEMENT, template(), { userAuth: new Uint8Array(0), data: new Uint8Array(0) });
  // Another command may have filled it while the key was derived.
  if (!ek.pending.includes(nvIndex)) return false;
  const identity: TpmIdentity = { manufacturer: 'TRST', model: SOFTWARE_TPM_MODEL, firmwareVersion1: ek.firmwareVersion1 };
  const der = issueEkCertificate(ca, derived.publicArea, identity, { random: engine.random });
  // TEST ONLY padding (faults.ts): zeros after the DER, as some real TPMs store it.
  const stored = padEkCertificate(der, engine.faults.ekCertificatePadding);
  nv.data = stored;
  nv.dataSize = stored.length;
  drop();
  return true;
}
