/**
 * Part 3 §20 "Signing and Signature Verification". The signing primitives
 * are in ../signing.ts, shared with the attestation commands.
 */
import { Sign } from '../../tpm/commands/index.js';
import { digestSize, isHashAlg } from '../../tpm/crypto/hash.js';
import { TPM_RC, TpmError, rcForHandle, rcForParameter } from '../../tpm/rc.js';
import { selectScheme, signDigest } from '../signing.js';
import { hashCheckDigest } from '../tickets.js';
import { findObject } from './object.js';
import { handler, ok } from './handler.js';

export const signHandler = handler(Sign, ({ engine }, { keyHandle }, { digest, inScheme, validation }) => {
  const o = findObject(engine, keyHandle);
  // TODO(next slice): persistent keys (their sensitive area is stored marshaled).
  if (o === undefined) throw new TpmError(rcForHandle(TPM_RC.HANDLE, 1));
  const pub = o.publicArea;
  if (!pub.objectAttributes.sign) throw new TpmError(rcForHandle(TPM_RC.KEY, 1));
  const sel = selectScheme(pub, inScheme);
  if (sel === undefined || !isHashAlg(sel.hashAlg)) throw new TpmError(rcForParameter(TPM_RC.SCHEME, 2));
  // Part 3 §20.2: a restricted key signs only digests the TPM hashed itself, proven by a ticket.
  if (validation.digest.length !== 0 || pub.objectAttributes.restricted) {
    const want = hashCheckDigest(engine, validation.hierarchy, sel.hashAlg, digest);
    if (validation.digest.length !== want.length || !Buffer.from(want).equals(Buffer.from(validation.digest))) {
      throw new TpmError(rcForParameter(TPM_RC.TICKET, 3));
    }
  } else if (digest.length !== digestSize(sel.hashAlg)) {
    throw new TpmError(rcForParameter(TPM_RC.SIZE, 1));
  }
  return ok<typeof Sign>({ signature: signDigest(engine, o, sel, digest) } as never);
});
