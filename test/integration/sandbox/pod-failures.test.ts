// Bad input is refused with a clear status before anything is made; a failure half-way
// through RunPodSandbox undoes everything (S5), its CNI allocation included
// (containerd#5768); kubelet retries of the same request wait for the first run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ipamLeases, makePodEnv, mountsWith, podConfig, type PodEnv } from './pod-env.js';

function assertNothingMade(env: PodEnv): void {
  assert.deepEqual(env.pods.list(), [], 'no sandbox in the books');
  const podsState = path.join(env.config.state_dir, 'pods');
  assert.deepEqual(fs.existsSync(podsState) ? fs.readdirSync(podsState) : [], [], 'no pod state dir');
  const podsRoot = path.join(env.config.root_dir, 'pods');
  assert.deepEqual(fs.existsSync(podsRoot) ? fs.readdirSync(podsRoot) : [], [], 'no metadata');
  const netns = path.join(env.config.state_dir, 'netns');
  assert.deepEqual(fs.existsSync(netns) ? fs.readdirSync(netns) : [], [], 'no netns');
  assert.deepEqual(ipamLeases(env.config.state_dir), [], 'no IPAM lease');
  assert.ok(
    !fs.existsSync(path.join('/sys/fs/cgroup/memory', env.config.cgroup_root, env.config.default_cgroup_parent)) ||
      fs
        .readdirSync(path.join('/sys/fs/cgroup/memory', env.config.cgroup_root, env.config.default_cgroup_parent), { withFileTypes: true })
        .filter((d) => d.isDirectory()).length === 0,
    'no pod cgroup',
  );
  // The netns dir itself is a shared mount point for the daemon's lifetime (like /run/netns).
  assert.deepEqual(
    mountsWith(env.dir).filter((m) => m !== netns),
    [],
    'no mount',
  );
}

const BAD: Array<[string, Record<string, unknown>, RegExp]> = [
  ['missing config', {}, /config is required/],
  ['missing metadata', { config: { ...podConfig('x'), metadata: null } }, /config\.metadata is required/],
  ['missing name', { config: { ...podConfig('x'), metadata: { name: '', uid: 'u', namespace: 'n', attempt: 0 } } }, /config\.metadata\.name is required/],
  ['a name with "/"', { config: podConfig('a/b') }, /config\.metadata\.name "a\/b" must not contain/],
  [
    'a namespace with ".."',
    { config: { ...podConfig('x'), metadata: { name: 'x', uid: 'u', namespace: '..', attempt: 0 } } },
    /config\.metadata\.namespace "\.\." must not contain/,
  ],
  [
    'a relative log_directory',
    { config: { ...podConfig('x'), log_directory: 'var/log/pods' } },
    /config\.log_directory "var\/log\/pods" must be an absolute path/,
  ],
  [
    'an unknown handler',
    { config: podConfig('x'), runtime_handler: 'kata' },
    /runtime_handler "kata" is not configured; configured handlers: runc, crun, runsc/,
  ],
  [
    'a sysctl that is not namespaced',
    { config: { ...podConfig('x'), linux: { sysctls: { 'kernel.panic': '1' } } } },
    /linux\.sysctls\["kernel\.panic"\]: sysctl "kernel\.panic" is not namespaced/,
  ],
  [
    'a net sysctl on the host network',
    { config: { ...podConfig('x'), linux: { sysctls: { 'net.ipv4.ip_forward': '1' }, security_context: { namespace_options: { network: 'NODE' } } } } },
    /would change the host/,
  ],
  [
    'a port mapping with an unknown protocol',
    { config: { ...podConfig('x'), port_mappings: [{ protocol: 7, container_port: 80, host_port: 8080, host_ip: '' }] } },
    /config\.port_mappings\[0\]\.protocol 7 is unknown; allowed: TCP, UDP, SCTP/,
  ],
];

