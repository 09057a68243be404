// A pod per handler through the CRI handlers over the real runtimes: runs, is isolated,
// is networked (IP on the bridge, answers ping), sits in its cgroup under the test's;
// then stop and remove leave nothing (S7). crun: the not-ready path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { alive, execFileAsync, ipamLeases, isMounted, makePodEnv, mountsWith, podConfig } from './pod-env.js';

for (const handler of ['runc', 'runsc']) {
  test(`${handler}: a pod runs isolated and networked, then stop and remove leave no trace`, { timeout: 180_000 }, async (t) => {
    const env = await makePodEnv(t);
    const { pod_sandbox_id: id } = (await env.call('RunPodSandbox', { config: podConfig(`life-${handler}`), runtime_handler: handler })) as {
      pod_sandbox_id: string;
    };
    assert.match(id, /^[0-9a-f]{64}$/);
    const st = (await env.call('PodSandboxStatus', { pod_sandbox_id: id, verbose: true })) as {
      status: { state: string; network: { ip: string }; runtime_handler: string; metadata: { name: string } };
      info: { info: string };
    };
    assert.equal(st.status.state, 'SANDBOX_READY');
    assert.equal(st.status.runtime_handler, handler);
    assert.equal(st.status.metadata.name, `life-${handler}`);
    const info = JSON.parse(st.info.info) as { pid: number; conmonPid: number; netnsPath: string; podCgroup: string; paths: { dir: string; shm: string } };
    const ip = st.status.network.ip;
    assert.ok(ip.startsWith(`${env.subnetPrefix}.`), `pod IP ${ip} lies in the test subnet`);

    // The infra process runs, in its own namespaces, inside the pinned netns.
    assert.ok(alive(info.pid), 'the infra process runs');
    const ns = (pid: number | 'self', kind: string): string => fs.readlinkSync(`/proc/${pid}/ns/${kind}`);
    // runsc: the host PID is the gVisor sandbox; the pod's PID namespace lives in its kernel.
    const kinds = handler === 'runsc' ? ['mnt', 'ipc', 'uts'] : ['mnt', 'ipc', 'uts', 'pid'];
    for (const kind of kinds) assert.notEqual(ns(info.pid, kind), ns('self', kind), `${kind} namespace is the pod's own`);
    if (handler === 'runsc') assert.match(fs.readFileSync(`/proc/${info.pid}/cmdline`, 'utf8'), /runsc-sandbox/);
    // Issue 13: no conmon for the infra; it holds nothing of ours, its stdio is /dev/null.
    assert.equal(info.conmonPid, 0, 'the infra has no conmon');
    const parent = Number(fs.readFileSync(`/proc/${info.pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[1]);
    assert.doesNotMatch(fs.readFileSync(`/proc/${parent}/comm`, 'utf8'), /conmon/, 'the infra is no conmon child');
    for (const fd of [0, 1, 2]) assert.equal(fs.readlinkSync(`/proc/${info.pid}/fd/${fd}`), '/dev/null', `the infra's fd ${fd} is /dev/null`);
    assert.ok(isMounted(info.netnsPath), 'the netns is pinned');
    assert.equal(fs.statSync(`/proc/${info.pid}/ns/net`).ino, fs.statSync(info.netnsPath).ino, 'the infra lives in the pinned netns');
    assert.ok(isMounted(info.paths.shm), 'the pod /dev/shm is mounted');

    // The pod cgroup exists under the test's cgroup root and holds the infra.
    assert.ok(info.podCgroup.startsWith(`${env.config.cgroup_root}/`));
    assert.ok(fs.existsSync(path.join('/sys/fs/cgroup/memory', info.podCgroup)));
    const memLine = fs
      .readFileSync(`/proc/${info.pid}/cgroup`, 'utf8')
      .split('\n')
      .find((l) => /:memory:/.test(l));
    // runc nests the infra's cgroup under the pod cgroup; runsc puts the sandbox in the pod
    // cgroup itself (the dev.gvisor.spec.cgroup-parent annotation, S12).
    const infraCg = memLine?.split(':')[2] ?? '';
    assert.ok(infraCg === info.podCgroup || infraCg.startsWith(`${info.podCgroup}/`), `infra cgroup ${infraCg} lies in the pod cgroup`);

    // On the bridge, and it answers ping from the host.
    assert.ok(fs.readdirSync(`/sys/class/net/${env.bridge}/brif`).length >= 1, 'a veth is on the bridge');
    await execFileAsync('ping', ['-c', '1', '-W', '5', ip]);

    const list = (await env.call('ListPodSandbox', { filter: { id: id.slice(0, 12) } })) as { items: Array<{ id: string; state: string }> };
    assert.deepEqual(
      list.items.map((i) => [i.id, i.state]),
      [[id, 'SANDBOX_READY']],
    );

    await env.call('StopPodSandbox', { pod_sandbox_id: id });
    await env.call('StopPodSandbox', { pod_sandbox_id: id }); // idempotent
    const stopped = (await env.call('PodSandboxStatus', { pod_sandbox_id: id })) as { status: { state: string } };
    assert.equal(stopped.status.state, 'SANDBOX_NOTREADY');
    assert.ok(!alive(info.pid), 'the infra process is gone after stop');
    assert.ok(!fs.existsSync(info.netnsPath), 'the netns is unpinned after stop');
    // runc deletes the infra at the stop (RemovePodSandbox runs no runtime process, issue 13);
    // runsc's infra is the sandbox its containers live in: deleted at the remove.
    const known = await env.pods.driver(handler).state(id);
    if (handler === 'runc') assert.equal(known, undefined, 'runc no longer knows the infra after the stop');
    else assert.notEqual(known, undefined, 'runsc keeps the sandbox until the remove');

    await env.call('RemovePodSandbox', { pod_sandbox_id: id });
    await env.call('RemovePodSandbox', { pod_sandbox_id: id }); // idempotent
    await assert.rejects(env.call('PodSandboxStatus', { pod_sandbox_id: id }), { name: 'NotFoundError' });
    assert.equal(await env.pods.driver(handler).state(id), undefined, 'the runtime no longer knows the infra');
    assert.deepEqual(mountsWith(id), [], 'no mount of the pod is left');
    for (const h of fs.readdirSync('/sys/fs/cgroup')) {
      assert.ok(!fs.existsSync(path.join('/sys/fs/cgroup', h, info.podCgroup)), `no pod cgroup left in ${h}`);
    }
    assert.ok(!fs.existsSync(info.paths.dir), 'the pod state dir is gone');
    assert.ok(!fs.existsSync(path.join(env.config.root_dir, 'pods', id)), 'the pod metadata is gone');
    assert.deepEqual(ipamLeases(env.config.state_dir), [], 'no IPAM lease is left');
    const ports = fs.existsSync(`/sys/class/net/${env.bridge}/brif`) ? fs.readdirSync(`/sys/class/net/${env.bridge}/brif`) : [];
    assert.deepEqual(ports, [], 'no veth is left on the bridge');
    assert.equal(env.pods.runtimeHandlers().find((h) => h.name === handler)?.ready, true);
  });
}

test('crun: the handler is configured but not ready here, and a pod asking for it fails with the reason, leaving nothing', { timeout: 120_000 }, async (t) => {
  const env = await makePodEnv(t);
  const crun = env.pods.runtimeHandlers().find((h) => h.name === 'crun');
  assert.equal(crun?.ready, false);
  assert.match(crun.message, /hybrid mode not supported/);
  await assert.rejects(env.call('RunPodSandbox', { config: podConfig('crun-pod'), runtime_handler: 'crun' }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'FAILED_PRECONDITION');
    assert.match(e.message, /runtime handler "crun" is not ready: RuntimeProbeFailed: .*hybrid mode not supported/);
    return true;
  });
  assert.deepEqual(env.pods.list(), []);
  assert.deepEqual(
    fs.readdirSync(path.join(env.config.state_dir)).filter((d) => d === 'pods'),
    [],
  );
});

test('runc: pod resources and overhead are written on the pod cgroup', { timeout: 120_000 }, async (t) => {
  const env = await makePodEnv(t);
  const config = podConfig('limits', {
    linux: {
      security_context: { namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } },
      resources: { cpu_shares: '512', cpu_quota: '50000', cpu_period: '100000', memory_limit_in_bytes: String(256 * 1024 * 1024) },
      overhead: { cpu_shares: '10', memory_limit_in_bytes: String(16 * 1024 * 1024) },
    },
  });
  const { pod_sandbox_id: id } = (await env.call('RunPodSandbox', { config })) as { pod_sandbox_id: string };
  const cg = env.pods.get(id).podCgroup;
  const read = (h: string, f: string): string => fs.readFileSync(path.join('/sys/fs/cgroup', h, cg, f), 'utf8').trim();
  assert.equal(read('memory', 'memory.limit_in_bytes'), String(272 * 1024 * 1024));
  assert.equal(read('cpu', 'cpu.shares'), '522');
  assert.equal(read('cpu', 'cpu.cfs_quota_us'), '50000');
  await env.call('RemovePodSandbox', { pod_sandbox_id: id });
  assert.ok(!fs.existsSync(path.join('/sys/fs/cgroup/memory', cg)));
});

