/**
 * Part 3 §18 Attestation Commands (Certify, CertifyCreation, Quote, GetTime)
 * and §31.16 NV_Certify.
 *
 * Every command follows the same steps (the reference's Attest_spt.c):
 * the signing key must be able to sign (TPM_RC_KEY), its scheme is resolved
 * (signing.ts selectScheme; TPM_RC_SCHEME), the common TPMS_ATTEST fields are
 * filled (fillAttest), the command's own `attested` part is added, and the
 * marshaled structure is signed over H_schemeHash(attest bytes). With
 * signHandle TPM_RH_NULL the structure comes back with a NULL signature.
 */
import { equalBytes } from '../../tpm/bytes.js';
import { Certify, CertifyCreation, GetTime, NV_Certify, Quote } from '../../tpm/commands/index.js';
import { TPM_ALG, TPM_GENERATED_VALUE, TPM_HT, TPM_RH, TPM_ST } from '../../tpm/constants.js';
import { hash, isHashAlg } from '../../tpm/crypto/hash.js';
import { kdfa } from '../../tpm/crypto/kdf.js';
import { handleName, nvName } from '../../tpm/names.js';
import { pcrIndices } from '../../tpm/pcr.js';
import { TPM_RC, TpmError, rcForHandle, rcForParameter } from '../../tpm/rc.js';
import { TPMS_ATTEST, type TPMS_PCR_SELECTION, type TPMT_SIG_SCHEME, type TPMT_SIGNATURE } from '../../tpm/types/index.js';
import { encode } from '../../tpm/wire/codec.js';
import { FIRMWARE_VERSION, type TpmEngine } from '../engine.js';
import { ensureEkCertificate } from '../manufacture.js';
import type { LoadedObject } from '../objects.js';
import { selectScheme, signDigest, type SelectedScheme } from '../signing.js';
import { TICKET_HASH_ALG, creationTicketDigest } from '../tickets.js';
import { checkAccess, nvPublicOf } from './nv.js';
import { findObject } from './object.js';
import { handler, ok } from './handler.js';

/** TPMS_ATTEST without its `type` and `attested` (the part fillAttest makes). */
interface AttestHeader {
  readonly magic: typeof TPM_GENERATED_VALUE;
  readonly qualifiedSigner: Uint8Array;
  readonly extraData: Uint8Array;
  readonly clockInfo: { clock: bigint; resetCount: number; restartCount: number; safe: number };
  readonly firmwareVersion: bigint;
}

/** The signer of an attestation: the key and the resolved scheme, or none (TPM_RH_NULL). */
interface Signer {
  readonly key: LoadedObject | undefined;
  readonly scheme: SelectedScheme;
}

const NULL_SCHEME: SelectedScheme = { scheme: TPM_ALG.NULL, hashAlg: TPM_ALG.NULL };

/**
 * The signing key and scheme (the reference's IsSigningObject and
 * CryptSelectSignScheme): TPM_RC_KEY on the signHandle when the object cannot
 * sign (no `sign` attribute, or a symmetric cipher); TPM_RC_SCHEME on inScheme
 * when no usable scheme results. TPM_RH_NULL signs with the NULL scheme,
 * whatever inScheme says.
 */
export function signerOf(engine: TpmEngine, signHandle: number, handleIndex: number, inScheme: TPMT_SIG_SCHEME, schemeParam: number): Signer {
  if (signHandle === TPM_RH.NULL) return { key: undefined, scheme: NULL_SCHEME };
  // A loaded or a persistent key (findObject resolves both).
  const key = findObject(engine, signHandle);
  if (key === undefined) throw new TpmError(rcForHandle(TPM_RC.HANDLE, handleIndex));
  const pub = key.publicArea;
  if (!pub.objectAttributes.sign || pub.type === TPM_ALG.SYMCIPHER) throw new TpmError(rcForHandle(TPM_RC.KEY, handleIndex));
  const scheme = selectScheme(pub, inScheme);
  if (scheme === undefined || !isHashAlg(scheme.hashAlg)) throw new TpmError(rcForParameter(TPM_RC.SCHEME, schemeParam));
  return { key, scheme };
}

