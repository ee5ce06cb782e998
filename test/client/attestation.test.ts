/**
 * Attestation against swtpm and our simulator: quote, certify, certifyCreation, getTime and the
 * two audit digests. Every result is checked independently of the client:
 * node:crypto verifies the signature over the returned bytes (with a key
 * built here from the public area's raw fields), pcrDigest is recomputed from
 * PCR values read separately, the audit digests are recomputed from cpHash and
 * rpHash hashed here with node:crypto, and the clock is bracketed by ReadClock.
 * A quote by an endorsement-hierarchy key carries the real resetCount,
 * restartCount and firmwareVersion; one by an owner-hierarchy key carries
 * obfuscated ones (Part 3 §18.1). After failures no object or session is left.
 */
import { createHash, createPublicKey, randomBytes, verify, type KeyObject } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  certify,
  certifyCreation,
  getCommandAuditDigest,
  getSessionAuditDigest,
  getTime,
  quote,
  signatureHashAlg,
} from '../../src/client/attestation.js';
import { Tpm, type Entity } from '../../src/client/index.js';
import { readCapability } from '../../src/tpm/capability.js';
import { CreatePrimary, GetRandom, PCR_Extend, Quote, ReadClock, SetCommandCodeAuditStatus, Startup } from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_CAP, TPM_CC, TPM_ECC, TPM_PT, TPM_RH, TPM_SU } from '../../src/tpm/constants.js';
import { ClientError } from '../../src/tpm/errors.js';
import { handleName, objectName, qualifiedName } from '../../src/tpm/names.js';
import { pcrSelection, readPcrs } from '../../src/tpm/pcr.js';
import { isRc, TPM_RC, TpmError } from '../../src/tpm/rc.js';
import { runCommand } from '../../src/tpm/run.js';
import { SwtpmTransport, type SendOptions, type Transport } from '../../src/tpm/transport/index.js';
import { TPMA_OBJECT, TPMS_CREATION_DATA, type TPMT_PUBLIC, type TPMT_SIGNATURE } from '../../src/tpm/types/index.js';
import { encode } from '../../src/tpm/wire/codec.js';
import { describeEachTpm, startTpm, type TpmUnderTest } from '../support/tpm-under-test.js';
import { sha256, u32 } from '../support/bytes.js';

const empty = new Uint8Array(0);
const b64u = (b: Uint8Array): string => Buffer.from(b).toString('base64url');

/** A node:crypto public key from the raw fields of a public area (not through the library's own conversion). */
function publicKeyOf(pub: TPMT_PUBLIC): KeyObject {
  if (pub.type === TPM_ALG.RSA) {
    const e = pub.parameters.exponent === 0 ? 65537 : pub.parameters.exponent;
    return createPublicKey({ key: { kty: 'RSA', n: b64u(pub.unique), e: b64u(u32(e).subarray(1)) }, format: 'jwk' });
  }
  if (pub.type === TPM_ALG.ECC && pub.parameters.curveID === TPM_ECC.NIST_P256) {
    return createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: b64u(pub.unique.x), y: b64u(pub.unique.y) }, format: 'jwk' });
  }
  throw new Error('unexpected key type');
}

/** node:crypto's verdict on a TPMT_SIGNATURE over `message`. */
function verifies(pub: TPMT_PUBLIC, message: Uint8Array, sig: TPMT_SIGNATURE): boolean {
  const key = publicKeyOf(pub);
  if (sig.sigAlg === TPM_ALG.ECDSA) {
    const pad = (b: Uint8Array): Buffer => Buffer.concat([Buffer.alloc(32 - b.length), Buffer.from(b)]);
    const s = sig.signature;
    return verify('sha256', message, { key, dsaEncoding: 'ieee-p1363' }, Buffer.concat([pad(s.signatureR), pad(s.signatureS)]));
  }
  if (sig.sigAlg === TPM_ALG.RSASSA) return verify('sha256', message, key, sig.signature.sig);
  return false;
}

