/**
 * Verification of TPM attestations: quotes (Part 3 §18.4), Certify (§18.2),
 * CertifyCreation (§18.3) and GetTime (§18.7). Each returns a Verdict with
 * one check per property and the decoded TPMS_ATTEST, so the service can
 * keep the clockInfo of what it accepted. Pure: no I/O, and the current time
 * is an argument.
 *
 * What a verifier must check (verifier-pitfalls.md, tpm-spec-facts.md §9):
 * - the signature with the AK over H_scheme(the TPMS_ATTEST bytes as signed);
 * - magic == TPM_GENERATED_VALUE: only a TPM writes it, and a restricted key
 *   refuses to sign other data that starts with it (Part 3 §20.2), so without
 *   this check a TPM2_Sign over a forged structure passes (CVE-2024-29038);
 * - type is the one asked for (a Certify structure is not a quote);
 * - extraData is the challenge nonce (constant time, ≥ 128 bits, unexpired);
 * - qualifiedSigner is the AK's Qualified Name under the enrolled EK;
 * - pcrDigest = H_scheme(the values of exactly the signed selection, in its
 *   order; Part 3 §18.4, the reference's PCRComputeCurrentDigest), and no
 *   value outside that selection is taken (CVE-2022-0317, CVE-2024-29039);
 * - clockInfo against the device's previous accepted attestation (clock.ts).
 */
import { constants as cryptoConstants, verify as nodeVerify } from 'node:crypto';
import { TPM_ALG, TPM_GENERATED_VALUE, TPM_ST } from '../tpm/constants.js';
import { digestSize, hash, isHashAlg, isHashSupported, nodeHashName } from '../tpm/crypto/hash.js';
import { EvidenceError, ParseError } from '../tpm/errors.js';
import { objectName } from '../tpm/names.js';
import { pcrIndices } from '../tpm/pcr.js';
import { TPMS_ATTEST, TPMT_PUBLIC, TPMT_SIGNATURE, UINT32, type TPMA_OBJECT, type TPMS_PCR_SELECTION } from '../tpm/types/index.js';
import { decode, encode, type Infer, struct } from '../tpm/wire/codec.js';
import { prepareAk, type AkInput, type AkPolicy, type PreparedAk } from './ak.js';
import { checkChallengeShape, checkChallengeTime, checkNonce, instantMs, sameBytes, type Challenge, type Instant } from './challenge.js';
import { checkClock, type ClockPolicy, type ClockState, type ClockTransition } from './clock.js';
import { fail, notPerformed, pass, verdict, type Check, type Verdict } from './verdict.js';

// ---------------------------------------------------------------------------
// Decoding

/**
 * TPMS_ATTEST with `magic` read as a plain UINT32 rather than the constant,
 * so that a structure with a forged magic decodes and the verdict can say
 * "magic" instead of "malformed". Every other field is the core's codec.
 */
const SIGNED_ATTEST = struct('TPMS_ATTEST', { ...TPMS_ATTEST.fields, magic: UINT32 });
/** A TPMS_ATTEST as signed: the core's type, except that `magic` may be any UINT32. */
export type SignedAttest = Infer<typeof SIGNED_ATTEST>;
/** The TPMS_ATTEST of one type (TPM_ST_ATTEST_*). */
export type SignedAttestOf<T extends SignedAttest['type']> = Extract<SignedAttest, { readonly type: T }>;

/**
 * Decodes the signed bytes of an attestation (TPM2B_ATTEST's content, what
 * `tpm2_quote -m` writes). Strict: no trailing bytes, no unknown selectors or
 * reserved values; any magic.
 * @throws ParseError (typed, with path and offset) for anything that does not decode.
 */
export function decodeAttest(bytes: Uint8Array): SignedAttest {
  if (!(bytes instanceof Uint8Array)) throw new EvidenceError('evidence.argument', 'attest: expected a Uint8Array');
  return decode(SIGNED_ATTEST, bytes);
}

/**
 * Decodes a TPMT_SIGNATURE (what `tpm2_quote -s` writes, or the signature of any Part 3 attestation).
 * @throws ParseError.
 */
export function decodeSignature(bytes: Uint8Array): TPMT_SIGNATURE {
  if (!(bytes instanceof Uint8Array)) throw new EvidenceError('evidence.argument', 'signature: expected a Uint8Array');
  return decode(TPMT_SIGNATURE, bytes);
}

// ---------------------------------------------------------------------------
// Inputs and results

/** PCR values: bank (TPM_ALG_ID of the hash) → PCR index → value. */
export type PcrValues = ReadonlyMap<number, ReadonlyMap<number, Uint8Array>>;

/** A signed attestation as the device sends it. */
export interface AttestEvidence {
  /** The bytes the TPM signed: TPM2B_ATTEST's content, exactly as returned (never re-encoded). */
  readonly attest: Uint8Array;
  /** The TPMT_SIGNATURE, decoded or as bytes. */
  readonly signature: TPMT_SIGNATURE | Uint8Array;
}

