/**
 * One record per TPM command (Part 3): handles with their authorization role,
 * parameters in wire order, response handles and parameters, and the section
 * that defines it. The marshaler (frame.ts), cpHash/rpHash, the client and the
 * software TPM's dispatch are all driven by these records.
 */
import { type Codec, type Infer, struct, type StructCodec } from './wire/codec.js';

/** Part 1 §"Authorization roles": who may authorize use of a handle. */
export type AuthRole = 'USER' | 'ADMIN' | 'DUP';

export interface HandleSpec {
  readonly codec: Codec<number>;
  /** The role an authorization session must prove, or null when the handle needs none. */
  readonly auth: AuthRole | null;
}

/** A handle that needs no authorization. */
export function handle(codec: Codec<number>): HandleSpec {
  return { codec, auth: null };
}

/** A handle that needs an authorization session for `role` (Part 3 writes it "@name", "Auth Role: …"). */
export function authHandle(codec: Codec<number>, role: AuthRole = 'USER'): HandleSpec {
  return { codec, auth: role };
}

type Handles = Record<string, HandleSpec>;
type Params = Record<string, Codec<any>>;
type RHandles = Record<string, Codec<number>>;

export interface CommandSpec<H extends Handles, P extends Params, RH extends RHandles, R extends Params> {
  readonly name: string;
  readonly code: number;
  /** Where Part 3 defines it, e.g. "Part 3 §18.4". */
  readonly spec: string;
  readonly handles: H;
  readonly params: P;
  readonly responseHandles: RH;
  readonly response: R;
}

export interface CommandDef<
  H extends Handles = Handles,
  P extends Params = Params,
  RH extends RHandles = RHandles,
  R extends Params = Params,
> extends CommandSpec<H, P, RH, R> {
  /** Handle names in wire order. */
  readonly handleNames: readonly (keyof H & string)[];
  readonly responseHandleNames: readonly (keyof RH & string)[];
  /** Number of handles that need an authorization session (Part 3's "Auth Index" count). */
  readonly authCount: number;
  readonly paramsCodec: StructCodec<P>;
  readonly responseCodec: StructCodec<R>;
  /** Part 1 §"Parameter encryption": only a first parameter that is a TPM2B can be encrypted. */
  readonly commandEncryptable: boolean;
  readonly responseEncryptable: boolean;
}

/** A command of any shape, for registries and generic code. */
export type AnyCommand = CommandDef<Handles, Params, RHandles, Params>;

export type CommandHandles<C> = C extends CommandDef<infer H, Params, RHandles, Params> ? { [K in keyof H]: number } : never;
export type CommandParams<C> = C extends CommandDef<Handles, infer P, RHandles, Params> ? Infer<StructCodec<P>> : never;
export type ResponseHandles<C> = C extends CommandDef<Handles, Params, infer RH, Params> ? { [K in keyof RH]: number } : never;
export type ResponseParams<C> = C extends CommandDef<Handles, Params, RHandles, infer R> ? Infer<StructCodec<R>> : never;

function firstIsSized(p: Params): boolean {
  const first = Object.values(p)[0];
  return first !== undefined && (first.node.kind === 'sized' || first.node.kind === 'sizedOf') && (first.node.kind !== 'sized' || first.node.prefix === 2);
}

/** Declares a command. */
export function command<const H extends Handles, const P extends Params, const RH extends RHandles, const R extends Params>(
  spec: CommandSpec<H, P, RH, R>,
): CommandDef<H, P, RH, R> {
  const handleNames = Object.keys(spec.handles) as (keyof H & string)[];
  return {
    ...spec,
    handleNames,
    responseHandleNames: Object.keys(spec.responseHandles) as (keyof RH & string)[],
    authCount: handleNames.filter((n) => spec.handles[n]!.auth !== null).length,
    paramsCodec: struct(`${spec.name}.params`, spec.params),
    responseCodec: struct(`${spec.name}.response`, spec.response),
    commandEncryptable: firstIsSized(spec.params),
    responseEncryptable: firstIsSized(spec.response),
  };
}