/** TPM_PT_FIRMWARE_VERSION_1 ‖ _2 as one UINT64, the words capability.ts reports (design.md "Identity"). */
function firmwareVersion(): bigint {
  const v1 = ((FIRMWARE_VERSION.major << 16) | FIRMWARE_VERSION.minor) >>> 0;
  const v2 = (FIRMWARE_VERSION.patch << 16) >>> 0;
  return (BigInt(v1) << 32n) | BigInt(v2);
}

/** Clock, resetCount, restartCount and safe as they are now (Part 2 §10.11.1). */
function clockInfo(engine: TpmEngine): AttestHeader['clockInfo'] {
  engine.syncClock();
  const c = engine.state.clock;
  return { clock: c.clock, resetCount: c.resetCount, restartCount: c.restartCount, safe: c.safe ? 1 : 0 };
}

function readU64Le(b: Uint8Array, at: number): bigint {
  return new DataView(b.buffer, b.byteOffset + at, 8).getBigUint64(0, true);
}

/**
 * The fields every attestation shares (Part 3 §18.1; the reference's
 * FillInAttestInfo). When the signer is not in the endorsement or platform
 * hierarchy (or there is no signer), resetCount, restartCount and
 * firmwareVersion are obfuscated so that keys of other hierarchies cannot be
 * correlated across resets: 128 bits of KDFa(contextIntegrityHash (the
 * tickets' SHA-512), shProof, "OBFUSCATE", qualifiedSigner) are added to
 * them. The reference reads those
 * bits as two host-order UINT64s; libtpms runs on little-endian hosts, so
 * they are read little-endian here: the first adds to firmwareVersion, the
 * second's high half to resetCount and low half to restartCount.
 */
export function fillAttest(engine: TpmEngine, signer: Signer, qualifyingData: Uint8Array, now: AttestHeader['clockInfo'] = clockInfo(engine)): AttestHeader {
  const qualifiedSigner = signer.key === undefined ? handleName(TPM_RH.NULL) : signer.key.qualifiedName;
  const info = { ...now };
  let fw = firmwareVersion();
  const h = signer.key?.hierarchy;
  if (h !== TPM_RH.ENDORSEMENT && h !== TPM_RH.PLATFORM) {
    const o = kdfa(TICKET_HASH_ALG, engine.state.proofs.owner, 'OBFUSCATE', qualifiedSigner, new Uint8Array(0), 128);
    const first = readU64Le(o, 0);
    const second = readU64Le(o, 8);
    fw = (fw + first) & 0xffffffffffffffffn;
    info.resetCount = (info.resetCount + Number(second >> 32n)) >>> 0;
    info.restartCount = (info.restartCount + Number(second & 0xffffffffn)) >>> 0;
  }
  return { magic: TPM_GENERATED_VALUE, qualifiedSigner, extraData: qualifyingData, clockInfo: info, firmwareVersion: fw };
}

/** The response of an attestation: the structure, and its signature over H_schemeHash(marshaled structure) (SignAttestInfo). */
export function signAttest(engine: TpmEngine, signer: Signer, attest: TPMS_ATTEST): { attest: TPMS_ATTEST; signature: TPMT_SIGNATURE } {
  if (signer.key === undefined) return { attest, signature: { sigAlg: TPM_ALG.NULL } as TPMT_SIGNATURE };
  const digest = hash(signer.scheme.hashAlg, encode(TPMS_ATTEST, attest));
  return { attest, signature: signDigest(engine, signer.key, signer.scheme, digest) };
}

/**
 * The selection narrowed to what is allocated (the reference's FilterPcr):
 * a bank that is not allocated and PCRs outside the allocation come back
 * deselected; the sizes of the select arrays are kept.
 */