export interface QuoteEvidence extends AttestEvidence {
  /** The PCR values the device reports, bank → index → value. Only the signed selection's may be present. */
  readonly pcrValues: PcrValues;
  /**
   * The selection the values came labelled with, when the evidence carries
   * one (a `tpm2_quote -o` file, a Keylime PCR blob). It must be the signed
   * one: trusting it instead is CVE-2024-29039.
   */
  readonly pcrSelection?: readonly TPMS_PCR_SELECTION[];
}

/** Who must have signed. */
export interface SignerExpectations {
  /** The AK: its public area (all checks), a bare public key (attribute checks not performed), or prepareAk's result. */
  readonly ak: AkInput;
  /** AK requirements; refused together with a prepared AK, whose policy prepareAk fixed. */
  readonly akPolicy?: AkPolicy;
  /** The AK's Qualified Name under the enrolled EK (akQualifiedName); without it the signer check is not performed. */
  readonly akQualifiedName?: Uint8Array;
}

/** What the answer must be bound to: a challenge (nonce, expiry) checked at `now`, or fixed qualifying data. */
export type Qualification =
  | { readonly challenge: Challenge; readonly now: Instant; readonly qualifyingData?: undefined }
  | { readonly qualifyingData: Uint8Array; readonly challenge?: undefined; readonly now?: Instant };

export interface QuoteExpectations extends SignerExpectations {
  readonly challenge: Challenge;
  /** The verifier's current time. */
  readonly now: Instant;
  /** The device's last accepted clock state (clockStateOf / QuoteVerdict.clock); none for a first quote. */
  readonly previous?: ClockState;
  readonly clockPolicy?: ClockPolicy;
}

/** A verdict on one attestation, with what was decoded (undefined when the bytes do not decode). */
export interface AttestVerdict<A = SignedAttest> extends Verdict {
  readonly attest?: A;
}

export interface QuoteVerdict extends AttestVerdict {
  /** The clock state to keep when accepted (clockStateToJson for storage). */
  readonly clock?: ClockState;
  readonly transition?: ClockTransition;
}

export interface TimeExpectations extends SignerExpectations {
  readonly previous?: ClockState;
  readonly clockPolicy?: ClockPolicy;
}

export type TimeVerdict = QuoteVerdict;

/** Attribute values the certified object must have, e.g. `{ fixedTPM: true, sign: true, decrypt: false }`. */
export type RequiredAttributes = Partial<Record<keyof TPMA_OBJECT, boolean>>;

export interface CertifyExpectations extends SignerExpectations {
  /** The certified object's public area, as the device claims it; its Name must be the attested one. */
  readonly object: TPMT_PUBLIC;
  /** The certified object's Qualified Name, when the verifier knows it. */
  readonly objectQualifiedName?: Uint8Array;
  readonly requiredAttributes?: RequiredAttributes;
}

export interface CertifyCreationExpectations extends SignerExpectations {
  /** The created object's public area; its Name must be the attested objectName. */
  readonly object: TPMT_PUBLIC;
  /** The marshaled TPMS_CREATION_DATA that Create/CreatePrimary returned, or its digest `creationHash`. */
  readonly creationData?: Uint8Array;
  readonly creationHash?: Uint8Array;
  readonly requiredAttributes?: RequiredAttributes;
}

// ---------------------------------------------------------------------------
// Signature

const RSA_SCHEMES: ReadonlySet<number> = new Set([TPM_ALG.RSASSA, TPM_ALG.RSAPSS]);
const SIG_NAMES: Readonly<Record<number, string>> = {
  [TPM_ALG.RSASSA]: 'RSASSA',
  [TPM_ALG.RSAPSS]: 'RSAPSS',
  [TPM_ALG.ECDSA]: 'ECDSA',
  [TPM_ALG.ECDAA]: 'ECDAA',
  [TPM_ALG.SM2]: 'SM2',
  [TPM_ALG.ECSCHNORR]: 'ECSCHNORR',
  [TPM_ALG.HMAC]: 'HMAC',
  [TPM_ALG.NULL]: 'NULL',
};
const sigName = (alg: number): string => SIG_NAMES[alg] ?? `0x${alg.toString(16)}`;

export interface SignatureResult {
  readonly check: Check;
  /** The hash the signature says it used, when the signature decoded with a supported scheme. */
  readonly hashAlg?: number;
}

function padTo(v: Uint8Array, size: number, out: Uint8Array, at: number): boolean {
  if (v.length > size) return false;
  out.set(v, at + size - v.length);
  return true;
}

/**
 * `<prefix>.signature` over `message` with the AK. Reasons: `signature.valid`;
 * `signature.invalid`, `signature.malformed`, `signature.unsupported-scheme`,
 * `signature.scheme-mismatch`, `signature.weak-hash`; not performed `signature.no-key`.
 */
