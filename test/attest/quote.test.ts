/**
 * Quote, Certify, CertifyCreation and GetTime verification (src/attest/quote.ts),
 * challenges (challenge.ts) and the clockInfo rules (clock.ts):
 *
 * - a real quote and creation certificate from a Google Cloud Shielded VM's
 *   vTPM (go-attestation's test data, test/fixtures/quote/README.md), with
 *   its AK and all 24 SHA-1 PCRs: accepted except for its empty nonce, and
 *   every single-byte change to it rejected by the signature;
 * - attestations made by swtpm through our client with RSASSA, RSAPSS,
 *   ECDSA P-256 and ECDSA P-384/SHA-384 AKs under the EK, verified against
 *   the TPM's own Names; mismatches rejected with their reasons;
 * - the challenge and clock rules as pure functions;
 * - the fixed-seed fuzz run of fuzz/attest-attest.ts (≥ 20,000 inputs).
 */
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fuzzAttest } from '../../fuzz/attest-attest.js';
import { akQualifiedName, decodeAkPublic, prepareAk } from '../../src/attest/ak.js';
import { checkChallengeTime, checkNonce, newChallenge, NONCE_MIN_BYTES, type Challenge } from '../../src/attest/challenge.js';
import { checkClock, clockStateFromJson, clockStateToJson, type ClockState } from '../../src/attest/clock.js';
import { decodeAttest, decodeSignature, verifyCertify, verifyCertifyCreation, verifyQuote, verifyTime, type PcrValues } from '../../src/attest/quote.js';
import { failures, type Verdict } from '../../src/attest/verdict.js';
import { createAk, type Ak } from '../../src/client/ak.js';
import { certify, certifyCreation, getTime, quote } from '../../src/client/attestation.js';
import { createEk, type Ek } from '../../src/client/ek.js';
import { createPrimary, eccSigningTemplate, flush, pcrExtendData, Tpm } from '../../src/client/index.js';
import { ReadPublic, Startup } from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_ECC, TPM_RH, TPM_ST, TPM_SU } from '../../src/tpm/constants.js';
import { EvidenceError, ParseError } from '../../src/tpm/errors.js';
import { handleName, objectName, qualifiedName } from '../../src/tpm/names.js';
import { pcrSelection } from '../../src/tpm/pcr.js';
import { publicKeyFromArea } from '../../src/tpm/secret.js';
import { eccAkTemplate, rsaAkTemplate } from '../../src/tpm/templates.js';
import { SwtpmTransport } from '../../src/tpm/transport/index.js';
import { TPM2B_PUBLIC, TPMS_ATTEST, TPMS_CREATION_DATA, TPMT_SIGNATURE, type TPMT_PUBLIC } from '../../src/tpm/types/index.js';
import { encode } from '../../src/tpm/wire/codec.js';
import { describeWithSwtpm, startSwtpm, type SwtpmInstance } from '../support/swtpm.js';

const b64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));
const check = (v: Verdict, id: string) => v.checks.find((c) => c.check === id);
const thrown = (fn: () => unknown): unknown => {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected an exception');
};

// ---------------------------------------------------------------------------
// A real quote (go-attestation attest/testdata/windows_gcp_shielded_vm.json)

interface Dump {
  AK: { Public: string; CreateData: string; CreateAttestation: string; CreateSignature: string };
  Quote: { Nonce: string; Alg: number; Quote: string; Signature: string };
  Log: { PCRs: { Index: number; Digest: string; DigestAlg: number }[] };
}
const dump = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'quote', 'windows_gcp_shielded_vm.json'), 'utf8')) as Dump;
const gcpAk = decodeAkPublic(b64(dump.AK.Public));
const gcpQuote = b64(dump.Quote.Quote);
const gcpSig = b64(dump.Quote.Signature);
// Go's crypto.SHA1 is 3: the log's 24 PCRs are the SHA-1 bank the quote covers (Quote.Alg 4 = TPM_ALG_SHA1).
const gcpPcrs = (): Map<number, Map<number, Uint8Array>> =>
  new Map([[TPM_ALG.SHA1, new Map(dump.Log.PCRs.filter((p) => p.DigestAlg === 3).map((p) => [p.Index, b64(p.Digest)] as const))]]);
/** The dump's nonce is empty; any challenge with an empty nonce matches it. */
const emptyChallenge: Challenge = { nonce: new Uint8Array(0), issuedAt: 0, expiresAt: 10_000 };

