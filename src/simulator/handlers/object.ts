/**
 * Object commands: Part 3 §24.1 CreatePrimary, §12.1 Create, §12.2 Load,
 * §12.4 ReadPublic, §12.7 Unseal, §12.8 ObjectChangeAuth, §28.4
 * FlushContext (objects). Loaded objects live in the engine's volatile
 * ObjectTable (objects.ts); persistent ones (EvictControl) in
 * `engine.state.persistentObjects`, and `findObject` answers for both.
 */
import { Create, CreatePrimary, FlushContext, Load, ObjectChangeAuth, ReadPublic, Unseal } from '../../tpm/commands/index.js';
import { equalBytes } from '../../tpm/bytes.js';
import { trimAuthValue } from '../../tpm/session-crypto.js';
import { TPM_ALG, TPM_HT, TPM_ST } from '../../tpm/constants.js';
import { digestSize, hash, isHashAlg } from '../../tpm/crypto/hash.js';
import { handleName, objectName, qualifiedName } from '../../tpm/names.js';
import { pcrIndices } from '../../tpm/pcr.js';
import { TrustrootError } from '../../tpm/errors.js';
import { TPM_RC, TpmError, rcForHandle, rcForParameter } from '../../tpm/rc.js';
import { keyFromSensitive, produceOuterWrap, unwrapOuter, type OuterWrapParams } from '../../tpm/duplication.js';
import { decode, encode } from '../../tpm/wire/codec.js';
import {
  TPMA_LOCALITY,
  TPMS_CREATION_DATA,
  TPM2B_SENSITIVE,
  TPMS_SENSITIVE_CREATE,
  TPMT_PUBLIC,
  TPMT_SENSITIVE,
  type TPML_PCR_SELECTION,
  type TPMT_SYM_DEF_OBJECT,
  type TPMS_PCR_SELECTION,
} from '../../tpm/types/index.js';
import type { TpmEngine } from '../engine.js';
import { derivePrimaryObject, type DerivedObject } from '../keygen.js';
import type { PersistentObjectState } from '../state.js';
import { creationTicketDigest, hierarchyKey } from '../tickets.js';
import type { LoadedObject } from '../objects.js';
import { isImplementedHash } from '../sequences.js';
import { handler, ok } from './handler.js';

const P_SENSITIVE = 1;
const P_PUBLIC = 2;

/**
 * The attribute rules a template must follow (Part 1 §27.2, Part 2 §8.3.3,
 * the reference's PublicAttributesValidation / CreateChecks), the cheap ones.
 * `creating` is 'primary' for CreatePrimary and CreateLoaded under a
 * hierarchy: a primary object may take inSensitive.data with
 * sensitiveDataOrigin SET, as extra input to its derivation from the seed
 * (Part 3 §24.1; the reference's CreateChecks refuses it for ordinary objects
 * only, and libtpms accepts it).
 */
