/**
 * Fuzzing of the attestation verifier's parsers and of verifyQuote itself:
 * random and mutated TPMS_ATTEST, TPMT_SIGNATURE and AK public areas (seeds:
 * a real quote and creation certificate from a Google Cloud Shielded VM's
 * vTPM, published by go-attestation, plus structures generated from the
 * schema), random JSON for the clock state, and mutations of honest quotes
 * (attest bytes, signature bytes, PCR values, the labelled selection) signed
 * in software with an RSA-2048 and a P-256 key standing in for AKs.
 *
 * Properties: every parser either returns or throws a TrustrootError (never
 * a TypeError or RangeError, never a hang); verifyQuote never throws on
 * evidence of the right shape, and accepts a mutated quote only if the
 * mutation left every input byte-identical.
 *
 * Used by test/attest/quote.test.ts (fixed seed, ≥ 20,000 inputs) and, once
 * integrated, by `npm run fuzz` (long run).
 */
import { generateKeyPairSync, sign as nodeSign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { decodeAkPublic } from '../src/attest/ak.js';
import type { Challenge } from '../src/attest/challenge.js';
import { clockStateFromJson } from '../src/attest/clock.js';
import { decodeAttest, decodeSignature, verifyQuote, type PcrValues } from '../src/attest/quote.js';
import { TPM_ALG, TPM_ECC, TPM_GENERATED_VALUE, TPM_ST } from '../src/tpm/constants.js';
import { hash } from '../src/tpm/crypto/hash.js';
import { TrustrootError } from '../src/tpm/errors.js';
import { pcrSelection } from '../src/tpm/pcr.js';
import { eccPointOf } from '../src/tpm/secret.js';
import { AK_ATTRIBUTES } from '../src/tpm/templates.js';
import { TPM2B_PUBLIC, TPMS_ATTEST, TPMT_PUBLIC, TPMT_SIGNATURE } from '../src/tpm/types/index.js';
import { encode } from '../src/tpm/wire/codec.js';
import { arbitraryOf } from '../test/support/arbitrary.js';
import { mutate, Prng } from './parsers.js';

const FIXTURE = join(import.meta.dirname, '..', 'test', 'fixtures', 'quote', 'windows_gcp_shielded_vm.json');

export interface AttestFuzzStats {
  inputs: number;
  /** Inputs a parser returned a value for. */
  parsed: number;
  typedErrors: number;
  /** Inputs that made a parser or verifier throw something other than a TrustrootError. */
  untypedCount: number;
  untyped: { target: string; input: string; error: string }[];
  /** Error codes of the typed errors, with counts. */
  codes: Map<string, number>;
  /** verifyQuote calls, and their failed checks' reasons with counts. */
  verifications: number;
  reasons: Map<string, number>;
  /** Mutated quotes verifyQuote accepted although an input differed from the honest one: must stay 0. */
  acceptedMutants: number;
  /** Honest quotes (mutations that changed nothing) accepted. */
  acceptedOriginals: number;
}

interface HonestQuote {
  readonly ak: TPMT_PUBLIC;
  readonly attest: Uint8Array;
  readonly signature: Uint8Array;
  readonly pcrValues: Map<number, Map<number, Uint8Array>>;
  readonly challenge: Challenge;
}

function b64(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'base64'));
}


/** An honest quote over SHA-256 PCRs 0..7, signed in software by `key` as its AK would. */
function honestQuote(kind: 'rsa' | 'ecc', nonce: Uint8Array): HonestQuote {
  let key: KeyObject;
  let ak: TPMT_PUBLIC;
  if (kind === 'rsa') {
    const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
    key = pair.privateKey;
    const n = Buffer.from(pair.publicKey.export({ format: 'jwk' }).n!, 'base64url');
    ak = {
      type: TPM_ALG.RSA,
      nameAlg: TPM_ALG.SHA256,
      objectAttributes: AK_ATTRIBUTES,
      authPolicy: new Uint8Array(0),
      parameters: { symmetric: { algorithm: TPM_ALG.NULL }, scheme: { scheme: TPM_ALG.RSASSA, details: { hashAlg: TPM_ALG.SHA256 } }, keyBits: 2048, exponent: 0 },
      unique: new Uint8Array(n),
    };
  } else {
    const pair = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    key = pair.privateKey;
    ak = {
      type: TPM_ALG.ECC,
      nameAlg: TPM_ALG.SHA256,
      objectAttributes: AK_ATTRIBUTES,
      authPolicy: new Uint8Array(0),
      parameters: { symmetric: { algorithm: TPM_ALG.NULL }, scheme: { scheme: TPM_ALG.ECDSA, details: { hashAlg: TPM_ALG.SHA256 } }, curveID: TPM_ECC.NIST_P256, kdf: { scheme: TPM_ALG.NULL } },
      unique: eccPointOf(pair.publicKey).point,
    };
  }
  const values = new Map<number, Uint8Array>();
  for (let i = 0; i < 8; i++) values.set(i, hash(TPM_ALG.SHA256, Uint8Array.of(kind === 'rsa' ? 1 : 2, i)));
  const selection = [pcrSelection(TPM_ALG.SHA256, [0, 1, 2, 3, 4, 5, 6, 7])];
  const attest = encode(TPMS_ATTEST, {
    magic: TPM_GENERATED_VALUE,
    type: TPM_ST.ATTEST_QUOTE,
    qualifiedSigner: new Uint8Array([0, 0x0b, ...hash(TPM_ALG.SHA256, Uint8Array.of(9))]),
    extraData: nonce,
    clockInfo: { clock: 123456n, resetCount: 3, restartCount: 1, safe: 1 },
    firmwareVersion: 0x2000300040005n,
    attested: { pcrSelect: selection, pcrDigest: hash(TPM_ALG.SHA256, ...values.values()) },
  });
  let signature: Uint8Array;
  if (kind === 'rsa') {
    const sig = new Uint8Array(nodeSign('sha256', attest, key));
    signature = encode(TPMT_SIGNATURE, { sigAlg: TPM_ALG.RSASSA, signature: { hash: TPM_ALG.SHA256, sig } });
  } else {
    const rs = new Uint8Array(nodeSign('sha256', attest, { key, dsaEncoding: 'ieee-p1363' }));
    signature = encode(TPMT_SIGNATURE, { sigAlg: TPM_ALG.ECDSA, signature: { hash: TPM_ALG.SHA256, signatureR: rs.slice(0, 32), signatureS: rs.slice(32) } });
  }
  return { ak, attest, signature, pcrValues: new Map([[TPM_ALG.SHA256, values]]), challenge: { nonce, issuedAt: 1000, expiresAt: 2000 } };
}

