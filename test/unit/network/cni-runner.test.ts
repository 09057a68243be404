import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import type { CniNetworkList } from '../../../src/network/cni-config.js';
import type { PluginExecutor, PluginRun } from '../../../src/network/cni-exec.js';
import { CniRunner, buildPluginConfig, formatCniArgs, type RuntimeConf } from '../../../src/network/cni-runner.js';
import { DeadlineExceededError, FailedPreconditionError, InternalError } from '../../../src/errors.js';

interface Call {
  binary: string;
  env: Record<string, string>;
  conf: Record<string, unknown>;
}

/** Records calls and answers from a per-plugin script. */
class FakeExecutor implements PluginExecutor {
  calls: Call[] = [];
  constructor(private readonly answer: (type: string, cmd: string, conf: Record<string, unknown>) => Partial<PluginRun>) {}
  run(binary: string, env: Record<string, string>, stdin: string): Promise<PluginRun> {
    const conf = JSON.parse(stdin) as Record<string, unknown>;
    this.calls.push({ binary, env, conf });
    return Promise.resolve({ code: 0, stdout: '', stderr: '', timedOut: false, ...this.answer(path.basename(binary), env.CNI_COMMAND, conf) });
  }
}

function binDir(t: { after: (fn: () => void) => void }, types: string[]): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-cni-bin-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  for (const ty of types) fs.writeFileSync(path.join(dir, ty), '#!/bin/sh\nexit 1\n', { mode: 0o755 });
  return dir;
}

const LIST: CniNetworkList = {
  name: 'net1',
  cniVersion: '1.0.0',
  disableCheck: false,
  source: 'test',
  plugins: [{ type: 'bridge', bridge: 'b0', ipam: { type: 'host-local' } }, { type: 'portmap', capabilities: { portMappings: true } }, { type: 'tuning' }],
};
const RT: RuntimeConf = {
  containerId: 'c1',
  netns: '/ns/c1',
  ifName: 'eth0',
  args: [
    ['IgnoreUnknown', '1'],
    ['K8S_POD_NAME', 'p'],
  ],
  portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }],
};
const result = (ip: string) => JSON.stringify({ cniVersion: '1.0.0', interfaces: [{ name: 'eth0', sandbox: '/ns/c1' }], ips: [{ interface: 0, address: ip }] });

test('plugin config gets name, cniVersion, prevResult, and runtimeConfig only for declared capabilities', () => {
  const prev = { cniVersion: '1.0.0', ips: [] };
  const pm = buildPluginConfig(LIST, LIST.plugins[1], prev, RT);
  assert.deepEqual(pm, {
    type: 'portmap',
    capabilities: { portMappings: true },
    name: 'net1',
    cniVersion: '1.0.0',
    prevResult: prev,
    runtimeConfig: { portMappings: RT.portMappings },
  });
  const br = buildPluginConfig(LIST, LIST.plugins[0], undefined, RT);
  assert.equal('runtimeConfig' in br, false);
  assert.equal('prevResult' in br, false);
  assert.equal(formatCniArgs(RT.args), 'IgnoreUnknown=1;K8S_POD_NAME=p');
});

test('ADD runs the plugins in order, chaining each result as the next prevResult, with the CNI env', async (t) => {
  const dir = binDir(t, ['bridge', 'portmap', 'tuning', 'host-local']);
  const exec = new FakeExecutor((type) => ({ stdout: result(type === 'bridge' ? '10.0.0.2/24' : type === 'portmap' ? '10.0.0.3/24' : '10.0.0.4/24') }));
  const runner = new CniRunner({ binDirs: ['/nonexistent', dir], exec });
  const r = await runner.add(LIST, RT);
  assert.deepEqual(
    exec.calls.map((c) => path.basename(c.binary)),
    ['bridge', 'portmap', 'tuning'],
  );
  assert.equal(exec.calls[0].conf.prevResult, undefined);
  assert.deepEqual(exec.calls[1].conf.prevResult, JSON.parse(result('10.0.0.2/24')));
  assert.deepEqual(exec.calls[2].conf.prevResult, JSON.parse(result('10.0.0.3/24')));
  assert.equal(r.ips[0].address, '10.0.0.4/24');
  assert.deepEqual(exec.calls[0].env, {
    CNI_COMMAND: 'ADD',
    CNI_CONTAINERID: 'c1',
    CNI_NETNS: '/ns/c1',
    CNI_IFNAME: 'eth0',
    CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=p',
    CNI_PATH: `/nonexistent:${dir}`,
  });
});

test('a plugin error object becomes an error naming the plugin, command, network and message', async (t) => {
  const dir = binDir(t, ['bridge', 'portmap', 'tuning']);
  const exec = new FakeExecutor((type) =>
    type === 'portmap' ? { code: 1, stdout: '{"code":999,"msg":"iptables failed","details":"exit 4"}' } : { stdout: result('10.0.0.2/24') },
  );
  const runner = new CniRunner({ binDirs: [dir], exec });
  await assert.rejects(runner.add(LIST, RT), (e: unknown) => {
    assert.ok(e instanceof InternalError);
    assert.equal(e.message, 'running CNI plugin "portmap" ADD for network "net1": iptables failed: exit 4 (code 999)');
    return true;
  });
  assert.equal(exec.calls.length, 2, 'no plugin after the failing one runs');
});

