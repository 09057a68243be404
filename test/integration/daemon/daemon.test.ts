import { status } from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import protobuf from 'protobufjs';
import { loadCriServices, protoPath } from '../../../src/cri/proto.js';
import { buildGo } from '../../helpers/go-build.js';
import { REPO_ROOT, startDaemon } from '../../helpers/daemon.js';

const BIN = path.join(REPO_ROOT, 'src/cli/bin.ts');

function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawnSync(process.execPath, ['--import', 'tsx', BIN, ...args], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 60_000,
  });
}

test('Version and Status answer over the socket, and the socket is mode 0660', async (t) => {
  const d = await startDaemon();
  t.after(() => d.cleanup());
  const v = await d.runtime('Version', { version: 'v1' });
  const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
  assert.equal(v.runtime_name, 'sandlot');
  assert.equal(v.runtime_version, pkg.version);
  assert.equal(v.runtime_api_version, 'v1');
  const s = await d.runtime('Status', { verbose: true });
  const types = s.status.conditions.map((c: { type: string }) => c.type);
  assert.deepEqual(types, ['RuntimeReady', 'NetworkReady']);
  for (const c of s.status.conditions) {
    if (!c.status) assert.ok(c.reason !== '' && c.message !== '', `${c.type} says why it is not ready`);
  }
  const cfg = JSON.parse(s.info.config) as { socket_path: string };
  assert.equal(cfg.socket_path, d.socket);
  assert.equal(fs.statSync(d.socket).mode & 0o777, 0o660);
  const rc = await d.runtime('RuntimeConfig', {});
  assert.equal(rc.linux.cgroup_driver, 'CGROUPFS');
});

test('every RPC is registered: none answers with grpc-js\'s own "not implemented" error', async (t) => {
  const d = await startDaemon();
  t.after(() => d.cleanup());
  for (const [serviceName, def] of Object.entries(loadCriServices())) {
    const stub = serviceName === 'RuntimeService' ? d.client.runtime : d.client.image;
    for (const [method, m] of Object.entries(def as Record<string, { responseStream: boolean }>)) {
      if (m.responseStream) continue; // streams are covered by the unit test
      type Unary = (req: object, opts: object, cb: (e: { code: number; details: string } | null) => void) => void;
      const fn = (stub as unknown as Record<string, Unary>)[method].bind(stub);
      const err = await new Promise<{ code: number; details: string } | null>((resolve) =>
        fn({}, { deadline: new Date(Date.now() + 30_000) }, (e: { code: number; details: string } | null) => resolve(e)),
      );
      if (err?.code === status.UNIMPLEMENTED) {
        assert.equal(err.details, `sandlot: ${serviceName}/${method} is not implemented yet`);
      }
    }
  }
});

test('UpdateRuntimeConfig takes a pod CIDR and rejects a malformed one naming the field', async (t) => {
  const d = await startDaemon();
  t.after(() => d.cleanup());
  // The harness's own subnet, so no other test's range is touched.
  const podCidr = String(d.config.cni_default_subnet);
  await d.runtime('UpdateRuntimeConfig', { runtime_config: { network_config: { pod_cidr: podCidr } } });
  await assert.rejects(
    d.runtime('UpdateRuntimeConfig', { runtime_config: { network_config: { pod_cidr: 'banana' } } }),
    (e: { code: status; details: string }) => e.code === status.INVALID_ARGUMENT && e.details.includes('pod_cidr') && e.details.includes('banana'),
  );
});

test('a second daemon on the same socket refuses with exit code 3 and leaves the first serving', async (t) => {
  const d = await startDaemon();
  t.after(() => d.cleanup());
  const r = cli(['daemon', '--config', d.configPath, '--metrics-address', '']);
  assert.equal(r.status, 3);
  assert.match(r.stderr, /another server is already listening/);
  assert.equal((await d.runtime('Version', {})).runtime_name, 'sandlot');
});

test('a stale socket left by a killed daemon is replaced at start', async (t) => {
  const d = await startDaemon();
  t.after(() => d.cleanup());
  await d.kill9();
  assert.ok(fs.statSync(d.socket).isSocket(), 'SIGKILL leaves the socket file behind');
  await d.restart();
  assert.equal((await d.runtime('Version', {})).runtime_name, 'sandlot');
});

