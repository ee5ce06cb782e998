/**
 * A small side-by-side benchmark runner: each case runs for a fixed wall-clock
 * budget after a warm-up, and the table shows operations per second and the
 * ratio to the first row of its group (machines are noisy; ratios within one
 * run are what to compare).
 */
import { readFileSync } from 'node:fs';

export interface BenchRow {
  readonly group: string;
  readonly name: string;
  readonly opsPerSec: number;
}

/** Runs `fn` repeatedly for about `ms` milliseconds and returns operations per second. */
export async function rate(fn: () => unknown | Promise<unknown>, ms = 1000): Promise<number> {
  return (await rateAndCpu(fn, ms)).opsPerSec;
}

/** CPU time in µs, user and kernel apart: a server's kernel time is mostly the TCP round trip itself. */
export interface CpuTime {
  readonly user: number;
  readonly system: number;
}

/** CPU µs per operation over a timed run, user and kernel apart. */
export interface CpuPerOp {
  readonly total: number;
  readonly user: number;
}

/**
 * As rate(), and with `cpu` (a CPU clock, e.g. a server process's) the CPU
 * time per operation over the timed part: unlike wall time, it stays
 * meaningful on a machine shared with other work.
 */
export async function rateAndCpu(
  fn: () => unknown | Promise<unknown>,
  ms = 1000,
  cpu?: () => CpuTime | undefined,
): Promise<{ opsPerSec: number; cpuPerOp: CpuPerOp | undefined }> {
  const warm = performance.now() + Math.min(200, ms / 5);
  while (performance.now() < warm) await fn();
  let n = 0;
  const cpu0 = cpu?.();
  const start = performance.now();
  const end = start + ms;
  let now = start;
  while (now < end) {
    // Batches keep the clock reads out of the measurement for fast operations.
    for (let i = 0; i < 16; i++) await fn();
    n += 16;
    now = performance.now();
  }
  const cpu1 = cpu0 === undefined ? undefined : cpu?.();
  const perOp =
    cpu0 === undefined || cpu1 === undefined
      ? undefined
      : { total: (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / n, user: (cpu1.user - cpu0.user) / n };
  return { opsPerSec: n / ((now - start) / 1000), cpuPerOp: perOp };
}

/**
 * CPU time (µs) of a process's main thread, from Linux's
 * /proc/PID/task/PID/stat (clock ticks, 100 per second); undefined elsewhere.
 */
export function mainThreadCpu(pid: number): CpuTime | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8');
    // After "pid (comm) ": state is field 3, utime 14 and stime 15.
    const rest = fields.slice(fields.lastIndexOf(')') + 2).split(' ');
    return { user: Number(rest[11]) * 10_000, system: Number(rest[12]) * 10_000 };
  } catch {
    return undefined;
  }
}

export function printTable(rows: readonly BenchRow[]): void {
  const first = new Map<string, number>();
  for (const r of rows) if (!first.has(r.group)) first.set(r.group, r.opsPerSec);
  const lines = rows.map((r) => [r.group, r.name, Math.round(r.opsPerSec).toLocaleString('en-US'), `${(r.opsPerSec / first.get(r.group)!).toFixed(2)}×`]);
  const head = ['group', 'case', 'ops/s', 'vs first of group'];
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (cells: string[]) => `| ${cells.map((c, i) => (i >= 2 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(' | ')} |`;
  console.log(fmt(head));
  console.log(`|${widths.map((w, i) => (i >= 2 ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`);
  for (const l of lines) console.log(fmt(l));
}
