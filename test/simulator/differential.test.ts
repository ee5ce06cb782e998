/**
 * The differential suite (issue 7): every command of the core's command set
 * (ALL_COMMANDS) sent in the same sequences to a fresh swtpm (libtpms) and a
 * fresh simulator — a success case and the common refusals (bad handle, bad
 * auth, bad value or size, wrong hierarchy, wrong attributes) — with the
 * response codes compared always and the response parameter bytes where a
 * TPM is deterministic (hashes, HMACs and encryptions with keys loaded from
 * outside, PCR values, policy digests, NV data and public areas, audit
 * digests, public areas of primaries from fixed templates less their
 * seed-made unique, capability lists). A difference is allowed only as a row
 * of src/simulator/divergences.ts; each row must still be seen to differ.
 */
import { createHash, createHmac, generateKeyPairSync, sign as nodeSign } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { password } from '../../src/client/index.js';
import type { AuthSession } from '../../src/client/session.js';
import * as C from '../../src/tpm/commands/index.js';
import { ALL_COMMANDS } from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_CAP, TPM_CC, TPM_ECC, TPM_PT, TPM_RH, TPM_SE, TPM_SU } from '../../src/tpm/constants.js';
import { makeCredential } from '../../src/tpm/credential.js';
import { externalObject, wrapDuplicate, wrapExternalKey } from '../../src/tpm/duplication.js';
import { encodeCommand } from '../../src/tpm/frame.js';
import type { AnyCommand, CommandHandles, CommandParams } from '../../src/tpm/command.js';
import { objectName } from '../../src/tpm/names.js';
import { pcrSelection } from '../../src/tpm/pcr.js';
import { passwordAuth } from '../../src/tpm/run.js';
import { TPM_RC } from '../../src/tpm/rc.js';
import { eccSrkTemplate, rsaSrkTemplate } from '../../src/tpm/templates.js';
import { TPMA_LOCALITY, TPMA_NV, TPMA_OBJECT, templateFromPublic, type TPMT_PUBLIC } from '../../src/tpm/types/index.js';
import { DIVERGENCES, findDivergence, type DivergenceId } from '../../src/simulator/divergences.js';
import { IMPLEMENTED_ALGORITHMS } from '../../src/simulator/algorithms.js';
import { responseParams, runDifferential, startSide, type DiffLog, type DiffSide, type Sequence } from '../support/differential.js';
import { describeWithSwtpm } from '../support/swtpm.js';

const SHA256 = TPM_ALG.SHA256;
const EMPTY = new Uint8Array(0);
const NO_SYM = { algorithm: TPM_ALG.NULL } as never;
const NULL_SCHEME = { scheme: TPM_ALG.NULL } as never;
const u32 = (n: number): Uint8Array => Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const sha256 = (...parts: Uint8Array[]): Uint8Array => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};
const algName = (a: number): string => Object.entries(TPM_ALG).find(([, v]) => v === a)?.[0] ?? `0x${a.toString(16)}`;
const curveName = (c: number): string => Object.entries(TPM_ECC).find(([, v]) => v === c)?.[0] ?? `0x${c.toString(16)}`;
const bytes = (n: number, fill: number): Uint8Array => new Uint8Array(n).fill(fill);
const wrong = { sessions: [password(Uint8Array.of(0xee))] };

// Fixed for the whole file: both TPMs load the same outside keys, so what they compute with them can be compared.
const RSA_KEY = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
const EC_KEY = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
const HMAC_KEY = bytes(32, 0x5a);
const AES_KEY = bytes(16, 0x3c);
const SEED_VALUE = bytes(32, 0x77);
const EXT = {
  rsa: externalObject({ type: 'rsa', privateKey: RSA_KEY }, { objectAttributes: TPMA_OBJECT.of({ userWithAuth: true, noDA: true, decrypt: true, sign: true }) }),
  rsaOaep: externalObject(
    { type: 'rsa', privateKey: RSA_KEY, scheme: { scheme: TPM_ALG.OAEP, details: { hashAlg: SHA256 } } as never },
    { objectAttributes: TPMA_OBJECT.of({ userWithAuth: true, noDA: true, decrypt: true }) },
  ),
  ecc: externalObject({ type: 'ecc', privateKey: EC_KEY }, { objectAttributes: TPMA_OBJECT.of({ userWithAuth: true, noDA: true, sign: true, decrypt: true }) }),
  hmac: externalObject({ type: 'hmac', key: HMAC_KEY, hashAlg: SHA256 }, { objectAttributes: TPMA_OBJECT.of({ userWithAuth: true, noDA: true, sign: true }), seedValue: SEED_VALUE }),
  aes: externalObject({ type: 'symcipher', key: AES_KEY, mode: TPM_ALG.NULL }, { objectAttributes: TPMA_OBJECT.of({ userWithAuth: true, noDA: true, sign: true, decrypt: true }), seedValue: SEED_VALUE }),
};

/** Templates with a fixed unique: the public area of a primary made from one is the template but for unique (seeds differ). */
const ECC_SIGN: TPMT_PUBLIC = {
  type: TPM_ALG.ECC,
  nameAlg: SHA256,
  objectAttributes: TPMA_OBJECT.of({ fixedTPM: true, fixedParent: true, sensitiveDataOrigin: true, userWithAuth: true, noDA: true, sign: true }),
  authPolicy: EMPTY,
  parameters: { symmetric: NO_SYM, scheme: { scheme: TPM_ALG.ECDSA, details: { hashAlg: SHA256 } }, curveID: TPM_ECC.NIST_P256, kdf: NULL_SCHEME },
  unique: { x: bytes(32, 1), y: bytes(32, 2) },
} as unknown as TPMT_PUBLIC;
const ECC_DECRYPT = (scheme: number): TPMT_PUBLIC =>
  ({
    ...ECC_SIGN,
    objectAttributes: TPMA_OBJECT.of({ fixedTPM: true, fixedParent: true, sensitiveDataOrigin: true, userWithAuth: true, noDA: true, decrypt: true }),
    parameters: { symmetric: NO_SYM, scheme: scheme === TPM_ALG.NULL ? NULL_SCHEME : { scheme, details: { hashAlg: SHA256 } }, curveID: TPM_ECC.NIST_P256, kdf: NULL_SCHEME },
  }) as unknown as TPMT_PUBLIC;
const ECC_SRK = { ...eccSrkTemplate(), objectAttributes: TPMA_OBJECT.of({ ...eccSrkTemplate().objectAttributes, noDA: true }) } as unknown as TPMT_PUBLIC;
const SEAL = (authPolicy: Uint8Array = EMPTY, userWithAuth = true): TPMT_PUBLIC =>
  ({
    type: TPM_ALG.KEYEDHASH,
    nameAlg: SHA256,
    objectAttributes: TPMA_OBJECT.of({ fixedTPM: true, fixedParent: true, userWithAuth, noDA: true }),
    authPolicy,
    parameters: { scheme: NULL_SCHEME },
    unique: EMPTY,
  }) as unknown as TPMT_PUBLIC;

/** A public area without its unique (which comes from the TPM's seed), for comparison. */
const shape = (p: TPMT_PUBLIC): string => JSON.stringify({ ...p, unique: undefined }, (_k, v) => (v instanceof Uint8Array ? hex(v) : typeof v === 'bigint' ? v.toString() : v));

const sensitive = (userAuth: Uint8Array = EMPTY, data: Uint8Array = EMPTY) => ({ userAuth, data });

async function primary(side: DiffSide, hierarchy: number, template: TPMT_PUBLIC, inSensitive = sensitive()): Promise<{ handle: number; name: Uint8Array; publicArea: TPMT_PUBLIC }> {
  const r = await side.tpm.run(C.CreatePrimary, { primaryHandle: hierarchy }, { inSensitive, inPublic: template, outsideInfo: EMPTY, creationPCR: [] });
  return { handle: r.handles.objectHandle, name: r.params.name, publicArea: r.params.outPublic };
}

async function external(side: DiffSide, o: { publicArea: TPMT_PUBLIC; sensitive: unknown } , withPrivate = true): Promise<{ handle: number; name: Uint8Array }> {
  const r = await side.tpm.run(C.LoadExternal, {}, { inPrivate: (withPrivate ? o.sensitive : null) as never, inPublic: o.publicArea, hierarchy: TPM_RH.NULL as never });
  return { handle: r.handles.objectHandle, name: r.params.name };
}

const flush = (side: DiffSide, handle: number): Promise<unknown> => side.tpm.run(C.FlushContext, {}, { flushHandle: handle });

async function policySession(side: DiffSide, type: 'policy' | 'trial' = 'policy'): Promise<AuthSession> {
  return side.tpm.startAuthSession({ type, symmetric: NO_SYM });
}

/** Runs `f` with a policy session and logs its digest (deterministic bytes). */
async function policyDigest(log: DiffLog, label: string, session: AuthSession): Promise<void> {
  await log.bytes(label, () => log.side.tpm.run(C.PolicyGetDigest, { policySession: session }, {}));
}

// ---------------------------------------------------------------------------
// The sequences, by area. Each leaves its TPM as it found it (objects flushed, indices undefined).

const startupAndTesting: Sequence = async (log, side) => {
  const { tpm } = side;
  await log.step('Startup when started', () => tpm.run(C.Startup, {}, { startupType: TPM_SU.CLEAR }));
  await log.raw('Startup of a bad type', encodeRawStartup(0x0002));
  await log.step('SelfTest full', () => tpm.run(C.SelfTest, {}, { fullTest: 1 }));
  await log.raw('SelfTest with fullTest 2', rawCommand(TPM_CC.SelfTest, Uint8Array.of(2)));
  await log.step('IncrementalSelfTest SHA256, AES', () => tpm.run(C.IncrementalSelfTest, {}, { toTest: [SHA256, TPM_ALG.AES] as never }), (r) => r.params.toDoList.length);
  await log.step('IncrementalSelfTest of a non-algorithm', () => tpm.run(C.IncrementalSelfTest, {}, { toTest: [0x7fff] as never }));
  await log.step('GetTestResult', () => tpm.run(C.GetTestResult, {}, {}), (r) => r.params.testResult);
  await log.raw('GetTestResult with a trailing byte', rawCommand(TPM_CC.GetTestResult, Uint8Array.of(0)));
  await log.raw('Shutdown of a bad type', rawCommand(TPM_CC.Shutdown, u16(7)));
  // pcrUpdateCounter: a TPM Reset counts the PCRs it reset (20); a Resume and a Restart carry the counter on and add
  // the PCRs they reset (the reference's PCRStartup, gr.pcrCounter).
  const counter = async () => (await tpm.run(C.PCR_Read, {}, { pcrSelectionIn: [] })).params.pcrUpdateCounter;
  const cycles: string[] = [];
  const before = await log.step('PCR_Read pcrUpdateCounter after a TPM Reset', () => counter(), (n) => n);
  await log.step('Shutdown STATE', () => tpm.run(C.Shutdown, {}, { shutdownType: TPM_SU.STATE }));
  await side.init();
  await log.step('Startup(STATE) after a Shutdown(STATE)', () => tpm.run(C.Startup, {}, { startupType: TPM_SU.STATE }));
  await log.step('ReadClock after a reset', () => tpm.run(C.ReadClock, {}, {}), (r) => [r.params.currentTime.clockInfo.resetCount.toString(), r.params.currentTime.clockInfo.restartCount, r.params.currentTime.clockInfo.safe]);
  cycles.push(`${before} Resume ${await counter()}`);
  const beforeRestart = await counter();
  await tpm.run(C.Shutdown, {}, { shutdownType: TPM_SU.STATE });
  await side.init();
  await tpm.run(C.Startup, {}, { startupType: TPM_SU.CLEAR });
  cycles.push(`${beforeRestart} Restart ${await counter()}`);
  await log.step('PCR_Read pcrUpdateCounter over a Resume and a Restart', () => tpm.run(C.PCR_Read, {}, { pcrSelectionIn: [] }), () => cycles.join(', '));
};

function encodeRawStartup(type: number): Uint8Array {
  return rawCommand(TPM_CC.Startup, Uint8Array.of(type >> 8, type & 0xff));
}

/** A command without handles or sessions from its parameter bytes (for values the core's encoder refuses to write). */
function rawCommand(cc: number, params: Uint8Array): Uint8Array {
  const out = new Uint8Array(10 + params.length);
  const v = new DataView(out.buffer);
  v.setUint16(0, 0x8001);
  v.setUint32(2, out.length);
  v.setUint32(6, cc);
  out.set(params, 10);
  return out;
}

/** `cmd` encoded with empty passwords, then handle `i` (0-based) replaced by `value`, which the encoder would refuse. */
function withHandle<Cmd extends AnyCommand>(cmd: Cmd, handles: CommandHandles<Cmd>, params: CommandParams<Cmd>, i: number, value: number): Uint8Array {
  const out = encodeCommand(cmd, handles, params, { sessions: Array.from({ length: cmd.authCount }, () => passwordAuth()) }).slice();
  new DataView(out.buffer).setUint32(10 + 4 * i, value);
  return out;
}

/** `bytes` with the UINT32 at `at` (negative: from the end) replaced by `value`. */
function patchU32(bytes: Uint8Array, at: number, value: number): Uint8Array {
  const out = bytes.slice();
  new DataView(out.buffer).setUint32(at < 0 ? out.length + at : at, value);
  return out;
}

const u16 = (n: number): Uint8Array => Uint8Array.of(n >> 8, n & 0xff);
const tpm2b = (b: Uint8Array): Uint8Array => Uint8Array.of(b.length >> 8, b.length & 0xff, ...b);

