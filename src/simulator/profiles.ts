/**
 * Named, typed profiles of the software TPM (issue 7 "Profiles"): the
 * limits it reports and enforces and the algorithm set it implements, so
 * that a stricter TPM is one engine option (`profile`) away. A profile is
 * fixed at manufacture: the state records its name and an engine refuses
 * to open a state with another one (README "Using the software TPM").
 *
 * - `libtpms` (the default) is this engine as it always was, mirroring
 *   libtpms 0.9 / swtpm: 3 loaded objects, 3 sessions, 1024-byte buffers,
 *   SHA-1/256/384/512, RSA 1024/2048/3072, NIST P-256/P-384, AES-128 and
 *   AES-256 (libtpms is built without AES-192) in every mode.
 * - `strict` is for testing that clients do not rely on weak algorithms.
 *   What it removes is removed as a TPM whose vendor left it out would
 *   (libtpms's runtime profiles with "sha1" and "ecb" disabled plus its
 *   `fips-host` attributes), so a client sees the answers a real TPM gives:
 *   - SHA-1 is not implemented at all: no SHA-1 PCR bank (the bank many
 *     current TPMs ship deallocated), no SHA-1 nameAlg (an object's or NV
 *     index's Name would rest on a broken hash), session, hash sequence,
 *     signing scheme or signature. Every SHA-1 TPMI_ALG_HASH in a command's
 *     parameters is TPM_RC_HASH on that parameter, as libtpms unmarshals a
 *     disabled hash. Keeping SHA-1 for PCRs or Names only would let a
 *     client pass that still breaks on such a TPM.
 *   - RSA keys of 2048 bits and more (SP 800-131A: 1024-bit RSA is
 *     disallowed since 2013: TPM_RC_VALUE wherever a parameter names it);
 *     NIST P-256 and P-384 only (the default's too, today; strict keeps
 *     them should the engine grow).
 *   - No ECB mode (TPM_RC_MODE): it leaks equal plaintext blocks and nothing
 *     a client needs uses it (parameter encryption is CFB).
 *   - No unpadded ("raw") RSA encryption (RSA_Encrypt/RSA_Decrypt with the
 *     NULL scheme: TPM_RC_SCHEME, libtpms's no-unpadded-encryption).
 *   The limits stay libtpms's: a strict profile is about algorithms, and a
 *   client tuned to 3 object slots must keep working.
 *
 * `signingHashes` is separate from `hashes` for profiles that keep a hash
 * but not for signatures (libtpms's no-sha1-signing / no-sha1-verification:
 * TPM_RC_HASH when an RSA or ECC key signs or a signature is verified).
 */
import { TPM_ALG, TPM_ECC } from '../tpm/constants.js';
import { ProfileError } from '../tpm/errors.js';
import { ECC_CURVES, RSA_KEY_BITS } from './keygen.js';

/** The TPM_PT_* limits a profile sets (capability.ts reports them, the engine and handlers enforce them). */
export interface TpmProfileLimits {
  /** TPM_PT_MAX_COMMAND_SIZE: a longer command is TPM_RC_COMMAND_SIZE. */
  readonly maxCommandSize: number;
  /** TPM_PT_MAX_RESPONSE_SIZE. */
  readonly maxResponseSize: number;
  /** TPM_PT_HR_TRANSIENT_MIN: object slots (TPM_RC_OBJECT_MEMORY beyond). */
  readonly loadedObjects: number;
  /** TPM_PT_HR_LOADED_MIN: loaded session slots (TPM_RC_SESSION_MEMORY beyond). */
  readonly loadedSessions: number;
  /** TPM_PT_ACTIVE_SESSIONS_MAX: loaded and saved sessions together (TPM_RC_SESSION_HANDLES beyond). */
  readonly activeSessions: number;
  /** TPM_PT_NV_BUFFER_MAX: bytes of one NV_Read/NV_Write/NV_Certify. */
  readonly nvBufferMax: number;
  /** TPM_PT_INPUT_BUFFER: TPM2B_MAX_BUFFER's size here. */
  readonly inputBuffer: number;
  /** TPM_PT_HR_PERSISTENT_MIN: persistent objects (EvictControl: TPM_RC_NV_SPACE beyond). */
  readonly persistentObjects: number;
  /** TPM_PT_NV_INDEX_MAX: the largest NV index data. */
  readonly nvIndexMax: number;
  /**
   * sizeof(_PRIVATE) (Part 2 §12.3.7): the largest TPM2B_PRIVATE Load, Import
   * and Rewrap take (TPM_RC_SIZE on that parameter beyond). The core parses
   * up to its own, larger bound (src/tpm/limits.ts SIZEOF_PRIVATE, an
   * RSA-4096 TPM's), as a client must; this TPM refuses what libtpms does.
   */
  readonly privateSize: number;
}