export function checkTemplate(t: TPMT_PUBLIC, data: Uint8Array, userAuth: Uint8Array, creating: boolean | 'primary' = true, nullNameAlg = false): void {
  const a = t.objectAttributes;
  // Data beside sensitiveDataOrigin: refused for an ordinary object, derivation input for a primary.
  const dataWithOrigin = a.sensitiveDataOrigin && data.length !== 0 && creating !== 'primary';
  const bad = (rc: number, p = P_PUBLIC): never => {
    throw new TpmError(rcForParameter(rc, p));
  };
  // Only LoadExternal takes an object without a Name (nullNameAlg); its "digest size" is then 0.
  const nameless = nullNameAlg && t.nameAlg === TPM_ALG.NULL;
  // A hash this TPM does not implement (SHA-3, SM3) is TPM_RC_HASH too, as libtpms unmarshals TPMI_ALG_HASH.
  if (!nameless && (t.nameAlg === TPM_ALG.NULL || !isHashAlg(t.nameAlg) || !isImplementedHash(t.nameAlg))) bad(TPM_RC.HASH);
  const nameDigest = nameless ? 0 : digestSize(t.nameAlg);
  // Part 1 §19.6.4 (AdjustAuthSize): an authValue no longer than the nameAlg's digest.
  if (userAuth.length > nameDigest) bad(TPM_RC.SIZE, P_SENSITIVE);
  // An authPolicy is empty or a digest of the nameAlg (TPM_RC_SIZE). A nameless object has no policy hash to
  // compare with; libtpms ignores its authPolicy (a policy session could never match it).
  if (!nameless && t.authPolicy.length !== 0 && t.authPolicy.length !== nameDigest) bad(TPM_RC.SIZE);
  // Part 2 §8.3.3.1: fixedTPM needs fixedParent; a restricted key is a signer or a decrypter, not both.
  if (a.fixedTPM && !a.fixedParent) bad(TPM_RC.ATTRIBUTES);
  if (a.restricted && a.sign && a.decrypt) bad(TPM_RC.ATTRIBUTES);
  // The reference's CreateChecks: sensitiveDataOrigin CLEAR says the caller brings the data, so there must be some
  // (a keyed hash or cipher without a key, a sealed object of nothing: TPM_RC_ATTRIBUTES, as libtpms).
  if (creating !== false && !a.sensitiveDataOrigin && data.length === 0) bad(TPM_RC.ATTRIBUTES);
  const asymmetric = t.type === TPM_ALG.RSA || t.type === TPM_ALG.ECC;
  if (asymmetric) {
    // An imported key (Load) may come from outside the TPM; one created here never does.
    if (creating && !a.sensitiveDataOrigin) bad(TPM_RC.ATTRIBUTES);
    // Part 3 §12.1: the TPM makes an asymmetric key's private part itself; caller's data contradicts
    // sensitiveDataOrigin (TPM_RC_ATTRIBUTES on inPublic, as libtpms answers Create).
    if (dataWithOrigin) bad(TPM_RC.ATTRIBUTES);
    if (data.length !== 0 && !a.sensitiveDataOrigin) bad(TPM_RC.SIZE, P_SENSITIVE);
    const p = t.parameters;
    const storage = a.restricted && a.decrypt;
    // Part 2 §12.2.3.5: a storage parent names its children's symmetric cipher and no asymmetric scheme.
    if (storage && p.symmetric.algorithm === TPM_ALG.NULL) bad(TPM_RC.SYMMETRIC);
    if (!storage && p.symmetric.algorithm !== TPM_ALG.NULL) bad(TPM_RC.SYMMETRIC);
    if (storage && p.scheme.scheme !== TPM_ALG.NULL) bad(TPM_RC.SCHEME);
    // A restricted signer signs with exactly one scheme.
    if (a.restricted && a.sign && p.scheme.scheme === TPM_ALG.NULL) bad(TPM_RC.SCHEME);
    if (a.sign !== a.decrypt && p.scheme.scheme !== TPM_ALG.NULL && isSigningScheme(p.scheme.scheme) !== a.sign) bad(TPM_RC.SCHEME);
  } else {
    // Part 3 §12.1: the caller's data and sensitiveDataOrigin exclude each other; sealed data must come from the caller.
    if (dataWithOrigin) bad(TPM_RC.ATTRIBUTES);
    if (creating && t.type === TPM_ALG.KEYEDHASH && !a.sign && !a.decrypt && a.sensitiveDataOrigin) bad(TPM_RC.ATTRIBUTES);
    // For a symmetric key `sign` means encrypt (Part 2 §8.3.3.1.3): an EncryptDecrypt key has both; a restricted
    // one is a storage parent, which only decrypts.
    if (t.type === TPM_ALG.SYMCIPHER && a.restricted && a.sign) bad(TPM_RC.ATTRIBUTES);
    // A restricted symmetric key (storage or derivation parent) whose key the caller supplied could be known
    // outside the TPM, so it may not claim fixedTPM or fixedParent (the reference's CreateChecks).
    if (creating && a.restricted && !a.sensitiveDataOrigin && (a.fixedTPM || a.fixedParent)) bad(TPM_RC.ATTRIBUTES);
  }
}

