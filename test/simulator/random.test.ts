/** The engine's default random source (state.ts pooledRandomSource): block-drawn, each byte handed out once. */
import { describe, expect, it } from 'vitest';
import { pooledRandomSource } from '../../src/simulator/state.js';

describe('pooledRandomSource', () => {
  it('returns independent arrays of the asked sizes, across block boundaries and for large requests', () => {
    const random = pooledRandomSource(64);
    const got = [1, 7, 16, 3, 16, 16, 8, 0, 100, 16].map((n) => random(n));
    expect(got.map((b) => b.length)).toEqual([1, 7, 16, 3, 16, 16, 8, 0, 100, 16]);
    // Copies, not views of the block: changing one changes no other.
    const a = got[2]!;
    const before = got.map((b) => Buffer.from(b).toString('hex'));
    a.fill(0xaa);
    expect(got.filter((b) => b !== a).map((b) => Buffer.from(b).toString('hex'))).toEqual(before.filter((_, i) => i !== 2));
  });

  it('never hands out the same bytes twice (16-byte draws over many blocks are all distinct)', () => {
    const random = pooledRandomSource(256);
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) seen.add(Buffer.from(random(16)).toString('hex'));
    expect(seen.size).toBe(2000);
  });
});
