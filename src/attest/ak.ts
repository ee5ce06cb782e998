/**
 * Attestation keys from the verifier's side: what makes a public area an AK
 * the verifier may trust, its Names, and credential activation (the proof
 * that the AK lives in the same TPM as the enrolled EK).
 *
 * An AK must be a restricted signing key generated inside the TPM and bound
 * to it: restricted | sign | fixedTPM | fixedParent | sensitiveDataOrigin,
 * and not decrypt (Part 1 §25.2 "restricted signing keys"; verifier-pitfalls.md,
 * go-attestation activation.go). Only a restricted key refuses to sign a
 * digest of data starting with TPM_GENERATED_VALUE that the TPM did not
 * produce itself (Part 3 §20.2 Sign: a restricted key needs a TPM2_Hash
 * ticket, and TPM2_Hash gives none for such data), which is what lets a
 * verifier believe that a TPMS_ATTEST it signed came from the TPM.
 *
 * Pure: keys are imported with node:crypto, nothing else leaves the process;
 * makeAkCredential draws its secret from crypto.randomBytes.
 */
import { createPublicKey, KeyObject, randomBytes } from 'node:crypto';
import { TPM_ALG, TPM_ECC, TPM_RH } from '../tpm/constants.js';
import { makeCredential } from '../tpm/credential.js';
import { digestSize, isHashAlg, isHashSupported } from '../tpm/crypto/hash.js';
import { EvidenceError, TrustrootError } from '../tpm/errors.js';
import { handleName, objectName, qualifiedName } from '../tpm/names.js';
import { eccCurve, eccCurveByNodeName, publicKeyFromArea } from '../tpm/secret.js';
import { TPM2B_PUBLIC, TPMA_OBJECT, TPMT_PUBLIC } from '../tpm/types/index.js';
import { decode, encode } from '../tpm/wire/codec.js';
import { sameBytes } from './challenge.js';
import { check, fail, notPerformed, pass, verdict, type Check, type Verdict } from './verdict.js';

/** What a verifier requires of an AK beyond its attributes. */
export interface AkPolicy {
  /** Smallest RSA modulus in bits (default 2048). */
  readonly minRsaBits?: number;
  /** Approved curves, TPM_ECC_CURVE values (default NIST P-256, P-384, P-521). */
  readonly curves?: readonly number[];
  /**
   * Accept SHA-1 as the AK's nameAlg and as its signing hash (reported as a
   * warning). Default false: old Windows AKs sign with RSASSA-SHA1.
   */
  readonly allowSha1?: boolean;
}

const DEFAULT_CURVES: readonly number[] = [TPM_ECC.NIST_P256, TPM_ECC.NIST_P384, TPM_ECC.NIST_P521];
/** The attributes that make a key an AK (Part 2 §8.3 TPMA_OBJECT). */
export const AK_REQUIRED_ATTRIBUTES = ['restricted', 'sign', 'fixedTPM', 'fixedParent', 'sensitiveDataOrigin'] as const;

const CURVE_NAMES: ReadonlyMap<number, string> = new Map(Object.entries(TPM_ECC).map(([k, v]) => [v, k]));
function curveName(id: number): string {
  return CURVE_NAMES.get(id) ?? `0x${id.toString(16).padStart(4, '0')}`;
}
function algName(alg: number): string {
  for (const [k, v] of Object.entries(TPM_ALG)) if (v === alg) return k;
  return `0x${alg.toString(16).padStart(4, '0')}`;
}

interface NormalPolicy {
  readonly minRsaBits: number;
  readonly curves: readonly number[];
  readonly allowSha1: boolean;
}

function normalPolicy(p: AkPolicy | undefined): NormalPolicy {
  if (p !== undefined && (p === null || typeof p !== 'object')) throw new EvidenceError('evidence.argument', 'akPolicy: expected an object');
  const minRsaBits = p?.minRsaBits ?? 2048;
  if (!Number.isInteger(minRsaBits) || minRsaBits < 0) throw new EvidenceError('evidence.argument', 'akPolicy.minRsaBits: expected a non-negative integer');
  const curves = p?.curves ?? DEFAULT_CURVES;
  if (!Array.isArray(curves) || !curves.every((c) => Number.isInteger(c))) throw new EvidenceError('evidence.argument', 'akPolicy.curves: expected TPM_ECC_CURVE numbers');
  return { minRsaBits, curves, allowSha1: p?.allowSha1 === true };
}

/** The signing scheme an AK's public area fixes (a restricted signing key must name one). */
export interface AkScheme {
  readonly scheme: typeof TPM_ALG.RSASSA | typeof TPM_ALG.RSAPSS | typeof TPM_ALG.ECDSA;
  readonly hashAlg: number;
}

