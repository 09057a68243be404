// The CRI container log format, as conmon writes it and the kubelet reads it:
//   <RFC3339Nano timestamp> <stdout|stderr> <P|F> <text>\n
// A line longer than the runtime's buffer is split into P (partial) records ended by
// an F (full) one; readers join them. Pure: no file access here.

export type LogStream = 'stdout' | 'stderr';

export interface CriLogRecord {
  /** The timestamp as written (RFC 3339 with nanoseconds). */
  time: string;
  stream: LogStream;
  /** True for a P record: the line goes on in the next record of the same stream. */
  partial: boolean;
  text: string;
}

/** One complete line of a stream, partial records joined. */
export interface LogLine {
  time: string;
  stream: LogStream;
  text: string;
}

/** Parses one record (without its newline); undefined when it is not in the CRI format. */
export function parseCriLogLine(line: string): CriLogRecord | undefined {
  const s1 = line.indexOf(' ');
  if (s1 <= 0) return undefined;
  const s2 = line.indexOf(' ', s1 + 1);
  if (s2 < 0) return undefined;
  const stream = line.slice(s1 + 1, s2);
  if (stream !== 'stdout' && stream !== 'stderr') return undefined;
  // The tag may be absent in old (pre-1.10 kubelet) logs: treat those as full lines.
  const s3 = line.indexOf(' ', s2 + 1);
  const tag = s3 < 0 ? line.slice(s2 + 1) : line.slice(s2 + 1, s3);
  if (tag === 'P' || tag === 'F') {
    return { time: line.slice(0, s1), stream, partial: tag === 'P', text: s3 < 0 ? '' : line.slice(s3 + 1) };
  }
  return { time: line.slice(0, s1), stream, partial: false, text: line.slice(s2 + 1) };
}

/**
 * Turns file bytes, in chunks of any size, into records. A chunk may end inside a
 * record or inside a UTF-8 character: the rest waits for the next chunk.
 */
export class CriLogDecoder {
  private pending = Buffer.alloc(0);
  /** Lines that were not in the CRI format, counted rather than thrown. */
  malformed = 0;

  push(chunk: Buffer): CriLogRecord[] {
    const buf = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    const out: CriLogRecord[] = [];
    let start = 0;
    for (let nl = buf.indexOf(10, start); nl >= 0; nl = buf.indexOf(10, start)) {
      const rec = parseCriLogLine(buf.subarray(start, nl).toString('utf8'));
      if (rec) out.push(rec);
      else this.malformed += 1;
      start = nl + 1;
    }
    this.pending = Buffer.from(buf.subarray(start));
    return out;
  }

  /** Bytes of a record whose newline has not arrived yet. */
  get pendingBytes(): number {
    return this.pending.length;
  }
}

/** Joins P records with the following records of the same stream into whole lines. */
export class LineJoiner {
  private readonly partial = new Map<LogStream, string>();

  push(rec: CriLogRecord): LogLine | undefined {
    const before = this.partial.get(rec.stream) ?? '';
    if (rec.partial) {
      this.partial.set(rec.stream, before + rec.text);
      return undefined;
    }
    this.partial.delete(rec.stream);
    return { time: rec.time, stream: rec.stream, text: before + rec.text };
  }

  /** What is left unterminated (a log cut off mid-line), as lines. */
  flush(): LogLine[] {
    const out = [...this.partial.entries()].map(([stream, text]) => ({ time: '', stream, text }));
    this.partial.clear();
    return out;
  }
}

/** Whole lines of a complete log file's content. */
export function decodeCriLog(content: Buffer): LogLine[] {
  const dec = new CriLogDecoder();
  const join = new LineJoiner();
  const lines: LogLine[] = [];
  // A final record without its newline still counts: the file is all there is.
  const records = dec.push(content.length > 0 && content[content.length - 1] !== 10 ? Buffer.concat([content, Buffer.from('\n')]) : content);
  for (const r of records) {
    const l = join.push(r);
    if (l) lines.push(l);
  }
  return [...lines, ...join.flush()];
}

/** The last `n` lines (all of them for a negative n, as `crictl logs --tail -1`). */
export function tailLines<T>(lines: T[], n: number): T[] {
  if (n < 0) return lines;
  return n === 0 ? [] : lines.slice(-n);
}

/** The bytes a record puts on the terminal: P records carry no newline of their own. */
export function recordText(rec: CriLogRecord): string {
  return rec.partial ? rec.text : `${rec.text}\n`;
}
