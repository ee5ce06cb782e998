/**
 * The labeled KEM (secret.ts): round trips with node:crypto keys, the byte
 * layout recomputed independently (OAEP label with its NUL, KDFe's party
 * order), typed failures, and swtpm accepting salts made here: a salted HMAC
 * session whose key is derived from our seed authorizes a command.
 */
import { constants, createECDH, createHash, generateKeyPairSync, type KeyObject, privateDecrypt, publicEncrypt } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClockRateAdjust, CreatePrimary, FlushContext, StartAuthSession, Startup } from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_ECC, TPM_RH, TPM_SE, TPM_SU } from '../../src/tpm/constants.js';
import { cpHash } from '../../src/tpm/cphash.js';
import { hmac } from '../../src/tpm/crypto/hash.js';
import { kdfa } from '../../src/tpm/crypto/kdf.js';
import { ArgumentError, CryptoError } from '../../src/tpm/errors.js';
import { encodeParams } from '../../src/tpm/frame.js';
import { handleName } from '../../src/tpm/names.js';
import { isRc, TPM_RC } from '../../src/tpm/rc.js';
import { runCommand } from '../../src/tpm/run.js';
import { decryptSecret, eccPointOf, encryptSecret, publicKeyFromArea } from '../../src/tpm/secret.js';
import { eccSrkTemplate, rsaSrkTemplate } from '../../src/tpm/templates.js';
import { SwtpmTransport, type Transport } from '../../src/tpm/transport/index.js';
import { TPMA_OBJECT, TPMA_SESSION, TPMS_ECC_POINT, type TPMT_PUBLIC } from '../../src/tpm/types/index.js';
import { decode } from '../../src/tpm/wire/codec.js';
import { describeWithSwtpm, startSwtpm, type SwtpmInstance } from '../support/swtpm.js';

const DECRYPT = TPMA_OBJECT.of({ decrypt: true, userWithAuth: true, sensitiveDataOrigin: true });

function rsaArea(key: KeyObject, nameAlg: number = TPM_ALG.SHA256, attrs = DECRYPT): TPMT_PUBLIC {
  const jwk = key.export({ format: 'jwk' });
  const n = new Uint8Array(Buffer.from(String(jwk.n), 'base64url'));
  return {
    type: TPM_ALG.RSA,
    nameAlg,
    objectAttributes: attrs,
    authPolicy: new Uint8Array(0),
    parameters: { symmetric: { algorithm: TPM_ALG.NULL }, scheme: { scheme: TPM_ALG.NULL }, keyBits: n.length * 8, exponent: 0 },
    unique: n,
  } as TPMT_PUBLIC;
}

function eccArea(key: KeyObject, curveID: number, nameAlg: number = TPM_ALG.SHA256): TPMT_PUBLIC {
  const { point } = eccPointOf(key);
  return {
    type: TPM_ALG.ECC,
    nameAlg,
    objectAttributes: DECRYPT,
    authPolicy: new Uint8Array(0),
    parameters: { symmetric: { algorithm: TPM_ALG.NULL }, scheme: { scheme: TPM_ALG.NULL }, curveID, kdf: { scheme: TPM_ALG.NULL } },
    unique: point,
  } as TPMT_PUBLIC;
}

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return undefined;
}

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const p256 = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });

