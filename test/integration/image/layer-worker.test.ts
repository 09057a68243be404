// Layers fetched and unpacked on a layer worker thread (src/image/layer-worker-pool.ts),
// every layer sent there (minLayerBytes 0): the pull gives the same results and the
// same typed errors as in the daemon's thread, a worker that dies fails only its pull,
// and a cancelled pull stops the worker's download and leaves no temp files.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Worker } from 'node:worker_threads';
import pino from 'pino';
import { serveLoopback } from '../../helpers/http-server.js';
import { defaultConfig } from '../../../src/config/defaults.js';
import { FailedPreconditionError, InternalError, InvalidArgumentError, NotFoundError, ResourceExhaustedError, UnavailableError } from '../../../src/errors.js';
import { ImageService } from '../../../src/image/image-service.js';
import { LayerWorkerPool } from '../../../src/image/layer-worker-pool.js';
import { lgetxattr } from '../../../native/index.js';
import { FIXED_MTIME, buildImage, buildLayer, busyboxLayer, hasZstdCli, sha256, type TestImage, type TestLayer } from '../../helpers/image-build.js';
import { pushImage, startRegistry, type TestRegistry } from '../../helpers/registry.js';

const log = pino({ level: 'silent' });
let reg: TestRegistry;

before(async () => {
  reg = await startRegistry();
});
after(async () => {
  await reg?.stop();
});

interface Opened {
  svc: ImageService;
  root: string;
  spawned: Worker[];
}

/** An image service whose every layer goes to a worker; with `inThread`, none does (the daemon's thread). */
async function openService(t: { after: (fn: () => Promise<void>) => void }, config: Record<string, unknown> = {}, inThread = false): Promise<Opened> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-layer-worker-'));
  const spawned: Worker[] = [];
  const layerWorkers = inThread ? false : new LayerWorkerPool({ log, minLayerBytes: 0, onSpawn: (w) => spawned.push(w) });
  const svc = await ImageService.open({ config: { ...defaultConfig(), root_dir: root, ...config }, log, registry: { retryBaseDelayMs: 10 }, layerWorkers });
  t.after(async () => {
    await svc.close();
    fs.rmSync(root, { recursive: true, force: true });
  });
  return { svc, root, spawned };
}

/** No image, no snapshot (or half-made one), no blob being ingested. */
function assertNothingLeft(svc: ImageService, root: string): void {
  assert.equal(svc.list().length, 0);
  assert.deepEqual(fs.readdirSync(path.join(root, 'images/snapshots')), []);
  assert.deepEqual(fs.readdirSync(path.join(root, 'images/content/ingest')), []);
}

/** A registry of our own: manifests and config from `img`; each layer blob request goes to `blob`. */
async function ownRegistry(
  t: { after: (fn: () => Promise<void>) => void },
  img: TestImage,
  blob: (layer: TestLayer | undefined, req: http.IncomingMessage, res: http.ServerResponse) => void,
  layers: TestLayer[],
): Promise<string> {
  const { host } = await serveLoopback(t, (req, res) => {
    const m = /^\/v2\/.+\/(manifests|blobs)\/(.+)$/.exec(req.url ?? '');
    if (!m) return void res.writeHead(404).end();
    if (m[1] === 'manifests') return void res.writeHead(200, { 'content-type': img.manifest.mediaType }).end(img.manifest.data);
    if (m[2] === img.config.digest) return void res.writeHead(200).end(img.config.data);
    blob(
      layers.find((l) => l.digest === m[2]),
      req,
      res,
    );
  });
  return host;
}

async function until(what: string, cond: () => boolean, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`waiting for ${what}: not within ${ms} ms`);
    await sleep(20);
  }
}

test('a multi-layer image pulls through a layer worker, byte for byte, and a token-auth registry works there too', async (t) => {
  const data = crypto.randomBytes(1 << 20);
  const img = buildImage([await busyboxLayer(), await buildLayer([{ type: 'file', name: 'data/one.bin', data }])]);
  await pushImage(reg, 'worker/multi', 'v1', img);
  const { svc, root, spawned } = await openService(t);
  const rec = await svc.pull(`${reg.host}/worker/multi:v1`);
  assert.equal(rec.id, img.config.digest);
  assert.ok(spawned.length >= 1, 'a layer worker ran the layers');
  const top = path.join(root, 'images/snapshots', rec.layers[1].chainId.slice(7), 'fs/data/one.bin');
  assert.ok(fs.readFileSync(top).equals(data));
  for (const l of rec.layers) assert.ok(fs.existsSync(path.join(root, 'images/content/sha256', l.digest.slice(7))));

  const tokenReg = await startRegistry({ auth: 'token', username: 'alice', password: 'wonder' });
  t.after(() => tokenReg.stop());
  await pushImage(tokenReg, 'private/img', 'v1', img);
  const other = await openService(t);
  const auth = { auth: Buffer.from('alice:wonder').toString('base64') };
  assert.equal((await other.svc.pull(`${tokenReg.host}/private/img:v1`, auth)).id, img.config.digest);
});

