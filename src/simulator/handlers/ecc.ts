/**
 * Part 3 §14.6 ECC_Parameters, §19.2 Commit, §19.3 EC_Ephemeral and §14.7
 * ZGen_2Phase: the curve table, ECDAA's first phase, and the two phases of a key exchange (Part 1 §C.6, the
 * full-unified model C(2e, 2s) with ECDH). Point arithmetic is
 * @noble/curves' (keygen.ts CURVE_ORDERS, curvePoint): node:crypto gives
 * neither whole points nor curve constants.
 *
 * The ephemeral scalars are commitments (commit.ts): derived from the
 * counter they are answered with, outstanding until used, kept across TPM
 * Restart and Resume and forgotten by a TPM Reset, as libtpms keeps them.
 */
import { bigIntFromBytes, bytesFromBigInt } from '../../tpm/bytes.js';
import { Commit, ECC_Parameters, EC_Ephemeral, ZGen_2Phase } from '../../tpm/commands/index.js';
import { TPM_ALG } from '../../tpm/constants.js';
import { hash } from '../../tpm/crypto/hash.js';
import { TPM_RC, TpmError, rcForHandle, rcForParameter } from '../../tpm/rc.js';
import type { TPMS_ECC_POINT } from '../../tpm/types/index.js';
import { CURVE_ORDERS, curvePoint, type SimulatorCurve } from '../keygen.js';
import type { CommandHandler } from './handler.js';
import { handler, ok } from './handler.js';
import { findObject } from './object.js';
import { commitScalar, committedCount, endCommit, newCommit } from '../commit.js';

const EMPTY = new Uint8Array(0);

function curveOf(curveID: number): SimulatorCurve {
  const curve = CURVE_ORDERS.get(curveID);
  // An unimplemented curve fails TPMI_ECC_CURVE's unmarshal in the reference: TPM_RC_CURVE on the parameter.
  if (curve === undefined) throw new TpmError(rcForParameter(TPM_RC.CURVE, 1));
  return curve;
}

function pointBytes(curve: SimulatorCurve, P: { x: bigint; y: bigint }): TPMS_ECC_POINT {
  return { x: bytesFromBigInt(P.x, curve.size), y: bytesFromBigInt(P.y, curve.size) };
}

/**
 * Part 3 §14.6: the curve's constants (Part 2 §11.2.5.7) as the reference's
 * curve table gives them: KDF1_SP800_56A with the hash of the curve's size
 * (SHA-256 for P-256, SHA-384 for P-384), no signing scheme, cofactor 1.
 */
export const eccParametersHandler = handler(ECC_Parameters, (_ctx, _h, { curveID }) => {
  const curve = curveOf(curveID);
  const c = curve.noble.Point.CURVE();
  const size = curve.size;
  const b = (v: bigint): Uint8Array => bytesFromBigInt(v, size);
  return ok<typeof ECC_Parameters>({
    parameters: {
      curveID,
      keySize: size * 8,
      kdf: { scheme: TPM_ALG.KDF1_SP800_56A, details: { hashAlg: size === 48 ? TPM_ALG.SHA384 : TPM_ALG.SHA256 } },
      sign: { scheme: TPM_ALG.NULL },
      p: b(c.p),
      a: b(c.a),
      b: b(c.b),
      gX: b(c.Gx),
      gY: b(c.Gy),
      n: b(c.n),
      h: bytesFromBigInt(c.h, 1),
    },
  } as never);
});

/** Part 3 §19.3: Q = [r]G for a fresh r, and the counter that names r for ZGen_2Phase. */
export const ecEphemeralHandler = handler(EC_Ephemeral, ({ engine }, _h, { curveID }) => {
  const curve = curveOf(curveID);
  // The reference's CryptGenerateR with no Name, then CryptCommit.
  const { count, counter } = newCommit(engine.state);
  const Q = curve.noble.Point.BASE.multiply(commitScalar(engine.state, curve, EMPTY, count)).toAffine();
  return ok<typeof EC_Ephemeral>({ Q: pointBytes(curve, Q), counter });
});

const P_P1 = 1;
const P_S2 = 2;
const P_Y2 = 3;

