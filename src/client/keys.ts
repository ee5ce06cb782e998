/**
 * Keys on a TPM (Part 3 §12 "Object Commands", §24.1 CreatePrimary, §28
 * "Context Management"): create, load, read, persist, save and reload
 * objects, as typed async functions over a `Tpm`.
 *
 * Every object this module hands out is a `LoadedKey`: an Entity whose Name
 * is computed here from a public area the client has checked, never taken on
 * the TPM's word. When the TPM's own Name disagrees (CreatePrimary, Load,
 * LoadExternal, CreateLoaded, ReadPublic return one), the object is flushed
 * and a ClientError `client.name` is thrown. A public area that differs from
 * the template the caller asked for (other than `unique`) is `client.response`.
 *
 * Nothing transient is left behind on an error path: an object that was
 * loaded by a call that then fails is flushed before the error propagates.
 */
import { CreateLoaded, ContextLoad, ContextSave, Create, CreatePrimary, EvictControl, Load, LoadExternal, ObjectChangeAuth, ReadPublic } from '../tpm/commands/index.js';
import { HANDLE_RANGE, TPM_ALG, TPM_ECC, TPM_RH } from '../tpm/constants.js';
import { ClientError } from '../tpm/errors.js';
import { objectName } from '../tpm/names.js';
import {
  TPMA_OBJECT,
  TPMT_PUBLIC,
  templateFromPublic,
  type TPMI_ALG_HASH,
  type TPMI_ALG_SYM_MODE,
  type TPMI_ECC_CURVE,
  type TPMS_CONTEXT,
  type TPMS_CREATION_DATA,
  type TPMS_DERIVE,
  type TPMS_PCR_SELECTION,
  type TPMT_SENSITIVE,
  type TPMT_TK_CREATION,
} from '../tpm/types/index.js';
import { encode } from '../tpm/wire/codec.js';
import type { Entity, Handle, Tpm, TpmRunOptions } from './tpm.js';

// ---------------------------------------------------------------------------
// Types

/**
 * A transient or persistent object the client can use: its handle, its Name
 * (computed from `publicArea`), the public area itself, and its authValue
 * when the caller knows it. It is an Entity, so it goes straight into
 * `tpm.run`, `tpm.flush`, `tpm.using` and `scope.defer`.
 */
export interface LoadedKey extends Entity {
  readonly handle: number;
  readonly name: Uint8Array;
  readonly authValue?: Uint8Array;
  readonly publicArea: TPMT_PUBLIC;
}

/** What the TPM recorded when it created an object (Part 2 §15; certify it with CertifyCreation). */
export interface CreationInfo {
  readonly data: TPMS_CREATION_DATA;
  /** H_nameAlg(marshaled creation data). */
  readonly hash: Uint8Array;
  readonly ticket: TPMT_TK_CREATION;
}

/** A primary object, loaded, with its creation record. */
export interface PrimaryKey extends LoadedKey {
  readonly creation: CreationInfo;
}

/** An object wrapped by its parent: what Create returns and Load takes (tpm2-tools' key.priv / key.pub). */
export interface KeyBlob {
  /** TPM2B_PRIVATE content: opaque, integrity-protected by the parent. */
  readonly privateBlob: Uint8Array;
  readonly publicArea: TPMT_PUBLIC;
}

/** Create's result: the wrapped object, its Name and creation record. */
export interface CreatedKey extends KeyBlob {
  readonly name: Uint8Array;
  readonly creation: CreationInfo;
}

/** CreateLoaded's result: a loaded object and, under a storage parent, its wrapped private part (empty for a primary). */
export interface CreatedLoadedKey extends LoadedKey {
  readonly privateBlob: Uint8Array;
}

/** ReadPublic's result: the object and its Qualified Name (Part 1 §16.6). */
export interface ObjectPublic extends LoadedKey {
  readonly qualifiedName: Uint8Array;
}

/** A saved object context with what the client needs to use it again after ContextLoad. */
export interface SavedKey {
  readonly context: TPMS_CONTEXT;
  readonly publicArea: TPMT_PUBLIC;
  readonly name: Uint8Array;
  readonly authValue?: Uint8Array;
}

