/**
 * Attestation (Part 3 §18): the TPM signs a TPMS_ATTEST about its PCRs
 * (Quote), a loaded object (Certify), an object's creation (CertifyCreation),
 * its clock (GetTime), or an audit digest (GetSessionAuditDigest,
 * GetCommandAuditDigest).
 *
 * Every result carries the attestation decoded, the bytes the TPM signed
 * (TPM2B_ATTEST's content) and the TPMT_SIGNATURE, so a verifier checks the
 * signature over `attestBytes` and reads the fields from `attest`. The
 * decoding is strict (magic, selectors, reserved bits, no trailing bytes), so
 * re-marshaling the decoded structure gives back exactly the signed bytes.
 *
 * The client checks what it can without trusting the TPM more than needed:
 * the attestation's type is the one the command produces and extraData echoes
 * the caller's qualifyingData (a ClientError `client.response` otherwise), and
 * an attested Name is the Name of the Entity given (`client.name`). Deciding
 * whether to trust the signer is the verifier's job (src/attest).
 *
 * Counters in TPMS_ATTEST (clockInfo.resetCount/restartCount, firmwareVersion)
 * are obfuscated by the TPM when the signing key is outside the endorsement
 * and platform hierarchies (Part 3 §18.1): sign with an AK under the EK.
 */
import {
  CertifyCreation,
  Certify,
  GetCommandAuditDigest,
  GetSessionAuditDigest,
  GetTime,
  Quote,
} from '../tpm/commands/index.js';
import { TPM_ALG, TPM_RH, TPM_ST } from '../tpm/constants.js';
import { digestSize, isHashAlg } from '../tpm/crypto/hash.js';
import { ClientError } from '../tpm/errors.js';
import { LIMITS, SIZEOF_TPMT_HA } from '../tpm/limits.js';
import { handleName } from '../tpm/names.js';
import { pcrIndices, readPcrs } from '../tpm/pcr.js';
import { pcrDigest } from '../tpm/policy.js';
import { sendOptionsOf, type SendOptions } from '../tpm/transport/transport.js';
import { TPMS_ATTEST, type TPMS_PCR_SELECTION, type TPMT_SIG_SCHEME, type TPMT_SIGNATURE, type TPMT_TK_CREATION } from '../tpm/types/index.js';
import { encode } from '../tpm/wire/codec.js';
import type { AuthSession } from './session.js';
import type { Authorization, Entity, Handle, Tpm } from './tpm.js';
import { equalBytes } from '../tpm/bytes.js';

/** The TPMS_ATTEST variant of one attestation type (TPM_ST_ATTEST_*). */
export type AttestationOf<T extends TPMS_ATTEST['type']> = Extract<TPMS_ATTEST, { readonly type: T }>;

/** A signed attestation as the TPM returned it. */
export interface Attestation<T extends TPMS_ATTEST['type'] = TPMS_ATTEST['type']> {
  /** The TPMS_ATTEST, decoded. */
  readonly attest: AttestationOf<T>;
  /** The signed bytes: the content of the TPM2B_ATTEST (what `tpm2_quote -m` writes). */
  readonly attestBytes: Uint8Array;
  /** The signature over H(attestBytes); sigAlg NULL when signed by TPM_RH_NULL. */
  readonly signature: TPMT_SIGNATURE;
}

export interface AttestOptions extends SendOptions {
  /** inScheme; default TPM_ALG_NULL, i.e. the signing key's own scheme (which must then not be NULL). */
  readonly scheme?: TPMT_SIG_SCHEME;
  /**
   * Authorizations in the command's handle order (see each function), then
   * extra sessions (audit, encrypt). Default: passwords with each Entity's authValue.
   */
  readonly sessions?: readonly (Authorization | undefined)[];
}

/** Options of the commands whose first handle is the privacy administrator (TPM_RH_ENDORSEMENT). */
export interface PrivacyAttestOptions extends AttestOptions {
  /** The endorsement hierarchy's authValue, when it is set (default empty). */
  readonly endorsementAuth?: Uint8Array;
}

export interface QuoteOptions extends AttestOptions {
  /**
   * Quotes to try before giving up when the PCRs change between the quote and
   * the read that follows it (another process extending, e.g. IMA on PCR 10). Default 3.
   */
  readonly attempts?: number;
}

