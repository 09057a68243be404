// Pulls from a real Debian docker-registry on 127.0.0.1 (and, for content a real
// registry refuses to serve, a small lying server of our own), unpacks, mounts
// overlay rootfs, removes and garbage-collects.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { defaultConfig } from '../../../src/config/defaults.js';
import { FailedPreconditionError, InvalidArgumentError, NotFoundError, UnavailableError, type SandlotError } from '../../../src/errors.js';
import { ImageService } from '../../../src/image/image-service.js';
import { serveLoopback } from '../../helpers/http-server.js';
import { buildImage, buildIndex, buildLayer, busyboxLayer, hasZstdCli, type TestBlob, type TestImage } from '../../helpers/image-build.js';
import { pushBlob, pushImage, pushManifest, startRegistry, type TestRegistry } from '../../helpers/registry.js';

const log = pino({ level: 'silent' });
let reg: TestRegistry;

before(async () => {
  reg = await startRegistry();
});
after(async () => {
  await reg?.stop();
});

async function openService(t: { after: (fn: () => Promise<void> | void) => void }, root?: string): Promise<{ svc: ImageService; root: string }> {
  const dir = root ?? fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-images-'));
  const svc = await ImageService.open({ config: { ...defaultConfig(), root_dir: dir }, log, registry: { retryBaseDelayMs: 10 } });
  // One hook, in order: unmount every rootfs, close, delete.
  t.after(async () => {
    const containers = path.join(dir, 'containers');
    for (const id of fs.existsSync(containers) ? fs.readdirSync(containers) : []) await svc.removeRootfs(id);
    await svc.close();
    if (!root) fs.rmSync(dir, { recursive: true, force: true });
  });
  return { svc, root: dir };
}

function storeEntries(root: string): { blobs: string[]; snapshots: string[] } {
  return {
    blobs: fs.readdirSync(path.join(root, 'images/content/sha256')),
    snapshots: fs.readdirSync(path.join(root, 'images/snapshots')),
  };
}

test('a single-layer busybox image pulls, unpacks byte for byte, mounts, and is collected on removal', async (t) => {
  const layer = await busyboxLayer();
  const img = buildImage([layer], { config: { Cmd: ['/bin/sh'], User: '1000:1000', Env: ['PATH=/bin'] } });
  await pushImage(reg, 'library/bb', 'v1', img);
  const { svc, root } = await openService(t);

  const rec = await svc.pull(`${reg.host}/library/bb:v1`);
  assert.equal(rec.id, img.config.digest);
  assert.deepEqual(rec.repoTags, [`${reg.host}/library/bb:v1`]);
  assert.deepEqual(rec.repoDigests, [`${reg.host}/library/bb@${img.manifest.digest}`]);
  assert.equal(rec.size, img.config.size + layer.size);
  assert.equal(svc.status(rec.id)?.id, rec.id);
  assert.equal(svc.status(`${reg.host}/library/bb@${img.manifest.digest}`)?.id, rec.id);
  assert.equal(svc.list().length, 1);

  const fsDir = path.join(root, 'images/snapshots', rec.layers[0].chainId.slice(7), 'fs');
  assert.deepEqual(fs.readFileSync(path.join(fsDir, 'bin/busybox')), fs.readFileSync('/bin/busybox'));
  assert.equal(fs.statSync(path.join(fsDir, 'bin/busybox')).mode & 0o777, 0o755);
  assert.equal(fs.readlinkSync(path.join(fsDir, 'bin/sh')), 'busybox');
  assert.equal(fs.readFileSync(path.join(fsDir, 'etc/passwd'), 'utf8'), 'root:x:0:0:root:/root:/bin/sh\n');
  assert.deepEqual(svc.resolve('127.0.0.1:' + reg.host.split(':')[1] + '/library/bb:v1').config.User, '1000:1000');

  const rootfs = await svc.prepareRootfs(rec.id, 'ctr-1');
  fs.writeFileSync(path.join(rootfs.path, 'etc/written'), 'upper');
  assert.deepEqual(fs.readFileSync(path.join(rootfs.path, 'bin/busybox')), fs.readFileSync('/bin/busybox'));
  assert.ok(!fs.existsSync(path.join(fsDir, 'etc/written')), 'writes land in the upper dir, not the layer');

  // An image a container uses is not removed (FAILED_PRECONDITION naming it); once
  // the container's rootfs is gone, it is, and its layers are collected.
  await assert.rejects(svc.remove(`${reg.host}/library/bb:v1`), (e: unknown) => {
    assert.ok(e instanceof FailedPreconditionError, String(e));
    assert.match(e.message, /in use by container "ctr-1"/);
    return true;
  });
  assert.equal(svc.status(rec.id)?.id, rec.id);
  await svc.removeRootfs('ctr-1');
  await svc.removeRootfs('ctr-1'); // idempotent
  assert.ok(fs.existsSync(fsDir), 'the image still holds its layer');
  assert.deepEqual(await svc.remove(`${reg.host}/library/bb:v1`), { untagged: [`${reg.host}/library/bb:v1`], deleted: rec.id });
  assert.equal(svc.status(rec.id), undefined);
  assert.ok(!fs.existsSync(path.join(root, 'containers/ctr-1')));
  assert.deepEqual(storeEntries(root), { blobs: [], snapshots: [] });
  await svc.remove(rec.id); // removing a missing image is not an error

  const usage = await svc.fsInfo();
  assert.equal(usage.mountpoint, path.join(root, 'images'));
  assert.ok(usage.inodesUsed > 0);
});

