import { createPublicKey, randomBytes, sign, verify, checkPrimeSync, createECDH, type KeyObject } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { derivePrimaryObject, PRIMARY_OBJECT_CREATION, PrimaryDrbg, type DerivedObject } from '../../src/simulator/keygen.js';
import { TPM_ALG, TPM_ECC } from '../../src/tpm/constants.js';
import { hash, hmac } from '../../src/tpm/crypto/hash.js';
import { keyFromSensitive } from '../../src/tpm/duplication.js';
import { objectName } from '../../src/tpm/names.js';
import { TPM_RC, TpmError } from '../../src/tpm/rc.js';
import { publicKeyFromArea } from '../../src/tpm/secret.js';
import { eccAkTemplate, eccEkTemplate, eccSrkTemplate, rsaAkTemplate, rsaEkTemplate, rsaSrkTemplate } from '../../src/tpm/templates.js';
import { TPMA_OBJECT, type TPMT_PUBLIC } from '../../src/tpm/types/index.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const noSensitive = { userAuth: new Uint8Array(0), data: new Uint8Array(0) };

async function derive(seed: Uint8Array, template: TPMT_PUBLIC, data: Uint8Array = new Uint8Array(0)): Promise<DerivedObject> {
  return derivePrimaryObject({ seed, template, sensitive: { userAuth: new Uint8Array(0), data } });
}

function bigOf(b: Uint8Array): bigint {
  return BigInt(`0x${toHex(b)}`);
}

/** A sign/verify round trip: the private key signs, the key made from the public area alone verifies. */
function roundTrip(obj: DerivedObject): boolean {
  const msg = randomBytes(32);
  const sig = sign('sha256', msg, obj.key);
  return verify('sha256', msg, publicKeyFromArea(obj.publicArea), sig);
}

describe('PrimaryDrbg', () => {
  // The NIST CAVP vector [AES-256 no df], COUNT = 0, that ms-tpm-20-ref's DRBG_SelfTest runs
  // (TPMCmd/tpm/include/PRNG_TestVectors.h): instantiate, generate (intermediate), reseed, generate.
  it('reproduces the CTR_DRBG AES-256 vector of the reference self-test', () => {
    const drbg = PrimaryDrbg.fromEntropy(
      hex(`0d15aa80 b16c3a10 906cfedb 795dae0b 5b81041c 5c5bfacb 373d4440 d9120f7e 3d6cf909 86cf52d8 5d3e947d 8c061f91`),
    );
    expect(toHex(drbg.generate(16))).toBe('28e0ebb8210166508c8f65f2207bd0a3');
    drbg.reseed(hex(`6ee793a3 3955d72a d12fd80a 8a3fcf95 ed3b4dac 5795fe25 cf869f7c 27573bbc 56f1acae 13a65042 b340093c 464a7a22`));
    expect(toHex(drbg.generate(16))).toBe('946f5182d54510b9461248f571ca06c9');
  });

  it('is a function of every input of the seeded instantiation', () => {
    const seed = new Uint8Array(32).fill(7);
    const name = new Uint8Array(34).fill(1);
    const base = toHex(PrimaryDrbg.seeded(seed, PRIMARY_OBJECT_CREATION, name, new Uint8Array(0)).generate(64));
    expect(toHex(PrimaryDrbg.seeded(seed, PRIMARY_OBJECT_CREATION, name, new Uint8Array(0)).generate(64))).toBe(base);
    const variants = [
      PrimaryDrbg.seeded(new Uint8Array(32).fill(8), PRIMARY_OBJECT_CREATION, name, new Uint8Array(0)),
      PrimaryDrbg.seeded(seed, new TextEncoder().encode('Primary Object Creation'), name, new Uint8Array(0)),
      PrimaryDrbg.seeded(seed, PRIMARY_OBJECT_CREATION, new Uint8Array(34).fill(2), new Uint8Array(0)),
      PrimaryDrbg.seeded(seed, PRIMARY_OBJECT_CREATION, name, new Uint8Array([0])),
    ];
    for (const v of variants) expect(toHex(v.generate(64))).not.toBe(base);
  });

  it('updates its key after each request (SP 800-90A §10.2.1.5.1 step 6)', () => {
    const a = PrimaryDrbg.seeded(new Uint8Array(16), PRIMARY_OBJECT_CREATION, new Uint8Array(0), new Uint8Array(0));
    const b = PrimaryDrbg.seeded(new Uint8Array(16), PRIMARY_OBJECT_CREATION, new Uint8Array(0), new Uint8Array(0));
    const whole = a.generate(48);
    const first = b.generate(16);
    // The first block is the same; after a request the key changes (SP 800-90A §10.2.1.5.1 step 6).
    expect(toHex(first)).toBe(toHex(whole.subarray(0, 16)));
    expect(toHex(b.generate(16))).not.toBe(toHex(whole.subarray(16, 32)));
  });

  it('refuses requests above the reference limit and entropy of the wrong size', () => {
    const d = PrimaryDrbg.fromEntropy(new Uint8Array(48));
    expect(() => d.generate(65537)).toThrow(expect.objectContaining({ code: 'crypto.argument' }));
    expect(() => PrimaryDrbg.fromEntropy(new Uint8Array(32))).toThrow(expect.objectContaining({ code: 'crypto.argument' }));
  });
});

