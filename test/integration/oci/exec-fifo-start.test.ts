// RuntimeDriver.start without a `runc start` process (issue 13, src/oci/exec-fifo.ts),
// against the real runc and runsc of this machine, each container created under conmon
// as the daemon does: the probe qualifies runc (its created probe container waits on
// <root>/<id>/exec.fifo and runs once that is read) and not runsc, which keeps
// `runsc start`; a created runc container started in-process runs its process and the
// runtime says so; a second start, an init killed before the start and an init killed
// during the handshake give errors, never a hang, and leave no fd, process or state.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { defaultConfig } from '../../../src/config/defaults.js';
import { runCommand, type CommandRunner } from '../../../src/oci/command.js';
import { Conmon, readExitFile, signalContainerInit } from '../../../src/oci/conmon.js';
import { awaitSignalReady, RUNC_INIT_COMM } from '../../../src/oci/exec-fifo.js';
import { probeContainerId, type RuntimeDriver } from '../../../src/oci/runtime.js';
import { CliRuntime } from '../../../src/oci/runtime-cli.js';
import { createRuntime } from '../../../src/oci/runtimes.js';
import { removeCgroupTree } from '../../../src/sandbox/resources/cgroups.js';
import { testCgroupRoot } from '../../helpers/cgroup.js';
import { writeCatatonitBundle } from '../../helpers/catatonit-bundle.js';
import { alive, holds, waitFor } from '../../helpers/wait.js';

const log = pino({ level: 'silent' });

interface Rig {
  dir: string;
  runtime: RuntimeDriver;
  /** The runtime subcommands run as processes (`start`, `state` …), in order. */
  subcommands: string[];
  undo: Array<() => Promise<unknown>>;
}

/** A probed driver of `handler` with its state in a temp dir; everything undone after the test. */
async function rig(t: TestContext, handler: 'runc' | 'runsc'): Promise<Rig> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-fifo-'));
  const undo: Array<() => Promise<unknown>> = [];
  t.after(async () => {
    for (const fn of undo.reverse()) await fn().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const subcommands: string[] = [];
  const run: CommandRunner = (file, args, opts) => {
    // `--root <dir>`, then the global flags, then the subcommand.
    subcommands.push(args.slice(2).find((a) => !a.startsWith('-')) ?? '');
    return runCommand(file, args, opts);
  };
  const runtime = createRuntime({ name: handler, config: defaultConfig().runtimes[handler], stateDir: dir, log, run });
  const probeCgroup = path.join(testCgroupRoot(), `sandlot-fifo-probe-${process.pid}-${handler}`);
  undo.push(
    () => removeCgroupTree(probeCgroup),
    () => runtime.delete(probeContainerId(handler), { force: true }),
  );
  const probed = await runtime.probe({ workDir: path.join(dir, 'probe'), cgroupsPath: probeCgroup, catatonitPath: '/usr/bin/catatonit' });
  assert.deepEqual(probed, { ready: true, reason: '', message: '' });
  subcommands.length = 0;
  return { dir, runtime, subcommands, undo };
}

interface Made {
  id: string;
  pid: number;
  conmonPid: number;
  exitDir: string;
}

/** A catatonit container created under conmon (as the daemon creates them). */
async function createUnderConmon(r: Rig, name: string): Promise<Made> {
  const id = `fifo-${process.pid}-${name}`;
  const cgroupsPath = path.join(testCgroupRoot(), `sandlot-${id}`);
  const bundle = path.join(r.dir, `${id}.bundle`);
  writeCatatonitBundle(bundle, { cgroupsPath });
  r.undo.push(
    () => removeCgroupTree(cgroupsPath),
    () => r.runtime.delete(id, { force: true }),
  );
  const files = path.join(r.dir, `${id}.files`);
  const exitDir = path.join(files, 'exits');
  const created = await new Conmon({ path: 'conmon' }).create({
    id,
    name: id,
    runtime: r.runtime,
    bundle,
    containerPidFile: path.join(files, 'pid'),
    conmonPidFile: path.join(files, 'conmon.pid'),
    exitDir,
    logPath: path.join(files, 'log'),
    socketDir: path.join(files, 'sock'),
    persistDir: path.join(files, 'persist'),
    conmonLogFile: path.join(files, 'conmon.log'),
  });
  r.undo.push(() => Promise.resolve(killQuietly(created.conmonPid)));
  assert.equal((await r.runtime.state(id))?.status, 'created');
  r.subcommands.length = 0;
  return { id, pid: created.pid, conmonPid: created.conmonPid, exitDir };
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone already
  }
}