export function checkSignature(prefix: string, ak: PreparedAk, message: Uint8Array, signature: TPMT_SIGNATURE | Uint8Array): SignatureResult {
  const id = `${prefix}.signature`;
  let sig: TPMT_SIGNATURE;
  if (signature instanceof Uint8Array) {
    try {
      sig = decode(TPMT_SIGNATURE, signature);
    } catch (e) {
      if (e instanceof ParseError) return { check: fail(id, 'signature.malformed', `the TPMT_SIGNATURE does not decode: ${e.message}`) };
      throw e;
    }
  } else {
    // A decoded signature from the caller: it must be one the schema can marshal, or reading it could go astray.
    try {
      encode(TPMT_SIGNATURE, signature);
    } catch (e) {
      throw new EvidenceError('evidence.argument', `signature: expected a TPMT_SIGNATURE or its bytes (${e instanceof Error ? e.message : String(e)})`, { cause: e });
    }
    sig = signature;
  }
  const alg = sig.sigAlg;
  if (alg !== TPM_ALG.RSASSA && alg !== TPM_ALG.RSAPSS && alg !== TPM_ALG.ECDSA) {
    return { check: fail(id, 'signature.unsupported-scheme', `a ${sigName(alg)} signature; an AK signs with RSASSA, RSAPSS or ECDSA`) };
  }
  const hashAlg = sig.signature.hash;
  if (ak.key === undefined || ak.keyType === undefined || ak.keyBytes === undefined) {
    return { check: notPerformed(id, 'signature.no-key', 'the AK has no usable public key (see ak.key)'), hashAlg };
  }
  if ((ak.keyType === 'rsa') !== RSA_SCHEMES.has(alg)) {
    return { check: fail(id, 'signature.scheme-mismatch', `a ${sigName(alg)} signature from an ${ak.keyType.toUpperCase()} AK`), hashAlg };
  }
  // Part 1 §25: a restricted signing key signs only with the scheme it fixes.
  if (ak.scheme !== undefined && (ak.scheme.scheme !== alg || ak.scheme.hashAlg !== hashAlg)) {
    return {
      check: fail(id, 'signature.scheme-mismatch', `signed with ${sigName(alg)}/0x${hashAlg.toString(16)}, the AK fixes ${sigName(ak.scheme.scheme)}/0x${ak.scheme.hashAlg.toString(16)}`),
      hashAlg,
    };
  }
  const hashHex = `0x${hashAlg.toString(16)}`;
  if (hashAlg === TPM_ALG.SHA1 ? !ak.policy.allowSha1 : !isHashAlg(hashAlg) || digestSize(hashAlg) < 32) {
    return { check: fail(id, 'signature.weak-hash', `signed over a ${hashHex} digest; SHA-256 or stronger is required`), hashAlg };
  }
  if (!isHashSupported(hashAlg)) return { check: fail(id, 'signature.unsupported-scheme', `hash ${hashHex} cannot be computed here`), hashAlg };
  const nodeHash = nodeHashName(hashAlg);
  let ok = false;
  try {
    if (sig.sigAlg === TPM_ALG.ECDSA) {
      // IEEE P1363 form: r ‖ s, each left-padded to the curve size (a TPM may strip leading zeros).
      const size = ak.keyBytes;
      const rs = new Uint8Array(2 * size);
      if (padTo(sig.signature.signatureR, size, rs, 0) && padTo(sig.signature.signatureS, size, rs, size)) {
        ok = nodeVerify(nodeHash, message, { key: ak.key, dsaEncoding: 'ieee-p1363' }, rs);
      }
    } else {
      const s = sig.signature.sig;
      // Part 1 §B.7 / PKCS#1: the signature is exactly as long as the modulus.
      if (s.length === ak.keyBytes) {
        ok =
          sig.sigAlg === TPM_ALG.RSASSA
            ? nodeVerify(nodeHash, message, { key: ak.key, padding: cryptoConstants.RSA_PKCS1_PADDING }, s)
            : // The TPM's PSS salt length is the digest size or the largest that fits (older TPMs); accept either.
              nodeVerify(nodeHash, message, { key: ak.key, padding: cryptoConstants.RSA_PKCS1_PSS_PADDING, saltLength: cryptoConstants.RSA_PSS_SALTLEN_AUTO }, s);
      }
    }
  } catch {
    ok = false; // OpenSSL refusing a malformed signature is a failed verification
  }
  return ok
    ? { check: pass(id, 'signature.valid', `${sigName(alg)} signature by the AK over the attestation`), hashAlg }
    : { check: fail(id, 'signature.invalid', `the ${sigName(alg)} signature does not verify with the AK over these bytes`), hashAlg };
}

// ---------------------------------------------------------------------------
// Common parts of every attestation

const TYPE_REASON: Readonly<Record<number, string>> = {
  [TPM_ST.ATTEST_QUOTE]: 'type.quote',
  [TPM_ST.ATTEST_CERTIFY]: 'type.certify',
  [TPM_ST.ATTEST_CREATION]: 'type.creation',
  [TPM_ST.ATTEST_TIME]: 'type.time',
};
const TYPE_NAME: Readonly<Record<number, string>> = {
  [TPM_ST.ATTEST_QUOTE]: 'ATTEST_QUOTE',
  [TPM_ST.ATTEST_CERTIFY]: 'ATTEST_CERTIFY',
  [TPM_ST.ATTEST_CREATION]: 'ATTEST_CREATION',
  [TPM_ST.ATTEST_TIME]: 'ATTEST_TIME',
  [TPM_ST.ATTEST_NV]: 'ATTEST_NV',
  [TPM_ST.ATTEST_NV_DIGEST]: 'ATTEST_NV_DIGEST',
  [TPM_ST.ATTEST_COMMAND_AUDIT]: 'ATTEST_COMMAND_AUDIT',
  [TPM_ST.ATTEST_SESSION_AUDIT]: 'ATTEST_SESSION_AUDIT',
};
const typeName = (t: number): string => TYPE_NAME[t] ?? `0x${t.toString(16)}`;

