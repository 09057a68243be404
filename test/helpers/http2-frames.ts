// Raw HTTP/2 frames (RFC 9113 §4.1) for tests that speak to a socket below any HTTP/2
// library: the connection opener's and the daemon's handling of a connection's first bytes.

/** The client connection preface (RFC 9113 §3.4). */
export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

/** One frame: the 9-byte header (length, type, flags, stream) and `payload`. */
export function frame(type: number, flags: number, streamId: number, payload: Buffer | number[] = Buffer.alloc(0)): Buffer {
  const body = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const h = Buffer.alloc(9);
  h.writeUIntBE(body.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId, 5);
  return Buffer.concat([h, body]);
}
