// Concurrent pulls of one image through a real docker-registry: waiters share one
// fetch only when they ask with the same credentials (as CRI-O keys its in-progress
// pulls by image + credentials), and each keeps its own cancel signal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { defaultConfig } from '../../../src/config/defaults.js';
import { UnauthenticatedError } from '../../../src/errors.js';
import { ImageService } from '../../../src/image/image-service.js';
import { buildImage, buildLayer } from '../../helpers/image-build.js';
import { pushImage, startRegistry, type RegistryOptions, type TestRegistry } from '../../helpers/registry.js';

const log = pino({ level: 'silent' });
const ALICE = { username: 'alice', password: 'wonder' };

async function setup(
  t: { after: (fn: () => unknown) => void },
  regOpts: RegistryOptions,
): Promise<{ reg: TestRegistry; svc: ImageService; ref: string; id: string }> {
  const reg = await startRegistry(regOpts);
  t.after(() => reg.stop());
  const img = buildImage([
    await buildLayer([{ type: 'file', name: 'one', data: 'shared 1' }]),
    await buildLayer([{ type: 'file', name: 'two', data: 'shared 2' }]),
  ]);
  await pushImage(reg, 'shared/img', 'v1', img);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-shared-pulls-'));
  const svc = await ImageService.open({ config: { ...defaultConfig(), root_dir: root }, log });
  t.after(async () => {
    await svc.close();
    fs.rmSync(root, { recursive: true, force: true });
  });
  return { reg, svc, ref: `${reg.host}/shared/img:v1`, id: img.config.digest };
}

test('a cancelled waiter detaches alone: the other waiter of the shared pull still gets the image', async (t) => {
  const { svc, ref, id } = await setup(t, {});
  const first = new AbortController();
  const cancelled = svc.pull(ref, null, { signal: first.signal });
  const kept = svc.pull(ref, null, { signal: new AbortController().signal });
  first.abort(new Error('call cancelled by the client'));
  await assert.rejects(cancelled, /cancelled by the client/);
  assert.equal((await kept).id, id);
  assert.equal(svc.status(ref)?.id, id);
});

test('when every waiter cancels, each gets its own cancel and a later pull starts afresh', async (t) => {
  const { svc, ref, id } = await setup(t, {});
  const a = new AbortController();
  const b = new AbortController();
  const pa = svc.pull(ref, null, { signal: a.signal });
  const pb = svc.pull(ref, null, { signal: b.signal });
  a.abort(new Error('a cancelled'));
  b.abort(new Error('b cancelled'));
  await assert.rejects(pa, /a cancelled/);
  await assert.rejects(pb, /b cancelled/);
  // The aborted pull no longer takes waiters: a new one does not join it.
  assert.equal((await svc.pull(ref)).id, id);
});

test('wrong credentials of one waiter do not fail a concurrent waiter with the right ones', async (t) => {
  const { reg, svc, ref, id } = await setup(t, { auth: 'htpasswd', ...ALICE });
  const bad = svc.pull(ref, { username: 'alice', password: 'wrong' });
  const good = svc.pull(ref, ALICE);
  await assert.rejects(bad, (e: unknown) => e instanceof UnauthenticatedError && (e as Error).message.includes(`"${reg.host}"`));
  assert.equal((await good).id, id);
});

test('a waiter with wrong credentials does not ride on a concurrent authenticated pull', async (t) => {
  const { svc, ref, id } = await setup(t, { auth: 'htpasswd', ...ALICE });
  const good = svc.pull(ref, ALICE);
  const bad = svc.pull(ref, { username: 'alice', password: 'wrong' });
  const anonymous = svc.pull(ref);
  const [g, b, a] = await Promise.allSettled([good, bad, anonymous]);
  assert.equal(g.status === 'fulfilled' && g.value.id, id);
  assert.ok(b.status === 'rejected' && b.reason instanceof UnauthenticatedError, `wrong credentials: ${String(b.status === 'rejected' ? b.reason : 'pulled')}`);
  assert.ok(a.status === 'rejected' && a.reason instanceof UnauthenticatedError, `no credentials: ${String(a.status === 'rejected' ? a.reason : 'pulled')}`);
});

test('waiters with the same credentials share one pull, and each gets its progress', async (t) => {
  const { svc, ref, id } = await setup(t, { auth: 'token', ...ALICE });
  const seen: [Set<string>, Set<string>] = [new Set(), new Set()];
  const done = (i: 0 | 1) => (p: { layer: string; phase: string }) => {
    if (p.phase === 'done') seen[i].add(p.layer);
  };
  const [a, b] = await Promise.all([
    svc.pull(ref, ALICE, { onProgress: done(0) }),
    svc.pull(ref, { auth: Buffer.from('alice:wonder').toString('base64') }, { onProgress: done(1) }),
  ]);
  assert.equal(a.id, id);
  assert.equal(b.id, id);
  const layers = a.layers.map((l) => l.digest).sort();
  assert.deepEqual([...seen[0]].sort(), layers);
  assert.deepEqual([...seen[1]].sort(), layers, "the second waiter sees the shared pull's progress");
});

for (const mode of ['htpasswd', 'token'] as const) {
  test(`${mode}: a pull without or with wrong credentials after an authenticated one is refused (no cached token or header is reused)`, async (t) => {
    const { svc, ref, id } = await setup(t, { auth: mode, ...ALICE });
    assert.equal((await svc.pull(ref, ALICE)).id, id);
    await svc.remove(ref);
    await assert.rejects(svc.pull(ref), UnauthenticatedError);
    await assert.rejects(svc.pull(ref, { username: 'alice', password: 'wrong' }), UnauthenticatedError);
    assert.equal((await svc.pull(ref, ALICE)).id, id, 'the right credentials still pull');
  });
}
