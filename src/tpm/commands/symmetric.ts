/**
 * Part 3 §15 "Symmetric Primitives".
 */
import { authHandle, command } from '../command.js';
import { TPM_CC } from '../constants.js';
import {
  TPM2B_DIGEST,
  TPM2B_IV,
  TPM2B_MAX_BUFFER,
  TPMI_ALG_CIPHER_MODE,
  TPMI_ALG_HASH,
  TPMI_DH_OBJECT,
  TPMI_RH_HIERARCHY,
  TPMI_YES_NO,
  TPMT_TK_HASHCHECK,
} from '../types/index.js';
import { orNull } from '../wire/codec.js';

/** Symmetric encryption or decryption with a loaded key (decrypt flag first). */
export const EncryptDecrypt = command({
  name: 'EncryptDecrypt',
  code: TPM_CC.EncryptDecrypt,
  spec: 'Part 3 §15.2',
  handles: { keyHandle: authHandle(TPMI_DH_OBJECT, 'USER') },
  params: {
    decrypt: TPMI_YES_NO,
    mode: orNull(TPMI_ALG_CIPHER_MODE),
    ivIn: TPM2B_IV,
    inData: TPM2B_MAX_BUFFER,
  },
  responseHandles: {},
  response: { outData: TPM2B_MAX_BUFFER, ivOut: TPM2B_IV },
});

/** EncryptDecrypt with the data first, so that it can be parameter-encrypted. */
export const EncryptDecrypt2 = command({
  name: 'EncryptDecrypt2',
  code: TPM_CC.EncryptDecrypt2,
  spec: 'Part 3 §15.3',
  handles: { keyHandle: authHandle(TPMI_DH_OBJECT, 'USER') },
  params: {
    inData: TPM2B_MAX_BUFFER,
    decrypt: TPMI_YES_NO,
    mode: orNull(TPMI_ALG_CIPHER_MODE),
    ivIn: TPM2B_IV,
  },
  responseHandles: {},
  response: { outData: TPM2B_MAX_BUFFER, ivOut: TPM2B_IV },
});

/** Hashes a buffer and, if it is safe to sign, returns a hash-check ticket. */
export const Hash = command({
  name: 'Hash',
  code: TPM_CC.Hash,
  spec: 'Part 3 §15.4',
  handles: {},
  params: { data: TPM2B_MAX_BUFFER, hashAlg: TPMI_ALG_HASH, hierarchy: orNull(TPMI_RH_HIERARCHY) },
  responseHandles: {},
  response: { outHash: TPM2B_DIGEST, validation: TPMT_TK_HASHCHECK },
});

/** HMAC of a buffer with a loaded keyed-hash key. */
export const HMAC = command({
  name: 'HMAC',
  code: TPM_CC.HMAC,
  spec: 'Part 3 §15.5',
  handles: { handle: authHandle(TPMI_DH_OBJECT, 'USER') },
  params: { buffer: TPM2B_MAX_BUFFER, hashAlg: orNull(TPMI_ALG_HASH) },
  responseHandles: {},
  response: { outHMAC: TPM2B_DIGEST },
});
