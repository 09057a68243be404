// A web server on port 80 runs in a pod and port-forward reaches it, on both handlers
// (issue 10 item 6: under runsc a root process could not bind a port below 1024,
// "bind: Permission denied"). Every pod netns allows unprivileged ports from 0, as
// Docker and containerd 2 set it, so a non-root process binds port 81 as well.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeContainerEnv, type ContainerEnv } from '../container/container-env.js';
import { runGoClient } from '../streaming/go-client.js';

const HTTP_GET = 'GET /index.html HTTP/1.0\r\n\r\n';

/** Port-forwards to `port` of `pod` until the answer holds `text` (the server may still be starting). */
async function fetchThroughPortForward(env: ContainerEnv, pod: string, port: number, text: string, timeoutMs = 60_000): Promise<string> {
  const end = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const { url } = await env.d.runtime('PortForward', { pod_sandbox_id: pod, port: [port] });
    const r = await runGoClient({ mode: 'portforward', url, protocols: 'portforward.k8s.io', port, payload: HTTP_GET });
    last = JSON.stringify(r.forwards);
    const data = r.forwards?.[0]?.data ?? '';
    if (data.includes(text)) return data;
    if (Date.now() > end) throw new Error(`port ${port} of pod ${pod} did not answer ${JSON.stringify(text)}: ${last}`);
    await sleep(200);
  }
}

function httpd(port: number, page: string, user = ''): string[] {
  const serve = `httpd -f -v -p ${port} -h /www`;
  return [
    '/bin/sh',
    '-c',
    `mkdir -p /www && echo ${page} > /www/index.html && chmod -R a+rX /www && ${user === '' ? serve : `exec su -s /bin/sh ${user} -c "${serve}"`}`,
  ];
}

for (const handler of ['runc', 'runsc']) {
  test(`${handler}: a root web server binds port 80 in its pod and port-forward reaches it; a non-root one binds port 81`, { timeout: 300_000 }, async (t) => {
    const env = await makeContainerEnv(t);
    const pod = await env.runPod(`web-${handler}`, {}, handler);
    const root = await env.createContainer(pod, 'web80', { command: httpd(80, 'hello-from-80') });
    await env.d.runtime('StartContainer', { container_id: root }, 120_000);
    const page = await fetchThroughPortForward(env, pod, 80, 'hello-from-80');
    assert.match(page, /^HTTP\/1\.[01] 200 OK/);
    assert.equal((await env.status(root)).state, 'CONTAINER_RUNNING');

    const nobody = await env.createContainer(pod, 'web81', { command: httpd(81, 'hello-from-81', 'nobody') });
    await env.d.runtime('StartContainer', { container_id: nobody }, 120_000);
    await fetchThroughPortForward(env, pod, 81, 'hello-from-81');
    const log = fs.readFileSync((await env.status(nobody)).log_path, 'utf8');
    assert.doesNotMatch(log, /Permission denied/);
  });
}
