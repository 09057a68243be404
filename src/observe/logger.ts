// The root logger, on stderr. The only module-level state sandlot allows. A person at a
// terminal reads lines (pino-pretty); anything else (a pipe, journald, a node agent
// collecting logs) gets one JSON object per line.
import { pino, type DestinationStream, type Logger } from 'pino';
import { PinoPretty } from 'pino-pretty';
import type { LogLevel } from '../config/types.js';

const LOG_FD = 2;

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
    },
    pretty ? prettyDestination() : pino.destination({ fd: LOG_FD, sync: false }),
  );
}

function prettyDestination(): DestinationStream {
  // Synchronous on the main thread: a terminal is slow to nobody, and a fatal line
  // printed just before exit must not be lost in a worker's buffer.
  return PinoPretty({ destination: LOG_FD, sync: true, colorize: true, singleLine: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' });
}
