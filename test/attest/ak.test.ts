/**
 * AK checks, Names and credential activation from the verifier's side
 * (src/attest/ak.ts):
 *
 * - AKs created by swtpm under the EK pass every check, and our Name and
 *   Qualified Name are the TPM's (ReadPublic);
 * - each required attribute cleared, decrypt set, a missing or mismatched
 *   scheme, SHA-1, small RSA moduli, unapproved curves, keys that do not
 *   import: each fails its own check with its own reason (public areas of
 *   real swtpm keys with one field changed, and node:crypto keys);
 * - bare public keys: the attribute, scheme and nameAlg checks are not
 *   performed, never passed;
 * - MakeCredential by the verifier, ActivateCredential by swtpm under RSA and
 *   ECC EKs: the returned secret matches in constant time; a credential bound
 *   to another AK is refused by the TPM; a tampered answer does not match.
 */
import { generateKeyPairSync, createSecretKey, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AK_REQUIRED_ATTRIBUTES, akName, akQualifiedName, checkActivation, checkAk, decodeAkPublic, makeAkCredential, prepareAk } from '../../src/attest/ak.js';
import { failures, type Verdict } from '../../src/attest/verdict.js';
import { createAk, type Ak } from '../../src/client/ak.js';
import { activateCredential } from '../../src/client/credential.js';
import { createEk, type Ek } from '../../src/client/ek.js';
import { Tpm } from '../../src/client/index.js';
import { ReadPublic, Startup } from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_ECC, TPM_SU } from '../../src/tpm/constants.js';
import { EvidenceError, ParseError } from '../../src/tpm/errors.js';
import { isRc, TPM_RC } from '../../src/tpm/rc.js';
import { eccPointOf } from '../../src/tpm/secret.js';
import { AK_ATTRIBUTES } from '../../src/tpm/templates.js';
import { SwtpmTransport } from '../../src/tpm/transport/index.js';
import { TPM2B_PUBLIC, TPMT_PUBLIC } from '../../src/tpm/types/index.js';
import { encode } from '../../src/tpm/wire/codec.js';
import { describeWithSwtpm, startSwtpm, type SwtpmInstance } from '../support/swtpm.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const check = (v: Verdict, id: string) => v.checks.find((c) => c.check === id)!;
const thrown = (fn: () => unknown): unknown => {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected an exception');
};

/** A public area for a node:crypto key, with the AK attributes and the scheme a TPM AK would have. */
function areaOf(kind: 'rsa' | 'ec', opts: { bits?: number; curve?: string; curveID?: number } = {}): TPMT_PUBLIC {
  if (kind === 'rsa') {
    const bits = opts.bits ?? 2048;
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: bits });
    return {
      type: TPM_ALG.RSA,
      nameAlg: TPM_ALG.SHA256,
      objectAttributes: AK_ATTRIBUTES,
      authPolicy: new Uint8Array(0),
      parameters: { symmetric: { algorithm: TPM_ALG.NULL }, scheme: { scheme: TPM_ALG.RSASSA, details: { hashAlg: TPM_ALG.SHA256 } }, keyBits: bits as 2048, exponent: 0 },
      unique: new Uint8Array(Buffer.from(publicKey.export({ format: 'jwk' }).n!, 'base64url')),
    };
  }
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: opts.curve ?? 'prime256v1' });
  return {
    type: TPM_ALG.ECC,
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: AK_ATTRIBUTES,
    authPolicy: new Uint8Array(0),
    parameters: { symmetric: { algorithm: TPM_ALG.NULL }, scheme: { scheme: TPM_ALG.ECDSA, details: { hashAlg: TPM_ALG.SHA256 } }, curveID: (opts.curveID ?? TPM_ECC.NIST_P256) as 3, kdf: { scheme: TPM_ALG.NULL } },
    unique: eccPointOf(publicKey).point,
  };
}

function withAttributes(pub: TPMT_PUBLIC, change: Partial<Record<string, boolean>>): TPMT_PUBLIC {
  return { ...pub, objectAttributes: { ...pub.objectAttributes, ...change } };
}
function withScheme(pub: TPMT_PUBLIC, scheme: unknown): TPMT_PUBLIC {
  return { ...pub, parameters: { ...pub.parameters, scheme } } as TPMT_PUBLIC;
}

