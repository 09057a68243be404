// registry_mirrors against real docker-registry instances: a mirror is tried first,
// and the upstream answers when the mirror lacks the image or is down.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { defaultConfig } from '../../../src/config/defaults.js';
import { NotFoundError } from '../../../src/errors.js';
import { ImageService } from '../../../src/image/image-service.js';
import { buildImage, buildLayer, type TestImage } from '../../helpers/image-build.js';
import { freePort, pushImage, startRegistry, type TestRegistry } from '../../helpers/registry.js';

const log = pino({ level: 'silent' });
let upstream: TestRegistry;
let mirror: TestRegistry;

before(async () => {
  [upstream, mirror] = await Promise.all([startRegistry(), startRegistry()]);
});
after(async () => {
  await Promise.all([upstream?.stop(), mirror?.stop()]);
});

async function openService(t: { after: (fn: () => Promise<void>) => void }, mirrors: string[]): Promise<ImageService> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-mirror-'));
  const svc = await ImageService.open({
    config: { ...defaultConfig(), root_dir: root, registry_mirrors: { [upstream.host]: mirrors } },
    log,
    registry: { retryBaseDelayMs: 10 },
  });
  t.after(async () => {
    await svc.close();
    fs.rmSync(root, { recursive: true, force: true });
  });
  return svc;
}

async function imageSaying(text: string): Promise<TestImage> {
  return buildImage([await buildLayer([{ type: 'file', name: 'from', data: text }])]);
}

test('a mirror that has the image serves it; one that lacks it falls back to the upstream', async (t) => {
  const onMirror = await imageSaying('mirror');
  const onUpstream = await imageSaying('upstream');
  // Same name on both, different content: which one arrives shows who answered.
  await pushImage(mirror, 'lib/both', 'v1', onMirror);
  await pushImage(upstream, 'lib/both', 'v1', onUpstream);
  const onlyUpstream = await imageSaying('only upstream');
  await pushImage(upstream, 'lib/only', 'v1', onlyUpstream);

  const svc = await openService(t, [mirror.url]);
  const both = await svc.pull(`${upstream.host}/lib/both:v1`);
  assert.equal(both.id, onMirror.config.digest);
  // The record names the image as asked for, not the mirror.
  assert.deepEqual(both.repoTags, [`${upstream.host}/lib/both:v1`]);
  assert.deepEqual(both.repoDigests, [`${upstream.host}/lib/both@${onMirror.manifest.digest}`]);

  const only = await svc.pull(`${upstream.host}/lib/only:v1`);
  assert.equal(only.id, onlyUpstream.config.digest);

  // Missing everywhere: NotFound naming the upstream registry and the reference.
  await assert.rejects(svc.pull(`${upstream.host}/lib/nowhere:v1`), (e: unknown) => {
    assert.ok(e instanceof NotFoundError, String(e));
    assert.match((e as Error).message, new RegExp(`registry "${upstream.host}".*${upstream.host}/lib/nowhere:v1`));
    return true;
  });
});

test('a mirror that is down is skipped; mirrors are tried in order', async (t) => {
  const img = await imageSaying('second mirror');
  const up = await imageSaying('upstream again');
  await pushImage(mirror, 'lib/order', 'v1', img);
  await pushImage(upstream, 'lib/order', 'v1', up);
  const dead = `http://127.0.0.1:${await freePort()}`; // nobody listens there
  const svc = await openService(t, [dead, mirror.url]);
  assert.equal((await svc.pull(`${upstream.host}/lib/order:v1`)).id, img.config.digest);

  const svcDead = await openService(t, [dead]);
  assert.equal((await svcDead.pull(`${upstream.host}/lib/order:v1`)).id, up.config.digest);
});
