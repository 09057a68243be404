// The root logger, on stderr. The only module-level state sandlot allows. A person at a
// terminal reads lines (pino-pretty); anything else (a pipe, journald, a node agent
// collecting logs) gets one JSON object per line.
import { isSpanContextValid, trace } from '@opentelemetry/api';
import { pino, type DestinationStream, type Logger } from 'pino';
import { createRequire } from 'node:module';
import type * as PinoPrettyModule from 'pino-pretty';
import type { LogLevel } from '../config/types.js';

const LOG_FD = 2;

/**
 * The active span's IDs on every line logged inside a traced call (the field names of
 * OpenTelemetry's pino instrumentation). Without tracing no span is active: nothing added.
 */
export function traceFields(): Record<string, string> {
  const span = trace.getActiveSpan();
  if (span === undefined) return {};
  const sc = span.spanContext();
  if (!isSpanContextValid(sc)) return {};
  return { trace_id: sc.traceId, span_id: sc.spanId, trace_flags: `0${sc.traceFlags.toString(16)}`.slice(-2) };
}

/** A field of an ISO 8601 time: two digits, three for milliseconds. */
function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/**
 * The time as Date.prototype.toISOString writes it (2026-12-07T19:33:00.123Z), from the
 * UTC fields. toISOString itself first looks up the local time zone's display name,
 * though an ISO time never shows it: the first call has ICU load its time-zone name
 * tables, ~1 MiB of node's pages resident in every daemon from its first log line on
 * (issue 13: /proc/PID/pagemap, and a perf trace of the page faults in ICU's data).
 */
export function utcIsoTime(ms: number): string {
  const d = new Date(ms);
  const date = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
  return `${date}T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds(), 3)}Z`;
}

/** pino's stdTimeFunctions.isoTime, through utcIsoTime. */
function isoTime(): string {
  return `,"time":"${utcIsoTime(Date.now())}"`;
}

export interface LoggerOptions {
  /** Readable lines instead of JSON; by default when stderr is a terminal. */
  pretty?: boolean;
}

export function createLogger(level: LogLevel, options: LoggerOptions = {}): Logger {
  const pretty = options.pretty ?? process.stderr.isTTY === true;
  return pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: isoTime,
      formatters: { level: (label) => ({ level: label }) },
      mixin: traceFields,
    },
    pretty ? prettyDestination() : pino.destination({ fd: LOG_FD, sync: false }),
  );
}

function prettyDestination(): DestinationStream {
  // Loaded only for a terminal: a daemon writing JSON would keep pino-pretty and its
  // dependencies in its heap for nothing. Synchronous on the main thread: a terminal is
  // slow to nobody, and a fatal line printed just before exit must not be lost in a
  // worker's buffer.
  const { PinoPretty } = createRequire(import.meta.url)('pino-pretty') as typeof PinoPrettyModule;
  return PinoPretty({ destination: LOG_FD, sync: true, colorize: true, singleLine: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' });
}
