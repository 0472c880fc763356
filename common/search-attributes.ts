import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

// The search attributes Causeway sets on builds (registered by `causeway dev up`), so
// the Temporal UI and `causeway builds` can filter and show them.
export const CausewayStatus = defineSearchAttributeKey('CausewayStatus', SearchAttributeType.KEYWORD);
export const CausewayPlan = defineSearchAttributeKey('CausewayPlan', SearchAttributeType.KEYWORD);
/** On a build run made by `causeway retry`: the run id it retried (the run before the reset). */
export const CausewayRetryOf = defineSearchAttributeKey('CausewayRetryOf', SearchAttributeType.KEYWORD);
/** On a pipeline's workflow and on each build of its jobs: the pipeline's name. */
export const CausewayPipeline = defineSearchAttributeKey('CausewayPipeline', SearchAttributeType.KEYWORD);
/** On each build of a pipeline's job: the job's name. */
export const CausewayJob = defineSearchAttributeKey('CausewayJob', SearchAttributeType.KEYWORD);
/** On each build of a pipeline's job: its number within the job (a keyword, as every Causeway attribute). */
export const CausewayBuildNumber = defineSearchAttributeKey('CausewayBuildNumber', SearchAttributeType.KEYWORD);
