// removeTree: rm -rf of a tree the daemon made (a container's overlay dirs), with a
// round trip per file and two per directory; symlinks are removed, never followed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { removeTree } from '../../../src/util/remove-tree.js';

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-rmtree-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('a nested tree goes whole; a symlink in it goes without its target; what is not there is no error', async (t) => {
  const dir = tempDir(t);
  const outside = path.join(dir, 'outside');
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, 'keep'), 'k');
  const tree = path.join(dir, 'tree');
  fs.mkdirSync(path.join(tree, 'upper/etc/deep/deeper'), { recursive: true });
  for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(tree, 'upper/etc', `f${i}`), String(i));
  fs.writeFileSync(path.join(tree, 'upper/etc/deep/deeper/x'), 'x');
  fs.mkdirSync(path.join(tree, 'work/work'), { recursive: true });
  fs.symlinkSync(outside, path.join(tree, 'upper/link-to-dir'));
  fs.symlinkSync(path.join(dir, 'nowhere'), path.join(tree, 'dangling'));
  await removeTree(tree);
  assert.ok(!fs.existsSync(tree), 'the tree is gone');
  assert.equal(fs.readFileSync(path.join(outside, 'keep'), 'utf8'), 'k', "a symlink's target is left alone");
  await removeTree(tree);
  await removeTree(path.join(dir, 'never/was'));
  const file = path.join(dir, 'file');
  fs.writeFileSync(file, 'f');
  await removeTree(file);
  assert.deepEqual(fs.readdirSync(dir), ['outside'], 'a plain file goes too');
});
