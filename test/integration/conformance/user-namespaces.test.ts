// S19 pod user namespaces (CRI userns_options mode POD, Kubernetes `hostUsers: false`)
// through the daemon. runc: the pod's user namespace is pinned with the kubelet's
// mappings and owns the pod netns; the infra and the app containers join it; the
// container's root is an unprivileged uid on the host; image layers are idmapped
// through it (never chowned), so image files are root's inside and the rootfs is
// writable; a plain volume gets the mapped owner on the host, an idmapped one (the
// pod's mappings on the mount) keeps the host's owners. runsc: UNIMPLEMENTED
// (gVisor ignores the spec's mappings, measured). Bad mappings: INVALID_ARGUMENT.
import { status } from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { mountPointsUnder } from '../../../native/index.js';
import { failure, makeContainerEnv, shellExec } from '../container/container-env.js';

const HOST_ID = 300_000;
const LENGTH = 65_536;
const USERNS = { mode: 'POD', uids: [{ host_id: HOST_ID, container_id: 0, length: LENGTH }], gids: [{ host_id: HOST_ID, container_id: 0, length: LENGTH }] };
const nsOptions = (userns: unknown): Record<string, unknown> => ({
  linux: { security_context: { namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD', userns_options: userns } } },
});

const hostUid = (pid: number): number => Number(/^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);

test(
  'runc: a pod user namespace maps the container root to an unprivileged host uid, with image files root-owned inside, plain volume writes owned by the mapped uid and idmapped volumes keeping host owners',
  { timeout: 300_000 },
  async (t) => {
    const env = await makeContainerEnv(t);
    const st = (await env.d.runtime('Status', {})) as { runtime_handlers: Array<{ name: string; features: { user_namespaces: boolean } }> };
    assert.equal(st.runtime_handlers.find((h) => h.name === 'runc')?.features.user_namespaces, true);
    assert.equal(st.runtime_handlers.find((h) => h.name === 'runsc')?.features.user_namespaces, false);

    // The container's root (host uid 300000) reaches its rootfs and pod files by path.
    fs.chmodSync(env.d.dir, 0o711);
    const pod = await env.runPod('userns', nsOptions(USERNS), 'runc');
    const vol = path.join(env.d.dir, 'userns-vol');
    fs.mkdirSync(vol, { mode: 0o777 });
    fs.chmodSync(vol, 0o777);
    const idvol = path.join(env.d.dir, 'userns-idvol');
    fs.mkdirSync(idvol, { mode: 0o755 });
    fs.writeFileSync(path.join(idvol, 'root-file'), 'root\n');
    const id = await env.createContainer(pod, 'userns', {
      command: ['/bin/sh', '-c', 'sleep 3600'],
      mounts: [
        { container_path: '/vol', host_path: vol },
        // An idmapped volume (the pod's mappings): what the host's root owns is root's inside.
        { container_path: '/idvol', host_path: idvol, uidMappings: USERNS.uids, gidMappings: USERNS.gids },
      ],
      ...nsOptions(USERNS),
    });
    await env.d.runtime('StartContainer', { container_id: id }, 120_000);

    const inside = await shellExec(
      env,
      id,
      'id -u; id -g; cat /proc/self/uid_map; ls -ln /bin/busybox; touch /rootfs-write && echo rootfs-writable; echo hi > /vol/from-ctr',
    );
    assert.equal(inside.code, 0, inside.out);
    const lines = inside.out.split('\n');
    assert.deepEqual(lines.slice(0, 2), ['0', '0']);
    assert.deepEqual(lines[2].trim().split(/\s+/), ['0', String(HOST_ID), String(LENGTH)]);
    assert.match(lines[3], /^\S+\s+\d+\s+0\s+0\s/, `image files are root's inside: ${lines[3]}`);
    assert.match(inside.out, /rootfs-writable/);

    const idmapped = await shellExec(env, id, 'ls -ln /idvol/root-file; echo x > /idvol/from-ctr && echo idvol-writable');
    assert.match(idmapped.out, /^\S+\s+\d+\s+0\s+0\s/, `the host root's file is root's inside: ${idmapped.out}`);
    assert.match(idmapped.out, /idvol-writable/);
    assert.equal(fs.statSync(path.join(idvol, 'from-ctr')).uid, 0, "through the idmapped volume the container root's write is the host root's");

    const pid = Number((await env.info(id)).pid);
    assert.equal(hostUid(pid), HOST_ID, 'on the host the container runs as the mapped uid');
    assert.equal(fs.statSync(path.join(vol, 'from-ctr')).uid, HOST_ID, 'a volume write gets the mapped owner on the host');

    const podPin = path.join(env.d.stateDir, 'userns', pod);
    assert.ok(fs.existsSync(podPin));
    await env.d.runtime('RemoveContainer', { container_id: id }, 60_000);
    assert.deepEqual(await mountPointsUnder(path.join(env.d.rootDir, 'containers', id)), [], 'no idmapped layer stays mounted');
    assert.deepEqual(await mountPointsUnder(path.join(env.d.stateDir, 'mounts', id)), [], 'no idmapped volume stays mounted');
    await env.d.runtime('StopPodSandbox', { pod_sandbox_id: pod }, 60_000);
    await env.d.runtime('RemovePodSandbox', { pod_sandbox_id: pod }, 60_000);
    assert.equal(fs.existsSync(podPin), false, 'the pinned user namespace goes with the pod');
  },
);

test('runsc: a pod user namespace is UNIMPLEMENTED, saying what gVisor does instead', { timeout: 300_000 }, async (t) => {
  const env = await makeContainerEnv(t);
  const f = await failure(env.runPod('userns-runsc', nsOptions(USERNS), 'runsc'));
  assert.equal(f.code, status.UNIMPLEMENTED, f.details);
  assert.match(f.details, /userns_options\.mode: POD is not supported under runsc: gVisor keeps its own user namespace/);
  assert.deepEqual(fs.existsSync(path.join(env.d.stateDir, 'userns')) ? fs.readdirSync(path.join(env.d.stateDir, 'userns')) : [], []);
});

test(
  'S19: mappings without a user namespace, POD without mappings, and mappings that leave root unmapped are INVALID_ARGUMENT',
  { timeout: 300_000 },
  async (t) => {
    const env = await makeContainerEnv(t);
    const cases: Array<[unknown, RegExp]> = [
      [{ ...USERNS, mode: 'NODE' }, /userns_options: uid\/gid mappings need a user namespace \(mode POD\), not mode NODE \(S19\)/],
      [{ mode: 'POD' }, /userns_options: mode POD needs uids and gids mappings/],
      [{ ...USERNS, uids: [{ host_id: HOST_ID, container_id: 1, length: 10 }] }, /must map the container's root/],
      [{ ...USERNS, gids: [{ host_id: HOST_ID, container_id: 0, length: 0 }] }, /userns_options\.gids\[0\]: .* is not a mapping of length > 0/],
      [{ ...USERNS, mode: 'CONTAINER' }, /userns_options\.mode "CONTAINER" is not supported for user namespaces/],
    ];
    for (const [userns, want] of cases) {
      const f = await failure(env.runPod('userns-bad', nsOptions(userns), 'runc'));
      assert.equal(f.code, status.INVALID_ARGUMENT, f.details);
      assert.match(f.details, want);
    }
    // A container may not ask for a user namespace its pod does not have.
    const pod = await env.runPod('userns-none', {}, 'runc');
    const g = await failure(env.createContainer(pod, 'c', nsOptions(USERNS)));
    assert.equal(g.code, status.INVALID_ARGUMENT, g.details);
    assert.match(g.details, /userns_options\.mode: POD: the pod's user namespace mode is NODE/);
  },
);
