/**
 * Sealing against swtpm and our simulator: a secret sealed to PCR values (and a password)
 * unseals only while the PCRs hold those values and with the right password.
 * The policy digest from the core's calculator is checked three ways: against
 * swtpm's own PolicyGetDigest after replaying the policy in a trial session,
 * against a digest hashed here with node:crypto from the Part 3 formulas, and
 * by unsealing. Salted sessions keep the secret off the wire in both
 * directions (and without them it is visible, so the check can fail).
 * After every failure no object or session is left on the TPM.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { Tpm, type Entity } from '../../src/client/index.js';
import { seal, sealPolicy, unseal } from '../../src/client/seal.js';
import { readCapability } from '../../src/tpm/capability.js';
import { CreatePrimary, PCR_Extend, PCR_Reset, PolicyAuthValue, PolicyGetDigest, PolicyPassword, PolicyPCR, Startup } from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_CAP, TPM_CC, TPM_RH, TPM_SU } from '../../src/tpm/constants.js';
import { ClientError } from '../../src/tpm/errors.js';
import { objectName } from '../../src/tpm/names.js';
import { pcrSelection, readPcrs } from '../../src/tpm/pcr.js';
import { isRc, TPM_RC, TpmError } from '../../src/tpm/rc.js';
import { eccSrkTemplate, rsaSrkTemplate } from '../../src/tpm/templates.js';
import { SwtpmTransport, type SendOptions, type Transport } from '../../src/tpm/transport/index.js';
import type { TPMT_PUBLIC } from '../../src/tpm/types/index.js';
import { describeEachTpm, startTpm, type TpmUnderTest } from '../support/tpm-under-test.js';

const empty = new Uint8Array(0);
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const sha = (alg: string, ...parts: Uint8Array[]): Buffer => {
  const h = createHash(alg);
  for (const p of parts) h.update(p);
  return h.digest();
};
const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};
const contains = (hay: Uint8Array, needle: Uint8Array): boolean => Buffer.from(hay).indexOf(Buffer.from(needle)) >= 0;

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

/** Records every command and response. */
class Probe implements Transport {
  readonly inner: Transport;
  readonly traffic: Uint8Array[] = [];
  sends = 0;
  constructor(inner: Transport) {
    this.inner = inner;
  }
  async send(command: Uint8Array, options?: SendOptions): Promise<Uint8Array> {
    this.sends++;
    this.traffic.push(command.slice());
    const response = await this.inner.send(command, options);
    this.traffic.push(response.slice());
    return response;
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

describeEachTpm('seal and unseal', (kind) => {
  let sw: TpmUnderTest;
  let probe: Probe;
  let tpm: Tpm;
  let srk: Entity;
  let srkPublic: TPMT_PUBLIC;
  let rsaSrk: Entity;
  const PCR = 23; // resettable and extendable at locality 0 (PC Client)
  const sel256 = [pcrSelection(TPM_ALG.SHA256, [PCR])];

  async function primary(template: TPMT_PUBLIC): Promise<[Entity, TPMT_PUBLIC]> {
    const r = await tpm.run(CreatePrimary, { primaryHandle: TPM_RH.OWNER }, { inSensitive: { userAuth: empty, data: empty }, inPublic: template, outsideInfo: empty, creationPCR: [] });
    return [{ handle: r.handles.objectHandle, name: objectName(r.params.outPublic) }, r.params.outPublic];
  }
  async function handlesOf(first: number): Promise<number[]> {
    return (await readCapability(tpm.transport, TPM_CAP.HANDLES, [first])).filter((h) => h >>> 24 === first >>> 24);
  }
  async function expectNoLeaks(): Promise<void> {
    expect(await handlesOf(0x80000000)).toEqual([srk.handle, rsaSrk.handle].sort((a, b) => a - b));
    expect(await handlesOf(0x02000000)).toEqual([]);
    expect(await handlesOf(0x03000000)).toEqual([]);
  }
  async function extend(data: string): Promise<void> {
    await tpm.run(PCR_Extend, { pcrHandle: PCR }, { digests: [{ hashAlg: TPM_ALG.SHA1, digest: sha('sha1', utf8(data)) }, { hashAlg: TPM_ALG.SHA256, digest: sha('sha256', utf8(data)) }] });
  }
  async function expectPolicyFail(p: Promise<unknown>): Promise<void> {
    const e = await rejection(p);
    expect(e).toBeInstanceOf(TpmError);
    expect(isRc(e, TPM_RC.POLICY_FAIL)).toBe(true);
  }

  beforeAll(async () => {
    sw = await startTpm(kind);
    probe = new Probe(new SwtpmTransport({ port: sw.port, ctrlPort: sw.ctrlPort }));
    tpm = new Tpm(probe);
    await tpm.run(Startup, {}, { startupType: TPM_SU.CLEAR });
    [srk, srkPublic] = await primary(eccSrkTemplate());
    [rsaSrk] = await primary(rsaSrkTemplate());
  }, 60_000);
  beforeEach(async () => {
    await tpm.run(PCR_Reset, { pcrHandle: PCR }, {});
  });
  afterAll(async () => {
    await tpm?.close();
    await sw?.stop();
  });

  it('unseals while the PCR holds the sealed value; after an extend TPM_RC_POLICY_FAIL; after a reset again', async () => {
    const secret = new Uint8Array(randomBytes(32));
    const sealed = await seal(tpm, srk, secret, { pcrs: sel256 });
    expect(sealed.publicArea.objectAttributes.noDA).toBe(false); // DA-protected unless asked
    expect(sealed.publicArea.objectAttributes.userWithAuth).toBe(false); // the policy is the only way in
    expect(Buffer.from(sealed.name)).toEqual(Buffer.from(objectName(sealed.publicArea)));
    expect(Buffer.from(await unseal(tpm, srk, sealed))).toEqual(Buffer.from(secret));
    await expectNoLeaks();

    await extend('boot something else');
    await expectPolicyFail(unseal(tpm, srk, sealed));
    await expectNoLeaks();

    await tpm.run(PCR_Reset, { pcrHandle: PCR }, {});
    expect(Buffer.from(await unseal(tpm, srk, sealed))).toEqual(Buffer.from(secret));
    // Another parent cannot load it: the private area's integrity is bound to the parent (TPM_RC_INTEGRITY).
    const e = await rejection(unseal(tpm, rsaSrk, sealed));
    expect(e).toBeInstanceOf(TpmError);
    await expectNoLeaks();
  });

  it('the policy digest equals the TPM\'s PolicyGetDigest in a trial session and the Part 3 formulas hashed here', async () => {
    await extend('measured');
    const values = await readPcrs(tpm.transport, sel256);
    const p = sealPolicy(TPM_ALG.SHA256, sel256, values, 'PolicyAuthValue');
    // Independently: H(H(0 ‖ CC_PolicyPCR ‖ TPML_PCR_SELECTION ‖ H(values)) ‖ CC_PolicyAuthValue) (Part 3 §23.7, §23.17).
    const selection = Buffer.concat([u32(1), Buffer.from([0x00, 0x0b, 3, 0x00, 0x00, 0x80])]);
    const pcrDigest = sha('sha256', values.get(TPM_ALG.SHA256)!.get(PCR)!);
    const d1 = sha('sha256', Buffer.alloc(32), u32(TPM_CC.PolicyPCR), selection, pcrDigest);
    expect(Buffer.from(p.pcrDigest)).toEqual(pcrDigest);
    expect(Buffer.from(p.digest)).toEqual(sha('sha256', d1, u32(TPM_CC.PolicyAuthValue)));

    for (const mode of ['PolicyAuthValue', 'PolicyPassword'] as const) {
      const trial = await tpm.withSession({ type: 'trial' }, async (s) => {
        await tpm.run(PolicyPCR, { policySession: s }, { pcrDigest: empty, pcrs: sel256 });
        await tpm.run(mode === 'PolicyAuthValue' ? PolicyAuthValue : PolicyPassword, { policySession: s }, {});
        return (await tpm.run(PolicyGetDigest, { policySession: s }, {})).params.policyDigest;
      });
      // PolicyPassword extends with CC_PolicyAuthValue: both modes give one digest (Part 3 §23.18).
      expect(Buffer.from(trial)).toEqual(Buffer.from(p.digest));
    }
    const sealed = await seal(tpm, srk, utf8('x'), { pcrs: sel256, password: utf8('pw'), noDA: true });
    expect(Buffer.from(sealed.publicArea.authPolicy)).toEqual(Buffer.from(p.digest));
    await expectNoLeaks();
  });

  for (const passwordPolicy of ['PolicyAuthValue', 'PolicyPassword'] as const) {
    it(`${passwordPolicy}: only the right password unseals (TPM_RC_BAD_AUTH otherwise, noDA object); the PCRs still rule`, async () => {
      const secret = utf8(`sealed with ${passwordPolicy}`);
      const pw = utf8('correct horse');
      const sealed = await seal(tpm, srk, secret, { pcrs: sel256, password: pw, passwordPolicy, noDA: true });
      expect(sealed.policy.passwordPolicy).toBe(passwordPolicy);
      expect(Buffer.from(await unseal(tpm, srk, sealed, { password: pw }))).toEqual(Buffer.from(secret));
      for (const wrong of [utf8('battery staple'), empty]) {
        const e = await rejection(unseal(tpm, srk, sealed, { password: wrong }));
        expect(e).toBeInstanceOf(TpmError);
        expect(isRc(e, TPM_RC.BAD_AUTH)).toBe(true);
        await expectNoLeaks();
      }
      await extend('changed');
      await expectPolicyFail(unseal(tpm, srk, sealed, { password: pw }));
      await expectNoLeaks();
    });
  }

  it('sealed to predicted values in two banks: fails now, unseals once the PCRs reach them', async () => {
    const sel = [pcrSelection(TPM_ALG.SHA1, [PCR]), pcrSelection(TPM_ALG.SHA256, [PCR])];
    const now = await readPcrs(tpm.transport, sel);
    const event = utf8('the next boot stage');
    // PCR_Extend: new = H_bank(old ‖ digest) (Part 1 §17.4.1), predicted here with node:crypto.
    const predicted = new Map([
      [TPM_ALG.SHA1, new Map([[PCR, new Uint8Array(sha('sha1', now.get(TPM_ALG.SHA1)!.get(PCR)!, sha('sha1', event)))]])],
      [TPM_ALG.SHA256, new Map([[PCR, new Uint8Array(sha('sha256', now.get(TPM_ALG.SHA256)!.get(PCR)!, sha('sha256', event)))]])],
    ]);
    const secret = new Uint8Array(randomBytes(128)); // MAX_SYM_DATA
    const sealed = await seal(tpm, srk, secret, { pcrs: sel, pcrValues: predicted });
    await expectPolicyFail(unseal(tpm, srk, sealed));
    await extend('the next boot stage');
    expect(Buffer.from(await unseal(tpm, srk, sealed))).toEqual(Buffer.from(secret));
    await expectNoLeaks();
  });

  it('with a salt key the secret never crosses the wire in clear; without one it does', async () => {
    const secret = new Uint8Array(randomBytes(48));
    const pw = utf8('pw');
    const salt = { key: srk, public: srkPublic };
    let from = probe.traffic.length;
    const sealed = await seal(tpm, srk, secret, { pcrs: sel256, password: pw, noDA: true, salt });
    expect(Buffer.from(await unseal(tpm, srk, sealed, { password: pw, salt }))).toEqual(Buffer.from(secret));
    expect(probe.traffic.slice(from).some((b) => contains(b, secret))).toBe(false);

    from = probe.traffic.length;
    const clear = await seal(tpm, srk, secret, { pcrs: sel256, password: pw, noDA: true });
    expect(Buffer.from(await unseal(tpm, srk, clear, { password: pw }))).toEqual(Buffer.from(secret));
    const seen = probe.traffic.slice(from).filter((b) => contains(b, secret));
    expect(seen.length).toBe(2); // Create's inSensitive, Unseal's outData
    await expectNoLeaks();
  });

  it('arguments refused before anything is sent', async () => {
    const before = probe.sends;
    const code = async (p: Promise<unknown>): Promise<unknown> => ((await rejection(p)) as ClientError).code;
    expect(await code(seal(tpm, srk, utf8('x'), { pcrs: [] }))).toBe('client.argument');
    expect(await code(seal(tpm, srk, utf8('x'), { pcrs: [pcrSelection(TPM_ALG.SHA256, [])] }))).toBe('client.argument');
    expect(await code(seal(tpm, srk, new Uint8Array(129), { pcrs: sel256 }))).toBe('client.argument');
    expect(await code(seal(tpm, srk, empty, { pcrs: sel256 }))).toBe('client.argument');
    expect(await code(seal(tpm, srk, utf8('x'), { pcrs: sel256, password: new Uint8Array(33) }))).toBe('client.argument');
    expect(await code(seal(tpm, srk, utf8('x'), { pcrs: sel256, password: utf8('pw'), passwordPolicy: 'none' }))).toBe('client.argument');
    expect(probe.sends).toBe(before);
  });
});
