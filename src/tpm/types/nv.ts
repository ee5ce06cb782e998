/** NV storage structures (Part 2 §13). TPMA_NV is in attributes.ts. */
import { type Infer, sizedOf, struct } from '../wire/codec.js';
import { TPMA_NV } from './attributes.js';
import { TPM2B_DIGEST } from './base.js';
import { TPMI_ALG_HASH, TPMI_RH_NV_INDEX } from './interfaces.js';
import { UINT16, UINT32 } from './primitives.js';

/** §13.5: the data of a PIN_PASS / PIN_FAIL index. */
export const TPMS_NV_PIN_COUNTER_PARAMETERS = struct('TPMS_NV_PIN_COUNTER_PARAMETERS', {
  pinCount: UINT32,
  pinLimit: UINT32,
});
export type TPMS_NV_PIN_COUNTER_PARAMETERS = Infer<typeof TPMS_NV_PIN_COUNTER_PARAMETERS>;

/** §13.6: an index's public area (its Name is nameAlg ‖ H(this, marshaled)). */
export const TPMS_NV_PUBLIC = struct('TPMS_NV_PUBLIC', {
  nvIndex: TPMI_RH_NV_INDEX,
  nameAlg: TPMI_ALG_HASH,
  attributes: TPMA_NV,
  authPolicy: TPM2B_DIGEST,
  dataSize: UINT16,
});
export type TPMS_NV_PUBLIC = Infer<typeof TPMS_NV_PUBLIC>;

/** §13.7: never empty. */
export const TPM2B_NV_PUBLIC = sizedOf('TPM2B_NV_PUBLIC', TPMS_NV_PUBLIC);
export type TPM2B_NV_PUBLIC = Infer<typeof TPM2B_NV_PUBLIC>;
