// What a person reads when no daemon answers on the socket, instead of grpc-js's own
// text ("14 UNAVAILABLE: No connection established. Last error: connect ENOENT …").
import { status as GrpcStatus } from '@grpc/grpc-js';

const START_HINT = 'start one with `sudo sandlot daemon` (or `make run` in a checkout), or point --socket / SANDLOT_SOCKET at the socket of a running one';

/** The message for a call that found no daemon at `socket`; undefined for any other failure. */
export function daemonUnreachable(e: unknown, socket: string): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  if (code !== GrpcStatus.UNAVAILABLE) return undefined;
  const raw = (e as { details?: unknown }).details;
  const details = typeof raw === 'string' ? raw : '';
  const why = /ENOENT/.test(details)
    ? 'the socket does not exist'
    : /ECONNREFUSED/.test(details)
      ? 'nothing listens on the socket'
      : /EACCES|EPERM/.test(details)
        ? 'permission denied (run as root, or as a user who may open the socket)'
        : /No connection established|connect|Failed to connect/i.test(details)
          ? details.replace(/^.*Last error: /, '')
          : undefined;
  // UNAVAILABLE for another reason (the daemon shutting down mid-call) keeps its own text.
  if (why === undefined) return undefined;
  return `no sandlot daemon answers at ${socket} (${why}): ${START_HINT}`;
}
