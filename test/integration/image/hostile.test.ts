// Hostile images through the whole image service (issue 11 items 4-8): layers that
// expand without bound, overlayfs control xattrs, digests that name paths, imports of
// files that are not tarballs, and rmi of a tag sharing its image with a pinned one.
// Pulls come from a real Debian docker-registry on 127.0.0.1; imports from files.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import pino from 'pino';
import { defaultConfig } from '../../../src/config/defaults.js';
import { FailedPreconditionError, InvalidArgumentError, ResourceExhaustedError } from '../../../src/errors.js';
import { ImageService } from '../../../src/image/image-service.js';
import { writeBusyboxLayout } from '../../../src/image/oci-layout-writer.js';
import { buildImage, buildLayer, sha256, tarOf, type TestImage } from '../../helpers/image-build.js';
import { pushImage, startRegistry, type TestRegistry } from '../../helpers/registry.js';

const log = pino({ level: 'silent' });
const MiB = 1 << 20;
let reg: TestRegistry;

before(async () => {
  reg = await startRegistry();
});
after(async () => {
  await reg?.stop();
});

type T = { after: (fn: () => Promise<void> | void) => void };

function tempDir(t: T, prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.after(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

async function openService(t: T, limits: { layer?: number; image?: number } = {}): Promise<{ svc: ImageService; root: string }> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-hostile-images-'));
  const config = {
    ...defaultConfig(),
    root_dir: root,
    max_layer_unpacked_bytes: limits.layer ?? 8 * MiB,
    max_image_unpacked_bytes: limits.image ?? 12 * MiB,
  };
  const svc = await ImageService.open({ config, log, registry: { retryBaseDelayMs: 10 } });
  t.after(async () => {
    const containers = path.join(root, 'containers');
    for (const id of fs.existsSync(containers) ? fs.readdirSync(containers) : []) await svc.removeRootfs(id);
    await svc.close();
    fs.rmSync(root, { recursive: true, force: true });
  });
  return { svc, root };
}

/** Nothing of a failed pull or import stays: no image, blob, snapshot, ingest or import temp. */
function assertNothingLeft(svc: ImageService, root: string): void {
  assert.equal(svc.list().length, 0);
  assert.deepEqual(fs.readdirSync(path.join(root, 'images/content/sha256')), []);
  assert.deepEqual(fs.readdirSync(path.join(root, 'images/content/ingest')), []);
  assert.deepEqual(fs.readdirSync(path.join(root, 'images/snapshots')), []);
  const imports = path.join(root, 'images/import');
  assert.deepEqual(fs.existsSync(imports) ? fs.readdirSync(imports) : [], []);
}

/** Writes `img` as an OCI layout directory named `name`; `indexDigest` overrides the index entry. */
function writeLayout(dir: string, img: TestImage, name: string, indexDigest?: string): string {
  fs.mkdirSync(path.join(dir, 'blobs/sha256'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  for (const [d, b] of [...img.blobs, [img.manifest.digest, img.manifest.data] as const]) fs.writeFileSync(path.join(dir, 'blobs/sha256', d.slice(7)), b);
  const entry = {
    mediaType: img.manifest.mediaType,
    digest: indexDigest ?? img.manifest.digest,
    size: img.manifest.size,
    annotations: { 'io.containerd.image.name': name },
  };
  fs.writeFileSync(path.join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [entry] }));
  return dir;
}

/** A gzip layer of a few hundred KiB that unpacks to `mib` MiB of zeros. */
async function bombImage(mib: number): Promise<TestImage> {
  return buildImage([await buildLayer([{ type: 'file', name: 'zeros', data: Buffer.alloc(mib * MiB) }])]);
}

test('a layer over max_layer_unpacked_bytes fails pull and import naming the layer; nothing left (S5)', async (t) => {
  const img = await bombImage(64);
  const layer = img.layers[0];
  assert.ok(layer.size < MiB, `the gzip layer is small (${layer.size} bytes)`);
  const check = (e: unknown): boolean => {
    assert.ok(e instanceof ResourceExhaustedError, String(e));
    assert.match(e.message, new RegExp(`unpacking layer ${layer.digest}: unpacks to more than ${8 * MiB} bytes \\(config max_layer_unpacked_bytes\\)`));
    return true;
  };
  await pushImage(reg, 'hostile/bomb', 'v1', img);
  const { svc, root } = await openService(t);
  await assert.rejects(svc.pull(`${reg.host}/hostile/bomb:v1`), check);
  assertNothingLeft(svc, root);

  const dir = writeLayout(tempDir(t, 'sandlot-bomb-layout-'), img, 'example.com/hostile/bomb:v1');
  await assert.rejects(svc.importArchive(dir), check);
  assertNothingLeft(svc, root);
});

test('layers within their own limit but over max_image_unpacked_bytes together fail naming a layer; nothing left', async (t) => {
  const a = await buildLayer([{ type: 'file', name: 'a', data: Buffer.alloc(7 * MiB) }]);
  const b = await buildLayer([{ type: 'file', name: 'b', data: Buffer.alloc(7 * MiB, 1) }]);
  const img = buildImage([a, b]);
  await pushImage(reg, 'hostile/wide', 'v1', img);
  const { svc, root } = await openService(t);
  await assert.rejects(svc.pull(`${reg.host}/hostile/wide:v1`), (e: unknown) => {
    assert.ok(e instanceof ResourceExhaustedError, String(e));
    assert.match(
      e.message,
      /unpacking layer sha256:[a-f0-9]{64}: image sha256:[a-f0-9]{64} unpacks to more than 12582912 bytes \(config max_image_unpacked_bytes\)/,
    );
    return true;
  });
  assertNothingLeft(svc, root);
  // Within the limits the same image pulls.
  const { svc: roomy } = await openService(t, { layer: 8 * MiB, image: 16 * MiB });
  assert.equal((await roomy.pull(`${reg.host}/hostile/wide:v1`)).id, img.config.digest);
});

test('trusted.overlay.* xattrs in a pulled layer fail the pull naming the entry; nothing left', async (t) => {
  const { svc, root } = await openService(t);
  for (const [name, attr, value] of [
    ['redirect', 'trusted.overlay.redirect', '/etc'],
    ['metacopy', 'trusted.overlay.metacopy', ''],
    ['opaque', 'trusted.overlay.opaque', 'y'],
  ] as const) {
    const img = buildImage([await buildLayer([{ type: 'file', name: 'app/data', data: 'x', xattrs: { [attr]: value } }])]);
    await pushImage(reg, `hostile/xattr-${name}`, 'v1', img);
    await assert.rejects(svc.pull(`${reg.host}/hostile/xattr-${name}:v1`), (e: unknown) => {
      assert.ok(e instanceof InvalidArgumentError, `${name}: ${String(e)}`);
      assert.match(e.message, new RegExp(`entry "app/data": xattr "${attr.replace(/\./g, '\\.')}".*not allowed`));
      return true;
    });
    assertNothingLeft(svc, root);
  }
});

test('an OCI layout whose index.json digest names a path is INVALID_ARGUMENT and reads nothing', async (t) => {
  const img = buildImage([await buildLayer([{ type: 'file', name: 'f', data: 'x' }])]);
  const { svc, root } = await openService(t);
  for (const bad of ['sha256:../../../etc/passwd', `sha256:${'A'.repeat(64)}`, 'md5:d41d8cd98f00b204e9800998ecf8427e']) {
    const dir = writeLayout(tempDir(t, 'sandlot-evil-layout-'), img, 'example.com/evil/layout:v1', bad);
    await assert.rejects(svc.importArchive(dir), (e: unknown) => {
      assert.ok(e instanceof InvalidArgumentError, `${bad}: ${String(e)}`);
      assert.match(e.message, /index\.json manifests\[0\]: digest ".*" is not sha256:<64 lowercase hex>/);
      return true;
    });
    assertNothingLeft(svc, root);
  }
});

test('importing a file that is not a tarball is INVALID_ARGUMENT naming the file and what it is; nothing left', async (t) => {
  const dir = tempDir(t, 'sandlot-nontar-');
  const { svc, root } = await openService(t);
  const goodTar = await tarOf([{ type: 'file', name: 'manifest.json', data: 'x'.repeat(4000) }]);
  const cases: [string, Buffer, RegExp][] = [
    ['text.txt', Buffer.from('hello, this is not a tar archive at all\n'.repeat(40)), /is not a tar archive \(Invalid tar header/],
    ['cut.tar', goodTar.subarray(0, 1024), /is not a tar archive \(Unexpected end of data\)/],
    ['image.tar.gz', zlib.gzipSync(goodTar), /is not a tar archive but gzip-compressed data/],
  ];
  for (const [name, data, why] of cases) {
    const file = path.join(dir, name);
    fs.writeFileSync(file, data);
    await assert.rejects(svc.importArchive(file), (e: unknown) => {
      assert.ok(e instanceof InvalidArgumentError, `${name}: ${String(e)}`);
      assert.match(e.message, new RegExp(`file "${file.replace(/\./g, '\\.')}"`));
      assert.match(e.message, why);
      return true;
    });
    assertNothingLeft(svc, root);
  }
});

test('a docker-archive whose layer is not a tar fails INVALID_ARGUMENT and leaves no verified blobs', async (t) => {
  const dir = tempDir(t, 'sandlot-badlayer-');
  const junk = Buffer.from('not a layer\n'.repeat(100));
  const img = buildImage([{ mediaType: '', digest: '', size: 0, data: junk, diffId: sha256(junk) }]);
  const archive = await tarOf([
    { type: 'file', name: 'manifest.json', data: JSON.stringify([{ Config: 'config.json', RepoTags: ['example.com/bad/layer:v1'], Layers: ['l/layer.tar'] }]) },
    { type: 'file', name: 'config.json', data: img.config.data },
    { type: 'file', name: 'l/layer.tar', data: junk },
  ]);
  const file = path.join(dir, 'docker.tar');
  fs.writeFileSync(file, archive);
  const { svc, root } = await openService(t);
  await assert.rejects(svc.importArchive(file), (e: unknown) => {
    assert.ok(e instanceof InvalidArgumentError, String(e));
    assert.match(e.message, /unpacking layer sha256:[a-f0-9]{64}: not a valid tar stream/);
    return true;
  });
  assertNothingLeft(svc, root);
});

test('a pulled gzip layer that is not gzip, or gzip of no tar, is INVALID_ARGUMENT naming the layer; nothing left', async (t) => {
  const { svc, root } = await openService(t);
  const notGzip = Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0]), Buffer.alloc(600, 0x5a)]);
  const gzipOfText = zlib.gzipSync(Buffer.from('plain text, no tar\n'.repeat(64)));
  for (const [name, data, why] of [
    // zlib may hand the tar parser garbage before it notices: either one may speak.
    ['notgzip', notGzip, /not valid compressed data|not a valid tar stream/],
    ['gzipoftext', gzipOfText, /not a valid tar stream/],
  ] as const) {
    const layer = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(data), size: data.length, data, diffId: sha256(data) };
    await pushImage(reg, `hostile/${name}`, 'v1', buildImage([layer]));
    await assert.rejects(svc.pull(`${reg.host}/hostile/${name}:v1`), (e: unknown) => {
      assert.ok(e instanceof InvalidArgumentError, `${name}: ${String(e)}`);
      assert.match(e.message, new RegExp(`unpacking layer ${layer.digest}: `));
      assert.match(e.message, why);
      return true;
    });
    assertNothingLeft(svc, root);
  }
});

