/**
 * The algorithms this software TPM implements, in one place: GetCapability
 * (TPM_CAP_ALGS, TPM_CAP_ECC_CURVES) reports them and TestParms (Part 3
 * §30.3) checks a parameter set against them, so the two never disagree.
 * A profile (profiles.ts) narrows the set; `profileParamsRc` refuses what it
 * leaves out wherever a command's parameters name it, as libtpms's
 * unmarshaling refuses an algorithm its runtime profile disabled.
 */
import type { AnyCommand } from '../tpm/command.js';
import { TPM_ALG } from '../tpm/constants.js';
import { TPM_RC, rcForParameter } from '../tpm/rc.js';
import { TPMA_ALGORITHM, type TPMT_PUBLIC_PARMS } from '../tpm/types/index.js';
import type { Codec } from '../tpm/wire/codec.js';
import { ECC_CURVES } from './keygen.js';
import { AES_KEY_BITS, TPM_PROFILES, type TpmProfile } from './profiles.js';

const A = TPMA_ALGORITHM.of;

/**
 * TPM_CAP_ALGS of the libtpms profile (Part 2 §10.1 TPMS_ALG_PROPERTY), ascending by algorithm ID; node:crypto
 * provides each. TPM_ALG_NULL is not listed (nor by libtpms) but always accepted. A profile lists a subset (profileAlgorithms).
 */
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
  // Part 1 §C.4: Commit, then Sign with the commit counter (signing.ts ecdaa).
  [TPM_ALG.ECDAA, A({ asymmetric: true, signing: true })],
  // Part 1 §C.5 (signing.ts ecSchnorr).
  [TPM_ALG.ECSCHNORR, A({ asymmetric: true, signing: true })],
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

/** TPM_CAP_ECC_CURVES of the libtpms profile: the curves keygen.ts can make keys on, ascending. */
export const IMPLEMENTED_CURVES: readonly number[] = [...ECC_CURVES].sort((a, b) => a - b);

/** What a profile's lists leave out of IMPLEMENTED_ALGORITHMS: its hashes and block cipher modes. */
function profileKeeps(profile: TpmProfile, alg: number): boolean {
  const a = profile.algorithms;
  if (TPM_PROFILES.libtpms.algorithms.hashes.includes(alg as never)) return a.hashes.includes(alg);
  if (TPM_PROFILES.libtpms.algorithms.symmetricModes.includes(alg as never)) return a.symmetricModes.includes(alg);
  return true;
}

const tables = new WeakMap<TpmProfile, ReadonlyMap<number, TPMA_ALGORITHM>>();

/** TPM_CAP_ALGS under `profile`, ascending by algorithm ID. */
export function profileAlgorithms(profile: TpmProfile): ReadonlyMap<number, TPMA_ALGORITHM> {
  let t = tables.get(profile);
  if (t === undefined) {
    t = new Map(IMPLEMENTED_ALGORITHMS.filter(([alg]) => profileKeeps(profile, alg)));
    tables.set(profile, t);
  }
  return t;
}

/** TPM_CAP_ECC_CURVES under `profile`, ascending. */
export function profileCurves(profile: TpmProfile): readonly number[] {
  return [...profile.algorithms.eccCurves].sort((a, b) => a - b);
}

/** A scheme's or KDF's hash, when it has one (every TPMU_*_SCHEME member with details names hashAlg). */
function hashOf(s: object): number | undefined {
  return detailsOf(s)?.hashAlg;
}

function detailsOf(s: object): { hashAlg?: number; kdf?: number } | undefined {
  return 'details' in s ? ((s.details as { hashAlg?: number; kdf?: number } | null) ?? undefined) : undefined;
}

/**
 * Part 3 §30.3: 0 when the TPM (under `profile`) supports every algorithm
 * and size in `p`, else the base response code the reference's unmarshaling
 * gives for the first one it does not (TPM_RC_HASH, _SYMMETRIC, _MODE,
 * _SCHEME, _KDF, _CURVE, or _VALUE for an RSA key size: TPMI_RSA_KEY_BITS).
 * Only what unmarshaling checks is checked here — consistency between
 * attributes and schemes is a matter for object creation, as in the reference.
 */
