import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { NODE_SPEC_LOOKUPS, resolveInRoot } from '../../../src/oci/spec-container.js';

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
  assert.ok(!host.some((d) => d.path.startsWith('/dev/pts/')), '/dev/pts is the container\'s own');
});
