// Issue 12 defect "delete order": a record leaves memory only after its files left the
// disk, so a failed rm keeps the object listed (and a retried remove can finish it)
// instead of hiding it while its name stays taken (S3, S7).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MetadataStore, type MetadataRecord } from '../../../src/sandbox/store/metadata-store.js';

const ID = 'a'.repeat(64);

async function tempStore(): Promise<{ root: string; store: MetadataStore<MetadataRecord> }> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'sandlot-meta-delete-'));
  const store = new MetadataStore<MetadataRecord>({
    dir: root,
    kind: 'container',
    plural: 'containers',
    idPattern: /^[0-9a-f]{64}$/,
    ownsDirectory: false,
  });
  return { root, store };
}

test('S3/S7: a delete whose rm fails keeps the record in memory; a retry after the cause is gone removes it', async () => {
  const { root, store } = await tempStore();
  try {
    await store.save({ id: ID, version: 1 });
    // A non-empty directory where a crash-left temp file would be: the store removes its
    // own files without recursing, so this rm fails (honestly, as root too).
    const blocker = path.join(root, ID, 'meta.json.tmp-blocker');
    await fs.mkdir(blocker);
    await fs.writeFile(path.join(blocker, 'x'), 'x');
    await assert.rejects(store.delete(ID), (e: unknown) => e instanceof Error && e.message.includes(`container "${ID}"`));
    assert.equal(store.has(ID), true, 'the record is still known after the failed delete');
    assert.equal(store.find(ID)?.id, ID);
    assert.deepEqual(
      store.list().map((r) => r.id),
      [ID],
    );

    await fs.rm(blocker, { recursive: true });
    await store.delete(ID);
    assert.equal(store.has(ID), false);
    await assert.rejects(fs.access(path.join(root, ID)), { code: 'ENOENT' });
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
});

test('S3: deleting an unknown ID succeeds (idempotent)', async () => {
  const { root, store } = await tempStore();
  try {
    await store.delete(ID);
    assert.equal(store.has(ID), false);
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
});
