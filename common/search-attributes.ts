import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

// The search attributes Causeway sets on builds (registered by `causeway dev up`), so
// the Temporal UI and `causeway builds` can filter and show them.
export const CausewayStatus = defineSearchAttributeKey('CausewayStatus', SearchAttributeType.KEYWORD);
export const CausewayPlan = defineSearchAttributeKey('CausewayPlan', SearchAttributeType.KEYWORD);
/** On a build run made by `causeway retry`: the run id it retried (the run before the reset). */
export const CausewayRetryOf = defineSearchAttributeKey('CausewayRetryOf', SearchAttributeType.KEYWORD);
