// A blob GET for a layer worker (http-request.ts, as the registry client's requests):
// the registry client (main thread) has already found the endpoint and earned the
// authorization fetching the manifest (registry-client.ts blobLocation); here the
// bytes are fetched with the headers it gave, redirects followed. The request timeout
// covers the wait for headers; then an idle timer watches the body. A status other
// than 2xx fails with BlobStatusError, which the main thread turns into the registry
// client's typed error; a connection that fails or stalls is UnavailableError (the
// pull retries it).
import { PassThrough, type Readable } from 'node:stream';
import { SandlotError, UnavailableError, errnoCode, errorMessage } from '../errors.js';
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

/** How a download that stops part-way fails (node:http and stream codes). */
const CONNECTION_LOST_CODES = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ERR_STREAM_PREMATURE_CLOSE']);

/**
 * A blob body cut off part-way (the registry or the network went away: node's
 * "aborted", ECONNRESET …) as UnavailableError naming `what`, which the pull retries and
 * the client sees as UNAVAILABLE; undefined for any other error (ours, a cancel).
 */
export function connectionLost(e: unknown, what: string): UnavailableError | undefined {
  if (e instanceof SandlotError || (e as Error | undefined)?.name === 'BlobStatusError') return undefined;
  const code = errnoCode(e);
  if (code === undefined || !CONNECTION_LOST_CODES.has(code)) return undefined;
  return new UnavailableError(`${what}: ${code === 'ECONNRESET' ? 'connection lost' : code}: ${errorMessage(e)}`, { cause: e });
}

/**
 * `body` (a blob GET's answer on the daemon's thread) as a stream that fails with
 * connectionLost's UnavailableError when the connection is lost part-way; destroying
 * it destroys the answer.
 */
export function failingAsUnavailable(body: Readable, what: string): Readable {
  const out = new PassThrough({ highWaterMark: body.readableHighWaterMark });
  body.on('error', (e) => out.destroy(connectionLost(e, what) ?? e));
  out.once('close', () => {
    if (!body.readableEnded) body.destroy();
  });
  return body.pipe(out);
}
