// The image service: what src/cri and the container layer call. It owns the store
// under `<root_dir>/images`:
//   content/sha256/<hex>        verified blobs (manifests, configs, layers)
//   snapshots/<chain hex>/fs    unpacked layers (overlayfs lower dirs)
//   index.json                  image records + container rootfs references
//   lock                        flock: one daemon per store
// and container root filesystems under `<root_dir>/containers/<id>/`.
// GC: after a remove (image or rootfs), blobs and snapshots that no image, rootfs or
// running pull references are deleted.
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { SandlotConfig } from '../config/types.js';
import { FailedPreconditionError, NotFoundError, errnoCode, wrapError } from '../errors.js';
import { flockTry, funlock } from '../../native/index.js';
import { planImport } from './archive-import.js';
import { ContentStore } from './content-store.js';
import { RegistrySource } from './image-source.js';
import { ImageStore, type ImageRecord, type RootfsRef } from './image-store.js';
import type { ImageRuntimeConfig, Platform } from './manifest.js';
import { LayerWorkerPool } from './layer-worker-pool.js';
import { Puller, type PullProgress } from './puller.js';
import { credentialIdentity, credentialsFromAuthConfig, type CriAuthConfig, type RegistryCredentials } from './registry-auth.js';
import { RegistryClient } from './registry-client.js';
import { formatReference, isDigest, isHexId, parseReference, repoName, tagReference, type ImageReference } from './reference.js';
import { checkContainerId, KERNEL_MOUNTER, RootfsManager, type RootfsMounter, type RootfsPaths } from './rootfs.js';
import type { RootfsIdmap } from './rootfs-idmap.js';
import { imageVolumesDir, mountImageVolume, unmountImageVolumes } from './image-volumes.js';
import { SnapshotStore } from './snapshot-store.js';
import type { UnpackNative } from './unpack.js';
import type { ImagePullMetrics } from '../observe/image-pull-metrics.js';

export interface ImageServiceOptions {
  config: SandlotConfig;
  log: Logger;
  /** Overrides for tests: platform to select, OS hooks, registry timing. */
  platform?: Platform;
  native?: UnpackNative;
  mounter?: RootfsMounter;
  registry?: { requestTimeoutMs?: number; retryAttempts?: number; retryBaseDelayMs?: number };
  /** Counts each registry pull (observe/image-pull-metrics.ts); none in tests that do not care. */
  pullMetrics?: Pick<ImagePullMetrics, 'begin'>;
  /**
   * Where layers are fetched and unpacked: a pool of worker threads (the default; none
   * start before the first layer), or `false` for this thread. With `native` (test
   * fakes of mknod/lsetxattr, which a worker cannot see) always this thread.
   */
  layerWorkers?: LayerWorkerPool | false;
}

export interface PullOptions {
  signal?: AbortSignal;
  onProgress?: (p: PullProgress) => void;
}

export interface ResolvedImage {
  id: string;
  config: ImageRuntimeConfig;
  chainIds: string[];
}

export interface FsUsage {
  mountpoint: string;
  usedBytes: number;
  inodesUsed: number;
  timestampNs: bigint;
}

const FS_USAGE_CACHE_MS = 5_000;

/** What a remove did: tags taken off, and the image ID deleted (if it was). */
export interface RemoveResult {
  untagged: string[];
  deleted: string | undefined;
}

/** The normalized `name:tag` when `refOrId` is a tag reference (not an ID or digest). */
function tagOf(refOrId: string): string | undefined {
  if (isDigest(refOrId) || isHexId(refOrId)) return undefined;
  try {
    const ref = parseReference(refOrId);
    return ref.digest === undefined ? tagReference(ref) : undefined;
  } catch {
    return undefined;
  }
}

/** One pull in progress and the callers waiting for it (see ImageService.pull). */
interface SharedPull {
  result: Promise<ImageRecord>;
  abort: AbortController;
  waiters: Set<PullOptions>;
}

