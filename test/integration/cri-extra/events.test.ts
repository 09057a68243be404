// GetContainerEvents through the real daemon (the kubelet's evented PLEG): a container's
// life arrives in order (created, started, stopped when the exit watcher sees it exit,
// deleted) with its pod's status and the pod's container statuses as they were at each
// event; the sandbox's own events too; two subscribers get the same; a cancelled stream
// frees its subscriber (the daemon's sandlot_container_event_subscribers gauge).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { status as GrpcStatus, type ClientReadableStream } from '@grpc/grpc-js';
import { makeContainerEnv, waitFor } from '../container/container-env.js';
import type { ResponseOutputOf } from '../../../src/cri/handler-types.js';
import type { TestDaemon } from '../../helpers/daemon.js';

/** One event as decoded: pod_sandbox_status is null for a removed pod. */
type ContainerEvent = ResponseOutputOf<'GetContainerEvents'>;

interface Subscriber {
  events: ContainerEvent[];
  ended: { code: number } | undefined;
  stream: ClientReadableStream<ContainerEvent>;
}

function subscribe(d: TestDaemon): Subscriber {
  const stream = d.runtimeStream('GetContainerEvents', {});
  const sub: Subscriber = { events: [], ended: undefined, stream };
  stream.on('data', (m: ContainerEvent) => sub.events.push(m));
  stream.on('error', (e: { code: number }) => (sub.ended = e));
  stream.on('end', () => (sub.ended ??= { code: GrpcStatus.OK }));
  return sub;
}

async function subscribers(d: TestDaemon): Promise<number> {
  const text = await (await fetch(`http://${d.metricsAddress}/metrics`)).text();
  const m = /^sandlot_container_event_subscribers (\d+)$/m.exec(text);
  if (!m) throw new Error('no sandlot_container_event_subscribers series');
  return Number(m[1]);
}

const typesOf = (evs: ContainerEvent[], id: string): string[] => evs.filter((e) => e.container_id === id).map((e) => e.container_event_type);

test(
  'GetContainerEvents: a container life in order with pod status attached, sandbox events, two subscribers, cancel frees the subscriber',
  { timeout: 240_000 },
  async (t) => {
    const env = await makeContainerEnv(t);
    const { d } = env;
    const a = subscribe(d);
    const b = subscribe(d);
    t.after(() => {
      a.stream.cancel();
      b.stream.cancel();
    });
    await waitFor('two subscribers', async () => (await subscribers(d)) === 2);

    const pod = await env.runPod('events');
    const ctr = await env.createContainer(pod, 'quick', { command: ['/bin/sh', '-c', 'sleep 1; exit 3'] });
    await d.runtime('StartContainer', { container_id: ctr });
    // Nobody stops it: the exit watcher must notice the exit and publish.
    await waitFor('the stopped event', () => typesOf(a.events, ctr).includes('CONTAINER_STOPPED_EVENT'), 60_000);
    await d.runtime('RemoveContainer', { container_id: ctr });
    await waitFor(
      'the deleted event',
      () => typesOf(a.events, ctr).includes('CONTAINER_DELETED_EVENT') && typesOf(b.events, ctr).includes('CONTAINER_DELETED_EVENT'),
    );

    const life = ['CONTAINER_CREATED_EVENT', 'CONTAINER_STARTED_EVENT', 'CONTAINER_STOPPED_EVENT', 'CONTAINER_DELETED_EVENT'];
    assert.deepEqual(typesOf(a.events, ctr), life);
    assert.deepEqual(typesOf(b.events, ctr), life, 'the second subscriber got the same');
    // The sandbox's own events come first, with its ID as container_id (as containerd's).
    assert.deepEqual(typesOf(a.events, pod), ['CONTAINER_CREATED_EVENT', 'CONTAINER_STARTED_EVENT']);
    assert.deepEqual(
      a.events.slice(0, 2).map((e) => e.container_id),
      [pod, pod],
    );

    const evs = a.events.filter((e) => e.container_id === ctr);
    for (const e of evs) {
      assert.equal(e.pod_sandbox_status?.id, pod, `${e.container_event_type} carries its pod`);
      assert.equal(e.pod_sandbox_status?.state, 'SANDBOX_READY');
      assert.equal(e.pod_sandbox_status?.metadata?.name, 'events');
      assert.ok(Number(e.created_at) > 1e18, 'created_at is Unix ns');
    }
    const stateOf = (e: ContainerEvent): string | undefined => e.containers_statuses.find((s) => s.id === ctr)?.state;
    assert.deepEqual(evs.map(stateOf), ['CONTAINER_CREATED', 'CONTAINER_RUNNING', 'CONTAINER_EXITED', undefined]);
    const stopped = evs[2].containers_statuses.find((s) => s.id === ctr);
    assert.ok(stopped, 'the stopped event lists the container');
    assert.equal(stopped.exit_code, 3);
    assert.equal(stopped.reason, 'Error');
    const ts = evs.map((e) => BigInt(e.created_at));
    assert.ok(
      ts.every((v, i) => i === 0 || v > ts[i - 1]),
      'created_at increases',
    );

    // Cancelling one stream frees its subscriber; the other keeps receiving.
    a.stream.cancel();
    await waitFor('one subscriber left', async () => (await subscribers(d)) === 1);
    await d.runtime('StopPodSandbox', { pod_sandbox_id: pod });
    await d.runtime('RemovePodSandbox', { pod_sandbox_id: pod });
    await waitFor('the pod deleted event', () => typesOf(b.events, pod).includes('CONTAINER_DELETED_EVENT'));
    assert.deepEqual(typesOf(b.events, pod), ['CONTAINER_CREATED_EVENT', 'CONTAINER_STARTED_EVENT', 'CONTAINER_STOPPED_EVENT', 'CONTAINER_DELETED_EVENT']);
    const podEvents = b.events.filter((e) => e.container_id === pod);
    assert.equal(podEvents[2].pod_sandbox_status?.state, 'SANDBOX_NOTREADY');
    assert.equal(podEvents[3].pod_sandbox_status, null, 'a removed pod has no status');
    assert.ok(!typesOf(a.events, pod).includes('CONTAINER_STOPPED_EVENT'), 'the cancelled stream got nothing more');
    assert.equal(a.ended?.code, GrpcStatus.CANCELLED);

    b.stream.cancel();
    await waitFor('no subscriber left', async () => (await subscribers(d)) === 0);
  },
);

test('GetContainerEvents streams end when the daemon stops, without holding its shutdown grace', { timeout: 120_000 }, async (t) => {
  const env = await makeContainerEnv(t);
  const sub = subscribe(env.d);
  await waitFor('the subscriber', async () => (await subscribers(env.d)) === 1);
  assert.equal(await env.d.stop(), 0);
  await waitFor('the stream ended', () => sub.ended !== undefined);
  assert.equal(sub.ended?.code, GrpcStatus.UNAVAILABLE);
  assert.doesNotMatch(env.d.stderr, /shutdown grace over/);
});
