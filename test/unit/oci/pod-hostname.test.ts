// Issue 10 item 1: the pod's host name, containerd's rule.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError } from '../../../src/errors.js';
import { HOST_NAME_MAX, podHostname, sandboxSpec, type SandboxSpecInput } from '../../../src/oci/spec-sandbox.js';

test("a given hostname is kept; an empty one is the node's (never the pod name, which may be 253 bytes)", () => {
  assert.equal(podHostname('web-0', 'node-a'), 'web-0');
  assert.equal(podHostname('', 'node-a'), 'node-a');
  assert.equal(podHostname('h'.repeat(HOST_NAME_MAX), 'node-a'), 'h'.repeat(64));
  assert.equal(podHostname('a.b-c', 'node-a'), 'a.b-c');
});

test('a hostname over 64 bytes is INVALID_ARGUMENT naming config.hostname and the value', () => {
  const long = 'h'.repeat(65);
  assert.throws(
    () => podHostname(long, 'node-a'),
    (e: Error) => e instanceof InvalidArgumentError && e.message === `config.hostname "${long}" is longer than 64 bytes`,
  );
  // bytes, not characters
  assert.throws(() => podHostname('é'.repeat(33), 'node-a'), /longer than 64 bytes/);
});

test('no valid host name is INVALID_ARGUMENT', () => {
  for (const bad of ['-a', 'a-', 'a b', 'a_b', 'a/b']) {
    assert.throws(
      () => podHostname(bad, 'node'),
      (e: Error) => e instanceof InvalidArgumentError && /config\.hostname .* is no valid host name/.test(e.message),
      bad,
    );
  }
});

function infra(over: Partial<SandboxSpecInput>): { hostname?: string; mounts: Array<{ destination: string; options?: string[] }> } {
  return sandboxSpec({
    id: 'a'.repeat(64),
    hostname: 'node-a',
    rootfs: '/r',
    catatonitPath: '/usr/bin/catatonit',
    namespaces: { network: 'POD', pid: 'POD', ipc: 'POD' },
    netnsPath: '/run/netns/x',
    sysctls: {},
    cgroupsPath: '/sandlot/p/x',
    podCgroup: '/sandlot/p',
    annotations: {},
    oomScoreAdj: -998,
    runtimeType: 'oci',
    ...over,
  }) as never;
}

test('a host-network pod: runc shares the node\'s UTS namespace (no hostname), runsc is told the name (gVisor says "?" otherwise)', () => {
  const host = { namespaces: { network: 'NODE', pid: 'POD', ipc: 'POD' } } as const;
  assert.equal(infra({ ...host }).hostname, undefined);
  assert.equal(infra({ ...host, runtimeType: 'runsc' }).hostname, 'node-a');
  assert.equal(infra({}).hostname, 'node-a');
});

test("the infra mounts sysfs read-write: the first sysfs of a netns decides its superblock, a privileged container's /sys too", () => {
  assert.ok(
    infra({})
      .mounts.find((m) => m.destination === '/sys')
      ?.options?.includes('rw'),
  );
});
