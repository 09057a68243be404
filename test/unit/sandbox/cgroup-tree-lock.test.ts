// S12: creating a cgroup path and pruning the empty ancestors of a removed one must not
// interleave, or a prune can rmdir the parent a create has just made (a runsc
// container's cgroup under a pod's parent). The daemon makes one CgroupManager and
// passes it to pods, containers and the pod-resources updater; its tree lock orders
// them. Here on plain directories standing in for a cgroup v2 mount.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CgroupManager, type CgroupLayout } from '../../../src/sandbox/resources/cgroups.js';

function fakeMount(t: { after: (fn: () => void) => void }): { mnt: string; layout: CgroupLayout } {
  const mnt = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-cgroup-lock-'));
  t.after(() => fs.rmSync(mnt, { recursive: true, force: true }));
  // A removal with work to do: five nested child cgroups.
  fs.mkdirSync(path.join(mnt, 'kubepods/pod-a/c1/c2/c3/c4/c5'), { recursive: true });
  return { mnt, layout: { version: 2, hierarchies: [{ mountpoint: mnt, controllers: [], version: 2 }] } };
}

/** Runs remove('/kubepods/pod-a') and create('/kubepods/pod-b') at once; says whether any rmdir of the removal came after the create's mkdir. */
async function createDuringRemove(remover: CgroupManager, creator: CgroupManager, mnt: string): Promise<boolean> {
  const events: string[] = [];
  const { mkdir: realMkdir, rmdir: realRmdir } = fsp;
  fsp.mkdir = (async (p: fs.PathLike, opts?: fs.MakeDirectoryOptions) => {
    if (String(p).startsWith(path.join(mnt, 'kubepods/pod-b'))) events.push('mkdir');
    return realMkdir(p, opts);
  }) as typeof fsp.mkdir;
  fsp.rmdir = async (p: fs.PathLike) => {
    events.push('rmdir');
    return realRmdir(p);
  };
  try {
    await Promise.all([remover.remove('/kubepods/pod-a'), creator.create('/kubepods/pod-b', {})]);
  } finally {
    fsp.mkdir = realMkdir;
    fsp.rmdir = realRmdir;
  }
  assert.ok(fs.existsSync(path.join(mnt, 'kubepods/pod-b')), 'the created cgroup exists afterwards');
  assert.ok(!fs.existsSync(path.join(mnt, 'kubepods/pod-a')), 'the removed cgroup is gone');
  const at = events.indexOf('mkdir');
  assert.ok(at >= 0, 'the create made its directory');
  return events.slice(at).includes('rmdir');
}

test('S12: through one CgroupManager, a create waits for a removal that prunes the shared parent', async (t) => {
  const { mnt, layout } = fakeMount(t);
  const shared = new CgroupManager({ layout, procSelfCgroup: '0::/elsewhere\n' });
  // Two users (say the pod manager removing a pod, the container manager creating a
  // runsc container's cgroup) holding the same instance.
  const podsUser = shared;
  const containersUser = shared;
  assert.equal(await createDuringRemove(podsUser, containersUser, mnt), false);
});

test('S12: separate CgroupManagers (the old wiring) do interleave: why the daemon makes only one', async (t) => {
  const { mnt, layout } = fakeMount(t);
  const a = new CgroupManager({ layout, procSelfCgroup: '0::/elsewhere\n' });
  const b = new CgroupManager({ layout, procSelfCgroup: '0::/elsewhere\n' });
  assert.equal(await createDuringRemove(a, b, mnt), true);
});
