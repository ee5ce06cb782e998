/**
 * The endorsement key (EK) and its certificates (TCG EK Credential Profile
 * v2.4 r3; Part 3 §24.1 CreatePrimary, §12.4 ReadPublic, §31.6 NV_ReadPublic,
 * §31.13 NV_Read).
 *
 * - getEk: the EK of a profile template (L-1, L-2, H-1 … H-7). An EK that
 *   firmware or `swtpm_setup` persisted (0x81010001, 0x81010016, …) is used
 *   after its public area is checked against the template (everything but
 *   `unique`); otherwise the EK is made again from the template with
 *   CreatePrimary, which gives the same key every time. Its Name is always
 *   computed here from the checked public area.
 * - withEkPolicy: the EK has adminWithPolicy and (low range) no userWithAuth,
 *   so using it as a parent or for ActivateCredential takes a policy session
 *   that proves knowledge of the endorsement hierarchy's authorization:
 *   PolicySecret(TPM_RH_ENDORSEMENT) for PolicyA, followed by PolicyOR for
 *   PolicyB (profile "Computing PolicyA/PolicyB").
 * - readEkCertificate(s): the DER certificates the manufacturer stored in NV,
 *   read in chunks of the TPM's NV buffer, with the padding after the
 *   certificate's outer SEQUENCE removed. No X.509 parsing happens here;
 *   the verifier (src/attest) checks the chain.
 */
import {
  CreatePrimary,
  GetCapability,
  NV_Read,
  NV_ReadPublic,
  PolicyOR,
  PolicySecret,
  ReadPublic,
  TestParms,
} from '../tpm/commands/index.js';
import { HANDLE_RANGE, TPM_ALG, TPM_CAP, TPM_ECC, TPM_NT, TPM_PT, TPM_RH, constantName } from '../tpm/constants.js';
import { isHashSupported } from '../tpm/crypto/hash.js';
import { IdentityError, UnsupportedAlgorithmError } from '../tpm/errors.js';
import { nvName, objectName } from '../tpm/names.js';
import { ekPolicyA, ekPolicyB, ekPolicyC } from '../tpm/policy.js';
import { isRc, TPM_RC, TpmError } from '../tpm/rc.js';
import {
  EK_TEMPLATE_IDS,
  EK_TEMPLATES,
  ekTemplateByCertificateIndex,
  templateMismatches,
  type EkTemplateId,
  type EkTemplateInfo,
} from '../tpm/templates.js';
import { sendOptionsOf, type SendOptions } from '../tpm/transport/transport.js';
import type { TPMS_NV_PUBLIC, TPMT_PUBLIC, TPMT_PUBLIC_PARMS } from '../tpm/types/index.js';
import { password, type AuthSession } from './session.js';
import type { Authorization, Entity, Tpm, TpmRunResult } from './tpm.js';

const EMPTY = new Uint8Array(0);

function hex(n: number): string {
  return `0x${(n >>> 0).toString(16).padStart(8, '0')}`;
}

function algName(alg: number): string {
  return constantName(TPM_ALG, alg) ?? `0x${alg.toString(16).padStart(4, '0')}`;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}


// ---------------------------------------------------------------------------
// The EK

/**
 * An EK the client can use: an Entity (handle and Name) with the public area
 * the Name was computed from. It goes straight into `tpm.run` as a handle.
 */
export interface Ek extends Entity {
  readonly handle: number;
  readonly name: Uint8Array;
  readonly publicArea: TPMT_PUBLIC;
  /** The profile template it follows. */
  readonly template: EkTemplateId;
  /**
   * True when found at a persistent handle (leave it there); false for a
   * transient object made by CreatePrimary, which the caller flushes
   * (`tpm.flush(ek)`, or use `withEk`).
   */
  readonly persistent: boolean;
}

export interface EkOptions extends SendOptions {
  /** The profile template (default 'L-1', RSA-2048). */
  readonly template?: EkTemplateId;
  /**
   * Where to look for a persisted EK first (default: the template's
   * conventional handle, EK_TEMPLATES[id].persistentHandle); `false` skips
   * the lookup and always creates a transient EK.
   */
  readonly persistentHandle?: number | false;
  /** The endorsement hierarchy's authValue, for CreatePrimary (default empty). */
  readonly endorsementAuth?: Uint8Array;
}

