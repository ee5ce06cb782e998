/**
 * describe(tpm) against swtpm and our simulator, checked independently: every property,
 * algorithm, command, PCR bank and ECC curve equals what Debian's
 * tpm2_getcap (tpm2-tss, another client stack) reads from the same TPM, and
 * the limits it reports hold when tried: exactly `loadedObjects` objects load
 * before TPM_RC_OBJECT_MEMORY, `pcrCount` PCRs are readable in each bank.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describe as describeTpmOf } from '../../src/client/describe.js';
import { Tpm } from '../../src/client/index.js';
import { readCapability } from '../../src/tpm/capability.js';
import { CreatePrimary, FlushContext, Startup } from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_CAP, TPM_PT, TPM_RH, TPM_SU } from '../../src/tpm/constants.js';
import type { TpmDescription } from '../../src/tpm/description.js';
import { pcrSelection, readPcrs } from '../../src/tpm/pcr.js';
import { isRc, TPM_RC } from '../../src/tpm/rc.js';
import { eccSrkTemplate } from '../../src/tpm/templates.js';
import { SwtpmTransport } from '../../src/tpm/transport/index.js';
import type { TPMS_PCR_SELECTION } from '../../src/tpm/types/index.js';
import { describeEachTpm, startTpm, type TpmUnderTest } from '../support/tpm-under-test.js';
import { describeWithTpm2Tools, startTpm2Tools } from '../support/tpm2-tools.js';

/** `NAME:\n  key: value` blocks of tpm2_getcap's YAML, as name → key → value. */
function yamlBlocks(text: string): Map<string, Map<string, string>> {
  const out = new Map<string, Map<string, string>>();
  let current: Map<string, string> | undefined;
  for (const line of text.split('\n')) {
    const top = /^([A-Za-z0-9_]+):\s*(.*)$/.exec(line);
    if (top !== null) {
      current = new Map();
      out.set(top[1]!, current);
      if (top[2] !== '') current.set('', top[2]!);
      continue;
    }
    const sub = /^\s+([A-Za-z0-9_]+):\s*(.*)$/.exec(line);
    if (sub !== null && current !== undefined) current.set(sub[1]!, sub[2]!.replace(/^"|"$/g, ''));
  }
  return out;
}
const num = (s: string | undefined): number => {
  if (s === undefined) throw new Error('missing value');
  return Number(s);
};

