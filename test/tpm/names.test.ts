/**
 * Names (src/tpm/names.ts, Part 1 §16): handle Names, object and NV Names
 * checked against node:crypto over public areas marshaled here by hand (not
 * with the codec), qualified Names, argument errors, and, when Debian's
 * tpm2-tools and swtpm are installed, the Name tpm2_loadexternal reports.
 */
import { execFile, spawnSync } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TPM_ALG, TPM_ECC, TPM_RH, TPM_RS_PW } from '../../src/tpm/constants.js';
import { ArgumentError } from '../../src/tpm/errors.js';
import { handleName, nameFromPublicBytes, nvName, objectName, qualifiedName } from '../../src/tpm/names.js';
import { eccEkTemplate, rsaEkTemplate } from '../../src/tpm/templates.js';
import { TPM2B_PUBLIC, TPMA_NV, TPMA_OBJECT, type TPMS_NV_PUBLIC, type TPMT_PUBLIC } from '../../src/tpm/types/index.js';
import { decode, encode } from '../../src/tpm/wire/codec.js';
import { startSwtpm, swtpmSupport, type SwtpmInstance } from '../support/swtpm.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const u16 = (n: number): Buffer => Buffer.from([n >>> 8, n & 0xff]);
const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};
const tpm2b = (body: Buffer): Buffer => Buffer.concat([u16(body.length), body]);
const sha = (alg: string, ...parts: Uint8Array[]): Buffer => {
  const h = createHash(alg);
  for (const p of parts) h.update(p);
  return h.digest();
};

function argumentError(fn: () => unknown): ArgumentError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(ArgumentError);
  expect((caught as ArgumentError).code).toBe('crypto.argument');
  return caught as ArgumentError;
}

/** PolicySecret(TPM_RH_ENDORSEMENT), the EK authPolicy (tpm-spec-facts.md §8). */
const EK_POLICY = hex('837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa');

/** The RSA-2048 EK template (Template L-1) marshaled field by field, as in tpm-spec-facts.md §8. */
const RSA_EK_BYTES = Buffer.concat([
  u16(0x0001), // type TPM_ALG_RSA
  u16(0x000b), // nameAlg TPM_ALG_SHA256
  u32(0x000300b2), // fixedTPM | fixedParent | sensitiveDataOrigin | adminWithPolicy | restricted | decrypt
  tpm2b(EK_POLICY), // authPolicy
  u16(0x0006), u16(0x0080), u16(0x0043), // symmetric AES-128-CFB
  u16(0x0010), // scheme NULL
  u16(0x0800), // keyBits 2048
  u32(0), // exponent 0 (= 65537)
  tpm2b(Buffer.alloc(256)), // unique: 256 zero bytes
]);

/** The ECC P-256 EK template (Template L-2), likewise. */
const ECC_EK_BYTES = Buffer.concat([
  u16(0x0023), // type TPM_ALG_ECC
  u16(0x000b),
  u32(0x000300b2),
  tpm2b(EK_POLICY),
  u16(0x0006), u16(0x0080), u16(0x0043),
  u16(0x0010), // scheme NULL
  u16(0x0003), // curveID NIST P-256
  u16(0x0010), // kdf NULL
  tpm2b(Buffer.alloc(32)), // unique.x
  tpm2b(Buffer.alloc(32)), // unique.y
]);

describe('handleName: entities without a public area are named by their handle', () => {
  it('PCR, permanent and session handles give the 4-byte big-endian handle', () => {
    const cases: [number, string][] = [
      [0, '00000000'],
      [23, '00000017'],
      [TPM_RH.OWNER, '40000001'],
      [TPM_RH.ENDORSEMENT, '4000000b'],
      [TPM_RS_PW, '40000009'],
      [0x02000000, '02000000'], // HMAC session
      [0x03000005, '03000005'], // policy session
    ];
    for (const [h, want] of cases) expect(Buffer.from(handleName(h)).toString('hex'), want).toBe(want);
  });

  it('transient, persistent and NV handles throw an ArgumentError (their Name comes from a public area)', () => {
    for (const h of [0x80000000, 0x80ffffff, 0x81000001, 0x81010001, 0x01c00002, 0x01000000]) {
      const e = argumentError(() => handleName(h));
      expect(e.message).toContain(h.toString(16));
    }
  });
});

