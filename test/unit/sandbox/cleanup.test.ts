import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Cleanup } from '../../../src/util/cleanup.js';

test('cleanup runs every step newest first and joins the failures', async () => {
  const c = new Cleanup();
  const ran: string[] = [];
  c.add('one', () => void ran.push('one'));
  c.add('two', () => {
    ran.push('two');
    throw new Error('boom');
  });
  c.add('three', async () => void ran.push('three'));
  await assert.rejects(c.run(), (e: unknown) => e instanceof AggregateError && e.errors.length === 1 && /two: boom/.test((e as AggregateError).message));
  assert.deepEqual(ran, ['three', 'two', 'one']);
  assert.equal(c.size, 0);
});

test('released cleanup undoes nothing', async () => {
  const c = new Cleanup();
  let ran = false;
  c.add('x', () => {
    ran = true;
  });
  c.release();
  await c.run();
  assert.equal(ran, false);
});
