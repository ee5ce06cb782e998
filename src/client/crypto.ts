/**
 * Cryptography with TPM keys (Part 3 §14 "Asymmetric Primitives", §15
 * "Symmetric Primitives", §16 "Random Number Generator", §17 "Hash/HMAC/Event
 * Sequences", §20 "Signing and Signature Verification"), and the conversions
 * a caller needs to check the TPM's results with node:crypto: a TPMT_SIGNATURE
 * as DER (ECDSA) or raw (RSA) bytes, and back; a TPMT_PUBLIC as a KeyObject
 * is secret.ts's `publicKeyFromArea`.
 *
 * Data larger than one TPM buffer is cut in the TPM's own sizes, read once per
 * Tpm from GetCapability (TPM_PT_INPUT_BUFFER for EncryptDecrypt and sequences,
 * TPM_PT_MAX_DIGEST for GetRandom); sequences are flushed when a step fails.
 */
import { constants as cryptoConstants, randomBytes, verify as nodeVerify } from 'node:crypto';
import {
  ECDH_KeyGen,
  ECDH_ZGen,
  EncryptDecrypt,
  EncryptDecrypt2,
  EventSequenceComplete,
  GetCapability,
  GetRandom,
  Hash,
  HMAC,
  HMAC_Start,
  HashSequenceStart,
  RSA_Decrypt,
  RSA_Encrypt,
  SequenceComplete,
  SequenceUpdate,
  Sign,
  StirRandom,
  VerifySignature,
} from '../tpm/commands/index.js';
import { PT_FIXED, PT_VAR, TPM_ALG, TPM_CAP, TPM_PT, TPM_RH, TPM_ST } from '../tpm/constants.js';
import { digestSize, isHashAlg, nodeHashName } from '../tpm/crypto/hash.js';
import { ClientError } from '../tpm/errors.js';
import { LIMITS } from '../tpm/limits.js';
import { handleName } from '../tpm/names.js';
import { eccCurve, publicKeyFromArea } from '../tpm/secret.js';
import { sendOptionsOf, type SendOptions } from '../tpm/transport/transport.js';
import type {
  TPMI_ALG_CIPHER_MODE,
  TPMI_ALG_HASH,
  TPMS_ECC_POINT,
  TPMT_HA,
  TPMT_PUBLIC,
  TPMT_RSA_DECRYPT,
  TPMT_SIG_SCHEME,
  TPMT_SIGNATURE,
  TPMT_TK_HASHCHECK,
  TPMT_TK_VERIFIED,
} from '../tpm/types/index.js';
import type { Entity, Handle, Tpm, TpmRunOptions } from './tpm.js';

const EMPTY = new Uint8Array(0);

function argument(message: string): ClientError {
  return new ClientError('client.argument', message);
}

function bytesArg(value: unknown, what: string): Uint8Array {
  if (!(value instanceof Uint8Array)) throw argument(`${what} must be a Uint8Array`);
  return value;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}



/** The public area of a handle argument when it carries one (a LoadedKey). */
function publicAreaOf(key: Handle): TPMT_PUBLIC | undefined {
  return typeof key === 'object' && key !== null && 'publicArea' in key ? (key as { publicArea: TPMT_PUBLIC }).publicArea : undefined;
}

// ---------------------------------------------------------------------------
// TPM properties

const fixedProperties = new WeakMap<Tpm, Map<number, number | undefined>>();

/**
 * One TPM property (Part 2 §6.13 TPM_PT) through GetCapability(TPM_PROPERTIES),
 * or undefined when the TPM does not report it. Fixed properties (PT_FIXED
 * group) never change, so they are asked once per Tpm.
 *
 * @throws TpmError; TransportError.
 */
export async function tpmProperty(tpm: Tpm, property: number, options: SendOptions = {}): Promise<number | undefined> {
  const fixed = property >= PT_FIXED && property < PT_VAR;
  const cache = fixedProperties.get(tpm);
  if (fixed && cache?.has(property)) return cache.get(property);
  const r = await tpm.run(GetCapability, {}, { capability: TPM_CAP.TPM_PROPERTIES, property, propertyCount: 1 }, sendOptionsOf(options));
  const data = r.params.capabilityData;
  const item = data.capability === TPM_CAP.TPM_PROPERTIES ? data.data.find((p) => p.property === property) : undefined;
  const value = item === undefined ? undefined : item.value >>> 0;
  if (fixed) {
    const m = cache ?? new Map<number, number | undefined>();
    m.set(property, value);
    fixedProperties.set(tpm, m);
  }
  return value;
}

