/**
 * Event bodies of a TCG PC Client event log, decoded for policy, and what a
 * verifier may conclude from them.
 *
 * A quote covers PCR values; a replay (eventlog.ts) shows that the log's
 * digests produce them. Neither covers an event's type or its data. So:
 *  - where the PFP defines an event's digest as the hash of its data
 *    (separators, actions, UEFI variables, the GPT, grub's command strings),
 *    the data is checked against every digest the event carries, and the
 *    event's `binding` says whether it held (`verified`) or not (`mismatch`:
 *    the data is not what was measured — flagged by checkEvents);
 *  - where the digest is of something outside the log (an EFI application's
 *    Authenticode hash, a firmware volume, a file grub read), the data is
 *    only a label (`unbound`): policy must decide on the digest itself;
 *  - the event type is a claim even when the data verifies: a verifier
 *    allows types per PCR (checkEvents), looks for separators under another
 *    type, and reads Secure Boot state from any event that carries the
 *    variable, not only from events typed as variables (the go-attestation
 *    event-type disclosure, docs/event-log-disclosure.md there).
 *
 * Which summaries rest on verified data is stated with each: SecureBootState
 * has `digestVerified`, each kernel command line has `digestVerified`, and
 * bootChain lists every PCR 4 measurement whose content the log cannot show,
 * whatever its type, so that allow-lists of digests cannot be bypassed by
 * relabelling an application.
 *
 * Decoders are bounded (every length is checked against what is left) and
 * throw only EventLogError (`evidence.eventlog`, reason `body.*`) with the
 * byte offset in the log. Nothing here does I/O or reads the clock.
 */
import { hash, isHashSupported } from '../tpm/crypto/hash.js';
import type { TPMS_PCR_SELECTION } from '../tpm/types/index.js';
import {
  bankName,
  compareWithQuote,
  EV,
  EventLogError,
  eventDigest,
  eventTypeName,
  LeReader,
  parseEventLog,
  parseSpecIdEvent,
  replay,
  startupLocalityOf,
  type EventLog,
  type PcrBanks,
  type SpecIdEvent,
  type TcgEvent,
} from './eventlog.js';
import { combine, fail, pass, verdict, warn, type Check, type Verdict } from './verdict.js';

// ---------------------------------------------------------------------------
// GUIDs and text

/** GUIDs the decoders and summaries recognise (UEFI 2.9 §3.3, §32.4.1; shim's lib/guid.c). */
export const EFI_GUID = {
  /** EFI_GLOBAL_VARIABLE: SecureBoot, PK, KEK, Boot####, BootOrder. */
  GLOBAL_VARIABLE: '8be4df61-93ca-11d2-aa0d-00e098032b8c',
  /** EFI_IMAGE_SECURITY_DATABASE_GUID: db, dbx, dbt, dbr. */
  IMAGE_SECURITY_DATABASE: 'd719b2cb-3d3a-4596-a3bc-dad00e67656f',
  /** EFI_CERT_X509_GUID: a signature list of DER certificates. */
  CERT_X509: 'a5c059a1-94e4-4aa7-87b5-ab155c2bf072',
  /** EFI_CERT_SHA256_GUID: a signature list of SHA-256 image hashes. */
  CERT_SHA256: 'c1c41626-504c-4092-aca9-41f936934328',
  /** SHIM_LOCK_GUID: shim's MokList, SbatLevel, MokListTrusted. */
  SHIM_LOCK: '605dab50-e046-4300-abb6-3dd810dd8b23',
} as const;

const HEXBYTE = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** An EFI_GUID (UEFI 2.9 Appendix A: Data1 u32, Data2 u16, Data3 u16 little-endian, then 8 bytes) as lower-case text. */
export function formatGuid(b: Uint8Array): string {
  if (b.length !== 16) throw new EventLogError('body.size', `a GUID has 16 bytes, not ${b.length}`, 0);
  const h = (i: number): string => HEXBYTE[b[i]!]!;
  return `${h(3)}${h(2)}${h(1)}${h(0)}-${h(5)}${h(4)}-${h(7)}${h(6)}-${h(8)}${h(9)}-${h(10)}${h(11)}${h(12)}${h(13)}${h(14)}${h(15)}`;
}

const utf16 = new TextDecoder('utf-16le');
const utf8 = new TextDecoder('utf-8');

function stripNuls(s: string): string {
  let end = s.length;
  while (end > 0 && s.charCodeAt(end - 1) === 0) end--;
  return s.slice(0, end);
}

/** Printable ASCII (space to tilde, plus tab/CR/LF), as EV_EFI_ACTION strings are (PFP §10.4.4). */
function isPrintableAscii(b: Uint8Array): boolean {
  for (const c of b) if (!((c >= 0x20 && c <= 0x7e) || c === 0x09 || c === 0x0a || c === 0x0d)) return false;
  return true;
}

/** UTF-16LE text from the low bytes of ASCII: the second byte of the first character is zero. */
function looksUtf16(b: Uint8Array): boolean {
  return b.length >= 2 && b[0] !== 0 && b[1] === 0;
}

/** Text up to its first NUL (firmware pads version strings with binary after it), as UTF-16LE or UTF-8. */
function bestEffortText(b: Uint8Array): { text: string; encoding: 'ascii' | 'utf-16le' } {
  const cut = (s: string): string => {
    const nul = s.indexOf('\0');
    return nul < 0 ? s : s.slice(0, nul);
  };
  if (looksUtf16(b)) return { text: cut(utf16.decode(b.subarray(0, b.length & ~1))), encoding: 'utf-16le' };
  return { text: cut(utf8.decode(b)), encoding: 'ascii' };
}

// ---------------------------------------------------------------------------
// Body structures

/** UEFI_VARIABLE_DATA (PFP r1.05 §10.4.2 / UEFI variable measurement). */
export interface UefiVariable {
  readonly guid: string;
  readonly name: string;
  readonly data: Uint8Array;
  /**
   * Bytes after VariableData: 0 for a well-formed body. Old shim releases
   * wrote some (go-attestation issue 157); they are kept out of `data`.
   */
  readonly trailing: number;
}

/** One EFI_SIGNATURE_DATA: the owner's GUID and the certificate or hash. */
export interface EfiSignatureData {
  readonly owner: string | undefined;
  readonly data: Uint8Array;
}

/** One EFI_SIGNATURE_LIST (UEFI 2.9 §32.4.1). */
export interface EfiSignatureList {
  /** EFI_GUID.CERT_X509, EFI_GUID.CERT_SHA256, … */
  readonly signatureType: string;
  readonly header: Uint8Array;
  readonly signatures: readonly EfiSignatureData[];
}

