/**
 * ECDAA (Part 1 §C.4; Part 3 §19.2 Commit, §20.2 Sign) in the simulator:
 * Commit makes E = [r]P1 under a counter, Sign with inScheme ECDAA and that
 * counter answers (k, s) with s = r + T·d, T = H(k ‖ digest). Signatures are
 * random, so both TPMs' are checked algebraically — [s]P1 = E + [T]([d]P1)
 * with @noble/curves — and the codes, counters and life of a commitment
 * (used once, kept by Restart and Resume, gone after a TPM Reset) are
 * compared with swtpm's. EC-Schnorr (Part 1 §C.5): each TPM verifies the
 * other's signatures (VerifySignature), and refuses a changed digest alike.
 */
import { createHash, generateKeyPairSync } from 'node:crypto';
import { p256 } from '@noble/curves/nist.js';
import { describe, expect, it } from 'vitest';
import { Commit, FlushContext, LoadExternal, Shutdown, Sign, Startup, TestParms, VerifySignature } from '../../src/tpm/commands/index.js';
import { externalObject } from '../../src/tpm/duplication.js';
import { TPM_ALG, TPM_RH, TPM_ST, TPM_SU } from '../../src/tpm/constants.js';
import { runCommand } from '../../src/tpm/run.js';
import { inProcessTransport, type Transport } from '../../src/tpm/transport/index.js';
import type { TPMA_OBJECT, TPMS_ECC_POINT, TPMT_PUBLIC } from '../../src/tpm/types/index.js';
import { TpmEngine } from '../../src/simulator/index.js';
import { parseStateFile, serializeState, validateSimulatorState } from '../../src/simulator/store.js';
import { scenarioLog } from '../support/scenario.js';
import { describeWithSwtpm } from '../support/swtpm.js';
import { startedEngine, swtpmAndSimulator } from '../support/fixture.js';

const EMPTY = new Uint8Array(0);
const n = p256.Point.CURVE().n;
const big = (b: Uint8Array): bigint => (b.length === 0 ? 0n : BigInt(`0x${Buffer.from(b).toString('hex')}`));
const be32 = (v: bigint): Uint8Array => new Uint8Array(Buffer.from(v.toString(16).padStart(64, '0'), 'hex'));
const pointOf = (P: TPMS_ECC_POINT) => p256.Point.fromAffine({ x: big(P.x), y: big(P.y) });
const tpmPoint = (P: { x: bigint; y: bigint }): TPMS_ECC_POINT => ({ x: be32(P.x), y: be32(P.y) });

/** One P-256 key known here, with an ECDAA scheme (SHA-256), loaded with LoadExternal. */
const KEY = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
const { publicArea: PUB, sensitive: SENSITIVE } = externalObject({ type: 'ecc', privateKey: KEY }, { objectAttributes: { sign: true, userWithAuth: true, noDA: true } as TPMA_OBJECT });
const D = big(SENSITIVE.sensitive as Uint8Array);
const ECDAA_PUBLIC = { ...PUB, parameters: { ...(PUB as { parameters: object }).parameters, scheme: { scheme: TPM_ALG.ECDAA, details: { hashAlg: TPM_ALG.SHA256, count: 0 } } } } as TPMT_PUBLIC;
/** Another base point for P1: [7]G, so E = [7r]G and [d]P1 = [7d]G. */
const SEVEN_G = p256.Point.BASE.multiply(7n).toAffine();
const DIGEST = new Uint8Array(createHash('sha256').update('signed by ECDAA').digest());

async function loadKey(t: Transport): Promise<number> {
  return (await runCommand(t, LoadExternal, {}, { inPrivate: SENSITIVE, inPublic: ECDAA_PUBLIC, hierarchy: TPM_RH.NULL })).handles.objectHandle;
}

async function commit(t: Transport, key: number, P1: { x: bigint; y: bigint }) {
  return (await runCommand(t, Commit, { signHandle: key }, { P1: tpmPoint(P1), s2: EMPTY, y2: EMPTY } as never)).params;
}

function sign(t: Transport, key: number, count: number | undefined) {
  const inScheme = count === undefined ? { scheme: TPM_ALG.NULL } : { scheme: TPM_ALG.ECDAA, details: { hashAlg: TPM_ALG.SHA256, count } };
  return runCommand(t, Sign, { keyHandle: key }, { digest: DIGEST, inScheme, validation: { tag: TPM_ST.HASHCHECK, hierarchy: TPM_RH.NULL, digest: EMPTY } } as never);
}

