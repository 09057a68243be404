// Waiting for what a test asserts (poll with a deadline, never a fixed sleep), and the
// process facts tests poll for.
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/** Polls `fn` every `intervalMs` until it holds; throws naming `what` after `timeoutMs`. */
export async function waitFor(what: string, fn: () => Promise<boolean> | boolean, timeoutMs = 30_000, intervalMs = 20): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** Is there a process `pid` (a zombie counts)? */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Does this process hold `file` open (one of its fds names it)? */
export function holds(file: string): boolean {
  return fs.readdirSync('/proc/self/fd').some((fd) => {
    try {
      return fs.readlinkSync(`/proc/self/fd/${fd}`) === file;
    } catch {
      return false;
    }
  });
}
