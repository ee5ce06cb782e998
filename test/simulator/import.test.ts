/**
 * Import (Part 3 §13.3) in the simulator: external RSA, ECC and HMAC keys
 * wrapped in software (the core's wrapExternalKey, what tpm2_import does),
 * with and without the inner wrapper, under RSA and ECC storage parents;
 * loaded and used, the results checked with node:crypto; damaged blobs
 * refused. The codes and outcomes of one scenario are compared with swtpm's.
 */
import { createHash, createHmac, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Tpm, createPrimary, importKey, load, persist, sign, verifyWithNode, type LoadedKey } from '../../src/client/index.js';
import { Import } from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_RH } from '../../src/tpm/constants.js';
import { externalObject, wrapDuplicate, wrapExternalKey, type ExternalKey, type ImportBlob } from '../../src/tpm/duplication.js';
import { TPM_RC, TpmError, rcForParameter } from '../../src/tpm/rc.js';
import { runCommand } from '../../src/tpm/run.js';
import { eccSrkTemplate, rsaSrkTemplate } from '../../src/tpm/templates.js';
import type { Transport } from '../../src/tpm/transport/index.js';
import { TPMA_OBJECT, type TPMT_PUBLIC, type TPMT_SIGNATURE } from '../../src/tpm/types/index.js';
import { TpmEngine } from '../../src/simulator/index.js';
import { divergence } from '../../src/simulator/divergences.js';
import { describeWithSwtpm } from '../support/swtpm.js';
import { startedEngine, swtpmAndSimulator } from '../support/fixture.js';


const SHA256 = TPM_ALG.SHA256;
const MESSAGE = Buffer.from('imported keys sign this');
const DIGEST = new Uint8Array(createHash('sha256').update(MESSAGE).digest());

/** Keys made once per file (RSA generation is the slow part). */
const RSA_KEY: KeyObject = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
const ECC_KEY: KeyObject = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
const HMAC_KEY = new Uint8Array(randomBytes(32));

const KEYS: Record<string, ExternalKey> = {
  rsa: { type: 'rsa', privateKey: RSA_KEY },
  ecc: { type: 'ecc', privateKey: ECC_KEY },
  hmac: { type: 'hmac', key: HMAC_KEY, hashAlg: SHA256 },
};

/** Signs DIGEST with a loaded imported key and checks the result independently (node:crypto). */
async function signsCorrectly(tpm: Tpm, kind: string, key: LoadedKey): Promise<boolean> {
  if (kind === 'hmac') {
    const sig: TPMT_SIGNATURE = await sign(tpm, key, DIGEST);
    if (sig.sigAlg !== TPM_ALG.HMAC) return false;
    const want = createHmac('sha256', HMAC_KEY).update(DIGEST).digest();
    return Buffer.from((sig.signature as { digest: Uint8Array }).digest).equals(want);
  }
  const scheme = kind === 'rsa' ? { scheme: TPM_ALG.RSASSA, details: { hashAlg: SHA256 } } : { scheme: TPM_ALG.ECDSA, details: { hashAlg: SHA256 } };
  const sig = await sign(tpm, key, DIGEST, scheme as never);
  return verifyWithNode(key.publicArea, MESSAGE, sig);
}

function flipped(b: Uint8Array, at: number): Uint8Array {
  const c = b.slice();
  c[at]! ^= 0x01;
  return c;
}

function importRaw(t: Transport, parentHandle: number, blob: ImportBlob) {
  return runCommand(t, Import, { parentHandle }, blob);
}

