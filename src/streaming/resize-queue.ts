// Terminal sizes from the client to the backend. The wire side pushes; the backend
// iterates. Only the newest size matters, so a slow consumer sees the latest one
// rather than a backlog.
import type { TerminalSize } from './backend.js';

export class ResizeQueue implements AsyncIterable<TerminalSize> {
  private pending: TerminalSize | undefined;
  private waiter: ((r: IteratorResult<TerminalSize>) => void) | undefined;
  private closed = false;

  push(size: TerminalSize): void {
    if (this.closed) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w({ value: size, done: false });
    } else {
      this.pending = size;
    }
  }

  close(): void {
    this.closed = true;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w({ value: undefined, done: true });
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<TerminalSize> {
    return {
      next: () => {
        if (this.pending) {
          const value = this.pending;
          this.pending = undefined;
          return Promise.resolve({ value, done: false });
        }
        if (this.closed) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => {
          this.waiter = resolve;
        });
      },
      return: () => {
        this.close();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}

/** A parsed `{"Width":w,"Height":h}` (client-go's TerminalSize), or undefined when malformed. */
export function parseTerminalSize(text: string): TerminalSize | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const { Width: width, Height: height } = v as Record<string, unknown>;
  const ok = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 0xffff;
  return ok(width) && ok(height) ? { width, height } : undefined;
}

/**
 * Splits a byte stream of concatenated JSON objects (what Go's json.Encoder writes on
 * the SPDY resize stream, not necessarily one per frame) into whole objects.
 */
export class JsonObjectSplitter {
  private buf = '';
  private depth = 0;
  private inString = false;
  private escaped = false;
  private start = -1;

  push(chunk: string): string[] {
    const out: string[] = [];
    const base = this.buf.length;
    this.buf += chunk;
    for (let i = base; i < this.buf.length; i++) {
      const c = this.buf[i];
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === '\\') this.escaped = true;
        else if (c === '"') this.inString = false;
      } else if (c === '"') {
        this.inString = true;
      } else if (c === '{') {
        if (this.depth++ === 0) this.start = i;
      } else if (c === '}' && this.depth > 0) {
        if (--this.depth === 0) {
          out.push(this.buf.slice(this.start, i + 1));
          this.start = -1;
        }
      }
    }
    // Keep only an unfinished object; drop whitespace and stray bytes between objects.
    if (this.depth === 0) this.buf = '';
    else if (this.start > 0) {
      this.buf = this.buf.slice(this.start);
      this.start = 0;
    }
    if (this.buf.length > 64 * 1024) {
      this.buf = '';
      this.depth = 0;
      this.inString = false;
      this.start = -1;
    }
    return out;
  }
}
