/**
 * Rewrap (Part 3 §13.2) on the simulator and on swtpm: one scenario logged
 * on both with scenarioLog and compared whole. A key known here (imported
 * with a PolicyCommandCode(Duplicate) policy) is duplicated to an ECC
 * storage key and to TPM_RH_NULL; what Rewrap makes of those blobs without a
 * new outer wrapper does not depend on the TPM's seeds, so it is compared
 * byte for byte (and with the Duplicate to TPM_RH_NULL); blobs rewrapped to
 * the RSA SRK are imported there on each TPM and sign what node:crypto
 * verifies. Every refusal (seed without an old parent and the reverse,
 * parents that are not storage keys, a wrong seed, Name, blob or password,
 * short and oversized blobs) gives the same code on both.
 */
import { createHash, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createPrimary, duplicateKey, importDuplicate, importKey, load, password, sign, verifyWithNode, type LoadedKey, type Tpm } from '../../src/client/index.js';
import { duplicationPolicy } from '../../src/client/duplication.js';
import type { Handle } from '../../src/client/tpm.js';
import { Rewrap } from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_RH } from '../../src/tpm/constants.js';
import { TPM_PROFILES } from '../../src/simulator/profiles.js';
import { TPM_RC, rcForHandle, rcForParameter } from '../../src/tpm/rc.js';
import { eccSrkTemplate, rsaSrkTemplate } from '../../src/tpm/templates.js';
import type { TPMA_OBJECT, TPMT_SYM_DEF_OBJECT } from '../../src/tpm/types/index.js';
import { tpmRejection } from '../support/probe.js';
import { scenarioLog, type ScenarioLog } from '../support/scenario.js';
import { startSide } from '../support/differential.js';
import { describeWithSwtpm } from '../support/swtpm.js';
import { swtpmAndSimulator } from '../support/fixture.js';

const SHA256 = TPM_ALG.SHA256;
const EMPTY = new Uint8Array(0);
const AES128: TPMT_SYM_DEF_OBJECT = { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB };
/** Fixed once per file: both TPMs import the same key, so blobs without an outer wrapper are the same bytes. */
const ECC_KEY: KeyObject = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
const INNER_KEY = new Uint8Array(randomBytes(16));
const ATTRS = { sign: true, userWithAuth: true } as TPMA_OBJECT;
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

async function rewrap(tpm: Tpm, oldParent: Handle, newParent: Handle, params: { inDuplicate: Uint8Array; name: Uint8Array; inSymSeed: Uint8Array }, oldAuth?: Uint8Array) {
  const r = await tpm.run(Rewrap, { oldParent, newParent }, params, oldAuth === undefined ? {} : { sessions: [password(oldAuth)] });
  return r.params;
}

/** Imports the rewrapped blob under `parent`, loads it and signs: true when node:crypto verifies the signature. */
async function importAndSign(tpm: Tpm, parent: LoadedKey, key: LoadedKey, blob: { duplicate: Uint8Array; inSymSeed: Uint8Array }, inner: boolean): Promise<boolean> {
  const moved = await importDuplicate(tpm, parent, parent.publicArea, {
    objectPublic: key.publicArea,
    duplicate: blob.duplicate,
    inSymSeed: blob.inSymSeed,
    ...(inner ? { symmetricAlg: AES128, encryptionKey: INNER_KEY } : {}),
  });
  const loaded = await load(tpm, parent, { privateBlob: moved.privateArea, publicArea: moved.publicArea });
  try {
    const message = Buffer.from('rewrapped');
    const sig = await sign(tpm, loaded, new Uint8Array(createHash('sha256').update(message).digest()), { scheme: TPM_ALG.ECDSA, details: { hashAlg: SHA256 } } as never);
    return verifyWithNode(loaded.publicArea, message, sig);
  } finally {
    await tpm.flush(loaded.handle);
  }
}

