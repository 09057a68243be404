// The client side of the k8s channel protocols over WebSocket (apimachinery wsstream,
// client-go's websocket executor): every binary message starts with its channel byte.
// remotecommand: 0 stdin, 1 stdout, 2 stderr, 3 error (the exit Status as JSON), 4 resize
// ({"Width":w,"Height":h}); v5 adds 255, the close signal ([255, 0] = stdin EOF).
// portforward: port i has channels 2i (data) and 2i+1 (error); the server opens each
// by sending the port as 2 bytes little endian.
import type { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { WebSocket } from 'ws';
import { DetachScanner } from './detach-keys.js';

export const STDIN_CHANNEL = 0;
export const STDOUT_CHANNEL = 1;
export const STDERR_CHANNEL = 2;
export const ERROR_CHANNEL = 3;
export const RESIZE_CHANNEL = 4;
export const CLOSE_SIGNAL_CHANNEL = 255;

/** Offered in this order: v5 can say "stdin is over", v4 cannot. */
export const CLIENT_WS_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io'];
const V5 = 'v5.channel.k8s.io';

export function frame(channel: number, data: Buffer | string): Buffer {
  const body = typeof data === 'string' ? Buffer.from(data) : data;
  const out = Buffer.allocUnsafe(body.length + 1);
  out[0] = channel;
  body.copy(out, 1);
  return out;
}

export function unframe(message: Buffer): { channel: number; data: Buffer } | undefined {
  if (message.length === 0) return undefined;
  return { channel: message[0], data: message.subarray(1) };
}

export function closeSignalFrame(channel: number): Buffer {
  return Buffer.from([CLOSE_SIGNAL_CHANNEL, channel]);
}

export function resizeFrame(width: number, height: number): Buffer {
  return frame(RESIZE_CHANNEL, JSON.stringify({ Width: width, Height: height }));
}

export interface RemoteExit {
  exitCode: number;
  /** The person typed the detach keys: the session ended, the process goes on. */
  detached?: boolean;
  /** Set when the session failed for another reason than the command's exit code. */
  message?: string;
}

/** Exit code of a v4/v5 error-channel Status (client-go: NonZeroExitCode → ExitError). */
export function exitFromStatus(text: string): RemoteExit {
  let st: { status?: string; message?: string; reason?: string; details?: { causes?: { reason?: string; message?: string }[] } };
  try {
    st = JSON.parse(text) as typeof st;
  } catch {
    return { exitCode: 1, message: `unreadable exit status ${JSON.stringify(text.slice(0, 200))}` };
  }
  if (st.status === 'Success') return { exitCode: 0 };
  if (st.reason === 'NonZeroExitCode') {
    const cause = st.details?.causes?.find((c) => c.reason === 'ExitCode');
    const code = Number(cause?.message);
    if (Number.isInteger(code)) return { exitCode: code };
  }
  return { exitCode: 1, message: st.message ?? 'the remote command failed' };
}

/** The streaming server hands out http:// URLs; WebSocket wants ws://. */
export function toWsUrl(url: string): string {
  return url.replace(/^http(s?):\/\//, 'ws$1://');
}

function toBuffer(raw: Buffer | ArrayBuffer | Buffer[]): Buffer {
  if (Buffer.isBuffer(raw)) return raw;
  if (Array.isArray(raw)) return Buffer.concat(raw);
  return Buffer.from(raw);
}

export interface TerminalSize {
  width: number;
  height: number;
}

export interface RemoteCommandIo {
  stdin?: Readable;
  stdout?: Writable;
  stderr?: Writable;
  /** The initial terminal size, and later ones through `onResize`. */
  size?: TerminalSize;
  onResize?: (send: (size: TerminalSize) => void) => () => void;
  /** Bytes on stdin that end the session without ending the process (attach's Ctrl-P Ctrl-Q). */
  detachKeys?: Buffer;
}

/** Opens a remotecommand session; resolves with the remote exit once the server closes. */
export function runRemoteCommand(url: string, io: RemoteCommandIo): Promise<RemoteExit> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(toWsUrl(url), CLIENT_WS_PROTOCOLS);
    let status: string | undefined;
    let detached = false;
    const scanner = io.detachKeys && io.detachKeys.length > 0 ? new DetachScanner(io.detachKeys) : undefined;
    let stopResize: (() => void) | undefined;
    const send = (b: Buffer): void => {
      if (ws.readyState === WebSocket.OPEN) ws.send(b);
    };
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => reject(new Error(`opening the stream: HTTP ${res.statusCode}: ${body.trim()}`)));
    });
    ws.on('open', () => {
      if (io.size) send(resizeFrame(io.size.width, io.size.height));
      stopResize = io.onResize?.((s) => send(resizeFrame(s.width, s.height)));
      const stdin = io.stdin;
      if (stdin) {
        stdin.on('data', (d: Buffer | string) => {
          if (detached) return;
          const chunk = typeof d === 'string' ? Buffer.from(d) : d;
          const { pass, detach } = scanner ? scanner.push(chunk) : { pass: chunk, detach: false };
          if (pass.length > 0) send(frame(STDIN_CHANNEL, pass));
          if (detach) {
            // Not a stdin EOF: the process keeps its stdin for the next attach.
            detached = true;
            ws.close(1000);
          }
        });
        stdin.on('end', () => {
          if (detached) return;
          const rest = scanner?.flush();
          if (rest && rest.length > 0) send(frame(STDIN_CHANNEL, rest));
          if (ws.protocol === V5) send(closeSignalFrame(STDIN_CHANNEL));
        });
      }
    });
    ws.on('message', (raw: Buffer | ArrayBuffer | Buffer[]) => {
      const msg = unframe(toBuffer(raw));
      if (!msg) return;
      if (msg.channel === STDOUT_CHANNEL) io.stdout?.write(msg.data);
      else if (msg.channel === STDERR_CHANNEL) io.stderr?.write(msg.data);
      else if (msg.channel === ERROR_CHANNEL) status = (status ?? '') + msg.data.toString('utf8');
    });
    ws.on('error', (err) => reject(new Error(`streaming: ${err.message}`, { cause: err })));
    ws.on('close', () => {
      stopResize?.();
      io.stdin?.pause();
      if (detached) resolve({ exitCode: 0, detached: true });
      else if (status !== undefined) resolve(exitFromStatus(status));
      else reject(new Error('streaming: the connection closed without an exit status'));
    });
  });
}

