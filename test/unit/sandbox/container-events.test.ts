import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { ResourceExhaustedError, UnavailableError } from '../../../src/errors.js';
import { ContainerEventBus, type PodSnapshot } from '../../../src/sandbox/container/container-events.js';
import type { ContainerRecord } from '../../../src/sandbox/container/container.js';
import type { SandboxRecord } from '../../../src/sandbox/pod/sandbox.js';

const log = pino({ level: 'silent' });

function pod(id: string, state: SandboxRecord['state'] = 'running'): SandboxRecord {
  return { id, state } as SandboxRecord;
}

function ctr(id: string, podId: string, state: ContainerRecord['state']): ContainerRecord {
  return { id, podId, state } as ContainerRecord;
}

/** A bus over a mutable "store" the test changes between publishes. */
function makeBus(bufferSize?: number) {
  const store: { pods: Map<string, SandboxRecord>; containers: ContainerRecord[] } = { pods: new Map(), containers: [] };
  const snapshot = (podId: string): PodSnapshot => ({ pod: store.pods.get(podId), containers: store.containers.filter((c) => c.podId === podId) });
  let clock = 1_000n;
  const bus = new ContainerEventBus({ log, snapshot, now: () => clock, ...(bufferSize !== undefined ? { bufferSize } : {}) });
  return { bus, store, tick: (n = 1n) => (clock += n) };
}

test('events arrive in publish order with the pod snapshot of their moment', async () => {
  const { bus, store } = makeBus();
  const sub = bus.subscribe();
  store.pods.set('p', pod('p'));
  store.containers.push(ctr('c', 'p', 'created'));
  bus.publish('CONTAINER_CREATED_EVENT', 'c', 'p');
  store.containers[0].state = 'running';
  bus.publish('CONTAINER_STARTED_EVENT', 'c', 'p');
  store.containers[0].state = 'stopped';
  bus.publish('CONTAINER_STOPPED_EVENT', 'c', 'p');
  store.containers.length = 0;
  bus.publish('CONTAINER_DELETED_EVENT', 'c', 'p');

  const got = [await sub.next(), await sub.next(), await sub.next(), await sub.next()];
  assert.deepEqual(
    got.map((e) => e?.type),
    ['CONTAINER_CREATED_EVENT', 'CONTAINER_STARTED_EVENT', 'CONTAINER_STOPPED_EVENT', 'CONTAINER_DELETED_EVENT'],
  );
  // Each carries the containers as they were when it was published, not as they are now.
  assert.deepEqual(
    got.map((e) => e?.containers.map((c) => c.state)),
    [['created'], ['running'], ['stopped'], []],
  );
  assert.ok(got.every((e) => e?.pod?.id === 'p' && e.containerId === 'c' && e.podId === 'p'));
  sub.close();
});

test('created_at is strictly increasing even when the clock does not move', async () => {
  const { bus, store } = makeBus();
  store.pods.set('p', pod('p'));
  const sub = bus.subscribe();
  for (let i = 0; i < 3; i++) bus.publish('CONTAINER_CREATED_EVENT', `c${i}`, 'p');
  const ts = [(await sub.next())!.createdAtNs, (await sub.next())!.createdAtNs, (await sub.next())!.createdAtNs];
  assert.ok(ts[0] < ts[1] && ts[1] < ts[2], `not increasing: ${ts.join(', ')}`);
});

test('every subscriber gets every event; a removed pod gives no pod status', async () => {
  const { bus, store } = makeBus();
  const a = bus.subscribe();
  const b = bus.subscribe();
  bus.publish('CONTAINER_DELETED_EVENT', 'p', 'p'); // the pod is not in the store any more
  const [ea, eb] = [await a.next(), await b.next()];
  assert.equal(ea?.type, 'CONTAINER_DELETED_EVENT');
  assert.equal(eb?.type, 'CONTAINER_DELETED_EVENT');
  assert.equal(ea?.pod, undefined);
  assert.deepEqual(ea?.containers, []);
  assert.equal(store.pods.size, 0);
});