function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

function bytesArg(v: unknown, what: string): Uint8Array {
  if (!(v instanceof Uint8Array)) throw new EvidenceError('evidence.argument', `${what}: expected a Uint8Array`);
  return v;
}

interface Common {
  readonly checks: Check[];
  readonly ak: PreparedAk;
  readonly attest?: SignedAttest;
  readonly hashAlg?: number;
}

/**
 * AK checks, signature, structure, magic, type, qualification and qualified
 * signer: what every attestation shares.
 */
function verifyCommon(prefix: string, type: SignedAttest['type'], evidence: AttestEvidence, expectations: SignerExpectations, q: Qualification): Common {
  if (evidence === null || typeof evidence !== 'object') throw new EvidenceError('evidence.argument', 'evidence: expected an object');
  if (expectations === null || typeof expectations !== 'object') throw new EvidenceError('evidence.argument', 'expectations: expected an object');
  const bytes = bytesArg(evidence.attest, 'evidence.attest');
  if (expectations.akQualifiedName !== undefined) bytesArg(expectations.akQualifiedName, 'akQualifiedName');
  if (q.challenge !== undefined) {
    checkChallengeShape(q.challenge);
    instantMs(q.now, 'now');
  } else if (q.qualifyingData !== undefined) {
    bytesArg(q.qualifyingData, 'qualifyingData');
  } else {
    throw new EvidenceError('evidence.argument', 'expectations: a challenge (with now) or qualifyingData is required');
  }

  const ak = prepareAk(expectations.ak, expectations.akPolicy);
  const checks: Check[] = [...ak.checks];
  const sig = checkSignature(prefix, ak, bytes, evidence.signature);
  checks.push(sig.check);

  let attest: SignedAttest;
  try {
    attest = decode(SIGNED_ATTEST, bytes);
  } catch (e) {
    if (!(e instanceof ParseError)) throw e;
    checks.push(fail(`${prefix}.structure`, 'attest.malformed', `the TPMS_ATTEST does not decode: ${e.message}`));
    return { checks, ak, ...(sig.hashAlg !== undefined ? { hashAlg: sig.hashAlg } : {}) };
  }
  checks.push(pass(`${prefix}.structure`, 'attest.well-formed', `a ${bytes.length}-byte TPMS_ATTEST`));
  checks.push(
    attest.magic === TPM_GENERATED_VALUE
      ? pass(`${prefix}.magic`, 'magic.generated', 'magic is TPM_GENERATED_VALUE')
      : fail(
          `${prefix}.magic`,
          'magic.not-generated',
          `magic 0x${attest.magic.toString(16).padStart(8, '0')} is not TPM_GENERATED_VALUE: the TPM did not produce this structure (a TPM2_Sign over forged data, CVE-2024-29038)`,
        ),
  );
  checks.push(
    attest.type === type
      ? pass(`${prefix}.type`, TYPE_REASON[type]!, `type ${typeName(type)}`)
      : fail(`${prefix}.type`, 'type.wrong', `type ${typeName(attest.type)} where ${typeName(type)} is expected`),
  );
  if (q.challenge !== undefined) {
    checks.push(checkNonce(prefix, q.challenge, attest.extraData));
    checks.push(checkChallengeTime(prefix, q.challenge, q.now));
  } else {
    checks.push(
      sameBytes(attest.extraData, q.qualifyingData)
        ? pass(`${prefix}.qualifying-data`, 'qualifying-data.match', `extraData is the expected ${q.qualifyingData.length}-byte qualifying data`)
        : fail(`${prefix}.qualifying-data`, 'qualifying-data.mismatch', 'extraData is not the expected qualifying data'),
    );
  }
  const expectedQn = expectations.akQualifiedName;
  checks.push(
    expectedQn === undefined
      ? notPerformed(`${prefix}.qualified-signer`, 'signer.no-expectation', `qualifiedSigner ${hex(attest.qualifiedSigner)}; no enrolled qualified name given`)
      : sameBytes(attest.qualifiedSigner, expectedQn)
        ? pass(`${prefix}.qualified-signer`, 'signer.match', 'qualifiedSigner is the enrolled AK under the enrolled EK')
        : fail(`${prefix}.qualified-signer`, 'signer.mismatch', `qualifiedSigner ${hex(attest.qualifiedSigner)} is not the enrolled AK's ${hex(expectedQn)}: another AK or another EK`),
  );
  const hashAlg = sig.hashAlg ?? ak.scheme?.hashAlg;
  return { checks, ak, attest, ...(hashAlg !== undefined ? { hashAlg } : {}) };
}

