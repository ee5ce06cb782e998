/**
 * Issue 6, "Checked by real clients": Debian's tpm2-tools 5.4 against OUR
 * software TPM served by the real CLI (`trustroot tpm serve`, a child
 * process, test/support/sim-server.ts), through tpm2-abrmd:
 * - the whole list over the swtpm protocol (`swtpm:host=127.0.0.1,port=N`),
 * - a smoke subset over the MS simulator protocol (`mssim:…`),
 * and the very same flows against Debian's swtpm (libtpms) as a control, so a
 * flow that fails on ours but passes on swtpm is our bug.
 *
 * Every result is checked independently of the TPM: signatures by openssl and
 * node:crypto, hashes/HMACs/AES/RSA-OAEP/ECDH by node:crypto, policy digests
 * computed here from Part 3's formulas, PCR and NV extend values computed with
 * node, credentials made by the tools' software mode (`-T none`, openssl).
 *
 * NOT_YET lists the flows that fail on our simulator today and why; they run
 * as `it.skip` with the reason in their name (against swtpm they always run).
 * TRUSTROOT_TOOLS_RUN_NOT_YET=1 runs them anyway (to see which now pass).
 */
import { createHash, createHmac, createPublicKey, createCipheriv, createECDH, publicEncrypt, constants as cryptoConstants, verify as cryptoVerify, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { SwtpmControl } from '../../src/tpm/transport/index.js';
import { TPM_RC } from '../../src/tpm/rc.js';
import { swtpmSupport } from '../support/swtpm.js';
import { describeWithTpm2Tools } from '../support/tpm2-tools.js';
import { field, opensslVerifies, rcIn, sh, startControl, startOurs, useTarget, type Running, type TargetKind } from '../support/tpm2-tools-targets.js';
import { sha256, u16, u32 } from '../support/bytes.js';

/**
 * Flows known to fail on our simulator, with the reason (command not yet
 * implemented = TPM_RC_COMMAND_CODE, or an engine bug with the exact output).
 * Keys are the flow names used below. Part of the acceptance: empty it.
 */
// Empty: TestParms (3a4a62b), contexts of public-only LoadExternal objects (3f28687) and sessions in
// GetCapability(HANDLES) (bc6e35d) were the last flows listed here.
const NOT_YET: Readonly<Record<string, string>> = {};

const RUN_NOT_YET = process.env['TRUSTROOT_TOOLS_RUN_NOT_YET'] === '1';

// ---------------------------------------------------------------------------
// Independent checks (node:crypto, openssl, Part 3 policy formulas)
// ---------------------------------------------------------------------------


/** Part 3 §23: the policy commands' digest updates, SHA-256 sessions. */
const CC = {
  PolicySecret: 0x151,
  PolicyAuthValue: 0x16b,
  PolicyCommandCode: 0x16c,
  PolicyOR: 0x171,
  PolicyPCR: 0x17f,
  Unseal: 0x15e,
} as const;
const ZERO32 = Buffer.alloc(32);
/** TPML_PCR_SELECTION with one SHA-256 selection of `pcrs`. */
function pcrSelectionSha256(pcrs: readonly number[]): Buffer {
  const bitmap = Buffer.alloc(3);
  for (const p of pcrs) bitmap[p >> 3]! |= 1 << (p & 7);
  return Buffer.concat([u32(1), u16(0x000b), Buffer.of(3), bitmap]);
}
/** Part 3 §23.7 PolicyPCR: H(old ‖ CC ‖ pcrs ‖ H(values)). */
const policyPcr = (old: Buffer, pcrs: readonly number[], values: readonly Buffer[]): Buffer =>
  sha256(old, u32(CC.PolicyPCR), pcrSelectionSha256(pcrs), sha256(...values));
/** Part 3 §23.4 PolicySecret: PolicyUpdate(CC, authName, policyRef = empty). */
const policySecret = (old: Buffer, authName: Buffer): Buffer => sha256(sha256(old, u32(CC.PolicySecret), authName));
/** §23.18/§23.19 PolicyAuthValue and PolicyPassword: the same digest. */
const policyAuthValue = (old: Buffer): Buffer => sha256(old, u32(CC.PolicyAuthValue));
/** §23.11 PolicyCommandCode. */
const policyCommandCode = (old: Buffer, code: number): Buffer => sha256(old, u32(CC.PolicyCommandCode), u32(code));
/** §23.6 PolicyOR: H(0 ‖ CC ‖ digests…). */
const policyOr = (digests: readonly Buffer[]): Buffer => sha256(ZERO32, u32(CC.PolicyOR), ...digests);

/** A TPM2B_PUBLIC file: its Name (nameAlg ‖ H(TPMT_PUBLIC)), SHA-256 name algorithm only. */
function nameOfPublicFile(pub: Buffer): Buffer {
  const size = pub.readUInt16BE(0);
  const area = pub.subarray(2, 2 + size);
  const nameAlg = area.readUInt16BE(2);
  expect(nameAlg).toBe(0x000b);
  return Buffer.concat([u16(nameAlg), sha256(area)]);
}

// ---------------------------------------------------------------------------
// The suite, once per TPM
// ---------------------------------------------------------------------------

function toolsSuite(kind: TargetKind, label: string, start: () => Promise<Running>): void {
  describe(label, () => {
    const { env, f, read, write, tool, toolFails } = useTarget(label, start);
    /** Reads sha256 PCRs as raw bytes (tpm2_pcrread -o). */
    const pcrs = async (list: readonly number[], out: string): Promise<Buffer[]> => {
      await tool('pcrread', [`sha256:${list.join(',')}`, '-o', f(out)]);
      const b = await read(out);
      expect(b.length).toBe(32 * list.length);
      return list.map((_, i) => b.subarray(32 * i, 32 * (i + 1)));
    };
    /** An ECC P-256 SRK (owner hierarchy, default tools template) in `ctx`. */
    const srk = async (ctx = 'srk.ctx'): Promise<string> => {
      await tool('createprimary', ['-C', 'o', '-g', 'sha256', '-G', 'ecc', '-c', f(ctx)]);
      return f(ctx);
    };

    const flowNames = new Set<string>();
    function flow(name: string, body: () => Promise<void>, timeoutMs = 30_000): void {
      flowNames.add(name);
      const why = kind === 'ours' ? NOT_YET[name] : undefined;
      if (why !== undefined && !RUN_NOT_YET) it.skip(`${name} [NOT_YET: ${why}]`, body, timeoutMs);
      else it(name, body, timeoutMs);
    }
    /** A flow about our simulator's own identity, with nothing to compare on swtpm. */
    function oursOnly(name: string, whyNotSwtpm: string, body: () => Promise<void>): void {
      if (kind === 'ours') flow(name, body);
      else it.skip(`${name} [ours only: ${whyNotSwtpm}]`, body);
    }

    // --- start-up, capabilities, randomness, self test -----------------------

    /** _TPM_Init through the swtpm control channel (CMD_INIT; abrmd's TCTI only touches that port when it starts). */
    const tpmInit = async (): Promise<void> => {
      const ctl = new SwtpmControl({ port: env().ctrlPort });
      try {
        await ctl.init(0);
      } finally {
        await ctl.close();
      }
    };

    flow('startup: Shutdown(STATE) + Startup(STATE) resumes (restartCount +1, PCR 10 kept); Shutdown(CLEAR) + Startup(CLEAR) resets', async () => {
      const d = randomBytes(32);
      await tool('pcrextend', [`10:sha256=${d.toString('hex')}`]);
      const extended = (await pcrs([10], 'r10a.bin'))[0]!;
      const c0 = await tool('readclock', []);
      // TPM Resume (Part 1 §36.7).
      await tool('shutdown', []);
      await tpmInit();
      await tool('startup', []);
      const c1 = await tool('readclock', []);
      expect(Number(field(c1, 'restart_count'))).toBe(Number(field(c0, 'restart_count')) + 1);
      expect(field(c1, 'reset_count')).toBe(field(c0, 'reset_count'));
      expect(field(c1, 'safe')).toBe('yes');
      expect((await pcrs([10], 'r10b.bin'))[0]!.equals(extended)).toBe(true);
      // TPM Reset: counters restart, PCRs cleared.
      await tool('shutdown', ['-c']);
      await tpmInit();
      await tool('startup', ['-c']);
      const c2 = await tool('readclock', []);
      expect(Number(field(c2, 'reset_count'))).toBe(Number(field(c1, 'reset_count')) + 1);
      expect(field(c2, 'restart_count')).toBe('0');
      expect(field(c2, 'safe')).toBe('yes');
      expect((await pcrs([10], 'r10c.bin'))[0]!.equals(ZERO32)).toBe(true);
      expect(await tool('getrandom', ['8', '--hex'])).toMatch(/^[0-9a-f]{16}$/);
    });

    flow('getcap: every capability the tools list', async () => {
      const list = (await tool('getcap', ['-l'])).split('\n').map((l) => l.replace(/^-\s*/, '').trim()).filter((l) => l.length > 0);
      expect(list).toContain('properties-fixed');
      for (const cap of list) await tool('getcap', [cap]);
      const fixed = await tool('getcap', ['properties-fixed']);
      // TPM2_PT_MANUFACTURER, as the tools print it.
      expect(/TPM2_PT_MANUFACTURER:\s*\n\s*raw: 0x[0-9A-F]+\s*\n\s*value: "([^"]*)"/.exec(fixed)?.[1]).toBe(kind === 'ours' ? 'TRST' : 'IBM');
      // The software TPM says what it is (design.md, Software TPM: identity): the vendor strings name trustroot.
      const vendor = [1, 2, 3, 4].map((i) => new RegExp(`TPM2_PT_VENDOR_STRING_${i}:\\s*\\n\\s*raw: 0x[0-9A-F]+\\s*\\n\\s*value: "([^"]*)"`).exec(fixed)?.[1] ?? '').join('');
      if (kind === 'ours') expect(vendor).toMatch(/^trustroot/);
      else expect(vendor).toMatch(/SW\s*TPM/);
      // Limits as libtpms has them (tpm-peers.md §6.8), so clients learn to flush.
      const prop = (name: string): number => Number(new RegExp(`${name}:\\s*\\n\\s*raw: (0x[0-9A-F]+)`).exec(fixed)?.[1]);
      expect(prop('TPM2_PT_INPUT_BUFFER')).toBe(1024);
      expect(prop('TPM2_PT_NV_BUFFER_MAX')).toBe(1024);
      expect(prop('TPM2_PT_MAX_COMMAND_SIZE')).toBe(4096);
      expect(prop('TPM2_PT_HR_TRANSIENT_MIN')).toBe(3);
      expect(prop('TPM2_PT_HR_LOADED_MIN')).toBe(3);
      expect(prop('TPM2_PT_ACTIVE_SESSIONS_MAX')).toBe(64);
      expect(prop('TPM2_PT_PCR_COUNT')).toBe(24);
      const commands = await tool('getcap', ['commands']);
      for (const c of ['TPM2_CC_GetRandom', 'TPM2_CC_PCR_Read', 'TPM2_CC_CreatePrimary', 'TPM2_CC_NV_Read']) expect(commands).toContain(c);
      const banks = await tool('getcap', ['pcrs']);
      expect(banks).toMatch(/sha256:\s*\[\s*0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23\s*\]/);
      expect(await tool('getcap', ['ecc-curves'])).toContain('TPM2_ECC_NIST_P256');
      expect(await tool('getcap', ['algorithms'])).toMatch(/^sha256:/m);
    });

    flow('getrandom: hex and file output, two answers differ', async () => {
      const a = await tool('getrandom', ['32', '--hex']);
      const b = await tool('getrandom', ['32', '--hex']);
      expect(a).toMatch(/^[0-9a-f]{64}$/);
      expect(b).toMatch(/^[0-9a-f]{64}$/);
      expect(a).not.toBe(b);
      await tool('getrandom', ['16', '-o', f('rand.bin')]);
      expect((await read('rand.bin')).length).toBe(16);
    });

    flow('stirrandom: entropy from stdin accepted; getrandom still answers', async () => {
      await tool('stirrandom', [], { input: randomBytes(64) });
      expect(await tool('getrandom', ['8', '--hex'])).toMatch(/^[0-9a-f]{16}$/);
    });

    flow('testparms: the everyday algorithms are supported; RSA-4096 is not', async () => {
      for (const alg of ['rsa2048', 'rsa3072', 'ecc256', 'ecc384', 'aes128cfb', 'aes256cfb', 'hmac', 'keyedhash']) await tool('testparms', [alg]);
      // Neither libtpms (as Debian ships it) nor ours does RSA-4096.
      expect((await env().tools.run('testparms', ['rsa4096'], { allowFailure: true })).code).not.toBe(0);
    });

    flow('selftest, incrementalselftest, gettestresult', async () => {
      await tool('selftest', ['--fulltest']);
      await tool('incrementalselftest', ['sha256', 'aes']);
      expect(await tool('gettestresult', [])).toMatch(/status:\s*success/);
    });

    // --- PCRs ---------------------------------------------------------------

    flow('pcrread: fresh PCR 0..7 are zero in sha256; -o writes the raw values', async () => {
      const v = await pcrs([0, 1, 2, 3, 4, 5, 6, 7], 'pcr0-7.bin');
      for (const p of v) expect(p.equals(ZERO32)).toBe(true);
      const yaml = await tool('pcrread', ['sha1:0+sha256:23']);
      expect(yaml).toMatch(/sha1:\s*\n\s*0\s*: 0x0{40}/);
      expect(yaml).toMatch(/sha256:\s*\n\s*23\s*: 0x0{64}/);
    });

    flow('pcrreset, pcrextend, pcrevent: values computed with node', async () => {
      await tool('pcrreset', ['16']);
      expect((await pcrs([16], 'p16a.bin'))[0]!.equals(ZERO32)).toBe(true);
      const d = randomBytes(32);
      await tool('pcrextend', [`16:sha256=${d.toString('hex')}`]);
      const afterExtend = sha256(ZERO32, d);
      expect((await pcrs([16], 'p16b.bin'))[0]!.equals(afterExtend)).toBe(true);
      const data = Buffer.from('an event for pcrevent\n');
      await write('event.txt', data);
      const out = await tool('pcrevent', ['16', f('event.txt')]);
      expect(out).toContain(`sha256: ${sha256(data).toString('hex')}`);
      const afterEvent = sha256(afterExtend, sha256(data));
      expect((await pcrs([16], 'p16c.bin'))[0]!.equals(afterEvent)).toBe(true);
      // More than one input buffer: the tools use an event sequence (EventSequenceComplete extends every bank).
      const big = randomBytes(3000);
      await write('event-big.bin', big);
      const bigOut = await tool('pcrevent', ['16', f('event-big.bin')]);
      expect(bigOut).toContain(`sha256: ${sha256(big).toString('hex')}`);
      expect(bigOut).toContain(`sha384: ${createHash('sha384').update(big).digest('hex')}`);
      expect((await pcrs([16], 'p16e.bin'))[0]!.equals(sha256(afterEvent, sha256(big)))).toBe(true);
      // PC Client: PCR 0 is not resettable from locality 0.
      const rc = await toolFails('pcrreset', ['0']);
      expect(rc).toBe(TPM_RC.LOCALITY);
      await tool('pcrreset', ['16']);
      expect((await pcrs([16], 'p16d.bin'))[0]!.equals(ZERO32)).toBe(true);
    });

    // --- objects --------------------------------------------------------------

    flow('createprimary RSA-2048/3072 and ECC P-256/P-384: the same template twice gives the same public key', async () => {
      for (const alg of ['rsa2048', 'ecc256', 'rsa3072', 'ecc384']) {
        await tool('createprimary', ['-C', 'o', '-g', 'sha256', '-G', alg, '-c', f(`prim-${alg}-1.ctx`)]);
        await tool('readpublic', ['-c', f(`prim-${alg}-1.ctx`), '-o', f(`prim-${alg}-1.pub`)]);
        await tool('createprimary', ['-C', 'o', '-g', 'sha256', '-G', alg, '-c', f(`prim-${alg}-2.ctx`)]);
        await tool('readpublic', ['-c', f(`prim-${alg}-2.ctx`), '-o', f(`prim-${alg}-2.pub`)]);
        const [a, b] = [await read(`prim-${alg}-1.pub`), await read(`prim-${alg}-2.pub`)];
        expect(a.length).toBeGreaterThan(50);
        expect(a.equals(b)).toBe(true);
      }
      // Another unique value (-u none, a different template) gives another key.
      await tool('createprimary', ['-C', 'o', '-g', 'sha256', '-G', 'ecc256', '-a', 'restricted|decrypt|fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda', '-c', f('prim-noda.ctx')]);
      await tool('readpublic', ['-c', f('prim-noda.ctx'), '-o', f('prim-noda.pub')]);
      expect((await read('prim-noda.pub')).equals(await read('prim-ecc256-1.pub'))).toBe(false);
    });

    flow('create, load, readpublic: Name = nameAlg ‖ SHA-256(public area)', async () => {
      const parent = await srk();
      await tool('create', ['-C', parent, '-G', 'ecc256', '-u', f('k.pub'), '-r', f('k.priv')]);
      await tool('load', ['-C', parent, '-u', f('k.pub'), '-r', f('k.priv'), '-c', f('k.ctx'), '-n', f('k.name')]);
      const name = nameOfPublicFile(await read('k.pub'));
      expect((await read('k.name')).equals(name)).toBe(true);
      const out = await tool('readpublic', ['-c', f('k.ctx'), '-o', f('k.readpub'), '-n', f('k.readname')]);
      expect((await read('k.readpub')).equals(await read('k.pub'))).toBe(true);
      expect((await read('k.readname')).equals(name)).toBe(true);
      expect(out).toContain(`name: ${name.toString('hex')}`);
      // A private blob with a flipped bit does not load (integrity).
      const priv = Buffer.from(await read('k.priv'));
      priv[priv.length - 1]! ^= 1;
      await write('k-bad.priv', priv);
      expect(await toolFails('load', ['-C', parent, '-u', f('k.pub'), '-r', f('k-bad.priv'), '-c', f('k-bad.ctx')])).toBe(TPM_RC.INTEGRITY);
    });

    flow('evictcontrol: persist, read back, evict', async () => {
      const parent = await srk('persist-src.ctx');
      await tool('readpublic', ['-c', parent, '-o', f('persist-src.pub')]);
      await tool('evictcontrol', ['-C', 'o', '-c', parent, '0x81000010']);
      expect(await tool('getcap', ['handles-persistent'])).toMatch(/0x81000010/);
      await tool('readpublic', ['-c', '0x81000010', '-o', f('persist.pub')]);
      expect((await read('persist.pub')).equals(await read('persist-src.pub'))).toBe(true);
      await tool('evictcontrol', ['-C', 'o', '-c', '0x81000010']);
      expect(await tool('getcap', ['handles-persistent'])).not.toMatch(/0x81000010/);
      expect(await toolFails('readpublic', ['-c', '0x81000010'])).toBe(TPM_RC.HANDLE);
    });

    flow('three loaded objects, as libtpms: without a resource manager the fourth primary is TPM_RC_OBJECT_MEMORY', async () => {
      // Straight to the TPM (the swtpm TCTI connects per command, so abrmd is not disturbed): whatever a tool loads stays loaded.
      const direct = ['-T', `swtpm:host=127.0.0.1,port=${env().port}`];
      try {
        for (let i = 0; i < 3; i++) {
          const r = await sh('tpm2_createprimary', [...direct, '-C', 'o', '-G', 'ecc', '-c', f(`direct${i}.ctx`)]);
          expect(r.code, r.stderr).toBe(0);
        }
        const fourth = await sh('tpm2_createprimary', [...direct, '-C', 'o', '-G', 'ecc', '-c', f('direct3.ctx')]);
        expect(fourth.code).not.toBe(0);
        expect(rcIn(fourth.stderr)).toBe(TPM_RC.OBJECT_MEMORY);
      } finally {
        const r = await sh('tpm2_flushcontext', [...direct, '-t']);
        expect(r.code, r.stderr).toBe(0);
      }
      expect((await sh('tpm2_getcap', [...direct, 'handles-transient'])).stdout.trim()).toBe('');
    });

    flow('flushcontext: a saved session is gone once flushed', async () => {
      await tool('startauthsession', ['-S', f('flush.session')]);
      expect(await tool('getcap', ['handles-saved-session'])).toMatch(/0x[23][0-9a-f]{6}\b/i);
      await tool('flushcontext', [f('flush.session')]);
      expect(await tool('getcap', ['handles-saved-session'])).not.toMatch(/0x[23][0-9a-f]{6}\b/i);
      await tool('flushcontext', ['-t']);
      await tool('flushcontext', ['-s']);
      await tool('flushcontext', ['-l']);
      expect(await tool('getcap', ['handles-transient'])).not.toMatch(/0x80/);
    });

    flow('sign RSASSA + verifysignature; the signature checked by openssl and node:crypto', async () => {
      const parent = await srk();
      await tool('create', ['-C', parent, '-G', 'rsa2048:rsassa-sha256', '-a', 'sign|fixedtpm|fixedparent|sensitivedataorigin|userwithauth', '-u', f('rsa.pub'), '-r', f('rsa.priv')]);
      await tool('load', ['-C', parent, '-u', f('rsa.pub'), '-r', f('rsa.priv'), '-c', f('rsa.ctx')]);
      await tool('readpublic', ['-c', f('rsa.ctx'), '-f', 'pem', '-o', f('rsa.pem')]);
      const msg = Buffer.from(`message to sign ${Date.now()}\n`);
      await write('msg.txt', msg);
      await tool('sign', ['-c', f('rsa.ctx'), '-g', 'sha256', '-f', 'plain', '-o', f('rsa.sig.plain'), f('msg.txt')]);
      await tool('sign', ['-c', f('rsa.ctx'), '-g', 'sha256', '-o', f('rsa.sig'), f('msg.txt')]);
      await tool('verifysignature', ['-c', f('rsa.ctx'), '-g', 'sha256', '-m', f('msg.txt'), '-s', f('rsa.sig'), '-t', f('rsa.tkt')]);
      expect(await opensslVerifies(f('rsa.pem'), f('rsa.sig.plain'), f('msg.txt'))).toBe(true);
      const pem = await read('rsa.pem');
      const sig = await read('rsa.sig.plain');
      expect(cryptoVerify('sha256', msg, createPublicKey(pem), sig)).toBe(true);
      expect(cryptoVerify('sha256', Buffer.from('another message'), createPublicKey(pem), sig)).toBe(false);
      // verifysignature refuses the signature for another message (TPM_RC_SIGNATURE).
      await write('msg2.txt', 'another message');
      expect(await toolFails('verifysignature', ['-c', f('rsa.ctx'), '-g', 'sha256', '-m', f('msg2.txt'), '-s', f('rsa.sig')])).toBe(TPM_RC.SIGNATURE);
    });

    flow('sign ECDSA P-256: the DER signature checked by openssl and node:crypto', async () => {
      const parent = await srk();
      await tool('create', ['-C', parent, '-G', 'ecc256:ecdsa-sha256', '-a', 'sign|fixedtpm|fixedparent|sensitivedataorigin|userwithauth', '-u', f('ec.pub'), '-r', f('ec.priv')]);
      await tool('load', ['-C', parent, '-u', f('ec.pub'), '-r', f('ec.priv'), '-c', f('ec.ctx')]);
      await tool('readpublic', ['-c', f('ec.ctx'), '-f', 'pem', '-o', f('ec.pem')]);
      const msg = randomBytes(300);
      await write('ecmsg.bin', msg);
      await tool('sign', ['-c', f('ec.ctx'), '-g', 'sha256', '-f', 'plain', '-o', f('ec.sig.der'), f('ecmsg.bin')]);
      expect(await opensslVerifies(f('ec.pem'), f('ec.sig.der'), f('ecmsg.bin'))).toBe(true);
      expect(cryptoVerify('sha256', msg, createPublicKey(await read('ec.pem')), await read('ec.sig.der'))).toBe(true);
      await tool('sign', ['-c', f('ec.ctx'), '-g', 'sha256', '-o', f('ec.sig'), f('ecmsg.bin')]);
      await tool('verifysignature', ['-c', f('ec.ctx'), '-g', 'sha256', '-m', f('ecmsg.bin'), '-s', f('ec.sig')]);
    });

    flow('RSA variants: RSA-PSS signature checked by openssl; RSAES round trip; CreateLoaded (tpm2_create -c)', async () => {
      const parent = await srk();
      await tool('create', ['-C', parent, '-G', 'rsa2048', '-a', 'sign|decrypt|fixedtpm|fixedparent|sensitivedataorigin|userwithauth', '-u', f('rv.pub'), '-r', f('rv.priv'), '-c', f('rv.ctx')]);
      await tool('readpublic', ['-c', f('rv.ctx'), '-f', 'pem', '-o', f('rv.pem')]);
      const msg = randomBytes(100);
      await write('rv.msg', msg);
      await tool('sign', ['-c', f('rv.ctx'), '-g', 'sha256', '-s', 'rsapss', '-f', 'plain', '-o', f('rv.pss'), f('rv.msg')]);
      // Part 1 §B.7: the TPM's PSS salt is as long as the digest.
      const r = await sh('openssl', ['dgst', '-sha256', '-verify', f('rv.pem'), '-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:32', '-signature', f('rv.pss'), f('rv.msg')]);
      expect(r.stdout).toContain('Verified OK');
      expect(cryptoVerify('sha256', msg, { key: createPublicKey(await read('rv.pem')), padding: cryptoConstants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, await read('rv.pss'))).toBe(true);
      const secret = randomBytes(40);
      await write('rv.secret', secret);
      await tool('rsaencrypt', ['-c', f('rv.ctx'), '-s', 'rsaes', '-o', f('rv.ct'), f('rv.secret')]);
      await tool('rsadecrypt', ['-c', f('rv.ctx'), '-s', 'rsaes', '-o', f('rv.pt'), f('rv.ct')]);
      expect((await read('rv.pt')).equals(secret)).toBe(true);
      // PKCS#1 v1.5 made by node, opened by the TPM.
      await write('rv.node.ct', publicEncrypt({ key: createPublicKey(await read('rv.pem')), padding: cryptoConstants.RSA_PKCS1_PADDING }, secret));
      await tool('rsadecrypt', ['-c', f('rv.ctx'), '-s', 'rsaes', '-o', f('rv.node.pt'), f('rv.node.ct')]);
      expect((await read('rv.node.pt')).equals(secret)).toBe(true);
    });

    flow('platform hierarchy: nvdefine -C p, evictcontrol -C p; clearcontrol disables clear until re-enabled', async () => {
      const idx = '0x01500050';
      await tool('nvdefine', [idx, '-C', 'p', '-s', '8', '-a', 'ppread|ppwrite|authread|authwrite|platformcreate']);
      await write('pnv.in', randomBytes(8));
      await tool('nvwrite', [idx, '-C', 'p', '-i', f('pnv.in')]);
      await tool('nvread', [idx, '-C', 'p', '-s', '8', '-o', f('pnv.out')]);
      expect((await read('pnv.out')).equals(await read('pnv.in'))).toBe(true);
      // Owner authorization cannot undefine a platform-created index (TPM_RC_NV_AUTHORIZATION).
      expect(await toolFails('nvundefine', [idx, '-C', 'o'])).toBe(TPM_RC.NV_AUTHORIZATION);
      await tool('nvundefine', [idx, '-C', 'p']);
      await tool('createprimary', ['-C', 'p', '-G', 'ecc', '-c', f('pp.ctx')]);
      await tool('evictcontrol', ['-C', 'p', '-c', f('pp.ctx'), '0x81800010']);
      expect(await tool('getcap', ['handles-persistent'])).toMatch(/0x81800010/);
      await tool('evictcontrol', ['-C', 'p', '-c', '0x81800010']);
      await tool('clearcontrol', ['-C', 'p', 's']);
      try {
        expect(await toolFails('clear', ['-c', 'l'])).toBe(TPM_RC.DISABLED);
      } finally {
        await tool('clearcontrol', ['-C', 'p', 'c']);
      }
    });

    flow('hash: small and sequence (> 1024 bytes) input equal node SHA-256; ticket for the owner hierarchy', async () => {
      const small = Buffer.from('abc');
      await write('small.bin', small);
      expect((await tool('hash', ['-g', 'sha256', '--hex', f('small.bin')])).trim()).toBe(sha256(small).toString('hex'));
      const big = randomBytes(5000);
      await write('big.bin', big);
      await tool('hash', ['-C', 'o', '-g', 'sha256', '-o', f('big.digest'), '-t', f('big.tkt'), f('big.bin')]);
      expect((await read('big.digest')).equals(sha256(big))).toBe(true);
      expect((await read('big.tkt')).length).toBeGreaterThan(6);
      // Piped input goes through a hash sequence as well.
      expect((await tool('hash', ['-g', 'sha384', '--hex'], { input: big })).trim()).toBe(createHash('sha384').update(big).digest('hex'));
    });

    flow('hmac: an imported HMAC key; small and sequence input equal node HMAC-SHA256', async () => {
      const parent = await srk();
      const key = randomBytes(32);
      await write('hmac.key', key);
      await tool('import', ['-C', parent, '-G', 'hmac', '-i', f('hmac.key'), '-u', f('hmac.pub'), '-r', f('hmac.priv')]);
      await tool('load', ['-C', parent, '-u', f('hmac.pub'), '-r', f('hmac.priv'), '-c', f('hmac.ctx')]);
      for (const size of [40, 3000]) {
        const data = randomBytes(size);
        await write(`hmac-${size}.bin`, data);
        const out = (await tool('hmac', ['-c', f('hmac.ctx'), '-g', 'sha256', '--hex', f(`hmac-${size}.bin`)])).trim();
        expect(out).toBe(createHmac('sha256', key).update(data).digest('hex'));
      }
    });

    flow('encryptdecrypt: an imported AES-128 key in CFB, CBC, ECB, OFB and CTR equals node:crypto', async () => {
      const parent = await srk();
      const key = randomBytes(16);
      const iv = randomBytes(16);
      await write('aes.key', key);
      await write('aes.iv', iv);
      await tool('import', ['-C', parent, '-G', 'aes', '-i', f('aes.key'), '-u', f('aes.pub'), '-r', f('aes.priv')]);
      await tool('load', ['-C', parent, '-u', f('aes.pub'), '-r', f('aes.priv'), '-c', f('aes.ctx')]);
      const plain = randomBytes(96); // whole blocks: CBC and ECB take no padding here
      await write('aes.in', plain);
      for (const mode of ['cfb', 'cbc', 'ecb', 'ofb', 'ctr'] as const) {
        const ivArgs = mode === 'ecb' ? [] : ['-t', f('aes.iv')];
        await tool('encryptdecrypt', ['-c', f('aes.ctx'), '-G', mode, ...ivArgs, '-o', f(`aes.${mode}`), f('aes.in')]);
        const c = createCipheriv(`aes-128-${mode}`, key, mode === 'ecb' ? null : iv).setAutoPadding(false);
        const expected = Buffer.concat([c.update(plain), c.final()]);
        expect((await read(`aes.${mode}`)).equals(expected), mode).toBe(true);
        await tool('encryptdecrypt', ['-d', '-c', f('aes.ctx'), '-G', mode, ...ivArgs, '-o', f(`aes.${mode}.back`), f(`aes.${mode}`)]);
        expect((await read(`aes.${mode}.back`)).equals(plain), mode).toBe(true);
      }
    });

    flow('encryptdecrypt: a TPM-made AES key (tpm2_create -G aes128cfb) round trip, and CFB\'s C1 ⊕ C1\' = P1 ⊕ P1\'', async () => {
      const parent = await srk();
      const iv = randomBytes(16);
      await write('aes2.iv', iv);
      await tool('create', ['-C', parent, '-G', 'aes128cfb', '-u', f('aes2.pub'), '-r', f('aes2.priv')]);
      await tool('load', ['-C', parent, '-u', f('aes2.pub'), '-r', f('aes2.priv'), '-c', f('aes2.ctx')]);
      const [p1, p2] = [randomBytes(48), randomBytes(48)];
      await write('aes2.in1', p1);
      await write('aes2.in2', p2);
      await tool('encryptdecrypt', ['-c', f('aes2.ctx'), '-t', f('aes2.iv'), '-o', f('aes2.out1'), f('aes2.in1')]);
      await tool('encryptdecrypt', ['-c', f('aes2.ctx'), '-t', f('aes2.iv'), '-o', f('aes2.out2'), f('aes2.in2')]);
      const [c1, c2] = [await read('aes2.out1'), await read('aes2.out2')];
      expect(c1.length).toBe(48);
      expect(c1.equals(p1)).toBe(false);
      // CFB: the first block is P ⊕ E_k(IV), the same keystream for both messages.
      const x = (a: Buffer, b: Buffer): Buffer => Buffer.from(a.subarray(0, 16).map((v, i) => v ^ b[i]!));
      expect(x(c1, c2).equals(x(p1, p2))).toBe(true);
      await tool('encryptdecrypt', ['-d', '-c', f('aes2.ctx'), '-t', f('aes2.iv'), '-o', f('aes2.back'), f('aes2.out1')]);
      expect((await read('aes2.back')).equals(p1)).toBe(true);
    });

    flow('rsaencrypt/rsadecrypt: OAEP round trip, and node-encrypted OAEP decrypted by the TPM', async () => {
      const parent = await srk();
      await tool('create', ['-C', parent, '-G', 'rsa2048', '-a', 'decrypt|fixedtpm|fixedparent|sensitivedataorigin|userwithauth', '-u', f('enc.pub'), '-r', f('enc.priv')]);
      await tool('load', ['-C', parent, '-u', f('enc.pub'), '-r', f('enc.priv'), '-c', f('enc.ctx')]);
      await tool('readpublic', ['-c', f('enc.ctx'), '-f', 'pem', '-o', f('enc.pem')]);
      const msg = Buffer.from('secret for rsa');
      await write('rsa.msg', msg);
      await tool('rsaencrypt', ['-c', f('enc.ctx'), '-s', 'oaep', '-o', f('rsa.ct'), f('rsa.msg')]);
      expect((await read('rsa.ct')).length).toBe(256);
      await tool('rsadecrypt', ['-c', f('enc.ctx'), '-s', 'oaep', '-o', f('rsa.pt'), f('rsa.ct')]);
      expect((await read('rsa.pt')).equals(msg)).toBe(true);
      const ct = publicEncrypt({ key: createPublicKey(await read('enc.pem')), padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, msg);
      await write('rsa.node.ct', ct);
      await tool('rsadecrypt', ['-c', f('enc.ctx'), '-s', 'oaep', '-o', f('rsa.node.pt'), f('rsa.node.ct')]);
      expect((await read('rsa.node.pt')).equals(msg)).toBe(true);
    });

    flow('ecdhkeygen/ecdhzgen: Z equal; and equal to node ECDH with our own ephemeral key', async () => {
      const parent = await srk();
      await tool('create', ['-C', parent, '-G', 'ecc256:ecdh', '-a', 'decrypt|fixedtpm|fixedparent|sensitivedataorigin|userwithauth', '-u', f('dh.pub'), '-r', f('dh.priv')]);
      await tool('load', ['-C', parent, '-u', f('dh.pub'), '-r', f('dh.priv'), '-c', f('dh.ctx')]);
      await tool('ecdhkeygen', ['-c', f('dh.ctx'), '-u', f('eph.pub'), '-o', f('z1.bin')]);
      await tool('ecdhzgen', ['-c', f('dh.ctx'), '-u', f('eph.pub'), '-o', f('z2.bin')]);
      const z1 = await read('z1.bin');
      expect(z1.length).toBeGreaterThanOrEqual(32);
      expect((await read('z2.bin')).equals(z1)).toBe(true);
      // Node's ephemeral key as a TPM2B_ECC_POINT; Z = x of d_node · Q_tpm.
      await tool('readpublic', ['-c', f('dh.ctx'), '-f', 'der', '-o', f('dh.der')]);
      const jwk = createPublicKey({ key: await read('dh.der'), format: 'der', type: 'spki' }).export({ format: 'jwk' });
      const tpmPoint = Buffer.concat([Buffer.of(4), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
      const ecdh = createECDH('prime256v1');
      const q = ecdh.generateKeys();
      const x = q.subarray(1, 33);
      const y = q.subarray(33, 65);
      await write('node.point', Buffer.concat([u16(2 + 32 + 2 + 32), u16(32), x, u16(32), y]));
      await tool('ecdhzgen', ['-c', f('dh.ctx'), '-u', f('node.point'), '-o', f('z3.bin')]);
      const z3 = await read('z3.bin');
      const zNode = ecdh.computeSecret(tpmPoint);
      // The tools write Z as a TPM2B_ECC_POINT (u16 size, u16 32, x, u16 32, y); ECDH's shared secret is x.
      expect(z3.length).toBe(70);
      expect(z3.subarray(4, 36).equals(zNode)).toBe(true);
    });

    // --- sealing and policies ------------------------------------------------

    flow('unseal with a password; the wrong password is refused (noDA: TPM_RC_BAD_AUTH)', async () => {
      const parent = await srk();
      const secret = randomBytes(24);
      await write('seal.in', secret);
      await tool('create', ['-C', parent, '-i', f('seal.in'), '-p', 'sealpw', '-a', 'fixedtpm|fixedparent|userwithauth|noda', '-u', f('seal.pub'), '-r', f('seal.priv')]);
      await tool('load', ['-C', parent, '-u', f('seal.pub'), '-r', f('seal.priv'), '-c', f('seal.ctx')]);
      await tool('unseal', ['-c', f('seal.ctx'), '-p', 'sealpw', '-o', f('seal.out')]);
      expect((await read('seal.out')).equals(secret)).toBe(true);
      // Part 1 §19.8.6: a noDA object answers a wrong password with TPM_RC_BAD_AUTH, the DA counter unchanged.
      expect(await toolFails('unseal', ['-c', f('seal.ctx'), '-p', 'wrong'])).toBe(TPM_RC.BAD_AUTH);
    });

    flow('policypcr: PCR-sealed secret unseals, and is refused after a pcrextend; the digest equals Part 3 §23.7', async () => {
      const parent = await srk();
      await tool('pcrreset', ['16']);
      const [v16] = await pcrs([16], 'pp16.bin');
      await tool('startauthsession', ['-S', f('pcr-trial.session')]);
      await tool('policypcr', ['-S', f('pcr-trial.session'), '-l', 'sha256:16', '-L', f('pcr.policy')]);
      await tool('flushcontext', [f('pcr-trial.session')]);
      expect((await read('pcr.policy')).equals(policyPcr(ZERO32, [16], [v16!]))).toBe(true);
      const secret = Buffer.from('sealed to PCR 16');
      await write('pcrseal.in', secret);
      await tool('create', ['-C', parent, '-i', f('pcrseal.in'), '-L', f('pcr.policy'), '-a', 'fixedtpm|fixedparent|noda', '-u', f('pcrseal.pub'), '-r', f('pcrseal.priv')]);
      await tool('load', ['-C', parent, '-u', f('pcrseal.pub'), '-r', f('pcrseal.priv'), '-c', f('pcrseal.ctx')]);
      await tool('unseal', ['-c', f('pcrseal.ctx'), '-p', 'pcr:sha256:16', '-o', f('pcrseal.out')]);
      expect((await read('pcrseal.out')).equals(secret)).toBe(true);
      await tool('pcrextend', [`16:sha256=${randomBytes(32).toString('hex')}`]);
      expect(await toolFails('unseal', ['-c', f('pcrseal.ctx'), '-p', 'pcr:sha256:16'])).toBe(TPM_RC.POLICY_FAIL);
      await tool('pcrreset', ['16']);
      await tool('unseal', ['-c', f('pcrseal.ctx'), '-p', 'pcr:sha256:16', '-o', f('pcrseal.out2')]);
      expect((await read('pcrseal.out2')).equals(secret)).toBe(true);
    });

    flow('policysecret (owner) in a policy session; digest equals Part 3 §23.4', async () => {
      const parent = await srk();
      await tool('startauthsession', ['-S', f('sec-trial.session')]);
      await tool('policysecret', ['-S', f('sec-trial.session'), '-c', 'o', '-L', f('secret.policy')]);
      await tool('flushcontext', [f('sec-trial.session')]);
      expect((await read('secret.policy')).equals(policySecret(ZERO32, u32(0x40000001)))).toBe(true);
      await write('ps.in', 'owner-gated secret');
      await tool('create', ['-C', parent, '-i', f('ps.in'), '-L', f('secret.policy'), '-a', 'fixedtpm|fixedparent|noda', '-u', f('ps.pub'), '-r', f('ps.priv')]);
      await tool('load', ['-C', parent, '-u', f('ps.pub'), '-r', f('ps.priv'), '-c', f('ps.ctx')]);
      await tool('startauthsession', ['--policy-session', '-S', f('sec.session')]);
      await tool('policysecret', ['-S', f('sec.session'), '-c', 'o']);
      await tool('unseal', ['-c', f('ps.ctx'), '-p', `session:${f('sec.session')}`, '-o', f('ps.out')]);
      await tool('flushcontext', [f('sec.session')]);
      expect((await read('ps.out')).toString()).toBe('owner-gated secret');
      // A fresh policy session without the assertion does not satisfy the policy.
      await tool('startauthsession', ['--policy-session', '-S', f('sec2.session')]);
      expect(await toolFails('unseal', ['-c', f('ps.ctx'), '-p', `session:${f('sec2.session')}`])).toBe(TPM_RC.POLICY_FAIL);
      await tool('flushcontext', [f('sec2.session')]);
    });

    flow('policypassword and policycommandcode; policyor of a PCR branch and a password branch', async () => {
      const parent = await srk();
      // Trial digests: password, command code, PCR 16.
      await tool('pcrreset', ['16']);
      const [v16] = await pcrs([16], 'or16.bin');
      const trial = async (name: string, ...steps: [string, string[]][]): Promise<Buffer> => {
        await tool('startauthsession', ['-S', f(`${name}.trial`)]);
        for (const [t, a] of steps) await tool(t, ['-S', f(`${name}.trial`), ...a]);
        await tool('flushcontext', [f(`${name}.trial`)]);
        return read(`${name}.policy`);
      };
      const pw = await trial('pw', ['policypassword', ['-L', f('pw.policy')]]);
      expect(pw.equals(policyAuthValue(ZERO32))).toBe(true);
      const cc = await trial('cc', ['policycommandcode', ['-L', f('cc.policy'), 'TPM2_CC_Unseal']]);
      expect(cc.equals(policyCommandCode(ZERO32, CC.Unseal))).toBe(true);
      const pcr = await trial('orpcr', ['policypcr', ['-l', 'sha256:16', '-L', f('orpcr.policy')]]);
      expect(pcr.equals(policyPcr(ZERO32, [16], [v16!]))).toBe(true);
      await tool('startauthsession', ['-S', f('or.trial')]);
      await tool('policyor', ['-S', f('or.trial'), '-L', f('or.policy'), '-l', `sha256:${f('orpcr.policy')},${f('pw.policy')}`]);
      await tool('flushcontext', [f('or.trial')]);
      expect((await read('or.policy')).equals(policyOr([pcr, pw]))).toBe(true);

      // Sealed under policy = password ∧ command code Unseal.
      const both = policyCommandCode(policyAuthValue(ZERO32), CC.Unseal);
      await write('both.policy', both);
      await write('pwcc.in', 'password and command code');
      await tool('create', ['-C', parent, '-i', f('pwcc.in'), '-p', 'objpw', '-L', f('both.policy'), '-a', 'fixedtpm|fixedparent|noda', '-u', f('pwcc.pub'), '-r', f('pwcc.priv')]);
      await tool('load', ['-C', parent, '-u', f('pwcc.pub'), '-r', f('pwcc.priv'), '-c', f('pwcc.ctx')]);
      await tool('startauthsession', ['--policy-session', '-S', f('pwcc.session')]);
      await tool('policypassword', ['-S', f('pwcc.session')]);
      await tool('policycommandcode', ['-S', f('pwcc.session'), 'TPM2_CC_Unseal']);
      await tool('unseal', ['-c', f('pwcc.ctx'), '-p', `session:${f('pwcc.session')}+objpw`, '-o', f('pwcc.out')]);
      expect((await read('pwcc.out')).toString()).toBe('password and command code');
      await tool('flushcontext', [f('pwcc.session')]);
      // The wrong password with PolicyPassword (noDA object): TPM_RC_BAD_AUTH.
      await tool('startauthsession', ['--policy-session', '-S', f('pwcc2.session')]);
      await tool('policypassword', ['-S', f('pwcc2.session')]);
      await tool('policycommandcode', ['-S', f('pwcc2.session'), 'TPM2_CC_Unseal']);
      expect(await toolFails('unseal', ['-c', f('pwcc.ctx'), '-p', `session:${f('pwcc2.session')}+nope`])).toBe(TPM_RC.BAD_AUTH);
      await tool('flushcontext', [f('pwcc2.session')]);

      // Sealed under the OR policy: after PCR 16 changes, the password branch still opens it.
      await write('or.in', 'either branch');
      await tool('create', ['-C', parent, '-i', f('or.in'), '-p', 'orpw', '-L', f('or.policy'), '-a', 'fixedtpm|fixedparent|noda', '-u', f('or.pub'), '-r', f('or.priv')]);
      await tool('load', ['-C', parent, '-u', f('or.pub'), '-r', f('or.priv'), '-c', f('or.ctx')]);
      await tool('pcrextend', [`16:sha256=${randomBytes(32).toString('hex')}`]);
      await tool('startauthsession', ['--policy-session', '-S', f('or1.session')]);
      await tool('policypcr', ['-S', f('or1.session'), '-l', 'sha256:16']);
      // The PCR branch no longer matches either OR input: TPM_RC_VALUE.
      expect(await toolFails('policyor', ['-S', f('or1.session'), '-l', `sha256:${f('orpcr.policy')},${f('pw.policy')}`])).toBe(TPM_RC.VALUE);
      await tool('flushcontext', [f('or1.session')]);
      await tool('startauthsession', ['--policy-session', '-S', f('or2.session')]);
      await tool('policypassword', ['-S', f('or2.session')]);
      await tool('policyor', ['-S', f('or2.session'), '-l', `sha256:${f('orpcr.policy')},${f('pw.policy')}`]);
      await tool('unseal', ['-c', f('or.ctx'), '-p', `session:${f('or2.session')}+orpw`, '-o', f('or.out')]);
      await tool('flushcontext', [f('or2.session')]);
      expect((await read('or.out')).toString()).toBe('either branch');
    }, 60_000);

    flow('policyauthorize: a PCR policy signed by an openssl key (loadexternal, verifysignature ticket) opens the object', async () => {
      const parent = await srk();
      expect((await sh('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', f('auth-signer.pem')])).code).toBe(0);
      expect((await sh('openssl', ['pkey', '-in', f('auth-signer.pem'), '-pubout', '-out', f('auth-signer.pub.pem')])).code).toBe(0);
      await tool('loadexternal', ['-G', 'rsa', '-C', 'o', '-u', f('auth-signer.pub.pem'), '-c', f('auth-signer.ctx'), '-n', f('auth-signer.name')]);
      const signerName = await read('auth-signer.name');
      // The object's policy: PolicyAuthorize(signer) = PolicyUpdate(CC_PolicyAuthorize, keySign Name, empty policyRef).
      await tool('startauthsession', ['-S', f('auth-trial.session')]);
      await tool('policyauthorize', ['-S', f('auth-trial.session'), '-L', f('authorized.policy'), '-n', f('auth-signer.name')]);
      await tool('flushcontext', [f('auth-trial.session')]);
      expect((await read('authorized.policy')).equals(sha256(sha256(ZERO32, u32(0x16a), signerName)))).toBe(true);
      await write('auth.in', 'released by an authorized policy');
      await tool('create', ['-C', parent, '-i', f('auth.in'), '-L', f('authorized.policy'), '-a', 'fixedtpm|fixedparent|noda', '-u', f('auth.pub'), '-r', f('auth.priv')]);
      await tool('load', ['-C', parent, '-u', f('auth.pub'), '-r', f('auth.priv'), '-c', f('auth.ctx')]);
      // The signer approves "PCR 16 as it is now", computed here and signed by openssl.
      await tool('pcrreset', ['16']);
      const [v16] = await pcrs([16], 'auth16.bin');
      await write('approved.policy', policyPcr(ZERO32, [16], [v16!]));
      expect((await sh('openssl', ['dgst', '-sha256', '-sign', f('auth-signer.pem'), '-out', f('approved.sig'), f('approved.policy')])).code).toBe(0);
      await tool('verifysignature', ['-c', f('auth-signer.ctx'), '-g', 'sha256', '-m', f('approved.policy'), '-s', f('approved.sig'), '-f', 'rsassa', '-t', f('approved.tkt')]);
      await tool('startauthsession', ['--policy-session', '-S', f('auth.session')]);
      await tool('policypcr', ['-S', f('auth.session'), '-l', 'sha256:16']);
      await tool('policyauthorize', ['-S', f('auth.session'), '-i', f('approved.policy'), '-n', f('auth-signer.name'), '-t', f('approved.tkt')]);
      await tool('unseal', ['-c', f('auth.ctx'), '-p', `session:${f('auth.session')}`, '-o', f('auth.out')]);
      await tool('flushcontext', [f('auth.session')]);
      expect((await read('auth.out')).toString()).toBe('released by an authorized policy');
      // Another PCR 16 value: PolicyPCR's digest no longer equals the approved one (TPM_RC_VALUE from PolicyAuthorize).
      await tool('pcrextend', [`16:sha256=${randomBytes(32).toString('hex')}`]);
      await tool('startauthsession', ['--policy-session', '-S', f('auth2.session')]);
      await tool('policypcr', ['-S', f('auth2.session'), '-l', 'sha256:16']);
      expect(await toolFails('policyauthorize', ['-S', f('auth2.session'), '-i', f('approved.policy'), '-n', f('auth-signer.name'), '-t', f('approved.tkt')])).toBe(TPM_RC.VALUE);
      await tool('flushcontext', [f('auth2.session')]);
      await tool('pcrreset', ['16']);
    });

    flow('policysigned: an openssl signature over the expiration opens the object; another key\'s does not', async () => {
      const parent = await srk();
      for (const k of ['ps-a', 'ps-b']) {
        expect((await sh('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', f(`${k}.pem`)])).code).toBe(0);
        expect((await sh('openssl', ['pkey', '-in', f(`${k}.pem`), '-pubout', '-out', f(`${k}.pub.pem`)])).code).toBe(0);
        // Part 3 §23.3: aHash = H(nonceTPM (empty here) ‖ expiration (INT32 0) ‖ cpHashA (empty) ‖ policyRef (empty)).
        await write(`${k}.expiry`, Buffer.alloc(4));
        expect((await sh('openssl', ['dgst', '-sha256', '-sign', f(`${k}.pem`), '-out', f(`${k}.sig`), f(`${k}.expiry`)])).code).toBe(0);
      }
      await tool('loadexternal', ['-C', 'o', '-G', 'rsa', '-u', f('ps-a.pub.pem'), '-c', f('ps-a.ctx'), '-n', f('ps-a.name')]);
      await tool('startauthsession', ['-S', f('ps-trial.session')]);
      await tool('policysigned', ['-S', f('ps-trial.session'), '-g', 'sha256', '-s', f('ps-a.sig'), '-f', 'rsassa', '-c', f('ps-a.ctx'), '-L', f('signed.policy')]);
      await tool('flushcontext', [f('ps-trial.session')]);
      expect((await read('signed.policy')).equals(sha256(sha256(ZERO32, u32(0x160), await read('ps-a.name'))))).toBe(true);
      await write('signed.in', 'released by a signature');
      await tool('create', ['-C', parent, '-i', f('signed.in'), '-L', f('signed.policy'), '-a', 'fixedtpm|fixedparent|noda', '-u', f('signed.pub'), '-r', f('signed.priv')]);
      await tool('load', ['-C', parent, '-u', f('signed.pub'), '-r', f('signed.priv'), '-c', f('signed.ctx')]);
      await tool('startauthsession', ['--policy-session', '-S', f('ps.session')]);
      await tool('policysigned', ['-S', f('ps.session'), '-g', 'sha256', '-s', f('ps-a.sig'), '-f', 'rsassa', '-c', f('ps-a.ctx')]);
      await tool('unseal', ['-c', f('signed.ctx'), '-p', `session:${f('ps.session')}`, '-o', f('signed.out')]);
      await tool('flushcontext', [f('ps.session')]);
      expect((await read('signed.out')).toString()).toBe('released by a signature');
      // Key A's public key with key B's signature: TPM_RC_SIGNATURE.
      await tool('startauthsession', ['--policy-session', '-S', f('ps2.session')]);
      expect(await toolFails('policysigned', ['-S', f('ps2.session'), '-g', 'sha256', '-s', f('ps-b.sig'), '-f', 'rsassa', '-c', f('ps-a.ctx')])).toBe(TPM_RC.SIGNATURE);
      await tool('flushcontext', [f('ps2.session')]);
    });

    flow('policynv (eq true, ult false), getpolicydigest, policyrestart; policyauthvalue with an HMAC of the object\'s password', async () => {
      const parent = await srk();
      const idx = '0x01500040';
      await tool('nvdefine', ['-C', 'o', '-p', 'nvpass', idx, '-a', 'authread|authwrite', '-s', '4']);
      const value = Buffer.from('00000100', 'hex');
      await write('pnv.value', value);
      await tool('nvwrite', ['-P', 'nvpass', '-i', f('pnv.value'), idx]);
      const nvName = Buffer.from(field(await tool('nvreadpublic', [idx]), 'name'), 'hex');
      await write('pnv.small', Buffer.from('00000010', 'hex'));
      await tool('startauthsession', ['--policy-session', '-S', f('pnv.session')]);
      await tool('policynv', ['-S', f('pnv.session'), '-L', f('pnv.policy'), '-i', f('pnv.value'), idx, 'eq', '-P', 'nvpass']);
      // Part 3 §23.9: H(old ‖ CC_PolicyNV ‖ H(operandB ‖ offset ‖ operation) ‖ nvIndexName).
      const expected = sha256(ZERO32, u32(0x149), sha256(value, u16(0), u16(0)), nvName);
      expect((await read('pnv.policy')).equals(expected)).toBe(true);
      // 0x100 < 0x10 is false: TPM_RC_POLICY, the digest unchanged.
      expect(await toolFails('policynv', ['-S', f('pnv.session'), '-i', f('pnv.small'), idx, 'ult', '-P', 'nvpass'])).toBe(TPM_RC.POLICY);
      await tool('getpolicydigest', ['-S', f('pnv.session'), '-o', f('pnv.digest')]);
      expect((await read('pnv.digest')).equals(expected)).toBe(true);
      await tool('policyrestart', ['-S', f('pnv.session')]);
      await tool('getpolicydigest', ['-S', f('pnv.session'), '-o', f('pnv.digest2')]);
      expect((await read('pnv.digest2')).equals(ZERO32)).toBe(true);
      // PolicyAuthValue: the object's password proven by the session HMAC (not sent in clear as with PolicyPassword).
      await tool('policyauthvalue', ['-S', f('pnv.session'), '-L', f('pav.policy')]);
      expect((await read('pav.policy')).equals(policyAuthValue(ZERO32))).toBe(true);
      await write('pav.in', 'auth value in an HMAC');
      await tool('create', ['-C', parent, '-i', f('pav.in'), '-p', 'pavpw', '-L', f('pav.policy'), '-a', 'fixedtpm|fixedparent|noda', '-u', f('pav.pub'), '-r', f('pav.priv')]);
      await tool('load', ['-C', parent, '-u', f('pav.pub'), '-r', f('pav.priv'), '-c', f('pav.ctx')]);
      await tool('unseal', ['-c', f('pav.ctx'), '-p', `session:${f('pnv.session')}+pavpw`, '-o', f('pav.out')]);
      expect((await read('pav.out')).toString()).toBe('auth value in an HMAC');
      await tool('flushcontext', [f('pnv.session')]);
      await tool('startauthsession', ['--policy-session', '-S', f('pav2.session')]);
      await tool('policyauthvalue', ['-S', f('pav2.session')]);
      expect(await toolFails('unseal', ['-c', f('pav.ctx'), '-p', `session:${f('pav2.session')}+wrong`])).toBe(TPM_RC.BAD_AUTH);
      await tool('flushcontext', [f('pav2.session')]);
      await tool('nvundefine', [idx, '-C', 'o']);
    });

    flow('startauthsession hmac (salted, bound) and policy; sessionconfig encrypt/decrypt on NV write/read', async () => {
      const parent = await srk();
      const idx = '0x01500020';
      await tool('nvdefine', [idx, '-C', 'o', '-s', '32', '-a', 'ownerread|ownerwrite|authread|authwrite|no_da', '-p', 'nvpw']);
      await tool('startauthsession', ['--hmac-session', '-S', f('hs.session'), '-c', parent]);
      await tool('sessionconfig', [f('hs.session'), '--enable-decrypt', '--enable-encrypt']);
      expect(await tool('sessionconfig', [f('hs.session')])).toMatch(/Session-Attributes:.*continuesession\|decrypt\|encrypt/);
      const data = randomBytes(32);
      await write('enc.nv', data);
      await tool('nvwrite', [idx, '-C', idx, '-P', `session:${f('hs.session')}+nvpw`, '-i', f('enc.nv')]);
      await tool('nvread', [idx, '-C', idx, '-P', `session:${f('hs.session')}+nvpw`, '-s', '32', '-o', f('enc.nv.back')]);
      await tool('flushcontext', [f('hs.session')]);
      expect((await read('enc.nv.back')).equals(data)).toBe(true);
      // Read back without a session: the TPM stored the plaintext.
      await tool('nvread', [idx, '-C', 'o', '-s', '32', '-o', f('enc.nv.plain')]);
      expect((await read('enc.nv.plain')).equals(data)).toBe(true);
      // A bound HMAC session (bound to the index) with a wrong password fails.
      await tool('startauthsession', ['--hmac-session', '-S', f('hsb.session'), '--bind-context', idx, '--bind-auth', 'nvpw']);
      await tool('nvread', [idx, '-C', idx, '-P', `session:${f('hsb.session')}+nvpw`, '-s', '32', '-o', f('bound.back')]);
      expect((await read('bound.back')).equals(data)).toBe(true);
      expect(await toolFails('nvread', [idx, '-C', idx, '-P', `session:${f('hsb.session')}+wrong`, '-s', '32'])).toBe(TPM_RC.BAD_AUTH);
      await tool('flushcontext', [f('hsb.session')]);
      // Salted through an RSA key this time (RSA-OAEP salt, Part 1 §19.6.13).
      await tool('createprimary', ['-C', 'o', '-G', 'rsa2048', '-c', f('rsa-salt.ctx')]);
      await tool('startauthsession', ['--hmac-session', '-S', f('hx.session'), '--tpmkey-context', f('rsa-salt.ctx')]);
      await tool('sessionconfig', [f('hx.session'), '--enable-decrypt', '--enable-encrypt']);
      const data2 = randomBytes(32);
      await write('xor.nv', data2);
      await tool('nvwrite', [idx, '-C', idx, '-P', `session:${f('hx.session')}+nvpw`, '-i', f('xor.nv')]);
      await tool('nvread', [idx, '-C', idx, '-P', `session:${f('hx.session')}+nvpw`, '-s', '32', '-o', f('xor.back')]);
      await tool('flushcontext', [f('hx.session')]);
      expect((await read('xor.back')).equals(data2)).toBe(true);
      await tool('nvread', [idx, '-C', 'o', '-s', '32', '-o', f('xor.plain')]);
      expect((await read('xor.plain')).equals(data2)).toBe(true);
      await tool('nvundefine', [idx, '-C', 'o']);
    });

    // --- EK, AK, attestation, credentials ------------------------------------

    /** EK (RSA, low-range template) and an ECC AK under it, shared by the attestation flows. */
    const ekAk = async (): Promise<void> => {
      await tool('createek', ['-c', f('ek.ctx'), '-G', 'rsa', '-u', f('ek.pub')]);
      await tool('createak', ['-C', f('ek.ctx'), '-c', f('ak.ctx'), '-G', 'ecc', '-g', 'sha256', '-s', 'ecdsa', '-u', f('ak.pub'), '-n', f('ak.name'), '-r', f('ak.priv'), '-f', 'pem']);
    };

    oursOnly('EK certificates in NV (0x01c00002 RSA, 0x01c0000a ECC) for createek\'s keys, issued by the trustroot software TPM CA', 'swtpm has EK certificates only after swtpm_setup', async () => {
      const handles = await tool('getcap', ['handles-nv-index']);
      for (const [index, alg] of [['0x01c00002', 'rsa'], ['0x01c0000a', 'ecc']] as const) {
        expect(handles).toMatch(new RegExp(`0x${index.slice(3)}\\b`, 'i'));
        await tool('nvread', [index, '-C', 'o', '-o', f(`ekcert-${alg}.der`)]);
        const x = await sh('openssl', ['x509', '-inform', 'DER', '-in', f(`ekcert-${alg}.der`), '-noout', '-issuer', '-pubkey']);
        expect(x.code, x.stderr).toBe(0);
        expect(x.stdout).toMatch(/issuer=.*CN ?= ?trustroot software TPM CA/);
        await tool('createek', ['-c', f(`ekc-${alg}.ctx`), '-G', alg, '-u', f(`ekc-${alg}.pem`), '-f', 'pem']);
        const certKey = createPublicKey(x.stdout.slice(x.stdout.indexOf('-----BEGIN PUBLIC KEY-----'))).export({ format: 'der', type: 'spki' });
        const ekKey = createPublicKey(await read(`ekc-${alg}.pem`)).export({ format: 'der', type: 'spki' });
        expect(Buffer.from(certKey).equals(Buffer.from(ekKey)), alg).toBe(true);
      }
    });

    flow('createek twice gives the same EK; createak makes a restricted signing key', async () => {
      await ekAk();
      await tool('createek', ['-c', f('ek2.ctx'), '-G', 'rsa', '-u', f('ek2.pub')]);
      expect((await read('ek2.pub')).equals(await read('ek.pub'))).toBe(true);
      const pub = await tool('readpublic', ['-c', f('ak.ctx')]);
      expect(pub).toMatch(/attributes:\s*\n\s*value:.*restricted.*sign/);
      await tool('readpublic', ['-c', f('ak.ctx'), '-n', f('ak.name2')]);
      expect((await read('ak.name2')).equals(await read('ak.name'))).toBe(true);
      await tool('createek', ['-c', f('ekecc.ctx'), '-G', 'ecc', '-u', f('ekecc.pub')]);
      expect(await tool('readpublic', ['-c', f('ekecc.ctx')])).toMatch(/curve-id:\s*\n\s*value: NIST p256/i);
    });

    flow('restricted AK: signs what the TPM hashed (hashcheck ticket); a message that looks like TPMS_ATTEST is refused', async () => {
      await ekAk();
      const msg = randomBytes(200);
      await write('ak.msg', msg);
      await tool('sign', ['-c', f('ak.ctx'), '-g', 'sha256', '-f', 'plain', '-o', f('ak.msg.sig'), f('ak.msg')]);
      expect(cryptoVerify('sha256', msg, createPublicKey(await read('ak.pub')), await read('ak.msg.sig'))).toBe(true);
      // Part 3 §15.4: data starting with TPM_GENERATED_VALUE gets a NULL ticket, which a restricted key refuses.
      await write('fake.msg', Buffer.concat([u32(0xff544347), randomBytes(60)]));
      expect(await toolFails('sign', ['-c', f('ak.ctx'), '-g', 'sha256', '-o', f('fake.sig'), f('fake.msg')])).toBe(TPM_RC.TICKET);
    });

    flow('quote + checkquote; checkquote with a wrong nonce fails; the signature checked by node', async () => {
      await ekAk();
      await tool('pcrextend', [`16:sha256=${randomBytes(32).toString('hex')}`]);
      const nonce = randomBytes(16).toString('hex');
      await tool('quote', ['-c', f('ak.ctx'), '-l', 'sha256:0,1,16', '-q', nonce, '-m', f('q.msg'), '-s', f('q.sig'), '-o', f('q.pcrs'), '-g', 'sha256']);
      await tool('checkquote', ['-u', f('ak.pub'), '-m', f('q.msg'), '-s', f('q.sig'), '-f', f('q.pcrs'), '-g', 'sha256', '-q', nonce]);
      const wrong = randomBytes(16).toString('hex');
      const res = await env().tools.run('checkquote', ['-u', f('ak.pub'), '-m', f('q.msg'), '-s', f('q.sig'), '-f', f('q.pcrs'), '-g', 'sha256', '-q', wrong], { allowFailure: true });
      expect(res.code).not.toBe(0);
      // TPMS_ATTEST: magic TPM_GENERATED_VALUE, type TPM_ST_ATTEST_QUOTE, extraData = the nonce.
      const msg = await read('q.msg');
      expect(msg.readUInt32BE(0)).toBe(0xff544347);
      expect(msg.readUInt16BE(4)).toBe(0x8018);
      expect(msg.includes(Buffer.from(nonce, 'hex'))).toBe(true);
      await tool('quote', ['-c', f('ak.ctx'), '-l', 'sha256:0', '-q', nonce, '-m', f('q2.msg'), '-s', f('q2.sig'), '-f', 'plain', '-g', 'sha256']);
      expect(cryptoVerify('sha256', await read('q2.msg'), createPublicKey(await read('ak.pub')), await read('q2.sig'))).toBe(true);
      // An RSA AK (RSASSA) as well.
      await tool('createak', ['-C', f('ek.ctx'), '-c', f('akr.ctx'), '-G', 'rsa', '-g', 'sha256', '-s', 'rsassa', '-u', f('akr.pub'), '-f', 'pem']);
      await tool('quote', ['-c', f('akr.ctx'), '-l', 'sha256:0,16', '-q', nonce, '-m', f('qr.msg'), '-s', f('qr.sig'), '-o', f('qr.pcrs'), '-g', 'sha256']);
      await tool('checkquote', ['-u', f('akr.pub'), '-m', f('qr.msg'), '-s', f('qr.sig'), '-f', f('qr.pcrs'), '-g', 'sha256', '-q', nonce]);
    });

    flow('makecredential (software, -T none) + activatecredential returns the secret', async () => {
      await ekAk();
      const secret = randomBytes(20);
      await write('cred.secret', secret);
      const akName = (await read('ak.name')).toString('hex');
      await tool('makecredential', ['-e', f('ek.pub'), '-s', f('cred.secret'), '-n', akName, '-o', f('cred.blob')], { tcti: 'none' });
      await tool('startauthsession', ['--policy-session', '-S', f('ek.session')]);
      await tool('policysecret', ['-S', f('ek.session'), '-c', 'e']);
      await tool('activatecredential', ['-c', f('ak.ctx'), '-C', f('ek.ctx'), '-i', f('cred.blob'), '-o', f('cred.out'), '-P', `session:${f('ek.session')}`]);
      await tool('flushcontext', [f('ek.session')]);
      expect((await read('cred.out')).equals(secret)).toBe(true);
      // A credential for another Name does not activate for this AK.
      await tool('makecredential', ['-e', f('ek.pub'), '-s', f('cred.secret'), '-n', `000b${randomBytes(32).toString('hex')}`, '-o', f('cred2.blob')], { tcti: 'none' });
      await tool('startauthsession', ['--policy-session', '-S', f('ek2.session')]);
      await tool('policysecret', ['-S', f('ek2.session'), '-c', 'e']);
      // Part 1 §24.4: the credential's HMAC covers the object's Name: TPM_RC_INTEGRITY.
      expect(await toolFails('activatecredential', ['-c', f('ak.ctx'), '-C', f('ek.ctx'), '-i', f('cred2.blob'), '-o', f('cred2.out'), '-P', `session:${f('ek2.session')}`])).toBe(TPM_RC.INTEGRITY);
      await tool('flushcontext', [f('ek2.session')]).catch(() => undefined);
    });

    flow('certifycreation: the AK certifies a primary\'s creation data; a wrong creation hash is refused (TPM_RC_TICKET)', async () => {
      await ekAk();
      await tool('createprimary', ['-C', 'o', '-G', 'ecc', '-c', f('cc-prim.ctx'), '--creation-data', f('cc.data'), '-d', f('cc.digest'), '-t', f('cc.ticket')]);
      const data = await read('cc.data');
      const digest = await read('cc.digest');
      // The creation hash is H_nameAlg(TPMS_CREATION_DATA) (Part 3 §24.1); the file is the TPM2B.
      expect(data.readUInt16BE(0)).toBe(data.length - 2);
      expect(digest.subarray(digest.length - 32).equals(sha256(data.subarray(2)))).toBe(true);
      await tool('readpublic', ['-c', f('cc-prim.ctx'), '-o', f('cc-prim.pub')]);
      await tool('certifycreation', ['-C', f('ak.ctx'), '-c', f('cc-prim.ctx'), '-d', f('cc.digest'), '-t', f('cc.ticket'), '-g', 'sha256', '-o', f('cc.sig'), '--attestation', f('cc.attest'), '-f', 'plain', '-s', 'ecdsa']);
      const attest = await read('cc.attest');
      expect(attest.readUInt16BE(4)).toBe(0x801a); // TPM_ST_ATTEST_CREATION
      expect(attest.includes(nameOfPublicFile(await read('cc-prim.pub')))).toBe(true);
      expect(attest.includes(sha256(data.subarray(2)))).toBe(true);
      expect(cryptoVerify('sha256', attest, createPublicKey(await read('ak.pub')), await read('cc.sig'))).toBe(true);
      const bad = Buffer.from(digest);
      bad[bad.length - 1]! ^= 1;
      await write('cc.bad', bad);
      expect(await toolFails('certifycreation', ['-C', f('ak.ctx'), '-c', f('cc-prim.ctx'), '-d', f('cc.bad'), '-t', f('cc.ticket'), '-g', 'sha256', '-o', f('cc2.sig'), '--attestation', f('cc2.attest'), '-s', 'ecdsa'])).toBe(TPM_RC.TICKET);
    });

    flow('certify a key with the AK; gettime; signatures checked by node', async () => {
      await ekAk();
      const parent = await srk();
      await tool('create', ['-C', parent, '-G', 'ecc256', '-u', f('ck.pub'), '-r', f('ck.priv')]);
      await tool('load', ['-C', parent, '-u', f('ck.pub'), '-r', f('ck.priv'), '-c', f('ck.ctx')]);
      await tool('certify', ['-c', f('ck.ctx'), '-C', f('ak.ctx'), '-g', 'sha256', '-o', f('cert.attest'), '-s', f('cert.sig'), '-f', 'plain']);
      const akKey = createPublicKey(await read('ak.pub'));
      const attest = await read('cert.attest');
      expect(attest.readUInt16BE(4)).toBe(0x8017); // TPM_ST_ATTEST_CERTIFY
      expect(attest.includes(nameOfPublicFile(await read('ck.pub')))).toBe(true);
      expect(cryptoVerify('sha256', attest, akKey, await read('cert.sig'))).toBe(true);
      const nonce = randomBytes(8).toString('hex');
      const out = await tool('gettime', ['-c', f('ak.ctx'), '-q', nonce, '--attestation', f('time.attest'), '-o', f('time.sig'), '-f', 'plain']);
      const t = await read('time.attest');
      expect(t.readUInt16BE(4)).toBe(0x8019); // TPM_ST_ATTEST_TIME
      expect(t.includes(Buffer.from(nonce, 'hex'))).toBe(true);
      expect(cryptoVerify('sha256', t, akKey, await read('time.sig'))).toBe(true);
      expect(Number(field(out, 'clock'))).toBeGreaterThan(0);
    });

    // --- NV -------------------------------------------------------------------

    flow('nvdefine/nvwrite/nvread/nvreadpublic/nvundefine: what was written is read; 2 KiB through several buffers', async () => {
      const idx = '0x01500016';
      await tool('nvdefine', [idx, '-C', 'o', '-s', '2048', '-a', 'ownerread|ownerwrite|authread|authwrite']);
      const data = randomBytes(2048);
      await write('nv.in', data);
      await tool('nvwrite', [idx, '-C', 'o', '-i', f('nv.in')]);
      await tool('nvread', [idx, '-C', 'o', '-s', '2048', '-o', f('nv.out')]);
      expect((await read('nv.out')).equals(data)).toBe(true);
      await tool('nvread', [idx, '-C', 'o', '-s', '10', '--offset', '1000', '-o', f('nv.part')]);
      expect((await read('nv.part')).equals(data.subarray(1000, 1010))).toBe(true);
      const pub = await tool('nvreadpublic', [idx]);
      expect(pub).toContain('0x1500016:');
      expect(field(pub, 'size')).toBe('2048');
      expect(pub).toMatch(/friendly:.*ownerwrite.*authwrite.*ownerread.*authread.*written/);
      // Name = nameAlg ‖ SHA-256(TPMS_NV_PUBLIC) (Part 1 §16), from the printed fields.
      const attrs = Number(/attributes:\s*\n\s*friendly:.*\n\s*value: (0x[0-9A-Fa-f]+)/.exec(pub)![1]);
      const nvPublic = Buffer.concat([u32(0x01500016), u16(0x000b), u32(attrs), u16(0), u16(2048)]);
      expect(field(pub, 'name')).toBe(`000b${sha256(nvPublic).toString('hex')}`);
      expect(await tool('getcap', ['handles-nv-index'])).toMatch(/0x1500016/i);
      await tool('nvundefine', [idx, '-C', 'o']);
      expect(await tool('getcap', ['handles-nv-index'])).not.toMatch(/0x1500016/i);
      // (tpm2_nvreadpublic of a missing index crashes in tools 5.4 with SIGSEGV, so nvread asks.)
      expect(await toolFails('nvread', [idx, '-C', 'o', '-s', '1'])).toBe(TPM_RC.HANDLE);
    });

    flow('nvincrement, nvextend, nvsetbits: values computed independently', async () => {
      const ctr = '0x01500017';
      await tool('nvdefine', [ctr, '-C', 'o', '-s', '8', '-a', 'nt=counter|ownerread|ownerwrite']);
      await tool('nvincrement', [ctr, '-C', 'o']);
      await tool('nvread', [ctr, '-C', 'o', '-s', '8', '-o', f('ctr1')]);
      await tool('nvincrement', [ctr, '-C', 'o']);
      await tool('nvread', [ctr, '-C', 'o', '-s', '8', '-o', f('ctr2')]);
      const c1 = (await read('ctr1')).readBigUInt64BE(0);
      const c2 = (await read('ctr2')).readBigUInt64BE(0);
      expect(c1).toBeGreaterThanOrEqual(1n);
      expect(c2).toBe(c1 + 1n);

      const ext = '0x01500018';
      await tool('nvdefine', [ext, '-C', 'o', '-g', 'sha256', '-a', 'nt=extend|ownerread|ownerwrite']);
      const e1 = Buffer.from('first');
      const e2 = randomBytes(100);
      await write('e1', e1);
      await write('e2', e2);
      await tool('nvextend', [ext, '-C', 'o', '-i', f('e1')]);
      await tool('nvextend', [ext, '-C', 'o', '-i', f('e2')]);
      await tool('nvread', [ext, '-C', 'o', '-s', '32', '-o', f('ext.out')]);
      expect((await read('ext.out')).equals(sha256(sha256(ZERO32, e1), e2))).toBe(true);

      const bits = '0x01500019';
      await tool('nvdefine', [bits, '-C', 'o', '-a', 'nt=bits|ownerread|ownerwrite']);
      await tool('nvsetbits', [bits, '-C', 'o', '-i', '0x1']);
      await tool('nvsetbits', [bits, '-C', 'o', '-i', '0x8000000000000004']);
      await tool('nvread', [bits, '-C', 'o', '-s', '8', '-o', f('bits.out')]);
      expect((await read('bits.out')).readBigUInt64BE(0)).toBe(0x8000000000000005n);
      for (const i of [ctr, ext, bits]) await tool('nvundefine', [i, '-C', 'o']);
    });

    flow('nvreadlock and nvwritelock: locked access is refused (TPM_RC_NV_LOCKED)', async () => {
      const idx = '0x0150001a';
      await tool('nvdefine', [idx, '-C', 'o', '-s', '16', '-a', 'ownerread|ownerwrite|read_stclear|write_stclear']);
      const data = randomBytes(16);
      await write('lock.in', data);
      await tool('nvwrite', [idx, '-C', 'o', '-i', f('lock.in')]);
      await tool('nvwritelock', [idx, '-C', 'o']);
      expect(await toolFails('nvwrite', [idx, '-C', 'o', '-i', f('lock.in')])).toBe(TPM_RC.NV_LOCKED);
      await tool('nvread', [idx, '-C', 'o', '-s', '16', '-o', f('lock.out')]);
      expect((await read('lock.out')).equals(data)).toBe(true);
      await tool('nvreadlock', [idx, '-C', 'o']);
      expect(await toolFails('nvread', [idx, '-C', 'o', '-s', '16'])).toBe(TPM_RC.NV_LOCKED);
      expect(await tool('nvreadpublic', [idx])).toMatch(/friendly:.*writelocked.*readlocked/);
      await tool('nvundefine', [idx, '-C', 'o']);
    });

    flow('nvcertify: the AK signs the index contents; checked by node', async () => {
      await ekAk();
      const idx = '0x0150001b';
      await tool('nvdefine', [idx, '-C', 'o', '-s', '32', '-a', 'ownerread|ownerwrite|authread|authwrite']);
      const data = randomBytes(32);
      await write('cert.nv', data);
      await tool('nvwrite', [idx, '-C', 'o', '-i', f('cert.nv')]);
      const nonce = randomBytes(8).toString('hex');
      await tool('nvcertify', ['-C', f('ak.ctx'), '-c', 'o', '-g', 'sha256', '-s', 'ecdsa', '-f', 'plain', '-o', f('nvc.sig'), '--attestation', f('nvc.attest'), '--size', '32', '--offset', '0', '-q', nonce, idx]);
      const attest = await read('nvc.attest');
      expect(attest.readUInt16BE(4)).toBe(0x8014); // TPM_ST_ATTEST_NV
      expect(attest.includes(data)).toBe(true);
      expect(attest.includes(Buffer.from(nonce, 'hex'))).toBe(true);
      expect(cryptoVerify('sha256', attest, createPublicKey(await read('ak.pub')), await read('nvc.sig'))).toBe(true);
      await tool('nvundefine', [idx, '-C', 'o']);
    });

    // --- auth values, DA, clock, import, clear --------------------------------

    flow('changeauth of an object: the new password signs, the old one fails', async () => {
      const parent = await srk();
      await tool('create', ['-C', parent, '-G', 'ecc256', '-p', 'old', '-a', 'sign|fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda', '-u', f('ca.pub'), '-r', f('ca.priv')]);
      await tool('load', ['-C', parent, '-u', f('ca.pub'), '-r', f('ca.priv'), '-c', f('ca.ctx')]);
      await tool('changeauth', ['-c', f('ca.ctx'), '-C', parent, '-p', 'old', '-r', f('ca-new.priv'), 'new']);
      await tool('load', ['-C', parent, '-u', f('ca.pub'), '-r', f('ca-new.priv'), '-c', f('ca-new.ctx')]);
      await write('ca.msg', 'sign me');
      await tool('sign', ['-c', f('ca-new.ctx'), '-p', 'new', '-g', 'sha256', '-o', f('ca.sig'), f('ca.msg')]);
      expect(await toolFails('sign', ['-c', f('ca-new.ctx'), '-p', 'old', '-g', 'sha256', '-o', f('ca.sig2'), f('ca.msg')])).toBe(TPM_RC.BAD_AUTH);
    });

    flow('changeauth of the owner, endorsement and platform hierarchies: then the old (empty) password fails', async () => {
      await tool('changeauth', ['-c', 'o', 'ownerpw']);
      try {
        expect(await toolFails('createprimary', ['-C', 'o', '-G', 'ecc', '-c', f('h1.ctx')])).toBe(TPM_RC.BAD_AUTH);
        await tool('createprimary', ['-C', 'o', '-P', 'ownerpw', '-G', 'ecc', '-c', f('h2.ctx')]);
      } finally {
        await tool('changeauth', ['-c', 'o', '-p', 'ownerpw']);
      }
      await tool('createprimary', ['-C', 'o', '-G', 'ecc', '-c', f('h3.ctx')]);
      await tool('changeauth', ['-c', 'e', 'endorsepw']);
      try {
        expect(await toolFails('createprimary', ['-C', 'e', '-G', 'ecc', '-c', f('h4.ctx')])).toBe(TPM_RC.BAD_AUTH);
        await tool('createprimary', ['-C', 'e', '-P', 'endorsepw', '-G', 'ecc', '-c', f('h5.ctx')]);
      } finally {
        await tool('changeauth', ['-c', 'e', '-p', 'endorsepw']);
      }
      await tool('changeauth', ['-c', 'p', 'platformpw']);
      try {
        expect(await toolFails('createprimary', ['-C', 'p', '-G', 'ecc', '-c', f('h6.ctx')])).toBe(TPM_RC.BAD_AUTH);
        await tool('createprimary', ['-C', 'p', '-P', 'platformpw', '-G', 'ecc', '-c', f('h7.ctx')]);
      } finally {
        await tool('changeauth', ['-c', 'p', '-p', 'platformpw']);
      }
    });

    flow('dictionarylockout: parameters set, lockout after maxTries, cleared with the lockout auth', async () => {
      await tool('dictionarylockout', ['-s', '-n', '2', '-t', '600', '-l', '700']);
      const props = await tool('getcap', ['properties-variable']);
      expect(props).toMatch(/TPM2_PT_MAX_AUTH_FAIL:\s*0x2\b/);
      expect(props).toMatch(/TPM2_PT_LOCKOUT_INTERVAL:\s*0x258\b/);
      expect(props).toMatch(/TPM2_PT_LOCKOUT_RECOVERY:\s*0x2BC\b/i);
      const parent = await srk();
      await write('da.in', 'da-protected');
      await tool('create', ['-C', parent, '-i', f('da.in'), '-p', 'dapw', '-u', f('da.pub'), '-r', f('da.priv')]);
      await tool('load', ['-C', parent, '-u', f('da.pub'), '-r', f('da.priv'), '-c', f('da.ctx')]);
      expect(await toolFails('unseal', ['-c', f('da.ctx'), '-p', 'bad1'])).toBe(TPM_RC.AUTH_FAIL);
      expect(await toolFails('unseal', ['-c', f('da.ctx'), '-p', 'bad2'])).toBe(TPM_RC.AUTH_FAIL);
      // Two failures with maxTries 2: locked out, even with the right password.
      expect(await toolFails('unseal', ['-c', f('da.ctx'), '-p', 'dapw'])).toBe(TPM_RC.LOCKOUT);
      expect(await tool('getcap', ['properties-variable'])).toMatch(/inLockout:\s*1/);
      await tool('dictionarylockout', ['-c']);
      expect(await tool('getcap', ['properties-variable'])).toMatch(/TPM2_PT_LOCKOUT_COUNTER:\s*0x0\b/);
      await tool('unseal', ['-c', f('da.ctx'), '-p', 'dapw', '-o', f('da.out')]);
      expect((await read('da.out')).toString()).toBe('da-protected');
      await tool('dictionarylockout', ['-s', '-n', '32', '-t', '600', '-l', '700']);
    });

    flow('readclock: clock and time advance with real time; counters and safe present', async () => {
      const a = await tool('readclock', []);
      const t0 = Date.now();
      await new Promise((res) => setTimeout(res, 300));
      const b = await tool('readclock', []);
      const elapsed = Date.now() - t0;
      const [ta, tb] = [Number(field(a, 'time')), Number(field(b, 'time'))];
      const [ca, cb] = [Number(field(a, 'clock')), Number(field(b, 'clock'))];
      expect(tb - ta).toBeGreaterThanOrEqual(250);
      expect(tb - ta).toBeLessThan(elapsed + 1000);
      expect(cb - ca).toBeGreaterThanOrEqual(250);
      expect(field(b, 'reset_count')).toMatch(/^\d+$/);
      expect(field(b, 'restart_count')).toMatch(/^\d+$/);
      expect(field(b, 'safe')).toMatch(/^(yes|no)$/);
    });

    flow('import of openssl-made RSA and ECC keys; sign in the TPM, verify with openssl', async () => {
      const parent = await srk();
      for (const [alg, gen] of [
        ['rsa', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', f('imp-rsa.pem')]],
        ['ecc', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', f('imp-ecc.pem')]],
      ] as const) {
        const g = await sh('openssl', gen);
        expect(g.code, g.stderr).toBe(0);
        const p = await sh('openssl', ['pkey', '-in', f(`imp-${alg}.pem`), '-pubout', '-out', f(`imp-${alg}.pub.pem`)]);
        expect(p.code, p.stderr).toBe(0);
        await tool('import', ['-C', parent, '-G', alg, '-g', 'sha256', '-i', f(`imp-${alg}.pem`), '-u', f(`imp-${alg}.pub`), '-r', f(`imp-${alg}.priv`)]);
        await tool('load', ['-C', parent, '-u', f(`imp-${alg}.pub`), '-r', f(`imp-${alg}.priv`), '-c', f(`imp-${alg}.ctx`)]);
        await write('imp.msg', `imported ${alg} key signs`);
        await tool('sign', ['-c', f(`imp-${alg}.ctx`), '-g', 'sha256', ...(alg === 'rsa' ? ['-s', 'rsassa'] : ['-s', 'ecdsa']), '-f', 'plain', '-o', f(`imp-${alg}.sig`), f('imp.msg')]);
        expect(await opensslVerifies(f(`imp-${alg}.pub.pem`), f(`imp-${alg}.sig`), f('imp.msg'))).toBe(true);
      }
    });

    oursOnly('trustroot tpm serve restarted on its state folder: NV and persistent keys kept; safe only after an orderly Shutdown', 'swtpm is restarted by other tests (tpm-peers.md §2.3)', async () => {
      const idx = '0x01500030';
      const data = randomBytes(24);
      await write('durable.nv', data);
      await tool('nvdefine', [idx, '-C', 'o', '-s', '24', '-a', 'ownerread|ownerwrite']);
      await tool('nvwrite', [idx, '-C', 'o', '-i', f('durable.nv')]);
      const parent = await srk('durable.ctx');
      await tool('readpublic', ['-c', parent, '-o', f('durable.pub')]);
      await tool('evictcontrol', ['-C', 'o', '-c', parent, '0x81000020']);
      await tool('pcrextend', [`16:sha256=${randomBytes(32).toString('hex')}`]);
      const before = await tool('readclock', []);

      // No Shutdown: the next Startup(CLEAR) is a TPM Reset after a disorderly stop (Part 1 §36.7: safe = NO).
      await env().restart!();
      const after = await tool('readclock', []);
      expect(field(after, 'safe')).toBe('no');
      expect(Number(field(after, 'reset_count'))).toBe(Number(field(before, 'reset_count')) + 1);
      expect(Number(field(after, 'clock'))).toBeGreaterThanOrEqual(Number(field(before, 'clock')));
      await tool('nvread', [idx, '-C', 'o', '-s', '24', '-o', f('durable.back')]);
      expect((await read('durable.back')).equals(data)).toBe(true);
      await tool('readpublic', ['-c', '0x81000020', '-o', f('durable.pub2')]);
      expect((await read('durable.pub2')).equals(await read('durable.pub'))).toBe(true);
      expect((await pcrs([16], 'durable16.bin'))[0]!.equals(ZERO32)).toBe(true); // PCRs are volatile

      // An orderly Shutdown(CLEAR) before the stop: safe again.
      await tool('shutdown', ['-c']);
      await env().restart!();
      expect(field(await tool('readclock', []), 'safe')).toBe('yes');
      await tool('evictcontrol', ['-C', 'o', '-c', '0x81000020']);
      await tool('nvundefine', [idx, '-C', 'o']);
    });

    // Last: clear changes the owner seed (and drops owner NV and persistent objects).
    flow('clear (platform auth): a new SRK differs; owner index and persistent key gone', async () => {
      const parent = await srk('pre-clear.ctx');
      await tool('readpublic', ['-c', parent, '-o', f('pre-clear.pub')]);
      await tool('evictcontrol', ['-C', 'o', '-c', parent, '0x81000011']);
      await tool('nvdefine', ['0x0150001c', '-C', 'o', '-s', '8', '-a', 'ownerread|ownerwrite']);
      const platformIndices = (await tool('getcap', ['handles-nv-index'])).match(/0x1c0[0-9a-f]{4}\b/gi) ?? [];
      await tool('clear', ['-c', 'p']);
      await srk('post-clear.ctx');
      await tool('readpublic', ['-c', f('post-clear.ctx'), '-o', f('post-clear.pub')]);
      expect((await read('post-clear.pub')).equals(await read('pre-clear.pub'))).toBe(false);
      expect(await tool('getcap', ['handles-persistent'])).not.toMatch(/0x81000011/);
      const nvAfter = await tool('getcap', ['handles-nv-index']);
      expect(nvAfter).not.toMatch(/0x150001c/i);
      // Platform-created indices (EK certificates at 0x01c0xxxx) survive TPM2_Clear (Part 3 §24.6).
      for (const h of platformIndices) expect(nvAfter).toContain(h);
      // The same template again gives the new key: the seed changed once.
      await srk('post-clear2.ctx');
      await tool('readpublic', ['-c', f('post-clear2.ctx'), '-o', f('post-clear2.pub')]);
      expect((await read('post-clear2.pub')).equals(await read('post-clear.pub'))).toBe(true);
    });

    if (kind === 'ours') {
      it('NOT_YET names only flows of this suite (a renamed flow must not hide a failure)', () => {
        const unknown = Object.keys(NOT_YET).filter((n) => !n.startsWith('mssim: ') && !flowNames.has(n));
        expect(unknown).toEqual([]);
      });
    }
  });
}

/** The smoke subset over the MS simulator protocol (`mssim` TCTI), ours only (swtpm has no MS platform port). */
function mssimSmoke(): void {
  describe('our simulator over the mssim protocol (smoke subset, tpm2-abrmd with the mssim TCTI)', () => {
    const { env, f, tool } = useTarget('mssim server', () => startOurs('mssim'));
    const flow = (name: string, body: () => Promise<void>): void => {
      const why = NOT_YET[`mssim: ${name}`];
      if (why !== undefined && !RUN_NOT_YET) it.skip(`${name} [NOT_YET: ${why}]`, body, 30_000);
      else it(name, body, 30_000);
    };

    flow('startup, getrandom, getcap, pcrread, pcrextend, hash', async () => {
      await tool('startup', ['-c']);
      expect(await tool('getrandom', ['16', '--hex'])).toMatch(/^[0-9a-f]{32}$/);
      expect(await tool('getcap', ['properties-fixed'])).toContain('"TRST"');
      await tool('pcrreset', ['16']);
      const d = randomBytes(32);
      await tool('pcrextend', [`16:sha256=${d.toString('hex')}`]);
      await tool('pcrread', ['sha256:16', '-o', f('m16.bin')]);
      expect((await readFile(f('m16.bin'))).equals(sha256(ZERO32, d))).toBe(true);
      const data = randomBytes(64);
      expect((await tool('hash', ['-g', 'sha256', '--hex'], { input: data })).trim()).toBe(sha256(data).toString('hex'));
    });

    flow('createprimary twice gives the same key; create, load, sign; openssl verifies', async () => {
      await tool('createprimary', ['-C', 'o', '-G', 'ecc', '-c', f('p1.ctx')]);
      await tool('readpublic', ['-c', f('p1.ctx'), '-o', f('p1.pub')]);
      await tool('createprimary', ['-C', 'o', '-G', 'ecc', '-c', f('p2.ctx')]);
      await tool('readpublic', ['-c', f('p2.ctx'), '-o', f('p2.pub')]);
      expect((await readFile(f('p1.pub'))).equals(await readFile(f('p2.pub')))).toBe(true);
      await tool('create', ['-C', f('p1.ctx'), '-G', 'ecc256:ecdsa-sha256', '-a', 'sign|fixedtpm|fixedparent|sensitivedataorigin|userwithauth', '-u', f('s.pub'), '-r', f('s.priv')]);
      await tool('load', ['-C', f('p1.ctx'), '-u', f('s.pub'), '-r', f('s.priv'), '-c', f('s.ctx')]);
      await tool('readpublic', ['-c', f('s.ctx'), '-f', 'pem', '-o', f('s.pem')]);
      await writeFile(f('s.msg'), 'over mssim');
      await tool('sign', ['-c', f('s.ctx'), '-g', 'sha256', '-f', 'plain', '-o', f('s.sig'), f('s.msg')]);
      expect(await opensslVerifies(f('s.pem'), f('s.sig'), f('s.msg'))).toBe(true);
    });

    // Issue 6: "tpm2-tss's mssim TCTI stalls ~40 ms per command on Nagle and delayed ACK, whatever the server
    // does" (tpm-peers.md §6.5: 3.2.1 writes the 9-byte prefix and the command separately, without TCP_NODELAY).
    // Measured without abrmd (which adds ContextLoad/ContextSave/FlushContext around every command on a
    // transient handle, so ~4 TPM commands per sequence step): the tool's own mssim TCTI on the server, a
    // 40 KB tpm2_hash (HashSequenceStart, 40 SequenceUpdate, SequenceComplete) against a 3-command one.
    // Our server answers in one write with TCP_NODELAY, so a command costs at most that one stall.
    flow('mssim TCTI: per-command cost stays within one delayed-ACK stall (hash sequence of 40 KB, no abrmd)', async () => {
      await env().tools.stop(); // the server serves one client at a time; abrmd holds the connection
      const small = randomBytes(16);
      const big = randomBytes(40 * 1024);
      const timed = async (data: Buffer): Promise<number> => {
        const t0 = performance.now();
        const res = await sh('tpm2_hash', ['-T', `mssim:host=127.0.0.1,port=${env().port}`, '-g', 'sha256', '--hex'], data);
        expect(res.code, res.stderr).toBe(0);
        expect(res.stdout.trim()).toBe(sha256(data).toString('hex'));
        return performance.now() - t0;
      };
      await timed(small); // warm-up
      const tSmall = await timed(small);
      const tBig = await timed(big);
      const perCommand = (tBig - tSmall) / 40;
      console.log(`mssim TCTI (tpm2-tss 3.2.1) on our server: 3-command hash ${tSmall.toFixed(0)} ms, 43-command hash ${tBig.toFixed(0)} ms, ≈${perCommand.toFixed(1)} ms per extra command`);
      // One stall is ~40-45 ms; two per command would be ~90.
      expect(perCommand).toBeLessThan(75);
    });
  });
}

describeWithTpm2Tools('tpm2-tools acceptance (issue 6)', () => {
  toolsSuite('ours', 'our simulator (trustroot tpm serve --protocol swtpm, tpm2-abrmd)', () => startOurs('swtpm'));
  mssimSmoke();
  const sw = swtpmSupport();
  if (sw.available) toolsSuite('swtpm', 'control: Debian swtpm (libtpms), same flows', startControl);
  else if (sw.required) it('swtpm is installed (the control TPM)', () => expect.fail(sw.reason));
  else describe.skip(`control: swtpm [skipped: ${sw.reason}]`, () => undefined);
});
