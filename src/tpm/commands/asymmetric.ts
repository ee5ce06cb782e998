/**
 * Part 3 §14 "Asymmetric Primitives".
 */
import { authHandle, command, handle } from '../command.js';
import { TPM_CC } from '../constants.js';
import {
  TPM2B_DATA,
  TPM2B_ECC_POINT,
  TPM2B_PUBLIC_KEY_RSA,
  TPMI_DH_OBJECT,
  TPMI_ECC_CURVE,
  TPMI_ECC_KEY_EXCHANGE,
  TPMS_ALGORITHM_DETAIL_ECC,
  TPMT_RSA_DECRYPT,
} from '../types/index.js';
import { u16 } from '../wire/codec.js';

/** RSA encryption with the public part of a loaded key. */
export const RSA_Encrypt = command({
  name: 'RSA_Encrypt',
  code: TPM_CC.RSA_Encrypt,
  spec: 'Part 3 §14.2',
  handles: { keyHandle: handle(TPMI_DH_OBJECT) },
  params: {
    message: TPM2B_PUBLIC_KEY_RSA,
    inScheme: TPMT_RSA_DECRYPT, // TPMT_RSA_DECRYPT+: the structure admits TPM_ALG_NULL here
    label: TPM2B_DATA,
  },
  responseHandles: {},
  response: { outData: TPM2B_PUBLIC_KEY_RSA },
});

/** RSA decryption with the private part of a loaded key. */
export const RSA_Decrypt = command({
  name: 'RSA_Decrypt',
  code: TPM_CC.RSA_Decrypt,
  spec: 'Part 3 §14.3',
  handles: { keyHandle: authHandle(TPMI_DH_OBJECT, 'USER') },
  params: {
    cipherText: TPM2B_PUBLIC_KEY_RSA,
    inScheme: TPMT_RSA_DECRYPT, // TPMT_RSA_DECRYPT+: the structure admits TPM_ALG_NULL here
    label: TPM2B_DATA,
  },
  responseHandles: {},
  response: { message: TPM2B_PUBLIC_KEY_RSA },
});

/** Makes an ephemeral key pair and its shared point with a loaded public ECC key. */
export const ECDH_KeyGen = command({
  name: 'ECDH_KeyGen',
  code: TPM_CC.ECDH_KeyGen,
  spec: 'Part 3 §14.4',
  handles: { keyHandle: handle(TPMI_DH_OBJECT) },
  params: {},
  responseHandles: {},
  response: { zPoint: TPM2B_ECC_POINT, pubPoint: TPM2B_ECC_POINT },
});

/** Computes the ECDH shared point of a loaded private key and a peer's public point. */
export const ECDH_ZGen = command({
  name: 'ECDH_ZGen',
  code: TPM_CC.ECDH_ZGen,
  spec: 'Part 3 §14.5',
  handles: { keyHandle: authHandle(TPMI_DH_OBJECT, 'USER') },
  params: { inPoint: TPM2B_ECC_POINT },
  responseHandles: {},
  response: { outPoint: TPM2B_ECC_POINT },
});

/** Returns the parameters of an ECC curve the TPM implements. */
export const ECC_Parameters = command({
  name: 'ECC_Parameters',
  code: TPM_CC.ECC_Parameters,
  spec: 'Part 3 §14.6',
  handles: {},
  params: { curveID: TPMI_ECC_CURVE },
  responseHandles: {},
  response: { parameters: TPMS_ALGORITHM_DETAIL_ECC },
});

/** Second phase of a two-phase key exchange (ECDH, ECMQV or SM2). */
export const ZGen_2Phase = command({
  name: 'ZGen_2Phase',
  code: TPM_CC.ZGen_2Phase,
  spec: 'Part 3 §14.7',
  handles: { keyA: authHandle(TPMI_DH_OBJECT, 'USER') },
  params: {
    inQsB: TPM2B_ECC_POINT,
    inQeB: TPM2B_ECC_POINT,
    inScheme: TPMI_ECC_KEY_EXCHANGE,
    counter: u16,
  },
  responseHandles: {},
  response: { outZ1: TPM2B_ECC_POINT, outZ2: TPM2B_ECC_POINT },
});
