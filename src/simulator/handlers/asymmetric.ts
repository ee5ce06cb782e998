/**
 * Part 3 §14 Asymmetric Primitives (RSA_Encrypt, RSA_Decrypt, ECDH_KeyGen,
 * ECDH_ZGen) and §20.1 VerifySignature, whose primitive is ../signing.ts's
 * verifySignature (shared with PolicySigned).
 */
import { constants as cryptoConstants, createECDH, privateDecrypt, publicEncrypt, type KeyObject } from 'node:crypto';
import { ECDH_KeyGen, ECDH_ZGen, RSA_Decrypt, RSA_Encrypt, VerifySignature } from '../../tpm/commands/index.js';
import { bigIntFromBytes, bytesFromBigInt } from '../../tpm/bytes.js';
import { TPM_ALG, TPM_RH, TPM_ST } from '../../tpm/constants.js';
import { isHashSupported, nodeHashName } from '../../tpm/crypto/hash.js';
import { TPM_RC, TpmError, rcForHandle, rcForParameter } from '../../tpm/rc.js';
import type { TPMS_ECC_POINT, TPMT_PUBLIC, TPMT_RSA_DECRYPT } from '../../tpm/types/index.js';
import type { TpmEngine } from '../engine.js';
import { CURVE_ORDERS, curvePoint, type SimulatorCurve } from '../keygen.js';
import type { LoadedObject } from '../objects.js';
import { verifySignature } from '../signing.js';
import { verifiedTicketDigest } from '../tickets.js';
import { findObject } from './object.js';
import { handler, ok } from './handler.js';

const EMPTY = new Uint8Array(0);

function loaded(engine: TpmEngine, h: number): LoadedObject {
  const o = findObject(engine, h);
  if (o === undefined) throw new TpmError(rcForHandle(TPM_RC.HANDLE, 1));
  return o;
}

// ---------------------------------------------------------------------------
// RSA (Part 3 §14.2, §14.3)

type RsaObject = LoadedObject & { readonly publicArea: Extract<TPMT_PUBLIC, { type: typeof TPM_ALG.RSA }> };

/**
 * A label is empty or a NUL-terminated string whose NUL is part of OAEP's L
 * (Part 1 Annex B.10.3; the reference's IsLabelProperlyFormatted): TPM_RC_VALUE otherwise.
 */
function checkLabel(label: Uint8Array): void {
  if (label.length !== 0 && label[label.length - 1] !== 0) throw new TpmError(rcForParameter(TPM_RC.VALUE, 3));
}

/**
 * The reference's CryptRsaSelectScheme: the key's scheme when the caller's is
 * NULL, the caller's when the key has none, and when both are given they must
 * be the same scheme and hash (TPM_RC_SCHEME on inScheme otherwise).
 */
function selectRsaScheme(pub: RsaObject['publicArea'], inScheme: TPMT_RSA_DECRYPT): { scheme: number; hashAlg: number } {
  const key = pub.parameters.scheme as { scheme: number; details?: { hashAlg?: number } | null };
  const given = inScheme as { scheme: number; details?: { hashAlg?: number } | null };
  const hashOf = (s: typeof key): number => s.details?.hashAlg ?? TPM_ALG.NULL;
  if (key.scheme === TPM_ALG.NULL) return { scheme: given.scheme, hashAlg: hashOf(given) };
  if (given.scheme === TPM_ALG.NULL) return { scheme: key.scheme, hashAlg: hashOf(key) };
  if (key.scheme === given.scheme && hashOf(key) === hashOf(given)) return { scheme: given.scheme, hashAlg: hashOf(given) };
  throw new TpmError(rcForParameter(TPM_RC.SCHEME, 2));
}

function rsaKey(engine: TpmEngine, h: number): RsaObject {
  const o = loaded(engine, h);
  if (o.publicArea.type !== TPM_ALG.RSA) throw new TpmError(rcForHandle(TPM_RC.KEY, 1));
  return o as RsaObject;
}

