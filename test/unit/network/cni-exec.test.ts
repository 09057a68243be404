import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ProcessPluginExecutor } from '../../../src/network/cni-exec.js';
import { CniRunner } from '../../../src/network/cni-runner.js';

function pluginDir(t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-cni-exec-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('a real plugin process gets the CNI env and its config on stdin, and its stdout is the result', async (t) => {
  const dir = pluginDir(t);
  const seen = path.join(dir, 'seen');
  fs.writeFileSync(
    path.join(dir, 'recorder'),
    `#!/bin/sh\nenv | grep '^CNI_' | sort > "${seen}.env"\ncat > "${seen}.stdin"\necho '{"cniVersion":"1.0.0","ips":[{"address":"10.9.0.2/24"}]}'\n`,
    { mode: 0o755 },
  );
  process.env.CNI_STALE = 'from-the-daemon-env';
  t.after(() => delete process.env.CNI_STALE);
  const runner = new CniRunner({ binDirs: [dir], exec: new ProcessPluginExecutor() });
  const list = { name: 'rec', cniVersion: '1.0.0', disableCheck: false, source: 't', plugins: [{ type: 'recorder', x: 1 }] };
  const r = await runner.add(list, {
    containerId: 'abc',
    netns: '/run/x/netns/abc',
    ifName: 'eth0',
    args: [
      ['IgnoreUnknown', '1'],
      ['K8S_POD_NAMESPACE', 'ns1'],
      ['K8S_POD_NAME', 'web'],
      ['K8S_POD_INFRA_CONTAINER_ID', 'abc'],
      ['K8S_POD_UID', 'u-1'],
    ],
    portMappings: [],
  });
  assert.equal(r.ips[0].address, '10.9.0.2/24');
  assert.deepEqual(fs.readFileSync(`${seen}.env`, 'utf8').trim().split('\n'), [
    'CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u-1',
    'CNI_COMMAND=ADD',
    'CNI_CONTAINERID=abc',
    'CNI_IFNAME=eth0',
    'CNI_NETNS=/run/x/netns/abc',
    `CNI_PATH=${dir}`,
  ]);
  assert.deepEqual(JSON.parse(fs.readFileSync(`${seen}.stdin`, 'utf8')), { type: 'recorder', x: 1, name: 'rec', cniVersion: '1.0.0' });
});

test('a plugin that does not answer in time is killed and reported as timed out', async (t) => {
  const dir = pluginDir(t);
  const bin = path.join(dir, 'hang');
  fs.writeFileSync(bin, '#!/bin/sh\nexec sleep 600\n', { mode: 0o755 });
  const run = await new ProcessPluginExecutor().run(bin, {}, '{}', 200);
  assert.equal(run.timedOut, true);
  assert.equal(run.code, null);
});

test('a plugin that exits without reading stdin reports its status', async (t) => {
  const dir = pluginDir(t);
  const bin = path.join(dir, 'quit');
  fs.writeFileSync(bin, '#!/bin/sh\necho \'{"code":4,"msg":"bad config"}\'\nexit 1\n', { mode: 0o755 });
  const run = await new ProcessPluginExecutor().run(bin, {}, 'x'.repeat(1 << 20), 30_000);
  assert.equal(run.code, 1);
  assert.match(run.stdout, /bad config/);
});
