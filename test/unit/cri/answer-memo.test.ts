// AnswerMemo and the message serializer (src/cri/answer-memo.ts, message-encoder.ts):
// List answers built from frozen records go out as bytes encoded once, and decode to
// exactly what the plain path (fromObject + encode) gives; a changed record is a new
// object, so its answer and bytes are new.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AnswerMemo, isMemoizedAnswer } from '../../../src/cri/answer-memo.js';
import { framedSerializer, int64 } from '../../../src/cri/message-encoder.js';
import { loadCriServices } from '../../../src/cri/proto.js';

interface FakeRecord {
  id: string;
  name: string;
  state: 'running' | 'stopped';
  createdAt: string;
  labels: Record<string, string>;
}

function record(id: string, state: FakeRecord['state'] = 'running'): FakeRecord {
  return Object.freeze({ id, name: `pod-${id}`, state, createdAt: '1733560000123456789', labels: Object.freeze({ app: id }) });
}

function podSandbox(r: FakeRecord) {
  return {
    id: r.id,
    metadata: { name: r.name, uid: `uid-${r.id}`, namespace: 'ns', attempt: 1 },
    state: r.state === 'running' ? 'SANDBOX_READY' : 'SANDBOX_NOTREADY',
    created_at: r.createdAt,
    labels: r.labels,
    annotations: { 'a.example/b': 'c' },
    runtime_handler: 'runc',
  };
}

const list = loadCriServices().RuntimeService.ListPodSandbox;
const status = loadCriServices().RuntimeService.PodSandboxStatus;

test('a List answer of memoized messages is the same bytes and decodes to the same answer as the plain one', () => {
  const memo = new AnswerMemo(podSandbox);
  const recs = ['a1', 'b2', 'c3'].map((id) => record(id));
  const memoized = { items: recs.map((r) => memo.of(r)) };
  const plain = { items: recs.map(podSandbox) };
  assert.ok(memoized.items.every(isMemoizedAnswer));
  assert.ok(!plain.items.some(isMemoizedAnswer));
  const a = list.responseSerialize(memoized);
  const b = list.responseSerialize(plain);
  assert.ok(a.equals(b), 'the only field is the list: same bytes in the same order');
  assert.deepEqual(list.responseDeserialize(a), list.responseDeserialize(b));
  // Sent again (bytes kept) it is still the same.
  assert.ok(list.responseSerialize(memoized).equals(b));
  const decoded = list.responseDeserialize(a) as { items: Array<{ id: string; created_at: string; state: string; labels: object }> };
  assert.deepEqual(
    decoded.items.map((p) => [p.id, p.created_at, p.state, p.labels]),
    recs.map((r) => [r.id, r.createdAt, 'SANDBOX_READY', { app: r.id }]),
  );
});

test('the memo answers the same frozen message for the same record, a new one for a changed record', () => {
  const memo = new AnswerMemo(podSandbox);
  const r1 = record('a1');
  const m1 = memo.of(r1);
  assert.equal(memo.of(r1), m1);
  assert.ok(Object.isFrozen(m1) && Object.isFrozen(m1.metadata));
  // The store replaces a changed record with a new frozen copy: its answer and bytes follow.
  const before = list.responseSerialize({ items: [m1] });
  const r2 = Object.freeze({ ...r1, state: 'stopped' as const });
  const m2 = memo.of(r2);
  assert.notEqual(m2, m1);
  const after = list.responseDeserialize(list.responseSerialize({ items: [m2] })) as { items: Array<{ state: string }> };
  assert.equal(after.items[0].state, 'SANDBOX_NOTREADY');
  assert.equal((list.responseDeserialize(before) as { items: Array<{ state: string }> }).items[0].state, 'SANDBOX_READY');
});

test('a record that is not frozen (a mutable copy) gets a fresh message every time, never kept bytes', () => {
  const memo = new AnswerMemo(podSandbox);
  const r = { ...record('a1'), labels: { app: 'a1' } };
  const m = memo.of(r);
  assert.ok(!isMemoizedAnswer(m));
  assert.notEqual(memo.of(r), m);
  r.state = 'stopped';
  const decoded = list.responseDeserialize(list.responseSerialize({ items: [memo.of(r)] })) as { items: Array<{ state: string }> };
  assert.equal(decoded.items[0].state, 'SANDBOX_NOTREADY');
});

test('an answer mixing a memoized message with plain fields decodes equal to the plain one', () => {
  const memo = new AnswerMemo((r: FakeRecord) => ({
    id: r.id,
    state: 'SANDBOX_READY',
    created_at: r.createdAt,
    labels: r.labels,
    network: { ip: '10.0.0.2', additional_ips: [] },
  }));
  const r = record('a1');
  const rest = { info: { k: 'v' }, containers_statuses: [{ id: 'c1', state: 'CONTAINER_RUNNING' }], timestamp: '1733560000999999999' };
  const mixed = status.responseSerialize({ status: memo.of(r), ...rest });
  const plain = status.responseSerialize({ status: { ...memo.of(r) }, ...rest });
  assert.deepEqual(status.responseDeserialize(mixed), status.responseDeserialize(plain));
});

test('a list that mixes memoized and plain messages takes the plain path, and empty lists stay empty', () => {
  const memo = new AnswerMemo(podSandbox);
  const items = [memo.of(record('a1')), podSandbox(record('b2'))];
  assert.deepEqual(
    list.responseDeserialize(list.responseSerialize({ items })),
    list.responseDeserialize(list.responseSerialize({ items: items.map((m) => ({ ...m })) })),
  );
  assert.deepEqual(list.responseDeserialize(list.responseSerialize({ items: [] })), { items: [] });
});

