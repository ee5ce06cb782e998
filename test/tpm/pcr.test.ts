/**
 * PCR selections (src/tpm/pcr.ts): the bitmap layout of Part 2 §10.6.2, the
 * argument checks, subtracting what a PCR_Read returned, and readPcrs paging
 * against an in-process fake TPM that returns at most 8 digests per call
 * (TPML_DIGEST, Part 3 §22.4), including fakes that break the protocol.
 */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { CommandParams, ResponseParams } from '../../src/tpm/command.js';
import { GetCapability, PCR_Read } from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_CAP } from '../../src/tpm/constants.js';
import { digestSize } from '../../src/tpm/crypto/hash.js';
import { ArgumentError, TransportError } from '../../src/tpm/errors.js';
import { encodeErrorResponse, encodeResponse, parseCommand } from '../../src/tpm/frame.js';
import { pcrIndices, pcrSelection, readPcrs, subtractSelections } from '../../src/tpm/pcr.js';
import { inProcessTransport } from '../../src/tpm/transport/index.js';
import type { TPMS_PCR_SELECTION } from '../../src/tpm/types/index.js';

type Hash = TPMS_PCR_SELECTION['hash'];
const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

describe('pcrSelection / pcrIndices', () => {
  it('PCR n is bit n mod 8 of byte n div 8: PCRs 0, 7, 8, 23 → 81 01 80', () => {
    const sel = pcrSelection(TPM_ALG.SHA256, [0, 7, 8, 23]);
    expect(sel.hash).toBe(TPM_ALG.SHA256);
    expect(hexOf(sel.pcrSelect)).toBe('810180');
    expect(hexOf(pcrSelection(TPM_ALG.SHA1, [16]).pcrSelect)).toBe('000001');
    expect(hexOf(pcrSelection(TPM_ALG.SHA1, range(24)).pcrSelect)).toBe('ffffff');
    expect(hexOf(pcrSelection(TPM_ALG.SHA1, [31], 4).pcrSelect)).toBe('00000080');
    expect(hexOf(pcrSelection(TPM_ALG.SHA1, []).pcrSelect)).toBe('000000');
    expect(pcrSelection(TPM_ALG.SHA1, [], 0).pcrSelect.length).toBe(0);
    expect(pcrIndices({ hash: TPM_ALG.SHA256, pcrSelect: Uint8Array.of(0x81, 0x01, 0x80) })).toEqual([0, 7, 8, 23]);
  });

  it('duplicates and order do not matter; indices come back ascending', () => {
    expect(pcrIndices(pcrSelection(TPM_ALG.SHA256, [23, 0, 7, 0, 8, 23]))).toEqual([0, 7, 8, 23]);
  });

  it('round trip for any set of indices and any selection size (fast-check)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 4 }).chain((size) => fc.tuple(fc.constant(size), fc.array(fc.integer({ min: 0, max: Math.max(0, size * 8 - 1) }), { maxLength: size === 0 ? 0 : 40 }))),
        ([size, indices]) => {
          const sel = pcrSelection(TPM_ALG.SHA384, indices, size);
          expect(sel.pcrSelect.length).toBe(size);
          expect(pcrIndices(sel)).toEqual([...new Set(indices)].sort((a, b) => a - b));
        },
      ),
    );
  });

  it('round trip for any bitmap (fast-check)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 4 }), (bitmap) => {
        const sel = { hash: TPM_ALG.SHA1 as Hash, pcrSelect: bitmap };
        const again = pcrSelection(sel.hash, pcrIndices(sel), bitmap.length);
        expect(hexOf(again.pcrSelect)).toBe(hexOf(bitmap));
        expect(pcrIndices(sel).length).toBe([...bitmap].reduce((n, b) => n + b.toString(2).replaceAll('0', '').length, 0));
      }),
    );
  });

  it('argument errors: a size outside 0..4, a PCR outside the selection', () => {
    for (const size of [5, -1, 1.5, Number.NaN]) expect(() => pcrSelection(TPM_ALG.SHA256, [], size), String(size)).toThrow(ArgumentError);
    for (const [indices, size] of [[[24], 3], [[-1], 3], [[1.5], 3], [[Number.NaN], 3], [[0], 0], [[8], 1], [[32], 4]] as const) {
      let caught: unknown;
      try {
        pcrSelection(TPM_ALG.SHA256, indices, size);
      } catch (e) {
        caught = e;
      }
      expect(caught, `${String(indices)} in ${size}`).toBeInstanceOf(ArgumentError);
      expect((caught as ArgumentError).code).toBe('crypto.argument');
    }
  });
});

