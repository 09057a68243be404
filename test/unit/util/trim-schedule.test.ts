// TrimSchedule: when the daemon gives free malloc pages back (issue 13: idle RSS, and
// within 10 % of the warm idle after pod cycles). Times are given, never waited for.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TrimSchedule } from '../../../src/util/trim-schedule.js';

const BUSY_MS = 10_000;

test('no calls since the last trim: never trims, however long', () => {
  const s = new TrimSchedule({ busyIntervalMs: BUSY_MS }, { started: 3, inFlight: 0 }, 0);
  for (let t = 1000; t <= 60_000; t += 1000) assert.equal(s.check({ started: 3, inFlight: 0 }, t), false);
});

test('a burst of calls: trims at the first check that sees no new call and none in flight, once', () => {
  const s = new TrimSchedule({ busyIntervalMs: BUSY_MS }, { started: 0, inFlight: 0 }, 0);
  assert.equal(s.check({ started: 5, inFlight: 2 }, 1000), false, 'calls came since the previous check');
  assert.equal(s.check({ started: 5, inFlight: 1 }, 2000), false, 'one still in flight');
  assert.equal(s.check({ started: 5, inFlight: 0 }, 3000), true, 'over: no new call, none in flight');
  assert.equal(s.check({ started: 5, inFlight: 0 }, 4000), false, 'nothing came since that trim');
});

test('calls that never pause: trims every busyIntervalMs at a moment none is in flight', () => {
  const s = new TrimSchedule({ busyIntervalMs: BUSY_MS }, { started: 0, inFlight: 0 }, 0);
  const trims: number[] = [];
  for (let i = 1; i <= 25; i++) {
    const t = i * 1000;
    if (s.check({ started: i * 3, inFlight: i === 10 ? 1 : 0 }, t)) trims.push(t);
  }
  assert.deepEqual(trims, [11_000, 21_000], 'not at 10 s (a call in flight then), the next second instead');
});
