/**
 * Runs one declared command over a transport: marshal, send, parse. It knows
 * only password authorizations (Part 1 §19.8.4, TPM_RS_PW), which need no
 * session state; HMAC and policy sessions are the client's (src/client/), which
 * frames with the same records through frameCommand/splitResponse.
 */
import type { AnyCommand, CommandHandles, CommandParams, ResponseHandles, ResponseParams } from './command.js';
import { TPM_RS_PW } from './constants.js';
import { encodeCommand, parseResponse } from './frame.js';
import { sendOptionsOf, type SendOptions, type Transport } from './transport/transport.js';
import { TPMA_SESSION, type TPMS_AUTH_COMMAND } from './types/index.js';

const PASSWORD_ATTRIBUTES = TPMA_SESSION.of({ continueSession: true });
const NO_SESSIONS: readonly TPMS_AUTH_COMMAND[] = [];

/** A password authorization: the authValue in clear, continueSession set (Part 1 §19.8.4). */
export function passwordAuth(authValue: Uint8Array = new Uint8Array(0)): TPMS_AUTH_COMMAND {
  return {
    sessionHandle: TPM_RS_PW,
    nonce: new Uint8Array(0),
    // A fresh copy each call: the caller owns the returned object.
    sessionAttributes: { ...PASSWORD_ATTRIBUTES },
    hmac: authValue,
  };
}

export interface RunOptions extends SendOptions {
  /**
   * Authorizations in handle order. By default every handle that needs one
   * gets an empty password, which is what a fresh TPM's hierarchies accept.
   */
  readonly sessions?: readonly TPMS_AUTH_COMMAND[];
}

export interface RunResult<C extends AnyCommand> {
  readonly handles: ResponseHandles<C>;
  readonly params: ResponseParams<C>;
}

/** Sends `cmd` and returns its decoded response; a TPM error response throws a TpmError. */
export async function runCommand<C extends AnyCommand>(
  transport: Transport,
  cmd: C,
  handles: CommandHandles<C>,
  params: CommandParams<C>,
  options: RunOptions = {},
): Promise<RunResult<C>> {
  const sessions = options.sessions ?? (cmd.authCount === 0 ? NO_SESSIONS : Array.from({ length: cmd.authCount }, () => passwordAuth()));
  const bytes = encodeCommand(cmd, handles, params, { sessions });
  // Only the send options go to the transport (not `sessions`).
  const response = await transport.send(bytes, sendOptionsOf(options));
  const parsed = parseResponse(cmd, response, sessions.length);
  return { handles: parsed.handles, params: parsed.params };
}
