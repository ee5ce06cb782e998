/**
 * Connection strings in tpm2-tss TCTI form, `name:conf`, and a registry of
 * the transports they name, so that the same string works here and with
 * tpm2-tools (`-T`, TPM2TOOLS_TCTI):
 *
 *   device:/dev/tpmrm0             the kernel device (`device` alone: /dev/tpmrm0)
 *   swtpm:host=127.0.0.1,port=2321 swtpm's raw command port, control on port+1
 *   mssim:host=…,port=…            the MS simulator protocol
 *
 * As tctildr does (tpm2-tss src/tss2-tcti/tctildr.c), the string is split at
 * its first ':' into name and conf; a string without ':' is a name alone. The
 * swtpm and mssim confs are comma-separated key=value pairs with the
 * defaults of their tpm2-tss TCTIs, host localhost and port 2321
 * (tcti-swtpm.h, tcti-mssim.h). This parser is stricter than tpm2-tss where
 * tpm2-tss would silently read something else: duplicate keys, a port with
 * trailing characters, an empty value.
 *
 * Code that composes the layers adds schemes with registerTcti (for example
 * `sim:` for an in-process software TPM).
 */
import { isIP } from 'node:net';
import { TctiError } from '../tpm/errors.js';
import { MssimTransport, SwtpmTransport, type Transport } from '../tpm/transport/index.js';
import { RetryTransport, type RetryOptions } from './retry.js';
import { DeviceTransport, TPMRM_DEVICE } from './transport/device.js';

/** tpm2-tss's default host and port for the swtpm and mssim TCTIs. */
export const TCTI_DEFAULT_HOST = 'localhost';
export const TCTI_DEFAULT_PORT = 2321;
/** What openTransport() uses when neither an argument nor the environment names a TPM. */
export const TCTI_DEFAULT = `device:${TPMRM_DEVICE}`;
/** Environment variables consulted, in this order. */
export const TCTI_ENV = ['TRUSTROOT_TPM', 'TPM2TOOLS_TCTI'] as const;

/** tctildr's bound on a whole string (PATH_MAX − 1). */
const MAX_TCTI_LENGTH = 4095;
/** POSIX_HOST_NAME_MAX. */
const MAX_HOST_LENGTH = 255;
const SCHEME = /^[a-z][a-z0-9_-]{0,31}$/;
const HOST_LABEL = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;
// C0 controls, space, DEL: nothing a device path, host name or key needs, and each a sign of a mangled string.
const FORBIDDEN = /[\u0000-\u0020\u007f]/;

export interface DeviceTctiConfig {
  readonly kind: 'device';
  readonly scheme: 'device';
  readonly path: string;
}

export interface TcpTctiConfig {
  readonly kind: 'tcp';
  readonly scheme: 'swtpm' | 'mssim';
  readonly host: string;
  readonly port: number;
}

/** A scheme this module does not know: its conf is for the registered factory to read. */
export interface CustomTctiConfig {
  readonly kind: 'custom';
  readonly scheme: string;
  readonly conf: string;
}

export type TctiConfig = DeviceTctiConfig | TcpTctiConfig | CustomTctiConfig;

export interface TctiFactoryOptions {
  /** Default deadline per command, when the caller set one. */
  readonly timeoutMs?: number;
}

/** Makes the transport for one parsed string. May be async (e.g. a simulator loading its state). */
export type TctiFactory = (config: TctiConfig, options: TctiFactoryOptions) => Transport | Promise<Transport>;