const randomAndCapability: Sequence = async (log, side) => {
  const { tpm } = side;
  await log.step('GetRandom 16', () => tpm.run(C.GetRandom, {}, { bytesRequested: 16 }), (r) => r.params.randomBytes.length);
  await log.raw('GetRandom without its parameter', rawCommand(TPM_CC.GetRandom, EMPTY));
  // divergences.ts 'command-tag-not-a-tpm-st': a tag no TPM_ST names (here TPM 1.2's TPM_TAG_RQU_COMMAND).
  const tpm12Tag = rawCommand(TPM_CC.GetRandom, u16(8));
  tpm12Tag.set(u16(0x00c1), 0);
  await log.raw('GetRandom with a TPM 1.2 tag', tpm12Tag);
  await log.step('GetRandom 100 (capped at a digest)', () => tpm.run(C.GetRandom, {}, { bytesRequested: 100 }), (r) => r.params.randomBytes.length);
  await log.step('StirRandom', () => tpm.run(C.StirRandom, {}, { inData: bytes(32, 9) }));
  await log.raw('StirRandom over 128 bytes', rawCommand(TPM_CC.StirRandom, tpm2b(bytes(129, 1))));
  const cap = (capability: number, property: number, count: number) => tpm.run(C.GetCapability, {}, { capability, property, propertyCount: count } as never);
  // The algorithms both list must have the same properties; the ones only one TPM lists are named.
  const algs = (r: { params: { capabilityData: unknown } }) => new Map(((r.params.capabilityData as { data: readonly { alg: number; algProperties: unknown }[] }).data).map((a) => [a.alg, JSON.stringify(a.algProperties)]));
  const ours = new Map(IMPLEMENTED_ALGORITHMS.map(([alg]) => [alg, true]));
  await log.step('GetCapability ALGS: ours, with their properties', () => cap(TPM_CAP.ALGS, 0, 128), (r) => [...algs(r)].filter(([a]) => ours.has(a)).map(([a, p]) => `${algName(a)} ${p}`).join(', '));
  await log.step('GetCapability ALGS: beyond ours', () => cap(TPM_CAP.ALGS, 0, 128), (r) => [...algs(r).keys()].filter((a) => !ours.has(a)).map(algName).join(' ') || '(none)');
  await log.bytes('GetCapability PCRS', () => cap(TPM_CAP.PCRS, 0, 16));
  await log.step('GetCapability COMMANDS of the core', () => cap(TPM_CAP.COMMANDS, 0x11f, 256), (r) => commandsListed(r.params.capabilityData as never).missing);
  await log.step('GetCapability COMMANDS beyond the core', () => cap(TPM_CAP.COMMANDS, 0x11f, 256), (r) => commandsListed(r.params.capabilityData as never).extra);
  await log.bytes('GetCapability HANDLES transient', () => cap(TPM_CAP.HANDLES, 0x80000000, 16));
  await log.bytes('GetCapability HANDLES persistent', () => cap(TPM_CAP.HANDLES, 0x81000000, 16));
  await log.step('GetCapability ECC_CURVES', () => cap(TPM_CAP.ECC_CURVES, 0, 16), (r) => (r.params.capabilityData as { data: readonly number[] }).data.map(curveName).join(' '));
  await log.raw('GetCapability of an unknown capability', rawCommand(TPM_CC.GetCapability, Uint8Array.of(...u32(0x1234), ...u32(0), ...u32(1))));
  await log.step('GetCapability TPM_PROPERTIES NV_BUFFER_MAX', () => cap(TPM_CAP.TPM_PROPERTIES, TPM_PT.NV_BUFFER_MAX, 1), (r) => JSON.stringify(r.params.capabilityData, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)));
  await log.step('TestParms ECC P-256', () => tpm.run(C.TestParms, {}, { parameters: { type: TPM_ALG.ECC, parameters: ECC_SIGN.parameters } as never }));
  await log.step('TestParms RSA 1024 bits', () => tpm.run(C.TestParms, {}, { parameters: { type: TPM_ALG.RSA, parameters: { symmetric: NO_SYM, scheme: NULL_SCHEME, keyBits: 1024, exponent: 0 } } as never }));
  await log.step('TestParms AES-192-CFB', () => tpm.run(C.TestParms, {}, { parameters: { type: TPM_ALG.SYMCIPHER, parameters: { sym: { algorithm: TPM_ALG.AES, keyBits: 192, mode: TPM_ALG.CFB } } } as never }));
  await log.step('TestParms AES-256-CFB', () => tpm.run(C.TestParms, {}, { parameters: { type: TPM_ALG.SYMCIPHER, parameters: { sym: { algorithm: TPM_ALG.AES, keyBits: 256, mode: TPM_ALG.CFB } } } as never }));
  // Where else a TPMI_AES_KEY_BITS of 192 or an RSA-1024 key can stand: a session's cipher, a parent's, a key.
  await log.step('StartAuthSession with AES-192-CFB', () => tpm.run(C.StartAuthSession, { tpmKey: TPM_RH.NULL as never, bind: TPM_RH.NULL as never }, { nonceCaller: bytes(16, 1), encryptedSalt: EMPTY, sessionType: TPM_SE.HMAC, symmetric: { algorithm: TPM_ALG.AES, keyBits: 192, mode: TPM_ALG.CFB } as never, authHash: SHA256 }), (r) => r.handles.sessionHandle >>> 24);
  await flushAll(side, [], 0x02000000);
  const srk192 = { ...ECC_SRK, parameters: { ...(ECC_SRK.parameters as object), symmetric: { algorithm: TPM_ALG.AES, keyBits: 192, mode: TPM_ALG.CFB } } } as never;
  await log.step('CreatePrimary of a storage key with AES-192', () => primary(side, TPM_RH.OWNER, srk192));
  const rsa1024 = { ...rsaSrkTemplate(), objectAttributes: TPMA_OBJECT.of({ ...rsaSrkTemplate().objectAttributes, noDA: true }), parameters: { ...rsaSrkTemplate().parameters, keyBits: 1024 } } as unknown as TPMT_PUBLIC;
  await log.step('CreatePrimary RSA-1024 storage key: public area', () => primary(side, TPM_RH.OWNER, rsa1024), (k) => [shape(k.publicArea), (k.publicArea.unique as Uint8Array).length]);
  await flushAll(side);
  await log.step('ReadClock', () => tpm.run(C.ReadClock, {}, {}), (r) => r.params.currentTime.clockInfo.safe);
  await log.raw('ReadClock with a trailing byte', rawCommand(TPM_CC.ReadClock, Uint8Array.of(0)));
  await log.step('ClockSet forward', () => tpm.run(C.ClockSet, { auth: TPM_RH.OWNER }, { newTime: 1n << 40n }));
  await log.step('ClockSet backward', () => tpm.run(C.ClockSet, { auth: TPM_RH.OWNER }, { newTime: 100n }));
  await log.raw('ClockSet with the endorsement hierarchy', withHandle(C.ClockSet, { auth: TPM_RH.OWNER }, { newTime: 1n << 41n }, 0, TPM_RH.ENDORSEMENT));
  await log.step('ClockSet with a wrong password', () => tpm.run(C.ClockSet, { auth: TPM_RH.OWNER }, { newTime: 1n << 41n }, wrong));
  await log.step('ClockRateAdjust +1', () => tpm.run(C.ClockRateAdjust, { auth: TPM_RH.OWNER }, { rateAdjust: 1 as never }));
  await log.step('ClockRateAdjust 0', () => tpm.run(C.ClockRateAdjust, { auth: TPM_RH.PLATFORM }, { rateAdjust: 0 as never }));
  await log.raw('ClockRateAdjust of 9', encodeCommand(C.ClockRateAdjust, { auth: TPM_RH.OWNER }, { rateAdjust: 1 as never }, { sessions: [passwordAuth()] }).map((b, i, a) => (i === a.length - 1 ? 9 : b)));
};

function commandsListed(data: { capability: number; data: readonly number[] } | { data: { commands?: readonly unknown[] } }): { missing: string; extra: string } {
  const list = (data as { data: readonly unknown[] }).data;
  const codes = new Set((list as readonly (number | { commandIndex: number })[]).map((a) => (typeof a === 'number' ? a : a.commandIndex) & 0xffff));
  const core = new Set(ALL_COMMANDS.map((c) => c.code));
  const name = (cc: number): string => Object.entries(TPM_CC).find(([, v]) => v === cc)?.[0] ?? `0x${cc.toString(16)}`;
  return {
    missing: [...core].filter((c) => !codes.has(c)).map(name).sort().join(' ') || '(none)',
    extra: [...codes].filter((c) => !core.has(c)).map(name).sort().join(' ') || '(none)',
  };
}

const hashing: Sequence = async (log, side) => {
  const { tpm } = side;
  const data = new TextEncoder().encode('the same bytes on both TPMs');
  await log.bytes('Hash SHA-256', () => tpm.run(C.Hash, {}, { data, hashAlg: SHA256, hierarchy: TPM_RH.NULL as never }));
  // A ticket of a hierarchy is an HMAC under that hierarchy's proof: its tag and hierarchy compare, not its digest.
  await log.step('Hash SHA-256 with an owner ticket', () => tpm.run(C.Hash, {}, { data, hashAlg: SHA256, hierarchy: TPM_RH.OWNER as never }), (r) => [hex(r.params.outHash), r.params.validation.tag, r.params.validation.hierarchy, r.params.validation.digest.length]);
  await log.bytes('Hash SHA-1 (no ticket)', () => tpm.run(C.Hash, {}, { data, hashAlg: TPM_ALG.SHA1, hierarchy: TPM_RH.NULL as never }));
  await log.bytes('Hash SHA-384', () => tpm.run(C.Hash, {}, { data, hashAlg: TPM_ALG.SHA384, hierarchy: TPM_RH.NULL as never }));
  await log.raw('Hash with hash NULL', rawCommand(TPM_CC.Hash, Uint8Array.of(...tpm2b(data), ...u16(TPM_ALG.NULL), ...u32(TPM_RH.NULL))));
  await log.raw('Hash SHA3-256 (not implemented)', rawCommand(TPM_CC.Hash, Uint8Array.of(...tpm2b(data), ...u16(0x27), ...u32(TPM_RH.NULL))));
  await log.raw('Hash with a bad hierarchy', rawCommand(TPM_CC.Hash, Uint8Array.of(...tpm2b(data), ...u16(SHA256), ...u32(TPM_RH.LOCKOUT))));
  // Sequences.
  const seq = await log.step('HashSequenceStart', () => tpm.run(C.HashSequenceStart, {}, { auth: Uint8Array.of(1), hashAlg: SHA256 }));
  const h = seq?.handles.sequenceHandle ?? 0x80000000;
  const seqAuth = { sessions: [password(Uint8Array.of(1))] };
  await log.step('SequenceUpdate', () => tpm.run(C.SequenceUpdate, { sequenceHandle: h }, { buffer: data.subarray(0, 5) }, seqAuth));
  await log.step('SequenceUpdate with a wrong auth', () => tpm.run(C.SequenceUpdate, { sequenceHandle: h }, { buffer: data }, wrong));
  await log.step('SequenceComplete (owner ticket)', () => tpm.run(C.SequenceComplete, { sequenceHandle: h }, { buffer: data.subarray(5), hierarchy: TPM_RH.OWNER as never }, seqAuth), (r) => [hex(r.params.result), r.params.validation.tag, r.params.validation.hierarchy]);
  await log.step('SequenceComplete on a flushed sequence', () => tpm.run(C.SequenceComplete, { sequenceHandle: h }, { buffer: EMPTY, hierarchy: TPM_RH.NULL as never }, seqAuth));
  await log.raw('HashSequenceStart SHA3', rawCommand(TPM_CC.HashSequenceStart, Uint8Array.of(0, 0, ...u16(0x27))));
  // Event sequence: PCR 16 (resettable, any locality) gets the digests.
  const ev = await tpm.run(C.HashSequenceStart, {}, { auth: EMPTY, hashAlg: TPM_ALG.NULL as never });
  await log.step('SequenceUpdate of an event sequence', () => tpm.run(C.SequenceUpdate, { sequenceHandle: ev.handles.sequenceHandle }, { buffer: data }));
  await log.bytes('EventSequenceComplete into PCR 16', () => tpm.run(C.EventSequenceComplete, { pcrHandle: 16 as never, sequenceHandle: ev.handles.sequenceHandle }, { buffer: EMPTY }));
  const ev2 = await tpm.run(C.HashSequenceStart, {}, { auth: EMPTY, hashAlg: TPM_ALG.NULL as never });
  await log.step('EventSequenceComplete into PCR 0 at locality 0 … ', () => tpm.run(C.EventSequenceComplete, { pcrHandle: 30 as never, sequenceHandle: ev2.handles.sequenceHandle }, { buffer: EMPTY }));
  await tpm.run(C.FlushContext, {}, { flushHandle: ev2.handles.sequenceHandle }).catch(() => undefined);
  // HMAC with a key loaded from outside: the same bytes on both.
  const key = await external(side, EXT.hmac);
  await log.bytes('HMAC with an external key', () => tpm.run(C.HMAC, { handle: key.handle }, { buffer: data, hashAlg: SHA256 }));
  await log.step('HMAC with another hash than the key\'s', () => tpm.run(C.HMAC, { handle: key.handle }, { buffer: data, hashAlg: TPM_ALG.SHA1 }));
  await log.step('HMAC with a wrong password', () => tpm.run(C.HMAC, { handle: key.handle }, { buffer: data, hashAlg: SHA256 }, wrong));
  await log.step('HMAC on an empty slot', () => tpm.run(C.HMAC, { handle: 0x80000005 }, { buffer: data, hashAlg: SHA256 }));
  const hs = await log.step('HMAC_Start', () => tpm.run(C.HMAC_Start, { handle: key.handle }, { auth: EMPTY, hashAlg: TPM_ALG.NULL as never }));
  if (hs !== undefined) await log.bytes('HMAC sequence complete', () => tpm.run(C.SequenceComplete, { sequenceHandle: hs.handles.sequenceHandle }, { buffer: data, hierarchy: TPM_RH.NULL as never }));
  await log.step('SequenceUpdate on a key (not a sequence)', () => tpm.run(C.SequenceUpdate, { sequenceHandle: key.handle }, { buffer: data }));
  const signer = await external(side, EXT.ecc);
  await log.step('HMAC_Start with an ECC key', () => tpm.run(C.HMAC_Start, { handle: signer.handle }, { auth: EMPTY, hashAlg: SHA256 }));
  await flush(side, signer.handle);
  await flush(side, key.handle);
};

const symmetric: Sequence = async (log, side) => {
  const { tpm } = side;
  const key = await external(side, EXT.aes);
  const iv = bytes(16, 0);
  const data = bytes(32, 0x42);
  await log.bytes('EncryptDecrypt CFB encrypt', () => tpm.run(C.EncryptDecrypt, { keyHandle: key.handle }, { decrypt: 0 as never, mode: TPM_ALG.CFB as never, ivIn: iv, inData: data }));
  await log.bytes('EncryptDecrypt2 CFB decrypt', () => tpm.run(C.EncryptDecrypt2, { keyHandle: key.handle }, { inData: data, decrypt: 1 as never, mode: TPM_ALG.CFB as never, ivIn: iv }));
  await log.bytes('EncryptDecrypt2 CBC encrypt', () => tpm.run(C.EncryptDecrypt2, { keyHandle: key.handle }, { inData: data, decrypt: 0 as never, mode: TPM_ALG.CBC as never, ivIn: iv }));
  await log.step('EncryptDecrypt2 CBC of a partial block', () => tpm.run(C.EncryptDecrypt2, { keyHandle: key.handle }, { inData: data.subarray(0, 15), decrypt: 0 as never, mode: TPM_ALG.CBC as never, ivIn: iv }));
  await log.step('EncryptDecrypt2 with a short IV', () => tpm.run(C.EncryptDecrypt2, { keyHandle: key.handle }, { inData: data, decrypt: 0 as never, mode: TPM_ALG.CFB as never, ivIn: iv.subarray(0, 8) }));
  await log.step('EncryptDecrypt2 with a wrong password', () => tpm.run(C.EncryptDecrypt2, { keyHandle: key.handle }, { inData: data, decrypt: 0 as never, mode: TPM_ALG.CFB as never, ivIn: iv }, wrong));
  const hmacKey = await external(side, EXT.hmac);
  await log.step('EncryptDecrypt with an HMAC key', () => tpm.run(C.EncryptDecrypt, { keyHandle: hmacKey.handle }, { decrypt: 0 as never, mode: TPM_ALG.CFB as never, ivIn: iv, inData: data }));
  await flush(side, hmacKey.handle);
  await flush(side, key.handle);
};

