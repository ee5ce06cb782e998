/**
 * The event-log part of the adversarial corpus, with evidence from swtpm.
 *
 * Honest evidence: a real laptop's crypto-agile log (go-eventlog
 * glinux-alex.bin, SHA-1 and SHA-256 banks, StartupLocality 3) is applied to
 * a fresh swtpm — TPM2_Startup sent from locality 3 through swtpm's control
 * channel, so PCR 0 starts at 0…03 as on the laptop, then every extended
 * event of PCRs 0–9 with the client's pcrExtend — and the TPM quotes
 * PCRs 0–9 of both banks. A real SHA-1 log (go-eventlog debian-10.bin) gets
 * the same on a second swtpm. verifyEventLog accepts both.
 *
 * Then each attack, each rejected with its exact reasons:
 *  - the log does not replay to the quote (a digest changed, an event
 *    dropped, a record-aligned truncation, an extend the log does not show);
 *  - event types retagged: go-attestation's disclosure (PCR 7's real events
 *    relabelled EV_UNUSED, forged Secure Boot events appended and extended),
 *    and an application relabelled as a separator so a type-trusting
 *    verifier would lose it;
 *  - event sizes beyond the log, a zero-length event, an oversized event,
 *    a Spec ID event with bad digest sizes, a log cut inside a record.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { concat, encodeAgileRecord } from '../../fuzz/attest-eventlog.js';
import { EV, MAX_EVENT_SIZE, parseEventLog, type EventLog, type TcgEvent } from '../../src/attest/eventlog.js';
import { decodeEvents, secureBootState, verifyEventLog } from '../../src/attest/events.js';
import { failures, type Verdict } from '../../src/attest/verdict.js';
import { createPrimary, eccSigningTemplate, pcrBanks, pcrExtend, quote, Tpm, type QuoteResult } from '../../src/client/index.js';
import { Startup } from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_RH, TPM_SU } from '../../src/tpm/constants.js';
import { pcrSelection } from '../../src/tpm/pcr.js';
import { SwtpmTransport } from '../../src/tpm/transport/index.js';
import type { TPMT_HA } from '../../src/tpm/types/index.js';
import { describeWithSwtpm, startSwtpm, type SwtpmInstance } from '../support/swtpm.js';

const FIXTURES = new URL('../fixtures/eventlog/', import.meta.url);
const fixture = (name: string): Uint8Array => new Uint8Array(readFileSync(new URL(name, FIXTURES)));
const QUOTED_PCRS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];

/** A booted TPM: swtpm started from `locality`, with a log's extends of PCRs 0–9 applied, and a quoting key. */
interface Device {
  sw: SwtpmInstance;
  tpm: Tpm;
  key: Awaited<ReturnType<typeof createPrimary>>;
  banks: number[];
  quote(): Promise<QuoteResult>;
}

async function boot(log: EventLog, locality: number): Promise<Device> {
  const sw = await startSwtpm();
  const tpm = new Tpm(new SwtpmTransport({ port: sw.port, ctrlPort: sw.ctrlPort }));
  // Startup from the log's locality: libtpms then starts PCR 0 at 0…0L (PCRStartup, as the PC Client requires).
  await tpm.run(Startup, {}, { startupType: TPM_SU.CLEAR }, { locality });
  const allocated = (await pcrBanks(tpm)).map((s) => s.hash as number);
  const banks = log.banks.filter((b) => allocated.includes(b));
  expect(banks).toEqual(log.banks);
  for (const e of log.events) await applyEvent(tpm, e, banks);
  const key = await createPrimary(tpm, TPM_RH.ENDORSEMENT, eccSigningTemplate());
  const selection = banks.map((b) => pcrSelection(b as never, QUOTED_PCRS));
  return { sw, tpm, key, banks, quote: () => quote(tpm, key, selection, randomBytes(16)) };
}

/** What the firmware did for one event: PCR_Extend of its digests (EV_NO_ACTION is not extended). */
async function applyEvent(tpm: Tpm, e: TcgEvent, banks: readonly number[]): Promise<void> {
  if (e.eventType === EV.NO_ACTION || !QUOTED_PCRS.includes(e.pcrIndex)) return;
  const digests = e.digests.filter((d) => banks.includes(d.hashAlg)).map((d) => ({ hashAlg: d.hashAlg, digest: d.digest }) as TPMT_HA);
  await pcrExtend(tpm, e.pcrIndex, digests);
}

