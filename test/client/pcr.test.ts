/**
 * PCR operations (src/client/pcr.ts) against swtpm and our simulator. Every expected PCR value
 * is recomputed here with node:crypto from the spec's extend rule,
 * PCR_new = H(PCR_old ‖ digest) (Part 1 §17.5.1), never read from the code
 * under test. Localities go through swtpm's control channel (SET_LOCALITY);
 * PCR_Allocate takes effect after the control channel's INIT and a
 * Startup(CLEAR), and the test puts the four banks back afterwards.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Tpm } from '../../src/client/index.js';
import { expectedPcr, pcrAllocate, pcrBanks, pcrEvent, pcrExtend, pcrExtendData, pcrRead, pcrReset } from '../../src/client/pcr.js';
import { readCapability } from '../../src/tpm/capability.js';
import { PCR_Read, Startup } from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_CAP, TPM_RH, TPM_SU } from '../../src/tpm/constants.js';
import { ClientError, type TransportError } from '../../src/tpm/errors.js';
import { encodeResponse, parseCommand } from '../../src/tpm/frame.js';
import { pcrIndices, pcrSelection } from '../../src/tpm/pcr.js';
import { isRc, TPM_RC } from '../../src/tpm/rc.js';
import { SwtpmTransport } from '../../src/tpm/transport/index.js';
import type { TPMS_PCR_SELECTION, TPMT_HA } from '../../src/tpm/types/index.js';
import { rejection } from '../support/probe.js';
import { describeEachTpm, startTpm, type TpmUnderTest } from '../support/tpm-under-test.js';

const BANKS = [
  [TPM_ALG.SHA1, 'sha1', 20],
  [TPM_ALG.SHA256, 'sha256', 32],
  [TPM_ALG.SHA384, 'sha384', 48],
  [TPM_ALG.SHA512, 'sha512', 64],
] as const;
const H = (name: string, ...parts: Uint8Array[]): Buffer => {
  const h = createHash(name);
  for (const p of parts) h.update(p);
  return h.digest();
};
const hexOf = (b: Uint8Array | undefined): string => Buffer.from(b ?? new Uint8Array(0)).toString('hex');
const digestIn = (d: TPMT_HA): Uint8Array => ('digest' in d ? d.digest : new Uint8Array(0));

describeEachTpm('client PCRs', (kind) => {
  let sw: TpmUnderTest;
  let transport: SwtpmTransport;
  let tpm: Tpm;

  const value = async (bank: number, pcr: number): Promise<string> => hexOf((await pcrRead(tpm, [pcrSelection(bank as never, [pcr])])).get(bank)?.get(pcr));

  beforeAll(async () => {
    sw = await startTpm(kind);
    transport = new SwtpmTransport({ port: sw.port, ctrlPort: sw.ctrlPort });
    tpm = new Tpm(transport);
    await tpm.run(Startup, {}, { startupType: TPM_SU.CLEAR });
  }, 30_000);

  afterAll(async () => {
    await tpm?.close();
    await sw?.stop();
  });

  afterEach(async () => {
    expect(await readCapability(transport, TPM_CAP.HANDLES, [0x80000000])).toEqual([]);
  });

  it('reads all 24 PCRs of all four banks; DRTM PCRs 17–22 start at all ones, the others at zeros', async () => {
    const all = await pcrRead(tpm);
    expect([...all.keys()].sort()).toEqual(BANKS.map(([alg]) => alg).sort());
    for (const [alg, , size] of BANKS) {
      const bank = all.get(alg)!;
      expect([...bank.keys()]).toEqual(Array.from({ length: 24 }, (_, i) => i));
      for (const [i, v] of bank) {
        expect(v.length).toBe(size);
        // PC Client PTP: PCRs 17–22 are -1 until a dynamic launch resets them; a fresh swtpm has measured nothing else.
        expect(hexOf(v)).toBe((i >= 17 && i <= 22 ? 'ff' : '00').repeat(size));
      }
    }
    expect((await pcrBanks(tpm)).map((s) => s.hash).sort()).toEqual(BANKS.map(([alg]) => alg).sort());
  });

  it('extends all banks or only some with given digests', async () => {
    const pcr = 16;
    await pcrReset(tpm, pcr);
    const digests = BANKS.map(([hashAlg, name]) => ({ hashAlg, digest: H(name, Buffer.from(`event for ${name}`)) }) as TPMT_HA);
    await pcrExtend(tpm, pcr, digests);
    for (const [alg, name, size] of BANKS) {
      const d = H(name, Buffer.from(`event for ${name}`));
      expect(await value(alg, pcr)).toBe(hexOf(H(name, Buffer.alloc(size), d)));
      expect(hexOf(expectedPcr(alg, [d]))).toBe(hexOf(H(name, Buffer.alloc(size), d)));
    }
    // Only SHA-256: the other banks keep their values.
    const before = await pcrRead(tpm, [pcrSelection(TPM_ALG.SHA1, [pcr])]);
    const d256 = H('sha256', Buffer.from('only sha256'));
    const old256 = Buffer.from(await value(TPM_ALG.SHA256, pcr), 'hex');
    await pcrExtend(tpm, pcr, [{ hashAlg: TPM_ALG.SHA256, digest: d256 }]);
    expect(await value(TPM_ALG.SHA256, pcr)).toBe(hexOf(H('sha256', old256, d256)));
    expect(await value(TPM_ALG.SHA1, pcr)).toBe(hexOf(before.get(TPM_ALG.SHA1)!.get(pcr)));
    // A digest of the wrong size, or a PCR out of range, is refused before sending.
    expect(((await rejection(pcrExtend(tpm, pcr, [{ hashAlg: TPM_ALG.SHA256, digest: new Uint8Array(20) } as TPMT_HA]))) as ClientError).code).toBe('client.argument');
    expect(((await rejection(pcrExtend(tpm, 32, digests))) as ClientError).code).toBe('client.argument');
  });

  it('measures data into every allocated bank (hashed here), and into chosen banks', async () => {
    const pcr = 23;
    await pcrReset(tpm, pcr);
    const data = randomBytes(5000); // more than any TPM buffer: only digests travel
    const extended = await pcrExtendData(tpm, pcr, data);
    expect(extended.map((d) => d.hashAlg).sort()).toEqual(BANKS.map(([alg]) => alg).sort());
    for (const [alg, name, size] of BANKS) expect(await value(alg, pcr)).toBe(hexOf(H(name, Buffer.alloc(size), H(name, data))));
    const one = await pcrExtendData(tpm, pcr, data, { banks: [TPM_ALG.SHA384] });
    expect(one.map((d) => d.hashAlg)).toEqual([TPM_ALG.SHA384]);
  });

  it('PCR_Event hashes on the TPM with every bank and returns the digests', async () => {
    const pcr = 16;
    await pcrReset(tpm, pcr);
    const data = randomBytes(1024); // TPM2B_EVENT's maximum
    const digests = await pcrEvent(tpm, pcr, data);
    expect(digests.map((d) => d.hashAlg).sort()).toEqual(BANKS.map(([alg]) => alg).sort());
    for (const d of digests) {
      const [, name, size] = BANKS.find(([alg]) => alg === d.hashAlg)!;
      expect(hexOf(digestIn(d))).toBe(hexOf(H(name, data)));
      expect(await value(d.hashAlg, pcr)).toBe(hexOf(H(name, Buffer.alloc(size), H(name, data))));
    }
    // TPM_RH_NULL: digests only, no PCR changes.
    const v = await value(TPM_ALG.SHA256, pcr);
    expect((await pcrEvent(tpm, TPM_RH.NULL, data)).length).toBe(4);
    expect(await value(TPM_ALG.SHA256, pcr)).toBe(v);
  });

  it('resets by locality as the PC Client platform allows', async () => {
    // PCR 16: resettable from localities 0–3; back to zeros.
    await pcrExtendData(tpm, 16, Uint8Array.of(1));
    await pcrReset(tpm, 16);
    expect(await value(TPM_ALG.SHA256, 16)).toBe('00'.repeat(32));
    // PCR 20: not from locality 0 (TPM_RC_LOCALITY), but from locality 2, which resets it to zeros (not the start-up ones).
    expect(isRc(await rejection(pcrReset(tpm, 20)), TPM_RC.LOCALITY)).toBe(true);
    expect(await value(TPM_ALG.SHA256, 20)).toBe('ff'.repeat(32));
    await pcrReset(tpm, 20, { locality: 2 });
    expect(await value(TPM_ALG.SHA256, 20)).toBe('00'.repeat(32));
    // Extending PCR 20 needs locality 2 as well; from there the value follows the extend rule.
    const d = H('sha256', Uint8Array.of(20));
    expect(isRc(await rejection(pcrExtend(tpm, 20, [{ hashAlg: TPM_ALG.SHA256, digest: d }])), TPM_RC.LOCALITY)).toBe(true);
    await pcrExtend(tpm, 20, [{ hashAlg: TPM_ALG.SHA256, digest: d }], { locality: 2 });
    expect(await value(TPM_ALG.SHA256, 20)).toBe(hexOf(H('sha256', Buffer.alloc(32), d)));
    // PCR 0 cannot be reset at all.
    expect(isRc(await rejection(pcrReset(tpm, 0)), TPM_RC.LOCALITY)).toBe(true);
  });

  it('changes the bank allocation, effective only after _TPM_Init and Startup(CLEAR), and puts it back', async () => {
    // Only SHA-256, the other banks deallocated.
    const r = await pcrAllocate(tpm, [{ hashAlg: TPM_ALG.SHA256 }], { exclusive: true });
    expect(r.success).toBe(true);
    expect(r.maxPCR).toBe(24);
    expect(r.sizeNeeded).toBeLessThanOrEqual(r.sizeAvailable);
    expect((await pcrBanks(tpm)).length).toBe(4); // not yet
    await transport.control.init();
    await tpm.run(Startup, {}, { startupType: TPM_SU.CLEAR });
    expect((await pcrBanks(tpm)).map((s) => s.hash)).toEqual([TPM_ALG.SHA256]);
    expect([...(await pcrRead(tpm)).keys()]).toEqual([TPM_ALG.SHA256]);
    // Without `exclusive`, banks not named keep their allocation: adding SHA-1 keeps SHA-256.
    await pcrAllocate(tpm, [{ hashAlg: TPM_ALG.SHA1, pcrs: [0, 1, 2, 3, 4, 5, 6, 7] }]);
    await transport.control.init();
    await tpm.run(Startup, {}, { startupType: TPM_SU.CLEAR });
    const banks = await pcrBanks(tpm);
    expect(banks.map((s) => s.hash).sort()).toEqual([TPM_ALG.SHA1, TPM_ALG.SHA256].sort());
    expect([...(await pcrRead(tpm)).get(TPM_ALG.SHA1)!.keys()]).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    // Wrong platform authorization is refused; then all four banks come back.
    expect(isRc(await rejection(pcrAllocate(tpm, [{ hashAlg: TPM_ALG.SHA1 }], { auth: { handle: TPM_RH.PLATFORM, name: Uint8Array.of(0x40, 0, 0, 0x0c), authValue: Uint8Array.of(1) } })), TPM_RC.BAD_AUTH)).toBe(true);
    await pcrAllocate(tpm, BANKS.map(([hashAlg]) => ({ hashAlg })));
    await transport.control.init();
    await tpm.run(Startup, {}, { startupType: TPM_SU.CLEAR });
    expect((await pcrBanks(tpm)).map((s) => s.hash).sort()).toEqual(BANKS.map(([alg]) => alg).sort());
  });
});

/**
 * PCR_Read paging and its checks against an in-process TPM that answers from a
 * rule given per test: a TPM returns at most eight digests per call (Part 3
 * §22.4), and an answer that names PCRs not asked for, or whose digests do not
 * match its selection, must be refused rather than looped on or trusted.
 */
