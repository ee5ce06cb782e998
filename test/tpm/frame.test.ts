/**
 * Command and response framing (src/tpm/frame.ts): known-answer vectors
 * observed on the wire or derived by hand from Part 1 §18, and one must-fail
 * case per framing check, each naming its error code, structure path and the
 * byte offset of the failing field in the input.
 */
import { describe, expect, it } from 'vitest';
import {
  EvictControl,
  GetCapability,
  GetRandom,
  HashSequenceStart,
  HierarchyChangeAuth,
  PCR_Reset,
  StartAuthSession,
  Startup,
} from '../../src/tpm/commands/index.js';
import { PT_FIXED, TPM_CAP, TPM_CC, TPM_RH, TPM_RS_PW, TPM_SU } from '../../src/tpm/constants.js';
import { EncodeError, ParseError } from '../../src/tpm/errors.js';
import {
  decodeHandles,
  draftResponse,
  encodeCommand,
  encodeErrorResponse,
  encodeParams,
  encodeResponse,
  encodeResponseParams,
  frameCommand,
  frameResponse,
  parseCommand,
  parseResponse,
  splitCommand,
  splitResponse,
} from '../../src/tpm/frame.js';
import { LIMITS } from '../../src/tpm/limits.js';
import { TpmError } from '../../src/tpm/rc.js';
import { passwordAuth } from '../../src/tpm/run.js';
import { TPMA_SESSION, type TPMS_AUTH_COMMAND } from '../../src/tpm/types/index.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const ascii = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'latin1'));

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected an error, none was thrown');
}

function expectParseError(fn: () => unknown, code: ParseError['code'], path: string, offset: number): ParseError {
  const e = thrown(fn);
  expect(e).toBeInstanceOf(ParseError);
  const p = e as ParseError;
  expect({ code: p.code, path: p.path, offset: p.offset }).toEqual({ code, path, offset });
  return p;
}

/*
 * HierarchyChangeAuth(TPM_RH_OWNER, newAuth "new"), authorized by the owner
 * password "old" through TPM_RS_PW, laid out by hand from Part 1 §18
 * (tag | commandSize | commandCode | handles | authorizationSize |
 * TPMS_AUTH_COMMAND… | parameters):
 *
 *   8002        TPM_ST_SESSIONS (there is an authorization area)
 *   00000023    commandSize = 10 header + 4 handle + 4 authorizationSize + 12 auth + 5 params = 35
 *   00000129    TPM_CC_HierarchyChangeAuth
 *   40000001    @authHandle = TPM_RH_OWNER
 *   0000000c    authorizationSize = 12, the one TPMS_AUTH_COMMAND below
 *   40000009      sessionHandle = TPM_RS_PW
 *   0000          nonce: empty TPM2B_NONCE
 *   01            sessionAttributes = continueSession
 *   0003 6f6c64   hmac: TPM2B_AUTH holding the password "old" in clear (Part 1 §19.8.4)
 *   0003 6e6577 newAuth: TPM2B_AUTH "new"
 */
const CHANGE_AUTH = '8002 00000023 00000129 40000001 0000000c 40000009 0000 01 0003 6f6c64 0003 6e6577';
/** The same with one byte after the parameters (commandSize 36). */
const CHANGE_AUTH_WITH_TRAILING = '8002 00000024 00000129 40000001 0000000c 40000009 0000 01 0003 6f6c64 0003 6e6577 ff';

// ---------------------------------------------------------------------------
// Known answers

