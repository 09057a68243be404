// CRI Mount.recursive_read_only through the daemon: runc 1.1.5 has no "rro", so the
// daemon clones the source with its submounts (open_tree), makes every mount of the
// clone read-only (mount_setattr AT_RECURSIVE) and hands the runtime a plain read-only
// bind of it (prepared-mounts.ts). A tmpfs mounted under the source refuses writes in
// the container while the host's copy stays writable; a plain read-only bind leaves that
// submount writable under runc (what rro is for; runsc's gofer serves a read-only mount
// read-only all the way down, measured). The CRI's rules (api.proto Mount): readonly and
// PRIVATE propagation, else INVALID_ARGUMENT. S7: nothing stays mounted after removal.
import { status } from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { mountPointsUnder } from '../../../native/index.js';
import { execFileAsync, failure, makeContainerEnv, shellExec } from '../container/container-env.js';

/** A volume source holding a tmpfs submount (`sub`, with a marker file); unmounted at cleanup. */
async function sourceWithSubmount(t: { after(fn: () => Promise<void>): void }, dir: string): Promise<string> {
  fs.mkdirSync(path.join(dir, 'sub'), { recursive: true });
  await execFileAsync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'rro-sub', path.join(dir, 'sub')]);
  t.after(async () => {
    await execFileAsync('umount', ['-l', path.join(dir, 'sub')]).catch(() => undefined);
  });
  fs.writeFileSync(path.join(dir, 'sub', 'marker'), 'submount\n');
  return dir;
}

for (const handler of ['runc', 'runsc']) {
  test(
    `${handler}: a submount of a recursive read-only volume refuses writes in the container, stays writable on the host, and nothing stays mounted after removal`,
    { timeout: 300_000 },
    async (t) => {
      const env = await makeContainerEnv(t);
      const st = await env.d.runtime('Status', {});
      const features = (st as { runtime_handlers: Array<{ name: string; features: { recursive_read_only_mounts: boolean } }> }).runtime_handlers;
      assert.equal(features.find((h) => h.name === handler)?.features.recursive_read_only_mounts, true);

      const pod = await env.runPod(`rro-${handler}`, {}, handler);
      const src = await sourceWithSubmount(t, path.join(env.d.dir, 'rro-src'));
      const id = await env.createContainer(pod, 'rro', {
        command: ['/bin/sh', '-c', 'sleep 3600'],
        mounts: [
          { container_path: '/rro', host_path: src, readonly: true, recursive_read_only: true },
          { container_path: '/ro', host_path: src, readonly: true },
        ],
      });
      await env.d.runtime('StartContainer', { container_id: id }, 120_000);
      const prepared = path.join(env.d.stateDir, 'mounts', id);
      assert.ok((await mountPointsUnder(prepared, { includeDir: true })).length > 0, 'the read-only clone is mounted while the container exists');

      const seen = await shellExec(env, id, 'cat /rro/sub/marker');
      assert.equal(seen.out, 'submount\n', 'the submount is in the volume');
      for (const p of ['/rro/sub/x', '/rro/x']) {
        const w = await shellExec(env, id, `touch ${p}`);
        assert.notEqual(w.code, 0, `touch ${p} must fail: ${w.out}`);
        assert.match(w.out, /Read-only file system/i, `touch ${p}`);
      }
      // The host's copy stays writable, and a plain read-only bind only covers its top mount.
      fs.writeFileSync(path.join(src, 'sub', 'from-host'), 'host\n');
      // runsc (measured): the gofer serves a read-only mount read-only all the way down.
      const plain = await shellExec(env, id, 'touch /ro/sub/plain && echo writable');
      if (handler === 'runc') assert.equal(plain.code, 0, `a plain read-only bind leaves the submount writable (why rro exists): ${plain.out}`);
      else assert.match(plain.out, /Read-only file system/i, 'runsc: a plain read-only mount is read-only below too');

      await env.d.runtime('RemoveContainer', { container_id: id }, 60_000);
      assert.deepEqual(await mountPointsUnder(prepared, { includeDir: true }), []);
      assert.equal(fs.existsSync(prepared), false);
      assert.equal(fs.readFileSync(path.join(src, 'sub', 'marker'), 'utf8'), 'submount\n', 'the source is untouched');
    },
  );

  test(
    `${handler}: recursive_read_only without readonly, or with propagation other than PRIVATE, is INVALID_ARGUMENT naming the mount`,
    { timeout: 300_000 },
    async (t) => {
      const env = await makeContainerEnv(t);
      const pod = await env.runPod(`rro-bad-${handler}`, {}, handler);
      const src = path.join(env.d.dir, 'rro-bad');
      fs.mkdirSync(src);
      const cases: Array<[Record<string, unknown>, RegExp]> = [
        [{ readonly: false }, /config\.mounts\[0\]\.recursive_read_only: needs readonly: true/],
        [
          { readonly: true, propagation: 'PROPAGATION_HOST_TO_CONTAINER' },
          /config\.mounts\[0\]\.recursive_read_only: needs propagation PROPAGATION_PRIVATE, not PROPAGATION_HOST_TO_CONTAINER/,
        ],
      ];
      for (const [extra, want] of cases) {
        const f = await failure(
          env.createContainer(pod, 'rro-bad', { mounts: [{ container_path: '/v', host_path: src, recursive_read_only: true, ...extra }] }),
        );
        assert.equal(f.code, status.INVALID_ARGUMENT, f.details);
        assert.match(f.details, want);
      }
      // A source that does not exist: INVALID_ARGUMENT, and nothing prepared is left.
      const f = await failure(
        env.createContainer(pod, 'rro-missing', {
          mounts: [{ container_path: '/v', host_path: path.join(src, 'nope'), readonly: true, recursive_read_only: true }],
        }),
      );
      assert.equal(f.code, status.INVALID_ARGUMENT, f.details);
      assert.match(f.details, /mounts\[0\]\.host_path: mount source ".*nope" does not exist/);
      assert.deepEqual(await mountPointsUnder(path.join(env.d.stateDir, 'mounts'), { includeDir: true }), []);
      // A failure after the clone was made (the next mount's source is missing) undoes it.
      const g = await failure(
        env.createContainer(pod, 'rro-undo', {
          mounts: [
            { container_path: '/v', host_path: src, readonly: true, recursive_read_only: true },
            { container_path: '/w', host_path: path.join(src, 'nope') },
          ],
        }),
      );
      assert.equal(g.code, status.INVALID_ARGUMENT, g.details);
      assert.match(g.details, /mounts\[1\]\.host_path: mount source ".*nope" does not exist/);
      assert.deepEqual(await mountPointsUnder(path.join(env.d.stateDir, 'mounts'), { includeDir: true }), []);
      const left = path.join(env.d.stateDir, 'mounts');
      assert.deepEqual(fs.existsSync(left) ? fs.readdirSync(left) : [], []);
    },
  );
}