/** Part 1 §C.4: [s]P1 = E + [T]([d]P1), T = SHA-256(k ‖ digest) mod n, for a Sign's (k, s) after a Commit's E. */
function verifies(signature: unknown, E: TPMS_ECC_POINT, P1: { x: bigint; y: bigint }): boolean {
  const sig = signature as { sigAlg: number; signature: { hash: number; signatureR: Uint8Array; signatureS: Uint8Array } };
  if (sig.sigAlg !== TPM_ALG.ECDAA || sig.signature.hash !== TPM_ALG.SHA256) return false;
  const T = big(new Uint8Array(createHash('sha256').update(sig.signature.signatureR).update(DIGEST).digest())) % n;
  const s = big(sig.signature.signatureS);
  const base = p256.Point.fromAffine(P1);
  return base.multiply(s).equals(pointOf(E).add(base.multiply((T * D) % n)));
}

/** Commit, Sign, the refusals and a commitment's life across Restart, Resume and Reset; signatures checked here. */
async function scenario(t: Transport, powerCycle: () => Promise<void>): Promise<Record<string, unknown>> {
  const { log, step } = scenarioLog();
  const started = async (label: string, type: number): Promise<number> => {
    await step(label, () => runCommand(t, Startup, {}, { startupType: type as never }));
    return loadKey(t);
  };
  await step('TestParms ECC with ECDAA', () => runCommand(t, TestParms, {}, { parameters: { type: TPM_ALG.ECC, parameters: (ECDAA_PUBLIC as { parameters: object }).parameters } } as never));
  let key = await loadKey(t);
  for (const [label, P1] of [['G', p256.Point.BASE.toAffine()], ['7G', SEVEN_G]] as const) {
    const c = await commit(t, key, P1);
    log[`commit ${label}: counter`] = c.counter;
    log[`commit ${label}: K and L empty`] = c.K?.x.length === 0 && c.L?.x.length === 0;
    await step(`sign after commit ${label}`, () => sign(t, key, c.counter), (r) => verifies(r.params.signature, c.E!, P1));
    await step(`sign again with counter ${label}`, () => sign(t, key, c.counter));
  }
  await step('sign without inScheme', () => sign(t, key, undefined));
  await step('sign with a counter never committed', () => sign(t, key, 77));
  // Two outstanding commitments, used in the other order.
  const a = await commit(t, key, p256.Point.BASE.toAffine());
  const b = await commit(t, key, SEVEN_G);
  await step('sign with the later commitment', () => sign(t, key, b.counter), (r) => verifies(r.params.signature, b.E!, SEVEN_G));
  await step('sign with the earlier commitment', () => sign(t, key, a.counter), (r) => verifies(r.params.signature, a.E!, p256.Point.BASE.toAffine()));
  // Shutdown(STATE) + Startup(STATE), a TPM Resume: the commitment is still there (the key, being volatile, is loaded again).
  const beforeResume = await commit(t, key, p256.Point.BASE.toAffine());
  await step('shutdown state (resume)', () => runCommand(t, Shutdown, {}, { shutdownType: TPM_SU.STATE }));
  await powerCycle();
  key = await started('startup state', TPM_SU.STATE);
  await step('sign after a Resume', () => sign(t, key, beforeResume.counter), (r) => verifies(r.params.signature, beforeResume.E!, p256.Point.BASE.toAffine()));
  // Shutdown(STATE) + Startup(CLEAR), a TPM Restart: kept too.
  const beforeRestart = await commit(t, key, SEVEN_G);
  log['counter before the Restart'] = beforeRestart.counter;
  await step('shutdown state (restart)', () => runCommand(t, Shutdown, {}, { shutdownType: TPM_SU.STATE }));
  await powerCycle();
  key = await started('startup clear after Shutdown(STATE)', TPM_SU.CLEAR);
  await step('sign after a Restart', () => sign(t, key, beforeRestart.counter), (r) => verifies(r.params.signature, beforeRestart.E!, SEVEN_G));
  // Shutdown(CLEAR) + Startup(CLEAR), a TPM Reset: gone, and the counter starts over.
  const beforeReset = await commit(t, key, p256.Point.BASE.toAffine());
  await step('shutdown clear', () => runCommand(t, Shutdown, {}, { shutdownType: TPM_SU.CLEAR }));
  await powerCycle();
  key = await started('startup clear (reset)', TPM_SU.CLEAR);
  await step('sign after a Reset', () => sign(t, key, beforeReset.counter));
  log['counter after the Reset'] = (await commit(t, key, p256.Point.BASE.toAffine())).counter;
  await runCommand(t, FlushContext, {}, { flushHandle: key });
  return log;
}

