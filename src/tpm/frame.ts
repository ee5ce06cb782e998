/**
 * Command and response framing (Part 1 §18 "Command/Response Structure",
 * Part 3 §5 "Command Processing"), in both directions:
 *
 *   client: encodeCommand / frameCommand → bytes → parseResponse
 *   TPM:    bytes → parseCommand (splitCommand + decodeHandles + decodeParams) → encodeResponse / encodeErrorResponse
 *
 * Everything is driven by the command records in commands/; no command has
 * marshaling code of its own.
 */
import type { AnyCommand, CommandHandles, CommandParams, ResponseHandles, ResponseParams } from './command.js';
import { TPM_ST } from './constants.js';
import { LIMITS } from './limits.js';
import { TpmError } from './rc.js';
import { TPMS_AUTH_COMMAND, TPMS_AUTH_RESPONSE } from './types/index.js';
import { Reader, Writer } from './wire/io.js';
import type { Codec } from './wire/codec.js';
import { commandByCode } from './commands/index.js';

export type AuthCommand = TPMS_AUTH_COMMAND;
export type AuthResponse = TPMS_AUTH_RESPONSE;

const HEADER_SIZE = 10;

/*
 * Error paths: every ParseError/EncodeError carries the structure path of the
 * Reader/Writer when it is made (the engine maps them to response codes). The
 * framing functions below push their parts with enter/leave rather than
 * within() closures, and without try/finally where the Reader/Writer is their
 * own: an error ends it, and the path was already joined into the error.
 */

/** The per-command parts of error paths, built once per command record rather than per call. */
interface CommandPaths {
  /** `${name}.command`: the frame a client writes. */
  readonly command: string;
  /** `${name}.handles`: the handle area a TPM checks. */
  readonly handles: string;
  /** `${name}.response`: a response, either direction. */
  readonly response: string;
}
const commandPaths = new WeakMap<AnyCommand, CommandPaths>();
function pathsOf(cmd: AnyCommand): CommandPaths {
  let p = commandPaths.get(cmd);
  if (p === undefined) {
    p = { command: `${cmd.name}.command`, handles: `${cmd.name}.handles`, response: `${cmd.name}.response` };
    commandPaths.set(cmd, p);
  }
  return p;
}

/** `authorization[i]`, the path of the i-th authorization a Writer marshals. */
const AUTHORIZATION_PATHS = Array.from({ length: LIMITS.MAX_SESSIONS }, (_, i) => `authorization[${i}]`);
function authorizationPath(i: number): string {
  return AUTHORIZATION_PATHS[i] ?? `authorization[${i}]`;
}

// ---------------------------------------------------------------------------
// Parameters and handles (shared by both directions)

/** Marshals a command's parameter area (the bytes that go into cpHash). */
export function encodeParams<C extends AnyCommand>(cmd: C, params: CommandParams<C>): Uint8Array {
  return writeAll(cmd.paramsCodec as Codec<unknown>, params);
}

/** Unmarshals a command's parameter area; all bytes must be used. */
export function decodeParams<C extends AnyCommand>(cmd: C, paramBytes: Uint8Array): CommandParams<C> {
  return readAll(cmd.paramsCodec as Codec<unknown>, paramBytes) as CommandParams<C>;
}

/** Marshals a response's parameter area (the bytes that go into rpHash). */
export function encodeResponseParams<C extends AnyCommand>(cmd: C, params: ResponseParams<C>): Uint8Array {
  return writeAll(cmd.responseCodec as Codec<unknown>, params);
}

export function decodeResponseParams<C extends AnyCommand>(cmd: C, paramBytes: Uint8Array): ResponseParams<C> {
  return readAll(cmd.responseCodec as Codec<unknown>, paramBytes) as ResponseParams<C>;
}

function writeAll(c: Codec<unknown>, value: unknown): Uint8Array {
  const w = new Writer();
  w.enter(c.name);
  c.write(w, value);
  w.leave();
  return w.finish();
}

