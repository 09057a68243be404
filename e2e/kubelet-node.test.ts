// A whole node as the kubelet drives it, through the real daemon's gRPC socket: the
// start-up handshake, an image pull from a registry, a pod with two containers that
// talk over the pod network, a probe through ExecSync, logs in CRI format, and the
// teardown in the kubelet's order. Nothing may be left behind.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeBusyboxLayout } from '../src/image/oci-layout-writer.js';
import type { ContainerStatus__Output } from '../src/types/cri/runtime/v1/ContainerStatus.js';
import type { ContainerStatusResponse__Output } from '../src/types/cri/runtime/v1/ContainerStatusResponse.js';
import { startDaemon, type TestDaemon } from '../test/helpers/daemon.js';

const HANDLERS = ['runc', 'runsc'] as const;

async function waitState(d: TestDaemon, id: string, want: string, timeoutMs = 60_000): Promise<ContainerStatus__Output> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { status } = (await d.runtime('ContainerStatus', { container_id: id })) as ContainerStatusResponse__Output;
    if (status?.state === want) return status;
    if (Date.now() > deadline) throw new Error(`container ${id} stayed ${status?.state}, wanted ${want}`);
    await sleep(100);
  }
}

for (const handler of HANDLERS) {
  test(`kubelet flow on a ${handler} pod: handshake, pull, two containers, probe, logs, teardown`, { timeout: 300_000 }, async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-e2e-'));
    const layout = path.join(dir, 'busybox');
    await writeBusyboxLayout(layout, 'docker.io/library/busybox:e2e');
    const d = await startDaemon({ config: { preload_images: [layout] } });
    t.after(async () => {
      await d.cleanup();
      fs.rmSync(dir, { recursive: true, force: true });
    });
    // Every RPC below is served: an UNIMPLEMENTED answer is a wiring regression and fails the test.

    // The kubelet's start-up handshake.
    assert.equal((await d.runtime('Version', { version: 'v1' })).runtime_api_version, 'v1');
    const cfg = await d.runtime('RuntimeConfig', {});
    assert.equal(cfg.linux.cgroup_driver, 'CGROUPFS');
    const status = await d.runtime('Status', {});
    for (const c of status.status.conditions) assert.equal(c.status, true, `${c.type}: ${c.reason} ${c.message}`);
    await d.runtime('UpdateRuntimeConfig', { runtime_config: { network_config: { pod_cidr: String(d.config.cni_default_subnet) } } });

    // Image: present (preloaded), ImageStatus as the kubelet asks before pulling.
    const image = { image: 'busybox:e2e' };
    const ist = await d.image('ImageStatus', { image });
    assert.ok(ist.image?.id, 'the preloaded image is known');

    // Pod + two containers: a server and a client that reaches it over localhost.
    const logDir = path.join(dir, 'pods', 'e2e');
    fs.mkdirSync(logDir, { recursive: true });
    const podConfig = {
      metadata: { name: `e2e-${handler}`, uid: `uid-e2e-${handler}`, namespace: 'default', attempt: 0 },
      hostname: `e2e-${handler}`,
      log_directory: logDir,
      labels: { app: 'e2e' },
      linux: { security_context: { namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } } },
    };
    const { pod_sandbox_id: podId } = await d.runtime('RunPodSandbox', { config: podConfig, runtime_handler: handler });
    const pst = await d.runtime('PodSandboxStatus', { pod_sandbox_id: podId });
    assert.equal(pst.status.state, 'SANDBOX_READY');
    assert.match(pst.status.network.ip, /^\d+\.\d+\.\d+\.\d+$/);

    const mk = async (name: string, command: string[]) =>
      (
        await d.runtime('CreateContainer', {
          pod_sandbox_id: podId,
          config: { metadata: { name, attempt: 0 }, image, command, log_path: `${name}/0.log`, labels: { c: name } },
          sandbox_config: podConfig,
        })
      ).container_id;
    const server = await mk('server', ['sh', '-c', 'echo serving; while true; do echo pong | nc -l -p 7070; done']);
    await d.runtime('StartContainer', { container_id: server });
    await waitState(d, server, 'CONTAINER_RUNNING');
    const client = await mk('client', ['sh', '-c', 'for i in $(seq 1 50); do nc 127.0.0.1 7070 </dev/null && exit 0; sleep 0.2; done; exit 9']);
    await d.runtime('StartContainer', { container_id: client });
    const done = await waitState(d, client, 'CONTAINER_EXITED');
    assert.equal(Number(done.exit_code), 0);
    assert.equal(done.reason, 'Completed');

    // Logs in the CRI format at <log_directory>/<log_path>.
    const log = fs.readFileSync(path.join(logDir, 'client/0.log'), 'utf8');
    assert.match(log, /^\S+ stdout F pong$/m);

    // A liveness probe as the kubelet runs it.
    const probe = await d.runtime('ExecSync', { container_id: server, cmd: ['sh', '-c', 'echo alive; exit 0'], timeout: 10 });
    assert.equal(probe.exit_code, 0);
    assert.equal(Buffer.from(probe.stdout).toString(), 'alive\n');

    // The listing the kubelet's PLEG relies on.
    const list = await d.runtime('ListContainers', { filter: { pod_sandbox_id: podId } });
    assert.deepEqual(list.containers.map((c: { id: string }) => c.id).sort(), [server, client].sort());

    // Teardown in the kubelet's order.
    await d.runtime('StopContainer', { container_id: server, timeout: 2 });
    await d.runtime('RemoveContainer', { container_id: server });
    await d.runtime('RemoveContainer', { container_id: client });
    await d.runtime('StopPodSandbox', { pod_sandbox_id: podId });
    await d.runtime('RemovePodSandbox', { pod_sandbox_id: podId });
    assert.equal((await d.runtime('ListPodSandbox', {})).items.length, 0);
    assert.equal((await d.runtime('ListContainers', {})).containers.length, 0);
    assert.equal(fs.readdirSync(path.join(d.stateDir, 'netns')).length, 0, 'no pinned netns left');
  });
}
