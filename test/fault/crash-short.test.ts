// The short crash run (issue 11): ≥ 30 SIGKILL points over every mutating RPC, runc and
// runsc, with a fixed seed; the long one is test/fault/crash-long.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCrashHarness } from './harness.js';

test('S5/S6/S7: 30 daemon kills spread over every mutating RPC (runc and runsc) lose nothing and leave nothing', { timeout: 600_000 }, async (t) => {
  const fig = await runCrashHarness(t, { seed: 20261204, points: 30, log: (s) => t.diagnostic(s) });
  t.diagnostic(JSON.stringify({ ...fig, problems: undefined }));
  assert.ok(fig.points >= 30);
  assert.deepEqual(fig.problems, []);
});
