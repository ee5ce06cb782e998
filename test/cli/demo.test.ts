/** The README's main job (`npm start`) works end to end against a private swtpm. */
import { expect, it } from 'vitest';
import { demo } from '../../src/cli/demo.js';
import { describeWithSwtpm } from '../support/swtpm.js';

describeWithSwtpm('main job (demo against swtpm)', () => {
  it('prints properties, PCR banks and EKs whose Names match', async () => {
    const lines: string[] = [];
    const ok = await demo((l) => lines.push(l));
    expect(ok).toBe(true);
    const text = lines.join('\n');
    expect(text).toMatch(/manufacturer\s+IBM/);
    expect(text).toMatch(/SHA256\s+24 PCRs: 18 all-zero, 6 all-ones, 0 extended/);
    expect(text).toMatch(/RSA-2048 \(L-1\).*Name 000b[0-9a-f]{64}\s+matches the TPM/);
    expect(text).toMatch(/ECC P-256 \(L-2\).*Name 000b[0-9a-f]{64}\s+matches the TPM/);
    expect(lines.at(-1)).toBe('swtpm stopped');
  });
});
