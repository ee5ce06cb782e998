/**
 * `trustroot attest …`: the attestation library (src/attest) for people who
 * hold evidence files today, most of them written by tpm2-tools.
 *
 *   verify-quote --ak AK --quote MSG --sig SIG --pcrs PCRS --nonce HEX [--ek EKPUB] [--previous CLOCKINFO] [--policy FILE]
 *                [--eventlog FILE] [--ima FILE] [--json]
 *   ek-cert FILE [--roots DIR] [--intermediates DIR] [--at TIME] [--json]
 *   eventlog FILE [--json]
 *   ima FILE [--banks LIST] [--template-hash ALG] [--json]
 *
 * Every command prints each check with its outcome and reason (`--json`: the
 * whole verdict and what was decoded) and exits 0 when the evidence is
 * accepted, 1 when it is rejected, 2 when it cannot be used (a file that does
 * not read, a bad option value; one line on stderr), 3 on an internal error.
 *
 * The I/O lives here, at the edge: the files are read, the clock is read once
 * per command for "now", and the pure verifiers of src/attest decide.
 */
import { createPublicKey } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { extname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { akQualifiedName } from '../attest/ak.js';
import { trustBundle, verifyEkCertificate, type ChainResult, type TrustBundle } from '../attest/chain.js';
import { classifyTpm, type TpmClassification } from '../attest/classify.js';
import { clockStateToJson } from '../attest/clock.js';
import { parseCertificate, parseCertificates, type CertificatePublicKey, type ParsedCertificate } from '../attest/ekcert.js';
import { bankName, parseEventLog, replay, type EventLog, type PcrBanks, type Replay } from '../attest/eventlog.js';
import { checkEvents, decodeEvents, kernelCommandLines, secureBootState, verifyEventLog, type DecodedEvent, type EventBody } from '../attest/events.js';
import { parseImaList, replayIma, type ImaEntry, type ImaList, type ImaReplayResult } from '../attest/ima.js';
import { akPolicyOf, clockPolicyOf, evaluatePolicy, eventLogEvidence, parsePolicy, type Policy } from '../attest/policy.js';
import { verifyQuote, type PcrValues, type QuoteVerdict, type SignedAttest } from '../attest/quote.js';
import { notPerformed, verdict, type Check, type Verdict } from '../attest/verdict.js';
import { TPM_ALG, TPM_PT, TPM_ST } from '../tpm/constants.js';
import { describeTpm, type TpmDescription } from '../tpm/description.js';
import { TrustrootError } from '../tpm/errors.js';
import { pcrIndices, pcrSelection } from '../tpm/pcr.js';
import type { TPMS_PCR_SELECTION } from '../tpm/types/index.js';
import { bankByName, parseNonceHex, readAkFile, readClockFile, readEkFile, readPcrFile, readQuoteFile, readSignatureBytes, type AkFile } from './evidence.js';

/** Exit codes of every `trustroot attest` command. */
export const EXIT = {
  /** The evidence is accepted (no check failed). */
  ACCEPT: 0,
  /** The evidence reads but a check failed. */
  REJECT: 1,
  /** The evidence cannot be used: a file that does not read, a bad option value, a usage error. */
  UNUSABLE: 2,
  /** A bug: an exception that is not one of trustroot's typed errors. */
  INTERNAL: 3,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** Where a command writes and what it may read; tests pass their own. */
export interface CliIo {
  /** Standard output: text exactly as given (newlines included). */
  readonly stdout: (text: string) => void;
  /** Standard error. */
  readonly stderr: (text: string) => void;
  /** Relative file names are resolved against this folder (default: the process's). */
  readonly cwd?: string;
  /** The current time (default: the system clock). */
  readonly now?: () => Date;
}

/** What the subcommands share: the I/O and the exit code the last action set. */
export interface CliContext {
  readonly io: CliIo;
  exitCode: ExitCode;
}

/** A file too large for its kind is refused before it is read. */
const MAX_SMALL_FILE = 1 << 20; // keys, quotes, signatures, PCR values, clock states, certificates
const MAX_LOG_FILE = 256 << 20; // event logs and IMA lists (a busy server's IMA list reaches tens of MB)

// ---------------------------------------------------------------------------
// Files and errors

/** An input the command cannot use: printed as one line, exit 2. */
class Unusable extends Error {}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').trim();
}

async function readInput(ctx: CliContext, file: string, what: string, max: number): Promise<Uint8Array> {
  const path = resolve(ctx.io.cwd ?? process.cwd(), file);
  try {
    const s = await stat(path);
    if (!s.isFile()) throw new Unusable(`${what} ${file}: not a regular file`);
    if (s.size > max) throw new Unusable(`${what} ${file}: ${s.size} bytes, more than the ${max} read for it`);
    return new Uint8Array(await readFile(path));
  } catch (e) {
    if (e instanceof Unusable) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new Unusable(`${what} ${file}: cannot be read (${code ?? (e instanceof Error ? e.message : String(e))})`);
  }
}

/** Runs a reader of outside input; its typed error becomes one line naming the file. */
function parse<T>(what: string, file: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof TrustrootError) throw new Unusable(`${what} ${file}: ${e.message} [${e.code}]`);
    throw e;
  }
}

