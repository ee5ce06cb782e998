/**
 * The software TPM's symmetric primitives (Part 3 §15): EncryptDecrypt(2)
 * checked against node:crypto's AES and, byte for byte and code for code,
 * against swtpm holding the same key; Hash and HMAC against node:crypto,
 * with their tickets recomputed from the hierarchy proof. Keys come from
 * CreatePrimary with the caller's key bits.
 */
import { createCipheriv, createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { aesKeyTemplate, createPrimary, hmacKeyTemplate } from '../../src/client/index.js';
import { CreatePrimary, EncryptDecrypt, EncryptDecrypt2, FlushContext, Hash, HMAC } from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_RH, TPM_ST } from '../../src/tpm/constants.js';
import { TPM_RC, TpmError, rcForHandle, rcForParameter } from '../../src/tpm/rc.js';
import { runCommand } from '../../src/tpm/run.js';
import type { Transport } from '../../src/tpm/transport/index.js';
import type { TPMT_PUBLIC } from '../../src/tpm/types/index.js';
import { describeWithSwtpm } from '../support/swtpm.js';
import { startedEngine, swtpmAndSimulator } from '../support/fixture.js';


const bytes = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 29 + seed * 7 + 3) & 0xff);
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** A symmetric key with caller-chosen bits (sensitiveDataOrigin clear), sign and decrypt unless told otherwise. */
function aesTemplate(keyBits: 128 | 192 | 256, mode: number, attributes: Record<string, boolean> = {}): TPMT_PUBLIC {
  return aesKeyTemplate({ keyBits, mode: mode as never, attributes: { sensitiveDataOrigin: false, noDA: true, ...attributes } });
}

/** A primary symmetric key with the caller's key bits (CreatePrimary, owner hierarchy). */
async function createSymKey(t: Transport, template: TPMT_PUBLIC, key: Uint8Array): Promise<number> {
  const r = await runCommand(
    t,
    CreatePrimary,
    { primaryHandle: TPM_RH.OWNER },
    { inSensitive: { userAuth: new Uint8Array(0), data: key }, inPublic: template, outsideInfo: new Uint8Array(0), creationPCR: [] },
  );
  return r.handles.objectHandle;
}

type Outcome = { rc: number } | { out: string; iv: string };

async function attempt(f: () => Promise<{ outData: Uint8Array; ivOut: Uint8Array }>): Promise<Outcome> {
  try {
    const r = await f();
    return { out: hex(r.outData), iv: hex(r.ivOut) };
  } catch (e) {
    if (e instanceof TpmError) return { rc: e.rc };
    throw e;
  }
}

function ed(t: Transport, keyHandle: number, decrypt: boolean, mode: number, ivIn: Uint8Array, inData: Uint8Array, two = false): Promise<Outcome> {
  return attempt(async () => {
    const r = two
      ? await runCommand(t, EncryptDecrypt2, { keyHandle }, { inData, decrypt: decrypt ? 1 : 0, mode: mode as never, ivIn })
      : await runCommand(t, EncryptDecrypt, { keyHandle }, { decrypt: decrypt ? 1 : 0, mode: mode as never, ivIn, inData });
    return r.params;
  });
}

const NODE_MODE: Record<number, string> = { [TPM_ALG.CFB]: 'cfb', [TPM_ALG.CBC]: 'cbc', [TPM_ALG.ECB]: 'ecb', [TPM_ALG.OFB]: 'ofb', [TPM_ALG.CTR]: 'ctr' };

function nodeAes(key: Uint8Array, mode: number, iv: Uint8Array, data: Uint8Array): Uint8Array {
  const c = createCipheriv(`aes-${key.length * 8}-${NODE_MODE[mode]}`, key, mode === TPM_ALG.ECB ? null : iv);
  c.setAutoPadding(false);
  return new Uint8Array(Buffer.concat([c.update(data), c.final()]));
}