/** Reads `c` from exactly bytes[start, end); offsets in errors are offsets in `bytes` (the whole frame, when parsing one). */
function readAll(c: Codec<unknown>, bytes: Uint8Array, start = 0, end = bytes.length): unknown {
  const r = new Reader(bytes, start, end);
  r.enter(c.name);
  const v = c.read(r);
  r.finish();
  return v;
}

/**
 * Handle values as decodeHandles reads them: a handle area of 4-byte values
 * (what the handle codecs check), reused by every call since nothing it calls
 * decodes handles again. Grown for commands with more handles than it holds.
 */
let handleArea = new Uint8Array(16);

/** Checks each handle value against the command's declared handle type and names them. */
export function decodeHandles<C extends AnyCommand>(cmd: C, values: readonly number[]): CommandHandles<C> {
  const count = cmd.handleNames.length;
  if (handleArea.length < 4 * count) handleArea = new Uint8Array(4 * count);
  const b = handleArea;
  // As Writer.u32 marshals them (values that are not UINT32s wrap the same way).
  for (let i = 0, o = 0; i < count; i++, o += 4) {
    const v = values[i]!;
    b[o] = v >>> 24;
    b[o + 1] = v >>> 16;
    b[o + 2] = v >>> 8;
    b[o + 3] = v;
  }
  // Offsets in errors are offsets in this area (4 × the handle's index), as when it was a marshaled copy.
  return readHandles(cmd, b, 0, 4 * count);
}

/** Reads and checks the handle area that starts at bytes[start]. */
function readHandles<C extends AnyCommand>(cmd: C, bytes: Uint8Array, start: number, end = bytes.length): CommandHandles<C> {
  const out: Record<string, number> = {};
  const r = new Reader(bytes, start, end);
  r.enter(pathsOf(cmd).handles);
  const names = cmd.handleNames;
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    r.enter(name);
    out[name] = cmd.handles[name]!.codec.read(r);
    r.leave();
  }
  return out as CommandHandles<C>;
}

// ---------------------------------------------------------------------------
// Client direction

export interface FrameCommandOptions {
  /** Authorization sessions (TPMS_AUTH_COMMAND), at most three; none means TPM_ST_NO_SESSIONS. */
  readonly sessions?: readonly AuthCommand[];
}

const NO_SESSIONS: readonly never[] = [];

/**
 * Frames a command from already-marshaled parameters. The client uses this
 * after computing cpHash and HMACs over `paramBytes` (possibly encrypted).
 */
export function frameCommand<C extends AnyCommand>(
  cmd: C,
  handles: CommandHandles<C>,
  paramBytes: Uint8Array,
  options: FrameCommandOptions = {},
): Uint8Array {
  return writeCommand(cmd, handles as Record<string, number>, options.sessions ?? NO_SESSIONS, paramBytes, undefined);
}

/**
 * frameCommand and encodeCommand in one pass: the parameters are `paramBytes`
 * when given, else `params` marshaled in place.
 */
function writeCommand(
  cmd: AnyCommand,
  handles: Record<string, number>,
  sessions: readonly AuthCommand[],
  paramBytes: Uint8Array | undefined,
  params: unknown,
): Uint8Array {
  const names = cmd.handleNames;
  const w = new Writer(HEADER_SIZE + 4 * names.length + (paramBytes === undefined ? 0 : paramBytes.length) + 64);
  w.enter(pathsOf(cmd).command);
  if (sessions.length > LIMITS.MAX_SESSIONS) w.fail('encode.size', `${sessions.length} sessions, at most ${LIMITS.MAX_SESSIONS}`);
  w.u16(sessions.length > 0 ? TPM_ST.SESSIONS : TPM_ST.NO_SESSIONS);
  w.u32(0);
  w.u32(cmd.code);
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    w.enter(name);
    cmd.handles[name]!.codec.write(w, handles[name]!);
    w.leave();
  }
  if (sessions.length > 0) {
    const at = w.length;
    w.u32(0);
    for (let i = 0; i < sessions.length; i++) {
      w.enter(authorizationPath(i));
      TPMS_AUTH_COMMAND.write(w, sessions[i]!);
      w.leave();
    }
    w.patchU32(at, w.length - at - 4);
  }
  if (paramBytes !== undefined) {
    w.bytes(paramBytes);
  } else {
    w.enter(cmd.paramsCodec.name);
    cmd.paramsCodec.write(w, params as never);
    w.leave();
  }
  if (w.length > LIMITS.MAX_COMMAND_SIZE) w.fail('encode.size', `command of ${w.length} bytes exceeds ${LIMITS.MAX_COMMAND_SIZE}`);
  w.patchU32(2, w.length);
  w.leave();
  return w.finish();
}

