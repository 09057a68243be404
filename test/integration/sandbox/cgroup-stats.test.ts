// Reads a real cgroup on this host: a cgroup made under this process's own memory
// cgroup (the only place the workplace lets tests create cgroups), a child that
// allocates memory inside it, and the working set the reader reports.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { CgroupStatsReader, detectCgroupLayout, parseProcCgroup } from '../../../src/sandbox/stats/cgroup-stats.js';

const ALLOC_BYTES = 64 * 1024 * 1024;
const WAIT_MS = 30_000;

test("detectCgroupLayout finds this host's hierarchies", async () => {
  const layout = await detectCgroupLayout();
  const own = parseProcCgroup(await readFile('/proc/self/cgroup', 'utf8'));
  if (own.v1.has('memory')) {
    assert.equal(layout.version, 1);
    assert.ok(layout.mountpoints['memory']);
  } else {
    assert.equal(layout.version, 2);
  }
});

test('working set of a child allocating 64 MiB in its own cgroup exceeds the allocation', { timeout: 120_000 }, async (t) => {
  const layout = await detectCgroupLayout();
  const own = parseProcCgroup(await readFile('/proc/self/cgroup', 'utf8'));
  const base = layout.version === 1 ? own.v1.get('memory') : own.unified;
  assert.ok(base !== undefined, 'this process has a memory cgroup');
  const rel = `${base.replace(/\/$/, '')}/sandlot-test-stats-${process.pid}-${Date.now()}`;
  const reader = new CgroupStatsReader({ layout });
  const dir = reader.dir('memory', rel);
  await mkdir(dir);
  const child = spawn(
    process.execPath,
    [
      '-e',
      // Wait for "go" (sent once the child is in the cgroup), then touch every page.
      `process.stdin.once('data', () => { globalThis.keep = Buffer.alloc(${ALLOC_BYTES}, 1); process.stdout.write('allocated\\n'); setInterval(() => {}, 1000); });`,
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
    // The cgroup is empty once the child is gone; rmdir removes it (charges move up).
    await rmdir(dir).catch((e: unknown) => {
      if ((e as { code?: string }).code !== 'ENOENT') throw e;
    });
  });
  assert.ok(child.pid !== undefined);
  await writeFile(`${dir}/cgroup.procs`, String(child.pid));
  const allocated = new Promise<void>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('child did not report its allocation')), WAIT_MS);
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('allocated')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', () => reject(new Error('child exited early')));
  });
  child.stdin.write('go\n');
  await allocated;

  const stats = await reader.stats(rel);
  assert.ok(stats.memory !== undefined);
  assert.ok(stats.memory.workingSetBytes > ALLOC_BYTES, `working set ${stats.memory.workingSetBytes} should exceed ${ALLOC_BYTES}`);
  assert.ok(stats.memory.usageBytes >= stats.memory.workingSetBytes);
  assert.ok(stats.memory.rssBytes > 0);
  assert.ok(stats.memory.pageFaults > 0);
  // The test cgroup sets no limit of its own.
  assert.equal(stats.memory.limitBytes, undefined);
  assert.equal(stats.pids, 1);
  assert.equal(stats.oomKills, 0);
});
