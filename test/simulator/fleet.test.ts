/**
 * Issue 6 acceptance: 1,000 software TPMs in one process, all alive at once,
 * each answering a Quote by an ECC AK that node:crypto verifies
 * (test/support/fleet.ts). Seeds are deterministic per engine: the same
 * engine number gives the same AK, different numbers different AKs. An idle
 * engine takes less than 200 KB of heap (the goal); `npm run bench`
 * prints the time and the memory per engine.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { objectName } from '../../src/tpm/names.js';
import { garbageCollector, quoteWithEccAk, startFleetMember, type FleetMember } from '../support/fleet.js';

const FLEET = 1000;

describe('a fleet of software TPMs in one process', () => {
  it(`${FLEET} engines, all alive at once, each answers a Quote with an ECC AK that verifies`, async () => {
    const gc = garbageCollector();
    gc();
    const heapBefore = process.memoryUsage().heapUsed;
    const started = performance.now();
    const fleet: FleetMember[] = [];
    for (let i = 0; i < FLEET; i++) fleet.push(await startFleetMember(i));
    gc();
    // Issue 6's goal for an idle engine, with all of them alive.
    const perEngine = (process.memoryUsage().heapUsed - heapBefore) / FLEET;
    expect(perEngine).toBeLessThan(200 * 1024);
    const names = new Set<string>();
    for (const member of fleet) {
      const nonce = new Uint8Array(randomBytes(16));
      const q = await quoteWithEccAk(member, nonce);
      names.add(Buffer.from(objectName(q.akPublic)).toString('hex'));
    }
    // Every engine has its own endorsement seed, so its own AK.
    expect(names.size).toBe(FLEET);
    // Determinism: engine 7 made again gives the same AK.
    const again = await quoteWithEccAk(await startFleetMember(7), new Uint8Array(16));
    const seven = await quoteWithEccAk(fleet[7]!, new Uint8Array(16));
    expect(Buffer.from(objectName(again.akPublic))).toEqual(Buffer.from(objectName(seven.akPublic)));
    const secs = (performance.now() - started) / 1000;
    console.log(`fleet: ${FLEET} engines started and quoted in ${secs.toFixed(1)} s (${((secs * 1000) / FLEET).toFixed(2)} ms each), ${(perEngine / 1024).toFixed(1)} KB of heap per idle engine`);
    await Promise.all(fleet.map((m) => m.transport.close()));
  }, 120_000);
});