test('a plugin dying without an error object reports its status and output', async (t) => {
  const dir = binDir(t, ['bridge', 'portmap', 'tuning']);
  const runner = new CniRunner({ binDirs: [dir], exec: new FakeExecutor(() => ({ code: 2, stderr: 'panic: boom' })) });
  await assert.rejects(runner.add(LIST, RT), /"bridge" ADD for network "net1": exit status 2: panic: boom/);
});

test('a hung plugin is a deadline error', async (t) => {
  const dir = binDir(t, ['bridge', 'portmap', 'tuning']);
  const runner = new CniRunner({ binDirs: [dir], exec: new FakeExecutor(() => ({ code: null, timedOut: true })), timeoutMs: 5 });
  await assert.rejects(runner.add(LIST, RT), (e: unknown) => e instanceof DeadlineExceededError && /no answer within 5 ms/.test(e.message));
});

test('a missing plugin binary is a failed precondition naming the bin dirs', async (t) => {
  const dir = binDir(t, ['bridge']);
  const runner = new CniRunner({ binDirs: [dir], exec: new FakeExecutor(() => ({ stdout: result('10.0.0.2/24') })) });
  assert.deepEqual(runner.missingPlugins(LIST).sort(), ['host-local', 'portmap', 'tuning']);
  await assert.rejects(runner.add(LIST, RT), (e: unknown) => e instanceof FailedPreconditionError && /no executable "portmap" in "/.test(e.message));
});

test('DEL runs every plugin in reverse even when one fails, then reports all failures', async (t) => {
  const dir = binDir(t, ['bridge', 'portmap', 'tuning']);
  const exec = new FakeExecutor((type) => (type === 'bridge' ? {} : { code: 1, stdout: `{"code":11,"msg":"${type} broke"}` }));
  const runner = new CniRunner({ binDirs: [dir], exec });
  const prev = JSON.parse(result('10.0.0.2/24')) as Record<string, unknown>;
  await assert.rejects(runner.del(LIST, RT, prev), (e: unknown) => {
    assert.ok(e instanceof AggregateError);
    assert.match(e.message, /tuning broke.*portmap broke/);
    return true;
  });
  assert.deepEqual(
    exec.calls.map((c) => [path.basename(c.binary), c.env.CNI_COMMAND]),
    [
      ['tuning', 'DEL'],
      ['portmap', 'DEL'],
      ['bridge', 'DEL'],
    ],
  );
  assert.deepEqual(exec.calls[2].conf.prevResult, prev, 'bridge (holding the IPAM lease) still ran, with the cached result');
});

test('CHECK passes the cached result to every plugin; disableCheck and pre-0.4.0 versions skip it', async (t) => {
  const dir = binDir(t, ['bridge', 'portmap', 'tuning']);
  const exec = new FakeExecutor(() => ({}));
  const runner = new CniRunner({ binDirs: [dir], exec });
  const prev = JSON.parse(result('10.0.0.2/24')) as Record<string, unknown>;
  await runner.check(LIST, RT, prev);
  assert.equal(exec.calls.length, 3);
  assert.ok(exec.calls.every((c) => c.env.CNI_COMMAND === 'CHECK' && JSON.stringify(c.conf.prevResult) === JSON.stringify(prev)));
  await runner.check({ ...LIST, disableCheck: true }, RT, prev);
  await runner.check({ ...LIST, cniVersion: '0.3.1' }, RT, prev);
  assert.equal(exec.calls.length, 3);
});

test("portmap's IPv6 CHECK bug (plugins#819) is tolerated only for IPv4-only pods", async (t) => {
  const dir = binDir(t, ['bridge', 'portmap', 'tuning']);
  const bug = { code: 1, stdout: '{"code":999,"msg":"could not check ipv6 dnat: chain CNI-DN-x not found in iptables table nat"}' };
  const runner = new CniRunner({ binDirs: [dir], exec: new FakeExecutor((type) => (type === 'portmap' ? bug : {})) });
  await runner.check(LIST, RT, JSON.parse(result('10.0.0.2/24')) as Record<string, unknown>);
  await assert.rejects(runner.check(LIST, RT, JSON.parse(result('fd00::2/64')) as Record<string, unknown>), /could not check ipv6 dnat/);
  const other = new CniRunner({
    binDirs: [dir],
    exec: new FakeExecutor((type) => (type === 'portmap' ? { code: 1, stdout: '{"code":999,"msg":"could not check ipv4 dnat: gone"}' } : {})),
  });
  await assert.rejects(other.check(LIST, RT, JSON.parse(result('10.0.0.2/24')) as Record<string, unknown>), /ipv4 dnat/);
});
