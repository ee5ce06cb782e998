/**
 * The command records (src/tpm/commands/): the registry is complete and
 * consistent with TPM_CC, the handle areas carry Part 3's authorization
 * roles, parameter encryption follows Part 1's "first parameter is a TPM2B"
 * rule, and every command and response survives a marshal/unmarshal round
 * trip through frame.ts with 0..3 sessions.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AnyCommand, CommandHandles, CommandParams, ResponseHandles, ResponseParams } from '../../src/tpm/command.js';
import * as registry from '../../src/tpm/commands/index.js';
import { ALL_COMMANDS, commandByCode } from '../../src/tpm/commands/index.js';
import { TPM_CC } from '../../src/tpm/constants.js';
import { encodeCommand, encodeResponse, parseCommand, parseResponse } from '../../src/tpm/frame.js';
import {
  TPMI_DH_ENTITY,
  TPMI_DH_OBJECT,
  TPMI_RH_NV_AUTH,
  TPMI_RH_NV_INDEX,
  TPMI_SH_POLICY,
  TPMS_AUTH_COMMAND,
  TPMS_AUTH_RESPONSE,
} from '../../src/tpm/types/index.js';
import { type Codec, encode, orNull } from '../../src/tpm/wire/codec.js';
import { arbitraryOf } from '../support/arbitrary.js';

/** The commands trustroot must declare (Part 3 rev 1.59), by chapter. */
const REQUIRED = [
  // §9, §10, §11
  ...['Startup', 'Shutdown', 'SelfTest', 'IncrementalSelfTest', 'GetTestResult', 'StartAuthSession', 'PolicyRestart'],
  // §12 Object
  ...['Create', 'Load', 'LoadExternal', 'ReadPublic', 'ActivateCredential', 'MakeCredential', 'Unseal', 'ObjectChangeAuth', 'CreateLoaded'],
  // §13 Duplication, §14 Asymmetric, §15 Symmetric, §16 RNG
  ...['Duplicate', 'Import'],
  ...['RSA_Encrypt', 'RSA_Decrypt', 'ECDH_KeyGen', 'ECDH_ZGen', 'ECC_Parameters', 'ZGen_2Phase'],
  ...['EncryptDecrypt', 'EncryptDecrypt2', 'Hash', 'HMAC', 'GetRandom', 'StirRandom'],
  // §17 Sequences, §18 Attestation, §19 Ephemeral, §20 Signing, §21 Audit
  ...['HMAC_Start', 'HashSequenceStart', 'SequenceUpdate', 'SequenceComplete', 'EventSequenceComplete'],
  ...['Certify', 'CertifyCreation', 'Quote', 'GetSessionAuditDigest', 'GetCommandAuditDigest', 'GetTime'],
  ...['Commit', 'EC_Ephemeral', 'VerifySignature', 'Sign', 'SetCommandCodeAuditStatus'],
  // §22 PCR
  ...['PCR_Extend', 'PCR_Event', 'PCR_Read', 'PCR_Allocate', 'PCR_Reset'],
  // §23 Enhanced authorization
  ...['PolicySigned', 'PolicySecret', 'PolicyTicket', 'PolicyOR', 'PolicyPCR', 'PolicyLocality', 'PolicyNV'],
  ...['PolicyCounterTimer', 'PolicyCommandCode', 'PolicyPhysicalPresence', 'PolicyCpHash', 'PolicyNameHash'],
  ...['PolicyDuplicationSelect', 'PolicyAuthorize', 'PolicyAuthValue', 'PolicyPassword', 'PolicyGetDigest'],
  ...['PolicyNvWritten', 'PolicyTemplate', 'PolicyAuthorizeNV'],
  // §24 Hierarchy, §25 DA
  ...['CreatePrimary', 'HierarchyControl', 'SetPrimaryPolicy', 'ChangePPS', 'ChangeEPS', 'Clear', 'ClearControl', 'HierarchyChangeAuth'],
  ...['DictionaryAttackLockReset', 'DictionaryAttackParameters'],
  // §28 Context, §29 Clock, §30 Capability
  ...['ContextSave', 'ContextLoad', 'FlushContext', 'EvictControl', 'ReadClock', 'ClockSet', 'ClockRateAdjust'],
  ...['GetCapability', 'TestParms'],
  // §31 NV
  ...['NV_DefineSpace', 'NV_UndefineSpace', 'NV_UndefineSpaceSpecial', 'NV_ReadPublic', 'NV_Write', 'NV_Increment'],
  ...['NV_Extend', 'NV_SetBits', 'NV_WriteLock', 'NV_GlobalWriteLock', 'NV_Read', 'NV_ReadLock', 'NV_ChangeAuth', 'NV_Certify'],
] as const;
/** Declared as well, though not required. */
const OPTIONAL = ['Rewrap', 'PCR_SetAuthPolicy', 'PCR_SetAuthValue'] as const;

