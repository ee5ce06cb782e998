/** TpmDescription from GetCapability answers: pure rules, then swtpm's own description. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCapability } from '../../src/tpm/capability.js';
import { Startup } from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_CAP, TPM_PT, TPM_SU } from '../../src/tpm/constants.js';
import { describeTpm, propertyText, type TpmDescription } from '../../src/tpm/description.js';
import { pcrSelection } from '../../src/tpm/pcr.js';
import { runCommand } from '../../src/tpm/run.js';
import { SwtpmTransport } from '../../src/tpm/transport/index.js';
import { TPMA_ALGORITHM, TPMA_CC } from '../../src/tpm/types/index.js';
import { describeWithSwtpm, startSwtpm, type SwtpmInstance } from '../support/swtpm.js';

const word = (s: string): number => Buffer.from(s.padEnd(4, '\0'), 'latin1').readUInt32BE(0);

describe('describeTpm (pure)', () => {
  it('reads packed ASCII, the 64-bit firmware version and drops unknown attribute bits', () => {
    const d = describeTpm({
      properties: [
        { property: TPM_PT.MANUFACTURER, value: word('IFX') },
        { property: TPM_PT.VENDOR_STRING_1, value: word('SLB9') },
        { property: TPM_PT.VENDOR_STRING_2, value: word('672') },
        { property: TPM_PT.FIRMWARE_VERSION_1, value: 0x0007003e },
        { property: TPM_PT.FIRMWARE_VERSION_2, value: 0x00000100 },
        { property: TPM_PT.FAMILY_INDICATOR, value: word('2.0') },
        { property: TPM_PT.REVISION, value: 138 },
        // ownerAuthSet, inLockout, and bit 20 that rev 1.59 does not define.
        { property: TPM_PT.PERMANENT, value: 0x1 | 0x200 | 0x100000 },
      ],
      algorithms: [{ alg: TPM_ALG.SHA256, algProperties: TPMA_ALGORITHM.of({ hash: true }) }],
      commands: [TPMA_CC.of({ commandIndex: 0x17a, cHandles: 0 }), TPMA_CC.of({ commandIndex: 0x0001, V: true })],
      pcrs: [pcrSelection(TPM_ALG.SHA256, [0, 1, 23]), pcrSelection(TPM_ALG.SHA1, [])],
      eccCurves: [3],
    });
    expect(d.manufacturer).toBe('IFX');
    expect(d.vendorString).toBe('SLB9672');
    expect(d.firmwareVersion).toBe(0x0007003e00000100n);
    expect(d.spec.family).toBe('2.0');
    expect(d.spec.revision).toBe(138);
    expect(d.permanent.ownerAuthSet).toBe(true);
    expect(d.permanent.inLockout).toBe(true);
    expect(d.permanent.endorsementAuthSet).toBe(false);
    expect(d.algorithms).toEqual([{ alg: TPM_ALG.SHA256, name: 'SHA256', attributes: TPMA_ALGORITHM.of({ hash: true }) }]);
    expect(d.commands).toEqual([0x17a, 0x20000001]);
    expect(d.pcrBanks).toEqual([{ hashAlg: TPM_ALG.SHA256, name: 'SHA256', pcrs: [0, 1, 23] }]);
    expect(d.limits.pcrCount).toBe(0); // not reported
  });

  it('propertyText trims NULs and spaces', () => {
    expect(propertyText(word('IBM'))).toBe('IBM');
    expect(propertyText(word('ST '))).toBe('ST');
    expect(propertyText(0)).toBe('');
  });
});

describeWithSwtpm('describeTpm against swtpm', () => {
  let sw: SwtpmInstance;
  let t: SwtpmTransport;
  let d: TpmDescription;
  beforeAll(async () => {
    sw = await startSwtpm();
    t = new SwtpmTransport({ port: sw.port, ctrlPort: sw.ctrlPort });
    await runCommand(t, Startup, {}, { startupType: TPM_SU.CLEAR });
    d = describeTpm({
      properties: await readCapability(t, TPM_CAP.TPM_PROPERTIES),
      algorithms: await readCapability(t, TPM_CAP.ALGS),
      commands: await readCapability(t, TPM_CAP.COMMANDS),
      pcrs: await readCapability(t, TPM_CAP.PCRS),
      eccCurves: await readCapability(t, TPM_CAP.ECC_CURVES),
    });
  });
  afterAll(async () => {
    await t?.close();
    await sw?.stop();
  });

  it('identifies libtpms as IBM "SW TPM", family 2.0, with four 24-PCR banks', () => {
    expect(d.manufacturer).toBe('IBM');
    expect(d.vendorString.replace(/\s+/g, ' ')).toBe('SW TPM');
    expect(d.spec.family).toBe('2.0');
    expect(d.spec.revision).toBeGreaterThanOrEqual(138);
    expect(d.firmwareVersion).toBeGreaterThan(0n);
    expect(d.pcrBanks.map((b) => b.name).sort()).toEqual(['SHA1', 'SHA256', 'SHA384', 'SHA512']);
    expect(d.pcrBanks.every((b) => b.pcrs.length === 24)).toBe(true);
    expect(d.limits).toMatchObject({ maxCommandSize: 4096, nvBufferMax: 1024, loadedObjects: 3, loadedSessions: 3, pcrCount: 24 });
    expect(d.commands).toContain(0x158); // Quote
    expect(d.algorithms.find((a) => a.alg === TPM_ALG.RSA)?.attributes.asymmetric).toBe(true);
    expect(d.eccCurves).toContain(3);
    expect(d.startupClear.shEnable && d.startupClear.ehEnable).toBe(true);
    expect(d.lockout.maxAuthFail).toBeGreaterThan(0);
  });
});