/** A tiny FIFO mutex: index mutations and GC run one at a time. */
class Mutex {
  private tail: Promise<void> = Promise.resolve();
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const prev = this.tail;
    let release!: () => void;
    this.tail = new Promise((r) => (release = r));
    await prev;
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

export class ImageService {
  private readonly pulls = new Map<string, SharedPull>();
  private readonly leases = new Map<number, Set<string>>();
  private nextLease = 1;
  private readonly mutex = new Mutex();
  private usageCache: { at: number; usage: FsUsage } | undefined;
  private closed = false;
  private readonly layerWorkers: LayerWorkerPool | undefined;

  private constructor(
    private readonly opts: ImageServiceOptions,
    readonly imagesDir: string,
    private readonly lockFd: number,
    private readonly content: ContentStore,
    private readonly snapshots: SnapshotStore,
    private readonly store: ImageStore,
    private readonly rootfs: RootfsManager,
    private readonly registry: RegistryClient,
  ) {
    if (opts.layerWorkers !== false && !opts.native) this.layerWorkers = opts.layerWorkers ?? new LayerWorkerPool({ log: opts.log });
  }

  static async open(opts: ImageServiceOptions): Promise<ImageService> {
    const imagesDir = path.join(opts.config.root_dir, 'images');
    await fsp.mkdir(imagesDir, { recursive: true, mode: 0o700 });
    const lockFd = fs.openSync(path.join(imagesDir, 'lock'), 'a');
    try {
      flockTry(lockFd, 'exclusive');
    } catch (e) {
      fs.closeSync(lockFd);
      throw new FailedPreconditionError(`opening image store "${imagesDir}": in use by another process`, { cause: e });
    }
    const content = new ContentStore({ dir: path.join(imagesDir, 'content') });
    const snapshots = new SnapshotStore({
      dir: path.join(imagesDir, 'snapshots'),
      log: opts.log,
      ...(opts.native ? { native: opts.native } : {}),
    });
    const store = new ImageStore({ file: path.join(imagesDir, 'index.json') });
    try {
      await content.init();
      await snapshots.init();
      await store.load();
      await fsp.rm(path.join(imagesDir, 'import'), { recursive: true, force: true });
    } catch (e) {
      funlock(lockFd);
      fs.closeSync(lockFd);
      throw wrapError(`opening image store "${imagesDir}"`, e);
    }
    const rootfs = new RootfsManager({
      containersDir: path.join(opts.config.root_dir, 'containers'),
      snapshotsDir: snapshots.dir,
      ...(opts.mounter ? { mounter: opts.mounter } : {}),
    });
    const registry = new RegistryClient({
      registryMirrors: opts.config.registry_mirrors,
      insecureRegistries: opts.config.insecure_registries,
      log: opts.log,
      ...opts.registry,
    });
    const svc = new ImageService(opts, imagesDir, lockFd, content, snapshots, store, rootfs, registry);
    await svc.gc();
    return svc;
  }

  private puller(leaseId: number): Puller {
    const set = new Set<string>();
    this.leases.set(leaseId, set);
    return new Puller({
      content: this.content,
      snapshots: this.snapshots,
      log: this.opts.log,
      ...(this.opts.platform ? { platform: this.opts.platform } : {}),
      lease: (k) => set.add(k),
      workers: this.layerWorkers,
      limits: {
        layerMaxBytes: this.opts.config.max_layer_unpacked_bytes,
        imageMaxBytes: this.opts.config.max_image_unpacked_bytes,
      },
    });
  }

