import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import {
  hasCapability,
  OomScoreApplier,
  sandboxOomScore,
  type OomScoreFs,
  type OomScoreMember,
  type SandboxOomScoreInput,
} from '../../../src/sandbox/resources/oom-score.js';
import { InvalidArgumentError } from '../../../src/errors.js';

const INFRA: OomScoreMember = { id: 'pod', type: 'sandbox', oomScoreAdj: -998 };
// CapEff with every bit but 24 (CAP_SYS_RESOURCE), as on these machines.
const STATUS_NO_SYS_RESOURCE = 'Name:\tnode\nCapPrm:\t000001fffeffffff\nCapEff:\t000001fffeffffff\n';
const STATUS_ALL_CAPS = 'Name:\tnode\nCapEff:\t000001ffffffffff\n';

function input(containers: OomScoreMember[], over: Partial<SandboxOomScoreInput> = {}): SandboxOomScoreInput {
  return { original: 0, rootBeingDestroyed: false, containers, ...over };
}

test('S10: the infra (sandbox-type) container is ignored', () => {
  assert.deepEqual(sandboxOomScore(input([INFRA, { id: 'a', type: 'container', oomScoreAdj: 300 }])), {
    action: 'set',
    value: 300,
  });
});

test('S10: the lowest value among containers that set one wins', () => {
  const d = sandboxOomScore(
    input([INFRA, { id: 'a', type: 'container', oomScoreAdj: 700 }, { id: 'b', type: 'container' }, { id: 'c', type: 'container', oomScoreAdj: 300 }]),
  );
  assert.deepEqual(d, { action: 'set', value: 300 });
});

test('S10: negative values are compared as numbers', () => {
  const d = sandboxOomScore(
    input([
      { id: 'a', type: 'container', oomScoreAdj: -5 },
      { id: 'b', type: 'container', oomScoreAdj: -500 },
    ]),
  );
  assert.deepEqual(d, { action: 'set', value: -500 });
});

test('S10: the original score is restored when no container with a value is left', () => {
  const d = sandboxOomScore(input([INFRA, { id: 'b', type: 'container' }], { original: 42 }));
  assert.deepEqual(d, { action: 'set', value: 42 });
  assert.deepEqual(sandboxOomScore(input([INFRA], { original: 42 })), { action: 'set', value: 42 });
});

test('S10: the recompute is skipped while the root is being destroyed', () => {
  const d = sandboxOomScore(input([INFRA, { id: 'a', type: 'container', oomScoreAdj: 300 }], { rootBeingDestroyed: true }));
  assert.deepEqual(d, { action: 'skip' });
});

test('S10: a sandbox without containers (terminated) is skipped', () => {
  assert.deepEqual(sandboxOomScore(input([])), { action: 'skip' });
});

test('S10: 300, 700 and none come and go', () => {
  const a = { id: 'a', type: 'container', oomScoreAdj: 300 } as const;
  const b = { id: 'b', type: 'container', oomScoreAdj: 700 } as const;
  const c = { id: 'c', type: 'container' } as const;
  const seq: Array<[OomScoreMember[], number]> = [
    [[INFRA, b], 700],
    [[INFRA, b, a], 300],
    [[INFRA, b, a, c], 300],
    [[INFRA, b, c], 700],
    [[INFRA, c], 5],
  ];
  for (const [containers, want] of seq) {
    assert.deepEqual(sandboxOomScore(input(containers, { original: 5 })), { action: 'set', value: want });
  }
});

test('hasCapability reads bit 24 of CapEff', () => {
  assert.equal(hasCapability(STATUS_NO_SYS_RESOURCE, 24), false);
  assert.equal(hasCapability(STATUS_ALL_CAPS, 24), true);
  assert.equal(hasCapability(STATUS_NO_SYS_RESOURCE, 21), true);
  assert.throws(() => hasCapability('Name: x\n', 24), InvalidArgumentError);
});

interface FakeProc {
  fs: OomScoreFs;
  files: Map<string, string>;
  ops: string[];
}

function errno(code: string): Error {
  return Object.assign(new Error(`${code}: fake`), { code });
}

