/**
 * Where this software TPM knowingly answers differently from libtpms (swtpm),
 * the reference it otherwise imitates code for code (issue 7: "listed in one
 * documented table that the tests read; nothing else may differ").
 *
 * Each row is one command, one case and the two response codes; `why` says
 * what makes ours right (the spec section) or why we chose it. The
 * differential suite (test/simulator/differential.test.ts) runs every row's
 * case on a fresh swtpm and a fresh simulator: a difference not in this table
 * fails, and so does a row that no longer differs (a fixed divergence leaves
 * the table). Per-area tests that meet one of these cases take the codes
 * from here, never from a private list. A step's answer is the one after
 * TPM_RC_RETRY warnings were resent (test/support/scenario.ts, as clients
 * do), so libtpms's RETRYs need no rows but the one step that looks for them.
 */
import { TPM_CC } from '../tpm/constants.js';
import { rcForHandle, rcForParameter, TPM_RC } from '../tpm/rc.js';

/** A command by its TPM_CC name. */
export type CommandName = keyof typeof TPM_CC;

export interface Divergence {
  /** Stable key, e.g. 'rsa-decrypt-padding'. */
  readonly id: string;
  readonly command: CommandName;
  /** The input that shows it. */
  readonly case: string;
  /**
   * libtpms's answer (as Debian's swtpm gives it): a response code, or for a
   * command that succeeds on both, the value the test logs for it.
   */
  readonly libtpms: number | string;
  /** This simulator's answer: a response code (0: success), or the logged value. */
  readonly ours: number | string;
  /** Why ours: the spec section that makes it right, or the reason for the choice. */
  readonly why: string;
}

const RC = TPM_RC;

/**
 * The table. Short by intent: everything else a test can observe (codes,
 * handle/parameter numbers, deterministic bytes) agrees with libtpms.
 */
