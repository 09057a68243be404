import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  EMBEDDED_SOURCE,
  configCandidates,
  defaultNetworkList,
  parseNetworkConfig,
  parsePodCidrs,
  selectNetworkConfig,
  type ConfigReader,
} from '../../../src/network/cni-config.js';
import { FailedPreconditionError, InvalidArgumentError } from '../../../src/errors.js';

const fakeReader = (files: Record<string, string>): ConfigReader => ({
  list: () => Object.keys(files).map((f) => f.split('/').pop()!),
  read: (file) => {
    const text = files[file];
    if (text === undefined) throw new Error(`ENOENT ${file}`);
    return text;
  },
});
const fallback = () => defaultNetworkList({ bridge: 'sltest0', subnets: ['10.250.0.0/24'], ipamDataDir: '/s/cni/networks' });

test('config candidates are conflist, conf and json files, sorted by name, no hidden files', () => {
  assert.deepEqual(configCandidates(['99-b.conf', 'README', '10-a.conflist', '.x.conf', '50-c.json', 'x.conf.bak']), [
    '10-a.conflist',
    '50-c.json',
    '99-b.conf',
  ]);
});

test('a conflist keeps its plugins in order', () => {
  const l = parseNetworkConfig(
    JSON.stringify({ cniVersion: '1.0.0', name: 'n', plugins: [{ type: 'bridge' }, { type: 'portmap', capabilities: { portMappings: true } }] }),
    '/d/10.conflist',
  );
  assert.equal(l.name, 'n');
  assert.deepEqual(
    l.plugins.map((p) => p.type),
    ['bridge', 'portmap'],
  );
  assert.equal(l.disableCheck, false);
});

test('a single-plugin conf becomes a one-plugin list without name and cniVersion in the plugin', () => {
  const l = parseNetworkConfig(JSON.stringify({ cniVersion: '0.4.0', name: 'n', type: 'bridge', bridge: 'b0' }), '/d/a.conf');
  assert.equal(l.cniVersion, '0.4.0');
  assert.deepEqual(l.plugins, [{ type: 'bridge', bridge: 'b0' }]);
});

test('bad configs name the file and the field', () => {
  assert.throws(
    () => parseNetworkConfig('{', '/d/x.conflist'),
    (e: unknown) => e instanceof InvalidArgumentError && /"\/d\/x.conflist"/.test(e.message),
  );
  assert.throws(() => parseNetworkConfig('{"cniVersion":"1.0.0","plugins":[{"type":"bridge"}]}', '/d/x.conflist'), /field "name"/);
  assert.throws(() => parseNetworkConfig('{"cniVersion":"1.0.0","name":"n","plugins":[]}', '/d/x.conflist'), /"plugins" must be a non-empty list/);
  assert.throws(() => parseNetworkConfig('{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"../evil"}]}', '/d/x.conflist'), /plugins\[0\]\.type/);
  assert.throws(() => parseNetworkConfig('{"cniVersion":"1.0.0","name":"n"}', '/d/x.conf'), /field "type"/);
});

test('the embedded default has a gateway bridge, host-local under the state dir and no default route', () => {
  const l = fallback();
  assert.equal(l.source, EMBEDDED_SOURCE);
  const bridge = l.plugins[0];
  assert.equal(bridge.type, 'bridge');
  assert.equal(bridge.bridge, 'sltest0');
  assert.equal(bridge.isGateway, true);
  assert.equal(bridge.ipMasq, false);
  assert.equal(bridge.isDefaultGateway, undefined);
  const ipam = bridge.ipam as Record<string, unknown>;
  assert.equal(ipam.type, 'host-local');
  assert.equal(ipam.dataDir, '/s/cni/networks');
  assert.deepEqual(ipam.ranges, [[{ subnet: '10.250.0.0/24' }]]);
  assert.equal(ipam.routes, undefined, 'no routes at all: 0.0.0.0/0 must never be there');
  assert.equal(JSON.stringify(l).includes('0.0.0.0/0'), false);
  assert.deepEqual(l.plugins[1], { type: 'portmap', capabilities: { portMappings: true } });
});

test('selection: no files → embedded default; the first valid file wins; all invalid → failed precondition', () => {
  assert.equal(selectNetworkConfig('/d', fakeReader({}), fallback).list.source, EMBEDDED_SOURCE);
  const good = JSON.stringify({ cniVersion: '1.0.0', name: 'good', plugins: [{ type: 'bridge' }] });
  const sel = selectNetworkConfig('/d', fakeReader({ '/d/20-good.conflist': good, '/d/10-bad.conflist': '{' }), fallback);
  assert.equal(sel.list.name, 'good');
  assert.equal(sel.skipped.length, 1);
  assert.match(sel.skipped[0], /10-bad.conflist/);
  assert.throws(
    () => selectNetworkConfig('/d', fakeReader({ '/d/10-bad.conflist': '{' }), fallback),
    (e: unknown) => e instanceof FailedPreconditionError && /no usable file/.test(e.message),
  );
});

test('pod CIDRs: single, dual stack, empty; bad ones name the value', () => {
  assert.deepEqual(parsePodCidrs('10.244.1.0/24'), ['10.244.1.0/24']);
  assert.deepEqual(parsePodCidrs('10.244.1.0/24, fd00::/64'), ['10.244.1.0/24', 'fd00::/64']);
  assert.deepEqual(parsePodCidrs(''), []);
  assert.throws(
    () => parsePodCidrs('10.244.1.0'),
    (e: unknown) => e instanceof InvalidArgumentError && /"10.244.1.0"/.test(e.message),
  );
  assert.throws(() => parsePodCidrs('10.244.1.0/31'), InvalidArgumentError);
  assert.throws(() => parsePodCidrs('300.1.1.0/24'), InvalidArgumentError);
});