/** A buffer size from a TPM property, bounded by what the codecs allow and by a floor for TPMs that do not say. */
async function bufferSize(tpm: Tpm, property: number, codecMax: number, fallback: number, options: SendOptions): Promise<number> {
  return clampBufferSize(await tpmProperty(tpm, property, options), codecMax, fallback);
}

function clampBufferSize(v: number | undefined, codecMax: number, fallback: number): number {
  return Math.max(1, Math.min(v === undefined || v === 0 ? fallback : v, codecMax));
}

/** bufferSize for a fixed property already asked of this Tpm, without waiting; undefined when it has not been asked. */
function cachedBufferSize(tpm: Tpm, property: number, codecMax: number, fallback: number): number | undefined {
  const cache = fixedProperties.get(tpm);
  return cache !== undefined && cache.has(property) ? clampBufferSize(cache.get(property), codecMax, fallback) : undefined;
}

/** TPM_PT_INPUT_BUFFER: the largest TPM2B_MAX_BUFFER the TPM takes (Part 2 §10.4.8; 1024 on swtpm). */
export function inputBufferSize(tpm: Tpm, options: SendOptions = {}): Promise<number> {
  return bufferSize(tpm, TPM_PT.INPUT_BUFFER, LIMITS.MAX_DIGEST_BUFFER, 1024, options);
}

// ---------------------------------------------------------------------------
// Signatures: on the TPM

export interface SignOptions extends TpmRunOptions {
  /**
   * A ticket proving the TPM hashed the data and it does not start with
   * TPM_GENERATED_VALUE (from `hash`); restricted keys need it. Default: the NULL ticket.
   */
  readonly validation?: TPMT_TK_HASHCHECK;
}

const NULL_HASHCHECK: TPMT_TK_HASHCHECK = { tag: TPM_ST.HASHCHECK, hierarchy: TPM_RH.NULL, digest: EMPTY };
const NULL_SIG_SCHEME: TPMT_SIG_SCHEME = { scheme: TPM_ALG.NULL };

/** The hash in a scheme's details (TPMS_SCHEME_HASH and friends), if it has one. */
function detailsHash(scheme: { readonly scheme: number }): number | undefined {
  const d = (scheme as { readonly details?: unknown }).details;
  return typeof d === 'object' && d !== null && 'hashAlg' in d ? (d as { readonly hashAlg: number }).hashAlg : undefined;
}

/** The hash a signing scheme names, or the key's own scheme's when the scheme is NULL. */
function schemeHash(scheme: TPMT_SIG_SCHEME, key: Handle): number | undefined {
  if (scheme.scheme !== TPM_ALG.NULL) return detailsHash(scheme);
  const pub = publicAreaOf(key);
  if (pub === undefined || pub.type === TPM_ALG.SYMCIPHER) return undefined;
  return detailsHash(pub.parameters.scheme);
}

/**
 * Signs `digest` with a loaded signing key (Part 3 §20.2): RSASSA, RSAPSS,
 * ECDSA (and the other ECC schemes) or HMAC with a keyedHash key. `scheme`
 * NULL (the default) uses the key's own scheme, which must then not be NULL.
 * The digest must be as long as the scheme's hash.
 *
 * @throws ClientError `client.argument` for a digest whose length does not fit the scheme (before sending);
 *   TpmError (TPM_RC_SCHEME, TPM_RC_KEY, TPM_RC_TICKET for a restricted key without a ticket); SessionError; TransportError.
 */
export async function sign(tpm: Tpm, key: Handle, digest: Uint8Array, scheme: TPMT_SIG_SCHEME = NULL_SIG_SCHEME, options: SignOptions = {}): Promise<TPMT_SIGNATURE> {
  bytesArg(digest, 'sign: digest');
  const h = schemeHash(scheme, key);
  if (h !== undefined && isHashAlg(h) && digest.length !== digestSize(h)) {
    throw argument(`sign: a ${digest.length}-byte digest for a scheme hashing with 0x${h.toString(16)} (${digestSize(h)} bytes)`);
  }
  const r = await tpm.run(Sign, { keyHandle: key }, { digest, inScheme: scheme, validation: options.validation ?? NULL_HASHCHECK }, options);
  return r.params.signature;
}

/**
 * Has the TPM verify a signature over `digest` with a loaded public key
 * (Part 3 §20.1) and returns the verification ticket (a NULL ticket when the
 * key is in the NULL hierarchy, as loadExternal's default). A signature that
 * does not verify is a TpmError (TPM_RC_SIGNATURE).
 *
 * @throws TpmError; TransportError.
 */
