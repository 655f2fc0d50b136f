#!/usr/bin/env node
import { run } from './cli.js';

// Commands close what they opened before they return; exiting here makes a forgotten handle
// (a stray timer, a half-open socket) unable to keep a finished command alive.
process.exit(await run(process.argv.slice(2)));