const asymmetric: Sequence = async (log, side) => {
  const { tpm } = side;
  const rsa = await external(side, EXT.rsaOaep);
  const label = new TextEncoder().encode('label\0');
  const msg = bytes(20, 7);
  const enc = await log.step('RSA_Encrypt OAEP', () => tpm.run(C.RSA_Encrypt, { keyHandle: rsa.handle }, { message: msg, inScheme: NULL_SCHEME, label }), (r) => r.params.outData.length);
  if (enc !== undefined) await log.bytes('RSA_Decrypt of it', () => tpm.run(C.RSA_Decrypt, { keyHandle: rsa.handle }, { cipherText: enc.params.outData, inScheme: NULL_SCHEME, label }));
  await log.step('RSA_Decrypt of padding that does not decode', () => tpm.run(C.RSA_Decrypt, { keyHandle: rsa.handle }, { cipherText: bytes(256, 0x11), inScheme: NULL_SCHEME, label: EMPTY }));
  await log.step('RSA_Decrypt of a short cipher text', () => tpm.run(C.RSA_Decrypt, { keyHandle: rsa.handle }, { cipherText: bytes(255, 0x11), inScheme: NULL_SCHEME, label: EMPTY }));
  await log.step('RSA_Decrypt with another scheme than the key\'s', () => tpm.run(C.RSA_Decrypt, { keyHandle: rsa.handle }, { cipherText: bytes(256, 0x11), inScheme: { scheme: TPM_ALG.RSAES } as never, label: EMPTY }));
  await log.step('RSA_Decrypt with a wrong password', () => tpm.run(C.RSA_Decrypt, { keyHandle: rsa.handle }, { cipherText: bytes(256, 0x11), inScheme: NULL_SCHEME, label: EMPTY }, wrong));
  await log.step('RSA_Encrypt of a message too long for OAEP', () => tpm.run(C.RSA_Encrypt, { keyHandle: rsa.handle }, { message: bytes(200, 1), inScheme: NULL_SCHEME, label: EMPTY }));
  await log.step('RSA_Encrypt with a label without NUL', () => tpm.run(C.RSA_Encrypt, { keyHandle: rsa.handle }, { message: msg, inScheme: NULL_SCHEME, label: Uint8Array.of(0x41) }));
  await flush(side, rsa.handle);
  // Raw RSA with the key's public part only: deterministic.
  const rsaPub = await external(side, EXT.rsa, false);
  await log.bytes('RSA_Encrypt raw (scheme NULL, public part)', () => tpm.run(C.RSA_Encrypt, { keyHandle: rsaPub.handle }, { message: bytes(256, 0).fill(3, 1), inScheme: NULL_SCHEME, label: EMPTY }));
  await log.step('RSA_Decrypt with a public part only', () => tpm.run(C.RSA_Decrypt, { keyHandle: rsaPub.handle }, { cipherText: bytes(256, 0x11), inScheme: NULL_SCHEME, label: EMPTY }));
  await flush(side, rsaPub.handle);
  // ECC: ECDH with the external key: ZGen is deterministic.
  const ecc = await external(side, EXT.ecc);
  const peer = (EXT.ecc.publicArea as { unique: { x: Uint8Array; y: Uint8Array } }).unique;
  await log.bytes('ECDH_ZGen with its own point', () => tpm.run(C.ECDH_ZGen, { keyHandle: ecc.handle }, { inPoint: peer }));
  await log.step('ECDH_ZGen of a point off the curve', () => tpm.run(C.ECDH_ZGen, { keyHandle: ecc.handle }, { inPoint: { x: peer.x, y: peer.x } }));
  await log.step('ECDH_KeyGen', () => tpm.run(C.ECDH_KeyGen, { keyHandle: ecc.handle }, {}), (r) => [r.params.zPoint.x.length, r.params.pubPoint.x.length]);
  await flush(side, ecc.handle);
  const hmacKey = await external(side, EXT.hmac);
  await log.step('ECDH_KeyGen with an HMAC key', () => tpm.run(C.ECDH_KeyGen, { keyHandle: hmacKey.handle }, {}));
  await log.step('RSA_Encrypt with an HMAC key', () => tpm.run(C.RSA_Encrypt, { keyHandle: hmacKey.handle }, { message: msg, inScheme: NULL_SCHEME, label: EMPTY }));
  await flush(side, hmacKey.handle);
  await log.bytes('ECC_Parameters P-256', () => tpm.run(C.ECC_Parameters, {}, { curveID: TPM_ECC.NIST_P256 }));
  await log.bytes('ECC_Parameters P-384', () => tpm.run(C.ECC_Parameters, {}, { curveID: TPM_ECC.NIST_P384 }));
  await log.raw('ECC_Parameters of curve 0', encodeRawCurve(0x0178, 0));
  await log.raw('ECC_Parameters of curve 0x99', encodeRawCurve(0x0178, 0x99));
  await log.raw('ECC_Parameters of BN P-638', encodeRawCurve(0x0178, TPM_ECC.BN_P638));
  await log.step('EC_Ephemeral P-256', () => tpm.run(C.EC_Ephemeral, {}, { curveID: TPM_ECC.NIST_P256 }), (r) => r.params.Q.x.length);
  await log.raw('EC_Ephemeral of curve 0', encodeRawCurve(0x018e, 0));
};

function encodeRawCurve(cc: number, curve: number): Uint8Array {
  return Uint8Array.of(0x80, 0x01, 0, 0, 0, 12, 0, 0, cc >> 8, cc & 0xff, curve >> 8, curve & 0xff);
}

/** Two-phase ECC (Commit, EC_Ephemeral, ZGen_2Phase) without ECMQV (that one is last: libtpms stops answering). */
const twoPhase: Sequence = async (log, side) => {
  const { tpm } = side;
  const key = await primary(side, TPM_RH.OWNER, ECC_DECRYPT(TPM_ALG.ECDH));
  const e = await tpm.run(C.EC_Ephemeral, {}, { curveID: TPM_ECC.NIST_P256 });
  const QB = (EXT.ecc.publicArea as { unique: { x: Uint8Array; y: Uint8Array } }).unique;
  const zgen = (counter: number, scheme: number = TPM_ALG.ECDH, h = key.handle) =>
    tpm.run(C.ZGen_2Phase, { keyA: h }, { inQsB: QB, inQeB: QB, inScheme: scheme as never, counter });
  await log.step('ZGen_2Phase ECDH', () => zgen(e.params.counter), (r) => r.params.outZ1.x.length);
  await log.step('ZGen_2Phase with the same counter again', () => zgen(e.params.counter));
  await log.step('ZGen_2Phase with a counter never handed out', () => zgen((e.params.counter + 7) & 0xffff));
  await log.step('ZGen_2Phase with a wrong password', () => tpm.run(C.ZGen_2Phase, { keyA: key.handle }, { inQsB: QB, inQeB: QB, inScheme: TPM_ALG.ECDH as never, counter: 1 }, wrong));
  await log.step('ZGen_2Phase off-curve inQeB', () => tpm.run(C.ZGen_2Phase, { keyA: key.handle }, { inQsB: QB, inQeB: { x: QB.y, y: QB.y }, inScheme: TPM_ALG.ECDH as never, counter: 1 }));
  await flush(side, key.handle);
  // Commit with an ECDAA key: K = [d]P2 is deterministic only with the same d: not here; codes only.
  const daa = await primary(side, TPM_RH.OWNER, { ...ECC_SIGN, parameters: { ...(ECC_SIGN.parameters as object), scheme: { scheme: TPM_ALG.ECDAA, details: { hashAlg: SHA256, count: 0 } } } } as never);
  await log.step('Commit with nothing (E only)', () => tpm.run(C.Commit, { signHandle: daa.handle }, { P1: { x: EMPTY, y: EMPTY }, s2: EMPTY, y2: EMPTY }), (r) => [r.params.K?.x.length, r.params.L?.x.length, r.params.E?.x.length]);
  await log.step('Commit with s2 but no y2', () => tpm.run(C.Commit, { signHandle: daa.handle }, { P1: { x: EMPTY, y: EMPTY }, s2: Uint8Array.of(1), y2: EMPTY }));
  await log.step('Commit with an off-curve P1', () => tpm.run(C.Commit, { signHandle: daa.handle }, { P1: { x: bytes(32, 1), y: bytes(32, 2) }, s2: EMPTY, y2: EMPTY }));
  await flush(side, daa.handle);
  const signer = await primary(side, TPM_RH.OWNER, ECC_SIGN);
  await log.step('Commit with an ECDSA key', () => tpm.run(C.Commit, { signHandle: signer.handle }, { P1: { x: EMPTY, y: EMPTY }, s2: EMPTY, y2: EMPTY }));
  await flush(side, signer.handle);
};

const ecmqv: Sequence = async (log, side) => {
  const { tpm } = side;
  const key = await primary(side, TPM_RH.OWNER, ECC_DECRYPT(TPM_ALG.ECMQV));
  const e = await tpm.run(C.EC_Ephemeral, {}, { curveID: TPM_ECC.NIST_P256 });
  const QB = (EXT.ecc.publicArea as { unique: { x: Uint8Array; y: Uint8Array } }).unique;
  await log.step('ZGen_2Phase ECMQV', () => tpm.run(C.ZGen_2Phase, { keyA: key.handle }, { inQsB: QB, inQeB: QB, inScheme: TPM_ALG.ECMQV as never, counter: e.params.counter }));
};

const objects: Sequence = async (log, side) => {
  const { tpm } = side;
  await log.step('CreatePrimary ECC signer: public area', async () => primary(side, TPM_RH.OWNER, ECC_SIGN), (k) => shape(k.publicArea));
  await flushAll(side);
  await log.step('CreatePrimary in the NULL hierarchy', async () => primary(side, TPM_RH.NULL, ECC_SIGN), (k) => shape(k.publicArea));
  await flushAll(side);
  await log.step('CreatePrimary with a wrong hierarchy password', () => tpm.run(C.CreatePrimary, { primaryHandle: TPM_RH.OWNER }, { inSensitive: sensitive(), inPublic: ECC_SIGN, outsideInfo: EMPTY, creationPCR: [] }, wrong));
  await log.step('CreatePrimary sign and decrypt, restricted', () => primary(side, TPM_RH.OWNER, { ...ECC_SIGN, objectAttributes: TPMA_OBJECT.of({ ...ECC_SIGN.objectAttributes, decrypt: true, restricted: true }) } as never));
  await log.raw('CreatePrimary under the lockout handle', withHandle(C.CreatePrimary, { primaryHandle: TPM_RH.OWNER }, { inSensitive: sensitive(), inPublic: ECC_SIGN, outsideInfo: EMPTY, creationPCR: [] }, 0, TPM_RH.LOCKOUT));
  await log.step('CreatePrimary with a SHA3 nameAlg', () => primary(side, TPM_RH.OWNER, { ...ECC_SIGN, nameAlg: 0x27 } as never));
  const srk = await primary(side, TPM_RH.OWNER, ECC_SRK);
  await log.step('CreatePrimary SRK: public area', async () => srk, (k) => shape(k.publicArea));
  const created = await log.step('Create a sealed object', () => tpm.run(C.Create, { parentHandle: srk.handle }, { inSensitive: sensitive(Uint8Array.of(5), bytes(20, 0xab)), inPublic: SEAL(), outsideInfo: EMPTY, creationPCR: [pcrSelection(SHA256, [16])] }), (r) => shape(r.params.outPublic));
  await log.step('Create under a signing key', async () => {
    const k = await primary(side, TPM_RH.OWNER, ECC_SIGN);
    try {
      return await tpm.run(C.Create, { parentHandle: k.handle }, { inSensitive: sensitive(), inPublic: SEAL(), outsideInfo: EMPTY, creationPCR: [] });
    } finally {
      await flush(side, k.handle);
    }
  });
  await log.step('Create with sensitive data and sensitiveDataOrigin', () => tpm.run(C.Create, { parentHandle: srk.handle }, { inSensitive: sensitive(EMPTY, bytes(8, 1)), inPublic: { ...ECC_SIGN } as never, outsideInfo: EMPTY, creationPCR: [] }));
  // A primary may take inSensitive.data beside sensitiveDataOrigin (Part 3 §24.1): it joins the derivation, so the key differs.
  const HMAC_SIGN = { type: TPM_ALG.KEYEDHASH, nameAlg: SHA256, objectAttributes: TPMA_OBJECT.of({ fixedTPM: true, fixedParent: true, sensitiveDataOrigin: true, userWithAuth: true, noDA: true, sign: true }), authPolicy: EMPTY, parameters: { scheme: { scheme: TPM_ALG.HMAC, details: { hashAlg: SHA256 } } }, unique: EMPTY } as unknown as TPMT_PUBLIC;
  for (const [name, template] of [['ECC', ECC_SIGN], ['HMAC', HMAC_SIGN]] as const) {
    await log.step(`CreatePrimary ${name} with sensitive data and sensitiveDataOrigin: another key`, async () => {
      const plain = await primary(side, TPM_RH.OWNER, template);
      await flush(side, plain.handle);
      const withData = await primary(side, TPM_RH.OWNER, template, sensitive(EMPTY, bytes(8, 1)));
      await flush(side, withData.handle);
      return [shape(withData.publicArea), hex(plain.name) !== hex(withData.name)];
    }, (r) => r);
  }
  await log.step('CreatePrimary HMAC with neither data nor sensitiveDataOrigin', () => primary(side, TPM_RH.OWNER, { ...HMAC_SIGN, objectAttributes: TPMA_OBJECT.of({ ...HMAC_SIGN.objectAttributes, sensitiveDataOrigin: false }) } as never));
  await log.step('Create a sealed object of no data', () => tpm.run(C.Create, { parentHandle: srk.handle }, { inSensitive: sensitive(), inPublic: SEAL(), outsideInfo: EMPTY, creationPCR: [] }));
  await log.step('CreatePrimary ECC with sensitive data, sensitiveDataOrigin clear', () => primary(side, TPM_RH.OWNER, { ...ECC_SIGN, objectAttributes: TPMA_OBJECT.of({ ...ECC_SIGN.objectAttributes, sensitiveDataOrigin: false }) } as never, sensitive(EMPTY, bytes(8, 1))));
  await log.step('Create on an empty slot', () => tpm.run(C.Create, { parentHandle: 0x80000010 }, { inSensitive: sensitive(), inPublic: SEAL(), outsideInfo: EMPTY, creationPCR: [] }));
  if (created === undefined) return;
  const blob = { inPrivate: created.params.outPrivate, inPublic: created.params.outPublic };
  const loaded = await log.step('Load', () => tpm.run(C.Load, { parentHandle: srk.handle }, blob), (r) => hex(r.params.name) === hex(objectName(created.params.outPublic)));
  await log.step('Load with a changed private', () => tpm.run(C.Load, { parentHandle: srk.handle }, { ...blob, inPrivate: flipped(blob.inPrivate, blob.inPrivate.length - 1) }));
  await log.step('Load with another public area', () => tpm.run(C.Load, { parentHandle: srk.handle }, { ...blob, inPublic: SEAL(bytes(32, 1)) }));
  await log.raw('Load under the null hierarchy handle', withHandle(C.Load, { parentHandle: srk.handle }, blob, 0, TPM_RH.NULL));
  if (loaded !== undefined) {
    const h = loaded.handles.objectHandle;
    // Its unique is H(seedValue ‖ data) with a seedValue of the TPM's: the rest of the area compares.
    await log.step('ReadPublic of the sealed object', () => tpm.run(C.ReadPublic, { objectHandle: h }, {}), (r) => [shape(r.params.outPublic), hex(r.params.name) === hex(objectName(r.params.outPublic)), r.params.qualifiedName.length]);
    await log.bytes('Unseal', () => tpm.run(C.Unseal, { itemHandle: h }, {}, { sessions: [password(Uint8Array.of(5))] }));
    await log.step('Unseal with a wrong password', () => tpm.run(C.Unseal, { itemHandle: h }, {}, wrong));
    await log.step('ObjectChangeAuth', () => tpm.run(C.ObjectChangeAuth, { objectHandle: h, parentHandle: srk.handle }, { newAuth: Uint8Array.of(6) }, { sessions: [password(Uint8Array.of(5))] }), () => 0);
    await log.step('ObjectChangeAuth with a wrong parent', () => tpm.run(C.ObjectChangeAuth, { objectHandle: h, parentHandle: h }, { newAuth: Uint8Array.of(6) }, { sessions: [password(Uint8Array.of(5))] }));
    await log.step('ObjectChangeAuth with a too long auth', () => tpm.run(C.ObjectChangeAuth, { objectHandle: h, parentHandle: srk.handle }, { newAuth: bytes(33, 1) }, { sessions: [password(Uint8Array.of(5))] }));
    await flush(side, h);
  }
  await log.step('Unseal of a signing key', async () => {
    const k = await external(side, EXT.ecc);
    try {
      return await tpm.run(C.Unseal, { itemHandle: k.handle }, {});
    } finally {
      await flush(side, k.handle);
    }
  });
  await log.step('ReadPublic of an empty slot', () => tpm.run(C.ReadPublic, { objectHandle: 0x80000010 }, {}));
  await log.raw('ReadPublic of a permanent handle', withHandle(C.ReadPublic, { objectHandle: srk.handle }, {}, 0, TPM_RH.OWNER));
  const cl = await log.step('CreateLoaded under the SRK', () => tpm.run(C.CreateLoaded, { parentHandle: srk.handle }, { inSensitive: sensitive(), inPublic: templateBytes(ECC_SIGN) }), (r) => shape(r.params.outPublic));
  if (cl !== undefined) await flush(side, cl.handles.objectHandle);
  const clp = await log.step('CreateLoaded as a primary', () => tpm.run(C.CreateLoaded, { parentHandle: TPM_RH.ENDORSEMENT as never }, { inSensitive: sensitive(), inPublic: templateBytes(ECC_SIGN) }), (r) => shape(r.params.outPublic));
  if (clp !== undefined) await flush(side, clp.handles.objectHandle);
  await log.step('CreateLoaded of a garbled template', () => tpm.run(C.CreateLoaded, { parentHandle: srk.handle }, { inSensitive: sensitive(), inPublic: Uint8Array.of(0, 0x23, 0, 0) }));
  // LoadExternal: the Name is the Name of the public area on both.
  await log.bytes('LoadExternal of a public ECC key', () => tpm.run(C.LoadExternal, {}, { inPrivate: null as never, inPublic: EXT.ecc.publicArea, hierarchy: TPM_RH.OWNER as never }));
  await flushAll(side, [srk.handle]);
  await log.step('LoadExternal with a private part in the owner hierarchy', () => tpm.run(C.LoadExternal, {}, { inPrivate: EXT.ecc.sensitive as never, inPublic: EXT.ecc.publicArea, hierarchy: TPM_RH.OWNER as never }));
  await log.step('LoadExternal fixedTPM with a private part', () => tpm.run(C.LoadExternal, {}, { inPrivate: EXT.ecc.sensitive as never, inPublic: { ...EXT.ecc.publicArea, objectAttributes: TPMA_OBJECT.of({ ...EXT.ecc.publicArea.objectAttributes, fixedTPM: true, fixedParent: true }) } as never, hierarchy: TPM_RH.NULL as never }));
  await log.step('LoadExternal of a private part that is not the key\'s', () => tpm.run(C.LoadExternal, {}, { inPrivate: EXT.ecc.sensitive as never, inPublic: { ...EXT.ecc.publicArea, unique: { x: (EXT.ecc.publicArea.unique as { y: Uint8Array }).y, y: (EXT.ecc.publicArea.unique as { x: Uint8Array }).x } } as never, hierarchy: TPM_RH.NULL as never }));
  await log.raw('LoadExternal in a bad hierarchy', patchU32(encodeCommand(C.LoadExternal, {}, { inPrivate: null as never, inPublic: EXT.ecc.publicArea, hierarchy: TPM_RH.NULL as never }), -4, TPM_RH.LOCKOUT));
  await flush(side, srk.handle);
};