export async function verifySignature(tpm: Tpm, key: Handle, digest: Uint8Array, signature: TPMT_SIGNATURE, options: SendOptions = {}): Promise<TPMT_TK_VERIFIED> {
  bytesArg(digest, 'verifySignature: digest');
  const r = await tpm.run(VerifySignature, { keyHandle: key }, { digest, signature }, sendOptionsOf(options));
  return r.params.validation;
}

// ---------------------------------------------------------------------------
// Signatures: node:crypto

/** A TPM signature in the form node:crypto's `verify` takes. */
export interface NodeSignature {
  /** The signature's hash as node:crypto names it ('sha256'). */
  readonly hash: string;
  /** DER SEQUENCE { r, s } for ECDSA; the raw signature (modulus-sized) for RSA. */
  readonly signature: Uint8Array;
  /** RSA only: crypto.constants.RSA_PKCS1_PADDING (RSASSA) or RSA_PKCS1_PSS_PADDING (RSAPSS). */
  readonly padding?: number;
  /**
   * RSAPSS only: RSA_PSS_SALTLEN_AUTO, since TPMs differ (the reference uses the
   * digest size, older ones the largest salt that fits; Part 1 Annex B.7).
   */
  readonly saltLength?: number;
}

function derLength(n: number): number[] {
  if (n < 0x80) return [n];
  if (n < 0x100) return [0x81, n];
  return [0x82, n >>> 8, n & 0xff];
}

/** An unsigned big-endian integer as a DER INTEGER: leading zeros dropped, one 0x00 kept when the top bit is set (X.690 §8.3). */
function derInteger(v: Uint8Array): number[] {
  let i = 0;
  while (i < v.length - 1 && v[i] === 0) i++;
  const body = v.length === 0 ? [0] : [...v.subarray(i)];
  if (body[0]! & 0x80) body.unshift(0);
  return [0x02, ...derLength(body.length), ...body];
}

/** ECDSA (r, s) as the DER SEQUENCE of RFC 3279 §2.2.3 (Ecdsa-Sig-Value), what node:crypto and OpenSSL verify by default. */
export function ecdsaSignatureToDer(r: Uint8Array, s: Uint8Array): Uint8Array {
  const body = [...derInteger(r), ...derInteger(s)];
  return Uint8Array.from([0x30, ...derLength(body.length), ...body]);
}

/**
 * Reads a DER Ecdsa-Sig-Value into (r, s), each left-padded to `size` bytes.
 * Strict DER: definite minimal lengths, no trailing bytes, positive minimal integers.
 * @throws ClientError `client.argument` for anything else.
 */
export function ecdsaSignatureFromDer(der: Uint8Array, size: number): { r: Uint8Array; s: Uint8Array } {
  bytesArg(der, 'ECDSA signature');
  let at = 0;
  const fail = (m: string): never => {
    throw argument(`ECDSA signature: ${m} (offset ${at})`);
  };
  const length = (): number => {
    const first = der[at++] ?? fail('truncated');
    if (first < 0x80) return first;
    if (first === 0x81) {
      const n = der[at++] ?? fail('truncated');
      if (n < 0x80) fail('non-minimal length');
      return n;
    }
    if (first === 0x82) {
      const n = ((der[at++] ?? fail('truncated')) << 8) | (der[at++] ?? fail('truncated'));
      if (n < 0x100) fail('non-minimal length');
      return n;
    }
    return fail('unsupported length form');
  };
  const integer = (): Uint8Array => {
    if (der[at++] !== 0x02) fail('expected an INTEGER');
    const n = length();
    if (n === 0 || at + n > der.length) fail('bad INTEGER length');
    const v = der.subarray(at, at + n);
    at += n;
    if (v[0]! & 0x80) fail('negative INTEGER');
    if (v.length > 1 && v[0] === 0 && !(v[1]! & 0x80)) fail('non-minimal INTEGER');
    const mag = v[0] === 0 ? v.subarray(1) : v;
    if (mag.length > size) fail(`INTEGER longer than ${size} bytes`);
    const out = new Uint8Array(size);
    out.set(mag, size - mag.length);
    return out;
  };
  if (der[at++] !== 0x30) fail('expected a SEQUENCE');
  const n = length();
  if (at + n !== der.length) fail('SEQUENCE length does not match the input');
  const r = integer();
  const s = integer();
  if (at !== der.length) fail('trailing bytes in the SEQUENCE');
  return { r, s };
}

