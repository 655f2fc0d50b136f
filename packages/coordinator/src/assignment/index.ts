/**
 * Partition assignment: which worker owns which hash partition. Pure functions, no I/O; the leader
 * feeds them the live workers (from heartbeats), the assignment in force, drains and pins, and applies
 * the resulting moves through the handoff protocol. See docs/assignment.md.
 */
export {
  planAssignment,
  diffAssignment,
  MAX_PARTITIONS,
  type AssignmentInput,
  type AssignmentPlan,
  type PartitionMove,
  type PartitionPin,
  type UnappliedPin,
  type WorkerCapacity,
  type WorkerQuota,
} from './plan-assignment.js';
export { describePlan, formatPlan, type WorkerPlanSummary } from './describe-plan.js';
