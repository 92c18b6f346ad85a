import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';
import { redactValue, redact } from './redact.js';

export type { Logger };

/** pino's levels, lowest first, and "silent". */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

/** A log level that is not one of LOG_LEVELS (pino would throw its own, less helpful, error). */
export class LogLevelError extends Error {
  constructor(readonly level: string, source: string) {
    super(`${source}: log level must be one of ${LOG_LEVELS.join(', ')} (got "${level}")`);
    this.name = 'LogLevelError';
  }
}

export function isLogLevel(level: string): level is (typeof LOG_LEVELS)[number] {
  return (LOG_LEVELS as readonly string[]).includes(level);
}

export interface LoggerOptions {
  level?: string;
  /** Where log lines go; stderr by default so stdout carries only results. */
  destination?: NodeJS.WritableStream;
  /** Readable lines instead of JSON; defaults to whether the destination is a TTY. */
  pretty?: boolean;
}

/**
 * Structured logs to stderr: JSON when not a TTY (for log shippers), readable lines on a TTY.
 * Every string in every log object passes through the redactor, so secrets cannot leak by accident.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const destination = options.destination ?? process.stderr;
  const isTty = Boolean((destination as { isTTY?: boolean }).isTTY);
  const level = options.level ?? process.env.REPWATCH_LOG_LEVEL ?? 'info';
  if (!isLogLevel(level)) throw new LogLevelError(level, options.level !== undefined ? 'log level' : 'REPWATCH_LOG_LEVEL');
  const hooks = {
    logMethod(this: Logger, args: Parameters<Logger['info']>, method: (...a: unknown[]) => void) {
      method.apply(this, args.map((arg) => (typeof arg === 'string' ? redact(arg) : redactValue(arg))));
    },
  };
  const base = { level, hooks, base: undefined, serializers: { err: (e: unknown) => redactValue(e) } };
  if (options.pretty ?? isTty) {
    const stream = pretty({ destination, colorize: isTty, translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname', sync: true });
    return pino(base, stream);
  }
  return pino(base, destination as pino.DestinationStream);
}

/** A logger that drops everything: for tests that assert on results, not on logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