describe('known-answer framing vectors', () => {
  it('GetRandom(8) as sent by tpm2_getrandom 8 (tpm-peers.md §2.1)', () => {
    const bytes = encodeCommand(GetRandom, {}, { bytesRequested: 8 });
    expect(toHex(bytes)).toBe('80010000000c0000017b0008');
    const parsed = parseCommand(bytes);
    expect(parsed.command).toBe(GetRandom);
    expect(parsed.params).toEqual({ bytesRequested: 8 });
    expect(parsed.sessions).toEqual([]);
  });

  it('GetCapability(TPM_PROPERTIES, PT_FIXED, 127) as sent by tpm2-tools at start (tpm-peers.md §2.1)', () => {
    const bytes = encodeCommand(GetCapability, {}, { capability: TPM_CAP.TPM_PROPERTIES, property: PT_FIXED, propertyCount: 127 });
    // 8001 | size 0x16 = 22 | TPM_CC_GetCapability 0x17a | capability 6 | property 0x100 | propertyCount 0x7f
    expect(toHex(bytes)).toBe('8001000000160000017a00000006000001000000007f');
    expect(parseCommand(bytes).params).toEqual({ capability: 6, property: 0x100, propertyCount: 127 });
  });

  it('the GetRandom responses observed from swtpm decode to their random bytes (tpm-peers.md §2.1, §2.2)', () => {
    const viaSwtpmTcti = parseResponse(GetRandom, hex('8001000000140000000000082e8ecac9a84fed47'));
    expect(toHex(viaSwtpmTcti.params.randomBytes)).toBe('2e8ecac9a84fed47');
    expect(toHex(viaSwtpmTcti.paramBytes)).toBe('00082e8ecac9a84fed47');
    expect(viaSwtpmTcti.sessions).toEqual([]);
    const viaMssimTcti = parseResponse(GetRandom, hex('800100000014000000000008d1118428be204525'));
    expect(toHex(viaMssimTcti.params.randomBytes)).toBe('d1118428be204525');
  });

  it('Startup(CLEAR) (Part 3 §9.3: tag NO_SESSIONS, TPM_CC_Startup 0x144, TPM_SU_CLEAR 0x0000)', () => {
    const bytes = encodeCommand(Startup, {}, { startupType: TPM_SU.CLEAR });
    expect(toHex(bytes)).toBe('80010000000c000001440000');
    expect(parseCommand(bytes).params).toEqual({ startupType: 0 });
  });


  it('a command with a password session matches the bytes derived by hand from Part 1 §18', () => {
    const bytes = encodeCommand(HierarchyChangeAuth, { authHandle: TPM_RH.OWNER }, { newAuth: ascii('new') }, { sessions: [passwordAuth(ascii('old'))] });
    expect(toHex(bytes)).toBe(toHex(hex(CHANGE_AUTH)));
    const parsed = parseCommand(bytes);
    expect(parsed.command).toBe(HierarchyChangeAuth);
    expect(parsed.handles).toEqual({ authHandle: TPM_RH.OWNER });
    expect(parsed.sessions).toEqual([
      { sessionHandle: TPM_RS_PW, nonce: new Uint8Array(0), sessionAttributes: TPMA_SESSION.of({ continueSession: true }), hmac: ascii('old') },
    ]);
    expect(toHex(parsed.paramBytes)).toBe('00036e6577');
    expect(parsed.params).toEqual({ newAuth: ascii('new') });
  });

  it('its response: parameterSize 0 and one TPMS_AUTH_RESPONSE (Part 1 §18)', () => {
    // 8002 | size 19 | rc 0 | parameterSize 0 | nonce empty, continueSession, hmac empty
    const response = hex('8002 00000013 00000000 00000000 0000 01 0000');
    const parsed = parseResponse(HierarchyChangeAuth, response, 1);
    expect(parsed.params).toEqual({});
    expect(parsed.paramBytes.length).toBe(0);
    expect(parsed.sessions).toEqual([{ nonce: new Uint8Array(0), sessionAttributes: TPMA_SESSION.of({ continueSession: true }), hmac: new Uint8Array(0) }]);
    expect(
      toHex(encodeResponse(HierarchyChangeAuth, {}, {}, { sessions: [{ nonce: new Uint8Array(0), sessionAttributes: TPMA_SESSION.of({ continueSession: true }), hmac: new Uint8Array(0) }] })),
    ).toBe(toHex(response));
  });

  it('response handles are returned, in a response with and without sessions', () => {
    // StartAuthSession: sessionHandle 0x03000000 (a policy session), nonceTPM of 2 bytes.
    const r = parseResponse(StartAuthSession, hex('8001 00000012 00000000 03000000 0002 abcd'));
    expect(r.handles).toEqual({ sessionHandle: 0x03000000 });
    expect(toHex(r.params.nonceTPM)).toBe('abcd');
    // With sessions, the handle precedes parameterSize.
    const s = splitResponse(HashSequenceStart, hex('8002 00000017 00000000 80000001 00000000 0000 01 0000'), 1);
    expect(s.handleValues).toEqual([0x80000001]);
    expect(s.paramBytes.length).toBe(0);
  });
});

