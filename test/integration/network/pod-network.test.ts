import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { FailedPreconditionError } from '../../../src/errors.js';
import { bridgeExists, ipamLeases, isMounted, listPorts, makeNetEnv, natRules, netnsInode, ping } from './harness.js';

// This file's own bridge and subnet.
const BRIDGE = 'sltest41';
const SUBNET = '10.241.0.0/24';

test('a pod gets a pinned netns and an IP on the bridge, answers ping, passes CHECK, and leaves nothing after teardown', async (t) => {
  const env = await makeNetEnv(t, { bridge: BRIDGE, subnet: SUBNET });
  assert.deepEqual(await env.manager.status(), { ready: true, reason: '', message: 'CNI network "sandlot" (embedded default)' });
  const req = await env.newPodWithNetns();
  assert.ok(isMounted(req.netnsPath), 'the netns is pinned by a mount');
  assert.notEqual(netnsInode(req.netnsPath), netnsInode('/proc/self/ns/net'), 'a new namespace, not ours');
  assert.equal(fs.readlinkSync('/proc/thread-self/ns/net'), fs.readlinkSync('/proc/self/ns/net'), 'the main thread came back home');
  assert.deepEqual(await env.manager.listPinned(), [req.podId]);

  const res = await env.manager.setUp(req);
  assert.equal(res.interface, 'eth0');
  assert.match(res.ip, /^10\.241\.0\.\d+$/);
  assert.deepEqual(res.additionalIps, []);
  assert.equal(listPorts(BRIDGE).length, 1, 'one veth on the bridge');
  await ping(res.ip);
  await env.manager.check(req);
  const counters = await env.manager.podNetworkCounters(req.netnsPath);
  const eth0 = counters.find((c) => c.name === 'eth0');
  assert.ok(eth0 && eth0.rxBytes > 0 && eth0.txBytes > 0, `eth0 saw the ping: ${JSON.stringify(counters)}`);
  assert.ok(counters.some((c) => c.name === 'lo'));
  assert.equal(ipamLeases(path.join(env.stateDir, 'cni', 'networks')).length, 1);
  await assert.rejects(env.manager.setUp(req), FailedPreconditionError, 'a second ADD for the same pod is refused');

  await env.manager.tearDown(req);
  await env.manager.removeNetns(req.podId);
  assert.deepEqual(listPorts(BRIDGE), [], 'no veth left');
  assert.equal(bridgeExists(BRIDGE), false, 'the bridge went with the last pod');
  assert.deepEqual(ipamLeases(path.join(env.stateDir, 'cni', 'networks')), [], 'no IPAM lease left');
  assert.equal(isMounted(req.netnsPath), false);
  assert.equal(fs.existsSync(req.netnsPath), false);
  assert.deepEqual(fs.readdirSync(path.join(env.stateDir, 'cni', 'results')), []);
  assert.deepEqual(await env.manager.listPinned(), []);
  // Both are idempotent.
  await env.manager.tearDown(req);
  await env.manager.removeNetns(req.podId);
  await assert.rejects(env.manager.check(req), FailedPreconditionError);
});