export interface OpenTransportOptions {
  /** Default deadline per command for the transport (otherwise the transport's own default). */
  readonly timeoutMs?: number;
  /**
   * Retry TPM_RC_RETRY, YIELDED and TESTING with back-off (default: on, with
   * the retry defaults); `false` returns the bare transport.
   */
  readonly retry?: RetryOptions | false;
  /** Where TRUSTROOT_TPM and TPM2TOOLS_TCTI are looked up (default process.env). */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

/** Where the string openTransport used came from. */
export interface ResolvedTcti {
  readonly tcti: string;
  readonly source: 'argument' | (typeof TCTI_ENV)[number] | 'default';
}

function invalid(tcti: string, why: string): TctiError {
  return new TctiError('tcti.invalid', `TCTI "${printable(tcti)}": ${why}`, tcti);
}

/** The string as it can safely appear in a message: control characters escaped, cut at 120 characters. */
function printable(s: string): string {
  const cut = s.length > 120 ? `${s.slice(0, 120)}…` : s;
  return cut.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029"\\]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * Split `name:conf` at the first ':' (tctildr's rule). Leading and trailing
 * whitespace is ignored, as in an environment variable set by hand.
 */
export function splitTcti(tcti: string): { readonly scheme: string; readonly conf: string } {
  if (typeof tcti !== 'string') throw new TctiError('tcti.invalid', `a TCTI string was expected, got ${typeof tcti}`, String(tcti));
  const s = tcti.trim();
  if (s.length === 0) throw invalid(tcti, 'empty');
  if (s.length > MAX_TCTI_LENGTH) throw invalid(tcti, `longer than ${MAX_TCTI_LENGTH} characters`);
  const colon = s.indexOf(':');
  const scheme = colon < 0 ? s : s.slice(0, colon);
  const conf = colon < 0 ? '' : s.slice(colon + 1);
  if (scheme.length === 0) throw invalid(tcti, 'the name before ":" is missing (e.g. "device:", "swtpm:")');
  if (!SCHEME.test(scheme)) {
    throw invalid(tcti, `"${printable(scheme)}" is not a TCTI name (lower-case letters, digits, "-" and "_", at most 32)`);
  }
  if (FORBIDDEN.test(conf)) throw invalid(tcti, 'the configuration contains spaces or control characters');
  return { scheme, conf };
}

/**
 * A tpm2-tss key/value conf: `key=value` pairs separated by commas (empty
 * pairs are skipped, as strtok does). Keys outside `allowed`, repeated keys,
 * and pairs without a value are refused. For factories of custom schemes too.
 */
export function parseTctiKeyValues(conf: string, allowed: readonly string[], tcti = conf): Map<string, string> {
  const out = new Map<string, string>();
  for (const pair of conf.split(',')) {
    if (pair.length === 0) continue;
    const eq = pair.indexOf('=');
    if (eq <= 0) throw invalid(tcti, `"${printable(pair)}" is not key=value`);
    const key = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    if (!allowed.includes(key)) {
      throw invalid(tcti, `unknown key "${printable(key)}" (${allowed.length > 0 ? `known: ${allowed.join(', ')}` : 'none are known'})`);
    }
    if (out.has(key)) throw invalid(tcti, `"${key}" is given twice`);
    if (value.length === 0) throw invalid(tcti, `"${key}" has no value`);
    out.set(key, value);
  }
  return out;
}

function parseHost(value: string, tcti: string): string {
  if (value.length > MAX_HOST_LENGTH) throw invalid(tcti, `host longer than ${MAX_HOST_LENGTH} characters`);
  if (isIP(value) !== 0) return value;
  const labels = value.endsWith('.') ? value.slice(0, -1).split('.') : value.split('.');
  if (labels.every((l) => HOST_LABEL.test(l))) return value;
  throw invalid(tcti, `"${printable(value)}" is not a host name or IP address`);
}

function parsePort(value: string, tcti: string, max: number): number {
  // Digits only: tpm2-tss's sscanf would read "2321x" as 2321.
  if (!/^[0-9]{1,5}$/.test(value)) throw invalid(tcti, `port "${printable(value)}" is not a number`);
  const port = Number(value);
  if (port < 1 || port > max) throw invalid(tcti, `port ${port} outside 1..${max}`);
  return port;
}

/** Parse a string fully: built-in schemes have their conf checked; others come back as `custom`. */
export function parseTcti(tcti: string): TctiConfig {
  const { scheme, conf } = splitTcti(tcti);
  switch (scheme) {
    case 'device': {
      // tpm2-tss's device conf is the path itself.
      if (conf.length === 0) return { kind: 'device', scheme, path: TPMRM_DEVICE };
      if (!conf.startsWith('/')) throw invalid(tcti, `device path "${printable(conf)}" is not absolute`);
      return { kind: 'device', scheme, path: conf };
    }
    case 'swtpm':
    case 'mssim': {
      if (/(^|,)path=/.test(conf)) throw invalid(tcti, 'unix sockets (path=) are not supported; use host= and port=');
      const kv = parseTctiKeyValues(conf, ['host', 'port'], tcti);
      const host = kv.has('host') ? parseHost(kv.get('host')!, tcti) : TCTI_DEFAULT_HOST;
      // swtpm's control channel is port+1, so the command port cannot be the last one.
      const port = kv.has('port') ? parsePort(kv.get('port')!, tcti, scheme === 'swtpm' ? 65534 : 65535) : TCTI_DEFAULT_PORT;
      return { kind: 'tcp', scheme, host, port };
    }
    default:
      return { kind: 'custom', scheme, conf };
  }
}

/** The canonical string for a config: `parseTcti(formatTcti(c))` gives `c` back. */
export function formatTcti(config: TctiConfig): string {
  switch (config.kind) {
    case 'device':
      return `device:${config.path}`;
    case 'tcp':
      return `${config.scheme}:host=${config.host},port=${config.port}`;
    case 'custom':
      return config.conf.length > 0 ? `${config.scheme}:${config.conf}` : config.scheme;
  }
}

const BUILTIN: ReadonlyMap<string, TctiFactory> = new Map<string, TctiFactory>([
  [
    'device',
    async (config, options) => {
      if (config.kind !== 'device') throw new TctiError('tcti.invalid', `device: unexpected ${config.kind} configuration`, formatTcti(config));
      const t = new DeviceTransport({ path: config.path, ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}) });
      // Open now, so a missing device or a permission problem shows here rather than at the first command.
      try {
        await t.open();
      } catch (e) {
        await t.close();
        throw e;
      }
      return t;
    },
  ],
  [
    'swtpm',
    (config, options) => {
      if (config.kind !== 'tcp') throw new TctiError('tcti.invalid', `swtpm: unexpected ${config.kind} configuration`, formatTcti(config));
      return new SwtpmTransport({ host: config.host, port: config.port, ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}) });
    },
  ],
  [
    'mssim',
    (config, options) => {
      if (config.kind !== 'tcp') throw new TctiError('tcti.invalid', `mssim: unexpected ${config.kind} configuration`, formatTcti(config));
      return new MssimTransport({ host: config.host, port: config.port, ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}) });
    },
  ],
]);

