// One layer's work as a layer worker does it (layer-worker.ts), off the daemon's main
// thread: the blob's bytes (from the registry over HTTP, or a file) are counted and
// hashed, written to the content store's temp file and, in the same pass, gunzipped
// and unpacked into the snapshot's temp dir with their diff ID checked. The files are
// only written here; the main thread renames them into place (content-store.ts
// ingestVia, snapshot-store.ts unpackVia), so the stores' books stay in one thread.
//   source ─verify digest/size─┬─ blob temp file (fsynced once verified)
//                              └─ decompress ─verify diff ID/limits─ untar into root
import fs from 'node:fs';
import { PassThrough, type Readable } from 'node:stream';
import { ResourceExhaustedError } from '../errors.js';
import { connectionLost, getBlob, type HttpBlobLocation } from './blob-http.js';
import { writeVerifiedBlob } from './content-store.js';
import { decompressedFrom } from './decompress.js';
import { layerCompression } from './manifest.js';
import { unpackVerified } from './snapshot-store.js';
import { TAP_BUFFER_BYTES } from './tap-stream.js';
import type { UnpackLog } from './unpack.js';

/** Read size of blob files a layer worker unpacks from. */
const FILE_READ_CHUNK_BYTES = 1024 * 1024;

/**
 * A young-generation GC after this many unpacked bytes (when node runs with
 * --expose-gc, as the daemon does: node-flags.ts). A layer's chunks (network reads,
 * inflated buffers) die as soon as they are written, but their memory is outside
 * V8's heap, and the worker allocates little on it: V8 frees dead buffers only at a
 * scavenge, and forces one only once 32 MiB of young buffers have piled up. Issue 13,
 * a 200 MiB five-layer pull on a cold worker, 6 runs each in one sitting (medians):
 * peak over the RSS before +50 MiB with none, +29 every MiB, +27 every 2 MiB, +33
 * every 4 MiB; each forced scavenge pauses the worker ~0.6 ms (--trace-gc), so every
 * 2 MiB costs ~60 ms of CPU per pull, every MiB twice that.
 */
const YOUNG_GC_EVERY_BYTES = 2 * 1024 * 1024;
const collectGarbage = globalThis.gc;
let unpackedSinceGc = 0;

/** Counts `n` more unpacked bytes; a minor GC once YOUNG_GC_EVERY_BYTES have passed. */
function collectDeadChunks(n: number): void {
  if (collectGarbage === undefined) return;
  unpackedSinceGc += n;
  if (unpackedSinceGc < YOUNG_GC_EVERY_BYTES) return;
  unpackedSinceGc = 0;
  collectGarbage({ type: 'minor' });
}

export type BlobLocation = HttpBlobLocation | { kind: 'file'; path: string };

export interface LayerJob {
  digest: string;
  size: number;
  mediaType: string;
  from: BlobLocation;
  /** Writes the verified blob to this new file (a content store temp file). */
  blobFile?: string | undefined;
  /** Unpacks the layer into this empty directory (a snapshot's temp `fs`), checking its diff ID. */
  unpack?: { root: string; diffId: string; layerMaxBytes: number } | undefined;
  /**
   * The pull's image budget (config max_image_unpacked_bytes), shared by its layers'
   * jobs whichever worker runs them: element 0 counts the unpacked bytes so far.
   */
  budget?: { used: SharedArrayBuffer; max: number; configDigest: string } | undefined;
}

export interface LayerJobContext {
  signal: AbortSignal;
  log: UnpackLog;
  onBytes?: ((n: number) => void) | undefined;
}

/** Runs `job`; throws the pull's typed errors (or BlobStatusError for a registry status). */
export async function runLayerJob(job: LayerJob, ctx: LayerJobContext): Promise<void> {
  const what = `unpacking layer ${job.digest}`;
  let src: Readable | undefined;
  try {
    src = await openSource(job.from, ctx.signal);
    if (job.blobFile === undefined) {
      if (job.unpack) await unpackFrom(job, src, ctx, what);
      return;
    }
    await fetchAndUnpack(job, job.blobFile, src, ctx, what);
  } catch (e) {
    src?.destroy();
    throw sourceError(e, job.from, ctx.signal);
  }
}

/** The blob into `blobFile` and, as it arrives, through the unpack; as Puller.fetchAndUnpack does in-process. */
async function fetchAndUnpack(job: LayerJob, blobFile: string, src: Readable, ctx: LayerJobContext, what: string): Promise<void> {
  const desc = { digest: job.digest, size: job.size };
  if (!job.unpack) {
    await writeVerifiedBlob(desc, src, blobFile, ctx.onBytes, undefined, true);
    return;
  }
  const tap = new PassThrough({ highWaterMark: TAP_BUFFER_BYTES });
  const fetching = writeVerifiedBlob(desc, src, blobFile, ctx.onBytes, tap, true);
  // Awaited below once the unpack settles; until then a failure must not count as unhandled.
  fetching.catch(() => undefined);
  try {
    await unpackFrom(job, tap, ctx, what);
  } catch (e) {
    // The download's own error (a digest mismatch, a network failure) says more than the unpack's echo of it.
    await fetching;
    throw e;
  }
  await fetching;
}

function unpackFrom(job: LayerJob, compressed: Readable, ctx: LayerJobContext, what: string): Promise<void> {
  const u = job.unpack!;
  const budget = job.budget ? charger(job.budget, job.digest) : undefined;
  // This thread may block (it is not the daemon's): inflate and writes run on it, not
  // on libuv's pool (decompress.ts SyncGunzip, batched-file-writer.ts).
  return unpackVerified(() => decompressedFrom(compressed, layerCompression(job.mediaType), { sync: true }), {
    root: u.root,
    syncWrites: true,
    diffId: u.diffId,
    what,
    log: ctx.log,
    limits: {
      layerMaxBytes: u.layerMaxBytes,
      charge: (n) => {
        budget?.(n);
        collectDeadChunks(n);
      },
    },
  });
}

/** Counts unpacked bytes into the pull's shared budget; throws once the image is over it. */
function charger(b: NonNullable<LayerJob['budget']>, digest: string): (n: number) => void {
  const used = new BigInt64Array(b.used);
  return (n) => {
    const total = Atomics.add(used, 0, BigInt(n)) + BigInt(n);
    if (total > BigInt(b.max)) {
      throw new ResourceExhaustedError(
        `unpacking layer ${digest}: image ${b.configDigest} unpacks to more than ${b.max} bytes (config max_image_unpacked_bytes)`,
      );
    }
  };
}

async function openSource(from: BlobLocation, signal: AbortSignal): Promise<Readable> {
  if (from.kind === 'http') return getBlob(from, signal);
  const stream = fs.createReadStream(from.path, { highWaterMark: FILE_READ_CHUNK_BYTES, signal });
  return stream;
}

/** A download cut off mid-body (not one of ours, not a cancel) is the registry going away: UNAVAILABLE, retried. */
function sourceError(e: unknown, from: BlobLocation, signal: AbortSignal): unknown {
  if (from.kind !== 'http' || signal.aborted) return e;
  return connectionLost(e, from.what) ?? e;
}
