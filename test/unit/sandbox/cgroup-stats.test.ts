import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CgroupStatsReader,
  cpuUsageNsFromV2Stat,
  memoryStatsV1,
  memoryStatsV2,
  parseCgroupLayout,
  parseFlatKeyed,
  parseProcCgroup,
  parseSingleValue,
  type CgroupFs,
  type CgroupLayout,
} from '../../../src/sandbox/stats/cgroup-stats.js';
import { NotFoundError } from '../../../src/errors.js';

// This machine's mountinfo: v1 hierarchies plus an empty cgroup2 at /sys/fs/cgroup/unified.
const HYBRID_MOUNTINFO = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;
const COMBINED_V1 = `25 20 0:22 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
26 20 0:23 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
`;
const V2_MOUNTINFO = `30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`;

test("detects this machine's hybrid layout (v1 + cgroup2 at /sys/fs/cgroup/unified)", () => {
  const l = parseCgroupLayout(HYBRID_MOUNTINFO);
  assert.equal(l.version, 1);
  assert.equal(l.hybrid, true);
  assert.equal(l.mountpoints['memory'], '/sys/fs/cgroup/memory');
  assert.equal(l.mountpoints['cpuacct'], '/sys/fs/cgroup/cpuacct');
  assert.equal(l.mountpoints['name=systemd'], '/sys/fs/cgroup/systemd');
  assert.equal(l.mountpoints['unified'], '/sys/fs/cgroup/unified');
});

test('detects co-mounted v1 controllers and pure v2', () => {
  const v1 = parseCgroupLayout(COMBINED_V1);
  assert.deepEqual(v1, {
    version: 1,
    hybrid: false,
    mountpoints: { cpu: '/sys/fs/cgroup/cpu,cpuacct', cpuacct: '/sys/fs/cgroup/cpu,cpuacct', memory: '/sys/fs/cgroup/memory' },
  });
  assert.deepEqual(parseCgroupLayout(V2_MOUNTINFO), { version: 2, hybrid: false, mountpoints: { unified: '/sys/fs/cgroup' } });
  assert.throws(() => parseCgroupLayout('22 1 0:21 / / rw - ext4 /dev/vda rw\n'), NotFoundError);
});

test('parses /proc/<pid>/cgroup for v1 controllers and the unified path', () => {
  const r = parseProcCgroup('9:name=systemd:/\n4:memory:/process_api/abc\n2:cpu,cpuacct:/x\n0::/\n');
  assert.equal(r.v1.get('memory'), '/process_api/abc');
  assert.equal(r.v1.get('cpuacct'), '/x');
  assert.equal(r.v1.get('name=systemd'), '/');
  assert.equal(r.unified, '/');
});

const V1_STAT = `cache 319488
rss 1679360
inactive_file 20480
pgfault 44687
pgmajfault 4
hierarchical_memory_limit 9223372036854771712
total_cache 104857600
total_rss 73400320
total_pgfault 90000
total_pgmajfault 12
total_inactive_file 52428800
`;

test('v1 memory: working set = usage − total_inactive_file; unlimited limit → no available', () => {
  const m = memoryStatsV1({ usage: 200n << 20n, stat: parseFlatKeyed(V1_STAT), limit: 9223372036854771712n });
  assert.deepEqual(m, {
    usageBytes: 200 * 2 ** 20,
    workingSetBytes: 150 * 2 ** 20,
    rssBytes: 73400320,
    pageFaults: 90000,
    majorPageFaults: 12,
    limitBytes: undefined,
    availableBytes: undefined,
  });
});

test('v1 memory: available = limit − working set, not below 0; working set not below 0', () => {
  const m = memoryStatsV1({ usage: 100n << 20n, stat: parseFlatKeyed('total_inactive_file 10485760\n'), limit: 256n << 20n });
  assert.equal(m.workingSetBytes, 90 * 2 ** 20);
  assert.equal(m.availableBytes, 166 * 2 ** 20);
  const over = memoryStatsV1({ usage: 300n << 20n, stat: new Map(), limit: 256n << 20n });
  assert.equal(over.availableBytes, 0);
  const inactiveAboveUsage = memoryStatsV1({ usage: 10n, stat: parseFlatKeyed('total_inactive_file 20\n'), limit: undefined });
  assert.equal(inactiveAboveUsage.workingSetBytes, 0);
});

test('v2 memory: working set from memory.current and inactive_file; rss = anon; "max" is no limit', () => {
  const stat = parseFlatKeyed('anon 4096000\nfile 8192000\ninactive_file 2048000\npgfault 77\npgmajfault 3\n');
  const m = memoryStatsV2({ usage: 12288000n, stat, limit: parseSingleValue('max\n', 'memory.max') });
  assert.deepEqual(m, {
    usageBytes: 12288000,
    workingSetBytes: 10240000,
    rssBytes: 4096000,
    pageFaults: 77,
    majorPageFaults: 3,
    limitBytes: undefined,
    availableBytes: undefined,
  });
  const limited = memoryStatsV2({ usage: 12288000n, stat, limit: 20480000n });
  assert.equal(limited.availableBytes, 10240000);
});

