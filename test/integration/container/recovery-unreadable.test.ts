// Issue 12 defect "recovery destroys live pods", the container half: a container whose
// meta.json does not load at start (corrupt, or a "version" another sandlot wrote) is
// kept as CONTAINER_UNKNOWN, as containerd keeps a container it cannot load: listed,
// its process untouched; every action but RemoveContainer is refused
// (FAILED_PRECONDITION naming it and why, S4), and remove takes it away (S7). On runc
// and runsc, through the real daemon restarted after kill -9.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { alive, failure, makeContainerEnv } from './container-env.js';

const FAILED_PRECONDITION = 9;

test(
  'S3/S4/S7: a running container whose meta.json does not load survives a restart as CONTAINER_UNKNOWN; only remove acts on it',
  { timeout: 300_000 },
  async (t) => {
    const env = await makeContainerEnv(t);
    const { d } = env;
    const cases: Array<{ handler: string; how: 'corrupt' | 'other-version'; pod: string; id: string; pid: number }> = [];
    for (const [handler, how] of [
      ['runc', 'corrupt'],
      ['runsc', 'other-version'],
    ] as const) {
      const pod = await env.runPod(`unreadable-${handler}`, {}, handler);
      const id = await env.createContainer(pod, 'sleeper', { command: ['/bin/sh', '-c', 'sleep 3600'] });
      await d.runtime('StartContainer', { container_id: id });
      await env.waitState(id, 'CONTAINER_RUNNING');
      cases.push({ handler, how, pod, id, pid: Number((await env.info(id)).pid) });
    }

    await d.kill9();
    for (const c of cases) {
      const metaFile = path.join(d.rootDir, 'containers', c.id, 'meta.json');
      if (c.how === 'corrupt') fs.writeFileSync(metaFile, '{"version": 1, "id": "trunc');
      else fs.writeFileSync(metaFile, JSON.stringify({ ...JSON.parse(fs.readFileSync(metaFile, 'utf8')), version: 7 }));
    }
    await d.start();

    const list = (await d.runtime('ListContainers', {})) as { containers: Array<{ id: string; state: string; pod_sandbox_id: string }> };
    assert.deepEqual(
      list.containers.map((c) => [c.id, c.state, c.pod_sandbox_id]).sort(),
      cases.map((c) => [c.id, 'CONTAINER_UNKNOWN', c.pod]).sort(),
      'the unreadable containers are listed, UNKNOWN, in their pods',
    );
    for (const c of cases) {
      const what = `${c.handler}/${c.how}`;
      assert.ok(alive(c.pid), `${what}: the container process still runs`);
      const st = await env.status(c.id);
      assert.equal(st.state, 'CONTAINER_UNKNOWN');
      assert.match(st.message, /meta\.json/, `${what}: the status says why`);
      for (const [method, req] of [
        ['StartContainer', { container_id: c.id }],
        ['StopContainer', { container_id: c.id, timeout: 0 }],
        ['ExecSync', { container_id: c.id, cmd: ['true'], timeout: 10 }],
      ] as const) {
        const f = await failure(d.runtime(method, req));
        assert.equal(f.code, FAILED_PRECONDITION, `${what}: ${method} refused`);
        assert.ok(f.details.includes(c.id) && /record is unreadable/.test(f.details), `${what}: ${method} says why: ${f.details}`);
      }
      assert.ok(alive(c.pid), `${what}: the refused calls left the process alone`);
    }

    for (const c of cases) {
      const what = `${c.handler}/${c.how}`;
      await d.runtime('RemoveContainer', { container_id: c.id }, 60_000);
      assert.ok(!alive(c.pid), `${what}: remove ended the process`);
      assert.ok(!fs.existsSync(path.join(d.rootDir, 'containers', c.id, 'meta.json')), `${what}: and took the metadata`);
      assert.ok(!fs.existsSync(path.join(d.stateDir, 'containers', c.id)), `${what}: and the runtime files`);
      await d.runtime('RemoveContainer', { container_id: c.id }); // idempotent
    }
    const after = (await d.runtime('ListContainers', {})) as { containers: unknown[] };
    assert.deepEqual(after.containers, []);
    for (const c of cases) await d.runtime('RemovePodSandbox', { pod_sandbox_id: c.pod }, 60_000);
  },
);