describe('subtractSelections', () => {
  const sel = (hash: Hash, indices: number[], size = 3): TPMS_PCR_SELECTION => pcrSelection(hash, indices, size);
  const show = (list: TPMS_PCR_SELECTION[]): [number, number[]][] => list.map((s) => [s.hash, pcrIndices(s)]);

  it('removes what was read from its own bank only; other banks are untouched', () => {
    const wanted = [sel(TPM_ALG.SHA1, range(8)), sel(TPM_ALG.SHA256, range(8))];
    const rest = subtractSelections(wanted, [sel(TPM_ALG.SHA256, [0, 1, 2, 3])]);
    expect(show(rest)).toEqual([
      [TPM_ALG.SHA1, range(8)],
      [TPM_ALG.SHA256, [4, 5, 6, 7]],
    ]);
    expect(hexOf(rest[0]!.pcrSelect)).toBe('ff0000');
  });

  it('drops banks that become empty, and banks that were empty', () => {
    const wanted = [sel(TPM_ALG.SHA1, [1, 2]), sel(TPM_ALG.SHA256, [0, 9]), sel(TPM_ALG.SHA384, [])];
    expect(show(subtractSelections(wanted, [sel(TPM_ALG.SHA256, [0, 9])]))).toEqual([[TPM_ALG.SHA1, [1, 2]]]);
    expect(subtractSelections(wanted, [sel(TPM_ALG.SHA1, range(24)), sel(TPM_ALG.SHA256, range(24))])).toEqual([]);
    expect(subtractSelections([], [sel(TPM_ALG.SHA1, [1])])).toEqual([]);
  });

  it('partial overlap keeps only the PCRs not read', () => {
    const rest = subtractSelections([sel(TPM_ALG.SHA256, [0, 1, 2, 8])], [sel(TPM_ALG.SHA256, [1, 8, 9, 16])]);
    expect(show(rest)).toEqual([[TPM_ALG.SHA256, [0, 2]]]);
  });

  it('several answers for one bank all count; a shorter bitmap leaves the higher bytes', () => {
    const rest = subtractSelections([sel(TPM_ALG.SHA256, [0, 5, 12, 20])], [sel(TPM_ALG.SHA256, [0]), sel(TPM_ALG.SHA256, [12], 2)]);
    expect(show(rest)).toEqual([[TPM_ALG.SHA256, [5, 20]]]);
  });

  it('does not modify its arguments', () => {
    const wanted = [sel(TPM_ALG.SHA256, [0, 1])];
    const got = [sel(TPM_ALG.SHA256, [0])];
    subtractSelections(wanted, got);
    expect(hexOf(wanted[0]!.pcrSelect)).toBe('030000');
    expect(hexOf(got[0]!.pcrSelect)).toBe('010000');
  });
});

// ---------------------------------------------------------------------------
// readPcrs against an in-process fake TPM

/** The value the fake holds in PCR `index` of bank `hash`: distinct per bank and index. */
function pcrValue(hash: number, index: number): Uint8Array {
  const name = { [TPM_ALG.SHA1]: 'sha1', [TPM_ALG.SHA256]: 'sha256', [TPM_ALG.SHA384]: 'sha384' }[hash]!;
  return createHash(name).update(`pcr ${index}`).digest();
}

interface FakeOptions {
  /** Banks the TPM allocates (answered to GetCapability(PCRS)). */
  readonly banks?: readonly number[];
  /** PCRs 0..implemented-1 exist. */
  readonly implemented?: number;
  /** Digests per PCR_Read answer (a real TPM: 8). */
  readonly perCall?: number;
  /** Changes the number of digests returned (a broken TPM). */
  readonly extraDigests?: number;
}

