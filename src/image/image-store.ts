// The image index: `<root_dir>/images/index.json`, `"version": 1`, rewritten
// atomically (tmp + fsync + rename) on every change of the image records. The container
// rootfs references (which keep layers alive after their image is removed, and make
// RemoveImage name the containers that use an image) are one small file each,
// `<root_dir>/images/rootfs-refs/<key>.json`: written durably (tmp + fsync + rename +
// directory fsync) before the rootfs is mounted, unlinked when it is removed. Issue 13:
// the whole index was rewritten and fsynced twice per container, under the image
// service's one mutex, so creates and removes at once queued behind each other's
// fsyncs. An index with a `rootfs` map (written before) is moved to the files at load.
// Lookups accept an image ID (`sha256:<hex>` or bare hex), a tag reference or a digest
// reference, normalized first.
import fsp from 'node:fs/promises';
import path from 'node:path';
import { InternalError, errnoCode, errorMessage } from '../errors.js';
import { fsyncPath, writeFileAtomic } from '../util/atomic-file.js';
import type { ImageConfigFile } from './manifest.js';
import { isDigest, isHexId, normalizeReference, parseReference } from './reference.js';

export const INDEX_VERSION = 1;

export interface LayerRecord {
  digest: string;
  size: number;
  mediaType: string;
  diffId: string;
  chainId: string;
}

export interface ImageRecord {
  /** The config digest. */
  id: string;
  repoTags: string[];
  repoDigests: string[];
  /** The image manifest (platform-specific) digest. */
  manifestDigest: string;
  /** Every manifest/index blob of this image kept in the content store. */
  manifestBlobs: string[];
  configDigest: string;
  /** Config plus compressed layers, as containerd reports it. */
  size: number;
  layers: LayerRecord[];
  config: ImageConfigFile;
  pinned: boolean;
  createdAt: string;
}

export interface RootfsRef {
  imageId: string;
  chainIds: string[];
}

interface IndexFile {
  version: number;
  images: ImageRecord[];
  /** Rootfs references as an index written before issue 13 kept them (moved to files at load). */
  rootfs?: Record<string, RootfsRef>;
}

export interface ImageStoreOptions {
  /** `<root_dir>/images/index.json` */
  file: string;
  /** Where the rootfs references are (default: `rootfs-refs` beside the index). */
  refsDir?: string;
}

const REF_SUFFIX = '.json';

export class ImageStore {
  private images = new Map<string, ImageRecord>();
  private rootfs = new Map<string, RootfsRef>();
  private writing: Promise<void> = Promise.resolve();
  private readonly refsDir: string;

  constructor(private readonly opts: ImageStoreOptions) {
    this.refsDir = opts.refsDir ?? path.join(path.dirname(opts.file), 'rootfs-refs');
  }

  async load(): Promise<void> {
    let text: string;
    try {
      text = await fsp.readFile(this.opts.file, 'utf8');
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') throw e;
      await this.loadRefs(); // no image yet, references perhaps (of images removed since)
      return;
    }
    let doc: IndexFile;
    try {
      doc = JSON.parse(text) as IndexFile;
    } catch (e) {
      throw new InternalError(`loading image index "${this.opts.file}": invalid JSON`, { cause: e });
    }
    if (doc.version !== INDEX_VERSION) {
      throw new InternalError(`loading image index "${this.opts.file}": unsupported version ${JSON.stringify(doc.version)}`);
    }
    this.images = new Map((doc.images ?? []).map((r) => [r.id, r]));
    await this.loadRefs();
    const legacy = Object.entries(doc.rootfs ?? {});
    if (legacy.length > 0) {
      // Files first, then the index without them: a crash between leaves both, which load again.
      for (const [key, ref] of legacy) await this.addRootfsRef(key, ref);
      await this.persist();
    }
  }

  /** The reference files; temp files a crash left mid-write are removed. */
  private async loadRefs(): Promise<void> {
    let names: string[];
    try {
      names = await fsp.readdir(this.refsDir);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return;
      throw e;
    }
    for (const name of names) {
      const file = path.join(this.refsDir, name);
      if (!name.endsWith(REF_SUFFIX)) {
        await fsp.rm(file, { force: true });
        continue;
      }
      let ref: RootfsRef;
      try {
        ref = JSON.parse(await fsp.readFile(file, 'utf8')) as RootfsRef;
        if (typeof ref.imageId !== 'string' || !Array.isArray(ref.chainIds)) throw new Error('no imageId and chainIds');
      } catch (e) {
        throw new InternalError(`loading rootfs reference "${file}": ${errorMessage(e)}`, { cause: e });
      }
      this.rootfs.set(decodeURIComponent(name.slice(0, -REF_SUFFIX.length)), ref);
    }
  }

