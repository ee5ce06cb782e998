/**
 * MakeCredential in software and its inverse (credential.ts): round trips with
 * node:crypto keys, the blob's layout recomputed by hand, typed failures, and
 * both directions against swtpm: our blobs opened by TPM2_ActivateCredential
 * (RSA and ECC EKs, EK policy satisfied by PolicySecret(RH_ENDORSEMENT)), and
 * swtpm's TPM2_MakeCredential output opened by our activateCredential.
 */
import { createCipheriv, createHmac, generateKeyPairSync, type KeyObject, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { activateCredential, makeCredential } from '../../src/tpm/credential.js';
import {
  ActivateCredential,
  CreatePrimary,
  FlushContext,
  LoadExternal,
  MakeCredential,
  PolicySecret,
  StartAuthSession,
  Startup,
} from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_ECC, TPM_RH, TPM_SE, TPM_SU } from '../../src/tpm/constants.js';
import { kdfa } from '../../src/tpm/crypto/kdf.js';
import { ArgumentError, CryptoError, ParseError, TrustrootError } from '../../src/tpm/errors.js';
import { objectName } from '../../src/tpm/names.js';
import { isRc, TPM_RC } from '../../src/tpm/rc.js';
import { passwordAuth, runCommand } from '../../src/tpm/run.js';
import { eccPointOf } from '../../src/tpm/secret.js';
import { eccEkTemplate, rsaEkTemplate } from '../../src/tpm/templates.js';
import { SwtpmTransport, type Transport } from '../../src/tpm/transport/index.js';
import { TPMA_OBJECT, TPMA_SESSION, type TPMT_PUBLIC } from '../../src/tpm/types/index.js';
import { describeWithSwtpm, startSwtpm, type SwtpmInstance } from '../support/swtpm.js';

/** An EK-shaped public area (EK Credential Profile L-1 / L-2 attributes) around a node:crypto key. */
function ekArea(publicKey: KeyObject, opts: { nameAlg?: number; keyBits?: 128 | 256 } = {}): TPMT_PUBLIC {
  const nameAlg = opts.nameAlg ?? TPM_ALG.SHA256;
  const sym = { algorithm: TPM_ALG.AES, keyBits: opts.keyBits ?? 128, mode: TPM_ALG.CFB } as const;
  if (publicKey.asymmetricKeyType === 'rsa') {
    const t = rsaEkTemplate();
    if (t.type !== TPM_ALG.RSA) throw new Error('unreachable');
    const n = new Uint8Array(Buffer.from(String(publicKey.export({ format: 'jwk' }).n), 'base64url'));
    return { ...t, nameAlg, authPolicy: nameAlg === TPM_ALG.SHA256 ? t.authPolicy : new Uint8Array(0), parameters: { ...t.parameters, symmetric: sym, keyBits: n.length * 8 }, unique: n } as TPMT_PUBLIC;
  }
  const t = eccEkTemplate();
  if (t.type !== TPM_ALG.ECC) throw new Error('unreachable');
  const { curve, point } = eccPointOf(publicKey);
  return { ...t, nameAlg, authPolicy: nameAlg === TPM_ALG.SHA256 ? t.authPolicy : new Uint8Array(0), parameters: { ...t.parameters, symmetric: sym, curveID: curve.curveID }, unique: point } as TPMT_PUBLIC;
}

function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  return undefined;
}

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const p256 = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
/** Some object's Name: nameAlg SHA-256 ‖ 32 bytes. */
const akName = Uint8Array.from([0x00, 0x0b, ...randomBytes(32)]);

