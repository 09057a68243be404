// The CRI image handlers over a real ImageService (images imported from an OCI layout).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { defaultConfig } from '../../../src/config/defaults.js';
import { imageHandlers, imageUser } from '../../../src/cri/image-handlers.js';
import type { CallContext } from '../../../src/cri/handler-types.js';
import { decodedRequest } from '../../../src/cri/proto.js';
import { InvalidArgumentError } from '../../../src/errors.js';
import { ImageService } from '../../../src/image/image-service.js';
import { writeBusyboxLayout } from '../../../src/image/oci-layout-writer.js';

const log = pino({ level: 'silent' });

test('ImageStatus, ListImages, StreamImages, RemoveImage and ImageFsInfo speak CRI', async (t) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-handlers-'));
  const svc = await ImageService.open({ config: { ...defaultConfig(), root_dir: root }, log });
  t.after(async () => {
    await svc.close();
    fs.rmSync(root, { recursive: true, force: true });
  });
  await writeBusyboxLayout(path.join(root, 'layout'));
  const [rec] = await svc.importArchive(path.join(root, 'layout'));
  const h = imageHandlers(svc);
  const ctx: CallContext = { log, signal: new AbortController().signal };

  const st = await h.unary!.ImageStatus!(decodedRequest('ImageStatus', { image: { image: 'busybox' }, verbose: true }), ctx);
  const img = st.image as Record<string, unknown>;
  assert.equal(img.id, rec.id);
  assert.deepEqual(img.repo_tags, ['docker.io/library/busybox:latest']);
  assert.equal(img.size, String(rec.size));
  assert.equal((JSON.parse((st.info as Record<string, string>).info) as { imageSpec: { config: { Cmd: string[] } } }).imageSpec.config.Cmd[0], 'sh');
  assert.deepEqual(await h.unary!.ImageStatus!(decodedRequest('ImageStatus', { image: { image: 'docker.io/library/nothere:1' } }), ctx), {
    image: null,
    info: {},
  });

  assert.equal(((await h.unary!.ListImages!(decodedRequest('ListImages', {}), ctx)).images as unknown[]).length, 1);
  assert.equal(((await h.unary!.ListImages!(decodedRequest('ListImages', { filter: { image: { image: 'nothere' } } }), ctx)).images as unknown[]).length, 0);
  const pages = [];
  for await (const page of h.stream!.StreamImages!(decodedRequest('StreamImages', {}), ctx)) pages.push(page);
  assert.equal((pages[0].images as unknown[]).length, 1);

  const fsInfo = (await h.unary!.ImageFsInfo!(decodedRequest('ImageFsInfo', {}), ctx)).image_filesystems as {
    fs_id: { mountpoint: string };
    used_bytes: { value: string };
  }[];
  assert.equal(fsInfo[0].fs_id.mountpoint, path.join(root, 'images'));
  assert.ok(Number(fsInfo[0].used_bytes.value) > 0);

  await assert.rejects(
    h.unary!.PullImage!(decodedRequest('PullImage', { image: { image: '' } }), ctx),
    (e: unknown) => e instanceof InvalidArgumentError && /image\.image/.test((e as Error).message),
  );
  await assert.rejects(
    h.unary!.PullImage!(decodedRequest('PullImage', { image: { image: 'BAD::ref' } }), ctx),
    (e: unknown) => e instanceof InvalidArgumentError && /BAD::ref/.test((e as Error).message),
  );
  await h.unary!.RemoveImage!(decodedRequest('RemoveImage', { image: { image: rec.id } }), ctx);
  await h.unary!.RemoveImage!(decodedRequest('RemoveImage', { image: { image: rec.id } }), ctx); // missing: not an error
  assert.equal(svc.list().length, 0);
});

test('uid or username come from the config User', () => {
  assert.deepEqual(imageUser('1000:1000'), { uid: { value: '1000' }, username: '' });
  assert.deepEqual(imageUser('nobody'), { uid: null, username: 'nobody' });
  assert.deepEqual(imageUser(''), { uid: null, username: '' });
});
