/**
 * The client's sessions against swtpm (an independent TPM: libtpms) and our simulator, over
 * both the swtpm (raw) and the mssim framing.
 *
 * The acceptance matrix runs every session option (password, HMAC unbound and
 * bound, salted with RSA/ECC storage keys and the EK, AES-CFB and XOR
 * parameter encryption in either direction, extra sessions, audit) against
 * Create, Load, Sign, NV_Write, NV_Read, Unseal and Quote. A valid cell must
 * give the right result (signatures verify, sealed and NV data come back),
 * with the encrypted parameter absent from the bytes on the wire; an invalid
 * cell must be refused before anything is sent (a counting transport shows
 * it), and hand-framed commands show that swtpm refuses them too.
 * Bad input: wrong auth, a response HMAC flipped, truncated responses; after
 * each, GetCapability shows no leaked transient objects or sessions.
 * Objects are noDA, so wrong-auth tests never lock swtpm out.
 */
import { createHash, randomBytes, verify } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AuthSession, password, Tpm, type Authorization, type Entity } from '../../src/client/index.js';
import {
  Create,
  CreatePrimary,
  EvictControl,
  FlushContext,
  GetCapability,
  GetRandom,
  GetSessionAuditDigest,
  HierarchyChangeAuth,
  Load,
  NV_DefineSpace,
  NV_Read,
  NV_ReadPublic,
  NV_Write,
  PolicyAuthValue,
  PolicyGetDigest,
  PolicyPassword,
  PolicyRestart,
  Quote,
  Sign,
  Startup,
  Unseal,
} from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_CAP, TPM_ECC, TPM_RH, TPM_RS_PW, TPM_ST, TPM_SU } from '../../src/tpm/constants.js';
import { ParseError, SessionError } from '../../src/tpm/errors.js';
import { encodeParams, frameCommand } from '../../src/tpm/frame.js';
import { handleName, nvName, objectName } from '../../src/tpm/names.js';
import { pcrSelection } from '../../src/tpm/pcr.js';
import { isRc, TPM_RC, TpmError } from '../../src/tpm/rc.js';
import { publicKeyFromArea } from '../../src/tpm/secret.js';
import { eccSrkTemplate, rsaEkTemplate, rsaSrkTemplate } from '../../src/tpm/templates.js';
import { MssimTransport, SwtpmTransport, type SendOptions, type Transport } from '../../src/tpm/transport/index.js';
import {
  TPMA_NV,
  TPMA_OBJECT,
  TPMA_SESSION,
  TPMS_ATTEST,
  type TPM2B_PRIVATE,
  type TPMS_NV_PUBLIC,
  type TPMT_PUBLIC,
  type TPMT_SIGNATURE,
  type TPMT_SYM_DEF,
} from '../../src/tpm/types/index.js';
import { encode } from '../../src/tpm/wire/codec.js';
import { describeEachTpm, startTpm, type TpmUnderTest } from '../support/tpm-under-test.js';

// ---------------------------------------------------------------------------
// A transport that records every exchange and can tamper with one response.

type Tamper = (command: Uint8Array, response: Uint8Array) => Uint8Array | undefined;

class Probe implements Transport {
  readonly commands: Uint8Array[] = [];
  readonly responses: Uint8Array[] = [];
  /** Applied to responses until it returns bytes once. */
  tamper: Tamper | undefined;
  readonly inner: Transport;
  constructor(inner: Transport) {
    this.inner = inner;
  }
  async send(command: Uint8Array, options?: SendOptions): Promise<Uint8Array> {
    this.commands.push(command.slice());
    let response = await this.inner.send(command, options);
    const t = this.tamper;
    const changed = t?.(command, response);
    if (changed !== undefined) {
      this.tamper = undefined;
      response = changed;
    }
    this.responses.push(response.slice());
    return response;
  }
  close(): Promise<void> {
    return this.inner.close();
  }
  get count(): number {
    return this.commands.length;
  }
}

const codeOf = (command: Uint8Array): number => new DataView(command.buffer, command.byteOffset).getUint32(6);
const contains = (hay: Uint8Array, needle: Uint8Array): boolean => Buffer.from(hay).indexOf(Buffer.from(needle)) >= 0;
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const fresh = (n: number): Uint8Array => new Uint8Array(randomBytes(n));

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

// ---------------------------------------------------------------------------
// Templates

const ECDSA_KEY: TPMT_PUBLIC = {
  type: TPM_ALG.ECC,
  nameAlg: TPM_ALG.SHA256,
  objectAttributes: TPMA_OBJECT.of({ fixedTPM: true, fixedParent: true, sensitiveDataOrigin: true, userWithAuth: true, noDA: true, sign: true }),
  authPolicy: new Uint8Array(0),
  parameters: {
    symmetric: { algorithm: TPM_ALG.NULL },
    scheme: { scheme: TPM_ALG.ECDSA, details: { hashAlg: TPM_ALG.SHA256 } },
    curveID: TPM_ECC.NIST_P256,
    kdf: { scheme: TPM_ALG.NULL },
  },
  unique: { x: new Uint8Array(0), y: new Uint8Array(0) },
};

function sealedTemplate(authPolicy: Uint8Array = new Uint8Array(0), userWithAuth = true): TPMT_PUBLIC {
  return {
    type: TPM_ALG.KEYEDHASH,
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: TPMA_OBJECT.of({ fixedTPM: true, fixedParent: true, userWithAuth, noDA: true }),
    authPolicy,
    parameters: { scheme: { scheme: TPM_ALG.NULL } },
    unique: new Uint8Array(0),
  };
}

const NO_CREATION = { outsideInfo: new Uint8Array(0), creationPCR: [] };
const NULL_TICKET = { tag: TPM_ST.HASHCHECK, hierarchy: TPM_RH.NULL, digest: new Uint8Array(0) } as const;

function verifyEcdsa(pub: TPMT_PUBLIC, message: Uint8Array, sig: TPMT_SIGNATURE): boolean {
  if (sig.sigAlg !== TPM_ALG.ECDSA) return false;
  const s = sig.signature;
  const pad = (b: Uint8Array): Buffer => Buffer.concat([Buffer.alloc(32 - b.length), Buffer.from(b)]);
  return verify('sha256', message, { key: publicKeyFromArea(pub), dsaEncoding: 'ieee-p1363' }, Buffer.concat([pad(s.signatureR), pad(s.signatureS)]));
}

