/**
 * Honest evidence on demand: a measured-boot writer. From a small config it
 * produces what a real machine would hand a verifier — a TCG PC Client
 * crypto-agile event log (firmware, Secure Boot variables, a shim → GRUB →
 * kernel chain, kernel command line) and a Linux IMA measurement list
 * (binary and ASCII) — together with the exact PCR extends they imply, so a
 * test can apply them to a TPM and get evidence that verifies end to end.
 *
 * Pure: no I/O, no clock, no randomness. The same config gives the same bytes.
 * It shares no code with the parsers (eventlog.ts, ima.ts) on purpose, so
 * that the two implementations check each other.
 *
 * Layouts: TCG PC Client Platform Firmware Profile (PFP) §10 (every integer
 * little-endian, tpm-spec-facts.md §10); UEFI 2.x for variables, device paths
 * and GPT; Linux security/integrity/ima (ima_fs.c, ima_template_lib.c,
 * ima_crypto.c) for IMA (tpm-spec-facts.md §11); GRUB's and shim's TPM
 * measurements for PCR 4/7/8/9.
 */
import { TPM_ALG } from '../tpm/constants.js';
import { digestSize, hash, isHashSupported, type TpmHashAlg } from '../tpm/crypto/hash.js';
import { EvidenceError } from '../tpm/errors.js';

// ---------------------------------------------------------------------------
// Public types

/** Digests per bank (TPM_ALG_ID → digest), e.g. `{ [TPM_ALG.SHA256]: authenticodeHash }`. */
export type BankDigests = Readonly<Partial<Record<number, Uint8Array>>>;

/** PCR values: bank (TPM_ALG_ID) → PCR index → value. */
export type PcrBankValues = ReadonlyMap<number, ReadonlyMap<number, Uint8Array>>;

/** One PCR_Extend of one bank: PCR_new = H_bank(PCR_old ‖ digest). */
export interface PcrExtend {
  readonly pcr: number;
  readonly bank: TpmHashAlg;
  readonly digest: Uint8Array;
}

/** A PE image the boot chain loads (EV_EFI_BOOT_SERVICES_APPLICATION, PFP §10.4.4). */
export interface BootImage {
  /** The file the loader read, as a UEFI path with backslashes (`\EFI\debian\shimx64.efi`). */
  readonly path: string;
  /** The image bytes; H_bank(image) stands in for the PE/COFF Authenticode hash a firmware logs. */
  readonly image?: Uint8Array;
  /** Real Authenticode hashes per bank, used instead of hashing `image` (every bank needs one). */
  readonly digests?: BankDigests;
  /** UEFI_IMAGE_LOAD_EVENT.DevicePath bytes; default: a hard-drive node on the ESP and a file-path node. */
  readonly devicePath?: Uint8Array;
  /** ImageLocationInMemory (default a fixed address per stage). */
  readonly loadAddress?: bigint;
}

/** A file GRUB reads and measures into PCR 9 (EV_IPL, data = its path). */
export interface MeasuredFile {
  /** GRUB's path, e.g. `/boot/vmlinuz-6.1.0`. */
  readonly path: string;
  readonly content?: Uint8Array;
  /** Per-bank digests instead of hashing `content`. */
  readonly digests?: BankDigests;
}

/** One EFI_SIGNATURE_LIST (UEFI 2.x §32.4.1): signatures of one type and one size. */
export interface SignatureListConfig {
  /** `x509` (EFI_CERT_X509_GUID, DER certificates), `sha256` (EFI_CERT_SHA256_GUID, 32-byte hashes), or a GUID. */
  readonly type: 'x509' | 'sha256' | string;
  /** SignatureOwner of every entry (GUID string; default the trustroot owner GUID). */
  readonly owner?: string;
  /** The signatures' data; all the same length (SignatureSize is per list). */
  readonly entries: readonly Uint8Array[];
}

/** A Secure Boot variable's value: signature lists, or the raw variable bytes (to replay a captured value). */
export type SignatureDatabaseConfig = readonly SignatureListConfig[] | Uint8Array;

export interface SecureBootConfig {
  /** The SecureBoot variable (1 byte): 1 = on. Default true. */
  readonly enabled?: boolean;
  readonly pk?: SignatureDatabaseConfig;
  readonly kek?: SignatureDatabaseConfig;
  readonly db?: SignatureDatabaseConfig;
  readonly dbx?: SignatureDatabaseConfig;
  /**
   * The db entry that verified the first stage, logged as EV_EFI_VARIABLE_AUTHORITY
   * (EFI_SIGNATURE_DATA: owner GUID ‖ certificate). Default: the default db certificate.
   */
  readonly dbAuthority?: { readonly owner?: string; readonly certificate: Uint8Array };
  /** The certificate built into shim that verified GRUB and the kernel ("Shim" authority, raw DER). */
  readonly shimCertificate?: Uint8Array;
}

/** A GPT partition (UEFI 2.x §5.3.3) for the EV_EFI_GPT_EVENT. */
export interface GptPartitionConfig {
  /** PartitionTypeGUID. */
  readonly type: string;
  /** UniquePartitionGUID. */
  readonly guid: string;
  readonly firstLba: bigint;
  readonly lastLba: bigint;
  readonly attributes?: bigint;
  /** At most 36 UTF-16 code units. */
  readonly name?: string;
  /** Its slot in the on-disk entry array (default: the position in this list); empty slots are zeros. */
  readonly slot?: number;
}

export interface DiskConfig {
  readonly guid?: string;
  /** Last LBA of the disk (default 0x3FFFFF: a 2 GiB disk of 512-byte sectors). */
  readonly lastLba?: bigint;
  readonly partitions?: readonly GptPartitionConfig[];
}

export interface BootChainConfig {
  /** Loaded by the firmware from the boot option (default `\EFI\BOOT\BOOTX64.EFI`); false: none. */
  readonly shim?: BootImage | false;
  /** Loaded by shim (default `\EFI\BOOT\grubx64.efi`); false: shim (or the firmware) loads the kernel itself. */
  readonly grub?: BootImage | false;
  /** The kernel's PE image (EFI stub), loaded last. */
  readonly kernel?: BootImage;
  /** GRUB's `linux` file: the kernel as GRUB read it (PCR 9). Default: the kernel's path and bytes. */
  readonly kernelFile?: MeasuredFile;
  /** GRUB's `initrd` file (PCR 9); false: none. */
  readonly initrd?: MeasuredFile | false;
  /** GRUB commands before `linux` (PCR 8, `grub_cmd: …`). */
  readonly grubCommands?: readonly string[];
}

/** A platform firmware volume measured into PCR 0 (EV_EFI_PLATFORM_FIRMWARE_BLOB, PFP §10.4.2). */
export interface FirmwareBlob {
  readonly base: bigint;
  readonly content: Uint8Array;
  /** BlobLength; default content.length. */
  readonly length?: bigint;
}

export type ImaTemplate = 'ima-ng' | 'ima-sig' | 'ima-buf' | 'ima';

/**
 * How the kernel extends the TPM: `per-bank` (Linux ≥ 5.8: each bank with
 * H_bank(template data), violations as 0xFF of the bank's size) or
 * `sha1-padded` (older kernels: the SHA-1 template hash zero-padded into every
 * bank, violations as 20 bytes of 0xFF zero-padded).
 */
export type ImaKernel = 'per-bank' | 'sha1-padded';

export interface ImaFileConfig {
  readonly kind?: 'file';
  readonly path: string;
  /** The file's bytes (its digest is computed), or `digest` (already computed with `hashAlg`). */
  readonly content?: Uint8Array;
  readonly digest?: Uint8Array;
  /** The file digest's algorithm (default the list's hashAlg; the `ima` template always uses SHA-1). */
  readonly hashAlg?: TpmHashAlg;
  /** The security.ima signature bytes for `ima-sig` (empty when absent). */
  readonly signature?: Uint8Array;
  readonly template?: ImaTemplate;
  readonly pcr?: number;
}

