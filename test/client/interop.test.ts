/**
 * Interoperability with Debian's tpm2-tools 5.4 on one TPM, swtpm or our simulator (issue 4, "Real
 * peers"): objects and files flow both ways through the formats of
 * src/client/files.ts, and every result is checked independently (node:crypto
 * verifies signatures, the tools verify ours, secrets and NV data compare).
 *
 * The tools run through a private tpm2-abrmd (test/support/tpm2-tools.ts). Our
 * client and the tools take turns on swtpm, which serves one client at a
 * time: each `client()` phase opens its own transport, and before closing it
 * proves that nothing transient is left loaded (HANDLES 0x80…, 0x02…).
 */
import { createHash, randomBytes, verify } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  pcrValuesFromReadings,
  plainSignature,
  publicKeyPem,
  readAttestFile,
  readContextFile,
  readCredentialFile,
  readNameFile,
  readPcrValuesFile,
  readPemPublicKey,
  readPrivateFile,
  readPublicFile,
  readSessionFile,
  readSignatureFile,
  signatureFromPlain,
  writeAttestFile,
  writeContextFile,
  writeCredentialFile,
  writeNameFile,
  writePcrValuesFile,
  writePublicFile,
  writeSignatureFile,
} from '../../src/client/files.js';
import { password, Tpm, type Entity } from '../../src/client/index.js';
import { readCapability } from '../../src/tpm/capability.js';
import {
  ActivateCredential,
  ContextLoad,
  ContextSave,
  CreatePrimary,
  Load,
  NV_DefineSpace,
  NV_Read,
  NV_ReadPublic,
  NV_UndefineSpace,
  NV_Write,
  PCR_Extend,
  PolicySecret,
  Quote,
  Sign,
  Startup,
} from '../../src/tpm/commands/index.js';
import { TPM_ALG, TPM_CAP, TPM_ECC, TPM_RH, TPM_ST, TPM_SU } from '../../src/tpm/constants.js';
import { makeCredential } from '../../src/tpm/credential.js';
import { nvName, objectName } from '../../src/tpm/names.js';
import { pcrSelection, readPcrs } from '../../src/tpm/pcr.js';
import { isRc, TPM_RC } from '../../src/tpm/rc.js';
import { publicKeyFromArea } from '../../src/tpm/secret.js';
import { rsaEkTemplate } from '../../src/tpm/templates.js';
import { SwtpmTransport } from '../../src/tpm/transport/index.js';
import { TPMA_NV, TPMA_OBJECT, type TPMS_NV_PUBLIC, type TPMS_PCR_SELECTION, type TPMT_PUBLIC, type TPMT_SIGNATURE } from '../../src/tpm/types/index.js';
import { describeEachTpm, startTpm, type TpmUnderTest } from '../support/tpm-under-test.js';
import { describeWithTpm2Tools, startTpm2Tools, type Tpm2Tools } from '../support/tpm2-tools.js';

const empty = new Uint8Array(0);
const NULL_TICKET = { tag: TPM_ST.HASHCHECK, hierarchy: TPM_RH.NULL, digest: empty } as const;
const NO_CREATION = { outsideInfo: empty, creationPCR: [] };
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const sha256 = (...parts: Uint8Array[]): Uint8Array => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};

/** An ECC P-256 restricted signing key (an AK shape: Part 1 §"Attestation Key"), noDA so no RETRY on first use. */
const AK_TEMPLATE: TPMT_PUBLIC = {
  type: TPM_ALG.ECC,
  nameAlg: TPM_ALG.SHA256,
  objectAttributes: TPMA_OBJECT.of({ fixedTPM: true, fixedParent: true, sensitiveDataOrigin: true, userWithAuth: true, noDA: true, restricted: true, sign: true }),
  authPolicy: empty,
  parameters: { symmetric: { algorithm: TPM_ALG.NULL }, scheme: { scheme: TPM_ALG.ECDSA, details: { hashAlg: TPM_ALG.SHA256 } }, curveID: TPM_ECC.NIST_P256, kdf: { scheme: TPM_ALG.NULL } },
  unique: { x: empty, y: empty },
};

