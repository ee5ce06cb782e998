/**
 * TCG PC Client event logs (src/attest/eventlog.ts, events.ts) without a TPM:
 *
 * - real logs (test/fixtures/eventlog, sources in its README) parse and replay
 *   to the PCR values their sources publish, per bank, through
 *   compareWithQuote; the EFI application digests and COS kernel command
 *   lines match go-eventlog's expectations; Secure Boot states match what
 *   go-attestation and go-eventlog say of the same logs;
 * - replay rules (start values, DRTM PCRs, EV_NO_ACTION, StartupLocality,
 *   missing bank digests) on logs built here, against values recomputed with
 *   node:crypto;
 * - every parser rejection with its reason and byte offset;
 * - body decoders and the data-to-digest binding, and the checks over claims;
 * - the writer's logs (src/attest/writer.ts, independent code) read back;
 * - the fixed-seed fuzz run.
 * Attacks on evidence from swtpm are in corpus-eventlog.test.ts.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { concat, encodeAgileRecord, encodeLegacyRecord, encodeLog, fuzzEventLog, specIdData, type RawRecord } from '../../fuzz/attest-eventlog.js';
import {
  bankName,
  compareWithQuote,
  EV,
  EventLogError,
  eventTypeName,
  initialPcrValue,
  MAX_EVENT_COUNT,
  MAX_EVENT_SIZE,
  parseEventLog,
  replay,
  type EventLog,
  type EventLogErrorReason,
  type PcrBanks,
} from '../../src/attest/eventlog.js';
import {
  bootChain,
  checkEvents,
  dataBinding,
  decodeBody,
  decodeEvent,
  decodeEvents,
  EFI_GUID,
  formatGuid,
  kernelCommandLines,
  parseDevicePath,
  parseSignatureLists,
  secureBootState,
  verifyEventLog,
  type DecodedEvent,
  type EventBody,
} from '../../src/attest/events.js';
import { failures, type Verdict } from '../../src/attest/verdict.js';
import { writeEventLog } from '../../src/attest/writer.js';
import { TPM_ALG } from '../../src/tpm/constants.js';
import { EvidenceError } from '../../src/tpm/errors.js';
import { pcrSelection } from '../../src/tpm/pcr.js';

const FIXTURES = new URL('../fixtures/eventlog/', import.meta.url);
const fixture = (name: string): Uint8Array => new Uint8Array(readFileSync(new URL(name, FIXTURES)));
/** The raw log and the SHA-1 PCRs of one of go-attestation's JSON dumps. */
function dump(name: string): { raw: Uint8Array; pcrs: Map<number, Uint8Array> } {
  const j = JSON.parse(readFileSync(new URL(name, FIXTURES), 'utf8')) as { Log: { Raw: string; PCRs: { Index: number; Digest: string; DigestAlg: number }[] } };
  // DigestAlg 3 is Go's crypto.SHA1.
  expect(j.Log.PCRs.every((p) => p.DigestAlg === 3)).toBe(true);
  return { raw: new Uint8Array(Buffer.from(j.Log.Raw, 'base64')), pcrs: new Map(j.Log.PCRs.map((p) => [p.Index, new Uint8Array(Buffer.from(p.Digest, 'base64'))])) };
}

interface Expected {
  file: string;
  pcrs: Record<string, Record<string, string>>;
  efiApps?: Record<string, string[]>;
  kernelCmdline?: string;
}
const EXPECTED = JSON.parse(readFileSync(new URL('expected.json', FIXTURES), 'utf8')) as Record<string, Expected>;
const BANK: Record<string, number> = { sha1: TPM_ALG.SHA1, sha256: TPM_ALG.SHA256, sha384: TPM_ALG.SHA384 };

const hex = (b: Uint8Array | undefined): string => Buffer.from(b ?? new Uint8Array(0)).toString('hex');
const H = (alg: 'sha1' | 'sha256', ...parts: Uint8Array[]): Uint8Array => {
  const h = createHash(alg);
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};
const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);
const reasons = (v: Verdict, outcome: string): string[] => v.checks.filter((c) => c.outcome === outcome).map((c) => `${c.check}:${c.reason}`);

function rejection(fn: () => unknown): EventLogError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(EventLogError);
    expect(e).toBeInstanceOf(EvidenceError);
    expect((e as EventLogError).code).toBe('evidence.eventlog');
    return e as EventLogError;
  }
  throw new Error('expected an EventLogError');
}

/** PCR values in compareWithQuote's shape from expected.json hex. */
function quoted(banks: Record<string, Record<string, string>>): { values: PcrBanks; selection: ReturnType<typeof pcrSelection>[] } {
  const values = new Map<number, Map<number, Uint8Array>>();
  const selection = [];
  for (const [name, pcrs] of Object.entries(banks)) {
    const bank = BANK[name]!;
    values.set(bank, new Map(Object.entries(pcrs).map(([p, h]) => [Number(p), new Uint8Array(Buffer.from(h, 'hex'))])));
    selection.push(pcrSelection(bank as never, Object.keys(pcrs).map(Number)));
  }
  return { values, selection };
}

const body = <K extends EventBody['kind']>(d: DecodedEvent, kind: K): Extract<EventBody, { kind: K }> => {
  expect(d.body.kind).toBe(kind);
  return d.body as Extract<EventBody, { kind: K }>;
};

