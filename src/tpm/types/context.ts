/** Context data (Part 2 §14) and creation data (Part 2 §15). */
import { LIMITS, SIZEOF_TPMS_CONTEXT_DATA } from '../limits.js';
import { type Infer, orNull, sized, sizedOf, struct } from '../wire/codec.js';
import { TPMA_LOCALITY } from './attributes.js';
import { TPM2B_DATA, TPM2B_DIGEST, TPM2B_NAME } from './base.js';
import { TPML_PCR_SELECTION } from './capabilities.js';
import { TPMI_DH_SAVED, TPMI_RH_HIERARCHY } from './interfaces.js';
import { TPM_ALG_ID, UINT64 } from './primitives.js';

/** §14.2: the encrypted part of a saved context. */
export const TPM2B_CONTEXT_SENSITIVE = sized('TPM2B_CONTEXT_SENSITIVE', LIMITS.MAX_CONTEXT_SIZE);
export type TPM2B_CONTEXT_SENSITIVE = Infer<typeof TPM2B_CONTEXT_SENSITIVE>;
/**
 * §14.4: buffer[sizeof(TPMS_CONTEXT_DATA)]. Its layout (integrity digest,
 * then the encrypted context) is the saving TPM's business, so it stays bytes.
 */
export const TPM2B_CONTEXT_DATA = sized('TPM2B_CONTEXT_DATA', SIZEOF_TPMS_CONTEXT_DATA);
export type TPM2B_CONTEXT_DATA = Infer<typeof TPM2B_CONTEXT_DATA>;
/** §14.5: ContextSave's output and ContextLoad's input. */
export const TPMS_CONTEXT = struct('TPMS_CONTEXT', {
  sequence: UINT64,
  savedHandle: TPMI_DH_SAVED,
  hierarchy: orNull(TPMI_RH_HIERARCHY),
  contextBlob: TPM2B_CONTEXT_DATA,
});
export type TPMS_CONTEXT = Infer<typeof TPMS_CONTEXT>;

/** §15.1: what the TPM records when it creates an object (its hash is creationHash). */
export const TPMS_CREATION_DATA = struct('TPMS_CREATION_DATA', {
  pcrSelect: TPML_PCR_SELECTION,
  pcrDigest: TPM2B_DIGEST,
  locality: TPMA_LOCALITY,
  parentNameAlg: TPM_ALG_ID,
  parentName: TPM2B_NAME,
  parentQualifiedName: TPM2B_NAME,
  outsideInfo: TPM2B_DATA,
});
export type TPMS_CREATION_DATA = Infer<typeof TPMS_CREATION_DATA>;
/** §15.2: never empty. */
export const TPM2B_CREATION_DATA = sizedOf('TPM2B_CREATION_DATA', TPMS_CREATION_DATA);
export type TPM2B_CREATION_DATA = Infer<typeof TPM2B_CREATION_DATA>;