describe('a real quote from a Google Cloud Shielded VM vTPM', () => {
  it('verifies: signature, magic, type, all 24 SHA-1 PCRs; only the empty nonce fails, and SHA-1 needs the policy', () => {
    expect(dump.Quote.Nonce).toBe('');
    expect(gcpPcrs().get(TPM_ALG.SHA1)!.size).toBe(24);
    const v = verifyQuote({ attest: gcpQuote, signature: gcpSig, pcrValues: gcpPcrs() }, { ak: gcpAk, akPolicy: { allowSha1: true }, challenge: emptyChallenge, now: 5000 });
    expect(failures(v)).toEqual(['quote.nonce:nonce.too-short']);
    expect(check(v, 'quote.signature')).toMatchObject({ outcome: 'pass', reason: 'signature.valid' });
    expect(check(v, 'quote.pcr-digest')).toMatchObject({ outcome: 'pass', reason: 'pcr.digest-match' });
    expect(check(v, 'quote.pcr-selection')).toMatchObject({ outcome: 'pass', reason: 'pcr.selection-signed' });
    expect(check(v, 'ak.attributes')).toMatchObject({ outcome: 'pass', reason: 'attributes.ak' });
    expect(check(v, 'ak.scheme')).toMatchObject({ outcome: 'warn', reason: 'scheme.sha1-allowed' });
    expect(v.attest?.type).toBe(TPM_ST.ATTEST_QUOTE);
    // Without the SHA-1 opt-in the AK's scheme and the signature are refused.
    const strict = verifyQuote({ attest: gcpQuote, signature: gcpSig, pcrValues: gcpPcrs() }, { ak: gcpAk, challenge: emptyChallenge, now: 5000 });
    expect(failures(strict).sort()).toEqual(['ak.scheme:scheme.weak-hash', 'quote.nonce:nonce.too-short', 'quote.signature:signature.weak-hash']);
  });

  it('any one byte of the quote changed: the signature fails, and nothing throws', () => {
    for (let i = 0; i < gcpQuote.length; i++) {
      const bad = gcpQuote.slice();
      bad[i]! ^= 0x01;
      const v = verifyQuote({ attest: bad, signature: gcpSig, pcrValues: gcpPcrs() }, { ak: gcpAk, akPolicy: { allowSha1: true }, challenge: emptyChallenge, now: 5000 });
      expect(v.accepted).toBe(false);
      expect(failures(v), `byte ${i}`).toContain('quote.signature:signature.invalid');
    }
  });

  it('PCR values: one changed, one added outside the selection, the bank relabelled', () => {
    const exp = { ak: gcpAk, akPolicy: { allowSha1: true }, challenge: emptyChallenge, now: 5000 };
    const changed = gcpPcrs();
    const v0 = changed.get(TPM_ALG.SHA1)!.get(7)!.slice();
    v0[0]! ^= 0x80;
    changed.get(TPM_ALG.SHA1)!.set(7, v0);
    expect(failures(verifyQuote({ attest: gcpQuote, signature: gcpSig, pcrValues: changed }, exp))).toContain('quote.pcr-digest:pcr.digest-mismatch');

    const extra = gcpPcrs();
    extra.set(TPM_ALG.SHA256, new Map([[10, new Uint8Array(32)]]));
    expect(failures(verifyQuote({ attest: gcpQuote, signature: gcpSig, pcrValues: extra }, exp)).sort()).toEqual([
      'quote.nonce:nonce.too-short',
      'quote.pcr-selection:pcr.outside-selection',
    ]);

    const relabelled = new Map([[TPM_ALG.SHA256, gcpPcrs().get(TPM_ALG.SHA1)!]]);
    const r = verifyQuote({ attest: gcpQuote, signature: gcpSig, pcrValues: relabelled }, exp);
    expect(failures(r)).toContain('quote.pcr-selection:pcr.selection-relabelled');
    expect(check(r, 'quote.pcr-digest')).toMatchObject({ outcome: 'not-performed', reason: 'pcr.values-incomplete' });
  });

  it('the AK creation certificate (CertifyCreation by the AK of itself) verifies against the creation data', () => {
    const ev = { attest: b64(dump.AK.CreateAttestation), signature: b64(dump.AK.CreateSignature) };
    const base = { ak: gcpAk, akPolicy: { allowSha1: true }, object: gcpAk, qualifyingData: new Uint8Array(0) };
    const v = verifyCertifyCreation(ev, { ...base, creationData: b64(dump.AK.CreateData), requiredAttributes: { restricted: true, sign: true, fixedTPM: true, decrypt: false } });
    expect(failures(v)).toEqual([]);
    expect(v.accepted).toBe(true);
    expect(check(v, 'certify-creation.creation-hash')).toMatchObject({ outcome: 'pass', reason: 'creation-hash.match' });
    expect(check(v, 'certify-creation.name')).toMatchObject({ outcome: 'pass', reason: 'name.match' });
    const data = b64(dump.AK.CreateData);
    data[data.length - 1]! ^= 1;
    expect(failures(verifyCertifyCreation(ev, { ...base, creationData: data }))).toEqual(['certify-creation.creation-hash:creation-hash.mismatch']);
    expect(failures(verifyCertifyCreation(ev, { ...base, creationData: b64(dump.AK.CreateData), requiredAttributes: { noDA: false } }))).toEqual([
      'certify-creation.attributes:attributes.mismatch',
    ]);
    // The quote is signed by the same AK but is not a creation certificate.
    const wrong = verifyCertifyCreation({ attest: gcpQuote, signature: gcpSig }, { ...base, creationData: b64(dump.AK.CreateData) });
    expect(failures(wrong)).toEqual(['certify-creation.type:type.wrong']);
  });

  it('decoders are strict and typed', () => {
    expect(decodeAttest(gcpQuote).magic).toBe(0xff544347);
    const e = thrown(() => decodeAttest(new Uint8Array([...gcpQuote, 0])));
    expect(e).toBeInstanceOf(ParseError);
    expect((e as ParseError).code).toBe('parse.trailing');
    expect(thrown(() => decodeSignature(gcpSig.subarray(0, 10)))).toBeInstanceOf(ParseError);
    // A TPM2B_PUBLIC and the bare TPMT_PUBLIC inside it read the same.
    expect(b64(dump.AK.Public)[1]).toBe(TPM_ALG.RSA); // the dump holds a bare TPMT_PUBLIC
    expect(objectName(decodeAkPublic(encode(TPM2B_PUBLIC, gcpAk)))).toEqual(objectName(gcpAk));
    const malformed = verifyQuote({ attest: gcpQuote.subarray(0, 50), signature: gcpSig, pcrValues: gcpPcrs() }, { ak: gcpAk, challenge: emptyChallenge, now: 1 });
    expect(failures(malformed)).toContain('quote.structure:attest.malformed');
    expect(malformed.attest).toBeUndefined();
    expect(failures(verifyQuote({ attest: gcpQuote, signature: gcpSig.subarray(0, 20), pcrValues: gcpPcrs() }, { ak: gcpAk, akPolicy: { allowSha1: true }, challenge: emptyChallenge, now: 1 }))).toContain(
      'quote.signature:signature.malformed',
    );
  });

  it('arguments of the wrong shape are EvidenceErrors, not verdicts', () => {
    const ok = { attest: gcpQuote, signature: gcpSig, pcrValues: gcpPcrs() };
    const exp = { ak: gcpAk, challenge: emptyChallenge, now: 1 };
    const bad: Array<[string, () => unknown]> = [
      ['attest not bytes', () => verifyQuote({ ...ok, attest: 'x' as unknown as Uint8Array }, exp)],
      ['pcrValues not a Map', () => verifyQuote({ ...ok, pcrValues: {} as unknown as PcrValues }, exp)],
      ['no challenge', () => verifyQuote(ok, { ...exp, challenge: undefined as unknown as Challenge })],
      ['now NaN', () => verifyQuote(ok, { ...exp, now: Number.NaN })],
      ['PEM garbage', () => verifyQuote(ok, { ...exp, ak: '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----' })],
      ['AK object', () => verifyQuote(ok, { ...exp, ak: { type: 1 } as unknown as TPMT_PUBLIC })],
      ['policy with a prepared AK', () => verifyQuote(ok, { ...exp, ak: prepareAk(gcpAk), akPolicy: {} })],
      ['previous state', () => verifyQuote(ok, { ...exp, previous: { clock: 1, resetCount: 0, restartCount: 0, safe: true } as unknown as ClockState })],
      ['signature object', () => verifyQuote({ ...ok, signature: { sigAlg: TPM_ALG.RSASSA } as never }, exp)],
      ['pcrSelection', () => verifyQuote({ ...ok, pcrSelection: [{ hash: TPM_ALG.SHA1 }] as never }, exp)],
    ];
    for (const [what, fn] of bad) {
      const e = thrown(fn);
      expect(e, what).toBeInstanceOf(EvidenceError);
      expect((e as EvidenceError).code, what).toBe('evidence.argument');
    }
  });
});

