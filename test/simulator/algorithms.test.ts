/**
 * TestParms (Part 3 §30.3) and the algorithm capabilities come from one table
 * (src/simulator/algorithms.ts): every algorithm GetCapability(ALGS) lists and
 * every curve of ECC_CURVES passes TestParms and really makes a key; what the
 * engine lacks is refused with the code libtpms gives, checked against swtpm
 * where libtpms lacks it too.
 */
import { describe, expect, it } from 'vitest';
import { readCapability } from '../../src/tpm/capability.js';
import { CreatePrimary, FlushContext, PCR_Read, TestParms } from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_CAP, TPM_ECC, TPM_RH } from '../../src/tpm/constants.js';
import { TPM_RC, TpmError } from '../../src/tpm/rc.js';
import { passwordAuth, runCommand } from '../../src/tpm/run.js';
import { eccSrkTemplate } from '../../src/tpm/templates.js';
import type { Transport } from '../../src/tpm/transport/index.js';
import type { TPMT_PUBLIC_PARMS } from '../../src/tpm/types/index.js';
import { describeWithSwtpm } from '../support/swtpm.js';
import { rcOf } from '../support/probe.js';
import { startedEngine, swtpmAndSimulator } from '../support/fixture.js';

const NULL_SYM = { algorithm: TPM_ALG.NULL, keyBits: null, mode: null };
const NULL_SCHEME = { scheme: TPM_ALG.NULL, details: null };
const rsa = (keyBits: number, more: object = {}): TPMT_PUBLIC_PARMS =>
  ({ type: TPM_ALG.RSA, parameters: { symmetric: NULL_SYM, scheme: NULL_SCHEME, keyBits, exponent: 0, ...more } }) as never;
const ecc = (curveID: number, more: object = {}): TPMT_PUBLIC_PARMS =>
  ({ type: TPM_ALG.ECC, parameters: { symmetric: NULL_SYM, scheme: NULL_SCHEME, curveID, kdf: NULL_SCHEME, ...more } }) as never;
const aes = (keyBits: number, mode: number): TPMT_PUBLIC_PARMS => ({ type: TPM_ALG.SYMCIPHER, parameters: { sym: { algorithm: TPM_ALG.AES, keyBits, mode } } }) as never;
const hmacKey = (hashAlg: number): TPMT_PUBLIC_PARMS => ({ type: TPM_ALG.KEYEDHASH, parameters: { scheme: { scheme: TPM_ALG.HMAC, details: { hashAlg } } } }) as never;

/** 0 or the response code TestParms answers. */
function testParms(t: Transport, parameters: TPMT_PUBLIC_PARMS): Promise<number> {
  return rcOf(runCommand(t, TestParms, {}, { parameters }));
}

const param1 = (rc: number): number => (rc | 0x0c0 | 0x100) >>> 0; // format 1, parameter 1

describe('simulator TestParms', () => {
  it('accepts what the engine implements, and each listed curve makes a key', async () => {
    const { t } = await startedEngine();
    for (const p of [rsa(2048), rsa(3072), rsa(2048, { scheme: { scheme: TPM_ALG.RSAPSS, details: { hashAlg: TPM_ALG.SHA384 } } }), rsa(1024), aes(128, TPM_ALG.CFB), aes(256, TPM_ALG.CTR), aes(256, TPM_ALG.ECB), hmacKey(TPM_ALG.SHA512), hmacKey(TPM_ALG.SHA1)]) {
      expect(await testParms(t, p)).toBe(0);
    }
    // Every listed algorithm is a real one (TPM_ALG_NULL is not listed, as on swtpm).
    const algs = (await readCapability(t, TPM_CAP.ALGS)) as { alg: number }[];
    expect(algs.map((a) => a.alg)).not.toContain(TPM_ALG.NULL);
    expect(algs.map((a) => a.alg)).toEqual([...algs.map((a) => a.alg)].sort((a, b) => a - b));
    const curves = await readCapability(t, TPM_CAP.ECC_CURVES);
    expect(curves.length).toBeGreaterThanOrEqual(2);
    for (const curveID of curves) {
      expect(await testParms(t, ecc(curveID))).toBe(0);
      const template = eccSrkTemplate();
      const made = await runCommand(t, CreatePrimary, { primaryHandle: TPM_RH.OWNER }, {
        inSensitive: { userAuth: new Uint8Array(0), data: new Uint8Array(0) },
        inPublic: { ...template, parameters: { ...template.parameters, curveID } } as never,
        outsideInfo: new Uint8Array(0),
        creationPCR: [],
      }, { sessions: [passwordAuth()] });
      expect(made.params.outPublic.type).toBe(TPM_ALG.ECC);
    }
  });

  it('refuses what the engine lacks, with the code of the field that names it', async () => {
    const { t } = await startedEngine();
    // AES-192: the spec's, not libtpms's (built with AES-128 and AES-256 only).
    expect(await testParms(t, aes(192, TPM_ALG.CFB))).toBe(param1(TPM_RC.VALUE));
    expect(await testParms(t, rsa(4096))).toBe(param1(TPM_RC.VALUE));
    expect(await testParms(t, ecc(TPM_ECC.BN_P256))).toBe(param1(TPM_RC.CURVE));
    expect(await testParms(t, rsa(2048, { scheme: { scheme: TPM_ALG.RSASSA, details: { hashAlg: TPM_ALG.SHA3_256 } } }))).toBe(param1(TPM_RC.HASH));
    expect(await testParms(t, hmacKey(TPM_ALG.SHA3_384))).toBe(param1(TPM_RC.HASH));
    expect(await testParms(t, { type: TPM_ALG.SYMCIPHER, parameters: { sym: { algorithm: TPM_ALG.CAMELLIA, keyBits: 128, mode: TPM_ALG.CFB } } } as never)).toBe(param1(TPM_RC.SYMMETRIC));
    expect(await testParms(t, ecc(TPM_ECC.NIST_P256, { kdf: { scheme: TPM_ALG.KDF2, details: { hashAlg: TPM_ALG.SHA256 } } }))).toBe(param1(TPM_RC.KDF));
  });
});

