// The used bytes and inodes of a container's writable layer (its overlay upper dir),
// for the CRI ContainerStats writable_layer. A walk of the upper dir costs one lstat
// per entry, and the kubelet polls every few seconds: results are cached per container
// for a while, and one walk stops after a bounded number of entries (the figure is then
// a lower bound, which the log says).
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { errnoCode, wrapError } from '../../errors.js';

/** How long a walk's result is reused. */
export const LAYER_USAGE_TTL_MS = 10_000;
/** Entries one walk looks at before it stops counting. */
export const LAYER_USAGE_MAX_ENTRIES = 200_000;
const BLOCK_BYTES = 512;

export interface LayerUsage {
  /** Bytes of disk the layer's files take (st_blocks × 512, each inode once, as du). */
  usedBytes: number;
  inodesUsed: number;
  /** When the walk ran (Unix ns). */
  timestampNs: bigint;
  /** True when the walk stopped at the entry bound. */
  truncated: boolean;
}

export interface WritableLayerUsageOptions {
  log: Logger;
  ttlMs?: number;
  maxEntries?: number;
  now?: () => number;
}

/** Walks `dir` (not following symlinks, not crossing into other file systems). */
export async function walkUsage(dir: string, maxEntries: number): Promise<{ usedBytes: number; inodesUsed: number; truncated: boolean }> {
  const seen = new Set<string>();
  let usedBytes = 0;
  let entries = 0;
  let truncated = false;
  let rootDev: number | undefined;
  const stack = [dir];
  while (stack.length > 0) {
    const cur = stack.pop()!;
    let st: Awaited<ReturnType<typeof fs.lstat>>;
    try {
      st = await fs.lstat(cur);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') continue; // removed while walking
      throw wrapError(`measuring writable layer "${dir}": reading "${cur}"`, e);
    }
    rootDev ??= st.dev;
    if (st.dev !== rootDev) continue;
    if (++entries > maxEntries) {
      truncated = true;
      break;
    }
    const key = `${st.dev}:${st.ino}`;
    if (!seen.has(key)) {
      seen.add(key);
      usedBytes += Number(st.blocks) * BLOCK_BYTES;
    }
    if (st.isDirectory()) {
      let names: string[];
      try {
        names = await fs.readdir(cur);
      } catch (e) {
        if (errnoCode(e) === 'ENOENT') continue;
        throw wrapError(`measuring writable layer "${dir}": listing "${cur}"`, e);
      }
      for (const n of names) stack.push(path.join(cur, n));
    }
  }
  return { usedBytes, inodesUsed: seen.size, truncated };
}

export class WritableLayerUsage {
  private readonly log: Logger;
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;
  private readonly cache = new Map<string, { atMs: number; usage: Promise<LayerUsage> }>();

  constructor(options: WritableLayerUsageOptions) {
    this.log = options.log;
    this.ttlMs = options.ttlMs ?? LAYER_USAGE_TTL_MS;
    this.maxEntries = options.maxEntries ?? LAYER_USAGE_MAX_ENTRIES;
    this.now = options.now ?? Date.now;
  }

  /** The layer's usage; callers at the same time share one walk. */
  usage(containerId: string, upperDir: string): Promise<LayerUsage> {
    const at = this.now();
    const hit = this.cache.get(containerId);
    if (hit && at - hit.atMs < this.ttlMs) return hit.usage;
    const usage = walkUsage(upperDir, this.maxEntries).then((u) => {
      if (u.truncated)
        this.log.warn({ containerId, dir: upperDir, maxEntries: this.maxEntries }, 'writable layer too large to count fully; reporting a lower bound');
      return { ...u, timestampNs: BigInt(at) * 1_000_000n };
    });
    this.cache.set(containerId, { atMs: at, usage });
    usage.catch(() => this.cache.delete(containerId));
    return usage;
  }

  /** Drops the cache of every container not in `alive`. */
  retain(alive: Iterable<string>): void {
    const keep = new Set(alive);
    for (const id of this.cache.keys()) if (!keep.has(id)) this.cache.delete(id);
  }
}
