/**
 * Import and duplication through the client against swtpm and our simulator:
 * - keys made with node:crypto imported under ECC and RSA storage keys
 *   (importKey), loaded, and used: the TPM's signatures verify with the
 *   original node:crypto public key, its HMAC equals node:crypto's;
 * - keys created on the TPM with a duplication policy duplicated
 *   (duplicateKey) to another parent and imported there (importDuplicate),
 *   with and without an inner wrapper, under PolicyCommandCode(Duplicate) and
 *   PolicyDuplicationSelect (which refuses any other parent);
 * - duplicated to TPM_RH_NULL and to an external parent (a node:crypto key
 *   loaded with LoadExternal) and unwrapped in software: the private key that
 *   comes out signs what the TPM's public key verifies.
 * Failures are typed, and nothing stays loaded afterwards.
 */
import { createHash, createHmac, createPublicKey, generateKeyPairSync, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { duplicateKey, duplicationPolicy, importDuplicate, importKey, type ImportedObject } from '../../src/client/duplication.js';
import { Tpm, type Entity } from '../../src/client/index.js';
import { withRetry } from '../../src/client/retry.js';
import { readCapability } from '../../src/tpm/capability.js';
import { Create, CreatePrimary, HMAC, Load, LoadExternal, Sign, Startup } from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_CAP, TPM_CC, TPM_ECC, TPM_RH, TPM_ST, TPM_SU } from '../../src/tpm/constants.js';
import { keyFromSensitive, unwrapDuplicate, wrapExternalKey } from '../../src/tpm/duplication.js';
import { ClientError } from '../../src/tpm/errors.js';
import { objectName } from '../../src/tpm/names.js';
import { isRc, TPM_RC, TpmError } from '../../src/tpm/rc.js';
import { eccSrkTemplate, rsaSrkTemplate } from '../../src/tpm/templates.js';
import { SwtpmTransport, type SendOptions, type Transport } from '../../src/tpm/transport/index.js';
import { TPMA_OBJECT, type TPMT_PUBLIC, type TPMT_SIGNATURE } from '../../src/tpm/types/index.js';
import { describeEachTpm, startTpm, type TpmUnderTest } from '../support/tpm-under-test.js';

const empty = new Uint8Array(0);
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const b64u = (b: Uint8Array): string => Buffer.from(b).toString('base64url');
const NULL_TICKET = { tag: TPM_ST.HASHCHECK, hierarchy: TPM_RH.NULL, digest: empty } as const;

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

/** A node:crypto public key from the raw fields of an ECC P-256 or RSA public area. */
function publicKeyOf(pub: TPMT_PUBLIC): KeyObject {
  if (pub.type === TPM_ALG.RSA) return createPublicKey({ key: { kty: 'RSA', n: b64u(pub.unique), e: 'AQAB' }, format: 'jwk' });
  if (pub.type === TPM_ALG.ECC) return createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: b64u(pub.unique.x), y: b64u(pub.unique.y) }, format: 'jwk' });
  throw new Error('unexpected key type');
}

/** A TPM signature as node:crypto takes it (ECDSA r ‖ s for P-256, or the RSA signature). */
function sigBytes(sig: TPMT_SIGNATURE): Buffer {
  if (sig.sigAlg === TPM_ALG.ECDSA) {
    const pad = (b: Uint8Array): Buffer => Buffer.concat([Buffer.alloc(32 - b.length), Buffer.from(b)]);
    return Buffer.concat([pad(sig.signature.signatureR), pad(sig.signature.signatureS)]);
  }
  if (sig.sigAlg === TPM_ALG.RSASSA) return Buffer.from(sig.signature.sig);
  throw new Error('unexpected signature');
}
function verifies(key: KeyObject, message: Uint8Array, sig: TPMT_SIGNATURE): boolean {
  return sig.sigAlg === TPM_ALG.ECDSA
    ? verify('sha256', message, { key, dsaEncoding: 'ieee-p1363' }, sigBytes(sig))
    : verify('sha256', message, key, sigBytes(sig));
}

