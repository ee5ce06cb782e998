/**
 * `trustroot attest` (src/cli/attest.ts, main.ts, evidence.ts), run in-process
 * through `main(argv, io)` with captured output, plus one child-process smoke
 * test of the real entry point.
 *
 * - verify-quote on FILES MADE BY tpm2-tools against swtpm (tpm2_createek,
 *   tpm2_createak, tpm2_quote -m -s -o, tpm2_readpublic -f pem, tpm2_sign):
 *   honest quotes accepted (0); wrong nonce, flipped bytes, PCR values outside
 *   the signed selection or relabelled (CVE-2024-29039), forged magic signed by
 *   a key that is not restricted (CVE-2024-29038), AKs that are not restricted
 *   or not fixedTPM, an AK swapped for another, the clock or the counters going
 *   backwards against --previous: rejected (1) with the reason printed; an
 *   honest power cut (safe = 0) accepted with a warning; malformed files (2).
 *   A PEM AK's attribute checks print as not performed, never as passed.
 * - eventlog and ima on the real fixtures (replays equal the PCR values their
 *   sources publish, or values recomputed here from the listed template
 *   hashes), on evidence the measured-boot writer extended into that swtpm
 *   (replays equal what tpm2_quote -o read), and on malformed files (2).
 * - ek-cert on real EK certificates with their vendor roots, and on
 *   swtpm_setup's certificates with swtpm_localca's root and intermediate.
 * - the evidence readers' own rules, and their fixed-seed fuzz (fuzz/attest-cli.ts).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fuzzCliEvidence } from '../../fuzz/attest-cli.js';
import { decodeAttest } from '../../src/attest/quote.js';
import { main } from '../../src/cli/main.js';
import { bankByName, parseNonceHex, parsePcrJson, readClockFile, readPcrFile } from '../../src/cli/evidence.js';
import { readPcrValuesFile, writePcrValuesFile, type PcrValues as ToolsPcrValues } from '../../src/client/files.js';
import { readEkCertificate, Tpm } from '../../src/client/index.js';
import { Startup } from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_ST, TPM_SU } from '../../src/tpm/constants.js';
import { EvidenceError, ParseError } from '../../src/tpm/errors.js';
import { pcrSelection } from '../../src/tpm/pcr.js';
import { SwtpmTransport } from '../../src/tpm/transport/index.js';
import { applyMeasuredBoot, type AppliedMeasuredBoot } from '../support/measured-boot.js';
import { describeWithSwtpm, startSwtpm, type SwtpmInstance } from '../support/swtpm.js';
import { describeWithSwtpmSetup, startSwtpmWithCertificates, type SwtpmWithCertificates } from '../support/swtpm-setup.js';
import { describeWithTpm2Tools, startTpm2Tools, type Tpm2Tools } from '../support/tpm2-tools.js';

const ROOT = join(import.meta.dirname, '..', '..');
const FIXTURES = join(ROOT, 'test', 'fixtures');
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const sha = (alg: string, ...parts: Uint8Array[]): Uint8Array => {
  const h = createHash(alg);
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};

interface Run {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

interface CheckJson {
  readonly check: string;
  readonly outcome: string;
  readonly reason: string;
  readonly detail: string;
}

/** Runs `trustroot …` in-process, in `cwd`, with captured output. */
async function cli(args: readonly string[], cwd: string = ROOT, now?: Date): Promise<Run> {
  let out = '';
  let err = '';
  const code = await main(args, { stdout: (s) => void (out += s), stderr: (s) => void (err += s), cwd, ...(now !== undefined ? { now: () => now } : {}) });
  return { code, out, err };
}

const parsed = <T = Record<string, unknown>>(r: Run): T => JSON.parse(r.out) as T;
const checksOf = (r: Run): CheckJson[] => parsed<{ checks: CheckJson[] }>(r).checks;
const failuresOf = (r: Run): string[] => checksOf(r).filter((c) => c.outcome === 'fail').map((c) => `${c.check}:${c.reason}`);
const notPassed = (r: Run): string[] => checksOf(r).filter((c) => c.outcome !== 'pass').map((c) => `${c.check}:${c.outcome}:${c.reason}`);

/** An unusable input: exit 2, nothing on stdout, exactly one line on stderr naming the problem. */
function expectUnusable(r: Run, pattern: RegExp): void {
  expect({ code: r.code, out: r.out }).toEqual({ code: 2, out: '' });
  expect(r.err.endsWith('\n')).toBe(true);
  expect(r.err.trimEnd().split('\n')).toHaveLength(1);
  expect(r.err.trimEnd()).toMatch(pattern);
}

// ---------------------------------------------------------------------------

describe('evidence readers', () => {
  it('nonces: hex with or without 0x, 1..64 bytes; anything else is an evidence.argument error', () => {
    expect(hex(parseNonceHex('0xA1b2'))).toBe('a1b2');
    expect(parseNonceHex('ab'.repeat(64))).toHaveLength(64);
    for (const bad of ['', '0x', 'abc', 'zz', 'ab'.repeat(65), 'ab cd']) {
      const e = (() => {
        try {
          parseNonceHex(bad);
        } catch (x) {
          return x;
        }
        return undefined;
      })();
      expect([bad, e instanceof EvidenceError && e.code]).toEqual([bad, 'evidence.argument']);
    }
  });

  it('bank names as the tools and the kernel write them, or TPM_ALG_IDs', () => {
    expect(['sha1', 'SHA256', 'sha-384', 'sha512', 'sm3_256', 'sha3-256', '0x000b', '12'].map(bankByName)).toEqual([
      TPM_ALG.SHA1,
      TPM_ALG.SHA256,
      TPM_ALG.SHA384,
      TPM_ALG.SHA512,
      TPM_ALG.SM3_256,
      TPM_ALG.SHA3_256,
      TPM_ALG.SHA256,
      TPM_ALG.SHA384,
    ]);
    expect(['md5', 'rsa', '0x0001', '', 'sha256x'].map(bankByName)).toEqual([undefined, undefined, undefined, undefined, undefined]);
  });

  it('JSON PCR values: each value its bank size, indices 0..31 in one spelling, no bank twice', () => {
    const v32 = 'ab'.repeat(32);
    const m = parsePcrJson(JSON.stringify({ sha256: { '0': v32, '23': `0x${v32}` }, sha1: { '16': '00'.repeat(20) } }));
    expect([...m.keys()]).toEqual([TPM_ALG.SHA256, TPM_ALG.SHA1]);
    expect(hex(m.get(TPM_ALG.SHA256)!.get(23)!)).toBe(v32);
    const bad: [unknown, RegExp][] = [
      [[], /expected a JSON object/],
      [{}, /no bank/],
      [{ md5: {} }, /not a PCR bank/],
      [{ sha256: { '0': v32 }, SHA256: { '1': v32 } }, /given twice/],
      [{ sha256: { '07': v32 } }, /not a PCR index/],
      [{ sha256: { '32': v32 } }, /not a PCR index/],
      [{ sha256: { '-1': v32 } }, /not a PCR index/],
      [{ sha256: { '0': 'ab'.repeat(20) } }, /expected 32 bytes/],
      [{ sha256: { '0': 'zz'.repeat(32) } }, /expected 32 bytes/],
      [{ sha256: { '0': 7 } }, /hex string/],
      [{ sha256: [v32] }, /must map PCR indices/],
    ];
    for (const [doc, why] of bad) {
      let e: unknown;
      try {
        parsePcrJson(JSON.stringify(doc));
      } catch (x) {
        e = x;
      }
      expect(e).toBeInstanceOf(EvidenceError);
      expect((e as EvidenceError).code).toBe('evidence.file');
      expect((e as EvidenceError).message).toMatch(why);
    }
    expect(() => parsePcrJson('{"sha256": ')).toThrow(/not JSON/);
    expect(() => parsePcrJson(new Uint8Array([0x7b, 0xff, 0x7d]))).toThrow(/not UTF-8/);
  });

  it('tpm2_quote -o files: the selections become the labels; the same PCR twice is refused', () => {
    const d = (i: number): Uint8Array => new Uint8Array(32).fill(i);
    const file = writePcrValuesFile({ selections: [pcrSelection(TPM_ALG.SHA256, [0, 7])], digests: [d(0), d(7)] });
    const r = readPcrFile(file);
    expect(r.format).toBe('tpm2-tools');
    expect(r.labelled!.map((s) => s.hash)).toEqual([TPM_ALG.SHA256]);
    expect(hex(r.values.get(TPM_ALG.SHA256)!.get(7)!)).toBe(hex(d(7)));
    const twice = writePcrValuesFile({ selections: [pcrSelection(TPM_ALG.SHA256, [0]), pcrSelection(TPM_ALG.SHA256, [0])], digests: [d(1), d(2)] });
    expect(() => readPcrFile(twice)).toThrow(/names PCR 0 of bank 0xb again/);
    expect(() => readPcrFile(file.subarray(0, 100))).toThrow(ParseError);
    // JSON is recognised by its first non-blank byte.
    expect(readPcrFile(new TextEncoder().encode(`  \n{"sha1": {"1": "${'00'.repeat(20)}"}}`)).format).toBe('json');
  });

  it('clock states: the JSON verify-quote --json prints', () => {
    expect(readClockFile('{"clock": 5, "resetCount": 1, "restartCount": 0, "safe": true, "firmwareVersion": "18446744073709551615"}')).toEqual({
      clock: 5n,
      resetCount: 1,
      restartCount: 0,
      safe: true,
      firmwareVersion: 18446744073709551615n,
    });
    for (const bad of ['[]', '{"clock": -1, "resetCount": 1, "restartCount": 0, "safe": true}', '{"clock": 1, "resetCount": 1, "restartCount": 0}', 'clock']) {
      expect(() => readClockFile(bad)).toThrow(EvidenceError);
    }
  });

  it('fuzz (fixed seed, 24,000 inputs): every reader throws only typed errors and keeps its promises', () => {
    const stats = fuzzCliEvidence(20261129, 24_000);
    expect(stats.untyped).toEqual([]);
    expect(stats.untypedCount).toBe(0);
    expect(stats.inputs).toBeGreaterThanOrEqual(24_000);
    // The fuzzer reaches both families of errors and some inputs read.
    expect(stats.parsed).toBeGreaterThan(100);
    expect([...stats.codes.keys()]).toEqual(expect.arrayContaining(['evidence.file', 'evidence.argument', 'parse.truncated', 'parse.value']));
  });
});

