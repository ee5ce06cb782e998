/**
 * Fuzzing of the attestation-policy reader (src/attest/policy.ts,
 * profiles.ts): random JSON values (fast-check), random and mutated JSON
 * text, and structural mutations of valid policies (a field removed,
 * retyped, renamed, set to an edge value, an unknown field or `__proto__`
 * added, strings lengthened, lists grown past their bounds) go through
 * parsePolicy and withProfile; what parses is evaluated against empty
 * evidence. Every failure must be a PolicyError (`evidence.policy`) with at
 * least one issue whose path starts with `$`; anything else is counted as
 * untyped.
 *
 * Used by test/attest/policy.test.ts (fixed seed, CI) and as a long run:
 * `npx tsx fuzz/attest-policy.ts --seed N --iterations M`, or through
 * `npm run fuzz` (fuzz/run.ts picks up fuzzPolicy).
 */
import fc from 'fast-check';
import { evaluatePolicy, parsePolicy, PolicyError, type PolicyDocument } from '../src/attest/policy.js';
import { PRODUCTION_POLICY_DOCUMENT, TEST_POLICY_DOCUMENT, withProfile } from '../src/attest/profiles.js';
import { Prng, type FuzzStats } from './parsers.js';
import { isMain, runStandalone } from './mutate.js';

const H = (n: number, c = 'a'): string => c.repeat(2 * n);

/** A policy using every field of the schema once (valid). */
export function examplePolicyDocument(): PolicyDocument {
  return {
    version: 1,
    name: 'example',
    description: 'every rule once',
    missing: 'fail',
    sha1: true,
    clock: { unsafe: 'warn' },
    pcrs: { sha1: { '0': H(20) }, sha256: { '0': H(32), '7': [H(32, 'b'), H(32, 'c')] }, sha384: { '23': H(48) } },
    eventLog: {
      missing: 'not-performed',
      secureBoot: 'enabled',
      bootChain: { sha256: [H(32, 'd'), H(32, 'e')], sha1: [H(20, 'f')] },
      forbiddenEvents: [
        { type: 'EV_EFI_ACTION', text: 'Entering ROM Based Setup', reason: 'setup entered' },
        { pcr: 4, digest: `sha256:${H(32, '1')}` },
        { type: 'EV_0x800000E0' },
      ],
      kernelCommandLine: { forbidden: ['init=/bin/sh', 'selinux=0'], required: ['ro', 'console=*'] },
    },
    ima: {
      missing: 'fail',
      allow: { '/usr/bin/dd': [`sha256:${H(32, '2')}`], boot_aggregate: [H(20, '3')] },
      exclude: ['/tmp/', '/var/**/*.log', '/home/?'],
      deny: [`sha256:${H(32, '4')}`],
      violations: 'fail',
    },
    tpm: { missing: 'fail', minimumType: 'firmware', allowUnknownType: false, ekChain: 'verified' },
    firmware: {
      missing: 'not-performed',
      minimum: { IFX: '7.85', '*': '0x0001000000000000' },
      deny: [{ manufacturer: 'IFX', from: '4.0', to: '7.61.65535.65535', reason: 'advisory' }, { version: '1.2.3.4' }],
    },
  };
}

const SEEDS: readonly unknown[] = [examplePolicyDocument(), PRODUCTION_POLICY_DOCUMENT, TEST_POLICY_DOCUMENT, { version: 1 }];

const KEYS = [
  'version', 'name', 'description', 'missing', 'sha1', 'clock', 'unsafe', 'pcrs', 'sha256', 'sha1', 'sha384', '7', '24', '-1', '07',
  'eventLog', 'secureBoot', 'bootChain', 'forbiddenEvents', 'type', 'pcr', 'text', 'digest', 'reason', 'kernelCommandLine', 'forbidden',
  'required', 'ima', 'allow', 'exclude', 'deny', 'violations', 'tpm', 'minimumType', 'allowUnknownType', 'ekChain', 'firmware', 'minimum',
  'from', 'to', '*', '__proto__', 'constructor', 'toString', '', ' ', '\u0000', '$ref',
];

