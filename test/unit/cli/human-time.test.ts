import { test } from 'node:test';
import assert from 'node:assert/strict';
import { humanDuration, timeAgo } from '../../../src/cli/human-time.js';

const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;

test('durations read as crictl prints them (go-units HumanDuration)', () => {
  const cases: [number, string][] = [
    [0, 'Less than a second'],
    [999, 'Less than a second'],
    [1 * S, '1 second'],
    [45 * S, '45 seconds'],
    [60 * S, 'About a minute'],
    [119 * S, 'About a minute'],
    [2 * M, '2 minutes'],
    [59 * M, '59 minutes'],
    [60 * M, 'About an hour'],
    [89 * M, 'About an hour'],
    [3 * H, '3 hours'],
    [47 * H, '47 hours'],
    [3 * D, '3 days'],
    [20 * D, '2 weeks'],
    [90 * D, '3 months'],
    [800 * D, '2 years'],
  ];
  for (const [ms, want] of cases) assert.equal(humanDuration(ms), want, `${ms} ms`);
});

test('created_at in nanoseconds becomes "… ago"; a clock ahead of ours is now', () => {
  const now = 1_700_000_000_000;
  const ns = (ms: number): string => (BigInt(ms) * 1_000_000n).toString();
  assert.equal(timeAgo(ns(now - 2 * M), now), '2 minutes ago');
  assert.equal(timeAgo(ns(now + 5 * S), now), 'Less than a second ago');
  assert.equal(timeAgo('0', now), 'unknown');
  assert.equal(timeAgo('not a number', now), 'unknown');
});
