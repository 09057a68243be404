// HTTPS: a docker-registry serving TLS with a throwaway certificate, reached as an
// explicit https:// mirror (loopback hosts are otherwise spoken to over plain HTTP).
// The daemon trusts the certificate through NODE_EXTRA_CA_CERTS; this test process
// does not, and its pull must fail: certificates are verified, never skipped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { defaultConfig } from '../../../src/config/defaults.js';
import { UnavailableError } from '../../../src/errors.js';
import { ImageService } from '../../../src/image/image-service.js';
import { writeBusyboxLayout } from '../../../src/image/oci-layout-writer.js';
import { startDaemon } from '../../helpers/daemon.js';
import { freePort, startRegistry } from '../../helpers/registry.js';

test('pulls over HTTPS from a mirror whose certificate the daemon trusts; an untrusted certificate fails', async (t) => {
  const reg = await startRegistry({ tls: true });
  t.after(() => reg.stop());
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-https-'));
  t.after(() => fs.rmSync(work, { recursive: true, force: true }));
  const layout = path.join(work, 'layout');
  await writeBusyboxLayout(layout);
  execFileSync('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}`, `docker://${reg.host}/lib/bb:v1`], { stdio: 'pipe' });
  const index = JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const manifest = JSON.parse(fs.readFileSync(path.join(layout, 'blobs/sha256', index.manifests[0].digest.slice(7)), 'utf8')) as {
    config: { digest: string };
  };

  // The upstream name points at a loopback port nobody listens on: only the mirror can serve.
  const upstream = `127.0.0.1:${await freePort()}`;
  const mirrors = { [upstream]: [reg.url] };
  const ref = `${upstream}/lib/bb:v1`;

  process.env.NODE_EXTRA_CA_CERTS = reg.certFile!;
  let daemon;
  try {
    daemon = await startDaemon({ config: { registry_mirrors: mirrors } });
  } finally {
    delete process.env.NODE_EXTRA_CA_CERTS;
  }
  t.after(() => daemon.cleanup());
  const res = await daemon.image('PullImage', { image: { image: ref } });
  assert.equal(res.image_ref, manifest.config.digest);
  assert.deepEqual((await daemon.image('ImageStatus', { image: { image: ref } })).image.repo_tags, [ref]);

  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-https-svc-'));
  const lines: string[] = [];
  const log = pino({ level: 'debug' }, { write: (l: string) => void lines.push(l) });
  const svc = await ImageService.open({ config: { ...defaultConfig(), root_dir: root, registry_mirrors: mirrors }, log, registry: { retryBaseDelayMs: 10 } });
  t.after(async () => {
    await svc.close();
    fs.rmSync(root, { recursive: true, force: true });
  });
  await assert.rejects(svc.pull(ref), (e: unknown) => e instanceof UnavailableError);
  assert.equal(svc.list().length, 0);
  const mirrorFailure = lines.find((l) => l.includes('mirror failed'));
  assert.ok(mirrorFailure, 'the mirror was tried and failed');
  assert.match(mirrorFailure, /SELF_SIGNED|self[- ]signed|certificate/i);
});
