// malloc_trim(3): glibc gives the free pages of its heaps back to the kernel. After a
// burst of calls the main arena keeps its free chunks resident (Buffers, nghttp2 and
// V8's own malloc memory come from it); an idle daemon trims once (issue 13: after 100
// pod cycles and idle, within 10 % of the warm idle).
//
// mallopt(M_MMAP_THRESHOLD): glibc serves allocations from this size up with their own
// mmap, unmapped at free. Left alone, the threshold rises with every such block freed (up
// to 32 MiB), so a burst's big Buffers (responses, frames) then come from the heap and
// leave it fragmented: pages holding a few live chunks that no trim can give back.
// Fixed at start, it stays where it was set (60 pod cycles with 20 readers, then idle:
// +11 MiB over the warm idle left alone, +7 MiB with it at 128 KiB, one run each).
import { libc } from './libc.js';

const mallocTrimFn = libc.func('int malloc_trim(size_t pad)');
const malloptFn = libc.func('int mallopt(int param, int value)');
const M_MMAP_THRESHOLD = -3;

/** Returns the free memory of every malloc arena to the kernel; true when some was. */
export function mallocTrim(): boolean {
  return (mallocTrimFn(0) as number) === 1;
}

/** Allocations of `bytes` and more get their own mapping, from now on and for good; false when glibc refused. */
export function fixMmapThreshold(bytes: number): boolean {
  return (malloptFn(M_MMAP_THRESHOLD, bytes) as number) === 1;
}
