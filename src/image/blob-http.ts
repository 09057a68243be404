// A blob GET through node:http(s), for a layer worker: the registry client (main
// thread) has already found the endpoint and earned the authorization with a HEAD
// (registry-client.ts locateBlob); here the bytes are fetched with the headers it
// gave. Redirects are followed (a registry may send blobs to a storage host; the
// authorization is not sent to another origin). The request timeout covers the wait
// for headers; then an idle timer watches the body. A status other than 2xx fails
// with BlobStatusError, which the main thread turns into the registry client's typed
// error; a connection that fails or stalls is UnavailableError (the pull retries it).
import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import { UnavailableError, errnoCode, errorMessage } from '../errors.js';

const MAX_REDIRECTS = 5;
const ERROR_BODY_MAX_BYTES = 4096;

export interface HttpBlobLocation {
  kind: 'http';
  url: string;
  headers: Record<string, string>;
  requestTimeoutMs: number;
  idleTimeoutMs: number;
  /** Message prefix: `fetching blob sha256:… of "repo" from registry "host"`. */
  what: string;
}

/** The registry answered the blob GET with a status other than 2xx. */
export class BlobStatusError extends Error {
  override readonly name = 'BlobStatusError';

  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** GETs the blob; the body as a stream that fails with UnavailableError if it stalls. */
export async function getBlob(loc: HttpBlobLocation, signal: AbortSignal): Promise<Readable> {
  let url = new URL(loc.url);
  const origin = url.origin;
  for (let hop = 0; ; hop++) {
    const headers = url.origin === origin ? loc.headers : withoutAuthorization(loc.headers);
    const res = await request(url, headers, loc, signal);
    const status = res.statusCode ?? 0;
    const location = res.headers.location;
    if (status >= 300 && status < 400 && location && hop < MAX_REDIRECTS) {
      res.resume();
      url = new URL(location, url);
      continue;
    }
    if (status < 200 || status >= 300) {
      const detail = await errorDetail(res);
      throw new BlobStatusError(status, `${status} ${(res.statusMessage ?? '').toLowerCase()}${detail}`);
    }
    watchIdle(res, loc);
    return res;
  }
}

function withoutAuthorization(h: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(h).filter(([k]) => k.toLowerCase() !== 'authorization'));
}

function request(url: URL, headers: Record<string, string>, loc: HttpBlobLocation, signal: AbortSignal): Promise<http.IncomingMessage> {
  const get = url.protocol === 'https:' ? https.get : http.get;
  return new Promise((resolve, reject) => {
    const req = get(url, { headers, signal }, (res) => {
      clearTimeout(timer);
      resolve(res);
    });
    const timer = setTimeout(() => req.destroy(new UnavailableError(`${loc.what}: no answer within ${loc.requestTimeoutMs} ms`)), loc.requestTimeoutMs);
    req.once('error', (e) => {
      clearTimeout(timer);
      reject(networkError(e, loc.what, signal));
    });
  });
}

/** Fails the body with UnavailableError when no data arrives for the idle timeout. */
function watchIdle(res: http.IncomingMessage, loc: HttpBlobLocation): void {
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => res.destroy(new UnavailableError(`${loc.what}: no data for ${loc.idleTimeoutMs} ms`)), loc.idleTimeoutMs);
  };
  arm();
  res.on('data', arm);
  res.once('close', () => clearTimeout(timer));
}

function networkError(e: Error, what: string, signal: AbortSignal): Error {
  if (signal.aborted || e instanceof UnavailableError) return e;
  return new UnavailableError(`${what}: ${errnoCode(e) ?? errorMessage(e)}`, { cause: e });
}

/** `: CODE message` from a distribution error body, if there is one. */
async function errorDetail(res: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const c of res) {
      chunks.push(c as Buffer);
      n += (c as Buffer).length;
      if (n >= ERROR_BODY_MAX_BYTES) break;
    }
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { errors?: { code?: string; message?: string }[] };
    const first = body.errors?.[0];
    return first ? `: ${[first.code, first.message].filter(Boolean).join(' ')}` : '';
  } catch {
    return '';
  } finally {
    res.destroy();
  }
}
