/**
 * tpm2-tools' file formats (src/client/files.ts) without a TPM: layouts
 * recomputed by hand from the tools' sources (lib/files.c, lib/pcr.c,
 * lib/tpm2_convert.c, tools/tpm2_makecredential.c; tpm2-tss esys_types.h and
 * Esys_ContextSave.c) and from files the tools wrote on this machine
 * (tpm-peers.md "tpm2-tools 5.4 file formats"), round trips of every format
 * over schema-generated values, plain signatures against node:crypto, and
 * fuzzing: every reader, fed random or mutated bytes, returns a value or
 * throws a ParseError — never anything untyped. test/client/interop.test.ts
 * runs the same formats against the tools themselves.
 */
import { createPrivateKey, generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  pcrReadings,
  pcrValuesFromReadings,
  plainSignature,
  publicKeyPem,
  readAttestFile,
  readContextFile,
  readCredentialFile,
  readNameFile,
  readPcrValuesFile,
  readPemPublicKey,
  readPrivateFile,
  readPublicFile,
  readSessionFile,
  readSignatureFile,
  signatureFromPlain,
  TPM2_TOOLS_MAGIC,
  writeAttestFile,
  writeContextFile,
  writeCredentialFile,
  writeNameFile,
  writePcrValuesFile,
  writePrivateFile,
  writePublicFile,
  writeSignatureFile,
  type EsysMetadata,
  type PcrValues,
} from '../../src/client/files.js';
import { TPM_ALG, TPM_RH } from '../../src/tpm/constants.js';
import { digestSize } from '../../src/tpm/crypto/hash.js';
import { EncodeError, ParseError, TrustrootError } from '../../src/tpm/errors.js';
import { objectName } from '../../src/tpm/names.js';
import { pcrSelection } from '../../src/tpm/pcr.js';
import { eccPointOf } from '../../src/tpm/secret.js';
import { eccSrkTemplate, rsaEkTemplate } from '../../src/tpm/templates.js';
import {
  TPM2B_NV_PUBLIC,
  TPM2B_PUBLIC,
  TPMS_ATTEST,
  TPMS_CONTEXT,
  TPMS_NV_PUBLIC,
  TPMT_PUBLIC,
  TPMT_SIGNATURE,
  type TPMS_PCR_SELECTION,
  type TPMT_PUBLIC as TPMT_PUBLIC_T,
} from '../../src/tpm/types/index.js';
import { encode } from '../../src/tpm/wire/codec.js';
import { arbitraryOf } from '../support/arbitrary.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const bytes = (h: string): Uint8Array => new Uint8Array(Buffer.from(h.replace(/\s+/g, ''), 'hex'));
const u16 = (n: number): string => n.toString(16).padStart(4, '0');

function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  return undefined;
}
function parseCode(f: () => unknown): string | undefined {
  const e = thrown(f);
  if (e === undefined) return undefined;
  expect(e).toBeInstanceOf(ParseError);
  return (e as ParseError).code;
}

// ---------------------------------------------------------------------------

describe('TPM2B_PUBLIC, TPM2B_PRIVATE and Name files', () => {
  it('a -u file is u16 size ‖ TPMT_PUBLIC; a -r file u16 size ‖ the private blob', () => {
    const ek = rsaEkTemplate();
    const body = encode(TPMT_PUBLIC, ek);
    const file = writePublicFile(ek);
    expect(hex(file)).toBe(u16(body.length) + hex(body));
    expect(hex(encode(TPMT_PUBLIC, readPublicFile(file)))).toBe(hex(body));
    // Header seen in a file tpm2_create -G ecc wrote (88 bytes): 0056 0023 000b 00060072.
    expect(hex(writePublicFile(eccSrkTemplate())).slice(4, 12)).toBe('0023000b');

    const priv = new Uint8Array(randomBytes(126));
    expect(hex(writePrivateFile(priv))).toBe('007e' + hex(priv));
    expect(hex(readPrivateFile(writePrivateFile(priv)))).toBe(hex(priv));
    expect(parseCode(() => readPublicFile(file.subarray(0, file.length - 1)))).toBe('parse.truncated');
    expect(parseCode(() => readPublicFile(Uint8Array.from([...file, 0])))).toBe('parse.trailing');
    expect(parseCode(() => readPrivateFile(bytes('0005 0102')))).toBe('parse.truncated');
  });

  it('round trips any public area', () => {
    fc.assert(
      fc.property(arbitraryOf(TPMT_PUBLIC), (pub) => {
        expect(hex(writePublicFile(readPublicFile(writePublicFile(pub))))).toBe(hex(writePublicFile(pub)));
      }),
      { numRuns: 200 },
    );
  });

  it('a Name file holds nameAlg ‖ digest (or a 4-byte handle), nothing else', () => {
    const name = objectName(eccSrkTemplate());
    expect(hex(readNameFile(name))).toBe(hex(name));
    expect(hex(writeNameFile(name))).toBe(hex(name));
    expect(hex(readNameFile(bytes('40000001')))).toBe('40000001');
    expect(parseCode(() => readNameFile(name.subarray(0, 20)))).toBe('parse.size');
    expect(parseCode(() => readNameFile(Uint8Array.from([...name, 0])))).toBe('parse.size');
    expect(parseCode(() => readNameFile(bytes('0001' + '00'.repeat(32))))).toBe('parse.value'); // 0x0001 is RSA, not a hash
    expect(parseCode(() => readNameFile(bytes('0b')))).toBe('parse.truncated');
    expect(thrown(() => writeNameFile(bytes('000b00')))).toBeInstanceOf(EncodeError);
  });
});

