/**
 * Derived objects in the simulator (Part 1 §27.4, Part 3 §12.9 CreateLoaded
 * under a derivation parent). The derivation parent is made with a known key
 * (a keyedHash whose data the caller gives), so the derived keys can be
 * computed here independently with node:crypto (the KDFa stream of
 * SP 800-108 and FIPS 186-4 §B.4.1 for the ECC scalar) and compared byte for
 * byte with swtpm's, which derives the same keys; refusals answer swtpm's codes.
 */
import { createECDH, createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createLoaded, flush, sign, verifyWithNode } from '../../src/client/index.js';
import { Create, CreateLoaded, FlushContext, Load } from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_ECC, TPM_RH } from '../../src/tpm/constants.js';
import { kdfa, kdfaBlock } from '../../src/tpm/crypto/kdf.js';
import { TPM_RC, TpmError } from '../../src/tpm/rc.js';
import { runCommand } from '../../src/tpm/run.js';
import type { Transport } from '../../src/tpm/transport/index.js';
import { TPMA_OBJECT, TPMS_DERIVE, templateFromPublic, type TPMT_PUBLIC, type TPMT_SIGNATURE } from '../../src/tpm/types/index.js';
import { encode } from '../../src/tpm/wire/codec.js';
import { DerivationKdf, MAX_DERIVATION_BITS, deriveObject } from '../../src/simulator/keygen.js';
import { describeWithSwtpm } from '../support/swtpm.js';
import { startedEngine, swtpmAndSimulator } from '../support/fixture.js';

const SHA256 = TPM_ALG.SHA256;
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const EMPTY = new Uint8Array(0);

/** The derivation parent's keyedHash key: every derived key below is a function of it, the label and the context. */
const PARENT_KEY = Uint8Array.from({ length: 32 }, (_, i) => 0xa0 ^ i);

type AttrInit = Parameters<typeof TPMA_OBJECT.of>[0];
const attrs = (a: AttrInit) => TPMA_OBJECT.of({ userWithAuth: true, noDA: true, ...a });

/** A derivation parent (restricted decrypt keyedHash, XOR with KDF1_SP800_108) whose key the caller supplies. */
function parentTemplate(a: AttrInit = {}): TPMT_PUBLIC {
  return {
    type: TPM_ALG.KEYEDHASH,
    nameAlg: SHA256,
    // Caller-supplied data in a restricted symmetric key requires fixedTPM and fixedParent CLEAR (CreateChecks).
    objectAttributes: attrs({ restricted: true, decrypt: true, ...a }),
    authPolicy: EMPTY,
    parameters: { scheme: { scheme: TPM_ALG.XOR, details: { hashAlg: SHA256, kdf: TPM_ALG.KDF1_SP800_108 } } },
    unique: EMPTY,
  } as TPMT_PUBLIC;
}

function eccTemplate(curveID: number = TPM_ECC.NIST_P256, a: AttrInit = {}): TPMT_PUBLIC {
  return {
    type: TPM_ALG.ECC,
    nameAlg: SHA256,
    objectAttributes: attrs({ sign: true, fixedParent: true, ...a }),
    authPolicy: EMPTY,
    parameters: {
      symmetric: { algorithm: TPM_ALG.NULL },
      scheme: { scheme: TPM_ALG.ECDSA, details: { hashAlg: SHA256 } },
      curveID,
      kdf: { scheme: TPM_ALG.NULL },
    },
    unique: { x: EMPTY, y: EMPTY },
  } as TPMT_PUBLIC;
}

const HMAC_TEMPLATE = {
  type: TPM_ALG.KEYEDHASH,
  nameAlg: SHA256,
  objectAttributes: attrs({ sign: true, fixedParent: true }),
  authPolicy: EMPTY,
  parameters: { scheme: { scheme: TPM_ALG.HMAC, details: { hashAlg: SHA256 } } },
  unique: EMPTY,
} as TPMT_PUBLIC;

const AES_TEMPLATE = {
  type: TPM_ALG.SYMCIPHER,
  nameAlg: SHA256,
  objectAttributes: attrs({ sign: true, decrypt: true, fixedParent: true }),
  authPolicy: EMPTY,
  parameters: { sym: { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB } },
  unique: EMPTY,
} as TPMT_PUBLIC;

const RSA_TEMPLATE = {
  type: TPM_ALG.RSA,
  nameAlg: SHA256,
  objectAttributes: attrs({ sign: true, fixedParent: true }),
  authPolicy: EMPTY,
  parameters: { symmetric: { algorithm: TPM_ALG.NULL }, scheme: { scheme: TPM_ALG.NULL }, keyBits: 2048, exponent: 0 },
  unique: EMPTY,
} as TPMT_PUBLIC;