test('SIGTERM removes the socket and exits 0', async (t) => {
  const d = await startDaemon();
  t.after(() => d.cleanup());
  await d.runtime('Version', {});
  assert.equal(await d.stop(), 0);
  assert.equal(fs.existsSync(d.socket), false);
  const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  assert.equal(mounts.includes(d.dir), false, 'a stopped daemon with no pods leaves no mount behind');
});

test('a bad config value stops the daemon with exit code 2 and a message naming the key', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-badcfg-'));
  try {
    const file = path.join(dir, 'config.yaml');
    fs.writeFileSync(file, `socket_path: ${dir}/s.sock\nlog_level: chatty\n`);
    const r = cli(['daemon', '--config', file]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /log_level = "chatty": allowed values:/);
    const r2 = cli(['daemon', '--config', file, '--log-level', 'info', '--metrics-address', 'x:99999']);
    assert.equal(r2.status, 2);
    assert.match(r2.stderr, /metrics_address/);
    const r3 = cli(['daemon'], { SANDLOT_CONFIG: file, SANDLOT_LOG_LEVEL: 'info', SANDLOT_ROOT: 'relative' });
    assert.equal(r3.status, 2);
    assert.match(r3.stderr, /root_dir = "relative"/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('/metrics shows the CRI call histogram by method and code after calls', async (t) => {
  const d = await startDaemon();
  t.after(() => d.cleanup());
  await d.runtime('Version', {});
  await d.runtime('Version', {});
  await d.runtime('Status', {});
  await d.image('ImageFsInfo', {}).catch(() => undefined);
  const text = await (await fetch(`http://${d.metricsAddress}/metrics`)).text();
  assert.match(text, /sandlot_cri_request_duration_seconds_count\{service="RuntimeService",method="Version",code="OK"\} 2/);
  assert.match(text, /sandlot_cri_request_duration_seconds_count\{service="RuntimeService",method="Status",code="OK"\} 1/);
  assert.match(text, /sandlot_build_info\{version="[^"]+",node_version="v\d+/);
  assert.match(text, /^process_resident_memory_bytes \d+/m);
});

test('a Go client that sends the socket path as :authority (kubelet < 1.30, old crictl) is served', async (t) => {
  const bin = buildGo(path.join(REPO_ROOT, 'test/helpers/go-cri-version'), 'go-cri-version');
  const d = await startDaemon();
  t.after(() => d.cleanup());
  const hex = execFileSync(bin, [d.socket], { encoding: 'utf8', timeout: 30_000 }).trim();
  const root = protobuf.loadSync(protoPath());
  const Resp = root.lookupType('runtime.v1.VersionResponse');
  const v = Resp.toObject(Resp.decode(Buffer.from(hex, 'hex'))) as Record<string, string>;
  assert.equal(v.runtimeName, 'sandlot');
  assert.equal(v.runtimeApiVersion, 'v1');
});

test('the CLI: version prints name, version and API version; config prints the effective YAML; --help lists verbs', async (t) => {
  const d = await startDaemon();
  t.after(() => d.cleanup());
  const v = cli(['version', '--socket', d.socket]);
  assert.equal(v.status, 0, v.stderr);
  assert.match(v.stdout, /RuntimeName:\s+sandlot/);
  assert.match(v.stdout, /RuntimeApiVersion:\s+v1/);
  const c = cli(['config', '--config', d.configPath, '--log-level', 'warn']);
  assert.equal(c.status, 0, c.stderr);
  assert.match(c.stdout, new RegExp(`socket_path: ${d.socket}`));
  assert.match(c.stdout, /log_level: warn/);
  const h = cli(['--help']);
  assert.equal(h.status, 0);
  for (const verb of ['daemon', 'version', 'config', 'status']) assert.match(h.stdout, new RegExp(`\\b${verb}\\b`));
});

test('two daemons with different sockets, roots and states run side by side', async (t) => {
  const a = await startDaemon();
  t.after(() => a.cleanup());
  const b = await startDaemon();
  t.after(() => b.cleanup());
  const [va, vb] = await Promise.all([a.runtime('Version', {}), b.runtime('Version', {})]);
  assert.equal(va.runtime_name, 'sandlot');
  assert.equal(vb.runtime_name, 'sandlot');
  assert.notEqual(a.socket, b.socket);
});
