/**
 * Duplicate (Part 3 §13.1) in the simulator. A key known here (imported with
 * a PolicyCommandCode(Duplicate) policy) duplicated to TPM_RH_NULL gives
 * bytes that do not depend on the TPM's seeds: they are compared with
 * swtpm's, plain and inner-wrapped under a given key. The response codes of
 * every refusal (fixedParent, a parent that is not a storage key, key sizes,
 * encryptedDuplication without a wrapper, the DUP role) are compared with
 * swtpm's; duplicates to an RSA SRK are imported under it again and sign what
 * node:crypto verifies.
 */
import { createHash, generateKeyPairSync, randomBytes, sign as nodeSign, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Tpm, password, createPrimary, importDuplicate, importKey, load, sign, verifyWithNode, type LoadedKey } from '../../src/client/index.js';
import { duplicationPolicy } from '../../src/client/duplication.js';
import type { Handle } from '../../src/client/tpm.js';
import { Create, Duplicate, GetCapability, PolicyCommandCode } from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_CAP, TPM_CC, TPM_RH } from '../../src/tpm/constants.js';
import { externalObject, keyFromSensitive, unwrapDuplicate, wrapDuplicate } from '../../src/tpm/duplication.js';
import { TPM_RC, TpmError, rcForHandle, rcForParameter } from '../../src/tpm/rc.js';
import { runCommand } from '../../src/tpm/run.js';
import { eccSrkTemplate, rsaSrkTemplate } from '../../src/tpm/templates.js';
import { TPMA_OBJECT, type TPMT_PUBLIC, type TPMT_SYM_DEF_OBJECT } from '../../src/tpm/types/index.js';
import { describeWithSwtpm } from '../support/swtpm.js';
import { startedEngine, swtpmAndSimulator } from '../support/fixture.js';
import { scenarioLog } from '../support/scenario.js';


const SHA256 = TPM_ALG.SHA256;
const EMPTY = new Uint8Array(0);
const NO_SYM: TPMT_SYM_DEF_OBJECT = { algorithm: TPM_ALG.NULL };
const AES128: TPMT_SYM_DEF_OBJECT = { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB };
/** Fixed once per file: the swtpm and simulator runs import the same key and compare bytes. */
const ECC_KEY: KeyObject = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
const INNER_KEY = new Uint8Array(randomBytes(16));
const DUP_POLICY = duplicationPolicy(SHA256);
const ATTRS = { sign: true, userWithAuth: true } as TPMA_OBJECT;

/** Duplicate under a policy session that ran PolicyCommandCode(code); the raw command, so any parameters go. */
async function duplicate(tpm: Tpm, object: LoadedKey, newParentHandle: Handle, params: { encryptionKeyIn?: Uint8Array; symmetricAlg?: TPMT_SYM_DEF_OBJECT }, code: number = TPM_CC.Duplicate) {
  return tpm.withSession({ type: 'policy', hashAlg: SHA256 }, async (session) => {
    await tpm.run(PolicyCommandCode, { policySession: session }, { code });
    const r = await tpm.run(
      Duplicate,
      { objectHandle: object, newParentHandle },
      { encryptionKeyIn: params.encryptionKeyIn ?? EMPTY, symmetricAlg: params.symmetricAlg ?? NO_SYM },
      { sessions: [session.use({ continueSession: false })] },
    );
    return r.params;
  });
}