describe('objectName = nameAlg ‖ H_nameAlg(marshaled TPMT_PUBLIC)', () => {
  it('the codec marshals the EK templates to the bytes of tpm-spec-facts.md §8', () => {
    expect(RSA_EK_BYTES.length).toBe(314);
    expect(RSA_EK_BYTES.subarray(0, 10).toString('hex')).toBe('0001000b000300b20020');
    expect(Buffer.from(encode(TPM2B_PUBLIC, rsaEkTemplate()).subarray(2)).toString('hex')).toBe(RSA_EK_BYTES.toString('hex'));
    expect(ECC_EK_BYTES.length).toBe(122);
    expect(Buffer.from(encode(TPM2B_PUBLIC, eccEkTemplate()).subarray(2)).toString('hex')).toBe(ECC_EK_BYTES.toString('hex'));
  });

  it('RSA EK template: 000b ‖ SHA-256 of the 314 hand-marshaled bytes', () => {
    const want = Buffer.concat([u16(0x000b), sha('sha256', RSA_EK_BYTES)]);
    const got = objectName(rsaEkTemplate());
    expect(got.length).toBe(34);
    expect(Buffer.from(got).toString('hex')).toBe(want.toString('hex'));
  });

  it('ECC EK template: 000b ‖ SHA-256 of the 122 hand-marshaled bytes', () => {
    const want = Buffer.concat([u16(0x000b), sha('sha256', ECC_EK_BYTES)]);
    expect(Buffer.from(objectName(eccEkTemplate())).toString('hex')).toBe(want.toString('hex'));
  });

  it('follows nameAlg: SHA-1 and SHA-384 names hash with that algorithm', () => {
    const sha1Ek: TPMT_PUBLIC = { ...rsaEkTemplate(), nameAlg: TPM_ALG.SHA1 };
    const bytes1 = Buffer.from(RSA_EK_BYTES);
    bytes1.writeUInt16BE(0x0004, 2);
    expect(Buffer.from(objectName(sha1Ek)).toString('hex')).toBe(Buffer.concat([u16(0x0004), sha('sha1', bytes1)]).toString('hex'));
    const sha384Ek: TPMT_PUBLIC = { ...rsaEkTemplate(), nameAlg: TPM_ALG.SHA384 };
    const bytes384 = Buffer.from(RSA_EK_BYTES);
    bytes384.writeUInt16BE(0x000c, 2);
    const n = objectName(sha384Ek);
    expect(n.length).toBe(2 + 48);
    expect(Buffer.from(n).toString('hex')).toBe(Buffer.concat([u16(0x000c), sha('sha384', bytes384)]).toString('hex'));
  });

  it('any change to the public area changes the Name', () => {
    const other = rsaEkTemplate();
    other.unique = new Uint8Array(256).fill(1);
    expect(Buffer.from(objectName(other))).not.toEqual(Buffer.from(objectName(rsaEkTemplate())));
  });

  it('nameAlg NULL gives the empty Name', () => {
    expect(objectName({ ...rsaEkTemplate(), nameAlg: TPM_ALG.NULL }).length).toBe(0);
    expect(nameFromPublicBytes(TPM_ALG.NULL, RSA_EK_BYTES).length).toBe(0);
  });

  it('a nameAlg that is not a hash is an ArgumentError', () => {
    argumentError(() => nameFromPublicBytes(TPM_ALG.RSA, RSA_EK_BYTES));
    argumentError(() => nameFromPublicBytes(TPM_ALG.AES, RSA_EK_BYTES));
  });
});

