import { createHash, createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { verifyCertify, verifyCertifyCreation, verifyQuote, verifyTime } from '../../src/attest/quote.js';
import {
  Tpm,
  certify,
  certifyCreation,
  createPrimary,
  getTime,
  hmacKeyTemplate,
  nvCertify,
  nvDefine,
  nvReadPublic,
  nvWrite,
  pcrExtend,
  persist,
  quote,
  rsaSigningTemplate,
  verifyWithNode,
  type PrimaryKey,
} from '../../src/client/index.js';
import { CertifyCreation, Certify, FlushContext, GetTime, NV_Certify, NV_UndefineSpace, Quote } from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_RH, TPM_ST } from '../../src/tpm/constants.js';
import { handleName, nvName, qualifiedName } from '../../src/tpm/names.js';
import { pcrSelection } from '../../src/tpm/pcr.js';
import { TPM_RC, TpmError, rcForHandle, rcForParameter } from '../../src/tpm/rc.js';
import { eccAkTemplate, eccSrkTemplate, rsaAkTemplate } from '../../src/tpm/templates.js';
import { TPMS_CREATION_DATA, TPMS_ATTEST } from '../../src/tpm/types/index.js';
import { encode } from '../../src/tpm/wire/codec.js';
import { TpmEngine } from '../../src/simulator/index.js';
import { createSimulatorState } from '../../src/simulator/state.js';
import { describeWithSwtpm } from '../support/swtpm.js';
import { startedEngine, swtpmAndSimulator } from '../support/fixture.js';


function challenge(): { nonce: Uint8Array; issuedAt: number; expiresAt: number } {
  const now = Date.now();
  return { nonce: new Uint8Array(randomBytes(32)), issuedAt: now, expiresAt: now + 60_000 };
}

const qn = (hierarchy: number, key: PrimaryKey): Uint8Array => qualifiedName(handleName(hierarchy), key.name);
const failed = (v: { checks: readonly { check: string; outcome: string }[] }): string[] => v.checks.filter((c) => c.outcome === 'fail').map((c) => c.check);

/** KDFa (SP 800-108 counter mode, Part 1 §11.4.10.2) with node:crypto's HMAC, for one block. */
function kdfaSha512(key: Uint8Array, label: string, context: Uint8Array, bits: number): Uint8Array {
  const h = createHmac('sha512', key);
  h.update(Uint8Array.of(0, 0, 0, 1)).update(Buffer.from(`${label}\0`, 'latin1')).update(context);
  h.update(Uint8Array.of(bits >>> 24, (bits >>> 16) & 0xff, (bits >>> 8) & 0xff, bits & 0xff));
  return new Uint8Array(h.digest()).subarray(0, bits / 8);
}

