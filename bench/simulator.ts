/**
 * The software TPM next to swtpm (issue 6 acceptance), the same commands from
 * the same client (src/client), in one run:
 *  - over TCP: swtpm (libtpms, its own process) and `trustroot tpm serve
 *    --protocol swtpm` (its own process, through test/support/sim-server.ts);
 *    goal ratio ≥ 1.0;
 *  - in process: a TpmEngine through inProcessTransport; goal ≥ 10× swtpm's
 *    TCP rate for simple commands;
 * for GetRandom, PCR_Read, PCR_Extend, CreatePrimary ECC and RSA-2048, Sign
 * ECDSA and RSA, Quote. Each command's group starts with swtpm, so the table's
 * ratio column is simulator / swtpm.
 *
 * And a fleet: 1,000 engines started in one process and then each quoted with
 * an ECC AK (test/support/fleet.ts): time per engine, and heap per idle
 * engine (heapUsed after a forced GC, before and after, / 1,000; goal < 200 KB).
 */
import { createHash } from 'node:crypto';
import { Tpm, type Entity } from '../src/client/index.js';
import { TpmEngine } from '../src/simulator/engine.js';
import { CreatePrimary, FlushContext, GetRandom, PCR_Extend, PCR_Read, Quote, Sign, Startup } from '../src/tpm/commands/index.js';
import { TPM_ALG, TPM_RH, TPM_ST, TPM_SU } from '../src/tpm/constants.js';
import { objectName } from '../src/tpm/names.js';
import { pcrSelection } from '../src/tpm/pcr.js';
import { isRc, TPM_RC } from '../src/tpm/rc.js';
import { eccAkTemplate, eccSrkTemplate, rsaAkTemplate, rsaSrkTemplate } from '../src/tpm/templates.js';
import { inProcessTransport, SwtpmTransport, type Transport } from '../src/tpm/transport/index.js';
import type { TPMT_PUBLIC } from '../src/tpm/types/index.js';
import { garbageCollector, quoteWithEccAk, startFleetMember, type FleetMember } from '../test/support/fleet.js';
import { startSimServer } from '../test/support/sim-server.js';
import { startSwtpm } from '../test/support/swtpm.js';
import { rate, type BenchRow } from './measure.js';

const EMPTY = new Uint8Array(0);
const NO_CREATION = { outsideInfo: EMPTY, creationPCR: [] };
const DIGEST = new Uint8Array(createHash('sha256').update('bench').digest());
const SEL = [pcrSelection(TPM_ALG.SHA256, [0, 1, 2, 3, 4, 5, 6, 7])];

interface Target {
  readonly name: string;
  open(): Promise<{ transport: Transport; close(): Promise<void> }>;
}

/** CreatePrimary with an empty sensitive; the caller flushes it. */
async function primary(tpm: Tpm, hierarchy: number, template: TPMT_PUBLIC): Promise<Entity> {
  const r = await tpm.run(CreatePrimary, { primaryHandle: hierarchy }, { inSensitive: { userAuth: EMPTY, data: EMPTY }, inPublic: template, ...NO_CREATION });
  return { handle: r.handles.objectHandle, name: objectName(r.params.outPublic) };
}

/** libtpms answers TPM_RC_RETRY now and then (first RSA use): send again, as a client must. */
async function again<T>(fn: () => Promise<T>): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await fn();
    } catch (e) {
      if (i < 5 && isRc(e, TPM_RC.RETRY)) continue;
      throw e;
    }
  }
}

const OPS = ['GetRandom(8)', 'PCR_Read(sha256 0-7)', 'PCR_Extend(sha256)', 'CreatePrimary ECC P-256', 'CreatePrimary RSA-2048', 'Sign ECDSA P-256', 'Sign RSASSA-2048', 'Quote ECC AK'] as const;