const registry = new Map<string, TctiFactory>(BUILTIN);

/**
 * Make `scheme:` strings open through `factory`. A scheme already registered
 * (built-ins included) is replaced only with `{ replace: true }`.
 */
export function registerTcti(scheme: string, factory: TctiFactory, options: { readonly replace?: boolean } = {}): void {
  if (typeof scheme !== 'string' || !SCHEME.test(scheme)) {
    throw new TctiError('tcti.scheme', `"${printable(String(scheme))}" cannot be a TCTI name (lower-case letters, digits, "-" and "_", at most 32)`, String(scheme));
  }
  if (typeof factory !== 'function') throw new TctiError('tcti.scheme', `the factory for "${scheme}" is not a function`, scheme);
  if (registry.has(scheme) && !options.replace) {
    throw new TctiError('tcti.scheme', `"${scheme}" is already registered (pass { replace: true } to replace it)`, scheme);
  }
  registry.set(scheme, factory);
}

/**
 * Remove a scheme. A built-in one that was replaced gets its built-in
 * factory back; a built-in one cannot be removed. Returns whether anything changed.
 */
export function unregisterTcti(scheme: string): boolean {
  const builtin = BUILTIN.get(scheme);
  if (builtin) {
    const changed = registry.get(scheme) !== builtin;
    registry.set(scheme, builtin);
    return changed;
  }
  return registry.delete(scheme);
}

/** The schemes openTransport() can open, sorted. */
export function tctiSchemes(): string[] {
  return [...registry.keys()].sort();
}

/** The string to use: the argument, else TRUSTROOT_TPM, else TPM2TOOLS_TCTI, else `device:/dev/tpmrm0`. Blank values count as unset. */
export function resolveTcti(tcti?: string, env: Readonly<Record<string, string | undefined>> = process.env): ResolvedTcti {
  if (tcti !== undefined) return { tcti, source: 'argument' };
  for (const name of TCTI_ENV) {
    const v = env[name];
    if (v !== undefined && v.trim().length > 0) return { tcti: v, source: name };
  }
  return { tcti: TCTI_DEFAULT, source: 'default' };
}

/**
 * Open the TPM a TCTI string names (see {@link resolveTcti} for the default).
 * Errors: TctiError `tcti.invalid` for a malformed string, `tcti.scheme` for a
 * name nothing is registered under; the transport's own errors (e.g.
 * `transport.connect` for a missing device).
 */
export async function openTransport(tcti?: string, options: OpenTransportOptions = {}): Promise<Transport> {
  const resolved = resolveTcti(tcti, options.env);
  const config = parseTcti(resolved.tcti);
  const factory = registry.get(config.scheme);
  if (!factory) {
    const from = resolved.source === 'argument' ? '' : ` (from ${resolved.source})`;
    throw new TctiError('tcti.scheme', `no transport is registered for "${config.scheme}"${from}; known: ${tctiSchemes().join(', ')}`, resolved.tcti);
  }
  const transport = await factory(config, options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {});
  return options.retry === false ? transport : new RetryTransport(transport, options.retry ?? {});
}
