import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, redactUrl, type OrchestratorConfig } from '@at-orchestrator/contracts';
import { NatsLink, createLogger } from '@at-orchestrator/runtime';
import { DecisionSink, REALISTIC_MIX, SimulatedAgents } from '@at-orchestrator/sim';
import type { Command } from '../command.js';

export const simCommand: Command = {
  name: 'sim',
  summary: 'simulated agents (sim agents) or a decision sink (sim sink)',
  usage: [
    'Usage: at-orchestrator sim agents [--rate N] [--count N] [--seed N]',
    '       at-orchestrator sim sink',
    '',
    '  agents   publish synthetic momentum/risk/correlation signals on signals.enriched.<agent>',
    '           (--rate correlations per second, default 20; --count stop after N; realistic mix:',
    '           some blocked, some late, some missing an agent, a little garbage)',
    '  sink     print each decision from orchestrated.decision and a count every 5 s',
    '',
    'NATS_URL selects the broker (default nats://127.0.0.1:4222); NATS_USER/NATS_PASSWORD, NATS_TOKEN,',
    'NATS_NKEY_SEED_FILE, NATS_CREDS_FILE and NATS_TLS_* authenticate it, as for the worker.',
    'Exit codes: 0 done, 1 NATS unreachable or refused the credentials, 2 bad usage or configuration.',
  ].join('\n'),
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: { rate: { type: 'string', default: '20' }, count: { type: 'string' }, seed: { type: 'string' } },
    });
    const mode = positionals[0];
    const fail = (line: string): number => {
      process.stderr.write(`at-orchestrator sim: ${line}\n`);
      return 2;
    };
    const rate = Number(values.rate);
    if (mode !== 'agents' && mode !== 'sink') {
      process.stderr.write(`at-orchestrator sim: expected "agents" or "sink", got ${JSON.stringify(mode ?? '')}\n`);
      return 2;
    }
    if (!Number.isFinite(rate) || rate <= 0) {
      process.stderr.write(`at-orchestrator sim: --rate=${JSON.stringify(values.rate)} is not valid: expected a positive number\n`);
      return 2;
    }
    let config: OrchestratorConfig;
    try {
      config = loadConfig(process.env);
    } catch (err) {
      if (err instanceof ConfigError) return fail(`invalid configuration: ${err.message}`);
      throw err;
    }
    const log = createLogger({ service: 'at-orchestrator-sim', env: 'sim', level: config.logLevel });
    let nats: NatsLink;
    try {
      nats = await NatsLink.connect({ servers: config.nats.servers, auth: config.nats.auth, name: `sim-${mode}`, log });
    } catch (err) {
      if (err instanceof ConfigError) return fail(`invalid configuration: ${err.message}`);
      process.stderr.write(`at-orchestrator sim: ${redactUrl((err as Error).message)}\n`);
      return 1;
    }
    const stop = new AbortController();
    process.once('SIGINT', () => stop.abort());
    process.once('SIGTERM', () => stop.abort());
    if (mode === 'agents') {
      const agents = new SimulatedAgents(nats.nc);
      const options: Parameters<SimulatedAgents['run']>[0] = { rate, mix: REALISTIC_MIX, signal: stop.signal };
      if (values.count !== undefined) options.count = Number(values.count);
      if (values.seed !== undefined) options.seed = Number(values.seed);
      await agents.run(options);
      log.info({ published: agents.published, failed: agents.failed }, 'agents done');
    } else {
      const sink = new DecisionSink(nats.nc, (d, dup) => {
        process.stdout.write(
          `${d.corr_id} ${d.status.padEnd(8)} ${d.decision.action.padEnd(8)} ${(d.decision.direction ?? '').padEnd(7)} size=${d.decision.size ?? '-'} conf=${d.confidence.toFixed(3)} latency=${d.latency_ms}ms${dup ? ' DUPLICATE' : ''}\n`,
        );
      });
      sink.start();
      const timer = setInterval(() => log.info(sink.counts, 'decisions so far'), 5_000);
      await new Promise<void>((resolve) => stop.signal.addEventListener('abort', () => resolve(), { once: true }));
      clearInterval(timer);
      await sink.stop();
    }
    await nats.close();
    return 0;
  },
};
