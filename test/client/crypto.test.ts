/**
 * Cryptography with TPM keys (src/client/crypto.ts) against swtpm and our simulator, each
 * result checked with node:crypto: signatures verify (and node's signatures
 * verify on the TPM), RSA ciphertexts decrypt on the other side, ECDH shared
 * points agree, symmetric output equals node's AES in the same mode, hashes
 * and HMACs equal node's, event digests and the PCR they extend are
 * recomputed. Multi-chunk paths are driven past the TPM's 1024-byte input
 * buffer and counted on the wire. After every test GetCapability lists no
 * transient object, also after failures in the middle of a sequence.
 */
import {
  createCipheriv,
  createECDH,
  createHash,
  createHmac,
  createPublicKey,
  constants as cryptoConstants,
  generateKeyPairSync,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
  sign as nodeSign,
  verify as nodeVerify,
  type KeyObject,
} from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  ecdhKeyGen,
  ecdhZGen,
  ecdsaSignatureFromDer,
  ecdsaSignatureToDer,
  encryptDecrypt,
  eventSequence,
  getRandom,
  hash,
  hmac,
  inputBufferSize,
  rsaDecrypt,
  rsaEncrypt,
  sign,
  signatureFromNode,
  signatureToNode,
  stirRandom,
  symmetricDecrypt,
  symmetricEncrypt,
  tpmProperty,
  verifySignature,
  verifyWithNode,
} from '../../src/client/crypto.js';
import { Tpm } from '../../src/client/index.js';
import { withRetry } from '../../src/client/retry.js';
import {
  aesKeyTemplate,
  create,
  createLoaded,
  createPrimary,
  eccEcdhTemplate,
  eccSigningTemplate,
  eccStorageTemplate,
  hmacKeyTemplate,
  load,
  loadExternal,
  persist,
  rsaDecryptTemplate,
  rsaSigningTemplate,
  type LoadedKey,
} from '../../src/client/keys.js';
import { readCapability } from '../../src/tpm/capability.js';
import { PCR_Reset, Startup } from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_CAP, TPM_CC, TPM_ECC, TPM_PT, TPM_RH, TPM_ST, TPM_SU } from '../../src/tpm/constants.js';
import { ClientError } from '../../src/tpm/errors.js';
import { handleName } from '../../src/tpm/names.js';
import { pcrSelection, readPcrs } from '../../src/tpm/pcr.js';
import { isRc, TPM_RC } from '../../src/tpm/rc.js';
import { SwtpmTransport } from '../../src/tpm/transport/index.js';
import { TPMA_OBJECT, type TPMT_PUBLIC, type TPMT_SIGNATURE } from '../../src/tpm/types/index.js';
import { rejection, WireProbe } from '../support/probe.js';
import { describeEachTpm, startTpm, type TpmUnderTest } from '../support/tpm-under-test.js';

const digestOf = (alg: string, ...parts: Uint8Array[]): Buffer => {
  const h = createHash(alg);
  for (const p of parts) h.update(p);
  return h.digest();
};
const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const NOT_DA = { noDA: true } as const;
const PSS = cryptoConstants.RSA_PKCS1_PSS_PADDING;

/** A P-256 / RSA public area for a node:crypto public key, as LoadExternal takes it. */
function externalPublic(publicKey: KeyObject, template: TPMT_PUBLIC): TPMT_PUBLIC {
  const jwk = publicKey.export({ format: 'jwk' });
  const attributes = { ...template.objectAttributes, fixedTPM: false, fixedParent: false, sensitiveDataOrigin: false };
  if (jwk.kty === 'EC') {
    return { ...template, objectAttributes: attributes, unique: { x: Buffer.from(String(jwk.x), 'base64url'), y: Buffer.from(String(jwk.y), 'base64url') } } as TPMT_PUBLIC;
  }
  return { ...template, objectAttributes: attributes, unique: Buffer.from(String(jwk.n), 'base64url') } as TPMT_PUBLIC;
}

