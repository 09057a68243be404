// Per-container CPU usage when containers share one sandbox process (S13), and the
// usage_nano_cores rate the kubelet wants, from two cumulative samples.
//
// S13: under runsc every container of a pod runs in the one sandbox process and its
// one cgroup, so the cgroup's CPU time is the pod's and the sandbox kernel's own
// per-container accounting says how to split it:
//   container = in-sandbox(container) × cgroup ÷ Σ in-sandbox
// in floating point (the product of two nanosecond counters overflows 64 bits after
// a few seconds of CPU). No containers listed → 0; no cgroup, or cgroup usage 0 → the
// in-sandbox figure alone; in-sandbox usage all 0 → the cgroup usage split equally.
// Where each container has its own cgroup (runc/crun) its own cgroup is the answer
// and this module is not involved.
//
// Note: the installed runsc (Debian 0.0~20221219) already applies this split itself in
// `runsc events --stats <id>` (its binary carries the seed's populateStats), so the
// cpu.usage.total it prints per container is the scaled figure: use it as it is. This
// function is for raw in-sandbox figures only (the per-container usage map, before
// any scaling); feeding it runsc's scaled totals would scale twice.

import { InvalidArgumentError } from '../../errors.js';

/** Nanoseconds; bigint is accepted so that counters near 2^64 can be passed as read. */
export type Nanoseconds = number | bigint;

export interface ProportionalCpuInput {
  containerId: string;
  /** Cumulative in-sandbox CPU time per running container of the sandbox. */
  inSandboxUsageNs: ReadonlyMap<string, Nanoseconds> | Readonly<Record<string, Nanoseconds>>;
  /** Cumulative CPU time of the sandbox cgroup; undefined when there is no cgroup or it cannot be read. */
  cgroupUsageNs?: Nanoseconds | undefined;
}

/**
 * S13: the container's share of the sandbox's CPU time, in nanoseconds (a float
 * truncated to an integer; above 2^53 it is approximate, as any float is).
 */
export function proportionalCpuUsageNs(input: ProportionalCpuInput): number {
  const usage = toEntries(input.inSandboxUsageNs);
  // S13: no containers listed → 0.
  if (usage.length === 0) return 0;
  let all = 0;
  let mine: number | undefined;
  for (const [id, ns] of usage) {
    all += ns;
    if (id === input.containerId) mine = ns;
  }
  const cgroup = input.cgroupUsageNs === undefined ? undefined : toFloat(input.cgroupUsageNs, 'cgroup');
  // S13: no cgroup or no cgroup usage → the sandbox kernel's own figure.
  if (cgroup === undefined || cgroup === 0) return Math.trunc(mine ?? 0);
  // A container the sandbox does not list (not running) gets no share: the listed ones
  // add up to the cgroup's usage.
  if (mine === undefined) return 0;
  // S13: the sandbox reports nothing → split the cgroup's usage equally.
  if (all === 0) return Math.trunc(cgroup / usage.length);
  // Floats on purpose: mine × cgroup overflows 64-bit integers (S13).
  return Math.trunc(mine * (cgroup / all));
}

function toEntries(usage: ReadonlyMap<string, Nanoseconds> | Readonly<Record<string, Nanoseconds>>): Array<[string, number]> {
  const entries: Array<[string, Nanoseconds]> = isMap(usage) ? [...usage] : Object.entries(usage);
  return entries.map(([id, ns]) => [id, toFloat(ns, `container "${id}"`)]);
}

/** `instanceof Map` alone does not narrow a ReadonlyMap out of the union (ReadonlyMap is only an interface). */
function isMap(usage: ReadonlyMap<string, Nanoseconds> | Readonly<Record<string, Nanoseconds>>): usage is ReadonlyMap<string, Nanoseconds> {
  return usage instanceof Map;
}

function toFloat(ns: Nanoseconds, what: string): number {
  const n = typeof ns === 'bigint' ? Number(ns) : ns;
  if (!Number.isFinite(n) || n < 0) {
    throw new InvalidArgumentError(`computing cpu share: cpu usage of ${what} is ${String(ns)}, not a count of nanoseconds`);
  }
  return n;
}

function toBigint(ns: Nanoseconds, what: string): bigint {
  if (typeof ns === 'bigint') {
    if (ns < 0n) throw new InvalidArgumentError(`sampling cpu usage: ${what} is ${ns}, not a count of nanoseconds`);
    return ns;
  }
  return BigInt(Math.trunc(toFloat(ns, what)));
}

interface CpuSample {
  // Kept as bigint so that differences of two ~1e18 clocks stay exact.
  timestampNs: bigint;
  cumulativeNs: bigint;
  /** The last rate computed from this sample and its predecessor. */
  rate: number | undefined;
}

/**
 * usage_nano_cores from two samples of a cumulative counter (CRI CpuUsage): the
 * kubelet polls, and each poll reads the cumulative figure; the rate is the
 * difference over the previous poll. Keyed by container (or pod) id.
 */
export class CpuRateSampler {
  private readonly samples = new Map<string, CpuSample>();

  /**
   * Records a sample and returns nano-cores since the previous one, or undefined on
   * the first sample and after the counter went backwards (a restarted container).
   * Two samples with the same timestamp return the previous rate unchanged, so two
   * callers polling at once (kubelet and crictl) do not see a rate of nothing.
   */
  sample(key: string, timestampNs: Nanoseconds, cumulativeNs: Nanoseconds): number | undefined {
    const t = toBigint(timestampNs, `timestamp of "${key}"`);
    const c = toBigint(cumulativeNs, `"${key}"`);
    const prev = this.samples.get(key);
    if (prev !== undefined && t <= prev.timestampNs) return prev.rate;
    let rate: number | undefined;
    if (prev !== undefined && c >= prev.cumulativeNs) {
      // nano-cores = CPU ns used per wall-clock second = Δcpu ÷ Δt × 1e9.
      rate = Math.trunc((Number(c - prev.cumulativeNs) / Number(t - prev.timestampNs)) * 1e9);
    }
    this.samples.set(key, { timestampNs: t, cumulativeNs: c, rate });
    return rate;
  }

  forget(key: string): void {
    this.samples.delete(key);
  }

  /** Drops the samples of every key not in `alive` (containers removed meanwhile). */
  retain(alive: Iterable<string>): void {
    const keep = new Set(alive);
    for (const key of this.samples.keys()) if (!keep.has(key)) this.samples.delete(key);
  }

  get size(): number {
    return this.samples.size;
  }
}