describe('nvName = nameAlg ‖ H_nameAlg(marshaled TPMS_NV_PUBLIC)', () => {
  const attributes = TPMA_NV.of({ OWNERWRITE: true, AUTHWRITE: true, OWNERREAD: true, AUTHREAD: true, NO_DA: true });
  const pub: TPMS_NV_PUBLIC = { nvIndex: 0x01500020, nameAlg: TPM_ALG.SHA256, attributes, authPolicy: new Uint8Array(0), dataSize: 32 };

  it('matches SHA-256 over the hand-marshaled index', () => {
    expect(TPMA_NV.toWord(attributes)).toBe(0x02060006);
    // nvIndex | nameAlg | attributes | authPolicy (empty TPM2B) | dataSize
    const bytes = Buffer.concat([u32(0x01500020), u16(0x000b), u32(0x02060006), tpm2b(Buffer.alloc(0)), u16(32)]);
    expect(bytes.toString('hex')).toBe('01500020000b0206000600000020');
    expect(Buffer.from(nvName(pub)).toString('hex')).toBe(Buffer.concat([u16(0x000b), sha('sha256', bytes)]).toString('hex'));
  });

  it('changes when the index is written (TPMA_NV_WRITTEN is part of the Name)', () => {
    const written = { ...pub, attributes: TPMA_NV.of({ ...attributes, WRITTEN: true }) };
    const bytes = Buffer.concat([u32(0x01500020), u16(0x000b), u32(0x22060006), tpm2b(Buffer.alloc(0)), u16(32)]);
    expect(Buffer.from(nvName(written)).toString('hex')).toBe(Buffer.concat([u16(0x000b), sha('sha256', bytes)]).toString('hex'));
    expect(Buffer.from(nvName(written))).not.toEqual(Buffer.from(nvName(pub)));
  });

  it('with an authPolicy and SHA-1', () => {
    const policy = Buffer.alloc(20, 0xab);
    const p: TPMS_NV_PUBLIC = { ...pub, nameAlg: TPM_ALG.SHA1, authPolicy: policy };
    const bytes = Buffer.concat([u32(0x01500020), u16(0x0004), u32(0x02060006), tpm2b(policy), u16(32)]);
    expect(Buffer.from(nvName(p)).toString('hex')).toBe(Buffer.concat([u16(0x0004), sha('sha1', bytes)]).toString('hex'));
  });
});

describe('qualifiedName: QN = nameAlg ‖ H_nameAlg(QN(parent) ‖ Name)', () => {
  const ekName = objectName(rsaEkTemplate());

  it('a primary under the endorsement hierarchy (the hierarchy QN is its handle)', () => {
    const parentQn = handleName(TPM_RH.ENDORSEMENT);
    const want = Buffer.concat([u16(0x000b), sha('sha256', hex('4000000b'), ekName)]);
    expect(Buffer.from(qualifiedName(parentQn, ekName)).toString('hex')).toBe(want.toString('hex'));
  });

  it('chains: a child QN hashes its parent QN, with the child nameAlg', () => {
    const ekQn = qualifiedName(handleName(TPM_RH.ENDORSEMENT), ekName);
    const child: TPMT_PUBLIC = { ...eccEkTemplate(), nameAlg: TPM_ALG.SHA1 };
    const childName = objectName(child);
    const qn = qualifiedName(ekQn, childName);
    expect(qn.length).toBe(22);
    expect(Buffer.from(qn).toString('hex')).toBe(Buffer.concat([u16(0x0004), sha('sha1', ekQn, childName)]).toString('hex'));
    // Another parent gives another QN for the same Name.
    expect(Buffer.from(qualifiedName(handleName(TPM_RH.OWNER), childName))).not.toEqual(Buffer.from(qn));
  });

  it('argument errors: no nameAlg, a nameAlg that is not a hash, a digest of the wrong length', () => {
    const parent = handleName(TPM_RH.OWNER);
    argumentError(() => qualifiedName(parent, new Uint8Array(0))); // nameAlg NULL object: empty Name
    argumentError(() => qualifiedName(parent, hex('00')));
    argumentError(() => qualifiedName(parent, Buffer.concat([u16(0x0001), Buffer.alloc(32)]))); // TPM_ALG_RSA
    argumentError(() => qualifiedName(parent, Buffer.concat([u16(0x000b), Buffer.alloc(20)]))); // SHA-256 with 20 bytes
    argumentError(() => qualifiedName(parent, Buffer.concat([u16(0x000b), Buffer.alloc(33)])));
    argumentError(() => qualifiedName(parent, hex('40000001'))); // a handle Name has no nameAlg
  });
});

