/**
 * Child process of test/simulator/crash.test.ts: opens (or manufactures) the
 * state in argv[2], prints "ready N" with the update it holds, then applies
 * updates N+1, N+2, … for ever, printing "ack K" only after save(K) resolved.
 * The parent kills it with SIGKILL.
 */
import { openSimulatorStore } from '../../src/simulator/store.js';
import { applyUpdate, crashTestRandom } from './state-crash-model.js';

const dir = process.argv[2];
if (dir === undefined) throw new Error('usage: state-crash-child.ts DIR');
const { store, state } = await openSimulatorStore(dir, { create: true, random: crashTestRandom() });
let n = Number(state.clock.clock);
process.stdout.write(`ready ${n}\n`);
for (;;) {
  n += 1;
  applyUpdate(state, n);
  await store.save(state);
  process.stdout.write(`ack ${n}\n`);
}
