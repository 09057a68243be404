// Resources with real runc: a container exceeding its memory limit ends OOMKilled (read
// from its cgroup's OOM kill count), and the sandbox process's oom_score_adj follows
// S10 as containers come and go, each monitor taking its container's value (S11).
// Values stay ≥ 0: this machine's root lacks CAP_SYS_RESOURCE.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { makeContainerEnv, waitFor } from './container-env.js';

const MIB = 1024 * 1024;

test('a container that exceeds its memory limit ends as OOMKilled (runc)', { timeout: 180_000 }, async (t) => {
  const env = await makeContainerEnv(t);
  const pod = await env.runPod('oom');
  const id = await env.createContainer(pod, 'hog', {
    // The shell doubles a string until the cgroup limit ends it.
    command: ['/bin/sh', '-c', 'echo start; a=0123456789abcdef; while true; do a="$a$a"; done'],
    linux: { resources: { memory_limit_in_bytes: 32 * MIB, memory_swap_limit_in_bytes: 32 * MIB } },
  });
  await env.d.runtime('StartContainer', { container_id: id });
  const st = await env.waitState(id, 'CONTAINER_EXITED', 120_000);
  assert.equal(st.reason, 'OOMKilled');
  assert.equal(st.exit_code, 137);
  assert.equal(st.resources.linux.memory_limit_in_bytes, String(32 * MIB));

  // A container that ends normally next to it is not blamed.
  const fine = await env.createContainer(pod, 'fine', { command: ['/bin/sh', '-c', 'exit 0'] });
  await env.d.runtime('StartContainer', { container_id: fine });
  assert.equal((await env.waitState(fine, 'CONTAINER_EXITED')).reason, 'Completed');
});

test(
  'S10: the sandbox oom_score_adj is the min over its containers, back to the original when none is left; S11 for each monitor',
  { timeout: 240_000 },
  async (t) => {
    const env = await makeContainerEnv(t);
    const pod = await env.runPod('oomscore');
    const { pid: infraPid } = await env.podInfo(pod);
    const score = (pid: number): number => Number(fs.readFileSync(`/proc/${pid}/oom_score_adj`, 'utf8').trim());
    const original = score(infraPid);
    assert.ok(original < 300, `the infra starts below the test values (${original})`);
    const sleeper = (name: string, adj?: number): Promise<string> =>
      env.createContainer(pod, name, {
        command: ['/bin/sh', '-c', 'sleep 3600'],
        ...(adj !== undefined ? { linux: { resources: { oom_score_adj: adj } } } : {}),
      });
    const a = await sleeper('a300', 300);
    const b = await sleeper('b700', 700);
    const c = await sleeper('cnone');

    await env.d.runtime('StartContainer', { container_id: b });
    await waitFor('the sandbox at 700', () => score(infraPid) === 700);
    await env.d.runtime('StartContainer', { container_id: a });
    await waitFor('the sandbox at 300', () => score(infraPid) === 300);
    await env.d.runtime('StartContainer', { container_id: c });
    assert.equal(score(infraPid), 300, 'a container without a value changes nothing');

    // S11: each monitor carries its container's score; the container process too.
    const infoA = await env.info(a);
    const infoB = await env.info(b);
    assert.equal(score(Number(infoA.conmonPid)), 300);
    assert.equal(score(Number(infoB.conmonPid)), 700);
    assert.equal(score(Number(infoA.pid)), 300);

    await env.d.runtime('StopContainer', { container_id: a, timeout: 0 });
    await env.d.runtime('RemoveContainer', { container_id: a });
    assert.equal(score(infraPid), 700, 'the lowest remaining value');
    await env.d.runtime('RemoveContainer', { container_id: b });
    assert.equal(score(infraPid), original, 'no container with a value left: the original');
    await env.d.runtime('RemoveContainer', { container_id: c });
    assert.equal(score(infraPid), original);
  },
);
