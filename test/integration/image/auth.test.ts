// Registry auth against real docker-registry instances: htpasswd Basic, and Bearer
// tokens from a token server of the test's own (RS256 JWTs, x5c to the root bundle).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { defaultConfig } from '../../../src/config/defaults.js';
import { UnauthenticatedError } from '../../../src/errors.js';
import { ImageService } from '../../../src/image/image-service.js';
import { buildImage, buildLayer } from '../../helpers/image-build.js';
import { pushImage, startRegistry } from '../../helpers/registry.js';

const log = pino({ level: 'silent' });

for (const mode of ['htpasswd', 'token'] as const) {
  test(`${mode} auth: right credentials pull, missing or wrong ones are UnauthenticatedError naming the registry`, async (t) => {
    const reg = await startRegistry({ auth: mode, username: 'alice', password: 'wonder' });
    t.after(() => reg.stop());
    const img = buildImage([await buildLayer([{ type: 'file', name: 'secret', data: mode }])]);
    await pushImage(reg, 'private/img', 'v1', img);
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-auth-'));
    const svc = await ImageService.open({ config: { ...defaultConfig(), root_dir: root }, log });
    t.after(async () => {
      await svc.close();
      fs.rmSync(root, { recursive: true, force: true });
    });
    const ref = `${reg.host}/private/img:v1`;
    const unauth = (e: unknown): boolean => e instanceof UnauthenticatedError && (e as Error).message.includes(`"${reg.host}"`);
    await assert.rejects(svc.pull(ref), unauth);
    await assert.rejects(svc.pull(ref, { username: 'alice', password: 'wrong' }), unauth);
    assert.equal(svc.list().length, 0);
    const rec = await svc.pull(ref, { auth: Buffer.from('alice:wonder').toString('base64') });
    assert.equal(rec.id, img.config.digest);
    if (mode === 'token') {
      // A registry token is used as the bearer token directly.
      await svc.remove(rec.id);
      const token = (await reg.pushAuth('private/img'))!.slice('Bearer '.length);
      assert.equal((await svc.pull(ref, { registry_token: token })).id, img.config.digest);
    }
  });
}
