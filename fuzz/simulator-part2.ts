/**
 * The part 2 commands of the fuzz recording (issue 7 "Bad input": seeds of
 * every kind): each one made to SUCCEED once, so its mutations reach the
 * handler and not just the checks in front of it. Called from
 * recordClientSession (fuzz/simulator.ts) in two places: `recordPart2`
 * after the everyday commands, `recordSeedChanges` just before Clear and
 * Shutdown at the end, because ChangePPS and ChangeEPS give the hierarchies
 * new seeds (every primary key after them is another key).
 */
import { createECDH, createHash, generateKeyPairSync, sign as nodeSign } from 'node:crypto';
import {
  aesKeyTemplate,
  certifyCreation,
  createPrimary,
  duplicateKey,
  duplicationPolicy,
  eccEcdhTemplate,
  eccSigningTemplate,
  eccStorageTemplate,
  encryptDecrypt,
  getCommandAuditDigest,
  getRandom,
  getSessionAuditDigest,
  importDuplicate,
  importKey,
  load,
  loadExternal,
  nvDefine,
  nvGlobalWriteLock,
  nvUndefine,
  nvWrite,
  sign,
  signatureFromNode,
  verifySignature,
  type Entity,
  type Tpm,
} from '../src/client/index.js';
import {
  ChangeEPS,
  ChangePPS,
  ClockSet,
  Commit,
  ECC_Parameters,
  EC_Ephemeral,
  GetRandom,
  HierarchyControl,
  LoadExternal,
  NV_ChangeAuth,
  NV_UndefineSpaceSpecial,
  PCR_SetAuthPolicy,
  PCR_SetAuthValue,
  PolicyAuthorize,
  PolicyAuthorizeNV,
  PolicyCommandCode,
  PolicyNV,
  PolicyRestart,
  PolicySigned,
  PolicyTicket,
  ReadClock,
  Rewrap,
  SetCommandCodeAuditStatus,
  SetPrimaryPolicy,
  ZGen_2Phase,
} from '../src/tpm/commands/index.js';
import { TPM_ALG, TPM_CC, TPM_ECC, TPM_EO, TPM_RH } from '../src/tpm/constants.js';
import { externalObject } from '../src/tpm/duplication.js';
import { handleName } from '../src/tpm/names.js';
import { PolicyCalculator, policySignedDigest } from '../src/tpm/policy.js';
import { TPMA_OBJECT, TPMT_HA, type TPMS_ECC_POINT, type TPMT_PUBLIC } from '../src/tpm/types/index.js';
import { encode } from '../src/tpm/wire/codec.js';

/** One recorded step: runs `fn`, notes a failure by name and goes on. */
export type Step = <T>(name: string, fn: () => Promise<T>) => Promise<T | undefined>;

const EMPTY = new Uint8Array(0);
const SHA256 = TPM_ALG.SHA256;
const sha256 = (...parts: Uint8Array[]): Uint8Array => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};
/** PolicyCommandCode(code) alone: the usual ADMIN policy (Part 3 §23.11). */
const commandCodePolicy = (code: number): Uint8Array => new PolicyCalculator(SHA256).policyCommandCode({ code }).digest;
/** sign | userWithAuth, neither fixedTPM nor fixedParent: a key that may come from outside or be duplicated. */
const MOVABLE_SIGNER = TPMA_OBJECT.of({ sign: true, userWithAuth: true });
/** Policy sessions here never encrypt parameters. */
const POLICY = { type: 'policy', symmetric: { algorithm: TPM_ALG.NULL } } as const;

/** A node:crypto P-256 key pair's public point as the TPM writes it. */
function pointOf(): TPMS_ECC_POINT {
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  const pub = new Uint8Array(ecdh.getPublicKey(null, 'uncompressed'));
  return { x: pub.slice(1, 33), y: pub.slice(33) };
}