/** The algorithm set of a profile; every list is a subset of what the engine can do (checkProfile). */
export interface TpmProfileAlgorithms {
  /** Implemented hashes (TPMI_ALG_HASH): PCR banks, nameAlgs, sessions, sequences, schemes. */
  readonly hashes: readonly number[];
  /** Hashes an RSA or ECC key may sign or have verified with (a subset of `hashes`). */
  readonly signingHashes: readonly number[];
  /** RSA modulus sizes (TPMI_RSA_KEY_BITS). */
  readonly rsaKeyBits: readonly number[];
  /** AES key sizes (TPMI_AES_KEY_BITS), of AES_KEY_BITS. */
  readonly aesKeyBits: readonly number[];
  /** ECC curves (TPMI_ECC_CURVE, TPM_CAP_ECC_CURVES). */
  readonly eccCurves: readonly number[];
  /** Block cipher modes (TPMI_ALG_SYM_MODE, TPMI_ALG_CIPHER_MODE). */
  readonly symmetricModes: readonly number[];
  /** Whether RSA_Encrypt/RSA_Decrypt do raw RSA (the NULL scheme). */
  readonly unpaddedRsaEncryption: boolean;
  /** The PCR banks a new TPM has allocated (each with all 24 PCRs; PCR_Allocate may change them later). */
  readonly pcrBanks: readonly number[];
}

export interface TpmProfile {
  /** Recorded in the state at manufacture. */
  readonly name: string;
  readonly description: string;
  readonly limits: TpmProfileLimits;
  readonly algorithms: TpmProfileAlgorithms;
}

/** libtpms's limits (TPM_PT_* as swtpm reports them). */
const LIBTPMS_LIMITS: TpmProfileLimits = {
  maxCommandSize: 4096,
  maxResponseSize: 4096,
  loadedObjects: 3,
  loadedSessions: 3,
  activeSessions: 64,
  nvBufferMax: 1024,
  inputBuffer: 1024,
  persistentObjects: 7,
  nvIndexMax: 2048,
  // libtpms's sizeof(_PRIVATE) with MAX_RSA_KEY_BYTES 384 (RSA-3072) and SHA-512: two integrity digests, then the
  // TPM2B of a TPMT_SENSITIVE (type, authValue, seedValue, RSA_PRIVATE_SIZE = 5 half moduli): 1230.
  privateSize: 2 * (2 + 64) + 2 + (2 + 2 * (2 + 64) + 2 + (5 * 384) / 2),
};

const SHA2 = [TPM_ALG.SHA256, TPM_ALG.SHA384, TPM_ALG.SHA512];

/** Every AES key size (Part 2 §11.1.3 TPMI_AES_KEY_BITS); node:crypto has all three. */
export const AES_KEY_BITS: readonly number[] = [128, 192, 256];
/** libtpms is built with AES_128 and AES_256 only (TPMI_AES_KEY_BITS: TPM_RC_VALUE for 192). */
const LIBTPMS_AES_KEY_BITS: readonly number[] = [128, 256];

export const TPM_PROFILES = {
  libtpms: {
    name: 'libtpms',
    description: 'libtpms/swtpm as this engine mirrors them: SHA-1 and SHA-2, RSA 1024/2048/3072, NIST P-256/P-384, AES-128/256 in every mode; the default',
    limits: LIBTPMS_LIMITS,
    algorithms: {
      hashes: [TPM_ALG.SHA1, ...SHA2],
      signingHashes: [TPM_ALG.SHA1, ...SHA2],
      rsaKeyBits: RSA_KEY_BITS,
      aesKeyBits: LIBTPMS_AES_KEY_BITS,
      eccCurves: ECC_CURVES,
      symmetricModes: [TPM_ALG.CTR, TPM_ALG.OFB, TPM_ALG.CBC, TPM_ALG.CFB, TPM_ALG.ECB],
      unpaddedRsaEncryption: true,
      pcrBanks: [TPM_ALG.SHA1, ...SHA2],
    },
  },
  strict: {
    name: 'strict',
    description: 'no weak algorithms: no SHA-1 anywhere (banks, names, sessions, signatures), RSA of 2048 bits and more, no ECB, no raw RSA encryption',
    limits: LIBTPMS_LIMITS,
    algorithms: {
      hashes: SHA2,
      signingHashes: SHA2,
      rsaKeyBits: RSA_KEY_BITS.filter((b) => b >= 2048),
      aesKeyBits: LIBTPMS_AES_KEY_BITS,
      eccCurves: ECC_CURVES.filter((c) => c === TPM_ECC.NIST_P256 || c === TPM_ECC.NIST_P384),
      symmetricModes: [TPM_ALG.CTR, TPM_ALG.OFB, TPM_ALG.CBC, TPM_ALG.CFB],
      unpaddedRsaEncryption: false,
      pcrBanks: SHA2,
    },
  },
} as const satisfies Record<string, TpmProfile>;

