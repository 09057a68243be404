// One pull, from any ImageSource:
//   root manifest (tag or digest) ─index?→ platform manifest → config → layers
// Every document and blob is checked against the digest and size that named it (a
// manifest that lies about a size fails); layers are fetched concurrently (bounded),
// each in one pass: the bytes stream into the content store and, as they arrive,
// through the decompressor into the layer's chain-ID snapshot (each layer is its own
// overlay lower dir, so layers unpack in any order). The snapshot is committed only
// once the blob's digest and the layer's diff ID both check out.
// The result is an ImageRecord the caller stores.
import { PassThrough, type Readable } from 'node:stream';
import type { Logger } from 'pino';
import { FailedPreconditionError, ResourceExhaustedError } from '../errors.js';
import { childSpan, SPAN_ATTR, withSpanAttributes } from '../observe/spans.js';
import type { ContentStore } from './content-store.js';
import { chainIds, sha256Digest } from './digest.js';
import { BlobStatusError } from './blob-http.js';
import { decompressedFrom } from './decompress.js';
import type { ImageSource } from './image-source.js';
import type { LayerJob } from './layer-job.js';
import type { LayerWorkerPool } from './layer-worker-pool.js';
import type { ImageRecord, LayerRecord } from './image-store.js';
import {
  CONFIG_SIZE_MAX_BYTES,
  hostPlatform,
  layerCompression,
  parseImageConfig,
  parseManifest,
  selectPlatform,
  type Descriptor,
  type ImageManifest,
  type Platform,
} from './manifest.js';
import type { SnapshotStore, UnpackLimits } from './snapshot-store.js';
import { TAP_BUFFER_BYTES } from './tap-stream.js';

export const LAYER_CONCURRENCY = 3;
const LAYER_ATTEMPTS = 3;

export interface PullProgress {
  layer: string;
  bytes: number;
  total: number;
  phase: 'downloading' | 'unpacking' | 'done';
}

export interface PullerOptions {
  content: ContentStore;
  snapshots: SnapshotStore;
  log: Logger;
  platform?: Platform;
  /** Marks digests/chain IDs in use so GC keeps them until the record is stored. */
  lease: (key: string) => void;
  /** Unpack bounds (config max_layer_unpacked_bytes / max_image_unpacked_bytes); unbounded when absent. */
  limits?: { layerMaxBytes: number; imageMaxBytes: number };
  /** Layer worker threads to fetch and unpack layers on; in this thread when absent. */
  workers?: LayerWorkerPool | undefined;
}

export interface PullRequest {
  source: ImageSource;
  /** Tag or `sha256:…` to fetch first. */
  root: string;
  /** Size of the root document when a descriptor named it (OCI layout index entry). */
  rootSize?: number | undefined;
  repoTags: string[];
  /** Repository name (`docker.io/library/busybox`) for the repo digest, if any. */
  repoName: string | undefined;
  pinned: boolean;
  signal?: AbortSignal | undefined;
  onProgress?: ((p: PullProgress) => void) | undefined;
}

export class Puller {
  constructor(private readonly opts: PullerOptions) {}

  pull(req: PullRequest): Promise<ImageRecord> {
    // Every span of the pull (manifest, each layer's fetch and unpack) names the image.
    return withSpanAttributes({ [SPAN_ATTR.image]: req.repoTags[0] ?? req.root }, () => this.pullNow(req));
  }

  private async pullNow(req: PullRequest): Promise<ImageRecord> {
    const { root, manifest, manifestDigest, manifestBlobs } = await this.resolveManifest(req);
    const { config, layers } = await this.readConfig(req, manifest);
    await this.fetchAndUnpackLayers(req, manifest.config.digest, layers);
    return {
      id: manifest.config.digest,
      repoTags: req.repoTags,
      repoDigests: req.repoName ? [`${req.repoName}@${root}`] : [],
      manifestDigest,
      manifestBlobs,
      configDigest: manifest.config.digest,
      size: manifest.config.size + layers.reduce((n, l) => n + l.size, 0),
      layers,
      config,
      pinned: req.pinned,
      createdAt: new Date().toISOString(),
    };
  }