export interface CreateOptions extends TpmRunOptions {
  /** The new object's authValue (userAuth); empty by default. */
  readonly authValue?: Uint8Array;
  /** Data to seal, or the key bits of a keyedHash/symcipher object whose sensitiveDataOrigin is clear. */
  readonly sensitiveData?: Uint8Array;
  /** Caller data recorded in the creation data. */
  readonly outsideInfo?: Uint8Array;
  /** PCRs whose digest is recorded in the creation data. */
  readonly creationPCR?: readonly TPMS_PCR_SELECTION[];
}

export interface CreateLoadedOptions extends TpmRunOptions {
  readonly authValue?: Uint8Array;
  readonly sensitiveData?: Uint8Array;
  /** Under a derivation parent: the label and context the key is derived from (the template's unique becomes TPMS_DERIVE). */
  readonly derive?: TPMS_DERIVE;
}

export interface LoadOptions extends TpmRunOptions {
  /** The loaded object's authValue, kept on the returned key for later authorizations. */
  readonly authValue?: Uint8Array;
}

export interface LoadExternalOptions extends TpmRunOptions {
  /** The private part in the clear; without it only the public key is loaded. */
  readonly sensitive?: TPMT_SENSITIVE;
  /** The hierarchy the object is associated with; default TPM_RH_NULL (tickets it produces are then NULL tickets). */
  readonly hierarchy?: number;
}

export interface EvictOptions extends TpmRunOptions {
  /** TPM_RH_OWNER (default) or TPM_RH_PLATFORM, as a handle or an Entity with its authValue. */
  readonly auth?: Handle;
}

// ---------------------------------------------------------------------------
// Helpers

const EMPTY = new Uint8Array(0);

function hex(n: number): string {
  return `0x${(n >>> 0).toString(16).padStart(8, '0')}`;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a).equals(Buffer.from(b));
}

function withAuth<T extends object>(value: T, authValue: Uint8Array | undefined): T & { authValue?: Uint8Array } {
  return authValue === undefined ? value : { ...value, authValue: authValue.slice() };
}

function checkBytes(value: unknown, what: string, operation: string): void {
  if (value !== undefined && !(value instanceof Uint8Array)) throw new ClientError('client.argument', `${operation}: ${what} must be a Uint8Array`);
}

function handleOf(h: Handle): number {
  return typeof h === 'number' ? h : h.handle;
}

/**
 * A public area's bytes with `unique` replaced, so a TPM's answer can be
 * compared with the template it was given: the TPM fills in `unique` and
 * must leave everything else as asked (Part 3 §12.1, §24.1).
 */
function withoutUnique(area: TPMT_PUBLIC, like: TPMT_PUBLIC): Uint8Array | undefined {
  if (area.type !== like.type) return undefined;
  return encode(TPMT_PUBLIC, { ...area, unique: like.unique } as TPMT_PUBLIC);
}

function checkAgainstTemplate(operation: string, template: TPMT_PUBLIC, outPublic: TPMT_PUBLIC): void {
  const got = withoutUnique(outPublic, template);
  if (got === undefined || !sameBytes(got, encode(TPMT_PUBLIC, template))) {
    throw new ClientError('client.response', `${operation}: the TPM returned a public area that differs from the template in more than its unique field`);
  }
}

/** Flushes `handle` and rethrows `error`; a failing flush does not hide the original error. */
async function flushAndThrow(tpm: Tpm, handle: number, error: unknown): Promise<never> {
  try {
    await tpm.flush(handle);
  } catch {
    // The original error says what went wrong; the handle may already be gone.
  }
  throw error;
}

/** The Name check every loading command needs: the TPM's Name must be the one computed from the public area. */
async function checkedKey(tpm: Tpm, operation: string, handle: number, publicArea: TPMT_PUBLIC, tpmName: Uint8Array, authValue: Uint8Array | undefined): Promise<LoadedKey> {
  const name = objectName(publicArea);
  if (!sameBytes(name, tpmName)) {
    const err = new ClientError('client.name', `${operation}: the TPM's Name for ${hex(handle)} differs from the Name of its public area`);
    if (handle >= HANDLE_RANGE.TRANSIENT[0] && handle <= HANDLE_RANGE.TRANSIENT[1]) await flushAndThrow(tpm, handle, err);
    throw err;
  }
  return withAuth({ handle, name, publicArea }, authValue);
}

