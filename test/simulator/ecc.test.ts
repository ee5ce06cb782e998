/**
 * The software TPM's elliptic-curve arithmetic on @noble/curves (keygen.ts's
 * curve table and curvePoint, ECDSA over a digest in signing.ts, whole-point
 * ECDH in handlers/asymmetric.ts), checked independently: the curve
 * constants against FIPS 186-4 and node:crypto, signatures against
 * node:crypto's verify (which hashes and truncates the message itself), ECDH
 * points against node:crypto's scalar products, and both against swtpm.
 */
import { createECDH, createHash, generateKeyPairSync, getCurves, sign as nodeSign, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createPrimary, eccEcdhTemplate, eccSigningTemplate, loadExternal } from '../../src/client/index.js';
import { ECDH_KeyGen, ECDH_ZGen, Sign, VerifySignature } from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_ECC, TPM_RH, TPM_ST } from '../../src/tpm/constants.js';
import { nodeHashName } from '../../src/tpm/crypto/hash.js';
import { objectName } from '../../src/tpm/names.js';
import { TPM_RC, rcForParameter } from '../../src/tpm/rc.js';
import { runCommand } from '../../src/tpm/run.js';
import { publicKeyFromArea } from '../../src/tpm/secret.js';
import type { Transport } from '../../src/tpm/transport/index.js';
import type { TPMS_ECC_POINT, TPMT_PUBLIC, TPMT_SIGNATURE } from '../../src/tpm/types/index.js';
import { TpmEngine } from '../../src/simulator/index.js';
import { CURVE_ORDERS, curvePoint } from '../../src/simulator/keygen.js';
import { describeWithSwtpm } from '../support/swtpm.js';
import { rcOf } from '../support/probe.js';
import { startedEngine, swtpmAndSimulator } from '../support/fixture.js';

/** FIPS 186-4 D.1.2.3 / D.1.2.4: field primes p and orders n. */
const FIPS = {
  [TPM_ECC.NIST_P256]: {
    node: 'prime256v1',
    jwk: 'P-256',
    size: 32,
    p: 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn,
    n: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
  },
  [TPM_ECC.NIST_P384]: {
    node: 'secp384r1',
    jwk: 'P-384',
    size: 48,
    p: 0xfffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffffn,
    n: 0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
  },
} as const;
type Curve = keyof typeof FIPS;

const EMPTY = new Uint8Array(0);
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const b64 = (s: unknown): Uint8Array => new Uint8Array(Buffer.from(String(s), 'base64url'));
const big = (b: Uint8Array): bigint => (b.length === 0 ? 0n : BigInt('0x' + hex(b)));
const fixed = (v: bigint, size: number): Uint8Array => new Uint8Array(Buffer.from(v.toString(16).padStart(size * 2, '0'), 'hex'));
const rc = rcOf;


/** [k]G by node:crypto. */
function timesG(curve: Curve, k: bigint): TPMS_ECC_POINT {
  const { node, size } = FIPS[curve];
  const e = createECDH(node);
  e.setPrivateKey(fixed(k, size));
  const p = new Uint8Array(e.getPublicKey());
  return { x: p.slice(1, 1 + size), y: p.slice(1 + size) };
}

function pointOf(key: KeyObject): TPMS_ECC_POINT {
  const jwk = key.export({ format: 'jwk' });
  return { x: b64(jwk.x), y: b64(jwk.y) };
}

/** A node:crypto key straight into the engine's object table, so the test knows d. */
function loadNodeKey(engine: TpmEngine, template: TPMT_PUBLIC, privateKey: KeyObject): { handle: number; publicArea: TPMT_PUBLIC } {
  const publicArea = { ...template, unique: pointOf(privateKey) } as TPMT_PUBLIC;
  const name = objectName(publicArea);
  const handle = engine.volatile.objects.load({
    publicArea,
    sensitive: { sensitiveType: TPM_ALG.ECC, authValue: EMPTY, seedValue: EMPTY, sensitive: b64(privateKey.export({ format: 'jwk' }).d) } as never,
    name,
    qualifiedName: name,
    hierarchy: TPM_RH.OWNER,
    primary: false,
    key: privateKey,
  });
  return { handle, publicArea };
}