function isSigningScheme(s: number): boolean {
  return s === TPM_ALG.RSASSA || s === TPM_ALG.RSAPSS || s === TPM_ALG.ECDSA || s === TPM_ALG.ECDAA || s === TPM_ALG.SM2 || s === TPM_ALG.ECSCHNORR || s === TPM_ALG.HMAC;
}

/** H_nameAlg of the selected PCR values in selection order (Part 3 §24.1, FillInCreationData → PCRComputeCurrentDigest). */
function pcrDigest(engine: TpmEngine, alg: number, selections: readonly TPMS_PCR_SELECTION[]): Uint8Array {
  const values: Uint8Array[] = [];
  for (const sel of selections) {
    const bank = engine.volatile.pcrs.get(sel.hash);
    if (bank === undefined) continue; // unallocated banks contribute nothing
    for (const i of pcrIndices(sel)) if (i < bank.length) values.push(bank[i]!);
  }
  return hash(alg, ...values);
}

function localityAttr(locality: number): TPMA_LOCALITY {
  if (locality >= 32) return TPMA_LOCALITY.fromWord(locality);
  return TPMA_LOCALITY.fromWord(1 << locality);
}

/** The creation data, its hash and ticket (Part 3 §12.1 / §24.1; FillInCreationData, TicketComputeCreation). */
export function creationOutputs(
  engine: TpmEngine,
  locality: number,
  object: { nameAlg: number; name: Uint8Array; hierarchy: number },
  parent: { nameAlg: number; name: Uint8Array; qualifiedName: Uint8Array },
  creationPCR: TPML_PCR_SELECTION,
  outsideInfo: Uint8Array,
) {
  const creationData = {
    pcrSelect: creationPCR,
    pcrDigest: pcrDigest(engine, object.nameAlg, creationPCR),
    locality: localityAttr(locality),
    parentNameAlg: parent.nameAlg,
    parentName: parent.name,
    parentQualifiedName: parent.qualifiedName,
    outsideInfo,
  } as TPMS_CREATION_DATA;
  const creationHash = hash(object.nameAlg, encode(TPMS_CREATION_DATA, creationData));
  const creationTicket = { tag: TPM_ST.CREATION, hierarchy: object.hierarchy, digest: creationTicketDigest(engine, object.hierarchy, object.name, creationHash) };
  return { creationData, creationHash, creationTicket };
}

/**
 * Primary objects already derived by this engine, newest last: CreatePrimary
 * is deterministic (Part 1 §27.3) but an RSA derivation costs a prime search,
 * and tpm2-tools flows create the same EK / SRK again and again. The key is a
 * digest of everything the derivation reads (seed, proofs, template,
 * sensitive), so a changed seed (Clear) or template never hits a stale entry.
 * Promises are kept so that two concurrent CreatePrimary share one derivation.
 */
const PRIMARY_CACHE_SIZE = 6;
const primaryCaches = new WeakMap<TpmEngine, Map<string, Promise<DerivedObject>>>();

function primaryCacheKey(seed: Uint8Array, proofs: readonly Uint8Array[], template: TPMT_PUBLIC, sensitive: TPMS_SENSITIVE_CREATE): string {
  // Every part is fixed-size or self-delimiting (seeds, marshaled structures), so the concatenation is unambiguous.
  const digest = hash(TPM_ALG.SHA256, Uint8Array.of(proofs.length), seed, ...proofs, encode(TPMT_PUBLIC, template), encode(TPMS_SENSITIVE_CREATE, sensitive));
  return Buffer.from(digest).toString('base64');
}

/**
 * The primary object of `hierarchy` for this template and sensitive data
 * (keygen.ts derivePrimaryObject), from the engine's cache when it was
 * derived before. Derivation errors become parameter errors of
 * CreatePrimary / CreateLoaded (inSensitive 1, inPublic 2).
 */
