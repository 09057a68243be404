// /metrics of the real daemon, by Prometheus's conventions (as containerd and CRI-O
// export theirs): promtool check metrics passes while pods run and after they end; the
// CPU counter is keyed by sandbox and container ID; pods and containers by state;
// container exits by reason and whether a stop asked for them; OOM kills; CRI calls in
// flight; image pulls (count, bytes, duration, failures by reason) from a real registry.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { makeContainerEnv, waitFor } from '../container/container-env.js';
import { startDaemon, type TestDaemon } from '../../helpers/daemon.js';
import { buildImage, buildLayer } from '../../helpers/image-build.js';
import { promtoolFindings } from '../../helpers/promtool.js';
import { pushImage, startRegistry, type TestRegistry } from '../../helpers/registry.js';

const MIB = 1024 * 1024;
const CALL_MS = 120_000;

async function scrape(d: TestDaemon): Promise<string> {
  return (await fetch(`http://${d.metricsAddress}/metrics`)).text();
}

/** The value of the one series `name{labels…}` (labels in any order, others allowed), or undefined. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[3]);
  }
  return undefined;
}

/** The daemon's JSON log lines with message `msg`. */
function logLines(d: TestDaemon, msg: string): Array<Record<string, unknown>> {
  return d.stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.msg === msg);
}

// Under runc a container's own limit OOM-kills it; under runsc containers have no cgroup
// of their own, so the pod's limit does. The hog has a pod of its own: under runsc every
// container of a pod whose cgroup saw an OOM kill is reported OOMKilled when it ends.
const OOM_SETUP = {
  runc: { pod: {}, hog: { linux: { resources: { memory_limit_in_bytes: String(32 * MIB) } } }, bytes: 100 * MIB },
  runsc: { pod: { linux: { resources: { memory_limit_in_bytes: String(160 * MIB) } } }, hog: {}, bytes: 400 * MIB },
} as const;

