// What the page's modules share: the snapshot on screen and the plan drawn on the map. Set by
// console.js (a snapshot arrives) and rebalance-plan.js (Plan, Clear, a rebalance carried out).

export const state = {
  /** The last snapshot rendered, or null. */
  snap: null,
  /** The plan drawn on the map: partition → planned owner, and the table version it was made at. */
  plan: null,
};