/** A TPM2B_TEMPLATE's content (a marshaled TPMT_PUBLIC) for CreateLoaded. */
const templateBytes = (p: TPMT_PUBLIC): Uint8Array => templateFromPublic(p);

function flipped(b: Uint8Array, i: number): Uint8Array {
  const c = b.slice();
  c[i]! ^= 1;
  return c;
}

/** Flushes every transient object (but `keep`). */
async function flushAll(side: DiffSide, keep: readonly number[] = [], first = 0x80000000): Promise<void> {
  const r = await side.tpm.run(C.GetCapability, {}, { capability: TPM_CAP.HANDLES, property: first, propertyCount: 16 } as never);
  for (const h of (r.params.capabilityData as { data: readonly number[] }).data) if (!keep.includes(h)) await flush(side, h);
}

const AES128_CFB = { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB } as const;
const ECC_AK = EXT.ecc;
/** PolicyCommandCode(Duplicate) from an empty digest (Part 3 §23.11). */
const DUP_POLICY = sha256(new Uint8Array(32), u32(TPM_CC.PolicyCommandCode), u32(TPM_CC.Duplicate));

const duplicationImportCredential: Sequence = async (log, side) => {
  const { tpm } = side;
  const srk = await primary(side, TPM_RH.OWNER, ECC_SRK);
  // Duplicate a key made under the SRK (its policy allows Duplicate), to TPM_RH_NULL and to an outside parent.
  const dupTemplate = { ...ECC_SIGN, objectAttributes: TPMA_OBJECT.of({ sensitiveDataOrigin: true, userWithAuth: true, noDA: true, sign: true }), authPolicy: DUP_POLICY } as never;
  const made = await tpm.run(C.Create, { parentHandle: srk.handle }, { inSensitive: sensitive(), inPublic: dupTemplate, outsideInfo: EMPTY, creationPCR: [] });
  const key = (await tpm.run(C.Load, { parentHandle: srk.handle }, { inPrivate: made.params.outPrivate, inPublic: made.params.outPublic })).handles.objectHandle;
  const keyEntity = { handle: key, name: objectName(made.params.outPublic) };
  const dup = async (newParent: number | { handle: number; name: Uint8Array }, encryptionKeyIn: Uint8Array, symmetricAlg: object) => {
    const s = await policySession(side);
    await tpm.run(C.PolicyCommandCode, { policySession: s }, { code: TPM_CC.Duplicate as never });
    // continueSession clear: the TPM ends the session with the command, so Duplicate is the step's last command.
    return tpm.run(C.Duplicate, { objectHandle: keyEntity, newParentHandle: newParent }, { encryptionKeyIn, symmetricAlg: symmetricAlg as never }, { sessions: [s.use({ continueSession: false })] }).catch(async (e: unknown) => {
      await tpm.flush(s).catch(() => undefined);
      throw e;
    });
  };
  const parent = await primary(side, TPM_RH.OWNER, { ...rsaSrkTemplate(), objectAttributes: TPMA_OBJECT.of({ ...rsaSrkTemplate().objectAttributes, noDA: true }) } as unknown as TPMT_PUBLIC);
  await log.step('Duplicate to NULL', () => dup(TPM_RH.NULL, EMPTY, NO_SYM), (r) => [r.params.encryptionKeyOut.length, r.params.outSymSeed.length]);
  const toParent = await log.step('Duplicate to an outside RSA parent, inner-wrapped', () => dup(parent, EMPTY, AES128_CFB), (r) => [r.params.encryptionKeyOut.length, r.params.duplicate.length, r.params.outSymSeed.length]);
  await log.step('Duplicate with an inner key but no algorithm', () => dup(TPM_RH.NULL, bytes(16, 1), NO_SYM));
  await log.step('Duplicate without the policy session', () => tpm.run(C.Duplicate, { objectHandle: keyEntity, newParentHandle: TPM_RH.NULL }, { encryptionKeyIn: EMPTY, symmetricAlg: NO_SYM }));
  await log.step('Duplicate to a parent that is no storage key', () => dup(keyEntity as never, EMPTY, NO_SYM));
  await log.step('Duplicate of the fixedParent SRK', async () => {
    const s = await policySession(side);
    await tpm.run(C.PolicyCommandCode, { policySession: s }, { code: TPM_CC.Duplicate as never });
    try {
      return await tpm.run(C.Duplicate, { objectHandle: srk, newParentHandle: TPM_RH.NULL }, { encryptionKeyIn: EMPTY, symmetricAlg: NO_SYM }, { sessions: [s] });
    } finally {
      await tpm.flush(s).catch(() => undefined);
    }
  });
  // Rewrap the duplicate from the outside parent to the SRK.
  if (toParent !== undefined) {
    await log.step('Rewrap to the SRK', () => tpm.run(C.Rewrap, { oldParent: parent.handle, newParent: srk.handle }, { inDuplicate: toParent.params.duplicate, name: keyEntity.name, inSymSeed: toParent.params.outSymSeed }), (r) => [r.params.outDuplicate.length > 0, r.params.outSymSeed.length > 0]);
    await log.step('Rewrap with another name', () => tpm.run(C.Rewrap, { oldParent: parent.handle, newParent: srk.handle }, { inDuplicate: toParent.params.duplicate, name: srk.name, inSymSeed: toParent.params.outSymSeed }));
    await log.step('Rewrap with a wrong password', () => tpm.run(C.Rewrap, { oldParent: parent.handle, newParent: srk.handle }, { inDuplicate: toParent.params.duplicate, name: keyEntity.name, inSymSeed: toParent.params.outSymSeed }, wrong));
  }
  await flush(side, key);
  // TPM2B_PRIVATE at libtpms's sizeof(_PRIVATE) (1230: RSA-3072, SHA-512) and one byte over, in each command that takes one.
  // An outer HMAC's size first; for Import (no wrappers) the size of the TPM2B_SENSITIVE that fills it.
  const privateOf = (n: number, first = 32): Uint8Array => Uint8Array.of(...u16(first), ...bytes(n - 2, 0x5c));
  for (const n of [1230, 1231]) {
    await log.step(`Load of a ${n}-byte private`, () => tpm.run(C.Load, { parentHandle: srk.handle }, { inPrivate: privateOf(n), inPublic: made.params.outPublic }));
    await log.step(`Import of a ${n}-byte duplicate`, () => tpm.run(C.Import, { parentHandle: srk.handle }, { encryptionKey: EMPTY, objectPublic: made.params.outPublic, duplicate: privateOf(n, n - 2), inSymSeed: EMPTY, symmetricAlg: NO_SYM }));
    await log.step(`Rewrap of a ${n}-byte duplicate`, () => tpm.run(C.Rewrap, { oldParent: parent.handle, newParent: srk.handle }, { inDuplicate: privateOf(n), name: keyEntity.name, inSymSeed: EMPTY }));
  }
  // A blob without an outer wrapper gains one (2 + 32 bytes under the SHA-256 SRK): it must still fit 1230 bytes.
  for (const n of [1196, 1197]) {
    await log.step(`Rewrap from NULL of ${n} bytes to the SRK`, () => tpm.run(C.Rewrap, { oldParent: TPM_RH.NULL, newParent: srk.handle }, { inDuplicate: bytes(n, 0), name: keyEntity.name, inSymSeed: EMPTY }), (r) => r.params.outDuplicate.length);
  }
  // Import: an outer-wrapped blob for the outside parent, and an inner-only blob (the same bytes on both TPMs).
  const blob = wrapExternalKey(parent.publicArea, { type: 'ecc', privateKey: EC_KEY }, { innerWrap: { encryptionKey: bytes(16, 0x61) } });
  const imp = (b: typeof blob, h = parent.handle) => tpm.run(C.Import, { parentHandle: h }, { encryptionKey: b.encryptionKey, objectPublic: b.objectPublic, duplicate: b.duplicate, inSymSeed: b.inSymSeed, symmetricAlg: b.symmetricAlg as never });
  await log.step('Import under the outside parent', () => imp(blob), (r) => r.params.outPrivate.length > 0);
  await log.step('Import with the seed changed', () => imp({ ...blob, inSymSeed: flipped(blob.inSymSeed, 7) }));
  await log.step('Import with the outer HMAC changed', () => imp({ ...blob, duplicate: flipped(blob.duplicate, 5) }));
  await log.step('Import of a fixedTPM object', () => imp({ ...blob, objectPublic: { ...blob.objectPublic, objectAttributes: TPMA_OBJECT.of({ ...blob.objectPublic.objectAttributes, fixedTPM: true, fixedParent: true }) } as never }));
  // Inner wrapper only (no outer wrapper, no seed): the blob's bytes are the same for both TPMs, so is a wrong inner key's garbage.
  const inner = wrapDuplicate(null, EXT.ecc.publicArea, EXT.ecc.sensitive, { innerWrap: { encryptionKey: bytes(16, 0x61) } });
  await log.step('Import inner-wrapped only', () => imp(inner), (r) => r.params.outPrivate.length > 0);
  for (const k of [0, 1, 2, 3]) await log.step(`Import inner-wrapped with inner key ${k} changed`, () => imp({ ...inner, encryptionKey: flipped(inner.encryptionKey, k) }));
  await log.step('Import inner-wrapped with an inner key of 8 bytes', () => imp({ ...inner, encryptionKey: inner.encryptionKey.subarray(0, 8) }));
  await log.step('Import under a signing key', async () => {
    const signer = await external(side, EXT.ecc, false);
    try {
      return await imp(blob, signer.handle);
    } finally {
      await flush(side, signer.handle);
    }
  });
  // MakeCredential / ActivateCredential with the outside RSA parent as the "EK" and the outside ECC key as the AK.
  const ak = await external(side, ECC_AK);
  const credential = bytes(16, 0x42);
  await log.step('MakeCredential', () => tpm.run(C.MakeCredential, { handle: parent.handle }, { credential, objectName: ak.name }), (r) => [r.params.credentialBlob.length, r.params.secret.length]);
  await log.step('MakeCredential with an oversize credential', () => tpm.run(C.MakeCredential, { handle: parent.handle }, { credential: bytes(33, 1), objectName: ak.name }));
  await log.step('MakeCredential with a signing key', () => tpm.run(C.MakeCredential, { handle: ak.handle }, { credential, objectName: ak.name }));
  const made1 = makeCredential(parent.publicArea, ak.name, credential);
  const activate = (m: { credentialBlob: Uint8Array; secret: Uint8Array }, keyHandle = parent.handle) =>
    tpm.run(C.ActivateCredential, { activateHandle: ak, keyHandle }, { credentialBlob: m.credentialBlob, secret: m.secret });
  await log.bytes('ActivateCredential', () => activate(made1));
  await log.step('ActivateCredential of a changed blob', () => activate({ ...made1, credentialBlob: flipped(made1.credentialBlob, made1.credentialBlob.length - 1) }));
  await log.step('ActivateCredential with a secret that does not decode', () => activate({ ...made1, secret: flipped(made1.secret, 9) }));
  await log.step('ActivateCredential with a signing key', () => activate(made1, ak.handle));
  await flush(side, ak.handle);
  await flush(side, parent.handle);
  await flush(side, srk.handle);
};