  /**
   * Pulls `rawRef` (normalized first) and returns the stored record. Concurrent pulls
   * of the same reference with the same credentials share one pull (as CRI-O keys its
   * in-progress pulls by image + credentials): a caller never rides on a fetch that
   * someone else's credentials authorized, nor fails because of someone else's bad
   * ones. Each waiter keeps its own signal and progress: a cancel detaches only that
   * waiter, and the shared pull is aborted once every waiter has gone.
   */
  async pull(rawRef: string, auth?: CriAuthConfig | null, options: PullOptions = {}): Promise<ImageRecord> {
    const ref = parseReference(rawRef);
    const key = formatReference(ref);
    const creds = credentialsFromAuthConfig(auth);
    if (options.signal?.aborted) throw wrapError(`pulling image "${key}"`, options.signal.reason);
    const shareKey = `${key}|${credentialIdentity(creds)}`;
    let shared = this.pulls.get(shareKey);
    if (!shared) {
      shared = this.startSharedPull(ref, key, creds);
      this.pulls.set(shareKey, shared);
      const mine = shared;
      const forget = (): void => {
        if (this.pulls.get(shareKey) === mine) this.pulls.delete(shareKey);
      };
      shared.result.then(forget, forget);
    }
    return this.waitForSharedPull(shareKey, shared, key, options);
  }

  /** The pull itself, under its own abort controller (no waiter's signal). */
  private startSharedPull(ref: ImageReference, key: string, creds: RegistryCredentials | undefined): SharedPull {
    const abort = new AbortController();
    const waiters = new Set<PullOptions>();
    const recording = this.opts.pullMetrics?.begin();
    const result = this.withLease(async (puller) => {
      const started = Date.now();
      const rec = await puller.pull({
        source: new RegistrySource(this.registry, ref, creds),
        root: ref.digest ?? ref.tag!,
        repoTags: tagReference(ref) ? [tagReference(ref)!] : [],
        repoName: repoName(ref),
        pinned: false,
        signal: abort.signal,
        onProgress: (p) => {
          recording?.progress(p);
          for (const w of waiters) w.onProgress?.(p);
        },
      });
      const stored = await this.mutex.run(() => this.store.put(rec));
      this.opts.log.info({ image: key, imageId: rec.id, durationMs: Date.now() - started }, 'image pulled');
      recording?.succeeded();
      return stored;
    }).catch(async (e: unknown) => {
      recording?.failed(e, abort.signal.aborted);
      // The lease is gone: blobs verified for an image that was never stored go too.
      await this.gc().catch((ge: unknown) => this.opts.log.warn({ err: ge }, 'garbage collection after a failed pull'));
      throw wrapError(`pulling image "${key}"`, e);
    });
    // Nobody may be waiting when it fails (all cancelled): the rejection is handled.
    result.catch(() => undefined);
    return { result, abort, waiters };
  }

