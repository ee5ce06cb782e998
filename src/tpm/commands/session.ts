/**
 * Part 3 §11 "Session Commands".
 */
import { command, handle } from '../command.js';
import { TPM_CC } from '../constants.js';
import {
  TPM2B_ENCRYPTED_SECRET,
  TPM2B_NONCE,
  TPMI_ALG_HASH,
  TPMI_DH_ENTITY,
  TPMI_DH_OBJECT,
  TPMI_SH_AUTH_SESSION,
  TPMI_SH_POLICY,
  TPMT_SYM_DEF,
  TPM_SE,
} from '../types/index.js';
import { orNull } from '../wire/codec.js';

/** Starts an HMAC, policy or trial session, optionally salted and bound. */
export const StartAuthSession = command({
  name: 'StartAuthSession',
  code: TPM_CC.StartAuthSession,
  spec: 'Part 3 §11.1',
  handles: { tpmKey: handle(orNull(TPMI_DH_OBJECT)), bind: handle(orNull(TPMI_DH_ENTITY)) },
  params: {
    nonceCaller: TPM2B_NONCE,
    encryptedSalt: TPM2B_ENCRYPTED_SECRET,
    sessionType: TPM_SE,
    symmetric: TPMT_SYM_DEF, // TPMT_SYM_DEF+: the structure admits TPM_ALG_NULL here
    authHash: TPMI_ALG_HASH,
  },
  responseHandles: { sessionHandle: TPMI_SH_AUTH_SESSION },
  response: { nonceTPM: TPM2B_NONCE },
});

/** Resets a policy session to its initial state without changing its nonces. */
export const PolicyRestart = command({
  name: 'PolicyRestart',
  code: TPM_CC.PolicyRestart,
  spec: 'Part 3 §11.2',
  handles: { sessionHandle: handle(TPMI_SH_POLICY) },
  params: {},
  responseHandles: {},
  response: {},
});