// ---------------------------------------------------------------------------
// PCRs

function selectionText(sel: readonly TPMS_PCR_SELECTION[]): string {
  return sel.map((s) => `0x${s.hash.toString(16)}:[${pcrIndices(s).join(',')}]`).join(' ') || '(empty)';
}

function checkPcrValuesShape(values: PcrValues): void {
  if (!(values instanceof Map)) throw new EvidenceError('evidence.argument', 'pcrValues: expected a Map of bank → Map of index → Uint8Array');
  for (const [bank, m] of values) {
    if (!Number.isInteger(bank) || !(m instanceof Map)) throw new EvidenceError('evidence.argument', 'pcrValues: expected a Map of bank → Map of index → Uint8Array');
    for (const [i, v] of m) {
      if (!Number.isInteger(i) || i < 0 || !(v instanceof Uint8Array)) throw new EvidenceError('evidence.argument', `pcrValues: bank 0x${bank.toString(16)} has an entry that is not index → Uint8Array`);
    }
  }
}

function checkSelectionShape(sel: unknown): void {
  const ok =
    Array.isArray(sel) &&
    sel.every((s: unknown) => typeof s === 'object' && s !== null && Number.isInteger((s as TPMS_PCR_SELECTION).hash) && (s as TPMS_PCR_SELECTION).pcrSelect instanceof Uint8Array);
  if (!ok) throw new EvidenceError('evidence.argument', 'pcrSelection: expected TPMS_PCR_SELECTION[] ({ hash, pcrSelect: Uint8Array })');
}

function sameSelection(a: readonly TPMS_PCR_SELECTION[], b: readonly TPMS_PCR_SELECTION[]): boolean {
  if (a.length !== b.length) return false;
  for (let k = 0; k < a.length; k++) {
    if (a[k]!.hash !== b[k]!.hash) return false;
    const x = pcrIndices(a[k]!);
    const y = pcrIndices(b[k]!);
    if (x.length !== y.length || x.some((v, i) => v !== y[i])) return false;
  }
  return true;
}

/**
 * `<prefix>.pcr-selection` and `<prefix>.pcr-digest`.
 * Selection: `pcr.selection-signed`; `pcr.outside-selection` (values for PCRs the quote does not cover),
 * `pcr.selection-relabelled` (the values carry another bank's or other indices' labels than the signed ones),
 * `pcr.missing-values`. Digest: `pcr.digest-match`; `pcr.digest-mismatch`, `pcr.value-size`;
 * not performed `pcr.values-incomplete`, `pcr.no-hash`.
 */
function checkPcrs(
  prefix: string,
  signed: readonly TPMS_PCR_SELECTION[],
  pcrDigest: Uint8Array,
  hashAlg: number | undefined,
  values: PcrValues,
  labelled: readonly TPMS_PCR_SELECTION[] | undefined,
): Check[] {
  const selId = `${prefix}.pcr-selection`;
  const digId = `${prefix}.pcr-digest`;
  const labelsAgree = labelled === undefined || sameSelection(labelled, signed);
  // The honest case first, in one pass: every signed PCR has a value and nothing else was supplied.
  const fast = labelsAgree ? signedValues(signed, values) : undefined;
  if (fast !== undefined) {
    return [pass(selId, 'pcr.selection-signed', `values for exactly the signed selection ${selectionText(signed)}`), digestCheck(digId, signed, fast, pcrDigest, hashAlg)];
  }
  const covered = new Map<number, Set<number>>();
  for (const s of signed) {
    let set = covered.get(s.hash);
    if (set === undefined) covered.set(s.hash, (set = new Set()));
    for (const i of pcrIndices(s)) set.add(i);
  }
  const outside: string[] = [];
  for (const [bank, m] of values) {
    const set = covered.get(bank);
    for (const i of m.keys()) if (set === undefined || !set.has(i)) outside.push(`0x${bank.toString(16)}:${i}`);
  }
  const missing: string[] = [];
  for (const [bank, set] of covered) {
    const m = values.get(bank);
    for (const i of set) if (m === undefined || !m.has(i)) missing.push(`0x${bank.toString(16)}:${i}`);
  }
  const list = (xs: string[]): string => (xs.length > 8 ? `${xs.slice(0, 8).join(' ')} … (${xs.length})` : xs.join(' '));
  const checks: Check[] = [];
  if (!labelsAgree) {
    checks.push(fail(selId, 'pcr.selection-relabelled', `the values come labelled ${selectionText(labelled!)}, the quote signed ${selectionText(signed)} (CVE-2024-29039)`));
  } else if (outside.length > 0 && missing.length === outside.length) {
    checks.push(fail(selId, 'pcr.selection-relabelled', `values for ${list(outside)} in place of the signed ${list(missing)}: the selection was relabelled`));
  } else if (outside.length > 0) {
    checks.push(fail(selId, 'pcr.outside-selection', `values for ${list(outside)}, which the quote does not cover (signed: ${selectionText(signed)}; CVE-2022-0317)`));
  } else if (missing.length > 0) {
    checks.push(fail(selId, 'pcr.missing-values', `no values for the signed ${list(missing)}`));
  } else {
    checks.push(pass(selId, 'pcr.selection-signed', `values for exactly the signed selection ${selectionText(signed)}`));
  }
  if (missing.length > 0) {
    checks.push(
      hashAlg === undefined || !isHashSupported(hashAlg)
        ? notPerformed(digId, 'pcr.no-hash', 'no usable signature hash to recompute pcrDigest with')
        : notPerformed(digId, 'pcr.values-incomplete', 'some signed PCRs have no value; the digest cannot be recomputed'),
    );
    return checks;
  }
  // Every signed PCR has a value (the values outside the selection are ignored here, and failed above).
  const parts: Uint8Array[] = [];
  for (const s of signed) for (const i of pcrIndices(s)) parts.push(values.get(s.hash)!.get(i)!);
  checks.push(digestCheck(digId, signed, parts, pcrDigest, hashAlg));
  return checks;
}

