// How an accepted connection reaches grpc-js. Almost every client sends a valid
// `:authority`: its socket goes to Node's HTTP/2 layer itself, which then reads and
// writes it from C++ (no JavaScript per frame). Only a client that sends its socket path
// as the authority (src/cri/authority-front.ts) gets the JavaScript front that rewrites
// its header blocks. Which one it is shows in the first header block, so the opener reads
// the connection's first frames before handing it over:
//
//   client preface ──▶ (opener) checks it, answers with an empty SETTINGS frame
//   client frames  ──▶ (opener) kept in order, up to the first complete header block
//   client's ACK of that SETTINGS ──▶ (opener) dropped
//   both seen ──▶ the kept bytes go back in front of the socket, and the socket (or the
//                 front over it) to grpc-js, whose session sends its own SETTINGS next
//
// The empty SETTINGS frame is there because clients such as grpc-go (the kubelet) send no
// request before the server's connection preface. Its ACK is dropped so that the HTTP/2
// session counts exactly the ACKs of the SETTINGS it sent itself (an extra one is a
// connection error). Bytes that are no HTTP/2 preface go to the session untouched.
import type { Duplex } from 'node:stream';
import type net from 'node:net';
import { AuthorityFront, firstAuthorityIsValid } from './authority-front.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
const FRAME_HEADER = 9;
const TYPE_HEADERS = 0x1;
const TYPE_SETTINGS = 0x4;
const TYPE_CONTINUATION = 0x9;
const FLAG_ACK = 0x1;
const FLAG_END_HEADERS = 0x4;
/** Before the session's SETTINGS the client may only use the default largest frame (RFC 9113 §4.2). */
const MAX_FRAME = 16384;
/** An empty SETTINGS frame: the server's connection preface, all values their defaults. */
const EMPTY_SETTINGS = Buffer.from([0, 0, 0, TYPE_SETTINGS, 0, 0, 0, 0, 0]);

/** Reads the first frames of `sock`, then hands it (or the front over it) to `serve`. */
export function openConnection(sock: net.Socket, serve: (conn: Duplex) => void): void {
  new ConnectionOpener(sock, serve).start();
}

class ConnectionOpener {
  private buf: Buffer = Buffer.alloc(0);
  /** What goes to the session, in the order the client sent it (the ACK left out). */
  private readonly kept: Buffer[] = [];
  private prefaceSeen = false;
  private ackSeen = false;
  /** The first header block's fragments until END_HEADERS; then its verdict. */
  private block: Buffer[] | undefined;
  private valid: boolean | undefined;
  private readonly onData = (d: Buffer) => this.read(d);
  private readonly onGone = () => this.sock.destroy();

  constructor(
    private readonly sock: net.Socket,
    private readonly serve: (conn: Duplex) => void,
  ) {}

  start(): void {
    this.sock.on('data', this.onData);
    // Gone before it asked anything: nothing to serve.
    this.sock.once('end', this.onGone);
    this.sock.once('error', this.onGone);
  }

  private read(d: Buffer): void {
    this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
    if (!this.prefaceSeen) {
      if (this.buf.length < PREFACE.length) return;
      if (!this.buf.subarray(0, PREFACE.length).equals(PREFACE)) {
        this.handOver(true); // not HTTP/2: the session answers it
        return;
      }
      this.kept.push(this.buf.subarray(0, PREFACE.length));
      this.buf = this.buf.subarray(PREFACE.length);
      this.prefaceSeen = true;
      this.sock.write(EMPTY_SETTINGS);
    }
    while (this.buf.length >= FRAME_HEADER) {
      const length = this.buf.readUIntBE(0, 3);
      if (length > MAX_FRAME) {
        this.sock.destroy(); // a protocol error the session would end the connection for
        return;
      }
      if (this.buf.length < FRAME_HEADER + length) return;
      const frame = this.buf.subarray(0, FRAME_HEADER + length);
      this.buf = this.buf.subarray(FRAME_HEADER + length);
      this.onFrame(frame);
      if (this.valid !== undefined && this.ackSeen) {
        this.handOver(this.valid);
        return;
      }
    }
  }

  private onFrame(frame: Buffer): void {
    const type = frame[3];
    const flags = frame[4];
    if (type === TYPE_SETTINGS && flags & FLAG_ACK && !this.ackSeen) {
      this.ackSeen = true; // the ACK of the opener's SETTINGS: the session never sent it
      return;
    }
    this.kept.push(frame);
    if (this.valid !== undefined) return;
    if (type === TYPE_HEADERS && this.block === undefined) this.block = [frame];
    else if (type === TYPE_CONTINUATION && this.block !== undefined) this.block.push(frame);
    else return;
    if (flags & FLAG_END_HEADERS) this.valid = firstAuthorityIsValid(this.block);
  }

  private handOver(valid: boolean): void {
    const sock = this.sock;
    sock.off('data', this.onData);
    sock.off('end', this.onGone);
    sock.off('error', this.onGone);
    sock.pause();
    const bytes = Buffer.concat([...this.kept, this.buf]);
    if (valid) {
      // The session reads what is already buffered in the socket first (Node's http2 does so for sockets handed over with data).
      sock.unshift(bytes);
      this.serve(sock);
    } else {
      this.serve(new AuthorityFront(sock, bytes));
    }
  }
}