export const DIVERGENCES = [
  {
    id: 'rsa-decrypt-padding',
    command: 'RSA_Decrypt',
    case: 'a cipher text that does not decode under the key\'s scheme (OAEP or RSAES padding)',
    libtpms: RC.FAILURE,
    ours: RC.VALUE,
    why: 'Part 3 §14.3 (RSA_Decrypt): "TPM_RC_VALUE … the decryption failed"; libtpms passes on OpenSSL\'s error as TPM_RC_FAILURE, which clients read as a broken TPM rather than bad input',
  },
  {
    id: 'rsa-encrypt-too-long',
    command: 'RSA_Encrypt',
    case: 'a message too long for the scheme (over the OAEP limit, or longer than the modulus)',
    libtpms: RC.FAILURE,
    ours: RC.VALUE,
    why: 'Part 3 §14.2 (RSA_Encrypt): "TPM_RC_VALUE … message is too large"; libtpms reports OpenSSL\'s padding error as TPM_RC_FAILURE',
  },
  {
    id: 'import-seed-undecodable',
    command: 'Import',
    case: 'an RSA-OAEP inSymSeed that does not decode with the parent\'s key',
    libtpms: RC.FAILURE,
    ours: rcForParameter(RC.VALUE, 4),
    why: 'Part 3 §13.3 (Import): "TPM_RC_VALUE … inSymSeed … cannot be decrypted" (the reference\'s CryptSecretDecrypt); libtpms answers OpenSSL\'s OAEP error as TPM_RC_FAILURE',
  },
  {
    id: 'activate-credential-seed-undecodable',
    command: 'ActivateCredential',
    case: 'an RSA-OAEP secret that does not decode with keyHandle\'s key',
    libtpms: RC.FAILURE,
    ours: rcForParameter(RC.VALUE, 2),
    why: 'Part 3 §12.5 (ActivateCredential): "TPM_RC_VALUE secret is invalid (when keyHandle is an RSA key)"; libtpms answers OpenSSL\'s OAEP error as TPM_RC_FAILURE (as for Import)',
  },
  {
    id: 'sequence-update-not-a-sequence',
    command: 'SequenceUpdate',
    case: 'sequenceHandle names a loaded object that is not a sequence',
    libtpms: rcForParameter(RC.MODE, 1),
    ours: rcForHandle(RC.MODE, 1),
    why: 'Part 3 §17.4: TPM_RC_MODE on sequenceHandle (a handle); libtpms before 0.10 numbers it as parameter 1 (its SequenceUpdate_fp.h, fixed upstream in "tpm2: Fix definition of SequenceUpdate error codes")',
  },
  {
    id: 'zgen-2phase-ecmqv',
    command: 'ZGen_2Phase',
    case: 'inScheme ECMQV with a key whose scheme allows it',
    libtpms: RC.FAILURE,
    ours: 0,
    why: 'Part 3 §14.7 and SP 800-56A §5.7.2.3 (C(2e, 2s) ECMQV): we compute the shared point; libtpms enters failure mode (every later command TPM_RC_FAILURE until a restart)',
  },
  {
    id: 'da-first-failure-retry',
    command: 'Sign',
    case: 'the first authorization failure on a DA-protected object after start-up, resent while the answer is TPM_RC_RETRY',
    libtpms: '0x922 0x98e',
    ours: '0x98e',
    why: 'libtpms must clear its orderly flag in NV before it counts the first DA failure, and answers TPM_RC_RETRY (a warning: Part 2 §6.6.3, "the TPM was not able to start the command", sent again unchanged) to do it; ours keeps its state in memory and stores it after the command, so it never has to wait. The resent command gets the same answer and the same count on both; everywhere else the client (src/client/retry.ts) and scenarioLog resend, so only this step sees the warning',
  },
  {
    id: 'capability-algorithms',
    command: 'GetCapability',
    case: 'TPM_CAP_ALGS: the algorithms libtpms lists that ours does not',
    libtpms: 'TDES SM2 ECMQV KDF2 CAMELLIA CMAC',
    ours: '(none)',
    why: 'Part 2 §10.1: a TPM implements a subset; ours is what node:crypto and @noble/curves give (algorithms.ts): no TDES, Camellia, SM2, CMAC or KDF2; ECMQV works in ZGen_2Phase but is not listed yet (algorithms.ts)',
  },
  {
    id: 'capability-commands',
    command: 'GetCapability',
    case: 'TPM_CAP_COMMANDS: the commands libtpms lists beyond the core\'s 107 (ALL_COMMANDS)',
    libtpms: 'CertifyX509 PP_Commands SetAlgorithmSet',
    ours: '(none)',
    why: 'issue 7 scopes the software TPM to the core\'s command set (src/tpm/commands); CertifyX509 (Part 3 §18.8) and the platform commands PP_Commands and SetAlgorithmSet (Part 3 §26.2, §26.3) are outside it',
  },
  {
    id: 'capability-curves',
    command: 'GetCapability',
    case: 'TPM_CAP_ECC_CURVES',
    libtpms: 'NIST_P192 NIST_P224 NIST_P256 NIST_P384 NIST_P521 BN_P256 BN_P638 SM2_P256',
    ours: 'NIST_P256 NIST_P384',
    why: 'Part 2 §11.2.5.5 lets a TPM implement any curves; ours are keygen.ts ECC_CURVES, those of the TCG EK templates (P-256, P-384); P-192 and P-224 are below current strength, BN and SM2 curves are not in node:crypto',
  },
  {
    id: 'ecc-parameters-unimplemented-curve',
    command: 'ECC_Parameters',
    case: 'a registry curve libtpms implements and we do not (BN P-638)',
    libtpms: 0,
    ours: rcForParameter(RC.CURVE, 1),
    why: 'Part 3 §14.6: TPM_RC_CURVE for a curve the TPM does not implement (see capability-curves, the same choice)',
  },
  {
    id: 'command-tag-not-a-tpm-st',
    command: 'GetRandom',
    case: 'a header tag that no TPM_ST names (0x8003, or a TPM 1.2 tag such as 0x00C1)',
    libtpms: RC.VALUE,
    ours: RC.BAD_TAG,
    why: 'Part 3 §5.2 and Part 2 §9.35 (TPMI_ST_COMMAND_TAG, #TPM_RC_BAD_TAG): a tag other than TPM_ST_SESSIONS/NO_SESSIONS is TPM_RC_BAD_TAG, the code a TPM 1.2 stack also reads (TPM_BADTAG); libtpms unmarshals a TPM_ST first and answers TPM_RC_VALUE for a value no TPM_ST names (TPM_RC_BAD_TAG only for other TPM_ST values)',
  },
] as const satisfies readonly Divergence[];

/** A row of the table. */
export type DivergenceRow = (typeof DIVERGENCES)[number];
export type DivergenceId = DivergenceRow['id'];

const BY_ID: ReadonlyMap<string, DivergenceRow> = new Map(DIVERGENCES.map((d) => [d.id, d]));

/** The row with this id (a typo is a type error; an id that left the table throws). */
export function divergence(id: DivergenceId): DivergenceRow {
  const d = BY_ID.get(id);
  if (d === undefined) throw new RangeError(`no divergence ${id}`);
  return d;
}

/**
 * The row that explains libtpms answering `libtpms` and us `ours` to
 * `command` (a TPM_CC value or name), or undefined: then the difference is
 * not a known one.
 */
export function findDivergence(command: number | CommandName, libtpms: number | string, ours: number | string): DivergenceRow | undefined {
  const name = typeof command === 'number' ? commandName(command) : command;
  return DIVERGENCES.find((d: Divergence) => d.command === name && d.libtpms === libtpms && d.ours === ours);
}

function commandName(code: number): CommandName | undefined {
  for (const [name, value] of Object.entries(TPM_CC)) if (value === code) return name as CommandName;
  return undefined;
}