describe('simulator attestation: Quote', () => {
  it('quotes the selected PCRs with an endorsement-hierarchy AK: verifyQuote accepts, clockInfo is the TPM clock in the clear', async () => {
    const { engine, tpm } = await startedEngine();
    await pcrExtend(tpm, 7, [{ hashAlg: TPM_ALG.SHA256, digest: new Uint8Array(32).fill(0xaa) }]);
    const ak = await createPrimary(tpm, TPM_RH.ENDORSEMENT, eccAkTemplate());
    const c = challenge();
    const q = await quote(tpm, ak, [pcrSelection(TPM_ALG.SHA256, [0, 1, 7]), pcrSelection(TPM_ALG.SHA1, [7])], c.nonce);
    const v = verifyQuote({ attest: q.attestBytes, signature: q.signature, pcrValues: q.pcrValues }, { ak: ak.publicArea, akQualifiedName: qn(TPM_RH.ENDORSEMENT, ak), challenge: c, now: Date.now() });
    expect(failed(v)).toEqual([]);
    expect(v.accepted).toBe(true);
    expect(q.attest.magic).toBe(0xff544347);
    expect(q.attest.qualifiedSigner).toEqual(qn(TPM_RH.ENDORSEMENT, ak));
    // PCR 7 of SHA-256 after one extend, recomputed with node:crypto.
    const pcr7 = createHash('sha256').update(new Uint8Array(32)).update(new Uint8Array(32).fill(0xaa)).digest();
    expect(Buffer.from(q.pcrValues.get(TPM_ALG.SHA256)!.get(7)!).equals(pcr7)).toBe(true);
    const clock = engine.state.clock;
    expect(q.attest.clockInfo.resetCount).toBe(clock.resetCount);
    expect(q.attest.clockInfo.restartCount).toBe(clock.restartCount);
    expect(q.attest.firmwareVersion).toBe(0x0000_0001_0000_0000n);
    // The signature covers every byte: another nonce, another PCR value or a changed byte fails.
    const other = verifyQuote({ attest: q.attestBytes, signature: q.signature, pcrValues: q.pcrValues }, { ak: ak.publicArea, challenge: challenge(), now: Date.now() });
    expect(failed(other)).toContain('quote.nonce');
    const changed = q.attestBytes.slice();
    changed[changed.length - 1]! ^= 1;
    expect(failed(verifyQuote({ attest: changed, signature: q.signature, pcrValues: q.pcrValues }, { ak: ak.publicArea, challenge: c, now: Date.now() }))).toContain('quote.signature');
    const values = new Map([...q.pcrValues].map(([bank, m]) => [bank, new Map(m)]));
    values.get(TPM_ALG.SHA256)!.set(0, new Uint8Array(32).fill(1));
    expect(failed(verifyQuote({ attest: q.attestBytes, signature: q.signature, pcrValues: values }, { ak: ak.publicArea, challenge: c, now: Date.now() }))).toContain('quote.pcr-digest');
  });

  it('obfuscates resetCount, restartCount and firmwareVersion for an owner-hierarchy AK (KDFa "OBFUSCATE" over shProof), RSASSA signature verifies', async () => {
    const { engine, tpm } = await startedEngine();
    const ak = await createPrimary(tpm, TPM_RH.OWNER, rsaAkTemplate());
    const c = challenge();
    const q = await quote(tpm, ak, [pcrSelection(TPM_ALG.SHA256, [0])], c.nonce);
    expect(q.signature.sigAlg).toBe(TPM_ALG.RSASSA);
    expect(verifyWithNode(ak.publicArea, q.attestBytes, q.signature)).toBe(true);
    const v = verifyQuote({ attest: q.attestBytes, signature: q.signature, pcrValues: q.pcrValues }, { ak: ak.publicArea, akQualifiedName: qn(TPM_RH.OWNER, ak), challenge: c, now: Date.now() });
    expect(failed(v)).toEqual([]);
    const o = kdfaSha512(engine.state.proofs.owner, 'OBFUSCATE', qn(TPM_RH.OWNER, ak), 128);
    const view = new DataView(o.buffer, o.byteOffset, 16);
    const second = view.getBigUint64(8, true);
    const clock = engine.state.clock;
    expect(q.attest.firmwareVersion).toBe((0x0000_0001_0000_0000n + view.getBigUint64(0, true)) & 0xffff_ffff_ffff_ffffn);
    expect(q.attest.clockInfo.resetCount).toBe((clock.resetCount + Number(second >> 32n)) >>> 0);
    expect(q.attest.clockInfo.restartCount).toBe((clock.restartCount + Number(second & 0xffff_ffffn)) >>> 0);
  });

  it('selects only allocated PCRs, signs with an explicit matching scheme, and refuses non-signing keys, other schemes and TPM_RH_NULL', async () => {
    // A TPM whose SHA-384 bank is not allocated.
    const state = createSimulatorState();
    state.pcrAllocation = state.pcrAllocation.filter((b) => b.hashAlg !== TPM_ALG.SHA384);
    const { tpm } = await startedEngine(new TpmEngine({ state }));
    const ak = await createPrimary(tpm, TPM_RH.ENDORSEMENT, eccAkTemplate());
    // A bank the TPM implements but has not allocated comes back deselected (FilterPcr)…
    const quote = (PCRselect: ReturnType<typeof pcrSelection>[]) => tpm.run(Quote, { signHandle: ak }, { qualifyingData: new Uint8Array(0), inScheme: { scheme: TPM_ALG.ECDSA, details: { hashAlg: TPM_ALG.SHA256 } }, PCRselect });
    const r = await quote([pcrSelection(TPM_ALG.SHA384, [1]), pcrSelection(TPM_ALG.SHA256, [2])]);
    // …one whose hash it does not implement is refused at unmarshaling, as libtpms does.
    await expect(quote([pcrSelection(TPM_ALG.SM3_256, [1])])).rejects.toMatchObject({ rc: rcForParameter(TPM_RC.HASH, 3) });
    const attest = r.params.quoted;
    expect(attest.type).toBe(TPM_ST.ATTEST_QUOTE);
    if (attest.type !== TPM_ST.ATTEST_QUOTE) return;
    expect([...attest.attested.pcrSelect[0]!.pcrSelect]).toEqual([0, 0, 0]);
    expect([...attest.attested.pcrSelect[1]!.pcrSelect]).toEqual([4, 0, 0]);
    expect(attest.attested.pcrDigest).toEqual(new Uint8Array(createHash('sha256').update(new Uint8Array(32)).digest()));
    expect(verifyWithNode(ak.publicArea, encode(TPMS_ATTEST, attest), r.params.signature)).toBe(true);
    const srk = await createPrimary(tpm, TPM_RH.OWNER, eccSrkTemplate());
    const none = { qualifyingData: new Uint8Array(0), inScheme: { scheme: TPM_ALG.NULL } as const, PCRselect: [pcrSelection(TPM_ALG.SHA256, [0])] };
    await expect(tpm.run(Quote, { signHandle: srk }, none)).rejects.toMatchObject({ rc: rcForHandle(TPM_RC.KEY, 1) });
    await expect(tpm.run(Quote, { signHandle: TPM_RH.NULL }, none)).rejects.toMatchObject({ rc: rcForParameter(TPM_RC.SCHEME, 2) });
    await expect(tpm.run(Quote, { signHandle: ak }, { ...none, inScheme: { scheme: TPM_ALG.ECDSA, details: { hashAlg: TPM_ALG.SHA384 } } })).rejects.toMatchObject({ rc: rcForParameter(TPM_RC.SCHEME, 2) });
  });
});

