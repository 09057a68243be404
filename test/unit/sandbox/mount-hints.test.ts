import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  deriveEmptyDirHints,
  discoverEmptyDirVolumes,
  emptyDirHostPath,
  hintForMountSource,
  mountHintAnnotations,
  NODE_EMPTY_DIR_FS,
  parseEmptyDirSource,
  parseMountHints,
  shouldShareMount,
  tmpfsMountPoints,
  type EmptyDirFs,
  type MountHint,
} from '../../../src/sandbox/storage/mount-hints.js';
import { InvalidArgumentError } from '../../../src/errors.js';

const P = 'dev.gvisor.spec.mount.';
const UID = '0b7c9a52-5d0e-4f7e-9d2a-1f3c0e2a9b11';

test('S14: parses a complete hint', () => {
  const hints = parseMountHints({
    [`${P}cache.source`]: '/var/cache/shared/',
    [`${P}cache.type`]: 'tmpfs',
    [`${P}cache.share`]: 'pod',
    [`${P}cache.options`]: 'rw,noexec',
    'io.kubernetes.pod.name': 'ignored',
  });
  assert.deepEqual(hints, [{ name: 'cache', source: '/var/cache/shared', type: 'tmpfs', share: 'pod', options: ['rw', 'noexec'], derived: false }]);
  assert.equal(shouldShareMount(hints[0]), true);
});

test('S14: share container is not shared; pod and shared are', () => {
  const hints = parseMountHints({
    [`${P}a.source`]: '/a',
    [`${P}a.type`]: 'bind',
    [`${P}a.share`]: 'container',
    [`${P}b.source`]: '/b',
    [`${P}b.type`]: 'bind',
    [`${P}b.share`]: 'shared',
  });
  assert.deepEqual(
    hints.map((h) => [h.name, shouldShareMount(h)]),
    [
      ['a', false],
      ['b', true],
    ],
  );
});

test('S14: hint names may contain dots; the field is after the last one', () => {
  const [h] = parseMountHints({ [`${P}my.vol.source`]: '/x', [`${P}my.vol.type`]: 'bind', [`${P}my.vol.share`]: 'pod' });
  assert.equal(h?.name, 'my.vol');
});

test('S14: an unknown type is INVALID_ARGUMENT naming the annotation and the type', () => {
  assert.throws(
    () => parseMountHints({ [`${P}v.source`]: '/v', [`${P}v.type`]: 'nfs', [`${P}v.share`]: 'pod' }),
    (e: unknown) => e instanceof InvalidArgumentError && e.message.includes(`"${P}v.type"`) && e.message.includes('"nfs"') && e.message.includes('bind, tmpfs'),
  );
});

test('S14: an unknown share is INVALID_ARGUMENT naming the annotation and value', () => {
  assert.throws(() => parseMountHints({ [`${P}v.source`]: '/v', [`${P}v.type`]: 'bind', [`${P}v.share`]: 'node' }), {
    name: 'InvalidArgumentError',
    message: `parsing pod mount hints: annotation "${P}v.share" = "node": share must be one of container, pod, shared`,
  });
});

test('S14: a hint without source is INVALID_ARGUMENT', () => {
  assert.throws(() => parseMountHints({ [`${P}v.type`]: 'bind', [`${P}v.share`]: 'pod' }), {
    name: 'InvalidArgumentError',
    message: /annotation "dev\.gvisor\.spec\.mount\.v\.source" = "": every mount hint needs a source/,
  });
});

test('S14: missing type or share, unknown fields and options are rejected', () => {
  assert.throws(() => parseMountHints({ [`${P}v.source`]: '/v', [`${P}v.share`]: 'pod' }), /v\.type/);
  assert.throws(() => parseMountHints({ [`${P}v.source`]: '/v', [`${P}v.type`]: 'bind' }), /v\.share/);
  assert.throws(() => parseMountHints({ [`${P}v.size`]: '1G' }), { name: 'InvalidArgumentError', message: /v\.size/ });
  assert.throws(() => parseMountHints({ [`${P}source`]: '/x' }), { name: 'InvalidArgumentError' });
  assert.throws(() => parseMountHints({ [`${P}v.source`]: '/v', [`${P}v.type`]: 'bind', [`${P}v.share`]: 'pod', [`${P}v.options`]: 'rw,bogus' }), {
    name: 'InvalidArgumentError',
    message: /unknown mount option "bogus"/,
  });
  const [h] = parseMountHints({
    [`${P}v.source`]: '/v',
    [`${P}v.type`]: 'tmpfs',
    [`${P}v.share`]: 'pod',
    [`${P}v.options`]: 'rw, size=64m,mode=1777',
  });
  assert.deepEqual(h?.options, ['rw', 'size=64m', 'mode=1777']);
});

