// A client for the OCI distribution API v2 (pull side): manifests and blobs, over
// HTTPS or, for insecure registries (loopback hosts always, as in containerd, plus
// config `insecure_registries`), plain HTTP. Mirrors from `registry_mirrors` are
// tried first, then the upstream host. Auth: anonymous, Basic, and the Bearer token
// flow (401 challenge → token endpoint with scope), cached per endpoint, scope and
// credentials. Requests go through node:http(s) (http-request.ts), shared with the
// layer workers' blob GETs.
import type http from 'node:http';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import {
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  SandlotError,
  UnauthenticatedError,
  UnavailableError,
  errnoCode,
  errorMessage,
} from '../errors.js';
import { failingAsUnavailable, type HttpBlobLocation } from './blob-http.js';
import { checkDigest } from './digest.js';
import { bodyDeadline, errorDetail, httpRequest, readBody, statusText, watchIdle, type HttpRequestOptions } from './http-request.js';
import { MANIFEST_ACCEPT, MANIFEST_SIZE_MAX_BYTES } from './manifest.js';
import { basicAuthHeader, credentialIdentity, parseWwwAuthenticate, type RegistryCredentials } from './registry-auth.js';
import { formatReference, registryHost, repoName, type ImageReference } from './reference.js';

export const REQUEST_TIMEOUT_MS = 30_000;
export const BLOB_IDLE_TIMEOUT_MS = 60_000;
export const RETRY_ATTEMPTS = 4;
export const RETRY_BASE_DELAY_MS = 200;
const TOKEN_DEFAULT_TTL_S = 60;
/** A token endpoint's answer is a small JSON document. */
const TOKEN_BODY_MAX_BYTES = 1024 * 1024;
const TRANSIENT_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN']);

export interface RegistryClientOptions {
  registryMirrors: Record<string, string[]>;
  insecureRegistries: string[];
  log: Logger;
  requestTimeoutMs?: number;
  blobIdleTimeoutMs?: number;
  retryAttempts?: number;
  retryBaseDelayMs?: number;
}

export interface FetchedManifest {
  bytes: Buffer;
  contentType: string;
  /** Docker-Content-Digest as the registry sent it, if it did. */
  headerDigest: string | undefined;
}

interface Endpoint {
  /** `https://host:port` (no trailing slash, no /v2). */
  base: string;
  /** Name used in messages: the host[:port]. */
  host: string;
  mirror: boolean;
}

interface CachedToken {
  header: string;
  expiresAt: number;
}

/** A registry answered with a status we do not retry; carries the HTTP status. */
class HttpStatusError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

export class RegistryClient {
  private readonly tokens = new Map<string, CachedToken>();
  /** Per registry domain, the endpoint base that last answered (where a layer worker fetches blobs). */
  private readonly lastEndpoint = new Map<string, string>();
  private readonly requestTimeoutMs: number;
  private readonly blobIdleTimeoutMs: number;
  private readonly retryAttempts: number;
  private readonly retryBaseDelayMs: number;

  constructor(private readonly opts: RegistryClientOptions) {
    this.requestTimeoutMs = opts.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
    this.blobIdleTimeoutMs = opts.blobIdleTimeoutMs ?? BLOB_IDLE_TIMEOUT_MS;
    this.retryAttempts = opts.retryAttempts ?? RETRY_ATTEMPTS;
    this.retryBaseDelayMs = opts.retryBaseDelayMs ?? RETRY_BASE_DELAY_MS;
  }

  isInsecure(domain: string): boolean {
    if (isLoopbackHost(domain)) return true;
    const bare = domain.replace(/:\d+$/, '');
    return this.opts.insecureRegistries.some((r) => r === domain || r === bare);
  }

