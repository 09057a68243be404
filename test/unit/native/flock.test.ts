import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { flock, flockTry, funlock, isLockBusy } from '../../../native/index.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** A second process that takes an exclusive lock on `file` and holds it until stdin closes. */
async function holder(file: string) {
  const script = `
    import fs from 'node:fs';
    import { flockTry } from './native/index.js';
    const fd = fs.openSync(${JSON.stringify(file)}, 'r');
    flockTry(fd, 'exclusive');
    process.stdout.write('locked\\n');
    process.stdin.on('end', () => process.exit(0));
    process.stdin.resume();
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: REPO,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => d.toString().includes('locked') && resolve());
    child.once('exit', (code) => reject(new Error(`holder exited ${code}`)));
  });
  return {
    release: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.stdin.end();
      }),
    kill: () => child.kill('SIGKILL'),
  };
}

function tempFile(t: { after(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-flock-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'lock');
  fs.writeFileSync(file, '');
  return file;
}

test('an exclusive lock held by another process excludes, and non-blocking fails at once with EWOULDBLOCK', async (t) => {
  const file = tempFile(t);
  const h = await holder(file);
  t.after(() => h.kill());
  const fd = fs.openSync(file, 'r');
  t.after(() => fs.closeSync(fd));
  assert.throws(
    () => flockTry(fd, 'exclusive'),
    (e: unknown) => isLockBusy(e) && /flock fd \d+ exclusive non-blocking: EWOULDBLOCK|EAGAIN/.test(String(e)),
  );
  assert.throws(
    () => flockTry(fd, 'shared'),
    (e: unknown) => isLockBusy(e),
  );
  await h.release();
  flockTry(fd, 'exclusive');
  funlock(fd);
});

test('shared locks coexist within two descriptors', (t) => {
  const file = tempFile(t);
  const a = fs.openSync(file, 'r');
  const b = fs.openSync(file, 'r');
  t.after(() => {
    fs.closeSync(a);
    fs.closeSync(b);
  });
  flockTry(a, 'shared');
  flockTry(b, 'shared');
  assert.throws(
    () => flockTry(fs.openSync(file, 'r'), 'exclusive'),
    (e: unknown) => isLockBusy(e),
  );
});

test('a blocking wait gets the lock once released and never stalls the event loop', async (t) => {
  const file = tempFile(t);
  const h = await holder(file);
  t.after(() => h.kill());
  const fd = fs.openSync(file, 'r');
  t.after(() => fs.closeSync(fd));
  let ticks = 0;
  const timer = setInterval(() => (ticks += 1), 5);
  let acquired = false;
  const waiting = flock(fd, 'exclusive').then(() => (acquired = true));
  // While the other process holds the lock, timers keep firing and the wait goes on.
  while (ticks < 5) await new Promise((r) => setTimeout(r, 5));
  assert.equal(acquired, false);
  await h.release();
  await waiting;
  clearInterval(timer);
  assert.equal(acquired, true);
  assert.ok(ticks >= 5);
  funlock(fd);
});

test('a blocking wait can be abandoned through its AbortSignal', async (t) => {
  const file = tempFile(t);
  const h = await holder(file);
  t.after(() => h.kill());
  const fd = fs.openSync(file, 'r');
  t.after(() => fs.closeSync(fd));
  const ac = new AbortController();
  const waiting = flock(fd, 'exclusive', { signal: ac.signal });
  ac.abort(new Error('gave up'));
  await assert.rejects(waiting);
  await h.release();
});
