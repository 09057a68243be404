// src/oci/exec-fifo.ts: the pure readings of runc's state.json and /proc/<pid>/stat,
// and the exec-fifo handshake against a fake runtime dir (a FIFO made with mknod, a
// state.json naming a child of ours that plays runc init: it opens the fifo for writing,
// writes "0" or nothing, or never opens it). The real runc is in
// test/integration/oci/exec-fifo-start.test.ts.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { test, type TestContext } from 'node:test';
import { mknod, S_IFIFO, spawnProcess, type SpawnedChild } from '../../../native/index.js';
import { alive, holds, waitFor } from '../../helpers/wait.js';
import {
  awaitSignalReady,
  EXEC_FIFO,
  isFrozen,
  parseRuncState,
  parseSignalReadiness,
  RUNC_INIT_COMM,
  startThroughExecFifo,
} from '../../../src/oci/exec-fifo.js';
import { parseProcStat } from '../../../src/util/proc-stat.js';

test('state.json: the init PID and start time; the v1 freezer before the unified path; nothing without an init', () => {
  const hybrid = JSON.stringify({
    id: 'c1',
    init_process_pid: 4242,
    init_process_start: 4415694,
    cgroup_paths: { '': '/sys/fs/cgroup/unified/p/c1', freezer: '/sys/fs/cgroup/freezer/p/c1', memory: '/sys/fs/cgroup/memory/p/c1' },
  });
  assert.deepEqual(parseRuncState(hybrid), { pid: 4242, startTicks: 4415694, freezeFile: '/sys/fs/cgroup/freezer/p/c1/freezer.state' });
  const v2 = JSON.stringify({ init_process_pid: 7, init_process_start: 9, cgroup_paths: { '': '/sys/fs/cgroup/p/c1' } });
  assert.equal(parseRuncState(v2)?.freezeFile, '/sys/fs/cgroup/p/c1/cgroup.freeze');
  assert.equal(parseRuncState(JSON.stringify({ init_process_pid: 7, init_process_start: 9 }))?.freezeFile, undefined);
  for (const bad of [
    '',
    'not json',
    '{}',
    '{"init_process_pid":0,"init_process_start":1}',
    '{"init_process_pid":"7","init_process_start":1}',
    '{"init_process_pid":7}',
  ]) {
    assert.equal(parseRuncState(bad), undefined, bad);
  }
});

test('/proc/<pid>/stat: state and start time after the last parenthesis (a comm with spaces and parentheses)', () => {
  const rest = Array.from({ length: 18 }, (_, i) => String(i + 4)).join(' '); // fields 4..21
  assert.deepEqual(parseProcStat(`1234 (a b) c) S ${rest} 987654 0 0\n`), { state: 'S', startTicks: 987654 });
  assert.deepEqual(parseProcStat(`1 (runc:[2:INIT]) Z ${rest} 5 0`), { state: 'Z', startTicks: 5 });
  assert.equal(parseProcStat(''), undefined);
  assert.equal(parseProcStat('1 (x) S 1 2'), undefined, 'too short: no start time');
});

test("runc's paused: v1 FROZEN or FREEZING, v2 cgroup.freeze 1", () => {
  assert.equal(isFrozen('/c/freezer.state', 'FROZEN\n'), true);
  assert.equal(isFrozen('/c/freezer.state', 'FREEZING\n'), true);
  assert.equal(isFrozen('/c/freezer.state', 'THAWED\n'), false);
  assert.equal(isFrozen('/c/cgroup.freeze', '1\n'), true);
  assert.equal(isFrozen('/c/cgroup.freeze', '0\n'), false);
});