function allocatedSelection(engine: TpmEngine, selections: readonly TPMS_PCR_SELECTION[]): TPMS_PCR_SELECTION[] {
  return selections.map((sel) => {
    const select = new Uint8Array(sel.pcrSelect.length);
    const bank = engine.state.pcrAllocation.find((b) => b.hashAlg === sel.hash);
    const values = engine.volatile.pcrs.get(sel.hash);
    if (bank !== undefined && values !== undefined) {
      for (const i of pcrIndices(sel)) if (i < values.length && bank.pcrs.includes(i)) select[i >> 3]! |= 1 << (i & 7);
    }
    return { hash: sel.hash, pcrSelect: select };
  });
}

/** Part 3 §18.4: H_schemeHash of the selected PCRs' values, bank by bank in selection order (PCRComputeCurrentDigest). */
function currentPcrDigest(engine: TpmEngine, hashAlg: number, selections: readonly TPMS_PCR_SELECTION[]): Uint8Array {
  const values: Uint8Array[] = [];
  for (const sel of selections) {
    const bank = engine.volatile.pcrs.get(sel.hash)!;
    for (const i of pcrIndices(sel)) values.push(bank[i]!);
  }
  return hash(hashAlg, ...values);
}

/** Part 3 §18.4 Quote: a digest of the selected PCRs; with signHandle NULL there is no hash for it (TPM_RC_SCHEME). */
export const quoteHandler = handler(Quote, ({ engine }, { signHandle }, { qualifyingData, inScheme, PCRselect }) => {
  const signer = signerOf(engine, signHandle, 1, inScheme, 2);
  const header = fillAttest(engine, signer, qualifyingData);
  if (signer.scheme.hashAlg === TPM_ALG.NULL) throw new TpmError(rcForParameter(TPM_RC.SCHEME, 2));
  const pcrSelect = allocatedSelection(engine, PCRselect);
  const attest = { ...header, type: TPM_ST.ATTEST_QUOTE, attested: { pcrSelect, pcrDigest: currentPcrDigest(engine, signer.scheme.hashAlg, pcrSelect) } } as TPMS_ATTEST;
  const r = signAttest(engine, signer, attest);
  return ok<typeof Quote>({ quoted: r.attest, signature: r.signature } as never);
});

/** Part 3 §18.2 Certify: the Name and Qualified Name of a loaded object (objectHandle, ADMIN role, authorized by the engine). */
export const certifyHandler = handler(Certify, ({ engine }, { objectHandle, signHandle }, { qualifyingData, inScheme }) => {
  const signer = signerOf(engine, signHandle, 2, inScheme, 2);
  const object = findObject(engine, objectHandle);
  if (object === undefined) throw new TpmError(rcForHandle(TPM_RC.HANDLE, 1));
  const header = fillAttest(engine, signer, qualifyingData);
  const attest = { ...header, type: TPM_ST.ATTEST_CERTIFY, attested: { name: object.name, qualifiedName: object.qualifiedName } } as TPMS_ATTEST;
  const r = signAttest(engine, signer, attest);
  return ok<typeof Certify>({ certifyInfo: r.attest, signature: r.signature } as never);
});

/**
 * Part 3 §18.3 CertifyCreation: the creation ticket must be the one this TPM
 * made for this object's Name and creationHash (TPM_RC_TICKET otherwise).
 */
export const certifyCreationHandler = handler(CertifyCreation, ({ engine }, { signHandle, objectHandle }, params) => {
  const { qualifyingData, creationHash, inScheme, creationTicket } = params;
  const signer = signerOf(engine, signHandle, 1, inScheme, 3);
  const object = findObject(engine, objectHandle);
  if (object === undefined) throw new TpmError(rcForHandle(TPM_RC.HANDLE, 2));
  const want = creationTicketDigest(engine, creationTicket.hierarchy, object.name, creationHash);
  if (creationTicket.tag !== TPM_ST.CREATION || !equalBytes(want, creationTicket.digest)) throw new TpmError(rcForParameter(TPM_RC.TICKET, 4));
  const header = fillAttest(engine, signer, qualifyingData);
  const attest = { ...header, type: TPM_ST.ATTEST_CREATION, attested: { objectName: object.name, creationHash } } as TPMS_ATTEST;
  const r = signAttest(engine, signer, attest);
  return ok<typeof CertifyCreation>({ certifyInfo: r.attest, signature: r.signature } as never);
});

