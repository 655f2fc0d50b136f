export { run, type Command } from './cli.js';
