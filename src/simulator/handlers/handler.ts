/**
 * The shape of a command handler: the engine has already checked the
 * header, handles, authorizations and decoded the parameters (Part 3 §5);
 * a handler does the command's own work and returns typed response values.
 * To fail, it throws a TpmError carrying the response code (rcForParameter …).
 */
import type { AnyCommand, CommandHandles, CommandParams, ResponseHandles, ResponseParams } from '../../tpm/command.js';
import type { TpmEngine } from '../engine.js';

export interface HandlerContext {
  readonly engine: TpmEngine;
  /** Locality the command arrived at (0–4). */
  readonly locality: number;
  /**
   * A handler that changes `engine.state` (what survives a restart) sets this;
   * the engine then awaits its `persist` option before answering, so a
   * response never reports a change a crash could still lose.
   */
  persistentChanged: boolean;
}

export interface HandlerResult<C extends AnyCommand> {
  readonly handles: ResponseHandles<C>;
  readonly params: ResponseParams<C>;
}

export interface CommandHandler<C extends AnyCommand = AnyCommand> {
  readonly command: C;
  run(ctx: HandlerContext, handles: CommandHandles<C>, params: CommandParams<C>): HandlerResult<C> | Promise<HandlerResult<C>>;
}

/** Declares a handler; the generic ties handles, params and result to the command record. */
export function handler<C extends AnyCommand>(command: C, run: CommandHandler<C>['run']): CommandHandler<C> {
  return { command, run };
}

/** The response handles of a command that has none: one object for all (the marshaler only reads it). */
const NO_HANDLES = Object.freeze({});

/** A result with no response handles. */
export function ok<C extends AnyCommand>(params: ResponseParams<C>): HandlerResult<C> {
  return { handles: NO_HANDLES as ResponseHandles<C>, params };
}