function edgeValue(rng: Prng): unknown {
  const pool: unknown[] = [
    null, true, false, 0, -1, 1, 1.5, 23, 24, 2 ** 53, -0, 1e308, '', ' ', '0', 'sha256', 'enabled', 'EV_', 'EV_0x1234567g', '*', '**',
    'a'.repeat(5000), '\ud800', '\u{1f600}', 'ok'.repeat(300), H(32), H(20), `sha256:${H(32)}`, `sha1:${H(20)}`, '65535.65535.65535.65535', '65536',
    '0x', '0x00000000000000000', [], {}, [[[]]], { version: 1 }, Array.from({ length: 30 }, () => H(32)),
  ];
  return pool[rng.below(pool.length)];
}

/** Every (container, key) in a JSON value, breadth first, at most 200. */
function slots(root: unknown): { parent: Record<string, unknown> | unknown[]; key: string | number }[] {
  const out: { parent: Record<string, unknown> | unknown[]; key: string | number }[] = [];
  const queue: unknown[] = [root];
  while (queue.length > 0 && out.length < 200) {
    const v = queue.shift();
    if (Array.isArray(v)) v.forEach((x, i) => (out.push({ parent: v, key: i }), queue.push(x)));
    else if (v !== null && typeof v === 'object') for (const k of Object.keys(v)) out.push({ parent: v as Record<string, unknown>, key: k }), queue.push((v as Record<string, unknown>)[k]);
  }
  return out;
}

/** One structural mutation of a copy of `seed`. */
export function mutatePolicy(seed: unknown, rng: Prng, junk: () => unknown): unknown {
  const doc = JSON.parse(JSON.stringify(seed)) as unknown;
  const rounds = 1 + rng.below(3);
  for (let r = 0; r < rounds; r++) {
    const s = slots(doc);
    if (s.length === 0) return junk();
    const { parent, key } = s[rng.below(s.length)]!;
    const set = (v: unknown): void => {
      if (Array.isArray(parent)) parent[key as number] = v;
      else Object.defineProperty(parent, key, { value: v, enumerable: true, writable: true, configurable: true });
    };
    const cur = Array.isArray(parent) ? parent[key as number] : parent[key as string];
    switch (rng.below(9)) {
      case 0:
        if (Array.isArray(parent)) parent.splice(key as number, 1);
        else delete parent[key as string];
        break;
      case 1:
        set(junk());
        break;
      case 2:
        set(edgeValue(rng));
        break;
      case 3: {
        const k = KEYS[rng.below(KEYS.length)]!;
        const target = cur !== null && typeof cur === 'object' && !Array.isArray(cur) ? (cur as Record<string, unknown>) : undefined;
        if (target !== undefined) Object.defineProperty(target, k, { value: rng.below(2) === 0 ? edgeValue(rng) : junk(), enumerable: true, writable: true, configurable: true });
        else set({ [k]: edgeValue(rng) });
        break;
      }
      case 4:
        set([cur]);
        break;
      case 5:
        if (typeof cur === 'string') set(cur.slice(0, rng.below(cur.length + 1)) + String.fromCharCode(rng.below(0x80)) + cur.slice(rng.below(cur.length + 1)));
        else set(JSON.stringify(cur) ?? 'undefined');
        break;
      case 6:
        if (Array.isArray(cur)) for (let i = rng.below(40); i > 0; i--) cur.push(cur[0] ?? edgeValue(rng));
        else set(typeof cur === 'number' ? -cur : cur === true ? 'true' : 1);
        break;
      case 7: {
        // Rename the key: a typo of a known field must be refused, never dropped.
        if (!Array.isArray(parent)) {
          delete parent[key as string];
          Object.defineProperty(parent, `${String(key)}${'sx_'[rng.below(3)]}`, { value: cur, enumerable: true, writable: true, configurable: true });
        }
        break;
      }
      default:
        set(rng.below(2) === 0 ? null : undefined);
    }
  }
  return doc;
}