const signingAttestationAudit: Sequence = async (log, side) => {
  const { tpm } = side;
  const digest = sha256(new TextEncoder().encode('signed'));
  // HMAC signatures with a key from outside are deterministic; so is a NULL-hierarchy verification ticket.
  const hk = await external(side, EXT.hmac);
  await log.bytes('Sign with an HMAC key', () => tpm.run(C.Sign, { keyHandle: hk.handle }, { digest, inScheme: { scheme: TPM_ALG.HMAC, details: { hashAlg: SHA256 } } as never, validation: nullTicket() }));
  await log.step('Sign with a short digest', () => tpm.run(C.Sign, { keyHandle: hk.handle }, { digest: digest.subarray(1), inScheme: { scheme: TPM_ALG.HMAC, details: { hashAlg: SHA256 } } as never, validation: nullTicket() }));
  await log.step('Sign with a wrong password', () => tpm.run(C.Sign, { keyHandle: hk.handle }, { digest, inScheme: NULL_SCHEME, validation: nullTicket() }, wrong));
  const sig = await tpm.run(C.Sign, { keyHandle: hk.handle }, { digest, inScheme: NULL_SCHEME, validation: nullTicket() });
  await log.bytes('VerifySignature of it', () => tpm.run(C.VerifySignature, { keyHandle: hk.handle }, { digest, signature: sig.params.signature }));
  await log.step('VerifySignature of another digest', () => tpm.run(C.VerifySignature, { keyHandle: hk.handle }, { digest: flipped(digest, 0), signature: sig.params.signature }));
  await flush(side, hk.handle);
  const ek = await external(side, EXT.ecc);
  await log.step('Sign with ECDSA (outside key)', () => tpm.run(C.Sign, { keyHandle: ek.handle }, { digest, inScheme: { scheme: TPM_ALG.ECDSA, details: { hashAlg: SHA256 } } as never, validation: nullTicket() }), (r) => r.params.signature.sigAlg);
  await log.step('Sign with RSASSA on an ECC key', () => tpm.run(C.Sign, { keyHandle: ek.handle }, { digest, inScheme: { scheme: TPM_ALG.RSASSA, details: { hashAlg: SHA256 } } as never, validation: nullTicket() }));
  await flush(side, ek.handle);
  // Attestation with a restricted signer made in the endorsement hierarchy from a fixed template.
  const akTemplate = { ...ECC_SIGN, objectAttributes: TPMA_OBJECT.of({ ...ECC_SIGN.objectAttributes, restricted: true }) } as never;
  const ak = await primary(side, TPM_RH.ENDORSEMENT, akTemplate);
  const created = await tpm.run(C.CreatePrimary, { primaryHandle: TPM_RH.OWNER }, { inSensitive: sensitive(), inPublic: ECC_SIGN, outsideInfo: Uint8Array.of(1, 2), creationPCR: [] });
  const obj = created.handles.objectHandle;
  const attested = (r: { params: { certifyInfo?: unknown; quoted?: unknown; timeInfo?: unknown; auditInfo?: unknown } }) => {
    const a = (r.params.certifyInfo ?? r.params.quoted ?? r.params.timeInfo ?? r.params.auditInfo) as { type: number; extraData: Uint8Array; attested: Record<string, unknown> };
    // The clock, firmware and the signer's Name differ between TPMs; the type, extraData and the attested body (less times) agree.
    // Names of keys the TPMs made differ (seeds differ): their sizes are compared.
    const body = Object.fromEntries(
      Object.entries(a.attested)
        .filter(([k]) => !['time', 'clockInfo', 'firmwareVersion'].includes(k))
        .map(([k, v]) => (/name/i.test(k) && v instanceof Uint8Array ? [k, v.length] : [k, v])),
    );
    return JSON.stringify({ type: a.type, extraData: a.extraData, body }, (_k, v) => (v instanceof Uint8Array ? hex(v) : typeof v === 'bigint' ? v.toString() : v));
  };
  await log.step('Certify (unsigned)', () => tpm.run(C.Certify, { objectHandle: obj, signHandle: TPM_RH.NULL as never }, { qualifyingData: Uint8Array.of(9), inScheme: NULL_SCHEME }), attested);
  await log.step('Certify with the AK', () => tpm.run(C.Certify, { objectHandle: obj, signHandle: ak.handle }, { qualifyingData: Uint8Array.of(9), inScheme: NULL_SCHEME }), attested);
  await log.step('Certify with a wrong password for the object', () => tpm.run(C.Certify, { objectHandle: obj, signHandle: ak.handle }, { qualifyingData: EMPTY, inScheme: NULL_SCHEME }, { sessions: [password(Uint8Array.of(9)), undefined] }));
  await log.step('Certify with an oversize qualifyingData', () => tpm.run(C.Certify, { objectHandle: obj, signHandle: ak.handle }, { qualifyingData: bytes(65, 1), inScheme: NULL_SCHEME }));
  await log.step('CertifyCreation', () => tpm.run(C.CertifyCreation, { signHandle: ak.handle, objectHandle: obj }, { qualifyingData: EMPTY, creationHash: created.params.creationHash, inScheme: NULL_SCHEME, creationTicket: created.params.creationTicket }), attested);
  await log.step('CertifyCreation with another creationHash', () => tpm.run(C.CertifyCreation, { signHandle: ak.handle, objectHandle: obj }, { qualifyingData: EMPTY, creationHash: flipped(created.params.creationHash, 0), inScheme: NULL_SCHEME, creationTicket: created.params.creationTicket }));
  await log.step('Quote PCRs 0-7, 16', () => tpm.run(C.Quote, { signHandle: ak.handle }, { qualifyingData: Uint8Array.of(7), inScheme: NULL_SCHEME, PCRselect: [pcrSelection(SHA256, [0, 1, 2, 3, 4, 5, 6, 7, 16])] }), attested);
  await log.raw('Quote with the owner handle', withHandle(C.Quote, { signHandle: TPM_RH.NULL as never }, { qualifyingData: EMPTY, inScheme: NULL_SCHEME, PCRselect: [] }, 0, TPM_RH.OWNER));
  await log.step('Quote with a scheme other than the key\'s', () => tpm.run(C.Quote, { signHandle: ak.handle }, { qualifyingData: EMPTY, inScheme: { scheme: TPM_ALG.ECDSA, details: { hashAlg: TPM_ALG.SHA384 } } as never, PCRselect: [] }));
  await log.step('GetTime', () => tpm.run(C.GetTime, { privacyAdminHandle: TPM_RH.ENDORSEMENT as never, signHandle: ak.handle }, { qualifyingData: EMPTY, inScheme: NULL_SCHEME }), (r) => (r.params.timeInfo as { type: number }).type);
  await log.raw('GetTime with the owner as privacy admin', withHandle(C.GetTime, { privacyAdminHandle: TPM_RH.ENDORSEMENT as never, signHandle: ak.handle }, { qualifyingData: EMPTY, inScheme: NULL_SCHEME }, 0, TPM_RH.OWNER));
  // Command audit of Hash (deterministic cpHash and rpHash): the audit digest is the same on both TPMs.
  const setAudit = (auditAlg: number, setList: number[], clearList: number[], h: number = TPM_RH.OWNER) => tpm.run(C.SetCommandCodeAuditStatus, { auth: h as never }, { auditAlg: auditAlg as never, setList: setList as never, clearList: clearList as never });
  await log.step('SetCommandCodeAuditStatus SHA-256', () => setAudit(SHA256, [], []));
  await log.step('SetCommandCodeAuditStatus alg and list at once', () => setAudit(SHA256, [TPM_CC.Hash], []));
  await log.raw('SetCommandCodeAuditStatus with the endorsement hierarchy', withHandle(C.SetCommandCodeAuditStatus, { auth: TPM_RH.OWNER as never }, { auditAlg: TPM_ALG.NULL as never, setList: [TPM_CC.Hash] as never, clearList: [] as never }, 0, TPM_RH.ENDORSEMENT));
  await log.step('SetCommandCodeAuditStatus set Hash', () => setAudit(TPM_ALG.NULL, [TPM_CC.Hash], []));
  await log.step('audited Hash', () => tpm.run(C.Hash, {}, { data: Uint8Array.of(1, 2, 3), hashAlg: SHA256, hierarchy: TPM_RH.NULL as never }));
  const auditDigest = (r: { params: { auditInfo: unknown } }) => {
    const a = (r.params.auditInfo as { attested: { auditCounter: bigint; digestAlg: number; auditDigest: Uint8Array; commandDigest: Uint8Array } }).attested;
    return `${a.digestAlg} ${hex(a.auditDigest)} ${hex(a.commandDigest)}`;
  };
  await log.step('GetCommandAuditDigest', () => tpm.run(C.GetCommandAuditDigest, { privacyHandle: TPM_RH.ENDORSEMENT as never, signHandle: TPM_RH.NULL as never }, { qualifyingData: EMPTY, inScheme: NULL_SCHEME }), auditDigest);
  await log.raw('GetCommandAuditDigest with the owner', withHandle(C.GetCommandAuditDigest, { privacyHandle: TPM_RH.ENDORSEMENT as never, signHandle: TPM_RH.NULL as never }, { qualifyingData: EMPTY, inScheme: NULL_SCHEME }, 0, TPM_RH.OWNER));
  await log.step('SetCommandCodeAuditStatus clear Hash', () => setAudit(TPM_ALG.NULL, [], [TPM_CC.Hash]));
  // A session audit over two Hash commands.
  const s = await tpm.startAuthSession({ type: 'hmac', symmetric: NO_SYM });
  for (const i of [1, 2]) await tpm.run(C.Hash, {}, { data: Uint8Array.of(i), hashAlg: SHA256, hierarchy: TPM_RH.NULL as never }, { sessions: [s.use({ audit: true })] });
  const sessionDigest = (r: { params: { auditInfo: unknown } }) => hex((r.params.auditInfo as { attested: { sessionDigest: Uint8Array } }).attested.sessionDigest);
  await log.step('GetSessionAuditDigest', () => tpm.run(C.GetSessionAuditDigest, { privacyAdminHandle: TPM_RH.ENDORSEMENT as never, signHandle: TPM_RH.NULL as never, sessionHandle: s.handle as never }, { qualifyingData: EMPTY, inScheme: NULL_SCHEME }), sessionDigest);
  await log.step('GetSessionAuditDigest of a non-session handle', () => tpm.run(C.GetSessionAuditDigest, { privacyAdminHandle: TPM_RH.ENDORSEMENT as never, signHandle: TPM_RH.NULL as never, sessionHandle: 0x02000009 as never }, { qualifyingData: EMPTY, inScheme: NULL_SCHEME }));
  await tpm.flush(s);
  await flush(side, obj);
  await flush(side, ak.handle);
};

const nullTicket = () => ({ tag: 0x8024, hierarchy: TPM_RH.NULL, digest: EMPTY }) as never;

const pcrs: Sequence = async (log, side) => {
  const { tpm } = side;
  // The response without pcrUpdateCounter (its value depends on the power cycles before), and how much it moved.
  let counter = 0;
  const read = (label: string, pcrList: number[], hash: number = SHA256) =>
    log.step(label, () => tpm.run(C.PCR_Read, {}, { pcrSelectionIn: [pcrSelection(hash as never, pcrList)] }), (r) => {
      const moved = r.params.pcrUpdateCounter - counter;
      counter = r.params.pcrUpdateCounter;
      return `${responseParams(side.probe.last).slice(8)} moved ${moved}`;
    });
  await log.step('PCR_Read pcrUpdateCounter after Startup', () => tpm.run(C.PCR_Read, {}, { pcrSelectionIn: [] }), (r) => String((counter = r.params.pcrUpdateCounter)));
  await read('PCR_Read 0, 16, 23', [0, 16, 23]);
  await log.step('PCR_Read values (SHA-256 0-23)', () => tpm.run(C.PCR_Read, {}, { pcrSelectionIn: [pcrSelection(SHA256, Array.from({ length: 24 }, (_, i) => i))] }), (r) => r.params.pcrValues.map(hex).join(','));
  await log.step('PCR_Extend 16', () => tpm.run(C.PCR_Extend, { pcrHandle: 16 as never }, { digests: [{ hashAlg: SHA256, digest: bytes(32, 1) }, { hashAlg: TPM_ALG.SHA1, digest: bytes(20, 2) }] as never }));
  await log.step('PCR_Extend 0 at locality 0', () => tpm.run(C.PCR_Extend, { pcrHandle: 0 as never }, { digests: [{ hashAlg: SHA256, digest: bytes(32, 1) }] as never }));
  await log.step('PCR_Extend 24 (no such PCR)', () => tpm.run(C.PCR_Extend, { pcrHandle: 24 as never }, { digests: [] as never }));
  await log.step('PCR_Extend 17 at locality 0', () => tpm.run(C.PCR_Extend, { pcrHandle: 17 as never }, { digests: [] as never }));
  await log.bytes('PCR_Event 16', () => tpm.run(C.PCR_Event, { pcrHandle: 16 as never }, { eventData: bytes(10, 3) }));
  await log.raw('PCR_Event 24 (no such PCR)', withHandle(C.PCR_Event, { pcrHandle: 16 as never }, { eventData: bytes(10, 3) }, 0, 24));
  await log.raw('PCR_Read of a SHA3-256 bank', rawCommand(TPM_CC.PCR_Read, Uint8Array.of(...u32(1), ...u16(0x27), 3, 1, 0, 0)));
  await log.step('PCR values after', () => tpm.run(C.PCR_Read, {}, { pcrSelectionIn: [pcrSelection(SHA256, [0, 16]), pcrSelection(TPM_ALG.SHA1, [16])] }), (r) => r.params.pcrValues.map(hex).join(','));
  await log.step('PCR_Reset 16', () => tpm.run(C.PCR_Reset, { pcrHandle: 16 as never }, {}));
  await log.step('PCR_Reset 0', () => tpm.run(C.PCR_Reset, { pcrHandle: 0 as never }, {}));
  await log.step('PCR_Reset 23', () => tpm.run(C.PCR_Reset, { pcrHandle: 23 as never }, {}));
  await read('PCR_Read 16 after reset', [16]);
  await log.step('PCR_SetAuthValue 16', () => tpm.run(C.PCR_SetAuthValue, { pcrHandle: 16 as never }, { auth: Uint8Array.of(1) }));
  await log.step('PCR_SetAuthValue 20 (its group takes one)', () => tpm.run(C.PCR_SetAuthValue, { pcrHandle: 20 as never }, { auth: Uint8Array.of(1) }));
  await log.step('PCR_SetAuthPolicy 20', () => tpm.run(C.PCR_SetAuthPolicy, { authHandle: TPM_RH.PLATFORM as never }, { authPolicy: EMPTY, hashAlg: TPM_ALG.NULL as never, pcrNum: 20 as never }));
  await log.step('PCR_SetAuthValue 0', () => tpm.run(C.PCR_SetAuthValue, { pcrHandle: 0 as never }, { auth: Uint8Array.of(1) }));
  await log.step('PCR_SetAuthPolicy 16 (no policy group)', () => tpm.run(C.PCR_SetAuthPolicy, { authHandle: TPM_RH.PLATFORM as never }, { authPolicy: bytes(32, 1), hashAlg: SHA256, pcrNum: 16 as never }));
  await log.raw('PCR_SetAuthPolicy with the owner', withHandle(C.PCR_SetAuthPolicy, { authHandle: TPM_RH.PLATFORM as never }, { authPolicy: bytes(32, 1), hashAlg: SHA256, pcrNum: 16 as never }, 0, TPM_RH.OWNER));
  await log.step('PCR_Allocate SHA-256 only (pending)', () => tpm.run(C.PCR_Allocate, { authHandle: TPM_RH.PLATFORM as never }, { pcrAllocation: [pcrSelection(SHA256, Array.from({ length: 24 }, (_, i) => i)), pcrSelection(TPM_ALG.SHA1, [])] }), (r) => JSON.stringify(r.params));
  await log.raw('PCR_Allocate with the owner', withHandle(C.PCR_Allocate, { authHandle: TPM_RH.PLATFORM as never }, { pcrAllocation: [] }, 0, TPM_RH.OWNER));
  await log.step('PCR_Allocate back to as made', () => tpm.run(C.PCR_Allocate, { authHandle: TPM_RH.PLATFORM as never }, { pcrAllocation: [pcrSelection(SHA256, Array.from({ length: 24 }, (_, i) => i)), pcrSelection(TPM_ALG.SHA1, Array.from({ length: 24 }, (_, i) => i))] }), (r) => JSON.stringify(r.params));
};