describe('attestation and signature files', () => {
  it('round trip any TPMS_ATTEST and TPMT_SIGNATURE', () => {
    fc.assert(
      fc.property(arbitraryOf(TPMS_ATTEST), arbitraryOf(TPMT_SIGNATURE), (attest, sig) => {
        const m = writeAttestFile(attest);
        expect(hex(m)).toBe(hex(encode(TPMS_ATTEST, attest)));
        expect(hex(writeAttestFile(readAttestFile(m)))).toBe(hex(m));
        const s = writeSignatureFile(sig);
        expect(hex(writeSignatureFile(readSignatureFile(s)))).toBe(hex(s));
      }),
      { numRuns: 200 },
    );
  });

  it('a -m file must be TPM-generated: another magic is refused', () => {
    const attest = fc.sample(arbitraryOf(TPMS_ATTEST), 1)[0]!;
    const m = writeAttestFile(attest);
    m[0] = 0x00;
    expect(parseCode(() => readAttestFile(m))).toBe('parse.constant');
  });

  it('plain ECDSA is the DER node:crypto and OpenSSL make; r and s keep their minimal length unless padded', () => {
    for (const [curve, size] of [['prime256v1', 32], ['secp384r1', 48], ['secp521r1', 66]] as const) {
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: curve });
      for (let i = 0; i < 8; i++) {
        const msg = randomBytes(40);
        const der = new Uint8Array(sign('sha256', msg, privateKey));
        const sig = signatureFromPlain(der, { sigAlg: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256 });
        expect(hex(plainSignature(sig))).toBe(hex(der));
        const padded = signatureFromPlain(der, { sigAlg: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256, size });
        if (padded.sigAlg !== TPM_ALG.ECDSA) throw new Error('unreachable');
        expect(padded.signature.signatureR).toHaveLength(size);
        const p1363 = Buffer.concat([padded.signature.signatureR, padded.signature.signatureS]);
        expect(verify('sha256', msg, { key: publicKey, dsaEncoding: 'ieee-p1363' }, p1363)).toBe(true);
        // And back: a TPM-style padded signature becomes node's DER again.
        expect(verify('sha256', msg, publicKey, plainSignature(padded))).toBe(true);
      }
    }
  });

  it('DER round trip for any r and s, including leading zeros and top bits set', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 66 }), fc.uint8Array({ minLength: 1, maxLength: 66 }), (r, s) => {
        const sig = { sigAlg: TPM_ALG.ECDSA, signature: { hash: TPM_ALG.SHA256, signatureR: r, signatureS: s } } as TPMT_SIGNATURE;
        const back = signatureFromPlain(plainSignature(sig), { sigAlg: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256, size: 66 });
        if (back.sigAlg !== TPM_ALG.ECDSA) throw new Error('unreachable');
        const pad = (b: Uint8Array): string => hex(b).padStart(132, '0');
        expect(hex(back.signature.signatureR)).toBe(pad(r));
        expect(hex(back.signature.signatureS)).toBe(pad(s));
      }),
      { numRuns: 300 },
    );
  });

  it('plain ECDSA: r and s up to 80 bytes (BN P-638, the largest curve), not 81', () => {
    const der = (rLength: number): Uint8Array => bytes('30' + (rLength + 5).toString(16).padStart(2, '0') + '02' + rLength.toString(16).padStart(2, '0') + '01'.repeat(rLength) + '020101');
    const sig = signatureFromPlain(der(80), { sigAlg: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256, size: 80 });
    if (sig.sigAlg !== TPM_ALG.ECDSA) throw new Error('unreachable');
    expect([sig.signature.signatureR.length, sig.signature.signatureS.length]).toEqual([80, 80]);
    expect(parseCode(() => signatureFromPlain(der(81), { sigAlg: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256 }))).toBe('parse.size');
    expect(parseCode(() => signatureFromPlain(der(80), { sigAlg: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256, size: 81 }))).toBe('parse.value');
  });

  it('refuses malformed DER with typed errors', () => {
    const ok = plainSignature({ sigAlg: TPM_ALG.ECDSA, signature: { hash: TPM_ALG.SHA256, signatureR: bytes('01'), signatureS: bytes('80') } } as TPMT_SIGNATURE);
    expect(hex(ok)).toBe('3007020101020200' + '80');
    const from = (h: string) => () => signatureFromPlain(bytes(h), { sigAlg: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256 });
    expect(parseCode(from('3106020101020101'))).toBe('parse.value'); // not a SEQUENCE
    expect(parseCode(from('3006020101020101' + '00'))).toBe('parse.trailing');
    expect(parseCode(from('30060201010201'))).toBe('parse.truncated');
    expect(parseCode(from('300602018102017f'))).toBe('parse.value'); // negative r
    expect(parseCode(from('30070202000102017f'))).toBe('parse.value'); // non-minimal r
    expect(parseCode(from('3005020002017f'))).toBe('parse.size'); // empty INTEGER
    expect(parseCode(from('30810602010102017f'))).toBe('parse.value'); // long form for a short length
    expect(parseCode(from('3008020101040301027f'))).toBe('parse.value'); // s is an OCTET STRING
    expect(parseCode(from(''))).toBe('parse.truncated');
    expect(parseCode(() => signatureFromPlain(bytes('30060201010201'), { sigAlg: TPM_ALG.ECDSA, hashAlg: 0x9999 }))).toBe('parse.value');
    expect(parseCode(() => signatureFromPlain(ok, { sigAlg: TPM_ALG.ECDAA, hashAlg: TPM_ALG.SHA256 }))).toBe('parse.selector');
    expect(parseCode(() => signatureFromPlain(ok, { sigAlg: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256, size: 0 }))).toBe('parse.value');
    // r of 2 bytes does not fit a 1-byte curve.
    expect(parseCode(() => signatureFromPlain(ok, { sigAlg: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256, size: 1 }))).toBe(undefined);
    expect(parseCode(() => signatureFromPlain(bytes('3007020201ff02017f'), { sigAlg: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256, size: 1 }))).toBe('parse.size');
  });

  it('plain RSA is the raw signature; plain HMAC the digest; NULL and ECDAA have no plain form', () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const msg = randomBytes(32);
    const raw = new Uint8Array(sign('sha256', msg, privateKey));
    const sig = signatureFromPlain(raw, { sigAlg: TPM_ALG.RSASSA, hashAlg: TPM_ALG.SHA256 });
    expect(hex(writeSignatureFile(sig))).toBe('0014' + '000b' + '0100' + hex(raw));
    expect(verify('sha256', msg, publicKey, plainSignature(readSignatureFile(writeSignatureFile(sig))))).toBe(true);
    expect(parseCode(() => signatureFromPlain(new Uint8Array(0), { sigAlg: TPM_ALG.RSAPSS, hashAlg: TPM_ALG.SHA256 }))).toBe('parse.size');

    const mac = new Uint8Array(randomBytes(32));
    const h = signatureFromPlain(mac, { sigAlg: TPM_ALG.HMAC, hashAlg: TPM_ALG.SHA256 });
    expect(hex(writeSignatureFile(h))).toBe('0005' + '000b' + hex(mac));
    expect(hex(plainSignature(h))).toBe(hex(mac));
    expect(parseCode(() => signatureFromPlain(mac.subarray(1), { sigAlg: TPM_ALG.HMAC, hashAlg: TPM_ALG.SHA256 }))).toBe('parse.size');

    expect(thrown(() => plainSignature({ sigAlg: TPM_ALG.NULL, signature: null } as TPMT_SIGNATURE))).toBeInstanceOf(EncodeError);
    const ecdaa = { sigAlg: TPM_ALG.ECDAA, signature: { hash: TPM_ALG.SHA256, signatureR: mac, signatureS: mac } } as TPMT_SIGNATURE;
    expect(thrown(() => plainSignature(ecdaa))).toBeInstanceOf(EncodeError);
  });
});

