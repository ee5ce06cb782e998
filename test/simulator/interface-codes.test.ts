/**
 * Interface types (Part 2 §9, §11, §12: the TPMI_* sets) refuse a value with
 * the response code their table names ("#TPM_RC_…", the reference's
 * *_Unmarshal), on the parameter that holds it: TPM_RC_SYMMETRIC for
 * TPMI_ALG_SYM*, TPM_RC_MODE for TPMI_ALG_SYM_MODE, TPM_RC_KDF for
 * TPMI_ALG_KDF, TPM_RC_SCHEME for the signing and ECC schemes, TPM_RC_CURVE,
 * TPM_RC_HASH, TPM_RC_TYPE; TPM_RC_VALUE for the rest (RSA and keyed-hash
 * schemes, TPMI_YES_NO, TPM_SE, TPM_SU, hierarchy handles in parameters).
 * Each case is one raw command with one refused value, sent to swtpm
 * (libtpms) and to the simulator: both must answer the same code, and that
 * code is the one written here. One exception, a row of
 * src/simulator/divergences.ts: a header tag that no TPM_ST names.
 */
import { expect, it } from 'vitest';
import { CreatePrimary } from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_CC, TPM_ECC, TPM_RH, TPM_ST } from '../../src/tpm/constants.js';
import { rcForParameter, TPM_RC } from '../../src/tpm/rc.js';
import { passwordAuth, runCommand } from '../../src/tpm/run.js';
import { eccAkTemplate } from '../../src/tpm/templates.js';
import { divergence } from '../../src/simulator/divergences.js';
import type { DiffSide } from '../support/differential.js';
import { swtpmAndSimulator } from '../support/fixture.js';
import { describeWithSwtpm } from '../support/swtpm.js';
import { u16, u32 } from '../support/bytes.js';

const A = TPM_ALG;
const u8 = (v: number): Buffer => Buffer.from([v]);
const cat = (...parts: Uint8Array[]): Buffer => Buffer.concat(parts);
/** An algorithm ID no Part 2 set holds. */
const BOGUS = 0x0099;

/** A command: header, handles, a password session when `auth`, parameters. */
function command(cc: number, params: Uint8Array, handles: readonly number[] = [], auth = false, tag?: number): Buffer {
  const area = auth ? cat(u32(9), u32(TPM_RH.PW), u16(0), u8(0), u16(0)) : Buffer.alloc(0);
  const body = cat(...handles.map(u32), area, params);
  return cat(u16(tag ?? (auth ? TPM_ST.SESSIONS : TPM_ST.NO_SESSIONS)), u32(10 + body.length), u32(cc), body);
}

// TPMT_PUBLIC_PARMS pieces (Part 2 §12.2.3.7), each with one field to vary.
const symNull = u16(A.NULL);
const aes128 = (mode: number = A.CFB): Buffer => cat(u16(A.AES), u16(128), u16(mode));
const rsaParms = (o: { sym?: Buffer; scheme?: Buffer } = {}): Buffer =>
  cat(u16(A.RSA), o.sym ?? symNull, o.scheme ?? u16(A.NULL), u16(2048), u32(0));
const eccParms = (o: { sym?: Buffer; scheme?: Buffer; curve?: number; kdf?: Buffer } = {}): Buffer =>
  cat(u16(A.ECC), o.sym ?? symNull, o.scheme ?? u16(A.NULL), u16(o.curve ?? TPM_ECC.NIST_P256), o.kdf ?? u16(A.NULL));
const testParms = (parms: Uint8Array): Buffer => command(TPM_CC.TestParms, parms);

const nonce16 = cat(u16(16), Buffer.alloc(16, 7));
/** StartAuthSession with no salt and no bind: sessionType (3), symmetric (4), authHash (5). */
const startAuthSession = (o: { type?: number; sym?: Buffer; hash?: number } = {}): Buffer =>
  command(TPM_CC.StartAuthSession, cat(nonce16, u16(0), u8(o.type ?? 0x00), o.sym ?? symNull, u16(o.hash ?? A.SHA256)), [TPM_RH.NULL, TPM_RH.NULL]);
