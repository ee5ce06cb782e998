import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Tpm, create, createPrimary, eccSigningTemplate, load, hmacKeyTemplate, readPublic, rsaSigningTemplate, sign, verifyWithNode } from '../../src/client/index.js';
import { readCapability } from '../../src/tpm/capability.js';
import { CreatePrimary, FlushContext, Sign, Startup } from '../../src/tpm/commands/index.js';
import { HANDLE_RANGE, TPM_ALG, TPM_CAP, TPM_PT, TPM_RH, TPM_ST, TPM_SU } from '../../src/tpm/constants.js';
import { objectName } from '../../src/tpm/names.js';
import { TPM_RC, TpmError, isRc } from '../../src/tpm/rc.js';
import { passwordAuth, runCommand } from '../../src/tpm/run.js';
import { eccAkTemplate, eccEkTemplate, eccSrkTemplate, rsaEkTemplate, rsaSrkTemplate } from '../../src/tpm/templates.js';
import { inProcessTransport } from '../../src/tpm/transport/index.js';
import { encode } from '../../src/tpm/wire/codec.js';
import { TPMA_OBJECT, TPMS_CREATION_DATA, type TPMT_PUBLIC } from '../../src/tpm/types/index.js';
import { TpmEngine } from '../../src/simulator/index.js';

async function started(engine = new TpmEngine()): Promise<{ engine: TpmEngine; tpm: Tpm; t: ReturnType<typeof inProcessTransport> }> {
  const t = inProcessTransport(engine);
  await runCommand(t, Startup, {}, { startupType: TPM_SU.CLEAR });
  return { engine, tpm: new Tpm(t), t };
}

const uniqueBytes = (p: TPMT_PUBLIC): string => Buffer.from(encode(TPMA_OBJECT, p.objectAttributes)).toString('hex') + Buffer.from(JSON.stringify(p.unique, (_k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v))).toString();
const sha256 = (s: string): Uint8Array => new Uint8Array(createHash('sha256').update(s).digest());

