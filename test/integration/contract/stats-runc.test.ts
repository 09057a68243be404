// CRI stats with real runc (S13, last rule: where each container has its own cgroup,
// its own cgroup is the answer): a container that allocates 100 MiB shows it in its
// working set; usage_nano_cores comes from two samples; the list filters; the pod's
// stats carry its cgroup, its network counters and its process count; /metrics shows
// the per-container series after a scrape.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { CriAnswer } from '../../helpers/daemon.js';
import { makeContainerEnv, waitFor } from '../container/container-env.js';

const MIB = 1024 * 1024;
type ContainerStats = CriAnswer<'ContainerStats'>['stats'];
/** A UInt64Value wrapper (int64 decoded as a string); one the daemon leaves unset is null, read as NaN. */
const val = (w: { value: string | number } | null | undefined): number => Number(w?.value ?? NaN);

test(
  'S13: runc container stats come from its own cgroup: 100 MiB allocated shows in the working set, nano-cores from two samples, filters, pod stats, metrics',
  { timeout: 240_000 },
  async (t) => {
    const env = await makeContainerEnv(t);
    const pod = await env.runPod('stats');
    const hog = await env.createContainer(pod, 'hog', {
      // busybox awk holds a 100 MiB string, then sleeps; a busy loop beside it makes CPU.
      command: [
        '/bin/sh',
        '-c',
        'awk \'BEGIN{s=sprintf("%104857600s","x"); print length(s); fflush(); system("sleep 3600")}\' & i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo x > /big.txt; dd if=/dev/zero of=/layer.bin bs=1M count=4; wait',
      ],
      labels: { role: 'hog' },
    });
    const idle = await env.createContainer(pod, 'idle', { command: ['/bin/sh', '-c', 'sleep 3600'], labels: { role: 'idle' } });
    await env.d.runtime('StartContainer', { container_id: hog });
    await env.d.runtime('StartContainer', { container_id: idle });

    // The working set and the RSS reach 100 MiB once awk has built its string. Both are
    // waited for: on a busy machine the RSS can lag the working set by a few pages.
    let stats: ContainerStats | undefined;
    await waitFor(
      '100 MiB in the working set and the RSS',
      async () => {
        stats = (await env.d.runtime('ContainerStats', { container_id: hog })).stats;
        return val(stats.memory?.working_set_bytes) >= 100 * MIB && val(stats.memory?.rss_bytes) >= 100 * MIB;
      },
      120_000,
    );
    assert.ok(stats, 'a ContainerStats answer');
    assert.equal(stats.attributes.id, hog);
    assert.equal(stats.attributes.metadata.name, 'hog');
    assert.ok(val(stats.memory.usage_bytes) >= val(stats.memory.working_set_bytes));
    assert.ok(val(stats.memory.rss_bytes) >= 100 * MIB, `rss ${val(stats.memory.rss_bytes)}`);
    assert.ok(val(stats.memory.page_faults) > 0);
    assert.ok(Number(stats.memory.timestamp) > 1e18, 'timestamps are Unix ns');

    // The figures are the container cgroup's own.
    const info = await env.info(hog);
    const cg = String(info.cgroupPath);
    const cgUsage = Number(fs.readFileSync(path.join('/sys/fs/cgroup/cpuacct', cg, 'cpuacct.usage'), 'utf8'));
    const reported = val(stats.cpu.usage_core_nano_seconds);
    assert.ok(reported > 0 && reported <= cgUsage, `reported ${reported} ≤ cgroup ${cgUsage} read after`);

    // usage_nano_cores: from two samples (a later call has it; polled, not slept for).
    let second: ContainerStats | undefined;
    await waitFor(
      'a rate from two samples',
      async () => {
        second = (await env.d.runtime('ContainerStats', { container_id: hog })).stats;
        return second.cpu?.usage_nano_cores !== null && second.cpu?.usage_nano_cores !== undefined;
      },
      60_000,
    );
    assert.ok(second, 'a second ContainerStats answer');
    assert.ok(
      val(second.cpu.usage_nano_cores) >= 0 && val(second.cpu.usage_nano_cores) <= 2e9 * 1.1,
      `rate ${val(second.cpu.usage_nano_cores)} within 2 cores`,
    );

    // The writable layer: the 4 MiB file the container wrote (after dd finished).
    await waitFor(
      'the layer file',
      async () => {
        const s = (await env.d.runtime('ContainerStats', { container_id: hog })).stats;
        return val(s.writable_layer?.used_bytes) >= 4 * MIB;
      },
      60_000,
    );
    const layer = (await env.d.runtime('ContainerStats', { container_id: hog })).stats.writable_layer;
    assert.ok(val(layer.inodes_used) >= 2, `inodes ${val(layer.inodes_used)}`);
    assert.ok(String(layer.fs_id.mountpoint).startsWith(env.d.rootDir));

    // Filters: by id, by pod, by labels.
    const all = (await env.d.runtime('ListContainerStats', {})).stats;
    assert.deepEqual(all.map((s) => s.attributes.id).sort(), [hog, idle].sort());
    const byId = (await env.d.runtime('ListContainerStats', { filter: { id: idle } })).stats;
    assert.deepEqual(
      byId.map((s) => s.attributes.id),
      [idle],
    );
    const byLabel = (await env.d.runtime('ListContainerStats', { filter: { label_selector: { role: 'hog' } } })).stats;
    assert.deepEqual(
      byLabel.map((s) => s.attributes.id),
      [hog],
    );
    const byPod = (await env.d.runtime('ListContainerStats', { filter: { pod_sandbox_id: pod } })).stats;
    assert.equal(byPod.length, 2);
    const none = (await env.d.runtime('ListContainerStats', { filter: { pod_sandbox_id: 'f'.repeat(64) } })).stats;
    assert.equal(none.length, 0);

    // The pod: its cgroup holds both containers; network counters of eth0; processes.
    const ps = (await env.d.runtime('PodSandboxStats', { pod_sandbox_id: pod })).stats;
    assert.equal(ps.attributes.id, pod);
    assert.ok(val(ps.linux.memory.working_set_bytes) >= 100 * MIB);
    assert.ok(val(ps.linux.cpu.usage_core_nano_seconds) >= reported);
    assert.equal(ps.linux.network.default_interface.name, 'eth0');
    assert.ok(val(ps.linux.network.default_interface.rx_bytes) >= 0);
    assert.ok(val(ps.linux.process.process_count) >= 3, `processes ${val(ps.linux.process.process_count)}`);
    assert.deepEqual(ps.linux.containers.map((c) => c.attributes.id).sort(), [hog, idle].sort());
    const listed = (await env.d.runtime('ListPodSandboxStats', { filter: { label_selector: { app: 'stats' } } })).stats;
    assert.deepEqual(
      listed.map((s) => s.attributes.id),
      [pod],
    );
    const notListed = (await env.d.runtime('ListPodSandboxStats', { filter: { label_selector: { app: 'other' } } })).stats;
    assert.equal(notListed.length, 0);

    // Unknown IDs: NOT_FOUND (5).
    await assert.rejects(env.d.runtime('ContainerStats', { container_id: 'a'.repeat(64) }), (e: { code: number }) => e.code === 5);
    await assert.rejects(env.d.runtime('PodSandboxStats', { pod_sandbox_id: 'a'.repeat(64) }), (e: { code: number }) => e.code === 5);

    // Prometheus: refreshed on the scrape.
    const text = await (await fetch(`http://${env.d.metricsAddress}/metrics`)).text();
    const ids = `sandbox_id="${pod}",container_id="${hog}"`;
    const ws = new RegExp(
      `sandlot_container_memory_working_set_bytes\\{pod="stats",namespace="sandlot-ctr-test",container="hog",handler="runc",${ids}\\} (\\d+)`,
    ).exec(text);
    assert.ok(
      ws && Number(ws[1]) >= 100 * MIB,
      `the working set gauge of the hog in:\n${text
        .split('\n')
        .filter((l) => l.startsWith('sandlot_container') || l.startsWith('sandlot_pod'))
        .join('\n')}`,
    );
    assert.match(
      text,
      new RegExp(`sandlot_container_cpu_usage_seconds_total\\{pod="stats",namespace="sandlot-ctr-test",container="hog",handler="runc",${ids}\\} [0-9.e-]+`),
    );
    assert.match(text, new RegExp(`sandlot_pod_sandbox_oom_score_adj\\{pod="stats",namespace="sandlot-ctr-test",handler="runc",sandbox_id="${pod}"\\} -?\\d+`));
    assert.match(text, new RegExp(`sandlot_container_oom_kills_total\\{pod="stats",namespace="sandlot-ctr-test",container="hog",handler="runc",${ids}\\} 0`));
  },
);
