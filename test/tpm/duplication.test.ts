/**
 * Key wrapping (duplication.ts): external keys made with node:crypto wrapped
 * for TPM2_Import under RSA and ECC SRKs on swtpm, with and without an inner
 * wrapper, then loaded and used (Sign verified with node:crypto, HMAC and
 * EncryptDecrypt compared with node:crypto); tampering refused by swtpm and by
 * our unwrap; keys duplicated off swtpm with TPM2_Duplicate to an external
 * parent opened with unwrapDuplicate; layouts recomputed by hand.
 */
import { createCipheriv, createHash, createHmac, createPublicKey, generateKeyPairSync, type KeyObject, randomBytes, sign as nodeSign, verify } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Create,
  CreatePrimary,
  Duplicate,
  EncryptDecrypt2,
  FlushContext,
  HMAC,
  Import,
  Load,
  LoadExternal,
  PolicyCommandCode,
  Sign,
  StartAuthSession,
  Startup,
} from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_CC, TPM_ECC, TPM_RH, TPM_SE, TPM_ST, TPM_SU } from '../../src/tpm/constants.js';
import { hash } from '../../src/tpm/crypto/hash.js';
import { kdfa } from '../../src/tpm/crypto/kdf.js';
import {
  type ExternalKey,
  externalObject,
  keyFromSensitive,
  produceOuterWrap,
  unwrapDuplicate,
  unwrapOuter,
  wrapDuplicate,
  wrapExternalKey,
} from '../../src/tpm/duplication.js';
import { ArgumentError, ParseError, TrustrootError } from '../../src/tpm/errors.js';
import { objectName } from '../../src/tpm/names.js';
import { isRc, TPM_RC, type TpmError } from '../../src/tpm/rc.js';
import { runCommand } from '../../src/tpm/run.js';
import { eccPointOf } from '../../src/tpm/secret.js';
import { eccSrkTemplate, rsaSrkTemplate } from '../../src/tpm/templates.js';
import { SwtpmTransport, type Transport } from '../../src/tpm/transport/index.js';
import { TPMA_OBJECT, TPMA_SESSION, TPMT_SENSITIVE, type TPMT_PUBLIC } from '../../src/tpm/types/index.js';
import { encode } from '../../src/tpm/wire/codec.js';
import { describeWithSwtpm, startSwtpm, type SwtpmInstance } from '../support/swtpm.js';

const empty = new Uint8Array(0);

/** A storage parent's public area (Provisioning Guidance SRK template) around a node:crypto key. */
function parentArea(publicKey: KeyObject): TPMT_PUBLIC {
  if (publicKey.asymmetricKeyType === 'rsa') {
    const t = rsaSrkTemplate();
    return { ...t, unique: new Uint8Array(Buffer.from(String(publicKey.export({ format: 'jwk' }).n), 'base64url')) } as TPMT_PUBLIC;
  }
  return { ...eccSrkTemplate(), unique: eccPointOf(publicKey).point } as TPMT_PUBLIC;
}

function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  return undefined;
}
const codeOf = (f: () => unknown): unknown => (thrown(f) as { code?: string } | undefined)?.code;

const rsaParent = generateKeyPairSync('rsa', { modulusLength: 2048 });
const eccParent = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const rsaKey = generateKeyPairSync('rsa', { modulusLength: 2048 });
const eccKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const hmacKey = new Uint8Array(randomBytes(32));
const aesKey = new Uint8Array(randomBytes(16));

const KEYS: readonly [string, ExternalKey][] = [
  ['RSA-2048', { type: 'rsa', privateKey: rsaKey.privateKey }],
  ['ECC P-256', { type: 'ecc', privateKey: eccKey.privateKey }],
  ['HMAC-SHA256', { type: 'hmac', key: hmacKey }],
  ['AES-128', { type: 'symcipher', key: aesKey }],
];

function sameKey(a: KeyObject, b: KeyObject): boolean {
  if (a.type === 'secret') return Buffer.from(a.export()).equals(Buffer.from(b.export()));
  return Buffer.from(a.export({ format: 'der', type: 'pkcs8' })).equals(Buffer.from(b.export({ format: 'der', type: 'pkcs8' })));
}
function original(key: ExternalKey): KeyObject | Uint8Array {
  return key.type === 'rsa' || key.type === 'ecc' ? key.privateKey : (key.key as Uint8Array);
}

