import { parseArgs } from 'node:util';
import type { LeaderRequest } from '@at-orchestrator/contracts';
import {
  compactRanges,
  requestLeader,
  type DrainData,
  type MoveData,
  type PartitionMove,
  type PartitionsData,
  type PauseData,
  type PlanData,
  type RebalanceData,
  type StatusData,
  type WorkersData,
} from '@at-orchestrator/coordinator';
import { EXIT, connectForCommand } from '../bus-connection.js';
import type { Command } from '../command.js';

/**
 * The operator commands: each one NATS request to the coordinator leader on orchestrator.ctl.leader,
 * printed as aligned text for people or as the reply's data (JSON) with --json.
 *
 * Exit codes: 0 done; 1 no leader answered, or NATS unreachable; 2 bad usage or configuration;
 * 3 the leader refused (the target does not exist, …; the reason's code is printed).
 */

const DEFAULT_TIMEOUT_MS = 3_000;

interface ControlSpec<D> {
  readonly cmd: LeaderRequest['cmd'];
  /** The command's name when it differs from the request it sends (`console` asks for `status`). */
  readonly name?: string;
  /** What --json prints (default: the reply's data). */
  json?(data: D): unknown;
  readonly summary: string;
  /** Positional arguments, in order. */
  readonly args: readonly ('worker' | 'partition')[];
  readonly description: readonly string[];
  render(data: D): string;
}

function controlCommand<D>(spec: ControlSpec<D>): Command {
  const name = spec.name ?? spec.cmd;
  const synopsis = ['at-orchestrator', name, ...spec.args.map((a) => `<${a}>`), '[--json] [--timeout MS]'].join(' ');
  return {
    name,
    summary: spec.summary,
    usage: [
      `Usage: ${synopsis}`,
      '',
      ...spec.description,
      '',
      '  --json          print the leader\'s reply data as JSON (for scripts)',
      `  --timeout MS    how long to wait for the leader (default ${DEFAULT_TIMEOUT_MS}; "2s" also works)`,
      '',
      'Talks to the coordinator leader over NATS (NATS_URL). Exit codes: 0 done, 1 no leader answered',
      '(or NATS unreachable), 2 bad usage or configuration, 3 refused by the leader (e.g. no such worker).',
      'The request is signed with OPERATOR_TOKEN when set; drain, move, rebalance, pause and resume need',
      'it (refused otherwise: UNAUTHORIZED, exit 3), status, workers, partitions and plan do not.',
    ].join('\n'),
    async run(argv) {
      const fail = (code: number, line: string): number => {
        process.stderr.write(`at-orchestrator ${name}: ${line}\n`);
        return code;
      };
      let parsed;
      try {
        parsed = parseArgs({ args: argv, allowPositionals: true, options: { json: { type: 'boolean', default: false }, timeout: { type: 'string' } } });
      } catch (err) {
        return fail(EXIT.usage, `${(err as Error).message}\nUsage: ${synopsis}`);
      }
      const { values, positionals } = parsed;
      if (positionals.length !== spec.args.length) {
        const expected = spec.args.length === 0 ? 'no arguments' : spec.args.map((a) => `<${a}>`).join(' ');
        return fail(EXIT.usage, `expected ${expected}, got ${positionals.length === 0 ? 'none' : positionals.map((p) => JSON.stringify(p)).join(' ')}\nUsage: ${synopsis}`);
      }
      const timeoutMs = parseTimeout(values.timeout);
      if (timeoutMs === undefined) return fail(EXIT.usage, `--timeout=${JSON.stringify(values.timeout)} is not valid: expected milliseconds (e.g. 3000) or seconds (e.g. 3s)`);
      const request: LeaderRequest = { cmd: spec.cmd };
      for (const [i, name] of spec.args.entries()) {
        const value = positionals[i] ?? '';
        if (name === 'partition') {
          if (!/^\d{1,9}$/.test(value)) return fail(EXIT.usage, `partition ${JSON.stringify(value)} is not valid: expected a partition number (0, 1, …)`);
          request.partition = Number(value);
        } else {
          request.worker = value;
        }
      }

      const connection = await connectForCommand(name, timeoutMs);
      if (!connection.ok) return fail(connection.code, connection.message);
      const { link } = connection;
      const operatorToken = connection.config.security.operatorToken;
      try {
        // Signed with OPERATOR_TOKEN when set: actions need it, read-only commands do not.
        const answer = await requestLeader(link.nc, request, timeoutMs, operatorToken);
        if (answer.kind === 'no-leader') return fail(EXIT.unreachable, answer.message);
        if (answer.kind === 'failed') return fail(EXIT.unreachable, `request to the leader failed: ${answer.message}`);
        const reply = answer.reply;
        if (!reply.ok) {
          if (values.json === true) process.stdout.write(`${JSON.stringify({ error: reply.error }, null, 2)}\n`);
          return fail(EXIT.refused, `${reply.error.message} (${reply.error.code})`);
        }
        const data = reply.data as D;
        process.stdout.write(values.json === true ? `${JSON.stringify(spec.json?.(data) ?? data, null, 2)}\n` : `${spec.render(data)}\n`);
        return EXIT.ok;
      } finally {
        await link.close();
      }
    },
  };
}

