// flock(2) on an open file descriptor. The blocking form never blocks the event loop
// or parks one of koffi's few pool threads: it retries the non-blocking call with a
// growing back-off, so a waiter costs only a timer.
import { setTimeout as sleep } from 'node:timers/promises';
import { check, libc, SyscallError } from './libc.js';

const LOCK_SH = 1;
const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;
const EWOULDBLOCK = 11;
const EINTR = 4;

const flockFn = libc.func('int flock(int fd, int operation)');

export type LockMode = 'shared' | 'exclusive';

/** Takes the lock now or throws a SyscallError with code EWOULDBLOCK/EAGAIN. */
export function flockTry(fd: number, mode: LockMode): void {
  const op = (mode === 'shared' ? LOCK_SH : LOCK_EX) | LOCK_NB;
  check('flock', flockFn(fd, op) as number, `fd ${fd} ${mode} non-blocking`);
}

export interface FlockWaitOptions {
  signal?: AbortSignal;
  /** Longest pause between two attempts. */
  maxDelayMs?: number;
}

/** Waits until the lock is held. Rejects when `signal` aborts. */
export async function flock(fd: number, mode: LockMode, options: FlockWaitOptions = {}): Promise<void> {
  const maxDelay = options.maxDelayMs ?? 50;
  let delay = 1;
  for (;;) {
    try {
      flockTry(fd, mode);
      return;
    } catch (e) {
      if (!(e instanceof SyscallError) || (e.errno !== EWOULDBLOCK && e.errno !== EINTR)) throw e;
    }
    options.signal?.throwIfAborted();
    await sleep(delay, undefined, options.signal ? { signal: options.signal } : undefined);
    delay = Math.min(delay * 2, maxDelay);
  }
}

export function funlock(fd: number): void {
  check('flock', flockFn(fd, LOCK_UN) as number, `fd ${fd} unlock`);
}

/** True when the error says the lock is held elsewhere. */
export function isLockBusy(e: unknown): boolean {
  return e instanceof SyscallError && e.errno === EWOULDBLOCK;
}