/**
 * A TPMT_SIGNATURE as node:crypto verifies it:
 * `crypto.verify(n.hash, message, { key: publicKeyFromArea(pub), padding: n.padding, saltLength: n.saltLength }, n.signature)`.
 *
 * @throws ClientError `client.argument` for HMAC, NULL and the ECC schemes node:crypto cannot verify (ECDAA, SM2, EC-Schnorr).
 */
export function signatureToNode(signature: TPMT_SIGNATURE): NodeSignature {
  switch (signature.sigAlg) {
    case TPM_ALG.RSASSA:
      return { hash: nodeHashName(signature.signature.hash), signature: signature.signature.sig.slice(), padding: cryptoConstants.RSA_PKCS1_PADDING };
    case TPM_ALG.RSAPSS:
      return {
        hash: nodeHashName(signature.signature.hash),
        signature: signature.signature.sig.slice(),
        padding: cryptoConstants.RSA_PKCS1_PSS_PADDING,
        saltLength: cryptoConstants.RSA_PSS_SALTLEN_AUTO,
      };
    case TPM_ALG.ECDSA:
      return { hash: nodeHashName(signature.signature.hash), signature: ecdsaSignatureToDer(signature.signature.signatureR, signature.signature.signatureS) };
    default:
      throw argument(`a signature with sigAlg 0x${Number(signature.sigAlg).toString(16)} has no node:crypto form (RSASSA, RSAPSS and ECDSA do)`);
  }
}

/**
 * The TPMT_SIGNATURE of a signature node:crypto made (`crypto.sign`), to give
 * to VerifySignature or PolicySigned: DER for ECDSA, raw bytes for RSA.
 *
 * @param publicArea the signer's public area (curve size for ECDSA; RSA or ECC must match `sigAlg`).
 * @throws ClientError `client.argument` for a scheme other than RSASSA/RSAPSS/ECDSA, a key of the other type, or malformed DER.
 */
export function signatureFromNode(
  publicArea: TPMT_PUBLIC,
  sigAlg: typeof TPM_ALG.RSASSA | typeof TPM_ALG.RSAPSS | typeof TPM_ALG.ECDSA,
  hashAlg: TPMI_ALG_HASH,
  signature: Uint8Array,
): TPMT_SIGNATURE {
  bytesArg(signature, 'signature');
  if (sigAlg === TPM_ALG.ECDSA) {
    if (publicArea.type !== TPM_ALG.ECC) throw argument('an ECDSA signature needs an ECC public area');
    const { r, s } = ecdsaSignatureFromDer(signature, eccCurve(publicArea.parameters.curveID).size);
    return { sigAlg, signature: { hash: hashAlg, signatureR: r, signatureS: s } };
  }
  if (sigAlg !== TPM_ALG.RSASSA && sigAlg !== TPM_ALG.RSAPSS) throw argument(`sigAlg 0x${Number(sigAlg).toString(16)}: expected RSASSA, RSAPSS or ECDSA`);
  if (publicArea.type !== TPM_ALG.RSA) throw argument('an RSA signature needs an RSA public area');
  return { sigAlg, signature: { hash: hashAlg, sig: signature.slice() } };
}

/**
 * Verifies a TPM signature over `message` (not a digest: node:crypto hashes
 * it with the signature's hash) with node:crypto and the key of `publicArea`.
 * Returns false for a signature that does not verify.
 *
 * @throws ClientError `client.argument` for a scheme node:crypto cannot verify; CryptoError for an unusable public area.
 */
export function verifyWithNode(publicArea: TPMT_PUBLIC, message: Uint8Array, signature: TPMT_SIGNATURE): boolean {
  bytesArg(message, 'message');
  const n = signatureToNode(signature);
  const key = publicKeyFromArea(publicArea);
  return nodeVerify(
    n.hash,
    message,
    { key, ...(n.padding !== undefined ? { padding: n.padding } : {}), ...(n.saltLength !== undefined ? { saltLength: n.saltLength } : {}) },
    n.signature,
  );
}

// ---------------------------------------------------------------------------
// RSA and ECDH

/** An OAEP label as the TPM wants it: empty, or ending in a NUL that is part of L (Part 3 §14.2; reference IsLabelProperlyFormatted). */
function rsaLabel(label: string | Uint8Array | undefined): Uint8Array {
  if (label === undefined) return EMPTY;
  if (typeof label === 'string') {
    if (label.length === 0) return EMPTY;
    if (label.includes('\0')) throw argument('RSA label: a string label must not contain NUL (the terminator is added)');
    return concat([new TextEncoder().encode(label), new Uint8Array([0])]);
  }
  bytesArg(label, 'RSA label');
  if (label.length > 0 && label[label.length - 1] !== 0) throw argument('RSA label: a byte label must end with its NUL (the TPM answers TPM_RC_VALUE)');
  return label;
}

