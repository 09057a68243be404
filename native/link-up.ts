// Bringing a network interface up inside another network namespace without a process:
// SIOCGIFFLAGS / SIOCSIFFLAGS on a datagram socket born in that netns (socket.ts),
// what the CNI loopback plugin's ADD does for `lo` (the kernel gives an up `lo` its
// 127.0.0.1/8 and ::1 itself).
import { ioctlBuffer } from './ioctl.js';
import { closeFd, datagramSocketInNetns } from './socket.js';

const SIOCGIFFLAGS = 0x8913;
const SIOCSIFFLAGS = 0x8914;
const IFF_UP = 0x1;
/** struct ifreq: ifr_name[IFNAMSIZ = 16], then a 24-byte union (ifr_flags: short at offset 16). */
const IFREQ_SIZE = 40;
const IFNAMSIZ = 16;

/** Sets interface `name` up in the netns pinned at `nsPath` (idempotent). */
export function setLinkUpInNetns(nsPath: string, name: string): void {
  if (Buffer.byteLength(name) >= IFNAMSIZ) throw new RangeError(`interface name "${name}" is longer than ${IFNAMSIZ - 1} bytes`);
  const fd = datagramSocketInNetns(nsPath);
  try {
    const ifr = Buffer.alloc(IFREQ_SIZE);
    ifr.write(name, 0, 'utf8');
    ioctlBuffer('ioctl(SIOCGIFFLAGS)', fd, SIOCGIFFLAGS, ifr, `"${name}" in "${nsPath}"`);
    const flags = ifr.readUInt16LE(IFNAMSIZ);
    if ((flags & IFF_UP) !== 0) return;
    ifr.writeUInt16LE(flags | IFF_UP, IFNAMSIZ);
    ioctlBuffer('ioctl(SIOCSIFFLAGS)', fd, SIOCSIFFLAGS, ifr, `"${name}" in "${nsPath}"`);
  } finally {
    closeFd(fd);
  }
}