/** EFI_PARTITION_TABLE_HEADER fields a policy may want (UEFI 2.9 §5.3.2). */
export interface GptHeader {
  readonly revision: number;
  readonly diskGuid: string;
  readonly numberOfPartitionEntries: number;
  readonly sizeOfPartitionEntry: number;
}

/** EFI_PARTITION_ENTRY (UEFI 2.9 §5.3.3). */
export interface GptPartition {
  readonly typeGuid: string;
  readonly uniqueGuid: string;
  readonly startingLba: bigint;
  readonly endingLba: bigint;
  readonly attributes: bigint;
  readonly name: string;
}

export interface HandoffTable {
  readonly guid: string;
  readonly address: bigint;
}

/** grub's EV_IPL strings in PCR 8: "grub_cmd: …", "kernel_cmdline: …", "module_cmdline: …". */
export interface GrubString {
  readonly kind: 'grub_cmd' | 'kernel_cmdline' | 'module_cmdline';
  /** The text after the prefix, without its NUL: what grub hashed. */
  readonly text: string;
}

export type EventBody =
  | { readonly kind: 'spec-id'; readonly specId: SpecIdEvent }
  | { readonly kind: 'startup-locality'; readonly locality: number }
  /** Another EV_NO_ACTION; `signature` is its leading NUL-terminated ASCII tag when it has one ("SP800-155 Event"). */
  | { readonly kind: 'no-action'; readonly signature: string | undefined }
  /** EV_SEPARATOR: 0 (`success`), 0xFFFFFFFF (`error`, PFP §10.4.4), or anything else (`other`, e.g. Windows' "WBCL" in PCRs 12–14). */
  | { readonly kind: 'separator'; readonly value: 'success' | 'error' | 'other' }
  /** EV_ACTION / EV_EFI_ACTION: an ASCII string. */
  | { readonly kind: 'action'; readonly text: string }
  /** EV_EFI_VARIABLE_*: PK/KEK/db/dbx/dbt/dbr carry `signatureLists`; an authority carries the signature used. */
  | {
      readonly kind: 'uefi-variable';
      readonly variable: UefiVariable;
      readonly signatureLists: readonly EfiSignatureList[] | undefined;
      readonly authority: EfiSignatureData | undefined;
    }
  /** UEFI_IMAGE_LOAD_EVENT (EV_EFI_BOOT_SERVICES_APPLICATION/DRIVER, RUNTIME_SERVICES_DRIVER). */
  | {
      readonly kind: 'image-load';
      readonly imageBase: bigint;
      readonly imageLength: bigint;
      readonly linkTimeAddress: bigint;
      readonly devicePath: Uint8Array;
      /** The device path's file-path nodes joined, e.g. `\EFI\ubuntu\shimx64.efi` (a hint). */
      readonly filePath: string | undefined;
      /** Bytes after the device path: 0 for a well-formed body. */
      readonly trailing: number;
    }
  /** EV_IPL: text (grub, shim, systemd-boot), with grub's prefix split off. */
  | { readonly kind: 'ipl'; readonly text: string; readonly encoding: 'ascii' | 'utf-16le'; readonly grub: GrubString | undefined }
  | { readonly kind: 'gpt'; readonly header: GptHeader; readonly partitions: readonly GptPartition[] }
  /** UEFI_PLATFORM_FIRMWARE_BLOB(2); `description` only for BLOB2. */
  | { readonly kind: 'firmware-blob'; readonly description: string | undefined; readonly base: bigint; readonly length: bigint }
  /** EV_S_CRTM_VERSION: a UTF-16 string, or a GUID. */
  | { readonly kind: 'crtm-version'; readonly text: string | undefined; readonly guid: string | undefined }
  /** EV_POST_CODE: a label ("ACPI DATA", "POST CODE") or a UEFI_PLATFORM_FIRMWARE_BLOB. */
  | { readonly kind: 'post-code'; readonly text: string | undefined; readonly base: bigint | undefined; readonly length: bigint | undefined }
  /** UEFI_HANDOFF_TABLE_POINTERS(2). */
  | { readonly kind: 'handoff-tables'; readonly description: string | undefined; readonly tables: readonly HandoffTable[] }
  /** A type without a decoder here; the body is event.data. */
  | { readonly kind: 'raw' }
  /** A body that does not decode as its type says (decodeEvents only; decodeEvent throws instead). */
  | { readonly kind: 'malformed'; readonly error: EventLogError };

/**
 * Whether the event's data is what its digests measured:
 *  - verified: every digest (in every bank this runtime can hash) equals the
 *    hash of the data under `rule`;
 *  - mismatch: the type's digests are of its data, and they are not — the
 *    data has been changed, or the type relabelled;
 *  - unbound: the digest is of something outside the log; the data is a label;
 *  - not-extended: EV_NO_ACTION;
 *  - not-checkable: no digest in a bank this runtime can hash.
 */
export type DataBinding =
  | { readonly status: 'verified'; readonly rule: BindingRule }
  | { readonly status: 'mismatch' }
  | { readonly status: 'unbound' }
  | { readonly status: 'not-extended' }
  | { readonly status: 'not-checkable' };

/**
 * How the data was bound:
 *  - data: H(data) (PFP for separators, actions, variables, the GPT, S-CRTM version);
 *  - variable-data: H(VariableData) only — EDK2 measures Boot#### variables
 *    so, and old firmware its Secure Boot variables (the name and GUID are then unbound);
 *  - shim-trailing-byte: H(data minus its last byte), old shim's authority events (go-attestation issue 157);
 *  - grub-text: H(the string after grub's "grub_cmd: " / "kernel_cmdline: " prefix, without NUL);
 *  - utf16-with-nul: H(data ‖ 0x00): systemd-boot logged its UTF-16 command line one byte short.
 */
export type BindingRule = 'data' | 'variable-data' | 'shim-trailing-byte' | 'grub-text' | 'utf16-with-nul';

export interface DecodedEvent {
  readonly event: TcgEvent;
  /** `EV_EFI_ACTION`, …: the claimed type. */
  readonly type: string;
  readonly body: EventBody;
  readonly binding: DataBinding;
}

// ---------------------------------------------------------------------------
// Decoders

/**
 * EFI_SIGNATURE_LIST × n (UEFI 2.9 §32.4.1), bounded: each list's size must
 * hold its 28-byte header, its SignatureHeaderSize and a whole number of
 * SignatureSize entries (each ≥ 16 bytes, the owner GUID).
 *
 * @throws EventLogError (`body.*`).
 */