export async function derivePrimary(engine: TpmEngine, hierarchy: number, template: TPMT_PUBLIC, sensitive: TPMS_SENSITIVE_CREATE): Promise<DerivedObject> {
  const h = hierarchyKey(hierarchy);
  const proofs = engine.state.proofs;
  // keygen.ts: an endorsement primary's seedValue also depends on shProof then ehProof.
  const stir = h === 'endorsement' ? [proofs.owner, proofs.endorsement] : [];
  const seed = engine.state.seeds[h];
  let cache = primaryCaches.get(engine);
  if (cache === undefined) {
    cache = new Map();
    primaryCaches.set(engine, cache);
  }
  const key = primaryCacheKey(seed, stir, template, sensitive);
  let pending = cache.get(key);
  if (pending === undefined) {
    pending = derivePrimaryObject({ seed, template, sensitive, proofs: stir });
    cache.set(key, pending);
    if (cache.size > PRIMARY_CACHE_SIZE) cache.delete(cache.keys().next().value!);
    pending.catch(() => cache.delete(key));
  } else {
    // Most recently used last.
    cache.delete(key);
    cache.set(key, pending);
  }
  try {
    return await pending;
  } catch (e) {
    if (e instanceof TpmError && e.parameter === undefined && e.handle === undefined) {
      throw new TpmError(rcForParameter(e.baseCode, e.baseCode === TPM_RC.SIZE ? P_SENSITIVE : P_PUBLIC));
    }
    throw e;
  }
}

/** A primary object of `hierarchy` as a LoadedObject (its parent is the hierarchy: QN = H(handle ‖ Name)). */
export function primaryLoadedObject(hierarchy: number, derived: DerivedObject): LoadedObject {
  return {
    publicArea: derived.publicArea,
    sensitive: derived.sensitive,
    name: derived.name,
    qualifiedName: qualifiedName(handleName(hierarchy), derived.name),
    hierarchy,
    primary: true,
    key: derived.key,
  };
}

/** An ordinary object loaded under `parent` (Load, CreateLoaded, a derived object): its QN extends the parent's (Part 1 §16). */
export function childLoadedObject(parent: LoadedObject, o: Pick<LoadedObject, 'publicArea' | 'sensitive' | 'name' | 'key'>): LoadedObject {
  return { publicArea: o.publicArea, sensitive: o.sensitive, name: o.name, qualifiedName: qualifiedName(parent.qualifiedName, o.name), hierarchy: parent.hierarchy, primary: false, key: o.key };
}

export const createPrimaryHandler = handler(CreatePrimary, async ({ engine, locality }, { primaryHandle }, params) => {
  const template = params.inPublic;
  const { userAuth, data } = params.inSensitive;
  checkTemplate(template, data, userAuth, 'primary');
  // The reference finds a free slot before doing any work (TPM_RC_OBJECT_MEMORY).
  if (engine.volatile.objects.count >= engine.volatile.objects.capacity) throw new TpmError(TPM_RC.OBJECT_MEMORY);
  const derived = await derivePrimary(engine, primaryHandle, template, { userAuth, data });
  const parentName = handleName(primaryHandle);
  // A primary's parent is its hierarchy: no nameAlg, the handle as both Names (FillInCreationData).
  const creation = creationOutputs(
    engine,
    locality,
    { nameAlg: template.nameAlg, name: derived.name, hierarchy: primaryHandle },
    { nameAlg: TPM_ALG.NULL, name: parentName, qualifiedName: parentName },
    params.creationPCR,
    params.outsideInfo,
  );
  const objectHandle = engine.volatile.objects.load(primaryLoadedObject(primaryHandle, derived));
  return {
    handles: { objectHandle },
    params: { outPublic: derived.publicArea, ...creation, name: derived.name },
  } as never;
});

/** LoadedObjects rebuilt from persistent entries, so a persistent key is decoded once, not per command. */
const persistentCache = new WeakMap<PersistentObjectState, LoadedObject>();

/** A persistent entry as a LoadedObject (decoded areas, node:crypto key); a primary when its QN is H(hierarchy ‖ Name). */
function persistentLoadedObject(p: PersistentObjectState): LoadedObject {
  const publicArea = decode(TPMT_PUBLIC, p.public);
  const sensitive = decode(TPMT_SENSITIVE, p.sensitive);
  return {
    publicArea,
    sensitive,
    name: p.name,
    qualifiedName: p.qualifiedName,
    hierarchy: p.hierarchy,
    primary: equalBytes(qualifiedName(handleName(p.hierarchy), p.name), p.qualifiedName),
    key: keyFromSensitive(publicArea, sensitive),
  };
}