/** An in-memory /proc; `delayWrite(path, value)` can hold a write back to force interleavings. */
function fakeProc(status: string, opts: { delayWrite?: (value: string) => Promise<void> } = {}): FakeProc {
  const files = new Map<string, string>([
    ['/proc/self/status', status],
    ['/proc/self/oom_score_adj', '0\n'],
  ]);
  const ops: string[] = [];
  const fs: OomScoreFs = {
    readFile(path) {
      const v = files.get(path);
      // Rejected, not thrown: the code under test sees what fs.promises gives it.
      if (v === undefined) return Promise.reject(errno('ENOENT'));
      return Promise.resolve(v);
    },
    async writeFile(path, data) {
      if (!files.has(path)) throw errno('ENOENT');
      if (files.get(path) === 'ESRCH') throw errno('ESRCH');
      if (files.get(path) === 'EACCES') throw errno('EACCES');
      if (opts.delayWrite) await opts.delayWrite(data);
      files.set(path, data);
      ops.push(`write ${path} ${data}`);
    },
  };
  return { fs, files, ops };
}

function captureLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino<never>({ level: 'debug' }, stream), lines };
}

test('S10: the applier writes the computed value to the sandbox process', async () => {
  const proc = fakeProc(STATUS_ALL_CAPS);
  proc.files.set('/proc/100/oom_score_adj', '0');
  const applier = new OomScoreApplier({ logger: captureLogger().logger, fs: proc.fs });
  const r = await applier.adjustSandbox('pod', 100, () => input([INFRA, { id: 'a', type: 'container', oomScoreAdj: -200 }]));
  assert.deepEqual(r, { action: 'set', exited: false, requested: -200, written: -200 });
  assert.equal(proc.files.get('/proc/100/oom_score_adj'), '-200');
});

test('S10: a recompute that lands on the value last written to that process writes nothing (issue 13); a new pid or a forgotten sandbox writes again', async () => {
  const proc = fakeProc(STATUS_ALL_CAPS);
  proc.files.set('/proc/100/oom_score_adj', '0');
  proc.files.set('/proc/101/oom_score_adj', '0');
  const applier = new OomScoreApplier({ logger: captureLogger().logger, fs: proc.fs });
  const low = input([INFRA, { id: 'a', type: 'container', oomScoreAdj: -200 }]);
  assert.deepEqual(await applier.adjustSandbox('pod', 100, () => low), { action: 'set', exited: false, requested: -200, written: -200 });
  assert.deepEqual(await applier.adjustSandbox('pod', 100, () => low), { action: 'kept', value: -200 });
  // The container went away: the original comes back, once.
  const none = input([INFRA], { original: 5 });
  assert.deepEqual(await applier.adjustSandbox('pod', 100, () => none), { action: 'set', exited: false, requested: 5, written: 5 });
  assert.deepEqual(await applier.adjustSandbox('pod', 100, () => none), { action: 'kept', value: 5 });
  // The runtime changed it behind the applier (runsc does at a subcontainer's start): written again.
  proc.files.set('/proc/100/oom_score_adj', '0\n');
  assert.equal((await applier.adjustSandbox('pod', 100, () => none)).action, 'set');
  assert.deepEqual(await applier.adjustSandbox('pod', 100, () => none), { action: 'kept', value: 5 });
  // Another process of the same ID, or a sandbox forgotten, is written again.
  assert.equal((await applier.adjustSandbox('pod', 101, () => none)).action, 'set');
  applier.forgetSandbox('pod');
  assert.equal((await applier.adjustSandbox('pod', 101, () => none)).action, 'set');
  assert.deepEqual(proc.ops, [
    'write /proc/100/oom_score_adj -200',
    'write /proc/100/oom_score_adj 5',
    'write /proc/100/oom_score_adj 5',
    'write /proc/101/oom_score_adj 5',
    'write /proc/101/oom_score_adj 5',
  ]);
});

test('S10: after a failed write the next recompute writes again', async () => {
  const proc = fakeProc(STATUS_ALL_CAPS);
  proc.files.set('/proc/100/oom_score_adj', 'EACCES');
  const applier = new OomScoreApplier({ logger: captureLogger().logger, fs: proc.fs });
  const low = input([INFRA, { id: 'a', type: 'container', oomScoreAdj: 9 }]);
  await assert.rejects(
    applier.adjustSandbox('pod', 100, () => low),
    /EACCES/,
  );
  proc.files.set('/proc/100/oom_score_adj', '0');
  assert.equal((await applier.adjustSandbox('pod', 100, () => low)).action, 'set');
  assert.deepEqual(proc.ops, ['write /proc/100/oom_score_adj 9']);
});

