/**
 * GetCapability paging (src/tpm/capability.ts, Part 3 §30.2): where each
 * listing starts and which property follows a page (pure), and readCapability
 * against in-process fake TPMs: one that pages, ones that break the protocol.
 */
import { describe, expect, it } from 'vitest';
import { type CapabilityItem, listingStarts, nextProperty, readCapability } from '../../src/tpm/capability.js';
import type { CommandParams, ResponseParams } from '../../src/tpm/command.js';
import { GetCapability } from '../../src/tpm/commands/index.js';
import { PT_FIXED, PT_VAR, TPM_ALG, TPM_CAP, TPM_CC, TPM_ECC } from '../../src/tpm/constants.js';
import { TransportError } from '../../src/tpm/errors.js';
import { encodeErrorResponse, encodeResponse, parseCommand } from '../../src/tpm/frame.js';
import { TpmError } from '../../src/tpm/rc.js';
import { inProcessTransport } from '../../src/tpm/transport/index.js';
import { TPMA_ACT, TPMA_ALGORITHM, TPMA_CC, type TPMS_CAPABILITY_DATA } from '../../src/tpm/types/index.js';

/** A capability answer, built loosely and checked by the codec when the fake encodes it. */
const data = (capability: number, items: unknown[]): TPMS_CAPABILITY_DATA => ({ capability, data: items }) as TPMS_CAPABILITY_DATA;

describe('listingStarts', () => {
  it('TPM properties: the fixed group, then the variable group', () => {
    expect(listingStarts(TPM_CAP.TPM_PROPERTIES)).toEqual([PT_FIXED, PT_VAR]);
    expect([PT_FIXED, PT_VAR]).toEqual([0x100, 0x200]);
  });

  it('handles: one listing per handle type, as a handle with that type in the top byte', () => {
    expect(listingStarts(TPM_CAP.HANDLES)).toEqual([0x00000000, 0x01000000, 0x02000000, 0x03000000, 0x40000000, 0x80000000, 0x81000000]);
  });

  it('auth policies start at TPM_RH_FIRST, ACTs at TPM_RH_ACT_0', () => {
    expect(listingStarts(TPM_CAP.AUTH_POLICIES)).toEqual([0x40000000]);
    expect(listingStarts(TPM_CAP.ACT)).toEqual([0x40000110]);
  });

  it('every other capability is one listing from 0', () => {
    for (const cap of [TPM_CAP.ALGS, TPM_CAP.COMMANDS, TPM_CAP.PP_COMMANDS, TPM_CAP.AUDIT_COMMANDS, TPM_CAP.PCRS, TPM_CAP.PCR_PROPERTIES, TPM_CAP.ECC_CURVES, TPM_CAP.VENDOR_PROPERTY]) {
      expect(listingStarts(cap), `capability ${cap}`).toEqual([0]);
    }
  });
});

