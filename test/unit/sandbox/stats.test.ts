// Stats (S13) without root: runsc's events JSON, the writable layer walk and its cache,
// the collector over fake cgroups/runsc/network, the metrics snapshot and the CRI shape.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { InternalError } from '../../../src/errors.js';
import type { RuntimeDriver } from '../../../src/oci/runtime.js';
import { CgroupStatsReader, type CgroupLayout } from '../../../src/sandbox/stats/cgroup-stats.js';
import type { ContainerRecord } from '../../../src/sandbox/container/container.js';
import type { SandboxRecord } from '../../../src/sandbox/pod/sandbox.js';
import { StatsCollector } from '../../../src/sandbox/stats/stats-collector.js';
import { podMetricsSnapshot } from '../../../src/sandbox/stats/prometheus-snapshot.js';
import { parseRunscStats, runscEventsStats } from '../../../src/oci/runsc-stats.js';
import { walkUsage, WritableLayerUsage } from '../../../src/sandbox/stats/stats-writable-layer.js';
import { containerStatsOf, parseContainerStatsFilter, parsePodStatsFilter, podStatsOf } from '../../../src/cri/stats-handlers.js';
import { InvalidArgumentError } from '../../../src/errors.js';

const log = pino({ level: 'silent' });
// Measured: `runsc events --stats c1` of a busy subcontainer (runsc 0.0~20221219).
const RUNSC_LINE =
  '{"type":"stats","id":"c1","data":{"cpu":{"usage":{"total":4495628979}},"memory":{"usage":{"limit":0,"usage":6066176,"failcnt":0},"swap":{"limit":0,"failcnt":0},"kernel":{"limit":0,"failcnt":0},"kernelTCP":{"limit":0,"failcnt":0}},"pids":{"current":3}}}';

test('runsc events --stats: cpu total (already S13-scaled), the sandbox memory and pids', () => {
  assert.deepEqual(parseRunscStats(RUNSC_LINE, 'c1'), { cpuUsageNs: 4495628979n, memoryUsageBytes: 6066176, pids: 3 });
  assert.throws(() => parseRunscStats('not json', 'c1'), InternalError);
  assert.throws(() => parseRunscStats('{"data":{}}', 'c1'), /no data\.cpu\.usage\.total/);
});

test('runscEventsStats runs `events --stats <id>` with the handler flags; a failing runsc (container not running) is undefined', async () => {
  const driver = { binaryPath: () => '/usr/bin/runsc', globalArgs: () => ['--root', '/r', '--network=host'] } as unknown as RuntimeDriver;
  let argv: string[] = [];
  const ok = await runscEventsStats(driver, 'c1', (_f, args) => {
    argv = args;
    return Promise.resolve({ stdout: `${RUNSC_LINE}\n`, stderr: '' });
  });
  assert.deepEqual(argv, ['--root', '/r', '--network=host', 'events', '--stats', 'c1']);
  assert.equal(ok?.cpuUsageNs, 4495628979n);
  assert.equal(await runscEventsStats(driver, 'c1', () => Promise.reject(new Error('exit 1'))), undefined);
  assert.equal(await runscEventsStats(driver, 'c1', () => Promise.resolve({ stdout: '', stderr: '' })), undefined);
});

test('writable layer: bytes as du (a hard link once), inodes, a bound on entries, and a cache per container', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-layer-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.mkdirSync(path.join(dir, 'd'));
  fs.writeFileSync(path.join(dir, 'd', 'a'), Buffer.alloc(64 * 1024, 1));
  fs.linkSync(path.join(dir, 'd', 'a'), path.join(dir, 'hard'));
  fs.symlinkSync('/etc', path.join(dir, 'link'));
  const u = await walkUsage(dir, 1000);
  assert.equal(u.inodesUsed, 4, 'root, d, a (= hard), link');
  assert.ok(u.usedBytes >= 64 * 1024 && u.usedBytes < 2 * 64 * 1024 + 64 * 1024, `used ${u.usedBytes}`);
  assert.equal(u.truncated, false);
  assert.equal((await walkUsage(dir, 2)).truncated, true);
  assert.deepEqual(await walkUsage(path.join(dir, 'missing'), 10), { usedBytes: 0, inodesUsed: 0, truncated: false });

  let now = 1_000;
  const cache = new WritableLayerUsage({ log, ttlMs: 10_000, now: () => now });
  const first = await cache.usage('c', dir);
  fs.writeFileSync(path.join(dir, 'more'), Buffer.alloc(64 * 1024, 1));
  assert.equal((await cache.usage('c', dir)).inodesUsed, first.inodesUsed, 'cached within the TTL');
  now += 10_001;
  assert.equal((await cache.usage('c', dir)).inodesUsed, first.inodesUsed + 1, 'walked again after it');
});

