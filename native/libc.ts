// The one handle on libc. Every binding in native/ is declared through `libc` and
// checked through `check`, so errno always becomes a thrown error naming the call.
import koffi from 'koffi';
import os from 'node:os';

export const libc = koffi.load('libc.so.6');

const ERRNO_NAMES: Record<number, string> = Object.fromEntries(Object.entries(os.constants.errno).map(([name, num]) => [num, name]));

/** An error from a libc call: `call` failed with `errno` (`code` is its name, e.g. EAGAIN). */
export class SyscallError extends Error {
  override readonly name = 'SyscallError';
  readonly code: string;
  constructor(
    readonly call: string,
    readonly errno: number,
    detail?: string,
  ) {
    const code = ERRNO_NAMES[errno] ?? `errno ${errno}`;
    super(`${call}${detail ? ` ${detail}` : ''}: ${code} (${strerror(errno)})`);
    this.code = code;
  }
}

const strerrorFn = libc.func('const char *strerror(int errnum)');
function strerror(errno: number): string {
  return String(strerrorFn(errno));
}

/** The calling thread's errno, as koffi saved it right after the last call. */
export function errno(): number {
  return koffi.errno();
}

/** Throws a SyscallError when a libc call returned -1. */
export function check(call: string, ret: number, detail?: string): number {
  if (ret === -1) throw new SyscallError(call, errno(), detail);
  return ret;
}

/** A bound libc function (koffi does not export its own name for this type). */
export type LibcFunction = ReturnType<typeof libc.func>;

/** Runs a koffi `.async` call as a promise. Keep these short: the pool has 4 threads. */
export function callAsync<T>(fn: LibcFunction, ...args: unknown[]): Promise<T> {
  return new Promise((resolve, reject) => {
    fn.async(...args, (err: unknown, res: T) =>
      err ? reject(err instanceof Error ? err : new Error('koffi async call failed', { cause: err })) : resolve(res),
    );
  });
}
