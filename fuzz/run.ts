/**
 * Long fuzz run (`npm run fuzz`): ≥ 10 million inputs through the command and
 * response parsers with a random seed that it prints, so a failure can be
 * replayed with `npm run fuzz -- --seed N`. Exits non-zero on any untyped error.
 */
import { randomInt } from 'node:crypto';
import { fuzzParsers } from './parsers.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const seed = Number(arg('seed') ?? randomInt(0, 2 ** 31));
const total = Number(arg('iterations') ?? 10_000_000);
const chunk = 500_000;
console.log(`fuzz: seed ${seed}, ${total} inputs (replay: npm run fuzz -- --seed ${seed} --iterations ${total})`);

const started = Date.now();
let done = 0;
let failures = 0;
for (let round = 0; done < total; round++) {
  const n = Math.min(chunk, total - done);
  const stats = fuzzParsers({ seed: seed + round, iterations: n });
  done += stats.inputs;
  failures += stats.untypedCount;
  for (const u of stats.untyped) console.log(`UNTYPED (seed ${seed + round}): ${u.input}\n${u.error}`);
  const rate = Math.round(done / ((Date.now() - started) / 1000));
  console.log(`  ${done} inputs, ${stats.parsed} parsed in last chunk, ${rate}/s, codes: ${[...stats.codes].map(([k, v]) => `${k}=${v}`).join(' ')}`);
}
console.log(failures === 0 ? `fuzz: ${done} inputs, 0 untyped exceptions` : `fuzz: ${failures} untyped exception(s)`);
process.exit(failures === 0 ? 0 : 1);
