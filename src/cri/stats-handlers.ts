// CRI stats RPCs: ContainerStats, ListContainerStats, StreamContainerStats,
// PodSandboxStats, ListPodSandboxStats, StreamPodSandboxStats. Filters are validated
// here; the figures come from the sandbox layer's StatsCollector (S13) and are put in
// the proto's shape (UInt64Value wrappers, int64 as decimal strings).
import { InvalidArgumentError } from '../errors.js';
import type { ContainerStatsSnapshot, CpuFigures, LayerFigures, MemoryFigures, PodStatsSnapshot, StatsCollector } from '../sandbox/stats/stats-collector.js';
import type { ContainerStats } from '../types/cri/runtime/v1/ContainerStats.js';
import type { ContainerStatsFilter } from '../types/cri/runtime/v1/ContainerStatsFilter.js';
import type { CpuUsage } from '../types/cri/runtime/v1/CpuUsage.js';
import type { FilesystemUsage } from '../types/cri/runtime/v1/FilesystemUsage.js';
import type { MemoryUsage } from '../types/cri/runtime/v1/MemoryUsage.js';
import type { NetworkInterfaceUsage } from '../types/cri/runtime/v1/NetworkInterfaceUsage.js';
import type { PodSandboxStats } from '../types/cri/runtime/v1/PodSandboxStats.js';
import type { PodSandboxStatsFilter } from '../types/cri/runtime/v1/PodSandboxStatsFilter.js';
import type { UInt64Value } from '../types/cri/runtime/v1/UInt64Value.js';
import type { HandlerSet } from './handler-types.js';

function requireId(field: string, v: unknown): string {
  if (typeof v !== 'string' || v === '') throw new InvalidArgumentError(`${field} is required`);
  if (v.includes('/') || v.includes('..') || v.includes('\0')) throw new InvalidArgumentError(`${field} "${v}" must not contain "/", ".." or NUL`);
  return v;
}

function labels(field: string, v: unknown): Record<string, string> | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object') throw new InvalidArgumentError(`${field} must be a map of strings`);
  const out = { ...(v as Record<string, string>) };
  return Object.keys(out).length > 0 ? out : undefined;
}

export function parseContainerStatsFilter(f: ContainerStatsFilter | null | undefined): { id?: string; podId?: string; labelSelector?: Record<string, string> } {
  if (!f) return {};
  const out: { id?: string; podId?: string; labelSelector?: Record<string, string> } = {};
  if (f.id) out.id = requireId('filter.id', f.id);
  if (f.pod_sandbox_id) out.podId = requireId('filter.pod_sandbox_id', f.pod_sandbox_id);
  const sel = labels('filter.label_selector', f.label_selector);
  if (sel) out.labelSelector = sel;
  return out;
}

export function parsePodStatsFilter(f: PodSandboxStatsFilter | null | undefined): { id?: string; labelSelector?: Record<string, string> } {
  if (!f) return {};
  const out: { id?: string; labelSelector?: Record<string, string> } = {};
  if (f.id) out.id = requireId('filter.id', f.id);
  const sel = labels('filter.label_selector', f.label_selector);
  if (sel) out.labelSelector = sel;
  return out;
}

const u64 = (n: number | bigint): UInt64Value => ({ value: String(n) });
type InterfaceCounters = NonNullable<PodStatsSnapshot['network']>['interfaces'][number];

function cpuOf(c: CpuFigures | undefined): CpuUsage | null {
  if (!c) return null;
  return {
    timestamp: String(c.timestampNs),
    usage_core_nano_seconds: u64(c.usageCoreNanoSeconds),
    // The first sample has no rate yet: the field stays unset (nil), as containerd's.
    usage_nano_cores: c.usageNanoCores === undefined ? null : u64(c.usageNanoCores),
  };
}

function memoryOf(m: MemoryFigures | undefined): MemoryUsage | null {
  if (!m) return null;
  return {
    timestamp: String(m.timestampNs),
    working_set_bytes: u64(m.workingSetBytes),
    available_bytes: m.availableBytes === undefined ? null : u64(m.availableBytes),
    usage_bytes: u64(m.usageBytes),
    rss_bytes: u64(m.rssBytes),
    page_faults: u64(m.pageFaults),
    major_page_faults: u64(m.majorPageFaults),
  };
}

function layerOf(l: LayerFigures | undefined): FilesystemUsage | null {
  if (!l) return null;
  return { timestamp: String(l.timestampNs), fs_id: { mountpoint: l.mountpoint }, used_bytes: u64(l.usedBytes), inodes_used: u64(l.inodesUsed) };
}

function ifaceOf(i: InterfaceCounters): NetworkInterfaceUsage {
  return { name: i.name, rx_bytes: u64(i.rxBytes), rx_errors: u64(i.rxErrors), tx_bytes: u64(i.txBytes), tx_errors: u64(i.txErrors) };
}

export function containerStatsOf(s: ContainerStatsSnapshot): ContainerStats {
  const r = s.record;
  return {
    attributes: { id: r.id, metadata: { name: r.metadata.name, attempt: r.metadata.attempt }, labels: r.labels, annotations: r.annotations },
    cpu: cpuOf(s.cpu),
    memory: memoryOf(s.memory),
    writable_layer: layerOf(s.writableLayer),
  };
}

export function podStatsOf(s: PodStatsSnapshot): PodSandboxStats {
  const r = s.record;
  const m = r.config.metadata;
  return {
    attributes: {
      id: r.id,
      metadata: { name: m.name, uid: m.uid, namespace: m.namespace, attempt: m.attempt },
      labels: r.config.labels,
      annotations: r.config.annotations,
    },
    linux: {
      cpu: cpuOf(s.cpu),
      memory: memoryOf(s.memory),
      network: s.network
        ? {
            timestamp: String(s.network.timestampNs),
            default_interface: s.network.defaultInterface ? ifaceOf(s.network.defaultInterface) : null,
            interfaces: s.network.interfaces.map(ifaceOf),
          }
        : null,
      process: s.process ? { timestamp: String(s.process.timestampNs), process_count: u64(s.process.count) } : null,
      containers: s.containers.map(containerStatsOf),
    },
  };
}

export function statsHandlers(stats: StatsCollector): HandlerSet {
  return {
    unary: {
      async ContainerStats(req) {
        return { stats: containerStatsOf(await stats.container(requireId('container_id', req.container_id))) };
      },
      async ListContainerStats(req) {
        return { stats: (await stats.listContainers(parseContainerStatsFilter(req.filter))).map(containerStatsOf) };
      },
      async PodSandboxStats(req) {
        return { stats: podStatsOf(await stats.pod(requireId('pod_sandbox_id', req.pod_sandbox_id))) };
      },
      async ListPodSandboxStats(req) {
        return { stats: (await stats.listPods(parsePodStatsFilter(req.filter))).map(podStatsOf) };
      },
    },
    stream: {
      async *StreamContainerStats(req) {
        yield { container_stats: (await stats.listContainers(parseContainerStatsFilter(req.filter))).map(containerStatsOf) };
      },
      async *StreamPodSandboxStats(req) {
        yield { pod_sandbox_stats: (await stats.listPods(parsePodStatsFilter(req.filter))).map(podStatsOf) };
      },
    },
  };
}