  /** The root document and, when it is an index, the host platform's manifest; both stored. */
  private async resolveManifest(req: PullRequest): Promise<{ root: string; manifest: ImageManifest; manifestDigest: string; manifestBlobs: string[] }> {
    const { source } = req;
    const rootDesc = req.root.startsWith('sha256:') ? { digest: req.root, size: req.rootSize } : undefined;
    const root = await childSpan('image fetch manifest', { 'oci.manifest.reference': req.root }, () =>
      this.fetchDocument(source, req.root, rootDesc, req.signal),
    );
    const manifestBlobs = [root.digest];
    let manifest: ImageManifest;
    let manifestDigest = root.digest;
    const parsed = parseManifest(root.bytes, root.contentType, `manifest ${root.digest} from ${source.describe}`);
    if (parsed.kind === 'index') {
      const chosen: Descriptor = selectPlatform(parsed, this.opts.platform ?? hostPlatform(), `selecting platform in index ${root.digest}`);
      const child = await childSpan('image fetch manifest', { 'oci.manifest.reference': chosen.digest }, () =>
        this.fetchDocument(source, chosen.digest, chosen, req.signal),
      );
      const inner = parseManifest(child.bytes, chosen.mediaType, `manifest ${chosen.digest} from ${source.describe}`);
      if (inner.kind !== 'manifest') throw new FailedPreconditionError(`manifest ${chosen.digest}: an index inside an index is not supported`);
      manifest = inner;
      manifestDigest = child.digest;
      manifestBlobs.push(child.digest);
      await this.store(child.digest, child.bytes);
    } else {
      manifest = parsed;
    }
    await this.store(root.digest, root.bytes);
    return { root: root.digest, manifest, manifestDigest, manifestBlobs };
  }

  /** Fetches and parses the config; the layer records (diff and chain IDs) it gives, leased. */
  private async readConfig(req: PullRequest, manifest: ImageManifest): Promise<{ config: ImageRecord['config']; layers: LayerRecord[] }> {
    if (manifest.config.size > CONFIG_SIZE_MAX_BYTES) {
      throw new FailedPreconditionError(`config ${manifest.config.digest}: ${manifest.config.size} bytes, more than ${CONFIG_SIZE_MAX_BYTES}`);
    }
    this.opts.lease(manifest.config.digest);
    // Progress is per layer: the config blob is small and not shown.
    await this.ingest(req.source, manifest.config, { ...req, onProgress: undefined });
    const configBytes = await this.opts.content.readBytes(manifest.config.digest, CONFIG_SIZE_MAX_BYTES);
    const config = parseImageConfig(configBytes, manifest, `config ${manifest.config.digest}`);
    const chains = chainIds(config.rootfs.diff_ids);
    const layers: LayerRecord[] = manifest.layers.map((l, i) => ({
      digest: l.digest,
      size: l.size,
      mediaType: l.mediaType,
      diffId: config.rootfs.diff_ids[i],
      chainId: chains[i],
    }));
    for (const l of layers) {
      layerCompression(l.mediaType); // unsupported media types fail before any download
      this.opts.lease(l.digest);
      this.opts.lease(l.chainId);
    }
    return { config, layers };
  }

