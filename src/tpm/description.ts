/**
 * TpmDescription: what a TPM says about itself through GetCapability, as one
 * typed record. It lives in the core so the client can produce it (describe())
 * and the verifier can classify a TPM from it (manufacturer, vendor strings,
 * firmware, spec revision) without importing the client.
 */
import { constantName, TPM_ALG, TPM_PT } from './constants.js';
import {
  TPMA_ALGORITHM,
  TPMA_CC,
  TPMA_PERMANENT,
  TPMA_STARTUP_CLEAR,
  type TPMS_ALG_PROPERTY,
  type TPMS_PCR_SELECTION,
  type TPMS_TAGGED_PROPERTY,
} from './types/index.js';
import { pcrIndices } from './pcr.js';
import type { BitsCodec, BitSpec, BitsValue } from './wire/codec.js';

export interface TpmDescription {
  /** TPM_PT_MANUFACTURER as text: the TCG vendor ID ("IFX", "STM", "NTC", "INTC", "AMD", "MSFT", "IBM" for swtpm). */
  readonly manufacturer: string;
  /** The same property as its raw 32-bit value. */
  readonly manufacturerId: number;
  /** TPM_PT_VENDOR_STRING_1..4 concatenated, trailing NULs removed. */
  readonly vendorString: string;
  /** TPM_PT_VENDOR_TPM_TYPE: a vendor-defined model number. */
  readonly vendorTpmType: number;
  /** FIRMWARE_VERSION_1 ‖ FIRMWARE_VERSION_2: the value TPMS_ATTEST.firmwareVersion carries. */
  readonly firmwareVersion: bigint;
  /** The TPM library specification it implements. */
  readonly spec: { readonly family: string; readonly level: number; readonly revision: number; readonly year: number; readonly dayOfYear: number };
  /** The platform-specific specification (PS_*; 1 = PC Client). */
  readonly platformSpec: { readonly family: number; readonly level: number; readonly revision: number; readonly year: number; readonly dayOfYear: number };
  readonly limits: {
    readonly inputBuffer: number;
    readonly maxCommandSize: number;
    readonly maxResponseSize: number;
    readonly maxDigest: number;
    readonly nvBufferMax: number;
    readonly nvIndexMax: number;
    readonly pcrCount: number;
    /** Objects that can be loaded at once (HR_TRANSIENT_MIN). */
    readonly loadedObjects: number;
    /** Sessions that can be loaded at once (HR_LOADED_MIN). */
    readonly loadedSessions: number;
    readonly activeSessions: number;
    readonly persistentObjects: number;
  };
  readonly permanent: TPMA_PERMANENT;
  readonly startupClear: TPMA_STARTUP_CLEAR;
  readonly lockout: { readonly counter: number; readonly maxAuthFail: number; readonly interval: number; readonly recovery: number };
  readonly algorithms: readonly { readonly alg: number; readonly name: string; readonly attributes: TPMA_ALGORITHM }[];
  /** Implemented command codes (vendor ones with bit 29 set). */
  readonly commands: readonly number[];
  /** Allocated PCR banks and the PCRs each holds. */
  readonly pcrBanks: readonly { readonly hashAlg: number; readonly name: string; readonly pcrs: readonly number[] }[];
  readonly eccCurves: readonly number[];
}

/** What describeTpm needs: the items of five GetCapability listings. */
export interface CapabilityListings {
  readonly properties: readonly TPMS_TAGGED_PROPERTY[];
  readonly algorithms: readonly TPMS_ALG_PROPERTY[];
  readonly commands: readonly TPMA_CC[];
  readonly pcrs: readonly TPMS_PCR_SELECTION[];
  readonly eccCurves: readonly number[];
}

/** Four bytes of a property as text (Part 2 §6.13: vendor strings are packed ASCII, unused bytes zero). */
export function propertyText(value: number): string {
  const bytes = [value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff];
  return String.fromCharCode(...bytes.filter((b) => b !== 0)).trimEnd();
}

/**
 * Builds a TpmDescription from GetCapability answers. Properties a TPM does
 * not report read as 0. Attribute words keep only the bits this revision
 * defines, so a newer TPM's extra bits never make a description fail.
 */
