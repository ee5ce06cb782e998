/**
 * The client `Tpm` after a lost response (issue 4, "Bad input": a TPM that
 * closes the connection mid-command, a TPM that never answers), against swtpm and our simulator.
 *
 * A wrapper transport loses one exchange in one of three ways: it forwards the
 * command, swtpm runs it, and the answer is dropped with `transport.closed`;
 * it forwards the command and withholds the answer until the caller's timeout
 * (`transport.timeout`); or it fails with `transport.closed` before
 * forwarding (swtpm never sees the command). For Load, CreatePrimary,
 * StartAuthSession, Sign and NV_Write: the caller gets the TransportError, a
 * session the command used is refused afterwards with `session.closed`
 * without anything being sent, GetCapability shows no transient object and
 * no session left on swtpm, a new session works, and the FlushContext
 * commands the clean-up sent show that swtpm had run the lost command (or
 * had not, when it never saw it). Also: a real timeout while swtpm is
 * stopped (SIGSTOP), clean-up deferred while swtpm is unreachable, the
 * `channel` path, a lost FlushContext, objects the Tpm knows kept loaded,
 * `flushUnknown: false`, and no extra round trip when nothing fails.
 */
import { createHash, randomBytes, verify } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthSession, Tpm, type Entity } from '../../src/client/index.js';
import { readCapability } from '../../src/tpm/capability.js';
import {
  Clear,
  Create,
  CreatePrimary,
  EvictControl,
  FlushContext,
  GetCapability,
  GetRandom,
  Load,
  NV_DefineSpace,
  NV_Read,
  NV_Write,
  Sign,
  StartAuthSession,
  Startup,
} from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_CAP, TPM_ECC, TPM_RH, TPM_ST, TPM_SU } from '../../src/tpm/constants.js';
import { SessionError, TransportError, type TransportErrorCode } from '../../src/tpm/errors.js';
import { nvName, objectName } from '../../src/tpm/names.js';
import { runCommand } from '../../src/tpm/run.js';
import { publicKeyFromArea } from '../../src/tpm/secret.js';
import { eccSrkTemplate } from '../../src/tpm/templates.js';
import { SwtpmTransport, type SendOptions, type Transport } from '../../src/tpm/transport/index.js';
import { TPMA_NV, TPMA_OBJECT, type TPM2B_PRIVATE, type TPMS_NV_PUBLIC, type TPMT_PUBLIC, type TPMT_SIGNATURE } from '../../src/tpm/types/index.js';
import { rejection } from '../support/probe.js';
import { describeEachTpm, startTpm, type TpmKind, type TpmUnderTest } from '../support/tpm-under-test.js';

const u32 = (b: Uint8Array, at: number): number => new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(at);
const codeOf = (command: Uint8Array): number => u32(command, 6);
const isTransient = (h: number): boolean => h >>> 24 === 0x80;
const isSession = (h: number): boolean => h >>> 24 === 0x02 || h >>> 24 === 0x03;

/** How the wrapper loses an exchange. */
type Loss = 'closed after the TPM ran it' | 'answer withheld until the timeout' | 'closed before the TPM saw it';
const LOSSES: readonly Loss[] = ['closed after the TPM ran it', 'answer withheld until the timeout', 'closed before the TPM saw it'];
const EXPECTED_CODE: Record<Loss, TransportErrorCode> = {
  'closed after the TPM ran it': 'transport.closed',
  'answer withheld until the timeout': 'transport.timeout',
  'closed before the TPM saw it': 'transport.closed',
};

/** Resolves when the caller gives up: its signal fires or its timeout passes. */
function callerGivesUp(options: SendOptions): Promise<void> {
  if (options.timeoutMs === undefined && options.signal === undefined) throw new Error('test: a withheld answer needs a caller timeout');
  return new Promise((resolve) => {
    const timer = options.timeoutMs !== undefined ? setTimeout(resolve, options.timeoutMs) : undefined;
    options.signal?.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });
}

/**
 * Forwards to swtpm, records every command that reached it, and loses the
 * next exchange of an armed command code. `down` makes swtpm unreachable
 * (every send fails with `transport.connect`, nothing is forwarded);
 * `downAfterLoss` turns it on as the armed exchange is lost.
 */
class Lossy implements Transport {
  readonly inner: Transport;
  readonly sent: Uint8Array[] = [];
  armed: { cc: number; loss: Loss; downAfterLoss?: boolean } | undefined;
  down = false;