/**
 * The values of the signed selection in its order, when every signed PCR has
 * one and no other value was supplied; otherwise undefined (the caller then
 * works out what is wrong). Banks repeated in a selection take the slow path.
 */
function signedValues(signed: readonly TPMS_PCR_SELECTION[], values: PcrValues): Uint8Array[] | undefined {
  const parts: Uint8Array[] = [];
  for (let k = 0; k < signed.length; k++) {
    const s = signed[k]!;
    for (let j = 0; j < k; j++) if (signed[j]!.hash === s.hash) return undefined;
    const m = values.get(s.hash);
    const sel = s.pcrSelect;
    for (let byte = 0; byte < sel.length; byte++) {
      const b = sel[byte]!;
      if (b === 0) continue;
      for (let bit = 0; bit < 8; bit++) {
        if ((b & (1 << bit)) === 0) continue;
        const v = m?.get(byte * 8 + bit);
        if (v === undefined) return undefined;
        parts.push(v);
      }
    }
  }
  let supplied = 0;
  for (const m of values.values()) supplied += m.size;
  return supplied === parts.length ? parts : undefined;
}

/**
 * `<prefix>.pcr-digest` over the signed values in selection order (Part 3
 * §18.4: H_sign(PCR values in selection order, ascending index within each)).
 */
function digestCheck(digId: string, signed: readonly TPMS_PCR_SELECTION[], parts: readonly Uint8Array[], pcrDigest: Uint8Array, hashAlg: number | undefined): Check {
  if (hashAlg === undefined || !isHashSupported(hashAlg)) return notPerformed(digId, 'pcr.no-hash', 'no usable signature hash to recompute pcrDigest with');
  let k = 0;
  for (const s of signed) {
    const size = isHashAlg(s.hash) ? digestSize(s.hash) : -1;
    for (const i of pcrIndices(s)) {
      const v = parts[k++]!;
      if (v.length !== size) return fail(digId, 'pcr.value-size', `PCR ${i} of bank 0x${s.hash.toString(16)} has ${v.length} byte(s), the bank's digests have ${size}`);
    }
  }
  const computed = hash(hashAlg, ...parts);
  return sameBytes(computed, pcrDigest)
    ? pass(digId, 'pcr.digest-match', `pcrDigest is the digest of the ${parts.length} supplied value(s)`)
    : fail(digId, 'pcr.digest-mismatch', `pcrDigest ${hex(pcrDigest)} is not the digest ${hex(computed)} of the supplied values: they are not what the TPM quoted`);
}

// ---------------------------------------------------------------------------
// Public verifiers

/**
 * Verifies a quote (Part 3 §18.4) against a challenge and the device's AK.
 *
 * Checks, in order: `ak.*` (ak.ts), `quote.signature`, `quote.structure`, `quote.magic`, `quote.type`,
 * `quote.nonce`, `quote.challenge`, `quote.qualified-signer`, `quote.pcr-selection`, `quote.pcr-digest`,
 * `quote.reset-count`, `quote.clock`, `quote.firmware` (clock.ts). The signature is checked over the bytes
 * as given, before anything is decoded from them.
 *
 * @returns the verdict, the decoded attestation (when it decodes) and the clock state to keep if accepted.
 * @throws EvidenceError `evidence.argument` for arguments of the wrong shape (not for evidence that is wrong:
 *   that is a failed check).
 * @example
 *   const v = verifyQuote({ attest, signature, pcrValues }, { ak, akQualifiedName, challenge, now: Date.now(), previous });
 *   if (v.accepted) store(v.clock);
 */
