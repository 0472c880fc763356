// Concourse's warnings for a pipeline it still sets (atc/configwarning.go, atc/configvalidate,
// atc/step_validator.go), each at its file:line, for `validate-pipeline [--strict]` and `set-pipeline`.
import { formatIssue, Source } from '../../schemas/errors';
import { compilePipelineSource } from '../../schemas/pipeline';
import { identifierWarning, pipelineWarnings } from '../../schemas/pipeline-warnings';

describe('identifierWarning', () => {
  it("says what Concourse says of names that are not its identifiers (atc/configwarning_test.go's cases)", () => {
    for (const ok of ['something', 'ひらがな', 'some_thing', '1something', '1_min', 'golang-1.20'])
      expect(identifierWarning(ok)).toBeUndefined();
    const reason = (name: string) => identifierWarning(name)?.replace(`'${name}' is not a valid identifier: `, '');
    expect(reason('-something')).toBe('must start with a lowercase letter or a number');
    expect(reason('.something')).toBe('must start with a lowercase letter or a number');
    expect(reason('Something')).toBe('must start with a lowercase letter or a number');
    expect(reason('some thing')).toBe("illegal character ' '");
    expect(reason('someThing')).toBe("illegal character 'T'");
    expect(reason('1234')).toBe('cannot be just numbers');
  });
});

describe('pipelineWarnings', () => {
  const file = 'pipeline.yml';
  const warnings = (text: string) => pipelineWarnings(new Source(file, text)).map(formatIssue);

  it('names every name that is not an identifier, steps in hooks, do, in_parallel and try included', () => {
    const text = [
      'resources:', //  1
      '- name: Repo', // 2
      '  type: git', // 3
      'jobs:', // 4
      '- name: "123"', // 5
      '  plan:', // 6
      '  - get: Repo', // 7
      '  - in_parallel:', // 8
      '      steps:', // 9
      '      - task: Unit', // 10
      '        file: Repo/unit.yml', // 11
      '  - try:', // 12
      '      put: Repo', // 13
      '    ensure:', // 14
      '      do:', // 15
      '      - load_var: someVar', // 16
      '        file: Repo/v', // 17
      '', // 18
    ].join('\n');
    expect(warnings(text)).toEqual([
      "pipeline.yml:2:9: resources[0].name: 'Repo' is not a valid identifier: must start with a lowercase letter or a number",
      "pipeline.yml:5:9: jobs[0].name: '123' is not a valid identifier: cannot be just numbers",
      "pipeline.yml:7:10: jobs[0].plan[0].get: 'Repo' is not a valid identifier: must start with a lowercase letter or a number",
      "pipeline.yml:10:15: jobs[0].plan[1].in_parallel.steps[0].task: 'Unit' is not a valid identifier: must start with a lowercase letter or a number",
      "pipeline.yml:13:12: jobs[0].plan[2].try.put: 'Repo' is not a valid identifier: must start with a lowercase letter or a number",
      "pipeline.yml:16:19: jobs[0].plan[2].ensure.do[0].load_var: 'someVar' is not a valid identifier: illegal character 'V'",
    ]);
  });

  it('leaves names made by ((vars)) and across alone, and warns of deprecated fields and an image given twice', () => {
    const text = [
      'jobs:', // 1
      '- name: ((job))', // 2
      '  build_logs_to_retain: 10', // 3
      '  plan:', // 4
      '  - task: Run-((.:v))', // 5
      '    across: [{var: v, values: [a]}]', // 6
      '    image: img', // 7
      '    config: {platform: linux, image_resource: {type: registry-image, source: {repository: x}}, run: {path: "true"}}', // 8
      '', // 9
    ].join('\n');
    expect(warnings(text)).toEqual([
      'pipeline.yml:3:3: jobs[0].build_logs_to_retain: build_logs_to_retain is deprecated: use build_log_retention instead',
      'pipeline.yml:7:5: jobs[0].plan[0].image: specifies image: on the step but also specifies an image under config: - the image: on the step takes precedence',
    ]);
  });

  it("reads the compiler's parse of the file, and leaves no issue in it", () => {
    const text = 'jobs:\n- name: Unit\n  plan:\n  - task: t\n    config: {platform: linux, run: {path: "true"}}\n';
    const { source } = compilePipelineSource({ name: 'p', text, file });
    expect(pipelineWarnings(source).map(formatIssue)).toEqual([
      "pipeline.yml:2:9: jobs[0].name: 'Unit' is not a valid identifier: must start with a lowercase letter or a number",
    ]);
    expect(source.issues).toEqual([]);
  });

  it('has nothing to say of a pipeline of identifiers', () => {
    expect(warnings('resources:\n- name: repo\n  type: git\njobs:\n- name: unit\n  plan:\n  - get: repo\n')).toEqual([]);
  });
});
