// Attach to a container's main process through its conmon (conmon 2.1.6, measured):
//
//   <socketDir>/<id>/attach   SOCK_SEQPACKET; every packet conmon sends is one read of
//                             the container's output prefixed by a byte naming the pipe
//                             (2 = stdout, 3 = stderr; a TTY's output comes as 2); what
//                             a client sends goes to the container's stdin (when it was
//                             created with stdin); shutdown(SHUT_WR) is the client's EOF,
//                             which closes the container's stdin when it is stdin_once.
//                             conmon closes the socket when the container exits.
//   <bundle>/ctl              fifo: "1 <height> <width>\n" resizes the container's TTY.
//
// Node cannot connect a SEQPACKET socket, so the socket is koffi's (native/seqpacket.ts)
// and is read by non-blocking recv polled from the event loop: an attach is rare and
// long-lived, a poll costs microseconds, and no thread of koffi's small pool is parked
// in a blocking read. The interval adapts: short while data flows, longer when idle.
// The path of the socket can exceed sun_path (108 bytes) under a long state_dir, so it
// is reached through /proc/self/fd/<dir fd>/attach, as podman does.
//
// Detaching (the client went away) closes our socket only; the container runs on.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { closeSocket, connectSeqpacket, recvPacket, sendPacket, shutdownWrite } from '../../../native/index.js';
import { errnoCode, errorMessage, FailedPreconditionError, InternalError } from '../../errors.js';
import type { ExecStreams } from '../../streaming/backend.js';

export const ATTACH_PIPE_STDOUT = 2;
export const ATTACH_PIPE_STDERR = 3;
/** conmon reads and sends at most this much per packet (CONN_SOCK_BUF_SIZE). */
export const ATTACH_PACKET_BYTES = 32 * 1024;
const POLL_MIN_MS = 2;
const POLL_MAX_MS = 50;
/** Packets read per poll before yielding to the event loop. */
const PACKETS_PER_POLL = 64;
const O_PATH = 0o10000000;

export interface AttachTarget {
  containerId: string;
  attachSocket: string;
  ctlFifo: string;
}

/** The ctl message conmon reads as a TTY resize. */
export function resizeMessage(width: number, height: number): string {
  return `1 ${Math.trunc(height)} ${Math.trunc(width)}\n`;
}

/** Splits a conmon attach packet into its pipe and payload (pure). */
export function parseAttachPacket(packet: Buffer): { pipe: number; data: Buffer } | undefined {
  if (packet.length === 0) return undefined;
  return { pipe: packet[0], data: packet.subarray(1) };
}

function connect(target: AttachTarget): number {
  let dirFd: number;
  try {
    dirFd = fs.openSync(path.dirname(target.attachSocket), O_PATH | fs.constants.O_DIRECTORY);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') {
      throw new FailedPreconditionError(`attaching to container "${target.containerId}": its monitor has no attach socket (not running)`);
    }
    throw new InternalError(`attaching to container "${target.containerId}": ${errorMessage(e)}`, { cause: e });
  }
  try {
    return connectSeqpacket(`/proc/self/fd/${dirFd}/${path.basename(target.attachSocket)}`);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ECONNREFUSED' || code === 'ENOENT') {
      throw new FailedPreconditionError(`attaching to container "${target.containerId}": its monitor is not listening (${code})`, { cause: e });
    }
    throw new InternalError(`attaching to container "${target.containerId}": ${errorMessage(e)}`, { cause: e });
  } finally {
    fs.closeSync(dirFd);
  }
}

async function resize(ctlFifo: string, width: number, height: number): Promise<void> {
  // Non-blocking: without a reader (conmon gone) the open fails instead of hanging.
  const h = await fsp.open(ctlFifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  try {
    await h.write(resizeMessage(width, height));
  } finally {
    await h.close();
  }
}

/** Resolves when the container's output ends or `signal` aborts (detach). */
export async function runAttachSession(target: AttachTarget, io: ExecStreams, signal: AbortSignal): Promise<void> {
  const fd = connect(target);
  const input = new AttachInput(fd);
  const onData = (d: Buffer): void => input.push(d);
  const onEnd = (): void => input.end();
  io.stdin?.on('data', onData);
  io.stdin?.once('end', onEnd);
  void (async () => {
    if (!io.resize) return;
    for await (const s of io.resize) {
      if (input.closed) return;
      await resize(target.ctlFifo, s.width, s.height).catch(() => undefined);
    }
  })();
  const buf = Buffer.allocUnsafe(ATTACH_PACKET_BYTES + 1);
  let interval = POLL_MIN_MS;
  try {
    while (!signal.aborted) {
      input.flush();
      const { got, eof } = await readPackets(fd, buf, io, signal);
      if (eof) return;
      interval = got > 0 ? POLL_MIN_MS : Math.min(POLL_MAX_MS, interval * 2);
      await sleep(interval, undefined, { signal }).catch(() => undefined);
    }
  } finally {
    input.closed = true;
    io.stdin?.off('data', onData);
    io.stdin?.off('end', onEnd);
    closeSocket(fd);
  }
}

/** The client's stdin on its way to conmon: queued while the socket is full; its end a SHUT_WR. */
class AttachInput {
  closed = false;
  private readonly pending: Buffer[] = [];
  private ended = false;
  private shut = false;

  constructor(private readonly fd: number) {}

  push(d: Buffer): void {
    this.pending.push(d);
    this.flush();
  }

  end(): void {
    this.ended = true;
    this.flush();
  }

  flush(): void {
    while (!this.closed && this.pending.length > 0) {
      const chunk = this.pending[0];
      const part = chunk.subarray(0, ATTACH_PACKET_BYTES);
      let sent: boolean;
      try {
        sent = sendPacket(this.fd, part);
      } catch {
        this.pending.length = 0; // conmon went away: the output side notices and ends
        return;
      }
      if (!sent) return; // full: retried at the next poll
      if (part.length === chunk.length) this.pending.shift();
      else this.pending[0] = chunk.subarray(part.length);
    }
    if (!this.closed && this.ended && !this.shut && this.pending.length === 0) {
      this.shut = true;
      try {
        shutdownWrite(this.fd);
      } catch {
        // gone already
      }
    }
  }
}

/** One poll's worth of conmon's packets, written to the client; `eof` once conmon closed. */
async function readPackets(fd: number, buf: Buffer, io: ExecStreams, signal: AbortSignal): Promise<{ got: number; eof: boolean }> {
  let got = 0;
  for (let i = 0; i < PACKETS_PER_POLL; i++) {
    let n: number | undefined;
    try {
      n = recvPacket(fd, buf);
    } catch {
      return { got, eof: true }; // ECONNRESET: conmon exited
    }
    if (n === undefined) break;
    if (n === 0) return { got, eof: true };
    got++;
    const p = parseAttachPacket(Buffer.from(buf.subarray(0, n)));
    if (!p || p.data.length === 0) continue;
    const out = p.pipe === ATTACH_PIPE_STDERR ? (io.stderr ?? io.stdout) : io.stdout;
    if (out && !out.write(p.data)) {
      await new Promise<void>((resolve) => {
        out.once('drain', resolve);
        signal.addEventListener('abort', () => resolve(), { once: true });
      });
    }
  }
  return { got, eof: false };
}