export interface ImaBufferConfig {
  readonly kind: 'buffer';
  /** The event name, e.g. `kexec-cmdline` or a keyring name. */
  readonly name: string;
  readonly buffer: Uint8Array;
  readonly hashAlg?: TpmHashAlg;
  /** Default `ima-buf`. */
  readonly template?: ImaTemplate;
  readonly pcr?: number;
}

/** A ToMToU / open-writers violation: zero digests in the list, all-ones extends. */
export interface ImaViolationConfig {
  readonly kind: 'violation';
  readonly path: string;
  readonly template?: ImaTemplate;
  readonly pcr?: number;
}

export type ImaEntryConfig = ImaFileConfig | ImaBufferConfig | ImaViolationConfig;

export interface ImaConfig {
  /** Template of entries that name none (default `ima-ng`). */
  readonly template?: ImaTemplate;
  /** Default `per-bank`. */
  readonly kernel?: ImaKernel;
  /** ima_hash: the file digests' algorithm and the preferred boot_aggregate bank (default SHA-256). */
  readonly hashAlg?: TpmHashAlg;
  /** CONFIG_IMA_MEASURE_PCR_IDX (default 10). */
  readonly pcr?: number;
  /** Start with boot_aggregate (default true; false e.g. to replay a captured list). */
  readonly bootAggregate?: boolean;
  /** Measurements after boot_aggregate (default: a few system files). */
  readonly entries?: readonly ImaEntryConfig[];
  /**
   * The template-hash column of the lists: SHA-1 (the classic
   * `*_runtime_measurements` files, default) or another bank, as the
   * per-bank `*_runtime_measurements_<alg>` files show it (per-bank kernels only).
   */
  readonly listBank?: TpmHashAlg;
}

export interface PlatformConfig {
  /** Spec ID platformClass: 0 client, 1 server. */
  readonly platformClass?: number;
  /** Spec ID specErrata (default 0). */
  readonly specErrata?: number;
  readonly vendorInfo?: Uint8Array;
  /** EV_S_CRTM_VERSION as a UTF-16 string (default `trustroot firmware 1.0`); a Uint8Array is logged as is. */
  readonly crtmVersion?: string | Uint8Array;
  readonly firmware?: readonly FirmwareBlob[];
}

export interface MeasuredBootConfig {
  /** PCR banks the log records and the extends cover (default SHA-1 and SHA-256). */
  readonly banks?: readonly TpmHashAlg[];
  /**
   * Log a StartupLocality EV_NO_ACTION (PFP §10.4.5.3) for a TPM started at
   * this locality (PCR 0 then starts at 0…0L). Default: no such event (locality 0).
   */
  readonly startupLocality?: 0 | 3;
  readonly platform?: PlatformConfig;
  /** true/false or the variables (default: on, with the default test keys). */
  readonly secureBoot?: boolean | SecureBootConfig;
  /** BootOrder and Boot0001 in PCR 1 (default true). */
  readonly bootVariables?: boolean;
  /** The GPT of the boot disk in PCR 5 (default: an ESP and a root partition); false: none. */
  readonly disk?: DiskConfig | false;
  readonly bootChain?: BootChainConfig;
  /** The kernel's arguments after its path in GRUB's `linux` command (PCR 8: `kernel_cmdline: <path> <cmdline>`). */
  readonly cmdline?: string;
  /** The IMA list (default: `ima-ng`, per-bank kernel); false: none. */
  readonly ima?: ImaConfig | false;
}

/** One record of the event log, as written. */
export interface WrittenEvent {
  /** 0 for the first record after the Spec ID event. */
  readonly index: number;
  readonly pcr: number;
  readonly type: number;
  /** The PFP name without `EV_`, e.g. `EFI_VARIABLE_DRIVER_CONFIG`. */
  readonly typeName: string;
  readonly digests: ReadonlyMap<TpmHashAlg, Uint8Array>;
  readonly data: Uint8Array;
  /** Where its TCG_PCR_EVENT2 record starts in the log, and its length. */
  readonly offset: number;
  readonly length: number;
  /** False for EV_NO_ACTION, which is never extended. */
  readonly extended: boolean;
}

export interface WrittenEventLog {
  readonly banks: readonly TpmHashAlg[];
  readonly startupLocality: number | undefined;
  readonly eventLog: Uint8Array;
  /** The Spec ID record's length (the first event starts there). */
  readonly specIdLength: number;
  readonly events: readonly WrittenEvent[];
  readonly extends: readonly PcrExtend[];
  /** The value of every PCR the log extends, per bank. */
  readonly pcrs: PcrBankValues;
}

/** One IMA measurement, as written. */
export interface WrittenImaEntry {
  readonly index: number;
  readonly pcr: number;
  readonly template: ImaTemplate;
  /** The n/n-ng field as stored (spaces replaced by `_`, as the kernel does). */
  readonly name: string;
  readonly violation: boolean;
  /** The d/d-ng digest and its algorithm (zeros for a violation). */
  readonly fileDigest: { readonly hashAlg: TpmHashAlg; readonly digest: Uint8Array };
  /** Template data as hashed (non-`ima` templates: each field as u32 length ‖ bytes). */
  readonly templateData: Uint8Array;
  /** The template hash the lists show (listBank; zeros for a violation). */
  readonly templateHash: Uint8Array;
  /** What was extended into each bank. */
  readonly extends: ReadonlyMap<TpmHashAlg, Uint8Array>;
  readonly line: string;
  /** Where the entry starts in the binary list, and its length. */
  readonly offset: number;
  readonly length: number;
}

export interface WrittenImaList {
  readonly kernel: ImaKernel;
  readonly listBank: TpmHashAlg;
  readonly binary: Uint8Array;
  readonly ascii: string;
  readonly entries: readonly WrittenImaEntry[];
  /** The boot_aggregate: the bank it was computed from and the PCRs it covers. */
  readonly bootAggregate: { readonly hashAlg: TpmHashAlg; readonly digest: Uint8Array; readonly pcrs: readonly number[] } | undefined;
  readonly extends: readonly PcrExtend[];
}

export interface MeasuredBoot extends WrittenEventLog {
  readonly ima: WrittenImaList | undefined;
  /** Event-log extends, then the IMA list's, in order. */
  readonly extends: readonly PcrExtend[];
  /** Values of every PCR the evidence touches (event log and IMA), per bank. */
  readonly pcrs: PcrBankValues;
}

// ---------------------------------------------------------------------------
// Constants (PFP §10.4.1; UEFI 2.x)

/** Event types the writer uses (PFP §10.4.1, Table 9). */
const EV = {
  POST_CODE: 0x1,
  NO_ACTION: 0x3,
  SEPARATOR: 0x4,
  ACTION: 0x5,
  S_CRTM_VERSION: 0x8,
  IPL: 0xd,
  EFI_VARIABLE_DRIVER_CONFIG: 0x80000001,
  EFI_VARIABLE_BOOT: 0x80000002,
  EFI_BOOT_SERVICES_APPLICATION: 0x80000003,
  EFI_GPT_EVENT: 0x80000006,
  EFI_ACTION: 0x80000007,
  EFI_PLATFORM_FIRMWARE_BLOB: 0x80000008,
  EFI_VARIABLE_AUTHORITY: 0x800000e0,
} as const;

const EV_NAME = new Map<number, string>(Object.entries(EV).map(([k, v]) => [v, k]));

