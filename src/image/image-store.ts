// The image index: `<root_dir>/images/index.json`, `"version": 1`, rewritten
// atomically (tmp + fsync + rename) on every change. It holds the image records and
// the container rootfs references that keep layers alive after their image is
// removed. Lookups accept an image ID (`sha256:<hex>` or bare hex), a tag
// reference or a digest reference, normalized first.
import fsp from 'node:fs/promises';
import path from 'node:path';
import { InternalError, errnoCode } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-file.js';
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
  rootfs: Record<string, RootfsRef>;
}

export interface ImageStoreOptions {
  /** `<root_dir>/images/index.json` */
  file: string;
}

export class ImageStore {
  private images = new Map<string, ImageRecord>();
  private rootfs = new Map<string, RootfsRef>();
  private writing: Promise<void> = Promise.resolve();

  constructor(private readonly opts: ImageStoreOptions) {}

  async load(): Promise<void> {
    let text: string;
    try {
      text = await fsp.readFile(this.opts.file, 'utf8');
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return;
      throw e;
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
    this.rootfs = new Map(Object.entries(doc.rootfs ?? {}));
  }

  /** Writes the index; writes are serialized so the file always reflects the last state. */
  private persist(): Promise<void> {
    const doc: IndexFile = {
      version: INDEX_VERSION,
      images: [...this.images.values()],
      rootfs: Object.fromEntries(this.rootfs),
    };
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

  async addRootfsRef(containerId: string, ref: RootfsRef): Promise<void> {
    this.rootfs.set(containerId, ref);
    await this.persist();
  }

  async deleteRootfsRef(containerId: string): Promise<void> {
    if (this.rootfs.delete(containerId)) await this.persist();
  }

  async flush(): Promise<void> {
    await this.writing;
  }
}

function union(a: string[], b: string[]): string[] {
  return [...new Set([...a, ...b])];
}
