import winston from 'winston';
import type { LogLevel } from '../../../log/logger.js';

/** Levels by rank: an app line is kept when its rank is at most the configured level's. */
export const LEVEL_RANK: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

export type ToConsole = (level: LogLevel, record: Record<string, unknown>) => void;

/**
 * The console channel for operators: one JSON line per record, of any level (the caller
 * chooses what reaches it: app lines at the configured level, alerts, lines the disk refused).
 */
export function consoleChannel(out: NodeJS.WritableStream): ToConsole {
  const consoleLog = winston.createLogger({
    levels: LEVEL_RANK,
    level: 'debug',
    format: winston.format.printf((info) => String(info.line)),
    transports: [new winston.transports.Stream({ stream: out })],
  });
  return (level, record) => {
    consoleLog.log(level, '', { line: JSON.stringify(record) });
  };
}