/** Marshals a whole command: handles, optional sessions and parameters. */
export function encodeCommand<C extends AnyCommand>(
  cmd: C,
  handles: CommandHandles<C>,
  params: CommandParams<C>,
  options: FrameCommandOptions = {},
): Uint8Array {
  // One buffer for the frame (not the parameters' own, then the frame's): a copy and an allocation fewer.
  return writeCommand(cmd, handles as Record<string, number>, options.sessions ?? NO_SESSIONS, undefined, params);
}

export interface ParsedResponse<C extends AnyCommand> {
  readonly handles: ResponseHandles<C>;
  readonly params: ResponseParams<C>;
  /** The response parameter area exactly as received (for rpHash and decryption), as {@link SplitResponse.paramBytes}. */
  readonly paramBytes: Uint8Array;
  readonly sessions: readonly AuthResponse[];
}

export interface SplitResponse {
  readonly tag: number;
  readonly handleValues: readonly number[];
  /**
   * The parameter area: a view into the response (it is hashed, decrypted
   * into a new array, or decoded, and decoding copies every value), or a copy
   * when that costs less ({@link parameterArea}).
   */
  readonly paramBytes: Uint8Array;
  readonly sessions: readonly AuthResponse[];
}

/**
 * Splits a response into handles, parameter area and authorizations without
 * decoding the parameters (the client may have to decrypt them first).
 * A response code other than success throws a TpmError.
 */
export function splitResponse(cmd: AnyCommand, bytes: Uint8Array, sessionCount = 0): SplitResponse {
  const r = new Reader(bytes);
  r.enter(pathsOf(cmd).response);
  const tag = readHeader(r, 'response', LIMITS.MAX_RESPONSE_SIZE);
  const rc = r.u32();
  if (rc !== 0) {
    if (bytes.length !== HEADER_SIZE) r.fail('parse.size', `error response of ${bytes.length} bytes; an error response is the header only`, 2);
    throw new TpmError(rc, { commandCode: cmd.code });
  }
  const expected = sessionCount > 0 ? TPM_ST.SESSIONS : TPM_ST.NO_SESSIONS;
  if (tag !== expected) r.fail('parse.tag', `tag 0x${tag.toString(16)} for a command sent with ${sessionCount} session(s)`, 0);
  // Each response handle is checked against its declared type, as decodeHandles does for command handles.
  const names = cmd.responseHandleNames;
  const values: number[] = [];
  r.enter('handles');
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    r.enter(name);
    values.push(cmd.responseHandles[name]!.read(r));
    r.leave();
  }
  r.leave();
  let paramBytes: Uint8Array;
  const sessions: AuthResponse[] = [];
  if (tag === TPM_ST.SESSIONS) {
    const at = r.offset;
    const size = namedU32(r, 'parameterSize');
    if (size > r.remaining) r.fail('parse.size', `parameterSize ${size} exceeds the ${r.remaining} remaining byte(s)`, at);
    paramBytes = parameterArea(bytes, r.offset, r.offset + size);
    r.offset += size;
    r.enter('authorizations');
    for (let i = 0; i < sessionCount; i++) {
      r.enter(i); // shown as `[i]`
      sessions.push(TPMS_AUTH_RESPONSE.read(r));
      r.leave();
    }
    r.leave();
    r.finish();
  } else {
    paramBytes = parameterArea(bytes, r.offset, bytes.length);
  }
  return { tag, handleValues: values, paramBytes, sessions };
}

/**
 * bytes[start, end) for SplitResponse.paramBytes. V8 keeps a typed array of up
 * to 64 bytes in its heap, and the first view of one moves its bytes out into
 * an ArrayBuffer of their own, several times the cost of copying them
 * (≈ 0.3 µs against 0.04 µs): a small plain Uint8Array is copied, anything
 * else viewed.
 */
