// CreateContainer's bad input, each with its status and nothing left behind (S5), and
// the kubelet's retry of a create in progress (same ID, not ALREADY_EXISTS).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { containerConfig, failure, makeContainerEnv, podConfig, type ContainerEnv } from './container-env.js';

/** No container metadata, runtime files, rootfs mounts or monitors are left. */
function assertNothingLeft(env: ContainerEnv, keep: string[] = []): void {
  const dirs = [path.join(env.d.rootDir, 'containers'), path.join(env.d.stateDir, 'containers')];
  for (const dir of dirs) {
    const left = fs.existsSync(dir) ? fs.readdirSync(dir).filter((n) => !keep.includes(n)) : [];
    assert.deepEqual(left, [], `nothing left in ${dir}`);
  }
  const exits = path.join(env.d.stateDir, 'container-exits');
  assert.deepEqual(fs.existsSync(exits) ? fs.readdirSync(exits).filter((n) => !keep.includes(n)) : [], []);
  const mounts = fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '');
  assert.deepEqual(
    mounts.filter((m) => m.startsWith(path.join(env.d.rootDir, 'containers')) && !keep.some((k) => m.includes(k))),
    [],
  );
}

test('CreateContainer bad input: each a clear status, nothing left behind', { timeout: 180_000 }, async (t) => {
  const env = await makeContainerEnv(t);
  const pod = await env.runPod('bad');
  const create = (config: Record<string, unknown>, podId = pod): Promise<{ code: number; details: string }> =>
    failure(env.d.runtime('CreateContainer', { pod_sandbox_id: podId, config, sandbox_config: podConfig('bad', env.logDir) }, 60_000));

  const unknownPod = await create(containerConfig('c'), 'a'.repeat(64));
  assert.equal(unknownPod.code, GrpcStatus.NOT_FOUND);
  assert.match(unknownPod.details, /sandbox "a{64}" not found/);

  const noImage = await create(containerConfig('c', { image: { image: 'example.invalid/nothing:1' } }));
  assert.equal(noImage.code, GrpcStatus.NOT_FOUND);
  assert.match(noImage.details, /example\.invalid\/nothing:1/);

  const dotdot = await create(containerConfig('c', { log_path: '../../etc/evil.log' }));
  assert.equal(dotdot.code, GrpcStatus.INVALID_ARGUMENT);
  assert.match(dotdot.details, /config\.log_path "\.\.\/\.\.\/etc\/evil\.log"/);

  const missing = await create(containerConfig('c', { mounts: [{ container_path: '/data', host_path: '/nonexistent/sandlot-test-src' }] }));
  assert.equal(missing.code, GrpcStatus.INVALID_ARGUMENT);
  assert.match(missing.details, /\/nonexistent\/sandlot-test-src/);

  const user = await create(containerConfig('c', { linux: { security_context: { run_as_username: 'nosuchuser' } } }));
  assert.equal(user.code, GrpcStatus.INVALID_ARGUMENT);
  assert.match(user.details, /nosuchuser/);

  const negative = await create(containerConfig('c', { linux: { resources: { memory_limit_in_bytes: -1 } } }));
  assert.equal(negative.code, GrpcStatus.INVALID_ARGUMENT);
  assert.match(negative.details, /memory_limit_in_bytes/);
  const negCpu = await create(containerConfig('c', { linux: { resources: { cpu_shares: -2 } } }));
  assert.equal(negCpu.code, GrpcStatus.INVALID_ARGUMENT);

  assertNothingLeft(env);

  // Duplicate name in the pod (a different config): ALREADY_EXISTS.
  const first = await env.createContainer(pod, 'dup');
  const dup = await create(containerConfig('dup', { command: ['/bin/sh', '-c', 'echo other'] }));
  assert.equal(dup.code, GrpcStatus.ALREADY_EXISTS);
  assert.match(dup.details, new RegExp(`reserved by container "${first}"`));
  assertNothingLeft(env, [first]);

  // A stopped pod takes no new containers.
  await env.d.runtime('StopPodSandbox', { pod_sandbox_id: pod }, 60_000);
  const notReady = await create(containerConfig('late'));
  assert.equal(notReady.code, GrpcStatus.FAILED_PRECONDITION);
  assert.match(notReady.details, /in state stopped/);
  // StopPodSandbox stopped the pod's container; RemovePodSandbox removes it.
  assert.equal((await env.status(first)).state, 'CONTAINER_EXITED');
  await env.d.runtime('RemovePodSandbox', { pod_sandbox_id: pod }, 60_000);
  const gone = await failure(env.d.runtime('ContainerStatus', { container_id: first }));
  assert.equal(gone.code, GrpcStatus.NOT_FOUND);
  assertNothingLeft(env);
});

test('a retried CreateContainer while the first is in progress gets the same ID', { timeout: 180_000 }, async (t) => {
  const env = await makeContainerEnv(t);
  const pod = await env.runPod('retry');
  const req = { pod_sandbox_id: pod, config: containerConfig('same'), sandbox_config: podConfig('retry', env.logDir) };
  const [a, b] = await Promise.all([env.d.runtime('CreateContainer', req, 60_000), env.d.runtime('CreateContainer', req, 60_000)]);
  assert.equal(a.container_id, b.container_id);
  // Done and still created: the same request again gets it too.
  const c = await env.d.runtime('CreateContainer', req, 60_000);
  assert.equal(c.container_id, a.container_id);
  const list = (await env.d.runtime('ListContainers', { filter: { pod_sandbox_id: pod } })) as { containers: unknown[] };
  assert.equal(list.containers.length, 1);
  const info = await env.info(a.container_id);
  env.pids.push(Number(info.pid), Number(info.conmonPid));

  // Filters: id prefix, state, labels.
  const id = a.container_id;
  const byPrefix = (await env.d.runtime('ListContainers', { filter: { id: id.slice(0, 12) } })) as { containers: Array<{ id: string }> };
  assert.deepEqual(
    byPrefix.containers.map((x) => x.id),
    [id],
  );
  const running = (await env.d.runtime('ListContainers', { filter: { state: { state: 'CONTAINER_RUNNING' } } })) as { containers: unknown[] };
  assert.equal(running.containers.length, 0);
  const created = (await env.d.runtime('ListContainers', { filter: { state: { state: 'CONTAINER_CREATED' }, label_selector: { container: 'same' } } })) as {
    containers: unknown[];
  };
  assert.equal(created.containers.length, 1);
  const otherLabel = (await env.d.runtime('ListContainers', { filter: { label_selector: { container: 'other' } } })) as { containers: unknown[] };
  assert.equal(otherLabel.containers.length, 0);
  const status = await env.d.runtime('ContainerStatus', { container_id: id.slice(0, 10) });
  assert.equal((status.status as { id: string }).id, id, 'status takes a unique prefix');
});