/** What one port-forward message means, once the server's port headers are skipped. */
export type PortForwardEvent = { kind: 'data'; data: Buffer } | { kind: 'error'; message: string } | { kind: 'header'; port: number } | { kind: 'ignored' };

/** Port-forward messages of one port (index 0): the first message per channel is its port header. */
export class PortForwardDemux {
  private readonly seen = new Set<number>();

  accept(message: Buffer): PortForwardEvent {
    const msg = unframe(message);
    if (!msg || msg.channel > 1) return { kind: 'ignored' };
    if (!this.seen.has(msg.channel)) {
      this.seen.add(msg.channel);
      if (msg.data.length >= 2) return { kind: 'header', port: msg.data.readUInt16LE(0) };
      return { kind: 'ignored' };
    }
    if (msg.channel === 0) return { kind: 'data', data: msg.data };
    return { kind: 'error', message: msg.data.toString('utf8') };
  }
}

/**
 * Carries one local TCP connection over a port-forward WebSocket (one port in the
 * request). Resolves when both sides are done; errors the server reports go to `onError`.
 */
export function forwardConnection(url: string, conn: Socket, onError: (message: string) => void): Promise<void> {
  return new Promise((resolve) => {
    const ws = new WebSocket(toWsUrl(url), CLIENT_WS_PROTOCOLS);
    const demux = new PortForwardDemux();
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => {
        onError(`opening the stream: HTTP ${res.statusCode}: ${body.trim()}`);
        conn.destroy();
        resolve();
      });
    });
    conn.pause();
    ws.on('open', () => {
      conn.on('data', (d: Buffer) => {
        if (ws.readyState === WebSocket.OPEN) ws.send(frame(0, d));
      });
      conn.on('end', () => {
        // Half-close travels only on v5; on v4 the server sees the end when we close.
        if (ws.protocol === V5 && ws.readyState === WebSocket.OPEN) ws.send(closeSignalFrame(0));
        else ws.close(1000);
      });
      conn.resume();
    });
    ws.on('message', (raw: Buffer | ArrayBuffer | Buffer[]) => {
      const ev = demux.accept(toBuffer(raw));
      if (ev.kind === 'data') {
        if (!conn.write(ev.data)) {
          ws.pause();
          conn.once('drain', () => ws.resume());
        }
      } else if (ev.kind === 'error' && ev.message !== '') {
        onError(ev.message);
      }
    });
    conn.on('error', () => ws.close(1000));
    conn.on('close', () => {
      if (ws.readyState === WebSocket.OPEN) ws.close(1000);
    });
    ws.on('error', (err) => {
      onError(`streaming: ${err.message}`);
      conn.destroy();
      resolve();
    });
    ws.on('close', () => {
      conn.end();
      resolve();
    });
  });
}