function parameterArea(bytes: Uint8Array, start: number, end: number): Uint8Array {
  return bytes.length <= 64 && bytes.constructor === Uint8Array ? bytes.slice(start, end) : bytes.subarray(start, end);
}

/** Parses a whole response to `cmd` (sent with `sessionCount` sessions). */
export function parseResponse<C extends AnyCommand>(cmd: C, bytes: Uint8Array, sessionCount = 0): ParsedResponse<C> {
  const split = splitResponse(cmd, bytes, sessionCount);
  const names = cmd.responseHandleNames;
  const handles: Record<string, number> = {};
  for (let i = 0; i < names.length; i++) handles[names[i]!] = split.handleValues[i]!;
  // The parameters are decoded in place, so that a ParseError's offset is an offset in `bytes`.
  const at = HEADER_SIZE + 4 * names.length + (split.tag === TPM_ST.SESSIONS ? 4 : 0);
  return {
    handles: handles as ResponseHandles<C>,
    params: readAll(cmd.responseCodec as Codec<unknown>, bytes, at, at + split.paramBytes.length) as ResponseParams<C>,
    paramBytes: split.paramBytes,
    sessions: split.sessions,
  };
}

// ---------------------------------------------------------------------------
// TPM direction

export interface SplitCommand {
  readonly tag: number;
  readonly code: number;
  readonly command: AnyCommand;
  readonly handleValues: readonly number[];
  readonly sessions: readonly AuthCommand[];
  /** The parameter area exactly as received (for cpHash and decryption). */
  readonly paramBytes: Uint8Array;
}

/**
 * Splits a command into header, handle area, authorization area and
 * parameter area (Part 3 §5.2–5.4). Parameters stay undecoded so that a
 * TPM can check handles and sessions first and decrypt the first parameter.
 */
export function splitCommand(bytes: Uint8Array, lookup: (code: number) => AnyCommand | undefined = commandByCode): SplitCommand {
  const r = new Reader(bytes);
  r.enter('command');
  const tag = readHeader(r, 'command', LIMITS.MAX_COMMAND_SIZE);
  const code = r.u32();
  const cmd = lookup(code);
  if (cmd === undefined) return r.fail('parse.command', `unknown command code 0x${code.toString(16)}`, 6);
  r.enter(cmd.name);
  const names = cmd.handleNames;
  const handleValues: number[] = [];
  r.enter('handles');
  for (let i = 0; i < names.length; i++) handleValues.push(namedU32(r, names[i]!));
  r.leave();
  const sessions: AuthCommand[] = [];
  if (tag === TPM_ST.SESSIONS) {
    const at = r.offset;
    const size = namedU32(r, 'authorizationSize');
    // Part 3 §5.4: the smallest authorization is 9 bytes (handle, two empty TPM2Bs, attributes).
    if (size < 9 || size > r.remaining) r.fail('parse.size', `authorizationSize ${size} with ${r.remaining} byte(s) left`, at);
    r.window(size, () => readAuthorizations(r, sessions));
  }
  return { tag, code, command: cmd, handleValues, sessions, paramBytes: r.take(r.remaining) };
}

/** The authorization area of a command: sessions until the end of the Reader's window. */
function readAuthorizations(r: Reader, sessions: AuthCommand[]): void {
  r.enter('authorizations');
  while (r.remaining > 0) {
    if (sessions.length === LIMITS.MAX_SESSIONS) r.fail('parse.count', `more than ${LIMITS.MAX_SESSIONS} sessions`);
    r.enter(sessions.length); // shown as `[i]`
    sessions.push(TPMS_AUTH_COMMAND.read(r));
    r.leave();
  }
  r.leave();
}

export interface ParsedCommand<C extends AnyCommand = AnyCommand> {
  readonly command: C;
  readonly handles: CommandHandles<C>;
  readonly params: CommandParams<C>;
  readonly sessions: readonly AuthCommand[];
  readonly paramBytes: Uint8Array;
}

