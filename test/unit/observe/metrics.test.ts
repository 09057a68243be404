// The registry /metrics serves follows Prometheus's naming rules as promtool checks
// them (Debian's `prometheus` package, a test dependency), with the standard process_*
// and nodejs_* names unprefixed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Metrics } from '../../../src/observe/metrics.js';
import { promtoolFindings } from '../../helpers/promtool.js';

test('promtool check metrics passes on the registry, with calls observed and in flight', async () => {
  const m = new Metrics({ version: '1.2.3' });
  m.criCallDuration.observe({ service: 'RuntimeService', method: 'Version', code: 'OK' }, 0.002);
  m.callsInFlight({ service: 'RuntimeService', method: 'GetContainerEvents' }).n++;
  const pull = m.imagePulls.begin();
  pull.progress({ layer: 'sha256:a', bytes: 10, phase: 'downloading' });
  const text = await m.registry.metrics();
  assert.equal(promtoolFindings(text), '');
  pull.succeeded();
  assert.equal(promtoolFindings(await m.registry.metrics()), '');
});

test('process and nodejs metrics carry their standard names; prom-client total gauges are served as _all', async () => {
  const text = await new Metrics({ version: 'x' }).registry.metrics();
  assert.match(text, /^process_cpu_seconds_total \d/m);
  assert.match(text, /^process_resident_memory_bytes \d+/m);
  assert.match(text, /^nodejs_heap_size_used_bytes \d+/m);
  assert.doesNotMatch(text, /^sandlot_(process|nodejs)_/m);
  assert.doesNotMatch(text, /^nodejs_active_\w+_total/m);
  assert.match(text, /^# TYPE nodejs_active_handles_all gauge$/m);
  assert.match(text, /^nodejs_active_handles_all \d+$/m);
});

test('the CRI call histogram resolves 5 s to 120 s; calls in flight by method', async () => {
  const m = new Metrics({ version: 'x' });
  m.criCallDuration.observe({ service: 'RuntimeService', method: 'RunPodSandbox', code: 'OK' }, 42);
  const stops = m.callsInFlight({ service: 'RuntimeService', method: 'StopContainer' });
  stops.n++;
  const text = await m.registry.metrics();
  const les = [...text.matchAll(/sandlot_cri_request_duration_seconds_bucket\{le="([^"]+)",service="RuntimeService",method="RunPodSandbox",code="OK"\}/g)].map(
    (x) => x[1],
  );
  const between = les.filter((le) => le !== '+Inf' && Number(le) >= 5 && Number(le) <= 120);
  assert.ok(between.length >= 6, `buckets between 5 s and 120 s: ${between.join(', ')}`);
  assert.match(text, /sandlot_cri_request_duration_seconds_bucket\{le="45",service="RuntimeService",method="RunPodSandbox",code="OK"\} 1/);
  assert.match(text, /sandlot_cri_request_duration_seconds_bucket\{le="30",service="RuntimeService",method="RunPodSandbox",code="OK"\} 0/);
  assert.match(text, /^sandlot_cri_requests_in_flight\{service="RuntimeService",method="StopContainer"\} 1$/m);
  stops.n--;
  assert.match(await m.registry.metrics(), /^sandlot_cri_requests_in_flight\{service="RuntimeService",method="StopContainer"\} 0$/m, 'read at each scrape');
  assert.doesNotMatch(text, /method="RunPodSandbox"\}/, 'no series for a method without a counter');
});