/** Runs a command body: typed input problems exit 2 with one line, bugs exit 3. */
async function run(ctx: CliContext, command: string, body: () => Promise<ExitCode>): Promise<void> {
  try {
    ctx.exitCode = await body();
  } catch (e) {
    if (e instanceof Unusable) {
      ctx.io.stderr(`trustroot attest ${command}: ${oneLine(e.message)}\n`);
      ctx.exitCode = EXIT.UNUSABLE;
    } else if (e instanceof TrustrootError) {
      ctx.io.stderr(`trustroot attest ${command}: ${oneLine(e.message)} [${e.code}]\n`);
      ctx.exitCode = EXIT.UNUSABLE;
    } else {
      ctx.io.stderr(`trustroot attest ${command}: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      ctx.exitCode = EXIT.INTERNAL;
    }
  }
}

function now(ctx: CliContext): Date {
  const d = ctx.io.now?.() ?? new Date();
  if (!(d instanceof Date) || Number.isNaN(d.getTime())) throw new Unusable('the current time is not a valid date');
  return d;
}

// ---------------------------------------------------------------------------
// Output helpers

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

/**
 * A JSON-ready copy: bytes as hex, 64-bit integers as decimal strings, Maps
 * as objects, errors as `{code, message}`; bounded in depth.
 */
export function jsonValue(v: unknown, depth = 0): unknown {
  if (depth > 32) return '…';
  if (v instanceof Uint8Array) return hex(v);
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [String(k), jsonValue(x, depth + 1)]));
  if (v instanceof Set) return [...v].map((x) => jsonValue(x, depth + 1));
  if (v instanceof Date) return v.toISOString();
  if (v instanceof TrustrootError) return { code: v.code, message: v.message };
  if (v instanceof Error) return { message: v.message };
  if (Array.isArray(v)) return v.map((x) => jsonValue(x, depth + 1));
  if (typeof v === 'object' && v !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = jsonValue(x, depth + 1);
    return out;
  }
  return v;
}

function printJson(ctx: CliContext, value: unknown): void {
  ctx.io.stdout(`${JSON.stringify(jsonValue(value), null, 2)}\n`);
}

/** One line per check: outcome, check id, reason, detail. */
function checkLines(checks: readonly Check[]): string[] {
  const w1 = Math.max(7, ...checks.map((c) => c.outcome.length));
  const w2 = Math.max(5, ...checks.map((c) => c.check.length));
  const w3 = Math.max(6, ...checks.map((c) => c.reason.length));
  return checks.map((c) => `  ${c.outcome.padEnd(w1)}  ${c.check.padEnd(w2)}  ${c.reason.padEnd(w3)}  ${c.detail}`);
}

function summaryLine(v: Verdict): string {
  const failed = v.checks.filter((c) => c.outcome === 'fail');
  const warned = v.checks.filter((c) => c.outcome === 'warn').length;
  const skipped = v.checks.filter((c) => c.outcome === 'not-performed').length;
  const tail = `${v.checks.length} checks: ${v.checks.length - failed.length - warned - skipped} passed, ${warned} warned, ${skipped} not performed, ${failed.length} failed`;
  return v.accepted ? `ACCEPTED (${tail})` : `REJECTED (${tail}): ${failed.map((c) => `${c.check} ${c.reason}`).join('; ')}`;
}

function selectionText(sel: readonly TPMS_PCR_SELECTION[]): string {
  return sel.map((s) => `${bankName(s.hash)}:${pcrIndices(s).join(',') || '(none)'}`).join(' ') || '(empty)';
}

function exitOf(v: Verdict): ExitCode {
  return v.accepted ? EXIT.ACCEPT : EXIT.REJECT;
}

// ---------------------------------------------------------------------------
// verify-quote

export interface VerifyQuoteOptions {
  readonly ak: string;
  readonly quote: string;
  readonly sig: string;
  readonly pcrs: string;
  readonly nonce: string;
  readonly ek?: string;
  readonly previous?: string;
  readonly policy?: string;
  /** The device's event log: replayed against the quoted PCRs, and given to the policy. */
  readonly eventlog?: string;
  /** The device's IMA list: replayed against the quoted PCR 10, and given to the policy. */
  readonly ima?: string;
  readonly json?: boolean;
}

const TYPE_NAMES: Readonly<Record<number, string>> = {
  [TPM_ST.ATTEST_QUOTE]: 'ATTEST_QUOTE',
  [TPM_ST.ATTEST_CERTIFY]: 'ATTEST_CERTIFY',
  [TPM_ST.ATTEST_CREATION]: 'ATTEST_CREATION',
  [TPM_ST.ATTEST_TIME]: 'ATTEST_TIME',
  [TPM_ST.ATTEST_NV]: 'ATTEST_NV',
  [TPM_ST.ATTEST_NV_DIGEST]: 'ATTEST_NV_DIGEST',
  [TPM_ST.ATTEST_COMMAND_AUDIT]: 'ATTEST_COMMAND_AUDIT',
  [TPM_ST.ATTEST_SESSION_AUDIT]: 'ATTEST_SESSION_AUDIT',
};

function attestJson(a: SignedAttest): Record<string, unknown> {
  return {
    magic: `0x${a.magic.toString(16).padStart(8, '0')}`,
    type: TYPE_NAMES[a.type] ?? `0x${a.type.toString(16)}`,
    qualifiedSigner: a.qualifiedSigner,
    extraData: a.extraData,
    clockInfo: { clock: a.clockInfo.clock, resetCount: a.clockInfo.resetCount, restartCount: a.clockInfo.restartCount, safe: a.clockInfo.safe === 1 },
    firmwareVersion: `0x${a.firmwareVersion.toString(16).padStart(16, '0')}`,
    ...(a.type === TPM_ST.ATTEST_QUOTE
      ? {
          pcrSelect: a.attested.pcrSelect.map((s) => ({ bank: bankName(s.hash), pcrs: pcrIndices(s) })),
          pcrDigest: a.attested.pcrDigest,
        }
      : {}),
  };
}

const BARE_AK_WARNING =
  'warning: the AK was given as a bare public key (PEM): its TPM attributes (restricted, fixedTPM, …), scheme and nameAlg were NOT checked, and a key that is not restricted can sign forged quotes. Give the AK as its TPM2B_PUBLIC (tpm2_createak -u) to check them.\n';


/** The check the library makes of a challenge's lifetime, which a nonce on the command line does not have. */
function noExpiry(): Check {
  return notPerformed('quote.challenge', 'challenge.no-expiry', "a nonce given on the command line has no lifetime: whether it is fresh is the caller's to know");
}

/** The supplied PCR values of exactly the signed selection (what may be compared with logs). */
function signedValues(attest: SignedAttest, values: PcrValues): PcrBanks {
  const out = new Map<number, Map<number, Uint8Array>>();
  if (attest.type !== TPM_ST.ATTEST_QUOTE) return out;
  for (const s of attest.attested.pcrSelect) {
    for (const i of pcrIndices(s)) {
      const v = values.get(s.hash)?.get(i);
      if (v === undefined) continue;
      let m = out.get(s.hash);
      if (m === undefined) out.set(s.hash, (m = new Map()));
      m.set(i, v);
    }
  }
  return out;
}

async function verifyQuoteCommand(ctx: CliContext, o: VerifyQuoteOptions): Promise<ExitCode> {
  const small = (file: string, what: string): Promise<Uint8Array> => readInput(ctx, file, what, MAX_SMALL_FILE);
  const nonce = parse('--nonce', o.nonce, () => parseNonceHex(o.nonce));
  const akBytes = await small(o.ak, 'AK');
  const quoteBytes = await small(o.quote, 'quote');
  const sigBytes = await small(o.sig, 'signature');
  const pcrBytes = await small(o.pcrs, 'PCR values');
  const ekBytes = o.ek === undefined ? undefined : await small(o.ek, 'EK');
  const prevBytes = o.previous === undefined ? undefined : await small(o.previous, 'clock state');
  const policyBytes = o.policy === undefined ? undefined : await readInput(ctx, o.policy, 'policy', MAX_LOG_FILE);
  const logBytes = o.eventlog === undefined ? undefined : await readInput(ctx, o.eventlog, 'event log', MAX_LOG_FILE);
  const imaBytes = o.ima === undefined ? undefined : await readInput(ctx, o.ima, 'IMA list', MAX_LOG_FILE);

  const ak: AkFile = parse('AK', o.ak, () => readAkFile(akBytes));
  const quote = parse('quote', o.quote, () => readQuoteFile(quoteBytes));
  const signature = parse('signature', o.sig, () => readSignatureBytes(sigBytes));
  const pcrs = parse('PCR values', o.pcrs, () => readPcrFile(pcrBytes));
  const ek = ekBytes === undefined ? undefined : parse('EK', o.ek!, () => readEkFile(ekBytes));
  const previous = prevBytes === undefined ? undefined : parse('clock state', o.previous!, () => readClockFile(prevBytes));
  const policy: Policy | undefined = policyBytes === undefined ? undefined : parse('policy', o.policy!, () => parsePolicy(policyBytes));
  const log = logBytes === undefined ? undefined : parse('event log', o.eventlog!, () => parseEventLog(logBytes));
  const imaList = imaBytes === undefined ? undefined : parse('IMA list', o.ima!, () => parseImaList(imaBytes));
  const akQn = ek !== undefined && ak.kind === 'public' ? parse('EK', o.ek!, () => akQualifiedName(ek, ak.publicArea)) : undefined;

  const at = now(ctx);
  // The command line carries a nonce, not a challenge record: it is checked as issued and expiring now,
  // and that check is then reported as not performed (noExpiry) rather than as a pass.
  const challenge = { nonce, issuedAt: at.getTime(), expiresAt: at.getTime() };
  const result = verifyQuote(
    { attest: quote.bytes, signature, pcrValues: pcrs.values, ...(pcrs.labelled !== undefined ? { pcrSelection: pcrs.labelled } : {}) },
    {
      ak: ak.kind === 'public' ? ak.publicArea : ak.key,
      ...(akQn !== undefined ? { akQualifiedName: akQn } : {}),
      challenge,
      now: at,
      ...(previous !== undefined ? { previous } : {}),
      // The policy's AK and clock rules, so the quote's verdict and the policy's agree.
      ...(policy !== undefined ? { akPolicy: akPolicyOf(policy), clockPolicy: clockPolicyOf(policy) } : {}),
    },
  );
  const checks = result.checks.map((c): Check => {
    if (c.check === 'quote.challenge' && c.outcome === 'pass') return noExpiry();
    if (c.check === 'quote.qualified-signer' && ek !== undefined && ak.kind === 'pem') {
      return notPerformed('quote.qualified-signer', 'signer.no-ak-name', `--ek given, but a PEM AK has no TPM Name to qualify under it (qualifiedSigner ${hex(quote.attest.qualifiedSigner)})`);
    }
    return c;
  });
  const quoteVerdict: QuoteVerdict = { ...result, ...verdict(checks) };
  // The logs are compared with the signed selection's values only; a quote that fails rejects the whole anyway.
  const quoted = signedValues(quote.attest, pcrs.values);
  if (log !== undefined) {
    let selection = quote.attest.type === TPM_ST.ATTEST_QUOTE ? quote.attest.attested.pcrSelect : [];
    if (imaList !== undefined) {
      // The IMA list, not the firmware's log, accounts for the PCRs IMA extends (10 unless the kernel says otherwise).
      const imaPcrs = new Set([10, ...imaList.entries.map((e) => e.pcr)]);
      selection = selection.map((sel) => pcrSelection(sel.hash, pcrIndices(sel).filter((i) => !imaPcrs.has(i)), sel.pcrSelect.length));
    }
    checks.push(...verifyEventLog(log, quoted, selection).checks);
  }
  const imaResult = imaList === undefined ? undefined : replayIma(imaList.entries, undefined, { quoted });
  if (imaResult !== undefined) checks.push(...imaResult.verdict.checks);
  if (policy !== undefined) {
    const pv = evaluatePolicy(policy, {
      quote: quoteVerdict,
      pcrValues: pcrs.values,
      ...(log !== undefined ? { eventLog: eventLogEvidence(log) } : {}),
      ...(imaResult !== undefined ? { ima: imaResult } : {}),
    });
    checks.push(...pv.checks);
  }
  const v = verdict(checks);
  const keep = v.accepted && result.clock !== undefined ? clockStateToJson(result.clock) : undefined;

  if (ak.kind === 'pem') ctx.io.stderr(BARE_AK_WARNING);
  if (o.json === true) {
    printJson(ctx, {
      accepted: v.accepted,
      exitCode: exitOf(v),
      checks: v.checks,
      quote: attestJson(quote.attest),
      pcrValues: { format: pcrs.format, ...(pcrs.labelled !== undefined ? { labelled: selectionText(pcrs.labelled) } : {}) },
      ...(policy !== undefined ? { policy: policy.name ?? o.policy } : {}),
      ...(result.transition !== undefined ? { transition: result.transition } : {}),
      ...(keep !== undefined ? { clock: keep } : {}),
    });
    return exitOf(v);
  }
  const a = quote.attest;
  const lines = [`verify-quote: ${summaryLine(v)}`, ...checkLines(v.checks)];
  const sel = a.type === TPM_ST.ATTEST_QUOTE ? `, signed PCR selection ${selectionText(a.attested.pcrSelect)}` : '';
  lines.push(
    `quote: ${TYPE_NAMES[a.type] ?? `type 0x${a.type.toString(16)}`}${sel}; clock ${a.clockInfo.clock} ms, resetCount ${a.clockInfo.resetCount}, restartCount ${a.clockInfo.restartCount}, safe ${a.clockInfo.safe}; firmware 0x${a.firmwareVersion.toString(16).padStart(16, '0')}`,
  );
  if (keep !== undefined) lines.push(`clock state to keep (give it as --previous next time): ${JSON.stringify(keep)}`);
  ctx.io.stdout(`${lines.join('\n')}\n`);
  return exitOf(v);
}

// ---------------------------------------------------------------------------
// ek-cert

export interface EkCertOptions {
  readonly roots?: string;
  readonly intermediates?: string;
  readonly at?: string;
  readonly json?: boolean;
}

const CERT_EXTENSIONS: ReadonlySet<string> = new Set(['.pem', '.crt', '.cer', '.der']);

/** The certificates of a folder's .pem/.crt/.cer/.der files (or of one file), each file named in its error. */
async function certificatesIn(ctx: CliContext, place: string, what: string): Promise<{ certs: ParsedCertificate[]; files: string[] }> {
  const path = resolve(ctx.io.cwd ?? process.cwd(), place);
  let files: string[];
  try {
    const s = await stat(path);
    if (s.isDirectory()) {
      files = (await readdir(path))
        .filter((f) => CERT_EXTENSIONS.has(extname(f).toLowerCase()))
        .sort()
        .map((f) => join(path, f));
    } else if (s.isFile()) {
      files = [path];
    } else {
      throw new Unusable(`${what} ${place}: not a folder or a file`);
    }
  } catch (e) {
    if (e instanceof Unusable) throw e;
    throw new Unusable(`${what} ${place}: cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  const certs: ParsedCertificate[] = [];
  for (const f of files) {
    const bytes = await readInput(ctx, f, what, MAX_SMALL_FILE * 16);
    certs.push(...parse(what, f, () => parseCertificates(bytes)));
  }
  return { certs, files };
}

/** `--at`: an ISO 8601 date or date-time. */
function parseTime(text: string): Date {
  const t = text.trim();
  const d = /^\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(t) ? new Date(t) : new Date(Number.NaN);
  if (Number.isNaN(d.getTime())) throw new Unusable(`--at ${text}: expected an ISO 8601 date or date-time, e.g. 2025-06-01 or 2025-06-01T12:00:00Z`);
  return d;
}

function word(s: string): number {
  const b = [...s.padEnd(4, '\0').slice(0, 4)].map((c) => c.charCodeAt(0) & 0xff);
  return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
}

/**
 * What the certificate says about its TPM, in the shape the classifier reads
 * (TPM_PT_MANUFACTURER from tpmManufacturer, the vendor strings from tpmModel,
 * FIRMWARE_VERSION_1 from tpmVersion). Only a claim: classifyTpm makes it
 * `verified` when the chain verifies to a configured root.
 */
function descriptionFromCertificate(cert: ParsedCertificate): TpmDescription {
  const model = (cert.tpm?.model ?? '').slice(0, 16).padEnd(16, '\0');
  return describeTpm({
    properties: [
      { property: TPM_PT.MANUFACTURER, value: cert.tpm?.manufacturerId ?? 0 },
      { property: TPM_PT.VENDOR_STRING_1, value: word(model.slice(0, 4)) },
      { property: TPM_PT.VENDOR_STRING_2, value: word(model.slice(4, 8)) },
      { property: TPM_PT.VENDOR_STRING_3, value: word(model.slice(8, 12)) },
      { property: TPM_PT.VENDOR_STRING_4, value: word(model.slice(12, 16)) },
      { property: TPM_PT.FIRMWARE_VERSION_1, value: cert.tpm?.versionId ?? 0 },
    ],
    algorithms: [],
    commands: [],
    pcrs: [],
    eccCurves: [],
  });
}

const CURVES: Readonly<Record<string, string>> = {
  '1.2.840.10045.3.1.1': 'NIST P-192',
  '1.3.132.0.33': 'NIST P-224',
  '1.2.840.10045.3.1.7': 'NIST P-256',
  '1.3.132.0.34': 'NIST P-384',
  '1.3.132.0.35': 'NIST P-521',
  '1.2.156.10197.1.301': 'SM2 P-256',
};

function publicKeyText(k: CertificatePublicKey): string {
  if (k.kind === 'rsa') return `RSA-${k.bits}, exponent ${k.exponent}${k.algorithm === '1.2.840.113549.1.1.1' ? '' : ` (algorithm ${k.algorithm})`}`;
  if (k.kind === 'ecc') return `ECC ${CURVES[k.curveOid] ?? k.curveOid}, point ${hex(k.point)}`;
  return `algorithm ${k.algorithm} (not RSA or ECC)`;
}

/** The key as PEM when node:crypto loads it (it refuses TPM 1.2's RSAES-OAEP SubjectPublicKeyInfo). */
function publicKeyPemOf(cert: ParsedCertificate): string | undefined {
  try {
    return String(createPublicKey({ key: Buffer.from(cert.spki), format: 'der', type: 'spki' }).export({ type: 'spki', format: 'pem' }));
  } catch {
    return undefined;
  }
}

function manufacturerText(cert: ParsedCertificate): string {
  const t = cert.tpm;
  if (t?.manufacturer === undefined) return '(not in the certificate)';
  if (t.vendorId !== undefined) return `${t.vendorId} (${t.manufacturer})`;
  return `${t.manufacturer} (not a printable TCG vendor ID)`;
}

function versionText(cert: ParsedCertificate): string {
  // As written: vendors encode it differently (Nuvoton id:00070002, Infineon id:053f, swtpm a date, id:20191023),
  // so no reading of it as major.minor would be right for all of them.
  return cert.tpm?.version ?? '(not in the certificate)';
}

function chainText(chain: ChainResult | undefined): string {
  if (chain === undefined) return '(not built)';
  return `${chain.status} — ${chain.reason}: ${chain.detail}`;
}

function classificationReasons(c: TpmClassification): { code: string; detail: string }[] {
  // The description is read from the certificate itself, so "the certificate names the same manufacturer" says nothing.
  return c.reasons.filter((r) => r.code !== 'vendor.certified').map((r) => ({ code: r.code, detail: r.detail }));
}

async function ekCertCommand(ctx: CliContext, file: string, o: EkCertOptions): Promise<ExitCode> {
  const bytes = await readInput(ctx, file, 'EK certificate', MAX_SMALL_FILE);
  const at = o.at === undefined ? now(ctx) : parseTime(o.at);
  const roots = o.roots === undefined ? undefined : await certificatesIn(ctx, o.roots, 'root');
  const intermediates = o.intermediates === undefined ? undefined : await certificatesIn(ctx, o.intermediates, 'intermediate');
  const cert = parse('EK certificate', file, () => parseCertificate(bytes));
  const bundle: TrustBundle | undefined = roots === undefined ? undefined : trustBundle(roots.certs);
  if (roots !== undefined && roots.certs.length === 0) ctx.io.stderr(`warning: --roots ${o.roots}: no certificate (.pem, .crt, .cer, .der) found; no chain can verify\n`);

  const result = verifyEkCertificate({
    certificate: cert,
    ...(intermediates !== undefined ? { intermediates: intermediates.certs } : {}),
    ...(bundle !== undefined ? { roots: bundle } : {}),
    at,
  });
  const classification = classifyTpm(descriptionFromCertificate(cert), result, { profile: 'test' });
  const v = result.verdict;
  const pem = publicKeyPemOf(cert);
  const chain = result.chain;
  const t = cert.tpm;

  if (o.json === true) {
    printJson(ctx, {
      accepted: v.accepted,
      exitCode: exitOf(v),
      certificate: {
        subject: cert.subject.text,
        issuer: cert.issuer.text,
        serialNumber: cert.serialNumber,
        notBefore: cert.notBefore,
        notAfter: cert.notAfter,
        fingerprint: cert.fingerprint,
        tpm: {
          manufacturer: t?.manufacturer,
          vendorId: t?.vendorId,
          manufacturerId: t?.manufacturerId === undefined ? undefined : `0x${t.manufacturerId.toString(16).padStart(8, '0')}`,
          model: t?.model,
          version: t?.version,
          versionId: t?.versionId === undefined ? undefined : `0x${t.versionId.toString(16).padStart(8, '0')}`,
        },
        tpmSpecification: cert.tpmSpecification,
        publicKey: { ...cert.publicKey, pem },
      },
      chain:
        chain === undefined
          ? undefined
          : {
              status: chain.status,
              reason: chain.reason,
              detail: chain.detail,
              path: chain.path.map((c) => ({ subject: c.subject.text, fingerprint: c.fingerprint })),
              anchor: chain.anchor?.subject.text,
            },
      tpmType: { type: classification.type, assurance: classification.assurance, vendor: classification.vendor, reasons: classificationReasons(classification) },
      quirks: result.quirks,
      at,
      checks: v.checks,
    });
    return exitOf(v);
  }
  const lines = [
    `ek-cert: ${summaryLine(v)}`,
    `  subject        ${cert.subject.text || '(empty)'}`,
    `  issuer         ${cert.issuer.text}`,
    `  serial         ${cert.serialNumber}`,
    `  validity       ${cert.notBefore.toISOString()} to ${cert.notAfter.toISOString()} (checked at ${at.toISOString()})`,
    `  manufacturer   ${manufacturerText(cert)}`,
    `  model          ${t?.model ?? '(not in the certificate)'}`,
    `  version        ${versionText(cert)}`,
    `  EK public key  ${publicKeyText(cert.publicKey)}`,
    `  chain          ${chainText(chain)}`,
  ];
  if (chain !== undefined && chain.path.length > 0) lines.push(`  path           ${chain.path.map((c) => `"${c.subject.text || '(empty)'}"`).join(' ← issued by ')}`);
  lines.push(`  TPM type       ${classification.type} (${classification.assurance}${classification.claimed ? ': what the certificate says, not verified' : ''})`);
  for (const r of classificationReasons(classification)) lines.push(`                 ${r.code}: ${r.detail}`);
  if (result.quirks.length === 0) lines.push('  quirks         none (strict DER)');
  else result.quirks.forEach((q, i) => lines.push(`  ${i === 0 ? 'quirks' : '      '}         ${q.code}: ${q.detail}${q.offset !== undefined ? ` (offset ${q.offset})` : ''}`));
  lines.push('checks', ...checkLines(v.checks));
  if (pem !== undefined) lines.push('EK public key (SubjectPublicKeyInfo):', pem.trimEnd());
  else if (cert.publicKey.kind === 'rsa') lines.push(`EK modulus: ${hex(cert.publicKey.modulus)}`);
  ctx.io.stdout(`${lines.join('\n')}\n`);
  return exitOf(v);
}

// ---------------------------------------------------------------------------
// eventlog

const shorten = (s: string, n = 100): string => (s.length > n ? `${s.slice(0, n)}…` : s);
const printable = (s: string): string => s.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);

function bodyText(b: EventBody, data: Uint8Array): string {
  switch (b.kind) {
    case 'spec-id':
      return `Spec ID Event03 v${b.specId.specVersionMajor}.${b.specId.specVersionMinor} errata ${b.specId.specErrata}, ${b.specId.algorithms.map((a) => `${bankName(a.algorithmId)}/${a.digestSize}`).join(' ')}`;
    case 'startup-locality':
      return `StartupLocality ${b.locality}`;
    case 'no-action':
      return b.signature !== undefined ? `"${printable(b.signature)}"` : `${data.length} bytes`;
    case 'separator':
      return b.value;
    case 'action':
      return `"${printable(shorten(b.text))}"`;
    case 'uefi-variable': {
      const lists = b.signatureLists !== undefined ? `, ${b.signatureLists.reduce((n, l) => n + l.signatures.length, 0)} signature(s) in ${b.signatureLists.length} list(s)` : '';
      return `${printable(b.variable.name)} {${b.variable.guid}}, ${b.variable.data.length} bytes${lists}${b.authority !== undefined ? `, authority of ${b.authority.data.length} bytes` : ''}`;
    }
    case 'image-load':
      return `${b.filePath !== undefined ? printable(b.filePath) : '(no file path)'}, ${b.imageLength} bytes`;
    case 'ipl':
      return `"${printable(shorten(b.text))}"`;
    case 'gpt':
      return `GPT disk {${b.header.diskGuid}}, ${b.partitions.length} partition(s)`;
    case 'firmware-blob':
      return `${b.description !== undefined ? `"${printable(b.description)}" ` : ''}base 0x${b.base.toString(16)}, ${b.length} bytes`;
    case 'crtm-version':
      return b.text !== undefined ? `"${printable(b.text)}"` : `{${b.guid ?? '?'}}`;
    case 'post-code':
      return b.text !== undefined ? `"${printable(b.text)}"` : `base 0x${(b.base ?? 0n).toString(16)}, ${b.length ?? 0n} bytes`;
    case 'handoff-tables':
      return `${b.tables.length} table(s)${b.description !== undefined ? ` "${printable(b.description)}"` : ''}`;
    case 'raw':
      return `${data.length} bytes`;
    case 'malformed':
      return `malformed body: ${b.error.message}`;
  }
}

function bindingText(d: DecodedEvent): string {
  const b = d.binding;
  return b.status === 'verified' ? `data hashes to the digests (${b.rule})` : b.status;
}

function replayJson(r: Replay): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const bank of r.banks) {
    const m: Record<string, string> = {};
    for (const [pcr] of [...r.extendCounts].sort((a, b) => a[0] - b[0])) {
      if (r.incomplete.get(bank)?.has(pcr) === true) continue;
      const v = r.values.get(bank)?.get(pcr);
      if (v !== undefined) m[String(pcr)] = hex(v);
    }
    out[bankName(bank)] = m;
  }
  return out;
}