// ---------------------------------------------------------------------------

interface Fixture {
  tpm: Tpm;
  probe: Probe;
  srk: Entity; // ECC P-256 storage primary (owner): parent, and the ECC salt key
  srkPublic: TPMT_PUBLIC;
  rsaSrk: Entity;
  rsaSrkPublic: TPMT_PUBLIC;
  ek: Entity; // RSA EK (endorsement), the salt key of the EK cells
  ekPublic: TPMT_PUBLIC;
  signKey: Entity;
  signPublic: TPMT_PUBLIC;
  sealed: Entity;
  sealedData: Uint8Array;
  sealedBlob: { inPrivate: TPM2B_PRIVATE; inPublic: TPMT_PUBLIC };
  nv: Entity;
  /** Transient handles the fixture holds; anything else loaded is a leak. */
  transients: number[];
}

const NV_INDEX = 0x01500020;

async function handles(tpm: Tpm, first: number): Promise<number[]> {
  const r = await tpm.run(GetCapability, {}, { capability: TPM_CAP.HANDLES, property: first, propertyCount: 64 });
  const data = r.params.capabilityData;
  if (data.capability !== TPM_CAP.HANDLES) throw new Error('not a handle list');
  return data.data.filter((h) => h >>> 24 === first >>> 24);
}

async function setUp(transport: Transport): Promise<Fixture> {
  const probe = new Probe(transport);
  const tpm = new Tpm(probe);
  await tpm.run(Startup, {}, { startupType: TPM_SU.CLEAR });
  // libtpms has 3 transient slots and Create/Load need free ones: the fixture's objects are made persistent.
  const persist = async (handle: number, name: Uint8Array, at: number, authValue?: Uint8Array): Promise<Entity> => {
    await tpm.run(EvictControl, { auth: TPM_RH.OWNER, objectHandle: { handle, name } }, { persistentHandle: at });
    await tpm.flush(handle);
    return { handle: at, name, ...(authValue !== undefined ? { authValue } : {}) };
  };
  const primary = async (hierarchy: number, template: TPMT_PUBLIC, at: number): Promise<[Entity, TPMT_PUBLIC]> => {
    const r = await tpm.run(CreatePrimary, { primaryHandle: hierarchy }, { inSensitive: { userAuth: new Uint8Array(0), data: new Uint8Array(0) }, inPublic: template, ...NO_CREATION });
    const name = objectName(r.params.outPublic);
    // The Name the client uses is computed from the public area it got, and the TPM agrees.
    expect(Buffer.from(name).equals(Buffer.from(r.params.name))).toBe(true);
    return [await persist(r.handles.objectHandle, name, at), r.params.outPublic];
  };
  const [srk, srkPublic] = await primary(TPM_RH.OWNER, eccSrkTemplate(), 0x81000001);
  const [rsaSrk, rsaSrkPublic] = await primary(TPM_RH.OWNER, rsaSrkTemplate(), 0x81000002);
  const [ek, ekPublic] = await primary(TPM_RH.ENDORSEMENT, rsaEkTemplate(), 0x81010001);

  const signAuth = utf8('sign-key-auth');
  const c = await tpm.run(Create, { parentHandle: srk }, { inSensitive: { userAuth: signAuth, data: new Uint8Array(0) }, inPublic: ECDSA_KEY, ...NO_CREATION });
  const l = await tpm.run(Load, { parentHandle: srk }, { inPrivate: c.params.outPrivate, inPublic: c.params.outPublic });
  const signKey = await persist(l.handles.objectHandle, objectName(c.params.outPublic), 0x81000010, signAuth);

  const sealedData = fresh(24);
  const sealAuth = utf8('seal-auth');
  const sc = await tpm.run(Create, { parentHandle: srk }, { inSensitive: { userAuth: sealAuth, data: sealedData }, inPublic: sealedTemplate(), ...NO_CREATION });
  const sl = await tpm.run(Load, { parentHandle: srk }, { inPrivate: sc.params.outPrivate, inPublic: sc.params.outPublic });
  const sealed = await persist(sl.handles.objectHandle, objectName(sc.params.outPublic), 0x81000011, sealAuth);

  const nvAuth = utf8('nv-auth');
  const nvPublic: TPMS_NV_PUBLIC = {
    nvIndex: NV_INDEX,
    nameAlg: TPM_ALG.SHA256,
    attributes: TPMA_NV.of({ AUTHREAD: true, AUTHWRITE: true, NO_DA: true }),
    authPolicy: new Uint8Array(0),
    dataSize: 32,
  };
  await tpm.run(NV_DefineSpace, { authHandle: TPM_RH.OWNER }, { auth: nvAuth, publicInfo: nvPublic });
  // The first write sets TPMA_NV_WRITTEN, which changes the Name (Part 1 §16.4); write once so it stays put.
  await tpm.run(NV_Write, { authHandle: { handle: NV_INDEX, name: new Uint8Array(0), authValue: nvAuth }, nvIndex: NV_INDEX }, { data: new Uint8Array(32), offset: 0 });
  const nv: Entity = { handle: NV_INDEX, name: nvName({ ...nvPublic, attributes: { ...nvPublic.attributes, WRITTEN: true } }), authValue: nvAuth };
  const rp = await tpm.run(NV_ReadPublic, { nvIndex: NV_INDEX }, {});
  expect(Buffer.from(rp.params.nvName).equals(Buffer.from(nv.name))).toBe(true);

  return {
    tpm,
    probe,
    srk,
    srkPublic,
    rsaSrk,
    rsaSrkPublic,
    ek,
    ekPublic,
    signKey,
    signPublic: c.params.outPublic,
    sealed,
    sealedData,
    sealedBlob: { inPrivate: sc.params.outPrivate, inPublic: sc.params.outPublic },
    nv,
    transients: [],
  };
}

/** No transient objects beyond the fixture's, no sessions at all. */
async function expectNoLeaks(f: Fixture): Promise<void> {
  expect(await handles(f.tpm, 0x80000000)).toEqual(f.transients);
  expect(await handles(f.tpm, 0x02000000)).toEqual([]);
  expect(await handles(f.tpm, 0x03000000)).toEqual([]);
}

