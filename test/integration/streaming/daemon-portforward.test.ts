// PortForward through the daemon: the URL it hands out reaches a port inside the pod's
// network namespace (S18), whatever the pod's IP, over SPDY with an independent Go
// spdystream peer. The server in the pod is busybox nc started in the pod netns.
import { status } from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startDaemon, type TestDaemon } from '../../helpers/daemon.js';
import { runGoClient } from './go-client.js';

function podConfig(name: string): Record<string, unknown> {
  return {
    metadata: { name, uid: `uid-${name}`, namespace: 'sandlot-test', attempt: 0 },
    hostname: name,
    linux: { security_context: { namespace_options: { network: 'POD', pid: 'POD', ipc: 'POD' } } },
  };
}

/** An echo server on 127.0.0.1:`port` inside the netns at `netnsPath` (busybox nc, keeps listening). */
async function echoInNetns(netnsPath: string, port: number): Promise<ChildProcess> {
  const child = spawn('nsenter', [`--net=${netnsPath}`, 'busybox', 'nc', '-ll', '-p', String(port), '-e', '/bin/cat'], {
    stdio: 'ignore',
  });
  // Wait until it listens: /proc/net/tcp{,6} of a process in that netns shows the port
  // (busybox nc listens on the IPv6 wildcard, which takes IPv4 too).
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  for (let i = 0; i < 100; i++) {
    const r = spawn('nsenter', [`--net=${netnsPath}`, 'cat', '/proc/net/tcp', '/proc/net/tcp6']);
    let out = '';
    r.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await new Promise((res) => r.on('close', res));
    if (new RegExp(`:${hex} 0+:0000 0A`).test(out)) return child;
    await sleep(50);
  }
  child.kill('SIGKILL');
  throw new Error(`echo server on port ${port} in ${netnsPath} did not start`);
}

async function runPod(d: TestDaemon, name: string): Promise<{ id: string; netns: string }> {
  const { pod_sandbox_id: id } = await d.runtime('RunPodSandbox', { config: podConfig(name), runtime_handler: 'runc' });
  const st = await d.runtime('PodSandboxStatus', { pod_sandbox_id: id, verbose: true });
  const info = JSON.parse(st.info.info) as { netnsPath?: string; paths?: unknown };
  const netns = info.netnsPath ?? `${d.stateDir}/netns/${id}`;
  return { id, netns };
}

test('PortForward reaches a port inside the pod netns over SPDY, one the host loopback does not have', { timeout: 180_000 }, async (t) => {
  const d = await startDaemon();
  const children: ChildProcess[] = [];
  t.after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await d.cleanup();
  });
  const { id, netns } = await runPod(d, 'pf');
  const port = 20000 + (process.pid % 20000);
  children.push(await echoInNetns(netns, port));
  // Proof that the dial happens in the pod's netns: the host's loopback has no such port.
  await assert.rejects(
    new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(undefined);
      });
      s.on('error', reject);
    }),
    /ECONNREFUSED/,
  );
  const { url } = await d.runtime('PortForward', { pod_sandbox_id: id, port: [port] });
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/portforward\//);
  const r = await runGoClient({ mode: 'portforward', url, protocols: 'portforward.k8s.io', port, requests: 3, payload: 'hello %d' });
  assert.deepEqual(
    r.forwards,
    [0, 1, 2].map((i) => ({ data: `hello ${i}`, error: '' })),
  );
  // The token was single-use.
  const again = await runGoClient({ mode: 'portforward', url, protocols: 'portforward.k8s.io', port, payload: 'x' });
  assert.equal(again.httpStatus, 404);
});

test('PortForward of an unknown pod is NOT_FOUND and of a stopped pod FAILED_PRECONDITION', { timeout: 180_000 }, async (t) => {
  const d = await startDaemon();
  t.after(() => d.cleanup());
  await assert.rejects(d.runtime('PortForward', { pod_sandbox_id: 'f'.repeat(64), port: [80] }), (e: { code: status }) => e.code === status.NOT_FOUND);
  await assert.rejects(
    d.runtime('PortForward', { pod_sandbox_id: '', port: [80] }),
    (e: { code: status; details: string }) => e.code === status.INVALID_ARGUMENT && /pod_sandbox_id/.test(e.details),
  );
  const { id } = await runPod(d, 'pf-stopped');
  await d.runtime('StopPodSandbox', { pod_sandbox_id: id });
  await assert.rejects(
    d.runtime('PortForward', { pod_sandbox_id: id, port: [80] }),
    (e: { code: status; details: string }) => e.code === status.FAILED_PRECONDITION && /cannot port-forward sandbox/.test(e.details),
  );
  await assert.rejects(
    d.runtime('PortForward', { pod_sandbox_id: id.slice(0, 1) === 'z' ? 'y' : 'z', port: [70000] }),
    (e: { code: status }) => e.code === status.NOT_FOUND || e.code === status.INVALID_ARGUMENT,
  );
});
