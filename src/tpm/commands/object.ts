/**
 * Part 3 §12 "Object Commands".
 */
import { authHandle, command, handle } from '../command.js';
import { TPM_CC } from '../constants.js';
import {
  TPM2B_AUTH,
  TPM2B_CREATION_DATA,
  TPM2B_DATA,
  TPM2B_DIGEST,
  TPM2B_ENCRYPTED_SECRET,
  TPM2B_ID_OBJECT,
  TPM2B_NAME,
  TPM2B_PRIVATE,
  TPM2B_PUBLIC,
  TPM2B_SENSITIVE_OPTIONAL,
  TPM2B_SENSITIVE_CREATE,
  TPM2B_SENSITIVE_DATA,
  TPM2B_TEMPLATE,
  TPMI_DH_OBJECT,
  TPMI_DH_PARENT,
  TPMI_RH_HIERARCHY,
  TPML_PCR_SELECTION,
  TPMT_TK_CREATION,
  TPM_HANDLE,
} from '../types/index.js';
import { orNull } from '../wire/codec.js';

/** Creates an ordinary object under a loaded parent and returns its wrapped private part. */
export const Create = command({
  name: 'Create',
  code: TPM_CC.Create,
  spec: 'Part 3 §12.1',
  handles: { parentHandle: authHandle(TPMI_DH_OBJECT, 'USER') },
  params: {
    inSensitive: TPM2B_SENSITIVE_CREATE,
    inPublic: TPM2B_PUBLIC,
    outsideInfo: TPM2B_DATA,
    creationPCR: TPML_PCR_SELECTION,
  },
  responseHandles: {},
  response: {
    outPrivate: TPM2B_PRIVATE,
    outPublic: TPM2B_PUBLIC,
    creationData: TPM2B_CREATION_DATA,
    creationHash: TPM2B_DIGEST,
    creationTicket: TPMT_TK_CREATION,
  },
});

/** Loads an object created by Create (or imported) under its parent. */
export const Load = command({
  name: 'Load',
  code: TPM_CC.Load,
  spec: 'Part 3 §12.2',
  handles: { parentHandle: authHandle(TPMI_DH_OBJECT, 'USER') },
  params: { inPrivate: TPM2B_PRIVATE, inPublic: TPM2B_PUBLIC },
  responseHandles: { objectHandle: TPM_HANDLE },
  response: { name: TPM2B_NAME },
});

/** Loads an object that is not protected by the TPM (a public key, or a key in the clear). */
export const LoadExternal = command({
  name: 'LoadExternal',
  code: TPM_CC.LoadExternal,
  spec: 'Part 3 §12.3',
  handles: {},
  params: {
    inPrivate: TPM2B_SENSITIVE_OPTIONAL, // Part 3 §12.3: empty when loading only a public key
    inPublic: TPM2B_PUBLIC, // TPM2B_PUBLIC+: nameAlg may be TPM_ALG_NULL here
    hierarchy: orNull(TPMI_RH_HIERARCHY),
  },
  responseHandles: { objectHandle: TPM_HANDLE },
  response: { name: TPM2B_NAME },
});

/** Returns the public area and Names of a loaded object. */
export const ReadPublic = command({
  name: 'ReadPublic',
  code: TPM_CC.ReadPublic,
  spec: 'Part 3 §12.4',
  handles: { objectHandle: handle(TPMI_DH_OBJECT) },
  params: {},
  responseHandles: {},
  response: { outPublic: TPM2B_PUBLIC, name: TPM2B_NAME, qualifiedName: TPM2B_NAME },
});

/** Recovers a credential made with MakeCredential, proving the two keys share a TPM. */
export const ActivateCredential = command({
  name: 'ActivateCredential',
  code: TPM_CC.ActivateCredential,
  spec: 'Part 3 §12.5',
  handles: {
    activateHandle: authHandle(TPMI_DH_OBJECT, 'ADMIN'),
    keyHandle: authHandle(TPMI_DH_OBJECT, 'USER'),
  },
  params: { credentialBlob: TPM2B_ID_OBJECT, secret: TPM2B_ENCRYPTED_SECRET },
  responseHandles: {},
  response: { certInfo: TPM2B_DIGEST },
});

/** Wraps a credential for an object Name with a loaded public key (no secret needed). */
export const MakeCredential = command({
  name: 'MakeCredential',
  code: TPM_CC.MakeCredential,
  spec: 'Part 3 §12.6',
  handles: { handle: handle(TPMI_DH_OBJECT) },
  params: { credential: TPM2B_DIGEST, objectName: TPM2B_NAME },
  responseHandles: {},
  response: { credentialBlob: TPM2B_ID_OBJECT, secret: TPM2B_ENCRYPTED_SECRET },
});

/** Returns the data of a loaded sealed data object. */
export const Unseal = command({
  name: 'Unseal',
  code: TPM_CC.Unseal,
  spec: 'Part 3 §12.7',
  handles: { itemHandle: authHandle(TPMI_DH_OBJECT, 'USER') },
  params: {},
  responseHandles: {},
  response: { outData: TPM2B_SENSITIVE_DATA },
});

/** Re-wraps an object with a new authorization value. */
export const ObjectChangeAuth = command({
  name: 'ObjectChangeAuth',
  code: TPM_CC.ObjectChangeAuth,
  spec: 'Part 3 §12.8',
  handles: { objectHandle: authHandle(TPMI_DH_OBJECT, 'ADMIN'), parentHandle: handle(TPMI_DH_OBJECT) },
  params: { newAuth: TPM2B_AUTH },
  responseHandles: {},
  response: { outPrivate: TPM2B_PRIVATE },
});

/** Creates a primary, ordinary or derived object and loads it in one step. */
export const CreateLoaded = command({
  name: 'CreateLoaded',
  code: TPM_CC.CreateLoaded,
  spec: 'Part 3 §12.9',
  handles: { parentHandle: authHandle(orNull(TPMI_DH_PARENT), 'USER') },
  params: { inSensitive: TPM2B_SENSITIVE_CREATE, inPublic: TPM2B_TEMPLATE },
  responseHandles: { objectHandle: TPM_HANDLE },
  response: { outPrivate: TPM2B_PRIVATE, outPublic: TPM2B_PUBLIC, name: TPM2B_NAME },
});