describe('simulator ECDAA', () => {
  it('a commitment made before Shutdown(STATE) signs after the state went through the state file', async () => {
    const { engine, t } = await startedEngine();
    const key = await loadKey(t);
    const c = await commit(t, key, p256.Point.BASE.toAffine());
    await runCommand(t, Shutdown, {}, { shutdownType: TPM_SU.STATE });
    // A new engine on the reloaded file: a power cycle of a served TPM.
    const state = validateSimulatorState(parseStateFile(serializeState(engine.state), engine.state.version));
    const again = inProcessTransport(new TpmEngine({ state }));
    await runCommand(again, Startup, {}, { startupType: TPM_SU.STATE });
    const key2 = await loadKey(again);
    expect(verifies((await sign(again, key2, c.counter)).params.signature, c.E!, p256.Point.BASE.toAffine())).toBe(true);
  });

  it('128 commitments may be outstanding; the 129th takes the first one\'s place', async () => {
    const { t } = await startedEngine();
    const key = await loadKey(t);
    const G = p256.Point.BASE.toAffine();
    const first = await commit(t, key, G);
    for (let i = 1; i < 128; i++) await commit(t, key, G);
    const last = await commit(t, key, G);
    expect([first.counter, last.counter]).toEqual([0, 128]);
    // Counter 0's bit now stands for 128: 0 is out of the window.
    await expect(sign(t, key, first.counter)).rejects.toMatchObject({ rc: 0x084 });
    expect(verifies((await sign(t, key, last.counter)).params.signature, last.E!, G)).toBe(true);
  });
});

/** The same key with no scheme of its own, for EC-Schnorr through inScheme. */
const PLAIN_PUBLIC = { ...PUB, parameters: { ...(PUB as { parameters: object }).parameters, scheme: { scheme: TPM_ALG.NULL } } } as TPMT_PUBLIC;

async function schnorrSign(t: Transport, key: number, digest: Uint8Array) {
  const inScheme = { scheme: TPM_ALG.ECSCHNORR, details: { hashAlg: TPM_ALG.SHA256 } };
  return (await runCommand(t, Sign, { keyHandle: key }, { digest, inScheme, validation: { tag: TPM_ST.HASHCHECK, hierarchy: TPM_RH.NULL, digest: EMPTY } } as never)).params.signature;
}

function verifyOn(t: Transport, key: number, digest: Uint8Array, signature: unknown) {
  return runCommand(t, VerifySignature, { keyHandle: key }, { digest, signature } as never);
}

describeWithSwtpm('simulator ECDAA agrees with swtpm', () => {
  const tpms = swtpmAndSimulator();

  it('the same commitments and signatures: codes, counters, and signatures that verify on both', async () => {
    const { theirs: expected, ours: got } = await tpms.both((side) => scenario(side.probe, () => side.init()));
    expect(got).toEqual(expected);
    // Not vacuous: swtpm's signatures verified.
    expect(expected['sign after commit G']).toBe(true);
    expect(expected['sign after a Restart']).toBe(true);
  }, 60_000);

  it('EC-Schnorr: each TPM verifies the other\'s signatures and refuses a changed digest with the same code', async () => {
    const swt = tpms.swtpm.probe;
    const sim = (await tpms.simulator()).probe;
    const load = async (tt: Transport) => (await runCommand(tt, LoadExternal, {}, { inPrivate: SENSITIVE, inPublic: PLAIN_PUBLIC, hierarchy: TPM_RH.NULL })).handles.objectHandle;
    const swKey = await load(swt);
    const simKey = await load(sim);
    const other = new Uint8Array(createHash('sha256').update('another message').digest());
    const { log, step } = scenarioLog();
    for (let i = 0; i < 4; i++) {
      const ours = await schnorrSign(sim, simKey, DIGEST);
      const theirs = await schnorrSign(swt, swKey, DIGEST);
      await step(`swtpm verifies ours ${i}`, () => verifyOn(swt, swKey, DIGEST, ours));
      await step(`we verify swtpm's ${i}`, () => verifyOn(sim, simKey, DIGEST, theirs));
      await step(`swtpm: ours over another digest ${i}`, () => verifyOn(swt, swKey, other, ours));
      await step(`we: swtpm's over another digest ${i}`, () => verifyOn(sim, simKey, other, theirs));
    }
    for (let i = 0; i < 4; i++) {
      expect([log[`swtpm verifies ours ${i}`], log[`we verify swtpm's ${i}`]]).toEqual([0, 0]);
      expect(log[`swtpm: ours over another digest ${i}`]).toBe(log[`we: swtpm's over another digest ${i}`]);
    }
    await runCommand(swt, FlushContext, {}, { flushHandle: swKey });
  }, 60_000);
});