test('v2 cpu.stat usage_usec becomes nanoseconds', () => {
  assert.equal(cpuUsageNsFromV2Stat('usage_usec 1234567\nuser_usec 1000000\nsystem_usec 234567\n'), 1234567000n);
  assert.throws(() => cpuUsageNsFromV2Stat('user_usec 1\n'), /usage_usec/);
});

test('single-value files: numbers, "max", and garbage named by path', () => {
  assert.equal(parseSingleValue('18446744073709551615\n', 'x'), 18446744073709551615n);
  assert.equal(parseSingleValue('max', 'x'), undefined);
  assert.throws(() => parseSingleValue('12a', '/cg/memory.max'), /parsing "\/cg\/memory\.max"/);
});

function fakeFs(files: Record<string, string>): CgroupFs {
  return {
    readFile: (p) => {
      const v = files[p];
      // Rejected, not thrown: the reader sees what fs.promises gives it.
      if (v === undefined) return Promise.reject(Object.assign(new Error(`ENOENT: ${p}`), { code: 'ENOENT' }));
      return Promise.resolve(v);
    },
  };
}

const HYBRID: CgroupLayout = parseCgroupLayout(HYBRID_MOUNTINFO);
const V2: CgroupLayout = parseCgroupLayout(V2_MOUNTINFO);

test('v1 reader: cpuacct.usage, memory files, pids.current and oom_control oom_kill', async () => {
  const p = '/process_api/x/sandlot/pod-1';
  const r = new CgroupStatsReader({
    layout: HYBRID,
    now: () => 42n,
    fs: fakeFs({
      [`/sys/fs/cgroup/cpuacct${p}/cpuacct.usage`]: '987654321\n',
      [`/sys/fs/cgroup/memory${p}/memory.usage_in_bytes`]: '209715200\n',
      [`/sys/fs/cgroup/memory${p}/memory.stat`]: V1_STAT,
      [`/sys/fs/cgroup/memory${p}/memory.limit_in_bytes`]: '9223372036854771712\n',
      [`/sys/fs/cgroup/memory${p}/memory.oom_control`]: 'oom_kill_disable 0\nunder_oom 0\noom_kill 2\n',
      [`/sys/fs/cgroup/pids${p}/pids.current`]: '3\n',
    }),
  });
  const s = await r.stats(p);
  assert.equal(s.timestampNs, 42n);
  assert.equal(s.cpuUsageNs, 987654321n);
  assert.equal(s.memory?.workingSetBytes, 150 * 2 ** 20);
  assert.equal(s.pids, 3);
  assert.equal(s.oomKills, 2);
});

test('v1 reader: missing hierarchies give undefined parts; pids fall back to cgroup.procs', async () => {
  const p = '/process_api/x/c';
  const r = new CgroupStatsReader({
    layout: HYBRID,
    fs: fakeFs({
      [`/sys/fs/cgroup/memory${p}/memory.usage_in_bytes`]: '10\n',
      [`/sys/fs/cgroup/memory${p}/memory.stat`]: 'total_inactive_file 4\n',
      [`/sys/fs/cgroup/memory${p}/memory.limit_in_bytes`]: '100\n',
      [`/sys/fs/cgroup/memory${p}/memory.oom_control`]: 'oom_kill_disable 0\nunder_oom 0\n',
      [`/sys/fs/cgroup/memory${p}/cgroup.procs`]: '101\n102\n',
    }),
  });
  const s = await r.stats(p);
  assert.equal(s.cpuUsageNs, undefined);
  assert.equal(s.memory?.availableBytes, 94);
  assert.equal(s.pids, 2);
  // An old kernel without oom_kill in memory.oom_control.
  assert.equal(s.oomKills, undefined);
});

test('v2 reader: cpu.stat, memory.current/stat/max, pids.current, memory.events', async () => {
  const p = 'sandlot/pod-1';
  const r = new CgroupStatsReader({
    layout: V2,
    fs: fakeFs({
      '/sys/fs/cgroup/sandlot/pod-1/cpu.stat': 'usage_usec 500\n',
      '/sys/fs/cgroup/sandlot/pod-1/memory.current': '8192\n',
      '/sys/fs/cgroup/sandlot/pod-1/memory.stat': 'anon 4096\ninactive_file 1024\n',
      '/sys/fs/cgroup/sandlot/pod-1/memory.max': '65536\n',
      '/sys/fs/cgroup/sandlot/pod-1/pids.current': '1\n',
      '/sys/fs/cgroup/sandlot/pod-1/memory.events': 'low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n',
    }),
  });
  const s = await r.stats(p);
  assert.equal(s.cpuUsageNs, 500_000n);
  assert.equal(s.memory?.workingSetBytes, 7168);
  assert.equal(s.memory?.availableBytes, 65536 - 7168);
  assert.equal(s.pids, 1);
  assert.equal(s.oomKills, 1);
});

test('reader: a path escaping the hierarchy is refused; other read errors propagate', async () => {
  const r = new CgroupStatsReader({
    layout: V2,
    fs: { readFile: async () => Promise.reject(Object.assign(new Error('EACCES: denied'), { code: 'EACCES' })) },
  });
  assert.throws(() => r.dir('memory', '/a/../../etc'), /escapes/);
  await assert.rejects(r.stats('/a'), /reading cgroup file "\/sys\/fs\/cgroup\/a\/.*": EACCES/);
});