/** Parses a whole command as a TPM receives it. */
export function parseCommand(bytes: Uint8Array, lookup?: (code: number) => AnyCommand | undefined): ParsedCommand {
  const split = splitCommand(bytes, lookup);
  // Handles and parameters are decoded in place, so that a ParseError's offset is an offset in `bytes`.
  return {
    command: split.command,
    handles: readHandles(split.command, bytes, HEADER_SIZE),
    params: readAll(split.command.paramsCodec as Codec<unknown>, bytes, bytes.length - split.paramBytes.length) as CommandParams<AnyCommand>,
    sessions: split.sessions,
    paramBytes: split.paramBytes,
  };
}

export interface FrameResponseOptions {
  /** Authorizations to return, one per command session; their presence selects TPM_ST_SESSIONS. */
  readonly sessions?: readonly AuthResponse[];
}

/** Frames a successful response from already-marshaled parameters (after rpHash/encryption). */
export function frameResponse<C extends AnyCommand>(
  cmd: C,
  handles: ResponseHandles<C>,
  paramBytes: Uint8Array,
  options: FrameResponseOptions = {},
): Uint8Array {
  const sessions = options.sessions ?? NO_SESSIONS;
  const w = new Writer(HEADER_SIZE + 8 + paramBytes.length + 64);
  w.enter(pathsOf(cmd).response);
  w.u16(sessions.length > 0 ? TPM_ST.SESSIONS : TPM_ST.NO_SESSIONS);
  w.u32(0);
  w.u32(0);
  const names = cmd.responseHandleNames;
  for (let i = 0; i < names.length; i++) w.u32((handles as Record<string, number>)[names[i]!]!);
  if (sessions.length > 0) w.u32(paramBytes.length);
  w.bytes(paramBytes);
  writeResponseAuthorizations(w, sessions);
  if (w.length > LIMITS.MAX_RESPONSE_SIZE) w.fail('encode.size', `response of ${w.length} bytes exceeds ${LIMITS.MAX_RESPONSE_SIZE}`);
  w.patchU32(2, w.length);
  w.leave();
  return w.finish();
}

function writeResponseAuthorizations(w: Writer, sessions: readonly AuthResponse[]): void {
  for (let i = 0; i < sessions.length; i++) {
    w.enter(authorizationPath(i));
    TPMS_AUTH_RESPONSE.write(w, sessions[i]!);
    w.leave();
  }
}

/**
 * A successful response marshaled in one buffer, in two steps: the parameters
 * first, in place (`paramBytes`, a view for rpHash, HMACs and encryption),
 * then finish() with the parameters as sent and the authorizations. The
 * result is frameResponse's, without the parameters' own buffer and copy.
 */
export interface ResponseDraft {
  /** The marshaled parameters: a view into the draft, to read before finish(). */
  readonly paramBytes: Uint8Array;
  /** The frame, with `paramBytes` (as drafted when omitted or the view; else as many bytes to put in its place) and the authorizations. */
  finish(paramBytes?: Uint8Array, sessions?: readonly AuthResponse[]): Uint8Array;
}

/** Starts a ResponseDraft; `withSessions` must match whether finish() gets authorizations (TPM_ST_SESSIONS). */
export function draftResponse<C extends AnyCommand>(cmd: C, handles: ResponseHandles<C>, params: ResponseParams<C>, withSessions: boolean): ResponseDraft {
  return new Draft(cmd, handles as Record<string, number>, params, withSessions);
}

class Draft implements ResponseDraft {
  readonly #w = new Writer();
  readonly #cmd: AnyCommand;
  readonly #handles: Record<string, number>;
  readonly #withSessions: boolean;
  readonly #start: number;
  readonly #end: number;
  #view: Uint8Array | undefined;

