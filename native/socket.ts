// socket(2), for sockets that must be born inside another network namespace: a socket
// stays in the netns it was created in, so only its creation needs the thread there.
import { check, libc } from './libc.js';
import { withNetnsSync } from './netns.js';

export const AF_INET = 2;
export const AF_INET6 = 10;
const SOCK_STREAM = 1;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;

const socketFn = libc.func('int socket(int domain, int type, int protocol)');
const closeFn = libc.func('int close(int fd)');

function socketInNetns(nsPath: string, family: number, type: number): number {
  return withNetnsSync(nsPath, () => check('socket', socketFn(family, type | SOCK_CLOEXEC, 0) as number, `in "${nsPath}"`));
}

/** A non-blocking TCP socket created inside the netns pinned at `nsPath`; returns its fd. */
export function tcpSocketInNetns(nsPath: string, family: number = AF_INET): number {
  return socketInNetns(nsPath, family, SOCK_STREAM | SOCK_NONBLOCK);
}

/** A datagram socket created inside the netns pinned at `nsPath` (for interface ioctls); returns its fd. */
export function datagramSocketInNetns(nsPath: string): number {
  return socketInNetns(nsPath, AF_INET, SOCK_DGRAM);
}

export function closeFd(fd: number): void {
  check('close', closeFn(fd) as number, `fd ${fd}`);
}
