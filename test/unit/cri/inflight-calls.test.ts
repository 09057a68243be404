// InflightCalls (src/cri/instrument.ts): what a shutdown waits for, and the count of calls
// begun that the daemon's idle trim compares between two looks (src/daemon.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InflightCalls } from '../../../src/cri/instrument.js';

test('InflightCalls counts calls in flight and calls begun; idle() resolves when the last one ends', async () => {
  const calls = new InflightCalls();
  assert.equal(calls.started, 0);
  calls.begin();
  calls.begin();
  assert.equal(calls.size, 2);
  let idle = false;
  const waiting = calls.idle().then(() => (idle = true));
  calls.end();
  await Promise.resolve();
  assert.equal(idle, false);
  calls.end();
  await waiting;
  assert.equal(calls.size, 0);
  assert.equal(calls.started, 2, 'calls begun stay counted after they end');
});