const GUID = {
  /** EFI_GLOBAL_VARIABLE: SecureBoot, PK, KEK, BootOrder, Boot####. */
  GLOBAL_VARIABLE: '8be4df61-93ca-11d2-aa0d-00e098032b8c',
  /** EFI_IMAGE_SECURITY_DATABASE_GUID: db, dbx. */
  IMAGE_SECURITY_DATABASE: 'd719b2cb-3d3a-4596-a3bc-dad00e67656f',
  CERT_X509: 'a5c059a1-94e4-4aa7-87b5-ab155c2bf072',
  CERT_SHA256: 'c1c41626-504c-4092-aca9-41f936934328',
  /** SHIM_LOCK_GUID: shim's "Shim" authority and MOK variables. */
  SHIM_LOCK: '605dab50-e046-4300-abb6-3dd810dd8b23',
  /** SignatureOwner of the default test keys (made up for trustroot). */
  TRUSTROOT_OWNER: '74727374-726f-6f74-8000-0000000000a6',
  ESP_TYPE: 'c12a7328-f81f-11d2-ba4b-00a0c93ec93b',
  LINUX_FS_TYPE: '0fc63daf-8483-4772-8e79-3d69d8477de4',
  DISK: '74727374-726f-6f74-8000-00000000d15c',
  ESP: '74727374-726f-6f74-8000-0000000000e5',
  ROOT: '74727374-726f-6f74-8000-000000000001',
} as const;

/**
 * Self-signed ECDSA P-256 test certificates (O=trustroot, CN=trustroot test
 * PK|KEK|db|shim, valid 2025–2055), made once for these defaults; their
 * private keys were discarded. They only have to parse as X.509.
 */
const TEST_CERT = {
  PK: 'MIIBTjCB9aADAgECAgEBMAoGCCqGSM49BAMCMDAxEjAQBgNVBAoMCXRydXN0cm9vdDEaMBgGA1UEAwwRdHJ1c3Ryb290IHRlc3QgUEswIBcNMjUwMTAxMDAwMDAwWhgPMjA1NTAxMDEwMDAwMDBaMDAxEjAQBgNVBAoMCXRydXN0cm9vdDEaMBgGA1UEAwwRdHJ1c3Ryb290IHRlc3QgUEswWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAASXI2vw89Eyw96FZnJYXZUfStQ885wD6iUEILESWMGEK8Xm3vAgWI7RiMeQRFXUuCIFXgKhkT1iQ3xRr2nf89ekMAoGCCqGSM49BAMCA0gAMEUCIFY2D8fkAPkIzj8DaPLEORBd3oRNrWx8rgrL5bpZwX1IAiEAieT/JcLmKathfAdXrI5EvBQ7XNxVKvkRt2xGmOki9Q0=',
  KEK: 'MIIBUTCB96ADAgECAgEBMAoGCCqGSM49BAMCMDExEjAQBgNVBAoMCXRydXN0cm9vdDEbMBkGA1UEAwwSdHJ1c3Ryb290IHRlc3QgS0VLMCAXDTI1MDEwMTAwMDAwMFoYDzIwNTUwMTAxMDAwMDAwWjAxMRIwEAYDVQQKDAl0cnVzdHJvb3QxGzAZBgNVBAMMEnRydXN0cm9vdCB0ZXN0IEtFSzBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABFgR2nOfy1wNlA5le/UE++e4qPI4ubnrQihc8/LQZmnTVMVKGJghK04XE9xBa56/x+e1rCtzztRaU8nKpKeFDDQwCgYIKoZIzj0EAwIDSQAwRgIhAIlKQXjkFg7C6lyoPy7O6Vqv5Npq+WJN7CCZFP5EaVneAiEAk6wrqa3t260N208x45z9ytuoFGt63HN+C35qiKGctBU=',
  db: 'MIIBTzCB9aADAgECAgEBMAoGCCqGSM49BAMCMDAxEjAQBgNVBAoMCXRydXN0cm9vdDEaMBgGA1UEAwwRdHJ1c3Ryb290IHRlc3QgZGIwIBcNMjUwMTAxMDAwMDAwWhgPMjA1NTAxMDEwMDAwMDBaMDAxEjAQBgNVBAoMCXRydXN0cm9vdDEaMBgGA1UEAwwRdHJ1c3Ryb290IHRlc3QgZGIwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAT1jYDAMDwc2qe3vRH9D00EdTk9AOvazRgWpDdmUHTEHvRTPuxRjSHNipWtHNno1QEKCCYQJ6drtgbFVC6qUGJlMAoGCCqGSM49BAMCA0kAMEYCIQDd8s8bVCdLCU/FA86q/iVqm29g/QhvKPzqr8Z/N2u5TQIhAP44UR9uAyqVY/vD1nC7f1hF6XVDimq9TUGhfA6+qYhf',
  shim: 'MIIBUjCB+aADAgECAgEBMAoGCCqGSM49BAMCMDIxEjAQBgNVBAoMCXRydXN0cm9vdDEcMBoGA1UEAwwTdHJ1c3Ryb290IHRlc3Qgc2hpbTAgFw0yNTAxMDEwMDAwMDBaGA8yMDU1MDEwMTAwMDAwMFowMjESMBAGA1UECgwJdHJ1c3Ryb290MRwwGgYDVQQDDBN0cnVzdHJvb3QgdGVzdCBzaGltMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEwE3xTKj6F3GOR7FkkuZkq/tNRnzugp2SrZdqXVp9ZFSIPF1eJ4y789gzI9Ann5b0bMskON1Zz0y8AZ1cPIANyDAKBggqhkjOPQQDAgNIADBFAiADQgSCHZBln/T4HInOD8SoIXutrOcDxBOHQAJu45P6twIhALA1u7W2MdAzPkkOrvjTxd3g5vgvNiKMfmV6cDFzZ1u1',
} as const;

/** The test certificates the defaults use, as DER (for tests that want to look for them). */
export function testCertificate(which: keyof typeof TEST_CERT): Uint8Array {
  return new Uint8Array(Buffer.from(TEST_CERT[which], 'base64'));
}

/** Linux's hash_algo_name[] for the TPM hashes (include/crypto/hash_info.h). */
const KERNEL_HASH_NAME = new Map<number, string>([
  [TPM_ALG.SHA1, 'sha1'],
  [TPM_ALG.SHA256, 'sha256'],
  [TPM_ALG.SHA384, 'sha384'],
  [TPM_ALG.SHA512, 'sha512'],
  [TPM_ALG.SM3_256, 'sm3'],
  [TPM_ALG.SHA3_256, 'sha3-256'],
  [TPM_ALG.SHA3_384, 'sha3-384'],
  [TPM_ALG.SHA3_512, 'sha3-512'],
]);

/** IMA_EVENT_NAME_LEN_MAX: the `ima` template pads its name to this + 1 bytes (ima.h). */
const IMA_EVENT_NAME_LEN_MAX = 255;

const utf8 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'utf8'));

function bad(message: string): never {
  throw new EvidenceError('evidence.argument', `measured-boot writer: ${message}`);
}

// ---------------------------------------------------------------------------
// Little-endian byte building

class LeWriter {
  #buf = new Uint8Array(256);
  #len = 0;

  get length(): number {
    return this.#len;
  }

  #room(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }

  u8(v: number): this {
    this.#room(1);
    this.#buf[this.#len++] = v & 0xff;
    return this;
  }

