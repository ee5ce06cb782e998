/**
 * Part 3 §11.1 StartAuthSession and §28 Context Management (ContextSave,
 * ContextLoad). FlushContext lives with the objects (object.ts) and ends
 * sessions through the engine's SessionTable.
 *
 * A saved context (Part 1 §30.3) is
 *   contextBlob = TPM2B_DIGEST integrity ‖ CFB-encrypted (sequence ‖ payload)
 * with the encryption key and IV from KDFa(SHA-256, proof, "CONTEXT",
 * sequence, savedHandle) and integrity = HMAC-SHA-256(proof, resetValue ‖
 * [clearCount] ‖ sequence ‖ savedHandle ‖ hierarchy ‖ encrypted part), where
 * proof is the hierarchy's proof value (the null proof for sessions),
 * resetValue is resetCount (every saved context dies with a TPM Reset, as in
 * the reference's ComputeContextIntegrity) and clearCount, for stClear
 * objects only, is restartCount (they also die with a TPM Restart; here with
 * a Resume too). The payload's layout is this TPM's business (Part 2 §14.4):
 * an object's areas and flags (its key is rebuilt or taken from the engine's
 * cache), a session's state as JSON, nothing for a hash sequence, whose
 * running hash node:crypto cannot export: the engine keeps it (bounded), so a
 * sequence context loads only in the engine that saved it, before a power cycle.
 */