// ---------------------------------------------------------------------------
// Challenges

describe('challenges', () => {
  it('newChallenge: 256-bit random nonces by default, 16..64 bytes allowed, expiry = now + ttl', () => {
    const a = newChallenge(1_000, 60_000);
    const b = newChallenge(new Date(1_000), 60_000);
    expect(a.nonce.length).toBe(32);
    expect(Buffer.compare(a.nonce, b.nonce)).not.toBe(0);
    expect(a).toMatchObject({ issuedAt: 1_000, expiresAt: 61_000 });
    expect(b).toMatchObject({ issuedAt: 1_000, expiresAt: 61_000 });
    expect(newChallenge(0, 1, { nonceBytes: 16 }).nonce.length).toBe(16);
    expect(newChallenge(0, 1, { nonceBytes: 64 }).nonce.length).toBe(64);
    for (const [ttl, n] of [
      [0, 32],
      [-5, 32],
      [Number.POSITIVE_INFINITY, 32],
      [10, 15],
      [10, 65],
      [10, 20.5],
    ] as const) {
      const e = thrown(() => newChallenge(0, ttl, { nonceBytes: n }));
      expect(e).toBeInstanceOf(EvidenceError);
    }
    expect(thrown(() => newChallenge(Number.NaN, 10))).toBeInstanceOf(EvidenceError);
    // 1000 nonces, no repeats (a weak or constant source would repeat).
    expect(new Set(Array.from({ length: 1000 }, () => Buffer.from(newChallenge(0, 1).nonce).toString('hex'))).size).toBe(1000);
  });

  it('checkNonce: match, mismatch (also by length), and nonces below 128 bits fail even when they match', () => {
    const c = newChallenge(0, 10);
    expect(checkNonce('q', c, c.nonce.slice())).toMatchObject({ check: 'q.nonce', outcome: 'pass', reason: 'nonce.match' });
    const other = c.nonce.slice();
    other[31]! ^= 1;
    expect(checkNonce('q', c, other)).toMatchObject({ outcome: 'fail', reason: 'nonce.mismatch' });
    expect(checkNonce('q', c, c.nonce.subarray(0, 31))).toMatchObject({ outcome: 'fail', reason: 'nonce.mismatch' });
    const short: Challenge = { nonce: new Uint8Array(NONCE_MIN_BYTES - 1).fill(7), issuedAt: 0, expiresAt: 1 };
    expect(checkNonce('q', short, short.nonce.slice())).toMatchObject({ outcome: 'fail', reason: 'nonce.too-short' });
  });

  it('checkChallengeTime: fresh from issue to expiry inclusive, expired after, refused before issue', () => {
    const c: Challenge = { nonce: new Uint8Array(16), issuedAt: 100, expiresAt: 200 };
    expect(checkChallengeTime('q', c, 100).reason).toBe('challenge.fresh');
    expect(checkChallengeTime('q', c, 200).reason).toBe('challenge.fresh');
    expect(checkChallengeTime('q', c, new Date(201))).toMatchObject({ check: 'q.challenge', outcome: 'fail', reason: 'challenge.expired' });
    expect(checkChallengeTime('q', c, 99)).toMatchObject({ outcome: 'fail', reason: 'challenge.before-issue' });
  });
});

