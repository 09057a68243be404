// The registry client against servers that misbehave on the wire: no answer (request
// timeout, retried with backoff), a blob that stalls (idle timeout), 403 and 500s.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { serveLoopback } from '../../helpers/http-server.js';
import { PermissionDeniedError, UnavailableError } from '../../../src/errors.js';
import { RegistryClient } from '../../../src/image/registry-client.js';
import { parseReference } from '../../../src/image/reference.js';

const log = pino({ level: 'silent' });
const DIGEST = `sha256:${'a'.repeat(64)}`;

function client(attempts: number): RegistryClient {
  return new RegistryClient({
    registryMirrors: {},
    insecureRegistries: [],
    log,
    requestTimeoutMs: 300,
    blobIdleTimeoutMs: 300,
    retryAttempts: attempts,
    retryBaseDelayMs: 10,
  });
}

test('a registry that never answers is UnavailableError after the timeout, retried attempts times', async (t) => {
  const { host, hits } = await serveLoopback(t, () => undefined); // accepts, never answers
  const ref = parseReference(`${host}/slow/img:v1`);
  await assert.rejects(client(3).getManifest(ref, 'v1', undefined), (e: unknown) => {
    assert.ok(e instanceof UnavailableError, String(e));
    assert.match((e as Error).message, new RegExp(`fetching manifest "${host}/slow/img:v1" from registry "${host}": no answer within 300 ms`));
    return true;
  });
  assert.equal(hits.length, 3);
});

test('a blob that stops sending fails its stream after the idle timeout', async (t) => {
  const { host } = await serveLoopback(t, (_req, res) => {
    res.writeHead(200, { 'content-length': '1000' });
    res.write(Buffer.alloc(10)); // then silence
  });
  const body = await client(1).openBlob(parseReference(`${host}/stall/img:v1`), DIGEST, undefined);
  await assert.rejects(
    (async () => {
      for await (const _ of body) void _;
    })(),
    (e: unknown) => e instanceof UnavailableError && /no data for 300 ms/.test((e as Error).message),
  );
});

test('a blob that keeps arriving may take longer than the request timeout', async (t) => {
  const CHUNKS = 8;
  const { host } = await serveLoopback(t, (_req, res) => {
    res.writeHead(200, { 'content-length': String(CHUNKS * 10) });
    let sent = 0;
    const tick = setInterval(() => {
      res.write(Buffer.alloc(10, sent));
      if (++sent === CHUNKS) {
        clearInterval(tick);
        res.end();
      }
    }, 100); // 8 × 100 ms in all: more than the 300 ms request timeout, never idle for 300 ms
  });
  const body = await client(1).openBlob(parseReference(`${host}/trickle/img:v1`), DIGEST, undefined);
  let n = 0;
  for await (const chunk of body) n += (chunk as Buffer).length;
  assert.equal(n, CHUNKS * 10);
});

test('403 is PermissionDeniedError naming the image; 500s are retried, then UnavailableError', async (t) => {
  const forbidden = await serveLoopback(t, (_req, res) =>
    res.writeHead(403).end('{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}'),
  );
  await assert.rejects(client(3).getManifest(parseReference(`${forbidden.host}/secret/img:v1`), 'v1', undefined), (e: unknown) => {
    assert.ok(e instanceof PermissionDeniedError, String(e));
    assert.match((e as Error).message, /403 forbidden: DENIED requested access/);
    assert.ok((e as Error).message.includes(`access to "${forbidden.host}/secret/img:v1" denied`));
    return true;
  });
  assert.equal(forbidden.hits.length, 1, '403 is not retried');

  const broken = await serveLoopback(t, (_req, res) => res.writeHead(500).end());
  await assert.rejects(
    client(3).getManifest(parseReference(`${broken.host}/b/img:v1`), 'v1', undefined),
    (e: unknown) => e instanceof UnavailableError && /500/.test((e as Error).message),
  );
  assert.equal(broken.hits.length, 3);
});
