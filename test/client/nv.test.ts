/**
 * NV operations (src/client/nv.ts) against swtpm and our simulator: a 2048-byte index moved in
 * TPM_PT_NV_BUFFER_MAX (1024-byte) chunks counted on the wire, counters, bit
 * fields, extend indices (values recomputed with node:crypto), the three locks
 * across a restart, owner- and platform-authorized indices, NV_Certify with the
 * signature checked by node:crypto. An index's Name changes with WRITTEN and
 * the locks: HMAC-session commands (whose cpHash covers the Name) prove the
 * client tracks it, and a stale Name is refused by the TPM. Indices are NO_DA,
 * so the failures never lock swtpm out.
 */
import { createHash, randomBytes, verify as nodeVerify } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { verifyWithNode } from '../../src/client/crypto.js';
import { Tpm } from '../../src/client/index.js';
import { createPrimary, eccSigningTemplate, rsaSigningTemplate } from '../../src/client/keys.js';
import {
  NvIndex,
  nvCertify,
  nvDefine,
  nvExtend,
  nvGlobalWriteLock,
  nvIncrement,
  nvRead,
  nvReadCounter,
  nvReadLock,
  nvReadPublic,
  nvSetBits,
  nvUndefine,
  nvWrite,
  nvWriteLock,
} from '../../src/client/nv.js';
import { withRetry } from '../../src/client/retry.js';
import { readCapability } from '../../src/tpm/capability.js';
import { Startup } from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_CAP, TPM_CC, TPM_RH, TPM_ST, TPM_SU } from '../../src/tpm/constants.js';
import { ClientError } from '../../src/tpm/errors.js';
import { isRc, TPM_RC } from '../../src/tpm/rc.js';
import { publicKeyFromArea } from '../../src/tpm/secret.js';
import { SwtpmTransport } from '../../src/tpm/transport/index.js';
import { TPMS_NV_PUBLIC } from '../../src/tpm/types/index.js';
import { encode } from '../../src/tpm/wire/codec.js';
import { rejection, WireProbe } from '../support/probe.js';
import { describeEachTpm, startTpm, type TpmUnderTest } from '../support/tpm-under-test.js';

const sha256 = (...parts: Uint8Array[]): Buffer => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};
const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex');
/** An index's Name recomputed here: nameAlg ‖ SHA-256(marshaled TPMS_NV_PUBLIC) (Part 1 §16.4). */
const nameOf = (pub: TPMS_NV_PUBLIC): string => hexOf(Buffer.concat([Buffer.from([0, 0x0b]), sha256(encode(TPMS_NV_PUBLIC, pub))]));
const NO_DA = { NO_DA: true } as const;