export function publicParmsRc(p: TPMT_PUBLIC_PARMS, profile: TpmProfile = TPM_PROFILES.libtpms): number {
  const table = profileAlgorithms(profile);
  const implemented = (alg: number, kind: keyof TPMA_ALGORITHM): boolean => alg === TPM_ALG.NULL || table.get(alg)?.[kind] === true;
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
  if (p.type === TPM_ALG.RSA) return profile.algorithms.rsaKeyBits.includes(p.parameters.keyBits) ? 0 : TPM_RC.VALUE;
  if (!profile.algorithms.eccCurves.includes(p.parameters.curveID)) return TPM_RC.CURVE;
  const kdf = p.parameters.kdf;
  if (!implemented(kdf.scheme, 'method')) return TPM_RC.KDF;
  return hash(hashOf(kdf)) ? 0 : TPM_RC.HASH;
}

// ---------------------------------------------------------------------------
// A profile's exclusions in command parameters

/**
 * Per TPMI type (by its schema name): which values the profile leaves out of
 * the libtpms profile's set, and the code libtpms's unmarshaling gives for
 * one (TPMI_ALG_HASH: TPM_RC_HASH, TPMI_RSA_KEY_BITS: TPM_RC_VALUE,
 * TPMI_ECC_CURVE: TPM_RC_CURVE, the mode types: TPM_RC_MODE). Values
 * outside the libtpms set are not this check's business: the handlers
 * answer for them as they always did. AES key sizes are the exception: the
 * libtpms profile itself leaves AES-192 out of the spec's set
 * (TPMI_AES_KEY_BITS: TPM_RC_VALUE, as libtpms's unmarshaling).
 */
type Exclusions = ReadonlyMap<string, { readonly values: ReadonlySet<number>; readonly rc: number }>;

/** A profile's exclusions and, per command, what profileParamsRc checks under them (worked out on first use). */
interface ProfileRules {
  readonly ex: Exclusions;
  readonly checks: Map<AnyCommand, ParamChecks>;
}

const rulesCache = new WeakMap<TpmProfile, ProfileRules>();
/** The last profile asked for: an engine asks for its own on every command, and a WeakMap lookup costs more than this test. */
let lastProfile: TpmProfile | undefined;
let lastRules: ProfileRules | undefined;

function rulesOf(profile: TpmProfile): ProfileRules {
  if (profile === lastProfile) return lastRules!;
  let rules = rulesCache.get(profile);
  if (rules === undefined) {
    rules = { ex: exclusionsOf(profile), checks: new Map() };
    rulesCache.set(profile, rules);
  }
  lastProfile = profile;
  lastRules = rules;
  return rules;
}

function exclusionsOf(profile: TpmProfile): Exclusions {
  const full = TPM_PROFILES.libtpms.algorithms;
  const a = profile.algorithms;
  const minus = (all: readonly number[], kept: readonly number[]): ReadonlySet<number> => new Set(all.filter((x) => !kept.includes(x)));
  const modes = { values: minus(full.symmetricModes, a.symmetricModes), rc: TPM_RC.MODE as number };
  const m = new Map<string, { values: ReadonlySet<number>; rc: number }>([
    ['TPMI_ALG_HASH', { values: minus(full.hashes, a.hashes), rc: TPM_RC.HASH }],
    ['TPMI_RSA_KEY_BITS', { values: minus(full.rsaKeyBits, a.rsaKeyBits), rc: TPM_RC.VALUE }],
    ['TPMI_AES_KEY_BITS', { values: minus(AES_KEY_BITS, a.aesKeyBits), rc: TPM_RC.VALUE }],
    ['TPMI_ECC_CURVE', { values: minus(full.eccCurves, a.eccCurves), rc: TPM_RC.CURVE }],
    ['TPMI_ALG_SYM_MODE', modes],
    ['TPMI_ALG_CIPHER_MODE', modes],
  ]);
  for (const [k, v] of m) if (v.values.size === 0) m.delete(k);
  return m;
}

/** Whether `profile` leaves anything of the libtpms profile's algorithm set (or AES-192) out, else profileParamsRc has nothing to do. */
export function profileExcludes(profile: TpmProfile): boolean {
  return rulesOf(profile).ex.size > 0;
}

