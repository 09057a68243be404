import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Cleanup } from '../../../src/util/cleanup.js';

test('S7: every destroy step runs after a failure, and the failures are joined, each named by its step', async () => {
  const steps = new Cleanup();
  const ran: string[] = [];
  await steps.run('killing', () => {
    ran.push('killing');
    return Promise.reject(new Error('ESRCH'));
  });
  await steps.run('removing files', () => Promise.resolve(void ran.push('removing files')));
  await steps.run('removing the cgroup', () => {
    ran.push('removing the cgroup');
    return Promise.reject(new Error('EBUSY'));
  });
  assert.deepEqual(ran, ['killing', 'removing files', 'removing the cgroup']);
  assert.throws(
    () => steps.throwIfFailed('removing container "abc"'),
    (e: unknown) =>
      e instanceof AggregateError && e.errors.length === 2 && /^removing container "abc": killing: .*ESRCH.*; removing the cgroup: .*EBUSY/.test(e.message),
  );
});

test('a destroy path whose steps all succeeded does not throw', async () => {
  const steps = new Cleanup();
  await steps.run('removing files', () => Promise.resolve());
  assert.doesNotThrow(() => steps.throwIfFailed('removing sandbox "abc"'));
});
