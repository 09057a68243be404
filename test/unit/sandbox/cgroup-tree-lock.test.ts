// S12: creating a cgroup path and pruning the empty ancestors of a removed one must not
// interleave, or a prune can rmdir the parent a create has just made (a runsc
// container's cgroup under a pod's parent). The daemon makes one CgroupManager and
// passes it to pods, containers and the pod-resources updater; its tree lock orders
// them (creates share it, a prune takes it exclusively), and each create's mkdirs and
// each prune run synchronously (cgroupfs calls take microseconds), so neither can stop
// half-way for the other. Here on plain directories standing in for a cgroup v2 mount.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CgroupManager, type CgroupLayout } from '../../../src/sandbox/resources/cgroups.js';

function fakeMount(t: { after: (fn: () => void) => void }): { mnt: string; layout: CgroupLayout } {
  const mnt = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-cgroup-lock-'));
  t.after(() => fs.rmSync(mnt, { recursive: true, force: true }));
  return { mnt, layout: { version: 2, hierarchies: [{ mountpoint: mnt, controllers: [], version: 2 }] } };
}

test('S12: removals and creates under one shared parent at once: every created cgroup stays, every removed one and the empty parent go', async (t) => {
  const { mnt, layout } = fakeMount(t);
  const cgroups = new CgroupManager({ layout, procSelfCgroup: '0::/elsewhere\n' });
  for (let round = 0; round < 20; round++) {
    // A removal with work to do (nested children) beside creates of siblings, in both orders.
    fs.mkdirSync(path.join(mnt, `kubepods/old-${round}/c1/c2/c3`), { recursive: true });
    const remove = cgroups.remove(`/kubepods/old-${round}`);
    const creates = [cgroups.create(`/kubepods/new-${round}-a`, {}), cgroups.create(`/kubepods/new-${round}-b/child`, {})];
    await (round % 2 === 0 ? Promise.all([remove, ...creates]) : Promise.all([...creates, remove]));
    assert.ok(!fs.existsSync(path.join(mnt, `kubepods/old-${round}`)), `round ${round}: the removed cgroup is gone`);
    for (const made of [`new-${round}-a`, `new-${round}-b/child`]) {
      assert.ok(fs.existsSync(path.join(mnt, 'kubepods', made)), `round ${round}: "${made}" exists after the removal's prune`);
    }
  }
  for (const name of fs.readdirSync(path.join(mnt, 'kubepods'))) await cgroups.remove(`/kubepods/${name}`);
  assert.ok(!fs.existsSync(path.join(mnt, 'kubepods')), 'the parent left empty is pruned');
});

test('S12: the kept parent of pods stays after its last pod goes (made once, not for every pod) and goes at close() when empty', async (t) => {
  const { mnt, layout } = fakeMount(t);
  const cgroups = new CgroupManager({ layout, procSelfCgroup: '0::/elsewhere\n', keep: ['/root/sandlot'] });
  await cgroups.create('/root/sandlot/pod-a', {});
  await cgroups.create('/root/sandlot/pod-b/infra', {});
  await cgroups.remove('/root/sandlot/pod-a');
  await cgroups.remove('/root/sandlot/pod-b/infra');
  assert.ok(!fs.existsSync(path.join(mnt, 'root/sandlot/pod-a')), 'the removed pod cgroup is gone');
  assert.ok(!fs.existsSync(path.join(mnt, 'root/sandlot/pod-b')), 'an emptied ancestor below the kept parent is pruned');
  assert.ok(fs.existsSync(path.join(mnt, 'root/sandlot')), 'the kept parent stays while the daemon runs');
  // Paths outside the kept one are pruned as before.
  await cgroups.create('/kubepods/pod-c/infra', {});
  await cgroups.remove('/kubepods/pod-c/infra');
  assert.ok(!fs.existsSync(path.join(mnt, 'kubepods')), 'an emptied parent that is not kept is pruned');
  // A pod left at close (it outlives the daemon) keeps the parent; once gone, close prunes it.
  await cgroups.create('/root/sandlot/pod-d', {});
  await cgroups.close();
  assert.ok(fs.existsSync(path.join(mnt, 'root/sandlot/pod-d')), 'a pod cgroup left at close stays, and its parent with it');
  fs.rmdirSync(path.join(mnt, 'root/sandlot/pod-d'));
  await cgroups.close();
  assert.ok(!fs.existsSync(path.join(mnt, 'root')), 'close prunes the empty kept parent and its empty ancestors');
});