const NO_TICKET = { tag: TPM_ST.HASHCHECK, hierarchy: TPM_RH.NULL, digest: EMPTY };
const ecdsaScheme = (hashAlg: number) => ({ scheme: TPM_ALG.ECDSA, details: { hashAlg } }) as never;

async function tpmSign(t: Transport, keyHandle: number, hashAlg: number, digest: Uint8Array): Promise<{ r: Uint8Array; s: Uint8Array }> {
  const sig = (await runCommand(t, Sign, { keyHandle }, { digest, inScheme: ecdsaScheme(hashAlg), validation: NO_TICKET as never })).params.signature;
  const { signatureR, signatureS } = (sig as { signature: { signatureR: Uint8Array; signatureS: Uint8Array } }).signature;
  return { r: signatureR, s: signatureS };
}

const ecdsaSignature = (hashAlg: number, r: Uint8Array, s: Uint8Array): TPMT_SIGNATURE =>
  ({ sigAlg: TPM_ALG.ECDSA, signature: { hash: hashAlg, signatureR: r, signatureS: s } }) as never;

async function tpmVerify(t: Transport, keyHandle: number, digest: Uint8Array, signature: TPMT_SIGNATURE): Promise<number> {
  return rc(runCommand(t, VerifySignature, { keyHandle }, { digest, signature }));
}

describe('simulator curve table (keygen.ts CURVE_ORDERS, curvePoint)', () => {
  it('has P-256 and P-384 with node:crypto names, sizes and FIPS 186-4 orders; noble\'s base point is node:crypto\'s [1]G', () => {
    expect([...CURVE_ORDERS.keys()].sort()).toEqual([TPM_ECC.NIST_P256, TPM_ECC.NIST_P384]);
    for (const [id, c] of CURVE_ORDERS) {
      const f = FIPS[id as Curve];
      expect({ curveID: c.curveID, nodeName: c.nodeName, size: c.size, order: c.order }).toEqual({ curveID: id, nodeName: f.node, size: f.size, order: f.n });
      expect(getCurves()).toContain(c.nodeName);
      const g = timesG(id as Curve, 1n);
      const G = c.noble.Point.BASE.toAffine();
      expect({ x: hex(fixed(G.x, c.size)), y: hex(fixed(G.y, c.size)) }).toEqual({ x: hex(g.x), y: hex(g.y) });
    }
  });

  it('curvePoint accepts points of the curve and nothing else', () => {
    for (const [id, c] of CURVE_ORDERS) {
      const { p, size } = FIPS[id as Curve];
      const q = pointOf(generateKeyPairSync('ec', { namedCurve: FIPS[id as Curve].jwk }).privateKey);
      const P = curvePoint(c, q);
      expect(P).toBeDefined();
      expect([hex(fixed(P!.x, size)), hex(fixed(P!.y, size))]).toEqual([hex(q.x), hex(q.y)]);
      const yFlip = q.y.slice();
      yFlip[size - 1]! ^= 1;
      expect(curvePoint(c, { x: q.x, y: yFlip })).toBeUndefined();
      // −Q = (x, p − y) is on the curve too.
      expect(curvePoint(c, { x: q.x, y: fixed(p - big(q.y), size) })).toBeDefined();
      // Coordinates are numbers mod p, as libtpms reads them (BnFrom2B, BnIsOnCurve): x + p is Q, and so are leading zeros.
      expect(curvePoint(c, { x: fixed(big(q.x) + p, size + 1), y: q.y })?.equals(P!)).toBe(true);
      expect(curvePoint(c, { x: Uint8Array.from([0, ...q.x]), y: q.y })?.equals(P!)).toBe(true);
      expect(curvePoint(c, { x: fixed(p, size), y: q.y })).toBeUndefined(); // (0, y)
      expect(curvePoint(c, { x: EMPTY, y: EMPTY })).toBeUndefined();
      expect(curvePoint(c, { x: new Uint8Array(size), y: new Uint8Array(size) })).toBeUndefined(); // (0, 0): not the point at infinity here
    }
  });
});