describe('PEM public keys', () => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const p256 = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });

  function rsaArea(): TPMT_PUBLIC_T {
    const t = rsaEkTemplate();
    const n = new Uint8Array(Buffer.from(String(rsa.publicKey.export({ format: 'jwk' }).n), 'base64url'));
    return { ...t, unique: n } as TPMT_PUBLIC_T;
  }
  function eccArea(): TPMT_PUBLIC_T {
    return { ...eccSrkTemplate(), unique: eccPointOf(p256.publicKey).point } as TPMT_PUBLIC_T;
  }

  it('publicKeyPem is the SubjectPublicKeyInfo node:crypto (and OpenSSL) writes for the same key', () => {
    expect(publicKeyPem(rsaArea())).toBe(String(rsa.publicKey.export({ type: 'spki', format: 'pem' })));
    expect(publicKeyPem(eccArea())).toBe(String(p256.publicKey.export({ type: 'spki', format: 'pem' })));
    const back = readPemPublicKey(new TextEncoder().encode(publicKeyPem(eccArea())));
    expect(back.equals(p256.publicKey)).toBe(true);
  });

  it('readPemPublicKey refuses private keys, other labels and damaged PEMs', () => {
    const privatePem = String(p256.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    expect(parseCode(() => readPemPublicKey(privatePem))).toBe('parse.value');
    expect(createPrivateKey(privatePem).asymmetricKeyType).toBe('ec'); // the refused input was a usable key
    expect(parseCode(() => readPemPublicKey('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'))).toBe('parse.value');
    expect(parseCode(() => readPemPublicKey('no pem here'))).toBe('parse.value');
    const pem = publicKeyPem(rsaArea());
    expect(parseCode(() => readPemPublicKey(pem.replace(/[A-Za-z0-9+/]{20}\n/, '\n')))).toBe('parse.value');
    expect(parseCode(() => readPemPublicKey(42 as unknown as string))).toBe('parse.value');
  });
});

