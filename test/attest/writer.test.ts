/**
 * The measured-boot writer (src/attest/writer.ts), checked four ways:
 *  1. decoded here independently (test/support/evidence-mutations.ts walks
 *     the records; digests, boot_aggregate and PCRs are recomputed with
 *     node:crypto from the PFP / IMA rules, never taken from the writer);
 *  2. against records captured on real machines (go-attestation's GCE logs,
 *     keylime's and embrave's IMA lists in test/fixtures/writer/, see its
 *     README): given the same inputs, the writer must produce the same bytes;
 *  3. by tpm2-tools' event-log parser (`tpm2_eventlog`), which replays the
 *     log and checks the digests it can;
 *  4. by swtpm: the extends applied through the client, the PCRs read back
 *     and quoted.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  replayExtends,
  testCertificate,
  writeEventLog,
  writeImaList,
  writeMeasuredBoot,
  type ImaEntryConfig,
  type MeasuredBoot,
  type MeasuredBootConfig,
} from '../../src/attest/writer.js';
import { parseEventLog, replay } from '../../src/attest/eventlog.js';
import { bootChain, checkEvents, decodeEvents, kernelCommandLines, secureBootState, verifyEventLog } from '../../src/attest/events.js';
import { parseImaAscii, parseImaBinary, replayIma } from '../../src/attest/ima.js';
import { failures } from '../../src/attest/verdict.js';
import { createPrimary, eccSigningTemplate, flush, pcrRead, quote, Tpm, verifyWithNode } from '../../src/client/index.js';
import { Startup } from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_RH, TPM_SU } from '../../src/tpm/constants.js';
import { EvidenceError } from '../../src/tpm/errors.js';
import { pcrSelection } from '../../src/tpm/pcr.js';
import { SwtpmTransport } from '../../src/tpm/transport/index.js';
import { mutate, walkEventLog, walkImaBinary, type WalkedEvent } from '../support/evidence-mutations.js';
import { applyMeasuredBoot, rebootSwtpm } from '../support/measured-boot.js';
import { describeWithSwtpm, startSwtpm, type SwtpmInstance } from '../support/swtpm.js';
import { tpm2ToolsSupport } from '../support/tpm2-tools.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'writer');
/** Real files this test compares with: the writer's own folder, or the parsers' fixtures where the same file already lives. */
const SHARED_FIXTURES: Record<string, string> = {
  ubuntu_2104_shielded_vm_no_secure_boot_eventlog: join('eventlog', 'ge-ubuntu-2104-no-secure-boot.bin'),
  sb_cert_eventlog: join('eventlog', 'ga-sb_cert_eventlog'),
  'keylime-ima-log-sha1': join('ima', 'keylime-ima-log-sha1'),
  'keylime-ima-log-sha256': join('ima', 'keylime-ima-log-sha256'),
  'keylime-ima-log-sha512': join('ima', 'keylime-ima-log-sha512'),
};
const fixture = (name: string): Buffer =>
  readFileSync(SHARED_FIXTURES[name] !== undefined ? join(FIXTURES, '..', SHARED_FIXTURES[name]) : join(FIXTURES, name));

// Independent knowledge, written here from the specs (PFP Table 9; TPM_ALG registry).
const NODE_HASH: Record<number, string> = { 0x0004: 'sha1', 0x000b: 'sha256', 0x000c: 'sha384', 0x000d: 'sha512' };
const KERNEL_NAME: Record<number, string> = { 0x0004: 'sha1', 0x000b: 'sha256', 0x000c: 'sha384', 0x000d: 'sha512' };
const SIZE: Record<number, number> = { 0x0004: 20, 0x000b: 32, 0x000c: 48, 0x000d: 64 };
const EV_NO_ACTION = 0x3;
const EV_SEPARATOR = 0x4;
const EV_S_CRTM_VERSION = 0x8;
const EV_IPL = 0xd;
const EV_EFI_VARIABLE_DRIVER_CONFIG = 0x80000001;
const EV_EFI_VARIABLE_BOOT = 0x80000002;
const EV_EFI_BOOT_SERVICES_APPLICATION = 0x80000003;
const EV_EFI_GPT_EVENT = 0x80000006;
const EV_EFI_ACTION = 0x80000007;
const EV_EFI_VARIABLE_AUTHORITY = 0x800000e0;
const ALL_BANKS = [TPM_ALG.SHA1, TPM_ALG.SHA256, TPM_ALG.SHA384, TPM_ALG.SHA512] as const;

const H = (alg: number, ...parts: Uint8Array[]): Buffer => {
  const h = createHash(NODE_HASH[alg]!);
  for (const p of parts) h.update(p);
  return h.digest();
};
const hex = (b: Uint8Array | undefined): string => Buffer.from(b ?? new Uint8Array(0)).toString('hex');
const bytesAt = (log: Uint8Array, e: WalkedEvent): Buffer => Buffer.from(log.subarray(e.dataOffset, e.dataOffset + e.dataSize));
const recordOf = (log: Uint8Array, e: WalkedEvent): string => hex(log.subarray(e.offset, e.end));

/** Replays a walked log from the PFP rules: zeros (PCR 0: the StartupLocality), EV_NO_ACTION skipped. */
function replayWalked(log: Uint8Array): Map<number, Map<number, Buffer>> {
  const w = walkEventLog(log);
  let locality = 0;
  const out = new Map<number, Map<number, Buffer>>();
  for (const e of w.events) {
    if (e.type === EV_NO_ACTION) {
      const data = bytesAt(log, e);
      if (e.pcr === 0 && data.length === 17 && data.subarray(0, 16).toString('latin1') === 'StartupLocality\0') locality = data[16]!;
      continue;
    }
    for (const d of e.digests) {
      let bank = out.get(d.alg);
      if (bank === undefined) out.set(d.alg, (bank = new Map()));
      let old = bank.get(e.pcr);
      if (old === undefined) {
        old = Buffer.alloc(d.size);
        if (e.pcr === 0) old[d.size - 1] = locality;
      }
      bank.set(e.pcr, H(d.alg, old, log.subarray(d.offset, d.offset + d.size)));
    }
  }
  return out;
}

function expectSameValues(actual: ReadonlyMap<number, ReadonlyMap<number, Uint8Array>>, expected: ReadonlyMap<number, ReadonlyMap<number, Uint8Array>>, pcrs?: readonly number[]): void {
  for (const [bank, values] of expected) {
    for (const [pcr, v] of values) {
      if (pcrs !== undefined && !pcrs.includes(pcr)) continue;
      expect(`${bank}:${pcr}:${hex(actual.get(bank)?.get(pcr))}`).toBe(`${bank}:${pcr}:${hex(v)}`);
    }
  }
}

/** The PCR 10 value an IMA list implies, recomputed from the walked binary list (kernel rules, tpm-spec-facts.md §11). */
function replayImaHere(list: Uint8Array, bank: number, kernel: 'per-bank' | 'sha1-padded', from?: Uint8Array): Buffer {
  let pcr: Buffer = Buffer.from(from ?? new Uint8Array(SIZE[bank]!));
  for (const e of walkImaBinary(list)) {
    const violation = e.templateHash.every((b) => b === 0);
    let digest: Buffer;
    if (kernel === 'per-bank') digest = violation ? Buffer.alloc(SIZE[bank]!, 0xff) : H(bank, e.templateData);
    else {
      digest = Buffer.alloc(SIZE[bank]!);
      (violation ? Buffer.alloc(20, 0xff) : H(TPM_ALG.SHA1, e.templateData)).copy(digest);
    }
    pcr = H(bank, pcr, digest);
  }
  return pcr;
}