const verify = (log: Uint8Array, q: QuoteResult): Verdict => verifyEventLog(log, q.pcrValues, q.attest.attested.pcrSelect);
const replayResults = (v: Verdict): string[] => v.checks.filter((c) => c.check === 'eventlog.replay').map((c) => `${c.outcome}:${c.reason}:${c.detail.split(':')[0]}`);

/** The log with record `index` rewritten: type, one bank's digest, size field; the other bytes kept. */
function rewrite(bytes: Uint8Array, log: EventLog, index: number, change: { eventType?: number; digestAlg?: number; digest?: Uint8Array; eventSize?: number }): Uint8Array {
  const out = bytes.slice();
  const e = log.events[index]!;
  const v = new DataView(out.buffer);
  if (change.eventType !== undefined) v.setUint32(e.offset + 4, change.eventType, true);
  if (change.eventSize !== undefined) v.setUint32(e.dataOffset - 4, change.eventSize, true);
  if (change.digestAlg !== undefined) {
    const d = e.digests.find((x) => x.hashAlg === change.digestAlg)!;
    out.set(change.digest!, d.digest.byteOffset - log.events[0]!.data.byteOffset + log.events[0]!.dataOffset);
  }
  return out;
}

/** The log without record `index`. */
function drop(bytes: Uint8Array, log: EventLog, index: number): Uint8Array {
  const e = log.events[index]!;
  return concat([bytes.subarray(0, e.offset), bytes.subarray(e.dataOffset + e.data.length)]);
}

