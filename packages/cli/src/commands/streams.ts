import { parseArgs } from 'node:util';
import { OrchestratorError, redactUrl } from '@at-orchestrator/contracts';
import { requestLeader } from '@at-orchestrator/coordinator';
import { migrateDecisionStream } from '@at-orchestrator/runtime';
import { EXIT, connectForCommand } from '../bus-connection.js';
import type { Command } from '../command.js';

const USAGE = [
  'Usage: at-orchestrator streams migrate [--keep-as NAME] [--force]',
  '',
  'Turns a decisions stream (NATS_DECISION_STREAM) of cluster protocol 1 — it stored orchestrated.*',
  'itself — into the current layout: it stores orchestrator.decided.* and republishes each stored',
  'decision once onto orchestrated.* (docs/delivery.md). nats-server cannot add that to a stream in',
  'place, so the stream is recreated under its own name with the same limits and replicas, after its',
  'messages were copied into NAME (default <stream>-protocol1), where they stay readable.',
  '',
  'Stop every worker and coordinator first: the command refuses while a coordinator leader answers',
  'on orchestrator.ctl.leader (a running cluster), unless --force. A stream already in the current',
  'layout, or absent (the workers create it), is left alone.',
  '',
  'Exit codes: 0 done or nothing to do, 1 NATS unreachable or the copy timed out, 2 bad usage or',
  'configuration, 3 refused (a cluster running, a stream that is not ours, NAME taken).',
].join('\n');

/** `at-orchestrator streams migrate`: the one-off stream change of cluster protocol 2. */
export const streamsCommand: Command = {
  name: 'streams',
  summary: 'migrate the decisions stream to the republishing layout (once, workers stopped)',
  usage: USAGE,
  async run(argv) {
    const fail = (code: number, line: string): number => {
      process.stderr.write(`at-orchestrator streams: ${line}\n`);
      return code;
    };
    let parsed;
    try {
      parsed = parseArgs({ args: argv, allowPositionals: true, options: { 'keep-as': { type: 'string' }, force: { type: 'boolean', default: false } } });
    } catch (err) {
      return fail(EXIT.usage, `${(err as Error).message}\n${USAGE}`);
    }
    const [action, ...rest] = parsed.positionals;
    if (action !== 'migrate' || rest.length > 0) return fail(EXIT.usage, `expected "migrate", got ${JSON.stringify(parsed.positionals.join(' '))}\n${USAGE}`);
    const keepAs = parsed.values['keep-as'];
    if (keepAs !== undefined && !/^[A-Za-z0-9_-]{1,200}$/.test(keepAs)) return fail(EXIT.usage, `--keep-as=${JSON.stringify(keepAs)} is not a stream name: letters, digits, "_" and "-"`);

    const connection = await connectForCommand('streams', 5_000);
    if (!connection.ok) return fail(connection.code, connection.message);
    const { link, config } = connection;
    try {
      if (parsed.values.force !== true) {
        // Workers of the old build publish on orchestrated.* themselves: while one runs, a decision it
        // publishes after the migration reaches core subscribers without being stored. Every worker
        // runs a coordinator candidate or sits beside one, so a leader that answers means a running cluster.
        const answer = await requestLeader(link.nc, { cmd: 'status' }, 2_000);
        if (answer.kind !== 'no-leader') {
          const who = answer.kind === 'reply' && answer.reply.ok ? `coordinator ${answer.reply.leader} leads` : 'a coordinator answered';
          return fail(EXIT.refused, `the cluster is running (${who} on orchestrator.ctl.leader): stop every worker and coordinator, then run this again; --force skips the check`);
        }
      }
      const result = await migrateDecisionStream(link.nc, config, { keepAs, say: (line) => process.stdout.write(`${line}\n`) });
      const stream = config.nats.decisionStream;
      if (result.kind === 'absent') process.stdout.write(`stream ${stream} does not exist: nothing to migrate (workers create it in the current layout)\n`);
      else if (result.kind === 'current') process.stdout.write(`stream ${stream} is already in the current layout: nothing to do\n`);
      else process.stdout.write(`migrated ${stream}${result.keptAs === undefined ? ' (it was empty)' : `; its ${result.copied} earlier message(s) are in ${result.keptAs}`}\n`);
      return EXIT.ok;
    } catch (err) {
      if (err instanceof OrchestratorError) return fail(err.code === 'TIMEOUT' ? EXIT.unreachable : EXIT.refused, err.message);
      return fail(EXIT.unreachable, redactUrl((err as Error).message));
    } finally {
      await link.close();
    }
  },
};
