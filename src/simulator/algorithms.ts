/**
 * The algorithms this software TPM implements, in one place: GetCapability
 * (TPM_CAP_ALGS, TPM_CAP_ECC_CURVES) reports them and TestParms (Part 3
 * §30.3) checks a parameter set against them, so the two never disagree.
 */
import { TPM_ALG } from '../tpm/constants.js';
import { TPM_RC } from '../tpm/rc.js';
import { TPMA_ALGORITHM, type TPMT_PUBLIC_PARMS } from '../tpm/types/index.js';
import { ECC_CURVES, RSA_KEY_BITS } from './keygen.js';

const A = TPMA_ALGORITHM.of;

/** TPM_CAP_ALGS (Part 2 §10.1 TPMS_ALG_PROPERTY), ascending by algorithm ID; node:crypto provides each. TPM_ALG_NULL is not listed (nor by libtpms) but always accepted. */
export const IMPLEMENTED_ALGORITHMS: readonly (readonly [number, TPMA_ALGORITHM])[] = [
  [TPM_ALG.RSA, A({ asymmetric: true, object: true })],
  [TPM_ALG.SHA1, A({ hash: true })],
  [TPM_ALG.HMAC, A({ hash: true, signing: true })],
  [TPM_ALG.AES, A({ symmetric: true })],
  [TPM_ALG.MGF1, A({ hash: true, method: true })],
  [TPM_ALG.KEYEDHASH, A({ hash: true, object: true, signing: true, encrypting: true })],
  [TPM_ALG.XOR, A({ symmetric: true, hash: true })],
  [TPM_ALG.SHA256, A({ hash: true })],
  [TPM_ALG.SHA384, A({ hash: true })],
  [TPM_ALG.SHA512, A({ hash: true })],
  [TPM_ALG.RSASSA, A({ asymmetric: true, signing: true })],
  [TPM_ALG.RSAES, A({ asymmetric: true, encrypting: true })],
  [TPM_ALG.RSAPSS, A({ asymmetric: true, signing: true })],
  [TPM_ALG.OAEP, A({ asymmetric: true, encrypting: true })],
  [TPM_ALG.ECDSA, A({ asymmetric: true, signing: true })],
  [TPM_ALG.ECDH, A({ asymmetric: true, method: true })],
  [TPM_ALG.KDF1_SP800_56A, A({ hash: true, method: true })],
  [TPM_ALG.KDF1_SP800_108, A({ hash: true, method: true })],
  [TPM_ALG.ECC, A({ asymmetric: true, object: true })],
  [TPM_ALG.SYMCIPHER, A({ object: true })],
  [TPM_ALG.CTR, A({ symmetric: true, encrypting: true })],
  [TPM_ALG.OFB, A({ symmetric: true, encrypting: true })],
  [TPM_ALG.CBC, A({ symmetric: true, encrypting: true })],
  [TPM_ALG.CFB, A({ symmetric: true, encrypting: true })],
  [TPM_ALG.ECB, A({ symmetric: true, encrypting: true })],
];

const IMPLEMENTED = new Map(IMPLEMENTED_ALGORITHMS);

/** TPM_CAP_ECC_CURVES: the curves keygen.ts can make keys on, ascending. */
export const IMPLEMENTED_CURVES: readonly number[] = [...ECC_CURVES].sort((a, b) => a - b);

function implemented(alg: number, kind: keyof TPMA_ALGORITHM): boolean {
  return alg === TPM_ALG.NULL || IMPLEMENTED.get(alg)?.[kind] === true;
}

/** A scheme's or KDF's hash, when it has one (every TPMU_*_SCHEME member with details names hashAlg). */
function hashOf(s: object): number | undefined {
  return detailsOf(s)?.hashAlg;
}

function detailsOf(s: object): { hashAlg?: number; kdf?: number } | undefined {
  return 'details' in s ? ((s.details as { hashAlg?: number; kdf?: number } | null) ?? undefined) : undefined;
}

/**
 * Part 3 §30.3: 0 when the TPM supports every algorithm and size in `p`,
 * else the base response code the reference's unmarshaling gives for the
 * first one it does not (TPM_RC_HASH, _SYMMETRIC, _MODE, _SCHEME, _KDF,
 * _CURVE, or _VALUE for an RSA key size: TPMI_RSA_KEY_BITS).
 * Only what unmarshaling checks is checked here — consistency between
 * attributes and schemes is a matter for object creation, as in the reference.
 */
export function publicParmsRc(p: TPMT_PUBLIC_PARMS): number {
  const hash = (alg: number | undefined): boolean => alg === undefined || implemented(alg, 'hash');
  if (p.type === TPM_ALG.KEYEDHASH) {
    const s = p.parameters.scheme;
    if (!implemented(s.scheme, 'hash') && s.scheme !== TPM_ALG.XOR) return TPM_RC.SCHEME;
    if (!hash(hashOf(s))) return TPM_RC.HASH;
    const kdf = detailsOf(s)?.kdf;
    if (kdf !== undefined && !implemented(kdf, 'method')) return TPM_RC.KDF;
    return 0;
  }
  const sym = p.type === TPM_ALG.SYMCIPHER ? p.parameters.sym : p.parameters.symmetric;
  if (!implemented(sym.algorithm, 'symmetric')) return TPM_RC.SYMMETRIC;
  const mode = 'mode' in sym ? sym.mode : undefined;
  if (mode !== undefined && !implemented(mode, 'symmetric')) return TPM_RC.MODE;
  if (p.type === TPM_ALG.SYMCIPHER) return 0;
  const scheme = p.parameters.scheme;
  if (!implemented(scheme.scheme, 'asymmetric')) return TPM_RC.SCHEME;
  if (!hash(hashOf(scheme))) return TPM_RC.HASH;
  if (p.type === TPM_ALG.RSA) return RSA_KEY_BITS.includes(p.parameters.keyBits) ? 0 : TPM_RC.VALUE;
  if (!IMPLEMENTED_CURVES.includes(p.parameters.curveID)) return TPM_RC.CURVE;
  const kdf = p.parameters.kdf;
  if (!implemented(kdf.scheme, 'method')) return TPM_RC.KDF;
  return hash(hashOf(kdf)) ? 0 : TPM_RC.HASH;
}