export function parseSignatureLists(data: Uint8Array, base = 0): EfiSignatureList[] {
  const r = new LeReader(data, base);
  const out: EfiSignatureList[] = [];
  while (r.remaining > 0) {
    const at = r.offset;
    const signatureType = formatGuid(r.bytes(16, 'EFI_SIGNATURE_LIST.SignatureType'));
    const listSize = r.u32('SignatureListSize');
    const headerSize = r.u32('SignatureHeaderSize');
    const sigSize = r.u32('SignatureSize');
    if (listSize < 28 || listSize - 28 > r.remaining) {
      throw new EventLogError('body.size', `SignatureListSize ${listSize} does not fit the ${r.remaining + 28} bytes left`, at);
    }
    const body = listSize - 28;
    if (headerSize > body) throw new EventLogError('body.size', `SignatureHeaderSize ${headerSize} exceeds the list (${body} bytes)`, at);
    const entries = body - headerSize;
    if (sigSize < 16 || entries % sigSize !== 0) {
      throw new EventLogError('body.size', `SignatureSize ${sigSize} does not divide the ${entries} bytes of signatures`, at);
    }
    const header = r.bytes(headerSize, 'SignatureHeader').slice();
    const signatures: EfiSignatureData[] = [];
    for (let n = entries / sigSize; n > 0; n--) {
      const owner = formatGuid(r.bytes(16, 'SignatureOwner'));
      signatures.push({ owner, data: r.bytes(sigSize - 16, 'SignatureData') });
    }
    out.push({ signatureType, header, signatures });
  }
  return out;
}

/** UEFI_VARIABLE_DATA: GUID, u64 name length (characters), u64 data length, UTF-16LE name, data. */
function parseVariable(data: Uint8Array, base: number): UefiVariable {
  const r = new LeReader(data, base);
  const guid = formatGuid(r.bytes(16, 'UEFI_VARIABLE_DATA.VariableName'));
  const nameAt = r.offset;
  const nameChars = r.u64('UnicodeNameLength');
  const dataAt = r.offset;
  const dataLength = r.u64('VariableDataLength');
  if (nameChars * 2n > BigInt(r.remaining)) throw new EventLogError('body.size', `UnicodeNameLength ${nameChars} exceeds the ${r.remaining} bytes left`, nameAt);
  const name = stripNuls(utf16.decode(r.bytes(Number(nameChars) * 2, 'UnicodeName')));
  if (dataLength > BigInt(r.remaining)) throw new EventLogError('body.size', `VariableDataLength ${dataLength} exceeds the ${r.remaining} bytes left`, dataAt);
  const value = r.bytes(Number(dataLength), 'VariableData');
  return { guid, name, data: value, trailing: r.remaining };
}

const SIGNATURE_DATABASES: ReadonlyMap<string, string> = new Map([
  ['PK', EFI_GUID.GLOBAL_VARIABLE],
  ['KEK', EFI_GUID.GLOBAL_VARIABLE],
  ['db', EFI_GUID.IMAGE_SECURITY_DATABASE],
  ['dbx', EFI_GUID.IMAGE_SECURITY_DATABASE],
  ['dbt', EFI_GUID.IMAGE_SECURITY_DATABASE],
  ['dbr', EFI_GUID.IMAGE_SECURITY_DATABASE],
]);

function isDer(b: Uint8Array, at: number): boolean {
  return b.length >= at + 2 && b[at] === 0x30 && (b[at + 1] === 0x82 || b[at + 1] === 0x81);
}

/**
 * The signature an EV_EFI_VARIABLE_AUTHORITY names: an EFI_SIGNATURE_DATA
 * (owner GUID + certificate) per PFP §3.3.4.8, or shim's bare certificate.
 * A hint for policy, not verified beyond the event's binding.
 */
function authorityOf(v: UefiVariable): EfiSignatureData | undefined {
  if (isDer(v.data, 16)) return { owner: formatGuid(v.data.subarray(0, 16)), data: v.data.subarray(16) };
  if (isDer(v.data, 0)) return { owner: undefined, data: v.data };
  return undefined;
}

function parseImageLoad(data: Uint8Array, base: number): EventBody {
  const r = new LeReader(data, base);
  const imageBase = r.u64('ImageLocationInMemory');
  const imageLength = r.u64('ImageLengthInMemory');
  const linkTimeAddress = r.u64('ImageLinkTimeAddress');
  const pathLength = r.length64('LengthOfDevicePath');
  const devicePath = r.bytes(pathLength, 'DevicePath');
  // shim writes 8 or 9 bytes after the device path (go-eventlog debian-10, rhel8, cos logs): kept as `trailing`.
  return { kind: 'image-load', imageBase, imageLength, linkTimeAddress, devicePath, filePath: devicePathFile(devicePath), trailing: r.remaining };
}

/** A device path's node (UEFI 2.9 §10.2: type u8, subtype u8, length u16 including the header). */
export interface DevicePathNode {
  readonly type: number;
  readonly subType: number;
  readonly data: Uint8Array;
}

/**
 * The nodes of an EFI_DEVICE_PATH_PROTOCOL, up to its end node.
 * @throws EventLogError (`body.size`) for a node length below 4 or past the end.
 */
export function parseDevicePath(path: Uint8Array, base = 0): DevicePathNode[] {
  const r = new LeReader(path, base);
  const nodes: DevicePathNode[] = [];
  while (r.remaining > 0) {
    const at = r.offset;
    const type = r.u8('Type');
    const subType = r.u8('SubType');
    const length = r.u16('Length');
    if (length < 4 || length - 4 > r.remaining) throw new EventLogError('body.size', `a device path node of length ${length} (${r.remaining + 4} bytes left)`, at);
    const data = r.bytes(length - 4, 'node data');
    if (type === 0x7f && subType === 0xff) break; // End of Entire Device Path
    nodes.push({ type, subType, data });
  }
  return nodes;
}

/** The Media File Path nodes (type 4, subtype 4: a NUL-terminated UTF-16 path) joined; undefined without any. */
function devicePathFile(path: Uint8Array): string | undefined {
  let nodes: DevicePathNode[];
  try {
    nodes = parseDevicePath(path);
  } catch {
    return undefined; // the path is only a hint for people; a bad one leaves it out
  }
  const parts = nodes.filter((n) => n.type === 0x04 && n.subType === 0x04).map((n) => stripNuls(utf16.decode(n.data.subarray(0, n.data.length & ~1))));
  if (parts.length === 0) return undefined;
  return parts.join('\\').replace(/\\{2,}/g, '\\');
}

const GPT_SIGNATURE = 0x5452415020494645n; // "EFI PART"

