/**
 * What one partition is to this worker. Absent (undefined): not ours.
 *
 * - owned: we take its signals and decide under `epoch`;
 * - releasing: revoked; work accepted before the revoke still decides under `epoch`, nothing new is taken;
 * - reowned: the leader gave it back (at `epoch`) while the release of `releasingEpoch` still runs.
 *
 * Every write for a partition (a stored signal, a claimed decision) carries the epoch this state
 * names and Redis refuses it once the epoch has moved on: the state is an optimistic view, the fence
 * is the truth. So a refusal gives up only the epoch the write carried.
 */
export type PartitionState =
  | { readonly phase: 'owned'; readonly epoch: number }
  | { readonly phase: 'releasing'; readonly epoch: number }
  | { readonly phase: 'reowned'; readonly epoch: number; readonly releasingEpoch: number };

export type PartitionEvent =
  /** The leader (or the table, or Redis for a self-owned worker) gives us the partition at `epoch`. */
  | { readonly type: 'assign'; readonly epoch: number }
  /** The leader revokes it: stop taking signals, finish in-flight work under the epoch held. */
  | { readonly type: 'revoke' }
  /** The release of `epoch` has finished (in-flight work decided, open correlations flushed). */
  | { readonly type: 'released'; readonly epoch: number }
  /** Redis refused a write made under `epoch`: a newer owner exists for that epoch's ownership. */
  | { readonly type: 'fenced'; readonly epoch: number };

/** The transition table; events that do not apply leave the state as it is. */
export function nextPartitionState(state: PartitionState | undefined, event: PartitionEvent): PartitionState | undefined {
  switch (event.type) {
    case 'assign':
      // Any other epoch, lower too: after Redis lost its data a new leader's partition epochs start again.
      if (state === undefined || state.phase === 'owned') return { phase: 'owned', epoch: event.epoch };
      if (state.phase === 'releasing') return { phase: 'reowned', epoch: event.epoch, releasingEpoch: state.epoch };
      return { phase: 'reowned', epoch: event.epoch, releasingEpoch: state.releasingEpoch };
    case 'revoke':
      return state?.phase === 'owned' ? { phase: 'releasing', epoch: state.epoch } : state;
    case 'released':
      if (state?.phase === 'releasing' && state.epoch === event.epoch) return undefined;
      if (state?.phase === 'reowned' && state.releasingEpoch === event.epoch) return { phase: 'owned', epoch: state.epoch };
      return state;
    case 'fenced':
      // A late refusal of an older epoch says nothing about ownership at a newer one.
      if (state?.phase === 'owned' && state.epoch === event.epoch) return undefined;
      if (state?.phase === 'reowned' && state.epoch === event.epoch) return { phase: 'releasing', epoch: state.releasingEpoch };
      return state;
  }
}

/** The epoch new signals are stored under: only while we own the partition. */
export function ownedEpochOf(state: PartitionState | undefined): number | undefined {
  return state === undefined || state.phase === 'releasing' ? undefined : state.epoch;
}

/** The epoch a decision is claimed under: owned, or still releasing; -1 (always fenced) when not ours. */
export function decisionEpochOf(state: PartitionState | undefined): number {
  return state?.epoch ?? -1;
}
