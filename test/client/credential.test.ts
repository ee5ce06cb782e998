/**
 * activateCredential against swtpm and our simulator: credentials wrapped in software by the
 * core's makeCredential (the verifier's side) for RSA and ECC EKs of the low
 * range (PolicyA) and the high range (PolicyB), opened by the TPM through the
 * client, with the EK's policy session started, satisfied and flushed by the
 * client. Failures (a credential for another Name, a modified blob, a wrong
 * endorsement password, an unsatisfied or unknown policy) give typed errors
 * and leave no object or session behind.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { activateCredential } from '../../src/client/credential.js';
import { createEk } from '../../src/client/ek.js';
import { password, Tpm, type Entity } from '../../src/client/index.js';
import { readCapability } from '../../src/tpm/capability.js';
import { CreatePrimary, FlushContext, HierarchyChangeAuth, PolicyCommandCode, Startup } from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_CAP, TPM_CC, TPM_ECC, TPM_RH, TPM_SU } from '../../src/tpm/constants.js';
import { makeCredential } from '../../src/tpm/credential.js';
import { ClientError, IdentityError } from '../../src/tpm/errors.js';
import { objectName } from '../../src/tpm/names.js';
import { PolicyCalculator } from '../../src/tpm/policy.js';
import { isRc, TPM_RC } from '../../src/tpm/rc.js';
import { eccEkTemplate, ekTemplate, rsaEkTemplate, rsaSrkTemplate } from '../../src/tpm/templates.js';
import { SwtpmTransport } from '../../src/tpm/transport/index.js';
import { TPMA_OBJECT, type TPMT_PUBLIC } from '../../src/tpm/types/index.js';
import { describeEachTpm, startTpm, type TpmUnderTest } from '../support/tpm-under-test.js';

const empty = new Uint8Array(0);
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

describeEachTpm('activateCredential', (kind) => {
  let sw: TpmUnderTest;
  let tpm: Tpm;
  let ak: Entity;
  const akAuth = utf8('ak auth');

  async function primary(hierarchy: number, template: TPMT_PUBLIC, userAuth: Uint8Array = empty): Promise<{ entity: Entity; publicArea: TPMT_PUBLIC }> {
    const r = await tpm.run(CreatePrimary, { primaryHandle: hierarchy }, { inSensitive: { userAuth, data: empty }, inPublic: template, outsideInfo: empty, creationPCR: [] });
    const name = objectName(r.params.outPublic);
    expect(Buffer.from(r.params.name)).toEqual(Buffer.from(name));
    return { entity: { handle: r.handles.objectHandle, name, authValue: userAuth }, publicArea: r.params.outPublic };
  }

  /** Runs `fn` with an EK of `template`, flushed afterwards. */
  async function withKey<R>(hierarchy: number, template: TPMT_PUBLIC, fn: (k: { entity: Entity; publicArea: TPMT_PUBLIC }) => Promise<R>): Promise<R> {
    const k = await primary(hierarchy, template);
    try {
      return await fn(k);
    } finally {
      await tpm.run(FlushContext, {}, { flushHandle: k.entity.handle });
    }
  }

  async function handlesOf(first: number): Promise<number[]> {
    return (await readCapability(tpm.transport, TPM_CAP.HANDLES, [first])).filter((h) => h >>> 24 === first >>> 24);
  }
  /** Only the AK (and the EK of the running test, when given) are loaded; no session is left. */
  async function expectNoLeaks(...extra: number[]): Promise<void> {
    expect(await handlesOf(0x80000000)).toEqual([ak.handle, ...extra].sort((a, b) => a - b));
    expect(await handlesOf(0x02000000)).toEqual([]);
    expect(await handlesOf(0x03000000)).toEqual([]);
  }

  beforeAll(async () => {
    sw = await startTpm(kind);
    tpm = new Tpm(new SwtpmTransport({ port: sw.port, ctrlPort: sw.ctrlPort }));
    await tpm.run(Startup, {}, { startupType: TPM_SU.CLEAR });
    // An AK-shaped key (restricted signing, ECC P-256) in the endorsement hierarchy, with a password; noDA for the wrong-auth cases.
    const template: TPMT_PUBLIC = {
      type: TPM_ALG.ECC,
      nameAlg: TPM_ALG.SHA256,
      objectAttributes: TPMA_OBJECT.of({ fixedTPM: true, fixedParent: true, sensitiveDataOrigin: true, userWithAuth: true, restricted: true, sign: true, noDA: true }),
      authPolicy: empty,
      parameters: { symmetric: { algorithm: TPM_ALG.NULL }, scheme: { scheme: TPM_ALG.ECDSA, details: { hashAlg: TPM_ALG.SHA256 } }, curveID: TPM_ECC.NIST_P256, kdf: { scheme: TPM_ALG.NULL } },
      unique: { x: empty, y: empty },
    };
    ak = (await primary(TPM_RH.ENDORSEMENT, template, akAuth)).entity;
  }, 60_000);
  afterAll(async () => {
    await tpm?.close();
    await sw?.stop();
  });

  for (const [label, template] of [
    ['RSA-2048 EK (L-1, PolicyA)', rsaEkTemplate],
    ['ECC P-256 EK (L-2, PolicyA)', eccEkTemplate],
    ['ECC P-256 EK (H-2, PolicyB = PolicyOR(PolicyA, PolicyC))', () => ekTemplate('H-2')],
    ['ECC P-384 EK (H-3, SHA-384 PolicyB, AES-256)', () => ekTemplate('H-3')],
  ] as const) {
    it(`${label}: the TPM returns the credential makeCredential wrapped for the AK's Name; nothing stays loaded`, async () => {
      await withKey(TPM_RH.ENDORSEMENT, template(), async (ek) => {
        const credential = new Uint8Array(randomBytes(ek.publicArea.nameAlg === TPM_ALG.SHA384 ? 48 : 32));
        const blob = makeCredential(ek.publicArea, ak.name, credential);
        const got = await activateCredential(tpm, ak, ek.entity, blob.credentialBlob, blob.secret, { ekPublic: ek.publicArea });
        expect(Buffer.from(got)).toEqual(Buffer.from(credential));
        await expectNoLeaks(ek.entity.handle);

        // Bound to the AK's Name: a credential for another Name fails the integrity check inside the TPM.
        const forOther = makeCredential(ek.publicArea, ek.entity.name, credential);
        const e1 = await rejection(activateCredential(tpm, ak, ek.entity, forOther.credentialBlob, forOther.secret, { ekPublic: ek.publicArea }));
        expect(isRc(e1, TPM_RC.INTEGRITY)).toBe(true);
        // A modified blob likewise.
        const flipped = blob.credentialBlob.slice();
        flipped[flipped.length - 1]! ^= 0x01;
        const e2 = await rejection(activateCredential(tpm, ak, ek.entity, flipped, blob.secret, { ekPublic: ek.publicArea }));
        expect(isRc(e2, TPM_RC.INTEGRITY)).toBe(true);
        await expectNoLeaks(ek.entity.handle);
      });
    });
  }

  it('without ekPublic, PolicyA is assumed: it works for a low-range EK and fails with TPM_RC_POLICY_FAIL for a PolicyB EK', async () => {
    await withKey(TPM_RH.ENDORSEMENT, rsaEkTemplate(), async (ek) => {
      const blob = makeCredential(ek.publicArea, ak.name, utf8('low range'));
      expect(Buffer.from(await activateCredential(tpm, ak, ek.entity, blob.credentialBlob, blob.secret)).toString()).toBe('low range');
    });
    await withKey(TPM_RH.ENDORSEMENT, ekTemplate('H-2'), async (ek) => {
      const blob = makeCredential(ek.publicArea, ak.name, utf8('high range'));
      const e = await rejection(activateCredential(tpm, ak, ek.entity, blob.credentialBlob, blob.secret));
      expect(isRc(e, TPM_RC.POLICY_FAIL)).toBe(true);
      await expectNoLeaks(ek.entity.handle);
    });
  });

  it('an Ek from createEk (ek.ts) carries its public area: PolicyB is recognized without ekPublic', async () => {
    const ek = await createEk(tpm, { template: 'H-2', persistentHandle: false });
    try {
      const blob = makeCredential(ek.publicArea, ak.name, utf8('from ek.ts'));
      expect(Buffer.from(await activateCredential(tpm, ak, ek, blob.credentialBlob, blob.secret)).toString()).toBe('from ek.ts');
      await expectNoLeaks(ek.handle);
    } finally {
      await tpm.flush(ek);
    }
  });

  it('the endorsement password: a wrong one fails PolicySecret (TPM_RC_BAD_AUTH), the right one works', async () => {
    const endorsementAuth = utf8('endorsement secret');
    await withKey(TPM_RH.ENDORSEMENT, eccEkTemplate(), async (ek) => {
      const blob = makeCredential(ek.publicArea, ak.name, utf8('needs the hierarchy'));
      await tpm.run(HierarchyChangeAuth, { authHandle: TPM_RH.ENDORSEMENT }, { newAuth: endorsementAuth });
      try {
        const wrong = await rejection(activateCredential(tpm, ak, ek.entity, blob.credentialBlob, blob.secret));
        // The hierarchies are not subject to dictionary-attack lockout: BAD_AUTH (reference: IsDAExempted).
        expect(isRc(wrong, TPM_RC.BAD_AUTH)).toBe(true);
        await expectNoLeaks(ek.entity.handle);
        const got = await activateCredential(tpm, ak, ek.entity, blob.credentialBlob, blob.secret, { endorsementAuth, ekPublic: ek.publicArea });
        expect(Buffer.from(got).toString()).toBe('needs the hierarchy');
      } finally {
        await tpm.run(HierarchyChangeAuth, { authHandle: TPM_RH.ENDORSEMENT }, { newAuth: empty }, { sessions: [password(endorsementAuth)] });
      }
    });
  });

  it('a wrong AK password fails the ADMIN authorization (TPM_RC_BAD_AUTH for a noDA key); the policy session is flushed', async () => {
    await withKey(TPM_RH.ENDORSEMENT, rsaEkTemplate(), async (ek) => {
      const blob = makeCredential(ek.publicArea, ak.name, utf8('x'));
      const e = await rejection(activateCredential(tpm, { ...ak, authValue: utf8('not it') }, ek.entity, blob.credentialBlob, blob.secret));
      expect(isRc(e, TPM_RC.BAD_AUTH)).toBe(true);
      await expectNoLeaks(ek.entity.handle);
    });
  });

  it('another policy: refused before sending unless satisfyEkPolicy is given, which then runs in the session the client flushes', async () => {
    // A storage key in the owner hierarchy that only PolicyCommandCode(ActivateCredential) authorizes.
    const policy = new PolicyCalculator(TPM_ALG.SHA256).policyCommandCode({ code: TPM_CC.ActivateCredential }).digest;
    const t = rsaSrkTemplate();
    const custom = { ...t, authPolicy: policy, objectAttributes: { ...t.objectAttributes, userWithAuth: false } } as TPMT_PUBLIC;
    await withKey(TPM_RH.OWNER, custom, async (ek) => {
      const blob = makeCredential(ek.publicArea, ak.name, utf8('custom policy'));
      const refused = await rejection(activateCredential(tpm, ak, ek.entity, blob.credentialBlob, blob.secret, { ekPublic: ek.publicArea }));
      expect(refused).toBeInstanceOf(IdentityError);
      expect((refused as IdentityError).code).toBe('identity.policy');

      let sessionHandle = 0;
      const got = await activateCredential(tpm, ak, ek.entity, blob.credentialBlob, blob.secret, {
        ekPublic: ek.publicArea,
        satisfyEkPolicy: async (session) => {
          sessionHandle = session.handle;
          await tpm.run(PolicyCommandCode, { policySession: session }, { code: TPM_CC.ActivateCredential });
        },
      });
      expect(Buffer.from(got).toString()).toBe('custom policy');
      expect(sessionHandle >>> 24).toBe(0x03);

      // A callback that does not satisfy the policy: TPM_RC_POLICY_FAIL, and the session is still flushed.
      const unsatisfied = await rejection(activateCredential(tpm, ak, ek.entity, blob.credentialBlob, blob.secret, { satisfyEkPolicy: async () => undefined }));
      expect(isRc(unsatisfied, TPM_RC.POLICY_FAIL)).toBe(true);
      // A callback that throws: its error passes through, and the session is flushed.
      const thrown = await rejection(
        activateCredential(tpm, ak, ek.entity, blob.credentialBlob, blob.secret, {
          satisfyEkPolicy: async () => {
            throw new Error('callback failed');
          },
        }),
      );
      expect((thrown as Error).message).toBe('callback failed');
      await expectNoLeaks(ek.entity.handle);
    });
  });

  it('an ekPublic whose Name is not the EK\'s is refused before anything is sent', async () => {
    const e = await rejection(activateCredential(tpm, ak, { handle: 0x80000001, name: ak.name }, new Uint8Array(10), new Uint8Array(10), { ekPublic: rsaEkTemplate() }));
    expect(e).toBeInstanceOf(ClientError);
    expect((e as ClientError).code).toBe('client.name');
    await expectNoLeaks();
  });
});
