// The cells (store/cell.ts) over a fake store and event sink: the one way a pod's or a
// container's record changes (S4 guard and state machine, atomic save, commit, publish).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { FailedPreconditionError, InternalError, NotFoundError } from '../../../src/errors.js';
import { KeyedMutex } from '../../../src/util/mutex.js';
import { beginCreate, Cell, commitCreated, type CellStore } from '../../../src/sandbox/store/cell.js';
import { Cleanup } from '../../../src/util/cleanup.js';
import { canChange, type LifecycleState } from '../../../src/sandbox/store/lifecycle.js';

interface Rec {
  id: string;
  podId: string;
  state: LifecycleState;
  unreadable?: string;
  note: string;
}

class FakeStore implements CellStore<Rec> {
  readonly memory = new Map<string, Rec>();
  readonly disk = new Map<string, Rec>();
  readonly writes: Rec[] = [];
  /** Errors the next writes throw, in order (undefined = succeed). */
  failures: Array<Error | undefined> = [];
  find(id: string): Rec | undefined {
    const r = this.memory.get(id);
    return r && structuredClone(r);
  }
  peek(id: string): Readonly<Rec> | undefined {
    return this.memory.get(id);
  }
  async write(rec: Rec): Promise<void> {
    await tick();
    this.writes.push(structuredClone(rec));
    const err = this.failures.shift();
    if (err) throw err;
    this.disk.set(rec.id, structuredClone(rec));
  }
  remember(rec: Rec): void {
    this.memory.set(rec.id, structuredClone(rec));
  }
  async delete(id: string): Promise<void> {
    await tick();
    this.disk.delete(id);
    this.memory.delete(id);
  }
}

function setup(state: LifecycleState = 'created', extra: Partial<Rec> = {}) {
  const store = new FakeStore();
  const rec: Rec = { id: 'c1', podId: 'p1', state, note: 'before', ...extra };
  store.memory.set(rec.id, structuredClone(rec));
  store.disk.set(rec.id, structuredClone(rec));
  const published: Array<{ type: string; id: string; podId: string; seen: Rec | undefined }> = [];
  const logged: unknown[] = [];
  const cell = new Cell<LifecycleState, Rec, string>({
    kind: 'container',
    unknownAllows: 'RemoveContainer',
    id: rec.id,
    store,
    locks: new KeyedMutex(),
    // What a listener reads when told: the record as committed at that moment.
    events: { publish: (type, id, podId) => published.push({ type, id, podId, seen: store.find(id) }) },
    podIdOf: (r) => r.podId,
    log: { error: (o: unknown) => void logged.push(o) } as never,
  });
  return { store, cell, published, logged };
}

test('S4: the one state machine allows creating→created→running→stopped (and any→stopped), nothing out of stopped or unknown', () => {
  const states: LifecycleState[] = ['creating', 'created', 'running', 'stopped', 'unknown'];
  const allowed = new Set(['creating>created', 'creating>stopped', 'created>running', 'created>stopped', 'running>stopped']);
  for (const from of states) {
    for (const to of states) {
      assert.equal(canChange(from, to), from === to || allowed.has(`${from}>${to}`), `${from} → ${to}`);
    }
  }
});

test('S4: update changes the state, saves the draft, commits it to memory, then publishes', async () => {
  const { store, cell, published } = setup('created');
  const out = await cell.update(
    'start',
    ['created'],
    (d) => {
      d.note = 'started';
      return 42;
    },
    { to: 'running', event: 'CONTAINER_STARTED_EVENT' },
  );
  assert.equal(out, 42);
  assert.deepEqual(store.disk.get('c1'), { id: 'c1', podId: 'p1', state: 'running', note: 'started' });
  assert.deepEqual(store.memory.get('c1'), store.disk.get('c1'));
  assert.equal(published.length, 1);
  assert.deepEqual({ ...published[0], seen: published[0].seen?.state }, { type: 'CONTAINER_STARTED_EVENT', id: 'c1', podId: 'p1', seen: 'running' });
});

