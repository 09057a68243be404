// TrimSchedule: when the daemon gives free malloc pages back (issue 13: idle RSS, and
// within 10 % of the warm idle after pod cycles). Times are given, never waited for.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TrimSchedule } from '../../../src/util/trim-schedule.js';

const BUSY_MS = 10_000;
const MIB = 1024 * 1024;
const OPTS = { busyIntervalMs: BUSY_MS, heapShrinkBytes: 4 * MIB };
const HEAP = 30 * MIB;

test('no calls since the last trim: never trims, however long', () => {
  const s = new TrimSchedule(OPTS, { started: 3, inFlight: 0, heapBytes: HEAP }, 0);
  for (let t = 1000; t <= 60_000; t += 1000) assert.equal(s.check({ started: 3, inFlight: 0, heapBytes: HEAP }, t), false);
});

test('a burst of calls: trims at the first check that sees no new call and none in flight, once', () => {
  const s = new TrimSchedule(OPTS, { started: 0, inFlight: 0, heapBytes: HEAP }, 0);
  assert.equal(s.check({ started: 5, inFlight: 2, heapBytes: HEAP }, 1000), false, 'calls came since the previous check');
  assert.equal(s.check({ started: 5, inFlight: 1, heapBytes: HEAP }, 2000), false, 'one still in flight');
  assert.equal(s.check({ started: 5, inFlight: 0, heapBytes: HEAP }, 3000), true, 'over: no new call, none in flight');
  assert.equal(s.check({ started: 5, inFlight: 0, heapBytes: HEAP }, 4000), false, 'nothing came since that trim');
});

test('calls that never pause: trims every busyIntervalMs at a moment none is in flight', () => {
  const s = new TrimSchedule(OPTS, { started: 0, inFlight: 0, heapBytes: HEAP }, 0);
  const trims: number[] = [];
  for (let i = 1; i <= 25; i++) {
    const t = i * 1000;
    if (s.check({ started: i * 3, inFlight: i === 10 ? 1 : 0, heapBytes: HEAP }, t)) trims.push(t);
  }
  assert.deepEqual(trims, [11_000, 21_000], 'not at 10 s (a call in flight then), the next second instead');
});

test('V8 shrank its heap since the last trim (a GC after the burst): trims once, without any new call', () => {
  const s = new TrimSchedule(OPTS, { started: 0, inFlight: 0, heapBytes: 80 * MIB }, 0);
  assert.equal(s.check({ started: 0, inFlight: 0, heapBytes: 78 * MIB }, 1000), false, 'less than heapShrinkBytes');
  assert.equal(s.check({ started: 0, inFlight: 1, heapBytes: 24 * MIB }, 2000), false, 'a call in flight');
  assert.equal(s.check({ started: 1, inFlight: 0, heapBytes: 24 * MIB }, 3000), true, 'shrunk by 56 MiB');
  assert.equal(s.check({ started: 1, inFlight: 0, heapBytes: 24 * MIB }, 4000), false, 'the same heap: done');
  assert.equal(s.check({ started: 1, inFlight: 0, heapBytes: 30 * MIB }, 5000), false, 'a heap that grew is no reason');
});