import { createCipheriv, createDecipheriv, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import { ContextLoad, ContextSave, StartAuthSession } from '../../tpm/commands/index.js';
import { TPM_ALG, TPM_HT, TPM_RH, TPM_SE } from '../../tpm/constants.js';
import { digestSize, hmac } from '../../tpm/crypto/hash.js';
import { kdfa } from '../../tpm/crypto/kdf.js';
import { TPM_RC, TpmError, rcForHandle, rcForParameter } from '../../tpm/rc.js';
import { keyFromSensitive } from '../../tpm/duplication.js';
import { publicKeyFromArea } from '../../tpm/secret.js';
import { decryptSalt, sessionKey, trimAuthValue } from '../../tpm/session-crypto.js';
import { TPMT_PUBLIC, TPMT_SENSITIVE, type TPMS_CONTEXT, type TPMT_SYM_DEF } from '../../tpm/types/index.js';
import { decode, encode } from '../../tpm/wire/codec.js';
import { Reader, Writer } from '../../tpm/wire/io.js';
import type { TpmEngine } from '../engine.js';
import type { LoadedObject } from '../objects.js';
import { emptyPolicyAssertions, isSessionHandle, type PolicyAssertions, type SessionKind, type SessionState } from '../sessions.js';
import type { SequenceObject } from '../sequences.js';
import { proofOf } from '../tickets.js';
import { findObject } from './object.js';
import { handler, type CommandHandler } from './handler.js';

const EMPTY = new Uint8Array(0);

// ---------------------------------------------------------------------------
// StartAuthSession

/** Part 3 §11.1: an HMAC, policy or trial session, optionally salted (tpmKey) and bound (bind). */
export const startAuthSessionHandler = handler(StartAuthSession, ({ engine }, { tpmKey, bind }, { nonceCaller, encryptedSalt, sessionType, symmetric, authHash }) => {
  // nonceCaller: 16 bytes up to the session hash's digest (Part 3 §11.1, TPM_RC_SIZE).
  if (nonceCaller.length < 16 || nonceCaller.length > digestSize(authHash)) throw new TpmError(rcForParameter(TPM_RC.SIZE, 1));
  let salt: Uint8Array = EMPTY;
  if (tpmKey !== TPM_RH.NULL) {
    const key = findObject(engine, tpmKey);
    if (key === undefined) throw new TpmError(rcForHandle(TPM_RC.HANDLE, 1));
    const type = key.publicArea.type;
    if (type !== TPM_ALG.RSA && type !== TPM_ALG.ECC) throw new TpmError(rcForHandle(TPM_RC.KEY, 1));
    if (encryptedSalt.length === 0) throw new TpmError(rcForParameter(TPM_RC.VALUE, 2));
    if (!key.publicArea.objectAttributes.decrypt) throw new TpmError(rcForHandle(TPM_RC.ATTRIBUTES, 1));
    try {
      salt = decryptSalt(key.key, key.publicArea, encryptedSalt);
    } catch {
      throw new TpmError(rcForParameter(TPM_RC.VALUE, 2));
    }
  } else if (encryptedSalt.length !== 0) {
    throw new TpmError(rcForParameter(TPM_RC.VALUE, 2));
  }
  let entity: ReturnType<TpmEngine['entityOf']>;
  if (bind !== TPM_RH.NULL) {
    entity = engine.entityOf(bind);
    if (entity === undefined) throw new TpmError(rcForHandle(TPM_RC.HANDLE, 2));
  }
  // Part 3 §11.1: a block cipher for parameter encryption runs in CFB mode (TPM_RC_MODE).
  if (symmetric.algorithm !== TPM_ALG.NULL && symmetric.algorithm !== TPM_ALG.XOR && (!('mode' in symmetric) || symmetric.mode !== TPM_ALG.CFB)) {
    throw new TpmError(rcForParameter(TPM_RC.MODE, 4));
  }
  const kind: SessionKind = sessionType === TPM_SE.HMAC ? 'hmac' : sessionType === TPM_SE.POLICY ? 'policy' : 'trial';
  const table = engine.volatile.sessions;
  const handle = table.nextHandle(kind);
  // The reference makes nonceTPM as long as the caller's nonce (SessionCreate).
  const nonceTPM = engine.random(nonceCaller.length);
  const daBound = entity !== undefined && !entity.daExempt;
  const bound = kind === 'hmac' ? entity : undefined;
  const session: SessionState = {
    handle,
    kind,
    authHash,
    sessionKey: sessionKey({ hashAlg: authHash, bindAuthValue: entity?.authValue, salt, nonceTPM, nonceCaller }),
    symmetric,
    bindName: bound?.name,
    bindAuthValue: bound === undefined ? undefined : trimAuthValue(bound.authValue),
    daBound,
    lockoutBound: daBound && bind === TPM_RH.LOCKOUT,
    nonceTPM,
    policyDigest: new Uint8Array(digestSize(authHash)),
    policy: emptyPolicyAssertions(),
    startTime: engine.time(),
    auditDigest: undefined,
  };
  table.add(session);
  return { handles: { sessionHandle: handle }, params: { nonceTPM: nonceTPM.slice() } } as never;
});

// ---------------------------------------------------------------------------
// Context protection (Part 1 §30.3)

const CONTEXT_HASH = TPM_ALG.SHA256;
/** sizeof(TPMU_HA): the largest TPM2B_DIGEST. */
const MAX_DIGEST_SIZE = 64;
const CONTEXT_CIPHER = 'aes-128-cfb';
const CONTEXT_KEY_BYTES = 16;
const CONTEXT_IV_BYTES = 16;
/** savedHandle of a transient object's context, of a sequence's and of an stClear object's (Part 2 §14.3). */
const SAVED_OBJECT = 0x80000000;
const SAVED_SEQUENCE = 0x80000001;
const SAVED_STCLEAR_OBJECT = 0x80000002;

/** A sequence whose running hashes are independent of `seq`'s (an HMAC state cannot be copied in node:crypto, so it is shared). */
function copySequence(seq: SequenceObject): SequenceObject {
  return { ...seq, states: seq.states.map((s) => ({ hashAlg: s.hashAlg, state: 'copy' in s.state ? s.state.copy() : s.state })) };
}

function u32(v: number): Uint8Array {
  return Uint8Array.of(v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
}

function u64(v: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v);
  return b;
}

function cipherKey(proof: Uint8Array, sequence: bigint, savedHandle: number): { key: Uint8Array; iv: Uint8Array } {
  const m = kdfa(CONTEXT_HASH, proof, 'CONTEXT', u64(sequence), u32(savedHandle), (CONTEXT_KEY_BYTES + CONTEXT_IV_BYTES) * 8);
  return { key: m.subarray(0, CONTEXT_KEY_BYTES), iv: m.subarray(CONTEXT_KEY_BYTES) };
}

/** resetValue and, for stClear objects, clearCount of Part 1 §30.3.2. */
function resetValueOf(engine: TpmEngine, savedHandle: number): Uint8Array {
  const clock = engine.state.clock;
  return savedHandle === SAVED_STCLEAR_OBJECT ? new Uint8Array([...u32(clock.resetCount), ...u32(clock.restartCount)]) : u32(clock.resetCount);
}

function integrityOf(engine: TpmEngine, proof: Uint8Array, c: Omit<TPMS_CONTEXT, 'contextBlob'>, encrypted: Uint8Array): Uint8Array {
  return hmac(CONTEXT_HASH, proof, resetValueOf(engine, c.savedHandle), u64(c.sequence), u32(c.savedHandle), u32(c.hierarchy), encrypted);
}

function protect(engine: TpmEngine, c: Omit<TPMS_CONTEXT, 'contextBlob'>, payload: Uint8Array): Uint8Array {
  const proof = proofOf(engine, c.hierarchy);
  const { key, iv } = cipherKey(proof, c.sequence, c.savedHandle);
  const cipher = createCipheriv(CONTEXT_CIPHER, key, iv);
  const encrypted = new Uint8Array(Buffer.concat([cipher.update(u64(c.sequence)), cipher.update(payload), cipher.final()]));
  const integrity = integrityOf(engine, proof, c, encrypted);
  const w = new Writer(2 + integrity.length + encrypted.length);
  w.u16(integrity.length);
  w.bytes(integrity);
  w.bytes(encrypted);
  return w.finish();
}

/**
 * The payload of a context this TPM saved, after its integrity check
 * (reference TPM2_ContextLoad order: size, integrity, then decryption).
 * @throws TpmError TPM_RC_INSUFFICIENT / TPM_RC_SIZE for a blob too short to hold the integrity, TPM_RC_SIZE / TPM_RC_INTEGRITY on parameter 1.
 */
function unprotect(engine: TpmEngine, c: TPMS_CONTEXT): Uint8Array {
  const blob = c.contextBlob;
  // The integrity is a TPM2B_DIGEST: unmarshaling errors come without a parameter number, as libtpms answers them.
  if (blob.length < 2) throw new TpmError(TPM_RC.INSUFFICIENT);
  const size = (blob[0]! << 8) | blob[1]!;
  if (size > MAX_DIGEST_SIZE) throw new TpmError(TPM_RC.SIZE);
  if (2 + size > blob.length) throw new TpmError(TPM_RC.INSUFFICIENT);
  if (size !== digestSize(CONTEXT_HASH) || blob.length < 2 + size + 8) throw new TpmError(rcForParameter(TPM_RC.SIZE, 1));
  const given = blob.subarray(2, 2 + size);
  const encrypted = blob.subarray(2 + size);
  const proof = proofOf(engine, c.hierarchy);
  if (!timingSafeEqual(integrityOf(engine, proof, c, encrypted), given)) throw new TpmError(rcForParameter(TPM_RC.INTEGRITY, 1));
  const { key, iv } = cipherKey(proof, c.sequence, c.savedHandle);
  const decipher = createDecipheriv(CONTEXT_CIPHER, key, iv);
  const plain = new Uint8Array(Buffer.concat([decipher.update(encrypted), decipher.final()]));
  // The integrity covered the sequence; a mismatch here is this TPM's own fault.
  if (!timingSafeEqual(plain.subarray(0, 8), u64(c.sequence))) throw new TpmError(TPM_RC.FAILURE);
  return plain.subarray(8);
}

// ---------------------------------------------------------------------------
// Payloads

const FLAG_PRIMARY = 1;
const FLAG_PUBLIC_ONLY = 2;

/**
 * A loaded object as context payload: its areas, Names, hierarchy and flags.
 * The node:crypto key is not in it: ContextLoad takes it from the saving
 * engine's cache or rebuilds it from the areas (the core's keyFromSensitive,
 * as Load does), which is faster than any key import format.
 */
function objectPayload(o: LoadedObject): Uint8Array {
  const w = new Writer(1024);
  const sized = (b: Uint8Array): void => {
    w.u16(b.length);
    w.bytes(b);
  };
  sized(encode(TPMT_PUBLIC, o.publicArea));
  sized(encode(TPMT_SENSITIVE, o.sensitive));
  sized(o.name);
  sized(o.qualifiedName);
  w.u32(o.hierarchy);
  w.u8((o.primary ? FLAG_PRIMARY : 0) | (o.publicOnly === true ? FLAG_PUBLIC_ONLY : 0));
  return w.finish();
}

function objectFromPayload(payload: Uint8Array, cachedKey: KeyObject | undefined): LoadedObject {
  const r = new Reader(payload);
  const sized = (): Uint8Array => r.take(r.u16());
  const publicArea = decode(TPMT_PUBLIC, sized());
  const sensitive = decode(TPMT_SENSITIVE, sized());
  const name = sized();
  const qualifiedName = sized();
  const hierarchy = r.u32();
  const flags = r.u8();
  r.finish();
  const publicOnly = (flags & FLAG_PUBLIC_ONLY) !== 0;
  let key = cachedKey;
  if (key === undefined) {
    if (!publicOnly) key = keyFromSensitive(publicArea, sensitive);
    else if (publicArea.type === TPM_ALG.RSA || publicArea.type === TPM_ALG.ECC) key = publicKeyFromArea(publicArea);
    else key = createSecretKey(new Uint8Array(0));
  }
  return { publicArea, sensitive, name, qualifiedName, hierarchy, primary: (flags & FLAG_PRIMARY) !== 0, key, ...(publicOnly ? { publicOnly: true } : {}) };
}

/** JSON with bytes as {"$b": hex} and UINT64 values as {"$n": decimal}: the payload of a session context. */
function sessionPayload(s: SessionState): Uint8Array {
  const json = JSON.stringify(s, (_k, v: unknown) => {
    if (v instanceof Uint8Array) return { $b: Buffer.from(v).toString('hex') };
    if (typeof v === 'bigint') return { $n: v.toString() };
    return v;
  });
  return new TextEncoder().encode(json);
}

function sessionFromPayload(payload: Uint8Array): SessionState {
  const v = JSON.parse(new TextDecoder().decode(payload), (_k, x: unknown) => {
    if (x !== null && typeof x === 'object' && !Array.isArray(x)) {
      const o = x as Record<string, unknown>;
      if (typeof o.$b === 'string') return new Uint8Array(Buffer.from(o.$b, 'hex'));
      if (typeof o.$n === 'string') return BigInt(o.$n);
    }
    return x;
  }) as Record<string, unknown>;
  const policy = { ...emptyPolicyAssertions(), ...(v.policy as Partial<PolicyAssertions>) };
  return {
    handle: v.handle as number,
    kind: v.kind as SessionKind,
    authHash: v.authHash as number,
    sessionKey: v.sessionKey as Uint8Array,
    symmetric: v.symmetric as TPMT_SYM_DEF,
    bindName: v.bindName as Uint8Array | undefined,
    bindAuthValue: v.bindAuthValue as Uint8Array | undefined,
    daBound: v.daBound as boolean,
    lockoutBound: v.lockoutBound as boolean,
    nonceTPM: v.nonceTPM as Uint8Array,
    policyDigest: v.policyDigest as Uint8Array,
    policy,
    startTime: v.startTime as bigint,
    auditDigest: v.auditDigest as Uint8Array | undefined,
  };
}

// ---------------------------------------------------------------------------
// ContextSave / ContextLoad

/**
 * Part 3 §28.2: a transient object's context (the object stays loaded) or a
 * session's (the session leaves TPM memory but stays active, Part 1 §30.5).
 */
export const contextSaveHandler = handler(ContextSave, ({ engine }, { saveHandle }) => {
  const type = saveHandle >>> 24;
  let c: Omit<TPMS_CONTEXT, 'contextBlob'>;
  let payload: Uint8Array;
  const seq = type === TPM_HT.TRANSIENT ? (engine.volatile.objects.getSequence(saveHandle) as SequenceObject | undefined) : undefined;
  if (seq !== undefined) {
    const sequence = engine.volatile.sessions.nextObjectSequence();
    engine.volatile.sessions.keepSequenceState(sequence, copySequence(seq));
    payload = EMPTY;
    c = { sequence, savedHandle: SAVED_SEQUENCE, hierarchy: TPM_RH.NULL };
  } else if (type === TPM_HT.TRANSIENT) {
    const o = engine.volatile.objects.get(saveHandle);
    if (o === undefined) throw new TpmError(rcForHandle(TPM_RC.HANDLE, 1));
    payload = objectPayload(o);
    const savedHandle = o.publicArea.objectAttributes.stClear ? SAVED_STCLEAR_OBJECT : SAVED_OBJECT;
    const sequence = engine.volatile.sessions.nextObjectSequence();
    engine.volatile.sessions.keepObjectKey(sequence, o.key);
    c = { sequence, savedHandle, hierarchy: o.hierarchy };
  } else {
    const s = engine.volatile.sessions.get(saveHandle);
    if (s === undefined) throw new TpmError(rcForHandle(TPM_RC.HANDLE, 1));
    payload = sessionPayload(s);
    c = { sequence: engine.volatile.sessions.save(saveHandle), savedHandle: saveHandle, hierarchy: TPM_RH.NULL };
  }
  return { handles: {}, params: { context: { ...c, contextBlob: protect(engine, c, payload) } } } as never;
});

/**
 * Part 3 §28.3: reloads a context this TPM saved. An object gets a new
 * transient handle; a session gets its own handle back, once per save.
 */
export const contextLoadHandler = handler(ContextLoad, ({ engine }, _h, { context }) => {
  const payload = unprotect(engine, context);
  if (isSessionHandle(context.savedHandle)) {
    let session: SessionState;
    try {
      session = sessionFromPayload(payload);
    } catch {
      throw new TpmError(TPM_RC.FAILURE);
    }
    if (session.handle !== context.savedHandle) throw new TpmError(TPM_RC.FAILURE);
    engine.volatile.sessions.restore(session, context.sequence);
    return { handles: { loadedHandle: session.handle }, params: {} } as never;
  }
  if (!engine.hierarchyEnabled(context.hierarchy)) throw new TpmError(rcForParameter(TPM_RC.HIERARCHY, 1));
  if (context.savedHandle === SAVED_SEQUENCE) {
    const kept = engine.volatile.sessions.sequenceState(context.sequence) as SequenceObject | undefined;
    // The state of a context saved before a power cycle (or evicted as too old) is gone.
    if (kept === undefined) throw new TpmError(rcForParameter(TPM_RC.HANDLE, 1));
    return { handles: { loadedHandle: engine.volatile.objects.loadSequence(copySequence(kept)) }, params: {} } as never;
  }
  let object: LoadedObject;
  try {
    object = objectFromPayload(payload, engine.volatile.sessions.objectKey(context.sequence));
  } catch {
    throw new TpmError(TPM_RC.FAILURE);
  }
  const loadedHandle = engine.volatile.objects.load(object);
  return { handles: { loadedHandle }, params: {} } as never;
});

export const SESSION_HANDLERS: readonly CommandHandler[] = [startAuthSessionHandler, contextSaveHandler, contextLoadHandler] as unknown as readonly CommandHandler[];