/** A fake runtime dir whose init is `sh -c script fifo` (a child of ours), removed with it after the test. */
function fakeContainer(t: TestContext, script: string, extra: Record<string, unknown> = {}): { dir: string; fifo: string; init: SpawnedChild } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-fifo-'));
  const fifo = path.join(dir, EXEC_FIFO);
  mknod(fifo, S_IFIFO, 0o622);
  const init = spawnProcess('sh', ['-c', script, fifo], { stdio: ['ignore', 'ignore', 'ignore'] });
  t.after(() => {
    init.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const stat = parseProcStat(fs.readFileSync(`/proc/${init.pid}/stat`, 'utf8'));
  assert.ok(stat !== undefined);
  fs.writeFileSync(path.join(dir, 'state.json'), JSON.stringify({ init_process_pid: init.pid, init_process_start: stat.startTicks, ...extra }));
  return { dir, fifo, init };
}

test('the init\'s "0" read to EOF starts it: the fifo is removed, the init runs on; a second start finds no fifo', async (t) => {
  const { dir, fifo, init } = fakeContainer(t, 'printf 0 > "$0"; exec sleep 60');
  assert.equal(await startThroughExecFifo(dir, 60_000), 'started');
  assert.equal(fs.existsSync(fifo), false, 'runc says "running" once the fifo is gone');
  assert.equal(alive(init.pid), true, 'the init lives on');
  assert.equal(holds(fifo), false, 'the fifo is closed');
  assert.equal(await startThroughExecFifo(dir, 60_000), 'not-created', 'runc start answers a started container');
});

test('a writer that closes without a byte: another start took it ("cannot start an already running container")', async (t) => {
  const { dir, fifo } = fakeContainer(t, ': > "$0"; exec sleep 60');
  await assert.rejects(startThroughExecFifo(dir, 60_000), /cannot start an already running container/);
  assert.equal(holds(fifo), false);
});

test('the init dies before it writes: an error, no hang, the fifo closed', async (t) => {
  const { dir, fifo, init } = fakeContainer(t, 'exec sleep 60'); // never opens the fifo
  const started = startThroughExecFifo(dir, 600_000);
  await waitFor('the start to open the fifo', () => holds(fifo));
  init.kill('SIGKILL');
  await assert.rejects(started, new RegExp(`container process is already dead \\(pid ${init.pid}\\)`));
  assert.equal(holds(fifo), false);
  assert.equal(fs.existsSync(fifo), true, 'nothing started: the fifo stays');
});

test('an init that never takes the start: the deadline error, the fifo closed', async (t) => {
  const { dir, fifo } = fakeContainer(t, 'exec sleep 60');
  await assert.rejects(startThroughExecFifo(dir, 200), /did not take the start within 200 ms/);
  assert.equal(holds(fifo), false);
});

test('not a plain created container: the CLI answers (no fifo, a recycled PID, an init gone, a frozen cgroup)', async (t) => {
  const gone = fakeContainer(t, 'exec sleep 60');
  fs.rmSync(gone.fifo);
  assert.equal(await startThroughExecFifo(gone.dir, 60_000), 'not-created');

  const recycled = fakeContainer(t, 'exec sleep 60');
  const st = JSON.parse(fs.readFileSync(path.join(recycled.dir, 'state.json'), 'utf8')) as { init_process_start: number };
  fs.writeFileSync(path.join(recycled.dir, 'state.json'), JSON.stringify({ ...st, init_process_start: st.init_process_start - 1 }));
  assert.equal(await startThroughExecFifo(recycled.dir, 60_000), 'not-created');

  const dead = fakeContainer(t, 'exec sleep 60');
  dead.init.kill('SIGKILL');
  await dead.init.exited;
  assert.equal(await startThroughExecFifo(dead.dir, 60_000), 'not-created');

  const freezer = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-freezer-'));
  t.after(() => fs.rmSync(freezer, { recursive: true, force: true }));
  fs.writeFileSync(path.join(freezer, 'freezer.state'), 'FROZEN\n');
  const frozen = fakeContainer(t, 'printf 0 > "$0"; exec sleep 60', { cgroup_paths: { freezer } });
  assert.equal(await startThroughExecFifo(frozen.dir, 60_000), 'not-created');
  assert.equal(fs.existsSync(frozen.fifo), true, 'the paused container was not touched');
  assert.equal(holds(frozen.fifo), false);
  for (const c of [gone, recycled, dead, frozen]) assert.equal(holds(c.fifo), false);
});

test("/proc/<pid>/status: runc's init or not, PID 1 of its namespace or not, the signal blocked or caught", () => {
  const status = (name: string, nspid: string, blk: string, cgt: string): string =>
    `Name:\t${name}\nState:\tS (sleeping)\nNSpid:\t${nspid}\nSigQ:\t0/63\nSigPnd:\t0000000000000000\nSigBlk:\t${blk}\nSigIgn:\t0000000000000000\nSigCgt:\t${cgt}\n`;
  const TERM = 15; // bit 14: 0x4000
  // [name, NSpid, SigBlk, SigCgt] → what it says of SIGTERM
  const cases: [string, string, string, string, { runcInit: boolean; namespaceInit: boolean; handled: boolean }][] = [
    [RUNC_INIT_COMM, '4242\t1', '0000000000000000', 'fffffffe7fc1feff', { runcInit: true, namespaceInit: true, handled: true }],
    ['catatonit', '4242\t1', '0000000000004000', '0000000000000000', { runcInit: false, namespaceInit: true, handled: true }],
    ['sleep', '4242\t1', '0000000000000000', '0000000000000000', { runcInit: false, namespaceInit: true, handled: false }],
    ['sh', '4242\t7', '0000000000000000', '0000000000004000', { runcInit: false, namespaceInit: false, handled: true }],
    ['sleep', '4242', '0000000000000000', '0000000000000000', { runcInit: false, namespaceInit: false, handled: false }],
  ];
  for (const [name, nspid, blk, cgt, want] of cases) assert.deepEqual(parseSignalReadiness(status(name, nspid, blk, cgt), TERM), want, `${name} ${nspid}`);
});

test("awaitSignalReady: waits while the process is runc's init; then ready when it is no namespace init, or blocks or catches the signal; gone is ready", async (t) => {
  // A process named like runc's init: comm is the basename of the path it was executed by.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-init-exec-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const named = path.join(dir, RUNC_INIT_COMM);
  fs.symlinkSync('/bin/sh', named);
  const kids: ChildProcess[] = [];
  t.after(() => kids.forEach((k) => k.kill('SIGKILL')));
  // One that execs sleep once a file appears; one that never execs.
  const go = path.join(dir, 'go');
  const execing = spawn(named, ['-c', `while [ ! -e ${go} ]; do sleep 0.05; done; exec /bin/sleep 30`], { stdio: 'ignore' });
  const staying = spawn(named, ['-c', 'while :; do sleep 1; done'], { stdio: 'ignore' });
  kids.push(execing, staying);
  await waitFor('the shells to run', () => [execing, staying].every((k) => fs.readFileSync(`/proc/${k.pid}/comm`, 'utf8').trimEnd() === RUNC_INIT_COMM));

  const TERM = os.constants.signals.SIGTERM;
  assert.equal(await awaitSignalReady(staying.pid!, TERM, 50), false, "still runc's init at the deadline");
  let answered = false;
  const waited = awaitSignalReady(execing.pid!, TERM, 30_000).finally(() => (answered = true));
  // The absence of an answer can only be seen over some time; a busy machine makes it no less true.
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal(answered, false, "no answer while the process is runc's init");
  fs.writeFileSync(go, '');
  // Not PID 1 of a namespace: the default action of SIGTERM ends it, nothing to wait for.
  assert.equal(await waited, true);
  assert.equal(fs.readFileSync(`/proc/${execing.pid}/comm`, 'utf8').trimEnd(), 'sleep');

  const reaped = new Promise((resolve) => staying.once('exit', resolve));
  staying.kill('SIGKILL');
  await reaped;
  assert.equal(await awaitSignalReady(staying.pid!, TERM, 50), true, 'a process that is gone has nothing to wait for');
});
