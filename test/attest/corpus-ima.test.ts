/**
 * IMA corpus: honest evidence from swtpm and attacks on it, each rejected
 * with its exact reason.
 *
 * The honest log is the real Raspberry Pi list (test/fixtures/ima, 922
 * ima-ng entries) followed by entries of the other templates, a violation
 * and entries for PCR 11. Two fresh swtpms play two kernels: each entry is
 * extended with the client's pcrExtend, on one TPM as Linux ≥ 5.8 does
 * (every bank with H_bank(template data), violations as 0xFF of the bank
 * size) and on the other as older kernels do (the SHA-1 template hash,
 * zero-padded, in every bank). Each TPM is quoted (ECC AK under the EK) in
 * the middle of the log and at its end; the replay is checked against those
 * signed PCR values.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { encodeImaAscii, encodeImaBinary, makeImaEntry, parseImaAscii, parseImaBinary, replayIma, type ImaEntry, type ImaKernelBehaviour, type ImaReplayResult } from '../../src/attest/ima.js';
import { failures } from '../../src/attest/verdict.js';
import { createAk, createEk, pcrExtend, quote, Tpm, verifyWithNode, type Ak, type QuoteResult } from '../../src/client/index.js';
import { Startup } from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_SU } from '../../src/tpm/constants.js';
import { EvidenceError } from '../../src/tpm/errors.js';
import { pcrSelection } from '../../src/tpm/pcr.js';
import { SwtpmTransport } from '../../src/tpm/transport/index.js';
import type { TPMT_HA } from '../../src/tpm/types/index.js';
import { describeWithSwtpm, startSwtpm, type SwtpmInstance } from '../support/swtpm.js';

const H = (alg: string, ...parts: Uint8Array[]): Uint8Array => {
  const h = createHash(alg);
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};
const text = (s: string): Uint8Array => new TextEncoder().encode(s);

const REAL = parseImaBinary(new Uint8Array(readFileSync(new URL('../fixtures/ima/embrave-rpi-binary_runtime_measurements', import.meta.url)))).entries;
const n0 = REAL.length;
const sha256 = (s: string) => ({ algorithm: 'sha256', digest: H('sha256', text(s)) });
const TAIL = [
  makeImaEntry({ index: n0, template: 'ima', fileDigest: { algorithm: 'sha1', digest: H('sha1', text('init')) }, name: '/sbin/init' }),
  makeImaEntry({ index: n0 + 1, template: 'ima-sig', fileDigest: sha256('dd'), name: '/usr/bin/dd', signature: new Uint8Array(randomBytes(72)) }),
  makeImaEntry({ index: n0 + 2, template: 'ima-buf', fileDigest: sha256('root=/dev/mmcblk0p2'), name: 'kexec-cmdline', buffer: text('root=/dev/mmcblk0p2') }),
  makeImaEntry({ index: n0 + 3, violation: true, fileDigest: { algorithm: 'sha256', digest: new Uint8Array(32) }, name: '/var/log/messages' }),
  makeImaEntry({ index: n0 + 4, pcr: 11, fileDigest: sha256('a'), name: '/opt/app/a' }),
  makeImaEntry({ index: n0 + 5, pcr: 11, fileDigest: sha256('b'), name: '/opt/app b' }),
  makeImaEntry({ index: n0 + 6, fileDigest: sha256('late'), name: '/usr/bin/late' }),
];
/** The honest list as the agent sends it: binary bytes, parsed back (entries carry their offsets). */
const LOG_BYTES = encodeImaBinary([...REAL, ...TAIL]);
const LOG = parseImaBinary(LOG_BYTES).entries;
const MID = 500;

/** What the kernel extends for an entry, per bank (tpm-spec-facts.md §11). */
function extendsFor(e: ImaEntry, behaviour: ImaKernelBehaviour): TPMT_HA[] {
  const banks = [
    { hashAlg: TPM_ALG.SHA1, node: 'sha1', size: 20 },
    { hashAlg: TPM_ALG.SHA256, node: 'sha256', size: 32 },
  ] as const;
  return banks.map(({ hashAlg, node, size }) => {
    let digest: Uint8Array;
    if (behaviour === 'bank-hash') digest = e.violation ? new Uint8Array(size).fill(0xff) : H(node, e.templateData!);
    else {
      digest = new Uint8Array(size);
      digest.set(e.violation ? new Uint8Array(20).fill(0xff) : e.templateHash);
    }
    return { hashAlg, digest } as TPMT_HA;
  });
}

