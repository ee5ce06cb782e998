/**
 * `trustroot tpm …`: the software TPM on the command line.
 *
 * `trustroot tpm serve --state DIR --port N [--protocol mssim|swtpm] [--host H] [--profile NAME]`
 * serves a software TPM on N (commands) and N+1 (MS platform port or swtpm
 * control channel, src/simulator/server.ts) until SIGINT/SIGTERM or a
 * client's STOP/SHUTDOWN. The TPM is src/simulator/engine.ts over the state
 * folder's store (src/simulator/store.ts): manufactured on first use, locked
 * while served, saved after every command (the store coalesces writes).
 * `--profile` (src/simulator/profiles.ts) picks a new TPM's limits and
 * algorithm set; a stored TPM keeps the one it was made with, and naming
 * another is an error (profile.mismatch).
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { TpmEngine } from '../simulator/engine.js';
import { startTpmServer, type ServerProtocol, type SimulatorPlatform, type TpmServer } from '../simulator/server.js';
import { EK_CERTIFICATE_INDICES, defaultSoftwareTpmCaDir, ensureEkCertificate, loadOrCreateSoftwareTpmCa } from '../simulator/manufacture.js';
import { isProfileName, profileByName, TPM_PROFILES, type TpmProfileName } from '../simulator/profiles.js';
import { openSimulatorStore } from '../simulator/store.js';
import { TrustrootError } from '../tpm/errors.js';
import { EXIT, type CliContext } from './attest.js';

/** A TPM opened for serving, and how to put it away. */
export interface OpenedPlatform {
  readonly platform: SimulatorPlatform;
  /** The profile the TPM runs under, when known. */
  readonly profile?: string;
  /** Save and release whatever `platform` holds (called once serving has stopped). */
  close(): Promise<void>;
}

/** Where the EK certificate CA lives (manufacture.ts). */
export interface EnginePlatformOptions {
  /** The installation's CA folder; default defaultSoftwareTpmCaDir(stateDir). */
  readonly caDir?: string;
  /**
   * The profile (profiles.ts): a new TPM is manufactured under it (libtpms when
   * omitted); a stored one must have been (ProfileError profile.mismatch).
   */
  readonly profile?: TpmProfileName;
}

/**
 * The software TPM kept in `stateDir`: the folder's state (manufactured when
 * missing) in a TpmEngine. Every command's state changes are saved before its
 * response leaves, so an answered NV write survives a crash. A TPM without EK
 * certificates gets them from the installation's CA (made on first use in
 * `caDir`): the ECC EK's certificate at once, the RSA EK's when first read;
 * the state is saved before serving starts.
 * @throws StateError when the folder is locked by another server, corrupt or unreadable, or the CA folder is damaged
 * @throws ProfileError when `profile` is unknown or not the one the stored TPM was manufactured with
 */
export async function openEnginePlatform(stateDir: string, options: EnginePlatformOptions = {}): Promise<OpenedPlatform> {
  const ca = await loadOrCreateSoftwareTpmCa(options.caDir ?? defaultSoftwareTpmCaDir(stateDir));
  const profile = options.profile === undefined ? undefined : profileByName(options.profile);
  const { store, state } = await openSimulatorStore(stateDir, profile === undefined ? { create: true } : { create: true, profile });
  const provisioned = state.ekCertificates.provisioned;
  let engine: TpmEngine;
  try {
    // The engine saves before answering any command that changed persistent state (NV, Startup, Shutdown…).
    engine = new TpmEngine({ state, persist: (s) => store.save(s), manufacture: { ca }, ...(profile === undefined ? {} : { profile }) });
  } catch (e) {
    await store.close();
    throw e;
  }
  if (!provisioned) {
    try {
      // The ECC EK's certificate now (cheap); the RSA EK's on first read (manufacture.ts).
      await ensureEkCertificate(engine, EK_CERTIFICATE_INDICES.eccP256);
      await store.save(engine.state);
    } catch (e) {
      await store.close();
      throw e;
    }
  }
  const platform: SimulatorPlatform = {
    execute: (command, locality) => engine.execute(command, locality),
    // _TPM_Init on power-on and on reset (Part 1 §36.4); power-off only brings Clock up to date.
    powerOn: () => engine.init(),
    powerOff: async () => {
      engine.syncClock();
      await store.save(engine.state);
    },
    reset: () => engine.init(),
  };
  return {
    platform,
    profile: engine.profile.name,
    async close() {
      engine.syncClock();
      await store.save(engine.state);
      await store.close();
    },
  };
}

export interface TpmCommandHooks {
  /** Opens the TPM kept in `stateDir` (default: openEnginePlatform). */
  readonly createPlatform?: (stateDir: string, options: EnginePlatformOptions) => Promise<OpenedPlatform>;
  /** Stops serving when aborted (default: SIGINT/SIGTERM of this process). */
  readonly signal?: AbortSignal;
  /** Called once both ports listen (tests connect from here). */
  readonly onListening?: (server: TpmServer) => void;
}