describe('simulator attestation: persistent signers', () => {
  it('a persistent AK in the endorsement hierarchy quotes with plain counters; a persistent owner AK with obfuscated ones', async () => {
    const { engine, tpm } = await startedEngine();
    const ek = await persist(tpm, await createPrimary(tpm, TPM_RH.ENDORSEMENT, eccAkTemplate()), 0x81010020);
    const ok = await persist(tpm, await createPrimary(tpm, TPM_RH.OWNER, eccAkTemplate()), 0x81000020);
    await tpm.run(FlushContext, {}, { flushHandle: 0x80000000 });
    await tpm.run(FlushContext, {}, { flushHandle: 0x80000001 });
    const c = challenge();
    const q = await quote(tpm, ek, [pcrSelection(TPM_ALG.SHA256, [0])], c.nonce);
    expect(failed(verifyQuote({ attest: q.attestBytes, signature: q.signature, pcrValues: q.pcrValues }, { ak: ek.publicArea, challenge: c, now: Date.now() }))).toEqual([]);
    expect(q.attest.clockInfo.resetCount).toBe(engine.state.clock.resetCount);
    const r = await quote(tpm, ok, [pcrSelection(TPM_ALG.SHA256, [0])], c.nonce);
    expect(verifyWithNode(ok.publicArea, r.attestBytes, r.signature)).toBe(true);
    expect(r.attest.firmwareVersion).not.toBe(0x0000_0001_0000_0000n);
  });
});