test('next() waits for a later publish', async () => {
  const { bus, store } = makeBus();
  store.pods.set('p', pod('p'));
  const sub = bus.subscribe();
  const pending = sub.next();
  bus.publish('CONTAINER_STARTED_EVENT', 'c', 'p');
  assert.equal((await pending)?.type, 'CONTAINER_STARTED_EVENT');
});

test('an aborted signal ends next() with undefined and unsubscribes', async () => {
  const { bus } = makeBus();
  const sub = bus.subscribe();
  assert.equal(bus.subscriberCount, 1);
  const ac = new AbortController();
  const pending = sub.next(ac.signal);
  ac.abort();
  assert.equal(await pending, undefined);
  assert.equal(bus.subscriberCount, 0);
});

test('close unsubscribes: later events are not queued for it', async () => {
  const { bus, store } = makeBus();
  store.pods.set('p', pod('p'));
  const sub = bus.subscribe();
  const other = bus.subscribe();
  sub.close();
  sub.close(); // idempotent
  assert.equal(bus.subscriberCount, 1);
  bus.publish('CONTAINER_CREATED_EVENT', 'c', 'p');
  assert.equal(sub.buffered, 0);
  assert.equal(await sub.next(), undefined);
  assert.equal((await other.next())?.type, 'CONTAINER_CREATED_EVENT');
});

test('a subscriber that falls a full buffer behind is dropped; the others go on', async () => {
  const { bus, store } = makeBus(3);
  store.pods.set('p', pod('p'));
  const slow = bus.subscribe();
  const fast = bus.subscribe();
  for (let i = 0; i < 5; i++) {
    bus.publish('CONTAINER_CREATED_EVENT', `c${i}`, 'p');
    assert.equal((await fast.next())?.containerId, `c${i}`);
  }
  assert.equal(bus.subscriberCount, 1, 'the slow one is gone');
  // It still gets what it had buffered, then the error that tells it to resubscribe.
  assert.deepEqual([(await slow.next())?.containerId, (await slow.next())?.containerId, (await slow.next())?.containerId], ['c0', 'c1', 'c2']);
  await assert.rejects(slow.next(), (e: unknown) => e instanceof ResourceExhaustedError && /fell 3 events behind/.test(e.message));
  assert.equal(slow.buffered, 0);
});

test('publishing with no subscriber takes no snapshot', () => {
  let calls = 0;
  const bus = new ContainerEventBus({ log, snapshot: () => ((calls += 1), { pod: undefined, containers: [] }) });
  bus.publish('CONTAINER_CREATED_EVENT', 'c', 'p');
  assert.equal(calls, 0);
});

test('a failing snapshot still sends the event, without statuses', async () => {
  const bus = new ContainerEventBus({
    log,
    snapshot: () => {
      throw new Error('store broken');
    },
  });
  const sub = bus.subscribe();
  bus.publish('CONTAINER_STOPPED_EVENT', 'c', 'p');
  const e = await sub.next();
  assert.equal(e?.type, 'CONTAINER_STOPPED_EVENT');
  assert.equal(e?.pod, undefined);
});

test('close() of the bus ends every subscription with UNAVAILABLE after its buffer', async () => {
  const { bus, store } = makeBus();
  store.pods.set('p', pod('p'));
  const sub = bus.subscribe();
  bus.publish('CONTAINER_CREATED_EVENT', 'c', 'p');
  const waiting = bus.subscribe();
  const pending = waiting.next();
  bus.close();
  assert.equal(bus.subscriberCount, 0);
  assert.equal((await sub.next())?.type, 'CONTAINER_CREATED_EVENT');
  await assert.rejects(sub.next(), UnavailableError);
  // One waiting in next() (subscribed after the event) is woken with the error.
  await assert.rejects(pending, UnavailableError);
});

test('bufferSize must be positive', () => {
  assert.throws(() => new ContainerEventBus({ log, snapshot: () => ({ pod: undefined, containers: [] }), bufferSize: 0 }), RangeError);
});
