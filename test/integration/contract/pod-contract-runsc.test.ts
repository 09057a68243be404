// The sandbox contract with real runsc pods (gVisor): the sandbox OOM score (S10) and
// each monitor's (S11), compat cgroups (S12), proportional CPU in the stats (S13), a
// pod-shared tmpfs hint (S14), and the pod's limits holding for the whole sandbox.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeContainerEnv, waitFor, type ContainerEnv } from '../container/container-env.js';

const MIB = 1024 * 1024;
const CALL_MS = 120_000;
/** A UInt64Value wrapper (int64 decoded as a string); one the daemon leaves unset is null, read as NaN. */
const val = (w: { value: string | number } | null | undefined): number => Number(w?.value ?? NaN);
const HIERARCHIES = ['cpu', 'cpuacct', 'memory', 'pids', 'devices', 'freezer', 'blkio', 'cpuset', 'systemd'].filter((h) =>
  fs.existsSync(`/sys/fs/cgroup/${h}`),
);
const score = (pid: number): number => Number(fs.readFileSync(`/proc/${pid}/oom_score_adj`, 'utf8').trim());

async function podCgroup(env: ContainerEnv, pod: string): Promise<string> {
  const r = await env.d.runtime('PodSandboxStatus', { pod_sandbox_id: pod, verbose: true });
  return (JSON.parse((r.info as Record<string, string>).info) as { podCgroup: string }).podCgroup;
}

test(
  'S10: the runsc sandbox oom_score_adj is the min over its containers (300, 700, none), back to the original when none is left; S11 for each monitor',
  { timeout: 300_000 },
  async (t) => {
    const env = await makeContainerEnv(t);
    const pod = await env.runPod('gvisor-oom', {}, 'runsc');
    const { pid: sandboxPid } = await env.podInfo(pod);
    const original = score(sandboxPid);
    assert.ok(original < 300, `the sandbox starts below the test values (${original})`);
    const sleeper = (name: string, adj?: number): Promise<string> =>
      env.createContainer(pod, name, {
        command: ['/bin/sh', '-c', 'sleep 3600'],
        ...(adj !== undefined ? { linux: { resources: { oom_score_adj: adj } } } : {}),
      });
    const a = await sleeper('a300', 300);
    const b = await sleeper('b700', 700);
    const c = await sleeper('cnone');
    await env.d.runtime('StartContainer', { container_id: b }, CALL_MS);
    await waitFor('the sandbox at 700', () => score(sandboxPid) === 700);
    await env.d.runtime('StartContainer', { container_id: a }, CALL_MS);
    await waitFor('the sandbox at 300', () => score(sandboxPid) === 300);
    await env.d.runtime('StartContainer', { container_id: c }, CALL_MS);
    assert.equal(score(sandboxPid), 300, 'a container without a value changes nothing');
    // S11: each container's monitor carries its score.
    assert.equal(score(Number((await env.info(a)).conmonPid)), 300);
    assert.equal(score(Number((await env.info(b)).conmonPid)), 700);

    await env.d.runtime('StopContainer', { container_id: a, timeout: 0 }, CALL_MS);
    await env.d.runtime('RemoveContainer', { container_id: a }, CALL_MS);
    assert.equal(score(sandboxPid), 700, 'the lowest remaining value');
    await env.d.runtime('RemoveContainer', { container_id: b }, CALL_MS);
    assert.equal(score(sandboxPid), original, 'no container with a value left: the original');
    await env.d.runtime('RemoveContainer', { container_id: c }, CALL_MS);
    assert.equal(score(sandboxPid), original);
  },
);

