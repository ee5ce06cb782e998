/**
 * Non-volatile storage (Part 3 §31 "Non-volatile Storage"): define and
 * remove NV indices, read and write them in chunks of the TPM's NV buffer,
 * counters, bit fields, extend indices, locks, and NV_Certify, as typed async
 * functions over a `Tpm`.
 *
 * An index is an `NvIndex`: an Entity whose Name is computed from the public
 * area the client checked (NV_ReadPublic's Name must agree). An index's Name
 * covers its attributes, so it changes when the TPM sets TPMA_NV_WRITTEN,
 * WRITELOCKED or READLOCKED; the functions here update the NvIndex after each
 * command that does so. Changes made elsewhere (NV_GlobalWriteLock, a
 * Startup that clears locks, another program) need `nvReadPublic` again.
 */
import {
  NV_Certify,
  NV_DefineSpace,
  NV_Extend,
  NV_GlobalWriteLock,
  NV_Increment,
  NV_Read,
  NV_ReadLock,
  NV_ReadPublic,
  NV_SetBits,
  NV_UndefineSpace,
  NV_Write,
  NV_WriteLock,
} from '../tpm/commands/index.js';
import { HANDLE_RANGE, TPM_ALG, TPM_NT, TPM_PT, TPM_RH, TPM_ST } from '../tpm/constants.js';
import { digestSize } from '../tpm/crypto/hash.js';
import { ClientError } from '../tpm/errors.js';
import { LIMITS } from '../tpm/limits.js';
import { nvName } from '../tpm/names.js';
import { sendOptionsOf, type SendOptions } from '../tpm/transport/transport.js';
import {
  TPMA_NV,
  TPMS_ATTEST,
  TPMS_NV_PUBLIC,
  type TPMI_ALG_HASH,
  type TPMT_SIG_SCHEME,
  type TPMT_SIGNATURE,
} from '../tpm/types/index.js';
import { encode } from '../tpm/wire/codec.js';
import { tpmProperty } from './crypto.js';
import type { Entity, Handle, Tpm, TpmRunOptions } from './tpm.js';

const EMPTY = new Uint8Array(0);

/** The kind of an index (Part 2 §13.4, TPM_NT), by name. */
export type NvType = 'ordinary' | 'counter' | 'bits' | 'extend' | 'pinFail' | 'pinPass';

const NT_OF: Readonly<Record<NvType, number>> = {
  ordinary: TPM_NT.ORDINARY,
  counter: TPM_NT.COUNTER,
  bits: TPM_NT.BITS,
  extend: TPM_NT.EXTEND,
  pinFail: TPM_NT.PIN_FAIL,
  pinPass: TPM_NT.PIN_PASS,
};

function typeOfNt(nt: number): NvType | undefined {
  return (Object.keys(NT_OF) as NvType[]).find((k) => NT_OF[k] === nt);
}

/** The attributes a caller chooses at definition; the type is `NvDefinition.type`, and WRITTEN/…LOCKED are the TPM's. */
export type NvAttributes = Partial<Omit<TPMA_NV, 'TPM_NT' | 'WRITTEN' | 'WRITELOCKED' | 'READLOCKED'>>;

function hex(n: number): string {
  return `0x${(n >>> 0).toString(16).padStart(8, '0')}`;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a).equals(Buffer.from(b));
}

function argument(message: string): ClientError {
  return new ClientError('client.argument', message);
}

let updateAttributes: (nv: NvIndex, set: Partial<TPMA_NV>) => void;

/**
 * An NV index the client can name: its handle, its public area (as last
 * checked or updated), the Name computed from it, and its authValue when the
 * caller knows it.
 */
export class NvIndex implements Entity {
  readonly handle: number;
  readonly authValue?: Uint8Array;
  #public: TPMS_NV_PUBLIC;
  #name: Uint8Array;

  /** @internal Use nvDefine or nvReadPublic. */
  constructor(publicArea: TPMS_NV_PUBLIC, authValue?: Uint8Array) {
    this.handle = publicArea.nvIndex;
    this.#public = publicArea;
    this.#name = nvName(publicArea);
    if (authValue !== undefined) this.authValue = authValue.slice();
  }

