/**
 * Key operations (src/client/keys.ts) against swtpm and our simulator. Each result is checked
 * independently of the code under test: Names are recomputed here with
 * node:crypto over the marshaled public area, creation hashes over the
 * marshaled creation data, keys made here with node:crypto are loaded and
 * used, and a TPM that lies (a Name or a public area altered in its answer)
 * is caught. After every test GetCapability lists no transient object, so no
 * error path leaks one. Objects are noDA so wrong-auth tests never lock swtpm out.
 */
import { createHash, generateKeyPairSync, randomBytes, sign as nodeSign, verify as nodeVerify } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  aesKeyTemplate,
  contextLoad,
  contextSave,
  create,
  createLoaded,
  createPrimary,
  eccEcdhTemplate,
  eccSigningTemplate,
  eccStorageTemplate,
  hmacKeyTemplate,
  load,
  loadExternal,
  objectChangeAuth,
  persist,
  readPublic,
  rsaDecryptTemplate,
  rsaSigningTemplate,
  rsaStorageTemplate,
  unpersist,
  type LoadedKey,
} from '../../src/client/keys.js';
import { password, Tpm } from '../../src/client/index.js';
import { withRetry } from '../../src/client/retry.js';
import { readCapability } from '../../src/tpm/capability.js';
import { Sign, Startup } from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_CAP, TPM_CC, TPM_RH, TPM_ST, TPM_SU } from '../../src/tpm/constants.js';
import { externalObject } from '../../src/tpm/duplication.js';
import { ClientError } from '../../src/tpm/errors.js';
import { isRc, TPM_RC, TpmError } from '../../src/tpm/rc.js';
import { publicKeyFromArea } from '../../src/tpm/secret.js';
import { SwtpmTransport } from '../../src/tpm/transport/index.js';
import { TPMA_OBJECT, TPMS_CREATION_DATA, TPMT_PUBLIC, type TPMS_CONTEXT } from '../../src/tpm/types/index.js';
import { encode } from '../../src/tpm/wire/codec.js';
import { rejection, WireProbe } from '../support/probe.js';
import { describeEachTpm, startTpm, type TpmUnderTest } from '../support/tpm-under-test.js';

const sha256 = (...parts: Uint8Array[]): Buffer => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};
/** Name = nameAlg ‖ SHA-256(marshaled TPMT_PUBLIC), computed here rather than with names.ts. */
const nameOf = (pub: TPMT_PUBLIC): Buffer => Buffer.concat([Buffer.from([0x00, 0x0b]), sha256(encode(TPMT_PUBLIC, pub))]);
const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const NOT_DA = { noDA: true } as const;
const NULL_TICKET = { tag: TPM_ST.HASHCHECK, hierarchy: TPM_RH.NULL, digest: new Uint8Array(0) } as const;