/**
 * An AK ready for many verifications: its node:crypto key imported once,
 * its Name computed once, and its checks made once (bench/attest-quote.ts
 * measures verification with a prepared AK).
 */
export interface PreparedAk {
  readonly kind: 'prepared-ak';
  /** The public area, when the AK was given as one; undefined for a bare public key. */
  readonly publicArea?: TPMT_PUBLIC;
  /** Name = nameAlg ‖ H(public area); undefined for a bare key. */
  readonly name?: Uint8Array;
  /** The key to verify with; undefined when the key is unusable (then `ak.key` fails). */
  readonly key?: KeyObject;
  readonly keyType?: 'rsa' | 'ecc';
  /** Modulus bytes (RSA) or coordinate bytes (ECC). */
  readonly keyBytes?: number;
  /** The scheme the public area fixes, when it fixes a supported one. */
  readonly scheme?: AkScheme;
  readonly policy: NormalPolicy;
  /** `ak.key`, `ak.attributes`, `ak.scheme`, `ak.name-alg`. */
  readonly checks: readonly Check[];
}

/** A TPMT_PUBLIC, a bare public key (PEM text or KeyObject: then the attribute checks are not performed), or a prepared AK. */
export type AkInput = TPMT_PUBLIC | KeyObject | string | PreparedAk;

function isPrepared(v: unknown): v is PreparedAk {
  return typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'prepared-ak';
}

/**
 * Reads an AK public area from bytes: a TPM2B_PUBLIC (what tpm2_createak -u
 * writes) or a bare TPMT_PUBLIC. A TPM2B's size field is the rest of the
 * input; a TPMT_PUBLIC starts with its type (0x0001 or 0x0023), never a size
 * that frames a whole public area, so the two do not collide.
 * @throws ParseError for anything else.
 */
export function decodeAkPublic(bytes: Uint8Array): TPMT_PUBLIC {
  if (!(bytes instanceof Uint8Array)) throw new EvidenceError('evidence.argument', 'AK public: expected a Uint8Array');
  if (bytes.length >= 2 && ((bytes[0]! << 8) | bytes[1]!) === bytes.length - 2) return decode(TPM2B_PUBLIC, bytes);
  return decode(TPMT_PUBLIC, bytes);
}

