import type { Msg, NatsConnection, Subscription } from '@nats-io/nats-core';
import { ClusterSubjects, LeaderRequest, type LeaderReply } from '@at-orchestrator/contracts';
import type { ControlRefusals, ControlVerifier, Logger, RefusalReason } from '@at-orchestrator/runtime';
import type { DrainData, MoveData, PartitionsData, PauseData, PlanData, RebalanceData, StatusData, WorkersData } from './control-data.js';

/**
 * The documented error codes of the control API (docs/cluster.md, "Control API"). The CLI prints the
 * message and exits non-zero; scripts match on the code.
 */
export type ControlErrorCode =
  | 'BAD_REQUEST'
  | 'NO_SUCH_WORKER'
  | 'NO_SUCH_PARTITION'
  | 'WORKER_DRAINING'
  | 'WORKER_REFUSED'
  | 'NO_ELIGIBLE_WORKER'
  | 'NOT_LEADER'
  | 'UNAVAILABLE'
  | 'UNAUTHORIZED'
  | 'INTERNAL';

export class ControlError extends Error {
  constructor(
    readonly code: ControlErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ControlError';
  }
}

/** What the leader can be asked; each resolves to the reply's `data` or throws ControlError. */
export interface LeaderControl {
  readonly coordinatorId: string;
  readonly leaderEpoch: number;
  status(): Promise<StatusData>;
  workers(): Promise<WorkersData>;
  partitions(): Promise<PartitionsData>;
  plan(): Promise<PlanData>;
  rebalance(): Promise<RebalanceData>;
  drain(worker: string): Promise<DrainData>;
  move(partition: number, worker: string): Promise<MoveData>;
  pause(): Promise<PauseData>;
  resume(): Promise<PauseData>;
}

/** Commands that only read: allowed without the operator credential. Every other one changes something. */
export const READ_ONLY_COMMANDS: ReadonlySet<LeaderRequest['cmd']> = new Set(['status', 'workers', 'partitions', 'plan']);

/**
 * Whether a request carries the operator credential: its seal verified against OPERATOR_TOKEN, or
 * why not (said in the UNAUTHORIZED message, never with a secret).
 */
export type OperatorProof = { readonly verified: true } | { readonly verified: false; readonly why: string };

/**
 * Answers one LeaderRequest (already JSON-decoded) with a LeaderReply. Never throws. Actions (drain,
 * move, rebalance, pause, resume) need `operator` verified; read-only commands do not.
 */
export async function answerLeaderRequest(control: LeaderControl, raw: unknown, log: Logger, operator: OperatorProof): Promise<LeaderReply> {
  const parsed = LeaderRequest.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue === undefined || issue.path.length === 0 ? 'request' : issue.path.join('.');
    return failure('BAD_REQUEST', `bad control request: ${where}: ${issue?.message ?? 'invalid'}`);
  }
  const request = parsed.data;
  if (!operator.verified && !READ_ONLY_COMMANDS.has(request.cmd)) {
    return failure('UNAUTHORIZED', `${request.cmd} needs the operator credential: ${operator.why}`);
  }
  try {
    const data = await dispatch(control, request);
    return { ok: true, leader: control.coordinatorId, leader_epoch: control.leaderEpoch, data };
  } catch (err) {
    if (err instanceof ControlError) return failure(err.code, err.message);
    log.error({ err, cmd: request.cmd }, 'control request failed');
    return failure('INTERNAL', `${request.cmd} failed: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function dispatch(control: LeaderControl, request: LeaderRequest): Promise<unknown> {
  switch (request.cmd) {
    case 'status':
      return control.status();
    case 'workers':
      return control.workers();
    case 'partitions':
      return control.partitions();
    case 'plan':
      return control.plan();
    case 'rebalance':
      return control.rebalance();
    case 'drain':
      return control.drain(required(request.worker, 'drain needs a worker id'));
    case 'move':
      if (request.partition === undefined) throw new ControlError('BAD_REQUEST', 'move needs a partition number');
      return control.move(request.partition, required(request.worker, 'move needs a worker id'));
    case 'pause':
      return control.pause();
    case 'resume':
      return control.resume();
  }
}

function required(value: string | undefined, message: string): string {
  if (value === undefined || value.trim() === '') throw new ControlError('BAD_REQUEST', message);
  return value;
}

const NO_TOKEN = 'this leader has no OPERATOR_TOKEN, so operator actions are disabled (read-only commands still work)';
const WHY: Record<RefusalReason, string> = {
  unsigned: 'the request is not signed (set OPERATOR_TOKEN to the coordinators\' value)',
  malformed: 'the request\'s signature headers are malformed',
  unknown_key: 'the request is signed with another token than the leader\'s OPERATOR_TOKEN',
  bad_mac: 'the request\'s signature does not match it',
  stale: 'the request\'s timestamp is more than 30 s from the leader\'s clock',
  replay: 'the request was already received once (a replay)',
  sender_mismatch: 'the request names another sender than its signature',
};

function failure(code: ControlErrorCode, message: string): LeaderReply {
  return { ok: false, error: { code, message } };
}

/**
 * The leader's subscription to `orchestrator.ctl.leader`. Requests are answered one at a time, in
 * arrival order, so that two operators' commands never interleave inside the leader.
 */
export class ControlServer {
  private subscription: Subscription | undefined;
  private done: Promise<void> | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly control: LeaderControl,
    private readonly log: Logger,
    private readonly auth: {
      /** Checks seals against OPERATOR_TOKEN (none configured: nothing verifies). */
      readonly verifier: ControlVerifier;
      readonly refusals: ControlRefusals;
      readonly tokenConfigured: boolean;
    },
  ) {}

  start(): void {
    const subscription = this.nc.subscribe(ClusterSubjects.leader);
    this.subscription = subscription;
    this.done = (async () => {
      for await (const msg of subscription) await this.answer(msg);
    })().catch((err: unknown) => this.log.warn({ err }, 'control subscription ended'));
  }

  private async answer(msg: Msg): Promise<void> {
    let raw: unknown;
    try {
      raw = msg.json();
    } catch {
      raw = undefined;
    }
    const check = this.auth.verifier.verify('operator', msg.subject, msg.headers, msg.data);
    const operator: OperatorProof = check.ok ? { verified: true } : { verified: false, why: this.auth.tokenConfigured ? WHY[check.reason] : NO_TOKEN };
    const reply = await answerLeaderRequest(this.control, raw, this.log, operator);
    if (!check.ok && !reply.ok && reply.error.code === 'UNAUTHORIZED') this.auth.refusals.refuse('operator', check.reason, check.sender ?? msg.subject);
    if (msg.reply === undefined || msg.reply === '') return;
    try {
      msg.respond(JSON.stringify(reply));
    } catch (err) {
      this.log.warn({ err }, 'control reply not sent');
    }
  }

  /** Stops listening (a standby must not answer); idempotent. */
  async close(): Promise<void> {
    const subscription = this.subscription;
    this.subscription = undefined;
    if (subscription !== undefined && !subscription.isClosed()) subscription.unsubscribe();
    await this.done;
  }
}