// ---------------------------------------------------------------------------
// clockInfo rules

describe('clockInfo rules', () => {
  const info = (clock: bigint, resetCount: number, restartCount: number, safe: 0 | 1) => ({ clock, resetCount, restartCount, safe });
  const prev: ClockState = { clock: 5000n, resetCount: 4, restartCount: 2, safe: true, firmwareVersion: 7n };
  const rows: Array<[string, ReturnType<typeof info>, string, string, string, string]> = [
    // name, current, reset-count reason, clock outcome, clock reason, transition
    ['same boot, clock forward', info(6000n, 4, 2, 1), 'reset.same-boot', 'pass', 'clock.monotonic', 'same-boot'],
    ['same boot, same clock', info(5000n, 4, 2, 1), 'reset.same-boot', 'pass', 'clock.monotonic', 'same-boot'],
    ['resume', info(7000n, 4, 3, 1), 'reset.same-boot', 'pass', 'clock.resume', 'resume'],
    ['reboot, clock and restartCount restart', info(10n, 5, 0, 1), 'reset.reboot', 'pass', 'clock.reboot', 'reboot'],
    ['clock backwards while safe', info(4999n, 4, 2, 1), 'reset.same-boot', 'fail', 'clock.backwards', 'backwards'],
    ['restartCount backwards while safe', info(9000n, 4, 1, 1), 'reset.same-boot', 'fail', 'clock.restart-backwards', 'backwards'],
    ['resetCount backwards', info(9000n, 3, 2, 1), 'reset.backwards', 'not-performed', 'clock.not-compared', 'backwards'],
    ['unsafe, clock backwards, counters unchanged', info(100n, 4, 2, 0), 'reset.same-boot', 'warn', 'clock.unsafe', 'same-boot'],
    ['unsafe after a power cut (reboot)', info(100n, 5, 0, 0), 'reset.reboot', 'warn', 'clock.unsafe', 'reboot'],
    ['unsafe and resetCount backwards', info(100n, 3, 0, 0), 'reset.backwards', 'warn', 'clock.unsafe', 'backwards'],
  ];
  for (const [name, cur, resetReason, clockOutcome, clockReason, transition] of rows) {
    it(name, () => {
      const r = checkClock('quote', cur, 7n, prev);
      expect(r.checks.find((c) => c.check === 'quote.reset-count')!.reason).toBe(resetReason);
      expect(r.checks.find((c) => c.check === 'quote.reset-count')!.outcome).toBe(resetReason === 'reset.backwards' ? 'fail' : 'pass');
      expect(r.checks.find((c) => c.check === 'quote.clock')).toMatchObject({ outcome: clockOutcome, reason: clockReason });
      expect(r.transition).toBe(transition);
      expect(r.state).toEqual({ clock: cur.clock, resetCount: cur.resetCount, restartCount: cur.restartCount, safe: cur.safe === 1, firmwareVersion: 7n });
    });
  }

  it('the unsafe severity is the policy\'s; no previous state means nothing to compare; firmware changes are reported', () => {
    const unsafe = info(100n, 4, 2, 0);
    for (const s of ['pass', 'warn', 'fail'] as const) {
      expect(checkClock('quote', unsafe, 7n, prev, { unsafe: s }).checks.find((c) => c.check === 'quote.clock')!.outcome).toBe(s);
    }
    expect(thrown(() => checkClock('quote', unsafe, 7n, prev, { unsafe: 'ignore' as 'warn' }))).toBeInstanceOf(EvidenceError);
    const first = checkClock('quote', info(1n, 1, 0, 1), 1n);
    expect(first.transition).toBe('first');
    expect(first.checks.map((c) => `${c.check}:${c.outcome}:${c.reason}`)).toEqual([
      'quote.reset-count:not-performed:reset.no-previous',
      'quote.clock:not-performed:clock.no-previous',
      'quote.firmware:pass:firmware.reported',
    ]);
    expect(checkClock('quote', info(6000n, 4, 2, 1), 8n, prev).checks.find((c) => c.check === 'quote.firmware')!.reason).toBe('firmware.changed');
  });

  it('the JSON form round-trips and refuses anything else with evidence.file', () => {
    const big: ClockState = { clock: 2n ** 60n, resetCount: 4294967295, restartCount: 0, safe: false, firmwareVersion: 0x2000300040005n };
    expect(clockStateFromJson(JSON.parse(JSON.stringify(clockStateToJson(big))))).toEqual(big);
    expect(clockStateFromJson({ clock: 5, resetCount: 1, restartCount: 2, safe: 1 })).toEqual({ clock: 5n, resetCount: 1, restartCount: 2, safe: true });
    expect(clockStateFromJson({ clock: '0x10', resetCount: 1, restartCount: 2, safe: false }).clock).toBe(16n);
    for (const bad of [
      null,
      [],
      'x',
      { clock: -1, resetCount: 1, restartCount: 1, safe: true },
      { clock: 1.5, resetCount: 1, restartCount: 1, safe: true },
      { clock: '18446744073709551616', resetCount: 1, restartCount: 1, safe: true },
      { clock: 1, resetCount: 2 ** 32, restartCount: 1, safe: true },
      { clock: 1, resetCount: 1, restartCount: 1, safe: 'yes' },
      { clock: 1, resetCount: 1, restartCount: 1 },
    ]) {
      const e = thrown(() => clockStateFromJson(bad));
      expect(e, JSON.stringify(bad)).toBeInstanceOf(EvidenceError);
      expect((e as EvidenceError).code).toBe('evidence.file');
    }
  });
});

