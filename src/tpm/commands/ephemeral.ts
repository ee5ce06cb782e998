/**
 * Part 3 §19 "Ephemeral EC Keys".
 */
import { authHandle, command } from '../command.js';
import { TPM_CC } from '../constants.js';
import { TPM2B_ECC_PARAMETER, TPM2B_ECC_POINT, TPM2B_ECC_POINT_OPTIONAL, TPM2B_SENSITIVE_DATA, TPMI_DH_OBJECT, TPMI_ECC_CURVE } from '../types/index.js';
import { u16 } from '../wire/codec.js';

/** First phase of an anonymous (ECDAA) signing operation. */
export const Commit = command({
  name: 'Commit',
  code: TPM_CC.Commit,
  spec: 'Part 3 §19.2',
  handles: { signHandle: authHandle(TPMI_DH_OBJECT, 'USER') },
  // Part 3 §19.2: P1 may be the Empty Point (x and y empty: then E = [r]G), but not a TPM2B of size 0, which
  // Part 2's TPM2B_ECC_POINT (size=) refuses at unmarshal (TPM_RC_SIZE, before s2 and y2 are read); s2/y2 may
  // be empty (then K and L are Empty Points).
  params: { P1: TPM2B_ECC_POINT, s2: TPM2B_SENSITIVE_DATA, y2: TPM2B_ECC_PARAMETER },
  responseHandles: {},
  response: { K: TPM2B_ECC_POINT_OPTIONAL, L: TPM2B_ECC_POINT_OPTIONAL, E: TPM2B_ECC_POINT_OPTIONAL, counter: u16 },
});

/** Makes an ephemeral ECC key for a two-phase key exchange. */
export const EC_Ephemeral = command({
  name: 'EC_Ephemeral',
  code: TPM_CC.EC_Ephemeral,
  spec: 'Part 3 §19.3',
  handles: {},
  params: { curveID: TPMI_ECC_CURVE },
  responseHandles: {},
  response: { Q: TPM2B_ECC_POINT, counter: u16 },
});
