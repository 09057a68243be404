// malloc_trim(3): glibc gives the free pages of its heaps back to the kernel. After a
// burst of calls the main arena keeps its free chunks resident (Buffers, nghttp2 and
// V8's own malloc memory come from it); an idle daemon trims once (issue 13: after 100
// pod cycles and idle, within 10 % of the warm idle).
import { libc } from './libc.js';

const mallocTrimFn = libc.func('int malloc_trim(size_t pad)');

/** Returns the free memory of every malloc arena to the kernel; true when some was. */
export function mallocTrim(): boolean {
  return (mallocTrimFn(0) as number) === 1;
}
