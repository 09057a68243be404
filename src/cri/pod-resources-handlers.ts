// UpdatePodSandboxResources, and the applied figures in verbose PodSandboxStatus info.
// Requests are validated here: negative CPU/memory figures and malformed cpusets are
// INVALID_ARGUMENT naming the field; the sandbox layer trusts what it gets.
import { InvalidArgumentError } from '../errors.js';
import type { PodCriResources, PodResourcesUpdate, PodResourcesUpdater } from '../sandbox/resources/pod-resources.js';
import type { SandboxRecord } from '../sandbox/pod/sandbox.js';
import type { LinuxContainerResources } from '../types/cri/runtime/v1/LinuxContainerResources.js';
import type { UpdatePodSandboxResourcesRequest } from '../types/cri/runtime/v1/UpdatePodSandboxResourcesRequest.js';
import type { HandlerSet, UnaryHandler } from './handler-types.js';

const INT_FIELDS = ['cpu_period', 'cpu_quota', 'cpu_shares', 'memory_limit_in_bytes'] as const;
/** The kernel's cpuset list syntax: "0-3,5,7-8". */
const CPUSET_RE = /^\d+(-\d+)?(,\d+(-\d+)?)*$/;

function requireId(field: string, v: unknown): string {
  if (typeof v !== 'string' || v === '') throw new InvalidArgumentError(`${field} is required`);
  if (v.includes('/') || v.includes('..') || v.includes('\0')) throw new InvalidArgumentError(`${field} "${v}" must not contain "/", ".." or NUL`);
  return v;
}

export function parsePodResources(field: string, r: LinuxContainerResources | null | undefined): PodCriResources | undefined {
  if (!r) return undefined;
  const out: PodCriResources = {};
  for (const k of INT_FIELDS) {
    const raw = r[k] ?? 0;
    const v = Number(raw);
    if (!Number.isSafeInteger(v) || v < 0) throw new InvalidArgumentError(`${field}.${k} ${JSON.stringify(raw)} must be a non-negative integer`);
    out[k] = v;
  }
  for (const k of ['cpuset_cpus', 'cpuset_mems'] as const) {
    const v = String(r[k] ?? '');
    if (v !== '' && !CPUSET_RE.test(v)) throw new InvalidArgumentError(`${field}.${k} ${JSON.stringify(v)} is no cpuset list (like "0-3,5")`);
    if (v !== '') out[k] = v;
  }
  // Hugepages, unified and swap have no place on the pod cgroup here: refuse, never ignore.
  if ((r.hugepage_limits ?? []).length > 0) throw new InvalidArgumentError(`${field}.hugepage_limits is not supported on the pod cgroup`);
  if (Object.keys(r.unified ?? {}).length > 0) throw new InvalidArgumentError(`${field}.unified is not supported on the pod cgroup`);
  if (Number(r.memory_swap_limit_in_bytes ?? 0) !== 0) throw new InvalidArgumentError(`${field}.memory_swap_limit_in_bytes is not supported on the pod cgroup`);
  return out;
}

export function parseUpdatePodSandboxResources(req: UpdatePodSandboxResourcesRequest): { podId: string; update: PodResourcesUpdate } {
  const podId = requireId('pod_sandbox_id', req.pod_sandbox_id);
  return { podId, update: { resources: parsePodResources('resources', req.resources), overhead: parsePodResources('overhead', req.overhead) } };
}

export interface PodResourcesHandlersOptions {
  updater: PodResourcesUpdater;
  /** The PodSandboxStatus handler of sandbox-handlers.ts: its verbose info gains `podResources`. */
  podSandboxStatus: UnaryHandler<'PodSandboxStatus'>;
  /** Resolves a pod for the status decoration (PodManager.get). */
  pod: (idOrPrefix: string) => SandboxRecord;
}

export function podResourcesHandlers(opts: PodResourcesHandlersOptions): HandlerSet {
  return {
    unary: {
      async UpdatePodSandboxResources(req) {
        const { podId, update } = parseUpdatePodSandboxResources(req);
        await opts.updater.update(podId, update);
        return {};
      },
      async PodSandboxStatus(req, ctx) {
        const res = await opts.podSandboxStatus(req, ctx);
        const info = res.info;
        if (!req.verbose || info?.info === undefined) return res;
        const applied = await opts.updater.current(opts.pod(String(req.pod_sandbox_id)));
        const parsed = JSON.parse(info.info) as Record<string, unknown>;
        parsed.podResources = applied ?? null;
        return { ...res, info: { ...info, info: JSON.stringify(parsed) } };
      },
    },
  };
}