export function verifyQuote(evidence: QuoteEvidence, expectations: QuoteExpectations): QuoteVerdict {
  if (expectations === null || typeof expectations !== 'object' || expectations.challenge === undefined || expectations.now === undefined) {
    throw new EvidenceError('evidence.argument', 'expectations: a quote is checked against a challenge at a time `now`');
  }
  checkPcrValuesShape(evidence?.pcrValues);
  if (evidence.pcrSelection !== undefined) checkSelectionShape(evidence.pcrSelection);
  const c = verifyCommon('quote', TPM_ST.ATTEST_QUOTE, evidence, expectations, { challenge: expectations.challenge, now: expectations.now });
  const { checks, attest } = c;
  if (attest === undefined) return verdict(checks);
  if (attest.type === TPM_ST.ATTEST_QUOTE) {
    checks.push(...checkPcrs('quote', attest.attested.pcrSelect, attest.attested.pcrDigest, c.hashAlg, evidence.pcrValues, evidence.pcrSelection));
  } else {
    checks.push(notPerformed('quote.pcr-selection', 'pcr.not-a-quote', 'the attestation is not a quote'));
    checks.push(notPerformed('quote.pcr-digest', 'pcr.not-a-quote', 'the attestation is not a quote'));
  }
  const clock = checkClock('quote', attest.clockInfo, attest.firmwareVersion, expectations.previous, expectations.clockPolicy);
  checks.push(...clock.checks);
  return { ...verdict(checks), attest, clock: clock.state, transition: clock.transition };
}

function attributesCheck(prefix: string, object: TPMT_PUBLIC, required: RequiredAttributes | undefined): Check {
  const id = `${prefix}.attributes`;
  if (required === undefined) return notPerformed(id, 'attributes.no-requirement', 'no attribute requirement given');
  if (required === null || typeof required !== 'object') throw new EvidenceError('evidence.argument', 'requiredAttributes: expected an object');
  const a = object.objectAttributes as Readonly<Record<string, unknown>>;
  const wrong = Object.entries(required)
    .filter(([, want]) => want !== undefined)
    .filter(([k, want]) => Boolean(a[k]) !== want)
    .map(([k, want]) => `${k} ${want ? 'clear' : 'set'}`);
  return wrong.length === 0
    ? pass(id, 'attributes.match', `the object has the required attributes (${Object.keys(required).join(', ')})`)
    : fail(id, 'attributes.mismatch', `the object's attributes differ from the required: ${wrong.join(', ')}`);
}

function objectArg(v: unknown, what: string): { pub: TPMT_PUBLIC; name: Uint8Array } {
  try {
    const pub = v as TPMT_PUBLIC;
    encode(TPMT_PUBLIC, pub);
    return { pub, name: objectName(pub) };
  } catch (e) {
    throw new EvidenceError('evidence.argument', `${what}: not a TPMT_PUBLIC with a Name (${e instanceof Error ? e.message : String(e)})`, { cause: e });
  }
}

function qualificationOf(e: { challenge?: Challenge; now?: Instant; qualifyingData?: Uint8Array }): Qualification {
  if (e.challenge !== undefined && e.qualifyingData !== undefined) throw new EvidenceError('evidence.argument', 'give either a challenge or qualifyingData, not both');
  if (e.challenge !== undefined) {
    if (e.now === undefined) throw new EvidenceError('evidence.argument', 'a challenge needs `now`');
    return { challenge: e.challenge, now: e.now };
  }
  if (e.qualifyingData !== undefined) return { qualifyingData: e.qualifyingData };
  throw new EvidenceError('evidence.argument', 'expectations: a challenge (with now) or qualifyingData is required');
}

/**
 * Verifies a TPM2_Certify (Part 3 §18.2): the TPM that holds the AK has the
 * object `expectations.object` loaded. Checks: `ak.*`, `certify.signature`,
 * `certify.structure`, `certify.magic`, `certify.type`, `certify.nonce` +
 * `certify.challenge` (or `certify.qualifying-data`), `certify.qualified-signer`,
 * `certify.name` (`name.match` / `name.mismatch`: the attested Name is the
 * Name of the expected public area, so its attributes are the attested ones),
 * `certify.qualified-name` (`qualified-name.match` / `qualified-name.mismatch`),
 * `certify.attributes` (`attributes.match` / `attributes.mismatch`).
 * @throws EvidenceError `evidence.argument` for arguments of the wrong shape.
 */
export function verifyCertify(
  evidence: AttestEvidence,
  expectations: CertifyExpectations & ({ challenge: Challenge; now: Instant } | { qualifyingData: Uint8Array }),
): AttestVerdict {
  const q = qualificationOf(expectations as { challenge?: Challenge; now?: Instant; qualifyingData?: Uint8Array });
  const object = objectArg(expectations.object, 'object');
  const c = verifyCommon('certify', TPM_ST.ATTEST_CERTIFY, evidence, expectations, q);
  const { checks, attest } = c;
  if (attest === undefined) return verdict(checks);
  if (attest.type === TPM_ST.ATTEST_CERTIFY) {
    const info = attest.attested;
    checks.push(
      sameBytes(info.name, object.name)
        ? pass('certify.name', 'name.match', `the certified object is the expected public area (Name ${hex(object.name)})`)
        : fail('certify.name', 'name.mismatch', `the certified Name ${hex(info.name)} is not the expected object's ${hex(object.name)}`),
    );
    const qn = expectations.objectQualifiedName;
    checks.push(
      qn === undefined
        ? notPerformed('certify.qualified-name', 'qualified-name.no-expectation', `qualifiedName ${hex(info.qualifiedName)}; none expected`)
        : sameBytes(bytesArg(qn, 'objectQualifiedName'), info.qualifiedName)
          ? pass('certify.qualified-name', 'qualified-name.match', 'the object sits where expected in the TPM hierarchy')
          : fail('certify.qualified-name', 'qualified-name.mismatch', `qualifiedName ${hex(info.qualifiedName)} is not the expected ${hex(qn)}`),
    );
  } else {
    checks.push(notPerformed('certify.name', 'name.not-certify', 'the attestation is not a Certify'));
  }
  checks.push(attributesCheck('certify', object.pub, expectations.requiredAttributes));
  return { ...verdict(checks), attest };
}