test('the serializer refuses an array, as proto-loader did', () => {
  assert.throws(() => list.responseSerialize([]), /expected object with ListPodSandboxResponse structure, got array/);
});

test('a List sent again with the same answers is the same bytes; with one answer changed, added or gone it is the new list', () => {
  const memo = new AnswerMemo(podSandbox);
  const recs = ['a1', 'b2', 'c3'].map((id) => record(id));
  const plainOf = (rs: FakeRecord[]) => list.responseSerialize({ items: rs.map(podSandbox) });
  const first = list.responseSerialize({ items: recs.map((r) => memo.of(r)) });
  assert.ok(first.equals(plainOf(recs)));
  // A new array of the same answers (each List call makes its own): the bytes kept from the last one.
  assert.ok(list.responseSerialize({ items: recs.map((r) => memo.of(r)) }).equals(first));
  const changed = [recs[0], Object.freeze({ ...recs[1], state: 'stopped' as const }), recs[2]];
  assert.ok(list.responseSerialize({ items: changed.map((r) => memo.of(r)) }).equals(plainOf(changed)));
  const added = [...changed, record('d4')];
  assert.ok(list.responseSerialize({ items: added.map((r) => memo.of(r)) }).equals(plainOf(added)));
  const gone = added.slice(1);
  assert.ok(list.responseSerialize({ items: gone.map((r) => memo.of(r)) }).equals(plainOf(gone)));
  // Back to an earlier list: its answers' bytes are still kept, and the field is the earlier list's.
  assert.ok(list.responseSerialize({ items: recs.map((r) => memo.of(r)) }).equals(first));
});

test('the framed serializer sends what the serializer does behind an uncompressed gRPC prefix, for lists, statuses and plain answers', () => {
  const prefixed = (b: Buffer) => {
    const p = Buffer.alloc(5);
    p.writeUInt32BE(b.length, 1);
    return Buffer.concat([p, b]);
  };
  const framedList = framedSerializer(list.responseSerialize as (v: object) => Buffer);
  const framedStatus = framedSerializer(status.responseSerialize as (v: object) => Buffer);
  const memo = new AnswerMemo(podSandbox);
  const recs = ['a1', 'b2'].map((id) => record(id));
  const memoized = () => ({ items: recs.map((r) => memo.of(r)) });
  const once = framedList(memoized());
  assert.ok(once.equals(prefixed(list.responseSerialize({ items: recs.map(podSandbox) }))));
  // The same answers again (the usual relist): the same frame.
  assert.ok(framedList(memoized()).equals(once));
  // One answer alone, a status with plain fields beside it, a plain list, an empty one.
  assert.ok(framedList({ items: [memo.of(recs[0])] }).equals(prefixed(list.responseSerialize({ items: [podSandbox(recs[0])] }))));
  const statusMemo = new AnswerMemo((r: FakeRecord) => ({ id: r.id, state: 'SANDBOX_READY', created_at: r.createdAt, labels: r.labels }));
  const answer = { status: statusMemo.of(recs[0]), info: { k: 'v' }, timestamp: '1733560000999999999' };
  assert.ok(framedStatus(answer).equals(prefixed(status.responseSerialize(answer))));
  assert.deepEqual(
    status.responseDeserialize(framedStatus(answer).subarray(5)),
    status.responseDeserialize(status.responseSerialize({ ...answer, status: { ...answer.status } })),
  );
  assert.ok(framedList({ items: recs.map(podSandbox) }).equals(prefixed(list.responseSerialize({ items: recs.map(podSandbox) }))));
  assert.ok(framedList({ items: [] }).equals(Buffer.alloc(5)));
  // A serializer this module did not make is framed around its output.
  const other = (v: object) => Buffer.from(JSON.stringify(v));
  assert.ok(framedSerializer(other)({ a: 1 }).equals(prefixed(Buffer.from('{"a":1}'))));
});

test('an int64 given as int64() is the same bytes as its decimal string', () => {
  for (const ns of [0n, 1n, 4_294_967_295n, 4_294_967_296n, 1_765_000_000_123_456_789n, 9_223_372_036_854_775_807n, -1n]) {
    const a = status.responseSerialize({ info: {}, timestamp: int64(ns) });
    const b = status.responseSerialize({ info: {}, timestamp: ns.toString() });
    assert.ok(a.equals(b), `${ns}`);
  }
});

test('list() answers the same frozen list while the records are the same objects, a new one when one changed, none kept for records not frozen', () => {
  const memo = new AnswerMemo(podSandbox);
  const recs = ['a1', 'b2', 'c3'].map((id) => record(id));
  const first = memo.list([...recs]);
  assert.ok(Object.isFrozen(first));
  assert.equal(memo.list([...recs]), first);
  assert.ok(list.responseSerialize({ items: first }).equals(list.responseSerialize({ items: recs.map(podSandbox) })));
  const changed = [recs[0], Object.freeze({ ...recs[1], state: 'stopped' as const }), recs[2]];
  const second = memo.list(changed);
  assert.notEqual(second, first);
  assert.equal(second[0], first[0]);
  assert.ok(list.responseSerialize({ items: second }).equals(list.responseSerialize({ items: changed.map(podSandbox) })));
  assert.deepEqual(memo.list([]), []);
  const loose = [{ ...record('d4'), labels: { app: 'd4' } }];
  const a = memo.list(loose);
  assert.ok(!Object.isFrozen(a) && a.every((m) => !isMemoizedAnswer(m)));
  loose[0].state = 'stopped';
  assert.equal(memo.list(loose)[0].state, 'SANDBOX_NOTREADY');
});
