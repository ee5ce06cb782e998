/**
 * Part 3 §12.5–§12.6 ActivateCredential and MakeCredential (Part 1 §24
 * "Credential Protection"). The credential math is the core's
 * (src/tpm/credential.ts over secret.ts "IDENTITY" and duplication.ts's
 * outer wrap); this file checks the keys and maps failures to response
 * codes the way the reference does (ActivateCredential.c, MakeCredential.c).
 */
import { ActivateCredential, MakeCredential } from '../../tpm/commands/index.js';
import { TPM_ALG } from '../../tpm/constants.js';
import { activateCredential, makeCredential } from '../../tpm/credential.js';
import { digestSize } from '../../tpm/crypto/hash.js';
import { ArgumentError, CryptoError, ParseError } from '../../tpm/errors.js';
import { TPM_RC, TpmError, rcForHandle, rcForParameter } from '../../tpm/rc.js';
import { TPMS_ECC_POINT } from '../../tpm/types/index.js';
import { decode } from '../../tpm/wire/codec.js';
import type { LoadedObject } from '../objects.js';
import { findObject } from './object.js';
import { handler, ok } from './handler.js';
import { unmarshalRc } from '../engine.js';

/** An asymmetric, restricted decryption key (an EK or any storage key), or TPM_RC_TYPE on handle `n`. */
function credentialKey(o: LoadedObject | undefined, n: number): LoadedObject {
  if (o === undefined) throw new TpmError(rcForHandle(TPM_RC.HANDLE, n));
  const pub = o.publicArea;
  const a = pub.objectAttributes;
  if ((pub.type !== TPM_ALG.RSA && pub.type !== TPM_ALG.ECC) || !a.decrypt || !a.restricted) throw new TpmError(rcForHandle(TPM_RC.TYPE, n));
  return o;
}

const P_CREDENTIAL_BLOB = 1;
const P_SECRET = 2;

/**
 * The secret as CryptSecretDecrypt reads it, or its response code (on
 * parameter 2): an RSA secret must be as long as the modulus (TPM_RC_SIZE);
 * an ECC secret starts with a TPMS_ECC_POINT and anything after it is
 * ignored (unmarshaling codes: TPM_RC_INSUFFICIENT, TPM_RC_SIZE).
 */
function secretOf(key: LoadedObject, secret: Uint8Array): Uint8Array {
  const pub = key.publicArea;
  if (pub.type === TPM_ALG.RSA) {
    if (secret.length !== pub.parameters.keyBits / 8) throw new TpmError(rcForParameter(TPM_RC.SIZE, P_SECRET));
    return secret;
  }
  try {
    decode(TPMS_ECC_POINT, secret);
    return secret;
  } catch (e) {
    if (!(e instanceof ParseError)) throw e;
    if (e.code !== 'parse.trailing' || e.offset === undefined) throw new TpmError(rcForParameter(unmarshalRc(e), P_SECRET));
    return secret.subarray(0, e.offset);
  }
}

/**
 * Part 3 §12.5: the seed comes from `secret` with keyHandle's private key,
 * then the blob's HMAC must match activateHandle's Name (TPM_RC_INTEGRITY on
 * credentialBlob). A secret that does not decrypt is, as in libtpms, an ECC
 * point off the curve (TPM_RC_ECC_POINT on secret) or an RSA-OAEP failure
 * (TPM_RC_VALUE on secret, Part 3 §12.5; libtpms answers TPM_RC_FAILURE:
 * divergences.ts 'activate-credential-seed-undecodable').
 * activateHandle's ADMIN role and keyHandle's USER role are the engine's to
 * authorize.
 */
export const activateCredentialHandler = handler(ActivateCredential, ({ engine }, { activateHandle, keyHandle }, { credentialBlob, secret }) => {
  const key = credentialKey(findObject(engine, keyHandle), 2);
  const encrypted = secretOf(key, secret);
  const activate = findObject(engine, activateHandle);
  if (activate === undefined) throw new TpmError(rcForHandle(TPM_RC.HANDLE, 1));
  try {
    return ok<typeof ActivateCredential>({ certInfo: activateCredential(key.key, key.publicArea, activate.name, credentialBlob, encrypted) });
  } catch (e) {
    if (e instanceof CryptoError && e.code === 'crypto.decrypt') {
      throw new TpmError(rcForParameter(key.publicArea.type === TPM_ALG.ECC ? TPM_RC.ECC_POINT : TPM_RC.VALUE, P_SECRET));
    }
    if (e instanceof CryptoError && e.code === 'crypto.integrity') throw new TpmError(rcForParameter(TPM_RC.INTEGRITY, P_CREDENTIAL_BLOB));
    if (e instanceof ParseError) throw new TpmError(rcForParameter(unmarshalRc(e), P_CREDENTIAL_BLOB));
    // The reference: a key that cannot decrypt at this point is a TPM failure (TPM_RC_KEY → TPM_RC_FAILURE).
    throw new TpmError(TPM_RC.FAILURE);
  }
});

/**
 * Part 3 §12.6: needs no authorization and no private key (a public area
 * loaded with LoadExternal does); `credential` at most a digest of the key's
 * nameAlg (TPM_RC_SIZE on credential).
 */
export const makeCredentialHandler = handler(MakeCredential, ({ engine }, { handle }, { credential, objectName }) => {
  const key = credentialKey(findObject(engine, handle), 1);
  if (credential.length > digestSize(key.publicArea.nameAlg)) throw new TpmError(rcForParameter(TPM_RC.SIZE, 1));
  try {
    const made = makeCredential(key.publicArea, objectName, credential);
    return ok<typeof MakeCredential>({ credentialBlob: made.credentialBlob, secret: made.secret });
  } catch (e) {
    // The core wants an object Name (nameAlg ‖ digest); the reference wraps any bytes. Refused here as the Name's size.
    if (e instanceof ArgumentError) throw new TpmError(rcForParameter(TPM_RC.SIZE, 2));
    if (e instanceof CryptoError && e.code === 'crypto.key') throw new TpmError(rcForHandle(TPM_RC.KEY, 1));
    throw e;
  }
});

export const CREDENTIAL_HANDLERS = [activateCredentialHandler, makeCredentialHandler] as const;