describe('real logs replay to the PCR values their sources publish', () => {
  for (const [name, exp] of Object.entries(EXPECTED)) {
    it(`${name} (${exp.file})`, () => {
      const log = parseEventLog(fixture(exp.file));
      const { values, selection } = quoted(exp.pcrs);
      const v = compareWithQuote(replay(log), values, selection);
      // PCR 10 holds IMA's measurements, which are not in a firmware log (README): unlogged, as it should be.
      const unlogged = Object.values(exp.pcrs).some((p) => p['10'] !== undefined && !/^0+$/.test(p['10']));
      const perPcr = v.checks.filter((c) => c.check === 'eventlog.replay' && c.outcome !== 'not-performed');
      expect(perPcr.length).toBe(Object.values(exp.pcrs).reduce((n, p) => n + Object.keys(p).length, 0));
      expect(failures(v)).toEqual(unlogged ? Object.keys(exp.pcrs).map(() => 'eventlog.replay:pcr.unlogged') : []);
      expect(perPcr.filter((c) => c.reason === 'pcr.match').length).toBeGreaterThan(3);
    });
  }

  it('the Windows Shielded VM SHA-1 log replays all 24 PCRs of its dump', () => {
    const { raw, pcrs } = dump('ga-windows_gcp_shielded_vm.json');
    const log = parseEventLog(raw);
    expect(log.format).toBe('sha1');
    const v = compareWithQuote(replay(log), new Map([[TPM_ALG.SHA1, pcrs]]), [pcrSelection(TPM_ALG.SHA1, [...pcrs.keys()])]);
    expect(failures(v)).toEqual([]);
    // 17–22 quoted as all-ones with no events: the DRTM start value.
    expect(v.checks.filter((c) => c.reason === 'pcr.initial').map((c) => c.detail.split(':')[0])).toContain('sha1 PCR 17');
  });

  it('the TPM 1.2 Lenovo log replays its firmware PCRs; PCR 10 (IMA) is reported unlogged', () => {
    const { raw, pcrs } = dump('ga-linux_tpm12.json');
    const v = compareWithQuote(replay(parseEventLog(raw)), new Map([[TPM_ALG.SHA1, pcrs]]), [pcrSelection(TPM_ALG.SHA1, [...pcrs.keys()])]);
    expect(failures(v)).toEqual(['eventlog.replay:pcr.unlogged']);
    expect(v.checks.find((c) => c.outcome === 'fail')!.detail).toMatch(/^sha1 PCR 10:/);
  });

  it('a log missing its ExitBootServices event does not replay PCR 5 (go-attestation needs a workaround for it)', () => {
    // go-attestation eventlog_test.go TestEBSVerifyWorkaround: the PCR 5 value its workaround accepts.
    const pcr5 = new Uint8Array(Buffer.from('31245808d6d35849bc394f6343f2b3ff908ed5e3', 'hex'));
    const v = compareWithQuote(replay(parseEventLog(fixture('ga-ebs_event_missing_eventlog'))), new Map([[TPM_ALG.SHA1, new Map([[5, pcr5]])]]), [pcrSelection(TPM_ALG.SHA1, [5])]);
    expect(failures(v)).toEqual(['eventlog.replay:pcr.mismatch']);
  });

  it('formats, banks and the Spec ID event', () => {
    const glinux = parseEventLog(fixture('ge-glinux-alex.bin'));
    expect(glinux.format).toBe('crypto-agile');
    expect(glinux.banks).toEqual([TPM_ALG.SHA1, TPM_ALG.SHA256]);
    expect(glinux.specId).toMatchObject({ platformClass: 0, specVersionMajor: 2, specVersionMinor: 0, specErrata: 0, uintnSize: 2, algorithms: [{ algorithmId: 4, digestSize: 20 }, { algorithmId: 11, digestSize: 32 }] });
    expect(glinux.events[0]!.eventType).toBe(EV.NO_ACTION);
    expect(glinux.size).toBe(15881);
    const agile = parseEventLog(fixture('ga-crypto_agile_eventlog'));
    expect(agile.banks).toEqual([TPM_ALG.SHA256]);
    expect(agile.events.length).toBe(27); // tpm-spec-facts.md §10: 26 events after the Spec ID record
    const debian = parseEventLog(fixture('ge-debian-10.bin'));
    expect(debian.format).toBe('sha1');
    expect(debian.specId).toBeUndefined();
    expect(debian.banks).toEqual([TPM_ALG.SHA1]);
    // Offsets: each record starts where the previous body ended.
    for (let i = 1; i < debian.events.length; i++) expect(debian.events[i]!.offset).toBe(debian.events[i - 1]!.dataOffset + debian.events[i - 1]!.data.length);
    // The parse copies its input: later changes to the caller's bytes do not reach the events.
    const bytes = fixture('ge-debian-10.bin');
    const log = parseEventLog(bytes);
    const before = hex(log.events[3]!.data);
    bytes.fill(0);
    expect(hex(log.events[3]!.data)).toBe(before);
  });

  it('StartupLocality 3 from a real laptop sets PCR 0 to 0…03 before its first extend', () => {
    const log = parseEventLog(fixture('ge-glinux-alex.bin'));
    const r = replay(log);
    expect(r.startupLocality).toBe(3);
    expect(decodeEvent(log.events[1]!).body).toEqual({ kind: 'startup-locality', locality: 3 });
    // Recompute PCR 0 here from 0…03 and the log's PCR 0 digests.
    let pcr0: Uint8Array = new Uint8Array(32);
    pcr0[31] = 3;
    for (const e of log.events) if (e.pcrIndex === 0 && e.eventType !== EV.NO_ACTION) pcr0 = H('sha256', pcr0, e.digests.find((d) => d.hashAlg === TPM_ALG.SHA256)!.digest);
    expect(hex(r.values.get(TPM_ALG.SHA256)!.get(0))).toBe(hex(pcr0));
    expect(hex(pcr0)).toBe(EXPECTED['GlinuxNoSecureBootLaptop']!.pcrs['sha256']!['0']);
    // go-attestation's short_no_action_eventlog is one StartupLocality record: PCR 0 stays 0…03 with no extend.
    const short = replay(parseEventLog(fixture('ga-short_no_action_eventlog')));
    expect(short.startupLocality).toBe(3);
    expect(hex(short.values.get(TPM_ALG.SHA1)!.get(0))).toBe(`${'00'.repeat(19)}03`);
    expect(short.extendCounts.size).toBe(0);
  });
});

