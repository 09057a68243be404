// Resources of an app container's spec: LinuxContainerResources → OCI linux.resources
// and the process's oom_score_adj (clamped as containerd's restrict_oom_score_adj).
import { InvalidArgumentError } from '../errors.js';
import type { CriContainerResources, Int64 } from './container-config.js';
import type { LinuxResources } from './spec-common.js';

export const OOM_SCORE_ADJ_MIN = -1000;
export const OOM_SCORE_ADJ_MAX = 1000;

/** An int64 as proto-loader gives it (string or number); "" and absent are 0. */
export function toInt(v: Int64 | undefined, field: string): number {
  if (v === undefined || v === '') return 0;
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(`${field}: ${JSON.stringify(v)} is not an integer`);
  return n;
}

function nonNegative(v: Int64 | undefined, field: string): number {
  const n = toInt(v, field);
  if (n < 0) throw new InvalidArgumentError(`${field}: ${n} is negative`);
  return n;
}

const CPUSET_RE = /^\d+(-\d+)?(,\d+(-\d+)?)*$/;
const PAGE_SIZE_RE = /^\d+(KB|MB|GB|TB|PB)$/;

/** LinuxContainerResources → OCI linux.resources (0 and "" mean unset, as in containerd). */
export function buildResources(r: CriContainerResources | undefined, pidsLimit?: number): LinuxResources {
  const out: LinuxResources = {};
  if (pidsLimit !== undefined) {
    if (!Number.isSafeInteger(pidsLimit) || pidsLimit < 0) throw new InvalidArgumentError(`pids limit: ${pidsLimit} is negative or not an integer`);
    if (pidsLimit > 0) out.pids = { limit: pidsLimit };
  }
  if (!r) return out;
  const f = 'linux.resources.';
  const cpu: NonNullable<LinuxResources['cpu']> = {};
  const period = nonNegative(r.cpu_period, `${f}cpu_period`);
  const quota = nonNegative(r.cpu_quota, `${f}cpu_quota`);
  const shares = nonNegative(r.cpu_shares, `${f}cpu_shares`);
  if (period !== 0) cpu.period = period;
  if (quota !== 0) cpu.quota = quota;
  if (shares !== 0) cpu.shares = shares;
  for (const [k, key] of [
    ['cpuset_cpus', 'cpus'],
    ['cpuset_mems', 'mems'],
  ] as const) {
    const v = (r[k] ?? '').trim();
    if (v === '') continue;
    if (!CPUSET_RE.test(v)) throw new InvalidArgumentError(`${f}${k}: ${JSON.stringify(v)} is not a cpu list (e.g. "0-2,4")`);
    cpu[key] = v;
  }
  if (Object.keys(cpu).length > 0) out.cpu = cpu;
  const limit = nonNegative(r.memory_limit_in_bytes, `${f}memory_limit_in_bytes`);
  const swap = toInt(r.memory_swap_limit_in_bytes, `${f}memory_swap_limit_in_bytes`);
  // -1 is the cgroup's "unlimited" for swap; any other negative is a mistake.
  if (swap < -1) throw new InvalidArgumentError(`${f}memory_swap_limit_in_bytes: ${swap} is negative`);
  if (limit !== 0 || swap !== 0) {
    out.memory = {};
    if (limit !== 0) out.memory.limit = limit;
    if (swap !== 0) out.memory.swap = swap;
  }
  for (const [i, h] of (r.hugepage_limits ?? []).entries()) {
    if (!PAGE_SIZE_RE.test(h.page_size)) {
      throw new InvalidArgumentError(`${f}hugepage_limits[${i}].page_size: ${JSON.stringify(h.page_size)} is not a page size (e.g. "2MB")`);
    }
    (out.hugepageLimits ??= []).push({ pageSize: h.page_size, limit: nonNegative(h.limit, `${f}hugepage_limits[${i}].limit`) });
  }
  const unified = r.unified ?? {};
  for (const [k, v] of Object.entries(unified)) {
    if (!/^[a-z_]+\.[a-z0-9_.]+$/.test(k) || k.includes('..')) throw new InvalidArgumentError(`${f}unified: ${JSON.stringify(k)} is not a cgroup v2 file name`);
    if (/[\n\0]/.test(v)) throw new InvalidArgumentError(`${f}unified["${k}"]: the value holds a newline or NUL`);
  }
  if (Object.keys(unified).length > 0) out.unified = { ...unified };
  return out;
}

/** The process's oom_score_adj: in [-1000, 1000], raised to `min` when given. */
export function oomScore(v: Int64 | undefined, min: number | undefined): number {
  const n = toInt(v, 'linux.resources.oom_score_adj');
  if (n < OOM_SCORE_ADJ_MIN || n > OOM_SCORE_ADJ_MAX) {
    throw new InvalidArgumentError(`linux.resources.oom_score_adj: ${n} is outside [${OOM_SCORE_ADJ_MIN}, ${OOM_SCORE_ADJ_MAX}]`);
  }
  return min !== undefined && n < min ? min : n;
}
