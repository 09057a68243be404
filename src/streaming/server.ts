// sandlot's streaming server: the HTTP endpoint behind the URLs that Exec, Attach and
// PortForward return (S18). Each URL carries a single-use token bound to its request;
// the client upgrades the connection to SPDY/3.1 or WebSocket and speaks kubelet's
// remotecommand or portforward protocol on it.
//
//   /exec/<token>        remotecommand: SPDY v1–v4, WebSocket channel/base64/v4/v5
//   /attach/<token>      same protocols
//   /portforward/<token> portforward.k8s.io over SPDY, or WebSocket channels
//
// A token that is unknown, used or expired gets 404 before anything runs. The session
// code (src/streaming/sessions.ts: ws, SPDY, the protocols) is imported on the first
// upgrade: a node that never streams does not keep it in its heap.
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { StreamingTlsMaterial } from '../config/streaming-tls.js';
import { InvalidArgumentError } from '../errors.js';
import type { StreamingBackend } from './backend.js';
import {
  validateAttachRequest,
  validateExecRequest,
  validatePortForwardRequest,
  type AttachRequest,
  type ExecRequest,
  type PortForwardRequest,
} from './requests.js';
import type { StreamingSessions } from './sessions.js';
import { TokenStore, type BoundRequest } from './tokens.js';
import { rejectUpgrade } from './upgrade-reply.js';

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
  private readonly upgraded = new Set<Duplex>();
  private readonly running = new Set<Promise<void>>();
  /** The session code once the first upgrade imported it. */
  private sessions: StreamingSessions | undefined;
  private sessionsLoading: Promise<StreamingSessions> | undefined;
  private closing = false;
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
    this.closing = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.upgraded) s.destroy();
    this.sessions?.terminate();
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
    } else if (upgrade === 'websocket' || upgrade === 'spdy/3.1') {
      const kind = upgrade === 'websocket' ? 'websocket' : 'spdy';
      this.withSessions(socket, (sessions) => sessions.upgrade(kind, req, socket, head, bound, (sock, served) => this.track(sock, served)));
    } else {
      rejectUpgrade(socket, 400, UPGRADE_MISSING);
    }
  }

  /**
   * Runs `serve` with the session code, importing it on the first upgrade. Until then the
   * connection's bytes wait in its socket (an upgraded socket is not flowing); a socket
   * that closed meanwhile, or a server that is closing, ends it instead.
   */
  private withSessions(socket: Duplex, serve: (sessions: StreamingSessions) => void): void {
    if (this.sessions) {
      serve(this.sessions);
      return;
    }
    this.sessionsLoading ??= import('./sessions.js').then(({ StreamingSessions }) => {
      const { backend, log, streamCreationTimeoutMs } = this.opts;
      this.sessions = new StreamingSessions({ backend, log, ...(streamCreationTimeoutMs !== undefined ? { streamCreationTimeoutMs } : {}) });
      return this.sessions;
    });
    this.sessionsLoading.then(
      (sessions) => {
        if (this.closing || socket.destroyed) socket.destroy();
        else serve(sessions);
      },
      (err: unknown) => {
        this.sessionsLoading = undefined; // the next upgrade tries again
        this.opts.log.error({ err }, 'loading the streaming session code');
        rejectUpgrade(socket, 500, 'loading the streaming session code failed');
      },
    );
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