describe('simulator attestation: Certify, CertifyCreation, GetTime, NV_Certify', () => {
  it('Certify: the attested Name and Qualified Name are the object\'s; verifyCertify accepts', async () => {
    const { tpm } = await startedEngine();
    const ak = await createPrimary(tpm, TPM_RH.ENDORSEMENT, eccAkTemplate());
    const srk = await createPrimary(tpm, TPM_RH.OWNER, eccSrkTemplate());
    const nonce = new Uint8Array(randomBytes(20));
    const a = await certify(tpm, srk, ak, nonce);
    const v = verifyCertify({ attest: a.attestBytes, signature: a.signature }, { ak: ak.publicArea, object: srk.publicArea, objectQualifiedName: qn(TPM_RH.OWNER, srk), qualifyingData: nonce, requiredAttributes: { fixedTPM: true, restricted: true, decrypt: true } });
    expect(failed(v)).toEqual([]);
    expect(v.accepted).toBe(true);
    // Certified with the wrong object expectation: the Name check fails.
    const w = verifyCertify({ attest: a.attestBytes, signature: a.signature }, { ak: ak.publicArea, object: ak.publicArea, qualifyingData: nonce });
    expect(failed(w)).toContain('certify.name');
  });

  it('CertifyCreation: checks the creation ticket (TPM_RC_TICKET for another hash), verifyCertifyCreation accepts the creation data', async () => {
    const { tpm } = await startedEngine();
    const ak = await createPrimary(tpm, TPM_RH.ENDORSEMENT, eccAkTemplate());
    const srk = await createPrimary(tpm, TPM_RH.OWNER, eccSrkTemplate(), { outsideInfo: Uint8Array.of(9) });
    const nonce = new Uint8Array(randomBytes(16));
    const a = await certifyCreation(tpm, ak, srk, { creationHash: srk.creation.hash, creationTicket: srk.creation.ticket }, nonce);
    const v = verifyCertifyCreation({ attest: a.attestBytes, signature: a.signature }, { ak: ak.publicArea, object: srk.publicArea, creationData: encode(TPMS_CREATION_DATA, srk.creation.data), qualifyingData: nonce });
    expect(failed(v)).toEqual([]);
    const otherHash = srk.creation.hash.slice();
    otherHash[0]! ^= 1;
    await expect(
      tpm.run(CertifyCreation, { signHandle: ak, objectHandle: srk }, { qualifyingData: nonce, creationHash: otherHash, inScheme: { scheme: TPM_ALG.NULL }, creationTicket: srk.creation.ticket }),
    ).rejects.toMatchObject({ rc: rcForParameter(TPM_RC.TICKET, 4) });
  });

  it('GetTime: the attested clock is never obfuscated; verifyTime accepts; TPM_RH_NULL gives a NULL signature', async () => {
    let ms = 5_000;
    const { engine, tpm } = await startedEngine(new TpmEngine({ now: () => ms }));
    ms += 1234;
    const ak = await createPrimary(tpm, TPM_RH.OWNER, eccAkTemplate());
    const nonce = new Uint8Array(randomBytes(16));
    const t = await getTime(tpm, ak, nonce);
    const v = verifyTime({ attest: t.attestBytes, signature: t.signature }, { ak: ak.publicArea, qualifyingData: nonce });
    expect(failed(v)).toEqual([]);
    const info = t.attest.attested;
    expect(info.time.time).toBe(1234n);
    expect(info.time.clockInfo.clock).toBe(engine.state.clock.clock);
    expect(info.time.clockInfo.resetCount).toBe(engine.state.clock.resetCount);
    expect(info.firmwareVersion).toBe(0x0000_0001_0000_0000n);
    // The header's counters are obfuscated for this owner key, the attested ones are not.
    expect(t.attest.clockInfo.resetCount).not.toBe(engine.state.clock.resetCount);
    const unsigned = await tpm.run(GetTime, { privacyAdminHandle: TPM_RH.ENDORSEMENT, signHandle: TPM_RH.NULL }, { qualifyingData: nonce, inScheme: { scheme: TPM_ALG.NULL } });
    expect(unsigned.params.signature.sigAlg).toBe(TPM_ALG.NULL);
    expect(unsigned.params.timeInfo.qualifiedSigner).toEqual(handleName(TPM_RH.NULL));
  });

  it('NV_Certify: a range of the data, or (size 0, offset 0) a digest of the whole index; access checks as NV_Read', async () => {
    const { tpm } = await startedEngine();
    const ak = await createPrimary(tpm, TPM_RH.ENDORSEMENT, eccAkTemplate());
    const nv = await nvDefine(tpm, { index: 0x01500010, size: 16 });
    const data = Uint8Array.from({ length: 16 }, (_, i) => i * 3);
    const unwritten = tpm.run(NV_Certify, { signHandle: ak, authHandle: nv, nvIndex: nv }, { qualifyingData: new Uint8Array(0), inScheme: { scheme: TPM_ALG.NULL }, size: 4, offset: 0 });
    await expect(unwritten).rejects.toMatchObject({ rc: TPM_RC.NV_UNINITIALIZED });
    await nvWrite(tpm, nv, data);
    const part = await nvCertify(tpm, ak, nv, { offset: 4, size: 8, qualifyingData: Uint8Array.of(1, 2) });
    expect(verifyWithNode(ak.publicArea, part.attestBytes, part.signature)).toBe(true);
    expect(part.attest.type).toBe(TPM_ST.ATTEST_NV);
    if (part.attest.type === TPM_ST.ATTEST_NV) {
      expect(part.attest.attested.nvContents).toEqual(data.subarray(4, 12));
      expect(part.attest.attested.offset).toBe(4);
      expect(part.attest.attested.indexName).toEqual(nvName((await nvReadPublic(tpm, nv.handle)).publicArea));
    }
    const whole = await tpm.run(NV_Certify, { signHandle: ak, authHandle: nv, nvIndex: nv }, { qualifyingData: new Uint8Array(0), inScheme: { scheme: TPM_ALG.NULL }, size: 0, offset: 0 });
    const attest = whole.params.certifyInfo;
    expect(attest.type).toBe(TPM_ST.ATTEST_NV_DIGEST);
    if (attest.type === TPM_ST.ATTEST_NV_DIGEST) expect(Buffer.from(attest.attested.nvDigest).equals(createHash('sha256').update(data).digest())).toBe(true);
    expect(verifyWithNode(ak.publicArea, encode(TPMS_ATTEST, attest), whole.params.signature)).toBe(true);
    await expect(tpm.run(NV_Certify, { signHandle: ak, authHandle: nv, nvIndex: nv }, { qualifyingData: new Uint8Array(0), inScheme: { scheme: TPM_ALG.NULL }, size: 8, offset: 12 })).rejects.toMatchObject({ rc: TPM_RC.NV_RANGE });
    await expect(tpm.run(NV_Certify, { signHandle: ak, authHandle: TPM_RH.OWNER, nvIndex: nv }, { qualifyingData: new Uint8Array(0), inScheme: { scheme: TPM_ALG.NULL }, size: 1, offset: 0 })).rejects.toMatchObject({ rc: TPM_RC.NV_AUTHORIZATION });
  });
});