test('multi-layer images apply whiteouts and opaque dirs in the overlay (gzip, zstd, uncompressed layers)', async (t) => {
  const zstd = hasZstdCli();
  const base = await buildLayer([
    { type: 'file', name: 'etc/passwd', data: 'root\n' },
    { type: 'file', name: 'etc/keep', data: 'keep\n' },
    { type: 'file', name: 'var/cache/old1', data: '1' },
    { type: 'file', name: 'var/cache/old2', data: '2' },
  ]);
  const mid = await buildLayer(
    [
      { type: 'file', name: 'etc/.wh.passwd', data: '' },
      { type: 'file', name: 'var/cache/.wh..wh..opq', data: '' },
      { type: 'file', name: 'var/cache/new', data: 'new' },
    ],
    zstd ? 'zstd' : 'none',
  );
  const top = await buildLayer([{ type: 'file', name: 'etc/keep', data: 'changed\n' }], 'none');
  const img = buildImage([base, mid, top]);
  await pushImage(reg, 'multi/layer', 'latest', img);
  const { svc } = await openService(t);
  const rec = await svc.pull(`${reg.host}/multi/layer`);
  assert.equal(rec.layers.length, 3);
  const rootfs = await svc.prepareRootfs(rec.id, 'ctr-multi');
  assert.ok(!fs.existsSync(path.join(rootfs.path, 'etc/passwd')), 'whited-out file is hidden');
  assert.equal(fs.readFileSync(path.join(rootfs.path, 'etc/keep'), 'utf8'), 'changed\n');
  assert.deepEqual(fs.readdirSync(path.join(rootfs.path, 'var/cache')), ['new'], 'opaque dir hides the lower contents');
  if (!zstd) t.diagnostic('zstd CLI missing: the middle layer was uncompressed instead of zstd');
});

test('an index with two platforms pulls the host one', async (t) => {
  const amd = buildImage([await buildLayer([{ type: 'file', name: 'arch', data: 'amd64' }])], { architecture: 'amd64' });
  const arm = buildImage([await buildLayer([{ type: 'file', name: 'arch', data: 'arm64' }])], { architecture: 'arm64' });
  for (const i of [amd, arm]) {
    for (const [d, b] of i.blobs) await pushBlob(reg, 'multi/arch', d, b);
    await pushManifest(reg, 'multi/arch', i.manifest.digest, i.manifest);
  }
  const index = buildIndex([
    { image: arm, architecture: 'arm64' },
    { image: amd, architecture: 'amd64' },
  ]);
  await pushManifest(reg, 'multi/arch', 'v1', index);
  const { svc } = await openService(t);
  const rec = await svc.pull(`${reg.host}/multi/arch:v1`);
  assert.equal(process.arch, 'x64');
  assert.equal(rec.id, amd.config.digest);
  assert.equal(rec.manifestDigest, amd.manifest.digest);
  assert.deepEqual(rec.repoDigests, [`${reg.host}/multi/arch@${index.digest}`]);
  // By digest too, with the index digest.
  const byDigest = await svc.pull(`${reg.host}/multi/arch@${index.digest}`);
  assert.equal(byDigest.id, amd.config.digest);
});

