// A small pool of layer worker threads (layer-worker.ts), started on the first layer
// job and gone once idle, so an idle daemon pays nothing for it. A layer's fetch,
// hashing, gunzip and untar run there (layer-job.ts): the daemon's own heap stays
// small and quiet (it runs with a 1 MiB semi-space, node-flags.ts, and every chunk
// of a pull on it cost young-generation GCs), and the pull uses the second core.
//   idle ─job→ spawning ─online→ busy ─last job ends→ idle timer ─→ exit
// A worker that dies (an error thrown outside a job, an out-of-memory of its resource
// limits, terminate()) fails only the jobs it was running, with INTERNAL (or
// RESOURCE_EXHAUSTED) naming the cause; the next job starts a new worker.
// Memory (issue 13, measured on a 200 MiB five-layer pull): a worker with its modules
// costs ~11 MiB anonymous; most of the rest of the pull's peak (+38 MiB over the RSS
// before, medians of paired runs) is network and gunzip buffers already dead. V8
// scavenges for external memory only once a heap's young ArrayBuffers reach 32 MiB
// (twice its default semi-space, whatever --max-semi-space-size says), and the worker's
// malloc arena keeps that high-water mark. Two layers at once with 128 KiB write batches
// peaked ~5 MiB lower for ~6 % more CPU (4 paired runs), so three stay.
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { mallocTrim } from '../../native/malloc-trim.js';
import type { Logger } from 'pino';
import {
  AlreadyExistsError,
  DeadlineExceededError,
  FailedPreconditionError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  ResourceExhaustedError,
  SandlotError,
  UnauthenticatedError,
  UnavailableError,
  UnimplementedError,
  type ErrorOptions,
} from '../errors.js';
import { BlobStatusError } from './blob-http.js';
import type { LayerJob } from './layer-job.js';
import type { SerializedError, ToPool, ToWorker } from './layer-worker-protocol.js';

/** Workers at most: the host has two cores; the main thread and libuv's pool need some. */
export const LAYER_WORKERS_MAX = 1;
/** A worker with no job for this long exits. */
export const LAYER_WORKER_IDLE_MS = 2_000;
/** Old generation bound of a worker: a layer job holds little (chunks in flight, tar headers). */
export const LAYER_WORKER_OLD_SPACE_MB = 96;

// Built (dist/…/layer-worker-pool.js) the worker is layer-worker.js beside it. Under tsx
// (tests import src/) it is the .ts source beside this one, and Node 20 does not hand
// the `--import tsx` loader hooks on to a worker: a bootstrap registers them there first.
const HERE = fileURLToPath(import.meta.url);
const WORKER_FILE = path.join(path.dirname(HERE), `layer-worker${path.extname(HERE)}`);

/** The worker's entry: its file, or under tsx the bootstrap code (an `eval` worker). */
function workerEntry(): string {
  if (path.extname(HERE) !== '.ts') return WORKER_FILE;
  const tsx = import.meta.resolve('tsx/esm/api');
  return `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(pathToFileURL(WORKER_FILE).href)}); });`;
}

const ERRORS: Record<string, new (m: string, o?: ErrorOptions) => SandlotError> = {
  NOT_FOUND: NotFoundError,
  ALREADY_EXISTS: AlreadyExistsError,
  INVALID_ARGUMENT: InvalidArgumentError,
  FAILED_PRECONDITION: FailedPreconditionError,
  DEADLINE_EXCEEDED: DeadlineExceededError,
  UNAVAILABLE: UnavailableError,
  RESOURCE_EXHAUSTED: ResourceExhaustedError,
  INTERNAL: InternalError,
  UNIMPLEMENTED: UnimplementedError,
  UNAUTHENTICATED: UnauthenticatedError,
  PERMISSION_DENIED: PermissionDeniedError,
};

/**
 * Layers at least this large (compressed) go to a worker; smaller ones are done on the
 * main thread, where they cost less than starting a worker would (~20 ms of CPU and
 * ~10 MiB, more on a busy host): a 1 MiB pull stays as fast as it was.
 */
export const WORKER_LAYER_MIN_BYTES = 4 * 1024 * 1024;

export interface LayerWorkerPoolOptions {
  log: Logger;
  /** Smallest layer worth a worker (WORKER_LAYER_MIN_BYTES); tests send every layer with 0. */
  minLayerBytes?: number;
  size?: number;
  idleMs?: number;
  /** Sees each worker as it starts (tests make one die). */
  onSpawn?: (w: Worker) => void;
  /**
   * Called as each job starts; what it returns is called once the job is over (the
   * daemon holds TurboFan on while a big layer is worked on, src/util/optimizer-switch.ts).
   */
  whileRunning?: () => () => void;
}

export interface RunOptions {
  signal?: AbortSignal | undefined;
  onBytes?: ((n: number) => void) | undefined;
}

interface Job {
  resolve: () => void;
  reject: (e: Error) => void;
  onBytes: ((n: number) => void) | undefined;
}

interface Slot {
  worker: Worker;
  jobs: Map<number, Job>;
  idle: NodeJS.Timeout | undefined;
}

export class LayerWorkerPool {
  private readonly slots = new Set<Slot>();
  private nextId = 1;
  private closed = false;

  constructor(private readonly opts: LayerWorkerPoolOptions) {}

  /** Whether a layer of `bytes` (compressed) is worth a worker. */
  wants(bytes: number): boolean {
    return bytes >= (this.opts.minLayerBytes ?? WORKER_LAYER_MIN_BYTES);
  }

