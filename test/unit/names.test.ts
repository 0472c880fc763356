// Names with dots, as Concourse allows them (its golang-lib example, test/unit/concourse-examples.test.ts:
// resource `golang-1.20.x-image`, job `golang-1.20`), and the NATS subjects of a build whose id holds them.
import { checkName } from '../../schemas/names';
import { jobBuildId } from '../../schemas/pipeline-api';
import { serviceOfSubject, stepIdOfLogSubject, subjects } from '../../schemas/messages';

describe('names', () => {
  it("accepts Concourse's identifiers with dots, and still refuses what is unsafe in ids, subjects and paths", () => {
    for (const ok of ['golang-1.20', 'golang-1.20.x-image', 'v1.2.3', 'A_b-c']) expect(checkName('job', ok)).toBeUndefined();
    for (const bad of ['.hidden', '..', 'a/b', 'a:b', 'a~b', 'a b', 'a*', 'a>', '']) expect(checkName('job', bad)).toContain('not allowed');
  });
});

describe('NATS subjects of a build id with dots', () => {
  const buildId = jobBuildId('go-1.x', 'golang-1.20', 3);

  it('keep the build id in one token, so `causeway.build.*.event` permissions match it', () => {
    const event = subjects.event(buildId);
    expect(event.split('.')).toHaveLength(4);
    expect(event).toBe('causeway.build.build-go-1~x:golang-1~20:3.event');
    expect(subjects.allOfBuild(buildId)).toBe('causeway.build.build-go-1~x:golang-1~20:3.>');
  });

  it('give back the step id and the service of their subjects', () => {
    expect(stepIdOfLogSubject(buildId, subjects.log(buildId, 'plan.1.2'))).toBe('plan.1.2');
    expect(serviceOfSubject(buildId, subjects.service(buildId, 'plan.0', 'db'))).toEqual({ scopeStepId: 'plan.0', name: 'db' });
    // another build's subjects are not this build's
    expect(stepIdOfLogSubject(jobBuildId('go-1.x', 'golang-1.2', 3), subjects.log(buildId, 'plan.1'))).toBeUndefined();
  });
});
