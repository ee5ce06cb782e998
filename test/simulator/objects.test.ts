import { createHash, createHmac, generateKeyPairSync } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import {
  Tpm,
  aesKeyTemplate,
  create,
  createLoaded,
  createPrimary,
  eccSigningTemplate,
  load,
  loadExternal,
  hmacKeyTemplate,
  objectChangeAuth,
  readPublic,
  rsaSigningTemplate,
  sign,
  verifyWithNode,
} from '../../src/client/index.js';
import { readCapability } from '../../src/tpm/capability.js';
import { Clear, CreateLoaded, CreatePrimary, EvictControl, FlushContext, HashSequenceStart, LoadExternal, ObjectChangeAuth, ReadPublic as ReadPublicCmd, Sign, Unseal } from '../../src/tpm/commands/index.js';
import { externalObject } from '../../src/tpm/duplication.js';
import type { Transport } from '../../src/tpm/transport/index.js';
import { templateFromPublic } from '../../src/tpm/types/index.js';
import { describeWithSwtpm } from '../support/swtpm.js';
import { HANDLE_RANGE, TPM_ALG, TPM_CAP, TPM_PT, TPM_RH, TPM_ST } from '../../src/tpm/constants.js';
import { objectName } from '../../src/tpm/names.js';
import { TPM_RC, TpmError, isRc } from '../../src/tpm/rc.js';
import { passwordAuth, runCommand } from '../../src/tpm/run.js';
import { eccAkTemplate, eccEkTemplate, eccSrkTemplate, rsaEkTemplate, rsaSrkTemplate } from '../../src/tpm/templates.js';
import { encode } from '../../src/tpm/wire/codec.js';
import { TPMA_OBJECT, TPMS_CREATION_DATA, type TPMT_PUBLIC } from '../../src/tpm/types/index.js';
import { TpmEngine } from '../../src/simulator/index.js';
import { derivePrimaryObject } from '../../src/simulator/keygen.js';
import { scenarioLog } from '../support/scenario.js';
import { startedEngine, swtpmAndSimulator } from '../support/fixture.js';


// The key derivations, counted: the module's own function wrapped, so a cache hit shows as no call.
vi.mock('../../src/simulator/keygen.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/simulator/keygen.js')>();
  return { ...real, derivePrimaryObject: vi.fn(real.derivePrimaryObject) };
});
const derivations = vi.mocked(derivePrimaryObject);

const uniqueBytes = (p: TPMT_PUBLIC): string => Buffer.from(encode(TPMA_OBJECT, p.objectAttributes)).toString('hex') + Buffer.from(JSON.stringify(p.unique, (_k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v))).toString();
const sha256 = (s: string): Uint8Array => new Uint8Array(createHash('sha256').update(s).digest());