  u16(v: number): this {
    this.#room(2);
    new DataView(this.#buf.buffer).setUint16(this.#len, v, true);
    this.#len += 2;
    return this;
  }

  u32(v: number): this {
    this.#room(4);
    new DataView(this.#buf.buffer).setUint32(this.#len, v >>> 0, true);
    this.#len += 4;
    return this;
  }

  u64(v: bigint): this {
    this.#room(8);
    new DataView(this.#buf.buffer).setBigUint64(this.#len, BigInt.asUintN(64, v), true);
    this.#len += 8;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.#room(b.length);
    this.#buf.set(b, this.#len);
    this.#len += b.length;
    return this;
  }

  /** Overwrites a u32 already written (sizes and CRCs known only later). */
  patchU32(at: number, v: number): void {
    new DataView(this.#buf.buffer).setUint32(at, v >>> 0, true);
  }

  finish(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }
}

function concat(...parts: readonly Uint8Array[]): Uint8Array {
  const w = new LeWriter();
  for (const p of parts) w.bytes(p);
  return w.finish();
}

/** UTF-16LE without a terminator (UEFI CHAR16 strings). */
function utf16(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'utf16le'));
}

/** An EFI_GUID: the first three fields little-endian, the last eight bytes as written (UEFI 2.x Appendix A). */
function guid(text: string): Uint8Array {
  const m = /^([0-9a-f]{8})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{12})$/i.exec(text);
  if (m === null) bad(`${JSON.stringify(text)} is not a GUID (8-4-4-4-12 hex digits)`);
  const hex = (s: string): Buffer => Buffer.from(s, 'hex');
  return concat(hex(m[1]!).reverse(), hex(m[2]!).reverse(), hex(m[3]!).reverse(), hex(m[4]!), hex(m[5]!));
}

/** CRC-32 (IEEE 802.3, reflected, as GPT uses: UEFI 2.x §5.3.2). */
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of data) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// ---------------------------------------------------------------------------
// Validation helpers

function checkBanks(banks: readonly number[]): TpmHashAlg[] {
  if (!Array.isArray(banks) || banks.length === 0) bad('banks: at least one PCR bank is needed');
  const seen = new Set<number>();
  for (const b of banks) {
    if (!isHashSupported(b)) bad(`bank 0x${Number(b).toString(16)} is not a hash this runtime can compute`);
    if (seen.has(b)) bad(`bank 0x${b.toString(16)} is listed twice`);
    seen.add(b);
  }
  return [...banks] as TpmHashAlg[];
}

function checkPcr(pcr: number, what: string): number {
  if (!Number.isInteger(pcr) || pcr < 0 || pcr > 23) bad(`${what}: PCR ${String(pcr)} is outside 0..23`);
  return pcr;
}

function checkBytes(v: unknown, what: string): Uint8Array {
  if (!(v instanceof Uint8Array)) bad(`${what}: expected a Uint8Array`);
  return v;
}

/** Digests of `bytes` in every bank, or the given per-bank digests (each checked for size). */
function bankDigests(banks: readonly TpmHashAlg[], what: string, bytes: Uint8Array | undefined, given: BankDigests | undefined): Map<TpmHashAlg, Uint8Array> {
  const out = new Map<TpmHashAlg, Uint8Array>();
  for (const bank of banks) {
    const d = given?.[bank];
    if (d !== undefined) {
      checkBytes(d, `${what} digest`);
      if (d.length !== digestSize(bank)) bad(`${what}: the digest for bank 0x${bank.toString(16)} has ${d.length} bytes, not ${digestSize(bank)}`);
      out.set(bank, d);
    } else if (bytes !== undefined) {
      out.set(bank, hash(bank, bytes));
    } else {
      bad(`${what}: no content to hash and no digest for bank 0x${bank.toString(16)}`);
    }
  }
  return out;
}

/** The value a PCR holds after TPM2_Startup(CLEAR): zeros, PCR 0's last byte the startup locality (PC Client PTP). */
export function pcrStartValue(bank: TpmHashAlg, pcr: number, startupLocality?: number): Uint8Array {
  const v = new Uint8Array(digestSize(bank));
  // PCRs 17–22 are all ones until a dynamic launch (PC Client PTP); the writer never extends them.
  if (pcr >= 17 && pcr <= 22) v.fill(0xff);
  if (pcr === 0 && startupLocality !== undefined) v[v.length - 1] = startupLocality;
  return v;
}

/**
 * Replays extends from the start-up values: PCR_new = H_bank(PCR_old ‖ digest)
 * (Part 1 §17.5.1). Returns the final value of every PCR extended, per bank.
 *
 * @throws EvidenceError `evidence.argument` for a bank this runtime cannot hash or a digest of the wrong size.
 */
export function replayExtends(extendList: readonly PcrExtend[], options: { readonly startupLocality?: number; readonly from?: PcrBankValues } = {}): Map<number, Map<number, Uint8Array>> {
  const out = new Map<number, Map<number, Uint8Array>>();
  for (const [bank, m] of options.from ?? new Map<number, Map<number, Uint8Array>>()) out.set(bank, new Map(m));
  for (const e of extendList) {
    if (!isHashSupported(e.bank)) bad(`extend of bank 0x${Number(e.bank).toString(16)}: not a hash this runtime can compute`);
    checkPcr(e.pcr, 'extend');
    if (!(e.digest instanceof Uint8Array) || e.digest.length !== digestSize(e.bank)) bad(`extend of PCR ${e.pcr}: digest of the wrong size for bank 0x${e.bank.toString(16)}`);
    let bank = out.get(e.bank);
    if (bank === undefined) out.set(e.bank, (bank = new Map()));
    const old = bank.get(e.pcr) ?? pcrStartValue(e.bank, e.pcr, options.startupLocality);
    bank.set(e.pcr, hash(e.bank, old, e.digest));
  }
  return out;
}

// ---------------------------------------------------------------------------
// The event log

interface Draft {
  readonly pcr: number;
  readonly type: number;
  readonly data: Uint8Array;
  readonly digests: Map<TpmHashAlg, Uint8Array>;
}

/** UEFI_VARIABLE_DATA (PFP §10.2.6): GUID, name length in CHAR16 (no terminator), data length, name, data. */
function variableData(vendor: string, name: string, data: Uint8Array): Uint8Array {
  const nameBytes = utf16(name);
  return new LeWriter()
    .bytes(guid(vendor))
    .u64(BigInt(name.length))
    .u64(BigInt(data.length))
    .bytes(nameBytes)
    .bytes(data)
    .finish();
}

/** EFI_SIGNATURE_LIST × n (UEFI 2.x §32.4.1), no SignatureHeader. */
function signatureDatabase(value: SignatureDatabaseConfig, what: string): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (!Array.isArray(value)) bad(`${what}: expected signature lists or bytes`);
  const w = new LeWriter();
  for (const list of value as readonly SignatureListConfig[]) {
    const type = list.type === 'x509' ? GUID.CERT_X509 : list.type === 'sha256' ? GUID.CERT_SHA256 : list.type;
    if (list.entries.length === 0) bad(`${what}: an empty signature list`);
    const size = checkBytes(list.entries[0], `${what} entry`).length;
    if (list.type === 'sha256' && size !== 32) bad(`${what}: a SHA-256 signature of ${size} bytes`);
    const owner = guid(list.owner ?? GUID.TRUSTROOT_OWNER);
    w.bytes(guid(type))
      .u32(28 + list.entries.length * (16 + size)) // SignatureListSize: the 28-byte header and the signatures
      .u32(0) // SignatureHeaderSize
      .u32(16 + size); // SignatureSize: owner GUID ‖ data
    for (const e of list.entries) {
      if (checkBytes(e, `${what} entry`).length !== size) bad(`${what}: the entries of one signature list must have one size`);
      w.bytes(owner).bytes(e);
    }
  }
  return w.finish();
}

