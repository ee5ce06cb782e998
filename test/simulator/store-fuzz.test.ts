/**
 * Fuzzing the software TPM's state file loader (issue 7 "Bad input",
 * fuzz/store.ts): every mutated state file is a StateError or a valid state,
 * and an accepted state is a working TPM. Then the inputs the fuzz found,
 * each a state that crashed the loader or loaded and failed commands with
 * TPM_RC_FAILURE, now state.corrupt.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { StateError } from '../../src/tpm/errors.js';
import { decodeStateFile, simulatorStateOptions } from '../../src/simulator/store.js';
import { DEEP, editStateFile, fuzzStateFiles, stateFileSeeds } from '../../fuzz/store.js';

let seeds: Uint8Array[];
beforeAll(async () => {
  seeds = await stateFileSeeds();
});

/** The StateError code decodeStateFile answers, or 'valid'. */
function verdict(bytes: Uint8Array): string {
  try {
    decodeStateFile(bytes, simulatorStateOptions());
    return 'valid';
  } catch (e) {
    if (e instanceof StateError) return e.code;
    throw e;
  }
}

type Json = Record<string, unknown>;
const at = (json: Json, ...path: (string | number)[]): Json => path.reduce<Json>((o, k) => (o as Record<string | number, Json>)[k]!, json);

describe('state file loader fuzz', () => {
  it('6,000 mutated state files: each a StateError or a valid state; accepted ones run a session without TPM_RC_FAILURE; the folder loader agrees', async () => {
    // The seeds are real files and load as they are.
    for (const s of seeds) expect(verdict(s)).toBe('valid');
    const stats = await fuzzStateFiles({ seed: 20261129, iterations: 6_000, seeds, diskEvery: 300 });
    expect(stats.untyped).toEqual([]);
    expect(stats.inputs).toBe(6_000);
    // Every stage is reached: header and checksum damage, versions, validation, and states that load.
    for (const code of ['state.corrupt', 'state.checksum', 'state.version']) expect(stats.codes.get(code) ?? 0).toBeGreaterThan(50);
    expect(stats.valid).toBeGreaterThan(100);
    expect(stats.onDisk).toBe(20);
  }, 60_000);

  it('found by the fuzz: nesting 100,000 levels deep overflowed the decoder (RangeError); now state.corrupt', () => {
    const file = editStateFile(seeds[1]!, (json) => {
      json['nvIndices'] = `${DEEP}100000`;
    });
    expect(verdict(file)).toBe('state.corrupt');
  });

  it('found by the fuzz: states that loaded, then failed commands with TPM_RC_FAILURE, are state.corrupt', () => {
    const saved = seeds[1]!;
    const cases: [string, (json: Json) => void][] = [
      ['PCR 2^32·6 in a bank', (j) => ((at(j, 'pcrAllocation', 0, 'pcrs') as unknown as number[])[6] = 6 * 2 ** 32)],
      ['PCR 0.5 in a bank', (j) => ((at(j, 'pcrAllocation', 0, 'pcrs') as unknown as number[])[6] = 0.5)],
      ['a pending bank of hash -1', (j) => (j['pendingPcrAllocation'] = [{ hashAlg: -1, pcrs: [0] }])],
      ['an NV index of nameAlg -11', (j) => (at(j, 'nvIndices', 0)['nameAlg'] = -11)],
      ['an NV index handle 20971521.25', (j) => (at(j, 'nvIndices', 0)['nvIndex'] = 20971521.25)],
      ['an NV index handle -1', (j) => (at(j, 'nvIndices', 0)['nvIndex'] = -1)],
      ['a persistent object whose public area is not its Name', (j) => {
        const pub = at(j, 'persistentObjects', 0, 'public');
        pub['$bytes'] = `${(pub['$bytes'] as string).slice(0, -2)}ff`;
      }],
      ['a persistent object whose private scalar is not its public point\'s', (j) => {
        const sens = at(j, 'persistentObjects', 0, 'sensitive');
        const hex = sens['$bytes'] as string;
        sens['$bytes'] = `${hex.slice(0, -2)}${hex.endsWith('00') ? '01' : '00'}`;
      }],
      ['a persistent object whose qualified Name is no Name', (j) => {
        const qn = at(j, 'persistentObjects', 0, 'qualifiedName');
        qn['$bytes'] = `${qn['$bytes'] as string}${'00'.repeat(53)}`;
      }],
      ['an NV index with a reserved attribute bit', (j) => (at(j, 'nvIndices', 0)['attributes'] = 0x100)],
      ['a persistent object with trailing bytes after its sensitive area', (j) => {
        const sens = at(j, 'persistentObjects', 0, 'sensitive');
        sens['$bytes'] = `${sens['$bytes'] as string}00`;
      }],
    ];
    for (const [label, edit] of cases) expect([label, verdict(editStateFile(saved, edit))]).toEqual([label, 'state.corrupt']);
    // The unedited file still loads: the checks refuse only what is wrong.
    expect(verdict(editStateFile(saved, () => undefined))).toBe('valid');
  });
});