describeWithSwtpm('simulator TestParms vs swtpm', () => {
  const tpms = swtpmAndSimulator();

  it('PCR selections: an unimplemented bank is TPM_RC_HASH and a sizeofSelect other than 3 TPM_RC_VALUE, on the parameter, in every command', async () => {
    const t = (await tpms.simulator()).probe;
    const outcome = async (tr: Transport, f: (tr: Transport) => Promise<unknown>): Promise<string> => {
      try {
        await f(tr);
        return 'ok';
      } catch (e) {
        if (e instanceof TpmError) return `0x${e.rc.toString(16)}`;
        throw e;
      }
    };
    const selections = [
      [{ hash: TPM_ALG.SHA256, pcrSelect: Uint8Array.of(1, 0, 0) }],
      [{ hash: TPM_ALG.SHA256, pcrSelect: Uint8Array.of(1, 0, 0, 0) }],
      [{ hash: TPM_ALG.SHA256, pcrSelect: Uint8Array.of(1, 0) }],
      [{ hash: TPM_ALG.SHA256, pcrSelect: new Uint8Array(0) }],
      [{ hash: TPM_ALG.SHA3_256, pcrSelect: Uint8Array.of(1, 0, 0) }],
      [{ hash: TPM_ALG.SHA1, pcrSelect: Uint8Array.of(1, 0, 0) }, { hash: TPM_ALG.SHA256, pcrSelect: Uint8Array.of(1, 0, 0, 0) }],
    ];
    const read = (sel: unknown) => (tr: Transport) => runCommand(tr, PCR_Read, {}, { pcrSelectionIn: sel as never });
    const primary = (sel: unknown) => async (tr: Transport) => {
      const r = await runCommand(tr, CreatePrimary, { primaryHandle: TPM_RH.OWNER }, { inSensitive: { userAuth: new Uint8Array(0), data: new Uint8Array(0) }, inPublic: eccSrkTemplate(), outsideInfo: new Uint8Array(0), creationPCR: sel as never }, { sessions: [passwordAuth()] });
      await runCommand(tr, FlushContext, {}, { flushHandle: r.handles.objectHandle });
    };
    const got: string[] = [];
    const want: string[] = [];
    for (const sel of selections) {
      for (const f of [read(sel), primary(sel)]) {
        got.push(await outcome(t, f));
        want.push(await outcome(tpms.swtpm.probe, f));
      }
    }
    expect(got).toEqual(want);
    expect(got).toContain('0x1c4');
    expect(got).toContain('0x1c3');
    expect(got).toContain('0x4c4'); // VALUE on parameter 4 (creationPCR)
  });

  it('answers as libtpms where both implement (or both lack) the algorithm', async () => {
    const t = (await tpms.simulator()).probe;
    const cases = [rsa(2048), rsa(3072), rsa(4096), ecc(TPM_ECC.NIST_P256), ecc(TPM_ECC.NIST_P384), aes(128, TPM_ALG.CFB), aes(256, TPM_ALG.CBC), hmacKey(TPM_ALG.SHA256), rsa(2048, { scheme: { scheme: TPM_ALG.RSASSA, details: { hashAlg: TPM_ALG.SHA3_256 } } })];
    for (const p of cases) expect(await testParms(t, p)).toBe(await testParms(tpms.swtpm.probe, p));
  });
});