function templateInfo(id: EkTemplateId | undefined): EkTemplateInfo {
  const key = id ?? 'L-1';
  const info = (EK_TEMPLATES as Readonly<Record<string, EkTemplateInfo>>)[key];
  if (info === undefined) throw new IdentityError('identity.argument', `unknown EK template ${String(key)}: expected one of ${EK_TEMPLATE_IDS.join(', ')}`);
  return info;
}

/** The size `unique` must have for a real key of the template's type (modulus bytes; coordinate bytes of the curve). */
const COORDINATE_BYTES: Readonly<Record<number, number>> = {
  [TPM_ECC.NIST_P256]: 32,
  [TPM_ECC.NIST_P384]: 48,
  [TPM_ECC.NIST_P521]: 66,
  [TPM_ECC.SM2_P256]: 32,
};

function uniqueLooksLikeAKey(pub: TPMT_PUBLIC): boolean {
  if (pub.type === TPM_ALG.RSA) return pub.unique.length * 8 === pub.parameters.keyBits;
  if (pub.type === TPM_ALG.ECC) {
    const size = COORDINATE_BYTES[pub.parameters.curveID];
    return size !== undefined && pub.unique.x.length === size && pub.unique.y.length === size;
  }
  return false;
}

/**
 * Checks that `publicArea` is an EK of `info`'s template: the template's
 * fields (type, nameAlg, attributes, authPolicy, parameters) and a `unique`
 * of the key's size. Returns its Name.
 */
function checkEkPublic(info: EkTemplateInfo, publicArea: TPMT_PUBLIC, handle: number, tpmName: Uint8Array | undefined, where: string): Uint8Array {
  const fields: string[] = templateMismatches(info.template(), publicArea);
  if (fields.length === 0 && !uniqueLooksLikeAKey(publicArea)) fields.push('unique');
  if (fields.length > 0) {
    throw new IdentityError('identity.mismatch', `${where} ${hex(handle)} is not an EK of template ${info.id} (${info.description}): ${fields.join(', ')} differ`, {
      handle,
      fields,
    });
  }
  const name = objectName(publicArea);
  // The Name is ours; a TPM that reports another one for the same public area is not to be trusted with this key.
  if (tpmName !== undefined && !equalBytes(tpmName, name)) {
    throw new IdentityError('identity.mismatch', `${where} ${hex(handle)}: the TPM's Name differs from the Name of its public area`, { handle, fields: ['name'] });
  }
  return name;
}

/**
 * Checks that this TPM can make a key from `template` before asking it to:
 * the nameAlg must be a hash this client computes (for Names) and one the
 * TPM lists (GetCapability ALGS), and TestParms (Part 3 §30.3) must accept
 * the parameters (symmetric algorithm, key size, curve, scheme).
 *
 * @throws UnsupportedAlgorithmError naming the first algorithm that is
 *   missing (e.g. SM3_256 / SM4 for H-5 and RSA-4096 for H-7 on libtpms 0.9);
 *   TpmError for other TPM failures; TransportError.
 */
export async function checkTemplateSupported(tpm: Tpm, template: TPMT_PUBLIC, options: SendOptions = {}): Promise<void> {
  const nameAlg = template.nameAlg;
  if (!isHashSupported(nameAlg)) {
    throw new UnsupportedAlgorithmError(nameAlg, `nameAlg ${algName(nameAlg)} cannot be computed by this Node.js/OpenSSL build`);
  }
  const algs = await tpm.run(GetCapability, {}, { capability: TPM_CAP.ALGS, property: nameAlg, propertyCount: 1 }, sendOptionsOf(options));
  const data = algs.params.capabilityData;
  const first = data.capability === TPM_CAP.ALGS ? data.data[0] : undefined;
  if (first?.alg !== nameAlg) throw new UnsupportedAlgorithmError(nameAlg, `the TPM does not implement ${algName(nameAlg)} (the template's nameAlg)`);
  try {
    await tpm.run(TestParms, {}, { parameters: { type: template.type, parameters: template.parameters } as TPMT_PUBLIC_PARMS }, sendOptionsOf(options));
  } catch (e) {
    if (!(e instanceof TpmError)) throw e;
    throw new UnsupportedAlgorithmError(offendingAlg(template, e), `the TPM does not support the template's parameters: TestParms answered ${e.message}`);
  }
}