/** A TPM that answers GetCapability(PCRS) and PCR_Read, recording each PCR_Read selection. */
function fakeTpm(opts: FakeOptions = {}) {
  const banks = opts.banks ?? [TPM_ALG.SHA1, TPM_ALG.SHA256];
  const implemented = opts.implemented ?? 24;
  const perCall = opts.perCall ?? 8;
  const reads: [number, number[]][][] = [];
  const execute = (command: Uint8Array): Promise<Uint8Array> => {
    const parsed = parseCommand(command);
    if (parsed.command === GetCapability) {
      const p = parsed.params as CommandParams<typeof GetCapability>;
      expect(p.capability).toBe(TPM_CAP.PCRS);
      const response: ResponseParams<typeof GetCapability> = {
        moreData: 0,
        capabilityData: { capability: TPM_CAP.PCRS, data: banks.map((h) => pcrSelection(h as Hash, range(24))) },
      };
      return Promise.resolve(encodeResponse(GetCapability, {}, response));
    }
    if (parsed.command !== PCR_Read) return Promise.resolve(encodeErrorResponse(0x143)); // TPM_RC_COMMAND_CODE
    const { pcrSelectionIn } = parsed.params as CommandParams<typeof PCR_Read>;
    reads.push(pcrSelectionIn.map((s) => [s.hash, pcrIndices(s)]));
    // Part 3 §22.4: walk the banks in order, PCRs ascending, until the digest list is full.
    const pcrValues: Uint8Array[] = [];
    const pcrSelectionOut = pcrSelectionIn.map((s) => {
      const out = new Uint8Array(s.pcrSelect.length);
      for (const i of pcrIndices(s)) {
        if (pcrValues.length === perCall || i >= implemented || !banks.includes(s.hash)) continue;
        out[i >> 3]! |= 1 << (i & 7);
        pcrValues.push(pcrValue(s.hash, i));
      }
      return { hash: s.hash, pcrSelect: out };
    });
    const extra = opts.extraDigests ?? 0;
    if (extra < 0) pcrValues.splice(extra);
    for (let i = 0; i < extra; i++) pcrValues.push(new Uint8Array(32));
    const response: ResponseParams<typeof PCR_Read> = { pcrUpdateCounter: 42, pcrSelectionOut, pcrValues };
    return Promise.resolve(encodeResponse(PCR_Read, {}, response));
  };
  return { transport: inProcessTransport({ execute }), reads };
}

function expectBanks(values: Map<number, Map<number, Uint8Array>>, want: Record<number, number[]>): void {
  expect([...values.keys()].sort()).toEqual(Object.keys(want).map(Number).sort());
  for (const [hash, indices] of Object.entries(want)) {
    const bank = values.get(Number(hash))!;
    expect([...bank.keys()].sort((a, b) => a - b)).toEqual(indices);
    for (const i of indices) expect(hexOf(bank.get(i)!), `bank ${hash} PCR ${i}`).toBe(hexOf(pcrValue(Number(hash), i)));
  }
}

