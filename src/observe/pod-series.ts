// Per-pod and per-container Prometheus series fed from the stats the sandbox layer
// reads (S13 CPU, working set), the sandbox OOM score (S10) and OOM kills. Whoever
// collects stats calls update() with a full snapshot; series of pods and containers
// absent from it are dropped, so removed pods do not linger. Every series carries the
// sandbox ID (and a container's its container ID): two attempts of one pod, or of one
// container, are two series, never one counter that jumps back.

import { Counter, Gauge, type Registry } from 'prom-client';

const CONTAINER_LABELS = ['pod', 'namespace', 'container', 'handler', 'sandbox_id', 'container_id'] as const;
const POD_LABELS = ['pod', 'namespace', 'handler', 'sandbox_id'] as const;
type ContainerLabel = (typeof CONTAINER_LABELS)[number];
type PodLabel = (typeof POD_LABELS)[number];

export interface ContainerMetricsSample {
  pod: string;
  namespace: string;
  container: string;
  handler: string;
  sandboxId: string;
  /** "" on the runsc pod-wide OOM entry. */
  containerId: string;
  /** Cumulative CPU time in seconds (S13 share under runsc). */
  cpuSeconds?: number | undefined;
  memoryWorkingSetBytes?: number | undefined;
  /**
   * Cumulative OOM kills of the container's cgroup as the kernel counts them (under
   * runsc, where containers have no cgroup of their own, report the pod cgroup's count
   * on one entry with container "").
   */
  oomKills?: number | undefined;
}

export interface PodMetricsSample {
  pod: string;
  namespace: string;
  handler: string;
  sandboxId: string;
  /** The sandbox process's current oom_score_adj (S10). */
  oomScoreAdj?: number | undefined;
}

export interface PodMetricsSnapshot {
  containers: readonly ContainerMetricsSample[];
  pods: readonly PodMetricsSample[];
}

export interface PodMetricsOptions {
  registry: Registry;
  /** Metric name prefix; 'sandlot_' by default. */
  prefix?: string;
  /**
   * Called on each scrape (prom-client's collect hooks) to take a fresh snapshot; a
   * failure keeps the last one.
   */
  refresh?: () => Promise<PodMetricsSnapshot>;
  onRefreshError?: (err: unknown) => void;
}

export class PodMetrics {
  private readonly cpu: Counter<ContainerLabel>;
  private readonly workingSet: Gauge<ContainerLabel>;
  private readonly oomScore: Gauge<PodLabel>;
  private readonly oomKills: Counter<ContainerLabel>;
  /** Last cumulative OOM kill count per container series, to turn counts into increments. */
  private readonly lastOomKills = new Map<string, { labels: Record<ContainerLabel, string>; count: number }>();

  constructor(options: PodMetricsOptions) {
    const prefix = options.prefix ?? 'sandlot_';
    const registers = [options.registry];
    // The registry reads all series of a scrape at once: each one's collect hook waits
    // for the one refresh they share.
    const hook = options.refresh ? { collect: () => this.refreshOnce(options.refresh!, options.onRefreshError) } : {};
    // A counter holding the cumulative value read at each scrape (reset, then set by one
    // increment), as cAdvisor's container_cpu_usage_seconds_total.
    this.cpu = new Counter({
      name: `${prefix}container_cpu_usage_seconds_total`,
      help: 'Cumulative CPU time of a container in seconds (under runsc its proportional share of the sandbox, S13).',
      labelNames: CONTAINER_LABELS,
      registers,
      ...hook,
    });
    this.workingSet = new Gauge({
      name: `${prefix}container_memory_working_set_bytes`,
      help: 'Memory working set of a container in bytes (usage minus inactive file pages).',
      labelNames: CONTAINER_LABELS,
      registers,
      ...hook,
    });
    this.oomScore = new Gauge({
      name: `${prefix}pod_sandbox_oom_score_adj`,
      help: 'oom_score_adj of the pod sandbox process (S10: the lowest of its containers).',
      labelNames: POD_LABELS,
      registers,
      ...hook,
    });
    this.oomKills = new Counter({
      name: `${prefix}container_oom_kills_total`,
      help: 'Processes killed by the OOM killer in a container cgroup.',
      labelNames: CONTAINER_LABELS,
      registers,
      ...hook,
    });
  }

  private refreshing: Promise<void> | undefined;

  private refreshOnce(refresh: () => Promise<PodMetricsSnapshot>, onError?: (err: unknown) => void): Promise<void> {
    this.refreshing ??= refresh()
      .then((snap) => this.update(snap))
      .catch((e: unknown) => onError?.(e)) // the last snapshot stays
      .finally(() => {
        this.refreshing = undefined;
      });
    return this.refreshing;
  }

  update(snapshot: PodMetricsSnapshot): void {
    this.cpu.reset();
    this.workingSet.reset();
    this.oomScore.reset();
    const seen = new Set<string>();
    for (const c of snapshot.containers) {
      const labels = containerLabels(c);
      if (c.cpuSeconds !== undefined) this.cpu.inc(labels, c.cpuSeconds);
      if (c.memoryWorkingSetBytes !== undefined) this.workingSet.set(labels, c.memoryWorkingSetBytes);
      if (c.oomKills !== undefined) {
        const key = JSON.stringify(CONTAINER_LABELS.map((l) => labels[l]));
        seen.add(key);
        const prev = this.lastOomKills.get(key);
        // A count below the last one means a new cgroup (restarted container): all of
        // it is new. The first sight of a series only sets the baseline at 0 + count.
        const increment = prev === undefined || c.oomKills < prev.count ? c.oomKills : c.oomKills - prev.count;
        this.oomKills.inc(labels, increment);
        this.lastOomKills.set(key, { labels, count: c.oomKills });
      }
    }
    for (const [key, { labels }] of this.lastOomKills) {
      if (seen.has(key)) continue;
      this.oomKills.remove(labels);
      this.lastOomKills.delete(key);
    }
    for (const p of snapshot.pods) {
      if (p.oomScoreAdj === undefined) continue;
      this.oomScore.set({ pod: p.pod, namespace: p.namespace, handler: p.handler, sandbox_id: p.sandboxId }, p.oomScoreAdj);
    }
  }
}

function containerLabels(c: ContainerMetricsSample): Record<ContainerLabel, string> {
  return { pod: c.pod, namespace: c.namespace, container: c.container, handler: c.handler, sandbox_id: c.sandboxId, container_id: c.containerId };
}
