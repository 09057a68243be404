import assert from 'node:assert/strict';
import { test } from 'node:test';
import { treeOf } from '../../../src/oci/exec.js';

test('S18 the tree an ExecSync timeout kills: the process and all its descendants, nothing else', () => {
  // 1 init; 10 the exec'd sh; 11, 12 its children; 13 a grandchild; 20 unrelated.
  const parents = new Map([
    [1, 0],
    [10, 1],
    [11, 10],
    [12, 10],
    [13, 12],
    [20, 1],
  ]);
  assert.deepEqual(
    treeOf(10, parents).sort((a, b) => a - b),
    [10, 11, 12, 13],
  );
  assert.deepEqual(treeOf(99, parents), [99], 'a PID not listed is still its own tree');
});
