import { describe, expect, it } from 'vitest';
import { decisionEpochOf, nextPartitionState, ownedEpochOf, type PartitionEvent, type PartitionState } from './partition-state.js';

const owned = (epoch: number): PartitionState => ({ phase: 'owned', epoch });
const releasing = (epoch: number): PartitionState => ({ phase: 'releasing', epoch });
const reowned = (epoch: number, releasingEpoch: number): PartitionState => ({ phase: 'reowned', epoch, releasingEpoch });
const assign = (epoch: number): PartitionEvent => ({ type: 'assign', epoch });
const released = (epoch: number): PartitionEvent => ({ type: 'released', epoch });
const fenced = (epoch: number): PartitionEvent => ({ type: 'fenced', epoch });
const revoke: PartitionEvent = { type: 'revoke' };

describe('partition state machine', () => {
  const table: Array<[string, PartitionState | undefined, PartitionEvent, PartitionState | undefined]> = [
    ['assign takes an unowned partition', undefined, assign(5), owned(5)],
    ['assign moves an owned partition to the new epoch', owned(5), assign(9), owned(9)],
    ['assign takes a lower epoch too (Redis lost its data)', owned(9), assign(3), owned(3)],
    ['assign during a release: owned again, the release goes on', releasing(5), assign(9), reowned(9, 5)],
    ['assign again during that release keeps the release', reowned(9, 5), assign(11), reowned(11, 5)],
    ['revoke starts a release under the epoch held', owned(5), revoke, releasing(5)],
    ['revoke of a partition not ours changes nothing', undefined, revoke, undefined],
    ['revoke while releasing changes nothing', releasing(5), revoke, releasing(5)],
    ['the release finishing gives the partition up', releasing(5), released(5), undefined],
    ['a finished release of another epoch changes nothing', releasing(5), released(4), releasing(5)],
    ['the release finishing after the partition came back leaves it owned at the newer epoch', reowned(9, 5), released(5), owned(9)],
    ['fenced at the epoch owned: lost', owned(5), fenced(5), undefined],
    ['fenced for an old epoch after the partition came back at a newer one: still owned', owned(9), fenced(5), owned(9)],
    ['fenced for the releasing epoch after the partition came back: still owned', reowned(9, 5), fenced(5), reowned(9, 5)],
    ['fenced at the new epoch while the old release runs: only the release is left', reowned(9, 5), fenced(9), releasing(5)],
    ['fenced while releasing: the release finishes as it is', releasing(5), fenced(5), releasing(5)],
    ['fenced for a partition not ours changes nothing', undefined, fenced(5), undefined],
  ];

  it.each(table)('%s', (_name, state, event, expected) => {
    expect(nextPartitionState(state, event)).toEqual(expected);
  });

  it('new signals are stored only under an owned epoch; decisions are claimed while releasing too', () => {
    const rows: Array<[PartitionState | undefined, number | undefined, number]> = [
      [undefined, undefined, -1],
      [owned(5), 5, 5],
      [releasing(5), undefined, 5],
      [reowned(9, 5), 9, 9],
    ];
    for (const [state, store, decide] of rows) {
      expect([ownedEpochOf(state), decisionEpochOf(state)]).toEqual([store, decide]);
    }
  });
});
