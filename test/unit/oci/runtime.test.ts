import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import type { RuntimeHandlerConfig } from '../../../src/config/types.js';
import { CommandError, type CommandRunner } from '../../../src/oci/command.js';
import { runtimeFeatures, runtimeTypeOf, type RuntimeDriver } from '../../../src/oci/runtime.js';
import { createRuntime } from '../../../src/oci/runtimes.js';
import { usesPortForwardRelay } from '../../../src/sandbox/io/port-forward-relay.js';

const log = pino({ level: 'silent' });

function driver(config: Partial<RuntimeHandlerConfig>, run: CommandRunner): RuntimeDriver {
  return createRuntime({
    name: config.type === 'runsc' ? 'runsc' : 'runc',
    config: { type: 'oci', path: '/bin/true', args: [], network: 'auto', overlay: '', port_forward_relay: false, ...config },
    stateDir: '/run/sandlot-test',
    log,
    run,
  });
}

test("every call carries --root <state>/runtimes/<handler> and the handler's extra args", async () => {
  const calls: string[][] = [];
  const d = driver({ args: ['--debug'] }, (_file, args) => {
    calls.push(args);
    return Promise.resolve({ stdout: '', stderr: '' });
  });
  await d.start('abc');
  await d.kill('abc', 'SIGKILL', { all: true });
  assert.deepEqual(calls, [
    ['--root', '/run/sandlot-test/runtimes/runc', '--debug', 'start', 'abc'],
    ['--root', '/run/sandlot-test/runtimes/runc', '--debug', 'kill', '--all', 'abc', 'SIGKILL'],
  ]);
});

test('runsc: --network=host unless the config asks for the netstack; --overlay2 when set; --oci-seccomp always', () => {
  const noop: CommandRunner = () => Promise.resolve({ stdout: '', stderr: '' });
  assert.deepEqual(driver({ type: 'runsc' }, noop).globalArgs(), ['--root', '/run/sandlot-test/runtimes/runsc', '--network=host', '--oci-seccomp']);
  assert.deepEqual(driver({ type: 'runsc', network: 'sandbox', overlay: 'root:memory' }, noop).globalArgs(), [
    '--root',
    '/run/sandlot-test/runtimes/runsc',
    '--network=sandbox',
    '--overlay2=root:memory',
    '--oci-seccomp',
  ]);
});

test("state of an unknown container is undefined; delete of one succeeds; other failures carry the runtime's words", async () => {
  const missing: CommandRunner = (file, args) => {
    return Promise.reject(new CommandError(file, args, 1, 'container "abc" does not exist', ''));
  };
  const d = driver({}, missing);
  assert.equal(await d.state('abc'), undefined);
  await d.delete('abc', { force: true });
  const broken = driver({}, (file, args) => {
    return Promise.reject(new CommandError(file, args, 1, 'permission denied', ''));
  });
  await assert.rejects(broken.start('abc'), /starting container "abc" with runc: true exited with 1: permission denied/);
});

test('runsc has no update: UNIMPLEMENTED with a message', async () => {
  const d = driver({ type: 'runsc' }, () => Promise.resolve({ stdout: '', stderr: '' }));
  await assert.rejects(d.update('abc', {}), { name: 'UnimplementedError', message: /runsc has no update command/ });
});

test('the probe reports a missing binary without running anything', async () => {
  const d = driver({ path: 'sandlot-no-such-binary' }, () => {
    return Promise.reject(new Error('must not run'));
  });
  const r = await d.probe({ workDir: '/nonexistent', cgroupsPath: '/x', catatonitPath: '/usr/bin/catatonit' });
  assert.equal(r.ready, false);
  assert.equal(r.reason, 'RuntimeBinaryNotFound');
  assert.match(r.message, /binary "sandlot-no-such-binary" not found/);
});

test('runc gets --pid-file, runsc --internal-pid-file (its process has no host PID)', () => {
  const noop: CommandRunner = () => Promise.resolve({ stdout: '', stderr: '' });
  const files = { process: '/s/process.json', pid: '/s/exec.pid' };
  assert.deepEqual(driver({}, noop).execArgs('c1', files), ['exec', '--process', '/s/process.json', '--pid-file', '/s/exec.pid', 'c1']);
  assert.deepEqual(driver({ type: 'runsc' }, noop).execArgs('c1', files), ['exec', '--process', '/s/process.json', '--internal-pid-file', '/s/exec.pid', 'c1']);
});

test('the relay is used when the handler asks for it or runsc runs its own netstack', () => {
  const noop: CommandRunner = () => Promise.resolve({ stdout: '', stderr: '' });
  const d = (type: 'oci' | 'runsc', network: 'auto' | 'host' | 'sandbox', relay: boolean) =>
    usesPortForwardRelay(driver({ type, network, port_forward_relay: relay }, noop));
  assert.equal(d('oci', 'auto', false), false);
  assert.equal(d('oci', 'auto', true), true);
  assert.equal(d('runsc', 'auto', false), false);
  assert.equal(d('runsc', 'sandbox', false), true);
  assert.equal(d('runsc', 'host', true), true);
});