test('S4: an update through a state on the way (via) saves once, ends in `to` and publishes both events in order', async () => {
  const { store, cell, published } = setup('creating');
  await cell.update('run', ['creating'], (d) => void (d.note = 'pid 7'), {
    via: 'created',
    viaEvent: 'CONTAINER_CREATED_EVENT',
    to: 'running',
    event: 'CONTAINER_STARTED_EVENT',
  });
  assert.equal(store.writes.length, 1);
  assert.deepEqual(store.disk.get('c1'), { id: 'c1', podId: 'p1', state: 'running', note: 'pid 7' });
  assert.deepEqual(
    published.map((p) => [p.type, p.seen?.state]),
    [
      ['CONTAINER_CREATED_EVENT', 'running'],
      ['CONTAINER_STARTED_EVENT', 'running'],
    ],
  );
});

test('S4: a via step the state machine forbids is refused before any write', async () => {
  const { store, cell, published } = setup('creating');
  await assert.rejects(
    cell.update('run', ['creating'], () => undefined, { via: 'running', to: 'created' }),
    InternalError,
  );
  assert.deepEqual(store.writes, []);
  assert.deepEqual(published, []);
});

test('S4: an action in a state it does not allow is FAILED_PRECONDITION naming the object and state; nothing is written', async () => {
  const { store, cell, published } = setup('stopped');
  let ran = false;
  await assert.rejects(
    cell.update('start', ['created'], () => void (ran = true), { to: 'running', event: 'CONTAINER_STARTED_EVENT' }),
    (e: unknown) => e instanceof FailedPreconditionError && e.message === 'cannot start container "c1" in state stopped',
  );
  assert.equal(ran, false);
  assert.deepEqual(store.writes, []);
  assert.deepEqual(published, []);
});

test('S4: an unknown record (unreadable meta.json) refuses with why, and says what still acts on it', async () => {
  const { cell } = setup('unknown', { unreadable: 'meta.json: Unexpected end of JSON input' });
  await assert.rejects(
    cell.update('start', ['created'], () => undefined),
    (e: unknown) =>
      e instanceof FailedPreconditionError &&
      e.message.includes('"c1"') &&
      e.message.includes('record is unreadable (meta.json: Unexpected end of JSON input)') &&
      e.message.includes('only RemoveContainer'),
  );
});

test('an illegal transition is a bug (InternalError); the draft is not saved', async () => {
  const { store, cell, published } = setup('running');
  await assert.rejects(
    cell.update('restart', ['running'], () => undefined, { to: 'created' }),
    InternalError,
  );
  assert.deepEqual(store.writes, []);
  assert.deepEqual(published, []);
  assert.equal(store.memory.get('c1')!.state, 'running');
});

test('a failing fn changes nothing: its error is thrown, no write, no event', async () => {
  const { store, cell, published } = setup('created');
  const boom = new Error('runtime said no');
  await assert.rejects(
    cell.update(
      'update',
      ['created'],
      (d) => {
        d.note = 'half';
        throw boom;
      },
      { event: 'X' },
    ),
    (e: unknown) => e === boom,
  );
  assert.deepEqual(store.writes, []);
  assert.equal(store.memory.get('c1')!.note, 'before');
  assert.deepEqual(published, []);
});

test('a failed save is rolled back (the previous record written again) and throws the ORIGINAL error, even when the rollback fails too', async () => {
  const { store, cell, published, logged } = setup('created');
  const original = new InternalError('saving metadata: ENOSPC');
  store.failures = [original, new Error('EIO during rollback')];
  await assert.rejects(
    cell.update('start', ['created'], (d) => void (d.note = 'started'), { to: 'running', event: 'CONTAINER_STARTED_EVENT' }),
    (e: unknown) => e === original,
  );
  assert.deepEqual(
    store.writes.map((w) => [w.state, w.note]),
    [
      ['running', 'started'],
      ['created', 'before'],
    ],
    'the draft, then the rollback',
  );
  assert.deepEqual(store.memory.get('c1'), { id: 'c1', podId: 'p1', state: 'created', note: 'before' }, 'memory keeps the committed record');
  assert.deepEqual(published, [], 'nothing is published for a change that did not happen');
  assert.equal(logged.length, 1, 'the rollback failure is logged');

  // A rollback that works restores the disk too.
  store.failures = [new Error('ENOSPC')];
  await assert.rejects(
    cell.update('start', ['created'], () => undefined, { to: 'running' }),
    /ENOSPC/,
  );
  assert.deepEqual(store.disk.get('c1'), { id: 'c1', podId: 'p1', state: 'created', note: 'before' });
});