// ---------------------------------------------------------------------------
// swtpm

describeWithSwtpm('attestations made by swtpm through the client', () => {
  let sw: SwtpmInstance;
  let tpm: Tpm;
  let ek: Ek;
  const pcrs = [pcrSelection(TPM_ALG.SHA256, [0, 1, 2, 3, 4, 5, 6, 7]), pcrSelection(TPM_ALG.SHA1, [16, 23])];

  beforeAll(async () => {
    sw = await startSwtpm();
    tpm = new Tpm(new SwtpmTransport({ port: sw.port, ctrlPort: sw.ctrlPort }));
    await tpm.run(Startup, {}, { startupType: TPM_SU.CLEAR });
    for (const i of [0, 4, 7, 16]) await pcrExtendData(tpm, i, new TextEncoder().encode(`measurement ${i}`));
    ek = await createEk(tpm, { template: 'L-2', persistentHandle: false });
  });
  afterAll(async () => {
    await tpm?.close();
    await sw?.stop();
  });

  function rsaPssTemplate(): TPMT_PUBLIC {
    const t = rsaAkTemplate();
    if (t.type !== TPM_ALG.RSA) throw new Error('unreachable');
    return { ...t, parameters: { ...t.parameters, scheme: { scheme: TPM_ALG.RSAPSS, details: { hashAlg: TPM_ALG.SHA256 } } } };
  }
  function p384Template(): TPMT_PUBLIC {
    const t = eccAkTemplate();
    if (t.type !== TPM_ALG.ECC) throw new Error('unreachable');
    return { ...t, parameters: { ...t.parameters, curveID: TPM_ECC.NIST_P384, scheme: { scheme: TPM_ALG.ECDSA, details: { hashAlg: TPM_ALG.SHA384 } } } };
  }

  const kinds: Array<[string, () => TPMT_PUBLIC]> = [
    ['RSASSA-SHA256 RSA-2048', rsaAkTemplate],
    ['RSAPSS-SHA256 RSA-2048', rsaPssTemplate],
    ['ECDSA-SHA256 P-256', eccAkTemplate],
    ['ECDSA-SHA384 P-384', p384Template],
  ];
  for (const [label, template] of kinds) {
    it(`${label} AK: an honest quote is accepted, against the TPM's own qualified name; a PEM AK leaves the attribute checks not performed`, async () => {
      const ak = await createAk(tpm, ek, { template: template() });
      try {
        const challenge = newChallenge(Date.now(), 60_000);
        const q = await quote(tpm, ak, pcrs, challenge.nonce);
        const qn = akQualifiedName(ek.publicArea, ak.publicArea);
        // Our qualified name is the TPM's.
        const rp = await tpm.run(ReadPublic, { objectHandle: ak.handle }, {});
        expect(Buffer.from(qn).toString('hex')).toBe(Buffer.from(rp.params.qualifiedName).toString('hex'));
        const v = verifyQuote(
          { attest: q.attestBytes, signature: encode(TPMT_SIGNATURE, q.signature), pcrValues: q.pcrValues },
          { ak: ak.publicArea, akQualifiedName: qn, challenge, now: Date.now() },
        );
        expect(failures(v)).toEqual([]);
        expect(v.accepted).toBe(true);
        expect(v.checks.filter((c) => c.outcome !== 'pass').map((c) => c.check).sort()).toEqual(['quote.clock', 'quote.reset-count']);
        expect(v.clock).toEqual({
          clock: q.attest.clockInfo.clock,
          resetCount: q.attest.clockInfo.resetCount,
          restartCount: q.attest.clockInfo.restartCount,
          safe: true,
          firmwareVersion: q.attest.firmwareVersion,
        });
        // The same quote with only the public key: accepted, but the AK's attributes are not vouched for.
        const pem = publicKeyFromArea(ak.publicArea).export({ type: 'spki', format: 'pem' }) as string;
        const bare = verifyQuote({ attest: q.attestBytes, signature: q.signature, pcrValues: q.pcrValues }, { ak: pem, akQualifiedName: qn, challenge, now: Date.now() });
        expect(bare.accepted).toBe(true);
        for (const id of ['ak.attributes', 'ak.scheme', 'ak.name-alg']) {
          expect(check(bare, id)).toMatchObject({ outcome: 'not-performed', reason: 'ak.bare-key' });
        }
        expect(check(bare, 'ak.key')!.outcome).toBe('pass');
        // The next quote, checked against the state the first one left.
        const challenge2 = newChallenge(Date.now(), 60_000);
        const q2 = await quote(tpm, ak, pcrs, challenge2.nonce);
        const v2 = verifyQuote({ attest: q2.attestBytes, signature: q2.signature, pcrValues: q2.pcrValues }, { ak: prepareAk(ak.publicArea), akQualifiedName: qn, challenge: challenge2, now: Date.now(), previous: v.clock! });
        expect(failures(v2)).toEqual([]);
        expect(check(v2, 'quote.clock')).toMatchObject({ outcome: 'pass', reason: 'clock.monotonic' });
        expect(v2.transition).toBe('same-boot');
        // Checked against another key of the same kind: the signature fails.
        const p = ak.publicArea;
        const otherKey =
          p.type === TPM_ALG.RSA
            ? generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey
            : generateKeyPairSync('ec', { namedCurve: p.type === TPM_ALG.ECC && p.parameters.curveID === TPM_ECC.NIST_P384 ? 'secp384r1' : 'prime256v1' }).publicKey;
        const v3 = verifyQuote({ attest: q2.attestBytes, signature: q2.signature, pcrValues: q2.pcrValues }, { ak: otherKey, challenge: challenge2, now: Date.now() });
        expect(failures(v3)).toEqual(['quote.signature:signature.invalid']);
      } finally {
        await tpm.flush(ak);
      }
    });
  }

  describe('Certify, CertifyCreation and GetTime signed by an AK', () => {
    let ak: Ak;
    beforeAll(async () => {
      ak = await createAk(tpm, ek, { alg: 'ecc' });
    });
    afterAll(async () => {
      if (ak) await tpm.flush(ak);
    });

    it('Certify: the certified key is the expected public area with the required attributes; another key is refused', async () => {
      const key = await createPrimary(tpm, TPM_RH.OWNER, eccSigningTemplate());
      // Another public area: the same key with one attribute changed has another Name.
      const other = { ...key.publicArea, objectAttributes: { ...key.publicArea.objectAttributes, noDA: true } };
      try {
        const challenge = newChallenge(Date.now(), 60_000);
        const a = await certify(tpm, key, ak, challenge.nonce);
        const signerQn = akQualifiedName(ek.publicArea, ak.publicArea);
        const keyQn = qualifiedName(handleName(TPM_RH.OWNER), key.name);
        const ev = { attest: encode(TPMS_ATTEST, a.attest), signature: a.signature };
        const base = { ak: ak.publicArea, akQualifiedName: signerQn, challenge, now: Date.now() };
        const v = verifyCertify(ev, { ...base, object: key.publicArea, objectQualifiedName: keyQn, requiredAttributes: { fixedTPM: true, sign: true, decrypt: false } });
        expect(failures(v)).toEqual([]);
        expect(check(v, 'certify.name')).toMatchObject({ outcome: 'pass', reason: 'name.match' });
        expect(check(v, 'certify.qualified-name')).toMatchObject({ outcome: 'pass', reason: 'qualified-name.match' });
        expect(check(v, 'certify.attributes')).toMatchObject({ outcome: 'pass', reason: 'attributes.match' });
        expect(failures(verifyCertify(ev, { ...base, object: other }))).toEqual(['certify.name:name.mismatch']);
        expect(failures(verifyCertify(ev, { ...base, object: key.publicArea, requiredAttributes: { restricted: true } }))).toEqual(['certify.attributes:attributes.mismatch']);
        expect(failures(verifyCertify(ev, { ...base, object: key.publicArea, objectQualifiedName: qualifiedName(handleName(TPM_RH.ENDORSEMENT), key.name) }))).toEqual([
          'certify.qualified-name:qualified-name.mismatch',
        ]);
        expect(failures(verifyCertify(ev, { ak: ak.publicArea, object: key.publicArea, qualifyingData: new Uint8Array(16) }))).toEqual([
          'certify.qualifying-data:qualifying-data.mismatch',
        ]);
        // A certification is not a quote.
        expect(failures(verifyQuote({ ...ev, pcrValues: new Map() }, base))).toEqual(['quote.type:type.wrong']);
      } finally {
        await flush(tpm, key);
      }
    });

    it('CertifyCreation: the creation data and Name of a key the TPM created', async () => {
      const key = await createPrimary(tpm, TPM_RH.OWNER, eccSigningTemplate(), { creationPCR: [pcrSelection(TPM_ALG.SHA256, [7])] });
      try {
        const nonce = newChallenge(0, 1).nonce;
        const a = await certifyCreation(tpm, ak, key, { creationHash: key.creation.hash, creationTicket: key.creation.ticket }, nonce);
        const ev = { attest: encode(TPMS_ATTEST, a.attest), signature: a.signature };
        const creationData = encode(TPMS_CREATION_DATA, key.creation.data);
        const v = verifyCertifyCreation(ev, { ak: ak.publicArea, object: key.publicArea, creationData, qualifyingData: nonce });
        expect(failures(v)).toEqual([]);
        expect(check(v, 'certify-creation.creation-hash')!.reason).toBe('creation-hash.match');
        expect(failures(verifyCertifyCreation(ev, { ak: ak.publicArea, object: key.publicArea, creationHash: new Uint8Array(32), qualifyingData: nonce }))).toEqual([
          'certify-creation.creation-hash:creation-hash.mismatch',
        ]);
      } finally {
        await flush(tpm, key);
      }
    });

    it('GetTime: signature, nonce and the clock rules over the attested time', async () => {
      const c1 = newChallenge(Date.now(), 60_000);
      const t1 = await getTime(tpm, ak, c1.nonce);
      const v1 = verifyTime({ attest: encode(TPMS_ATTEST, t1.attest), signature: t1.signature }, { ak: ak.publicArea, challenge: c1, now: Date.now() });
      expect(failures(v1)).toEqual([]);
      expect(v1.clock?.clock).toBe(t1.attest.attested.time.clockInfo.clock);
      const c2 = newChallenge(Date.now(), 60_000);
      const t2 = await getTime(tpm, ak, c2.nonce);
      const ev2 = { attest: encode(TPMS_ATTEST, t2.attest), signature: t2.signature };
      expect(check(verifyTime(ev2, { ak: ak.publicArea, challenge: c2, now: Date.now(), previous: v1.clock! }), 'time.clock')!.reason).toBe('clock.monotonic');
      // The first time attestation presented after the second: its clock went backwards.
      const back = verifyTime({ attest: encode(TPMS_ATTEST, t1.attest), signature: t1.signature }, { ak: ak.publicArea, challenge: c1, now: Date.now(), previous: verifyTime(ev2, { ak: ak.publicArea, challenge: c2, now: Date.now() }).clock! });
      expect(t2.attest.attested.time.clockInfo.clock > t1.attest.attested.time.clockInfo.clock).toBe(true);
      expect(failures(back)).toEqual(['time.clock:clock.backwards']);
    });
  });
});