describeEachTpm('client keys', (kind) => {
  let sw: TpmUnderTest;
  let liar: WireProbe;
  let tpm: Tpm;
  let srk: LoadedKey; // ECC storage key, persistent at 0x81000001 so it takes no transient slot between commands

  const transients = async (): Promise<number[]> => readCapability(liar, TPM_CAP.HANDLES, [0x80000000]);

  beforeAll(async () => {
    sw = await startTpm(kind);
    // libtpms answers the first RSA key generation after start-up with TPM_RC_RETRY: resend, as a client must.
    liar = new WireProbe(withRetry(new SwtpmTransport({ port: sw.port, ctrlPort: sw.ctrlPort })));
    tpm = new Tpm(liar);
    await tpm.run(Startup, {}, { startupType: TPM_SU.CLEAR });
    const primary = await createPrimary(tpm, TPM_RH.OWNER, eccStorageTemplate({ attributes: NOT_DA }));
    srk = await tpm.using(primary, (p) => persist(tpm, p, 0x81000001));
  }, 30_000);

  afterAll(async () => {
    await tpm?.close();
    await sw?.stop();
  });

  afterEach(async () => {
    expect(await transients()).toEqual([]);
  });

  describe('createPrimary', () => {
    it('returns the public area, its Name (as recomputed here and as ReadPublic says) and a creation record', async () => {
      const template = eccSigningTemplate({ attributes: NOT_DA });
      await tpm.using(createPrimary(tpm, TPM_RH.OWNER, template, { outsideInfo: Uint8Array.of(1, 2, 3) }), async (key) => {
        expect(hexOf(key.name)).toBe(hexOf(nameOf(key.publicArea)));
        const rp = await readPublic(tpm, key.handle);
        expect(hexOf(rp.name)).toBe(hexOf(key.name));
        // Everything but unique is the template; unique is a P-256 point.
        expect(encode(TPMT_PUBLIC, { ...key.publicArea, unique: template.unique } as TPMT_PUBLIC)).toEqual(encode(TPMT_PUBLIC, template));
        expect(key.publicArea.type === TPM_ALG.ECC && key.publicArea.unique.x.length).toBe(32);
        // creationHash = SHA-256(marshaled TPMS_CREATION_DATA) (Part 3 §24.1), outsideInfo recorded.
        expect(hexOf(key.creation.hash)).toBe(hexOf(sha256(encode(TPMS_CREATION_DATA, key.creation.data))));
        expect([...key.creation.data.outsideInfo]).toEqual([1, 2, 3]);
        expect(key.creation.ticket.tag).toBe(TPM_ST.CREATION);
        expect(key.creation.ticket.hierarchy).toBe(TPM_RH.OWNER);
      });
    });

    it('gives the same key for the same template and seed, another for another unique', async () => {
      const template = eccSigningTemplate({ attributes: NOT_DA });
      const a = await tpm.using(createPrimary(tpm, TPM_RH.OWNER, template), (k) => k.name);
      const b = await tpm.using(createPrimary(tpm, TPM_RH.OWNER, template), (k) => k.name);
      const c = await tpm.using(createPrimary(tpm, TPM_RH.OWNER, { ...template, unique: { x: Uint8Array.of(1), y: new Uint8Array(0) } } as TPMT_PUBLIC), (k) => k.name);
      expect(hexOf(a)).toBe(hexOf(b));
      expect(hexOf(c)).not.toBe(hexOf(a));
    });

    it('refuses a Name that is not the Name of the returned public area, and flushes the key', async () => {
      // Password responses carry no HMAC, so a lie in the Name is only caught by recomputing it.
      liar.edit = {
        cc: TPM_CC.CreatePrimary,
        fn: (rsp) => {
          rsp[rsp.length - 6]! ^= 1; // last byte of `name`, before the 5-byte password response session
          return rsp;
        },
      };
      const e = await rejection(createPrimary(tpm, TPM_RH.OWNER, eccSigningTemplate({ attributes: NOT_DA })));
      expect(e).toBeInstanceOf(ClientError);
      expect((e as ClientError).code).toBe('client.name');
    });

    it('refuses a public area other than the template (attributes changed), and flushes the key', async () => {
      liar.edit = {
        cc: TPM_CC.CreatePrimary,
        fn: (rsp) => {
          // header 10, handle 4, parameterSize 4, TPM2B size 2, type 2, nameAlg 2: objectAttributes at 24.
          rsp[24 + 2]! ^= 0x04; // bit 10 (noDA) of the big-endian word
          return rsp;
        },
      };
      const e = await rejection(createPrimary(tpm, TPM_RH.OWNER, eccSigningTemplate({ attributes: NOT_DA })));
      expect((e as ClientError).code).toBe('client.response');
    });

    it('passes TPM errors through (RSA-4096, which libtpms 0.9 lacks) with nothing loaded', async () => {
      const e = await rejection(createPrimary(tpm, TPM_RH.OWNER, rsaSigningTemplate({ keyBits: 4096, attributes: NOT_DA })));
      expect(e).toBeInstanceOf(TpmError);
      expect(isRc(e, TPM_RC.KEY_SIZE) || isRc(e, TPM_RC.VALUE)).toBe(true);
    });
  });

  describe('create, load, createLoaded', () => {
    it('creates under the SRK, loads with the same Name, and the key signs', async () => {
      const created = await create(tpm, srk, eccSigningTemplate({ attributes: NOT_DA }), { authValue: Uint8Array.of(7, 7) });
      expect(hexOf(created.name)).toBe(hexOf(nameOf(created.publicArea)));
      expect(created.privateBlob.length).toBeGreaterThan(32);
      // The creation record names the parent.
      expect(hexOf(created.creation.data.parentName)).toBe(hexOf(srk.name));
      await tpm.using(load(tpm, srk, created, { authValue: Uint8Array.of(7, 7) }), async (key) => {
        expect(hexOf(key.name)).toBe(hexOf(created.name));
        expect(key.authValue).toEqual(Uint8Array.of(7, 7));
        const message = randomBytes(40);
        const r = await tpm.run(Sign, { keyHandle: key }, { digest: sha256(message), inScheme: { scheme: TPM_ALG.NULL }, validation: NULL_TICKET });
        const sig = r.params.signature;
        if (sig.sigAlg !== TPM_ALG.ECDSA) throw new Error('expected ECDSA');
        const p1363 = Buffer.concat([Buffer.from(sig.signature.signatureR), Buffer.from(sig.signature.signatureS)]);
        expect(nodeVerify('sha256', message, { key: publicKeyFromArea(key.publicArea), dsaEncoding: 'ieee-p1363' }, p1363)).toBe(true);
      });
    });

    it('refuses a blob whose public area was changed (TPM_RC_INTEGRITY) with nothing loaded', async () => {
      const created = await create(tpm, srk, eccSigningTemplate({ attributes: NOT_DA }));
      const forged = { ...created, publicArea: { ...created.publicArea, objectAttributes: { ...created.publicArea.objectAttributes, noDA: false } } as TPMT_PUBLIC };
      const e = await rejection(load(tpm, srk, forged));
      expect(isRc(e, TPM_RC.INTEGRITY)).toBe(true);
    });

    it('refuses a Load whose Name the TPM misreports, and flushes the loaded object', async () => {
      const created = await create(tpm, srk, eccSigningTemplate({ attributes: NOT_DA }));
      liar.edit = {
        cc: TPM_CC.Load,
        fn: (rsp) => {
          rsp[rsp.length - 6]! ^= 0x80;
          return rsp;
        },
      };
      const e = await rejection(load(tpm, srk, created));
      expect((e as ClientError).code).toBe('client.name');
    });

    it('createLoaded makes a primary (no private blob) and an ordinary key whose blob loads again', async () => {
      const template = eccSigningTemplate({ attributes: NOT_DA });
      const viaCreateLoaded = await tpm.using(createLoaded(tpm, TPM_RH.OWNER, template), (k) => {
        expect(k.privateBlob.length).toBe(0);
        return k.name;
      });
      const viaCreatePrimary = await tpm.using(createPrimary(tpm, TPM_RH.OWNER, template), (k) => k.name);
      // Both are derived from the owner seed and the same template (Part 1 §27.3).
      expect(hexOf(viaCreateLoaded)).toBe(hexOf(viaCreatePrimary));

      const child = await tpm.using(createLoaded(tpm, srk, rsaSigningTemplate({ attributes: NOT_DA })), (k) => {
        expect(hexOf(k.name)).toBe(hexOf(nameOf(k.publicArea)));
        return { privateBlob: k.privateBlob, publicArea: k.publicArea, name: k.name };
      });
      await tpm.using(load(tpm, srk, child), (k) => expect(hexOf(k.name)).toBe(hexOf(child.name)));
    });

    it('createLoaded under a derivation parent derives the same key from the same label and context', async () => {
      // Part 1 §27.4 / Part 3 §12.9: a restricted decrypt keyedHash with a KDF is a derivation parent.
      const parentTemplate: TPMT_PUBLIC = {
        type: TPM_ALG.KEYEDHASH,
        nameAlg: TPM_ALG.SHA256,
        objectAttributes: TPMA_OBJECT.of({ fixedTPM: true, fixedParent: true, sensitiveDataOrigin: true, userWithAuth: true, noDA: true, restricted: true, decrypt: true }),
        authPolicy: new Uint8Array(0),
        parameters: { scheme: { scheme: TPM_ALG.XOR, details: { hashAlg: TPM_ALG.SHA256, kdf: TPM_ALG.KDF1_SP800_108 } } },
        unique: new Uint8Array(0),
      };
      const derived = eccSigningTemplate({ attributes: { noDA: true, sensitiveDataOrigin: false } });
      const label = new TextEncoder().encode('label');
      await tpm.using(createLoaded(tpm, srk, parentTemplate), async (parent) => {
        const one = async (context: string): Promise<string> =>
          tpm.using(createLoaded(tpm, parent, derived, { derive: { label, context: new TextEncoder().encode(context) } }), (k) => hexOf(k.name));
        const a = await one('device-1');
        expect(await one('device-1')).toBe(a);
        expect(await one('device-2')).not.toBe(a);
      });
    });
  });

  describe('loadExternal', () => {
    it('loads a node:crypto public key alone, with the Name recomputed here', async () => {
      const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const jwk = publicKey.export({ format: 'jwk' });
      const pub: TPMT_PUBLIC = {
        ...eccSigningTemplate({ attributes: { fixedTPM: false, fixedParent: false, sensitiveDataOrigin: false } }),
        unique: { x: Buffer.from(String(jwk.x), 'base64url'), y: Buffer.from(String(jwk.y), 'base64url') },
      } as TPMT_PUBLIC;
      await tpm.using(loadExternal(tpm, pub), (k) => expect(hexOf(k.name)).toBe(hexOf(nameOf(pub))));
    });

    it('loads a key in the clear (public and private) that then signs for node:crypto', async () => {
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const ext = externalObject(
        { type: 'ecc', privateKey, scheme: { scheme: TPM_ALG.ECDSA, details: { hashAlg: TPM_ALG.SHA256 } } },
        { objectAttributes: TPMA_OBJECT.of({ userWithAuth: true, sign: true, noDA: true }), authValue: Uint8Array.of(9) },
      );
      await tpm.using(loadExternal(tpm, ext.publicArea, { sensitive: ext.sensitive }), async (k) => {
        expect(k.authValue).toEqual(Uint8Array.of(9));
        const message = randomBytes(20);
        const r = await tpm.run(Sign, { keyHandle: k }, { digest: sha256(message), inScheme: { scheme: TPM_ALG.NULL }, validation: NULL_TICKET });
        const sig = r.params.signature;
        if (sig.sigAlg !== TPM_ALG.ECDSA) throw new Error('expected ECDSA');
        const p1363 = Buffer.concat([Buffer.from(sig.signature.signatureR), Buffer.from(sig.signature.signatureS)]);
        expect(nodeVerify('sha256', message, { key: publicKey, dsaEncoding: 'ieee-p1363' }, p1363)).toBe(true);
      });
    });

    it('refuses a key with a private part and fixedTPM (TPM_RC_ATTRIBUTES), nothing loaded', async () => {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const ext = externalObject({ type: 'ecc', privateKey }, { objectAttributes: TPMA_OBJECT.of({ userWithAuth: true, sign: true, noDA: true }) });
      const fixed = { ...ext.publicArea, objectAttributes: { ...ext.publicArea.objectAttributes, fixedTPM: true } } as TPMT_PUBLIC;
      const e = await rejection(loadExternal(tpm, fixed, { sensitive: ext.sensitive }));
      expect(isRc(e, TPM_RC.ATTRIBUTES)).toBe(true);
    });
  });

  describe('readPublic, persist, unpersist', () => {
    it('reads the persistent SRK with its Name checked, and refuses a misreported Name', async () => {
      const p = await readPublic(tpm, 0x81000001);
      expect(hexOf(p.name)).toBe(hexOf(srk.name));
      expect(hexOf(p.name)).toBe(hexOf(nameOf(p.publicArea)));
      // Qualified Name of a child of the owner hierarchy: nameAlg ‖ H(QN(owner) ‖ Name), QN(owner) = its handle.
      expect(hexOf(p.qualifiedName)).toBe(hexOf(Buffer.concat([Buffer.from([0, 0x0b]), sha256(Buffer.from('40000001', 'hex'), p.name)])));
      liar.edit = {
        cc: TPM_CC.ReadPublic,
        fn: (rsp) => {
          // ReadPublic (no sessions): outPublic, name, qualifiedName; flip a byte inside `name`.
          const qnLen = Buffer.from(rsp).readUInt16BE(rsp.length - 2 - 34);
          expect(qnLen).toBe(34);
          rsp[rsp.length - 2 - 34 - 1]! ^= 1;
          return rsp;
        },
      };
      expect(((await rejection(readPublic(tpm, 0x81000001))) as ClientError).code).toBe('client.name');
    });

    it('persists a key, reads it back at its persistent handle, and removes it', async () => {
      const handle = 0x81000010;
      const persisted = await tpm.using(createPrimary(tpm, TPM_RH.OWNER, eccSigningTemplate({ attributes: NOT_DA })), (k) => persist(tpm, k, handle));
      expect(persisted.handle).toBe(handle);
      expect(hexOf((await readPublic(tpm, handle)).name)).toBe(hexOf(persisted.name));
      const persistent = await readCapability(liar, TPM_CAP.HANDLES, [0x81000000]);
      expect(persistent).toContain(handle);
      await unpersist(tpm, persisted);
      expect(isRc(await rejection(readPublic(tpm, handle)), TPM_RC.HANDLE)).toBe(true);
    });

    it('refuses handles outside the persistent range before sending', async () => {
      const e = await rejection(unpersist(tpm, 0x80000001));
      expect((e as ClientError).code).toBe('client.argument');
    });
  });

  describe('contexts and authorization', () => {
    it('saves a key, flushes it, loads the context back and signs with it', async () => {
      const saved = await tpm.using(createPrimary(tpm, TPM_RH.OWNER, eccSigningTemplate({ attributes: NOT_DA })), (k) => contextSave(tpm, k));
      expect(saved.context.savedHandle >>> 24).toBe(0x80);
      await tpm.using(contextLoad(tpm, saved), async (k) => {
        expect(hexOf(k.name)).toBe(hexOf(saved.name));
        const r = await tpm.run(Sign, { keyHandle: k }, { digest: sha256(Uint8Array.of(1)), inScheme: { scheme: TPM_ALG.NULL }, validation: NULL_TICKET });
        expect(r.params.signature.sigAlg).toBe(TPM_ALG.ECDSA);
      });
      // A context whose blob was changed fails its integrity check (Part 1 §30.3), and nothing is left loaded.
      const blob = saved.context.contextBlob.slice();
      blob[blob.length - 1]! ^= 1;
      const tampered: TPMS_CONTEXT = { ...saved.context, contextBlob: blob };
      expect(isRc(await rejection(contextLoad(tpm, { ...saved, context: tampered })), TPM_RC.INTEGRITY)).toBe(true);
    });

    it('changes a key\'s authValue: the new blob loads and works with the new value only', async () => {
      const oldAuth = Uint8Array.of(1, 1, 1);
      const newAuth = Uint8Array.of(2, 2, 2);
      const created = await create(tpm, srk, eccSigningTemplate({ attributes: NOT_DA }), { authValue: oldAuth });
      const changed = await tpm.using(load(tpm, srk, created, { authValue: oldAuth }), (k) => objectChangeAuth(tpm, k, srk, newAuth));
      expect(hexOf(changed.privateBlob)).not.toBe(hexOf(created.privateBlob));
      await tpm.using(load(tpm, srk, changed, { authValue: newAuth }), async (k) => {
        const digest = sha256(Uint8Array.of(2));
        await tpm.run(Sign, { keyHandle: k }, { digest, inScheme: { scheme: TPM_ALG.NULL }, validation: NULL_TICKET });
        const e = await rejection(tpm.run(Sign, { keyHandle: k }, { digest, inScheme: { scheme: TPM_ALG.NULL }, validation: NULL_TICKET }, { sessions: [password(oldAuth)] }));
        expect(isRc(e, TPM_RC.AUTH_FAIL) || isRc(e, TPM_RC.BAD_AUTH)).toBe(true);
      });
    });
  });

  describe('templates', () => {
    it('each template helper makes a key the TPM accepts, with the attributes asked for', async () => {
      const templates = [
        rsaSigningTemplate({ attributes: NOT_DA, scheme: { scheme: TPM_ALG.RSAPSS, details: { hashAlg: TPM_ALG.SHA384 } } }),
        rsaDecryptTemplate({ attributes: NOT_DA }),
        rsaStorageTemplate({ attributes: NOT_DA }),
        eccSigningTemplate({ attributes: NOT_DA }),
        eccEcdhTemplate({ attributes: NOT_DA }),
        eccStorageTemplate({ attributes: NOT_DA }),
        hmacKeyTemplate({ attributes: NOT_DA, hashAlg: TPM_ALG.SHA384 }),
        aesKeyTemplate({ attributes: NOT_DA, keyBits: 256, mode: TPM_ALG.NULL }),
      ];
      for (const t of templates) {
        const c = await create(tpm, srk, t);
        expect(c.publicArea.objectAttributes.noDA).toBe(true);
        expect(c.publicArea.objectAttributes.userWithAuth).toBe(true);
        expect(c.publicArea.type).toBe(t.type);
      }
      // Attribute overrides replace defaults: a policy-only key.
      const policyOnly = eccSigningTemplate({ attributes: { userWithAuth: false, adminWithPolicy: true }, authPolicy: new Uint8Array(32).fill(1) });
      expect(TPMA_OBJECT.toWord(policyOnly.objectAttributes)).toBe(0x2 | 0x10 | 0x20 | 0x80 | 0x40000);
    });

    it('a signing key made here verifies with node:crypto after RSA-PSS signing on the TPM', async () => {
      await tpm.using(createLoaded(tpm, srk, rsaSigningTemplate({ attributes: NOT_DA, scheme: { scheme: TPM_ALG.RSAPSS, details: { hashAlg: TPM_ALG.SHA256 } } })), async (k) => {
        const message = randomBytes(64);
        const r = await tpm.run(Sign, { keyHandle: k }, { digest: sha256(message), inScheme: { scheme: TPM_ALG.NULL }, validation: NULL_TICKET });
        const sig = r.params.signature;
        if (sig.sigAlg !== TPM_ALG.RSAPSS) throw new Error('expected RSAPSS');
        const ok = nodeVerify('sha256', message, { key: publicKeyFromArea(k.publicArea), padding: 6 /* RSA_PKCS1_PSS_PADDING */, saltLength: -2 /* AUTO */ }, sig.signature.sig);
        expect(ok).toBe(true);
        // And node's own signature with another key does not verify (the check can fail).
        const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
        expect(nodeVerify('sha256', message, { key: publicKeyFromArea(k.publicArea), padding: 6, saltLength: -2 }, nodeSign('sha256', message, { key: other.privateKey, padding: 6 }))).toBe(false);
      });
    });
  });
});
