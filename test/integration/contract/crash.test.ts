// After a daemon crash (kill -9): S12 and S14 leave nothing once the pods are removed,
// whether the pod survived the crash (runsc) or died while the daemon was down (runc,
// with its pod tmpfs of a mount hint still mounted).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { alive, makeContainerEnv, waitFor } from '../container/container-env.js';

const HIERARCHIES = ['cpu', 'cpuacct', 'memory', 'pids', 'devices', 'freezer', 'blkio', 'cpuset', 'systemd'].filter((h) =>
  fs.existsSync(`/sys/fs/cgroup/${h}`),
);
const mountedUnder = (dir: string): string[] =>
  fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((p) => p === dir || p.startsWith(`${dir}/`));
const CALL_MS = 120_000;

test('S12: after kill -9 of the daemon, RemovePodSandbox of a running runsc pod leaves no container or pod cgroup', { timeout: 300_000 }, async (t) => {
  const env = await makeContainerEnv(t);
  const pod = await env.runPod('gvisor-crash', {}, 'runsc');
  const podCg = (
    JSON.parse(((await env.d.runtime('PodSandboxStatus', { pod_sandbox_id: pod, verbose: true })).info as Record<string, string>).info) as { podCgroup: string }
  ).podCgroup;
  const c = await env.createContainer(pod, 'sleeper', { command: ['/bin/sh', '-c', 'sleep 3600'] });
  await env.d.runtime('StartContainer', { container_id: c }, CALL_MS);
  const cg = String((await env.info(c)).cgroupPath);
  assert.ok(fs.existsSync(path.join('/sys/fs/cgroup/memory', cg)));

  await env.d.kill9();
  await env.d.start();
  assert.equal((await env.status(c)).state, 'CONTAINER_RUNNING', 'the container survived the crash');
  await env.d.runtime('RemovePodSandbox', { pod_sandbox_id: pod }, CALL_MS);
  for (const h of HIERARCHIES) {
    assert.ok(!fs.existsSync(path.join('/sys/fs/cgroup', h, cg)), `${h}: the container cgroup is gone`);
    assert.ok(!fs.existsSync(path.join('/sys/fs/cgroup', h, podCg)), `${h}: the pod cgroup is gone`);
  }
});

test('S14: a runc pod that died while the daemon was down: removal unmounts its hint tmpfs and leaves no cgroup', { timeout: 300_000 }, async (t) => {
  const env = await makeContainerEnv(t);
  const source = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-hint-crash-'));
  t.after(() => fs.rmSync(source, { recursive: true, force: true }));
  const pod = await env.runPod('crash-hints', {
    annotations: {
      'dev.gvisor.spec.mount.v.source': source,
      'dev.gvisor.spec.mount.v.type': 'tmpfs',
      'dev.gvisor.spec.mount.v.share': 'pod',
    },
  });
  const podDir = path.join(env.d.stateDir, 'pods', pod);
  const podCg = (
    JSON.parse(((await env.d.runtime('PodSandboxStatus', { pod_sandbox_id: pod, verbose: true })).info as Record<string, string>).info) as { podCgroup: string }
  ).podCgroup;
  assert.deepEqual(mountedUnder(path.join(podDir, 'mounts')), [path.join(podDir, 'mounts', 'v')]);
  const { pid, conmonPid } = await env.podInfo(pod);

  await env.d.kill9();
  process.kill(pid, 'SIGKILL'); // the pod dies while nobody watches
  await waitFor('the infra to be gone', () => !alive(pid) && !alive(conmonPid), 60_000);
  await env.d.start();
  const st = (await env.d.runtime('PodSandboxStatus', { pod_sandbox_id: pod })).status as { state: string };
  assert.equal(st.state, 'SANDBOX_NOTREADY');
  await env.d.runtime('RemovePodSandbox', { pod_sandbox_id: pod }, CALL_MS);
  assert.deepEqual(mountedUnder(podDir), [], 'nothing mounted under the pod dir');
  assert.ok(!fs.existsSync(podDir));
  for (const h of HIERARCHIES) assert.ok(!fs.existsSync(path.join('/sys/fs/cgroup', h, podCg)), `${h}: the pod cgroup is gone`);
});
