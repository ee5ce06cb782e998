/**
 * Fuzzing the software TPM (issue 6 "Bad input"): any command bytes get a
 * response code, never a crash, hang or unbounded allocation.
 *
 * Seeds are real: a client session (src/client, the way applications use the
 * TPM) is recorded against an engine with a deterministic random source —
 * keys, NV indices of every type, PCRs, sessions (HMAC, policy, salted,
 * encrypted), sequences, attestation, credentials, contexts, hierarchy
 * commands. Replayed on a fresh engine with the same random source, the
 * recording gives the same handles and nonces, so its HMAC sessions verify
 * again and mutated commands reach the handlers, not just the header checks.
 * Arbitrary well-formed commands of every command code (fuzz/parsers.ts
 * validSeeds) are mixed in. Every 2,000 inputs the session is replayed again,
 * so loaded objects and sessions keep coming back after the fuzz flushed them.
 *
 * After the run the engine must still answer GetRandom, and its state must
 * serialize and load again through the store's own format (store.ts).
 */
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tpm, type Entity } from '../src/client/index.js';
import {
  certify,
  contextLoad,
  contextSave,
  create,
  createLoaded,
  createPrimary,
  ecdhKeyGen,
  ecdhZGen,
  eccEcdhTemplate,
  eccSigningTemplate,
  eccStorageTemplate,
  encryptDecrypt,
  eventSequence,
  getRandom,
  getTime,
  hash,
  hmac,
  hmacKeyTemplate,
  aesKeyTemplate,
  load,
  loadExternal,
  nvCertify,
  nvDefine,
  nvExtend,
  nvIncrement,
  nvRead,
  nvReadLock,
  nvSetBits,
  nvUndefine,
  nvWrite,
  nvWriteLock,
  pcrAllocate,
  objectChangeAuth,
  pcrEvent,
  pcrExtend,
  pcrRead,
  pcrReset,
  persist,
  quote,
  readEkCertificates,
  readPublic,
  rsaDecrypt,
  rsaDecryptTemplate,
  rsaEncrypt,
  seal,
  sign,
  stirRandom,
  unpersist,
  unseal,
  verifySignature,
  describe as describeTpm,
  createEk,
  createAk,
  activateCredential,
  importKey,
} from '../src/client/index.js';
import { TpmEngine } from '../src/simulator/engine.js';
import type { TpmProfileName } from '../src/simulator/profiles.js';
import type { RandomSource, SimulatorState } from '../src/simulator/state.js';
import { openSimulatorStore, parseStateFile, serializeState, validateSimulatorState } from '../src/simulator/store.js';
import { Clear, ClearControl, MakeCredential, PolicyCounterTimer, PolicyCpHash, PolicyLocality, PolicyNameHash, PolicyNvWritten, PolicyOR, PolicyPassword, PolicyPhysicalPresence, PolicyRestart, PolicySecret, ReadPublic, PolicyTemplate, Shutdown, PolicyAuthValue, PolicyCommandCode, PolicyGetDigest, PolicyPCR, Unseal, ClockRateAdjust, DictionaryAttackLockReset, DictionaryAttackParameters, GetRandom, GetTestResult, HierarchyChangeAuth, IncrementalSelfTest, ReadClock, SelfTest, Startup, TestParms } from '../src/tpm/commands/index.js';
import { TPM_ALG, TPM_ECC, TPM_EO, TPM_RH, TPM_SU } from '../src/tpm/constants.js';
import { makeCredential } from '../src/tpm/credential.js';
import { encodeCommand, parseResponse } from '../src/tpm/frame.js';
import { pcrSelection } from '../src/tpm/pcr.js';
import { TPM_RC } from '../src/tpm/rc.js';
import { inProcessTransport, type SendOptions, type Transport } from '../src/tpm/transport/index.js';
import { Prng, mutate, validSeeds } from './parsers.js';
import { recordPart2, recordSeedChanges } from './simulator-part2.js';