/**
 * Part 3 §18.7 GetTime: Time and the clock (privacyAdminHandle is the
 * endorsement hierarchy, authorized by the engine). The attested clockInfo
 * and firmwareVersion are never obfuscated, only the header's are.
 */
export const getTimeHandler = handler(GetTime, ({ engine }, { signHandle }, { qualifyingData, inScheme }) => {
  const signer = signerOf(engine, signHandle, 2, inScheme, 2);
  // One reading of the clock for the header and the attested clockInfo: they must agree (the reference reads it once).
  const now = clockInfo(engine);
  const header = fillAttest(engine, signer, qualifyingData, now);
  const attested = { time: { time: engine.time(), clockInfo: now }, firmwareVersion: firmwareVersion() };
  const attest = { ...header, type: TPM_ST.ATTEST_TIME, attested } as TPMS_ATTEST;
  const r = signAttest(engine, signer, attest);
  return ok<typeof GetTime>({ timeInfo: r.attest, signature: r.signature } as never);
});

/**
 * Part 3 §31.16 NV_Certify: the read access checks of NV_Read, then either
 * `size` bytes at `offset` (TPM_ST_ATTEST_NV), or, when both are 0, a digest
 * of the whole index with the scheme's hash (TPM_ST_ATTEST_NV_DIGEST, as
 * libtpms answers since the 2019 specification revisions).
 */
export const nvCertifyHandler = handler(NV_Certify, async (ctx, { signHandle, authHandle, nvIndex }, { qualifyingData, inScheme, size, offset }) => {
  const { engine } = ctx;
  const signer = signerOf(engine, signHandle, 1, inScheme, 2);
  if (nvIndex >>> 24 !== TPM_HT.NV_INDEX) throw new TpmError(rcForHandle(TPM_RC.HANDLE, 3));
  if (await ensureEkCertificate(engine, nvIndex)) ctx.persistentChanged = true;
  const nv = engine.state.nvIndices.find((n) => n.nvIndex === nvIndex);
  if (nv === undefined) throw new TpmError(rcForHandle(TPM_RC.HANDLE, 3));
  checkAccess(nv, authHandle, 'read');
  if (size + offset > nv.dataSize) throw new TpmError(TPM_RC.NV_RANGE);
  if (size > engine.profile.limits.nvBufferMax) throw new TpmError(rcForParameter(TPM_RC.VALUE, 3));
  const header = fillAttest(engine, signer, qualifyingData);
  const indexName = nvName(nvPublicOf(nv));
  const attest = (
    size !== 0 || offset !== 0
      ? { ...header, type: TPM_ST.ATTEST_NV, attested: { indexName, offset, nvContents: nv.data.slice(offset, offset + size) } }
      : {
          ...header,
          type: TPM_ST.ATTEST_NV_DIGEST,
          // With TPM_RH_NULL there is no hash: the reference's digest of TPM_ALG_NULL is empty.
          attested: { indexName, nvDigest: signer.scheme.hashAlg === TPM_ALG.NULL ? new Uint8Array(0) : hash(signer.scheme.hashAlg, nv.data.subarray(0, nv.dataSize)) },
        }
  ) as TPMS_ATTEST;
  const r = signAttest(engine, signer, attest);
  return ok<typeof NV_Certify>({ certifyInfo: r.attest, signature: r.signature } as never);
});

export const ATTESTATION_HANDLERS = [certifyHandler, certifyCreationHandler, quoteHandler, getTimeHandler, nvCertifyHandler] as const;
