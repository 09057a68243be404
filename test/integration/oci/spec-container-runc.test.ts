// The app-container spec against the real runc of this machine: a busybox container
// whose spec buildContainerSpec wrote (image user and groups, RuntimeDefault seccomp,
// capability add/drop, read-only rootfs, a read-only bind, a recursive read-only bind,
// env, cwd, cgroup namespace, memory limit) runs, and what it sees inside is what the
// CRI config asked for.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { buildContainerSpec, NODE_SPEC_LOOKUPS, type CriContainerConfig } from '../../../src/oci/spec-container.js';
import { prepareMounts, releasePreparedMounts } from '../../../src/oci/prepared-mounts.js';
import { removeCgroupTree } from '../../../src/sandbox/resources/cgroups.js';
import { testCgroupRoot } from '../../helpers/cgroup.js';

const execFileAsync = promisify(execFile);
const BUSYBOX = '/bin/busybox';
const RUN_TIMEOUT_MS = 60_000;

function busyboxRootfs(dir: string): string {
  const rootfs = path.join(dir, 'rootfs');
  for (const d of ['bin', 'etc', 'data', 'tmp']) fs.mkdirSync(path.join(rootfs, d), { recursive: true });
  fs.copyFileSync(BUSYBOX, path.join(rootfs, 'bin/busybox'));
  fs.chmodSync(path.join(rootfs, 'bin/busybox'), 0o755);
  for (const c of ['sh', 'id', 'cat', 'grep', 'touch', 'echo', 'pwd', 'unshare']) fs.symlinkSync('busybox', path.join(rootfs, 'bin', c));
  fs.writeFileSync(path.join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/data:/bin/sh\n');
  fs.writeFileSync(path.join(rootfs, 'etc/group'), 'root:x:0:\napp:x:1000:\nextra:x:2000:app\n');
  return rootfs;
}

async function runSpec(t: { after: (fn: () => Promise<void>) => void }, config: CriContainerConfig, user: string): Promise<{ code: number; out: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-spec-'));
  const id = `spec-${process.pid}-${Math.floor(Math.random() * 1e6)}`;
  const podCgroup = path.posix.join(testCgroupRoot(), `sandlot-spec-test-${id}`);
  const runcRoot = path.join(dir, 'runc');
  t.after(async () => {
    await execFileAsync('runc', ['--root', runcRoot, 'delete', '--force', id]).catch(() => undefined);
    await removeCgroupTree(podCgroup).catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const rootfs = busyboxRootfs(dir);
  const shared = path.join(dir, 'shared');
  fs.mkdirSync(shared);
  fs.writeFileSync(path.join(shared, 'file'), 'from the host\n');
  const pod = {
    id: 'p'.repeat(64),
    runtimeType: 'oci' as const,
    // No pod infra here: the container gets its own namespaces (host network and IPC).
    namespaces: { network: 'NODE' as const, pid: 'CONTAINER' as const, ipc: 'NODE' as const },
    namespacePaths: {},
    cgroupParent: podCgroup,
    hostname: 'spec-test',
    sysctls: {},
  };
  const withMount: CriContainerConfig = {
    ...config,
    mounts: [
      { container_path: '/shared', host_path: shared, readonly: true },
      { container_path: '/rshared', host_path: shared, readonly: true, recursive_read_only: true },
    ],
  };
  // The recursive read-only bind is made by the daemon (runc 1.1.5 has no "rro").
  // Not under `dir`: its removal is recursive, and must never walk into a mount.
  const mountsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-spec-mounts-'));
  t.after(() => releasePreparedMounts(mountsDir));
  const mounts = await prepareMounts(withMount.mounts ?? [], {
    dir: mountsDir,
    exists: (p) => NODE_SPEC_LOOKUPS.exists(p),
    imageVolume: () => Promise.reject(new Error('no image volumes here')),
  });
  const spec = await buildContainerSpec({
    containerId: id,
    config: { ...withMount, mounts },
    image: { User: user, Env: ['PATH=/bin', 'FROM_IMAGE=1'], WorkingDir: '/data' },
    pod,
    rootfs,
    lookups: NODE_SPEC_LOOKUPS,
  });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(spec));
  try {
    const { stdout } = await execFileAsync('runc', ['--root', runcRoot, 'run', '--bundle', dir, id], { timeout: RUN_TIMEOUT_MS });
    return { code: 0, out: stdout };
  } catch (e: unknown) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    if (typeof err.code !== 'number') throw e;
    return { code: err.code, out: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

const SCRIPT = [
  'id',
  'pwd',
  'echo "env:$FROM_IMAGE:$A:$HOSTNAME"',
  'grep -E "^(Seccomp|CapBnd|NoNewPrivs):" /proc/self/status',
  'cat /shared/file',
  'touch /shared/x 2>/dev/null && echo shared-writable || echo shared-readonly',
  'touch /rshared/x 2>/dev/null && echo rshared-writable || echo rshared-readonly',
  'touch /tmp/x 2>/dev/null && echo root-writable || echo root-readonly',
  'unshare -n true 2>/dev/null && echo unshare-allowed || echo unshare-denied',
  'cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max',
].join('; ');

test('runc runs the spec and the container sees the user, groups, env, seccomp, capabilities and read-only mounts asked for', async (t) => {
  const { code, out } = await runSpec(
    t,
    {
      metadata: { name: 'app' },
      command: ['sh', '-c', SCRIPT],
      envs: [{ key: 'A', value: 'b' }],
      linux: {
        resources: { memory_limit_in_bytes: String(64 * 1024 * 1024) },
        security_context: {
          readonly_rootfs: true,
          no_new_privs: true,
          seccomp: { profile_type: 'RuntimeDefault' },
          capabilities: { drop_capabilities: ['ALL'], add_capabilities: ['CHOWN', 'SYS_ADMIN'] },
          supplemental_groups: ['3000'],
        },
      },
    },
    'app',
  );
  assert.equal(code, 0, out);
  assert.match(out, /uid=1000\(app\) gid=1000\(app\) groups=1000\(app\),2000\(extra\),3000/);
  assert.match(out, /^\/data$/m);
  assert.match(out, /env:1:b:spec-test/);
  assert.match(out, /Seccomp:\s+2/);
  assert.match(out, /NoNewPrivs:\s+1/);
  // CAP_CHOWN (bit 0) | CAP_SYS_ADMIN (bit 21)
  assert.match(out, /CapBnd:\s+0000000000200001/);
  assert.match(out, /from the host/);
  assert.match(out, /shared-readonly/);
  assert.match(out, /rshared-readonly/);
  assert.match(out, /root-readonly/);
  assert.match(out, /^67108864$|^max$/m);
});

test('RuntimeDefault seccomp denies unshare without CAP_SYS_ADMIN; the root user of an image without a User', async (t) => {
  const { code, out } = await runSpec(
    t,
    {
      metadata: { name: 'app' },
      command: ['sh', '-c', SCRIPT],
      linux: { security_context: { seccomp: { profile_type: 'RuntimeDefault' } } },
    },
    '',
  );
  assert.equal(code, 0, out);
  assert.match(out, /uid=0\(root\) gid=0\(root\)/);
  assert.match(out, /unshare-denied/);
  assert.match(out, /root-writable/);
  assert.match(out, /CapBnd:\s+00000000a80425fb/);
});