/** What profileParamsRc checks in one command's parameters under one profile. */
interface ParamChecks {
  /** The parameters' names, in order. */
  readonly names: readonly string[];
  /** Whether a parameter can hold a value of a TPMI type the profile excludes (most can hold none). */
  readonly excluded: boolean;
  /** Whether a parameter is a TPM2B_PRIVATE (Load, Import, Rewrap). */
  readonly private: boolean;
}

/** ParamChecks per profile and command, worked out once. */
function paramChecks(rules: ProfileRules, cmd: AnyCommand): ParamChecks {
  let checks = rules.checks.get(cmd);
  if (checks === undefined) {
    const ex = rules.ex;
    const codecs = Object.values(cmd.params) as Codec<unknown>[];
    checks = {
      names: Object.keys(cmd.params),
      excluded: ex.size > 0 && codecs.some((c) => mentions(c, ex)),
      private: codecs.some((c) => c.name === 'TPM2B_PRIVATE'),
    };
    rules.checks.set(cmd, checks);
  }
  return checks;
}

function mentions(c: Codec<unknown>, ex: Exclusions): boolean {
  const n = c.node;
  switch (n.kind) {
    case 'values':
      return ex.has(c.name.endsWith('+') ? c.name.slice(0, -1) : c.name);
    case 'sizedOf':
      return mentions(n.inner, ex);
    case 'list':
      return mentions(n.item, ex);
    case 'struct':
      return n.fields.some((f) => (f.kind === 'plain' ? mentions(f.codec, ex) : [...f.variants.values()].some((v) => v !== null && mentions(v, ex))));
    default:
      return false;
  }
}

/** The base code for the first excluded value in `v` (decoded with `c`), in wire order; 0 when there is none. */
function excludedRc(c: Codec<unknown>, v: unknown, ex: Exclusions): number {
  const n = c.node;
  switch (n.kind) {
    case 'values': {
      // orNull(X) is named "X+" (codec.ts): the same set plus NULL.
      const rule = ex.get(c.name.endsWith('+') ? c.name.slice(0, -1) : c.name);
      return rule !== undefined && rule.values.has(v as number) ? rule.rc : 0;
    }
    case 'sizedOf':
      return v === null ? 0 : excludedRc(n.inner, v, ex);
    case 'list': {
      for (const item of v as readonly unknown[]) {
        const rc = excludedRc(n.item, item, ex);
        if (rc !== 0) return rc;
      }
      return 0;
    }
    case 'struct': {
      const rec = v as Record<string, unknown>;
      for (const f of n.fields) {
        const fc = f.kind === 'plain' ? f.codec : f.variants.get(rec[f.selector] as number);
        const rc = fc === undefined || fc === null ? 0 : excludedRc(fc, rec[f.name], ex);
        if (rc !== 0) return rc;
      }
      return 0;
    }
    default:
      return 0;
  }
}

/**
 * 0, or the response code for the first parameter of `cmd` that names an
 * algorithm, key size, curve or mode `profile` excludes: the base code of
 * its TPMI type with that parameter's number (Part 2 §6.6.3), as libtpms
 * answers when its runtime profile disabled the algorithm; or that is a
 * TPM2B_PRIVATE longer than the profile's privateSize (TPM_RC_SIZE, as
 * libtpms's unmarshaling).
 */
export function profileParamsRc(profile: TpmProfile, cmd: AnyCommand, params: Record<string, unknown>): number {
  const rules = rulesOf(profile);
  const ex = rules.ex;
  const { names, excluded, private: hasPrivate } = paramChecks(rules, cmd);
  // Most commands have nothing to check.
  if (!excluded && !hasPrivate) return 0;
  for (let i = 0; i < names.length; i++) {
    const codec = cmd.params[names[i]!]!;
    const value = params[names[i]!];
    // TPM2B_PRIVATE stands only as a whole parameter (Load, Import, Rewrap).
    let rc = codec.name === 'TPM2B_PRIVATE' && value instanceof Uint8Array && value.length > profile.limits.privateSize ? TPM_RC.SIZE : 0;
    if (rc === 0 && excluded) rc = excludedRc(codec, value, ex);
    if (rc !== 0) return rcForParameter(rc, Math.min(i + 1, 15));
  }
  return 0;
}