// ---------------------------------------------------------------------------
// Fuzzing (fixed seed; `fuzz/attest-attest.ts` for long runs)

describe('fuzzing the attestation parsers and verifyQuote', () => {
  // The 60 s timeout is only a hang guard (a parser loop on some input); the fuzzer's speed is not the point.
  it('20,000+ random and mutated inputs: only typed errors, no mutated quote accepted', () => {
    const stats = fuzzAttest(20260501, 24_000);
    expect(stats.untyped).toEqual([]);
    expect(stats.untypedCount).toBe(0);
    expect(stats.inputs).toBeGreaterThanOrEqual(20_000);
    expect(stats.acceptedMutants).toBe(0);
    expect(stats.acceptedOriginals).toBeGreaterThan(0);
    // Deep enough: decoders reach their value and size checks, the verifier its specific reasons.
    for (const code of ['parse.truncated', 'parse.trailing', 'parse.size', 'parse.value', 'evidence.file']) expect(stats.codes.get(code) ?? 0, code).toBeGreaterThan(0);
    for (const r of ['signature.invalid', 'signature.malformed', 'attest.malformed', 'pcr.digest-mismatch', 'pcr.outside-selection', 'pcr.selection-relabelled', 'pcr.missing-values', 'pcr.value-size']) {
      expect(stats.reasons.get(r) ?? 0, r).toBeGreaterThan(0);
    }
  }, 60_000);
});
