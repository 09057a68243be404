// native/pid-watch.ts: the one exit watcher sees the end of any PID through a pidfd:
// a child of ours (which spawn.ts still reaps with its status) and a process that is not
// our child (a grandchild re-parented away, like conmon and a pod's infra).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runProcess, spawnProcess, waitPidExit, watchPid } from '../../../native/index.js';

const OPTS = { timeoutMs: 60_000, outputLimit: 1 << 20 };

/** A `sleep 30` that is not our child: its shell parent has exited already. */
async function grandchild(): Promise<number> {
  const r = await runProcess('sh', ['-c', 'sleep 30 >/dev/null 2>&1 & echo $!'], OPTS);
  const pid = Number(r.stdout.trim());
  assert.ok(Number.isInteger(pid) && pid > 0, `a PID from ${JSON.stringify(r.stdout)}`);
  return pid;
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone already
  }
}

test('a child of ours: the watch settles at its exit and spawn.ts still reaps it with its status', async () => {
  const child = spawnProcess('sleep', ['30'], { stdio: ['ignore', 'ignore', 'ignore'] });
  const w = watchPid(child.pid);
  try {
    assert.equal(w.ended, false);
    assert.ok(child.kill('SIGTERM'));
    await w.gone;
    assert.equal(w.ended, true);
    assert.deepEqual(await child.exited, { code: null, signal: 'SIGTERM' });
  } finally {
    child.kill('SIGKILL');
    w.close();
  }
});

test('a process that is not our child: the watch settles when it is killed', async () => {
  const pid = await grandchild();
  const w = watchPid(pid);
  try {
    assert.equal(w.ended, false, 'the grandchild runs');
    process.kill(pid, 'SIGKILL');
    await w.gone;
    assert.equal(w.ended, true);
  } finally {
    killQuietly(pid);
    w.close();
  }
});

test('a PID that is gone already is ended at once', async () => {
  const r = await runProcess('sh', ['-c', 'echo $$'], OPTS);
  const w = watchPid(Number(r.stdout.trim()));
  assert.equal(w.ended, true);
  await w.gone;
  assert.equal(watchPid(0).ended, true, 'no PID: nothing to wait for');
});

test('many watches share the watcher: each settles at its own exit, a closed one is left out', async () => {
  const pids = await Promise.all(Array.from({ length: 8 }, () => grandchild()));
  const watches = pids.map((pid) => watchPid(pid));
  try {
    watches[0].close();
    watches[0].close(); // idempotent
    for (const pid of pids.slice(1).reverse()) process.kill(pid, 'SIGKILL');
    await Promise.all(watches.slice(1).map((w) => w.gone));
    assert.ok(watches.slice(1).every((w) => w.ended));
    assert.equal(watches[0].ended, false, 'a closed watch does not settle');
    assert.equal(await waitPidExit(pids[0], 1), false, 'its process still runs');
  } finally {
    for (const pid of pids) killQuietly(pid);
    for (const w of watches) w.close();
  }
});

test('waitPidExit: true when the process ends, false at the deadline while it lives', async () => {
  const pid = await grandchild();
  try {
    assert.equal(await waitPidExit(pid, 50), false);
    const waiting = waitPidExit(pid, 60_000);
    process.kill(pid, 'SIGKILL');
    assert.equal(await waiting, true);
  } finally {
    killQuietly(pid);
  }
});

test('once every watch is cancelled (the shared wait ends), a new watch still settles; a reused fd number is not taken for the cancelled watch', async () => {
  for (let round = 0; round < 3; round++) {
    const first = await grandchild();
    const cancelled = watchPid(first);
    cancelled.close(); // the last watch: the wait in flight is woken and ends
    const second = await grandchild();
    const w = watchPid(second); // very likely the fd number the cancelled watch had
    try {
      process.kill(first, 'SIGKILL');
      assert.equal(await waitPidExit(first, 30_000), true);
      assert.equal(w.ended, false, `round ${round}: the cancelled watch's process ending does not end the new one`);
      process.kill(second, 'SIGKILL');
      await w.gone;
      assert.equal(cancelled.ended, false, 'a cancelled watch never settles');
    } finally {
      killQuietly(first);
      killQuietly(second);
      w.close();
    }
  }
});
