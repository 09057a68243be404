// Container metadata on disk (S3) and in memory. One directory per container under
// <root_dir>/containers/<id>/ (beside the image service's rootfs/ and overlay/ of the
// same container) with meta.json ("version": 1), rewritten after every state change as
// tmp + fsync + rename under an exclusive flock of <id>/.lock. In memory: a map with
// id-prefix lookup (S3: an exact ID or a unique prefix).
import fs from 'node:fs/promises';
import path from 'node:path';
import { errnoCode, errorMessage, InternalError, InvalidArgumentError, NotFoundError } from '../errors.js';
import { flock, funlock } from '../../native/index.js';
import { CONTAINER_ID_RE, type ContainerRecord } from './container.js';

export const CONTAINER_METADATA_VERSION = 1;
const META_FILE = 'meta.json';

export interface ContainerLoadFailure {
  id: string;
  reason: string;
}

export class ContainerStore {
  readonly dir: string;
  private readonly records = new Map<string, ContainerRecord>();

  constructor(options: { rootDir: string }) {
    this.dir = path.join(options.rootDir, 'containers');
  }

  metaPath(id: string): string {
    return path.join(this.dir, id, META_FILE);
  }

  private async withLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const dir = path.join(this.dir, id);
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    const handle = await fs.open(path.join(dir, '.lock'), 'a');
    try {
      await flock(handle.fd, 'exclusive');
      try {
        return await fn();
      } finally {
        funlock(handle.fd);
      }
    } finally {
      await handle.close();
    }
  }

  /** Writes the record atomically and keeps a copy in memory. */
  async save(rec: ContainerRecord): Promise<void> {
    const file = this.metaPath(rec.id);
    try {
      await this.withLock(rec.id, async () => {
        const tmp = `${file}.tmp`;
        const handle = await fs.open(tmp, 'w', 0o600);
        try {
          await handle.writeFile(JSON.stringify({ ...rec, version: CONTAINER_METADATA_VERSION }, null, 1));
          await handle.sync();
        } finally {
          await handle.close();
        }
        await fs.rename(tmp, file);
      });
    } catch (e) {
      throw new InternalError(`saving metadata of container "${rec.id}" to "${file}": ${errorMessage(e)}`, { cause: e });
    }
    this.records.set(rec.id, structuredClone(rec));
  }

  /** Removes meta.json and its lock (and the directory when nothing else is left). Idempotent. */
  async delete(id: string): Promise<void> {
    this.records.delete(id);
    const dir = path.join(this.dir, id);
    try {
      await fs.rm(path.join(dir, META_FILE), { force: true });
      await fs.rm(path.join(dir, `${META_FILE}.tmp`), { force: true });
      await fs.rm(path.join(dir, '.lock'), { force: true });
      await fs.rmdir(dir).catch((e: unknown) => {
        if (errnoCode(e) !== 'ENOENT' && errnoCode(e) !== 'ENOTEMPTY') throw e;
      });
    } catch (e) {
      throw new InternalError(`removing metadata of container "${id}": ${errorMessage(e)}`, { cause: e });
    }
  }

  /** Reads every meta.json; what cannot be loaded is reported, never deleted. */
  async loadAll(): Promise<{ records: ContainerRecord[]; failures: ContainerLoadFailure[] }> {
    const records: ContainerRecord[] = [];
    const failures: ContainerLoadFailure[] = [];
    let ids: string[];
    try {
      ids = await fs.readdir(this.dir);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return { records, failures };
      throw e;
    }
    for (const id of ids) {
      if (!CONTAINER_ID_RE.test(id)) continue;
      try {
        await fs.access(this.metaPath(id));
      } catch {
        // A rootfs left without metadata: the caller decides (a crash before the first write).
        failures.push({ id, reason: 'no meta.json' });
        continue;
      }
      try {
        const rec = await this.withLock(id, async () => JSON.parse(await fs.readFile(this.metaPath(id), 'utf8')) as ContainerRecord);
        if (rec.version !== CONTAINER_METADATA_VERSION) throw new Error(`unknown metadata version ${JSON.stringify(rec.version)}`);
        if (rec.id !== id) throw new Error(`metadata names container "${rec.id}"`);
        records.push(rec);
        this.records.set(id, structuredClone(rec));
      } catch (e) {
        failures.push({ id, reason: errorMessage(e) });
      }
    }
    return { records, failures };
  }

  /** Exact ID or unique prefix; NotFound otherwise (ambiguous → InvalidArgument). */
  resolve(idOrPrefix: string): ContainerRecord {
    const rec = this.find(idOrPrefix);
    if (!rec) throw new NotFoundError(`container "${idOrPrefix}" not found`);
    return rec;
  }

  find(idOrPrefix: string): ContainerRecord | undefined {
    if (idOrPrefix === '') return undefined;
    const exact = this.records.get(idOrPrefix);
    if (exact) return structuredClone(exact);
    const matches = [...this.records.keys()].filter((k) => k.startsWith(idOrPrefix));
    if (matches.length > 1) {
      throw new InvalidArgumentError(`container ID prefix "${idOrPrefix}" is ambiguous: ${matches.length} containers match`);
    }
    return matches.length === 1 ? structuredClone(this.records.get(matches[0]!)!) : undefined;
  }

  list(): ContainerRecord[] {
    return [...this.records.values()].map((r) => structuredClone(r));
  }

  ofPod(podId: string): ContainerRecord[] {
    return this.list().filter((r) => r.podId === podId);
  }
}
