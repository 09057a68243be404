// UpdatePodSandboxResources through the real daemon: resources + overhead land on the pod
// cgroup (memory.limit_in_bytes, cpu.cfs_quota_us/period_us, cpu.shares, cpuset.cpus)
// under the test's cgroup_root, the applied figures show in verbose PodSandboxStatus;
// bad input is INVALID_ARGUMENT naming the field and changes nothing; an unknown pod is
// NOT_FOUND; a stopped pod is FAILED_PRECONDITION (S4 wording).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { detectCgroupLayout } from '../../../src/sandbox/resources/cgroups.js';
import { failure, makeContainerEnv } from '../container/container-env.js';

/** The fields of the daemon's verbose pod info (its own JSON, not a CRI message) this test reads. */
interface PodInfo {
  podCgroup: string;
  podResources: null | {
    limits: { memoryLimitBytes: number; cpuQuotaUs: number; cpuShares: number; cpusetCpus: string };
    resources: { memory_limit_in_bytes: string | number };
  };
}
const MIB = 1024 * 1024;

/** A pod cgroup file in the hierarchy holding `controller` (v1) or the unified one (v2). */
function cgroupFile(podCgroup: string, controller: string, v1Name: string, v2Name: string): string {
  const layout = detectCgroupLayout();
  if (layout.version === 2) return path.join(layout.hierarchies.find((h) => h.version === 2)!.mountpoint, podCgroup, v2Name);
  const h = layout.hierarchies.find((x) => x.controllers.includes(controller));
  assert.ok(h, `a ${controller} hierarchy`);
  return path.join(h.mountpoint, podCgroup, v1Name);
}

const read = (f: string): string => fs.readFileSync(f, 'utf8').trim();

test('UpdatePodSandboxResources writes resources + overhead on the pod cgroup and rejects bad input', { timeout: 180_000 }, async (t) => {
  const env = await makeContainerEnv(t);
  const { d } = env;
  const pod = await env.runPod('resize');
  const verbose = async (): Promise<PodInfo> => JSON.parse((await d.runtime('PodSandboxStatus', { pod_sandbox_id: pod, verbose: true })).info.info) as PodInfo;
  const before = await verbose();
  assert.equal(before.podResources, null, 'nothing applied yet');
  const podCgroup = String(before.podCgroup);
  assert.ok(podCgroup.startsWith(String(d.config.cgroup_root)), `pod cgroup ${podCgroup} under the test's cgroup_root`);

  const v2 = detectCgroupLayout().version === 2;
  const memFile = cgroupFile(podCgroup, 'memory', 'memory.limit_in_bytes', 'memory.max');
  const quotaFile = cgroupFile(podCgroup, 'cpu', 'cpu.cfs_quota_us', 'cpu.max');
  const periodFile = cgroupFile(podCgroup, 'cpu', 'cpu.cfs_period_us', 'cpu.max');
  const sharesFile = cgroupFile(podCgroup, 'cpu', 'cpu.shares', 'cpu.weight');
  const cpusetFile = cgroupFile(podCgroup, 'cpuset', 'cpuset.cpus', 'cpuset.cpus');
  // The set the pod has now (the parent's): a valid value that leaves no child outside it.
  const cpus = fs.existsSync(cpusetFile) && read(cpusetFile) !== '' ? read(cpusetFile) : '0';

  await d.runtime('UpdatePodSandboxResources', {
    pod_sandbox_id: pod,
    resources: { cpu_period: 100_000, cpu_quota: 50_000, cpu_shares: 512, memory_limit_in_bytes: 256 * MIB, cpuset_cpus: cpus },
    overhead: { cpu_period: 100_000, cpu_quota: 10_000, memory_limit_in_bytes: 16 * MIB },
  });
  assert.equal(Number(read(memFile)), 272 * MIB, 'memory: resources + overhead');
  if (v2) {
    assert.equal(read(quotaFile), '60000 100000');
  } else {
    assert.equal(read(quotaFile), '60000', 'quota: resources + overhead');
    assert.equal(read(periodFile), '100000');
    assert.equal(read(sharesFile), '512');
  }
  assert.equal(read(cpusetFile), cpus);
  const after = await verbose();
  assert.ok(after.podResources, 'the applied figures show in the verbose status');
  assert.deepEqual(
    {
      mem: after.podResources.limits.memoryLimitBytes,
      quota: after.podResources.limits.cpuQuotaUs,
      shares: after.podResources.limits.cpuShares,
      cpus: after.podResources.limits.cpusetCpus,
    },
    { mem: 272 * MIB, quota: 60_000, shares: 512, cpus },
  );
  assert.equal(Number(after.podResources.resources.memory_limit_in_bytes), 256 * MIB);

  // A second resize replaces the figures.
  await d.runtime('UpdatePodSandboxResources', {
    pod_sandbox_id: pod,
    resources: { memory_limit_in_bytes: 512 * MIB, cpu_quota: 150_000, cpu_period: 100_000 },
  });
  assert.equal(Number(read(memFile)), 512 * MIB);
  assert.equal(read(quotaFile), v2 ? '150000 100000' : '150000');

  // Bad input: INVALID_ARGUMENT naming the field; the cgroup is untouched.
  const bad: Array<[Record<string, unknown>, RegExp]> = [
    [{ resources: { memory_limit_in_bytes: -1 } }, /resources\.memory_limit_in_bytes "-1" must be a non-negative integer/],
    [{ overhead: { cpu_quota: -5 } }, /overhead\.cpu_quota "-5" must be a non-negative integer/],
    [{ resources: { cpu_shares: -2 } }, /resources\.cpu_shares/],
    [{ resources: { cpuset_cpus: 'all' } }, /resources\.cpuset_cpus "all" is no cpuset list/],
    [{ resources: { unified: { 'memory.high': '1' } } }, /resources\.unified is not supported/],
  ];
  for (const [fields, re] of bad) {
    const f = await failure(d.runtime('UpdatePodSandboxResources', { pod_sandbox_id: pod, ...fields }));
    assert.equal(f.code, GrpcStatus.INVALID_ARGUMENT, JSON.stringify(fields));
    assert.match(f.details, re);
  }
  assert.equal(Number(read(memFile)), 512 * MIB, 'bad input changed nothing');
  assert.equal((await failure(d.runtime('UpdatePodSandboxResources', {}))).code, GrpcStatus.INVALID_ARGUMENT, 'pod_sandbox_id is required');

  const unknown = await failure(d.runtime('UpdatePodSandboxResources', { pod_sandbox_id: 'f'.repeat(64), resources: { memory_limit_in_bytes: 64 * MIB } }));
  assert.equal(unknown.code, GrpcStatus.NOT_FOUND);

  // S4: a stopped pod is not resized.
  await d.runtime('StopPodSandbox', { pod_sandbox_id: pod });
  const stopped = await failure(d.runtime('UpdatePodSandboxResources', { pod_sandbox_id: pod, resources: { memory_limit_in_bytes: 64 * MIB } }));
  assert.equal(stopped.code, GrpcStatus.FAILED_PRECONDITION);
  assert.match(stopped.details, new RegExp(`cannot update resources of sandbox "${pod}" in state stopped`));
});