function expectEvidenceArgument(fn: () => unknown): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(EvidenceError);
  expect((err as EvidenceError).code).toBe('evidence.argument');
}

describe('measured-boot writer, decoded independently', () => {
  const m = writeMeasuredBoot({ banks: [...ALL_BANKS] });
  const w = walkEventLog(m.eventLog);

  it('writes a Spec ID Event03 with the chosen banks and sizes, then one record per event', () => {
    expect(w.algorithms.map((a) => [a.alg, a.size])).toEqual(ALL_BANKS.map((b) => [b, SIZE[b]]));
    expect(w.specIdEnd).toBe(m.specIdLength);
    expect(w.events.length).toBe(m.events.length);
    // Every record carries one digest per bank, in the Spec ID order.
    for (const e of w.events) expect(e.digests.map((d) => d.alg)).toEqual([...ALL_BANKS]);
    expect(w.events.at(-1)!.end).toBe(m.eventLog.length);
  });

  it('replays (node:crypto, PFP rules) to the PCR values and the extends it reports', () => {
    const replayed = replayWalked(m.eventLog);
    for (const bank of ALL_BANKS) {
      for (let pcr = 0; pcr <= 9; pcr++) expect(hex(replayed.get(bank)?.get(pcr)), `bank ${bank} PCR ${pcr}`).toBe(hex(m.pcrs.get(bank)?.get(pcr)));
    }
    // The extends are the records' digests, in log order, every bank of every extended event.
    const fromRecords = w.events.flatMap((e) => e.digests.map((d) => `${e.pcr}/${d.alg}/${hex(m.eventLog.subarray(d.offset, d.offset + d.size))}`));
    const logExtends = m.extends.filter((x) => x.pcr !== 10).map((x) => `${x.pcr}/${x.bank}/${hex(x.digest)}`);
    expect(logExtends).toEqual(fromRecords);
  });

  it('logs the PC Client boot sequence: Secure Boot policy, separators 0–7 once, the shim → GRUB → kernel chain, ExitBootServices last', () => {
    const seq = w.events.map((e) => `${e.pcr}:${e.type.toString(16)}`);
    const dataOf = (e: WalkedEvent): Buffer => bytesAt(m.eventLog, e);
    expect(seq[0]).toBe(`0:${EV_S_CRTM_VERSION.toString(16)}`);
    for (let pcr = 0; pcr <= 7; pcr++) expect(seq.filter((s) => s === `${pcr}:4`).length, `separators in PCR ${pcr}`).toBe(1);
    // PCR 7: SecureBoot, PK, KEK, db, dbx (UEFI_VARIABLE_DATA names), then its separator before any authority.
    const vars = w.events.filter((e) => e.type === EV_EFI_VARIABLE_DRIVER_CONFIG).map((e) => {
      const d = dataOf(e);
      const nameLen = Number(d.readBigUInt64LE(16));
      return d.subarray(32, 32 + 2 * nameLen).toString('utf16le');
    });
    expect(vars).toEqual(['SecureBoot', 'PK', 'KEK', 'db', 'dbx']);
    const secureBoot = dataOf(w.events.find((e) => e.type === EV_EFI_VARIABLE_DRIVER_CONFIG)!);
    expect(Number(secureBoot.readBigUInt64LE(24))).toBe(1);
    expect(secureBoot.at(-1)).toBe(1);
    const sep7 = seq.indexOf('7:4');
    expect(seq.findIndex((s) => s === `7:${EV_EFI_VARIABLE_AUTHORITY.toString(16)}`)).toBeGreaterThan(sep7);
    // Three applications in PCR 4 after "Calling EFI Application from Boot Option"; ExitBootServices in PCR 5 last.
    const actions = w.events.filter((e) => e.type === EV_EFI_ACTION).map((e) => `${e.pcr}:${dataOf(e).toString('latin1')}`);
    expect(actions).toEqual(['4:Calling EFI Application from Boot Option', '5:Exit Boot Services Invocation', '5:Exit Boot Services Returned with Success']);
    expect(w.events.filter((e) => e.type === EV_EFI_BOOT_SERVICES_APPLICATION && e.pcr === 4).length).toBe(3);
    expect(seq.slice(-2)).toEqual([`5:${EV_EFI_ACTION.toString(16)}`, `5:${EV_EFI_ACTION.toString(16)}`]);
    // The kernel command line in PCR 8, the kernel and initrd paths in PCR 9.
    const ipl = w.events.filter((e) => e.type === EV_IPL).map((e) => `${e.pcr}:${dataOf(e).toString('latin1')}`);
    expect(ipl.some((s) => /^8:kernel_cmdline: \/boot\/vmlinuz root=\S+ ro quiet\0$/.test(s))).toBe(true);
    expect(ipl.filter((s) => s.startsWith('9:'))).toEqual(['9:/boot/vmlinuz\0', '9:/boot/initrd.img\0']);
    expect(seq.filter((s) => s.startsWith('1:'))).toEqual([`1:${EV_EFI_VARIABLE_BOOT.toString(16)}`, `1:${EV_EFI_VARIABLE_BOOT.toString(16)}`, '1:4']); // BootOrder, Boot0001, separator
    expect(w.events.filter((e) => e.type === EV_EFI_VARIABLE_BOOT).length).toBe(2);
    expect(w.events.filter((e) => e.type === EV_EFI_GPT_EVENT).map((e) => e.pcr)).toEqual([5]);
  });

  it('digests what the PFP, GRUB and shim hash: the event data, the string after the GRUB prefix, the blob, the image', () => {
    const selfHashed = new Set([EV_SEPARATOR, EV_S_CRTM_VERSION, EV_EFI_VARIABLE_DRIVER_CONFIG, EV_EFI_VARIABLE_AUTHORITY, EV_EFI_GPT_EVENT, EV_EFI_ACTION]);
    for (const e of w.events) {
      const data = bytesAt(m.eventLog, e);
      let hashed: Uint8Array | undefined;
      if (selfHashed.has(e.type)) hashed = data;
      else if (e.type === EV_IPL && e.pcr === 8) hashed = data.subarray(data.indexOf(': ') + 2, data.length - 1);
      else if (e.type === EV_EFI_VARIABLE_BOOT) hashed = data.subarray(32 + 2 * Number(data.readBigUInt64LE(16)));
      if (hashed === undefined) continue;
      for (const d of e.digests) expect(hex(m.eventLog.subarray(d.offset, d.offset + d.size)), `event ${e.index} bank ${d.alg}`).toBe(hex(H(d.alg, hashed)));
    }
    // Images: H_bank(image) stands in for Authenticode; the kernel's PCR 4 and PCR 9 digests are of the same bytes.
    const kernelApp = w.events.filter((e) => e.type === EV_EFI_BOOT_SERVICES_APPLICATION).at(-1)!;
    const kernelFile = w.events.find((e) => e.type === EV_IPL && e.pcr === 9)!;
    expect(recordOf(m.eventLog, kernelApp).slice(24, 24 + 8)).not.toBe('');
    expect(kernelApp.digests.map((d) => hex(m.eventLog.subarray(d.offset, d.offset + d.size)))).toEqual(kernelFile.digests.map((d) => hex(m.eventLog.subarray(d.offset, d.offset + d.size))));
  });

  it('writes an ima-ng list whose template hashes, ASCII lines, boot_aggregate and PCR 10 recompute', () => {
    const ima = m.ima!;
    const entries = walkImaBinary(ima.binary);
    const lines = ima.ascii.split('\n');
    expect(lines.pop()).toBe('');
    expect(entries.length).toBe(lines.length);
    expect(entries.length).toBe(6);
    entries.forEach((e, i) => {
      expect(e.pcr).toBe(10);
      expect(e.template).toBe('ima-ng');
      expect(hex(e.templateHash)).toBe(hex(H(TPM_ALG.SHA1, e.templateData)));
      // d-ng = "sha256:" NUL digest; n-ng = path NUL.
      const [dng, nng] = e.fields;
      expect(Buffer.from(dng!.subarray(0, 8)).toString('latin1')).toBe('sha256:\0');
      const digest = dng!.subarray(8);
      const name = Buffer.from(nng!.subarray(0, -1)).toString('utf8');
      expect(nng!.at(-1)).toBe(0);
      expect(lines[i]).toBe(`10 ${hex(e.templateHash)} ima-ng sha256:${hex(digest)} ${name}`);
    });
    // boot_aggregate: SHA-256 over PCRs 0–9 of the SHA-256 bank (Linux ≥ 5.8, ima_hash sha256), from our own replay.
    const replayed = replayWalked(m.eventLog);
    const aggregate = H(TPM_ALG.SHA256, ...Array.from({ length: 10 }, (_, i) => replayed.get(TPM_ALG.SHA256)!.get(i)!));
    expect(lines[0]).toBe(`10 ${hex(entries[0]!.templateHash)} ima-ng sha256:${hex(aggregate)} boot_aggregate`);
    // Each file digest is H(content) of the default test files.
    expect(lines[1]!.endsWith(` ima-ng sha256:${hex(H(TPM_ALG.SHA256, Buffer.from('trustroot test file: /usr/lib/systemd/systemd')))} /usr/lib/systemd/systemd`)).toBe(true);
    for (const bank of ALL_BANKS) expect(hex(m.pcrs.get(bank)!.get(10)), `PCR 10 bank ${bank}`).toBe(hex(replayImaHere(ima.binary, bank, 'per-bank')));
  });

  it('older kernels: the SHA-1 template hash zero-padded into every bank, boot_aggregate SHA-1 over PCRs 0–7', () => {
    const old = writeMeasuredBoot({ banks: [...ALL_BANKS], ima: { kernel: 'sha1-padded' } });
    const replayed = replayWalked(old.eventLog);
    const aggregate = H(TPM_ALG.SHA1, ...Array.from({ length: 8 }, (_, i) => replayed.get(TPM_ALG.SHA1)!.get(i)!));
    expect(old.ima!.ascii.split('\n')[0]).toMatch(new RegExp(`^10 [0-9a-f]{40} ima-ng sha1:${hex(aggregate)} boot_aggregate$`));
    for (const bank of ALL_BANKS) expect(hex(old.pcrs.get(bank)!.get(10)), `PCR 10 bank ${bank}`).toBe(hex(replayImaHere(old.ima!.binary, bank, 'sha1-padded')));
    // The two behaviours differ in every bank but SHA-1 (whose extends are the same SHA-1 hashes).
    const modernOverOld = writeImaList({ kernel: 'per-bank' }, [...ALL_BANKS], old.pcrs);
    expect(modernOverOld.extends.filter((x) => x.bank === TPM_ALG.SHA256).map((x) => hex(x.digest))).not.toEqual(old.ima!.extends.filter((x) => x.bank === TPM_ALG.SHA256).map((x) => hex(x.digest)));
  });

  it('violations: zero template hash and digest in the list, all-ones extends (padded SHA-1 ones on older kernels)', () => {
    const entries: ImaEntryConfig[] = [{ path: '/etc/passwd', content: Buffer.from('x') }, { kind: 'violation', path: '/var/log/open writers.log' }];
    for (const kernel of ['per-bank', 'sha1-padded'] as const) {
      const v = writeMeasuredBoot({ banks: [TPM_ALG.SHA1, TPM_ALG.SHA256], ima: { kernel, entries } });
      const line = v.ima!.ascii.split('\n')[2]!;
      const alg = kernel === 'per-bank' ? 'sha256' : 'sha1';
      // Spaces in names become '_' (ima_write_template_field_data).
      expect(line).toBe(`10 ${'0'.repeat(40)} ima-ng ${alg}:${'0'.repeat(alg === 'sha256' ? 64 : 40)} /var/log/open_writers.log`);
      const ext = v.ima!.entries[2]!.extends;
      expect(hex(ext.get(TPM_ALG.SHA256))).toBe(kernel === 'per-bank' ? 'ff'.repeat(32) : 'ff'.repeat(20) + '00'.repeat(12));
      expect(hex(ext.get(TPM_ALG.SHA1))).toBe('ff'.repeat(20));
      for (const bank of [TPM_ALG.SHA1, TPM_ALG.SHA256]) expect(hex(v.pcrs.get(bank)!.get(10))).toBe(hex(replayImaHere(v.ima!.binary, bank, kernel)));
    }
  });

  it('templates: ima-sig (signature or empty field), ima-buf (the buffer, hashed), ima (bare SHA-1 digest, name padded to 256 bytes)', () => {
    const sig = Buffer.from('030204a1b2c3d40010', 'hex');
    const cmdline = Buffer.from('root=/dev/vda2 ro');
    const v = writeMeasuredBoot({
      banks: [TPM_ALG.SHA1, TPM_ALG.SHA256],
      ima: {
        template: 'ima-sig',
        entries: [
          { path: '/usr/bin/signed', content: Buffer.from('signed'), signature: sig },
          { path: '/usr/bin/unsigned', content: Buffer.from('unsigned') },
          { kind: 'buffer', name: 'kexec-cmdline', buffer: cmdline },
          { path: '/usr/bin/legacy', content: Buffer.from('legacy'), template: 'ima' },
        ],
      },
    });
    const lines = v.ima!.ascii.split('\n');
    const e = walkImaBinary(v.ima!.binary);
    expect(e.map((x) => x.template)).toEqual(['ima-sig', 'ima-sig', 'ima-sig', 'ima-buf', 'ima']);
    expect(lines[1]).toBe(`10 ${hex(e[1]!.templateHash)} ima-sig sha256:${hex(H(TPM_ALG.SHA256, Buffer.from('signed')))} /usr/bin/signed ${sig.toString('hex')}`);
    expect(hex(e[1]!.fields[2])).toBe(sig.toString('hex'));
    // No signature: an empty third field, so the line ends in a space (ima_ascii_measurements_show).
    expect(lines[2]).toBe(`10 ${hex(e[2]!.templateHash)} ima-sig sha256:${hex(H(TPM_ALG.SHA256, Buffer.from('unsigned')))} /usr/bin/unsigned `);
    expect(e[2]!.fields.length).toBe(3);
    expect(e[2]!.fields[2]!.length).toBe(0);
    expect(lines[3]).toBe(`10 ${hex(e[3]!.templateHash)} ima-buf sha256:${hex(H(TPM_ALG.SHA256, cmdline))} kexec-cmdline ${cmdline.toString('hex')}`);
    // 'ima': no template-data length in the binary list; the hash covers digest ‖ name padded with zeros to 256 bytes.
    const legacyDigest = H(TPM_ALG.SHA1, Buffer.from('legacy'));
    const padded = Buffer.alloc(256);
    padded.write('/usr/bin/legacy');
    expect(hex(e[4]!.templateHash)).toBe(hex(H(TPM_ALG.SHA1, legacyDigest, padded)));
    expect(lines[4]).toBe(`10 ${hex(e[4]!.templateHash)} ima ${legacyDigest.toString('hex')} /usr/bin/legacy`);
    const tail = v.ima!.binary.subarray(e[4]!.offset);
    expect(hex(tail)).toBe(hex(Buffer.concat([Buffer.from([10, 0, 0, 0]), e[4]!.templateHash, Buffer.from([3, 0, 0, 0]), Buffer.from('ima'), legacyDigest, Buffer.from([15, 0, 0, 0]), Buffer.from('/usr/bin/legacy')])));
    for (const bank of [TPM_ALG.SHA1, TPM_ALG.SHA256]) expect(hex(v.pcrs.get(bank)!.get(10))).toBe(hex(replayImaHere(v.ima!.binary, bank, 'per-bank')));
  });

  it('per-bank list files show that bank\'s template hash (listBank)', () => {
    const v = writeMeasuredBoot({ banks: [TPM_ALG.SHA1, TPM_ALG.SHA256], ima: { listBank: TPM_ALG.SHA256 } });
    const e = walkImaBinary(v.ima!.binary, 32);
    for (const x of e) expect(hex(x.templateHash)).toBe(hex(H(TPM_ALG.SHA256, x.templateData)));
    expect(v.ima!.ascii.split('\n')[0]).toMatch(/^10 [0-9a-f]{64} ima-ng sha256:[0-9a-f]{64} boot_aggregate$/);
  });

  it('StartupLocality: an EV_NO_ACTION first, never extended; PCR 0 starts at 0…03', () => {
    const v = writeMeasuredBoot({ banks: [TPM_ALG.SHA256], startupLocality: 3 });
    const first = walkEventLog(v.eventLog).events[0]!;
    expect(first.type).toBe(EV_NO_ACTION);
    expect(bytesAt(v.eventLog, first).toString('latin1')).toBe('StartupLocality\0\x03');
    expect(first.digests.every((d) => v.eventLog.subarray(d.offset, d.offset + d.size).every((b) => b === 0))).toBe(true);
    expect(v.events[0]!.extended).toBe(false);
    expect(hex(v.pcrs.get(TPM_ALG.SHA256)!.get(0))).toBe(hex(replayWalked(v.eventLog).get(TPM_ALG.SHA256)!.get(0)));
    expect(hex(v.pcrs.get(TPM_ALG.SHA256)!.get(0))).not.toBe(hex(writeMeasuredBoot({ banks: [TPM_ALG.SHA256] }).pcrs.get(TPM_ALG.SHA256)!.get(0)));
    // boot_aggregate covers PCR 0 as it really is (with the locality).
    const agg = H(TPM_ALG.SHA256, ...Array.from({ length: 10 }, (_, i) => v.pcrs.get(TPM_ALG.SHA256)!.get(i)!));
    expect(v.ima!.ascii.split('\n')[0]).toContain(`sha256:${hex(agg)} boot_aggregate`);
  });

  it('Secure Boot off: SecureBoot = 0, keys still measured, no authority events', () => {
    const v = writeEventLog({ secureBoot: false });
    const ev = walkEventLog(v.eventLog).events;
    const sb = bytesAt(v.eventLog, ev.find((e) => e.type === EV_EFI_VARIABLE_DRIVER_CONFIG)!);
    expect(sb.at(-1)).toBe(0);
    expect(ev.filter((e) => e.type === EV_EFI_VARIABLE_DRIVER_CONFIG).length).toBe(5);
    expect(ev.some((e) => e.type === EV_EFI_VARIABLE_AUTHORITY)).toBe(false);
    // The default db holds the test certificate: an X.509 signature list (UEFI 2.x §32.4.1).
    const db = bytesAt(writeEventLog().eventLog, walkEventLog(writeEventLog().eventLog).events.filter((e) => e.type === EV_EFI_VARIABLE_DRIVER_CONFIG)[3]!);
    expect(db.includes(Buffer.from(testCertificate('db')))).toBe(true);
  });

  it('is deterministic and leaves out what the config turns off', () => {
    expect(hex(writeMeasuredBoot().eventLog)).toBe(hex(writeMeasuredBoot().eventLog));
    expect(writeMeasuredBoot().ima!.ascii).toBe(writeMeasuredBoot().ima!.ascii);
    const bare = writeMeasuredBoot({ ima: false, disk: false, bootVariables: false, bootChain: { shim: false, grub: false } });
    expect(bare.ima).toBeUndefined();
    const types = walkEventLog(bare.eventLog).events.map((e) => e.type);
    expect(types).not.toContain(EV_EFI_GPT_EVENT);
    expect(types).not.toContain(EV_EFI_VARIABLE_BOOT);
    expect(types).not.toContain(EV_IPL);
    expect(types.filter((t) => t === EV_EFI_BOOT_SERVICES_APPLICATION).length).toBe(1);
    // Extends equal the replay of the extends (one source of truth for the helper).
    expectSameValues(replayExtends(bare.extends), bare.pcrs);
  });

  it('refuses configs it cannot write with EvidenceError evidence.argument', () => {
    expectEvidenceArgument(() => writeEventLog({ banks: [] }));
    expectEvidenceArgument(() => writeEventLog({ banks: [TPM_ALG.SHA256, TPM_ALG.SHA256] }));
    expectEvidenceArgument(() => writeEventLog({ banks: [0x99 as never] }));
    expectEvidenceArgument(() => writeEventLog({ startupLocality: 2 as never }));
    expectEvidenceArgument(() => writeEventLog({ secureBoot: { dbAuthority: { owner: 'not-a-guid', certificate: new Uint8Array(1) } } }));
    expectEvidenceArgument(() => writeEventLog({ bootChain: { kernel: { path: '\\k', digests: { [TPM_ALG.SHA256]: new Uint8Array(31) } } } }));
    expectEvidenceArgument(() => writeEventLog({ secureBoot: { db: [{ type: 'sha256', entries: [new Uint8Array(20)] }] } }));
    expectEvidenceArgument(() => writeMeasuredBoot({ banks: [TPM_ALG.SHA256], ima: { template: 'ima' } }));
    expectEvidenceArgument(() => writeMeasuredBoot({ banks: [TPM_ALG.SHA256], ima: { kernel: 'sha1-padded' } }));
    expectEvidenceArgument(() => writeMeasuredBoot({ banks: [TPM_ALG.SHA1], ima: { listBank: TPM_ALG.SHA256 } }));
    expectEvidenceArgument(() => writeMeasuredBoot({ ima: { pcr: 24 } }));
    expectEvidenceArgument(() => writeMeasuredBoot({ ima: { entries: [{ path: '/x', digest: new Uint8Array(20) }] } }));
    expectEvidenceArgument(() => writeMeasuredBoot({ ima: { entries: [{ path: '/x' }] } }));
    expectEvidenceArgument(() => writeMeasuredBoot({ ima: { template: 'ima-xyz' as never } }));
    expectEvidenceArgument(() => writeMeasuredBoot({ ima: { entries: [{ path: 'x'.repeat(256), content: new Uint8Array(1), template: 'ima' }] } }));
  });
});

