// pipe2(2): a real pipe. Node's child_process 'pipe' stdio is a socketpair, and gVisor
// shuts down a donated socket when the sandboxed process closes it, which also breaks
// the runtime's own copy: `runsc exec` then dies of SIGPIPE writing its error message
// (measured). Real pipes have no such shared state.
import { check, libc } from './libc.js';

const O_CLOEXEC = 0o2000000;

const pipe2Fn = libc.func('int pipe2(_Out_ int *fds, int flags)');

/** A close-on-exec pipe: [read end, write end]. */
export function pipe(): [number, number] {
  const fds = new Int32Array(2);
  check('pipe2', pipe2Fn(fds, O_CLOEXEC) as number);
  return [fds[0], fds[1]];
}
