// One HTTP(S) request to a registry (or its token or storage host) through node:http
// and node:https, for the registry client on the daemon's thread and for a layer
// worker's blob GET (blob-http.ts) alike. Not `fetch`: undici costs the daemon ~19 MiB
// that stay resident after the first pull, and its start-up.
// Redirects are followed (a registry may send blobs to a storage host): 307/308 keep
// the method and body, 301/302/303 turn into a GET without body, as fetch does; the
// authorization goes only to the origin it was given for. The timeout covers the wait
// for the final answer's headers; the body is the caller's to time (watchIdle,
// bodyDeadline). Connections are kept alive by Node's global agents.
import http from 'node:http';
import https from 'node:https';
import { InternalError, UnavailableError } from '../errors.js';

export const MAX_REDIRECTS = 5;
const ERROR_BODY_MAX_BYTES = 4096;

export interface HttpRequestOptions {
  method?: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: string | undefined;
  signal?: AbortSignal | undefined;
  /** For the final answer's headers, redirects included. */
  timeoutMs: number;
}

/**
 * Sends the request, following redirects; resolves with the final answer whatever its
 * status. Fails with UnavailableError when no answer comes within the timeout, with
 * node's own error (an errno code, a TLS code, AbortError) when the connection fails.
 */
export async function httpRequest(url: string | URL, o: HttpRequestOptions): Promise<http.IncomingMessage> {
  let target = new URL(url);
  const origin = target.origin;
  let method = o.method ?? 'GET';
  let body = o.body;
  const deadline = Date.now() + o.timeoutMs;
  for (let hop = 0; ; hop++) {
    const headers = target.origin === origin ? o.headers : withoutAuthorization(o.headers);
    const res = await send(target, method, body === undefined ? headers : { ...headers, 'content-length': String(Buffer.byteLength(body)) }, body, o, deadline);
    const status = res.statusCode ?? 0;
    const location = res.headers.location;
    if (!isRedirect(status) || !location || hop >= MAX_REDIRECTS) return res;
    res.resume();
    target = new URL(location, target);
    if (status !== 307 && status !== 308) {
      method = 'GET';
      body = undefined;
    }
  }
}

function isRedirect(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

function withoutAuthorization(h: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(h).filter(([k]) => k.toLowerCase() !== 'authorization'));
}

function send(
  url: URL,
  method: string,
  headers: Record<string, string>,
  body: string | undefined,
  o: HttpRequestOptions,
  deadline: number,
): Promise<http.IncomingMessage> {
  const request = url.protocol === 'https:' ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, ...(o.signal ? { signal: o.signal } : {}) }, (res) => {
      clearTimeout(timer);
      resolve(res);
    });
    const timer = setTimeout(() => req.destroy(new UnavailableError(`no answer within ${o.timeoutMs} ms`)), Math.max(deadline - Date.now(), 0));
    req.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    req.end(body);
  });
}

/** Fails the body with `onIdle()`'s error when no data arrives for `idleMs`. */
export function watchIdle(res: http.IncomingMessage, idleMs: number, onIdle: () => Error): void {
  const timer = setTimeout(() => res.destroy(onIdle()), idleMs);
  // One timer restarted per chunk (a blob body is thousands of them): cheaper than a new one each time.
  res.on('data', () => timer.refresh());
  res.once('close', () => clearTimeout(timer));
}

/** Fails the body with UnavailableError unless it has all arrived within `timeoutMs`. */
export function bodyDeadline(res: http.IncomingMessage, timeoutMs: number): void {
  const timer = setTimeout(() => res.destroy(new UnavailableError(`no answer within ${timeoutMs} ms`)), timeoutMs);
  res.once('close', () => clearTimeout(timer));
}

/** The whole body; InternalError once it is over `maxBytes` (the rest is not read). */
export async function readBody(res: http.IncomingMessage, maxBytes: number, what: string): Promise<Buffer> {
  const declared = Number(res.headers['content-length'] ?? '0');
  if (declared > maxBytes) {
    res.destroy();
    throw new InternalError(`${what} is ${declared} bytes, more than the ${maxBytes} allowed`);
  }
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res) {
    n += (c as Buffer).length;
    if (n > maxBytes) {
      res.destroy();
      throw new InternalError(`${what} is more than the ${maxBytes} bytes allowed`);
    }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks, n);
}

/** `: CODE message` from a distribution error body, if there is one; the body is consumed. */
export async function errorDetail(res: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const c of res) {
      chunks.push(c as Buffer);
      n += (c as Buffer).length;
      if (n >= ERROR_BODY_MAX_BYTES) break;
    }
    const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { errors?: { code?: string; message?: string }[] };
    const first = parsed.errors?.[0];
    return first ? `: ${[first.code, first.message].filter(Boolean).join(' ')}` : '';
  } catch {
    return '';
  } finally {
    res.destroy();
  }
}

/** `404 not found` from an answer's status line. */
export function statusText(res: http.IncomingMessage): string {
  return `${res.statusCode ?? 0} ${(res.statusMessage ?? '').toLowerCase()}`;
}