describe('readPcrs pages through PCR_Read (at most 8 digests per call)', () => {
  it('two banks of 24 PCRs take six calls, each asking for what is left', async () => {
    const { transport, reads } = fakeTpm();
    const values = await readPcrs(transport, [pcrSelection(TPM_ALG.SHA1, range(24)), pcrSelection(TPM_ALG.SHA256, range(24))]);
    expectBanks(values, { [TPM_ALG.SHA1]: range(24), [TPM_ALG.SHA256]: range(24) });
    expect(reads.length).toBe(6);
    expect(reads[0]).toEqual([
      [TPM_ALG.SHA1, range(24)],
      [TPM_ALG.SHA256, range(24)],
    ]);
    expect(reads[1]).toEqual([
      [TPM_ALG.SHA1, range(16).map((i) => i + 8)],
      [TPM_ALG.SHA256, range(24)],
    ]);
    expect(reads[3]).toEqual([[TPM_ALG.SHA256, range(24)]]); // SHA-1 is done: its bank is dropped
    expect(reads[5]).toEqual([[TPM_ALG.SHA256, range(8).map((i) => i + 16)]]);
    await transport.close();
  });

  it('with no selections, reads every bank GetCapability(PCRS) names', async () => {
    const { transport, reads } = fakeTpm({ banks: [TPM_ALG.SHA1, TPM_ALG.SHA256, TPM_ALG.SHA384] });
    const values = await readPcrs(transport);
    expectBanks(values, { [TPM_ALG.SHA1]: range(24), [TPM_ALG.SHA256]: range(24), [TPM_ALG.SHA384]: range(24) });
    expect(reads.length).toBe(9);
    expect(values.get(TPM_ALG.SHA384)!.get(5)!.length).toBe(digestSize(TPM_ALG.SHA384));
  });

  it('a sparse selection in one call; a selection of exactly 8 in one call', async () => {
    const a = fakeTpm();
    expectBanks(await readPcrs(a.transport, [pcrSelection(TPM_ALG.SHA256, [0, 7, 16, 23])]), { [TPM_ALG.SHA256]: [0, 7, 16, 23] });
    expect(a.reads.length).toBe(1);
    const b = fakeTpm();
    expectBanks(await readPcrs(b.transport, [pcrSelection(TPM_ALG.SHA1, range(8))]), { [TPM_ALG.SHA1]: range(8) });
    expect(b.reads.length).toBe(1);
  });

  it('a TPM that returns fewer per call (here 3) is paged as well', async () => {
    const { transport, reads } = fakeTpm({ perCall: 3 });
    expectBanks(await readPcrs(transport, [pcrSelection(TPM_ALG.SHA256, range(10))]), { [TPM_ALG.SHA256]: range(10) });
    expect(reads.length).toBe(4);
  });

  it('empty selections send nothing', async () => {
    const { transport, reads } = fakeTpm();
    expect((await readPcrs(transport, [])).size).toBe(0);
    expect((await readPcrs(transport, [pcrSelection(TPM_ALG.SHA256, [])])).size).toBe(0);
    expect(reads.length).toBe(0);
  });

  it('PCRs the TPM does not implement end the loop instead of repeating it', async () => {
    const { transport, reads } = fakeTpm({ implemented: 24 });
    const values = await readPcrs(transport, [pcrSelection(TPM_ALG.SHA256, [20, 21, 30, 31], 4)]);
    expectBanks(values, { [TPM_ALG.SHA256]: [20, 21] });
    expect(reads.length).toBe(2); // the second call returns nothing
  });

  it('a TPM returning fewer digests than its selection names is transport.protocol', async () => {
    const { transport } = fakeTpm({ extraDigests: -1 });
    const e = await readPcrs(transport, [pcrSelection(TPM_ALG.SHA256, range(4))]).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(TransportError);
    expect((e as TransportError).code).toBe('transport.protocol');
    expect((e as Error).message).toContain('fewer');
  });

  // A TPM that keeps answering PCRs it was not asked for must not keep readPcrs looping; the fake
  // gives up after 50 calls so that a regression ends as a failure rather than a hang.
  it('a TPM that answers PCRs it was not asked for is transport.protocol, not an endless loop', async () => {
    let calls = 0;
    const transport = inProcessTransport({
      execute: (command) => {
        parseCommand(command);
        if (++calls > 50) return Promise.reject(new Error('readPcrs is still asking after 50 calls'));
        const response: ResponseParams<typeof PCR_Read> = {
          pcrUpdateCounter: 0,
          pcrSelectionOut: [pcrSelection(TPM_ALG.SHA1, [0])],
          pcrValues: [pcrValue(TPM_ALG.SHA1, 0)],
        };
        return Promise.resolve(encodeResponse(PCR_Read, {}, response));
      },
    });
    const e = await readPcrs(transport, [pcrSelection(TPM_ALG.SHA256, [1])]).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(TransportError);
    expect((e as TransportError).code).toBe('transport.protocol');
  });

  it('a TPM returning more digests than its selection names is transport.protocol', async () => {
    const { transport } = fakeTpm({ extraDigests: 1 });
    const e = await readPcrs(transport, [pcrSelection(TPM_ALG.SHA256, range(4))]).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(TransportError);
    expect((e as TransportError).code).toBe('transport.protocol');
    expect((e as Error).message).toContain('more');
  });
});
