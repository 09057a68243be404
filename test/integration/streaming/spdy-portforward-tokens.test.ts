// portforward.k8s.io over SPDY (Go spdystream peer) and the token rules of the server.
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { runGoClient } from './go-client.js';
import { startEchoServer, startServer, waitFor } from './harness.js';

test('port-forward over SPDY carries concurrent connections to a TCP server', async (t) => {
  const { server } = await startServer(t);
  const port = await startEchoServer(t, 'pod');
  const r = await runGoClient({
    mode: 'portforward',
    url: server.getPortForwardUrl({ podSandboxId: 'pod1', ports: [] }),
    protocols: 'portforward.k8s.io',
    port,
    requests: 5,
    payload: 'request %d',
  });
  assert.equal(r.protocol, 'portforward.k8s.io');
  assert.deepEqual(
    r.forwards,
    Array.from({ length: 5 }, (_, i) => ({ data: `pod:request ${i}`, error: '' })),
  );
  await waitFor('the session to end', () => server.activeSessions === 0);
});

test('port-forward to a closed port reports on the error stream', async (t) => {
  const { server } = await startServer(t);
  const closed = await new Promise<number>((resolve) => {
    const s = http.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  const r = await runGoClient({
    mode: 'portforward',
    url: server.getPortForwardUrl({ podSandboxId: 'pod1', ports: [] }),
    protocols: 'portforward.k8s.io',
    port: closed,
    payload: 'hello',
  });
  assert.equal(r.forwards![0].data, '');
  assert.match(r.forwards![0].error, new RegExp(`error forwarding port ${closed} to pod pod1: dialing 127.0.0.1:${closed}: .*ECONNREFUSED`));
});

test('port-forward refuses port 0 and ports the request did not name', async (t) => {
  const { server, backend } = await startServer(t);
  const port = await startEchoServer(t, 'x');
  const zero = await runGoClient({
    mode: 'portforward',
    url: server.getPortForwardUrl({ podSandboxId: 'pod1', ports: [] }),
    protocols: 'portforward.k8s.io',
    port: 0,
  });
  assert.match(zero.forwards![0].error, /invalid port "0"/);
  const other = await runGoClient({
    mode: 'portforward',
    url: server.getPortForwardUrl({ podSandboxId: 'pod1', ports: [port + 1 > 65535 ? 1 : port + 1] }),
    protocols: 'portforward.k8s.io',
    port,
  });
  assert.match(other.forwards![0].error, /was not requested/);
  assert.equal(backend.portForwardCount, 0);
});

test('PortForward requests with port 0 or above 65535 are rejected before a URL exists', async (t) => {
  const { server } = await startServer(t);
  assert.throws(() => server.getPortForwardUrl({ podSandboxId: 'p', ports: [0] }), { name: 'InvalidArgumentError', message: /port 0/ });
  assert.throws(() => server.getPortForwardUrl({ podSandboxId: 'p', ports: [65536] }), { name: 'InvalidArgumentError' });
  assert.throws(() => server.getExecUrl({ containerId: 'c', cmd: [], tty: false, stdin: false, stdout: true, stderr: false }), {
    name: 'InvalidArgumentError',
    message: /cmd must not be empty/,
  });
});

const echo = { containerId: 'host', cmd: ['echo', 'ran'], tty: false, stdin: false, stdout: true, stderr: true };

test('a token works once: the second use gets 404 and runs nothing', async (t) => {
  const { server, backend } = await startServer(t);
  const url = server.getExecUrl(echo);
  const first = await runGoClient({ url });
  assert.equal(first.stdout, 'ran\n');
  const second = await runGoClient({ url });
  assert.equal(second.httpStatus, 404);
  assert.equal(backend.execCount, 1);
});

test('a forged token and a token used on the wrong path get 404', async (t) => {
  const { server, backend } = await startServer(t);
  const forged = await runGoClient({ url: `${server.baseUrl}/exec/${'A'.repeat(32)}` });
  assert.equal(forged.httpStatus, 404);
  const execUrl = server.getExecUrl(echo);
  const wrongPath = await runGoClient({ url: execUrl.replace('/exec/', '/attach/') });
  assert.equal(wrongPath.httpStatus, 404);
  // The misused token is spent too.
  assert.equal((await runGoClient({ url: execUrl })).httpStatus, 404);
  assert.equal(backend.execCount, 0);
});

test('an expired token gets 404 and runs nothing', async (t) => {
  let now = 1_000_000;
  const { server, backend } = await startServer(t, { now: () => now });
  const url = server.getExecUrl(echo);
  now += 60_001;
  const r = await runGoClient({ url });
  assert.equal(r.httpStatus, 404);
  assert.equal(backend.execCount, 0);
});

test('a plain GET without upgrade headers gets 400, a bad token 404', async (t) => {
  const { server } = await startServer(t);
  const get = (url: string) => new Promise<number>((resolve, reject) => http.get(url, (res) => (res.resume(), resolve(res.statusCode!))).on('error', reject));
  assert.equal(await get(server.getExecUrl(echo)), 400);
  assert.equal(await get(`${server.baseUrl}/exec/nope`), 404);
});