for (const handler of ['runc', 'runsc'] as const) {
  test(
    `${handler}: /metrics passes promtool while a pod runs and after its containers end; exits by reason, OOM kills, states, CPU by IDs, calls in flight`,
    { timeout: 600_000 },
    async (t) => {
      const env = await makeContainerEnv(t);
      const { d } = env;
      // An open GetContainerEvents stream is a call in flight for as long as it is open.
      const events = d.runtimeStream('GetContainerEvents', {});
      events.on('error', () => undefined); // cancelled at the end
      t.after(() => events.cancel());
      const inFlight = async () => sample(await scrape(d), 'sandlot_cri_requests_in_flight', { service: 'RuntimeService', method: 'GetContainerEvents' });
      await waitFor('the events stream to count in flight', async () => (await inFlight()) === 1, 60_000);

      const setup = OOM_SETUP[handler];
      const pod = await env.runPod(`obs-${handler}`, {}, handler);
      const runner = await env.createContainer(pod, 'runner', { command: ['/bin/sh', '-c', 'while :; do :; done'] });
      await d.runtime('StartContainer', { container_id: runner }, CALL_MS);
      // The CPU counter of the running container, keyed by its sandbox and container IDs.
      const ids = { handler, sandbox_id: pod, container_id: runner, container: 'runner', pod: `obs-${handler}` };
      let text = '';
      await waitFor(
        'a CPU sample of the runner',
        async () => {
          text = await scrape(d);
          return (sample(text, 'sandlot_container_cpu_usage_seconds_total', ids) ?? 0) > 0;
        },
        120_000,
      );
      assert.equal(promtoolFindings(text), '', 'promtool on /metrics while the pod runs');
      assert.match(text, /^# TYPE sandlot_container_cpu_usage_seconds_total counter$/m);
      assert.equal(sample(text, 'sandlot_pod_sandboxes', { state: 'SANDBOX_READY', handler }), 1);
      assert.equal(sample(text, 'sandlot_containers', { state: 'CONTAINER_RUNNING', handler }), 1);
      assert.ok((sample(text, 'process_resident_memory_bytes') ?? 0) > 0, 'process_* carry their standard names');
      assert.ok(sample(text, 'sandlot_cri_request_duration_seconds_bucket', { le: '60', method: 'RunPodSandbox', code: 'OK' }) === 1);

      // An exit on its own (3), an OOM kill, and a stop the client asked for.
      const quitter = await env.createContainer(pod, 'quitter', { command: ['/bin/sh', '-c', 'exit 3'] });
      await d.runtime('StartContainer', { container_id: quitter }, CALL_MS);
      await env.waitState(quitter, 'CONTAINER_EXITED', 120_000);
      const hogPod = await env.runPod(`obs-oom-${handler}`, setup.pod, handler);
      const hog = await env.createContainer(hogPod, 'hog', {
        command: ['/bin/sh', '-c', `awk 'BEGIN{s=sprintf("%${setup.bytes}s","x"); print length(s); system("sleep 3600")}'`],
        ...setup.hog,
      });
      await d.runtime('StartContainer', { container_id: hog }, CALL_MS);
      const hogSt = await env.waitState(hog, 'CONTAINER_EXITED', 180_000);
      assert.equal(hogSt.reason, 'OOMKilled');
      await d.runtime('StopContainer', { container_id: runner, timeout: 0 }, CALL_MS);

      text = await scrape(d);
      assert.equal(promtoolFindings(text), '', 'promtool on /metrics after the exits');
      assert.equal(sample(text, 'sandlot_container_exits_total', { handler, reason: 'Error', requested: 'false' }), 1, 'the quitter');
      assert.equal(sample(text, 'sandlot_container_exits_total', { handler, reason: 'OOMKilled', requested: 'false' }), 1, 'the hog');
      assert.equal(sample(text, 'sandlot_container_exits_total', { handler, reason: 'Error', requested: 'true' }), 1, 'the stopped runner');
      assert.equal(sample(text, 'sandlot_containers_oom_killed_total', { handler }), 1);
      assert.equal(sample(text, 'sandlot_containers', { state: 'CONTAINER_EXITED', handler }), 3);
      assert.equal(sample(text, 'sandlot_container_cpu_usage_seconds_total', ids), undefined, 'a stopped container has no CPU series');

      // Logged once each: the exits nobody asked for, with code, reason and OOMKilled; not the stop.
      const exits = logLines(d, 'container exited');
      const line = (id: string) => exits.filter((l) => l.containerId === id).map((l) => ({ exitCode: l.exitCode, reason: l.reason, oomKilled: l.oomKilled }));
      assert.deepEqual(line(quitter), [{ exitCode: 3, reason: 'Error', oomKilled: false }]);
      assert.deepEqual(line(hog), [{ exitCode: 137, reason: 'OOMKilled', oomKilled: true }]);
      assert.deepEqual(line(runner), []);

      events.cancel();
      await waitFor('the cancelled stream to leave the in-flight gauge', async () => (await inFlight()) === 0, 60_000);
    },
  );
}

let reg: TestRegistry | undefined;
let daemon: TestDaemon | undefined;

after(async () => {
  await daemon?.cleanup();
  await reg?.stop();
});

test('image pulls: a success counts its bytes and duration, failures count by reason; promtool passes', { timeout: 300_000 }, async () => {
  reg = await startRegistry();
  daemon = await startDaemon();
  const layer = await buildLayer([{ type: 'file', name: 'payload', data: crypto.randomBytes(256 * 1024) }]);
  await pushImage(reg, 'obs/pulled', 'v1', buildImage([layer]));
  await daemon.image('PullImage', { image: { image: `${reg.host}/obs/pulled:v1` } }, CALL_MS);
  await assert.rejects(daemon.image('PullImage', { image: { image: `${reg.host}/obs/pulled:missing` } }, CALL_MS), (e: ServiceError) => {
    return e.code === GrpcStatus.NOT_FOUND;
  });
  const text = await scrape(daemon);
  assert.equal(promtoolFindings(text), '');
  assert.equal(sample(text, 'sandlot_image_pulls_total', { result: 'success' }), 1);
  assert.equal(sample(text, 'sandlot_image_pulls_total', { result: 'failure' }), 1);
  assert.equal(sample(text, 'sandlot_image_pull_failures_total', { reason: 'not_found' }), 1);
  const bytes = sample(text, 'sandlot_image_pull_bytes_total') ?? 0;
  assert.ok(bytes >= layer.data.length, `bytes fetched ${bytes} cover the layer's ${layer.data.length}`);
  assert.equal(sample(text, 'sandlot_image_pull_duration_seconds_count'), 1);
  assert.equal(sample(text, 'sandlot_image_pulls_in_progress'), 0);
});
