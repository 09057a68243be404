// Start-time sweep of exec scratch dirs (`<state_dir>/exec/<rand>/`): no exec survives a
// daemon restart (its caller's stream is gone), so every dir left there belongs to a
// call that never completed (issue 11 item 3). The exec'd process a crash orphaned is
// killed when its PID provably is that process: it started after the dir was made.
// Only a host PID is taken (EXEC_HOST_PID_FILE): a sandbox's exec (runsc) writes its
// sandbox-internal PID under another name, which the sweep leaves alone (only the
// runtime could reach that process; it ends with its sandbox).
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { EXEC_HOST_PID_FILE } from '../../oci/exec.js';
import { processStartTimeMs } from '../container/process-start-time.js';

/** Removes every exec scratch dir under `scratchDir`; returns how many went. */
export async function sweepExecScratch(scratchDir: string, log: Logger): Promise<number> {
  let names: string[];
  try {
    names = await fs.readdir(scratchDir);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    const dir = path.join(scratchDir, name);
    try {
      await killOrphanedExec(dir, log);
      await fs.rm(dir, { recursive: true, force: true });
      removed++;
    } catch (e) {
      log.warn({ err: e, dir }, 'removing an exec scratch dir left by a crash');
    }
  }
  if (removed > 0) log.warn({ count: removed }, 'removed exec scratch dirs left by a crash');
  return removed;
}

async function killOrphanedExec(dir: string, log: Logger): Promise<void> {
  const pidFile = path.join(dir, EXEC_HOST_PID_FILE);
  let pid: number;
  let madeMs: number;
  try {
    pid = Number((await fs.readFile(pidFile, 'utf8')).trim());
    madeMs = (await fs.stat(dir)).birthtimeMs || (await fs.stat(path.join(dir, 'process.json'))).mtimeMs;
  } catch {
    return;
  }
  const started = await processStartTimeMs(pid);
  // Clock ticks are 10 ms: a process started before the dir was made is someone else.
  if (started === undefined || started + 20 < madeMs) return;
  try {
    process.kill(pid, 'SIGKILL');
    log.warn({ pid, dir }, 'killed an exec process orphaned by a crash');
  } catch {
    // already gone
  }
}
