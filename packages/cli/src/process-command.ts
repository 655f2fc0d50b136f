import { ConfigError, OrchestratorError, loadConfig, redactUrl, type OrchestratorConfig } from '@at-orchestrator/contracts';
import { ShutdownSequence, createLogger, type Logger } from '@at-orchestrator/runtime';

/** What a long-running command (worker, coordinator) starts and how it stops. */
export interface ProcessParts {
  /** Started in order; a failure stops the command with exit 1 after `close`. */
  start(): Promise<void>;
  /** Called once on a failed start; idempotent closes of everything started so far. */
  close(): Promise<void>;
}

/**
 * The life of a long-running command, written once: read and validate the environment (exit 2 with
 * one line naming the variable), build the parts, start them (exit 1 with a redacted message when
 * that fails), then wait for SIGTERM/SIGINT and run the shutdown steps (exit 0 when they finish
 * within SHUTDOWN_GRACE_SEC).
 */
export async function runProcess(
  name: string,
  args: string[],
  build: (config: OrchestratorConfig, log: Logger, shutdown: ShutdownSequence) => ProcessParts,
): Promise<number> {
  if (args.length > 0) {
    process.stderr.write(`at-orchestrator ${name}: unexpected argument ${JSON.stringify(args[0])} (configuration is read from the environment)\n`);
    return 2;
  }
  let config: OrchestratorConfig;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`at-orchestrator: invalid configuration: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const base: Record<string, string> = { role: name };
  if (name === 'worker') base.worker_id = config.workerId;
  const log = createLogger({ service: config.serviceName, env: config.env, level: config.logLevel, base });
  const shutdown = new ShutdownSequence(log, config.shutdownGraceMs);
  let parts: ProcessParts;
  try {
    parts = build(config, log, shutdown);
  } catch (err) {
    // A bad rules or model file surfaces here, as a configuration error.
    if (err instanceof ConfigError) {
      process.stderr.write(`at-orchestrator: invalid configuration: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const exitCode = new Promise<number>((resolve) => shutdown.installSignalHandlers(resolve));
  try {
    await parts.start();
  } catch (err) {
    // A credential file that does not parse, TLS required of a plaintext server, an evicting Redis:
    // configuration found while starting, the same exit 2 and one line as a bad variable.
    if (err instanceof ConfigError) {
      log.fatal(err.message);
      process.stderr.write(`at-orchestrator: invalid configuration: ${err.message}\n`);
      await parts.close().catch(() => undefined);
      return 2;
    }
    const message = err instanceof OrchestratorError ? err.message : redactUrl(String((err as Error).message ?? err));
    log.fatal({ err }, `${name} failed to start`);
    process.stderr.write(`at-orchestrator: ${name} failed to start: ${message}\n`);
    await parts.close().catch(() => undefined);
    return 1;
  }
  const code = await exitCode;
  log.flush();
  return code;
}
