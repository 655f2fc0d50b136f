import { Counter, type Registry } from 'prom-client';
import type { ControlKind, RefusalReason } from './control-seal.js';
import type { Logger } from './logger.js';

const METRIC = 'orchestrator_control_refused_total';
/** Sources logged at most once each; past this many, new sources are counted but not logged. */
const MAX_LOGGED_SOURCES = 1_000;

/**
 * Counts and logs control messages refused for want of a valid proof: the counter
 * `orchestrator_control_refused_total{kind,reason}` (both labels bounded), and one warning per source
 * (its sender id, or the subject when it named none), so a flood of forgeries cannot flood the log.
 * A worker embedding a coordinator shares one registry: the counter is registered once.
 */
export class ControlRefusals {
  private readonly counter: Counter<'kind' | 'reason'>;
  private readonly logged = new Set<string>();
  private saturated = false;

  constructor(
    registry: Registry,
    private readonly log: Logger,
  ) {
    const existing = registry.getSingleMetric(METRIC);
    this.counter =
      existing instanceof Counter
        ? (existing as Counter<'kind' | 'reason'>)
        : new Counter({
            name: METRIC,
            help: 'Control messages refused because their proof was missing or invalid (docs/security.md), by kind and reason',
            labelNames: ['kind', 'reason'],
            registers: [registry],
          });
  }

  refuse(kind: ControlKind, reason: RefusalReason, source: string): void {
    this.counter.inc({ kind, reason });
    const key = `${kind}\n${source}`;
    if (this.logged.has(key)) return;
    if (this.logged.size >= MAX_LOGGED_SOURCES) {
      if (!this.saturated) this.log.warn({ kind, reason }, `control messages refused from more than ${MAX_LOGGED_SOURCES} sources; further sources are counted, not logged`);
      this.saturated = true;
      return;
    }
    this.logged.add(key);
    // The source is a sender id or a subject, never a secret; shortened, since a forger chooses it.
    this.log.warn({ kind, reason, source: source.slice(0, 128) }, 'control message refused (first from this source; further ones are counted in orchestrator_control_refused_total)');
  }
}
