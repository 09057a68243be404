// Files that are either the old version or the new one, never half of either: write a
// temp file beside the target, fsync it, rename it over the target, fsync the directory.
// The directory's fsync makes the new version itself survive a machine crash; without
// it (durable: 'contents') the file is still never torn, but a machine crash may leave
// the old version, as containerd's atomic writes (continuity's AtomicWriteFile: fsync
// and rename, no directory fsync).
import crypto from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';

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

function tempName(file: string): string {
  return `${file}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
}

export async function fsyncPath(p: string): Promise<void> {
  const fh = await fsp.open(p, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export async function writeFileAtomic(file: string, data: string | Buffer, opts: AtomicWriteOptions = {}): Promise<void> {
  const tmp = tempName(file);
  const fh = await fsp.open(tmp, 'w', opts.mode ?? 0o644);
  try {
    await fh.writeFile(data);
    if (opts.durable !== false) await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await fsp.rename(tmp, file);
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e;
  }
  if (opts.durable === undefined || opts.durable === true) await fsyncPath(path.dirname(file));
}