describe('simulator objects: CreatePrimary', () => {
  it('creates the four EK/SRK templates with Names the client checks, creation data and a ticket under the hierarchy proof', async () => {
    const { engine, tpm } = await startedEngine();
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
    const { t } = await startedEngine();
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
    const { engine, tpm } = await startedEngine();
    const a = await createPrimary(tpm, TPM_RH.OWNER, eccSrkTemplate());
    const b = await createPrimary(tpm, TPM_RH.OWNER, eccSrkTemplate());
    expect(b.handle).not.toBe(a.handle);
    expect(uniqueBytes(b.publicArea)).toBe(uniqueBytes(a.publicArea));
    const c = await createPrimary(tpm, TPM_RH.ENDORSEMENT, eccSrkTemplate());
    expect(uniqueBytes(c.publicArea)).not.toBe(uniqueBytes(a.publicArea));
    // Another TPM from the same state: the same seeds, the same key; a fresh TPM: another key.
    const restarted = await startedEngine(new TpmEngine({ state: engine.state }));
    const d = await createPrimary(restarted.tpm, TPM_RH.OWNER, eccSrkTemplate());
    expect(uniqueBytes(d.publicArea)).toBe(uniqueBytes(a.publicArea));
    const other = await startedEngine();
    const e = await createPrimary(other.tpm, TPM_RH.OWNER, eccSrkTemplate());
    expect(uniqueBytes(e.publicArea)).not.toBe(uniqueBytes(a.publicArea));
  });

  it('holds three objects: the fourth is TPM_RC_OBJECT_MEMORY, a flush frees a slot, GetCapability lists them', async () => {
    const { tpm, t } = await startedEngine();
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
    // A handle in the handle area: an empty slot is TPM_RC_REFERENCE_H0, one beyond the slots TPM_RC_VALUE (as libtpms).
    await expect(readPublic(tpm, 0x80000001)).rejects.toSatisfy((e) => e instanceof TpmError && e.rc === TPM_RC.REFERENCE_H0);
    await expect(readPublic(tpm, 0x80000005)).rejects.toSatisfy((e) => e instanceof TpmError && e.is(TPM_RC.VALUE) && e.handle === 1);
  });

  it('refuses templates that break the attribute rules, naming the parameter', async () => {
    const { t } = await startedEngine();
    const create = (inPublic: TPMT_PUBLIC, data = new Uint8Array(0)) =>
      runCommand(t, CreatePrimary, { primaryHandle: TPM_RH.OWNER }, { inSensitive: { userAuth: new Uint8Array(0), data }, inPublic, outsideInfo: new Uint8Array(0), creationPCR: [] });
    const srk = eccSrkTemplate();
    if (srk.type !== TPM_ALG.ECC) throw new Error('ECC template expected');
    const noSym = { ...srk, parameters: { ...srk.parameters, symmetric: { algorithm: TPM_ALG.NULL, keyBits: null, mode: null } } } as unknown as TPMT_PUBLIC;
    await expect(create(noSym)).rejects.toSatisfy((e) => e instanceof TpmError && e.is(TPM_RC.SYMMETRIC) && e.parameter === 2);
    const signAndDecrypt = { ...srk, objectAttributes: { ...srk.objectAttributes, sign: true } } as TPMT_PUBLIC;
    await expect(create(signAndDecrypt)).rejects.toSatisfy((e) => e instanceof TpmError && e.is(TPM_RC.ATTRIBUTES) && e.parameter === 2);
    // A primary may take data beside sensitiveDataOrigin (Part 3 §24.1, as libtpms): it joins the derivation, so the key
    // differs from the one without. An ordinary object may not (differential.test.ts compares both with swtpm).
    const plain = await create(srk);
    const withData = await create(srk, Uint8Array.of(1));
    expect(Buffer.from(withData.params.name).equals(Buffer.from(plain.params.name))).toBe(false);
    expect(Buffer.from((await create(srk, Uint8Array.of(1))).params.name).equals(Buffer.from(withData.params.name))).toBe(true);
    for (const h of [plain, withData]) await runCommand(t, FlushContext, {}, { flushHandle: h.handles.objectHandle });
    const hmacKey = hmacKeyTemplate();
    const noOrigin = { ...hmacKey, objectAttributes: { ...hmacKey.objectAttributes, sensitiveDataOrigin: false } } as TPMT_PUBLIC;
    // A keyed hash with neither data nor sensitiveDataOrigin has no key at all.
    await expect(create(noOrigin)).rejects.toSatisfy((e) => e instanceof TpmError && e.is(TPM_RC.ATTRIBUTES) && e.parameter === 2);
    // Disabled nothing: the valid template still works afterwards.
    expect((await create(srk)).handles.objectHandle).toBe(HANDLE_RANGE.TRANSIENT[0]);
  });
});

describe('simulator objects: Create and Load', () => {
  it('creates a key under a storage parent whose private blob loads only under that parent, unchanged', async () => {
    const { engine, tpm } = await startedEngine();
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
    const { engine, tpm } = await startedEngine();
    const srk = await createPrimary(tpm, TPM_RH.OWNER, rsaSrkTemplate());
    const blob = await create(tpm, srk, rsaSigningTemplate());
    const restarted = await startedEngine(new TpmEngine({ state: engine.state }));
    const srk2 = await createPrimary(restarted.tpm, TPM_RH.OWNER, rsaSrkTemplate());
    const key = await load(restarted.tpm, srk2, blob);
    const signature = await sign(restarted.tpm, key, sha256('rsa child'));
    expect(verifyWithNode(blob.publicArea, Buffer.from('rsa child'), signature)).toBe(true);
  });
});

