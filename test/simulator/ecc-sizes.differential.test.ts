/**
 * ECC parameters of 67..81 bytes, swtpm against the simulator: both take a
 * TPM2B_ECC_PARAMETER of up to 80 bytes (libtpms's MAX_ECC_KEY_BYTES, BN
 * P-638; LIMITS.MAX_ECC_KEY_BYTES), so a P-256 key meets one longer than its
 * curve in the command (TPM_RC_ECC_POINT, TPM_RC_SIGNATURE, …) and an 81-byte
 * one is refused at unmarshal (TPM_RC_SIZE on that parameter). Every response
 * code must agree (no divergence row applies).
 */
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import * as C from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_CC, TPM_RH } from '../../src/tpm/constants.js';
import { externalObject } from '../../src/tpm/duplication.js';
import { TPMA_OBJECT, type TPMS_ECC_POINT } from '../../src/tpm/types/index.js';
import { runDifferential, startSide, type DiffSide, type Sequence } from '../support/differential.js';
import { describeWithSwtpm } from '../support/swtpm.js';

const EC_KEY = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
const KEY = externalObject({ type: 'ecc', privateKey: EC_KEY }, { objectAttributes: TPMA_OBJECT.of({ userWithAuth: true, noDA: true, sign: true, decrypt: true }) });
const PEER = (KEY.publicArea as unknown as { unique: TPMS_ECC_POINT }).unique;
const SHA256 = TPM_ALG.SHA256;

const fill = (n: number, v: number): Uint8Array => new Uint8Array(n).fill(v);
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

describeWithSwtpm('differential: ECC parameters longer than P-256, up to and past 80 bytes', () => {
  let swtpm: DiffSide | undefined;
  let simulator: DiffSide | undefined;
  beforeAll(async () => {
    [swtpm, simulator] = await Promise.all([startSide('swtpm'), startSide('simulator')]);
  }, 30_000);
  afterAll(async () => {
    await swtpm?.stop();
    await simulator?.stop();
  });

  it('every response code agrees', async () => {
    const report = await runDifferential(sizes, { swtpm: swtpm!, simulator: simulator! });
    expect(report.differences).toEqual([]);
    expect(report.divergences).toEqual([]);
    // The cases reach past unmarshal on both (a refusal in the command) up to 80 bytes, and stop there at 81.
    const { codes } = report.logs.swtpm;
    expect(codes['ECDH_ZGen, x of 80 bytes']).toBe(0x1e7); // TPM_RC_ECC_POINT + RC_P + RC_1
    expect(codes['ECDH_ZGen, x of 81 bytes']).toBe(0x1d5); // TPM_RC_SIZE + RC_P + RC_1
    expect(codes['Commit, y2 of 81 bytes']).toBe(0x3d5); // TPM_RC_SIZE + RC_P + RC_3
  }, 60_000);
});
