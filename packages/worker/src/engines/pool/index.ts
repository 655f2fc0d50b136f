export { PoolDecider, resolveThreadFile, threadEngineSpec, threadExecArgv } from './pool-decider.js';
export type { PoolDeciderOptions } from './pool-decider.js';
export { TEST_HOOKS } from './protocol.js';
export type { DecisionTask, RulesSnapshot, ThreadData, ThreadEngineSpec, ThreadReply } from './protocol.js';
