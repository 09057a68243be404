// Exits are pushed (issue 13): the end of a container's conmon, and of a pod's infra
// process (it has no conmon), is seen through a pidfd, so GetContainerEvents carries CONTAINER_STOPPED for a
// container that exits on its own, and for a pod whose infra is killed, while nobody calls
// a Status or a List; the exit is recorded with its code before any read. Both handlers
// (runsc subcontainers: conmon runs the runsc shim and ends when the subcontainer does).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeContainerEnv, waitFor } from '../container/container-env.js';
import type { ResponseOutputOf } from '../../../src/cri/handler-types.js';

type ContainerEvent = ResponseOutputOf<'GetContainerEvents'>;

for (const handler of ['runc', 'runsc']) {
  test(`${handler}: an exit on its own and an infra killed are pushed as CONTAINER_STOPPED, no read needed`, { timeout: 300_000 }, async (t) => {
    const env = await makeContainerEnv(t);
    const { d } = env;
    const events: ContainerEvent[] = [];
    const stream = d.runtimeStream('GetContainerEvents', {});
    stream.on('data', (m: ContainerEvent) => events.push(m));
    stream.on('error', () => undefined); // cancelled at the end
    t.after(() => stream.cancel());
    const stopped = (id: string): boolean => events.some((e) => e.container_id === id && e.container_event_type === 'CONTAINER_STOPPED_EVENT');

    const pod = await env.runPod(`pushed-${handler}`, {}, handler);
    const ctr = await env.createContainer(pod, 'quick', { command: ['/bin/sh', '-c', 'sleep 1; exit 3'] });
    await d.runtime('StartContainer', { container_id: ctr });
    // No ContainerStatus or ListContainers until the event is there.
    await waitFor('the container stopped event', () => stopped(ctr), 120_000);
    const st = await d.runtime('ContainerStatus', { container_id: ctr });
    assert.equal(st.status?.state, 'CONTAINER_EXITED');
    assert.equal(st.status?.exit_code, 3, 'the code conmon wrote');

    // The pod's infra killed from outside: its pidfd reports the end, the pod is NOTREADY, pushed.
    const info = await d.runtime('PodSandboxStatus', { pod_sandbox_id: pod, verbose: true });
    const { pid } = JSON.parse(info.info.info ?? '{}') as { pid: number };
    assert.ok(pid > 0, 'the infra has a host PID');
    process.kill(pid, 'SIGKILL');
    await waitFor('the sandbox stopped event', () => stopped(pod), 120_000);
    const ps = await d.runtime('PodSandboxStatus', { pod_sandbox_id: pod });
    assert.equal(ps.status?.state, 'SANDBOX_NOTREADY');

    await d.runtime('RemoveContainer', { container_id: ctr });
    await d.runtime('RemovePodSandbox', { pod_sandbox_id: pod });
  });
}
