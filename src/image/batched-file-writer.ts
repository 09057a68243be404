// A file written in large batches: chunks are gathered until BATCH_BYTES and then go
// to the kernel in one writev. Every async fs call is a round trip through libuv's
// threadpool, whose wake-up cost ~50–70 µs of the event loop on this VM (measured:
// fs.write's binding was the largest self time in a pull's profile, at 64 KiB a call);
// a layer's blob and large files of its unpack are written with ~4× fewer of them.
// Holds at most BATCH_BYTES (plus one chunk) at a time; no bytes are copied.
// Not larger: what a batch holds lives long enough to reach V8's old generation, whose
// dead buffers wait for a major GC (issue 13). Measured on the layer job alone (3 of 5
// 40 MiB layers at once, 4 paired runs, medians): 1 MiB batches with 256 KiB tap and
// gunzip chunks peaked at +53 MiB RSS and 4.0 s CPU; 256 KiB batches with 64 KiB tap and
// gunzip chunks at +28 MiB and 2.6 s.
// With `sync` (a layer worker, whose thread may block) each chunk is written at once
// with writevSync, on the calling thread: no threadpool round trip at all.
import fs from 'node:fs';
import fsp, { type FileHandle } from 'node:fs/promises';
import { Writable } from 'node:stream';

export const BATCH_BYTES = 256 * 1024;

export class BatchedFileWriter extends Writable {
  private fh: FileHandle | undefined;
  /** The file's descriptor in `sync` mode. */
  private fd: number | undefined;
  private batch: Buffer[] = [];
  private batchBytes = 0;

  /** `flags` and `mode` as for open(2); `wx` refuses an existing file. `sync`: blocking writes on this thread. */
  constructor(
    private readonly file: string,
    private readonly flags = 'wx',
    private readonly mode = 0o644,
    private readonly sync = false,
  ) {
    super({ highWaterMark: BATCH_BYTES });
  }

  override _construct(cb: (e?: Error | null) => void): void {
    if (this.sync) {
      try {
        this.fd = fs.openSync(this.file, this.flags, this.mode);
        cb();
      } catch (e) {
        cb(e as Error);
      }
      return;
    }
    fsp.open(this.file, this.flags, this.mode).then(
      (fh) => {
        this.fh = fh;
        cb();
      },
      (e: Error) => cb(e),
    );
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.batch.push(chunk);
    this.batchBytes += chunk.length;
    // In `sync` mode every chunk goes at once: a blocking write costs a syscall, not a
    // round trip; and a chunk held across one of the layer worker's forced young GCs
    // (layer-job.ts) is promoted, its memory then waiting for a major GC (issue 13: a
    // warm worker's pull, 2 × 4 runs in one sitting, retained 76–87 MiB with 256 KiB
    // batches, 75–81 written through, for the same CPU).
    if (!this.sync && this.batchBytes < BATCH_BYTES) {
      cb();
      return;
    }
    if (this.sync) {
      cb(this.flushSync());
      return;
    }
    this.flush().then(() => cb(), cb);
  }

  override _final(cb: (e?: Error | null) => void): void {
    if (this.sync) {
      cb(this.flushSync() ?? this.closeFileSync());
      return;
    }
    this.flush()
      .then(() => this.closeFile())
      .then(() => cb(), cb);
  }

  override _destroy(e: Error | null, cb: (e?: Error | null) => void): void {
    this.batch = [];
    if (this.sync) {
      this.closeFileSync();
      cb(e);
      return;
    }
    this.closeFile().then(
      () => cb(e),
      () => cb(e),
    );
  }

  private async flush(): Promise<void> {
    const bufs = this.batch;
    this.batch = [];
    this.batchBytes = 0;
    let left = bufs.reduce((n, b) => n + b.length, 0);
    let rest = bufs;
    // writev may write less than asked (rare for regular files): go on from where it stopped.
    while (left > 0) {
      const { bytesWritten } = await this.fh!.writev(rest);
      left -= bytesWritten;
      if (left > 0) rest = remainder(rest, bytesWritten);
    }
  }

  /** flush() with writevSync; the error, if any, for the stream's callback. */
  private flushSync(): Error | undefined {
    let rest = this.batch;
    let left = this.batchBytes;
    this.batch = [];
    this.batchBytes = 0;
    try {
      while (left > 0) {
        const n = fs.writevSync(this.fd!, rest);
        left -= n;
        if (left > 0) rest = remainder(rest, n);
      }
      return undefined;
    } catch (e) {
      return e as Error;
    }
  }

  private closeFileSync(): Error | undefined {
    const fd = this.fd;
    this.fd = undefined;
    try {
      if (fd !== undefined) fs.closeSync(fd);
      return undefined;
    } catch (e) {
      return e as Error;
    }
  }

  private async closeFile(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    await fh?.close();
  }
}

/** `bufs` without their first `n` bytes. */
function remainder(bufs: Buffer[], n: number): Buffer[] {
  const out: Buffer[] = [];
  let skip = n;
  for (const b of bufs) {
    if (skip >= b.length) {
      skip -= b.length;
      continue;
    }
    out.push(skip > 0 ? b.subarray(skip) : b);
    skip = 0;
  }
  return out;
}