  constructor(inner: Transport) {
    this.inner = inner;
  }

  async send(command: Uint8Array, options: SendOptions = {}): Promise<Uint8Array> {
    if (this.down) throw new TransportError('transport.connect', 'test: swtpm cannot be reached');
    const armed = this.armed;
    if (armed === undefined || armed.cc !== codeOf(command)) {
      this.sent.push(command.slice());
      return this.inner.send(command, options);
    }
    this.armed = undefined;
    if (armed.loss === 'closed before the TPM saw it') throw new TransportError('transport.closed', 'test: closed before the command was written');
    this.sent.push(command.slice());
    await this.inner.send(command, options); // swtpm runs it; the answer goes nowhere
    if (armed.downAfterLoss) this.down = true;
    if (armed.loss === 'closed after the TPM ran it') throw new TransportError('transport.closed', 'test: closed before the response arrived');
    await callerGivesUp(options);
    throw new TransportError('transport.timeout', 'test: no response within the caller’s timeout');
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  /** Handles named by the FlushContext commands that reached swtpm from index `from` on. */
  flushedSince(from: number): number[] {
    return this.sent.slice(from).filter((c) => codeOf(c) === FlushContext.code).map((c) => u32(c, 10));
  }
}

// ---------------------------------------------------------------------------

const EMPTY = new Uint8Array(0);
const NO_CREATION = { outsideInfo: EMPTY, creationPCR: [] };
const NULL_TICKET = { tag: TPM_ST.HASHCHECK, hierarchy: TPM_RH.NULL, digest: EMPTY } as const;
const NV_INDEX = 0x01500030;
const TIMEOUT_MS = 150;

const ECDSA_KEY: TPMT_PUBLIC = {
  type: TPM_ALG.ECC,
  nameAlg: TPM_ALG.SHA256,
  objectAttributes: TPMA_OBJECT.of({ fixedTPM: true, fixedParent: true, sensitiveDataOrigin: true, userWithAuth: true, noDA: true, sign: true }),
  authPolicy: EMPTY,
  parameters: {
    symmetric: { algorithm: TPM_ALG.NULL },
    scheme: { scheme: TPM_ALG.ECDSA, details: { hashAlg: TPM_ALG.SHA256 } },
    curveID: TPM_ECC.NIST_P256,
    kdf: { scheme: TPM_ALG.NULL },
  },
  unique: { x: EMPTY, y: EMPTY },
};

function verifyEcdsa(pub: TPMT_PUBLIC, message: Uint8Array, sig: TPMT_SIGNATURE): boolean {
  if (sig.sigAlg !== TPM_ALG.ECDSA) return false;
  const s = sig.signature;
  const pad = (b: Uint8Array): Buffer => Buffer.concat([Buffer.alloc(32 - b.length), Buffer.from(b)]);
  return verify('sha256', message, { key: publicKeyFromArea(pub), dsaEncoding: 'ieee-p1363' }, Buffer.concat([pad(s.signatureR), pad(s.signatureS)]));
}

interface Fixture {
  sw: TpmUnderTest;
  lossy: Lossy;
  tpm: Tpm;
  srk: Entity;
  srkPublic: TPMT_PUBLIC;
  signKey: Entity;
  signPublic: TPMT_PUBLIC;
  blob: { inPrivate: TPM2B_PRIVATE; inPublic: TPMT_PUBLIC };
  nv: Entity;
}

async function setUp(kind: TpmKind): Promise<Fixture> {
  const sw = await startTpm(kind);
  const lossy = new Lossy(new SwtpmTransport({ port: sw.port, ctrlPort: sw.ctrlPort }));
  const tpm = new Tpm(lossy);
  await tpm.run(Startup, {}, { startupType: TPM_SU.CLEAR });
  // The fixture's keys are persistent, so every transient object or session seen later is the test's.
  const persist = async (handle: number, name: Uint8Array, at: number, authValue?: Uint8Array): Promise<Entity> => {
    await tpm.run(EvictControl, { auth: TPM_RH.OWNER, objectHandle: { handle, name } }, { persistentHandle: at });
    await tpm.flush(handle);
    return { handle: at, name, ...(authValue !== undefined ? { authValue } : {}) };
  };
  const p = await tpm.run(CreatePrimary, { primaryHandle: TPM_RH.OWNER }, { inSensitive: { userAuth: EMPTY, data: EMPTY }, inPublic: eccSrkTemplate(), ...NO_CREATION });
  const srk = await persist(p.handles.objectHandle, objectName(p.params.outPublic), 0x81000001);
  const signAuth = new Uint8Array(randomBytes(12));
  const c = await tpm.run(Create, { parentHandle: srk }, { inSensitive: { userAuth: signAuth, data: EMPTY }, inPublic: ECDSA_KEY, ...NO_CREATION });
  const blob = { inPrivate: c.params.outPrivate, inPublic: c.params.outPublic };
  const l = await tpm.run(Load, { parentHandle: srk }, blob);
  const signKey = await persist(l.handles.objectHandle, objectName(c.params.outPublic), 0x81000010, signAuth);

  const nvAuth = new Uint8Array(randomBytes(8));
  const nvPublic: TPMS_NV_PUBLIC = {
    nvIndex: NV_INDEX,
    nameAlg: TPM_ALG.SHA256,
    attributes: TPMA_NV.of({ AUTHREAD: true, AUTHWRITE: true, NO_DA: true }),
    authPolicy: EMPTY,
    dataSize: 16,
  };
  await tpm.run(NV_DefineSpace, { authHandle: TPM_RH.OWNER }, { auth: nvAuth, publicInfo: nvPublic });
  await tpm.run(NV_Write, { authHandle: { handle: NV_INDEX, name: EMPTY, authValue: nvAuth }, nvIndex: NV_INDEX }, { data: new Uint8Array(16), offset: 0 });
  const nv: Entity = { handle: NV_INDEX, name: nvName({ ...nvPublic, attributes: { ...nvPublic.attributes, WRITTEN: true } }), authValue: nvAuth };
  return { sw, lossy, tpm, srk, srkPublic: p.params.outPublic, signKey, signPublic: c.params.outPublic, blob, nv };
}

/** Transient objects, loaded sessions and saved sessions on swtpm, each listing unfiltered. */
async function loaded(tpm: Tpm): Promise<{ objects: number[]; sessions: number[]; saved: number[] }> {
  return {
    objects: await readCapability(tpm.channel, TPM_CAP.HANDLES, [0x80000000]),
    sessions: await readCapability(tpm.channel, TPM_CAP.HANDLES, [0x02000000]),
    saved: await readCapability(tpm.channel, TPM_CAP.HANDLES, [0x03000000]),
  };
}

const NOTHING = { objects: [], sessions: [], saved: [] };

describeEachTpm('the Tpm after a lost response', (kind) => {
  let f: Fixture;

  beforeAll(async () => {
    f = await setUp(kind);
  });

  afterAll(async () => {
    if (f === undefined) return;
    await f.tpm.close();
    await f.sw.stop();
  });

  /** Signs a fresh digest with the persistent key, checked with node:crypto. */
  async function signChecked(session: AuthSession | undefined): Promise<void> {
    const message = new Uint8Array(randomBytes(32));
    const digest = new Uint8Array(createHash('sha256').update(message).digest());
    const r = await f.tpm.run(Sign, { keyHandle: f.signKey }, { digest, inScheme: { scheme: TPM_ALG.NULL }, validation: NULL_TICKET }, session ? { sessions: [session] } : {});
    expect(verifyEcdsa(f.signPublic, message, r.params.signature)).toBe(true);
  }

  interface Op {
    readonly name: string;
    readonly code: number;
    /** What the command leaves on the TPM when it runs. */
    readonly creates?: 'object' | 'session';
    /** Run it, authorized by `s` when given. */
    run(s: AuthSession | undefined, options: SendOptions): Promise<unknown>;
  }

  const nvData = new Uint8Array(randomBytes(16));
  const OPS: readonly Op[] = [
    {
      name: 'Load',
      code: Load.code,
      creates: 'object',
      run: (s, o) => f.tpm.run(Load, { parentHandle: f.srk }, f.blob, { ...o, sessions: s ? [s] : [] }),
    },
    {
      name: 'CreatePrimary',
      code: CreatePrimary.code,
      creates: 'object',
      run: (s, o) =>
        f.tpm.run(CreatePrimary, { primaryHandle: TPM_RH.OWNER }, { inSensitive: { userAuth: EMPTY, data: EMPTY }, inPublic: eccSrkTemplate(), ...NO_CREATION }, { ...o, sessions: s ? [s] : [] }),
    },
    {
      name: 'StartAuthSession',
      code: StartAuthSession.code,
      creates: 'session',
      run: (_s, o) => f.tpm.startAuthSession(o),
    },
    {
      name: 'Sign (HMAC session)',
      code: Sign.code,
      run: (s, o) =>
        f.tpm.run(Sign, { keyHandle: f.signKey }, { digest: new Uint8Array(32).fill(7), inScheme: { scheme: TPM_ALG.NULL }, validation: NULL_TICKET }, { ...o, sessions: s ? [s] : [] }),
    },
    {
      name: 'NV_Write (HMAC session)',
      code: NV_Write.code,
      run: (s, o) => f.tpm.run(NV_Write, { authHandle: f.nv, nvIndex: f.nv }, { data: nvData, offset: 0 }, { ...o, sessions: s ? [s] : [] }),
    },
  ];

  for (const loss of LOSSES) {
    describe(loss, () => {
      for (const op of OPS) {
        it(`${op.name}: ${EXPECTED_CODE[loss]}, the session refused, nothing left on the TPM, a new session works`, async () => {
          const ran = loss !== 'closed before the TPM saw it';
          const s = op.code === StartAuthSession.code ? undefined : await f.tpm.startAuthSession({});
          if (op.code === NV_Write.code) await f.tpm.run(NV_Write, { authHandle: f.nv, nvIndex: f.nv }, { data: new Uint8Array(16), offset: 0 });
          const from = f.lossy.sent.length;
          f.lossy.armed = { cc: op.code, loss };

          const e = await rejection(op.run(s, { timeoutMs: TIMEOUT_MS }));
          expect(e).toBeInstanceOf(TransportError);
          expect((e as TransportError).code).toBe(EXPECTED_CODE[loss]);

          if (s !== undefined) {
            // Its nonceTPM may have rolled on swtpm: the session is never used again, and nothing is sent trying.
            expect(s.status).toBe('broken');
            const before = f.lossy.sent.length;
            const refused = await rejection(signChecked(s));
            expect(refused).toBeInstanceOf(SessionError);
            expect((refused as SessionError).code).toBe('session.closed');
            // (Only the clean-up, queued before it, may have sent something meanwhile.)
            expect(f.lossy.sent.slice(before).map(codeOf)).not.toContain(Sign.code);
          }

          expect(await loaded(f.tpm)).toEqual(NOTHING);
          // What the clean-up flushed shows what swtpm did with the lost command.
          const flushed = f.lossy.flushedSince(from);
          if (s !== undefined) expect(flushed).toContain(s.handle);
          const others = flushed.filter((h) => h !== s?.handle);
          if (ran && op.creates === 'object') expect(others.filter(isTransient)).toHaveLength(1);
          else if (ran && op.creates === 'session') expect(others.filter(isSession)).toHaveLength(1);
          else expect(others).toEqual([]);
          if (op.code === NV_Write.code) {
            const back = await f.tpm.run(NV_Read, { authHandle: f.nv, nvIndex: f.nv }, { size: 16, offset: 0 });
            expect(back.params.data).toEqual(ran ? nvData : new Uint8Array(16));
          }

          // The Tpm is usable: a new session (possibly on the handle the broken one had) authorizes a signature.
          await f.tpm.withSession({}, (s2) => signChecked(s2));
          if (s !== undefined) {
            // Flushed by the clean-up already: flush() sends nothing (the handle may be another session's by now).
            const before = f.lossy.sent.length;
            await s.flush();
            expect(f.lossy.sent.length).toBe(before);
            expect(s.isOpen).toBe(false);
          }
          expect(await loaded(f.tpm)).toEqual(NOTHING);
        });
      }
    });
  }

  it('a real timeout: the TPM stopped (SIGSTOP for swtpm) while it holds CreatePrimary runs it when continued, and the clean-up flushes the object', async () => {
    const s = await f.tpm.startAuthSession({ bind: TPM_RH.OWNER });
    const from = f.lossy.sent.length;
    f.sw.freeze();
    let e: unknown;
    try {
      e = await rejection(
        f.tpm.run(CreatePrimary, { primaryHandle: TPM_RH.OWNER }, { inSensitive: { userAuth: EMPTY, data: EMPTY }, inPublic: eccSrkTemplate(), ...NO_CREATION }, { sessions: [s], timeoutMs: 200 }),
      );
    } finally {
      f.sw.thaw();
    }
    expect((e as TransportError).code).toBe('transport.timeout');
    expect(s.status).toBe('broken');
    expect(await loaded(f.tpm)).toEqual(NOTHING);
    const flushed = f.lossy.flushedSince(from);
    expect(flushed).toContain(s.handle);
    expect(flushed.filter(isTransient)).toHaveLength(1);
    await signChecked(undefined);
  });

  it('while the TPM cannot be reached the clean-up waits; it runs before the next command that gets through', async () => {
    const s = await f.tpm.startAuthSession({});
    f.lossy.armed = { cc: Load.code, loss: 'closed after the TPM ran it', downAfterLoss: true };
    expect(((await rejection(f.tpm.run(Load, { parentHandle: f.srk }, f.blob, { sessions: [s] }))) as TransportError).code).toBe('transport.closed');
    // Unreachable: the command fails without reaching swtpm, and the clean-up stays owed.
    expect(((await rejection(f.tpm.run(GetRandom, {}, { bytesRequested: 8 }))) as TransportError).code).toBe('transport.connect');
    f.lossy.down = false;
    const from = f.lossy.sent.length;
    expect((await f.tpm.run(GetRandom, {}, { bytesRequested: 8 })).params.randomBytes).toHaveLength(8);
    const after = f.lossy.sent.slice(from).map(codeOf);
    // FlushContext of the session, the listing, FlushContext of the object, and only then GetRandom.
    expect(after.at(-1)).toBe(GetRandom.code);
    expect(after.slice(0, -1)).toEqual([FlushContext.code, GetCapability.code, GetCapability.code, FlushContext.code]);
    expect(f.lossy.flushedSince(from)).toContain(s.handle);
    expect(await loaded(f.tpm)).toEqual(NOTHING);
  });

  it('a lost command whose first parameter a session encrypted: the session is broken all the same, the object flushed', async () => {
    const s = await f.tpm.startAuthSession({ salt: { key: f.srk, public: f.srkPublic } });
    const from = f.lossy.sent.length;
    f.lossy.armed = { cc: CreatePrimary.code, loss: 'closed after the TPM ran it' };
    const inSensitive = { userAuth: new Uint8Array(randomBytes(16)), data: EMPTY };
    const e = await rejection(
      f.tpm.run(CreatePrimary, { primaryHandle: TPM_RH.OWNER }, { inSensitive, inPublic: eccSrkTemplate(), ...NO_CREATION }, { sessions: [s.use({ decrypt: true })] }),
    );
    expect(e).toBeInstanceOf(TransportError);
    // The secret went encrypted (the parameter no longer parses as a TPMS_SENSITIVE_CREATE), yet the session is known to be used.
    expect(Buffer.from(f.lossy.sent[from]!).indexOf(Buffer.from(inSensitive.userAuth))).toBe(-1);
    expect(s.status).toBe('broken');
    expect(await loaded(f.tpm)).toEqual(NOTHING);
    expect(f.lossy.flushedSince(from)).toContain(s.handle);
    expect(f.lossy.flushedSince(from).filter(isTransient)).toHaveLength(1);
  });

  it('a raw Load through tpm.channel whose answer is lost is cleaned up as well', async () => {
    const from = f.lossy.sent.length;
    f.lossy.armed = { cc: Load.code, loss: 'closed after the TPM ran it' };
    expect(await rejection(runCommand(f.tpm.channel, Load, { parentHandle: f.srk.handle }, f.blob))).toBeInstanceOf(TransportError);
    expect(await loaded(f.tpm)).toEqual(NOTHING);
    expect(f.lossy.flushedSince(from).filter(isTransient)).toHaveLength(1);
    // A raw Load that succeeds through the channel is known, so the clean-up after another lost Load keeps it.
    const r = await runCommand(f.tpm.channel, Load, { parentHandle: f.srk.handle }, f.blob);
    f.lossy.armed = { cc: Load.code, loss: 'closed after the TPM ran it' };
    await rejection(f.tpm.run(Load, { parentHandle: f.srk }, f.blob));
    expect((await loaded(f.tpm)).objects).toEqual([r.handles.objectHandle]);
    await f.tpm.flush(r.handles.objectHandle);
  });

  it('a lost FlushContext: the object is gone afterwards, whether the TPM ran it or not', async () => {
    for (const loss of ['closed after the TPM ran it', 'closed before the TPM saw it'] as const) {
      const h = (await f.tpm.run(Load, { parentHandle: f.srk }, f.blob)).handles.objectHandle;
      f.lossy.armed = { cc: FlushContext.code, loss };
      expect(await rejection(f.tpm.flush(h))).toBeInstanceOf(TransportError);
      expect(await loaded(f.tpm)).toEqual(NOTHING);
    }
  });

  it('objects and sessions the Tpm knows stay loaded and usable after a loss; only the unknown one goes', async () => {
    const key: Entity = { handle: (await f.tpm.run(Load, { parentHandle: f.srk }, f.blob)).handles.objectHandle, name: objectName(f.blob.inPublic), authValue: f.signKey.authValue! };
    const kept = await f.tpm.startAuthSession({});
    const from = f.lossy.sent.length;
    f.lossy.armed = { cc: CreatePrimary.code, loss: 'closed after the TPM ran it' };
    await rejection(f.tpm.run(CreatePrimary, { primaryHandle: TPM_RH.OWNER }, { inSensitive: { userAuth: EMPTY, data: EMPTY }, inPublic: eccSrkTemplate(), ...NO_CREATION }));
    expect(await loaded(f.tpm)).toEqual({ objects: [key.handle], sessions: [kept.handle], saved: [] });
    expect(f.lossy.flushedSince(from).filter((h) => h === key.handle || h === kept.handle)).toEqual([]);
    const message = new Uint8Array(randomBytes(20));
    const digest = new Uint8Array(createHash('sha256').update(message).digest());
    const r = await f.tpm.run(Sign, { keyHandle: key }, { digest, inScheme: { scheme: TPM_ALG.NULL }, validation: NULL_TICKET }, { sessions: [kept] });
    expect(verifyEcdsa(f.blob.inPublic, message, r.params.signature)).toBe(true);
    await f.tpm.flush(key);
    await kept.flush();
    expect(await loaded(f.tpm)).toEqual(NOTHING);
  });

  it('flushUnknown: false (a TPM shared without a resource manager): the unknown object stays, the broken session is still flushed', async () => {
    // A second Tpm on the same connection, as another user of a shared TPM would be.
    const shared = new Tpm(f.lossy, { recovery: { flushUnknown: false } });
    const s = await shared.startAuthSession({});
    f.lossy.armed = { cc: Load.code, loss: 'closed after the TPM ran it' };
    expect(await rejection(shared.run(Load, { parentHandle: f.srk }, f.blob, { sessions: [s] }))).toBeInstanceOf(TransportError);
    await shared.run(GetRandom, {}, { bytesRequested: 1 }); // the clean-up runs before it
    const left = await loaded(f.tpm);
    expect(left.sessions).toEqual([]);
    expect(left.objects).toHaveLength(1);
    await f.tpm.flush(left.objects[0]!);
    expect(await loaded(f.tpm)).toEqual(NOTHING);
  });

  it('when nothing fails there is no extra round trip: one command each for Load, Sign with a session, FlushContext', async () => {
    await f.tpm.withSession({}, async (s) => {
      const from = f.lossy.sent.length;
      const h = (await f.tpm.run(Load, { parentHandle: f.srk }, f.blob, { sessions: [s] })).handles.objectHandle;
      await signChecked(s);
      await f.tpm.flush(h);
      expect(f.lossy.sent.slice(from).map(codeOf)).toEqual([Load.code, Sign.code, FlushContext.code]);
    });
    expect(await loaded(f.tpm)).toEqual(NOTHING);
  });

  // Last: Clear removes the fixture's persistent keys and NV index.
  it('after Clear flushed the objects it knew, the Tpm looks again, so a new object on a freed handle is not taken for a known one', async () => {
    const primary = () => f.tpm.run(CreatePrimary, { primaryHandle: TPM_RH.OWNER }, { inSensitive: { userAuth: EMPTY, data: EMPTY }, inPublic: eccSrkTemplate(), ...NO_CREATION });
    const known = (await primary()).handles.objectHandle;
    await f.tpm.run(Clear, { authHandle: TPM_RH.LOCKOUT }, {}); // flushes the storage hierarchy's transient objects (Part 3 §24.6)
    expect((await loaded(f.tpm)).objects).toEqual([]);
    const from = f.lossy.sent.length;
    f.lossy.armed = { cc: CreatePrimary.code, loss: 'closed after the TPM ran it' };
    expect(await rejection(primary())).toBeInstanceOf(TransportError);
    expect(await loaded(f.tpm)).toEqual(NOTHING);
    // swtpm gave the lost object the freed handle, and the clean-up flushed it.
    expect(f.lossy.flushedSince(from)).toEqual([known]);
  });
});
