// conmon_cgroup (as CRI-O's): every conmon (each app container's: a pod's infra has none
// since issue 13) is moved into its own cgroup below cgroup_root, so conmons outlive the daemon's cgroup
// (a DaemonSet pod's, deleted on a rolling update) and do not count against it.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { removeCgroupTree } from '../../../src/sandbox/resources/cgroups.js';
import { testCgroupRoot } from '../../helpers/cgroup.js';
import { makeContainerEnv } from './container-env.js';

/** The memory-hierarchy (v1) or unified (v2) cgroup path of a process. */
function memoryCgroupOf(pid: number): string {
  const lines = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n');
  const mem = lines.find((l) => l.split(':')[1]?.split(',').includes('memory'));
  return (mem ?? lines.find((l) => l.startsWith('0::')) ?? '').split(':')[2] ?? '';
}

let n = 0;
for (const handler of ['runc', 'runsc']) {
  test(
    `conmon_cgroup: the container conmons of a ${handler} pod sit in the configured cgroup, the infra (no conmon) and the daemon do not`,
    { timeout: 240_000 },
    async (t) => {
      n += 1;
      const conmonCgroup = `/sandlot-conmon-test-${process.pid}-${n}`;
      const env = await makeContainerEnv(t, { config: { conmon_cgroup: conmonCgroup } });
      // Registered after the env's cleanup, so it runs once the conmons are gone.
      const expected = path.join(testCgroupRoot(), conmonCgroup);
      t.after(() => removeCgroupTree(expected).catch(() => undefined));

      const pod = await env.runPod(`cg-${handler}`, {}, handler);
      const { pid: infra, conmonPid: infraConmon } = await env.podInfo(pod);
      assert.equal(infraConmon, 0, 'the infra has no conmon');
      assert.notEqual(memoryCgroupOf(infra), expected, 'the infra stays in the pod cgroup');

      const id = await env.createContainer(pod, 'sleeper', { command: ['/bin/sh', '-c', 'sleep 3600'] });
      await env.d.runtime('StartContainer', { container_id: id });
      await env.waitState(id, 'CONTAINER_RUNNING');
      const info = await env.info(id);
      const conmon = Number(info.conmonPid);
      env.pids.push(conmon);
      assert.equal(memoryCgroupOf(conmon), expected, 'the container conmon');
      assert.notEqual(memoryCgroupOf(Number(info.pid)), expected, 'the container itself stays in the pod cgroup');
      assert.notEqual(memoryCgroupOf(env.d.pid!), expected, 'the daemon is not moved');
    },
  );
}

test('conmon_cgroup: a relative path or "/" is INVALID config naming the key', async () => {
  const { validateConfig } = await import('../../../src/config/load.js');
  const { defaultConfig } = await import('../../../src/config/defaults.js');
  assert.throws(() => validateConfig({ ...defaultConfig(), conmon_cgroup: 'conmon' }), /conmon_cgroup = "conmon"/);
  assert.throws(() => validateConfig({ ...defaultConfig(), conmon_cgroup: '/' }), /conmon_cgroup = "\/"/);
  assert.equal(validateConfig({ ...defaultConfig() }).conmon_cgroup, '');
});
