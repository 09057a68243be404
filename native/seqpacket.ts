// Unix SOCK_SEQPACKET client sockets (conmon's attach socket is one). Node cannot
// connect one (libuv knows only stream unix sockets), so the socket lives here: created
// and connected synchronously (a unix connect completes at once or fails), then read
// and written with non-blocking calls the caller polls from the event loop — no thread
// of koffi's small async pool is ever parked in a blocking recv (ARCHITECTURE.md).
import { check, errno, libc, SyscallError } from './libc.js';

const AF_UNIX = 1;
const SOCK_SEQPACKET = 5;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const MSG_DONTWAIT = 0x40;
const MSG_NOSIGNAL = 0x4000;
const SHUT_WR = 1;
const EAGAIN = 11;
const EINTR = 4;
/** sizeof(sockaddr_un.sun_path). */
export const UNIX_PATH_MAX = 108;

const socketFn = libc.func('int socket(int domain, int type, int protocol)');
const connectFn = libc.func('int connect(int fd, const void *addr, uint32_t addrlen)');
const recvFn = libc.func('long recv(int fd, void *buf, size_t len, int flags)');
const sendFn = libc.func('long send(int fd, const void *buf, size_t len, int flags)');
const shutdownFn = libc.func('int shutdown(int fd, int how)');
const closeFn = libc.func('int close(int fd)');

/** A non-blocking SOCK_SEQPACKET socket connected to the unix socket at `path`; returns its fd. */
export function connectSeqpacket(path: string): number {
  const p = Buffer.from(path);
  if (p.length >= UNIX_PATH_MAX) throw new SyscallError('connect', 36 /* ENAMETOOLONG */, `"${path}"`);
  const addr = Buffer.alloc(2 + UNIX_PATH_MAX);
  addr.writeUInt16LE(AF_UNIX, 0);
  p.copy(addr, 2);
  const fd = check('socket', socketFn(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0) as number);
  for (;;) {
    if ((connectFn(fd, addr, 2 + p.length + 1) as number) === 0) return fd;
    const e = errno();
    if (e === EINTR) continue;
    closeFn(fd);
    throw new SyscallError('connect', e, `"${path}"`);
  }
}

/**
 * One non-blocking recv: a packet (possibly of zero bytes: the peer closed, for a
 * seqpacket socket), or undefined when nothing is waiting.
 */
export function recvPacket(fd: number, buf: Buffer): number | undefined {
  for (;;) {
    const n = Number(recvFn(fd, buf, buf.length, MSG_DONTWAIT));
    if (n >= 0) return n;
    const e = errno();
    if (e === EINTR) continue;
    if (e === EAGAIN) return undefined;
    throw new SyscallError('recv', e, `fd ${fd}`);
  }
}

/** One non-blocking send of a whole packet: false when the socket buffer is full (EAGAIN). */
export function sendPacket(fd: number, data: Buffer): boolean {
  for (;;) {
    const n = Number(sendFn(fd, data, data.length, MSG_DONTWAIT | MSG_NOSIGNAL));
    if (n >= 0) return true;
    const e = errno();
    if (e === EINTR) continue;
    if (e === EAGAIN) return false;
    throw new SyscallError('send', e, `fd ${fd}`);
  }
}

/** Half-closes the sending side (the peer reads EOF). */
export function shutdownWrite(fd: number): void {
  check('shutdown', shutdownFn(fd, SHUT_WR) as number, `fd ${fd}`);
}

export function closeSocket(fd: number): void {
  check('close', closeFn(fd) as number, `fd ${fd}`);
}