describeWithSwtpm('event-log corpus against swtpm quotes', () => {
  const laptopBytes = fixture('ge-glinux-alex.bin');
  const laptop = parseEventLog(laptopBytes);
  const debianBytes = fixture('ge-debian-10.bin');
  const debian = parseEventLog(debianBytes);
  let device: Device;
  let sha1Device: Device;
  let honest: QuoteResult;

  beforeAll(async () => {
    [device, sha1Device] = await Promise.all([boot(laptop, 3), boot(debian, 0)]);
    honest = await device.quote();
  }, 60_000);

  afterAll(async () => {
    for (const d of [device, sha1Device]) {
      await d?.tpm.close();
      await d?.sw.stop();
    }
  });

  describe('honest evidence is accepted', () => {
    it('the laptop\'s crypto-agile log replays to the quote of both banks, PCR 0 from locality 3', async () => {
      const v = verify(laptopBytes, honest);
      expect(failures(v)).toEqual([]);
      expect(v.accepted).toBe(true);
      const results = replayResults(v);
      // PCRs 0–7 hold the firmware's events, 8 and 9 nothing: for both banks.
      for (const bank of ['sha1', 'sha256']) {
        for (const p of [0, 1, 2, 3, 4, 5, 6, 7]) expect(results).toContain(`pass:pcr.match:${bank} PCR ${p}`);
        for (const p of [8, 9]) expect(results).toContain(`pass:pcr.initial:${bank} PCR ${p}`);
      }
      expect(results.filter((r) => r.startsWith('pass')).length).toBe(20);
      // The TPM agrees with the log about the locality: PCR 0 was started at 0…03.
      expect(honest.pcrValues.get(TPM_ALG.SHA256)!.get(0)).not.toEqual(new Uint8Array(32));
      expect(secureBootState(decodeEvents(laptop))).toMatchObject({ state: 'disabled', digestVerified: true });
    });

    it('a SHA-1 log (Debian) replays to a SHA-1 quote', async () => {
      const q = await sha1Device.quote();
      const v = verify(debianBytes, q);
      expect(failures(v)).toEqual([]);
      expect(replayResults(v).filter((r) => r.startsWith('pass:pcr.match')).length).toBe(8);
      expect(secureBootState(decodeEvents(debian)).state).toBe('enabled');
    });
  });

  describe('an event log that does not replay to the quote', () => {
    const app = laptop.events.find((e) => e.eventType === EV.EFI_BOOT_SERVICES_APPLICATION)!;

    it('one SHA-256 digest changed: that bank\'s PCR fails, the SHA-1 bank still matches', () => {
      const forged = rewrite(laptopBytes, laptop, app.index, { digestAlg: TPM_ALG.SHA256, digest: new Uint8Array(32).fill(0x42) });
      const v = verify(forged, honest);
      expect(failures(v)).toEqual(['eventlog.replay:pcr.mismatch']);
      expect(replayResults(v)).toContain(`fail:pcr.mismatch:sha256 PCR ${app.pcrIndex}`);
      expect(replayResults(v)).toContain(`pass:pcr.match:sha1 PCR ${app.pcrIndex}`);
    });

    it('an event dropped: its PCR fails in both banks', () => {
      const action = laptop.events.find((e) => e.eventType === EV.EFI_ACTION && e.pcrIndex === 4) ?? laptop.events.find((e) => e.pcrIndex === 4 && e.eventType === EV.SEPARATOR)!;
      const v = verify(drop(laptopBytes, laptop, action.index), honest);
      expect(failures(v)).toEqual(['eventlog.replay:pcr.mismatch', 'eventlog.replay:pcr.mismatch']);
      expect(replayResults(v).filter((r) => r.startsWith('fail'))).toEqual([`fail:pcr.mismatch:sha1 PCR 4`, `fail:pcr.mismatch:sha256 PCR 4`]);
    });

    it('a log truncated at a record boundary parses but replays short', () => {
      const cut = laptop.events[laptop.events.length - 3]!;
      const v = verify(laptopBytes.subarray(0, cut.offset), honest);
      const lost = new Set(laptop.events.slice(cut.index).filter((e) => e.eventType !== EV.NO_ACTION).map((e) => e.pcrIndex));
      expect(lost.size).toBeGreaterThan(0);
      expect(failures(v).length).toBe(2 * lost.size);
      expect(new Set(failures(v))).toEqual(new Set(['eventlog.replay:pcr.mismatch']));
    });

    it('extends the log does not show: an unlogged PCR, and a PCR with one extend too many', async () => {
      // A fresh device, so that the honest quote of the others stays valid.
      const d = await boot(laptop, 3);
      try {
        await pcrExtend(d.tpm, 8, [{ hashAlg: TPM_ALG.SHA256, digest: new Uint8Array(32).fill(8) } as TPMT_HA]);
        await pcrExtend(d.tpm, 4, [{ hashAlg: TPM_ALG.SHA1, digest: new Uint8Array(20).fill(4) } as TPMT_HA]);
        const v = verify(laptopBytes, await d.quote());
        expect(replayResults(v).filter((r) => r.startsWith('fail'))).toEqual(['fail:pcr.mismatch:sha1 PCR 4', 'fail:pcr.unlogged:sha256 PCR 8']);
      } finally {
        await d.tpm.close();
        await d.sw.stop();
      }
    }, 30_000);
  });

  describe('event types retagged', () => {
    it('go-attestation\'s disclosure: PCR 7 relabelled EV_UNUSED, forged Secure Boot events appended — the replay holds, the claims do not', async () => {
      const d = await boot(laptop, 3);
      try {
        // The attacker (code execution after boot) relabels every real PCR 7 event…
        let forged = laptopBytes;
        for (const e of laptop.events.filter((x) => x.pcrIndex === 7)) forged = rewrite(forged, laptop, e.index, { eventType: EV.UNUSED });
        // …then appends copies of the SecureBoot variable (value 1) and a separator, and extends PCR 7 with them.
        const sbEvent = laptop.events.find((e) => e.pcrIndex === 7 && e.eventType === EV.EFI_VARIABLE_DRIVER_CONFIG)!;
        const enabled = sbEvent.data.slice();
        enabled[enabled.length - 1] = 1;
        const separator = laptop.events.find((e) => e.pcrIndex === 7 && e.eventType === EV.SEPARATOR)!;
        const { createHash } = await import('node:crypto');
        const records = [
          { pcrIndex: 7, eventType: EV.EFI_VARIABLE_DRIVER_CONFIG, data: enabled },
          { pcrIndex: 7, eventType: EV.SEPARATOR, data: separator.data },
        ].map((r) => ({ ...r, digests: [TPM_ALG.SHA1, TPM_ALG.SHA256].map((alg) => ({ hashAlg: alg, digest: new Uint8Array(createHash(alg === TPM_ALG.SHA1 ? 'sha1' : 'sha256').update(r.data).digest()) })) }));
        for (const r of records) await pcrExtend(d.tpm, 7, r.digests as TPMT_HA[]);
        forged = concat([forged, ...records.map(encodeAgileRecord)]);
        const q = await d.quote();
        const v = verify(forged, q);
        // PCR 7 replays: the digests are all there, in order.
        expect(replayResults(v)).toContain('pass:pcr.match:sha256 PCR 7');
        expect(v.checks.filter((c) => c.check === 'eventlog.replay' && c.outcome === 'fail')).toEqual([]);
        // But EV_UNUSED is no PCR 7 type, and the real separator now hides under it.
        expect(new Set(failures(v))).toEqual(new Set(['eventlog.event-type:event.type-unexpected', 'eventlog.separator:separator.retagged']));
        // And Secure Boot is not read as enabled: the real variable (relabelled) and the forged one are both seen.
        const sb = secureBootState(decodeEvents(parseEventLog(forged)));
        expect([sb.state, sb.reason]).toEqual(['unknown', 'variable.duplicate']);
        // The unmodified log no longer matches this quote.
        expect(failures(verify(laptopBytes, q))).toEqual(['eventlog.replay:pcr.mismatch', 'eventlog.replay:pcr.mismatch']);
      } finally {
        await d.tpm.close();
        await d.sw.stop();
      }
    }, 30_000);

    it('an application relabelled as a separator: the replay holds, the separator\'s data does not hash to its digest', () => {
      const app = laptop.events.find((e) => e.eventType === EV.EFI_BOOT_SERVICES_APPLICATION)!;
      const v = verify(rewrite(laptopBytes, laptop, app.index, { eventType: EV.SEPARATOR }), honest);
      expect(v.checks.filter((c) => c.check === 'eventlog.replay' && c.outcome === 'fail')).toEqual([]);
      expect(failures(v)).toEqual(['eventlog.event-data:event.digest-mismatch', 'eventlog.separator:separator.duplicate', 'eventlog.separator:separator.value']);
      expect(v.checks.find((c) => c.reason === 'event.digest-mismatch')!.detail).toBe(`event ${app.index} (EV_SEPARATOR, PCR 4): its digest is defined as the hash of its data, and the data does not hash to it`);
    });
  });

  describe('malformed logs: rejected at parse with their reason', () => {
    const last = laptop.events[laptop.events.length - 1]!;
    const middle = laptop.events[10]!;
    const cases: [string, () => Uint8Array, string][] = [
      ['an event size beyond the log', () => rewrite(laptopBytes, laptop, last.index, { eventSize: last.data.length + 1 }), 'event.size-beyond-log'],
      ['a zero-length event', () => rewrite(laptopBytes, laptop, middle.index, { eventSize: 0 }), 'event.size-zero'],
      ['an oversized event', () => rewrite(laptopBytes, laptop, middle.index, { eventSize: MAX_EVENT_SIZE + 1 }), 'event.size-oversized'],
      [
        'a Spec ID event with bad digest sizes (SHA-256 declared as 20 bytes)',
        () => {
          const out = laptopBytes.slice();
          // algorithms[1].digestSize: header 32 + signature 16 + 4 + 4 + count 4 + algorithms[0] 4 + algorithmId 2.
          new DataView(out.buffer).setUint16(32 + 28 + 4 + 2, 20, true);
          return out;
        },
        'specid.digest-size',
      ],
      ['a log cut inside a record', () => laptopBytes.subarray(0, middle.offset + 20), 'record.truncated'],
    ];
    for (const [name, build, reason] of cases) {
      it(name, () => {
        const v = verify(build(), honest);
        expect(failures(v)).toEqual([`eventlog.parse:${reason}`]);
        expect(v.accepted).toBe(false);
      });
    }
  });
});
