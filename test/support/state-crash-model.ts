/**
 * The update stream of the state crash test (test/simulator/crash.test.ts),
 * shared by the child that applies it and the parent that checks the result.
 * Update n changes the SimulatorState fields the acceptance's persistent
 * commands touch (NV define/undefine, write, increment, extend, setbits,
 * EvictControl, HierarchyChangeAuth, DictionaryAttackParameters) and sets
 * clock.clock = n, so a loaded state says which update it holds and
 * `modelState(n)` says what every field must then be.
 */
import { createHash } from 'node:crypto';
import { createSimulatorState, type RandomSource, type SimulatorState } from '../../src/simulator/state.js';
import { TPM_ALG } from '../../src/tpm/constants.js';
import { objectName } from '../../src/tpm/names.js';
import { TPMA_OBJECT, TPMT_PUBLIC, TPMT_SENSITIVE } from '../../src/tpm/types/index.js';
import { encode } from '../../src/tpm/wire/codec.js';

function sha256(...parts: (string | Uint8Array)[]): Uint8Array {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

/** A deterministic random source, so the manufactured state is the model's base. */
export function crashTestRandom(): RandomSource {
  let counter = 0;
  return (size) => {
    const out = new Uint8Array(size);
    for (let off = 0; off < size; off += 32) out.set(sha256('crash-test-seed', String(counter++)).subarray(0, size - off), off);
    return out;
  };
}

const COUNTER_INDEX = 0x01500000;
const EXTEND_INDEX = 0x01500001;
const BITS_INDEX = 0x01500002;
const ORDINARY_BASE = 0x01000000;

function nv(state: SimulatorState, index: number): SimulatorState['nvIndices'][number] {
  let entry = state.nvIndices.find((e) => e.nvIndex === index);
  if (entry === undefined) {
    entry = { nvIndex: index, nameAlg: 0x000b, attributes: 0x00040004, authPolicy: new Uint8Array(0), authValue: new Uint8Array(0), dataSize: 8, data: new Uint8Array(8) };
    state.nvIndices.push(entry);
  }
  return entry;
}

/** Applies update n (n ≥ 1) in place. */
export function applyUpdate(state: SimulatorState, n: number): void {
  state.clock.clock = BigInt(n);
  switch (n % 7) {
    case 0: {
      // NV_DefineSpace / NV_UndefineSpace of an ordinary index.
      const index = ORDINARY_BASE + (n % 5);
      const at = state.nvIndices.findIndex((e) => e.nvIndex === index);
      if (at >= 0) state.nvIndices.splice(at, 1);
      else state.nvIndices.push({ nvIndex: index, nameAlg: 0x000b, attributes: 0x00060006, authPolicy: sha256('policy', String(n)), authValue: sha256('auth', String(n)).subarray(0, n % 17), dataSize: 512, data: new Uint8Array(0) });
      break;
    }
    case 1: {
      // NV_Write of 512 bytes into whichever ordinary index exists.
      const entry = state.nvIndices.find((e) => e.nvIndex >= ORDINARY_BASE && e.nvIndex < ORDINARY_BASE + 5);
      const data = new Uint8Array(512);
      for (let off = 0; off < 512; off += 32) data.set(sha256('data', String(n), String(off)), off);
      if (entry) entry.data = data;
      break;
    }
    case 2: {
      // NV_Increment: the 8-byte big-endian counter.
      const entry = nv(state, COUNTER_INDEX);
      const view = new DataView(entry.data.buffer, entry.data.byteOffset, 8);
      const next = new Uint8Array(8);
      new DataView(next.buffer).setBigUint64(0, view.getBigUint64(0) + 1n);
      entry.data = next;
      break;
    }
    case 3: {
      // NV_Extend: data = H(data ‖ n).
      const entry = nv(state, EXTEND_INDEX);
      entry.data = sha256(entry.data, String(n));
      entry.dataSize = 32;
      break;
    }
    case 4: {
      // NV_SetBits: OR in one bit.
      const entry = nv(state, BITS_INDEX);
      const next = new Uint8Array(entry.data);
      next[n % 8] = (next[n % 8] ?? 0) | (1 << (n % 8));
      entry.data = next;
      break;
    }
    case 5: {
      // EvictControl: make persistent or evict.
      const handle = 0x81000000 + (n % 3);
      const at = state.persistentObjects.findIndex((o) => o.handle === handle);
      if (at >= 0) state.persistentObjects.splice(at, 1);
      else {
        // A keyedHash object that could be real (unique = H(seedValue ‖ key), its Name, a qualified Name that is a Name):
        // the store refuses anything else (validateSimulatorState).
        const seedValue = sha256('seed', String(n));
        const key = sha256('sensitive', String(n));
        const publicArea = {
          type: TPM_ALG.KEYEDHASH,
          nameAlg: TPM_ALG.SHA256,
          objectAttributes: TPMA_OBJECT.of({ userWithAuth: true, noDA: true }),
          authPolicy: sha256('policy', String(n)),
          parameters: { scheme: { scheme: TPM_ALG.NULL } },
          unique: sha256(seedValue, key),
        } as TPMT_PUBLIC;
        const sensitive = encode(TPMT_SENSITIVE, { sensitiveType: TPM_ALG.KEYEDHASH, authValue: new Uint8Array(0), seedValue, sensitive: key } as never);
        const qualifiedName = Uint8Array.of(0x00, 0x0b, ...sha256('qn', String(n)));
        state.persistentObjects.push({ handle, hierarchy: 0x40000001, public: encode(TPMT_PUBLIC, publicArea), sensitive, name: objectName(publicArea), qualifiedName });
      }
      break;
    }
    default: {
      // HierarchyChangeAuth and DictionaryAttackParameters.
      state.auths.owner.authValue = sha256('owner', String(n)).subarray(0, n % 33);
      state.dictionaryAttack.maxTries = n % 100;
      state.dictionaryAttack.recoveryTime = n;
    }
  }
}

/** The state after updates 1..n applied to the manufactured base. */
export function modelState(n: number): SimulatorState {
  const state = createSimulatorState(crashTestRandom());
  for (let i = 1; i <= n; i++) applyUpdate(state, i);
  return state;
}