/**
 * Response codes of the attestation commands, logged on swtpm (libtpms) and
 * on the engine: the logs must agree.
 */
async function attestScenario(tpm: Tpm): Promise<string[]> {
  const log: string[] = [];
  const step = async (label: string, f: () => Promise<unknown>): Promise<void> => {
    try {
      await f();
      log.push(`${label}: ok`);
    } catch (e) {
      log.push(`${label}: ${e instanceof TpmError ? `rc 0x${e.rc.toString(16)}` : String(e)}`);
    }
  };
  const ak = await createPrimary(tpm, TPM_RH.ENDORSEMENT, eccAkTemplate());
  const srk = await createPrimary(tpm, TPM_RH.OWNER, eccSrkTemplate());
  const NULL = { scheme: TPM_ALG.NULL } as const;
  const sel = [pcrSelection(TPM_ALG.SHA256, [0, 1])];
  const q = (signHandle: number | PrimaryKey, inScheme: object) => tpm.run(Quote, { signHandle }, { qualifyingData: Uint8Array.of(1), inScheme: inScheme as never, PCRselect: sel });
  await step('quote', () => q(ak, NULL));
  await step('quote by the SRK', () => q(srk, NULL));
  await step('quote by NULL', () => q(TPM_RH.NULL, NULL));
  await step('quote, other hash', () => q(ak, { scheme: TPM_ALG.ECDSA, details: { hashAlg: TPM_ALG.SHA1 } }));
  await step('quote, RSASSA with an ECC key', () => q(ak, { scheme: TPM_ALG.RSASSA, details: { hashAlg: TPM_ALG.SHA256 } }));
  // Outcomes that are deterministic on two fresh TPMs: the echoed selection and the digest of the (startup) PCR values.
  const quoted = async (PCRselect: { hash: number; pcrSelect: Uint8Array }[], inScheme: object = NULL) => {
    const r = await tpm.run(Quote, { signHandle: ak }, { qualifyingData: new Uint8Array(0), inScheme: inScheme as never, PCRselect: PCRselect as never });
    const a = r.params.quoted;
    if (a.type !== TPM_ST.ATTEST_QUOTE) return 'not a quote';
    return `${a.attested.pcrSelect.map((x) => `${x.hash}:${Buffer.from(x.pcrSelect).toString('hex')}`).join(',')} ${Buffer.from(a.attested.pcrDigest).toString('hex')}`;
  };
  await step(`selection: ${await quoted([pcrSelection(TPM_ALG.SHA256, [0, 17, 23]), pcrSelection(TPM_ALG.SHA384, [1])]).catch((e: unknown) => String(e))}`, async () => undefined);
  await step(`empty selection: ${await quoted([]).catch((e: unknown) => String(e))}`, async () => undefined);
  await step(`sha1 digest: ${await quoted([pcrSelection(TPM_ALG.SHA1, [0, 1])], { scheme: TPM_ALG.ECDSA, details: { hashAlg: TPM_ALG.SHA256 } }).catch((e: unknown) => String(e))}`, async () => undefined);
  await tpm.flush(srk);
  const hmacKey = await createPrimary(tpm, TPM_RH.OWNER, hmacKeyTemplate());
  await step('quote by an HMAC key', () => q(hmacKey, NULL));
  await tpm.flush(hmacKey);
  const rsa = await createPrimary(tpm, TPM_RH.OWNER, rsaSigningTemplate());
  await step('quote by an RSA key without a scheme, NULL', () => q(rsa, NULL));
  await step('quote by an RSA key without a scheme, RSAPSS', () => q(rsa, { scheme: TPM_ALG.RSAPSS, details: { hashAlg: TPM_ALG.SHA256 } }));
  await step('quote by an RSA key without a scheme, ECDSA', () => q(rsa, { scheme: TPM_ALG.ECDSA, details: { hashAlg: TPM_ALG.SHA256 } }));
  await tpm.flush(rsa);
  const srk2 = await createPrimary(tpm, TPM_RH.OWNER, eccSrkTemplate());
  await step('certify', () => tpm.run(Certify, { objectHandle: srk2, signHandle: ak }, { qualifyingData: new Uint8Array(0), inScheme: NULL }));
  await step('certify by the SRK', () => tpm.run(Certify, { objectHandle: ak, signHandle: srk2 }, { qualifyingData: new Uint8Array(0), inScheme: NULL }));
  await step('certify by NULL', () => tpm.run(Certify, { objectHandle: ak, signHandle: TPM_RH.NULL }, { qualifyingData: new Uint8Array(0), inScheme: NULL }));
  const ticket = srk2.creation.ticket;
  const cc = (hash: Uint8Array, t = ticket) => tpm.run(CertifyCreation, { signHandle: ak, objectHandle: srk2 }, { qualifyingData: new Uint8Array(0), creationHash: hash, inScheme: NULL, creationTicket: t });
  await step('certify creation', () => cc(srk2.creation.hash));
  await step('certify creation, other hash', () => cc(new Uint8Array(32)));
  await step('certify creation, other hierarchy', () => cc(srk2.creation.hash, { ...ticket, hierarchy: TPM_RH.ENDORSEMENT }));
  await step('gettime', () => tpm.run(GetTime, { privacyAdminHandle: TPM_RH.ENDORSEMENT, signHandle: ak }, { qualifyingData: new Uint8Array(0), inScheme: NULL }));
  await step('gettime by the SRK', () => tpm.run(GetTime, { privacyAdminHandle: TPM_RH.ENDORSEMENT, signHandle: srk2 }, { qualifyingData: new Uint8Array(0), inScheme: NULL }));
  const nv = await nvDefine(tpm, { index: 0x01500020, size: 8 });
  const nc = (size: number, offset: number) => tpm.run(NV_Certify, { signHandle: ak, authHandle: nv, nvIndex: nv }, { qualifyingData: new Uint8Array(0), inScheme: NULL, size, offset });
  await step('nv certify unwritten', () => nc(4, 0));
  await nvWrite(tpm, nv, new Uint8Array(8).fill(7));
  await step('nv certify', () => nc(4, 2));
  await step('nv certify digest', () => nc(0, 0));
  await step('nv certify past end', () => nc(4, 6));
  await step('nv certify offset past end', () => nc(0, 9));
  await step('nv certify by owner', () => tpm.run(NV_Certify, { signHandle: ak, authHandle: TPM_RH.OWNER, nvIndex: nv }, { qualifyingData: new Uint8Array(0), inScheme: NULL, size: 1, offset: 0 }));
  await tpm.run(NV_UndefineSpace, { authHandle: TPM_RH.OWNER, nvIndex: nv }, {});
  await tpm.flush(ak);
  await tpm.flush(srk2);
  return log;
}

describeWithSwtpm('simulator attestation agrees with swtpm', () => {
  const tpms = swtpmAndSimulator();

  it('the same attestation commands give the same response codes', async () => {
    const { theirs, ours } = await tpms.both((side) => attestScenario(side.tpm));
    expect(ours).toEqual(theirs);
  });
});
