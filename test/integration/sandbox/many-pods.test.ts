// Ten pods started at once: each gets its own IP, all answer ping, all go away cleanly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { execFileAsync, ipamLeases, makePodEnv, podConfig } from './pod-env.js';

const PODS = 10;

test(`${PODS} pods run at once with distinct IPs and are all removed cleanly`, { timeout: 300_000 }, async (t) => {
  const env = await makePodEnv(t);
  const ids = (await Promise.all(Array.from({ length: PODS }, (_, i) => env.call('RunPodSandbox', { config: podConfig(`many-${i}`) })))) as Array<{
    pod_sandbox_id: string;
  }>;
  const ips = await Promise.all(
    ids.map(
      async ({ pod_sandbox_id }) => ((await env.call('PodSandboxStatus', { pod_sandbox_id })) as { status: { network: { ip: string }; state: string } }).status,
    ),
  );
  assert.ok(ips.every((s) => s.state === 'SANDBOX_READY'));
  assert.equal(new Set(ips.map((s) => s.network.ip)).size, PODS, `distinct IPs: ${ips.map((s) => s.network.ip).join(', ')}`);
  for (const s of ips) await execFileAsync('ping', ['-c', '1', '-W', '5', s.network.ip]);
  const list = (await env.call('ListPodSandbox', { filter: { state: { state: 'SANDBOX_READY' } } })) as { items: unknown[] };
  assert.equal(list.items.length, PODS);
  const streamed = (await env.call('StreamPodSandboxes', { filter: { label_selector: { app: 'many-3' } } })) as {
    messages: Array<{ pod_sandboxes: Array<{ id: string }> }>;
  };
  assert.deepEqual(
    streamed.messages.flatMap((m) => m.pod_sandboxes.map((p) => p.id)),
    [ids[3].pod_sandbox_id],
  );
  await Promise.all(ids.map(({ pod_sandbox_id }) => env.call('RemovePodSandbox', { pod_sandbox_id })));
  assert.deepEqual(env.pods.list(), []);
  assert.deepEqual(ipamLeases(env.config.state_dir), []);
  assert.ok(!fs.existsSync(`/sys/class/net/${env.bridge}/brif`) || fs.readdirSync(`/sys/class/net/${env.bridge}/brif`).length === 0);
});