function parseGpt(data: Uint8Array, base: number): EventBody {
  const r = new LeReader(data, base);
  const sigAt = r.offset;
  if (r.u64('Signature') !== GPT_SIGNATURE) throw new EventLogError('body.value', 'the GPT header signature is not "EFI PART"', sigAt);
  const revision = r.u32('Revision');
  r.bytes(4 + 4 + 4 + 8 + 8 + 8 + 8, 'HeaderSize..LastUsableLBA');
  const diskGuid = formatGuid(r.bytes(16, 'DiskGUID'));
  r.u64('PartitionEntryLBA');
  const numberOfPartitionEntries = r.u32('NumberOfPartitionEntries');
  const sizeAt = r.offset;
  const sizeOfPartitionEntry = r.u32('SizeOfPartitionEntry');
  r.u32('PartitionEntryArrayCRC32');
  // UEFI 2.9 §5.3.2: SizeOfPartitionEntry is 128 × 2^n; the entries hold 128 bytes we read.
  if (sizeOfPartitionEntry < 128 || (sizeOfPartitionEntry & (sizeOfPartitionEntry - 1)) !== 0) {
    throw new EventLogError('body.value', `SizeOfPartitionEntry ${sizeOfPartitionEntry} is not 128 × 2^n`, sizeAt);
  }
  const count = r.length64('NumberOfPartitions', sizeOfPartitionEntry);
  const partitions: GptPartition[] = [];
  for (let i = 0; i < count; i++) {
    const e = new LeReader(r.bytes(sizeOfPartitionEntry, 'EFI_PARTITION_ENTRY'), r.offset - sizeOfPartitionEntry);
    partitions.push({
      typeGuid: formatGuid(e.bytes(16, 'PartitionTypeGUID')),
      uniqueGuid: formatGuid(e.bytes(16, 'UniquePartitionGUID')),
      startingLba: e.u64('StartingLBA'),
      endingLba: e.u64('EndingLBA'),
      attributes: e.u64('Attributes'),
      name: stripNuls(utf16.decode(e.bytes(72, 'PartitionName'))),
    });
  }
  if (r.remaining !== 0) throw new EventLogError('body.size', `${r.remaining} bytes after ${count} partition entries`, r.offset);
  return { kind: 'gpt', header: { revision, diskGuid, numberOfPartitionEntries, sizeOfPartitionEntry }, partitions };
}

function readDescription(r: LeReader): string {
  const n = r.u8('DescriptionSize');
  return stripNuls(utf8.decode(r.bytes(n, 'Description')));
}

function parseBlob(data: Uint8Array, base: number, withDescription: boolean): EventBody {
  const r = new LeReader(data, base);
  const description = withDescription ? readDescription(r) : undefined;
  const blobBase = r.u64('BlobBase');
  const length = r.u64('BlobLength');
  if (r.remaining !== 0) throw new EventLogError('body.size', `${r.remaining} bytes after UEFI_PLATFORM_FIRMWARE_BLOB`, r.offset);
  return { kind: 'firmware-blob', description, base: blobBase, length };
}

function parseHandoff(data: Uint8Array, base: number, withDescription: boolean): EventBody {
  const r = new LeReader(data, base);
  const description = withDescription ? readDescription(r) : undefined;
  const count = r.length64('NumberOfTables', 24);
  const tables: HandoffTable[] = [];
  for (let i = 0; i < count; i++) tables.push({ guid: formatGuid(r.bytes(16, 'VendorGuid')), address: r.u64('VendorTable') });
  if (r.remaining !== 0) throw new EventLogError('body.size', `${r.remaining} bytes after ${count} handoff tables`, r.offset);
  return { kind: 'handoff-tables', description, tables };
}

const GRUB_PREFIXES = ['grub_cmd: ', 'kernel_cmdline: ', 'module_cmdline: '] as const;

function parseIpl(data: Uint8Array): EventBody {
  const { text, encoding } = bestEffortText(data);
  let grub: GrubString | undefined;
  if (encoding === 'ascii') {
    for (const p of GRUB_PREFIXES) {
      if (text.startsWith(p)) grub = { kind: p.slice(0, -2) as GrubString['kind'], text: text.slice(p.length) };
    }
  }
  return { kind: 'ipl', text, encoding, grub };
}

function parseAction(data: Uint8Array, base: number): EventBody {
  if (!isPrintableAscii(data)) throw new EventLogError('body.value', 'an action string with non-ASCII or control bytes', base);
  return { kind: 'action', text: utf8.decode(data) };
}

function parseSeparator(data: Uint8Array): EventBody {
  if (data.length === 4) {
    const w = new DataView(data.buffer, data.byteOffset, 4).getUint32(0, true);
    if (w === 0) return { kind: 'separator', value: 'success' };
    if (w === 0xffffffff) return { kind: 'separator', value: 'error' };
  }
  return { kind: 'separator', value: 'other' };
}

function parseCrtmVersion(data: Uint8Array): EventBody {
  // PFP §3.3.4.2: a NUL-terminated UCS-2 version string, or a GUID; some firmware writes ASCII.
  const t = bestEffortText(data);
  if (t.text.length > 0 && isPrintableAscii(new TextEncoder().encode(t.text))) return { kind: 'crtm-version', text: t.text, guid: undefined };
  if (data.length === 16) return { kind: 'crtm-version', text: undefined, guid: formatGuid(data) };
  return { kind: 'crtm-version', text: t.text.length > 0 ? t.text : undefined, guid: undefined };
}

function parsePostCode(data: Uint8Array): EventBody {
  const text = bestEffortText(data).text;
  if (text.length > 0 && isPrintableAscii(new TextEncoder().encode(text))) return { kind: 'post-code', text, base: undefined, length: undefined };
  if (data.length === 16) {
    const v = new DataView(data.buffer, data.byteOffset, 16);
    return { kind: 'post-code', text: undefined, base: v.getBigUint64(0, true), length: v.getBigUint64(8, true) };
  }
  return { kind: 'post-code', text: undefined, base: undefined, length: undefined };
}

function parseNoAction(e: TcgEvent): EventBody {
  if (e.index === 0 && e.data.length >= 16 && utf8.decode(e.data.subarray(0, 15)) === 'Spec ID Event03') {
    return { kind: 'spec-id', specId: parseSpecIdEvent(e.data, e.dataOffset) };
  }
  const locality = startupLocalityOf(e);
  if (locality !== undefined) return { kind: 'startup-locality', locality };
  const head = e.data.subarray(0, Math.min(16, e.data.length));
  const nul = head.indexOf(0);
  const tag = nul > 0 ? head.subarray(0, nul) : undefined;
  return { kind: 'no-action', signature: tag !== undefined && isPrintableAscii(tag) ? utf8.decode(tag) : undefined };
}