/** The scenario both TPMs run (three object slots: the RSA SRK, the ECC storage key, and the key or its import). */
async function scenario(tpm: Tpm): Promise<ScenarioLog> {
  const log = scenarioLog();
  const srk = await createPrimary(tpm, TPM_RH.OWNER, rsaSrkTemplate());
  const old = await createPrimary(tpm, TPM_RH.OWNER, eccSrkTemplate());
  const imported = await importKey(tpm, srk, srk.publicArea, { type: 'ecc', privateKey: ECC_KEY }, { objectAttributes: ATTRS, authPolicy: duplicationPolicy(SHA256) });
  const key = await load(tpm, srk, { privateBlob: imported.privateArea, publicArea: imported.publicArea });
  const name = key.name;
  const toNull = await duplicateKey(tpm, key, key.publicArea, TPM_RH.NULL);
  const toOld = await duplicateKey(tpm, key, key.publicArea, old);
  const toOldInner = await duplicateKey(tpm, key, key.publicArea, old, { innerWrap: { encryptionKey: INNER_KEY } });
  log.log['Duplicate to NULL'] = hex(toNull.duplicate);

  // Refusals that need a non-storage object loaded: the key itself.
  await log.step('oldParent is a signing key', () => rewrap(tpm, key, srk, { inDuplicate: toOld.duplicate, name, inSymSeed: toOld.inSymSeed }));
  await log.step('newParent is a signing key', () => rewrap(tpm, old, key, { inDuplicate: toOld.duplicate, name, inSymSeed: toOld.inSymSeed }));
  await tpm.flush(key.handle);

  // Without a new outer wrapper: bytes of this key alone.
  await log.step('NULL → NULL', () => rewrap(tpm, TPM_RH.NULL, TPM_RH.NULL, { inDuplicate: toNull.duplicate, name, inSymSeed: EMPTY }), (r) => [hex(r.outDuplicate), hex(r.outSymSeed)]);
  await log.step('ECC key → NULL', () => rewrap(tpm, old, TPM_RH.NULL, { inDuplicate: toOld.duplicate, name, inSymSeed: toOld.inSymSeed }), (r) => [hex(r.outDuplicate), hex(r.outSymSeed)]);
  await log.step('ECC key → NULL, inner-wrapped', () => rewrap(tpm, old, TPM_RH.NULL, { inDuplicate: toOldInner.duplicate, name, inSymSeed: toOldInner.inSymSeed }), (r) => hex(r.outDuplicate));

  // To the RSA SRK: a fresh seed (256 bytes, RSA-OAEP); Import there opens it.
  const moved = await log.step('ECC key → SRK', () => rewrap(tpm, old, srk, { inDuplicate: toOld.duplicate, name, inSymSeed: toOld.inSymSeed }), (r) => [r.outDuplicate.length, r.outSymSeed.length]);
  if (moved !== undefined) await log.step('ECC key → SRK: imported, signs', () => importAndSign(tpm, srk, key, { duplicate: moved.outDuplicate, inSymSeed: moved.outSymSeed }, false), (ok) => ok);
  const movedInner = await log.step('ECC key → SRK, inner-wrapped', () => rewrap(tpm, old, srk, { inDuplicate: toOldInner.duplicate, name, inSymSeed: toOldInner.inSymSeed }), (r) => r.outSymSeed.length);
  if (movedInner !== undefined) {
    await log.step('inner-wrapped: imported with the inner key, signs', () => importAndSign(tpm, srk, key, { duplicate: movedInner.outDuplicate, inSymSeed: movedInner.outSymSeed }, true), (ok) => ok);
  }
  const fromNull = await log.step('NULL → SRK', () => rewrap(tpm, TPM_RH.NULL, srk, { inDuplicate: toNull.duplicate, name, inSymSeed: EMPTY }), (r) => [r.outDuplicate.length, r.outSymSeed.length]);
  if (fromNull !== undefined) await log.step('NULL → SRK: imported, signs', () => importAndSign(tpm, srk, key, { duplicate: fromNull.outDuplicate, inSymSeed: fromNull.outSymSeed }, false), (ok) => ok);
  // And back: SRK → ECC key → NULL gives the plain blob again.
  if (moved !== undefined) {
    const back = await log.step('SRK → ECC key', () => rewrap(tpm, srk, old, { inDuplicate: moved.outDuplicate, name, inSymSeed: moved.outSymSeed }), (r) => r.outSymSeed.length);
    if (back !== undefined) await log.step('… → NULL', () => rewrap(tpm, old, TPM_RH.NULL, { inDuplicate: back.outDuplicate, name, inSymSeed: back.outSymSeed }), (r) => hex(r.outDuplicate));
  }

  // Refusals, in the reference's order.
  const good = { inDuplicate: toOld.duplicate, name, inSymSeed: toOld.inSymSeed };
  await log.step('oldParent NULL with a seed', () => rewrap(tpm, TPM_RH.NULL, srk, { ...good, inDuplicate: toNull.duplicate }));
  await log.step('oldParent NULL with a seed, newParent NULL', () => rewrap(tpm, TPM_RH.NULL, TPM_RH.NULL, { ...good, inDuplicate: toNull.duplicate }));
  await log.step('oldParent without a seed', () => rewrap(tpm, old, srk, { ...good, inSymSeed: EMPTY }));
  await log.step('a seed for another parent', () => rewrap(tpm, srk, TPM_RH.NULL, good));
  await log.step('a seed that is no point', () => rewrap(tpm, old, TPM_RH.NULL, { ...good, inSymSeed: new Uint8Array(randomBytes(68)) }));
  await log.step('another Name', () => rewrap(tpm, old, TPM_RH.NULL, { ...good, name: srk.name }));
  const tampered = good.inDuplicate.slice();
  tampered[tampered.length - 1]! ^= 1;
  await log.step('a changed blob', () => rewrap(tpm, old, TPM_RH.NULL, { ...good, inDuplicate: tampered }));
  await log.step('a 1-byte blob', () => rewrap(tpm, old, TPM_RH.NULL, { ...good, inDuplicate: Uint8Array.of(0) }));
  await log.step('an empty blob', () => rewrap(tpm, old, TPM_RH.NULL, { ...good, inDuplicate: EMPTY }));
  const oversized = new Uint8Array(100);
  oversized[0] = 0;
  oversized[1] = 65; // an integrity larger than any digest
  await log.step('an integrity of 65 bytes', () => rewrap(tpm, old, TPM_RH.NULL, { ...good, inDuplicate: oversized }));
  await log.step('an integrity of 65 bytes in a 10-byte blob', () => rewrap(tpm, old, TPM_RH.NULL, { ...good, inDuplicate: oversized.subarray(0, 10) }));
  await log.step('an integrity of 32 bytes in a 10-byte blob', () => rewrap(tpm, old, TPM_RH.NULL, { ...good, inDuplicate: Uint8Array.of(0, 32, 1, 2, 3, 4, 5, 6, 7, 8) }));
  await log.step('a wrong password for oldParent', () => rewrap(tpm, old, TPM_RH.NULL, good, Uint8Array.of(1, 2, 3)));
  await tpm.flush(old.handle);
  await tpm.flush(srk.handle);
  return log;
}

