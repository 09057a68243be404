// S19 pod user namespaces: the kubelet's mappings checked and turned into the OCI form.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidArgumentError } from '../../../src/errors.js';
import { hostIdOf, podUserNamespace, rootfsIdmapOf } from '../../../src/oci/user-namespace.js';

const F = 'userns_options';
const map = (host_id: number, container_id: number, length: number) => ({ host_id, container_id, length });

test('mode NODE without mappings is no user namespace; POD gives OCI mappings', () => {
  assert.equal(podUserNamespace(undefined, F), undefined);
  assert.equal(podUserNamespace({ mode: 'NODE' }, F), undefined);
  assert.deepEqual(podUserNamespace({ mode: 'POD', uids: [map(100000, 0, 65536)], gids: [map(200000, 0, 65536)] }, F), {
    uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
    gidMappings: [{ containerID: 0, hostID: 200000, size: 65536 }],
  });
});

test('S19: mappings without a user namespace, POD without mappings, unmapped root, empty or overflowing ranges are INVALID_ARGUMENT', () => {
  const bad: Array<[Parameters<typeof podUserNamespace>[0], RegExp]> = [
    [{ mode: 'NODE', uids: [map(1, 0, 1)] }, /need a user namespace \(mode POD\), not mode NODE \(S19\)/],
    [{ mode: 'POD', uids: [map(1, 0, 1)] }, /mode POD needs uids and gids mappings/],
    [{ mode: 'POD', uids: [map(1, 5, 1)], gids: [map(1, 0, 1)] }, /must map the container's root/],
    [{ mode: 'POD', uids: [map(1, 0, 0)], gids: [map(1, 0, 1)] }, /uids\[0\]: .* is not a mapping of length > 0/],
    [{ mode: 'POD', uids: [map(0xffffffff, 0, 2)], gids: [map(1, 0, 1)] }, /within 32-bit IDs/],
    [{ mode: 'TARGET', uids: [map(1, 0, 1)], gids: [map(1, 0, 1)] }, /mode "TARGET" is not supported for user namespaces/],
  ];
  for (const [opt, want] of bad)
    assert.throws(
      () => podUserNamespace(opt, F),
      (e: unknown) => e instanceof InvalidArgumentError && want.test(e.message),
    );
});

test('the host IDs of the container root and of an ID in a later range', () => {
  const ms = [
    { containerID: 0, hostID: 100000, size: 10 },
    { containerID: 10, hostID: 500000, size: 5 },
  ];
  assert.equal(hostIdOf(0, ms), 100000);
  assert.equal(hostIdOf(12, ms), 500002);
  assert.throws(() => hostIdOf(15, ms), /ID 15 is not mapped/);
  assert.deepEqual(rootfsIdmapOf({ uidMappings: ms, gidMappings: [{ containerID: 0, hostID: 7, size: 1 }] }, 42), {
    usernsPath: '/proc/42/ns/user',
    rootUid: 100000,
    rootGid: 7,
  });
});