// ---------------------------------------------------------------------------
// Commands that do not frame

describe('parseCommand: must-fail framing', () => {
  it('fewer than 10 bytes', () => {
    expectParseError(() => parseCommand(hex('8001 0000000c 0000')), 'parse.truncated', 'command.header', 0);
    expectParseError(() => parseCommand(new Uint8Array(0)), 'parse.truncated', 'command.header', 0);
  });

  it('a commandSize that disagrees with the bytes received, larger or smaller', () => {
    const bigger = expectParseError(() => parseCommand(hex('8001 0000000d 0000017b 0008')), 'parse.size', 'command.header', 2);
    expect(bigger.message).toContain('commandSize 13 but 12');
    const smaller = expectParseError(() => parseCommand(hex('8001 0000000b 0000017b 0008')), 'parse.size', 'command.header', 2);
    expect(smaller.message).toContain('commandSize 11 but 12');
  });

  it('a commandSize above LIMITS.MAX_COMMAND_SIZE, even when it matches the bytes', () => {
    const n = LIMITS.MAX_COMMAND_SIZE + 1;
    const bytes = new Uint8Array(n);
    bytes.set(hex('8001 00000000 0000017b 0008'));
    new DataView(bytes.buffer).setUint32(2, n);
    const e = expectParseError(() => parseCommand(bytes), 'parse.size', 'command.header', 2);
    expect(e.message).toContain(`exceeds ${LIMITS.MAX_COMMAND_SIZE}`);
  });

  it('a tag that is not NO_SESSIONS or SESSIONS', () => {
    expectParseError(() => parseCommand(hex('8003 0000000c 0000017b 0008')), 'parse.tag', 'command.header', 0);
    // TPM_ST_RSP_COMMAND is a response tag only.
    expectParseError(() => parseCommand(hex('00c4 0000000c 0000017b 0008')), 'parse.tag', 'command.header', 0);
  });

  it('an unknown command code, at offset 6', () => {
    expectParseError(() => parseCommand(hex('8001 0000000c 0000ffff 0008')), 'parse.command', 'command', 6);
    // A lookup that knows nothing rejects even a real code.
    expectParseError(() => splitCommand(hex('80010000000c0000017b0008'), () => undefined), 'parse.command', 'command', 6);
  });

  it('a handle area cut short', () => {
    expectParseError(() => parseCommand(hex('8001 0000000c 0000013d 0000')), 'parse.truncated', 'command.PCR_Reset.handles.pcrHandle', 10);
  });

  it('a handle of the wrong type, at its offset in the command', () => {
    // PCR_Reset takes a TPMI_DH_PCR; 0x81000001 is a persistent object.
    expectParseError(() => parseCommand(hex('8001 0000000e 0000013d 81000001')), 'parse.handle', 'PCR_Reset.handles.pcrHandle', 10);
  });

  it('tag SESSIONS without an authorizationSize', () => {
    expectParseError(() => parseCommand(hex('8002 0000000e 0000013d 00000010')), 'parse.truncated', 'command.PCR_Reset.authorizationSize', 14);
  });

  it('authorizationSize below 9, or above what remains', () => {
    expectParseError(() => parseCommand(hex('8002 0000001a 0000013d 00000010 00000008 40000009 00000100')), 'parse.size', 'command.PCR_Reset', 14);
    expectParseError(() => parseCommand(hex('8002 0000001b 0000013d 00000010 0000000a 40000009 0000 01 0000')), 'parse.size', 'command.PCR_Reset', 14);
    expectParseError(() => parseCommand(hex('8002 00000012 0000013d 00000010 00000000')), 'parse.size', 'command.PCR_Reset', 14);
  });

  it('more than three sessions', () => {
    const pw = '40000009 0000 01 0000';
    // authorizationSize 36 = 4 × 9; the fourth session starts at 18 + 27 = 45.
    const bytes = hex(`8002 00000036 0000013d 00000010 00000024 ${pw} ${pw} ${pw} ${pw}`);
    expectParseError(() => parseCommand(bytes), 'parse.count', 'command.PCR_Reset.authorizations', 45);
    // Three are fine.
    expect(parseCommand(hex(`8002 0000002d 0000013d 00000010 0000001b ${pw} ${pw} ${pw}`)).sessions.length).toBe(3);
  });

  it('a session TPM2B that runs past authorizationSize, even with bytes left in the command', () => {
    // authorizationSize 9, but hmac says 2 bytes: the window ends at 18 + 9 = 27, where the hmac body would start.
    const bytes = hex('8002 0000001f 00000182 00000010 00000009 40000009 0000 01 0002 00000000');
    expectParseError(() => parseCommand(bytes), 'parse.truncated', 'command.PCR_Extend.authorizations.[0].hmac', 27);
  });

  it('an authorization area that ends inside a session', () => {
    // authorizationSize 10: one 9-byte session and one byte of a second.
    const bytes = hex('8002 0000001c 0000013d 00000010 0000000a 40000009 0000 01 0000 40');
    expectParseError(() => parseCommand(bytes), 'parse.truncated', 'command.PCR_Reset.authorizations.[1].sessionHandle', 27);
  });

  it('a reserved bit in sessionAttributes', () => {
    // Bit 3 of TPMA_SESSION is reserved; sessionAttributes sits at 18 + 4 + 2 = 24.
    const bytes = hex('8002 0000001b 0000013d 00000010 00000009 40000009 0000 09 0000');
    expectParseError(() => parseCommand(bytes), 'parse.reserved', 'command.PCR_Reset.authorizations.[0].sessionAttributes', 24);
  });

  it('a session handle that is not a session or TPM_RS_PW', () => {
    const bytes = hex('8002 0000001b 0000013d 00000010 00000009 40000001 0000 01 0000');
    expectParseError(() => parseCommand(bytes), 'parse.handle', 'command.PCR_Reset.authorizations.[0].sessionHandle', 18);
  });

  it('bytes after the parameters', () => {
    expectParseError(() => parseCommand(hex('8001 0000000d 0000017b 0008 00')), 'parse.trailing', 'GetRandom.params', 12);
    // With sessions the parameter area starts after the authorizations.
    expectParseError(() => parseCommand(hex(CHANGE_AUTH_WITH_TRAILING)), 'parse.trailing', 'HierarchyChangeAuth.params', 35);
  });

  it('parameters cut short', () => {
    expectParseError(() => parseCommand(hex('8001 0000000b 0000017b 00')), 'parse.truncated', 'GetRandom.params.bytesRequested', 10);
  });

  it('a parameter outside its TPMI set', () => {
    // TPM_SU has CLEAR (0) and STATE (1) only.
    expectParseError(() => parseCommand(hex('8001 0000000c 00000144 0002')), 'parse.value', 'Startup.params.startupType', 10);
    // GetCapability's capability 0x0b is not a TPM_CAP.
    expectParseError(() => parseCommand(hex('8001 00000016 0000017a 0000000b 00000000 00000001')), 'parse.value', 'GetCapability.params.capability', 10);
  });
});

