// The lifecycle observer over a fake book: exits nobody asked for are logged once (code,
// reason, OOMKilled), requested ones only counted; states are read at each scrape.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { LifecycleObserver, type ObservedContainer, type ObservedPod } from '../../../src/observe/lifecycle-metrics.js';

const POD = 'p'.repeat(64);

function ctr(id: string, over: Partial<ObservedContainer> = {}): ObservedContainer {
  return {
    id,
    podId: POD,
    name: `n-${id.slice(0, 3)}`,
    pod: 'web',
    namespace: 'ns',
    handler: 'runc',
    state: 'CONTAINER_RUNNING',
    exitCode: 0,
    reason: '',
    ...over,
  };
}

function setup() {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const book = new Map<string, ObservedContainer>();
  const pods: ObservedPod[] = [{ state: 'SANDBOX_READY', handler: 'runc' }];
  const registry = new Registry();
  const obs = new LifecycleObserver({
    registry,
    log: pino({ level: 'debug' }, sink),
    source: { container: (id) => book.get(id), pods: () => pods, containers: () => [...book.values()] },
  });
  const exitLines = () => lines.filter((l) => l.msg === 'container exited');
  return { book, pods, registry, obs, exitLines };
}

async function series(registry: Registry, name: string): Promise<string[]> {
  const got = await registry.getSingleMetric(name)!.get();
  return got.values.map((v) => `${JSON.stringify(v.labels)} ${v.value}`);
}

test('an exit on its own is logged with code, reason and oomKilled, and counted; a stopped event of the pod itself is not', async () => {
  const { book, registry, obs, exitLines } = setup();
  const a = 'a'.repeat(64);
  book.set(a, ctr(a, { state: 'CONTAINER_EXITED', exitCode: 137, reason: 'OOMKilled' }));
  obs.published('CONTAINER_STOPPED_EVENT', a, POD);
  obs.published('CONTAINER_STOPPED_EVENT', POD, POD);
  obs.published('CONTAINER_STARTED_EVENT', a, POD);
  assert.equal(exitLines().length, 1);
  const line = exitLines()[0];
  assert.equal(line.level, 40, 'a non-zero exit is a warning');
  assert.deepEqual(
    {
      containerId: line.containerId,
      podSandboxId: line.podSandboxId,
      exitCode: line.exitCode,
      reason: line.reason,
      oomKilled: line.oomKilled,
      container: line.container,
    },
    { containerId: a, podSandboxId: POD, exitCode: 137, reason: 'OOMKilled', oomKilled: true, container: 'n-aaa' },
  );
  assert.deepEqual(await series(registry, 'sandlot_container_exits_total'), ['{"handler":"runc","reason":"OOMKilled","requested":"false"} 1']);
  assert.deepEqual(await series(registry, 'sandlot_containers_oom_killed_total'), ['{"handler":"runc"} 1']);
});

test('exits a stop or remove asked for (by container ID prefix or by pod) are counted as requested, not logged', async () => {
  const { book, registry, obs, exitLines } = setup();
  const a = 'a'.repeat(64);
  const b = 'b'.repeat(64);
  book.set(a, ctr(a, { state: 'CONTAINER_EXITED', exitCode: 143, reason: 'Error' }));
  book.set(b, ctr(b, { state: 'CONTAINER_EXITED', exitCode: 0, reason: 'Completed' }));
  const done = obs.requestStop({ containerId: 'aaaa' });
  obs.published('CONTAINER_STOPPED_EVENT', a, POD);
  done();
  const donePod = obs.requestStop({ podId: POD });
  obs.published('CONTAINER_STOPPED_EVENT', b, POD);
  donePod();
  assert.deepEqual(exitLines(), []);
  assert.deepEqual(await series(registry, 'sandlot_container_exits_total'), [
    '{"handler":"runc","reason":"Error","requested":"true"} 1',
    '{"handler":"runc","reason":"Completed","requested":"true"} 1',
  ]);
  // Once the stop call is over, an exit is on its own again (and a zero exit is info).
  obs.published('CONTAINER_STOPPED_EVENT', b, POD);
  assert.equal(exitLines().length, 1);
  assert.equal(exitLines()[0].level, 30);
});

test('exits found during recovery are counted for the summary and marked whileDaemonDown', () => {
  const { book, obs, exitLines } = setup();
  const a = 'a'.repeat(64);
  book.set(a, ctr(a, { state: 'CONTAINER_EXITED', exitCode: 7, reason: 'Error' }));
  obs.beginRecovery();
  obs.published('CONTAINER_STOPPED_EVENT', a, POD);
  assert.equal(obs.endRecovery(), 1);
  assert.equal(exitLines()[0].whileDaemonDown, true);
  obs.published('CONTAINER_STOPPED_EVENT', a, POD);
  assert.equal(exitLines()[1].whileDaemonDown, undefined);
});

test('pods and containers by state are read from the books at each scrape', async () => {
  const { book, pods, registry } = setup();
  book.set('a', ctr('a'));
  book.set('b', ctr('b', { state: 'CONTAINER_EXITED' }));
  book.set('c', ctr('c', { handler: 'runsc' }));
  pods.push({ state: 'SANDBOX_NOTREADY', handler: 'runsc' });
  const text = await registry.metrics();
  assert.match(text, /^sandlot_containers\{state="CONTAINER_RUNNING",handler="runc"\} 1$/m);
  assert.match(text, /^sandlot_containers\{state="CONTAINER_EXITED",handler="runc"\} 1$/m);
  assert.match(text, /^sandlot_containers\{state="CONTAINER_RUNNING",handler="runsc"\} 1$/m);
  assert.match(text, /^sandlot_pod_sandboxes\{state="SANDBOX_NOTREADY",handler="runsc"\} 1$/m);
  book.delete('b');
  assert.doesNotMatch(await registry.metrics(), /state="CONTAINER_EXITED"/, 'a removed container leaves no series');
});