function sensitiveCreate(operation: string, o: { authValue?: Uint8Array; sensitiveData?: Uint8Array }): { userAuth: Uint8Array; data: Uint8Array } {
  checkBytes(o.authValue, 'authValue', operation);
  checkBytes(o.sensitiveData, 'sensitiveData', operation);
  return { userAuth: o.authValue ?? EMPTY, data: o.sensitiveData ?? EMPTY };
}

function creationOf(r: { creationData: TPMS_CREATION_DATA; creationHash: Uint8Array; creationTicket: TPMT_TK_CREATION }): CreationInfo {
  return { data: r.creationData, hash: r.creationHash, ticket: r.creationTicket };
}

// ---------------------------------------------------------------------------
// Creating and loading

/**
 * Creates a primary object under `hierarchy` (TPM_RH_OWNER, ENDORSEMENT,
 * PLATFORM or NULL, or an Entity carrying the hierarchy's authValue) and
 * loads it (Part 3 §24.1). The same template on the same seed gives the same key.
 *
 * @throws ClientError `client.name` when the TPM's Name is not the Name of the
 *   returned public area, `client.response` when that public area is not the
 *   template (the key is flushed in both cases); TpmError; SessionError; TransportError.
 */
export async function createPrimary(tpm: Tpm, hierarchy: Handle, template: TPMT_PUBLIC, options: CreateOptions = {}): Promise<PrimaryKey> {
  const inSensitive = sensitiveCreate('createPrimary', options);
  const r = await tpm.run(
    CreatePrimary,
    { primaryHandle: hierarchy },
    { inSensitive, inPublic: template, outsideInfo: options.outsideInfo ?? EMPTY, creationPCR: [...(options.creationPCR ?? [])] },
    options,
  );
  const handle = r.handles.objectHandle;
  try {
    checkAgainstTemplate('createPrimary', template, r.params.outPublic);
  } catch (e) {
    return flushAndThrow(tpm, handle, e);
  }
  const key = await checkedKey(tpm, 'createPrimary', handle, r.params.outPublic, r.params.name, options.authValue);
  return { ...key, creation: creationOf(r.params) };
}

/**
 * Creates an ordinary object under a loaded storage parent (Part 3 §12.1);
 * the object is not loaded: pass the result to `load`.
 *
 * @throws ClientError `client.response` when the public area is not the template; TpmError; SessionError; TransportError.
 */
export async function create(tpm: Tpm, parent: Handle, template: TPMT_PUBLIC, options: CreateOptions = {}): Promise<CreatedKey> {
  const inSensitive = sensitiveCreate('create', options);
  const r = await tpm.run(
    Create,
    { parentHandle: parent },
    { inSensitive, inPublic: template, outsideInfo: options.outsideInfo ?? EMPTY, creationPCR: [...(options.creationPCR ?? [])] },
    options,
  );
  checkAgainstTemplate('create', template, r.params.outPublic);
  return {
    privateBlob: r.params.outPrivate,
    publicArea: r.params.outPublic,
    name: objectName(r.params.outPublic),
    creation: creationOf(r.params),
  };
}

/**
 * Creates an object and loads it in one command (Part 3 §12.9): a primary
 * when `parent` is a hierarchy, an ordinary object under a storage parent,
 * or a derived object under a derivation parent (`options.derive`).
 * The template travels as a TPM2B_TEMPLATE built by templateFromPublic.
 *
 * @throws ClientError `client.name` / `client.response` as for createPrimary (the object is flushed); TpmError; SessionError; TransportError.
 */
export async function createLoaded(tpm: Tpm, parent: Handle, template: TPMT_PUBLIC, options: CreateLoadedOptions = {}): Promise<CreatedLoadedKey> {
  const inSensitive = sensitiveCreate('createLoaded', options);
  const inPublic =
    options.derive === undefined ? templateFromPublic(template) : templateFromPublic({ ...template, unique: options.derive }, { derivation: true });
  const r = await tpm.run(CreateLoaded, { parentHandle: parent }, { inSensitive, inPublic }, options);
  const handle = r.handles.objectHandle;
  try {
    // A derived key's unique is computed from the derivation, not from a template value: compare the rest.
    checkAgainstTemplate('createLoaded', template, r.params.outPublic);
  } catch (e) {
    return flushAndThrow(tpm, handle, e);
  }
  const key = await checkedKey(tpm, 'createLoaded', handle, r.params.outPublic, r.params.name, options.authValue);
  return { ...key, privateBlob: r.params.outPrivate };
}