  endpoints(domain: string): Endpoint[] {
    const out: Endpoint[] = [];
    for (const m of this.opts.registryMirrors[domain] ?? []) {
      const base = (/^https?:\/\//.test(m) ? m : `${this.isInsecure(m) ? 'http' : 'https'}://${m}`).replace(/\/+$/, '');
      out.push({ base, host: new URL(base).host, mirror: true });
    }
    const host = registryHost(domain);
    out.push({ base: `${this.isInsecure(domain) ? 'http' : 'https'}://${host}`, host: domain, mirror: false });
    return out;
  }

  /** GETs the manifest `tagOrDigest` of `ref`'s repository (index or image manifest). */
  async getManifest(ref: ImageReference, tagOrDigest: string, creds: RegistryCredentials | undefined, signal?: AbortSignal): Promise<FetchedManifest> {
    const what = `fetching manifest "${repoName(ref)}${tagOrDigest.includes(':') ? '@' : ':'}${tagOrDigest}"`;
    // A digest names a URL path: check it (tags were checked by parseReference).
    if (tagOrDigest.includes(':')) checkDigest(tagOrDigest, what);
    else if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(tagOrDigest)) throw new InvalidArgumentError(`${what}: invalid tag`);
    return this.withEndpoints(ref, what, async (ep) => {
      const res = await this.request(ep, ref, `/manifests/${tagOrDigest}`, MANIFEST_ACCEPT, creds, signal);
      const bytes = await readBody(res, MANIFEST_SIZE_MAX_BYTES, 'manifest');
      return {
        bytes,
        contentType: res.headers['content-type'] ?? '',
        headerDigest: header(res, 'docker-content-digest'),
      };
    });
  }

  /**
   * Opens a blob as a stream. The stream errors if no data arrives for the idle
   * timeout; the caller verifies digest and size while consuming it.
   */
  async openBlob(ref: ImageReference, digest: string, creds: RegistryCredentials | undefined, signal?: AbortSignal): Promise<Readable> {
    const what = `fetching blob ${digest} of "${repoName(ref)}"`;
    checkDigest(digest, what);
    return this.withEndpoints(ref, what, async (ep) => {
      // The request timeout covers the wait for headers only: a large layer may take
      // longer than it to arrive, and the idle timer watches the body instead.
      const res = await this.request(ep, ref, `/blobs/${digest}`, '*/*', creds, signal, true);
      watchIdle(res, this.blobIdleTimeoutMs, () => new UnavailableError(`${what}: no data for ${this.blobIdleTimeoutMs} ms`));
      // A cut-off body is the registry going away (UNAVAILABLE, retried), as on a layer worker (layer-job.ts).
      return failingAsUnavailable(res, `${what} from registry "${ref.domain}"`);
    });
  }

  /**
   * Where a layer worker may GET the blob (blob-http.ts), without a request: the
   * endpoint that last answered for this registry (the manifest's), with the
   * authorization cached for it (earned fetching the manifest). A worker that gets a
   * status other than 2xx (an expired token, a mirror without the blob, a 5xx) hands
   * the layer back to openBlob, which has the auth, mirror and retry logic.
   */
  blobLocation(ref: ImageReference, digest: string, creds: RegistryCredentials | undefined): HttpBlobLocation {
    const what = `fetching blob ${digest} of "${repoName(ref)}"`;
    checkDigest(digest, what);
    const base = this.lastEndpoint.get(ref.domain) ?? this.endpoints(ref.domain)[0].base;
    const auth = creds?.registryToken ? `Bearer ${creds.registryToken}` : this.cachedToken(`${base}|repository:${ref.path}:pull|${credentialIdentity(creds)}`);
    return {
      kind: 'http',
      url: `${base}/v2/${ref.path}/blobs/${digest}`,
      headers: { accept: '*/*', ...(auth ? { authorization: auth } : {}) },
      requestTimeoutMs: this.requestTimeoutMs,
      idleTimeoutMs: this.blobIdleTimeoutMs,
      what: `${what} from registry "${ref.domain}"`,
    };
  }