/** Counts sends, to show refusals happen before anything reaches the TPM. */
class Counter implements Transport {
  readonly inner: Transport;
  sends = 0;
  constructor(inner: Transport) {
    this.inner = inner;
  }
  send(command: Uint8Array, options?: SendOptions): Promise<Uint8Array> {
    this.sends++;
    return this.inner.send(command, options);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/** An ECDSA P-256 signing key that may be duplicated: fixedTPM and fixedParent clear, the given authPolicy. */
function duplicableKey(authPolicy: Uint8Array, extra: { encryptedDuplication?: boolean } = {}): TPMT_PUBLIC {
  return {
    type: TPM_ALG.ECC,
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: TPMA_OBJECT.of({ sensitiveDataOrigin: true, userWithAuth: true, noDA: true, sign: true, ...extra }),
    authPolicy,
    parameters: { symmetric: { algorithm: TPM_ALG.NULL }, scheme: { scheme: TPM_ALG.ECDSA, details: { hashAlg: TPM_ALG.SHA256 } }, curveID: TPM_ECC.NIST_P256, kdf: { scheme: TPM_ALG.NULL } },
    unique: { x: empty, y: empty },
  };
}

describeEachTpm('import and duplication', (kind) => {
  let sw: TpmUnderTest;
  let counter: Counter;
  let tpm: Tpm;
  let srk: Entity;
  let srkPublic: TPMT_PUBLIC;

  async function primary(template: TPMT_PUBLIC): Promise<{ entity: Entity; publicArea: TPMT_PUBLIC }> {
    const r = await tpm.run(CreatePrimary, { primaryHandle: TPM_RH.OWNER }, { inSensitive: { userAuth: empty, data: empty }, inPublic: template, outsideInfo: empty, creationPCR: [] });
    return { entity: { handle: r.handles.objectHandle, name: objectName(r.params.outPublic) }, publicArea: r.params.outPublic };
  }
  /** A second storage parent (RSA SRK), flushed after `fn` (swtpm holds three objects). */
  async function withRsaParent<R>(fn: (p: { entity: Entity; publicArea: TPMT_PUBLIC }) => Promise<R>): Promise<R> {
    const p = await primary(rsaSrkTemplate());
    return tpm.using(p.entity, () => fn(p));
  }
  /** Loads `obj` under `parent`, runs `fn` with it, flushes it. */
  function withLoaded<R>(parent: Entity, obj: ImportedObject | { publicArea: TPMT_PUBLIC; privateArea: Uint8Array }, authValue: Uint8Array, fn: (e: Entity) => Promise<R>): Promise<R> {
    return tpm.using(
      tpm.run(Load, { parentHandle: parent }, { inPrivate: obj.privateArea, inPublic: obj.publicArea }).then((l) => {
        expect(Buffer.from(l.params.name)).toEqual(Buffer.from(objectName(obj.publicArea)));
        return { handle: l.handles.objectHandle, name: objectName(obj.publicArea), authValue };
      }),
      fn,
    );
  }
  async function signWith(key: Entity, message: Uint8Array, scheme: 'ecdsa' | 'rsassa'): Promise<TPMT_SIGNATURE> {
    const digest = new Uint8Array(createHash('sha256').update(message).digest());
    const inScheme = { scheme: scheme === 'ecdsa' ? TPM_ALG.ECDSA : TPM_ALG.RSASSA, details: { hashAlg: TPM_ALG.SHA256 } } as const;
    return (await tpm.run(Sign, { keyHandle: key }, { digest, inScheme, validation: NULL_TICKET })).params.signature;
  }
  /** Creates a duplicable key under the SRK. */
  async function create(template: TPMT_PUBLIC): Promise<{ publicArea: TPMT_PUBLIC; privateArea: Uint8Array }> {
    const c = await tpm.run(Create, { parentHandle: srk }, { inSensitive: { userAuth: empty, data: empty }, inPublic: template, outsideInfo: empty, creationPCR: [] });
    return { publicArea: c.params.outPublic, privateArea: c.params.outPrivate };
  }
  async function handlesOf(first: number): Promise<number[]> {
    return (await readCapability(tpm.transport, TPM_CAP.HANDLES, [first])).filter((h) => h >>> 24 === first >>> 24);
  }
  async function expectNoLeaks(): Promise<void> {
    expect(await handlesOf(0x80000000)).toEqual([srk.handle]);
    expect(await handlesOf(0x02000000)).toEqual([]);
    expect(await handlesOf(0x03000000)).toEqual([]);
  }

  beforeAll(async () => {
    sw = await startTpm(kind);
    // libtpms answers the first authorization of a DA-protected object after Startup with TPM_RC_RETRY
    // (the imported keys are DA-protected by default): the client's retry wrapper resends it.
    counter = new Counter(withRetry(new SwtpmTransport({ port: sw.port, ctrlPort: sw.ctrlPort })));
    tpm = new Tpm(counter);
    await tpm.run(Startup, {}, { startupType: TPM_SU.CLEAR });
    const s = await primary(eccSrkTemplate());
    srk = s.entity;
    srkPublic = s.publicArea;
  }, 60_000);
  afterAll(async () => {
    await tpm?.close();
    await sw?.stop();
  });

  it('importKey: an RSA key under the ECC SRK and an ECC key (inner wrapper) under an RSA SRK sign what node:crypto verifies; an HMAC key computes node:crypto\'s HMAC', async () => {
    const message = utf8('imported keys sign');
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const auth = utf8('imported auth');
    const imported = await importKey(tpm, srk, srkPublic, { type: 'rsa', privateKey: rsa.privateKey }, { authValue: auth });
    expect(imported.publicArea.objectAttributes.fixedTPM).toBe(false);
    const sig = await withLoaded(srk, imported, auth, (k) => signWith(k, message, 'rsassa'));
    expect(verifies(rsa.publicKey, message, sig)).toBe(true);
    expect(verifies(rsa.publicKey, utf8('something else'), sig)).toBe(false);

    const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    await withRsaParent(async (parent) => {
      const k = await importKey(tpm, parent.entity, parent.publicArea, { type: 'ecc', privateKey: ec.privateKey }, { innerWrap: true });
      const s = await withLoaded(parent.entity, k, empty, (e) => signWith(e, message, 'ecdsa'));
      expect(verifies(ec.publicKey, message, s)).toBe(true);
    });

    const hmacKey = new Uint8Array(randomBytes(32));
    const h = await importKey(tpm, srk, srkPublic, { type: 'hmac', key: hmacKey });
    const mac = await withLoaded(srk, h, empty, async (e) => (await tpm.run(HMAC, { handle: e }, { buffer: message, hashAlg: TPM_ALG.SHA256 })).params.outHMAC);
    expect(Buffer.from(mac)).toEqual(createHmac('sha256', hmacKey).update(message).digest());
    await expectNoLeaks();
  });

  it('import failures: a blob for another parent and a modified blob give TpmErrors; a parentPublic that is not the parent\'s is refused before sending', async () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    await withRsaParent(async (parent) => {
      // A key wrapped for the ECC SRK, offered to the RSA SRK: its seed does not decrypt there.
      const blob = wrapExternalKey(srkPublic, { type: 'ecc', privateKey: ec.privateKey });
      const wrongParent = await rejection(importDuplicate(tpm, parent.entity, parent.publicArea, blob));
      expect(wrongParent).toBeInstanceOf(TpmError);
      const tampered = { ...blob, duplicate: blob.duplicate.slice() };
      tampered.duplicate[tampered.duplicate.length - 1]! ^= 1;
      expect(isRc(await rejection(importDuplicate(tpm, srk, srkPublic, tampered)), TPM_RC.INTEGRITY)).toBe(true);

      const before = counter.sends;
      const e = await rejection(importKey(tpm, srk, parent.publicArea, { type: 'ecc', privateKey: ec.privateKey }));
      expect((e as ClientError).code).toBe('client.name');
      expect(counter.sends).toBe(before);
    });
    await expectNoLeaks();
  });

  for (const inner of [false, true] as const) {
    it(`duplicateKey with PolicyCommandCode(Duplicate) to an RSA SRK${inner ? ', inner wrapper made by the TPM' : ''}, importDuplicate there, and the key still signs`, async () => {
      const key = await create(duplicableKey(duplicationPolicy(TPM_ALG.SHA256)));
      await withRsaParent(async (parent) => {
        const blob = await withLoaded(srk, key, empty, (e) => duplicateKey(tpm, e, key.publicArea, parent.entity, { innerWrap: inner }));
        expect(blob.inSymSeed.length).toBe(256); // the seed, RSA-OAEP encrypted to the new parent
        expect(blob.encryptionKey?.length ?? 0).toBe(inner ? 16 : 0);
        const moved = await importDuplicate(tpm, parent.entity, parent.publicArea, blob);
        const message = utf8('signed under the new parent');
        const sig = await withLoaded(parent.entity, moved, empty, (e) => signWith(e, message, 'ecdsa'));
        expect(verifies(publicKeyOf(key.publicArea), message, sig)).toBe(true);
      });
      await expectNoLeaks();
    });
  }

  it('PolicyDuplicationSelect: duplicates to the parent it names; to another parent the policy fails (refused, or TPM_RC_POLICY_FAIL when forced)', async () => {
    await withRsaParent(async (parent) => {
      const key = await create(duplicableKey(duplicationPolicy(TPM_ALG.SHA256, { newParentName: parent.entity.name })));
      await withLoaded(srk, key, empty, async (e) => {
        const blob = await duplicateKey(tpm, e, key.publicArea, parent.entity);
        const moved = await importDuplicate(tpm, parent.entity, parent.publicArea, blob);
        expect(Buffer.from(moved.name)).toEqual(Buffer.from(e.name));

        // Towards the SRK instead: no policy of the key matches, so nothing is sent ...
        const before = counter.sends;
        expect(((await rejection(duplicateKey(tpm, e, key.publicArea, srk))) as ClientError).code).toBe('client.argument');
        expect(counter.sends).toBe(before);
        // ... and forcing PolicyDuplicationSelect for that parent gives another digest: the TPM refuses.
        const forced = await rejection(duplicateKey(tpm, e, key.publicArea, srk, { policy: 'PolicyDuplicationSelect' }));
        expect(isRc(forced, TPM_RC.POLICY_FAIL)).toBe(true);
        // PolicyCommandCode forced on a key whose policy is PolicyDuplicationSelect: another digest, refused too.
        const forcedCc = await rejection(duplicateKey(tpm, e, key.publicArea, parent.entity, { policy: 'PolicyCommandCode' }));
        expect(isRc(forcedCc, TPM_RC.POLICY_FAIL)).toBe(true);
      });
    });
    await expectNoLeaks();
  });

  for (const inner of [false, true] as const) {
    it(`duplicateKey to TPM_RH_NULL${inner ? ' with an inner wrapper' : ''}: unwrapped in software, the private key signs what the TPM's public key verifies`, async () => {
      const key = await create(duplicableKey(duplicationPolicy(TPM_ALG.SHA256)));
      const blob = await withLoaded(srk, key, empty, (e) => duplicateKey(tpm, e, key.publicArea, TPM_RH.NULL, { innerWrap: inner }));
      expect(blob.inSymSeed.length).toBe(0); // no outer wrapper without a parent
      const sensitive = unwrapDuplicate(null, srkPublic, blob);
      const priv = keyFromSensitive(key.publicArea, sensitive);
      const message = utf8('signed in software');
      const sig = sign('sha256', message, { key: priv, dsaEncoding: 'ieee-p1363' });
      expect(verify('sha256', message, { key: publicKeyOf(key.publicArea), dsaEncoding: 'ieee-p1363' }, sig)).toBe(true);
      await expectNoLeaks();
    });
  }

  it('duplicateKey to an external parent (node:crypto RSA key loaded with LoadExternal): unwrapDuplicate with its private key gives the key back', async () => {
    const parentKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const n = new Uint8Array(Buffer.from(String(parentKeys.publicKey.export({ format: 'jwk' }).n), 'base64url'));
    const parentPublic = { ...rsaSrkTemplate(), unique: n } as TPMT_PUBLIC;
    const loaded = await tpm.run(LoadExternal, {}, { inPrivate: null, inPublic: parentPublic, hierarchy: TPM_RH.NULL });
    const external: Entity = { handle: loaded.handles.objectHandle, name: objectName(parentPublic) };
    expect(Buffer.from(loaded.params.name)).toEqual(Buffer.from(external.name));
    await tpm.using(external, async () => {
      const key = await create(duplicableKey(duplicationPolicy(TPM_ALG.SHA256, { newParentName: external.name }), { encryptedDuplication: true }));
      // encryptedDuplication: an inner wrapper is required (Part 3 §13.1).
      await withLoaded(srk, key, empty, async (e) => {
        const noInner = await rejection(duplicateKey(tpm, e, key.publicArea, external));
        expect(isRc(noInner, TPM_RC.SYMMETRIC)).toBe(true);
        const blob = await duplicateKey(tpm, e, key.publicArea, external, { innerWrap: { encryptionKey: new Uint8Array(randomBytes(32)) } });
        const sensitive = unwrapDuplicate(parentKeys.privateKey, parentPublic, blob);
        const priv = keyFromSensitive(key.publicArea, sensitive);
        const jwk = createPublicKey(priv).export({ format: 'jwk' });
        if (key.publicArea.type !== TPM_ALG.ECC) throw new Error('unreachable');
        expect(jwk.x).toBe(b64u(key.publicArea.unique.x));
        expect(jwk.y).toBe(b64u(key.publicArea.unique.y));
        // The wrong external private key cannot open it.
        const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
        expect(() => unwrapDuplicate(other.privateKey, parentPublic, blob)).toThrow();
      });
    });
    await expectNoLeaks();
  });

  it('duplicationPolicy: the two digests of Part 3 §23.11 and §23.15, hashed here', () => {
    const u32 = (v: number): Buffer => Buffer.from([v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff]);
    const cc = createHash('sha256').update(Buffer.alloc(32)).update(u32(TPM_CC.PolicyCommandCode)).update(u32(TPM_CC.Duplicate)).digest();
    expect(Buffer.from(duplicationPolicy(TPM_ALG.SHA256))).toEqual(cc);
    const parentName = objectName(srkPublic);
    const sel = createHash('sha256').update(Buffer.alloc(32)).update(u32(TPM_CC.PolicyDuplicationSelect)).update(parentName).update(Buffer.from([0])).digest();
    expect(Buffer.from(duplicationPolicy(TPM_ALG.SHA256, { newParentName: parentName }))).toEqual(sel);
  });
});
