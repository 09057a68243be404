import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import {
  FilestoreManager,
  formatOverlayFlag,
  parseOverlaySetting,
  planFilestores,
  selfFilestorePath,
  type FilestoreFs,
  type FilestorePlanInput,
  type PlanMount,
} from '../../../src/sandbox/storage/filestore-plan.js';
import { FailedPreconditionError, InvalidArgumentError } from '../../../src/errors.js';

const SILENT: Logger = pino<never>({ level: 'silent' });
const SB = 'sb1';

function mount(source: string, over: Partial<PlanMount> = {}): PlanMount {
  return { source, destination: `/mnt${source}`, readonly: false, sourceIsDirectory: true, ...over };
}

function input(overlay: string, mounts: PlanMount[], rootReadonly = false): FilestorePlanInput {
  return { sandboxId: SB, overlay: parseOverlaySetting(overlay), root: { path: '/rootfs', readonly: rootReadonly }, mounts };
}

test('overlay settings parse in runsc --overlay2 syntax', () => {
  assert.deepEqual(parseOverlaySetting('none'), { scope: 'root', medium: { kind: 'none' } });
  assert.deepEqual(parseOverlaySetting('root:memory'), { scope: 'root', medium: { kind: 'memory' } });
  assert.deepEqual(parseOverlaySetting('all:self'), { scope: 'all', medium: { kind: 'self' } });
  assert.deepEqual(parseOverlaySetting('all:anon:/var/tmp'), { scope: 'all', medium: { kind: 'anon', dir: '/var/tmp' } });
  assert.deepEqual(parseOverlaySetting('all:dir=/var/tmp/'), { scope: 'all', medium: { kind: 'anon', dir: '/var/tmp/' } });
  assert.deepEqual(parseOverlaySetting('root:/srv/fs'), { scope: 'root', medium: { kind: 'anon', dir: '/srv/fs' } });
  for (const bad of ['some:memory', 'all:disk', 'all:anon:rel/dir', 'all']) {
    assert.throws(() => parseOverlaySetting(bad), InvalidArgumentError, bad);
  }
});

test('the --overlay2 flag fits the installed runsc (Debian: no self, bare directory)', () => {
  const debian = { self: false, dirEquals: false };
  const newer = { self: true, dirEquals: true };
  assert.equal(formatOverlayFlag(parseOverlaySetting('all:self'), debian), 'all:memory');
  assert.equal(formatOverlayFlag(parseOverlaySetting('all:self'), newer), 'all:self');
  assert.equal(formatOverlayFlag(parseOverlaySetting('root:anon:/d'), debian), 'root:/d');
  assert.equal(formatOverlayFlag(parseOverlaySetting('root:anon:/d'), newer), 'root:dir=/d');
  assert.equal(formatOverlayFlag(parseOverlaySetting('none'), newer), 'none');
  assert.equal(formatOverlayFlag(parseOverlaySetting('all:memory'), debian), 'all:memory');
});

test('S15: root:self overlays the root only; bind mounts get none', () => {
  const plan = planFilestores(input('root:self', [mount('/data')]));
  assert.equal(plan.root.medium, 'self');
  assert.equal(plan.root.filestorePath, '/rootfs/.gvisor.filestore.sb1');
  assert.equal(plan.root.destination, '/');
  assert.equal(plan.mounts[0]?.medium, 'none');
});

test('S15: all:self gives each writable directory mount a named filestore in its source', () => {
  const plan = planFilestores(input('all:self', [mount('/data'), mount('/logs')]));
  assert.deepEqual(
    plan.mounts.map((m) => [m.medium, m.filestorePath, m.shared]),
    [
      ['self', '/data/.gvisor.filestore.sb1', false],
      ['self', '/logs/.gvisor.filestore.sb1', false],
    ],
  );
});