export interface RsaCryptOptions extends TpmRunOptions {
  /** OAEP with a hash, RSAES (PKCS#1 v1.5), or NULL (default): the key's own scheme. */
  readonly scheme?: TPMT_RSA_DECRYPT;
  /**
   * The OAEP label: a string (its UTF-8 bytes and a NUL are sent, and the NUL is
   * part of the label node:crypto must use), or bytes that end in NUL.
   */
  readonly label?: string | Uint8Array;
}

/**
 * Encrypts `message` to a loaded RSA key's public part (Part 3 §14.2). The
 * key needs `decrypt`; no authorization is needed.
 *
 * @throws ClientError `client.argument` for a bad label; TpmError (TPM_RC_VALUE for a message too long for the padding); TransportError.
 */
export async function rsaEncrypt(tpm: Tpm, key: Handle, message: Uint8Array, options: RsaCryptOptions = {}): Promise<Uint8Array> {
  bytesArg(message, 'rsaEncrypt: message');
  const label = rsaLabel(options.label);
  const r = await tpm.run(RSA_Encrypt, { keyHandle: key }, { message, inScheme: options.scheme ?? { scheme: TPM_ALG.NULL }, label }, options);
  return r.params.outData;
}

/**
 * Decrypts with a loaded RSA key (Part 3 §14.3): unrestricted, `decrypt` set,
 * authorized with the USER role.
 *
 * @throws ClientError `client.argument` for a bad label; TpmError (TPM_RC_VALUE when the padding or label does not match); SessionError; TransportError.
 */
export async function rsaDecrypt(tpm: Tpm, key: Handle, cipherText: Uint8Array, options: RsaCryptOptions = {}): Promise<Uint8Array> {
  bytesArg(cipherText, 'rsaDecrypt: cipherText');
  const label = rsaLabel(options.label);
  const r = await tpm.run(RSA_Decrypt, { keyHandle: key }, { cipherText, inScheme: options.scheme ?? { scheme: TPM_ALG.NULL }, label }, options);
  return r.params.message;
}

/**
 * ECDH_KeyGen (Part 3 §14.4): the TPM makes an ephemeral key pair on the
 * curve of a loaded ECC public key and returns the ephemeral public point and
 * the shared point Z = [d_e]Q (its x-coordinate is the shared secret).
 *
 * @throws TpmError; TransportError.
 */
export async function ecdhKeyGen(tpm: Tpm, key: Handle, options: SendOptions = {}): Promise<{ zPoint: TPMS_ECC_POINT; pubPoint: TPMS_ECC_POINT }> {
  const r = await tpm.run(ECDH_KeyGen, { keyHandle: key }, {}, sendOptionsOf(options));
  return { zPoint: r.params.zPoint, pubPoint: r.params.pubPoint };
}

/**
 * ECDH_ZGen (Part 3 §14.5): the shared point [d]P of a loaded ECC key
 * (`decrypt` set, unrestricted) and a peer's public point.
 *
 * @throws TpmError (TPM_RC_ECC_POINT for a point off the curve); SessionError; TransportError.
 */
export async function ecdhZGen(tpm: Tpm, key: Handle, inPoint: TPMS_ECC_POINT, options: TpmRunOptions = {}): Promise<TPMS_ECC_POINT> {
  const r = await tpm.run(ECDH_ZGen, { keyHandle: key }, { inPoint }, options);
  return r.params.outPoint;
}

// ---------------------------------------------------------------------------
// Symmetric

export interface SymmetricOptions extends TpmRunOptions {
  /** The mode; NULL (default) uses the key's. A key with a mode accepts only that one (TPM_RC_MODE). */
  readonly mode?: TPMI_ALG_CIPHER_MODE | typeof TPM_ALG.NULL;
  /** The IV (one block); zeros by default, empty for ECB. */
  readonly iv?: Uint8Array;
  /**
   * EncryptDecrypt2 (default: its data comes first, so it can be parameter-encrypted)
   * or EncryptDecrypt (Part 3 §15.2), for TPMs without the newer command.
   */
  readonly command?: 'EncryptDecrypt' | 'EncryptDecrypt2';
}