interface Device {
  sw: SwtpmInstance;
  tpm: Tpm;
  ak: Ak;
  mid: QuoteResult;
  end: QuoteResult;
}

const SELECTION = [pcrSelection(TPM_ALG.SHA1, [10, 11]), pcrSelection(TPM_ALG.SHA256, [10, 11])];

async function device(behaviour: ImaKernelBehaviour): Promise<Device> {
  const sw = await startSwtpm();
  const tpm = new Tpm(new SwtpmTransport({ port: sw.port, ctrlPort: sw.ctrlPort }));
  try {
    await tpm.run(Startup, {}, { startupType: TPM_SU.CLEAR });
    const ek = await createEk(tpm, { template: 'L-2', persistentHandle: false });
    const ak = await createAk(tpm, ek, { alg: 'ecc' });
    await tpm.flush(ek);
    for (const e of LOG.slice(0, MID)) await pcrExtend(tpm, e.pcr, extendsFor(e, behaviour));
    const mid = await quote(tpm, ak, SELECTION, new Uint8Array(randomBytes(32)));
    for (const e of LOG.slice(MID)) await pcrExtend(tpm, e.pcr, extendsFor(e, behaviour));
    const end = await quote(tpm, ak, SELECTION, new Uint8Array(randomBytes(32)));
    return { sw, tpm, ak, mid, end };
  } catch (e) {
    await tpm.close();
    await sw.stop();
    throw e;
  }
}

const reasons = (r: ImaReplayResult): string[] => r.verdict.checks.map((c) => `${c.check}:${c.reason}`);