/**
 * SHA-256 in counter mode: a documented-insecure random source, so a
 * recording replays. `rewind()` starts the stream over: the next replay gets
 * the recording's nonces again, so its HMAC and policy sessions verify.
 */
export function deterministicRandom(label: string): { readonly random: RandomSource; rewind(to?: number): void; position(): number } {
  let counter = 0;
  return {
    random: (size) => {
      const out = new Uint8Array(size);
      for (let off = 0; off < size; off += 32) {
        out.set(createHash('sha256').update(label).update(String(counter++)).digest().subarray(0, size - off), off);
      }
      return out;
    },
    rewind: (to = 0) => {
      counter = to;
    },
    position: () => counter,
  };
}

/** A fixed-rate clock (1 ms per reading), so time-dependent answers replay too; `rewind` sets it back. */
export function steppingClock(): { readonly now: () => number; rewind(to: number): void; position(): number } {
  let t = 0;
  return { now: () => (t += 1), rewind: (to) => (t = to), position: () => t };
}

/**
 * An engine that replays a recording made with the same label, and how to
 * rewind its random stream and clock to where they stood when the engine was
 * made (just after manufacture). A recording starts with a power cycle
 * (_TPM_Init), so with the state restored too, a replay is the recording
 * again: the same nonces, seeds and Time, so its HMAC sessions verify and
 * its tickets (which name the power cycle) are good.
 */
export function fuzzEngine(label = 'trustroot-fuzz', profile?: TpmProfileName): { readonly engine: TpmEngine; rewind(): void } {
  const source = deterministicRandom(label);
  const clock = steppingClock();
  const engine = new TpmEngine({ random: source.random, now: clock.now, ...(profile === undefined ? {} : { profile }) });
  const start = { random: source.position(), clock: clock.position() };
  return {
    engine,
    rewind: () => {
      source.rewind(start.random);
      clock.rewind(start.clock);
    },
  };
}

/** One recorded command: its bytes, locality, and whether a power cycle (_TPM_Init) came before it. */
export interface RecordedCommand {
  readonly bytes: Uint8Array;
  readonly locality: number;
  readonly init?: true;
}

const commandCodeOf = (b: Uint8Array): number => new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(6);
const responseCodeOf = (b: Uint8Array): number => (b.length >= 10 ? new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(6) : -1);

