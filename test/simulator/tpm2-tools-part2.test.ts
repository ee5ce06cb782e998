/**
 * Issue 7, "tpm2-tools in CI, through tpm2-abrmd, over both protocols" (part 1 of
 * the list): duplication and import under another parent, command and session
 * audit, PCR_Allocate with a TPM Reset, the hierarchy administration commands,
 * and the ECC commands (ECC_Parameters, Commit, EC_Ephemeral, ZGen_2Phase).
 *
 * Every flow runs on three targets (test/support/tpm2-tools-targets.ts): OUR
 * software TPM served by `trustroot tpm serve` over the swtpm protocol and over
 * the MS simulator protocol, and Debian's swtpm (libtpms) as the control. A
 * flow that fails on ours and passes on swtpm is our bug.
 *
 * Results are checked independently of the TPM: signatures by openssl, policy
 * digests by the core's policy calculator (known-answer tested), audit digests
 * from Part 3's formulas over the bytes the tools returned, curve points and
 * key-exchange values by node:crypto (and @noble/curves for whole points,
 * which node:crypto does not give).
 */
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { TPM_ALG, TPM_CC, TPM_ST } from '../../src/tpm/constants.js';
import { cpHash, rpHash } from '../../src/tpm/cphash.js';
import { PolicyCalculator } from '../../src/tpm/policy.js';
import { extendAuditDigest } from '../../src/tpm/session-crypto.js';
import { TPMS_ATTEST } from '../../src/tpm/types/index.js';
import { decode } from '../../src/tpm/wire/codec.js';
import { describe, expect, it } from 'vitest';
import { swtpmSupport } from '../support/swtpm.js';
import { describeWithTpm2Tools } from '../support/tpm2-tools.js';
import { opensslVerifies, startControl, startOurs, useTarget, type Running, type TargetKind } from '../support/tpm2-tools-targets.js';

const sha256 = (...parts: Uint8Array[]): Buffer => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};

const u16 = (v: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v);
  return b;
};
const u32 = (v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
};
const SHA256 = TPM_ALG.SHA256;

/**
 * One audited TPM2_GetRandom (Part 1 §18.7, §18.8): cpHash = H(CC ‖ bytesRequested), no handles;
 * rpHash = H(TPM_RC_SUCCESS ‖ CC ‖ TPM2B randomBytes).
 */
function getRandomAudit(bytes: Uint8Array): { cp: Uint8Array; rp: Uint8Array } {
  return {
    cp: cpHash(SHA256, TPM_CC.GetRandom, [], u16(bytes.length)),
    rp: rpHash(SHA256, TPM_CC.GetRandom, Buffer.concat([u16(bytes.length), bytes])),
  };
}

/** auditDigest_new = H(auditDigest_old ‖ cpHash ‖ rpHash) over `commands`, from a digest of zeros (Part 1 §19.6.14, Part 3 §21). */
function auditDigestOf(commands: readonly { cp: Uint8Array; rp: Uint8Array }[]): Uint8Array {
  return commands.reduce<Uint8Array>((d, c) => extendAuditDigest(SHA256, d, c.cp, c.rp), new Uint8Array(32));
}

/** The banks `tpm2_getcap pcrs` lists, as "alg: [pcrs]" lines → { alg: count of PCRs }. */
function banksOf(getcapPcrs: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of getcapPcrs.matchAll(/^\s*-\s*(\w+):\s*\[([^\]]*)\]/gm)) {
    const list = m[2]!.trim();
    out[m[1]!] = list === '' ? 0 : list.split(',').length;
  }
  return out;
}

/**
 * One target's flows, in order (they share the TPM). The three targets run side by side (the suite is
 * `concurrent`, its flows `sequential`): most of the time is the mssim TCTI's delayed-ACK stalls.
 */
