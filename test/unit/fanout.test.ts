// The pure parts of big fan-out: how heavy a step is, how a list is sliced into parts, and
// which status `causeway builds` shows for each way a build's workflow closes.
import { buildStatusOf, statusClause } from '../../common/build-client';
import { compilePlan } from '../../schemas';
import { needsParts, servicesOf, slices, SPLIT_AT, weightOf } from '../../workflows/fanout';

const task = (name: string, extra = '') => `{task: ${name}, config: {platform: linux, run: {path: "true"}}${extra}}`;
const planOf = (yaml: string) => compilePlan({ text: yaml, file: 'test.yml' }).plan;

describe('weightOf', () => {
  test('a task is one activity; attempts and across values multiply; hooks add', () => {
    expect(weightOf(planOf(`plan:\n- ${task('a')}`).steps[0])).toBe(1);
    expect(weightOf(planOf(`plan:\n- ${task('a', ', attempts: 3')}`).steps[0])).toBe(3);
    expect(weightOf(planOf(`plan:\n- ${task('a', ', across: [{var: x, values: [1, 2, 3]}, {var: y, values: [1, 2]}]')}`).steps[0])).toBe(6);
    expect(weightOf(planOf(`plan:\n- ${task('a', `, ensure: ${task('b')}`)}`).steps[0])).toBe(2);
    expect(weightOf(planOf(`plan:\n- in_parallel: [${task('a')}, {do: [${task('b')}, ${task('c')}]}]`))).toBe(3);
  });

  test('a service is four activities and one address; values known at run time count once', () => {
    const svc = ', services: [{name: db, config: {platform: linux, run: {path: "true"}}}]';
    const compiled = planOf(`plan:\n- ${task('a', `${svc}, across: [{var: x, values: [1]}]`)}`).steps[0];
    const step = { ...compiled, across: { failFast: false, vars: [{ var: 'x', values: '((.:list))', maxInFlight: 1 }] } };
    expect(weightOf(step)).toBe(5);
    expect(servicesOf(step)).toBe(1);
  });
});

describe('slices', () => {
  test('consecutive slices within the budget, at least one item each', () => {
    expect(slices([1, 1, 1, 1, 1], 2)).toEqual([
      [0, 2],
      [2, 4],
      [4, 5],
    ]);
    expect(slices([5, 1, 1], 2)).toEqual([
      [0, 1],
      [1, 3],
    ]);
    expect(slices(Array(2100).fill(1), 1000)).toEqual([
      [0, 1000],
      [1000, 2000],
      [2000, 2100],
    ]);
    expect(slices([], 10)).toEqual([]);
  });
});

describe('buildStatusOf', () => {
  test.each([
    ['started', 'RUNNING', 'started'],
    [undefined, 'RUNNING', 'started'],
    ['succeeded', 'COMPLETED', 'succeeded'],
    ['failed', 'FAILED', 'failed'],
    ['started', 'TERMINATED', 'errored'],
    ['started', 'TIMED_OUT', 'errored'],
    ['started', 'FAILED', 'errored'],
    [undefined, 'FAILED', 'errored'],
    ['started', 'CANCELLED', 'aborted'],
    ['failed', 'TERMINATED', 'failed'],
  ])('CausewayStatus %s, execution %s: %s', (attribute, execution, expected) => {
    expect(buildStatusOf(attribute, execution)).toBe(expected);
  });

  test('the query for a status also finds closed builds whose attribute lags', () => {
    expect(statusClause('started')).toBe(`ExecutionStatus = 'Running'`);
    expect(statusClause('errored')).toContain(`ExecutionStatus IN ('Failed', 'Terminated', 'TimedOut')`);
  });
});

describe('needsParts', () => {
  test('light items past the threshold split; one heavy item (which splits itself) does not', () => {
    expect(needsParts(Array(SPLIT_AT).fill(1))).toBe(false);
    expect(needsParts(Array(SPLIT_AT + 1).fill(1))).toBe(true);
    expect(needsParts([10 * SPLIT_AT])).toBe(false);
    expect(needsParts([10 * SPLIT_AT, 1, 1])).toBe(false);
  });
});