const V1: CgroupLayout = { version: 1, hybrid: false, mountpoints: { cpuacct: '/cg/cpuacct', memory: '/cg/memory', pids: '/cg/pids' } };

function cgroupFiles(files: Record<string, string>): CgroupStatsReader {
  let t = 1_000_000_000_000_000_000n;
  return new CgroupStatsReader({
    layout: V1,
    fs: {
      readFile(p) {
        const v = files[p];
        if (v === undefined) return Promise.reject(Object.assign(new Error(`ENOENT: ${p}`), { code: 'ENOENT' }));
        return Promise.resolve(v);
      },
    },
    now: () => (t += 1_000_000_000n), // one second per read
  });
}

function memFiles(dir: string, usage: number): Record<string, string> {
  return {
    [`/cg/memory${dir}/memory.usage_in_bytes`]: `${usage}\n`,
    [`/cg/memory${dir}/memory.stat`]: `total_inactive_file 1000\ntotal_rss ${usage - 2000}\ntotal_pgfault 7\ntotal_pgmajfault 1\n`,
    [`/cg/memory${dir}/memory.limit_in_bytes`]: '9223372036854771712\n',
    [`/cg/memory${dir}/memory.oom_control`]: 'oom_kill_disable 0\nunder_oom 0\noom_kill 2\n',
  };
}

const POD = 'p'.repeat(64);
const pod = (runtimeHandler: string): SandboxRecord =>
  ({
    id: POD,
    state: 'running',
    runtimeHandler,
    podCgroup: '/pods/p',
    netnsPath: '/run/netns/p',
    pid: 4242,
    config: { metadata: { name: 'web', namespace: 'ns', uid: 'u', attempt: 0 }, labels: { app: 'web' }, annotations: {} },
  }) as unknown as SandboxRecord;
const ctr = (id: string, runtimeType: 'oci' | 'runsc', state = 'running'): ContainerRecord =>
  ({
    id,
    podId: POD,
    state,
    metadata: { name: `n-${id}`, attempt: 0 },
    labels: {},
    annotations: {},
    runtimeHandler: runtimeType === 'runsc' ? 'runsc' : 'runc',
    runtimeType,
    cgroupPath: `/pods/p/${id}`,
    rootfsPrepared: false,
  }) as unknown as ContainerRecord;

function collector(recs: ContainerRecord[], p: SandboxRecord, files: Record<string, string>, runsc: Record<string, bigint> = {}): StatsCollector {
  return new StatsCollector({
    log,
    pods: { list: () => [p], get: () => p, driver: () => ({}) as RuntimeDriver },
    containers: {
      list: (f) => Promise.resolve(recs.filter((r) => (f?.id === undefined || r.id === f.id) && (f?.podId === undefined || r.podId === f.podId))),
      status: (id) => Promise.resolve(recs.find((r) => r.id === id)!),
    },
    upperDir: (id) => `/nonexistent/${id}/overlay/upper`,
    networkCounters: () =>
      Promise.resolve([
        { name: 'lo', rxBytes: 1, rxErrors: 0, txBytes: 1, txErrors: 0 },
        { name: 'eth0', rxBytes: 100, rxErrors: 1, txBytes: 200, txErrors: 2 },
      ]),
    cgroups: cgroupFiles(files),
    runscStats: (_d, id) => Promise.resolve(runsc[id] === undefined ? undefined : { cpuUsageNs: runsc[id], memoryUsageBytes: 5_000_000, pids: 4 }),
  });
}

test('S13: a runc container is its own cgroup (CPU, working set = usage − inactive_file, OOM kills); the rate needs two samples', async () => {
  const files: Record<string, string> = { '/cg/cpuacct/pods/p/c1/cpuacct.usage': '1000000000\n', ...memFiles('/pods/p/c1', 50_000) };
  const c = collector([ctr('c1', 'oci')], pod('runc'), files);
  const s1 = await c.container('c1');
  assert.equal(s1.cpu?.usageCoreNanoSeconds, 1_000_000_000n);
  assert.equal(s1.cpu?.usageNanoCores, undefined, 'no rate from one sample');
  assert.equal(s1.memory?.workingSetBytes, 49_000);
  assert.equal(s1.memory?.availableBytes, undefined, 'no limit');
  assert.equal(s1.oomKills, 2);
  files['/cg/cpuacct/pods/p/c1/cpuacct.usage'] = '1500000000\n';
  const s2 = await c.container('c1');
  assert.equal(s2.cpu?.usageNanoCores, 500_000_000, '0.5 s over 1 s = half a core');
});

