import assert from 'node:assert/strict';
import { test } from 'node:test';
import { toCniPortMappings, type PodNetworkRequest } from '../../../src/network/network-manager.js';
import { parseNetDev, validatePodId } from '../../../src/network/netns-store.js';
import { SharedExclusiveLock } from '../../../src/util/shared-exclusive-lock.js';
import { InvalidArgumentError } from '../../../src/errors.js';

const req = (portMappings: PodNetworkRequest['portMappings']): PodNetworkRequest => ({
  podId: 'p1',
  name: 'n',
  namespace: 'ns',
  uid: 'u',
  netnsPath: '/x',
  portMappings,
});

test('port mappings: lowercase protocol, hostIP only when given, no host port → not published', () => {
  assert.deepEqual(
    toCniPortMappings(
      req([
        { protocol: 'TCP', containerPort: 80, hostPort: 8080, hostIp: '' },
        { protocol: 'UDP', containerPort: 53, hostPort: 5353, hostIp: '127.0.0.1' },
        { protocol: 'SCTP', containerPort: 99, hostPort: 0, hostIp: '' },
      ]),
    ),
    [
      { hostPort: 8080, containerPort: 80, protocol: 'tcp' },
      { hostPort: 5353, containerPort: 53, protocol: 'udp', hostIP: '127.0.0.1' },
    ],
  );
});

test('port mappings with an unknown protocol or a bad port name the field and value', () => {
  assert.throws(
    () => toCniPortMappings(req([{ protocol: 'ICMP' as 'TCP', containerPort: 1, hostPort: 1, hostIp: '' }])),
    (e: unknown) => e instanceof InvalidArgumentError && /port_mappings\[0\]\.protocol = "ICMP"/.test(e.message),
  );
  assert.throws(() => toCniPortMappings(req([{ protocol: 'TCP', containerPort: 70000, hostPort: 1, hostIp: '' }])), /container_port = 70000/);
  assert.throws(() => toCniPortMappings(req([{ protocol: 'TCP', containerPort: 0, hostPort: 8080, hostIp: '' }])), /container_port = 0/);
});

test('pod IDs must be safe file names and CNI container IDs', () => {
  validatePodId('a'.repeat(64));
  for (const bad of ['', '../x', 'a/b', '.hidden', 'a b', 'x'.repeat(129)]) {
    assert.throws(() => validatePodId(bad), InvalidArgumentError, bad);
  }
});

test('/proc/net/dev is parsed per interface', () => {
  const text = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     140       2    0    0    0     0          0         0      140       2    0    0    0     0       0          0
  eth0:    1026      11    3    0    0     0          0         0      726       7    4    0    0     0       0          0
`;
  assert.deepEqual(parseNetDev(text), [
    { name: 'lo', rxBytes: 140, rxErrors: 0, txBytes: 140, txErrors: 0 },
    { name: 'eth0', rxBytes: 1026, rxErrors: 3, txBytes: 726, txErrors: 4 },
  ]);
});

test('the shared/exclusive lock lets shared holders overlap and makes exclusive ones wait for them', async () => {
  const lock = new SharedExclusiveLock();
  const events: string[] = [];
  let releaseA!: () => void;
  const a = lock.shared(
    () =>
      new Promise<void>((r) => {
        events.push('a+');
        releaseA = () => {
          events.push('a-');
          r();
        };
      }),
  );
  const record = (e: string) => () => {
    events.push(e);
    return Promise.resolve();
  };
  const b = lock.shared(record('b'));
  const x = lock.exclusive(record('x'));
  const c = lock.shared(record('c'));
  await b;
  assert.deepEqual(events, ['a+', 'b']);
  releaseA();
  await Promise.all([a, x, c]);
  assert.deepEqual(events, ['a+', 'b', 'a-', 'x', 'c']);
});
