// TrimSchedule: when the daemon gives free malloc pages back and collects V8's garbage
// (issue 13: idle RSS, and within 10 % of the warm idle after pod cycles). Times are
// given, never waited for.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TrimSchedule, type CallCounters } from '../../../src/util/trim-schedule.js';

const BUSY_MS = 10_000;
const MIB = 1024 * 1024;
const OPTS = { busyIntervalMs: BUSY_MS, heapShrinkBytes: 4 * MIB, collectGrowthBytes: 4 * MIB };
const HEAP = 30 * MIB;
const USED = 20 * MIB;

function at(started: number, inFlight: number, heapBytes = HEAP, heapUsedBytes = USED): CallCounters {
  return { started, inFlight, heapBytes, heapUsedBytes };
}

test('no calls since the last trim: never trims, however long', () => {
  const s = new TrimSchedule(OPTS, at(3, 0), 0);
  for (let t = 1000; t <= 60_000; t += 1000) assert.equal(s.check(at(3, 0), t), 'none');
});

test('a burst of calls: trims at the first check that sees no new call and none in flight, once', () => {
  const s = new TrimSchedule(OPTS, at(0, 0), 0);
  assert.equal(s.check(at(5, 2), 1000), 'none', 'calls came since the previous check');
  assert.equal(s.check(at(5, 1), 2000), 'none', 'one still in flight');
  assert.equal(s.check(at(5, 0), 3000), 'trim', 'over: no new call, none in flight');
  assert.equal(s.check(at(5, 0), 4000), 'none', 'nothing came since that trim');
});

test('calls that never pause: trims every busyIntervalMs at a moment none is in flight', () => {
  const s = new TrimSchedule(OPTS, at(0, 0), 0);
  const trims: number[] = [];
  for (let i = 1; i <= 25; i++) {
    const t = i * 1000;
    if (s.check(at(i * 3, i === 10 ? 1 : 0), t) === 'trim') trims.push(t);
  }
  assert.deepEqual(trims, [11_000, 21_000], 'not at 10 s (a call in flight then), the next second instead');
});

test('V8 shrank its heap since the last trim (a GC after the burst): trims once, without any new call', () => {
  const s = new TrimSchedule(OPTS, at(0, 0, 80 * MIB), 0);
  assert.equal(s.check(at(0, 0, 78 * MIB), 1000), 'none', 'less than heapShrinkBytes');
  assert.equal(s.check(at(0, 1, 24 * MIB), 2000), 'none', 'a call in flight');
  assert.equal(s.check(at(1, 0, 24 * MIB), 3000), 'trim', 'shrunk by 56 MiB');
  assert.equal(s.check(at(1, 0, 24 * MIB), 4000), 'none', 'the same heap: done');
  assert.equal(s.check(at(1, 0, 30 * MIB), 5000), 'none', 'a heap that grew is no reason');
});

test('a burst over that grew the used heap by collectGrowthBytes: collects once, then trims only', () => {
  const s = new TrimSchedule(OPTS, at(0, 0), 0);
  assert.equal(s.check(at(40, 0, 40 * MIB, USED + 9 * MIB), 1000), 'none', 'calls came since the previous check');
  assert.equal(s.check(at(40, 0, 40 * MIB, USED + 9 * MIB), 2000), 'collect', 'over, and 9 MiB more in use');
  s.collected({ heapBytes: 38 * MIB, heapUsedBytes: USED + 1 * MIB });
  assert.equal(s.check(at(40, 0, 38 * MIB, USED + 1 * MIB), 3000), 'none', 'nothing came since');
  assert.equal(s.check(at(42, 0, 38 * MIB, USED + 3 * MIB), 4000), 'none', 'calls came since the previous check');
  assert.equal(s.check(at(42, 0, 38 * MIB, USED + 3 * MIB), 5000), 'trim', 'grown by 2 MiB since the collection: a trim');
});

