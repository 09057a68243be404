// The image service inside the real daemon, over CRI: the preloaded busybox, a Docker
// manifest list, and bad input that must leave nothing behind and the daemon serving.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { status as Status, type ServiceError } from '@grpc/grpc-js';
import { writeBusyboxLayout } from '../../../src/image/oci-layout-writer.js';
import { startDaemon, type TestDaemon } from '../../helpers/daemon.js';
import { blobOf, buildImage, buildLayer, busyboxLayer, type TestBlob } from '../../helpers/image-build.js';
import { pushBlob, pushImage, pushManifest, startRegistry, type TestRegistry } from '../../helpers/registry.js';

let work: string;
let reg: TestRegistry;
let secured: TestRegistry;
let daemon: TestDaemon;

before(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-daemon-images-'));
  await writeBusyboxLayout(path.join(work, 'busybox'));
  [reg, secured] = await Promise.all([startRegistry(), startRegistry({ auth: 'htpasswd', username: 'dave', password: 'right' })]);
  daemon = await startDaemon({ config: { preload_images: [path.join(work, 'busybox')] } });
});
after(async () => {
  await daemon?.cleanup();
  await Promise.all([reg?.stop(), secured?.stop()]);
  fs.rmSync(work, { recursive: true, force: true });
});

async function images(): Promise<{ id: string; repo_tags: string[]; pinned: boolean }[]> {
  return (await daemon.image('ListImages')).images;
}

test('the preloaded busybox is listed, pinned, with its user and verbose config', async () => {
  const st = await daemon.image('ImageStatus', { image: { image: 'busybox' }, verbose: true });
  assert.deepEqual(st.image.repo_tags, ['docker.io/library/busybox:latest']);
  assert.equal(st.image.pinned, true);
  assert.equal((JSON.parse(st.info.info) as { imageSpec: { os: string } }).imageSpec.os, 'linux');
  const byId = await daemon.image('ImageStatus', { image: { image: st.image.id } });
  assert.equal(byId.image.id, st.image.id);
});

test('a Docker manifest list pulls the host platform; status by tag and digest, removal by digest', async () => {
  const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
  const amd = buildImage([await buildLayer([{ type: 'file', name: 'arch', data: 'amd64' }])], { architecture: 'amd64', docker: true });
  const arm = buildImage([await buildLayer([{ type: 'file', name: 'arch', data: 'arm64' }])], { architecture: 'arm64', docker: true });
  for (const i of [arm, amd]) {
    for (const [d, b] of i.blobs) await pushBlob(reg, 'docker/list', d, b);
    await pushManifest(reg, 'docker/list', i.manifest.digest, i.manifest);
  }
  const list = blobOf(DOCKER_LIST, {
    schemaVersion: 2,
    mediaType: DOCKER_LIST,
    manifests: [
      {
        mediaType: arm.manifest.mediaType,
        digest: arm.manifest.digest,
        size: arm.manifest.size,
        platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
      },
      { mediaType: amd.manifest.mediaType, digest: amd.manifest.digest, size: amd.manifest.size, platform: { os: 'linux', architecture: 'amd64' } },
    ],
  });
  await pushManifest(reg, 'docker/list', 'v1', list);
  const ref = `${reg.host}/docker/list:v1`;
  assert.equal((await daemon.image('PullImage', { image: { image: ref } })).image_ref, amd.config.digest);
  const byDigest = await daemon.image('ImageStatus', { image: { image: `${reg.host}/docker/list@${list.digest}` } });
  assert.equal(byDigest.image.id, amd.config.digest);
  assert.deepEqual(byDigest.image.repo_digests, [`${reg.host}/docker/list@${list.digest}`]);
  await daemon.image('RemoveImage', { image: { image: `${reg.host}/docker/list@${list.digest}` } });
  assert.equal((await daemon.image('ImageStatus', { image: { image: ref } })).image, null);
});