  /** Runs `job` on a worker; rejects with the typed error the job failed with (BlobStatusError for a registry status). */
  run(job: LayerJob, ro: RunOptions = {}): Promise<void> {
    if (this.closed) return Promise.reject(new UnavailableError('running a layer job: the image service is closing'));
    if (ro.signal?.aborted) return Promise.reject(ro.signal.reason as Error);
    const slot = this.pick();
    const id = this.nextId++;
    clearTimeout(slot.idle);
    const release = this.opts.whileRunning?.();
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => slot.worker.postMessage({ type: 'cancel', id } satisfies ToWorker);
      ro.signal?.addEventListener('abort', onAbort, { once: true });
      // The job's files are only cleaned up once the worker has stopped touching them:
      // a cancel settles when the worker answers (or dies), with the caller's reason.
      const settle = (): void => {
        release?.();
        ro.signal?.removeEventListener('abort', onAbort);
        slot.jobs.delete(id);
        if (slot.jobs.size === 0) this.armIdle(slot);
      };
      slot.jobs.set(id, {
        resolve: () => {
          settle();
          resolve();
        },
        reject: (e) => {
          settle();
          reject(ro.signal?.aborted ? (ro.signal.reason as Error) : e);
        },
        onBytes: ro.onBytes,
      });
      slot.worker.postMessage({ type: 'run', id, job } satisfies ToWorker);
    });
  }

  /** Stops every worker; their jobs fail. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.slots].map((s) => s.worker.terminate()));
  }

  /** The worker with the fewest jobs, or a new one while there are fewer than `size`. */
  private pick(): Slot {
    let best: Slot | undefined;
    for (const s of this.slots) if (!best || s.jobs.size < best.jobs.size) best = s;
    if (best && (best.jobs.size === 0 || this.slots.size >= (this.opts.size ?? LAYER_WORKERS_MAX))) return best;
    return this.spawn();
  }

  private spawn(): Slot {
    const worker = new Worker(workerEntry(), {
      eval: path.extname(HERE) === '.ts',
      workerData: { debug: this.opts.log.isLevelEnabled('debug') },
      // The young generation is the daemon's (--max-semi-space-size=1 is process-wide and
      // overrides resourceLimits): measured against 8 MiB semi-spaces (set through
      // v8.setFlagsFromString around the spawn), the pull's CPU was the same (median of
      // 5 paired pulls, 1.61 vs 1.66 s) and the peak RSS lower. A worker's GCs are
      // cheap whatever the size: its heap holds a few streams, not the daemon's state.
      resourceLimits: { maxOldGenerationSizeMb: LAYER_WORKER_OLD_SPACE_MB },
      stdout: false,
      stderr: false,
    });
    // A worker never keeps the daemon (or a test) alive.
    worker.unref();
    const slot: Slot = { worker, jobs: new Map(), idle: undefined };
    this.slots.add(slot);
    worker.on('message', (m: ToPool) => this.onMessage(slot, m));
    let failure: Error | undefined;
    worker.on('error', (e) => (failure = e));
    worker.once('exit', (code) => this.onExit(slot, code, failure));
    this.opts.onSpawn?.(worker);
    return slot;
  }

  private onMessage(slot: Slot, m: ToPool): void {
    if (m.type === 'log') {
      this.forwardLog(m);
      return;
    }
    const job = slot.jobs.get(m.id);
    if (!job) return;
    if (m.type === 'bytes') job.onBytes?.(m.n);
    else if (m.type === 'done') job.resolve();
    else job.reject(deserialize(m.error));
  }

  private onExit(slot: Slot, code: number, failure: Error | undefined): void {
    clearTimeout(slot.idle);
    this.slots.delete(slot);
    if (slot.jobs.size === 0) {
      // The worker's heap and its thread's malloc arena are free now, after the daemon's
      // trim at the end of the pull's calls: give those pages back (issue 13: the idle
      // RSS after a 200 MiB pull stayed ~15 MiB higher).
      mallocTrim();
      return;
    }
    const why = failure ? `${failure.message}` : `exit code ${code}`;
    this.opts.log.error({ err: failure, exitCode: code, jobs: slot.jobs.size }, 'layer worker died');
    const oom = (failure as { code?: string } | undefined)?.code === 'ERR_WORKER_OUT_OF_MEMORY';
    for (const job of [...slot.jobs.values()]) {
      job.reject(
        oom
          ? new ResourceExhaustedError(`running layer worker: out of memory (${LAYER_WORKER_OLD_SPACE_MB} MiB heap limit): ${why}`, { cause: failure })
          : new InternalError(`running layer worker: the worker died (${why})`, { cause: failure }),
      );
    }
  }

  private armIdle(slot: Slot): void {
    clearTimeout(slot.idle);
    slot.idle = setTimeout(() => {
      if (slot.jobs.size > 0) return;
      this.slots.delete(slot);
      void slot.worker.terminate();
    }, this.opts.idleMs ?? LAYER_WORKER_IDLE_MS);
    slot.idle.unref();
  }

  private forwardLog(m: Extract<ToPool, { type: 'log' }>): void {
    this.opts.log[m.level]({ ...m.fields, thread: 'layer-worker' }, m.msg);
  }
}

/** The typed error a worker's job failed with, rebuilt on this side. */
function deserialize(e: SerializedError): Error {
  if (e.httpStatus !== undefined) return new BlobStatusError(e.httpStatus, e.message);
  const Ctor = e.code !== undefined ? ERRORS[e.code] : undefined;
  if (Ctor) return new Ctor(e.message);
  // Not one of ours (an fs error such as ENOSPC): the same shape, INTERNAL upstream.
  const err = new Error(e.message) as Error & { code?: string; syscall?: string };
  if (e.code !== undefined) err.code = e.code;
  if (e.syscall !== undefined) err.syscall = e.syscall;
  err.name = e.name;
  return err;
}
