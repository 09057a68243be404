// CRI mount propagation (api/cri.proto MountPropagation) through the daemon: a mount made
// on the host under a volume's source appears in the container for HOST_TO_CONTAINER
// and BIDIRECTIONAL, not for PRIVATE; one made in the container appears on the host for
// BIDIRECTIONAL only. A source whose host mount does not propagate is refused at
// CreateContainer, naming the mount (containerd's ensureShared/ensureSharedOrSlave).
// runsc (measured): PRIVATE and HOST_TO_CONTAINER behave as under runc (host mounts
// reach the sandbox through the gofer), but a mount made in the sandbox stays in the
// sentry and never reaches the host, and runsc refuses "rshared": BIDIRECTIONAL is
// UNIMPLEMENTED there, saying why.
import { status } from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { execFileAsync, failure, makeContainerEnv, type ContainerEnv } from '../container/container-env.js';

const PROPAGATIONS = ['PROPAGATION_PRIVATE', 'PROPAGATION_HOST_TO_CONTAINER', 'PROPAGATION_BIDIRECTIONAL'] as const;
type Propagation = (typeof PROPAGATIONS)[number];

/** A directory bind-mounted on itself with the given propagation; unmounted (recursively) at cleanup. */
async function volumeSource(t: { after(fn: () => Promise<void>): void }, dir: string, make: 'shared' | 'private'): Promise<string> {
  fs.mkdirSync(dir, { recursive: true });
  await execFileAsync('mount', ['--bind', dir, dir]);
  t.after(async () => {
    await execFileAsync('umount', ['-R', '-l', dir]).catch(() => undefined);
  });
  await execFileAsync('mount', [`--make-${make}`, dir]);
  for (const sub of ['from-host', 'from-ctr']) fs.mkdirSync(path.join(dir, sub));
  return dir;
}

async function exec(env: ContainerEnv, id: string, script: string): Promise<{ code: number; out: string }> {
  const r = await env.d.runtime('ExecSync', { container_id: id, cmd: ['/bin/sh', '-c', script], timeout: 30 }, 60_000);
  return { code: r.exit_code, out: `${Buffer.from(r.stdout).toString()}${Buffer.from(r.stderr).toString()}` };
}

const mounted = (dir: string): boolean =>
  fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4] === dir);

for (const handler of ['runc', 'runsc']) {
  test(
    `${handler}: host mounts reach HOST_TO_CONTAINER${handler === 'runc' ? ' and BIDIRECTIONAL' : ''} volumes, container mounts reach the host from BIDIRECTIONAL only${handler === 'runsc' ? ' (UNIMPLEMENTED under runsc)' : ''}, PRIVATE sees neither`,
    { timeout: 300_000 },
    async (t) => {
      const env = await makeContainerEnv(t);
      const pod = await env.runPod(`prop-${handler}`, {}, handler);
      const ids = new Map<Propagation, { id: string; src: string }>();
      for (const p of PROPAGATIONS) {
        const src = await volumeSource(t, path.join(env.d.dir, `vol-${p.toLowerCase()}`), 'shared');
        const create = env.createContainer(pod, p.toLowerCase().replace(/_/g, '-'), {
          command: ['/bin/sh', '-c', 'sleep 3600'],
          mounts: [{ container_path: '/vol', host_path: src, propagation: p }],
          linux: { security_context: { capabilities: { add_capabilities: ['SYS_ADMIN'] } } },
        });
        if (handler === 'runsc' && p === 'PROPAGATION_BIDIRECTIONAL') {
          const f = await failure(create);
          assert.equal(f.code, status.UNIMPLEMENTED, f.details);
          assert.match(
            f.details,
            /mounts\[0\]\.propagation: PROPAGATION_BIDIRECTIONAL is not supported under runsc \(mounts made in a gVisor sandbox never reach the host\)/,
          );
          continue;
        }
        const id = await create;
        await env.d.runtime('StartContainer', { container_id: id }, 120_000);
        ids.set(p, { id, src });
      }
      for (const [p, { id, src }] of ids) {
        // Host → container: a tmpfs mounted under the source after the container started.
        await execFileAsync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'h2c', path.join(src, 'from-host')]);
        fs.writeFileSync(path.join(src, 'from-host', 'marker'), 'host\n');
        const seen = await exec(env, id, 'cat /vol/from-host/marker');
        assert.equal(
          seen.code === 0 && seen.out.includes('host'),
          p !== 'PROPAGATION_PRIVATE',
          `${p}: host mount seen in the container: ${JSON.stringify(seen)}`,
        );
        // Container → host.
        const m = await exec(env, id, 'mount -t tmpfs -o size=1m c2h /vol/from-ctr && echo ctr > /vol/from-ctr/marker && echo done');
        assert.equal(m.code, 0, `${p}: mounting in the container: ${m.out}`);
        const back = fs.existsSync(path.join(src, 'from-ctr', 'marker'));
        assert.equal(back, p === 'PROPAGATION_BIDIRECTIONAL', `${p}: container mount seen on the host`);
        if (back) assert.ok(mounted(path.join(src, 'from-ctr')));
      }
    },
  );

  test(
    `${handler}: ${handler === 'runc' ? 'BIDIRECTIONAL on a private host mount, and HOST_TO_CONTAINER on one, fail' : 'HOST_TO_CONTAINER on a private host mount fails'} CreateContainer naming the mount`,
    { timeout: 300_000 },
    async (t) => {
      const env = await makeContainerEnv(t);
      const pod = await env.runPod(`prop-bad-${handler}`, {}, handler);
      const src = await volumeSource(t, path.join(env.d.dir, 'vol-private'), 'private');
      for (const p of handler === 'runc'
        ? (['PROPAGATION_BIDIRECTIONAL', 'PROPAGATION_HOST_TO_CONTAINER'] as const)
        : (['PROPAGATION_HOST_TO_CONTAINER'] as const)) {
        const f = await failure(env.createContainer(pod, `bad-${p.length}`, { mounts: [{ container_path: '/vol', host_path: src, propagation: p }] }));
        assert.equal(f.code, status.INVALID_ARGUMENT, f.details);
        assert.match(f.details, new RegExp(`mounts\\[0\\]\\.propagation: ${p} needs a shared (or slave )?mount, but "${src}" is on "${src}", a private mount`));
      }
      // PRIVATE is fine there.
      const ok = await env.createContainer(pod, 'private-ok', { mounts: [{ container_path: '/vol', host_path: src, propagation: 'PROPAGATION_PRIVATE' }] });
      await env.d.runtime('RemoveContainer', { container_id: ok }, 60_000);
    },
  );
}
