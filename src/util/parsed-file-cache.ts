// Config files parsed once per version (OCI hook files, CDI specs): a file is read and
// parsed again only when its inode, size or mtime changes, so a directory can be looked
// at on every CreateContainer without re-reading what did not change. A parse failure
// is kept like a value, so an unusable file is reported once, not at every look.
import fs from 'node:fs/promises';
import { errnoCode } from '../errors.js';

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: unknown };

export interface CachedParse<T> {
  parsed: Parsed<T>;
  /** True when this call read and parsed the file (it was new or had changed). */
  fresh: boolean;
}

export class ParsedFileCache<T> {
  private readonly entries = new Map<string, { stamp: string; parsed: Parsed<T> }>();

  constructor(private readonly parse: (file: string) => Promise<T>) {}

  /** The file's parse, from the cache while its stat stamp holds; undefined when the file is gone. */
  async get(file: string): Promise<CachedParse<T> | undefined> {
    let stamp: string;
    try {
      const st = await fs.stat(file);
      stamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return undefined; // removed since the directory was listed
      throw e;
    }
    const cached = this.entries.get(file);
    if (cached?.stamp === stamp) return { parsed: cached.parsed, fresh: false };
    let parsed: Parsed<T>;
    try {
      parsed = { ok: true, value: await this.parse(file) };
    } catch (e) {
      parsed = { ok: false, error: e };
    }
    this.entries.set(file, { stamp, parsed });
    return { parsed, fresh: true };
  }

  /** Forgets every file not in `seen` (the last listing). */
  prune(seen: ReadonlySet<string>): void {
    for (const file of this.entries.keys()) if (!seen.has(file)) this.entries.delete(file);
  }
}