describe('replay rules', () => {
  const d1 = (s: string) => H('sha1', ascii(s));
  const d256 = (s: string) => H('sha256', ascii(s));
  const rec = (pcrIndex: number, eventType: number, label: string, data = ascii(label)): RawRecord => ({
    pcrIndex,
    eventType,
    digests: [
      { hashAlg: TPM_ALG.SHA1, digest: d1(label) },
      { hashAlg: TPM_ALG.SHA256, digest: d256(label) },
    ],
    data,
  });
  const locality = (n: number): RawRecord => ({ pcrIndex: 0, eventType: EV.NO_ACTION, digests: [{ hashAlg: TPM_ALG.SHA1, digest: new Uint8Array(20) }, { hashAlg: TPM_ALG.SHA256, digest: new Uint8Array(32) }], data: concat([ascii('StartupLocality\0'), Uint8Array.of(n)]) });

  it('extends from the start values, never EV_NO_ACTION, per bank', () => {
    const log = parseEventLog(encodeLog([locality(4), rec(0, EV.S_CRTM_VERSION, 'a'), rec(7, EV.EFI_ACTION, 'b'), rec(7, EV.NO_ACTION, 'not extended'), rec(7, EV.SEPARATOR, 'c'), rec(17, EV.EFI_ACTION, 'd'), rec(23, EV.EFI_ACTION, 'e')], 'crypto-agile'));
    const r = replay(log);
    expect(r.banks).toEqual([TPM_ALG.SHA1, TPM_ALG.SHA256]);
    expect([...r.extendCounts]).toEqual([[0, 1], [7, 2], [17, 1], [23, 1]]);
    const pcr0 = new Uint8Array(32);
    pcr0[31] = 4;
    expect(hex(r.values.get(TPM_ALG.SHA256)!.get(0))).toBe(hex(H('sha256', pcr0, d256('a'))));
    expect(hex(r.values.get(TPM_ALG.SHA256)!.get(7))).toBe(hex(H('sha256', H('sha256', new Uint8Array(32), d256('b')), d256('c'))));
    expect(hex(r.values.get(TPM_ALG.SHA1)!.get(7))).toBe(hex(H('sha1', H('sha1', new Uint8Array(20), d1('b')), d1('c'))));
    expect(hex(r.values.get(TPM_ALG.SHA256)!.get(17))).toBe(hex(H('sha256', new Uint8Array(32).fill(0xff), d256('d'))));
    expect(hex(r.values.get(TPM_ALG.SHA256)!.get(23))).toBe(hex(H('sha256', new Uint8Array(32), d256('e'))));
    for (const p of [18, 19, 20, 21, 22]) expect(hex(r.values.get(TPM_ALG.SHA1)!.get(p))).toBe('ff'.repeat(20));
    for (const p of [1, 2, 16]) expect(hex(r.values.get(TPM_ALG.SHA1)!.get(p))).toBe('00'.repeat(20));
    // initialPcrValue follows the same rule.
    expect(hex(initialPcrValue(TPM_ALG.SHA256, 0, 3))).toBe(`${'00'.repeat(31)}03`);
    expect(hex(initialPcrValue(TPM_ALG.SHA384, 20))).toBe('ff'.repeat(48));
    expect(hex(initialPcrValue(TPM_ALG.SHA1, 16))).toBe('00'.repeat(20));
  });

  it('a StartupLocality after an extend of PCR 0, a second one, or locality 7 is ignored and reported', () => {
    const late = replay(parseEventLog(encodeLog([rec(0, EV.S_CRTM_VERSION, 'a'), locality(3)], 'crypto-agile')));
    expect(late.startupLocality).toBeUndefined();
    expect(late.anomalies.map((a) => a.reason)).toEqual(['startup-locality.late']);
    expect(hex(late.values.get(TPM_ALG.SHA1)!.get(0))).toBe(hex(H('sha1', new Uint8Array(20), d1('a'))));
    const twice = replay(parseEventLog(encodeLog([locality(3), locality(4)], 'crypto-agile')));
    expect(twice.startupLocality).toBe(3);
    expect(twice.anomalies.map((a) => a.reason)).toEqual(['startup-locality.duplicate']);
    const bad = replay(parseEventLog(encodeLog([locality(7)], 'crypto-agile')));
    expect(bad.startupLocality).toBeUndefined();
    expect(bad.anomalies.map((a) => a.reason)).toEqual(['startup-locality.value']);
    const v = compareWithQuote(late, late.values, [pcrSelection(TPM_ALG.SHA1, [0])]);
    expect(reasons(v, 'warn')).toEqual(['eventlog.replay:startup-locality.late']);
  });

  it('compareWithQuote: each outcome and reason, per bank and PCR, only inside the signed selection', () => {
    const only256: RawRecord = { pcrIndex: 5, eventType: EV.EFI_ACTION, digests: [{ hashAlg: TPM_ALG.SHA256, digest: d256('x') }], data: ascii('x') };
    const log = parseEventLog(encodeLog([rec(4, EV.EFI_ACTION, 'a'), rec(7, EV.EFI_ACTION, 'b'), only256, rec(9, EV.IPL, 'c')], 'crypto-agile'));
    const r = replay(log);
    expect([...r.incomplete.get(TPM_ALG.SHA1)!]).toEqual([5]);
    const values = new Map<number, Map<number, Uint8Array>>([
      [
        TPM_ALG.SHA256,
        new Map([
          [4, r.values.get(TPM_ALG.SHA256)!.get(4)!], // match
          [7, new Uint8Array(32).fill(1)], // mismatch
          [8, new Uint8Array(32)], // initial, no events
          [12, new Uint8Array(32).fill(2)], // value but no events
          [9, new Uint8Array(32).fill(3)], // outside the selection: must not be read
        ]),
      ],
      [TPM_ALG.SHA1, new Map([[5, new Uint8Array(20)]])],
      [TPM_ALG.SHA384, new Map([[4, new Uint8Array(48)]])],
    ]);
    const v = compareWithQuote(r, values, [pcrSelection(TPM_ALG.SHA256, [4, 7, 8, 12, 13]), pcrSelection(TPM_ALG.SHA1, [5]), pcrSelection(TPM_ALG.SHA384, [4])]);
    const byPcr = v.checks.map((c) => `${c.outcome}:${c.reason}:${c.detail.split(':')[0]}`);
    expect(byPcr).toEqual([
      'pass:pcr.match:sha256 PCR 4',
      'fail:pcr.mismatch:sha256 PCR 7',
      'pass:pcr.initial:sha256 PCR 8',
      'fail:pcr.unlogged:sha256 PCR 12',
      'fail:pcr.value-missing:sha256 PCR 13',
      'fail:bank.incomplete:sha1 PCR 5',
      'fail:bank.not-in-log:sha384 PCR 4',
      // PCR 9 has an event but no quoted bank covers it: its events prove nothing.
      'not-performed:pcr.not-quoted:PCR 9',
    ]);
    expect(v.accepted).toBe(false);
    const none = compareWithQuote(r, values, [pcrSelection(TPM_ALG.SHA256, [])]);
    expect(reasons(none, 'not-performed')).toContain('eventlog.replay:selection.empty');
  });

  it('a SHA-1 log replays only the SHA-1 bank; bank names', () => {
    const log = parseEventLog(encodeLog([rec(4, EV.EFI_ACTION, 'a')], 'sha1'));
    const r = replay(log);
    expect(r.banks).toEqual([TPM_ALG.SHA1]);
    expect(hex(r.values.get(TPM_ALG.SHA1)!.get(4))).toBe(hex(H('sha1', new Uint8Array(20), d1('a'))));
    expect(replay(log, { banks: [TPM_ALG.SHA256] }).banks).toEqual([]);
    expect([bankName(TPM_ALG.SHA1), bankName(TPM_ALG.SHA256), bankName(0x1234)]).toEqual(['sha1', 'sha256', 'alg 0x1234']);
    expect([eventTypeName(EV.EFI_ACTION), eventTypeName(EV.SEPARATOR), eventTypeName(0x1234)]).toEqual(['EV_EFI_ACTION', 'EV_SEPARATOR', 'EV_0x00001234']);
  });
});