const rc = (code: number): string => `0x${code.toString(16)}`;

describe('simulator Rewrap', () => {
  it('moves the outer wrapper (the imports sign), leaves the inner one, and refuses with the reference codes', async () => {
    const side = await startSide('simulator');
    const tpm = side.tpm;
    try {
      const { log } = await scenario(tpm);
      const [plain, seed] = log['NULL → NULL'] as [string, string];
      expect(plain).toBe(log['Duplicate to NULL']);
      expect(seed).toBe('');
      expect(log['ECC key → NULL']).toEqual([log['Duplicate to NULL'], '']);
      expect(log['… → NULL']).toBe(log['Duplicate to NULL']);
      expect(log['ECC key → SRK']).toEqual([expect.any(Number), 256]);
      expect(log['ECC key → SRK: imported, signs']).toBe(true);
      expect(log['inner-wrapped: imported with the inner key, signs']).toBe(true);
      expect(log['NULL → SRK: imported, signs']).toBe(true);
      expect(log['oldParent NULL with a seed']).toBe(rc(rcForHandle(TPM_RC.HANDLE, 1)));
      expect(log['oldParent without a seed']).toBe(rc(rcForHandle(TPM_RC.HANDLE, 1)));
      expect(log['oldParent is a signing key']).toBe(rc(rcForHandle(TPM_RC.TYPE, 1)));
      expect(log['newParent is a signing key']).toBe(rc(rcForHandle(TPM_RC.TYPE, 2)));
      expect(log['a seed for another parent']).toBe(rc(rcForParameter(TPM_RC.VALUE, 3)));
      expect(log['another Name']).toBe(rc(rcForParameter(TPM_RC.INTEGRITY, 1)));
      expect(log['a changed blob']).toBe(rc(rcForParameter(TPM_RC.INTEGRITY, 1)));
      // No room for a new integrity after a blob that had no outer wrapper: this TPM's TPM2B_PRIVATE holds libtpms's
      // 1,230 bytes (RSA up to 3072 bits; the core parses up to 1,550). The differential suite compares it with swtpm.
      const SIZEOF_PRIVATE = TPM_PROFILES.libtpms.limits.privateSize;
      const srk = await createPrimary(tpm, TPM_RH.OWNER, rsaSrkTemplate());
      const full = new Uint8Array(SIZEOF_PRIVATE - 30);
      const e = await tpmRejection(rewrap(tpm, TPM_RH.NULL, srk, { inDuplicate: full, name: srk.name, inSymSeed: EMPTY }));
      expect(e.rc).toBe(rcForParameter(TPM_RC.VALUE, 1));
      const fits = await rewrap(tpm, TPM_RH.NULL, srk, { inDuplicate: full.subarray(0, SIZEOF_PRIVATE - 34), name: srk.name, inSymSeed: EMPTY });
      expect(fits.outDuplicate.length).toBe(SIZEOF_PRIVATE);
    } finally {
      await side.stop();
    }
  });
});

describeWithSwtpm('simulator Rewrap agrees with swtpm', () => {
  const tpms = swtpmAndSimulator();

  it('the same bytes without a new outer wrapper, the same sizes and imports with one, and the same codes', async () => {
    const { theirs: expected, ours: got } = await tpms.both((side) => scenario(side.tpm));
    expect(got.log).toEqual(expected.log);
  });
});
