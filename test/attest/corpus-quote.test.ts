/**
 * The adversarial corpus for quotes (issue 5): every attack case is made with
 * swtpm and our client (an AK created under the EK with createAk, quotes with
 * the client's quote, keys and signatures from the same TPM), and each case
 * asserts the exact set of failed checks with their reasons, next to the
 * honest quotes of the same device, which are accepted.
 *
 * The device's life, in order: quotes in one boot (q1, q2), a resume
 * (Shutdown(STATE) + Startup(STATE)), a reboot (Shutdown(CLEAR) + Startup(CLEAR)),
 * and a power cut (swtpm's control channel stops and restarts the TPM with no
 * Shutdown, so safe = 0 and resetCount goes up), with quotes after each.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { akQualifiedName } from '../../src/attest/ak.js';
import { newChallenge, type Challenge } from '../../src/attest/challenge.js';
import type { ClockState } from '../../src/attest/clock.js';
import { verifyQuote, type QuoteEvidence, type QuoteExpectations, type QuoteVerdict } from '../../src/attest/quote.js';
import { failures } from '../../src/attest/verdict.js';
import { createAk, loadAk, type Ak, type AkBlob } from '../../src/client/ak.js';
import { certify, quote, type QuoteResult } from '../../src/client/attestation.js';
import { hash as tpmHash, sign } from '../../src/client/crypto.js';
import { createEk } from '../../src/client/ek.js';
import { createPrimary, eccSigningTemplate, flush, pcrExtendData, pcrRead, Tpm, type PrimaryKey } from '../../src/client/index.js';
import { Shutdown, Startup } from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_GENERATED_VALUE, TPM_RH, TPM_ST, TPM_SU } from '../../src/tpm/constants.js';
import { hash } from '../../src/tpm/crypto/hash.js';
import { handleName, qualifiedName } from '../../src/tpm/names.js';
import { pcrSelection } from '../../src/tpm/pcr.js';
import { SwtpmTransport } from '../../src/tpm/transport/index.js';
import { TPMS_ATTEST, TPMT_SIGNATURE, type TPMS_PCR_SELECTION, type TPMT_PUBLIC } from '../../src/tpm/types/index.js';
import { encode } from '../../src/tpm/wire/codec.js';
import { describeWithSwtpm, startSwtpm, type SwtpmInstance } from '../support/swtpm.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A quote as the device sends it, with the challenge it answers. */
interface Sent {
  readonly challenge: Challenge;
  readonly evidence: QuoteEvidence;
  readonly result: QuoteResult;
}

/** A signed structure made outside Quote (a forgery signed with TPM2_Sign, a Certify). */
interface Signed {
  readonly challenge: Challenge;
  readonly attest: Uint8Array;
  readonly signature: TPMT_SIGNATURE;
  readonly pcrValues: Map<number, Map<number, Uint8Array>>;
  readonly signer: TPMT_PUBLIC;
  readonly signerQn: Uint8Array;
}

const SELECTION: TPMS_PCR_SELECTION[] = [pcrSelection(TPM_ALG.SHA256, [0, 1, 2, 3, 4, 5, 6, 7])];

function stateOf(v: QuoteVerdict): ClockState {
  if (v.clock === undefined) throw new Error('no clock state');
  return v.clock;
}