// ---------------------------------------------------------------------------
// Responses that do not frame

describe('parseResponse: must-fail framing', () => {
  const GET_RANDOM_OK = '8001 00000014 00000000 0008 2e8ecac9a84fed47';

  it('fewer than 10 bytes', () => {
    expectParseError(() => parseResponse(GetRandom, hex('8001 0000000a 0000')), 'parse.truncated', 'GetRandom.response.header', 0);
  });

  it('a responseSize that disagrees with the bytes received', () => {
    expectParseError(() => parseResponse(GetRandom, hex('8001 00000015 00000000 0008 2e8ecac9a84fed47')), 'parse.size', 'GetRandom.response.header', 2);
    expectParseError(() => parseResponse(GetRandom, hex('8001 00000013 00000000 0008 2e8ecac9a84fed47')), 'parse.size', 'GetRandom.response.header', 2);
  });

  it('a responseSize above LIMITS.MAX_RESPONSE_SIZE', () => {
    const n = LIMITS.MAX_RESPONSE_SIZE + 1;
    const bytes = new Uint8Array(n);
    bytes.set(hex('8001 00000000 00000000'));
    new DataView(bytes.buffer).setUint32(2, n);
    expectParseError(() => parseResponse(GetRandom, bytes), 'parse.size', 'GetRandom.response.header', 2);
  });

  it('an unknown response tag', () => {
    expectParseError(() => parseResponse(GetRandom, hex('8000 00000014 00000000 0008 2e8ecac9a84fed47')), 'parse.tag', 'GetRandom.response.header', 0);
  });

  it('an error response longer than its 10-byte header', () => {
    expectParseError(() => parseResponse(GetRandom, hex('8001 0000000c 00000101 0000')), 'parse.size', 'GetRandom.response', 2);
  });

  it('tag SESSIONS for a command sent without sessions, NO_SESSIONS for one sent with', () => {
    expectParseError(() => parseResponse(GetRandom, hex('8002 00000014 00000000 0008 2e8ecac9a84fed47')), 'parse.tag', 'GetRandom.response', 0);
    expectParseError(() => parseResponse(HierarchyChangeAuth, hex('8001 0000000a 00000000'), 1), 'parse.tag', 'HierarchyChangeAuth.response', 0);
  });

  it('a parameterSize larger than what remains', () => {
    // 5 bytes remain after parameterSize (the authorization); 6 is one too many.
    expectParseError(() => parseResponse(HierarchyChangeAuth, hex('8002 00000013 00000000 00000006 0000 01 0000'), 1), 'parse.size', 'HierarchyChangeAuth.response', 10);
    // After a response handle, parameterSize sits at 14.
    expectParseError(() => parseResponse(HashSequenceStart, hex('8002 00000017 00000000 80000001 00000006 0000 01 0000'), 1), 'parse.size', 'HashSequenceStart.response', 14);
  });

  it('a missing or an extra response authorization', () => {
    expectParseError(
      () => parseResponse(HierarchyChangeAuth, hex('8002 0000000e 00000000 00000000'), 1),
      'parse.truncated',
      'HierarchyChangeAuth.response.authorizations.[0].nonce',
      14,
    );
    // Two sessions sent, one authorization returned.
    expectParseError(
      () => parseResponse(HierarchyChangeAuth, hex('8002 00000013 00000000 00000000 0000 01 0000'), 2),
      'parse.truncated',
      'HierarchyChangeAuth.response.authorizations.[1].nonce',
      19,
    );
    expectParseError(
      () => parseResponse(HierarchyChangeAuth, hex('8002 00000018 00000000 00000000 0000 01 0000 0000 01 0000'), 1),
      'parse.trailing',
      'HierarchyChangeAuth.response',
      19,
    );
  });

  it('a reserved bit in a response authorization', () => {
    expectParseError(
      () => parseResponse(HierarchyChangeAuth, hex('8002 00000013 00000000 00000000 0000 11 0000'), 1),
      'parse.reserved',
      'HierarchyChangeAuth.response.authorizations.[0].sessionAttributes',
      16,
    );
  });

  it('response parameters with bytes left over, cut short, or out of their set, at offsets in the response', () => {
    expectParseError(() => parseResponse(GetRandom, hex(`${GET_RANDOM_OK.replace('00000014', '00000015')} 00`)), 'parse.trailing', 'GetRandom.response', 20);
    expectParseError(() => parseResponse(GetRandom, hex('8001 00000014 00000000 0009 2e8ecac9a84fed47')), 'parse.truncated', 'GetRandom.response.randomBytes', 12);
    // moreData is a TPMI_YES_NO: 2 is neither.
    const props = '00000006 00000000';
    expectParseError(() => parseResponse(GetCapability, hex(`8001 00000013 00000000 02 ${props}`)), 'parse.value', 'GetCapability.response.moreData', 10);
    // With a session the parameter area starts after parameterSize, at 14.
    expectParseError(
      () => parseResponse(GetCapability, hex(`8002 0000001c 00000000 00000009 02 ${props} 0000 01 0000`), 1),
      'parse.value',
      'GetCapability.response.moreData',
      14,
    );
  });

  it('a response handle of the wrong type (checked against the declared codec)', () => {
    // StartAuthSession returns a TPMI_SH_AUTH_SESSION; 0x80000000 is a transient object.
    expectParseError(
      () => parseResponse(StartAuthSession, hex('8001 00000010 00000000 80000000 0000')),
      'parse.handle',
      'StartAuthSession.response.handles.sessionHandle',
      10,
    );
    // HashSequenceStart returns a TPMI_DH_OBJECT; a PCR handle is not one. splitResponse checks it too.
    expectParseError(
      () => splitResponse(HashSequenceStart, hex('8002 00000017 00000000 00000010 00000000 0000 01 0000'), 1),
      'parse.handle',
      'HashSequenceStart.response.handles.sequenceHandle',
      10,
    );
  });

  it('a response cut short in its handle area', () => {
    expectParseError(
      () => parseResponse(StartAuthSession, hex('8001 0000000c 00000000 0300')),
      'parse.truncated',
      'StartAuthSession.response.handles.sessionHandle',
      10,
    );
  });

  it('a non-zero response code is a TpmError that names the command', () => {
    // TPM_RC_BAD_AUTH (0x0a2) on session 1: 0x9a2. An error response has tag NO_SESSIONS even when sessions were sent.
    const e = thrown(() => parseResponse(HierarchyChangeAuth, hex('8001 0000000a 000009a2'), 1));
    expect(e).toBeInstanceOf(TpmError);
    const t = e as TpmError;
    expect(t.code).toBe('tpm.rc');
    expect(t.rc).toBe(0x9a2);
    expect(t.rcName).toBe('TPM_RC_BAD_AUTH');
    expect(t.session).toBe(1);
    expect(t.commandCode).toBe(TPM_CC.HierarchyChangeAuth);
    // encodeErrorResponse frames the same bytes.
    expect(toHex(encodeErrorResponse(0x9a2))).toBe('80010000000a000009a2');
    const init = thrown(() => splitResponse(GetRandom, encodeErrorResponse(0x100)));
    expect(init).toBeInstanceOf(TpmError);
    expect((init as TpmError).rc).toBe(0x100);
    expect((init as TpmError).commandCode).toBe(TPM_CC.GetRandom);
  });

  it('a TPM 1.2-style error (tag RSP_COMMAND) is a TpmError too', () => {
    const e = thrown(() => parseResponse(GetRandom, hex('00c4 0000000a 0000001e')));
    expect(e).toBeInstanceOf(TpmError);
    expect((e as TpmError).rc).toBe(0x1e);
  });
});