test('bad RunPodSandbox input is INVALID_ARGUMENT naming the field, and nothing is made', { timeout: 120_000 }, async (t) => {
  const env = await makePodEnv(t);
  for (const [what, req, re] of BAD) {
    await assert.rejects(env.call('RunPodSandbox', req), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'INVALID_ARGUMENT', `${what}: ${e.message}`);
      assert.match(e.message, re, what);
      return true;
    });
  }
  for (const method of ['StopPodSandbox', 'RemovePodSandbox', 'PodSandboxStatus']) {
    await assert.rejects(env.call(method, { pod_sandbox_id: '../etc' }), { code: 'INVALID_ARGUMENT', message: /pod_sandbox_id "\.\.\/etc" must not contain/ });
  }
  assertNothingMade(env);
});

test('stop and remove of an unknown pod succeed; status of one is NOT_FOUND', { timeout: 60_000 }, async (t) => {
  const env = await makePodEnv(t);
  await env.call('StopPodSandbox', { pod_sandbox_id: 'f'.repeat(64) });
  await env.call('RemovePodSandbox', { pod_sandbox_id: 'f'.repeat(64) });
  await assert.rejects(env.call('PodSandboxStatus', { pod_sandbox_id: 'f'.repeat(64) }), { code: 'NOT_FOUND' });
});

test('a failure after the network is set up undoes everything: no IP lease, netns, cgroup, process or file is left', { timeout: 120_000 }, async (t) => {
  const env = await makePodEnv(t);
  // Namespaced (so it passes validation) but unknown to the kernel: runc create fails
  // after netns, CNI ADD, cgroup and files were made.
  await assert.rejects(
    env.call('RunPodSandbox', { config: { ...podConfig('halfway'), linux: { sysctls: { 'net.ipv4.sandlot_no_such_sysctl': '1' } } }, runtime_handler: 'runc' }),
    (e: Error) => {
      assert.match(
        e.message,
        /running pod sandbox "halfway_sandlot-test_uid-halfway_0": creating container "[0-9a-f]{64}" with runc: runc exited with 1: .*sandlot_no_such_sysctl/,
      );
      return true;
    },
  );
  assertNothingMade(env);
  // The name is free again: the same pod runs now.
  const { pod_sandbox_id: id } = (await env.call('RunPodSandbox', { config: podConfig('halfway') })) as { pod_sandbox_id: string };
  await env.call('RemovePodSandbox', { pod_sandbox_id: id });
  assertNothingMade(env);
});

test('a kubelet retry of the same request waits for the first run and gets its pod; another config gets ALREADY_EXISTS', { timeout: 120_000 }, async (t) => {
  const env = await makePodEnv(t);
  const req = { config: podConfig('retry'), runtime_handler: 'runc' };
  const [a, b] = (await Promise.all([env.call('RunPodSandbox', req), env.call('RunPodSandbox', req)])) as Array<{ pod_sandbox_id: string }>;
  assert.equal(a.pod_sandbox_id, b.pod_sandbox_id);
  assert.equal(env.pods.list().length, 1);
  // After it finished, the same request again still answers with that pod.
  const c = (await env.call('RunPodSandbox', req)) as { pod_sandbox_id: string };
  assert.equal(c.pod_sandbox_id, a.pod_sandbox_id);
  const other = { config: { ...podConfig('retry'), labels: { app: 'different' } }, runtime_handler: 'runc' };
  await assert.rejects(env.call('RunPodSandbox', other), {
    code: 'ALREADY_EXISTS',
    message: `pod sandbox name "retry_sandlot-test_uid-retry_0" is reserved by sandbox "${a.pod_sandbox_id}"`,
  });
  // A new attempt is a new pod.
  const next = (await env.call('RunPodSandbox', {
    ...req,
    config: { ...podConfig('retry'), metadata: { name: 'retry', uid: 'uid-retry', namespace: 'sandlot-test', attempt: 1 } },
  })) as { pod_sandbox_id: string };
  assert.notEqual(next.pod_sandbox_id, a.pod_sandbox_id);
  for (const id of [a.pod_sandbox_id, next.pod_sandbox_id]) await env.call('RemovePodSandbox', { pod_sandbox_id: id });
  assertNothingMade(env);
});