const TPM_RH_NULL = 0x40000007;
const byName = new Map(ALL_COMMANDS.map((c) => [c.name, c]));
function cmd(name: string): AnyCommand {
  const c = byName.get(name);
  if (c === undefined) throw new Error(`${name} is not declared`);
  return c;
}
function acceptsNull(c: Codec<number>): boolean {
  try {
    encode(c, TPM_RH_NULL);
    return true;
  } catch {
    return false;
  }
}

describe('command registry', () => {
  it('declares every required command, and nothing unexpected', () => {
    const declared = new Set(ALL_COMMANDS.map((c) => c.name));
    expect([...REQUIRED].filter((n) => !declared.has(n))).toEqual([]);
    const known = new Set<string>([...REQUIRED, ...OPTIONAL]);
    expect([...declared].filter((n) => !known.has(n))).toEqual([]);
    expect(new Set(REQUIRED).size).toBe(REQUIRED.length);
  });

  it('names each command once, with its own TPM_CC', () => {
    const names = ALL_COMMANDS.map((c) => c.name);
    expect(new Set(names).size).toBe(names.length);
    const codes = ALL_COMMANDS.map((c) => c.code);
    expect(new Set(codes).size).toBe(codes.length);
    for (const c of ALL_COMMANDS) expect(c.code, c.name).toBe((TPM_CC as Record<string, number>)[c.name]);
  });

  it('exports each record by name, and the export list is ALL_COMMANDS', () => {
    const exported = Object.entries(registry).filter(([k]) => k !== 'ALL_COMMANDS' && k !== 'commandByCode');
    for (const [k, v] of exported) expect((v as AnyCommand).name, k).toBe(k);
    expect(new Set(exported.map(([, v]) => v))).toEqual(new Set(ALL_COMMANDS));
  });

  it('finds commands by code', () => {
    for (const c of ALL_COMMANDS) expect(commandByCode(c.code)).toBe(c);
    expect(commandByCode(0)).toBeUndefined();
    expect(commandByCode(TPM_CC.Quote + 0x20000000)).toBeUndefined();
  });

  it('cites one Part 3 section per command', () => {
    for (const c of ALL_COMMANDS) expect(c.spec, c.name).toMatch(/^Part 3 §\d+\.\d+$/);
    const sections = ALL_COMMANDS.map((c) => c.spec);
    expect(new Set(sections).size).toBe(sections.length);
    // Spot checks against the table of contents of rev 1.59.
    const known: Record<string, string> = {
      Startup: '9.3',
      GetTestResult: '10.4',
      StartAuthSession: '11.1',
      CreateLoaded: '12.9',
      Import: '13.3',
      ZGen_2Phase: '14.7',
      HMAC: '15.5',
      GetRandom: '16.1',
      HashSequenceStart: '17.4',
      EventSequenceComplete: '17.7',
      Quote: '18.4',
      EC_Ephemeral: '19.3',
      Sign: '20.2',
      SetCommandCodeAuditStatus: '21.2',
      PCR_Reset: '22.8',
      PolicySigned: '23.3',
      PolicyAuthorizeNV: '23.22',
      CreatePrimary: '24.1',
      DictionaryAttackParameters: '25.3',
      EvictControl: '28.5',
      ReadClock: '29.1',
      TestParms: '30.3',
      NV_DefineSpace: '31.3',
      NV_Certify: '31.16',
    };
    for (const [name, section] of Object.entries(known)) expect(cmd(name).spec).toBe(`Part 3 §${section}`);
  });
});