test('runc: a host-network pod shares the host network, skips CNI, and still goes away cleanly', { timeout: 120_000 }, async (t) => {
  const env = await makePodEnv(t);
  const config = podConfig('hostnet', { linux: { security_context: { namespace_options: { network: 'NODE', pid: 'NODE', ipc: 'NODE' } } } });
  const { pod_sandbox_id: id } = (await env.call('RunPodSandbox', { config })) as { pod_sandbox_id: string };
  const st = (await env.call('PodSandboxStatus', { pod_sandbox_id: id, verbose: true })) as {
    status: { network: { ip: string }; linux: { namespaces: { options: { network: string; pid: string; ipc: string } } } };
    info: { info: string };
  };
  assert.equal(st.status.network.ip, '');
  assert.deepEqual({ ...st.status.linux.namespaces.options, target_id: undefined }, { network: 'NODE', pid: 'NODE', ipc: 'NODE', target_id: undefined });
  const info = JSON.parse(st.info.info) as { pid: number; netnsPath: string };
  for (const kind of ['net', 'pid', 'ipc', 'uts']) {
    assert.equal(fs.readlinkSync(`/proc/${info.pid}/ns/${kind}`), fs.readlinkSync(`/proc/self/ns/${kind}`), `${kind} is the host's`);
  }
  assert.equal(info.netnsPath, '');
  assert.deepEqual(ipamLeases(env.config.state_dir), []);
  await env.call('RemovePodSandbox', { pod_sandbox_id: id });
  assert.ok(!alive(info.pid));
  assert.deepEqual(mountsWith(id), []);
});
