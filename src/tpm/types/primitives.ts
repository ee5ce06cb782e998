/**
 * Base types (Part 2 §5) and the constant types of Part 2 §6 as codecs, for
 * parameters whose type is a plain TPM_* (Startup's TPM_SU, GetCapability's
 * TPM_CAP, PolicyNV's TPM_EO, …). The constant values themselves live in
 * ../constants.ts under the same names; import one of the two under an alias
 * where both are needed (`import { TPM_CC as TPM_CC_CODEC } from './types/index.js'`).
 */
import { TPM_CAP as CAP, TPM_EO as EO, TPM_GENERATED_VALUE, TPM_SE as SE, TPM_SU as SU } from '../constants.js';
import { type Codec, constant, i32, i8, type Infer, u16, u32, u64, u8, uint, values } from '../wire/codec.js';

// Part 2 §5.2: the integer types.
export const UINT8 = u8;
export type UINT8 = number;
export const BYTE = u8;
export type BYTE = number;
export const UINT16 = u16;
export type UINT16 = number;
export const UINT32 = u32;
export type UINT32 = number;
export const UINT64 = u64;
export type UINT64 = bigint;
export const INT8 = i8;
export type INT8 = number;
export const INT32 = i32;
export type INT32 = number;

// Part 2 §5.3: types for documentation clarity. Plain numbers: vendor and
// future values must pass through a client unchanged.
/** TPM_ALG_ID (Part 2 §6.3): any 16-bit algorithm identifier. */
export const TPM_ALG_ID = uint('TPM_ALG_ID', 2);
export type TPM_ALG_ID = Infer<typeof TPM_ALG_ID>;
/** TPM_KEY_BITS: a key size in bits. */
export const TPM_KEY_BITS = uint('TPM_KEY_BITS', 2);
export type TPM_KEY_BITS = Infer<typeof TPM_KEY_BITS>;
/** TPM_HANDLE (Part 2 §7.1): any handle. */
export const TPM_HANDLE = uint('TPM_HANDLE', 4);
export type TPM_HANDLE = Infer<typeof TPM_HANDLE>;
/** TPM_ECC_CURVE (Part 2 §6.4): any curve identifier (TPML_ECC_CURVE, TPMS_ALGORITHM_DETAIL_ECC). */
export const TPM_ECC_CURVE = uint('TPM_ECC_CURVE', 2);
export type TPM_ECC_CURVE = Infer<typeof TPM_ECC_CURVE>;
/** TPM_CC (Part 2 §6.5): any command code, vendor ones included. */
export const TPM_CC = uint('TPM_CC', 4);
export type TPM_CC = Infer<typeof TPM_CC>;
/** TPM_RC (Part 2 §6.6): a response code as a value (GetTestResult's testResult). */
export const TPM_RC = uint('TPM_RC', 4);
export type TPM_RC = Infer<typeof TPM_RC>;
/** TPM_ST (Part 2 §6.9): any structure tag. */
export const TPM_ST = uint('TPM_ST', 2);
export type TPM_ST = Infer<typeof TPM_ST>;
/** TPM_PT (Part 2 §6.13): a property tag (GetCapability's `property`, TPMS_TAGGED_PROPERTY). */
export const TPM_PT = uint('TPM_PT', 4);
export type TPM_PT = Infer<typeof TPM_PT>;
/** TPM_PT_PCR (Part 2 §6.14). */
export const TPM_PT_PCR = uint('TPM_PT_PCR', 4);
export type TPM_PT_PCR = Infer<typeof TPM_PT_PCR>;
/** TPM_AT (Part 2 §6.16): attestation type of an AC capability. */
export const TPM_AT = uint('TPM_AT', 4);
export type TPM_AT = Infer<typeof TPM_AT>;

// Part 2 §6 constant types checked with "#TPM_RC_VALUE": only defined values decode.
/** TPM_SU (Part 2 §6.10): Startup and Shutdown type. */
export const TPM_SU = values('TPM_SU', 2, [SU.CLEAR, SU.STATE]);
export type TPM_SU = Infer<typeof TPM_SU>;
/** TPM_SE (Part 2 §6.11): session type. */
export const TPM_SE = values('TPM_SE', 1, [SE.HMAC, SE.POLICY, SE.TRIAL]);
export type TPM_SE = Infer<typeof TPM_SE>;
/** TPM_CAP (Part 2 §6.12): capability group. */
export const TPM_CAP = values('TPM_CAP', 4, Object.values(CAP));
export type TPM_CAP = Infer<typeof TPM_CAP>;
/** TPM_EO (Part 2 §6.8): PolicyNV / PolicyCounterTimer operation. */
export const TPM_EO = values('TPM_EO', 2, Object.values(EO));
export type TPM_EO = Infer<typeof TPM_EO>;
/**
 * TPM_CLOCK_ADJUST (Part 2 §6.7), an INT8. The codec has no signed value
 * sets, so the range −3..3 (TPM_RC_VALUE) is the handler's check.
 */
export const TPM_CLOCK_ADJUST: Codec<number> = { ...i8, name: 'TPM_CLOCK_ADJUST' };
export type TPM_CLOCK_ADJUST = Infer<typeof TPM_CLOCK_ADJUST>;
/** TPM_GENERATED (Part 2 §6.2): the magic 0xFF544347 at the start of a TPMS_ATTEST. */
export const TPM_GENERATED = constant('TPM_GENERATED', 4, TPM_GENERATED_VALUE);
export type TPM_GENERATED = Infer<typeof TPM_GENERATED>;