/** The algorithm a TestParms refusal points at, as well as the response code says. */
function offendingAlg(template: TPMT_PUBLIC, e: TpmError): number {
  const p = template.parameters as { symmetric?: { algorithm: number }; scheme?: { scheme: number }; kdf?: { scheme: number } };
  if ((isRc(e, TPM_RC.SYMMETRIC) || isRc(e, TPM_RC.MODE)) && p.symmetric !== undefined) return p.symmetric.algorithm;
  if (isRc(e, TPM_RC.SCHEME) && p.scheme !== undefined) return p.scheme.scheme;
  if (isRc(e, TPM_RC.KDF) && p.kdf !== undefined) return p.kdf.scheme;
  return template.type;
}

/**
 * The EK of a profile template: the persisted one if a key is at the
 * template's persistent handle (checked against the template), else a
 * transient one from CreatePrimary in the endorsement hierarchy.
 *
 * @throws IdentityError `identity.mismatch` when the persisted object (or
 *   CreatePrimary's answer, then flushed) is not an EK of the template, or
 *   the TPM's Name disagrees; UnsupportedAlgorithmError when the TPM cannot
 *   make this template (nothing is created); TpmError (e.g. TPM_RC_BAD_AUTH
 *   for a wrong endorsementAuth); SessionError; TransportError.
 */
export async function getEk(tpm: Tpm, options: EkOptions = {}): Promise<Ek> {
  const info = templateInfo(options.template);
  const handle = options.persistentHandle === undefined ? info.persistentHandle : options.persistentHandle;
  if (handle !== false) {
    if (!Number.isInteger(handle) || handle < HANDLE_RANGE.PERSISTENT[0] || handle > HANDLE_RANGE.PERSISTENT[1]) {
      throw new IdentityError('identity.argument', `persistentHandle ${hex(handle)} is not a persistent handle`);
    }
    let found: { outPublic: TPMT_PUBLIC; name: Uint8Array } | undefined;
    try {
      found = (await tpm.run(ReadPublic, { objectHandle: handle }, {}, sendOptionsOf(options))).params;
    } catch (e) {
      // TPM_RC_HANDLE: nothing persisted there; make the EK instead.
      if (!isRc(e, TPM_RC.HANDLE)) throw e;
    }
    if (found !== undefined) {
      const name = checkEkPublic(info, found.outPublic, handle, found.name, 'the persistent object at');
      return { handle, name, publicArea: found.outPublic, template: info.id, persistent: true };
    }
  }
  return createEk(tpm, options);
}

/**
 * Makes the EK of a profile template with CreatePrimary (Part 3 §24.1) as a
 * transient object, whatever is persisted; the caller flushes it.
 * @throws as getEk.
 */
export async function createEk(tpm: Tpm, options: EkOptions = {}): Promise<Ek> {
  const info = templateInfo(options.template);
  const template = info.template();
  await checkTemplateSupported(tpm, template, options);
  const r = await tpm.run(
    CreatePrimary,
    { primaryHandle: TPM_RH.ENDORSEMENT },
    { inSensitive: { userAuth: EMPTY, data: EMPTY }, inPublic: template, outsideInfo: EMPTY, creationPCR: [] },
    { ...sendOptionsOf(options), sessions: [password(options.endorsementAuth ?? EMPTY)] },
  );
  const handle = r.handles.objectHandle;
  try {
    const name = checkEkPublic(info, r.params.outPublic, handle, r.params.name, 'CreatePrimary returned');
    return { handle, name, publicArea: r.params.outPublic, template: info.id, persistent: false };
  } catch (e) {
    await tpm.flush(handle).catch(() => undefined);
    throw e;
  }
}

