// Files that are either the old version or the new one, never half of either: write a
// temp file beside the target, fsync it, rename it over the target, fsync the directory.
// The directory's fsync makes the new version itself survive a machine crash; without
// it (durable: 'contents') the file is still never torn, but a machine crash may leave
// the old version, as containerd's atomic writes (continuity's AtomicWriteFile: fsync
// and rename, no directory fsync).
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

export interface AtomicWriteOptions {
  /** File mode of the new file. */
  mode?: number;
  /**
   * false: the rename alone (old or new after a daemon crash, the page cache survives
   * one), no fsync. Only for files on the state dir (tmpfs: a machine crash takes them
   * and everything they describe). 'contents': the file fsynced before the rename, the
   * directory not: old or new after a machine crash too, never torn, but the rename may
   * be lost to one (for a rewrite whose old version is a state recovery reconciles).
   * Default true: the new version survives a machine crash.
   */
  durable?: boolean | 'contents';
}

const fsyncFd = promisify(fs.fsync);
let tempCounter = 0;

/** A temp name no other write of this process uses now (the pid tells daemons on one root apart). */
function tempName(file: string): string {
  tempCounter = (tempCounter + 1) % 0x1_0000_0000;
  return `${file}.tmp-${process.pid}-${tempCounter.toString(16)}`;
}

/** fsync of a file or directory: only the fsync leaves the event loop (it waits for the disk). */
export async function fsyncPath(p: string): Promise<void> {
  const fd = fs.openSync(p, 'r');
  try {
    await fsyncFd(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The open, write, close and rename are made on the event loop: a few KiB into the page
 * cache and a rename take microseconds, where a thread-pool round trip each (five or
 * more per write, each with its wake-ups) cost more than the calls (issue 13: ~9 writes
 * per pod lifecycle). Only the fsyncs, which wait for the disk, run on the pool.
 */
export async function writeFileAtomic(file: string, data: string | Buffer, opts: AtomicWriteOptions = {}): Promise<void> {
  const tmp = tempName(file);
  const fd = fs.openSync(tmp, 'w', opts.mode ?? 0o644);
  try {
    try {
      fs.writeFileSync(fd, data);
      if (opts.durable !== false) await fsyncFd(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  if (opts.durable === undefined || opts.durable === true) await fsyncPath(path.dirname(file));
}