function parseVariableBody(e: TcgEvent): EventBody {
  const variable = parseVariable(e.data, e.dataOffset);
  let signatureLists: EfiSignatureList[] | undefined;
  let authority: EfiSignatureData | undefined;
  if (e.eventType === EV.EFI_VARIABLE_AUTHORITY) {
    authority = authorityOf(variable);
  } else if (SIGNATURE_DATABASES.get(variable.name) === variable.guid) {
    signatureLists = parseSignatureLists(variable.data, e.dataOffset + (e.data.length - variable.trailing - variable.data.length));
  }
  return { kind: 'uefi-variable', variable, signatureLists, authority };
}

/**
 * Decodes an event's body by its claimed type.
 * @throws EventLogError (`body.truncated`, `body.size`, `body.value`) with the offset in the log.
 */
export function decodeBody(e: TcgEvent): EventBody {
  switch (e.eventType) {
    case EV.NO_ACTION:
      return parseNoAction(e);
    case EV.SEPARATOR:
      return parseSeparator(e.data);
    case EV.ACTION:
    case EV.EFI_ACTION:
      return parseAction(e.data, e.dataOffset);
    case EV.EFI_VARIABLE_DRIVER_CONFIG:
    case EV.EFI_VARIABLE_BOOT:
    case EV.EFI_VARIABLE_BOOT2:
    case EV.EFI_VARIABLE_AUTHORITY:
      return parseVariableBody(e);
    case EV.EFI_BOOT_SERVICES_APPLICATION:
    case EV.EFI_BOOT_SERVICES_DRIVER:
    case EV.EFI_RUNTIME_SERVICES_DRIVER:
      return parseImageLoad(e.data, e.dataOffset);
    case EV.IPL:
      return parseIpl(e.data);
    case EV.EFI_GPT_EVENT:
      return parseGpt(e.data, e.dataOffset);
    case EV.EFI_PLATFORM_FIRMWARE_BLOB:
      return parseBlob(e.data, e.dataOffset, false);
    case EV.EFI_PLATFORM_FIRMWARE_BLOB2:
      return parseBlob(e.data, e.dataOffset, true);
    case EV.S_CRTM_VERSION:
      return parseCrtmVersion(e.data);
    case EV.POST_CODE:
      return parsePostCode(e.data);
    case EV.EFI_HANDOFF_TABLES:
      return parseHandoff(e.data, e.dataOffset, false);
    case EV.EFI_HANDOFF_TABLES2:
      return parseHandoff(e.data, e.dataOffset, true);
    default:
      return { kind: 'raw' };
  }
}

// ---------------------------------------------------------------------------
// Binding of data to digests

/** Types whose digest the PFP defines as the hash of the event data (r1.05 §10.4.1, §3.3.4). */
const DATA_BOUND: ReadonlySet<number> = new Set([
  EV.SEPARATOR,
  EV.ACTION,
  EV.EFI_ACTION,
  EV.S_CRTM_VERSION,
  EV.EFI_GPT_EVENT,
  EV.COMPACT_HASH,
  EV.EVENT_TAG,
  EV.NONHOST_INFO,
  EV.OMIT_BOOT_DEVICE_EVENTS,
  EV.EFI_VARIABLE_DRIVER_CONFIG,
  EV.EFI_VARIABLE_BOOT,
  EV.EFI_VARIABLE_BOOT2,
  EV.EFI_VARIABLE_AUTHORITY,
]);

function matchesAll(e: TcgEvent, banks: readonly { hashAlg: number; digest: Uint8Array }[], data: Uint8Array): boolean {
  for (const d of banks) {
    const h = hash(d.hashAlg, data);
    if (h.length !== d.digest.length) return false;
    for (let i = 0; i < h.length; i++) if (h[i] !== d.digest[i]) return false;
  }
  return e.digests.length > 0;
}

/** The candidate byte strings a digest may be of, by rule, for this event and body. */
function candidates(e: TcgEvent, body: EventBody): [BindingRule, Uint8Array][] {
  const out: [BindingRule, Uint8Array][] = [];
  const grub = body.kind === 'ipl' ? body.grub : undefined;
  if (grub !== undefined) {
    // grub hashes the bytes after its ASCII prefix, without the NUL it logs (checked on the go-eventlog Ubuntu, RHEL and COS logs).
    let end = e.data.length;
    while (end > 0 && e.data[end - 1] === 0) end--;
    out.push(['grub-text', e.data.subarray(`${grub.kind}: `.length, Math.max(end, `${grub.kind}: `.length))]);
    return out;
  }
  out.push(['data', e.data]);
  if (body.kind === 'uefi-variable' && e.eventType !== EV.EFI_VARIABLE_AUTHORITY) out.push(['variable-data', body.variable.data]);
  if (e.eventType === EV.EFI_VARIABLE_AUTHORITY && e.data.length > 0) out.push(['shim-trailing-byte', e.data.subarray(0, e.data.length - 1)]);
  if (body.kind === 'ipl' && body.encoding === 'utf-16le' && e.data.length % 2 === 1) {
    const padded = new Uint8Array(e.data.length + 1);
    padded.set(e.data);
    out.push(['utf16-with-nul', padded]);
  }
  return out;
}

/**
 * Checks the event's data against its digests (see DataBinding). Types
 * whose digest is of the data, and grub's prefixed EV_IPL strings, are
 * `verified` or `mismatch`; other EV_IPL strings are `verified` when one of
 * the known rules holds and `unbound` otherwise; every other type is `unbound`.
 */
export function dataBinding(e: TcgEvent, body: EventBody = safeBody(e)): DataBinding {
  if (e.eventType === EV.NO_ACTION) return { status: 'not-extended' };
  const grub = body.kind === 'ipl' && body.grub !== undefined;
  const bound = DATA_BOUND.has(e.eventType) || grub;
  if (!bound && e.eventType !== EV.IPL) return { status: 'unbound' };
  const banks = e.digests.filter((d) => isHashSupported(d.hashAlg));
  if (banks.length === 0) return { status: 'not-checkable' };
  for (const [rule, bytes] of candidates(e, body)) {
    if (matchesAll(e, banks, bytes)) return { status: 'verified', rule };
  }
  return bound ? { status: 'mismatch' } : { status: 'unbound' };
}

function safeBody(e: TcgEvent): EventBody {
  try {
    return decodeBody(e);
  } catch (err) {
    if (err instanceof EventLogError) return { kind: 'malformed', error: err };
    throw err;
  }
}

