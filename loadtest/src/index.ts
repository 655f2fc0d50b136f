/** The load driver's face, for a `bench` subcommand or scripts that run scenarios programmatically. */
export { main as runLoadtestCli, RESULTS_DIR, RESULT_SCHEMA } from './cli.js';
export { parseLoadOptions, HELP, UsageError, SCENARIOS, TARGETS, type LoadOptions, type ScenarioName, type TargetName } from './options.js';
export { runNodeDriver, type NodeRunResult, type TimelinePoint } from './run.js';
export { startPrivateInfrastructure, givenInfrastructure, type Infrastructure } from './infrastructure.js';
export { createTarget, BaselineTarget, WorkerTarget, DEFAULT_WORKER_CMD, type SystemUnderTest, type TargetContext } from './targets/index.js';
export { findK6, runK6Scenario, K6_SCRIPTS } from './k6-runner.js';
export { LatencyHistogram, type LatencySummary } from './histogram.js';
export { seedDecision, checkDecision, type ExpectedDecision } from '../shared/seed-rules.js';
