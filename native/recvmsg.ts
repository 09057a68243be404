// Receiving (and, for tests and helpers, sending) a file descriptor over a unix socket
// with SCM_RIGHTS: what a runtime's --console-socket hands over (the pty master).
// Node cannot do either itself: libuv reads unix sockets with read(2), which drops the
// ancillary data (and closes the passed fd).
//
// The calls are non-blocking (MSG_DONTWAIT) and synchronous: they take microseconds, so
// the caller polls from the event loop instead of parking a thread of koffi's small
// async pool (ARCHITECTURE.md) in a blocking recvmsg.
import koffi from 'koffi';
import { check, errno, libc, SyscallError } from './libc.js';

const SOL_SOCKET = 1;
const SCM_RIGHTS = 1;
const MSG_DONTWAIT = 0x40;
const MSG_CTRUNC = 0x8;
const MSG_CMSG_CLOEXEC = 0x40000000;
const EAGAIN = 11;
const EINTR = 4;
/** sizeof(struct cmsghdr) on LP64: size_t len, int level, int type. */
const CMSG_HDR_BYTES = 16;
/** Room for a few fds: a peer sending more than asked for sets MSG_CTRUNC. */
const CONTROL_BYTES = CMSG_HDR_BYTES + 4 * 8;
const DATA_BYTES = 4096;

const Iovec = koffi.struct('sandlot_iovec', { iov_base: 'void *', iov_len: 'size_t' });
koffi.struct('sandlot_msghdr', {
  msg_name: 'void *',
  msg_namelen: 'uint32_t',
  msg_iov: 'void *',
  msg_iovlen: 'size_t',
  msg_control: 'void *',
  msg_controllen: 'size_t',
  msg_flags: 'int',
});

const recvmsgFn = libc.func('long recvmsg(int fd, _Inout_ sandlot_msghdr *msg, int flags)');
const sendmsgFn = libc.func('long sendmsg(int fd, const sandlot_msghdr *msg, int flags)');
const closeFn = libc.func('int close(int fd)');

export interface ReceivedFds {
  /** The message's bytes (runc sends the pty's name, e.g. "/dev/pts/3"). */
  data: Buffer;
  /** File descriptors passed with it, owned by the caller now (close-on-exec set). */
  fds: number[];
}

interface Scratch {
  data: unknown;
  control: unknown;
  iov: unknown;
}

function allocScratch(dataBytes: number): Scratch {
  // koffi types its pointers as any; they are opaque here.
  const data: unknown = koffi.alloc('uint8_t', dataBytes);
  const control: unknown = koffi.alloc('uint8_t', CONTROL_BYTES);
  const iov: unknown = koffi.alloc(Iovec, 1);
  koffi.encode(iov, Iovec, { iov_base: data, iov_len: dataBytes });
  return { data, control, iov };
}

function freeScratch(s: Scratch): void {
  koffi.free(s.data);
  koffi.free(s.control);
  koffi.free(s.iov);
}

/**
 * One non-blocking recvmsg on `fd`: undefined when nothing is waiting (EAGAIN); a
 * message with zero bytes and no fds means the peer closed. Throws SyscallError.
 */
export function recvFds(fd: number): ReceivedFds | undefined {
  const s = allocScratch(DATA_BYTES);
  try {
    const msg = {
      msg_name: null,
      msg_namelen: 0,
      msg_iov: s.iov,
      msg_iovlen: 1,
      msg_control: s.control,
      msg_controllen: CONTROL_BYTES,
      msg_flags: 0,
    };
    let n: number;
    for (;;) {
      n = Number(recvmsgFn(fd, msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC));
      if (n !== -1) break;
      const e = errno();
      if (e === EINTR) continue;
      if (e === EAGAIN) return undefined;
      throw new SyscallError('recvmsg', e, `fd ${fd}`);
    }
    const data = Buffer.from(koffi.decode(s.data, 'uint8_t', n) as number[]);
    const fds = parseRights(Buffer.from(koffi.decode(s.control, 'uint8_t', Number(msg.msg_controllen)) as number[]));
    if ((msg.msg_flags & MSG_CTRUNC) !== 0) {
      for (const f of fds) closeFn(f);
      throw new SyscallError('recvmsg', 0, `fd ${fd}: control data truncated (the peer sent too many fds)`);
    }
    return { data, fds };
  } finally {
    freeScratch(s);
  }
}

/** The fds of every SCM_RIGHTS cmsg in a control buffer (x86_64/arm64 layout). */
export function parseRights(control: Buffer): number[] {
  const fds: number[] = [];
  let off = 0;
  while (off + CMSG_HDR_BYTES <= control.length) {
    const len = Number(control.readBigUInt64LE(off));
    if (len < CMSG_HDR_BYTES || off + len > control.length) break;
    const level = control.readInt32LE(off + 8);
    const type = control.readInt32LE(off + 12);
    if (level === SOL_SOCKET && type === SCM_RIGHTS) {
      for (let p = off + CMSG_HDR_BYTES; p + 4 <= off + len; p += 4) fds.push(control.readInt32LE(p));
    }
    off += (len + 7) & ~7; // CMSG_ALIGN
  }
  return fds;
}

/** Sends `data` (at least one byte) with `fds` attached (SCM_RIGHTS). Blocking as the socket is. */
export function sendFds(sock: number, data: Buffer, fds: number[]): void {
  if (data.length === 0) throw new RangeError('sendFds: data must not be empty (a zero-byte message carries no fds on SOCK_STREAM)');
  if (CMSG_HDR_BYTES + 4 * fds.length > CONTROL_BYTES) throw new RangeError(`sendFds: at most ${(CONTROL_BYTES - CMSG_HDR_BYTES) / 4} fds`);
  const s = allocScratch(data.length);
  try {
    koffi.encode(s.data, koffi.array('uint8_t', data.length), [...data]);
    const cmsgLen = CMSG_HDR_BYTES + 4 * fds.length;
    const control = Buffer.alloc((cmsgLen + 7) & ~7);
    control.writeBigUInt64LE(BigInt(cmsgLen), 0);
    control.writeInt32LE(SOL_SOCKET, 8);
    control.writeInt32LE(SCM_RIGHTS, 12);
    fds.forEach((f, i) => control.writeInt32LE(f, CMSG_HDR_BYTES + 4 * i));
    koffi.encode(s.control, koffi.array('uint8_t', control.length), [...control]);
    const msg = {
      msg_name: null,
      msg_namelen: 0,
      msg_iov: s.iov,
      msg_iovlen: 1,
      msg_control: s.control,
      msg_controllen: control.length,
      msg_flags: 0,
    };
    check('sendmsg', Number(sendmsgFn(sock, msg, 0)), `fd ${sock}`);
  } finally {
    freeScratch(s);
  }
}