  /** Downloads and unpacks the layers, LAYER_CONCURRENCY at once, under one image budget. */
  private async fetchAndUnpackLayers(req: PullRequest, configDigest: string, layers: LayerRecord[]): Promise<void> {
    const layerMaxBytes = this.opts.limits?.layerMaxBytes ?? Number.MAX_SAFE_INTEGER;
    const imageMax = this.opts.limits?.imageMaxBytes ?? Number.MAX_SAFE_INTEGER;
    const workers = this.opts.workers;
    if (workers) {
      // One budget for the whole image, counted by its layers' jobs in whichever worker.
      const budget = { used: new SharedArrayBuffer(BigInt64Array.BYTES_PER_ELEMENT), max: imageMax, configDigest };
      const used = new BigInt64Array(budget.used);
      const sharedCharge = (counter: BigInt64Array, digest: string) => (n: number) => {
        if (Atomics.add(counter, 0, BigInt(n)) + BigInt(n) > BigInt(imageMax)) throw overImage(digest, configDigest, imageMax);
      };
      await forEachLimited(layers, LAYER_CONCURRENCY, (l) =>
        this.retrying(req, l.digest, async () => {
          if (!workers.wants(l.size)) {
            await this.fetchAndUnpack(req, l, { layerMaxBytes, charge: sharedCharge(used, l.digest) });
            return;
          }
          try {
            await this.fetchAndUnpackInWorker(workers, req, l, layerMaxBytes, budget);
          } catch (e) {
            if (!(e instanceof BlobStatusError)) throw e;
            // The registry wants more than the worker's one GET (a new token, another
            // mirror, a retry of a 5xx): this thread's client does all that, and gives
            // the typed error when it cannot.
            this.opts.log.debug({ err: e, digest: l.digest }, 'layer worker got a registry status; fetching the layer here');
            await this.fetchAndUnpack(req, l, { layerMaxBytes, charge: sharedCharge(used, l.digest) });
          }
        }),
      );
      return;
    }
    // One budget for the whole image, shared by its concurrent layer unpacks.
    let imageBytes = 0;
    const charge = (n: number, layer: string): void => {
      imageBytes += n;
      if (imageBytes > imageMax) throw overImage(layer, configDigest, imageMax);
    };
    await forEachLimited(layers, LAYER_CONCURRENCY, (l) =>
      this.retrying(req, l.digest, () => this.fetchAndUnpack(req, l, { layerMaxBytes, charge: (n) => charge(n, l.digest) })),
    );
  }

  /**
   * One layer on a layer worker: the download into the content store's temp file and
   * the unpack into the snapshot's temp dir in one pass there (layer-job.ts); each
   * store renames its part into place here. A blob already stored is unpacked from
   * its file; a snapshot already made only needs the blob.
   */
  private async fetchAndUnpackInWorker(
    workers: LayerWorkerPool,
    req: PullRequest,
    l: LayerRecord,
    layerMaxBytes: number,
    budget: NonNullable<LayerJob['budget']>,
  ): Promise<void> {
    const { content, snapshots } = this.opts;
    const layerAttrs = { 'sandlot.layer.digest': l.digest, 'sandlot.layer.size': l.size, 'sandlot.layer.media_type': l.mediaType };
    const base = { digest: l.digest, size: l.size, mediaType: l.mediaType };
    const onBytes = (bytes: number): void => {
      req.onProgress?.({ layer: l.digest, bytes, total: l.size, phase: 'downloading' });
      if (bytes === l.size) req.onProgress?.({ layer: l.digest, bytes, total: l.size, phase: 'unpacking' });
    };
    const run = (job: LayerJob): Promise<void> => workers.run(job, { signal: req.signal, onBytes });
    // The same spans as in this thread: the fetch (with, on the worker, the unpack it feeds) inside the unpack.
    const fetch = (unpack?: LayerJob['unpack']): Promise<boolean> =>
      childSpan('image fetch layer', layerAttrs, () =>
        content.ingestVia(l, async (tmp) => run({ ...base, from: await req.source.locateBlob(l.digest), blobFile: tmp, unpack, budget })),
      );
    let unpacked = false;
    await childSpan('image unpack layer', { ...layerAttrs, 'sandlot.layer.chain_id': l.chainId }, () =>
      snapshots.unpackVia(l.chainId, async (root) => {
        unpacked = true;
        const unpack = { root, diffId: l.diffId, layerMaxBytes };
        if (!(await fetch(unpack))) await run({ ...base, from: { kind: 'file', path: content.path(l.digest) }, unpack, budget });
      }),
    );
    // The snapshot was there (or another pull made it): the blob still belongs to the image.
    if (!unpacked) await fetch();
    req.onProgress?.({ layer: l.digest, bytes: l.size, total: l.size, phase: 'done' });
  }