describe('PCR values file (tpm2_quote -o / tpm2_checkquote -f)', () => {
  function sampleValues(selections: TPMS_PCR_SELECTION[]): PcrValues {
    const digests: Uint8Array[] = [];
    for (const s of selections) for (let byte = 0; byte < s.pcrSelect.length; byte++) for (let bit = 0; bit < 8; bit++) if (s.pcrSelect[byte]! & (1 << bit)) digests.push(new Uint8Array(randomBytes(digestSize(s.hash))));
    return { selections, digests };
  }

  it('lays out 4 sha256 PCRs in 668 little-endian bytes, as tpm2_quote does', () => {
    const values = sampleValues([pcrSelection(TPM_ALG.SHA256, [0, 1, 2, 3])]);
    const f = writePcrValuesFile(values);
    expect(f).toHaveLength(668);
    // TPML_PCR_SELECTION: count 1; slot 0: hash 0x000b LE, sizeofSelect 3, pcrSelect 0f 00 00 00, pad.
    expect(hex(f.subarray(0, 12))).toBe('01000000' + '0b00' + '03' + '0f000000' + '00');
    expect(f.subarray(12, 132).every((b) => b === 0)).toBe(true);
    // One TPML_DIGEST: count 4, then (u16 LE size ‖ 64-byte buffer) × 8.
    expect(hex(f.subarray(132, 140))).toBe('01000000' + '04000000');
    for (let k = 0; k < 4; k++) {
      const at = 140 + k * 66;
      expect(hex(f.subarray(at, at + 2))).toBe('2000');
      expect(hex(f.subarray(at + 2, at + 34))).toBe(hex(values.digests[k]!));
      expect(f.subarray(at + 34, at + 66).every((b) => b === 0)).toBe(true);
    }
    const back = readPcrValuesFile(f);
    expect(back.digests.map(hex)).toEqual(values.digests.map(hex));
    expect(back.selections.map((s) => [s.hash, hex(s.pcrSelect)])).toEqual([[TPM_ALG.SHA256, '0f0000']]);
  });

  it('splits digests eight per TPML_DIGEST and reads them back in selection order across banks', () => {
    const sels = [pcrSelection(TPM_ALG.SHA256, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 16]), pcrSelection(TPM_ALG.SHA1, [16]), pcrSelection(TPM_ALG.SHA384, [23], 4)];
    const values = sampleValues(sels);
    const f = writePcrValuesFile(values);
    expect(f).toHaveLength(136 + 2 * 532);
    expect(hex(f.subarray(132, 140))).toBe('02000000' + '08000000');
    expect(hex(f.subarray(136 + 532, 140 + 532))).toBe('05000000');
    const back = readPcrValuesFile(f);
    expect(back.digests.map(hex)).toEqual(values.digests.map(hex));
    const map = pcrReadings(back);
    expect(hex(map.get(TPM_ALG.SHA1)!.get(16)!)).toBe(hex(values.digests[11]!));
    expect(hex(map.get(TPM_ALG.SHA384)!.get(23)!)).toBe(hex(values.digests[12]!));
    expect(pcrValuesFromReadings(sels, map).digests.map(hex)).toEqual(values.digests.map(hex));
  });

  it('reads a file whose digests are split differently (tpm2_checkquote walks across lists)', () => {
    const values = sampleValues([pcrSelection(TPM_ALG.SHA256, [0, 1, 2])]);
    const f = writePcrValuesFile(values);
    // Rebuild as two lists: [d0] and [d1, d2].
    const g = new Uint8Array(136 + 2 * 532);
    g.set(f.subarray(0, 132));
    const v = new DataView(g.buffer);
    v.setUint32(132, 2, true);
    v.setUint32(136, 1, true);
    g.set(f.subarray(140, 140 + 66), 140);
    v.setUint32(136 + 532, 2, true);
    g.set(f.subarray(140 + 66, 140 + 3 * 66), 140 + 532);
    expect(readPcrValuesFile(g).digests.map(hex)).toEqual(values.digests.map(hex));
  });

  it('round trips random selections', () => {
    const sel = fc
      .tuple(fc.constantFrom(TPM_ALG.SHA1, TPM_ALG.SHA256, TPM_ALG.SHA384, TPM_ALG.SHA512), fc.integer({ min: 0, max: 4 }))
      .chain(([hash, size]) =>
        size === 0 ? fc.constant(pcrSelection(hash, [], 0)) : fc.uniqueArray(fc.integer({ min: 0, max: size * 8 - 1 }), { maxLength: size * 8 }).map((idx) => pcrSelection(hash, idx, size)),
      );
    fc.assert(
      fc.property(fc.array(sel, { maxLength: 16 }).filter((s) => s.reduce((n, x) => n + x.pcrSelect.reduce((m, b) => m + popcount(b), 0), 0) <= 256), (selections) => {
        const values = sampleValues(selections);
        const back = readPcrValuesFile(writePcrValuesFile(values));
        expect(back.digests.map(hex)).toEqual(values.digests.map(hex));
        expect(back.selections.map((s) => hex(s.pcrSelect))).toEqual(selections.map((s) => hex(s.pcrSelect)));
      }),
      { numRuns: 100 },
    );
  });

  it('refuses counts beyond the C arrays, digests that do not fit their bank, and wrong lengths', () => {
    const good = writePcrValuesFile(sampleValues([pcrSelection(TPM_ALG.SHA256, [0, 1])]));
    const edit = (fn: (v: DataView, b: Uint8Array) => void): Uint8Array => {
      const b = good.slice();
      fn(new DataView(b.buffer), b);
      return b;
    };
    expect(parseCode(() => readPcrValuesFile(edit((v) => v.setUint32(0, 17, true))))).toBe('parse.count');
    expect(parseCode(() => readPcrValuesFile(edit((v) => v.setUint16(4, 0x0001, true))))).toBe('parse.value'); // RSA is not a bank
    expect(parseCode(() => readPcrValuesFile(edit((_, b) => (b[6] = 5))))).toBe('parse.size');
    expect(parseCode(() => readPcrValuesFile(edit((v) => v.setUint32(132, 33, true))))).toBe('parse.count');
    expect(parseCode(() => readPcrValuesFile(edit((v) => v.setUint32(132, 2, true))))).toBe('parse.truncated');
    expect(parseCode(() => readPcrValuesFile(edit((v) => v.setUint32(136, 9, true))))).toBe('parse.count');
    expect(parseCode(() => readPcrValuesFile(edit((v) => v.setUint32(136, 1, true))))).toBe('parse.count'); // one digest for two PCRs
    expect(parseCode(() => readPcrValuesFile(edit((v) => v.setUint32(136, 3, true))))).toBe('parse.count'); // three for two
    expect(parseCode(() => readPcrValuesFile(edit((v) => v.setUint16(140, 20, true))))).toBe('parse.size'); // a SHA-1 size in the SHA-256 bank
    expect(parseCode(() => readPcrValuesFile(edit((v) => v.setUint16(140, 65, true))))).toBe('parse.size');
    expect(parseCode(() => readPcrValuesFile(good.subarray(0, 100)))).toBe('parse.truncated');
    expect(parseCode(() => readPcrValuesFile(Uint8Array.from([...good, 0])))).toBe('parse.trailing');

    expect(thrown(() => writePcrValuesFile({ selections: [pcrSelection(TPM_ALG.SHA256, [0])], digests: [new Uint8Array(20)] }))).toBeInstanceOf(EncodeError);
    expect(thrown(() => writePcrValuesFile({ selections: [pcrSelection(TPM_ALG.SHA256, [0])], digests: [] }))).toBeInstanceOf(EncodeError);
    expect(thrown(() => writePcrValuesFile({ selections: [], digests: [new Uint8Array(32)] }))).toBeInstanceOf(EncodeError);
    expect(thrown(() => pcrValuesFromReadings([pcrSelection(TPM_ALG.SHA256, [3])], new Map()))).toBeInstanceOf(EncodeError);
  });
});

