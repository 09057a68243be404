// Pure parts of the image verbs: crictl-style sizes and rows, and the progress throttle.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { humanSize, imageRows } from '../../../src/cli/verbs/image.js';
import { PROGRESS_INTERVAL_MS, ProgressThrottle } from '../../../src/cri/sandlot-images.js';

test('sizes print like crictl (decimal units, 3 significant digits)', () => {
  assert.equal(humanSize(0), '0B');
  assert.equal(humanSize(999), '999B');
  assert.equal(humanSize(1000), '1kB');
  assert.equal(humanSize(1_240_000), '1.24MB');
  assert.equal(humanSize(209_715_200), '210MB');
  assert.equal(humanSize(4_300_000_000), '4.3GB');
});

test('one row per repo tag, <none> where an image has no tag, registry ports kept, sorted', () => {
  const id = `sha256:${'ab'.repeat(32)}`;
  const rows = imageRows([
    { id, size: '1240000', repo_tags: ['127.0.0.1:5000/team/app:v1', 'docker.io/library/busybox:latest'], repo_digests: [] },
    { id: `sha256:${'cd'.repeat(32)}`, size: '10', repo_tags: [], repo_digests: [`127.0.0.1:5000/team/old@sha256:${'ef'.repeat(32)}`] },
    { id: `sha256:${'01'.repeat(32)}`, size: '10', repo_tags: [], repo_digests: [] },
  ]);
  assert.deepEqual(rows, [
    ['127.0.0.1:5000/team/app', 'v1', 'abababababab', '1.24MB'],
    ['127.0.0.1:5000/team/old', '<none>', 'cdcdcdcdcdcd', '10B'],
    ['docker.io/library/busybox', 'latest', 'abababababab', '1.24MB'],
    ['<none>', '<none>', '010101010101', '10B'],
  ]);
});

test('progress of a layer passes at most once per interval per phase; phase changes and completion always pass', () => {
  let now = 1_000;
  const th = new ProgressThrottle(() => now);
  const ev = (bytes: number, phase: 'downloading' | 'unpacking' | 'done' = 'downloading') => th.admit({ layer: 'L', bytes, total: 100, phase });
  assert.equal(ev(1), true);
  assert.equal(ev(2), false);
  assert.equal(th.admit({ layer: 'M', bytes: 1, total: 100, phase: 'downloading' }), true, 'layers are throttled apart');
  now += PROGRESS_INTERVAL_MS;
  assert.equal(ev(50), true);
  assert.equal(ev(100), true, 'the complete count is never dropped');
  assert.equal(ev(100, 'unpacking'), true);
  assert.equal(ev(100, 'done'), true);
});