export interface ServeOptions {
  readonly state: string;
  readonly port: string;
  readonly protocol: string;
  readonly host: string;
  /** The EK certificate CA's folder (default: see defaultSoftwareTpmCaDir). */
  readonly ca?: string;
  /** A profile name (profiles.ts). */
  readonly profile?: string;
}

function parsePort(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const n = Number(text);
  // N+1 must exist too; 0 picks a free pair.
  return n <= 65534 ? n : undefined;
}

async function serveCommand(ctx: CliContext, o: ServeOptions, hooks: TpmCommandHooks): Promise<void> {
  const fail = (message: string): void => {
    ctx.io.stderr(`trustroot tpm serve: ${message}\n`);
    ctx.exitCode = EXIT.UNUSABLE;
  };
  const port = parsePort(o.port);
  if (port === undefined) return fail(`--port ${o.port}: expected 0..65534 (port+1 is used as well)`);
  if (o.protocol !== 'mssim' && o.protocol !== 'swtpm') return fail(`--protocol ${o.protocol}: expected mssim or swtpm`);
  const protocol: ServerProtocol = o.protocol;
  if (o.profile !== undefined && !isProfileName(o.profile)) return fail(`--profile ${o.profile}: expected ${Object.keys(TPM_PROFILES).join(' or ')}`);
  const profile = o.profile;
  const stateDir = resolve(ctx.io.cwd ?? process.cwd(), o.state);
  const caDir = o.ca !== undefined ? resolve(ctx.io.cwd ?? process.cwd(), o.ca) : defaultSoftwareTpmCaDir(stateDir);
  let server: TpmServer;
  let opened: OpenedPlatform | undefined;
  try {
    opened = await (hooks.createPlatform ?? openEnginePlatform)(stateDir, profile === undefined ? { caDir } : { caDir, profile });
    server = await startTpmServer({
      platform: opened.platform,
      protocol,
      port,
      host: o.host,
      onError: (e) => ctx.io.stderr(`trustroot tpm serve: ${e instanceof Error ? e.message : String(e)}\n`),
    });
  } catch (e) {
    await opened?.close();
    if (e instanceof TrustrootError) return fail(`${e.message} [${e.code}]`);
    if (e instanceof Error && 'code' in e && typeof e.code === 'string') return fail(`${e.message}`); // EADDRINUSE, EACCES…
    throw e;
  }
  if (o.host !== '127.0.0.1' && o.host !== '::1' && o.host !== 'localhost') {
    ctx.io.stderr(`trustroot tpm serve: warning: listening on ${o.host}; anyone who reaches it holds the platform hierarchy\n`);
  }
  ctx.io.stdout(
    `serving a software TPM (${protocol}) on ${server.host}:${server.port}, ` +
      `${protocol === 'mssim' ? 'platform' : 'control'} port ${server.platformPort}, state ${stateDir}, EK CA ${caDir}, profile ${opened.profile ?? 'libtpms'}\n` +
      `  tpm2-tools: TPM2TOOLS_TCTI=${protocol}:host=${server.host},port=${server.port}\n`,
  );
  hooks.onListening?.(server);
  await waitForStop(server, hooks.signal);
  await opened.close();
  ctx.exitCode = EXIT.ACCEPT;
}

async function waitForStop(server: TpmServer, signal: AbortSignal | undefined): Promise<void> {
  const stop = (): void => void server.close();
  if (signal !== undefined) {
    if (signal.aborted) stop();
    signal.addEventListener('abort', stop, { once: true });
    await server.closed;
    signal.removeEventListener('abort', stop);
    return;
  }
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await server.closed;
  process.off('SIGINT', stop);
  process.off('SIGTERM', stop);
}

/** Adds `tpm serve` to the program. */
export function addTpmCommands(program: Command, ctx: CliContext, hooks: TpmCommandHooks = {}): Command {
  const tpm = program.command('tpm').description('the software TPM');
  tpm
    .command('serve')
    .description('serve a software TPM on PORT (commands) and PORT+1 (MS platform port or swtpm control channel)')
    .requiredOption('--state <dir>', 'folder holding the TPM state (created if missing)')
    .requiredOption('--port <n>', 'command port; the platform/control port is n+1 (0: any free pair)')
    .option('--protocol <name>', 'mssim (MS simulator platform port) or swtpm (swtpm control channel) on port+1', 'mssim')
    .option('--host <address>', 'address to bind', '127.0.0.1')
    .option('--profile <name>', `limits and algorithms of a new TPM: ${Object.keys(TPM_PROFILES).join(' or ')} (default: the stored TPM's, else libtpms)`)
    .option('--ca <dir>', "folder of this installation's software TPM CA, which issues the EK certificates (created if missing; default $TRUSTROOT_HOME/sw-tpm-ca, else sw-tpm-ca beside the state folder)")
    .action(async (options: ServeOptions) => serveCommand(ctx, options, hooks));
  return tpm;
}