test('a TCP port mapping forwards 127.0.0.1:<hostPort> to the pod, and its rules go with the pod', async (t) => {
  const env = await makeNetEnv(t, { bridge: BRIDGE, subnet: SUBNET });
  const req = await env.newPodWithNetns([{ protocol: 'TCP', containerPort: 8080, hostPort: 42180, hostIp: '127.0.0.1' }]);
  const res = await env.manager.setUp(req);
  // A tiny server inside the pod's netns.
  const server = spawn(
    'nsenter',
    [
      `--net=${req.netnsPath}`,
      process.execPath,
      '-e',
      "require('net').createServer((s) => s.end('hello from the pod')).listen(8080, '0.0.0.0', () => console.log('listening'))",
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  t.after(() => {
    server.kill('SIGKILL');
  });
  await new Promise<void>((resolve, reject) => {
    server.stdout.once('data', () => resolve());
    server.once('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
  assert.match(await natRules(), new RegExp(`--dport 42180 -j DNAT --to-destination ${res.ip.replace(/\./g, '\\.')}:8080`));
  await env.manager.check(req);
  const got = await new Promise<string>((resolve, reject) => {
    const s = net.connect(42180, '127.0.0.1');
    let data = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => (data += d));
    s.on('end', () => resolve(data));
    s.on('error', reject);
    s.setTimeout(10_000, () => s.destroy(new Error('timed out')));
  });
  assert.equal(got, 'hello from the pod');
  server.kill('SIGKILL');
  await env.manager.tearDown(req);
  await env.manager.removeNetns(req.podId);
  const rules = await natRules();
  assert.equal(rules.includes(req.podId), false, 'no portmap rule names the pod');
  assert.equal(rules.includes('42180'), false, 'no rule for the host port');
});

test('setUp needs a pinned netns; counters too', async (t) => {
  const env = await makeNetEnv(t, { bridge: BRIDGE, subnet: SUBNET });
  const req = env.newPod();
  await assert.rejects(env.manager.setUp(req), (e: unknown) => e instanceof FailedPreconditionError && /no network namespace pinned/.test(e.message));
  await assert.rejects(env.manager.podNetworkCounters(req.netnsPath), FailedPreconditionError);
  assert.equal(bridgeExists(BRIDGE), false);
  await env.manager.tearDown(req); // never set up: nothing to do
});

test('after a restart a new manager finds the pods and tears them down, also one whose netns is already gone', async (t) => {
  const env = await makeNetEnv(t, { bridge: BRIDGE, subnet: SUBNET });
  const [a, b] = [await env.newPodWithNetns(), await env.newPodWithNetns()];
  await env.manager.setUp(a);
  await env.manager.setUp(b);
  // A second manager on the same state dir stands for the daemon after a SIGKILL.
  const { NetworkManager } = await import('../../../src/network/network-manager.js');
  const { pino } = await import('pino');
  const again = await NetworkManager.create({ config: env.config, log: pino({ level: 'silent' }), bridgeLingerMs: 0 });
  assert.deepEqual(await again.listPinned(), [a.podId, b.podId].sort());
  assert.deepEqual(await again.listAttached(), [a.podId, b.podId].sort());
  await again.check(a);
  // b's netns vanished first (its veth with it): DEL still releases the lease.
  await again.removeNetns(b.podId);
  await again.tearDown(b);
  assert.deepEqual(ipamLeases(path.join(env.stateDir, 'cni', 'networks')).length, 1);
  assert.ok(bridgeExists(BRIDGE), 'a is still on the bridge');
  await again.tearDown(a);
  await again.removeNetns(a.podId);
  assert.deepEqual(ipamLeases(path.join(env.stateDir, 'cni', 'networks')), []);
  assert.deepEqual(await again.listAttached(), []);
  assert.equal(bridgeExists(BRIDGE), false);
});

test('with a linger the bridge outlives the last pod, serves the next one as it is, and goes at close', async (t) => {
  // Issue 13: deleting the bridge with the last pod and making it with the next costs both.
  const env = await makeNetEnv(t, { bridge: BRIDGE, subnet: SUBNET, bridgeLingerMs: 10 * 60_000 });
  const first = await env.newPodWithNetns();
  await env.manager.setUp(first);
  const ifindex = fs.readFileSync(`/sys/class/net/${BRIDGE}/ifindex`, 'utf8');
  await env.manager.tearDown(first);
  await env.manager.removeNetns(first.podId);
  assert.deepEqual(listPorts(BRIDGE), [], 'no veth left');
  assert.ok(bridgeExists(BRIDGE), 'the bridge stays for the next pod');
  const next = await env.newPodWithNetns();
  const res = await env.manager.setUp(next);
  await ping(res.ip);
  assert.equal(fs.readFileSync(`/sys/class/net/${BRIDGE}/ifindex`, 'utf8'), ifindex, 'the same bridge, not a new one');
  await env.manager.tearDown(next);
  await env.manager.removeNetns(next.podId);
  await env.manager.close();
  assert.equal(bridgeExists(BRIDGE), false, 'close removes the bridge no pod uses');
});

test('a short linger removes the unused bridge by itself', async (t) => {
  const env = await makeNetEnv(t, { bridge: BRIDGE, subnet: SUBNET, bridgeLingerMs: 50 });
  const req = await env.newPodWithNetns();
  await env.manager.setUp(req);
  await env.manager.tearDown(req);
  await env.manager.removeNetns(req.podId);
  // Poll with a deadline: the removal runs on a timer, after a busy machine gets to it.
  const deadline = Date.now() + 60_000;
  while (bridgeExists(BRIDGE) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.equal(bridgeExists(BRIDGE), false, 'the bridge went once it had no pod for the linger');
});
