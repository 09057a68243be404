// The messages between the layer worker pool (main thread) and a layer worker.
import type { LayerJob } from './layer-job.js';

export type ToWorker = { type: 'run'; id: number; job: LayerJob } | { type: 'cancel'; id: number };

/** An error as data across the thread boundary. */
export interface SerializedError {
  name: string;
  /** SandlotError code (`NOT_FOUND` …) or errno/Node code (`ENOSPC`, `Z_DATA_ERROR`). */
  code: string | undefined;
  message: string;
  httpStatus?: number;
  syscall?: string;
}

export type ToPool =
  | { type: 'bytes'; id: number; n: number }
  | { type: 'done'; id: number }
  | { type: 'failed'; id: number; error: SerializedError }
  | { type: 'log'; level: 'warn' | 'debug'; fields: Record<string, unknown>; msg: string };