export function describeTpm(listings: CapabilityListings): TpmDescription {
  const props = new Map(listings.properties.map((p) => [p.property, p.value >>> 0]));
  const p = (pt: number): number => props.get(pt) ?? 0;
  const vendor = [TPM_PT.VENDOR_STRING_1, TPM_PT.VENDOR_STRING_2, TPM_PT.VENDOR_STRING_3, TPM_PT.VENDOR_STRING_4]
    .map((pt) => {
      const v = p(pt);
      return String.fromCharCode(v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
    })
    .join('')
    .replace(/\0+$/, '')
    .replace(/\0/g, ' ');
  return {
    manufacturer: propertyText(p(TPM_PT.MANUFACTURER)),
    manufacturerId: p(TPM_PT.MANUFACTURER),
    vendorString: vendor,
    vendorTpmType: p(TPM_PT.VENDOR_TPM_TYPE),
    firmwareVersion: (BigInt(p(TPM_PT.FIRMWARE_VERSION_1)) << 32n) | BigInt(p(TPM_PT.FIRMWARE_VERSION_2)),
    spec: {
      family: propertyText(p(TPM_PT.FAMILY_INDICATOR)),
      level: p(TPM_PT.LEVEL),
      revision: p(TPM_PT.REVISION),
      year: p(TPM_PT.YEAR),
      dayOfYear: p(TPM_PT.DAY_OF_YEAR),
    },
    platformSpec: {
      family: p(TPM_PT.PS_FAMILY_INDICATOR),
      level: p(TPM_PT.PS_LEVEL),
      revision: p(TPM_PT.PS_REVISION),
      year: p(TPM_PT.PS_YEAR),
      dayOfYear: p(TPM_PT.PS_DAY_OF_YEAR),
    },
    limits: {
      inputBuffer: p(TPM_PT.INPUT_BUFFER),
      maxCommandSize: p(TPM_PT.MAX_COMMAND_SIZE),
      maxResponseSize: p(TPM_PT.MAX_RESPONSE_SIZE),
      maxDigest: p(TPM_PT.MAX_DIGEST),
      nvBufferMax: p(TPM_PT.NV_BUFFER_MAX),
      nvIndexMax: p(TPM_PT.NV_INDEX_MAX),
      pcrCount: p(TPM_PT.PCR_COUNT),
      loadedObjects: p(TPM_PT.HR_TRANSIENT_MIN),
      loadedSessions: p(TPM_PT.HR_LOADED_MIN),
      activeSessions: p(TPM_PT.ACTIVE_SESSIONS_MAX),
      persistentObjects: p(TPM_PT.HR_PERSISTENT_MIN),
    },
    permanent: knownBits(TPMA_PERMANENT, p(TPM_PT.PERMANENT)),
    startupClear: knownBits(TPMA_STARTUP_CLEAR, p(TPM_PT.STARTUP_CLEAR)),
    lockout: {
      counter: p(TPM_PT.LOCKOUT_COUNTER),
      maxAuthFail: p(TPM_PT.MAX_AUTH_FAIL),
      interval: p(TPM_PT.LOCKOUT_INTERVAL),
      recovery: p(TPM_PT.LOCKOUT_RECOVERY),
    },
    algorithms: listings.algorithms.map((a) => ({
      alg: a.alg,
      name: constantName(TPM_ALG, a.alg) ?? `0x${a.alg.toString(16).padStart(4, '0')}`,
      attributes: a.algProperties,
    })),
    commands: listings.commands.map((c) => TPMA_CC.toWord(c) & 0x2000ffff),
    pcrBanks: listings.pcrs
      .filter((s) => s.pcrSelect.some((b) => b !== 0))
      .map((s) => ({ hashAlg: s.hash, name: constantName(TPM_ALG, s.hash) ?? `0x${s.hash.toString(16)}`, pcrs: pcrIndices(s) })),
    eccCurves: [...listings.eccCurves],
  };
}

/** An attribute word read leniently: bits this revision does not define are dropped, not an error. */
function knownBits<D extends Record<string, BitSpec>>(codec: BitsCodec<D>, word: number): BitsValue<D> {
  const reserved = codec.node.kind === 'bits' ? codec.node.reservedMask : 0;
  return codec.fromWord((word & ~reserved) >>> 0);
}
