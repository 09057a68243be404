import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError } from '../../../src/errors.js';
import { ALL_CAPABILITIES, computeCapabilities, DEFAULT_CAPABILITIES, knownCapabilities, normalizeCapability } from '../../../src/oci/capabilities.js';

const sorted = (a: readonly string[]): string[] => [...a].sort();

test("the default set is containerd's fourteen", () => {
  const c = computeCapabilities(undefined);
  assert.equal(c.bounding.length, 14);
  assert.deepEqual(sorted(c.bounding), sorted(DEFAULT_CAPABILITIES));
  assert.deepEqual(c.effective, c.bounding);
  assert.deepEqual(c.permitted, c.bounding);
  // CVE-2022-24769: nothing inheritable unless ambient.
  assert.deepEqual(c.inheritable, []);
  assert.deepEqual(c.ambient, []);
});

test('add and drop, with or without the CAP_ prefix, in any case', () => {
  const table: Array<{ add?: string[]; drop?: string[]; has: string[]; lacks: string[]; size?: number }> = [
    { add: ['NET_ADMIN'], has: ['CAP_NET_ADMIN', 'CAP_CHOWN'], lacks: [], size: 15 },
    { add: ['CAP_SYS_TIME', 'sys_nice'], has: ['CAP_SYS_TIME', 'CAP_SYS_NICE'], lacks: [], size: 16 },
    { drop: ['NET_RAW', 'cap_mknod'], has: ['CAP_CHOWN'], lacks: ['CAP_NET_RAW', 'CAP_MKNOD'], size: 12 },
    // a capability both added and dropped ends dropped (drops apply after adds)
    { add: ['NET_ADMIN'], drop: ['NET_ADMIN'], has: [], lacks: ['CAP_NET_ADMIN'], size: 14 },
    // ALL
    { add: ['ALL'], has: ['CAP_SYS_ADMIN', 'CAP_BPF'], lacks: [], size: ALL_CAPABILITIES.length },
    { drop: ['ALL'], has: [], lacks: ['CAP_CHOWN'], size: 0 },
    { drop: ['all'], add: ['NET_BIND_SERVICE'], has: ['CAP_NET_BIND_SERVICE'], lacks: ['CAP_CHOWN'], size: 1 },
    { add: ['ALL'], drop: ['CHOWN'], has: ['CAP_SYS_ADMIN'], lacks: ['CAP_CHOWN'], size: ALL_CAPABILITIES.length - 1 },
  ];
  for (const row of table) {
    const c = computeCapabilities({ add_capabilities: row.add ?? [], drop_capabilities: row.drop ?? [] });
    const name = JSON.stringify(row);
    for (const h of row.has) assert.ok(c.bounding.includes(h), `${name} has ${h}`);
    for (const l of row.lacks) assert.ok(!c.bounding.includes(l), `${name} lacks ${l}`);
    if (row.size !== undefined) assert.equal(c.bounding.length, row.size, name);
    assert.deepEqual(c.effective, c.bounding);
  }
});

test('ambient capabilities are also permitted and inheritable', () => {
  const c = computeCapabilities({ add_ambient_capabilities: ['NET_ADMIN'] });
  assert.deepEqual(c.ambient, ['CAP_NET_ADMIN']);
  assert.deepEqual(c.inheritable, ['CAP_NET_ADMIN']);
  assert.ok(c.permitted.includes('CAP_NET_ADMIN'));
});

test('privileged gets every capability the kernel knows, whatever the drops', () => {
  const c = computeCapabilities({ drop_capabilities: ['ALL'] }, { privileged: true });
  assert.equal(c.bounding.length, 41);
  assert.equal(computeCapabilities(undefined, { privileged: true, lastCap: 37 }).bounding.length, 38);
  assert.deepEqual(knownCapabilities(37).at(-1), 'CAP_AUDIT_READ');
});

test('an unknown capability is INVALID_ARGUMENT naming the field and the name', () => {
  assert.throws(
    () => computeCapabilities({ add_capabilities: ['FLY'] }),
    (e: Error) => e instanceof InvalidArgumentError && e.message === 'linux.security_context.capabilities.add_capabilities: unknown capability "FLY"',
  );
  assert.throws(() => computeCapabilities({ drop_capabilities: ['CAP_'] }), /drop_capabilities: unknown capability "CAP_"/);
  assert.equal(normalizeCapability(' net_raw ', 'x'), 'CAP_NET_RAW');
});
