/**
 * EK certificate chains: path building from the EK certificate through the
 * intermediates a device or its manufacturer supplies to the roots the
 * operator configured (RFC 5280 §6, simplified to what EK chains need: no
 * policy processing, no name constraints — a critical one is refused), and
 * the whole EK certificate verification as one Verdict (`ekcert.*` checks).
 *
 * Statuses:
 * - `verified`: a path to a configured root in which every signature verifies
 *   over the certificates' original TBS bytes, every issuer is a CA allowed to
 *   sign certificates, and every intermediate is within its validity period;
 * - `invalid`: no path verifies and one that could have has a defect (a bad
 *   signature, an expired or not-yet-valid intermediate, wrong CA flags, an
 *   unknown critical extension);
 * - `incomplete`: no defect found, but an issuing CA is missing or the chain
 *   ends at a root nobody configured.
 * The leaf's own dates are advisory (ekcert.ts): policy decides. Time is an
 * argument; nothing here reads a clock or a file.
 */
import { createPublicKey, constants as cryptoConstants, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import type { TpmDescription } from '../tpm/description.js';
import { EvidenceError } from '../tpm/errors.js';
import type { TPMT_PUBLIC } from '../tpm/types/index.js';
import {
  checkEkCertificate,
  ecdsaSignatureParts,
  namesMatch,
  parseCertificate,
  parseCertificates,
  sameAlgorithm,
  signatureScheme,
  type CertificateQuirk,
  type ParsedCertificate,
} from './ekcert.js';
import { DEFAULT_EK_ROOTS_PEM } from './roots/default.js';
import { fail, pass, verdict, warn, type Check, type Verdict } from './verdict.js';
import { equalBytes } from '../tpm/bytes.js';

export type ChainStatus = 'verified' | 'incomplete' | 'invalid';

/** The roots an operator trusts for EK certificates. */
export interface TrustBundle {
  readonly roots: readonly ParsedCertificate[];
}

/**
 * A trust bundle from PEM text (one or many CERTIFICATE blocks), DER bytes
 * (one or several certificates back to back) or parsed certificates;
 * duplicates (same bytes) are kept once.
 * @throws EvidenceError `evidence.certificate` when a source does not parse.
 */
export function trustBundle(...sources: readonly (string | Uint8Array | ParsedCertificate | readonly ParsedCertificate[])[]): TrustBundle {
  const roots: ParsedCertificate[] = [];
  const seen = new Set<string>();
  const add = (c: ParsedCertificate): void => {
    if (seen.has(c.fingerprint)) return;
    seen.add(c.fingerprint);
    roots.push(c);
  };
  for (const s of sources) {
    if (typeof s === 'string' || s instanceof Uint8Array) parseCertificates(s).forEach(add);
    else if (isParsed(s)) add(s);
    else s.forEach(add);
  }
  return { roots };
}

function isParsed(x: unknown): x is ParsedCertificate {
  return typeof x === 'object' && x !== null && 'tbs' in x && 'fingerprint' in x;
}

/** The bundle trustroot ships: empty (src/attest/roots/README.md says how to configure vendor CAs). */
export const DEFAULT_TRUST_BUNDLE: TrustBundle = trustBundle(...DEFAULT_EK_ROOTS_PEM);

export interface ChainOptions {
  /** The verification time. */
  readonly at: Date;
  readonly roots: TrustBundle | readonly ParsedCertificate[];
  /** Candidate intermediates (from the device, the manufacturer's AIA URL, a cache); order does not matter. */
  readonly intermediates?: readonly ParsedCertificate[];
  /** Most CA certificates between the leaf and a root (default 6). */
  readonly maxIntermediates?: number;
  /** An incomplete chain fails the `ekcert.chain` check (default); false makes it a warning. */
  readonly requireVerified?: boolean;
}

export interface ChainResult {
  readonly status: ChainStatus;
  /** Stable: `chain.verified`, `leaf.trusted`, `issuer.missing`, `root.untrusted`, `signature.invalid`, `intermediate.expired`, `ca.not-ca`, … */
  readonly reason: string;
  readonly detail: string;
  /** The path found (or the most promising one that failed), leaf first; it ends at `anchor` when verified. */
  readonly path: readonly ParsedCertificate[];
  /** The configured root the path reaches. */
  readonly anchor?: ParsedCertificate;
  /** `ekcert.chain` (the status) and the per-link checks of `path`. */
  readonly checks: readonly Check[];
}

// ---------------------------------------------------------------------------
// Signatures

/** The result of one signature check: `reason` is `signature.valid` or why not. */
export interface SignatureOutcome {
  readonly ok: boolean;
  readonly reason: string;
  readonly detail: string;
  readonly weakHash?: boolean;
  readonly quirk?: boolean;
}

/** Bytes of a scalar per curve, for the P1363 form of a lenient ECDSA signature. */
const CURVE_BYTES: Readonly<Record<string, number>> = { prime192v1: 24, secp224r1: 28, prime256v1: 32, secp384r1: 48, secp521r1: 66 };

/** Issuer keys by certificate: roots and intermediates verify many certificates, and importing a key costs more than a verification. */
const KEYS = new WeakMap<ParsedCertificate, KeyObject | null>();

function publicKeyOf(cert: ParsedCertificate): KeyObject | undefined {
  let k = KEYS.get(cert);
  if (k === undefined) {
    try {
      k = createPublicKey({ key: Buffer.from(cert.spki), format: 'der', type: 'spki' });
    } catch {
      k = null;
    }
    KEYS.set(cert, k);
  }
  return k ?? undefined;
}

/**
 * Checks `cert`'s signature with `issuer`'s public key over the TBSCertificate
 * bytes exactly as they were encoded (never a re-encoding), after checking
 * that the outer and inner signature algorithms agree (RFC 5280 §4.1.1.2).
 */
export function verifyCertificateSignature(cert: ParsedCertificate, issuer: ParsedCertificate): SignatureOutcome {
  const who = `"${cert.subject.text || '(empty subject)'}" by "${issuer.subject.text}"`;
  if (!sameAlgorithm(cert.signatureAlgorithm, cert.tbsSignatureAlgorithm)) {
    return { ok: false, reason: 'signature.algorithm-mismatch', detail: `${who}: signatureAlgorithm ${cert.signatureAlgorithm.oid} differs from the TBS's ${cert.tbsSignatureAlgorithm.oid}` };
  }
  const scheme = signatureScheme(cert.signatureAlgorithm);
  if (scheme === undefined) return { ok: false, reason: 'signature.unsupported-algorithm', detail: `${who}: signature algorithm ${cert.signatureAlgorithm.oid} is not supported` };
  const key = publicKeyOf(issuer);
  if (key === undefined) return { ok: false, reason: 'signature.issuer-key', detail: `${who}: the issuer's public key (${issuer.publicKey.algorithm}) is not usable` };
  const keyType = key.asymmetricKeyType;
  const fits =
    (scheme.kind === 'rsa-pkcs1' && keyType === 'rsa') ||
    (scheme.kind === 'rsa-pss' && (keyType === 'rsa' || keyType === 'rsa-pss')) ||
    (scheme.kind === 'ecdsa' && keyType === 'ec') ||
    (scheme.kind === 'eddsa' && (keyType === 'ed25519' || keyType === 'ed448'));
  if (!fits) return { ok: false, reason: 'signature.key-mismatch', detail: `${who}: a ${scheme.name} signature cannot come from a ${String(keyType)} key` };
  const data = cert.tbs;
  const sig = cert.signature;
  const weakHash = scheme.hash === 'sha1';
  const run = (f: () => boolean): boolean => {
    try {
      return f();
    } catch {
      return false;
    }
  };
  let ok: boolean;
  let quirk = false;
  switch (scheme.kind) {
    case 'rsa-pkcs1':
      ok = run(() => cryptoVerify(scheme.hash!, data, key, sig));
      break;
    case 'rsa-pss':
      ok = run(() => cryptoVerify(scheme.hash!, data, { key, padding: cryptoConstants.RSA_PKCS1_PSS_PADDING, saltLength: scheme.saltLength! }, sig));
      break;
    case 'ecdsa': {
      ok = run(() => cryptoVerify(scheme.hash!, data, key, sig));
      if (!ok) {
        // A CA that wrote r or s with redundant octets or BER lengths: the values are what count.
        const parts = ecdsaSignatureParts(sig);
        const size = CURVE_BYTES[key.asymmetricKeyDetails?.namedCurve ?? ''] ?? 0;
        if (parts !== undefined && size > 0 && parts.r.length <= size && parts.s.length <= size) {
          const p1363 = new Uint8Array(2 * size);
          p1363.set(parts.r, size - parts.r.length);
          p1363.set(parts.s, 2 * size - parts.s.length);
          ok = run(() => cryptoVerify(scheme.hash!, data, { key, dsaEncoding: 'ieee-p1363' }, p1363));
          quirk = ok;
        }
      }
      break;
    }
    case 'eddsa':
      ok = run(() => cryptoVerify(null, data, key, sig));
      break;
  }
  if (!ok) return { ok: false, reason: 'signature.invalid', detail: `${who}: the ${scheme.name} signature does not verify` };
  return { ok: true, reason: 'signature.valid', detail: `${who}: ${scheme.name}${quirk ? ' (signature value not DER, tolerated)' : ''}`, weakHash, quirk };
}

// ---------------------------------------------------------------------------
// Path building

interface Attempt {
  readonly status: ChainStatus;
  readonly reason: string;
  readonly detail: string;
  readonly path: readonly ParsedCertificate[];
  readonly anchor?: ParsedCertificate;
  readonly checks: readonly Check[];
}


/** Checks of `ca` as the issuer of the certificate below it (RFC 5280 §6.1.4 (k), (l), (n); §4.2.1.9). */
function issuerChecks(ca: ParsedCertificate, isAnchor: boolean, caBelow: number, at: Date): Check[] {
  const out: Check[] = [];
  const who = `"${ca.subject.text}"`;
  const bc = ca.basicConstraints;
  if (bc?.ca !== true) {
    // A v1 root carries no extensions at all; a trust anchor is the operator's choice (§6.1.1 (d)).
    if (isAnchor && ca.version === 1) out.push(warn('ekcert.chain.ca', 'root.v1', `${who} is a v1 root without basicConstraints`));
    else out.push(fail('ekcert.chain.ca', 'ca.not-ca', `${who} signed a certificate but is not a CA (basicConstraints cA not TRUE)`));
  } else if (bc.pathLength !== undefined && caBelow > bc.pathLength) {
    out.push(fail('ekcert.chain.ca', 'ca.path-length', `${who} allows ${bc.pathLength} CA(s) below it, the path has ${caBelow}`));
  }
  if (ca.keyUsage !== undefined && !ca.keyUsage.includes('keyCertSign')) {
    out.push(fail('ekcert.chain.ca', 'ca.key-usage', `${who} lacks keyCertSign in keyUsage (${ca.keyUsage.join(',') || 'none'})`));
  }
  if (ca.unknownCriticalExtensions.length > 0) {
    out.push(fail('ekcert.chain.extensions', 'extension.unknown-critical', `${who} has critical extension(s) not understood: ${ca.unknownCriticalExtensions.join(', ')}`));
  }
  const t = at.getTime();
  const expired = t > ca.notAfter.getTime();
  const early = t < ca.notBefore.getTime();
  if (expired || early) {
    const what = expired ? `expired ${ca.notAfter.toISOString()}` : `not valid before ${ca.notBefore.toISOString()}`;
    // The root is configured, not validated (§6.1.1 (d)): its dates are the operator's to judge.
    if (isAnchor) out.push(warn('ekcert.chain.validity', expired ? 'root.expired' : 'root.not-yet-valid', `root ${who} ${what}`));
    else out.push(fail('ekcert.chain.validity', expired ? 'intermediate.expired' : 'intermediate.not-yet-valid', `intermediate ${who} ${what} (at ${at.toISOString()})`));
  }
  return out;
}

const RANK: Readonly<Record<ChainStatus, number>> = { verified: 2, invalid: 1, incomplete: 0 };

function better(a: Attempt, b: Attempt | undefined): boolean {
  if (b === undefined) return true;
  if (RANK[a.status] !== RANK[b.status]) return RANK[a.status] > RANK[b.status];
  return a.path.length > b.path.length;
}

/**
 * Builds and checks the path from `leaf` to a configured root. Candidates for
 * each issuer are the certificates whose subject matches the issuer name
 * (RFC 5280 §7.1); key identifiers, when both sides have them, rule out
 * same-named CAs with another key. Every candidate is tried (bounded); the
 * first verified path wins, else the most informative failure.
 */
export function verifyEkChain(leaf: ParsedCertificate, options: ChainOptions): ChainResult {
  const at = options.at;
  if (!(at instanceof Date) || Number.isNaN(at.getTime())) throw new EvidenceError('evidence.argument', 'verifyEkChain: `at` must be a valid Date');
  const roots = Array.isArray(options.roots) ? (options.roots as readonly ParsedCertificate[]) : (options.roots as TrustBundle).roots;
  const maxIntermediates = options.maxIntermediates ?? 6;
  const pool: ParsedCertificate[] = [];
  const seen = new Set<string>();
  for (const c of [...roots, ...(options.intermediates ?? [])]) {
    if (seen.has(c.fingerprint)) continue;
    seen.add(c.fingerprint);
    pool.push(c);
  }
  const isAnchor = (c: ParsedCertificate): boolean =>
    roots.some((r) => r.fingerprint === c.fingerprint || (namesMatch(r.subject, c.subject) && equalBytes(r.spki, c.spki)));
  let budget = 64; // signature checks: same-named CAs in a large pool must not make this exponential

  const extend = (path: readonly ParsedCertificate[], checks: readonly Check[]): Attempt[] => {
    const cert = path[path.length - 1]!;
    const candidates = pool
      .filter((c) => !path.some((p) => p.fingerprint === c.fingerprint) && namesMatch(c.subject, cert.issuer))
      // RFC 5280 §4.2.1.1: a key identifier that differs names another key of the same CA.
      .filter((c) => cert.authorityKeyId === undefined || c.subjectKeyId === undefined || equalBytes(cert.authorityKeyId, c.subjectKeyId))
      .sort((a, b) => Number(isAnchor(b)) - Number(isAnchor(a)));
    if (candidates.length === 0) {
      const selfSigned = cert.selfIssued && path.length > 1;
      return [
        {
          status: 'incomplete',
          reason: selfSigned ? 'root.untrusted' : 'issuer.missing',
          detail: selfSigned
            ? `the chain ends at "${cert.subject.text}", a root that is not configured`
            : `no certificate for the issuer "${cert.issuer.text}" of "${cert.subject.text || '(empty subject)'}"`,
          path,
          checks,
        },
      ];
    }
    const attempts: Attempt[] = [];
    for (const ca of candidates) {
      if (budget-- <= 0) {
        attempts.push({ status: 'invalid', reason: 'chain.too-complex', detail: 'gave up after 64 signature checks', path, checks });
        break;
      }
      const sig = verifyCertificateSignature(cert, ca);
      const next = [...path, ca];
      if (!sig.ok) {
        attempts.push({ status: 'invalid', reason: sig.reason, detail: sig.detail, path: next, checks: [...checks, fail('ekcert.chain.signature', sig.reason, sig.detail)] });
        continue;
      }
      const anchor = isAnchor(ca);
      // CAs between this issuer and the leaf, not counting self-issued ones (§6.1.4 (l)).
      const caBelow = path.slice(1).filter((c) => !c.selfIssued).length;
      const linkChecks = [
        pass('ekcert.chain.signature', 'signature.valid', sig.detail),
        ...(sig.quirk ? [warn('ekcert.chain.encoding', 'signature.not-der', `${sig.detail}: ECDSA-Sig-Value not in DER`)] : []),
        ...(sig.weakHash ? [warn('ekcert.chain.algorithm', 'hash.sha1', `${sig.detail}: SHA-1 signatures are weak`)] : []),
        ...issuerChecks(ca, anchor, caBelow, at),
      ];
      const all = [...checks, ...linkChecks];
      const defect = linkChecks.find((c) => c.outcome === 'fail');
      if (defect !== undefined) {
        attempts.push({ status: 'invalid', reason: defect.reason, detail: defect.detail, path: next, checks: all });
        continue;
      }
      if (anchor) {
        attempts.push({ status: 'verified', reason: 'chain.verified', detail: `verified to the configured root "${ca.subject.text}"`, path: next, anchor: ca, checks: all });
        return attempts;
      }
      if (next.length - 1 > maxIntermediates) {
        attempts.push({ status: 'invalid', reason: 'chain.too-long', detail: `more than ${maxIntermediates} CA certificates below a root`, path: next, checks: all });
        continue;
      }
      const deeper = extend(next, all);
      attempts.push(...deeper);
      if (deeper.some((a) => a.status === 'verified')) return attempts;
    }
    return attempts;
  };

  let best: Attempt | undefined;
  if (isAnchor(leaf)) {
    // An EK certificate the operator configured as trusted itself (pre-registered by certificate).
    best = { status: 'verified', reason: 'leaf.trusted', detail: 'the EK certificate itself is a configured root', path: [leaf], anchor: leaf, checks: [] };
  } else {
    for (const a of extend([leaf], [])) if (better(a, best)) best = a;
  }
  const b = best!;
  const requireVerified = options.requireVerified ?? true;
  const summary =
    b.status === 'verified'
      ? pass('ekcert.chain', b.reason, b.detail)
      : b.status === 'invalid'
        ? fail('ekcert.chain', b.reason, b.detail)
        : requireVerified
          ? fail('ekcert.chain', b.reason, b.detail)
          : warn('ekcert.chain', b.reason, b.detail);
  return {
    status: b.status,
    reason: b.reason,
    detail: b.detail,
    path: b.path,
    ...(b.anchor !== undefined ? { anchor: b.anchor } : {}),
    checks: [summary, ...b.checks],
  };
}

// ---------------------------------------------------------------------------
// The whole EK certificate

export interface EkCertificateInput {
  /** The EK certificate: DER (NV padding allowed), PEM, or already parsed. */
  readonly certificate: Uint8Array | string | ParsedCertificate;
  /** Intermediate CA certificates (DER, PEM bundles or parsed); ones that do not parse are reported and skipped. */
  readonly intermediates?: readonly (Uint8Array | string | ParsedCertificate)[];
  /** The configured roots (default: DEFAULT_TRUST_BUNDLE, which is empty). */
  readonly roots?: TrustBundle;
  /** The verification time. */
  readonly at: Date;
  /** The EK's public area: the certificate must certify this key. */
  readonly ekPublic?: TPMT_PUBLIC;
  /** The TPM's description, for the manufacturer/model/version cross-check. */
  readonly description?: TpmDescription;
  /** An incomplete chain is a failure (default true); false makes it a warning (e.g. for an EK that was pre-registered). */
  readonly requireVerifiedChain?: boolean;
}

export interface EkCertificateVerification {
  readonly verdict: Verdict;
  /** Undefined when the certificate does not parse (the verdict then says why: `ekcert.parse`). */
  readonly certificate?: ParsedCertificate;
  readonly chain?: ChainResult;
  readonly quirks: readonly CertificateQuirk[];
  /** Whether the certificate's key is the EK given (undefined without an EK or a parsed certificate). */
  readonly keyMatches?: boolean;
}

/**
 * Verifies an EK certificate: parse (leniently), the EK profile checks, the
 * key against the EK, the SAN against the TPM's own report, and the chain to
 * the configured roots. Evidence that reads but is wrong gives a verdict with
 * failed checks; a certificate that does not parse gives `ekcert.parse` fail.
 *
 * @throws EvidenceError `evidence.argument` for an invalid `at` only.
 */
export function verifyEkCertificate(input: EkCertificateInput): EkCertificateVerification {
  if (!(input.at instanceof Date) || Number.isNaN(input.at.getTime())) throw new EvidenceError('evidence.argument', 'verifyEkCertificate: `at` must be a valid Date');
  let cert: ParsedCertificate;
  try {
    cert = isParsed(input.certificate) ? input.certificate : parseCertificate(input.certificate);
  } catch (e) {
    if (!(e instanceof EvidenceError)) throw e;
    const where = e.offset === undefined ? '' : ` (offset ${e.offset})`;
    return { verdict: verdict([fail('ekcert.parse', 'certificate.malformed', `${e.message}${where}`)]), quirks: [] };
  }
  const checks: Check[] = [pass('ekcert.parse', 'certificate.parsed', `${cert.subject.text || '(empty subject)'} issued by ${cert.issuer.text}`)];
  const intermediates: ParsedCertificate[] = [];
  (input.intermediates ?? []).forEach((x, i) => {
    if (isParsed(x)) {
      intermediates.push(x);
      return;
    }
    try {
      intermediates.push(...parseCertificates(x));
    } catch (e) {
      if (!(e instanceof EvidenceError)) throw e;
      checks.push(warn('ekcert.intermediates', 'intermediate.malformed', `intermediate ${i + 1} skipped: ${e.message}`));
    }
  });
  const leafChecks = checkEkCertificate(cert, {
    at: input.at,
    ...(input.ekPublic !== undefined ? { ekPublic: input.ekPublic } : {}),
    ...(input.description !== undefined ? { description: input.description } : {}),
  });
  checks.push(...leafChecks);
  const chain = verifyEkChain(cert, {
    at: input.at,
    roots: input.roots ?? DEFAULT_TRUST_BUNDLE,
    intermediates,
    requireVerified: input.requireVerifiedChain ?? true,
  });
  checks.push(...chain.checks);
  const keyCheck = leafChecks.find((c) => c.check === 'ekcert.public-key');
  const keyMatches = keyCheck === undefined || keyCheck.outcome === 'not-performed' ? undefined : keyCheck.outcome === 'pass';
  return {
    verdict: verdict(checks),
    certificate: cert,
    chain,
    quirks: cert.quirks,
    ...(keyMatches !== undefined ? { keyMatches } : {}),
  };
}