describe('makeCredential / activateCredential in software', () => {
  for (const [label, kp, opts] of [
    ['RSA-2048 EK', rsa, {}],
    ['ECC P-256 EK', p256, {}],
    ['ECC P-384 EK, SHA-384 nameAlg, AES-256', p384, { nameAlg: TPM_ALG.SHA384, keyBits: 256 }],
  ] as const) {
    it(`${label}: round trip; every credential size up to the digest; Name-bound`, () => {
      const ek = ekArea(kp.publicKey, opts);
      const max = ek.nameAlg === TPM_ALG.SHA384 ? 48 : 32;
      for (const size of [0, 1, 16, max]) {
        const cred = new Uint8Array(randomBytes(size));
        const { credentialBlob, secret } = makeCredential(ek, akName, cred);
        // u16 total is the caller's TPM2B; the content is u16 hmacSize ‖ HMAC ‖ (u16 ‖ credential) encrypted.
        expect(credentialBlob.length).toBe(2 + max + 2 + size);
        expect((credentialBlob[0]! << 8) | credentialBlob[1]!).toBe(max);
        expect(Buffer.from(activateCredential(kp.privateKey, ek, akName, credentialBlob, secret))).toEqual(Buffer.from(cred));
      }
      const { credentialBlob, secret } = makeCredential(ek, akName, new Uint8Array(16).fill(1));
      const other = akName.slice();
      other[5]! ^= 1;
      const err = thrown(() => activateCredential(kp.privateKey, ek, other, credentialBlob, secret));
      expect(err).toBeInstanceOf(CryptoError);
      expect((err as CryptoError).code).toBe('crypto.integrity');
    });
  }

  it('the blob matches the layout recomputed with node:crypto from a fixed seed (Part 1 §24.4–24.5)', () => {
    const ek = ekArea(rsa.publicKey);
    const seed = new Uint8Array(32).map((_, i) => i);
    const cred = new Uint8Array(Buffer.from('trustroot credential'));
    const { credentialBlob } = makeCredential(ek, akName, cred, { seed });
    const symKey = kdfa(TPM_ALG.SHA256, seed, 'STORAGE', akName, new Uint8Array(0), 128);
    const enc = createCipheriv('aes-128-cfb', symKey, Buffer.alloc(16)).update(Buffer.concat([Buffer.from([0, cred.length]), cred]));
    const hmacKey = kdfa(TPM_ALG.SHA256, seed, 'INTEGRITY', new Uint8Array(0), new Uint8Array(0), 256);
    const mac = createHmac('sha256', hmacKey).update(enc).update(akName).digest();
    expect(Buffer.from(credentialBlob)).toEqual(Buffer.concat([Buffer.from([0, 32]), mac, enc]));
  });

  it('typed failures: key kind, credential size, Name shape, tampering, wrong key, wrong label, truncation', () => {
    const ek = ekArea(rsa.publicKey);
    const cred = new Uint8Array(8).fill(9);
    const codeOf = (f: () => unknown): unknown => (thrown(f) as { code?: string } | undefined)?.code;
    // Not a restricted decryption key: TPM_RC_TYPE on a TPM.
    const notRestricted = { ...ek, objectAttributes: TPMA_OBJECT.of({ decrypt: true, userWithAuth: true }) } as TPMT_PUBLIC;
    expect(codeOf(() => makeCredential(notRestricted, akName, cred))).toBe('crypto.key');
    const signer = { ...ek, objectAttributes: TPMA_OBJECT.of({ sign: true, restricted: true }) } as TPMT_PUBLIC;
    expect(codeOf(() => makeCredential(signer, akName, cred))).toBe('crypto.key');
    // credential ≤ digest size (TPM_RC_SIZE on a TPM).
    expect(thrown(() => makeCredential(ek, akName, new Uint8Array(33)))).toBeInstanceOf(ArgumentError);
    // A Name must be nameAlg ‖ digest of that size.
    expect(thrown(() => makeCredential(ek, akName.subarray(0, 20), cred))).toBeInstanceOf(ArgumentError);
    expect(thrown(() => makeCredential(ek, Uint8Array.from([0x40, 0x00, 0x00, 0x0b]), cred))).toBeInstanceOf(ArgumentError);
    expect(thrown(() => makeCredential(ek, Uint8Array.from([0x00, 0x04, ...new Uint8Array(32)]), cred))).toBeInstanceOf(ArgumentError);

    const { credentialBlob, secret } = makeCredential(ek, akName, cred);
    for (const at of [3, 20, credentialBlob.length - 1]) {
      const bad = credentialBlob.slice();
      bad[at]! ^= 0x80;
      expect(codeOf(() => activateCredential(rsa.privateKey, ek, akName, bad, secret))).toBe('crypto.integrity');
    }
    // An HMAC of the wrong declared size cannot match.
    const resized = credentialBlob.slice();
    resized[1] = 31;
    expect(codeOf(() => activateCredential(rsa.privateKey, ek, akName, resized, secret))).toBe('crypto.integrity');
    expect(thrown(() => activateCredential(rsa.privateKey, ek, akName, credentialBlob.subarray(0, 10), secret))).toBeInstanceOf(ParseError);
    // Another key, or a secret made with another label.
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
    expect(codeOf(() => activateCredential(other.privateKey, ek, akName, credentialBlob, secret))).toBe('crypto.key');
    const forOther = makeCredential(ekArea(other.publicKey), akName, cred);
    expect(codeOf(() => activateCredential(rsa.privateKey, ek, akName, credentialBlob, forOther.secret))).toBe('crypto.decrypt');
    // ECC: a secret for another EK gives another seed, caught by the HMAC.
    const eccEk = ekArea(p256.publicKey);
    const a = makeCredential(eccEk, akName, cred);
    const b = makeCredential(eccEk, akName, cred);
    expect(codeOf(() => activateCredential(p256.privateKey, eccEk, akName, a.credentialBlob, b.secret))).toBe('crypto.integrity');
  });
});

