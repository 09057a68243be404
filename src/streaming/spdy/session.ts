// A SPDY/3.1 session over one byte stream (after the HTTP/1.1 Upgrade). It demultiplexes
// frames into SpdyStreams, answers PINGs, honours GOAWAY and RST_STREAM.
//
// Ordering: header blocks pass through stateful zlib contexts asynchronously, so both
// directions keep frame order explicitly — incoming frames wait behind a header block
// being inflated; outgoing frames wait behind a header block being deflated.
//
// Flow control: client-go's spdystream never sends WINDOW_UPDATE, so a sender that
// honoured the 64 KiB initial window would stall for good. We ignore the peer's window
// when sending (backpressure comes from the socket instead), and we do send
// WINDOW_UPDATE as we consume, for peers that do count. Inbound backpressure pauses the
// socket while any stream's reader is full.
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import {
  encodeFrame,
  FLAG_FIN,
  FLAG_UNIDIRECTIONAL,
  FrameParser,
  GOAWAY_STATUS,
  RST_STATUS,
  SpdyProtocolError,
  type SpdyFrame,
  type SpdyHeaders,
} from './frames.js';
import { HeaderCompressor, HeaderDecompressor } from './header-compression.js';
import { SpdyStream, type StreamSink } from './stream.js';

/** Largest DATA frame we send; any size up to 2^24-1 is legal. */
export const MAX_DATA_FRAME_BYTES = 64 * 1024;
/** SPDY/3 initial stream window; we acknowledge consumption at half of it. */
export const INITIAL_WINDOW_BYTES = 64 * 1024;

export interface SpdySessionOptions {
  socket: Duplex;
  /** Server sessions accept odd (client) stream ids and open even ones. */
  isServer: boolean;
  /** Bytes read past the HTTP upgrade response/request, to parse first. */
  head?: Buffer;
  log?: Logger;
}

const END = Symbol('end');
type OutItem = Buffer | Promise<Buffer> | typeof END;

export interface SpdySessionEvents {
  stream: [SpdyStream];
  goaway: [{ lastGoodStreamId: number; status: number }];
  close: [];
}

export class SpdySession extends EventEmitter<SpdySessionEvents> implements StreamSink {
  private readonly socket: Duplex;
  private readonly isServer: boolean;
  private readonly log: Logger | undefined;
  private readonly parser = new FrameParser();
  private readonly compressor = new HeaderCompressor();
  private readonly decompressor = new HeaderDecompressor();
  private readonly streams = new Map<number, SpdyStream>();
  private readonly blocked = new Set<SpdyStream>();
  private readonly pings = new Map<number, () => void>();
  private inQueue: SpdyFrame[] = [];
  private inBusy = false;
  private outQueue: OutItem[] = [];
  private pumping = false;
  private drainWaiters: Array<(err?: Error | null) => void> = [];
  private lastRemoteStreamId = 0;
  private nextLocalStreamId: number;
  private nextPingId: number;
  private sentGoaway = false;
  /** The peer sent GOAWAY. */
  goneAway = false;
  closed = false;

  constructor(opts: SpdySessionOptions) {
    super();
    this.socket = opts.socket;
    this.isServer = opts.isServer;
    this.log = opts.log;
    this.nextLocalStreamId = opts.isServer ? 2 : 1;
    this.nextPingId = opts.isServer ? 2 : 1;
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('drain', () => this.flushDrainWaiters());
    // The peer half-closing TCP ends the session: spdystream never half-closes on purpose.
    this.socket.on('end', () => this.destroy());
    this.socket.on('error', (err: Error) => {
      this.log?.debug({ err }, 'spdy session socket error');
      this.destroy();
    });
    this.socket.on('close', () => this.destroy());
    if (opts.head && opts.head.length > 0) this.onData(opts.head);
  }

  /** Opens a stream (client role, and tests). The stream's 'reply' fires on SYN_REPLY. */
  openStream(headers: SpdyHeaders, fin = false): SpdyStream {
    if (this.closed || this.sentGoaway || this.goneAway) {
      throw new Error('opening spdy stream: session is going away');
    }
    const id = this.nextLocalStreamId;
    this.nextLocalStreamId += 2;
    const stream = new SpdyStream(id, headers, this);
    this.streams.set(id, stream);
    if (fin) stream.localFinished = true;
    const flags = fin ? FLAG_FIN : 0;
    this.enqueue(
      this.compressor
        .compress(headers)
        .then((headerBlock) => encodeFrame({ type: 'SYN_STREAM', streamId: id, associatedStreamId: 0, priority: 0, slot: 0, flags, headerBlock })),
    );
    if (fin) stream.end();
    return stream;
  }

