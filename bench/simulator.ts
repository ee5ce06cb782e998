/**
 * The software TPM next to swtpm (issue 6 acceptance), the same commands from
 * the same client (src/client), in one run:
 *  - over TCP: swtpm (libtpms, its own process) and `trustroot tpm serve
 *    --protocol swtpm` (its own process, through test/support/sim-server.ts);
 *    goal ratio ≥ 1.0;
 *  - in process: a TpmEngine through inProcessTransport; goal ≥ 10× swtpm's
 *    TCP rate for simple commands;
 * for GetRandom, PCR_Read, PCR_Extend, CreatePrimary ECC and RSA-2048, Sign
 * ECDSA and RSA, Quote; and (issue 7) command audit (SetCommandCodeAuditStatus,
 * an audited command, GetCommandAuditDigest), session audit (a command in an
 * HMAC session with the audit attribute, GetSessionAuditDigest) and
 * duplication (Duplicate of an ECC key with its PolicyCommandCode session,
 * then Import under another parent, an RSA SRK). Each command's group starts
 * with swtpm, so the table's ratio column is simulator / swtpm.
 *
 * And a fleet: 1,000 engines started in one process and then each quoted with
 * an ECC AK (test/support/fleet.ts): time per engine, and heap per idle
 * engine (heapUsed after a forced GC, before and after, / 1,000; goal < 200 KB).
 *
 * And a reference over TCP: a Node server answering canned responses (bench/echo-server.ts), for the simple
 * commands, the same client: the most any Node server (so `tpm serve`) can reach on this machine.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { duplicateKey, duplicationPolicy, getCommandAuditDigest, getSessionAuditDigest, importDuplicate, Tpm, type AuthSession, type Entity } from '../src/client/index.js';
import { TpmEngine } from '../src/simulator/engine.js';
import { Create, CreatePrimary, FlushContext, GetRandom, Load, PCR_Extend, PCR_Read, Quote, SetCommandCodeAuditStatus, Sign, Startup } from '../src/tpm/commands/index.js';
import { TPM_ALG, TPM_ECC, TPM_RH, TPM_ST, TPM_SU } from '../src/tpm/constants.js';
import { objectName } from '../src/tpm/names.js';
import { pcrSelection } from '../src/tpm/pcr.js';
import { isRc, TPM_RC } from '../src/tpm/rc.js';
import { eccAkTemplate, eccSrkTemplate, rsaAkTemplate, rsaSrkTemplate } from '../src/tpm/templates.js';
import { inProcessTransport, SwtpmTransport, type Transport } from '../src/tpm/transport/index.js';
import { TPMA_OBJECT, type TPMT_PUBLIC } from '../src/tpm/types/index.js';
import { garbageCollector, quoteWithEccAk, startFleetMember, type FleetMember } from '../test/support/fleet.js';
import { startSimServer } from '../test/support/sim-server.js';
import { startSwtpm } from '../test/support/swtpm.js';
import { mainThreadCpu, rateAndCpu, type BenchRow, type CpuPerOp, type CpuTime } from './measure.js';

const EMPTY = new Uint8Array(0);
const NO_CREATION = { outsideInfo: EMPTY, creationPCR: [] };
const DIGEST = new Uint8Array(createHash('sha256').update('bench').digest());
const SEL = [pcrSelection(TPM_ALG.SHA256, [0, 1, 2, 3, 4, 5, 6, 7])];

interface Target {
  readonly name: string;
  /** The rows it runs (default all of OPS). */
  readonly ops?: readonly Op[];
  /** `cpu`: the CPU clock that shows what a command costs the TPM's side (see benchSimulatorVsSwtpm). */
  open(): Promise<{ transport: Transport; close(): Promise<void>; cpu(): CpuTime | undefined }>;
}

/** One row's outcome on one target. */
interface Measured {
  readonly opsPerSec: number;
  readonly cpuPerOp: CpuPerOp | undefined;
}