describe('measured-boot writer against logs from real machines (test/fixtures/writer)', () => {
  const ubuntu = fixture('ubuntu_2104_shielded_vm_no_secure_boot_eventlog');
  const sbCert = fixture('sb_cert_eventlog');
  const real = walkEventLog(ubuntu);
  const realSb = walkEventLog(sbCert);
  const BANKS = [TPM_ALG.SHA1, TPM_ALG.SHA256, TPM_ALG.SHA384];
  const variableValue = (log: Uint8Array, e: WalkedEvent): Uint8Array => {
    const d = bytesAt(log, e);
    return d.subarray(32 + 2 * Number(d.readBigUInt64LE(16)));
  };
  const guidOf = (b: Uint8Array): string => {
    const x = Buffer.from(b);
    const r = (s: Buffer): string => Buffer.from(s).reverse().toString('hex');
    return `${r(x.subarray(0, 4))}-${r(x.subarray(4, 6))}-${r(x.subarray(6, 8))}-${x.subarray(8, 10).toString('hex')}-${x.subarray(10, 16).toString('hex')}`;
  };

  it('the GCE Ubuntu 21.04 log: Spec ID event, Secure Boot variables, separators, actions, GPT, GRUB strings byte for byte', () => {
    const vars = real.events.filter((e) => e.type === EV_EFI_VARIABLE_DRIVER_CONFIG);
    const gpt = bytesAt(ubuntu, real.events.find((e) => e.type === EV_EFI_GPT_EVENT)!);
    const partitions = Array.from({ length: Number(gpt.readBigUInt64LE(92)) }, (_, i) => {
      const p = gpt.subarray(100 + 128 * i, 228 + 128 * i);
      return { type: guidOf(p.subarray(0, 16)), guid: guidOf(p.subarray(16, 32)), firstLba: p.readBigUInt64LE(32), lastLba: p.readBigUInt64LE(40), attributes: p.readBigUInt64LE(48), name: '' };
    });
    const ipl = real.events.filter((e) => e.type === EV_IPL).map((e) => bytesAt(ubuntu, e).toString('latin1'));
    const linux = ipl.find((s) => s.startsWith('grub_cmd: linux '))!;
    const kernelPath = linux.slice('grub_cmd: linux '.length).split(' ')[0]!;
    const cmdline = linux.slice(`grub_cmd: linux ${kernelPath} `.length, -1);
    const ours = writeEventLog({
      banks: BANKS,
      secureBoot: { enabled: false, pk: variableValue(ubuntu, vars[1]!), kek: variableValue(ubuntu, vars[2]!), db: variableValue(ubuntu, vars[3]!), dbx: variableValue(ubuntu, vars[4]!) },
      // The disk: partitions 1, 14 and 15 of the GCE image (slots 0, 13, 14 of the entry array).
      disk: { guid: guidOf(gpt.subarray(56, 72)), lastLba: gpt.readBigUInt64LE(32), partitions: partitions.map((p, i) => ({ ...p, slot: [0, 13, 14][i]! })) },
      bootChain: { kernelFile: { path: kernelPath, content: new Uint8Array(0) }, grubCommands: ['set have_grubenv=true', 'load_env'] },
      cmdline,
    });
    const mine = walkEventLog(ours.eventLog);
    expect(hex(ours.eventLog.subarray(0, ours.specIdLength))).toBe(hex(ubuntu.subarray(0, real.specIdEnd)));
    const same = (theirs: WalkedEvent, pick: (e: WalkedEvent) => boolean): void => {
      const found = mine.events.filter(pick).map((e) => recordOf(ours.eventLog, e));
      expect(found, `real event ${theirs.index}`).toContain(recordOf(ubuntu, theirs));
    };
    // SecureBoot = 0 and the four key databases (given as the real variables' bytes).
    for (const v of vars) same(v, (e) => e.type === EV_EFI_VARIABLE_DRIVER_CONFIG);
    for (const s of real.events.filter((e) => e.type === EV_SEPARATOR)) same(s, (e) => e.type === EV_SEPARATOR && e.pcr === s.pcr);
    for (const a of real.events.filter((e) => e.type === EV_EFI_ACTION)) same(a, (e) => e.type === EV_EFI_ACTION);
    same(real.events.find((e) => e.type === EV_EFI_GPT_EVENT)!, (e) => e.type === EV_EFI_GPT_EVENT);
    // GRUB: grub_cmd lines and kernel_cmdline (digest of the text after the prefix, NUL logged but not hashed).
    for (const text of ['grub_cmd: set have_grubenv=true\0', 'grub_cmd: load_env\0', linux, `kernel_cmdline: ${kernelPath} ${cmdline}\0`]) {
      same(real.events.find((e) => e.type === EV_IPL && bytesAt(ubuntu, e).toString('latin1') === text)!, (e) => e.type === EV_IPL);
    }
    // PCR 9: the kernel file's path with its NUL (the digest is of a file we do not have).
    const k = mine.events.find((e) => e.type === EV_IPL && e.pcr === 9)!;
    expect(bytesAt(ours.eventLog, k).toString('latin1')).toBe(`${kernelPath}\0`);
    expect(real.events.some((e) => e.type === EV_IPL && e.pcr === 9 && bytesAt(ubuntu, e).toString('latin1') === `${kernelPath}\0`)).toBe(true);
  });

  it('the Secure Boot log: SecureBoot = 1, the db authority (EFI_SIGNATURE_DATA) and the Shim authority (DER) byte for byte', () => {
    const authorities = realSb.events.filter((e) => e.type === EV_EFI_VARIABLE_AUTHORITY);
    const db = variableValue(sbCert, authorities[0]!);
    const shimData = variableValue(sbCert, authorities[1]!);
    const shimCert = shimData.subarray(0, 4 + ((shimData[2]! << 8) | shimData[3]!)); // DER SEQUENCE with a two-byte length
    const ours = writeEventLog({ banks: BANKS, secureBoot: { enabled: true, dbAuthority: { owner: guidOf(db.subarray(0, 16)), certificate: db.subarray(16) }, shimCertificate: shimCert } });
    const mine = walkEventLog(ours.eventLog);
    const first = (log: Uint8Array, events: readonly WalkedEvent[], type: number): string => recordOf(log, events.find((e) => e.type === type)!);
    expect(first(ours.eventLog, mine.events, EV_EFI_VARIABLE_DRIVER_CONFIG)).toBe(first(sbCert, realSb.events, EV_EFI_VARIABLE_DRIVER_CONFIG));
    const mineAuth = mine.events.filter((e) => e.type === EV_EFI_VARIABLE_AUTHORITY);
    // db: EFI_SIGNATURE_DATA (owner GUID ‖ certificate), identical record.
    expect(recordOf(ours.eventLog, mineAuth[0]!)).toBe(recordOf(sbCert, authorities[0]!));
    // Shim, after GRUB and after the kernel: the same UEFI_VARIABLE_DATA; the real records carry 6 bytes past
    // VariableDataLength (that shim build's quirk), so compare up to the declared length.
    expect(mineAuth.length).toBe(3);
    for (const [k, theirs] of [authorities[1]!, authorities[2]!].entries()) {
      const t = bytesAt(sbCert, theirs);
      const declared = 32 + 2 * Number(t.readBigUInt64LE(16)) + Number(t.readBigUInt64LE(24));
      expect(t.length - declared).toBe(6);
      expect(hex(bytesAt(ours.eventLog, mineAuth[k + 1]!))).toBe(hex(t.subarray(0, declared)));
    }
    expect(hex(ours.eventLog.subarray(0, ours.specIdLength))).toBe(hex(sbCert.subarray(0, realSb.specIdEnd)));
  });

  it('keylime\'s IMA logs: the same ASCII lines from the same paths and digests (sha1, sha256, sha512 file digests)', () => {
    for (const [file, alg] of [['keylime-ima-log-sha256', TPM_ALG.SHA256], ['keylime-ima-log-sha1', TPM_ALG.SHA1], ['keylime-ima-log-sha512', TPM_ALG.SHA512]] as const) {
      // The sha1 and sha512 files' boot_aggregate lines carry zero template hashes that no kernel computes; use their /data lines.
      const lines = fixture(file).toString('utf8').split('\n').filter((l) => l !== '' && (alg === TPM_ALG.SHA256 || !l.endsWith(' boot_aggregate')));
      const entries = lines.map((l) => {
        const [, , , d, path] = l.split(' ');
        return { path: path!, digest: Buffer.from(d!.split(':')[1]!, 'hex') };
      });
      const ima = writeImaList({ bootAggregate: false, hashAlg: alg, entries }, [TPM_ALG.SHA1, TPM_ALG.SHA256], new Map());
      expect(ima.ascii, file).toBe(lines.map((l) => `${l}\n`).join(''));
    }
  });

  it('embrave\'s Raspberry Pi list (150 entries): our binary and ASCII lists equal the kernel\'s, byte for byte', () => {
    const ascii = fixture('embrave-rpi-ascii_runtime_measurements.150').toString('utf8');
    const binary = fixture('embrave-rpi-binary_runtime_measurements.150');
    const entries = ascii.split('\n').filter((l) => l !== '').map((l) => {
      const [, , template, d, path] = l.split(' ');
      expect(template).toBe('ima-ng');
      return { path: path!, digest: Buffer.from(d!.split(':')[1]!, 'hex') };
    });
    expect(entries.length).toBe(150);
    const ima = writeImaList({ bootAggregate: false, hashAlg: TPM_ALG.SHA256, entries }, [TPM_ALG.SHA1, TPM_ALG.SHA256], new Map());
    expect(ima.ascii).toBe(ascii);
    expect(hex(ima.binary)).toBe(hex(binary));
  });
});

