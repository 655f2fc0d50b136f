import type { AssignmentPlan } from './plan-assignment.js';

/** One worker's part in a plan, for the CLI's `plan` dry run (table rows and `--json`). */
export interface WorkerPlanSummary {
  readonly workerId: string;
  /** `gone`: named as an owner in the current assignment but no longer live. */
  readonly status: 'live' | 'draining' | 'gone';
  /** Partitions it holds now (in the current assignment) and after the plan. */
  readonly before: number;
  readonly after: number;
  /** Partitions it receives / gives up, ascending. */
  readonly gains: readonly number[];
  readonly losses: readonly number[];
}

/** Per-worker view of a plan: every live worker (by id), then gone owners that lose partitions (by id). */
export function describePlan(plan: AssignmentPlan): WorkerPlanSummary[] {
  const gains = new Map<string, number[]>();
  const losses = new Map<string, number[]>();
  for (const move of plan.moves) {
    if (move.to !== null) pushTo(gains, move.to, move.partition);
    if (move.from !== null) pushTo(losses, move.from, move.partition);
  }
  const after = new Map<string, number>();
  for (const owner of plan.target) if (owner !== null) after.set(owner, (after.get(owner) ?? 0) + 1);

  const summary = (workerId: string, status: WorkerPlanSummary['status']): WorkerPlanSummary => {
    const gained = gains.get(workerId) ?? [];
    const lost = losses.get(workerId) ?? [];
    const held = after.get(workerId) ?? 0;
    return { workerId, status, before: held - gained.length + lost.length, after: held, gains: gained, losses: lost };
  };
  const live = new Set(plan.quotas.map((quota) => quota.workerId));
  const gone = [...losses.keys()].filter((id) => !live.has(id)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return [
    ...plan.quotas.map((quota) => summary(quota.workerId, quota.draining ? 'draining' : 'live')),
    ...gone.map((id) => summary(id, 'gone')),
  ];
}

/**
 * The dry run as text, one line per worker, e.g.
 * `w4  0 → 16  +16 [0-3, 9, 12-22]`  or  `w2 (draining)  21 → 0  −21 [...]`.
 */
export function formatPlan(plan: AssignmentPlan): string {
  const rows = describePlan(plan);
  const width = Math.max(0, ...rows.map((row) => label(row).length));
  const lines = rows.map((row) => {
    const parts = [`${label(row).padEnd(width)}  ${row.before} → ${row.after}`];
    if (row.gains.length > 0) parts.push(`+${row.gains.length} [${compactRanges(row.gains)}]`);
    if (row.losses.length > 0) parts.push(`−${row.losses.length} [${compactRanges(row.losses)}]`);
    return parts.join('  ');
  });
  const moved = plan.moves.length;
  const header = `${moved} partition${moved === 1 ? '' : 's'} move (P=${plan.partitions}, ${plan.quotas.length} live worker${plan.quotas.length === 1 ? '' : 's'})`;
  const unapplied = plan.unappliedPins.map(
    (pin) => `pin ${pin.partition} → ${pin.worker} not applied: ${pin.reason.replaceAll('-', ' ')}`,
  );
  return [header, ...lines, ...unapplied].join('\n');
}

function label(row: WorkerPlanSummary): string {
  return row.status === 'live' ? row.workerId : `${row.workerId} (${row.status})`;
}

/** Ascending partitions → "0-3, 9, 12-22". */
export function compactRanges(sorted: readonly number[]): string {
  const ranges: string[] = [];
  let start: number | undefined;
  let previous: number | undefined;
  for (const partition of [...sorted, Number.NaN]) {
    if (previous !== undefined && partition === previous + 1) {
      previous = partition;
      continue;
    }
    if (start !== undefined && previous !== undefined) {
      ranges.push(start === previous ? String(start) : `${start}-${previous}`);
    }
    start = partition;
    previous = partition;
  }
  return ranges.join(', ');
}

function pushTo(map: Map<string, number[]>, key: string, value: number): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}