// ---------------------------------------------------------------------------
// Commands that cannot be encoded

describe('encodeCommand: must-fail', () => {
  const pw: TPMS_AUTH_COMMAND = passwordAuth();

  it('four sessions', () => {
    const e = thrown(() => encodeCommand(PCR_Reset, { pcrHandle: 16 }, {}, { sessions: [pw, pw, pw, pw] }));
    expect(e).toBeInstanceOf(EncodeError);
    expect((e as EncodeError).code).toBe('encode.size');
    expect((e as EncodeError).path).toBe('PCR_Reset.command');
  });

  it('a command larger than LIMITS.MAX_COMMAND_SIZE', () => {
    const e = thrown(() => frameCommand(GetRandom, {}, new Uint8Array(LIMITS.MAX_COMMAND_SIZE)));
    expect(e).toBeInstanceOf(EncodeError);
    expect((e as EncodeError).code).toBe('encode.size');
  });

  it('a handle of the wrong type', () => {
    const e = thrown(() => encodeCommand(PCR_Reset, { pcrHandle: 0x81000001 }, {}, { sessions: [pw] }));
    expect(e).toBeInstanceOf(EncodeError);
    expect({ code: (e as EncodeError).code, path: (e as EncodeError).path }).toEqual({ code: 'encode.value', path: 'PCR_Reset.command.pcrHandle' });
  });
});