/** CreatePrimary with an empty sensitive; the caller flushes it. */
async function primary(tpm: Tpm, hierarchy: number, template: TPMT_PUBLIC): Promise<Entity> {
  return (await primaryWithPublic(tpm, hierarchy, template)).entity;
}

async function primaryWithPublic(tpm: Tpm, hierarchy: number, template: TPMT_PUBLIC): Promise<{ entity: Entity; publicArea: TPMT_PUBLIC }> {
  const r = await tpm.run(CreatePrimary, { primaryHandle: hierarchy }, { inSensitive: { userAuth: EMPTY, data: EMPTY }, inPublic: template, ...NO_CREATION });
  return { entity: { handle: r.handles.objectHandle, name: objectName(r.params.outPublic) }, publicArea: r.params.outPublic };
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

const OPS = [
  'GetRandom(8)',
  'PCR_Read(sha256 0-7)',
  'PCR_Extend(sha256)',
  'CreatePrimary ECC P-256',
  'CreatePrimary RSA-2048',
  'Sign ECDSA P-256',
  'Sign RSASSA-2048',
  'Quote ECC AK',
  'SetCommandCodeAuditStatus (PCR_Read in, out)',
  'GetRandom(8), command-audited',
  'GetCommandAuditDigest ECC AK',
  'GetRandom(8), audit session',
  'GetSessionAuditDigest ECC AK',
  'Duplicate + Import (ECC key, RSA parent)',
] as const;
type Op = (typeof OPS)[number];
/** The simple commands: warmed up before the rows, and all the Node echo server answers. */
const SIMPLE: readonly Op[] = ['GetRandom(8)', 'PCR_Read(sha256 0-7)', 'PCR_Extend(sha256)'];

/** An ECDSA P-256 signing key that may be duplicated under PolicyCommandCode(Duplicate): fixedTPM and fixedParent clear. */
function duplicableKey(): TPMT_PUBLIC {
  return {
    type: TPM_ALG.ECC,
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: TPMA_OBJECT.of({ sensitiveDataOrigin: true, userWithAuth: true, noDA: true, sign: true }),
    authPolicy: duplicationPolicy(TPM_ALG.SHA256),
    parameters: { symmetric: { algorithm: TPM_ALG.NULL }, scheme: { scheme: TPM_ALG.ECDSA, details: { hashAlg: TPM_ALG.SHA256 } }, curveID: TPM_ECC.NIST_P256, kdf: { scheme: TPM_ALG.NULL } },
    unique: { x: EMPTY, y: EMPTY },
  } as TPMT_PUBLIC;
}

/**
 * ops/s of every OPS entry on one target, in order; keys and sessions are made once, before the rows that use
 * them, as a client keeps them, and flushed when no longer needed (three object slots, as libtpms).
 */
async function measure(target: Target, ms: number): Promise<Map<string, Measured>> {
  const { transport, close, cpu } = await target.open();
  const tpm = new Tpm(transport);
  const out = new Map<string, Measured>();
  const flush = async (e: Entity | undefined): Promise<void> => {
    if (e !== undefined) await tpm.run(FlushContext, {}, { flushHandle: e.handle });
  };
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
    // The AK also signs the audit digests; the duplication rows need all three slots (parent, key, new parent).
    const keys: { eccAk?: Entity; ecc?: Entity; rsa?: Entity } = {};
    let auditSession: AuthSession | undefined;
    const dup: { parent?: Entity; key?: Entity; keyPublic?: TPMT_PUBLIC; newParent?: Entity; newParentPublic?: TPMT_PUBLIC } = {};
    let auditToggle = false;
    const cases: Record<Op, () => Promise<unknown>> = {
      'GetRandom(8)': () => tpm.run(GetRandom, {}, { bytesRequested: 8 }),
      'PCR_Read(sha256 0-7)': () => tpm.run(PCR_Read, {}, { pcrSelectionIn: SEL }),
      'PCR_Extend(sha256)': () => tpm.run(PCR_Extend, { pcrHandle: 16 }, { digests: [{ hashAlg: TPM_ALG.SHA256, digest: DIGEST }] }),
      'CreatePrimary ECC P-256': create(eccSrkTemplate()),
      'CreatePrimary RSA-2048': create(rsaSrkTemplate()),
      'Sign ECDSA P-256': () => tpm.run(Sign, { keyHandle: keys.ecc! }, { digest: DIGEST, inScheme: { scheme: TPM_ALG.NULL }, validation: nullTicket } as never),
      'Sign RSASSA-2048': () => tpm.run(Sign, { keyHandle: keys.rsa! }, { digest: DIGEST, inScheme: { scheme: TPM_ALG.NULL }, validation: nullTicket } as never),
      'Quote ECC AK': () => tpm.run(Quote, { signHandle: keys.eccAk! }, { qualifyingData: EMPTY, inScheme: { scheme: TPM_ALG.NULL }, PCRselect: SEL }),
      // A change of the audited list is a change of persistent state: the TPM saves it before answering.
      'SetCommandCodeAuditStatus (PCR_Read in, out)': () => {
        auditToggle = !auditToggle;
        const list = [PCR_Read.code];
        return tpm.run(SetCommandCodeAuditStatus, { auth: TPM_RH.OWNER }, { auditAlg: TPM_ALG.NULL, setList: auditToggle ? list : [], clearList: auditToggle ? [] : list });
      },
      'GetRandom(8), command-audited': () => tpm.run(GetRandom, {}, { bytesRequested: 8 }),
      // Signed by a key, the read also clears the digest (Part 3 §18.6).
      'GetCommandAuditDigest ECC AK': () => getCommandAuditDigest(tpm, keys.eccAk!, EMPTY),
      'GetRandom(8), audit session': () => tpm.run(GetRandom, {}, { bytesRequested: 8 }, { sessions: [auditSession!.use({ audit: true })] }),
      'GetSessionAuditDigest ECC AK': () => getSessionAuditDigest(tpm, keys.eccAk!, auditSession!, EMPTY),
      // StartAuthSession, PolicyCommandCode and Duplicate (the policy session ends with it), then Import.
      'Duplicate + Import (ECC key, RSA parent)': async () => {
        const blob = await duplicateKey(tpm, dup.key!, dup.keyPublic!, dup.newParent!);
        return importDuplicate(tpm, dup.newParent!, dup.newParentPublic!, blob);
      },
    };
    // Warm up as a server that has been running a while would be (V8 compiles the hot paths of `tpm serve` and of the
    // in-process engine during the first thousands of commands; swtpm has nothing to warm): half a budget of each simple command.
    for (const op of SIMPLE) await rateAndCpu(cases[op], ms / 2);
    for (const op of target.ops ?? OPS) {
      if (op === 'Sign ECDSA P-256') {
        keys.eccAk = await again(() => primary(tpm, TPM_RH.ENDORSEMENT, eccAkTemplate()));
        keys.ecc = await again(() => primary(tpm, TPM_RH.OWNER, signingTemplate(eccAkTemplate())));
        keys.rsa = await again(() => primary(tpm, TPM_RH.OWNER, signingTemplate(rsaAkTemplate())));
      } else if (op === 'SetCommandCodeAuditStatus (PCR_Read in, out)') {
        await flush(keys.ecc);
        await flush(keys.rsa);
        keys.ecc = keys.rsa = undefined;
        // The audit hash first, alone (Part 3 §21.2: with a hash given the lists are not looked at).
        await tpm.run(SetCommandCodeAuditStatus, { auth: TPM_RH.OWNER }, { auditAlg: TPM_ALG.SHA256, setList: [], clearList: [] });
      } else if (op === 'GetRandom(8), command-audited') {
        await tpm.run(SetCommandCodeAuditStatus, { auth: TPM_RH.OWNER }, { auditAlg: TPM_ALG.NULL, setList: [GetRandom.code], clearList: [PCR_Read.code] });
      } else if (op === 'GetRandom(8), audit session') {
        await tpm.run(SetCommandCodeAuditStatus, { auth: TPM_RH.OWNER }, { auditAlg: TPM_ALG.NULL, setList: [], clearList: [GetRandom.code] });
        auditSession = await tpm.startAuthSession({ type: 'hmac' });
      } else if (op === 'Duplicate + Import (ECC key, RSA parent)') {
        await auditSession?.flush();
        auditSession = undefined;
        await flush(keys.eccAk);
        keys.eccAk = undefined;
        dup.parent = await again(() => primary(tpm, TPM_RH.OWNER, eccSrkTemplate()));
        const c = await tpm.run(Create, { parentHandle: dup.parent }, { inSensitive: { userAuth: EMPTY, data: EMPTY }, inPublic: duplicableKey(), ...NO_CREATION });
        const l = await tpm.run(Load, { parentHandle: dup.parent }, { inPrivate: c.params.outPrivate, inPublic: c.params.outPublic });
        dup.key = { handle: l.handles.objectHandle, name: l.params.name };
        dup.keyPublic = c.params.outPublic;
        const np = await again(() => primaryWithPublic(tpm, TPM_RH.OWNER, rsaSrkTemplate()));
        dup.newParent = np.entity;
        dup.newParentPublic = np.publicArea;
      }
      // RSA key generation on swtpm takes a large part of a second: a longer budget so the mean covers several.
      const budget = op === 'CreatePrimary RSA-2048' ? Math.max(ms, 3000) : ms;
      try {
        out.set(op, await rateAndCpu(() => again(cases[op]), budget, cpu));
      } catch (e) {
        console.error(`${target.name} ${op} skipped: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    await auditSession?.flush();
    for (const h of [...Object.values(keys), dup.key, dup.newParent, dup.parent]) await flush(h);
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

/**
 * Simulator vs swtpm rows, grouped per command: swtpm TCP, simulator TCP,
 * simulator in process; and a CPU table. Wall-clock rates over TCP depend on
 * how soon each process gets a core, which a shared machine decides more than
 * the code does, so the CPU time per command is measured alongside: of the
 * server's main thread over TCP (swtpm's, and `tpm serve`'s, whose engine runs
 * there), and of this whole process in process (client and engine).
 */
export async function benchSimulatorVsSwtpm(ms = 1000): Promise<{ rows: BenchRow[]; cpu: string }> {
  const targets: Target[] = [
    {
      name: 'swtpm TCP',
      open: async () => {
        const sw = await startSwtpm();
        const transport = new SwtpmTransport({ port: sw.port, ctrlPort: sw.ctrlPort });
        return { transport, close: () => sw.stop(), cpu: () => mainThreadCpu(sw.pid) };
      },
    },
    {
      name: 'simulator TCP (tpm serve)',
      open: async () => {
        const sim = await startSimServer({ protocol: 'swtpm' });
        const transport = new SwtpmTransport({ port: sim.port, ctrlPort: sim.ctrlPort });
        return { transport, close: () => sim.stop(), cpu: () => mainThreadCpu(sim.pid) };
      },
    },
    {
      name: 'simulator in process',
      open: () =>
        Promise.resolve({
          transport: inProcessTransport(new TpmEngine()),
          close: () => Promise.resolve(),
          cpu: () => process.cpuUsage(),
        }),
    },
    {
      // The ceiling of any Node server here: the same client and transport, a server that answers canned bytes.
      name: 'Node echo server TCP',
      ops: SIMPLE,
      open: async () => {
        const echo = await startEchoServer();
        const transport = new SwtpmTransport({ port: echo.port, ctrlPort: echo.port + 1 });
        return { transport, close: () => echo.stop(), cpu: () => mainThreadCpu(echo.pid) };
      },
    },
  ];
  const results = new Map<string, Map<string, Measured>>();
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
      if (v !== undefined) rows.push({ group: `${op}, ops/s`, name: t.name, opsPerSec: v.opsPerSec });
    }
  }
  return { rows, cpu: cpuTable(targets.map((t) => t.name), results) };
}

/** bench/echo-server.ts as a child process (its PID for the CPU clock), stopped by that PID. */
async function startEchoServer(): Promise<{ port: number; pid: number; stop(): Promise<void> }> {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'bench', 'echo-server.ts')], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  const port = await new Promise<number>((res, rej) => {
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /serving 127\.0\.0\.1:(\d+)/.exec(out);
      if (m !== null) res(Number(m[1]));
    });
    void exited.then(() => rej(new Error(`echo server exited: ${out}`)));
  });
  return {
    port,
    pid: child.pid!,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGTERM');
      await exited;
    },
  };
}

/**
 * µs of CPU per command for each target, with the user-space part in brackets, and swtpm's server CPU over
 * `tpm serve`'s (≥ 1: ours costs less); then, for the simple commands, where the TCP time goes.
 */
function cpuTable(names: readonly string[], results: ReadonlyMap<string, ReadonlyMap<string, Measured>>): string {
  const [sw, ours, inProcess, echo] = names;
  const at = (name: string | undefined, op: string): CpuPerOp | undefined => (name === undefined ? undefined : results.get(name)?.get(op)?.cpuPerOp);
  const fmt = (v: CpuPerOp | undefined): string => (v === undefined ? '–' : `${v.total.toFixed(1)} (${v.user.toFixed(1)})`);
  const head = ['command', 'swtpm server µs (user)', 'tpm serve server µs (user)', 'swtpm / tpm serve', 'in process µs (user), client + engine', 'Node echo server µs (user)'];
  const lines = OPS.map((op) => {
    const a = at(sw, op);
    const b = at(ours, op);
    return [op, fmt(a), fmt(b), a !== undefined && b !== undefined && b.total > 0 ? `${(a.total / b.total).toFixed(2)}×` : '–', fmt(at(inProcess, op)), fmt(at(echo, op))];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const row = (cells: readonly string[]): string => `| ${cells.map((c, i) => (i > 0 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(' | ')} |`;
  const out = [
    "CPU per command, µs, user-space part in brackets (over TCP the server process's main thread; in process this whole process; Linux clocks in 10 ms ticks):",
    row(head),
    `|${widths.map((w, i) => (i > 0 ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`,
    ...lines.map(row),
  ];
  // Each server makes the same system calls per command (a poll, a read, a write), so their kernel time is
  // alike; what a server adds is user time. The echo server does no TPM work: its user time is what Node's
  // event loop and sockets cost per command, the least any Node server spends.
  const mean = (name: string | undefined, pick: (c: CpuPerOp) => number): number | undefined => {
    const v = SIMPLE.map((op) => at(name, op)).filter((c): c is CpuPerOp => c !== undefined);
    return v.length === SIMPLE.length ? v.reduce((n, c) => n + pick(c), 0) / v.length : undefined;
  };
  const swUser = mean(sw, (c) => c.user);
  const echoUser = mean(echo, (c) => c.user);
  const oursUser = mean(ours, (c) => c.user);
  const kernel = [sw, ours, echo].map((n) => mean(n, (c) => c.total - c.user));
  if (swUser !== undefined && echoUser !== undefined && oursUser !== undefined && kernel.every((k) => k !== undefined)) {
    out.push(
      '',
      `Simple commands over TCP, mean per command: kernel time swtpm ${kernel[0]!.toFixed(1)} µs, tpm serve ${kernel[1]!.toFixed(1)} µs, ` +
        `Node echo server ${kernel[2]!.toFixed(1)} µs; user time swtpm ${swUser.toFixed(1)} µs, tpm serve ${oursUser.toFixed(1)} µs, ` +
        `Node echo server (no TPM work) ${echoUser.toFixed(1)} µs — the floor of any Node server, against swtpm's whole command.`,
    );
  }
  return out.join('\n');
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