/**
 * One event decoded, with its binding.
 * @throws EventLogError when the body does not decode as its type says.
 */
export function decodeEvent(e: TcgEvent): DecodedEvent {
  const body = decodeBody(e);
  return { event: e, type: eventTypeName(e.eventType), body, binding: dataBinding(e, body) };
}

/** Every event decoded; a body that does not decode becomes `{ kind: 'malformed', error }` (never thrown). */
export function decodeEvents(log: EventLog): DecodedEvent[] {
  return log.events.map((e) => {
    const body = safeBody(e);
    return { event: e, type: eventTypeName(e.eventType), body, binding: dataBinding(e, body) };
  });
}

// ---------------------------------------------------------------------------
// Checks over the decoded events

/**
 * Event types each firmware PCR may hold (PFP r1.05 §3.3.4 "PCR usage",
 * widened by what real firmware writes: go-attestation and go-eventlog test
 * logs). PCR 6 is the platform manufacturer's and PCRs 8+ the OS's: not listed.
 */
const ALLOWED_TYPES: ReadonlyMap<number, ReadonlySet<number>> = new Map([
  [0, new Set<number>([EV.S_CRTM_VERSION, EV.S_CRTM_CONTENTS, EV.POST_CODE, EV.EFI_PLATFORM_FIRMWARE_BLOB, EV.EFI_PLATFORM_FIRMWARE_BLOB2, EV.NONHOST_CODE, EV.NONHOST_CONFIG, EV.NONHOST_INFO, EV.EFI_HCRTM_EVENT, EV.EFI_HANDOFF_TABLES, EV.EFI_HANDOFF_TABLES2, EV.CPU_MICROCODE, EV.EFI_ACTION, EV.SEPARATOR, EV.NO_ACTION])],
  [1, new Set<number>([EV.EFI_VARIABLE_DRIVER_CONFIG, EV.EFI_VARIABLE_BOOT, EV.EFI_VARIABLE_BOOT2, EV.EFI_HANDOFF_TABLES, EV.EFI_HANDOFF_TABLES2, EV.PLATFORM_CONFIG_FLAGS, EV.TABLE_OF_DEVICES, EV.CPU_MICROCODE, EV.NONHOST_CONFIG, EV.NONHOST_INFO, EV.POST_CODE, EV.EFI_ACTION, EV.SEPARATOR, EV.NO_ACTION])],
  [2, new Set<number>([EV.EFI_BOOT_SERVICES_DRIVER, EV.EFI_RUNTIME_SERVICES_DRIVER, EV.EFI_BOOT_SERVICES_APPLICATION, EV.EFI_PLATFORM_FIRMWARE_BLOB, EV.EFI_PLATFORM_FIRMWARE_BLOB2, EV.NONHOST_CODE, EV.NONHOST_INFO, EV.POST_CODE, EV.COMPACT_HASH, EV.EFI_ACTION, EV.SEPARATOR, EV.NO_ACTION])],
  [3, new Set<number>([EV.EFI_VARIABLE_DRIVER_CONFIG, EV.NONHOST_CONFIG, EV.EFI_ACTION, EV.SEPARATOR, EV.NO_ACTION])],
  [4, new Set<number>([EV.EFI_BOOT_SERVICES_APPLICATION, EV.EFI_BOOT_SERVICES_DRIVER, EV.EFI_ACTION, EV.IPL, EV.COMPACT_HASH, EV.OMIT_BOOT_DEVICE_EVENTS, EV.SEPARATOR, EV.NO_ACTION])],
  [5, new Set<number>([EV.EFI_GPT_EVENT, EV.EFI_VARIABLE_BOOT, EV.EFI_VARIABLE_BOOT2, EV.EFI_VARIABLE_DRIVER_CONFIG, EV.IPL_PARTITION_DATA, EV.EFI_HANDOFF_TABLES, EV.EFI_ACTION, EV.SEPARATOR, EV.NO_ACTION])],
  [7, new Set<number>([EV.EFI_VARIABLE_DRIVER_CONFIG, EV.EFI_VARIABLE_AUTHORITY, EV.EFI_ACTION, EV.SEPARATOR, EV.NO_ACTION])],
]);

/** PCRs whose events drive decisions here (boot chain, Secure Boot): a type outside their list fails; elsewhere it warns. */
const STRICT_TYPE_PCRS: ReadonlySet<number> = new Set([4, 7]);

const SEPARATOR_VALUES = [new Uint8Array(4), new Uint8Array(4).fill(0xff)];
const separatorDigests = new Map<number, Uint8Array[]>();

function isSeparatorDigest(d: { hashAlg: number; digest: Uint8Array }): boolean {
  if (!isHashSupported(d.hashAlg)) return false;
  let known = separatorDigests.get(d.hashAlg);
  if (known === undefined) {
    known = SEPARATOR_VALUES.map((v) => hash(d.hashAlg, v));
    separatorDigests.set(d.hashAlg, known);
  }
  return known.some((k) => k.length === d.digest.length && k.every((b, i) => b === d.digest[i]));
}

const where = (d: DecodedEvent): string => `event ${d.event.index} (${d.type}, PCR ${d.event.pcrIndex})`;

/**
 * Checks what the replay cannot: the events' claims. Checks:
 *  - `eventlog.event-data`: fail `event.digest-mismatch` for each event whose
 *    type binds its data to its digest but the data does not hash to it;
 *  - `eventlog.event-type`: fail `event.type-unexpected` for a type outside the
 *    PFP's list for PCR 4 or 7 (and EV_UNUSED anywhere), warn for PCRs 0–3 and 5;
 *  - `eventlog.separator`: in PCRs 0–7, fail `separator.retagged` for an event
 *    of another type whose digest is a separator's (the separator relabelled so
 *    that events after it pass as firmware's; PCR 0's S-CRTM contents only warn,
 *    since real firmware measures one with that digest — go-eventlog glinux-alex.bin),
 *    fail `separator.duplicate` for a second separator in one PCR, fail
 *    `separator.value` for one that is neither 0 nor 0xFFFFFFFF, warn
 *    `separator.error` for 0xFFFFFFFF (the firmware reported an error);
 *  - `eventlog.event-body`: warn `event.malformed` for a body that does not decode.
 * Each passes with a summary when nothing is found.
 */