function oaepHash(hashAlg: number): string {
  // An OAEP hash this TPM cannot compute: TPM_RC_VALUE, as CryptRsaEncrypt/Decrypt answer.
  if (!isHashSupported(hashAlg)) throw new TpmError(TPM_RC.VALUE);
  return nodeHashName(hashAlg);
}

/** Part 3 §14.2: no authorization, the key's public part; needs `decrypt`. */
export const rsaEncryptHandler = handler(RSA_Encrypt, ({ engine }, { keyHandle }, { message, inScheme, label }) => {
  const o = rsaKey(engine, keyHandle);
  if (!o.publicArea.objectAttributes.decrypt) throw new TpmError(rcForHandle(TPM_RC.ATTRIBUTES, 1));
  checkLabel(label);
  const sel = selectRsaScheme(o.publicArea, inScheme);
  const modBytes = o.publicArea.unique.length;
  const key: KeyObject = o.key;
  let outData: Uint8Array;
  try {
    if (sel.scheme === TPM_ALG.NULL) {
      // A profile without raw RSA (libtpms's no-unpadded-encryption): TPM_RC_SCHEME, no parameter.
      if (!engine.profile.algorithms.unpaddedRsaEncryption) throw new TpmError(TPM_RC.SCHEME);
      // Raw RSA: leading zeros may make the message longer than the modulus; the value must be below it.
      let i = 0;
      while (i < message.length && message[i] === 0) i++;
      const m = message.subarray(i);
      if (m.length > modBytes || bigIntFromBytes(m) >= bigIntFromBytes(o.publicArea.unique)) throw new TpmError(TPM_RC.VALUE);
      const block = new Uint8Array(modBytes);
      block.set(m, modBytes - m.length);
      outData = new Uint8Array(publicEncrypt({ key, padding: cryptoConstants.RSA_NO_PADDING }, block));
    } else if (sel.scheme === TPM_ALG.RSAES) {
      outData = new Uint8Array(publicEncrypt({ key, padding: cryptoConstants.RSA_PKCS1_PADDING }, message));
    } else if (sel.scheme === TPM_ALG.OAEP) {
      const oaep = oaepHash(sel.hashAlg);
      outData = new Uint8Array(
        publicEncrypt({ key, padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING, oaepHash: oaep, ...(label.length > 0 ? { oaepLabel: label } : {}) }, message),
      );
    } else {
      throw new TpmError(TPM_RC.SCHEME);
    }
  } catch (e) {
    if (e instanceof TpmError) throw e;
    // The message does not fit the padding (Part 3 §14.2: TPM_RC_VALUE).
    throw new TpmError(TPM_RC.VALUE);
  }
  return ok<typeof RSA_Encrypt>({ outData });
});

/**
 * EME-PKCS1-v1_5 decoding (RFC 8017 §7.2.2 step 3) of a raw RSA result,
 * scanning every byte whatever it finds so the time says nothing about where
 * the padding failed; undefined when it is not a valid encoding.
 */
function emePkcs1Decode(em: Uint8Array): Uint8Array | undefined {
  let bad = em[0]! | (em[1]! ^ 0x02);
  let sep = 0;
  let found = 0;
  for (let i = 2; i < em.length; i++) {
    const isZero = em[i] === 0 ? 1 : 0;
    const first = isZero & (found ^ 1);
    sep |= first * i;
    found |= isZero;
  }
  // At least eight bytes of nonzero padding, and a separator.
  bad |= (found ^ 1) | (sep < 10 ? 1 : 0);
  return bad === 0 ? em.slice(sep + 1) : undefined;
}

