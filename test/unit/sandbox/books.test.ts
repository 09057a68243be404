// The books of pod sandboxes: S4 transitions and guards, the name index (retries wait,
// other configs conflict), pod resources, cgroup layout parsing, metadata store.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AlreadyExistsError, FailedPreconditionError, InternalError } from '../../../src/errors.js';
import { detectCgroupLayout, ownCgroupPath, podResources, sharesToWeight } from '../../../src/sandbox/resources/cgroups.js';
import { NameIndex } from '../../../src/sandbox/store/name-index.js';
import { hostsText, resolvConfText } from '../../../src/sandbox/pod/pod-files.js';
import { changeState, criState, requireState, stableJson, type SandboxRecord } from '../../../src/sandbox/pod/sandbox.js';
import { SandboxStore } from '../../../src/sandbox/store/sandbox-store.js';

function record(id: string, state: SandboxRecord['state'] = 'creating'): SandboxRecord {
  return {
    version: 1,
    id,
    state,
    createdAt: '1',
    config: {} as SandboxRecord['config'],
    configHash: 'h',
    runtimeHandler: 'runc',
    podCgroup: '/p',
    infraCgroup: '/p/i',
    ownsPodCgroup: true,
    netnsPath: undefined,
    networkUp: false,
    ip: '',
    additionalIps: [],
    pid: 0,
    conmonPid: 0,
    paths: {} as SandboxRecord['paths'],
  };
}

test('S4: creating → created → running → stopped; illegal transitions are internal errors', () => {
  const r = record('a'.repeat(64));
  changeState(r, 'created');
  changeState(r, 'running');
  assert.equal(criState(r.state), 'SANDBOX_READY');
  changeState(r, 'stopped');
  assert.equal(criState(r.state), 'SANDBOX_NOTREADY');
  assert.throws(() => changeState(r, 'running'), InternalError);
  const c = record('b'.repeat(64));
  assert.throws(() => changeState(c, 'running'), InternalError);
  changeState(c, 'stopped');
});

test('S4 guard wording: cannot <action> sandbox "<id>" in state <state>', () => {
  const r = record('c'.repeat(64), 'stopped');
  assert.throws(
    () => requireState(r, 'create a container in', 'running'),
    (e: Error) => e instanceof FailedPreconditionError && e.message === `cannot create a container in sandbox "${'c'.repeat(64)}" in state stopped`,
  );
});

test('name index: a retry with the same config waits while in progress, gets the pod when done; another config conflicts', async () => {
  const idx = new NameIndex({ what: 'pod sandbox name', holder: 'sandbox' });
  assert.deepEqual(
    idx.reserve('k', 'id1', 'h1', () => true),
    { kind: 'reserved' },
  );
  const pending = Promise.resolve('id1');
  idx.setPending('k', 'id1', pending);
  const w = idx.reserve('k', 'id2', 'h1', () => true);
  assert.equal(w.kind, 'wait');
  assert.equal(await (w as { pending: Promise<string> }).pending, 'id1');
  assert.throws(
    () => idx.reserve('k', 'id3', 'h2', () => true),
    (e: Error) => e instanceof AlreadyExistsError && e.message === 'pod sandbox name "k" is reserved by sandbox "id1"',
  );
  idx.setPending('k', 'id1', undefined);
  assert.deepEqual(
    idx.reserve('k', 'id4', 'h1', () => true),
    { kind: 'existing', id: 'id1' },
  );
  assert.throws(() => idx.reserve('k', 'id5', 'h1', () => false), AlreadyExistsError);
  idx.release('k', 'other');
  assert.equal(idx.holder('k'), 'id1');
  idx.release('k', 'id1');
  assert.deepEqual(
    idx.reserve('k', 'id6', 'h2', () => true),
    { kind: 'reserved' },
  );
});

test('stableJson sorts keys and drops undefined, so equal configs hash alike', () => {
  assert.equal(stableJson({ b: 1, a: [{ d: 2, c: undefined }] }), stableJson({ a: [{ d: 2 }], b: 1 }));
});

test("pod resources add the overhead to the containers' total; quota 0 means no limit", () => {
  assert.deepEqual(
    podResources(
      { cpu_shares: '512', cpu_quota: '50000', cpu_period: '100000', memory_limit_in_bytes: '1000' },
      { cpu_shares: '100', cpu_quota: '10000', cpu_period: '100000', memory_limit_in_bytes: '24' },
    ),
    {
      cpuShares: 612,
      cpuQuotaUs: 60000,
      cpuPeriodUs: 100000,
      memoryLimitBytes: 1024,
    },
  );
  assert.deepEqual(podResources({ cpu_quota: '0', memory_limit_in_bytes: '0' }, null), {});
  assert.deepEqual(podResources(undefined, undefined), {});
  assert.equal(sharesToWeight(2), 1);
  assert.equal(sharesToWeight(262144), 10000);
});

