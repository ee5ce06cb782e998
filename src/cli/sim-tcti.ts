/**
 * The `sim:` TCTI: our software TPM (src/simulator) in this process, for the
 * CLI's --tcti, TRUSTROOT_TPM and openTransport (design.md: schemes such as
 * `sim:` are registered by the code that composes the layers; the client
 * cannot import the simulator, its sibling).
 *
 *   sim:                 an ephemeral TPM, manufactured now, gone on close; its EK
 *                        certificates chain to a throwaway CA made for it
 *   sim:state=DIR        the TPM kept in DIR (as `trustroot tpm serve --state DIR`):
 *                        manufactured on first use, locked while open, every
 *                        change saved before its answer, saved again on close
 *   sim:profile=strict   either, under a profile (src/simulator/profiles.ts); a
 *                        folder's TPM must have been manufactured under it
 *
 * Either TPM is powered on and needs TPM2_Startup, like one just reset. It is
 * a software TPM for tests and fleet simulation, never for production.
 */
import { resolve } from 'node:path';
import { parseTctiKeyValues, registerTcti, tctiSchemes, type TctiConfig, type TctiFactoryOptions } from '../client/tcti.js';
import { TpmEngine } from '../simulator/engine.js';
import { isProfileName, TPM_PROFILES, type TpmProfileName } from '../simulator/profiles.js';
import { createSoftwareTpmCa } from '../simulator/manufacture.js';
import { TctiError } from '../tpm/errors.js';
import { inProcessTransport, type Transport } from '../tpm/transport/index.js';
import { openEnginePlatform, type OpenedPlatform } from './tpm.js';

export const SIM_TCTI_SCHEME = 'sim';

/** What a `sim:` conf says: an ephemeral TPM or the one kept in a folder. */
export interface SimTcti {
  /** Absolute state folder, or undefined for an ephemeral TPM. */
  readonly stateDir: string | undefined;
  /** The profile asked for, or undefined (a folder's own, else libtpms). */
  readonly profile: TpmProfileName | undefined;
}

/** Reads a `sim:` conf (`""`, `state=DIR`, `profile=NAME`); relative folders are resolved against `cwd`. */
export function parseSimTcti(conf: string, cwd: string = process.cwd(), tcti = `${SIM_TCTI_SCHEME}:${conf}`): SimTcti {
  const kv = parseTctiKeyValues(conf, ['state', 'profile'], tcti);
  const state = kv.get('state');
  const profile = kv.get('profile');
  if (profile !== undefined && !isProfileName(profile)) throw new TctiError('tcti.invalid', `unknown profile (known: ${Object.keys(TPM_PROFILES).join(', ')})`, tcti);
  return { stateDir: state === undefined ? undefined : resolve(cwd, state), profile };
}

/** An engine with no state folder: manufactured here, lost on close. */
function ephemeralPlatform(profile: TpmProfileName | undefined): OpenedPlatform {
  const engine = new TpmEngine({ manufacture: { ca: createSoftwareTpmCa() }, ...(profile === undefined ? {} : { profile }) });
  return {
    platform: {
      execute: (command, locality) => engine.execute(command, locality),
      powerOn: () => engine.init(),
      powerOff: () => engine.syncClock(),
      reset: () => engine.init(),
    },
    close: () => Promise.resolve(),
  };
}

/** Opens the TPM a `sim:` string names, as a transport whose close() also saves and unlocks its state. */
export async function openSimTransport(config: TctiConfig, options: TctiFactoryOptions = {}): Promise<Transport> {
  if (config.kind !== 'custom' || config.scheme !== SIM_TCTI_SCHEME) {
    throw new TctiError('tcti.scheme', `not a ${SIM_TCTI_SCHEME}: TCTI`, config.scheme);
  }
  const sim = parseSimTcti(config.conf);
  // A corrupt, locked or unreadable folder is a StateError from the store, never a silently fresh TPM.
  const opened = sim.stateDir === undefined ? ephemeralPlatform(sim.profile) : await openEnginePlatform(sim.stateDir, sim.profile === undefined ? {} : { profile: sim.profile });
  const inner = inProcessTransport(opened.platform, options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {});
  let closing: Promise<void> | undefined;
  return {
    send: (command, sendOptions) => inner.send(command, sendOptions),
    close() {
      closing ??= (async () => {
        await inner.close();
        await opened.close();
      })();
      return closing;
    },
  };
}

/** Makes `sim:` strings open through openSimTransport; a second call changes nothing. */
export function registerSimTcti(): void {
  if (tctiSchemes().includes(SIM_TCTI_SCHEME)) return;
  registerTcti(SIM_TCTI_SCHEME, openSimTransport);
}