test(
  'S12 + S13: runsc containers have empty cgroups under the pod cgroup (gone after removal); a busy container gets ≥ 90% of the pod CPU and the containers add up to the pod cgroup within 5%',
  { timeout: 300_000 },
  async (t) => {
    const env = await makeContainerEnv(t);
    const pod = await env.runPod('gvisor-cpu', {}, 'runsc');
    const podCg = await podCgroup(env, pod);
    const { pid: sandboxPid } = await env.podInfo(pod);
    const busy = await env.createContainer(pod, 'busy', { command: ['/bin/sh', '-c', 'while :; do :; done'] });
    const idle = await env.createContainer(pod, 'idle', { command: ['/bin/sh', '-c', 'sleep 3600'] });
    await env.d.runtime('StartContainer', { container_id: busy }, CALL_MS);
    await env.d.runtime('StartContainer', { container_id: idle }, CALL_MS);
    const cgBusy = String((await env.info(busy)).cgroupPath);
    const cgIdle = String((await env.info(idle)).cgroupPath);

    // S12: the containers' cgroups exist under the pod cgroup in every hierarchy, empty:
    // the whole sandbox sits in the pod cgroup itself.
    for (const cg of [cgBusy, cgIdle]) {
      assert.equal(path.dirname(cg), podCg);
      for (const h of HIERARCHIES) assert.ok(fs.existsSync(path.join('/sys/fs/cgroup', h, cg)), `${h}: ${cg}`);
      assert.equal(fs.readFileSync(path.join('/sys/fs/cgroup/memory', cg, 'cgroup.procs'), 'utf8').trim(), '');
    }
    const procs = fs.readFileSync(path.join('/sys/fs/cgroup/memory', podCg, 'cgroup.procs'), 'utf8').split('\n');
    assert.ok(procs.includes(String(sandboxPid)), 'the sandbox process sits in the pod cgroup');

    // S13: let the busy one burn a few seconds of CPU.
    await waitFor('3 s of pod CPU', () => Number(fs.readFileSync(path.join('/sys/fs/cgroup/cpuacct', podCg, 'cpuacct.usage'), 'utf8')) > 3e9, 120_000);
    const ps = (await env.d.runtime('PodSandboxStats', { pod_sandbox_id: pod }, CALL_MS)).stats;
    const podCpu = val(ps.linux.cpu.usage_core_nano_seconds);
    const byId = new Map(ps.linux.containers.map((c) => [c.attributes.id, val(c.cpu?.usage_core_nano_seconds)]));
    const busyCpu = byId.get(busy)!;
    const idleCpu = byId.get(idle)!;
    const sum = busyCpu + idleCpu;
    t.diagnostic(`pod cgroup ${podCpu} ns, busy ${busyCpu}, idle ${idleCpu}`);
    assert.ok(busyCpu >= 0.9 * podCpu, `busy ${busyCpu} ≥ 90% of the pod's ${podCpu}`);
    assert.ok(Math.abs(sum - podCpu) <= 0.05 * podCpu, `containers' sum ${sum} within 5% of the pod cgroup ${podCpu}`);
    // The rate from two samples: polled (on a busy machine the busy loop gets less than a core at times).
    await waitFor(
      'a busy rate from two samples',
      async () => {
        const again = (await env.d.runtime('ContainerStats', { container_id: busy }, CALL_MS)).stats;
        return again.cpu?.usage_nano_cores !== null && again.cpu?.usage_nano_cores !== undefined && val(again.cpu.usage_nano_cores) > 0.3e9;
      },
      60_000,
    );

    // S12: removal takes the container cgroups, then the pod's.
    await env.d.runtime('RemoveContainer', { container_id: idle }, CALL_MS);
    for (const h of HIERARCHIES) assert.ok(!fs.existsSync(path.join('/sys/fs/cgroup', h, cgIdle)), `${h}: idle's cgroup gone`);
    await env.d.runtime('RemovePodSandbox', { pod_sandbox_id: pod }, CALL_MS);
    for (const h of HIERARCHIES) {
      assert.ok(!fs.existsSync(path.join('/sys/fs/cgroup', h, cgBusy)), `${h}: busy's cgroup gone`);
      assert.ok(!fs.existsSync(path.join('/sys/fs/cgroup', h, podCg)), `${h}: the pod cgroup gone`);
    }
  },
);