/** Every import combination, then the damaged blobs; the log holds outcomes and response codes. */
async function scenario(tpm: Tpm, t: Transport): Promise<Record<string, unknown>> {
  const log: Record<string, unknown> = {};
  const code = async (label: string, f: () => Promise<unknown>, same?: (e: TpmError) => string | undefined): Promise<void> => {
    try {
      await f();
      log[label] = 0;
    } catch (e) {
      if (!(e instanceof TpmError)) throw e;
      log[label] = same?.(e) ?? `0x${e.rc.toString(16)}`;
    }
  };
  const parents: [string, TPMT_PUBLIC][] = [
    ['rsa', rsaSrkTemplate()],
    ['ecc', eccSrkTemplate()],
  ];
  for (const [pKind, template] of parents) {
    const parent = await createPrimary(tpm, TPM_RH.OWNER, template);
    for (const [kind, key] of Object.entries(KEYS)) {
      for (const inner of [false, true]) {
        const label = `${kind} under ${pKind}${inner ? ' with inner wrap' : ''}`;
        const authValue = inner ? Uint8Array.of(4, 5, 6) : new Uint8Array(0);
        const imported = await importKey(tpm, parent, parent.publicArea, key, { innerWrap: inner, authValue });
        const loaded = await load(tpm, parent, { privateBlob: imported.privateArea, publicArea: imported.publicArea }, { authValue });
        log[label] = await signsCorrectly(tpm, kind, loaded);
        await tpm.flush(loaded);
      }
    }
    // Damaged or mismatched blobs.
    const blob = wrapExternalKey(parent.publicArea, KEYS['ecc']!, { innerWrap: true });
    const h = parent.handle;
    await code(`${pKind}: untouched`, () => importRaw(t, h, blob));
    await code(`${pKind}: outer HMAC changed`, () => importRaw(t, h, { ...blob, duplicate: flipped(blob.duplicate, 5) }));
    await code(`${pKind}: ciphertext changed`, () => importRaw(t, h, { ...blob, duplicate: flipped(blob.duplicate, blob.duplicate.length - 1) }));
    // Another inner key decrypts the inner integrity's size field to garbage: both TPMs stop at unmarshaling it
    // (TPM_RC_SIZE, or INSUFFICIENT/INTEGRITY when the garbage happens to fit), on parameter 3. These blobs are
    // random per run; the differential suite compares a fixed blob's codes exactly.
    await code(`${pKind}: inner key changed`, () => importRaw(t, h, { ...blob, encryptionKey: flipped(blob.encryptionKey, 0) }), (e) =>
      e.parameter === 3 && (e.is(TPM_RC.SIZE) || e.is(TPM_RC.INSUFFICIENT) || e.is(TPM_RC.INTEGRITY)) ? 'duplicate refused' : undefined,
    );
    await code(`${pKind}: inner key of the wrong size`, () => importRaw(t, h, { ...blob, encryptionKey: blob.encryptionKey.subarray(0, 8) }));
    await code(`${pKind}: another public area`, () =>
      importRaw(t, h, { ...blob, objectPublic: { ...blob.objectPublic, objectAttributes: { ...blob.objectPublic.objectAttributes, noDA: true } } as TPMT_PUBLIC }),
    );
    await code(`${pKind}: fixedTPM object`, () =>
      importRaw(t, h, { ...blob, objectPublic: { ...blob.objectPublic, objectAttributes: { ...blob.objectPublic.objectAttributes, fixedTPM: true, fixedParent: true } } as TPMT_PUBLIC }),
    );
    // A changed OAEP block does not decode: TPM_RC_VALUE on inSymSeed (Part 3 §13.3); libtpms answers otherwise
    // (src/simulator/divergences.ts 'import-seed-undecodable'). Logged raw; the comparison below applies the table.
    if (pKind === 'rsa') {
      log[`${pKind}: seed changed, code`] = await importRaw(t, h, { ...blob, inSymSeed: flipped(blob.inSymSeed, 7) }).then(() => 0, (e: TpmError) => e.rc);
    }
    // A sensitive area of another key under this public area: opens fine, but is not bound to it.
    const mine = externalObject(KEYS['ecc']!);
    const stranger = externalObject({ type: 'ecc', privateKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey });
    await code(`${pKind}: unbound sensitive`, () => importRaw(t, h, wrapDuplicate(parent.publicArea, mine.publicArea, stranger.sensitive, { innerWrap: true })));
    // Import checks the attributes as a Load would: a restricted signer needs a scheme, then it is accepted.
    const restrictedSigner = (scheme: { scheme: number; details?: { hashAlg: number } }) =>
      wrapExternalKey(parent.publicArea, { type: 'ecc', privateKey: ECC_KEY, scheme: scheme as never }, { objectAttributes: TPMA_OBJECT.of({ sign: true, restricted: true, userWithAuth: true }) });
    await code(`${pKind}: restricted signer without a scheme`, () => importRaw(t, h, restrictedSigner({ scheme: TPM_ALG.NULL })));
    await code(`${pKind}: restricted signer`, () => importRaw(t, h, restrictedSigner({ scheme: TPM_ALG.ECDSA, details: { hashAlg: SHA256 } })));
    const plain = wrapExternalKey(parent.publicArea, KEYS['hmac']!, {});
    await code(`${pKind}: no inner wrap but a key`, () => importRaw(t, h, { ...plain, encryptionKey: new Uint8Array(16) }));
    await code(`${pKind}: not a storage parent`, async () => {
      const signer = await createPrimary(tpm, TPM_RH.NULL, { ...template, objectAttributes: { ...template.objectAttributes, restricted: false, decrypt: false, sign: true }, parameters: { ...(template.parameters as object), symmetric: { algorithm: TPM_ALG.NULL } } } as TPMT_PUBLIC).catch(() => undefined);
      if (signer === undefined) throw new Error('could not make a signing key');
      try {
        await importRaw(t, signer.handle, blob);
      } finally {
        await tpm.flush(signer);
      }
    });
    await tpm.flush(parent);
  }
  // A blob made for one parent, imported under another parent of the same kind.
  const a = await createPrimary(tpm, TPM_RH.OWNER, eccSrkTemplate());
  const b = await createPrimary(tpm, TPM_RH.ENDORSEMENT, eccSrkTemplate());
  await code('blob of another ECC parent', () => importRaw(t, b.handle, wrapExternalKey(a.publicArea, KEYS['hmac']!, {})));
  await tpm.flush(a);
  await tpm.flush(b);
  return log;
}

