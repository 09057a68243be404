import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { bridgeExists, ipamLeases, isMounted, listPorts, makeNetEnv, netnsInode, ping } from './harness.js';

// This file's own bridge and subnet.
const BRIDGE = 'sltest42';
const SUBNET = '10.242.0.0/24';
const PODS = 10;

test('10 pods set up at once get distinct netns and IPs; the bridge stays until the last one goes', async (t) => {
  const env = await makeNetEnv(t, { bridge: BRIDGE, subnet: SUBNET });
  const reqs = await Promise.all(Array.from({ length: PODS }, () => env.newPodWithNetns()));
  assert.equal(new Set(reqs.map((r) => netnsInode(r.netnsPath))).size, PODS, 'distinct namespaces');
  const results = await Promise.all(reqs.map((r) => env.manager.setUp(r)));
  const ips = results.map((r) => r.ip);
  assert.equal(new Set(ips).size, PODS, `distinct IPs: ${ips.join(' ')}`);
  for (const ip of ips) assert.match(ip, /^10\.242\.0\.\d+$/);
  assert.equal(listPorts(BRIDGE).length, PODS);
  for (const ip of ips) await ping(ip);
  assert.deepEqual((await env.manager.listPinned()).sort(), reqs.map((r) => r.podId).sort());

  // Half go at once: the bridge stays for the others, which still answer.
  const [first, rest] = [reqs.slice(0, PODS / 2), reqs.slice(PODS / 2)];
  await Promise.all(
    first.map(async (r) => {
      await env.manager.tearDown(r);
      await env.manager.removeNetns(r.podId);
    }),
  );
  assert.ok(bridgeExists(BRIDGE));
  assert.equal(listPorts(BRIDGE).length, rest.length);
  await ping(results[PODS - 1].ip);

  await Promise.all(
    rest.map(async (r) => {
      await env.manager.tearDown(r);
      await env.manager.removeNetns(r.podId);
    }),
  );
  assert.equal(bridgeExists(BRIDGE), false);
  assert.deepEqual(ipamLeases(path.join(env.stateDir, 'cni', 'networks')), []);
  for (const r of reqs) assert.equal(isMounted(r.netnsPath), false);
  assert.deepEqual(await env.manager.listPinned(), []);
});