test('S14: two hints for one source are rejected', () => {
  assert.throws(
    () =>
      parseMountHints({
        [`${P}a.source`]: '/v',
        [`${P}a.type`]: 'bind',
        [`${P}a.share`]: 'pod',
        [`${P}b.source`]: '/v/',
        [`${P}b.type`]: 'bind',
        [`${P}b.share`]: 'pod',
      }),
    { name: 'InvalidArgumentError', message: /mount hint "a" already describes "\/v"/ },
  );
});

test('S14: a tmpfs shared with the host is served as a bind mount', () => {
  const [h] = parseMountHints({ [`${P}v.source`]: '/v', [`${P}v.type`]: 'tmpfs', [`${P}v.share`]: 'shared' });
  assert.equal(h?.type, 'bind');
});

test('S14: a volume name as source resolves to the kubelet emptyDir path', () => {
  const ann = { [`${P}data.source`]: 'data', [`${P}data.type`]: 'tmpfs', [`${P}data.share`]: 'pod' };
  const [h] = parseMountHints(ann, { podUid: UID, kubeletRootDir: '/srv/kubelet/' });
  assert.equal(h?.source, `/srv/kubelet/pods/${UID}/volumes/kubernetes.io~empty-dir/data`);
  assert.throws(() => parseMountHints(ann), { name: 'InvalidArgumentError', message: /needs the pod UID/ });
  assert.throws(() => parseMountHints({ ...ann, [`${P}data.source`]: '../etc' }, { podUid: UID }), {
    name: 'InvalidArgumentError',
  });
  assert.throws(() => emptyDirHostPath('../x', 'data'), { name: 'InvalidArgumentError' });
});

test('S14: kubelet emptyDir paths are recognized', () => {
  assert.deepEqual(parseEmptyDirSource(`/var/lib/kubelet/pods/${UID}/volumes/kubernetes.io~empty-dir/cache/`), {
    podUid: UID,
    volumeName: 'cache',
  });
  assert.equal(parseEmptyDirSource(`/var/lib/kubelet/pods/${UID}/volumes/kubernetes.io~configmap/cfg`), undefined);
  assert.equal(parseEmptyDirSource('/tmp/data'), undefined);
});

test('S14: emptyDirs get derived pod-shared hints: memory → tmpfs, disk → bind', () => {
  const hints = deriveEmptyDirHints(
    [
      { name: 'scratch', hostPath: emptyDirHostPath(UID, 'scratch'), medium: 'disk' },
      { name: 'shm', hostPath: emptyDirHostPath(UID, 'shm'), medium: 'memory' },
    ],
    [],
  );
  assert.deepEqual(
    hints.map((h) => [h.name, h.type, h.share, h.derived]),
    [
      ['scratch', 'bind', 'pod', true],
      ['shm', 'tmpfs', 'pod', true],
    ],
  );
});

test('S14: explicit hints take precedence over derived ones (by name or source)', () => {
  const explicit = parseMountHints({ [`${P}shm.source`]: 'shm', [`${P}shm.type`]: 'bind', [`${P}shm.share`]: 'container' }, { podUid: UID });
  const other: MountHint = { ...explicit[0], name: 'renamed', source: emptyDirHostPath(UID, 'cache') };
  const hints = deriveEmptyDirHints(
    [
      { name: 'shm', hostPath: emptyDirHostPath(UID, 'shm'), medium: 'memory' },
      { name: 'cache', hostPath: emptyDirHostPath(UID, 'cache'), medium: 'memory' },
      { name: 'logs', hostPath: emptyDirHostPath(UID, 'logs'), medium: 'disk' },
    ],
    [...explicit, other],
  );
  assert.deepEqual(
    hints.map((h) => [h.name, h.share, h.derived]),
    [
      ['shm', 'container', false],
      ['renamed', 'container', false],
      ['logs', 'pod', true],
    ],
  );
});