/**
 * The object at a transient handle (the ObjectTable) or a persistent one
 * (state.persistentObjects, Part 3 §28.5), or undefined. A persistent object is
 * usable wherever a loaded one is (Part 1 §30.4).
 */
export function findObject(engine: TpmEngine, h: number): LoadedObject | undefined {
  if (h >>> 24 === TPM_HT.PERSISTENT) {
    const p = engine.state.persistentObjects.find((x) => x.handle === h);
    if (p === undefined) return undefined;
    let o = persistentCache.get(p);
    if (o === undefined) {
      o = persistentLoadedObject(p);
      persistentCache.set(p, o);
    }
    return o;
  }
  return engine.volatile.objects.get(h);
}

/** Whether a transient handle holds a hash, HMAC or event sequence (an object slot that is no object). */
export function isSequence(engine: TpmEngine, h: number): boolean {
  return engine.volatile.objects.getSequence(h) !== undefined;
}

export const readPublicHandler = handler(ReadPublic, ({ engine }, { objectHandle }) => {
  // Part 3 §12.4: a sequence has no public area (libtpms: TPM_RC_SEQUENCE, no handle number).
  if (isSequence(engine, objectHandle)) throw new TpmError(TPM_RC.SEQUENCE);
  const o = findObject(engine, objectHandle);
  if (o === undefined) throw new TpmError(rcForHandle(TPM_RC.HANDLE, 1));
  return ok<typeof ReadPublic>({ outPublic: o.publicArea, name: o.name, qualifiedName: o.qualifiedName });
});

/** Part 3 §28.4: the handle travels as a parameter; nothing loaded there is TPM_RC_HANDLE on parameter 1. */
export const flushContextHandler = handler(FlushContext, ({ engine }, _h, { flushHandle }) => {
  if (flushHandle >>> 24 === TPM_HT.TRANSIENT && engine.volatile.objects.flush(flushHandle)) return ok<typeof FlushContext>({});
  // Part 3 §28.4: a session, loaded or saved, ends (its saved context can no longer be loaded).
  if (flushHandle >>> 24 !== TPM_HT.TRANSIENT && engine.volatile.sessions.remove(flushHandle)) return ok<typeof FlushContext>({});
  throw new TpmError(rcForParameter(TPM_RC.HANDLE, 1));
});

// ---------------------------------------------------------------------------
// Create, Load: ordinary objects under a storage parent

/** A loaded storage parent (restricted decrypt, not sign) or TPM_RC_TYPE on handle 1 (ObjectIsStorage). */
export function storageParent(engine: TpmEngine, h: number): LoadedObject {
  if (isSequence(engine, h)) throw new TpmError(rcForHandle(TPM_RC.TYPE, 1));
  const parent = findObject(engine, h);
  if (parent === undefined) throw new TpmError(rcForHandle(TPM_RC.HANDLE, 1));
  const a = parent.publicArea.objectAttributes;
  // A public-only parent has no seedValue to wrap its children with.
  if (!a.restricted || !a.decrypt || a.sign || parent.publicArea.type === TPM_ALG.KEYEDHASH || parent.publicOnly === true) throw new TpmError(rcForHandle(TPM_RC.TYPE, 1));
  return parent;
}

function parentSymmetric(parent: TPMT_PUBLIC): TPMT_SYM_DEF_OBJECT {
  if (parent.type === TPM_ALG.RSA || parent.type === TPM_ALG.ECC) return parent.parameters.symmetric;
  if (parent.type === TPM_ALG.SYMCIPHER) return parent.parameters.sym as TPMT_SYM_DEF_OBJECT;
  throw new TpmError(rcForHandle(TPM_RC.TYPE, 1));
}