function popcount(b: number): number {
  let n = 0;
  for (let x = b; x; x &= x - 1) n++;
  return n;
}

describe('credential files (tpm2_makecredential -o)', () => {
  it('is BADCC0DE, version 1, TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET', () => {
    const credentialBlob = new Uint8Array(randomBytes(68));
    const secret = new Uint8Array(randomBytes(256));
    const f = writeCredentialFile({ credentialBlob, secret });
    expect(hex(f)).toBe('badcc0de' + '00000001' + '0044' + hex(credentialBlob) + '0100' + hex(secret));
    // 336 bytes, as tpm2_makecredential wrote for an RSA-2048 EK and a SHA-256 AK Name.
    expect(f).toHaveLength(336);
    const back = readCredentialFile(f);
    expect(hex(back.credentialBlob)).toBe(hex(credentialBlob));
    expect(hex(back.secret)).toBe(hex(secret));
  });

  it('refuses another magic, another version, truncation, trailing bytes and oversize blobs', () => {
    const f = writeCredentialFile({ credentialBlob: new Uint8Array(68), secret: new Uint8Array(256) });
    const edit = (at: number, v: number): Uint8Array => {
      const b = f.slice();
      b[at] = v;
      return b;
    };
    const e = thrown(() => readCredentialFile(edit(0, 0xbb))) as ParseError;
    expect(e.code).toBe('parse.constant');
    expect(e.path).toBe('CredentialFile.magic');
    expect(parseCode(() => readCredentialFile(edit(7, 2)))).toBe('parse.value');
    expect(parseCode(() => readCredentialFile(f.subarray(0, f.length - 1)))).toBe('parse.truncated');
    expect(parseCode(() => readCredentialFile(Uint8Array.from([...f, 0])))).toBe('parse.trailing');
    // TPM2B_ID_OBJECT holds at most sizeof(TPMS_ID_OBJECT) = 132 bytes.
    expect(parseCode(() => readCredentialFile(bytes('badcc0de 00000001 0085' + '00'.repeat(0x85) + '0000')))).toBe('parse.size');
  });
});