/**
 * Loads a wrapped object under its parent (Part 3 §12.2).
 *
 * @throws ClientError `client.name` when the TPM's Name differs from the Name
 *   of `blob.publicArea` (the object is flushed); TpmError (e.g. TPM_RC_INTEGRITY
 *   for a blob of another parent); SessionError; TransportError.
 */
export async function load(tpm: Tpm, parent: Handle, blob: KeyBlob, options: LoadOptions = {}): Promise<LoadedKey> {
  checkBytes(blob?.privateBlob, 'privateBlob', 'load');
  checkBytes(options.authValue, 'authValue', 'load');
  const r = await tpm.run(Load, { parentHandle: parent }, { inPrivate: blob.privateBlob, inPublic: blob.publicArea }, options);
  return checkedKey(tpm, 'load', r.handles.objectHandle, blob.publicArea, r.params.name, options.authValue);
}

/**
 * Loads an object the TPM does not protect (Part 3 §12.3): a public key
 * alone (verify signatures, encrypt, a salt key), or a key in the clear with
 * its sensitive area (`options.sensitive`, e.g. from duplication.ts
 * externalObject). A key with a private part must not be fixedTPM or
 * fixedParent, and in a hierarchy other than NULL it must not be restricted
 * (TPM_RC_ATTRIBUTES).
 *
 * @throws ClientError `client.name` (the object is flushed); TpmError; TransportError.
 */
export async function loadExternal(tpm: Tpm, publicArea: TPMT_PUBLIC, options: LoadExternalOptions = {}): Promise<LoadedKey> {
  const sensitive = options.sensitive ?? null;
  const r = await tpm.run(
    LoadExternal,
    {},
    { inPrivate: sensitive, inPublic: publicArea, hierarchy: (options.hierarchy ?? TPM_RH.NULL) as typeof TPM_RH.NULL },
    options,
  );
  return checkedKey(tpm, 'loadExternal', r.handles.objectHandle, publicArea, r.params.name, sensitive?.authValue);
}

/**
 * Reads a loaded or persistent object's public area (Part 3 §12.4) and
 * checks that the TPM's Name is the Name of that area: this is how a client
 * gets an Entity for a persistent handle (an EK at 0x81010001) it did not create.
 * It does not say the area is the one expected: compare it with a template.
 *
 * @throws ClientError `client.name`; TpmError (TPM_RC_HANDLE for nothing there); TransportError.
 */
export async function readPublic(tpm: Tpm, handle: number, options: LoadOptions = {}): Promise<ObjectPublic> {
  checkBytes(options.authValue, 'authValue', 'readPublic');
  const r = await tpm.run(ReadPublic, { objectHandle: handle }, {}, options);
  const name = objectName(r.params.outPublic);
  if (!sameBytes(name, r.params.name)) {
    // Nothing to flush: ReadPublic creates nothing, and the object is the caller's.
    throw new ClientError('client.name', `readPublic: the TPM's Name for ${hex(handle)} differs from the Name of its public area`);
  }
  return withAuth({ handle, name, publicArea: r.params.outPublic, qualifiedName: r.params.qualifiedName }, options.authValue);
}

// ---------------------------------------------------------------------------
// Persistence, contexts, authorization

function checkPersistentHandle(operation: string, persistentHandle: number): void {
  if (!Number.isInteger(persistentHandle) || persistentHandle < HANDLE_RANGE.PERSISTENT[0] || persistentHandle > HANDLE_RANGE.PERSISTENT[1]) {
    throw new ClientError('client.argument', `${operation}: ${hex(persistentHandle)} is not a persistent handle (0x81000000–0x81ffffff)`);
  }
}