describe('corpus mutations (test/support/evidence-mutations.ts)', () => {
  const m = writeMeasuredBoot({ banks: [TPM_ALG.SHA1, TPM_ALG.SHA256] });
  const log = m.eventLog;
  const sep = m.events.find((e) => e.typeName === 'SEPARATOR' && e.pcr === 0)!;

  const walkError = (bytes: Uint8Array): unknown => {
    try {
      walkEventLog(bytes);
    } catch (e) {
      return e;
    }
    return undefined;
  };

  it('flipDigest flips one bit of one bank, and only the replay of that PCR in that bank moves', () => {
    const out = mutate.flipDigest(log, sep.index, { bank: TPM_ALG.SHA256, bit: 9 });
    const diff = [...out].flatMap((b, i) => (b !== log[i] ? [i] : []));
    expect(diff.length).toBe(1);
    expect(out[diff[0]!]! ^ log[diff[0]!]!).toBe(2);
    const before = replayWalked(log);
    const after = replayWalked(out);
    expect(hex(after.get(TPM_ALG.SHA256)!.get(0))).not.toBe(hex(before.get(TPM_ALG.SHA256)!.get(0)));
    expect(hex(after.get(TPM_ALG.SHA1)!.get(0))).toBe(hex(before.get(TPM_ALG.SHA1)!.get(0)));
    expect(hex(after.get(TPM_ALG.SHA256)!.get(1))).toBe(hex(before.get(TPM_ALG.SHA256)!.get(1)));
    expect(log).toEqual(m.eventLog); // the input is left alone
  });

  it('retagEvent changes the type and nothing else: the replay is the same, the meaning is not', () => {
    const action = m.events.find((e) => e.typeName === 'EFI_ACTION')!;
    const out = mutate.retagEvent(log, action.index, EV_IPL);
    expect(walkEventLog(out).events[action.index]!.type).toBe(EV_IPL);
    expect([...out].filter((b, i) => b !== log[i]).length).toBeLessThanOrEqual(4);
    expectSameValues(replayWalked(out), replayWalked(log));
  });

  it('truncations: mid-record bytes fail the walk; whole events leave a shorter, walkable log', () => {
    expect(walkError(mutate.truncate(log, sep.offset + 5))).toBeInstanceOf(EvidenceError);
    expect(walkError(mutate.truncate(log, -1))).toBeInstanceOf(EvidenceError);
    const short = mutate.truncateEvents(log, 5);
    expect(walkEventLog(short).events.length).toBe(5);
    expect(hex(short)).toBe(hex(log.subarray(0, m.events[5]!.offset)));
  });

  it('oversizeEvent claims data past the end (the walk refuses, with the offset of the data); zeroLengthEvent keeps the log walkable', () => {
    const over = mutate.oversizeEvent(log, sep.index);
    expect(over.length).toBe(log.length);
    const err = walkError(over) as EvidenceError;
    expect(err).toBeInstanceOf(EvidenceError);
    expect(err.code).toBe('evidence.eventlog');
    expect(err.offset).toBe(sep.offset + sep.length - 4);
    const zero = mutate.zeroLengthEvent(log, sep.index);
    const walked = walkEventLog(zero);
    expect(walked.events.length).toBe(m.events.length);
    expect(walked.events[sep.index]!.dataSize).toBe(0);
    expect(zero.length).toBe(log.length - 4);
    expectSameValues(replayWalked(zero), replayWalked(log)); // the digests are still there
  });

  it('badSpecIdDigestSize makes the digests misalign: the walk fails or reads other events than were written', () => {
    for (const size of [21, 19, 0, 0xffff]) {
      const out = mutate.badSpecIdDigestSize(log, TPM_ALG.SHA1, size);
      expect(walkEventLog(log).algorithms[0]!.size).toBe(20);
      const err = walkError(out);
      if (err === undefined) expect(walkEventLog(out).events.map((e) => e.type)).not.toEqual(m.events.map((e) => e.type));
      else expect(err).toBeInstanceOf(EvidenceError);
    }
  });

  it('reorderIma swaps entries in binary and ASCII forms alike, and the replayed PCR 10 changes', () => {
    const ima = m.ima!;
    const bin = mutate.reorderIma(ima.binary, 1, 2);
    const txt = mutate.reorderIma(ima.ascii, 1, 2);
    expect(bin.length).toBe(ima.binary.length);
    const lines = ima.ascii.split('\n');
    expect(txt.split('\n')).toEqual([lines[0], lines[2], lines[1], ...lines.slice(3)]);
    const e = walkImaBinary(bin);
    expect(Buffer.from(e[1]!.fields[1]!).toString('latin1')).toBe(`${ima.entries[2]!.name}\0`);
    expect(hex(replayImaHere(bin, TPM_ALG.SHA256, 'per-bank'))).not.toBe(hex(replayImaHere(ima.binary, TPM_ALG.SHA256, 'per-bank')));
    // truncateIma: a prefix of the list, which replays to a value the TPM held earlier.
    const two = mutate.truncateIma(ima.binary, 2);
    expect(walkImaBinary(two).length).toBe(2);
    expect(mutate.truncateIma(ima.ascii, 2)).toBe(`${lines[0]}\n${lines[1]}\n`);
    const first2 = replayExtends(ima.extends.filter((x) => x.bank === TPM_ALG.SHA256).slice(0, 2));
    expect(hex(replayImaHere(two, TPM_ALG.SHA256, 'per-bank'))).toBe(hex(first2.get(TPM_ALG.SHA256)!.get(10)));
  });
});