/** Part 3 §14.3: an unrestricted `decrypt` key, USER authorization. */
export const rsaDecryptHandler = handler(RSA_Decrypt, ({ engine }, { keyHandle }, { cipherText, inScheme, label }) => {
  const o = rsaKey(engine, keyHandle);
  const a = o.publicArea.objectAttributes;
  if (a.restricted || !a.decrypt) throw new TpmError(rcForHandle(TPM_RC.ATTRIBUTES, 1));
  checkLabel(label);
  const sel = selectRsaScheme(o.publicArea, inScheme);
  // CryptRsaDecrypt: the cipher text is exactly the modulus size (TPM_RC_SIZE), then a decryption scheme (TPM_RC_SCHEME).
  if (cipherText.length !== o.publicArea.unique.length) throw new TpmError(TPM_RC.SIZE);
  if (sel.scheme !== TPM_ALG.NULL && sel.scheme !== TPM_ALG.RSAES && sel.scheme !== TPM_ALG.OAEP) throw new TpmError(TPM_RC.SCHEME);
  if (sel.scheme === TPM_ALG.NULL && !engine.profile.algorithms.unpaddedRsaEncryption) throw new TpmError(TPM_RC.SCHEME);
  if (o.publicOnly === true || o.key.type !== 'private') throw new TpmError(rcForHandle(TPM_RC.KEY, 1));
  let message: Uint8Array | undefined;
  try {
    if (sel.scheme === TPM_ALG.OAEP) {
      const oaep = oaepHash(sel.hashAlg);
      message = new Uint8Array(
        privateDecrypt({ key: o.key, padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING, oaepHash: oaep, ...(label.length > 0 ? { oaepLabel: label } : {}) }, cipherText),
      );
    } else {
      // node:crypto refuses PKCS#1 v1.5 private decryption (CVE-2023-46809): raw RSA, then the padding here.
      const em = new Uint8Array(privateDecrypt({ key: o.key, padding: cryptoConstants.RSA_NO_PADDING }, cipherText));
      message = sel.scheme === TPM_ALG.NULL ? em : emePkcs1Decode(em);
    }
  } catch (e) {
    if (e instanceof TpmError) throw e;
    message = undefined;
  }
  // Part 3 §14.3: padding or label that does not check out is TPM_RC_VALUE.
  if (message === undefined) throw new TpmError(TPM_RC.VALUE);
  return ok<typeof RSA_Decrypt>({ message });
});

// ---------------------------------------------------------------------------
// ECDH (Part 3 §14.4, §14.5)

/**
 * The whole point [k]P (the TPM returns x and y; node:crypto's ECDH gives x
 * only), with @noble/curves. 'off-curve': P is no point of the curve
 * (TPM_RC_ECC_POINT); 'infinity': the product is the point at infinity
 * (k ≡ 0 mod n; TPM_RC_NO_RESULT).
 */
function multiplyPoint(curve: SimulatorCurve, scalar: bigint, P: TPMS_ECC_POINT): TPMS_ECC_POINT | 'off-curve' | 'infinity' {
  const point = curvePoint(curve, P);
  if (point === undefined) return 'off-curve';
  const k = scalar % curve.order;
  if (k === 0n) return 'infinity';
  // A prime-order curve: [k]P for 1 ≤ k < n and P ≠ O is never O.
  const Z = point.multiply(k).toAffine();
  return { x: bytesFromBigInt(Z.x, curve.size), y: bytesFromBigInt(Z.y, curve.size) };
}

function eccKey(engine: TpmEngine, h: number): LoadedObject & { readonly publicArea: Extract<TPMT_PUBLIC, { type: typeof TPM_ALG.ECC }> } {
  const o = loaded(engine, h);
  if (o.publicArea.type !== TPM_ALG.ECC) throw new TpmError(rcForHandle(TPM_RC.KEY, 1));
  return o as never;
}

/**
 * Part 3 §14.4: an ephemeral key pair (d_e from the TPM's RNG) on the key's
 * curve; pubPoint = [d_e]G, zPoint = [d_e]Q. Any ECC key, no authorization.
 */
