// Pod and container metrics for ListMetricDescriptors / ListPodSandboxMetrics /
// StreamPodSandboxMetrics: a small set of cAdvisor-named series built from the stats
// the StatsCollector reads (S13 CPU share under runsc, the container's own cgroup under
// runc), so the kubelet's /metrics/cadvisor can come from the CRI.
//
//   level      │ series
//   ───────────┼─────────────────────────────────────────────────────────────────────
//   container  │ cpu_usage_seconds_total, memory_{working_set,usage}_bytes,
//              │ memory_rss, oom_events_total (runc: the container's own cgroup)
//   pod        │ the same CPU/memory of the pod cgroup (container ""), processes,
//              │ network_{receive,transmit}_{bytes,errors}_total per interface
//
// Label values follow cAdvisor's: `id` is the cgroup path, `name` the CRI ID, `container`
// "" for the pod's own series. The wire value is a uint64: CPU seconds are whole seconds
// (truncated), as a counter of seconds in uint64 can only be.
import type { InterfaceCounters } from '../../network/netns-store.js';
import type { ContainerStatsSnapshot, CpuFigures, MemoryFigures, PodStatsSnapshot } from './stats-collector.js';

export type MetricType = 'COUNTER' | 'GAUGE';

export interface MetricDescriptor {
  name: string;
  help: string;
  labelKeys: readonly string[];
  type: MetricType;
}

export interface MetricSample {
  name: string;
  timestampNs: bigint;
  type: MetricType;
  labelValues: string[];
  value: bigint;
}

export interface PodMetricsSet {
  podId: string;
  metrics: MetricSample[];
  containers: Array<{ containerId: string; metrics: MetricSample[] }>;
}

/** cAdvisor's labels of a container series in a Kubernetes pod. */
export const CONTAINER_LABEL_KEYS = ['container', 'id', 'image', 'name', 'namespace', 'pod'] as const;
const NETWORK_LABEL_KEYS = [...CONTAINER_LABEL_KEYS, 'interface'] as const;

const d = (name: string, type: MetricType, help: string, labelKeys: readonly string[] = CONTAINER_LABEL_KEYS): MetricDescriptor => ({
  name,
  help,
  labelKeys,
  type,
});

export const METRIC_DESCRIPTORS: readonly MetricDescriptor[] = [
  d('container_cpu_usage_seconds_total', 'COUNTER', 'Cumulative CPU time consumed, in whole seconds (the CRI value is an integer).'),
  d('container_memory_working_set_bytes', 'GAUGE', 'Current working set in bytes (usage minus inactive file pages).'),
  d('container_memory_usage_bytes', 'GAUGE', 'Current memory usage in bytes, including all memory regardless of when it was accessed.'),
  d('container_memory_rss', 'GAUGE', 'Size of RSS (anonymous and swap cache memory) in bytes.'),
  d('container_oom_events_total', 'COUNTER', 'Count of out-of-memory kills in the cgroup.'),
  d('container_processes', 'GAUGE', 'Number of processes running inside the pod.'),
  d('container_network_receive_bytes_total', 'COUNTER', 'Cumulative count of bytes received.', NETWORK_LABEL_KEYS),
  d('container_network_receive_errors_total', 'COUNTER', 'Cumulative count of errors encountered while receiving.', NETWORK_LABEL_KEYS),
  d('container_network_transmit_bytes_total', 'COUNTER', 'Cumulative count of bytes transmitted.', NETWORK_LABEL_KEYS),
  d('container_network_transmit_errors_total', 'COUNTER', 'Cumulative count of errors encountered while transmitting.', NETWORK_LABEL_KEYS),
];

const TYPES = new Map(METRIC_DESCRIPTORS.map((x) => [x.name, x.type]));
const NS_PER_SECOND = 1_000_000_000n;

class SampleList {
  readonly out: MetricSample[] = [];
  constructor(private readonly labels: string[]) {}

  add(name: string, ts: bigint, value: number | bigint | undefined, extra: string[] = []): void {
    if (value === undefined) return;
    const v = typeof value === 'bigint' ? value : BigInt(Math.max(0, Math.trunc(value)));
    this.out.push({ name, timestampNs: ts, type: TYPES.get(name)!, labelValues: [...this.labels, ...extra], value: v });
  }

  cpuMemory(cpu: CpuFigures | undefined, mem: MemoryFigures | undefined): void {
    if (cpu) this.add('container_cpu_usage_seconds_total', cpu.timestampNs, cpu.usageCoreNanoSeconds / NS_PER_SECOND);
    if (mem) {
      this.add('container_memory_working_set_bytes', mem.timestampNs, mem.workingSetBytes);
      this.add('container_memory_usage_bytes', mem.timestampNs, mem.usageBytes);
      this.add('container_memory_rss', mem.timestampNs, mem.rssBytes);
    }
  }
}

function containerMetrics(pod: PodStatsSnapshot, c: ContainerStatsSnapshot, now: bigint): MetricSample[] {
  const m = pod.record.config.metadata;
  const r = c.record;
  // container, id, image, name, namespace, pod
  const list = new SampleList([r.metadata.name, r.cgroupPath, r.image, r.id, m.namespace, m.name]);
  list.cpuMemory(c.cpu, c.memory);
  list.add('container_oom_events_total', c.cpu?.timestampNs ?? c.memory?.timestampNs ?? now, c.oomKills);
  return list.out;
}

function podMetrics(p: PodStatsSnapshot, now: bigint): MetricSample[] {
  const r = p.record;
  const m = r.config.metadata;
  const labels = ['', r.podCgroup, '', r.id, m.namespace, m.name];
  const list = new SampleList(labels);
  list.cpuMemory(p.cpu, p.memory);
  list.add('container_oom_events_total', p.cpu?.timestampNs ?? p.memory?.timestampNs ?? now, p.oomKills);
  if (p.process) list.add('container_processes', p.process.timestampNs, p.process.count);
  if (p.network) {
    const ts = p.network.timestampNs;
    const ifaces: InterfaceCounters[] = p.network.interfaces.filter((i) => i.name !== 'lo');
    for (const i of ifaces) {
      list.add('container_network_receive_bytes_total', ts, i.rxBytes, [i.name]);
      list.add('container_network_receive_errors_total', ts, i.rxErrors, [i.name]);
      list.add('container_network_transmit_bytes_total', ts, i.txBytes, [i.name]);
      list.add('container_network_transmit_errors_total', ts, i.txErrors, [i.name]);
    }
  }
  return list.out;
}

/** The metrics of each pod; figures that could not be read are left out, never zero. */
export function podSandboxMetrics(pods: readonly PodStatsSnapshot[], now: bigint = BigInt(Date.now()) * 1_000_000n): PodMetricsSet[] {
  return pods.map((p) => ({
    podId: p.record.id,
    metrics: podMetrics(p, now),
    containers: p.containers.map((c) => ({ containerId: c.record.id, metrics: containerMetrics(p, c, now) })),
  }));
}