describe('parser rejections: reason and offset', () => {
  const sha256 = { algorithmId: TPM_ALG.SHA256, digestSize: 32 };
  const good: RawRecord = { pcrIndex: 4, eventType: EV.EFI_ACTION, digests: [{ hashAlg: TPM_ALG.SHA256, digest: new Uint8Array(32) }], data: ascii('hello') };
  const specRecord = (data: Uint8Array) => encodeLegacyRecord({ pcrIndex: 0, eventType: EV.NO_ACTION, digests: [], data });
  const agile = (...records: Uint8Array[]) => concat([specRecord(specIdData([sha256])), ...records]);
  const specLen = specRecord(specIdData([sha256])).length;

  const cases: [string, () => Uint8Array, EventLogErrorReason, number][] = [
    ['empty input', () => new Uint8Array(0), 'log.input', 0],
    ['a header cut short', () => encodeLegacyRecord(good).subarray(0, 20), 'record.truncated', 0],
    ['a crypto-agile record cut inside its digest', () => agile(encodeAgileRecord(good).subarray(0, 30)), 'record.truncated', specLen + 14],
    ['a zero-length event', () => encodeLegacyRecord({ ...good, data: new Uint8Array(0) }), 'event.size-zero', 28],
    ['an event larger than MAX_EVENT_SIZE', () => agile(encodeAgileRecord({ ...good, sizeOverride: MAX_EVENT_SIZE + 1 })), 'event.size-oversized', specLen + 46],
    ['an event size beyond the log', () => agile(encodeAgileRecord({ ...good, sizeOverride: 6 })), 'event.size-beyond-log', specLen + 46],
    ['an extend of PCR 24', () => encodeLegacyRecord({ ...good, pcrIndex: 24 }), 'event.pcr-index', 0],
    ['no digests', () => agile(encodeAgileRecord({ ...good, digests: [] })), 'digest.count', specLen + 8],
    ['more digests than algorithms', () => agile(encodeAgileRecord({ ...good, digests: [good.digests[0]!, good.digests[0]!] })), 'digest.count', specLen + 8],
    ['an algorithm the Spec ID event does not list', () => agile(encodeAgileRecord({ ...good, digests: [{ hashAlg: TPM_ALG.SHA384, digest: new Uint8Array(48) }] })), 'digest.algorithm-unknown', specLen + 12],
    ['a Spec ID event outside PCR 0', () => encodeLegacyRecord({ pcrIndex: 1, eventType: EV.NO_ACTION, digests: [], data: specIdData([sha256]) }), 'specid.header', 0],
    ['a Spec ID event with SHA-256 digests of 20 bytes', () => specRecord(specIdData([{ algorithmId: TPM_ALG.SHA256, digestSize: 20 }])), 'specid.digest-size', 32 + 28],
    ['a Spec ID event with SHA-1 digests of 32 bytes', () => specRecord(specIdData([{ algorithmId: TPM_ALG.SHA1, digestSize: 32 }])), 'specid.digest-size', 32 + 28],
    ['a Spec ID event with 0-byte digests of an unknown algorithm', () => specRecord(specIdData([{ algorithmId: 0x7777, digestSize: 0 }])), 'specid.digest-size', 32 + 28],
    ['a Spec ID event with 65-byte digests', () => specRecord(specIdData([{ algorithmId: 0x7777, digestSize: 65 }])), 'specid.digest-size', 32 + 28],
    ['a Spec ID event listing SHA-256 twice', () => specRecord(specIdData([sha256, sha256])), 'specid.algorithm-duplicate', 32 + 32],
    ['a Spec ID event with no algorithm', () => specRecord(specIdData([])), 'specid.algorithm-count', 32 + 24],
    ['a Spec ID event of version 1.2', () => specRecord(specIdData([sha256], { versionMajor: 1, versionMinor: 2 })), 'specid.version', 32 + 20],
    ['a Spec ID event with uintnSize 3', () => specRecord(specIdData([sha256], { uintnSize: 3 })), 'specid.uintn-size', 32 + 23],
    ['a Spec ID event whose vendor info runs short', () => specRecord(specIdData([sha256], { vendorInfoSize: 5 })), 'specid.vendor-info', 32 + 32],
    ['a Spec ID event cut before its algorithms', () => specRecord(specIdData([sha256]).subarray(0, 26)), 'specid.truncated', 32 + 24],
  ];
  for (const [name, build, reason, offset] of cases) {
    it(name, () => {
      const e = rejection(() => parseEventLog(build()));
      expect(e.reason).toBe(reason);
      expect(e.offset).toBe(offset);
      // The same log through verifyEventLog: a failed parse check with the same reason, no exception.
      const v = verifyEventLog(build(), new Map(), []);
      expect(failures(v)).toEqual([`eventlog.parse:${reason}`]);
    });
  }

  it('a Spec ID event with bad digest sizes in the middle of the table', () => {
    const data = specIdData([{ algorithmId: TPM_ALG.SHA1, digestSize: 20 }, { algorithmId: TPM_ALG.SHA256, digestSize: 48 }, { algorithmId: TPM_ALG.SHA384, digestSize: 48 }]);
    const e = rejection(() => parseEventLog(specRecord(data)));
    expect([e.reason, e.offset]).toEqual(['specid.digest-size', 32 + 32]);
  });

  it('two digests of one algorithm in one event', () => {
    const sha1 = { algorithmId: TPM_ALG.SHA1, digestSize: 20 };
    const rec = encodeAgileRecord({ ...good, digests: [good.digests[0]!, good.digests[0]!] });
    const e = rejection(() => parseEventLog(concat([specRecord(specIdData([sha256, sha1])), rec])));
    expect(e.reason).toBe('digest.algorithm-duplicate');
  });

  it('more records than MAX_EVENT_COUNT', () => {
    const one = encodeLegacyRecord({ pcrIndex: 4, eventType: EV.EFI_ACTION, digests: [], data: ascii('x') });
    const log = new Uint8Array(one.length * (MAX_EVENT_COUNT + 1));
    for (let i = 0; i <= MAX_EVENT_COUNT; i++) log.set(one, i * one.length);
    const e = rejection(() => parseEventLog(log));
    expect([e.reason, e.offset]).toEqual(['event.count', one.length * MAX_EVENT_COUNT]);
    expect(parseEventLog(log.subarray(0, one.length * MAX_EVENT_COUNT)).events.length).toBe(MAX_EVENT_COUNT);
  });

  it('a non-Uint8Array input', () => {
    expect(rejection(() => parseEventLog('log' as unknown as Uint8Array)).reason).toBe('log.input');
  });

  it('every cut of a real log either parses (at a record boundary) or is a typed truncation', () => {
    const bytes = fixture('ge-glinux-alex.bin');
    const boundaries = new Set(parseEventLog(bytes).events.map((e) => e.dataOffset + e.data.length));
    for (let n = 1; n < bytes.length; n += 7) {
      if (boundaries.has(n)) {
        expect(parseEventLog(bytes.subarray(0, n)).size).toBe(n);
      } else {
        expect(['record.truncated', 'event.size-beyond-log', 'specid.truncated', 'specid.vendor-info']).toContain(rejection(() => parseEventLog(bytes.subarray(0, n))).reason);
      }
    }
  });
});