/** The process state letter of `pid` (R, S, T, Z …); undefined when it is gone. */
function procState(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

/** The container's end: conmon writes the exit code and exits; the runtime's delete leaves no state. */
async function endsCleanly(r: Rig, m: Made): Promise<void> {
  await waitFor('the exit file', async () => (await readExitFile(m.exitDir, m.id)) !== undefined);
  await waitFor('conmon to exit', () => !alive(m.conmonPid));
  await r.runtime.delete(m.id, { force: true });
  assert.equal(await r.runtime.state(m.id), undefined);
  assert.equal(fs.existsSync(path.join(r.runtime.root, m.id)), false);
}

test('runc: the probe qualifies it; a created container starts without a runc process and runs its process', { timeout: 120_000 }, async (t) => {
  const r = await rig(t, 'runc');
  assert.ok(r.runtime instanceof CliRuntime && r.runtime.execFifoStart, 'the probe container started through its exec fifo');
  const m = await createUnderConmon(r, 'start');
  await r.runtime.start(m.id);
  assert.deepEqual(r.subcommands, [], 'no runtime process');
  assert.equal(fs.existsSync(path.join(r.runtime.root, m.id, 'exec.fifo')), false);
  const st = await r.runtime.state(m.id);
  assert.equal(st?.status, 'running');
  assert.equal(st?.pid, m.pid);
  // The init closes its end of the fifo just before its execve (Debian's runc closes
  // every fd it does not pass on first), so `runc start` too returns a moment before the
  // container's process is there.
  await waitFor('the container process', () => fs.readFileSync(`/proc/${m.pid}/cmdline`, 'utf8').split('\0')[0] === '/catatonit');
  assert.equal(holds(path.join(r.runtime.root, m.id, 'exec.fifo')), false);

  // S4 is the sandbox layer's, but the runtime's answer to a second start is runc's own.
  r.subcommands.length = 0;
  await assert.rejects(r.runtime.start(m.id), {
    name: 'InternalError',
    message: new RegExp(`starting container "${m.id}" with runc: runc exited with 1: .*cannot start an already running container`),
  });
  assert.deepEqual(r.subcommands, ['start'], 'a started container is answered by `runc start`');
  await r.runtime.kill(m.id, 'SIGKILL');
  await endsCleanly(r, m);
});

test("runc: a SIGTERM sent right after the start reaches the program, not runc's init about to exec it", { timeout: 120_000 }, async (t) => {
  const r = await rig(t, 'runc');
  for (const n of [1, 2, 3]) {
    const m = await createUnderConmon(r, `term-${n}`);
    assert.equal(fs.readFileSync(`/proc/${m.pid}/comm`, 'utf8').trimEnd(), RUNC_INIT_COMM, "a created container's init is runc's");
    await r.runtime.start(m.id);
    // What StopContainer does (RuncMonitor.kill): wait until catatonit blocks the signal, then send it.
    assert.equal(await awaitSignalReady(m.pid, os.constants.signals.SIGTERM, 10_000), true);
    assert.notEqual(fs.readFileSync(`/proc/${m.pid}/comm`, 'utf8').trimEnd(), RUNC_INIT_COMM);
    assert.equal(signalContainerInit(m.pid, m.conmonPid, 'SIGTERM'), 'sent');
    // catatonit ends on SIGTERM; had runc's init got it, it would be dropped and the
    // container would run on (no SIGKILL follows here).
    await waitFor('the exit file', async () => (await readExitFile(m.exitDir, m.id)) !== undefined);
    assert.notEqual(await readExitFile(m.exitDir, m.id), 137, 'ended by the SIGTERM, not killed');
    await endsCleanly(r, m);
  }
});

test('runc: an init killed before the start: the error `runc start` gives, no hang, nothing left', { timeout: 120_000 }, async (t) => {
  const r = await rig(t, 'runc');
  const m = await createUnderConmon(r, 'killed');
  process.kill(m.pid, 'SIGKILL');
  await waitFor('conmon to see the exit', async () => (await readExitFile(m.exitDir, m.id)) !== undefined);
  await assert.rejects(r.runtime.start(m.id), {
    name: 'InternalError',
    message: new RegExp(`starting container "${m.id}" with runc: .*cannot start a container that has stopped`),
  });
  assert.equal(holds(path.join(r.runtime.root, m.id, 'exec.fifo')), false);
  await endsCleanly(r, m);
});

test('runc: an init killed during the handshake: a clear error, no hang, the fifo closed, nothing left', { timeout: 120_000 }, async (t) => {
  const r = await rig(t, 'runc');
  const m = await createUnderConmon(r, 'dies');
  const fifo = path.join(r.runtime.root, m.id, 'exec.fifo');
  // Stopped, the init cannot take the start: the daemon's read of the fifo waits.
  process.kill(m.pid, 'SIGSTOP');
  await waitFor('the init to stop', () => procState(m.pid) === 'T');
  const started = r.runtime.start(m.id);
  await waitFor('the start to open the fifo', () => holds(fifo));
  process.kill(m.pid, 'SIGKILL');
  await assert.rejects(started, {
    name: 'InternalError',
    message: new RegExp(`starting container "${m.id}" with runc: container process is already dead \\(pid ${m.pid}\\)`),
  });
  assert.deepEqual(r.subcommands, [], 'no runtime process');
  assert.equal(holds(fifo), false);
  assert.equal((await r.runtime.state(m.id))?.status, 'stopped');
  await endsCleanly(r, m);
});

test('runsc: not qualified by the probe (no exec fifo); its start stays `runsc start`', { timeout: 180_000 }, async (t) => {
  const r = await rig(t, 'runsc');
  assert.ok(r.runtime instanceof CliRuntime && !r.runtime.execFifoStart);
  const m = await createUnderConmon(r, 'runsc');
  await r.runtime.start(m.id);
  assert.deepEqual(r.subcommands, ['start']);
  assert.equal((await r.runtime.state(m.id))?.status, 'running');
  await r.runtime.kill(m.id, 'SIGKILL');
  await endsCleanly(r, m);
});
