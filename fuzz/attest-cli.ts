/**
 * Fuzzing of the evidence readers of `trustroot attest` (src/cli/evidence.ts):
 * random bytes and text (fast-check), random JSON documents, structured PCR
 * value documents with random banks, indices and values, and byte mutations
 * of valid inputs (a JSON PCR file, a `tpm2_quote -o` file, a clock state,
 * an AK PEM) go through every reader. Every failure must be a typed
 * TrustrootError; whatever reads must hold what the reader promises (values of
 * their bank's size, indices 0..31, a nonce of 1..64 bytes).
 *
 * Used by test/cli/attest.test.ts (fixed seed, CI) and as a long run:
 * `npx tsx fuzz/attest-cli.ts --seed N --iterations M`.
 */
import { generateKeyPairSync } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import fc from 'fast-check';
import { writePcrValuesFile } from '../src/client/files.js';
import {
  bankByName,
  MAX_PCR_INDEX,
  parseNonceHex,
  parsePcrJson,
  readAkFile,
  readClockFile,
  readEkFile,
  readPcrFile,
  readQuoteFile,
  readSignatureBytes,
} from '../src/cli/evidence.js';
import { TPM_ALG } from '../src/tpm/constants.js';
import { digestSize } from '../src/tpm/crypto/hash.js';
import { pcrSelection } from '../src/tpm/pcr.js';
import { mutate, Prng, type FuzzStats, recordInput } from './parsers.js';

const utf8 = new TextEncoder();


/** What a successful PCR read must satisfy; a violation is thrown as a plain Error (recorded as a bug). */
function checkPcrValues(values: ReadonlyMap<number, ReadonlyMap<number, Uint8Array>>): void {
  for (const [bank, m] of values) {
    const size = digestSize(bank);
    for (const [i, v] of m) {
      if (!Number.isInteger(i) || i < 0 || i > MAX_PCR_INDEX) throw new Error(`PCR index ${i} accepted`);
      if (v.length !== size) throw new Error(`a ${v.length}-byte value accepted in a ${size}-byte bank`);
    }
  }
}

function allReaders(stats: FuzzStats, input: Uint8Array): void {
  recordInput(stats, input, () => checkPcrValues(readPcrFile(input).values));
  recordInput(stats, input, () => readClockFile(input));
  recordInput(stats, input, () => readAkFile(input));
  recordInput(stats, input, () => readEkFile(input));
  recordInput(stats, input, () => readQuoteFile(input));
  recordInput(stats, input, () => readSignatureBytes(input));
}

const BANK_NAMES = ['sha1', 'sha256', 'sha384', 'sha512', 'SHA-256', 'sm3_256', 'sha3-256', '0x000b', '11', 'md5', '', 'sha256 '];

/** Valid inputs to mutate. */
function seeds(): Uint8Array[] {
  const v = (bank: number, i: number): Uint8Array => new Uint8Array(digestSize(bank)).fill(i);
  const json = {
    sha256: Object.fromEntries([0, 1, 2, 7, 10].map((i) => [String(i), Buffer.from(v(TPM_ALG.SHA256, i)).toString('hex')])),
    sha1: { '16': Buffer.from(v(TPM_ALG.SHA1, 16)).toString('hex') },
  };
  const selections = [pcrSelection(TPM_ALG.SHA256, [0, 1, 2, 3, 4, 5, 6, 7, 10]), pcrSelection(TPM_ALG.SHA1, [16])];
  const tools = writePcrValuesFile({ selections, digests: [...[0, 1, 2, 3, 4, 5, 6, 7, 10].map((i) => v(TPM_ALG.SHA256, i)), v(TPM_ALG.SHA1, 16)] });
  const clock = { clock: 123456, resetCount: 3, restartCount: 1, safe: true, firmwareVersion: '2312897626142815798' };
  const pem = String(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }));
  return [utf8.encode(JSON.stringify(json)), utf8.encode(JSON.stringify(json, null, 2)), tools, utf8.encode(JSON.stringify(clock)), utf8.encode(pem)];
}

