// `rm -rf` with fewer thread-pool round trips than fs.promises.rm: node's rimraf makes an
// lstat of every entry, and for a directory a failed rmdir before its readdir (a file
// costs two round trips, a directory four); here the readdir's entry types decide, so a
// file costs one (its unlink) and a directory two (readdir, rmdir). Each round trip wakes
// a pool thread and the event loop (issue 13: daemon CPU per pod lifecycle). Like rm -rf:
// symlinks are removed, never followed; a path that is not there is no error. Only for
// trees the daemon made (a mount point inside would be descended into, as with rm -r).
import type { Dirent } from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { errnoCode } from '../errors.js';

/** Entries of one directory removed at once (a huge upper dir does not become as many promises). */
const BATCH = 8;

function ignoreMissing(e: unknown): void {
  if (errnoCode(e) !== 'ENOENT') throw e;
}

/** Removes `target` (a directory with everything in it, or a file); nothing there is not an error. */
export async function removeTree(target: string): Promise<void> {
  let entries: Dirent[];
  try {
    entries = await fsp.readdir(target, { withFileTypes: true });
  } catch (e) {
    if (errnoCode(e) === 'ENOTDIR') return fsp.unlink(target).catch(ignoreMissing);
    return ignoreMissing(e);
  }
  for (let i = 0; i < entries.length; i += BATCH) {
    await Promise.all(
      entries.slice(i, i + BATCH).map((ent) => {
        const p = path.join(target, ent.name);
        return ent.isDirectory() ? removeTree(p) : fsp.unlink(p).catch(ignoreMissing);
      }),
    );
  }
  await fsp.rmdir(target).catch(ignoreMissing);
}