// Each TPM through tpm2-tools: skipped (or failing in CI) without them.
describeWithTpm2Tools('describe and tpm2_getcap', () => {
  describeEachTpm('describe', (kind) => {
    let sw: TpmUnderTest;
    let tpm: Tpm;
    let d: TpmDescription;
    const getcap = new Map<string, string>();
    let cwd: string;

    beforeAll(async () => {
      sw = await startTpm(kind);
      const first = new Tpm(new SwtpmTransport({ port: sw.port, ctrlPort: sw.ctrlPort }));
      await first.run(Startup, {}, { startupType: TPM_SU.CLEAR });
      d = await describeTpmOf(first);
      // swtpm serves one client at a time: the tools run while the client is disconnected (tpm-peers.md §6.1).
      await first.close();
      cwd = mkdtempSync(join(tmpdir(), 'trustroot-describe-'));
      const tools = await startTpm2Tools(sw, { cwd, mode: 'direct' });
      try {
        for (const what of ['properties-fixed', 'algorithms', 'commands', 'pcrs', 'ecc-curves']) getcap.set(what, (await tools.run('getcap', [what])).stdout);
      } finally {
        await tools.stop();
      }
      tpm = new Tpm(new SwtpmTransport({ port: sw.port, ctrlPort: sw.ctrlPort }));
    }, 60_000);
    afterAll(async () => {
      await tpm?.close();
      await sw?.stop();
      if (cwd !== undefined) rmSync(cwd, { recursive: true, force: true });
    });

    it('properties: manufacturer, vendor strings, firmware, spec and platform-spec versions, limits as tpm2_getcap reads them', () => {
      const p = yamlBlocks(getcap.get('properties-fixed')!);
      const raw = (name: string): number => num(p.get(`TPM2_PT_${name}`)?.get('raw'));
      expect(d.manufacturerId).toBe(raw('MANUFACTURER'));
      expect(d.manufacturer).toBe(p.get('TPM2_PT_MANUFACTURER')!.get('value'));
      // design.md "Identity": libtpms says IBM; our simulator TRST, never a registered vendor.
      expect(d.manufacturer).toBe(kind === 'swtpm' ? 'IBM' : 'TRST');
      // The vendor string is the four words' bytes in order, trailing NULs dropped.
      const bytes = Buffer.concat([1, 2, 3, 4].map((i) => {
        const b = Buffer.alloc(4);
        b.writeUInt32BE(raw(`VENDOR_STRING_${i}`));
        return b;
      }));
      expect(d.vendorString).toBe(bytes.toString('latin1').replace(/\0+$/, '').replace(/\0/g, ' '));
      expect(d.vendorTpmType).toBe(raw('VENDOR_TPM_TYPE'));
      expect(d.firmwareVersion).toBe((BigInt(raw('FIRMWARE_VERSION_1')) << 32n) | BigInt(raw('FIRMWARE_VERSION_2')));
      expect(d.spec.family).toBe(p.get('TPM2_PT_FAMILY_INDICATOR')!.get('value'));
      expect(d.spec.level).toBe(raw('LEVEL'));
      expect(d.spec.revision).toBe(raw('REVISION'));
      expect(d.spec.year).toBe(raw('YEAR'));
      expect(d.spec.dayOfYear).toBe(raw('DAY_OF_YEAR'));
      expect(d.platformSpec.revision).toBe(raw('PS_REVISION'));
      expect(d.platformSpec.year).toBe(raw('PS_YEAR'));
      expect(d.limits).toEqual({
        inputBuffer: raw('INPUT_BUFFER'),
        maxCommandSize: raw('MAX_COMMAND_SIZE'),
        maxResponseSize: raw('MAX_RESPONSE_SIZE'),
        maxDigest: raw('MAX_DIGEST'),
        nvBufferMax: raw('NV_BUFFER_MAX'),
        nvIndexMax: raw('NV_INDEX_MAX'),
        pcrCount: raw('PCR_COUNT'),
        loadedObjects: raw('HR_TRANSIENT_MIN'),
        loadedSessions: raw('HR_LOADED_MIN'),
        activeSessions: raw('ACTIVE_SESSIONS_MAX'),
        persistentObjects: raw('HR_PERSISTENT_MIN'),
      });
      // The command list agrees with the TPM's own count of its commands.
      expect(d.commands.length).toBe(raw('TOTAL_COMMANDS'));
    });

    it('algorithms, commands, PCR banks and ECC curves: the same sets as tpm2_getcap', () => {
      const algs = [...yamlBlocks(getcap.get('algorithms')!).values()].map((b) => num(b.get('value')));
      expect([...d.algorithms.map((a) => a.alg)].sort((a, b) => a - b)).toEqual([...algs].sort((a, b) => a - b));
      const sha256 = d.algorithms.find((a) => a.alg === TPM_ALG.SHA256)!;
      expect(sha256.attributes.hash).toBe(true);
      expect(d.algorithms.find((a) => a.alg === TPM_ALG.RSA)!.attributes.asymmetric).toBe(true);

      // Every command block carries its index and vendor bit; unnamed ones too.
      const cmds = [...getcap.get('commands')!.matchAll(/commandIndex:\s*(0x[0-9a-fA-F]+)[\s\S]*?\bV:\s*(\d)/g)].map((m) => num(m[1]) | (num(m[2]) << 29));
      expect([...d.commands].sort((a, b) => a - b)).toEqual(cmds.sort((a, b) => a - b));

      const banks = [...getcap.get('pcrs')!.matchAll(/-\s*(sha1|sha256|sha384|sha512|sm3_256):\s*\[([^\]]*)\]/g)].map((m) => ({
        name: m[1]!.toUpperCase(),
        pcrs: m[2]!.split(',').map((x) => x.trim()).filter((x) => x !== '').map(Number),
      }));
      expect(d.pcrBanks.map((b) => ({ name: b.name, pcrs: [...b.pcrs] }))).toEqual(banks);

      const curves = [...getcap.get('ecc-curves')!.matchAll(/:\s*(0x[0-9a-fA-F]+)/g)].map((m) => num(m[1]));
      expect([...d.eccCurves]).toEqual(curves);
    });

    it('the limits hold on the TPM: loadedObjects primaries load and one more is TPM_RC_OBJECT_MEMORY; pcrCount PCRs per bank', async () => {
      const loaded: number[] = [];
      const make = () =>
        tpm.run(CreatePrimary, { primaryHandle: TPM_RH.OWNER }, { inSensitive: { userAuth: new Uint8Array(0), data: new Uint8Array(0) }, inPublic: eccSrkTemplate(), outsideInfo: new Uint8Array(0), creationPCR: [] });
      try {
        for (let i = 0; i < d.limits.loadedObjects; i++) loaded.push((await make()).handles.objectHandle);
        const over = await make().catch((e: unknown) => e);
        expect(isRc(over, TPM_RC.OBJECT_MEMORY)).toBe(true);
      } finally {
        for (const h of loaded) await tpm.run(FlushContext, {}, { flushHandle: h });
      }
      expect(loaded.length).toBe(d.limits.loadedObjects);

      const all = Array.from({ length: d.limits.pcrCount }, (_, i) => i);
      const values = await readPcrs(tpm.transport, d.pcrBanks.map((b) => pcrSelection(b.hashAlg as TPMS_PCR_SELECTION['hash'], all)));
      for (const bank of d.pcrBanks) expect([...values.get(bank.hashAlg)!.keys()]).toEqual(all);

      // describe itself needs no authorization and leaves nothing loaded.
      const again = await describeTpmOf(tpm);
      expect(again.firmwareVersion).toBe(d.firmwareVersion);
      expect(await readCapability(tpm.transport, TPM_CAP.HANDLES, [0x80000000])).toEqual([]);
      const props = await readCapability(tpm.transport, TPM_CAP.TPM_PROPERTIES, [TPM_PT.MANUFACTURER]);
      expect(props[0]?.value).toBe(d.manufacturerId);
    });
  });
});
