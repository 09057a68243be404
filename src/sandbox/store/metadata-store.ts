// Metadata on disk (S3) and in memory, for sandboxes and containers alike. One
// directory per object under <dir>/<id>/ with meta.json ("version": 1), rewritten after
// every state change as tmp + fsync + rename under an exclusive flock of <id>/.lock, so
// a second daemon on the same root (or a reader) never sees half a file. The first write
// (S5: the record before any side effect) also fsyncs the directory, so it survives a
// machine crash; a rewrite does not (issue 13: two fsyncs per save were 8 of a container
// lifecycle's 11): its file is never torn, and a machine crash that keeps the previous
// version leaves a state recovery reconciles anyway, since the crash ended every process
// the newer one named (a created or running record whose conmon is gone is recorded
// exited, as after a daemon crash). In memory: a
// map with id-prefix lookup (S3: an exact ID or a unique prefix). A meta.json that does
// not load is reported by loadAll(), never deleted nor written over; its owner may keep a
// stand-in in memory (remember()) until the object is removed.
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { errnoCode, errorMessage, InternalError, InvalidArgumentError, NotFoundError } from '../../errors.js';
import { flock, funlock } from '../../../native/index.js';
import { writeFileAtomic } from '../../util/atomic-file.js';
import { compareDecimal } from '../../util/decimal-order.js';

export const METADATA_VERSION = 1;
const META_FILE = 'meta.json';
const LOCK_FILE = '.lock';

export interface MetadataRecord {
  id: string;
  version: 1;
}

export interface LoadFailure {
  id: string;
  reason: string;
  /** "missing": no meta.json (a crash before the first write); "unreadable": one that does not load. */
  kind: 'missing' | 'unreadable';
  /** The parsed JSON when it parsed (a version another sandlot wrote), for what can be shown of it. */
  parsed?: unknown;
}

export interface MetadataStoreOptions {
  dir: string;
  /** "sandbox" or "container", for messages. */
  kind: string;
  plural: string;
  idPattern: RegExp;
  /**
   * True when the object's directory is the store's alone (removed whole); false when
   * others keep files beside meta.json (only the store's own files go).
   */
  ownsDirectory: boolean;
}

export class MetadataStore<R extends MetadataRecord> {
  readonly dir: string;
  private readonly records = new Map<string, R>();
  /** listByCreation()'s answer until the records change. */
  private byCreation: ReadonlyArray<Readonly<R>> | undefined;

  constructor(private readonly opts: MetadataStoreOptions) {
    this.dir = opts.dir;
  }

  metaPath(id: string): string {
    return path.join(this.dir, id, META_FILE);
  }

