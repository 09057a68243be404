// The runtime driver and conmon against the real runc/runsc/crun of this machine: a
// catatonit container created under conmon (sync pipe, no sleeps), started, signalled,
// its exit file read, deleted; and the probe telling a working handler from crun here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { defaultConfig } from '../../../src/config/defaults.js';
import { Conmon, readExitFile } from '../../../src/oci/conmon.js';
import { probeContainerId } from '../../../src/oci/runtime.js';
import { createRuntime } from '../../../src/oci/runtimes.js';
import { testCgroupRoot } from '../../helpers/cgroup.js';
import { writeCatatonitBundle } from '../../helpers/catatonit-bundle.js';
import { alive, waitFor } from '../../helpers/wait.js';
import { removeCgroupTree } from '../../../src/sandbox/resources/cgroups.js';

const log = pino({ level: 'silent' });

/** A temp dir removed after every other cleanup step `undo` holds (runtime state lives in it). */
function tmpDir(t: { after: (fn: () => Promise<void>) => void }, undo: Array<() => Promise<unknown>>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-oci-'));
  t.after(async () => {
    for (const fn of undo.reverse()) await fn().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

for (const handler of ['runc', 'runsc']) {
  test(`${handler}: a catatonit container under conmon is created, started, stopped and deleted`, { timeout: 120_000 }, async (t) => {
    const undo: Array<() => Promise<unknown>> = [];
    const dir = tmpDir(t, undo);
    const id = `oci-test-${process.pid}-${handler}`;
    const cgroupsPath = path.join(testCgroupRoot(), `sandlot-oci-test-${process.pid}-${handler}`);
    const runtime = createRuntime({ name: handler, config: defaultConfig().runtimes[handler], stateDir: dir, log });
    await runtime.ensureRoot();
    undo.push(
      () => removeCgroupTree(cgroupsPath),
      () => runtime.delete(id, { force: true }),
    );
    const bundle = writeCatatonitBundle(path.join(dir, 'bundle'), { cgroupsPath });
    const conmon = new Conmon({ path: 'conmon' });
    const created = await conmon.create({
      id,
      name: id,
      runtime,
      bundle,
      containerPidFile: path.join(dir, 'pid'),
      conmonPidFile: path.join(dir, 'conmon.pid'),
      exitDir: path.join(dir, 'exits'),
      logPath: path.join(dir, 'log'),
      socketDir: path.join(dir, 'sock'),
      persistDir: path.join(dir, 'persist'),
      conmonLogFile: path.join(dir, 'conmon.log'),
    });
    assert.ok(created.pid > 0);
    assert.ok(alive(created.conmonPid), 'conmon runs');
    assert.equal((await runtime.state(id))?.status, 'created');
    await runtime.start(id);
    const st = await runtime.state(id);
    assert.equal(st?.status, 'running');
    assert.equal(st?.pid, created.pid);
    // runc: the container has its own PID namespace; runsc: the PID is the sandbox
    // process (gVisor keeps the PID namespace inside its kernel).
    if (handler === 'runsc') assert.match(fs.readFileSync(`/proc/${created.pid}/cmdline`, 'utf8'), /runsc-sandbox|boot/);
    else assert.notEqual(fs.readlinkSync(`/proc/${created.pid}/ns/pid`), fs.readlinkSync('/proc/self/ns/pid'));
    await runtime.kill(id, 'SIGKILL');
    await waitFor('the exit file', async () => (await readExitFile(path.join(dir, 'exits'), id)) !== undefined);
    assert.equal(await readExitFile(path.join(dir, 'exits'), id), 137);
    await waitFor('conmon to exit', () => !alive(created.conmonPid));
    await runtime.delete(id, { force: true });
    assert.equal(await runtime.state(id), undefined);
  });
}

for (const handler of ['runc', 'runsc']) {
  test(
    `${handler}: create without conmon (a pod's infra) leaves the container /dev/null stdio, and a failed one says what the runtime said`,
    { timeout: 120_000 },
    async (t) => {
      const undo: Array<() => Promise<unknown>> = [];
      const dir = tmpDir(t, undo);
      const id = `oci-plain-${process.pid}-${handler}`;
      const cgroupsPath = path.join(testCgroupRoot(), `sandlot-oci-plain-${process.pid}-${handler}`);
      const runtime = createRuntime({ name: handler, config: defaultConfig().runtimes[handler], stateDir: dir, log });
      await runtime.ensureRoot();
      undo.push(
        () => removeCgroupTree(cgroupsPath),
        () => runtime.delete(id, { force: true }),
        () => runtime.delete(`${id}-bad`, { force: true }),
      );
      const bundle = writeCatatonitBundle(path.join(dir, 'bundle'), { cgroupsPath });
      const pidFile = path.join(dir, 'pid');
      await runtime.create(id, bundle, pidFile);
      const pid = Number(fs.readFileSync(pidFile, 'utf8'));
      for (const fd of [0, 1, 2]) assert.equal(fs.readlinkSync(`/proc/${pid}/fd/${fd}`), '/dev/null', `fd ${fd}`);
      await runtime.start(id);
      assert.equal((await runtime.state(id))?.status, 'running');
      await runtime.delete(id, { force: true });
      assert.equal(await runtime.state(id), undefined);

      // What each refuses at create (measured): runc a missing binary, runsc a capability it does not know.
      const spec = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8')) as { process: Record<string, unknown> };
      if (handler === 'runc') spec.process.args = ['/no-such-binary'];
      else spec.process.capabilities = { bounding: ['CAP_PERFMON'] };
      fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(spec));
      await assert.rejects(
        runtime.create(`${id}-bad`, bundle, path.join(dir, 'bad.pid')),
        handler === 'runc'
          ? /creating container "oci-plain-\d+-runc-bad" with runc: runc exited with 1: .*no-such-binary/
          : /creating container "oci-plain-\d+-runsc-bad" with runsc: runsc exited with 128: .*invalid capability \\?"CAP_PERFMON/,
      );
    },
  );
}

test('runc: a create failure comes back through the sync pipe with the runtime message', { timeout: 60_000 }, async (t) => {
  const undo: Array<() => Promise<unknown>> = [];
  const dir = tmpDir(t, undo);
  const runtime = createRuntime({ name: 'runc', config: defaultConfig().runtimes.runc, stateDir: dir, log });
  await runtime.ensureRoot();
  const bundle = path.join(dir, 'bundle');
  fs.mkdirSync(path.join(bundle, 'rootfs'), { recursive: true });
  const cgroupsPath = path.join(testCgroupRoot(), `sandlot-oci-fail-${process.pid}`);
  fs.writeFileSync(
    path.join(bundle, 'config.json'),
    JSON.stringify({
      ociVersion: '1.0.2',
      process: { user: { uid: 0, gid: 0 }, args: ['/no-such-binary'], cwd: '/' },
      root: { path: 'rootfs' },
      mounts: [{ destination: '/proc', type: 'proc', source: 'proc' }],
      linux: { cgroupsPath, namespaces: [{ type: 'mount' }, { type: 'pid' }] },
    }),
  );
  const id = `oci-fail-${process.pid}`;
  undo.push(
    () => removeCgroupTree(cgroupsPath),
    () => runtime.delete(id, { force: true }),
  );
  await assert.rejects(
    new Conmon({ path: 'conmon' }).create({
      id,
      name: id,
      runtime,
      bundle,
      containerPidFile: path.join(dir, 'pid'),
      conmonPidFile: path.join(dir, 'conmon.pid'),
      exitDir: path.join(dir, 'exits'),
      logPath: path.join(dir, 'log'),
      socketDir: path.join(dir, 'sock'),
      persistDir: path.join(dir, 'persist'),
      conmonLogFile: path.join(dir, 'conmon.log'),
    }),
    /creating container "oci-fail-\d+" under conmon: .*no-such-binary/,
  );
});

test('probe: runc and runsc are ready, crun fails here with its hybrid-cgroup message, a missing binary is reported', { timeout: 120_000 }, async (t) => {
  const undo: Array<() => Promise<unknown>> = [];
  const dir = tmpDir(t, undo);
  const cgroupRoot = testCgroupRoot();
  const results: Record<string, { ready: boolean; reason: string; message: string }> = {};
  const configs = { ...defaultConfig().runtimes, nope: { ...defaultConfig().runtimes.runc, path: 'sandlot-no-such-runtime' } };
  for (const [name, config] of Object.entries(configs)) {
    const driver = createRuntime({ name, config, stateDir: dir, log });
    const cgroupsPath = path.join(cgroupRoot, `sandlot-probe-test-${process.pid}-${name}`);
    undo.push(
      () => removeCgroupTree(cgroupsPath),
      () => driver.delete(probeContainerId(name), { force: true }),
    );
    results[name] = await driver.probe({ workDir: path.join(dir, 'probe'), cgroupsPath, catatonitPath: '/usr/bin/catatonit' });
  }
  assert.deepEqual(results.runc, { ready: true, reason: '', message: '' });
  assert.deepEqual(results.runsc, { ready: true, reason: '', message: '' });
  assert.equal(results.crun?.ready, false);
  assert.match(results.crun.message, /hybrid mode not supported/);
  assert.equal(results.nope?.reason, 'RuntimeBinaryNotFound');
});
