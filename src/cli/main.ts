#!/usr/bin/env node
/**
 * The `trustroot` command (package.json `bin`; `npm run trustroot -- …` from
 * a checkout). Today it has one group, `trustroot attest …` (src/cli/attest.ts).
 *
 * `main(argv, io)` builds a fresh commander program per call (no global
 * state), runs it with its output sent to `io`, and resolves the exit code
 * instead of exiting, so tests run it in-process. Usage errors (an unknown
 * option, a missing required one) exit 2 like any other unusable input;
 * `--help` exits 0.
 */
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { Command, CommanderError } from 'commander';
import { addAttestCommands, EXIT, type CliContext, type CliIo, type ExitCode } from './attest.js';
import { registerSimTcti } from './sim-tcti.js';
import { addTpmCommands } from './tpm.js';

export { EXIT, type CliIo, type ExitCode } from './attest.js';

/** The process's own streams and clock. */
export function processIo(): CliIo {
  return {
    stdout: (text) => void process.stdout.write(text),
    stderr: (text) => void process.stderr.write(text),
    cwd: process.cwd(),
    now: () => new Date(),
  };
}

/** The `trustroot` program, wired to `ctx` (exported for the help text and tests). */
export function program(ctx: CliContext): Command {
  // The CLI composes the layers, so it is what makes `sim:` TCTI strings open our software TPM in process.
  registerSimTcti();
  const p = new Command('trustroot')
    .description('trustroot: hardware-rooted trust for IoT fleets')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => ctx.io.stdout(s),
      writeErr: (s) => ctx.io.stderr(s),
    });
  addAttestCommands(p, ctx);
  addTpmCommands(p, ctx);
  return p;
}

/**
 * Runs `trustroot` with the arguments after the program name.
 * @returns the exit code (EXIT): 0 accept, 1 reject, 2 unusable input or usage error, 3 internal error.
 * @example process.exitCode = await main(['attest', 'eventlog', 'binary_bios_measurements']);
 */
export async function main(argv: readonly string[], io: CliIo = processIo()): Promise<ExitCode> {
  const ctx: CliContext = { io, exitCode: EXIT.ACCEPT };
  try {
    await program(ctx).parseAsync([...argv], { from: 'user' });
    return ctx.exitCode;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help (and help shown for a group without a subcommand) is not an error; anything else is a usage error.
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return EXIT.ACCEPT;
      if (e.code === 'commander.help') return EXIT.UNUSABLE;
      return EXIT.UNUSABLE;
    }
    io.stderr(`trustroot: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return EXIT.INTERNAL;
  }
}

/** True when this module is the process's entry point (node dist/src/cli/main.js, tsx src/cli/main.ts, the npm bin link). */
function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return pathToFileURL(realpathSync(script)).href === import.meta.url;
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  // A reader that stops early (`| head`) closes the pipe: the rest of the output is not wanted, the exit code stands.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') throw e;
    });
  }
  process.exitCode = await main(process.argv.slice(2));
}