  /** `fn` under the exclusive flock of <id>/.lock (the directory made when it is not there yet). */
  private async withLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const dir = path.join(this.dir, id);
    const lockFile = path.join(dir, LOCK_FILE);
    // A rewrite finds the directory there: no mkdir per save. The lock file's open and
    // close run on the event loop (an existing, empty file: microseconds), where each
    // took a thread-pool round trip, two per save and ~9 saves per pod (issue 13).
    let fd: number;
    try {
      fd = fsSync.openSync(lockFile, 'a');
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') throw e;
      await fs.mkdir(dir, { recursive: true, mode: 0o700 });
      fd = fsSync.openSync(lockFile, 'a');
    }
    try {
      await flock(fd, 'exclusive');
      try {
        return await fn();
      } finally {
        funlock(fd);
      }
    } finally {
      fsSync.closeSync(fd);
    }
  }

  /** Writes the record atomically (durably, as a first write) and keeps a copy in memory. */
  async save(rec: R): Promise<void> {
    await this.write(rec, { first: true });
    this.keep(rec);
  }

  /**
   * Writes the record atomically to disk only (a cell commits it to memory itself).
   * `first`: the record's first write, which makes its directory and survives a machine
   * crash (its directory fsynced too); otherwise a rewrite of a record on disk.
   */
  async write(rec: R, options: { first?: boolean } = {}): Promise<void> {
    const first = options.first === true;
    const file = this.metaPath(rec.id);
    if ((rec as { state?: unknown }).state === 'unknown') {
      // An unreadable meta.json is kept as it is (for inspection) until the object is removed.
      throw new InternalError(`saving metadata of ${this.opts.kind} "${rec.id}": its record is unreadable and is never written over`);
    }
    try {
      const json = JSON.stringify({ ...rec, version: METADATA_VERSION }, null, 1);
      await this.withLock(rec.id, () => writeFileAtomic(file, json, { mode: 0o600, durable: first ? true : 'contents' }));
    } catch (e) {
      throw new InternalError(`saving metadata of ${this.opts.kind} "${rec.id}" to "${file}": ${errorMessage(e)}`, { cause: e });
    }
  }

  /**
   * Keeps `rec` in memory only: the stand-in of a meta.json that did not load (state
   * unknown), listed and found like the others until it is removed.
   */
  remember(rec: R): void {
    this.keep(rec);
  }

  private keep(rec: R): void {
    this.records.set(rec.id, frozenCopy(rec));
    this.byCreation = undefined;
  }

  /**
   * Removes the metadata (and the directory when the store owns it). Idempotent. Disk
   * first, then memory: a failed rm keeps the record listed, so it is neither hidden
   * while its name stays taken nor lost to a retried remove.
   */
  async delete(id: string): Promise<void> {
    await this.deleteFiles(id);
    this.records.delete(id);
    this.byCreation = undefined;
  }

  private async deleteFiles(id: string): Promise<void> {
    const dir = path.join(this.dir, id);
    try {
      if (this.opts.ownsDirectory) {
        await fs.rm(dir, { recursive: true, force: true });
        return;
      }
      // Its own files only: meta.json, the lock, and temp files a crash left mid-save.
      const entries = await fs.readdir(dir).catch(() => [] as string[]);
      for (const f of entries) {
        // unlink, not rm: no lstat first (a directory under such a name fails, as rm did).
        if (f === META_FILE || f === LOCK_FILE || f.startsWith(`${META_FILE}.tmp`)) await unlinkIfThere(path.join(dir, f));
      }
      await fs.rmdir(dir).catch((e: unknown) => {
        if (errnoCode(e) !== 'ENOENT' && errnoCode(e) !== 'ENOTEMPTY') throw e;
      });
    } catch (e) {
      throw new InternalError(`removing metadata of ${this.opts.kind} "${id}": ${errorMessage(e)}`, { cause: e });
    }
  }

  /** Reads every meta.json; what cannot be loaded is reported, never deleted. */
  async loadAll(): Promise<{ records: R[]; failures: LoadFailure[] }> {
    const records: R[] = [];
    const failures: LoadFailure[] = [];
    for (const id of this.diskIds()) {
      try {
        await fs.access(this.metaPath(id));
      } catch {
        failures.push({ id, reason: 'no meta.json (a crash before the first write)', kind: 'missing' });
        continue;
      }
      let parsed: unknown;
      try {
        const rec = await this.withLock(id, async () => JSON.parse(await fs.readFile(this.metaPath(id), 'utf8')) as R);
        parsed = rec;
        if (rec.version !== METADATA_VERSION) throw new Error(`unknown metadata version ${JSON.stringify(rec.version)}`);
        if (rec.id !== id) throw new Error(`metadata names ${this.opts.kind} "${rec.id}"`);
        records.push(rec);
        this.keep(rec);
      } catch (e) {
        failures.push({ id, reason: `${this.metaPath(id)}: ${errorMessage(e)}`, kind: 'unreadable', ...(parsed !== undefined ? { parsed } : {}) });
      }
    }
    return { records, failures };
  }

  /** Exact ID or unique prefix; NotFound otherwise (ambiguous → InvalidArgument). */
  resolve(idOrPrefix: string): R {
    return structuredClone(this.resolveKept(idOrPrefix) as R);
  }

  /** resolve() without the copy: the kept record itself, frozen (for reads that only answer). */
  resolveKept(idOrPrefix: string): Readonly<R> {
    const rec = this.findKept(idOrPrefix);
    if (!rec) throw new NotFoundError(`${this.opts.kind} "${idOrPrefix}" not found`);
    return rec;
  }

  /** A mutable copy of the record of exact ID or unique prefix (ambiguous → InvalidArgument). */
  find(idOrPrefix: string): R | undefined {
    const kept = this.findKept(idOrPrefix);
    return kept === undefined ? undefined : structuredClone(kept as R);
  }

  /** find() without the copy: the kept record itself, frozen (for reads that only answer). */
  findKept(idOrPrefix: string): Readonly<R> | undefined {
    if (idOrPrefix === '') return undefined;
    const exact = this.records.get(idOrPrefix);
    if (exact) return exact;
    const matches = [...this.records.keys()].filter((k) => k.startsWith(idOrPrefix));
    if (matches.length > 1) {
      throw new InvalidArgumentError(`${this.opts.kind} ID prefix "${idOrPrefix}" is ambiguous: ${matches.length} ${this.opts.plural} match`);
    }
    return matches.length === 1 ? this.records.get(matches[0]) : undefined;
  }

  /** The kept record of exact ID `id` itself, frozen (no copy; change it through its cell). */
  peek(id: string): Readonly<R> | undefined {
    return this.records.get(id);
  }

  /** The kept records themselves, frozen (a read never copies; change one through its cell). */
  list(): Array<Readonly<R>> {
    return [...this.records.values()];
  }

  /**
   * The kept records oldest first (by createdAt, the order List answers in), as one frozen
   * array: sorted once per change of the records, not on every List (at 100 pods the sort
   * was ~8 % of a read's CPU in the interpreter). Equal times keep list()'s order.
   */
  listByCreation(): ReadonlyArray<Readonly<R>> {
    return (this.byCreation ??= Object.freeze([...this.records.values()].sort((a, b) => compareDecimal(createdAtOf(a), createdAtOf(b)))));
  }

  has(id: string): boolean {
    return this.records.has(id);
  }

  /** IDs with a directory on disk (for orphan checks and loading). */
  diskIds(): string[] {
    try {
      return fsSync.readdirSync(this.dir).filter((d) => this.opts.idPattern.test(d));
    } catch {
      return [];
    }
  }
}

async function unlinkIfThere(file: string): Promise<void> {
  try {
    await fs.unlink(file);
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT') throw e;
  }
}

/**
 * The copy the store keeps: deeply frozen, so list() can hand the kept records out
 * without a copy per read (a List of 100 pods cloned 100 records) and no reader can
 * change what the store holds; find() still answers a mutable copy.
 */
function frozenCopy<R>(rec: R): R {
  return deepFreeze(structuredClone(rec));
}

function deepFreeze<T>(v: T): T {
  // Byte arrays (a decoded `bytes` field) cannot be frozen while they hold elements.
  if (v !== null && typeof v === 'object' && !ArrayBuffer.isView(v) && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const k of Object.keys(v)) deepFreeze((v as Record<string, unknown>)[k]);
  }
  return v;
}

/** A record's creation time (decimal nanoseconds); "0" for a record type without one. */
function createdAtOf(rec: MetadataRecord): string {
  const t = (rec as { createdAt?: unknown }).createdAt;
  return typeof t === 'string' ? t : '0';
}