async function eventlogCommand(ctx: CliContext, file: string, o: { readonly json?: boolean }): Promise<ExitCode> {
  const bytes = await readInput(ctx, file, 'event log', MAX_LOG_FILE);
  const log: EventLog = parse('event log', file, () => parseEventLog(bytes));
  const decoded = decodeEvents(log);
  const replayed = replay(log);
  const v = checkEvents(decoded);
  const sb = secureBootState(decoded);
  const cmdlines = kernelCommandLines(decoded);
  const values = replayJson(replayed);
  const incomplete = Object.fromEntries([...replayed.incomplete].filter(([, s]) => s.size > 0).map(([b, s]) => [bankName(b), [...s].sort((x, y) => x - y)]));

  if (o.json === true) {
    printJson(ctx, {
      accepted: v.accepted,
      exitCode: exitOf(v),
      format: log.format,
      banks: log.banks.map(bankName),
      specId: log.specId,
      events: decoded.map((d) => ({
        index: d.event.index,
        offset: d.event.offset,
        pcr: d.event.pcrIndex,
        type: d.type,
        eventType: `0x${(d.event.eventType >>> 0).toString(16).padStart(8, '0')}`,
        digests: Object.fromEntries(d.event.digests.map((x) => [bankName(x.hashAlg), hex(x.digest)])),
        data: d.event.data,
        body: d.body.kind === 'malformed' ? { kind: 'malformed', reason: d.body.error.reason, message: d.body.error.message } : d.body,
        binding: d.binding,
      })),
      replay: values,
      unsupportedBanks: replayed.unsupportedBanks.map(bankName),
      incomplete,
      startupLocality: replayed.startupLocality ?? null,
      secureBoot: { state: sb.state, reason: sb.reason, digestVerified: sb.digestVerified, eventIndex: sb.eventIndex ?? null },
      kernelCommandLines: cmdlines,
      checks: v.checks,
    });
    return exitOf(v);
  }
  const lines = [
    `eventlog: ${log.format} TCG event log, ${log.events.length} record${log.events.length === 1 ? '' : 's'}, banks ${log.banks.map(bankName).join(', ')}${replayed.startupLocality !== undefined ? `, StartupLocality ${replayed.startupLocality}` : ''}`,
    'events',
  ];
  for (const d of decoded) {
    lines.push(`  #${d.event.index}  PCR ${d.event.pcrIndex}  ${d.type}  ${bodyText(d.body, d.event.data)}  [${bindingText(d)}]`);
    for (const x of d.event.digests) lines.push(`        ${bankName(x.hashAlg).padEnd(8)} ${hex(x.digest)}`);
  }
  lines.push('replayed PCRs (the PCRs the log extends)');
  if (replayed.extendCounts.size === 0) lines.push('  (none: the log extends no PCR)');
  for (const [bank, m] of Object.entries(values)) for (const [pcr, value] of Object.entries(m)) lines.push(`  ${bank.padEnd(8)} PCR ${pcr.padStart(2)}  ${value}`);
  for (const [bank, pcrs] of Object.entries(incomplete)) lines.push(`  ${bank}: PCR ${pcrs.join(', ')} unknown (events without a ${bank} digest)`);
  for (const b of replayed.unsupportedBanks) lines.push(`  ${bankName(b)}: not replayed (the hash is not available in this runtime)`);
  lines.push(`Secure Boot: ${sb.state} (${sb.reason}${sb.eventIndex !== undefined ? `, event ${sb.eventIndex}` : ''})`);
  for (const c of cmdlines) lines.push(`kernel command line (${c.source}, PCR ${c.pcrIndex}, event ${c.eventIndex}${c.digestVerified ? '' : ', digest NOT verified'}): ${printable(c.text)}`);
  lines.push(`checks: ${summaryLine(v)}`, ...checkLines(v.checks));
  ctx.io.stdout(`${lines.join('\n')}\n`);
  return exitOf(v);
}

