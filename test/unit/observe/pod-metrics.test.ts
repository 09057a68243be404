import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { PodMetrics } from '../../../src/observe/pod-series.js';

const A = { pod: 'web', namespace: 'default', container: 'app', handler: 'runsc' };
const B = { pod: 'web', namespace: 'default', container: 'sidecar', handler: 'runsc' };

async function values(registry: Registry, name: string): Promise<Array<{ labels: Record<string, unknown>; value: number }>> {
  const metric = registry.getSingleMetric(name);
  assert.ok(metric, `metric ${name} is registered`);
  const got = await metric.get();
  return got.values.map((v) => ({ labels: { ...v.labels }, value: v.value }));
}

test('S13: per-container CPU seconds and working set gauges carry pod, namespace, container, handler', async () => {
  const registry = new Registry();
  const m = new PodMetrics({ registry });
  m.update({
    containers: [
      { ...A, cpuSeconds: 1.5, memoryWorkingSetBytes: 1024 },
      { ...B, cpuSeconds: 0.25 },
    ],
    pods: [],
  });
  assert.deepEqual(await values(registry, 'sandlot_container_cpu_usage_seconds'), [
    { labels: A, value: 1.5 },
    { labels: B, value: 0.25 },
  ]);
  assert.deepEqual(await values(registry, 'sandlot_container_memory_working_set_bytes'), [{ labels: A, value: 1024 }]);
  const text = await registry.metrics();
  assert.match(text, /sandlot_container_cpu_usage_seconds\{pod="web",namespace="default",container="app",handler="runsc"\} 1\.5/);
});

test('S10: the sandbox oom_score_adj gauge per pod; removed pods and containers disappear', async () => {
  const registry = new Registry();
  const m = new PodMetrics({ registry });
  m.update({
    containers: [{ ...A, cpuSeconds: 1 }],
    pods: [
      { pod: 'web', namespace: 'default', handler: 'runsc', oomScoreAdj: 300 },
      { pod: 'db', namespace: 'prod', handler: 'runc', oomScoreAdj: -997 },
    ],
  });
  assert.deepEqual(await values(registry, 'sandlot_pod_sandbox_oom_score_adj'), [
    { labels: { pod: 'web', namespace: 'default', handler: 'runsc' }, value: 300 },
    { labels: { pod: 'db', namespace: 'prod', handler: 'runc' }, value: -997 },
  ]);
  m.update({ containers: [], pods: [{ pod: 'db', namespace: 'prod', handler: 'runc', oomScoreAdj: -997 }] });
  assert.deepEqual(await values(registry, 'sandlot_pod_sandbox_oom_score_adj'), [{ labels: { pod: 'db', namespace: 'prod', handler: 'runc' }, value: -997 }]);
  assert.deepEqual(await values(registry, 'sandlot_container_cpu_usage_seconds'), []);
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
