// RemoveImage over CRI against the real daemon, on both handlers: an image a
// container uses is refused (FAILED_PRECONDITION naming the container), a pinned
// preloaded image is refused, and once the container is removed the image goes.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { status as Status } from '@grpc/grpc-js';
import { BUSYBOX, failure, makeContainerEnv } from '../container/container-env.js';
import { buildImage, busyboxLayer } from '../../helpers/image-build.js';
import { pushImage, startRegistry, type TestRegistry } from '../../helpers/registry.js';

let reg: TestRegistry;

before(async () => {
  reg = await startRegistry();
});
after(async () => {
  await reg?.stop();
});

for (const handler of ['runc', 'runsc']) {
  test(
    `${handler}: RemoveImage refuses an image a container uses, naming it, and pinned busybox; removes it once the container is gone`,
    { timeout: 300_000 },
    async (t) => {
      const env = await makeContainerEnv(t);
      const img = buildImage([await busyboxLayer()], { config: { Cmd: ['/bin/sh'], Env: ['PATH=/bin'] } });
      await pushImage(reg, `rmi/${handler}`, 'v1', img);
      const ref = `${reg.host}/rmi/${handler}:v1`;
      await env.d.image('PullImage', { image: { image: ref } }, 120_000);

      const pod = await env.runPod(`rmi-${handler}`, {}, handler);
      const ctr = await env.createContainer(pod, 'user', { image: { image: ref }, command: ['/bin/sh', '-c', 'exit 0'] });

      const inUse = await failure(env.d.image('RemoveImage', { image: { image: img.config.digest } }));
      assert.equal(inUse.code, Status.FAILED_PRECONDITION, inUse.details);
      assert.match(inUse.details, new RegExp(`in use by container "${ctr}"`));
      const byTag = await failure(env.d.image('RemoveImage', { image: { image: ref } }));
      assert.equal(byTag.code, Status.FAILED_PRECONDITION, byTag.details);

      const pinned = await failure(env.d.image('RemoveImage', { image: { image: BUSYBOX } }));
      assert.equal(pinned.code, Status.FAILED_PRECONDITION, pinned.details);
      assert.match(pinned.details, /is pinned/);
      assert.equal((await env.d.image('ImageStatus', { image: { image: BUSYBOX } })).image?.pinned, true);

      await env.d.runtime('RemoveContainer', { container_id: ctr }, 120_000);
      await env.d.image('RemoveImage', { image: { image: img.config.digest } });
      assert.equal((await env.d.image('ImageStatus', { image: { image: ref } })).image, null);
    },
  );
}
