/**
 * MakeCredential in software, and its TPM-side inverse (Part 1 §24 "Credential
 * Protection"; Part 3 §12.5 ActivateCredential, §12.6 MakeCredential; the
 * reference's MakeCredential.c, ActivateCredential.c, and Object_spt.c
 * SecretToCredential / CredentialToSecret).
 *
 * A verifier that holds an EK public area binds a credential to a key Name:
 *   seed, secret    = encryptSecret(EK, "IDENTITY")             (secret.ts)
 *   credentialBlob  = outer wrap of TPM2B_DIGEST(credential)   (duplication.ts)
 *                     under (EK.nameAlg, EK.symmetric, seed, objectName), zero IV.
 * Only a TPM that holds the EK's private key and has an object with that Name
 * loaded gets the credential back (ActivateCredential).
 */
import type { KeyObject } from 'node:crypto';
import { TPM_ALG } from './constants.js';
import { digestSize, isHashAlg } from './crypto/hash.js';
import { produceOuterWrap, unwrapOuter } from './duplication.js';
import { ArgumentError, CryptoError, ParseError } from './errors.js';
import { decryptSecret, type EccPublicArea, encryptSecret, type EncryptSecretOptions, type RsaPublicArea } from './secret.js';
import { TPM2B_DIGEST, type TPMT_PUBLIC } from './types/index.js';
import { decode, encode } from './wire/codec.js';

/** MakeCredential's output (field names are the command's response parameters). */
export interface MadeCredential {
  /** TPM2B_ID_OBJECT content: u16 ‖ integrity HMAC ‖ encrypted TPM2B_DIGEST(credential). */
  readonly credentialBlob: Uint8Array;
  /** TPM2B_ENCRYPTED_SECRET content: the seed encrypted to the EK with "IDENTITY". */
  readonly secret: Uint8Array;
}

/**
 * MakeCredential.c / ActivateCredential.c: the EK must be asymmetric,
 * restricted and decrypt (TPM_RC_TYPE otherwise); and it needs a symmetric
 * algorithm, which every restricted decrypt key has.
 */
function checkEk(ek: TPMT_PUBLIC): RsaPublicArea | EccPublicArea {
  if (ek === null || typeof ek !== 'object') throw new ArgumentError('ekPublic: expected a TPMT_PUBLIC');
  if (ek.type !== TPM_ALG.RSA && ek.type !== TPM_ALG.ECC) throw new CryptoError('crypto.key', 'the credential key must be an RSA or ECC key');
  if (!ek.objectAttributes.restricted || !ek.objectAttributes.decrypt) {
    throw new CryptoError('crypto.key', 'the credential key must be a restricted decryption key (TPMA_OBJECT restricted | decrypt)');
  }
  if (!isHashAlg(ek.nameAlg)) throw new CryptoError('crypto.key', 'the credential key has no nameAlg');
  if (ek.parameters.symmetric.algorithm === TPM_ALG.NULL) throw new CryptoError('crypto.key', 'the credential key has no symmetric algorithm');
  return ek;
}

/** A Name of an object: nameAlg (u16) ‖ digest of that algorithm's size (Part 1 §16). */
function checkObjectName(name: Uint8Array): void {
  if (!(name instanceof Uint8Array)) throw new ArgumentError('objectName: expected a Uint8Array');
  const alg = name.length >= 2 ? (name[0]! << 8) | name[1]! : -1;
  if (!isHashAlg(alg)) throw new ArgumentError('objectName: does not start with a hash algorithm (an object Name is nameAlg ‖ digest)');
  if (name.length !== 2 + digestSize(alg)) throw new ArgumentError(`objectName: ${name.length} byte(s), nameAlg 0x${alg.toString(16)} needs ${2 + digestSize(alg)}`);
}

/**
 * Wraps `credential` for the object named `objectName`, to be opened by the
 * TPM holding `ekPublic`'s private key (TPM2_ActivateCredential).
 *
 * @param ekPublic the EK (or any restricted decryption key) public area; RSA uses OAEP with label "IDENTITY\0"
 *   and the nameAlg hash, ECC an ephemeral ECDH on its curve and KDFe "IDENTITY"; the wrap uses its symmetric (e.g. AES-128-CFB).
 * @param objectName the Name of the key the credential is bound to (usually an AK), nameAlg ‖ digest.
 * @param credential at most digestSize(ekPublic.nameAlg) bytes (TPM_RC_SIZE on a TPM).
 * @param options fixed seed (RSA) or ephemeral scalar (ECC), for known-answer tests only.
 * @throws CryptoError (`crypto.key`) for an EK that is not a restricted decryption key; ArgumentError for an oversize
 *   credential or a malformed Name; UnsupportedAlgorithmError for a curve, hash or cipher node:crypto lacks.
 * @example const { credentialBlob, secret } = makeCredential(ekPublic, objectName(akPublic), nonce);
 */
export function makeCredential(ekPublic: TPMT_PUBLIC, objectName: Uint8Array, credential: Uint8Array, options: EncryptSecretOptions = {}): MadeCredential {
  const ek = checkEk(ekPublic);
  checkObjectName(objectName);
  if (!(credential instanceof Uint8Array)) throw new ArgumentError('credential: expected a Uint8Array');
  if (credential.length > digestSize(ek.nameAlg)) {
    throw new ArgumentError(`credential of ${credential.length} byte(s) is longer than the EK nameAlg digest (${digestSize(ek.nameAlg)})`);
  }
  const { seed, encryptedSecret } = encryptSecret(ek, 'IDENTITY', options);
  const credentialBlob = produceOuterWrap(
    { hashAlg: ek.nameAlg, symmetric: ek.parameters.symmetric, seed, name: objectName },
    encode(TPM2B_DIGEST, credential),
  );
  return { credentialBlob, secret: encryptedSecret };
}

/**
 * The TPM side of ActivateCredential: recovers the seed with the EK's private
 * key, checks the blob's HMAC against the object's Name, and decrypts.
 *
 * @param ekPrivate the EK's private key (node:crypto), matching `ekPublic`.
 * @param objectName the Name of the object the caller proved it has loaded (activateHandle's Name).
 * @returns certInfo: the credential.
 * @throws CryptoError `crypto.integrity` when the blob was made for another Name or seed, or was modified
 *   (TPM_RC_INTEGRITY on a TPM); `crypto.decrypt` when the secret does not decrypt; `crypto.key` for an unusable or
 *   mismatched EK; ParseError for a blob too short for its fields or whose decrypted content is not one TPM2B_DIGEST.
 */
export function activateCredential(ekPrivate: KeyObject, ekPublic: TPMT_PUBLIC, objectName: Uint8Array, credentialBlob: Uint8Array, secret: Uint8Array): Uint8Array {
  const ek = checkEk(ekPublic);
  checkObjectName(objectName);
  if (!(credentialBlob instanceof Uint8Array) || !(secret instanceof Uint8Array)) throw new ArgumentError('credentialBlob and secret: expected Uint8Arrays');
  const seed = decryptSecret(ekPrivate, ek, 'IDENTITY', secret);
  const plain = unwrapOuter({ hashAlg: ek.nameAlg, symmetric: ek.parameters.symmetric, seed, name: objectName }, credentialBlob);
  let credential: Uint8Array;
  try {
    credential = decode(TPM2B_DIGEST, plain); // CredentialToSecret: TPM_RC_SIZE if anything is left over
  } catch (cause) {
    if (cause instanceof ParseError) throw cause;
    throw new CryptoError('crypto.integrity', 'credential content does not decode', { cause });
  }
  return credential;
}