// ---------------------------------------------------------------------------
// ima

export interface ImaOptions {
  /** Banks to replay, comma-separated (default sha1,sha256). */
  readonly banks?: string;
  /** The hash of the listed template hashes: sha1 (default) or a bank for `*_runtime_measurements_<alg>`. */
  readonly templateHash?: string;
  readonly json?: boolean;
}

function bankList(text: string, what: string): number[] {
  const parts = text.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (parts.length === 0 || parts.length > 8) throw new Unusable(`${what} ${text}: expected 1 to 8 comma-separated banks`);
  return [...new Set(parts.map((p) => {
    const alg = bankByName(p);
    if (alg === undefined) throw new Unusable(`${what} ${text}: "${p.slice(0, 16)}" is not a PCR bank (sha1, sha256, sha384, sha512, …)`);
    return alg;
  }))];
}

function entryText(e: ImaEntry): string {
  const digest = e.fileDigest !== undefined ? `${e.fileDigest.algorithm}:${hex(e.fileDigest.digest)}` : '-';
  const sig = e.signature !== undefined && e.signature.length > 0 ? ` [signature ${e.signature.length} bytes]` : '';
  const buf = e.buffer !== undefined ? ` [buffer ${e.buffer.length} bytes]` : '';
  return `  ${String(e.index).padStart(5)}  PCR ${e.pcr}  ${e.template}  ${e.violation ? 'VIOLATION' : digest}  ${printable(e.name ?? '')}${sig}${buf}`;
}

