/** Authorization sessions in the command and response (Part 2 §10.13). */
import { type Infer, struct } from '../wire/codec.js';
import { TPMA_SESSION } from './attributes.js';
import { TPM2B_AUTH, TPM2B_NONCE } from './base.js';
import { TPMI_SH_AUTH_SESSION_OR_PW } from './interfaces.js';

/** §10.13.2: one authorization of a command; `hmac` holds the password for TPM_RS_PW. */
export const TPMS_AUTH_COMMAND = struct('TPMS_AUTH_COMMAND', {
  sessionHandle: TPMI_SH_AUTH_SESSION_OR_PW,
  nonce: TPM2B_NONCE,
  sessionAttributes: TPMA_SESSION,
  hmac: TPM2B_AUTH,
});
export type TPMS_AUTH_COMMAND = Infer<typeof TPMS_AUTH_COMMAND>;

/** §10.13.3: one authorization of a response. */
export const TPMS_AUTH_RESPONSE = struct('TPMS_AUTH_RESPONSE', {
  nonce: TPM2B_NONCE,
  sessionAttributes: TPMA_SESSION,
  hmac: TPM2B_AUTH,
});
export type TPMS_AUTH_RESPONSE = Infer<typeof TPMS_AUTH_RESPONSE>;
