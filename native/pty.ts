// Pseudo-terminals: a master/slave pair from posix_openpt. An exec with a TTY gives the
// slave to the runtime's `exec` as its stdio (the runtime then runs the process on a
// terminal of its own and copies between the two, forwarding SIGWINCH), and keeps the
// master to read output, write input and set the window size.
import fs from 'node:fs';
import { check, libc } from './libc.js';

const O_RDWR = 0o2;
const O_NOCTTY = 0o400;
const O_CLOEXEC = 0o2000000;

const posixOpenpt = libc.func('int posix_openpt(int flags)');
const grantpt = libc.func('int grantpt(int fd)');
const unlockpt = libc.func('int unlockpt(int fd)');
const ptsnameR = libc.func('int ptsname_r(int fd, _Out_ uint8_t *buf, size_t buflen)');
const closeFn = libc.func('int close(int fd)');

export interface PtyPair {
  master: number;
  slave: number;
  slavePath: string;
}

/** Opens a new pty pair; both fds are close-on-exec (pass the slave to a child explicitly). */
export function openPty(): PtyPair {
  const master = check('posix_openpt', posixOpenpt(O_RDWR | O_NOCTTY | O_CLOEXEC) as number);
  try {
    check('grantpt', grantpt(master) as number);
    check('unlockpt', unlockpt(master) as number);
    const buf = Buffer.alloc(128);
    const rc = ptsnameR(master, buf, buf.length) as number;
    if (rc !== 0) throw new Error(`ptsname_r: error ${rc}`);
    const slavePath = buf.subarray(0, buf.indexOf(0)).toString();
    const slave = fs.openSync(slavePath, fs.constants.O_RDWR | fs.constants.O_NOCTTY | O_CLOEXEC);
    return { master, slave, slavePath };
  } catch (e) {
    closeFn(master);
    throw e;
  }
}