describe('AK checks on public areas', () => {
  const rsa = areaOf('rsa');
  const ecc = areaOf('ec');

  it('an AK-shaped RSA-2048 and P-256 key pass every check', () => {
    for (const pub of [rsa, ecc]) {
      const v = checkAk(pub);
      expect(failures(v)).toEqual([]);
      expect(v.checks.map((c) => `${c.check}:${c.outcome}:${c.reason}`)).toEqual([
        'ak.key:pass:key.ok',
        'ak.attributes:pass:attributes.ak',
        'ak.scheme:pass:scheme.ok',
        'ak.name-alg:pass:name-alg.ok',
      ]);
    }
  });

  it('each required attribute cleared, and decrypt set, fails ak.attributes naming it', () => {
    for (const attr of AK_REQUIRED_ATTRIBUTES) {
      const v = checkAk(withAttributes(ecc, { [attr]: false }));
      expect(failures(v)).toEqual(['ak.attributes:attributes.missing']);
      expect(check(v, 'ak.attributes').detail).toContain(attr);
    }
    expect(failures(checkAk(withAttributes(rsa, { decrypt: true })))).toEqual(['ak.attributes:attributes.decrypt']);
    // Both at once: the missing ones are the reason, decrypt is named too.
    const both = checkAk(withAttributes(rsa, { restricted: false, decrypt: true }));
    expect(failures(both)).toEqual(['ak.attributes:attributes.missing']);
    expect(check(both, 'ak.attributes').detail).toMatch(/restricted.*decrypt/);
  });

  it('schemes: NULL, one that does not fit the key type, SHA-1 (refused, or a warning by policy)', () => {
    expect(failures(checkAk(withScheme(rsa, { scheme: TPM_ALG.NULL })))).toEqual(['ak.scheme:scheme.null']);
    expect(failures(checkAk(withScheme(ecc, { scheme: TPM_ALG.NULL })))).toEqual(['ak.scheme:scheme.null']);
    expect(failures(checkAk(withScheme(rsa, { scheme: TPM_ALG.OAEP, details: { hashAlg: TPM_ALG.SHA256 } })))).toEqual(['ak.scheme:scheme.mismatch']);
    expect(failures(checkAk(withScheme(rsa, { scheme: TPM_ALG.RSAES })))).toEqual(['ak.scheme:scheme.mismatch']);
    for (const s of [TPM_ALG.ECDH, TPM_ALG.SM2, TPM_ALG.ECSCHNORR]) {
      expect(failures(checkAk(withScheme(ecc, { scheme: s, details: { hashAlg: TPM_ALG.SHA256 } })))).toEqual(['ak.scheme:scheme.mismatch']);
    }
    expect(failures(checkAk(withScheme(ecc, { scheme: TPM_ALG.ECDAA, details: { hashAlg: TPM_ALG.SHA256, count: 0 } })))).toEqual(['ak.scheme:scheme.mismatch']);
    const sha1 = withScheme(rsa, { scheme: TPM_ALG.RSASSA, details: { hashAlg: TPM_ALG.SHA1 } });
    expect(failures(checkAk(sha1))).toEqual(['ak.scheme:scheme.weak-hash']);
    expect(check(checkAk(sha1, { allowSha1: true }), 'ak.scheme')).toMatchObject({ outcome: 'warn', reason: 'scheme.sha1-allowed' });
    expect(failures(checkAk(withScheme(rsa, { scheme: TPM_ALG.RSAPSS, details: { hashAlg: TPM_ALG.SHA384 } })))).toEqual([]);
  });

  it('nameAlg: SHA-1 refused unless the policy allows it (then a warning); NULL refused', () => {
    expect(failures(checkAk({ ...ecc, nameAlg: TPM_ALG.SHA1 }))).toEqual(['ak.name-alg:name-alg.weak-hash']);
    expect(check(checkAk({ ...ecc, nameAlg: TPM_ALG.SHA1 }, { allowSha1: true }), 'ak.name-alg')).toMatchObject({ outcome: 'warn', reason: 'name-alg.sha1-allowed' });
    expect(failures(checkAk({ ...ecc, nameAlg: TPM_ALG.NULL }))).toEqual(['ak.name-alg:name-alg.null']);
    expect(failures(checkAk({ ...ecc, nameAlg: TPM_ALG.SHA384 }))).toEqual([]);
  });

  it('key strength: RSA below 2048 bits or the policy\'s minimum, curves outside the approved set', () => {
    expect(failures(checkAk(areaOf('rsa', { bits: 1024 })))).toEqual(['ak.key:key.rsa-too-small']);
    expect(failures(checkAk(rsa, { minRsaBits: 3072 }))).toEqual(['ak.key:key.rsa-too-small']);
    expect(failures(checkAk(areaOf('ec', { curve: 'secp224r1', curveID: TPM_ECC.NIST_P224 })))).toEqual(['ak.key:key.curve-not-approved']);
    expect(failures(checkAk({ ...ecc, parameters: { ...ecc.parameters, curveID: TPM_ECC.BN_P256 } } as TPMT_PUBLIC))).toEqual(['ak.key:key.curve-not-approved']);
    expect(failures(checkAk(areaOf('ec', { curve: 'secp384r1', curveID: TPM_ECC.NIST_P384 })))).toEqual([]);
    expect(failures(checkAk(areaOf('ec', { curve: 'secp384r1', curveID: TPM_ECC.NIST_P384 }), { curves: [TPM_ECC.NIST_P256] }))).toEqual(['ak.key:key.curve-not-approved']);
  });

  it('keys that do not import: a point off the curve, a modulus shorter than keyBits, a keyedHash object', () => {
    if (ecc.type !== TPM_ALG.ECC || rsa.type !== TPM_ALG.RSA) throw new Error('unreachable');
    const off = { ...ecc, unique: { x: ecc.unique.x, y: Uint8Array.from(ecc.unique.y, (b, i) => (i === 31 ? b ^ 1 : b)) } };
    expect(failures(checkAk(off))).toEqual(['ak.key:key.invalid']);
    expect(failures(checkAk({ ...rsa, unique: rsa.unique.subarray(1) }))).toEqual(['ak.key:key.invalid']);
    const keyed: TPMT_PUBLIC = {
      type: TPM_ALG.KEYEDHASH,
      nameAlg: TPM_ALG.SHA256,
      objectAttributes: AK_ATTRIBUTES,
      authPolicy: new Uint8Array(0),
      parameters: { scheme: { scheme: TPM_ALG.HMAC, details: { hashAlg: TPM_ALG.SHA256 } } },
      unique: new Uint8Array(32),
    };
    const v = checkAk(keyed);
    expect(failures(v)).toEqual(['ak.key:key.type']);
    expect(check(v, 'ak.scheme').outcome).toBe('not-performed');
    // A prepared AK without a usable key verifies nothing.
    expect(prepareAk(off).key).toBeUndefined();
  });

  it('bare public keys: the key is checked, attributes, scheme and nameAlg are not performed (never passed)', () => {
    const rsaPair = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = rsaPair.publicKey.export({ type: 'spki', format: 'pem' }) as string;
    for (const ak of [pem, rsaPair.publicKey, rsaPair.privateKey]) {
      const v = checkAk(ak);
      expect(v.accepted).toBe(true);
      expect(v.checks.map((c) => `${c.check}:${c.outcome}:${c.reason}`)).toEqual([
        'ak.key:pass:key.ok',
        'ak.attributes:not-performed:ak.bare-key',
        'ak.scheme:not-performed:ak.bare-key',
        'ak.name-alg:not-performed:ak.bare-key',
      ]);
    }
    expect(prepareAk(rsaPair.privateKey).key!.type).toBe('public');
    expect(failures(checkAk(generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey))).toEqual(['ak.key:key.rsa-too-small']);
    expect(failures(checkAk(generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey))).toEqual(['ak.key:key.curve-not-approved']);
    expect(failures(checkAk(generateKeyPairSync('ed25519').publicKey))).toEqual(['ak.key:key.type']);
    for (const bad of [createSecretKey(randomBytes(32)), 'not a key', new Uint8Array(10)]) {
      const e = thrown(() => checkAk(bad as never));
      expect(e).toBeInstanceOf(EvidenceError);
      expect((e as EvidenceError).code).toBe('evidence.argument');
    }
  });

  it('decodeAkPublic reads TPM2B_PUBLIC and TPMT_PUBLIC alike, and throws ParseError on garbage', () => {
    expect(hex(akName(decodeAkPublic(encode(TPM2B_PUBLIC, ecc))))).toBe(hex(akName(ecc)));
    expect(hex(akName(decodeAkPublic(encode(TPMT_PUBLIC, rsa))))).toBe(hex(akName(rsa)));
    const bytes = encode(TPMT_PUBLIC, rsa);
    expect(thrown(() => decodeAkPublic(bytes.subarray(0, bytes.length - 1)))).toBeInstanceOf(ParseError);
    expect(thrown(() => decodeAkPublic(new Uint8Array([0, 0])))).toBeInstanceOf(ParseError);
  });
});

