/** The README's client example, run as written (with an explicit TCTI string) against a private swtpm and our simulator's server. */
import { createHash } from 'node:crypto';
import { expect, it } from 'vitest';
import { createPrimary, eccSigningTemplate, openTransport, sign, Tpm, verifyWithNode } from '../../src/client/index.js';
import { commands, runCommand, TPM_RH, TPM_SU } from '../../src/tpm/index.js';
import { describeEachTpm, startTpm } from '../support/tpm-under-test.js';

describeEachTpm('README client example', (kind) => {
  it('opens a TCTI string, creates a primary ECC key, signs, flushes', async () => {
    const sw = await startTpm(kind);
    try {
      const transport = await openTransport(`swtpm:host=127.0.0.1,port=${sw.port}`);
      await runCommand(transport, commands.Startup, {}, { startupType: TPM_SU.CLEAR });
      const tpm = new Tpm(transport);
      const digest = createHash('sha256').update('hello').digest();
      const key = await createPrimary(tpm, TPM_RH.OWNER, eccSigningTemplate());
      try {
        const signature = await sign(tpm, key, digest);
        expect(verifyWithNode(key.publicArea, Buffer.from('hello'), signature)).toBe(true);
        expect(verifyWithNode(key.publicArea, Buffer.from('hullo'), signature)).toBe(false);
      } finally {
        await tpm.flush(key);
      }
      await tpm.close();
    } finally {
      await sw.stop();
    }
  });
});