function randomBytes(rng: Prng, max = 200): Uint8Array {
  const b = new Uint8Array(rng.below(4) === 0 ? rng.below(12) : rng.below(max));
  for (let i = 0; i < b.length; i++) b[i] = rng.below(256);
  // Half start like a TPMS_ATTEST, so decoding gets past the magic and type.
  if (b.length >= 6 && rng.below(2) === 0) {
    b.set([0xff, 0x54, 0x43, 0x47, 0x80, [0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1c][rng.below(8)]!], 0);
  }
  return b;
}

const JSON_KEYS = ['clock', 'resetCount', 'restartCount', 'safe', 'firmwareVersion', 'x'];
function randomJson(rng: Prng, depth = 0): unknown {
  switch (rng.below(depth > 2 ? 6 : 8)) {
    case 0:
      return null;
    case 1:
      return [true, false, 0, 1, 2][rng.below(5)];
    case 2:
      return [0, 1, -1, 1.5, 2 ** 32, 2 ** 53, Number.NaN, Number.POSITIVE_INFINITY, 4294967295, 4294967296][rng.below(10)];
    case 3:
      return ['', '0', '0x', '0x1f', '18446744073709551615', '18446744073709551616', '-1', '1e3', ' 1', 'abc'][rng.below(10)];
    case 4:
      return BigInt(rng.next32()) * BigInt(rng.next32());
    case 5:
      return rng.next32();
    case 6: {
      const a: unknown[] = [];
      for (let i = rng.below(4); i > 0; i--) a.push(randomJson(rng, depth + 1));
      return a;
    }
    default: {
      const o: Record<string, unknown> = {};
      // Usually a well-formed state with one field disturbed, so the checks past the first are reached.
      if (rng.below(2) === 0) Object.assign(o, { clock: rng.next32(), resetCount: rng.below(9), restartCount: rng.below(9), safe: rng.below(2) === 0 });
      for (let i = rng.below(3); i > 0; i--) o[JSON_KEYS[rng.below(JSON_KEYS.length)]!] = randomJson(rng, depth + 1);
      return o;
    }
  }
}

