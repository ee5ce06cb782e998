/**
 * Quote verification rate on one core: verifyQuote (every check: AK
 * attributes from the prepared AK, signature, structure, magic, type, nonce,
 * expiry, qualified signer, PCR selection and digest, clock rules against a
 * previous state) next to a bare crypto.verify of the same signature over the
 * same bytes. Quotes are real: swtpm signs them with an ECDSA P-256 and an
 * RSA-2048 AK under the EK, over 8 and 24 SHA-256 PCRs. Each AK is prepared
 * (key imported, Name computed, AK checks made) once, as a verifier does per
 * device. Each group (AK kind × PCR count) puts bare crypto.verify first,
 * so the table's ratio column is verifyQuote / crypto.verify (goal ≥ 0.6).
 *
 * Both sides run in alternating batches over the same span and each side's
 * median batch counts, so noise from other processes lands on both alike.
 */
import { verify } from 'node:crypto';
import { akQualifiedName, prepareAk, type PreparedAk } from '../src/attest/ak.js';
import { newChallenge, type Challenge } from '../src/attest/challenge.js';
import { verifyQuote, type QuoteEvidence } from '../src/attest/quote.js';
import { createAk } from '../src/client/ak.js';
import { quote } from '../src/client/attestation.js';
import { createEk } from '../src/client/ek.js';
import { Tpm } from '../src/client/tpm.js';
import { Startup } from '../src/tpm/commands/index.js';
import { TPM_ALG, TPM_SU } from '../src/tpm/constants.js';
import { pcrSelection } from '../src/tpm/pcr.js';
import { publicKeyFromArea } from '../src/tpm/secret.js';
import { SwtpmTransport } from '../src/tpm/transport/index.js';
import { TPMT_SIGNATURE } from '../src/tpm/types/index.js';
import { encode } from '../src/tpm/wire/codec.js';
import { startSwtpm } from '../test/support/swtpm.js';
import type { BenchRow } from './measure.js';

interface Prepared {
  readonly ak: PreparedAk;
  readonly qn: Uint8Array;
  readonly challenge: Challenge;
  readonly evidence: QuoteEvidence;
  readonly bare: () => boolean;
}

/** Operations per second of `a` and `b`, alternating batches over ~ms, from each side's median batch. */
function paired(a: () => unknown, b: () => unknown, ms: number): [number, number] {
  const batch = 64;
  const time = (fn: () => unknown): number => {
    const start = performance.now();
    for (let i = 0; i < batch; i++) fn();
    return performance.now() - start;
  };
  // Warm-up until the JIT has settled on both sides (at least 300 ms).
  const warm = performance.now() + Math.min(300, ms);
  while (performance.now() < warm) {
    time(a);
    time(b);
  }
  const ta: number[] = [];
  const tb: number[] = [];
  const end = performance.now() + ms;
  while (performance.now() < end || ta.length < 5) {
    ta.push(time(a));
    tb.push(time(b));
  }
  const median = (xs: number[]): number => xs.sort((x, y) => x - y)[xs.length >> 1]!;
  return [(batch * 1000) / median(ta), (batch * 1000) / median(tb)];
}

/** Rows for the table: per AK kind and PCR count (8, 24), bare crypto.verify, then verifyQuote. */
export async function benchQuoteVerify(ms = 1000): Promise<BenchRow[]> {
  const sw = await startSwtpm();
  const tpm = new Tpm(new SwtpmTransport({ port: sw.port, ctrlPort: sw.ctrlPort }));
  const cases = new Map<string, Map<number, Prepared>>();
  try {
    await tpm.run(Startup, {}, { startupType: TPM_SU.CLEAR });
    const ek = await createEk(tpm, { template: 'L-2', persistentHandle: false });
    for (const [label, alg] of [
      ['ECDSA P-256', 'ecc'],
      ['RSA-2048', 'rsa'],
    ] as const) {
      const ak = await createAk(tpm, ek, { alg });
      const prepared = prepareAk(ak.publicArea);
      const qn = akQualifiedName(ek.publicArea, ak.publicArea);
      const key = publicKeyFromArea(ak.publicArea);
      const byCount = new Map<number, Prepared>();
      for (const n of [8, 24]) {
        const challenge = newChallenge(Date.now(), 3_600_000);
        const q = await quote(tpm, ak, [pcrSelection(TPM_ALG.SHA256, Array.from({ length: n }, (_, i) => i))], challenge.nonce);
        const sig = q.signature;
        let bare: () => boolean;
        if (sig.sigAlg === TPM_ALG.ECDSA) {
          const rs = new Uint8Array(64);
          rs.set(sig.signature.signatureR, 32 - sig.signature.signatureR.length);
          rs.set(sig.signature.signatureS, 64 - sig.signature.signatureS.length);
          bare = () => verify('sha256', q.attestBytes, { key, dsaEncoding: 'ieee-p1363' }, rs);
        } else if (sig.sigAlg === TPM_ALG.RSASSA) {
          const s = sig.signature.sig;
          bare = () => verify('sha256', q.attestBytes, key, s);
        } else throw new Error('unexpected signature scheme');
        if (!bare()) throw new Error('the bare signature does not verify');
        byCount.set(n, { ak: prepared, qn, challenge, evidence: { attest: q.attestBytes, signature: encode(TPMT_SIGNATURE, sig), pcrValues: q.pcrValues }, bare });
      }
      cases.set(label, byCount);
      await tpm.flush(ak);
    }
    await tpm.flush(ek);
  } finally {
    await tpm.close();
    await sw.stop();
  }

  const rows: BenchRow[] = [];
  for (const [label, byCount] of cases) {
    for (const [n, p] of byCount) {
      // A previous state one millisecond earlier in the same boot, so the clock rules compare.
      const first = verifyQuote(p.evidence, { ak: p.ak, akQualifiedName: p.qn, challenge: p.challenge, now: Date.now() });
      if (!first.accepted || first.clock === undefined) throw new Error(`the honest ${label} quote is not accepted`);
      const previous = { ...first.clock, clock: first.clock.clock - 1n };
      const now = p.challenge.issuedAt + 1;
      const run = (): boolean => verifyQuote(p.evidence, { ak: p.ak, akQualifiedName: p.qn, challenge: p.challenge, now, previous }).accepted;
      if (!run()) throw new Error('verifyQuote rejects the quote it is timing');
      const [bare, full] = paired(p.bare, run, ms);
      const group = `quote verify ${label}, ${n} PCRs`;
      rows.push({ group, name: 'crypto.verify (bare signature)', opsPerSec: bare });
      rows.push({ group, name: 'verifyQuote (all checks)', opsPerSec: full });
    }
  }
  return rows;
}