describe('event bodies', () => {
  const windows = decodeEvents(parseEventLog(dump('ga-windows_gcp_shielded_vm.json').raw));
  const optionRom = decodeEvents(parseEventLog(fixture('ga-option_rom_eventlog')));
  const ubuntu = decodeEvents(parseEventLog(fixture('ge-ubuntu-2104-no-secure-boot.bin')));
  const tpm12 = decodeEvents(parseEventLog(dump('ga-linux_tpm12.json').raw));
  const glinux = decodeEvents(parseEventLog(fixture('ge-glinux-alex.bin')));

  it('GUIDs read as UEFI writes them (mixed-endian)', () => {
    const sb = ubuntu.find((d) => d.body.kind === 'uefi-variable' && d.body.variable.name === 'SecureBoot')!;
    expect(hex(sb.event.data.subarray(0, 16))).toBe('61dfe48bca93d211aa0d00e098032b8c');
    expect(body(sb, 'uefi-variable').variable.guid).toBe(EFI_GUID.GLOBAL_VARIABLE);
    expect(formatGuid(Uint8Array.from([0xcb, 0xb2, 0x19, 0xd7, 0x3a, 0x3d, 0x96, 0x45, 0xa3, 0xbc, 0xda, 0xd0, 0x0e, 0x67, 0x65, 0x6f]))).toBe(EFI_GUID.IMAGE_SECURITY_DATABASE);
  });

  it('Secure Boot variables with their signature lists', () => {
    const vars = optionRom.filter((d) => d.event.eventType === EV.EFI_VARIABLE_DRIVER_CONFIG).map((d) => body(d, 'uefi-variable'));
    expect(vars.map((v) => v.variable.name)).toEqual(['SecureBoot', 'PK', 'KEK', 'db', 'dbx']);
    expect(vars[0]!.variable.data).toEqual(Uint8Array.of(1));
    expect(vars[0]!.signatureLists).toBeUndefined();
    const [, pk, kek, db, dbx] = vars;
    expect(pk!.signatureLists!.map((l) => l.signatureType)).toEqual([EFI_GUID.CERT_X509]);
    expect(pk!.signatureLists![0]!.signatures[0]!.data[0]).toBe(0x30); // a DER certificate
    expect(kek!.signatureLists!.every((l) => l.signatureType === EFI_GUID.CERT_X509)).toBe(true);
    expect(db!.signatureLists!.length).toBeGreaterThanOrEqual(2);
    const hashes = dbx!.signatureLists!.filter((l) => l.signatureType === EFI_GUID.CERT_SHA256).flatMap((l) => l.signatures);
    expect(hashes.length).toBeGreaterThan(10);
    expect(hashes.every((s) => s.data.length === 32)).toBe(true);
    // The lists' sizes add up to the variable's data.
    const total = (v: (typeof vars)[number]) => v.signatureLists!.reduce((n, l) => n + 28 + l.header.length + l.signatures.reduce((m, s) => m + 16 + s.data.length, 0), 0);
    expect(total(dbx!)).toBe(dbx!.variable.data.length);
  });

  it('signature lists reject sizes that do not add up', () => {
    const list = (listSize: number, headerSize: number, sigSize: number, payload: number) =>
      Uint8Array.from([...new Uint8Array(16), ...[listSize, headerSize, sigSize].flatMap((v) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24]), ...new Uint8Array(payload)]);
    expect(parseSignatureLists(list(28 + 48, 0, 48, 48))[0]!.signatures.length).toBe(1);
    for (const [bytes, offset] of [
      [list(0xffffffff, 0, 48, 48), 100],
      [list(20, 0, 48, 0), 100],
      [list(28 + 48, 0, 8, 48), 100],
      [list(28 + 48, 0, 40, 48), 100],
      [list(28 + 48, 60, 48, 48), 100],
    ] as const) {
      const e = rejection(() => parseSignatureLists(bytes, offset));
      expect([e.reason, e.offset]).toEqual(['body.size', 100]);
    }
    expect(rejection(() => parseSignatureLists(list(28 + 48, 0, 48, 48).subarray(0, 20))).reason).toBe('body.truncated');
  });

  it('separators, actions, S-CRTM versions, POST codes, firmware blobs, handoff tables', () => {
    expect(body(windows.find((d) => d.event.eventType === EV.SEPARATOR && d.event.pcrIndex === 7)!, 'separator').value).toBe('success');
    expect(body(windows.find((d) => d.event.eventType === EV.SEPARATOR && d.event.pcrIndex === 12)!, 'separator').value).toBe('other'); // "WBCL"
    expect(decodeBody({ ...windows[0]!.event, eventType: EV.SEPARATOR, data: new Uint8Array(4).fill(0xff) })).toEqual({ kind: 'separator', value: 'error' });
    expect(optionRom.filter((d) => d.event.eventType === EV.EFI_ACTION).map((d) => body(d, 'action').text)).toEqual(['Calling EFI Application from Boot Option', 'Exit Boot Services Invocation', 'Exit Boot Services Returned with Success']);
    expect(body(optionRom.find((d) => d.event.eventType === EV.POST_CODE)!, 'post-code').text).toBe('ACPI DATA');
    const blobCode = body(glinux.find((d) => d.event.eventType === EV.POST_CODE)!, 'post-code');
    expect([blobCode.text, blobCode.base, blobCode.length]).toEqual([undefined, 0xff130000n, 0xa80000n]);
    expect(body(optionRom.find((d) => d.event.eventType === EV.S_CRTM_VERSION)!, 'crtm-version').text).toBe('M60');
    expect(body(glinux.find((d) => d.event.eventType === EV.S_CRTM_VERSION)!, 'crtm-version').guid).toMatch(/^[0-9a-f]{8}-/);
    const blob = body(optionRom.find((d) => d.event.eventType === EV.EFI_PLATFORM_FIRMWARE_BLOB)!, 'firmware-blob');
    expect([blob.base, blob.length]).toEqual([0xff6a1000n, 0x5ff000n]);
    const handoff = body(tpm12.find((d) => d.event.eventType === EV.EFI_HANDOFF_TABLES)!, 'handoff-tables');
    expect(handoff.tables.length).toBeGreaterThan(0);
    expect(handoff.tables.every((t) => /^[0-9a-f-]{36}$/.test(t.guid))).toBe(true);
  });

  it('image loads with device paths, and the GPT', () => {
    const apps = ubuntu.filter((d) => d.event.eventType === EV.EFI_BOOT_SERVICES_APPLICATION).map((d) => body(d, 'image-load'));
    expect(apps.map((a) => a.filePath)).toEqual(['\\EFI\\ubuntu\\shimx64.efi', '\\EFI\\ubuntu\\grubx64.efi']);
    expect(apps[0]!.imageLength).toBeGreaterThan(0n);
    expect(parseDevicePath(apps[0]!.devicePath).map((n) => `${n.type}/${n.subType}`)).toContain('4/4');
    expect(rejection(() => parseDevicePath(Uint8Array.of(4, 4, 2, 0), 10)).reason).toBe('body.size');
    const gpt = body(optionRom.find((d) => d.event.eventType === EV.EFI_GPT_EVENT)!, 'gpt');
    expect(gpt.header.sizeOfPartitionEntry).toBe(128);
    expect(gpt.partitions.length).toBe(5);
    expect(gpt.partitions.map((p) => p.name)).toContain('EFI system partition');
    const broken = { ...optionRom.find((d) => d.event.eventType === EV.EFI_GPT_EVENT)!.event };
    const e = rejection(() => decodeBody({ ...broken, data: broken.data.subarray(0, 200) }));
    expect([e.reason, e.offset]).toEqual(['body.size', broken.dataOffset + 92]);
  });

  it('grub strings in PCR 8, file paths in PCR 9', () => {
    const ipl = ubuntu.filter((d) => d.event.eventType === EV.IPL);
    const k = ipl.find((d) => d.body.kind === 'ipl' && d.body.grub?.kind === 'kernel_cmdline')!;
    expect(k.event.pcrIndex).toBe(8);
    expect(body(k, 'ipl').grub!.text).toMatch(/^\/boot\/vmlinuz-5\.11\.0-1006-gcp root=PARTUUID=/);
    expect(k.binding).toEqual({ status: 'verified', rule: 'grub-text' });
    const file = ipl.find((d) => d.event.pcrIndex === 9)!;
    expect(body(file, 'ipl').grub).toBeUndefined();
    expect(file.binding.status).toBe('unbound');
  });

  it('decodeEvent throws a typed error for a body that does not decode; decodeEvents keeps it as malformed', () => {
    const e = { ...ubuntu.find((d) => d.event.eventType === EV.EFI_VARIABLE_DRIVER_CONFIG)!.event };
    const truncated = { ...e, data: e.data.subarray(0, 30) };
    expect(rejection(() => decodeEvent(truncated)).reason).toBe('body.truncated');
    const huge = e.data.slice();
    huge.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], 16); // UnicodeNameLength
    const err = rejection(() => decodeEvent({ ...e, data: huge }));
    expect([err.reason, err.offset]).toEqual(['body.size', e.dataOffset + 16]);
    const notAscii = { ...e, eventType: EV.EFI_ACTION };
    expect(rejection(() => decodeEvent(notAscii)).reason).toBe('body.value');
  });
});

