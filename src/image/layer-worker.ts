// The entry of a layer worker thread (layer-worker-pool.ts starts it): runs the layer
// jobs it is sent (layer-job.ts), several at once, and answers each with `done` or
// `failed` (the error as plain data: its code, name, message and HTTP status, which
// the pool turns back into the same typed error). Log records go to the main thread's
// logger. Nothing here outlives a job but the module cache.
import { parentPort, workerData } from 'node:worker_threads';
import { errnoCode, errorMessage } from '../errors.js';
import { BlobStatusError } from './blob-http.js';
import { runLayerJob } from './layer-job.js';
import type { UnpackLog } from './unpack.js';
import type { SerializedError, ToPool, ToWorker } from './layer-worker-protocol.js';

/** Progress is posted at most once per this many bytes (and at the end). */
const PROGRESS_STEP_BYTES = 1024 * 1024;

const port = parentPort!;
const debugEnabled = (workerData as { debug?: boolean } | undefined)?.debug === true;
// Records go to the pool, which logs them with the daemon's logger (and its level):
// pino itself would cost the worker ~8 MiB.
const log: UnpackLog = {
  warn: (fields: object, msg?: string) => post({ type: 'log', level: 'warn', fields: loggable(fields), msg: msg ?? '' }),
  debug: (fields: object, msg?: string) => {
    if (debugEnabled) post({ type: 'log', level: 'debug', fields: loggable(fields), msg: msg ?? '' });
  },
};
const running = new Map<number, AbortController>();

function post(m: ToPool): void {
  port.postMessage(m);
}

/** Fields that survive postMessage: errors as their message and code. */
function loggable(fields: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, v instanceof Error ? { message: v.message, code: errnoCode(v) } : v]));
}

function serialize(e: unknown): SerializedError {
  const err = e as { name?: unknown; syscall?: unknown };
  return {
    name: typeof err?.name === 'string' ? err.name : 'Error',
    code: errnoCode(e),
    message: errorMessage(e),
    ...(e instanceof BlobStatusError ? { httpStatus: e.status } : {}),
    ...(typeof err?.syscall === 'string' ? { syscall: err.syscall } : {}),
  };
}

async function run(id: number, job: Extract<ToWorker, { type: 'run' }>['job']): Promise<void> {
  const ac = new AbortController();
  running.set(id, ac);
  let posted = 0;
  const onBytes = (n: number): void => {
    if (n - posted < PROGRESS_STEP_BYTES && n !== job.size) return;
    posted = n;
    post({ type: 'bytes', id, n });
  };
  try {
    await runLayerJob(job, { signal: ac.signal, log, onBytes });
    post({ type: 'done', id });
  } catch (e) {
    post({ type: 'failed', id, error: serialize(e) });
  } finally {
    running.delete(id);
  }
}

port.on('message', (m: ToWorker) => {
  if (m.type === 'run') void run(m.id, m.job);
  else running.get(m.id)?.abort();
});
