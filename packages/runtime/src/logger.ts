import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { redactUrl } from '@at-orchestrator/contracts';

export type { Logger } from 'pino';

export interface LoggerOptions {
  service: string;
  env: string;
  level: string;
  /** Extra fields on every line (worker_id, role, …). */
  base?: Record<string, unknown>;
  /** Where lines go; stdout by default. Tests pass a stream to read them. */
  destination?: NodeJS.WritableStream;
}

/**
 * JSON lines (pino). Error messages pass through redactUrl so that a connection error quoting a URL
 * with credentials never prints the password.
 */
export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level,
      base: { service: options.service, env: options.env, ...options.base },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      serializers: {
        err: (err: unknown) => {
          const e = err as { message?: string; code?: unknown; stack?: string; name?: string };
          return {
            type: e?.name,
            code: e?.code,
            message: redactUrl(String(e?.message ?? err)),
            stack: e?.stack === undefined ? undefined : redactUrl(e.stack),
          };
        },
      },
    },
    options.destination === undefined ? pino.destination({ sync: true }) : (options.destination as pino.DestinationStream),
  );
}

/** A logger that keeps its lines in memory, for tests that read what was logged. */
export function memoryLogger(level = 'warn'): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString().split('\n').filter((l) => l !== ''));
      cb();
    },
  });
  return { log: createLogger({ service: 'test', env: 'test', level, destination }), lines };
}