/**
 * Verifies a TPM2_CertifyCreation (Part 3 §18.3): the TPM created
 * `expectations.object` with the creation data hashed in creationHash (the TPM
 * checked its creation ticket). Checks: `ak.*`, `certify-creation.signature`,
 * `.structure`, `.magic`, `.type`, `.nonce` + `.challenge` (or
 * `.qualifying-data`), `.qualified-signer`, `.name` (`name.match` /
 * `name.mismatch`), `.creation-hash` (`creation-hash.match` /
 * `creation-hash.mismatch`; computed with the object's nameAlg), `.attributes`.
 * @throws EvidenceError `evidence.argument` for arguments of the wrong shape.
 */
export function verifyCertifyCreation(
  evidence: AttestEvidence,
  expectations: CertifyCreationExpectations & ({ challenge: Challenge; now: Instant } | { qualifyingData: Uint8Array }),
): AttestVerdict {
  const prefix = 'certify-creation';
  const q = qualificationOf(expectations as { challenge?: Challenge; now?: Instant; qualifyingData?: Uint8Array });
  const object = objectArg(expectations.object, 'object');
  if ((expectations.creationData === undefined) === (expectations.creationHash === undefined)) {
    throw new EvidenceError('evidence.argument', 'give exactly one of creationData and creationHash');
  }
  let expectedHash: Uint8Array;
  if (expectations.creationHash !== undefined) expectedHash = bytesArg(expectations.creationHash, 'creationHash');
  else {
    // Part 3 §12.1: creationHash = H_nameAlg(TPMS_CREATION_DATA), the object's nameAlg.
    if (!isHashSupported(object.pub.nameAlg)) throw new EvidenceError('evidence.argument', 'object: its nameAlg cannot hash the creation data here');
    expectedHash = hash(object.pub.nameAlg, bytesArg(expectations.creationData, 'creationData'));
  }
  const c = verifyCommon(prefix, TPM_ST.ATTEST_CREATION, evidence, expectations, q);
  const { checks, attest } = c;
  if (attest === undefined) return verdict(checks);
  if (attest.type === TPM_ST.ATTEST_CREATION) {
    const info = attest.attested;
    checks.push(
      sameBytes(info.objectName, object.name)
        ? pass(`${prefix}.name`, 'name.match', `the created object is the expected public area (Name ${hex(object.name)})`)
        : fail(`${prefix}.name`, 'name.mismatch', `the attested objectName ${hex(info.objectName)} is not the expected object's ${hex(object.name)}`),
    );
    checks.push(
      sameBytes(info.creationHash, expectedHash)
        ? pass(`${prefix}.creation-hash`, 'creation-hash.match', 'creationHash is the digest of the expected creation data')
        : fail(`${prefix}.creation-hash`, 'creation-hash.mismatch', `creationHash ${hex(info.creationHash)} is not the expected ${hex(expectedHash)}`),
    );
  } else {
    checks.push(notPerformed(`${prefix}.name`, 'name.not-creation', 'the attestation is not a CertifyCreation'));
  }
  checks.push(attributesCheck(prefix, object.pub, expectations.requiredAttributes));
  return { ...verdict(checks), attest };
}

/**
 * Verifies a TPM2_GetTime (Part 3 §18.7), and applies the clockInfo rules to
 * its attested TPMS_TIME_INFO (never obfuscated, unlike the header's
 * clockInfo for keys outside the endorsement hierarchy). Checks: `ak.*`,
 * `time.signature`, `.structure`, `.magic`, `.type`, `.nonce` + `.challenge`
 * (or `.qualifying-data`), `.qualified-signer`, `.reset-count`, `.clock`, `.firmware`.
 * @throws EvidenceError `evidence.argument` for arguments of the wrong shape.
 */
export function verifyTime(
  evidence: AttestEvidence,
  expectations: TimeExpectations & ({ challenge: Challenge; now: Instant } | { qualifyingData: Uint8Array }),
): TimeVerdict {
  const q = qualificationOf(expectations as { challenge?: Challenge; now?: Instant; qualifyingData?: Uint8Array });
  const c = verifyCommon('time', TPM_ST.ATTEST_TIME, evidence, expectations, q);
  const { checks, attest } = c;
  if (attest === undefined) return verdict(checks);
  if (attest.type !== TPM_ST.ATTEST_TIME) return { ...verdict(checks), attest };
  const t = attest.attested;
  const clock = checkClock('time', t.time.clockInfo, t.firmwareVersion, expectations.previous, expectations.clockPolicy);
  checks.push(...clock.checks);
  return { ...verdict(checks), attest, clock: clock.state, transition: clock.transition };
}