describe('simulator ECDSA over a digest (k·G from node:crypto, verified by noble with prehash off)', () => {
  it('signs digests shorter and longer than the order; node:crypto verifies (it truncates as FIPS 186-4 §6.4); VerifySignature agrees', async () => {
    const { t, tpm } = await startedEngine();
    const cases: [Curve, number][] = [
      [TPM_ECC.NIST_P256, TPM_ALG.SHA256],
      [TPM_ECC.NIST_P256, TPM_ALG.SHA384],
      [TPM_ECC.NIST_P256, TPM_ALG.SHA1],
      [TPM_ECC.NIST_P384, TPM_ALG.SHA256],
      [TPM_ECC.NIST_P384, TPM_ALG.SHA512],
    ];
    for (const [curveID, hashAlg] of cases) {
      const key = await createPrimary(tpm, TPM_RH.OWNER, eccSigningTemplate({ curveID, scheme: { scheme: TPM_ALG.NULL } as never, attributes: { noDA: true } }));
      const msg = Buffer.from(`message for curve ${curveID} hash ${hashAlg}`);
      const digest = new Uint8Array(createHash(nodeHashName(hashAlg)).update(msg).digest());
      const { r, s } = await tpmSign(t, key.handle, hashAlg, digest);
      expect([r.length, s.length]).toEqual([FIPS[curveID].size, FIPS[curveID].size]);
      const pub = publicKeyFromArea(key.publicArea);
      expect(nodeVerify(nodeHashName(hashAlg), msg, { key: pub, dsaEncoding: 'ieee-p1363' }, Buffer.concat([r, s])), `curve ${curveID} hash ${hashAlg}`).toBe(true);
      expect(nodeVerify(nodeHashName(hashAlg), Buffer.from('another message'), { key: pub, dsaEncoding: 'ieee-p1363' }, Buffer.concat([r, s]))).toBe(false);
      expect(await tpmVerify(t, key.handle, digest, ecdsaSignature(hashAlg, r, s))).toBe(0);
      const other = digest.slice();
      other[0]! ^= 0x80; // a bit that survives truncation
      expect(await tpmVerify(t, key.handle, other, ecdsaSignature(hashAlg, r, s))).toBe(rcForParameter(TPM_RC.SIGNATURE, 2));
      await tpm.flush(key);
    }
  });

  it('draws a fresh k each time (from the TPM\'s RNG, as a TPM\'s ECDSA does), so the same digest gives different signatures', async () => {
    const { t, tpm } = await startedEngine();
    const key = await createPrimary(tpm, TPM_RH.OWNER, eccSigningTemplate({ attributes: { noDA: true } }));
    const digest = new Uint8Array(createHash('sha256').update('same digest').digest());
    const a = await tpmSign(t, key.handle, TPM_ALG.SHA256, digest);
    const b = await tpmSign(t, key.handle, TPM_ALG.SHA256, digest);
    expect(hex(a.r)).not.toBe(hex(b.r));
    for (const sig of [a, b]) expect(await tpmVerify(t, key.handle, digest, ecdsaSignature(TPM_ALG.SHA256, sig.r, sig.s))).toBe(0);
  });

  it('verifies high-s signatures (r, n − s) as OpenSSL does; r or s out of [1, n−1] are TPM_RC_SIGNATURE', async () => {
    const { engine, t } = await startedEngine();
    for (const curveID of [TPM_ECC.NIST_P256, TPM_ECC.NIST_P384] as const) {
      const { n, size, jwk } = FIPS[curveID];
      const ec = generateKeyPairSync('ec', { namedCurve: jwk }).privateKey;
      const { handle } = loadNodeKey(engine, eccSigningTemplate({ curveID }), ec);
      const msg = Buffer.from('high s');
      const digest = new Uint8Array(createHash('sha256').update(msg).digest());
      const raw = nodeSign('sha256', msg, { key: ec, dsaEncoding: 'ieee-p1363' });
      const r = new Uint8Array(raw.subarray(0, size));
      const s = new Uint8Array(raw.subarray(size));
      const negS = fixed(n - big(s), size);
      // Exactly one of s and n − s is above n/2: both forms are valid ECDSA.
      expect(nodeVerify('sha256', msg, { key: ec, dsaEncoding: 'ieee-p1363' }, Buffer.concat([r, negS]))).toBe(true);
      expect(await tpmVerify(t, handle, digest, ecdsaSignature(TPM_ALG.SHA256, r, s))).toBe(0);
      expect(await tpmVerify(t, handle, digest, ecdsaSignature(TPM_ALG.SHA256, r, negS))).toBe(0);
      const bad = rcForParameter(TPM_RC.SIGNATURE, 2);
      expect(await tpmVerify(t, handle, digest, ecdsaSignature(TPM_ALG.SHA256, r, fixed(n + big(s), size + 1)))).toBe(bad);
      expect(await tpmVerify(t, handle, digest, ecdsaSignature(TPM_ALG.SHA256, fixed(n, size), s))).toBe(bad);
      expect(await tpmVerify(t, handle, digest, ecdsaSignature(TPM_ALG.SHA256, r, new Uint8Array(size)))).toBe(bad);
      expect(await tpmVerify(t, handle, digest, ecdsaSignature(TPM_ALG.SHA256, EMPTY, s))).toBe(bad);
      engine.volatile.objects.flush(handle);
    }
  });
});