function parseTimeout(raw: string | undefined): number | undefined {
  if (raw === undefined) return DEFAULT_TIMEOUT_MS;
  const match = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(raw.trim());
  if (match === null) return undefined;
  const ms = Math.round(Number(match[1]) * (match[2] === 's' ? 1000 : 1));
  return ms >= 1 && ms <= 600_000 ? ms : undefined;
}

/** An aligned text table: two spaces between columns, numbers right-aligned. */
export function textTable(headers: readonly string[], rows: readonly (readonly (string | number | null)[])[]): string {
  const cells = rows.map((row) => row.map((cell) => (cell === null ? '-' : String(cell))));
  const numeric = headers.map((_, i) => rows.length > 0 && rows.every((row) => typeof row[i] === 'number' || row[i] === null));
  const widths = headers.map((header, i) => Math.max(header.length, ...cells.map((row) => (row[i] ?? '').length)));
  const line = (row: readonly string[]): string =>
    row
      .map((cell, i) => (numeric[i] === true ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...cells.map(line)].join('\n');
}

/** "key  value" lines, keys padded to one width. */
function keyValues(rows: readonly (readonly [string, string])[]): string {
  const width = Math.max(...rows.map(([key]) => key.length));
  return rows.map(([key, value]) => `${key.padEnd(width)}  ${value}`).join('\n');
}

const ranges = (partitions: readonly number[]): string => (partitions.length === 0 ? '-' : compactRanges([...partitions].sort((a, b) => a - b)));
const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
const PAUSED_NOTE = 'rebalancing is paused: joins, drains and rebalances wait (`at-orchestrator resume`); a dead worker\'s partitions still move';

function movesTable(moves: readonly PartitionMove[]): string {
  return textTable(['PARTITION', 'FROM', 'TO'], moves.map((m) => [m.partition, m.from ?? '(unowned)', m.to ?? '(unowned)']));
}

export const statusCommand = controlCommand<StatusData>({
  cmd: 'status',
  summary: 'the cluster at a glance: leader, epoch, workers, partitions per worker, lag',
  args: [],
  description: ['Shows the coordinator leader and its epoch, the assignment table\'s version and phases, whether', 'rebalancing is paused, the ingest backlog, and every worker with its partition count and load.'],
  render(data) {
    const c = data.counts;
    const head = keyValues([
      ['leader', `${data.coordinator} (leader epoch ${data.leader_epoch})`],
      ['assignment', `version ${data.table_version}: ${plural(data.partitions, 'partition')}, ${c.owned} owned, ${c.revoking} revoking, ${c.unowned} unowned; ${plural(data.handoffs_in_flight, 'handoff')} in flight`],
      ['rebalancing', data.paused ? 'paused by an operator (dead workers\' partitions still move)' : data.frozen === null ? 'active' : `frozen: ${data.frozen}`],
      ['lag', data.lag === null ? 'unknown (JetStream did not answer)' : `${data.lag.pending} pending, ${data.lag.ack_pending} unacknowledged on ${data.lag.stream}/${data.lag.durable}`],
      ['console', data.console_url ?? 'none (the leader serves no HTTP)'],
    ]);
    const workers =
      data.workers.length === 0
        ? 'no live workers'
        : textTable(
            ['WORKER', 'STATE', 'PARTITIONS', 'LOAD', 'CAPACITY', 'VERSION'],
            data.workers.map((w) => [w.id, w.state, w.partitions, w.load, w.capacity, w.version]),
          );
    return `${head}\n\n${workers}`;
  },
});

export const workersCommand = controlCommand<WorkersData>({
  cmd: 'workers',
  summary: 'the live workers (and gone owners): state, partitions, load, capacity, lease',
  args: [],
  description: ['Lists every worker with a live heartbeat, and any worker still named as an owner after its', 'heartbeat expired (state gone), with the partitions it owns.'],
  render(data) {
    if (data.workers.length === 0) return 'no live workers';
    return textTable(
      ['WORKER', 'STATE', 'PARTITIONS', 'LOAD', 'CAPACITY', 'LEASE MS', 'VERSION', 'STARTED', 'OWNS'],
      data.workers.map((w) => [
        w.id,
        w.drain_requested && w.state !== 'gone' ? 'draining (requested)' : w.state,
        w.partitions.length,
        w.load,
        w.capacity,
        w.lease_left_ms,
        w.version,
        w.started_at,
        ranges(w.partitions) + (w.pinned.length > 0 ? ` (pinned ${ranges(w.pinned)})` : ''),
      ]),
    );
  },
});

export const partitionsCommand = controlCommand<PartitionsData>({
  cmd: 'partitions',
  summary: 'every partition: owner, epoch, phase, open correlations, oldest open',
  args: [],
  description: [
    'Lists the assignment table: each partition\'s owner, its epoch (the fencing token), its phase',
    '(owned, revoking, unowned), the next owner while revoking, any operator pin, and from the owner\'s last',
    'heartbeat the correlations it holds open for the partition and how old the oldest is.',
  ],
  render(data) {
    return textTable(
      ['PARTITION', 'OWNER', 'EPOCH', 'PHASE', 'NEXT', 'PINNED', 'OPEN', 'OLDEST OPEN'],
      data.partitions.map((p) => [p.partition, p.owner, p.epoch, p.phase, p.next, p.pinned_to, p.open, p.oldest_open_ms === null ? null : formatAge(p.oldest_open_ms)]),
    );
  },
});

export const consoleCommand = controlCommand<StatusData>({
  cmd: 'status',
  name: 'console',
  summary: 'print the address of the leader\'s web console',
  args: [],
  description: [
    'Prints where the coordinator leader serves its console (a live partition map, workers, the plan,',
    'and actions behind OPERATOR_TOKEN): CONSOLE_URL when set, else http://<hostname>:<HTTP_PORT>/console.',
    'Every coordinator serves the same view; behind a port-forward use your local address instead.',
  ],
  json: (data) => ({ leader: data.coordinator, leader_epoch: data.leader_epoch, console_url: data.console_url }),
  render: (data) => data.console_url ?? `the leader ${data.coordinator} serves no console (it runs embedded in a worker without HTTP); open a standalone coordinator's /console`,
});

function formatAge(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)}ms` : ms < 120_000 ? `${(ms / 1000).toFixed(1)}s` : `${Math.round(ms / 60_000)}m`;
}

export const planCommand = controlCommand<PlanData>({
  cmd: 'plan',
  summary: 'what a rebalance would move now (a dry run: changes nothing)',
  args: [],
  description: ['Asks the leader to plan the assignment from the live workers, drains and pins, and shows what', 'would move, per worker. Nothing changes; `rebalance` applies it.'],
  render(data) {
    const lines = [data.text];
    if (data.paused && data.moves.length > 0) lines.push('', PAUSED_NOTE, '`at-orchestrator rebalance` applies this plan now.');
    if (data.deferred.length > 0) lines.push('', `${plural(data.deferred.length, 'move')} would still wait: no other worker may take them`);
    return lines.join('\n');
  },
});

export const rebalanceCommand = controlCommand<RebalanceData>({
  cmd: 'rebalance',
  summary: 'apply the plan now (even while paused); prints the moves started',
  args: [],
  description: ['Applies the plan now, even while rebalancing is paused. Each move is a cooperative handoff', '(revoke → released → owned at a new epoch) that completes in the background.'],
  render(data) {
    if (data.moves.length === 0) return data.deferred.length === 0 ? 'nothing to move: the assignment is balanced' : `nothing can move: ${plural(data.deferred.length, 'move')} wait for another worker`;
    return `${plural(data.moves.length, 'partition')} moving:\n${movesTable(data.moves)}`;
  },
});

export const drainCommand = controlCommand<DrainData>({
  cmd: 'drain',
  summary: 'move every partition off a worker, then tell it to shut down',
  args: ['worker'],
  description: ['Marks the worker draining (kept in Redis, so a new leader remembers): its partitions are handed', 'off to the other workers, and once it owns none it is told to shut down (it exits 0).'],
  render(data) {
    const line = data.already_draining
      ? `${data.worker} is already draining: ${plural(data.partitions, 'partition')} left`
      : `draining ${data.worker}: ${plural(data.partitions, 'partition')} move to other workers; it is told to shut down once it owns none`;
    return data.paused ? `${line}\n${PAUSED_NOTE}` : line;
  },
});

export const moveCommand = controlCommand<MoveData>({
  cmd: 'move',
  summary: 'pin a partition to a worker (it moves there and stays)',
  args: ['partition', 'worker'],
  description: ['Pins the partition to the worker: it is handed off there now (even while paused) and stays while', 'the worker lives; the other partitions rebalance around it.'],
  render(data) {
    return data.from === data.worker
      ? `partition ${data.partition} is on ${data.worker} already; pinned there`
      : `partition ${data.partition} pinned to ${data.worker} (was ${data.from ?? 'unowned'}); moving now`;
  },
});

export const pauseCommand = controlCommand<PauseData>({
  cmd: 'pause',
  summary: 'stop voluntary moves (joins, drains, rebalances); dead workers\' partitions still move',
  args: [],
  description: ['Pauses rebalancing (a flag in Redis): joins, drains and rebalances wait until `resume`. A dead', 'worker\'s partitions are still reassigned, so nothing is ever orphaned.'],
  render: () => PAUSED_NOTE.replace('is paused', 'paused'),
});

export const resumeCommand = controlCommand<PauseData>({
  cmd: 'resume',
  summary: 'resume rebalancing after pause',
  args: [],
  description: ['Resumes rebalancing: moves that waited are applied at the leader\'s next tick.'],
  render: () => 'rebalancing resumed',
});

export const CONTROL_COMMANDS: readonly Command[] = [
  statusCommand,
  workersCommand,
  partitionsCommand,
  planCommand,
  rebalanceCommand,
  drainCommand,
  moveCommand,
  pauseCommand,
  resumeCommand,
  consoleCommand,
];