  private async withEndpoints<T>(ref: ImageReference, what: string, fn: (ep: Endpoint) => Promise<T>): Promise<T> {
    const eps = this.endpoints(ref.domain);
    let lastErr: unknown;
    for (const ep of eps) {
      try {
        const out = await this.retrying(() => fn(ep));
        this.lastEndpoint.set(ref.domain, ep.base);
        return out;
      } catch (e) {
        lastErr = e;
        if (ep.mirror) {
          this.opts.log.debug({ err: e, mirror: ep.base, image: formatReference(ref) }, 'mirror failed; trying the next endpoint');
          continue;
        }
      }
    }
    throw this.describe(lastErr, ref, what);
  }

  private describe(e: unknown, ref: ImageReference, what: string): SandlotError {
    const refStr = formatReference(ref);
    const prefix = `${what} from registry "${ref.domain}"`;
    if (e instanceof HttpStatusError) {
      const msg = `${prefix}: ${e.message}`;
      if (e.status === 401) return new UnauthenticatedError(`${msg} (check the credentials for "${ref.domain}")`);
      if (e.status === 403) return new PermissionDeniedError(`${msg} (access to "${refStr}" denied)`);
      if (e.status === 404) return new NotFoundError(`${msg}: image "${refStr}" not found`);
      if (e.status >= 500 || e.status === 429) return new UnavailableError(msg);
      return new InternalError(msg);
    }
    if (e instanceof SandlotError) {
      const Ctor = e.constructor as new (m: string, o: { cause: unknown }) => SandlotError;
      return new Ctor(`${prefix}: ${e.message}`, { cause: e });
    }
    const code = networkCode(e);
    return new UnavailableError(`${prefix}: ${code ?? errorMessage(e)}`, { cause: e });
  }

