import { ChildService } from '../child-service.js';
import { LOADTEST_DIR } from '../package-dir.js';
import type { TargetContext } from './target.js';

export interface ScriptProcessOptions {
  /** The process's label in logs, failures and CPU figures. */
  readonly label: string;
  /** The program, relative to the loadtest package (e.g. "baseline/seed-orchestrator.ts"). */
  readonly script: string;
  /** The variable whose Node options are added in front (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"). */
  readonly nodeArgsVariable: string;
  /** Node options of its own, after those. */
  readonly nodeArgs?: readonly string[];
  /** Its environment beyond PATH and HOME. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** The line it prints once it consumes. */
  readonly readyLine: RegExp;
}

/**
 * The process of a target that is one loadtest program — the seed baseline, the echo floor, the
 * ladder — run via tsx from the package folder (so that `--import tsx` and the program's dependencies
 * resolve); `start()` resolves when it prints its ready line. Its exit during the run is reported to
 * the run as a target failure.
 */
export function scriptProcess(context: TargetContext, o: ScriptProcessOptions): ChildService {
  const extra = (process.env[o.nodeArgsVariable] ?? '').split(/\s+/).filter((a) => a !== '');
  const service = new ChildService(o.label, process.execPath, [...extra, ...(o.nodeArgs ?? []), '--import', 'tsx', o.script], {
    cwd: LOADTEST_DIR,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...o.env },
    readyLine: o.readyLine,
  });
  service.onUnexpectedExit = (info, tail) => context.onFailure(`${o.label} exited with ${info.signal ?? `code ${info.code}`} during the run:\n${tail}`);
  return service;
}
