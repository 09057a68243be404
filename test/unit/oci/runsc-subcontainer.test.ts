// The runsc subcontainer shim without gVisor: the real shim and conmon around a fake
// `runsc` (a sh script that records its argv and plays create/start/wait/state as the
// test's files say), plus the pure parsers. The real runsc runs in
// test/integration/oci/runsc-subcontainer.test.ts.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { Conmon, readExitFile } from '../../../src/oci/conmon.js';
import { defaultConfig } from '../../../src/config/defaults.js';
import {
  defaultShimPath,
  parseStartStatus,
  parseWaitOutput,
  procProxyProbe,
  requireSubcontainerAnnotations,
  RunscShim,
} from '../../../src/oci/runsc-subcontainer.js';
import type { RuntimeDriver } from '../../../src/oci/runtime.js';
import { createRuntime } from '../../../src/oci/runtimes.js';

const execFileAsync = promisify(execFile);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-shim-unit-'));
const conmonPids: number[] = [];
const bases: string[] = [];
after(() => {
  // conmon, and every proxy a pid file names (a failed conmon create leaves its proxy).
  const proxies = bases.map((b) => Number(fs.existsSync(path.join(b, 'pid')) ? fs.readFileSync(path.join(b, 'pid'), 'utf8') : 0));
  for (const pid of [...conmonPids, ...proxies].filter((p) => p > 0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

// The fake runsc. Global args: --fake-dir F (where it records and reads its script),
// then anything. Every call appends its argv (one arg per line, then "--") to F/calls.
const FAKE_RUNSC = `#!/bin/sh
f=
for a in "$@"; do [ "$prev" = --fake-dir ] && f=$a; prev=$a; done
for a in "$@"; do printf '%s\\n' "$a"; done >>"$f/calls"; echo -- >>"$f/calls"
log=
cmd=
for a in "$@"; do
  case $a in create|start|wait|state|kill|delete) [ -z "$cmd" ] && cmd=$a ;; esac
  [ "$prev2" = --log ] && log=$a; prev2=$a
done
case $cmd in
  create) [ -f "$f/create.fail" ] && { echo "creating: bad bundle" >&2; exit 1; }; exit 0 ;;
  start)
    if [ -f "$f/start.fail" ]; then
      printf '{"msg":"starting container: boom","level":"error","time":"t"}\\n' >>"$log"; echo "starting container: boom" >&2; exit 128
    fi
    echo container-says-out; echo container-says-err >&2; exit 0 ;;
  wait)
    while [ ! -f "$f/exit" ]; do sleep 0.05; done
    code=$(cat "$f/exit")
    if [ "$code" = fail ]; then echo 'urpc method "containerManager.Wait" failed: EOF' >&2; exit 128; fi
    printf '{"id":"x","exitStatus":%s}\\n' "$code" ;;
  state) printf '{\\n  "id": "x",\\n  "status": "%s"\\n}\\n' "$(cat "$f/state" 2>/dev/null || echo stopped)" ;;
esac
exit 0
`;

let seq = 0;

function setup(): { fake: string; runtime: RuntimeDriver; shim: RunscShim; base: string } {
  seq += 1;
  const base = path.join(dir, `c${seq}`);
  bases.push(base);
  const fake = path.join(base, 'fake');
  fs.mkdirSync(fake, { recursive: true });
  const bin = path.join(base, 'runsc');
  fs.writeFileSync(bin, FAKE_RUNSC, { mode: 0o755 });
  const config = { ...defaultConfig().runtimes.runsc, path: bin, args: ['--fake-dir', fake, 'it\'s a "global"'] };
  const runtime = createRuntime({ name: 'runsc', config, stateDir: base, log: pino({ level: 'silent' }) });
  return { fake, runtime, shim: new RunscShim({ runtime }), base };
}

/** Each recorded call as its argv. */
function calls(fake: string): string[][] {
  const text = fs.existsSync(path.join(fake, 'calls')) ? fs.readFileSync(path.join(fake, 'calls'), 'utf8') : '';
  return text
    .split('--\n')
    .filter((c) => c !== '')
    .map((c) => c.split('\n').slice(0, -1));
}

async function create(s: ReturnType<typeof setup>, opts: { terminal?: boolean } = {}) {
  const id = `ctr${seq}`;
  const stateDir = path.join(s.base, 'shim');
  const o = {
    id,
    name: id,
    runtime: s.runtime,
    bundle: path.join(s.base, 'bundle'),
    containerPidFile: path.join(s.base, 'pid'),
    conmonPidFile: path.join(s.base, 'conmon.pid'),
    exitDir: path.join(s.base, 'exits'),
    logPath: path.join(s.base, 'ctr.log'),
    socketDir: path.join(s.base, 'sock'),
    persistDir: path.join(s.base, 'persist'),
    conmonLogFile: path.join(s.base, 'conmon.log'),
    terminal: opts.terminal ?? false,
    ...s.shim.conmonRuntime(stateDir),
  };
  fs.mkdirSync(o.bundle, { recursive: true });
  const created = await new Conmon({ path: 'conmon' }).create(o);
  conmonPids.push(created.conmonPid);
  return { id, stateDir, created, exitDir: o.exitDir, logPath: o.logPath, bundle: o.bundle };
}

async function exitOf(id: string, exitDir: string): Promise<number> {
  for (let i = 0; i < 1200; i++) {
    const code = await readExitFile(exitDir, id);
    if (code !== undefined) return code;
    await sleep(25);
  }
  throw new Error(`no exit file for ${id}`);
}

test('parseStartStatus reads the three outcomes and rejects anything else', () => {
  assert.deepEqual(parseStartStatus('started\n'), { kind: 'started' });
  assert.deepEqual(parseStartStatus('killed 15\n'), { kind: 'killed', signal: 15 });
  assert.deepEqual(parseStartStatus('start-failed 128 starting container: boom\n'), {
    kind: 'start-failed',
    exitCode: 128,
    message: 'starting container: boom',
  });
  assert.deepEqual(parseStartStatus('start-failed 1\n'), { kind: 'start-failed', exitCode: 1, message: '' });
  assert.equal(parseStartStatus('started-ish'), undefined);
  assert.equal(parseStartStatus(''), undefined);
});

test("parseWaitOutput takes exitStatus from runsc wait's JSON and names bad output", () => {
  assert.equal(parseWaitOutput('{"id":"sub1","exitStatus":3}\n'), 3);
  assert.equal(parseWaitOutput('{"id":"sub1","exitStatus":143}'), 143);
  assert.throws(() => parseWaitOutput('{"id":"sub1"}'), /parsing runsc wait output .*no integer exitStatus/);
  assert.throws(() => parseWaitOutput('waiting on container'), /parsing runsc wait output "waiting on container"/);
});

test('requireSubcontainerAnnotations accepts the S1 annotations for this sandbox only', () => {
  const ok = { annotations: { 'io.kubernetes.cri.container-type': 'container', 'io.kubernetes.cri.sandbox-id': 'pod1' } };
  assert.doesNotThrow(() => requireSubcontainerAnnotations(ok, 'pod1'));
  assert.throws(() => requireSubcontainerAnnotations(ok, 'pod2'), /io\.kubernetes\.cri\.sandbox-id="pod1" must be "container" and "pod2"/);
  assert.throws(() => requireSubcontainerAnnotations({}, 'pod1'), /container-type=null/);
  assert.throws(
    () => requireSubcontainerAnnotations({ annotations: { ...ok.annotations, 'io.kubernetes.cri.container-type': 'sandbox' } }, 'pod1'),
    /"sandbox"/,
  );
});

test("conmonRuntime runs the package's shim through sh with runsc's global args counted", () => {
  const s = setup();
  const r = s.shim.conmonRuntime('/run/x/shim');
  assert.equal(r.runtimePath, '/bin/sh');
  const globals = s.runtime.globalArgs();
  assert.deepEqual(r.runtimeArgs, [
    defaultShimPath(),
    '--state-dir',
    '/run/x/shim',
    '--runsc',
    s.runtime.binaryPath(),
    '--argc',
    String(globals.length),
    ...globals,
  ]);
  assert.ok(globals.includes('--network=host'), "runsc's network flag is among them");
  assert.ok(fs.existsSync(defaultShimPath()));
  assert.throws(() => s.shim.conmonRuntime('relative/dir'), /must be absolute/);
});

test('shim: commands other than create pass through with every global arg intact', async () => {
  const s = setup();
  const { runtimeArgs } = s.shim.conmonRuntime(path.join(s.base, 'shim'));
  await execFileAsync('/bin/sh', [...runtimeArgs, 'kill', 'ctr', 'SIGTERM']);
  assert.deepEqual(calls(s.fake), [[...s.runtime.globalArgs(), 'kill', 'ctr', 'SIGTERM']]);
});

test('shim: bad invocations exit 125 with a message', async () => {
  const shimPath = defaultShimPath();
  const cases: Array<[string[], RegExp]> = [
    [['--runsc', '/x', '--argc', '0', 'state', 'a'], /missing --state-dir/],
    [['--state-dir', '/x', '--runsc', '/x', '--argc', 'two', 'state'], /--argc "two" is not a count/],
    [['--state-dir', '/x', '--runsc', '/x', '--argc', '3', 'a'], /--argc 3 but only 1 global args/],
    [['--bogus'], /unknown shim option "--bogus"/],
  ];
  for (const [args, re] of cases) {
    await assert.rejects(execFileAsync('/bin/sh', [shimPath, ...args]), (e: { code?: number; stderr?: string }) => {
      assert.equal(e.code, 125);
      assert.match(e.stderr ?? '', re);
      return true;
    });
  }
});

test("shim under conmon: create hides --pid-file from runsc, the proxy is the container, start output reaches the CRI log, wait's status the exit file", async () => {
  const s = setup();
  const c = await create(s);
  const createCall = calls(s.fake).find((a) => a.includes('create'))!;
  assert.deepEqual(createCall, [...s.runtime.globalArgs(), 'create', '--bundle', c.bundle, c.id]);
  assert.match(fs.readFileSync(`/proc/${c.created.pid}/cmdline`, 'utf8'), /runsc-shim\.sh/);
  await s.shim.triggerStart({ id: c.id, stateDir: c.stateDir, proxyPid: c.created.pid });
  const startCall = calls(s.fake).find((a) => a.includes('start'))!;
  assert.deepEqual(startCall, [...s.runtime.globalArgs(), '--log', path.join(c.stateDir, 'start.log'), 'start', c.id]);
  fs.writeFileSync(path.join(s.fake, 'exit'), '3');
  assert.equal(await exitOf(c.id, c.exitDir), 3);
  const log = fs.readFileSync(c.logPath, 'utf8');
  assert.match(log, / stdout F container-says-out\n/);
  assert.match(log, / stderr F container-says-err\n/);
  assert.deepEqual(
    calls(s.fake).find((a) => a.includes('wait')),
    [...s.runtime.globalArgs(), 'wait', c.id],
  );
});

test("shim under conmon: a tty container's console socket goes to runsc create", async () => {
  const s = setup();
  // The fake never connects to the socket, so conmon reports no pid; what matters is the argv.
  await create(s, { terminal: true }).catch(() => undefined);
  const createCall = calls(s.fake).find((a) => a.includes('create'))!;
  const i = createCall.indexOf('--console-socket');
  assert.ok(i > 0, createCall.join(' '));
  // conmon leaves its socket behind when no pty arrives.
  fs.rmSync(createCall[i + 1], { force: true });
  assert.match(createCall[i + 1], /conmon-term\./);
  assert.ok(!createCall.includes('--pid-file'));
});

test("shim under conmon: a failing runsc start rejects triggerStart with runsc's message and exits 128", async () => {
  const s = setup();
  fs.writeFileSync(path.join(s.fake, 'start.fail'), '');
  const c = await create(s);
  await assert.rejects(
    s.shim.triggerStart({ id: c.id, stateDir: c.stateDir, proxyPid: c.created.pid }),
    /starting runsc subcontainer "ctr\d+": runsc start exited with 128: starting container: boom/,
  );
  assert.equal(await exitOf(c.id, c.exitDir), 128);
});

test("shim under conmon: a failing runsc create fails conmon's create with the message", async () => {
  const s = setup();
  fs.writeFileSync(path.join(s.fake, 'create.fail'), '');
  await assert.rejects(create(s), /creating container "ctr\d+" under conmon: .*bad bundle/);
});

test('shim under conmon: when wait fails and the container is stopped (sandbox gone), the exit is 137 with a reason; while running it waits again', async () => {
  const s = setup();
  const c = await create(s);
  await s.shim.triggerStart({ id: c.id, stateDir: c.stateDir, proxyPid: c.created.pid });
  fs.writeFileSync(path.join(s.fake, 'state'), 'running');
  fs.writeFileSync(path.join(s.fake, 'exit'), 'fail');
  // The proxy keeps waiting while runsc says running.
  for (let i = 0; i < 400 && calls(s.fake).filter((a) => a.includes('wait')).length < 2; i++) await sleep(25);
  assert.ok(calls(s.fake).filter((a) => a.includes('wait')).length >= 2, 'wait is retried');
  assert.equal(await readExitFile(c.exitDir, c.id), undefined);
  fs.writeFileSync(path.join(s.fake, 'state'), 'stopped');
  assert.equal(await exitOf(c.id, c.exitDir), 137);
  assert.match((await s.shim.exitReason(c.stateDir)) ?? '', /^sandbox-gone: runsc wait exited 128: .*containerManager\.Wait.*EOF/);
});

test('cancelStart releases a never-started proxy with 128+signal and then finds nothing to cancel', async () => {
  const s = setup();
  const c = await create(s);
  assert.equal(await s.shim.cancelStart({ id: c.id, stateDir: c.stateDir, proxyPid: c.created.pid, signal: 15 }), true);
  assert.equal(await exitOf(c.id, c.exitDir), 143);
  assert.deepEqual(await s.shim.startStatus(c.stateDir), { kind: 'killed', signal: 15 });
  assert.equal(await s.shim.cancelStart({ id: c.id, stateDir: c.stateDir, proxyPid: c.created.pid }), false);
  assert.ok(!calls(s.fake).some((a) => a.includes('start')), 'runsc start never ran');
});

test('triggerStart names a proxy that is gone, and a container the shim never created', async () => {
  const s = setup();
  const c = await create(s);
  process.kill(c.created.pid, 'SIGKILL');
  for (let i = 0; i < 400 && (await procProxyProbe.isProxyAlive(c.created.pid, c.stateDir)); i++) await sleep(25);
  await assert.rejects(
    s.shim.triggerStart({ id: c.id, stateDir: c.stateDir, proxyPid: c.created.pid, timeoutMs: 10_000 }),
    /starting runsc subcontainer "ctr\d+": the start proxy \(pid \d+\) is gone/,
  );
  await assert.rejects(
    s.shim.triggerStart({ id: 'other', stateDir: path.join(s.base, 'nothing-here'), timeoutMs: 1_000 }),
    /no start fifo ".*nothing-here\/start" \(not created through the runsc shim\?\)/,
  );
});