describe('external objects and duplication blobs in software', () => {
  it('externalObject: public and sensitive areas per key type', () => {
    const r = externalObject({ type: 'rsa', privateKey: rsaKey.privateKey });
    if (r.publicArea.type !== TPM_ALG.RSA || r.sensitive.sensitiveType !== TPM_ALG.RSA) throw new Error('type');
    expect(r.publicArea.parameters.keyBits).toBe(2048);
    expect(r.publicArea.parameters.exponent).toBe(0); // 65537 as the TPM's default
    expect(Buffer.from(r.publicArea.unique).toString('base64url')).toBe(rsaKey.publicKey.export({ format: 'jwk' }).n);
    expect(Buffer.from(r.sensitive.sensitive).toString('base64url')).toBe(rsaKey.privateKey.export({ format: 'jwk' }).p);
    expect(r.publicArea.objectAttributes.fixedTPM || r.publicArea.objectAttributes.fixedParent).toBe(false);

    const e = externalObject({ type: 'ecc', privateKey: eccKey.privateKey });
    if (e.publicArea.type !== TPM_ALG.ECC || e.sensitive.sensitiveType !== TPM_ALG.ECC) throw new Error('type');
    expect(e.publicArea.parameters.curveID).toBe(TPM_ECC.NIST_P256);
    expect(e.sensitive.sensitive.length).toBe(32);

    const seedValue = new Uint8Array(32).fill(3);
    const h = externalObject({ type: 'hmac', key: hmacKey }, { seedValue });
    // unique = H_nameAlg(seedValue ‖ key) (CryptComputeSymmetricUnique, non-parent).
    expect(Buffer.from(h.publicArea.unique as Uint8Array)).toEqual(createHash('sha256').update(seedValue).update(hmacKey).digest());
    expect(h.publicArea.objectAttributes.sign && !h.publicArea.objectAttributes.decrypt).toBe(true);

    const a = externalObject({ type: 'symcipher', key: aesKey }, { nameAlg: TPM_ALG.SHA384 });
    if (a.publicArea.type !== TPM_ALG.SYMCIPHER) throw new Error('type');
    expect(a.publicArea.parameters.sym).toEqual({ algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB });
    expect((a.publicArea.unique as Uint8Array).length).toBe(48);
  });

  for (const [pname, parent] of [
    ['RSA', rsaParent],
    ['ECC', eccParent],
  ] as const) {
    for (const [kname, key] of KEYS) {
      it(`${pname} parent, ${kname}: wrap → unwrap → keyFromSensitive gives the original key, with and without an inner wrapper`, () => {
        const pub = parentArea(parent.publicKey);
        for (const innerWrap of [false, true]) {
          const blob = wrapExternalKey(pub, key, { innerWrap });
          expect(blob.encryptionKey.length).toBe(innerWrap ? 16 : 0);
          expect(blob.symmetricAlg.algorithm).toBe(innerWrap ? TPM_ALG.AES : TPM_ALG.NULL);
          const sensitive = unwrapDuplicate(parent.privateKey, pub, blob);
          const k = keyFromSensitive(blob.objectPublic, sensitive);
          const o = original(key);
          expect(o instanceof Uint8Array ? Buffer.from(k.export()).equals(Buffer.from(o)) : sameKey(k, o)).toBe(true);
        }
      });
    }
  }

  it('the outer wrapper matches the layout recomputed with node:crypto from a fixed seed (Part 1 §23.3.2)', () => {
    const pub = parentArea(rsaParent.publicKey);
    const { publicArea, sensitive } = externalObject({ type: 'hmac', key: hmacKey });
    const seed = new Uint8Array(32).fill(0x5a);
    const blob = wrapDuplicate(pub, publicArea, sensitive, { seed });
    const name = objectName(publicArea);
    const body = encode(TPMT_SENSITIVE, sensitive);
    const plain = Buffer.concat([Buffer.from([body.length >> 8, body.length & 0xff]), body]); // u16 ‖ TPMT_SENSITIVE
    const symKey = kdfa(TPM_ALG.SHA256, seed, 'STORAGE', name, empty, 128);
    const enc = createCipheriv('aes-128-cfb', symKey, Buffer.alloc(16)).update(plain);
    const hmacK = kdfa(TPM_ALG.SHA256, seed, 'INTEGRITY', empty, empty, 256);
    const mac = createHmac('sha256', hmacK).update(enc).update(name).digest();
    expect(Buffer.from(blob.duplicate)).toEqual(Buffer.concat([Buffer.from([0, 32]), mac, enc]));

    // Inner wrapper with a given key: CFB(key, 0, u16 ‖ H(u16 ‖ TPMT_SENSITIVE ‖ Name) ‖ u16 ‖ TPMT_SENSITIVE) under the outer one.
    const innerKey = new Uint8Array(16).fill(0x11);
    const inner = wrapDuplicate(pub, publicArea, sensitive, { seed, innerWrap: { encryptionKey: innerKey } });
    const integrity = createHash('sha256').update(plain).update(name).digest();
    const innerEnc = createCipheriv('aes-128-cfb', innerKey, Buffer.alloc(16)).update(Buffer.concat([Buffer.from([0, 32]), integrity, plain]));
    const outerPlain = unwrapOuter({ hashAlg: TPM_ALG.SHA256, symmetric: { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB }, seed, name }, inner.duplicate);
    expect(Buffer.from(outerPlain)).toEqual(innerEnc);
    expect(inner.encryptionKey).toEqual(innerKey);
  });

  it('produceOuterWrap with an IV (an ordinary TPM2B_PRIVATE) round-trips and covers the IV', () => {
    const p = { hashAlg: TPM_ALG.SHA256, symmetric: { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB } as const, seed: new Uint8Array(32).fill(1), name: Uint8Array.from([0, 0x0b, ...new Uint8Array(32)]) };
    const data = new Uint8Array(randomBytes(50));
    const w = produceOuterWrap(p, data, { iv: new Uint8Array(16).fill(9) });
    expect(w.length).toBe(2 + 32 + 2 + 16 + 50);
    expect(Buffer.from(unwrapOuter(p, w, { useIV: true }))).toEqual(Buffer.from(data));
    const bad = w.slice();
    bad[40]! ^= 1; // inside the IV
    expect(codeOf(() => unwrapOuter(p, bad, { useIV: true }))).toBe('crypto.integrity');
  });

  it('typed failures: tampering, wrong inner key, wrong Name, wrong parent key, unusable parents and objects', () => {
    const pub = parentArea(eccParent.publicKey);
    const blob = wrapExternalKey(pub, { type: 'ecc', privateKey: eccKey.privateKey }, { innerWrap: true });
    for (const at of [1, 10, 40, blob.duplicate.length - 1]) {
      const bad = blob.duplicate.slice();
      bad[at]! ^= 0x40;
      expect(codeOf(() => unwrapDuplicate(eccParent.privateKey, pub, { ...blob, duplicate: bad }))).toBe('crypto.integrity');
    }
    // The outer HMAC passes but the inner integrity does not: another inner key. Its size field decrypts to garbage,
    // refused as it unmarshals (parse.size/truncated: TPM_RC_SIZE/INSUFFICIENT) or, if it fits, by the comparison.
    expect(['parse.size', 'parse.truncated', 'crypto.integrity']).toContain(codeOf(() => unwrapDuplicate(eccParent.privateKey, pub, { ...blob, encryptionKey: new Uint8Array(16) })));
    // Another Name: the object's public area changed.
    const moved = { ...blob, objectPublic: { ...blob.objectPublic, objectAttributes: TPMA_OBJECT.of({ sign: true, userWithAuth: true }) } as TPMT_PUBLIC };
    expect(codeOf(() => unwrapDuplicate(eccParent.privateKey, pub, moved))).toBe('crypto.integrity');
    // Another parent key.
    const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    expect(codeOf(() => unwrapDuplicate(other.privateKey, pub, blob))).toBe('crypto.key');
    expect(codeOf(() => unwrapDuplicate(other.privateKey, parentArea(other.publicKey), blob))).toBe('crypto.integrity');
    expect(thrown(() => unwrapDuplicate(eccParent.privateKey, pub, { ...blob, duplicate: blob.duplicate.subarray(0, 1) }))).toBeInstanceOf(ParseError);
    // Parents must be storage keys (restricted | decrypt with a symmetric algorithm).
    const notParent = { ...pub, objectAttributes: TPMA_OBJECT.of({ decrypt: true, userWithAuth: true }) } as TPMT_PUBLIC;
    expect(codeOf(() => wrapExternalKey(notParent, { type: 'hmac', key: hmacKey }))).toBe('crypto.key');
    // Import refuses fixedTPM / fixedParent; encryptedDuplication needs an inner wrapper.
    expect(thrown(() => externalObject({ type: 'hmac', key: hmacKey }, { objectAttributes: TPMA_OBJECT.of({ fixedTPM: true, sign: true }) }))).toBeInstanceOf(ArgumentError);
    expect(thrown(() => wrapExternalKey(pub, { type: 'hmac', key: hmacKey }, { objectAttributes: TPMA_OBJECT.of({ encryptedDuplication: true, sign: true, userWithAuth: true }) }))).toBeInstanceOf(ArgumentError);
    expect(codeOf(() => externalObject({ type: 'hmac', key: new Uint8Array(65) }))).toBe('crypto.key');
    expect(codeOf(() => externalObject({ type: 'symcipher', key: new Uint8Array(20) }))).toBe('crypto.key');
    expect(codeOf(() => externalObject({ type: 'rsa', privateKey: eccKey.privateKey }))).toBe('crypto.key');
    // keyFromSensitive checks the binding to the public area.
    const h = externalObject({ type: 'hmac', key: hmacKey });
    expect(codeOf(() => keyFromSensitive(h.publicArea, { ...h.sensitive, sensitive: new Uint8Array(32) }))).toBe('crypto.key');
    const e = externalObject({ type: 'ecc', privateKey: eccKey.privateKey });
    expect(codeOf(() => keyFromSensitive(e.publicArea, { ...e.sensitive, sensitive: new Uint8Array(32).fill(7) } as TPMT_SENSITIVE))).toBe('crypto.key');
    expect(thrown(() => wrapDuplicate(pub, e.publicArea, h.sensitive))).toBeInstanceOf(ArgumentError);
  });
});

