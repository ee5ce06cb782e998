/**
 * A fleet of software TPMs in one process (issue 6 item 5): engines with
 * deterministic seeds (the documented-insecure `random` option), each asked
 * for a Quote by an ECC AK (eccAkTemplate, a primary under the endorsement
 * hierarchy). Used by test/simulator/fleet.test.ts and `npm run bench`.
 */
import { createHash, verify } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { TpmEngine } from '../../src/simulator/engine.js';
import type { RandomSource } from '../../src/simulator/state.js';
import { CreatePrimary, FlushContext, Quote } from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_GENERATED_VALUE, TPM_RH, TPM_ST } from '../../src/tpm/constants.js';
import { pcrSelection } from '../../src/tpm/pcr.js';
import { runCommand } from '../../src/tpm/run.js';
import { publicKeyFromArea } from '../../src/tpm/secret.js';
import { eccAkTemplate } from '../../src/tpm/templates.js';
import type { Transport } from '../../src/tpm/transport/index.js';
import { TPMS_ATTEST, type TPMT_PUBLIC } from '../../src/tpm/types/index.js';
import { decode, encode } from '../../src/tpm/wire/codec.js';
import { startedEngine } from './fixture.js';

/** SHA-256 in counter mode from a label: the same label, the same TPM (insecure by design: tests only). */
export function seededRandom(label: string): RandomSource {
  let counter = 0;
  return (size) => {
    const out = new Uint8Array(size);
    for (let off = 0; off < size; off += 32) {
      out.set(createHash('sha256').update(label).update(String(counter++)).digest().subarray(0, size - off), off);
    }
    return out;
  };
}

export interface FleetMember {
  readonly engine: TpmEngine;
  readonly transport: Transport;
}

/** Engine number `i` of a fleet, started (TPM2_Startup(CLEAR)). */
export async function startFleetMember(i: number, label = 'fleet'): Promise<FleetMember> {
  const { engine, t: transport } = await startedEngine(new TpmEngine({ random: seededRandom(`${label}-${i}`) }));
  return { engine, transport };
}

export interface CheckedQuote {
  readonly akPublic: TPMT_PUBLIC;
  /** TPMS_ATTEST as signed. */
  readonly attestBytes: Uint8Array;
}

const EMPTY = new Uint8Array(0);

/**
 * CreatePrimary(eccAkTemplate) under the endorsement hierarchy, Quote of
 * SHA-256 PCRs 0–7 with `nonce`, FlushContext. The quote is checked here, not
 * by the client: the ECDSA signature with node:crypto over the attest bytes,
 * magic, type and the nonce. Throws when any check fails.
 */
export async function quoteWithEccAk(member: FleetMember, nonce: Uint8Array): Promise<CheckedQuote> {
  const t = member.transport;
  const ak = await runCommand(t, CreatePrimary, { primaryHandle: TPM_RH.ENDORSEMENT }, { inSensitive: { userAuth: EMPTY, data: EMPTY }, inPublic: eccAkTemplate(), outsideInfo: EMPTY, creationPCR: [] });
  try {
    const q = await runCommand(t, Quote, { signHandle: ak.handles.objectHandle }, { qualifyingData: nonce, inScheme: { scheme: TPM_ALG.NULL }, PCRselect: [pcrSelection(TPM_ALG.SHA256, [0, 1, 2, 3, 4, 5, 6, 7])] });
    const attestBytes = encode(TPMS_ATTEST, q.params.quoted);
    const attest = decode(TPMS_ATTEST, attestBytes);
    if (attest.magic !== TPM_GENERATED_VALUE || attest.type !== TPM_ST.ATTEST_QUOTE) throw new Error('not a TPM-generated quote');
    if (Buffer.compare(Buffer.from(attest.extraData), Buffer.from(nonce)) !== 0) throw new Error('the quote does not carry the nonce');
    const sig = q.params.signature;
    if (sig.sigAlg !== TPM_ALG.ECDSA) throw new Error(`signature algorithm 0x${sig.sigAlg.toString(16)}, expected ECDSA`);
    const { signatureR, signatureS } = sig.signature as { signatureR: Uint8Array; signatureS: Uint8Array };
    const ok = verify('sha256', attestBytes, { key: publicKeyFromArea(ak.params.outPublic), dsaEncoding: 'ieee-p1363' }, Buffer.concat([pad32(signatureR), pad32(signatureS)]));
    if (!ok) throw new Error('the quote signature does not verify');
    return { akPublic: ak.params.outPublic, attestBytes };
  } finally {
    await runCommand(t, FlushContext, {}, { flushHandle: ak.handles.objectHandle });
  }
}

function pad32(b: Uint8Array): Buffer {
  return Buffer.concat([Buffer.alloc(Math.max(0, 32 - b.length)), Buffer.from(b)]);
}

/** A full garbage collection on demand (node's own gc, exposed at run time), for heap measurements. */
export function garbageCollector(): () => void {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  return () => {
    gc();
    gc();
  };
}
