import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { FailedPreconditionError, InternalError } from '../../../src/errors.js';
import { bridgeExists, ipamLeases, listPorts, makeNetEnv, natRules } from './harness.js';

// This file's own bridges and subnets.
const BRIDGE = 'sltest43';
const SUBNET = '10.243.0.0/24';
const BAD_BRIDGE = 'sltest44';
const BAD_SUBNET = '10.243.64.0/24';

test('a plugin failing after the IP was allocated: the error names it, and nothing is leaked', async (t) => {
  const ipamDir = fs.mkdtempSync('/tmp/sandlot-ipam-');
  t.after(() => fs.rmSync(ipamDir, { recursive: true, force: true }));
  const conflist = {
    cniVersion: '1.0.0',
    name: 'failing',
    plugins: [
      { type: 'bridge', bridge: BAD_BRIDGE, isGateway: true, ipam: { type: 'host-local', dataDir: ipamDir, ranges: [[{ subnet: BAD_SUBNET }]] } },
      { type: 'portmap', capabilities: { portMappings: true } },
      // tuning fails on a sysctl that does not exist, after bridge + host-local succeeded.
      { type: 'tuning', sysctl: { 'net.ipv4.conf.eth0.no_such_sysctl': '1' } },
    ],
  };
  const env = await makeNetEnv(t, { bridge: BRIDGE, subnet: SUBNET, confFiles: { '10-failing.conflist': JSON.stringify(conflist) } });
  t.after(async () => {
    if (bridgeExists(BAD_BRIDGE)) await import('./harness.js').then((h) => h.execFileAsync('ip', ['link', 'delete', 'dev', BAD_BRIDGE]).catch(() => {}));
  });
  const status = await env.manager.status();
  assert.equal(status.ready, true, status.message);
  assert.match(status.message, /"failing".*10-failing\.conflist/);
  const req = await env.newPodWithNetns([{ protocol: 'TCP', containerPort: 80, hostPort: 42181, hostIp: '127.0.0.1' }]);
  await assert.rejects(env.manager.setUp(req), (e: unknown) => {
    assert.ok(e instanceof InternalError, String(e));
    assert.match(e.message, new RegExp(`^setting up network of pod "${req.podId}": running CNI plugin "tuning" ADD for network "failing": .+`));
    return true;
  });
  assert.deepEqual(ipamLeases(ipamDir), [], 'the IP allocation was released');
  assert.deepEqual(listPorts(BAD_BRIDGE), [], 'no veth left on the bridge');
  assert.equal(bridgeExists(BAD_BRIDGE), false, 'the bridge it made is gone');
  assert.deepEqual(fs.readdirSync(path.join(env.stateDir, 'cni', 'results')), [], 'no attachment recorded');
  assert.equal((await natRules()).includes(req.podId), false, 'no port mapping rule left');
  assert.deepEqual(await env.manager.listAttached(), []);
  // The pod's netns itself is the caller's to remove, and it still can.
  await env.manager.removeNetns(req.podId);
  assert.deepEqual(await env.manager.listPinned(), []);
});

test('status is not ready with a missing plugin dir, and setUp then fails cleanly', async (t) => {
  const env = await makeNetEnv(t, { bridge: BRIDGE, subnet: SUBNET, binDirs: ['/nonexistent/cni/bin'] });
  const status = await env.manager.status();
  assert.equal(status.ready, false);
  assert.equal(status.reason, 'NetworkPluginNotReady');
  assert.match(status.message, /plugins "loopback", "bridge", "host-local", "portmap" not found in "\/nonexistent\/cni\/bin"/);
  const req = await env.newPodWithNetns();
  await assert.rejects(
    env.manager.setUp(req),
    (e: unknown) => e instanceof FailedPreconditionError && /not found in "\/nonexistent\/cni\/bin"/.test(e.message),
  );
  assert.equal(bridgeExists(BRIDGE), false);
  assert.deepEqual(await env.manager.listAttached(), []);
  await env.manager.removeNetns(req.podId);
});

test('a conf dir whose only file is broken: not ready, and setUp names the file', async (t) => {
  const env = await makeNetEnv(t, { bridge: BRIDGE, subnet: SUBNET, confFiles: { '10-broken.conflist': '{"cniVersion":"1.0.0","name":"x","plugins":[' } });
  const status = await env.manager.status();
  assert.equal(status.ready, false);
  assert.match(status.message, /10-broken\.conflist/);
  const req = await env.newPodWithNetns();
  await assert.rejects(env.manager.setUp(req), (e: unknown) => e instanceof FailedPreconditionError && /10-broken\.conflist/.test(e.message));
  await env.manager.removeNetns(req.podId);
});

test('the pod CIDR from UpdateRuntimeConfig feeds the default network', async (t) => {
  const env = await makeNetEnv(t, { bridge: BRIDGE, subnet: SUBNET });
  env.manager.setPodCidr('10.243.128.0/25');
  const req = await env.newPodWithNetns();
  const res = await env.manager.setUp(req);
  assert.match(res.ip, /^10\.243\.128\.\d+$/);
  await env.manager.tearDown(req);
  await env.manager.removeNetns(req.podId);
  assert.equal(bridgeExists(BRIDGE), false);
});