/**
 * Runs `fn` with the EK (getEk) and flushes it afterwards if it was made
 * transient, also when `fn` throws; a persisted EK stays.
 */
export async function withEk<R>(tpm: Tpm, options: EkOptions, fn: (ek: Ek) => Promise<R> | R): Promise<R> {
  const ek = await getEk(tpm, options);
  try {
    return await fn(ek);
  } finally {
    if (!ek.persistent) await tpm.flush(ek.handle);
  }
}

// ---------------------------------------------------------------------------
// The EK's policy

export interface EkPolicyOptions extends SendOptions {
  /** The endorsement hierarchy's authValue, proven by PolicySecret (default empty). */
  readonly endorsementAuth?: Uint8Array;
}

/**
 * Puts a fresh policy session into the state the EK's authPolicy asks for:
 * PolicySecret(TPM_RH_ENDORSEMENT) (Part 3 §23.4) gives PolicyA; for an EK
 * whose authPolicy is PolicyB, PolicyOR(PolicyA, PolicyC) (Part 3 §23.6)
 * follows. The session's hash must be the one the policy was computed with
 * (the EK's nameAlg for the profile's templates).
 *
 * @throws IdentityError `identity.policy` when the EK's authPolicy is neither
 *   PolicyA nor PolicyB of the session's hash; TpmError (TPM_RC_BAD_AUTH for
 *   a wrong endorsementAuth); SessionError; TransportError.
 */
export async function satisfyEkPolicy(tpm: Tpm, session: AuthSession, ekPublic: TPMT_PUBLIC, options: EkPolicyOptions = {}): Promise<void> {
  const hashAlg = session.hashAlg;
  const policyA = ekPolicyA(hashAlg);
  const isA = equalBytes(ekPublic.authPolicy, policyA);
  const isB = !isA && equalBytes(ekPublic.authPolicy, ekPolicyB(hashAlg));
  if (!isA && !isB) {
    throw new IdentityError(
      'identity.policy',
      `the EK's authPolicy is neither PolicyA nor PolicyB of the EK Credential Profile for a ${algName(hashAlg)} session`,
    );
  }
  await tpm.run(
    PolicySecret,
    { authHandle: TPM_RH.ENDORSEMENT, policySession: session },
    { nonceTPM: EMPTY, cpHashA: EMPTY, policyRef: EMPTY, expiration: 0 },
    { ...sendOptionsOf(options), sessions: [password(options.endorsementAuth ?? EMPTY)] },
  );
  if (isB) await tpm.run(PolicyOR, { policySession: session }, { pHashList: [policyA, ekPolicyC(hashAlg)] }, sendOptionsOf(options));
}

/**
 * Runs `fn` with `authorize`, which satisfies the EK's policy in a policy
 * session (hash = the EK's nameAlg) and returns that session as the EK's
 * authorization for one command; call it again before each command, since a
 * TPM resets a policy session after it authorizes. The session is flushed
 * when `fn` settles.
 *
 * ```ts
 * await withEkPolicy(tpm, ek, {}, async (authorize) =>
 *   tpm.run(Create, { parentHandle: ek }, params, { sessions: [await authorize()] }));
 * ```
 */
export function withEkPolicy<R>(
  tpm: Tpm,
  ek: { readonly publicArea: TPMT_PUBLIC },
  options: EkPolicyOptions,
  fn: (authorize: () => Promise<Authorization>) => Promise<R> | R,
): Promise<R> {
  return tpm.withSession({ ...sendOptionsOf(options), type: 'policy', hashAlg: ek.publicArea.nameAlg }, (session) =>
    fn(async () => {
      await satisfyEkPolicy(tpm, session, ek.publicArea, options);
      return session;
    }),
  );
}

// ---------------------------------------------------------------------------
// EK certificates

/**
 * The certificate bytes at the start of `data`: the outer DER SEQUENCE
 * (tag 0x30, then a definite length, short or long form) says how long the
 * certificate is; whatever follows (the zeros or 0xFF a manufacturer pads
 * its NV Index with) is dropped. Pure: no X.509 parsing.
 *
 * @throws IdentityError `identity.certificate` when `data` does not start
 *   with a SEQUENCE, uses an indefinite or over-long length, or is shorter
 *   than the length it declares.
 */
