/**
 * ECC parameters of 67..81 bytes, swtpm against the simulator: both take a
 * TPM2B_ECC_PARAMETER of up to 80 bytes (libtpms's MAX_ECC_KEY_BYTES, BN
 * P-638; LIMITS.MAX_ECC_KEY_BYTES), so a P-256 key meets one longer than its
 * curve in the command (TPM_RC_ECC_POINT, TPM_RC_SIGNATURE, …) and an 81-byte
 * one is refused at unmarshal (TPM_RC_SIZE on that parameter). Every response
 * code must agree (no divergence row applies).
 */
import { generateKeyPairSync } from 'node:crypto';
import { p256 } from '@noble/curves/nist.js';
import { expect, it } from 'vitest';
import * as C from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_CC, TPM_RH } from '../../src/tpm/constants.js';
import { externalObject } from '../../src/tpm/duplication.js';
import { TPMA_OBJECT, type TPMS_ECC_POINT } from '../../src/tpm/types/index.js';
import { runDifferential, type DiffSide, type Sequence } from '../support/differential.js';
import { swtpmAndSimulator } from '../support/fixture.js';
import { describeWithSwtpm } from '../support/swtpm.js';

const EC_KEY = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
const KEY = externalObject({ type: 'ecc', privateKey: EC_KEY }, { objectAttributes: TPMA_OBJECT.of({ userWithAuth: true, noDA: true, sign: true, decrypt: true }) });
const PEER = (KEY.publicArea as unknown as { unique: TPMS_ECC_POINT }).unique;
const SHA256 = TPM_ALG.SHA256;

const SENSITIVE = (KEY.sensitive as unknown as { sensitive: Uint8Array }).sensitive;
const { p: FIELD, n: ORDER } = p256.Point.CURVE();