describe('simulator objects: CreatePrimary', () => {
  it('creates the four EK/SRK templates with Names the client checks, creation data and a ticket under the hierarchy proof', async () => {
    const { engine, tpm } = await started();
    const cases: [TPMT_PUBLIC, number, keyof TpmEngine['state']['proofs']][] = [
      [rsaEkTemplate(), TPM_RH.ENDORSEMENT, 'endorsement'],
      [eccEkTemplate(), TPM_RH.ENDORSEMENT, 'endorsement'],
      [rsaSrkTemplate(), TPM_RH.OWNER, 'owner'],
      [eccSrkTemplate(), TPM_RH.OWNER, 'owner'],
    ];
    for (const [template, hierarchy, proof] of cases) {
      const key = await createPrimary(tpm, hierarchy, template, { outsideInfo: Uint8Array.of(1, 2, 3) });
      expect(key.handle).toBe(HANDLE_RANGE.TRANSIENT[0]);
      expect(key.name).toEqual(objectName(key.publicArea));
      const c = key.creation;
      expect(c.data.parentNameAlg).toBe(TPM_ALG.NULL);
      expect(c.data.parentName).toEqual(Uint8Array.of(hierarchy >>> 24, (hierarchy >>> 16) & 0xff, (hierarchy >>> 8) & 0xff, hierarchy & 0xff));
      expect(c.data.outsideInfo).toEqual(Uint8Array.of(1, 2, 3));
      expect(c.data.locality.TPM_LOC_ZERO).toBe(true);
      expect(c.hash).toEqual(new Uint8Array(createHash('sha256').update(encode(TPMS_CREATION_DATA, c.data)).digest()));
      expect(c.ticket.tag).toBe(TPM_ST.CREATION);
      expect(c.ticket.hierarchy).toBe(hierarchy);
      const want = createHmac('sha512', engine.state.proofs[proof]).update(Uint8Array.of(0x80, 0x21)).update(key.name).update(c.hash).digest();
      expect(Buffer.from(c.ticket.digest).equals(want)).toBe(true);
      const again = await readPublic(tpm, key.handle);
      expect(again.name).toEqual(key.name);
      await tpm.flush(key);
    }
  });

  it('answers the Name of the public area it returns: the client accepts it, and refuses it changed in transit', async () => {
    const { t } = await started();
    let corrupt = true;
    const tampering = {
      send: async (bytes: Uint8Array, options?: Parameters<typeof t.send>[1]) => {
        const r = new Uint8Array(await t.send(bytes, options));
        // The Name ends CreatePrimary's parameters, before a password session's 5-byte response authorization.
        if (corrupt && r.length > 64) r[r.length - 6]! ^= 1;
        return r;
      },
      close: () => t.close(),
    };
    const tpm = new Tpm(tampering as typeof t);
    await expect(createPrimary(tpm, TPM_RH.OWNER, eccSrkTemplate())).rejects.toMatchObject({ code: 'client.name' });
    corrupt = false;
    // The client flushed the refused object: the slot is free again, and an honest answer is accepted.
    const key = await createPrimary(tpm, TPM_RH.OWNER, eccSrkTemplate());
    expect(key.handle).toBe(HANDLE_RANGE.TRANSIENT[0]);
  });

  it('gives the same key for the same template and seed (also after a restart), another key in another hierarchy', async () => {
    const { engine, tpm } = await started();
    const a = await createPrimary(tpm, TPM_RH.OWNER, eccSrkTemplate());
    const b = await createPrimary(tpm, TPM_RH.OWNER, eccSrkTemplate());
    expect(b.handle).not.toBe(a.handle);
    expect(uniqueBytes(b.publicArea)).toBe(uniqueBytes(a.publicArea));
    const c = await createPrimary(tpm, TPM_RH.ENDORSEMENT, eccSrkTemplate());
    expect(uniqueBytes(c.publicArea)).not.toBe(uniqueBytes(a.publicArea));
    // Another TPM from the same state: the same seeds, the same key; a fresh TPM: another key.
    const restarted = await started(new TpmEngine({ state: engine.state }));
    const d = await createPrimary(restarted.tpm, TPM_RH.OWNER, eccSrkTemplate());
    expect(uniqueBytes(d.publicArea)).toBe(uniqueBytes(a.publicArea));
    const other = await started();
    const e = await createPrimary(other.tpm, TPM_RH.OWNER, eccSrkTemplate());
    expect(uniqueBytes(e.publicArea)).not.toBe(uniqueBytes(a.publicArea));
  });

  it('holds three objects: the fourth is TPM_RC_OBJECT_MEMORY, a flush frees a slot, GetCapability lists them', async () => {
    const { tpm, t } = await started();
    const keys = [];
    for (let i = 0; i < 3; i++) keys.push(await createPrimary(tpm, TPM_RH.NULL, eccSigningTemplate()));
    expect(keys.map((k) => k.handle)).toEqual([0x80000000, 0x80000001, 0x80000002]);
    await expect(createPrimary(tpm, TPM_RH.NULL, eccSigningTemplate())).rejects.toSatisfy((e) => isRc(e, TPM_RC.OBJECT_MEMORY));
    const listed = await readCapability(t, TPM_CAP.HANDLES, [HANDLE_RANGE.TRANSIENT[0]]);
    expect(listed).toEqual([0x80000000, 0x80000001, 0x80000002]);
    const props = await readCapability(t, TPM_CAP.TPM_PROPERTIES);
    expect(props.find((p) => p.property === TPM_PT.HR_TRANSIENT_AVAIL)?.value).toBe(0);
    await tpm.flush(keys[1]!);
    const k = await createPrimary(tpm, TPM_RH.NULL, eccSigningTemplate());
    expect(k.handle).toBe(0x80000001);
    // Flushing what is not loaded: TPM_RC_HANDLE on the parameter.
    await runCommand(t, FlushContext, {}, { flushHandle: 0x80000001 });
    await expect(runCommand(t, FlushContext, {}, { flushHandle: 0x80000001 })).rejects.toSatisfy((e) => e instanceof TpmError && e.is(TPM_RC.HANDLE) && e.parameter === 1);
    await expect(readPublic(tpm, 0x80000001)).rejects.toSatisfy((e) => isRc(e, TPM_RC.HANDLE));
  });

  it('refuses templates that break the attribute rules, naming the parameter', async () => {
    const { t } = await started();
    const create = (inPublic: TPMT_PUBLIC, data = new Uint8Array(0)) =>
      runCommand(t, CreatePrimary, { primaryHandle: TPM_RH.OWNER }, { inSensitive: { userAuth: new Uint8Array(0), data }, inPublic, outsideInfo: new Uint8Array(0), creationPCR: [] });
    const srk = eccSrkTemplate();
    if (srk.type !== TPM_ALG.ECC) throw new Error('ECC template expected');
    const noSym = { ...srk, parameters: { ...srk.parameters, symmetric: { algorithm: TPM_ALG.NULL, keyBits: null, mode: null } } } as unknown as TPMT_PUBLIC;
    await expect(create(noSym)).rejects.toSatisfy((e) => e instanceof TpmError && e.is(TPM_RC.SYMMETRIC) && e.parameter === 2);
    const signAndDecrypt = { ...srk, objectAttributes: { ...srk.objectAttributes, sign: true } } as TPMT_PUBLIC;
    await expect(create(signAndDecrypt)).rejects.toSatisfy((e) => e instanceof TpmError && e.is(TPM_RC.ATTRIBUTES) && e.parameter === 2);
    await expect(create(srk, Uint8Array.of(1))).rejects.toSatisfy((e) => e instanceof TpmError && e.is(TPM_RC.SIZE) && e.parameter === 1);
    const hmacKey = hmacKeyTemplate();
    const withOrigin = { ...hmacKey, objectAttributes: { ...hmacKey.objectAttributes, sensitiveDataOrigin: true } } as TPMT_PUBLIC;
    await expect(create(withOrigin, Uint8Array.of(1, 2, 3))).rejects.toSatisfy((e) => e instanceof TpmError && e.is(TPM_RC.ATTRIBUTES) && e.parameter === 2);
    // Disabled nothing: the valid template still works afterwards.
    expect((await create(srk)).handles.objectHandle).toBe(HANDLE_RANGE.TRANSIENT[0]);
  });
});