/** Serves one manifest and the blobs it is given, right or wrong. */
async function lyingServer(t: { after: (fn: () => Promise<void>) => void }, manifest: TestBlob, blobs: Map<string, Buffer>): Promise<string> {
  const server = http.createServer((req, res) => {
    const m = /^\/v2\/.+\/(manifests|blobs)\/(.+)$/.exec(req.url ?? '');
    if (!m) return void res.writeHead(req.url === '/v2/' ? 200 : 404).end('{}');
    if (m[1] === 'manifests') return void res.writeHead(200, { 'content-type': manifest.mediaType }).end(manifest.data);
    const b = blobs.get(m[2]);
    return void (b ? res.writeHead(200).end(b) : res.writeHead(404).end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  return `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

test('bad input fails with its gRPC code and leaves no image, no snapshot, nothing outside; the daemon keeps serving', async (t) => {
  const snapshotsDir = path.join(daemon.rootDir, 'images/snapshots');
  const before = { images: (await images()).map((i) => i.id).sort(), snapshots: fs.readdirSync(snapshotsDir).sort() };
  const passwd = fs.readFileSync('/etc/passwd');

  const escapes: [string, Parameters<typeof buildLayer>[0]][] = [
    ['dotdot', [{ type: 'file', name: '../sandlot-evil', data: 'evil' }]],
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
  const cases: [string, string, Status, RegExp][] = [];
  for (const [name, entries] of escapes) {
    await pushImage(reg, `evil/${name}`, 'v1', buildImage([await buildLayer(entries)]));
    cases.push([name, `${reg.host}/evil/${name}:v1`, Status.INVALID_ARGUMENT, /entry "/]);
  }
  const layer = await busyboxLayer();
  const good = buildImage([layer]);
  const wrong = new Map([...good.blobs, [layer.digest, Buffer.alloc(layer.size, 0x5a)]]);
  const liar = await lyingServer(t, good.manifest, wrong);
  cases.push(['digest mismatch', `${liar}/bad/image:v1`, Status.FAILED_PRECONDITION, /digest mismatch/]);
  const short = new Map([...good.blobs, [layer.digest, layer.data.subarray(0, layer.size - 7)]]);
  cases.push(['truncated blob', `${await lyingServer(t, good.manifest, short)}/bad/image:v1`, Status.FAILED_PRECONDITION, /truncated/]);
  await pushImage(secured, 'private/img', 'v1', good);
  cases.push(['no credentials', `${secured.host}/private/img:v1`, Status.UNAUTHENTICATED, new RegExp(`registry "${secured.host}"`)]);
  cases.push(['not found', `${reg.host}/no/such:v1`, Status.NOT_FOUND, new RegExp(`${reg.host}/no/such:v1`)]);
  cases.push(['malformed', 'UPPER/case::bad', Status.INVALID_ARGUMENT, /image\.image/]);

  for (const [name, ref, code, re] of cases) {
    await assert.rejects(daemon.image('PullImage', { image: { image: ref } }), (e: unknown) => {
      assert.equal((e as ServiceError).code, code, `${name}: ${(e as ServiceError).details}`);
      assert.match((e as ServiceError).details, re, name);
      return true;
    });
    assert.deepEqual((await images()).map((i) => i.id).sort(), before.images, `${name}: no image recorded`);
    assert.deepEqual(fs.readdirSync(snapshotsDir).sort(), before.snapshots, `${name}: no snapshot left`);
    assert.deepEqual(fs.readdirSync(path.join(daemon.rootDir, 'images/content/ingest')), [], `${name}: no half-written blob`);
  }
  assert.ok(!fs.existsSync('/etc/sandlot-evil'));
  assert.ok(!fs.existsSync(path.join(daemon.rootDir, 'images/sandlot-evil')));
  assert.deepEqual(fs.readFileSync('/etc/passwd'), passwd);
  assert.equal((await daemon.runtime('Version', { version: 'v1' })).runtime_name, 'sandlot');
  // And it still pulls: the same registry with honest content.
  await pushImage(reg, 'good/after', 'v1', good);
  assert.equal((await daemon.image('PullImage', { image: { image: `${reg.host}/good/after:v1` } })).image_ref, good.config.digest);
});

test('images and their layers survive a daemon restart', async () => {
  const before = (await images()).map((i) => `${i.id} ${i.repo_tags.join(',')} ${i.pinned}`).sort();
  assert.ok(before.length >= 2, 'busybox and the image pulled after the bad input');
  await daemon.restart();
  assert.deepEqual((await images()).map((i) => `${i.id} ${i.repo_tags.join(',')} ${i.pinned}`).sort(), before);
  const st = await daemon.image('ImageStatus', { image: { image: 'busybox' } });
  assert.equal(st.image.pinned, true);
});
