// Image volumes (KEP-4639, CRI Mount.image) through the daemon, on both handlers: the
// kubelet pulls, the runtime mounts. The image's filesystem appears read-only at the
// container path (several layers: a read-only overlay; one layer: a read-only bind of
// its snapshot); RemoveImage is refused (FAILED_PRECONDITION naming the container)
// while a container mounts it and succeeds once the container is removed; an image
// that is not present is NOT_FOUND naming it (as containerd answers), leaving nothing.
import { status } from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { mountPointsUnder } from '../../../native/index.js';
import { buildImage, buildLayer } from '../../helpers/image-build.js';
import { pushImage, startRegistry, type TestRegistry } from '../../helpers/registry.js';
import { failure, makeContainerEnv, type ContainerEnv, shellExec } from '../container/container-env.js';

let reg: TestRegistry;
before(async () => {
  reg = await startRegistry();
});
after(async () => {
  await reg?.stop();
});

/** Pushes a data-only image of `layers` (each a list of file name → content) and pulls it; its reference and ID. */
async function dataImage(env: ContainerEnv, repo: string, layers: Array<Record<string, string>>): Promise<{ ref: string; id: string }> {
  const built = [];
  for (const files of layers) built.push(await buildLayer(Object.entries(files).map(([name, data]) => ({ type: 'file' as const, name, data }))));
  const img = buildImage(built, { config: {} });
  await pushImage(reg, repo, 'v1', img);
  const ref = `${reg.host}/${repo}:v1`;
  await env.d.image('PullImage', { image: { image: ref } }, 120_000);
  return { ref, id: img.config.digest };
}

for (const handler of ['runc', 'runsc']) {
  test(
    `${handler}: image volumes show the image's files read-only, and keep the image from RemoveImage until the container is removed`,
    { timeout: 300_000 },
    async (t) => {
      const env = await makeContainerEnv(t);
      const two = await dataImage(env, `vol/${handler}-two`, [{ 'data/hello': 'from layer one\n', 'data/over': 'old\n' }, { 'data/over': 'new\n' }]);
      const one = await dataImage(env, `vol/${handler}-one`, [{ 'data/only': 'single layer\n' }]);
      const pod = await env.runPod(`imgvol-${handler}`, {}, handler);
      const id = await env.createContainer(pod, 'imgvol', {
        command: ['/bin/sh', '-c', 'sleep 3600'],
        mounts: [
          { container_path: '/two', image: { image: two.ref } },
          { container_path: '/one', image: { image: one.ref } },
        ],
      });
      await env.d.runtime('StartContainer', { container_id: id }, 120_000);

      const seen = await shellExec(env, id, 'cat /two/data/hello /two/data/over /one/data/only');
      assert.equal(seen.out, 'from layer one\nnew\nsingle layer\n');
      for (const p of ['/two/x', '/two/data/over', '/one/x', '/one/data/only']) {
        const w = await shellExec(env, id, `echo x >> ${p}`);
        assert.notEqual(w.code, 0, `writing ${p} must fail: ${w.out}`);
        assert.match(w.out, /Read-only file system/i, p);
      }
      // The container's status reports the mounts as asked for.
      const st = await env.status(id);
      assert.deepEqual(
        st.mounts.map((m) => [m.container_path, m.image?.image]),
        [
          ['/two', two.ref],
          ['/one', one.ref],
        ],
      );

      for (const img of [two, one]) {
        const f = await failure(env.d.image('RemoveImage', { image: { image: img.ref } }));
        assert.equal(f.code, status.FAILED_PRECONDITION, f.details);
        assert.match(f.details, new RegExp(`in use by container "${id}"`));
      }
      const volumes = path.join(env.d.rootDir, 'containers', id, 'image-volumes');
      assert.equal((await mountPointsUnder(volumes)).length, 2);

      await env.d.runtime('RemoveContainer', { container_id: id }, 60_000);
      assert.deepEqual(await mountPointsUnder(volumes), []);
      assert.equal(fs.existsSync(volumes), false);
      for (const img of [two, one]) {
        await env.d.image('RemoveImage', { image: { image: img.ref } });
        assert.equal((await env.d.image('ImageStatus', { image: { image: img.ref } })).image, null);
      }
    },
  );

  test(`${handler}: an image volume of an image that is not present is NOT_FOUND naming it, and leaves nothing mounted`, { timeout: 300_000 }, async (t) => {
    const env = await makeContainerEnv(t);
    const pod = await env.runPod(`imgvol-missing-${handler}`, {}, handler);
    const f = await failure(env.createContainer(pod, 'missing', { mounts: [{ container_path: '/v', image: { image: 'example.invalid/not/pulled:v9' } }] }));
    assert.equal(f.code, status.NOT_FOUND, f.details);
    assert.match(f.details, /mounts\[0\]\.image: mounting image "example\.invalid\/not\/pulled:v9": .*not found/);
    const g = await failure(
      env.createContainer(pod, 'subpath', { mounts: [{ container_path: '/v', image: { image: 'example.invalid/x:v1' }, image_sub_path: 'data' }] }),
    );
    assert.equal(g.code, status.UNIMPLEMENTED, g.details);
    assert.match(g.details, /config\.mounts\[0\]\.image_sub_path: "data": sub-paths of image volumes are not supported/);
    assert.deepEqual(
      (await mountPointsUnder(path.join(env.d.rootDir, 'containers'))).filter((p) => p.includes('image-volumes')),
      [],
    );
  });
}