test('S10: a skip writes nothing', async () => {
  const proc = fakeProc(STATUS_ALL_CAPS);
  proc.files.set('/proc/100/oom_score_adj', '7');
  const applier = new OomScoreApplier({ logger: captureLogger().logger, fs: proc.fs });
  const r = await applier.adjustSandbox('pod', 100, () => input([INFRA], { rootBeingDestroyed: true }));
  assert.deepEqual(r, { action: 'skip' });
  assert.deepEqual(proc.ops, []);
});

test('S10: a process that already exited (ENOENT or ESRCH) is not an error', async () => {
  const proc = fakeProc(STATUS_ALL_CAPS);
  const { logger, lines } = captureLogger();
  const applier = new OomScoreApplier({ logger, fs: proc.fs });
  // No /proc/100 at all: ENOENT.
  assert.deepEqual(await applier.write(100, 300), { exited: true, requested: 300 });
  // The entry exists but the process exits between open and write: ESRCH.
  proc.files.set('/proc/101/oom_score_adj', 'ESRCH');
  assert.deepEqual(await applier.write(101, 300), { exited: true, requested: 300 });
  assert.equal(await applier.read(100), undefined);
  assert.equal(lines.filter((l) => l['pid'] === 100 || l['pid'] === 101).length, 2);
});

test('S10: other write errors are reported with the pid and value', async () => {
  const proc = fakeProc(STATUS_ALL_CAPS);
  proc.files.set('/proc/100/oom_score_adj', 'EACCES');
  const applier = new OomScoreApplier({ logger: captureLogger().logger, fs: proc.fs });
  await assert.rejects(
    applier.adjustSandbox('pod', 100, () => input([{ id: 'a', type: 'container', oomScoreAdj: 9 }])),
    {
      message: 'adjusting oom_score_adj of sandbox "pod": setting oom_score_adj of pid 100 to 9: EACCES: fake',
    },
  );
});

test('S10: values outside [-1000, 1000] are rejected naming the value', async () => {
  const applier = new OomScoreApplier({ logger: captureLogger().logger, fs: fakeProc(STATUS_ALL_CAPS).fs });
  await assert.rejects(applier.write(1, 1001), { name: 'InvalidArgumentError', message: /value 1001/ });
  await assert.rejects(applier.write(1, 1.5), { name: 'InvalidArgumentError', message: /value 1.5/ });
});

test("S11: the helper takes its container's score; none set leaves it alone", async () => {
  const proc = fakeProc(STATUS_ALL_CAPS);
  proc.files.set('/proc/200/oom_score_adj', '0');
  const applier = new OomScoreApplier({ logger: captureLogger().logger, fs: proc.fs });
  assert.equal(await applier.adjustHelper(200, undefined), undefined);
  assert.deepEqual(proc.ops, []);
  assert.deepEqual(await applier.adjustHelper(200, 700), { exited: false, requested: 700, written: 700 });
  assert.equal(proc.files.get('/proc/200/oom_score_adj'), '700');
});

test("without CAP_SYS_RESOURCE values below the daemon's own score are raised to it, logged once", async () => {
  const proc = fakeProc(STATUS_NO_SYS_RESOURCE);
  proc.files.set('/proc/self/oom_score_adj', '-100\n');
  proc.files.set('/proc/100/oom_score_adj', '0');
  const { logger, lines } = captureLogger();
  const applier = new OomScoreApplier({ logger, fs: proc.fs });
  assert.deepEqual(await applier.write(100, -999), { exited: false, requested: -999, written: -100 });
  assert.deepEqual(await applier.write(100, -500), { exited: false, requested: -500, written: -100 });
  assert.deepEqual(await applier.write(100, 300), { exited: false, requested: 300, written: 300 });
  assert.deepEqual(await applier.write(100, -100), { exited: false, requested: -100, written: -100 });
  assert.equal(lines.filter((l) => String(l['msg']).includes('CAP_SYS_RESOURCE')).length, 1);
});

test('with CAP_SYS_RESOURCE negative values are written as asked', async () => {
  const proc = fakeProc(STATUS_ALL_CAPS);
  proc.files.set('/proc/self/oom_score_adj', '500\n');
  proc.files.set('/proc/100/oom_score_adj', '0');
  const applier = new OomScoreApplier({ logger: captureLogger().logger, fs: proc.fs });
  assert.deepEqual(await applier.write(100, -999), { exited: false, requested: -999, written: -999 });
});