/** Policy commands in trial sessions (the digests are deterministic) and in real sessions (the checks). */
const policies: Sequence = async (log, side) => {
  const { tpm } = side;
  const trial = await policySession(side, 'trial');
  const t = { policySession: trial };
  await log.step('PolicyAuthValue', () => tpm.run(C.PolicyAuthValue, t, {}));
  await log.step('PolicyPassword', () => tpm.run(C.PolicyPassword, t, {}));
  await log.step('PolicyCommandCode Unseal', () => tpm.run(C.PolicyCommandCode, t, { code: TPM_CC.Unseal as never }));
  await log.step('PolicyCommandCode of an unknown command', () => tpm.run(C.PolicyCommandCode, t, { code: 0x1ff as never }));
  await log.step('PolicyLocality 0, 3', () => tpm.run(C.PolicyLocality, t, { locality: TPMA_LOCALITY.of({ TPM_LOC_ZERO: true, TPM_LOC_THREE: true }) }));
  await log.step('PolicyLocality none', () => tpm.run(C.PolicyLocality, t, { locality: TPMA_LOCALITY.of({}) }));
  await log.step('PolicyPCR 0-7 (current values)', () => tpm.run(C.PolicyPCR, t, { pcrDigest: EMPTY, pcrs: [pcrSelection(SHA256, [0, 1, 2, 3, 4, 5, 6, 7])] }));
  await log.step('PolicyPCR with a digest of the wrong size', () => tpm.run(C.PolicyPCR, t, { pcrDigest: bytes(20, 1), pcrs: [pcrSelection(SHA256, [0])] }));
  await log.step('PolicyCounterTimer', () => tpm.run(C.PolicyCounterTimer, t, { operandB: u32(5), offset: 0, operation: 0x0009 as never }));
  await log.step('PolicyPhysicalPresence', () => tpm.run(C.PolicyPhysicalPresence, t, {}));
  // The policy commands on a handle that is no loaded session, and PolicyCounterTimer past the end of TPMS_TIME_INFO.
  for (const cmd of [C.PolicyAuthValue, C.PolicyPassword, C.PolicyPhysicalPresence, C.PolicyRestart] as const) {
    await log.raw(`${cmd.name} of a session never started`, withHandle(cmd as typeof C.PolicyAuthValue, { [cmd.handleNames[0]!]: trial.handle } as never, {}, 0, 0x03000009));
  }
  await log.step('PolicyCounterTimer past the end', () => tpm.run(C.PolicyCounterTimer, t, { operandB: u32(5), offset: 60, operation: 0x0009 as never }));
  await log.step('PolicyPCR of a SHA-384 bank that has no PCRs allocated', () => tpm.run(C.PolicyPCR, t, { pcrDigest: EMPTY, pcrs: [pcrSelection(TPM_ALG.SHA384, [0])] }));
  await log.step('PolicyNvWritten yes', () => tpm.run(C.PolicyNvWritten, t, { writtenSet: 1 as never }));
  await log.step('PolicyNvWritten again, no', () => tpm.run(C.PolicyNvWritten, t, { writtenSet: 0 as never }));
  await policyDigest(log, 'trial digest A', trial);
  await log.step('PolicyRestart', () => tpm.run(C.PolicyRestart, { sessionHandle: trial }, {}));
  await log.step('PolicyCpHash', () => tpm.run(C.PolicyCpHash, t, { cpHashA: bytes(32, 4) }));
  await log.step('PolicyCpHash of the wrong size', () => tpm.run(C.PolicyCpHash, t, { cpHashA: bytes(20, 4) }));
  await log.step('PolicyCpHash again, another', () => tpm.run(C.PolicyCpHash, t, { cpHashA: bytes(32, 5) }));
  await log.step('PolicyNameHash after PolicyCpHash', () => tpm.run(C.PolicyNameHash, t, { nameHash: bytes(32, 6) }));
  await policyDigest(log, 'trial digest B', trial);
  await tpm.run(C.PolicyRestart, { sessionHandle: trial }, {});
  await log.step('PolicyNameHash', () => tpm.run(C.PolicyNameHash, t, { nameHash: bytes(32, 6) }));
  await log.step('PolicyDuplicationSelect after PolicyNameHash', () => tpm.run(C.PolicyDuplicationSelect, t, { objectName: EMPTY, newParentName: bytes(34, 1), includeObject: 0 as never }));
  await tpm.run(C.PolicyRestart, { sessionHandle: trial }, {});
  await log.step('PolicyDuplicationSelect', () => tpm.run(C.PolicyDuplicationSelect, t, { objectName: objectName(EXT.ecc.publicArea), newParentName: objectName(EXT.rsa.publicArea), includeObject: 1 as never }));
  await policyDigest(log, 'trial digest C', trial);
  await tpm.run(C.PolicyRestart, { sessionHandle: trial }, {});
  await log.step('PolicyTemplate', () => tpm.run(C.PolicyTemplate, t, { templateHash: bytes(32, 8) }));
  await log.step('PolicyTemplate of the wrong size', () => tpm.run(C.PolicyTemplate, t, { templateHash: bytes(31, 8) }));
  await log.step('PolicyOR of two', () => tpm.run(C.PolicyOR, t, { pHashList: [bytes(32, 1), bytes(32, 2)] }));
  await log.step('PolicyOR of one', () => tpm.run(C.PolicyOR, t, { pHashList: [bytes(32, 1)] }));
  await policyDigest(log, 'trial digest D', trial);
  await tpm.run(C.PolicyRestart, { sessionHandle: trial }, {});
  // PolicySecret / PolicySigned / PolicyTicket / PolicyAuthorize with real entities.
  await log.step('PolicySecret with the owner', () => tpm.run(C.PolicySecret, { authHandle: TPM_RH.OWNER as never, policySession: trial }, { nonceTPM: EMPTY, cpHashA: EMPTY, policyRef: Uint8Array.of(1), expiration: 0 }));
  await log.step('PolicySecret with a wrong password', () => tpm.run(C.PolicySecret, { authHandle: TPM_RH.OWNER as never, policySession: trial }, { nonceTPM: EMPTY, cpHashA: EMPTY, policyRef: EMPTY, expiration: 0 }, wrong));
  const signer = await external(side, EXT.hmac);
  const hmacAuth = (nonceTPM: Uint8Array, expiration: number, cpHashA: Uint8Array, policyRef: Uint8Array) =>
    ({ sigAlg: TPM_ALG.HMAC, signature: { hashAlg: SHA256, digest: new Uint8Array(createHmac('sha256', HMAC_KEY).update(sha256(nonceTPM, u32(expiration), cpHashA, policyRef)).digest()) } }) as never;
  await log.step('PolicySigned (HMAC key) in a trial session', () => tpm.run(C.PolicySigned, { authObject: signer.handle, policySession: trial }, { nonceTPM: EMPTY, cpHashA: EMPTY, policyRef: EMPTY, expiration: 0, auth: hmacAuth(EMPTY, 0, EMPTY, EMPTY) }));
  await policyDigest(log, 'trial digest E', trial);
  await tpm.flush(trial);
  const real = await policySession(side);
  await log.step('PolicySigned with a bad signature', () => tpm.run(C.PolicySigned, { authObject: signer.handle, policySession: real }, { nonceTPM: EMPTY, cpHashA: EMPTY, policyRef: EMPTY, expiration: 0, auth: hmacAuth(EMPTY, 1, EMPTY, EMPTY) }));
  const signed = await log.step('PolicySigned with expiration (ticket)', () => tpm.run(C.PolicySigned, { authObject: signer.handle, policySession: real }, { nonceTPM: EMPTY, cpHashA: EMPTY, policyRef: EMPTY, expiration: -100, auth: hmacAuth(EMPTY, -100 >>> 0, EMPTY, EMPTY) }), (r) => r.params.timeout.length);
  if (signed !== undefined) {
    await log.step('PolicyTicket of it', () => tpm.run(C.PolicyTicket, { policySession: real }, { timeout: signed.params.timeout, cpHashA: EMPTY, policyRef: EMPTY, authName: signer.name, ticket: signed.params.policyTicket }));
    await log.step('PolicyTicket with another policyRef', () => tpm.run(C.PolicyTicket, { policySession: real }, { timeout: signed.params.timeout, cpHashA: EMPTY, policyRef: Uint8Array.of(1), authName: signer.name, ticket: signed.params.policyTicket }));
  }
  await policyDigest(log, 'policy digest F', real);
  // PolicyAuthorize: approve the current digest with the HMAC key (a TPM-verified ticket from VerifySignature).
  const approved = bytes(32, 0x33);
  const aHash = sha256(approved, EMPTY);
  const vsig = { sigAlg: TPM_ALG.HMAC, signature: { hashAlg: SHA256, digest: new Uint8Array(createHmac('sha256', HMAC_KEY).update(aHash).digest()) } } as never;
  const ticket = await tpm.run(C.VerifySignature, { keyHandle: signer.handle }, { digest: aHash, signature: vsig });
  // Approving the session's current digest (all zeros in a fresh session) with an ECDSA key in the owner hierarchy
  // (a NULL-hierarchy ticket is no ticket): node signs H(approvedPolicy ‖ policyRef).
  const zeros = new Uint8Array(32);
  const zHash = sha256(zeros, EMPTY);
  const p1363 = nodeSign('sha256', zeros, { key: EC_KEY, dsaEncoding: 'ieee-p1363' });
  const approver = (await tpm.run(C.LoadExternal, {}, { inPrivate: null as never, inPublic: EXT.ecc.publicArea, hierarchy: TPM_RH.OWNER as never })).params.name;
  const approverHandle = (await tpm.run(C.GetCapability, {}, { capability: TPM_CAP.HANDLES, property: 0x80000000, propertyCount: 16 } as never)).params.capabilityData as { data: readonly number[] };
  const ah = approverHandle.data[approverHandle.data.length - 1]!;
  const zSig = { sigAlg: TPM_ALG.ECDSA, signature: { hash: SHA256, signatureR: p1363.subarray(0, 32), signatureS: p1363.subarray(32) } } as never;
  const zTicket = await tpm.run(C.VerifySignature, { keyHandle: ah }, { digest: zHash, signature: zSig });
  await flush(side, ah);
  const fresh = await policySession(side);
  await log.step('PolicyAuthorize of the session\'s digest', () => tpm.run(C.PolicyAuthorize, { policySession: fresh }, { approvedPolicy: zeros, policyRef: EMPTY, keySign: approver, checkTicket: zTicket.params.validation }));
  await policyDigest(log, 'policy digest after PolicyAuthorize', fresh);
  await tpm.flush(fresh);
  await log.step('PolicyAuthorize of a digest that is not the session\'s', () => tpm.run(C.PolicyAuthorize, { policySession: real }, { approvedPolicy: approved, policyRef: EMPTY, keySign: signer.name, checkTicket: ticket.params.validation }));
  await log.step('PolicyPCR with a digest the PCRs do not have', () => tpm.run(C.PolicyPCR, { policySession: real }, { pcrDigest: bytes(32, 9), pcrs: [pcrSelection(SHA256, [0])] }));
  await log.step('PolicyLocality 2 in a real session', () => tpm.run(C.PolicyLocality, { policySession: real }, { locality: TPMA_LOCALITY.of({ TPM_LOC_TWO: true }) }));
  await log.raw('PolicyGetDigest of a non-session handle', withHandle(C.PolicyGetDigest, { policySession: real.handle as never }, {}, 0, 0x80000001));
  await tpm.flush(real);
  await flush(side, signer.handle);
  // A sealed object with a PolicyPCR ∧ PolicyCommandCode policy, unsealed through a real session, and refused after an extend.
  const srk = await primary(side, TPM_RH.OWNER, ECC_SRK);
  const trial2 = await policySession(side, 'trial');
  await tpm.run(C.PolicyPCR, { policySession: trial2 }, { pcrDigest: EMPTY, pcrs: [pcrSelection(SHA256, [16])] });
  await tpm.run(C.PolicyCommandCode, { policySession: trial2 }, { code: TPM_CC.Unseal as never });
  const policy = (await tpm.run(C.PolicyGetDigest, { policySession: trial2 }, {})).params.policyDigest;
  await tpm.flush(trial2);
  const sealed = await tpm.run(C.Create, { parentHandle: srk.handle }, { inSensitive: sensitive(EMPTY, bytes(12, 0x5e)), inPublic: SEAL(policy, false), outsideInfo: EMPTY, creationPCR: [] });
  const item = await tpm.run(C.Load, { parentHandle: srk.handle }, { inPrivate: sealed.params.outPrivate, inPublic: sealed.params.outPublic });
  const itemEntity = { handle: item.handles.objectHandle, name: item.params.name };
  const unseal = async (extend: boolean) => {
    const s = await policySession(side);
    try {
      await tpm.run(C.PolicyPCR, { policySession: s }, { pcrDigest: EMPTY, pcrs: [pcrSelection(SHA256, [16])] });
      await tpm.run(C.PolicyCommandCode, { policySession: s }, { code: TPM_CC.Unseal as never });
      if (extend) await tpm.run(C.PCR_Extend, { pcrHandle: 16 as never }, { digests: [{ hashAlg: SHA256, digest: bytes(32, 1) }] as never });
      return await tpm.run(C.Unseal, { itemHandle: itemEntity }, {}, { sessions: [s.use({ continueSession: false })] });
    } finally {
      await tpm.flush(s).catch(() => undefined);
    }
  };
  await log.bytes('Unseal through PolicyPCR', () => unseal(false));
  await log.step('Unseal after PCR 16 changed', () => unseal(true));
  await log.step('Unseal with a password (userWithAuth clear)', () => tpm.run(C.Unseal, { itemHandle: itemEntity }, {}));
  await tpm.run(C.PCR_Reset, { pcrHandle: 16 as never }, {});
  await flush(side, itemEntity.handle);
  await flush(side, srk.handle);
};

const hierarchyAndDa: Sequence = async (log, side) => {
  const { tpm } = side;
  await log.step('HierarchyChangeAuth owner', () => tpm.run(C.HierarchyChangeAuth, { authHandle: TPM_RH.OWNER as never }, { newAuth: Uint8Array.of(1, 2) }));
  await log.step('HierarchyChangeAuth with the old (empty) password', () => tpm.run(C.HierarchyChangeAuth, { authHandle: TPM_RH.OWNER as never }, { newAuth: EMPTY }));
  await log.step('HierarchyChangeAuth too long', () => tpm.run(C.HierarchyChangeAuth, { authHandle: TPM_RH.OWNER as never }, { newAuth: bytes(33, 1) }, { sessions: [password(Uint8Array.of(1, 2))] }));
  // 33 bytes are accepted for a hierarchy (up to a TPMU_HA): the owner's auth is those now.
  await log.step('HierarchyChangeAuth owner back', () => tpm.run(C.HierarchyChangeAuth, { authHandle: TPM_RH.OWNER as never }, { newAuth: EMPTY }, { sessions: [password(bytes(33, 1))] }));
  await log.step('SetPrimaryPolicy owner', () => tpm.run(C.SetPrimaryPolicy, { authHandle: TPM_RH.OWNER as never }, { authPolicy: bytes(32, 1), hashAlg: SHA256 }));
  await log.step('SetPrimaryPolicy of the wrong size', () => tpm.run(C.SetPrimaryPolicy, { authHandle: TPM_RH.OWNER as never }, { authPolicy: bytes(20, 1), hashAlg: SHA256 }));
  await log.step('SetPrimaryPolicy owner back', () => tpm.run(C.SetPrimaryPolicy, { authHandle: TPM_RH.OWNER as never }, { authPolicy: EMPTY, hashAlg: TPM_ALG.NULL as never }));
  await log.step('ChangePPS', () => tpm.run(C.ChangePPS, { authHandle: TPM_RH.PLATFORM as never }, {}));
  await log.raw('ChangePPS with the owner', withHandle(C.ChangePPS, { authHandle: TPM_RH.PLATFORM as never }, {}, 0, TPM_RH.OWNER));
  await log.step('ChangeEPS', () => tpm.run(C.ChangeEPS, { authHandle: TPM_RH.PLATFORM as never }, {}));
  await log.step('ChangeEPS with a wrong password', () => tpm.run(C.ChangeEPS, { authHandle: TPM_RH.PLATFORM as never }, {}, wrong));
  await log.step('HierarchyControl disable endorsement', () => tpm.run(C.HierarchyControl, { authHandle: TPM_RH.PLATFORM as never }, { enable: TPM_RH.ENDORSEMENT as never, state: 0 as never }));
  await log.step('CreatePrimary in the disabled endorsement hierarchy', () => primary(side, TPM_RH.ENDORSEMENT, ECC_SIGN));
  await log.step('HierarchyControl enable endorsement by the owner', () => tpm.run(C.HierarchyControl, { authHandle: TPM_RH.OWNER as never }, { enable: TPM_RH.ENDORSEMENT as never, state: 1 as never }));
  await log.step('HierarchyControl enable endorsement', () => tpm.run(C.HierarchyControl, { authHandle: TPM_RH.PLATFORM as never }, { enable: TPM_RH.ENDORSEMENT as never, state: 1 as never }));
  await log.raw('HierarchyControl of the lockout hierarchy', patchU32(encodeCommand(C.HierarchyControl, { authHandle: TPM_RH.PLATFORM as never }, { enable: TPM_RH.OWNER as never, state: 0 as never }, { sessions: [passwordAuth()] }), -5, TPM_RH.LOCKOUT));
  await log.step('ClearControl disable by lockout', () => tpm.run(C.ClearControl, { auth: TPM_RH.LOCKOUT as never }, { disable: 1 as never }));
  await log.step('Clear while disabled', () => tpm.run(C.Clear, { authHandle: TPM_RH.LOCKOUT as never }, {}));
  await log.step('ClearControl enable by lockout (only platform may)', () => tpm.run(C.ClearControl, { auth: TPM_RH.LOCKOUT as never }, { disable: 0 as never }));
  await log.step('ClearControl enable by platform', () => tpm.run(C.ClearControl, { auth: TPM_RH.PLATFORM as never }, { disable: 0 as never }));
  await log.raw('Clear by the owner', withHandle(C.Clear, { authHandle: TPM_RH.LOCKOUT as never }, {}, 0, TPM_RH.OWNER));
  await log.step('Clear', () => tpm.run(C.Clear, { authHandle: TPM_RH.LOCKOUT as never }, {}));
  await log.step('DictionaryAttackLockReset', () => tpm.run(C.DictionaryAttackLockReset, { lockHandle: TPM_RH.LOCKOUT as never }, {}));
  await log.step('DictionaryAttackParameters', () => tpm.run(C.DictionaryAttackParameters, { lockHandle: TPM_RH.LOCKOUT as never }, { newMaxTries: 3, newRecoveryTime: 1000, lockoutRecovery: 1000 }));
  await log.raw('DictionaryAttackParameters by the owner', withHandle(C.DictionaryAttackParameters, { lockHandle: TPM_RH.LOCKOUT as never }, { newMaxTries: 3, newRecoveryTime: 1000, lockoutRecovery: 1000 }, 0, TPM_RH.OWNER));
  // A DA-protected object and three wrong passwords: lockout.
  const key = await primary(side, TPM_RH.OWNER, { ...ECC_SIGN, objectAttributes: TPMA_OBJECT.of({ ...ECC_SIGN.objectAttributes, noDA: false }) } as never, sensitive(Uint8Array.of(1)));
  // The first DA-protected failure since start-up, resent while the TPM answers TPM_RC_RETRY (as the client and
  // scenarioLog do everywhere else): the answers in order (divergences.ts 'da-first-failure-retry').
  await log.step('first wrong password on a DA key, as sent and resent', async () => {
    const cmd = encodeCommand(C.Sign, { keyHandle: key.handle }, { digest: bytes(32, 1), inScheme: NULL_SCHEME, validation: nullTicket() }, { sessions: [passwordAuth(Uint8Array.of(0xee))] });
    const answers: string[] = [];
    for (let n = 0; n < 4 && (answers.length === 0 || answers.at(-1) === `0x${TPM_RC.RETRY.toString(16)}`); n++) {
      const r = await side.probe.send(cmd);
      answers.push(`0x${new DataView(r.buffer, r.byteOffset, r.byteLength).getUint32(6).toString(16)}`);
    }
    return answers.join(' ');
  }, (a) => a);
  for (const i of [1, 2, 3, 4]) await log.step(`wrong password ${i} on a DA key`, () => tpm.run(C.Sign, { keyHandle: key.handle }, { digest: bytes(32, 1), inScheme: NULL_SCHEME, validation: nullTicket() }, wrong));
  const prop = (p: number) => log.step(`TPM_PT 0x${p.toString(16)}`, () => tpm.run(C.GetCapability, {}, { capability: TPM_CAP.TPM_PROPERTIES, property: p, propertyCount: 1 } as never), (r) => JSON.stringify((r.params.capabilityData as { data: unknown[] }).data[0]));
  await prop(TPM_PT.LOCKOUT_COUNTER);
  await prop(TPM_PT.MAX_AUTH_FAIL);
  await log.step('DictionaryAttackLockReset with a wrong password', () => tpm.run(C.DictionaryAttackLockReset, { lockHandle: TPM_RH.LOCKOUT as never }, {}, wrong));
  await log.step('DictionaryAttackLockReset while lockout auth is locked', () => tpm.run(C.DictionaryAttackLockReset, { lockHandle: TPM_RH.LOCKOUT as never }, {}));
  await flush(side, key.handle);
};