describe('unwrapDuplicate on arbitrary bytes', () => {
  it('never fails with anything but a typed error (outside input: duplicate, inSymSeed, inner key)', () => {
    const pub = parentArea(eccParent.publicKey);
    const good = wrapExternalKey(pub, { type: 'hmac', key: hmacKey }, { innerWrap: true });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 140 }), fc.boolean(), fc.boolean(), (dup, seed, keepSeed, inner) => {
        const blob = { ...good, duplicate: dup, inSymSeed: keepSeed ? good.inSymSeed : seed, ...(inner ? {} : { symmetricAlg: { algorithm: TPM_ALG.NULL } as const }) };
        const e = thrown(() => unwrapDuplicate(eccParent.privateKey, pub, blob));
        expect(e).toBeInstanceOf(TrustrootError);
      }),
      { numRuns: 300 },
    );
  });
});

describeWithSwtpm('TPM2_Import and TPM2_Duplicate against swtpm', () => {
  let sw: SwtpmInstance;
  let t: Transport;

  beforeAll(async () => {
    sw = await startSwtpm();
    t = new SwtpmTransport({ port: sw.port, ctrlPort: sw.ctrlPort });
    await runCommand(t, Startup, {}, { startupType: TPM_SU.CLEAR });
  });
  afterAll(async () => {
    await t?.close();
    await sw?.stop();
  });

  async function primary(template: TPMT_PUBLIC): Promise<{ handle: number; pub: TPMT_PUBLIC }> {
    const r = await runCommand(t, CreatePrimary, { primaryHandle: TPM_RH.OWNER }, { inSensitive: { userAuth: empty, data: empty }, inPublic: template, outsideInfo: empty, creationPCR: [] });
    return { handle: r.handles.objectHandle, pub: r.params.outPublic };
  }
  const flush = (h: number) => runCommand(t, FlushContext, {}, { flushHandle: h });
  /**
   * libtpms answers the first authorization of a DA-protected object (noDA clear, as imported keys are here)
   * after Startup with TPM_RC_RETRY while it records "DA used" in NV; the command is then resent.
   */
  const retrying = <T>(send: () => Promise<T>): Promise<T> => send().catch((e: unknown) => (isRc(e, TPM_RC.RETRY) ? send() : Promise.reject(e)));

  /** Uses a loaded imported key and checks the result against node:crypto with the original key. */
  async function exercise(handle: number, key: ExternalKey): Promise<void> {
    const msg = randomBytes(100);
    const digest = createHash('sha256').update(msg).digest();
    const validation = { tag: TPM_ST.HASHCHECK, hierarchy: TPM_RH.NULL, digest: empty } as const;
    if (key.type === 'rsa') {
      const r = await retrying(() => runCommand(t, Sign, { keyHandle: handle }, { digest, inScheme: { scheme: TPM_ALG.RSASSA, details: { hashAlg: TPM_ALG.SHA256 } }, validation }));
      const sig = r.params.signature;
      if (sig.sigAlg !== TPM_ALG.RSASSA) throw new Error(`sigAlg ${sig.sigAlg}`);
      expect(verify('sha256', msg, rsaKey.publicKey, sig.signature.sig)).toBe(true);
      // RSASSA is deterministic: the TPM's signature is node's with the original key.
      expect(Buffer.from(sig.signature.sig)).toEqual(nodeSign('sha256', msg, rsaKey.privateKey));
    } else if (key.type === 'ecc') {
      const r = await retrying(() => runCommand(t, Sign, { keyHandle: handle }, { digest, inScheme: { scheme: TPM_ALG.ECDSA, details: { hashAlg: TPM_ALG.SHA256 } }, validation }));
      const sig = r.params.signature;
      if (sig.sigAlg !== TPM_ALG.ECDSA) throw new Error(`sigAlg ${sig.sigAlg}`);
      const pad = (v: Uint8Array) => Buffer.concat([Buffer.alloc(32 - v.length), v]);
      const p1363 = Buffer.concat([pad(sig.signature.signatureR), pad(sig.signature.signatureS)]);
      expect(verify('sha256', msg, { key: eccKey.publicKey, dsaEncoding: 'ieee-p1363' }, p1363)).toBe(true);
    } else if (key.type === 'hmac') {
      const r = await retrying(() => runCommand(t, HMAC, { handle }, { buffer: msg, hashAlg: TPM_ALG.SHA256 }));
      expect(Buffer.from(r.params.outHMAC)).toEqual(createHmac('sha256', hmacKey).update(msg).digest());
    } else {
      const iv = randomBytes(16);
      const data = randomBytes(48);
      const r = await retrying(() => runCommand(t, EncryptDecrypt2, { keyHandle: handle }, { inData: data, decrypt: 0, mode: TPM_ALG.CFB, ivIn: iv }));
      expect(Buffer.from(r.params.outData)).toEqual(createCipheriv('aes-128-cfb', aesKey, iv).update(data));
    }
  }

  for (const [pname, template] of [
    ['RSA SRK', rsaSrkTemplate],
    ['ECC SRK', eccSrkTemplate],
  ] as const) {
    describe(pname, () => {
      let srk: { handle: number; pub: TPMT_PUBLIC };
      beforeAll(async () => {
        srk = await primary(template());
      });
      afterAll(async () => {
        if (srk !== undefined) await flush(srk.handle);
      });

      for (const [kname, key] of KEYS) {
        it(`${kname}: Import → Load → use, with and without an inner wrapper`, async () => {
          for (const innerWrap of [false, true]) {
            const blob = wrapExternalKey(srk.pub, key, { innerWrap });
            const imported = await runCommand(t, Import, { parentHandle: srk.handle }, blob);
            const loaded = await runCommand(t, Load, { parentHandle: srk.handle }, { inPrivate: imported.params.outPrivate, inPublic: blob.objectPublic });
            try {
              expect(Buffer.from(loaded.params.name)).toEqual(Buffer.from(objectName(blob.objectPublic)));
              await exercise(loaded.handles.objectHandle, key);
            } finally {
              await flush(loaded.handles.objectHandle);
            }
          }
        });
      }

      it('a tampered duplicate, a wrong inner key or a seed for another parent: TPM_RC_INTEGRITY / refused', async () => {
        const blob = wrapExternalKey(srk.pub, { type: 'hmac', key: hmacKey }, { innerWrap: true });
        const bad = blob.duplicate.slice();
        bad[bad.length - 5]! ^= 1;
        const e1 = await runCommand(t, Import, { parentHandle: srk.handle }, { ...blob, duplicate: bad }).catch((e: unknown) => e);
        expect(isRc(e1, TPM_RC.INTEGRITY)).toBe(true);
        const e2 = await runCommand(t, Import, { parentHandle: srk.handle }, { ...blob, encryptionKey: new Uint8Array(16) }).catch((e: unknown) => e);
        // The inner integrity's size field decrypts to garbage first: libtpms stops there with TPM_RC_SIZE
        // (CheckInnerIntegrity unmarshals before it compares), or with INTEGRITY if the size happened to fit.
        expect(isRc(e2, TPM_RC.SIZE) || isRc(e2, TPM_RC.INSUFFICIENT) || isRc(e2, TPM_RC.INTEGRITY)).toBe(true);
        expect((e2 as TpmError).parameter).toBe(3); // duplicate
        // Our unwrap agrees on the tampered blob (with a parent key we hold).
        const mine = parentArea(srk.pub.type === TPM_ALG.RSA ? rsaParent.publicKey : eccParent.publicKey);
        const ours = wrapExternalKey(mine, { type: 'hmac', key: hmacKey });
        const flipped = ours.duplicate.slice();
        flipped[flipped.length - 5]! ^= 1;
        expect(codeOf(() => unwrapDuplicate(srk.pub.type === TPM_ALG.RSA ? rsaParent.privateKey : eccParent.privateKey, mine, { ...ours, duplicate: flipped }))).toBe('crypto.integrity');
        // A blob wrapped for our software parent does not open under the SRK.
        const e3 = await runCommand(t, Import, { parentHandle: srk.handle }, ours).catch((e: unknown) => e);
        expect(e3).toBeInstanceOf(Error);
        if (srk.pub.type === TPM_ALG.ECC) {
          // Any point decrypts to some seed: the wrong seed shows in the outer HMAC.
          expect(isRc(e3, TPM_RC.INTEGRITY)).toBe(true);
        } else {
          // OAEP under another key does not decode. libtpms answers TPM_RC_FAILURE here (observed; a wrong
          // label gives TPM_RC_VALUE in secret.test.ts) and stays operational: the tests after this one run.
          expect(isRc(e3, TPM_RC.VALUE) || isRc(e3, TPM_RC.FAILURE)).toBe(true);
        }
      });
    });
  }

  describe('TPM2_Duplicate to an external parent, opened with unwrapDuplicate', () => {
    /** LoadExternal of a public area only (inPrivate empty, Part 3 §12.3), in the NULL hierarchy. */
    async function loadExternalPublic(pub: TPMT_PUBLIC): Promise<number> {
      return (await runCommand(t, LoadExternal, {}, { inPrivate: null, inPublic: pub, hierarchy: TPM_RH.NULL })).handles.objectHandle;
    }
    const u32 = (n: number) => Uint8Array.from([n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
    // Part 3 §23.11 PolicyCommandCode from the zero digest: H(0³² ‖ TPM_CC_PolicyCommandCode ‖ TPM_CC_Duplicate).
    const dupPolicy = hash(TPM_ALG.SHA256, new Uint8Array(32), u32(TPM_CC.PolicyCommandCode), u32(TPM_CC.Duplicate));

    for (const [pname, parent, inner] of [
      ['RSA external parent, no inner wrapper', rsaParent, 'none'],
      ['ECC external parent, inner key made by the TPM', eccParent, 'tpm'],
      ['RSA external parent, inner key given', rsaParent, 'given'],
    ] as const) {
      it(`${pname}: the ECC key's private scalar comes back and matches its public area`, async () => {
        const srk = await primary(eccSrkTemplate());
        const handles: number[] = [];
        try {
          const template: TPMT_PUBLIC = {
            type: TPM_ALG.ECC,
            nameAlg: TPM_ALG.SHA256,
            objectAttributes: TPMA_OBJECT.of({ sensitiveDataOrigin: true, userWithAuth: true, sign: true }),
            authPolicy: dupPolicy,
            parameters: { symmetric: { algorithm: TPM_ALG.NULL }, scheme: { scheme: TPM_ALG.ECDSA, details: { hashAlg: TPM_ALG.SHA256 } }, curveID: TPM_ECC.NIST_P256, kdf: { scheme: TPM_ALG.NULL } },
            unique: { x: empty, y: empty },
          };
          const created = await runCommand(t, Create, { parentHandle: srk.handle }, { inSensitive: { userAuth: empty, data: empty }, inPublic: template, outsideInfo: empty, creationPCR: [] });
          const obj = await runCommand(t, Load, { parentHandle: srk.handle }, { inPrivate: created.params.outPrivate, inPublic: created.params.outPublic });
          handles.push(obj.handles.objectHandle);
          const parentPub = parentArea(parent.publicKey);
          const ext = await loadExternalPublic(parentPub);
          handles.push(ext);

          const s = await runCommand(t, StartAuthSession, { tpmKey: TPM_RH.NULL, bind: TPM_RH.NULL }, { nonceCaller: new Uint8Array(randomBytes(16)), encryptedSalt: empty, sessionType: TPM_SE.POLICY, symmetric: { algorithm: TPM_ALG.NULL }, authHash: TPM_ALG.SHA256 });
          await runCommand(t, PolicyCommandCode, { policySession: s.handles.sessionHandle }, { code: TPM_CC.Duplicate });
          const givenKey = new Uint8Array(randomBytes(16));
          const symmetricAlg = inner === 'none' ? ({ algorithm: TPM_ALG.NULL } as const) : ({ algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB } as const);
          const dup = await runCommand(t, Duplicate, { objectHandle: obj.handles.objectHandle, newParentHandle: ext }, { encryptionKeyIn: inner === 'given' ? givenKey : empty, symmetricAlg }, {
            sessions: [{ sessionHandle: s.handles.sessionHandle, nonce: new Uint8Array(randomBytes(16)), sessionAttributes: TPMA_SESSION.of({ continueSession: false }), hmac: empty }],
          });
          const encryptionKey = inner === 'given' ? givenKey : dup.params.encryptionKeyOut;
          expect(encryptionKey.length).toBe(inner === 'none' ? 0 : 16);

          const blob = { objectPublic: created.params.outPublic, duplicate: dup.params.duplicate, inSymSeed: dup.params.outSymSeed, symmetricAlg, encryptionKey };
          const sensitive = unwrapDuplicate(parent.privateKey, parentPub, blob);
          const key = keyFromSensitive(created.params.outPublic, sensitive);
          const { point } = eccPointOf(key);
          if (created.params.outPublic.type !== TPM_ALG.ECC) throw new Error('type');
          expect(Buffer.from(point.x)).toEqual(Buffer.from(created.params.outPublic.unique.x));
          // The recovered key signs like the TPM's key: a node signature verifies with the TPM public area's point.
          const msg = randomBytes(64);
          const sig = nodeSign('sha256', msg, key);
          expect(verify('sha256', msg, eccPointKeyOf(created.params.outPublic), sig)).toBe(true);
          if (inner !== 'none') {
            const wrongKey = { ...blob, encryptionKey: new Uint8Array(16) };
            expect(['parse.size', 'parse.truncated', 'crypto.integrity']).toContain(codeOf(() => unwrapDuplicate(parent.privateKey, parentPub, wrongKey)));
          }
        } finally {
          for (const h of handles) await flush(h);
          await flush(srk.handle);
        }
      });
    }
  });
});

/** The TPM public area's point as a node:crypto key, built from a JWK (independently of secret.ts). */
function eccPointKeyOf(pub: TPMT_PUBLIC): KeyObject {
  if (pub.type !== TPM_ALG.ECC) throw new Error('type');
  return createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: Buffer.from(pub.unique.x).toString('base64url'), y: Buffer.from(pub.unique.y).toString('base64url') }, format: 'jwk' });
}
