/**
 * The math of authorization sessions (Part 1 §19 "Authorizations and
 * Acknowledgments", §21 "Session-based encryption"), as pure functions that
 * the client and the software TPM both call: session keys, the authValue as it
 * enters an HMAC key, command and response HMACs, parameter encryption (CFB and
 * XOR), audit digests, salts. A client and a TPM that disagreed would then both
 * be wrong, and swtpm (an independent TPM) catches it.
 *
 * Byte layouts follow the reference implementation (ms-tpm-20-ref
 * SessionProcess.c ComputeCommandHMAC/ComputeResponseHMAC, Session.c
 * SessionCreate, CryptUtil.c CryptParameterEncryption/ParmEncryptSym/
 * CryptXORObfuscation), whose comments quote the Part 1 equations.
 */
import { createCipheriv, createDecipheriv, getCiphers, type KeyObject } from 'node:crypto';
import { TPM_ALG } from './constants.js';
import { digestSize, hash, hmac } from './crypto/hash.js';
import { kdfa } from './crypto/kdf.js';
import { ArgumentError, ParseError, UnsupportedAlgorithmError } from './errors.js';
import { decryptSecret, encryptSecret, type EncryptedSecret, type EncryptSecretOptions } from './secret.js';
import type { TPMT_PUBLIC, TPMT_SYM_DEF } from './types/index.js';
import { equalBytes } from './bytes.js';

const EMPTY = new Uint8Array(0);