describe('simulator ECDH on P-384 (noble whole-point multiplication)', () => {
  const curveID = TPM_ECC.NIST_P384;
  const { n, p, size, jwk, node } = FIPS[curveID];

  it('ZGen: [d]P is [d·e]G for P = [e]G; x as node:crypto\'s ECDH; [d](−P) = −[d]P', async () => {
    const { engine, t } = await startedEngine();
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: jwk });
    const d = big(b64(privateKey.export({ format: 'jwk' }).d));
    const { handle, publicArea } = loadNodeKey(engine, eccEcdhTemplate({ curveID }), privateKey);
    const q = (publicArea as { unique: TPMS_ECC_POINT }).unique;
    for (let i = 0; i < 3; i++) {
      const peer = createECDH(node);
      peer.generateKeys();
      const e = big(new Uint8Array(peer.getPrivateKey()));
      const inPoint = timesG(curveID, e);
      const z = (await runCommand(t, ECDH_ZGen, { keyHandle: handle }, { inPoint })).params.outPoint;
      expect({ x: hex(z.x), y: hex(z.y) }).toEqual({ x: hex(timesG(curveID, (d * e) % n).x), y: hex(timesG(curveID, (d * e) % n).y) });
      expect(hex(z.x)).toBe(peer.computeSecret(Buffer.concat([Buffer.of(4), q.x, q.y])).toString('hex'));
      const neg = (await runCommand(t, ECDH_ZGen, { keyHandle: handle }, { inPoint: { x: inPoint.x, y: fixed(p - big(inPoint.y), size) } })).params.outPoint;
      expect({ x: hex(neg.x), y: hex(neg.y) }).toEqual({ x: hex(z.x), y: hex(fixed(p - big(z.y), size)) });
    }
    const offCurve = { x: q.x, y: fixed(big(q.y) ^ 1n, size) };
    expect(await rc(runCommand(t, ECDH_ZGen, { keyHandle: handle }, { inPoint: offCurve }))).toBe(rcForParameter(TPM_RC.ECC_POINT, 1));
  });

  it('KeyGen: zPoint = [d_e]Q with pubPoint = [d_e]G; the owner gets zPoint back from ZGen(pubPoint)', async () => {
    const { engine, t } = await startedEngine();
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: jwk });
    const { handle } = loadNodeKey(engine, eccEcdhTemplate({ curveID }), privateKey);
    const { zPoint, pubPoint } = (await runCommand(t, ECDH_KeyGen, { keyHandle: handle }, {})).params;
    const mine = createECDH(node);
    mine.setPrivateKey(b64(privateKey.export({ format: 'jwk' }).d));
    expect(hex(zPoint.x)).toBe(mine.computeSecret(Buffer.concat([Buffer.of(4), pubPoint.x, pubPoint.y])).toString('hex'));
    const again = (await runCommand(t, ECDH_ZGen, { keyHandle: handle }, { inPoint: pubPoint })).params.outPoint;
    expect(again).toEqual(zPoint);
    const second = (await runCommand(t, ECDH_KeyGen, { keyHandle: handle }, {})).params;
    expect(hex(second.pubPoint.x)).not.toBe(hex(pubPoint.x)); // a fresh ephemeral key each time
  });
});