async function importAndLoad(tpm: Tpm, srk: LoadedKey, attrs: TPMA_OBJECT, inner: boolean): Promise<LoadedKey> {
  const imported = await importKey(tpm, srk, srk.publicArea, { type: 'ecc', privateKey: ECC_KEY }, { objectAttributes: attrs, authPolicy: DUP_POLICY, innerWrap: inner });
  return load(tpm, srk, { privateBlob: imported.privateArea, publicArea: imported.publicArea });
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** The scenario both TPMs run: outputs that do not depend on the TPM's seeds or RNG, and every response code. */
async function scenario(tpm: Tpm): Promise<Record<string, unknown>> {
  const { log, step } = scenarioLog();
  const code = async (label: string, f: () => Promise<unknown>): Promise<void> => void (await step(label, f));
  const srk = await createPrimary(tpm, TPM_RH.OWNER, rsaSrkTemplate());
  const key = await importAndLoad(tpm, srk, ATTRS, false);
  // To TPM_RH_NULL: u16 ‖ TPMT_SENSITIVE, plain or inner-wrapped under a given key: bytes of this key alone.
  const plain = await duplicate(tpm, key, TPM_RH.NULL, {});
  log['null: duplicate'] = hex(plain.duplicate);
  log['null: outSymSeed'] = hex(plain.outSymSeed);
  log['null: encryptionKeyOut'] = hex(plain.encryptionKeyOut);
  const inner = await duplicate(tpm, key, TPM_RH.NULL, { encryptionKeyIn: INNER_KEY, symmetricAlg: AES128 });
  log['null inner: duplicate'] = hex(inner.duplicate);
  log['null inner: encryptionKeyOut'] = hex(inner.encryptionKeyOut);
  const made = await duplicate(tpm, key, TPM_RH.NULL, { symmetricAlg: { algorithm: TPM_ALG.AES, keyBits: 256, mode: TPM_ALG.CFB } });
  log['null, TPM-made inner key: sizes'] = [made.encryptionKeyOut.length, made.duplicate.length, made.outSymSeed.length];
  // To the SRK: a seed of 256 bytes (RSA-OAEP), and the blob imports under it again.
  const toSrk = await duplicate(tpm, key, srk, { symmetricAlg: AES128 });
  log['srk: sizes'] = [toSrk.encryptionKeyOut.length, toSrk.duplicate.length, toSrk.outSymSeed.length];
  const back = await importDuplicate(tpm, srk, srk.publicArea, {
    objectPublic: key.publicArea,
    duplicate: toSrk.duplicate,
    inSymSeed: toSrk.outSymSeed,
    symmetricAlg: AES128,
    encryptionKey: toSrk.encryptionKeyOut,
  });
  log['srk: imported name'] = hex(back.name);

  await code('encryptionKeyIn without symmetricAlg', () => duplicate(tpm, key, TPM_RH.NULL, { encryptionKeyIn: INNER_KEY }));
  await code('encryptionKeyIn of the wrong size', () => duplicate(tpm, key, TPM_RH.NULL, { encryptionKeyIn: new Uint8Array(32), symmetricAlg: AES128 }));
  await code('new parent is a signing key', () => duplicate(tpm, key, key, {}));
  await code('policy names another command', () => duplicate(tpm, key, TPM_RH.NULL, {}, TPM_CC.Sign));
  await code('password instead of a policy (DUP role)', () =>
    tpm.run(Duplicate, { objectHandle: key, newParentHandle: TPM_RH.NULL }, { encryptionKeyIn: EMPTY, symmetricAlg: NO_SYM }, { sessions: [password()] }),
  );
  await tpm.flush(key.handle);

  // encryptedDuplication: an inner wrapper and a parent are both required.
  const enc = await importAndLoad(tpm, srk, { ...ATTRS, encryptedDuplication: true } as TPMA_OBJECT, true);
  await code('encryptedDuplication without an inner wrapper', () => duplicate(tpm, enc, srk, {}));
  await code('encryptedDuplication to TPM_RH_NULL', () => duplicate(tpm, enc, TPM_RH.NULL, { symmetricAlg: AES128 }));
  await code('encryptedDuplication with both wrappers', () => duplicate(tpm, enc, srk, { symmetricAlg: AES128 }));
  await tpm.flush(enc.handle);

  // fixedParent: never duplicated, whatever the policy.
  const fixed = await tpm.run(
    Create,
    { parentHandle: srk },
    {
      inSensitive: { userAuth: EMPTY, data: EMPTY },
      inPublic: {
        type: TPM_ALG.ECC,
        nameAlg: SHA256,
        objectAttributes: { sign: true, userWithAuth: true, fixedTPM: true, fixedParent: true, sensitiveDataOrigin: true } as TPMA_OBJECT,
        authPolicy: DUP_POLICY,
        parameters: { symmetric: NO_SYM, scheme: { scheme: TPM_ALG.NULL }, curveID: 0x0003, kdf: { scheme: TPM_ALG.NULL } },
        unique: { x: EMPTY, y: EMPTY },
      } as unknown as TPMT_PUBLIC,
      outsideInfo: EMPTY,
      creationPCR: [],
    },
  );
  const fixedKey = await load(tpm, srk, { privateBlob: fixed.params.outPrivate, publicArea: fixed.params.outPublic });
  await code('fixedParent', () => duplicate(tpm, fixedKey, TPM_RH.NULL, {}));
  await tpm.flush(fixedKey.handle);
  await tpm.flush(srk.handle);
  return log;
}

describe('simulator Duplicate', () => {
  it('is listed by GetCapability(COMMANDS)', async () => {
    const { t } = await startedEngine();
    const r = await runCommand(t, GetCapability, {}, { capability: TPM_CAP.COMMANDS, property: TPM_CC.Duplicate, propertyCount: 1 });
    const data = r.params.capabilityData.data as readonly { commandIndex: number }[];
    expect(data[0]?.commandIndex).toBe(TPM_CC.Duplicate);
  });

  it('to TPM_RH_NULL: the plain blob is u16 ‖ TPMT_SENSITIVE of the key imported, which node:crypto signs with', async () => {
    const { tpm } = await startedEngine();
    const srk = await createPrimary(tpm, TPM_RH.OWNER, rsaSrkTemplate());
    const key = await importAndLoad(tpm, srk, ATTRS, false);
    const out = await duplicate(tpm, key, TPM_RH.NULL, {});
    expect(out.outSymSeed.length).toBe(0);
    expect(out.encryptionKeyOut.length).toBe(0);
    const { sensitive } = externalObject({ type: 'ecc', privateKey: ECC_KEY }, { objectAttributes: ATTRS, authPolicy: DUP_POLICY });
    // The core's wrapper without a parent is what the TPM returned, with the authValue padded to 32 zero bytes as the reference does.
    expect(hex(out.duplicate)).toBe(hex(wrapDuplicate(null, key.publicArea, { ...sensitive, authValue: new Uint8Array(32) }).duplicate));
    const opened = unwrapDuplicate(null, srk.publicArea, { objectPublic: key.publicArea, duplicate: out.duplicate, inSymSeed: EMPTY });
    const priv = keyFromSensitive(key.publicArea, opened);
    const message = Buffer.from('signed in software');
    const sig = nodeSign('sha256', message, { key: priv, dsaEncoding: 'ieee-p1363' });
    expect(nodeVerify('sha256', message, { key: ECC_KEY, dsaEncoding: 'ieee-p1363' }, sig)).toBe(true);
  });

  it('to an RSA SRK with a TPM-made inner key: imported under a second SRK-like parent it signs what node:crypto verifies', async () => {
    const { tpm } = await startedEngine();
    const srk = await createPrimary(tpm, TPM_RH.OWNER, rsaSrkTemplate());
    const other = await createPrimary(tpm, TPM_RH.ENDORSEMENT, rsaSrkTemplate());
    const key = await importAndLoad(tpm, srk, ATTRS, false);
    const out = await duplicate(tpm, key, other, { symmetricAlg: AES128 });
    expect(out.outSymSeed.length).toBe(256);
    expect(out.encryptionKeyOut.length).toBe(16);
    await tpm.flush(key.handle);
    // Without the inner key, or under the first SRK, the blob does not open.
    const blob = { objectPublic: key.publicArea, duplicate: out.duplicate, inSymSeed: out.outSymSeed, symmetricAlg: AES128 };
    await expect(importDuplicate(tpm, srk, srk.publicArea, { ...blob, encryptionKey: out.encryptionKeyOut })).rejects.toBeInstanceOf(TpmError);
    await expect(importDuplicate(tpm, other, other.publicArea, { ...blob, encryptionKey: new Uint8Array(16) })).rejects.toBeInstanceOf(TpmError);
    const moved = await importDuplicate(tpm, other, other.publicArea, { ...blob, encryptionKey: out.encryptionKeyOut });
    const loaded = await load(tpm, other, { privateBlob: moved.privateArea, publicArea: moved.publicArea });
    const message = Buffer.from('signed under the new parent');
    const digest = new Uint8Array(createHash('sha256').update(message).digest());
    const sig = await sign(tpm, loaded, digest, { scheme: TPM_ALG.ECDSA, details: { hashAlg: SHA256 } } as never);
    expect(verifyWithNode(loaded.publicArea, message, sig)).toBe(true);
  });

  it('to an ECC SRK (the seed by ECDH, Part 1 §C.6.1): imported there, the key signs what node:crypto verifies', async () => {
    const { tpm } = await startedEngine();
    const srk = await createPrimary(tpm, TPM_RH.OWNER, rsaSrkTemplate());
    const ecc = await createPrimary(tpm, TPM_RH.OWNER, eccSrkTemplate());
    const key = await importAndLoad(tpm, srk, ATTRS, false);
    const out = await duplicate(tpm, key, ecc, {});
    expect(out.outSymSeed.length).toBe(2 + 32 + 2 + 32); // TPMS_ECC_POINT: the ephemeral public key
    await tpm.flush(key.handle);
    const moved = await importDuplicate(tpm, ecc, ecc.publicArea, { objectPublic: key.publicArea, duplicate: out.duplicate, inSymSeed: out.outSymSeed });
    const loaded = await load(tpm, ecc, { privateBlob: moved.privateArea, publicArea: moved.publicArea });
    const message = Buffer.from('moved to an ECC parent');
    const digest = new Uint8Array(createHash('sha256').update(message).digest());
    const sig = await sign(tpm, loaded, digest, { scheme: TPM_ALG.ECDSA, details: { hashAlg: SHA256 } } as never);
    expect(verifyWithNode(loaded.publicArea, message, sig)).toBe(true);
  });

  it('refusals: the codes of the reference (without swtpm too)', async () => {
    const { tpm } = await startedEngine();
    const log = await scenario(tpm);
    expect(log['encryptionKeyIn without symmetricAlg']).toBe(`0x${rcForParameter(TPM_RC.SIZE, 1).toString(16)}`);
    expect(log['encryptionKeyIn of the wrong size']).toBe(`0x${rcForParameter(TPM_RC.SIZE, 1).toString(16)}`);
    expect(log['new parent is a signing key']).toBe(`0x${rcForHandle(TPM_RC.TYPE, 2).toString(16)}`);
    expect(log['encryptedDuplication without an inner wrapper']).toBe(`0x${rcForParameter(TPM_RC.SYMMETRIC, 2).toString(16)}`);
    expect(log['encryptedDuplication to TPM_RH_NULL']).toBe(`0x${rcForHandle(TPM_RC.HIERARCHY, 2).toString(16)}`);
    expect(log['encryptedDuplication with both wrappers']).toBe(0);
    expect(log['fixedParent']).toBe(`0x${rcForHandle(TPM_RC.ATTRIBUTES, 1).toString(16)}`);
    expect(log['null: encryptionKeyOut']).toBe('');
    expect(log['null inner: encryptionKeyOut']).toBe('');
    expect(log['null, TPM-made inner key: sizes']).toEqual([32, expect.any(Number), 0]);
  });
});

describeWithSwtpm('simulator Duplicate agrees with swtpm', () => {
  const tpms = swtpmAndSimulator();

  it('the same duplicates to TPM_RH_NULL byte for byte, the same sizes to the SRK, and the same codes', async () => {
    const { theirs, ours } = await tpms.both((side) => scenario(side.tpm));
    expect(ours).toEqual(theirs);
  });
});
