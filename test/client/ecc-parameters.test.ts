/**
 * The client parses swtpm's (libtpms's) TPM2_ECC_Parameters answer for every
 * curve swtpm lists in GetCapability(ECC_CURVES), BN P-638's 80-byte
 * parameters included (LIMITS.MAX_ECC_KEY_BYTES), and the values are a
 * curve: the generator satisfies y² = x³ + ax + b mod p.
 */
import { expect, it } from 'vitest';
import { readCapability } from '../../src/tpm/capability.js';
import { ECC_Parameters } from '../../src/tpm/commands/index.js';
import { TPM_CAP, TPM_ECC } from '../../src/tpm/constants.js';
import { LIMITS } from '../../src/tpm/limits.js';
import type { TPMI_ECC_CURVE } from '../../src/tpm/types/index.js';
import { swtpmAndSimulator } from '../support/fixture.js';
import { describeWithSwtpm } from '../support/swtpm.js';

const big = (b: Uint8Array): bigint => (b.length === 0 ? 0n : BigInt('0x' + Buffer.from(b).toString('hex')));
const mod = (a: bigint, m: bigint): bigint => ((a % m) + m) % m;

describeWithSwtpm('ECC_Parameters of every swtpm curve', () => {
  // A started swtpm (Startup(CLEAR)) with a client, from the shared fixture.
  const pair = swtpmAndSimulator();

  it('parses each, BN P-638 (80-byte parameters) included', async () => {
    const curves = await readCapability(pair.swtpm.probe, TPM_CAP.ECC_CURVES);
    expect(curves).toEqual(expect.arrayContaining([TPM_ECC.NIST_P256, TPM_ECC.NIST_P521, TPM_ECC.BN_P638]));
    const sizes: Record<number, number> = {};
    for (const curveID of curves) {
      const d = (await pair.swtpm.tpm.run(ECC_Parameters, {}, { curveID: curveID as TPMI_ECC_CURVE })).params.parameters;
      expect(d.curveID).toBe(curveID);
      const size = Math.ceil(d.keySize / 8);
      sizes[curveID] = size;
      expect(size).toBeLessThanOrEqual(LIMITS.MAX_ECC_KEY_BYTES);
      expect(d.p).toHaveLength(size);
      for (const v of [d.a, d.b, d.gX, d.gY, d.n]) expect(v.length).toBeLessThanOrEqual(size);
      const [p, a, b, x, y] = [big(d.p), big(d.a), big(d.b), big(d.gX), big(d.gY)];
      expect(mod(y * y - (x * x * x + a * x + b), p)).toBe(0n);
    }
    expect(sizes[TPM_ECC.BN_P638]).toBe(80);
    expect(sizes[TPM_ECC.NIST_P521]).toBe(66);
  });
});
