import { JetStreamApiCodes, JetStreamApiError, RetentionPolicy, StorageType, jetstreamManager, type JetStreamManager, type StreamConfig, type StreamInfo } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { nanos } from '@nats-io/nats-core';
import { DECISION_REPUBLISH, DECISION_SUBJECT, OrchestratorError, STORED_DECISION_SUBJECTS, type OrchestratorConfig } from '@at-orchestrator/contracts';

/**
 * The decisions stream of cluster protocol 2: it stores what workers publish on orchestrator.decided.*
 * (Nats-Msg-Id = corr_id, so a second publish of a decision inside the duplicate window is dropped)
 * and republishes each stored message once onto orchestrated.* (RePublish). Only what was stored
 * reaches a subscriber, so a plain core subscriber never sees a decision twice (docs/delivery.md).
 */
export function decisionStreamConfig(config: OrchestratorConfig): Partial<StreamConfig> & { name: string; subjects: string[] } {
  return {
    name: config.nats.decisionStream,
    subjects: [STORED_DECISION_SUBJECTS],
    republish: { ...DECISION_REPUBLISH },
    duplicate_window: nanos(config.nats.decisionDedupWindowMs),
    max_age: nanos(7 * 24 * 3600 * 1000),
  };
}

export type DecisionStreamLayout = 'current' | 'protocol1' | 'foreign';

/**
 * Which layout an existing decisions stream has: `current` (stored subjects + the RePublish above),
 * `protocol1` (the layout before it: workers published on orchestrated.* and the stream stored that,
 * no RePublish; `at-orchestrator streams migrate` turns it into the current one), or `foreign`
 * (anything else: an operator's stream that is not ours to guess about).
 */
export function decisionStreamLayout(info: Pick<StreamInfo, 'config'>): DecisionStreamLayout {
  const { subjects = [], republish } = info.config;
  const storesOurs = subjects.some((s) => covers(s, STORED_DECISION_SUBJECTS));
  if (storesOurs && republish?.src === DECISION_REPUBLISH.src && republish.dest === DECISION_REPUBLISH.dest && republish.headers_only !== true) return 'current';
  if (!storesOurs && republish === undefined && subjects.some((s) => covers(s, DECISION_SUBJECT))) return 'protocol1';
  return 'foreign';
}

/** The error a worker stops with when the decisions stream is not in the current layout. */
export function decisionStreamLayoutError(name: string, info: Pick<StreamInfo, 'config'>): OrchestratorError {
  const { subjects = [], republish } = info.config;
  const has = `subjects [${subjects.join(', ')}], ${republish === undefined ? 'no RePublish' : `RePublish ${republish.src} -> ${republish.dest}${republish.headers_only === true ? ' (headers only)' : ''}`}`;
  if (decisionStreamLayout(info) === 'protocol1') {
    return new OrchestratorError(
      'CONFIG_INVALID',
      `JetStream stream ${name} has the decision layout of cluster protocol 1 (${has}); this build publishes on ${STORED_DECISION_SUBJECTS} and needs the stream to republish onto ${DECISION_REPUBLISH.dest}: stop every worker, then run \`at-orchestrator streams migrate\` (docs/delivery.md, "Migrating the decisions stream")`,
    );
  }
  return new OrchestratorError(
    'CONFIG_INVALID',
    `JetStream stream ${name} exists with ${has}; the decisions stream must store ${STORED_DECISION_SUBJECTS} and republish ${DECISION_REPUBLISH.src} -> ${DECISION_REPUBLISH.dest} (a stream's RePublish cannot be changed in place): fix the stream or choose another NATS_DECISION_STREAM`,
  );
}

/** Whether a stream subject (possibly with wildcards) covers the subject filter we need. */
export function covers(have: string, need: string): boolean {
  const h = have.split('.');
  const n = need.split('.');
  for (let i = 0; i < h.length; i++) {
    const part = h[i];
    if (part === '>') return n.length > i;
    if (i >= n.length) return false;
    if (part === '*') {
      if (n[i] === '>') return false;
      continue;
    }
    if (part !== n[i]) return false;
  }
  return h.length === n.length;
}

export interface MigrationOptions {
  /** Where the protocol-1 decisions are kept (default `<stream>-protocol1`). */
  keepAs?: string;
  /** How long to wait for the copy (default 60 s). */
  copyTimeoutMs?: number;
  /** Called with a line for the operator at each step. */
  say?: (line: string) => void;
  /** Resolves after a short wait between two looks at the copy's progress (tests may shorten it). */
  pause?: () => Promise<void>;
}

