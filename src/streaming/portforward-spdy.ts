// portforward over SPDY (kubelet portforward/httpstream.go, protocol portforward.k8s.io):
// each forwarded connection is a pair of client-opened streams sharing a `requestID`,
// a `data` stream carrying the bytes and an `error` stream for our message if the
// port cannot be reached. Many pairs may run at once on one session.
import type { Logger } from 'pino';
import { errorMessage } from '../errors.js';
import type { StreamingBackend } from './backend.js';
import { isValidPort, type PortForwardRequest } from './requests.js';
import type { SpdySession } from './spdy/session.js';
import type { SpdyStream } from './spdy/stream.js';

export const PORTFORWARD_PROTOCOL_V1 = 'portforward.k8s.io';
/** How long half a pair may wait for its other half (kubelet: streamCreationTimeout). */
export const PAIR_CREATION_TIMEOUT_MS = 30_000;

interface Pair {
  data?: SpdyStream;
  error?: SpdyStream;
  timer: NodeJS.Timeout;
}

export interface ServeSpdyPortForwardOptions {
  session: SpdySession;
  request: PortForwardRequest;
  backend: StreamingBackend;
  log: Logger;
  pairCreationTimeoutMs?: number;
}

/** Why `portText` may not be forwarded, or undefined when it may. */
function portRefusal(portText: string, request: PortForwardRequest): string | undefined {
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!isValidPort(port)) return `invalid port ${JSON.stringify(portText)}: want an integer in 1..65535`;
  if (request.ports.length > 0 && !request.ports.includes(port)) return `port ${port} was not requested (requested: ${request.ports.join(', ')})`;
  return undefined;
}

/** One forwarded connection: the data stream to the pod's port; a failure said on the error stream. */
async function forwardPair(opts: ServeSpdyPortForwardOptions, signal: AbortSignal, data: SpdyStream, error: SpdyStream): Promise<void> {
  const { request, log } = opts;
  const podSandboxId = request.podSandboxId;
  const portText = data.headers['port'] ?? '';
  let failure = portRefusal(portText, request);
  if (failure === undefined) {
    try {
      await opts.backend.portForward(podSandboxId, Number(portText), data, signal);
    } catch (e: unknown) {
      failure = errorMessage(e);
    }
  }
  if (failure !== undefined && !signal.aborted) {
    log.info({ port: portText, err: failure }, 'port forward failed');
    error.write(`error forwarding port ${portText} to pod ${podSandboxId}: ${failure}`);
  }
  if (!data.writableEnded) data.end();
  if (!error.writableEnded) error.end();
}

/** Resolves when the session is over and every forward has finished. */
export function serveSpdyPortForward(opts: ServeSpdyPortForwardOptions): Promise<void> {
  const { session, log } = opts;
  const controller = new AbortController();
  const pairs = new Map<string, Pair>();
  const running = new Set<Promise<void>>();

  session.on('stream', (stream) => {
    stream.on('error', (err) => log.debug({ err, streamId: stream.id }, 'spdy stream error'));
    stream.reply();
    const type = stream.headers['streamtype'];
    // Old clients send no requestID: kubelet pairs a data stream with the error stream
    // opened just before it (ids differ by 2).
    let id = stream.headers['requestid'];
    if (!id) id = String(type === 'data' ? stream.id - 2 : stream.id);
    if (type !== 'data' && type !== 'error') {
      log.debug({ streamType: type }, 'portforward: unexpected spdy stream, resetting it');
      stream.resetStream();
      return;
    }
    let pair = pairs.get(id);
    if (!pair) {
      pair = {
        timer: setTimeout(() => {
          pairs.delete(id);
          pair?.data?.resetStream();
          pair?.error?.resetStream();
        }, opts.pairCreationTimeoutMs ?? PAIR_CREATION_TIMEOUT_MS),
      };
      pairs.set(id, pair);
    }
    if (pair[type]) {
      stream.resetStream();
      return;
    }
    pair[type] = stream;
    if (pair.data && pair.error) {
      clearTimeout(pair.timer);
      pairs.delete(id);
      const p = forwardPair(opts, controller.signal, pair.data, pair.error);
      running.add(p);
      void p.finally(() => running.delete(p));
    }
  });

  return new Promise((resolve) => {
    const finish = (): void => {
      controller.abort();
      for (const p of pairs.values()) clearTimeout(p.timer);
      pairs.clear();
      void Promise.allSettled([...running]).then(() => resolve());
    };
    session.once('close', finish);
    // The client says it is done: let in-flight frames go, then close our side.
    session.once('goaway', () => session.close());
  });
}