describe('the attest parsers (eventlog.ts, events.ts, ima.ts) read the writer\'s output and replay to the same values', () => {
  const configs: [string, MeasuredBootConfig][] = [
    ['default, four banks', { banks: [...ALL_BANKS] }],
    [
      'StartupLocality 3, Secure Boot off, an older kernel, every template, a violation',
      {
        startupLocality: 3,
        secureBoot: false,
        cmdline: 'root=/dev/vda2 ro ima_policy=tcb',
        ima: {
          kernel: 'sha1-padded',
          entries: [
            { kind: 'violation', path: '/var/log/open writers' },
            { path: '/usr/bin/legacy', content: Buffer.from('legacy'), template: 'ima' },
            { kind: 'buffer', name: 'kexec-cmdline', buffer: Buffer.from('ro quiet') },
            { path: '/usr/bin/signed', content: Buffer.from('signed'), template: 'ima-sig', signature: Buffer.from('030204aabbccdd', 'hex') },
          ],
        },
      },
    ],
    ['no shim, no GRUB: the firmware starts the kernel', { banks: [TPM_ALG.SHA256], bootChain: { shim: false, grub: false }, ima: { hashAlg: TPM_ALG.SHA512 } }],
  ];

  for (const [name, config] of configs) {
    it(name, () => {
      const m = writeMeasuredBoot(config);
      const log = parseEventLog(m.eventLog);
      expect(log.format).toBe('crypto-agile');
      expect(log.banks).toEqual(m.banks);
      // The parser lists the Spec ID record as event 0.
      expect(hex(log.events[0]!.data.subarray(0, 16))).toBe(hex(Buffer.from('Spec ID Event03\0')));
      expect(log.events.slice(1).map((e) => `${e.pcrIndex}:${e.eventType}:${hex(e.data)}:${e.digests.map((d) => `${d.hashAlg}=${hex(d.digest)}`).join(',')}`)).toEqual(
        m.events.map((e) => `${e.pcr}:${e.type}:${hex(e.data)}:${m.banks.map((b) => `${b}=${hex(e.digests.get(b))}`).join(',')}`),
      );
      const r = replay(log);
      expect(r.anomalies).toEqual([]);
      expect(r.startupLocality).toBe(config.startupLocality);
      expectSameValues(r.values, m.pcrs, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);

      const decoded = decodeEvents(log);
      expect(failures(checkEvents(decoded))).toEqual([]);
      const sb = secureBootState(decoded);
      expect(sb.state).toBe(config.secureBoot === false ? 'disabled' : 'enabled');
      expect(sb.digestVerified).toBe(true);
      const chain = bootChain(decoded, m.banks.at(-1)!);
      const apps = m.events.filter((e) => e.typeName === 'EFI_BOOT_SERVICES_APPLICATION');
      expect(chain.map((c) => hex(c.digest))).toEqual(apps.map((e) => hex(e.digests.get(m.banks.at(-1)!))));
      const lines = kernelCommandLines(decoded);
      if (config.bootChain?.grub === false) expect(lines).toEqual([]);
      else {
        expect(lines.map((l) => [l.text, l.digestVerified])).toEqual([[`/boot/vmlinuz ${config.cmdline ?? lines[0]!.text.slice('/boot/vmlinuz '.length)}`, true]]);
      }
      // What a TPM would quote: the implied values, and zeros for the PCRs nothing extended (8 and 9 without GRUB).
      const upTo9 = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
      const tpmValues = new Map(m.banks.map((b) => [b, new Map(upTo9.map((i) => [i, m.pcrs.get(b)?.get(i) ?? new Uint8Array(SIZE[b]!)]))]));
      const selection = m.banks.map((b) => pcrSelection(b, upTo9));
      expect(failures(verifyEventLog(m.eventLog, tpmValues, selection))).toEqual([]);
      const sep = m.events.find((e) => e.typeName === 'SEPARATOR' && e.pcr === 2)!;
      expect(verifyEventLog(mutate.flipDigest(m.eventLog, sep.index), tpmValues, selection).accepted).toBe(false);

      const ima = m.ima!;
      for (const list of [parseImaBinary(ima.binary), parseImaAscii(ima.ascii)]) {
        expect(list.entries.map((e) => [e.template, e.name, e.violation, hex(e.templateHash)])).toEqual(ima.entries.map((e) => [e.template, e.name, e.violation, hex(e.templateHash)]));
      }
      const quoted = new Map([...m.pcrs].map(([bank, values]) => [bank, new Map([[10, values.get(10)!]])]));
      const ir = replayIma(parseImaBinary(ima.binary).entries, undefined, { quoted, banks: m.banks });
      expect(failures(ir.verdict)).toEqual([]);
      expect(ir.violations).toBe(ima.entries.filter((e) => e.violation).length);
      // With SHA-1 as the only other bank the two behaviours cannot be told apart; with more they can.
      expect(ir.kernel).toBe(ima.kernel === 'per-bank' ? '5.8+' : 'pre-5.8');
    });
  }
});

