// Content-addressed blob store: `<dir>/sha256/<hex>`. A blob streams into
// `<dir>/ingest/<hex>-<random>`, is hashed and counted on the way, fsynced, and
// renamed into place only when digest and size match the descriptor; so a blob that
// is visible is always complete and correct. Concurrent ingests of one digest share
// one download. An ingest may feed a tap (the layer's unpack) with the same bytes as
// they arrive; the tap ends only once they are verified.
// Crash safety: the blob file is fsynced before its rename (a blob that is visible
// after a crash is whole: `has` trusts its size), and the directory after it.
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform, type TransformCallback, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FailedPreconditionError, InvalidArgumentError, errnoCode, isNotFound } from '../errors.js';
import { fsyncPath } from '../util/atomic-file.js';
import { BatchedFileWriter } from './batched-file-writer.js';
import { digestHex } from './digest.js';
import { isDigest } from './reference.js';
import { TapStream } from './tap-stream.js';

/** Chunk size of blob reads and writes: few syscalls, little held at once. */
export const BLOB_CHUNK_BYTES = 256 * 1024;

export interface BlobDescriptor {
  digest: string;
  size: number;
}

export interface ContentStoreOptions {
  /** `<root_dir>/images/content` */
  dir: string;
}

/** Counts and hashes what passes; fails as soon as more than `limit` bytes arrive. */
export class VerifyingStream extends Transform {
  private readonly hash = crypto.createHash('sha256');
  bytes = 0;

  /**
   * `check`, when given, sees each chunk's size and the running total before the
   * default limit check; an error it returns (or throws) fails the stream.
   */
  constructor(
    private readonly limit: number,
    private readonly what: string,
    private readonly check?: (chunkBytes: number, total: number) => Error | undefined,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.check) {
      let err: Error | undefined;
      try {
        err = this.check(chunk.length, this.bytes);
      } catch (e) {
        err = e as Error;
      }
      if (err) {
        cb(err);
        return;
      }
    }
    if (this.bytes > this.limit) {
      cb(new FailedPreconditionError(`${this.what}: more data than the ${this.limit} bytes the descriptor declares`));
      return;
    }
    this.hash.update(chunk);
    cb(null, chunk);
  }

  digest(): string {
    return `sha256:${this.hash.digest('hex')}`;
  }
}

export class ContentStore {
  private readonly blobsDir: string;
  private readonly ingestDir: string;
  private readonly inflight = new Map<string, Promise<void>>();

  constructor(private readonly opts: ContentStoreOptions) {
    this.blobsDir = path.join(opts.dir, 'sha256');
    this.ingestDir = path.join(opts.dir, 'ingest');
  }

  get dir(): string {
    return this.opts.dir;
  }

  /** Creates the directories and drops ingests left over from a crash. */
  async init(): Promise<void> {
    await fsp.mkdir(this.blobsDir, { recursive: true, mode: 0o700 });
    await fsp.rm(this.ingestDir, { recursive: true, force: true });
    await fsp.mkdir(this.ingestDir, { recursive: true, mode: 0o700 });
  }

  path(digest: string): string {
    if (!isDigest(digest)) throw new InvalidArgumentError(`blob digest ${JSON.stringify(digest)} is not sha256:<64 hex>`);
    return path.join(this.blobsDir, digestHex(digest));
  }

  /** True when the blob is present with the expected size. */
  async has(desc: BlobDescriptor): Promise<boolean> {
    try {
      const st = await fsp.stat(this.path(desc.digest));
      return st.size === desc.size;
    } catch (e) {
      if (isNotFound(e)) return false;
      throw e;
    }
  }

  /**
   * Stores the blob `desc` from `open()` unless present. Concurrent calls for one
   * digest share the same ingest. `onBytes` sees the byte count as it grows. `tap`,
   * when given, receives the blob's bytes: as they arrive when this call downloads
   * them (ended once digest and size are verified, destroyed with the error when
   * not), else read from the stored blob; a tap that fails does not fail the ingest.
   */
  async ingest(desc: BlobDescriptor, open: () => Promise<Readable>, onBytes?: (n: number) => void, tap?: Writable): Promise<void> {
    const running = this.inflight.get(desc.digest);
    if (running) {
      await this.feedFromStore(running, desc.digest, tap);
      return;
    }
    let tapped = false;
    const p = (async () => {
      if (await this.has(desc)) {
        onBytes?.(desc.size);
        return;
      }
      tapped = true;
      await this.ingestLocked(desc, await open(), onBytes, tap);
    })();
    this.inflight.set(desc.digest, p);
    try {
      await p;
    } catch (e) {
      tap?.destroy(e as Error);
      throw e;
    } finally {
      this.inflight.delete(desc.digest);
    }
    if (!tapped) await this.feedFromStore(p, desc.digest, tap);
  }

  /** After `stored`, streams the stored blob into `tap` (if any); the tap's own failure is its consumer's. */
  private async feedFromStore(stored: Promise<void>, digest: string, tap: Writable | undefined): Promise<void> {
    try {
      await stored;
    } catch (e) {
      tap?.destroy(e as Error);
      throw e;
    }
    if (!tap) return;
    await pipeline(this.openRead(digest), tap).catch(() => undefined);
  }