/**
 * Makes a loaded transient key persistent at `persistentHandle` with
 * EvictControl (Part 3 §28.5); the transient copy stays loaded. Owner keys
 * go in 0x81000000–0x817fffff, platform keys above (TPM_RC_RANGE otherwise).
 * Returns the persistent key (same Name and public area).
 *
 * @throws ClientError `client.argument` for a handle outside the persistent range; TpmError (TPM_RC_NV_DEFINED when taken); TransportError.
 */
export async function persist(tpm: Tpm, key: LoadedKey, persistentHandle: number, options: EvictOptions = {}): Promise<LoadedKey> {
  checkPersistentHandle('persist', persistentHandle);
  await tpm.run(EvictControl, { auth: options.auth ?? TPM_RH.OWNER, objectHandle: key }, { persistentHandle }, options);
  return withAuth({ handle: persistentHandle, name: key.name, publicArea: key.publicArea }, key.authValue);
}

/**
 * Removes a persistent object with EvictControl (Part 3 §28.5: objectHandle
 * and persistentHandle are the same handle).
 *
 * @throws ClientError `client.argument` for a non-persistent handle; TpmError; TransportError.
 */
export async function unpersist(tpm: Tpm, key: Handle, options: EvictOptions = {}): Promise<void> {
  const h = handleOf(key);
  checkPersistentHandle('unpersist', h);
  await tpm.run(EvictControl, { auth: options.auth ?? TPM_RH.OWNER, objectHandle: key }, { persistentHandle: h }, options);
}

/** Flushes a transient key (FlushContext, Part 3 §28.4): the same as `tpm.flush(key)`. */
export function flush(tpm: Tpm, key: Handle): Promise<void> {
  return tpm.flush(key);
}

/**
 * Saves a loaded key's context (Part 3 §28.2); the key stays loaded, so the
 * caller may flush it and bring it back later with `contextLoad`. The saved
 * context is only valid on this TPM, and for a key outside the NULL hierarchy
 * until the TPM is cleared (stClear keys until the next Startup(CLEAR)).
 *
 * @throws TpmError; TransportError.
 */
export async function contextSave(tpm: Tpm, key: LoadedKey, options: TpmRunOptions = {}): Promise<SavedKey> {
  const r = await tpm.run(ContextSave, { saveHandle: key.handle }, {}, options);
  return withAuth({ context: r.params.context, publicArea: key.publicArea, name: key.name }, key.authValue);
}

/**
 * Loads a saved key context (Part 3 §28.3) and checks with ReadPublic that the
 * object behind the new handle has the saved Name.
 *
 * @throws ClientError `client.name` when it does not (the object is flushed); TpmError (TPM_RC_INTEGRITY for a
 *   modified context); TransportError.
 */
export async function contextLoad(tpm: Tpm, saved: SavedKey, options: TpmRunOptions = {}): Promise<LoadedKey> {
  const r = await tpm.run(ContextLoad, {}, { context: saved.context }, options);
  const handle = r.handles.loadedHandle;
  let current: ObjectPublic;
  try {
    current = await readPublic(tpm, handle, options);
  } catch (e) {
    return flushAndThrow(tpm, handle, e);
  }
  if (!sameBytes(current.name, saved.name) || !sameBytes(objectName(saved.publicArea), saved.name)) {
    return flushAndThrow(tpm, handle, new ClientError('client.name', `contextLoad: the object loaded at ${hex(handle)} is not the saved key`));
  }
  return withAuth({ handle, name: saved.name, publicArea: saved.publicArea }, saved.authValue);
}

/**
 * Changes a loaded key's authValue (Part 3 §12.8): the TPM returns the key's
 * private part re-wrapped with `newAuth` under `parent`; the loaded copy keeps
 * the old authValue. Load the returned blob to use the new one. The key is
 * authorized with the ADMIN role (its authValue, unless adminWithPolicy is set).
 *
 * @throws TpmError; SessionError; TransportError.
 */
export async function objectChangeAuth(tpm: Tpm, key: LoadedKey, parent: Handle, newAuth: Uint8Array, options: TpmRunOptions = {}): Promise<KeyBlob> {
  checkBytes(newAuth, 'newAuth', 'objectChangeAuth');
  const r = await tpm.run(ObjectChangeAuth, { objectHandle: key, parentHandle: parent }, { newAuth }, options);
  return { privateBlob: r.params.outPrivate, publicArea: key.publicArea };
}

