// One SPDY stream as a Node Duplex. Half-close in both directions (§2.3.6):
//
//   open ──local end() → FIN sent──► half-closed(local) ──remote FIN──► closed
//     └───remote FIN → push(null)──► half-closed(remote) ──local end()──┘
//   any state ──RST_STREAM either way / session gone──► closed (destroyed)
//
// The session does the wire work; the stream only keeps its own state.
import { Duplex } from 'node:stream';
import type { SpdyHeaders } from './frames.js';

/** What a stream needs from its session (kept narrow so stream.ts has no cycle). */
export interface StreamSink {
  sendData(stream: SpdyStream, data: Buffer, fin: boolean, cb: (err?: Error | null) => void): void;
  sendReply(stream: SpdyStream, headers: SpdyHeaders, fin: boolean): void;
  sendReset(stream: SpdyStream, status: number): void;
  readResumed(stream: SpdyStream): void;
  streamClosed(stream: SpdyStream): void;
}

export class SpdyStream extends Duplex {
  /** Set once we sent (server) or received (client) the SYN_REPLY. */
  replied = false;
  localFinished = false;
  remoteFinished = false;
  /** RST_STREAM seen or sent: no more frames on this stream. */
  reset = false;
  /** Bytes delivered to the reader and not yet acknowledged with WINDOW_UPDATE. */
  unacknowledged = 0;

  constructor(
    readonly id: number,
    /** The SYN_STREAM's headers, names lowercase. */
    readonly headers: SpdyHeaders,
    private readonly sink: StreamSink,
  ) {
    super({ allowHalfOpen: true });
  }

  /** Answers a peer-initiated stream (SYN_REPLY); implied before the first data we send. */
  reply(headers: SpdyHeaders = {}, fin = false): void {
    if (this.replied || this.reset) return;
    this.replied = true;
    if (fin) this.localFinished = true;
    this.sink.sendReply(this, headers, fin);
    this.maybeClosed();
  }

  /** Aborts the stream with RST_STREAM (CANCEL unless told). */
  resetStream(status = 5): void {
    if (this.reset) return;
    this.reset = true;
    this.sink.sendReset(this, status);
    this.destroy();
  }

  /** Called by the session for each DATA frame; false means stop reading the socket. */
  deliver(data: Buffer, fin: boolean): boolean {
    if (this.remoteFinished || this.destroyed) return true;
    let more = true;
    if (data.length > 0) {
      this.unacknowledged += data.length;
      more = this.push(data);
    }
    if (fin) this.remoteFinish();
    return more;
  }

  remoteFinish(): void {
    if (this.remoteFinished) return;
    this.remoteFinished = true;
    this.push(null);
    this.maybeClosed();
  }

  /** The peer reset the stream or the session died. */
  abortFromPeer(): void {
    this.reset = true;
    this.remoteFinished = true;
    this.localFinished = true;
    this.destroy();
  }

  override _read(): void {
    this.sink.readResumed(this);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.reset) {
      cb(new Error(`writing to spdy stream ${this.id}: stream was reset`));
      return;
    }
    this.sink.sendData(this, chunk, false, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.reset || this.localFinished) {
      cb();
      return;
    }
    this.localFinished = true;
    this.sink.sendData(this, Buffer.alloc(0), true, (err) => {
      cb(err);
      this.maybeClosed();
    });
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // A stream dropped before both sides finished tells the peer, so nothing waits on it.
    if (!this.reset && !(this.localFinished && this.remoteFinished)) {
      this.reset = true;
      this.sink.sendReset(this, 5 /* CANCEL */);
    }
    this.sink.streamClosed(this);
    cb(err);
  }

  private maybeClosed(): void {
    if (this.localFinished && this.remoteFinished) this.sink.streamClosed(this);
  }
}
