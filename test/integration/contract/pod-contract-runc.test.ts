// The sandbox contract with real runc pods: compat cgroups (S12) and pod mount hints
// (S14) through the daemon.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { failure, makeContainerEnv, waitFor } from '../container/container-env.js';

const HIERARCHIES = ['cpu', 'cpuacct', 'memory', 'pids', 'devices', 'freezer', 'blkio', 'cpuset', 'systemd'].filter((h) =>
  fs.existsSync(`/sys/fs/cgroup/${h}`),
);
const cgDir = (h: string, cg: string): string => path.join('/sys/fs/cgroup', h, cg);
const mountedAt = (p: string): boolean =>
  fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4] === p);

test(
  'S12: each container cgroup sits under the pod cgroup in every hierarchy while it runs; all are gone after removal (runc)',
  { timeout: 180_000 },
  async (t) => {
    const env = await makeContainerEnv(t);
    const pod = await env.runPod('cgroups');
    const podInfo = JSON.parse(((await env.d.runtime('PodSandboxStatus', { pod_sandbox_id: pod, verbose: true })).info as Record<string, string>).info) as {
      podCgroup: string;
    };
    const a = await env.createContainer(pod, 'a', { command: ['/bin/sh', '-c', 'sleep 3600'] });
    const b = await env.createContainer(pod, 'b', { command: ['/bin/sh', '-c', 'sleep 3600'] });
    await env.d.runtime('StartContainer', { container_id: a });
    await env.d.runtime('StartContainer', { container_id: b });
    const cgA = String((await env.info(a)).cgroupPath);
    const cgB = String((await env.info(b)).cgroupPath);
    assert.equal(path.dirname(cgA), podInfo.podCgroup, 'the pod cgroup is the parent');
    assert.equal(path.dirname(cgB), podInfo.podCgroup);
    for (const h of HIERARCHIES) {
      assert.ok(fs.existsSync(cgDir(h, cgA)), `${h}: container a's cgroup exists`);
      assert.ok(fs.existsSync(cgDir(h, cgB)), `${h}: container b's cgroup exists`);
    }
    const pidA = Number((await env.info(a)).pid);
    assert.ok(
      fs
        .readFileSync(cgDir('memory', cgA) + '/cgroup.procs', 'utf8')
        .split('\n')
        .includes(String(pidA)),
      'the process sits in its own cgroup',
    );

    await env.d.runtime('RemoveContainer', { container_id: a });
    for (const h of HIERARCHIES) assert.ok(!fs.existsSync(cgDir(h, cgA)), `${h}: a's cgroup is gone with a`);
    assert.ok(fs.existsSync(cgDir('memory', cgB)));

    await env.d.runtime('RemovePodSandbox', { pod_sandbox_id: pod }, 120_000);
    for (const h of HIERARCHIES) {
      assert.ok(!fs.existsSync(cgDir(h, cgB)), `${h}: b's cgroup is gone`);
      assert.ok(!fs.existsSync(cgDir(h, podInfo.podCgroup)), `${h}: the pod cgroup is gone`);
    }
  },
);

test(
  'S14: a pod-shared tmpfs hint is one tmpfs of the pod: container A writes a file, container B reads it; unmounted at removal (runc)',
  { timeout: 180_000 },
  async (t) => {
    const env = await makeContainerEnv(t);
    const source = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-hint-src-'));
    t.after(() => fs.rmSync(source, { recursive: true, force: true }));
    const pod = await env.runPod('hints', {
      annotations: {
        'dev.gvisor.spec.mount.shared.source': source,
        'dev.gvisor.spec.mount.shared.type': 'tmpfs',
        'dev.gvisor.spec.mount.shared.share': 'pod',
        'dev.gvisor.spec.mount.shared.options': 'rw,size=8m',
      },
    });
    const podDir = path.join(env.d.stateDir, 'pods', pod);
    const tmpfs = path.join(podDir, 'mounts', 'shared');
    assert.ok(mountedAt(tmpfs), 'the pod tmpfs is mounted once for the pod');
    const mount = [{ container_path: '/data', host_path: source }];
    const writer = await env.createContainer(pod, 'writer', { command: ['/bin/sh', '-c', 'echo from-a > /data/note && df -k /data | tail -1'], mounts: mount });
    await env.d.runtime('StartContainer', { container_id: writer });
    assert.equal((await env.waitState(writer, 'CONTAINER_EXITED')).exit_code, 0);
    const reader = await env.createContainer(pod, 'reader', { command: ['/bin/sh', '-c', 'cat /data/note'], mounts: mount });
    await env.d.runtime('StartContainer', { container_id: reader });
    assert.equal((await env.waitState(reader, 'CONTAINER_EXITED')).exit_code, 0);
    const log = fs.readFileSync(path.join(env.logDir, 'hints', 'reader.log'), 'utf8');
    assert.match(log, /stdout F from-a/);
    const writerLog = fs.readFileSync(path.join(env.logDir, 'hints', 'writer.log'), 'utf8');
    assert.match(writerLog, /tmpfs\s+8192\s/, 'the volume is the 8 MiB tmpfs of the hint');
    assert.deepEqual(fs.readdirSync(source), [], 'the host source is untouched: the pod tmpfs replaced it');
    assert.equal(fs.readFileSync(path.join(tmpfs, 'note'), 'utf8'), 'from-a\n');

    await env.d.runtime('RemovePodSandbox', { pod_sandbox_id: pod }, 120_000);
    await waitFor('the pod tmpfs to be gone', () => !mountedAt(tmpfs));
    assert.ok(!fs.existsSync(podDir));
  },
);

test('S14: an unknown mount hint type or share is INVALID_ARGUMENT naming the annotation; nothing is made', { timeout: 120_000 }, async (t) => {
  const env = await makeContainerEnv(t);
  const bad = await failure(
    env.runPod('badhint', {
      annotations: {
        'dev.gvisor.spec.mount.v.source': '/tmp',
        'dev.gvisor.spec.mount.v.type': 'nfs',
        'dev.gvisor.spec.mount.v.share': 'pod',
      },
    }),
  );
  assert.equal(bad.code, 3);
  assert.match(bad.details, /dev\.gvisor\.spec\.mount\.v\.type/);
  assert.match(bad.details, /nfs/);
  const badShare = await failure(
    env.runPod('badshare', {
      annotations: {
        'dev.gvisor.spec.mount.v.source': '/tmp',
        'dev.gvisor.spec.mount.v.type': 'bind',
        'dev.gvisor.spec.mount.v.share': 'everyone',
      },
    }),
  );
  assert.equal(badShare.code, 3);
  assert.match(badShare.details, /dev\.gvisor\.spec\.mount\.v\.share/);
  assert.equal(((await env.d.runtime('ListPodSandbox', {})).items as unknown[]).length, 0);
});
