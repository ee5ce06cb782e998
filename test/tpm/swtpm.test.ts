/**
 * The core against a real, independent TPM (Debian's swtpm, libtpms): every
 * command below is marshaled from its declaration and its response decoded
 * through the schema, over both transports.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { readCapability } from '../../src/tpm/capability.js';
import {
  CreatePrimary,
  FlushContext,
  GetCapability,
  GetCommandAuditDigest,
  GetRandom,
  NV_DefineSpace,
  NV_Read,
  NV_ReadPublic,
  NV_UndefineSpace,
  NV_Write,
  PCR_Extend,
  PCR_Read,
  ReadPublic,
  SetCommandCodeAuditStatus,
  Startup,
} from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_CAP, TPM_HT, TPM_NT, TPM_RH, TPM_ST, TPM_SU, TPM_PT } from '../../src/tpm/constants.js';
import { cpHash, rpHash } from '../../src/tpm/cphash.js';
import { encodeParams, frameCommand, parseResponse } from '../../src/tpm/frame.js';
import { nvName, objectName } from '../../src/tpm/names.js';
import { pcrSelection, readPcrs } from '../../src/tpm/pcr.js';
import { isRc, TPM_RC, TpmError } from '../../src/tpm/rc.js';
import { runCommand } from '../../src/tpm/run.js';
import { eccEkTemplate, eccSrkTemplate, rsaEkTemplate, rsaSrkTemplate } from '../../src/tpm/templates.js';
import { MssimTransport, SwtpmTransport, type Transport } from '../../src/tpm/transport/index.js';
import { TPMA_NV, type TPMT_PUBLIC } from '../../src/tpm/types/index.js';
import { describeWithSwtpm, startSwtpm, type SwtpmInstance } from '../support/swtpm.js';

const DIGEST_NAME: Record<number, string> = { [TPM_ALG.SHA1]: 'sha1', [TPM_ALG.SHA256]: 'sha256', [TPM_ALG.SHA384]: 'sha384', [TPM_ALG.SHA512]: 'sha512' };

describeWithSwtpm('TPM core against swtpm', () => {
  let sw: SwtpmInstance;
  let t: Transport;

  beforeAll(async () => {
    sw = await startSwtpm();
    t = new SwtpmTransport({ port: sw.port, ctrlPort: sw.ctrlPort });
    await runCommand(t, Startup, {}, { startupType: TPM_SU.CLEAR });
  });
  afterAll(async () => {
    await t?.close();
    await sw?.stop();
  });

  it('a second Startup is refused with TPM_RC_INITIALIZE, decoded', async () => {
    const err = await runCommand(t, Startup, {}, { startupType: TPM_SU.CLEAR }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TpmError);
    expect(isRc(err, TPM_RC.INITIALIZE)).toBe(true);
    expect((err as TpmError).commandCode).toBe(Startup.code);
  });

  it('GetCapability: every capability swtpm answers, all pages, decoded', async () => {
    const props = await readCapability(t, TPM_CAP.TPM_PROPERTIES);
    const byTag = new Map(props.map((p) => [p.property, p.value]));
    // libtpms: family "2.0", manufacturer "IBM", 24 PCRs, 4096-byte commands.
    expect(byTag.get(TPM_PT.FAMILY_INDICATOR)).toBe(0x322e3000);
    expect(Buffer.from([byTag.get(TPM_PT.MANUFACTURER)! >>> 24, (byTag.get(TPM_PT.MANUFACTURER)! >>> 16) & 0xff, (byTag.get(TPM_PT.MANUFACTURER)! >>> 8) & 0xff]).toString()).toBe('IBM');
    expect(byTag.get(TPM_PT.PCR_COUNT)).toBe(24);
    expect(byTag.get(TPM_PT.MAX_COMMAND_SIZE)).toBe(4096);
    // Both groups (fixed from 0x100, variable from 0x200) came back, sorted, each once.
    expect(props.some((p) => p.property >= 0x200)).toBe(true);
    const tags = props.map((p) => p.property);
    expect(tags).toEqual([...new Set(tags)].sort((a, b) => a - b));

    const algs = (await readCapability(t, TPM_CAP.ALGS)).map((a) => a.alg);
    expect(algs).toEqual(expect.arrayContaining([TPM_ALG.RSA, TPM_ALG.SHA256, TPM_ALG.ECC, TPM_ALG.AES, TPM_ALG.CFB]));

    const commands = await readCapability(t, TPM_CAP.COMMANDS);
    expect(commands.map((c) => c.commandIndex)).toEqual(expect.arrayContaining([Startup.code, CreatePrimary.code, NV_Read.code]));
    expect(commands.length).toBe(byTag.get(TPM_PT.TOTAL_COMMANDS));

    const pcrs = await readCapability(t, TPM_CAP.PCRS);
    expect(pcrs.map((s) => s.hash)).toEqual(expect.arrayContaining([TPM_ALG.SHA1, TPM_ALG.SHA256]));

    const pcrProps = await readCapability(t, TPM_CAP.PCR_PROPERTIES);
    expect(pcrProps.length).toBeGreaterThan(0);
    const curves = await readCapability(t, TPM_CAP.ECC_CURVES);
    expect(curves).toEqual(expect.arrayContaining([0x0003, 0x0004]));
    for (const ht of [TPM_HT.PCR, TPM_HT.NV_INDEX, TPM_HT.PERMANENT, TPM_HT.TRANSIENT, TPM_HT.PERSISTENT]) {
      const handles = await readCapability(t, TPM_CAP.HANDLES, [(ht << 24) >>> 0]);
      if (ht === TPM_HT.PCR) expect(handles.length).toBe(24);
      if (ht === TPM_HT.PERMANENT) expect(handles).toEqual(expect.arrayContaining([TPM_RH.OWNER, TPM_RH.ENDORSEMENT, TPM_RH.PLATFORM]));
    }
    const pp = await readCapability(t, TPM_CAP.PP_COMMANDS);
    const audit = await readCapability(t, TPM_CAP.AUDIT_COMMANDS);
    const policies = await readCapability(t, TPM_CAP.AUTH_POLICIES);
    const acts = await readCapability(t, TPM_CAP.ACT);
    // libtpms: PP_Commands needs physical presence; SetCommandCodeAuditStatus is always audited.
    expect(pp).toEqual([0x12d]);
    expect(audit).toEqual([0x140]);
    // A fresh TPM: the four hierarchies (owner, lockout, endorsement, platform), no policy set.
    expect(policies.map((p) => p.handle)).toEqual([TPM_RH.OWNER, TPM_RH.LOCKOUT, TPM_RH.ENDORSEMENT, TPM_RH.PLATFORM]);
    expect(policies.every((p) => p.policyHash.hashAlg === TPM_ALG.NULL)).toBe(true);
    // libtpms 0.9 implements no ACT: the answer decodes as an empty list.
    expect(acts).toEqual([]);
    // swtpm refuses the vendor capability: TPM_RC_VALUE on parameter 1 (0x1C4).
    const vendor = await runCommand(t, GetCapability, {}, { capability: TPM_CAP.VENDOR_PROPERTY, property: 0, propertyCount: 1 }).catch((e: unknown) => e);
    expect(vendor).toBeInstanceOf(TpmError);
    expect((vendor as TpmError).rc).toBe(0x1c4);
    expect((vendor as TpmError).parameter).toBe(1);
  });

  it('GetRandom returns fresh bytes of the asked size', async () => {
    const a = await runCommand(t, GetRandom, {}, { bytesRequested: 16 });
    const b = await runCommand(t, GetRandom, {}, { bytesRequested: 16 });
    expect(a.params.randomBytes.length).toBe(16);
    expect(Buffer.compare(a.params.randomBytes, b.params.randomBytes)).not.toBe(0);
  });

  it('PCR_Read of all banks, then PCR_Extend changes every bank as H(old ‖ digest)', async () => {
    const before = await readPcrs(t);
    expect([...before.keys()].sort()).toEqual([TPM_ALG.SHA1, TPM_ALG.SHA256, TPM_ALG.SHA384, TPM_ALG.SHA512].sort());
    for (const [alg, bank] of before) {
      expect([...bank.keys()]).toEqual(Array.from({ length: 24 }, (_, i) => i));
      expect(bank.get(16)!.every((b) => b === 0)).toBe(true); // the debug PCR starts at zero
      expect(bank.get(16)!.length).toBe(createHash(DIGEST_NAME[alg]!).digest().length);
    }
    const digests = [...before.keys()].map((alg) => ({ hashAlg: alg, digest: createHash(DIGEST_NAME[alg]!).update('trustroot').digest() }));
    await runCommand(t, PCR_Extend, { pcrHandle: 16 }, { digests: digests as never });
    const after = await readPcrs(t);
    for (const d of digests) {
      const expected = createHash(DIGEST_NAME[d.hashAlg]!).update(before.get(d.hashAlg)!.get(16)!).update(d.digest).digest();
      expect(Buffer.from(after.get(d.hashAlg)!.get(16)!)).toEqual(expected);
      expect(after.get(d.hashAlg)!.get(15)).toEqual(before.get(d.hashAlg)!.get(15));
    }
  });

  const templates: Array<[string, number, () => TPMT_PUBLIC]> = [
    ['RSA-2048 EK (L-1)', TPM_RH.ENDORSEMENT, rsaEkTemplate],
    ['ECC P-256 EK (L-2)', TPM_RH.ENDORSEMENT, eccEkTemplate],
    ['RSA-2048 SRK', TPM_RH.OWNER, rsaSrkTemplate],
    ['ECC P-256 SRK', TPM_RH.OWNER, eccSrkTemplate],
  ];
  for (const [label, hierarchy, template] of templates) {
    it(`CreatePrimary ${label}: ReadPublic's Name equals the Name computed from the public area`, async () => {
      const created = await runCommand(
        t,
        CreatePrimary,
        { primaryHandle: hierarchy },
        { inSensitive: { userAuth: new Uint8Array(0), data: new Uint8Array(0) }, inPublic: template(), outsideInfo: new Uint8Array(0), creationPCR: [] },
      );
      const handle = created.handles.objectHandle;
      expect(handle >>> 24).toBe(TPM_HT.TRANSIENT);
      try {
        const pub = created.params.outPublic;
        expect(pub.type).toBe(template().type);
        if (pub.type === TPM_ALG.RSA) expect(pub.unique.length).toBe(256);
        if (pub.type === TPM_ALG.ECC) expect(pub.unique.x.length).toBe(32);
        const computed = objectName(pub);
        expect(Buffer.from(created.params.name)).toEqual(Buffer.from(computed));
        const read = await runCommand(t, ReadPublic, { objectHandle: handle }, {});
        expect(read.params.outPublic).toEqual(pub);
        expect(Buffer.from(read.params.name)).toEqual(Buffer.from(computed));
        // The same template on the same seed gives the same key (and Name) again.
        const again = await runCommand(t, CreatePrimary, { primaryHandle: hierarchy }, { inSensitive: { userAuth: new Uint8Array(0), data: new Uint8Array(0) }, inPublic: template(), outsideInfo: new Uint8Array(0), creationPCR: [] });
        expect(Buffer.from(again.params.name)).toEqual(Buffer.from(computed));
        await runCommand(t, FlushContext, {}, { flushHandle: again.handles.objectHandle });
      } finally {
        await runCommand(t, FlushContext, {}, { flushHandle: handle });
      }
      // A flushed handle is no longer loaded: TPM_RC_REFERENCE_H0.
      const gone = await runCommand(t, ReadPublic, { objectHandle: handle }, {}).catch((e: unknown) => e);
      expect(isRc(gone, TPM_RC.REFERENCE_H0)).toBe(true);
    });
  }

  it('NV_DefineSpace, Write, Read, ReadPublic, UndefineSpace; the NV Name is computed from its public area', async () => {
    const nvIndex = 0x01500123;
    const publicInfo = {
      nvIndex,
      nameAlg: TPM_ALG.SHA256,
      attributes: TPMA_NV.of({ OWNERWRITE: true, OWNERREAD: true, AUTHWRITE: true, AUTHREAD: true, NO_DA: true, TPM_NT: TPM_NT.ORDINARY }),
      authPolicy: new Uint8Array(0),
      dataSize: 64,
    } as const;
    await runCommand(t, NV_DefineSpace, { authHandle: TPM_RH.OWNER }, { auth: new Uint8Array(0), publicInfo });
    try {
      const data = Uint8Array.from({ length: 40 }, (_, i) => i * 3);
      await runCommand(t, NV_Write, { authHandle: TPM_RH.OWNER, nvIndex }, { data, offset: 8 });
      const read = await runCommand(t, NV_Read, { authHandle: nvIndex, nvIndex }, { size: 40, offset: 8 });
      expect(Buffer.from(read.params.data)).toEqual(Buffer.from(data));
      const pub = await runCommand(t, NV_ReadPublic, { nvIndex }, {});
      expect(pub.params.nvPublic.attributes.WRITTEN).toBe(true);
      expect(pub.params.nvPublic.dataSize).toBe(64);
      expect(Buffer.from(pub.params.nvName)).toEqual(Buffer.from(nvName(pub.params.nvPublic)));
      // Reading past the end is the TPM's error, decoded with its parameter index.
      const past = await runCommand(t, NV_Read, { authHandle: nvIndex, nvIndex }, { size: 40, offset: 32 }).catch((e: unknown) => e);
      expect(isRc(past, TPM_RC.NV_RANGE)).toBe(true);
    } finally {
      await runCommand(t, NV_UndefineSpace, { authHandle: TPM_RH.OWNER, nvIndex }, {});
    }
    const gone = await runCommand(t, NV_ReadPublic, { nvIndex }, {}).catch((e: unknown) => e);
    expect(isRc(gone, TPM_RC.HANDLE)).toBe(true);
  });

  it('cpHash and rpHash equal what swtpm folds into its command audit digest', async () => {
    // Part 3 §21.2 / §18.6: an audited command extends auditDigest = H(auditDigest ‖ cpHash ‖ rpHash).
    await runCommand(t, SetCommandCodeAuditStatus, { auth: TPM_RH.OWNER }, { auditAlg: TPM_ALG.SHA256, setList: [], clearList: [] });
    await runCommand(t, SetCommandCodeAuditStatus, { auth: TPM_RH.OWNER }, { auditAlg: TPM_ALG.NULL, setList: [GetRandom.code], clearList: [] });
    const auditDigest = async (): Promise<Uint8Array> => {
      const { params } = await runCommand(t, GetCommandAuditDigest, { privacyHandle: TPM_RH.ENDORSEMENT, signHandle: TPM_RH.NULL }, { qualifyingData: new Uint8Array(0), inScheme: { scheme: TPM_ALG.NULL } });
      const info = params.auditInfo;
      if (info.type !== TPM_ST.ATTEST_COMMAND_AUDIT) throw new Error(`attest type 0x${info.type.toString(16)}`);
      expect(info.attested.digestAlg).toBe(TPM_ALG.SHA256);
      return info.attested.auditDigest;
    };
    const before = await auditDigest();
    // An audited command whose response parameters we keep exactly as received.
    const paramBytes = encodeParams(GetRandom, { bytesRequested: 12 });
    const response = await t.send(frameCommand(GetRandom, {}, paramBytes));
    const parsed = parseResponse(GetRandom, response);
    expect(parsed.params.randomBytes.length).toBe(12);
    const after = await auditDigest();
    const cp = cpHash(TPM_ALG.SHA256, GetRandom.code, [], paramBytes);
    const rp = rpHash(TPM_ALG.SHA256, GetRandom.code, parsed.paramBytes);
    expect(Buffer.from(after)).toEqual(createHash('sha256').update(before).update(cp).update(rp).digest());
    // And the formula is not satisfied by chance: a wrong rpHash gives another digest.
    expect(Buffer.from(after)).not.toEqual(createHash('sha256').update(before).update(cp).update(rpHash(TPM_ALG.SHA256, GetRandom.code, new Uint8Array(14))).digest());

    // A command with a handle: cpHash covers the object's Name, computed from its public area.
    await runCommand(t, SetCommandCodeAuditStatus, { auth: TPM_RH.OWNER }, { auditAlg: TPM_ALG.NULL, setList: [ReadPublic.code], clearList: [GetRandom.code] });
    const srk = await runCommand(t, CreatePrimary, { primaryHandle: TPM_RH.OWNER }, { inSensitive: { userAuth: new Uint8Array(0), data: new Uint8Array(0) }, inPublic: eccSrkTemplate(), outsideInfo: new Uint8Array(0), creationPCR: [] });
    try {
      const d0 = await auditDigest();
      const rsp = parseResponse(ReadPublic, await t.send(frameCommand(ReadPublic, { objectHandle: srk.handles.objectHandle }, new Uint8Array(0))));
      const d1 = await auditDigest();
      const cpRead = cpHash(TPM_ALG.SHA256, ReadPublic.code, [objectName(srk.params.outPublic)], new Uint8Array(0));
      expect(Buffer.from(d1)).toEqual(createHash('sha256').update(d0).update(cpRead).update(rpHash(TPM_ALG.SHA256, ReadPublic.code, rsp.paramBytes)).digest());
    } finally {
      await runCommand(t, FlushContext, {}, { flushHandle: srk.handles.objectHandle });
    }
    await runCommand(t, SetCommandCodeAuditStatus, { auth: TPM_RH.OWNER }, { auditAlg: TPM_ALG.NULL, setList: [], clearList: [ReadPublic.code] });
  });

  it('the mssim transport carries the same commands through swtpm’s command port', async () => {
    await t.close(); // swtpm serves one client at a time (tpm-peers.md §6.1)
    const ms = new MssimTransport({ port: sw.port });
    try {
      const r = await runCommand(ms, GetRandom, {}, { bytesRequested: 8 });
      expect(r.params.randomBytes.length).toBe(8);
      const pcrs = await runCommand(ms, PCR_Read, {}, { pcrSelectionIn: [pcrSelection(TPM_ALG.SHA256, [0, 1, 2])] });
      expect(pcrs.params.pcrValues.length).toBe(3);
    } finally {
      await ms.close();
    }
  });
});