test('S15: read-only mounts and read-only roots get none', () => {
  const plan = planFilestores(input('all:memory', [mount('/ro', { readonly: true }), mount('/rw')], true));
  assert.equal(plan.root.medium, 'none');
  assert.equal(plan.mounts[0]?.medium, 'none');
  assert.equal(plan.mounts[1]?.medium, 'memory');
});

test('S15: a self source that is not a directory falls back to memory', () => {
  const plan = planFilestores(input('all:self', [mount('/etc/resolv.conf', { sourceIsDirectory: false })]));
  assert.equal(plan.mounts[0]?.medium, 'memory');
  assert.equal(plan.mounts[0]?.fellBackToMemory, true);
  assert.equal(plan.mounts[0]?.filestorePath, undefined);
  const imageRoot = planFilestores({ ...input('root:self', []), root: { path: '/img', readonly: false, isDirectory: false } });
  assert.equal(imageRoot.root.medium, 'memory');
});

test('S15: anon puts an unnamed file in the configured directory', () => {
  const plan = planFilestores(input('all:anon:/var/filestores', [mount('/data')]));
  assert.equal(plan.root.medium, 'anon');
  assert.equal(plan.root.anonDir, '/var/filestores');
  assert.equal(plan.mounts[0]?.anonDir, '/var/filestores');
  assert.equal(plan.mounts[0]?.filestorePath, undefined);
});

test('S15: overlays off (none) leave root and mounts without filestores', () => {
  const plan = planFilestores(input('none', [mount('/data')]));
  assert.equal(plan.root.medium, 'none');
  assert.equal(plan.mounts[0]?.medium, 'none');
});

test('S14+S15: a hinted mount is self even read-only and with overlays off; shared follows the hint', () => {
  const plan = planFilestores(
    input('none', [
      mount('/shared', { readonly: true, hint: { shared: true } }),
      mount('/private', { hint: { shared: false } }),
      mount('/file', { sourceIsDirectory: false, hint: { shared: true } }),
    ]),
  );
  assert.deepEqual(
    plan.mounts.map((m) => [m.medium, m.shared]),
    [
      ['self', true],
      ['self', false],
      ['memory', true],
    ],
  );
});

test('S2: a sandbox id that could escape the source is rejected', () => {
  assert.throws(() => selfFilestorePath('/data', '../x'), InvalidArgumentError);
  assert.throws(() => planFilestores({ ...input('root:self', []), sandboxId: 'a/b' }), InvalidArgumentError);
});