export function trimDerCertificate(data: Uint8Array, index?: number): Uint8Array {
  const where = index === undefined ? 'EK certificate' : `EK certificate at ${hex(index)}`;
  const fail = (why: string): never => {
    throw new IdentityError('identity.certificate', `${where}: ${why}`, index === undefined ? undefined : { handle: index });
  };
  if (data.length < 2) fail(`${data.length} byte(s) is not a DER certificate`);
  if (data[0] !== 0x30) fail(`starts with 0x${data[0]!.toString(16).padStart(2, '0')}, not a DER SEQUENCE (0x30)`);
  const first = data[1]!;
  let length: number;
  let header: number;
  if (first < 0x80) {
    length = first;
    header = 2;
  } else {
    const n = first & 0x7f;
    // 0x80 is BER's indefinite length (not DER); more than 4 length bytes cannot fit any NV Index.
    if (n === 0) fail('indefinite length (BER), not DER');
    if (n > 4) fail(`a ${n}-byte length field`);
    if (data.length < 2 + n) fail(`the length field needs ${n} byte(s) after the tag, ${data.length - 2} present`);
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + data[2 + i]!;
    header = 2 + n;
  }
  const total = header + length;
  if (total > data.length) fail(`the DER SEQUENCE declares ${total} bytes, the data holds ${data.length}`);
  return data.slice(0, total);
}

export interface ReadEkCertificateOptions extends SendOptions {
  /**
   * How to authorize NV_Read. Default: the index itself with an empty
   * password when it has TPMA_NV_AUTHREAD (EK certificate indices do, with
   * an empty authValue), else the owner hierarchy with `ownerAuth`.
   */
  readonly authorization?: 'index' | 'owner';
  /** The owner hierarchy's authValue when reading as owner (default empty). */
  readonly ownerAuth?: Uint8Array;
  /** The index's authValue when reading with its own authorization (default empty). */
  readonly indexAuth?: Uint8Array;
}

/** NV_Read's chunk: TPM_PT_NV_BUFFER_MAX, the most one NV_Read returns (Part 2 §6.13). */
async function nvBufferMax(tpm: Tpm, options: SendOptions): Promise<number> {
  const r = await tpm.run(GetCapability, {}, { capability: TPM_CAP.TPM_PROPERTIES, property: TPM_PT.NV_BUFFER_MAX, propertyCount: 1 }, sendOptionsOf(options));
  const data = r.params.capabilityData;
  const p = data.capability === TPM_CAP.TPM_PROPERTIES ? data.data[0] : undefined;
  // Every TPM reports it; 512 bytes is a size every TPM's NV_Read accepts should one not.
  return p?.property === TPM_PT.NV_BUFFER_MAX && p.value > 0 ? Math.min(p.value, 0xffff) : 512;
}

/**
 * Reads the EK certificate at an NV Index (a number, or a template id for
 * its certificate index: 'L-1' → 0x01C00002, 'H-3' → 0x01C00016, …) and
 * returns its DER bytes with any trailing padding removed. Undefined when
 * the index is not defined or never written.
 *
 * @throws IdentityError `identity.certificate` when the index is not an
 *   ordinary index, cannot be read with the chosen authorization, or does
 *   not hold a complete DER certificate; TpmError; SessionError; TransportError.
 */