// ---------------------------------------------------------------------------
// The matrix

interface CellResult {
  /** Index in the probe of the exchange of the command under test. */
  readonly at: number;
  /** The plaintext of the first command parameter, when it is secret enough to look for on the wire. */
  readonly sent?: Uint8Array;
  /** The plaintext of the first response parameter, likewise. */
  readonly received?: Uint8Array;
}

interface CommandCase {
  readonly name: string;
  readonly code: number;
  readonly decrypt: boolean; // first command parameter is a TPM2B
  readonly encrypt: boolean; // first response parameter is a TPM2B
  /** The entity whose authorization the sessions give. */
  entity(f: Fixture): Entity;
  /** Work before the command under test (not part of the "nothing sent" count). */
  prepare?(f: Fixture): Promise<Uint8Array>;
  run(f: Fixture, sessions: readonly Authorization[], prepared: Uint8Array): Promise<CellResult>;
}

const COMMANDS: readonly CommandCase[] = [
  {
    name: 'Create',
    code: Create.code,
    decrypt: true,
    encrypt: true,
    entity: (f) => f.srk,
    async run(f, sessions) {
      const data = fresh(20);
      const auth = fresh(8);
      const at = f.probe.count;
      const r = await f.tpm.run(Create, { parentHandle: f.srk }, { inSensitive: { userAuth: auth, data }, inPublic: sealedTemplate(), ...NO_CREATION }, { sessions });
      // The object works: load it and unseal what went in (through the encrypted channel when decrypt was set).
      await f.tpm.using(
        f.tpm.run(Load, { parentHandle: f.srk }, { inPrivate: r.params.outPrivate, inPublic: r.params.outPublic }).then((l) => l.handles.objectHandle),
        async (h) => {
          const u = await f.tpm.run(Unseal, { itemHandle: { handle: h, name: objectName(r.params.outPublic), authValue: auth } }, {});
          expect(u.params.outData).toEqual(data);
        },
      );
      return { at, sent: data, received: r.params.outPrivate };
    },
  },
  {
    name: 'Load',
    code: Load.code,
    decrypt: true,
    encrypt: true,
    entity: (f) => f.srk,
    async run(f, sessions) {
      const at = f.probe.count;
      const r = await f.tpm.run(Load, { parentHandle: f.srk }, f.sealedBlob, { sessions });
      try {
        expect(r.params.name).toEqual(objectName(f.sealedBlob.inPublic));
      } finally {
        await f.tpm.flush(r.handles.objectHandle);
      }
      return { at, sent: f.sealedBlob.inPrivate, received: r.params.name };
    },
  },
  {
    name: 'Sign',
    code: Sign.code,
    decrypt: true,
    encrypt: false,
    entity: (f) => f.signKey,
    async run(f, sessions) {
      const message = fresh(40);
      const digest = new Uint8Array(createHash('sha256').update(message).digest());
      const at = f.probe.count;
      const r = await f.tpm.run(Sign, { keyHandle: f.signKey }, { digest, inScheme: { scheme: TPM_ALG.NULL }, validation: NULL_TICKET }, { sessions });
      expect(verifyEcdsa(f.signPublic, message, r.params.signature)).toBe(true);
      return { at, sent: digest };
    },
  },
  {
    name: 'NV_Write',
    code: NV_Write.code,
    decrypt: true,
    encrypt: false,
    entity: (f) => f.nv,
    async run(f, sessions) {
      const data = fresh(32);
      const at = f.probe.count;
      await f.tpm.run(NV_Write, { authHandle: f.nv, nvIndex: f.nv }, { data, offset: 0 }, { sessions });
      // swtpm got the plaintext: read it back without any encryption.
      const back = await f.tpm.run(NV_Read, { authHandle: f.nv, nvIndex: f.nv }, { size: 32, offset: 0 });
      expect(back.params.data).toEqual(data);
      return { at, sent: data };
    },
  },
  {
    name: 'NV_Read',
    code: NV_Read.code,
    decrypt: false,
    encrypt: true,
    entity: (f) => f.nv,
    async prepare(f) {
      const data = fresh(32);
      await f.tpm.run(NV_Write, { authHandle: f.nv, nvIndex: f.nv }, { data, offset: 0 });
      return data;
    },
    async run(f, sessions, data) {
      const at = f.probe.count;
      const r = await f.tpm.run(NV_Read, { authHandle: f.nv, nvIndex: f.nv }, { size: 32, offset: 0 }, { sessions });
      expect(r.params.data).toEqual(data);
      return { at, received: data };
    },
  },
  {
    name: 'Unseal',
    code: Unseal.code,
    decrypt: false,
    encrypt: true,
    entity: (f) => f.sealed,
    async run(f, sessions) {
      const at = f.probe.count;
      const r = await f.tpm.run(Unseal, { itemHandle: f.sealed }, {}, { sessions });
      expect(r.params.outData).toEqual(f.sealedData);
      return { at, received: f.sealedData };
    },
  },
  {
    name: 'Quote',
    code: Quote.code,
    decrypt: true,
    encrypt: true,
    entity: (f) => f.signKey,
    async run(f, sessions) {
      const nonce = fresh(32);
      const at = f.probe.count;
      const r = await f.tpm.run(
        Quote,
        { signHandle: f.signKey },
        { qualifyingData: nonce, inScheme: { scheme: TPM_ALG.NULL }, PCRselect: [pcrSelection(TPM_ALG.SHA256, [0, 1, 2, 3, 4, 5, 6, 7])] },
        { sessions },
      );
      const attest = encode(TPMS_ATTEST, r.params.quoted);
      expect(r.params.quoted.extraData).toEqual(nonce);
      expect(r.params.quoted.type).toBe(TPM_ST.ATTEST_QUOTE);
      expect(verifyEcdsa(f.signPublic, attest, r.params.signature)).toBe(true);
      return { at, sent: nonce, received: attest };
    },
  },
];

const AES128: TPMT_SYM_DEF = { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB };
const AES256: TPMT_SYM_DEF = { algorithm: TPM_ALG.AES, keyBits: 256, mode: TPM_ALG.CFB };
const XOR: TPMT_SYM_DEF = { algorithm: TPM_ALG.XOR, keyBits: TPM_ALG.SHA256 };