function checkBytes(v: unknown, what: string): asserts v is Uint8Array {
  if (!(v instanceof Uint8Array)) throw new ArgumentError(`${what}: expected Uint8Array, got ${v === null ? 'null' : typeof v}`);
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// ---------------------------------------------------------------------------
// authValue and keys

/**
 * The authValue as a TPM uses it in HMAC keys, session keys and parameter
 * encryption keys: trailing zero bytes removed (Part 1 §19.6.5 "authValue";
 * the reference's EntityGetAuthValue → MemoryRemoveTrailingZeros). A TPM also
 * strips them from a password before comparing it, so "ab\0" and "ab" are the
 * same password.
 */
export function trimAuthValue(authValue: Uint8Array): Uint8Array {
  return authValue.slice(0, trimmedLength(authValue));
}

/** The length of `authValue` without its trailing zero bytes (checked to be a Uint8Array). */
function trimmedLength(authValue: Uint8Array): number {
  checkBytes(authValue, 'authValue');
  let end = authValue.length;
  while (end > 0 && authValue[end - 1] === 0) end--;
  return end;
}

export interface SessionKeyInput {
  /** The session's hash (StartAuthSession authHash). */
  readonly hashAlg: number;
  /**
   * The authValue of the bind entity, or undefined for an unbound session. A
   * session bound to an entity whose authValue is empty still has a session key.
   */
  readonly bindAuthValue?: Uint8Array | undefined;
  /** The decrypted salt (the seed of the encrypted salt); empty or absent when unsalted. */
  readonly salt?: Uint8Array | undefined;
  readonly nonceTPM: Uint8Array;
  readonly nonceCaller: Uint8Array;
}

/**
 * sessionKey = KDFa(authHash, bindAuthValue ‖ salt, "ATH", nonceTPM, nonceCaller, digestBits)
 * (Part 1 §19.6.8 "sessionKey Creation"; reference Session.c SessionCreate).
 * Empty when the session is neither bound nor salted.
 */
export function sessionKey(input: SessionKeyInput): Uint8Array {
  const salt = input.salt ?? EMPTY;
  checkBytes(salt, 'salt');
  checkBytes(input.nonceTPM, 'nonceTPM');
  checkBytes(input.nonceCaller, 'nonceCaller');
  if (input.bindAuthValue === undefined && salt.length === 0) return new Uint8Array(0);
  const bind = input.bindAuthValue === undefined ? EMPTY : trimAuthValue(input.bindAuthValue);
  return kdfa(input.hashAlg, concat(bind, salt), 'ATH', input.nonceTPM, input.nonceCaller, digestSize(input.hashAlg) * 8);
}

/**
 * The key of a session HMAC and of parameter encryption: sessionKey ‖ authValue
 * (Part 1 §19.6.10 "HMAC Computation", §21.2 "Parameter encryption"). Pass no
 * authValue when it is not included: a bound session used on its bind entity,
 * a policy session without PolicyAuthValue, a session used only for
 * encryption or audit.
 */
export function sessionHmacKey(sessionKey: Uint8Array, authValue?: Uint8Array): Uint8Array {
  checkBytes(sessionKey, 'sessionKey');
  if (authValue === undefined) return sessionKey.slice();
  // One array for the key, without the trimmed authValue's own copy.
  const end = trimmedLength(authValue);
  const key = new Uint8Array(sessionKey.length + end);
  key.set(sessionKey);
  key.set(leading(authValue, end), sessionKey.length);
  return key;
}

/**
 * Whether a session bound to `bound` is used for the bind entity itself, in
 * which case the entity's authValue is already in the session key and stays
 * out of the HMAC key (Part 1 §19.6.11 "Bound sessions"). The reference
 * compares Name and authValue together (SessionComputeBoundEntity), so an
 * entity whose authValue has changed since binding is no longer the bind entity.
 */
export function isBindEntity(
  bound: { readonly name: Uint8Array; readonly authValue: Uint8Array },
  entity: { readonly name: Uint8Array; readonly authValue: Uint8Array },
): boolean {
  if (!equalBytes(bound.name, entity.name)) return false;
  const boundEnd = trimmedLength(bound.authValue);
  const entityEnd = trimmedLength(entity.authValue);
  return equalBytes(leading(bound.authValue, boundEnd), leading(entity.authValue, entityEnd));
}

/**
 * bytes[0, end) to read from: the array itself when that is all of it (the
 * usual case; a first view of a small array costs more than reading it), else a view.
 */
function leading(bytes: Uint8Array, end: number): Uint8Array {
  return end === bytes.length ? bytes : bytes.subarray(0, end);
}


// ---------------------------------------------------------------------------
// HMACs

/** Each value of the TPMA_SESSION byte as a 1-byte array, made once: they only ever enter HMACs, which copy them. */
const ATTRIBUTE_BYTES: readonly Uint8Array[] = Array.from({ length: 256 }, (_, b) => Uint8Array.of(b));

/** The byte of TPMA_SESSION as it enters an HMAC. */
function attributeByte(attributes: number): Uint8Array {
  if (!Number.isInteger(attributes) || attributes < 0 || attributes > 0xff) {
    throw new ArgumentError(`sessionAttributes: expected a byte, got ${String(attributes)}`);
  }
  return ATTRIBUTE_BYTES[attributes]!;
}

export interface CommandHmacInput {
  readonly hashAlg: number;
  /** sessionKey ‖ authValue ({@link sessionHmacKey}). */
  readonly key: Uint8Array;
  readonly cpHash: Uint8Array;
  /** The caller's nonce for this command (nonceNewer). */
  readonly nonceCaller: Uint8Array;
  /** The TPM's nonce from the previous response or StartAuthSession (nonceOlder). */
  readonly nonceTPM: Uint8Array;
  /** Only for the first session: nonceTPM of a separate decrypt session ({@link extraNonces}). */
  readonly decryptNonce?: Uint8Array | undefined;
  /** Only for the first session: nonceTPM of a separate encrypt session. */
  readonly encryptNonce?: Uint8Array | undefined;
  /** TPMA_SESSION of this use, as a byte. */
  readonly attributes: number;
}

/**
 * HMAC_sessionAlg(sessionKey ‖ authValue, cpHash ‖ nonceCaller ‖ nonceTPM
 * ‖ [nonceTPM_decrypt] ‖ [nonceTPM_encrypt] ‖ sessionAttributes)
 * (Part 1 §19.6.10, eq. "authHMAC"; reference ComputeCommandHMAC).
 */
export function commandHmac(input: CommandHmacInput): Uint8Array {
  checkBytes(input.key, 'key');
  checkBytes(input.cpHash, 'cpHash');
  checkBytes(input.nonceCaller, 'nonceCaller');
  checkBytes(input.nonceTPM, 'nonceTPM');
  const parts = [input.cpHash, input.nonceCaller, input.nonceTPM];
  if (input.decryptNonce !== undefined) {
    checkBytes(input.decryptNonce, 'decryptNonce');
    parts.push(input.decryptNonce);
  }
  if (input.encryptNonce !== undefined) {
    checkBytes(input.encryptNonce, 'encryptNonce');
    parts.push(input.encryptNonce);
  }
  parts.push(attributeByte(input.attributes));
  return hmac(input.hashAlg, input.key, ...parts);
}

export interface ResponseHmacInput {
  readonly hashAlg: number;
  /** sessionKey ‖ authValue, as for the command. */
  readonly key: Uint8Array;
  readonly rpHash: Uint8Array;
  /** The TPM's new nonce, from this response (nonceNewer). */
  readonly nonceTPM: Uint8Array;
  /** The caller's nonce of the command (nonceOlder). */
  readonly nonceCaller: Uint8Array;
  /** TPMA_SESSION as returned in the response (the TPM may set auditExclusive). */
  readonly attributes: number;
}

/**
 * HMAC_sessionAlg(sessionKey ‖ authValue, rpHash ‖ nonceTPM ‖ nonceCaller ‖ sessionAttributes)
 * (Part 1 §19.6.10; reference ComputeResponseHMAC). No extra nonces in this direction.
 */
export function responseHmac(input: ResponseHmacInput): Uint8Array {
  checkBytes(input.key, 'key');
  checkBytes(input.rpHash, 'rpHash');
  checkBytes(input.nonceTPM, 'nonceTPM');
  checkBytes(input.nonceCaller, 'nonceCaller');
  return hmac(input.hashAlg, input.key, input.rpHash, input.nonceTPM, input.nonceCaller, attributeByte(input.attributes));
}

/** What {@link extraNonces} needs to know about each session of a command. */
export interface SessionRole {
  /** Authorizes a handle (rather than serving only encryption or audit). */
  readonly authorizes: boolean;
  readonly password: boolean;
  readonly decrypt: boolean;
  readonly encrypt: boolean;
  /** Its nonceTPM before this command. */
  readonly nonceTPM: Uint8Array;
}

/**
 * The extra nonces of the first session's command HMAC: when the first
 * session is an HMAC or policy authorization and a different session decrypts
 * (or encrypts) a parameter, that session's nonceTPM joins the HMAC so the
 * authorization also covers it (Part 1 §19.6.10 "nonceTPMdecrypt",
 * "nonceTPMencrypt"; reference ComputeCommandHMAC). An encrypt session that
 * is also the decrypt session is counted once.
 */
export function extraNonces(sessions: readonly SessionRole[], index: number): { decryptNonce?: Uint8Array; encryptNonce?: Uint8Array } {
  const first = sessions[0];
  if (index !== 0 || first === undefined || !first.authorizes || first.password) return {};
  const dec = sessions.findIndex((s) => s.decrypt);
  const enc = sessions.findIndex((s) => s.encrypt);
  const out: { decryptNonce?: Uint8Array; encryptNonce?: Uint8Array } = {};
  if (dec > 0) out.decryptNonce = sessions[dec]!.nonceTPM;
  if (enc > 0 && enc !== dec) out.encryptNonce = sessions[enc]!.nonceTPM;
  return out;
}

/**
 * An audit session's digest after one command: H(old ‖ cpHash ‖ rpHash)
 * (Part 1 §19.6.14 "Audit sessions"; reference UpdateAuditDigest). The digest
 * starts as zeros of the session hash's size on first use or auditReset.
 */
export function extendAuditDigest(hashAlg: number, old: Uint8Array, cpHash: Uint8Array, rpHash: Uint8Array): Uint8Array {
  checkBytes(old, 'audit digest');
  checkBytes(cpHash, 'cpHash');
  checkBytes(rpHash, 'rpHash');
  return hash(hashAlg, old, cpHash, rpHash);
}

// ---------------------------------------------------------------------------
// Parameter encryption

/** Block ciphers a session can use with CFB, by TPM_ALG_ID; the OpenSSL name takes the key size. */
const BLOCK_CIPHERS: ReadonlyMap<number, { name: string; cipher: (bits: number) => string; block: number }> = new Map([
  [TPM_ALG.AES, { name: 'AES', cipher: (bits: number) => `aes-${bits}-cfb`, block: 16 }],
  [TPM_ALG.CAMELLIA, { name: 'CAMELLIA', cipher: (bits: number) => `camellia-${bits}-cfb`, block: 16 }],
  [TPM_ALG.SM4, { name: 'SM4', cipher: () => 'sm4-cfb', block: 16 }],
]);

let ciphers: ReadonlySet<string> | undefined;
function hasCipher(name: string): boolean {
  ciphers ??= new Set(getCiphers());
  return ciphers.has(name);
}

export interface ParameterCipherInput {
  /** The session's hash: KDFa for CFB and XOR both use it (reference CryptParameterEncryption). */
  readonly hashAlg: number;
  /** The session's TPMT_SYM_DEF (AES/CAMELLIA/SM4 with mode CFB, or XOR). */
  readonly symmetric: TPMT_SYM_DEF;
  /**
   * sessionKey ‖ authValue ({@link sessionHmacKey}), where the authValue is
   * the associated entity's whenever the session authorizes a handle, bound or
   * not, and absent for a session that only encrypts (reference ParseSessionBuffer).
   */
  readonly key: Uint8Array;
  /** nonceCaller of the command. */
  readonly nonceCaller: Uint8Array;
  /** For the command direction: nonceTPM before the command; for the response: the new nonceTPM. */
  readonly nonceTPM: Uint8Array;
}

type Direction = 'command' | 'response';

/**
 * Applies the session cipher to the first parameter of a parameter area,
 * which must be a TPM2B: the u16 size stays in clear, only its content is
 * transformed (Part 1 §21.1). Returns a new array; `paramBytes` is not changed.
 */
function cryptFirstParameter(c: ParameterCipherInput, paramBytes: Uint8Array, direction: Direction, encrypt: boolean): Uint8Array {
  checkBytes(paramBytes, 'paramBytes');
  checkBytes(c.key, 'key');
  checkBytes(c.nonceCaller, 'nonceCaller');
  checkBytes(c.nonceTPM, 'nonceTPM');
  if (paramBytes.length < 2) throw new ParseError('parse.truncated', 'the first parameter needs a 2-byte size', `${direction} parameters`, 0);
  const size = (paramBytes[0]! << 8) | paramBytes[1]!;
  if (size > paramBytes.length - 2) {
    throw new ParseError('parse.size', `first parameter size ${size} exceeds the ${paramBytes.length - 2} byte(s) that follow`, `${direction} parameters`, 0);
  }
  // nonceNewer is the sender's: nonceCaller for a command, nonceTPM for a response (Part 1 §21.3, §21.4).
  const toTpm = direction === 'command';
  const newer = toTpm ? c.nonceCaller : c.nonceTPM;
  const older = toTpm ? c.nonceTPM : c.nonceCaller;
  const out = paramBytes.slice();
  const data = out.subarray(2, 2 + size);
  const sym = c.symmetric;
  if (sym.algorithm === TPM_ALG.XOR) {
    // mask = KDFa(hash, key, "XOR", nonceNewer, nonceOlder, bits) (Part 1 §21.4 "XOR Parameter Obfuscation").
    const mask = kdfa(c.hashAlg, c.key, 'XOR', newer, older, size * 8);
    for (let i = 0; i < size; i++) data[i]! ^= mask[i]!;
    return out;
  }
  if (sym.algorithm === TPM_ALG.NULL) throw new ArgumentError('the session has no symmetric algorithm (TPM_ALG_NULL): it cannot encrypt parameters');
  const info = BLOCK_CIPHERS.get(sym.algorithm);
  if (info === undefined) throw new UnsupportedAlgorithmError(sym.algorithm, `symmetric algorithm 0x${sym.algorithm.toString(16)} is not supported for parameter encryption`);
  if (!('mode' in sym) || sym.mode !== TPM_ALG.CFB) throw new ArgumentError(`session parameter encryption uses CFB (Part 1 §21.3); mode is 0x${('mode' in sym ? sym.mode : 0).toString(16)}`);
  const keyBits = sym.keyBits;
  const name = info.cipher(keyBits);
  if (!hasCipher(name)) throw new UnsupportedAlgorithmError(sym.algorithm, `${info.name}-${keyBits}-CFB is not provided by this Node.js/OpenSSL build`);
  // key ‖ iv = KDFa(hash, key, "CFB", nonceNewer, nonceOlder, keyBits + blockBits) (Part 1 §21.3, eq. 24).
  const keyBytes = keyBits / 8;
  const material = kdfa(c.hashAlg, c.key, 'CFB', newer, older, keyBits + info.block * 8);
  const k = material.subarray(0, keyBytes);
  const iv = material.subarray(keyBytes, keyBytes + info.block);
  const cipher = encrypt ? createCipheriv(name, k, iv) : createDecipheriv(name, k, iv);
  // CFB is a stream mode: update() returns every byte and final() none, so no joined copy of the two.
  const head = cipher.update(data);
  const tail = cipher.final();
  data.set(head);
  if (tail.length > 0) data.set(tail, head.length);
  return out;
}

/** Client: encrypts the first command parameter of a decrypt session (nonceCaller is newer). */
export function encryptCommandParameter(c: ParameterCipherInput, paramBytes: Uint8Array): Uint8Array {
  return cryptFirstParameter(c, paramBytes, 'command', true);
}

/** TPM: decrypts the first command parameter of a decrypt session. */
export function decryptCommandParameter(c: ParameterCipherInput, paramBytes: Uint8Array): Uint8Array {
  return cryptFirstParameter(c, paramBytes, 'command', false);
}

/** TPM: encrypts the first response parameter of an encrypt session (the new nonceTPM is newer). */
export function encryptResponseParameter(c: ParameterCipherInput, paramBytes: Uint8Array): Uint8Array {
  return cryptFirstParameter(c, paramBytes, 'response', true);
}

/** Client: decrypts the first response parameter of an encrypt session. */
export function decryptResponseParameter(c: ParameterCipherInput, paramBytes: Uint8Array): Uint8Array {
  return cryptFirstParameter(c, paramBytes, 'response', false);
}

// ---------------------------------------------------------------------------
// Salts

/**
 * A salt for StartAuthSession, encrypted to the tpmKey (Part 1 §19.6.13
 * "Salted sessions": RSA-OAEP with label "SECRET", or an ephemeral ECDH with
 * KDFe "SECRET" whose encryptedSalt is the marshaled TPMS_ECC_POINT). The
 * primitive is the one MakeCredential ("IDENTITY") and duplication
 * ("DUPLICATE") use, in secret.ts. `seed` is the salt for {@link sessionKey};
 * `encryptedSecret` is StartAuthSession's `encryptedSalt`.
 */
export function encryptSalt(tpmKey: TPMT_PUBLIC, options?: EncryptSecretOptions): EncryptedSecret {
  return encryptSecret(tpmKey, 'SECRET', options);
}

/** The TPM side of {@link encryptSalt}: the salt from encryptedSalt, with the tpmKey's private key (reference CryptSecretDecrypt). */
export function decryptSalt(privateKey: KeyObject, tpmKey: TPMT_PUBLIC, encryptedSalt: Uint8Array): Uint8Array {
  return decryptSecret(privateKey, tpmKey, 'SECRET', encryptedSalt);
}