test('STYLE §7: concurrent updates of one cell serialize: each sees the committed result of the one before', async () => {
  const { store, cell } = setup('running', { note: '' });
  let active = 0;
  let maxActive = 0;
  const append = (n: number) =>
    cell.update('note', ['running'], async (d) => {
      active += 1;
      maxActive = Math.max(maxActive, active);
      await tick();
      d.note += String(n);
      active -= 1;
    });
  await Promise.all([append(1), append(2), append(3), append(4)]);
  assert.equal(maxActive, 1);
  assert.equal(store.memory.get('c1')!.note, '1234', 'no update was lost');
  assert.equal(store.disk.get('c1')!.note, '1234');
});

test('a cell whose record is gone is NotFound', async () => {
  const { store, cell } = setup('created');
  store.memory.delete('c1');
  assert.throws(() => cell.record, NotFoundError);
  await assert.rejects(
    cell.update('start', ['created'], () => undefined),
    NotFoundError,
  );
});

test('S5: create writes the new record before any side effect; a second create of the same id is a bug', async () => {
  const { store, cell } = setup('created');
  store.memory.delete('c1');
  store.disk.delete('c1');
  await cell.create({ id: 'c1', podId: 'p1', state: 'creating', note: 'new' });
  assert.deepEqual(store.disk.get('c1'), { id: 'c1', podId: 'p1', state: 'creating', note: 'new' });
  assert.deepEqual(store.memory.get('c1'), store.disk.get('c1'));
  await assert.rejects(cell.create({ id: 'c1', podId: 'p1', state: 'creating', note: 'again' }), InternalError);
});

test("the create paths: beginCreate registers the record's removal as the last undo; commitCreated commits the monitor's pids and publishes created", async () => {
  interface Made extends Rec {
    pid: number;
    conmonPid: number;
  }
  const store = new FakeStore() as unknown as FakeStore & CellStore<Made>;
  const published: string[] = [];
  const cell = new Cell<LifecycleState, Made, string>({
    kind: 'container',
    unknownAllows: 'RemoveContainer',
    id: 'c2',
    store,
    locks: new KeyedMutex(),
    events: { publish: (type) => void published.push(type) },
    podIdOf: (r) => r.podId,
    log: { error: () => undefined } as never,
  });
  const cleanup = new Cleanup();
  await beginCreate(cell, { id: 'c2', podId: 'p1', state: 'creating', note: '', pid: 0, conmonPid: 0 }, cleanup);
  // An undo registered later reads the record committed by then (the pids), not a stale copy.
  const undone: number[] = [];
  cleanup.add('deleting the process', () => void undone.push(cell.record.conmonPid));
  await cell.locked(() => commitCreated(cell, 'create', { pid: 7, conmonPid: 8 }, 'CONTAINER_CREATED_EVENT'));
  assert.deepEqual([cell.record.state, cell.record.pid, cell.record.conmonPid], ['created', 7, 8]);
  assert.deepEqual(published, ['CONTAINER_CREATED_EVENT']);
  await cleanup.undo();
  assert.deepEqual(undone, [8]);
  assert.equal(store.disk.has('c2'), false, 'the record went last');
  assert.equal(cell.find(), undefined);
});

test('an unknown record is kept in memory only: its changes are never written over its unreadable meta.json', async () => {
  const { store, cell } = setup('created');
  store.memory.delete('c1');
  assert.throws(() => cell.keepUnreadable({ id: 'c1', podId: 'p1', state: 'created', note: '' }), InternalError);
  cell.keepUnreadable({ id: 'c1', podId: 'p1', state: 'unknown', unreadable: 'bad json', note: '' });
  const writes = store.writes.length;
  await cell.update('stop', ['unknown'], (d) => void (d.note = 'stopped'));
  assert.equal(store.writes.length, writes, 'nothing written');
  assert.equal(store.memory.get('c1')!.note, 'stopped');
});

test('remove takes the record off disk and out of memory, then publishes; removing a gone record succeeds quietly', async () => {
  const { store, cell, published } = setup('stopped');
  await cell.remove('CONTAINER_DELETED_EVENT');
  assert.equal(store.disk.has('c1'), false);
  assert.equal(store.memory.has('c1'), false);
  assert.deepEqual(
    published.map((p) => [p.type, p.podId, p.seen]),
    [['CONTAINER_DELETED_EVENT', 'p1', undefined]],
  );
  await cell.remove('CONTAINER_DELETED_EVENT');
  assert.equal(published.length, 1);
});