/** The AK's Name (Part 1 §16): nameAlg ‖ H_nameAlg(marshaled TPMT_PUBLIC). */
export function akName(publicArea: TPMT_PUBLIC): Uint8Array {
  try {
    return objectName(publicArea);
  } catch (e) {
    throw new EvidenceError('evidence.argument', `AK public area: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}

/**
 * The AK's Qualified Name under an EK in the endorsement hierarchy (Part 1
 * §16.6): QN(EK) = H_ekAlg(TPM_RH_ENDORSEMENT ‖ Name(EK)), QN(AK) =
 * H_akAlg(QN(EK) ‖ Name(AK)), each prefixed by its nameAlg. A quote's
 * qualifiedSigner carries it, so it binds the quote to the enrolled EK.
 * @param ek the EK's public area or Name; @param ak the AK's public area or Name.
 * @throws EvidenceError `evidence.argument` for a Name that does not match its nameAlg.
 */
export function akQualifiedName(ek: TPMT_PUBLIC | Uint8Array, ak: TPMT_PUBLIC | Uint8Array): Uint8Array {
  const ekName = ek instanceof Uint8Array ? ek : akName(ek);
  const name = ak instanceof Uint8Array ? ak : akName(ak);
  try {
    return qualifiedName(qualifiedName(handleName(TPM_RH.ENDORSEMENT), ekName), name);
  } catch (e) {
    throw new EvidenceError('evidence.argument', `qualified name: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}

// ---------------------------------------------------------------------------
// Checks of a public area

function keyCheckOfArea(pub: TPMT_PUBLIC, policy: NormalPolicy): { check: Check; key?: KeyObject; keyType?: 'rsa' | 'ecc'; keyBytes?: number } {
  if (pub.type === TPM_ALG.RSA) {
    const bits = pub.parameters.keyBits;
    if (bits < policy.minRsaBits) return { check: fail('ak.key', 'key.rsa-too-small', `RSA-${bits}: at least ${policy.minRsaBits} bits are required`) };
    const k = importArea(pub);
    if (k instanceof TrustrootError) return { check: fail('ak.key', 'key.invalid', k.message) };
    return { check: pass('ak.key', 'key.ok', `RSA-${bits}`), key: k, keyType: 'rsa', keyBytes: bits / 8 };
  }
  if (pub.type === TPM_ALG.ECC) {
    const curve = pub.parameters.curveID;
    if (!policy.curves.includes(curve)) return { check: fail('ak.key', 'key.curve-not-approved', `ECC curve ${curveName(curve)} is not an approved curve`) };
    const k = importArea(pub);
    if (k instanceof TrustrootError) return { check: fail('ak.key', 'key.invalid', k.message) };
    return { check: pass('ak.key', 'key.ok', `ECC ${curveName(curve)}`), key: k, keyType: 'ecc', keyBytes: eccCurve(curve).size };
  }
  return { check: fail('ak.key', 'key.type', `an AK must be an RSA or ECC key, not ${algName(pub.type)}`) };
}

function importArea(pub: TPMT_PUBLIC): KeyObject | TrustrootError {
  try {
    return publicKeyFromArea(pub);
  } catch (e) {
    // CryptoError (modulus of the wrong size, point off the curve) or UnsupportedAlgorithmError (a curve node lacks).
    if (e instanceof TrustrootError) return e;
    throw e;
  }
}

function attributesCheck(pub: TPMT_PUBLIC): Check {
  const a = pub.objectAttributes;
  const missing = AK_REQUIRED_ATTRIBUTES.filter((k) => !a[k]);
  const word = `0x${TPMA_OBJECT.toWord(a).toString(16).padStart(8, '0')}`;
  if (missing.length > 0) {
    return fail('ak.attributes', 'attributes.missing', `objectAttributes ${word} lack ${missing.join(', ')}${a.decrypt ? ' and have decrypt' : ''}`);
  }
  if (a.decrypt) return fail('ak.attributes', 'attributes.decrypt', `objectAttributes ${word}: an AK must not decrypt (restricted | decrypt is a storage key)`);
  return pass('ak.attributes', 'attributes.ak', `objectAttributes ${word}: ${AK_REQUIRED_ATTRIBUTES.join(' | ')}, no decrypt`);
}

function hashStrength(id: string, what: string, hashAlg: number, policy: NormalPolicy, okReason: string, reasonPrefix: string): Check {
  if (hashAlg === TPM_ALG.SHA1) {
    return policy.allowSha1
      ? check(id, 'warn', `${reasonPrefix}.sha1-allowed`, `${what} SHA-1, accepted by policy`)
      : fail(id, `${reasonPrefix}.weak-hash`, `${what} SHA-1; SHA-256 or stronger is required (allowSha1 not set)`);
  }
  if (!isHashAlg(hashAlg) || digestSize(hashAlg) < 32) return fail(id, `${reasonPrefix}.weak-hash`, `${what} ${algName(hashAlg)} is not a 256-bit-or-stronger hash`);
  return pass(id, okReason, `${what} ${algName(hashAlg)}`);
}

function schemeCheck(pub: TPMT_PUBLIC, policy: NormalPolicy): { check: Check; scheme?: AkScheme } {
  if (pub.type !== TPM_ALG.RSA && pub.type !== TPM_ALG.ECC) return { check: notPerformed('ak.scheme', 'scheme.not-applicable', 'not an RSA or ECC key') };
  const s = pub.parameters.scheme;
  // Part 2 §12.2.3.5/6: a restricted signing key must fix its scheme.
  if (s.scheme === TPM_ALG.NULL) return { check: fail('ak.scheme', 'scheme.null', 'the AK fixes no signing scheme (TPM_ALG_NULL)') };
  const fits = pub.type === TPM_ALG.RSA ? s.scheme === TPM_ALG.RSASSA || s.scheme === TPM_ALG.RSAPSS : s.scheme === TPM_ALG.ECDSA;
  if (!fits || !('details' in s) || s.details === undefined || !('hashAlg' in s.details)) {
    const allowed = pub.type === TPM_ALG.RSA ? 'RSASSA or RSAPSS' : 'ECDSA';
    return { check: fail('ak.scheme', 'scheme.mismatch', `scheme ${algName(s.scheme)} on an ${pub.type === TPM_ALG.RSA ? 'RSA' : 'ECC'} AK; expected ${allowed}`) };
  }
  const hashAlg = s.details.hashAlg;
  const scheme: AkScheme = { scheme: s.scheme as AkScheme['scheme'], hashAlg };
  if (!isHashSupported(hashAlg)) return { check: fail('ak.scheme', 'scheme.unsupported-hash', `scheme hash ${algName(hashAlg)} cannot be computed here`) };
  const c = hashStrength('ak.scheme', `${algName(s.scheme)} with`, hashAlg, policy, 'scheme.ok', 'scheme');
  return { check: c, scheme };
}

function nameAlgCheck(pub: TPMT_PUBLIC, policy: NormalPolicy): Check {
  if (pub.nameAlg === TPM_ALG.NULL) return fail('ak.name-alg', 'name-alg.null', 'nameAlg TPM_ALG_NULL: the key has no Name');
  return hashStrength('ak.name-alg', 'nameAlg', pub.nameAlg, policy, 'name-alg.ok', 'name-alg');
}

function checkArea(pub: unknown): TPMT_PUBLIC {
  try {
    encode(TPMT_PUBLIC, pub as TPMT_PUBLIC);
  } catch (e) {
    throw new EvidenceError('evidence.argument', `AK: not a TPMT_PUBLIC (${e instanceof Error ? e.message : String(e)})`, { cause: e });
  }
  return pub as TPMT_PUBLIC;
}

const BARE = 'a bare public key carries no TPM attributes, scheme or nameAlg';

function prepareBare(key: KeyObject, policy: NormalPolicy): PreparedAk {
  const checks: Check[] = [];
  let keyType: 'rsa' | 'ecc' | undefined;
  let keyBytes: number | undefined;
  let usable: KeyObject | undefined;
  if (key.type !== 'public') {
    // A private key works too, but a verifier should never hold one: take its public half.
    key = createPublicKey(key);
  }
  const t = key.asymmetricKeyType;
  if (t === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < policy.minRsaBits) checks.push(fail('ak.key', 'key.rsa-too-small', `RSA-${bits}: at least ${policy.minRsaBits} bits are required`));
    else {
      checks.push(pass('ak.key', 'key.ok', `RSA-${bits} (bare key)`));
      usable = key;
      keyType = 'rsa';
      keyBytes = Math.ceil(bits / 8);
    }
  } else if (t === 'ec') {
    const named = key.asymmetricKeyDetails?.namedCurve;
    const curve = named === undefined ? undefined : eccCurveByNodeName(named);
    if (curve === undefined || !policy.curves.includes(curve.curveID)) {
      checks.push(fail('ak.key', 'key.curve-not-approved', `EC curve ${String(named)} is not an approved curve`));
    } else {
      checks.push(pass('ak.key', 'key.ok', `ECC ${curveName(curve.curveID)} (bare key)`));
      usable = key;
      keyType = 'ecc';
      keyBytes = curve.size;
    }
  } else {
    checks.push(fail('ak.key', 'key.type', `an AK must be an RSA or EC key, not ${String(t)}`));
  }
  checks.push(notPerformed('ak.attributes', 'ak.bare-key', BARE));
  checks.push(notPerformed('ak.scheme', 'ak.bare-key', BARE));
  checks.push(notPerformed('ak.name-alg', 'ak.bare-key', BARE));
  return { kind: 'prepared-ak', ...(usable ? { key: usable, keyType, keyBytes } : {}), policy, checks };
}

/**
 * Prepares an AK for verification: imports its key, computes its Name and
 * makes the AK checks once. A prepared AK passes through unchanged.
 *
 * Checks: `ak.key` (`key.ok`; `key.type`, `key.rsa-too-small`, `key.curve-not-approved`, `key.invalid`),
 * `ak.attributes` (`attributes.ak`; `attributes.missing`, `attributes.decrypt`),
 * `ak.scheme` (`scheme.ok`, warn `scheme.sha1-allowed`; `scheme.null`, `scheme.mismatch`, `scheme.weak-hash`, `scheme.unsupported-hash`),
 * `ak.name-alg` (`name-alg.ok`, warn `name-alg.sha1-allowed`; `name-alg.null`, `name-alg.weak-hash`).
 * For a bare key (PEM or KeyObject) the last three are not performed (`ak.bare-key`), never passed.
 *
 * @throws EvidenceError `evidence.argument` for input that is no key at all (text that is not a PEM public key,
 *   an object that does not marshal as a TPMT_PUBLIC), or a malformed policy.
 */
export function prepareAk(ak: AkInput, policy?: AkPolicy): PreparedAk {
  if (isPrepared(ak)) {
    if (policy !== undefined) throw new EvidenceError('evidence.argument', 'akPolicy given with a prepared AK: pass the policy to prepareAk');
    return ak;
  }
  const p = normalPolicy(policy);
  if (ak instanceof KeyObject) {
    if (ak.type === 'secret') throw new EvidenceError('evidence.argument', 'AK: a secret key is not a public key');
    return prepareBare(ak, p);
  }
  if (typeof ak === 'string') {
    let key: KeyObject;
    try {
      key = createPublicKey({ key: ak, format: 'pem' });
    } catch (e) {
      throw new EvidenceError('evidence.argument', 'AK: text that is not a PEM public key', { cause: e });
    }
    return prepareBare(key, p);
  }
  if (ak instanceof Uint8Array) throw new EvidenceError('evidence.argument', 'AK: bytes; decode them first (decodeAkPublic for TPM2B_PUBLIC/TPMT_PUBLIC)');
  const pub = checkArea(ak);
  const k = keyCheckOfArea(pub, p);
  const s = schemeCheck(pub, p);
  const checks = [k.check, attributesCheck(pub), s.check, nameAlgCheck(pub, p)];
  const name = pub.nameAlg === TPM_ALG.NULL || !isHashSupported(pub.nameAlg) ? undefined : objectName(pub);
  return {
    kind: 'prepared-ak',
    publicArea: pub,
    ...(name !== undefined ? { name } : {}),
    ...(k.key !== undefined ? { key: k.key, keyType: k.keyType, keyBytes: k.keyBytes } : {}),
    ...(s.scheme !== undefined ? { scheme: s.scheme } : {}),
    policy: p,
    checks,
  };
}

/**
 * The AK checks alone, as a verdict (enrollment: before making a credential for the AK).
 * @throws EvidenceError `evidence.argument` as prepareAk.
 */
export function checkAk(ak: AkInput, policy?: AkPolicy): Verdict {
  return verdict(prepareAk(ak, policy).checks);
}

// ---------------------------------------------------------------------------
// Credential activation (Part 3 §12.5, §12.6; Part 1 §24)

/** What the verifier sends (credentialBlob, secret) and what it keeps (expected). */
export interface AkCredential {
  /** TPM2B_ID_OBJECT content for ActivateCredential. */
  readonly credentialBlob: Uint8Array;
  /** TPM2B_ENCRYPTED_SECRET content for ActivateCredential. */
  readonly secret: Uint8Array;
  /** The credential: keep it, and compare the device's answer with checkActivation. Never send it. */
  readonly expected: Uint8Array;
  /** The AK Name the credential is bound to. */
  readonly akName: Uint8Array;
}

export interface AkCredentialOptions {
  /** Credential length, 16 bytes up to the EK nameAlg's digest size (default: that digest size, 32 for SHA-256). */
  readonly credentialBytes?: number;
}

/**
 * The verifier's side of MakeCredential: a fresh random credential wrapped
 * for the TPM holding `ekPublic`'s private key, releasable only together with
 * an object named `ak` (TPM2_ActivateCredential checks the Name; Part 1 §24).
 * Check the AK (checkAk) before trusting it with a credential.
 *
 * @param ekPublic the enrolled EK (RSA or ECC, restricted decrypt).
 * @param ak the AK's public area (its Name is computed here) or its Name.
 * @throws EvidenceError `evidence.argument` for a bad length or AK; CryptoError (`crypto.key`) for an EK that is
 *   not a restricted decryption key; UnsupportedAlgorithmError; ArgumentError for a malformed Name.
 */
export function makeAkCredential(ekPublic: TPMT_PUBLIC, ak: TPMT_PUBLIC | Uint8Array, options: AkCredentialOptions = {}): AkCredential {
  const name = ak instanceof Uint8Array ? ak : akName(checkArea(ak));
  const max = isHashAlg(ekPublic?.nameAlg) ? digestSize(ekPublic.nameAlg) : 32;
  const n = options.credentialBytes ?? max;
  if (!Number.isInteger(n) || n < 16 || n > max) throw new EvidenceError('evidence.argument', `credentialBytes ${String(n)}: expected 16..${max}`);
  const expected = new Uint8Array(randomBytes(n));
  const made = makeCredential(ekPublic, name, expected);
  return { credentialBlob: made.credentialBlob, secret: made.secret, expected, akName: name };
}

/**
 * `ak.activation`: the secret the device returned from ActivateCredential
 * equals the one kept (constant time). Reasons: `activation.match`, `activation.mismatch`.
 */
export function checkActivation(expected: Uint8Array, returned: Uint8Array): Check {
  if (!(expected instanceof Uint8Array) || !(returned instanceof Uint8Array)) {
    throw new EvidenceError('evidence.argument', 'checkActivation: expected two Uint8Arrays');
  }
  if (expected.length === 0) throw new EvidenceError('evidence.argument', 'checkActivation: empty expected credential');
  if (!sameBytes(expected, returned)) {
    return fail('ak.activation', 'activation.mismatch', 'the returned credential is not the one made for this EK and AK: the AK is not in the EK\'s TPM, or the answer is forged');
  }
  return pass('ak.activation', 'activation.match', 'the TPM holding the EK released the credential to the AK: both are in one TPM');
}
