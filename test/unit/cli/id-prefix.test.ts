import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IdResolutionError, pickUnique, resolveId } from '../../../src/cli/id-prefix.js';

const IDS = ['abc123', 'abd456', 'abc', 'ffff'];

test('a unique prefix picks its ID; an exact ID wins over longer ones', () => {
  assert.equal(pickUnique('pod', 'abd', IDS), 'abd456');
  assert.equal(pickUnique('pod', 'abc', IDS), 'abc');
  assert.equal(pickUnique('pod', 'ff', IDS), 'ffff');
});

test('an ambiguous prefix and a missing one are told apart', () => {
  assert.throws(
    () => pickUnique('container', 'ab', IDS),
    (e: unknown) => e instanceof IdResolutionError && e.reason === 'ambiguous' && /container ID prefix "ab" is ambiguous: 3 containers match/.test(e.message),
  );
  assert.throws(
    () => pickUnique('pod', 'zz', IDS),
    (e: unknown) => e instanceof IdResolutionError && e.reason === 'not-found' && e.message === 'pod "zz" not found',
  );
  assert.throws(() => pickUnique('pod', '', IDS), /must not be empty/);
});

test('resolveId uses the daemon filter first and the full list only on a miss', async () => {
  const calls: (string | undefined)[] = [];
  const answer = (f?: string): string[] => {
    calls.push(f);
    if (f === undefined) return IDS;
    // As the daemon: an ambiguous prefix matches nothing.
    const m = IDS.filter((id) => id.startsWith(f));
    return m.length === 1 ? m : IDS.includes(f) ? [f] : [];
  };
  const list = (f?: string): Promise<string[]> => Promise.resolve(answer(f));
  assert.equal(await resolveId('pod', 'abd', list), 'abd456');
  assert.deepEqual(calls, ['abd']);
  await assert.rejects(resolveId('pod', 'ab', list), /ambiguous/);
  assert.deepEqual(calls, ['abd', 'ab', undefined]);
});