  static {
    updateAttributes = (nv, set) => {
      const attributes = { ...nv.#public.attributes, ...set };
      nv.#public = { ...nv.#public, attributes };
      nv.#name = nvName(nv.#public);
    };
  }

  /** The public area (TPMS_NV_PUBLIC) the Name is computed from. */
  get publicArea(): TPMS_NV_PUBLIC {
    return this.#public;
  }

  /** nameAlg ‖ H_nameAlg(marshaled public area) (Part 1 §16.4). */
  get name(): Uint8Array {
    return this.#name;
  }

  get type(): NvType | undefined {
    return typeOfNt(this.#public.attributes.TPM_NT);
  }

  /** The index's data size in bytes. */
  get size(): number {
    return this.#public.dataSize;
  }

  get attributes(): TPMA_NV {
    return this.#public.attributes;
  }
}

export interface NvDefinition {
  /** The index handle, 0x01000000–0x01ffffff (TCG-registered ranges are in the Provisioning Guidance). */
  readonly index: number;
  /** 'ordinary' by default. */
  readonly type?: NvType;
  /**
   * Data size: required for ordinary indices; counters, bit fields and PIN
   * indices are 8 bytes, extend indices the nameAlg's digest size.
   */
  readonly size?: number;
  /** SHA-256 by default. */
  readonly nameAlg?: TPMI_ALG_HASH;
  /**
   * Attributes on top of AUTHWRITE | AUTHREAD (set one to false to drop it).
   * PLATFORMCREATE is set for you when `auth` is the platform.
   */
  readonly attributes?: NvAttributes;
  /** The index's authValue; empty by default. */
  readonly authValue?: Uint8Array;
  /** The index's authPolicy; empty by default. */
  readonly authPolicy?: Uint8Array;
}

export interface NvProvisionOptions extends TpmRunOptions {
  /** TPM_RH_OWNER (default) or TPM_RH_PLATFORM, as a handle or an Entity with its authValue. */
  readonly auth?: Handle;
}

export interface NvAuthOptions extends TpmRunOptions {
  /**
   * The authorizing entity: by default the index itself when AUTHREAD/AUTHWRITE
   * (or POLICYREAD/POLICYWRITE) is set, else the owner, else the platform, as
   * the index's attributes allow.
   */
  readonly auth?: Handle;
}

function handleOf(h: Handle): number {
  return typeof h === 'number' ? h : h.handle;
}

function checkIndex(operation: string, index: number): void {
  if (!Number.isInteger(index) || index < HANDLE_RANGE.NV_INDEX[0] || index > HANDLE_RANGE.NV_INDEX[1]) {
    throw argument(`${operation}: ${hex(index)} is not an NV index handle (0x01000000–0x01ffffff)`);
  }
}

function checkBytes(value: unknown, what: string): Uint8Array {
  if (!(value instanceof Uint8Array)) throw argument(`${what} must be a Uint8Array`);
  return value;
}

/** Who authorizes a read or a write of `nv` when the caller does not say (Part 3 §31.7, §31.13). */
function defaultAuth(nv: NvIndex, kind: 'read' | 'write'): Handle {
  const a = nv.attributes;
  const [byIndex, byOwner, byPlatform, byPolicy] =
    kind === 'write' ? [a.AUTHWRITE, a.OWNERWRITE, a.PPWRITE, a.POLICYWRITE] : [a.AUTHREAD, a.OWNERREAD, a.PPREAD, a.POLICYREAD];
  if (byIndex) return nv;
  if (byOwner) return TPM_RH.OWNER;
  if (byPlatform) return TPM_RH.PLATFORM;
  if (byPolicy) return nv;
  return nv;
}

/** TPM_PT_NV_BUFFER_MAX: the most bytes one NV_Read or NV_Write moves (Part 2 §6.13; 1024 on swtpm). */
export async function nvBufferSize(tpm: Tpm, options: SendOptions = {}): Promise<number> {
  const v = await tpmProperty(tpm, TPM_PT.NV_BUFFER_MAX, options);
  return Math.max(1, Math.min(v === undefined || v === 0 ? 512 : v, LIMITS.MAX_NV_BUFFER_SIZE));
}

// ---------------------------------------------------------------------------
// Define, undefine, read the public area

/**
 * Reads an index's public area (NV_ReadPublic, Part 3 §31.6) and checks that
 * the TPM's Name is the Name of that area.
 *
 * @throws ClientError `client.name`; TpmError (TPM_RC_HANDLE when undefined); TransportError.
 */
export async function nvReadPublic(tpm: Tpm, index: number, options: SendOptions & { readonly authValue?: Uint8Array } = {}): Promise<NvIndex> {
  checkIndex('nvReadPublic', index);
  const r = await tpm.run(NV_ReadPublic, { nvIndex: index }, {}, options);
  const pub = r.params.nvPublic;
  if (pub.nvIndex !== index) throw new ClientError('client.response', `nvReadPublic: asked for ${hex(index)}, the TPM described ${hex(pub.nvIndex)}`);
  if (!sameBytes(nvName(pub), r.params.nvName)) {
    throw new ClientError('client.name', `nvReadPublic: the TPM's Name for ${hex(index)} differs from the Name of its public area`);
  }
  return new NvIndex(pub, options.authValue);
}

/**
 * Defines an index (NV_DefineSpace, Part 3 §31.3) with owner (default) or
 * platform authorization, then reads it back and checks the TPM holds the
 * public area asked for.
 *
 * @throws ClientError `client.argument` for a bad definition (before sending), `client.response` when the TPM's
 *   public area differs; TpmError (TPM_RC_NV_DEFINED, TPM_RC_ATTRIBUTES, TPM_RC_NV_SPACE); SessionError; TransportError.
 */
export async function nvDefine(tpm: Tpm, definition: NvDefinition, options: NvProvisionOptions = {}): Promise<NvIndex> {
  checkIndex('nvDefine', definition.index);
  const type = definition.type ?? 'ordinary';
  const nt = NT_OF[type];
  if (nt === undefined) throw argument(`nvDefine: unknown index type ${String(type)}`);
  const nameAlg = definition.nameAlg ?? TPM_ALG.SHA256;
  let size = definition.size;
  if (type === 'counter' || type === 'bits' || type === 'pinFail' || type === 'pinPass') size ??= 8;
  else if (type === 'extend') size ??= digestSize(nameAlg);
  if (size === undefined || !Number.isInteger(size) || size < 0 || size > 0xffff) throw argument(`nvDefine: size ${String(size)} must be given as 0..65535`);
  const authValue = definition.authValue === undefined ? undefined : checkBytes(definition.authValue, 'nvDefine: authValue');
  const authPolicy = definition.authPolicy === undefined ? EMPTY : checkBytes(definition.authPolicy, 'nvDefine: authPolicy');
  const auth = options.auth ?? TPM_RH.OWNER;
  const attributes = TPMA_NV.of({
    AUTHWRITE: true,
    AUTHREAD: true,
    ...definition.attributes,
    // Part 3 §31.3: an index the platform defines must say so (TPM_RC_ATTRIBUTES otherwise).
    ...(handleOf(auth) === TPM_RH.PLATFORM ? { PLATFORMCREATE: true } : {}),
    TPM_NT: nt,
  });
  const publicInfo: TPMS_NV_PUBLIC = { nvIndex: definition.index, nameAlg, attributes, authPolicy, dataSize: size };
  await tpm.run(NV_DefineSpace, { authHandle: auth }, { auth: authValue ?? EMPTY, publicInfo }, options);
  const nv = await nvReadPublic(tpm, definition.index, { ...sendOptionsOf(options), ...(authValue !== undefined ? { authValue } : {}) });
  if (!sameBytes(encode(TPMS_NV_PUBLIC, nv.publicArea), encode(TPMS_NV_PUBLIC, publicInfo))) {
    throw new ClientError('client.response', `nvDefine: the TPM holds a public area for ${hex(definition.index)} other than the one defined`);
  }
  return nv;
}

/**
 * Removes an index (NV_UndefineSpace, Part 3 §31.4) with owner authorization,
 * or platform authorization for a PLATFORMCREATE index (chosen from its
 * attributes unless `options.auth` says). POLICY_DELETE indices need
 * NV_UndefineSpaceSpecial instead.
 *
 * @throws TpmError; SessionError; TransportError.
 */
export async function nvUndefine(tpm: Tpm, nv: NvIndex | number, options: NvProvisionOptions = {}): Promise<void> {
  const index = typeof nv === 'number' ? nv : nv.handle;
  checkIndex('nvUndefine', index);
  const auth = options.auth ?? (typeof nv !== 'number' && nv.attributes.PLATFORMCREATE ? TPM_RH.PLATFORM : TPM_RH.OWNER);
  // The index handle needs no authorization here, so its Name matters only to HMAC sessions.
  await tpm.run(NV_UndefineSpace, { authHandle: auth, nvIndex: nv }, {}, options);
}


// ---------------------------------------------------------------------------
// Data

export interface NvReadOptions extends NvAuthOptions {
  /** Bytes to read; the rest of the index from `offset` by default. */
  readonly size?: number;
  readonly offset?: number;
}

/**
 * Reads an index (NV_Read, Part 3 §31.13), in chunks of TPM_PT_NV_BUFFER_MAX.
 *
 * @throws ClientError `client.argument` for a range outside the index, `client.response` for a chunk of the wrong
 *   size; TpmError (TPM_RC_NV_UNINITIALIZED before the first write, TPM_RC_NV_LOCKED, TPM_RC_NV_AUTHORIZATION);
 *   SessionError; TransportError.
 */
export async function nvRead(tpm: Tpm, nv: NvIndex, options: NvReadOptions = {}): Promise<Uint8Array> {
  const offset = options.offset ?? 0;
  const size = options.size ?? nv.size - offset;
  if (!Number.isInteger(offset) || !Number.isInteger(size) || offset < 0 || size < 0 || offset + size > nv.size) {
    throw argument(`nvRead: ${String(size)} byte(s) at offset ${String(offset)} do not fit the ${nv.size}-byte index ${hex(nv.handle)}`);
  }
  const chunk = await nvBufferSize(tpm, options);
  const auth = options.auth ?? defaultAuth(nv, 'read');
  const out = new Uint8Array(size);
  for (let done = 0; done < size; ) {
    const n = Math.min(chunk, size - done);
    const r = await tpm.run(NV_Read, { authHandle: auth, nvIndex: nv }, { size: n, offset: offset + done }, options);
    if (r.params.data.length !== n) throw new ClientError('client.response', `nvRead: asked for ${n} byte(s), got ${r.params.data.length}`);
    out.set(r.params.data, done);
    done += n;
  }
  return out;
}

export interface NvWriteOptions extends NvAuthOptions {
  readonly offset?: number;
}

/**
 * Writes an ordinary index (NV_Write, Part 3 §31.7) in chunks of
 * TPM_PT_NV_BUFFER_MAX. A WRITEALL index takes the whole index in one command,
 * so it must fit one buffer.
 *
 * @throws ClientError `client.argument` for a range outside the index or a WRITEALL write that cannot be one
 *   command; TpmError (TPM_RC_NV_LOCKED, TPM_RC_ATTRIBUTES for a counter/bits/extend index); SessionError; TransportError.
 */
export async function nvWrite(tpm: Tpm, nv: NvIndex, data: Uint8Array, options: NvWriteOptions = {}): Promise<void> {
  checkBytes(data, 'nvWrite: data');
  const offset = options.offset ?? 0;
  if (!Number.isInteger(offset) || offset < 0 || offset + data.length > nv.size) {
    throw argument(`nvWrite: ${data.length} byte(s) at offset ${String(offset)} do not fit the ${nv.size}-byte index ${hex(nv.handle)}`);
  }
  const chunk = await nvBufferSize(tpm, options);
  if (nv.attributes.WRITEALL && (offset !== 0 || data.length !== nv.size || data.length > chunk)) {
    throw argument(`nvWrite: ${hex(nv.handle)} is WRITEALL: write all ${nv.size} bytes at once (at most ${chunk} per command)`);
  }
  const auth = options.auth ?? defaultAuth(nv, 'write');
  let done = 0;
  do {
    const piece = data.subarray(done, done + chunk);
    await tpm.run(NV_Write, { authHandle: auth, nvIndex: nv }, { data: piece, offset: offset + done }, options);
    updateAttributes(nv, { WRITTEN: true });
    done += piece.length;
  } while (done < data.length);
}

/**
 * Increments a counter index (NV_Increment, Part 3 §31.8); the first
 * increment starts it at the highest value any counter has had (Part 1 §37.2.3.4).
 *
 * @throws TpmError (TPM_RC_ATTRIBUTES for another type); SessionError; TransportError.
 */
export async function nvIncrement(tpm: Tpm, nv: NvIndex, options: NvAuthOptions = {}): Promise<void> {
  await tpm.run(NV_Increment, { authHandle: options.auth ?? defaultAuth(nv, 'write'), nvIndex: nv }, {}, options);
  updateAttributes(nv, { WRITTEN: true });
}

/**
 * Reads a counter or bit-field index as the 64-bit big-endian number it holds.
 *
 * @throws ClientError `client.argument` for an index that is not 8 bytes; as nvRead.
 */
export async function nvReadCounter(tpm: Tpm, nv: NvIndex, options: NvAuthOptions = {}): Promise<bigint> {
  if (nv.size !== 8) throw argument(`nvReadCounter: ${hex(nv.handle)} holds ${nv.size} bytes, not a 64-bit value`);
  const b = await nvRead(tpm, nv, { ...options, offset: 0, size: 8 });
  return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0);
}

/**
 * Extends an extend index (NV_Extend, Part 3 §31.9): value = H_nameAlg(value ‖ data).
 * The data goes in one command (splitting it would extend twice).
 *
 * @throws ClientError `client.argument` for data larger than the NV buffer; TpmError; SessionError; TransportError.
 */
export async function nvExtend(tpm: Tpm, nv: NvIndex, data: Uint8Array, options: NvAuthOptions = {}): Promise<void> {
  checkBytes(data, 'nvExtend: data');
  const chunk = await nvBufferSize(tpm, options);
  if (data.length > chunk) throw argument(`nvExtend: ${data.length} bytes, at most ${chunk} in one NV_Extend`);
  await tpm.run(NV_Extend, { authHandle: options.auth ?? defaultAuth(nv, 'write'), nvIndex: nv }, { data }, options);
  updateAttributes(nv, { WRITTEN: true });
}

/**
 * ORs `bits` into a bit-field index (NV_SetBits, Part 3 §31.10).
 *
 * @throws ClientError `client.argument` for a value outside 64 bits; TpmError; SessionError; TransportError.
 */
export async function nvSetBits(tpm: Tpm, nv: NvIndex, bits: bigint, options: NvAuthOptions = {}): Promise<void> {
  if (typeof bits !== 'bigint' || bits < 0n || bits > 0xffffffffffffffffn) throw argument('nvSetBits: bits must be a bigint in 0..2^64-1');
  await tpm.run(NV_SetBits, { authHandle: options.auth ?? defaultAuth(nv, 'write'), nvIndex: nv }, { bits }, options);
  updateAttributes(nv, { WRITTEN: true });
}

// ---------------------------------------------------------------------------
// Locks

/**
 * Locks an index against writes (NV_WriteLock, Part 3 §31.11): until the next
 * Startup(CLEAR) for WRITE_STCLEAR, for ever for WRITEDEFINE (once written).
 *
 * @throws TpmError (TPM_RC_ATTRIBUTES without either attribute); SessionError; TransportError.
 */
export async function nvWriteLock(tpm: Tpm, nv: NvIndex, options: NvAuthOptions = {}): Promise<void> {
  await tpm.run(NV_WriteLock, { authHandle: options.auth ?? defaultAuth(nv, 'write'), nvIndex: nv }, {}, options);
  updateAttributes(nv, { WRITELOCKED: true });
}

/**
 * Locks a READ_STCLEAR index against reads until the next Startup(CLEAR)
 * (NV_ReadLock, Part 3 §31.14).
 *
 * @throws TpmError (TPM_RC_ATTRIBUTES without READ_STCLEAR); SessionError; TransportError.
 */
export async function nvReadLock(tpm: Tpm, nv: NvIndex, options: NvAuthOptions = {}): Promise<void> {
  await tpm.run(NV_ReadLock, { authHandle: options.auth ?? defaultAuth(nv, 'read'), nvIndex: nv }, {}, options);
  updateAttributes(nv, { READLOCKED: true });
}

/**
 * Write-locks every index with GLOBALLOCK until the next Startup(CLEAR)
 * (NV_GlobalWriteLock, Part 3 §31.12). NvIndex objects already held are not
 * updated: read them again with nvReadPublic.
 *
 * @throws TpmError; SessionError; TransportError.
 */
export async function nvGlobalWriteLock(tpm: Tpm, options: NvProvisionOptions = {}): Promise<void> {
  await tpm.run(NV_GlobalWriteLock, { authHandle: options.auth ?? TPM_RH.OWNER }, {}, options);
}

// ---------------------------------------------------------------------------
// Certify

/** NV_Certify's attestation: the TPMS_ATTEST decoded, the bytes signed, and the signature. */
export interface NvCertification {
  readonly attest: Extract<TPMS_ATTEST, { readonly type: typeof TPM_ST.ATTEST_NV | typeof TPM_ST.ATTEST_NV_DIGEST }>;
  /** The signed bytes (TPM2B_ATTEST's content): verify the signature over these. */
  readonly attestBytes: Uint8Array;
  readonly signature: TPMT_SIGNATURE;
}

export interface NvCertifyOptions extends NvAuthOptions {
  /** Caller data echoed in extraData (a nonce); empty by default. */
  readonly qualifyingData?: Uint8Array;
  /** The signing scheme; NULL (default) uses the key's. */
  readonly scheme?: TPMT_SIG_SCHEME;
  /**
   * Bytes to certify from `offset`; the whole index by default. Size 0 at
   * offset 0 asks for a digest of the whole index instead (TPMS_NV_DIGEST_CERTIFY_INFO).
   */
  readonly size?: number;
  readonly offset?: number;
}

/**
 * Has `signKey` sign an attestation of an index's contents (NV_Certify,
 * Part 3 §31.16). Sessions: the signing key first, then the index's read
 * authorization. The client checks that the attestation is of this index
 * (its current Name) and echoes `qualifyingData`.
 *
 * @throws ClientError `client.argument` for a range outside the index, `client.response` for an attestation of
 *   another type, index or nonce; TpmError; SessionError; TransportError.
 */
export async function nvCertify(tpm: Tpm, signKey: Handle, nv: NvIndex, options: NvCertifyOptions = {}): Promise<NvCertification> {
  const offset = options.offset ?? 0;
  const size = options.size ?? nv.size - offset;
  if (!Number.isInteger(offset) || !Number.isInteger(size) || offset < 0 || size < 0 || offset + size > nv.size) {
    throw argument(`nvCertify: ${String(size)} byte(s) at offset ${String(offset)} do not fit the ${nv.size}-byte index ${hex(nv.handle)}`);
  }
  const qualifyingData = options.qualifyingData === undefined ? EMPTY : checkBytes(options.qualifyingData, 'nvCertify: qualifyingData');
  const r = await tpm.run(
    NV_Certify,
    { signHandle: signKey, authHandle: options.auth ?? defaultAuth(nv, 'read'), nvIndex: nv },
    { qualifyingData, inScheme: options.scheme ?? { scheme: TPM_ALG.NULL }, size, offset },
    options,
  );
  const attest = r.params.certifyInfo;
  const digestForm = size === 0 && offset === 0;
  const expectedType = digestForm ? TPM_ST.ATTEST_NV_DIGEST : TPM_ST.ATTEST_NV;
  if (attest.type !== expectedType) {
    throw new ClientError('client.response', `nvCertify: attestation type 0x${attest.type.toString(16)}, expected 0x${expectedType.toString(16)}`);
  }
  const a = attest as NvCertification['attest'];
  if (!sameBytes(a.attested.indexName, nv.name)) throw new ClientError('client.response', `nvCertify: the attestation names another index than ${hex(nv.handle)}`);
  if (!sameBytes(a.extraData, qualifyingData)) throw new ClientError('client.response', 'nvCertify: extraData is not the qualifyingData sent');
  if (a.type === TPM_ST.ATTEST_NV && (a.attested.offset !== offset || a.attested.nvContents.length !== size)) {
    throw new ClientError('client.response', `nvCertify: the attestation covers ${a.attested.nvContents.length} byte(s) at ${a.attested.offset}, not ${size} at ${offset}`);
  }
  return { attest: a, attestBytes: encode(TPMS_ATTEST, attest), signature: r.params.signature };
}
