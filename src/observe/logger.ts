// The root logger: JSON lines on stderr. The only module-level state sandlot allows.
import { pino, type Logger } from 'pino';
import type { LogLevel } from '../config/types.js';

export function createLogger(level: LogLevel): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.destination({ fd: 2, sync: false }),
  );
}
