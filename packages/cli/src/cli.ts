import { CONTROL_COMMANDS } from './commands/control.js';
import { trainCommand } from './commands/train.js';
import { coordinatorCommand } from './commands/coordinator.js';
import { demoCommand } from './commands/demo.js';
import { dlqCommand } from './commands/dlq.js';
import { simCommand } from './commands/sim.js';
import { keysCommand } from './commands/keys.js';
import { streamsCommand } from './commands/streams.js';
import { workerCommand } from './commands/worker.js';
import type { Command } from './command.js';

const COMMANDS: Command[] = [workerCommand, coordinatorCommand, ...CONTROL_COMMANDS, dlqCommand, streamsCommand, keysCommand, demoCommand, simCommand, trainCommand];

function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'at-orchestrator — joins enriched agent signals by correlation ID and publishes one decision each.',
    '',
    'Usage: at-orchestrator <command> [options]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Run `at-orchestrator <command> --help` for a command\'s options.',
    'Configuration is read from environment variables; see README.md (Configuration).',
  ].join('\n');
}

/** Runs a command line; resolves to the process exit code. */
export async function run(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${mainHelp()}\n`);
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (command === undefined) {
    process.stderr.write(`at-orchestrator: unknown command ${JSON.stringify(name)}; expected one of ${COMMANDS.map((c) => c.name).join(', ')}\n`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${command.usage}\n`);
    return 0;
  }
  return command.run(rest);
}