/** ops/s of every OPS entry on one target, in order; Sign and Quote keys are created once, as a client keeps them. */
async function measure(target: Target, ms: number): Promise<Map<string, number>> {
  const { transport, close } = await target.open();
  const tpm = new Tpm(transport);
  const out = new Map<string, number>();
  try {
    await tpm.run(Startup, {}, { startupType: TPM_SU.CLEAR }).catch((e: unknown) => {
      if (!isRc(e, TPM_RC.INITIALIZE)) throw e; // already started
    });
    const create = (template: TPMT_PUBLIC) => async () => {
      const h = await again(() => primary(tpm, TPM_RH.OWNER, template));
      await tpm.run(FlushContext, {}, { flushHandle: h.handle });
    };
    const nullTicket = { tag: TPM_ST.HASHCHECK, hierarchy: TPM_RH.NULL, digest: EMPTY };
    // Keys for Sign and Quote, made after the CreatePrimary rows (three object slots): an ECC AK, and unrestricted
    // signing keys of the AKs' algorithms and schemes (an AK, being restricted, signs only digests the TPM made).
    const keys: { eccAk?: Entity; ecc?: Entity; rsa?: Entity } = {};
    const cases: Record<(typeof OPS)[number], () => Promise<unknown>> = {
      'GetRandom(8)': () => tpm.run(GetRandom, {}, { bytesRequested: 8 }),
      'PCR_Read(sha256 0-7)': () => tpm.run(PCR_Read, {}, { pcrSelectionIn: SEL }),
      'PCR_Extend(sha256)': () => tpm.run(PCR_Extend, { pcrHandle: 16 }, { digests: [{ hashAlg: TPM_ALG.SHA256, digest: DIGEST }] }),
      'CreatePrimary ECC P-256': create(eccSrkTemplate()),
      'CreatePrimary RSA-2048': create(rsaSrkTemplate()),
      'Sign ECDSA P-256': () => tpm.run(Sign, { keyHandle: keys.ecc! }, { digest: DIGEST, inScheme: { scheme: TPM_ALG.NULL }, validation: nullTicket } as never),
      'Sign RSASSA-2048': () => tpm.run(Sign, { keyHandle: keys.rsa! }, { digest: DIGEST, inScheme: { scheme: TPM_ALG.NULL }, validation: nullTicket } as never),
      'Quote ECC AK': () => tpm.run(Quote, { signHandle: keys.eccAk! }, { qualifyingData: EMPTY, inScheme: { scheme: TPM_ALG.NULL }, PCRselect: SEL }),
    };
    for (const op of OPS) {
      if (op === 'Sign ECDSA P-256') {
        keys.eccAk = await again(() => primary(tpm, TPM_RH.ENDORSEMENT, eccAkTemplate()));
        keys.ecc = await again(() => primary(tpm, TPM_RH.OWNER, signingTemplate(eccAkTemplate())));
        keys.rsa = await again(() => primary(tpm, TPM_RH.OWNER, signingTemplate(rsaAkTemplate())));
      }
      // RSA key generation on swtpm takes a large part of a second: a longer budget so the mean covers several.
      const budget = op === 'CreatePrimary RSA-2048' ? Math.max(ms, 3000) : ms;
      try {
        out.set(op, await rate(() => again(cases[op]), budget));
      } catch (e) {
        console.error(`${target.name} ${op} skipped: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    for (const h of Object.values(keys)) await tpm.run(FlushContext, {}, { flushHandle: h.handle });
  } finally {
    await tpm.close().catch(() => undefined);
    await close();
  }
  return out;
}

/** The AK template made an unrestricted signing key (same algorithm and scheme). */
function signingTemplate(t: TPMT_PUBLIC): TPMT_PUBLIC {
  return { ...t, objectAttributes: { ...t.objectAttributes, restricted: false } } as TPMT_PUBLIC;
}

/** Simulator vs swtpm rows, grouped per command: swtpm TCP, simulator TCP, simulator in process. */
export async function benchSimulatorVsSwtpm(ms = 1000): Promise<BenchRow[]> {
  const targets: Target[] = [
    {
      name: 'swtpm TCP',
      open: async () => {
        const sw = await startSwtpm();
        const transport = new SwtpmTransport({ port: sw.port, ctrlPort: sw.ctrlPort });
        return { transport, close: () => sw.stop() };
      },
    },
    {
      name: 'simulator TCP (tpm serve)',
      open: async () => {
        const sim = await startSimServer({ protocol: 'swtpm' });
        const transport = new SwtpmTransport({ port: sim.port, ctrlPort: sim.ctrlPort });
        return { transport, close: () => sim.stop() };
      },
    },
    {
      name: 'simulator in process',
      open: () => Promise.resolve({ transport: inProcessTransport(new TpmEngine()), close: () => Promise.resolve() }),
    },
  ];
  const results = new Map<string, Map<string, number>>();
  for (const t of targets) {
    try {
      results.set(t.name, await measure(t, ms));
    } catch (e) {
      console.error(`${t.name} skipped: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  const rows: BenchRow[] = [];
  for (const op of OPS) {
    for (const t of targets) {
      const v = results.get(t.name)?.get(op);
      if (v !== undefined) rows.push({ group: `${op}, ops/s`, name: t.name, opsPerSec: v });
    }
  }
  return rows;
}

export interface FleetBench {
  readonly engines: number;
  /** Milliseconds per engine: new TpmEngine + Startup. */
  readonly startMs: number;
  /** Milliseconds per engine: CreatePrimary ECC AK + Quote + FlushContext. */
  readonly quoteMs: number;
  /** Heap bytes per started, idle engine. */
  readonly heapPerEngine: number;
  /** Heap bytes per engine after each has quoted once (its primary-derivation cache holds the AK). */
  readonly heapPerQuotedEngine: number;
}

/** 1,000 engines in one process: time and memory per engine. */
export async function benchFleet(engines = 1000): Promise<FleetBench> {
  const gc = garbageCollector();
  gc();
  const before = process.memoryUsage().heapUsed;
  let t = performance.now();
  const fleet: FleetMember[] = [];
  for (let i = 0; i < engines; i++) fleet.push(await startFleetMember(i, 'bench'));
  const startMs = (performance.now() - t) / engines;
  gc();
  const idle = process.memoryUsage().heapUsed;
  t = performance.now();
  for (const m of fleet) await quoteWithEccAk(m, new Uint8Array(16));
  const quoteMs = (performance.now() - t) / engines;
  gc();
  const quoted = process.memoryUsage().heapUsed;
  const result = { engines, startMs, quoteMs, heapPerEngine: (idle - before) / engines, heapPerQuotedEngine: (quoted - before) / engines };
  // Keep the fleet alive until measured.
  await Promise.all(fleet.map((m) => m.transport.close()));
  return result;
}

export function fleetRows(f: FleetBench): BenchRow[] {
  return [
    { group: 'simulator fleet, engines/s', name: `new TpmEngine + Startup (${f.engines} engines)`, opsPerSec: 1000 / f.startMs },
    { group: 'simulator fleet, engines/s', name: 'CreatePrimary ECC AK + Quote + Flush per engine', opsPerSec: 1000 / f.quoteMs },
  ];
}

export function fleetSummary(f: FleetBench): string {
  const kb = (b: number): string => `${(b / 1024).toFixed(1)} KB`;
  return [
    `simulator fleet: ${f.engines} engines in one process`,
    `  time per engine: ${f.startMs.toFixed(2)} ms to create and start, ${f.quoteMs.toFixed(2)} ms for an ECC AK and a verified Quote`,
    `  heap per idle engine: ${kb(f.heapPerEngine)} (goal < 200 KB${f.heapPerEngine < 200 * 1024 ? ', met' : ', NOT met'}); after one quote each: ${kb(f.heapPerQuotedEngine)}`,
  ].join('\n');
}