describe('simulator objects: Create and Load', () => {
  it('creates a key under a storage parent whose private blob loads only under that parent, unchanged', async () => {
    const { engine, tpm } = await started();
    const srk = await createPrimary(tpm, TPM_RH.OWNER, eccSrkTemplate());
    const blob = await create(tpm, srk, eccSigningTemplate(), { authValue: Uint8Array.of(5) });
    // Creation data names the parent; the ticket is under the parent's hierarchy.
    expect(blob.creation.data.parentName).toEqual(srk.name);
    expect(blob.creation.ticket.hierarchy).toBe(TPM_RH.OWNER);
    const want = createHmac('sha512', engine.state.proofs.owner).update(Uint8Array.of(0x80, 0x21)).update(blob.name).update(blob.creation.hash).digest();
    expect(Buffer.from(blob.creation.ticket.digest).equals(want)).toBe(true);
    // Two creates give two keys.
    const other = await create(tpm, srk, eccSigningTemplate());
    expect(uniqueBytes(other.publicArea)).not.toBe(uniqueBytes(blob.publicArea));

    const key = await load(tpm, srk, blob, { authValue: Uint8Array.of(5) });
    const rp = await readPublic(tpm, key.handle);
    expect(rp.name).toEqual(blob.name);
    const signature = await sign(tpm, key, sha256('child'));
    expect(verifyWithNode(blob.publicArea, Buffer.from('child'), signature)).toBe(true);
    await tpm.flush(key);

    // A flipped bit of the private blob, another public area, another parent: TPM_RC_INTEGRITY on inPrivate.
    const flipped = blob.privateBlob.slice();
    flipped[flipped.length - 1]! ^= 1;
    const integrity = (e: unknown) => e instanceof TpmError && e.is(TPM_RC.INTEGRITY) && e.parameter === 1;
    await expect(load(tpm, srk, { ...blob, privateBlob: flipped })).rejects.toSatisfy(integrity);
    await expect(load(tpm, srk, { ...blob, publicArea: other.publicArea })).rejects.toSatisfy(integrity);
    await tpm.flush(srk);
    const otherSrk = await createPrimary(tpm, TPM_RH.ENDORSEMENT, eccSrkTemplate());
    await expect(load(tpm, otherSrk, blob)).rejects.toSatisfy(integrity);
    // A parent that is not a storage key: TPM_RC_TYPE on the handle.
    const signer = await createPrimary(tpm, TPM_RH.OWNER, eccSigningTemplate());
    await expect(create(tpm, signer, eccSigningTemplate())).rejects.toSatisfy((e) => e instanceof TpmError && e.is(TPM_RC.TYPE) && e.handle === 1);
  });

  it('wraps RSA children under an RSA parent too, and the same parent re-derived after a restart still loads them', async () => {
    const { engine, tpm } = await started();
    const srk = await createPrimary(tpm, TPM_RH.OWNER, rsaSrkTemplate());
    const blob = await create(tpm, srk, rsaSigningTemplate());
    const restarted = await started(new TpmEngine({ state: engine.state }));
    const srk2 = await createPrimary(restarted.tpm, TPM_RH.OWNER, rsaSrkTemplate());
    const key = await load(restarted.tpm, srk2, blob);
    const signature = await sign(restarted.tpm, key, sha256('rsa child'));
    expect(verifyWithNode(blob.publicArea, Buffer.from('rsa child'), signature)).toBe(true);
  });
});