  /** Round-trips a PING (§2.6.5). */
  ping(): Promise<void> {
    const id = this.nextPingId;
    this.nextPingId += 2;
    return new Promise((resolve, reject) => {
      if (this.closed) {
        reject(new Error('pinging spdy peer: session closed'));
        return;
      }
      this.pings.set(id, resolve);
      this.enqueue(encodeFrame({ type: 'PING', id }));
    });
  }

  /** Graceful close: GOAWAY, then end the socket after every queued frame. */
  close(): void {
    if (this.closed) return;
    this.sendGoaway(GOAWAY_STATUS.OK);
    this.enqueue(END);
  }

  destroy(err?: Error): void {
    if (this.closed) return;
    this.closed = true;
    if (err) this.log?.debug({ err }, 'spdy session destroyed');
    for (const s of [...this.streams.values()]) s.abortFromPeer();
    this.streams.clear();
    this.blocked.clear();
    this.outQueue = [];
    this.flushDrainWaiters(new Error('spdy session closed'));
    this.compressor.close();
    this.decompressor.close();
    this.socket.destroy();
    this.emit('close');
  }

  get openStreams(): number {
    return this.streams.size;
  }

  // ---- StreamSink -------------------------------------------------------------

  sendData(stream: SpdyStream, data: Buffer, fin: boolean, cb: (err?: Error | null) => void): void {
    if (this.closed) {
      cb(new Error(`writing to spdy stream ${stream.id}: session closed`));
      return;
    }
    if (this.isServer && !stream.replied) stream.reply();
    let off = 0;
    do {
      const len = Math.min(MAX_DATA_FRAME_BYTES, data.length - off);
      const last = off + len >= data.length;
      this.enqueue(encodeFrame({ type: 'DATA', streamId: stream.id, flags: last && fin ? FLAG_FIN : 0, data: data.subarray(off, off + len) }));
      off += len;
    } while (off < data.length);
    if (this.pumping || (this.socket as { writableNeedDrain?: boolean }).writableNeedDrain) this.drainWaiters.push(cb);
    else cb();
  }

  sendReply(stream: SpdyStream, headers: SpdyHeaders, fin: boolean): void {
    if (this.closed) return;
    this.enqueue(
      this.compressor.compress(headers).then((headerBlock) => encodeFrame({ type: 'SYN_REPLY', streamId: stream.id, flags: fin ? FLAG_FIN : 0, headerBlock })),
    );
  }

  sendReset(stream: SpdyStream, status: number): void {
    if (this.closed) return;
    this.enqueue(encodeFrame({ type: 'RST_STREAM', streamId: stream.id, status }));
  }

  readResumed(stream: SpdyStream): void {
    this.acknowledge(stream);
    if (this.blocked.delete(stream) && this.blocked.size === 0 && !this.closed) this.socket.resume();
  }

  streamClosed(stream: SpdyStream): void {
    if (this.streams.get(stream.id) === stream) this.streams.delete(stream.id);
    if (this.blocked.delete(stream) && this.blocked.size === 0 && !this.closed) this.socket.resume();
  }

