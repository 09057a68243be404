// The rootfs references of the image store (issue 13): one file each beside the index,
// what a restarted daemon (a new ImageStore on the same files) finds again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ImageStore, INDEX_VERSION } from '../../../src/image/image-store.js';

function tempImagesDir(t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-image-store-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function reopened(dir: string): Promise<ImageStore> {
  const store = new ImageStore({ file: path.join(dir, 'index.json') });
  await store.load();
  return store;
}

const REF = { imageId: 'sha256:' + 'a'.repeat(64), chainIds: ['sha256:' + 'b'.repeat(64)] };

test('a rootfs reference outlives the store and is gone once deleted, without touching the index', async (t) => {
  const dir = tempImagesDir(t);
  const store = await reopened(dir);
  await store.addRootfsRef('c1', REF);
  await store.addRootfsRef('c1/image-volume/0', REF);
  assert.equal(fs.existsSync(path.join(dir, 'index.json')), false, 'references alone do not write the index');
  const again = await reopened(dir);
  assert.deepEqual(again.getRootfsRef('c1'), REF);
  assert.deepEqual([...again.rootfsRefs().keys()].sort(), ['c1', 'c1/image-volume/0']);
  assert.deepEqual(await again.deleteRootfsRef('c1'), REF);
  assert.equal(await again.deleteRootfsRef('c1'), undefined, 'a second delete finds nothing');
  assert.deepEqual([...(await reopened(dir)).rootfsRefs().keys()], ['c1/image-volume/0']);
});

test('references an older index kept are moved to their files at load', async (t) => {
  const dir = tempImagesDir(t);
  fs.writeFileSync(path.join(dir, 'index.json'), JSON.stringify({ version: INDEX_VERSION, images: [], rootfs: { old: REF } }));
  const store = await reopened(dir);
  assert.deepEqual(store.getRootfsRef('old'), REF);
  const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')) as { rootfs?: unknown };
  assert.equal(index.rootfs, undefined, 'the index no longer holds them');
  assert.deepEqual((await reopened(dir)).getRootfsRef('old'), REF);
});

test('a temp file a crash left mid-write is removed at load, not taken for a reference', async (t) => {
  const dir = tempImagesDir(t);
  const refs = path.join(dir, 'rootfs-refs');
  fs.mkdirSync(refs);
  fs.writeFileSync(path.join(refs, 'c2.json.tmp-1-abcd'), '{"imageId');
  const store = await reopened(dir);
  assert.equal(store.rootfsRefs().size, 0);
  assert.deepEqual(fs.readdirSync(refs), []);
});