/** Quote's result: the attestation plus the PCR values it covers. */
export interface QuoteResult extends Attestation<typeof TPM_ST.ATTEST_QUOTE> {
  /**
   * The values of the PCRs in the signed selection (attest.attested.pcrSelect),
   * bank → index → value, read right after the quote; they hash to
   * attest.attested.pcrDigest with `pcrDigestAlg` (checked here).
   */
  readonly pcrValues: Map<number, Map<number, Uint8Array>>;
  /** The hash of pcrDigest: the signature scheme's hash; undefined for an unsigned quote. */
  readonly pcrDigestAlg: number | undefined;
}

const NULL_SCHEME: TPMT_SIG_SCHEME = { scheme: TPM_ALG.NULL };

function checkBytes(v: unknown, what: string, max = 0xffff): Uint8Array {
  if (!(v instanceof Uint8Array)) throw new ClientError('client.argument', `${what}: expected a Uint8Array`);
  if (v.length > max) throw new ClientError('client.argument', `${what}: ${v.length} bytes, at most ${max}`);
  return v;
}

/** qualifyingData is a TPM2B_DATA: at most sizeof(TPMT_HA) bytes (Part 2 §10.4.3). */
function checkQualifyingData(v: unknown): void {
  checkBytes(v, 'qualifyingData', SIZEOF_TPMT_HA);
}


function endorsement(auth: Uint8Array | undefined): Handle {
  if (auth === undefined) return TPM_RH.ENDORSEMENT;
  return { handle: TPM_RH.ENDORSEMENT, name: handleName(TPM_RH.ENDORSEMENT), authValue: checkBytes(auth, 'endorsementAuth') };
}


function runOptions(o: AttestOptions): { sessions?: readonly (Authorization | undefined)[] } & SendOptions {
  return { ...(o.sessions !== undefined ? { sessions: o.sessions } : {}), ...sendOptionsOf(o) };
}

/**
 * Checks a decoded attestation against the request and re-marshals the signed bytes.
 * @throws ClientError `client.response` when the type is not the command's or extraData is not qualifyingData.
 */
function attestation<T extends TPMS_ATTEST['type']>(
  command: string,
  type: T,
  attest: TPMS_ATTEST,
  signature: TPMT_SIGNATURE,
  qualifyingData: Uint8Array,
): Attestation<T> {
  if (attest.type !== type) {
    throw new ClientError('client.response', `${command} returned an attestation of type 0x${attest.type.toString(16)}, expected 0x${type.toString(16)}`);
  }
  // Part 3 §18.1: extraData is the caller's qualifyingData, copied unchanged.
  if (!equalBytes(attest.extraData, qualifyingData)) {
    throw new ClientError('client.response', `${command}: the attestation's extraData is not the qualifyingData sent`);
  }
  return { attest: attest as AttestationOf<T>, attestBytes: encode(TPMS_ATTEST, attest), signature };
}

/** The hash a signature was made with (RSASSA/RSAPSS/ECDSA/… carry it; HMAC in its TPMT_HA), or undefined for NULL. */
export function signatureHashAlg(signature: TPMT_SIGNATURE): number | undefined {
  if (signature.sigAlg === TPM_ALG.NULL) return undefined;
  if (signature.sigAlg === TPM_ALG.HMAC) return signature.signature.hashAlg;
  return signature.signature.hash;
}

function schemeHashAlg(scheme: TPMT_SIG_SCHEME): number | undefined {
  if (scheme.scheme === TPM_ALG.NULL) return undefined;
  return scheme.details.hashAlg;
}

/**
 * Quotes `pcrs` with `signKey` (Part 3 §18.4) and reads the quoted PCRs'
 * values, quoting again (up to `attempts` times) if they changed in between.
 *
 * @param signKey the AK (sessions[0] authorizes it, USER role), or TPM_RH_NULL for an unsigned quote.
 * @param pcrs the selection to quote; the TPM signs the part of it that it implements.
 * @param qualifyingData the verifier's nonce (a TPM2B_DATA: at most 66 bytes).
 * @throws ClientError `client.pcrs-changed` when every attempt saw the PCRs change after the quote;
 *   `client.response` for an attestation that does not match the request, or PCRs quoted that PCR_Read does not
 *   return; `client.argument`; ParseError; TpmError; SessionError; TransportError.
 * @example const q = await quote(tpm, ak, [pcrSelection(TPM_ALG.SHA256, [0, 1, 7])], nonce);
 */