async function imaCommand(ctx: CliContext, file: string, o: ImaOptions): Promise<ExitCode> {
  const banks = bankList(o.banks ?? 'sha1,sha256', '--banks');
  const templateHashAlg = o.templateHash === undefined ? TPM_ALG.SHA1 : bankList(o.templateHash, '--template-hash')[0]!;
  const bytes = await readInput(ctx, file, 'IMA list', MAX_LOG_FILE);
  const list: ImaList = parse('IMA list', file, () => parseImaList(bytes, { templateHashAlg }));
  const r: ImaReplayResult = replayIma(list.entries, undefined, { banks });
  const v = r.verdict;
  const pcrs = r.state.pcrs;

  if (o.json === true) {
    printJson(ctx, {
      accepted: v.accepted,
      exitCode: exitOf(v),
      format: list.format,
      templateHashAlg: bankName(list.templateHashAlg),
      entries: list.entries.map((e) => ({
        index: e.index,
        pcr: e.pcr,
        template: e.template,
        templateHash: e.templateHash,
        violation: e.violation,
        fileDigest: e.fileDigest,
        name: e.name,
        signature: e.signature,
        buffer: e.buffer,
      })),
      replay: pcrs,
      violations: list.entries.filter((e) => e.violation).length,
      checks: v.checks,
    });
    return exitOf(v);
  }
  const lines = [`ima: ${list.format} IMA list, ${list.entries.length} entries, template hashes ${bankName(list.templateHashAlg)}`, 'entries', ...list.entries.map(entryText)];
  lines.push('replayed PCRs (bank-hash: Linux 5.8 and later extend each bank with its own hash of the template data; padded-sha1: older kernels extend the SHA-1 template hash, zero-padded)');
  const indices = Object.keys(pcrs).sort((a, b) => Number(a) - Number(b));
  if (indices.length === 0) lines.push(v.accepted ? '  (no entries: every PCR at its start value)' : '  (not replayed: see the checks)');
  for (const pcr of indices) {
    for (const [bank, values] of Object.entries(pcrs[pcr]!)) {
      const bh = values['bank-hash'];
      const ps = values['padded-sha1'];
      if (bh !== undefined && bh === ps) lines.push(`  PCR ${pcr}  ${bank.padEnd(8)} ${bh}`);
      else {
        lines.push(`  PCR ${pcr}  ${bank.padEnd(8)} ${bh ?? '(not computable)'}  bank-hash`);
        lines.push(`  PCR ${pcr}  ${bank.padEnd(8)} ${ps ?? '(not computable)'}  padded-sha1`);
      }
    }
  }
  lines.push(`checks: ${summaryLine(v)}`, ...checkLines(v.checks));
  ctx.io.stdout(`${lines.join('\n')}\n`);
  return exitOf(v);
}

