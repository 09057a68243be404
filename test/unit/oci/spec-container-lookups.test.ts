import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { NODE_SPEC_LOOKUPS, resolveInRoot } from '../../../src/oci/spec-container.js';
import { mountPropagationOf } from '../../../src/oci/spec-container-lookups.js';

async function tempRoot(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sandlot-lookups-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

test('account files are read inside the rootfs; symlinks cannot lead out of it', async (t) => {
  const dir = await tempRoot(t);
  const root = path.join(dir, 'rootfs');
  const outside = path.join(dir, 'outside');
  await fs.mkdir(path.join(root, 'etc'), { recursive: true });
  await fs.mkdir(outside);
  await fs.writeFile(path.join(outside, 'passwd'), 'evil:x:0:0::/:/bin/sh\n');
  await fs.writeFile(path.join(root, 'real-passwd'), 'app:x:1000:1000::/:/bin/sh\n');
  // An absolute link means "inside the rootfs", a ".." link stops at its root.
  await fs.symlink('/real-passwd', path.join(root, 'etc/passwd'));
  await fs.symlink('../../../outside/passwd', path.join(root, 'etc/group'));
  const files = await NODE_SPEC_LOOKUPS.accountFiles(root);
  assert.equal(files.passwd, 'app:x:1000:1000::/:/bin/sh\n');
  assert.equal(files.group, undefined, 'the link resolves to <root>/outside/passwd, which does not exist');
  assert.equal(await resolveInRoot(root, 'etc/group'), undefined);
  assert.equal(await resolveInRoot(root, 'etc/passwd'), path.join(root, 'real-passwd'));
});

test('an image without account files yields undefined, a symlink loop is refused', async (t) => {
  const root = await tempRoot(t);
  assert.deepEqual(await NODE_SPEC_LOOKUPS.accountFiles(root), { passwd: undefined, group: undefined });
  await fs.mkdir(path.join(root, 'etc'));
  await fs.symlink('/etc/passwd', path.join(root, 'etc/passwd'));
  await assert.rejects(NODE_SPEC_LOOKUPS.accountFiles(root), /too many symlinks/);
});

test('exists, readFile and statDevice look at the host', async (t) => {
  const dir = await tempRoot(t);
  const f = path.join(dir, 'profile.json');
  await fs.writeFile(f, '{}');
  assert.equal(await NODE_SPEC_LOOKUPS.exists(dir), true);
  assert.equal(await NODE_SPEC_LOOKUPS.exists(path.join(dir, 'nope')), false);
  assert.equal(await NODE_SPEC_LOOKUPS.readFile(f), '{}');
  assert.equal(await NODE_SPEC_LOOKUPS.readFile(path.join(dir, 'nope')), undefined);
  const dn = await NODE_SPEC_LOOKUPS.statDevice('/dev/null');
  assert.deepEqual([dn?.kind, dn?.major, dn?.minor], ['c', 1, 3]);
  assert.equal((await NODE_SPEC_LOOKUPS.statDevice(dir))?.kind, 'dir');
  assert.equal((await NODE_SPEC_LOOKUPS.statDevice(f))?.kind, 'other');
  assert.equal(await NODE_SPEC_LOOKUPS.statDevice(path.join(dir, 'nope')), undefined);
  const host = (await NODE_SPEC_LOOKUPS.hostDevices?.()) ?? [];
  assert.ok(host.some((d) => d.path === '/dev/null' && d.type === 'c' && d.major === 1 && d.minor === 3));
  assert.ok(!host.some((d) => d.path.startsWith('/dev/pts/')), "/dev/pts is the container's own");
});

test('mount propagation of a host path: the covering mount (longest, then latest) and its shared/master tags', () => {
  const mountinfo = [
    '27 1 254:0 / / rw,relatime - ext4 /dev/vda rw',
    '30 27 0:40 / /var/lib/kubelet rw,relatime shared:5 - ext4 /dev/vdb rw',
    '31 30 0:41 / /var/lib/kubelet/pods rw,relatime master:5 - ext4 /dev/vdb rw',
    '32 27 0:42 / /mnt/with\\040space rw shared:9 - tmpfs tmpfs rw',
    '33 27 0:43 / /var/lib/kubelet rw,relatime - tmpfs tmpfs rw',
  ].join('\n');
  assert.deepEqual(mountPropagationOf(mountinfo, '/etc/x'), { mountPoint: '/', propagation: 'private' });
  // the later mount on /var/lib/kubelet (33, private) covers the shared one (30)
  assert.deepEqual(mountPropagationOf(mountinfo, '/var/lib/kubelet/plugins'), { mountPoint: '/var/lib/kubelet', propagation: 'private' });
  assert.deepEqual(mountPropagationOf(mountinfo, '/var/lib/kubelet/pods/u/vol'), { mountPoint: '/var/lib/kubelet/pods', propagation: 'slave' });
  assert.deepEqual(mountPropagationOf(mountinfo, '/mnt/with space/a'), { mountPoint: '/mnt/with space', propagation: 'shared' });
  assert.deepEqual(mountPropagationOf(mountinfo, '/var/lib/kubeletx'), { mountPoint: '/', propagation: 'private' });
});