describe('simulator EncryptDecrypt', () => {
  it('encrypts like node:crypto in every mode and key size and decrypts back, through both commands', async () => {
    const { t } = await startedEngine();
    // AES-192 is no key size here, as on libtpms (algorithms.test.ts, the differential suite).
    for (const keyBits of [128, 256] as const) {
      const key = bytes(keyBits / 8, keyBits);
      const h = await createSymKey(t, aesTemplate(keyBits, TPM_ALG.NULL), key);
      for (const mode of [TPM_ALG.CFB, TPM_ALG.CBC, TPM_ALG.ECB, TPM_ALG.OFB, TPM_ALG.CTR]) {
        const iv = mode === TPM_ALG.ECB ? new Uint8Array(0) : bytes(16, mode);
        const data = bytes(mode === TPM_ALG.CBC || mode === TPM_ALG.ECB ? 64 : 61, 5);
        const want = nodeAes(key, mode, iv, data);
        for (const two of [false, true]) {
          const enc = await ed(t, h, false, mode, iv, data, two);
          expect(enc, `AES-${keyBits} mode 0x${mode.toString(16)}`).toMatchObject({ out: hex(want) });
          const dec = await ed(t, h, true, mode, iv, want, two);
          expect(dec).toMatchObject({ out: hex(data) });
        }
      }
      await runCommand(t, FlushContext, {}, { flushHandle: h });
    }
  });

  it('returns the chaining value: whole-block chunks continue exactly where one call would', async () => {
    const { t } = await startedEngine();
    const key = bytes(16, 1);
    const h = await createSymKey(t, aesTemplate(128, TPM_ALG.NULL), key);
    const data = bytes(96, 2);
    for (const mode of [TPM_ALG.CFB, TPM_ALG.CBC, TPM_ALG.OFB, TPM_ALG.CTR]) {
      const iv = bytes(16, 3);
      const first = (await ed(t, h, false, mode, iv, data.subarray(0, 48))) as { out: string; iv: string };
      const second = (await ed(t, h, false, mode, Buffer.from(first.iv, 'hex'), data.subarray(48))) as { out: string; iv: string };
      expect(first.out + second.out).toBe(hex(nodeAes(key, mode, iv, data)));
    }
    // CTR's chaining value is the next counter, carried across bytes.
    const ctrIv = Uint8Array.from([...new Uint8Array(14), 0x00, 0xff]);
    const r = (await ed(t, h, false, TPM_ALG.CTR, ctrIv, bytes(33, 4))) as { iv: string };
    expect(r.iv).toBe('00000000000000000000000000000102');
  });

  it('checks attributes, modes and sizes with the codes of Part 3 §15.2', async () => {
    const { t } = await startedEngine();
    const key = bytes(16, 9);
    const any = await createSymKey(t, aesTemplate(128, TPM_ALG.NULL), key);
    const cfb = await createSymKey(t, aesTemplate(128, TPM_ALG.CFB), key);
    const iv = new Uint8Array(16);
    const d16 = bytes(16, 1);
    // The mode must be given when the key has none (parameter 2; EncryptDecrypt2: parameter 3).
    expect(await ed(t, any, false, TPM_ALG.NULL, iv, d16)).toEqual({ rc: rcForParameter(TPM_RC.MODE, 2) });
    expect(await ed(t, any, false, TPM_ALG.NULL, iv, d16, true)).toEqual({ rc: rcForParameter(TPM_RC.MODE, 3) });
    // A key with a mode takes only that one.
    expect(await ed(t, cfb, false, TPM_ALG.CBC, iv, d16)).toEqual({ rc: rcForParameter(TPM_RC.MODE, 2) });
    expect(await ed(t, cfb, false, TPM_ALG.NULL, iv, d16)).toMatchObject({ out: hex(nodeAes(key, TPM_ALG.CFB, iv, d16)) });
    // IV: one block, or empty for ECB (parameter 3; EncryptDecrypt2: 4).
    expect(await ed(t, any, false, TPM_ALG.CBC, new Uint8Array(8), d16)).toEqual({ rc: rcForParameter(TPM_RC.SIZE, 3) });
    expect(await ed(t, any, false, TPM_ALG.ECB, iv, d16, true)).toEqual({ rc: rcForParameter(TPM_RC.SIZE, 4) });
    // CBC and ECB work on whole blocks (parameter 4; EncryptDecrypt2: 1).
    expect(await ed(t, any, false, TPM_ALG.CBC, iv, bytes(17, 1))).toEqual({ rc: rcForParameter(TPM_RC.SIZE, 4) });
    expect(await ed(t, any, true, TPM_ALG.ECB, new Uint8Array(0), bytes(15, 1), true)).toEqual({ rc: rcForParameter(TPM_RC.SIZE, 1) });
    await runCommand(t, FlushContext, {}, { flushHandle: cfb });
    // Encryption needs `sign`, decryption `decrypt` (TPM_RC_ATTRIBUTES on the key handle).
    const decOnly = await createSymKey(t, aesTemplate(128, TPM_ALG.NULL, { sign: false }), key);
    expect(await ed(t, decOnly, false, TPM_ALG.CFB, iv, d16)).toEqual({ rc: rcForHandle(TPM_RC.ATTRIBUTES, 1) });
    expect(await ed(t, decOnly, true, TPM_ALG.CFB, iv, d16)).toMatchObject({ iv: hex(d16) });
    await runCommand(t, FlushContext, {}, { flushHandle: decOnly });
    const encOnly = await createSymKey(t, aesTemplate(128, TPM_ALG.NULL, { decrypt: false }), key);
    expect(await ed(t, encOnly, true, TPM_ALG.CFB, iv, d16)).toEqual({ rc: rcForHandle(TPM_RC.ATTRIBUTES, 1) });
  });

  it('uses a key made by CreatePrimary from the caller\'s key bits (decrypt-only key)', async () => {
    const { t } = await startedEngine();
    const key = bytes(32, 77);
    const r = await runCommand(
      t,
      CreatePrimary,
      { primaryHandle: TPM_RH.OWNER },
      { inSensitive: { userAuth: new Uint8Array(0), data: key }, inPublic: aesTemplate(256, TPM_ALG.CBC, { sign: false }), outsideInfo: new Uint8Array(0), creationPCR: [] },
    );
    const h = r.handles.objectHandle;
    const iv = bytes(16, 8);
    const cipher = nodeAes(key, TPM_ALG.CBC, iv, bytes(48, 6));
    expect(await ed(t, h, true, TPM_ALG.NULL, iv, cipher)).toEqual({ out: hex(bytes(48, 6)), iv: hex(cipher.subarray(32)) });
    // Not a symmetric key: TPM_RC_KEY on the handle.
    const hmacKey = await runCommand(
      t,
      CreatePrimary,
      { primaryHandle: TPM_RH.OWNER },
      { inSensitive: { userAuth: new Uint8Array(0), data: bytes(32, 1) }, inPublic: hmacKeyTemplate({ attributes: { sensitiveDataOrigin: false } }), outsideInfo: new Uint8Array(0), creationPCR: [] },
    );
    expect(await ed(t, hmacKey.handles.objectHandle, false, TPM_ALG.CFB, iv, bytes(16, 1))).toEqual({ rc: rcForHandle(TPM_RC.KEY, 1) });
  });
});