function mutateText(text: string, rng: Prng): string {
  const b = Buffer.from(text, 'utf8');
  const n = 1 + rng.below(4);
  let out = b;
  for (let i = 0; i < n; i++) {
    const at = rng.below(out.length + 1);
    switch (rng.below(4)) {
      case 0:
        out = Buffer.concat([out.subarray(0, at), out.subarray(Math.min(out.length, at + 1 + rng.below(8)))]);
        break;
      case 1:
        out = Buffer.concat([out.subarray(0, at), Buffer.from([rng.below(256)]), out.subarray(at)]);
        break;
      case 2:
        if (at < out.length) out[at] = rng.below(256);
        break;
      default:
        out = out.subarray(0, at);
    }
  }
  return out.toString('latin1');
}

function record(stats: FuzzStats, label: () => string, fn: () => void): void {
  stats.inputs++;
  try {
    fn();
    stats.parsed++;
  } catch (e) {
    if (e instanceof PolicyError && e.issues.length > 0 && e.issues.every((i) => i.path.startsWith('$') && typeof i.message === 'string')) {
      stats.typedErrors++;
      for (const i of e.issues.slice(0, 3)) {
        const code = `${e.code}:${i.keyword}`;
        stats.codes.set(code, (stats.codes.get(code) ?? 0) + 1);
      }
      return;
    }
    stats.untypedCount++;
    if (stats.untyped.length < 5) stats.untyped.push({ input: label().slice(0, 2000), error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  }
}

const EMPTY_EVIDENCE = {};

/**
 * Runs `iterations` inputs from `seed`. `timeLimitMs` stops early (the tests
 * time-box it); the stats say how many ran.
 */
export function fuzzPolicy(seed: number, iterations: number, options: { timeLimitMs?: number } = {}): FuzzStats {
  const rng = new Prng(seed);
  const stats: FuzzStats = { inputs: 0, parsed: 0, typedErrors: 0, untypedCount: 0, untyped: [], codes: new Map() };
  const start = Date.now();
  const junkPool = fc.sample(fc.jsonValue({ maxDepth: 4 }), { seed, numRuns: 512 });
  const junk = (): unknown => structuredClone(junkPool[rng.below(junkPool.length)]);
  const objects = fc.sample(
    fc.dictionary(fc.constantFrom(...KEYS), fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.constant(1)), { maxKeys: 6 }),
    { seed: seed + 1, numRuns: 256 },
  );
  for (const s of SEEDS) record(stats, () => JSON.stringify(s), () => void evaluatePolicy(parsePolicy(s), EMPTY_EVIDENCE));
  while (stats.inputs < iterations) {
    if (options.timeLimitMs !== undefined && (stats.inputs & 255) === 0 && Date.now() - start > options.timeLimitMs) break;
    const pick = rng.below(10);
    if (pick === 0) {
      const v = junk();
      record(stats, () => JSON.stringify(v), () => void parsePolicy(v));
    } else if (pick === 1) {
      const v = { version: 1, ...(objects[rng.below(objects.length)] as object) };
      record(stats, () => JSON.stringify(v), () => void evaluatePolicy(parsePolicy(v), EMPTY_EVIDENCE));
    } else if (pick <= 6) {
      const v = mutatePolicy(SEEDS[rng.below(SEEDS.length)], rng, junk);
      record(stats, () => JSON.stringify(v) ?? String(v), () => void evaluatePolicy(parsePolicy(v), EMPTY_EVIDENCE));
    } else if (pick <= 8) {
      const text = mutateText(JSON.stringify(SEEDS[rng.below(SEEDS.length)]), rng);
      const bytes = rng.below(2) === 0;
      record(stats, () => text, () => void parsePolicy(bytes ? new Uint8Array(Buffer.from(text, 'latin1')) : text));
    } else {
      const v = mutatePolicy({ eventLog: { bootChain: { sha256: [H(32)] } }, pcrs: { sha256: { '7': H(32) } } }, rng, junk);
      record(stats, () => JSON.stringify(v) ?? String(v), () => void withProfile(rng.below(2) === 0 ? 'production' : 'test', v));
    }
  }
  return stats;
}

// A long run on its own: npx tsx fuzz/attest-policy.ts --seed N --iterations M
if (isMain(import.meta.url)) runStandalone('attest-policy', fuzzPolicy, 100_000);