test('on a worker: a corrupt blob is a digest mismatch, a layer over its limit RESOURCE_EXHAUSTED, a missing blob NotFound; nothing left', async (t) => {
  const layer = await buildLayer([{ type: 'file', name: 'data/big.bin', data: crypto.randomBytes(256 << 10) }]);
  const img = buildImage([layer]);
  const corrupt = Buffer.from(layer.data);
  corrupt[corrupt.length >> 1] ^= 0xff;
  const host = await ownRegistry(t, img, (_l, _req, res) => res.writeHead(200, { 'content-length': String(corrupt.length) }).end(corrupt), [layer]);
  const a = await openService(t);
  await assert.rejects(a.svc.pull(`${host}/bad/img:v1`), (e: unknown) => {
    assert.ok(e instanceof FailedPreconditionError, String(e));
    assert.match((e as Error).message, new RegExp(`blob ${layer.digest}: digest mismatch`));
    return true;
  });
  assertNothingLeft(a.svc, a.root);

  await pushImage(reg, 'worker/limit', 'v1', img);
  const b = await openService(t, { max_layer_unpacked_bytes: 64 << 10 });
  await assert.rejects(b.svc.pull(`${reg.host}/worker/limit:v1`), (e: unknown) => {
    assert.ok(e instanceof ResourceExhaustedError, String(e));
    assert.match((e as Error).message, new RegExp(`unpacking layer ${layer.digest}: unpacks to more than 65536 bytes`));
    return true;
  });
  assertNothingLeft(b.svc, b.root);

  // The worker's GET gets a 404: the layer goes back to the daemon's client, whose error it is.
  const gone = await ownRegistry(t, img, (_l, _req, res) => res.writeHead(404).end('{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}'), [layer]);
  const c = await openService(t);
  await assert.rejects(c.svc.pull(`${gone}/gone/img:v1`), (e: unknown) => {
    assert.ok(e instanceof NotFoundError, String(e));
    assert.match((e as Error).message, new RegExp(`fetching blob ${layer.digest} of "${gone}/gone/img" from registry "${gone}": 404 not found`));
    return true;
  });
  assertNothingLeft(c.svc, c.root);
});

test('a registry that goes away mid-layer is UNAVAILABLE after the retries, naming the blob; nothing left', async (t) => {
  const layer = await buildLayer([{ type: 'file', name: 'data/big.bin', data: crypto.randomBytes(512 << 10) }]);
  const img = buildImage([layer]);
  let gets = 0;
  const host = await ownRegistry(
    t,
    img,
    (_l, req, res) => {
      gets++;
      res.writeHead(200, { 'content-length': String(layer.size) });
      res.write(layer.data.subarray(0, layer.size >> 1), () => req.socket.destroy());
    },
    [layer],
  );
  const { svc, root } = await openService(t);
  await assert.rejects(svc.pull(`${host}/cut/img:v1`), (e: unknown) => {
    assert.ok(e instanceof UnavailableError, String(e));
    assert.match((e as Error).message, new RegExp(`fetching blob ${layer.digest} of "${host}/cut/img" from registry "${host}": connection lost`));
    return true;
  });
  assert.ok(gets >= 2, `the layer was tried again (${gets} GETs)`);
  assertNothingLeft(svc, root);
});

