/** Subjects, stream names and Redis keys: the names other services and operators rely on. */

export const SIGNAL_SUBJECT_PREFIX = 'signals.enriched';
export const SIGNAL_SUBJECTS = `${SIGNAL_SUBJECT_PREFIX}.>`;
export const signalSubject = (agent: string): string => `${SIGNAL_SUBJECT_PREFIX}.${agent}`;

/**
 * What subscribers see: a decision on orchestrated.decision and its fan-out copies on
 * orchestrated.<channel>. Workers never publish there: the decisions stream republishes each message
 * it stores, once, from the stored subjects below (docs/delivery.md).
 */
export const DECISION_SUBJECT = 'orchestrated.decision';
export const ORCHESTRATED_SUBJECTS = 'orchestrated.>';
export const channelSubject = (channel: string): string => `orchestrated.${channel}`;

/**
 * Where workers publish decisions (JetStream, Nats-Msg-Id = corr_id): the decisions stream stores
 * these subjects and republishes each stored message onto orchestrated.<same tail>. A publish the
 * duplicate window drops is never stored, so it never reaches a subscriber. JetStream consumers of the
 * decisions stream read these subjects.
 */
export const STORED_DECISION_PREFIX = 'orchestrator.decided';
export const STORED_DECISION_SUBJECTS = `${STORED_DECISION_PREFIX}.>`;
export const STORED_DECISION_SUBJECT = `${STORED_DECISION_PREFIX}.decision`;
export const storedChannelSubject = (channel: string): string => `${STORED_DECISION_PREFIX}.${channel}`;
/** The decisions stream's RePublish: every stored subject onto the subject subscribers listen to. */
export const DECISION_REPUBLISH = { src: STORED_DECISION_SUBJECTS, dest: ORCHESTRATED_SUBJECTS } as const;

export const DLQ_SUBJECT = 'orchestrator.dlq';

/** Redis keys. All start with the key prefix so that one Redis can hold several clusters. */
/**
 * The state keys (docs/cluster.md, "Key layout"). Every key of a correlation or a partition carries the
 * hash tag of its partition, `{p<n>}`, so that the keys a script uses together hash to one slot and
 * Redis Cluster can shard them by partition: `<prefix>:{p17}:signals:<corr_id>`. A correlation's
 * partition is partitionOf(corr_id, partitions): build RedisKeys with the cluster's PARTITIONS.
 */
export class RedisKeys {
  constructor(
    readonly prefix = 'orchestrator',
    readonly partitions = DEFAULT_PARTITIONS,
  ) {}
  /** `<prefix>:{p<partition>}`: what every key of the partition starts with (one hash slot). */
  slot(partition: number): string {
    return `${this.prefix}:{p${partition}}`;
  }
  /** The partition of a correlation (its keys' hash tag). */
  partitionOf(corrId: string): number {
    return partitionOf(corrId, this.partitions);
  }
  /** Hash agent → original signal JSON, TTL STATE_TTL_SECONDS. */
  signals(corrId: string): string {
    return `${this.slot(this.partitionOf(corrId))}:signals:${corrId}`;
  }
  /** Done-marker: set once when a correlation is decided, TTL IDEMPOTENCY_TTL_SEC. */
  done(corrId: string): string {
    return `${this.slot(this.partitionOf(corrId))}:done:${corrId}`;
  }
  /** Agents that reported after the decision, TTL IDEMPOTENCY_TTL_SEC. */
  late(corrId: string): string {
    return `${this.slot(this.partitionOf(corrId))}:late:${corrId}`;
  }
  /**
   * Redlock resource guarding a correlation while it is decided. It lives on the REDLOCK_URLS
   * masters, never in the state Redis, and no script uses it with another key: no hash tag.
   */
  lock(corrId: string): string {
    return `${this.prefix}:lock:${corrId}`;
  }
  /** Sorted set of open correlations of a partition, scored by their decision deadline (ms). */
  open(partition: number): string {
    return `${this.slot(partition)}:open`;
  }
  /** The partition's owner epoch (fencing token), moved on at every change of owner. */
  epoch(partition: number): string {
    return `${this.slot(partition)}:epoch`;
  }
  /**
   * The newest leader epoch that has touched the partition (Redis Cluster only): a partition's epoch
   * moves on only under a leader epoch at least this one, and a new leader raises it in every
   * partition before its first commit (docs/cluster.md, "Fencing per slot").
   */
  leaderEpoch(partition: number): string {
    return `${this.slot(partition)}:leader-epoch`;
  }
}

/** PARTITIONS' default (config-env.ts): what a RedisKeys built without a partition count assumes. */
export const DEFAULT_PARTITIONS = 64;

/**
 * The partition of a correlation: FNV-1a (32 bit) of the UTF-8 bytes of corr_id, modulo the
 * partition count. Every process computes it the same way, so it lives here.
 */
export function partitionOf(corrId: string, partitions: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < corrId.length; i++) {
    let code = corrId.charCodeAt(i);
    if (code < 0x80) {
      hash = Math.imul(hash ^ code, 0x01000193);
      continue;
    }
    // Non-ASCII: hash the UTF-8 encoding so that other languages agree on the partition.
    if (code >= 0xd800 && code <= 0xdbff && i + 1 < corrId.length) {
      const low = corrId.charCodeAt(i + 1);
      if (low >= 0xdc00 && low <= 0xdfff) {
        code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
        i++;
      }
    }
    const bytes =
      code < 0x800
        ? [0xc0 | (code >> 6), 0x80 | (code & 63)]
        : code < 0x10000
          ? [0xe0 | (code >> 12), 0x80 | ((code >> 6) & 63), 0x80 | (code & 63)]
          : [0xf0 | (code >> 18), 0x80 | ((code >> 12) & 63), 0x80 | ((code >> 6) & 63), 0x80 | (code & 63)];
    for (const b of bytes) hash = Math.imul(hash ^ b, 0x01000193);
  }
  return (hash >>> 0) % partitions;
}
