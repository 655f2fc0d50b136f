import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  jetstreamManager,
  type JetStreamManager,
  type StreamConfig,
  type StreamInfo,
} from '@nats-io/jetstream';
import { nanos, type NatsConnection } from '@nats-io/nats-core';
import {
  DLQ_SUBJECT,
  OrchestratorError,
  SIGNAL_SUBJECTS,
  type OrchestratorConfig,
} from '@at-orchestrator/contracts';
import type { Logger } from './logger.js';
import { covers, decisionStreamConfig, decisionStreamLayout, decisionStreamLayoutError } from './decision-stream.js';

type WantedStream = Partial<StreamConfig> & {
  name: string;
  subjects: string[];
  /** Throws when an existing stream cannot serve (beyond covering the subjects). */
  check?: (info: StreamInfo) => void;
};

function isNotFound(err: unknown): boolean {
  return (
    err instanceof JetStreamApiError &&
    (err.code === JetStreamApiCodes.StreamNotFound || err.code === JetStreamApiCodes.ConsumerNotFound)
  );
}

/**
 * Creates a stream when it is absent; when present, checks that it covers the subject we need and
 * leaves its configuration alone (an operator's stream is never clobbered). Resolves with the
 * stream's replicas.
 */
async function ensureStream(jsm: JetStreamManager, { check, ...wanted }: WantedStream, log: Logger): Promise<number> {
  try {
    const info = await jsm.streams.info(wanted.name);
    check?.(info);
    const coversAll = wanted.subjects.every((s) => info.config.subjects?.some((have) => covers(have, s)));
    if (!coversAll) {
      throw new OrchestratorError(
        'CONFIG_INVALID',
        `JetStream stream ${wanted.name} exists with subjects [${(info.config.subjects ?? []).join(', ')}], which do not cover ${wanted.subjects.join(', ')}; fix the stream or choose another name`,
      );
    }
    if (wanted.max_bytes !== undefined && wanted.max_bytes > 0 && !(info.config.max_bytes > 0)) {
      log.warn({ stream: wanted.name }, 'stream present without a size limit (max_bytes); STREAM_MAX_BYTES applies only to streams the orchestrator creates');
    }
    const replicas = info.config.num_replicas || 1;
    if (wanted.num_replicas !== undefined && replicas !== wanted.num_replicas) {
      log.warn(
        { stream: wanted.name, replicas, stream_replicas: wanted.num_replicas },
        `stream present with ${replicas} replica(s), STREAM_REPLICAS=${wanted.num_replicas}; STREAM_REPLICAS applies only to streams the orchestrator creates (change an existing stream's replicas with the nats CLI: nats stream edit ${wanted.name} --replicas ${wanted.num_replicas})`,
      );
    }
    log.debug({ stream: wanted.name }, 'stream present');
    return replicas;
  } catch (err) {
    if (!isNotFound(err)) throw err;
    try {
      await jsm.streams.add({ storage: StorageType.File, retention: RetentionPolicy.Limits, ...wanted });
    } catch (addErr) {
      const replicas = wanted.num_replicas ?? 1;
      if (addErr instanceof JetStreamApiError && replicas > 1 && /replicas|non-clustered|no suitable peers|insufficient resources/i.test(addErr.message)) {
        throw new OrchestratorError(
          'CONFIG_INVALID',
          `JetStream cannot create stream ${wanted.name} with STREAM_REPLICAS=${replicas} (${addErr.message}); it needs a NATS cluster of at least ${replicas} JetStream servers with room for the stream: lower STREAM_REPLICAS or add servers`,
        );
      }
      if (addErr instanceof JetStreamApiError && wanted.max_bytes !== undefined && /insufficient (storage )?resources/i.test(addErr.message)) {
        throw new OrchestratorError(
          'CONFIG_INVALID',
          `JetStream cannot reserve STREAM_MAX_BYTES=${wanted.max_bytes} for stream ${wanted.name} (${addErr.message}); each of the three streams reserves it against the server's max_file_store: lower STREAM_MAX_BYTES or raise max_file_store`,
        );
      }
      throw addErr;
    }
    log.info({ stream: wanted.name, subjects: wanted.subjects, max_bytes: wanted.max_bytes, replicas: wanted.num_replicas ?? 1 }, 'stream created');
    return wanted.num_replicas ?? 1;
  }
}