// ---------------------------------------------------------------------------
// One-pass framing (draftResponse, encodeCommand) against the two-step path

describe('draftResponse and encodeCommand frame as the two-step path', () => {
  const auth = { nonce: new Uint8Array([1, 2, 3, 4]), sessionAttributes: TPMA_SESSION.of({ continueSession: true }), hmac: new Uint8Array([9, 8]) };

  it('without sessions, with sessions, with the parameters replaced in place (encrypted) and with a replacement of another size', () => {
    const params = { randomBytes: new Uint8Array([5, 6, 7, 8, 9]) };
    const plain = encodeResponseParams(GetRandom, params);
    expect(draftResponse(GetRandom, {}, params, false).finish()).toEqual(frameResponse(GetRandom, {}, plain));
    const d = draftResponse(GetRandom, {}, params, true);
    expect(d.paramBytes).toEqual(plain);
    expect(d.finish(d.paramBytes, [auth])).toEqual(frameResponse(GetRandom, {}, plain, { sessions: [auth] }));
    const encrypted = plain.map((b) => b ^ 0xa5);
    expect(draftResponse(GetRandom, {}, params, true).finish(encrypted, [auth])).toEqual(frameResponse(GetRandom, {}, encrypted, { sessions: [auth] }));
    const longer = new Uint8Array(plain.length + 3).fill(7);
    expect(draftResponse(GetRandom, {}, params, true).finish(longer, [auth])).toEqual(frameResponse(GetRandom, {}, longer, { sessions: [auth] }));
    // The drafted frame parses back to the same parameters.
    expect(parseResponse(GetRandom, draftResponse(GetRandom, {}, params, false).finish(), 0).params.randomBytes).toEqual(params.randomBytes);
  });

  it('response handles are kept, and a larger response after a small error response is unaffected', () => {
    const params = { nonceTPM: new Uint8Array(16).fill(3) };
    const twoStep = frameResponse(StartAuthSession, { sessionHandle: 0x03000000 }, encodeResponseParams(StartAuthSession, params));
    expect(encodeErrorResponse(0x101).length).toBe(10);
    expect(encodeResponse(StartAuthSession, { sessionHandle: 0x03000000 }, params)).toEqual(twoStep);
  });

  it('encodeCommand is frameCommand over encodeParams', () => {
    const pw = passwordAuth();
    expect(encodeCommand(HierarchyChangeAuth, { authHandle: TPM_RH.OWNER }, { newAuth: new Uint8Array([1, 2]) }, { sessions: [pw] })).toEqual(
      frameCommand(HierarchyChangeAuth, { authHandle: TPM_RH.OWNER }, encodeParams(HierarchyChangeAuth, { newAuth: new Uint8Array([1, 2]) }), { sessions: [pw] }),
    );
    expect(encodeCommand(GetRandom, {}, { bytesRequested: 8 })).toEqual(frameCommand(GetRandom, {}, encodeParams(GetRandom, { bytesRequested: 8 })));
  });
});

