export * from './assignment/index.js';
export { compactRanges } from './assignment/describe-plan.js';
export { Coordinator, type CloseOptions, type CoordinatorOptions, type CoordinatorState } from './coordinator.js';
export { CoordinatorKeys } from './coordinator-keys.js';
export { requestLeader, type LeaderAnswer } from './control/leader-client.js';
export { ControlError, type ControlErrorCode } from './control/control-api.js';
export type * from './control/control-data.js';
export { BROADCAST_EVERY_MS } from './term/leader-term.js';
export type * from './console/console-data.js';
