import { afterAll, afterEach } from 'vitest';
import { recordWarning, takeWarnings } from '../helpers/process-warnings.js';

// Setup file of both vitest projects: a process warning in the test process, or on the stderr of an
// at-orchestrator process a test spawned, fails the test during which it arrived (or the file, if it
// arrived after its last test). The usual cause is a listener added per wait and never removed.

process.on('warning', (warning) => {
  recordWarning('test process', warning.stack ?? `${warning.name}: ${warning.message}`);
});

async function failOnWarnings(): Promise<void> {
  // Node emits 'warning' on a later tick than the call that caused it: let that tick run first.
  await new Promise((resolve) => setImmediate(resolve));
  const warnings = takeWarnings();
  if (warnings.length > 0) throw new Error(`process warning(s) during the test:\n${warnings.join('\n')}`);
}

afterEach(failOnWarnings);
afterAll(failOnWarnings);
