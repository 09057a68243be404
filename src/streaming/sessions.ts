// The sessions behind an upgraded streaming connection: SPDY/3.1 or WebSocket, speaking
// remotecommand (exec, attach) or portforward. Loaded by the streaming server on the
// first upgrade (src/streaming/server.ts): a node that never streams keeps none of this
// code (ws, the SPDY framing, the protocols) in its heap.
import type http from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import type { StreamingBackend } from './backend.js';
import { PORTFORWARD_PROTOCOL_V1, serveSpdyPortForward } from './portforward-spdy.js';
import { serveWsPortForward } from './portforward-ws.js';
import { REMOTECOMMAND_SPDY_PROTOCOLS, serveSpdyRemoteCommand } from './remotecommand-spdy.js';
import { serveWsRemoteCommand } from './remotecommand-ws.js';
import { SpdySession } from './spdy/session.js';
import type { BoundRequest } from './tokens.js';
import { headerList, rejectUpgrade } from './upgrade-reply.js';
import { negotiateWsProtocol, type ChannelProtocol } from './ws-channels.js';

const PROTOCOL_HEADER = 'x-stream-protocol-version';

export interface SessionOptions {
  backend: StreamingBackend;
  log: Logger;
  /** How long a client may take to open its SPDY streams (kubelet: 30 s). */
  streamCreationTimeoutMs?: number;
}

/** Runs a session (until it ends) on a connection whose request was already checked. */
export type TrackSession = (socket: Duplex, served: Promise<void>) => void;

export class StreamingSessions {
  private readonly wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });

  constructor(private readonly opts: SessionOptions) {}

  /** Negotiates the protocol on a `spdy/3.1` or `websocket` upgrade and serves the session. */
  upgrade(kind: 'spdy' | 'websocket', req: http.IncomingMessage, socket: Duplex, head: Buffer, bound: BoundRequest, track: TrackSession): void {
    if (kind === 'spdy') this.upgradeSpdy(req, socket as Socket, head, bound, track);
    else this.upgradeWebSocket(req, socket, head, bound, track);
  }

  /** Ends every WebSocket session at once (their processes are killed/detached). */
  terminate(): void {
    for (const c of this.wss.clients) c.terminate();
  }

  private upgradeSpdy(req: http.IncomingMessage, socket: Socket, head: Buffer, bound: BoundRequest, track: TrackSession): void {
    const offered = headerList(req.headers[PROTOCOL_HEADER]);
    const supported = bound.kind === 'portforward' ? [PORTFORWARD_PROTOCOL_V1] : REMOTECOMMAND_SPDY_PROTOCOLS;
    // httpstream.Handshake: no offer at all is a pre-1.0 client, served the oldest way.
    const protocol = offered.length === 0 ? '' : offered.find((p) => supported.includes(p));
    if (protocol === undefined) {
      const msg = `unable to upgrade: unable to negotiate protocol: client supports [${offered.join(' ')}], server accepts [${supported.join(' ')}]`;
      rejectUpgrade(
        socket,
        403,
        msg,
        supported.map((p) => `X-Accepted-Stream-Protocol-Versions: ${p}`),
      );
      return;
    }
    socket.setNoDelay(true);
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n' +
        (protocol ? `X-Stream-Protocol-Version: ${protocol}\r\n` : '') +
        '\r\n',
    );
    const log = this.sessionLog(bound, 'spdy', protocol);
    const session = new SpdySession({ socket, isServer: true, head, log });
    const served =
      bound.kind === 'portforward'
        ? serveSpdyPortForward({ session, request: bound.request, backend: this.opts.backend, log })
        : serveSpdyRemoteCommand({
            session,
            protocol,
            command: bound,
            backend: this.opts.backend,
            log,
            ...(this.opts.streamCreationTimeoutMs !== undefined ? { streamCreationTimeoutMs: this.opts.streamCreationTimeoutMs } : {}),
          });
    track(socket, served);
  }

  private upgradeWebSocket(req: http.IncomingMessage, socket: Duplex, head: Buffer, bound: BoundRequest, track: TrackSession): void {
    const offered = headerList(req.headers['sec-websocket-protocol']);
    const protocol = negotiateWsProtocol(offered);
    if (!protocol) {
      rejectUpgrade(socket, 400, `requested protocol(s) are not supported: [${offered.join(' ')}]`);
      return;
    }
    if (bound.kind === 'portforward' && bound.request.ports.length === 0) {
      rejectUpgrade(socket, 400, 'port forward over websocket needs the ports in the PortForward request');
      return;
    }
    this.wss.options.handleProtocols = () => protocol.name || false;
    this.wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      const log = this.sessionLog(bound, 'websocket', protocol.name);
      const served = this.serveWs(ws, protocol, bound, log);
      track(socket, served);
    });
  }

  private serveWs(ws: WebSocket, protocol: ChannelProtocol, bound: BoundRequest, log: Logger): Promise<void> {
    const backend = this.opts.backend;
    if (bound.kind === 'portforward') return serveWsPortForward({ ws, protocol, request: bound.request, backend, log });
    return serveWsRemoteCommand({ ws, protocol, command: bound, backend, log });
  }

  private sessionLog(bound: BoundRequest, transport: string, protocol: string): Logger {
    const ids = bound.kind === 'portforward' ? { podSandboxId: bound.request.podSandboxId } : { containerId: bound.request.containerId };
    return this.opts.log.child({ streaming: bound.kind, transport, protocol, ...ids });
  }
}
