/**
 * The few error classes of the project. Each carries a stable `code` (documented in docs/errors.md),
 * whether retrying can help, and the underlying cause.
 */
export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'CONNECTION_FAILED'
  | 'CONTRACT_VIOLATION'
  | 'FENCED'
  | 'TIMEOUT';

export class OrchestratorError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options: { retryable?: boolean; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'OrchestratorError';
    this.code = code;
    this.retryable = options.retryable ?? false;
  }
}

export class ConfigError extends OrchestratorError {
  constructor(message: string) {
    super('CONFIG_INVALID', message);
    this.name = 'ConfigError';
  }
}

export class ContractError extends OrchestratorError {
  /** Short machine-readable reason, used as the DLQ reason and a metric label. */
  readonly reason: string;
  constructor(reason: string, message: string) {
    super('CONTRACT_VIOLATION', message);
    this.name = 'ContractError';
    this.reason = reason;
  }
}

/** Removes the password (and user) from anything that looks like a URL with credentials. */
export function redactUrl(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)([^@/\s]+)@/gi, '$1***@');
}