export interface SymmetricResult {
  readonly data: Uint8Array;
  /** The chaining value after the last block: the IV to continue with. */
  readonly iv: Uint8Array;
}

const AES_BLOCK = 16;

/**
 * Encrypts or decrypts with a loaded symmetric key (Part 3 §15.2/§15.3),
 * in chunks of the TPM's input buffer, carrying the IV from chunk to chunk
 * (chunks are whole blocks, so CFB, OFB and CTR continue exactly). CBC and
 * ECB need data in whole blocks: the TPM does no padding.
 *
 * @throws ClientError `client.argument` for CBC/ECB data not in whole blocks (when the mode is known), or a bad IV;
 *   TpmError (TPM_RC_MODE, TPM_RC_SIZE, TPM_RC_KEY, TPM_RC_ATTRIBUTES); SessionError; TransportError.
 */
export async function encryptDecrypt(tpm: Tpm, key: Handle, decrypt: boolean, data: Uint8Array, options: SymmetricOptions = {}): Promise<SymmetricResult> {
  bytesArg(data, 'encryptDecrypt: data');
  const pub = publicAreaOf(key);
  const keyMode = pub?.type === TPM_ALG.SYMCIPHER ? pub.parameters.sym.mode : undefined;
  const mode = options.mode ?? TPM_ALG.NULL;
  const effective = mode !== TPM_ALG.NULL ? mode : keyMode;
  if ((effective === TPM_ALG.CBC || effective === TPM_ALG.ECB) && data.length % AES_BLOCK !== 0) {
    throw argument(`encryptDecrypt: ${effective === TPM_ALG.CBC ? 'CBC' : 'ECB'} needs whole ${AES_BLOCK}-byte blocks, got ${data.length} bytes`);
  }
  let iv = options.iv ?? (effective === TPM_ALG.ECB ? EMPTY : new Uint8Array(AES_BLOCK));
  bytesArg(iv, 'encryptDecrypt: iv');
  const size = await inputBufferSize(tpm, options);
  const chunk = size - (size % AES_BLOCK);
  const out: Uint8Array[] = [];
  const decryptFlag = decrypt ? 1 : 0;
  let at = 0;
  do {
    const inData = data.subarray(at, at + chunk);
    const r =
      options.command === 'EncryptDecrypt'
        ? await tpm.run(EncryptDecrypt, { keyHandle: key }, { decrypt: decryptFlag, mode, ivIn: iv, inData }, options)
        : await tpm.run(EncryptDecrypt2, { keyHandle: key }, { inData, decrypt: decryptFlag, mode, ivIn: iv }, options);
    if (r.params.outData.length !== inData.length) {
      throw new ClientError('client.response', `encryptDecrypt: ${inData.length} bytes in, ${r.params.outData.length} out`);
    }
    out.push(r.params.outData);
    iv = r.params.ivOut;
    at += chunk;
  } while (at < data.length);
  return { data: concat(out), iv };
}

/** `encryptDecrypt(tpm, key, false, data, options)`. */
export function symmetricEncrypt(tpm: Tpm, key: Handle, data: Uint8Array, options: SymmetricOptions = {}): Promise<SymmetricResult> {
  return encryptDecrypt(tpm, key, false, data, options);
}

/** `encryptDecrypt(tpm, key, true, data, options)`. */
export function symmetricDecrypt(tpm: Tpm, key: Handle, data: Uint8Array, options: SymmetricOptions = {}): Promise<SymmetricResult> {
  return encryptDecrypt(tpm, key, true, data, options);
}

// ---------------------------------------------------------------------------
// Hash, HMAC and event sequences

/** A digest and the TPM's ticket that it hashed data not starting with TPM_GENERATED_VALUE. */
export interface HashResult {
  readonly digest: Uint8Array;
  /** A HASHCHECK ticket for Sign with a restricted key, or a NULL ticket (hierarchy NULL, or data that could pass for an attestation). */
  readonly validation: TPMT_TK_HASHCHECK;
}

export interface HashOptions extends SendOptions {
  /** The hierarchy of the ticket; TPM_RH_OWNER by default (TPM_RH_NULL for no ticket). */
  readonly hierarchy?: number;
}

/** A sequence object: its Name is empty (only a handle's authValue authorizes it; Part 1 §32.4.4). */
function sequenceEntity(handle: number, authValue: Uint8Array): Entity {
  return { handle, name: EMPTY, authValue };
}