/** node:crypto's verdict on a TPM signature over `message` (SHA-256), through the tools' plain form. */
function nodeVerifies(pub: TPMT_PUBLIC, message: Uint8Array, sig: TPMT_SIGNATURE): boolean {
  // plainSignature gives DER for ECDSA (node's default encoding) and the raw RSASSA signature.
  return verify('sha256', message, publicKeyFromArea(pub), plainSignature(sig));
}

// Each TPM through tpm2-tools: skipped (or failing in CI) without them.
describeWithTpm2Tools('tpm2-tools interop', () => {
  describeEachTpm('interop', (kind) => {
    let sw: TpmUnderTest;
    let tools: Tpm2Tools;
    let dir: string;
    const path = (name: string): string => join(dir, name);
    const save = (name: string, bytes: Uint8Array | string): Promise<void> => writeFile(path(name), bytes);
    const load = async (name: string): Promise<Uint8Array> => new Uint8Array(await readFile(path(name)));

    /** One turn of our client on swtpm: its own connection, closed afterwards, and nothing transient left behind. */
    async function client<T>(fn: (tpm: Tpm) => Promise<T>): Promise<T> {
      const transport = new SwtpmTransport({ port: sw.port, ctrlPort: sw.ctrlPort });
      const tpm = new Tpm(transport);
      try {
        const result = await fn(tpm);
        expect(await readCapability(transport, TPM_CAP.HANDLES, [0x80000000])).toEqual([]);
        expect(await readCapability(transport, TPM_CAP.HANDLES, [0x02000000])).toEqual([]);
        return result;
      } finally {
        await tpm.close();
      }
    }

    async function primary(tpm: Tpm, hierarchy: number, template: TPMT_PUBLIC): Promise<{ entity: Entity; public: TPMT_PUBLIC }> {
      const r = await tpm.run(CreatePrimary, { primaryHandle: hierarchy }, { inSensitive: { userAuth: empty, data: empty }, inPublic: template, ...NO_CREATION });
      const name = objectName(r.params.outPublic);
      expect(hex(r.params.name)).toBe(hex(name));
      return { entity: { handle: r.handles.objectHandle, name }, public: r.params.outPublic };
    }

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'trustroot-interop-'));
      sw = await startTpm(kind);
      await client((tpm) => tpm.run(Startup, {}, { startupType: TPM_SU.CLEAR }));
      tools = await startTpm2Tools(sw, { cwd: dir });
      // The storage primary every tools-created key lives under (tpm2_createprimary's default ECC template).
      await tools.run('createprimary', ['-C', 'o', '-G', 'ecc', '-c', 'prim.ctx']);
      await tools.run('readpublic', ['-c', 'prim.ctx', '-o', 'prim.pub']);
    }, 60_000);

    afterAll(async () => {
      await tools?.stop();
      await sw?.stop();
      if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    });

    it('runs the tools through tpm2-abrmd', () => {
      // CI installs the tabrmd TCTI (scripts/setup.sh); the direct swtpm TCTI is only a local fallback.
      if (process.env['CI'] !== undefined) expect(tools.mode).toBe('abrmd');
    });

    it('tpm2_create keys (-u/-r files): our client loads them under the same primary and signs; tpm2_verifysignature and node:crypto agree', async () => {
      await tools.run('create', ['-C', 'prim.ctx', '-G', 'ecc256:ecdsa-sha256', '-p', 'ecc-auth', '-u', 'ecc.pub', '-r', 'ecc.priv']);
      await tools.run('create', ['-C', 'prim.ctx', '-G', 'rsa2048:rsassa-sha256', '-u', 'rsa.pub', '-r', 'rsa.priv']);
      const message = new Uint8Array(randomBytes(100));
      await save('msg.bin', message);

      const primPub = readPublicFile(await load('prim.pub'));
      const keys = [
        { name: 'ecc', auth: new TextEncoder().encode('ecc-auth'), sigAlg: TPM_ALG.ECDSA },
        { name: 'rsa', auth: empty, sigAlg: TPM_ALG.RSASSA },
      ];
      const loaded = await client((tpm) =>
        tpm.scope(async (s) => {
          // tpm2_createprimary derived the primary from a template with an empty unique: the same template gives the same key.
          const prim = await primary(tpm, TPM_RH.OWNER, { ...primPub, unique: { x: empty, y: empty } } as TPMT_PUBLIC);
          s.defer(prim.entity);
          expect(hex(prim.entity.name)).toBe(hex(objectName(primPub)));
          const out: { pub: TPMT_PUBLIC; sig: TPMT_SIGNATURE }[] = [];
          for (const k of keys) {
            const pub = readPublicFile(await load(`${k.name}.pub`));
            const priv = readPrivateFile(await load(`${k.name}.priv`));
            const r = await tpm.run(Load, { parentHandle: prim.entity }, { inPrivate: priv, inPublic: pub });
            const key: Entity = s.defer({ handle: r.handles.objectHandle, name: objectName(pub), authValue: k.auth });
            expect(hex(r.params.name)).toBe(hex(key.name));
            const { signature } = (
              await tpm.run(Sign, { keyHandle: key }, { digest: sha256(message), inScheme: { scheme: TPM_ALG.NULL }, validation: NULL_TICKET })
            ).params;
            expect(signature.sigAlg).toBe(k.sigAlg);
            out.push({ pub, sig: signature });
          }
          return out;
        }),
      );

      for (const [i, k] of keys.entries()) {
        const { pub, sig } = loaded[i]!;
        expect(nodeVerifies(pub, message, sig)).toBe(true);
        await save(`${k.name}.sig`, writeSignatureFile(sig));
        await tools.run('load', ['-C', 'prim.ctx', '-u', `${k.name}.pub`, '-r', `${k.name}.priv`, '-c', `${k.name}.ctx`]);
        await tools.run('verifysignature', ['-c', `${k.name}.ctx`, '-g', 'sha256', '-m', 'msg.bin', '-s', `${k.name}.sig`]);
        // The tools must be able to say no: the same signature over another message.
        await save('other.bin', new Uint8Array(randomBytes(100)));
        expect((await tools.run('verifysignature', ['-c', `${k.name}.ctx`, '-g', 'sha256', '-m', 'other.bin', '-s', `${k.name}.sig`], { allowFailure: true })).code).not.toBe(0);

        // Our PEM is the SubjectPublicKeyInfo tpm2_readpublic writes for the same key.
        await tools.run('readpublic', ['-c', `${k.name}.ctx`, '-f', 'pem', '-o', `${k.name}.tools.pem`]);
        const theirs = readPemPublicKey(await load(`${k.name}.tools.pem`));
        const ours = readPemPublicKey(publicKeyPem(pub));
        expect(Buffer.from(ours.export({ type: 'spki', format: 'der' })).equals(Buffer.from(theirs.export({ type: 'spki', format: 'der' })))).toBe(true);

        // The tools' own signatures, in tss and plain form, read back and verified by node:crypto.
        const auth = k.auth.length > 0 ? ['-p', 'ecc-auth'] : [];
        await tools.run('sign', ['-c', `${k.name}.ctx`, ...auth, '-g', 'sha256', '-o', `${k.name}.tools.sig`, 'msg.bin']);
        await tools.run('sign', ['-c', `${k.name}.ctx`, ...auth, '-g', 'sha256', '-f', 'plain', '-o', `${k.name}.tools.plain`, 'msg.bin']);
        expect(nodeVerifies(pub, message, readSignatureFile(await load(`${k.name}.tools.sig`)))).toBe(true);
        const plain = await load(`${k.name}.tools.plain`);
        expect(verify('sha256', message, publicKeyFromArea(pub), plain)).toBe(true);
        const fromPlain = signatureFromPlain(plain, { sigAlg: k.sigAlg, hashAlg: TPM_ALG.SHA256 });
        expect(hex(plainSignature(fromPlain))).toBe(hex(plain));
      }
    }, 60_000);

    it('context files: our client loads a tpm2_create -c context and signs; tpm2_sign signs with a context our client saved', async () => {
      await tools.run('create', ['-C', 'prim.ctx', '-G', 'ecc256:ecdsa-sha256', '-u', 'k2.pub', '-r', 'k2.priv', '-c', 'k2.ctx']);
      const pub = readPublicFile(await load('k2.pub'));
      const file = readContextFile(await load('k2.ctx'));
      expect(file.context.hierarchy).toBe(TPM_RH.OWNER);
      expect(file.context.savedHandle).toBe(0x80000000);
      expect(file.metadata?.resource.type).toBe('key');
      const meta = file.metadata!;
      expect(hex(meta.name)).toBe(hex(objectName(pub)));
      if (meta.resource.type === 'key') expect(hex(writePublicFile(meta.resource.public))).toBe(hex(writePublicFile(pub)));
      // Nothing is lost between the tools' bytes and ours.
      expect(hex(writeContextFile({ context: file.context, metadata: meta }))).toBe(hex(await load('k2.ctx')));

      const message = new Uint8Array(randomBytes(64));
      await save('msg2.bin', message);
      const saved = await client((tpm) =>
        tpm.scope(async (s) => {
          const r = await tpm.run(ContextLoad, {}, { context: file.context });
          const key = s.defer({ handle: r.handles.loadedHandle, name: objectName(pub) });
          const { signature } = (await tpm.run(Sign, { keyHandle: key }, { digest: sha256(message), inScheme: { scheme: TPM_ALG.NULL }, validation: NULL_TICKET })).params;
          expect(nodeVerifies(pub, message, signature)).toBe(true);
          return (await tpm.run(ContextSave, { saveHandle: key.handle }, {})).params.context;
        }),
      );
      await save('ours.ctx', writeContextFile({ context: saved, metadata: { handle: 0x80000000, name: objectName(pub), resource: { type: 'key', public: pub } } }));
      await tools.run('sign', ['-c', 'ours.ctx', '-g', 'sha256', '-o', 'ours.sig', 'msg2.bin']);
      expect(nodeVerifies(pub, message, readSignatureFile(await load('ours.sig')))).toBe(true);
    }, 60_000);

    it('our client quotes (two banks, eleven PCRs); tpm2_checkquote verifies our -m/-s/-f/-u files and rejects altered ones', async () => {
      const selections: TPMS_PCR_SELECTION[] = [pcrSelection(TPM_ALG.SHA256, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 16]), pcrSelection(TPM_ALG.SHA1, [16])];
      const nonce = new Uint8Array(randomBytes(16));
      const q = await client((tpm) =>
        tpm.scope(async (s) => {
          // PCR 16 (debug, resettable) gets a value, so the quote covers more than zeros.
          const extend = new Uint8Array(randomBytes(32));
          await tpm.run(PCR_Extend, { pcrHandle: 16 }, { digests: [{ hashAlg: TPM_ALG.SHA256, digest: extend }, { hashAlg: TPM_ALG.SHA1, digest: extend.subarray(0, 20) }] as never });
          const ak = await primary(tpm, TPM_RH.OWNER, AK_TEMPLATE);
          s.defer(ak.entity);
          const r = await tpm.run(Quote, { signHandle: ak.entity }, { qualifyingData: nonce, inScheme: { scheme: TPM_ALG.NULL }, PCRselect: selections });
          const readings = await readPcrs(tpm.transport, selections);
          return { ak: ak.public, quoted: r.params.quoted, signature: r.params.signature, readings };
        }),
      );
      const values = pcrValuesFromReadings(selections, q.readings);
      expect(values.digests.some((d) => d.some((b) => b !== 0))).toBe(true);
      const msg = writeAttestFile(q.quoted);
      expect(nodeVerifies(q.ak, msg, q.signature)).toBe(true);
      await save('q.msg', msg);
      await save('q.sig', writeSignatureFile(q.signature));
      await save('q.plain', plainSignature(q.signature));
      await save('q.pcrs', writePcrValuesFile(values));
      await save('ak.pem', publicKeyPem(q.ak));
      await save('ak.pub', writePublicFile(q.ak));

      const check = (args: string[]) => tools.run('checkquote', ['-m', 'q.msg', '-g', 'sha256', '-q', hex(nonce), ...args], { allowFailure: true });
      expect((await check(['-u', 'ak.pem', '-s', 'q.sig', '-f', 'q.pcrs'])).code).toBe(0);
      expect((await check(['-u', 'ak.pub', '-s', 'q.sig', '-f', 'q.pcrs'])).code).toBe(0);
      expect((await check(['-u', 'ak.pem', '-s', 'q.plain', '-f', 'q.pcrs'])).code).toBe(0);

      // One PCR value changed (the ninth digest: the second TPML_DIGEST of the file) → the composite differs.
      const altered = values.digests.map((d) => d.slice());
      altered[8]![0]! ^= 1;
      await save('q.bad.pcrs', writePcrValuesFile({ selections: values.selections, digests: altered }));
      expect((await check(['-u', 'ak.pem', '-s', 'q.sig', '-f', 'q.bad.pcrs'])).code).not.toBe(0);
      // Another nonce, another key, or a flipped byte in the message.
      expect((await tools.run('checkquote', ['-m', 'q.msg', '-g', 'sha256', '-q', hex(randomBytes(16)), '-u', 'ak.pem', '-s', 'q.sig', '-f', 'q.pcrs'], { allowFailure: true })).code).not.toBe(0);
      await save('other.pem', publicKeyPem(readPublicFile(await load('ecc.pub'))));
      expect((await check(['-u', 'other.pem', '-s', 'q.sig', '-f', 'q.pcrs'])).code).not.toBe(0);
      const flipped = msg.slice();
      flipped[flipped.length - 1]! ^= 1;
      await save('q.msg', flipped);
      expect((await check(['-u', 'ak.pem', '-s', 'q.sig', '-f', 'q.pcrs'])).code).not.toBe(0);
    }, 60_000);

    it('tpm2_quote files (-m, -s, -o) read by our readers: the signature verifies and the PCR values give the signed pcrDigest', async () => {
      await tools.run('create', [
        '-C', 'prim.ctx', '-G', 'ecc256:ecdsa-sha256:null',
        '-a', 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign',
        '-u', 'tak.pub', '-r', 'tak.priv', '-c', 'tak.ctx',
      ]);
      const nonce = new Uint8Array(randomBytes(20));
      await tools.run('quote', ['-c', 'tak.ctx', '-l', 'sha256:0,1,2,3,4,5,6,7,8,16+sha1:16', '-q', hex(nonce), '-m', 'tq.msg', '-s', 'tq.sig', '-o', 'tq.pcrs', '-g', 'sha256']);
      const msg = await load('tq.msg');
      const attest = readAttestFile(msg);
      const pub = readPublicFile(await load('tak.pub'));
      expect(attest.type).toBe(TPM_ST.ATTEST_QUOTE);
      expect(hex(attest.extraData)).toBe(hex(nonce));
      expect(nodeVerifies(pub, msg, readSignatureFile(await load('tq.sig')))).toBe(true);

      const pcrFile = await load('tq.pcrs');
      const values = readPcrValuesFile(pcrFile);
      const want = [pcrSelection(TPM_ALG.SHA256, [0, 1, 2, 3, 4, 5, 6, 7, 8, 16]), pcrSelection(TPM_ALG.SHA1, [16])];
      expect(values.selections.map((s) => [s.hash, hex(s.pcrSelect)])).toEqual(want.map((s) => [s.hash, hex(s.pcrSelect)]));
      expect(values.digests).toHaveLength(11);
      if (attest.type !== TPM_ST.ATTEST_QUOTE) throw new Error('unreachable');
      expect(hex(attest.attested.pcrDigest)).toBe(hex(sha256(...values.digests)));
      // The values are the TPM's, as our client reads them.
      const readings = await client((tpm) => readPcrs(tpm.transport, want));
      expect(values.digests.map(hex)).toEqual(pcrValuesFromReadings(want, readings).digests.map(hex));
      // Our writer lays the same values out byte for byte as the tool did.
      expect(hex(writePcrValuesFile(values))).toBe(hex(pcrFile));
    }, 60_000);

    it('tpm2_makecredential -T none (EK public and AK Name from our files) → our ActivateCredential returns the secret', async () => {
      const secret = new Uint8Array(randomBytes(32));
      await save('secret.bin', secret);
      await client((tpm) =>
        tpm.scope(async (s) => {
          const ek = await primary(tpm, TPM_RH.ENDORSEMENT, rsaEkTemplate());
          s.defer(ek.entity);
          const ak = await primary(tpm, TPM_RH.OWNER, AK_TEMPLATE);
          s.defer(ak.entity);
          await save('our-ek.pub', writePublicFile(ek.public));
          await save('our-ak.name', writeNameFile(ak.entity.name));
          // -T none: the tool does MakeCredential in software and never touches swtpm, so our connection may stay open.
          const akName = hex(readNameFile(await load('our-ak.name')));
          await tools.run('makecredential', ['-u', 'our-ek.pub', '-s', 'secret.bin', '-n', akName, '-o', 'cred.bin'], { tcti: 'none' });
          const wrongName = hex(objectName(ek.public));
          await tools.run('makecredential', ['-u', 'our-ek.pub', '-s', 'secret.bin', '-n', wrongName, '-o', 'cred-other.bin'], { tcti: 'none' });

          const activate = async (file: string): Promise<Uint8Array> => {
            const { credentialBlob, secret: encryptedSecret } = readCredentialFile(await load(file));
            return tpm.withSession({ type: 'policy' }, async (session) => {
              // The EK's policy: PolicySecret(TPM_RH_ENDORSEMENT) (EK Credential Profile, policy A).
              await tpm.run(PolicySecret, { authHandle: TPM_RH.ENDORSEMENT, policySession: session }, { nonceTPM: empty, cpHashA: empty, policyRef: empty, expiration: 0 });
              const r = await tpm.run(ActivateCredential, { activateHandle: ak.entity, keyHandle: ek.entity }, { credentialBlob, secret: encryptedSecret }, { sessions: [password(), session] });
              return r.params.certInfo;
            });
          };
          expect(hex(await activate('cred.bin'))).toBe(hex(secret));
          const err = await activate('cred-other.bin').catch((e: unknown) => e);
          expect(isRc(err, TPM_RC.INTEGRITY)).toBe(true);
        }),
      );
    }, 60_000);

    it('our makeCredential (EK public, AK Name from tpm2_createek/tpm2_createak files) → tpm2_activatecredential returns the secret', async () => {
      await tools.run('createek', ['-c', 'ek.ctx', '-G', 'rsa', '-u', 'ek.pub']);
      await tools.run('createak', ['-C', 'ek.ctx', '-c', 'ak.ctx', '-G', 'ecc', '-g', 'sha256', '-s', 'ecdsa', '-u', 'ak.pub', '-n', 'ak.name']);
      const ekPub = readPublicFile(await load('ek.pub'));
      const akPub = readPublicFile(await load('ak.pub'));
      const akName = readNameFile(await load('ak.name'));
      expect(hex(akName)).toBe(hex(objectName(akPub)));
      // The tools' EK is the TCG low-range RSA EK: our template, with the modulus in unique.
      const template = rsaEkTemplate();
      expect(hex(writePublicFile({ ...ekPub, unique: template.unique } as TPMT_PUBLIC))).toBe(hex(writePublicFile(template)));
      expect(readContextFile(await load('ek.ctx')).context.hierarchy).toBe(TPM_RH.ENDORSEMENT);

      const secret = new Uint8Array(randomBytes(32));
      await save('ours-cred.bin', writeCredentialFile(makeCredential(ekPub, akName, secret)));
      await save('ours-cred-other.bin', writeCredentialFile(makeCredential(ekPub, objectName(ekPub), secret)));

      const activate = async (file: string, out: string) => {
        await tools.run('startauthsession', ['--policy-session', '-S', 'session.ctx']);
        try {
          const session = readSessionFile(await load('session.ctx'));
          expect(session.sessionType).toBe(0x01);
          expect(session.authHash).toBe(TPM_ALG.SHA256);
          expect(session.context.metadata?.resource.type).toBe('session');
          await tools.run('policysecret', ['-S', 'session.ctx', '-c', 'e']);
          return await tools.run('activatecredential', ['-c', 'ak.ctx', '-C', 'ek.ctx', '-i', file, '-o', out, '-P', 'session:session.ctx'], { allowFailure: true });
        } finally {
          await tools.run('flushcontext', ['session.ctx']);
        }
      };
      expect((await activate('ours-cred.bin', 'act.bin')).code).toBe(0);
      expect(hex(await load('act.bin'))).toBe(hex(secret));
      expect((await activate('ours-cred-other.bin', 'act-other.bin')).code).not.toBe(0);
    }, 60_000);

    it('tpm2_nvdefine/tpm2_nvwrite → our NV_Read (password and HMAC session); our NV_DefineSpace/NV_Write → tpm2_nvread', async () => {
      const theirs = 0x01500016;
      const ours = 0x01500017;
      const data = new Uint8Array(randomBytes(48));
      await save('nv.bin', data);
      await tools.run('nvdefine', [`0x${theirs.toString(16)}`, '-C', 'o', '-s', '48', '-a', 'ownerread|ownerwrite|authread|authwrite|no_da', '-p', 'nv-auth']);
      await tools.run('nvwrite', [`0x${theirs.toString(16)}`, '-C', `0x${theirs.toString(16)}`, '-P', 'nv-auth', '-i', 'nv.bin']);

      const written = new Uint8Array(randomBytes(40));
      await client(async (tpm) => {
        const { nvPublic, nvName: reported } = (await tpm.run(NV_ReadPublic, { nvIndex: theirs }, {})).params;
        expect(nvPublic.dataSize).toBe(48);
        expect(nvPublic.attributes.AUTHREAD && nvPublic.attributes.WRITTEN).toBe(true);
        // The Name we use is the one we compute from the public area, which must agree with the TPM's.
        const index: Entity = { handle: theirs, name: nvName(nvPublic), authValue: new TextEncoder().encode('nv-auth') };
        expect(hex(reported)).toBe(hex(index.name));
        const viaPassword = (await tpm.run(NV_Read, { authHandle: index, nvIndex: index }, { size: 48, offset: 0 })).params.data;
        expect(hex(viaPassword)).toBe(hex(data));
        const viaHmac = await tpm.withSession({ type: 'hmac' }, async (session) =>
          (await tpm.run(NV_Read, { authHandle: index, nvIndex: index }, { size: 16, offset: 32 }, { sessions: [session.use({ encrypt: true })] })).params.data,
        );
        expect(hex(viaHmac)).toBe(hex(data.subarray(32)));

        const publicInfo: TPMS_NV_PUBLIC = {
          nvIndex: ours,
          nameAlg: TPM_ALG.SHA256,
          attributes: TPMA_NV.of({ OWNERREAD: true, OWNERWRITE: true, AUTHREAD: true, AUTHWRITE: true, NO_DA: true }),
          authPolicy: empty,
          dataSize: 40,
        };
        await tpm.run(NV_DefineSpace, { authHandle: TPM_RH.OWNER }, { auth: empty, publicInfo });
        await tpm.run(NV_Write, { authHandle: TPM_RH.OWNER, nvIndex: { handle: ours, name: nvName(publicInfo) } }, { data: written, offset: 0 });
      });

      await tools.run('nvread', [`0x${ours.toString(16)}`, '-C', 'o', '-s', '40', '-o', 'nv-ours.bin']);
      expect(hex(await load('nv-ours.bin'))).toBe(hex(written));
      await tools.run('nvreadpublic', [`0x${ours.toString(16)}`]);

      await client(async (tpm) => {
        for (const nvIndex of [theirs, ours]) await tpm.run(NV_UndefineSpace, { authHandle: TPM_RH.OWNER, nvIndex }, {});
      });
      expect((await tools.run('nvread', [`0x${ours.toString(16)}`, '-C', 'o', '-s', '40', '-o', 'gone.bin'], { allowFailure: true })).code).not.toBe(0);
    }, 60_000);
  });
});
