/**
 * Attestation keys under the EK against swtpm and our simulator: RSA and ECC AKs under the
 * low-range EKs (PolicyA) and under the high-range P-384 EK (PolicyB, a
 * SHA-384 policy session), checked from outside the code under test:
 * ReadPublic's Names, quotes verified with node:crypto, ActivateCredential
 * of a credential made in software for the AK's Name (the EK-AK binding a
 * privacy CA relies on), and the clockInfo of quotes: an AK in the
 * endorsement hierarchy reports ReadClock's resetCount/restartCount and the
 * TPM's firmware version, a key in the owner hierarchy obfuscated ones
 * (Part 3 §18.1; tpm-spec-facts.md §9).
 */
import { randomBytes, verify, type KeyObject } from 'node:crypto';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { checkAkTemplate, createAk, loadAk, type Ak } from '../../src/client/ak.js';
import { createEk, withEkPolicy, type Ek } from '../../src/client/ek.js';
import { password, Tpm } from '../../src/client/index.js';
import { readCapability } from '../../src/tpm/capability.js';
import { ActivateCredential, CreatePrimary, GetCapability, Quote, ReadClock, ReadPublic, Shutdown, Startup } from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_CAP, TPM_GENERATED_VALUE, TPM_PT, TPM_RH, TPM_ST, TPM_SU } from '../../src/tpm/constants.js';
import { makeCredential } from '../../src/tpm/credential.js';
import { IdentityError } from '../../src/tpm/errors.js';
import { objectName } from '../../src/tpm/names.js';
import { pcrSelection } from '../../src/tpm/pcr.js';
import { isRc, TPM_RC, TpmError } from '../../src/tpm/rc.js';
import { publicKeyFromArea } from '../../src/tpm/secret.js';
import { eccAkTemplate, rsaAkTemplate, type EkTemplateId } from '../../src/tpm/templates.js';
import { SwtpmTransport } from '../../src/tpm/transport/index.js';
import { TPMA_OBJECT, TPMS_ATTEST, type TPMT_PUBLIC, type TPMT_SIGNATURE } from '../../src/tpm/types/index.js';
import { encode } from '../../src/tpm/wire/codec.js';
import { describeEachTpm, startTpm, type TpmUnderTest } from '../support/tpm-under-test.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

/** node:crypto verification of a TPMT_SIGNATURE over `message` (RSASSA or ECDSA, SHA-256). */
function verifies(key: KeyObject, message: Uint8Array, sig: TPMT_SIGNATURE): boolean {
  if (sig.sigAlg === TPM_ALG.RSASSA) return verify('sha256', message, key, sig.signature.sig);
  if (sig.sigAlg === TPM_ALG.ECDSA) {
    const size = (key.asymmetricKeyDetails?.namedCurve === 'prime256v1' ? 32 : 48);
    const pad = (v: Uint8Array): Buffer => Buffer.concat([Buffer.alloc(size - v.length), Buffer.from(v)]);
    return verify('sha256', message, { key, dsaEncoding: 'ieee-p1363' }, Buffer.concat([pad(sig.signature.signatureR), pad(sig.signature.signatureS)]));
  }
  return false;
}

