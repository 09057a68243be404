// Unpacked layers, one directory per chain ID: `<dir>/<chain hex>/fs`, each an
// overlayfs lower dir. A layer is unpacked into `<dir>/tmp-<random>/fs` and renamed
// into place once complete and verified against its diff ID, so a visible snapshot is
// always whole. Concurrent unpacks of one chain ID share the work.
import crypto from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { FailedPreconditionError, ResourceExhaustedError, errnoCode } from '../errors.js';
import { fsyncPath } from '../util/atomic-file.js';
import { VerifyingStream } from './content-store.js';
import { digestHex } from './digest.js';
import { unpackLayer, type UnpackLog, type UnpackNative } from './unpack.js';

const TMP_PREFIX = 'tmp-';

export interface SnapshotStoreOptions {
  /** `<root_dir>/images/snapshots` */
  dir: string;
  log: Logger;
  native?: UnpackNative;
}

/** Bounds on what one unpack may write, checked as the uncompressed tar streams in. */
export interface UnpackLimits {
  /** Most uncompressed tar bytes of this layer (config max_layer_unpacked_bytes). */
  layerMaxBytes: number;
  /** Called with each chunk's size; throws when the image as a whole goes over its limit. */
  charge?: (bytes: number) => void;
}

export class SnapshotStore {
  private readonly inflight = new Map<string, Promise<void>>();

  constructor(private readonly opts: SnapshotStoreOptions) {}

  get dir(): string {
    return this.opts.dir;
  }

  /** Creates the directory and drops half-unpacked layers left by a crash. */
  async init(): Promise<void> {
    await fsp.mkdir(this.opts.dir, { recursive: true, mode: 0o700 });
    for (const name of await fsp.readdir(this.opts.dir)) {
      if (name.startsWith(TMP_PREFIX)) await fsp.rm(path.join(this.opts.dir, name), { recursive: true, force: true });
    }
  }

  /** The lower dir for `chainId`. */
  fsPath(chainId: string): string {
    return path.join(this.opts.dir, digestHex(chainId), 'fs');
  }

  async has(chainId: string): Promise<boolean> {
    try {
      return (await fsp.stat(this.fsPath(chainId))).isDirectory();
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return false;
      throw e;
    }
  }

  /**
   * Unpacks the uncompressed layer tar from `open()` as `chainId`, checking that it
   * hashes to `diffId`. A no-op when the snapshot exists.
   */
  async unpack(chainId: string, diffId: string, open: () => Readable, what: string, limits?: UnpackLimits): Promise<void> {
    await this.unpackVia(chainId, (root) => unpackVerified(open, { root, diffId, what, log: this.opts.log, native: this.opts.native, limits }));
  }

  /**
   * Makes the snapshot `chainId` unless it exists: `produce` fills the empty directory
   * it is given with the verified layer (unpackVerified, e.g. in a layer worker),
   * which is renamed into place here. Concurrent calls for one chain ID share one.
   */
  async unpackVia(chainId: string, produce: (root: string) => Promise<void>): Promise<void> {
    const running = this.inflight.get(chainId);
    if (running) return running;
    const p = (async () => {
      if (await this.has(chainId)) return;
      await this.unpackNew(chainId, produce);
    })();
    this.inflight.set(chainId, p);
    try {
      await p;
    } finally {
      this.inflight.delete(chainId);
    }
  }

  private async unpackNew(chainId: string, produce: (root: string) => Promise<void>): Promise<void> {
    const tmp = path.join(this.opts.dir, `${TMP_PREFIX}${crypto.randomBytes(8).toString('hex')}`);
    const root = path.join(tmp, 'fs');
    await fsp.mkdir(root, { recursive: true, mode: 0o755 });
    try {
      await produce(root);
      await fsyncPath(tmp);
      await fsp.rename(tmp, path.join(this.opts.dir, digestHex(chainId)));
      await fsyncPath(this.opts.dir);
    } catch (e) {
      await fsp.rm(tmp, { recursive: true, force: true });
      throw e;
    }
  }

  async list(): Promise<string[]> {
    const names = await fsp.readdir(this.opts.dir).catch((e: unknown) => {
      if (errnoCode(e) === 'ENOENT') return [] as string[];
      throw e;
    });
    return names.filter((n) => /^[a-f0-9]{64}$/.test(n)).map((n) => `sha256:${n}`);
  }

  inflightChainIds(): Set<string> {
    return new Set(this.inflight.keys());
  }

  async delete(chainId: string): Promise<void> {
    await fsp.rm(path.join(this.opts.dir, digestHex(chainId)), { recursive: true, force: true });
  }
}

export interface UnpackVerifiedOptions {
  /** The empty directory to unpack into. */
  root: string;
  diffId: string;
  what: string;
  log: UnpackLog;
  native?: UnpackNative | undefined;
  limits?: UnpackLimits | undefined;
  /** Writes the files with blocking calls (a layer worker's thread; see unpack.ts). */
  syncWrites?: boolean | undefined;
}

/**
 * Unpacks the uncompressed layer tar from `open()` into `o.root`, counting it against
 * the limits as it streams and checking at the end that it hashes to `o.diffId`.
 */
export async function unpackVerified(open: () => Readable, o: UnpackVerifiedOptions): Promise<void> {
  const { what, limits } = o;
  // Opened only now, with its error handler attached at once: a source that starts
  // flowing when opened (a download teed into this unpack) may fail at any moment.
  let src: Readable | undefined;
  try {
    src = open();
    const max = limits?.layerMaxBytes ?? Number.MAX_SAFE_INTEGER;
    // Counted while streaming, so a small gzip that expands without bound stops at
    // the limit instead of filling the disk; the caller's temp dir then goes.
    const verify = new VerifyingStream(max, what, (chunkBytes, total) => {
      if (total > max) return new ResourceExhaustedError(`${what}: unpacks to more than ${max} bytes (config max_layer_unpacked_bytes)`);
      limits?.charge?.(chunkBytes);
      return undefined;
    });
    src.on('error', (e) => verify.destroy(e));
    src.pipe(verify);
    await unpackLayer(verify, { root: o.root, what, log: o.log, syncWrites: o.syncWrites === true, ...(o.native ? { native: o.native } : {}) });
    const got = verify.digest();
    if (got !== o.diffId) {
      throw new FailedPreconditionError(`${what}: uncompressed layer hashes to ${got}, but the image config says ${o.diffId}`);
    }
  } catch (e) {
    src?.destroy();
    throw e;
  }
}