/** Part 1 §23.3.2: the outer wrapper of a child's private area: the parent's seedValue, nameAlg and symmetric, the child's Name. */
export function privateWrap(parent: LoadedObject, childName: Uint8Array): OuterWrapParams {
  return { hashAlg: parent.publicArea.nameAlg, symmetric: parentSymmetric(parent.publicArea), seed: parent.sensitive.seedValue, name: childName };
}

/** Part 1 §27.2: a child may be fixedTPM only under a fixedTPM parent. */
export function checkUnderParent(parent: LoadedObject, t: TPMT_PUBLIC, p: number): void {
  const a = t.objectAttributes;
  // Under a fixedTPM parent, fixedParent and fixedTPM go together (a child that cannot leave its parent cannot
  // leave the TPM); under any other parent nothing is fixedTPM (the reference's CreateChecks).
  const bad = parent.publicArea.objectAttributes.fixedTPM ? a.fixedParent !== a.fixedTPM : a.fixedTPM;
  if (bad) throw new TpmError(rcForParameter(TPM_RC.ATTRIBUTES, p));
}

/**
 * An ordinary object under `parent` (Part 3 §12.1): the template's checks, a
 * key from the RNG (the primary derivation over a fresh random seed), and
 * its private area wrapped under the parent with a fresh IV. Create and
 * CreateLoaded share it; inSensitive is parameter 1, inPublic parameter 2.
 */
export async function createOrdinary(
  engine: TpmEngine,
  parent: LoadedObject,
  template: TPMT_PUBLIC,
  sensitive: TPMS_SENSITIVE_CREATE,
): Promise<{ derived: DerivedObject; outPrivate: Uint8Array }> {
  checkTemplate(template, sensitive.data, sensitive.userAuth);
  checkUnderParent(parent, template, P_PUBLIC);
  let derived;
  try {
    derived = await derivePrimaryObject({ seed: engine.random(64), template, sensitive });
  } catch (e) {
    if (e instanceof TpmError && e.parameter === undefined && e.handle === undefined) {
      throw new TpmError(rcForParameter(e.baseCode, e.baseCode === TPM_RC.SIZE ? P_SENSITIVE : P_PUBLIC));
    }
    throw e;
  }
  const outPrivate = produceOuterWrap(privateWrap(parent, derived.name), encode(TPM2B_SENSITIVE, derived.sensitive), { iv: engine.random(16) });
  return { derived, outPrivate };
}

export const createHandler = handler(Create, async ({ engine, locality }, { parentHandle }, params) => {
  const parent = storageParent(engine, parentHandle);
  const template = params.inPublic;
  const { derived, outPrivate } = await createOrdinary(engine, parent, template, params.inSensitive);
  const creation = creationOutputs(
    engine,
    locality,
    { nameAlg: template.nameAlg, name: derived.name, hierarchy: parent.hierarchy },
    { nameAlg: parent.publicArea.nameAlg, name: parent.name, qualifiedName: parent.qualifiedName },
    params.creationPCR,
    params.outsideInfo,
  );
  return ok<typeof Create>({ outPrivate, outPublic: derived.publicArea, ...creation } as never);
});