/**
 * Part 3 §19.2, the first phase of an anonymous (ECDAA) signature: with a
 * fresh r, K = [ds]P2 and L = [r]P2 when s2 and y2 give P2 = (H_nameAlg(s2)
 * mod p, y2); E = [r]P1, or [r]G for an Empty Point P1 (a TPM2B_ECC_POINT
 * of size 0 is refused at unmarshal: the schema's TPM2B_ECC_POINT). The key
 * is an ECC key whose scheme is ECDAA (anonymous). Checks in the
 * reference's order.
 */
export const commitHandler = handler(Commit, ({ engine }, { signHandle }, { P1, s2, y2 }) => {
  const o = findObject(engine, signHandle);
  if (o === undefined) throw new TpmError(rcForHandle(TPM_RC.HANDLE, 1));
  const pub = o.publicArea;
  if (pub.type !== TPM_ALG.ECC) throw new TpmError(rcForHandle(TPM_RC.KEY, 1));
  // Only an anonymous scheme (ECDAA) may commit (CryptIsSchemeAnonymous).
  if (pub.parameters.scheme.scheme !== TPM_ALG.ECDAA) throw new TpmError(rcForHandle(TPM_RC.SCHEME, 1));
  // s2 and y2 come together or not at all.
  if ((s2.length === 0) !== (y2.length === 0)) throw new TpmError(rcForParameter(TPM_RC.SIZE, P_Y2));
  const curve = CURVE_ORDERS.get(pub.parameters.curveID);
  if (curve === undefined) throw new TpmError(rcForHandle(TPM_RC.KEY, 1));
  const field = curve.noble.Point.CURVE().p;
  // r for the count about to be committed, bound to the key's Name (the reference's CryptGenerateR(&r, NULL, curve, name)).
  const r = commitScalar(engine.state, curve, o.name, engine.state.commitCounter);
  let P2;
  if (s2.length !== 0) {
    // x2 = H_nameAlg(s2) mod p, padded to the size of p.
    const x2 = bytesFromBigInt(bigIntFromBytes(hash(pub.nameAlg, s2)) % field, curve.size);
    P2 = curvePoint(curve, { x: x2, y: y2 });
    if (P2 === undefined) throw new TpmError(rcForParameter(TPM_RC.ECC_POINT, P_S2));
    if (o.publicOnly === true) throw new TpmError(rcForHandle(TPM_RC.KEY, 1));
  }
  // An Empty Point (x and y both empty, a TPM2B of size 4) is no P1: E = [r]G (the reference checks P1 only when its size > 4).
  const B = P1.x.length === 0 && P1.y.length === 0 ? curve.noble.Point.BASE : curvePoint(curve, P1);
  if (B === undefined) throw new TpmError(rcForParameter(TPM_RC.ECC_POINT, P_P1));
  // Without s2/y2, K and L are Empty Points (Part 1 §C: x and y both empty), a TPM2B_ECC_POINT of size 4 as
  // libtpms answers; a size-0 TPM2B is not one (tpm2-tss then reads on into L and E).
  const emptyPoint: TPMS_ECC_POINT = { x: new Uint8Array(0), y: new Uint8Array(0) };
  let K = emptyPoint;
  let L = emptyPoint;
  let E = emptyPoint;
  if (P2 !== undefined) {
    const ds = bigIntFromBytes(o.sensitive.sensitive as Uint8Array) % curve.order;
    if (ds === 0n) throw new TpmError(rcForHandle(TPM_RC.KEY, 1));
    K = pointBytes(curve, P2.multiply(ds).toAffine());
    L = pointBytes(curve, P2.multiply(r).toAffine());
  }
  E = pointBytes(curve, B.multiply(r).toAffine());
  return ok<typeof Commit>({ K, L, E, counter: newCommit(engine.state).counter } as never);
});

/** The associate value function of SP 800-56A §5.7.2.2: (x mod 2^⌈f/2⌉) + 2^⌈f/2⌉, f = ⌈log2 n⌉. */
function avf(curve: SimulatorCurve, x: bigint): bigint {
  const f = curve.order.toString(2).length;
  const half = 1n << BigInt(Math.ceil(f / 2));
  return (x % half) + half;
}

const P_IN_QSB = 1;
const P_IN_QEB = 2;
const P_IN_SCHEME = 3;
const P_COUNTER = 4;