describe('pcrRead against an in-process PCR_Read', () => {
  const digestFor = (bank: number, i: number): Uint8Array => Uint8Array.of(bank, i, ...new Uint8Array(30));
  const fake = (answer: (asked: TPMS_PCR_SELECTION[]) => { out: TPMS_PCR_SELECTION[]; digests?: Uint8Array[] }) => {
    let calls = 0;
    const tpm = new Tpm({
      send: async (command) => {
        calls++;
        const parsed = parseCommand(command);
        const asked = (parsed.params as { pcrSelectionIn: TPMS_PCR_SELECTION[] }).pcrSelectionIn;
        const { out, digests } = answer(asked);
        const values = digests ?? out.flatMap((s) => pcrIndices(s).map((i) => digestFor(s.hash, i)));
        return encodeResponse(PCR_Read, {}, { pcrUpdateCounter: 1, pcrSelectionOut: out, pcrValues: values });
      },
      close: async () => undefined,
    });
    return { tpm, calls: () => calls };
  };
  /** The first eight PCRs asked for, as a real TPM answers. */
  const firstEight = (asked: TPMS_PCR_SELECTION[]): { out: TPMS_PCR_SELECTION[] } => {
    let left = 8;
    const out = asked.map((s) => {
      const take = pcrIndices(s).slice(0, left);
      left -= take.length;
      return pcrSelection(s.hash, take);
    });
    return { out };
  };

  it('asks again until every PCR is read (24 PCRs of two banks: six calls)', async () => {
    const f = fake(firstEight);
    const all = Array.from({ length: 24 }, (_, i) => i);
    const v = await pcrRead(f.tpm, [pcrSelection(TPM_ALG.SHA256, all), pcrSelection(TPM_ALG.SHA1, all)]);
    expect(f.calls()).toBe(6);
    for (const bank of [TPM_ALG.SHA256, TPM_ALG.SHA1]) {
      expect([...v.get(bank)!.keys()]).toEqual(all);
      for (const i of all) expect([...v.get(bank)!.get(i)!.subarray(0, 2)]).toEqual([bank, i]);
    }
  });

  it('refuses PCRs not asked for, digests that do not match the selection, and stops on an empty answer', async () => {
    const extra = fake(() => ({ out: [pcrSelection(TPM_ALG.SHA256, [0, 1])] }));
    expect(((await rejection(pcrRead(extra.tpm, [pcrSelection(TPM_ALG.SHA256, [0])]))) as TransportError).code).toBe('transport.protocol');
    const short = fake((asked) => ({ out: asked, digests: [digestFor(TPM_ALG.SHA256, 0)] }));
    expect(((await rejection(pcrRead(short.tpm, [pcrSelection(TPM_ALG.SHA256, [0, 1])]))) as TransportError).code).toBe('transport.protocol');
    const none = fake(() => ({ out: [] }));
    expect((await pcrRead(none.tpm, [pcrSelection(TPM_ALG.SHA256, [6])])).size).toBe(0);
    expect(none.calls()).toBe(1);
  });
});