test('S10: concurrent adjustments of one sandbox are serialized, the last write reflects the latest list', async () => {
  // The seed's TODO: two containers start at once. Without a lock, call 1 loads the
  // list {a} and its write is held back; call 2 loads {a, b} and writes 100; then call
  // 1's stale 300 lands last. With the per-sandbox lock call 2 loads only after call
  // 1's write, so the final value is 100.
  let releaseFirst!: () => void;
  const firstHeld = new Promise<void>((r) => (releaseFirst = r));
  let writes = 0;
  const proc = fakeProc(STATUS_ALL_CAPS, {
    delayWrite: async () => {
      writes++;
      if (writes === 1) await firstHeld;
    },
  });
  proc.files.set('/proc/100/oom_score_adj', '0');
  const applier = new OomScoreApplier({ logger: captureLogger().logger, fs: proc.fs });
  const containers: OomScoreMember[] = [INFRA, { id: 'a', type: 'container', oomScoreAdj: 300 }];
  const events: string[] = [];
  const load = (tag: string) => () => {
    events.push(`load ${tag}`);
    return input([...containers]);
  };
  const p1 = applier.adjustSandbox('pod', 100, load('1'));
  while (events.length === 0) await new Promise((r) => setImmediate(r));
  // Container b is registered and its start triggers a second adjustment.
  containers.push({ id: 'b', type: 'container', oomScoreAdj: 100 });
  const p2 = applier.adjustSandbox('pod', 100, load('2'));
  // Give call 2 every chance to run ahead if it were not serialized.
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  assert.deepEqual(events, ['load 1']);
  releaseFirst();
  await Promise.all([p1, p2]);
  assert.deepEqual(events, ['load 1', 'load 2']);
  assert.deepEqual(proc.ops, ['write /proc/100/oom_score_adj 300', 'write /proc/100/oom_score_adj 100']);
  assert.equal(proc.files.get('/proc/100/oom_score_adj'), '100');
});

test('S10: different sandboxes do not wait for each other', async () => {
  let releaseFirst!: () => void;
  const firstHeld = new Promise<void>((r) => (releaseFirst = r));
  const proc = fakeProc(STATUS_ALL_CAPS, {
    delayWrite: async (v) => {
      if (v === '300') await firstHeld;
    },
  });
  proc.files.set('/proc/100/oom_score_adj', '0');
  proc.files.set('/proc/200/oom_score_adj', '0');
  const applier = new OomScoreApplier({ logger: captureLogger().logger, fs: proc.fs });
  const p1 = applier.adjustSandbox('pod-1', 100, () => input([{ id: 'a', type: 'container', oomScoreAdj: 300 }]));
  await applier.adjustSandbox('pod-2', 200, () => input([{ id: 'b', type: 'container', oomScoreAdj: 400 }]));
  assert.equal(proc.files.get('/proc/200/oom_score_adj'), '400');
  releaseFirst();
  await p1;
  assert.equal(proc.files.get('/proc/100/oom_score_adj'), '300');
});

test('S10: a failing load releases the lock for the next caller', async () => {
  const proc = fakeProc(STATUS_ALL_CAPS);
  proc.files.set('/proc/100/oom_score_adj', '0');
  const applier = new OomScoreApplier({ logger: captureLogger().logger, fs: proc.fs });
  await assert.rejects(
    applier.adjustSandbox('pod', 100, () => {
      throw new Error('loading sandbox containers: boom');
    }),
    /boom/,
  );
  const r = await applier.adjustSandbox('pod', 100, () => input([{ id: 'a', type: 'container', oomScoreAdj: 1 }]));
  assert.equal(r.action, 'set');
});

test('S10: on this host, the applier writes and reads back a real child process score', async (t) => {
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
  t.after(() => {
    child.kill('SIGKILL');
  });
  const pid = child.pid;
  assert.ok(pid !== undefined);
  const applier = new OomScoreApplier({ logger: captureLogger().logger });
  const original = await applier.read(pid);
  assert.equal(typeof original, 'number');
  const r = await applier.adjustSandbox('host-pod', pid, () =>
    input([INFRA, { id: 'a', type: 'container', oomScoreAdj: 300 }, { id: 'b', type: 'container', oomScoreAdj: 700 }], {
      original: original ?? 0,
    }),
  );
  assert.deepEqual(r, { action: 'set', exited: false, requested: 300, written: 300 });
  assert.equal(await applier.read(pid), 300);
  await applier.adjustSandbox('host-pod', pid, () => input([INFRA], { original: original ?? 0 }));
  assert.equal(await applier.read(pid), original);
});