/**
 * Part 3 §14.7 with ECDH (C(2e, 2s), SP 800-56A §6.1.1): outZ1 = [dsA]QsB
 * with keyA's static scalar, outZ2 = [deA]QeB with the ephemeral scalar of
 * `counter`, which is used up; with ECMQV (SP 800-56A §6.1.1.4) outZ1 is
 * the MQV point and outZ2 is empty. SM2 is not implemented here (TPM_RC_SCHEME on inScheme).
 */
export const zGen2PhaseHandler = handler(ZGen_2Phase, ({ engine }, { keyA }, { inQsB, inQeB, inScheme, counter }) => {
  const o = findObject(engine, keyA);
  if (o === undefined) throw new TpmError(rcForHandle(TPM_RC.HANDLE, 1));
  const pub = o.publicArea;
  if (pub.type !== TPM_ALG.ECC) throw new TpmError(rcForHandle(TPM_RC.KEY, 1));
  const a = pub.objectAttributes;
  if (a.restricted || !a.decrypt) throw new TpmError(rcForHandle(TPM_RC.ATTRIBUTES, 1));
  // The key's scheme when it has one (and then inScheme must name it), else the caller's.
  let scheme: number = pub.parameters.scheme.scheme;
  if (scheme !== TPM_ALG.NULL && scheme !== inScheme) throw new TpmError(rcForParameter(TPM_RC.SCHEME, P_IN_SCHEME));
  if (scheme === TPM_ALG.NULL) scheme = inScheme;
  const curve = CURVE_ORDERS.get(pub.parameters.curveID);
  if (curve === undefined || o.publicOnly === true) throw new TpmError(rcForHandle(TPM_RC.KEY, 1));
  const QsB = curvePoint(curve, inQsB);
  if (QsB === undefined) throw new TpmError(rcForParameter(TPM_RC.ECC_POINT, P_IN_QSB));
  const QeB = curvePoint(curve, inQeB);
  if (QeB === undefined) throw new TpmError(rcForParameter(TPM_RC.ECC_POINT, P_IN_QEB));
  const count = committedCount(engine.state, counter);
  if (count === undefined) throw new TpmError(rcForParameter(TPM_RC.VALUE, P_COUNTER));
  if (scheme !== TPM_ALG.ECDH && scheme !== TPM_ALG.ECMQV) throw new TpmError(rcForParameter(TPM_RC.SCHEME, P_IN_SCHEME));
  const ds = bigIntFromBytes(o.sensitive.sensitive as Uint8Array) % curve.order;
  if (ds === 0n) throw new TpmError(rcForHandle(TPM_RC.KEY, 1));
  const de = commitScalar(engine.state, curve, EMPTY, count);
  let outZ1: TPMS_ECC_POINT;
  let outZ2: TPMS_ECC_POINT;
  if (scheme === TPM_ALG.ECDH) {
    outZ1 = pointBytes(curve, QsB.multiply(ds).toAffine());
    outZ2 = pointBytes(curve, QeB.multiply(de).toAffine());
  } else {
    // ECMQV, C(2e, 2s) (SP 800-56A §5.7.2.3): implicitsig = de + avf(QeA)·ds mod n, P = [h·implicitsig](QeB + [avf(QeB)]QsB).
    const n = curve.order;
    const QeA = curve.noble.Point.BASE.multiply(de);
    const implicitsig = (de + avf(curve, QeA.toAffine().x) * ds) % n;
    const P = QeB.add(QsB.multiply(avf(curve, QeB.toAffine().x))).multiply(implicitsig * curve.noble.Point.CURVE().h);
    if (P.is0()) throw new TpmError(TPM_RC.NO_RESULT);
    outZ1 = pointBytes(curve, P.toAffine());
    outZ2 = { x: new Uint8Array(0), y: new Uint8Array(0) };
  }
  // A counter is good for one exchange (the reference's CryptEndCommit).
  endCommit(engine.state, counter);
  return ok<typeof ZGen_2Phase>({ outZ1, outZ2 });
});

export const ECC_HANDLERS: readonly CommandHandler[] = [eccParametersHandler, commitHandler, ecEphemeralHandler, zGen2PhaseHandler] as unknown as readonly CommandHandler[];
