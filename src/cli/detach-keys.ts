// Detach keys for `attach`, as docker has them: Ctrl-P Ctrl-Q by default (`--detach-keys`
// takes docker's notation, "ctrl-p,ctrl-q", "ctrl-a,d"). The scanner sits on stdin: bytes
// that could begin the sequence wait for the next chunk, and the sequence itself never
// reaches the container.
import { UsageError } from './verb.js';

export const DEFAULT_DETACH_KEYS = 'ctrl-p,ctrl-q';

/** docker's notation into bytes: `ctrl-<letter or @[\]^_>` or a single character, comma-separated. */
export function parseDetachKeys(spec: string): Buffer {
  if (spec === '') return Buffer.alloc(0);
  const bytes: number[] = [];
  for (const part of spec.split(',')) {
    const ctrl = /^ctrl-([a-z@[\\\]^_])$/i.exec(part);
    if (ctrl) bytes.push(ctrl[1].toUpperCase().charCodeAt(0) & 0x1f);
    else if (part.length === 1) bytes.push(part.charCodeAt(0));
    else throw new UsageError(`--detach-keys ${JSON.stringify(spec)}: ${JSON.stringify(part)} is neither ctrl-<key> nor one character`);
  }
  return Buffer.from(bytes);
}

export class DetachScanner {
  private held = Buffer.alloc(0);

  constructor(private readonly keys: Buffer) {}

  /** What to pass on, and whether the sequence was typed (what follows it is dropped). */
  push(chunk: Buffer): { pass: Buffer; detach: boolean } {
    const buf = this.held.length > 0 ? Buffer.concat([this.held, chunk]) : chunk;
    this.held = Buffer.alloc(0);
    if (this.keys.length === 0) return { pass: buf, detach: false };
    const at = buf.indexOf(this.keys);
    if (at >= 0) return { pass: buf.subarray(0, at), detach: true };
    // A tail that is a prefix of the sequence waits: the rest may come in the next chunk.
    for (let n = Math.min(this.keys.length - 1, buf.length); n > 0; n--) {
      if (buf.subarray(buf.length - n).equals(this.keys.subarray(0, n))) {
        this.held = Buffer.from(buf.subarray(buf.length - n));
        return { pass: buf.subarray(0, buf.length - n), detach: false };
      }
    }
    return { pass: buf, detach: false };
  }

  /** Bytes held back when stdin ends: they were data after all. */
  flush(): Buffer {
    const b = this.held;
    this.held = Buffer.alloc(0);
    return b;
  }
}