async function tempSources(t: { after(fn: () => Promise<void>): void }, names: string[]): Promise<string[]> {
  const root = await mkdtemp(join(tmpdir(), 'sandlot-filestore-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const dirs = names.map((n) => join(root, n));
  for (const d of dirs) await mkdir(d);
  return dirs;
}

test('S15: create makes self filestores exclusively; a second non-shared user fails clearly (real files)', async (t) => {
  const [data] = await tempSources(t, ['data']);
  const m = new FilestoreManager({ logger: SILENT });
  const planA = planFilestores({ ...input('all:self', [mount(data)]), root: { path: data, readonly: true } });
  assert.deepEqual(await m.create(SB, planA), [selfFilestorePath(data, SB)]);
  assert.deepEqual(await readdir(data), ['.gvisor.filestore.sb1']);
  await assert.rejects(m.create(SB, planA), (e: unknown) => {
    assert.ok(e instanceof FailedPreconditionError);
    assert.match(e.message, /already exists/);
    assert.match(e.message, /share=pod/);
    assert.ok(e.message.includes(data));
    return true;
  });
});

test('S15: shared mounts reuse the filestore; container destroy keeps it, root destroy removes it (real files)', async (t) => {
  const [shared, own] = await tempSources(t, ['shared', 'own']);
  const m = new FilestoreManager({ logger: SILENT });
  const plan = planFilestores(input('all:self', [mount(shared, { hint: { shared: true } }), mount(own)]));
  // Root path /rootfs is not in the temp dir: keep the root out of the file work.
  const noRoot = { ...plan, root: { ...plan.root, medium: 'none' as const } };
  const ownB = planFilestores(input('all:self', [mount(shared, { hint: { shared: true } })]));
  const createdA = await m.create(SB, noRoot);
  assert.deepEqual(createdA, [selfFilestorePath(own, SB)]);
  // Container B mounts the same shared source: no EEXIST.
  assert.deepEqual(await m.create(SB, { ...ownB, root: { ...ownB.root, medium: 'none' } }), []);
  assert.deepEqual(await readdir(shared), ['.gvisor.filestore.sb1']);
  // Container A destroyed: its own filestore goes, the shared one stays.
  await m.removeForContainer(SB, noRoot);
  assert.deepEqual(await readdir(own), []);
  assert.deepEqual(await readdir(shared), ['.gvisor.filestore.sb1']);
  // Idempotent destroy (S7): the second time nothing is left and nothing fails.
  await m.removeForContainer(SB, noRoot);
  // Root destroyed: shared filestores go; a missing one is fine.
  await m.removeShared(SB, [shared, own]);
  assert.deepEqual(await readdir(shared), []);
});

test('S5: a failed create removes the filestores it made', async (t) => {
  const [a] = await tempSources(t, ['a']);
  const m = new FilestoreManager({ logger: SILENT });
  const missing = join(a, 'no-such-dir');
  const plan = planFilestores(input('all:self', [mount(a), mount(missing)]));
  const noRoot = { ...plan, root: { ...plan.root, medium: 'none' as const } };
  await assert.rejects(m.create(SB, noRoot), /creating filestore ".*no-such-dir\/\.gvisor\.filestore\.sb1": ENOENT/);
  assert.deepEqual(await readdir(a), []);
});

test('S15: cleanupLeftovers removes filestores of dead sandboxes only (real files)', async (t) => {
  const [s1, s2] = await tempSources(t, ['s1', 's2']);
  await writeFile(join(s1, '.gvisor.filestore.alive'), '');
  await writeFile(join(s1, '.gvisor.filestore.dead'), '');
  await writeFile(join(s1, 'user-file'), 'keep');
  await writeFile(join(s2, '.gvisor.filestore.dead2'), '');
  const m = new FilestoreManager({ logger: SILENT });
  const removed = await m.cleanupLeftovers(['alive'], [s1, s2, s1, join(s1, 'gone'), join(s1, 'user-file')]);
  assert.deepEqual(removed.sort(), [join(s1, '.gvisor.filestore.dead'), join(s2, '.gvisor.filestore.dead2')].sort());
  assert.deepEqual((await readdir(s1)).sort(), ['.gvisor.filestore.alive', 'user-file']);
  assert.deepEqual(await readdir(s2), []);
});

test('S7: removal failures are all reported, none stops the others', async () => {
  const unlinked: string[] = [];
  const fs: FilestoreFs = {
    create: async () => {},
    readdir: () => Promise.resolve([]),
    unlink: (p) => {
      unlinked.push(p);
      if (p.startsWith('/a/')) return Promise.reject(Object.assign(new Error('EBUSY: busy'), { code: 'EBUSY' }));
      if (p.startsWith('/b/')) return Promise.reject(Object.assign(new Error('EACCES: denied'), { code: 'EACCES' }));
      return Promise.resolve();
    },
  };
  const m = new FilestoreManager({ logger: SILENT, fs });
  const plan = planFilestores(input('all:self', [mount('/a'), mount('/b'), mount('/c')]));
  await assert.rejects(m.removeForContainer(SB, plan), (e: unknown) => {
    assert.ok(e instanceof AggregateError);
    assert.equal(e.errors.length, 2);
    assert.match(e.message, /EBUSY.*EACCES/);
    return true;
  });
  assert.deepEqual(unlinked, ['/rootfs/.gvisor.filestore.sb1', '/a/.gvisor.filestore.sb1', '/b/.gvisor.filestore.sb1', '/c/.gvisor.filestore.sb1']);
});
