import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  jetstreamManager,
  type JetStreamManager,
  type StreamConfig,
} from '@nats-io/jetstream';
import { nanos, type NatsConnection } from '@nats-io/nats-core';
import {
  DLQ_SUBJECT,
  ORCHESTRATED_SUBJECTS,
  OrchestratorError,
  SIGNAL_SUBJECTS,
  type OrchestratorConfig,
} from '@at-orchestrator/contracts';
import type { Logger } from './logger.js';

function isNotFound(err: unknown): boolean {
  return (
    err instanceof JetStreamApiError &&
    (err.code === JetStreamApiCodes.StreamNotFound || err.code === JetStreamApiCodes.ConsumerNotFound)
  );
}

/**
 * Creates a stream when it is absent; when present, checks that it covers the subject we need and
 * leaves its configuration alone (an operator's stream is never clobbered).
 */
async function ensureStream(jsm: JetStreamManager, wanted: Partial<StreamConfig> & { name: string; subjects: string[] }, log: Logger): Promise<void> {
  try {
    const info = await jsm.streams.info(wanted.name);
    const covers = wanted.subjects.every((s) => info.config.subjects?.some((have) => subjectCovers(have, s)));
    if (!covers) {
      throw new OrchestratorError(
        'CONFIG_INVALID',
        `JetStream stream ${wanted.name} exists with subjects [${(info.config.subjects ?? []).join(', ')}], which do not cover ${wanted.subjects.join(', ')}; fix the stream or choose another name`,
      );
    }
    log.debug({ stream: wanted.name }, 'stream present');
  } catch (err) {
    if (!isNotFound(err)) throw err;
    await jsm.streams.add({ storage: StorageType.File, retention: RetentionPolicy.Limits, ...wanted });
    log.info({ stream: wanted.name, subjects: wanted.subjects }, 'stream created');
  }
}

/** Whether a stream subject (possibly with wildcards) covers the subject filter we need. */
export function subjectCovers(have: string, need: string): boolean {
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

/**
 * The streams and the shared ingest consumer the orchestrator needs: the signals stream
 * (NATS_STREAM on signals.enriched.>), the decisions stream (orchestrated.>, with the duplicate
 * window that makes Nats-Msg-Id = corr_id one decision), the DLQ stream, and the durable pull consumer.
 */
export async function ensureJetStreamTopology(nc: NatsConnection, config: OrchestratorConfig, log: Logger): Promise<void> {
  const jsm = await jetstreamManager(nc);
  await ensureStream(jsm, { name: config.nats.stream, subjects: [SIGNAL_SUBJECTS], max_age: nanos(24 * 3600 * 1000) }, log);
  await ensureStream(
    jsm,
    {
      name: config.nats.decisionStream,
      subjects: [ORCHESTRATED_SUBJECTS],
      duplicate_window: nanos(config.nats.decisionDedupWindowMs),
      max_age: nanos(7 * 24 * 3600 * 1000),
    },
    log,
  );
  await ensureStream(jsm, { name: config.nats.dlqStream, subjects: [DLQ_SUBJECT], max_age: nanos(7 * 24 * 3600 * 1000) }, log);

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
    // The durable is ours: keep its redelivery timing in line with ACK_WAIT_SEC (every worker agrees).
    if (info.config.ack_wait !== ackWait || info.config.max_ack_pending !== maxAckPending) {
      await jsm.consumers.update(config.nats.stream, config.nats.durable, { ack_wait: ackWait, max_ack_pending: maxAckPending });
      log.info({ durable: config.nats.durable, ack_wait_ms: config.nats.ackWaitMs }, 'consumer settings updated');
    }
  } catch (err) {
    if (!isNotFound(err)) throw err;
    await jsm.consumers.add(config.nats.stream, {
      durable_name: config.nats.durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: ackWait,
      max_ack_pending: maxAckPending,
      filter_subject: SIGNAL_SUBJECTS,
      max_waiting: 512,
    });
    log.info({ stream: config.nats.stream, durable: config.nats.durable }, 'consumer created');
  }
}
