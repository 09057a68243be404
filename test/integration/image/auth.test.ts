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

test('identity_token: exchanged at the token endpoint (OAuth2 refresh_token grant), renewed after expiry; a bad one is UnauthenticatedError', async (t) => {
  // Issued tokens live 2 s; the client renews 5 s early but keeps each at least 1 s.
  const reg = await startRegistry({ auth: 'token', username: 'alice', password: 'wonder', refreshTokens: { 'refresh-of-alice': 'alice' }, tokenTtlS: 2 });
  t.after(() => reg.stop());
  const first = buildImage([await buildLayer([{ type: 'file', name: 'one', data: 'identity 1' }])]);
  const second = buildImage([await buildLayer([{ type: 'file', name: 'two', data: 'identity 2' }])]);
  await pushImage(reg, 'oauth/img', 'v1', first);
  await pushImage(reg, 'oauth/img', 'v2', second);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-auth-'));
  const svc = await ImageService.open({ config: { ...defaultConfig(), root_dir: root }, log });
  t.after(async () => {
    await svc.close();
    fs.rmSync(root, { recursive: true, force: true });
  });
  const posts = (): { sub: string; granted: boolean }[] => reg.tokenRequests.filter((r) => r.method === 'POST' && r.grantType === 'refresh_token');

  await assert.rejects(svc.pull(`${reg.host}/oauth/img:v1`, { identity_token: 'not-a-refresh-token' }), (e: unknown) => {
    assert.ok(e instanceof UnauthenticatedError, String(e));
    assert.match((e as Error).message, new RegExp(`registry "${reg.host}"`));
    return true;
  });
  assert.equal(svc.list().length, 0);
  assert.deepEqual(
    posts().map((p) => p.granted),
    [false],
  );

  const rec = await svc.pull(`${reg.host}/oauth/img:v1`, { identity_token: 'refresh-of-alice' });
  assert.equal(rec.id, first.config.digest);
  const granted = posts().filter((p) => p.granted);
  assert.ok(granted.length >= 1 && granted.every((p) => p.sub === 'alice'));
  assert.ok(!reg.tokenRequests.some((r) => r.method === 'GET'), 'no password flow was used');

  // Past the cached token's life, the next pull exchanges the refresh token again.
  const before = granted.length;
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal((await svc.pull(`${reg.host}/oauth/img:v2`, { identity_token: 'refresh-of-alice' })).id, second.config.digest);
  assert.ok(posts().filter((p) => p.granted).length > before, 'a fresh token was fetched');
});