interface Variant {
  readonly name: string;
  readonly needsDecrypt?: boolean;
  readonly needsEncrypt?: boolean;
  /** Never valid: the client must refuse it. */
  readonly alwaysInvalid?: boolean;
  /** The sessions for one cell; the started sessions are returned for checks and cleanup. */
  make(f: Fixture, c: CommandCase): Promise<{ sessions: Authorization[]; started: AuthSession[]; audit?: AuthSession }>;
}

const one = async (f: Fixture, opts: Parameters<Tpm['startAuthSession']>[0], use: (s: AuthSession) => Authorization) => {
  const s = await f.tpm.startAuthSession(opts);
  return { sessions: [use(s)], started: [s] };
};

const VARIANTS: readonly Variant[] = [
  { name: 'password (default)', make: async () => ({ sessions: [], started: [] }) },
  { name: 'password (explicit)', make: async (f, c) => ({ sessions: [password(c.entity(f).authValue)], started: [] }) },
  { name: 'HMAC unbound', make: (f) => one(f, {}, (s) => s) },
  { name: 'HMAC bound to the authorized entity', make: (f, c) => one(f, { bind: c.entity(f) }, (s) => s) },
  { name: 'HMAC bound to another entity (owner)', make: (f) => one(f, { bind: TPM_RH.OWNER }, (s) => s) },
  { name: 'HMAC salted, RSA storage key', make: (f) => one(f, { salt: { key: f.rsaSrk, public: f.rsaSrkPublic } }, (s) => s) },
  { name: 'HMAC salted, ECC storage key', make: (f) => one(f, { salt: { key: f.srk, public: f.srkPublic } }, (s) => s) },
  { name: 'HMAC salted with the EK, and bound', make: (f, c) => one(f, { salt: { key: f.ek, public: f.ekPublic }, bind: c.entity(f) }, (s) => s) },
  { name: 'HMAC SHA-1 session', make: (f) => one(f, { hashAlg: TPM_ALG.SHA1, bind: TPM_RH.OWNER }, (s) => s) },
  { name: 'decrypt AES-128-CFB', needsDecrypt: true, make: (f) => one(f, { symmetric: AES128 }, (s) => s.use({ decrypt: true })) },
  { name: 'encrypt AES-128-CFB', needsEncrypt: true, make: (f) => one(f, { symmetric: AES128 }, (s) => s.use({ encrypt: true })) },
  {
    name: 'decrypt+encrypt AES-256-CFB, salted',
    needsDecrypt: true,
    needsEncrypt: true,
    make: (f) => one(f, { symmetric: AES256, salt: { key: f.srk, public: f.srkPublic } }, (s) => s.use({ decrypt: true, encrypt: true })),
  },
  { name: 'decrypt XOR', needsDecrypt: true, make: (f) => one(f, { symmetric: XOR, bind: TPM_RH.OWNER }, (s) => s.use({ decrypt: true })) },
  { name: 'encrypt XOR', needsEncrypt: true, make: (f) => one(f, { symmetric: XOR }, (s) => s.use({ encrypt: true })) },
  {
    // The XOR mask uses the session hash, not the hash named in the TPMT_SYM_DEF (reference CryptParameterEncryption).
    name: 'decrypt+encrypt XOR, keyBits SHA-1 on a SHA-256 session',
    needsDecrypt: true,
    needsEncrypt: true,
    make: (f) => one(f, { symmetric: { algorithm: TPM_ALG.XOR, keyBits: TPM_ALG.SHA1 } }, (s) => s.use({ decrypt: true, encrypt: true })),
  },
  {
    // The authorizing HMAC session's command HMAC includes the other session's nonceTPM (Part 1 §19.6.10).
    name: 'HMAC authorization + separate salted decrypt session',
    needsDecrypt: true,
    make: async (f) => {
      const a = await f.tpm.startAuthSession({});
      const d = await f.tpm.startAuthSession({ salt: { key: f.srk, public: f.srkPublic } });
      return { sessions: [a, d.use({ decrypt: true })], started: [a, d] };
    },
  },
  {
    name: 'password + separate encrypt session (XOR)',
    needsEncrypt: true,
    make: async (f) => {
      const e = await f.tpm.startAuthSession({ symmetric: XOR, salt: { key: f.rsaSrk, public: f.rsaSrkPublic } });
      return { sessions: [password(), e.use({ encrypt: true })], started: [e] };
    },
  },
  {
    name: 'audit (the authorizing HMAC session)',
    make: async (f) => {
      const s = await f.tpm.startAuthSession({});
      return { sessions: [s.use({ audit: true })], started: [s], audit: s };
    },
  },
  {
    name: 'password + separate audit session',
    make: async (f) => {
      const s = await f.tpm.startAuthSession({ bind: TPM_RH.OWNER });
      return { sessions: [password(), s.use({ audit: true })], started: [s], audit: s };
    },
  },
  { name: 'audit on a password', alwaysInvalid: true, make: async () => ({ sessions: [password().use({ audit: true })], started: [] }) },
];

function validCell(v: Variant, c: CommandCase): boolean {
  return !v.alwaysInvalid && (!v.needsDecrypt || c.decrypt) && (!v.needsEncrypt || c.encrypt);
}

type Framing = 'swtpm' | 'mssim';