export function checkEvents(decoded: readonly DecodedEvent[]): Verdict {
  const checks: Check[] = [];
  let verified = 0;
  let unbound = 0;
  const mismatches: Check[] = [];
  const types: Check[] = [];
  const separators: Check[] = [];
  const bodies: Check[] = [];
  const separatorSeen = new Map<number, number>();
  for (const d of decoded) {
    const e = d.event;
    if (d.binding.status === 'verified') verified++;
    else if (d.binding.status === 'unbound') unbound++;
    else if (d.binding.status === 'mismatch') {
      mismatches.push(fail('eventlog.event-data', 'event.digest-mismatch', `${where(d)}: its digest is defined as the hash of its data, and the data does not hash to it`));
    }
    if (d.body.kind === 'malformed') bodies.push(warn('eventlog.event-body', 'event.malformed', `${where(d)}: ${d.body.error.message}`));
    const allowed = ALLOWED_TYPES.get(e.pcrIndex);
    if (e.eventType === EV.UNUSED || (allowed !== undefined && !allowed.has(e.eventType))) {
      const strict = e.eventType === EV.UNUSED || STRICT_TYPE_PCRS.has(e.pcrIndex);
      const detail = `${where(d)}: not a type PCR ${e.pcrIndex} holds`;
      types.push(strict ? fail('eventlog.event-type', 'event.type-unexpected', detail) : warn('eventlog.event-type', 'event.type-unexpected', detail));
    }
    if (e.pcrIndex > 7 || e.eventType === EV.NO_ACTION) continue;
    if (e.eventType === EV.SEPARATOR) {
      const n = (separatorSeen.get(e.pcrIndex) ?? 0) + 1;
      separatorSeen.set(e.pcrIndex, n);
      if (n > 1) separators.push(fail('eventlog.separator', 'separator.duplicate', `${where(d)}: a second separator in PCR ${e.pcrIndex}`));
      if (d.body.kind === 'separator' && d.body.value === 'other') {
        separators.push(fail('eventlog.separator', 'separator.value', `${where(d)}: a separator is 0 or 0xFFFFFFFF in PCRs 0–7`));
      }
      if (d.body.kind === 'separator' && d.body.value === 'error') {
        separators.push(warn('eventlog.separator', 'separator.error', `${where(d)}: the firmware reported an error (0xFFFFFFFF)`));
      }
    } else if (e.digests.some(isSeparatorDigest)) {
      const quirk = e.pcrIndex === 0 && e.eventType === EV.S_CRTM_CONTENTS;
      const detail = `${where(d)}: carries a separator's digest under another type`;
      separators.push(quirk ? warn('eventlog.separator', 'separator.retagged', detail) : fail('eventlog.separator', 'separator.retagged', detail));
    }
  }
  checks.push(...mismatches);
  if (mismatches.length === 0) checks.push(pass('eventlog.event-data', 'events.bound', `${verified} event(s) match their data, ${unbound} carry digests of data outside the log`));
  checks.push(...types);
  if (types.length === 0) checks.push(pass('eventlog.event-type', 'types.expected', 'every event in PCRs 0–7 has a type its PCR holds'));
  checks.push(...separators);
  if (separators.length === 0) checks.push(pass('eventlog.separator', 'separators.valid', `${[...separatorSeen.values()].reduce((a, b) => a + b, 0)} separator(s) in PCRs 0–7, none relabelled`));
  checks.push(...bodies);
  return verdict(checks);
}

/**
 * The whole event-log verification: parse (fail `eventlog.parse` with the
 * parser's reason when it does not), replay and compare with the quoted
 * PCRs of the signed selection (compareWithQuote), and check the events'
 * claims (checkEvents).
 */
export function verifyEventLog(input: Uint8Array | EventLog, quotedValues: PcrBanks, selection: readonly TPMS_PCR_SELECTION[]): Verdict {
  let log: EventLog;
  if (input instanceof Uint8Array) {
    try {
      log = parseEventLog(input);
    } catch (err) {
      if (err instanceof EventLogError) return verdict([fail('eventlog.parse', err.reason, err.message)]);
      throw err;
    }
  } else {
    log = input;
  }
  return combine(verdict([pass('eventlog.parse', 'log.parsed', `${log.format} log, ${log.events.length} records, banks ${log.banks.map(bankName).join(', ')}`)]), compareWithQuote(replay(log), quotedValues, selection), checkEvents(decodeEvents(log)));
}

// ---------------------------------------------------------------------------
// Summaries for policy

export interface SignatureDatabase {
  readonly eventIndex: number;
  readonly lists: readonly EfiSignatureList[];
  /** The variable's data hashes to its digest (rule `data`: name, GUID and value all bound). */
  readonly digestVerified: boolean;
}

export interface SecureBootState {
  readonly state: 'enabled' | 'disabled' | 'unknown';
  /**
   * Why, stable: `variable.enabled`, `variable.disabled`, `variable.absent`,
   * `variable.duplicate` (two events carry SecureBoot: one may be an
   * attacker's), `variable.after-separator`, `variable.digest-mismatch`,
   * `variable.type` (carried by another type than EV_EFI_VARIABLE_DRIVER_CONFIG),
   * `variable.empty` (no data, seen on real firmware), `variable.value` (not 0 or 1).
   */
  readonly reason: string;
  /**
   * True only when the deciding event's whole UEFI_VARIABLE_DATA hashes to
   * its digest. A decision to trust `state` needs this and a replay of PCR 7
   * that matches a quote (compareWithQuote).
   */
  readonly digestVerified: boolean;
  readonly eventIndex: number | undefined;
  /** PK, KEK, db, dbx as measured before PCR 7's separator (first occurrence). */
  readonly databases: { readonly PK?: SignatureDatabase; readonly KEK?: SignatureDatabase; readonly db?: SignatureDatabase; readonly dbx?: SignatureDatabase };
  /** EV_EFI_VARIABLE_AUTHORITY events: the certificate that let each image run. */
  readonly authorities: readonly {
    readonly eventIndex: number;
    readonly variable: string;
    readonly signature: EfiSignatureData | undefined;
    readonly afterSeparator: boolean;
    readonly digestVerified: boolean;
  }[];
}

function isVariableNamed(d: DecodedEvent, name: string, guid: string): d is DecodedEvent & { body: Extract<EventBody, { kind: 'uefi-variable' }> } {
  return d.body.kind === 'uefi-variable' && d.body.variable.name === name && d.body.variable.guid === guid;
}

/** The UEFI variable an event's data holds, whatever the event's claimed type (undefined when the data is not one). */
function variableIn(d: DecodedEvent): UefiVariable | undefined {
  if (d.body.kind === 'uefi-variable') return d.body.variable;
  if (d.event.eventType === EV.NO_ACTION) return undefined;
  try {
    const v = parseVariable(d.event.data, d.event.dataOffset);
    return v.trailing === 0 ? v : undefined;
  } catch {
    return undefined; // not a variable: nothing to count
  }
}