const ECC_AK: TPMT_PUBLIC = {
  type: TPM_ALG.ECC,
  nameAlg: TPM_ALG.SHA256,
  // An AK's attributes (issue 4 point 5); noDA so that the wrong-password test cannot lock swtpm out.
  objectAttributes: TPMA_OBJECT.of({ fixedTPM: true, fixedParent: true, sensitiveDataOrigin: true, userWithAuth: true, restricted: true, sign: true, noDA: true }),
  authPolicy: empty,
  parameters: { symmetric: { algorithm: TPM_ALG.NULL }, scheme: { scheme: TPM_ALG.ECDSA, details: { hashAlg: TPM_ALG.SHA256 } }, curveID: TPM_ECC.NIST_P256, kdf: { scheme: TPM_ALG.NULL } },
  unique: { x: empty, y: empty },
};
const RSA_KEY: TPMT_PUBLIC = {
  type: TPM_ALG.RSA,
  nameAlg: TPM_ALG.SHA256,
  objectAttributes: TPMA_OBJECT.of({ fixedTPM: true, fixedParent: true, sensitiveDataOrigin: true, userWithAuth: true, restricted: true, sign: true, noDA: true }),
  authPolicy: empty,
  parameters: { symmetric: { algorithm: TPM_ALG.NULL }, scheme: { scheme: TPM_ALG.RSASSA, details: { hashAlg: TPM_ALG.SHA256 } }, keyBits: 2048, exponent: 0 },
  unique: new Uint8Array(256),
};

