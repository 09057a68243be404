// sandlot's streaming server: the HTTP endpoint behind the URLs that Exec, Attach and
// PortForward return (S18). Each URL carries a single-use token bound to its request;
// the client upgrades the connection to SPDY/3.1 or WebSocket and speaks kubelet's
// remotecommand or portforward protocol on it.
//
//   /exec/<token>        remotecommand: SPDY v1–v4, WebSocket channel/base64/v4/v5
//   /attach/<token>      same protocols
//   /portforward/<token> portforward.k8s.io over SPDY, or WebSocket channels
//
// A token that is unknown, used or expired gets 404 before anything runs.
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import type { StreamingTlsMaterial } from '../config/streaming-tls.js';
import { InvalidArgumentError } from '../errors.js';
import type { StreamingBackend } from './backend.js';
import { PORTFORWARD_PROTOCOL_V1, serveSpdyPortForward } from './portforward-spdy.js';
import { serveWsPortForward } from './portforward-ws.js';
import { REMOTECOMMAND_SPDY_PROTOCOLS, serveSpdyRemoteCommand } from './remotecommand-spdy.js';
import { serveWsRemoteCommand } from './remotecommand-ws.js';
import {
  validateAttachRequest,
  validateExecRequest,
  validatePortForwardRequest,
  type AttachRequest,
  type ExecRequest,
  type PortForwardRequest,
} from './requests.js';
import { SpdySession } from './spdy/session.js';
import { TokenStore, type BoundRequest } from './tokens.js';
import { negotiateWsProtocol, type ChannelProtocol } from './ws-channels.js';

export interface StreamingServerOptions {
  /** host:port; port 0 picks a free one (config key streaming_address). */
  address: string;
  backend: StreamingBackend;
  log: Logger;
  /** Token lifetime; 1 minute unless a test shortens it. */
  tokenTtlMs?: number;
  /** Clock for token expiry (tests). */
  now?: () => number;
  /** How long a client may take to open its SPDY streams (kubelet: 30 s). */
  streamCreationTimeoutMs?: number;
  /** Serve HTTPS; with clientCa, a client without a certificate it signed fails the handshake. */
  tls?: StreamingTlsMaterial;
}

const PATH_RE = /^\/(exec|attach|portforward)\/([A-Za-z0-9_-]{1,128})\/?$/;
const UPGRADE_MISSING = 'unable to upgrade: missing upgrade headers in request';
const PROTOCOL_HEADER = 'x-stream-protocol-version';

/** Splits `host:port` / `[v6]:port` into listen arguments. */
export function parseListenAddress(address: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(address);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new InvalidArgumentError(`starting streaming server: address ${JSON.stringify(address)} is not host:port with a port 0-65535`);
  }
  return { host: m[1] ?? m[2], port };
}

export class StreamingServer {
  private readonly tokens: TokenStore;
  private readonly wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  private readonly upgraded = new Set<Duplex>();
  private readonly running = new Set<Promise<void>>();
  /** Base URL clients are sent to, e.g. http://127.0.0.1:40123 (https:// with TLS). */
  readonly baseUrl: string;