describe('simulator Hash and HMAC', () => {
  it('Hash: digests like node:crypto; a ticket under the hierarchy proof, NULL tickets where Part 3 §15.4 says', async () => {
    const { engine, t } = await startedEngine();
    const data = bytes(200, 3);
    for (const [alg, name] of [[TPM_ALG.SHA1, 'sha1'], [TPM_ALG.SHA256, 'sha256'], [TPM_ALG.SHA384, 'sha384'], [TPM_ALG.SHA512, 'sha512']] as const) {
      const r = await runCommand(t, Hash, {}, { data, hashAlg: alg, hierarchy: TPM_RH.OWNER });
      const digest = createHash(name).update(data).digest();
      expect(hex(r.params.outHash)).toBe(digest.toString('hex'));
      const v = r.params.validation;
      expect(v.tag).toBe(TPM_ST.HASHCHECK);
      expect(v.hierarchy).toBe(TPM_RH.OWNER);
      const ticket = createHmac('sha512', engine.state.proofs.owner).update(Uint8Array.of(0x80, 0x24, alg >> 8, alg & 0xff)).update(digest).digest();
      expect(hex(v.digest)).toBe(ticket.toString('hex'));
    }
    // Data that starts with TPM_GENERATED_VALUE could be a forged attestation: no ticket.
    const generated = Uint8Array.from([0xff, 0x54, 0x43, 0x47, 1, 2, 3]);
    const g = await runCommand(t, Hash, {}, { data: generated, hashAlg: TPM_ALG.SHA256, hierarchy: TPM_RH.ENDORSEMENT });
    expect(g.params.validation).toEqual({ tag: TPM_ST.HASHCHECK, hierarchy: TPM_RH.NULL, digest: new Uint8Array(0) });
    const n = await runCommand(t, Hash, {}, { data, hashAlg: TPM_ALG.SHA256, hierarchy: TPM_RH.NULL });
    expect(n.params.validation).toEqual({ tag: TPM_ST.HASHCHECK, hierarchy: TPM_RH.NULL, digest: new Uint8Array(0) });
    // Fewer than four bytes cannot hold the marker: a ticket.
    const s = await runCommand(t, Hash, {}, { data: Uint8Array.of(0xff, 0x54), hashAlg: TPM_ALG.SHA256, hierarchy: TPM_RH.ENDORSEMENT });
    expect(s.params.validation.digest.length).toBe(64);
  });

  it('HMAC: node:crypto\'s HMAC with the key bits; scheme hash vs the caller\'s hash; key checks', async () => {
    const { t } = await startedEngine();
    const keyBits = bytes(32, 4);
    const keyed = (hashAlg: number, attributes: Record<string, boolean> = {}): Promise<number> =>
      runCommand(
        t,
        CreatePrimary,
        { primaryHandle: TPM_RH.OWNER },
        {
          inSensitive: { userAuth: new Uint8Array(0), data: keyBits },
          inPublic: hmacKeyTemplate({ hashAlg: hashAlg as never, attributes: { sensitiveDataOrigin: false, ...attributes } }),
          outsideInfo: new Uint8Array(0),
          creationPCR: [],
        },
      ).then((r) => r.handles.objectHandle);
    const k = await keyed(TPM_ALG.SHA384);
    const buffer = bytes(300, 2);
    const want = createHmac('sha384', keyBits).update(buffer).digest('hex');
    expect(hex((await runCommand(t, HMAC, { handle: k }, { buffer, hashAlg: TPM_ALG.NULL })).params.outHMAC)).toBe(want);
    expect(hex((await runCommand(t, HMAC, { handle: k }, { buffer, hashAlg: TPM_ALG.SHA384 })).params.outHMAC)).toBe(want);
    // Another hash than the key's scheme: TPM_RC_VALUE on hashAlg (parameter 2).
    await expect(runCommand(t, HMAC, { handle: k }, { buffer, hashAlg: TPM_ALG.SHA256 })).rejects.toMatchObject({ rc: rcForParameter(TPM_RC.VALUE, 2) });
  });
});