/** Feeds `data` to a started sequence in TPM-sized chunks, keeping the last chunk (possibly empty) for the completing command. */
async function feedSequence(tpm: Tpm, seq: Entity, data: Uint8Array, chunk: number, options: SendOptions): Promise<Uint8Array> {
  let at = 0;
  while (data.length - at > chunk) {
    await tpm.run(SequenceUpdate, { sequenceHandle: seq }, { buffer: data.subarray(at, at + chunk) }, sendOptionsOf(options));
    at += chunk;
  }
  return data.subarray(at);
}

/**
 * Runs `fn` with a sequence object and flushes the sequence when `fn` fails
 * (a completed sequence is gone already: SequenceComplete and
 * EventSequenceComplete flush it, Part 3 §17.6, §17.7).
 */
async function withSequence<R>(tpm: Tpm, handle: number, fn: () => Promise<R>): Promise<R> {
  try {
    return await fn();
  } catch (e) {
    try {
      await tpm.flush(handle);
    } catch {
      // The sequence may be gone with the failure; the original error matters.
    }
    throw e;
  }
}

/** A fresh authValue for a sequence: another program cannot drive it between our commands. */
function sequenceAuth(): Uint8Array {
  return new Uint8Array(randomBytes(16));
}

function hierarchyArg(h: number | undefined): typeof TPM_RH.OWNER {
  return (h ?? TPM_RH.OWNER) as typeof TPM_RH.OWNER;
}

/**
 * Hashes `data` on the TPM: with Hash (Part 3 §15.4) when it fits the TPM's
 * input buffer, else with HashSequenceStart / SequenceUpdate /
 * SequenceComplete (§17.3–§17.6) in buffer-sized chunks. Returns the digest
 * and the ticket that lets a restricted key sign it.
 *
 * @throws ClientError `client.argument` for a non-hash algorithm; TpmError; TransportError.
 */
export async function hash(tpm: Tpm, data: Uint8Array, hashAlg: TPMI_ALG_HASH = TPM_ALG.SHA256, options: HashOptions = {}): Promise<HashResult> {
  bytesArg(data, 'hash: data');
  if (!isHashAlg(hashAlg)) throw argument(`hash: 0x${Number(hashAlg).toString(16)} is not a hash algorithm`);
  const chunk = await inputBufferSize(tpm, options);
  const hierarchy = hierarchyArg(options.hierarchy);
  if (data.length <= chunk) {
    const r = await tpm.run(Hash, {}, { data, hashAlg, hierarchy }, sendOptionsOf(options));
    return { digest: r.params.outHash, validation: r.params.validation };
  }
  const auth = sequenceAuth();
  const start = await tpm.run(HashSequenceStart, {}, { auth, hashAlg }, sendOptionsOf(options));
  const seq = sequenceEntity(start.handles.sequenceHandle, auth);
  return withSequence(tpm, seq.handle, async () => {
    const last = await feedSequence(tpm, seq, data, chunk, options);
    const r = await tpm.run(SequenceComplete, { sequenceHandle: seq }, { buffer: last, hierarchy }, sendOptionsOf(options));
    return { digest: r.params.result, validation: r.params.validation };
  });
}

export interface HmacOptions extends TpmRunOptions {
  /** The HMAC hash; NULL (default) uses the key's scheme hash. */
  readonly hashAlg?: TPMI_ALG_HASH | typeof TPM_ALG.NULL;
}

/**
 * HMAC of `data` with a loaded keyedHash key (`sign` set): HMAC (Part 3
 * §15.5) when it fits the input buffer, else HMAC_Start / SequenceUpdate /
 * SequenceComplete (§17.2, §17.5, §17.6). `options.sessions` authorize the key.
 *
 * @throws TpmError (TPM_RC_KEY, TPM_RC_ATTRIBUTES, TPM_RC_SCHEME); SessionError; TransportError.
 */
export async function hmac(tpm: Tpm, key: Handle, data: Uint8Array, options: HmacOptions = {}): Promise<Uint8Array> {
  bytesArg(data, 'hmac: data');
  const chunk = await inputBufferSize(tpm, options);
  const hashAlg = options.hashAlg ?? TPM_ALG.NULL;
  if (data.length <= chunk) {
    const r = await tpm.run(HMAC, { handle: key }, { buffer: data, hashAlg }, options);
    return r.params.outHMAC;
  }
  const auth = sequenceAuth();
  const start = await tpm.run(HMAC_Start, { handle: key }, { auth, hashAlg }, options);
  const seq = sequenceEntity(start.handles.sequenceHandle, auth);
  return withSequence(tpm, seq.handle, async () => {
    const last = await feedSequence(tpm, seq, data, chunk, options);
    const r = await tpm.run(SequenceComplete, { sequenceHandle: seq }, { buffer: last, hierarchy: TPM_RH.NULL }, sendOptionsOf(options));
    return r.params.result;
  });
}

