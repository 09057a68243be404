// The result of each pod's CNI ADD, with the network list it was made with, kept on disk
// so CHECK and DEL get prevResult and the same config after a restart or a config change
// (libcni keeps the same under /var/lib/cni/results).
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { InternalError, errnoCode, errorMessage } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import type { CniNetworkList } from './cni-config.js';
import type { CniPortMapping } from './cni-runner.js';

export interface CachedAttachment {
  version: 1;
  podId: string;
  ifName: string;
  network: CniNetworkList;
  portMappings: CniPortMapping[];
  /** The last plugin's ADD result as printed. */
  result: Record<string, unknown>;
}

export class ResultCache {
  constructor(readonly dir: string) {}

  private file(podId: string): string {
    return path.join(this.dir, `${podId}.json`);
  }

  /**
   * Written atomically (util/atomic-file: temp file and rename, microseconds on the
   * event loop) and without fsync: the cache is in the state dir (tmpfs), which a
   * machine crash empties together with the netns and leases it describes; after a
   * daemon crash the rename alone is whole.
   */
  async save(entry: CachedAttachment): Promise<void> {
    const write = (): Promise<void> => writeFileAtomic(this.file(entry.podId), JSON.stringify(entry), { mode: 0o600, durable: false });
    try {
      // The directory is made when a save first finds it missing, not before every save
      // (two saves per ADD: issue 13).
      await write().catch(async (e: unknown) => {
        if (errnoCode(e) !== 'ENOENT') throw e;
        await fsp.mkdir(this.dir, { recursive: true, mode: 0o700 });
        await write();
      });
    } catch (e) {
      throw new InternalError(`saving CNI result of pod "${entry.podId}": ${errorMessage(e)}`, { cause: e });
    }
  }

  load(podId: string): CachedAttachment | undefined {
    let text: string;
    try {
      text = fs.readFileSync(this.file(podId), 'utf8');
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return undefined;
      throw new InternalError(`loading CNI result of pod "${podId}": ${errorMessage(e)}`, { cause: e });
    }
    try {
      const entry = JSON.parse(text) as CachedAttachment;
      if (entry.version !== 1 || entry.podId !== podId || !Array.isArray(entry.network?.plugins)) {
        throw new Error(`unexpected content (version ${JSON.stringify(entry.version)})`);
      }
      return entry;
    } catch (e) {
      throw new InternalError(`loading CNI result of pod "${podId}": ${errorMessage(e)}`, { cause: e });
    }
  }

  remove(podId: string): void {
    for (const f of [this.file(podId), `${this.file(podId)}.tmp`]) {
      try {
        fs.unlinkSync(f);
      } catch (e) {
        if (errnoCode(e) !== 'ENOENT') {
          throw new InternalError(`removing CNI result of pod "${podId}": ${errorMessage(e)}`, { cause: e });
        }
      }
    }
  }

  /**
   * Removes the temp files of saves a crash interrupted (`<id>.json.tmp-*`); only at
   * start, before any save. Returns how many went.
   */
  removeTemps(): number {
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return 0;
      throw new InternalError(`listing CNI results in "${this.dir}": ${errorMessage(e)}`, { cause: e });
    }
    let removed = 0;
    for (const n of names.filter((x) => /\.json\.tmp(-|$)/.test(x))) {
      fs.rmSync(path.join(this.dir, n), { force: true });
      removed++;
    }
    return removed;
  }

  /** Pod IDs with a cached attachment (recovery: a pod with one still holds an IP). */
  list(): string[] {
    try {
      return fs
        .readdirSync(this.dir)
        .filter((n) => n.endsWith('.json'))
        .map((n) => n.slice(0, -5))
        .sort();
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return [];
      throw new InternalError(`listing CNI results in "${this.dir}": ${errorMessage(e)}`, { cause: e });
    }
  }
}