describeWithSwtpm('simulator EncryptDecrypt agrees with swtpm', () => {
  const tpms = swtpmAndSimulator();

  /** Every mode, partial blocks, chaining, and the error cases, on one TPM. */
  async function scenario(t: Transport, h: number): Promise<Outcome[]> {
    const out: Outcome[] = [];
    for (const mode of [TPM_ALG.CFB, TPM_ALG.CBC, TPM_ALG.ECB, TPM_ALG.OFB, TPM_ALG.CTR, TPM_ALG.NULL]) {
      for (const size of [0, 1, 15, 16, 17, 33, 64, 1024]) {
        for (const decrypt of [false, true]) {
          const iv = mode === TPM_ALG.ECB ? new Uint8Array(0) : bytes(16, size + mode);
          out.push(await ed(t, h, decrypt, mode, iv, bytes(size, size), size % 2 === 1));
        }
      }
    }
    // Chaining through a partial block's ivOut.
    let iv = bytes(16, 1);
    for (const size of [5, 16, 7, 32]) {
      const r = await ed(t, h, false, TPM_ALG.CFB, iv, bytes(size, 9));
      out.push(r);
      if ('iv' in r) iv = Buffer.from(r.iv, 'hex');
    }
    for (const ivLen of [0, 8, 15]) out.push(await ed(t, h, false, TPM_ALG.CFB, new Uint8Array(ivLen), bytes(16, 1)));
    out.push(await ed(t, h, false, TPM_ALG.ECB, new Uint8Array(16), bytes(16, 1)));
    return out;
  }

  it('the same key bits (CreatePrimary on both) give the same bytes, IVs and codes', async () => {
    const key = bytes(16, 42);
    const swTpm = tpms.swtpm.tpm;
    const template = aesTemplate(128, TPM_ALG.NULL);
    const swKey = await createPrimary(swTpm, TPM_RH.OWNER, template, { sensitiveData: key });
    const expected = await scenario(tpms.swtpm.probe, swKey.handle);
    await swTpm.flush(swKey);
    const { probe: t } = await tpms.simulator();
    expect(await scenario(t, await createSymKey(t, template, key))).toEqual(expected);
  });
});
