// Dialling a TCP port inside a pod's network namespace, whatever the pod's IP: the
// socket is created in the netns (one synchronous setns round trip on the main thread,
// native/socket.ts) and connected from the event loop like any other.
import net from 'node:net';
import { AF_INET, AF_INET6, tcpSocketInNetns } from '../../native/index.js';
import { errorMessage, UnavailableError } from '../errors.js';

export const DIAL_TIMEOUT_MS = 10_000;

function connectFd(fd: number | undefined, host: string, port: number, signal: AbortSignal): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = fd === undefined ? new net.Socket() : new net.Socket({ fd, readable: true, writable: true });
    const fail = (e: Error) => {
      cleanup();
      sock.destroy();
      reject(e);
    };
    const timer = setTimeout(() => fail(new Error(`timed out after ${DIAL_TIMEOUT_MS} ms`)), DIAL_TIMEOUT_MS);
    const onAbort = () => fail(new Error('cancelled'));
    const cleanup = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      sock.off('error', fail);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    sock.once('error', fail);
    sock.connect({ port, host }, () => {
      cleanup();
      resolve(sock);
    });
  });
}

/**
 * Connects to localhost:`port` inside the netns pinned at `netnsPath` (IPv4 first, then
 * IPv6, as the kubelet's port-forward does); `undefined` means the host's own network
 * (host-network pods).
 */
export async function dialPodPort(netnsPath: string | undefined, port: number, signal: AbortSignal): Promise<net.Socket> {
  const attempts: Array<[number, string]> = [
    [AF_INET, '127.0.0.1'],
    [AF_INET6, '::1'],
  ];
  const errors: string[] = [];
  for (const [family, host] of attempts) {
    let fd: number | undefined;
    try {
      fd = netnsPath === undefined ? undefined : tcpSocketInNetns(netnsPath, family);
    } catch (e) {
      errors.push(`${host}: ${errorMessage(e)}`);
      continue;
    }
    try {
      return await connectFd(fd, host, port, signal);
    } catch (e) {
      // The net.Socket owned the fd and closed it when it was destroyed.
      errors.push(`${host}: ${errorMessage(e)}`);
      if (signal.aborted) break;
    }
  }
  throw new UnavailableError(`dialling port ${port} in the pod network: ${errors.join('; ')}`);
}