export interface EventSequenceOptions extends SendOptions {
  /** The PCR to extend with the digests; TPM_RH_NULL (default) only computes them. */
  readonly pcr?: number;
  /** The PCR's authValue (empty for PC Client PCRs). */
  readonly pcrAuth?: Uint8Array;
}

/**
 * An event sequence (Part 3 §17.4 with a NULL hash, §17.7): the TPM hashes
 * `data` with every implemented hash, extends each allocated bank of
 * `options.pcr` with its digest, and returns the digests (one TPMT_HA per hash).
 *
 * @throws TpmError (TPM_RC_LOCALITY for a PCR not extendable here); TransportError.
 */
export async function eventSequence(tpm: Tpm, data: Uint8Array, options: EventSequenceOptions = {}): Promise<TPMT_HA[]> {
  bytesArg(data, 'eventSequence: data');
  const chunk = await inputBufferSize(tpm, options);
  const auth = sequenceAuth();
  const start = await tpm.run(HashSequenceStart, {}, { auth, hashAlg: TPM_ALG.NULL }, sendOptionsOf(options));
  const seq = sequenceEntity(start.handles.sequenceHandle, auth);
  const pcr = options.pcr ?? TPM_RH.NULL;
  // A PCR is named by its handle (Part 1 §16.2) and authorized by its authValue, empty unless PCR_SetAuthValue set one.
  const pcrEntity: Handle = pcr === TPM_RH.NULL ? pcr : { handle: pcr, name: handleName(pcr), authValue: options.pcrAuth ?? EMPTY };
  return withSequence(tpm, seq.handle, async () => {
    const last = await feedSequence(tpm, seq, data, chunk, options);
    const r = await tpm.run(EventSequenceComplete, { pcrHandle: pcrEntity, sequenceHandle: seq }, { buffer: last }, sendOptionsOf(options));
    return r.params.results;
  });
}

// ---------------------------------------------------------------------------
// Random

/**
 * `count` random bytes from the TPM's RNG (Part 3 §16.1), in requests of at
 * most the TPM's largest digest (TPM_PT_MAX_DIGEST); a TPM may return fewer
 * bytes than asked, so this asks again until it has them all.
 *
 * @throws ClientError `client.argument` for a bad count, `client.response` for an answer longer than asked or
 *   empty; TpmError; TransportError.
 */
export async function getRandom(tpm: Tpm, count: number, options: SendOptions = {}): Promise<Uint8Array> {
  if (!Number.isSafeInteger(count) || count < 0) throw argument(`getRandom: count ${String(count)} must be a non-negative integer`);
  // TPM_PT_MAX_DIGEST is fixed: after the first call it comes from the cache without another wait.
  const max = cachedBufferSize(tpm, TPM_PT.MAX_DIGEST, LIMITS.MAX_DIGEST, 32) ?? (await bufferSize(tpm, TPM_PT.MAX_DIGEST, LIMITS.MAX_DIGEST, 32, options));
  const send = sendOptionsOf(options);
  let out: Uint8Array | undefined;
  let have = 0;
  while (have < count) {
    const want = Math.min(max, count - have);
    const r = await tpm.run(GetRandom, {}, { bytesRequested: want }, send);
    const got = r.params.randomBytes;
    if (got.length === 0 || got.length > want) throw new ClientError('client.response', `getRandom: asked for ${want} bytes, got ${got.length}`);
    // The decoded bytes are already a copy of their own: one answer with everything is returned as it is.
    if (have === 0 && got.length === count) return got;
    out ??= new Uint8Array(count);
    out.set(got, have);
    have += got.length;
  }
  return out ?? new Uint8Array(count);
}

/**
 * Mixes `data` into the TPM's RNG state (Part 3 §16.2), in pieces of at most
 * 128 bytes (TPM2B_SENSITIVE_DATA, MAX_SYM_DATA).
 *
 * @throws TpmError; TransportError.
 */
export async function stirRandom(tpm: Tpm, data: Uint8Array, options: SendOptions = {}): Promise<void> {
  bytesArg(data, 'stirRandom: data');
  for (let at = 0; at < data.length; at += LIMITS.MAX_SYM_DATA) {
    await tpm.run(StirRandom, {}, { inData: data.subarray(at, at + LIMITS.MAX_SYM_DATA) }, sendOptionsOf(options));
  }
}
