/**
 * Part 3 §17 "Hash/HMAC/Event Sequences".
 */
import { authHandle, command } from '../command.js';
import { TPM_CC } from '../constants.js';
import {
  TPM2B_AUTH,
  TPM2B_DIGEST,
  TPM2B_MAX_BUFFER,
  TPMI_ALG_HASH,
  TPMI_DH_OBJECT,
  TPMI_DH_PCR,
  TPMI_RH_HIERARCHY,
  TPML_DIGEST_VALUES,
  TPMT_TK_HASHCHECK,
} from '../types/index.js';
import { orNull } from '../wire/codec.js';

/** Starts an HMAC sequence with a loaded keyed-hash key. */
export const HMAC_Start = command({
  name: 'HMAC_Start',
  code: TPM_CC.HMAC_Start,
  spec: 'Part 3 §17.2',
  handles: { handle: authHandle(TPMI_DH_OBJECT, 'USER') },
  params: { auth: TPM2B_AUTH, hashAlg: orNull(TPMI_ALG_HASH) },
  responseHandles: { sequenceHandle: TPMI_DH_OBJECT },
  response: {},
});

/** Starts a hash sequence, or an event sequence when the hash is NULL. */
export const HashSequenceStart = command({
  name: 'HashSequenceStart',
  code: TPM_CC.HashSequenceStart,
  spec: 'Part 3 §17.4',
  handles: {},
  params: { auth: TPM2B_AUTH, hashAlg: orNull(TPMI_ALG_HASH) },
  responseHandles: { sequenceHandle: TPMI_DH_OBJECT },
  response: {},
});

/** Adds data to a hash, HMAC or event sequence. */
export const SequenceUpdate = command({
  name: 'SequenceUpdate',
  code: TPM_CC.SequenceUpdate,
  spec: 'Part 3 §17.5',
  handles: { sequenceHandle: authHandle(TPMI_DH_OBJECT, 'USER') },
  params: { buffer: TPM2B_MAX_BUFFER },
  responseHandles: {},
  response: {},
});

/** Adds the last data, ends a hash or HMAC sequence and returns the result. */
export const SequenceComplete = command({
  name: 'SequenceComplete',
  code: TPM_CC.SequenceComplete,
  spec: 'Part 3 §17.6',
  handles: { sequenceHandle: authHandle(TPMI_DH_OBJECT, 'USER') },
  params: { buffer: TPM2B_MAX_BUFFER, hierarchy: orNull(TPMI_RH_HIERARCHY) },
  responseHandles: {},
  response: { result: TPM2B_DIGEST, validation: TPMT_TK_HASHCHECK },
});

/** Ends an event sequence, extending its digests into a PCR. */
export const EventSequenceComplete = command({
  name: 'EventSequenceComplete',
  code: TPM_CC.EventSequenceComplete,
  spec: 'Part 3 §17.7',
  handles: {
    pcrHandle: authHandle(orNull(TPMI_DH_PCR), 'USER'),
    sequenceHandle: authHandle(TPMI_DH_OBJECT, 'USER'),
  },
  params: { buffer: TPM2B_MAX_BUFFER },
  responseHandles: {},
  response: { results: TPML_DIGEST_VALUES },
});
