// Sandbox metadata on disk (S3) and in memory. One directory per sandbox under
// <root_dir>/pods/<id>/ with meta.json ("version": 1), rewritten after every state change
// as tmp + fsync + rename under an exclusive flock of <id>/.lock, so a second daemon on
// the same root (or a reader) never sees half a file. In memory: a map with id-prefix
// lookup (S3: an exact ID or a unique prefix).
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { errnoCode, errorMessage, InternalError, InvalidArgumentError, NotFoundError } from '../errors.js';
import { flock, funlock } from '../../native/index.js';
import { SANDBOX_ID_RE, type SandboxRecord } from './sandbox.js';

export const METADATA_VERSION = 1;

export interface LoadFailure {
  id: string;
  reason: string;
}

export class SandboxStore {
  readonly dir: string;
  private readonly records = new Map<string, SandboxRecord>();

  constructor(options: { rootDir: string }) {
    this.dir = path.join(options.rootDir, 'pods');
  }

  metaPath(id: string): string {
    return path.join(this.dir, id, 'meta.json');
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

  /** Writes the record atomically and keeps it in memory (a copy). */
  async save(rec: SandboxRecord): Promise<void> {
    const file = this.metaPath(rec.id);
    try {
      await this.withLock(rec.id, async () => {
        const tmp = `${file}.tmp`;
        const handle = await fs.open(tmp, 'w', 0o600);
        try {
          await handle.writeFile(JSON.stringify({ ...rec, version: METADATA_VERSION }, null, 1));
          await handle.sync();
        } finally {
          await handle.close();
        }
        await fs.rename(tmp, file);
      });
    } catch (e) {
      throw new InternalError(`saving metadata of sandbox "${rec.id}" to "${file}": ${errorMessage(e)}`, { cause: e });
    }
    this.records.set(rec.id, structuredClone(rec));
  }

  /** Removes the metadata directory and the in-memory record. Idempotent. */
  async delete(id: string): Promise<void> {
    this.records.delete(id);
    try {
      await fs.rm(path.join(this.dir, id), { recursive: true, force: true });
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') throw new InternalError(`removing metadata of sandbox "${id}": ${errorMessage(e)}`, { cause: e });
    }
  }

  /** Reads every meta.json; what cannot be loaded is reported, never deleted. */
  async loadAll(): Promise<{ records: SandboxRecord[]; failures: LoadFailure[] }> {
    const records: SandboxRecord[] = [];
    const failures: LoadFailure[] = [];
    let ids: string[];
    try {
      ids = await fs.readdir(this.dir);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return { records, failures };
      throw e;
    }
    for (const id of ids) {
      if (!SANDBOX_ID_RE.test(id)) continue;
      try {
        const rec = await this.withLock(id, async () => JSON.parse(await fs.readFile(this.metaPath(id), 'utf8')) as SandboxRecord);
        if (rec.version !== METADATA_VERSION) throw new Error(`unknown metadata version ${JSON.stringify(rec.version)}`);
        if (rec.id !== id) throw new Error(`metadata names sandbox "${rec.id}"`);
        records.push(rec);
        this.records.set(id, rec);
      } catch (e) {
        failures.push({ id, reason: errnoCode(e) === 'ENOENT' ? 'no meta.json (a crash before the first write)' : errorMessage(e) });
      }
    }
    return { records, failures };
  }

  /** Exact ID or unique prefix; NotFound otherwise (ambiguous → InvalidArgument). */
  resolve(idOrPrefix: string): SandboxRecord {
    const rec = this.find(idOrPrefix);
    if (!rec) throw new NotFoundError(`sandbox "${idOrPrefix}" not found`);
    return rec;
  }

  find(idOrPrefix: string): SandboxRecord | undefined {
    if (idOrPrefix === '') return undefined;
    const exact = this.records.get(idOrPrefix);
    if (exact) return structuredClone(exact);
    const matches = [...this.records.keys()].filter((k) => k.startsWith(idOrPrefix));
    if (matches.length > 1) {
      throw new InvalidArgumentError(`sandbox ID prefix "${idOrPrefix}" is ambiguous: ${matches.length} sandboxes match`);
    }
    return matches.length === 1 ? structuredClone(this.records.get(matches[0]!)!) : undefined;
  }

  list(): SandboxRecord[] {
    return [...this.records.values()].map((r) => structuredClone(r));
  }

  has(id: string): boolean {
    return this.records.has(id);
  }

  /** IDs with a directory on disk (for orphan checks). */
  diskIds(): string[] {
    try {
      return fsSync.readdirSync(this.dir).filter((d) => SANDBOX_ID_RE.test(d));
    } catch {
      return [];
    }
  }
}