describeWithSwtpm('adversarial quote corpus (swtpm)', () => {
  let sw: SwtpmInstance;
  let transport: SwtpmTransport;
  let tpm: Tpm;
  let akBlob: AkBlob;
  let akPublic: TPMT_PUBLIC;
  let akQn: Uint8Array;
  let rsaPublic: TPMT_PUBLIC;
  let rsaQn: Uint8Array;
  let swapPublic: TPMT_PUBLIC;

  // Epoch A (first boot), safe = 1.
  let q1: Sent;
  let q2: Sent;
  let qRsa: Sent;
  let qSwap: Sent;
  let qResume: Sent;
  // Epoch B (after an orderly reboot), safe = 1.
  let qReboot: Sent;
  // Epoch C (after a power cut), safe = 0.
  let qCut1: Sent;
  let qCut2: Sent;

  let certifyAsQuote: Signed;
  let forgedByAk: Signed;
  let forgedNoMagicUnrestricted: Signed;
  let forgedMagicUnrestricted: Signed;
  let unrestrictedQuote: Sent & { signer: TPMT_PUBLIC; signerQn: Uint8Array };
  let notFixedQuote: Sent & { signer: TPMT_PUBLIC; signerQn: Uint8Array };
  let pcr10: Uint8Array;

  async function send(signer: Ak | PrimaryKey, pcrs = SELECTION): Promise<Sent> {
    const challenge = newChallenge(Date.now(), 60_000);
    const result = await quote(tpm, signer, pcrs, challenge.nonce);
    // The device sends the signed bytes and the marshaled TPMT_SIGNATURE, as tpm2_quote -m / -s write them.
    return { challenge, result, evidence: { attest: result.attestBytes, signature: encode(TPMT_SIGNATURE, result.signature), pcrValues: result.pcrValues } };
  }

  /** Loads the AK again after the TPM lost its transient objects (EK re-created from its template: same key). */
  async function reloadAk(): Promise<Ak> {
    const ek = await createEk(tpm, { template: 'L-2', persistentHandle: false });
    try {
      return await loadAk(tpm, ek, akBlob);
    } finally {
      await tpm.flush(ek);
    }
  }

  /**
   * A TPMS_ATTEST an attacker would like to be believed: the honest quote's
   * fields with PCR values of its choosing (and a magic of its choosing), for
   * the current challenge.
   */
  function forge(template: QuoteResult, challenge: Challenge, signerQn: Uint8Array, magic: number): { attest: Uint8Array; pcrValues: Map<number, Map<number, Uint8Array>> } {
    const golden = new Map<number, Uint8Array>();
    for (let i = 0; i < 8; i++) golden.set(i, hash(TPM_ALG.SHA256, new TextEncoder().encode(`golden ${i}`)));
    const bytes = encode(TPMS_ATTEST, {
      ...template.attest,
      qualifiedSigner: signerQn,
      extraData: challenge.nonce,
      attested: { pcrSelect: SELECTION, pcrDigest: hash(TPM_ALG.SHA256, ...golden.values()) },
    });
    new DataView(bytes.buffer, bytes.byteOffset).setUint32(0, magic);
    return { attest: bytes, pcrValues: new Map([[TPM_ALG.SHA256, golden]]) };
  }

  beforeAll(async () => {
    sw = await startSwtpm();
    transport = new SwtpmTransport({ port: sw.port, ctrlPort: sw.ctrlPort });
    tpm = new Tpm(transport);
    await tpm.run(Startup, {}, { startupType: TPM_SU.CLEAR });
    for (const i of [0, 1, 2, 4, 7, 10]) await pcrExtendData(tpm, i, new TextEncoder().encode(`boot component ${i}`), { banks: [TPM_ALG.SHA256] });
    pcr10 = (await pcrRead(tpm, [pcrSelection(TPM_ALG.SHA256, [10])])).get(TPM_ALG.SHA256)!.get(10)!;

    // Enrollment: the EK, the AK (ECDSA P-256), an RSA AK, and a second AK for the swap case.
    // swtpm holds three transient objects; the EK is flushed as soon as the AKs are loaded.
    const ek = await createEk(tpm, { template: 'L-2', persistentHandle: false });
    let ak = await createAk(tpm, ek, { alg: 'ecc' });
    akBlob = { publicArea: ak.publicArea, privateBlob: ak.privateBlob };
    akPublic = ak.publicArea;
    akQn = akQualifiedName(ek.publicArea, ak.publicArea);
    const rsa = await createAk(tpm, ek, { alg: 'rsa' });
    rsaPublic = rsa.publicArea;
    rsaQn = akQualifiedName(ek.publicArea, rsa.publicArea);
    qRsa = await send(rsa);
    await tpm.flush(rsa);
    const swap = await createAk(tpm, ek, { alg: 'ecc' });
    swapPublic = swap.publicArea;
    qSwap = await send(swap);
    await tpm.flush(swap);
    await tpm.flush(ek);

    q1 = await send(ak);
    await sleep(5);
    q2 = await send(ak);

    // A Certify of the AK by itself, answering a challenge: a valid TPM structure, but not a quote.
    {
      const challenge = newChallenge(Date.now(), 60_000);
      const a = await certify(tpm, ak, ak, challenge.nonce);
      certifyAsQuote = { challenge, attest: encode(TPMS_ATTEST, a.attest), signature: a.signature, pcrValues: q1.result.pcrValues, signer: akPublic, signerQn: akQn };
    }
    // CVE-2024-29038: the restricted AK signs a forged structure without TPM_GENERATED magic. TPM2_Hash gives
    // a ticket for data that does not start with the magic, and Sign accepts it for the restricted AK.
    {
      const challenge = newChallenge(Date.now(), 60_000);
      const f = forge(q1.result, challenge, akQn, 0x00544347);
      const h = await tpmHash(tpm, f.attest, TPM_ALG.SHA256, { hierarchy: TPM_RH.ENDORSEMENT });
      expect(h.validation.hierarchy).toBe(TPM_RH.ENDORSEMENT); // a real ticket
      const signature = await sign(tpm, ak, h.digest, undefined, { validation: h.validation });
      forgedByAk = { challenge, attest: f.attest, signature, pcrValues: f.pcrValues, signer: akPublic, signerQn: akQn };
      // With the magic, TPM2_Hash gives no ticket, and the restricted AK refuses to sign.
      const honestMagic = forge(q1.result, challenge, akQn, TPM_GENERATED_VALUE);
      const refused = await tpmHash(tpm, honestMagic.attest, TPM_ALG.SHA256, { hierarchy: TPM_RH.ENDORSEMENT });
      expect(refused.validation.hierarchy).toBe(TPM_RH.NULL);
      await expect(sign(tpm, ak, refused.digest, undefined, { validation: refused.validation })).rejects.toThrow(/TICKET/);
    }
    await tpm.flush(ak);

    // A signing key that is not restricted, in the endorsement hierarchy: TPM2_Sign signs anything with it.
    {
      const key = await createPrimary(tpm, TPM_RH.ENDORSEMENT, eccSigningTemplate());
      try {
        const qn = qualifiedName(handleName(TPM_RH.ENDORSEMENT), key.name);
        for (const magic of [0x00544347, TPM_GENERATED_VALUE]) {
          const challenge = newChallenge(Date.now(), 60_000);
          const f = forge(q1.result, challenge, qn, magic);
          const signature = await sign(tpm, key, hash(TPM_ALG.SHA256, f.attest));
          const forged = { challenge, attest: f.attest, signature, pcrValues: f.pcrValues, signer: key.publicArea, signerQn: qn };
          if (magic === TPM_GENERATED_VALUE) forgedMagicUnrestricted = forged;
          else forgedNoMagicUnrestricted = forged;
        }
        // TPM2_Quote itself accepts a non-restricted signing key.
        unrestrictedQuote = { ...(await send(key)), signer: key.publicArea, signerQn: qn };
      } finally {
        await flush(tpm, key);
      }
    }
    // A restricted signing key that is not fixedTPM (duplicable; a primary's fixedParent must then be clear too).
    {
      const key = await createPrimary(tpm, TPM_RH.ENDORSEMENT, eccSigningTemplate({ attributes: { restricted: true, fixedTPM: false, fixedParent: false } }));
      try {
        notFixedQuote = { ...(await send(key)), signer: key.publicArea, signerQn: qualifiedName(handleName(TPM_RH.ENDORSEMENT), key.name) };
      } finally {
        await flush(tpm, key);
      }
    }

    // Resume: Shutdown(STATE), TPM Init, Startup(STATE): restartCount + 1, same resetCount.
    await tpm.run(Shutdown, {}, { shutdownType: TPM_SU.STATE });
    await transport.control.init();
    await tpm.run(Startup, {}, { startupType: TPM_SU.STATE });
    ak = await reloadAk();
    qResume = await send(ak);
    await tpm.flush(ak);

    // Reboot: Shutdown(CLEAR), TPM Init, Startup(CLEAR): resetCount + 1, safe stays 1.
    await tpm.run(Shutdown, {}, { shutdownType: TPM_SU.CLEAR });
    await transport.control.init();
    await tpm.run(Startup, {}, { startupType: TPM_SU.CLEAR });
    ak = await reloadAk();
    qReboot = await send(ak);
    await tpm.flush(ak);

    // Power cut: the TPM stops with no Shutdown; Startup(STATE) is then refused, Startup(CLEAR) resets it with safe = 0.
    await transport.control.stop();
    await transport.control.init();
    await tpm.run(Startup, {}, { startupType: TPM_SU.CLEAR });
    ak = await reloadAk();
    qCut1 = await send(ak);
    await sleep(20);
    qCut2 = await send(ak);
    await tpm.flush(ak);
  }, 60_000);

  afterAll(async () => {
    await tpm?.close();
    await sw?.stop();
  });

  const expect0 = (s: { readonly challenge: Challenge }, extra: Partial<QuoteExpectations> = {}): QuoteExpectations => ({
    ak: akPublic,
    akQualifiedName: akQn,
    challenge: s.challenge,
    now: s.challenge.issuedAt + 1000,
    ...extra,
  });

  describe('the device as recorded', () => {
    it('its clockInfo is plain (AK under the EK) and moves as the story says', () => {
      const c = (s: Sent) => s.result.attest.clockInfo;
      expect(c(q1)).toMatchObject({ safe: 1, resetCount: c(q2).resetCount, restartCount: c(q2).restartCount });
      expect(c(q2).clock >= c(q1).clock).toBe(true);
      expect(c(qResume)).toMatchObject({ safe: 1, resetCount: c(q2).resetCount, restartCount: c(q2).restartCount + 1 });
      expect(c(qReboot)).toMatchObject({ safe: 1, resetCount: c(qResume).resetCount + 1, restartCount: 0 });
      expect(c(qCut1)).toMatchObject({ safe: 0, resetCount: c(qReboot).resetCount + 1, restartCount: 0 });
      expect(c(qCut2)).toMatchObject({ safe: 0, resetCount: c(qCut1).resetCount, restartCount: 0 });
      expect(c(qCut2).clock > c(qCut1).clock).toBe(true);
    });
  });

  describe('honest quotes are accepted', () => {
    it('the first quote of an enrolled device: every check passes except the clock comparisons (nothing to compare)', () => {
      const v = verifyQuote(q1.evidence, expect0(q1));
      expect(failures(v)).toEqual([]);
      expect(v.checks.filter((c) => c.outcome !== 'pass').map((c) => `${c.check}:${c.outcome}:${c.reason}`)).toEqual([
        'quote.reset-count:not-performed:reset.no-previous',
        'quote.clock:not-performed:clock.no-previous',
      ]);
    });

    it('the next quote in the same boot, against the state the first left', () => {
      const v = verifyQuote(q2.evidence, expect0(q2, { previous: stateOf(verifyQuote(q1.evidence, expect0(q1))) }));
      expect(v.checks.every((c) => c.outcome === 'pass')).toBe(true);
      expect(v.transition).toBe('same-boot');
    });

    it('an RSA-2048 AK\'s quote', () => {
      expect(verifyQuote(qRsa.evidence, expect0(qRsa, { ak: rsaPublic, akQualifiedName: rsaQn })).checks.filter((c) => c.outcome === 'fail')).toEqual([]);
    });

    it('a resume: restartCount up, the clock compared and monotonic', () => {
      const v = verifyQuote(qResume.evidence, expect0(qResume, { previous: stateOf(verifyQuote(q2.evidence, expect0(q2))) }));
      expect(v.checks.every((c) => c.outcome === 'pass')).toBe(true);
      expect(v.checks.find((c) => c.check === 'quote.clock')!.reason).toBe('clock.resume');
      expect(v.transition).toBe('resume');
    });

    it('a reboot (Shutdown + Startup): accepted, the reboot reported', () => {
      const v = verifyQuote(qReboot.evidence, expect0(qReboot, { previous: stateOf(verifyQuote(qResume.evidence, expect0(qResume))) }));
      expect(v.checks.every((c) => c.outcome === 'pass')).toBe(true);
      expect(v.checks.find((c) => c.check === 'quote.reset-count')!.reason).toBe('reset.reboot');
      expect(v.checks.find((c) => c.check === 'quote.clock')!.reason).toBe('clock.reboot');
      expect(v.transition).toBe('reboot');
    });

    it('an honest power cut (safe = 0, resetCount up): accepted with a warning', () => {
      const v = verifyQuote(qCut1.evidence, expect0(qCut1, { previous: stateOf(verifyQuote(qReboot.evidence, expect0(qReboot))) }));
      expect(v.accepted).toBe(true);
      expect(v.checks.filter((c) => c.outcome !== 'pass').map((c) => `${c.check}:${c.outcome}:${c.reason}`)).toEqual(['quote.clock:warn:clock.unsafe']);
      expect(v.checks.find((c) => c.check === 'quote.reset-count')!.reason).toBe('reset.reboot');
      expect(v.clock?.safe).toBe(false);
    });
  });

  describe('attacks are rejected with their reason', () => {
    it('one byte flipped in the quote (firmwareVersion, so only the signature can notice)', () => {
      const attest = q1.evidence.attest.slice();
      // The last byte of firmwareVersion: before pcrSelect (count, hash, sizeofSelect, 3 bytes) and pcrDigest (size, 32 bytes).
      attest[attest.length - (2 + 32) - (4 + 2 + 1 + 3) - 1]! ^= 0x01;
      const v = verifyQuote({ ...q1.evidence, attest }, expect0(q1));
      expect(failures(v)).toEqual(['quote.signature:signature.invalid']);
      expect(v.attest!.firmwareVersion).not.toBe(q1.result.attest.firmwareVersion);
    });

    it('one byte flipped in the signature (ECDSA and RSA)', () => {
      for (const [s, ak, qn] of [
        [q1, akPublic, akQn],
        [qRsa, rsaPublic, rsaQn],
      ] as const) {
        const signature = (s.evidence.signature as Uint8Array).slice();
        signature[signature.length - 5]! ^= 0x40;
        expect(failures(verifyQuote({ ...s.evidence, signature }, expect0(s, { ak, akQualifiedName: qn })))).toEqual(['quote.signature:signature.invalid']);
      }
    });

    it('wrong nonce', () => {
      const other = newChallenge(q1.challenge.issuedAt, 60_000);
      expect(failures(verifyQuote(q1.evidence, expect0(q1, { challenge: other })))).toEqual(['quote.nonce:nonce.mismatch']);
    });

    it('a replayed old quote (the nonce of an older challenge), also caught by the clock', () => {
      expect(failures(verifyQuote(q1.evidence, expect0(q2)))).toEqual(['quote.nonce:nonce.mismatch']);
      const previous = stateOf(verifyQuote(q2.evidence, expect0(q2)));
      expect(failures(verifyQuote(q1.evidence, expect0(q2, { previous })))).toEqual(['quote.nonce:nonce.mismatch', 'quote.clock:clock.backwards']);
    });

    it('an expired challenge', () => {
      expect(failures(verifyQuote(q1.evidence, expect0(q1, { now: q1.challenge.expiresAt + 1 })))).toEqual(['quote.challenge:challenge.expired']);
    });

    it('PCR values supplied for indices outside the signed selection (the real PCR 10 added)', () => {
      const pcrValues = new Map([...q1.evidence.pcrValues].map(([b, m]) => [b, new Map(m)]));
      pcrValues.get(TPM_ALG.SHA256)!.set(10, pcr10);
      expect(failures(verifyQuote({ ...q1.evidence, pcrValues }, expect0(q1)))).toEqual(['quote.pcr-selection:pcr.outside-selection']);
    });

    it('the selection relabelled: another bank, other indices, or the labels the values came with', () => {
      const values = q1.evidence.pcrValues.get(TPM_ALG.SHA256)!;
      const otherBank = new Map([[TPM_ALG.SHA1, values]]);
      const v1 = verifyQuote({ ...q1.evidence, pcrValues: otherBank }, expect0(q1));
      expect(failures(v1)).toEqual(['quote.pcr-selection:pcr.selection-relabelled']);
      expect(v1.checks.find((c) => c.check === 'quote.pcr-digest')).toMatchObject({ outcome: 'not-performed', reason: 'pcr.values-incomplete' });
      const shifted = new Map([[TPM_ALG.SHA256, new Map([...values].map(([i, v]) => [i + 8, v]))]]);
      expect(failures(verifyQuote({ ...q1.evidence, pcrValues: shifted }, expect0(q1)))).toEqual(['quote.pcr-selection:pcr.selection-relabelled']);
      // CVE-2024-29039: a PCR file whose own selection differs from the signed one, with values that hash right.
      const labelled = [pcrSelection(TPM_ALG.SHA1, [0, 1, 2, 3, 4, 5, 6, 7])];
      expect(failures(verifyQuote({ ...q1.evidence, pcrSelection: labelled }, expect0(q1)))).toEqual(['quote.pcr-selection:pcr.selection-relabelled']);
      expect(failures(verifyQuote({ ...q1.evidence, pcrSelection: SELECTION }, expect0(q1)))).toEqual([]);
    });

    it('a PCR value changed after quoting', () => {
      const pcrValues = new Map([[TPM_ALG.SHA256, new Map(q1.evidence.pcrValues.get(TPM_ALG.SHA256)!)]]);
      pcrValues.get(TPM_ALG.SHA256)!.set(7, pcr10);
      expect(failures(verifyQuote({ ...q1.evidence, pcrValues }, expect0(q1)))).toEqual(['quote.pcr-digest:pcr.digest-mismatch']);
    });

    it('wrong attestation type: a Certify structure presented as a quote', () => {
      const s = certifyAsQuote;
      const v = verifyQuote({ attest: s.attest, signature: s.signature, pcrValues: s.pcrValues }, expect0(s));
      expect(failures(v)).toEqual(['quote.type:type.wrong']);
      expect(v.attest!.type).toBe(TPM_ST.ATTEST_CERTIFY);
    });

    it('missing TPM_GENERATED magic: the restricted AK made to sign a forged structure through a TPM2_Hash ticket (CVE-2024-29038)', () => {
      const s = forgedByAk;
      const v = verifyQuote({ attest: s.attest, signature: s.signature, pcrValues: s.pcrValues }, expect0(s));
      // The signature, nonce, signer and the attacker's PCR digest all check out: only the magic gives it away.
      expect(failures(v)).toEqual(['quote.magic:magic.not-generated']);
      expect(v.checks.find((c) => c.check === 'quote.signature')!.reason).toBe('signature.valid');
    });

    it('missing TPM_GENERATED magic: a TPM2_Sign over a forged structure with a non-restricted key', () => {
      const s = forgedNoMagicUnrestricted;
      const v = verifyQuote({ attest: s.attest, signature: s.signature, pcrValues: s.pcrValues }, expect0(s, { ak: s.signer, akQualifiedName: s.signerQn }));
      expect(failures(v)).toEqual(['ak.attributes:attributes.missing', 'quote.magic:magic.not-generated']);
      // With the magic forged as well, only the AK check stands between the forgery and acceptance.
      const m = forgedMagicUnrestricted;
      expect(failures(verifyQuote({ attest: m.attest, signature: m.signature, pcrValues: m.pcrValues }, expect0(m, { ak: m.signer, akQualifiedName: m.signerQn })))).toEqual([
        'ak.attributes:attributes.missing',
      ]);
    });

    it('AK not restricted: a real quote by a non-restricted signing key', () => {
      const s = unrestrictedQuote;
      const v = verifyQuote(s.evidence, expect0(s, { ak: s.signer, akQualifiedName: s.signerQn }));
      expect(failures(v)).toEqual(['ak.attributes:attributes.missing']);
      expect(v.checks.find((c) => c.check === 'ak.attributes')!.detail).toMatch(/lack restricted$/);
    });

    it('AK not fixedTPM: a real quote by a restricted signing key that may be duplicated', () => {
      const s = notFixedQuote;
      const v = verifyQuote(s.evidence, expect0(s, { ak: s.signer, akQualifiedName: s.signerQn }));
      expect(failures(v)).toEqual(['ak.attributes:attributes.missing']);
      expect(v.checks.find((c) => c.check === 'ak.attributes')!.detail).toMatch(/lack fixedTPM, fixedParent$/);
    });

    it('AK swapped between enrollment and quote: another AK under the same EK signs', () => {
      // The device presents the new AK's public area; the verifier holds the enrolled AK's qualified name.
      expect(failures(verifyQuote(qSwap.evidence, expect0(qSwap, { ak: swapPublic })))).toEqual(['quote.qualified-signer:signer.mismatch']);
      // And checked against the enrolled AK's key, its signature fails too.
      expect(failures(verifyQuote(qSwap.evidence, expect0(qSwap)))).toEqual(['quote.signature:signature.invalid', 'quote.qualified-signer:signer.mismatch']);
    });

    it('resetCount going backwards: a quote from before a reboot presented after it', () => {
      const previous = stateOf(verifyQuote(qReboot.evidence, expect0(qReboot)));
      expect(failures(verifyQuote(q2.evidence, expect0(q2, { previous })))).toEqual(['quote.reset-count:reset.backwards']);
    });

    it('the clock going backwards within one boot while safe = 1', () => {
      const previous = stateOf(verifyQuote(q2.evidence, expect0(q2)));
      expect(failures(verifyQuote(q1.evidence, expect0(q1, { previous })))).toEqual(['quote.clock:clock.backwards']);
    });

    it('restartCount going backwards within one boot while safe = 1', () => {
      const previous = stateOf(verifyQuote(qResume.evidence, expect0(qResume)));
      expect(failures(verifyQuote(q2.evidence, expect0(q2, { previous })))).toEqual(['quote.clock:clock.restart-backwards']);
    });

    it('safe = 0, the clock going backwards with resetCount and restartCount unchanged: the configured severity', () => {
      const previous = stateOf(verifyQuote(qCut2.evidence, expect0(qCut2)));
      expect(previous.safe).toBe(false);
      const byDefault = verifyQuote(qCut1.evidence, expect0(qCut1, { previous }));
      expect(byDefault.accepted).toBe(true);
      const clock = byDefault.checks.find((c) => c.check === 'quote.clock')!;
      expect(clock).toMatchObject({ outcome: 'warn', reason: 'clock.unsafe' });
      expect(clock.detail).toMatch(/clock \d+ is below the previous \d+/);
      expect(failures(verifyQuote(qCut1.evidence, expect0(qCut1, { previous, clockPolicy: { unsafe: 'fail' } })))).toEqual(['quote.clock:clock.unsafe']);
      // resetCount is still compared while safe = 0.
      const later = stateOf(verifyQuote(qCut2.evidence, expect0(qCut2)));
      expect(failures(verifyQuote(qReboot.evidence, expect0(qReboot, { previous: later })))).toEqual(['quote.reset-count:reset.backwards']);
    });
  });
});