/** Hash: data (1), hashAlg (2), hierarchy (3). */
const hash = (alg: number, hierarchy: number = TPM_RH.OWNER): Buffer => command(TPM_CC.Hash, cat(u16(0), u16(alg), u32(hierarchy)));

const P = rcForParameter;
const RC = TPM_RC;

/** Cases that need no object: label → command bytes and the code Part 2 names for it. */
const CASES: Record<string, readonly [Buffer, number]> = {
  'TPMI_ALG_PUBLIC (TestParms type)': [testParms(cat(u16(A.SHA256), u16(A.NULL))), P(RC.TYPE, 1)],
  'TPMI_ALG_SYM_OBJECT: XOR (TestParms symcipher)': [testParms(cat(u16(A.SYMCIPHER), u16(A.XOR), u16(0))), P(RC.SYMMETRIC, 1)],
  'TPMI_ALG_SYM_OBJECT: bogus (TestParms symcipher)': [testParms(cat(u16(A.SYMCIPHER), u16(BOGUS), u16(128), u16(A.CFB))), P(RC.SYMMETRIC, 1)],
  'TPMI_ALG_SYM_OBJECT+: XOR (TestParms RSA symmetric)': [testParms(rsaParms({ sym: cat(u16(A.XOR), u16(A.SHA256)) })), P(RC.SYMMETRIC, 1)],
  'TPMI_ALG_SYM_MODE: bogus (TestParms symcipher)': [testParms(cat(u16(A.SYMCIPHER), aes128(BOGUS))), P(RC.MODE, 1)],
  'TPMI_ALG_SYM_MODE: a hash (TestParms ECC symmetric)': [testParms(eccParms({ sym: aes128(A.SHA256) })), P(RC.MODE, 1)],
  'TPMI_ALG_KEYEDHASH_SCHEME: RSASSA (TestParms keyedhash)': [testParms(cat(u16(A.KEYEDHASH), u16(A.RSASSA), u16(A.SHA256))), P(RC.VALUE, 1)],
  'TPMI_ALG_HASH: HMAC scheme (TestParms keyedhash)': [testParms(cat(u16(A.KEYEDHASH), u16(A.HMAC), u16(BOGUS))), P(RC.HASH, 1)],
  'TPMI_ALG_HASH: NULL in an HMAC scheme': [testParms(cat(u16(A.KEYEDHASH), u16(A.HMAC), u16(A.NULL))), P(RC.HASH, 1)],
  'TPMI_ALG_KDF: XOR scheme (TestParms keyedhash)': [testParms(cat(u16(A.KEYEDHASH), u16(A.XOR), u16(A.SHA256), u16(A.RSASSA))), P(RC.KDF, 1)],
  'TPMI_ALG_RSA_SCHEME: ECDSA (TestParms RSA)': [testParms(rsaParms({ scheme: cat(u16(A.ECDSA), u16(A.SHA256)) })), P(RC.VALUE, 1)],
  'TPMI_ALG_RSA_SCHEME: bogus (TestParms RSA)': [testParms(rsaParms({ scheme: cat(u16(BOGUS), u16(A.SHA256)) })), P(RC.VALUE, 1)],
  'TPMI_ALG_HASH: RSASSA scheme (TestParms RSA)': [testParms(rsaParms({ scheme: cat(u16(A.RSASSA), u16(BOGUS)) })), P(RC.HASH, 1)],
  'TPMI_ALG_ECC_SCHEME: RSASSA (TestParms ECC)': [testParms(eccParms({ scheme: cat(u16(A.RSASSA), u16(A.SHA256)) })), P(RC.SCHEME, 1)],
  'TPMI_ALG_ECC_SCHEME: bogus (TestParms ECC)': [testParms(eccParms({ scheme: cat(u16(BOGUS), u16(A.SHA256)) })), P(RC.SCHEME, 1)],
  'TPMI_ECC_CURVE: bogus (TestParms ECC)': [testParms(eccParms({ curve: BOGUS })), P(RC.CURVE, 1)],
  'TPMI_ECC_CURVE: TPM_ECC_NONE (TestParms ECC)': [testParms(eccParms({ curve: 0 })), P(RC.CURVE, 1)],
  'TPMI_ALG_KDF+: RSASSA (TestParms ECC kdf)': [testParms(eccParms({ kdf: cat(u16(A.RSASSA), u16(A.SHA256)) })), P(RC.KDF, 1)],
  'TPMI_ALG_KDF+: bogus (TestParms ECC kdf)': [testParms(eccParms({ kdf: cat(u16(BOGUS), u16(A.SHA256)) })), P(RC.KDF, 1)],
  'TPM_SE (StartAuthSession sessionType)': [startAuthSession({ type: 0x05 }), P(RC.VALUE, 3)],
  'TPMI_ALG_SYM+: RSASSA (StartAuthSession symmetric)': [startAuthSession({ sym: cat(u16(A.RSASSA), u16(128), u16(A.CFB)) }), P(RC.SYMMETRIC, 4)],
  'TPMI_ALG_SYM_MODE: bogus (StartAuthSession symmetric)': [startAuthSession({ sym: aes128(BOGUS) }), P(RC.MODE, 4)],
  'TPMI_ALG_HASH: bogus (StartAuthSession authHash)': [startAuthSession({ hash: BOGUS }), P(RC.HASH, 5)],
  'TPMI_ALG_HASH: NULL (StartAuthSession authHash)': [startAuthSession({ hash: A.NULL }), P(RC.HASH, 5)],
  'TPMI_ALG_HASH: bogus (Hash hashAlg)': [hash(BOGUS), P(RC.HASH, 2)],
  'TPMI_ALG_HASH: NULL (Hash hashAlg)': [hash(A.NULL), P(RC.HASH, 2)],
  'TPMI_ALG_HASH+: bogus (HashSequenceStart hashAlg)': [command(TPM_CC.HashSequenceStart, cat(u16(0), u16(BOGUS))), P(RC.HASH, 2)],
  'TPMI_RH_HIERARCHY+: LOCKOUT (Hash hierarchy)': [hash(A.SHA256, TPM_RH.LOCKOUT), P(RC.VALUE, 3)],
  'TPMI_RH_HIERARCHY+: a PCR (Hash hierarchy)': [hash(A.SHA256, 0), P(RC.VALUE, 3)],
  'TPMI_RH_ENABLES: NULL (HierarchyControl enable)': [command(TPM_CC.HierarchyControl, cat(u32(TPM_RH.NULL), u8(1)), [TPM_RH.PLATFORM], true), P(RC.VALUE, 1)],
  'TPMI_YES_NO: 2 (HierarchyControl state)': [command(TPM_CC.HierarchyControl, cat(u32(TPM_RH.OWNER), u8(2)), [TPM_RH.PLATFORM], true), P(RC.VALUE, 2)],
  'TPMI_YES_NO: 2 (SelfTest fullTest)': [command(TPM_CC.SelfTest, u8(2)), P(RC.VALUE, 1)],
  'TPM_SU: 2 (Shutdown)': [command(TPM_CC.Shutdown, u16(2)), P(RC.VALUE, 1)],
  'TPMI_ST_COMMAND_TAG: TPM_ST_NULL (GetRandom header)': [command(TPM_CC.GetRandom, u16(8), [], false, TPM_ST.NULL), RC.BAD_TAG],
  'TPMI_ST_COMMAND_TAG: TPM_ST_HASHCHECK (GetRandom header)': [command(TPM_CC.GetRandom, u16(8), [], false, TPM_ST.HASHCHECK), RC.BAD_TAG],
};