/**
 * Secure Boot state from the SecureBoot variable measured into PCR 7 (PFP
 * §3.3.4.8). Every PCR 7 event whose data is that variable counts, whatever
 * its type: a relabelled original beside an attacker's copy makes the state
 * `unknown` (`variable.duplicate`) instead of letting either win. PCR 7's
 * separator is found by type or by digest, so a relabelled one still marks
 * the end of the firmware's events.
 */
export function secureBootState(decoded: readonly DecodedEvent[]): SecureBootState {
  const pcr7 = decoded.filter((d) => d.event.pcrIndex === 7);
  // The first separator by type or by digest: a relabelled separator still ends the firmware's part of PCR 7.
  const sepIndex = pcr7.find((d) => d.event.eventType === EV.SEPARATOR || (d.event.eventType !== EV.NO_ACTION && d.event.digests.some(isSeparatorDigest)))?.event.index ?? Number.POSITIVE_INFINITY;
  const databases: { PK?: SignatureDatabase; KEK?: SignatureDatabase; db?: SignatureDatabase; dbx?: SignatureDatabase } = {};
  for (const name of ['PK', 'KEK', 'db', 'dbx'] as const) {
    const d = pcr7.find((x) => x.event.eventType === EV.EFI_VARIABLE_DRIVER_CONFIG && x.event.index < sepIndex && isVariableNamed(x, name, SIGNATURE_DATABASES.get(name)!));
    if (d !== undefined && d.body.kind === 'uefi-variable' && d.body.signatureLists !== undefined) {
      databases[name] = { eventIndex: d.event.index, lists: d.body.signatureLists, digestVerified: d.binding.status === 'verified' && d.binding.rule === 'data' };
    }
  }
  const authorities = pcr7
    .filter((d) => d.event.eventType === EV.EFI_VARIABLE_AUTHORITY && d.body.kind === 'uefi-variable')
    .map((d) => ({
      eventIndex: d.event.index,
      variable: d.body.kind === 'uefi-variable' ? d.body.variable.name : '',
      signature: d.body.kind === 'uefi-variable' ? d.body.authority : undefined,
      afterSeparator: d.event.index > sepIndex,
      digestVerified: d.binding.status === 'verified',
    }));
  const base = { databases, authorities };
  // Every PCR 7 event whose data is the SecureBoot variable, whatever its type: a relabelled original counts.
  const carriers = pcr7.filter((d) => {
    const v = variableIn(d);
    return v !== undefined && v.name === 'SecureBoot' && v.guid === EFI_GUID.GLOBAL_VARIABLE;
  });
  const unknown = (reason: string, d: DecodedEvent | undefined): SecureBootState => ({ state: 'unknown', reason, digestVerified: false, eventIndex: d?.event.index, ...base });
  if (carriers.length === 0) return unknown('variable.absent', undefined);
  if (carriers.length > 1) return unknown('variable.duplicate', carriers[1]);
  const d = carriers[0]!;
  if (d.event.eventType !== EV.EFI_VARIABLE_DRIVER_CONFIG) return unknown('variable.type', d);
  if (d.event.index > sepIndex) return unknown('variable.after-separator', d);
  if (d.binding.status !== 'verified') return unknown('variable.digest-mismatch', d);
  const value = variableIn(d)!.data;
  if (value.length === 0) return unknown('variable.empty', d);
  if (value.length !== 1 || value[0]! > 1) return unknown('variable.value', d);
  const enabled = value[0] === 1;
  return {
    state: enabled ? 'enabled' : 'disabled',
    reason: enabled ? 'variable.enabled' : 'variable.disabled',
    digestVerified: d.binding.rule === 'data',
    eventIndex: d.event.index,
    ...base,
  };
}

export interface BootChainEntry {
  readonly eventIndex: number;
  /** The claimed type (usually EV_EFI_BOOT_SERVICES_APPLICATION): a label, not evidence. */
  readonly type: string;
  /** The digest in the requested bank: what PCR 4 holds for this step. */
  readonly digest: Uint8Array;
  /** From the device path, when the body is a UEFI_IMAGE_LOAD_EVENT (a hint). */
  readonly filePath: string | undefined;
}

/**
 * The boot chain: every measurement in PCR 4 whose content the log cannot
 * show (the applications' Authenticode digests, in load order, and anything
 * else extended there that is not a verified action or separator), in bank
 * `hashAlg`. The list does not depend on the claimed types, so an allow-list
 * of digests over it cannot be sidestepped by relabelling an application;
 * trust it only with PCR 4 replayed against a quote.
 */
export function bootChain(decoded: readonly DecodedEvent[], hashAlg: number): BootChainEntry[] {
  const out: BootChainEntry[] = [];
  for (const d of decoded) {
    if (d.event.pcrIndex !== 4 || d.event.eventType === EV.NO_ACTION || d.binding.status === 'verified') continue;
    const digest = eventDigest(d.event, hashAlg);
    if (digest === undefined) continue;
    out.push({ eventIndex: d.event.index, type: d.type, digest, filePath: d.body.kind === 'image-load' ? d.body.filePath : undefined });
  }
  return out;
}

export interface KernelCommandLine {
  readonly eventIndex: number;
  readonly pcrIndex: number;
  /** The command line (grub: without "kernel_cmdline: " and the NUL; systemd-boot: the UTF-16 text). */
  readonly text: string;
  readonly source: 'grub' | 'systemd-boot';
  /** The text hashes to the event's digests: what was measured is exactly this text. */
  readonly digestVerified: boolean;
}

/**
 * Kernel command lines measured by the boot loader: grub's "kernel_cmdline:"
 * EV_IPL strings in PCR 8, and systemd-boot's UTF-16 EV_IPL in PCR 8 (older
 * releases) or 12. Trust one only when `digestVerified` and its PCR replays
 * against a quote.
 */
export function kernelCommandLines(decoded: readonly DecodedEvent[]): KernelCommandLine[] {
  const out: KernelCommandLine[] = [];
  for (const d of decoded) {
    if (d.body.kind !== 'ipl') continue;
    const p = d.event.pcrIndex;
    const verified = d.binding.status === 'verified';
    if (p === 8 && d.body.grub?.kind === 'kernel_cmdline') {
      out.push({ eventIndex: d.event.index, pcrIndex: p, text: d.body.grub.text, source: 'grub', digestVerified: verified });
    } else if ((p === 8 || p === 12) && d.body.encoding === 'utf-16le') {
      out.push({ eventIndex: d.event.index, pcrIndex: p, text: d.body.text, source: 'systemd-boot', digestVerified: verified });
    }
  }
  return out;
}
