/**
 * Process warnings seen during a test file: Node's own (`process.on('warning')`, collected by
 * test/setup/no-warnings.ts) and those a spawned at-orchestrator process printed on stderr
 * (collected by CliProcess). A warning such as MaxListenersExceededWarning means a listener, timer
 * or handle leaks per operation; the setup file fails the test that was running when one arrived.
 */

const seen: string[] = [];

/** `(node:1234) MaxListenersExceededWarning: …` or `(node:1234) [DEP0005] DeprecationWarning: …` */
const WARNING_LINE = /^\(node:\d+\) (?:\[[A-Z]+\d+\] )?\w*Warning: /;

/** Whether a line of a Node process's stderr is a process warning. */
export function isWarningLine(line: string): boolean {
  return WARNING_LINE.test(line);
}

export function recordWarning(source: string, text: string): void {
  seen.push(`${source}: ${text}`);
}

/** The warnings recorded since the last call, which are forgotten. */
export function takeWarnings(): string[] {
  return seen.splice(0);
}