test('cgroup layout: v1 hierarchies with their controllers, the hybrid unified mount, and our own path', () => {
  const mountinfo = [
    '30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:9 - cgroup cgroup rw,cpu,cpuacct',
    '31 25 0:27 / /sys/fs/cgroup/memory rw,nosuid shared:10 - cgroup cgroup rw,memory',
    '32 25 0:28 / /sys/fs/cgroup/systemd rw shared:11 - cgroup cgroup rw,xattr,name=systemd',
    '33 25 0:29 / /sys/fs/cgroup/unified rw shared:12 - cgroup2 cgroup2 rw,nsdelegate',
    '34 25 0:30 / /proc rw - proc proc rw',
  ].join('\n');
  const layout = detectCgroupLayout(mountinfo);
  assert.equal(layout.version, 1);
  assert.deepEqual(
    layout.hierarchies.map((h) => [h.mountpoint, h.controllers]),
    [
      ['/sys/fs/cgroup/cpu,cpuacct', ['cpu', 'cpuacct']],
      ['/sys/fs/cgroup/memory', ['memory']],
      ['/sys/fs/cgroup/systemd', ['name=systemd']],
      ['/sys/fs/cgroup/unified', []],
    ],
  );
  const self = '5:cpuacct,cpu:/\n4:memory:/process_api/abc\n1:name=systemd:/\n0::/x';
  assert.equal(ownCgroupPath(layout.hierarchies[0], self), '/');
  assert.equal(ownCgroupPath(layout.hierarchies[1], self), '/process_api/abc');
  assert.equal(ownCgroupPath(layout.hierarchies[3], self), '/x');
  assert.equal(detectCgroupLayout('40 1 0:5 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw').version, 2);
});

test("resolv.conf from the DNS config, or none (the host's is copied); hosts names the pod IP", () => {
  assert.equal(
    resolvConfText({ servers: ['10.0.0.10'], searches: ['ns.svc.cluster.local', 'svc.cluster.local'], options: ['ndots:5'] }),
    'search ns.svc.cluster.local svc.cluster.local\nnameserver 10.0.0.10\noptions ndots:5\n',
  );
  assert.equal(resolvConfText(undefined), undefined);
  assert.equal(resolvConfText({ servers: [], searches: [], options: [] }), undefined);
  assert.match(hostsText('web-0', ['10.1.2.3']), /^127\.0\.0\.1\tlocalhost\n[\s\S]*10\.1\.2\.3\tweb-0\n$/);
});

test('metadata store: atomic versioned files, exact or unique-prefix lookup, unloadable files reported not deleted', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-store-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const store = new SandboxStore({ rootDir: dir });
  const a = record(`ab${'0'.repeat(62)}`, 'running');
  const b = record(`ac${'0'.repeat(62)}`, 'stopped');
  await store.save(a);
  await store.save(b);
  const onDisk = JSON.parse(fs.readFileSync(store.metaPath(a.id), 'utf8')) as { version: number; state: string };
  assert.equal(onDisk.version, 1);
  assert.equal(onDisk.state, 'running');
  assert.equal(store.resolve('ab').id, a.id);
  assert.throws(() => store.resolve('a'), /ambiguous/);
  assert.throws(() => store.resolve('zz'), { name: 'NotFoundError' });
  const broken = `dd${'0'.repeat(62)}`;
  fs.mkdirSync(path.join(dir, 'pods', broken));
  fs.writeFileSync(path.join(dir, 'pods', broken, 'meta.json'), '{not json');
  const again = new SandboxStore({ rootDir: dir });
  const { records, failures } = await again.loadAll();
  assert.deepEqual(records.map((r) => r.id).sort(), [a.id, b.id]);
  assert.equal(failures.length, 1);
  assert.equal(failures[0].id, broken);
  assert.ok(fs.existsSync(path.join(dir, 'pods', broken, 'meta.json')), 'an unloadable file is kept');
  await again.delete(a.id);
  await again.delete(a.id);
  assert.ok(!fs.existsSync(path.join(dir, 'pods', a.id)));
});
