// The lean path of unary calls. grpc-js serves a call through an intercepting-call
// object, a Metadata built from the headers, a message decoder, a readable queue and a
// writable call stream (an EventEmitter of its own) before the handler runs: at 100
// pods that was most of a read's cost. Here an HTTP/2 stream of a known unary method
// (src/cri/grpc-stream-tap.ts hands them over) is read and answered directly, through
// the same decorator as grpc-js's handlers (unaryServe in src/cri/instrument.ts: span,
// log line, metrics, inflight count, error → status), and with what grpc-js 1.14 puts on
// the wire for the same call:
//
//   request headers  ── grpc-timeout (a deadline; a malformed one: INTERNAL),
//                       grpc-encoding (gzip and deflate taken, others UNIMPLEMENTED),
//                       traceparent … (the trace context, read by the propagator)
//   request DATA     ── one length-prefixed message, at most maxReceiveBytes
//                       (RESOURCE_EXHAUSTED beyond); none or two: UNIMPLEMENTED
//   half-close       ── the handler runs
//   answer           ── headers (200, application/grpc+proto, grpc-encoding identity),
//                       the length-prefixed answer, trailers grpc-status 0 / grpc-message OK
//   error            ── trailers only: grpc-status, grpc-message (percent-encoded)
//   stream closed    ── before the answer: the call is cancelled (the handler's signal aborts)
//
// Streams of other paths (server-streaming methods, unknown methods) and requests that
// are no gRPC (content-type) stay with grpc-js, which answers them as before. grpc-js's
// per-stream connection-idle books are off on this server (no max_connection_idle_ms).
import { status as Status } from '@grpc/grpc-js';
import { context, propagation, type TextMapGetter } from '@opentelemetry/api';
import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import zlib from 'node:zlib';
import type { CancellableCall, UnaryDone, UnaryRoute } from './instrument.js';

/** Compressed flag (1 byte) and length (4 bytes, big-endian) before each message. */
const PREFIX_BYTES = 5;

// The headers and options of every answer are the same objects each time (Node copies them).
const ANSWER_HEADERS = Object.freeze({
  ':status': 200,
  'content-type': 'application/grpc+proto',
  'grpc-accept-encoding': 'identity,deflate,gzip',
  'grpc-encoding': 'identity',
});
const OK_TRAILERS = Object.freeze({ 'grpc-status': Status.OK, 'grpc-message': 'OK' });
const WAIT_FOR_TRAILERS = Object.freeze({ waitForTrailers: true });
const END_STREAM = Object.freeze({ endStream: true });

/** grpc-js's reading of grpc-timeout: up to 8 digits and a unit. */
const TIMEOUT = /(\d{1,8})\s*([HMSmun])/;
const UNIT_MS: Readonly<Record<string, number>> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

/** The propagator's fields (traceparent …) from the request headers: text values, the first of each. */
const HEADERS_GETTER: TextMapGetter<IncomingHttpHeaders> = {
  keys: (h) => Object.keys(h).filter((k) => k.charAt(0) !== ':'),
  get: (h, key) => {
    const v = h[key];
    return typeof v === 'string' ? v : Array.isArray(v) ? v[0] : undefined;
  },
};

/** Errors of a stream are followed by its 'close', which is what the call acts on. */
function ignore(): void {}

