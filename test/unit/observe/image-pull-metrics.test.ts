import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { ImagePullMetrics, pullFailureReason } from '../../../src/observe/image-pull-metrics.js';
import { NotFoundError, UnauthenticatedError, UnavailableError } from '../../../src/errors.js';

async function value(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const got = await registry.getSingleMetric(name)!.get();
  // A histogram's values are its buckets, _sum and _count: take the count.
  const histogram = String(got.type) === 'histogram';
  return got.values.find(
    (v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x) && (!histogram || (v as { metricName?: string }).metricName === `${name}_count`),
  )?.value;
}

test('bytes are counted as layers download (a retried fetch counts only new bytes); a success is timed', async () => {
  const registry = new Registry();
  const m = new ImagePullMetrics(registry);
  const p = m.begin();
  assert.equal(await value(registry, 'sandlot_image_pulls_in_progress'), 1);
  p.progress({ layer: 'a', bytes: 100, phase: 'downloading' });
  p.progress({ layer: 'a', bytes: 250, phase: 'downloading' });
  p.progress({ layer: 'a', bytes: 40, phase: 'downloading' }); // retried from 0
  p.progress({ layer: 'a', bytes: 300, phase: 'downloading' });
  p.progress({ layer: 'b', bytes: 7, phase: 'downloading' });
  p.progress({ layer: 'a', bytes: 300, phase: 'unpacking' });
  assert.equal(await value(registry, 'sandlot_image_pull_bytes_total'), 307);
  p.succeeded();
  p.failed(new Error('late'), false); // one end only
  assert.equal(await value(registry, 'sandlot_image_pulls_total', { result: 'success' }), 1);
  assert.equal(await value(registry, 'sandlot_image_pulls_total', { result: 'failure' }), 0);
  assert.equal(await value(registry, 'sandlot_image_pull_duration_seconds'), 1);
  assert.equal(await value(registry, 'sandlot_image_pulls_in_progress'), 0);
});

test('failures are counted by reason: the typed error code, cancelled when every caller left', async () => {
  const registry = new Registry();
  const m = new ImagePullMetrics(registry);
  m.begin().failed(new NotFoundError('pulling image "x": manifest unknown'), false);
  m.begin().failed(new NotFoundError('again'), false);
  m.begin().failed(new UnauthenticatedError('401'), false);
  m.begin().failed(new Error('aborted'), true);
  assert.equal(await value(registry, 'sandlot_image_pulls_total', { result: 'failure' }), 4);
  assert.equal(await value(registry, 'sandlot_image_pull_failures_total', { reason: 'not_found' }), 2);
  assert.equal(await value(registry, 'sandlot_image_pull_failures_total', { reason: 'unauthenticated' }), 1);
  assert.equal(await value(registry, 'sandlot_image_pull_failures_total', { reason: 'cancelled' }), 1);
  assert.equal(await value(registry, 'sandlot_image_pull_duration_seconds'), 0, 'failures are not timed');
  assert.equal(pullFailureReason(new UnavailableError('x'), false), 'unavailable');
  assert.equal(pullFailureReason(new TypeError('x'), false), 'internal');
});
