// writeFileAtomic: the target holds the old version or the new one, never a part, and no
// temp file stays behind, whether the write succeeds or fails (S3: metadata writes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fsyncPath, writeFileAtomic } from '../../../src/util/atomic-file.js';

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-atomic-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('each durability writes the whole new version with the mode asked for and leaves no temp file', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'meta.json');
  for (const durable of [true, 'contents', false] as const) {
    const data = JSON.stringify({ durable, pad: 'x'.repeat(100_000) });
    await writeFileAtomic(file, data, { mode: 0o600, durable });
    assert.equal(fs.readFileSync(file, 'utf8'), data, `durable ${String(durable)}: the new version`);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  }
  await writeFileAtomic(file, Buffer.from('bytes'));
  assert.equal(fs.readFileSync(file, 'utf8'), 'bytes', 'a Buffer is written as it is');
  assert.deepEqual(fs.readdirSync(dir), ['meta.json'], 'no temp file left');
  await fsyncPath(dir);
});

test('a write that cannot replace its target keeps the old target and removes its temp file', async (t) => {
  const dir = tempDir(t);
  const target = path.join(dir, 'taken');
  fs.mkdirSync(target);
  fs.writeFileSync(path.join(target, 'inside'), 'old');
  await assert.rejects(writeFileAtomic(target, 'new'), (e: NodeJS.ErrnoException) => ['EISDIR', 'ENOTEMPTY', 'EEXIST'].includes(e.code ?? ''));
  assert.deepEqual(fs.readdirSync(dir), ['taken'], 'no temp file left');
  assert.equal(fs.readFileSync(path.join(target, 'inside'), 'utf8'), 'old', 'the target is untouched');
  await assert.rejects(writeFileAtomic(path.join(dir, 'missing-dir', 'f'), 'x'), { code: 'ENOENT' });
});