/** The everyday commands' part 2 companions: audit, duplication, the remaining policies, ECC two-phase, NV and hierarchy administration. */
export async function recordPart2(tpm: Tpm, step: Step): Promise<void> {
  await step('CertifyCreation', async () => {
    const k = await createPrimary(tpm, TPM_RH.OWNER, eccSigningTemplate());
    await certifyCreation(tpm, k, k, { creationHash: k.creation.hash, creationTicket: k.creation.ticket }, Uint8Array.of(1, 2, 3));
    await tpm.flush(k);
  });
  await step('EncryptDecrypt (the first form)', async () => {
    const k = await createPrimary(tpm, TPM_RH.OWNER, aesKeyTemplate());
    await encryptDecrypt(tpm, k, false, new Uint8Array(48).fill(5), { command: 'EncryptDecrypt' });
    await tpm.flush(k);
  });

  // PolicySigned by a key from outside (node:crypto), then its ticket in another session (Part 3 §23.3, §23.5).
  await step('PolicySigned, PolicyTicket', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const { publicArea } = externalObject({ type: 'ecc', privateKey }, { objectAttributes: MOVABLE_SIGNER });
    const signer = await loadExternal(tpm, publicArea);
    const expiration = -30; // negative: a ticket comes back
    const message = new Uint8Array(4);
    new DataView(message.buffer).setInt32(0, expiration);
    // aHash = H(nonceTPM ‖ expiration ‖ cpHashA ‖ policyRef), all empty but expiration: node:crypto hashes `message` itself.
    if (Buffer.compare(sha256(message), policySignedDigest(SHA256, { expiration })) !== 0) throw new Error('PolicySigned digest');
    const auth = signatureFromNode(publicArea, TPM_ALG.ECDSA, SHA256, new Uint8Array(nodeSign('sha256', message, privateKey)));
    const r = await tpm.withSession(POLICY, (s) => tpm.run(PolicySigned, { authObject: signer, policySession: s }, { nonceTPM: EMPTY, cpHashA: EMPTY, policyRef: EMPTY, expiration, auth }));
    await tpm.withSession(POLICY, (s) =>
      tpm.run(PolicyTicket, { policySession: s }, { timeout: r.params.timeout, cpHashA: EMPTY, policyRef: EMPTY, authName: signer.name, ticket: r.params.policyTicket }),
    );
    await tpm.flush(signer);
  });

  // PolicyAuthorize with a VerifySignature ticket over approvedPolicy ‖ policyRef (Part 3 §23.16).
  await step('PolicyAuthorize', async () => {
    const authority = await createPrimary(tpm, TPM_RH.OWNER, eccSigningTemplate());
    const approved = commandCodePolicy(TPM_CC.Unseal);
    const policyRef = Uint8Array.of(0x42);
    const aHash = sha256(approved, policyRef);
    const checkTicket = await verifySignature(tpm, authority, aHash, await sign(tpm, authority, aHash));
    await tpm.withSession(POLICY, async (s) => {
      await tpm.run(PolicyCommandCode, { policySession: s }, { code: TPM_CC.Unseal });
      await tpm.run(PolicyAuthorize, { policySession: s }, { approvedPolicy: approved, policyRef, keySign: authority.name, checkTicket });
    });
    await tpm.flush(authority);
  });

  // PolicyNV on an index holding a TPMT_HA, which PolicyAuthorizeNV then approves (Part 3 §23.9, §23.22).
  await step('PolicyNV, PolicyAuthorizeNV', async () => {
    const approved = encode(TPMT_HA, new PolicyCalculator(SHA256).policyCommandCode({ code: TPM_CC.Unseal }).toHa());
    const nv = await nvDefine(tpm, { index: 0x01500030, size: approved.length });
    await nvWrite(tpm, nv, approved);
    await tpm.withSession(POLICY, async (s) => {
      await tpm.run(PolicyNV, { authHandle: nv, nvIndex: nv, policySession: s }, { operandB: approved.subarray(0, 2), offset: 0, operation: TPM_EO.EQ });
      await tpm.run(PolicyRestart, { sessionHandle: s }, {});
      await tpm.run(PolicyCommandCode, { policySession: s }, { code: TPM_CC.Unseal });
      await tpm.run(PolicyAuthorizeNV, { authHandle: nv, nvIndex: nv, policySession: s }, {});
    });
    await nvUndefine(tpm, nv);
  });

  // Duplicate (Part 3 §13.1) under PolicyDuplicationSelect, inner-wrapped, imported back; and under PolicyCommandCode to NULL.
  await step('Duplicate, PolicyDuplicationSelect', async () => {
    const parent = await createPrimary(tpm, TPM_RH.OWNER, eccStorageTemplate());
    const toParent = await importKey(tpm, parent, parent.publicArea, { type: 'ecc', privateKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey }, {
      objectAttributes: MOVABLE_SIGNER,
      authPolicy: duplicationPolicy(SHA256, { newParentName: parent.name }),
    });
    const k = await load(tpm, parent, { privateBlob: toParent.privateArea, publicArea: toParent.publicArea });
    const blob = await duplicateKey(tpm, k, toParent.publicArea, parent, { innerWrap: true });
    await tpm.flush(k);
    await importDuplicate(tpm, parent, parent.publicArea, blob);
    // Rewrap (Part 3 §13.2): the outer wrapper moved to another parent, where the blob imports.
    const other = await createPrimary(tpm, TPM_RH.OWNER, eccStorageTemplate(), { outsideInfo: Uint8Array.of(2) });
    const moved = await tpm.run(Rewrap, { oldParent: parent, newParent: other }, { inDuplicate: blob.duplicate, name: toParent.name, inSymSeed: blob.inSymSeed });
    await importDuplicate(tpm, other, other.publicArea, { ...blob, duplicate: moved.params.outDuplicate, inSymSeed: moved.params.outSymSeed });
    await tpm.flush(other);
    const anywhere = await importKey(tpm, parent, parent.publicArea, { type: 'ecc', privateKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey }, {
      objectAttributes: MOVABLE_SIGNER,
      authPolicy: duplicationPolicy(SHA256),
    });
    const k2 = await load(tpm, parent, { privateBlob: anywhere.privateArea, publicArea: anywhere.publicArea });
    await duplicateKey(tpm, k2, anywhere.publicArea, TPM_RH.NULL);
    await tpm.flush(k2);
    await tpm.flush(parent);
  });

  // Command audit and an audit session (Part 3 §18.5, §18.6, §21.2).
  await step('audit', async () => {
    const signer = await createPrimary(tpm, TPM_RH.OWNER, eccSigningTemplate());
    await tpm.run(SetCommandCodeAuditStatus, { auth: TPM_RH.OWNER }, { auditAlg: SHA256, setList: [], clearList: [] });
    await tpm.run(SetCommandCodeAuditStatus, { auth: TPM_RH.OWNER }, { auditAlg: TPM_ALG.NULL, setList: [GetRandom.code], clearList: [] });
    await getRandom(tpm, 8);
    await getCommandAuditDigest(tpm, signer, Uint8Array.of(7));
    await tpm.withSession({ type: 'hmac' }, async (s) => {
      await tpm.run(GetRandom, {}, { bytesRequested: 8 }, { sessions: [s.use({ audit: true })] });
      await getSessionAuditDigest(tpm, signer, s, Uint8Array.of(8));
    });
    await tpm.run(SetCommandCodeAuditStatus, { auth: TPM_RH.OWNER }, { auditAlg: TPM_ALG.NULL, setList: [], clearList: [GetRandom.code] });
    await tpm.flush(signer);
  });

  // ECC_Parameters, EC_Ephemeral + ZGen_2Phase (Part 3 §14.6, §19.3, §14.7), Commit with an ECDAA key (§19.2).
  await step('ECC two-phase, Commit', async () => {
    const { parameters } = (await tpm.run(ECC_Parameters, {}, { curveID: TPM_ECC.NIST_P256 })).params;
    const key = await createPrimary(tpm, TPM_RH.OWNER, eccEcdhTemplate());
    const { counter } = (await tpm.run(EC_Ephemeral, {}, { curveID: TPM_ECC.NIST_P256 })).params;
    await tpm.run(ZGen_2Phase, { keyA: key }, { inQsB: pointOf(), inQeB: pointOf(), inScheme: TPM_ALG.ECDH, counter });
    await tpm.flush(key);
    const { publicArea, sensitive } = externalObject({ type: 'ecc', privateKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey }, { objectAttributes: MOVABLE_SIGNER });
    if (publicArea.type !== TPM_ALG.ECC) throw new Error('not an ECC key');
    const inPublic = { ...publicArea, parameters: { ...publicArea.parameters, scheme: { scheme: TPM_ALG.ECDAA, details: { hashAlg: SHA256, count: 1 } } } } as TPMT_PUBLIC;
    const r = await tpm.run(LoadExternal, {}, { inPrivate: sensitive, inPublic, hierarchy: TPM_RH.NULL });
    const daa: Entity = { handle: r.handles.objectHandle, name: r.params.name, authValue: EMPTY };
    await tpm.run(Commit, { signHandle: daa }, { P1: { x: parameters.gX, y: parameters.gY }, s2: EMPTY, y2: EMPTY });
    await tpm.flush(daa);
  });

  // NV administration (Part 3 §31.5, §31.7, §31.15).
  await step('NV_ChangeAuth', async () => {
    const nv = await nvDefine(tpm, { index: 0x01500031, size: 8, authPolicy: commandCodePolicy(TPM_CC.NV_ChangeAuth) });
    await tpm.withSession(POLICY, async (s) => {
      await tpm.run(PolicyCommandCode, { policySession: s }, { code: TPM_CC.NV_ChangeAuth });
      await tpm.run(NV_ChangeAuth, { nvIndex: nv }, { newAuth: Uint8Array.of(7) }, { sessions: [s] });
    });
    await nvUndefine(tpm, 0x01500031);
  });
  await step('NV_UndefineSpaceSpecial', async () => {
    const nv = await nvDefine(tpm, { index: 0x01500032, size: 8, attributes: { POLICY_DELETE: true }, authPolicy: commandCodePolicy(TPM_CC.NV_UndefineSpaceSpecial) }, { auth: TPM_RH.PLATFORM });
    await tpm.withSession(POLICY, async (s) => {
      await tpm.run(PolicyCommandCode, { policySession: s }, { code: TPM_CC.NV_UndefineSpaceSpecial });
      await tpm.run(NV_UndefineSpaceSpecial, { nvIndex: nv, platform: TPM_RH.PLATFORM }, {}, { sessions: [s] });
    });
  });
  await step('NV_GlobalWriteLock', () => nvGlobalWriteLock(tpm));

  // The PCR authorization groups (Part 3 §22.6, §22.7): PCR 20's policy and authValue set, then removed.
  await step('PCR_SetAuthPolicy, PCR_SetAuthValue', async () => {
    await tpm.run(PCR_SetAuthPolicy, { authHandle: TPM_RH.PLATFORM }, { authPolicy: commandCodePolicy(TPM_CC.PCR_Reset), hashAlg: SHA256, pcrNum: 20 });
    await tpm.run(PCR_SetAuthPolicy, { authHandle: TPM_RH.PLATFORM }, { authPolicy: EMPTY, hashAlg: TPM_ALG.NULL as typeof SHA256, pcrNum: 20 });
    const pcr20 = (authValue: Uint8Array): Entity => ({ handle: 20, name: handleName(20), authValue });
    await tpm.run(PCR_SetAuthValue, { pcrHandle: pcr20(EMPTY) }, { auth: Uint8Array.of(2, 0) });
    await tpm.run(PCR_SetAuthValue, { pcrHandle: pcr20(Uint8Array.of(2)) }, { auth: EMPTY });
  });

  // Clock and hierarchy administration (Part 3 §29.2, §24.2, §24.3).
  await step('ClockSet', async () => {
    const { currentTime } = (await tpm.run(ReadClock, {}, {})).params;
    // An hour ahead: ahead of the Clock in every replay too.
    await tpm.run(ClockSet, { auth: TPM_RH.OWNER }, { newTime: currentTime.clockInfo.clock + 3_600_000n });
  });
  await step('HierarchyControl', async () => {
    await tpm.run(HierarchyControl, { authHandle: TPM_RH.PLATFORM }, { enable: TPM_RH.ENDORSEMENT, state: 0 });
    await tpm.run(HierarchyControl, { authHandle: TPM_RH.PLATFORM }, { enable: TPM_RH.ENDORSEMENT, state: 1 });
  });
  await step('SetPrimaryPolicy', async () => {
    await tpm.run(SetPrimaryPolicy, { authHandle: TPM_RH.OWNER }, { authPolicy: commandCodePolicy(TPM_CC.CreatePrimary), hashAlg: SHA256 });
    await tpm.run(SetPrimaryPolicy, { authHandle: TPM_RH.OWNER }, { authPolicy: EMPTY, hashAlg: TPM_ALG.NULL as typeof SHA256 });
  });
}

/** ChangePPS and ChangeEPS: new platform and endorsement seeds (Part 3 §24.4, §24.5); late in the recording. */
export async function recordSeedChanges(tpm: Tpm, step: Step): Promise<void> {
  await step('ChangePPS', () => tpm.run(ChangePPS, { authHandle: TPM_RH.PLATFORM }, {}));
  await step('ChangeEPS', () => tpm.run(ChangeEPS, { authHandle: TPM_RH.PLATFORM }, {}));
}