/** 'wantTrailers' listener of an answered stream (called with the stream as `this`: no closure per call). */
function sendOkTrailers(this: ServerHttp2Stream): void {
  this.sendTrailers(OK_TRAILERS);
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** grpc-message is percent-encoded; a lone surrogate (which encodeURI refuses) becomes U+FFFD. */
function encodeMessage(details: string): string {
  try {
    return encodeURI(details);
  } catch {
    return encodeURI(details.replace(LONE_SURROGATE, '\uFFFD'));
  }
}

/** A header's value as grpc-js's Metadata gives it: the first. */
function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/**
 * The deadlines of the calls in flight, behind one timer. A timer per call (setTimeout
 * when it comes, clearTimeout when it is answered) cost every read both, for a deadline
 * (the kubelet's: two minutes) that a read answered from memory never comes near. The
 * one timer is armed for the earliest deadline and left armed when calls end: when it
 * fires it refuses the calls whose deadline passed and re-arms for the next. Unref'd: a
 * call in flight keeps its connection (and so the process) alive, not its deadline.
 */
class Deadlines {
  private readonly calls = new Set<UnaryStreamCall>();
  private timer: NodeJS.Timeout | undefined;
  /** performance.now() the timer fires at (Infinity: not armed). */
  private at = Infinity;

  add(call: UnaryStreamCall): void {
    this.calls.add(call);
    if (call.deadline < this.at) this.arm(call.deadline);
  }

  delete(call: UnaryStreamCall): void {
    this.calls.delete(call);
  }

  private arm(at: number): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.at = at;
    this.timer = setTimeout(this.fire, Math.max(0, at - performance.now()));
    this.timer.unref();
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    this.at = Infinity;
    const now = performance.now();
    let next = Infinity;
    for (const call of this.calls) {
      if (call.deadline <= now) {
        this.calls.delete(call);
        call.expire();
      } else if (call.deadline < next) next = call.deadline;
    }
    if (next !== Infinity) this.arm(next);
  };
}

export interface UnaryStreamsOptions {
  routes: UnaryRoute[];
  /** The largest request message taken (its length prefix, and after decompression). */
  maxReceiveBytes: number;
}

export class UnaryStreams {
  private readonly routes = new Map<string, UnaryRoute>();
  private readonly maxReceiveBytes: number;
  private readonly deadlines = new Deadlines();
  private served = 0;

  constructor(opts: UnaryStreamsOptions) {
    for (const r of opts.routes) this.routes.set(r.path, r);
    this.maxReceiveBytes = opts.maxReceiveBytes;
  }

  /** Streams this path took (tests check that unary calls do come this way). */
  get taken(): number {
    return this.served;
  }

  /** Serves the stream when it is a gRPC call of a known unary method; else false (grpc-js's). */
  readonly take = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders): boolean => {
    const path = headers[':path'];
    const route = path === undefined ? undefined : this.routes.get(path);
    if (route === undefined) return false;
    const type = headers['content-type'];
    if (type === undefined || !type.startsWith('application/grpc')) return false; // grpc-js answers 415
    this.served += 1;
    new UnaryStreamCall(route, stream, headers, this.maxReceiveBytes, this.deadlines).start();
    return true;
  };
}

class UnaryStreamCall implements CancellableCall {
  cancelled = false;
  private onCancel: (() => void) | undefined;
  /** Answered, refused or gone: nothing more is sent. */
  private ended = false;
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Bytes (prefix included) of the message being read, once its prefix is in. */
  private need = 0;
  private message: Buffer | undefined;
  /** performance.now() the call's deadline passes at (Infinity: none). */
  deadline = Infinity;

  constructor(
    private readonly route: UnaryRoute,
    private readonly stream: ServerHttp2Stream,
    private readonly headers: IncomingHttpHeaders,
    private readonly maxBytes: number,
    private readonly deadlines: Deadlines,
  ) {}

  start(): void {
    const s = this.stream;
    s.on('error', ignore);
    s.once('close', this.onClose);
    s.on('data', this.onData);
    s.once('end', this.onEnd);
    const timeout = first(this.headers['grpc-timeout']);
    if (timeout !== undefined) this.armDeadline(timeout);
  }

  once(_event: 'cancelled', listener: () => void): this {
    const prev = this.onCancel;
    this.onCancel = prev === undefined ? listener : () => (prev(), listener());
    return this;
  }

  private armDeadline(value: string): void {
    const m = TIMEOUT.exec(value);
    if (m === null) {
      // As grpc-js: refused once the call is set up, with INTERNAL.
      process.nextTick(() => this.refuse(Status.INTERNAL, `Invalid grpc-timeout value "${value}"`));
      return;
    }
    const ms = (Number(m[1]) * UNIT_MS[m[2]]) | 0;
    this.deadline = performance.now() + ms;
    this.deadlines.add(this);
  }