/** A UEFI device path (UEFI 2.x §10.3): a hard-drive node for partition 1 of the default disk, a file-path node, the end node. */
function devicePathFor(path: string, partition: GptPartitionConfig | undefined): Uint8Array {
  const w = new LeWriter();
  if (partition !== undefined) {
    // Media / Hard Drive (type 4, subtype 1, 42 bytes): partition number, start, size, GPT signature.
    w.u8(4).u8(1).u16(42).u32(1).u64(partition.firstLba).u64(partition.lastLba - partition.firstLba + 1n).bytes(guid(partition.guid)).u8(2).u8(2);
  }
  const name = utf16(`${path}\0`);
  // Media / File Path (type 4, subtype 4): a NUL-terminated CHAR16 path.
  w.u8(4).u8(4).u16(4 + name.length).bytes(name);
  // End of Hardware Device Path (0x7F / 0xFF, 4 bytes).
  w.u8(0x7f).u8(0xff).u16(4);
  return w.finish();
}

/** UEFI_IMAGE_LOAD_EVENT (PFP §10.2.3). */
function imageLoadEvent(image: BootImage, defaultAddress: bigint, partition: GptPartitionConfig | undefined): Uint8Array {
  const devicePath = image.devicePath ?? devicePathFor(image.path, partition);
  return new LeWriter()
    .u64(image.loadAddress ?? defaultAddress)
    .u64(BigInt(image.image?.length ?? 0))
    .u64(0n) // ImageLinkTimeAddress
    .u64(BigInt(devicePath.length))
    .bytes(devicePath)
    .finish();
}

/** EFI_LOAD_OPTION (UEFI 2.x §3.1.3): attributes, FilePathListLength, description, device path. */
function loadOption(description: string, devicePath: Uint8Array): Uint8Array {
  return new LeWriter()
    .u32(1) // LOAD_OPTION_ACTIVE
    .u16(devicePath.length)
    .bytes(utf16(`${description}\0`))
    .bytes(devicePath)
    .finish();
}

const DEFAULT_DISK_LAST_LBA = 0x3fffffn;

function defaultPartitions(lastLba: bigint): GptPartitionConfig[] {
  return [
    { type: GUID.ESP_TYPE, guid: GUID.ESP, firstLba: 2048n, lastLba: 206847n, name: 'EFI System Partition' },
    { type: GUID.LINUX_FS_TYPE, guid: GUID.ROOT, firstLba: 206848n, lastLba: lastLba - 34n, name: 'root' },
  ];
}

/** UEFI_GPT_DATA (PFP §10.2.7): the GPT header, the number of partitions, the non-empty entries. */
function gptEvent(disk: DiskConfig): Uint8Array {
  const lastLba = disk.lastLba ?? DEFAULT_DISK_LAST_LBA;
  const partitions = disk.partitions ?? defaultPartitions(lastLba);
  const ENTRIES = 128;
  const ENTRY_SIZE = 128;
  const entry = (p: GptPartitionConfig): Uint8Array => {
    const name = p.name ?? '';
    if (name.length > 36) bad(`GPT partition name ${JSON.stringify(name)} is longer than 36 characters`);
    const nameBytes = new Uint8Array(72);
    nameBytes.set(utf16(name));
    return new LeWriter().bytes(guid(p.type)).bytes(guid(p.guid)).u64(p.firstLba).u64(p.lastLba).u64(p.attributes ?? 0n).bytes(nameBytes).finish();
  };
  // The on-disk entry array (128 entries of 128 bytes), for its CRC.
  const array = new Uint8Array(ENTRIES * ENTRY_SIZE);
  partitions.forEach((p, i) => {
    const slot = p.slot ?? i;
    if (!Number.isInteger(slot) || slot < 0 || slot >= ENTRIES) bad(`GPT slot ${String(slot)} is outside 0..${ENTRIES - 1}`);
    array.set(entry(p), slot * ENTRY_SIZE);
  });
  const header = new LeWriter()
    .bytes(utf8('EFI PART'))
    .u32(0x00010000) // Revision 1.0
    .u32(92) // HeaderSize
    .u32(0) // HeaderCRC32, patched below
    .u32(0) // Reserved
    .u64(1n) // MyLBA
    .u64(lastLba) // AlternateLBA
    .u64(34n) // FirstUsableLBA
    .u64(lastLba - 33n) // LastUsableLBA
    .bytes(guid(disk.guid ?? GUID.DISK))
    .u64(2n) // PartitionEntryLBA
    .u32(ENTRIES)
    .u32(ENTRY_SIZE)
    .u32(crc32(array));
  header.patchU32(16, crc32(header.finish()));
  // Entries in the event: the used ones, in slot order.
  const used = [...partitions].sort((a, b) => (a.slot ?? partitions.indexOf(a)) - (b.slot ?? partitions.indexOf(b)));
  const w = new LeWriter().bytes(header.finish()).u64(BigInt(used.length));
  for (const p of used) w.bytes(entry(p));
  return w.finish();
}

const ZERO4 = new Uint8Array(4);

/**
 * Writes a TCG PC Client crypto-agile event log (PFP §10) for the config,
 * with the extends it implies and the resulting PCR values.
 *
 * Order, as OVMF/EDK2, shim and GRUB log a Secure Boot Linux boot: [StartupLocality];
 * PCR 0 S-CRTM version and firmware blobs; PCR 7 SecureBoot, PK, KEK, db,
 * dbx, separator; PCR 1 BootOrder, Boot0001; PCR 4 "Calling EFI Application
 * from Boot Option"; separators 0–6; PCR 5 GPT; PCR 7 db authority, PCR 4
 * shim; PCR 4 GRUB, PCR 7 Shim authority; PCR 8 grub_cmd…, PCR 9 kernel file,
 * PCR 4 kernel image, PCR 7 Shim authority, PCR 8 kernel_cmdline, PCR 9 initrd; PCR 5 "Exit Boot
 * Services Invocation" and "… Returned with Success".
 *
 * @throws EvidenceError `evidence.argument` for a config it cannot write (unknown bank, bad GUID, PCR outside 0..23, …).
 */