const tools = tpm2ToolsSupport();
const describeWithEventlogTool = tools.available || tools.required ? describe : describe.skip;

describeWithEventlogTool('measured-boot writer through tpm2-tools\' tpm2_eventlog', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'trustroot-writer-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Runs tpm2_eventlog and reads its `pcrs:` section: bank name → PCR → hex. */
  function eventlogTool(log: Uint8Array): { pcrs: Map<string, Map<number, string>>; events: number; stderr: string } {
    const file = join(dir, `log-${randomBytes(4).toString('hex')}`);
    writeFileSync(file, log);
    const r = spawnSync('tpm2_eventlog', ['--eventlog-version=2', file], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status, r.stderr).toBe(0);
    const pcrs = new Map<string, Map<number, string>>();
    let bank: Map<number, string> | undefined;
    let inPcrs = false;
    for (const line of r.stdout.split('\n')) {
      if (line === 'pcrs:') inPcrs = true;
      else if (inPcrs && /^ {2}(\w+):$/.test(line)) pcrs.set(line.trim().slice(0, -1), (bank = new Map()));
      else if (inPcrs && bank !== undefined) {
        const m = /^ {4}(\d+)\s*: 0x([0-9a-f]+)$/.exec(line);
        if (m !== null) bank.set(Number(m[1]), m[2]!);
      }
    }
    return { pcrs, events: (r.stdout.match(/^- EventNum: /gm) ?? []).length, stderr: r.stderr };
  }

  const version = (): [number, number] => {
    const r = spawnSync('tpm2_eventlog', ['--version'], { encoding: 'utf8' });
    const m = /version="(\d+)\.(\d+)/.exec(r.stdout);
    return m === null ? [0, 0] : [Number(m[1]), Number(m[2])];
  };

  it('replays our log to our PCR values in every bank and finds no digest that does not match its event data', () => {
    const m = writeMeasuredBoot({ banks: [...ALL_BANKS] });
    const out = eventlogTool(m.eventLog);
    expect(out.stderr).not.toMatch(/does not match|unexpected format|ERROR/i);
    expect(out.events).toBe(m.events.length + 1); // it numbers the Spec ID event too
    for (const bank of ALL_BANKS) {
      const theirs = out.pcrs.get(KERNEL_NAME[bank]!)!;
      expect([...theirs.keys()].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      for (const [pcr, v] of theirs) expect(`${bank}:${pcr}:${v}`).toBe(`${bank}:${pcr}:${hex(m.pcrs.get(bank)!.get(pcr))}`);
    }
  });

  it('a StartupLocality log: PCRs 1–9 agree; PCR 0 as tpm2-tools ≥ 5.5 replays it, or as 5.4 does (it extends EV_NO_ACTION)', () => {
    const m = writeMeasuredBoot({ banks: [TPM_ALG.SHA256], startupLocality: 3 });
    const out = eventlogTool(m.eventLog);
    const theirs = out.pcrs.get('sha256')!;
    for (let pcr = 1; pcr <= 9; pcr++) expect(theirs.get(pcr)).toBe(hex(m.pcrs.get(TPM_ALG.SHA256)!.get(pcr)));
    const [major, minor] = version();
    if (major > 5 || (major === 5 && minor >= 5)) {
      expect(theirs.get(0)).toBe(hex(m.pcrs.get(TPM_ALG.SHA256)!.get(0)));
    } else {
      // tpm2-tools 5.4 (lib/tpm2_eventlog.c foreach_digest2): PCR 0 from zeros, the zero digest of EV_NO_ACTION extended too.
      const pcr0 = replayExtends(m.extends.filter((x) => x.pcr === 0), { from: new Map([[TPM_ALG.SHA256, new Map([[0, H(TPM_ALG.SHA256, Buffer.alloc(32), Buffer.alloc(32))]])]]) });
      expect(theirs.get(0)).toBe(hex(pcr0.get(TPM_ALG.SHA256)!.get(0)));
    }
  });

  it('notices a mutation: a flipped digest changes its replayed PCR, a flipped event body fails its digest check', () => {
    const m = writeMeasuredBoot({ banks: [TPM_ALG.SHA256] });
    const sep = m.events.find((e) => e.typeName === 'SEPARATOR' && e.pcr === 3)!;
    const flipped = eventlogTool(mutate.flipDigest(m.eventLog, sep.index));
    expect(flipped.pcrs.get('sha256')!.get(3)).not.toBe(hex(m.pcrs.get(TPM_ALG.SHA256)!.get(3)));
    expect(flipped.pcrs.get('sha256')!.get(4)).toBe(hex(m.pcrs.get(TPM_ALG.SHA256)!.get(4)));
    const body = m.eventLog.slice();
    body[sep.offset + sep.length - 1] ^= 1; // the separator's data: 00000001 no longer hashes to its digest
    expect(eventlogTool(body).stderr).toMatch(/does not match/);
  });
});