/** A PCR document with random banks, keys and values, mostly close to valid. */
const pcrDocument = fc.dictionary(
  fc.oneof(fc.constantFrom(...BANK_NAMES), fc.string({ maxLength: 10 })),
  fc.oneof(
    fc.dictionary(
      fc.oneof(fc.integer({ min: -1, max: 40 }).map(String), fc.constantFrom('07', '0x1', '1e1', ' 1', ''), fc.string({ maxLength: 4 })),
      fc.oneof(
        fc.constantFrom(20, 32, 48, 64).chain((n) => fc.uint8Array({ minLength: n, maxLength: n }).map((b) => Buffer.from(b).toString('hex'))),
        fc.string({ maxLength: 70 }),
        fc.integer(),
        fc.constant(null),
      ),
      { maxKeys: 6 },
    ),
    fc.jsonValue({ maxDepth: 2 }),
  ),
  { maxKeys: 4 },
);

/**
 * Runs `iterations` inputs through the readers with a fixed `seed`.
 * @returns counts, error codes, and the first untyped failures (there must be none).
 */
export function fuzzCliEvidence(seed: number, iterations: number): FuzzStats {
  const stats: FuzzStats = { inputs: 0, parsed: 0, typedErrors: 0, untypedCount: 0, untyped: [], codes: new Map() };
  const rng = new Prng(seed);
  const pool = seeds();
  for (const s of pool) allReaders(stats, s);
  const quarter = Math.max(1, Math.floor(iterations / 24));
  const bytes = fc.sample(fc.uint8Array({ maxLength: 300 }), { seed, numRuns: quarter });
  const docs = fc.sample(pcrDocument, { seed: seed + 1, numRuns: quarter });
  const json = fc.sample(fc.jsonValue({ maxDepth: 4 }), { seed: seed + 2, numRuns: quarter });
  const texts = fc.sample(fc.oneof(fc.string({ maxLength: 140 }), fc.stringMatching(/^(0x)?[0-9a-fA-F]{0,140}$/)), { seed: seed + 3, numRuns: quarter });
  let k = 0;
  while (stats.inputs < iterations) {
    const i = k++ % quarter;
    switch (rng.below(6)) {
      case 0:
        allReaders(stats, bytes[i]!);
        break;
      case 1: {
        const text = JSON.stringify(docs[i]);
        recordInput(stats, text, () => checkPcrValues(parsePcrJson(text)));
        break;
      }
      case 2: {
        const text = JSON.stringify(json[i]) ?? 'null';
        recordInput(stats, text, () => checkPcrValues(parsePcrJson(text)));
        recordInput(stats, text, () => readClockFile(text));
        break;
      }
      case 3: {
        const t = texts[i]!;
        recordInput(stats, t, () => {
          const n = parseNonceHex(t);
          if (n.length < 1 || n.length > 64) throw new Error(`a ${n.length}-byte nonce accepted`);
        });
        recordInput(stats, t, () => {
          const b = bankByName(t);
          if (b !== undefined) digestSize(b);
        });
        break;
      }
      default:
        allReaders(stats, mutate(pool[rng.below(pool.length)]!, rng));
    }
  }
  return stats;
}

// Long run: npx tsx fuzz/attest-cli.ts --seed N --iterations M
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = (name: string): string | undefined => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? process.argv[i + 1] : undefined;
  };
  const seed = Number(arg('seed') ?? Date.now() % 2 ** 31);
  const iterations = Number(arg('iterations') ?? 1_000_000);
  const started = Date.now();
  const stats = fuzzCliEvidence(seed, iterations);
  console.log(`attest-cli: seed ${seed}, ${stats.inputs} inputs in ${Date.now() - started} ms: ${stats.parsed} read, ${stats.typedErrors} typed errors, ${stats.untypedCount} untyped`);
  console.log([...stats.codes].map(([c, n]) => `  ${c}: ${n}`).join('\n'));
  for (const u of stats.untyped) console.log(`UNTYPED ${u.input}\n${u.error}`);
  if (stats.untypedCount > 0) process.exitCode = 1;
}