describe('context files (-c) and session files (-S)', () => {
  const pub = eccSrkTemplate();
  const tpmBlob = new Uint8Array([0x00, 0x20, ...randomBytes(32), 0x01, 0x00, ...randomBytes(256)]);
  const context = { sequence: 0x1234n, savedHandle: 0x80000000, hierarchy: TPM_RH.OWNER, contextBlob: tpmBlob };
  const meta: EsysMetadata = { handle: 0x800000ff, name: objectName(pub), resource: { type: 'key', public: pub } };

  it('is the tools header, hierarchy, savedHandle, sequence, then ESAPI\'s IESYS_CONTEXT_DATA in the blob', () => {
    const f = writeContextFile({ context, metadata: meta });
    const pubFile = encode(TPM2B_PUBLIC, pub);
    const inner =
      '00000000' + u16(tpmBlob.length) + hex(tpmBlob) + // reserved, TPM2B_CONTEXT_DATA
      '0000' + '800000ff' + u16(meta.name.length) + hex(meta.name) + // IESYS_METADATA.size, handle, TPM2B_NAME
      '00000001' + hex(pubFile); // IESYSC_KEY_RSRC, TPM2B_PUBLIC
    expect(hex(f)).toBe('badcc0de' + '00000001' + '40000001' + '80000000' + '0000000000001234' + u16(inner.length / 2) + inner);
    const back = readContextFile(f);
    expect(back.context.sequence).toBe(0x1234n);
    expect(back.context.savedHandle).toBe(0x80000000);
    expect(back.context.hierarchy).toBe(TPM_RH.OWNER);
    expect(hex(back.context.contextBlob)).toBe(hex(tpmBlob));
    expect(back.metadata?.handle).toBe(0x800000ff);
    expect(hex(back.metadata!.name)).toBe(hex(meta.name));
    expect(back.metadata?.resource.type === 'key' && hex(encode(TPMT_PUBLIC, back.metadata.resource.public))).toBe(hex(encode(TPMT_PUBLIC, pub)));
  });

  it('reads a bare TPM blob (no ESAPI metadata) and every resource type', () => {
    const bare = bytes('badcc0de 00000001 40000007 02000003 0000000000000009' + u16(tpmBlob.length) + hex(tpmBlob));
    const b = readContextFile(bare);
    expect(b.metadata).toBeUndefined();
    expect(b.context.hierarchy).toBe(TPM_RH.NULL);
    expect(b.context.savedHandle).toBe(0x02000003);
    const nv = fc.sample(arbitraryOf(TPMS_NV_PUBLIC), 1)[0]!;
    for (const resource of [{ type: 'nv', public: nv }, { type: 'session', data: new Uint8Array(randomBytes(90)) }, { type: 'none' }] as const) {
      const f = writeContextFile({ context, metadata: { handle: 1, name: bytes('40000001'), resource } });
      const back = readContextFile(f);
      expect(back.metadata?.resource.type).toBe(resource.type);
      expect(hex(writeContextFile({ context: back.context, metadata: back.metadata! }))).toBe(hex(f));
    }
    expect(hex(writeContextFile({ context, metadata: { handle: 1, name: bytes('40000001'), resource: { type: 'nv', public: nv } } })).includes(hex(encode(TPM2B_NV_PUBLIC, nv)))).toBe(true);
  });

  it('round trips generated contexts and key metadata', () => {
    fc.assert(
      fc.property(arbitraryOf(TPMS_CONTEXT, { maxBytes: 300 }), arbitraryOf(TPMT_PUBLIC), fc.integer({ min: 0, max: 0xffffffff }), (ctx, p, handle) => {
        fc.pre(ctx.contextBlob.length + 600 < 5188);
        const f = writeContextFile({ context: ctx, metadata: { handle, name: objectName(p), resource: { type: 'key', public: p } } });
        const back = readContextFile(f);
        expect(back.context.sequence).toBe(ctx.sequence);
        expect(hex(back.context.contextBlob)).toBe(hex(ctx.contextBlob));
        expect(hex(writeContextFile({ context: back.context, metadata: back.metadata! }))).toBe(hex(f));
      }),
      { numRuns: 100 },
    );
  });

  it('refuses bad headers, handles and metadata with typed errors naming the place', () => {
    const f = writeContextFile({ context, metadata: meta });
    const edit = (at: number, v: number): Uint8Array => {
      const b = f.slice();
      b[at] = v;
      return b;
    };
    expect(parseCode(() => readContextFile(edit(7, 2)))).toBe('parse.value'); // a session file's version
    expect(parseCode(() => readContextFile(edit(8, 0x41)))).toBe('parse.handle'); // hierarchy 0x41000001
    expect(parseCode(() => readContextFile(edit(12, 0x81)))).toBe('parse.handle'); // savedHandle 0x81000000
    // rsrcType 7: at 26 (outer header) + 4 + 2 + blob + 2 + 4 + 2 + name.
    const typeAt = 26 + 4 + 2 + tpmBlob.length + 2 + 4 + 2 + meta.name.length + 3;
    const e = thrown(() => readContextFile(edit(typeAt, 7))) as ParseError;
    expect(e.code).toBe('parse.selector');
    expect(e.path).toBe('ContextFile.contextBlob.IESYS_CONTEXT_DATA');
    expect(e.offset).toBe(typeAt - 3);
    expect(parseCode(() => readContextFile(f.subarray(0, f.length - 1)))).toBe('parse.truncated');
    // A byte appended inside the blob (its size grown to match) is left over after the metadata.
    const grown = Uint8Array.from([...f, 0]);
    new DataView(grown.buffer).setUint16(24, f.length - 26 + 1);
    expect(parseCode(() => readContextFile(grown))).toBe('parse.trailing');
    expect(thrown(() => writeContextFile({ context: { ...context, sequence: -1n }, metadata: meta }))).toBeInstanceOf(EncodeError);
    expect(thrown(() => writeContextFile({ context, metadata: { ...meta, resource: { type: 'other' } as never } }))).toBeInstanceOf(EncodeError);
  });

  it('a session file is header v2, TPM_SE, authHash, then a context file', () => {
    const saved = { sequence: 0x19n, savedHandle: 0x03000000, hierarchy: TPM_RH.NULL, contextBlob: tpmBlob };
    const ctx = writeContextFile({ context: saved, metadata: { handle: 0x03000000, name: bytes('03000000'), resource: { type: 'session', data: new Uint8Array(randomBytes(200)) } } });
    // Header seen in a tpm2_startauthsession --policy-session file: badcc0de 00000002 01 000b badcc0de 00000001 40000007 03000000.
    const f = bytes('badcc0de 00000002 01 000b' + hex(ctx));
    const s = readSessionFile(f);
    expect(s.sessionType).toBe(1);
    expect(s.authHash).toBe(TPM_ALG.SHA256);
    expect(s.context.context.savedHandle).toBe(0x03000000);
    expect(s.context.metadata?.resource.type).toBe('session');
    expect(parseCode(() => readSessionFile(bytes('badcc0de 00000002 02 000b' + hex(ctx))))).toBe('parse.value');
    expect(parseCode(() => readSessionFile(bytes('badcc0de 00000002 01 0001' + hex(ctx))))).toBe('parse.value');
    expect(parseCode(() => readSessionFile(ctx))).toBe('parse.value'); // a context file is version 1
  });
});

