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
  c.add('three', () => Promise.resolve().then(() => void ran.push('three')));
  await assert.rejects(c.undo(), (e: unknown) => e instanceof AggregateError && e.errors.length === 1 && /two: boom/.test(e.message));
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
  await c.undo();
  assert.equal(ran, false);
});

test('the undo block of a failed create: the original error wrapped (type kept), every step undone, undo failures appended and logged', async () => {
  const { NotFoundError } = await import('../../../src/errors.js');
  const c = new Cleanup();
  const ran: string[] = [];
  c.add('removing metadata', () => void ran.push('metadata'));
  c.add('unmounting', () => {
    ran.push('unmount');
    throw new Error('EBUSY');
  });
  const logged: unknown[] = [];
  const err = await c.undoAfter(new NotFoundError('image "x" not found'), 'creating container "a"', { error: (o: unknown) => void logged.push(o) } as never);
  assert.ok(err instanceof NotFoundError);
  assert.match(err.message, /^creating container "a": image "x" not found; undoing: unmounting: EBUSY$/);
  assert.deepEqual(ran, ['unmount', 'metadata']);
  assert.equal(logged.length, 1);
  assert.equal(c.size, 0);
});
