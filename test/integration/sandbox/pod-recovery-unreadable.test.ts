// Issue 12 defect "recovery destroys live pods": a pod whose meta.json does not load at
// start (corrupt, or a "version" another sandlot wrote) is kept as UNKNOWN, as
// containerd keeps a sandbox it cannot load: listed (SANDBOX_NOTREADY), its infra,
// netns, CNI lease, shm and state dir untouched; everything but StopPodSandbox and
// RemovePodSandbox is refused (FAILED_PRECONDITION naming the pod and why, S4), and
// those two take everything away (S7). On runc and runsc.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { alive, ipamLeases, isMounted, makePodEnv, podConfig } from './pod-env.js';
import type { SandboxRecord } from '../../../src/sandbox/pod/sandbox.js';

interface Case {
  handler: string;
  how: 'corrupt' | 'other-version';
  id: string;
  rec: SandboxRecord;
}

test(
  'S3/S4/S7: a running pod whose meta.json does not load survives a restart as UNKNOWN; only stop and remove act on it, and they clean up everything',
  { timeout: 300_000 },
  async (t) => {
    const env = await makePodEnv(t);
    const cases: Case[] = [];
    for (const handler of ['runc', 'runsc']) {
      for (const how of ['corrupt', 'other-version'] as const) {
        const name = `unreadable-${handler}-${how}`;
        const { pod_sandbox_id: id } = (await env.call('RunPodSandbox', { config: podConfig(name), runtime_handler: handler })) as { pod_sandbox_id: string };
        cases.push({ handler, how, id, rec: env.pods.get(id) });
      }
    }
    const keep = (await env.call('RunPodSandbox', { config: podConfig('readable') })) as { pod_sandbox_id: string };

    for (const c of cases) {
      const metaFile = path.join(env.config.root_dir, 'pods', c.id, 'meta.json');
      if (c.how === 'corrupt') fs.writeFileSync(metaFile, '{"version": 1, "id": "trunc');
      else fs.writeFileSync(metaFile, JSON.stringify({ ...JSON.parse(fs.readFileSync(metaFile, 'utf8')), version: 7 }));
    }

    await env.restart();

    const list = (await env.call('ListPodSandbox', {})) as { items: Array<{ id: string; state: string }> };
    assert.deepEqual(
      list.items.map((i) => [i.id, i.state]).sort(),
      [[keep.pod_sandbox_id, 'SANDBOX_READY'], ...cases.map((c) => [c.id, 'SANDBOX_NOTREADY'])].sort(),
      'the unreadable pods are listed, NOTREADY',
    );
    for (const c of cases) {
      const what = `${c.handler}/${c.how}`;
      assert.ok(alive(c.rec.pid), `${what}: the infra still runs`);
      assert.ok(isMounted(c.rec.netnsPath!), `${what}: the netns is still pinned`);
      assert.ok(isMounted(c.rec.paths.shm), `${what}: the pod shm is still mounted`);
      assert.ok(fs.existsSync(c.rec.paths.resolvConf), `${what}: the pod state dir is still there`);
      assert.ok(ipamLeases(env.config.state_dir).includes(c.rec.ip), `${what}: the IP lease is kept`);
      const refused = (e: unknown): boolean =>
        (e as { code?: string }).code === 'FAILED_PRECONDITION' && (e as Error).message.includes(c.id) && /record is unreadable/.test((e as Error).message);
      await assert.rejects(env.call('PodSandboxStatus', { pod_sandbox_id: c.id }), refused, `${what}: status refused`);
      assert.throws(() => env.pods.requireRunning(c.id, 'create a container in'), refused, `${what}: a container create refused`);
    }
    // The readable pod is as it was.
    const st = (await env.call('PodSandboxStatus', { pod_sandbox_id: keep.pod_sandbox_id })) as { status: { state: string } };
    assert.equal(st.status.state, 'SANDBOX_READY');

    for (const c of cases) {
      const what = `${c.handler}/${c.how}`;
      await env.call('StopPodSandbox', { pod_sandbox_id: c.id });
      assert.ok(!alive(c.rec.pid), `${what}: stop ended the infra`);
      assert.ok(!isMounted(c.rec.netnsPath!), `${what}: stop released the netns`);
      assert.ok(!ipamLeases(env.config.state_dir).includes(c.rec.ip), `${what}: stop released the IP`);
      await env.call('StopPodSandbox', { pod_sandbox_id: c.id }); // idempotent
      await env.call('RemovePodSandbox', { pod_sandbox_id: c.id });
      assert.ok(!isMounted(c.rec.paths.shm), `${what}: remove unmounted the shm`);
      assert.ok(!fs.existsSync(c.rec.paths.dir), `${what}: remove took the state dir`);
      assert.ok(!fs.existsSync(path.join(env.config.root_dir, 'pods', c.id)), `${what}: and the metadata`);
      assert.ok(!fs.existsSync(path.join('/sys/fs/cgroup/memory', c.rec.infraCgroup)), `${what}: and the infra cgroup`);
      await env.call('RemovePodSandbox', { pod_sandbox_id: c.id }); // idempotent
    }
    const after = (await env.call('ListPodSandbox', {})) as { items: Array<{ id: string }> };
    assert.deepEqual(
      after.items.map((i) => i.id),
      [keep.pod_sandbox_id],
    );
    await env.call('RemovePodSandbox', { pod_sandbox_id: keep.pod_sandbox_id });
    assert.deepEqual(ipamLeases(env.config.state_dir), []);
  },
);
