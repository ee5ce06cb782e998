/**
 * Primary-key derivation of the software TPM (src/simulator/keygen.ts), in
 * derivations per second with a fresh seed each time (the same seed always
 * costs the same; random seeds show the spread of the RSA prime search):
 * ECC P-256 and P-384, RSA-2048 and RSA-3072 (the RSA rows' inverse is the
 * mean time of one derivation, what a CreatePrimary or a first EK costs).
 */
import { randomBytes } from 'node:crypto';
import { derivePrimaryObject } from '../src/simulator/keygen.js';
import { TPM_ECC } from '../src/tpm/constants.js';
import { eccSrkTemplate, rsaSrkTemplate } from '../src/tpm/templates.js';
import type { TPMT_PUBLIC } from '../src/tpm/types/index.js';
import { rate, type BenchRow } from './measure.js';

export async function benchKeygen(ms = 1000): Promise<BenchRow[]> {
  const ecc = eccSrkTemplate() as Extract<TPMT_PUBLIC, { type: 0x23 }>;
  const rsa = rsaSrkTemplate() as Extract<TPMT_PUBLIC, { type: 0x01 }>;
  const cases: [string, TPMT_PUBLIC][] = [
    ['ECC P-256 SRK', ecc],
    ['ECC P-384 SRK', { ...ecc, parameters: { ...ecc.parameters, curveID: TPM_ECC.NIST_P384 } }],
    ['RSA-2048 SRK', rsa],
    ['RSA-3072 SRK', { ...rsa, parameters: { ...rsa.parameters, keyBits: 3072 } }],
  ];
  const sensitive = { userAuth: new Uint8Array(0), data: new Uint8Array(0) };
  const rows: BenchRow[] = [];
  for (const [name, template] of cases) {
    // RSA derivations take 0.1–1 s: give them a longer budget so that the mean covers several primes.
    const budget = template.type === 0x01 ? Math.max(ms, 3000) : ms;
    const opsPerSec = await rate(() => derivePrimaryObject({ seed: randomBytes(32), template, sensitive }), budget);
    rows.push({ group: 'simulator primary derivation, keys/s', name, opsPerSec });
  }
  return rows;
}