describe('simulator objects: Sign', () => {
  it('signs with ECDSA and RSASSA keys; node:crypto verifies, and not a changed message', async () => {
    const { tpm } = await startedEngine();
    for (const template of [eccSigningTemplate(), rsaSigningTemplate()]) {
      const key = await createPrimary(tpm, TPM_RH.OWNER, template, { authValue: Uint8Array.of(7, 7) });
      const signature = await sign(tpm, key, sha256('hello'));
      expect(signature.sigAlg).toBe(template.type === TPM_ALG.ECC ? TPM_ALG.ECDSA : TPM_ALG.RSASSA);
      expect(verifyWithNode(key.publicArea, Buffer.from('hello'), signature)).toBe(true);
      expect(verifyWithNode(key.publicArea, Buffer.from('hellO'), signature)).toBe(false);
      // The object's authValue is checked.
      // A DA-protected object (noDA clear): a wrong password counts as a failure, TPM_RC_AUTH_FAIL (Part 1 §19.8.6).
      await expect(sign(tpm, { ...key, authValue: Uint8Array.of(7, 8) }, sha256('hello'))).rejects.toSatisfy((e) => isRc(e, TPM_RC.AUTH_FAIL));
      await tpm.flush(key);
    }
  });

  it('signs with RSAPSS (node:crypto verifies) and HMAC (the HMAC of the caller-supplied key)', async () => {
    const { tpm } = await startedEngine();
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
    const { tpm, t } = await startedEngine();
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

/** A sealed data object's template: KEYEDHASH, neither sign nor decrypt, the data from the caller (Part 1 §27.2.4). */
function sealTemplate(): TPMT_PUBLIC {
  return {
    type: TPM_ALG.KEYEDHASH,
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: TPMA_OBJECT.of({ fixedTPM: true, fixedParent: true, userWithAuth: true }),
    authPolicy: new Uint8Array(0),
    parameters: { scheme: { scheme: TPM_ALG.NULL } },
    unique: new Uint8Array(0),
  } as TPMT_PUBLIC;
}

const EMPTY = new Uint8Array(0);

describe('simulator objects: CreateLoaded, LoadExternal, Unseal, ObjectChangeAuth', () => {
  it('CreateLoaded makes the same primary as CreatePrimary (empty outPrivate) and an ordinary key whose blob loads again', async () => {
    const { tpm } = await startedEngine();
    const viaCreatePrimary = await createPrimary(tpm, TPM_RH.OWNER, eccSrkTemplate());
    const primary = await createLoaded(tpm, TPM_RH.OWNER, eccSrkTemplate());
    expect(primary.name).toEqual(viaCreatePrimary.name);
    expect(primary.privateBlob).toEqual(EMPTY);
    expect((await readPublic(tpm, primary.handle)).qualifiedName).toEqual((await readPublic(tpm, viaCreatePrimary.handle)).qualifiedName);
    await tpm.flush(viaCreatePrimary);
    const child = await createLoaded(tpm, primary, eccSigningTemplate(), { authValue: Uint8Array.of(1) });
    const signature = await sign(tpm, child, sha256('created loaded'));
    expect(verifyWithNode(child.publicArea, Buffer.from('created loaded'), signature)).toBe(true);
    await tpm.flush(child);
    const again = await load(tpm, primary, { privateBlob: child.privateBlob, publicArea: child.publicArea }, { authValue: Uint8Array.of(1) });
    expect(again.name).toEqual(child.name);
    // A parent that is not a storage key: TPM_RC_TYPE on the handle.
    await expect(createLoaded(tpm, again, eccSigningTemplate())).rejects.toSatisfy((e) => e instanceof TpmError && e.is(TPM_RC.TYPE) && e.handle === 1);
  });

  it('LoadExternal: a public key anywhere, a key in the clear only in the NULL hierarchy and not fixedTPM; the key signs', async () => {
    const { tpm, t } = await startedEngine();
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const ext = externalObject({ type: 'ecc', privateKey, scheme: { scheme: TPM_ALG.ECDSA, details: { hashAlg: TPM_ALG.SHA256 } } }, { objectAttributes: TPMA_OBJECT.of({ sign: true, userWithAuth: true }) });
    const key = await loadExternal(tpm, ext.publicArea, { sensitive: ext.sensitive });
    expect(key.name).toEqual(objectName(ext.publicArea));
    const signature = await sign(tpm, key, sha256('external'));
    expect(verifyWithNode(ext.publicArea, Buffer.from('external'), signature)).toBe(true);
    await tpm.flush(key);
    const inOwner = runCommand(t, LoadExternal, {}, { inPrivate: ext.sensitive, inPublic: ext.publicArea, hierarchy: TPM_RH.OWNER as never });
    await expect(inOwner).rejects.toSatisfy((e) => e instanceof TpmError && e.is(TPM_RC.HIERARCHY) && e.parameter === 3);
    const fixed = { ...ext.publicArea, objectAttributes: { ...ext.publicArea.objectAttributes, fixedTPM: true, fixedParent: true } } as TPMT_PUBLIC;
    await expect(runCommand(t, LoadExternal, {}, { inPrivate: ext.sensitive, inPublic: fixed, hierarchy: TPM_RH.NULL })).rejects.toSatisfy(
      (e) => e instanceof TpmError && e.is(TPM_RC.ATTRIBUTES) && e.parameter === 2,
    );
    // Another key's scalar: not bound to this public area.
    const other = externalObject({ type: 'ecc', privateKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey });
    await expect(runCommand(t, LoadExternal, {}, { inPrivate: other.sensitive, inPublic: ext.publicArea, hierarchy: TPM_RH.NULL })).rejects.toSatisfy(
      (e) => e instanceof TpmError && e.is(TPM_RC.BINDING),
    );
    // The public part alone may go in the owner hierarchy; with no parent chain here, its QN is its Name (as libtpms).
    const pub = await loadExternal(tpm, fixed, { hierarchy: TPM_RH.OWNER });
    const rp = await readPublic(tpm, pub.handle);
    expect(rp.qualifiedName).toEqual(objectName(fixed));
  });

  it('Unseal returns the sealed data; keys that are not sealed data objects are refused', async () => {
    const { tpm, t } = await startedEngine();
    const srk = await createPrimary(tpm, TPM_RH.OWNER, eccSrkTemplate());
    const secret = Uint8Array.from({ length: 40 }, (_, i) => i);
    const sealed = await create(tpm, srk, sealTemplate(), { sensitiveData: secret, authValue: Uint8Array.of(3) });
    const obj = await load(tpm, srk, sealed, { authValue: Uint8Array.of(3) });
    expect((await tpm.run(Unseal, { itemHandle: obj }, {})).params.outData).toEqual(secret);
    await expect(tpm.run(Unseal, { itemHandle: { ...obj, authValue: Uint8Array.of(4) } }, {})).rejects.toSatisfy((e) => e instanceof TpmError);
    await tpm.flush(obj);
    const signer = await createPrimary(tpm, TPM_RH.NULL, eccSigningTemplate());
    await expect(runCommand(t, Unseal, { itemHandle: signer.handle }, {})).rejects.toSatisfy((e) => e instanceof TpmError && e.is(TPM_RC.TYPE) && e.handle === 1);
    await tpm.flush(signer);
    const mac = await createPrimary(tpm, TPM_RH.NULL, hmacKeyTemplate());
    await expect(runCommand(t, Unseal, { itemHandle: mac.handle }, {})).rejects.toSatisfy((e) => e instanceof TpmError && e.is(TPM_RC.ATTRIBUTES) && e.handle === 1);
  });

  it('ObjectChangeAuth: the new blob loads with the new authValue only; the wrong parent is TPM_RC_TYPE', async () => {
    const { tpm, t } = await startedEngine();
    const srk = await createPrimary(tpm, TPM_RH.OWNER, eccSrkTemplate());
    const blob = await create(tpm, srk, eccSigningTemplate(), { authValue: Uint8Array.of(1, 1) });
    const key = await load(tpm, srk, blob, { authValue: Uint8Array.of(1, 1) });
    const changed = await objectChangeAuth(tpm, key, srk, Uint8Array.of(2, 2, 0, 0));
    // The loaded object keeps its old authValue.
    expect(verifyWithNode(key.publicArea, Buffer.from('old'), await sign(tpm, key, sha256('old')))).toBe(true);
    await tpm.flush(key);
    const reloaded = await load(tpm, srk, changed, { authValue: Uint8Array.of(2, 2) });
    expect(reloaded.name).toEqual(blob.name);
    expect(verifyWithNode(key.publicArea, Buffer.from('new'), await sign(tpm, reloaded, sha256('new')))).toBe(true);
    await expect(sign(tpm, { ...reloaded, authValue: Uint8Array.of(1, 1) }, sha256('old auth'))).rejects.toSatisfy((e) => e instanceof TpmError);
    // Another storage key is not the parent.
    const other = await createPrimary(tpm, TPM_RH.ENDORSEMENT, eccSrkTemplate());
    await expect(
      runCommand(t, ObjectChangeAuth, { objectHandle: reloaded.handle, parentHandle: other.handle }, { newAuth: Uint8Array.of(9) }, { sessions: [passwordAuth(Uint8Array.of(2, 2))] }),
    ).rejects.toSatisfy((e) => e instanceof TpmError && e.is(TPM_RC.TYPE) && e.handle === 2);
  });

  it('caches primary derivations: the second RSA CreatePrimary derives nothing and is identical; a Clear gives another key', async () => {
    const { tpm, t } = await startedEngine();
    const before = derivations.mock.calls.length;
    const first = await createPrimary(tpm, TPM_RH.OWNER, rsaSrkTemplate());
    expect(derivations.mock.calls.length - before).toBe(1);
    await tpm.flush(first);
    // An RSA-2048 derivation searches for two primes; a cached one is a lookup (and new creation data).
    const second = await createPrimary(tpm, TPM_RH.OWNER, rsaSrkTemplate());
    expect(derivations.mock.calls.length - before).toBe(1);
    expect(second.name).toEqual(first.name);
    await tpm.flush(second);
    // The same key with another authValue: the cached derivation must not carry the first caller's authValue.
    const withAuth = await createPrimary(tpm, TPM_RH.NULL, eccSigningTemplate(), { authValue: Uint8Array.of(1) });
    const noAuth = await createPrimary(tpm, TPM_RH.NULL, eccSigningTemplate());
    expect(noAuth.name).toEqual(withAuth.name);
    expect(verifyWithNode(noAuth.publicArea, Buffer.from('a'), await sign(tpm, noAuth, sha256('a')))).toBe(true);
    expect(verifyWithNode(withAuth.publicArea, Buffer.from('b'), await sign(tpm, withAuth, sha256('b')))).toBe(true);
    await expect(sign(tpm, { ...noAuth, authValue: Uint8Array.of(1) }, sha256('c'))).rejects.toSatisfy((e) => e instanceof TpmError);
    await tpm.flush(withAuth);
    await tpm.flush(noAuth);
    await runCommand(t, Clear, { authHandle: TPM_RH.LOCKOUT }, {});
    const derivedBeforeClear = derivations.mock.calls.length;
    const afterClear = await createPrimary(tpm, TPM_RH.OWNER, rsaSrkTemplate());
    // A new owner seed: derived afresh, not served from the cache.
    expect(derivations.mock.calls.length - derivedBeforeClear).toBe(1);
    expect(afterClear.name).not.toEqual(first.name);
  });
});

/** CreateLoaded / LoadExternal / Unseal / ObjectChangeAuth codes on one sequence (raw commands). */
async function objectScenario(t: Transport): Promise<Record<string, unknown>> {
  const { log, step } = scenarioLog();
  const flush = (h: number) => runCommand(t, FlushContext, {}, { flushHandle: h });
  const cl = (parentHandle: number, tpl: TPMT_PUBLIC, data = EMPTY, userAuth = EMPTY) =>
    runCommand(t, CreateLoaded, { parentHandle: parentHandle as never }, { inSensitive: { userAuth, data }, inPublic: templateFromPublic(tpl) });
  const srk = (await cl(TPM_RH.OWNER, eccSrkTemplate()))!.handles.objectHandle;
  const p = await step('CreateLoaded primary', () => cl(TPM_RH.OWNER, eccSrkTemplate()));
  log['CreateLoaded primary outPrivate'] = p?.params.outPrivate.length;
  if (p !== undefined) await flush(p.handles.objectHandle);
  const child = await step('CreateLoaded child', () => cl(srk, eccSigningTemplate()));
  await step('CreateLoaded under a signer', () => cl(child!.handles.objectHandle, eccSigningTemplate()));
  await step('CreateLoaded sign+decrypt restricted', () => cl(srk, { ...eccSigningTemplate(), objectAttributes: TPMA_OBJECT.of({ sign: true, decrypt: true, restricted: true, userWithAuth: true, sensitiveDataOrigin: true }) } as TPMT_PUBLIC));
  await flush(child!.handles.objectHandle);
  // Under a fixedTPM parent, fixedParent without fixedTPM (and the reverse) is TPM_RC_ATTRIBUTES (CreateChecks).
  const signer = eccSigningTemplate();
  await step('CreateLoaded fixedParent without fixedTPM', () => cl(srk, { ...signer, objectAttributes: { ...signer.objectAttributes, fixedTPM: false, fixedParent: true } } as TPMT_PUBLIC));
  await step('CreateLoaded neither fixed', () => cl(srk, { ...signer, objectAttributes: { ...signer.objectAttributes, fixedTPM: false, fixedParent: false } } as TPMT_PUBLIC)).then((r) => r && flush(r.handles.objectHandle));
  const aes = await step('CreateLoaded AES encrypt/decrypt key', () => cl(srk, aesKeyTemplate()));
  if (aes !== undefined) await flush(aes.handles.objectHandle);
  const aesTpl = aesKeyTemplate();
  await step('CreateLoaded restricted AES with sign', () => cl(srk, { ...aesTpl, objectAttributes: { ...aesTpl.objectAttributes, restricted: true } } as TPMT_PUBLIC));
  const sealed = await step('CreateLoaded sealed', () => cl(srk, sealTemplate(), Uint8Array.of(1, 2, 3)));
  const unsealed = await step('Unseal', () => runCommand(t, Unseal, { itemHandle: sealed!.handles.objectHandle }, {}));
  log['Unseal data'] = unsealed === undefined ? undefined : Buffer.from(unsealed.params.outData).toString('hex');
  await step('ObjectChangeAuth too long', () =>
    runCommand(t, ObjectChangeAuth, { objectHandle: sealed!.handles.objectHandle, parentHandle: srk }, { newAuth: new Uint8Array(33).fill(1) }),
  );
  await step('ObjectChangeAuth', () => runCommand(t, ObjectChangeAuth, { objectHandle: sealed!.handles.objectHandle, parentHandle: srk }, { newAuth: Uint8Array.of(7) }));
  await step('ObjectChangeAuth of a primary', () => runCommand(t, ObjectChangeAuth, { objectHandle: srk, parentHandle: srk }, { newAuth: Uint8Array.of(7) }));
  await flush(sealed!.handles.objectHandle);
  await step('Unseal a storage key', () => runCommand(t, Unseal, { itemHandle: srk }, {}));
  const srkPublic = (await runCommand(t, ReadPublicCmd, { objectHandle: srk }, {})).params.outPublic;
  await flush(srk);
  // A hash sequence occupies an object slot but is no object (Part 3 §17): what object commands say about it.
  const seq = (await runCommand(t, HashSequenceStart, {}, { auth: EMPTY, hashAlg: TPM_ALG.SHA256 })).handles.sequenceHandle;
  await step('ReadPublic of a sequence', () => runCommand(t, ReadPublicCmd, { objectHandle: seq }, {}));
  await step('Unseal a sequence', () => runCommand(t, Unseal, { itemHandle: seq }, {}));
  // (ObjectChangeAuth of a sequence: libtpms authorizes the password and answers TPM_RC_TYPE on handle 1, as the
  // handler does; the engine's authorization of a sequence in the ADMIN role answers first, so it is left out here.)
  await step('EvictControl of a sequence', () => runCommand(t, EvictControl, { auth: TPM_RH.OWNER, objectHandle: seq }, { persistentHandle: 0x81000077 }));
  await step('CreateLoaded under a sequence', () => cl(seq, eccSigningTemplate()));
  await flush(seq);
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ext = externalObject({ type: 'ecc', privateKey }, { objectAttributes: TPMA_OBJECT.of({ sign: true, userWithAuth: true }) });
  const le = await step('LoadExternal key', () => runCommand(t, LoadExternal, {}, { inPrivate: ext.sensitive, inPublic: ext.publicArea, hierarchy: TPM_RH.NULL }));
  if (le !== undefined) await flush(le.handles.objectHandle);
  await step('LoadExternal key in owner', () => runCommand(t, LoadExternal, {}, { inPrivate: ext.sensitive, inPublic: ext.publicArea, hierarchy: TPM_RH.OWNER as never }));
  const fixed = { ...ext.publicArea, objectAttributes: { ...ext.publicArea.objectAttributes, fixedTPM: true, fixedParent: true } } as TPMT_PUBLIC;
  await step('LoadExternal fixedTPM key', () => runCommand(t, LoadExternal, {}, { inPrivate: ext.sensitive, inPublic: fixed, hierarchy: TPM_RH.NULL }));
  // nameAlg TPM_ALG_NULL: an object without a Name, public only or with its private part, which then signs.
  const nameless = { ...ext.publicArea, nameAlg: TPM_ALG.NULL } as TPMT_PUBLIC;
  for (const [label, inPrivate] of [['public', null], ['private', ext.sensitive]] as const) {
    const r = await step(`LoadExternal nameless ${label}`, () => runCommand(t, LoadExternal, {}, { inPrivate, inPublic: nameless, hierarchy: TPM_RH.NULL }));
    if (r === undefined) continue;
    const rp = (await runCommand(t, ReadPublicCmd, { objectHandle: r.handles.objectHandle }, {})).params;
    log[`LoadExternal nameless ${label} Names`] = [r.params.name.length, rp.name.length, rp.qualifiedName.length];
    const noTicket = { tag: TPM_ST.HASHCHECK, hierarchy: TPM_RH.NULL, digest: EMPTY } as const;
    if (inPrivate === null) {
      // No sensitive area, so no authValue to prove: TPM_RC_AUTH_UNAVAILABLE before any signing is tried.
      await step('Sign with a public-only key', () =>
        runCommand(t, Sign, { keyHandle: r.handles.objectHandle }, { digest: sha256('public'), inScheme: { scheme: TPM_ALG.NULL }, validation: noTicket }, { sessions: [passwordAuth()] }),
      );
    } else {
      const sig = await step('Sign with a nameless key', () =>
        runCommand(t, Sign, { keyHandle: r.handles.objectHandle }, { digest: sha256('nameless'), inScheme: { scheme: TPM_ALG.NULL }, validation: noTicket }, { sessions: [passwordAuth()] }),
      );
      log['nameless signature verifies'] = sig !== undefined && verifyWithNode(ext.publicArea, Buffer.from('nameless'), sig.params.signature);
    }
    await flush(r.handles.objectHandle);
  }
  const withPolicy = { ...nameless, authPolicy: new Uint8Array(32) } as TPMT_PUBLIC;
  await step('LoadExternal nameless with a policy', () => runCommand(t, LoadExternal, {}, { inPrivate: null, inPublic: withPolicy, hierarchy: TPM_RH.NULL }));
  // A restricted signer in the clear would sign attestations as if the TPM had checked the data.
  const restricted = externalObject(
    { type: 'ecc', privateKey, scheme: { scheme: TPM_ALG.ECDSA, details: { hashAlg: TPM_ALG.SHA256 } } },
    { objectAttributes: TPMA_OBJECT.of({ sign: true, restricted: true, userWithAuth: true }) },
  );
  const lr = await step('LoadExternal restricted key', () => runCommand(t, LoadExternal, {}, { inPrivate: restricted.sensitive, inPublic: restricted.publicArea, hierarchy: TPM_RH.NULL }));
  if (lr !== undefined) await flush(lr.handles.objectHandle);
  const other = externalObject({ type: 'ecc', privateKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey }, { objectAttributes: TPMA_OBJECT.of({ sign: true, userWithAuth: true }) });
  await step('LoadExternal unbound key', () => runCommand(t, LoadExternal, {}, { inPrivate: other.sensitive, inPublic: ext.publicArea, hierarchy: TPM_RH.NULL }));
  const pub = await step('LoadExternal SRK public in owner', () => runCommand(t, LoadExternal, {}, { inPrivate: null, inPublic: srkPublic, hierarchy: TPM_RH.OWNER as never }));
  if (pub !== undefined) {
    const rp = (await runCommand(t, ReadPublicCmd, { objectHandle: pub.handles.objectHandle }, {})).params;
    log['LoadExternal QN is the Name'] = Buffer.from(rp.qualifiedName).equals(Buffer.from(rp.name));
    await flush(pub.handles.objectHandle);
  }
  return log;
}



describeWithSwtpm('simulator object commands agree with swtpm', () => {
  const tpms = swtpmAndSimulator();

  it('CreateLoaded, LoadExternal, Unseal and ObjectChangeAuth give the same codes', async () => {
    const expected = await objectScenario(tpms.swtpm.probe);
    const { probe: sim } = await tpms.simulator();
    expect(await objectScenario(sim)).toEqual(expected);
  });
});