describe('nextProperty: the property after the last item of a page', () => {
  const algs = TPMA_ALGORITHM.of({ hash: true });

  it('ALGS: the algorithm ID after the last', () => {
    expect(nextProperty(data(TPM_CAP.ALGS, [{ alg: TPM_ALG.RSA, algProperties: algs }, { alg: TPM_ALG.SHA256, algProperties: algs }]))).toBe(0x000c);
  });

  it('HANDLES: the handle after the last', () => {
    expect(nextProperty(data(TPM_CAP.HANDLES, [0x81000001, 0x81010001]))).toBe(0x81010002);
    expect(nextProperty(data(TPM_CAP.HANDLES, [0x80000000]))).toBe(0x80000001);
  });

  it('COMMANDS: commandIndex + 1 with the vendor bit, the other TPMA_CC bits dropped', () => {
    const getRandom = TPMA_CC.of({ commandIndex: TPM_CC.GetRandom, cHandles: 0, flushed: true, nv: true, extensive: true, rHandle: true });
    expect(TPMA_CC.toWord(getRandom) & 0xffff0000).not.toBe(0); // the attribute bits really are set
    expect(nextProperty(data(TPM_CAP.COMMANDS, [TPMA_CC.of({ commandIndex: 0x11f, cHandles: 2 }), getRandom]))).toBe(0x17c);
    expect(nextProperty(data(TPM_CAP.COMMANDS, [TPMA_CC.of({ commandIndex: 0x0001, V: true, cHandles: 7 })]))).toBe(0x20000002);
  });

  it('PP_COMMANDS and AUDIT_COMMANDS: the command code after the last', () => {
    expect(nextProperty(data(TPM_CAP.PP_COMMANDS, [0x11f, 0x12a]))).toBe(0x12b);
    expect(nextProperty(data(TPM_CAP.AUDIT_COMMANDS, [0x17b]))).toBe(0x17c);
  });

  it('PCRS: never (one answer holds every bank)', () => {
    expect(nextProperty(data(TPM_CAP.PCRS, [{ hash: TPM_ALG.SHA256, pcrSelect: Uint8Array.of(0xff, 0xff, 0xff) }]))).toBeUndefined();
  });

  it('TPM_PROPERTIES: the property tag after the last', () => {
    expect(nextProperty(data(TPM_CAP.TPM_PROPERTIES, [{ property: 0x100, value: 0x322e3000 }, { property: 0x12e, value: 7 }]))).toBe(0x12f);
  });

  it('PCR_PROPERTIES: the TPM_PT_PCR tag after the last', () => {
    expect(nextProperty(data(TPM_CAP.PCR_PROPERTIES, [{ tag: 0x00, pcrSelect: Uint8Array.of(0xff, 0xff, 0xff) }, { tag: 0x14, pcrSelect: Uint8Array.of(0, 0, 0) }]))).toBe(0x15);
  });

  it('ECC_CURVES: the curve ID after the last', () => {
    expect(nextProperty(data(TPM_CAP.ECC_CURVES, [TPM_ECC.NIST_P256, TPM_ECC.NIST_P384]))).toBe(0x0005);
  });

  it('AUTH_POLICIES and ACT: the handle after the last', () => {
    const policy = { handle: 0x4000000b, policyHash: { hashAlg: TPM_ALG.SHA256, digest: new Uint8Array(32) } };
    expect(nextProperty(data(TPM_CAP.AUTH_POLICIES, [policy]))).toBe(0x4000000c);
    expect(nextProperty(data(TPM_CAP.ACT, [{ handle: 0x40000110, timeout: 0, attributes: TPMA_ACT.of({}) }]))).toBe(0x40000111);
  });

  it('VENDOR_PROPERTY: the value after the last', () => {
    expect(nextProperty(data(TPM_CAP.VENDOR_PROPERTY, [1, 2, 3]))).toBe(4);
  });

  it('an empty page has nothing after it, for every capability', () => {
    for (const cap of Object.values(TPM_CAP)) expect(nextProperty(data(cap, [])), `capability ${cap}`).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------
// readCapability against in-process fakes

interface Request {
  readonly capability: number;
  readonly property: number;
  readonly propertyCount: number;
}

/** A TPM that answers GetCapability with `answer` and records each request. */
function fakeTpm(answer: (req: Request, call: number) => ResponseParams<typeof GetCapability> | Uint8Array) {
  const requests: Request[] = [];
  const transport = inProcessTransport({
    execute: (command) => {
      const parsed = parseCommand(command);
      if (parsed.command !== GetCapability) return Promise.resolve(encodeErrorResponse(0x143));
      const req = parsed.params as CommandParams<typeof GetCapability>;
      requests.push(req);
      const a = answer(req, requests.length);
      return Promise.resolve(a instanceof Uint8Array ? a : encodeResponse(GetCapability, {}, a));
    },
  });
  return { transport, requests };
}

/** The properties a TPM holds, answered like a TPM: from the first ≥ property, within its group, `pageSize` at a time. */
function pagingTpm(pageSize: number) {
  const fixed = Array.from({ length: 35 }, (_, i) => ({ property: 0x100 + i, value: 1000 + i }));
  const variable = Array.from({ length: 7 }, (_, i) => ({ property: 0x200 + i, value: 2000 + i }));
  const fake = fakeTpm((req) => {
    expect(req.capability).toBe(TPM_CAP.TPM_PROPERTIES);
    const group = req.property < PT_VAR ? fixed : variable;
    const from = group.filter((p) => p.property >= req.property);
    const page = from.slice(0, Math.min(pageSize, req.propertyCount));
    return { moreData: page.length < from.length ? 1 : 0, capabilityData: data(TPM_CAP.TPM_PROPERTIES, page) };
  });
  return { ...fake, all: [...fixed, ...variable] };
}

describe('readCapability', () => {
  it('follows moreData page by page (YES three times), then the next group', async () => {
    const { transport, requests, all } = pagingTpm(10);
    const items = await readCapability(transport, TPM_CAP.TPM_PROPERTIES);
    expect(items).toEqual(all);
    // 35 fixed properties: 10, 10, 10 (moreData YES each time), 5 (NO); then 7 variable ones (NO).
    expect(requests.map((r) => r.property)).toEqual([0x100, 0x10a, 0x114, 0x11e, 0x200]);
    expect(requests.every((r) => r.capability === TPM_CAP.TPM_PROPERTIES && r.propertyCount === 0xffff)).toBe(true);
  });

  it('stops at moreData NO even when the page is full', async () => {
    const { transport, requests } = pagingTpm(35);
    expect((await readCapability(transport, TPM_CAP.TPM_PROPERTIES)).length).toBe(42);
    expect(requests.map((r) => r.property)).toEqual([0x100, 0x200]);
  });

  it('handles: pages within each handle type, starting each type at its first handle', async () => {
    const held = [0x80000000, 0x81000001, 0x81000002, 0x81010001, 0x81010002];
    const { transport, requests } = fakeTpm((req) => {
      const sameType = held.filter((h) => h >>> 24 === req.property >>> 24 && h >= req.property);
      return { moreData: sameType.length > 1 ? 1 : 0, capabilityData: data(TPM_CAP.HANDLES, sameType.slice(0, 1)) };
    });
    const items: CapabilityItem<typeof TPM_CAP.HANDLES>[] = await readCapability(transport, TPM_CAP.HANDLES);
    expect(items).toEqual(held);
    expect(requests.map((r) => r.property)).toEqual([
      0x00000000, 0x01000000, 0x02000000, 0x03000000, 0x40000000, 0x80000000,
      0x81000000, 0x81000002, 0x81000003, 0x81010002, // persistent: moreData YES three times
    ]);
  });

  it('explicit starts replace listingStarts', async () => {
    const { transport, requests } = pagingTpm(100);
    const items = await readCapability(transport, TPM_CAP.TPM_PROPERTIES, [0x120]);
    expect(items.map((p) => p.property)).toEqual(Array.from({ length: 3 }, (_, i) => 0x120 + i));
    expect(requests.map((r) => r.property)).toEqual([0x120]);
  });

  it('a TPM that answers another capability is transport.protocol', async () => {
    const { transport } = fakeTpm(() => ({ moreData: 0, capabilityData: data(TPM_CAP.ALGS, []) }));
    const e = await readCapability(transport, TPM_CAP.TPM_PROPERTIES).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(TransportError);
    expect((e as TransportError).code).toBe('transport.protocol');
    expect((e as Error).message).toMatch(/0x6.*0x0/);
  });

  it('a TPM that always says moreData YES, with new items each time, is cut off with transport.protocol', async () => {
    const { transport, requests } = fakeTpm((req) => ({ moreData: 1, capabilityData: data(TPM_CAP.HANDLES, [req.property >>> 0]) }));
    const e = await readCapability(transport, TPM_CAP.HANDLES, [0x80000000]).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(TransportError);
    expect((e as TransportError).code).toBe('transport.protocol');
    expect(requests.length).toBe(4096);
  });

  it('a TPM that always says moreData YES with an empty list does not loop: it stops at the first such page', async () => {
    const { transport, requests } = fakeTpm((req) => ({ moreData: 1, capabilityData: data(req.capability, []) }));
    await readCapability(transport, TPM_CAP.TPM_PROPERTIES).catch(() => undefined);
    expect(requests.map((r) => r.property)).toEqual([PT_FIXED]);
  });

  // An empty page with moreData YES would otherwise end the listing silently with a possibly incomplete list.
  it('a TPM that says moreData YES with an empty list is a typed error', async () => {
    const { transport } = fakeTpm((req) => ({ moreData: 1, capabilityData: data(req.capability, []) }));
    const e = await readCapability(transport, TPM_CAP.TPM_PROPERTIES).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(TransportError);
    expect((e as TransportError).code).toBe('transport.protocol');
  });

  it('a TPM error is a TpmError naming GetCapability', async () => {
    // TPM_RC_VALUE on parameter 1, as swtpm answers the vendor capability.
    const { transport } = fakeTpm(() => encodeErrorResponse(0x1c4));
    const e = await readCapability(transport, TPM_CAP.VENDOR_PROPERTY).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(TpmError);
    expect((e as TpmError).rc).toBe(0x1c4);
    expect((e as TpmError).parameter).toBe(1);
    expect((e as TpmError).commandCode).toBe(TPM_CC.GetCapability);
  });
});
