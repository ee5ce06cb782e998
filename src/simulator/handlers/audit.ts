/**
 * Part 3 §21 Command Audit (SetCommandCodeAuditStatus) and §18.5–18.6
 * (GetSessionAuditDigest, GetCommandAuditDigest).
 *
 * The engine keeps the digests (engine.ts extendCommandAudit for command
 * audit, respond() for audit sessions); these handlers change what is audited
 * and sign what was recorded, with the attestation steps of attestation.ts
 * (signerOf, fillAttest, signAttest).
 */
import { GetCommandAuditDigest, GetSessionAuditDigest, SetCommandCodeAuditStatus } from '../../tpm/commands/index.js';
import { TPM_ALG, TPM_CC, TPM_ST } from '../../tpm/constants.js';
import { hash } from '../../tpm/crypto/hash.js';
import { TPM_RC, TpmError, rcForHandle, rcForParameter } from '../../tpm/rc.js';
import type { TPMS_ATTEST } from '../../tpm/types/index.js';
import type { TpmEngine } from '../engine.js';
import { fillAttest, signAttest, signerOf } from './attestation.js';
import { handler, ok } from './handler.js';

const EMPTY = new Uint8Array(0);

/** The audited command codes, ascending, SetCommandCodeAuditStatus included (always audited, reference CommandAuditPreInstall). */
export function auditedCommands(engine: TpmEngine): number[] {
  return [...new Set([TPM_CC.SetCommandCodeAuditStatus as number, ...engine.state.commandAudit.commands])].sort((a, b) => a - b);
}

/**
 * Part 3 §21.2: either a new audit hash (lists must then be empty: TPM_RC_VALUE
 * on auditAlg; the digest is cleared and this command is not recorded), or
 * codes set and cleared. Unimplemented codes and Shutdown are never set, and
 * SetCommandCodeAuditStatus is never cleared (reference CommandAuditSet/Clear).
 * auth is TPM_RH_OWNER or TPM_RH_PLATFORM (TPMI_RH_PROVISION), authorized by the engine.
 */
export const setCommandCodeAuditStatusHandler = handler(SetCommandCodeAuditStatus, (ctx, _handles, { auditAlg, setList, clearList }) => {
  const { engine } = ctx;
  const audit = engine.state.commandAudit;
  if (auditAlg !== TPM_ALG.NULL && auditAlg !== audit.hashAlg) {
    if (setList.length !== 0 || clearList.length !== 0) throw new TpmError(rcForParameter(TPM_RC.VALUE, 1));
    audit.hashAlg = auditAlg;
    audit.digest = EMPTY;
    ctx.persistentChanged = true;
    return ok<typeof SetCommandCodeAuditStatus>({});
  }
  const codes = new Set(audit.commands);
  for (const c of setList) if (c !== TPM_CC.Shutdown && engine.commandRecord(c) !== undefined) codes.add(c);
  for (const c of clearList) if (c !== TPM_CC.SetCommandCodeAuditStatus) codes.delete(c);
  const next = [...codes].sort((a, b) => a - b);
  if (next.length !== audit.commands.length || next.some((c, i) => c !== audit.commands[i])) {
    audit.commands = next;
    ctx.persistentChanged = true;
  }
  return ok<typeof SetCommandCodeAuditStatus>({});
});

/**
 * Part 3 §18.6: the command audit digest, signed with the counter, the hash
 * and H(audited codes as UINT32s, ascending) (reference CommandAuditGetDigest).
 * A signed read (signHandle not TPM_RH_NULL) clears the digest.
 */
export const getCommandAuditDigestHandler = handler(GetCommandAuditDigest, (ctx, { signHandle }, { qualifyingData, inScheme }) => {
  const { engine } = ctx;
  const signer = signerOf(engine, signHandle, 2, inScheme, 2);
  const audit = engine.state.commandAudit;
  const codes = new Uint8Array(4 * auditedCommands(engine).length);
  const view = new DataView(codes.buffer);
  auditedCommands(engine).forEach((c, i) => view.setUint32(4 * i, c));
  const header = fillAttest(engine, signer, qualifyingData);
  const attested = { auditCounter: audit.counter, digestAlg: audit.hashAlg, auditDigest: engine.commandAuditDigest(), commandDigest: hash(audit.hashAlg, codes) };
  const r = signAttest(engine, signer, { ...header, type: TPM_ST.ATTEST_COMMAND_AUDIT, attested } as TPMS_ATTEST);
  // Not persisted: the digest is state-reset data (reference gr.commandAuditDigest), which the TPM Reset
  // after a crash clears anyway; Shutdown saves it with the rest of the state.
  if (signer.key !== undefined) audit.digest = EMPTY;
  return ok<typeof GetCommandAuditDigest>({ auditInfo: r.attest, signature: r.signature } as never);
});

/**
 * Part 3 §18.5: the audit digest of an HMAC session and whether it is the
 * exclusive audit session (engine.volatile.exclusiveAuditSession). The signer
 * is checked first, then TPM_RC_TYPE on sessionHandle for a session that has
 * never audited (the reference's order).
 */
export const getSessionAuditDigestHandler = handler(GetSessionAuditDigest, ({ engine }, { signHandle, sessionHandle }, { qualifyingData, inScheme }) => {
  const session = engine.volatile.sessions.get(sessionHandle);
  if (session === undefined) throw new TpmError(rcForHandle(TPM_RC.HANDLE, 3));
  const signer = signerOf(engine, signHandle, 2, inScheme, 2);
  if (session.auditDigest === undefined) throw new TpmError(rcForHandle(TPM_RC.TYPE, 3));
  const header = fillAttest(engine, signer, qualifyingData);
  const attested = { exclusiveSession: engine.volatile.exclusiveAuditSession === sessionHandle ? 1 : 0, sessionDigest: session.auditDigest };
  const r = signAttest(engine, signer, { ...header, type: TPM_ST.ATTEST_SESSION_AUDIT, attested } as TPMS_ATTEST);
  return ok<typeof GetSessionAuditDigest>({ auditInfo: r.attest, signature: r.signature } as never);
});

export const AUDIT_HANDLERS = [setCommandCodeAuditStatusHandler, getSessionAuditDigestHandler, getCommandAuditDigestHandler] as const;
