// StopContainer waits out its grace WITHOUT the container's lock (issue 12): a second
// StopContainer with a shorter timeout (the kubelet escalates so) or a RemoveContainer
// acts at once, as containerd lets a later stop escalate, and the first stop then
// returns too. And StopPodSandbox gives no grace (issue 15): what still runs in the pod
// gets SIGKILL at once, as containerd's (the kubelet stopped the containers first).
// On runc and runsc. No timing is asserted: the first stop's grace (an hour) is longer
// than the test's deadline, so a stop that waited for it fails the test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { failure, makeContainerEnv, waitFor, type ContainerEnv } from './container-env.js';

const STUBBORN = ['/bin/sh', '-c', 'trap "echo ignoring-term" TERM; echo ready; while true; do sleep 0.1; done'];
/** Longer than each test's deadline. */
const HOUR_S = 3600;

async function startStubborn(env: ContainerEnv, pod: string, name: string): Promise<{ id: string; log: () => string }> {
  const id = await env.createContainer(pod, name, { command: STUBBORN });
  await env.d.runtime('StartContainer', { container_id: id }, 120_000);
  const path = (await env.status(id)).log_path;
  const log = (): string => (fs.existsSync(path) ? fs.readFileSync(path, 'utf8') : '');
  await waitFor(`${name} to set its trap`, () => log().includes('ready'), 60_000);
  return { id, log };
}

for (const handler of ['runc', 'runsc']) {
  test(
    `${handler}: a StopContainer with a shorter timeout, or a RemoveContainer, escalates a graceful stop in progress (SIGKILL, 137)`,
    { timeout: 300_000 },
    async (t) => {
      const env = await makeContainerEnv(t);
      const pod = await env.runPod(`escalate-${handler}`, {}, handler);

      const a = await startStubborn(env, pod, 'stubborn-a');
      const firstA = env.d.runtime('StopContainer', { container_id: a.id, timeout: HOUR_S }, 600_000);
      await waitFor('the stop signal to reach the trap', () => a.log().includes('ignoring-term'), 60_000);
      assert.equal((await env.status(a.id)).state, 'CONTAINER_RUNNING', 'Status answers during the grace');
      await env.d.runtime('StopContainer', { container_id: a.id, timeout: 0 }, 120_000);
      const st = await env.status(a.id);
      assert.equal(st.state, 'CONTAINER_EXITED');
      assert.equal(st.exit_code, 137, 'the later, shorter stop killed it');
      await firstA; // the first stop returns once the container is gone
      assert.equal((await env.status(a.id)).exit_code, 137);

      const b = await startStubborn(env, pod, 'stubborn-b');
      const firstB = env.d.runtime('StopContainer', { container_id: b.id, timeout: HOUR_S }, 600_000);
      await waitFor('the stop signal to reach the trap', () => b.log().includes('ignoring-term'), 60_000);
      await env.d.runtime('RemoveContainer', { container_id: b.id }, 120_000);
      const gone = await failure(env.d.runtime('ContainerStatus', { container_id: b.id }));
      assert.equal(gone.code, GrpcStatus.NOT_FOUND);
      await firstB; // a stop of a container removed meanwhile succeeds
    },
  );

  test(
    `${handler}: StopPodSandbox kills a container that ignores SIGTERM at once (SIGKILL, 137, no SIGTERM) and the pod is NOTREADY`,
    { timeout: 300_000 },
    async (t) => {
      const env = await makeContainerEnv(t);
      const pod = await env.runPod(`podkill-${handler}`, {}, handler);
      const c = await startStubborn(env, pod, 'stubborn');
      await env.d.runtime('StopPodSandbox', { pod_sandbox_id: pod }, 120_000);
      const st = await env.status(c.id);
      assert.equal(st.state, 'CONTAINER_EXITED');
      assert.equal(st.exit_code, 137, 'SIGKILL');
      assert.equal(c.log().includes('ignoring-term'), false, 'no SIGTERM grace was given: the trap never ran');
      const p = await env.d.runtime('PodSandboxStatus', { pod_sandbox_id: pod });
      assert.equal(p.status.state, 'SANDBOX_NOTREADY');
    },
  );
}