describeEachTpm('client NV', (kind) => {
  let sw: TpmUnderTest;
  let swtpm: SwtpmTransport;
  let wire: WireProbe;
  let tpm: Tpm;
  let next = 0x01500100;
  const index = (): number => next++;

  const restart = async (): Promise<void> => {
    await swtpm.control.init();
    await tpm.run(Startup, {}, { startupType: TPM_SU.CLEAR });
  };

  beforeAll(async () => {
    sw = await startTpm(kind);
    swtpm = new SwtpmTransport({ port: sw.port, ctrlPort: sw.ctrlPort });
    // libtpms answers the first RSA key generation after start-up with TPM_RC_RETRY: resend, as a client must.
    wire = new WireProbe(withRetry(swtpm));
    tpm = new Tpm(wire);
    await tpm.run(Startup, {}, { startupType: TPM_SU.CLEAR });
  }, 30_000);

  afterAll(async () => {
    await tpm?.close();
    await sw?.stop();
  });

  afterEach(async () => {
    expect(await readCapability(wire, TPM_CAP.HANDLES, [0x80000000])).toEqual([]);
  });

  describe('ordinary indices', () => {
    it('writes and reads a 2048-byte index in 1024-byte chunks; the Name follows WRITTEN', async () => {
      const nv = await nvDefine(tpm, { index: index(), size: 2048, authValue: Uint8Array.of(1, 2), attributes: NO_DA });
      expect(nameOf(nv.publicArea)).toBe(hexOf(nv.name));
      expect(nv.attributes.WRITTEN).toBe(false);
      expect(isRc(await rejection(nvRead(tpm, nv)), TPM_RC.NV_UNINITIALIZED)).toBe(true);

      const data = randomBytes(2048);
      const w = wire.count(TPM_CC.NV_Write);
      await nvWrite(tpm, nv, data);
      expect(wire.count(TPM_CC.NV_Write) - w).toBe(2);
      expect(nv.attributes.WRITTEN).toBe(true);
      const fresh = await nvReadPublic(tpm, nv.handle);
      expect(hexOf(nv.name)).toBe(hexOf(fresh.name));
      expect(nameOf(fresh.publicArea)).toBe(hexOf(fresh.name));

      const r = wire.count(TPM_CC.NV_Read);
      expect(hexOf(await nvRead(tpm, nv))).toBe(hexOf(data));
      expect(wire.count(TPM_CC.NV_Read) - r).toBe(2);
      // Across the chunk boundary, and at an offset.
      expect(hexOf(await nvRead(tpm, nv, { offset: 1000, size: 100 }))).toBe(hexOf(data.subarray(1000, 1100)));
      await nvWrite(tpm, nv, Uint8Array.of(9, 9, 9), { offset: 2045 });
      expect(hexOf(await nvRead(tpm, nv, { offset: 2040 }))).toBe(hexOf(Buffer.concat([data.subarray(2040, 2045), Buffer.from([9, 9, 9])])));
      // Ranges outside the index are refused before sending.
      expect(((await rejection(nvWrite(tpm, nv, Uint8Array.of(1), { offset: 2048 }))) as ClientError).code).toBe('client.argument');
      expect(((await rejection(nvRead(tpm, nv, { offset: 10, size: 2040 }))) as ClientError).code).toBe('client.argument');
      await nvUndefine(tpm, nv);
      expect(isRc(await rejection(nvReadPublic(tpm, nv.handle)), TPM_RC.HANDLE)).toBe(true);
    });

    it('works under an HMAC session, whose cpHash needs the current Name; a stale Name fails at the TPM', async () => {
      const nv = await nvDefine(tpm, { index: index(), size: 64, authValue: Uint8Array.of(7), attributes: NO_DA });
      const stale = new NvIndex(nv.publicArea, Uint8Array.of(7)); // before WRITTEN
      await tpm.withSession({ type: 'hmac' }, async (s) => {
        const data = randomBytes(64);
        await nvWrite(tpm, nv, data, { sessions: [s] }); // the first write: the Name changes with it
        expect(hexOf(await nvRead(tpm, nv, { sessions: [s] }))).toBe(hexOf(data));
        const e = await rejection(nvRead(tpm, stale, { sessions: [s] }));
        expect(isRc(e, TPM_RC.AUTH_FAIL) || isRc(e, TPM_RC.BAD_AUTH)).toBe(true);
      });
      await nvUndefine(tpm, nv);
    });

    it('a WRITEALL index is written whole, in one command', async () => {
      const nv = await nvDefine(tpm, { index: index(), size: 32, attributes: { ...NO_DA, WRITEALL: true } });
      expect(((await rejection(nvWrite(tpm, nv, randomBytes(16)))) as ClientError).code).toBe('client.argument');
      const data = randomBytes(32);
      await nvWrite(tpm, nv, data);
      expect(hexOf(await nvRead(tpm, nv))).toBe(hexOf(data));
      await nvUndefine(tpm, nv);
    });

    it('owner-authorized and platform-created indices pick their authorization from the attributes', async () => {
      const owner = await nvDefine(tpm, { index: index(), size: 8, attributes: { AUTHWRITE: false, AUTHREAD: false, OWNERWRITE: true, OWNERREAD: true, ...NO_DA } });
      await nvWrite(tpm, owner, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8));
      expect([...(await nvRead(tpm, owner))]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      await nvUndefine(tpm, owner);

      const platform = await nvDefine(tpm, { index: index(), size: 8, attributes: { AUTHWRITE: false, AUTHREAD: false, PPWRITE: true, PPREAD: true, ...NO_DA } }, { auth: TPM_RH.PLATFORM });
      expect(platform.attributes.PLATFORMCREATE).toBe(true);
      await nvWrite(tpm, platform, randomBytes(8));
      // Undefining a platform index needs platform authorization: the owner gets TPM_RC_NV_AUTHORIZATION.
      expect(isRc(await rejection(nvUndefine(tpm, platform, { auth: TPM_RH.OWNER })), TPM_RC.NV_AUTHORIZATION)).toBe(true);
      await nvUndefine(tpm, platform);
    });

    it('refuses an NV_ReadPublic whose Name is not the Name of the returned public area', async () => {
      const nv = await nvDefine(tpm, { index: index(), size: 8, attributes: NO_DA });
      wire.edit = {
        cc: TPM_CC.NV_ReadPublic,
        fn: (rsp) => {
          rsp[rsp.length - 1]! ^= 1; // the last byte of nvName (no sessions)
          return rsp;
        },
      };
      expect(((await rejection(nvReadPublic(tpm, nv.handle))) as ClientError).code).toBe('client.name');
      await nvUndefine(tpm, nv);
    });
  });

  describe('counters, bit fields, extend indices', () => {
    it('counts up from NV_Increment', async () => {
      const nv = await nvDefine(tpm, { index: index(), type: 'counter', attributes: NO_DA });
      expect(nv.type).toBe('counter');
      expect(nv.size).toBe(8);
      await nvIncrement(tpm, nv);
      const first = await nvReadCounter(tpm, nv);
      await nvIncrement(tpm, nv);
      await nvIncrement(tpm, nv);
      expect(await nvReadCounter(tpm, nv)).toBe(first + 2n);
      // NV_Write does not apply to a counter.
      expect(isRc(await rejection(nvWrite(tpm, nv, new Uint8Array(8))), TPM_RC.ATTRIBUTES)).toBe(true);
      await nvUndefine(tpm, nv);
    });

    it('ORs bits into a bit field', async () => {
      const nv = await nvDefine(tpm, { index: index(), type: 'bits', attributes: NO_DA });
      await nvSetBits(tpm, nv, 0x5n);
      await nvSetBits(tpm, nv, 0x8000000000000030n);
      expect(await nvReadCounter(tpm, nv)).toBe(0x8000000000000035n);
      expect(((await rejection(nvSetBits(tpm, nv, -1n))) as ClientError).code).toBe('client.argument');
      await nvUndefine(tpm, nv);
    });

    it('extends an extend index as H(old ‖ data)', async () => {
      const nv = await nvDefine(tpm, { index: index(), type: 'extend', attributes: NO_DA });
      expect(nv.size).toBe(32);
      const a = randomBytes(100);
      const b = randomBytes(1024);
      await nvExtend(tpm, nv, a);
      await nvExtend(tpm, nv, b);
      expect(hexOf(await nvRead(tpm, nv))).toBe(hexOf(sha256(sha256(Buffer.alloc(32), a), b)));
      expect(((await rejection(nvExtend(tpm, nv, randomBytes(1025)))) as ClientError).code).toBe('client.argument');
      await nvUndefine(tpm, nv);
    });
  });

  describe('locks', () => {
    it('write lock (WRITE_STCLEAR), read lock (READ_STCLEAR) and global lock hold until Startup(CLEAR)', async () => {
      const w = await nvDefine(tpm, { index: index(), size: 16, attributes: { ...NO_DA, WRITE_STCLEAR: true } });
      const r = await nvDefine(tpm, { index: index(), size: 16, attributes: { ...NO_DA, READ_STCLEAR: true } });
      const g = await nvDefine(tpm, { index: index(), size: 16, attributes: { ...NO_DA, GLOBALLOCK: true } });
      for (const nv of [w, r, g]) await nvWrite(tpm, nv, randomBytes(16));

      await nvWriteLock(tpm, w);
      expect(w.attributes.WRITELOCKED).toBe(true);
      expect(hexOf((await nvReadPublic(tpm, w.handle)).name)).toBe(hexOf(w.name));
      expect(isRc(await rejection(nvWrite(tpm, w, randomBytes(16))), TPM_RC.NV_LOCKED)).toBe(true);

      await nvReadLock(tpm, r);
      expect(hexOf((await nvReadPublic(tpm, r.handle)).name)).toBe(hexOf(r.name));
      expect(isRc(await rejection(nvRead(tpm, r)), TPM_RC.NV_LOCKED)).toBe(true);

      await nvGlobalWriteLock(tpm);
      expect(isRc(await rejection(nvWrite(tpm, g, randomBytes(16))), TPM_RC.NV_LOCKED)).toBe(true);
      const g2 = await nvReadPublic(tpm, g.handle);
      expect(g2.attributes.WRITELOCKED).toBe(true);

      // A write lock on an index without WRITE_STCLEAR or WRITEDEFINE is TPM_RC_ATTRIBUTES.
      const plain = await nvDefine(tpm, { index: index(), size: 4, attributes: NO_DA });
      expect(isRc(await rejection(nvWriteLock(tpm, plain)), TPM_RC.ATTRIBUTES)).toBe(true);
      await nvUndefine(tpm, plain);

      await restart();
      for (const nv of [w, r, g]) {
        const now = await nvReadPublic(tpm, nv.handle);
        expect(now.attributes.WRITELOCKED || now.attributes.READLOCKED).toBe(false);
        await nvWrite(tpm, now, randomBytes(16));
        await nvRead(tpm, now);
        await nvUndefine(tpm, now);
      }
    });
  });

  describe('NV_Certify', () => {
    it('certifies a range of an index with ECDSA and the whole index as a digest with RSASSA; node:crypto verifies', async () => {
      const nv = await nvDefine(tpm, { index: index(), size: 300, attributes: NO_DA });
      const data = randomBytes(300);
      await nvWrite(tpm, nv, data);
      const nonce = randomBytes(16);
      await tpm.using(createPrimary(tpm, TPM_RH.OWNER, eccSigningTemplate({ attributes: { noDA: true } })), async (key) => {
        const c = await nvCertify(tpm, key, nv, { qualifyingData: nonce, offset: 10, size: 100 });
        expect(c.attest.type).toBe(TPM_ST.ATTEST_NV);
        if (c.attest.type !== TPM_ST.ATTEST_NV) throw new Error('unreachable');
        expect(hexOf(c.attest.attested.nvContents)).toBe(hexOf(data.subarray(10, 110)));
        expect(hexOf(c.attest.attested.indexName)).toBe(nameOf(nv.publicArea));
        expect(hexOf(c.attest.extraData)).toBe(hexOf(nonce));
        // The signed bytes start with TPM_GENERATED_VALUE and type ATTEST_NV (Part 2 §10.12.12).
        expect(hexOf(c.attestBytes.subarray(0, 6))).toBe('ff5443478014');
        expect(verifyWithNode(key.publicArea, c.attestBytes, c.signature)).toBe(true);
        const tampered = c.attestBytes.slice();
        tampered[tampered.length - 1]! ^= 1;
        expect(verifyWithNode(key.publicArea, tampered, c.signature)).toBe(false);
      });
      await tpm.using(createPrimary(tpm, TPM_RH.OWNER, rsaSigningTemplate({ attributes: { noDA: true } })), async (key) => {
        const c = await nvCertify(tpm, key, nv, { size: 0, offset: 0 });
        expect(c.attest.type).toBe(TPM_ST.ATTEST_NV_DIGEST);
        if (c.attest.type !== TPM_ST.ATTEST_NV_DIGEST) throw new Error('unreachable');
        // nvDigest = H_scheme(the whole index's data) (Part 3 §31.16).
        expect(hexOf(c.attest.attested.nvDigest)).toBe(hexOf(sha256(data)));
        if (c.signature.sigAlg !== TPM_ALG.RSASSA) throw new Error('expected RSASSA');
        expect(nodeVerify('sha256', c.attestBytes, publicKeyFromArea(key.publicArea), c.signature.signature.sig)).toBe(true);
      });
      // A range outside the index is refused before sending.
      expect(((await rejection(nvCertify(tpm, TPM_RH.NULL, nv, { offset: 299, size: 2 }))) as ClientError).code).toBe('client.argument');
      await nvUndefine(tpm, nv);
    });
  });
});