/** Passes commands through, and can run something on the TPM right after a Quote's response arrives. */
class Hook implements Transport {
  afterQuote: ((inner: Transport) => Promise<void>) | undefined;
  mangle: ((response: Uint8Array) => Uint8Array) | undefined;
  readonly inner: Transport;
  constructor(inner: Transport) {
    this.inner = inner;
  }
  async send(command: Uint8Array, options?: SendOptions): Promise<Uint8Array> {
    let response = await this.inner.send(command, options);
    if (Buffer.from(command).readUInt32BE(6) === Quote.code) {
      if (this.afterQuote !== undefined) await this.afterQuote(this.inner);
      if (this.mangle !== undefined) response = this.mangle(response);
    }
    return response;
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

describeEachTpm('attestation', (kind) => {
  let sw: TpmUnderTest;
  let hook: Hook;
  let tpm: Tpm;
  let ak: Entity; // ECC AK in the endorsement hierarchy: counters in the clear
  let akPublic: TPMT_PUBLIC;
  let rsa: Entity; // RSA restricted signing key in the owner hierarchy: counters obfuscated
  let rsaPublic: TPMT_PUBLIC;
  let rsaCreation: { creationHash: Uint8Array; creationTicket: Awaited<ReturnType<typeof primary>>['creationTicket']; creationData: Awaited<ReturnType<typeof primary>>['creationData'] };
  let fixture: number[];
  const akAuth = new TextEncoder().encode('ak-password');

  async function primary(hierarchy: number, template: TPMT_PUBLIC, userAuth: Uint8Array = empty) {
    const r = await tpm.run(CreatePrimary, { primaryHandle: hierarchy }, { inSensitive: { userAuth, data: empty }, inPublic: template, outsideInfo: empty, creationPCR: [] });
    const name = objectName(r.params.outPublic);
    expect(Buffer.from(r.params.name)).toEqual(Buffer.from(name));
    return { entity: { handle: r.handles.objectHandle, name, authValue: userAuth }, ...r.params };
  }

  async function handlesOf(first: number): Promise<number[]> {
    return (await readCapability(tpm.transport, TPM_CAP.HANDLES, [first])).filter((h) => h >>> 24 === first >>> 24);
  }
  async function expectNoLeaks(): Promise<void> {
    expect(await handlesOf(0x80000000)).toEqual(fixture);
    expect(await handlesOf(0x02000000)).toEqual([]);
    expect(await handlesOf(0x03000000)).toEqual([]);
  }

  async function extend(pcr: number, data: string): Promise<void> {
    const d = (alg: string) => new Uint8Array(createHash(alg).update(data).digest());
    await tpm.run(PCR_Extend, { pcrHandle: pcr }, { digests: [{ hashAlg: TPM_ALG.SHA1, digest: d('sha1') }, { hashAlg: TPM_ALG.SHA256, digest: d('sha256') }] });
  }

  beforeAll(async () => {
    sw = await startTpm(kind);
    hook = new Hook(new SwtpmTransport({ port: sw.port, ctrlPort: sw.ctrlPort }));
    tpm = new Tpm(hook);
    await tpm.run(Startup, {}, { startupType: TPM_SU.CLEAR });
    const a = await primary(TPM_RH.ENDORSEMENT, ECC_AK, akAuth);
    ak = a.entity;
    akPublic = a.outPublic;
    const r = await primary(TPM_RH.OWNER, RSA_KEY);
    rsa = r.entity;
    rsaPublic = r.outPublic;
    rsaCreation = { creationHash: r.creationHash, creationTicket: r.creationTicket, creationData: r.creationData };
    fixture = [ak.handle, rsa.handle].sort((x, y) => x - y);
    await extend(23, 'attestation test');
  }, 60_000);
  afterAll(async () => {
    await tpm?.close();
    await sw?.stop();
  });

  it('quote (ECC AK, endorsement hierarchy): the signature verifies over attestBytes, pcrDigest is the digest of separately read PCRs, counters are the real ones', async () => {
    const nonce = new Uint8Array(randomBytes(32));
    const sel = [pcrSelection(TPM_ALG.SHA256, [0, 7, 23]), pcrSelection(TPM_ALG.SHA1, [23])];
    const q = await quote(tpm, ak, sel, nonce);

    // The bytes are the TPMS_ATTEST the TPM signed: node:crypto accepts the signature, and not for a changed byte.
    expect(verifies(akPublic, q.attestBytes, q.signature)).toBe(true);
    const changed = q.attestBytes.slice();
    changed[changed.length - 1]! ^= 1;
    expect(verifies(akPublic, changed, q.signature)).toBe(false);
    expect(Buffer.from(q.attestBytes.subarray(0, 6)).toString('hex')).toBe('ff5443478018'); // TPM_GENERATED_VALUE, TPM_ST_ATTEST_QUOTE
    expect(Buffer.from(q.attest.extraData)).toEqual(Buffer.from(nonce));
    // A primary's Qualified Name is H(hierarchy handle ‖ Name) (Part 1 §16.6).
    expect(Buffer.from(q.attest.qualifiedSigner)).toEqual(Buffer.from(qualifiedName(handleName(TPM_RH.ENDORSEMENT), ak.name)));

    // pcrDigest = SHA-256 of the selected values, selections in order, ascending index (the scheme's hash).
    expect(signatureHashAlg(q.signature)).toBe(TPM_ALG.SHA256);
    expect(q.pcrDigestAlg).toBe(TPM_ALG.SHA256);
    const values = await readPcrs(tpm.transport, sel);
    const expected = sha256(values.get(TPM_ALG.SHA256)!.get(0)!, values.get(TPM_ALG.SHA256)!.get(7)!, values.get(TPM_ALG.SHA256)!.get(23)!, values.get(TPM_ALG.SHA1)!.get(23)!);
    expect(Buffer.from(q.attest.attested.pcrDigest)).toEqual(expected);
    expect(q.attest.attested.pcrSelect.map((s) => [s.hash, Buffer.from(s.pcrSelect).toString('hex')])).toEqual([
      [TPM_ALG.SHA256, '810080'],
      [TPM_ALG.SHA1, '000080'],
    ]);
    expect(q.pcrValues).toEqual(values);
    expect(Buffer.from(values.get(TPM_ALG.SHA256)!.get(23)!)).not.toEqual(Buffer.alloc(32)); // PCR 23 was extended

    // Endorsement hierarchy: resetCount/restartCount/firmwareVersion are the TPM's own (Part 3 §18.1).
    const clock = (await tpm.run(ReadClock, {}, {})).params.currentTime.clockInfo;
    expect(q.attest.clockInfo.resetCount).toBe(clock.resetCount);
    expect(q.attest.clockInfo.restartCount).toBe(clock.restartCount);
    const props = new Map((await readCapability(tpm.transport, TPM_CAP.TPM_PROPERTIES, [TPM_PT.FIRMWARE_VERSION_1])).map((p) => [p.property, p.value]));
    const firmware = (BigInt(props.get(TPM_PT.FIRMWARE_VERSION_1)!) << 32n) | BigInt(props.get(TPM_PT.FIRMWARE_VERSION_2)!);
    expect(q.attest.firmwareVersion).toBe(firmware);
    expect(q.attest.clockInfo.clock).toBeLessThanOrEqual(clock.clock);
    await expectNoLeaks();
  });

  it('quote (RSA key, owner hierarchy): RSASSA verifies; resetCount, restartCount and firmwareVersion are obfuscated', async () => {
    const nonce = new Uint8Array(randomBytes(20));
    const q = await quote(tpm, rsa, [pcrSelection(TPM_ALG.SHA256, [23])], nonce);
    expect(q.signature.sigAlg).toBe(TPM_ALG.RSASSA);
    expect(verifies(rsaPublic, q.attestBytes, q.signature)).toBe(true);
    expect(Buffer.from(q.attest.attested.pcrDigest)).toEqual(sha256(q.pcrValues.get(TPM_ALG.SHA256)!.get(23)!));
    const byAk = await quote(tpm, ak, [pcrSelection(TPM_ALG.SHA256, [23])], nonce);
    const o = q.attest.clockInfo;
    const e = byAk.attest.clockInfo;
    expect(o.resetCount === e.resetCount && o.restartCount === e.restartCount).toBe(false);
    expect(q.attest.firmwareVersion).not.toBe(byAk.attest.firmwareVersion);
    // The clock itself is not obfuscated.
    expect(o.clock).toBeLessThanOrEqual(e.clock);
  });

  it('quote again when the PCRs change between the quote and the read; give up with client.pcrs-changed after `attempts`', async () => {
    let extends_ = 0;
    hook.afterQuote = async (inner) => {
      extends_++;
      await runCommand(inner, PCR_Extend, { pcrHandle: 23 }, { digests: [{ hashAlg: TPM_ALG.SHA256, digest: new Uint8Array(randomBytes(32)) }] });
      if (extends_ >= 1) hook.afterQuote = undefined; // only after the first quote
    };
    const sel = [pcrSelection(TPM_ALG.SHA256, [23])];
    const q = await quote(tpm, ak, sel, new Uint8Array(16));
    expect(extends_).toBe(1);
    expect(Buffer.from(q.attest.attested.pcrDigest)).toEqual(sha256((await readPcrs(tpm.transport, sel)).get(TPM_ALG.SHA256)!.get(23)!));

    hook.afterQuote = (inner) => runCommand(inner, PCR_Extend, { pcrHandle: 23 }, { digests: [{ hashAlg: TPM_ALG.SHA256, digest: new Uint8Array(randomBytes(32)) }] }).then(() => undefined);
    try {
      const err = await quote(tpm, ak, sel, new Uint8Array(16), { attempts: 2 }).catch((x: unknown) => x);
      expect(err).toBeInstanceOf(ClientError);
      expect((err as ClientError).code).toBe('client.pcrs-changed');
    } finally {
      hook.afterQuote = undefined;
    }
    await expectNoLeaks();
  });

  it('certify: the AK attests that the RSA key is loaded; name and qualifiedName are the ones computed here', async () => {
    const nonce = new Uint8Array(randomBytes(16));
    const c = await certify(tpm, rsa, ak, nonce);
    expect(verifies(akPublic, c.attestBytes, c.signature)).toBe(true);
    expect(Buffer.from(c.attest.attested.name)).toEqual(Buffer.from(rsa.name));
    expect(Buffer.from(c.attest.attested.qualifiedName)).toEqual(Buffer.from(qualifiedName(handleName(TPM_RH.OWNER), rsa.name)));
    // The caller's idea of the object is checked: the same handle under another Name is refused.
    const wrong = { ...rsa, name: ak.name };
    const err = await certify(tpm, wrong, ak, nonce).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(ClientError);
    expect((err as ClientError).code).toBe('client.name');
    await expectNoLeaks();
  });

  it('certifyCreation: creationHash is the SHA-256 of the creation data; a wrong hash fails the ticket check (TPM_RC_TICKET)', async () => {
    expect(sha256(encode(TPMS_CREATION_DATA, rsaCreation.creationData))).toEqual(Buffer.from(rsaCreation.creationHash));
    const nonce = new Uint8Array(randomBytes(16));
    const c = await certifyCreation(tpm, ak, rsa, rsaCreation, nonce);
    expect(verifies(akPublic, c.attestBytes, c.signature)).toBe(true);
    expect(Buffer.from(c.attest.attested.objectName)).toEqual(Buffer.from(rsa.name));
    expect(Buffer.from(c.attest.attested.creationHash)).toEqual(Buffer.from(rsaCreation.creationHash));
    const bad = { ...rsaCreation, creationHash: new Uint8Array(32).fill(7) };
    const err = await certifyCreation(tpm, ak, rsa, bad, nonce).catch((x: unknown) => x);
    expect(isRc(err, TPM_RC.TICKET)).toBe(true);
    await expectNoLeaks();
  });

  it('getTime: the signed clock lies between two ReadClock answers; counters in the clear for the endorsement AK', async () => {
    const before = (await tpm.run(ReadClock, {}, {})).params.currentTime;
    const t = await getTime(tpm, ak, new Uint8Array(8).fill(1));
    const after = (await tpm.run(ReadClock, {}, {})).params.currentTime;
    expect(verifies(akPublic, t.attestBytes, t.signature)).toBe(true);
    const info = t.attest.attested.time;
    expect(info.time).toBeGreaterThanOrEqual(before.time);
    expect(info.time).toBeLessThanOrEqual(after.time);
    expect(info.clockInfo.clock).toBeGreaterThanOrEqual(before.clockInfo.clock);
    expect(info.clockInfo.clock).toBeLessThanOrEqual(after.clockInfo.clock);
    expect(info.clockInfo.resetCount).toBe(after.clockInfo.resetCount);
    expect(t.attest.clockInfo.clock).toBe(info.clockInfo.clock);
  });

  it('getSessionAuditDigest: equals H(H(0 ‖ cp1 ‖ rp1) ‖ cp2 ‖ rp2) recomputed here for two audited GetRandom calls', async () => {
    const session = await tpm.startAuthSession({ type: 'hmac' });
    try {
      let digest: Buffer = Buffer.alloc(32);
      for (const n of [8, 16]) {
        const r = await tpm.run(GetRandom, {}, { bytesRequested: n }, { sessions: [session.use({ audit: true })] });
        const cp = sha256(u32(TPM_CC.GetRandom), Buffer.from([0, n]));
        const rp = sha256(u32(0), u32(TPM_CC.GetRandom), Buffer.from([0, r.params.randomBytes.length]), r.params.randomBytes);
        digest = sha256(digest, cp, rp);
      }
      const nonce = new Uint8Array(randomBytes(16));
      const a = await getSessionAuditDigest(tpm, ak, session, nonce);
      expect(verifies(akPublic, a.attestBytes, a.signature)).toBe(true);
      expect(Buffer.from(a.attest.attested.sessionDigest)).toEqual(digest);
      expect(Buffer.from(session.auditDigest!)).toEqual(digest);
      expect(session.isOpen).toBe(true);
    } finally {
      await session.flush();
    }
    await expectNoLeaks();
  });

  it('getCommandAuditDigest: the signed read clears the digest; the next one is H(0 ‖ cpHash ‖ rpHash) of the audited GetRandom', async () => {
    await tpm.run(SetCommandCodeAuditStatus, { auth: TPM_RH.OWNER }, { auditAlg: TPM_ALG.SHA256, setList: [], clearList: [] });
    await tpm.run(SetCommandCodeAuditStatus, { auth: TPM_RH.OWNER }, { auditAlg: TPM_ALG.NULL, setList: [GetRandom.code], clearList: [] });
    try {
      const first = await getCommandAuditDigest(tpm, ak, empty);
      expect(verifies(akPublic, first.attestBytes, first.signature)).toBe(true);
      expect(first.attest.attested.digestAlg).toBe(TPM_ALG.SHA256);
      // The audited commands: SetCommandCodeAuditStatus is always audited (Part 3 §21.2), plus GetRandom, ascending.
      expect(Buffer.from(first.attest.attested.commandDigest)).toEqual(sha256(u32(TPM_CC.SetCommandCodeAuditStatus), u32(TPM_CC.GetRandom)));

      const r = await tpm.run(GetRandom, {}, { bytesRequested: 10 });
      const nonce = new Uint8Array(randomBytes(16));
      const second = await getCommandAuditDigest(tpm, ak, nonce);
      expect(verifies(akPublic, second.attestBytes, second.signature)).toBe(true);
      const cp = sha256(u32(TPM_CC.GetRandom), Buffer.from([0, 10]));
      const rp = sha256(u32(0), u32(TPM_CC.GetRandom), Buffer.from([0, 10]), r.params.randomBytes);
      expect(Buffer.from(second.attest.attested.auditDigest)).toEqual(sha256(Buffer.alloc(32), cp, rp));
      // A cleared digest starts a new audit sequence: the counter moves by one.
      expect(second.attest.attested.auditCounter).toBe(first.attest.attested.auditCounter + 1n);
    } finally {
      await tpm.run(SetCommandCodeAuditStatus, { auth: TPM_RH.OWNER }, { auditAlg: TPM_ALG.NULL, setList: [], clearList: [GetRandom.code] });
    }
  });

  it('bad input: wrong AK password (TPM_RC_BAD_AUTH for a noDA key), oversize nonce refused before sending, a TPM that does not echo the nonce', async () => {
    const wrongAuth = { ...ak, authValue: new TextEncoder().encode('wrong') };
    const e1 = await quote(tpm, wrongAuth, [pcrSelection(TPM_ALG.SHA256, [0])], empty).catch((x: unknown) => x);
    expect(e1).toBeInstanceOf(TpmError);
    expect(isRc(e1, TPM_RC.BAD_AUTH)).toBe(true);

    const e2 = await quote(tpm, ak, [pcrSelection(TPM_ALG.SHA256, [0])], new Uint8Array(67)).catch((x: unknown) => x);
    expect((e2 as ClientError).code).toBe('client.argument');

    // The response's extraData altered in transit: the client refuses the attestation.
    const nonce = new Uint8Array(randomBytes(24));
    hook.mangle = (response) => {
      const out = response.slice();
      const at = Buffer.from(out).indexOf(Buffer.from(nonce));
      out[at + 5]! ^= 0xff;
      return out;
    };
    try {
      const e3 = await quote(tpm, ak, [pcrSelection(TPM_ALG.SHA256, [0])], nonce).catch((x: unknown) => x);
      expect(e3).toBeInstanceOf(ClientError);
      expect((e3 as ClientError).code).toBe('client.response');
      expect((e3 as ClientError).message).toMatch(/extraData/);
    } finally {
      hook.mangle = undefined;
    }
    await expectNoLeaks();
  });
});

describe('signatureHashAlg', () => {
  it('reads the hash of each signature kind', () => {
    const ecdsa: TPMT_SIGNATURE = { sigAlg: TPM_ALG.ECDSA, signature: { hash: TPM_ALG.SHA384, signatureR: empty, signatureS: empty } };
    expect(signatureHashAlg(ecdsa)).toBe(TPM_ALG.SHA384);
    expect(signatureHashAlg({ sigAlg: TPM_ALG.HMAC, signature: { hashAlg: TPM_ALG.SHA256, digest: new Uint8Array(32) } } as TPMT_SIGNATURE)).toBe(TPM_ALG.SHA256);
    expect(signatureHashAlg({ sigAlg: TPM_ALG.NULL } as TPMT_SIGNATURE)).toBeUndefined();
  });
});