// ---------------------------------------------------------------------------
// End to end: the Name that tpm2-tools reads back from swtpm for an external key.

const TPM2_TOOLS = spawnSync('tpm2_loadexternal', ['--version'], { encoding: 'utf8', timeout: 5000 });
const toolsAvailable = TPM2_TOOLS.error === undefined && TPM2_TOOLS.status === 0;

describe.skipIf(!toolsAvailable || !swtpmSupport().available)('objectName against Debian tpm2-tools (tpm2_loadexternal on swtpm)', () => {
  const run = promisify(execFile);
  let sw: SwtpmInstance;
  let dir: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    sw = await startSwtpm({ startupClear: true });
    dir = await mkdtemp(join(tmpdir(), 'trustroot-names-'));
    env = { ...process.env, TPM2TOOLS_TCTI: `swtpm:host=127.0.0.1,port=${sw.port}` };
  }, 30_000);
  afterAll(async () => {
    await sw?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('an ECC P-256 public key: same public area and same Name', async () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await writeFile(join(dir, 'key.pem'), publicKey.export({ type: 'spki', format: 'pem' }));
    await run('tpm2_loadexternal', ['-C', 'n', '-G', 'ecc', '-u', join(dir, 'key.pem'), '-n', join(dir, 'name.bin'), '-c', join(dir, 'key.ctx')], { env, timeout: 20_000 });
    await run('tpm2_readpublic', ['-c', join(dir, 'key.ctx'), '-f', 'tss', '-o', join(dir, 'pub.tss')], { env, timeout: 20_000 });
    const toolName = await readFile(join(dir, 'name.bin'));

    // The public area tpm2-tools builds for a PEM key: userWithAuth | decrypt | sign, no policy, NULL schemes.
    const jwk = publicKey.export({ format: 'jwk' });
    const mine: TPMT_PUBLIC = {
      type: TPM_ALG.ECC,
      nameAlg: TPM_ALG.SHA256,
      objectAttributes: TPMA_OBJECT.of({ userWithAuth: true, decrypt: true, sign: true }),
      authPolicy: new Uint8Array(0),
      parameters: { symmetric: { algorithm: TPM_ALG.NULL }, scheme: { scheme: TPM_ALG.NULL }, curveID: TPM_ECC.NIST_P256, kdf: { scheme: TPM_ALG.NULL } },
      unique: { x: Buffer.from(jwk.x!, 'base64url'), y: Buffer.from(jwk.y!, 'base64url') },
    } as TPMT_PUBLIC;
    const theirs = decode(TPM2B_PUBLIC, await readFile(join(dir, 'pub.tss')));
    expect(Buffer.from(encode(TPM2B_PUBLIC, theirs))).toEqual(Buffer.from(encode(TPM2B_PUBLIC, mine)));
    expect(toolName.toString('hex')).toBe(Buffer.from(objectName(mine)).toString('hex'));
    expect(toolName.toString('hex')).toBe(Buffer.from(objectName(theirs)).toString('hex'));
  }, 60_000);
});