export function writeEventLog(config: Omit<MeasuredBootConfig, 'ima'> = {}): WrittenEventLog {
  const banks = checkBanks(config.banks ?? [TPM_ALG.SHA1, TPM_ALG.SHA256]);
  const startupLocality = config.startupLocality;
  if (startupLocality !== undefined && startupLocality !== 0 && startupLocality !== 3) bad(`startupLocality ${String(startupLocality)}: PFP allows 0 or 3`);
  const platform = config.platform ?? {};
  const sb: SecureBootConfig = typeof config.secureBoot === 'object' ? config.secureBoot : { enabled: config.secureBoot ?? true };
  const secureBootOn = sb.enabled ?? true;
  const chain = config.bootChain ?? {};
  const disk = config.disk === false ? undefined : (config.disk ?? {});
  const esp = disk === undefined ? undefined : (disk.partitions ?? defaultPartitions(disk.lastLba ?? DEFAULT_DISK_LAST_LBA))[0];

  const drafts: Draft[] = [];
  const measured = (pcr: number, type: number, data: Uint8Array, hashed: Uint8Array = data): void => {
    drafts.push({ pcr, type, data, digests: bankDigests(banks, `event ${EV_NAME.get(type) ?? type}`, hashed, undefined) });
  };
  const logged = (pcr: number, type: number, data: Uint8Array, digests: Map<TpmHashAlg, Uint8Array>): void => {
    drafts.push({ pcr, type, data, digests });
  };

  // PFP §10.4.5.3: StartupLocality, an EV_NO_ACTION in PCR 0 with zero digests.
  if (startupLocality !== undefined) {
    const zeros = new Map(banks.map((b) => [b, new Uint8Array(digestSize(b))] as const));
    logged(0, EV.NO_ACTION, concat(utf8('StartupLocality\0'), Uint8Array.of(startupLocality)), zeros);
  }

  // PCR 0: S-CRTM version (a CHAR16 string with its terminator, hashed as logged) and firmware volumes (hashed: the blob).
  const crtm = platform.crtmVersion ?? 'trustroot firmware 1.0';
  measured(0, EV.S_CRTM_VERSION, typeof crtm === 'string' ? utf16(`${crtm}\0`) : checkBytes(crtm, 'crtmVersion'));
  const blobs = platform.firmware ?? [
    { base: 0x820000n, content: utf8('trustroot test firmware volume: PEIFV') },
    { base: 0x900000n, content: utf8('trustroot test firmware volume: DXEFV') },
  ];
  for (const blob of blobs) {
    checkBytes(blob.content, 'firmware blob');
    const data = new LeWriter().u64(blob.base).u64(blob.length ?? BigInt(blob.content.length)).finish();
    measured(0, EV.EFI_PLATFORM_FIRMWARE_BLOB, data, blob.content);
  }

  // PCR 7: the Secure Boot policy; EV_EFI_VARIABLE_DRIVER_CONFIG hashes the whole UEFI_VARIABLE_DATA (PFP §10.4.4).
  const x509 = (cert: Uint8Array): SignatureListConfig[] => [{ type: 'x509', entries: [cert] }];
  const dbCert = testCertificate('db');
  const variables: [string, string, Uint8Array][] = [
    [GUID.GLOBAL_VARIABLE, 'SecureBoot', Uint8Array.of(secureBootOn ? 1 : 0)],
    [GUID.GLOBAL_VARIABLE, 'PK', signatureDatabase(sb.pk ?? x509(testCertificate('PK')), 'PK')],
    [GUID.GLOBAL_VARIABLE, 'KEK', signatureDatabase(sb.kek ?? x509(testCertificate('KEK')), 'KEK')],
    [GUID.IMAGE_SECURITY_DATABASE, 'db', signatureDatabase(sb.db ?? x509(dbCert), 'db')],
    // dbx: one revoked image hash (SHA-256 of a string), as shipped dbx lists are hashes.
    [GUID.IMAGE_SECURITY_DATABASE, 'dbx', signatureDatabase(sb.dbx ?? [{ type: 'sha256', entries: [hash(TPM_ALG.SHA256, utf8('trustroot test: a revoked image'))] }], 'dbx')],
  ];
  for (const [vendor, name, value] of variables) measured(7, EV.EFI_VARIABLE_DRIVER_CONFIG, variableData(vendor, name, value));
  // EDK2 closes PCR 7 right after the policy, before the boot variables (Tcg2Dxe "PCR[7] is already done").
  measured(7, EV.SEPARATOR, ZERO4);

  // PCR 1: boot variables; EV_EFI_VARIABLE_BOOT hashes only the variable's data (EDK2 MeasureVariable).
  const shim = chain.shim === false ? undefined : (chain.shim ?? { path: '\\EFI\\BOOT\\BOOTX64.EFI', image: utf8('trustroot test image: shimx64.efi') });
  const grub = chain.grub === false ? undefined : (chain.grub ?? { path: '\\EFI\\BOOT\\grubx64.efi', image: utf8('trustroot test image: grubx64.efi') });
  const kernel = chain.kernel ?? { path: '\\vmlinuz', image: utf8('trustroot test image: vmlinuz (EFI stub)') };
  const first = shim ?? grub ?? kernel;
  if (config.bootVariables ?? true) {
    const bootOrder = new LeWriter().u16(0x0001).finish();
    measured(1, EV.EFI_VARIABLE_BOOT, variableData(GUID.GLOBAL_VARIABLE, 'BootOrder', bootOrder), bootOrder);
    const option = loadOption('trustroot', first.devicePath ?? devicePathFor(first.path, esp));
    measured(1, EV.EFI_VARIABLE_BOOT, variableData(GUID.GLOBAL_VARIABLE, 'Boot0001', option), option);
  }

  // ReadyToBoot (PFP §10.4.4): the action in PCR 4, then separators in PCRs 0–6.
  measured(4, EV.EFI_ACTION, utf8('Calling EFI Application from Boot Option'));
  for (let pcr = 0; pcr <= 6; pcr++) measured(pcr, EV.SEPARATOR, ZERO4);

  // PCR 5: the boot disk's partition table, hashed as logged.
  if (disk !== undefined) measured(5, EV.EFI_GPT_EVENT, gptEvent(disk));

  const application = (image: BootImage, address: bigint, name: string): void => {
    if (typeof image.path !== 'string') bad(`${name}: path must be a string`);
    if (image.image !== undefined) checkBytes(image.image, `${name} image`);
    logged(4, EV.EFI_BOOT_SERVICES_APPLICATION, imageLoadEvent(image, address, esp), bankDigests(banks, name, image.image, image.digests));
  };
  const authority = (vendor: string, name: string, data: Uint8Array): void => {
    // EV_EFI_VARIABLE_AUTHORITY hashes the whole UEFI_VARIABLE_DATA (PFP §10.4.4; shim's tpm_measure_variable).
    measured(7, EV.EFI_VARIABLE_AUTHORITY, variableData(vendor, name, data));
  };

  // The chain. The firmware verifies the first stage against db; shim verifies what it loads with its built-in certificate.
  if (secureBootOn) {
    const a = sb.dbAuthority ?? { certificate: dbCert };
    authority(GUID.IMAGE_SECURITY_DATABASE, 'db', concat(guid(a.owner ?? GUID.TRUSTROOT_OWNER), checkBytes(a.certificate, 'dbAuthority certificate')));
  }
  application(first, 0x7e000000n, 'first boot stage');
  // shim logs the "Shim" authority after each image it verified with its built-in certificate (as in go-attestation's sb_cert_eventlog).
  const shimVerifies = shim !== undefined && secureBootOn;
  const shimAuthority = (): void => authority(GUID.SHIM_LOCK, 'Shim', checkBytes(sb.shimCertificate ?? testCertificate('shim'), 'shimCertificate'));
  if (grub !== undefined && first !== grub) {
    application(grub, 0x7d000000n, 'grub');
    if (shimVerifies) shimAuthority();
  }

  if (grub !== undefined) {
    // GRUB (grub-core/commands/tpm.c): PCR 8 strings, logged as "<kind>: <text>\0", hashed without prefix or NUL;
    // PCR 9 files, logged as their path with a NUL, hashed as the file.
    const grubString = (kind: string, text: string): void => measured(8, EV.IPL, utf8(`${kind}: ${text}\0`), utf8(text));
    const grubFile = (file: MeasuredFile, what: string): void => {
      if (file.content !== undefined) checkBytes(file.content, `${what} content`);
      logged(9, EV.IPL, utf8(`${file.path}\0`), bankDigests(banks, what, file.content, file.digests));
    };
    const kernelFile = chain.kernelFile ?? { path: '/boot/vmlinuz', ...(kernel.image !== undefined ? { content: kernel.image } : {}), ...(kernel.digests !== undefined ? { digests: kernel.digests } : {}) };
    const initrd = chain.initrd === false ? undefined : (chain.initrd ?? { path: '/boot/initrd.img', content: utf8('trustroot test initrd') });
    // GRUB measures the `linux` arguments (the kernel's path, then the command line) — not the BOOT_IMAGE= form the kernel sees.
    const cmdline = config.cmdline ?? `root=PARTUUID=${GUID.ROOT} ro quiet`;
    const linuxArgs = cmdline === '' ? kernelFile.path : `${kernelFile.path} ${cmdline}`;
    for (const c of chain.grubCommands ?? ['set root=(hd0,gpt2)', 'load_video', 'insmod gzio']) grubString('grub_cmd', c);
    grubString('grub_cmd', `linux ${linuxArgs}`);
    grubFile(kernelFile, 'kernel file');
    // GRUB loads the kernel through shim, which measures it into PCR 4 and logs the authority that verified it.
    application(kernel, 0x7c000000n, 'kernel');
    if (shimVerifies) shimAuthority();
    grubString('kernel_cmdline', linuxArgs);
    if (initrd !== undefined) {
      grubString('grub_cmd', `initrd ${initrd.path}`);
      grubFile(initrd, 'initrd');
    }
  } else if (kernel !== first) {
    application(kernel, 0x7c000000n, 'kernel');
    if (shimVerifies) shimAuthority();
  }

  // PCR 5: ExitBootServices (PFP §10.4.4).
  measured(5, EV.EFI_ACTION, utf8('Exit Boot Services Invocation'));
  measured(5, EV.EFI_ACTION, utf8('Exit Boot Services Returned with Success'));

  // Serialize: the Spec ID event as a TCG_PCR_EVENT (SHA-1 format header), then TCG_PCR_EVENT2 records.
  const log = new LeWriter();
  const vendorInfo = platform.vendorInfo ?? new Uint8Array(0);
  if (checkBytes(vendorInfo, 'vendorInfo').length > 255) bad('vendorInfo: at most 255 bytes');
  const specId = new LeWriter()
    .bytes(utf8('Spec ID Event03\0'))
    .u32(platform.platformClass ?? 0)
    .u8(0) // specVersionMinor
    .u8(2) // specVersionMajor
    .u8(platform.specErrata ?? 0)
    .u8(2) // uintnSize: UINT64
    .u32(banks.length);
  for (const b of banks) specId.u16(b).u16(digestSize(b));
  specId.u8(vendorInfo.length).bytes(vendorInfo);
  const specIdBytes = specId.finish();
  log.u32(0).u32(EV.NO_ACTION).bytes(new Uint8Array(20)).u32(specIdBytes.length).bytes(specIdBytes);
  const specIdLength = log.length;

  const events: WrittenEvent[] = [];
  const extendList: PcrExtend[] = [];
  for (const d of drafts) {
    checkPcr(d.pcr, `event ${EV_NAME.get(d.type) ?? d.type}`);
    const offset = log.length;
    log.u32(d.pcr).u32(d.type).u32(banks.length);
    for (const b of banks) log.u16(b).bytes(d.digests.get(b)!);
    log.u32(d.data.length).bytes(d.data);
    const extended = d.type !== EV.NO_ACTION;
    if (extended) for (const b of banks) extendList.push({ pcr: d.pcr, bank: b, digest: d.digests.get(b)! });
    events.push({
      index: events.length,
      pcr: d.pcr,
      type: d.type,
      typeName: EV_NAME.get(d.type) ?? `0x${d.type.toString(16)}`,
      digests: d.digests,
      data: d.data,
      offset,
      length: log.length - offset,
      extended,
    });
  }
  return {
    banks,
    startupLocality,
    eventLog: log.finish(),
    specIdLength,
    events,
    extends: extendList,
    pcrs: replayExtends(extendList, startupLocality !== undefined ? { startupLocality } : {}),
  };
}