describe('data bound to digests, and the claims checked', () => {
  const all = Object.fromEntries(
    ['ge-glinux-alex.bin', 'ge-arch-linux-workstation.bin', 'ga-sb_cert_eventlog', 'ge-cos-85-amd-sev.bin', 'ge-ubuntu-2104-no-dbx.bin', 'ge-rhel8-uefi.bin', 'ge-debian-10.bin', 'ga-option_rom_eventlog', 'ga-crypto_agile_eventlog'].map((f) => [f, decodeEvents(parseEventLog(fixture(f)))]),
  ) as Record<string, DecodedEvent[]>;
  all['windows'] = decodeEvents(parseEventLog(dump('ga-windows_gcp_shielded_vm.json').raw));
  all['tpm12'] = decodeEvents(parseEventLog(dump('ga-linux_tpm12.json').raw));

  it('no event of any real log has data that contradicts its digest; the quirks are recognised', () => {
    const rules = new Map<string, number>();
    for (const [name, decoded] of Object.entries(all)) {
      expect(decoded.filter((d) => d.binding.status === 'mismatch').map((d) => `${name}#${d.event.index}`)).toEqual([]);
      for (const d of decoded) if (d.binding.status === 'verified') rules.set(d.binding.rule, (rules.get(d.binding.rule) ?? 0) + 1);
    }
    // Each workaround is exercised by the log that needs it (README: sb_cert, linux_tpm12, arch, grub logs).
    for (const rule of ['data', 'variable-data', 'shim-trailing-byte', 'grub-text', 'utf16-with-nul']) expect(rules.get(rule) ?? 0, rule).toBeGreaterThan(0);
    expect(all['ga-sb_cert_eventlog']!.filter((d) => d.binding.status === 'verified' && d.binding.rule === 'shim-trailing-byte').length).toBe(2);
  });

  it('every real log passes checkEvents; the laptop S-CRTM with a separator digest only warns', () => {
    for (const [name, decoded] of Object.entries(all)) {
      const v = checkEvents(decoded);
      expect(failures(v), name).toEqual([]);
    }
    expect(reasons(checkEvents(all['ge-glinux-alex.bin']!), 'warn')).toEqual(['eventlog.separator:separator.retagged']);
  });

  it('changed data is a mismatch; unbound types are not', () => {
    const decoded = all['ge-debian-10.bin']!;
    const sep = decoded.find((d) => d.event.eventType === EV.SEPARATOR)!.event;
    expect(dataBinding({ ...sep, data: Uint8Array.of(0, 0, 0, 1) })).toEqual({ status: 'mismatch' });
    const action = decoded.find((d) => d.event.eventType === EV.EFI_ACTION)!.event;
    expect(dataBinding({ ...action, data: ascii('Calling EFI Application from Boot Optiom') })).toEqual({ status: 'mismatch' });
    const app = decoded.find((d) => d.event.eventType === EV.EFI_BOOT_SERVICES_APPLICATION)!.event;
    expect(dataBinding({ ...app, data: new Uint8Array(40) })).toEqual({ status: 'unbound' });
    expect(dataBinding(decoded.find((d) => d.event.eventType === EV.NO_ACTION)?.event ?? { ...sep, eventType: EV.NO_ACTION })).toEqual({ status: 'not-extended' });
    // A digest in a bank nothing here can hash: nothing to compare with.
    expect(dataBinding({ ...sep, digests: [{ hashAlg: 0x7777, digest: new Uint8Array(20) }] })).toEqual({ status: 'not-checkable' });
  });

  it('Secure Boot state from PCR 7, and whether it rests on verified data', () => {
    const sb = (name: string) => secureBootState(all[name]!);
    expect([sb('windows').state, sb('windows').reason, sb('windows').digestVerified]).toEqual(['enabled', 'variable.enabled', true]); // go-attestation TestSecureBoot
    expect(sb('ge-rhel8-uefi.bin').state).toBe('enabled');
    expect(sb('ge-ubuntu-2104-no-dbx.bin').state).toBe('disabled');
    expect(sb('ge-glinux-alex.bin').state).toBe('disabled');
    // go-eventlog: "This event log has a SecureBoot variable length of 0".
    expect([sb('ge-arch-linux-workstation.bin').state, sb('ge-arch-linux-workstation.bin').reason]).toEqual(['unknown', 'variable.empty']);
    // Old firmware hashes only the value: the state reads, but name and GUID are not bound.
    expect([sb('tpm12').state, sb('tpm12').digestVerified]).toEqual(['disabled', false]);
    // go-attestation TestSecureBootBug157 / TestSecureBootOptionRom: 3 and 2 authorities after the separator.
    expect(sb('ga-sb_cert_eventlog').authorities.filter((a) => a.afterSeparator).length).toBe(3);
    expect(sb('ga-option_rom_eventlog').authorities.filter((a) => a.afterSeparator).length).toBe(2);
    expect(sb('ga-sb_cert_eventlog').authorities.every((a) => a.digestVerified && a.signature !== undefined)).toBe(true);
    const dbs = sb('windows').databases;
    expect(Object.keys(dbs)).toEqual(['PK', 'KEK', 'db', 'dbx']);
    expect(dbs.db!.digestVerified).toBe(true);
  });

  it('boot chains equal go-eventlog\'s EFI application digests, in order', () => {
    let compared = 0;
    for (const exp of Object.values(EXPECTED)) {
      if (exp.efiApps === undefined) continue;
      const decoded = decodeEvents(parseEventLog(fixture(exp.file)));
      for (const [name, apps] of Object.entries(exp.efiApps)) {
        expect(bootChain(decoded, BANK[name]!).map((b) => hex(b.digest)), `${exp.file} ${name}`).toEqual(apps);
        compared++;
      }
    }
    expect(compared).toBeGreaterThanOrEqual(20);
    const chain = bootChain(all['ge-ubuntu-2104-no-dbx.bin']!, TPM_ALG.SHA256);
    expect(chain.map((c) => [c.type, c.filePath])).toEqual([
      ['EV_EFI_BOOT_SERVICES_APPLICATION', '\\EFI\\ubuntu\\shimx64.efi'],
      ['EV_EFI_BOOT_SERVICES_APPLICATION', '\\EFI\\ubuntu\\grubx64.efi'],
    ]);
  });

  it('kernel command lines: grub\'s equal go-eventlog\'s, systemd-boot\'s verified through its short-by-one quirk', () => {
    for (const exp of Object.values(EXPECTED)) {
      if (exp.kernelCmdline === undefined) continue;
      const lines = kernelCommandLines(decodeEvents(parseEventLog(fixture(exp.file))));
      // go-eventlog keeps the NUL grub logs; the digest is of the text without it.
      expect(lines.map((l) => [l.source, l.pcrIndex, l.text, l.digestVerified])).toEqual([['grub', 8, exp.kernelCmdline.replace(/\0$/, ''), true]]);
    }
    const sd = kernelCommandLines(all['ge-arch-linux-workstation.bin']!);
    expect(sd.map((l) => [l.source, l.pcrIndex, l.digestVerified])).toEqual([['systemd-boot', 8, true]]);
    expect(sd[0]!.text).toMatch(/^initrd=\\intel-ucode\.img .* root=\/dev\/mapper\/cryptroot rw /);
  });
});

