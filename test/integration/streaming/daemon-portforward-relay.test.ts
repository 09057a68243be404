// PortForward through the relay (issue 6): the host's busybox, bound read-only into the
// infra container, runs `nc 127.0.0.1 <port>` through the runtime's exec and carries
// the connection on its stdio. Forced on with `port_forward_relay: true` for runc and
// for runsc (whose hostinet mode these machines need; the relay is what its netstack
// mode would use). Clients: the Go spdystream peer and `ws`.
import { status } from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { WebSocket } from 'ws';
import { failure, makeContainerEnv, waitFor } from '../container/container-env.js';
import { runGoClient } from './go-client.js';

const RELAY_BUSYBOX = '/dev/.sandlot/busybox';

function handler(type: 'oci' | 'runsc', path: string): Record<string, unknown> {
  return { type, path, args: [], network: 'auto', overlay: '', port_forward_relay: true };
}

async function wsPortForward(url: string, port: number, payload: string): Promise<{ data: string; errors: string }> {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}?port=${port}`, ['v5.channel.k8s.io']);
  const chans = new Map<number, Buffer[]>();
  ws.on('message', (raw: Buffer) => {
    if (!chans.has(raw[0])) chans.set(raw[0], []);
    chans.get(raw[0])!.push(raw.subarray(1));
  });
  const closed = new Promise<void>((resolve) => ws.on('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  await waitFor('the port prefix', () => chans.has(0));
  ws.send(Buffer.concat([Buffer.from([0]), Buffer.from(payload)]));
  ws.send(Buffer.from([255, 0])); // v5 close signal: done writing on channel 0
  await closed;
  return {
    data: Buffer.concat((chans.get(0) ?? []).slice(1)).toString(),
    errors: Buffer.concat((chans.get(1) ?? []).slice(1)).toString(),
  };
}

test('port-forward through the in-sandbox relay under runc and runsc', { timeout: 600_000 }, async (t) => {
  const env = await makeContainerEnv(t, { config: { runtimes: { runc: handler('oci', 'runc'), runsc: handler('runsc', 'runsc') } } });

  await t.test('runc: busybox httpd in a container, over SPDY and WebSocket', async () => {
    const podId = await env.runPod('relay-runc');
    const ctr = await env.createContainer(podId, 'httpd', {
      command: ['/bin/sh', '-c', 'mkdir -p /tmp/www && echo hello-relay > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www'],
    });
    await env.d.runtime('StartContainer', { container_id: ctr }, 60_000);
    await env.waitState(ctr, 'CONTAINER_RUNNING');
    const get = 'GET /index.html HTTP/1.0\r\n\r\n';
    let r: Awaited<ReturnType<typeof runGoClient>> | undefined;
    await waitFor('httpd answers through the relay', async () => {
      const { url } = await env.d.runtime('PortForward', { pod_sandbox_id: podId, port: [8080] });
      r = await runGoClient({ mode: 'portforward', url: url, protocols: 'portforward.k8s.io', port: 8080, requests: 2, payload: get });
      return r.forwards!.every((f) => f.data.includes('hello-relay'));
    });
    assert.match(r!.forwards![0].data, /^HTTP\/1\.[01] 200 OK/);
    assert.ok(env.d.stderr.includes('port-forward through the relay'), 'the relay, not the netns dial, carried it');

    const { url } = await env.d.runtime('PortForward', { pod_sandbox_id: podId, port: [8080] });
    const w = await wsPortForward(url, 8080, get);
    assert.match(w.data, /hello-relay/);
    assert.equal(w.errors, '');

    // Nothing listens on 8081: the relay's error reaches the client's error stream.
    const { url: u2 } = await env.d.runtime('PortForward', { pod_sandbox_id: podId, port: [8081] });
    const bad = await runGoClient({ mode: 'portforward', url: u2, protocols: 'portforward.k8s.io', port: 8081, payload: 'x' });
    assert.match(bad.forwards![0].error, /relay.*(refused|can't connect|exited)/i);
  });

  await t.test('runsc: an echo server inside the sandbox, with half-close through the relay', async (t) => {
    const podId = await env.runPod('relay-runsc', {}, 'runsc');
    // The server runs inside the sandbox from the relay's own busybox (the pod has no
    // app container here; runsc subcontainers are another engineer's part).
    // In the foreground: the Debian runsc's `exec --detach` is broken. Killing this
    // runsc exec leaves the server in the sandbox, which the pod's removal ends.
    const root = `${env.d.stateDir}/runtimes/runsc`;
    const server = spawn('runsc', ['--root', root, '--network=host', 'exec', podId, RELAY_BUSYBOX, 'nc', '-ll', '-p', '9090', '-e', RELAY_BUSYBOX, 'cat'], {
      stdio: 'ignore',
    });
    t.after(() => {
      server.kill('SIGKILL');
    });
    let r: Awaited<ReturnType<typeof runGoClient>> | undefined;
    await waitFor('the echo server answers through the relay', async () => {
      const { url } = await env.d.runtime('PortForward', { pod_sandbox_id: podId, port: [9090] });
      r = await runGoClient({ mode: 'portforward', url: url, protocols: 'portforward.k8s.io', port: 9090, requests: 3, payload: 'hello %d' });
      return r.forwards!.every((f, i) => f.data === `hello ${i}`);
    });
    assert.deepEqual(
      r!.forwards,
      [0, 1, 2].map((i) => ({ data: `hello ${i}`, error: '' })),
    );
  });

  await t.test('the relay of a stopped pod is FAILED_PRECONDITION', async () => {
    const podId = await env.runPod('relay-stopped', {}, 'runsc');
    await env.d.runtime('StopPodSandbox', { pod_sandbox_id: podId }, 60_000);
    const f = await failure(env.d.runtime('PortForward', { pod_sandbox_id: podId, port: [80] }));
    assert.equal(f.code, status.FAILED_PRECONDITION);
  });
});
