/**
 * Part 3 §13 "Duplication Commands".
 */
import { authHandle, command, handle } from '../command.js';
import { TPM_CC } from '../constants.js';
import {
  TPM2B_DATA,
  TPM2B_ENCRYPTED_SECRET,
  TPM2B_NAME,
  TPM2B_PRIVATE,
  TPM2B_PUBLIC,
  TPMI_DH_OBJECT,
  TPMT_SYM_DEF_OBJECT,
} from '../types/index.js';
import { orNull } from '../wire/codec.js';

/** Wraps a loaded object for export to a new parent. */
export const Duplicate = command({
  name: 'Duplicate',
  code: TPM_CC.Duplicate,
  spec: 'Part 3 §13.1',
  handles: {
    objectHandle: authHandle(TPMI_DH_OBJECT, 'DUP'),
    newParentHandle: handle(orNull(TPMI_DH_OBJECT)),
  },
  params: {
    encryptionKeyIn: TPM2B_DATA,
    symmetricAlg: TPMT_SYM_DEF_OBJECT, // TPMT_SYM_DEF_OBJECT+: the structure admits TPM_ALG_NULL here
  },
  responseHandles: {},
  response: { encryptionKeyOut: TPM2B_DATA, duplicate: TPM2B_PRIVATE, outSymSeed: TPM2B_ENCRYPTED_SECRET },
});

/** Moves a duplication blob from one parent to another (an intermediary's command). */
export const Rewrap = command({
  name: 'Rewrap',
  code: TPM_CC.Rewrap,
  spec: 'Part 3 §13.2',
  handles: {
    oldParent: authHandle(orNull(TPMI_DH_OBJECT), 'USER'),
    newParent: handle(orNull(TPMI_DH_OBJECT)),
  },
  params: { inDuplicate: TPM2B_PRIVATE, name: TPM2B_NAME, inSymSeed: TPM2B_ENCRYPTED_SECRET },
  responseHandles: {},
  response: { outDuplicate: TPM2B_PRIVATE, outSymSeed: TPM2B_ENCRYPTED_SECRET },
});

/** Turns a duplication blob into a private area wrapped by the new parent. */
export const Import = command({
  name: 'Import',
  code: TPM_CC.Import,
  spec: 'Part 3 §13.3',
  handles: { parentHandle: authHandle(TPMI_DH_OBJECT, 'USER') },
  params: {
    encryptionKey: TPM2B_DATA,
    objectPublic: TPM2B_PUBLIC,
    duplicate: TPM2B_PRIVATE,
    inSymSeed: TPM2B_ENCRYPTED_SECRET,
    symmetricAlg: TPMT_SYM_DEF_OBJECT, // TPMT_SYM_DEF_OBJECT+: the structure admits TPM_ALG_NULL here
  },
  responseHandles: {},
  response: { outPrivate: TPM2B_PRIVATE },
});