test('a layer worker that dies fails its pull with INTERNAL naming it; the daemon goes on and the next pull works', async (t) => {
  const layer = await buildLayer([{ type: 'file', name: 'data/big.bin', data: crypto.randomBytes(512 << 10) }]);
  const img = buildImage([layer]);
  const { svc, root, spawned } = await openService(t);
  let requested = false;
  const host = await ownRegistry(
    t,
    img,
    (_l, _req, res) => {
      requested = true;
      res.writeHead(200, { 'content-length': String(layer.size) });
      res.write(layer.data.subarray(0, 1024)); // then nothing until the worker is gone
    },
    [layer],
  );
  const pulling = svc.pull(`${host}/dies/img:v1`);
  pulling.catch(() => undefined);
  await until('the worker fetching the blob', () => requested && spawned.length > 0);
  await spawned[0].terminate();
  await assert.rejects(pulling, (e: unknown) => {
    assert.ok(e instanceof InternalError, String(e));
    assert.match((e as Error).message, /running layer worker: the worker died \(exit code 1\)/);
    return true;
  });
  assertNothingLeft(svc, root);

  await pushImage(reg, 'worker/after', 'v1', img);
  assert.equal((await svc.pull(`${reg.host}/worker/after:v1`)).id, img.config.digest);
  assert.equal(spawned.length, 2, 'a new worker ran the next pull');
});

test('a cancelled pull stops the worker download and leaves no temp files', async (t) => {
  const layer = await buildLayer([{ type: 'file', name: 'data/big.bin', data: crypto.randomBytes(512 << 10) }]);
  const img = buildImage([layer]);
  let closed = false;
  let requested = false;
  const host = await ownRegistry(
    t,
    img,
    (_l, req, res) => {
      requested = true;
      req.socket.once('close', () => (closed = true));
      res.writeHead(200, { 'content-length': String(layer.size) });
      res.write(layer.data.subarray(0, 1024)); // and then stalls
    },
    [layer],
  );
  const { svc, root } = await openService(t);
  const ac = new AbortController();
  const pulling = svc.pull(`${host}/cancel/img:v1`, undefined, { signal: ac.signal });
  pulling.catch(() => undefined);
  await until('the worker fetching the blob', () => requested);
  ac.abort();
  await assert.rejects(pulling, (e: unknown) => /pulling image/.test((e as Error).message));
  await until('the worker closing its connection', () => closed);
  const empty = (d: string): boolean => fs.readdirSync(path.join(root, d)).length === 0;
  await until('the failed pull cleaning up', () => empty('images/snapshots') && empty('images/content/ingest'));
  assertNothingLeft(svc, root);
});

/** Every path under `dir` with its type, mode, owner, size, times, link target, device, content hash and xattrs. */
function describeTree(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    const p = path.join(dir, rel);
    const st = fs.lstatSync(p);
    const xattrs = ['user.note', 'trusted.overlay.opaque', 'security.capability'].map((n) => `${n}=${lgetxattr(p, n)?.toString('hex') ?? '-'}`);
    const what = st.isSymbolicLink()
      ? `-> ${fs.readlinkSync(p)}`
      : st.isFile()
        ? `${sha256(fs.readFileSync(p))} nlink ${st.nlink}`
        : st.isCharacterDevice()
          ? `rdev ${st.rdev}`
          : '';
    // Entries of the layer carry its fixed mtime; implicit parents and whiteouts are made at unpack time.
    const mtime = st.mtimeMs === FIXED_MTIME.getTime() ? 'mtime from the layer' : 'mtime of the unpack';
    out.push(`${rel || '.'} mode ${st.mode.toString(8)} ${st.uid}:${st.gid} size ${st.isDirectory() ? '' : st.size} ${mtime} ${what} ${xattrs.join(' ')}`);
    if (st.isDirectory()) for (const n of fs.readdirSync(p).sort()) walk(path.join(rel, n));
  };
  walk('');
  return out;
}

