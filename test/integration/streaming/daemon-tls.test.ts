// The streaming server behind TLS with client certificates (issue 11 item 10): a URL is a
// bearer token, so an operator exposing the server makes every client prove itself with
// a certificate from their CA (the kubelet's streaming proxy can present one). With the
// certificate an exec over the URL runs; without one, or with one from another CA, the
// handshake fails and the token is not even read. Listening beyond loopback logs a
// warning saying what guards the server. Runs a runc and a runsc pod on one daemon.
import { execFileSync } from 'node:child_process';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { WebSocket, type ClientOptions } from 'ws';
import { makeContainerEnv, waitFor, type ContainerEnv } from '../container/container-env.js';

interface Pki {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A client certificate signed by a CA the daemon does not trust. */
  strangerCert: string;
  strangerKey: string;
}

function makePki(): Pki {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-pki-'));
  const f = (n: string) => path.join(dir, n);
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const ca = (name: string) => {
    ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${name}`, '-keyout', f(`${name}.key`), '-out', f(`${name}.pem`));
  };
  const leaf = (name: string, caName: string, ext: string) => {
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${name}`, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`));
    fs.writeFileSync(f(`${name}.ext`), ext);
    ssl(
      'x509',
      '-req',
      '-in',
      f(`${name}.csr`),
      '-CA',
      f(`${caName}.pem`),
      '-CAkey',
      f(`${caName}.key`),
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      f(`${name}.ext`),
      '-out',
      f(`${name}.pem`),
    );
  };
  ca('test-ca');
  ca('stranger-ca');
  leaf('server', 'test-ca', 'subjectAltName=IP:127.0.0.1,IP:0.0.0.0\nextendedKeyUsage=serverAuth\n');
  leaf('kubelet', 'test-ca', 'extendedKeyUsage=clientAuth\n');
  leaf('stranger', 'stranger-ca', 'extendedKeyUsage=clientAuth\n');
  return {
    dir,
    ca: f('test-ca.pem'),
    serverCert: f('server.pem'),
    serverKey: f('server.key'),
    clientCert: f('kubelet.pem'),
    clientKey: f('kubelet.key'),
    strangerCert: f('stranger.pem'),
    strangerKey: f('stranger.key'),
  };
}

/** Runs an exec over WebSocket v4; resolves with stdout, or rejects with the connection error. */
function wsExec(url: string, opts: ClientOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url.replace(/^http/, 'ws'), ['v4.channel.k8s.io'], opts);
    const out: Buffer[] = [];
    let opened = false;
    ws.on('open', () => (opened = true));
    ws.on('message', (raw: Buffer) => {
      if (raw[0] === 1) out.push(raw.subarray(1));
    });
    ws.on('error', (e) => {
      if (!opened) reject(e);
    });
    ws.on('close', () => (opened ? resolve(Buffer.concat(out).toString()) : reject(new Error('closed before opening'))));
  });
}

async function execUrl(env: ContainerEnv, id: string, text: string): Promise<string> {
  const { url } = await env.d.runtime('Exec', { container_id: id, cmd: ['echo', text], stdout: true });
  return url;
}

test('streaming over TLS with client certificates: exec works with the certificate and is refused without it', { timeout: 600_000 }, async (t) => {
  const pki = makePki();
  t.after(() => fs.rmSync(pki.dir, { recursive: true, force: true }));
  const env = await makeContainerEnv(t, {
    config: {
      // Beyond loopback on purpose: the daemon must warn (the test dials 127.0.0.1 only).
      streaming_address: '0.0.0.0:0',
      streaming_tls_cert_file: pki.serverCert,
      streaming_tls_key_file: pki.serverKey,
      streaming_tls_client_ca_file: pki.ca,
    },
  });
  const ca = fs.readFileSync(pki.ca);
  const withCert: ClientOptions = { ca, cert: fs.readFileSync(pki.clientCert), key: fs.readFileSync(pki.clientKey) };

  await t.test('a streaming_address beyond loopback logs a warning naming the key and what guards it', () => {
    assert.match(env.d.stderr, /"key":"streaming_address","address":"0\.0\.0\.0:0".*must present a certificate signed by streaming_tls_client_ca_file/);
    assert.doesNotMatch(env.d.stderr, /"key":"metrics_address"/, 'metrics on 127.0.0.1 gets no warning');
  });

  for (const handler of ['runc', 'runsc']) {
    await t.test(`${handler}: exec URLs are https and open only with a client certificate from the configured CA`, async () => {
      const podId = await env.runPod(`tls-${handler}`, {}, handler);
      const id = await env.createContainer(podId, `tls-${handler}`, { command: ['/bin/sh', '-c', 'sleep 100000'] });
      await env.d.runtime('StartContainer', { container_id: id }, 60_000);
      await env.waitState(id, 'CONTAINER_RUNNING');

      const url = await execUrl(env, id, `hello-${handler}`);
      assert.match(url, /^https:\/\/(0\.0\.0\.0|127\.0\.0\.1):\d+\/exec\//);
      const dial = (u: string) => u.replace('https://0.0.0.0:', 'https://127.0.0.1:');
      assert.equal(await wsExec(dial(url), withCert), `hello-${handler}\n`);

      // No certificate: the handshake fails. The URL's token is never read, so a second
      // try with the certificate still runs (single use is spent only when served).
      const refused = await execUrl(env, id, 'refused');
      await assert.rejects(wsExec(dial(refused), { ca }), /certificate required|socket hang up|ECONNRESET|alert/i);
      await assert.rejects(
        wsExec(dial(refused), { ca, cert: fs.readFileSync(pki.strangerCert), key: fs.readFileSync(pki.strangerKey) }),
        /unknown ca|certificate|socket hang up|ECONNRESET|alert/i,
      );
      assert.equal(await wsExec(dial(refused), withCert), 'refused\n');
      await waitFor('the refusals logged', () => /streaming client refused at the TLS handshake/.test(env.d.stderr));
    });
  }
});
