// S3: metadata saves are atomic. The first write of a record makes its directory; a
// rewrite (issue 13: no directory fsync, no mkdir per save) replaces meta.json whole and
// leaves no temp file, and makes the directory again if it went missing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MetadataStore } from '../../../src/sandbox/store/metadata-store.js';

interface Rec {
  id: string;
  version: 1;
  note: string;
}

const ID = 'b'.repeat(64);

async function tempStore(): Promise<{ root: string; store: MetadataStore<Rec> }> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'sandlot-meta-write-'));
  const store = new MetadataStore<Rec>({
    dir: path.join(root, 'containers'),
    kind: 'container',
    plural: 'containers',
    idPattern: /^[0-9a-f]{64}$/,
    ownsDirectory: false,
  });
  return { root, store };
}

test('S3: a first write makes the directory, a rewrite replaces meta.json whole and leaves no temp file', async () => {
  const { root, store } = await tempStore();
  try {
    await store.write({ id: ID, version: 1, note: 'first' }, { first: true });
    await store.write({ id: ID, version: 1, note: 'second' });
    const dir = path.join(root, 'containers', ID);
    assert.deepEqual((await fs.readdir(dir)).sort(), ['.lock', 'meta.json']);
    assert.equal((JSON.parse(await fs.readFile(store.metaPath(ID), 'utf8')) as Rec).note, 'second');
    const loaded = await new MetadataStore<Rec>({
      dir: path.join(root, 'containers'),
      kind: 'container',
      plural: 'containers',
      idPattern: /^[0-9a-f]{64}$/,
      ownsDirectory: false,
    }).loadAll();
    assert.deepEqual(
      loaded.records.map((r) => r.note),
      ['second'],
    );
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
});

test('S3: a rewrite whose directory went missing makes it again', async () => {
  const { root, store } = await tempStore();
  try {
    await store.write({ id: ID, version: 1, note: 'first' }, { first: true });
    await fs.rm(path.join(root, 'containers', ID), { recursive: true });
    await store.write({ id: ID, version: 1, note: 'again' });
    assert.equal((JSON.parse(await fs.readFile(store.metaPath(ID), 'utf8')) as Rec).note, 'again');
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
});