test('S14: a pod-shared tmpfs hint under runsc: container A writes a file, container B reads it inside the sandbox', { timeout: 300_000 }, async (t) => {
  const env = await makeContainerEnv(t);
  const source = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-hint-gv-'));
  t.after(() => fs.rmSync(source, { recursive: true, force: true }));
  const pod = await env.runPod(
    'gvisor-hints',
    {
      annotations: {
        'dev.gvisor.spec.mount.shared.source': source,
        'dev.gvisor.spec.mount.shared.type': 'tmpfs',
        'dev.gvisor.spec.mount.shared.share': 'pod',
      },
    },
    'runsc',
  );
  const mount = [{ container_path: '/data', host_path: source }];
  const writer = await env.createContainer(pod, 'writer', { command: ['/bin/sh', '-c', 'echo from-a > /data/note; sleep 3600'], mounts: mount });
  await env.d.runtime('StartContainer', { container_id: writer }, CALL_MS);
  const reader = await env.createContainer(pod, 'reader', {
    command: ['/bin/sh', '-c', 'for i in $(seq 1 100); do [ -f /data/note ] && break; sleep 0.2; done; cat /data/note'],
    mounts: mount,
  });
  await env.d.runtime('StartContainer', { container_id: reader }, CALL_MS);
  const st = await env.waitState(reader, 'CONTAINER_EXITED', 120_000);
  assert.equal(st.exit_code, 0, fs.readFileSync(st.log_path, 'utf8'));
  assert.match(fs.readFileSync(st.log_path, 'utf8'), /stdout F from-a/);
  assert.deepEqual(fs.readdirSync(source), [], 'the volume lives in the sandbox, not on the host');
});

test(
  'S12: pod limits under runsc: the whole sandbox runs in the pod cgroup with the pod memory limit, and the limit holds',
  { timeout: 300_000 },
  async (t) => {
    const env = await makeContainerEnv(t);
    const limit = 160 * MIB;
    const pod = await env.runPod('gvisor-limit', { linux: { resources: { memory_limit_in_bytes: limit, cpu_period: 100_000, cpu_quota: 50_000 } } }, 'runsc');
    const podCg = await podCgroup(env, pod);
    const { pid: sandboxPid } = await env.podInfo(pod);
    const memDir = path.join('/sys/fs/cgroup/memory', podCg);
    assert.equal(Number(fs.readFileSync(path.join(memDir, 'memory.limit_in_bytes'), 'utf8')), limit);
    assert.equal(Number(fs.readFileSync(path.join('/sys/fs/cgroup/cpu', podCg, 'cpu.cfs_quota_us'), 'utf8')), 50_000);
    // The sandbox process (and the gofers) are in the pod cgroup itself.
    const memLine = fs
      .readFileSync(`/proc/${sandboxPid}/cgroup`, 'utf8')
      .split('\n')
      .find((l) => /:memory:/.test(l))!;
    assert.equal(memLine.split(':')[2], podCg);
    const cpuLine = fs
      .readFileSync(`/proc/${sandboxPid}/cgroup`, 'utf8')
      .split('\n')
      .find((l) => /:cpu[,:]/.test(l) || /:cpu,cpuacct:/.test(l))!;
    assert.equal(cpuLine.split(':')[2], podCg);

    // A container that wants 400 MiB cannot get it: the pod cgroup caps the sandbox.
    const hog = await env.createContainer(pod, 'hog', {
      command: ['/bin/sh', '-c', 'awk \'BEGIN{s=sprintf("%419430400s","x"); print length(s); system("sleep 3600")}\''],
    });
    await env.d.runtime('StartContainer', { container_id: hog }, CALL_MS);
    const st = await env.waitState(hog, 'CONTAINER_EXITED', 180_000);
    const max = Number(fs.existsSync(memDir) ? fs.readFileSync(path.join(memDir, 'memory.max_usage_in_bytes'), 'utf8') : 0);
    t.diagnostic(`hog exit ${st.exit_code} ${st.reason}; pod max usage ${max}`);
    assert.equal(st.exit_code, 137);
    assert.equal(st.reason, 'OOMKilled');
    // The kernel may charge a page or so past the limit before it reclaims or kills.
    assert.ok(max <= limit + MIB, `the pod's peak ${max} stays within its limit ${limit}`);
    assert.doesNotMatch(fs.readFileSync(st.log_path, 'utf8'), /419430400/, 'the allocation never completed');
  },
);