function mutatePcrs(v: Map<number, Map<number, Uint8Array>>, rng: Prng): Map<number, Map<number, Uint8Array>> {
  const out = new Map([...v].map(([b, m]) => [b, new Map(m)]));
  const bank = out.get(TPM_ALG.SHA256)!;
  switch (rng.below(5)) {
    case 0: {
      // one value changed
      const i = rng.below(8);
      const x = bank.get(i)!.slice();
      x[rng.below(x.length)]! ^= 1 << rng.below(8);
      bank.set(i, x);
      break;
    }
    case 1: // a value outside the selection
      bank.set(8 + rng.below(16), new Uint8Array(32));
      break;
    case 2: // a signed value missing
      bank.delete(rng.below(8));
      break;
    case 3: // relabelled into another bank
      out.delete(TPM_ALG.SHA256);
      out.set([TPM_ALG.SHA1, TPM_ALG.SHA384, TPM_ALG.SHA512][rng.below(3)]!, bank);
      break;
    default: {
      // a value of the wrong size
      const i = rng.below(8);
      bank.set(i, bank.get(i)!.subarray(0, rng.below(32)));
    }
  }
  return out;
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
function samePcrs(a: PcrValues, b: PcrValues): boolean {
  if (a.size !== b.size) return false;
  for (const [bank, m] of a) {
    const n = b.get(bank);
    if (n === undefined || n.size !== m.size) return false;
    for (const [i, v] of m) if (!n.has(i) || !same(v, n.get(i)!)) return false;
  }
  return true;
}

/**
 * Runs `iterations` inputs from `seed`. Deterministic for a seed apart from
 * the software AKs' keys and signatures, which are fresh each run.
 */
export function fuzzAttest(seed: number, iterations: number): AttestFuzzStats {
  const rng = new Prng(seed);
  const stats: AttestFuzzStats = {
    inputs: 0,
    parsed: 0,
    typedErrors: 0,
    untypedCount: 0,
    untyped: [],
    codes: new Map(),
    verifications: 0,
    reasons: new Map(),
    acceptedMutants: 0,
    acceptedOriginals: 0,
  };
  const run = (target: string, input: Uint8Array | unknown, fn: () => unknown): unknown => {
    stats.inputs++;
    try {
      const r = fn();
      stats.parsed++;
      return r;
    } catch (e) {
      if (e instanceof TrustrootError) {
        stats.typedErrors++;
        stats.codes.set(e.code, (stats.codes.get(e.code) ?? 0) + 1);
      } else {
        stats.untypedCount++;
        if (stats.untyped.length < 20) {
          const shown = input instanceof Uint8Array ? Buffer.from(input).toString('hex') : String(input);
          stats.untyped.push({ target, input: shown, error: String(e instanceof Error ? e.stack : e) });
        }
      }
      return undefined;
    }
  };

  const dump = JSON.parse(readFileSync(FIXTURE, 'utf8')) as { AK: Record<string, string>; Quote: Record<string, string> };
  const attests = [b64(dump.Quote['Quote']!), b64(dump.AK['CreateAttestation']!)];
  const signatures = [b64(dump.Quote['Signature']!), b64(dump.AK['CreateSignature']!)];
  const publics = [b64(dump.AK['Public']!)];
  // Structures from the schema: every attestation type and signature scheme appears among the seeds.
  for (const a of fc.sample(arbitraryOf(TPMS_ATTEST, { maxBytes: 24, maxItems: 2 }), { numRuns: 40, seed })) attests.push(encode(TPMS_ATTEST, a));
  for (const s of fc.sample(arbitraryOf(TPMT_SIGNATURE, { maxBytes: 40 }), { numRuns: 20, seed: seed + 1 })) signatures.push(encode(TPMT_SIGNATURE, s));
  const honest = [honestQuote('rsa', b64('q6vN7+ERIjNEVWZ3iJmqu8zd7v8=')), honestQuote('ecc', b64('AAECAwQFBgcICQoLDA0ODxAREhM='))];
  for (const h of honest) {
    attests.push(h.attest);
    signatures.push(h.signature);
    publics.push(encode(TPM2B_PUBLIC, h.ak), encode(TPMT_PUBLIC, h.ak));
  }

  while (stats.inputs < iterations) {
    const pick = rng.below(10);
    if (pick <= 2) {
      const input = rng.below(4) === 0 ? randomBytes(rng) : mutate(attests[rng.below(attests.length)]!, rng);
      run('decodeAttest', input, () => decodeAttest(input));
    } else if (pick === 3) {
      const input = rng.below(4) === 0 ? randomBytes(rng, 80) : mutate(signatures[rng.below(signatures.length)]!, rng);
      run('decodeSignature', input, () => decodeSignature(input));
    } else if (pick === 4) {
      const input = rng.below(4) === 0 ? randomBytes(rng, 400) : mutate(publics[rng.below(publics.length)]!, rng);
      run('decodeAkPublic', input, () => decodeAkPublic(input));
    } else if (pick === 5) {
      const value = randomJson(rng);
      run('clockStateFromJson', value, () => clockStateFromJson(value));
    } else {
      const h = honest[rng.below(honest.length)]!;
      const which = rng.below(4);
      const attest = which === 0 ? mutate(h.attest, rng) : h.attest;
      const signature = which === 1 ? mutate(h.signature, rng) : h.signature;
      const pcrValues = which === 2 ? mutatePcrs(h.pcrValues, rng) : h.pcrValues;
      const labelled = which === 3 && rng.below(2) === 0 ? [pcrSelection(TPM_ALG.SHA256, [rng.below(24), rng.below(24)])] : undefined;
      const v = run('verifyQuote', attest, () =>
        verifyQuote(
          { attest, signature, pcrValues, ...(labelled !== undefined ? { pcrSelection: labelled } : {}) },
          { ak: h.ak, challenge: h.challenge, now: 1500 },
        ),
      ) as ReturnType<typeof verifyQuote> | undefined;
      if (v !== undefined) {
        stats.verifications++;
        for (const c of v.checks) if (c.outcome === 'fail') stats.reasons.set(c.reason, (stats.reasons.get(c.reason) ?? 0) + 1);
        const unchanged = same(attest, h.attest) && same(signature, h.signature) && samePcrs(pcrValues, h.pcrValues) && labelled === undefined;
        if (v.accepted && unchanged) stats.acceptedOriginals++;
        if (v.accepted && !unchanged) stats.acceptedMutants++;
      }
    }
  }
  return stats;
}