test("each handler type answers what it can do; a stored record's type gives the same answers", () => {
  const noop: CommandRunner = () => Promise.resolve({ stdout: '', stderr: '' });
  const runc = driver({}, noop);
  const runsc = driver({ type: 'runsc' }, noop);
  assert.equal(runc.type, 'oci');
  assert.equal(runsc.type, 'runsc');
  assert.deepEqual(runc.features, runtimeFeatures('oci'));
  assert.deepEqual(runsc.features, runtimeFeatures('runsc'));
  // S1/S12/S14/S15 under runsc: the subcontainer shim, empty container cgroups, tmpfs
  // volumes made by the sandbox from the hints, filestores; runc has none of them.
  assert.equal(runc.features.subcontainerMonitor, 'conmon');
  assert.equal(runsc.features.subcontainerMonitor, 'runsc-shim');
  assert.equal(runc.features.podSharedTmpfs, 'host');
  assert.equal(runsc.features.podSharedTmpfs, 'sandbox');
  assert.deepEqual([runc.features.filestores, runsc.features.filestores], [false, true]);
  assert.deepEqual([runc.features.emptyContainerCgroup, runsc.features.emptyContainerCgroup], [false, true]);
  // S13: runsc reports the container's share itself; runc's figures are its cgroup's.
  assert.deepEqual([runc.features.containerStats, runsc.features.containerStats], ['cgroup', 'runtime']);
  assert.deepEqual([runc.features.updateResources, runsc.features.updateResources], [true, false]);
  assert.deepEqual([runc.features.containerCheckpoint, runsc.features.containerCheckpoint], [true, false]);
  assert.deepEqual([runc.features.bidirectionalPropagation, runsc.features.bidirectionalPropagation], [true, false]);
  assert.deepEqual([runc.features.sandboxOomKills, runsc.features.sandboxOomKills], [false, true]);
});

test("a stored record's runtime type: oci or runsc, anything else is oci", () => {
  assert.equal(runtimeTypeOf('runsc'), 'runsc');
  assert.equal(runtimeTypeOf('oci'), 'oci');
  for (const v of [undefined, null, 'crun', 3, {}]) assert.equal(runtimeTypeOf(v), 'oci');
});

test('runc checkpoint leaves the container running; runsc answers UNIMPLEMENTED without running anything', async () => {
  const calls: string[][] = [];
  const record: CommandRunner = (_file, args) => {
    calls.push(args);
    return Promise.resolve({ stdout: '', stderr: '' });
  };
  await driver({}, record).checkpoint('abc', { imagePath: '/w/checkpoint', workPath: '/w', timeoutMs: 1000 });
  assert.deepEqual(calls, [
    ['--root', '/run/sandlot-test/runtimes/runc', 'checkpoint', '--image-path', '/w/checkpoint', '--work-path', '/w', '--leave-running', 'abc'],
  ]);
  await assert.rejects(driver({ type: 'runsc' }, record).checkpoint('abc', { imagePath: '/x', workPath: '/x', timeoutMs: 1000 }), {
    name: 'UnimplementedError',
    message: /runsc checkpoints whole sandboxes/,
  });
  assert.equal(calls.length, 1);
});

test('stats: runsc reads `events --stats <id>`; runc has none of its own (the cgroup is the source)', async () => {
  const calls: string[][] = [];
  const events: CommandRunner = (_file, args) => {
    calls.push(args);
    return Promise.resolve({
      stdout: '{"type":"stats","id":"c1","data":{"cpu":{"usage":{"total":42}},"memory":{"usage":{"usage":4096}},"pids":{"current":2}}}\n',
      stderr: '',
    });
  };
  assert.deepEqual(await driver({ type: 'runsc' }, events).stats('c1'), { cpuUsageNs: 42n, memoryUsageBytes: 4096, pids: 2 });
  assert.deepEqual(calls, [['--root', '/run/sandlot-test/runtimes/runsc', '--network=host', '--oci-seccomp', 'events', '--stats', 'c1']]);
  assert.equal(await driver({}, events).stats('c1'), undefined);
  assert.equal(calls.length, 1, 'runc runs nothing for stats');
});

test('runc update sends the resources on stdin', async () => {
  const seen: Array<{ args: string[]; input: string | undefined }> = [];
  const d = driver({}, (_file, args, options) => {
    seen.push({ args, input: options?.input });
    return Promise.resolve({ stdout: '', stderr: '' });
  });
  await d.update('abc', { cpu: { shares: 512 } });
  assert.deepEqual(seen, [{ args: ['--root', '/run/sandlot-test/runtimes/runc', 'update', '--resources', '-', 'abc'], input: '{"cpu":{"shares":512}}' }]);
});
