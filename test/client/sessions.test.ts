/**
 * The client's sessions against swtpm (an independent TPM: libtpms), over
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
  NV_UndefineSpace,
  NV_Write,
  PolicyAuthValue,
  PolicyGetDigest,
  PolicyPassword,
  PolicyRestart,
  Quote,
  ReadPublic,
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
import { describeWithSwtpm, startSwtpm, type SwtpmInstance } from '../support/swtpm.js';

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

function sealedTemplate(authPolicy = new Uint8Array(0), userWithAuth = true): TPMT_PUBLIC {
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

type TransportKind = 'swtpm' | 'mssim';

for (const kind of ['swtpm', 'mssim'] as TransportKind[]) {
  describeWithSwtpm(`sessions against swtpm (${kind} framing)`, () => {
    let sw: SwtpmInstance;
    let f: Fixture;

    beforeAll(async () => {
      sw = await startSwtpm();
      const t = kind === 'swtpm' ? new SwtpmTransport({ port: sw.port, ctrlPort: sw.ctrlPort }) : new MssimTransport({ port: sw.port });
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
  });
}