// ---------------------------------------------------------------------------
// Templates

/** Object attributes as named flags (Part 2 §8.3); unnamed flags are clear. */
export type ObjectAttributes = Partial<TPMA_OBJECT>;

export interface TemplateOptions {
  /** The key's nameAlg; SHA-256 by default. */
  readonly nameAlg?: TPMI_ALG_HASH;
  /** The key's authPolicy; empty by default. */
  readonly authPolicy?: Uint8Array;
  /**
   * Attributes changed from the template's defaults, e.g. `{ noDA: true }` or
   * `{ userWithAuth: false, adminWithPolicy: true }`.
   */
  readonly attributes?: ObjectAttributes;
}

/** fixedTPM | fixedParent | sensitiveDataOrigin | userWithAuth: tpm2_create's defaults for a key the TPM generates. */
const LEAF = { fixedTPM: true, fixedParent: true, sensitiveDataOrigin: true, userWithAuth: true } as const;

function area<T extends TPMT_PUBLIC['type']>(
  type: T,
  defaults: ObjectAttributes,
  o: TemplateOptions,
  parameters: Extract<TPMT_PUBLIC, { type: T }>['parameters'],
  unique: Extract<TPMT_PUBLIC, { type: T }>['unique'],
): TPMT_PUBLIC {
  return {
    type,
    nameAlg: o.nameAlg ?? TPM_ALG.SHA256,
    objectAttributes: TPMA_OBJECT.of({ ...defaults, ...o.attributes }),
    authPolicy: o.authPolicy ?? EMPTY,
    parameters,
    unique,
  } as TPMT_PUBLIC;
}

type RsaParameters = Extract<TPMT_PUBLIC, { type: typeof TPM_ALG.RSA }>['parameters'];
type EccParameters = Extract<TPMT_PUBLIC, { type: typeof TPM_ALG.ECC }>['parameters'];

export interface RsaTemplateOptions extends TemplateOptions {
  /** 2048 by default (1024, 3072 and 4096 where the TPM has them). */
  readonly keyBits?: RsaParameters['keyBits'];
  /** Public exponent; 0 (= 65537) by default. */
  readonly exponent?: number;
}

export interface EccTemplateOptions extends TemplateOptions {
  /** NIST P-256 by default. */
  readonly curveID?: TPMI_ECC_CURVE;
}

const NULL_SYM = { algorithm: TPM_ALG.NULL } as const;
const AES_128_CFB = { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB } as const;

/**
 * An RSA signing key. `scheme` fixes the scheme in the key (RSASSA or RSAPSS
 * with a hash), or leaves it NULL so each Sign names one; default RSASSA-SHA256.
 */
export function rsaSigningTemplate(options: RsaTemplateOptions & { readonly scheme?: RsaParameters['scheme'] } = {}): TPMT_PUBLIC {
  return area(
    TPM_ALG.RSA,
    { ...LEAF, sign: true },
    options,
    {
      symmetric: NULL_SYM,
      scheme: options.scheme ?? { scheme: TPM_ALG.RSASSA, details: { hashAlg: TPM_ALG.SHA256 } },
      keyBits: options.keyBits ?? 2048,
      exponent: options.exponent ?? 0,
    },
    EMPTY,
  );
}

/** An RSA decryption key for RSA_Decrypt: scheme NULL (named per call) by default, or OAEP/RSAES fixed in the key. */
export function rsaDecryptTemplate(options: RsaTemplateOptions & { readonly scheme?: RsaParameters['scheme'] } = {}): TPMT_PUBLIC {
  return area(
    TPM_ALG.RSA,
    { ...LEAF, decrypt: true },
    options,
    { symmetric: NULL_SYM, scheme: options.scheme ?? { scheme: TPM_ALG.NULL }, keyBits: options.keyBits ?? 2048, exponent: options.exponent ?? 0 },
    EMPTY,
  );
}