describe('derivePrimaryObject: ECC', () => {
  for (const [label, template] of [
    ['P-256 EK', eccEkTemplate()],
    ['P-256 SRK', eccSrkTemplate()],
    ['P-256 AK', eccAkTemplate()],
  ] as const) {
    it(`${label}: same seed → same key, other seed → other key, key pair consistent`, async () => {
      const seed = randomBytes(32);
      const a = await derive(seed, template);
      const b = await derive(seed, template);
      const c = await derive(randomBytes(32), template);
      expect(a.publicArea).toEqual(b.publicArea);
      expect(toHex(a.name)).toBe(toHex(b.name));
      expect(toHex(a.name)).not.toBe(toHex(c.name));
      expect(toHex(a.name)).toBe(toHex(objectName(a.publicArea)));
      expect(a.key.type).toBe('private');
      expect(roundTrip(a)).toBe(true);
    });
  }

  it('P-384: the scalar is in [1, n) and its point is the public area', async () => {
    const template = { ...eccSrkTemplate(), parameters: { ...(eccSrkTemplate() as Extract<TPMT_PUBLIC, { type: 0x23 }>).parameters, curveID: TPM_ECC.NIST_P384 } } as TPMT_PUBLIC;
    const obj = await derive(randomBytes(48), template);
    if (obj.publicArea.type !== TPM_ALG.ECC) throw new Error('not ECC');
    expect(obj.sensitive.sensitive.length).toBe(48);
    const ecdh = createECDH('secp384r1');
    ecdh.setPrivateKey(obj.sensitive.sensitive);
    expect(toHex(ecdh.getPublicKey().subarray(1, 49))).toBe(toHex(obj.publicArea.unique.x));
    expect(obj.key.asymmetricKeyDetails?.namedCurve).toBe('secp384r1');
    expect(roundTrip(obj)).toBe(true);
  });

  it('a storage parent keeps a seedValue of the nameAlg size, a signing key none', async () => {
    const seed = randomBytes(32);
    expect((await derive(seed, eccSrkTemplate())).sensitive.seedValue.length).toBe(32);
    expect((await derive(seed, eccAkTemplate())).sensitive.seedValue.length).toBe(0);
  });

  it('the caller’s sensitive data changes the key even when the TPM is the data’s origin (it feeds the stream)', async () => {
    const seed = randomBytes(32);
    const a = await derive(seed, eccSrkTemplate());
    const b = await derive(seed, eccSrkTemplate(), new Uint8Array([1, 2, 3]));
    expect(toHex(a.name)).not.toBe(toHex(b.name));
  });

  it('the template’s unique field is part of its Name, hence of the key (EK nonce fields)', async () => {
    const seed = randomBytes(32);
    const t = eccEkTemplate() as Extract<TPMT_PUBLIC, { type: 0x23 }>;
    const other = { ...t, unique: { x: new Uint8Array(32).fill(1), y: t.unique.y } };
    expect(toHex((await derive(seed, t)).name)).not.toBe(toHex((await derive(seed, other)).name));
  });

  it('endorsement proofs change the seedValue of a parent but not the key', async () => {
    const seed = randomBytes(32);
    const plain = await derive(seed, eccEkTemplate());
    const stirred = await derivePrimaryObject({ seed, template: eccEkTemplate(), sensitive: noSensitive, proofs: [randomBytes(32), randomBytes(32)] });
    expect(stirred.publicArea).toEqual(plain.publicArea);
    expect(toHex(stirred.sensitive.seedValue)).not.toBe(toHex(plain.sensitive.seedValue));
  });

  it('property: over random seeds, deterministic and a valid key pair', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 64 }), async (seed) => {
        const a = await derive(seed, eccAkTemplate());
        const b = await derive(seed, eccAkTemplate());
        expect(toHex(a.name)).toBe(toHex(b.name));
        expect(roundTrip(a)).toBe(true);
      }),
      { numRuns: 40 },
    );
  });
});

