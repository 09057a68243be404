import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { PodMetrics } from '../../../src/observe/pod-series.js';

const POD1 = 'a'.repeat(64);
const POD2 = 'b'.repeat(64);
const A = { pod: 'web', namespace: 'default', container: 'app', handler: 'runsc', sandboxId: POD1, containerId: '1'.repeat(64) };
const B = { pod: 'web', namespace: 'default', container: 'sidecar', handler: 'runsc', sandboxId: POD1, containerId: '2'.repeat(64) };
/** The Prometheus labels of a sample. */
const L = (c: typeof A) => ({
  pod: c.pod,
  namespace: c.namespace,
  container: c.container,
  handler: c.handler,
  sandbox_id: c.sandboxId,
  container_id: c.containerId,
});

async function values(registry: Registry, name: string): Promise<Array<{ labels: Record<string, unknown>; value: number }>> {
  const metric = registry.getSingleMetric(name);
  assert.ok(metric, `metric ${name} is registered`);
  const got = await metric.get();
  return got.values.map((v) => ({ labels: { ...v.labels }, value: v.value }));
}

test('S13: per-container CPU seconds (a counter) and working set carry pod, namespace, container, handler, sandbox and container IDs', async () => {
  const registry = new Registry();
  const m = new PodMetrics({ registry });
  m.update({
    containers: [
      { ...A, cpuSeconds: 1.5, memoryWorkingSetBytes: 1024 },
      { ...B, cpuSeconds: 0.25 },
    ],
    pods: [],
  });
  assert.deepEqual(await values(registry, 'sandlot_container_cpu_usage_seconds_total'), [
    { labels: L(A), value: 1.5 },
    { labels: L(B), value: 0.25 },
  ]);
  assert.deepEqual(await values(registry, 'sandlot_container_memory_working_set_bytes'), [{ labels: L(A), value: 1024 }]);
  const text = await registry.metrics();
  assert.match(text, /# TYPE sandlot_container_cpu_usage_seconds_total counter/);
  assert.match(
    text,
    new RegExp(
      `sandlot_container_cpu_usage_seconds_total\\{pod="web",namespace="default",container="app",handler="runsc",sandbox_id="${POD1}",container_id="${'1'.repeat(64)}"\\} 1\\.5`,
    ),
  );
  // The next scrape holds the new cumulative value, not a sum.
  m.update({ containers: [{ ...A, cpuSeconds: 2 }], pods: [] });
  assert.deepEqual(await values(registry, 'sandlot_container_cpu_usage_seconds_total'), [{ labels: L(A), value: 2 }]);
});

test('two attempts of one pod are two series, not one that jumps back', async () => {
  const registry = new Registry();
  const m = new PodMetrics({ registry });
  const second = { ...A, sandboxId: POD2, containerId: '3'.repeat(64) };
  m.update({
    containers: [
      { ...A, cpuSeconds: 30 },
      { ...second, cpuSeconds: 0.1 },
    ],
    pods: [],
  });
  assert.deepEqual(await values(registry, 'sandlot_container_cpu_usage_seconds_total'), [
    { labels: L(A), value: 30 },
    { labels: L(second), value: 0.1 },
  ]);
});

test('S10: the sandbox oom_score_adj gauge per pod; removed pods and containers disappear', async () => {
  const registry = new Registry();
  const m = new PodMetrics({ registry });
  m.update({
    containers: [{ ...A, cpuSeconds: 1 }],
    pods: [
      { pod: 'web', namespace: 'default', handler: 'runsc', sandboxId: POD1, oomScoreAdj: 300 },
      { pod: 'db', namespace: 'prod', handler: 'runc', sandboxId: POD2, oomScoreAdj: -997 },
    ],
  });
  assert.deepEqual(await values(registry, 'sandlot_pod_sandbox_oom_score_adj'), [
    { labels: { pod: 'web', namespace: 'default', handler: 'runsc', sandbox_id: POD1 }, value: 300 },
    { labels: { pod: 'db', namespace: 'prod', handler: 'runc', sandbox_id: POD2 }, value: -997 },
  ]);
  m.update({ containers: [], pods: [{ pod: 'db', namespace: 'prod', handler: 'runc', sandboxId: POD2, oomScoreAdj: -997 }] });
  assert.deepEqual(await values(registry, 'sandlot_pod_sandbox_oom_score_adj'), [
    { labels: { pod: 'db', namespace: 'prod', handler: 'runc', sandbox_id: POD2 }, value: -997 },
  ]);
  assert.deepEqual(await values(registry, 'sandlot_container_cpu_usage_seconds_total'), []);
});

test('OOM kills: cumulative cgroup counts become counter increments; a reset counts anew; gone series are dropped', async () => {
  const registry = new Registry();
  const m = new PodMetrics({ registry, prefix: 'x_' });
  const counter = async () => (await values(registry, 'x_container_oom_kills_total')).map((v) => v.value);
  m.update({ containers: [{ ...A, oomKills: 0 }], pods: [] });
  assert.deepEqual(await counter(), [0]);
  m.update({ containers: [{ ...A, oomKills: 2 }], pods: [] });
  m.update({ containers: [{ ...A, oomKills: 2 }], pods: [] });
  assert.deepEqual(await counter(), [2]);
  // The container restarted in a new cgroup whose count starts again.
  m.update({ containers: [{ ...A, oomKills: 1 }], pods: [] });
  assert.deepEqual(await counter(), [3]);
  m.update({ containers: [], pods: [] });
  assert.deepEqual(await counter(), []);
});
