/**
 * Test harness: a private swtpm manufactured like a real TPM by Debian's
 * `swtpm_setup` (swtpm-tools 0.7.1): an RSA-2048 EK (template L-1) persisted
 * at 0x81010001 with its certificate at NV 0x01C00002, an ECC NIST P-384 EK
 * (template H-3) at 0x81010016 with its certificate at 0x01C00016, and a
 * platform certificate at 0x01C08000, issued by a local CA (`swtpm_localca`).
 *
 * Everything lives in one temporary folder: swtpm_setup's configuration, the
 * local CA's keys and serial number (never the system's /var/lib/swtpm-localca),
 * a HOME so nothing is read from or written to the user's, and the TPM state.
 * It runs offline; stop() ends swtpm by PID and removes the folder.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import { SWTPM_BINARY, startSwtpm, type SwtpmInstance } from '../../src/cli/swtpm-process.js';
import { swtpmSupport } from './swtpm.js';

/** swtpm_setup: TRUSTROOT_SWTPM_SETUP or `swtpm_setup` on the PATH. */
export const SWTPM_SETUP_BINARY = process.env['TRUSTROOT_SWTPM_SETUP'] ?? 'swtpm_setup';
/** The certificate tool swtpm_setup calls (Debian swtpm-tools). */
export const SWTPM_LOCALCA_BINARY = process.env['TRUSTROOT_SWTPM_LOCALCA'] ?? '/usr/bin/swtpm_localca';

export interface SwtpmSetupOptions {
  /** `--lock-nvram`: write-lock the certificate indices, as firmware does (default false). */
  readonly lockNvram?: boolean;
  /** PCR banks to leave active (default `sha256`, swtpm_setup's default). */
  readonly pcrBanks?: string;
  /** How long swtpm_setup may take (default 60 s). */
  readonly timeoutMs?: number;
}

export interface SwtpmWithCertificates extends SwtpmInstance {
  /** The temporary folder that holds the state, the CA and the configuration. */
  readonly root: string;
  /** PEM of the CA that signed the EK certificates (swtpm-localca's intermediate). */
  readonly issuerCertificatePem: string;
  /** PEM of swtpm-localca's root CA. */
  readonly rootCertificatePem: string;
}

let setupAvailable: { ok: boolean; reason: string } | undefined;

/** Whether swtpm_setup (0.7 or later) can run here; checked once. */
export function swtpmSetupSupport(): { readonly ok: boolean; readonly reason: string } {
  if (setupAvailable) return setupAvailable;
  const r = spawnSync(SWTPM_SETUP_BINARY, ['--version'], { encoding: 'utf8', timeout: 5000 });
  // swtpm_setup 0.7.1 prints its version and exits with status 1: judge by the output.
  const ok = r.error === undefined && /setup tool version/i.test(r.stdout ?? '');
  setupAvailable = { ok, reason: ok ? '' : `swtpm_setup not usable (${r.error?.message ?? `exit ${r.status}`}); install Debian's swtpm-tools` };
  return setupAvailable;
}

/**
 * `describe` for suites that need a manufactured swtpm: skipped with the
 * reason when swtpm or swtpm_setup is missing, a failing test instead when
 * CI requires swtpm (CI=1 or TRUSTROOT_REQUIRE_SWTPM=1).
 */
export function describeWithSwtpmSetup(name: string, body: () => void): void {
  const s = swtpmSupport();
  const setup = swtpmSetupSupport();
  const reason = !s.available ? s.reason : !setup.ok ? setup.reason : '';
  if (reason === '') {
    describe(name, body);
  } else if (s.required) {
    describe(name, () => {
      it('swtpm and swtpm_setup are installed', () => {
        throw new Error(`${reason} (required because CI=1 or TRUSTROOT_REQUIRE_SWTPM=1)`);
      });
    });
  } else {
    describe.skip(`${name} [skipped: ${reason}]`, body);
  }
}

/** Runs swtpm_setup on a fresh state folder, then starts swtpm on it. */
export async function startSwtpmWithCertificates(opts: SwtpmSetupOptions = {}): Promise<SwtpmWithCertificates> {
  const root = await mkdtemp(join(tmpdir(), 'trustroot-swtpm-setup-'));
  try {
    const state = join(root, 'state');
    const ca = join(root, 'ca');
    const home = join(root, 'home');
    await Promise.all([mkdir(state), mkdir(ca), mkdir(home)]);
    const setupConf = join(root, 'swtpm_setup.conf');
    const caConf = join(root, 'swtpm-localca.conf');
    const caOptions = join(root, 'swtpm-localca.options');
    await writeFile(
      setupConf,
      [`create_certs_tool = ${SWTPM_LOCALCA_BINARY}`, `create_certs_tool_config = ${caConf}`, `create_certs_tool_options = ${caOptions}`, ''].join('\n'),
    );
    await writeFile(
      caConf,
      [`statedir = ${ca}`, `signingkey = ${join(ca, 'signkey.pem')}`, `issuercert = ${join(ca, 'issuercert.pem')}`, `certserial = ${join(ca, 'certserial')}`, ''].join('\n'),
    );
    await writeFile(caOptions, ['--platform-manufacturer trustroot', '--platform-version 2.1', '--platform-model test', ''].join('\n'));

    const args = [
      '--tpm2',
      '--tpmstate', state,
      '--create-ek-cert',
      '--create-platform-cert',
      '--overwrite',
      '--config', setupConf,
      '--pcr-banks', opts.pcrBanks ?? 'sha256',
      '--logfile', join(root, 'setup.log'),
      ...(opts.lockNvram ? ['--lock-nvram'] : []),
      // swtpm_setup starts its own swtpm; by default the one on the PATH.
      ...(process.env['TRUSTROOT_SWTPM'] !== undefined ? ['--tpm', `${SWTPM_BINARY} socket`] : []),
    ];
    const env = { ...process.env, HOME: home, XDG_CONFIG_HOME: join(home, '.config'), TMPDIR: root };
    const result = await run(SWTPM_SETUP_BINARY, args, env, opts.timeoutMs ?? 60_000);
    if (result !== 0) {
      const log = await readFile(join(root, 'setup.log'), 'utf8').catch(() => '');
      throw new Error(`swtpm_setup failed (${result}): ${log.slice(-2000)}`);
    }
    const [issuerCertificatePem, rootCertificatePem] = await Promise.all([
      readFile(join(ca, 'issuercert.pem'), 'utf8'),
      readFile(join(ca, 'swtpm-localca-rootca-cert.pem'), 'utf8'),
    ]);
    const instance = await startSwtpm({ stateDir: state });
    let stopping: Promise<void> | undefined;
    return {
      ...instance,
      root,
      issuerCertificatePem,
      rootCertificatePem,
      stop() {
        stopping ??= (async () => {
          await instance.stop();
          await rm(root, { recursive: true, force: true });
        })();
        return stopping;
      },
    };
  } catch (e) {
    await rm(root, { recursive: true, force: true });
    throw e;
  }
}

/** Runs a program to completion; resolves its exit status (or a description of how it ended). */
function run(file: string, args: readonly string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<number | string> {
  return new Promise((resolve) => {
    const child = spawn(file, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (s: string) => {
      if (stderr.length < 4096) stderr += s;
    });
    const timer = setTimeout(() => {
      if (child.pid !== undefined) child.kill('SIGKILL');
    }, timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      resolve(`could not start ${file}: ${e.message}`);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve(code === 0 ? 0 : `${signal ?? `exit ${code}`} ${stderr.trim()}`);
    });
  });
}