  private refFile(key: string): string {
    return path.join(this.refsDir, `${encodeURIComponent(key)}${REF_SUFFIX}`);
  }

  /** Writes the index; writes are serialized so the file always reflects the last state. */
  private persist(): Promise<void> {
    const doc: IndexFile = { version: INDEX_VERSION, images: [...this.images.values()] };
    const data = `${JSON.stringify(doc, null, 2)}\n`;
    const next = this.writing.then(async () => {
      await fsp.mkdir(path.dirname(this.opts.file), { recursive: true });
      await writeFileAtomic(this.opts.file, data);
    });
    this.writing = next.catch(() => undefined);
    return next;
  }

  list(): ImageRecord[] {
    return [...this.images.values()];
  }

  get(id: string): ImageRecord | undefined {
    return this.images.get(id);
  }

  /**
   * Finds an image by ID, tag or digest reference. Unparseable strings simply match
   * nothing (the caller validates input).
   */
  find(refOrId: string): ImageRecord | undefined {
    if (isDigest(refOrId)) return this.images.get(refOrId);
    if (isHexId(refOrId)) return this.images.get(`sha256:${refOrId}`);
    let norm: string;
    try {
      const ref = parseReference(refOrId);
      // `name:tag@digest` is looked up by its digest, as containerd does.
      norm = ref.digest !== undefined ? `${ref.domain}/${ref.path}@${ref.digest}` : normalizeReference(refOrId);
    } catch {
      return undefined;
    }
    for (const img of this.images.values()) {
      if (img.repoTags.includes(norm) || img.repoDigests.includes(norm)) return img;
    }
    return undefined;
  }

  /**
   * Adds or merges `rec`; its tags are taken away from any other image (a tag names
   * one image). An image left with neither tags nor digests is dropped.
   */
  async put(rec: ImageRecord): Promise<ImageRecord> {
    const existing = this.images.get(rec.id);
    const merged: ImageRecord = existing
      ? {
          ...existing,
          repoTags: union(existing.repoTags, rec.repoTags),
          repoDigests: union(existing.repoDigests, rec.repoDigests),
          pinned: existing.pinned || rec.pinned,
        }
      : rec;
    for (const other of this.images.values()) {
      if (other.id === rec.id) continue;
      const kept = other.repoTags.filter((t) => !rec.repoTags.includes(t));
      if (kept.length !== other.repoTags.length) {
        other.repoTags = kept;
        if (kept.length === 0 && other.repoDigests.length === 0) this.images.delete(other.id);
      }
    }
    this.images.set(rec.id, merged);
    await this.persist();
    return merged;
  }

  /** Takes `tag` (normalized) off image `id`; false when it did not carry it. */
  async untag(id: string, tag: string): Promise<boolean> {
    const rec = this.images.get(id);
    if (!rec || !rec.repoTags.includes(tag)) return false;
    rec.repoTags = rec.repoTags.filter((t) => t !== tag);
    await this.persist();
    return true;
  }

  async delete(id: string): Promise<boolean> {
    const had = this.images.delete(id);
    if (had) await this.persist();
    return had;
  }

  rootfsRefs(): Map<string, RootfsRef> {
    return new Map(this.rootfs);
  }

  getRootfsRef(containerId: string): RootfsRef | undefined {
    return this.rootfs.get(containerId);
  }

  /**
   * Records reference `key` (a container ID, or `<id>/image-volume/<n>`): in memory at
   * once (GC sees it from this call on), then its file, durably; the promise settles when
   * the file is on disk. A failed write takes the reference back.
   */
  addRootfsRef(key: string, ref: RootfsRef): Promise<void> {
    this.rootfs.set(key, ref);
    const written = (async () => {
      await fsp.mkdir(this.refsDir, { recursive: true, mode: 0o700 });
      await writeFileAtomic(this.refFile(key), JSON.stringify(ref), { mode: 0o600 });
    })();
    return written.catch((e: unknown) => {
      if (this.rootfs.get(key) === ref) this.rootfs.delete(key);
      throw e;
    });
  }

  /**
   * Drops reference `key`: from memory at once (before the first await), then its file,
   * the directory fsynced so a dropped reference stays dropped. Resolves to what it was.
   */
  async deleteRootfsRef(key: string): Promise<RootfsRef | undefined> {
    const ref = this.rootfs.get(key);
    if (ref === undefined) return undefined;
    this.rootfs.delete(key);
    await fsp.rm(this.refFile(key), { force: true });
    await fsyncPath(this.refsDir).catch((e: unknown) => {
      if (errnoCode(e) !== 'ENOENT') throw e;
    });
    return ref;
  }

  async flush(): Promise<void> {
    await this.writing;
  }
}

function union(a: string[], b: string[]): string[] {
  return [...new Set([...a, ...b])];
}
