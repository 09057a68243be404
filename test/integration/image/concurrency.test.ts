// Layers of one pull download concurrently, at most LAYER_CONCURRENCY at once. The
// registry here holds every blob response until no new request has come for a while,
// then releases the oldest: so the number in flight shows how many the client opens.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { defaultConfig } from '../../../src/config/defaults.js';
import { ImageService } from '../../../src/image/image-service.js';
import { LAYER_CONCURRENCY } from '../../../src/image/puller.js';
import { buildImage, buildLayer } from '../../helpers/image-build.js';

const QUIET_MS = 300;

test(`layers download concurrently, at most ${LAYER_CONCURRENCY} at once`, async (t) => {
  const layers = [];
  for (let i = 0; i < LAYER_CONCURRENCY + 2; i++) layers.push(await buildLayer([{ type: 'file', name: `f${i}`, data: `layer ${i}` }]));
  const img = buildImage(layers);
  const layerDigests = new Set(layers.map((l) => l.digest));
  const held: (() => void)[] = [];
  let inflight = 0;
  let maxInflight = 0;
  let timer: NodeJS.Timeout | undefined;
  const releaseLater = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      held.shift()?.();
      if (held.length > 0) releaseLater();
    }, QUIET_MS);
  };
  const server = http.createServer((req, res) => {
    const m = /^\/v2\/.+\/(manifests|blobs)\/(.+)$/.exec(req.url ?? '');
    if (!m) return void res.writeHead(404).end();
    if (m[1] === 'manifests') return void res.writeHead(200, { 'content-type': img.manifest.mediaType }).end(img.manifest.data);
    const digest = m[2];
    const data = img.blobs.get(digest);
    if (!data) return void res.writeHead(404).end();
    if (!layerDigests.has(digest)) return void res.writeHead(200).end(data);
    inflight++;
    maxInflight = Math.max(maxInflight, inflight);
    held.push(() => {
      inflight--;
      res.writeHead(200).end(data);
    });
    releaseLater();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  t.after(() => clearTimeout(timer));
  const host = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;

  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-concurrency-'));
  const svc = await ImageService.open({ config: { ...defaultConfig(), root_dir: root }, log: pino({ level: 'silent' }) });
  t.after(async () => {
    await svc.close();
    fs.rmSync(root, { recursive: true, force: true });
  });
  assert.equal((await svc.pull(`${host}/many/layers:v1`)).id, img.config.digest);
  assert.equal(maxInflight, LAYER_CONCURRENCY);
});