/** Records every command a transport sends (with its locality) and the command codes that succeeded. */
class Recorder implements Transport {
  readonly commands: RecordedCommand[] = [];
  readonly succeeded = new Set<number>();
  readonly #inner: Transport;
  readonly #engine: TpmEngine;
  #initBefore = false;
  constructor(engine: TpmEngine) {
    this.#engine = engine;
    this.#inner = inProcessTransport(engine);
  }
  /** _TPM_Init now; the replay does the same before the next command. */
  powerCycle(): void {
    this.#engine.init();
    this.#initBefore = true;
  }
  async send(command: Uint8Array, options: SendOptions = {}): Promise<Uint8Array> {
    this.commands.push({ bytes: command.slice(), locality: options.locality ?? 0, ...(this.#initBefore ? { init: true as const } : {}) });
    this.#initBefore = false;
    const response = await this.#inner.send(command, options);
    if (responseCodeOf(response) === 0 && command.length >= 10) this.succeeded.add(commandCodeOf(command));
    return response;
  }
  close(): Promise<void> {
    return this.#inner.close();
  }
}

export interface RecordedSession {
  /** The commands in order, as sent. */
  readonly commands: readonly RecordedCommand[];
  /** The client operations that failed (a command not implemented yet, typically): name and error. */
  readonly failedSteps: readonly string[];
  /** Distinct command codes recorded. */
  readonly commandCodes: ReadonlySet<number>;
  /** Command codes answered with success at least once while recording. */
  readonly succeeded: ReadonlySet<number>;
}

const EMPTY = new Uint8Array(0);
const sha256 = (b: Uint8Array | string): Uint8Array => new Uint8Array(createHash('sha256').update(b).digest());

/**
 * Runs a client session covering the everyday command set against a fresh
 * deterministic engine and records it. A step that fails is noted and the
 * session goes on: its commands were recorded all the same and become good
 * seeds once the command lands.
 */
export async function recordClientSession(label = 'trustroot-fuzz'): Promise<RecordedSession> {
  const { engine } = fuzzEngine(label);
  const recorder = new Recorder(engine);
  const tpm = new Tpm(recorder);
  const failed: string[] = [];
  const step = async <T>(name: string, fn: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await fn();
    } catch (e) {
      failed.push(`${name}: ${e instanceof Error ? e.message : String(e)}`);
      return undefined;
    }
  };
  const flush = async (h: Entity | undefined): Promise<void> => {
    if (h !== undefined) await step('flush', () => tpm.flush(h));
  };

  // A power cycle first, as every replay begins.
  recorder.powerCycle();
  await tpm.run(Startup, {}, { startupType: TPM_SU.CLEAR });
  // Room for the fuzz's wrong authorizations before lockout (each replay resets it at the end).
  await step('DA parameters', () => tpm.run(DictionaryAttackParameters, { lockHandle: TPM_RH.LOCKOUT }, { newMaxTries: 1000, newRecoveryTime: 1, lockoutRecovery: 1 }));
  await step('self tests', async () => {
    await tpm.run(SelfTest, {}, { fullTest: 1 });
    await tpm.run(IncrementalSelfTest, {}, { toTest: [TPM_ALG.SHA256, TPM_ALG.AES] });
    await tpm.run(GetTestResult, {}, {});
  });
  await step('random', async () => {
    await getRandom(tpm, 48);
    await stirRandom(tpm, new Uint8Array(randomBytes(40)));
  });
  await step('describe', () => describeTpm(tpm));
  await step('TestParms', () => tpm.run(TestParms, {}, { parameters: { type: TPM_ALG.ECC, parameters: { symmetric: { algorithm: TPM_ALG.NULL }, scheme: { scheme: TPM_ALG.NULL }, curveID: TPM_ECC.NIST_P256, kdf: { scheme: TPM_ALG.NULL } } } as never }));
  await step('clock', async () => {
    await tpm.run(ReadClock, {}, {});
    await tpm.run(ClockRateAdjust, { auth: TPM_RH.OWNER }, { rateAdjust: 0 });
  });
  await step('PCRs', async () => {
    await pcrRead(tpm);
    await pcrExtend(tpm, 16, [{ hashAlg: TPM_ALG.SHA256, digest: sha256('fuzz') }]);
    await pcrEvent(tpm, 16, new TextEncoder().encode('an event'));
    await pcrReset(tpm, 16);
    await pcrReset(tpm, 20, { locality: 2 } as never);
  });

  // Keys: an ECC storage primary with children of every kind.
  const srk = await step('createPrimary ECC', () => createPrimary(tpm, TPM_RH.OWNER, eccStorageTemplate()));
  if (srk !== undefined) {
    const authValue = Uint8Array.of(1, 2);
    const signer = await step('create+load ECC signer', async () => load(tpm, srk, await create(tpm, srk, eccSigningTemplate(), { authValue }), { authValue }));
    if (signer !== undefined) {
      const digest = sha256('message');
      const sig = await step('sign', () => sign(tpm, signer, digest));
      if (sig !== undefined) await step('verifySignature', () => verifySignature(tpm, signer, digest, sig));
      await step('quote', () => quote(tpm, signer, [pcrSelection(TPM_ALG.SHA256, [0, 1, 16])], sha256('nonce').subarray(0, 16)));
      await step('getTime', () => getTime(tpm, signer, sha256('t').subarray(0, 8)));
      await step('certify', () => certify(tpm, signer, signer, EMPTY));
      await step('readPublic', () => readPublic(tpm, signer.handle));
      await step('loadExternal', async () => {
        const k = await loadExternal(tpm, signer.publicArea);
        await tpm.flush(k);
      });
      await step('objectChangeAuth', () => objectChangeAuth(tpm, signer, srk, Uint8Array.of(3, 4)));
      // Last: it flushes the signer.
      await step('contextSave/Load', async () => {
        const saved = await contextSave(tpm, signer);
        await tpm.flush(signer);
        const again = await contextLoad(tpm, saved);
        await tpm.flush(again);
      });
    }
    await step('HMAC key', async () => {
      const k = await load(tpm, srk, await create(tpm, srk, hmacKeyTemplate()));
      await hmac(tpm, k, new Uint8Array(100));
      await hmac(tpm, k, new Uint8Array(3000)); // through HMAC_Start/SequenceUpdate/SequenceComplete
      await tpm.flush(k);
    });
    await step('AES key', async () => {
      const k = await createLoaded(tpm, srk, aesKeyTemplate());
      await encryptDecrypt(tpm, k, false, new Uint8Array(64));
      await tpm.flush(k);
    });
    await step('seal/unseal', async () => {
      const sealed = await seal(tpm, srk, new TextEncoder().encode('secret'), { pcrs: [pcrSelection(TPM_ALG.SHA256, [7])] } as never);
      await unseal(tpm, srk, sealed);
    });
    await step('ECDH', async () => {
      const k = await load(tpm, srk, await create(tpm, srk, eccEcdhTemplate()));
      const { pubPoint } = await ecdhKeyGen(tpm, k);
      await ecdhZGen(tpm, k, pubPoint);
      await tpm.flush(k);
    });
    await step('import', async () => {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const imported = await importKey(tpm, srk, srk.publicArea, { type: 'ecc', privateKey } as never);
      const k = await load(tpm, srk, { privateBlob: imported.privateArea, publicArea: imported.publicArea });
      await tpm.flush(k);
    });
    await step('hmac session', () =>
      tpm.withSession({ bind: srk, salt: { key: srk, public: srk.publicArea } } as never, async (s) => {
        await tpm.run(GetRandom, {}, { bytesRequested: 8 }, { sessions: [s.use({ encrypt: true } as never)] } as never);
      }),
    );
    await step('persist', async () => {
      const p = await persist(tpm, srk, 0x81000020);
      await unpersist(tpm, p);
    });
    await flush(srk);
  }
  await step('RSA', async () => {
    const k = await createPrimary(tpm, TPM_RH.OWNER, rsaDecryptTemplate());
    const c = await rsaEncrypt(tpm, k, new TextEncoder().encode('hello'));
    await rsaDecrypt(tpm, k, c);
    await tpm.flush(k);
  });
  await step('hash and event sequences', async () => {
    await hash(tpm, new Uint8Array(50));
    await hash(tpm, new Uint8Array(2500));
    await eventSequence(tpm, new Uint8Array(100));
  });
  await step('EK, AK, credential', async () => {
    const ek = await createEk(tpm, { template: 'L-2' } as never);
    const ak = await createAk(tpm, ek, { alg: 'ecc' }); // loaded
    const blob = makeCredential(ek.publicArea, ak.name, new TextEncoder().encode('credential'));
    await activateCredential(tpm, ak, ek, blob.credentialBlob, blob.secret);
    // The TPM's own MakeCredential, with the EK's public part.
    await tpm.run(MakeCredential, { handle: ek }, { credential: new TextEncoder().encode('credential'), objectName: ak.name });
    await tpm.flush(ak);
    await tpm.flush(ek);
  });
  await step('EK certificates', () => readEkCertificates(tpm));

  // NV indices of every type.
  await step('NV ordinary', async () => {
    const nv = await nvDefine(tpm, { index: 0x01500010, size: 64, attributes: { WRITE_STCLEAR: true, READ_STCLEAR: true } });
    await nvWrite(tpm, nv, new Uint8Array(64).fill(7));
    await nvRead(tpm, nv);
    await nvWriteLock(tpm, nv);
    await nvReadLock(tpm, nv);
    await nvUndefine(tpm, nv);
  });
  await step('NV counter/bits/extend', async () => {
    const c = await nvDefine(tpm, { index: 0x01500011, type: 'counter' });
    await nvIncrement(tpm, c);
    const b = await nvDefine(tpm, { index: 0x01500012, type: 'bits' });
    await nvSetBits(tpm, b, 0x81n);
    const e = await nvDefine(tpm, { index: 0x01500013, type: 'extend' });
    await nvExtend(tpm, e, new TextEncoder().encode('x'));
    const signer = await createPrimary(tpm, TPM_RH.OWNER, eccSigningTemplate());
    await nvCertify(tpm, signer, c);
    await tpm.flush(signer);
  });
  await step('policy session', () =>
    tpm.withSession({ type: 'trial' } as never, async (s) => {
      await tpm.run(PolicyPCR, { policySession: s }, { pcrDigest: EMPTY, pcrs: [pcrSelection(TPM_ALG.SHA256, [0])] });
      await tpm.run(PolicyCommandCode, { policySession: s }, { code: Unseal.code });
      await tpm.run(PolicyAuthValue, { policySession: s }, {});
      await tpm.run(PolicyGetDigest, { policySession: s }, {});
    }),
  );
  await step('policies', () =>
    tpm.withSession({ type: 'policy' } as never, async (s) => {
      const p = { policySession: s };
      await tpm.run(PolicyLocality, p, { locality: { TPM_LOC_ZERO: true } as never });
      await tpm.run(PolicyPassword, p, {});
      await tpm.run(PolicyCpHash, p, { cpHashA: sha256('cp') });
      await tpm.run(PolicyRestart, { sessionHandle: s }, {});
      await tpm.run(PolicyNameHash, p, { nameHash: sha256('names') });
      await tpm.run(PolicyRestart, { sessionHandle: s }, {});
      // Time ≥ 0 (TPM_EO_UNSIGNED_GE), true whenever it runs.
      await tpm.run(PolicyCounterTimer, p, { operandB: new Uint8Array(8), offset: 0, operation: TPM_EO.UNSIGNED_GE });
      await tpm.run(PolicyRestart, { sessionHandle: s }, {});
      // A list holding the digest the session has now (zeros after PolicyRestart), or PolicyOR refuses (Part 3 §23.6).
      await tpm.run(PolicyOR, p, { pHashList: [new Uint8Array(32), sha256('b')] });
      await tpm.run(PolicyPhysicalPresence, p, {}).catch(() => undefined);
      await tpm.run(PolicyNvWritten, p, { writtenSet: 1 }).catch(() => undefined);
      await tpm.run(PolicyTemplate, p, { templateHash: sha256('template') }).catch(() => undefined);
    }),
  );
  await step('policy secret, signed, authorize', () =>
    tpm.withSession({ type: 'policy' } as never, async (s) => {
      await tpm.run(PolicySecret, { authHandle: TPM_RH.OWNER, policySession: s }, { nonceTPM: s.nonceTPM, cpHashA: EMPTY, policyRef: EMPTY, expiration: 0 } as never);
    }),
  );
  await recordPart2(tpm, step);
  // Hierarchy and DA commands last: they change what later replays need.
  await step('hierarchy', async () => {
    await tpm.run(DictionaryAttackLockReset, { lockHandle: TPM_RH.LOCKOUT }, {});
    await tpm.run(HierarchyChangeAuth, { authHandle: TPM_RH.ENDORSEMENT }, { newAuth: Uint8Array.of(9) });
    await tpm.run(HierarchyChangeAuth, { authHandle: { handle: TPM_RH.ENDORSEMENT, name: EMPTY, authValue: Uint8Array.of(9) } }, { newAuth: EMPTY });
  });
  await recordSeedChanges(tpm, step);
  await step('ClearControl, Clear', async () => {
    await tpm.run(ClearControl, { auth: TPM_RH.PLATFORM }, { disable: 0 } as never);
    await tpm.run(Clear, { authHandle: TPM_RH.PLATFORM }, {});
  });
  // An orderly Shutdown(STATE), a power cycle, and a TPM Resume (Part 1 §36.8).
  await step('Shutdown(STATE), Startup(STATE)', async () => {
    await tpm.run(Shutdown, {}, { shutdownType: TPM_SU.STATE });
    recorder.powerCycle();
    await tpm.run(Startup, {}, { startupType: TPM_SU.STATE });
  });
  // After the Resume: a pending PCR_Allocate refuses Shutdown(STATE) (TPM_RC_TYPE), so Shutdown(CLEAR) ends it.
  await step('PCR_Allocate', () => pcrAllocate(tpm, [{ hashAlg: TPM_ALG.SHA256 }]));
  await step('Shutdown(CLEAR)', () => tpm.run(Shutdown, {}, { shutdownType: TPM_SU.CLEAR }));
  await tpm.close();
  const codes = new Set(recorder.commands.map((c) => commandCodeOf(c.bytes)));
  return { commands: recorder.commands, failedSteps: failed, commandCodes: codes, succeeded: recorder.succeeded };
}

export interface SimulatorFuzzOptions {
  readonly seed: number;
  readonly iterations: number;
  /** A recording to seed from (recordClientSession()); made here when omitted. */
  readonly session?: RecordedSession;
  /** Called every 10,000 inputs with the count so far. */
  readonly onProgress?: (done: number) => void;
  /** The fuzzed engine's profile (src/simulator/profiles.ts); libtpms when omitted. */
  readonly profile?: TpmProfileName;
}

export interface SimulatorFuzzStats {
  inputs: number;
  /** Answers that were not a well-formed response (size field, tag), TPM_RC_FAILURE, a throw, or a state that does not load: must stay 0. */
  untypedCount: number;
  untyped: { input: string; error: string }[];
  /** Response codes seen, by hex code. */
  codes: Map<string, number>;
  /** Inputs answered with success. */
  successes: number;
  /** Command codes that succeeded in the first replay of the recording on the fuzz engine: the seeds that reach their handler. */
  seedCodes: Set<number>;
  /** Replays of the recording, their commands, and how many of those succeeded. */
  replays: number;
  replayedCommands: number;
  replaySuccesses: number;
  /** Fuzzed states checked to serialize, load, validate and serialize to the same bytes (one per segment). */
  stateChecks: number;
  /** The state after the run saved through the store (store.ts) and opened by a fresh engine that answered: true once done. */
  reloaded: boolean;
}

const STARTUP = encodeCommand(Startup, {}, { startupType: TPM_SU.CLEAR });
const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex');
/** Commands between replays of the recording. */
const SEGMENT = 2000;
/** Where the final check keeps a platform key (0x81800000–0x81ffffff: platform persistent handles). */
export const PROBE_PERSISTENT_HANDLE = 0x81800f00;

/** Sets `engine.state` to a copy of `snapshot` (the same object, so nothing holding it goes stale). */
function restoreState(engine: TpmEngine, snapshot: SimulatorState): void {
  const target = engine.state as unknown as Record<string, unknown>;
  for (const key of Object.keys(target)) delete target[key];
  Object.assign(target, structuredClone(snapshot));
}

/** The state's bytes in the store's format, read back, validated and written again: equal bytes, or why not. */
function storeRoundTrip(state: SimulatorState): string | undefined {
  try {
    const bytes = serializeState(state);
    const back = validateSimulatorState(parseStateFile(bytes, state.version));
    if (hexOf(serializeState(back)) !== hexOf(bytes)) return 'the state read back serializes differently';
  } catch (e) {
    return `does not round-trip through the store: ${String(e)}`;
  }
  return undefined;
}

/**
 * After the fuzz (issue 7 "its state file loads"): a power cycle, a platform
 * key made persistent, the state saved through the real store (store.ts, a
 * temp folder), then opened by a fresh engine that must answer GetRandom and
 * ReadPublic of that key with its Name. Returns why not, or undefined.
 */
async function saveAndReload(engine: TpmEngine): Promise<string | undefined> {
  // _TPM_Init and Startup(CLEAR): platformAuth empty and phEnable set again, whatever the fuzz did (Part 1 §36.6).
  engine.init();
  const tpm = new Tpm(inProcessTransport(engine));
  let name: Uint8Array;
  try {
    await tpm.run(Startup, {}, { startupType: TPM_SU.CLEAR });
    // The fuzz may have left something there.
    if ((await tpm.run(ReadPublic, { objectHandle: PROBE_PERSISTENT_HANDLE }, {}).catch(() => undefined)) !== undefined) {
      await unpersist(tpm, PROBE_PERSISTENT_HANDLE, { auth: TPM_RH.PLATFORM });
    }
    const key = await createPrimary(tpm, TPM_RH.PLATFORM, eccSigningTemplate());
    name = (await persist(tpm, key, PROBE_PERSISTENT_HANDLE, { auth: TPM_RH.PLATFORM })).name;
    await tpm.flush(key);
  } catch (e) {
    return `the fuzzed engine, power-cycled, cannot persist a platform key: ${String(e)}`;
  }
  const dir = await mkdtemp(join(tmpdir(), 'trustroot-fuzz-state-'));
  try {
    engine.syncClock();
    const created = await openSimulatorStore(dir, { create: true });
    try {
      await created.store.save(engine.state);
    } finally {
      await created.store.close();
    }
    const opened = await openSimulatorStore(dir);
    try {
      const again = new Tpm(inProcessTransport(new TpmEngine({ state: opened.state })));
      await again.run(Startup, {}, { startupType: TPM_SU.CLEAR });
      if ((await getRandom(again, 16)).length !== 16) return 'GetRandom on the reloaded state: not 16 bytes';
      const pub = await again.run(ReadPublic, { objectHandle: PROBE_PERSISTENT_HANDLE }, {});
      if (hexOf(pub.params.name) !== hexOf(name)) return 'ReadPublic on the reloaded state: another Name';
    } finally {
      await opened.store.close();
    }
  } catch (e) {
    return `the state saved through the store does not load into a working engine: ${String(e)}`;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return undefined;
}

/**
 * Sends `iterations` mutated commands to one engine, in segments of 2,000;
 * every answer must be a well-formed response and never TPM_RC_FAILURE.
 *
 * Each segment starts with _TPM_Init and a replay of the recording. In three
 * segments of four the durable state is first set back to the one the
 * recording was made on (and the random stream rewound), so the replay is the
 * recording again: its HMAC sessions verify, its keys have the recorded Names,
 * and mutations of every command reach their handler — the recording's Clear,
 * ChangePPS and ChangeEPS would otherwise change the seeds for good. The
 * fourth continues on whatever state the fuzz left. Every segment's final
 * state must round-trip the store's format; after the run GetRandom must
 * work, and the state, saved through the real store, must load into a fresh
 * engine that answers (saveAndReload).
 */
export async function fuzzSimulator(options: SimulatorFuzzOptions): Promise<SimulatorFuzzStats> {
  const session = options.session ?? (await recordClientSession());
  const rng = new Prng(options.seed);
  const generic = validSeeds(1, options.seed).filter((s) => s.direction === 'command').map((s) => s.bytes);
  const recorded = session.commands.map((c) => c.bytes);
  const { engine, rewind } = fuzzEngine(undefined, options.profile);
  const snapshot = structuredClone(engine.state);
  const stats: SimulatorFuzzStats = {
    inputs: 0,
    untypedCount: 0,
    untyped: [],
    codes: new Map(),
    successes: 0,
    seedCodes: new Set(),
    replays: 0,
    replayedCommands: 0,
    replaySuccesses: 0,
    stateChecks: 0,
    reloaded: false,
  };
  const fail = (input: string, error: string): void => {
    stats.untypedCount++;
    if (stats.untyped.length < 20) stats.untyped.push({ input, error });
  };
  const replay = async (): Promise<void> => {
    const first = stats.replays++ === 0;
    for (const c of session.commands) {
      if (c.init === true) engine.init();
      const out = await engine.execute(c.bytes, c.locality);
      stats.replayedCommands++;
      if (responseCodeOf(out) === 0) {
        stats.replaySuccesses++;
        if (first) stats.seedCodes.add(commandCodeOf(c.bytes));
      }
    }
  };
  const check = (input: Uint8Array, out: Uint8Array): void => {
    let problem: string | undefined;
    if (out.length < 10) problem = `a ${out.length}-byte answer`;
    else {
      const v = new DataView(out.buffer, out.byteOffset, out.byteLength);
      const tag = v.getUint16(0);
      if (v.getUint32(2) !== out.length) problem = `size field ${v.getUint32(2)} for ${out.length} bytes`;
      else if (tag !== 0x8001 && tag !== 0x8002) problem = `tag 0x${tag.toString(16)}`;
      else {
        const rc = v.getUint32(6);
        if (rc === 0) stats.successes++;
        else if (out.length !== 10) problem = `an error answer (0x${rc.toString(16)}) of ${out.length} bytes`;
        if (rc === TPM_RC.FAILURE) problem = 'TPM_RC_FAILURE (a handler threw)';
        const key = `0x${rc.toString(16)}`;
        stats.codes.set(key, (stats.codes.get(key) ?? 0) + 1);
      }
    }
    if (problem !== undefined) fail(hexOf(input), problem);
  };

  await replay();
  for (let i = 0; i < options.iterations; i++) {
    if (i > 0 && i % 10_000 === 0) options.onProgress?.(i);
    if (i > 0 && i % SEGMENT === 0) {
      const segment = i / SEGMENT;
      engine.syncClock();
      stats.stateChecks++;
      const problem = storeRoundTrip(engine.state);
      if (problem !== undefined) fail(`state after segment ${segment}`, problem);
      // The recording again (it begins with _TPM_Init), with its random stream and clock (and state, 3 in 4).
      rewind();
      if (segment % 4 !== 0) restoreState(engine, snapshot);
      await replay();
    }
    // Three in four from the recorded session (deep), the rest arbitrary commands of every code (wide).
    const pool = rng.below(4) === 0 || recorded.length === 0 ? generic : recorded;
    const input = rng.below(16) === 0 ? pool[rng.below(pool.length)]!.slice() : mutate(pool[rng.below(pool.length)]!, rng);
    // Mostly with a consistent size field, so the mutation reaches past the header check (Part 3 §5.2).
    if (input.length >= 10 && rng.below(4) !== 0) new DataView(input.buffer, input.byteOffset, input.byteLength).setUint32(2, input.length);
    let out: Uint8Array;
    try {
      out = await engine.execute(input, rng.below(5));
    } catch (e) {
      fail(hexOf(input), `execute threw: ${String(e)}`);
      continue;
    } finally {
      stats.inputs++;
    }
    check(input, out);
    // A fuzzed Shutdown/Startup may leave the engine unstarted: start it again.
    if (!engine.volatile.started) await engine.execute(STARTUP);
  }

  // Still a working TPM…
  const r = parseResponse(GetRandom, await engine.execute(encodeCommand(GetRandom, {}, { bytesRequested: 16 })));
  if (r.params.randomBytes.length !== 16) fail('GetRandom after the fuzz', `${r.params.randomBytes.length} bytes`);
  // …whose state survives the store's format…
  engine.syncClock();
  stats.stateChecks++;
  const problem = storeRoundTrip(engine.state);
  if (problem !== undefined) fail('state after the fuzz', problem);
  // …and, saved through the store, loads into a fresh engine that answers.
  const reload = await saveAndReload(engine);
  if (reload !== undefined) fail('state after the fuzz, saved and reloaded', reload);
  else stats.reloaded = true;
  return stats;
}