describe('simulator objects: Sign', () => {
  it('signs with ECDSA and RSASSA keys; node:crypto verifies, and not a changed message', async () => {
    const { tpm } = await started();
    for (const template of [eccSigningTemplate(), rsaSigningTemplate()]) {
      const key = await createPrimary(tpm, TPM_RH.OWNER, template, { authValue: Uint8Array.of(7, 7) });
      const signature = await sign(tpm, key, sha256('hello'));
      expect(signature.sigAlg).toBe(template.type === TPM_ALG.ECC ? TPM_ALG.ECDSA : TPM_ALG.RSASSA);
      expect(verifyWithNode(key.publicArea, Buffer.from('hello'), signature)).toBe(true);
      expect(verifyWithNode(key.publicArea, Buffer.from('hellO'), signature)).toBe(false);
      // The object's authValue is checked.
      await expect(sign(tpm, { ...key, authValue: Uint8Array.of(7, 8) }, sha256('hello'))).rejects.toSatisfy((e) => isRc(e, TPM_RC.BAD_AUTH));
      await tpm.flush(key);
    }
  });

  it('signs with RSAPSS (node:crypto verifies) and HMAC (the HMAC of the caller-supplied key)', async () => {
    const { tpm } = await started();
    // A key whose scheme is RSASSA refuses RSAPSS (CryptSelectSignScheme); a key without a scheme takes it.
    const rsassa = await createPrimary(tpm, TPM_RH.OWNER, rsaSigningTemplate());
    await expect(sign(tpm, rsassa, sha256('pss'), { scheme: TPM_ALG.RSAPSS, details: { hashAlg: TPM_ALG.SHA256 } })).rejects.toSatisfy((e) => isRc(e, TPM_RC.SCHEME));
    await tpm.flush(rsassa);
    const rsa = await createPrimary(tpm, TPM_RH.OWNER, rsaSigningTemplate({ scheme: { scheme: TPM_ALG.NULL } }));
    const pss = await sign(tpm, rsa, sha256('pss'), { scheme: TPM_ALG.RSAPSS, details: { hashAlg: TPM_ALG.SHA256 } });
    expect(pss.sigAlg).toBe(TPM_ALG.RSAPSS);
    expect(verifyWithNode(rsa.publicArea, Buffer.from('pss'), pss)).toBe(true);
    expect(verifyWithNode(rsa.publicArea, Buffer.from('psS'), pss)).toBe(false);
    await tpm.flush(rsa);
    const secret = Uint8Array.from({ length: 32 }, (_, i) => i * 3);
    const template = hmacKeyTemplate();
    const macKey = await createPrimary(tpm, TPM_RH.OWNER, { ...template, objectAttributes: { ...template.objectAttributes, sensitiveDataOrigin: false } } as TPMT_PUBLIC, { sensitiveData: secret });
    const mac = await sign(tpm, macKey, sha256('mac'));
    expect(mac.sigAlg).toBe(TPM_ALG.HMAC);
    const want = createHmac('sha256', secret).update(sha256('mac')).digest();
    const got = mac.sigAlg === TPM_ALG.HMAC ? (mac.signature as { digest: Uint8Array }).digest : new Uint8Array(0);
    expect(Buffer.from(got).equals(want)).toBe(true);
  });

  it('refuses a restricted key without a ticket, a storage key, another scheme and a digest of the wrong size', async () => {
    const { tpm, t } = await started();
    const ak = await createPrimary(tpm, TPM_RH.OWNER, eccAkTemplate());
    await expect(sign(tpm, ak, sha256('x'))).rejects.toSatisfy((e) => e instanceof TpmError && e.is(TPM_RC.TICKET) && e.parameter === 3);
    await tpm.flush(ak);
    const srk = await createPrimary(tpm, TPM_RH.OWNER, eccSrkTemplate());
    await expect(sign(tpm, srk, sha256('x'), { scheme: TPM_ALG.ECDSA, details: { hashAlg: TPM_ALG.SHA256 } })).rejects.toSatisfy(
      (e) => e instanceof TpmError && e.is(TPM_RC.KEY) && e.handle === 1,
    );
    await tpm.flush(srk);
    const key = await createPrimary(tpm, TPM_RH.OWNER, eccSigningTemplate());
    // A scheme other than the key's: TPM_RC_SCHEME on inScheme.
    await expect(sign(tpm, key, new Uint8Array(48), { scheme: TPM_ALG.ECDSA, details: { hashAlg: TPM_ALG.SHA384 } })).rejects.toSatisfy(
      (e) => e instanceof TpmError && e.is(TPM_RC.SCHEME) && e.parameter === 2,
    );
    // Without a ticket the digest must be as long as the scheme's hash (the client would refuse to send it).
    const noTicket = { tag: TPM_ST.HASHCHECK, hierarchy: TPM_RH.NULL, digest: new Uint8Array(0) } as const;
    await expect(
      runCommand(t, Sign, { keyHandle: key.handle }, { digest: new Uint8Array(20), inScheme: { scheme: TPM_ALG.NULL }, validation: noTicket }, { sessions: [passwordAuth()] }),
    ).rejects.toSatisfy((e) => e instanceof TpmError && e.is(TPM_RC.SIZE) && e.parameter === 1);
    const ok = await runCommand(t, Sign, { keyHandle: key.handle }, { digest: sha256('y'), inScheme: { scheme: TPM_ALG.NULL }, validation: noTicket }, { sessions: [passwordAuth()] });
    expect(verifyWithNode(key.publicArea, Buffer.from('y'), ok.params.signature)).toBe(true);
  });
});