test('rmi of a tag sharing its image with pinned busybox untags only; pinned and in-use images are refused', async (t) => {
  const work = tempDir(t, 'sandlot-rmi-');
  await writeBusyboxLayout(path.join(work, 'busybox'));
  await writeBusyboxLayout(path.join(work, 'small'), '127.0.0.1:5000/team/small:v1');
  const { svc } = await openService(t, { layer: 64 * MiB, image: 64 * MiB });
  const [bb] = await svc.importArchive(path.join(work, 'busybox'), { pinned: true });
  const [small] = await svc.importArchive(path.join(work, 'small'));
  assert.equal(small.id, bb.id, 'one image, two tags');
  assert.deepEqual(svc.status(bb.id)?.repoTags.sort(), ['127.0.0.1:5000/team/small:v1', 'docker.io/library/busybox:latest']);

  assert.deepEqual(await svc.remove('127.0.0.1:5000/team/small:v1'), { untagged: ['127.0.0.1:5000/team/small:v1'], deleted: undefined });
  assert.deepEqual(svc.status('busybox')?.repoTags, ['docker.io/library/busybox:latest']);
  assert.equal(svc.status('127.0.0.1:5000/team/small:v1'), undefined);
  for (const ref of ['busybox', bb.id]) {
    await assert.rejects(svc.remove(ref), (e: unknown) => {
      assert.ok(e instanceof FailedPreconditionError, `${ref}: ${String(e)}`);
      assert.match(e.message, /is pinned/);
      return true;
    });
  }
  assert.equal(svc.resolve('busybox').id, bb.id, 'busybox still resolves for the next run');

  // An unpinned image with two tags, used by a container.
  const img = buildImage([await buildLayer([{ type: 'file', name: 'f', data: 'used' }])]);
  await pushImage(reg, 'hostile/used', 'a', img);
  await pushImage(reg, 'hostile/used', 'b', img);
  await svc.pull(`${reg.host}/hostile/used:a`);
  await svc.pull(`${reg.host}/hostile/used:b`);
  await svc.prepareRootfs(`${reg.host}/hostile/used:a`, 'ctr-uses-it');
  assert.deepEqual((await svc.remove(`${reg.host}/hostile/used:a`)).untagged, [`${reg.host}/hostile/used:a`], 'untagging an image in use is fine');
  for (const ref of [`${reg.host}/hostile/used:b`, img.config.digest]) {
    await assert.rejects(svc.remove(ref), (e: unknown) => {
      assert.ok(e instanceof FailedPreconditionError, `${ref}: ${String(e)}`);
      assert.match(e.message, /in use by container "ctr-uses-it"/);
      return true;
    });
  }
  await svc.removeRootfs('ctr-uses-it');
  assert.deepEqual(await svc.remove(img.config.digest), { untagged: [`${reg.host}/hostile/used:b`], deleted: img.config.digest });
  assert.equal(svc.status(img.config.digest), undefined);
});