  constructor(cmd: AnyCommand, handles: Record<string, number>, params: unknown, withSessions: boolean) {
    const w = this.#w;
    this.#cmd = cmd;
    this.#handles = handles;
    this.#withSessions = withSessions;
    w.u16(withSessions ? TPM_ST.SESSIONS : TPM_ST.NO_SESSIONS);
    w.u32(0);
    w.u32(0);
    const names = cmd.responseHandleNames;
    for (let i = 0; i < names.length; i++) w.u32(handles[names[i]!]!);
    const sizeAt = w.length;
    if (withSessions) w.u32(0);
    this.#start = w.length;
    w.enter(cmd.responseCodec.name);
    try {
      cmd.responseCodec.write(w, params as never);
    } finally {
      w.leave();
    }
    this.#end = w.length;
    if (withSessions) w.patchU32(sizeAt, this.#end - this.#start);
  }

  get paramBytes(): Uint8Array {
    return (this.#view ??= this.#w.view(this.#start, this.#end));
  }

  finish(paramBytes?: Uint8Array, sessions: readonly AuthResponse[] = NO_SESSIONS): Uint8Array {
    const w = this.#w;
    // Anything else than the draft's shape is framed as frameResponse frames it.
    if (sessions.length > 0 !== this.#withSessions || (paramBytes !== undefined && paramBytes.length !== this.#end - this.#start)) {
      return frameResponse(this.#cmd, this.#handles as never, paramBytes ?? this.paramBytes, { sessions });
    }
    if (paramBytes !== undefined && paramBytes !== this.#view) w.patchBytes(this.#start, paramBytes);
    if (sessions.length > 0) {
      // The draft outlives a failed finish(), so its path is restored on the way out.
      w.enter(pathsOf(this.#cmd).response);
      try {
        writeResponseAuthorizations(w, sessions);
      } finally {
        w.leave();
      }
    }
    if (w.length > LIMITS.MAX_RESPONSE_SIZE) w.fail('encode.size', `response of ${w.length} bytes exceeds ${LIMITS.MAX_RESPONSE_SIZE}`);
    w.patchU32(2, w.length);
    return w.finish();
  }
}

/** Marshals a whole successful response. */
export function encodeResponse<C extends AnyCommand>(
  cmd: C,
  handles: ResponseHandles<C>,
  params: ResponseParams<C>,
  options: FrameResponseOptions = {},
): Uint8Array {
  const sessions = options.sessions ?? NO_SESSIONS;
  return draftResponse(cmd, handles, params, sessions.length > 0).finish(undefined, sessions);
}

/** An error response: the 10-byte header only (Part 3 §5.1), tag NO_SESSIONS. */
export function encodeErrorResponse(rc: number): Uint8Array {
  // Written directly: a Writer would marshal into its spare buffer and copy the 10 bytes out.
  const out = new Uint8Array(HEADER_SIZE);
  out[0] = TPM_ST.NO_SESSIONS >>> 8;
  out[1] = TPM_ST.NO_SESSIONS;
  out[5] = HEADER_SIZE;
  const code = rc >>> 0;
  out[6] = code >>> 24;
  out[7] = code >>> 16;
  out[8] = code >>> 8;
  out[9] = code;
  return out;
}

// ---------------------------------------------------------------------------

/** A u32 read with `name` on the error path. */
function namedU32(r: Reader, name: string): number {
  r.enter(name);
  const v = r.u32();
  r.leave();
  return v;
}

/**
 * Reads and checks the tag and size of a 10-byte header, leaving the Reader at
 * its code (a u32 that is always there once the length is checked). Failures
 * are reported at `header`; its fields cannot fail to read.
 */
function readHeader(r: Reader, what: 'command' | 'response', max: number): number {
  r.enter('header');
  if (r.remaining < HEADER_SIZE) r.fail('parse.truncated', `a ${what} needs at least ${HEADER_SIZE} bytes, got ${r.remaining}`);
  const tag = r.u16();
  // A response may also be TPM_ST_RSP_COMMAND (a TPM's answer to a malformed header).
  if (tag !== TPM_ST.NO_SESSIONS && tag !== TPM_ST.SESSIONS && (what === 'command' || tag !== TPM_ST.RSP_COMMAND)) r.fail('parse.tag', `tag 0x${tag.toString(16)}`, 0);
  const size = r.u32();
  if (size !== r.bytes.length) r.fail('parse.size', `${what}Size ${size} but ${r.bytes.length} byte(s) received`, 2);
  if (size > max) r.fail('parse.size', `${what}Size ${size} exceeds ${max}`, 2);
  r.leave();
  return tag;
}
