import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCniError, parseCniResult, podIps, supportsCheck } from '../../../src/network/cni-result.js';
import { InternalError } from '../../../src/errors.js';

const BRIDGE_RESULT_100 = {
  cniVersion: '1.0.0',
  interfaces: [
    { name: 'sltest1', mac: '02:00:00:00:00:01' },
    { name: 'veth1234', mac: '02:00:00:00:00:02' },
    { name: 'eth0', mac: '02:00:00:00:00:03', sandbox: '/run/sandlot/netns/abc' },
  ],
  ips: [
    { interface: 2, address: 'fd00::5/64', gateway: 'fd00::1' },
    { interface: 2, address: '10.88.0.5/16', gateway: '10.88.0.1' },
  ],
  dns: {},
};

test('a 1.0.0 result: the IPv4 address is primary, IPv6 additional, prefixes stripped', () => {
  const r = parseCniResult(JSON.stringify(BRIDGE_RESULT_100), 'x');
  assert.equal(r.cniVersion, '1.0.0');
  assert.equal(r.interfaces[2].sandbox, '/run/sandlot/netns/abc');
  assert.deepEqual(podIps(r), { ip: '10.88.0.5', additionalIps: ['fd00::5'] });
  assert.deepEqual(r.raw, BRIDGE_RESULT_100);
});

test("a 0.4.0 result with version fields, and addresses on host-side interfaces are not the pod's", () => {
  const r = parseCniResult(
    JSON.stringify({
      cniVersion: '0.4.0',
      interfaces: [{ name: 'br0' }, { name: 'eth0', sandbox: '/ns' }],
      ips: [
        { version: '4', interface: 0, address: '10.1.0.1/24' },
        { version: '4', interface: 1, address: '10.1.0.7/24' },
      ],
    }),
    'x',
  );
  assert.deepEqual(podIps(r), { ip: '10.1.0.7', additionalIps: [] });
});

test('a 0.2.0 result with ip4 and ip6', () => {
  const r = parseCniResult(JSON.stringify({ cniVersion: '0.2.0', ip4: { ip: '10.2.0.3/16' }, ip6: { ip: 'fd01::3/64' } }), 'x');
  assert.deepEqual(podIps(r), { ip: '10.2.0.3', additionalIps: ['fd01::3'] });
});

test('an IPv6-only result has an IPv6 primary; no ips gives an empty one', () => {
  assert.equal(podIps(parseCniResult('{"cniVersion":"1.0.0","ips":[{"address":"fd00::9/64"}]}', 'x')).ip, 'fd00::9');
  assert.deepEqual(podIps(parseCniResult('{"cniVersion":"1.0.0"}', 'x')), { ip: '', additionalIps: [] });
});

test('garbage output and bad addresses are internal errors naming the call', () => {
  assert.throws(
    () => parseCniResult('not json', 'running CNI plugin "bridge" ADD'),
    (e: unknown) => e instanceof InternalError && /running CNI plugin "bridge" ADD: parsing result/.test(e.message),
  );
  assert.throws(() => parseCniResult('{"ips":[{"address":"nope/24"}]}', 'x'), /no IP address/);
});

test('plugin error objects are read; other output is not one', () => {
  assert.deepEqual(parseCniError('{"code":7,"msg":"failed to allocate","details":"range full"}'), {
    code: 7,
    msg: 'failed to allocate',
    details: 'range full',
  });
  assert.deepEqual(parseCniError('{"msg":"x"}'), { code: 0, msg: 'x', details: '' });
  assert.equal(parseCniError('panic: oops'), undefined);
  assert.equal(parseCniError('{"cniVersion":"1.0.0"}'), undefined);
});

test('CHECK exists from 0.4.0 on', () => {
  assert.equal(supportsCheck('0.3.1'), false);
  assert.equal(supportsCheck('0.4.0'), true);
  assert.equal(supportsCheck('1.0.0'), true);
  assert.equal(supportsCheck('1.1.0'), true);
});