test('a burst over that left the committed heap collectGrowthBytes bigger, its used heap not: collects', () => {
  // V8 collected by itself late in the burst: little more in use, the burst's pages still held.
  const s = new TrimSchedule(OPTS, at(0, 0), 0);
  assert.equal(s.check(at(40, 0, HEAP + 9 * MIB, USED + 1 * MIB), 1000), 'none', 'calls came since the previous check');
  assert.equal(s.check(at(40, 0, HEAP + 9 * MIB, USED + 1 * MIB), 2000), 'collect', 'over, and 9 MiB more committed');
  s.collected({ heapBytes: HEAP + 1 * MIB, heapUsedBytes: USED });
  assert.equal(s.check(at(42, 0, HEAP + 3 * MIB, USED), 3000), 'none', 'calls came since the previous check');
  assert.equal(s.check(at(42, 0, HEAP + 3 * MIB, USED), 4000), 'trim', 'committed 2 MiB more than after the collection: a trim');
});

test('a busy trim in the last second of a burst: the collection still comes when it is over', () => {
  const s = new TrimSchedule(OPTS, at(0, 0), 0);
  for (let i = 1; i < 10; i++) assert.equal(s.check(at(i * 3, 0, HEAP, USED + i * MIB), i * 1000), 'none', `calls at ${i} s`);
  assert.equal(s.check(at(30, 0, HEAP, USED + 10 * MIB), 10_000), 'trim', 'busyIntervalMs passed: a trim while calls come');
  assert.equal(s.check(at(30, 0, HEAP, USED + 10 * MIB), 11_000), 'collect', 'no call since: over, and 10 MiB more in use');
});

test('calls that never pause: never collects, however much the heap grew (only when a burst is over)', () => {
  const s = new TrimSchedule(OPTS, at(0, 0), 0);
  for (let i = 1; i <= 25; i++) assert.notEqual(s.check(at(i * 3, 0, HEAP, USED + i * MIB), i * 1000), 'collect');
});

test('after a burst: follow-up trims at each settle delay while no call comes, none after the last', () => {
  const s = new TrimSchedule({ ...OPTS, settleTrimsMs: [2000, 5000] }, at(0, 0), 0);
  assert.equal(s.check(at(5, 0), 1000), 'none', 'calls came since the previous check');
  assert.equal(s.check(at(5, 0), 2000), 'trim', 'the burst is over');
  const actions = [3000, 4000, 5000, 6000, 7000, 8000, 30_000].map((t) => [t, s.check(at(5, 0), t)]);
  assert.deepEqual(actions, [
    [3000, 'none'],
    [4000, 'trim'],
    [5000, 'none'],
    [6000, 'none'],
    [7000, 'trim'],
    [8000, 'none'],
    [30_000, 'none'],
  ]);
});

test('a call before a follow-up is due: no follow-up then; the trim that ends the new burst starts them again', () => {
  const s = new TrimSchedule({ ...OPTS, settleTrimsMs: [2000] }, at(0, 0), 0);
  assert.equal(s.check(at(5, 0), 1000), 'none');
  assert.equal(s.check(at(5, 0), 2000), 'trim', 'the burst is over');
  assert.equal(s.check(at(6, 1), 3000), 'none', 'a call in flight');
  assert.equal(s.check(at(6, 0), 4000), 'trim', 'that call is over: its trim');
  assert.equal(s.check(at(6, 0), 5000), 'none');
  assert.equal(s.check(at(6, 0), 6000), 'trim', 'the follow-up of the new trim');
  assert.equal(s.check(at(6, 0), 9000), 'none');
});

test('a trim for a heap that shrank, without calls, starts no follow-ups', () => {
  const s = new TrimSchedule({ ...OPTS, settleTrimsMs: [2000] }, at(0, 0, 80 * MIB), 0);
  assert.equal(s.check(at(0, 0, 80 * MIB), 2000), 'trim', "start-up's follow-up");
  assert.equal(s.check(at(0, 0, 24 * MIB), 3000), 'trim', 'shrunk');
  for (let t = 4000; t <= 10_000; t += 1000) assert.equal(s.check(at(0, 0, 24 * MIB), t), 'none');
});

test("start-up's trim is followed up like a burst's while no call comes", () => {
  const s = new TrimSchedule({ ...OPTS, settleTrimsMs: [2000] }, at(0, 0), 0);
  assert.equal(s.check(at(0, 0), 1000), 'none');
  assert.equal(s.check(at(0, 0), 2000), 'trim');
  assert.equal(s.check(at(0, 0), 3000), 'none');
});
