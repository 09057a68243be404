// The hook definitions of the configured `hooks_dirs` (oci-hooks(5)): every `*.json`
// file of each directory, a file in a later directory masking the same-named one of an
// earlier directory, injected in file-name order. Read when a container is created;
// a file is parsed again only when its mtime, size or inode changed (one readdir and
// one stat per file per create: no watcher to keep). A malformed file, or one whose
// hook binary is missing, is skipped and logged once per change, never a failed create.
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { errnoCode, errorMessage } from '../errors.js';
import { ParsedFileCache } from '../util/parsed-file-cache.js';
import { HookFileError, parseHookFile, type HookDefinition } from './oci-hooks.js';

export interface HooksDirsOptions {
  dirs: readonly string[];
  log: Logger;
}

export class HooksDirs {
  private readonly files = new ParsedFileCache<HookDefinition>((file) => readHookFile(file));

  constructor(private readonly options: HooksDirsOptions) {}

  /** The usable definitions now, in injection order. */
  async definitions(): Promise<HookDefinition[]> {
    const byName = new Map<string, string>();
    for (const dir of this.options.dirs) {
      for (const name of await jsonFiles(dir, this.options.log)) byName.set(name, path.join(dir, name));
    }
    const seen = new Set<string>();
    const out: HookDefinition[] = [];
    for (const name of [...byName.keys()].sort()) {
      const file = byName.get(name)!;
      seen.add(file);
      const def = await this.load(file);
      if (def !== undefined) out.push(def);
    }
    this.files.prune(seen);
    return out;
  }

  /** The file's definition; undefined when it is gone or unusable (logged once per change of the file). */
  private async load(file: string): Promise<HookDefinition | undefined> {
    const got = await this.files.get(file);
    if (got === undefined) return undefined;
    if (got.parsed.ok) return got.parsed.value;
    if (got.fresh) this.options.log.warn({ file, reason: errorMessage(got.parsed.error) }, 'skipping an unusable OCI hook file');
    return undefined;
  }
}

/** A hook file parsed, its hook binary checked to be executable. */
async function readHookFile(file: string): Promise<HookDefinition> {
  const def = parseHookFile(await fs.readFile(file, 'utf8'), file);
  await fs.access(def.hook.path, fs.constants.X_OK).catch((e: unknown) => {
    throw new HookFileError(`hook.path: "${def.hook.path}" is not an executable file (${errnoCode(e) ?? errorMessage(e)})`);
  });
  return def;
}

/** The `*.json` names in a directory; a missing directory has none. */
async function jsonFiles(dir: string, log: Logger): Promise<string[]> {
  try {
    return (await fs.readdir(dir, { withFileTypes: true })).filter((e) => !e.isDirectory() && e.name.endsWith('.json')).map((e) => e.name);
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT') log.warn({ dir, err: e }, 'reading an OCI hooks directory');
    return [];
  }
}