describe('activateCredential on arbitrary bytes', () => {
  it('never fails with anything but a typed error (outside input: blob and secret), RSA and ECC EKs', () => {
    for (const kp of [rsa, p256]) {
      const ek = ekArea(kp.publicKey);
      const good = makeCredential(ek, akName, new Uint8Array(16));
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 120 }), fc.uint8Array({ maxLength: 300 }), fc.boolean(), (blob, secret, keepSecret) => {
          const e = thrown(() => activateCredential(kp.privateKey, ek, akName, blob, keepSecret ? good.secret : secret));
          expect(e).toBeInstanceOf(TrustrootError);
        }),
        { numRuns: 150 },
      );
    }
  });
});

describeWithSwtpm('credentials against swtpm', () => {
  let sw: SwtpmInstance;
  let t: Transport;
  /** An AK-like object to bind credentials to: ECC P-256 restricted signing primary, userWithAuth, no adminWithPolicy. */
  let ak: { handle: number; name: Uint8Array };

  const empty = new Uint8Array(0);
  async function primary(hierarchy: number, template: TPMT_PUBLIC): Promise<{ handle: number; pub: TPMT_PUBLIC; name: Uint8Array }> {
    const r = await runCommand(t, CreatePrimary, { primaryHandle: hierarchy }, { inSensitive: { userAuth: empty, data: empty }, inPublic: template, outsideInfo: empty, creationPCR: [] });
    expect(Buffer.from(r.params.name)).toEqual(Buffer.from(objectName(r.params.outPublic)));
    return { handle: r.handles.objectHandle, pub: r.params.outPublic, name: r.params.name };
  }

  /** A policy session satisfying the EK's PolicySecret(TPM_RH_ENDORSEMENT) (EK Credential Profile "Policy A"). */
  async function ekPolicySession(): Promise<number> {
    const s = await runCommand(t, StartAuthSession, { tpmKey: TPM_RH.NULL, bind: TPM_RH.NULL }, { nonceCaller: new Uint8Array(randomBytes(16)), encryptedSalt: empty, sessionType: TPM_SE.POLICY, symmetric: { algorithm: TPM_ALG.NULL }, authHash: TPM_ALG.SHA256 });
    const session = s.handles.sessionHandle;
    await runCommand(t, PolicySecret, { authHandle: TPM_RH.ENDORSEMENT, policySession: session }, { nonceTPM: empty, cpHashA: empty, policyRef: empty, expiration: 0 });
    return session;
  }

  async function activate(ek: number, blob: Uint8Array, secret: Uint8Array): Promise<Uint8Array> {
    const session = await ekPolicySession();
    try {
      const send = () =>
        runCommand(t, ActivateCredential, { activateHandle: ak.handle, keyHandle: ek }, { credentialBlob: blob, secret }, {
          sessions: [
            passwordAuth(), // the AK: ADMIN role, allowed with a password because adminWithPolicy is clear
            // Unbound, unsalted policy session without PolicyAuthValue: empty session key, so an empty HMAC.
            { sessionHandle: session, nonce: new Uint8Array(randomBytes(16)), sessionAttributes: TPMA_SESSION.of({ continueSession: true }), hmac: empty },
          ],
        });
      // libtpms answers the first authorization of a DA-protected object (the AK has noDA clear) after
      // Startup with TPM_RC_RETRY while it records "DA used" in NV (USE_DA_USED); the command is then resent.
      const r = await send().catch((e: unknown) => (isRc(e, TPM_RC.RETRY) ? send() : Promise.reject(e)));
      return r.params.certInfo;
    } finally {
      await runCommand(t, FlushContext, {}, { flushHandle: session });
    }
  }

  /** LoadExternal of a public area only (inPrivate empty, Part 3 §12.3), in the NULL hierarchy. */
  async function loadExternalPublic(pub: TPMT_PUBLIC): Promise<number> {
    return (await runCommand(t, LoadExternal, {}, { inPrivate: null, inPublic: pub, hierarchy: TPM_RH.NULL })).handles.objectHandle;
  }

  beforeAll(async () => {
    sw = await startSwtpm();
    t = new SwtpmTransport({ port: sw.port, ctrlPort: sw.ctrlPort });
    await runCommand(t, Startup, {}, { startupType: TPM_SU.CLEAR });
    const akTemplate: TPMT_PUBLIC = {
      type: TPM_ALG.ECC,
      nameAlg: TPM_ALG.SHA256,
      objectAttributes: TPMA_OBJECT.of({ fixedTPM: true, fixedParent: true, sensitiveDataOrigin: true, userWithAuth: true, restricted: true, sign: true }),
      authPolicy: empty,
      parameters: { symmetric: { algorithm: TPM_ALG.NULL }, scheme: { scheme: TPM_ALG.ECDSA, details: { hashAlg: TPM_ALG.SHA256 } }, curveID: TPM_ECC.NIST_P256, kdf: { scheme: TPM_ALG.NULL } },
      unique: { x: empty, y: empty },
    };
    const a = await primary(TPM_RH.OWNER, akTemplate);
    ak = { handle: a.handle, name: a.name };
  });
  afterAll(async () => {
    if (ak !== undefined) await runCommand(t, FlushContext, {}, { flushHandle: ak.handle }).catch(() => undefined);
    await t?.close();
    await sw?.stop();
  });

  for (const [label, template] of [
    ['RSA', rsaEkTemplate],
    ['ECC', eccEkTemplate],
  ] as const) {
    it(`${label} EK: ActivateCredential opens our makeCredential blob; another Name or a flipped byte gives TPM_RC_INTEGRITY`, async () => {
      // swtpm holds three loaded objects: the AK, this EK, and room for nothing else to leak.
      const ek = await primary(TPM_RH.ENDORSEMENT, template());
      try {
        const cred = new Uint8Array(randomBytes(32));
        const made = makeCredential(ek.pub, ak.name, cred);
        expect(Buffer.from(await activate(ek.handle, made.credentialBlob, made.secret))).toEqual(Buffer.from(cred));

        const forOther = makeCredential(ek.pub, objectName(ek.pub), cred);
        const e1 = await activate(ek.handle, forOther.credentialBlob, forOther.secret).catch((e: unknown) => e);
        expect(isRc(e1, TPM_RC.INTEGRITY)).toBe(true);

        const flipped = made.credentialBlob.slice();
        flipped[flipped.length - 3]! ^= 1;
        const e2 = await activate(ek.handle, flipped, made.secret).catch((e: unknown) => e);
        expect(isRc(e2, TPM_RC.INTEGRITY)).toBe(true);
      } finally {
        await runCommand(t, FlushContext, {}, { flushHandle: ek.handle });
      }
    });
  }

  for (const [label, kp] of [
    ['RSA-2048', rsa],
    ['ECC P-256', p256],
  ] as const) {
    it(`${label}: swtpm's MakeCredential (EK public via LoadExternal) opens with our activateCredential`, async () => {
      const pub = ekArea(kp.publicKey);
      const handle = await loadExternalPublic(pub);
      try {
        const cred = new Uint8Array(randomBytes(20));
        const r = await runCommand(t, MakeCredential, { handle }, { credential: cred, objectName: ak.name });
        const { credentialBlob, secret } = r.params;
        expect(Buffer.from(activateCredential(kp.privateKey, pub, ak.name, credentialBlob, secret))).toEqual(Buffer.from(cred));
        const err = thrown(() => activateCredential(kp.privateKey, pub, objectName(pub), credentialBlob, secret));
        expect((err as CryptoError).code).toBe('crypto.integrity');
      } finally {
        await runCommand(t, FlushContext, {}, { flushHandle: handle });
      }
    });
  }
});
