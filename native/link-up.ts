// Bringing a network interface up inside another network namespace without a process:
// SIOCGIFFLAGS / SIOCSIFFLAGS on a datagram socket born in that netns (withNetnsSync),
// what the CNI loopback plugin's ADD does for `lo` (the kernel gives an up `lo` its
// 127.0.0.1/8 and ::1 itself).
import { check, libc } from './libc.js';
import { withNetnsSync } from './netns.js';

const AF_INET = 2;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const SIOCGIFFLAGS = 0x8913;
const SIOCSIFFLAGS = 0x8914;
const IFF_UP = 0x1;
/** struct ifreq: ifr_name[IFNAMSIZ = 16], then a 24-byte union (ifr_flags: short at offset 16). */
const IFREQ_SIZE = 40;
const IFNAMSIZ = 16;

const socketFn = libc.func('int socket(int domain, int type, int protocol)');
const closeFn = libc.func('int close(int fd)');
const ioctlPtr = libc.func('int ioctl(int fd, unsigned long request, void *arg)');

/** Sets interface `name` up in the netns pinned at `nsPath` (idempotent). */
export function setLinkUpInNetns(nsPath: string, name: string): void {
  if (Buffer.byteLength(name) >= IFNAMSIZ) throw new RangeError(`interface name "${name}" is longer than ${IFNAMSIZ - 1} bytes`);
  const fd = withNetnsSync(nsPath, () => check('socket', socketFn(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0) as number, `in "${nsPath}"`));
  try {
    const ifr = Buffer.alloc(IFREQ_SIZE);
    ifr.write(name, 0, 'utf8');
    check('ioctl(SIOCGIFFLAGS)', ioctlPtr(fd, SIOCGIFFLAGS, ifr) as number, `"${name}" in "${nsPath}"`);
    const flags = ifr.readUInt16LE(IFNAMSIZ);
    if ((flags & IFF_UP) !== 0) return;
    ifr.writeUInt16LE(flags | IFF_UP, IFNAMSIZ);
    check('ioctl(SIOCSIFFLAGS)', ioctlPtr(fd, SIOCSIFFLAGS, ifr) as number, `"${name}" in "${nsPath}"`);
  } finally {
    closeFn(fd);
  }
}