describe('simulator Import', () => {
  it('imports RSA, ECC and HMAC keys with and without an inner wrapper under RSA and ECC parents; the keys sign correctly', async () => {
    const { tpm, t } = await startedEngine();
    const log = await scenario(tpm, t);
    for (const [pKind] of [['rsa'], ['ecc']]) {
      for (const kind of Object.keys(KEYS)) {
        expect(log[`${kind} under ${pKind}`]).toBe(true);
        expect(log[`${kind} under ${pKind} with inner wrap`]).toBe(true);
      }
      const at = (base: number, p: number): string => `0x${rcForParameter(base, p).toString(16)}`;
      expect(log[`${pKind}: untouched`]).toBe(0);
      expect(log[`${pKind}: outer HMAC changed`]).toBe(at(TPM_RC.INTEGRITY, 3));
      expect(log[`${pKind}: ciphertext changed`]).toBe(at(TPM_RC.INTEGRITY, 3));
      expect(log[`${pKind}: inner key changed`]).toBe('duplicate refused');
      expect(log[`${pKind}: another public area`]).toBe(at(TPM_RC.INTEGRITY, 3));
      expect(log[`${pKind}: fixedTPM object`]).toBe(at(TPM_RC.ATTRIBUTES, 2));
    }
    expect(log['rsa: seed changed, code']).toBe(rcForParameter(TPM_RC.VALUE, 4));
    expect(log['rsa: seed changed, code']).toBe(divergence('import-seed-undecodable').ours);
    expect(log['blob of another ECC parent']).toBe(`0x${rcForParameter(TPM_RC.INTEGRITY, 3).toString(16)}`);
  });

  it('an imported key made persistent is usable from its persistent handle after a restart', async () => {
    const { engine, tpm } = await startedEngine();
    const srk = await createPrimary(tpm, TPM_RH.OWNER, eccSrkTemplate());
    const imported = await importKey(tpm, srk, srk.publicArea, KEYS['rsa']!, { innerWrap: true });
    const loaded = await load(tpm, srk, { privateBlob: imported.privateArea, publicArea: imported.publicArea });
    const p = await persist(tpm, loaded, 0x81000042);
    const again = await startedEngine(new TpmEngine({ state: engine.state }));
    expect(await signsCorrectly(again.tpm, 'rsa', { ...p, handle: 0x81000042 })).toBe(true);
  });
});

describeWithSwtpm('simulator Import agrees with swtpm', () => {
  const tpms = swtpmAndSimulator();

  it('the same imports and damaged blobs give the same outcomes and codes', async () => {
    const { theirs: expected, ours: got } = await tpms.both((side) => scenario(side.tpm, side.probe));
    // The one known difference (src/simulator/divergences.ts): an undecodable OAEP seed.
    const row = divergence('import-seed-undecodable');
    expect([expected['rsa: seed changed, code'], got['rsa: seed changed, code']]).toEqual([row.libtpms, row.ours]);
    expect(got).toEqual({ ...expected, 'rsa: seed changed, code': row.ours });
  });
});