export const ecdhKeyGenHandler = handler(ECDH_KeyGen, ({ engine }, { keyHandle }) => {
  const o = eccKey(engine, keyHandle);
  const curve = CURVE_ORDERS.get(o.publicArea.parameters.curveID);
  if (curve === undefined) throw new TpmError(rcForHandle(TPM_RC.KEY, 1));
  // 1 ≤ d_e < n (FIPS 186-4 §B.4.1, as keygen draws its scalars), so [d_e]Q is never the point at infinity.
  const d = (bigIntFromBytes(engine.random(curve.size + 8)) % (curve.order - 1n)) + 1n;
  const zPoint = multiplyPoint(curve, d, o.publicArea.unique);
  // The key's point is off the curve: the key is bad (TPM_RC_KEY), as the reference answers.
  if (typeof zPoint === 'string') throw new TpmError(rcForHandle(TPM_RC.KEY, 1));
  const ecdh = createECDH(curve.nodeName);
  ecdh.setPrivateKey(bytesFromBigInt(d, curve.size));
  const pub = new Uint8Array(ecdh.getPublicKey(null, 'uncompressed'));
  const pubPoint = { x: pub.slice(1, 1 + curve.size), y: pub.slice(1 + curve.size) };
  return ok<typeof ECDH_KeyGen>({ zPoint, pubPoint });
});

/**
 * Part 3 §14.5: [d]P with the key's private scalar; an unrestricted `decrypt`
 * ECC key whose scheme is ECDH or NULL; P must be on the key's curve (TPM_RC_ECC_POINT).
 */
export const ecdhZGenHandler = handler(ECDH_ZGen, ({ engine }, { keyHandle }, { inPoint }) => {
  const o = eccKey(engine, keyHandle);
  const pub = o.publicArea;
  if (pub.objectAttributes.restricted || !pub.objectAttributes.decrypt) throw new TpmError(rcForHandle(TPM_RC.ATTRIBUTES, 1));
  const scheme = pub.parameters.scheme.scheme;
  if (scheme !== TPM_ALG.ECDH && scheme !== TPM_ALG.NULL) throw new TpmError(rcForHandle(TPM_RC.SCHEME, 1));
  const curve = CURVE_ORDERS.get(pub.parameters.curveID);
  if (curve === undefined) throw new TpmError(rcForHandle(TPM_RC.KEY, 1));
  // A public-only key (LoadExternal) has no scalar; its authorization fails before this in practice.
  if (o.publicOnly === true) throw new TpmError(rcForHandle(TPM_RC.KEY, 1));
  const d = bigIntFromBytes(o.sensitive.sensitive as Uint8Array);
  const outPoint = multiplyPoint(curve, d, inPoint);
  if (outPoint === 'off-curve') throw new TpmError(rcForParameter(TPM_RC.ECC_POINT, 1));
  if (outPoint === 'infinity') throw new TpmError(rcForParameter(TPM_RC.NO_RESULT, 1));
  return ok<typeof ECDH_ZGen>({ outPoint });
});

// ---------------------------------------------------------------------------
// VerifySignature (Part 3 §20.1)

/**
 * A verified ticket (Part 2 §10.7.5) over the digest and the key's Name, or
 * the NULL ticket for a key of the NULL hierarchy (LoadExternal's keys). A
 * signature that does not verify is TPM_RC_SIGNATURE on parameter 2.
 */
export const verifySignatureHandler = handler(VerifySignature, ({ engine }, { keyHandle }, { digest, signature }) => {
  const o = loaded(engine, keyHandle);
  if (!o.publicArea.objectAttributes.sign) throw new TpmError(rcForHandle(TPM_RC.ATTRIBUTES, 1));
  const rc = verifySignature(o, digest, signature, engine.profile.algorithms.signingHashes);
  if (rc !== 0) throw new TpmError(rcForParameter(rc, 2));
  const validation =
    o.hierarchy === TPM_RH.NULL || o.publicArea.nameAlg === TPM_ALG.NULL
      ? { tag: TPM_ST.VERIFIED, hierarchy: TPM_RH.NULL, digest: EMPTY }
      : { tag: TPM_ST.VERIFIED, hierarchy: o.hierarchy, digest: verifiedTicketDigest(engine, o.hierarchy, digest, o.name) };
  return ok<typeof VerifySignature>({ validation } as never);
});

export const ASYMMETRIC_HANDLERS = [
  rsaEncryptHandler, // §14.2
  rsaDecryptHandler, // §14.3
  ecdhKeyGenHandler, // §14.4
  ecdhZGenHandler, // §14.5
  verifySignatureHandler, // §20.1
] as const;
