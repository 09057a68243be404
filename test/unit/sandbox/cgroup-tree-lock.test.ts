// S12: creating a cgroup path and pruning the empty ancestors of a removed one must not
// interleave, or a prune can rmdir the parent a create has just made (a runsc
// container's cgroup under a pod's parent). The daemon makes one CgroupManager and
// passes it to pods, containers and the pod-resources updater; its tree lock orders
// them: creates share it, a prune takes it exclusively (a removal's own tree goes
// without it, so creates never wait for a removal's EBUSY retries). Here on plain
// directories standing in for a cgroup v2 mount.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CgroupManager, type CgroupLayout } from '../../../src/sandbox/resources/cgroups.js';

/** At most this long the create's mkdir waits for the removal's own tree to be gone. */
const TREE_GONE_WAIT_MS = 10_000;

function fakeMount(t: { after: (fn: () => void) => void }): { mnt: string; layout: CgroupLayout } {
  const mnt = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-cgroup-lock-'));
  t.after(() => fs.rmSync(mnt, { recursive: true, force: true }));
  // A removal with work to do: five nested child cgroups.
  fs.mkdirSync(path.join(mnt, 'kubepods/pod-a/c1/c2/c3/c4/c5'), { recursive: true });
  return { mnt, layout: { version: 2, hierarchies: [{ mountpoint: mnt, controllers: [], version: 2 }] } };
}

/**
 * Runs remove('/kubepods/pod-a') and create('/kubepods/pod-b') at once, the create's
 * mkdir held open until the removal's own tree is gone and the event loop has turned
 * (an unblocked prune has been issued by then); says whether the removal tried to rmdir
 * an ancestor (the shared /kubepods) while that mkdir was in progress.
 */
async function pruneDuringCreate(remover: CgroupManager, creator: CgroupManager, mnt: string): Promise<boolean> {
  const events: string[] = [];
  const podA = path.join(mnt, 'kubepods/pod-a');
  let treeGone!: () => void;
  const gone = new Promise<void>((resolve) => (treeGone = resolve));
  const { mkdir: realMkdir, rmdir: realRmdir } = fsp;
  fsp.mkdir = (async (p: fs.PathLike, opts?: fs.MakeDirectoryOptions) => {
    if (!String(p).startsWith(path.join(mnt, 'kubepods/pod-b'))) return realMkdir(p, opts);
    events.push('mkdir-start');
    await Promise.race([gone, sleep(TREE_GONE_WAIT_MS)]);
    await new Promise((resolve) => setImmediate(resolve));
    try {
      return await realMkdir(p, opts);
    } finally {
      events.push('mkdir-end');
    }
  }) as typeof fsp.mkdir;
  fsp.rmdir = async (p: fs.PathLike) => {
    if (!String(p).startsWith(podA)) events.push('rmdir-ancestor');
    await realRmdir(p);
    if (String(p) === podA) treeGone();
  };
  try {
    await Promise.all([remover.remove('/kubepods/pod-a'), creator.create('/kubepods/pod-b', {})]);
  } finally {
    fsp.mkdir = realMkdir;
    fsp.rmdir = realRmdir;
  }
  assert.ok(fs.existsSync(path.join(mnt, 'kubepods/pod-b')), 'the created cgroup exists afterwards');
  assert.ok(!fs.existsSync(path.join(mnt, 'kubepods/pod-a')), 'the removed cgroup is gone');
  const start = events.indexOf('mkdir-start');
  const end = events.indexOf('mkdir-end');
  assert.ok(start >= 0 && end > start, 'the create made its directory');
  assert.ok(events.includes('rmdir-ancestor'), 'the removal tried to prune the shared parent');
  return events.slice(start, end).includes('rmdir-ancestor');
}

test('S12: through one CgroupManager, a prune of the shared parent waits for a create in progress', async (t) => {
  const { mnt, layout } = fakeMount(t);
  const shared = new CgroupManager({ layout, procSelfCgroup: '0::/elsewhere\n' });
  // Two users (say the pod manager removing a pod, the container manager creating a
  // runsc container's cgroup) holding the same instance.
  const podsUser = shared;
  const containersUser = shared;
  assert.equal(await pruneDuringCreate(podsUser, containersUser, mnt), false);
});

test('S12: separate CgroupManagers (the old wiring) do interleave: why the daemon makes only one', async (t) => {
  const { mnt, layout } = fakeMount(t);
  const a = new CgroupManager({ layout, procSelfCgroup: '0::/elsewhere\n' });
  const b = new CgroupManager({ layout, procSelfCgroup: '0::/elsewhere\n' });
  assert.equal(await pruneDuringCreate(a, b, mnt), true);
});