describe('handle areas', () => {
  it('puts the handles that need authorization first and counts them', () => {
    for (const c of ALL_COMMANDS) {
      const roles = c.handleNames.map((n) => c.handles[n]!.auth);
      expect(c.authCount, c.name).toBe(roles.filter((r) => r !== null).length);
      expect(roles.slice(0, c.authCount).every((r) => r !== null), c.name).toBe(true);
    }
  });

  it('Quote: signHandle is TPMI_DH_OBJECT+ with USER role', () => {
    const q = registry.Quote;
    expect(q.handleNames).toEqual(['signHandle']);
    expect(q.handles.signHandle.auth).toBe('USER');
    expect(q.handles.signHandle.codec).toBe(orNull(TPMI_DH_OBJECT));
    expect(q.responseHandleNames).toEqual([]);
  });

  it('PolicySecret: authHandle USER, policySession needs none', () => {
    const p = registry.PolicySecret;
    expect(p.handleNames).toEqual(['authHandle', 'policySession']);
    expect(p.handles.authHandle).toEqual({ codec: TPMI_DH_ENTITY, auth: 'USER' });
    expect(p.handles.policySession).toEqual({ codec: TPMI_SH_POLICY, auth: null });
    expect(p.authCount).toBe(1);
  });

  it('ActivateCredential: activateHandle ADMIN, keyHandle USER', () => {
    const a = registry.ActivateCredential;
    expect(a.handleNames).toEqual(['activateHandle', 'keyHandle']);
    expect(a.handles.activateHandle.auth).toBe('ADMIN');
    expect(a.handles.keyHandle.auth).toBe('USER');
    expect(a.authCount).toBe(2);
  });

  it('Duplicate: objectHandle DUP, newParentHandle nullable without authorization', () => {
    const d = registry.Duplicate;
    expect(d.handleNames).toEqual(['objectHandle', 'newParentHandle']);
    expect(d.handles.objectHandle.auth).toBe('DUP');
    expect(d.handles.newParentHandle.auth).toBeNull();
    expect(acceptsNull(d.handles.newParentHandle.codec)).toBe(true);
    expect(acceptsNull(d.handles.objectHandle.codec)).toBe(false);
  });

  it('NV_Write: authHandle TPMI_RH_NV_AUTH (USER), nvIndex plain', () => {
    const w = registry.NV_Write;
    expect(w.handleNames).toEqual(['authHandle', 'nvIndex']);
    expect(w.handles.authHandle).toEqual({ codec: TPMI_RH_NV_AUTH, auth: 'USER' });
    expect(w.handles.nvIndex).toEqual({ codec: TPMI_RH_NV_INDEX, auth: null });
    expect(Object.keys(w.params)).toEqual(['data', 'offset']);
  });

  it('StartAuthSession: tpmKey and bind are nullable and need no authorization', () => {
    const s = registry.StartAuthSession;
    expect(s.handleNames).toEqual(['tpmKey', 'bind']);
    for (const n of s.handleNames) {
      expect(s.handles[n].auth).toBeNull();
      expect(acceptsNull(s.handles[n].codec)).toBe(true);
    }
    expect(s.responseHandleNames).toEqual(['sessionHandle']);
  });

  it('response handles: objects, sessions, sequences and contexts', () => {
    expect(registry.CreatePrimary.responseHandleNames).toEqual(['objectHandle']);
    expect(registry.Load.responseHandleNames).toEqual(['objectHandle']);
    expect(registry.LoadExternal.responseHandleNames).toEqual(['objectHandle']);
    expect(registry.CreateLoaded.responseHandleNames).toEqual(['objectHandle']);
    expect(registry.HMAC_Start.responseHandleNames).toEqual(['sequenceHandle']);
    expect(registry.HashSequenceStart.responseHandleNames).toEqual(['sequenceHandle']);
    expect(registry.ContextLoad.responseHandleNames).toEqual(['loadedHandle']);
    const withHandles = ALL_COMMANDS.filter((c) => c.responseHandleNames.length > 0).map((c) => c.name);
    expect(withHandles.sort()).toEqual(
      ['ContextLoad', 'CreateLoaded', 'CreatePrimary', 'HMAC_Start', 'HashSequenceStart', 'Load', 'LoadExternal', 'StartAuthSession'].sort(),
    );
    // FlushContext's handle is a parameter (Part 3 §28.4), not a handle.
    expect(registry.FlushContext.handleNames).toEqual([]);
    expect(Object.keys(registry.FlushContext.params)).toEqual(['flushHandle']);
  });
});

