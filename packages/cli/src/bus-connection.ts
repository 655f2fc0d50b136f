import { ConfigError, loadConfig, redactUrl, type OrchestratorConfig } from '@at-orchestrator/contracts';
import { NatsLink, createLogger } from '@at-orchestrator/runtime';

/** How a short-lived CLI command ends: what the commands document. */
export const EXIT = { ok: 0, unreachable: 1, usage: 2, refused: 3 } as const;

export type CliConnection = { ok: true; config: OrchestratorConfig; link: NatsLink } | { ok: false; code: number; message: string };

/**
 * The configuration and a NATS connection for one CLI command (control, dlq): a bad environment or
 * credential file is a usage error (exit 2), an unreachable server exit 1; never a secret printed.
 */
export async function connectForCommand(name: string, timeoutMs: number): Promise<CliConnection> {
  let config: OrchestratorConfig;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) return { ok: false, code: EXIT.usage, message: `invalid configuration: ${err.message}` };
    throw err;
  }
  const log = createLogger({ service: 'at-orchestrator-cli', env: 'cli', level: 'silent' });
  try {
    const link = await NatsLink.connect({ servers: config.nats.servers, auth: config.nats.auth, name: `at-orchestrator-cli-${name}`, log, timeoutMs });
    return { ok: true, config, link };
  } catch (err) {
    if (err instanceof ConfigError) return { ok: false, code: EXIT.usage, message: `invalid configuration: ${err.message}` };
    return { ok: false, code: EXIT.unreachable, message: redactUrl((err as Error).message) };
  }
}