/** An ECC signing key: ECDSA-SHA256 on P-256 by default, or another scheme / NULL. */
export function eccSigningTemplate(options: EccTemplateOptions & { readonly scheme?: EccParameters['scheme'] } = {}): TPMT_PUBLIC {
  return area(
    TPM_ALG.ECC,
    { ...LEAF, sign: true },
    options,
    {
      symmetric: NULL_SYM,
      scheme: options.scheme ?? { scheme: TPM_ALG.ECDSA, details: { hashAlg: TPM_ALG.SHA256 } },
      curveID: options.curveID ?? TPM_ECC.NIST_P256,
      kdf: { scheme: TPM_ALG.NULL },
    },
    { x: EMPTY, y: EMPTY },
  );
}

/** An ECC key-agreement key for ECDH_ZGen / ECDH_KeyGen (decrypt set, scheme ECDH-SHA256 by default). */
export function eccEcdhTemplate(options: EccTemplateOptions & { readonly scheme?: EccParameters['scheme'] } = {}): TPMT_PUBLIC {
  return area(
    TPM_ALG.ECC,
    { ...LEAF, decrypt: true },
    options,
    {
      symmetric: NULL_SYM,
      scheme: options.scheme ?? { scheme: TPM_ALG.ECDH, details: { hashAlg: TPM_ALG.SHA256 } },
      curveID: options.curveID ?? TPM_ECC.NIST_P256,
      kdf: { scheme: TPM_ALG.NULL },
    },
    { x: EMPTY, y: EMPTY },
  );
}

/**
 * An RSA storage key (a parent): restricted | decrypt with AES-128-CFB, as the
 * Provisioning Guidance SRK but with the usual leaf defaults (no noDA).
 */
export function rsaStorageTemplate(options: RsaTemplateOptions & { readonly symmetric?: RsaParameters['symmetric'] } = {}): TPMT_PUBLIC {
  return area(
    TPM_ALG.RSA,
    { ...LEAF, restricted: true, decrypt: true },
    options,
    { symmetric: options.symmetric ?? AES_128_CFB, scheme: { scheme: TPM_ALG.NULL }, keyBits: options.keyBits ?? 2048, exponent: options.exponent ?? 0 },
    EMPTY,
  );
}

/** An ECC storage key (a parent): restricted | decrypt with AES-128-CFB, P-256 by default. */
export function eccStorageTemplate(options: EccTemplateOptions & { readonly symmetric?: EccParameters['symmetric'] } = {}): TPMT_PUBLIC {
  return area(
    TPM_ALG.ECC,
    { ...LEAF, restricted: true, decrypt: true },
    options,
    { symmetric: options.symmetric ?? AES_128_CFB, scheme: { scheme: TPM_ALG.NULL }, curveID: options.curveID ?? TPM_ECC.NIST_P256, kdf: { scheme: TPM_ALG.NULL } },
    { x: EMPTY, y: EMPTY },
  );
}

/** An HMAC key (keyedHash with the HMAC scheme, sign set) for HMAC and HMAC_Start; SHA-256 by default. */
export function hmacKeyTemplate(options: TemplateOptions & { readonly hashAlg?: TPMI_ALG_HASH } = {}): TPMT_PUBLIC {
  return area(TPM_ALG.KEYEDHASH, { ...LEAF, sign: true }, options, { scheme: { scheme: TPM_ALG.HMAC, details: { hashAlg: options.hashAlg ?? TPM_ALG.SHA256 } } }, EMPTY);
}

/**
 * An AES key (symcipher) for EncryptDecrypt: decrypt and sign both set, so it
 * works in both directions (Part 3 §15.2: decrypt needs `decrypt`, encrypt
 * needs `sign`); 128-bit CFB by default. `mode` NULL lets each call choose.
 */
export function aesKeyTemplate(options: TemplateOptions & { readonly keyBits?: 128 | 192 | 256; readonly mode?: TPMI_ALG_SYM_MODE | typeof TPM_ALG.NULL } = {}): TPMT_PUBLIC {
  return area(
    TPM_ALG.SYMCIPHER,
    { ...LEAF, decrypt: true, sign: true },
    options,
    { sym: { algorithm: TPM_ALG.AES, keyBits: options.keyBits ?? 128, mode: options.mode ?? TPM_ALG.CFB } },
    EMPTY,
  );
}