export async function quote(
  tpm: Tpm,
  signKey: Handle,
  pcrs: readonly TPMS_PCR_SELECTION[],
  qualifyingData: Uint8Array,
  options: QuoteOptions = {},
): Promise<QuoteResult> {
  checkQualifyingData(qualifyingData);
  const attempts = options.attempts ?? 3;
  if (!Number.isInteger(attempts) || attempts < 1) throw new ClientError('client.argument', `attempts ${String(attempts)}: expected a positive integer`);
  const scheme = options.scheme ?? NULL_SCHEME;
  for (let attempt = 1; ; attempt++) {
    const r = await tpm.run(Quote, { signHandle: signKey }, { qualifyingData, inScheme: scheme, PCRselect: [...pcrs] }, runOptions(options));
    const a = attestation('Quote', TPM_ST.ATTEST_QUOTE, r.params.quoted, r.params.signature, qualifyingData);
    const signed = a.attest.attested.pcrSelect;
    // Only the PCRs of the signed selection: a verifier must not use any other (verifier-pitfalls.md).
    const pcrValues = signed.some((s) => s.pcrSelect.some((b) => b !== 0)) ? await readPcrs(tpm.channel, signed, sendOptionsOf(options)) : new Map<number, Map<number, Uint8Array>>();
    for (const sel of signed) {
      for (const i of pcrIndices(sel)) {
        if (pcrValues.get(sel.hash)?.get(i) === undefined) {
          throw new ClientError('client.response', `the TPM quoted PCR ${i} of bank 0x${sel.hash.toString(16)} but PCR_Read does not return it`);
        }
      }
    }
    const pcrDigestAlg = signatureHashAlg(a.signature) ?? schemeHashAlg(scheme);
    // Without a signature hash there is nothing to recompute the digest with (the TPM used TPM_ALG_NULL).
    if (pcrDigestAlg === undefined || !isHashAlg(pcrDigestAlg)) return { ...a, pcrValues, pcrDigestAlg: undefined };
    const digest = a.attest.attested.pcrDigest;
    if (digest.length === digestSize(pcrDigestAlg) && equalBytes(pcrDigest(pcrDigestAlg, signed, pcrValues), digest)) {
      return { ...a, pcrValues, pcrDigestAlg };
    }
    if (attempt >= attempts) {
      throw new ClientError(
        'client.pcrs-changed',
        `pcrDigest did not match the PCR values read right after the quote, ${attempts} time(s) in a row: the PCRs keep changing (or the TPM's digest is wrong)`,
      );
    }
  }
}

/**
 * Certifies that `object` is loaded in this TPM (Part 3 §18.2): attested.name
 * is its Name and attested.qualifiedName its Qualified Name.
 *
 * @param object the object (sessions[0], ADMIN role: a policy session when it has adminWithPolicy).
 * @param signKey the signing key (sessions[1], USER role) or TPM_RH_NULL.
 * @throws ClientError `client.response` for an attestation that does not match the request, `client.name` when
 *   the attested Name is not `object`'s (an Entity); TpmError; SessionError; TransportError.
 */
export async function certify(
  tpm: Tpm,
  object: Handle,
  signKey: Handle,
  qualifyingData: Uint8Array,
  options: AttestOptions = {},
): Promise<Attestation<typeof TPM_ST.ATTEST_CERTIFY>> {
  checkQualifyingData(qualifyingData);
  const r = await tpm.run(Certify, { objectHandle: object, signHandle: signKey }, { qualifyingData, inScheme: options.scheme ?? NULL_SCHEME }, runOptions(options));
  const a = attestation('Certify', TPM_ST.ATTEST_CERTIFY, r.params.certifyInfo, r.params.signature, qualifyingData);
  checkName('Certify', object, a.attest.attested.name);
  return a;
}

/** The handle named an object other than the Entity the caller meant (a stale handle, or a TPM that lies). */
function checkName(command: string, object: Handle, name: Uint8Array): void {
  if (typeof object !== 'number' && !equalBytes(object.name, name)) {
    throw new ClientError('client.name', `${command} attested an object whose Name is not the Name of the Entity given`);
  }
}

/** What Create/CreatePrimary/CreateLoaded returned about an object's creation. */
export interface CreationEvidence {
  /** creationHash: H_nameAlg(the marshaled TPMS_CREATION_DATA). */
  readonly creationHash: Uint8Array;
  /** The ticket proving the TPM produced that creation data for that object. */
  readonly creationTicket: TPMT_TK_CREATION;
}

/**
 * Certifies that the TPM created `object` with the creation data hashed in
 * `creation.creationHash` (Part 3 §18.3); the ticket ties the hash to the object's Name.
 *
 * @param signKey the signing key (sessions[0], USER role) or TPM_RH_NULL.
 * @param object the object (needs no authorization).
 * @throws ClientError (`client.response`, `client.name`, `client.argument`); TpmError (TPM_RC_TICKET for a ticket
 *   that does not belong to the object and hash); SessionError; TransportError.
 */
