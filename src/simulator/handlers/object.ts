/**
 * Object commands: Part 3 §24.1 CreatePrimary, §12.4 ReadPublic, §28.4
 * FlushContext (objects), §20.2 Sign. Loaded objects live in the engine's
 * volatile ObjectTable (objects.ts).
 */
import { Create, CreatePrimary, FlushContext, Load, ReadPublic } from '../../tpm/commands/index.js';
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
  TPMT_PUBLIC,
  type TPML_PCR_SELECTION,
  type TPMT_SYM_DEF_OBJECT,
  type TPMS_PCR_SELECTION,
  type TPMT_SENSITIVE,
} from '../../tpm/types/index.js';
import type { TpmEngine } from '../engine.js';
import { derivePrimaryObject } from '../keygen.js';
import { creationTicketDigest, hierarchyKey } from '../tickets.js';
import type { LoadedObject } from '../objects.js';
import { handler, ok } from './handler.js';

const P_SENSITIVE = 1;
const P_PUBLIC = 2;

/**
 * The attribute rules a template must follow (Part 1 §27.2, Part 2 §8.3.3,
 * the reference's PublicAttributesValidation / CreateChecks), the cheap ones.
 */
function checkTemplate(t: TPMT_PUBLIC, data: Uint8Array, userAuth: Uint8Array, creating = true): void {
  const a = t.objectAttributes;
  const bad = (rc: number, p = P_PUBLIC): never => {
    throw new TpmError(rcForParameter(rc, p));
  };
  if (t.nameAlg === TPM_ALG.NULL || !isHashAlg(t.nameAlg)) bad(TPM_RC.HASH);
  // Part 1 §19.6.4 (AdjustAuthSize): an authValue no longer than the nameAlg's digest.
  if (userAuth.length > digestSize(t.nameAlg)) bad(TPM_RC.SIZE, P_SENSITIVE);
  // An authPolicy is empty or a digest of the nameAlg (TPM_RC_SIZE).
  if (t.authPolicy.length !== 0 && t.authPolicy.length !== digestSize(t.nameAlg)) bad(TPM_RC.SIZE);
  // Part 2 §8.3.3.1: fixedTPM needs fixedParent; a restricted key is a signer or a decrypter, not both.
  if (a.fixedTPM && !a.fixedParent) bad(TPM_RC.ATTRIBUTES);
  if (a.restricted && a.sign && a.decrypt) bad(TPM_RC.ATTRIBUTES);
  const asymmetric = t.type === TPM_ALG.RSA || t.type === TPM_ALG.ECC;
  if (asymmetric) {
    // Part 3 §12.1: the TPM makes an asymmetric key's private part itself.
    if (data.length !== 0) bad(TPM_RC.SIZE, P_SENSITIVE);
    // An imported key (Load) may come from outside the TPM; one created here never does.
    if (creating && !a.sensitiveDataOrigin) bad(TPM_RC.ATTRIBUTES);
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
    if (a.sensitiveDataOrigin && data.length !== 0) bad(TPM_RC.ATTRIBUTES);
    if (creating && t.type === TPM_ALG.KEYEDHASH && !a.sign && !a.decrypt && a.sensitiveDataOrigin) bad(TPM_RC.ATTRIBUTES);
    if (t.type === TPM_ALG.SYMCIPHER && a.sign) bad(TPM_RC.ATTRIBUTES);
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
function creationOutputs(
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

export const createPrimaryHandler = handler(CreatePrimary, async ({ engine, locality }, { primaryHandle }, params) => {
  const template = params.inPublic;
  const { userAuth, data } = params.inSensitive;
  checkTemplate(template, data, userAuth);
  // The reference finds a free slot before doing any work (TPM_RC_OBJECT_MEMORY).
  if (engine.volatile.objects.count >= engine.volatile.objects.capacity) throw new TpmError(TPM_RC.OBJECT_MEMORY);
  const h = hierarchyKey(primaryHandle);
  const proofs = engine.state.proofs;
  let derived;
  try {
    derived = await derivePrimaryObject({
      seed: engine.state.seeds[h],
      template,
      sensitive: { userAuth, data },
      // keygen.ts: an endorsement primary's seedValue also depends on shProof then ehProof.
      proofs: h === 'endorsement' ? [proofs.owner, proofs.endorsement] : [],
    });
  } catch (e) {
    if (e instanceof TpmError && e.parameter === undefined && e.handle === undefined) {
      throw new TpmError(rcForParameter(e.baseCode, e.baseCode === TPM_RC.SIZE ? P_SENSITIVE : P_PUBLIC));
    }
    throw e;
  }
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
  const object: LoadedObject = {
    publicArea: derived.publicArea,
    sensitive: derived.sensitive,
    name: derived.name,
    qualifiedName: qualifiedName(parentName, derived.name),
    hierarchy: primaryHandle,
    primary: true,
    key: derived.key,
  };
  const objectHandle = engine.volatile.objects.load(object);
  return {
    handles: { objectHandle },
    params: { outPublic: derived.publicArea, ...creation, name: derived.name },
  } as never;
});

/** A loaded transient object, or undefined. TODO(next slice): persistent objects (EvictControl) as well. */
export function findObject(engine: TpmEngine, h: number): LoadedObject | undefined {
  return engine.volatile.objects.get(h);
}

export const readPublicHandler = handler(ReadPublic, ({ engine }, { objectHandle }) => {
  const o = findObject(engine, objectHandle);
  if (o !== undefined) return ok<typeof ReadPublic>({ outPublic: o.publicArea, name: o.name, qualifiedName: o.qualifiedName });
  const p = engine.state.persistentObjects.find((x) => x.handle === objectHandle);
  if (p === undefined) throw new TpmError(rcForHandle(TPM_RC.HANDLE, 1));
  const outPublic = decode(TPMT_PUBLIC, p.public);
  return ok<typeof ReadPublic>({ outPublic, name: p.name, qualifiedName: p.qualifiedName });
});

/** Part 3 §28.4: the handle travels as a parameter; nothing loaded there is TPM_RC_HANDLE on parameter 1. */
export const flushContextHandler = handler(FlushContext, ({ engine }, _h, { flushHandle }) => {
  if (flushHandle >>> 24 === TPM_HT.TRANSIENT && engine.volatile.objects.flush(flushHandle)) return ok<typeof FlushContext>({});
  // TODO(next slice): sessions and sequence objects.
  throw new TpmError(rcForParameter(TPM_RC.HANDLE, 1));
});

// ---------------------------------------------------------------------------
// Create, Load: ordinary objects under a storage parent

/** A loaded storage parent (restricted decrypt, not sign) or TPM_RC_TYPE on handle 1 (ObjectIsStorage). */
function storageParent(engine: TpmEngine, h: number): LoadedObject {
  const parent = findObject(engine, h);
  if (parent === undefined) throw new TpmError(rcForHandle(TPM_RC.HANDLE, 1));
  const a = parent.publicArea.objectAttributes;
  if (!a.restricted || !a.decrypt || a.sign || parent.publicArea.type === TPM_ALG.KEYEDHASH) throw new TpmError(rcForHandle(TPM_RC.TYPE, 1));
  return parent;
}

function parentSymmetric(parent: TPMT_PUBLIC): TPMT_SYM_DEF_OBJECT {
  if (parent.type === TPM_ALG.RSA || parent.type === TPM_ALG.ECC) return parent.parameters.symmetric;
  if (parent.type === TPM_ALG.SYMCIPHER) return parent.parameters.sym as TPMT_SYM_DEF_OBJECT;
  throw new TpmError(rcForHandle(TPM_RC.TYPE, 1));
}

/** Part 1 §23.3.2: the outer wrapper of a child's private area: the parent's seedValue, nameAlg and symmetric, the child's Name. */
function privateWrap(parent: LoadedObject, childName: Uint8Array): OuterWrapParams {
  return { hashAlg: parent.publicArea.nameAlg, symmetric: parentSymmetric(parent.publicArea), seed: parent.sensitive.seedValue, name: childName };
}

/** Part 1 §27.2: a child may be fixedTPM only under a fixedTPM parent. */
function checkUnderParent(parent: LoadedObject, t: TPMT_PUBLIC, p: number): void {
  const a = t.objectAttributes;
  if (a.fixedTPM && !parent.publicArea.objectAttributes.fixedTPM) throw new TpmError(rcForParameter(TPM_RC.ATTRIBUTES, p));
}

export const createHandler = handler(Create, async ({ engine, locality }, { parentHandle }, params) => {
  const parent = storageParent(engine, parentHandle);
  const template = params.inPublic;
  const { userAuth, data } = params.inSensitive;
  checkTemplate(template, data, userAuth);
  checkUnderParent(parent, template, P_PUBLIC);
  let derived;
  try {
    // An ordinary object's key comes from the RNG (Part 3 §12.1): the primary derivation over a fresh random seed.
    derived = await derivePrimaryObject({ seed: engine.random(64), template, sensitive: { userAuth, data } });
  } catch (e) {
    if (e instanceof TpmError && e.parameter === undefined && e.handle === undefined) {
      throw new TpmError(rcForParameter(e.baseCode, e.baseCode === TPM_RC.SIZE ? P_SENSITIVE : P_PUBLIC));
    }
    throw e;
  }
  const outPrivate = produceOuterWrap(privateWrap(parent, derived.name), encode(TPM2B_SENSITIVE, derived.sensitive), { iv: engine.random(16) });
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
    // The reference's CryptValidateKeys: the sensitive area does not belong to this public area.
    throw new TpmError(rcForParameter(TPM_RC.BINDING, 2));
  }
  const objectHandle = engine.volatile.objects.load({
    publicArea: inPublic,
    sensitive,
    name,
    qualifiedName: qualifiedName(parent.qualifiedName, name),
    hierarchy: parent.hierarchy,
    primary: false,
    key,
  });
  return { handles: { objectHandle }, params: { name } } as never;
});