describe('derivePrimaryObject: RSA', () => {
  function checkRsa(obj: DerivedObject, bits: number): void {
    if (obj.publicArea.type !== TPM_ALG.RSA) throw new Error('not RSA');
    const n = bigOf(obj.publicArea.unique);
    const p = bigOf(obj.sensitive.sensitive);
    const q = n / p;
    expect(obj.publicArea.unique.length * 8).toBe(bits);
    expect(n >> BigInt(bits - 1)).toBe(1n); // the modulus has its full size
    expect(p * q).toBe(n);
    expect(p.toString(2).length).toBe(bits / 2);
    expect(q.toString(2).length).toBe(bits / 2);
    expect(checkPrimeSync(p)).toBe(true);
    expect(checkPrimeSync(q)).toBe(true);
    const diff = p > q ? p - q : q - p;
    expect(diff.toString(2).length).toBeGreaterThan(100);
    expect((p - 1n) % 65537n).not.toBe(0n);
    expect((q - 1n) % 65537n).not.toBe(0n);
    expect(obj.key.asymmetricKeyDetails?.modulusLength).toBe(bits);
    expect(roundTrip(obj)).toBe(true);
  }

  it('RSA-2048 EK: deterministic, primes checked, key pair consistent', async () => {
    const seed = randomBytes(32);
    const a = await derive(seed, rsaEkTemplate());
    const b = await derive(seed, rsaEkTemplate());
    expect(a.publicArea).toEqual(b.publicArea);
    expect(toHex(a.sensitive.sensitive)).toBe(toHex(b.sensitive.sensitive));
    checkRsa(a, 2048);
    const c = await derive(randomBytes(32), rsaEkTemplate());
    expect(toHex(c.name)).not.toBe(toHex(a.name));
  });

  it('RSA-3072 and the node:crypto key match the core’s reconstruction from the sensitive area', async () => {
    const template = { ...rsaSrkTemplate(), parameters: { ...(rsaSrkTemplate() as Extract<TPMT_PUBLIC, { type: 0x01 }>).parameters, keyBits: 3072 } } as TPMT_PUBLIC;
    const obj = await derive(randomBytes(32), template);
    checkRsa(obj, 3072);
    const again = keyFromSensitive(obj.publicArea, obj.sensitive);
    expect(createPublicKey(again).export({ format: 'jwk' })).toEqual(createPublicKey(obj.key).export({ format: 'jwk' }));
  });

  it('property: over random seeds, RSA-2048 AKs are deterministic with prime factors', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 16, maxLength: 48 }), async (seed) => {
        const a = await derive(seed, rsaAkTemplate());
        const b = await derive(seed, rsaAkTemplate());
        expect(toHex(a.name)).toBe(toHex(b.name));
        checkRsa(a, 2048);
      }),
      { numRuns: 3 },
    );
  });

  it('an exponent given in the template is used (and checked against p − 1)', async () => {
    const base = rsaAkTemplate() as Extract<TPMT_PUBLIC, { type: 0x01 }>;
    const obj = await derive(randomBytes(32), { ...base, parameters: { ...base.parameters, exponent: 3 } });
    if (obj.publicArea.type !== TPM_ALG.RSA) throw new Error('not RSA');
    const p = bigOf(obj.sensitive.sensitive);
    expect((p - 1n) % 3n).not.toBe(0n);
    expect(createPublicKey(obj.key).export({ format: 'jwk' }).e).toBe('Aw');
    expect(roundTrip(obj)).toBe(true);
  });
});