// ---------------------------------------------------------------------------
// The command group

/**
 * Adds `attest` and its subcommands to `program`; each action leaves its exit
 * code in `ctx.exitCode`.
 */
export function addAttestCommands(program: Command, ctx: CliContext): Command {
  const attest = program.command('attest').description('verify TPM evidence files: quotes, EK certificates, event logs, IMA lists');

  attest
    .command('verify-quote')
    .description('verify a quote made by tpm2_quote (-m, -s, -o) against a nonce; exit 0 accept, 1 reject, 2 unusable input')
    .requiredOption('--ak <file>', 'the AK: TPM2B_PUBLIC (tpm2_createak -u) or PEM (tpm2_readpublic -f pem; attribute checks then not performed)')
    .requiredOption('--quote <file>', 'the signed TPMS_ATTEST (tpm2_quote -m)')
    .requiredOption('--sig <file>', 'the TPMT_SIGNATURE (tpm2_quote -s)')
    .requiredOption('--pcrs <file>', 'PCR values: tpm2_quote -o, or JSON {"sha256": {"0": "hex", …}}')
    .requiredOption('--nonce <hex>', 'the nonce the quote must answer (tpm2_quote -q)')
    .option('--ek <file>', "the EK's TPM2B_PUBLIC, to check the AK's qualified name (qualifiedSigner)")
    .option('--previous <file>', 'the clockInfo of the last accepted quote, JSON {"clock", "resetCount", "restartCount", "safe"}')
    .option('--policy <file>', 'an attestation policy (JSON, src/attest/policy.ts): its AK and clock rules apply to the quote, its other rules to the evidence given')
    .option('--eventlog <file>', "the device's TCG event log: replayed against the quoted PCRs")
    .option('--ima <file>', "the device's IMA list: replayed against the quoted PCR 10")
    .option('--json', 'print the whole verdict as JSON')
    .action(async (options: VerifyQuoteOptions) => run(ctx, 'verify-quote', () => verifyQuoteCommand(ctx, options)));

  attest
    .command('ek-cert')
    .description('parse an EK certificate (DER or PEM, NV padding allowed) and check its chain; exit 0 verified, 1 rejected, 2 unusable')
    .argument('<file>', 'the EK certificate')
    .option('--roots <dir>', 'trusted root CAs: a folder of .pem/.crt/.cer/.der files, or one file')
    .option('--intermediates <dir>', 'intermediate CAs (candidates, not trusted): a folder or one file')
    .option('--at <time>', 'check validity at this ISO 8601 time (default: now)')
    .option('--json', 'print everything as JSON')
    .action(async (file: string, options: EkCertOptions) => run(ctx, 'ek-cert', () => ekCertCommand(ctx, file, options)));

  attest
    .command('eventlog')
    .description('decode a TCG PC Client event log and replay it to PCR values; exit 2 on a malformed log')
    .argument('<file>', 'the binary log (/sys/kernel/security/tpm0/binary_bios_measurements)')
    .option('--json', 'print everything as JSON')
    .action(async (file: string, options: { json?: boolean }) => run(ctx, 'eventlog', () => eventlogCommand(ctx, file, options)));

  attest
    .command('ima')
    .description('decode a Linux IMA measurement list (binary or ASCII) and replay PCR 10; exit 2 on a malformed list')
    .argument('<file>', 'binary_runtime_measurements or ascii_runtime_measurements')
    .option('--banks <list>', 'banks to replay, comma-separated', 'sha1,sha256')
    .option('--template-hash <alg>', 'hash of the listed template hashes (per-bank files *_runtime_measurements_<alg>)')
    .option('--json', 'print everything as JSON')
    .action(async (file: string, options: ImaOptions) => run(ctx, 'ima', () => imaCommand(ctx, file, options)));

  return attest;
}