describeEachTpm('attestation keys under the EK', (kind) => {
  let sw: TpmUnderTest;
  let transport: SwtpmTransport;
  let tpm: Tpm;
  let firmwareVersion = 0n;

  beforeAll(async () => {
    sw = await startTpm(kind);
    transport = new SwtpmTransport({ port: sw.port, ctrlPort: sw.ctrlPort });
    tpm = new Tpm(transport);
    await tpm.run(Startup, {}, { startupType: TPM_SU.CLEAR });
    // A TPM Reset and a TPM Restart, so that resetCount and restartCount are both non-zero.
    await tpm.run(Shutdown, {}, { shutdownType: TPM_SU.CLEAR });
    await transport.control.init();
    await tpm.run(Startup, {}, { startupType: TPM_SU.CLEAR });
    await tpm.run(Shutdown, {}, { shutdownType: TPM_SU.STATE });
    await transport.control.init();
    await tpm.run(Startup, {}, { startupType: TPM_SU.STATE });
    const r = await tpm.run(GetCapability, {}, { capability: TPM_CAP.TPM_PROPERTIES, property: TPM_PT.FIRMWARE_VERSION_1, propertyCount: 2 });
    const d = r.params.capabilityData;
    if (d.capability !== TPM_CAP.TPM_PROPERTIES) throw new Error('no properties');
    firmwareVersion = (BigInt(d.data[0]!.value) << 32n) | BigInt(d.data[1]!.value);
  });
  afterAll(async () => {
    await tpm?.close();
    await sw?.stop();
  });

  /** Nothing transient may stay behind, on success or failure: no objects, no sessions. */
  afterEach(async () => {
    expect(await readCapability(transport, TPM_CAP.HANDLES, [0x80000000])).toEqual([]);
    expect(await readCapability(transport, TPM_CAP.HANDLES, [0x02000000, 0x03000000])).toEqual([]);
  });

  async function clock(): Promise<{ resetCount: number; restartCount: number }> {
    return (await tpm.run(ReadClock, {}, {})).params.currentTime.clockInfo;
  }

  async function quote(signer: { handle: number; name: Uint8Array }, nonce: Uint8Array): Promise<{ attest: TPMS_ATTEST; bytes: Uint8Array; signature: TPMT_SIGNATURE }> {
    const run = () =>
      tpm.run(Quote, { signHandle: signer }, { qualifyingData: nonce, inScheme: { scheme: TPM_ALG.NULL }, PCRselect: [pcrSelection(TPM_ALG.SHA256, [0, 1, 2, 3, 7])] });
    // libtpms answers TPM_RC_RETRY to the first signature with a freshly loaded RSA key; the command may simply be sent again.
    let r = await run().catch((e: unknown) => (isRc(e, TPM_RC.RETRY) ? undefined : Promise.reject(e)));
    r ??= await run();
    return { attest: r.params.quoted, bytes: encode(TPMS_ATTEST, r.params.quoted), signature: r.params.signature };
  }

  const cases: Array<[EkTemplateId, 'rsa' | 'ecc']> = [
    ['L-1', 'rsa'],
    ['L-2', 'ecc'],
    ['H-3', 'ecc'],
  ];

  for (const [ekId, alg] of cases) {
    it(`${alg.toUpperCase()} AK under the ${ekId} EK: AK attributes, Names the TPM agrees with, a verifiable quote with plain clockInfo, credential activation`, async () => {
      const ek = await createEk(tpm, { template: ekId, persistentHandle: false });
      let ak: Ak | undefined;
      try {
        ak = await createAk(tpm, ek, { alg });
        expect(TPMA_OBJECT.toWord(ak.publicArea.objectAttributes)).toBe(0x00050072);
        expect(ak.publicArea.type).toBe(alg === 'rsa' ? TPM_ALG.RSA : TPM_ALG.ECC);
        const rp = await tpm.run(ReadPublic, { objectHandle: ak.handle }, {});
        expect(hex(rp.params.name)).toBe(hex(ak.name));
        expect(hex(rp.params.name)).toBe(hex(objectName(rp.params.outPublic)));
        expect(hex(rp.params.qualifiedName)).toBe(hex(ak.qualifiedName));

        const nonce = new Uint8Array(randomBytes(32));
        const q = await quote(ak, nonce);
        const now = await clock();
        expect(q.attest.magic).toBe(TPM_GENERATED_VALUE);
        expect(q.attest.type).toBe(TPM_ST.ATTEST_QUOTE);
        expect(hex(q.attest.extraData)).toBe(hex(nonce));
        expect(hex(q.attest.qualifiedSigner)).toBe(hex(ak.qualifiedName));
        expect(verifies(publicKeyFromArea(ak.publicArea), q.bytes, q.signature)).toBe(true);
        // Endorsement hierarchy: nothing obfuscated.
        expect(q.attest.clockInfo.resetCount).toBe(now.resetCount);
        expect(q.attest.clockInfo.restartCount).toBe(now.restartCount);
        expect(now.resetCount).toBeGreaterThan(0);
        expect(now.restartCount).toBeGreaterThan(0);
        expect(q.attest.firmwareVersion).toBe(firmwareVersion);

        // MakeCredential in software for this AK's Name under this EK; the TPM releases it only to the pair.
        const secret = new Uint8Array(randomBytes(16));
        const { credentialBlob, secret: encryptedSecret } = makeCredential(ek.publicArea, ak.name, secret);
        const activated = await withEkPolicy(tpm, ek, {}, async (authorize) =>
          tpm.run(
            ActivateCredential,
            { activateHandle: ak!, keyHandle: ek },
            { credentialBlob, secret: encryptedSecret },
            { sessions: [password(), await authorize()] },
          ),
        );
        expect(hex(activated.params.certInfo)).toBe(hex(secret));
      } finally {
        if (ak !== undefined) await tpm.flush(ak);
        await tpm.flush(ek);
      }
    });
  }

  it('a key in the owner hierarchy quotes with obfuscated resetCount, restartCount and firmwareVersion', async () => {
    const owner = await tpm.run(
      CreatePrimary,
      { primaryHandle: TPM_RH.OWNER },
      { inSensitive: { userAuth: new Uint8Array(0), data: new Uint8Array(0) }, inPublic: rsaAkTemplate(), outsideInfo: new Uint8Array(0), creationPCR: [] },
    );
    const key = { handle: owner.handles.objectHandle, name: objectName(owner.params.outPublic) };
    try {
      const now = await clock();
      const a = await quote(key, new Uint8Array(randomBytes(16)));
      const b = await quote(key, new Uint8Array(randomBytes(16)));
      expect(verifies(publicKeyFromArea(owner.params.outPublic), a.bytes, a.signature)).toBe(true);
      expect(a.attest.clockInfo.resetCount).not.toBe(now.resetCount);
      expect(a.attest.clockInfo.restartCount).not.toBe(now.restartCount);
      expect(a.attest.firmwareVersion).not.toBe(firmwareVersion);
      // Obfuscated, not random: the same key hides the same values the same way.
      expect(b.attest.clockInfo.resetCount).toBe(a.attest.clockInfo.resetCount);
      expect(b.attest.clockInfo.restartCount).toBe(a.attest.clockInfo.restartCount);
      expect(b.attest.firmwareVersion).toBe(a.attest.firmwareVersion);
    } finally {
      await tpm.flush(key.handle);
    }
  });

  it('loadAk loads a saved AK again under the same EK (same Name, same key); a tampered blob is refused, nothing leaks', async () => {
    const ek: Ek = await createEk(tpm, { template: 'L-2', persistentHandle: false });
    try {
      const made = await createAk(tpm, ek, { alg: 'ecc' });
      await tpm.flush(made);
      const again = await loadAk(tpm, ek, { publicArea: made.publicArea, privateBlob: made.privateBlob });
      try {
        expect(hex(again.name)).toBe(hex(made.name));
        const q = await quote(again, new Uint8Array(8));
        expect(verifies(publicKeyFromArea(made.publicArea), q.bytes, q.signature)).toBe(true);
      } finally {
        await tpm.flush(again);
      }
      const tampered = made.privateBlob.slice();
      tampered[tampered.length - 1]! ^= 1;
      const e = await rejection(loadAk(tpm, ek, { publicArea: made.publicArea, privateBlob: tampered }));
      expect(e).toBeInstanceOf(TpmError);
      expect(isRc(e, TPM_RC.INTEGRITY)).toBe(true);
      // A public area of another AK with this private part: the TPM's integrity check fails too.
      const other = { ...made.publicArea, unique: { x: new Uint8Array(32).fill(1), y: new Uint8Array(32).fill(2) } } as TPMT_PUBLIC;
      expect(await rejection(loadAk(tpm, ek, { publicArea: other, privateBlob: made.privateBlob }))).toBeInstanceOf(TpmError);
    } finally {
      await tpm.flush(ek);
    }
  });

  it('refuses templates that are not AKs before sending, and a wrong endorsement auth fails in PolicySecret without leaking the session', async () => {
    const ek = await createEk(tpm, { template: 'L-1', persistentHandle: false });
    try {
      const decrypting = { ...rsaAkTemplate(), objectAttributes: TPMA_OBJECT.of({ ...rsaAkTemplate().objectAttributes, decrypt: true }) };
      const unrestricted = { ...eccAkTemplate(), objectAttributes: TPMA_OBJECT.of({ ...eccAkTemplate().objectAttributes, restricted: false }) };
      for (const template of [decrypting, unrestricted]) {
        const e = await rejection(createAk(tpm, ek, { template }));
        expect((e as IdentityError).code).toBe('identity.argument');
      }
      expect(() => checkAkTemplate({ ...rsaAkTemplate(), type: TPM_ALG.KEYEDHASH, parameters: { scheme: { scheme: TPM_ALG.NULL } }, unique: new Uint8Array(0) } as TPMT_PUBLIC)).toThrow(IdentityError);
      const bad = await rejection(createAk(tpm, ek, { endorsementAuth: new TextEncoder().encode('not the endorsement auth') }));
      expect(bad).toBeInstanceOf(TpmError);
      expect(isRc(bad, TPM_RC.BAD_AUTH)).toBe(true);
    } finally {
      await tpm.flush(ek);
    }
  });
});
