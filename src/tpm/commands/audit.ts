/**
 * Part 3 §21 "Command Audit".
 */
import { authHandle, command } from '../command.js';
import { TPM_CC } from '../constants.js';
import { TPMI_ALG_HASH, TPMI_RH_PROVISION, TPML_CC } from '../types/index.js';
import { orNull } from '../wire/codec.js';

/** Changes the audit hash algorithm and the set of audited commands. */
export const SetCommandCodeAuditStatus = command({
  name: 'SetCommandCodeAuditStatus',
  code: TPM_CC.SetCommandCodeAuditStatus,
  spec: 'Part 3 §21.2',
  handles: { auth: authHandle(TPMI_RH_PROVISION, 'USER') },
  params: { auditAlg: orNull(TPMI_ALG_HASH), setList: TPML_CC, clearList: TPML_CC },
  responseHandles: {},
  response: {},
});