describeWithSwtpm('simulator ECC agrees with swtpm (P-384)', () => {
  const tpms = swtpmAndSimulator();

  const external = { fixedTPM: false, fixedParent: false, sensitiveDataOrigin: false, noDA: true } as const;

  it('each verifies the other\'s ECDSA signatures (SHA-512 digest truncated to 384 bits), high s included', async () => {
    const curveID = TPM_ECC.NIST_P384;
    const { n, size } = FIPS[curveID];
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
    const { engine, probe: t } = await tpms.simulator();
    const { handle, publicArea } = loadNodeKey(engine, eccSigningTemplate({ curveID, scheme: { scheme: TPM_ALG.NULL } as never, attributes: external }), ec);
    const swKey = await loadExternal(tpms.swtpm.tpm, publicArea, {
      sensitive: { sensitiveType: TPM_ALG.ECC, authValue: EMPTY, seedValue: EMPTY, sensitive: b64(ec.export({ format: 'jwk' }).d) } as never,
    });
    const digest = new Uint8Array(createHash('sha512').update('both TPMs').digest());
    const fromSim = await tpmSign(t, handle, TPM_ALG.SHA512, digest);
    const fromSw = await tpmSign(tpms.swtpm.probe, swKey.handle, TPM_ALG.SHA512, digest);
    const other = digest.slice();
    other[1]! ^= 1;
    const results = async (tr: Transport, h: number) => [
      await tpmVerify(tr, h, digest, ecdsaSignature(TPM_ALG.SHA512, fromSim.r, fromSim.s)),
      await tpmVerify(tr, h, digest, ecdsaSignature(TPM_ALG.SHA512, fromSw.r, fromSw.s)),
      await tpmVerify(tr, h, digest, ecdsaSignature(TPM_ALG.SHA512, fromSw.r, fixed(n - big(fromSw.s), size))),
      await tpmVerify(tr, h, other, ecdsaSignature(TPM_ALG.SHA512, fromSim.r, fromSim.s)),
    ];
    const sw384 = await results(tpms.swtpm.probe, swKey.handle);
    expect(sw384).toEqual([0, 0, 0, rcForParameter(TPM_RC.SIGNATURE, 2)]);
    expect(await results(t, handle)).toEqual(sw384);
    await tpms.swtpm.tpm.flush(swKey);
  });

  it('ECDH_ZGen with the same private key gives the same points', async () => {
    const curveID = TPM_ECC.NIST_P384;
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    const { engine, probe: t } = await tpms.simulator();
    const { handle, publicArea } = loadNodeKey(engine, eccEcdhTemplate({ curveID, attributes: external }), privateKey);
    const swKey = await loadExternal(tpms.swtpm.tpm, publicArea, {
      sensitive: { sensitiveType: TPM_ALG.ECC, authValue: EMPTY, seedValue: EMPTY, sensitive: b64(privateKey.export({ format: 'jwk' }).d) } as never,
    });
    for (let i = 0; i < 2; i++) {
      const inPoint = pointOf(generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey);
      const a = (await runCommand(tpms.swtpm.probe, ECDH_ZGen, { keyHandle: swKey.handle }, { inPoint })).params.outPoint;
      const b = (await runCommand(t, ECDH_ZGen, { keyHandle: handle }, { inPoint })).params.outPoint;
      expect(b).toEqual(a);
    }
    await tpms.swtpm.tpm.flush(swKey);
  });
});
