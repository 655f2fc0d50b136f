export { run } from './cli.js';
export type { Command } from './command.js';