  /**
   * One layer: the download streams into the content store and, through a tap, into
   * the unpack at once. Either failing fails the layer; the unpack commits only
   * after the blob is verified (the tap ends then) and its own diff ID matches.
   */
  private async fetchAndUnpack(req: PullRequest, l: LayerRecord, limits: UnpackLimits): Promise<void> {
    const layerAttrs = { 'sandlot.layer.digest': l.digest, 'sandlot.layer.size': l.size, 'sandlot.layer.media_type': l.mediaType };
    let fetching: Promise<void> | undefined;
    const fetch = (tap?: PassThrough): Promise<void> =>
      childSpan('image fetch layer', layerAttrs, () =>
        this.opts.content.ingest(
          l,
          () => req.source.openBlob(l.digest, req.signal),
          (bytes) => req.onProgress?.({ layer: l.digest, bytes, total: l.size, phase: 'downloading' }),
          tap,
        ),
      ).then(() => req.onProgress?.({ layer: l.digest, bytes: l.size, total: l.size, phase: 'unpacking' }));
    const open = (): Readable => {
      const tap = new PassThrough({ highWaterMark: TAP_BUFFER_BYTES });
      fetching = fetch(tap);
      // Awaited below once the unpack settles; until then a failure must not count as unhandled.
      fetching.catch(() => undefined);
      return decompressedFrom(tap, layerCompression(l.mediaType));
    };
    try {
      await childSpan('image unpack layer', { ...layerAttrs, 'sandlot.layer.chain_id': l.chainId }, () =>
        this.opts.snapshots.unpack(l.chainId, l.diffId, open, `unpacking layer ${l.digest}`, limits),
      );
    } catch (e) {
      // The download's own error (a digest mismatch, a network failure) says more than the unpack's echo of it.
      await fetching;
      throw e;
    }
    // No unpack ran (the snapshot exists or another pull made it): the blob still belongs to the image.
    await (fetching ?? fetch());
    req.onProgress?.({ layer: l.digest, bytes: l.size, total: l.size, phase: 'done' });
  }

  /** Fetches a manifest/index; checks digest (and size when a descriptor named it). */
  private async fetchDocument(
    source: ImageSource,
    tagOrDigest: string,
    desc: { digest: string; size?: number | undefined } | undefined,
    signal: AbortSignal | undefined,
  ): Promise<{ bytes: Buffer; contentType: string; digest: string }> {
    const doc = await source.fetchManifest(tagOrDigest, signal);
    const digest = sha256Digest(doc.bytes);
    const what = `verifying manifest ${tagOrDigest} from ${source.describe}`;
    if (desc) {
      if (digest !== desc.digest) throw new FailedPreconditionError(`${what}: digest mismatch: content hashes to ${digest}`);
      if (desc.size !== undefined && doc.bytes.length !== desc.size) {
        throw new FailedPreconditionError(`${what}: ${doc.bytes.length} bytes, but the descriptor declares ${desc.size}`);
      }
    } else if (doc.claimedDigest && doc.claimedDigest.startsWith('sha256:') && doc.claimedDigest !== digest) {
      throw new FailedPreconditionError(`${what}: content hashes to ${digest}, but the registry says ${doc.claimedDigest}`);
    }
    this.opts.lease(digest);
    return { bytes: doc.bytes, contentType: doc.contentType, digest };
  }

  private async store(digest: string, bytes: Buffer): Promise<void> {
    await this.opts.content.writeBytes({ digest, size: bytes.length }, bytes);
  }

  private ingest(source: ImageSource, desc: { digest: string; size: number }, req: PullRequest): Promise<void> {
    return this.retrying(req, desc.digest, () => this.opts.content.ingest(desc, () => source.openBlob(desc.digest, req.signal)));
  }

  /** Runs `fn` again (up to LAYER_ATTEMPTS) while it fails with UNAVAILABLE (a download cut off). */
  private async retrying(req: PullRequest, digest: string, fn: () => Promise<void>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await fn();
        return;
      } catch (e) {
        const transient = (e as { code?: string }).code === 'UNAVAILABLE';
        if (!transient || attempt >= LAYER_ATTEMPTS || req.signal?.aborted) throw e;
        this.opts.log.warn({ err: e, attempt, digest }, 'blob download failed; retrying');
      }
    }
  }
}

/** Runs `fn` over `items` with at most `limit` at once; the first failure wins. */
export async function forEachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: { e: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (failed === undefined && next < items.length) {
      const item = items[next++];
      try {
        await fn(item);
      } catch (e) {
        failed ??= { e };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed) throw failed.e;
}

function overImage(layer: string, configDigest: string, imageMax: number): ResourceExhaustedError {
  return new ResourceExhaustedError(`unpacking layer ${layer}: image ${configDigest} unpacks to more than ${imageMax} bytes (config max_image_unpacked_bytes)`);
}
