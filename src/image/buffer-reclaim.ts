// Frees the memory of the buffers a pull streams through, soon after they die.
// A pull moves each layer byte through two or three short-lived Buffers (the network's
// chunk, gunzip's output), whose memory V8 gives back only when a GC finds their small
// JS objects dead. Those objects fill the young generation slowly (a few per 64–256 KiB
// chunk), so between two scavenges dead buffers piled up to ~55 MiB of RSS during a
// 200 MiB pull (measured: process.memoryUsage().arrayBuffers). A minor GC (scavenge)
// after every RECLAIM_EVERY_BYTES streamed bounds that pile; with a young generation of
// a few MiB it costs well under a millisecond. The collector is V8's own `gc`, exposed
// for a fresh context (flags cannot be added to a running daemon's command line); when
// that is not possible, nothing is forced and V8 collects on its own schedule.
import v8 from 'node:v8';
import vm from 'node:vm';

/** Streamed bytes (all pulls together) between two forced scavenges. */
export const RECLAIM_EVERY_BYTES = 4 * 1024 * 1024;

type Collector = (opts: { type: 'minor' | 'major' }) => void;

let collector: Collector | null | undefined;
let sinceLast = 0;

function minorGc(): Collector | null {
  if (collector === undefined) {
    try {
      v8.setFlagsFromString('--expose-gc');
      const gc: unknown = vm.runInNewContext('typeof gc === "function" ? gc : undefined');
      collector = typeof gc === 'function' ? (gc as Collector) : null;
    } catch {
      collector = null;
    }
  }
  return collector;
}

/** Counts `n` bytes that went through a pull's streams; scavenges every RECLAIM_EVERY_BYTES. */
export function noteStreamedBytes(n: number): void {
  sinceLast += n;
  if (sinceLast < RECLAIM_EVERY_BYTES) return;
  sinceLast = 0;
  minorGc()?.({ type: 'minor' });
}