export type MigrationResult =
  | { kind: 'absent' }
  | { kind: 'current' }
  | { kind: 'migrated'; keptAs: string | undefined; copied: number };

/**
 * Turns a protocol-1 decisions stream into the current layout. nats-server refuses to add RePublish
 * to an existing stream, so the stream is recreated under its own name: its messages are first copied
 * into `keepAs` (a stream that sources it, then stops sourcing: the old decisions stay readable there,
 * subjects and Nats-Msg-Id as they were), then it is deleted and created again with the same limits
 * and replicas, storing orchestrator.decided.* and republishing onto orchestrated.*. Run it with every
 * worker stopped: between the delete and the create no decision can be stored. A foreign layout or an
 * existing `keepAs` stream is refused and nothing is changed.
 */
export async function migrateDecisionStream(nc: NatsConnection, config: OrchestratorConfig, options: MigrationOptions = {}): Promise<MigrationResult> {
  const jsm = await jetstreamManager(nc);
  const name = config.nats.decisionStream;
  const say = options.say ?? (() => undefined);
  let info: StreamInfo;
  try {
    info = await jsm.streams.info(name);
  } catch (err) {
    if (isNotFound(err)) return { kind: 'absent' };
    throw err;
  }
  const layout = decisionStreamLayout(info);
  if (layout === 'current') return { kind: 'current' };
  if (layout === 'foreign') throw decisionStreamLayoutError(name, info);

  const keepAs = options.keepAs ?? `${name}-protocol1`;
  const messages = info.state.messages;
  const old = info.config;
  let keptAs: string | undefined;
  if (messages > 0) {
    const taken = await jsm.streams.info(keepAs).then(
      () => true,
      (err: unknown) => {
        if (isNotFound(err)) return false;
        throw err;
      },
    );
    if (taken) throw new OrchestratorError('CONFIG_INVALID', `stream ${keepAs} exists already; name another one with --keep-as (nothing was changed)`);
    say(`copying ${messages} decision(s) of ${name} into ${keepAs}`);
    await jsm.streams.add({
      name: keepAs,
      sources: [{ name }],
      storage: old.storage ?? StorageType.File,
      retention: RetentionPolicy.Limits,
      num_replicas: old.num_replicas || 1,
      max_age: old.max_age,
      ...(old.max_bytes > 0 ? { max_bytes: old.max_bytes } : {}),
    });
    const deadline = Date.now() + (options.copyTimeoutMs ?? 60_000);
    const pause = options.pause ?? (() => new Promise<void>((resolve) => setTimeout(resolve, 200)));
    for (;;) {
      const copy = await jsm.streams.info(keepAs);
      if (copy.state.messages >= messages) break;
      if (Date.now() > deadline) {
        throw new OrchestratorError(
          'TIMEOUT',
          `copied ${copy.state.messages} of ${messages} decision(s) into ${keepAs} before the timeout; ${name} is unchanged (delete ${keepAs} and run the migration again)`,
        );
      }
      // The copy is the server's (stream sourcing); there is no event to await, so look again shortly.
      await pause();
    }
    const copied = await jsm.streams.info(keepAs);
    await jsm.streams.update(keepAs, { ...copied.config, sources: [] });
    keptAs = keepAs;
    say(`copied: ${keepAs} holds ${copied.state.messages} message(s) and sources nothing any more`);
  }
  await jsm.streams.delete(name);
  await jsm.streams.add({
    ...decisionStreamConfig(config),
    storage: old.storage ?? StorageType.File,
    retention: old.retention ?? RetentionPolicy.Limits,
    num_replicas: old.num_replicas || 1,
    duplicate_window: old.duplicate_window,
    max_age: old.max_age,
    ...(old.max_bytes > 0 ? { max_bytes: old.max_bytes, discard: old.discard } : {}),
  });
  say(`recreated ${name}: stores ${STORED_DECISION_SUBJECTS}, republishes onto ${DECISION_REPUBLISH.dest}`);
  return { kind: 'migrated', keptAs, copied: messages };
}

function isNotFound(err: unknown): boolean {
  return err instanceof JetStreamApiError && (err.code === JetStreamApiCodes.StreamNotFound || err.code === JetStreamApiCodes.ConsumerNotFound);
}
