import type { LoadOptions } from './options.js';

/** What the target is asked to do at a moment of the run (market open adds an instance, faults kill one). */
export interface ScheduledAction {
  readonly atSec: number;
  readonly action: 'scale-up' | 'kill-one';
}

/**
 * A scenario as the driver runs it: open loop with a rate over time, or closed loop; latency is
 * grouped by the phase of each correlation's intended start ("warmup" is left out of the totals).
 */
export interface LoadProfile {
  readonly kind: 'open' | 'closed';
  readonly durationSec: number;
  /** Correlations per second at t seconds after the start (open loop). */
  rateAt(tSec: number): number;
  phaseAt(tSec: number): string;
  readonly phases: readonly string[];
  readonly actions: readonly ScheduledAction[];
}

export function profileFor(o: LoadOptions): LoadProfile {
  const warm = (t: number, phase: string): string => (t < o.warmupSec ? 'warmup' : phase);
  const actions: ScheduledAction[] = [];
  if (o.killAtSec !== undefined) actions.push({ atSec: o.killAtSec, action: 'kill-one' });
  switch (o.scenario) {
    case 'steady':
      return { kind: 'open', durationSec: o.durationSec, rateAt: () => o.rate, phaseAt: (t) => warm(t, 'steady'), phases: ['warmup', 'steady'], actions };
    case 'max':
      return { kind: 'closed', durationSec: o.durationSec, rateAt: () => 0, phaseAt: (t) => warm(t, 'max'), phases: ['warmup', 'max'], actions };
    case 'market-open': {
      const rampEnd = o.preSec + o.rampSec;
      const scaleAt = o.scaleAtSec ?? o.preSec + o.rampSec / 2;
      if (scaleAt >= 0) actions.push({ atSec: scaleAt, action: 'scale-up' });
      return {
        kind: 'open',
        durationSec: o.durationSec,
        rateAt: (t) => {
          if (t < o.preSec) return o.rate;
          if (t < rampEnd) return o.rate * (1 + ((o.rampFactor - 1) * (t - o.preSec)) / o.rampSec);
          return o.rate * o.rampFactor;
        },
        phaseAt: (t) => warm(t, t < o.preSec ? 'before' : t < rampEnd ? 'ramp' : 'after'),
        phases: ['warmup', 'before', 'ramp', 'after'],
        actions: actions.sort((a, b) => a.atSec - b.atSec),
      };
    }
    case 'soak': {
      // Drift compares the first and the last tenth of the time after warm-up.
      const span = o.durationSec - o.warmupSec;
      return {
        kind: 'open',
        durationSec: o.durationSec,
        rateAt: () => o.rate,
        phaseAt: (t) => warm(t, t < o.warmupSec + span / 10 ? 'early' : t >= o.durationSec - span / 10 ? 'late' : 'middle'),
        phases: ['warmup', 'early', 'middle', 'late'],
        actions,
      };
    }
  }
}

/**
 * Intended start times (seconds from the run's start) of an open-loop run: each correlation is due
 * 1/rate after the previous one, whatever happened to the previous one (no coordinated omission).
 */
export class ArrivalClock {
  private t = 0;
  private done = false;

  constructor(private readonly profile: Pick<LoadProfile, 'durationSec' | 'rateAt'>) {}

  next(): number | undefined {
    if (this.done) return undefined;
    const at = this.t;
    if (at >= this.profile.durationSec) {
      this.done = true;
      return undefined;
    }
    const rate = this.profile.rateAt(at);
    this.t = rate > 0 ? at + 1 / rate : this.profile.durationSec;
    return at;
  }
}