export type TpmProfileName = keyof typeof TPM_PROFILES;

/** The default profile: the engine as it was before profiles. */
export const DEFAULT_PROFILE: TpmProfileName = 'libtpms';

export function isProfileName(name: string): name is TpmProfileName {
  return Object.hasOwn(TPM_PROFILES, name);
}

/**
 * The built-in profile called `name`.
 * @throws ProfileError profile.unknown, naming the profiles there are
 */
export function profileByName(name: string): TpmProfile {
  if (!isProfileName(name)) throw new ProfileError('profile.unknown', `no software TPM profile "${name}" (profiles: ${Object.keys(TPM_PROFILES).join(', ')})`, name);
  return TPM_PROFILES[name];
}

/**
 * Checks that the engine can be what `profile` asks: every algorithm, size
 * and curve one the libtpms profile has (the engine implements nothing
 * more), CFB kept (parameter encryption and contexts use it, as libtpms
 * never disables it), SHA-256 kept (EK templates and the state's own
 * digests), signing hashes and PCR banks among the hashes, positive limits,
 * and no built-in profile's name on other contents.
 * @throws ProfileError profile.invalid
 */
export function checkProfile(profile: TpmProfile): TpmProfile {
  const full = TPM_PROFILES.libtpms.algorithms;
  const a = profile.algorithms;
  const bad = (what: string): never => {
    throw new ProfileError('profile.invalid', `software TPM profile "${profile.name}": ${what}`, profile.name);
  };
  const subset = (field: string, list: readonly number[], of: readonly number[]): void => {
    const extra = list.filter((x) => !of.includes(x));
    if (extra.length > 0) bad(`${field} has ${extra.map((x) => `0x${x.toString(16)}`).join(', ')}, which this engine does not implement`);
  };
  if (profile.name.length === 0) bad('no name');
  // A built-in profile's name means that profile: a state records only the name.
  if (isProfileName(profile.name) && JSON.stringify(profile) !== JSON.stringify(TPM_PROFILES[profile.name])) bad('a built-in profile\'s name with other contents');
  subset('hashes', a.hashes, full.hashes);
  subset('signingHashes', a.signingHashes, a.hashes);
  subset('rsaKeyBits', a.rsaKeyBits, full.rsaKeyBits);
  subset('aesKeyBits', a.aesKeyBits, AES_KEY_BITS);
  subset('eccCurves', a.eccCurves, full.eccCurves);
  subset('symmetricModes', a.symmetricModes, full.symmetricModes);
  subset('pcrBanks', a.pcrBanks, a.hashes);
  if (!a.hashes.includes(TPM_ALG.SHA256)) bad('hashes must keep SHA-256');
  if (!a.symmetricModes.includes(TPM_ALG.CFB)) bad('symmetricModes must keep CFB (parameter encryption)');
  if (!a.aesKeyBits.includes(128)) bad('aesKeyBits must keep 128 (the TCG EK and SRK templates)');
  if (a.pcrBanks.length === 0) bad('no PCR bank');
  for (const [k, v] of Object.entries(profile.limits)) if (!Number.isSafeInteger(v) || v < 1) bad(`limits.${k} ${String(v)} is not a positive integer`);
  return profile;
}

/** A profile option (a name or a profile) as a checked profile. */
export function resolveProfile(option: TpmProfileName | TpmProfile | undefined): TpmProfile {
  if (option === undefined) return TPM_PROFILES[DEFAULT_PROFILE];
  return typeof option === 'string' ? profileByName(option) : checkProfile(option);
}

/**
 * The profile an engine runs under. A stored TPM (`recorded`: its state's
 * profile) keeps the one it was manufactured with: an option naming another
 * is refused, and without an option the recorded name must be a built-in
 * profile. A new TPM takes the option's, or the default.
 * @throws ProfileError profile.mismatch, profile.unknown or profile.invalid
 */
export function profileForState(option: TpmProfileName | TpmProfile | undefined, recorded: string | undefined): TpmProfile {
  if (recorded === undefined) return resolveProfile(option);
  if (option === undefined) {
    if (!isProfileName(recorded)) throw new ProfileError('profile.unknown', `this TPM was manufactured with the profile "${recorded}", which is no built-in one: pass that profile`, recorded);
    return TPM_PROFILES[recorded];
  }
  const profile = resolveProfile(option);
  if (profile.name !== recorded) {
    throw new ProfileError('profile.mismatch', `this TPM was manufactured with the profile "${recorded}", not "${profile.name}": a TPM's algorithm set never changes (manufacture a new one for another profile)`, profile.name);
  }
  return profile;
}
