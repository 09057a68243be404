// native/spawn.ts: posix_spawn + pidfd exits behave as child_process did for the callers
// (exit codes, signals, stdout/stderr, stdin, env, cwd, timeouts, a missing binary).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { runProcess, spawnProcess, SyscallError } from '../../../native/index.js';

const OPTS = { timeoutMs: 60_000, outputLimit: 1 << 20 };

test('exit code, stdout and stderr are those of the program', async () => {
  const r = await runProcess('sh', ['-c', 'echo out; echo err >&2; exit 3'], OPTS);
  assert.deepEqual(r, { code: 3, signal: null, stdout: 'out\n', stderr: 'err\n', timedOut: false, truncated: false });
});

test('stdin gets the input; without one it reads EOF at once', async () => {
  assert.equal((await runProcess('cat', [], { ...OPTS, input: 'config on stdin\n' })).stdout, 'config on stdin\n');
  assert.equal((await runProcess('cat', [], OPTS)).stdout, '');
});

test('the environment is exactly the one given; cwd and a new session are applied', async () => {
  const r = await runProcess('sh', ['-c', 'echo "$FOO|${HOME-unset}"'], { ...OPTS, env: { FOO: 'bar', PATH: process.env.PATH } });
  assert.equal(r.stdout, 'bar|unset\n');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-spawn-'));
  const out = path.join(dir, 'out');
  const fd = fs.openSync(out, 'w');
  try {
    const child = spawnProcess('sh', ['-c', 'pwd; ps -o sid= -p $$; echo $$'], { stdio: ['ignore', fd, fd], cwd: dir, setsid: true });
    assert.deepEqual(await child.exited, { code: 0, signal: null });
    const [cwd, sid, pid] = fs.readFileSync(out, 'utf8').trim().split('\n');
    assert.equal(fs.realpathSync(cwd), fs.realpathSync(dir));
    assert.equal(sid.trim(), pid, 'the child leads its own session');
  } finally {
    fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a signal death reports the signal; a timeout kills with SIGKILL and says so', async () => {
  assert.deepEqual(await runProcess('sh', ['-c', 'kill -TERM $$'], OPTS), {
    code: null,
    signal: 'SIGTERM',
    stdout: '',
    stderr: '',
    timedOut: false,
    truncated: false,
  });
  const r = await runProcess('sleep', ['600'], { ...OPTS, timeoutMs: 100 });
  assert.equal(r.signal, 'SIGKILL');
  assert.equal(r.timedOut, true);
});

test('signals start at their defaults and unblocked in the child (Node ignores SIGPIPE; the child must not)', async () => {
  const r = await runProcess('grep', ['-E', '^(SigIgn|SigBlk):', '/proc/self/status'], OPTS);
  assert.equal(r.stdout, 'SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n');
});

test('output beyond the limit is cut and flagged', async () => {
  const r = await runProcess('sh', ['-c', 'head -c 5000 /dev/zero'], { ...OPTS, outputLimit: 1000 });
  assert.equal(r.stdout.length, 1000);
  assert.equal(r.truncated, true);
});

test('a missing binary throws ENOENT at spawn', async () => {
  await assert.rejects(runProcess('/nonexistent/sandlot-no-such-binary', [], OPTS), (e: unknown) => e instanceof SyscallError && e.code === 'ENOENT');
});

test('many children at once each get their own exit status', async () => {
  const runs = await Promise.all(Array.from({ length: 40 }, (_, i) => runProcess('sh', ['-c', `exit ${i % 7}`], OPTS)));
  assert.deepEqual(
    runs.map((r) => r.code),
    Array.from({ length: 40 }, (_, i) => i % 7),
  );
});