test('S14: hintForMountSource matches normalized absolute sources only', () => {
  const hints = deriveEmptyDirHints([{ name: 'v', hostPath: '/k/pods/u/volumes/kubernetes.io~empty-dir/v', medium: 'disk' }], []);
  assert.equal(hintForMountSource(hints, '/k/pods/u/volumes/kubernetes.io~empty-dir/v/')?.name, 'v');
  assert.equal(hintForMountSource(hints, '/k/pods/u/volumes/kubernetes.io~empty-dir/./v')?.name, 'v');
  assert.equal(hintForMountSource(hints, '/k/pods/u/volumes/kubernetes.io~empty-dir/w'), undefined);
  assert.equal(hintForMountSource(hints, 'v'), undefined);
});

test('S14: runsc annotations round-trip through the parser', () => {
  const hints = deriveEmptyDirHints(
    [
      { name: 'shm', hostPath: emptyDirHostPath(UID, 'shm'), medium: 'memory' },
      { name: 'disk', hostPath: emptyDirHostPath(UID, 'disk'), medium: 'disk' },
    ],
    [],
  );
  const ann = mountHintAnnotations(hints);
  assert.equal(ann[`${P}shm.type`], 'tmpfs');
  assert.equal(ann[`${P}shm.share`], 'pod');
  assert.equal(ann[`${P}shm.source`], emptyDirHostPath(UID, 'shm'));
  assert.equal(ann[`${P}disk.options`], 'rw');
  const back = parseMountHints(ann);
  assert.deepEqual(
    back.map((h) => ({ ...h, derived: true })),
    [...hints].sort((a, b) => a.name.localeCompare(b.name)),
  );
});

test('tmpfsMountPoints reads tmpfs mount points from mountinfo, unescaping spaces', () => {
  const info = [
    '22 1 0:21 / / rw,relatime - ext4 /dev/vda rw',
    `40 22 0:40 / /var/lib/kubelet/pods/${UID}/volumes/kubernetes.io~empty-dir/shm rw - tmpfs tmpfs rw,size=65536k`,
    '41 22 0:41 / /mnt/with\\040space rw - tmpfs tmpfs rw',
    '42 22 0:42 / /proc rw - proc proc rw',
  ].join('\n');
  assert.deepEqual([...tmpfsMountPoints(info)], [`/var/lib/kubelet/pods/${UID}/volumes/kubernetes.io~empty-dir/shm`, '/mnt/with space']);
});

test('S14: discoverEmptyDirVolumes tells memory emptyDirs from disk ones', async () => {
  const root = '/var/lib/kubelet';
  const fs: EmptyDirFs = {
    readdir: (p) => Promise.resolve(p === `${root}/pods/${UID}/volumes/kubernetes.io~empty-dir` ? ['shm', 'cache'] : []),
    readMountinfo: () => Promise.resolve(`40 22 0:40 / ${root}/pods/${UID}/volumes/kubernetes.io~empty-dir/shm rw - tmpfs tmpfs rw\n`),
  };
  assert.deepEqual(await discoverEmptyDirVolumes(fs, UID), [
    { name: 'cache', hostPath: emptyDirHostPath(UID, 'cache'), medium: 'disk' },
    { name: 'shm', hostPath: emptyDirHostPath(UID, 'shm'), medium: 'memory' },
  ]);
  assert.deepEqual(await discoverEmptyDirVolumes(fs, 'other-uid'), []);
});

test('S14: discoverEmptyDirVolumes on real directories (no volumes dir → none)', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'sandlot-hints-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  assert.deepEqual(await discoverEmptyDirVolumes(NODE_EMPTY_DIR_FS, UID, root), []);
  await mkdir(join(root, 'pods', UID, 'volumes', 'kubernetes.io~empty-dir', 'data'), { recursive: true });
  assert.deepEqual(await discoverEmptyDirVolumes(NODE_EMPTY_DIR_FS, UID, root), [
    { name: 'data', hostPath: emptyDirHostPath(UID, 'data', root), medium: 'disk' },
  ]);
});