/** A loaded ECDSA P-256 signing key (TPMI_ALG_SIG_SCHEME cases need an object). */
async function signingKey(side: DiffSide): Promise<number> {
  const r = await runCommand(side.probe, CreatePrimary, { primaryHandle: TPM_RH.OWNER }, {
    inSensitive: { userAuth: new Uint8Array(0), data: new Uint8Array(0) },
    inPublic: eccAkTemplate(),
    outsideInfo: new Uint8Array(0),
    creationPCR: [],
  }, { sessions: [passwordAuth()] });
  return r.handles.objectHandle;
}

const digest32 = cat(u16(32), Buffer.alloc(32, 1));
/** Cases on a signing key: label → command bytes for that key, and the expected code. */
const KEY_CASES: Record<string, readonly [(key: number) => Buffer, number]> = {
  'TPMI_ALG_SIG_SCHEME+: RSA (VerifySignature sigAlg)': [(k) => command(TPM_CC.VerifySignature, cat(digest32, u16(A.RSA), u16(A.SHA256)), [k]), P(RC.SCHEME, 2)],
  'TPMI_ALG_SIG_SCHEME+: bogus (Sign inScheme)': [
    (k) => command(TPM_CC.Sign, cat(digest32, u16(BOGUS), u16(A.SHA256), u16(TPM_ST.HASHCHECK), u32(TPM_RH.NULL), u16(0)), [k], true),
    P(RC.SCHEME, 2),
  ],
  'TPMI_ALG_HASH: ECDSA scheme (Sign inScheme)': [
    (k) => command(TPM_CC.Sign, cat(digest32, u16(A.ECDSA), u16(BOGUS), u16(TPM_ST.HASHCHECK), u32(TPM_RH.NULL), u16(0)), [k], true),
    P(RC.HASH, 2),
  ],
};