  /** Stores bytes already in memory (manifests, configs) after checking them. */
  async writeBytes(desc: BlobDescriptor, data: Buffer): Promise<void> {
    await this.ingest(desc, () => Promise.resolve(Readable.from([data])));
  }

  /**
   * Stores the blob `desc` unless present, with `produce` writing it, verified and
   * fsynced, to the temp file it is given (writeVerifiedBlob, e.g. in a layer worker);
   * renamed into place here. Concurrent calls for one digest (this or ingest) share
   * one: a caller that waited on another's returns false, as does one that found the
   * blob stored; true when its own `produce` made it.
   */
  async ingestVia(desc: BlobDescriptor, produce: (tmp: string) => Promise<void>): Promise<boolean> {
    const running = this.inflight.get(desc.digest);
    if (running) {
      await running;
      return false;
    }
    let produced = false;
    const p = (async () => {
      if (await this.has(desc)) return;
      const tmp = this.ingestPath(desc.digest);
      try {
        await produce(tmp);
        await this.commit(tmp, desc.digest);
      } catch (e) {
        await fsp.rm(tmp, { force: true });
        throw e;
      }
      produced = true;
    })();
    this.inflight.set(desc.digest, p);
    try {
      await p;
    } finally {
      this.inflight.delete(desc.digest);
    }
    return produced;
  }

  private ingestPath(digest: string): string {
    return path.join(this.ingestDir, `${digestHex(digest)}-${crypto.randomBytes(6).toString('hex')}`);
  }

  /** Renames a verified, fsynced temp file into place as `digest`. */
  private async commit(tmp: string, digest: string): Promise<void> {
    await fsp.rename(tmp, this.path(digest));
    await fsyncPath(this.blobsDir);
  }

  private async ingestLocked(desc: BlobDescriptor, src: Readable, onBytes?: (n: number) => void, tap?: Writable): Promise<void> {
    const tmp = this.ingestPath(desc.digest);
    try {
      await writeVerifiedBlob(desc, src, tmp, onBytes, tap);
      await this.commit(tmp, desc.digest);
    } catch (e) {
      await fsp.rm(tmp, { force: true });
      throw e;
    }
  }

  async readBytes(digest: string, maxBytes: number): Promise<Buffer> {
    const p = this.path(digest);
    const st = await fsp.stat(p);
    if (st.size > maxBytes) throw new FailedPreconditionError(`reading blob ${digest}: ${st.size} bytes, more than ${maxBytes}`);
    return fsp.readFile(p);
  }

  openRead(digest: string): Readable {
    return fs.createReadStream(this.path(digest), { highWaterMark: BLOB_CHUNK_BYTES });
  }

  async list(): Promise<string[]> {
    const names = await fsp.readdir(this.blobsDir).catch((e: unknown) => {
      if (errnoCode(e) === 'ENOENT') return [] as string[];
      throw e;
    });
    return names.filter((n) => /^[a-f0-9]{64}$/.test(n)).map((n) => `sha256:${n}`);
  }

  /** Digests being ingested right now (GC must leave them). */
  inflightDigests(): Set<string> {
    return new Set(this.inflight.keys());
  }

  async delete(digest: string): Promise<void> {
    await fsp.rm(this.path(digest), { force: true });
  }
}

/**
 * Writes `src` to the new file `tmp`, counting and hashing it on the way, and fsyncs it
 * once digest and size match `desc`; `tap`, when given, gets the same bytes and is
 * ended only then (destroyed with the error when not). The caller removes `tmp` on
 * failure and renames it on success. `syncWrites`: blocking writes on this thread (a layer worker's).
 */
export async function writeVerifiedBlob(
  desc: BlobDescriptor,
  src: Readable,
  tmp: string,
  onBytes?: (n: number) => void,
  tap?: Writable,
  syncWrites = false,
): Promise<void> {
  const what = `verifying blob ${desc.digest}`;
  const verify = new VerifyingStream(desc.size, what);
  if (onBytes) verify.on('data', () => onBytes(verify.bytes));
  const out = new BatchedFileWriter(tmp, 'wx', 0o644, syncWrites);
  try {
    if (tap) await pipeline(src, verify, new TapStream(tap), out);
    else await pipeline(src, verify, out);
    if (verify.bytes !== desc.size) {
      throw new FailedPreconditionError(`${what}: truncated: got ${verify.bytes} of the ${desc.size} bytes the descriptor declares`);
    }
    const got = verify.digest();
    if (got !== desc.digest) throw new FailedPreconditionError(`${what}: digest mismatch: content hashes to ${got}`);
    // Verified: the tap's consumer may now finish (its commit waits for this end).
    tap?.end();
    await fsyncPath(tmp);
  } catch (e) {
    src.destroy();
    // Its consumer (an unpack) must not wait for bytes that will never be verified.
    tap?.destroy(e as Error);
    throw e;
  }
}