// ---------------------------------------------------------------------------

describe('command line', () => {
  it('--help exits 0; a group without a subcommand, an unknown option or a missing required option exits 2', async () => {
    const help = await cli(['attest', 'verify-quote', '--help']);
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/--ak <file>/);
    expect(help.out).toMatch(/--previous <file>/);
    expect((await cli(['attest'])).code).toBe(2);
    expectUnusable(await cli(['attest', 'eventlog', 'x', '--bogus']), /unknown option '--bogus'/);
    expectUnusable(await cli(['attest', 'verify-quote', '--ak', 'a', '--quote', 'q', '--sig', 's', '--pcrs', 'p']), /required option '--nonce <hex>' not specified/);
    expectUnusable(await cli(['attest', 'eventlog']), /missing required argument 'file'/);
    expectUnusable(await cli(['attest', 'eventlog', 'a', 'b']), /too many arguments/);
  });
});

// ---------------------------------------------------------------------------

interface Expected {
  readonly file: string;
  readonly pcrs: Record<string, Record<string, string>>;
  readonly kernelCmdline?: string;
}

describe('eventlog on real logs', () => {
  const expected = JSON.parse(readFileSync(join(FIXTURES, 'eventlog', 'expected.json'), 'utf8')) as Record<string, Expected>;

  it.each(Object.entries(expected))('%s: the replayed PCRs are the values its source publishes', async (_name, e) => {
    const r = await cli(['attest', 'eventlog', join(FIXTURES, 'eventlog', e.file), '--json']);
    expect(r.code).toBe(0);
    const out = parsed<{ replay: Record<string, Record<string, string>>; kernelCommandLines: { text: string }[]; accepted: boolean }>(r);
    expect(out.accepted).toBe(true);
    let compared = 0;
    for (const [bank, pcrs] of Object.entries(e.pcrs)) {
      for (const [pcr, value] of Object.entries(pcrs)) {
        // PCRs the log does not extend are not printed: the source may publish runtime values for them (IMA's PCR 10).
        const got = out.replay[bank]?.[pcr];
        if (got === undefined) continue;
        expect([bank, pcr, got]).toEqual([bank, pcr, value]);
        compared++;
      }
    }
    expect(compared).toBeGreaterThanOrEqual(8);
    // go-eventlog keeps the NUL grub logs; what was hashed is the text without it.
    if (e.kernelCmdline !== undefined) expect(out.kernelCommandLines.map((c) => c.text)).toEqual([e.kernelCmdline.replace(/\0$/, '')]);
  });

  it('text output: every event with its digests, the replayed values per bank, Secure Boot, the checks', async () => {
    const r = await cli(['attest', 'eventlog', join(FIXTURES, 'eventlog', 'ge-rhel8-uefi.bin')]);
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
    expect(r.out).toMatch(/^eventlog: crypto-agile TCG event log, 83 records, banks sha1, sha256, sha384$/m);
    expect(r.out).toMatch(/^ {2}#3 {2}PCR 7 {2}EV_EFI_VARIABLE_DRIVER_CONFIG {2}SecureBoot \{8be4df61-93ca-11d2-aa0d-00e098032b8c\}/m);
    expect(r.out).toMatch(/^ {2}sha256 {3}PCR {2}7 {2}5fd54361d580eb7592adb8deb236ff35444ceeac7148f24b3de63c041f12b3da$/m);
    expect(r.out).toMatch(/^Secure Boot: enabled \(variable\.enabled, event 3\)$/m);
    expect(r.out).toMatch(/^ {2}pass +eventlog\.separator +separators\.valid/m);
  });

  it('a SHA-1 log (legacy format) replays its one bank', async () => {
    const r = await cli(['attest', 'eventlog', join(FIXTURES, 'eventlog', 'ge-debian-10.bin'), '--json']);
    expect(r.code).toBe(0);
    const out = parsed<{ format: string; banks: string[]; events: { type: string }[] }>(r);
    expect([out.format, out.banks]).toEqual(['sha1', ['sha1']]);
    expect(out.events[0]!.type).toBe('EV_S_CRTM_VERSION');
  });

  it('a malformed log: exit 2 with one line (truncated, an event beyond the log, not a log at all, missing)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'trustroot-cli-'));
    try {
      const log = await readFile(join(FIXTURES, 'eventlog', 'ge-rhel8-uefi.bin'));
      await writeFile(join(dir, 'cut.bin'), log.subarray(0, 5000));
      const big = Buffer.from(log);
      // The Spec ID record's eventSize (offset 28) made larger than the log.
      big.writeUInt32LE(0x00100000, 28);
      await writeFile(join(dir, 'big.bin'), big);
      await writeFile(join(dir, 'text.txt'), 'hello, world\n');
      expectUnusable(await cli(['attest', 'eventlog', 'cut.bin'], dir), /^trustroot attest eventlog: event log cut\.bin: .*\(offset \d+\) \[evidence\.eventlog\]$/);
      expectUnusable(await cli(['attest', 'eventlog', 'big.bin', '--json'], dir), /runs past the end of the log.*\[evidence\.eventlog\]/);
      expectUnusable(await cli(['attest', 'eventlog', 'text.txt'], dir), /\[evidence\.eventlog\]/);
      expectUnusable(await cli(['attest', 'eventlog', 'nothing.bin'], dir), /event log nothing\.bin: cannot be read \(ENOENT\)/);
      expectUnusable(await cli(['attest', 'eventlog', '.'], dir), /not a regular file/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------------------

/** PCR 10 from the listed template hashes, computed here: SHA-1 bank, and SHA-256 with the zero-padded SHA-1 hash (pre-5.8 kernels). */
function pcr10FromAscii(text: string): { sha1: string; paddedSha256: string } {
  let s1: Uint8Array = new Uint8Array(20);
  let s256: Uint8Array = new Uint8Array(32);
  for (const line of text.split('\n').filter((l) => l.length > 0)) {
    const th = Buffer.from(line.split(' ')[1]!, 'hex');
    // A violation lists zeros and extends ones (Linux ima_add_violation).
    const d = th.every((b) => b === 0) ? new Uint8Array(20).fill(0xff) : new Uint8Array(th);
    s1 = sha('sha1', s1, d);
    const padded = new Uint8Array(32);
    padded.set(d);
    s256 = sha('sha256', s256, padded);
  }
  return { sha1: hex(s1), paddedSha256: hex(s256) };
}

describe('ima on real lists', () => {
  type ImaJson = { format: string; entries: { name: string; template: string }[]; replay: Record<string, Record<string, Record<string, string>>>; violations: number; accepted: boolean };

  it('the embrave Raspberry Pi lists: binary and ASCII forms give the same entries and PCR 10, equal to the template hashes folded here', async () => {
    const ascii = await readFile(join(FIXTURES, 'ima', 'embrave-rpi-ascii_runtime_measurements'), 'latin1');
    const want = pcr10FromAscii(ascii);
    const bin = await cli(['attest', 'ima', join(FIXTURES, 'ima', 'embrave-rpi-binary_runtime_measurements'), '--json']);
    const asc = await cli(['attest', 'ima', join(FIXTURES, 'ima', 'embrave-rpi-ascii_runtime_measurements'), '--json']);
    expect([bin.code, asc.code]).toEqual([0, 0]);
    const b = parsed<ImaJson>(bin);
    const a = parsed<ImaJson>(asc);
    expect([b.format, a.format, b.entries.length]).toEqual(['binary', 'ascii', 922]);
    expect(a.entries).toEqual(b.entries);
    expect(b.entries[0]).toMatchObject({ name: 'boot_aggregate', template: 'ima-ng' });
    expect(b.replay['10']!['sha1']).toEqual({ 'bank-hash': want.sha1, 'padded-sha1': want.sha1 });
    expect(b.replay['10']!['sha256']!['padded-sha1']).toBe(want.paddedSha256);
    expect(a.replay).toEqual(b.replay);
    // A 5.8+ kernel's SHA-256 bank differs from the padded form.
    expect(b.replay['10']!['sha256']!['bank-hash']).not.toBe(want.paddedSha256);
  });

  it('text output: entries and PCR 10 per bank under both kernel behaviours', async () => {
    const r = await cli(['attest', 'ima', join(FIXTURES, 'ima', 'keylime-ima-sig-buf'), '--banks', 'sha256,sha1']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^ima: ascii IMA list, 6 entries, template hashes sha1$/m);
    expect(r.out).toMatch(/^ +\d+ {2}PCR 10 {2}ima-sig {2}sha256:[0-9a-f]{64} {2}\S+ \[signature \d+ bytes\]$/m);
    expect(r.out).toMatch(/^ +5 {2}PCR 10 {2}ima-buf {2}sha256:[0-9a-f]{64} {2}\.ima \[buffer \d+ bytes\]$/m);
    const want = pcr10FromAscii(await readFile(join(FIXTURES, 'ima', 'keylime-ima-sig-buf'), 'latin1'));
    expect(r.out).toContain(`  PCR 10  sha1     ${want.sha1}\n`);
    expect(r.out).toContain(`  PCR 10  sha256   ${want.paddedSha256}  padded-sha1\n`);
    expect(r.out).toMatch(/^ {2}PCR 10 {2}sha256 {3}[0-9a-f]{64} {2}bank-hash$/m);
    expect(r.out).toMatch(/not-performed +ima\.replay +replay\.no-quote/);
  });

  it('a list with an all-zero template hash (keylime sha1 file): a violation, counted and replayed as ones', async () => {
    const r = await cli(['attest', 'ima', join(FIXTURES, 'ima', 'keylime-ima-log-sha1'), '--json']);
    expect(r.code).toBe(0);
    const j = parsed<ImaJson>(r);
    expect(j.violations).toBe(1);
    const want = pcr10FromAscii(await readFile(join(FIXTURES, 'ima', 'keylime-ima-log-sha1'), 'latin1'));
    expect(j.replay['10']!['sha1']!['bank-hash']).toBe(want.sha1);
  });

  it('malformed lists and options: exit 2 with one line', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'trustroot-cli-'));
    try {
      const bin = await readFile(join(FIXTURES, 'ima', 'embrave-rpi-binary_runtime_measurements'));
      await writeFile(join(dir, 'cut'), bin.subarray(0, 1000));
      await writeFile(join(dir, 'bad.txt'), '10 nothex ima-ng sha256:00 /x\n');
      expectUnusable(await cli(['attest', 'ima', 'cut'], dir), /^trustroot attest ima: IMA list cut: .*\[evidence\.ima\]$/);
      expectUnusable(await cli(['attest', 'ima', 'bad.txt', '--json'], dir), /\[evidence\.ima\]/);
      expectUnusable(await cli(['attest', 'ima', 'cut', '--banks', 'md5'], dir), /--banks md5: "md5" is not a PCR bank/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------------------

describe('ek-cert on real EK certificates', () => {
  const ek = (f: string): string => join(FIXTURES, 'ekcert', f);
  let roots: string;
  let dir: string;
  const AT = '2025-06-01';

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'trustroot-cli-ek-'));
    roots = join(dir, 'roots');
    await mkdir(roots);
    for (const f of ['nuvoton-tpm-root-ca-2111.pem', 'ntc-tpm-ek-root-ca-02.pem']) await writeFile(join(roots, f), await readFile(ek(f)));
    await writeFile(join(roots, 'README.txt'), 'not a certificate, and not read');
  });
  afterAll(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  type EkJson = {
    accepted: boolean;
    certificate: { tpm: { vendorId?: string; manufacturer?: string; model?: string; version?: string }; publicKey: { kind: string; bits?: number; pem?: string } };
    chain: { status: string; reason: string; path: { subject: string }[]; anchor?: string };
    tpmType: { type: string; assurance: string; reasons: { code: string }[] };
    quirks: { code: string }[];
  };

  it('Nuvoton NPCT75x (non-DER SETs) with its vendor root: verified, NTC, discrete, quirks listed', async () => {
    const r = await cli(['attest', 'ek-cert', ek('nuvoton-npct75x-ek.der'), '--roots', roots, '--at', AT, '--json']);
    expect(r.code).toBe(0);
    const j = parsed<EkJson>(r);
    expect(j.certificate.tpm).toMatchObject({ vendorId: 'NTC', manufacturer: 'id:4E544300', model: 'NPCT75x', version: 'id:00070002' });
    expect(j.certificate.publicKey).toMatchObject({ kind: 'rsa', bits: 2048 });
    expect(j.certificate.publicKey.pem).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    expect(j.chain).toMatchObject({ status: 'verified', reason: 'chain.verified', anchor: 'CN=Nuvoton TPM Root CA 2111+O=Nuvoton Technology Corporation+C=TW' });
    expect(j.tpmType).toMatchObject({ type: 'discrete', assurance: 'verified' });
    expect(j.tpmType.reasons.map((x) => x.code)).toEqual(['chain.verified', 'vendor.known']);
    expect([...new Set(j.quirks.map((q) => q.code))]).toEqual(['der.set-order']);

    const text = await cli(['attest', 'ek-cert', ek('nuvoton-npct75x-ek.der'), '--roots', roots, '--at', AT]);
    expect(text.code).toBe(0);
    expect(text.out).toMatch(/^ {2}manufacturer {3}NTC \(id:4E544300\)$/m);
    expect(text.out).toMatch(/^ {2}model {10}NPCT75x$/m);
    expect(text.out).toMatch(/^ {2}version {8}id:00070002$/m);
    expect(text.out).toMatch(/^ {2}EK public key {2}RSA-2048, exponent 65537$/m);
    expect(text.out).toMatch(/^ {2}chain {10}verified — chain\.verified: /m);
    expect(text.out).toMatch(/^ {2}TPM type {7}discrete \(verified\)$/m);
    expect(text.out).toMatch(/^ {2}quirks {9}der\.set-order: /m);
    expect(text.out).toMatch(/^-----BEGIN PUBLIC KEY-----$/m);
  });

  it('the same certificate without roots: incomplete (root not configured), exit 1, the type only claimed', async () => {
    const r = await cli(['attest', 'ek-cert', ek('nuvoton-npct75x-ek.der'), '--at', AT, '--json']);
    expect(r.code).toBe(1);
    const j = parsed<EkJson>(r);
    expect(j.chain).toMatchObject({ status: 'incomplete', reason: 'issuer.missing' });
    expect(j.tpmType).toMatchObject({ type: 'discrete', assurance: 'claimed' });
    expect(failuresOf(r)).toEqual(['ekcert.chain:issuer.missing']);
  });

  it('a TPM 1.2-era Nuvoton certificate (RSAES-OAEP key, SHA-1 signature) chains to the NTC root; WEC; key shown as modulus', async () => {
    const r = await cli(['attest', 'ek-cert', ek('nuvoton-npct42x-rsaes-oaep-ek.der'), '--roots', roots, '--at', AT, '--json']);
    expect(r.code).toBe(0);
    const j = parsed<EkJson>(r);
    expect(j.certificate.tpm).toMatchObject({ vendorId: 'WEC', model: 'NPCT42x/NPCT50x' });
    expect(j.chain.status).toBe('verified');
    expect(j.quirks.map((q) => q.code)).toContain('x509.rsaes-oaep-key');
    expect(j.certificate.publicKey.pem).toBeUndefined();
    expect(notPassed(r)).toContain('ekcert.chain.algorithm:warn:hash.sha1');
    const text = await cli(['attest', 'ek-cert', ek('nuvoton-npct42x-rsaes-oaep-ek.der'), '--roots', join(roots, 'ntc-tpm-ek-root-ca-02.pem'), '--at', AT]);
    expect(text.code).toBe(0);
    expect(text.out).toMatch(/^EK modulus: [0-9a-f]{512}$/m);
  });

  it('Infineon SLB 9665 (PEM, strict DER) whose CA is not here: incomplete, IFX, the version as written', async () => {
    const r = await cli(['attest', 'ek-cert', ek('infineon-slb9665-ek.pem'), '--roots', roots, '--at', AT]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^ {2}manufacturer {3}IFX \(id:49465800\)$/m);
    expect(r.out).toMatch(/^ {2}version {8}id:053f$/m);
    expect(r.out).toMatch(/^ {2}chain {10}incomplete — issuer\.missing: no certificate for the issuer ".*Infineon OPTIGA\(TM\) RSA Manufacturing CA 036"/m);
    expect(r.out).toMatch(/^ {2}TPM type {7}discrete \(claimed: what the certificate says, not verified\)$/m);
    expect(r.out).toMatch(/^ {2}quirks {9}none \(strict DER\)$/m);
  });

  it('NV padding after a DER certificate is tolerated and reported', async () => {
    const der = await readFile(ek('nuvoton-npct75x-ek.der'));
    await writeFile(join(dir, 'padded.der'), Buffer.concat([der, Buffer.alloc(300, 0xff)]));
    const r = await cli(['attest', 'ek-cert', 'padded.der', '--roots', 'roots', '--at', AT, '--json'], dir);
    expect(r.code).toBe(0);
    expect(parsed<EkJson>(r).quirks.map((q) => q.code)).toContain('der.trailing-data');
  });

  it('unusable input: not a certificate, a bad --at, an unreadable or malformed root', async () => {
    await writeFile(join(dir, 'junk.der'), randomBytes(200));
    await writeFile(join(dir, 'junk.pem'), '-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n');
    expectUnusable(await cli(['attest', 'ek-cert', 'junk.der'], dir), /^trustroot attest ek-cert: EK certificate junk\.der: .*\[evidence\.certificate\]$/);
    expectUnusable(await cli(['attest', 'ek-cert', ek('nuvoton-npct75x-ek.der'), '--at', 'yesterday'], dir), /--at yesterday: expected an ISO 8601 date/);
    expectUnusable(await cli(['attest', 'ek-cert', ek('nuvoton-npct75x-ek.der'), '--roots', 'no-such-dir'], dir), /root no-such-dir: cannot be read \(ENOENT\)/);
    expectUnusable(await cli(['attest', 'ek-cert', ek('nuvoton-npct75x-ek.der'), '--roots', 'junk.pem'], dir), /root .*junk\.pem: PEM block 1 is not base64/);
  });
});

// ---------------------------------------------------------------------------

describeWithSwtpmSetup('ek-cert on swtpm_setup certificates (swtpm_localca root → intermediate → EK)', () => {
  let sw: SwtpmWithCertificates;
  let dir: string;

  beforeAll(async () => {
    sw = await startSwtpmWithCertificates();
    dir = await mkdtemp(join(tmpdir(), 'trustroot-cli-swtpm-ek-'));
    const tpm = new Tpm(new SwtpmTransport({ port: sw.port, ctrlPort: sw.ctrlPort }));
    try {
      await tpm.run(Startup, {}, { startupType: TPM_SU.CLEAR });
      const rsa = await readEkCertificate(tpm, 'L-1');
      const ecc = await readEkCertificate(tpm, 'H-3');
      if (rsa === undefined || ecc === undefined) throw new Error('swtpm_setup wrote no EK certificates');
      // The RSA one as the NV Index holds it plus padding, the P-384 one as PEM.
      await writeFile(join(dir, 'ek-rsa.der'), Buffer.concat([rsa, Buffer.alloc(64)]));
      await writeFile(join(dir, 'ek-p384.pem'), `-----BEGIN CERTIFICATE-----\n${Buffer.from(ecc).toString('base64').replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE-----\n`);
    } finally {
      await tpm.close();
    }
    await mkdir(join(dir, 'roots'));
    await mkdir(join(dir, 'intermediates'));
    await writeFile(join(dir, 'roots', 'swtpm-localca-root.pem'), sw.rootCertificatePem);
    await writeFile(join(dir, 'intermediates', 'swtpm-localca.crt'), sw.issuerCertificatePem);
  }, 90_000);
  afterAll(async () => {
    await sw?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it.each([
    ['ek-rsa.der', 'RSA-2048'],
    ['ek-p384.pem', 'ECC NIST P-384'],
  ])('%s with the root and the intermediate: verified, software (swtpm), exit 0', async (file, key) => {
    const r = await cli(['attest', 'ek-cert', file, '--roots', 'roots', '--intermediates', 'intermediates'], dir);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^ek-cert: ACCEPTED/);
    expect(r.out).toMatch(new RegExp(`^  EK public key  ${key}`, 'm'));
    expect(r.out).toMatch(/^ {2}manufacturer {3}id:00001014 \(not a printable TCG vendor ID\)$/m);
    expect(r.out).toMatch(/^ {2}model {10}swtpm$/m);
    expect(r.out).toMatch(/^ {2}chain {10}verified — chain\.verified: verified to the configured root "CN=swtpm-localca-rootca"$/m);
    expect(r.out).toMatch(/^ {2}path {11}"CN=unknown" ← issued by "CN=swtpm-localca" ← issued by "CN=swtpm-localca-rootca"$/m);
    expect(r.out).toMatch(/^ {2}version {8}id:20191023$/m);
    expect(r.out).toMatch(/^ {2}TPM type {7}software \(verified\)$/m);
    expect(r.out).toMatch(/software\.swtpm: EK certificate chain from swtpm_localca/);
  });

  it('without the intermediate: incomplete, the missing issuer named, exit 1; up to a root that is not configured: incomplete too', async () => {
    const r = await cli(['attest', 'ek-cert', 'ek-rsa.der', '--roots', 'roots', '--json'], dir);
    expect(r.code).toBe(1);
    const chain = parsed<{ chain: { status: string; reason: string; detail: string } }>(r).chain;
    expect(chain).toMatchObject({ status: 'incomplete', reason: 'issuer.missing' });
    expect(chain.detail).toMatch(/no certificate for the issuer "CN=swtpm-localca"/);
    expect(failuresOf(r)).toEqual(['ekcert.chain:issuer.missing']);
    // swtpm_localca's root given only as a candidate, and another vendor's root configured.
    await mkdir(join(dir, 'all-cas'), { recursive: true });
    await writeFile(join(dir, 'all-cas', 'bundle.pem'), sw.issuerCertificatePem + sw.rootCertificatePem);
    const other = await cli(['attest', 'ek-cert', 'ek-rsa.der', '--roots', join(FIXTURES, 'ekcert', 'nuvoton-tpm-root-ca-2111.pem'), '--intermediates', 'all-cas', '--json'], dir);
    expect(other.code).toBe(1);
    expect(parsed<{ chain: { status: string; reason: string } }>(other).chain).toMatchObject({ status: 'incomplete', reason: 'root.untrusted' });
  });
});

// ---------------------------------------------------------------------------

const QUOTE_PCRS = 'sha256:0,1,2,3,4,5,6,7,10';

describeWithSwtpm('verify-quote on tpm2-tools files against swtpm', () => {
  describeWithTpm2Tools('tpm2-tools', () => {
    let sw: SwtpmInstance;
    let tools: Tpm2Tools | undefined;
    let dir: string;
    let boot: AppliedMeasuredBoot;
    const nonce = { q1: '', q2: '', qc: '', sk: '', nf: '', swap: '' };
    const path = (f: string): string => join(dir, f);
    const save = (f: string, b: Uint8Array | string): Promise<void> => writeFile(path(f), b);
    const load = async (f: string): Promise<Uint8Array> => new Uint8Array(await readFile(path(f)));
    const fresh = (): string => randomBytes(32).toString('hex');

    /** verify-quote in the evidence folder. */
    const verify = (quote: string, args: readonly string[] = [], n?: string): Promise<Run> =>
      cli(['attest', 'verify-quote', '--ak', 'ak.pub', '--quote', `${quote}.msg`, '--sig', `${quote}.sig`, '--pcrs', `${quote}.pcrs`, '--nonce', n ?? nonce[quote as keyof typeof nonce], ...args], dir);

    async function quoteWith(tool: Tpm2Tools, ctx: string, name: keyof typeof nonce): Promise<void> {
      nonce[name] = fresh();
      await tool.run('quote', ['-c', ctx, '-l', QUOTE_PCRS, '-q', nonce[name], '-m', `${name}.msg`, '-s', `${name}.sig`, '-o', `${name}.pcrs`, '-g', 'sha256']);
    }

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'trustroot-cli-quote-'));
      sw = await startSwtpm();
      // The device boots: the measured-boot writer's event log and IMA list, extended into swtpm's PCRs.
      {
        const tpm = new Tpm(new SwtpmTransport({ port: sw.port, ctrlPort: sw.ctrlPort }));
        try {
          await tpm.run(Startup, {}, { startupType: TPM_SU.CLEAR });
          boot = await applyMeasuredBoot(tpm);
        } finally {
          await tpm.close();
        }
        await save('eventlog.bin', boot.eventLog);
        await save('ima.bin', boot.imaList!.binary);
        await save('ima.txt', boot.imaList!.ascii);
      }

      let t = await startTpm2Tools(sw, { cwd: dir });
      tools = t;
      await t.run('createek', ['-c', 'ek.ctx', '-G', 'ecc', '-u', 'ek.pub']);
      await t.run('createak', ['-C', 'ek.ctx', '-c', 'ak.ctx', '-G', 'ecc', '-g', 'sha256', '-s', 'ecdsa', '-u', 'ak.pub', '-r', 'ak.priv', '-n', 'ak.name']);
      await t.run('readpublic', ['-c', 'ak.ctx', '-f', 'pem', '-o', 'ak.pem']);
      await quoteWith(t, 'ak.ctx', 'q1');
      await new Promise((r) => setTimeout(r, 30));
      await quoteWith(t, 'ak.ctx', 'q2');

      // Another AK of the same EK (the swap case), and signing keys that are no AK.
      await t.run('createak', ['-C', 'ek.ctx', '-c', 'swap.ctx', '-G', 'ecc', '-g', 'sha256', '-s', 'ecdsa', '-u', 'swap.pub']);
      await quoteWith(t, 'swap.ctx', 'swap');
      await t.run('createprimary', ['-C', 'o', '-G', 'ecc', '-c', 'prim.ctx']);
      await t.run('create', ['-C', 'prim.ctx', '-G', 'ecc256:ecdsa-sha256', '-a', 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign', '-u', 'sk.pub', '-r', 'sk.priv', '-c', 'sk.ctx']);
      await t.run('readpublic', ['-c', 'sk.ctx', '-f', 'pem', '-o', 'sk.pem']);
      await quoteWith(t, 'sk.ctx', 'sk');
      // Restricted but duplicable: neither fixedTPM nor fixedParent.
      await t.run('createprimary', ['-C', 'o', '-G', 'ecc256:ecdsa-sha256:null', '-a', 'restricted|sign|sensitivedataorigin|userwithauth', '-c', 'nf.ctx', '-o', 'nf.pem', '-f', 'pem']);
      await t.run('readpublic', ['-c', 'nf.ctx', '-o', 'nf.pub']);
      await quoteWith(t, 'nf.ctx', 'nf');

      // CVE-2024-29038: a TPMS_ATTEST claiming golden PCR values, for q1's nonce, signed with TPM2_Sign by the
      // key that is not restricted — once with a forged magic, once with the genuine one.
      const golden = Array.from({ length: 9 }, (_, i) => sha('sha256', new TextEncoder().encode(`golden ${i}`)));
      const q1 = await load('q1.msg');
      for (const [name, magic] of [
        ['forged', 0x00544347],
        ['forgedm', 0xff544347],
      ] as const) {
        const f = q1.slice();
        new DataView(f.buffer).setUint32(0, magic);
        f.set(sha('sha256', ...golden), f.length - 32); // pcrDigest is the structure's last field
        await save(`${name}.msg`, f);
        await t.run('sign', ['-c', 'sk.ctx', '-g', 'sha256', '-o', `${name}.sig`, `${name}.msg`]);
      }
      await save('golden.json', JSON.stringify({ sha256: Object.fromEntries([0, 1, 2, 3, 4, 5, 6, 7, 10].map((p, i) => [String(p), hex(golden[i]!)])) }));

      // A power cut: the TPM stops without Shutdown and starts again (resetCount up, safe = 0). The AK's saved
      // context dies with the TPM Reset; the tools load it again under the (re-derived) EK.
      await t.stop();
      tools = undefined;
      {
        const transport = new SwtpmTransport({ port: sw.port, ctrlPort: sw.ctrlPort });
        const tpm = new Tpm(transport);
        try {
          await transport.control.stop();
          await transport.control.init();
          await tpm.run(Startup, {}, { startupType: TPM_SU.CLEAR });
        } finally {
          await tpm.close();
        }
      }
      t = await startTpm2Tools(sw, { cwd: dir });
      tools = t;
      await t.run('createek', ['-c', 'ek2.ctx', '-G', 'ecc', '-u', 'ek2.pub']);
      await t.run('startauthsession', ['--policy-session', '-S', 'session.ctx']);
      await t.run('policysecret', ['-S', 'session.ctx', '-c', 'e']);
      await t.run('load', ['-C', 'ek2.ctx', '-u', 'ak.pub', '-r', 'ak.priv', '-c', 'ak2.ctx', '-P', 'session:session.ctx']);
      await t.run('flushcontext', ['session.ctx']);
      await quoteWith(t, 'ak2.ctx', 'qc');
      await t.stop();
      tools = undefined;
    }, 120_000);

    afterAll(async () => {
      await tools?.stop();
      await sw?.stop();
      if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    });

    /** The clock state an accepted quote leaves, as verify-quote --json prints it, saved for --previous. */
    async function stateOf(quote: keyof typeof nonce, file: string, change: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
      const r = await verify(quote, ['--ek', 'ek.pub', '--json']);
      expect(r.code).toBe(0);
      const state = { ...parsed<{ clock: Record<string, unknown> }>(r).clock, ...change };
      await save(file, JSON.stringify(state));
      return state;
    }

    describe('the device as recorded', () => {
      it('the tools wrote what verify-quote reads: ECC EK and AK, quotes over the signed selection, the power cut visible in the clockInfo', async () => {
        expect(hex(await load('ek2.pub'))).toBe(hex(await load('ek.pub')));
        const q = (name: string) => decodeAttest(readFileSyncU8(path(`${name}.msg`)));
        const [q1, q2, qc] = [q('q1'), q('q2'), q('qc')];
        expect([q1.type, q1.magic]).toEqual([TPM_ST.ATTEST_QUOTE, 0xff544347]);
        expect(q1.clockInfo).toMatchObject({ safe: 1, resetCount: q2.clockInfo.resetCount, restartCount: q2.clockInfo.restartCount });
        expect(q2.clockInfo.clock > q1.clockInfo.clock).toBe(true);
        expect(qc.clockInfo).toMatchObject({ safe: 0, resetCount: q1.clockInfo.resetCount + 1 });
        const pcrs = readPcrValuesFile(await load('q1.pcrs'));
        expect(pcrs.digests).toHaveLength(9);
      });
    });

    describe('honest evidence is accepted (exit 0)', () => {
      it('TPM2B_PUBLIC AK and EK: every check passes but the ones that need a history (challenge lifetime, previous clock)', async () => {
        const r = await verify('q1', ['--ek', 'ek.pub', '--json']);
        expect(r.code).toBe(0);
        expect(r.err).toBe('');
        expect(notPassed(r)).toEqual(['quote.challenge:not-performed:challenge.no-expiry', 'quote.reset-count:not-performed:reset.no-previous', 'quote.clock:not-performed:clock.no-previous']);
        const j = parsed<{ accepted: boolean; quote: { type: string; pcrSelect: { bank: string; pcrs: number[] }[]; extraData: string }; pcrValues: { format: string } }>(r);
        expect(j.accepted).toBe(true);
        expect(j.quote).toMatchObject({ type: 'ATTEST_QUOTE', extraData: nonce.q1, pcrSelect: [{ bank: 'sha256', pcrs: [0, 1, 2, 3, 4, 5, 6, 7, 10] }] });
        expect(j.pcrValues.format).toBe('tpm2-tools');
        expect(checksOf(r).find((c) => c.check === 'quote.qualified-signer')!.reason).toBe('signer.match');
      });

      it('text output: the verdict, every check with outcome and reason, the clock state to keep', async () => {
        const r = await verify('q1', ['--ek', 'ek.pub']);
        expect(r.code).toBe(0);
        expect(r.out).toMatch(/^verify-quote: ACCEPTED \(16 checks: 13 passed, 0 warned, 3 not performed, 0 failed\)$/m);
        for (const [outcome, check, reason] of [
          ['pass', 'ak.attributes', 'attributes.ak'],
          ['pass', 'quote.signature', 'signature.valid'],
          ['pass', 'quote.magic', 'magic.generated'],
          ['pass', 'quote.nonce', 'nonce.match'],
          ['pass', 'quote.pcr-selection', 'pcr.selection-signed'],
          ['pass', 'quote.pcr-digest', 'pcr.digest-match'],
          ['not-performed', 'quote.challenge', 'challenge.no-expiry'],
        ]) {
          expect(r.out).toMatch(new RegExp(`^  ${outcome} +${check.replace('.', '\\.')} +${reason.replace('.', '\\.')} +\\S`, 'm'));
        }
        expect(r.out).toMatch(/^clock state to keep \(give it as --previous next time\): \{"clock":\d+,"resetCount":\d+,"restartCount":\d+,"safe":true/m);
      });

      it('PCR values as JSON instead of the tools\' file', async () => {
        const v = readPcrValuesFile(await load('q1.pcrs'));
        await save('q1.json', JSON.stringify(jsonOf(v)));
        const r = await cli(['attest', 'verify-quote', '--ak', 'ak.pub', '--quote', 'q1.msg', '--sig', 'q1.sig', '--pcrs', 'q1.json', '--nonce', nonce.q1, '--json'], dir);
        expect(r.code).toBe(0);
        expect(parsed<{ pcrValues: { format: string } }>(r).pcrValues.format).toBe('json');
      });

      it('only a PEM AK: accepted, but the AK-attribute checks are not performed — never passed — and a warning says so', async () => {
        const r = await cli(['attest', 'verify-quote', '--ak', 'ak.pem', '--quote', 'q1.msg', '--sig', 'q1.sig', '--pcrs', 'q1.pcrs', '--nonce', nonce.q1, '--ek', 'ek.pub', '--json'], dir);
        expect(r.code).toBe(0);
        const c = checksOf(r);
        for (const id of ['ak.attributes', 'ak.scheme', 'ak.name-alg']) expect(c.find((x) => x.check === id)).toMatchObject({ outcome: 'not-performed', reason: 'ak.bare-key' });
        expect(c.find((x) => x.check === 'quote.qualified-signer')).toMatchObject({ outcome: 'not-performed', reason: 'signer.no-ak-name' });
        expect(r.err).toMatch(/^warning: the AK was given as a bare public key \(PEM\): its TPM attributes .* were NOT checked/);
        const text = await cli(['attest', 'verify-quote', '--ak', 'ak.pem', '--quote', 'q1.msg', '--sig', 'q1.sig', '--pcrs', 'q1.pcrs', '--nonce', nonce.q1], dir);
        expect(text.out).toMatch(/^ {2}not-performed +ak\.attributes +ak\.bare-key /m);
        expect(text.out).not.toMatch(/^ {2}pass +ak\.attributes/m);
      });

      it('the eventlog and ima commands replay the device\'s evidence to the PCR values tpm2_quote read', async () => {
        const pcrs = readPcrValuesFile(await load('q1.pcrs'));
        const quoted = new Map([0, 1, 2, 3, 4, 5, 6, 7, 10].map((p, i) => [p, hex(pcrs.digests[i]!)]));
        const log = await cli(['attest', 'eventlog', 'eventlog.bin', '--json'], dir);
        expect(log.code).toBe(0);
        const replayed = parsed<{ replay: Record<string, Record<string, string>> }>(log).replay['sha256']!;
        for (const p of [0, 1, 2, 3, 4, 5, 6, 7]) expect([p, replayed[String(p)]]).toEqual([p, quoted.get(p)]);
        for (const f of ['ima.bin', 'ima.txt']) {
          const ima = await cli(['attest', 'ima', f, '--json'], dir);
          expect(ima.code).toBe(0);
          // The writer's default kernel extends each bank with its own hash (Linux 5.8+).
          expect(parsed<{ replay: Record<string, Record<string, Record<string, string>>> }>(ima).replay['10']!['sha256']!['bank-hash']).toBe(quoted.get(10));
        }
      });
    });

    describe('attacks are rejected (exit 1) with their reason', () => {
      it('a wrong nonce (a replayed quote)', async () => {
        const r = await verify('q1', ['--json'], fresh());
        expect(r.code).toBe(1);
        expect(failuresOf(r)).toEqual(['quote.nonce:nonce.mismatch']);
        const text = await verify('q1', [], nonce.q2);
        expect(text.out).toMatch(/^verify-quote: REJECTED \(.*\): quote\.nonce nonce\.mismatch$/m);
        expect(text.out).toMatch(/^ {2}fail +quote\.nonce +nonce\.mismatch +extraData/m);
      });

      it('one byte flipped in the quote (its clock) or in the signature', async () => {
        const msg = await load('q1.msg');
        const a = decodeAttest(msg);
        const clockAt = 4 + 2 + 2 + a.qualifiedSigner.length + 2 + a.extraData.length;
        const flipped = msg.slice();
        flipped[clockAt + 7]! ^= 0x01;
        expect(decodeAttest(flipped).clockInfo.clock).toBe(a.clockInfo.clock ^ 1n);
        await save('flip.msg', flipped);
        await save('flip.sig', await load('q1.sig'));
        await save('flip.pcrs', await load('q1.pcrs'));
        const r = await verify('flip', ['--json'], nonce.q1);
        expect([r.code, failuresOf(r)]).toEqual([1, ['quote.signature:signature.invalid']]);
        const sig = await load('q1.sig');
        sig[sig.length - 1]! ^= 0x80;
        await save('flip.msg', msg);
        await save('flip.sig', sig);
        const s = await verify('flip', ['--json'], nonce.q1);
        expect([s.code, failuresOf(s)]).toEqual([1, ['quote.signature:signature.invalid']]);
      });

      it('PCR values for a PCR outside the signed selection (JSON)', async () => {
        const v = jsonOf(readPcrValuesFile(await load('q1.pcrs')));
        v.sha256!['16'] = '00'.repeat(32);
        await save('extra.json', JSON.stringify(v));
        const r = await cli(['attest', 'verify-quote', '--ak', 'ak.pub', '--quote', 'q1.msg', '--sig', 'q1.sig', '--pcrs', 'extra.json', '--nonce', nonce.q1, '--json'], dir);
        expect([r.code, failuresOf(r)]).toEqual([1, ['quote.pcr-selection:pcr.outside-selection']]);
      });

      it('CVE-2024-29039: the tools\' file relabelled (the signed values claimed for PCRs 8–16), and JSON values moved to other indices', async () => {
        const v = readPcrValuesFile(await load('q1.pcrs'));
        const relabelled: ToolsPcrValues = { selections: [pcrSelection(TPM_ALG.SHA256, [8, 9, 11, 12, 13, 14, 15, 16, 17])], digests: v.digests };
        await save('relabel.pcrs', writePcrValuesFile(relabelled));
        const r = await cli(['attest', 'verify-quote', '--ak', 'ak.pub', '--quote', 'q1.msg', '--sig', 'q1.sig', '--pcrs', 'relabel.pcrs', '--nonce', nonce.q1, '--json'], dir);
        expect([r.code, failuresOf(r)]).toEqual([1, ['quote.pcr-selection:pcr.selection-relabelled']]);
        // The values still hash to the signed pcrDigest: only the labels lie, which is what tpm2_checkquote believed.
        const a = decodeAttest(await load('q1.msg'));
        if (a.type !== TPM_ST.ATTEST_QUOTE) throw new Error('not a quote');
        expect(hex(sha('sha256', ...v.digests))).toBe(hex(a.attested.pcrDigest));
        const moved = { sha256: Object.fromEntries(v.digests.map((d, i) => [String(8 + i), hex(d)])) };
        await save('moved.json', JSON.stringify(moved));
        const j = await cli(['attest', 'verify-quote', '--ak', 'ak.pub', '--quote', 'q1.msg', '--sig', 'q1.sig', '--pcrs', 'moved.json', '--nonce', nonce.q1, '--json'], dir);
        expect(j.code).toBe(1);
        expect(failuresOf(j)).toContain('quote.pcr-selection:pcr.selection-relabelled');
      });

      it('CVE-2024-29038: a forged TPMS_ATTEST signed with TPM2_Sign by a key that is not restricted — the forged magic is caught even with a PEM key', async () => {
        const pem = await cli(['attest', 'verify-quote', '--ak', 'sk.pem', '--quote', 'forged.msg', '--sig', 'forged.sig', '--pcrs', 'golden.json', '--nonce', nonce.q1, '--json'], dir);
        expect([pem.code, failuresOf(pem)]).toEqual([1, ['quote.magic:magic.not-generated']]);
        const pub = await cli(['attest', 'verify-quote', '--ak', 'sk.pub', '--quote', 'forged.msg', '--sig', 'forged.sig', '--pcrs', 'golden.json', '--nonce', nonce.q1, '--json'], dir);
        expect([pub.code, failuresOf(pub)]).toEqual([1, ['ak.attributes:attributes.missing', 'quote.magic:magic.not-generated']]);
        // The enrolled AK did not sign it.
        const ak = await cli(['attest', 'verify-quote', '--ak', 'ak.pub', '--quote', 'forged.msg', '--sig', 'forged.sig', '--pcrs', 'golden.json', '--nonce', nonce.q1, '--json'], dir);
        expect(failuresOf(ak)).toEqual(['quote.signature:signature.invalid', 'quote.magic:magic.not-generated']);
      });

      it('the same forgery with the genuine magic: only the AK\'s attributes tell — which a PEM key cannot, so it is not performed and warned about', async () => {
        const pub = await cli(['attest', 'verify-quote', '--ak', 'sk.pub', '--quote', 'forgedm.msg', '--sig', 'forgedm.sig', '--pcrs', 'golden.json', '--nonce', nonce.q1, '--json'], dir);
        expect([pub.code, failuresOf(pub)]).toEqual([1, ['ak.attributes:attributes.missing']]);
        const pem = await cli(['attest', 'verify-quote', '--ak', 'sk.pem', '--quote', 'forgedm.msg', '--sig', 'forgedm.sig', '--pcrs', 'golden.json', '--nonce', nonce.q1, '--json'], dir);
        expect(pem.code).toBe(0);
        expect(checksOf(pem).find((c) => c.check === 'ak.attributes')).toMatchObject({ outcome: 'not-performed', reason: 'ak.bare-key' });
        expect(pem.err).toMatch(/a key that is not restricted can sign forged quotes/);
      });

      it('an AK that is not restricted (its own tpm2_quote), and one that is not fixedTPM', async () => {
        const sk = await cli(['attest', 'verify-quote', '--ak', 'sk.pub', '--quote', 'sk.msg', '--sig', 'sk.sig', '--pcrs', 'sk.pcrs', '--nonce', nonce.sk, '--json'], dir);
        expect([sk.code, failuresOf(sk)]).toEqual([1, ['ak.attributes:attributes.missing']]);
        expect(checksOf(sk).find((c) => c.check === 'ak.attributes')!.detail).toMatch(/lack restricted$/);
        const nf = await cli(['attest', 'verify-quote', '--ak', 'nf.pub', '--quote', 'nf.msg', '--sig', 'nf.sig', '--pcrs', 'nf.pcrs', '--nonce', nonce.nf, '--json'], dir);
        expect([nf.code, failuresOf(nf)]).toEqual([1, ['ak.attributes:attributes.missing']]);
        expect(checksOf(nf).find((c) => c.check === 'ak.attributes')!.detail).toMatch(/lack fixedTPM, fixedParent$/);
      });

      it('an AK swapped for another of the same EK: not the enrolled key, not the enrolled qualified name', async () => {
        const r = await verify('swap', ['--ek', 'ek.pub', '--json']);
        expect([r.code, failuresOf(r)]).toEqual([1, ['quote.signature:signature.invalid', 'quote.qualified-signer:signer.mismatch']]);
        // With the swapped AK named as the AK, the quote itself is fine: enrollment is what pins the AK.
        const own = await cli(['attest', 'verify-quote', '--ak', 'swap.pub', '--quote', 'swap.msg', '--sig', 'swap.sig', '--pcrs', 'swap.pcrs', '--nonce', nonce.swap, '--ek', 'ek.pub'], dir);
        expect(own.code).toBe(0);
      });
    });

    describe('clockInfo against --previous', () => {
      it('the next quote of the same boot: accepted, the clock monotonic', async () => {
        await stateOf('q1', 'q1.state');
        const r = await verify('q2', ['--ek', 'ek.pub', '--previous', 'q1.state', '--json']);
        expect(r.code).toBe(0);
        expect(notPassed(r)).toEqual(['quote.challenge:not-performed:challenge.no-expiry']);
        expect(checksOf(r).find((c) => c.check === 'quote.clock')!.reason).toBe('clock.monotonic');
        expect(parsed<{ transition: string }>(r).transition).toBe('same-boot');
      });

      it('an older quote after a newer one: the clock went backwards', async () => {
        await stateOf('q2', 'q2.state');
        const r = await verify('q1', ['--previous', 'q2.state', '--json']);
        expect([r.code, failuresOf(r)]).toEqual([1, ['quote.clock:clock.backwards']]);
        const text = await verify('q1', ['--previous', 'q2.state']);
        expect(text.out).toMatch(/^ {2}fail +quote\.clock +clock\.backwards +clock \d+ is below the previous \d+ with the same resetCount while safe = 1$/m);
        expect(text.out).not.toMatch(/clock state to keep/);
      });

      it('resetCount or restartCount going backwards', async () => {
        const s = await stateOf('q1', 'up.state');
        await save('reset.state', JSON.stringify({ ...s, resetCount: (s['resetCount'] as number) + 1 }));
        const r = await verify('q1', ['--previous', 'reset.state', '--json']);
        expect([r.code, failuresOf(r)]).toEqual([1, ['quote.reset-count:reset.backwards']]);
        await save('restart.state', JSON.stringify({ ...s, restartCount: (s['restartCount'] as number) + 1 }));
        const t = await verify('q1', ['--previous', 'restart.state', '--json']);
        expect([t.code, failuresOf(t)]).toEqual([1, ['quote.clock:clock.restart-backwards']]);
      });

      it('an honest power cut (safe = 0, resetCount up): accepted with a warning', async () => {
        await stateOf('q2', 'q2.state');
        const r = await verify('qc', ['--ek', 'ek.pub', '--previous', 'q2.state', '--json']);
        expect(r.code).toBe(0);
        expect(notPassed(r)).toEqual(['quote.challenge:not-performed:challenge.no-expiry', 'quote.clock:warn:clock.unsafe']);
        expect(checksOf(r).find((c) => c.check === 'quote.reset-count')!.reason).toBe('reset.reboot');
        const text = await verify('qc', ['--previous', 'q2.state']);
        expect(text.out).toMatch(/^verify-quote: ACCEPTED \(16 checks: .* 1 warned, .*0 failed\)$/m);
        expect(text.out).toMatch(/^ {2}warn +quote\.clock +clock\.unsafe +safe = 0/m);
      });

      it('safe = 0 with the clock behind the previous and the counters unchanged: not compared, a warning (the default policy)', async () => {
        const a = decodeAttest(await load('qc.msg'));
        await save('ahead.state', JSON.stringify({ clock: Number(a.clockInfo.clock) + 1_000_000, resetCount: a.clockInfo.resetCount, restartCount: a.clockInfo.restartCount, safe: true }));
        const r = await verify('qc', ['--ek', 'ek.pub', '--previous', 'ahead.state', '--json']);
        expect(r.code).toBe(0);
        expect(notPassed(r)).toEqual(['quote.challenge:not-performed:challenge.no-expiry', 'quote.clock:warn:clock.unsafe']);
        expect(checksOf(r).find((c) => c.check === 'quote.clock')!.detail).toMatch(/clock \d+ is below the previous \d+/);
      });
    });

    describe('with --policy, --eventlog and --ima', () => {
      async function quotedPcrs(): Promise<Map<number, string>> {
        const v = readPcrValuesFile(await load('q1.pcrs'));
        return new Map([0, 1, 2, 3, 4, 5, 6, 7, 10].map((p, i) => [p, hex(v.digests[i]!)]));
      }
      const withPolicy = (quote: keyof typeof nonce, policy: string, extra: readonly string[] = []): Promise<Run> =>
        verify(quote, ['--ek', 'ek.pub', '--policy', policy, '--eventlog', 'eventlog.bin', '--ima', 'ima.bin', ...extra, '--json']);

      it('the device\'s logs replay to the quote and its golden values, Secure Boot and IMA pass the policy: accepted', async () => {
        const q = await quotedPcrs();
        await save('golden-policy.json', JSON.stringify({ version: 1, name: 'golden', missing: 'not-performed', pcrs: { sha256: { '0': q.get(0), '7': q.get(7) } }, eventLog: { secureBoot: 'enabled' } }));
        const r = await withPolicy('q1', 'golden-policy.json');
        expect(r.code).toBe(0);
        const c = checksOf(r);
        expect(failuresOf(r)).toEqual([]);
        expect(c.filter((x) => x.check === 'policy.pcr').map((x) => `${x.outcome}:${x.reason}`)).toEqual(['pass:pcr.match', 'pass:pcr.match']);
        expect(c.find((x) => x.check === 'policy.secure-boot')!.outcome).toBe('pass');
        expect(c.find((x) => x.check === 'policy.quote')).toMatchObject({ outcome: 'pass', reason: 'quote.accepted' });
        // The log replays to every quoted PCR 0–7, and the IMA list to the quoted PCR 10.
        expect(c.filter((x) => x.check === 'eventlog.replay' && x.outcome === 'pass')).toHaveLength(8);
        expect(c.find((x) => x.check === 'ima.replay')).toMatchObject({ outcome: 'pass', reason: 'replay.match' });
        expect(parsed<{ policy: string }>(r).policy).toBe('golden');
      });

      it('a golden value the device does not have: rejected by the policy rule', async () => {
        const q = await quotedPcrs();
        await save('wrong-policy.json', JSON.stringify({ version: 1, missing: 'not-performed', pcrs: { sha256: { '0': q.get(1), '7': q.get(7) } } }));
        const r = await withPolicy('q1', 'wrong-policy.json');
        expect([r.code, failuresOf(r)]).toEqual([1, ['policy.pcr:pcr.mismatch']]);
      });

      it('another machine\'s event log does not replay to this quote; without the IMA list, PCR 10 has a value but no log', async () => {
        const r = await verify('q1', ['--eventlog', join(FIXTURES, 'eventlog', 'ge-rhel8-uefi.bin'), '--json']);
        expect(r.code).toBe(1);
        const failed = checksOf(r).filter((c) => c.outcome === 'fail');
        expect(failed.filter((c) => c.reason === 'pcr.mismatch').map((c) => c.detail.slice(0, 13))).toEqual([0, 1, 4, 5, 7].map((p) => `sha256 PCR ${p}:`));
        // PCRs 2, 3 and 6 hold nothing but a separator on both machines: those agree.
        const matched = checksOf(r).filter((c) => c.check === 'eventlog.replay' && c.reason === 'pcr.match');
        expect(matched.map((c) => c.detail.slice(0, 13))).toEqual([2, 3, 6].map((p) => `sha256 PCR ${p}:`));
        expect(failed.filter((c) => c.reason !== 'pcr.mismatch').map((c) => `${c.check}:${c.reason}:${c.detail.slice(0, 14)}`)).toEqual(['eventlog.replay:pcr.unlogged:sha256 PCR 10:']);
      });

      it('a policy that refuses safe = 0: the power-cut quote is rejected by the clock rule', async () => {
        await stateOf('q2', 'q2.state');
        await save('strict-clock.json', JSON.stringify({ version: 1, missing: 'not-performed', clock: { unsafe: 'fail' } }));
        const r = await verify('qc', ['--ek', 'ek.pub', '--previous', 'q2.state', '--policy', 'strict-clock.json', '--json']);
        expect([r.code, failuresOf(r)]).toEqual([1, ['quote.clock:clock.unsafe', 'policy.quote:quote.rejected', 'policy.sha1:quote.rejected', 'policy.clock:quote.rejected']]);
      });

      it('a policy file that does not validate: exit 2, the JSON path named', async () => {
        await save('bad-policy.json', JSON.stringify({ version: 1, pcrs: { sha256: { '0': 'xyz' } } }));
        expectUnusable(await verify('q1', ['--policy', 'bad-policy.json']), /^trustroot attest verify-quote: policy bad-policy\.json: policy \$\.pcrs\.sha256\["0"\]: .*\[evidence\.policy\]$/);
        await save('bad-policy.json', '{"version": 2}');
        expectUnusable(await verify('q1', ['--policy', 'bad-policy.json']), /\[evidence\.policy\]$/);
      });
    });

    describe('unusable input (exit 2, one line)', () => {
      it('malformed files, each named', async () => {
        const msg = await load('q1.msg');
        await save('cut.msg', msg.subarray(0, msg.length - 5));
        await save('junk.sig', randomBytes(10));
        await save('long.pcrs', Buffer.concat([await load('q1.pcrs'), Buffer.alloc(1)]));
        await save('junk.json', '{"sha256": {"0": "00"}}');
        await save('bad.state', '{"clock": "soon"}');
        await save('junk.pub', randomBytes(40));
        const base = ['attest', 'verify-quote', '--nonce', nonce.q1];
        const with_ = (o: Record<string, string>): string[] => [...base, ...Object.entries({ ak: 'ak.pub', quote: 'q1.msg', sig: 'q1.sig', pcrs: 'q1.pcrs', ...o }).flatMap(([k, v]) => [`--${k}`, v])];
        expectUnusable(await cli(with_({ quote: 'cut.msg' }), dir), /^trustroot attest verify-quote: quote cut\.msg: .*\(offset \d+\) \[parse\.truncated\]$/);
        expectUnusable(await cli(with_({ sig: 'junk.sig' }), dir), /: signature junk\.sig: .*\[parse\.\w+\]$/);
        expectUnusable(await cli(with_({ pcrs: 'long.pcrs' }), dir), /: PCR values long\.pcrs: .*\[parse\.trailing\]$/);
        expectUnusable(await cli(with_({ pcrs: 'junk.json' }), dir), /: PCR values junk\.json: .*expected 32 bytes of hex .*\[evidence\.file\]$/);
        expectUnusable(await cli(with_({ ak: 'junk.pub' }), dir), /: AK junk\.pub: .*\[parse\.\w+\]$/);
        expectUnusable(await cli(with_({ ek: 'ak.pem' }), dir), /: EK ak\.pem: a PEM EK has no TPM Name.*\[evidence\.file\]$/);
        expectUnusable(await cli(with_({ previous: 'bad.state' }), dir), /: clock state bad\.state: .*\[evidence\.file\]$/);
        expectUnusable(await cli(with_({ previous: 'missing.state' }), dir), /: clock state missing\.state: cannot be read \(ENOENT\)$/);
        expectUnusable(await cli([...with_({}).filter((a) => a !== nonce.q1 && a !== '--nonce'), '--nonce', 'xyz'], dir), /--nonce xyz: nonce: expected 1 to 64 bytes as hex digits/);
      });
    });
  });
});

function jsonOf(v: ToolsPcrValues): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  let k = 0;
  for (const s of v.selections) {
    const bank = s.hash === TPM_ALG.SHA256 ? 'sha256' : s.hash === TPM_ALG.SHA1 ? 'sha1' : `0x${s.hash.toString(16)}`;
    const m = (out[bank] ??= {});
    s.pcrSelect.forEach((byte, at) => {
      for (let bit = 0; bit < 8; bit++) if (byte & (1 << bit)) m[String(at * 8 + bit)] = hex(v.digests[k++]!);
    });
  }
  return out;
}

function readFileSyncU8(p: string): Uint8Array {
  return new Uint8Array(readFileSync(p));
}

// ---------------------------------------------------------------------------

describe('the real entry point (child process)', () => {
  it('npx tsx src/cli/main.ts attest eventlog …: exit 0 with the replay; a malformed file: exit 2, one line', async () => {
    const runChild = (args: string[]): Promise<Run> =>
      new Promise((resolve) => {
        execFile('npx', ['tsx', 'src/cli/main.ts', ...args], { cwd: ROOT, timeout: 30_000, encoding: 'utf8' }, (error, stdout, stderr) => {
          const code = error === null ? 0 : typeof (error as { code?: unknown }).code === 'number' ? ((error as { code: number }).code) : -1;
          resolve({ code, out: stdout, err: stderr });
        });
      });
    const ok = await runChild(['attest', 'eventlog', join('test', 'fixtures', 'eventlog', 'ga-crypto_agile_eventlog')]);
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/^eventlog: crypto-agile TCG event log, 27 records, banks sha256$/m);
    expect(ok.out).toMatch(/^ {2}sha256 {3}PCR {2}0 {2}[0-9a-f]{64}$/m);
    const bad = await runChild(['attest', 'eventlog', 'package.json']);
    expect(bad.code).toBe(2);
    expect(bad.out).toBe('');
    expect(bad.err.trimEnd().split('\n')).toHaveLength(1);
    expect(bad.err).toMatch(/^trustroot attest eventlog: event log package\.json: .*\[evidence\.eventlog\]/);
  }, 60_000);
});
