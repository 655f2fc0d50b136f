/**
 * One subcommand of the `at-orchestrator` bin. It lives apart from cli.ts, which lists every command,
 * so that the command files and the list that imports them do not import each other.
 */
export interface Command {
  name: string;
  summary: string;
  usage: string;
  /** Runs the command with the arguments after its name; resolves to the process exit code. */
  run(args: string[]): Promise<number>;
}