export const loadHandler = handler(Load, ({ engine }, { parentHandle }, { inPrivate, inPublic }) => {
  const parent = storageParent(engine, parentHandle);
  // Part 3 §12.2: the public area obeys the same rules as at creation (checked before the slot and the blob).
  checkTemplate(inPublic, new Uint8Array(0), new Uint8Array(0), false);
  checkUnderParent(parent, inPublic, 2);
  if (engine.volatile.objects.count >= engine.volatile.objects.capacity) throw new TpmError(TPM_RC.OBJECT_MEMORY);
  const name = objectName(inPublic);
  let inner: Uint8Array;
  try {
    inner = unwrapOuter(privateWrap(parent, name), inPrivate, { useIV: true });
  } catch (e) {
    // A wrong parent, a changed public area (another Name) or a changed blob: TPM_RC_INTEGRITY on inPrivate.
    if (e instanceof TrustrootError && e.code === 'crypto.integrity') throw new TpmError(rcForParameter(TPM_RC.INTEGRITY, 1));
    throw new TpmError(rcForParameter(TPM_RC.VALUE, 1));
  }
  let sensitive: TPMT_SENSITIVE;
  try {
    sensitive = decode(TPM2B_SENSITIVE, inner);
  } catch {
    throw new TpmError(rcForParameter(TPM_RC.INTEGRITY, 1));
  }
  if (sensitive.sensitiveType !== inPublic.type) throw new TpmError(rcForParameter(TPM_RC.TYPE, 2));
  let key;
  try {
    key = keyFromSensitive(inPublic, sensitive);
  } catch {
    // The reference's CryptValidateKeys: the sensitive area does not belong to this public area. libtpms answers
    // ObjectLoad's TPM_RC_BINDING without a parameter number (seen for LoadExternal and Import, import.test.ts).
    throw new TpmError(TPM_RC.BINDING);
  }
  const objectHandle = engine.volatile.objects.load(childLoadedObject(parent, { publicArea: inPublic, sensitive, name, key }));
  return { handles: { objectHandle }, params: { name } } as never;
});


// ---------------------------------------------------------------------------
// Unseal, ObjectChangeAuth

/** Part 3 §12.7: the data of a sealed data object (KEYEDHASH, neither sign, decrypt nor restricted). */
export const unsealHandler = handler(Unseal, ({ engine }, { itemHandle }) => {
  if (isSequence(engine, itemHandle)) throw new TpmError(rcForHandle(TPM_RC.TYPE, 1));
  const o = findObject(engine, itemHandle);
  if (o === undefined) throw new TpmError(rcForHandle(TPM_RC.HANDLE, 1));
  if (o.publicArea.type !== TPM_ALG.KEYEDHASH) throw new TpmError(rcForHandle(TPM_RC.TYPE, 1));
  const a = o.publicArea.objectAttributes;
  if (a.sign || a.decrypt || a.restricted) throw new TpmError(rcForHandle(TPM_RC.ATTRIBUTES, 1));
  // A public-only object has no data; the reference refuses its authorization (no authValue available).
  if (o.publicOnly === true) throw new TpmError(TPM_RC.AUTH_UNAVAILABLE);
  return ok<typeof Unseal>({ outData: o.sensitive.sensitive });
});

/**
 * Part 3 §12.8: the object's private area again, with a new authValue,
 * wrapped under its parent. The loaded object keeps its old authValue; the
 * caller loads the new blob. parentHandle must be the object's parent:
 * QN(parent) ‖ Name gives the object's QN, else TPM_RC_TYPE on handle 2.
 */
export const objectChangeAuthHandler = handler(ObjectChangeAuth, ({ engine }, { objectHandle, parentHandle }, { newAuth }) => {
  if (isSequence(engine, objectHandle)) throw new TpmError(rcForHandle(TPM_RC.TYPE, 1));
  const object = findObject(engine, objectHandle);
  if (object === undefined) throw new TpmError(rcForHandle(TPM_RC.HANDLE, 1));
  const parent = findObject(engine, parentHandle);
  if (parent === undefined) throw new TpmError(rcForHandle(TPM_RC.HANDLE, 2));
  const authValue = trimAuthValue(newAuth);
  if (authValue.length > digestSize(object.publicArea.nameAlg)) throw new TpmError(rcForParameter(TPM_RC.SIZE, 1));
  if (object.primary || object.name.length < 2 || parent.publicOnly === true || !equalBytes(qualifiedName(parent.qualifiedName, object.name), object.qualifiedName)) {
    throw new TpmError(rcForHandle(TPM_RC.TYPE, 2));
  }
  let wrap: OuterWrapParams;
  try {
    wrap = privateWrap(parent, object.name);
  } catch {
    throw new TpmError(rcForHandle(TPM_RC.TYPE, 2));
  }
  const sensitive: TPMT_SENSITIVE = { ...object.sensitive, authValue };
  const outPrivate = produceOuterWrap(wrap, encode(TPM2B_SENSITIVE, sensitive), { iv: engine.random(16) });
  return ok<typeof ObjectChangeAuth>({ outPrivate });
});
