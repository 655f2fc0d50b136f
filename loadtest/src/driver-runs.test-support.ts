import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { main } from './cli.js';

/**
 * The driver's integration tests run it in-process against a target on private servers; these are
 * their shared pieces. Never built: tests only (tsconfig.tests.json).
 */

/** The part of a result file every run is checked on; each test's own type adds what else it reads. */
export interface CheckedResult {
  problems: string[];
  result: { totals: Record<string, number>; target_failures: string[] };
}

/** Runs the driver with `args`, its result file in `dir/<name>.json`; the exit code and the parsed file. */
export async function runDriver<R extends CheckedResult>(dir: string, name: string, args: readonly string[]): Promise<{ code: number; r: R }> {
  const out = join(dir, `${name}.json`);
  const code = await main([...args, '--out', out]);
  return { code, r: JSON.parse(readFileSync(out, 'utf8')) as R };
}

/** A clean run: no problem, no target failure, every correlation decided once as the seed rules say, exit 0. */
export function expectCleanRun({ code, r }: { code: number; r: CheckedResult }): void {
  expect(r.problems).toEqual([]);
  expect(r.result.target_failures).toEqual([]);
  expect(r.result.totals).toMatchObject({ lost: 0, duplicates: 0, mismatches: 0, early: 0, publish_errors: 0, unfinished: 0 });
  expect(r.result.totals.decided).toBe(r.result.totals.started);
  expect(code).toBe(0);
}