test('on a worker, layers unpack as on the daemon thread: whiteouts, opaque dirs, links, devices, modes, owners, xattrs; gzip, zstd, none', async (t) => {
  const zstd = hasZstdCli();
  const base = await buildLayer([
    { type: 'dir', name: 'etc/', mode: 0o750, uid: 12, gid: 34 },
    { type: 'file', name: 'etc/passwd', data: 'root\n' },
    { type: 'file', name: 'etc/app.conf', data: 'x=1\n', mode: 0o4755, uid: 1000, gid: 1001, xattrs: { 'user.note': 'hello' } },
    { type: 'link', name: 'etc/app.hard', target: 'etc/app.conf' },
    { type: 'symlink', name: 'etc/app.link', target: '/etc/app.conf' },
    { type: 'char', name: 'dev/null', major: 1, minor: 3, mode: 0o666 },
    { type: 'fifo', name: 'run/fifo', mode: 0o600 },
    { type: 'file', name: 'var/cache/old', data: crypto.randomBytes(300_000) },
    { type: 'file', name: 'big/compressible', data: Buffer.alloc(3 << 20, 'layer ') },
  ]);
  const mid = await buildLayer(
    [
      { type: 'file', name: 'etc/.wh.passwd', data: '' },
      { type: 'file', name: 'var/cache/.wh..wh..opq', data: '' },
      { type: 'file', name: 'var/cache/new', data: 'new', mode: 0o600, uid: 7, gid: 8 },
    ],
    zstd ? 'zstd' : 'none',
  );
  const top = await buildLayer([{ type: 'file', name: 'etc/passwd', data: 'back\n' }], 'none');
  const img = buildImage([base, mid, top]);
  await pushImage(reg, 'worker/kinds', 'v1', img);
  const trees = [];
  for (const inThread of [false, true]) {
    const { svc, root, spawned } = await openService(t, {}, inThread);
    const rec = await svc.pull(`${reg.host}/worker/kinds:v1`);
    assert.equal(spawned.length > 0, !inThread);
    trees.push(rec.layers.map((l) => describeTree(path.join(root, 'images/snapshots', l.chainId.slice(7), 'fs'))));
  }
  assert.deepEqual(trees[0], trees[1]);
  // And they are what the layers say (not merely the same on both).
  const [b, m] = trees[0];
  assert.ok(
    b.some(
      (l) => l.startsWith('etc/app.conf mode 104755 1000:1001 ') && l.includes('nlink 2') && l.includes(`user.note=${Buffer.from('hello').toString('hex')}`),
    ),
  );
  assert.ok(
    m.some((l) => l.startsWith('etc/passwd mode 20000 0:0 ') && l.includes('rdev 0')),
    'the whiteout is a 0/0 char device',
  );
  assert.ok(
    m.some((l) => l.startsWith('var/cache mode ') && l.includes('trusted.overlay.opaque=79')),
    'the opaque dir is marked',
  );
  if (!zstd) t.diagnostic('zstd CLI missing: the middle layer was uncompressed instead of zstd');
});

/** `layer` with its blob replaced by `data` (digest and size to match, so the download verifies). */
function withBlob(layer: TestLayer, data: Buffer, diffId = layer.diffId): TestLayer {
  return { ...layer, data, digest: sha256(data), size: data.length, diffId };
}

test('on a worker, a corrupt or cut gzip, a wrong diff ID and a gzip bomb over the limit fail as on the daemon thread; nothing left', async (t) => {
  const layer = await buildLayer([{ type: 'file', name: 'data/big.bin', data: crypto.randomBytes(600 << 10) }]);
  const corrupt = Buffer.from(layer.data);
  corrupt.fill(0x5a, corrupt.length >> 1, (corrupt.length >> 1) + 64);
  const bomb = await buildLayer([{ type: 'file', name: 'zeros', data: Buffer.alloc(32 << 20) }]);
  const cases: { name: string; layer: TestLayer; config?: Record<string, unknown>; err: new (...a: never[]) => Error; why: RegExp }[] = [
    { name: 'corrupt', layer: withBlob(layer, corrupt), err: InvalidArgumentError, why: /not valid compressed data/ },
    {
      name: 'cut',
      layer: withBlob(layer, layer.data.subarray(0, layer.size - 200)),
      err: InvalidArgumentError,
      why: /not valid compressed data: unexpected end of file/,
    },
    {
      name: 'diffid',
      layer: { ...layer, diffId: sha256(Buffer.from('another tar')) },
      err: FailedPreconditionError,
      why: /uncompressed layer hashes to sha256:/,
    },
    { name: 'bomb', layer: bomb, config: { max_layer_unpacked_bytes: 1 << 20 }, err: ResourceExhaustedError, why: /unpacks to more than 1048576 bytes/ },
  ];
  for (const c of cases) {
    const img = buildImage([c.layer]);
    await pushImage(reg, `worker/bad-${c.name}`, 'v1', img);
    const messages: string[] = [];
    for (const inThread of [false, true]) {
      const { svc, root, spawned } = await openService(t, c.config, inThread);
      await assert.rejects(svc.pull(`${reg.host}/worker/bad-${c.name}:v1`), (e: unknown) => {
        assert.ok(e instanceof c.err, `${c.name} (${inThread ? 'daemon thread' : 'worker'}): ${String(e)}`);
        assert.match(e.message, c.why);
        messages.push(e.message);
        return true;
      });
      assert.equal(spawned.length > 0, !inThread);
      assertNothingLeft(svc, root);
    }
    assert.equal(messages[0], messages[1], `${c.name}: the same message from the worker and the daemon thread`);
  }
});