describe('derivePrimaryObject: symmetric objects', () => {
  const hmacTemplate: TPMT_PUBLIC = {
    type: TPM_ALG.KEYEDHASH,
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: TPMA_OBJECT.of({ fixedTPM: true, fixedParent: true, sensitiveDataOrigin: true, userWithAuth: true, sign: true }),
    authPolicy: new Uint8Array(0),
    parameters: { scheme: { scheme: TPM_ALG.HMAC, details: { hashAlg: TPM_ALG.SHA384 } } },
    unique: new Uint8Array(0),
  } as TPMT_PUBLIC;
  const aesTemplate: TPMT_PUBLIC = {
    type: TPM_ALG.SYMCIPHER,
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: TPMA_OBJECT.of({ fixedTPM: true, fixedParent: true, sensitiveDataOrigin: true, userWithAuth: true, restricted: true, decrypt: true }),
    authPolicy: new Uint8Array(0),
    parameters: { sym: { algorithm: TPM_ALG.AES, keyBits: 256, mode: TPM_ALG.CFB } },
    unique: new Uint8Array(0),
  } as TPMT_PUBLIC;

  it('HMAC key of the scheme hash size, unique = H(seedValue ‖ key), deterministic', async () => {
    const seed = randomBytes(32);
    const a = await derive(seed, hmacTemplate);
    const b = await derive(seed, hmacTemplate);
    expect(a.sensitive.sensitive.length).toBe(48);
    expect(toHex(a.sensitive.sensitive)).toBe(toHex(b.sensitive.sensitive));
    expect(toHex(a.publicArea.unique as Uint8Array)).toBe(toHex(hash(TPM_ALG.SHA256, a.sensitive.seedValue, a.sensitive.sensitive)));
    expect((a.key as KeyObject).symmetricKeySize).toBe(48);
    expect(toHex((await derive(randomBytes(32), hmacTemplate)).sensitive.sensitive)).not.toBe(toHex(a.sensitive.sensitive));
    // The core's load-time binding check accepts the pair.
    expect(() => keyFromSensitive(a.publicArea, a.sensitive)).not.toThrow();
  });

  it('AES-256 storage parent: 32-byte key, unique = HMAC_seedValue(key)', async () => {
    const a = await derive(randomBytes(32), aesTemplate);
    expect(a.sensitive.sensitive.length).toBe(32);
    expect(toHex(a.publicArea.unique as Uint8Array)).toBe(toHex(hmac(TPM_ALG.SHA256, a.sensitive.seedValue, a.sensitive.sensitive)));
  });

  it('sealed data and caller-supplied keys are kept, not generated', async () => {
    const sealTemplate = {
      type: TPM_ALG.KEYEDHASH,
      nameAlg: TPM_ALG.SHA256,
      objectAttributes: TPMA_OBJECT.of({ fixedTPM: true, fixedParent: true, userWithAuth: true }),
      authPolicy: new Uint8Array(0),
      parameters: { scheme: { scheme: TPM_ALG.NULL, details: null } },
      unique: new Uint8Array(0),
    } as TPMT_PUBLIC;
    const secret = new TextEncoder().encode('sealed secret');
    const sealed = await derive(randomBytes(32), sealTemplate, secret);
    expect(Buffer.from(sealed.sensitive.sensitive).toString()).toBe('sealed secret');
    const userAes = { ...aesTemplate, objectAttributes: TPMA_OBJECT.of({ fixedTPM: true, fixedParent: true, userWithAuth: true, decrypt: true, sign: true }) } as TPMT_PUBLIC;
    const key = randomBytes(32);
    expect(toHex((await derive(randomBytes(32), userAes, key)).sensitive.sensitive)).toBe(toHex(key));
  });
});