  // ---- receiving ----------------------------------------------------------------

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    let frames: SpdyFrame[];
    try {
      frames = this.parser.push(chunk);
    } catch (e: unknown) {
      this.protocolError(e);
      return;
    }
    this.inQueue.push(...frames);
    void this.drainInput();
  }

  private async drainInput(): Promise<void> {
    if (this.inBusy) return;
    this.inBusy = true;
    try {
      while (this.inQueue.length > 0 && !this.closed) {
        const frame = this.inQueue.shift()!;
        await this.handleFrame(frame);
      }
    } catch (e: unknown) {
      this.protocolError(e);
    } finally {
      this.inBusy = false;
    }
  }

  private handleFrame(frame: SpdyFrame): Promise<void> | void {
    switch (frame.type) {
      case 'DATA': {
        const stream = this.streams.get(frame.streamId);
        if (!stream) return; // late data for a stream we already closed or reset
        const more = stream.deliver(frame.data, (frame.flags & FLAG_FIN) !== 0);
        if (!more && !this.closed) {
          this.blocked.add(stream);
          this.socket.pause();
        } else {
          this.acknowledge(stream);
        }
        return;
      }
      case 'SYN_STREAM':
        return this.decompressor.decompress(frame.headerBlock).then((headers) => this.onSynStream(frame, headers));
      case 'SYN_REPLY':
        return this.decompressor.decompress(frame.headerBlock).then((headers) => {
          const stream = this.streams.get(frame.streamId);
          if (!stream || stream.replied) return;
          stream.replied = true;
          stream.emit('reply', headers);
          if (frame.flags & FLAG_FIN) stream.remoteFinish();
        });
      case 'HEADERS':
        return this.decompressor.decompress(frame.headerBlock).then((headers) => {
          const stream = this.streams.get(frame.streamId);
          if (!stream) return;
          stream.emit('headers', headers);
          if (frame.flags & FLAG_FIN) stream.remoteFinish();
        });
      case 'RST_STREAM': {
        const stream = this.streams.get(frame.streamId);
        if (stream) {
          this.streams.delete(stream.id);
          stream.emit('peer-reset', frame.status);
          stream.abortFromPeer();
        }
        return;
      }
      case 'PING':
        // The peer's pings have the peer's parity; echo them. Ours resolve a waiter.
        if ((frame.id & 1) === (this.isServer ? 1 : 0)) this.enqueue(encodeFrame(frame));
        else {
          this.pings.get(frame.id)?.();
          this.pings.delete(frame.id);
        }
        return;
      case 'GOAWAY':
        this.goneAway = true;
        this.emit('goaway', { lastGoodStreamId: frame.lastGoodStreamId, status: frame.status });
        return;
      case 'SETTINGS':
      case 'WINDOW_UPDATE':
      case 'UNKNOWN':
        // We never hold data back for the peer's window (see the header comment).
        return;
    }
  }

  private onSynStream(frame: Extract<SpdyFrame, { type: 'SYN_STREAM' }>, headers: SpdyHeaders): void {
    const id = frame.streamId;
    const peerParity = this.isServer ? 1 : 0;
    if (id === 0 || (id & 1) !== peerParity || id <= this.lastRemoteStreamId) {
      throw new SpdyProtocolError(`receiving spdy SYN_STREAM: invalid stream id ${id} after ${this.lastRemoteStreamId}`);
    }
    this.lastRemoteStreamId = id;
    if (this.sentGoaway) {
      this.enqueue(encodeFrame({ type: 'RST_STREAM', streamId: id, status: RST_STATUS.REFUSED_STREAM }));
      return;
    }
    const stream = new SpdyStream(id, headers, this);
    this.streams.set(id, stream);
    if (frame.flags & FLAG_UNIDIRECTIONAL) {
      stream.localFinished = true;
      stream.replied = true;
    }
    this.emit('stream', stream);
    if (frame.flags & FLAG_FIN) stream.remoteFinish();
  }

  private acknowledge(stream: SpdyStream): void {
    if (stream.unacknowledged < INITIAL_WINDOW_BYTES / 2 || stream.remoteFinished || this.closed) return;
    const delta = stream.unacknowledged;
    stream.unacknowledged = 0;
    this.enqueue(encodeFrame({ type: 'WINDOW_UPDATE', streamId: stream.id, delta }));
  }

  private protocolError(e: unknown): void {
    this.log?.warn({ err: e }, 'spdy protocol error, closing session');
    if (!this.closed) {
      this.sendGoaway(GOAWAY_STATUS.PROTOCOL_ERROR);
      this.enqueue(END);
      // Do not wait forever on a peer that broke the protocol.
      setTimeout(() => this.destroy(), 1000).unref();
    }
  }

  private sendGoaway(status: number): void {
    if (this.sentGoaway) return;
    this.sentGoaway = true;
    this.enqueue(encodeFrame({ type: 'GOAWAY', lastGoodStreamId: this.lastRemoteStreamId, status }));
  }

  // ---- sending --------------------------------------------------------------------

  private enqueue(item: OutItem): void {
    if (this.closed) return;
    if (!this.pumping && this.outQueue.length === 0 && Buffer.isBuffer(item)) {
      this.socket.write(item);
      return;
    }
    this.outQueue.push(item);
    void this.pump();
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.outQueue.length > 0 && !this.closed) {
        const item = this.outQueue.shift()!;
        if (item === END) {
          this.socket.end();
          continue;
        }
        const buf = Buffer.isBuffer(item) ? item : await item;
        if (this.closed) return;
        this.socket.write(buf);
      }
    } catch (e: unknown) {
      this.log?.warn({ err: e }, 'spdy session send failed');
      this.destroy();
    } finally {
      this.pumping = false;
      if (!this.closed && !(this.socket as { writableNeedDrain?: boolean }).writableNeedDrain) this.flushDrainWaiters();
    }
  }

  private flushDrainWaiters(err?: Error): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w(err ?? null);
  }
}