  private async retrying<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (e) {
        if (attempt >= this.retryAttempts || !isTransient(e)) throw e;
        const delay = this.retryBaseDelayMs * 2 ** (attempt - 1) * (0.75 + Math.random() / 2);
        this.opts.log.debug({ err: e, attempt }, 'transient registry error; retrying');
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /** One HTTP GET with auth; throws HttpStatusError on a non-2xx final answer (whose body it consumes). */
  private async request(
    ep: Endpoint,
    ref: ImageReference,
    suffix: string,
    accept: string,
    creds: RegistryCredentials | undefined,
    signal?: AbortSignal,
    headersOnly = false,
  ): Promise<http.IncomingMessage> {
    const url = `${ep.base}/v2/${ref.path}${suffix}`;
    const scope = `repository:${ref.path}:pull`;
    // Cached per credentials too: a token or Basic header earned by one caller's
    // credentials is never sent on behalf of another (anonymous or wrong) caller.
    const cacheKey = `${ep.base}|${scope}|${credentialIdentity(creds)}`;
    let auth: string | undefined = creds?.registryToken ? `Bearer ${creds.registryToken}` : this.cachedToken(cacheKey);
    for (let round = 0; round < 2; round++) {
      const res = await this.send(url, { headers: { accept, ...(auth ? { authorization: auth } : {}) }, signal }, headersOnly);
      const status = res.statusCode ?? 0;
      if (status >= 200 && status < 300) return res;
      if (status === 401 && round === 0 && !creds?.registryToken) {
        const challenges = parseWwwAuthenticate(header(res, 'www-authenticate') ?? '');
        res.destroy();
        const bearer = challenges.find((c) => c.scheme === 'bearer');
        const basic = challenges.find((c) => c.scheme === 'basic');
        if (bearer) {
          const token = await this.fetchToken(bearer.params, scope, creds, signal);
          this.tokens.set(cacheKey, token);
          auth = token.header;
          continue;
        }
        const basicHeader = creds ? basicAuthHeader(creds) : undefined;
        if (basic && basicHeader) {
          auth = basicHeader;
          this.tokens.set(cacheKey, { header: basicHeader, expiresAt: Number.POSITIVE_INFINITY });
          continue;
        }
        throw new HttpStatusError(401, `401 unauthorized${creds ? '' : ' (no credentials given)'}`);
      }
      throw new HttpStatusError(status, `${statusText(res)}${await errorDetail(res)}`);
    }
    throw new HttpStatusError(401, '401 unauthorized: credentials rejected');
  }

  private cachedToken(key: string): string | undefined {
    const t = this.tokens.get(key);
    if (t && t.expiresAt > Date.now()) return t.header;
    if (t) this.tokens.delete(key);
    return undefined;
  }

  private async fetchToken(params: Record<string, string>, scope: string, creds: RegistryCredentials | undefined, signal?: AbortSignal): Promise<CachedToken> {
    const realm = params.realm;
    if (!realm || !/^https?:\/\//.test(realm)) throw new InternalError(`bearer challenge has no usable realm ${JSON.stringify(realm)}`);
    const service = params.service ?? '';
    const wantScope = params.scope ?? scope;
    let res: http.IncomingMessage;
    if (creds?.identityToken) {
      const form = new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: creds.identityToken,
        service,
        scope: wantScope,
        client_id: 'sandlot',
      });
      res = await this.send(realm, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString(), signal });
    } else {
      const u = new URL(realm);
      if (service) u.searchParams.set('service', service);
      u.searchParams.set('scope', wantScope);
      const basic = creds ? basicAuthHeader(creds) : undefined;
      res = await this.send(u, { headers: basic ? { authorization: basic } : {}, signal });
    }
    const status = res.statusCode ?? 0;
    if (status < 200 || status >= 300) {
      const line = statusText(res);
      const detail = await errorDetail(res);
      throw new HttpStatusError(
        status === 401 || status === 403 ? status : status >= 500 ? status : 401,
        `fetching token from "${new URL(realm).host}": ${line}${detail}`,
      );
    }
    const body = parseTokenAnswer(await readBody(res, TOKEN_BODY_MAX_BYTES, 'token answer'), new URL(realm).host);
    const token = body.token ?? body.access_token;
    if (!token) throw new InternalError(`token endpoint "${new URL(realm).host}" answered without a token`);
    const header = `Bearer ${token}`;
    const ttl = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : TOKEN_DEFAULT_TTL_S;
    // Renew a little early so a token never expires between check and use.
    return { header, expiresAt: Date.now() + Math.max(ttl - 5, 1) * 1000 };
  }

  /**
   * One request with the request timeout. With `headersOnly` the timer stops once the
   * headers arrive (blob bodies have their own idle timer); otherwise it also bounds
   * reading the body (manifests, tokens).
   */
  private async send(url: string | URL, init: Omit<HttpRequestOptions, 'timeoutMs'>, headersOnly = false): Promise<http.IncomingMessage> {
    const started = Date.now();
    const res = await httpRequest(url, { ...init, timeoutMs: this.requestTimeoutMs });
    if (!headersOnly) bodyDeadline(res, Math.max(this.requestTimeoutMs - (Date.now() - started), 1));
    return res;
  }
}

/** node:http's errno (ECONNREFUSED) or TLS (DEPTH_ZERO_SELF_SIGNED_CERT) code. */
function networkCode(e: unknown): string | undefined {
  return errnoCode(e);
}

function isTransient(e: unknown): boolean {
  if (e instanceof HttpStatusError) return e.status >= 500 || e.status === 429;
  if (e instanceof UnavailableError) return true;
  if (e instanceof SandlotError) return false;
  const code = networkCode(e);
  return code !== undefined && TRANSIENT_CODES.has(code);
}

/** A header's value (the first, if it came more than once). */
function header(res: http.IncomingMessage, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function parseTokenAnswer(bytes: Buffer, host: string): { token?: string; access_token?: string; expires_in?: number } {
  try {
    return JSON.parse(bytes.toString('utf8')) as { token?: string; access_token?: string; expires_in?: number };
  } catch (e) {
    throw new InternalError(`token endpoint "${host}" answered with what is not JSON: ${errorMessage(e)}`);
  }
}
