// The k8s channel framing over WebSocket (apimachinery wsstream): each message starts
// with its channel number — a byte for binary protocols, an ASCII digit followed by
// base64 for the base64 ones. v5 adds channel 255, the close signal: [255, n] means
// the client will send nothing more on channel n (stdin EOF).
import { Duplex, Writable } from 'node:stream';
import { WebSocket } from 'ws';

export const CLOSE_SIGNAL_CHANNEL = 255;

export interface ChannelProtocol {
  name: string;
  base64: boolean;
  /** Exit status as Status JSON (v4+) rather than a bare error message. */
  jsonStatus: boolean;
  closeSignal: boolean;
}

/** Subprotocols the server accepts; '' is a client that offered none (kubelet allows it). */
export const WS_CHANNEL_PROTOCOLS: ChannelProtocol[] = [
  { name: 'v5.channel.k8s.io', base64: false, jsonStatus: true, closeSignal: true },
  { name: 'v4.channel.k8s.io', base64: false, jsonStatus: true, closeSignal: false },
  { name: 'v4.base64.channel.k8s.io', base64: true, jsonStatus: true, closeSignal: false },
  { name: 'channel.k8s.io', base64: false, jsonStatus: false, closeSignal: false },
  { name: 'base64.channel.k8s.io', base64: true, jsonStatus: false, closeSignal: false },
  { name: '', base64: false, jsonStatus: false, closeSignal: false },
];

/** The first offered protocol we support, in the client's order (wsstream.handshake). */
export function negotiateWsProtocol(offered: string[]): ChannelProtocol | undefined {
  const list = offered.length === 0 ? [''] : offered;
  for (const p of list) {
    const found = WS_CHANNEL_PROTOCOLS.find((c) => c.name === p);
    if (found) return found;
  }
  return undefined;
}

export function encodeChannelMessage(protocol: ChannelProtocol, channel: number, data: Buffer): Buffer | string {
  if (protocol.base64) return String.fromCharCode(48 + channel) + data.toString('base64');
  const out = Buffer.allocUnsafe(data.length + 1);
  out[0] = channel;
  data.copy(out, 1);
  return out;
}

export function decodeChannelMessage(protocol: ChannelProtocol, message: Buffer): { channel: number; data: Buffer } | undefined {
  if (message.length === 0) return undefined;
  if (protocol.base64) {
    const channel = message[0] - 48;
    return { channel, data: Buffer.from(message.subarray(1).toString('latin1'), 'base64') };
  }
  return { channel: message[0], data: message.subarray(1) };
}

/** Sends a message and resolves once ws has handed it to the socket. */
export function sendChannel(ws: WebSocket, protocol: ChannelProtocol, channel: number, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    if (ws.readyState !== WebSocket.OPEN) {
      reject(new Error(`writing websocket channel ${channel}: connection is not open`));
      return;
    }
    ws.send(encodeChannelMessage(protocol, channel, data), { binary: !protocol.base64 }, (err) => (err ? reject(err) : resolve()));
  });
}

/** An output channel as a Writable; backpressure is one message in flight at a time. */
export function channelWriter(ws: WebSocket, protocol: ChannelProtocol, channel: number): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      sendChannel(ws, protocol, channel, chunk).then(() => cb(), cb);
    },
  });
}

/**
 * A bidirectional channel (port-forward data) as a Duplex: the caller pushes what
 * arrives with `deliver`, and we pause the WebSocket while the reader is full.
 */
export class ChannelDuplex extends Duplex {
  constructor(
    private readonly ws: WebSocket,
    private readonly protocol: ChannelProtocol,
    private readonly channel: number,
  ) {
    super({ allowHalfOpen: true });
  }

  deliver(data: Buffer): void {
    if (!this.push(data)) this.ws.pause();
  }

  override _read(): void {
    this.ws.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    sendChannel(this.ws, this.protocol, this.channel, chunk).then(() => cb(), cb);
  }
}