  private constructor(
    private readonly server: http.Server | https.Server,
    private readonly opts: StreamingServerOptions,
  ) {
    this.tokens = new TokenStore({
      ...(opts.tokenTtlMs !== undefined ? { ttlMs: opts.tokenTtlMs } : {}),
      ...(opts.now ? { now: opts.now } : {}),
    });
    const addr = server.address() as AddressInfo;
    const host = addr.family === 'IPv6' || addr.address.includes(':') ? `[${addr.address}]` : addr.address;
    this.baseUrl = `${opts.tls ? 'https' : 'http'}://${host}:${addr.port}`;
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => this.onRequest(req, res));
    server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));
    if (opts.tls?.clientCa) {
      server.on('tlsClientError', (err: Error) => opts.log.info({ err }, 'streaming client refused at the TLS handshake'));
    }
  }

  static async start(opts: StreamingServerOptions): Promise<StreamingServer> {
    const { host, port } = parseListenAddress(opts.address);
    const tls = opts.tls;
    let server: http.Server | https.Server;
    try {
      server = tls
        ? https.createServer({
            cert: tls.cert,
            key: tls.key,
            minVersion: 'TLSv1.2',
            ...(tls.clientCa ? { ca: tls.clientCa, requestCert: true, rejectUnauthorized: true } : {}),
          })
        : http.createServer();
    } catch (e) {
      // Unparsable PEM or a key that does not match the certificate.
      throw new InvalidArgumentError(
        `starting streaming server: the TLS files (streaming_tls_cert_file, streaming_tls_key_file, streaming_tls_client_ca_file) are not usable: ${(e as Error).message}`,
        { cause: e },
      );
    }
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    }).catch((e: unknown) => {
      throw new InvalidArgumentError(`starting streaming server on "${opts.address}": ${(e as Error).message}`, { cause: e });
    });
    const s = new StreamingServer(server, opts);
    opts.log.info({ url: s.baseUrl, tls: tls !== undefined, clientCertificates: tls?.clientCa !== undefined }, 'streaming server listening');
    return s;
  }

  getExecUrl(req: ExecRequest): string {
    return this.url({ kind: 'exec', request: validateExecRequest(req) });
  }

  getAttachUrl(req: AttachRequest): string {
    return this.url({ kind: 'attach', request: validateAttachRequest(req) });
  }

  getPortForwardUrl(req: PortForwardRequest): string {
    return this.url({ kind: 'portforward', request: validatePortForwardRequest(req) });
  }

  /** Stops listening and ends every session (their processes are killed/detached). */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.upgraded) s.destroy();
    for (const c of this.wss.clients) c.terminate();
    this.server.closeAllConnections();
    await Promise.allSettled([...this.running]);
    await closed;
  }

  /** Sessions in progress (for tests and metrics). */
  get activeSessions(): number {
    return this.running.size;
  }

  private url(bound: BoundRequest): string {
    return `${this.baseUrl}/${bound.kind}/${this.tokens.issue(bound)}`;
  }

  private consume(url: string | undefined): BoundRequest | undefined {
    const m = PATH_RE.exec(new URL(url ?? '/', 'http://x').pathname);
    if (!m) return undefined;
    const bound = this.tokens.consume(m[2]);
    // A token only opens the door it was issued for.
    return bound && bound.kind === m[1] ? bound : undefined;
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (req.method !== 'GET' && req.method !== 'POST') {
      res.writeHead(405, { 'content-type': 'text/plain', allow: 'GET, POST' }).end('method not allowed\n');
      return;
    }
    if (!this.consume(req.url)) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    res.writeHead(400, { 'content-type': 'text/plain' }).end(`${UPGRADE_MISSING}\n`);
  }

  private onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', (err) => this.opts.log.debug({ err }, 'streaming connection error'));
    const bound = this.consume(req.url);
    if (!bound) {
      rejectUpgrade(socket, 404, 'not found');
      return;
    }
    const upgrade = String(req.headers.upgrade ?? '').toLowerCase();
    const connection = String(req.headers.connection ?? '').toLowerCase();
    if (!connection.split(',').some((t) => t.trim() === 'upgrade')) {
      rejectUpgrade(socket, 400, UPGRADE_MISSING);
    } else if (upgrade === 'websocket') {
      this.upgradeWebSocket(req, socket, head, bound);
    } else if (upgrade === 'spdy/3.1') {
      this.upgradeSpdy(req, socket as Socket, head, bound);
    } else {
      rejectUpgrade(socket, 400, UPGRADE_MISSING);
    }
  }

  private upgradeSpdy(req: http.IncomingMessage, socket: Socket, head: Buffer, bound: BoundRequest): void {
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
    this.track(socket, served);
  }

  private upgradeWebSocket(req: http.IncomingMessage, socket: Duplex, head: Buffer, bound: BoundRequest): void {
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
      this.track(socket, served);
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

  private track(socket: Duplex, served: Promise<void>): void {
    this.upgraded.add(socket);
    const p = served
      .catch((err: unknown) => this.opts.log.warn({ err }, 'streaming session failed'))
      .finally(() => {
        this.upgraded.delete(socket);
        this.running.delete(p);
      });
    this.running.add(p);
  }
}

function headerList(v: string | string[] | undefined): string[] {
  const values = Array.isArray(v) ? v : v === undefined ? [] : [v];
  return values
    .flatMap((s) => s.split(','))
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function rejectUpgrade(socket: Duplex, status: number, message: string, extraHeaders: string[] = []): void {
  const body = `${message}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}\r\n` +
      'Connection: close\r\nContent-Type: text/plain; charset=utf-8\r\n' +
      extraHeaders.map((h) => `${h}\r\n`).join('') +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}