const rcOfResponse = (r: Uint8Array): number => (r.length >= 10 ? Buffer.from(r).readUInt32BE(6) : -1);

/** The code `bytes` answers, sent again after TPM_RC_RETRY as clients do (libtpms's self-test of an algorithm on first use). */
async function rcOfCommand(side: DiffSide, bytes: Uint8Array): Promise<string> {
  let rc: number;
  do rc = rcOfResponse(await side.probe.send(bytes));
  while (rc === RC.RETRY);
  return `0x${rc.toString(16)}`;
}

async function answers(side: DiffSide): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [label, [bytes]] of Object.entries(CASES)) out[label] = await rcOfCommand(side, bytes);
  const key = await signingKey(side);
  for (const [label, [make]] of Object.entries(KEY_CASES)) out[label] = await rcOfCommand(side, make(key));
  return out;
}

describeWithSwtpm('interface types: response codes as libtpms', () => {
  const tpms = swtpmAndSimulator();

  it('each refused TPMI value answers the same code on swtpm and the simulator, the one Part 2 names', async () => {
    const { theirs, ours } = await tpms.both(answers);
    const expected: Record<string, string> = {};
    for (const [label, [, rc]] of Object.entries(CASES)) expected[label] = `0x${rc.toString(16)}`;
    for (const [label, [, rc]] of Object.entries(KEY_CASES)) expected[label] = `0x${rc.toString(16)}`;
    expect(ours).toEqual(theirs);
    expect(theirs).toEqual(expected);
  }, 60_000);

  it('a header tag that no TPM_ST names: TPM_RC_BAD_TAG here, TPM_RC_VALUE on libtpms (the divergence row)', async () => {
    const row = divergence('command-tag-not-a-tpm-st');
    const tagged = (tag: number): Buffer => command(TPM_CC.GetRandom, u16(8), [], false, tag);
    const { theirs, ours } = await tpms.both(async (side) => Promise.all([0x8003, 0x00c1, 0x0000].map((tag) => rcOfCommand(side, tagged(tag)))));
    expect(theirs).toEqual(Array(3).fill(`0x${row.libtpms.toString(16)}`));
    expect(ours).toEqual(Array(3).fill(`0x${row.ours.toString(16)}`));
  });
});
