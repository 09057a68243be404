// The plain-HTTP answers of an upgrade that is refused, and the header lists it reads:
// what the streaming server needs before any session code is loaded.
import http from 'node:http';
import type { Duplex } from 'node:stream';

/** The comma-separated values of a header that may be sent more than once. */
export function headerList(v: string | string[] | undefined): string[] {
  const values = Array.isArray(v) ? v : v === undefined ? [] : [v];
  return values
    .flatMap((s) => s.split(','))
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** Answers an upgrade request with `status` and a text body, and closes the connection. */
export function rejectUpgrade(socket: Duplex, status: number, message: string, extraHeaders: string[] = []): void {
  const body = `${message}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}\r\n` +
      'Connection: close\r\nContent-Type: text/plain; charset=utf-8\r\n' +
      extraHeaders.map((h) => `${h}\r\n`).join('') +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}
