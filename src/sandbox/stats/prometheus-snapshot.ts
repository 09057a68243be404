// The Prometheus snapshot of pods and containers (src/observe/pod-series.ts) from the
// stats the collector reads: per-container CPU seconds (S13 share under runsc) and
// working set, OOM kills (a runc container's own cgroup; under runsc the pod cgroup's,
// on an entry with container ""), and the sandbox process's oom_score_adj (S10).
import { readFileSync } from 'node:fs';
import type { PodMetricsSnapshot } from '../../observe/pod-series.js';
import { runtimeFeatures } from '../../oci/runtime.js';
import type { PodStatsSnapshot } from './stats-collector.js';

const NS_PER_SECOND = 1e9;

/** Read synchronously: a procfs file is made on read, in microseconds (cgroup-stats.ts readText). */
function readOomScoreAdj(pid: number): Promise<number | undefined> {
  return Promise.resolve(oomScoreAdjOf(pid));
}

function oomScoreAdjOf(pid: number): number | undefined {
  if (pid <= 0) return undefined;
  try {
    const n = Number(readFileSync(`/proc/${pid}/oom_score_adj`, 'utf8').trim());
    return Number.isInteger(n) ? n : undefined;
  } catch {
    return undefined; // the infra is gone
  }
}

export async function podMetricsSnapshot(
  pods: readonly PodStatsSnapshot[],
  oomScoreAdj: (pid: number) => Promise<number | undefined> = readOomScoreAdj,
): Promise<PodMetricsSnapshot> {
  const out: { containers: PodMetricsSnapshot['containers'][number][]; pods: PodMetricsSnapshot['pods'][number][] } = { containers: [], pods: [] };
  for (const p of pods) {
    const m = p.record.config.metadata;
    const handler = p.record.runtimeHandler;
    for (const c of p.containers) {
      if (c.record.state !== 'running') continue;
      out.containers.push({
        pod: m.name,
        namespace: m.namespace,
        container: c.record.metadata.name,
        handler,
        sandboxId: p.record.id,
        containerId: c.record.id,
        cpuSeconds: c.cpu === undefined ? undefined : Number(c.cpu.usageCoreNanoSeconds) / NS_PER_SECOND,
        memoryWorkingSetBytes: c.memory?.workingSetBytes,
        oomKills: c.oomKills,
      });
    }
    const sandboxOoms = p.containers.some((c) => runtimeFeatures(c.record.runtimeType).sandboxOomKills);
    if (sandboxOoms && p.oomKills !== undefined)
      out.containers.push({ pod: m.name, namespace: m.namespace, container: '', handler, sandboxId: p.record.id, containerId: '', oomKills: p.oomKills });
    if (p.record.state === 'running') {
      out.pods.push({ pod: m.name, namespace: m.namespace, handler, sandboxId: p.record.id, oomScoreAdj: await oomScoreAdj(p.record.pid) });
    }
  }
  return out;
}