const fill = (n: number, v: number): Uint8Array => new Uint8Array(n).fill(v);
const big = (b: Uint8Array): bigint => BigInt('0x' + Buffer.from(b).toString('hex'));
/** `v` big-endian in `n` bytes (zeros in front). */
const be = (v: bigint, n: number): Uint8Array => Uint8Array.from(Buffer.from(v.toString(16).padStart(2 * n, '0'), 'hex'));
/** `b` with zeros in front, `n` bytes in all. */
const zeros = (b: Uint8Array, n: number): Uint8Array => be(big(b), n);
const u16 = (n: number): number[] => [n >> 8, n & 0xff];
const u32 = (n: number): number[] => [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
const tpm2b = (b: Uint8Array): number[] => [...u16(b.length), ...b];
const point = (x: Uint8Array, y: Uint8Array): number[] => {
  const inner = [...tpm2b(x), ...tpm2b(y)];
  return [...u16(inner.length), ...inner];
};
/** Raw bytes (the core's encoder refuses 81-byte parameters): handles, then an empty password session if `auth`, then `params`. */
function raw(cc: number, handles: readonly number[], params: readonly number[], auth: boolean): Uint8Array {
  const session = auth ? [...u32(9), ...u32(TPM_RH.PW), 0, 0, 0, 0, 0] : [];
  const body = [...handles.flatMap(u32), ...session, ...params];
  return Uint8Array.from([...u16(auth ? 0x8002 : 0x8001), ...u32(10 + body.length), ...u32(cc), ...body]);
}

const sizes: Sequence = async (log, side) => {
  const { tpm } = side;
  const key = await tpm.run(C.LoadExternal, {}, { inPrivate: KEY.sensitive as never, inPublic: KEY.publicArea, hierarchy: TPM_RH.NULL as never });
  const h = key.handles.objectHandle;
  const ecdsa = (r: Uint8Array, s: Uint8Array) => ({ sigAlg: TPM_ALG.ECDSA, signature: { hash: SHA256, signatureR: r, signatureS: s } }) as never;
  for (const n of [67, 80]) {
    await log.step(`ECDH_ZGen, x of ${n} bytes`, () => tpm.run(C.ECDH_ZGen, { keyHandle: h }, { inPoint: { x: fill(n, 0x11), y: PEER.y } }));
    await log.step(`ECDH_ZGen, y of ${n} bytes`, () => tpm.run(C.ECDH_ZGen, { keyHandle: h }, { inPoint: { x: PEER.x, y: fill(n, 0x11) } }));
    await log.step(`VerifySignature, r of ${n} bytes`, () => tpm.run(C.VerifySignature, { keyHandle: h }, { digest: fill(32, 1), signature: ecdsa(fill(n, 0x22), fill(32, 0x22)) }));
    await log.step(`VerifySignature, s of ${n} bytes`, () => tpm.run(C.VerifySignature, { keyHandle: h }, { digest: fill(32, 1), signature: ecdsa(fill(32, 0x22), fill(n, 0x22)) }));
    await log.step(`Commit, y2 of ${n} bytes`, () => tpm.run(C.Commit, { signHandle: h }, { P1: PEER, s2: fill(4, 1), y2: fill(n, 1) }));
  }
  const verify = (r: number, s: number) => raw(TPM_CC.VerifySignature, [h], [...tpm2b(fill(32, 1)), ...u16(TPM_ALG.ECDSA), ...u16(SHA256), ...tpm2b(fill(r, 0x22)), ...tpm2b(fill(s, 0x22))], false);
  await log.raw('ECDH_ZGen, x of 81 bytes', raw(TPM_CC.ECDH_ZGen, [h], point(fill(81, 0x11), PEER.y), true));
  await log.raw('ECDH_ZGen, y of 81 bytes', raw(TPM_CC.ECDH_ZGen, [h], point(PEER.x, fill(81, 0x11)), true));
  await log.raw('VerifySignature, r of 81 bytes', verify(81, 32));
  await log.raw('VerifySignature, s of 81 bytes', verify(32, 81));
  await log.raw('Commit, P1.x of 81 bytes', raw(TPM_CC.Commit, [h], [...point(fill(81, 1), PEER.y), ...tpm2b(fill(4, 1)), ...tpm2b(fill(32, 1))], true));
  await log.raw('Commit, y2 of 81 bytes', raw(TPM_CC.Commit, [h], [...point(PEER.x, PEER.y), ...tpm2b(fill(4, 1)), ...tpm2b(fill(81, 1))], true));
  await tpm.run(C.FlushContext, {}, { flushHandle: h });
};

/**
 * Values longer than the curve that are numbers of the curve: libtpms reads
 * ECC parameters as numbers (BnFrom2B), so leading zeros do not count and
 * a coordinate past p stands for its residue (BnIsOnCurve works mod p), but
 * LoadExternal wants a public-only key's coordinates of exactly the curve's
 * size (CryptValidateKeys: TPM_RC_KEY), and a private scalar 0 < d < n
 * (TPM_RC_KEY_SIZE, no parameter named).
 */
const numbers: Sequence = async (log, side) => {
  const { tpm } = side;
  const key = await tpm.run(C.LoadExternal, {}, { inPrivate: KEY.sensitive as never, inPublic: KEY.publicArea, hierarchy: TPM_RH.NULL as never });
  const h = key.handles.objectHandle;
  const zgen = (x: Uint8Array, y: Uint8Array) => tpm.run(C.ECDH_ZGen, { keyHandle: h }, { inPoint: { x, y } });
  const z = (r: { params: { outPoint: TPMS_ECC_POINT } }) => Buffer.from(r.params.outPoint.x).toString('hex');
  for (const n of [33, 80]) {
    await log.step(`ECDH_ZGen, x and y with zeros in front, ${n} bytes`, () => zgen(zeros(PEER.x, n), zeros(PEER.y, n)), z);
    await log.step(`ECDH_ZGen, x + p in ${n} bytes`, () => zgen(be(big(PEER.x) + FIELD, n), PEER.y), z);
  }
  await log.step('ECDH_ZGen, 2p - y in 33 bytes', () => zgen(PEER.x, be(2n * FIELD - big(PEER.y), 33)), z);
  await log.step('ECDH_ZGen, x + p off the curve', () => zgen(be(big(PEER.y) + FIELD, 33), PEER.x));
  // Without s2 and y2 a P1 of Empty Point size is E = [r]G; a TPM2B_ECC_POINT of size 0 is refused at unmarshal.
  await log.raw('Commit, P1 of size 0 and y2 of 81 bytes', raw(TPM_CC.Commit, [h], [...u16(0), ...tpm2b(fill(4, 1)), ...tpm2b(fill(81, 1))], true));
  await log.raw('Commit, P1 of size 0 and nothing else', raw(TPM_CC.Commit, [h], [...u16(0), ...u16(0), ...u16(0)], true));
  await tpm.run(C.FlushContext, {}, { flushHandle: h });

  const load = async (label: string, unique: TPMS_ECC_POINT, sensitive?: Uint8Array) => {
    const inPrivate = sensitive === undefined ? null : { ...(KEY.sensitive as object), sensitive };
    const r = await log.step(label, () => tpm.run(C.LoadExternal, {}, { inPrivate: inPrivate as never, inPublic: { ...KEY.publicArea, unique } as never, hierarchy: TPM_RH.NULL as never }), (o) => Buffer.from(o.params.name).toString('hex'));
    if (r !== undefined) await tpm.run(C.FlushContext, {}, { flushHandle: r.handles.objectHandle });
  };
  for (const n of [31, 33, 80]) {
    await load(`LoadExternal public, x of ${n} bytes`, { x: n === 31 ? PEER.x.subarray(1) : fill(n, 3), y: PEER.y });
    if (n !== 31) await load(`LoadExternal public, x and y with zeros in front, ${n} bytes`, { x: zeros(PEER.x, n), y: zeros(PEER.y, n) });
  }
  await load('LoadExternal public, x + p', { x: be(big(PEER.x) + FIELD, 33), y: PEER.y });
  await load('LoadExternal public, off the curve', { x: PEER.y, y: PEER.x });
  await load('LoadExternal private, point with zeros in front (80 bytes)', { x: zeros(PEER.x, 80), y: zeros(PEER.y, 80) }, SENSITIVE);
  await load('LoadExternal private, x + p', { x: be(big(PEER.x) + FIELD, 33), y: PEER.y }, SENSITIVE);
  await load('LoadExternal private, d with zeros in front (80 bytes)', PEER, zeros(SENSITIVE, 80));
  await load('LoadExternal private, d of 80 bytes', PEER, fill(80, 5));
  await load('LoadExternal private, d = 0', PEER, new Uint8Array(32));
  await load('LoadExternal private, d = n', PEER, be(ORDER, 32));
  await load('LoadExternal private, d + n', PEER, be(big(SENSITIVE) + ORDER, 33));
  await load('LoadExternal private, d = n and the point off the curve', { x: PEER.y, y: PEER.x }, be(ORDER, 32));
  await load('LoadExternal private, another d', PEER, Uint8Array.of(7));
};

describeWithSwtpm('differential: ECC parameters longer than P-256, up to and past 80 bytes', () => {
  // One swtpm and one simulator for both tests, as each sequence leaves the same state on both.
  const pair = swtpmAndSimulator();
  let ours: DiffSide | undefined;
  const sides = async (): Promise<{ swtpm: DiffSide; simulator: DiffSide }> => ({ swtpm: pair.swtpm, simulator: (ours ??= await pair.simulator()) });

  it('every response code agrees', async () => {
    const report = await runDifferential(sizes, await sides());
    expect(report.differences).toEqual([]);
    expect(report.divergences).toEqual([]);
    // The cases reach past unmarshal on both (a refusal in the command) up to 80 bytes, and stop there at 81.
    const { codes } = report.logs.swtpm;
    expect(codes['ECDH_ZGen, x of 80 bytes']).toBe(0x1e7); // TPM_RC_ECC_POINT + RC_P + RC_1
    expect(codes['ECDH_ZGen, x of 81 bytes']).toBe(0x1d5); // TPM_RC_SIZE + RC_P + RC_1
    expect(codes['Commit, y2 of 81 bytes']).toBe(0x3d5); // TPM_RC_SIZE + RC_P + RC_3
  }, 60_000);

  it('values longer than the curve are numbers: every answer agrees', async () => {
    const report = await runDifferential(numbers, await sides());
    expect(report.differences).toEqual([]);
    expect(report.divergences).toEqual([]);
    const { codes } = report.logs.swtpm;
    expect(codes['ECDH_ZGen, x and y with zeros in front, 80 bytes']).toBe(0);
    expect(codes['ECDH_ZGen, x + p in 33 bytes']).toBe(0);
    expect(codes['Commit, P1 of size 0 and y2 of 81 bytes']).toBe(0x1d5); // TPM_RC_SIZE + RC_P + RC_1: P1 fails first
    expect(codes['LoadExternal public, x of 33 bytes']).toBe(0x2dc); // TPM_RC_KEY + RC_P + RC_2
    expect(codes['LoadExternal public, x and y with zeros in front, 33 bytes']).toBe(0x2dc);
    expect(codes['LoadExternal private, point with zeros in front (80 bytes)']).toBe(0);
    expect(codes['LoadExternal private, d with zeros in front (80 bytes)']).toBe(0);
    expect(codes['LoadExternal private, d of 80 bytes']).toBe(0x87); // TPM_RC_KEY_SIZE, no parameter
    expect(codes['LoadExternal private, another d']).toBe(0xa5); // TPM_RC_BINDING
  }, 60_000);
});
