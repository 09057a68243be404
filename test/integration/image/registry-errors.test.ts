// The registry client against servers that misbehave on the wire: no answer (request
// timeout, retried with backoff), a blob that stalls (idle timeout), 403 and 500s, a
// manifest too large to hold; and one that sends blobs and manifests to another host.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { serveLoopback } from '../../helpers/http-server.js';
import { InternalError, PermissionDeniedError, UnavailableError } from '../../../src/errors.js';
import { MANIFEST_SIZE_MAX_BYTES } from '../../../src/image/manifest.js';
import { RegistryClient } from '../../../src/image/registry-client.js';
import { parseReference } from '../../../src/image/reference.js';

const log = pino({ level: 'silent' });
const DIGEST = `sha256:${'a'.repeat(64)}`;

function client(attempts: number, requestTimeoutMs = 300): RegistryClient {
  return new RegistryClient({
    registryMirrors: {},
    insecureRegistries: [],
    log,
    requestTimeoutMs,
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

test('redirects to another host are followed; the authorization goes only to the registry it was given for', async (t) => {
  const blob = Buffer.from('layer bytes from the storage host');
  const manifest = Buffer.from('{"schemaVersion":2}');
  const seen: { url: string; authorization: string | undefined }[] = [];
  const storage = await serveLoopback(t, (req, res) => {
    seen.push({ url: req.url ?? '', authorization: req.headers.authorization });
    if (req.url === '/blob') return void res.writeHead(200, { 'content-length': String(blob.length) }).end(blob);
    res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }).end(manifest);
  });
  const registry = await serveLoopback(t, (req, res) => {
    assert.equal(req.headers.authorization, 'Bearer for-the-registry');
    // 307 for the blob, 302 then a same-origin hop for the manifest: each kind of redirect.
    if (req.url?.includes('/blobs/')) return void res.writeHead(307, { location: `http://${storage.host}/blob` }).end();
    if (req.url?.includes('/manifests/')) return void res.writeHead(302, { location: '/hop' }).end();
    res.writeHead(302, { location: `http://${storage.host}/manifest` }).end();
  });
  const ref = parseReference(`${registry.host}/moved/img:v1`);
  const creds = { registryToken: 'for-the-registry' };
  const body = await client(1).openBlob(ref, DIGEST, creds);
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  assert.ok(Buffer.concat(chunks).equals(blob));
  const m = await client(1).getManifest(ref, 'v1', creds);
  assert.ok(m.bytes.equals(manifest));
  assert.equal(m.contentType, 'application/vnd.oci.image.manifest.v1+json');
  assert.deepEqual(registry.hits, [`GET /v2/moved/img/blobs/${DIGEST}`, 'GET /v2/moved/img/manifests/v1', 'GET /hop']);
  assert.deepEqual(seen, [
    { url: '/blob', authorization: undefined },
    { url: '/manifest', authorization: undefined },
  ]);
});

test('a manifest larger than the limit fails, with or without a content-length, and is not read on', async (t) => {
  const big = Buffer.alloc(MANIFEST_SIZE_MAX_BYTES + 1, 0x20);
  const declared = await serveLoopback(t, (_req, res) => res.writeHead(200, { 'content-length': String(big.length) }).end(big));
  // Chunked: the size shows only as the bytes arrive.
  const chunked = await serveLoopback(t, (_req, res) => {
    res.writeHead(200);
    res.write(big.subarray(0, 1 << 20));
    res.end(big.subarray(1 << 20));
  });
  for (const { host } of [declared, chunked]) {
    // Time enough for 4 MiB on a busy machine: the size, not a timeout, must stop it.
    await assert.rejects(client(1, 60_000).getManifest(parseReference(`${host}/huge/img:v1`), 'v1', undefined), (e: unknown) => {
      assert.ok(e instanceof InternalError, String(e));
      assert.match(
        (e as Error).message,
        new RegExp(`fetching manifest "${host}/huge/img:v1" from registry "${host}": manifest is .*more than the ${MANIFEST_SIZE_MAX_BYTES}`),
      );
      return true;
    });
  }
});