  /** Joins `shared` until it settles or this waiter's signal fires, whichever is first. */
  private waitForSharedPull(shareKey: string, shared: SharedPull, key: string, options: PullOptions): Promise<ImageRecord> {
    const waiter: PullOptions = { ...options };
    shared.waiters.add(waiter);
    const { signal } = options;
    return new Promise<ImageRecord>((resolve, reject) => {
      const onAbort = (): void => {
        shared.waiters.delete(waiter);
        if (shared.waiters.size === 0) {
          // The last waiter left: stop the fetch, and let a new pull start afresh.
          if (this.pulls.get(shareKey) === shared) this.pulls.delete(shareKey);
          shared.abort.abort(signal?.reason);
        }
        reject(wrapError(`pulling image "${key}"`, signal?.reason));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      shared.result.then(
        (rec) => {
          signal?.removeEventListener('abort', onAbort);
          shared.waiters.delete(waiter);
          resolve(rec);
        },
        (e: unknown) => {
          signal?.removeEventListener('abort', onAbort);
          shared.waiters.delete(waiter);
          reject(e instanceof Error ? e : new Error(String(e)));
        },
      );
    });
  }

  private async withLease<T>(fn: (puller: Puller) => Promise<T>): Promise<T> {
    const id = this.nextLease++;
    try {
      return await fn(this.puller(id));
    } finally {
      this.leases.delete(id);
    }
  }

  /**
   * Imports every image of an OCI layout dir, oci-archive or docker-archive. `name`
   * tags the image when the archive names none (only for single-image archives).
   */
  async importArchive(p: string, opts: { name?: string; pinned?: boolean } = {}): Promise<ImageRecord[]> {
    const what = `importing "${p}"`;
    const forced = opts.name !== undefined ? parseReference(opts.name) : undefined;
    const tmp = path.join(this.imagesDir, 'import', crypto.randomBytes(8).toString('hex'));
    const plan = await planImport(path.resolve(p), tmp);
    try {
      if (forced && plan.roots.length > 1) throw new FailedPreconditionError(`${what}: a name can only be given for a single image`);
      const out: ImageRecord[] = [];
      for (const root of plan.roots) {
        const names = root.names.length > 0 ? root.names : forced ? [forced] : [];
        const rec = await this.withLease((puller) =>
          puller.pull({
            source: plan.source,
            root: root.digest,
            rootSize: root.size,
            repoTags: names.map((n) => tagReference(n)).filter((t): t is string => t !== undefined),
            repoName: names[0] ? repoName(names[0]) : undefined,
            pinned: opts.pinned ?? false,
          }),
        );
        out.push(await this.mutex.run(() => this.store.put(rec)));
        this.opts.log.info({ image: rec.repoTags[0] ?? rec.id, imageId: rec.id }, 'image imported');
      }
      return out;
    } catch (e) {
      await plan.cleanup();
      // Leases are released: blobs of images that were not stored are collected.
      await this.gc().catch((ge: unknown) => this.opts.log.warn({ err: ge }, 'garbage collection after a failed import'));
      throw wrapError(what, e);
    } finally {
      await plan.cleanup();
    }
  }

  /** The image for an ID, tag or digest reference, or undefined. */
  status(refOrId: string): ImageRecord | undefined {
    return this.store.find(refOrId);
  }

  /** All images, or those matching `filter` (an ID, tag or digest reference). */
  list(filter?: string): ImageRecord[] {
    if (filter) {
      const one = this.store.find(filter);
      return one ? [one] : [];
    }
    return this.store.list();
  }

  /**
   * Removes what `refOrId` names; a missing image is not an error (CRI).
   * - A tag of an image that has other tags: only that tag goes.
   * - Otherwise (an ID, a digest reference, an image's last tag) the image goes,
   *   unless it is pinned (preloaded) or a container uses it (FAILED_PRECONDITION
   *   naming the container); then unreferenced blobs and snapshots are collected.
   * Which containers use an image is what the service itself records when it
   * prepares their rootfs (the rootfs references, kept until the rootfs is removed).
   */
  async remove(refOrId: string): Promise<RemoveResult> {
    const what = `removing image "${refOrId}"`;
    return this.mutex.run(async () => {
      const rec = this.store.find(refOrId);
      if (!rec) return { untagged: [], deleted: undefined };
      const tag = tagOf(refOrId);
      if (tag !== undefined && rec.repoTags.includes(tag) && rec.repoTags.length > 1) {
        await this.store.untag(rec.id, tag);
        this.opts.log.info({ image: tag, imageId: rec.id }, 'image untagged');
        return { untagged: [tag], deleted: undefined };
      }
      if (rec.pinned) {
        throw new FailedPreconditionError(`${what}: image ${rec.id} (${rec.repoTags.join(', ') || 'untagged'}) is pinned; pinned images are not removed`);
      }
      // Rootfs references are keyed by container ID, image volumes' by `<id>/image-volume/<n>`.
      const users = [...new Set([...this.store.rootfsRefs()].filter(([, ref]) => ref.imageId === rec.id).map(([key]) => key.split('/')[0]))];
      if (users.length > 0) {
        throw new FailedPreconditionError(
          `${what}: image ${rec.id} is in use by container${users.length > 1 ? 's' : ''} ${users.map((u) => `"${u}"`).join(', ')}; remove ${users.length > 1 ? 'them' : 'it'} first`,
        );
      }
      await this.store.delete(rec.id);
      this.opts.log.info({ image: refOrId, imageId: rec.id }, 'image removed');
      await this.gcLocked();
      return { untagged: [...rec.repoTags], deleted: rec.id };
    });
  }

  /** What a container needs from its image. Throws NotFoundError when absent. */
  resolve(refOrId: string): ResolvedImage {
    const rec = this.store.find(refOrId);
    if (!rec) throw new NotFoundError(`resolving image "${refOrId}": image not found (pull it first)`);
    return { id: rec.id, config: rec.config.config, chainIds: rec.layers.map((l) => l.chainId) };
  }

  /**
   * Mounts a private overlay rootfs of image `refOrId` for `containerId` and records
   * the reference (so GC keeps its layers even when the image is removed).
   */
  async prepareRootfs(refOrId: string, containerId: string, idmap?: RootfsIdmap): Promise<RootfsPaths> {
    const existing = this.store.getRootfsRef(containerId);
    const chainIds = existing?.chainIds ?? this.resolve(refOrId).chainIds;
    const imageId = existing?.imageId ?? this.resolve(refOrId).id;
    for (const c of chainIds) {
      if (!(await this.snapshots.has(c))) {
        throw new FailedPreconditionError(`preparing rootfs of container "${containerId}": layer snapshot ${c} is missing; pull the image again`);
      }
    }
    await this.addRef(containerId, { imageId, chainIds });
    try {
      return await this.rootfs.prepare(containerId, chainIds, idmap);
    } catch (e) {
      if (!existing) await this.dropRefs([containerId]);
      throw e;
    }
  }

  /** Unmounts and deletes the rootfs of `containerId`; idempotent. */
  async removeRootfs(containerId: string): Promise<void> {
    await this.rootfs.remove(containerId);
    await this.dropRefs([containerId]);
  }

  /**
   * Records a rootfs reference: in memory under the mutex (never in the middle of a GC),
   * its file written durably after the mutex is released (image-store.ts), so creates at
   * once do not queue behind each other's fsyncs. Resolves once the file is on disk.
   */
  private async addRef(key: string, ref: RootfsRef): Promise<void> {
    const { written } = await this.mutex.run(() => {
      const pending = this.store.addRootfsRef(key, ref);
      return Promise.resolve({ written: pending });
    });
    await written;
  }

  /**
   * Drops rootfs references (memory under the mutex, files after it). A GC only when one
   * named an image that is gone: while its image is there, the image keeps every layer
   * the reference did, and a GC would free nothing (it was run on every remove).
   */
  private async dropRefs(keys: string[]): Promise<void> {
    const { removed } = await this.mutex.run(async () => {
      const refs = keys.map((k) => this.store.getRootfsRef(k)).filter((r): r is RootfsRef => r !== undefined);
      const files = Promise.all(keys.map((k) => this.store.deleteRootfsRef(k)));
      if (refs.some((r) => this.store.get(r.imageId) === undefined)) {
        await files;
        await this.gcLocked();
      }
      return { removed: files };
    });
    await removed;
  }

  /**
   * KEP-4639: image `refOrId` mounted read-only as image volume `index` of
   * `containerId`; its path. The reference is recorded first, so RemoveImage names the
   * container and GC keeps the layers until removeImageVolumes. NotFound when the image
   * is not present (the kubelet pulls it before CreateContainer).
   */
  async prepareImageVolume(refOrId: string, containerId: string, index: number): Promise<string> {
    checkContainerId(containerId);
    const img = this.resolve(refOrId);
    for (const c of img.chainIds) {
      if (!(await this.snapshots.has(c))) throw new FailedPreconditionError(`layer snapshot ${c} of image ${img.id} is missing; pull the image again`);
    }
    const key = `${containerId}/image-volume/${index}`;
    await this.addRef(key, { imageId: img.id, chainIds: img.chainIds });
    const target = path.join(imageVolumesDir(this.rootfsContainersDir, containerId), String(index));
    try {
      await mountImageVolume(this.mounter, this.snapshots.dir, target, img.chainIds);
    } catch (e) {
      await fsp.rmdir(target).catch(() => undefined);
      await this.dropRefs([key]);
      throw e;
    }
    return target;
  }

  /** Unmounts the image volumes of `containerId` and drops their references (then GC); idempotent. */
  async removeImageVolumes(containerId: string): Promise<void> {
    checkContainerId(containerId);
    await unmountImageVolumes(imageVolumesDir(this.rootfsContainersDir, containerId));
    const keys = [...this.store.rootfsRefs().keys()].filter((k) => k.startsWith(`${containerId}/image-volume/`));
    if (keys.length > 0) await this.dropRefs(keys);
  }

  private get rootfsContainersDir(): string {
    return path.join(this.opts.config.root_dir, 'containers');
  }

  private get mounter(): RootfsMounter {
    return this.opts.mounter ?? KERNEL_MOUNTER;
  }

  /** Paths of a container's rootfs (whether or not it is mounted). */
  rootfsPaths(containerId: string): RootfsPaths {
    return this.rootfs.paths(containerId);
  }

  async gc(): Promise<void> {
    await this.mutex.run(() => this.gcLocked());
  }

  private async gcLocked(): Promise<void> {
    const keep = new Set<string>();
    for (const img of this.store.list()) {
      for (const d of img.manifestBlobs) keep.add(d);
      keep.add(img.configDigest);
      for (const l of img.layers) {
        keep.add(l.digest);
        keep.add(l.chainId);
      }
    }
    for (const ref of this.store.rootfsRefs().values()) for (const c of ref.chainIds) keep.add(c);
    for (const lease of this.leases.values()) for (const k of lease) keep.add(k);
    for (const d of this.content.inflightDigests()) keep.add(d);
    for (const c of this.snapshots.inflightChainIds()) keep.add(c);
    let removed = 0;
    for (const d of await this.content.list()) {
      if (!keep.has(d)) {
        await this.content.delete(d);
        removed++;
      }
    }
    for (const c of await this.snapshots.list()) {
      if (!keep.has(c)) {
        await this.snapshots.delete(c);
        removed++;
      }
    }
    if (removed > 0) {
      this.usageCache = undefined;
      this.opts.log.debug({ removed }, 'image garbage collected');
    }
  }

  /** Usage of the image store (bytes by allocated blocks, and inodes), cached briefly. */
  async fsInfo(): Promise<FsUsage> {
    const now = Date.now();
    if (this.usageCache && now - this.usageCache.at < FS_USAGE_CACHE_MS) return this.usageCache.usage;
    let usedBytes = 0;
    let inodesUsed = 0;
    const seen = new Set<string>();
    const walk = async (dir: string): Promise<void> => {
      let names: string[];
      try {
        names = await fsp.readdir(dir);
      } catch (e) {
        if (errnoCode(e) === 'ENOENT') return;
        throw e;
      }
      for (const n of names) {
        const p = path.join(dir, n);
        let st: fs.BigIntStats;
        try {
          st = await fsp.lstat(p, { bigint: true });
        } catch (e) {
          if (errnoCode(e) === 'ENOENT') continue;
          throw e;
        }
        const key = `${st.dev}:${st.ino}`;
        if (!seen.has(key)) {
          seen.add(key);
          usedBytes += Number(st.blocks) * 512;
          inodesUsed++;
        }
        if (st.isDirectory()) await walk(p);
      }
    };
    await walk(this.imagesDir);
    const usage: FsUsage = { mountpoint: this.imagesDir, usedBytes, inodesUsed, timestampNs: BigInt(now) * 1_000_000n };
    this.usageCache = { at: now, usage };
    return usage;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.layerWorkers?.close();
    await this.store.flush();
    try {
      funlock(this.lockFd);
    } finally {
      fs.closeSync(this.lockFd);
    }
  }
}