// ---------------------------------------------------------------------------
// The IMA list

interface ImaDraft {
  readonly pcr: number;
  readonly template: ImaTemplate;
  readonly name: string;
  readonly violation: boolean;
  readonly hashAlg: TpmHashAlg;
  readonly digest: Uint8Array;
  readonly signature: Uint8Array;
  readonly buffer: Uint8Array;
}

function kernelHashName(alg: TpmHashAlg): string {
  const n = KERNEL_HASH_NAME.get(alg);
  if (n === undefined) bad(`hash 0x${alg.toString(16)} has no Linux name`);
  return n;
}

/** The name field: the kernel replaces spaces with '_' so ASCII lists stay splittable (ima_write_template_field_data). */
function storedName(name: string): string {
  return name.replace(/ /g, '_');
}

/** Template data as IMA hashes and stores it (ima_template_lib.c, ima_crypto.c ima_calc_field_array_hash). */
function templateData(d: ImaDraft): { readonly hashed: Uint8Array; readonly binaryFields: Uint8Array } {
  const name = utf8(d.name);
  if (d.template === 'ima') {
    // 'ima': d is the bare 20-byte digest; the hash covers n padded with zeros to IMA_EVENT_NAME_LEN_MAX + 1 bytes,
    // while the binary list shows n as u32 strlen ‖ the name without its NUL.
    const padded = new Uint8Array(IMA_EVENT_NAME_LEN_MAX + 1);
    padded.set(name);
    return {
      hashed: concat(d.digest, padded),
      binaryFields: new LeWriter().bytes(d.digest).u32(name.length).bytes(name).finish(),
    };
  }
  // d-ng: "<alg>:" ‖ NUL ‖ digest; n-ng: the name ‖ NUL; sig and buf: raw bytes (possibly empty).
  const fields: Uint8Array[] = [concat(utf8(`${kernelHashName(d.hashAlg)}:\0`), d.digest), concat(name, Uint8Array.of(0))];
  if (d.template === 'ima-sig') fields.push(d.signature);
  if (d.template === 'ima-buf') fields.push(d.buffer);
  const w = new LeWriter();
  for (const f of fields) w.u32(f.length).bytes(f);
  const hashed = w.finish();
  return { hashed, binaryFields: new LeWriter().u32(hashed.length).bytes(hashed).finish() };
}

function asciiFields(d: ImaDraft): string[] {
  const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
  if (d.template === 'ima') return [hex(d.digest), d.name];
  const fields = [`${kernelHashName(d.hashAlg)}:${hex(d.digest)}`, d.name];
  if (d.template === 'ima-sig') fields.push(hex(d.signature));
  if (d.template === 'ima-buf') fields.push(hex(d.buffer));
  return fields;
}

function checkTemplate(t: unknown, what: string): ImaTemplate {
  if (t !== 'ima-ng' && t !== 'ima-sig' && t !== 'ima-buf' && t !== 'ima') bad(`${what}: unknown IMA template ${JSON.stringify(t)}`);
  return t;
}

const DEFAULT_IMA_FILES = ['/usr/lib/systemd/systemd', '/usr/lib/x86_64-linux-gnu/libc.so.6', '/etc/ld.so.cache', '/usr/bin/bash', '/usr/local/bin/trustroot-agent'];

/**
 * Writes a Linux IMA measurement list for a TPM whose PCRs hold `pcrs`
 * (boot_aggregate is computed from them), in binary and ASCII form, with the
 * extends of PCR 10 (or the configured PCR) each bank receives.
 *
 * boot_aggregate (ima_crypto.c): per-bank kernels take ima_hash's bank if
 * allocated, else SHA-256, else SHA-1, and hash PCRs 0–7 (plus 8–9 for a
 * non-SHA-1 bank); older kernels and the `ima` template hash PCRs 0–7 of the
 * SHA-1 bank.
 *
 * @throws EvidenceError `evidence.argument` for a config it cannot write.
 */