export async function certifyCreation(
  tpm: Tpm,
  signKey: Handle,
  object: Handle,
  creation: CreationEvidence,
  qualifyingData: Uint8Array,
  options: AttestOptions = {},
): Promise<Attestation<typeof TPM_ST.ATTEST_CREATION>> {
  checkQualifyingData(qualifyingData);
  checkBytes(creation?.creationHash, 'creationHash', LIMITS.MAX_DIGEST);
  const r = await tpm.run(
    CertifyCreation,
    { signHandle: signKey, objectHandle: object },
    { qualifyingData, creationHash: creation.creationHash, inScheme: options.scheme ?? NULL_SCHEME, creationTicket: creation.creationTicket },
    runOptions(options),
  );
  const a = attestation('CertifyCreation', TPM_ST.ATTEST_CREATION, r.params.certifyInfo, r.params.signature, qualifyingData);
  checkName('CertifyCreation', object, a.attest.attested.objectName);
  return a;
}

/**
 * Signs the TPM's time and clock (Part 3 §18.7).
 *
 * @param signKey the signing key (sessions[1], USER role; sessions[0] is the endorsement hierarchy's).
 * @throws ClientError (`client.response`, `client.argument`); TpmError; SessionError; TransportError.
 */
export async function getTime(tpm: Tpm, signKey: Handle, qualifyingData: Uint8Array, options: PrivacyAttestOptions = {}): Promise<Attestation<typeof TPM_ST.ATTEST_TIME>> {
  checkQualifyingData(qualifyingData);
  const r = await tpm.run(
    GetTime,
    { privacyAdminHandle: endorsement(options.endorsementAuth), signHandle: signKey },
    { qualifyingData, inScheme: options.scheme ?? NULL_SCHEME },
    runOptions(options),
  );
  return attestation('GetTime', TPM_ST.ATTEST_TIME, r.params.timeInfo, r.params.signature, qualifyingData);
}

/**
 * Signs the audit digest of an HMAC session used with `audit` (Part 3 §18.5).
 * Compare attested.sessionDigest with the digest the client kept,
 * `session.auditDigest`; exclusiveSession says no command ran outside the session since.
 *
 * @param session the audit session (needs no authorization; it stays open).
 * @throws ClientError (`client.response`, `client.argument`); TpmError; SessionError; TransportError.
 */
export async function getSessionAuditDigest(
  tpm: Tpm,
  signKey: Handle,
  session: AuthSession | Entity | number,
  qualifyingData: Uint8Array,
  options: PrivacyAttestOptions = {},
): Promise<Attestation<typeof TPM_ST.ATTEST_SESSION_AUDIT>> {
  checkQualifyingData(qualifyingData);
  const r = await tpm.run(
    GetSessionAuditDigest,
    { privacyAdminHandle: endorsement(options.endorsementAuth), signHandle: signKey, sessionHandle: session },
    { qualifyingData, inScheme: options.scheme ?? NULL_SCHEME },
    runOptions(options),
  );
  return attestation('GetSessionAuditDigest', TPM_ST.ATTEST_SESSION_AUDIT, r.params.auditInfo, r.params.signature, qualifyingData);
}

/**
 * Signs the command audit digest and the digest of the list of audited
 * commands (Part 3 §18.6). When signed by a key (not TPM_RH_NULL) the TPM
 * then clears its audit digest, so the next one covers the commands audited after this.
 *
 * @throws ClientError (`client.response`, `client.argument`); TpmError; SessionError; TransportError.
 */
export async function getCommandAuditDigest(
  tpm: Tpm,
  signKey: Handle,
  qualifyingData: Uint8Array,
  options: PrivacyAttestOptions = {},
): Promise<Attestation<typeof TPM_ST.ATTEST_COMMAND_AUDIT>> {
  checkQualifyingData(qualifyingData);
  const r = await tpm.run(
    GetCommandAuditDigest,
    { privacyHandle: endorsement(options.endorsementAuth), signHandle: signKey },
    { qualifyingData, inScheme: options.scheme ?? NULL_SCHEME },
    runOptions(options),
  );
  return attestation('GetCommandAuditDigest', TPM_ST.ATTEST_COMMAND_AUDIT, r.params.auditInfo, r.params.signature, qualifyingData);
}