const contexts: Sequence = async (log, side) => {
  const { tpm } = side;
  const key = await external(side, EXT.hmac);
  const saved = await log.step('ContextSave of an object', () => tpm.run(C.ContextSave, { saveHandle: key.handle as never }, {}), (r) => [r.params.context.savedHandle, r.params.context.hierarchy]);
  await flush(side, key.handle);
  if (saved !== undefined) {
    const ctx = saved.params.context;
    const back = await log.step('ContextLoad of it', () => tpm.run(C.ContextLoad, {}, { context: ctx }), (r) => r.handles.loadedHandle >>> 24);
    if (back !== undefined) await log.bytes('HMAC with the reloaded key', () => tpm.run(C.HMAC, { handle: back.handles.loadedHandle }, { buffer: Uint8Array.of(1), hashAlg: SHA256 }));
    if (back !== undefined) await flush(side, back.handles.loadedHandle);
    await log.step('ContextLoad of a changed blob', () => tpm.run(C.ContextLoad, {}, { context: { ...ctx, contextBlob: flipped(ctx.contextBlob, ctx.contextBlob.length - 1) } }));
    await log.step('ContextLoad in another hierarchy', () => tpm.run(C.ContextLoad, {}, { context: { ...ctx, hierarchy: TPM_RH.OWNER } as never }));
  }
  await log.step('ContextSave of an empty slot', () => tpm.run(C.ContextSave, { saveHandle: 0x80000007 as never }, {}));
  await log.raw('ContextSave of a permanent handle', withHandle(C.ContextSave, { saveHandle: 0x80000000 as never }, {}, 0, TPM_RH.OWNER));
  const s = await tpm.startAuthSession({ type: 'hmac', symmetric: NO_SYM });
  await log.step('ContextSave of a session', () => tpm.run(C.ContextSave, { saveHandle: s.handle as never }, {}), (r) => r.params.context.savedHandle >>> 24);
  await log.step('FlushContext of a saved session', () => tpm.run(C.FlushContext, {}, { flushHandle: s.handle }));
  await log.step('FlushContext of it again', () => tpm.run(C.FlushContext, {}, { flushHandle: s.handle }));
  await log.raw('FlushContext of a persistent handle', rawCommand(TPM_CC.FlushContext, u32(0x81000001)));
  await log.raw('FlushContext of the owner', rawCommand(TPM_CC.FlushContext, u32(TPM_RH.OWNER)));
  // StartAuthSession variants.
  await log.step('StartAuthSession with a short nonce', () => tpm.run(C.StartAuthSession, { tpmKey: TPM_RH.NULL as never, bind: TPM_RH.NULL as never }, { nonceCaller: bytes(8, 1), encryptedSalt: EMPTY, sessionType: TPM_SE.HMAC, symmetric: NO_SYM, authHash: SHA256 }));
  await log.step('StartAuthSession with a salt but no key', () => tpm.run(C.StartAuthSession, { tpmKey: TPM_RH.NULL as never, bind: TPM_RH.NULL as never }, { nonceCaller: bytes(16, 1), encryptedSalt: bytes(16, 1), sessionType: TPM_SE.HMAC, symmetric: NO_SYM, authHash: SHA256 }));
  await log.raw('StartAuthSession of an unknown type', rawCommand(TPM_CC.StartAuthSession, Uint8Array.of(...u32(TPM_RH.NULL), ...u32(TPM_RH.NULL), ...tpm2b(bytes(16, 1)), 0, 0, 7, ...u16(TPM_ALG.NULL), ...u16(SHA256))));
  const bound = await log.step('StartAuthSession bound to the owner', () => tpm.run(C.StartAuthSession, { tpmKey: TPM_RH.NULL as never, bind: TPM_RH.OWNER as never }, { nonceCaller: bytes(16, 1), encryptedSalt: EMPTY, sessionType: TPM_SE.POLICY, symmetric: NO_SYM, authHash: SHA256 }), (r) => [r.handles.sessionHandle >>> 24, r.params.nonceTPM.length]);
  if (bound !== undefined) await flush(side, bound.handles.sessionHandle);
  // EvictControl.
  const srk = await primary(side, TPM_RH.OWNER, ECC_SRK);
  await log.step('EvictControl persist the SRK', () => tpm.run(C.EvictControl, { auth: TPM_RH.OWNER as never, objectHandle: srk.handle as never }, { persistentHandle: 0x81000001 as never }));
  await log.step('ReadPublic of the persistent SRK', () => tpm.run(C.ReadPublic, { objectHandle: 0x81000001 }, {}), (r) => [shape(r.params.outPublic), hex(r.params.name) === hex(srk.name)]);
  await log.step('EvictControl to a platform handle by the owner', () => tpm.run(C.EvictControl, { auth: TPM_RH.OWNER as never, objectHandle: srk.handle as never }, { persistentHandle: 0x81800001 as never }));
  await log.step('EvictControl to a taken handle', () => tpm.run(C.EvictControl, { auth: TPM_RH.OWNER as never, objectHandle: srk.handle as never }, { persistentHandle: 0x81000001 as never }));
  await log.step('EvictControl of an external key', async () => {
    const k = await external(side, EXT.hmac);
    try {
      return await tpm.run(C.EvictControl, { auth: TPM_RH.OWNER as never, objectHandle: k.handle as never }, { persistentHandle: 0x81000002 as never });
    } finally {
      await flush(side, k.handle);
    }
  });
  await log.step('EvictControl remove', () => tpm.run(C.EvictControl, { auth: TPM_RH.OWNER as never, objectHandle: 0x81000001 as never }, { persistentHandle: 0x81000001 as never }));
  await log.step('EvictControl remove again', () => tpm.run(C.EvictControl, { auth: TPM_RH.OWNER as never, objectHandle: 0x81000001 as never }, { persistentHandle: 0x81000001 as never }));
  await flush(side, srk.handle);
};

const OWNER_NV = 0x01500010;
const nvAttrs = (a: Record<string, boolean | number>) => TPMA_NV.of({ AUTHREAD: true, AUTHWRITE: true, NO_DA: true, OWNERREAD: true, OWNERWRITE: true, ...a } as never);
const nvPublic = (nvIndex: number, attributes: unknown, dataSize: number, authPolicy: Uint8Array = EMPTY) => ({ nvIndex, nameAlg: SHA256, attributes, authPolicy, dataSize }) as never;

const nv: Sequence = async (log, side) => {
  const { tpm } = side;
  const define = (nvIndex: number, attributes: unknown, dataSize: number, auth: Uint8Array = EMPTY, h: number = TPM_RH.OWNER) =>
    tpm.run(C.NV_DefineSpace, { authHandle: h as never }, { auth, publicInfo: nvPublic(nvIndex, attributes, dataSize) });
  const pub = (label: string, i: number) => log.bytes(label, () => tpm.run(C.NV_ReadPublic, { nvIndex: i as never }, {}));
  await log.step('NV_DefineSpace ordinary', () => define(OWNER_NV, nvAttrs({}), 32, Uint8Array.of(1)));
  await log.step('NV_DefineSpace again', () => define(OWNER_NV, nvAttrs({}), 32));
  await log.step('NV_DefineSpace too big', () => define(OWNER_NV + 1, nvAttrs({}), 4096));
  await log.step('NV_DefineSpace platform index by the owner', () => define(0x01400001, nvAttrs({ PLATFORMCREATE: true }), 8));
  await log.step('NV_DefineSpace counter with a size', () => define(OWNER_NV + 2, nvAttrs({ TPM_NT: 1 }), 4));
  await log.step('NV_DefineSpace with no read attribute', () => define(OWNER_NV + 3, TPMA_NV.of({ AUTHWRITE: true } as never), 4));
  await log.step('NV_DefineSpace with a wrong password', () => tpm.run(C.NV_DefineSpace, { authHandle: TPM_RH.OWNER as never }, { auth: EMPTY, publicInfo: nvPublic(OWNER_NV + 4, nvAttrs({}), 4) }, wrong));
  await pub('NV_ReadPublic ordinary', OWNER_NV);
  await log.step('NV_ReadPublic of nothing', () => tpm.run(C.NV_ReadPublic, { nvIndex: (OWNER_NV + 9) as never }, {}));
  await log.step('NV_Read before a write', () => tpm.run(C.NV_Read, { authHandle: OWNER_NV as never, nvIndex: OWNER_NV as never }, { size: 4, offset: 0 }, { sessions: [password(Uint8Array.of(1))] }));
  await log.step('NV_Write', () => tpm.run(C.NV_Write, { authHandle: OWNER_NV as never, nvIndex: OWNER_NV as never }, { data: bytes(16, 0xd1), offset: 4 }, { sessions: [password(Uint8Array.of(1))] }));
  await log.step('NV_Write past the end', () => tpm.run(C.NV_Write, { authHandle: OWNER_NV as never, nvIndex: OWNER_NV as never }, { data: bytes(16, 0xd1), offset: 20 }, { sessions: [password(Uint8Array.of(1))] }));
  await log.step('NV_Write with a wrong password', () => tpm.run(C.NV_Write, { authHandle: OWNER_NV as never, nvIndex: OWNER_NV as never }, { data: bytes(1, 0), offset: 0 }, wrong));
  await log.bytes('NV_Read by the owner', () => tpm.run(C.NV_Read, { authHandle: TPM_RH.OWNER as never, nvIndex: OWNER_NV as never }, { size: 32, offset: 0 }));
  await log.step('NV_Read past the end', () => tpm.run(C.NV_Read, { authHandle: TPM_RH.OWNER as never, nvIndex: OWNER_NV as never }, { size: 8, offset: 30 }));
  await log.raw('NV_Read by the endorsement hierarchy', withHandle(C.NV_Read, { authHandle: TPM_RH.OWNER as never, nvIndex: OWNER_NV as never }, { size: 8, offset: 0 }, 0, TPM_RH.ENDORSEMENT));
  await pub('NV_ReadPublic after the write (WRITTEN)', OWNER_NV);
  await log.step('NV_ChangeAuth', () => tpm.run(C.NV_ChangeAuth, { nvIndex: OWNER_NV as never }, { newAuth: Uint8Array.of(2) }, { sessions: [password(Uint8Array.of(1))] }));
  await log.step('NV_ChangeAuth with a password (needs a policy)', () => tpm.run(C.NV_ChangeAuth, { nvIndex: OWNER_NV as never }, { newAuth: Uint8Array.of(2) }, { sessions: [password(Uint8Array.of(1))] }));
  // NV_ChangeAuth takes a policy session (ADMIN role): an index whose policy allows it.
  const changeable = OWNER_NV + 8;
  const changePolicy = sha256(new Uint8Array(32), u32(TPM_CC.PolicyCommandCode), u32(TPM_CC.NV_ChangeAuth));
  await tpm.run(C.NV_DefineSpace, { authHandle: TPM_RH.OWNER as never }, { auth: EMPTY, publicInfo: nvPublic(changeable, nvAttrs({}), 8, changePolicy) });
  await log.step('NV_ChangeAuth through its policy', async () => {
    const s = await policySession(side);
    await tpm.run(C.PolicyCommandCode, { policySession: s }, { code: TPM_CC.NV_ChangeAuth as never });
    const name = (await tpm.run(C.NV_ReadPublic, { nvIndex: changeable as never }, {})).params.nvName;
    return tpm.run(C.NV_ChangeAuth, { nvIndex: { handle: changeable, name } as never }, { newAuth: Uint8Array.of(3) }, { sessions: [s.use({ continueSession: false })] });
  });
  await tpm.run(C.NV_UndefineSpace, { authHandle: TPM_RH.OWNER as never, nvIndex: changeable as never }, {});
  await log.step('NV_ReadLock (no READ_STCLEAR)', () => tpm.run(C.NV_ReadLock, { authHandle: TPM_RH.OWNER as never, nvIndex: OWNER_NV as never }, {}));
  await log.step('NV_WriteLock (no WRITEDEFINE/STCLEAR)', () => tpm.run(C.NV_WriteLock, { authHandle: TPM_RH.OWNER as never, nvIndex: OWNER_NV as never }, {}));
  await log.step('NV_Increment of an ordinary index', () => tpm.run(C.NV_Increment, { authHandle: TPM_RH.OWNER as never, nvIndex: OWNER_NV as never }, {}));
  // A counter, bits, extend index; locks.
  const counter = OWNER_NV + 5;
  const bits = OWNER_NV + 6;
  const extend = OWNER_NV + 7;
  await log.step('define counter', () => define(counter, nvAttrs({ TPM_NT: 1, READ_STCLEAR: true }), 8));
  await log.step('NV_Read of a counter never incremented', () => tpm.run(C.NV_Read, { authHandle: TPM_RH.OWNER as never, nvIndex: counter as never }, { size: 8, offset: 0 }));
  await log.step('NV_Increment', () => tpm.run(C.NV_Increment, { authHandle: TPM_RH.OWNER as never, nvIndex: counter as never }, {}));
  await log.step('NV_ReadLock of the counter', () => tpm.run(C.NV_ReadLock, { authHandle: TPM_RH.OWNER as never, nvIndex: counter as never }, {}));
  await log.step('NV_Read of a read-locked counter', () => tpm.run(C.NV_Read, { authHandle: TPM_RH.OWNER as never, nvIndex: counter as never }, { size: 8, offset: 0 }));
  await log.step('NV_Write to a counter', () => tpm.run(C.NV_Write, { authHandle: TPM_RH.OWNER as never, nvIndex: counter as never }, { data: bytes(8, 0), offset: 0 }));
  await log.step('define bits', () => define(bits, nvAttrs({ TPM_NT: 2, WRITE_STCLEAR: true }), 8));
  await log.step('NV_SetBits', () => tpm.run(C.NV_SetBits, { authHandle: TPM_RH.OWNER as never, nvIndex: bits as never }, { bits: 0x8001n }));
  await log.bytes('NV_Read of the bits', () => tpm.run(C.NV_Read, { authHandle: TPM_RH.OWNER as never, nvIndex: bits as never }, { size: 8, offset: 0 }));
  await log.step('NV_SetBits on an ordinary index', () => tpm.run(C.NV_SetBits, { authHandle: TPM_RH.OWNER as never, nvIndex: OWNER_NV as never }, { bits: 1n }));
  await log.step('NV_WriteLock of the bits', () => tpm.run(C.NV_WriteLock, { authHandle: TPM_RH.OWNER as never, nvIndex: bits as never }, {}));
  await log.step('NV_SetBits when write-locked', () => tpm.run(C.NV_SetBits, { authHandle: TPM_RH.OWNER as never, nvIndex: bits as never }, { bits: 2n }));
  await log.step('define extend', () => define(extend, nvAttrs({ TPM_NT: 4, GLOBALLOCK: true }), 32));
  await log.step('NV_Extend', () => tpm.run(C.NV_Extend, { authHandle: TPM_RH.OWNER as never, nvIndex: extend as never }, { data: bytes(5, 1) }));
  await log.bytes('NV_Read of the extend index', () => tpm.run(C.NV_Read, { authHandle: TPM_RH.OWNER as never, nvIndex: extend as never }, { size: 32, offset: 0 }));
  await log.step('NV_Extend of an ordinary index', () => tpm.run(C.NV_Extend, { authHandle: TPM_RH.OWNER as never, nvIndex: OWNER_NV as never }, { data: bytes(5, 1) }));
  await pub('NV_ReadPublic extend', extend);
  await log.raw('NV_GlobalWriteLock by the endorsement', withHandle(C.NV_GlobalWriteLock, { authHandle: TPM_RH.OWNER as never }, {}, 0, TPM_RH.ENDORSEMENT));
  await log.step('NV_GlobalWriteLock', () => tpm.run(C.NV_GlobalWriteLock, { authHandle: TPM_RH.OWNER as never }, {}));
  await log.step('NV_Extend after the global lock', () => tpm.run(C.NV_Extend, { authHandle: TPM_RH.OWNER as never, nvIndex: extend as never }, { data: bytes(5, 1) }));
  // PolicyNV / PolicyAuthorizeNV against the ordinary index (written above).
  const trial = await policySession(side, 'trial');
  await log.step('PolicyNV equal', () => tpm.run(C.PolicyNV, { authHandle: TPM_RH.OWNER as never, nvIndex: OWNER_NV as never, policySession: trial }, { operandB: bytes(4, 0xd1), offset: 4, operation: 0 as never }));
  await log.step('PolicyNV past the end', () => tpm.run(C.PolicyNV, { authHandle: TPM_RH.OWNER as never, nvIndex: OWNER_NV as never, policySession: trial }, { operandB: bytes(4, 0xd1), offset: 30, operation: 0 as never }));
  await policyDigest(log, 'PolicyNV trial digest', trial);
  await tpm.flush(trial);
  const real = await policySession(side);
  await log.step('PolicyNV unequal in a real session', () => tpm.run(C.PolicyNV, { authHandle: TPM_RH.OWNER as never, nvIndex: OWNER_NV as never, policySession: real }, { operandB: bytes(4, 0x00), offset: 4, operation: 0 as never }));
  // PolicyAuthorizeNV: an index holding a TPMT_HA of the session's digest (still empty: all zeros).
  const policyIndex = OWNER_NV + 9;
  await tpm.run(C.NV_DefineSpace, { authHandle: TPM_RH.OWNER as never }, { auth: EMPTY, publicInfo: nvPublic(policyIndex, nvAttrs({}), 34) });
  await log.step('write a TPMT_HA of the empty digest', () => tpm.run(C.NV_Write, { authHandle: TPM_RH.OWNER as never, nvIndex: policyIndex as never }, { data: Uint8Array.of(...u16(SHA256), ...new Uint8Array(32)), offset: 0 }));
  const fresh = await policySession(side);
  await log.step('PolicyAuthorizeNV', () => tpm.run(C.PolicyAuthorizeNV, { authHandle: TPM_RH.OWNER as never, nvIndex: policyIndex as never, policySession: fresh }, {}));
  await policyDigest(log, 'policy digest after PolicyAuthorizeNV', fresh);
  await tpm.flush(fresh);
  await tpm.run(C.NV_UndefineSpace, { authHandle: TPM_RH.OWNER as never, nvIndex: policyIndex as never }, {});
  await log.step('PolicyAuthorizeNV of a digest that is not the session\'s', () => tpm.run(C.PolicyAuthorizeNV, { authHandle: TPM_RH.OWNER as never, nvIndex: OWNER_NV as never, policySession: real }, {}));
  await tpm.flush(real);
  // NV_Certify of the ordinary index, unsigned: the attested body is deterministic.
  await log.step('NV_Certify', () => tpm.run(C.NV_Certify, { signHandle: TPM_RH.NULL as never, authHandle: TPM_RH.OWNER as never, nvIndex: OWNER_NV as never }, { qualifyingData: Uint8Array.of(1), inScheme: NULL_SCHEME, size: 8, offset: 4 }), (r) => JSON.stringify((r.params.certifyInfo as { attested: unknown }).attested, (_k, v) => (v instanceof Uint8Array ? hex(v) : v)));
  await log.step('NV_Certify past the end', () => tpm.run(C.NV_Certify, { signHandle: TPM_RH.NULL as never, authHandle: TPM_RH.OWNER as never, nvIndex: OWNER_NV as never }, { qualifyingData: EMPTY, inScheme: NULL_SCHEME, size: 8, offset: 30 }));
  // Platform index with POLICY_DELETE: NV_UndefineSpaceSpecial.
  const special = 0x01400002;
  const delPolicy = sha256(new Uint8Array(32), u32(TPM_CC.PolicyCommandCode), u32(TPM_CC.NV_UndefineSpaceSpecial));
  await log.step('define a POLICY_DELETE platform index', () => tpm.run(C.NV_DefineSpace, { authHandle: TPM_RH.PLATFORM as never }, { auth: EMPTY, publicInfo: nvPublic(special, TPMA_NV.of({ AUTHREAD: true, AUTHWRITE: true, NO_DA: true, PLATFORMCREATE: true, POLICY_DELETE: true, PPREAD: true, PPWRITE: true } as never), 4, delPolicy) }));
  await log.step('NV_UndefineSpace of it', () => tpm.run(C.NV_UndefineSpace, { authHandle: TPM_RH.PLATFORM as never, nvIndex: special as never }, {}));
  await log.step('NV_UndefineSpaceSpecial with a password', () => tpm.run(C.NV_UndefineSpaceSpecial, { nvIndex: special as never, platform: TPM_RH.PLATFORM as never }, {}));
  await log.step('NV_UndefineSpaceSpecial', async () => {
    const s = await policySession(side);
    await tpm.run(C.PolicyCommandCode, { policySession: s }, { code: TPM_CC.NV_UndefineSpaceSpecial as never });
    const pubArea = await tpm.run(C.NV_ReadPublic, { nvIndex: special as never }, {});
    return tpm.run(C.NV_UndefineSpaceSpecial, { nvIndex: { handle: special, name: pubArea.params.nvName }, platform: TPM_RH.PLATFORM as never }, {}, { sessions: [s.use({ continueSession: false }), undefined] });
  });
  await log.step('NV_UndefineSpace by the platform of an owner index', () => tpm.run(C.NV_UndefineSpace, { authHandle: TPM_RH.PLATFORM as never, nvIndex: OWNER_NV as never }, {}));
  for (const i of [OWNER_NV, counter, bits, extend]) await log.step(`NV_UndefineSpace 0x${i.toString(16)}`, () => tpm.run(C.NV_UndefineSpace, { authHandle: TPM_RH.OWNER as never, nvIndex: i as never }, {}));
  await log.step('NV_UndefineSpace of nothing', () => tpm.run(C.NV_UndefineSpace, { authHandle: TPM_RH.OWNER as never, nvIndex: OWNER_NV as never }, {}));
  await log.bytes('GetCapability HANDLES NV at the end', () => tpm.run(C.GetCapability, {}, { capability: TPM_CAP.HANDLES, property: 0x01000000, propertyCount: 32 } as never));
};

