// List order (issue 13): the store answers its records oldest first by createdAt, as
// ListPodSandbox and ListContainers answer them, from one frozen array sorted once per
// change of the records; every change (save, remember, delete, loadAll) is seen.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MetadataStore } from '../../../src/sandbox/store/metadata-store.js';

interface Rec {
  id: string;
  version: 1;
  createdAt: string;
}

const id = (c: string): string => c.repeat(64);

function storeAt(root: string): MetadataStore<Rec> {
  return new MetadataStore<Rec>({ dir: path.join(root, 'pods'), kind: 'sandbox', plural: 'sandboxes', idPattern: /^[0-9a-f]{64}$/, ownsDirectory: true });
}

const order = (recs: ReadonlyArray<Readonly<Rec>>): string[] => recs.map((r) => r.id[0]);

test('listByCreation: oldest first by createdAt (decimal, not text, order), frozen, the same array until the records change', async () => {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'sandlot-meta-order-'));
  try {
    const store = storeAt(root);
    // Saved in another order than created; "900" is older than "1000" though it sorts after it as text.
    await store.save({ id: id('b'), version: 1, createdAt: '1000' });
    await store.save({ id: id('a'), version: 1, createdAt: '900' });
    await store.save({ id: id('c'), version: 1, createdAt: '1100' });
    const first = store.listByCreation();
    assert.deepEqual(order(first), ['a', 'b', 'c']);
    assert.ok(Object.isFrozen(first));
    assert.equal(store.listByCreation(), first, 'no change: the same array, not sorted again');

    // A rewrite of a record (a state change) is seen: the new record object is listed.
    await store.save({ id: id('b'), version: 1, createdAt: '1000' });
    const second = store.listByCreation();
    assert.notEqual(second, first);
    assert.equal(second[1], store.peek(id('b')));
    assert.deepEqual(order(first), ['a', 'b', 'c'], 'an answer already given stays as it was');

    store.remember({ id: id('d'), version: 1, createdAt: '1' });
    assert.deepEqual(order(store.listByCreation()), ['d', 'a', 'b', 'c']);
    await store.delete(id('a'));
    assert.deepEqual(order(store.listByCreation()), ['d', 'b', 'c']);

    const loaded = storeAt(root);
    await loaded.loadAll();
    assert.deepEqual(order(loaded.listByCreation()), ['b', 'c'], 'loaded from disk in directory order, listed by creation');
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
});