  /** The deadline passed (Deadlines calls it). */
  expire(): void {
    this.refuse(Status.DEADLINE_EXCEEDED, 'Deadline exceeded');
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.ended) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    for (;;) {
      if (this.need === 0) {
        if (this.buffered < PREFIX_BYTES) return;
        if (this.chunks[0].length < PREFIX_BYTES) this.chunks = [Buffer.concat(this.chunks, this.buffered)];
        const length = this.chunks[0].readUInt32BE(1);
        if (length > this.maxBytes) {
          this.refuse(Status.RESOURCE_EXHAUSTED, `Received message larger than max (${length} vs ${this.maxBytes})`);
          return;
        }
        this.need = PREFIX_BYTES + length;
      }
      if (this.buffered < this.need) return;
      // Joined once the whole message is in: a 16 MiB request comes in a thousand chunks.
      const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.buffered);
      const rest = all.subarray(this.need);
      const message = all.subarray(0, this.need);
      this.chunks = rest.length > 0 ? [rest] : [];
      this.buffered = rest.length;
      this.need = 0;
      if (this.message !== undefined) {
        this.refuse(Status.UNIMPLEMENTED, `Received a second request message for server streaming method ${this.route.path}`);
        return;
      }
      this.message = message;
    }
  };

  private readonly onEnd = (): void => {
    if (this.ended) return;
    const message = this.message;
    this.message = undefined;
    this.chunks = [];
    if (message === undefined) {
      this.refuse(Status.UNIMPLEMENTED, `Received no request message for server streaming method ${this.route.path}`);
      return;
    }
    const body = message.subarray(PREFIX_BYTES);
    const encoding = first(this.headers['grpc-encoding']) ?? 'identity';
    // grpc-js reads the flag as compressed only when it is exactly 1, and an "identity" one as it is.
    if (message[0] !== 1 || encoding === 'identity') this.serve(body);
    else this.decompress(body, encoding);
  };

  private decompress(body: Buffer, encoding: string): void {
    if (encoding !== 'gzip' && encoding !== 'deflate') {
      this.refuse(Status.UNIMPLEMENTED, `Received message compressed with unsupported encoding "${encoding}"`);
      return;
    }
    const inflate = encoding === 'gzip' ? zlib.gunzip : zlib.inflate;
    inflate(body, { maxOutputLength: this.maxBytes }, (err, out) => {
      if (err === null) this.serve(out);
      else if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
        this.refuse(Status.RESOURCE_EXHAUSTED, `Received message that decompresses to a size larger than ${this.maxBytes}`);
      } else this.refuse(Status.INTERNAL, 'Failed to decompress message');
    });
  }

  private serve(body: Buffer): void {
    if (this.ended) return;
    const request = this.route.decode(body);
    const parent = propagation.extract(context.active(), this.headers, HEADERS_GETTER);
    this.route.serve(request, parent, this, this.onDone);
  }

  private readonly onDone: UnaryDone = (st, answer) => {
    if (this.ended || this.stream.destroyed || this.stream.closed) return;
    if (st !== null) {
      this.refuse(st.code, st.details);
      return;
    }
    let framed: Buffer;
    try {
      framed = this.route.encodeFramed(answer);
    } catch {
      this.refuse(Status.INTERNAL, 'Error serializing response');
      return;
    }
    this.end();
    const s = this.stream;
    s.respond(ANSWER_HEADERS, WAIT_FOR_TRAILERS);
    s.once('wantTrailers', sendOkTrailers);
    s.end(framed);
  };

  /** Answers with a status and no message (a trailers-only response). */
  private refuse(code: Status, details: string): void {
    if (this.ended) return;
    this.end();
    const s = this.stream;
    if (s.destroyed || s.closed) return;
    s.respond({ 'grpc-status': code, 'grpc-message': encodeMessage(details), ':status': 200, 'content-type': 'application/grpc+proto' }, END_STREAM);
  }

  /**
   * Nothing more will be sent. Like grpc-js, the call counts as cancelled from now on
   * (the decorator ignores that once it recorded the outcome; before, it aborts the
   * handler's signal: a deadline that passed, a client that went away).
   */
  private end(): void {
    this.ended = true;
    this.chunks = [];
    if (this.deadline !== Infinity) this.deadlines.delete(this);
    if (!this.cancelled) {
      this.cancelled = true;
      this.onCancel?.();
    }
  }

  private readonly onClose = (): void => {
    if (!this.ended) this.end();
  };
}