describe('derivePrimaryObject: errors carry the TPM response code', () => {
  const rc = async (p: Promise<unknown>): Promise<number> => {
    try {
      await p;
    } catch (e) {
      expect(e).toBeInstanceOf(TpmError);
      return (e as TpmError).baseCode;
    }
    throw new Error('no error');
  };
  const seed = new Uint8Array(32);

  it('unsupported RSA sizes, curves, exponents, NULL nameAlg, oversize keys', async () => {
    const rsa = rsaSrkTemplate() as Extract<TPMT_PUBLIC, { type: 0x01 }>;
    const ecc = eccSrkTemplate() as Extract<TPMT_PUBLIC, { type: 0x23 }>;
    expect(await rc(derive(seed, { ...rsa, parameters: { ...rsa.parameters, keyBits: 4096 } }))).toBe(TPM_RC.KEY_SIZE);
    expect(await rc(derive(seed, { ...rsa, parameters: { ...rsa.parameters, exponent: 65535 } }))).toBe(TPM_RC.RANGE);
    expect(await rc(derive(seed, { ...rsa, parameters: { ...rsa.parameters, exponent: 1 } }))).toBe(TPM_RC.RANGE);
    expect(await rc(derive(seed, { ...ecc, parameters: { ...ecc.parameters, curveID: TPM_ECC.NIST_P521 } }))).toBe(TPM_RC.CURVE);
    expect(await rc(derive(seed, { ...ecc, parameters: { ...ecc.parameters, curveID: TPM_ECC.BN_P256 } }))).toBe(TPM_RC.CURVE);
    expect(await rc(derive(seed, { ...ecc, nameAlg: TPM_ALG.NULL } as TPMT_PUBLIC))).toBe(TPM_RC.HASH);
    const hmacKey = {
      type: TPM_ALG.KEYEDHASH,
      nameAlg: TPM_ALG.SHA256,
      objectAttributes: TPMA_OBJECT.of({ userWithAuth: true, sign: true }),
      authPolicy: new Uint8Array(0),
      parameters: { scheme: { scheme: TPM_ALG.HMAC, details: { hashAlg: TPM_ALG.SHA256 } } },
      unique: new Uint8Array(0),
    } as TPMT_PUBLIC;
    expect(await rc(derive(seed, hmacKey, new Uint8Array(65)))).toBe(TPM_RC.SIZE);
    const aes = {
      type: TPM_ALG.SYMCIPHER,
      nameAlg: TPM_ALG.SHA256,
      objectAttributes: TPMA_OBJECT.of({ userWithAuth: true, decrypt: true, sign: true }),
      authPolicy: new Uint8Array(0),
      parameters: { sym: { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB } },
      unique: new Uint8Array(0),
    } as TPMT_PUBLIC;
    expect(await rc(derive(seed, aes, new Uint8Array(32)))).toBe(TPM_RC.KEY_SIZE);
  });
});