for (const framing of ['swtpm', 'mssim'] as Framing[]) {
  describeEachTpm(`sessions (${framing} framing)`, (kind) => {
    let sw: TpmUnderTest;
    let f: Fixture;

    beforeAll(async () => {
      sw = await startTpm(kind);
      const t = framing === 'swtpm' ? new SwtpmTransport({ port: sw.port, ctrlPort: sw.ctrlPort }) : new MssimTransport({ port: sw.port });
      f = await setUp(t);
    }, 60_000);
    afterAll(async () => {
      await f?.tpm.close();
      await sw?.stop();
    });
    afterEach(async () => {
      if (f !== undefined) await expectNoLeaks(f);
    });

    describe('acceptance matrix', () => {
      for (const v of VARIANTS) {
        for (const c of COMMANDS) {
          const valid = validCell(v, c);
          it(`${v.name} × ${c.name}: ${valid ? 'runs' : 'refused before sending'}`, async () => {
            const { sessions, started, audit } = await v.make(f, c);
            try {
              const prepared = (await c.prepare?.(f)) ?? new Uint8Array(0);
              if (!valid) {
                const before = f.probe.count;
                const err = await rejection(c.run(f, sessions, prepared));
                expect(err).toBeInstanceOf(SessionError);
                expect((err as SessionError).code).toBe('session.invalid');
                expect(f.probe.count).toBe(before);
                return;
              }
              const result = await c.run(f, sessions, prepared);
              const at = result.at;
              expect(codeOf(f.probe.commands[at]!)).toBe(c.code);
              const decrypts = v.needsDecrypt === true;
              const encrypts = v.needsEncrypt === true;
              if (result.sent !== undefined) expect(contains(f.probe.commands[at]!, result.sent)).toBe(!decrypts);
              if (result.received !== undefined) expect(contains(f.probe.responses[at]!, result.received)).toBe(!encrypts);
              for (const s of started) expect(s.isOpen).toBe(true);
              if (audit !== undefined) {
                // The TPM signs its own audit digest; it must equal the one this client kept.
                const d = await f.tpm.run(
                  GetSessionAuditDigest,
                  { privacyAdminHandle: TPM_RH.ENDORSEMENT, signHandle: f.signKey, sessionHandle: audit },
                  { qualifyingData: fresh(16), inScheme: { scheme: TPM_ALG.NULL } },
                );
                const info = d.params.auditInfo;
                if (info.type !== TPM_ST.ATTEST_SESSION_AUDIT) throw new Error('not a session audit');
                expect(Buffer.from(info.attested.sessionDigest).toString('hex')).toBe(Buffer.from(audit.auditDigest!).toString('hex'));
                expect(verifyEcdsa(f.signPublic, encode(TPMS_ATTEST, info), d.params.signature)).toBe(true);
              }
            } finally {
              for (const s of started) await s.flush();
            }
          });
        }
      }
    });

    const digestOf = (m: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(m).digest());
    const sign = (sessions: readonly Authorization[], key: Entity = f.signKey) =>
      f.tpm.run(Sign, { keyHandle: key }, { digest: digestOf(fresh(8)), inScheme: { scheme: TPM_ALG.NULL }, validation: NULL_TICKET }, { sessions });
    const withWrongAuth = (e: Entity): Entity => ({ ...e, authValue: utf8('not-the-auth') });

    describe('invalid combinations, refused before anything is sent', () => {
      const refused = async (p: () => Promise<unknown>, code: 'session.invalid' | 'session.closed' = 'session.invalid'): Promise<SessionError> => {
        const before = f.probe.count;
        const err = await rejection(p());
        expect(err).toBeInstanceOf(SessionError);
        expect((err as SessionError).code).toBe(code);
        expect(f.probe.count).toBe(before);
        return err as SessionError;
      };

      it('more than three sessions, two decrypt or two encrypt sessions, a session twice', async () => {
        await f.tpm.scope(async (scope) => {
          const s1 = scope.defer(await f.tpm.startAuthSession({}));
          const s2 = scope.defer(await f.tpm.startAuthSession({}));
          const s3 = scope.defer(await f.tpm.startAuthSession({}));
          await refused(() => sign([password(), s1.use({ audit: true }), s2.use({ decrypt: true }), s3.use({ encrypt: false, decrypt: true })]));
          await refused(() => sign([s1.use({ decrypt: true }), s2.use({ decrypt: true })]));
          const e = await refused(() => f.tpm.run(Unseal, { itemHandle: f.sealed }, {}, { sessions: [s1.use({ encrypt: true }), s2.use({ encrypt: true })] }));
          expect(e.sessionIndex).toBe(1);
          await refused(() => sign([s1, s1.use({ decrypt: true })]));
          await refused(() => sign([s1, s2, s3, password()]));
        });
      });

      it('trial sessions, audit on a policy session, extra sessions that do nothing, extra passwords, a password that ends', async () => {
        await f.tpm.withSession({ type: 'trial' }, async (trial) => {
          await refused(() => sign([trial]));
        });
        await f.tpm.withSession({ type: 'policy' }, async (policy) => {
          await refused(() => sign([policy.use({ audit: true })]));
        });
        await f.tpm.withSession({}, async (s) => {
          await refused(() => sign([password(), s]));
          await refused(() => sign([password(), password()]));
          await refused(() => sign([password().use({ continueSession: false })]));
          await refused(() => sign([password().use({ decrypt: true })]));
          await refused(() => sign([password().use({ encrypt: true })]));
        });
      });

      it('parameter encryption with a session that has no cipher', async () => {
        await f.tpm.withSession({ symmetric: { algorithm: TPM_ALG.NULL } }, async (s) => {
          await refused(() => sign([s.use({ decrypt: true })]));
          await refused(() => f.tpm.run(Unseal, { itemHandle: f.sealed }, {}, { sessions: [s.use({ encrypt: true })] }));
          await sign([s]); // still fine for authorization
        });
      });

      it('a handle without the Name an HMAC session needs; a session of another Tpm; a closed session', async () => {
        await f.tpm.withSession({}, async (s) => {
          await refused(() => f.tpm.run(Sign, { keyHandle: f.signKey.handle }, { digest: new Uint8Array(32), inScheme: { scheme: TPM_ALG.NULL }, validation: NULL_TICKET }, { sessions: [s] }));
          // A password needs no Name: the bare handle works (with the auth given explicitly).
          await f.tpm.run(Sign, { keyHandle: f.signKey.handle }, { digest: new Uint8Array(32), inScheme: { scheme: TPM_ALG.NULL }, validation: NULL_TICKET }, { sessions: [password(f.signKey.authValue)] });
          const other = new Tpm(f.probe);
          await refused(() => other.run(Sign, { keyHandle: f.signKey }, { digest: new Uint8Array(32), inScheme: { scheme: TPM_ALG.NULL }, validation: NULL_TICKET }, { sessions: [s] }));
        });
        const s = await f.tpm.startAuthSession({});
        await sign([s.use({ continueSession: false })]);
        expect(s.isOpen).toBe(false);
        expect(s.status).toBe('closed');
        await refused(() => sign([s]), 'session.closed');
        await s.flush(); // a no-op: nothing sent
      });

      it('bad StartAuthSession options', async () => {
        await refused(() => f.tpm.startAuthSession({ nonceSize: 8 }));
        await refused(() => f.tpm.startAuthSession({ hashAlg: 0x1234 }));
        await refused(() => f.tpm.startAuthSession({ symmetric: { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CBC } }));
        // A salt key whose Name does not match the public area given: the salt would go to the wrong key.
        await refused(() => f.tpm.startAuthSession({ salt: { key: f.srk, public: f.rsaSrkPublic } }));
        // A key that cannot receive a salt (a signing key).
        await refused(() => f.tpm.startAuthSession({ salt: { key: f.signKey, public: f.signPublic } }));
        await refused(() => f.tpm.startAuthSession({ bind: f.signKey.handle }));
      });
    });

    describe('swtpm refuses the invalid cells too (hand-framed)', () => {
      const raw = async (bytes: Uint8Array): Promise<unknown> => {
        const rsp = await f.probe.inner.send(bytes);
        const rc = new DataView(rsp.buffer, rsp.byteOffset).getUint32(6);
        return rc === 0 ? 0 : new TpmError(rc);
      };
      const auth = (sessionHandle: number, attrs: Parameters<typeof TPMA_SESSION.of>[0], hmac: Uint8Array = new Uint8Array(32)) => ({
        sessionHandle,
        nonce: sessionHandle === TPM_RS_PW ? new Uint8Array(0) : fresh(32),
        sessionAttributes: TPMA_SESSION.of(attrs),
        hmac,
      });

      it('decrypt on NV_Read, encrypt on NV_Write, audit on a password: TPM_RC_ATTRIBUTES', async () => {
        await f.tpm.withSession({}, async (s) => {
          const read = frameCommand(NV_Read, { authHandle: NV_INDEX, nvIndex: NV_INDEX }, encodeParams(NV_Read, { size: 8, offset: 0 }), {
            sessions: [auth(s.handle, { continueSession: true, decrypt: true })],
          });
          const e1 = await raw(read);
          expect(isRc(e1, TPM_RC.ATTRIBUTES)).toBe(true);
          expect((e1 as TpmError).session).toBe(1);
          const write = frameCommand(NV_Write, { authHandle: NV_INDEX, nvIndex: NV_INDEX }, encodeParams(NV_Write, { data: fresh(8), offset: 0 }), {
            sessions: [auth(s.handle, { continueSession: true, encrypt: true })],
          });
          expect(isRc(await raw(write), TPM_RC.ATTRIBUTES)).toBe(true);
          const signBytes = frameCommand(Sign, { keyHandle: f.signKey.handle }, encodeParams(Sign, { digest: new Uint8Array(32), inScheme: { scheme: TPM_ALG.NULL }, validation: NULL_TICKET }), {
            sessions: [auth(TPM_RS_PW, { continueSession: true, audit: true }, f.signKey.authValue)],
          });
          expect(isRc(await raw(signBytes), TPM_RC.ATTRIBUTES)).toBe(true);
          // The TPM refused before touching the session: the client's state is still in step.
          await sign([s]);
        });
      });
    });

    describe('bad input', () => {
      it('wrong auth: password and HMAC sessions get AUTH_FAIL/BAD_AUTH, and the session stays usable', async () => {
        const isAuthError = (e: unknown): boolean => isRc(e, TPM_RC.BAD_AUTH) || isRc(e, TPM_RC.AUTH_FAIL);
        expect(isAuthError(await rejection(sign([], withWrongAuth(f.signKey))))).toBe(true);
        for (const opts of [{}, { bind: f.signKey }, { salt: { key: f.srk, public: f.srkPublic }, bind: TPM_RH.OWNER }]) {
          await f.tpm.withSession(opts, async (s) => {
            const [nc, nt] = [s.nonceCaller, s.nonceTPM];
            const e = await rejection(sign([s], withWrongAuth(f.signKey)));
            // No new nonces were adopted from an error response.
            expect([s.nonceCaller, s.nonceTPM]).toEqual([nc, nt]);
            expect(e).toBeInstanceOf(TpmError);
            expect(isAuthError(e)).toBe(true);
            expect((e as TpmError).session).toBe(1);
            expect(s.isOpen).toBe(true);
            await sign([s]);
            // A successful command rolls both nonces, fresh and of the session's nonce size.
            expect(s.nonceTPM).not.toEqual(nt);
            expect(s.nonceCaller).not.toEqual(nc);
            expect(s.nonceCaller.length).toBe(32);
            await sign([s.use({ decrypt: true })]);
          });
        }
      });

      it('a TPM error leaves the session as the TPM leaves it: open even when continueSession was clear (the reference ExecuteCommand skips BuildResponseSession on errors)', async () => {
        const s = await f.tpm.startAuthSession({});
        const e = await rejection(sign([s.use({ continueSession: false })], withWrongAuth(f.signKey)));
        expect(e).toBeInstanceOf(TpmError);
        expect(s.isOpen).toBe(true);
        expect(await handles(f.tpm, 0x02000000)).toEqual([s.handle]);
        await sign([s.use({ continueSession: false })]);
        expect(s.isOpen).toBe(false);
      });

      it('a response HMAC that does not verify: session.hmac, the session broken and flushed', async () => {
        const s = await f.tpm.startAuthSession({ bind: f.signKey });
        // The response HMAC is the last field of the response.
        f.probe.tamper = (cmd, rsp) => (codeOf(cmd) === Sign.code ? flipLast(rsp) : undefined);
        const e = await rejection(sign([s]));
        expect(e).toBeInstanceOf(SessionError);
        expect((e as SessionError).code).toBe('session.hmac');
        expect((e as SessionError).sessionIndex).toBe(0);
        expect(s.status).toBe('broken');
        const before = f.probe.count;
        expect(((await rejection(sign([s]))) as SessionError).code).toBe('session.closed');
        expect(f.probe.count).toBe(before);
        await s.flush();
      });

      it('a tampered encrypted response parameter fails the HMAC before it is decrypted', async () => {
        const s = await f.tpm.startAuthSession({ salt: { key: f.srk, public: f.srkPublic } });
        // Unseal's response: header 10, parameterSize 4, outData size 2, then the ciphertext.
        f.probe.tamper = (cmd, rsp) => (codeOf(cmd) === Unseal.code ? flipAt(rsp, 16) : undefined);
        const e = await rejection(f.tpm.run(Unseal, { itemHandle: f.sealed }, {}, { sessions: [s.use({ encrypt: true })] }));
        expect((e as SessionError).code).toBe('session.hmac');
        expect(s.status).toBe('broken');
      });

      it('a flipped HMAC on a Load response: the object it loaded is flushed', async () => {
        const s = await f.tpm.startAuthSession({});
        f.probe.tamper = (cmd, rsp) => (codeOf(cmd) === Load.code ? flipLast(rsp) : undefined);
        const e = await rejection(f.tpm.run(Load, { parentHandle: f.srk }, f.sealedBlob, { sessions: [s] }));
        expect((e as SessionError).code).toBe('session.hmac');
      });

      it('a password response that carries an HMAC is refused', async () => {
        f.probe.tamper = (cmd, rsp) => {
          if (codeOf(cmd) !== Unseal.code) return undefined;
          // Replace the empty response hmac (last 2 bytes 0000) with a 1-byte one.
          const out = new Uint8Array(rsp.length + 1);
          out.set(rsp.subarray(0, rsp.length - 2));
          out.set([0, 1, 0xaa], rsp.length - 2);
          new DataView(out.buffer).setUint32(2, out.length);
          return out;
        };
        expect(((await rejection(f.tpm.run(Unseal, { itemHandle: f.sealed }, {}))) as SessionError).code).toBe('session.hmac');
      });

      it('truncated responses: a typed ParseError, sessions broken and flushed, loaded objects flushed', async () => {
        const cut = (keep: (n: number) => number, fixSize: boolean) => (cmd: Uint8Array, rsp: Uint8Array) => {
          if (codeOf(cmd) !== Load.code) return undefined;
          const out = rsp.slice(0, keep(rsp.length));
          if (fixSize) new DataView(out.buffer).setUint32(2, out.length);
          return out;
        };
        for (const fixSize of [false, true]) {
          const s = await f.tpm.startAuthSession({});
          // Cut inside the authorization area: the header's size is left stale, or fixed so that parsing reaches the cut.
          f.probe.tamper = cut((n) => n - 3, fixSize);
          const e = await rejection(f.tpm.run(Load, { parentHandle: f.srk }, f.sealedBlob, { sessions: [s] }));
          expect(e).toBeInstanceOf(ParseError);
          expect((e as ParseError).code).toBe(fixSize ? 'parse.truncated' : 'parse.size');
          expect(s.status).toBe('broken');
          await expectNoLeaks(f);
        }
        // Without sessions too: the handle area survived, so the object is flushed.
        f.probe.tamper = cut(() => 30, true);
        expect(await rejection(f.tpm.run(Load, { parentHandle: f.srk }, f.sealedBlob))).toBeInstanceOf(ParseError);
        // A response shorter than its header.
        f.probe.tamper = (cmd, rsp) => (codeOf(cmd) === GetRandom.code ? rsp.slice(0, 6) : undefined);
        expect(((await rejection(f.tpm.run(GetRandom, {}, { bytesRequested: 8 }))) as ParseError).code).toBe('parse.truncated');
      });

      it('response parameters that do not decode: ParseError', async () => {
        // GetRandom without sessions: make randomBytes claim more bytes than there are.
        f.probe.tamper = (cmd, rsp) => {
          if (codeOf(cmd) !== GetRandom.code) return undefined;
          const out = rsp.slice();
          new DataView(out.buffer).setUint16(10, 9);
          return out;
        };
        expect(await rejection(f.tpm.run(GetRandom, {}, { bytesRequested: 8 }))).toBeInstanceOf(ParseError);
      });
    });

    describe('audit sessions', () => {
      const auditDigestOnTpm = async (s: AuthSession): Promise<string> => {
        const d = await f.tpm.run(
          GetSessionAuditDigest,
          { privacyAdminHandle: TPM_RH.ENDORSEMENT, signHandle: TPM_RH.NULL, sessionHandle: s },
          { qualifyingData: new Uint8Array(0), inScheme: { scheme: TPM_ALG.NULL } },
        );
        const info = d.params.auditInfo;
        if (info.type !== TPM_ST.ATTEST_SESSION_AUDIT) throw new Error('not a session audit');
        return Buffer.from(info.attested.sessionDigest).toString('hex');
      };

      it('a bound session that starts auditing is no longer bound (reference InitAuditSession); auditReset restarts the digest', async () => {
        await f.tpm.withSession({ bind: f.signKey }, async (s) => {
          await sign([s]); // bound: the key's authValue stays out of the HMAC key
          await sign([s.use({ audit: true })]);
          await sign([s.use({ audit: true })]); // now unbound: the authValue is in the HMAC key
          const twice = audit(s);
          expect(await auditDigestOnTpm(s)).toBe(twice);
          await sign([s.use({ audit: true, auditReset: true })]);
          const reset = audit(s);
          expect(reset).not.toBe(twice);
          expect(await auditDigestOnTpm(s)).toBe(reset);
          // Commands without the audit attribute leave the digest alone.
          await sign([s]);
          expect(await auditDigestOnTpm(s)).toBe(reset);
        });
      });

      const audit = (s: AuthSession): string => Buffer.from(s.auditDigest!).toString('hex');
    });

    describe('policy sessions', () => {
      async function policyDigest(steps: (s: AuthSession) => Promise<unknown>): Promise<Uint8Array> {
        return f.tpm.withSession({ type: 'trial' }, async (t) => {
          await steps(t);
          return (await f.tpm.run(PolicyGetDigest, { policySession: t }, {})).params.policyDigest;
        });
      }

      it('PolicyAuthValue and PolicyPassword authorize an object whose policy demands them; the session resets after use', async () => {
        const digest = await policyDigest((t) => f.tpm.run(PolicyAuthValue, { policySession: t }, {}));
        // PolicyPassword gives the same digest (Part 3 §23.18: it updates with TPM_CC_PolicyAuthValue).
        expect(await policyDigest((t) => f.tpm.run(PolicyPassword, { policySession: t }, {}))).toEqual(digest);
        const data = fresh(16);
        const auth = utf8('policy-object-auth');
        const c = await f.tpm.run(Create, { parentHandle: f.srk }, { inSensitive: { userAuth: auth, data }, inPublic: sealedTemplate(digest, false), ...NO_CREATION });
        await f.tpm.using(
          f.tpm.run(Load, { parentHandle: f.srk }, { inPrivate: c.params.outPrivate, inPublic: c.params.outPublic }).then((l) => l.handles.objectHandle),
          async (h) => {
            const obj: Entity = { handle: h, name: objectName(c.params.outPublic), authValue: auth };
            await f.tpm.withSession({ type: 'policy', salt: { key: f.srk, public: f.srkPublic } }, async (p) => {
              // Without the policy command the digest does not match.
              expect(isRc(await rejection(f.tpm.run(Unseal, { itemHandle: obj }, {}, { sessions: [p] })), TPM_RC.POLICY_FAIL)).toBe(true);
              await f.tpm.run(PolicyAuthValue, { policySession: p }, {});
              // The authValue is in the HMAC key: a wrong one fails, and the session keeps its policy state.
              const bad = await rejection(f.tpm.run(Unseal, { itemHandle: { ...obj, authValue: utf8('wrong') } }, {}, { sessions: [p] }));
              expect(isRc(bad, TPM_RC.AUTH_FAIL) || isRc(bad, TPM_RC.BAD_AUTH)).toBe(true);
              expect((await f.tpm.run(Unseal, { itemHandle: obj }, {}, { sessions: [p.use({ encrypt: true })] })).params.outData).toEqual(data);
              // The nonce rolled, so the policy was reset: it must be satisfied again.
              expect(isRc(await rejection(f.tpm.run(Unseal, { itemHandle: obj }, {}, { sessions: [p] })), TPM_RC.POLICY_FAIL)).toBe(true);
              await f.tpm.run(PolicyPassword, { policySession: p }, {});
              expect((await f.tpm.run(Unseal, { itemHandle: obj }, {}, { sessions: [p] })).params.outData).toEqual(data);
              // PolicyRestart clears it.
              await f.tpm.run(PolicyPassword, { policySession: p }, {});
              await f.tpm.run(PolicyRestart, { sessionHandle: p }, {});
              expect(isRc(await rejection(f.tpm.run(Unseal, { itemHandle: obj }, {}, { sessions: [p] })), TPM_RC.POLICY_FAIL)).toBe(true);
            });
          },
        );
      });
    });

    describe('authValue changes and object lifetimes', () => {
      it('HierarchyChangeAuth on an HMAC session: the response is verified with the new authValue', async () => {
        const newAuth = utf8('owner-2');
        await f.tpm.withSession({ salt: { key: f.srk, public: f.srkPublic } }, async (s) => {
          await f.tpm.run(HierarchyChangeAuth, { authHandle: TPM_RH.OWNER }, { newAuth }, { sessions: [s.use({ decrypt: true })] });
          const owner: Entity = { handle: TPM_RH.OWNER, name: handleName(TPM_RH.OWNER), authValue: newAuth };
          await f.tpm.run(HierarchyChangeAuth, { authHandle: owner }, { newAuth: new Uint8Array(0) }, { sessions: [s] });
          await f.tpm.run(HierarchyChangeAuth, { authHandle: TPM_RH.OWNER }, { newAuth: new Uint8Array(0) }, { sessions: [s] });
        });
      });

      it('using/withSession/scope flush what they hold when the body throws', async () => {
        const boom = new Error('boom');
        const load = () => f.tpm.run(Load, { parentHandle: f.srk }, f.sealedBlob).then((l) => l.handles.objectHandle);
        expect(await rejection(f.tpm.using(load(), () => Promise.reject(boom)))).toBe(boom);
        await expectNoLeaks(f);
        let held: AuthSession | undefined;
        expect(await rejection(f.tpm.withSession({}, (s) => ((held = s), Promise.reject(boom))))).toBe(boom);
        expect(held?.isOpen).toBe(false);
        await expectNoLeaks(f);
        expect(
          await rejection(
            f.tpm.scope(async (scope) => {
              scope.defer(await load());
              scope.defer(await f.tpm.startAuthSession({ type: 'policy' }));
              scope.defer(await load());
              throw boom;
            }),
          ),
        ).toBe(boom);
        await expectNoLeaks(f);
        // A resource that never arrived: the rejection passes through, nothing to flush.
        const failedLoad = f.tpm.run(Load, { parentHandle: f.srk }, { ...f.sealedBlob, inPrivate: new Uint8Array(40) }).then((l) => l.handles.objectHandle);
        expect(await rejection(f.tpm.using(failedLoad, () => 1))).toBeInstanceOf(TpmError);
        // A session closed inside the body is not flushed twice.
        expect(await f.tpm.withSession({}, async (s) => (await sign([s.use({ continueSession: false })]), 7))).toBe(7);
      });

      it('`await using` flushes sessions and objects at the end of a block; flush refuses persistent handles', async () => {
        let outer: AuthSession | undefined;
        const boom = new Error('boom');
        const e = await rejection(
          (async () => {
            await using s = await f.tpm.startAuthSession({});
            await using key = f.tpm.disposable((await f.tpm.run(Load, { parentHandle: f.srk }, f.sealedBlob)).handles.objectHandle);
            outer = s;
            expect(await handles(f.tpm, 0x80000000)).toEqual([key.resource]);
            throw boom;
          })(),
        );
        expect(e).toBe(boom);
        expect(outer?.isOpen).toBe(false);
        await expectNoLeaks(f);
        expect(((await rejection(f.tpm.flush(f.srk))) as SessionError).code).toBe('session.invalid');
        // FlushContext run directly on a session is noticed.
        const t = await f.tpm.startAuthSession({});
        await f.tpm.run(FlushContext, {}, { flushHandle: t.handle });
        expect(t.isOpen).toBe(false);
      });
    });
  });
}

function flipAt(b: Uint8Array, i: number): Uint8Array {
  const out = b.slice();
  out[i]! ^= 0x01;
  return out;
}
function flipLast(b: Uint8Array): Uint8Array {
  return flipAt(b, b.length - 1);
}