describe('checkActivation', () => {
  it('matches equal secrets only, in constant time for equal lengths', () => {
    const s = new Uint8Array(randomBytes(32));
    expect(checkActivation(s, s.slice())).toMatchObject({ check: 'ak.activation', outcome: 'pass', reason: 'activation.match' });
    const t = s.slice();
    t[0]! ^= 1;
    expect(checkActivation(s, t)).toMatchObject({ outcome: 'fail', reason: 'activation.mismatch' });
    expect(checkActivation(s, s.subarray(0, 31))).toMatchObject({ outcome: 'fail', reason: 'activation.mismatch' });
    expect(checkActivation(s, new Uint8Array(0))).toMatchObject({ outcome: 'fail', reason: 'activation.mismatch' });
    expect(thrown(() => checkActivation(new Uint8Array(0), new Uint8Array(0)))).toBeInstanceOf(EvidenceError);
  });
});

describeWithSwtpm('AKs and credential activation on swtpm', () => {
  let sw: SwtpmInstance;
  let tpm: Tpm;

  beforeAll(async () => {
    sw = await startSwtpm();
    tpm = new Tpm(new SwtpmTransport({ port: sw.port, ctrlPort: sw.ctrlPort }));
    await tpm.run(Startup, {}, { startupType: TPM_SU.CLEAR });
  });
  afterAll(async () => {
    await tpm?.close();
    await sw?.stop();
  });

  for (const [ekTemplate, alg] of [
    ['L-1', 'rsa'],
    ['L-2', 'ecc'],
  ] as const) {
    it(`${ekTemplate} EK, ${alg.toUpperCase()} AK: checks pass, Names are the TPM's, the credential comes back only for this AK`, async () => {
      const ek: Ek = await createEk(tpm, { template: ekTemplate, persistentHandle: false });
      let ak: Ak | undefined;
      let other: Ak | undefined;
      try {
        ak = await createAk(tpm, ek, { alg });
        expect(failures(checkAk(ak.publicArea))).toEqual([]);
        const rp = await tpm.run(ReadPublic, { objectHandle: ak.handle }, {});
        expect(hex(akName(ak.publicArea))).toBe(hex(rp.params.name));
        expect(hex(akQualifiedName(ek.publicArea, ak.publicArea))).toBe(hex(rp.params.qualifiedName));
        expect(hex(akQualifiedName(ek.name, akName(ak.publicArea)))).toBe(hex(rp.params.qualifiedName));

        const made = makeAkCredential(ek.publicArea, ak.publicArea);
        expect(made.expected.length).toBe(32);
        expect(hex(made.akName)).toBe(hex(ak.name));
        const returned = await activateCredential(tpm, ak, ek, made.credentialBlob, made.secret);
        expect(checkActivation(made.expected, returned)).toMatchObject({ outcome: 'pass', reason: 'activation.match' });
        // Another challenge for the same pair carries another secret.
        const again = makeAkCredential(ek.publicArea, akName(ak.publicArea), { credentialBytes: 16 });
        expect(again.expected.length).toBe(16);
        expect(checkActivation(made.expected, await activateCredential(tpm, ak, ek, again.credentialBlob, again.secret)).reason).toBe('activation.mismatch');

        // Bound to another AK's Name: the TPM refuses to release it to this AK.
        other = await createAk(tpm, ek, { alg });
        const forOther = makeAkCredential(ek.publicArea, other.publicArea);
        const err = await activateCredential(tpm, ak, ek, forOther.credentialBlob, forOther.secret).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(isRc(err, TPM_RC.INTEGRITY)).toBe(true);

        for (const n of [15, 33]) expect(thrown(() => makeAkCredential(ek.publicArea, ak!.publicArea, { credentialBytes: n }))).toBeInstanceOf(EvidenceError);
      } finally {
        if (other) await tpm.flush(other);
        if (ak) await tpm.flush(ak);
        await tpm.flush(ek);
      }
    });
  }
});
