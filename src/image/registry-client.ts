// A client for the OCI distribution API v2 (pull side): manifests and blobs, over
// HTTPS or, for insecure registries (loopback hosts always, as in containerd, plus
// config `insecure_registries`), plain HTTP. Mirrors from `registry_mirrors` are
// tried first, then the upstream host. Auth: anonymous, Basic, and the Bearer token
// flow (401 challenge → token endpoint with scope), cached per endpoint, scope and
// credentials.
import { Readable } from 'node:stream';
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
import type { HttpBlobLocation } from './blob-http.js';
import { checkDigest } from './digest.js';
import { MANIFEST_ACCEPT, MANIFEST_SIZE_MAX_BYTES } from './manifest.js';
import { basicAuthHeader, credentialIdentity, parseWwwAuthenticate, type RegistryCredentials } from './registry-auth.js';
import { formatReference, registryHost, repoName, type ImageReference } from './reference.js';

export const REQUEST_TIMEOUT_MS = 30_000;
export const BLOB_IDLE_TIMEOUT_MS = 60_000;
export const RETRY_ATTEMPTS = 4;
export const RETRY_BASE_DELAY_MS = 200;
const TOKEN_DEFAULT_TTL_S = 60;
const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
]);

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
      const len = Number(res.headers.get('content-length') ?? '0');
      if (len > MANIFEST_SIZE_MAX_BYTES) {
        await res.body?.cancel();
        throw new InternalError(`manifest is ${len} bytes, more than the ${MANIFEST_SIZE_MAX_BYTES} allowed`);
      }
      const bytes = Buffer.from(await res.arrayBuffer());
      if (bytes.length > MANIFEST_SIZE_MAX_BYTES) {
        throw new InternalError(`manifest is ${bytes.length} bytes, more than the ${MANIFEST_SIZE_MAX_BYTES} allowed`);
      }
      return {
        bytes,
        contentType: res.headers.get('content-type') ?? '',
        headerDigest: res.headers.get('docker-content-digest') ?? undefined,
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
      const ac = new AbortController();
      const onAbort = (): void => ac.abort(signal?.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      // The request timeout covers the wait for headers only: a large layer may take
      // longer than it to arrive, and the idle timer below watches the body instead.
      const res = await this.request(ep, ref, `/blobs/${digest}`, '*/*', creds, ac.signal, true);
      if (!res.body) throw new InternalError('registry sent no body');
      const body = Readable.fromWeb(res.body);
      let timer: NodeJS.Timeout | undefined;
      const arm = (): void => {
        clearTimeout(timer);
        timer = setTimeout(() => {
          body.destroy(new UnavailableError(`${what}: no data for ${this.blobIdleTimeoutMs} ms`));
          ac.abort();
        }, this.blobIdleTimeoutMs);
      };
      arm();
      body.on('data', arm);
      body.once('close', () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      });
      return body;
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

  /** One HTTP GET with auth; throws HttpStatusError on a non-2xx final answer. */
  private async request(
    ep: Endpoint,
    ref: ImageReference,
    suffix: string,
    accept: string,
    creds: RegistryCredentials | undefined,
    signal?: AbortSignal,
    headersOnly = false,
  ): Promise<Response> {
    const url = `${ep.base}/v2/${ref.path}${suffix}`;
    const scope = `repository:${ref.path}:pull`;
    // Cached per credentials too: a token or Basic header earned by one caller's
    // credentials is never sent on behalf of another (anonymous or wrong) caller.
    const cacheKey = `${ep.base}|${scope}|${credentialIdentity(creds)}`;
    let auth: string | undefined = creds?.registryToken ? `Bearer ${creds.registryToken}` : this.cachedToken(cacheKey);
    for (let round = 0; round < 2; round++) {
      const res = await this.fetchWithTimeout(url, { headers: { accept, ...(auth ? { authorization: auth } : {}) } }, signal, headersOnly);
      if (res.ok) return res;
      if (res.status === 401 && round === 0 && !creds?.registryToken) {
        const challenges = parseWwwAuthenticate(res.headers.get('www-authenticate') ?? '');
        await res.body?.cancel();
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
      throw new HttpStatusError(res.status, `${res.status} ${res.statusText.toLowerCase()}${await errorDetail(res)}`);
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
    let res: Response;
    if (creds?.identityToken) {
      const form = new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: creds.identityToken,
        service,
        scope: wantScope,
        client_id: 'sandlot',
      });
      res = await this.fetchWithTimeout(
        realm,
        { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() },
        signal,
      );
    } else {
      const u = new URL(realm);
      if (service) u.searchParams.set('service', service);
      u.searchParams.set('scope', wantScope);
      const basic = creds ? basicAuthHeader(creds) : undefined;
      res = await this.fetchWithTimeout(u.toString(), { headers: basic ? { authorization: basic } : {} }, signal);
    }
    if (!res.ok) {
      const detail = await errorDetail(res);
      throw new HttpStatusError(
        res.status === 401 || res.status === 403 ? res.status : res.status >= 500 ? res.status : 401,
        `fetching token from "${new URL(realm).host}": ${res.status} ${res.statusText.toLowerCase()}${detail}`,
      );
    }
    const body = (await res.json()) as { token?: string; access_token?: string; expires_in?: number };
    const token = body.token ?? body.access_token;
    if (!token) throw new InternalError(`token endpoint "${new URL(realm).host}" answered without a token`);
    const header = `Bearer ${token}`;
    const ttl = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : TOKEN_DEFAULT_TTL_S;
    // Renew a little early so a token never expires between check and use.
    return { header, expiresAt: Date.now() + Math.max(ttl - 5, 1) * 1000 };
  }

  /**
   * fetch with the request timeout. With `headersOnly` the timer stops once the
   * headers arrive (blob bodies have their own idle timer); otherwise it also bounds
   * reading the body (manifests, tokens).
   */
  private async fetchWithTimeout(url: string, init: RequestInit, signal?: AbortSignal, headersOnly = false): Promise<Response> {
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(new UnavailableError(`no answer within ${this.requestTimeoutMs} ms`)), this.requestTimeoutMs);
    const combined = signal ? AbortSignal.any([signal, timeout.signal]) : timeout.signal;
    let res: Response;
    try {
      res = await fetch(url, { ...init, signal: combined, redirect: 'follow' });
    } catch (e) {
      clearTimeout(timer);
      if (timeout.signal.aborted) throw new UnavailableError(`no answer within ${this.requestTimeoutMs} ms`, { cause: e });
      throw e;
    }
    if (headersOnly) clearTimeout(timer);
    else timer.unref();
    return res;
  }
}

function networkCode(e: unknown): string | undefined {
  const cause = (e as { cause?: unknown }).cause;
  return errnoCode(cause) ?? errnoCode(e);
}

function isTransient(e: unknown): boolean {
  if (e instanceof HttpStatusError) return e.status >= 500 || e.status === 429;
  if (e instanceof UnavailableError) return true;
  if (e instanceof SandlotError) return false;
  const code = networkCode(e);
  return code !== undefined && TRANSIENT_CODES.has(code);
}

/** `: CODE message` from a distribution error body, if there is one. */
async function errorDetail(res: Response): Promise<string> {
  try {
    const text = (await res.text()).slice(0, 4096);
    const parsed = JSON.parse(text) as { errors?: { code?: string; message?: string }[] };
    const first = parsed.errors?.[0];
    if (first) return `: ${[first.code, first.message].filter(Boolean).join(' ')}`;
    return '';
  } catch {
    return '';
  }
}