describe('handle checks on the TPM side', () => {
  it('parseCommand rejects a handle outside the declared set', () => {
    const q = registry.Quote;
    const params: CommandParams<typeof q> = { qualifyingData: new Uint8Array(0), inScheme: { scheme: 0x0010 }, PCRselect: [] };
    const bytes = encodeCommand(q, { signHandle: 0x80000001 }, params);
    expect(parseCommand(bytes).handles).toEqual({ signHandle: 0x80000001 });
    expect(parseCommand(encodeCommand(q, { signHandle: TPM_RH_NULL }, params)).handles).toEqual({ signHandle: TPM_RH_NULL });
    const nvIndex = bytes.slice();
    new DataView(nvIndex.buffer).setUint32(10, 0x01000001);
    expect(() => parseCommand(nvIndex)).toThrow(expect.objectContaining({ code: 'parse.handle' }));
    // A Duplicate's objectHandle may not be NULL (no "+"), its newParentHandle may.
    const d = registry.Duplicate;
    const dParams: CommandParams<typeof d> = { encryptionKeyIn: new Uint8Array(0), symmetricAlg: { algorithm: 0x0010 } };
    expect(() => encodeCommand(d, { objectHandle: TPM_RH_NULL, newParentHandle: TPM_RH_NULL }, dParams)).toThrow();
    expect(parseCommand(encodeCommand(d, { objectHandle: 0x81000001, newParentHandle: TPM_RH_NULL }, dParams)).handles).toEqual({
      objectHandle: 0x81000001,
      newParentHandle: TPM_RH_NULL,
    });
  });

  it('parseCommand rejects a command cut inside its handle area', () => {
    const bytes = encodeCommand(registry.PolicyRestart, { sessionHandle: 0x03000000 }, {});
    const cut = bytes.slice(0, 12);
    new DataView(cut.buffer).setUint32(2, cut.length);
    expect(() => parseCommand(cut)).toThrow(expect.objectContaining({ code: 'parse.truncated' }));
  });
});

describe('parameter encryption (first parameter is a TPM2B)', () => {
  const cases: [string, boolean, boolean][] = [
    ['Create', true, true],
    ['PCR_Read', false, false],
    ['EncryptDecrypt', false, true],
    ['EncryptDecrypt2', true, true],
    ['Unseal', false, true],
    ['NV_Read', false, true],
    ['NV_Write', true, false],
    ['NV_SetBits', false, false],
    ['PCR_Extend', false, false],
    ['GetCapability', false, false],
    ['StartAuthSession', true, true],
    ['ContextSave', false, false],
    ['PolicyAuthorizeNV', false, false],
    ['Sign', true, false],
    ['GetRandom', false, true],
  ];
  it.each(cases)('%s: command %s, response %s', (name, command, response) => {
    expect(cmd(name).commandEncryptable).toBe(command);
    expect(cmd(name).responseEncryptable).toBe(response);
  });
});

// ---------------------------------------------------------------------------
// Round trips through frame.ts

const RUNS = Number(process.env['TRUSTROOT_COMMAND_RUNS'] ?? 1000);
const commandSessions = fc.array(arbitraryOf(TPMS_AUTH_COMMAND), { maxLength: 3 });
const responseSessions = fc.array(arbitraryOf(TPMS_AUTH_RESPONSE), { maxLength: 3 });

function recordOf(entries: [string, fc.Arbitrary<unknown>][]): fc.Arbitrary<Record<string, unknown>> {
  return fc.record(Object.fromEntries(entries));
}

describe('command round trip: parseCommand(encodeCommand(...))', () => {
  for (const c of ALL_COMMANDS) {
    it(c.name, () => {
      const handles = recordOf(c.handleNames.map((n) => [n, arbitraryOf(c.handles[n]!.codec)]));
      fc.assert(
        fc.property(handles, arbitraryOf(c.paramsCodec), commandSessions, (h, p, sessions) => {
          const bytes = encodeCommand(c, h as CommandHandles<AnyCommand>, p as CommandParams<AnyCommand>, { sessions });
          const parsed = parseCommand(bytes);
          expect(parsed.command).toBe(c);
          expect(parsed.handles).toEqual(h);
          expect(parsed.params).toEqual(p);
          expect(parsed.sessions).toEqual(sessions);
        }),
        { numRuns: RUNS },
      );
    });
  }
});

describe('response round trip: parseResponse(cmd, encodeResponse(...))', () => {
  for (const c of ALL_COMMANDS) {
    it(c.name, () => {
      const handles = recordOf(c.responseHandleNames.map((n) => [n, arbitraryOf(c.responseHandles[n]!)]));
      fc.assert(
        fc.property(handles, arbitraryOf(c.responseCodec), responseSessions, (h, r, sessions) => {
          const bytes = encodeResponse(c, h as ResponseHandles<AnyCommand>, r as ResponseParams<AnyCommand>, { sessions });
          const parsed = parseResponse(c, bytes, sessions.length);
          expect(parsed.handles).toEqual(h);
          expect(parsed.params).toEqual(r);
          expect(parsed.sessions).toEqual(sessions);
        }),
        { numRuns: RUNS },
      );
    });
  }
});