describeWithSwtpm('measured-boot writer on swtpm', () => {
  let sw: SwtpmInstance;
  let transport: SwtpmTransport;
  let tpm: Tpm;

  beforeAll(async () => {
    sw = await startSwtpm();
    transport = new SwtpmTransport({ port: sw.port, ctrlPort: sw.ctrlPort });
    tpm = new Tpm(transport);
    await tpm.run(Startup, {}, { startupType: TPM_SU.CLEAR });
  }, 30_000);

  afterAll(async () => {
    await tpm?.close();
    await sw?.stop();
  });

  const readAll = async (pcrs: readonly number[]): Promise<Map<number, Map<number, Uint8Array>>> =>
    pcrRead(tpm, ALL_BANKS.map((b) => pcrSelection(b, [...pcrs])));

  it('the default boot (all four banks): PCRs 0–10 read back as the evidence implies, the rest untouched; a quote signs them', async () => {
    const applied = await applyMeasuredBoot(tpm);
    expect(applied.startupLocality).toBeUndefined();
    expect(walkEventLog(applied.eventLog).events[0]!.type).toBe(EV_S_CRTM_VERSION);
    const pcrs = Array.from({ length: 24 }, (_, i) => i);
    const read = await readAll(pcrs);
    // Expected values from our own replay of the log and the list, not from the writer.
    const replayed = replayWalked(applied.eventLog);
    for (const bank of ALL_BANKS) {
      for (const pcr of pcrs) {
        let want: string;
        if (pcr <= 9) want = hex(replayed.get(bank)!.get(pcr));
        else if (pcr === 10) want = hex(replayImaHere(applied.imaList!.binary, bank, 'per-bank'));
        else want = (pcr >= 17 && pcr <= 22 ? 'ff' : '00').repeat(SIZE[bank]!);
        expect(`${bank}:${pcr}:${hex(read.get(bank)!.get(pcr))}`).toBe(`${bank}:${pcr}:${want}`);
      }
    }
    expectSameValues(read, applied.expected);

    const key = await createPrimary(tpm, TPM_RH.OWNER, eccSigningTemplate());
    try {
      const nonce = randomBytes(16);
      const sel = [pcrSelection(TPM_ALG.SHA256, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10])];
      const q = await quote(tpm, key, sel, nonce);
      const values = Array.from({ length: 11 }, (_, i) => applied.expected.get(TPM_ALG.SHA256)!.get(i)!);
      expect(hex(q.attest.attested.pcrDigest)).toBe(hex(H(TPM_ALG.SHA256, ...values)));
      expect(verifyWithNode(key.publicArea, q.attestBytes, q.signature)).toBe(true);
      // The verifier's side, against what the TPM signed: the log and the IMA list replay to the quoted PCRs.
      expect(failures(verifyEventLog(applied.eventLog, q.pcrValues, sel.map((x) => pcrSelection(x.hash, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]))))).toEqual([]);
      const ima = replayIma(parseImaBinary(applied.imaList!.binary).entries, undefined, { quoted: q.pcrValues, banks: [TPM_ALG.SHA256] });
      expect(failures(ima.verdict)).toEqual([]);
      expect(ima.covered.length).toBe(applied.evidence.ima!.entries.length);
    } finally {
      await flush(tpm, key);
    }
  });

  it('refuses to apply a boot over PCRs that have moved', async () => {
    await expect(applyMeasuredBoot(tpm)).rejects.toThrow(/restart/);
  });

  it('a TPM started at locality 3: PCR 0 = 0…03, the log carries StartupLocality 3, and the PCRs match', async () => {
    await rebootSwtpm(transport, tpm, 3);
    expect(hex((await readAll([0])).get(TPM_ALG.SHA256)!.get(0))).toBe('00'.repeat(31) + '03');
    const applied = await applyMeasuredBoot(tpm, { banks: [TPM_ALG.SHA1, TPM_ALG.SHA256] });
    expect(applied.startupLocality).toBe(3);
    const first = walkEventLog(applied.eventLog).events[0]!;
    expect(bytesAt(applied.eventLog, first).toString('latin1')).toBe('StartupLocality\0\x03');
    const read = await readAll([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const replayed = replayWalked(applied.eventLog);
    for (const bank of [TPM_ALG.SHA1, TPM_ALG.SHA256]) for (let pcr = 0; pcr <= 9; pcr++) expect(hex(read.get(bank)!.get(pcr))).toBe(hex(replayed.get(bank)!.get(pcr)));
    expectSameValues(read, applied.expected);
    // Banks the log does not cover are left alone.
    expect(hex(read.get(TPM_ALG.SHA384)!.get(4))).toBe('00'.repeat(48));
  });

  it('an older kernel with violations, ima-sig, ima-buf and the ima template: PCR 10 in every bank', async () => {
    await rebootSwtpm(transport, tpm, 0);
    const config: MeasuredBootConfig = {
      secureBoot: false,
      ima: {
        kernel: 'sha1-padded',
        template: 'ima-sig',
        entries: [
          { path: '/usr/bin/a', content: Buffer.from('a'), signature: Buffer.from('0302', 'hex') },
          { kind: 'violation', path: '/tmp/tomtou' },
          { kind: 'buffer', name: 'kexec-cmdline', buffer: Buffer.from('ro quiet') },
          { path: '/usr/bin/b', content: Buffer.from('b'), template: 'ima' },
        ],
      },
    };
    const applied = await applyMeasuredBoot(tpm, config);
    const read = await readAll([10]);
    for (const bank of ALL_BANKS) expect(hex(read.get(bank)!.get(10))).toBe(hex(replayImaHere(applied.imaList!.binary, bank, 'sha1-padded')));
    expectSameValues(read, applied.expected, [10]);
  });

  it('the helper takes config.startupLocality only when the TPM agrees', async () => {
    await rebootSwtpm(transport, tpm, 0);
    await expect(applyMeasuredBoot(tpm, { startupLocality: 3 })).rejects.toThrow(/locality 0/);
    const evidence: MeasuredBoot = (await applyMeasuredBoot(tpm, { startupLocality: 0, banks: [TPM_ALG.SHA256], ima: false })).evidence;
    expect(evidence.events[0]!.typeName).toBe('NO_ACTION');
    const read = await readAll([0]);
    expect(hex(read.get(TPM_ALG.SHA256)!.get(0))).toBe(hex(evidence.pcrs.get(TPM_ALG.SHA256)!.get(0)));
  });
});