export function writeImaList(config: ImaConfig, banksIn: readonly TpmHashAlg[], pcrs: PcrBankValues, options: { readonly startupLocality?: number } = {}): WrittenImaList {
  const banks = checkBanks(banksIn);
  const kernel = config.kernel ?? 'per-bank';
  if (kernel !== 'per-bank' && kernel !== 'sha1-padded') bad(`ima.kernel ${JSON.stringify(kernel)}: expected per-bank or sha1-padded`);
  const template = checkTemplate(config.template ?? 'ima-ng', 'ima.template');
  const imaHash = config.hashAlg ?? TPM_ALG.SHA256;
  if (!isHashSupported(imaHash)) bad(`ima.hashAlg 0x${Number(imaHash).toString(16)} is not a hash this runtime can compute`);
  kernelHashName(imaHash);
  const listBank = config.listBank ?? TPM_ALG.SHA1;
  if (!isHashSupported(listBank)) bad(`ima.listBank 0x${Number(listBank).toString(16)} is not a hash this runtime can compute`);
  if (listBank !== TPM_ALG.SHA1) {
    if (kernel !== 'per-bank') bad('ima.listBank: per-bank lists exist only on per-bank kernels');
    if (!banks.includes(listBank)) bad(`ima.listBank 0x${listBank.toString(16)} is not one of the banks`);
  }
  const defaultPcr = checkPcr(config.pcr ?? 10, 'ima.pcr');
  const pcrValue = (bank: TpmHashAlg, i: number): Uint8Array => pcrs.get(bank)?.get(i) ?? pcrStartValue(bank, i, options.startupLocality);

  const drafts: ImaDraft[] = [];
  let bootAggregate: WrittenImaList['bootAggregate'];
  if (config.bootAggregate ?? true) {
    let bank: TpmHashAlg;
    if (kernel === 'sha1-padded' || template === 'ima') {
      if (!banks.includes(TPM_ALG.SHA1)) bad(`boot_aggregate: ${template === 'ima' ? "the 'ima' template" : 'a sha1-padded kernel'} needs the SHA-1 bank`);
      bank = TPM_ALG.SHA1;
    } else {
      const b = banks.includes(imaHash) ? imaHash : banks.includes(TPM_ALG.SHA256) ? TPM_ALG.SHA256 : banks.includes(TPM_ALG.SHA1) ? TPM_ALG.SHA1 : undefined;
      if (b === undefined) bad('boot_aggregate: a per-bank kernel needs the ima_hash, SHA-256 or SHA-1 bank');
      bank = b;
    }
    const indices = bank === TPM_ALG.SHA1 ? [0, 1, 2, 3, 4, 5, 6, 7] : [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
    const digest = hash(bank, ...indices.map((i) => pcrValue(bank, i)));
    bootAggregate = { hashAlg: bank, digest, pcrs: indices };
    drafts.push({ pcr: defaultPcr, template, name: 'boot_aggregate', violation: false, hashAlg: bank, digest, signature: new Uint8Array(0), buffer: new Uint8Array(0) });
  }

  const entries: readonly ImaEntryConfig[] = config.entries ?? DEFAULT_IMA_FILES.map((path) => ({ path, content: utf8(`trustroot test file: ${path}`) }));
  entries.forEach((e, i) => {
    const what = `ima entry ${i}`;
    const t = checkTemplate(e.template ?? (e.kind === 'buffer' ? 'ima-buf' : template), `${what} template`);
    const pcr = checkPcr(e.pcr ?? defaultPcr, what);
    const empty = new Uint8Array(0);
    if (e.kind === 'violation') {
      if (typeof e.path !== 'string') bad(`${what}: path must be a string`);
      // The d field of a violation is zeros of the digest size: ima_hash on per-bank kernels, SHA-1 before.
      const alg = t === 'ima' || kernel === 'sha1-padded' ? TPM_ALG.SHA1 : imaHash;
      drafts.push({ pcr, template: t, name: storedName(e.path), violation: true, hashAlg: alg, digest: new Uint8Array(digestSize(alg)), signature: empty, buffer: empty });
      return;
    }
    const alg: TpmHashAlg = t === 'ima' ? TPM_ALG.SHA1 : (e.hashAlg ?? imaHash);
    if (!isHashSupported(alg)) bad(`${what}: hash 0x${Number(alg).toString(16)} is not one this runtime can compute`);
    if (e.kind === 'buffer') {
      if (typeof e.name !== 'string') bad(`${what}: name must be a string`);
      const buffer = checkBytes(e.buffer, `${what} buffer`);
      drafts.push({ pcr, template: t, name: storedName(e.name), violation: false, hashAlg: alg, digest: hash(alg, buffer), signature: empty, buffer });
      return;
    }
    if (typeof e.path !== 'string') bad(`${what}: path must be a string`);
    let digest: Uint8Array;
    if (e.digest !== undefined) {
      digest = checkBytes(e.digest, `${what} digest`);
      if (digest.length !== digestSize(alg)) bad(`${what}: a ${digest.length}-byte digest for hash 0x${alg.toString(16)}`);
    } else if (e.content !== undefined) {
      digest = hash(alg, checkBytes(e.content, `${what} content`));
    } else {
      bad(`${what}: give content or digest`);
    }
    const signature = e.signature !== undefined ? checkBytes(e.signature, `${what} signature`) : empty;
    drafts.push({ pcr, template: t, name: storedName(e.path), violation: false, hashAlg: alg, digest, signature, buffer: empty });
  });

  const binary = new LeWriter();
  let ascii = '';
  const written: WrittenImaEntry[] = [];
  const extendList: PcrExtend[] = [];
  for (const d of drafts) {
    if (d.template === 'ima' && utf8(d.name).length > IMA_EVENT_NAME_LEN_MAX) bad(`'ima' template names are at most ${IMA_EVENT_NAME_LEN_MAX} bytes: ${d.name.slice(0, 40)}…`);
    const { hashed, binaryFields } = templateData(d);
    const sha1Hash = d.violation ? new Uint8Array(20) : hash(TPM_ALG.SHA1, hashed);
    const perBank = new Map<TpmHashAlg, Uint8Array>();
    for (const bank of banks) {
      const size = digestSize(bank);
      let v: Uint8Array;
      if (kernel === 'per-bank') {
        // ima_add_template_entry: H_bank(template data); violations extend 0xFF of the bank's size (ima_init_digests).
        v = d.violation ? new Uint8Array(size).fill(0xff) : hash(bank, hashed);
      } else {
        // Before 5.8, tpm_pcr_extend copied the 20-byte SHA-1 into zeroed digests of every bank.
        v = new Uint8Array(size);
        v.set(d.violation ? new Uint8Array(20).fill(0xff) : sha1Hash);
      }
      perBank.set(bank, v);
      extendList.push({ pcr: d.pcr, bank, digest: v });
    }
    const shown = d.violation ? new Uint8Array(digestSize(listBank)) : listBank === TPM_ALG.SHA1 ? sha1Hash : hash(listBank, hashed);
    const offset = binary.length;
    const templateName = utf8(d.template);
    binary.u32(d.pcr).bytes(shown).u32(templateName.length).bytes(templateName).bytes(binaryFields);
    // ima_ascii_measurements_show: "%2d " pcr, template hash, name, then " field" each (an empty field leaves its space).
    const line = `${String(d.pcr).padStart(2, ' ')} ${Buffer.from(shown).toString('hex')} ${d.template}${asciiFields(d).map((f) => ` ${f}`).join('')}`;
    ascii += `${line}\n`;
    written.push({
      index: written.length,
      pcr: d.pcr,
      template: d.template,
      name: d.name,
      violation: d.violation,
      fileDigest: { hashAlg: d.hashAlg, digest: d.digest },
      templateData: hashed,
      templateHash: shown,
      extends: perBank,
      line,
      offset,
      length: binary.length - offset,
    });
  }
  return { kernel, listBank, binary: binary.finish(), ascii, entries: written, bootAggregate, extends: extendList };
}

/**
 * Writes a measured boot: the event log, then (unless `ima: false`) an IMA
 * list whose boot_aggregate covers the PCRs the log implies, with every
 * extend in order and the PCR values they lead to.
 *
 * @throws EvidenceError `evidence.argument` for a config it cannot write.
 */
export function writeMeasuredBoot(config: MeasuredBootConfig = {}): MeasuredBoot {
  const log = writeEventLog(config);
  const startOptions = log.startupLocality !== undefined ? { startupLocality: log.startupLocality } : {};
  const ima = config.ima === false ? undefined : writeImaList(config.ima ?? {}, log.banks, log.pcrs, startOptions);
  const extendList = [...log.extends, ...(ima?.extends ?? [])];
  return { ...log, ima, extends: extendList, pcrs: replayExtends(extendList, startOptions) };
}