/**
 * NV_ReadLock and NV_WriteLock on every index type (ordinary, counter, bits,
 * extend, PIN fail, PIN pass), each without lock attributes, with
 * READ_STCLEAR and WRITE_STCLEAR, and with WRITEDEFINE: the codes, the
 * public area after each lock (READLOCKED, WRITELOCKED, WRITTEN), what a
 * read and a write answer then, and the public areas after a TPM Reset
 * (Part 2 §13.4: the STCLEAR locks go, WRITEDEFINE's stays).
 */
const nvLocks: Sequence = async (log, side) => {
  const { tpm } = side;
  const owner = { authHandle: TPM_RH.OWNER as never };
  const types = [
    { name: 'ordinary', nt: 0, size: 8, write: (i: number) => tpm.run(C.NV_Write, { ...owner, nvIndex: i as never }, { data: bytes(8, 0x11), offset: 0 }) },
    { name: 'counter', nt: 1, size: 8, write: (i: number) => tpm.run(C.NV_Increment, { ...owner, nvIndex: i as never }, {}) },
    { name: 'bits', nt: 2, size: 8, write: (i: number) => tpm.run(C.NV_SetBits, { ...owner, nvIndex: i as never }, { bits: 0x101n }) },
    { name: 'extend', nt: 4, size: 32, write: (i: number) => tpm.run(C.NV_Extend, { ...owner, nvIndex: i as never }, { data: bytes(5, 1) }) },
    // TPMS_NV_PIN_COUNTER_PARAMETERS: pinCount 0, pinLimit 5.
    { name: 'pin-fail', nt: 8, size: 8, write: (i: number) => tpm.run(C.NV_Write, { ...owner, nvIndex: i as never }, { data: Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 5), offset: 0 }) },
    { name: 'pin-pass', nt: 9, size: 8, write: (i: number) => tpm.run(C.NV_Write, { ...owner, nvIndex: i as never }, { data: Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 5), offset: 0 }) },
  ];
  const variants: { name: string; attrs: Record<string, boolean> }[] = [
    { name: 'no lock attributes', attrs: {} },
    { name: 'READ_STCLEAR, WRITE_STCLEAR', attrs: { READ_STCLEAR: true, WRITE_STCLEAR: true } },
    { name: 'WRITEDEFINE', attrs: { WRITEDEFINE: true } },
  ];
  const defined: { index: number; label: string }[] = [];
  let index = 0x01500100;
  for (const t of types) {
    for (const v of variants) {
      const i = index++;
      const label = `${t.name}, ${v.name}`;
      // A PIN index takes no AUTHWRITE (Part 2 §13.4: its authValue is the PIN, which only the owner may set).
      const attributes = t.nt >= 8 ? TPMA_NV.of({ OWNERWRITE: true, OWNERREAD: true, AUTHREAD: true, NO_DA: true, TPM_NT: t.nt, ...v.attrs } as never) : nvAttrs({ TPM_NT: t.nt, ...v.attrs });
      const ok = await log.step(`${label}: NV_DefineSpace`, () => tpm.run(C.NV_DefineSpace, owner, { auth: EMPTY, publicInfo: nvPublic(i, attributes, t.size) }), () => 0);
      if (ok === undefined) continue;
      defined.push({ index: i, label });
      await log.step(`${label}: written`, () => t.write(i));
      await log.step(`${label}: NV_ReadLock`, () => tpm.run(C.NV_ReadLock, { ...owner, nvIndex: i as never }, {}));
      await log.bytes(`${label}: NV_ReadPublic after NV_ReadLock`, () => tpm.run(C.NV_ReadPublic, { nvIndex: i as never }, {}));
      await log.step(`${label}: NV_Read after NV_ReadLock`, () => tpm.run(C.NV_Read, { ...owner, nvIndex: i as never }, { size: t.size, offset: 0 }), (r) => hex(r.params.data));
      await log.step(`${label}: NV_WriteLock`, () => tpm.run(C.NV_WriteLock, { ...owner, nvIndex: i as never }, {}));
      await log.bytes(`${label}: NV_ReadPublic after NV_WriteLock`, () => tpm.run(C.NV_ReadPublic, { nvIndex: i as never }, {}));
      await log.step(`${label}: written after NV_WriteLock`, () => t.write(i));
    }
  }
  await tpm.run(C.Shutdown, {}, { shutdownType: TPM_SU.CLEAR });
  await side.reset();
  for (const { index: i, label } of defined) {
    await log.bytes(`${label}: NV_ReadPublic after a TPM Reset`, () => tpm.run(C.NV_ReadPublic, { nvIndex: i as never }, {}));
    await log.step(`${label}: written after a TPM Reset`, () => types.find((t) => label.startsWith(`${t.name},`))!.write(i));
    await tpm.run(C.NV_UndefineSpace, { ...owner, nvIndex: i as never }, {});
  }
};

// ---------------------------------------------------------------------------
// The suite: one fresh swtpm and one fresh simulator per describe.

/** Command codes each TPM received over the whole file, and the table rows seen. */
const RECEIVED = { swtpm: new Set<number>(), simulator: new Set<number>() };
const SEEN = new Set<DivergenceId>();
/** Per command code: a logged step of it succeeded / was refused. */
const OUTCOMES = new Map<number, { ok: boolean; refused: boolean }>();

function differential(name: string, sequences: Readonly<Record<string, Sequence>>): void {
  describe(name, () => {
    let swtpm: DiffSide | undefined;
    let simulator: DiffSide | undefined;
    beforeAll(async () => {
      [swtpm, simulator] = await Promise.all([startSide('swtpm'), startSide('simulator')]);
    }, 30_000);
    afterAll(async () => {
      for (const side of [swtpm, simulator]) {
        if (side === undefined) continue;
        for (const cc of side.probe.counts.keys()) RECEIVED[side.kind].add(cc);
        await side.stop();
      }
    });
    for (const [title, sequence] of Object.entries(sequences)) {
      it(title, async () => {
        // Each sequence starts with nothing loaded, whatever an earlier one left behind.
        for (const side of [swtpm!, simulator!]) for (const first of [0x80000000, 0x02000000, 0x03000000]) await flushAll(side, [], first);
        const report = await runDifferential(sequence, { swtpm: swtpm!, simulator: simulator! });
        for (const id of report.divergences) SEEN.add(id);
        // Per command, whether a step succeeded and whether one failed (on swtpm, the reference).
        const { codes, commands } = report.logs.swtpm;
        for (const [label, cc] of Object.entries(commands)) {
          const o = OUTCOMES.get(cc) ?? { ok: false, refused: false };
          if (codes[label] === 0) o.ok = true;
          else o.refused = true;
          OUTCOMES.set(cc, o);
        }
        if (process.env['DIFF_LOG'] === '1') console.log(title, JSON.stringify({ swtpm: report.logs.swtpm.log, simulator: report.logs.simulator.log }, null, 1));
        expect(report.differences).toEqual([]);
      }, 60_000);
    }
  });
}

describeWithSwtpm('differential: swtpm and the simulator, command by command', () => {
  differential('start-up, self tests, random, capabilities, clock', { startupAndTesting, randomAndCapability });
  differential('hashes, HMACs, sequences, symmetric and asymmetric keys', { hashing, symmetric, asymmetric, twoPhase });
  differential('objects, duplication, import, credentials', { objects, duplicationImportCredential });
  differential('signing, attestation, audit, PCRs', { signingAttestationAudit, pcrs });
  differential('policies, contexts and sessions, NV', { policies, contexts, nv });
  differential('hierarchies and dictionary attack', { hierarchyAndDa });
  differential('NV locks on every index type', { nvLocks });
  // Last and alone: libtpms enters failure mode on ECMQV.
  differential('ZGen_2Phase ECMQV', { ecmqv });

  describe('coverage', () => {
    it('every command of ALL_COMMANDS reached both TPMs', () => {
      const name = (cc: number): string => ALL_COMMANDS.find((c) => c.code === cc)?.name ?? `0x${cc.toString(16)}`;
      const all = ALL_COMMANDS.map((c) => c.code);
      expect(all.filter((cc) => !RECEIVED.swtpm.has(cc)).map(name)).toEqual([]);
      expect(all.filter((cc) => !RECEIVED.simulator.has(cc)).map(name)).toEqual([]);
    });

    it('every command has a logged success and a logged refusal', () => {
      const missing = (k: 'ok' | 'refused') => ALL_COMMANDS.filter((c) => OUTCOMES.get(c.code)?.[k] !== true).map((c) => c.name);
      expect({ noSuccess: missing('ok'), noRefusal: missing('refused') }).toEqual({ noSuccess: [], noRefusal: [] });
    });

    it('every row of the divergence table was seen to differ', () => {
      expect(DIVERGENCES.map((d) => d.id).filter((id) => !SEEN.has(id))).toEqual([]);
    });
  });
});

describe('the divergence table', () => {
  it('is short, each row says why (with a spec section or a libtpms reason), ids and (command, answers) are unique', () => {
    expect(DIVERGENCES.length).toBeLessThanOrEqual(16);
    expect(new Set(DIVERGENCES.map((d) => d.id)).size).toBe(DIVERGENCES.length);
    for (const d of DIVERGENCES) {
      expect(d.why).toMatch(/Part [123] §|SP 800|libtpms/);
      expect(d.libtpms).not.toEqual(d.ours);
      expect(TPM_CC[d.command]).toBeTypeOf('number');
      expect(findDivergence(d.command, d.libtpms, d.ours)).toBe(d);
    }
  });
});
