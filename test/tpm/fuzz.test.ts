/**
 * CI fuzz run with a fixed seed: ≥ 100,000 random and mutated byte strings to
 * the command and response parsers, 0 untyped exceptions. The long run with a
 * random seed is `npm run fuzz`.
 */
import { describe, expect, it } from 'vitest';
import { fuzzParsers, mutate, Prng } from '../../fuzz/parsers.js';

describe('parser fuzzing (fixed seed)', () => {
  it('feeds 100,000 inputs with no untyped exception', () => {
    const stats = fuzzParsers({ seed: 20261129, iterations: 100_000 });
    expect(stats.untyped).toEqual([]);
    expect(stats.untypedCount).toBe(0);
    expect(stats.inputs).toBeGreaterThanOrEqual(100_000);
    // The inputs reach past the header: some parse, and many kinds of check fire.
    expect(stats.parsed).toBeGreaterThan(1000);
    for (const code of ['parse.truncated', 'parse.size', 'parse.tag', 'parse.command', 'parse.trailing', 'parse.count', 'parse.value']) {
      expect(stats.codes.get(code) ?? 0, code).toBeGreaterThan(0);
    }
  }, 180_000);

  it('mutations are deterministic for a seed and change the input', () => {
    const input = new Uint8Array(64).map((_, i) => i);
    const a = mutate(input, new Prng(7));
    const b = mutate(input, new Prng(7));
    expect(a).toEqual(b);
    let changed = 0;
    const rng = new Prng(8);
    for (let i = 0; i < 100; i++) if (Buffer.compare(mutate(input, rng), input) !== 0) changed++;
    expect(changed).toBeGreaterThan(90);
  });
});