describe('encryptSecret / decryptSecret', () => {
  it('RSA: round trip; the seed has the nameAlg digest size; OAEP label is "SECRET\\0" with the nameAlg hash', () => {
    for (const [nameAlg, size, nodeHash] of [
      [TPM_ALG.SHA256, 32, 'sha256'],
      [TPM_ALG.SHA384, 48, 'sha384'],
      [TPM_ALG.SHA1, 20, 'sha1'],
    ] as const) {
      const area = rsaArea(rsa.publicKey, nameAlg);
      const { seed, encryptedSecret } = encryptSecret(area, 'SECRET');
      expect(seed.length).toBe(size);
      expect(encryptedSecret.length).toBe(256);
      expect(Buffer.from(decryptSecret(rsa.privateKey, area, 'SECRET', encryptedSecret))).toEqual(Buffer.from(seed));
      // Independently: plain node:crypto OAEP with the label bytes and their NUL (Part 1 Annex B.10.3).
      const plain = privateDecrypt({ key: rsa.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: nodeHash, oaepLabel: Buffer.from('SECRET\0') }, encryptedSecret);
      expect(Buffer.from(plain)).toEqual(Buffer.from(seed));
    }
  });

  it('RSA: a key with an OAEP scheme uses the scheme hash; a fixed seed is honoured', () => {
    const area = rsaArea(rsa.publicKey);
    if (area.type !== TPM_ALG.RSA) throw new Error('unreachable');
    area.parameters.scheme = { scheme: TPM_ALG.OAEP, details: { hashAlg: TPM_ALG.SHA384 } };
    const seed = new Uint8Array(32).fill(7);
    const { encryptedSecret } = encryptSecret(area, 'DUPLICATE', { seed });
    const plain = privateDecrypt({ key: rsa.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha384', oaepLabel: Buffer.from('DUPLICATE\0') }, encryptedSecret);
    expect(Buffer.from(plain)).toEqual(Buffer.from(seed));
    expect(Buffer.from(decryptSecret(rsa.privateKey, area, 'DUPLICATE', encryptedSecret))).toEqual(Buffer.from(seed));
    // A 32-byte seed under OAEP-SHA1 is one the TPM refuses (CryptSecretDecrypt: TPM_RC_VALUE), on both sides here.
    area.parameters.scheme = { scheme: TPM_ALG.OAEP, details: { hashAlg: TPM_ALG.SHA1 } };
    expect(codeOf(() => encryptSecret(area, 'DUPLICATE'))).toBe('crypto.key');
    const sha1Ct = publicEncrypt({ key: rsa.publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1', oaepLabel: Buffer.from('DUPLICATE\0') }, seed);
    expect(codeOf(() => decryptSecret(rsa.privateKey, area, 'DUPLICATE', sha1Ct))).toBe('crypto.decrypt');
  });

  it('RSA: wrong label or a flipped byte does not decrypt (crypto.decrypt)', () => {
    const area = rsaArea(rsa.publicKey);
    const { encryptedSecret } = encryptSecret(area, 'IDENTITY');
    expect(codeOf(() => decryptSecret(rsa.privateKey, area, 'SECRET', encryptedSecret))).toBe('crypto.decrypt');
    const bad = encryptedSecret.slice();
    bad[100]! ^= 1;
    expect(codeOf(() => decryptSecret(rsa.privateKey, area, 'IDENTITY', bad))).toBe('crypto.decrypt');
  });

  for (const [curveID, nodeName, size, nameAlg, digest] of [
    [TPM_ECC.NIST_P256, 'prime256v1', 32, TPM_ALG.SHA256, 32],
    [TPM_ECC.NIST_P384, 'secp384r1', 48, TPM_ALG.SHA384, 48],
    [TPM_ECC.NIST_P521, 'secp521r1', 66, TPM_ALG.SHA512, 64],
    [TPM_ECC.NIST_P256, 'prime256v1', 32, TPM_ALG.SHA1, 20],
  ] as const) {
    it(`ECC ${nodeName} / nameAlg 0x${nameAlg.toString(16)}: round trip, and the seed recomputed by hand from KDFe's layout`, () => {
      const kp = generateKeyPairSync('ec', { namedCurve: nodeName });
      const area = eccArea(kp.publicKey, curveID, nameAlg);
      const { seed, encryptedSecret } = encryptSecret(area, 'SECRET');
      expect(seed.length).toBe(digest);
      const q = decode(TPMS_ECC_POINT, encryptedSecret);
      expect(q.x.length).toBe(size);
      expect(Buffer.from(decryptSecret(kp.privateKey, area, 'SECRET', encryptedSecret))).toEqual(Buffer.from(seed));

      // By hand (Part 1 Annex C.6.4, CryptKDFe): H(counter ‖ Z ‖ "SECRET\0" ‖ x(Q_e) ‖ x(Q_s)), truncated.
      const jwk = kp.privateKey.export({ format: 'jwk' });
      const ecdh = createECDH(nodeName);
      ecdh.setPrivateKey(Buffer.from(String(jwk.d), 'base64url'));
      const z = ecdh.computeSecret(Buffer.concat([Buffer.from([4]), q.x, q.y]));
      const h = { [TPM_ALG.SHA1]: 'sha1', [TPM_ALG.SHA256]: 'sha256', [TPM_ALG.SHA384]: 'sha384', [TPM_ALG.SHA512]: 'sha512' }[nameAlg];
      const k1 = createHash(h)
        .update(Buffer.from([0, 0, 0, 1]))
        .update(z)
        .update('SECRET\0')
        .update(q.x)
        .update(Buffer.from(String(jwk.x), 'base64url'))
        .digest();
      expect(Buffer.from(seed)).toEqual(k1.subarray(0, digest));
    });
  }

  it('ECC: a fixed ephemeral scalar gives a deterministic secret; a different label gives a different seed', () => {
    const area = eccArea(p256.publicKey, TPM_ECC.NIST_P256);
    const d = new Uint8Array(32).fill(0x11);
    const a = encryptSecret(area, 'IDENTITY', { ephemeralPrivateKey: d });
    const b = encryptSecret(area, 'IDENTITY', { ephemeralPrivateKey: d });
    expect(Buffer.from(a.encryptedSecret)).toEqual(Buffer.from(b.encryptedSecret));
    expect(Buffer.from(a.seed)).toEqual(Buffer.from(b.seed));
    const other = decryptSecret(p256.privateKey, area, 'DUPLICATE', a.encryptedSecret);
    expect(Buffer.from(other)).not.toEqual(Buffer.from(a.seed));
  });

  it('ECC: a point off the curve or a malformed secret is crypto.decrypt; a public area off the curve is crypto.key', () => {
    const area = eccArea(p256.publicKey, TPM_ECC.NIST_P256);
    const { encryptedSecret } = encryptSecret(area, 'SECRET');
    const off = encryptedSecret.slice();
    off[10]! ^= 1; // inside x
    expect(codeOf(() => decryptSecret(p256.privateKey, area, 'SECRET', off))).toBe('crypto.decrypt');
    expect(codeOf(() => decryptSecret(p256.privateKey, area, 'SECRET', encryptedSecret.subarray(0, 40)))).toBe('crypto.decrypt');
    expect(codeOf(() => decryptSecret(p256.privateKey, area, 'SECRET', new Uint8Array([0, 40, ...new Uint8Array(40), 0, 0])))).toBe('crypto.decrypt');
    if (area.type !== TPM_ALG.ECC) throw new Error('unreachable');
    const bent = { ...area, unique: { x: area.unique.x, y: area.unique.y.map((v, i) => (i === 31 ? v ^ 1 : v)) } };
    expect(codeOf(() => encryptSecret(bent, 'SECRET'))).toBe('crypto.key');
    expect(codeOf(() => publicKeyFromArea(bent))).toBe('crypto.key');
  });

  it('rejects keys that cannot receive a secret, mismatched private keys and bad labels, with typed errors', () => {
    const sign = rsaArea(rsa.publicKey, TPM_ALG.SHA256, TPMA_OBJECT.of({ sign: true, userWithAuth: true }));
    expect(codeOf(() => encryptSecret(sign, 'SECRET'))).toBe('crypto.key');
    const rsassa = rsaArea(rsa.publicKey);
    if (rsassa.type !== TPM_ALG.RSA) throw new Error('unreachable');
    rsassa.parameters.scheme = { scheme: TPM_ALG.RSASSA, details: { hashAlg: TPM_ALG.SHA256 } };
    expect(codeOf(() => encryptSecret(rsassa, 'SECRET'))).toBe('crypto.key');
    const keyed: TPMT_PUBLIC = {
      type: TPM_ALG.KEYEDHASH,
      nameAlg: TPM_ALG.SHA256,
      objectAttributes: DECRYPT,
      authPolicy: new Uint8Array(0),
      parameters: { scheme: { scheme: TPM_ALG.NULL } },
      unique: new Uint8Array(32),
    } as TPMT_PUBLIC;
    expect(codeOf(() => encryptSecret(keyed, 'SECRET'))).toBe('crypto.key');

    const area = rsaArea(rsa.publicKey);
    const { encryptedSecret } = encryptSecret(area, 'SECRET');
    const other = generateKeyPairSync('rsa', { modulusLength: 1024 });
    expect(codeOf(() => decryptSecret(other.privateKey, area, 'SECRET', encryptedSecret))).toBe('crypto.key');
    expect(codeOf(() => decryptSecret(p256.privateKey, area, 'SECRET', encryptedSecret))).toBe('crypto.key');
    const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    expect(codeOf(() => decryptSecret(p384.privateKey, eccArea(p256.publicKey, TPM_ECC.NIST_P256), 'SECRET', encryptedSecret))).toBe('crypto.key');

    expect(() => encryptSecret(area, 'SEC\0RET')).toThrow(ArgumentError);
    expect(() => encryptSecret(area, '')).toThrow(ArgumentError);
    expect(() => encryptSecret(area, 'SECRET', { seed: new Uint8Array(5) })).toThrow(ArgumentError);
    expect(() => encryptSecret(eccArea(p256.publicKey, TPM_ECC.NIST_P256), 'SECRET', { seed: new Uint8Array(32) })).toThrow(ArgumentError);
    expect(() => encryptSecret(area, 'SECRET')).not.toThrow(CryptoError);
  });

  it('unsupported curves are crypto.unsupported', () => {
    const area = eccArea(p256.publicKey, TPM_ECC.NIST_P256);
    if (area.type !== TPM_ALG.ECC) throw new Error('unreachable');
    expect(codeOf(() => encryptSecret({ ...area, parameters: { ...area.parameters, curveID: TPM_ECC.BN_P256 } }, 'SECRET'))).toBe('crypto.unsupported');
  });
});

describeWithSwtpm('encryptSecret against swtpm: salted sessions', () => {
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

  for (const [label, template] of [
    ['RSA SRK', rsaSrkTemplate],
    ['ECC SRK', eccSrkTemplate],
  ] as const) {
    it(`${label}: a session salted with our seed authorizes ClockRateAdjust with HMAC key KDFa(seed, "ATH", …)`, async () => {
      const srk = await runCommand(t, CreatePrimary, { primaryHandle: TPM_RH.OWNER }, { inSensitive: { userAuth: new Uint8Array(0), data: new Uint8Array(0) }, inPublic: template(), outsideInfo: new Uint8Array(0), creationPCR: [] });
      try {
        const { seed, encryptedSecret } = encryptSecret(srk.params.outPublic, 'SECRET');
        const nonceCaller = new Uint8Array(32).fill(0xa5);
        const started = await runCommand(
          t,
          StartAuthSession,
          { tpmKey: srk.handles.objectHandle, bind: TPM_RH.NULL },
          { nonceCaller, encryptedSalt: encryptedSecret, sessionType: TPM_SE.HMAC, symmetric: { algorithm: TPM_ALG.NULL }, authHash: TPM_ALG.SHA256 },
        );
        const session = started.handles.sessionHandle;
        const nonceTPM = started.params.nonceTPM;
        // Part 1 §19.6.8: sessionKey = KDFa(authHash, bind authValue ‖ salt, "ATH", nonceTPM, nonceCaller, 256); unbound: salt only.
        const sessionKey = kdfa(TPM_ALG.SHA256, seed, 'ATH', nonceTPM, nonceCaller, 256);
        const nonce2 = new Uint8Array(32).fill(0x3c);
        const attrs = TPMA_SESSION.of({ continueSession: false });
        const cp = cpHash(TPM_ALG.SHA256, ClockRateAdjust.code, [handleName(TPM_RH.OWNER)], encodeParams(ClockRateAdjust, { rateAdjust: 0 }));
        // Owner auth is empty, so the HMAC key is the session key alone (Part 1 §19.6.5).
        const mac = hmac(TPM_ALG.SHA256, sessionKey, cp, nonce2, nonceTPM, new Uint8Array([TPMA_SESSION.toWord(attrs)]));
        await runCommand(t, ClockRateAdjust, { auth: TPM_RH.OWNER }, { rateAdjust: 0 }, { sessions: [{ sessionHandle: session, nonce: nonce2, sessionAttributes: attrs, hmac: mac }] });
      } finally {
        await runCommand(t, FlushContext, {}, { flushHandle: srk.handles.objectHandle });
      }
    });
  }

  it('RSA SRK: a salt encrypted with another label is refused by StartAuthSession (OAEP label mismatch)', async () => {
    const srk = await runCommand(t, CreatePrimary, { primaryHandle: TPM_RH.OWNER }, { inSensitive: { userAuth: new Uint8Array(0), data: new Uint8Array(0) }, inPublic: rsaSrkTemplate(), outsideInfo: new Uint8Array(0), creationPCR: [] });
    try {
      const { encryptedSecret } = encryptSecret(srk.params.outPublic, 'IDENTITY');
      const err = await runCommand(
        t,
        StartAuthSession,
        { tpmKey: srk.handles.objectHandle, bind: TPM_RH.NULL },
        { nonceCaller: new Uint8Array(32), encryptedSalt: encryptedSecret, sessionType: TPM_SE.HMAC, symmetric: { algorithm: TPM_ALG.NULL }, authHash: TPM_ALG.SHA256 },
      ).catch((e: unknown) => e);
      expect(isRc(err, TPM_RC.VALUE)).toBe(true);
    } finally {
      await runCommand(t, FlushContext, {}, { flushHandle: srk.handles.objectHandle });
    }
  });
});