// ---------------------------------------------------------------------------

describe('fuzz: every reader returns a value or throws a ParseError', () => {
  const readers: [string, (b: Uint8Array) => unknown, () => Uint8Array][] = [
    ['readPublicFile', readPublicFile, () => writePublicFile(fc.sample(arbitraryOf(TPMT_PUBLIC), 1)[0]!)],
    ['readPrivateFile', readPrivateFile, () => writePrivateFile(new Uint8Array(randomBytes(100)))],
    ['readNameFile', readNameFile, () => objectName(eccSrkTemplate())],
    ['readAttestFile', readAttestFile, () => writeAttestFile(fc.sample(arbitraryOf(TPMS_ATTEST), 1)[0]!)],
    ['readSignatureFile', readSignatureFile, () => writeSignatureFile(fc.sample(arbitraryOf(TPMT_SIGNATURE), 1)[0]!)],
    ['readPcrValuesFile', readPcrValuesFile, () => writePcrValuesFile({ selections: [pcrSelection(TPM_ALG.SHA256, [0, 1, 2]), pcrSelection(TPM_ALG.SHA1, [7])], digests: [new Uint8Array(32), new Uint8Array(32), new Uint8Array(32), new Uint8Array(20)] })],
    ['readCredentialFile', readCredentialFile, () => writeCredentialFile({ credentialBlob: new Uint8Array(randomBytes(68)), secret: new Uint8Array(randomBytes(256)) })],
    [
      'readContextFile',
      readContextFile,
      () => writeContextFile({ context: { sequence: 5n, savedHandle: 0x80000001, hierarchy: TPM_RH.ENDORSEMENT, contextBlob: new Uint8Array(randomBytes(120)) }, metadata: { handle: 0x80000001, name: objectName(rsaEkTemplate()), resource: { type: 'key', public: rsaEkTemplate() } } }),
    ],
    [
      'readSessionFile',
      readSessionFile,
      () =>
        bytes(
          'badcc0de0000000200000b' +
            hex(writeContextFile({ context: { sequence: 5n, savedHandle: 0x02000001, hierarchy: TPM_RH.NULL, contextBlob: new Uint8Array(randomBytes(80)) }, metadata: { handle: 0x02000001, name: bytes('02000001'), resource: { type: 'session', data: new Uint8Array(randomBytes(60)) } } })),
        ),
    ],
    ['signatureFromPlain(ECDSA)', (b) => signatureFromPlain(b, { sigAlg: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256, size: 32 }), () => plainSignature({ sigAlg: TPM_ALG.ECDSA, signature: { hash: TPM_ALG.SHA256, signatureR: new Uint8Array(randomBytes(32)), signatureS: new Uint8Array(randomBytes(32)) } } as TPMT_SIGNATURE)],
    ['readPemPublicKey', readPemPublicKey, () => new TextEncoder().encode(publicKeyPem({ ...eccSrkTemplate(), unique: eccPointOf(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey).point } as TPMT_PUBLIC_T))],
  ];

  /** Random edits of a valid file: flipped bytes, cuts, insertions, a magic or size field set to extremes. */
  const mutation = (valid: Uint8Array): fc.Arbitrary<Uint8Array> =>
    fc.oneof(
      fc.uint8Array({ maxLength: 700 }),
      fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 6 }).map((flips) => {
        const b = valid.slice();
        for (const [at, x] of flips) b[at]! ^= x;
        return b;
      }),
      fc.nat(valid.length).map((n) => valid.slice(0, n)),
      fc.tuple(fc.nat(valid.length), fc.uint8Array({ minLength: 1, maxLength: 8 })).map(([at, ins]) => Uint8Array.from([...valid.subarray(0, at), ...ins, ...valid.subarray(at)])),
      fc.tuple(fc.nat(Math.max(0, valid.length - 2)), fc.constantFrom(0x00, 0xff, 0x7f, 0x80)).map(([at, v]) => {
        const b = valid.slice();
        b[at] = v;
        b[at + 1] = v;
        return b;
      }),
    );

  for (const [name, read, valid] of readers) {
    it(name, () => {
      const seed = valid();
      expect(() => read(seed)).not.toThrow();
      fc.assert(
        fc.property(mutation(seed), (input) => {
          try {
            read(input);
          } catch (e) {
            if (!(e instanceof ParseError)) throw new Error(`${name} threw ${e instanceof TrustrootError ? e.code : String(e)}`);
          }
        }),
        { numRuns: 400 },
      );
      // Not bytes at all.
      expect(thrown(() => read(null as unknown as Uint8Array))).toBeInstanceOf(ParseError);
    });
  }

  it('magic constant is tpm2-tools\' 0xBADCC0DE', () => {
    expect(TPM2_TOOLS_MAGIC).toBe(0xbadcc0de);
  });
});