/** A CreateLoaded template under a derivation parent: the unique field holds the TPMS_DERIVE. */
function derivation(t: TPMT_PUBLIC, label: Uint8Array, context: Uint8Array): Uint8Array {
  return templateFromPublic({ ...t, unique: { label, context } } as never, { derivation: true });
}

// ---------------------------------------------------------------------------
// The derivation, computed here with node:crypto only

/** K(1) ‖ K(2) ‖ …: HMAC_SHA256(key, [i]₃₂ ‖ label ‖ 0x00 (unless label ends in 0x00) ‖ context ‖ [8192]₃₂). */
function stream(label: Uint8Array, context: Uint8Array, bytes: number): Uint8Array {
  const out: Buffer[] = [];
  const u32 = (n: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  const nul = label.length === 0 || label[label.length - 1] !== 0 ? Buffer.of(0) : Buffer.alloc(0);
  for (let i = 1; out.length * 32 < bytes; i++) {
    out.push(createHmac('sha256', PARENT_KEY).update(u32(i)).update(label).update(nul).update(context).update(u32(8192)).digest());
  }
  return new Uint8Array(Buffer.concat(out).subarray(0, bytes));
}

const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

/** FIPS 186-4 §B.4.1 from the stream's first 40 bytes: d = (c mod (n − 1)) + 1, and its public point. */
function expectedP256(label: Uint8Array, context: Uint8Array): { x: string; y: string } {
  const c = BigInt(`0x${hex(stream(label, context, 40))}`);
  const d = (c % (P256_N - 1n)) + 1n;
  const ecdh = createECDH('prime256v1');
  ecdh.setPrivateKey(Buffer.from(d.toString(16).padStart(64, '0'), 'hex'));
  const p = ecdh.getPublicKey();
  return { x: p.subarray(1, 33).toString('hex'), y: p.subarray(33).toString('hex') };
}

// ---------------------------------------------------------------------------


async function createParent(t: Transport, a: AttrInit = {}): Promise<number> {
  const r = await runCommand(t, CreateLoaded, { parentHandle: TPM_RH.OWNER }, { inSensitive: { userAuth: EMPTY, data: PARENT_KEY }, inPublic: templateFromPublic(parentTemplate(a)) });
  return r.handles.objectHandle;
}

/** Every derivation and refusal of the comparison; outcomes by name (public areas as hex, or the response code). */
async function scenario(t: Transport): Promise<Record<string, unknown>> {
  const log: Record<string, unknown> = {};
  const parent = await createParent(t);
  const derive = async (what: string, inPublic: Uint8Array, data: Uint8Array = EMPTY, userAuth: Uint8Array = EMPTY): Promise<void> => {
    try {
      const r = await runCommand(t, CreateLoaded, { parentHandle: parent }, { inSensitive: { userAuth, data }, inPublic });
      await runCommand(t, FlushContext, {}, { flushHandle: r.handles.objectHandle });
      log[what] = { outPrivate: hex(r.params.outPrivate), unique: r.params.outPublic.unique, name: hex(r.params.name) };
    } catch (e) {
      if (!(e instanceof TpmError)) throw e;
      log[what] = `0x${e.rc.toString(16)}`;
    }
  };
  const label = enc('label');
  const sensitive = (l: Uint8Array, c: Uint8Array): Uint8Array => encode(TPMS_DERIVE, { label: l, context: c });
  await derive('p256 device-1', derivation(eccTemplate(), label, enc('device-1')));
  await derive('p256 device-1 again', derivation(eccTemplate(), label, enc('device-1')));
  await derive('p256 device-2', derivation(eccTemplate(), label, enc('device-2')));
  await derive('p256 from inSensitive', derivation(eccTemplate(), EMPTY, EMPTY), sensitive(label, enc('device-1')));
  await derive('p256 template label wins', derivation(eccTemplate(), label, EMPTY), sensitive(enc('other'), enc('device-1')));
  await derive('p256 label ending in NUL', derivation(eccTemplate(), enc('label\0'), enc('device-1')));
  await derive('p256 empty label and context', derivation(eccTemplate(), EMPTY, EMPTY));
  await derive('p384', derivation(eccTemplate(TPM_ECC.NIST_P384), label, enc('device-1')));
  await derive('hmac', derivation(HMAC_TEMPLATE, label, enc('device-1')));
  await derive('aes-128', derivation(AES_TEMPLATE, label, enc('device-1')));
  // Refusals.
  await derive('rsa', derivation(RSA_TEMPLATE, label, enc('device-1')));
  await derive('sensitiveDataOrigin', derivation(eccTemplate(TPM_ECC.NIST_P256, { sensitiveDataOrigin: true }), label, enc('x')));
  await derive('fixedTPM under a parent that is not', derivation(eccTemplate(TPM_ECC.NIST_P256, { fixedTPM: true, fixedParent: true }), label, enc('x')));
  // Part 1 §27.4: a derived object is fixedParent, with its parent's fixedTPM and (parent not fixedTPM) encryptedDuplication.
  await derive('fixedParent clear', derivation(eccTemplate(TPM_ECC.NIST_P256, { fixedParent: false }), label, enc('x')));
  await derive('encryptedDuplication unlike the parent', derivation(eccTemplate(TPM_ECC.NIST_P256, { encryptedDuplication: true }), label, enc('x')));
  await derive('userAuth longer than the nameAlg', derivation(eccTemplate(), label, enc('x')), EMPTY, new Uint8Array(33).fill(1));
  await derive('label in inSensitive too long', derivation(eccTemplate(), EMPTY, EMPTY), Uint8Array.of(0, 33, ...new Uint8Array(33)));
  await derive('inSensitive truncated', derivation(eccTemplate(), EMPTY, EMPTY), Uint8Array.of(0, 5, 1));
  await derive('template truncated', derivation(eccTemplate(), label, enc('x')).subarray(0, 26));
  const code = async (what: string, f: () => Promise<unknown>): Promise<void> => {
    try {
      await f();
      log[what] = 0;
    } catch (e) {
      if (!(e instanceof TpmError)) throw e;
      log[what] = `0x${e.rc.toString(16)}`;
    }
  };
  // A derivation parent is no storage parent (Part 1 §27.4): ordinary Create and Load under it are refused.
  await code('Create under a derivation parent', () =>
    runCommand(t, Create, { parentHandle: parent }, { inSensitive: { userAuth: EMPTY, data: EMPTY }, inPublic: eccTemplate(TPM_ECC.NIST_P256, { sensitiveDataOrigin: true }), outsideInfo: EMPTY, creationPCR: [] }),
  );
  await code('Load under a derivation parent', () => runCommand(t, Load, { parentHandle: parent }, { inPrivate: new Uint8Array(40), inPublic: eccTemplate() }));
  await runCommand(t, FlushContext, {}, { flushHandle: parent });
  // A caller-supplied key in a restricted symmetric object may not claim fixedTPM or fixedParent (CreateChecks).
  await code('fixedTPM parent from caller data', () => createParent(t, { fixedTPM: true, fixedParent: true }));
  await code('fixedParent parent from caller data', () => createParent(t, { fixedParent: true }));
  return log;
}

describe('kdfaBlock (core, Part 1 KDFa)', () => {
  it('gives the blocks of kdfa for a label without NUL, and adds no second NUL to a label that ends in one', () => {
    const key = enc('key'),
      u = enc('u'),
      v = enc('v');
    const whole = kdfa(SHA256, key, 'ATH', u, v, 512);
    expect(hex(kdfaBlock(SHA256, key, enc('ATH'), u, v, 512, 1))).toBe(hex(whole.subarray(0, 32)));
    expect(hex(kdfaBlock(SHA256, key, enc('ATH'), u, v, 512, 2))).toBe(hex(whole.subarray(32)));
    expect(hex(kdfaBlock(SHA256, key, enc('ATH\0'), u, v, 512, 1))).toBe(hex(whole.subarray(0, 32)));
    expect(() => kdfaBlock(SHA256, key, EMPTY, u, v, 512, 0)).toThrow();
  });
});

describe('DerivationKdf and deriveObject (keygen.ts)', () => {
  it('is one stream however it is requested, and refuses to pass TPM_MAX_DERIVATION_BITS', () => {
    const label = enc('label'),
      context = enc('ctx');
    const whole = new DerivationKdf(SHA256, PARENT_KEY, label, context).generate(100);
    expect(hex(whole)).toBe(hex(stream(label, context, 100)));
    const pieces = new DerivationKdf(SHA256, PARENT_KEY, label, context);
    const parts = [7, 25, 1, 32, 35].map((n) => pieces.generate(n));
    expect(hex(Uint8Array.from(parts.flatMap((p) => [...p])))).toBe(hex(whole));
    const limited = new DerivationKdf(SHA256, PARENT_KEY, label, context);
    expect(limited.generate(MAX_DERIVATION_BITS / 8).length).toBe(1024);
    expect(() => limited.generate(1)).toThrow(expect.objectContaining({ rc: TPM_RC.NO_RESULT }));
    // The limit counts whole blocks: a used block counts in full, as the reference's DRBG_Generate does.
    const partial = new DerivationKdf(SHA256, PARENT_KEY, label, context);
    partial.generate(1);
    expect(() => partial.generate(1024 - 1)).toThrow(expect.objectContaining({ rc: TPM_RC.NO_RESULT }));
  });

  it('derives no RSA key (TPM_RC_TYPE), and a key only from the parent key, label and context', async () => {
    const input = { kdfHashAlg: SHA256, parentKey: PARENT_KEY, label: enc('l'), context: enc('c'), template: eccTemplate(), userAuth: EMPTY };
    await expect(deriveObject({ ...input, template: RSA_TEMPLATE })).rejects.toMatchObject({ rc: TPM_RC.TYPE });
    const a = await deriveObject(input);
    // The template's unique is ignored, the authValue is kept but does not change the key.
    const b = await deriveObject({ ...input, template: { ...eccTemplate(), unique: { x: enc('x'), y: enc('y') } } as TPMT_PUBLIC, userAuth: enc('pw') });
    expect(hex(b.name)).toBe(hex(a.name));
    expect(hex(b.sensitive.authValue)).toBe(hex(enc('pw')));
    const c = await deriveObject({ ...input, parentKey: PARENT_KEY.map((x) => x ^ 1) });
    expect(hex(c.name)).not.toBe(hex(a.name));
  });
});

describe('simulator derived objects', () => {
  it('derive the key node:crypto computes from the parent key, label and context; the same inputs the same key, others another', async () => {
    const { t } = await startedEngine();
    const log = await scenario(t);
    const unique = (k: string) => (log[k] as { unique: { x: Uint8Array; y: Uint8Array } }).unique;
    const p256 = (k: string) => ({ x: hex(unique(k).x), y: hex(unique(k).y) });
    expect(p256('p256 device-1')).toEqual(expectedP256(enc('label'), enc('device-1')));
    expect(p256('p256 device-2')).toEqual(expectedP256(enc('label'), enc('device-2')));
    expect(p256('p256 label ending in NUL')).toEqual(expectedP256(enc('label\0'), enc('device-1')));
    expect(p256('p256 empty label and context')).toEqual(expectedP256(EMPTY, EMPTY));
    expect(log['p256 device-1 again']).toEqual(log['p256 device-1']);
    expect(log['p256 from inSensitive']).toEqual(log['p256 device-1']);
    expect(log['p256 template label wins']).toEqual(log['p256 device-1']);
    expect(p256('p256 device-2')).not.toEqual(p256('p256 device-1'));
    // A derived object is re-derived, never loaded: no private blob.
    expect((log['p256 device-1'] as { outPrivate: string }).outPrivate).toBe('');
    // HMAC key = the stream's first 32 bytes, seedValue the next 32; unique = SHA-256(seedValue ‖ key) (Part 1 §27.7).
    const s = stream(enc('label'), enc('device-1'), 64);
    expect(hex((log['hmac'] as { unique: Uint8Array }).unique)).toBe(createHash('sha256').update(s.subarray(32)).update(s.subarray(0, 32)).digest('hex'));
    // AES-128: 16 key bytes, then a 32-byte seedValue.
    const a = stream(enc('label'), enc('device-1'), 48);
    expect(hex((log['aes-128'] as { unique: Uint8Array }).unique)).toBe(createHash('sha256').update(a.subarray(16)).update(a.subarray(0, 16)).digest('hex'));
  });

  it('a derived ECC key signs and node:crypto verifies; a derived HMAC key signs as node:crypto computes', async () => {
    const { tpm, t } = await startedEngine();
    const parentHandle = await createParent(t);
    const parent = { handle: parentHandle } as never;
    const message = enc('derived keys sign this');
    const digest = new Uint8Array(createHash('sha256').update(message).digest());
    const ecc = await createLoaded(tpm, parent, eccTemplate(), { derive: { label: enc('label'), context: enc('device-1') } });
    try {
      const sig = await sign(tpm, ecc, digest);
      expect(verifyWithNode(ecc.publicArea, message, sig)).toBe(true);
      expect(verifyWithNode(ecc.publicArea, enc('another message'), sig)).toBe(false);
    } finally {
      await flush(tpm, ecc);
    }
    const mac = await createLoaded(tpm, parent, HMAC_TEMPLATE, { derive: { label: enc('label'), context: enc('device-1') } });
    try {
      const sig: TPMT_SIGNATURE = await sign(tpm, mac, digest);
      const key = stream(enc('label'), enc('device-1'), 32);
      expect(hex((sig as unknown as { signature: { digest: Uint8Array } }).signature.digest)).toBe(createHmac('sha256', key).update(digest).digest('hex'));
    } finally {
      await flush(tpm, mac);
    }
  });
});

describeWithSwtpm('simulator derived objects agree with swtpm', () => {
  const tpms = swtpmAndSimulator();

  it('the same parent key, labels and contexts give the same public areas, and the refusals the same codes', async () => {
    const { theirs, ours } = await tpms.both((side) => scenario(side.probe));
    expect(ours).toEqual(theirs);
  });
});