describe('logs from the measured-boot writer (independent code) read back', () => {
  it('parse, replay to the writer\'s PCR values, pass the checks, and summarise as configured', () => {
    const w = writeEventLog({ startupLocality: 3, cmdline: 'root=/dev/vda2 ro quiet' });
    const log: EventLog = parseEventLog(w.eventLog);
    expect(log.events.length).toBe(w.events.length + 1);
    const r = replay(log);
    expect(r.startupLocality).toBe(3);
    const selection = [...w.pcrs].map(([bank, pcrs]) => pcrSelection(bank as never, [...pcrs.keys()]));
    const v = verifyEventLog(w.eventLog, w.pcrs, selection);
    expect(failures(v)).toEqual([]);
    expect(v.checks.filter((c) => c.reason === 'pcr.match').length).toBe(selection.reduce((n, s) => n + [...w.pcrs.get(s.hash)!.keys()].length, 0));
    const decoded = decodeEvents(log);
    expect(secureBootState(decoded)).toMatchObject({ state: 'enabled', digestVerified: true });
    expect(kernelCommandLines(decoded).map((k) => [k.digestVerified, k.text.endsWith('root=/dev/vda2 ro quiet')])).toEqual([[true, true]]);
    expect(bootChain(decoded, TPM_ALG.SHA256).length).toBeGreaterThanOrEqual(2);
  });
});

describe('event-log fuzzing (fixed seed)', () => {
  it('feeds 20,000 random, structured and mutated real logs with no untyped exception', () => {
    const stats = fuzzEventLog(20261129, 20_000, { timeLimitMs: 40_000 });
    expect(stats.untyped).toEqual([]);
    expect(stats.untypedCount).toBe(0);
    expect(stats.inputs).toBeGreaterThanOrEqual(20_000);
    // The inputs reach deep: logs parse, and many kinds of rejection fire, body decoders included.
    expect(stats.parsed).toBeGreaterThan(1000);
    for (const reason of ['record.truncated', 'event.size-zero', 'event.size-oversized', 'event.size-beyond-log', 'digest.count', 'digest.algorithm-unknown', 'specid.digest-size', 'event body: body.size', 'event body: body.truncated']) {
      expect(stats.codes.get(reason) ?? 0, reason).toBeGreaterThan(0);
    }
  }, 60_000);
});
