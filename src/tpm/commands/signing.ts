/**
 * Part 3 §20 "Signing and Signature Verification".
 */
import { authHandle, command, handle } from '../command.js';
import { TPM_CC } from '../constants.js';
import {
  TPM2B_DIGEST,
  TPMI_DH_OBJECT,
  TPMT_SIGNATURE,
  TPMT_SIG_SCHEME,
  TPMT_TK_HASHCHECK,
  TPMT_TK_VERIFIED,
} from '../types/index.js';

/** Verifies a signature with a loaded public key and returns a verification ticket. */
export const VerifySignature = command({
  name: 'VerifySignature',
  code: TPM_CC.VerifySignature,
  spec: 'Part 3 §20.1',
  handles: { keyHandle: handle(TPMI_DH_OBJECT) },
  params: { digest: TPM2B_DIGEST, signature: TPMT_SIGNATURE },
  responseHandles: {},
  response: { validation: TPMT_TK_VERIFIED },
});

/** Signs a digest with a loaded signing key. */
export const Sign = command({
  name: 'Sign',
  code: TPM_CC.Sign,
  spec: 'Part 3 §20.2',
  handles: { keyHandle: authHandle(TPMI_DH_OBJECT, 'USER') },
  params: {
    digest: TPM2B_DIGEST,
    inScheme: TPMT_SIG_SCHEME, // TPMT_SIG_SCHEME+: the structure admits TPM_ALG_NULL here
    validation: TPMT_TK_HASHCHECK,
  },
  responseHandles: {},
  response: { signature: TPMT_SIGNATURE },
});