test('concurrent pulls of one image share the work and the index survives a restart', async (t) => {
  const img = buildImage([await busyboxLayer(), await buildLayer([{ type: 'file', name: 'x', data: 'y' }])]);
  await pushImage(reg, 'shared/pull', 'v1', img);
  const { svc, root } = await openService(t);
  const ref = `${reg.host}/shared/pull:v1`;
  const [a, b] = await Promise.all([svc.pull(ref), svc.pull(ref)]);
  assert.equal(a, b, 'both callers get the same record object from one pull');
  await svc.close();
  const again = await ImageService.open({ config: { ...defaultConfig(), root_dir: root }, log });
  t.after(() => again.close());
  assert.equal(again.status(ref)?.id, img.config.digest);
  const index = JSON.parse(fs.readFileSync(path.join(root, 'images/index.json'), 'utf8')) as { version: number };
  assert.equal(index.version, 1);
});

function assertNothingRecorded(svc: ImageService, root: string): void {
  assert.equal(svc.list().length, 0);
  assert.deepEqual(storeEntries(root).snapshots, []);
  assert.deepEqual(fs.readdirSync(path.join(root, 'images/content/ingest')), []);
  assert.deepEqual(fs.readdirSync(root).sort(), ['images']);
}

test('a missing image is NotFound naming the reference; malformed references are InvalidArgument', async (t) => {
  const { svc, root } = await openService(t);
  const ref = `${reg.host}/no/such:tag`;
  await assert.rejects(svc.pull(ref), (e: unknown) => e instanceof NotFoundError && (e as Error).message.includes(ref));
  await assert.rejects(svc.pull('Not//Valid'), (e: unknown) => e instanceof InvalidArgumentError && /Not\/\/Valid/.test((e as Error).message));
  assertNothingRecorded(svc, root);
});