describeWithSwtpm('IMA corpus against swtpm quotes', () => {
  const devices = {} as Record<ImaKernelBehaviour, Device>;

  beforeAll(async () => {
    const [a, b] = await Promise.allSettled([device('bank-hash'), device('padded-sha1')]);
    if (a.status === 'fulfilled') devices['bank-hash'] = a.value;
    if (b.status === 'fulfilled') devices['padded-sha1'] = b.value;
    if (a.status === 'rejected') throw a.reason;
    if (b.status === 'rejected') throw b.reason;
  }, 60_000);

  afterAll(async () => {
    for (const d of Object.values(devices)) {
      await d.tpm.close();
      await d.sw.stop();
    }
  });

  it('the quotes are signed by the AKs, over PCR 10 and 11 of both banks', () => {
    for (const d of Object.values(devices)) {
      for (const q of [d.mid, d.end]) {
        expect(verifyWithNode(d.ak.publicArea, q.attestBytes, q.signature)).toBe(true);
        expect([...q.pcrValues.keys()].sort((x, y) => x - y)).toEqual([TPM_ALG.SHA1, TPM_ALG.SHA256]);
        for (const pcrs of q.pcrValues.values()) expect([...pcrs.keys()].sort((x, y) => x - y)).toEqual([10, 11]);
      }
    }
  });

  it.each([
    ['bank-hash', '5.8+', 'kernel.since-5.8'],
    ['padded-sha1', 'pre-5.8', 'kernel.before-5.8'],
  ] as const)('honest: the whole log replays to the quote of the %s TPM, which tells the kernel apart', (behaviour, kernel, kernelReason) => {
    const r = replayIma(LOG, undefined, { quoted: devices[behaviour].end.pcrValues });
    expect(failures(r.verdict)).toEqual([]);
    expect(reasons(r)).toEqual(['ima.sequence:sequence.ok', 'ima.template-hash:template-hash.valid', 'ima.replay:replay.match', 'ima.violations:violations.present', `ima.kernel:${kernelReason}`]);
    expect([r.kernel, r.behaviour, r.covered.length, r.pending.length, r.violations]).toEqual([kernel, { sha1: 'either', sha256: behaviour }, LOG.length, 0, 1]);
    for (const [bank, pcrs] of devices[behaviour].end.pcrValues) {
      for (const [pcr, value] of pcrs) expect(Buffer.from(r.pcrValues.get(bank)!.get(pcr)!).equals(Buffer.from(value))).toBe(true);
    }
    expect(r.state.entryIndex).toBe(LOG.length);
    expect(r.state.byteOffset).toBe(LOG_BYTES.length);
  });

  it('honest: the ASCII form of the same log is accepted the same way', () => {
    for (const behaviour of ['bank-hash', 'padded-sha1'] as const) {
      const entries = parseImaAscii(encodeImaAscii(LOG)).entries;
      const r = replayIma(entries, undefined, { quoted: devices[behaviour].end.pcrValues });
      expect(failures(r.verdict)).toEqual([]);
      expect(r.behaviour['sha256']).toBe(behaviour);
    }
  });

  it('a quote taken in the middle of the log: the matching prefix is accepted, the rest stays pending, the next quote takes it', () => {
    for (const behaviour of ['bank-hash', 'padded-sha1'] as const) {
      const d = devices[behaviour];
      const first = replayIma(LOG, undefined, { quoted: d.mid.pcrValues });
      expect(failures(first.verdict)).toEqual([]);
      expect(reasons(first)).toContain('ima.replay:replay.prefix');
      expect([first.covered.length, first.pending.length, first.state.entryIndex, first.state.byteOffset]).toEqual([MID, LOG.length - MID, MID, LOG[MID]!.offset]);
      // The agent sends what follows (from the stored byte offset); state through JSON as a database would keep it.
      const rest = parseImaBinary(LOG_BYTES.subarray(first.state.byteOffset!), { firstIndex: first.state.entryIndex, baseOffset: first.state.byteOffset! }).entries;
      const second = replayIma(rest, JSON.parse(JSON.stringify(first.state)), { quoted: d.end.pcrValues });
      expect(failures(second.verdict)).toEqual([]);
      expect(reasons(second)).toContain('ima.replay:replay.match');
      expect(second.covered.map((e) => e.index)).toEqual(LOG.slice(MID).map((e) => e.index));
      expect(second.state).toEqual(replayIma(LOG, undefined, { quoted: d.end.pcrValues }).state);
    }
  });

  it('resend from an earlier index (rust-keylime#1077): resent entries are recognised and never extended twice', () => {
    const d = devices['bank-hash'];
    const first = replayIma(LOG, undefined, { quoted: d.mid.pcrValues });
    const once = replayIma(LOG, undefined, { quoted: d.end.pcrValues });
    // From 10 entries before the stored index: inside the remembered window.
    const fromNear = replayIma(LOG.slice(MID - 10), first.state, { quoted: d.end.pcrValues });
    expect(failures(fromNear.verdict)).toEqual([]);
    expect(reasons(fromNear)).toContain('ima.sequence:resend.skipped');
    expect([fromNear.skipped, fromNear.covered.length]).toEqual([10, LOG.length - MID]);
    expect(fromNear.state).toEqual(once.state);
    // From 0: the resent prefix is replayed and must reach the stored values.
    const fromZero = replayIma(LOG, first.state, { quoted: d.end.pcrValues });
    expect(failures(fromZero.verdict)).toEqual([]);
    expect(fromZero.verdict.checks[0]!.detail).toMatch(/from 0/);
    expect([fromZero.skipped, fromZero.covered.length]).toEqual([MID, LOG.length - MID]);
    expect(fromZero.state).toEqual(once.state);
    // The same resend after everything was accepted: nothing new, the quote still matches, nothing counted twice.
    const again = replayIma(LOG.slice(MID - 10), once.state, { quoted: d.end.pcrValues });
    expect(failures(again.verdict)).toEqual([]);
    expect([again.skipped, again.covered.length, again.state.entryIndex]).toEqual([LOG.length - MID + 10, 0, LOG.length]);
  });

  it('truncated log: the quote matches no prefix; below the accepted index it is log.truncated; cut bytes do not parse', () => {
    for (const behaviour of ['bank-hash', 'padded-sha1'] as const) {
      const r = replayIma(LOG.slice(0, -5), undefined, { quoted: devices[behaviour].end.pcrValues });
      expect(failures(r.verdict)).toEqual(['ima.replay:replay.mismatch']);
      expect([r.covered.length, r.state.entryIndex]).toEqual([0, 0]);
    }
    const d = devices['bank-hash'];
    const accepted = replayIma(LOG, undefined, { quoted: d.end.pcrValues });
    const shorter = replayIma(LOG.slice(0, MID), accepted.state, { quoted: d.end.pcrValues });
    expect(failures(shorter.verdict)).toEqual(['ima.sequence:log.truncated']);
    expect(shorter.state).toBe(accepted.state);
    const cutAt = LOG[MID]!.offset + 30;
    let err: unknown;
    try {
      parseImaBinary(LOG_BYTES.subarray(0, cutAt));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(EvidenceError);
    expect((err as EvidenceError).code).toBe('evidence.ima');
    expect((err as EvidenceError).offset).toBeGreaterThanOrEqual(LOG[MID]!.offset);
  });

  it('reordered log: two entries swapped no longer replay to the quote; in a resend they are log.reordered', () => {
    const swapped = [...LOG];
    [swapped[100], swapped[101]] = [swapped[101]!, swapped[100]!];
    const relabelled = swapped.map((e, i) => ({ ...e, index: i }));
    for (const behaviour of ['bank-hash', 'padded-sha1'] as const) {
      expect(failures(replayIma(relabelled, undefined, { quoted: devices[behaviour].end.pcrValues }).verdict)).toEqual(['ima.replay:replay.mismatch']);
    }
    const d = devices['bank-hash'];
    const first = replayIma(LOG, undefined, { quoted: d.mid.pcrValues });
    const resend = LOG.slice(MID - 10).map((e) => ({ ...e }));
    [resend[2], resend[3]] = [{ ...resend[3]!, index: resend[2]!.index }, { ...resend[2]!, index: resend[3]!.index }];
    const r = replayIma(resend, first.state, { quoted: d.end.pcrValues });
    expect(failures(r.verdict)).toEqual(['ima.sequence:log.reordered']);
    expect(r.state).toBe(first.state);
  });

  it("an entry's file digest changed: its template hash no longer matches its data (and the per-bank replay breaks too)", () => {
    const bytes = LOG_BYTES.slice();
    const victim = LOG[200]!;
    // The d-ng digest sits after the header, the data length, the field length and "sha256:\0".
    const digestAt = victim.offset + 4 + 20 + 4 + victim.template.length + 4 + 4 + 'sha256:'.length + 1;
    bytes[digestAt + 5]! ^= 0x01;
    const tampered = parseImaBinary(bytes).entries;
    expect(tampered[200]!.fileDigest!.digest[5]).not.toBe(victim.fileDigest!.digest[5]);
    expect(failures(replayIma(tampered, undefined, { quoted: devices['padded-sha1'].end.pcrValues }).verdict)).toEqual(['ima.template-hash:template-hash.mismatch']);
    expect(failures(replayIma(tampered, undefined, { quoted: devices['bank-hash'].end.pcrValues }).verdict)).toEqual([
      'ima.template-hash:template-hash.mismatch',
      'ima.replay:replay.mismatch',
    ]);
  });

  it('a forged template hash (file digest changed and the template hash recomputed to match): the replay misses the quote', () => {
    const victim = LOG[300]!;
    const forged = makeImaEntry({ index: victim.index, fileDigest: { algorithm: 'sha256', digest: H('sha256', text('trojan')) }, name: victim.name! });
    const log = LOG.map((e) => (e.index === victim.index ? forged : e));
    for (const behaviour of ['bank-hash', 'padded-sha1'] as const) {
      const r = replayIma(log, undefined, { quoted: devices[behaviour].end.pcrValues });
      expect(failures(r.verdict)).toEqual(['ima.replay:replay.mismatch']);
      expect(r.covered).toEqual([]);
    }
  });

  it('a resend that rewrites an accepted entry is log.rewritten; one that skips entries is log.gap', () => {
    const d = devices['bank-hash'];
    const first = replayIma(LOG, undefined, { quoted: d.mid.pcrValues });
    const victim = LOG[MID - 5]!;
    const forged = makeImaEntry({ index: victim.index, fileDigest: { algorithm: 'sha256', digest: H('sha256', text('other')) }, name: victim.name! });
    const rewritten = LOG.slice(MID - 10).map((e) => (e.index === victim.index ? forged : e));
    expect(failures(replayIma(rewritten, first.state, { quoted: d.end.pcrValues }).verdict)).toEqual(['ima.sequence:log.rewritten']);
    // Rewritten far back (outside the remembered window), in a resend from 0: the prefix replay catches it.
    const old = LOG[10]!;
    const oldForged = makeImaEntry({ index: old.index, fileDigest: { algorithm: 'sha256', digest: H('sha256', text('old')) }, name: old.name! });
    expect(failures(replayIma(LOG.map((e) => (e.index === old.index ? oldForged : e)), first.state, { quoted: d.end.pcrValues }).verdict)).toEqual(['ima.sequence:log.rewritten']);
    expect(failures(replayIma(LOG.slice(MID + 5), first.state, { quoted: d.end.pcrValues }).verdict)).toEqual(['ima.sequence:log.gap']);
  });

  it("a quote from the other kernel's TPM does not match a state that settled the behaviour", () => {
    const settled = replayIma(LOG.slice(0, MID), undefined, { quoted: devices['bank-hash'].mid.pcrValues });
    expect(settled.state.behaviour).toEqual({ sha256: 'bank-hash' });
    const r = replayIma(LOG.slice(MID), settled.state, { quoted: devices['padded-sha1'].end.pcrValues });
    expect(failures(r.verdict)).toEqual(['ima.replay:replay.mismatch']);
  });
});