/**
 * The streams and the shared ingest consumer the orchestrator needs: the signals stream
 * (NATS_STREAM on signals.enriched.>), the decisions stream (orchestrator.decided.>, with the duplicate
 * window that makes Nats-Msg-Id = corr_id one decision, republished onto orchestrated.>), the DLQ
 * stream, and the durable pull consumer.
 */
export async function ensureJetStreamTopology(nc: NatsConnection, config: OrchestratorConfig, log: Logger): Promise<void> {
  const jsm = await jetstreamManager(nc);
  // A full stream refuses new messages (discard new) rather than dropping old ones: the publisher
  // gets an error and retries (agents, decision emit, DLQ publish), nothing stored is lost silently.
  const limits: Partial<StreamConfig> = {
    ...(config.nats.streamMaxBytes > 0 ? { max_bytes: config.nats.streamMaxBytes, discard: DiscardPolicy.New } : {}),
    // STREAM_REPLICAS: an existing stream's replicas are checked (a warning), never changed.
    num_replicas: config.nats.streamReplicas,
  };
  const signalReplicas = await ensureStream(jsm, { name: config.nats.stream, subjects: [SIGNAL_SUBJECTS], max_age: nanos(24 * 3600 * 1000), ...limits }, log);
  await ensureStream(
    jsm,
    {
      ...decisionStreamConfig(config),
      ...limits,
      // Stores orchestrator.decided.* and republishes onto orchestrated.*: a stream of the older layout
      // (it stored orchestrated.* itself) is refused with the migration to run (docs/delivery.md).
      check: (info) => {
        if (decisionStreamLayout(info) !== 'current') throw decisionStreamLayoutError(config.nats.decisionStream, info);
      },
    },
    log,
  );
  await ensureStream(jsm, { name: config.nats.dlqStream, subjects: [DLQ_SUBJECT], max_age: nanos(7 * 24 * 3600 * 1000), ...limits }, log);

  const ackWait = nanos(config.nats.ackWaitMs);
  const maxAckPending = Math.max(config.nats.maxInFlight * 4, 20_000);
  try {
    const info = await jsm.consumers.info(config.nats.stream, config.nats.durable);
    if (info.config.deliver_subject !== undefined && info.config.deliver_subject !== '') {
      throw new OrchestratorError(
        'CONFIG_INVALID',
        `NATS_DURABLE=${config.nats.durable} names a push consumer on ${config.nats.stream}; the orchestrator needs a pull consumer (delete it or choose another name)`,
      );
    }
    const consumerReplicas = info.config.num_replicas || signalReplicas;
    if (consumerReplicas !== signalReplicas) {
      log.warn(
        { stream: config.nats.stream, durable: config.nats.durable, replicas: consumerReplicas, stream_replicas: signalReplicas },
        `consumer present with ${consumerReplicas} replica(s), its stream ${signalReplicas}; left as it is (a consumer created by the orchestrator follows its stream)`,
      );
    }
    // The durable is ours: keep its redelivery timing in line with ACK_WAIT_SEC (every worker agrees).
    const maxDeliver = config.nats.maxDeliver;
    if (info.config.ack_wait !== ackWait || info.config.max_ack_pending !== maxAckPending || info.config.max_deliver !== maxDeliver) {
      await jsm.consumers.update(config.nats.stream, config.nats.durable, { ack_wait: ackWait, max_ack_pending: maxAckPending, max_deliver: maxDeliver });
      log.info({ durable: config.nats.durable, ack_wait_ms: config.nats.ackWaitMs, max_deliver: maxDeliver }, 'consumer settings updated');
    }
  } catch (err) {
    if (!isNotFound(err)) throw err;
    await jsm.consumers.add(config.nats.stream, {
      durable_name: config.nats.durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: ackWait,
      max_ack_pending: maxAckPending,
      // Past it JetStream stops delivering and sends an advisory; the workers dead-letter the message.
      max_deliver: config.nats.maxDeliver,
      filter_subject: SIGNAL_SUBJECTS,
      max_waiting: 512,
      // 0 = the stream's replicas: the shared durable is as replicated as the signals it reads.
      num_replicas: 0,
    });
    log.info({ stream: config.nats.stream, durable: config.nats.durable }, 'consumer created');
  }
}