// ---------------------------------------------------------------------------
// decodeHandles and the parameter area of splitResponse

describe('decodeHandles and splitResponse paramBytes', () => {
  it('decodeHandles names each handle, and reports a bad one at its offset in the handle area (4 × its index)', () => {
    expect(decodeHandles(EvictControl, [TPM_RH.OWNER, 0x80000001])).toEqual({ auth: TPM_RH.OWNER, objectHandle: 0x80000001 });
    expectParseError(() => decodeHandles(EvictControl, [TPM_RH.OWNER, TPM_RH.OWNER]), 'parse.handle', 'EvictControl.handles.objectHandle', 4);
    expectParseError(() => decodeHandles(EvictControl, [0x80000001, 0x80000001]), 'parse.handle', 'EvictControl.handles.auth', 0);
    // A failed call leaves nothing behind for the next one.
    expect(decodeHandles(EvictControl, [TPM_RH.PLATFORM, 0x81000001])).toEqual({ auth: TPM_RH.PLATFORM, objectHandle: 0x81000001 });
  });

  it('paramBytes is the parameter area as received, for a small response and a large one, with and without sessions', () => {
    const small = new Uint8Array([5, 6, 7]);
    const large = new Uint8Array(60).map((_, i) => i); // a 72-byte response
    for (const randomBytes of [small, large]) {
      const area = encodeResponseParams(GetRandom, { randomBytes });
      expect(splitResponse(GetRandom, encodeResponse(GetRandom, {}, { randomBytes })).paramBytes).toEqual(area);
      const auth = { nonce: new Uint8Array(0), sessionAttributes: TPMA_SESSION.of({ continueSession: true }), hmac: new Uint8Array(0) };
      const withSession = encodeResponse(GetRandom, {}, { randomBytes }, { sessions: [auth] });
      expect(splitResponse(GetRandom, withSession, 1).paramBytes).toEqual(area);
      expect(parseResponse(GetRandom, withSession, 1).params.randomBytes).toEqual(randomBytes);
    }
  });
});