describeEachTpm('client crypto', (kind) => {
  let sw: TpmUnderTest;
  let wire: WireProbe;
  let tpm: Tpm;
  let srk: LoadedKey;

  beforeAll(async () => {
    sw = await startTpm(kind);
    // libtpms answers the first RSA key generation after start-up with TPM_RC_RETRY: resend, as a client must.
    wire = new WireProbe(withRetry(new SwtpmTransport({ port: sw.port, ctrlPort: sw.ctrlPort })));
    tpm = new Tpm(wire);
    await tpm.run(Startup, {}, { startupType: TPM_SU.CLEAR });
    srk = await tpm.using(createPrimary(tpm, TPM_RH.OWNER, eccStorageTemplate({ attributes: NOT_DA })), (p) => persist(tpm, p, 0x81000001));
  }, 30_000);

  afterAll(async () => {
    await tpm?.close();
    await sw?.stop();
  });

  afterEach(async () => {
    expect(await readCapability(wire, TPM_CAP.HANDLES, [0x80000000])).toEqual([]);
  });

  describe('sign and verify', () => {
    it('ECDSA P-256 and P-384: node:crypto verifies the DER form, and the raw (r, s) independently', async () => {
      for (const [curveID, hashAlg, name] of [
        [TPM_ECC.NIST_P256, TPM_ALG.SHA256, 'sha256'],
        [TPM_ECC.NIST_P384, TPM_ALG.SHA384, 'sha384'],
      ] as const) {
        await tpm.using(createLoaded(tpm, srk, eccSigningTemplate({ attributes: NOT_DA, curveID, scheme: { scheme: TPM_ALG.ECDSA, details: { hashAlg } } })), async (k) => {
          const message = randomBytes(100);
          const sig = await sign(tpm, k, digestOf(name, message));
          expect(verifyWithNode(k.publicArea, message, sig)).toBe(true);
          expect(verifyWithNode(k.publicArea, randomBytes(100), sig)).toBe(false);
          const n = signatureToNode(sig);
          expect(n.hash).toBe(name);
          expect(nodeVerify(name, message, { key: verifyKey(k.publicArea) }, n.signature)).toBe(true);
          if (sig.sigAlg !== TPM_ALG.ECDSA) throw new Error('expected ECDSA');
          const size = curveID === TPM_ECC.NIST_P256 ? 32 : 48;
          const pad = (b: Uint8Array): Buffer => Buffer.concat([Buffer.alloc(size - b.length), Buffer.from(b)]);
          const p1363 = Buffer.concat([pad(sig.signature.signatureR), pad(sig.signature.signatureS)]);
          expect(nodeVerify(name, message, { key: verifyKey(k.publicArea), dsaEncoding: 'ieee-p1363' }, p1363)).toBe(true);
        });
      }
    });

    it('RSASSA and RSAPSS chosen per call with a NULL-scheme key', async () => {
      await tpm.using(createLoaded(tpm, srk, rsaSigningTemplate({ attributes: NOT_DA, scheme: { scheme: TPM_ALG.NULL } })), async (k) => {
        const message = randomBytes(64);
        const digest = digestOf('sha256', message);
        const ssa = await sign(tpm, k, digest, { scheme: TPM_ALG.RSASSA, details: { hashAlg: TPM_ALG.SHA256 } });
        const pss = await sign(tpm, k, digest, { scheme: TPM_ALG.RSAPSS, details: { hashAlg: TPM_ALG.SHA256 } });
        expect(ssa.sigAlg).toBe(TPM_ALG.RSASSA);
        expect(pss.sigAlg).toBe(TPM_ALG.RSAPSS);
        expect(verifyWithNode(k.publicArea, message, ssa)).toBe(true);
        expect(verifyWithNode(k.publicArea, message, pss)).toBe(true);
        // Independently: PKCS#1 v1.5 verifies under node's defaults, PSS with the digest-sized salt the reference uses.
        const raw = (s: TPMT_SIGNATURE): Uint8Array => (s.sigAlg === TPM_ALG.RSASSA || s.sigAlg === TPM_ALG.RSAPSS ? s.signature.sig : new Uint8Array(0));
        expect(nodeVerify('sha256', message, verifyKey(k.publicArea), raw(ssa))).toBe(true);
        expect(nodeVerify('sha256', message, { key: verifyKey(k.publicArea), padding: PSS, saltLength: 32 }, raw(pss))).toBe(true);
        // A scheme without a hash the digest fits is refused before sending.
        const before = wire.count(TPM_CC.Sign);
        const e = await rejection(sign(tpm, k, digest, { scheme: TPM_ALG.RSASSA, details: { hashAlg: TPM_ALG.SHA384 } }));
        expect((e as ClientError).code).toBe('client.argument');
        expect(wire.count(TPM_CC.Sign)).toBe(before);
      });
    });

    it('HMAC signatures equal node:crypto HMAC with the key bits given at creation', async () => {
      const keyBits = randomBytes(32);
      const c = await create(tpm, srk, hmacKeyTemplate({ attributes: { noDA: true, sensitiveDataOrigin: false } }), { sensitiveData: keyBits });
      await tpm.using(load(tpm, srk, c), async (k) => {
        const digest = digestOf('sha256', randomBytes(10));
        const sig = await sign(tpm, k, digest);
        if (sig.sigAlg !== TPM_ALG.HMAC) throw new Error('expected HMAC');
        expect(sig.signature.hashAlg).toBe(TPM_ALG.SHA256);
        const mac = 'digest' in sig.signature ? sig.signature.digest : new Uint8Array(0);
        expect(hexOf(mac)).toBe(hexOf(createHmac('sha256', keyBits).update(digest).digest()));
        expect((await rejection(Promise.resolve().then(() => signatureToNode(sig)))) as ClientError).toBeInstanceOf(ClientError);
      });
    });

    it('a restricted key signs only with the ticket from hash(): TPM_RC_TICKET without it', async () => {
      const restricted = eccSigningTemplate({ attributes: { noDA: true, restricted: true } });
      await tpm.using(createLoaded(tpm, srk, restricted), async (k) => {
        const message = randomBytes(50);
        const h = await hash(tpm, message, TPM_ALG.SHA256);
        expect(h.validation.tag).toBe(TPM_ST.HASHCHECK);
        expect(h.validation.hierarchy).toBe(TPM_RH.OWNER);
        expect(isRc(await rejection(sign(tpm, k, h.digest)), TPM_RC.TICKET)).toBe(true);
        const sig = await sign(tpm, k, h.digest, undefined, { validation: h.validation });
        expect(verifyWithNode(k.publicArea, message, sig)).toBe(true);
      });
    });

    it('the TPM verifies node:crypto signatures (ECDSA, RSASSA, RSAPSS) and returns a ticket; a wrong one is TPM_RC_SIGNATURE', async () => {
      const message = randomBytes(33);
      const digest = digestOf('sha256', message);
      const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const ecPub = externalPublic(ec.publicKey, eccSigningTemplate());
      const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const rsaPub = externalPublic(rsa.publicKey, rsaSigningTemplate({ scheme: { scheme: TPM_ALG.NULL } }));
      const cases: [TPMT_PUBLIC, TPMT_SIGNATURE][] = [
        [ecPub, signatureFromNode(ecPub, TPM_ALG.ECDSA, TPM_ALG.SHA256, nodeSign('sha256', message, ec.privateKey))],
        [rsaPub, signatureFromNode(rsaPub, TPM_ALG.RSASSA, TPM_ALG.SHA256, nodeSign('sha256', message, rsa.privateKey))],
        [rsaPub, signatureFromNode(rsaPub, TPM_ALG.RSAPSS, TPM_ALG.SHA256, nodeSign('sha256', message, { key: rsa.privateKey, padding: PSS, saltLength: 32 }))],
      ];
      for (const [pub, sig] of cases) {
        await tpm.using(loadExternal(tpm, pub, { hierarchy: TPM_RH.OWNER }), async (k) => {
          const ticket = await verifySignature(tpm, k, digest, sig);
          expect(ticket.tag).toBe(TPM_ST.VERIFIED);
          expect(ticket.hierarchy).toBe(TPM_RH.OWNER);
          expect(ticket.digest.length).toBeGreaterThanOrEqual(32); // an HMAC with the hierarchy proof's hash
          expect(isRc(await rejection(verifySignature(tpm, k, digestOf('sha256', randomBytes(3)), sig)), TPM_RC.SIGNATURE)).toBe(true);
        });
      }
    });

    it('DER conversion agrees with node:crypto in both directions on many signatures', () => {
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      for (let i = 0; i < 200; i++) {
        const m = randomBytes(8);
        const p1363 = nodeSign('sha256', m, { key: privateKey, dsaEncoding: 'ieee-p1363' });
        const der = nodeSign('sha256', m, privateKey);
        const r = p1363.subarray(0, 32);
        const s = p1363.subarray(32);
        // node's DER of another signature differs, but our DER of (r, s) must verify and parse back.
        const mine = ecdsaSignatureToDer(r, s);
        expect(nodeVerify('sha256', m, publicKey, mine)).toBe(true);
        expect(Buffer.concat(Object.values(ecdsaSignatureFromDer(mine, 32)))).toEqual(p1363);
        const back = ecdsaSignatureFromDer(der, 32);
        expect(nodeVerify('sha256', m, { key: publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.concat([back.r, back.s]))).toBe(true);
      }
      // Leading zeros are stripped and a 0x00 guards a set top bit (X.690 §8.3.2).
      expect(hexOf(ecdsaSignatureToDer(Uint8Array.of(0, 0, 0x80), Uint8Array.of(0x01)))).toBe('3007020200800201' + '01');
      for (const bad of ['300402000200', '300602020001020101', '3006020180020101', '30070201010201010000', '3103020101']) {
        expect((() => {
          try {
            ecdsaSignatureFromDer(Buffer.from(bad, 'hex'), 32);
          } catch (e) {
            return (e as ClientError).code;
          }
          return 'accepted';
        })()).toBe('client.argument');
      }
    });
  });

  describe('RSA encryption', () => {
    it('OAEP with a label: node encrypts, the TPM decrypts; the TPM encrypts, node decrypts', async () => {
      const label = 'trustroot label';
      const labelBytes = Buffer.concat([Buffer.from(label), Buffer.from([0])]); // the NUL is part of L (Part 3 §14.2)
      await tpm.using(createLoaded(tpm, srk, rsaDecryptTemplate({ attributes: NOT_DA })), async (k) => {
        const message = randomBytes(40);
        const ct = publicEncrypt({ key: verifyKey(k.publicArea), padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256', oaepLabel: labelBytes }, message);
        const pt = await rsaDecrypt(tpm, k, ct, { scheme: { scheme: TPM_ALG.OAEP, details: { hashAlg: TPM_ALG.SHA256 } }, label });
        expect(hexOf(pt)).toBe(hexOf(message));
        // The same ciphertext with another label does not decrypt: TPM_RC_VALUE in the reference, TPM_RC_FAILURE from
        // libtpms (OpenSSL's OAEP error, without entering failure mode: the next command works).
        const e = await rejection(rsaDecrypt(tpm, k, ct, { scheme: { scheme: TPM_ALG.OAEP, details: { hashAlg: TPM_ALG.SHA256 } }, label: 'other' }));
        expect(isRc(e, TPM_RC.VALUE) || isRc(e, TPM_RC.FAILURE)).toBe(true);
        expect(hexOf(await rsaDecrypt(tpm, k, ct, { scheme: { scheme: TPM_ALG.OAEP, details: { hashAlg: TPM_ALG.SHA256 } }, label }))).toBe(hexOf(message));
        // Byte labels must carry their NUL: refused before sending.
        const bad = await rejection(rsaDecrypt(tpm, k, ct, { label: Buffer.from(label) }));
        expect((bad as ClientError).code).toBe('client.argument');
      });
      const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
      await tpm.using(loadExternal(tpm, externalPublic(rsa.publicKey, rsaDecryptTemplate())), async (k) => {
        const message = randomBytes(60);
        const ct = await rsaEncrypt(tpm, k, message, { scheme: { scheme: TPM_ALG.OAEP, details: { hashAlg: TPM_ALG.SHA384 } }, label: labelBytes });
        const pt = privateDecrypt({ key: rsa.privateKey, padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha384', oaepLabel: labelBytes }, ct);
        expect(hexOf(pt)).toBe(hexOf(message));
      });
    });

    it('RSAES (PKCS#1 v1.5): node encrypts, the TPM decrypts; and a TPM round trip', async () => {
      await tpm.using(createLoaded(tpm, srk, rsaDecryptTemplate({ attributes: NOT_DA })), async (k) => {
        const message = randomBytes(30);
        const ct = publicEncrypt({ key: verifyKey(k.publicArea), padding: cryptoConstants.RSA_PKCS1_PADDING }, message);
        expect(hexOf(await rsaDecrypt(tpm, k, ct, { scheme: { scheme: TPM_ALG.RSAES } }))).toBe(hexOf(message));
        const ct2 = await rsaEncrypt(tpm, k, message, { scheme: { scheme: TPM_ALG.RSAES } });
        expect(ct2.length).toBe(256);
        expect(hexOf(await rsaDecrypt(tpm, k, ct2, { scheme: { scheme: TPM_ALG.RSAES } }))).toBe(hexOf(message));
      });
    });
  });

  describe('ECDH', () => {
    it('ECDH_ZGen agrees with node:crypto ECDH, and ECDH_KeyGen gives a point node agrees on', async () => {
      await tpm.using(createLoaded(tpm, srk, eccEcdhTemplate({ attributes: NOT_DA })), async (k) => {
        if (k.publicArea.type !== TPM_ALG.ECC) throw new Error('expected ECC');
        const peer = createECDH('prime256v1');
        peer.generateKeys();
        const p = peer.getPublicKey();
        const z = await ecdhZGen(tpm, k, { x: p.subarray(1, 33), y: p.subarray(33) });
        const tpmPoint = Buffer.concat([Buffer.from([4]), Buffer.from(k.publicArea.unique.x), Buffer.from(k.publicArea.unique.y)]);
        expect(hexOf(z.x)).toBe(hexOf(peer.computeSecret(tpmPoint)));
        // A point off the curve is refused by the TPM.
        const off = await rejection(ecdhZGen(tpm, k, { x: p.subarray(1, 33), y: Buffer.alloc(32, 1) }));
        expect(isRc(off, TPM_RC.ECC_POINT)).toBe(true);
      });
      const mine = createECDH('prime256v1');
      mine.generateKeys();
      const pub = mine.getPublicKey();
      const external = { ...eccEcdhTemplate(), objectAttributes: TPMA_OBJECT.of({ decrypt: true, userWithAuth: true }), unique: { x: pub.subarray(1, 33), y: pub.subarray(33) } } as TPMT_PUBLIC;
      await tpm.using(loadExternal(tpm, external), async (k) => {
        const { zPoint, pubPoint } = await ecdhKeyGen(tpm, k);
        const eph = Buffer.concat([Buffer.from([4]), Buffer.from(pubPoint.x), Buffer.from(pubPoint.y)]);
        expect(hexOf(zPoint.x)).toBe(hexOf(mine.computeSecret(eph)));
      });
    });
  });

  describe('symmetric', () => {
    const modes = [
      [TPM_ALG.CFB, 'aes-128-cfb'],
      [TPM_ALG.CBC, 'aes-128-cbc'],
      [TPM_ALG.OFB, 'aes-128-ofb'],
      [TPM_ALG.CTR, 'aes-128-ctr'],
      [TPM_ALG.ECB, 'aes-128-ecb'],
    ] as const;

    it('every mode across three input buffers equals node:crypto AES, and decrypts back', async () => {
      const aesKey = randomBytes(16);
      const c = await create(tpm, srk, aesKeyTemplate({ attributes: { noDA: true, sensitiveDataOrigin: false }, mode: TPM_ALG.NULL }), { sensitiveData: aesKey });
      const chunk = await inputBufferSize(tpm);
      await tpm.using(load(tpm, srk, c), async (k) => {
        for (const [mode, cipher] of modes) {
          const data = randomBytes(2 * chunk + 48);
          const iv = mode === TPM_ALG.ECB ? new Uint8Array(0) : randomBytes(16);
          const before = wire.count(TPM_CC.EncryptDecrypt2);
          const enc = await symmetricEncrypt(tpm, k, data, { mode, iv });
          expect(wire.count(TPM_CC.EncryptDecrypt2) - before).toBe(3);
          const node = createCipheriv(cipher, aesKey, mode === TPM_ALG.ECB ? null : iv).setAutoPadding(false);
          const expected = Buffer.concat([node.update(data), node.final()]);
          expect(hexOf(enc.data)).toBe(hexOf(expected));
          const dec = await symmetricDecrypt(tpm, k, enc.data, { mode, iv });
          expect(hexOf(dec.data)).toBe(hexOf(data));
        }
        // EncryptDecrypt (the older command) gives the same bytes.
        const data = randomBytes(100);
        const a = await encryptDecrypt(tpm, k, false, data, { mode: TPM_ALG.CFB, command: 'EncryptDecrypt' });
        const b = await encryptDecrypt(tpm, k, false, data, { mode: TPM_ALG.CFB });
        expect(hexOf(a.data)).toBe(hexOf(b.data));
        // CBC/ECB data not in whole blocks is refused before sending; a NULL mode on a NULL-mode key by the TPM.
        expect(((await rejection(symmetricEncrypt(tpm, k, randomBytes(17), { mode: TPM_ALG.CBC }))) as ClientError).code).toBe('client.argument');
        expect(isRc(await rejection(symmetricEncrypt(tpm, k, randomBytes(16))), TPM_RC.MODE)).toBe(true);
      });
    });

    it('the returned IV continues the stream: two calls equal one', async () => {
      const aesKey = randomBytes(32);
      const c = await create(tpm, srk, aesKeyTemplate({ attributes: { noDA: true, sensitiveDataOrigin: false }, keyBits: 256, mode: TPM_ALG.CFB }), { sensitiveData: aesKey });
      await tpm.using(load(tpm, srk, c), async (k) => {
        const data = randomBytes(96);
        const whole = await symmetricEncrypt(tpm, k, data);
        const first = await symmetricEncrypt(tpm, k, data.subarray(0, 48));
        const second = await symmetricEncrypt(tpm, k, data.subarray(48), { iv: first.iv });
        expect(hexOf(Buffer.concat([first.data, second.data]))).toBe(hexOf(whole.data));
        expect(hexOf(second.iv)).toBe(hexOf(whole.iv));
        // The key's mode is CFB: asking for CBC is TPM_RC_MODE.
        expect(isRc(await rejection(symmetricEncrypt(tpm, k, randomBytes(16), { mode: TPM_ALG.CBC })), TPM_RC.MODE)).toBe(true);
      });
    });
  });

  describe('hash, HMAC and event sequences', () => {
    it('hashes small data with Hash and large data with a sequence, equal to node:crypto', async () => {
      for (const [alg, name] of [
        [TPM_ALG.SHA256, 'sha256'],
        [TPM_ALG.SHA384, 'sha384'],
        [TPM_ALG.SHA1, 'sha1'],
      ] as const) {
        for (const size of [0, 1000, 1024, 1025, 5000]) {
          const data = randomBytes(size);
          const seqBefore = wire.count(TPM_CC.HashSequenceStart);
          const r = await hash(tpm, data, alg);
          expect(hexOf(r.digest)).toBe(hexOf(digestOf(name, data)));
          expect(wire.count(TPM_CC.HashSequenceStart) - seqBefore).toBe(size > 1024 ? 1 : 0);
          expect(r.validation.hierarchy).toBe(TPM_RH.OWNER);
        }
      }
      // 5000 bytes take 4 SequenceUpdates of 1024 and a SequenceComplete with the remaining 904.
      const before = wire.count(TPM_CC.SequenceUpdate);
      await hash(tpm, randomBytes(5000));
      expect(wire.count(TPM_CC.SequenceUpdate) - before).toBe(4);
    });

    it('gives no ticket for data that starts with TPM_GENERATED_VALUE (Part 3 §15.4), short or long', async () => {
      for (const size of [100, 3000]) {
        const data = Buffer.concat([Buffer.from('ff544347', 'hex'), randomBytes(size)]);
        const r = await hash(tpm, data);
        expect(hexOf(r.digest)).toBe(hexOf(digestOf('sha256', data)));
        expect(r.validation.hierarchy).toBe(TPM_RH.NULL);
        expect(r.validation.digest.length).toBe(0);
      }
    });

    it('flushes the sequence when a step fails in the middle', async () => {
      wire.edit = { cc: TPM_CC.SequenceUpdate, fn: () => Uint8Array.from(Buffer.from('80010000000a00000101', 'hex')) }; // TPM_RC_FAILURE
      const e = await rejection(hash(tpm, randomBytes(4000)));
      expect(isRc(e, TPM_RC.FAILURE)).toBe(true);
      // afterEach checks that no sequence object is left.
    });

    it('HMAC of small and large data equals node:crypto HMAC', async () => {
      const keyBits = randomBytes(48);
      const c = await create(tpm, srk, hmacKeyTemplate({ attributes: { noDA: true, sensitiveDataOrigin: false }, hashAlg: TPM_ALG.SHA384 }), {
        sensitiveData: keyBits,
        authValue: Uint8Array.of(5),
      });
      await tpm.using(load(tpm, srk, c, { authValue: Uint8Array.of(5) }), async (k) => {
        for (const size of [0, 700, 3000]) {
          const data = randomBytes(size);
          const before = wire.count(TPM_CC.HMAC_Start);
          expect(hexOf(await hmac(tpm, k, data))).toBe(hexOf(createHmac('sha384', keyBits).update(data).digest()));
          expect(wire.count(TPM_CC.HMAC_Start) - before).toBe(size > 1024 ? 1 : 0);
        }
        // A key with an HMAC scheme takes only its own hash (Part 3 §15.5: TPM_RC_VALUE).
        expect(isRc(await rejection(hmac(tpm, k, Uint8Array.of(1), { hashAlg: TPM_ALG.SHA256 })), TPM_RC.VALUE)).toBe(true);
      });
    });

    it('an event sequence returns a digest per hash and extends the PCR with them', async () => {
      const pcr = 16; // resettable from locality 0 (PC Client)
      await tpm.run(PCR_Reset, { pcrHandle: { handle: pcr, name: handleName(pcr), authValue: new Uint8Array(0) } }, {});
      const data = randomBytes(2500);
      const digests = await eventSequence(tpm, data, { pcr });
      const names: Record<number, string> = { [TPM_ALG.SHA1]: 'sha1', [TPM_ALG.SHA256]: 'sha256', [TPM_ALG.SHA384]: 'sha384', [TPM_ALG.SHA512]: 'sha512' };
      expect(digests.map((d) => d.hashAlg).sort()).toEqual([TPM_ALG.SHA1, TPM_ALG.SHA256, TPM_ALG.SHA384, TPM_ALG.SHA512].sort());
      for (const d of digests) {
        expect(hexOf('digest' in d ? d.digest : new Uint8Array(0))).toBe(hexOf(digestOf(names[d.hashAlg]!, data)));
      }
      const values = await readPcrs(wire, [pcrSelection(TPM_ALG.SHA256, [pcr])]);
      expect(hexOf(values.get(TPM_ALG.SHA256)!.get(pcr)!)).toBe(hexOf(digestOf('sha256', Buffer.alloc(32), digestOf('sha256', data))));
      // With no PCR, the digests alone.
      const again = await eventSequence(tpm, data);
      expect(again.length).toBe(digests.length);
      expect(hexOf((await readPcrs(wire, [pcrSelection(TPM_ALG.SHA256, [pcr])])).get(TPM_ALG.SHA256)!.get(pcr)!)).toBe(hexOf(values.get(TPM_ALG.SHA256)!.get(pcr)!));
    });
  });

  describe('random', () => {
    it('getRandom asks in pieces of TPM_PT_MAX_DIGEST, stirRandom in pieces of 128', async () => {
      expect(await tpmProperty(tpm, TPM_PT.MAX_DIGEST)).toBe(64);
      const before = wire.count(TPM_CC.GetRandom);
      const capsBefore = wire.count(TPM_CC.GetCapability);
      const r = await getRandom(tpm, 200);
      expect(r.length).toBe(200);
      expect(wire.count(TPM_CC.GetRandom) - before).toBe(4);
      expect(wire.count(TPM_CC.GetCapability)).toBe(capsBefore); // the fixed property is cached
      expect(hexOf(await getRandom(tpm, 200))).not.toBe(hexOf(r));
      expect((await getRandom(tpm, 0)).length).toBe(0);
      const s = wire.count(TPM_CC.StirRandom);
      await stirRandom(tpm, randomBytes(300));
      expect(wire.count(TPM_CC.StirRandom) - s).toBe(3);
    });

    it('refuses an answer with more bytes than asked for', async () => {
      // GetRandom(8) answered with 9 bytes: size field and header patched.
      wire.edit = {
        cc: TPM_CC.GetRandom,
        fn: () => Uint8Array.from(Buffer.from('800100000015000000000009' + '01'.repeat(9), 'hex')),
      };
      const e = await rejection(getRandom(tpm, 8));
      expect((e as ClientError).code).toBe('client.response');
    });
  });
});

/** A node:crypto key from a public area's raw fields (not through secret.ts), for independent checks. */
function verifyKey(pub: TPMT_PUBLIC): KeyObject {
  const b64u = (b: Uint8Array): string => Buffer.from(b).toString('base64url');
  if (pub.type === TPM_ALG.RSA) {
    return createPublicKeyJwk({ kty: 'RSA', n: b64u(pub.unique), e: 'AQAB' });
  }
  if (pub.type === TPM_ALG.ECC) {
    const crv = pub.parameters.curveID === TPM_ECC.NIST_P256 ? 'P-256' : 'P-384';
    return createPublicKeyJwk({ kty: 'EC', crv, x: b64u(pub.unique.x), y: b64u(pub.unique.y) });
  }
  throw new Error('no public key');
}

function createPublicKeyJwk(jwk: Record<string, string>): KeyObject {
  return createPublicKey({ key: jwk, format: 'jwk' });
}