test('layers that try to escape fail the pull: nothing recorded, nothing written outside', async (t) => {
  const cases: [string, Parameters<typeof buildLayer>[0]][] = [
    ['dotdot', [{ type: 'file', name: '../x', data: 'evil' }]],
    ['absolute', [{ type: 'file', name: '/etc/sandlot-evil', data: 'evil' }]],
    [
      'symlink',
      [
        { type: 'symlink', name: 'a', target: '/' },
        { type: 'file', name: 'a/etc/sandlot-evil', data: 'evil' },
      ],
    ],
    ['hardlink', [{ type: 'link', name: 'pw', target: '/etc/passwd' }]],
  ];
  const { svc, root } = await openService(t);
  const passwd = fs.readFileSync('/etc/passwd');
  for (const [name, entries] of cases) {
    await pushImage(reg, `evil/${name}`, 'v1', buildImage([await buildLayer(entries)]));
    await assert.rejects(svc.pull(`${reg.host}/evil/${name}:v1`), (e: unknown) => {
      assert.ok(e instanceof InvalidArgumentError, `${name}: ${String(e)}`);
      assert.match((e as Error).message, /entry "/);
      return true;
    });
    assertNothingRecorded(svc, root);
  }
  assert.ok(!fs.existsSync('/etc/sandlot-evil'));
  assert.deepEqual(fs.readFileSync('/etc/passwd'), passwd);
});

/** A registry that serves whatever it is given, even when it is wrong. */
async function lyingRegistry(t: { after: (fn: () => Promise<void>) => void }, manifests: Map<string, TestBlob>, blobs: Map<string, Buffer>): Promise<string> {
  let failures = 1;
  const server = http.createServer((req, res) => {
    const m = /^\/v2\/[^]+\/(manifests|blobs)\/(.+)$/.exec(req.url ?? '');
    if (req.url === '/v2/') return void res.writeHead(200).end('{}');
    if (!m) return void res.writeHead(404).end();
    if (m[1] === 'manifests') {
      const doc = manifests.get(m[2]);
      if (!doc) return void res.writeHead(404).end('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}');
      return void res.writeHead(200, { 'content-type': doc.mediaType }).end(doc.data);
    }
    // The first blob request of the run fails with a 503: the client must retry.
    if (failures-- > 0) return void res.writeHead(503).end();
    const b = blobs.get(m[2]);
    if (!b) return void res.writeHead(404).end();
    res.writeHead(200).end(b);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise((r) => server.close(() => r())));
  return `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

test('a registry that goes away mid-layer (a small layer, on the daemon thread) is UNAVAILABLE after the retries, naming the blob; nothing left', async (t) => {
  const layer = await buildLayer([{ type: 'file', name: 'data/small.bin', data: crypto.randomBytes(256 << 10) }]);
  const img = buildImage([layer]);
  let gets = 0;
  const { host } = await serveLoopback(t, (req, res) => {
    const m = /^\/v2\/.+\/(manifests|blobs)\/(.+)$/.exec(req.url ?? '');
    if (!m) return void res.writeHead(404).end();
    if (m[1] === 'manifests') return void res.writeHead(200, { 'content-type': img.manifest.mediaType }).end(img.manifest.data);
    if (m[2] === img.config.digest) return void res.writeHead(200).end(img.config.data);
    gets++;
    res.writeHead(200, { 'content-length': String(layer.size) });
    res.write(layer.data.subarray(0, layer.size >> 1), () => req.socket.destroy());
  });
  const { svc, root } = await openService(t);
  await assert.rejects(svc.pull(`${host}/cut/img:v1`), (e: unknown) => {
    // A network failure the client sees, as a cut-off download on a layer worker is (layer-worker.test.ts), never INTERNAL.
    assert.ok(e instanceof UnavailableError, String(e));
    assert.match((e as Error).message, new RegExp(`fetching blob ${layer.digest} of "${host}/cut/img" from registry "${host}": connection lost`));
    return true;
  });
  assert.ok(gets >= 2, `the layer was tried again (${gets} GETs)`);
  assertNothingRecorded(svc, root);
});

test('digest mismatch, truncated blobs and manifests lying about sizes fail the pull', async (t) => {
  const layer = await busyboxLayer();
  const good = buildImage([layer]);
  const lying = buildImage([layer], { layerSizes: [layer.size - 100] });
  const other = await buildLayer([{ type: 'file', name: 'other', data: 'x' }]);
  const manifests = new Map<string, TestBlob>([
    ['mismatch', good.manifest],
    ['truncated', good.manifest],
    ['lying', lying.manifest],
  ]);
  const cases: [string, Map<string, Buffer>, RegExp][] = [
    ['mismatch', new Map([...good.blobs, [layer.digest, Buffer.concat([other.data, Buffer.alloc(layer.size - other.size)])]]), /digest mismatch/],
    ['truncated', new Map([...good.blobs, [layer.digest, layer.data.subarray(0, layer.size - 10)]]), /truncated/],
    ['lying', new Map([...lying.blobs]), /more data than/],
  ];
  for (const [name, blobs, why] of cases) {
    const host = await lyingRegistry(t, manifests, blobs);
    const { svc, root } = await openService(t);
    await assert.rejects(svc.pull(`${host}/bad/image:${name}`), (e: unknown) => {
      assert.ok(e instanceof FailedPreconditionError, `${name}: ${String(e)}`);
      assert.match((e as SandlotError).message, why);
      return true;
    });
    assertNothingRecorded(svc, root);
    assert.deepEqual(storeEntries(root).blobs.includes(layer.digest.slice(7)), false);
  }
  // The same server with honest content works (after retrying its 503).
  const host = await lyingRegistry(t, new Map([['ok', good.manifest]]), good.blobs);
  const { svc } = await openService(t);
  assert.equal((await svc.pull(`${host}/bad/image:ok`)).id, good.config.digest);
});

test('a layer unpacks while it downloads; a corrupt one fails naming its digest and leaves no blob, snapshot or temp dir', async (t) => {
  const small = await buildLayer([{ type: 'file', name: 'small', data: 'ok' }]);
  const big = await buildLayer([{ type: 'file', name: 'data/big.bin', data: crypto.randomBytes(4 << 20) }]);
  const img = buildImage([small, big]);
  // The big layer's second half has one byte changed: same size, another digest.
  const half = big.size >> 1;
  const tail = Buffer.from(big.data.subarray(half));
  tail[tail.length >> 1] ^= 0xff;
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-images-'));
  const snapshots = path.join(root, 'images/snapshots');
  let unpackedMidDownload = false;
  const server = http.createServer((req, res) => {
    const m = /^\/v2\/.+\/(manifests|blobs)\/(.+)$/.exec(req.url ?? '');
    if (!m) return void res.writeHead(404).end();
    if (m[1] === 'manifests') return void res.writeHead(200, { 'content-type': img.manifest.mediaType }).end(img.manifest.data);
    if (m[2] !== big.digest) return void res.writeHead(200).end(img.blobs.get(m[2]));
    res.writeHead(200, { 'content-length': String(big.size) });
    res.write(big.data.subarray(0, half));
    // Hold the rest until the layer's file shows in a temp snapshot: it unpacks while it downloads.
    void (async () => {
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline && !unpackedMidDownload) {
        const tmps = fs.existsSync(snapshots) ? fs.readdirSync(snapshots).filter((n) => n.startsWith('tmp-')) : [];
        unpackedMidDownload = tmps.some((n) => fs.existsSync(path.join(snapshots, n, 'fs/data/big.bin')));
        await sleep(20);
      }
      res.end(tail);
    })();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const host = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  const { svc } = await openService(t, root);
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  await assert.rejects(svc.pull(`${host}/corrupt/layer:v1`), (e: unknown) => {
    assert.ok(e instanceof FailedPreconditionError, String(e));
    assert.match((e as Error).message, new RegExp(`blob ${big.digest}: digest mismatch`));
    return true;
  });
  assert.ok(unpackedMidDownload, 'the layer file appeared in a temp snapshot before its download ended');
  assertNothingRecorded(svc, root);
  assert.deepEqual(storeEntries(root).blobs, []);
});

test('images import from an OCI layout dir and a docker-archive tarball', async (t) => {
  const { writeBusyboxLayout } = await import('../../../src/image/oci-layout-writer.js');
  const { tarOf } = await import('../../helpers/image-build.js');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-import-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  await writeBusyboxLayout(path.join(dir, 'layout'));
  const { svc, root } = await openService(t);
  const [bb] = await svc.importArchive(path.join(dir, 'layout'), { pinned: true });
  assert.deepEqual(bb.repoTags, ['docker.io/library/busybox:latest']);
  assert.equal(svc.status('busybox')?.pinned, true);
  const snap = path.join(root, 'images/snapshots', bb.layers[0].chainId.slice(7), 'fs');
  assert.deepEqual(fs.readFileSync(path.join(snap, 'bin/busybox')), fs.readFileSync('/bin/busybox'));

  // docker save format: manifest.json, config JSON, uncompressed layer tar.
  const rawLayer = await tarOf([{ type: 'file', name: 'hello', data: 'from docker-archive\n' }]);
  const img: TestImage = buildImage([
    { mediaType: '', digest: '', size: 0, data: rawLayer, diffId: (await import('../../helpers/image-build.js')).sha256(rawLayer) },
  ]);
  const archive = await tarOf([
    {
      type: 'file',
      name: 'manifest.json',
      data: JSON.stringify([{ Config: 'config.json', RepoTags: ['example.com/docker/archive:v2'], Layers: ['l1/layer.tar'] }]),
    },
    { type: 'file', name: 'config.json', data: img.config.data },
    { type: 'file', name: 'l1/layer.tar', data: rawLayer },
  ]);
  fs.writeFileSync(path.join(dir, 'docker.tar'), archive);
  const [da] = await svc.importArchive(path.join(dir, 'docker.tar'));
  assert.equal(da.id, img.config.digest);
  assert.deepEqual(da.repoTags, ['example.com/docker/archive:v2']);
  assert.equal(svc.list().length, 2);
  assert.deepEqual(fs.readdirSync(path.join(root, 'images/import')), []);
});
