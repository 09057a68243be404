// KeyedMutex.busy: what the status and list reads check so that they never wait for a
// lock held across a slow create, start or graceful stop (issue 11, item 9).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KeyedMutex } from '../../../src/util/mutex.js';

test('KeyedMutex.busy is true while a key is held or awaited, false after, and the key is dropped', async () => {
  const m = new KeyedMutex();
  assert.equal(m.busy('a'), false);
  let release!: () => void;
  let entered!: () => void;
  const inside = new Promise<void>((r) => (entered = r));
  const held = m.runExclusive(
    'a',
    () =>
      new Promise<void>((r) => {
        release = r;
        entered();
      }),
  );
  assert.equal(m.busy('a'), true, 'busy from the call on, before the holder runs');
  await inside;
  assert.equal(m.busy('a'), true);
  assert.equal(m.busy('b'), false, 'another key is free');
  const waiter = m.runExclusive('a', () => 'second');
  release();
  await held;
  assert.equal(await waiter, 'second');
  assert.equal(m.busy('a'), false);
  assert.equal(m.size, 0, 'no lock stays per key');
});
