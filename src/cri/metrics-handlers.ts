// ListMetricDescriptors, ListPodSandboxMetrics, StreamPodSandboxMetrics: cAdvisor-named
// series of every pod and its containers (src/sandbox/stats/pod-sandbox-metrics.ts), read fresh from the
// StatsCollector on each call, in the proto's shape (int64 as decimal strings, the
// value in a UInt64Value, metric_type as upstream's MetricType enum name).
import { METRIC_DESCRIPTORS, podSandboxMetrics, type MetricSample, type PodMetricsSet } from '../sandbox/stats/pod-sandbox-metrics.js';
import type { StatsCollector } from '../sandbox/stats/stats-collector.js';
import type { Metric } from '../types/cri/runtime/v1/Metric.js';
import type { PodSandboxMetrics } from '../types/cri/runtime/v1/PodSandboxMetrics.js';
import type { HandlerSet } from './handler-types.js';

function metricOf(m: MetricSample): Metric {
  return { name: m.name, timestamp: m.timestampNs.toString(), metric_type: m.type, label_values: m.labelValues, value: { value: m.value.toString() } };
}

export function podSandboxMetricsOf(p: PodMetricsSet): PodSandboxMetrics {
  return {
    pod_sandbox_id: p.podId,
    metrics: p.metrics.map(metricOf),
    container_metrics: p.containers.map((c) => ({ container_id: c.containerId, metrics: c.metrics.map(metricOf) })),
  };
}

export function metricsHandlers(stats: Pick<StatsCollector, 'listPods'>): HandlerSet {
  // Counters and gauges need no rate: no CPU sample is taken (the stats RPCs' nano-cores stay intact).
  const collect = async (): Promise<PodSandboxMetrics[]> => podSandboxMetrics(await stats.listPods({}, { rates: false })).map(podSandboxMetricsOf);
  return {
    unary: {
      ListMetricDescriptors() {
        return Promise.resolve({ descriptors: METRIC_DESCRIPTORS.map((d) => ({ name: d.name, help: d.help, label_keys: [...d.labelKeys] })) });
      },
      async ListPodSandboxMetrics() {
        return { pod_metrics: await collect() };
      },
    },
    stream: {
      async *StreamPodSandboxMetrics() {
        yield { pod_sandbox_metrics: await collect() };
      },
    },
  };
}
