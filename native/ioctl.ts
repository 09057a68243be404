// ioctl(2) with a buffer argument, and the terminal ioctls: the window size of a pty
// (TIOCSWINSZ on the master reaches the process on the slave as SIGWINCH), as a resize
// event of exec/attach asks.
import { check, libc } from './libc.js';

const TIOCSWINSZ = 0x5414;
const TIOCGWINSZ = 0x5413;

const ioctlPtr = libc.func('int ioctl(int fd, unsigned long request, void *arg)');

/** ioctl(fd, request, arg) with `arg` read and written in place; a failure names `what` and `detail`. */
export function ioctlBuffer(what: string, fd: number, request: number, arg: Buffer, detail: string): void {
  check(what, ioctlPtr(fd, request, arg) as number, detail);
}

export interface WindowSize {
  width: number;
  height: number;
}

/** struct winsize { rows, cols, xpixel, ypixel } (unsigned short each). */
function encode(size: WindowSize): Buffer {
  const ws = Buffer.alloc(8);
  ws.writeUInt16LE(clamp(size.height), 0);
  ws.writeUInt16LE(clamp(size.width), 2);
  return ws;
}

function clamp(n: number): number {
  return Math.max(0, Math.min(0xffff, Math.trunc(n)));
}

/** Sets the window size of the terminal behind `fd` (a pty master or slave). */
export function setWindowSize(fd: number, size: WindowSize): void {
  ioctlBuffer('ioctl(TIOCSWINSZ)', fd, TIOCSWINSZ, encode(size), `fd ${fd}`);
}

/** Reads the window size of the terminal behind `fd`. */
export function getWindowSize(fd: number): WindowSize {
  const ws = Buffer.alloc(8);
  ioctlBuffer('ioctl(TIOCGWINSZ)', fd, TIOCGWINSZ, ws, `fd ${fd}`);
  return { height: ws.readUInt16LE(0), width: ws.readUInt16LE(2) };
}
