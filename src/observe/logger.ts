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
      timestamp: pino.stdTimeFunctions.isoTime,
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
