/**
 * Marshal and unmarshal rates of the schema-driven codec for the structures
 * attestation moves most: a TPMT_PUBLIC (RSA-2048 EK), a quote's TPMS_ATTEST,
 * and a whole Quote response (header, parameterSize, TPM2B_ATTEST, RSASSA
 * signature, one response authorization).
 */
import { randomBytes } from 'node:crypto';
import { Quote } from '../src/tpm/commands/index.js';
import { TPM_ALG, TPM_GENERATED_VALUE, TPM_ST } from '../src/tpm/constants.js';
import { encodeResponse, parseResponse } from '../src/tpm/frame.js';
import { pcrSelection } from '../src/tpm/pcr.js';
import { rsaEkTemplate } from '../src/tpm/templates.js';
import { TPMA_SESSION, TPMS_ATTEST, TPMT_PUBLIC, type TPMS_AUTH_RESPONSE } from '../src/tpm/types/index.js';
import { decode, encode } from '../src/tpm/wire/codec.js';
import { rate, type BenchRow } from './measure.js';

export async function benchMarshal(ms = 1000): Promise<BenchRow[]> {
  const pub: TPMT_PUBLIC = { ...rsaEkTemplate(), unique: randomBytes(256) } as TPMT_PUBLIC;
  const attest: TPMS_ATTEST = {
    magic: TPM_GENERATED_VALUE,
    type: TPM_ST.ATTEST_QUOTE,
    qualifiedSigner: randomBytes(34),
    extraData: randomBytes(32),
    clockInfo: { clock: 123456789n, resetCount: 3, restartCount: 0, safe: 1 },
    firmwareVersion: 0x2000000000000n,
    attested: { pcrSelect: [pcrSelection(TPM_ALG.SHA256, [0, 1, 2, 3, 4, 5, 6, 7])], pcrDigest: randomBytes(32) },
  };
  const auth: TPMS_AUTH_RESPONSE = { nonce: randomBytes(32), sessionAttributes: TPMA_SESSION.of({ continueSession: true }), hmac: new Uint8Array(0) };
  const quoteParams = {
    quoted: attest,
    signature: { sigAlg: TPM_ALG.RSASSA, signature: { hash: TPM_ALG.SHA256, sig: randomBytes(256) } },
  } as const;

  const pubBytes = encode(TPMT_PUBLIC, pub);
  const attestBytes = encode(TPMS_ATTEST, attest);
  const quoteBytes = encodeResponse(Quote, {}, quoteParams, { sessions: [auth] });

  const rows: BenchRow[] = [];
  const add = async (group: string, name: string, fn: () => unknown): Promise<void> => {
    rows.push({ group, name, opsPerSec: await rate(fn, ms) });
  };
  await add('TPMT_PUBLIC (RSA-2048, 314 B)', 'marshal', () => encode(TPMT_PUBLIC, pub));
  await add('TPMT_PUBLIC (RSA-2048, 314 B)', 'unmarshal', () => decode(TPMT_PUBLIC, pubBytes));
  await add(`TPMS_ATTEST (quote, ${attestBytes.length} B)`, 'marshal', () => encode(TPMS_ATTEST, attest));
  await add(`TPMS_ATTEST (quote, ${attestBytes.length} B)`, 'unmarshal', () => decode(TPMS_ATTEST, attestBytes));
  await add(`Quote response (${quoteBytes.length} B)`, 'marshal', () => encodeResponse(Quote, {}, quoteParams, { sessions: [auth] }));
  await add(`Quote response (${quoteBytes.length} B)`, 'unmarshal', () => parseResponse(Quote, quoteBytes, 1));
  return rows;
}