export async function readEkCertificate(tpm: Tpm, index: number | EkTemplateId, options: ReadEkCertificateOptions = {}): Promise<Uint8Array | undefined> {
  const nvIndex = typeof index === 'number' ? index : templateInfo(index).certificateIndex;
  if (!Number.isInteger(nvIndex) || nvIndex < HANDLE_RANGE.NV_INDEX[0] || nvIndex > HANDLE_RANGE.NV_INDEX[1]) {
    throw new IdentityError('identity.argument', `${hex(nvIndex)} is not an NV Index`);
  }
  let nvPublic: TPMS_NV_PUBLIC;
  try {
    nvPublic = (await tpm.run(NV_ReadPublic, { nvIndex }, {}, sendOptionsOf(options))).params.nvPublic;
  } catch (e) {
    if (isRc(e, TPM_RC.HANDLE)) return undefined;
    throw e;
  }
  const fail = (why: string): never => {
    throw new IdentityError('identity.certificate', `EK certificate index ${hex(nvIndex)}: ${why}`, { handle: nvIndex });
  };
  if (nvPublic.nvIndex !== nvIndex) fail(`NV_ReadPublic described ${hex(nvPublic.nvIndex)} instead`);
  const attrs = nvPublic.attributes;
  if (attrs.TPM_NT !== TPM_NT.ORDINARY) fail(`an index of type ${attrs.TPM_NT}, not an ordinary index`);
  if (!attrs.WRITTEN) return undefined;
  if (attrs.READLOCKED) fail('read-locked until the next TPM2_Startup(CLEAR)');

  const how = options.authorization ?? (attrs.AUTHREAD ? 'index' : 'owner');
  if (how === 'index' && !attrs.AUTHREAD) fail('its own authorization cannot read it (TPMA_NV_AUTHREAD clear)');
  if (how === 'owner' && !attrs.OWNERREAD) fail('the owner cannot read it (TPMA_NV_OWNERREAD clear)');
  // The Name is computed from the public area just read: it only matters to HMAC or policy sessions.
  const indexEntity: Entity = { handle: nvIndex, name: nvName(nvPublic), authValue: options.indexAuth ?? EMPTY };
  const authHandle = how === 'index' ? indexEntity : TPM_RH.OWNER;
  const auth = password(how === 'index' ? (options.indexAuth ?? EMPTY) : (options.ownerAuth ?? EMPTY));

  const chunk = await nvBufferMax(tpm, options);
  const data = new Uint8Array(nvPublic.dataSize);
  for (let offset = 0; offset < data.length; ) {
    const size = Math.min(chunk, data.length - offset);
    const r = await tpm.run(NV_Read, { authHandle, nvIndex: indexEntity }, { size, offset }, { ...sendOptionsOf(options), sessions: [auth] });
    const got = r.params.data;
    if (got.length !== size) fail(`NV_Read returned ${got.length} byte(s) at offset ${offset}, ${size} asked`);
    data.set(got, offset);
    offset += size;
  }
  return trimDerCertificate(data, nvIndex);
}

/** An EK certificate found in NV. */
export interface EkCertificate {
  /** The NV Index it was read from. */
  readonly index: number;
  /** The profile template whose EK it certifies. */
  readonly template: EkTemplateId;
  /** The certificate, DER. */
  readonly der: Uint8Array;
}

/**
 * Every EK certificate of the profile's indices that this TPM holds (GetCapability
 * HANDLES over the NV range, then readEkCertificate for each index of a known
 * template), in index order.
 * @throws as readEkCertificate.
 */
export async function readEkCertificates(tpm: Tpm, options: ReadEkCertificateOptions = {}): Promise<EkCertificate[]> {
  const wanted = new Set(EK_TEMPLATE_IDS.map((id) => EK_TEMPLATES[id].certificateIndex));
  const lowest = Math.min(...wanted);
  const highest = Math.max(...wanted);
  const present: number[] = [];
  for (let property: number | undefined = lowest; property !== undefined && property <= highest; ) {
    const r: TpmRunResult<typeof GetCapability> = await tpm.run(
      GetCapability,
      {},
      { capability: TPM_CAP.HANDLES, property, propertyCount: highest - property + 1 },
      sendOptionsOf(options),
    );
    const data = r.params.capabilityData;
    const handles = data.capability === TPM_CAP.HANDLES ? data.data : [];
    for (const h of handles) if (h <= highest && wanted.has(h)) present.push(h);
    const last = handles.at(-1);
    property = r.params.moreData === 1 && last !== undefined && last < highest ? last + 1 : undefined;
  }
  const out: EkCertificate[] = [];
  for (const index of present) {
    const der = await readEkCertificate(tpm, index, options);
    const template = ekTemplateByCertificateIndex(index)?.id;
    if (der !== undefined && template !== undefined) out.push({ index, template, der });
  }
  return out;
}