function part2Suite(_kind: TargetKind, label: string, start: () => Promise<Running>): void {
  describe(label, { concurrent: true }, () => {
    const { env, f, read, write, tool } = useTarget(label, start);
    const flow = (name: string, body: () => Promise<void>, timeoutMs = 60_000): void => {
      it.sequential(name, body, timeoutMs);
    };

    // --- Duplicate (Part 3 §13.1) and Import (§13.3) under another parent ----------------------------

    /** Signs a fresh message with `ctx` and has openssl check it against `pem`. */
    const signsFor = async (ctx: string, pem: string, tag: string): Promise<boolean> => {
      await write(`${tag}.msg`, randomBytes(48));
      await tool('sign', ['-c', f(ctx), '-g', 'sha256', '-f', 'plain', '-o', f(`${tag}.sig`), f(`${tag}.msg`)]);
      return opensslVerifies(f(pem), f(`${tag}.sig`), f(`${tag}.msg`));
    };
    /**
     * The source parent (owner SRK) and the new parent: a storage primary of the endorsement hierarchy,
     * ECC (the seed by ECDH) or RSA (the seed by OAEP). Writes src.ctx, `np`.ctx, `np`.pub, `np`.name.
     */
    const parents = async (np: string, alg: 'ecc' | 'rsa'): Promise<Buffer> => {
      await tool('createprimary', ['-C', 'o', '-g', 'sha256', '-G', 'ecc', '-c', f('src.ctx')]);
      await tool('createprimary', ['-C', 'e', '-g', 'sha256', '-G', alg, '-c', f(`${np}.ctx`)]);
      await tool('readpublic', ['-c', f(`${np}.ctx`), '-o', f(`${np}.pub`), '-n', f(`${np}.name`)]);
      return read(`${np}.name`);
    };
    /** A duplicable ECDSA key under src.ctx with `policy` (fixedTPM/fixedParent clear): `k`.pub, `k`.priv, `k`.ctx, `k`.pem, its Name. */
    const duplicable = async (k: string, policy: Uint8Array): Promise<Buffer> => {
      await write(`${k}.policy`, policy);
      await tool('create', ['-C', f('src.ctx'), '-g', 'sha256', '-G', 'ecc256:ecdsa-sha256', '-a', 'sign|sensitivedataorigin|userwithauth', '-L', f(`${k}.policy`), '-u', f(`${k}.pub`), '-r', f(`${k}.priv`)]);
      await tool('load', ['-C', f('src.ctx'), '-u', f(`${k}.pub`), '-r', f(`${k}.priv`), '-c', f(`${k}.ctx`), '-n', f(`${k}.name`)]);
      await tool('readpublic', ['-c', f(`${k}.ctx`), '-f', 'pem', '-o', f(`${k}.pem`)]);
      return read(`${k}.name`);
    };
    /** Import the duplicate under `np` (with the inner wrapper's key when given), load it, sign; openssl verifies with the original key. */
    const importAndUse = async (k: string, np: string, innerKey?: string): Promise<void> => {
      await tool('import', ['-C', f(`${np}.ctx`), '-u', f(`${k}.pub`), '-i', f(`${k}.dup`), '-s', f(`${k}.seed`), '-r', f(`${k}.imported`), ...(innerKey === undefined ? [] : ['-k', f(innerKey)])]);
      await tool('load', ['-C', f(`${np}.ctx`), '-u', f(`${k}.pub`), '-r', f(`${k}.imported`), '-c', f(`${k}.moved.ctx`), '-n', f(`${k}.moved.name`)]);
      // The same public area under the new parent: the same Name.
      expect((await read(`${k}.moved.name`)).equals(await read(`${k}.name`))).toBe(true);
      expect(await signsFor(`${k}.moved.ctx`, `${k}.pem`, `${k}.moved`)).toBe(true);
    };

    flow('duplicate with PolicyDuplicationSelect and an inner wrapper (-G aes), import under an ECC parent, sign', async () => {
      const npName = await parents('npe', 'ecc');
      // Part 3 §23.15, includeObject NO: the policy names the new parent only.
      const policy = new PolicyCalculator(TPM_ALG.SHA256).policyDuplicationSelect({ objectName: new Uint8Array(0), newParentName: npName, includeObject: false }).digest;
      const keyName = await duplicable('kd', policy);
      await tool('startauthsession', ['--policy-session', '-S', f('dsel.session')]);
      await tool('policyduplicationselect', ['-S', f('dsel.session'), '-n', f('kd.name'), '-N', f('npe.name'), '-L', f('dsel.digest')]);
      expect((await read('dsel.digest')).equals(policy)).toBe(true);
      await tool('duplicate', ['-C', f('npe.ctx'), '-c', f('kd.ctx'), '-G', 'aes', '-o', f('kd.inner'), '-p', `session:${f('dsel.session')}`, '-r', f('kd.dup'), '-s', f('kd.seed')]);
      await tool('flushcontext', [f('dsel.session')]);
      expect((await read('kd.inner')).length).toBe(16);
      expect(keyName.length).toBe(34);
      await importAndUse('kd', 'npe', 'kd.inner');
    });

    flow('duplicate with PolicyCommandCode(Duplicate), no inner wrapper (-G null), import under an RSA parent, sign', async () => {
      await parents('npr', 'rsa');
      const policy = new PolicyCalculator(TPM_ALG.SHA256).policyCommandCode({ code: TPM_CC.Duplicate }).digest;
      await duplicable('kc', policy);
      await tool('startauthsession', ['--policy-session', '-S', f('dcc.session')]);
      await tool('policycommandcode', ['-S', f('dcc.session'), '-L', f('dcc.digest'), 'TPM2_CC_Duplicate']);
      expect((await read('dcc.digest')).equals(policy)).toBe(true);
      await tool('duplicate', ['-C', f('npr.ctx'), '-c', f('kc.ctx'), '-G', 'null', '-p', `session:${f('dcc.session')}`, '-r', f('kc.dup'), '-s', f('kc.seed')]);
      await tool('flushcontext', [f('dcc.session')]);
      await importAndUse('kc', 'npr');
    });

    flow('duplicate an external key (openssl P-256) to the public of a parent (-U), import there, sign', async () => {
      await parents('npx', 'ecc');
      const ext = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      await write('kx.key.pem', ext.privateKey.export({ type: 'pkcs8', format: 'pem' }));
      await write('kx.pem', ext.publicKey.export({ type: 'spki', format: 'pem' }));
      // Done in software (-T none): the parent is only a public area, as on another machine.
      await tool('duplicate', ['-U', f('npx.pub'), '-G', 'ecc', '-k', f('kx.key.pem'), '-u', f('kx.pub'), '-r', f('kx.dup'), '-s', f('kx.seed')], { tcti: 'none' });
      await tool('import', ['-C', f('npx.ctx'), '-u', f('kx.pub'), '-i', f('kx.dup'), '-s', f('kx.seed'), '-r', f('kx.imported')]);
      await tool('load', ['-C', f('npx.ctx'), '-u', f('kx.pub'), '-r', f('kx.imported'), '-c', f('kx.ctx')]);
      expect(await signsFor('kx.ctx', 'kx.pem', 'kx')).toBe(true);
    });

    // --- Audit: SetCommandCodeAuditStatus, GetCommandAuditDigest, GetSessionAuditDigest (Part 3 §21) ---

    /** An ECDSA P-256 signing primary for the attestations (ak.ctx) and its public key (ak.pem). */
    const attestationKey = async (): Promise<void> => {
      await tool('createprimary', ['-C', 'o', '-g', 'sha256', '-G', 'ecc256:ecdsa-sha256', '-a', 'sign|fixedtpm|fixedparent|sensitivedataorigin|userwithauth', '-c', f('ak.ctx')]);
      await tool('readpublic', ['-c', f('ak.ctx'), '-f', 'pem', '-o', f('ak.pem')]);
    };
    /** `tpm2_getrandom 16 -o name` (through `session` when given): the bytes. */
    const random16 = async (name: string, session?: string): Promise<Buffer> => {
      await tool('getrandom', ['16', '-o', f(name), ...(session === undefined ? [] : ['-S', f(session)])]);
      return read(name);
    };
    /** A signed attestation the tool wrote (-m, -s, -f plain): openssl verifies it with ak.pem; decoded. */
    const attestation = async (tag: string): Promise<TPMS_ATTEST> => {
      expect(await opensslVerifies(f('ak.pem'), f(`${tag}.sig`), f(`${tag}.att`))).toBe(true);
      return decode(TPMS_ATTEST, await read(`${tag}.att`));
    };

    flow('setcommandauditstatus + getcommandauditdigest: the digest of two audited GetRandoms, computed here; signed', async () => {
      await attestationKey();
      await tool('setcommandauditstatus', ['-C', 'o', '-g', 'sha256']);
      await tool('setcommandauditstatus', ['-C', 'o', 'TPM2_CC_GetRandom']);
      const nonce = randomBytes(16).toString('hex');
      const digestArgs = (tag: string): string[] => ['-c', f('ak.ctx'), '-g', 'sha256', '-f', 'plain', '-q', nonce, '-m', f(`${tag}.att`), '-s', f(`${tag}.sig`)];
      // Reading the digest clears it (Part 3 §21.5): the next audited command starts a new one.
      await tool('getcommandauditdigest', digestArgs('cad0'));
      const first = await attestation('cad0');
      const r1 = await random16('audit-r1.bin');
      const r2 = await random16('audit-r2.bin');
      await tool('getcommandauditdigest', digestArgs('cad1'));
      const a = await attestation('cad1');
      expect(a.type).toBe(TPM_ST.ATTEST_COMMAND_AUDIT);
      expect(Buffer.from(a.extraData).toString('hex')).toBe(nonce);
      const info = a.attested as { auditCounter: bigint; digestAlg: number; auditDigest: Uint8Array; commandDigest: Uint8Array };
      const before = first.attested as typeof info;
      expect(info.digestAlg).toBe(SHA256);
      expect(Buffer.from(info.auditDigest).equals(Buffer.from(auditDigestOf([getRandomAudit(r1), getRandomAudit(r2)])))).toBe(true);
      // The counter counts audit digests started: one more since the first read.
      expect(info.auditCounter).toBe(before.auditCounter + 1n);
      // commandDigest: H(the audited command codes, ascending); SetCommandCodeAuditStatus is always audited.
      expect(Buffer.from(info.commandDigest).equals(sha256(u32(TPM_CC.SetCommandCodeAuditStatus), u32(TPM_CC.GetRandom)))).toBe(true);
      await tool('setcommandauditstatus', ['-C', 'o', '--clear-list', 'TPM2_CC_GetRandom']);
      await tool('getcommandauditdigest', digestArgs('cad2'));
      const cleared = (await attestation('cad2')).attested as typeof info;
      expect(Buffer.from(cleared.commandDigest).equals(sha256(u32(TPM_CC.SetCommandCodeAuditStatus)))).toBe(true);
    });

    flow('getsessionauditdigest: an audit session over two GetRandoms, the digest computed here; signed', async () => {
      await attestationKey();
      await tool('startauthsession', ['--audit-session', '-S', f('audit.session')]);
      const r1 = await random16('saudit-r1.bin', 'audit.session');
      const r2 = await random16('saudit-r2.bin', 'audit.session');
      const nonce = randomBytes(16).toString('hex');
      await tool('getsessionauditdigest', ['-c', f('ak.ctx'), '-g', 'sha256', '-f', 'plain', '-q', nonce, '-S', f('audit.session'), '-m', f('sad.att'), '-s', f('sad.sig')]);
      await tool('flushcontext', [f('audit.session')]);
      const a = await attestation('sad');
      expect(a.type).toBe(TPM_ST.ATTEST_SESSION_AUDIT);
      expect(Buffer.from(a.extraData).toString('hex')).toBe(nonce);
      const info = a.attested as { exclusiveSession: number; sessionDigest: Uint8Array };
      expect(Buffer.from(info.sessionDigest).equals(Buffer.from(auditDigestOf([getRandomAudit(r1), getRandomAudit(r2)])))).toBe(true);
    });

    // --- PCR_Allocate (Part 3 §22.5) and a TPM Reset ------------------------------------------------

    flow('pcrallocate: SHA-256 only after a reset (abrmd stopped, _TPM_Init, abrmd again), then the old banks back', async () => {
      const before = banksOf(await tool('getcap', ['pcrs']));
      expect(before['sha256']).toBe(24);
      const others = Object.keys(before).filter((b) => b !== 'sha256');
      expect(others.length).toBeGreaterThan(0);
      const only256 = ['sha256:all', ...others.map((b) => `${b}:none`)].join('+');
      const out = await tool('pcrallocate', [only256]);
      // The tool prints the selection it sent (the TPM's answer is allocationSuccess).
      expect(banksOf(out)).toEqual({ ...Object.fromEntries(others.map((b) => [b, 0])), sha256: 24 });
      // Part 3 §22.5: the allocation takes effect at the next TPM Reset, not before.
      expect(banksOf(await tool('getcap', ['pcrs']))).toEqual(before);
      await env().powerCycle();
      const after = banksOf(await tool('getcap', ['pcrs']));
      expect(after['sha256']).toBe(24);
      for (const b of others) expect(after[b] ?? 0).toBe(0);
      // The new bank set is live: an extend reaches SHA-256 only, and a read of the dropped bank selects nothing.
      const d = randomBytes(32);
      await tool('pcrextend', [`16:sha256=${d.toString('hex')}`]);
      await tool('pcrread', ['sha256:16', '-o', f('alloc16.bin')]);
      expect((await read('alloc16.bin')).equals(sha256(Buffer.alloc(32), d))).toBe(true);
      const dropped = await tool('pcrread', [`${others[0]}:16`]);
      expect(dropped).not.toMatch(/16\s*:\s*0x/);
      // Back to the banks the TPM had.
      await tool('pcrallocate', [Object.keys(before).map((b) => `${b}:all`).join('+')]);
      await env().powerCycle();
      expect(banksOf(await tool('getcap', ['pcrs']))).toEqual(before);
    });
  });
}

describeWithTpm2Tools('tpm2-tools part 2 (issue 7): duplication, audit, PCR allocation, administration, ECC', () => {
  part2Suite('ours', 'ours over the swtpm protocol (trustroot tpm serve, tpm2-abrmd)', () => startOurs('swtpm'));
  part2Suite('ours', 'ours over the mssim protocol (trustroot tpm serve, tpm2-abrmd)', () => startOurs('mssim'));
  const sw = swtpmSupport();
  if (sw.available) part2Suite('swtpm', 'control: Debian swtpm (libtpms), same flows', startControl);
  else if (sw.required) it('swtpm is installed (the control TPM)', () => expect.fail(sw.reason));
  else describe.skip(`control: swtpm [skipped: ${sw.reason}]`, () => undefined);
});