test("S13: a runsc container takes runsc's figure as reported (never scaled twice), even where the pod cgroup differs", async () => {
  const files = { '/cg/cpuacct/pods/p/cpuacct.usage': '9000000000\n', ...memFiles('/pods/p', 80_000), '/cg/pids/pods/p/pids.current': '6\n' };
  const c = collector([ctr('busy', 'runsc'), ctr('idle', 'runsc'), ctr('gone', 'runsc', 'stopped')], pod('runsc'), files, {
    busy: 4_000_000_000n,
    idle: 10_000_000n,
  });
  const ps = await c.pod(POD);
  const cpu = new Map(ps.containers.map((x) => [x.record.id, x.cpu?.usageCoreNanoSeconds]));
  assert.equal(cpu.get('busy'), 4_000_000_000n);
  assert.equal(cpu.get('idle'), 10_000_000n);
  assert.equal(cpu.get('gone'), undefined, 'a stopped container has no CPU figure');
  assert.equal(ps.containers.find((x) => x.record.id === 'busy')?.memory?.workingSetBytes, 5_000_000);
  assert.equal(ps.cpu?.usageCoreNanoSeconds, 9_000_000_000n, 'the pod is its cgroup');
  assert.equal(ps.process?.count, 6);
  assert.equal(ps.network?.defaultInterface?.name, 'eth0');
  assert.deepEqual(
    ps.network?.interfaces.map((i) => i.name),
    ['eth0'],
    "lo is not the pod's traffic",
  );
});

test("a metrics read takes no rate sample; the kubelet's next one still spans its own window", async () => {
  const files: Record<string, string> = {
    '/cg/cpuacct/pods/p/c1/cpuacct.usage': '1000000000\n',
    ...memFiles('/pods/p/c1', 50_000),
    '/cg/cpuacct/pods/p/cpuacct.usage': '1\n',
    ...memFiles('/pods/p', 1),
  };
  const c = collector([ctr('c1', 'oci')], pod('runc'), files);
  await c.listPods({}, { rates: false });
  const first = await c.listContainers();
  assert.equal(first[0].cpu?.usageNanoCores, undefined, 'the scrape did not count as a first sample');
  const snap = await podMetricsSnapshot(await c.listPods({}, { rates: false }), (pid) => Promise.resolve(pid === 4242 ? 300 : undefined));
  // Keyed by the sandbox and container IDs too: two attempts of one pod never share a series.
  const sandboxId = 'p'.repeat(64);
  assert.deepEqual(snap.pods, [{ pod: 'web', namespace: 'ns', handler: 'runc', sandboxId, oomScoreAdj: 300 }]);
  assert.deepEqual(snap.containers, [
    {
      pod: 'web',
      namespace: 'ns',
      container: 'n-c1',
      handler: 'runc',
      sandboxId,
      containerId: 'c1',
      cpuSeconds: 1,
      memoryWorkingSetBytes: 49_000,
      oomKills: 2,
    },
  ]);
});

test('CRI shape: UInt64Value wrappers, int64 as strings, a missing rate left unset; filters validated', async () => {
  const files: Record<string, string> = { '/cg/cpuacct/pods/p/c1/cpuacct.usage': '1000\n', ...memFiles('/pods/p/c1', 50_000) };
  const c = collector([ctr('c1', 'oci')], pod('runc'), files);
  const out = containerStatsOf(await c.container('c1'));
  assert.deepEqual(out.attributes, { id: 'c1', metadata: { name: 'n-c1', attempt: 0 }, labels: {}, annotations: {} });
  assert.deepEqual(out.cpu?.usage_core_nano_seconds, { value: '1000' });
  assert.equal(out.cpu?.usage_nano_cores, null);
  const timestamp = out.cpu?.timestamp;
  assert.equal(typeof timestamp, 'string', 'int64 as a string');
  assert.match(String(timestamp), /^\d{19}$/);
  assert.deepEqual(out.memory?.working_set_bytes, { value: '49000' });
  assert.equal(out.writable_layer, null, 'no rootfs, no layer');
  const ps = podStatsOf({ ...(await c.pod(POD)), cpu: undefined });
  assert.equal(ps.attributes?.metadata?.uid, 'u');
  assert.equal(ps.linux?.cpu, null);
  assert.deepEqual(ps.linux?.network?.default_interface?.tx_errors, { value: '2' });
  assert.deepEqual(parseContainerStatsFilter({ id: 'x', pod_sandbox_id: 'y', label_selector: { a: 'b' } }), { id: 'x', podId: 'y', labelSelector: { a: 'b' } });
  assert.deepEqual(parseContainerStatsFilter({ id: '', pod_sandbox_id: '', label_selector: {} }), {});
  assert.throws(() => parsePodStatsFilter({ id: '../x' }), InvalidArgumentError);
});
