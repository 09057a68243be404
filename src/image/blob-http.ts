// A blob GET for a layer worker (http-request.ts, as the registry client's requests):
// the registry client (main thread) has already found the endpoint and earned the
// authorization fetching the manifest (registry-client.ts blobLocation); here the
// bytes are fetched with the headers it gave, redirects followed. The request timeout
// covers the wait for headers; then an idle timer watches the body. A status other
// than 2xx fails with BlobStatusError, which the main thread turns into the registry
// client's typed error; a connection that fails or stalls is UnavailableError (the
// pull retries it).
import type { Readable } from 'node:stream';
import { UnavailableError, errnoCode, errorMessage } from '../errors.js';
import { errorDetail, httpRequest, statusText, watchIdle } from './http-request.js';

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
  let res;
  try {
    res = await httpRequest(loc.url, { headers: loc.headers, signal, timeoutMs: loc.requestTimeoutMs });
  } catch (e) {
    throw networkError(e, loc.what, signal);
  }
  const status = res.statusCode ?? 0;
  if (status < 200 || status >= 300) {
    const line = statusText(res);
    throw new BlobStatusError(status, `${line}${await errorDetail(res)}`);
  }
  watchIdle(res, loc.idleTimeoutMs, () => new UnavailableError(`${loc.what}: no data for ${loc.idleTimeoutMs} ms`));
  return res;
}

function networkError(e: unknown, what: string, signal: AbortSignal): unknown {
  if (signal.aborted) return e;
  if (e instanceof UnavailableError) return new UnavailableError(`${what}: ${e.message}`, { cause: e });
  return new UnavailableError(`${what}: ${errnoCode(e) ?? errorMessage(e)}`, { cause: e });
}
