// madvise(2) with MADV_DONTNEED on a clean, read-only file mapping: its pages leave this
// process's page tables (its RSS) and stay in the page cache, from where the next touch
// maps them back (a minor fault). The idle daemon drops the pages of node's executable
// and libraries that start-up and the last burst touched (src/util/clean-file-mappings.ts).
import { check, libc } from './libc.js';

const MADV_DONTNEED = 4;

const madviseFn = libc.func('int madvise(uintptr_t addr, size_t length, int advice)');

/** Unmaps the resident pages of [start, end) from this process; they come back when touched. */
export function madviseDontNeed(start: bigint, end: bigint): void {
  check('madvise', madviseFn(start, end - start, MADV_DONTNEED) as number, `0x${start.toString(16)}-0x${end.toString(16)}`);
}
