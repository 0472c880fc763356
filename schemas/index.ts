// The plan language's public surface.
export * from './compiled';
export { describeStep, stepKindOf, STEP_KEYS } from './describe';
export { PlanError, type PlanIssue } from './errors';
export { interpolate, interpolateLocal, parseVarRef, type Lookup, type VarRef } from './interpolate';
export { compilePlan, loadPlan } from './plan';
export { parseTaskConfig, TaskConfigSchema } from './task-config';
export { parseDuration, parseMemory } from './units';
export { loadVarFiles, parseVarFlags, varsFromFlags } from './vars';
export { DEFAULT_GRACE_MS, DEFAULT_PORT, parseServiceConfig, PROBE_DEFAULTS } from './services';
